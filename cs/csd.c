#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards.h"
#include "csd.h"
#include "juki/base/error.h"
#include "juki/node/report.h"
#include "juki/store/purge.h"
#include "spool.h"

static const struct juki_conf_key import_keys[] = {
    JUKI_CONF_SCALAR(struct csd_import_conf, spool, "spool", JUKI_CONF_PATH, NULL,
		     JUKI_CONF_RESTART, 0, 0,
		     "Import spool: files from the resident record system are renamed into "
		     "<spool>/incoming and filed in done/ or rejected/ (docs/import.md)."),
    JUKI_CONF_SCALAR(struct csd_import_conf, scan_interval, "scan_interval", JUKI_CONF_DURATION,
		     "2s", 0, 10, 3600000, "How often incoming/ is looked at when idle."),
    JUKI_CONF_SCALAR(struct csd_import_conf, max_bytes, "max_bytes", JUKI_CONF_SIZE, "1GiB", 0, 1,
		     (int64_t)1 << 40, "The largest import file accepted."),
    JUKI_CONF_SCALAR(struct csd_import_conf, step_rows, "step_rows", JUKI_CONF_INT, "20000", 0, 1,
		     10000000, "Rows validated at a time, between other work."),
    JUKI_CONF_SCALAR(struct csd_import_conf, single_pass, "single_pass", JUKI_CONF_SIZE, "4MiB", 0,
		     0, (int64_t)1 << 30,
		     "Files up to this size are validated and recorded in one pass and one "
		     "transaction (0: every file is validated first, then replayed)."),
    JUKI_CONF_SCALAR(struct csd_import_conf, keep, "keep", JUKI_CONF_DURATION, "30d", 0, 0,
		     INT64_C(36500) * JUKI_DAY_MS,
		     "Files in done/ and rejected/ (with their receipts and reports) hold personal "
		     "data: juki-ctl purge erases those filed longer ago than this (第6-7); 0: "
		     "never."),
    JUKI_CONF_END,
};

static const struct juki_conf_key tennyu_keys[] = {
    JUKI_CONF_SCALAR(struct csd_tennyu_conf, refusal_limit, "refusal_limit", JUKI_CONF_INT, "20", 0,
		     1, 1000000,
		     "Refused 転入通知 from one municipality within refusal_window before the "
		     "refusal-burst alert; its further notices are refused as rate-limited."),
    JUKI_CONF_SCALAR(struct csd_tennyu_conf, refusal_window, "refusal_window", JUKI_CONF_DURATION,
		     "1h", 0, 1000, INT64_C(7) * 86400 * 1000,
		     "The window in which refused 転入通知 are counted."),
    JUKI_CONF_END,
};

const struct juki_conf_key csd_conf_keys[] = {
    JUKI_NODE_CONF_KEYS(struct csd_conf, node),
    JUKI_CONF_SCALAR(
	struct csd_conf, prefecture, "prefecture", JUKI_CONF_IDENT, NULL, 0, 0, 0,
	"The prefectural server that receives 転出確定通知 (default: urn:juki:pref:<first two "
	"digits of our code>)."),
    JUKI_CONF_SCALAR(struct csd_conf, report_poll, "report_poll", JUKI_CONF_DURATION, "10m", 0, 100,
		     INT64_C(7) * 86400 * 1000,
		     "How often the prefecture is asked about a management-report request not "
		     "answered yet (第6-8(1)エ): its state and, once there, the answer."),
    JUKI_CONF_SECTIONKEY(struct csd_conf, import, "import", import_keys,
			 "Input from the resident record system (第6-6(1))."),
    JUKI_CONF_SECTIONKEY(struct csd_conf, tennyu, "tennyu", tennyu_keys,
			 "転入通知 received from other municipalities (第6-2)."),
    JUKI_CONF_SECTIONKEY(struct csd_conf, copy, "copy", csd_copy_keys,
			 "Wide-area copies of the residence record (第6-4) and the forms they are "
			 "printed on (第4-8(3))."),
    JUKI_CONF_SECTIONKEY(struct csd_conf, tokurei, "tokurei", csd_tokurei_keys,
			 "The special move-out/in with the resident card (転入転出の特例, 第6-5)."),
    JUKI_CONF_END,
};

static const struct juki_migration csd_steps[] = {
    {1, "CREATE TABLE resident ("
	" code TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" kana TEXT,"
	" birth TEXT NOT NULL,"
	" sex INTEGER NOT NULL CHECK (sex IN (1, 2)),"
	" address TEXT NOT NULL,"
	" lgcode TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('resident', 'moved-out')),"
	" version INTEGER NOT NULL,"
	" reason TEXT NOT NULL,"
	" reason_date TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE movein ("
	" notice_id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" from_lgcode TEXT NOT NULL,"
	" move_date TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('queued', 'accepted', 'rejected')),"
	" reason TEXT,"
	" detail TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX movein_code ON movein(code);"
	"CREATE TABLE moveout ("
	" tennyu_id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" to_lgcode TEXT NOT NULL,"
	" move_date TEXT NOT NULL,"
	" confirm_id TEXT NOT NULL UNIQUE,"
	" confirm_status TEXT NOT NULL CHECK (confirm_status IN ('queued', 'accepted', "
	"'rejected')),"
	" received_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX moveout_code ON moveout(code);"},
    /* The register moves onto the shared identity-information tables (honnin.h). */
    {2, "INSERT INTO honnin (code, lgcode, version, reason, kind, reason_date, recorded_ms,"
	" received_ms, sender, rec)"
	" SELECT code, lgcode, version, reason, CASE status WHEN 'moved-out' THEN 1 ELSE 0 END,"
	" reason_date, updated_ms, updated_ms, NULL,"
	" json_object('code', code, 'lgcode', lgcode, 'version', version, 'reason', reason,"
	" 'reason_date', reason_date,"
	" 'recorded', strftime('%Y-%m-%dT%H:%M:%fZ', updated_ms / 1000.0, 'unixepoch'),"
	" 'person', json_object('name', name, 'kana', kana, 'birth', birth, 'sex', sex,"
	" 'address', address))"
	" FROM resident;"
	"DROP TABLE resident;"},
    /* Files applied from the import spool, so that none is applied twice. */
    {3, "CREATE TABLE import_log ("
	" sha256 TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" imported_ms INTEGER NOT NULL,"
	" receipt TEXT NOT NULL"
	") WITHOUT ROWID;"},
    /* A refused 転入通知: the municipality that refused keeps the precise reason. */
    {4, "CREATE TABLE tennyu_refusal ("
	" notice_id TEXT PRIMARY KEY,"
	" sender TEXT NOT NULL,"
	" code TEXT,"
	" reason TEXT NOT NULL,"
	" detail TEXT,"
	" told TEXT NOT NULL,"
	" received_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX tennyu_refusal_sender ON tennyu_refusal(sender, received_ms);"},
    /* A move-in whose 転入通知 was refused is a task here until a clerk resolves it. */
    {5, "ALTER TABLE movein ADD COLUMN resolved_ms INTEGER;"
	"ALTER TABLE movein ADD COLUMN resolution TEXT;"},
};

const struct juki_schema csd_schema = {"csd", csd_steps, sizeof(csd_steps) / sizeof(csd_steps[0])};

/* The shared tables first: the register's migration writes into them. */
static const struct juki_schema csd_schemas[6] = {
    JUKI_HONNIN_SCHEMA, {"csd", csd_steps, sizeof(csd_steps) / sizeof(csd_steps[0])},
    JUKI_REPORT_SCHEMA, CSD_CARDS_SCHEMA, /* the resident card register (cards.h) */
    CSD_COPIES_SCHEMA,                    /* wide-area copies and the forms stock (copies.h) */
    CSD_TOKUREI_SCHEMA,                   /* the special move-out/in (tokurei.h) */
};

/* The case tables hold 住民票コード: kept as long as the identity information itself. */
static const char movein_count[] = "SELECT count(*) FROM movein WHERE updated_ms < ?1";
static const char movein_delete[] =
    "DELETE FROM movein WHERE notice_id IN"
    " (SELECT notice_id FROM movein WHERE updated_ms < ?1 LIMIT ?2)";
static const char moveout_count[] = "SELECT count(*) FROM moveout WHERE received_ms < ?1";
static const char moveout_delete[] =
    "DELETE FROM moveout WHERE tennyu_id IN"
    " (SELECT tennyu_id FROM moveout WHERE received_ms < ?1 LIMIT ?2)";
static const char import_count[] = "SELECT count(*) FROM import_log WHERE imported_ms < ?1";
static const char import_delete[] =
    "DELETE FROM import_log WHERE sha256 IN"
    " (SELECT sha256 FROM import_log WHERE imported_ms < ?1 LIMIT ?2)";

static const char refusal_count[] = "SELECT count(*) FROM tennyu_refusal WHERE received_ms < ?1";
static const char refusal_delete[] =
    "DELETE FROM tennyu_refusal WHERE notice_id IN"
    " (SELECT notice_id FROM tennyu_refusal WHERE received_ms < ?1 LIMIT ?2)";

static const struct juki_purge_rule csd_purge_rules[] = {
    {"csd_refusals", "tennyu_refusal", refusal_count, refusal_delete, JUKI_PURGE_YEARS},
    {"csd_moveins", "movein", movein_count, movein_delete, JUKI_PURGE_YEARS},
    {"csd_moveouts", "moveout", moveout_count, moveout_delete, JUKI_PURGE_YEARS},
    {"csd_import_log", "import_log", import_count, import_delete, JUKI_PURGE_YEARS},
    CSD_COPIES_PURGE_RULES,
    CSD_TOKUREI_PURGE_RULES,
    {NULL, NULL, NULL, NULL, JUKI_PURGE_YEARS},
};

static const struct juki_handler csd_handlers[] = {
    {JUKI_MSG_TENNYU, JUKI_SVC_MUNI, csd_handle_tennyu, 0, 0, csd_tennyu_refused},
    {JUKI_MSG_COPY_REQUEST, JUKI_SVC_MUNI, csd_handle_copy_request, 0, 0, NULL},
    {JUKI_MSG_COPY_ANSWER, JUKI_SVC_MUNI, csd_handle_copy_answer, 0, 0, NULL},
    {JUKI_MSG_TOKUREI_REQUEST, JUKI_SVC_MUNI, csd_handle_tokurei_request, 0, 0,
     csd_tokurei_request_refused},
    {JUKI_MSG_TOKUREI_ANSWER, JUKI_SVC_MUNI, csd_handle_tokurei_answer, 0, 0, NULL},
    {JUKI_MSG_TOKUREI_COLLECTED, JUKI_SVC_MUNI, csd_handle_tokurei_collected, 0, 0, NULL},
    {NULL, JUKI_SVC_NONE, NULL, 0, 0, NULL},
};

#define CLERK JUKI_ROLE_CLERK
#define SUPER JUKI_ROLE_SUPERVISOR

static const struct juki_ctl_cmd csd_cmds[] = {
    {"resident.add", csd_cmd_resident_add,
     "register residents (args: residents: [person...]); all or nothing", CLERK, "honnin"},
    {"resident.show", csd_cmd_resident_show, "a resident's record and cases (args: code)",
     CLERK | SUPER, "honnin"},
    {"resident.correct", csd_cmd_resident_correct,
     "職権修正 of recorded items; needs a supervisor's approval, before or within "
     "operator.approve_within (args: code, person: {items}, date, approval)",
     CLERK, "honnin"},
    {"movein", csd_cmd_movein,
     "record move-ins and send 転入通知 (args: moves: [{person, from, date}...]); all or "
     "nothing",
     CLERK, "tennyu"},
    {"import.put", csd_cmd_import_put,
     "upload a file into the import spool (args: name, offset, data: base64, last)", CLERK,
     "honnin"},
    {"import.status", csd_cmd_import_status,
     "an import job's state, progress and receipt or report (args: job; none: all recent)",
     CLERK | SUPER | JUKI_ROLE_ADMIN, "honnin"},
    {"movein.list", csd_cmd_movein_list,
     "move-ins recorded here and the answer to each notice (args: status, limit)", CLERK | SUPER,
     "tennyu"},
    {"movein.resolve", csd_cmd_movein_resolve,
     "resolve a move-in whose 転入通知 was refused (args: code, withdraw, note)", CLERK | SUPER,
     "tennyu"},
    {"tennyu.refused", csd_cmd_tennyu_refused,
     "転入通知 refused here, with the precise reason (args: limit)",
     CLERK | SUPER | JUKI_ROLE_AUDITOR, "tennyu"},
    /* The resident card register: clerks at the counter; invalidation is a supervisor's. */
    {"card.issue", csd_cmd_card_issue,
     "record a 住民基本台帳カード issued to a resident here (args: code, serial)", CLERK, "honnin"},
    {"card.show", csd_cmd_card_show, "a card and its changes (args: serial | code)", CLERK | SUPER,
     "honnin"},
    {"card.suspend", csd_cmd_card_suspend, "suspend a card reported lost (args: serial, reason)",
     CLERK | SUPER, "honnin"},
    {"card.resume", csd_cmd_card_resume, "a suspended card found again (args: serial)",
     CLERK | SUPER, "honnin"},
    {"card.collect", csd_cmd_card_collect, "a card handed back (args: serial); final",
     CLERK | SUPER, "honnin"},
    {"card.invalidate", csd_cmd_card_invalidate, "invalidate a card (args: serial, reason); final",
     SUPER, "honnin"},
    {"card.list", csd_cmd_card_list, "the cards recorded here (args: state)", CLERK | SUPER,
     "honnin"},
    /* Wide-area copies (第6-4): clerks at either end; only a clerk prints (第4-8(3)). */
    {"copy.request", csd_cmd_copy_request,
     "send a wide-area copy request to the 住所地 (args: person, requester, home, items, "
     "copies, household)",
     CLERK, "honnin"},
    {"copy.list", csd_cmd_copy_list, "copy requests issued and received here (args: state)",
     CLERK | SUPER, "honnin"},
    {"copy.show", csd_cmd_copy_show, "a copy request, its answer and its prints (args: id)",
     CLERK | SUPER, "honnin"},
    {"copy.review", csd_cmd_copy_review,
     "approve or refuse an answer before it is sent (args: id, decision, reason)", CLERK | SUPER,
     "honnin"},
    {"copy.print", csd_cmd_copy_print,
     "take the next form serial for an answered request and hand back the copy "
     "(args: id, printer)",
     CLERK, "honnin"},
    {"forms.receive", csd_cmd_forms_receive,
     "record a range of serial-numbered forms received (args: first, last, note)", SUPER, "honnin"},
    {"forms.count", csd_cmd_forms_count, "the forms stock, reconciled (args: on_hand)",
     CLERK | SUPER | JUKI_ROLE_AUDITOR, "honnin"},
    {"forms.spoil", csd_cmd_forms_spoil, "a spoiled form, with its reason (args: serial, reason)",
     CLERK | SUPER, "honnin"},
    /* The special move-out/in with the resident card (第6-5): clerks at either end. */
    {"tokurei.moveout", csd_cmd_tokurei_moveout,
     "at the 転出地: record a 付記転出届 of a holder of a valid card (args: code, card, to, "
     "new_address, date)",
     CLERK, "honnin"},
    {"tokurei.movein", csd_cmd_tokurei_movein,
     "at the 転入地: record a 最初の転入届 and ask the 転出地 for the 転出証明書情報 (args: code, "
     "name, birth, card, from)",
     CLERK, "honnin"},
    {"tokurei.collect", csd_cmd_tokurei_collect,
     "at the 転入地: the card collected after review; the 転出地 told, the 転出証明書情報 "
     "to the resident record system (args: id)",
     CLERK, "honnin"},
    {"tokurei.show", csd_cmd_tokurei_show, "a special move and its 転出証明書情報 (args: id)",
     CLERK | SUPER, "honnin"},
    {"tokurei.list", csd_cmd_tokurei_list, "the special moves recorded here, both sides",
     CLERK | SUPER, "honnin"},
    JUKI_REPORT_CMDS,
    {NULL, NULL, NULL, 0, NULL},
};

static const char *const csd_datasets[] = {"honnin", "tennyu", NULL};

static const char *
csd_honnin_dest(struct juki_node *node, size_t i)
{
	return i == 0 ? ((struct csd *)juki_node_priv(node))->pref.urn : NULL;
}

/* The prefectural server: configured, or the one of our prefecture. */
static int
resolve_pref(const struct csd_conf *conf, struct juki_ident *pref, char *err, size_t errlen)
{
	struct juki_ident self;
	char code[3];

	if (conf->prefecture != NULL) {
		if (juki_ident_parse(conf->prefecture, pref) != 0 || pref->kind != JUKI_KIND_PREF) {
			snprintf(err, errlen, "prefecture: %s is not a prefectural server",
				 conf->prefecture);
			return JUKI_ECONFIG;
		}
		return 0;
	}
	if (juki_ident_parse(conf->node.node, &self) != 0 || juki_ident_pref_of(&self, code) != 0) {
		snprintf(err, errlen, "node: %s has no prefecture", conf->node.node);
		return JUKI_ECONFIG;
	}
	return juki_ident_node(JUKI_KIND_PREF, code, pref);
}

static int
csd_check(const void *confp, char *err, size_t errlen)
{
	const struct csd_conf *conf = confp;
	struct juki_ident pref;
	int rc;

	if ((rc = resolve_pref(conf, &pref, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = csd_spool_check(conf->import.spool, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = csd_copies_check(&conf->copy, err, errlen)) != 0) {
		return rc;
	}
	return csd_tokurei_check(&conf->tokurei, err, errlen);
}

static int
csd_started(struct juki_node *node, char *err, size_t errlen)
{
	struct csd *cs = juki_node_priv(node);
	int rc;

	cs->node = node;
	if ((rc = resolve_pref(csd_conf(node), &cs->pref, err, errlen)) != 0) {
		return rc;
	}
	cs->reports = juki_reports_start(node, cs->pref.urn, csd_conf(node)->report_poll);
	if (cs->reports == NULL) {
		snprintf(err, errlen, "reports: out of memory");
		return JUKI_ENOMEM;
	}
	if ((rc = csd_spool_new(cs, &cs->spool, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = csd_copies_start(cs, &cs->copies, err, errlen)) != 0) {
		return rc;
	}
	return csd_tokurei_start(cs, &cs->tokurei, err, errlen);
}

/* A new configuration that csd_check() passed: its prefecture resolves. */
static void
csd_reloaded(struct juki_node *node)
{
	struct csd *cs = juki_node_priv(node);
	char err[256];

	(void)resolve_pref(csd_conf(node), &cs->pref, err, sizeof(err));
	juki_reports_set(cs->reports, cs->pref.urn, csd_conf(node)->report_poll);
}

static void
csd_stopping(struct juki_node *node)
{
	struct csd *cs = juki_node_priv(node);

	csd_tokurei_stop(cs->tokurei);
	cs->tokurei = NULL;
	csd_copies_stop(cs->copies);
	cs->copies = NULL;
	csd_spool_free(cs->spool);
	cs->spool = NULL;
	juki_reports_stop(cs->reports);
	cs->reports = NULL;
}

/* The periods of the CS's own records: copy.keep and tokurei.keep. */
static void
csd_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	csd_copies_purge_conf(node, conf);
	csd_tokurei_purge_conf(node, conf);
}

static const struct juki_node_spec csd_spec = {
    .daemon = "juki-csd",
    .kind = JUKI_KIND_CS,
    .schemas = csd_schemas,
    .nschemas = 6,
    .handlers = csd_handlers,
    .cmds = csd_cmds,
    .on_ack = csd_on_ack,
    .status = csd_status,
    .honnin_dest = csd_honnin_dest,
    .purge = csd_purge_rules,
    .purge_files = csd_spool_purge,
    .purge_conf = csd_purge_conf,
    .datasets = csd_datasets,
    .size = sizeof(struct csd),
    .conf_node = offsetof(struct csd_conf, node),
    .check = csd_check,
    .started = csd_started,
    .reloaded = csd_reloaded,
    .stopping = csd_stopping,
};

const struct juki_daemon_ops csd_ops = {
    .name = "juki-csd",
    .summary = "juki municipal communication server (コミュニケーションサーバ)",
    .default_config = "/etc/juki/csd.yaml",
    .conf_table = csd_conf_keys,
    .conf_size = sizeof(struct csd_conf),
    JUKI_NODE_DAEMON_OPS(csd_spec),
};
