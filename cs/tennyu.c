#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csd.h"
#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/node/report.h"
#include "juki/records/person.h"
#include "juki/store/outbox.h"

#define REASON_TENNYU     "転入"
#define REASON_TENSHUTSU  "転出"
#define REASON_REGISTERED "職権記載"
#define REASON_CORRECTED  "職権修正"
#define REASON_WITHDRAWN  "職権消除"
/* The precise reason kept here when a notice's birth date or sex differ from the record. */
#define R_MISMATCH "mismatch"
/* Work per control request, so that one request cannot hold the loop for long. */
#define BATCH_LIMIT 100000

static const char sql_movein_put[] =
    "INSERT INTO movein (notice_id, code, from_lgcode, move_date, status, created_ms,"
    " updated_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5)";
static const char sql_movein_answer[] =
    "UPDATE movein SET status = ?2, reason = ?3, detail = ?4, updated_ms = ?5"
    " WHERE notice_id = ?1";
static const char sql_moveout_put[] =
    "INSERT INTO moveout (tennyu_id, code, to_lgcode, move_date, confirm_id, confirm_status,"
    " received_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6)";
static const char sql_moveout_answer[] =
    "UPDATE moveout SET confirm_status = ?2 WHERE confirm_id = ?1";

static struct csd *
csd_of(void *ctx)
{
	return juki_node_priv(ctx);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL || v[0] == '\0') {
		sqlite3_bind_null(st, i);
	} else {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	}
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* Fetch the array under key (or args itself as a one-element list when it is the item). */
static int
items_of(const json_t *args, const char *key, const json_t **items, struct juki_ctl_error *err)
{
	*items = json_object_get(args, key);
	if (!json_is_array(*items) || json_array_size(*items) == 0) {
		return juki_ctl_fail(err, "usage", "%s: a non-empty list", key);
	}
	if (json_array_size(*items) > BATCH_LIMIT) {
		return juki_ctl_fail(err, "usage", "%s: at most %d per request", key, BATCH_LIMIT);
	}
	return 0;
}

static int
field_error(struct juki_ctl_error *err, const char *list, size_t i, const char *prefix,
	    const struct juki_field_error *fe)
{
	return juki_ctl_fail(err, "invalid", "%s[%zu].%s%s: %s (%s)", list, i, prefix, fe->field,
			     fe->detail, fe->reason);
}

/* Undo an open transaction after a failed command; the command's error stands. */
static int
abandon(struct juki_store *store, int rc)
{
	juki_store_rollback(store);
	return rc;
}

/* The next version of code here: one more than what is held, 1 for someone new. */
static int
next_version(struct csd *cs, const char *code, struct juki_change *held, int *resident)
{
	int rc = csd_held(cs, code, held);

	*resident = 0;
	if (rc == JUKI_ENOTFOUND) {
		memset(held, 0, sizeof(*held));
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	*resident = csd_resident(cs, held);
	return 0;
}

/* A change record for p made here now, of reason, dated date, as version. */
static void
change_for(struct csd *cs, const struct juki_person *p, const char *reason, const char *date,
	   int64_t version, struct juki_change *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->code, sizeof(c->code), "%s", p->code);
	snprintf(c->lgcode, sizeof(c->lgcode), "%.6s", juki_node_self(cs->node)->id);
	c->version = version;
	c->reason = juki_reason_find(reason);
	snprintf(c->reason_date, sizeof(c->reason_date), "%s", date);
	c->person = *p;
	snprintf(c->person.lgcode, sizeof(c->person.lgcode), "%.6s", juki_node_self(cs->node)->id);
}

int
csd_cmd_resident_add(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = csd_of(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const json_t *items, *item;
	struct csd_op op;
	char today[11];
	size_t i;
	int rc;

	if ((rc = items_of(args, "residents", &items, err)) != 0) {
		return rc;
	}
	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	juki_clock_date(op.now, today, sizeof(today));
	if ((rc = juki_store_begin(store)) != 0) {
		csd_op_free(&op);
		return rc;
	}
	json_array_foreach(items, i, item)
	{
		struct juki_person p;
		struct juki_field_error fe;
		struct juki_change held, c;
		json_t *copy = json_deep_copy(item);
		int resident;

		/* A resident lives here: the code of the address is ours unless stated. */
		if (json_is_object(copy) && json_object_get(copy, "lgcode") == NULL) {
			json_object_set_new(copy, "lgcode",
					    json_string(juki_node_self(cs->node)->id));
		}
		rc = juki_person_from_json(copy, 0, &p, &fe);
		json_decref(copy);
		if (rc != 0) {
			rc = field_error(err, "residents", i, "", &fe);
			goto fail;
		}
		if (strcmp(p.lgcode, juki_node_self(cs->node)->id) != 0) {
			rc = juki_ctl_fail(err, "invalid",
					   "residents[%zu].lgcode: not this municipality", i);
			goto fail;
		}
		if (juki_person_dates_check(&p, op.now, &fe) != 0) {
			rc = field_error(err, "residents", i, "", &fe);
			goto fail;
		}
		if ((rc = next_version(cs, p.code, &held, &resident)) != 0) {
			goto fail;
		}
		if (resident) {
			rc = juki_ctl_fail(err, "conflict",
					   "residents[%zu].code: already resident here", i);
			goto fail;
		}
		change_for(cs, &p, REASON_REGISTERED, today, held.version + 1, &c);
		if ((rc = csd_op_record(&op, &c)) != 0) {
			goto fail;
		}
	}
	if ((rc = csd_op_finish(&op)) != 0 || (rc = juki_store_commit(store)) != 0) {
		goto fail;
	}
	csd_op_free(&op);
	log_info("csd: %zu residents registered", json_array_size(items));
	juki_node_kick(cs->node);
	*result = json_pack("{s:I}", "added", (json_int_t)json_array_size(items));
	return 0;
fail:
	csd_op_free(&op);
	return abandon(store, rc);
}

/*
 * 職権修正: a clerk corrects recorded items of a resident.  Important input
 * (第4-8(2)): it takes a supervisor's approval given beforehand, or is
 * recorded pending one, to be given within operator.approve_within.
 */
int
csd_cmd_resident_correct(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char *const fields[] = {"name", "kana", "birth", "sex", "address", NULL};
	struct csd *cs = csd_of(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const json_t *fix = json_object_get(args, "person"), *v;
	struct juki_field_error fe;
	struct juki_change held, c;
	struct juki_person p;
	struct csd_op op;
	char code[JUKI_JUMIN_CODE_LEN + 1], date[11];
	json_t *merged, *approval = NULL;
	const char *key;
	int resident, rc;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "code: %s (%s)", fe.detail, fe.reason);
	}
	if (!json_is_object(fix) || json_object_size(fix) == 0) {
		return juki_ctl_fail(err, "usage", "person: the items to correct");
	}
	json_object_foreach((json_t *)fix, key, v)
	{
		size_t i;

		for (i = 0; fields[i] != NULL && strcmp(fields[i], key) != 0; i++) {
		}
		if (fields[i] == NULL) {
			return juki_ctl_fail(err, "usage",
					     "person.%s: not an item a correction changes (name, "
					     "kana, birth, sex, address)",
					     key);
		}
	}
	if ((rc = next_version(cs, code, &held, &resident)) != 0) {
		return rc;
	}
	if (!resident) {
		return juki_ctl_fail(err, "not-found", "%s is not a resident here", code);
	}
	merged = juki_person_to_json(&held.person);
	if (merged == NULL || json_object_update(merged, (json_t *)fix) != 0) {
		json_decref(merged);
		return JUKI_ENOMEM;
	}
	rc = juki_person_from_json(merged, 0, &p, &fe);
	json_decref(merged);
	if (rc != 0) {
		return juki_ctl_fail(err, "invalid", "person.%s: %s (%s)", fe.field, fe.detail,
				     fe.reason);
	}
	if (memcmp(&p, &held.person, sizeof(p)) == 0) {
		return juki_ctl_fail(err, "conflict", "the record of %s already says that", code);
	}
	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	juki_clock_date(op.now, date, sizeof(date));
	if (json_object_get(args, "date") != NULL && juki_json_date(args, "date", date, &fe) != 0) {
		csd_op_free(&op);
		return juki_ctl_fail(err, "invalid", "date: %s", fe.detail);
	}
	if (juki_person_dates_check(&p, op.now, &fe) != 0) {
		csd_op_free(&op);
		return juki_ctl_fail(err, "invalid", "person.%s: %s (%s)", fe.field, fe.detail,
				     fe.reason);
	}
	if (juki_date_not_future(date, op.now, "date", &fe) != 0) {
		csd_op_free(&op);
		return juki_ctl_fail(err, "invalid", "date: %s (%s)", fe.detail, fe.reason);
	}
	if ((rc = juki_store_begin(store)) != 0) {
		csd_op_free(&op);
		return rc;
	}
	if ((rc = juki_opcmds_approval_take(juki_node_opcmds(cs->node), args, "correct", code,
					    &approval, err)) != 0) {
		goto fail;
	}
	change_for(cs, &p, REASON_CORRECTED, date, held.version + 1, &c);
	if ((rc = csd_op_record(&op, &c)) != 0 || (rc = csd_op_finish(&op)) != 0 ||
	    (rc = juki_store_commit(store)) != 0) {
		goto fail;
	}
	csd_op_free(&op);
	juki_node_kick(cs->node);
	juki_opcmds_approvals_check(juki_node_opcmds(cs->node));
	*result = json_pack("{s:s,s:I,s:s,s:o}", "code", code, "version", (json_int_t)c.version,
			    "reason", REASON_CORRECTED, "approval", approval);
	return 0;
fail:
	json_decref(approval);
	csd_op_free(&op);
	return abandon(store, rc);
}

static int
cases_of(struct juki_store *store, const char *code, json_t *out)
{
	static const char sql_in[] =
	    "SELECT notice_id, from_lgcode, move_date, status, reason, detail FROM movein"
	    " WHERE code = ?1 ORDER BY created_ms";
	static const char sql_out[] =
	    "SELECT tennyu_id, to_lgcode, move_date, confirm_id, confirm_status FROM moveout"
	    " WHERE code = ?1 ORDER BY received_ms";
	sqlite3_stmt *st;
	json_t *ins = json_array(), *outs = json_array();

	json_object_set_new(out, "moveins", ins);
	json_object_set_new(out, "moveouts", outs);
	if ((st = juki_store_prepare(store, sql_in)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    ins, json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?}", "notice_id",
				   sqlite3_column_text(st, 0), "from", sqlite3_column_text(st, 1),
				   "date", sqlite3_column_text(st, 2), "status",
				   sqlite3_column_text(st, 3), "reason", sqlite3_column_text(st, 4),
				   "detail", sqlite3_column_text(st, 5)));
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_out)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(outs, json_pack("{s:s,s:s,s:s,s:s,s:s}", "tennyu_id",
						      sqlite3_column_text(st, 0), "to",
						      sqlite3_column_text(st, 1), "date",
						      sqlite3_column_text(st, 2), "confirm_id",
						      sqlite3_column_text(st, 3), "confirm_status",
						      sqlite3_column_text(st, 4)));
	}
	sqlite3_reset(st);
	return 0;
}

int
csd_cmd_resident_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = csd_of(ctx);
	struct juki_field_error fe;
	struct juki_change held;
	char code[JUKI_JUMIN_CODE_LEN + 1];
	json_t *out;
	int rc;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	rc = csd_held(cs, code, &held);
	if (rc == JUKI_ENOTFOUND) {
		return juki_ctl_fail(err, "not-found", "no record of %s here", code);
	}
	if (rc != 0) {
		return rc;
	}
	out = juki_change_to_json(&held);
	if (out == NULL) {
		return JUKI_ENOMEM;
	}
	json_object_set_new(out, "status",
			    json_string(csd_resident(cs, &held) ? "resident" : "removed"));
	json_object_set_new(out, "history",
			    juki_honnin_history_json(juki_node_store(cs->node), code));
	if ((rc = cases_of(juki_node_store(cs->node), code, out)) != 0) {
		json_decref(out);
		return rc;
	}
	*result = out;
	return 0;
}

/* Record one move-in and queue its 転入通知, inside the caller's transaction. */
static int
movein_one(struct csd *cs, struct csd_op *op, const json_t *move, size_t i, json_t *notices,
	   struct juki_ctl_error *err)
{
	struct juki_store *store = juki_node_store(cs->node);
	struct juki_field_error fe;
	struct juki_person p;
	struct juki_ident old_cs;
	struct juki_change held, c;
	struct juki_msg msg;
	char from[JUKI_LGCODE_LEN + 1], date[11];
	json_t *person, *body;
	sqlite3_stmt *st;
	int rc, resident;

	if (!json_is_object(move)) {
		return juki_ctl_fail(err, "usage", "moves[%zu]: an object", i);
	}
	person = json_deep_copy(json_object_get(move, "person"));
	if (json_is_object(person) && json_object_get(person, "lgcode") == NULL) {
		json_object_set_new(person, "lgcode", json_string(juki_node_self(cs->node)->id));
	}
	rc = juki_person_from_json(person, 0, &p, &fe);
	if (rc != 0) {
		json_decref(person);
		return field_error(err, "moves", i, "person.", &fe);
	}
	if (strcmp(p.lgcode, juki_node_self(cs->node)->id) != 0) {
		json_decref(person);
		return juki_ctl_fail(err, "invalid",
				     "moves[%zu].person.lgcode: not this municipality", i);
	}
	if (juki_json_code(move, "from", 1, from, sizeof(from), &fe) != 0 ||
	    juki_json_date(move, "date", date, &fe) != 0) {
		json_decref(person);
		return field_error(err, "moves", i, "", &fe);
	}
	if (strcmp(from, juki_node_self(cs->node)->id) == 0) {
		json_decref(person);
		return juki_ctl_fail(
		    err, "invalid",
		    "moves[%zu].from: a move within the municipality is 転居, not 転入", i);
	}
	if (juki_person_dates_check(&p, op->now, &fe) != 0) {
		json_decref(person);
		return field_error(err, "moves", i, "person.", &fe);
	}
	if (juki_date_not_future(date, op->now, "date", &fe) != 0) {
		json_decref(person);
		return field_error(err, "moves", i, "", &fe);
	}
	if ((rc = next_version(cs, p.code, &held, &resident)) != 0) {
		json_decref(person);
		return rc;
	}
	if (resident) {
		json_decref(person);
		return juki_ctl_fail(err, "conflict", "moves[%zu]: %s is already resident here", i,
				     p.code);
	}
	change_for(cs, &p, REASON_TENNYU, date, held.version + 1, &c);
	if ((rc = csd_op_record(op, &c)) != 0) {
		json_decref(person);
		return rc;
	}
	juki_ident_node(JUKI_KIND_CS, from, &old_cs);
	body = json_pack("{s:o,s:s,s:s}", "person", person, "old_lgcode", from, "move_date", date);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_msg_init(&msg, JUKI_MSG_TENNYU, juki_node_self(cs->node)->urn, old_cs.urn, NULL,
			   body, juki_node_clock(cs->node));
	if (rc != 0) {
		return rc;
	}
	rc = juki_outbox_put(store, &msg, "muni", op->now, NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_movein_put)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p.code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, date, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, op->now);
		rc = step_done(st);
	}
	if (rc == 0) {
		json_array_append_new(notices, json_pack("{s:s,s:s,s:s}", "code", p.code,
							 "notice_id", msg.id, "to", old_cs.urn));
	}
	juki_msg_clear(&msg);
	return rc;
}

int
csd_cmd_movein(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = csd_of(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const json_t *items, *item;
	struct csd_op op;
	json_t *notices;
	size_t i;
	int rc;

	if ((rc = items_of(args, "moves", &items, err)) != 0) {
		return rc;
	}
	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	notices = json_array();
	if (notices == NULL || (rc = juki_store_begin(store)) != 0) {
		rc = notices == NULL ? JUKI_ENOMEM : rc;
		goto out;
	}
	json_array_foreach(items, i, item)
	{
		if ((rc = movein_one(cs, &op, item, i, notices, err)) != 0) {
			break;
		}
	}
	if (rc == 0 && (rc = csd_op_finish(&op)) == 0) {
		rc = juki_store_commit(store);
	}
	if (rc != 0) {
		juki_store_rollback(store);
		goto out;
	}
	log_info("csd: %zu move-ins recorded, 転入通知 queued", json_array_size(items));
	juki_node_kick(cs->node);
	*result = json_pack("{s:I,s:O}", "queued", (json_int_t)json_array_size(items), "notices",
			    notices);
out:
	json_decref(notices);
	csd_op_free(&op);
	return rc;
}

int
csd_cmd_movein_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT notice_id, code, from_lgcode, move_date, status, reason, detail, resolution,"
	    " resolved_ms FROM movein"
	    " WHERE ?1 IS NULL OR status = ?1 ORDER BY created_ms, code, notice_id LIMIT ?2";
	struct csd *cs = csd_of(ctx);
	const json_t *status = json_object_get(args, "status");
	const json_t *limit = json_object_get(args, "limit");
	sqlite3_stmt *st;
	json_t *rows;

	if (status != NULL && !json_is_string(status)) {
		return juki_ctl_fail(err, "usage", "status: queued, accepted or rejected");
	}
	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1)) {
		return juki_ctl_fail(err, "usage", "limit: a positive count");
	}
	st = juki_store_prepare(juki_node_store(cs->node), sql);
	rows = json_array();
	if (st == NULL || rows == NULL) {
		json_decref(rows);
		return JUKI_ESTORE;
	}
	bind_text(st, 1, json_string_value(status));
	sqlite3_bind_int64(st, 2, limit ? json_integer_value(limit) : 1000);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = json_pack(
		    "{s:s,s:s,s:s,s:s,s:s,s:s?,s:s?}", "notice_id", sqlite3_column_text(st, 0),
		    "code", sqlite3_column_text(st, 1), "from", sqlite3_column_text(st, 2), "date",
		    sqlite3_column_text(st, 3), "status", sqlite3_column_text(st, 4), "reason",
		    sqlite3_column_text(st, 5), "detail", sqlite3_column_text(st, 6));

		/* A refused notice leaves the person here unconfirmed: a clerk's task. */
		if (strcmp((const char *)sqlite3_column_text(st, 4), "rejected") == 0) {
			char when[32];

			if (sqlite3_column_type(st, 8) == SQLITE_NULL) {
				json_object_set_new(row, "task", json_string("to resolve"));
			} else {
				juki_clock_format(sqlite3_column_int64(st, 8), when, sizeof(when));
				json_object_set_new(row, "task", json_string("resolved"));
				json_object_set_new(
				    row, "resolution",
				    json_string((const char *)sqlite3_column_text(st, 7)));
				json_object_set_new(row, "resolved", json_string(when));
			}
		}
		json_array_append_new(rows, row);
	}
	sqlite3_reset(st);
	*result = json_pack("{s:o}", "moveins", rows);
	return 0;
}

/*
 * The 転入通知 from sender refused within the window, up to now, counted up
 * to max: a flood of them costs each notice no more than max index steps.
 */
static int
refusals_of(struct csd *cs, const char *sender, int64_t max, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM (SELECT 1 FROM tennyu_refusal"
				  " WHERE sender = ?1 AND received_ms > ?2 LIMIT ?3)";
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sql);
	int rc;

	*n = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2,
			   juki_node_now_ms(cs->node) - csd_conf(cs->node)->tennyu.refusal_window);
	sqlite3_bind_int64(st, 3, max);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : JUKI_ESTORE;
}

int
csd_tennyu_refused(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] =
	    "INSERT INTO tennyu_refusal (notice_id, sender, code, reason, detail, told,"
	    " received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";
	struct csd *cs = csd_of(ctx);
	const struct csd_tennyu_conf *tc = &csd_conf(cs->node)->tennyu;
	const json_t *person = json_object_get(msg->body, "person");
	const char *code = json_string_value(json_object_get(person, "code"));
	sqlite3_stmt *st;
	int64_t n;
	int rc, added;
	/*
	 * Whether the code lives here, lived here, or lives here with another
	 * birth date or sex is not the sender's to learn: one answer for all.
	 */
	int hide = strcmp(rej->reason, JUKI_R_UNKNOWN_PERSON) == 0 ||
		   strcmp(rej->reason, JUKI_R_NOT_RESIDENT) == 0 ||
		   strcmp(rej->reason, R_MISMATCH) == 0;
	const char *told = hide ? JUKI_R_NO_MATCH : rej->reason;

	if ((st = juki_store_prepare(juki_node_store(cs->node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, msg->from, -1, SQLITE_STATIC);
	bind_text(st, 3, code != NULL && strlen(code) <= JUKI_JUMIN_CODE_LEN ? code : NULL);
	sqlite3_bind_text(st, 4, rej->reason, -1, SQLITE_STATIC);
	bind_text(st, 5, rej->detail);
	sqlite3_bind_text(st, 6, told, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, juki_node_now_ms(cs->node));
	rc = sqlite3_step(st);
	added = rc == SQLITE_DONE && sqlite3_changes(juki_store_db(juki_node_store(cs->node))) == 1;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	/* A redelivered refusal is kept and counted once. */
	if (added) {
		if ((rc = refusals_of(cs, msg->from, tc->refusal_limit + 1, &n)) != 0) {
			return rc;
		}
		/* The refusal that reaches the limit: once per burst. */
		if (n == tc->refusal_limit) {
			juki_alert(juki_node_alerts(cs->node), "refusal-burst", msg->from, NULL,
				   "%lld 転入通知 refused within %lld s; further notices are "
				   "refused as rate-limited until fewer are",
				   (long long)n, (long long)(tc->refusal_window / 1000));
		}
	}
	if (hide) {
		snprintf(rej->reason, sizeof(rej->reason), "%s", JUKI_R_NO_MATCH);
		snprintf(rej->detail, sizeof(rej->detail), "%s",
			 "no resident here matches the notice (code, birth date and sex)");
	}
	return 0;
}

int
csd_cmd_movein_resolve(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_open[] =
	    "SELECT notice_id FROM movein WHERE code = ?1 AND status = 'rejected'"
	    " AND resolved_ms IS NULL ORDER BY created_ms DESC LIMIT 1";
	static const char sql_done[] =
	    "UPDATE movein SET resolved_ms = ?2, resolution = ?3, updated_ms = ?2"
	    " WHERE notice_id = ?1";
	struct csd *cs = csd_of(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const json_t *w = json_object_get(args, "withdraw");
	struct juki_field_error fe;
	struct juki_change held, gone;
	struct csd_op op;
	char code[JUKI_JUMIN_CODE_LEN + 1], notice[64] = "", today[11];
	const char *how;
	sqlite3_stmt *st;
	int withdraw = json_is_true(w), resident, rc;

	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "usage", "code: %s", fe.detail);
	}
	if (w != NULL && !json_is_boolean(w)) {
		return juki_ctl_fail(err, "usage", "withdraw: true or false");
	}
	how = withdraw ? "withdrawn" : "resolved";
	if ((st = juki_store_prepare(store, sql_open)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(notice, sizeof(notice), "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	if (notice[0] == '\0') {
		return juki_ctl_fail(err, "not-found", "no refused move-in of %s to resolve", code);
	}
	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	juki_clock_date(op.now, today, sizeof(today));
	if ((rc = juki_store_begin(store)) != 0) {
		csd_op_free(&op);
		return rc;
	}
	if (withdraw) {
		/* The move-in did not happen: its record here ends, and with it the conflict. */
		if ((rc = next_version(cs, code, &held, &resident)) != 0) {
			goto fail;
		}
		if (!resident) {
			rc = juki_ctl_fail(err, "conflict", "%s is not resident here", code);
			goto fail;
		}
		change_for(cs, &held.person, REASON_WITHDRAWN, today, held.version + 1, &gone);
		if ((rc = csd_op_record(&op, &gone)) != 0 || (rc = csd_op_finish(&op)) != 0) {
			goto fail;
		}
	}
	if ((st = juki_store_prepare(store, sql_done)) == NULL) {
		rc = JUKI_ESTORE;
		goto fail;
	}
	sqlite3_bind_text(st, 1, notice, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, op.now);
	sqlite3_bind_text(st, 3, how, -1, SQLITE_STATIC);
	if ((rc = step_done(st)) != 0 || (rc = juki_store_commit(store)) != 0) {
		goto fail;
	}
	csd_op_free(&op);
	juki_node_kick(cs->node);
	*result = json_pack("{s:s,s:s,s:s}", "code", code, "notice_id", notice, "resolution", how);
	return 0;
fail:
	csd_op_free(&op);
	return abandon(store, rc);
}

int
csd_cmd_tennyu_refused(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT notice_id, sender, code, reason, detail, told, received_ms FROM tennyu_refusal"
	    " ORDER BY received_ms DESC, notice_id LIMIT ?1";
	struct csd *cs = csd_of(ctx);
	const json_t *limit = json_object_get(args, "limit");
	sqlite3_stmt *st;
	json_t *rows;

	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1)) {
		return juki_ctl_fail(err, "usage", "limit: a positive count");
	}
	if ((st = juki_store_prepare(juki_node_store(cs->node), sql)) == NULL ||
	    (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, limit ? json_integer_value(limit) : 1000);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char when[32];

		juki_clock_format(sqlite3_column_int64(st, 6), when, sizeof(when));
		json_array_append_new(
		    rows,
		    json_pack("{s:s,s:s,s:s?,s:s,s:s?,s:s,s:s}", "notice_id",
			      sqlite3_column_text(st, 0), "from", sqlite3_column_text(st, 1),
			      "code", sqlite3_column_text(st, 2), "reason",
			      sqlite3_column_text(st, 3), "detail", sqlite3_column_text(st, 4),
			      "told", sqlite3_column_text(st, 5), "received", when));
	}
	sqlite3_reset(st);
	*result = json_pack("{s:o}", "refused", rows);
	return 0;
}

int
csd_handle_tennyu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct csd *cs = csd_of(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	struct juki_field_error fe;
	struct juki_ident sender;
	struct juki_person p;
	struct juki_msg confirm;
	struct juki_change held, gone;
	struct csd_op op;
	char old_lg[JUKI_LGCODE_LEN + 1], date[11];
	sqlite3_stmt *st;
	json_t *body;
	int64_t refused;
	int rc;

	if (juki_person_from_json(json_object_get(msg->body, "person"), 0, &p, &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "person.%s: %s", fe.field, fe.detail);
	}
	if (juki_json_code(msg->body, "old_lgcode", 1, old_lg, sizeof(old_lg), &fe) != 0 ||
	    juki_json_date(msg->body, "move_date", date, &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "%s: %s", fe.field, fe.detail);
	}
	/* The removal is dated the move: a date after today would stand for good. */
	if (juki_person_dates_check(&p, juki_node_now_ms(cs->node), &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "person.%s: %s", fe.field, fe.detail);
	}
	if (juki_date_not_future(date, juki_node_now_ms(cs->node), "move_date", &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "%s: %s", fe.field, fe.detail);
	}
	if (strcmp(old_lg, juki_node_self(cs->node)->id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "old_lgcode: not this municipality");
	}
	juki_ident_parse(msg->from, &sender);
	if (strcmp(sender.id, juki_node_self(cs->node)->id) == 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "from: a move within the municipality is 転居, not 転入");
	}
	if (strcmp(p.lgcode, sender.id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "person.lgcode: not the municipality that sent the notice");
	}
	/* A municipality past its refusals learns nothing more of who lives here for now. */
	if ((rc = refusals_of(cs, msg->from, csd_conf(cs->node)->tennyu.refusal_limit, &refused)) !=
	    0) {
		return rc;
	}
	if (refused >= csd_conf(cs->node)->tennyu.refusal_limit) {
		return juki_reject_set(
		    rej, JUKI_R_RATE_LIMITED,
		    "too many refused 転入通知 from this municipality; try later");
	}
	rc = csd_held(cs, p.code, &held);
	if (rc == JUKI_ENOTFOUND) {
		return juki_reject_set(rej, JUKI_R_UNKNOWN_PERSON, "no record of this code here");
	}
	if (rc != 0) {
		return rc;
	}
	if (!csd_resident(cs, &held)) {
		return juki_reject_set(rej, JUKI_R_NOT_RESIDENT, "already moved out");
	}
	if (strcmp(held.person.birth, p.birth) != 0 || held.person.sex != p.sex) {
		return juki_reject_set(
		    rej, R_MISMATCH,
		    "person: birth date or sex does not match the record of this code");
	}
	/* The removal keeps the identity information as held here, dated the move. */
	change_for(cs, &held.person, REASON_TENSHUTSU, date, held.version + 1, &gone);
	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	if ((rc = csd_op_record(&op, &gone)) != 0 || (rc = csd_op_finish(&op)) != 0) {
		csd_op_free(&op);
		return rc;
	}
	csd_op_free(&op);
	body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "code", p.code, "old_lgcode", old_lg,
			 "new_lgcode", sender.id, "move_date", date, "tennyu_id", msg->id);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_msg_init(&confirm, JUKI_MSG_TENSHUTSU, juki_node_self(cs->node)->urn,
			   cs->pref.urn, NULL, body, juki_node_clock(cs->node));
	if (rc != 0) {
		return rc;
	}
	rc = juki_outbox_put(store, &confirm, "honnin", juki_node_now_ms(cs->node), NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_moveout_put)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, msg->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p.code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sender.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, date, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, confirm.id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, juki_node_now_ms(cs->node));
		rc = step_done(st);
	}
	juki_msg_clear(&confirm);
	return rc;
}

int
csd_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct csd *cs = csd_of(ctx);
	const char *status = ack->status == JUKI_ACK_REJECTED ? "rejected" : "accepted";
	sqlite3_stmt *st;
	int rc;

	if (strcmp(entry->type, JUKI_MSG_TENNYU) == 0) {
		if ((st = juki_store_prepare(juki_node_store(cs->node), sql_movein_answer)) ==
		    NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
		bind_text(st, 3, ack->status == JUKI_ACK_REJECTED ? ack->reason : NULL);
		bind_text(st, 4, ack->status == JUKI_ACK_REJECTED ? ack->detail : NULL);
		sqlite3_bind_int64(st, 5, juki_node_now_ms(cs->node));
		return step_done(st);
	}
	if (strcmp(entry->type, JUKI_MSG_TENSHUTSU) == 0) {
		if ((st = juki_store_prepare(juki_node_store(cs->node), sql_moveout_answer)) ==
		    NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
		return step_done(st);
	}
	if ((rc = csd_copies_on_ack(cs, entry, ack)) != 0) {
		return rc < 0 ? rc : 0;
	}
	if ((rc = csd_tokurei_on_ack(cs, entry, ack)) != 0) {
		return rc < 0 ? rc : 0;
	}
	return juki_reports_on_ack(cs->node, entry, ack);
}
json_t *
csd_status(struct juki_node *node)
{
	static const char sql_res[] =
	    "SELECT kind = 1, count(*) FROM honnin GROUP BY kind = 1 ORDER BY 1";
	static const char sql_in[] = "SELECT status, count(*) FROM movein GROUP BY status";
	static const char sql_out[] = "SELECT count(*) FROM moveout";
	struct csd *cs = csd_of(node);
	json_t *res = json_object(), *ins = json_object();
	sqlite3_stmt *st;
	json_int_t outs = 0;

	if ((st = juki_store_prepare(juki_node_store(node), sql_res)) != NULL) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_object_set_new(res, sqlite3_column_int(st, 0) ? "removed" : "resident",
					    json_integer(sqlite3_column_int64(st, 1)));
		}
		sqlite3_reset(st);
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql_in)) != NULL) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_object_set_new(ins, (const char *)sqlite3_column_text(st, 0),
					    json_integer(sqlite3_column_int64(st, 1)));
		}
		sqlite3_reset(st);
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql_out)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			outs = sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
	}
	return json_pack("{s:s,s:o,s:o,s:I,s:o}", "prefecture", cs->pref.urn, "residents", res,
			 "moveins", ins, "moveouts", outs, "copies", csd_copies_status(cs));
}
