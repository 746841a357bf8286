#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jlisd.h"
#include "juki/base/error.h"
#include "juki/records/honnin.h"

const struct juki_conf_key jlisd_conf_keys[] = {
    JUKI_NODE_CONF_KEYS(struct jlisd_conf, node),
    JUKI_CONF_END,
};

static const struct juki_schema jlisd_schemas[1] = {
    JUKI_HONNIN_SCHEMA,
};

/* A prefecture passes on records of its own municipalities only. */
static int
from_prefecture(const struct juki_ident *sender, const struct juki_change *c)
{
	return sender->kind == JUKI_KIND_PREF && strncmp(sender->id, c->lgcode, 2) == 0;
}

int
jlisd_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct jlisd *jd = ctx;

	return juki_honnin_receive(jd->node.store, msg, juki_node_now_ms(&jd->node),
				   from_prefecture, NULL, NULL, rej);
}

static int
jlisd_handle_count_query(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct jlisd *jd = ctx;

	return juki_honnin_answer_counts(jd->node.store, msg, rej);
}

static int
jlisd_cmd_person_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct jlisd *jd = ctx;
	struct juki_field_error fe;
	char code[JUKI_JUMIN_CODE_LEN + 1];
	json_t *records;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	records = juki_honnin_history_json(jd->node.store, code);
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

	return json_pack("{s:{s:I,s:I}}", "records", "current", count_of(node->store, sql_c),
			 "history", count_of(node->store, sql_h));
}

static const struct juki_handler jlisd_handlers[] = {
    {JUKI_MSG_HONNIN_BATCH, JUKI_SVC_HONNIN, jlisd_handle_batch, 0, 1},
    {JUKI_MSG_COUNT_QUERY, JUKI_SVC_HONNIN, jlisd_handle_count_query, 1, 0},
    {NULL, JUKI_SVC_NONE, NULL, 0, 0},
};

static const struct juki_ctl_cmd jlisd_cmds[] = {
    {"person.show", jlisd_cmd_person_show, "a person's records, newest first (args: code)",
     JUKI_ROLE_CLERK | JUKI_ROLE_SUPERVISOR, "honnin"},
    {NULL, NULL, NULL, 0, NULL},
};

static const char *const jlisd_datasets[] = {"honnin", NULL};

static const struct juki_node_spec jlisd_spec = {
    .daemon = "juki-jlisd",
    .kind = JUKI_KIND_JLIS,
    .schemas = jlisd_schemas,
    .nschemas = 1,
    .handlers = jlisd_handlers,
    .cmds = jlisd_cmds,
    .status = jlisd_status,
    .datasets = jlisd_datasets,
};

static int
jlisd_check(void *confp, char *err, size_t errlen)
{
	struct jlisd_conf *conf = confp;

	return juki_node_check(&conf->node, JUKI_KIND_JLIS, err, errlen);
}

static int
jlisd_start(struct juki_daemon *d, void *confp, void **nodep, char *err, size_t errlen)
{
	const struct jlisd_conf *conf = confp;
	struct jlisd *jd;
	int rc;

	jd = calloc(1, sizeof(*jd));
	if (jd == NULL) {
		return JUKI_ENOMEM;
	}
	jd->conf = conf;
	if ((rc = juki_node_start(&jd->node, d, &conf->node, &jlisd_spec, err, errlen)) != 0) {
		free(jd);
		return rc;
	}
	*nodep = jd;
	return 0;
}

static int
jlisd_reload(struct juki_daemon *d, void *nodep, void *newconfp, char *err, size_t errlen)
{
	struct jlisd *jd = nodep;
	const struct jlisd_conf *conf = newconfp;
	int rc;

	(void)d;
	if ((rc = juki_node_reload(&jd->node, &conf->node, err, errlen)) == 0) {
		jd->conf = conf;
	}
	return rc;
}

static void
jlisd_stop(struct juki_daemon *d, void *nodep)
{
	struct jlisd *jd = nodep;

	(void)d;
	juki_node_stop(&jd->node);
	free(jd);
}

const struct juki_daemon_ops jlisd_ops = {
    .name = "juki-jlisd",
    .summary = "juki national server (指定情報処理機関サーバ)",
    .default_config = "/etc/juki/jlisd.yaml",
    .conf_table = jlisd_conf_keys,
    .conf_size = sizeof(struct jlisd_conf),
    .check = jlisd_check,
    .start = jlisd_start,
    .reload = jlisd_reload,
    .stop = jlisd_stop,
};
