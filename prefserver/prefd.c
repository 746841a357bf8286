#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/node/conflict.h"
#include "juki/node/ninsho.h"
#include "juki/node/provide.h"
#include "juki/node/provnotice.h"
#include "juki/node/report.h"
#include "juki/records/agreement.h"
#include "juki/records/honnin.h"
#include "juki/records/person.h"
#include "juki/records/provision.h"
#include "juki/store/purge.h"
#include "prefd.h"

const struct juki_conf_key prefd_conf_keys[] = {
    JUKI_NODE_CONF_KEYS(struct prefd_conf, node),
    JUKI_CONF_SCALAR(struct prefd_conf, national, "national", JUKI_CONF_IDENT, "urn:juki:jlis:0", 0,
		     0, 0,
		     "The national server (指定情報処理機関) that receives every new record; "
		     "with `centres`, one of them: the centre a management-report request's "
		     "row names as passed on to (every request and every record goes to each "
		     "centre)."),
    JUKI_CONF_SCALARLIST(struct prefd_conf, centres, ncentres, "centres", JUKI_CONF_IDENT, 0, 0,
			 JUKI_BATCHER_DESTS,
			 "The national centres (e.g. [urn:juki:jlis:east, urn:juki:jlis:west]) "
			 "that each receive every new record and the update-count queries, "
			 "each acknowledging and reconciled on its own (docs/architecture.md "
			 "§27); empty: `national` alone."),
    JUKI_CONF_SCALAR(struct prefd_conf, conflict_grace, "conflict_grace", JUKI_CONF_DURATION, "1h",
		     0, 0, INT64_C(7) * 86400 * 1000,
		     "How long a person may be current in two municipalities (a move-in whose "
		     "転出 has not arrived yet) before the double-registration alert is raised."),
    JUKI_PROVIDE_CONF_KEYS(struct prefd_conf, provide, provision),
    JUKI_CONF_SCALAR(struct prefd_conf, issuer, "issuer", JUKI_CONF_STRING, "", 0, 0, 0,
		     "The title a disclosure answer (開示, 第6-8(5)ア) is issued under, printed "
		     "at its foot (e.g. 東京都知事); the disclosure command refuses while it is "
		     "empty."),
    JUKI_NINSHO_CONF_KEYS(struct prefd_conf, ninsho),
    JUKI_CONF_END,
};

static const struct juki_migration prefd_steps[] = {
    {1, "CREATE TABLE tenshutsu_kakutei ("
	" notice_id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" old_lgcode TEXT NOT NULL,"
	" new_lgcode TEXT NOT NULL,"
	" move_date TEXT NOT NULL,"
	" tennyu_id TEXT NOT NULL UNIQUE,"
	" sender TEXT NOT NULL,"
	" received_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX kakutei_code ON tenshutsu_kakutei(code);"},
};

const struct juki_schema prefd_schema = {"prefd", prefd_steps,
					 sizeof(prefd_steps) / sizeof(prefd_steps[0])};

static const struct juki_schema prefd_schemas[6] = {
    JUKI_HONNIN_SCHEMA,    {"prefd", prefd_steps, sizeof(prefd_steps) / sizeof(prefd_steps[0])},
    JUKI_CONFLICT_SCHEMA,  JUKI_AGREEMENT_SCHEMA,
    JUKI_PROVISION_SCHEMA, JUKI_REPORT_SCHEMA,
};

/* A municipality sends the records it made itself, and only of its prefecture. */
static int
from_municipality(const struct juki_ident *sender, const struct juki_change *c)
{
	return sender->kind == JUKI_KIND_CS && strcmp(sender->id, c->lgcode) == 0;
}

int
prefd_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	const struct juki_node_conf *nc = juki_node_conf(node);
	struct juki_batcher *forward;
	int rc;

	forward = juki_batcher_new(juki_node_store(node), juki_node_self(node)->urn,
				   prefd_centre(node, 0), (size_t)nc->honnin.batch_records,
				   (size_t)nc->limits.frame_max * 3 / 4, juki_node_clock(node));
	if (forward == NULL) {
		return JUKI_ENOMEM;
	}
	/* Every national centre gets every record, in a message of its own. */
	for (size_t i = 1; prefd_centre(node, i) != NULL; i++) {
		if ((rc = juki_batcher_add_dest(forward, prefd_centre(node, i))) != 0) {
			juki_batcher_free(forward);
			return rc;
		}
	}
	/* 異動等情報 (第6-8(6)), when this prefecture provides it itself: as at jlisd. */
	rc = juki_honnin_receive_hooked(juki_node_store(node), msg, juki_node_now_ms(node),
					from_municipality, forward, NULL,
					juki_ninsho_hook(prefd_of(node)->ninsho), rej);
	juki_batcher_free(forward);
	if (rc == 0) {
		rc = juki_ninsho_flush(prefd_of(node)->ninsho);
	}
	if (rc != 0) {
		juki_ninsho_reset(prefd_of(node)->ninsho);
		return rc;
	}
	return juki_conflicts_scan(prefd_of(node)->conflicts, msg);
}

static int
prefd_handle_count_query(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;

	return juki_honnin_answer_counts(juki_node_store(node), msg, rej);
}

int
prefd_cmd_person_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT notice_id, old_lgcode, new_lgcode, move_date, tennyu_id, received_ms"
	    " FROM tenshutsu_kakutei WHERE code = ?1 ORDER BY received_ms";
	struct juki_node *node = ctx;
	struct juki_field_error fe;
	char code[JUKI_JUMIN_CODE_LEN + 1], when[32];
	json_t *records, *kakutei;
	sqlite3_stmt *st;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	records = juki_honnin_history_json(juki_node_store(node), code);
	kakutei = json_array();
	if (records == NULL || kakutei == NULL ||
	    (st = juki_store_prepare(juki_node_store(node), sql)) == NULL) {
		json_decref(records);
		json_decref(kakutei);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		juki_clock_format(sqlite3_column_int64(st, 5), when, sizeof(when));
		json_array_append_new(
		    kakutei,
		    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "notice_id", sqlite3_column_text(st, 0),
			      "old_lgcode", sqlite3_column_text(st, 1), "new_lgcode",
			      sqlite3_column_text(st, 2), "date", sqlite3_column_text(st, 3),
			      "tennyu_id", sqlite3_column_text(st, 4), "received", when));
	}
	sqlite3_reset(st);
	if (json_array_size(records) == 0 && json_array_size(kakutei) == 0) {
		json_decref(records);
		json_decref(kakutei);
		return juki_ctl_fail(err, "not-found", "no record of %s here", code);
	}
	/* The confirmation marks the record it confirms: the municipality's removal. */
	*result = json_pack("{s:s,s:o,s:o}", "code", code, "records", records, "tenshutsu_kakutei",
			    kakutei);
	return *result ? 0 : JUKI_ENOMEM;
}

int
prefd_handle_tenshutsu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] =
	    "INSERT INTO tenshutsu_kakutei (notice_id, code, old_lgcode, new_lgcode, move_date,"
	    " tennyu_id, sender, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	struct juki_node *node = ctx;
	struct juki_field_error fe;
	struct juki_ident sender;
	char code[JUKI_JUMIN_CODE_LEN + 1], old_lg[JUKI_LGCODE_LEN + 1];
	char new_lg[JUKI_LGCODE_LEN + 1], date[11], pref[3];
	const char *tennyu = json_string_value(json_object_get(msg->body, "tennyu_id"));
	sqlite3_stmt *st;
	int rc;

	if (juki_json_code(msg->body, "code", 0, code, sizeof(code), &fe) != 0 ||
	    juki_json_code(msg->body, "old_lgcode", 1, old_lg, sizeof(old_lg), &fe) != 0 ||
	    juki_json_code(msg->body, "new_lgcode", 1, new_lg, sizeof(new_lg), &fe) != 0 ||
	    juki_json_date(msg->body, "move_date", date, &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "%s: %s", fe.field, fe.detail);
	}
	if (juki_date_not_future(date, juki_node_now_ms(node), "move_date", &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "%s: %s", fe.field, fe.detail);
	}
	if (tennyu == NULL || !juki_uuid_valid(tennyu)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "tennyu_id: the id of the 転入通知");
	}
	juki_ident_parse(msg->from, &sender);
	if (strcmp(sender.id, old_lg) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "old_lgcode: not the municipality that sent the notice");
	}
	if (juki_ident_pref_of(&sender, pref) != 0 || strcmp(pref, juki_node_self(node)->id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "sender: not a municipality of this prefecture");
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, old_lg, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, new_lg, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, date, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, tennyu, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, juki_node_now_ms(node));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		/* A second confirmation message for the same 転入通知: one is recorded. */
		return juki_reject_set(rej, "duplicate-notice",
				       "tennyu_id: already confirmed by another message");
	}
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
prefd_cmd_confirmations(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT notice_id, code, old_lgcode, new_lgcode, move_date, tennyu_id, sender,"
	    " received_ms FROM tenshutsu_kakutei WHERE ?1 IS NULL OR code = ?1"
	    " ORDER BY received_ms, notice_id LIMIT ?2";
	static const char sql_count[] = "SELECT count(*) FROM tenshutsu_kakutei"
					" WHERE ?1 IS NULL OR code = ?1";
	struct juki_node *node = ctx;
	struct juki_field_error fe;
	const json_t *limit = json_object_get(args, "limit");
	char code[JUKI_JUMIN_CODE_LEN + 1] = "", when[32];
	sqlite3_stmt *st;
	json_t *rows;
	json_int_t total = 0;

	if (json_object_get(args, "code") != NULL &&
	    juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 0)) {
		return juki_ctl_fail(err, "usage", "limit: a count");
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql_count)) == NULL) {
		return JUKI_ESTORE;
	}
	if (code[0] != '\0') {
		sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		total = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL ||
	    (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	if (code[0] != '\0') {
		sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 2, limit ? json_integer_value(limit) : 1000);
	while (sqlite3_step(st) == SQLITE_ROW) {
		juki_clock_format(sqlite3_column_int64(st, 7), when, sizeof(when));
		json_array_append_new(
		    rows, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "notice_id",
				    sqlite3_column_text(st, 0), "code", sqlite3_column_text(st, 1),
				    "old_lgcode", sqlite3_column_text(st, 2), "new_lgcode",
				    sqlite3_column_text(st, 3), "date", sqlite3_column_text(st, 4),
				    "tennyu_id", sqlite3_column_text(st, 5), "sender",
				    sqlite3_column_text(st, 6), "received", when));
	}
	sqlite3_reset(st);
	*result = json_pack("{s:I,s:o}", "total", total, "confirmations", rows);
	return 0;
}

int
prefd_cmd_disclosure(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_field_error fe;
	char code[JUKI_JUMIN_CODE_LEN + 1], today[11];
	json_t *rows;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	if (prefd_conf(node)->issuer == NULL || prefd_conf(node)->issuer[0] == '\0') {
		return juki_ctl_fail(err, "config",
				     "issuer: the title a disclosure is issued under is not set");
	}
	if ((rows = juki_provision_for_code(juki_node_store(node), code)) == NULL) {
		return JUKI_ESTORE;
	}
	juki_clock_date(juki_node_now_ms(node), today, sizeof(today));
	/* An empty answer is an answer: nothing was provided or used. */
	*result = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "code", code, "prefecture",
			    juki_node_self(node)->urn, "issuer", prefd_conf(node)->issuer, "date",
			    today, "total", (json_int_t)json_array_size(rows), "provisions", rows);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

static int
prefd_handle_notice(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	return juki_provnotice_receive(juki_node_store(ctx), msg, rej);
}

static int
prefd_handle_notice_count(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	return juki_provnotice_answer_counts(juki_node_store(ctx), msg, rej);
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
prefd_status(struct juki_node *node)
{
	static const char sql_k[] = "SELECT count(*) FROM tenshutsu_kakutei";
	static const char sql_c[] = "SELECT count(*) FROM honnin";
	static const char sql_h[] = "SELECT count(*) FROM honnin_history";

	json_t *centres = json_array();

	for (size_t i = 0; centres != NULL && prefd_centre(node, i) != NULL; i++) {
		json_array_append_new(centres, json_string(prefd_centre(node, i)));
	}
	return json_pack("{s:s,s:o*,s:I,s:{s:I,s:I},s:o*,s:o*}", "national",
			 prefd_conf(node)->national, "centres", centres, "confirmations",
			 count_of(juki_node_store(node), sql_k), "records", "current",
			 count_of(juki_node_store(node), sql_c), "history",
			 count_of(juki_node_store(node), sql_h), "provide",
			 juki_provide_status(node), "ninsho", juki_ninsho_status(node));
}

static const char kakutei_count[] = "SELECT count(*) FROM tenshutsu_kakutei WHERE received_ms < ?1";
static const char kakutei_delete[] =
    "DELETE FROM tenshutsu_kakutei WHERE notice_id IN"
    " (SELECT notice_id FROM tenshutsu_kakutei WHERE received_ms < ?1 LIMIT ?2)";

/* 転出確定通知 hold 住民票コード: kept as long as the identity information itself. */
static const struct juki_purge_rule prefd_purge_rules[] = {
    {"prefd_kakutei", "tenshutsu_kakutei", kakutei_count, kakutei_delete, JUKI_PURGE_YEARS},
    JUKI_PROVISION_PURGE_RULE,
    {NULL, NULL, NULL, NULL, JUKI_PURGE_YEARS},
};

static const struct juki_handler prefd_handlers[] = {
    {JUKI_MSG_TENSHUTSU, JUKI_SVC_HONNIN, prefd_handle_tenshutsu, 0, 0, NULL},
    {JUKI_MSG_HONNIN_BATCH, JUKI_SVC_HONNIN, prefd_handle_batch, 0, JUKI_BULK_TEXT, NULL},
    {JUKI_MSG_COUNT_QUERY, JUKI_SVC_HONNIN, prefd_handle_count_query, 1, 0, NULL},
    JUKI_PROVIDE_HANDLERS,
    {JUKI_MSG_PROVIDE_NOTICE, JUKI_SVC_PROVIDE, prefd_handle_notice, 0, 1, NULL},
    {JUKI_MSG_PROVIDE_COUNT, JUKI_SVC_PROVIDE, prefd_handle_notice_count, 1, 0, NULL},
    JUKI_REPORT_HANDLERS_PREF,
    {NULL, JUKI_SVC_NONE, NULL, 0, 0, NULL},
};

static const struct juki_ctl_cmd prefd_cmds[] = {
    {"person.show", prefd_cmd_person_show,
     "a person's records, newest first, with any 転出確定通知 (args: code)",
     JUKI_ROLE_CLERK | JUKI_ROLE_SUPERVISOR, "honnin"},
    {"confirmations", prefd_cmd_confirmations,
     "転出確定通知 recorded, newest last (args: code, limit)",
     JUKI_ROLE_CLERK | JUKI_ROLE_SUPERVISOR, "kakutei"},
    {"conflicts", juki_conflicts_cmd,
     "people current in two municipalities (二重登録), oldest first (args: limit)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR, "honnin"},
    JUKI_PROVIDE_CMDS,
    {"disclosure", prefd_cmd_disclosure,
     "every provision and use of a person's identity information recorded here, oldest "
     "first, for the person's disclosure request (第6-8(5)ア) (args: code)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR, "provide"},
    JUKI_REPORT_CMDS,
    {NULL, NULL, NULL, 0, NULL},
};

static const char *const prefd_datasets[] = {"honnin", "kakutei", "provide", NULL};

const char *
prefd_centre(const struct juki_node *node, size_t i)
{
	const struct prefd_conf *conf = prefd_conf(node);

	if (conf->ncentres == 0) {
		return i == 0 ? conf->national : NULL;
	}
	return i < conf->ncentres ? conf->centres[i] : NULL;
}

static const char *
prefd_honnin_dest(struct juki_node *node, size_t i)
{
	return prefd_centre(node, i);
}

static int
prefd_check(const void *confp, char *err, size_t errlen)
{
	const struct prefd_conf *conf = confp;
	struct juki_ident national;
	int found = 0;

	if (juki_ident_parse(conf->national, &national) != 0 || national.kind != JUKI_KIND_JLIS) {
		snprintf(err, errlen, "national: %s is not a national server", conf->national);
		return JUKI_ECONFIG;
	}
	for (size_t i = 0; i < conf->ncentres; i++) {
		struct juki_ident centre;

		if (juki_ident_parse(conf->centres[i], &centre) != 0 ||
		    centre.kind != JUKI_KIND_JLIS) {
			snprintf(err, errlen, "centres[%zu]: %s is not a national server", i,
				 conf->centres[i]);
			return JUKI_ECONFIG;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(conf->centres[j], conf->centres[i]) == 0) {
				snprintf(err, errlen, "centres[%zu]: %s is listed twice", i,
					 conf->centres[i]);
				return JUKI_ECONFIG;
			}
		}
		if (strcmp(conf->centres[i], conf->national) == 0) {
			found = 1;
		}
	}
	if (conf->ncentres > 0 && !found) {
		snprintf(err, errlen,
			 "national: %s is not one of centres (name one of the centres)",
			 conf->national);
		return JUKI_ECONFIG;
	}
	if (juki_provide_check(&conf->provide, err, errlen) != 0) {
		return JUKI_ECONFIG;
	}
	return juki_ninsho_check(&conf->ninsho, err, errlen);
}

static void
prefd_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	juki_provide_purge_conf(&prefd_conf(node)->provision, conf);
}

static int
prefd_started(struct juki_node *node, char *err, size_t errlen)
{
	struct prefd *pd = prefd_of(node);

	pd->conflicts = juki_conflicts_start(node, prefd_conf(node)->conflict_grace);
	if (pd->conflicts == NULL) {
		snprintf(err, errlen, "conflicts: out of memory");
		return JUKI_ENOMEM;
	}
	pd->reports = juki_reports_start(node, prefd_conf(node)->national, 0);
	if (pd->reports == NULL) {
		snprintf(err, errlen, "reports: out of memory");
		return JUKI_ENOMEM;
	}
	/* Requests about what the national server provided: to every centre. */
	juki_reports_set_centres(pd->reports, prefd_conf(node)->centres,
				 prefd_conf(node)->ncentres);
	/* Requests to the certification authority go to the link server (第6-8(6)ウ・エ). */
	juki_reports_set_ninsho(pd->reports, prefd_conf(node)->ninsho.authlink,
				prefd_conf(node)->ninsho.ca);
	pd->provide = juki_provide_start(node, &prefd_conf(node)->provide, err, errlen);
	if (pd->provide == NULL) {
		return JUKI_ECONFIG;
	}
	if ((pd->ninsho = juki_ninsho_start(node, &prefd_conf(node)->ninsho)) == NULL) {
		snprintf(err, errlen, "ninsho: out of memory");
		return JUKI_ENOMEM;
	}
	return 0;
}

static void
prefd_reloaded(struct juki_node *node)
{
	juki_conflicts_set_grace(prefd_of(node)->conflicts, prefd_conf(node)->conflict_grace);
	juki_provide_reload(prefd_of(node)->provide, &prefd_conf(node)->provide);
	juki_reports_set(prefd_of(node)->reports, prefd_conf(node)->national, 0);
	juki_reports_set_centres(prefd_of(node)->reports, prefd_conf(node)->centres,
				 prefd_conf(node)->ncentres);
	juki_ninsho_reload(prefd_of(node)->ninsho, &prefd_conf(node)->ninsho);
	juki_reports_set_ninsho(prefd_of(node)->reports, prefd_conf(node)->ninsho.authlink,
				prefd_conf(node)->ninsho.ca);
}

static void
prefd_stopping(struct juki_node *node)
{
	juki_conflicts_stop(prefd_of(node)->conflicts);
	prefd_of(node)->conflicts = NULL;
	juki_provide_stop(prefd_of(node)->provide);
	prefd_of(node)->provide = NULL;
	juki_reports_stop(prefd_of(node)->reports);
	prefd_of(node)->reports = NULL;
	juki_ninsho_stop(prefd_of(node)->ninsho);
	prefd_of(node)->ninsho = NULL;
}

static const struct juki_node_spec prefd_spec = {
    .daemon = "juki-prefd",
    .kind = JUKI_KIND_PREF,
    .schemas = prefd_schemas,
    .nschemas = 6,
    .handlers = prefd_handlers,
    .cmds = prefd_cmds,
    .on_ack = juki_reports_on_ack,
    .status = prefd_status,
    .honnin_dest = prefd_honnin_dest,
    .purge = prefd_purge_rules,
    .purge_conf = prefd_purge_conf,
    .datasets = prefd_datasets,
    .size = sizeof(struct prefd),
    .conf_node = offsetof(struct prefd_conf, node),
    .check = prefd_check,
    .started = prefd_started,
    .reloaded = prefd_reloaded,
    .stopping = prefd_stopping,
};

const struct juki_daemon_ops prefd_ops = {
    .name = "juki-prefd",
    .summary = "juki prefectural server (都道府県サーバ)",
    .default_config = "/etc/juki/prefd.yaml",
    .conf_table = prefd_conf_keys,
    .conf_size = sizeof(struct prefd_conf),
    JUKI_NODE_DAEMON_OPS(prefd_spec),
};
