#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jlisd.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/node/conflict.h"
#include "juki/node/ninsho.h"
#include "juki/node/provide.h"
#include "juki/node/provnotice.h"
#include "juki/node/reconcile.h"
#include "juki/node/report.h"
#include "juki/records/agreement.h"
#include "juki/records/honnin.h"
#include "juki/records/provision.h"

const struct juki_conf_key jlisd_conf_keys[] = {
    JUKI_NODE_CONF_KEYS(struct jlisd_conf, node),
    JUKI_CONF_SCALAR(struct jlisd_conf, conflict_grace, "conflict_grace", JUKI_CONF_DURATION, "1h",
		     0, 0, INT64_C(7) * 86400 * 1000,
		     "How long a person may be current in two municipalities (a move-in whose "
		     "転出 has not arrived yet) before the double-registration alert is raised."),
    JUKI_PROVIDE_CONF_KEYS(struct jlisd_conf, provide, provision),
    JUKI_CONF_SCALAR(struct jlisd_conf, notice_interval, "notice_interval", JUKI_CONF_DURATION,
		     "1m", 0, 0, INT64_C(86400) * 1000,
		     "How often the provision records not yet notified are sent to the "
		     "prefecture of each person (provide.notice, 第6-8(5)イ); 0: only when asked "
		     "(notices.send)."),
    JUKI_NINSHO_CONF_KEYS(struct jlisd_conf, ninsho),
    JUKI_CONF_END,
};

static const struct juki_schema jlisd_schemas[8] = {
    JUKI_HONNIN_SCHEMA,     JUKI_CONFLICT_SCHEMA,           JUKI_AGREEMENT_SCHEMA,
    JUKI_PROVISION_SCHEMA,  JUKI_PROVISION_NATIONAL_SCHEMA, /* after provision: drops its index */
    JUKI_PROVNOTICE_SCHEMA, JUKI_RECONCILE_SCHEMA,          JUKI_REPORT_SCHEMA,
};

static const struct jlisd_conf *
jlisd_conf(const struct juki_node *node)
{
	return juki_node_daemon_conf(node);
}

static struct jlisd *
jlisd_of(struct juki_node *node)
{
	return juki_node_priv(node);
}

/* A prefecture passes on records of its own municipalities only. */
static int
from_prefecture(const struct juki_ident *sender, const struct juki_change *c)
{
	return sender->kind == JUKI_KIND_PREF && strncmp(sender->id, c->lgcode, 2) == 0;
}

int
jlisd_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	struct juki_ninsho *ninsho = jlisd_of(node)->ninsho;
	int rc;

	/* 異動等情報 (第6-8(6)): derived from what becomes current, one message per batch. */
	rc = juki_honnin_receive_hooked(juki_node_store(node), msg, juki_node_now_ms(node),
					from_prefecture, NULL, NULL, juki_ninsho_hook(ninsho), rej);
	if (rc == 0) {
		rc = juki_ninsho_flush(ninsho);
	}
	if (rc != 0) {
		juki_ninsho_reset(ninsho);
		return rc;
	}
	return juki_conflicts_scan(jlisd_of(node)->conflicts, msg);
}

static int
jlisd_handle_count_query(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;

	return juki_honnin_answer_counts(juki_node_store(node), msg, rej);
}

static int
jlisd_cmd_person_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_field_error fe;
	char code[JUKI_JUMIN_CODE_LEN + 1];
	json_t *records;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	records = juki_honnin_history_json(juki_node_store(node), code);
	if (records == NULL) {
		return JUKI_ESTORE;
	}
	if (json_array_size(records) == 0) {
		json_decref(records);
		return juki_ctl_fail(err, "not-found", "no record of %s here", code);
	}
	*result = json_pack("{s:s,s:o}", "code", code, "records", records);
	return *result ? 0 : JUKI_ENOMEM;
}

static json_int_t
count_of(struct juki_store *store, const char *sql)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_int_t n = 0;

	if (st != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			n = sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
	}
	return n;
}

static json_t *
jlisd_status(struct juki_node *node)
{
	static const char sql_c[] = "SELECT count(*) FROM honnin";
	static const char sql_h[] = "SELECT count(*) FROM honnin_history";

	return json_pack("{s:{s:I,s:I},s:o*,s:o*}", "records", "current",
			 count_of(juki_node_store(node), sql_c), "history",
			 count_of(juki_node_store(node), sql_h), "provide",
			 juki_provide_status(node), "ninsho", juki_ninsho_status(node));
}

/* "notices.send": queue the provision records not yet notified, now. */
static int
jlisd_cmd_notices_send(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	int64_t sent = 0, held = 0;
	int rc;

	(void)args;
	if ((rc = juki_provnotice_send(jlisd_of(node)->notices, &sent, &held)) != 0) {
		return juki_ctl_fail(err, "internal", "provision notices: %s", juki_strerror(rc));
	}
	*result = json_pack("{s:I,s:I}", "queued", (json_int_t)sent, "held", (json_int_t)held);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* "notices.reconcile": ask the prefectures for their counts (args: date, check). */
static int
jlisd_cmd_notices_reconcile(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const char *day = json_string_value(json_object_get(args, "date"));
	const json_t *check = json_object_get(args, "check");
	int rc;

	if (day != NULL && !juki_date_valid(day)) {
		return juki_ctl_fail(err, "usage", "date: YYYY-MM-DD");
	}
	rc = juki_provnotice_reconcile(jlisd_of(node)->notices, day,
				       check == NULL || json_is_true(check), result);
	if (rc != 0) {
		return juki_ctl_fail(err, "internal", "provision notices: %s", juki_strerror(rc));
	}
	return 0;
}

static int
jlisd_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct juki_node *node = ctx;

	int rc = juki_provnotice_on_ack(jlisd_of(node)->notices, entry, ack);

	return rc != 0 ? rc : juki_reports_on_ack(ctx, entry, ack);
}

static const struct juki_handler jlisd_handlers[] = {
    {JUKI_MSG_HONNIN_BATCH, JUKI_SVC_HONNIN, jlisd_handle_batch, 0, JUKI_BULK_TEXT, NULL},
    {JUKI_MSG_COUNT_QUERY, JUKI_SVC_HONNIN, jlisd_handle_count_query, 1, 0, NULL},
    JUKI_PROVIDE_HANDLERS,
    JUKI_REPORT_HANDLERS_JLIS,
    {NULL, JUKI_SVC_NONE, NULL, 0, 0, NULL},
};

/*
 * "received": the update counts received from each prefecture per day, with
 * their digests — what this centre holds, to compare with the other national
 * centre's answer for the whole nation (docs/architecture.md §27).
 */
static int
jlisd_cmd_received(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT c.peer, c.day, sum(c.n), (SELECT d.digest FROM honnin_digest d"
	    " WHERE d.side = 0 AND d.peer = c.peer AND d.day = c.day)"
	    " FROM honnin_counts c WHERE c.side = 0 AND (?1 IS NULL OR c.day = ?1)"
	    " AND c.day >= ?2 GROUP BY c.peer, c.day ORDER BY c.day DESC, c.peer";
	struct juki_node *node = ctx;
	const json_t *date = json_object_get(args, "date");
	const char *day = json_string_value(date);
	char first[11];
	sqlite3_stmt *st;
	json_t *rows;

	if (date != NULL && (day == NULL || !juki_date_valid(day))) {
		return juki_ctl_fail(err, "usage", "date: YYYY-MM-DD");
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL ||
	    (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	/* The recent days reconciliation covers, or the one day asked. */
	juki_clock_date(juki_node_now_ms(node) -
			    (juki_node_conf(node)->honnin.reconcile_days - 1) * JUKI_DAY_MS,
			first, sizeof(first));
	if (day != NULL) {
		sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 2, day != NULL ? "0000-00-00" : first, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char hex[2 * JUKI_DIGEST_LEN + 1] = "";

		if (sqlite3_column_bytes(st, 3) == JUKI_DIGEST_LEN) {
			juki_hex_encode(sqlite3_column_blob(st, 3), JUKI_DIGEST_LEN, hex);
		}
		json_array_append_new(
		    rows, json_pack("{s:s,s:s,s:I,s:s}", "peer", sqlite3_column_text(st, 0), "day",
				    sqlite3_column_text(st, 1), "total",
				    (json_int_t)sqlite3_column_int64(st, 2), "digest", hex));
	}
	sqlite3_reset(st);
	*result = json_pack("{s:s,s:o}", "node", juki_node_self(node)->urn, "received", rows);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

static const struct juki_ctl_cmd jlisd_cmds[] = {
    {"person.show", jlisd_cmd_person_show, "a person's records, newest first (args: code)",
     JUKI_ROLE_CLERK | JUKI_ROLE_SUPERVISOR, "honnin"},
    {"received", jlisd_cmd_received,
     "update counts received from each prefecture per day, with digests, for comparing the "
     "national centres (args: date)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},
    {"conflicts", juki_conflicts_cmd,
     "people current in two municipalities (二重登録), oldest first (args: limit)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR, "honnin"},
    {"notices.send", jlisd_cmd_notices_send,
     "send the provision records not yet notified to each person's prefecture now (第6-8(5)イ)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, "provide"},
    {"notices.reconcile", jlisd_cmd_notices_reconcile,
     "compare the provision notices sent with what each prefecture holds, per day (args: "
     "date, check)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, "provide"},
    JUKI_PROVIDE_CMDS,
    JUKI_REPORT_CMDS,
    {NULL, NULL, NULL, 0, NULL},
};

static const char *const jlisd_datasets[] = {"honnin", "provide", NULL};

/* Provision records (提供状況) are erased after provision.keep (第6-8(5)ウ). */
static const struct juki_purge_rule jlisd_purge_rules[] = {
    JUKI_PROVISION_PURGE_RULE,
    JUKI_PROVNOTICE_PURGE_RULE,
    {NULL, NULL, NULL, NULL, JUKI_PURGE_YEARS},
};

static int
jlisd_check(const void *confp, char *err, size_t errlen)
{
	const struct jlisd_conf *conf = confp;
	int rc = juki_provide_check(&conf->provide, err, errlen);

	return rc != 0 ? rc : juki_ninsho_check(&conf->ninsho, err, errlen);
}

static void
jlisd_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	juki_provide_purge_conf(&jlisd_conf(node)->provision, conf);
}

static int
jlisd_started(struct juki_node *node, char *err, size_t errlen)
{
	struct jlisd *jd = jlisd_of(node);

	jd->conflicts = juki_conflicts_start(node, jlisd_conf(node)->conflict_grace);
	if (jd->conflicts == NULL) {
		snprintf(err, errlen, "conflicts: out of memory");
		return JUKI_ENOMEM;
	}
	if ((jd->reports = juki_reports_start(node, NULL, 0)) == NULL) {
		snprintf(err, errlen, "reports: out of memory");
		return JUKI_ENOMEM;
	}
	/* Requests to the certification authority go to the link server (第6-8(6)ウ・エ). */
	juki_reports_set_ninsho(jd->reports, jlisd_conf(node)->ninsho.authlink,
				jlisd_conf(node)->ninsho.ca);
	jd->provide = juki_provide_start(node, &jlisd_conf(node)->provide, err, errlen);
	if (jd->provide == NULL) {
		return JUKI_ECONFIG;
	}
	jd->notices = juki_provnotice_start(node, jlisd_conf(node)->notice_interval);
	if (jd->notices == NULL) {
		snprintf(err, errlen, "provision notices: out of memory");
		return JUKI_ENOMEM;
	}
	if ((jd->ninsho = juki_ninsho_start(node, &jlisd_conf(node)->ninsho)) == NULL) {
		snprintf(err, errlen, "ninsho: out of memory");
		return JUKI_ENOMEM;
	}
	return 0;
}

static void
jlisd_reloaded(struct juki_node *node)
{
	juki_conflicts_set_grace(jlisd_of(node)->conflicts, jlisd_conf(node)->conflict_grace);
	juki_provide_reload(jlisd_of(node)->provide, &jlisd_conf(node)->provide);
	juki_provnotice_reloaded(jlisd_of(node)->notices, jlisd_conf(node)->notice_interval);
	juki_ninsho_reload(jlisd_of(node)->ninsho, &jlisd_conf(node)->ninsho);
	juki_reports_set_ninsho(jlisd_of(node)->reports, jlisd_conf(node)->ninsho.authlink,
				jlisd_conf(node)->ninsho.ca);
}

static void
jlisd_stopping(struct juki_node *node)
{
	juki_conflicts_stop(jlisd_of(node)->conflicts);
	jlisd_of(node)->conflicts = NULL;
	juki_provide_stop(jlisd_of(node)->provide);
	jlisd_of(node)->provide = NULL;
	juki_provnotice_stop(jlisd_of(node)->notices);
	jlisd_of(node)->notices = NULL;
	juki_reports_stop(jlisd_of(node)->reports);
	jlisd_of(node)->reports = NULL;
	juki_ninsho_stop(jlisd_of(node)->ninsho);
	jlisd_of(node)->ninsho = NULL;
}

static const struct juki_node_spec jlisd_spec = {
    .daemon = "juki-jlisd",
    .kind = JUKI_KIND_JLIS,
    .schemas = jlisd_schemas,
    .nschemas = 8,
    .handlers = jlisd_handlers,
    .on_ack = jlisd_on_ack,
    .cmds = jlisd_cmds,
    .status = jlisd_status,
    .datasets = jlisd_datasets,
    .purge = jlisd_purge_rules,
    .purge_conf = jlisd_purge_conf,
    .check = jlisd_check,
    .size = sizeof(struct jlisd),
    .conf_node = offsetof(struct jlisd_conf, node),
    .started = jlisd_started,
    .reloaded = jlisd_reloaded,
    .stopping = jlisd_stopping,
};

const struct juki_daemon_ops jlisd_ops = {
    .name = "juki-jlisd",
    .summary = "juki national server (指定情報処理機関サーバ)",
    .default_config = "/etc/juki/jlisd.yaml",
    .conf_table = jlisd_conf_keys,
    .conf_size = sizeof(struct jlisd_conf),
    JUKI_NODE_DAEMON_OPS(jlisd_spec),
};
