/*
 * The stock of serial-numbered forms a certified copy is printed on
 * (帳票の管理, 第4-8(3)ア) and the print itself (copy.print): ranges
 * received, each serial used once — by a print or spoiled with a reason —
 * and the count reconciled against the sheets on hand.  A print records
 * the operator, the time, the serial, the printer and the request's id;
 * never the person's data.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "copies.h"
#include "copymsg.h"
#include "csd.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/opcmds.h"

#define SERIAL_LAST   INT64_C(999999999) /* nine digits on the sheet */
#define RANGE_MAX     INT64_C(1000000)   /* sheets in one range received */
#define PRINTER_MAX   127
#define FORM_NOTE_MAX 200

json_t *csd_copy_get(struct csd *cs, const char *id);

static const char *
who_of(struct csd *cs)
{
	const struct juki_caller *c = juki_opcmds_caller(juki_node_opcmds(cs->node));

	return c != NULL ? c->who : juki_node_self(cs->node)->urn;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
one_int(struct juki_store *store, const char *sql, int64_t a, int64_t b, int64_t *out)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
		   ? sqlite3_column_int64(st, 0)
		   : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? 0 : JUKI_ESTORE;
}

static int
serial_of(const json_t *args, const char *key, int64_t *out, struct juki_ctl_error *err)
{
	const json_t *v = json_object_get(args, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > SERIAL_LAST) {
		return juki_ctl_fail(err, "usage", "%s: a serial from 1 to %lld", key,
				     (long long)SERIAL_LAST);
	}
	*out = json_integer_value(v);
	return 0;
}

static int64_t
next_serial(struct juki_store *store)
{
	static const char sql_next[] =
	    "SELECT min(s) FROM (SELECT r.first AS s FROM form_range r WHERE ?1 = ?2"
	    " UNION ALL SELECT u.serial + 1 FROM form_use u) c"
	    " WHERE EXISTS (SELECT 1 FROM form_range r WHERE c.s BETWEEN r.first AND r.last)"
	    " AND NOT EXISTS (SELECT 1 FROM form_use u WHERE u.serial = c.s)";
	int64_t next = -1;

	if (one_int(store, sql_next, 0, 0, &next) != 0) {
		return JUKI_ESTORE;
	}
	return next;
}

/* The stock: received, printed, spoiled, unused, and the next serial (-1: none). */
static json_t *
stock(struct juki_store *store)
{
	static const char sql_recv[] = "SELECT coalesce(sum(last - first + 1), 0) FROM form_range"
				       " WHERE ?1 = ?2";
	static const char sql_used[] = "SELECT count(*) FROM form_use WHERE kind = 'printed'"
				       " AND ?1 = ?2";
	static const char sql_spoil[] = "SELECT count(*) FROM form_use WHERE kind = 'spoiled'"
					" AND ?1 = ?2";
	static const char sql_ranges[] =
	    "SELECT first, last, received_ms, who, note FROM form_range"
	    " ORDER BY first";
	int64_t recv = 0, used = 0, spoiled = 0, next = -1;
	json_t *ranges = json_array();
	sqlite3_stmt *st;

	if (one_int(store, sql_recv, 0, 0, &recv) != 0 ||
	    one_int(store, sql_used, 0, 0, &used) != 0 ||
	    one_int(store, sql_spoil, 0, 0, &spoiled) != 0 ||
	    (st = juki_store_prepare(store, sql_ranges)) == NULL) {
		json_decref(ranges);
		return NULL;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		char when[32];

		juki_clock_format(sqlite3_column_int64(st, 2), when, sizeof(when));
		json_array_append_new(ranges,
				      json_pack("{s:I,s:I,s:s,s:s,s:s?}", "first",
						(json_int_t)sqlite3_column_int64(st, 0), "last",
						(json_int_t)sqlite3_column_int64(st, 1), "received",
						when, "who", sqlite3_column_text(st, 3), "note",
						sqlite3_column_text(st, 4)));
	}
	sqlite3_reset(st);
	next = next_serial(store);
	if (next < -1) {
		json_decref(ranges);
		return NULL;
	}
	return json_pack("{s:I,s:I,s:I,s:I,s:o,s:o}", "received", (json_int_t)recv, "printed",
			 (json_int_t)used, "spoiled", (json_int_t)spoiled, "unused",
			 (json_int_t)(recv - used - spoiled), "next",
			 next > 0 ? json_integer(next) : json_null(), "ranges", ranges);
}

int
csd_cmd_forms_receive(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_overlap[] = "SELECT count(*) FROM form_range"
					  " WHERE first <= ?2 AND last >= ?1";
	static const char sql_put[] = "INSERT INTO form_range (first, last, received_ms, who, note)"
				      " VALUES (?1, ?2, ?3, ?4, ?5)";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *note = json_string_value(json_object_get(args, "note"));
	int64_t first, last, n;
	char check[96], target[48];
	sqlite3_stmt *st;
	int rc;

	if ((rc = serial_of(args, "first", &first, err)) != 0 ||
	    (rc = serial_of(args, "last", &last, err)) != 0) {
		return rc;
	}
	snprintf(target, sizeof(target), "forms %lld-%lld", (long long)first, (long long)last);
	juki_opcmds_note(juki_node_opcmds(cs->node), target, NULL);
	if (last < first || last - first + 1 > RANGE_MAX) {
		return juki_ctl_fail(err, "invalid", "last: from first to first + %lld",
				     (long long)(RANGE_MAX - 1));
	}
	if (note != NULL && juki_text_valid(note, FORM_NOTE_MAX, check, sizeof(check)) != 0) {
		return juki_ctl_fail(err, "invalid", "note: %s", check);
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	if ((rc = one_int(store, sql_overlap, first, last, &n)) != 0) {
		goto fail;
	}
	if (n > 0) {
		juki_store_rollback(store);
		return juki_ctl_fail(err, "conflict",
				     "serials %lld-%lld: some were received before",
				     (long long)first, (long long)last);
	}
	if ((st = juki_store_prepare(store, sql_put)) == NULL) {
		rc = JUKI_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_int64(st, 3, juki_node_now_ms(cs->node));
	sqlite3_bind_text(st, 4, who_of(cs), -1, SQLITE_TRANSIENT);
	if (note != NULL) {
		sqlite3_bind_text(st, 5, note, -1, SQLITE_TRANSIENT);
	}
	if ((rc = step_done(st)) != 0 || (rc = juki_store_commit(store)) != 0) {
		goto fail;
	}
	*result = stock(store);
	return *result != NULL ? 0 : JUKI_ENOMEM;
fail:
	juki_store_rollback(store);
	return rc;
}

int
csd_cmd_forms_count(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const json_t *on_hand = json_object_get(args, "on_hand");
	json_t *out;

	if (on_hand != NULL && (!json_is_integer(on_hand) || json_integer_value(on_hand) < 0)) {
		return juki_ctl_fail(err, "usage", "on_hand: the sheets counted, 0 or more");
	}
	if ((out = stock(juki_node_store(cs->node))) == NULL) {
		return JUKI_ENOMEM;
	}
	if (on_hand != NULL) {
		json_int_t unused = json_integer_value(json_object_get(out, "unused"));
		int ok = json_integer_value(on_hand) == unused;

		json_object_set(out, "on_hand", (json_t *)on_hand);
		json_object_set_new(out, "reconciled", json_boolean(ok));
		if (!ok) {
			/* Sheets missing or too many: 責任者 looks into it (第4-8(3)ア). */
			juki_alert(juki_node_alerts(cs->node), "forms-mismatch", NULL, NULL,
				   "forms counted %lld, the stock says %lld unused",
				   (long long)json_integer_value(on_hand), (long long)unused);
			juki_opcmds_note(juki_node_opcmds(cs->node), "forms", "mismatch");
		} else {
			juki_opcmds_note(juki_node_opcmds(cs->node), "forms", "reconciled");
		}
	}
	*result = out;
	return 0;
}

/* Use serial (printed or spoiled): 0, or a refusal in err. */
static int
use_serial(struct csd *cs, int64_t serial, const char *kind, const char *request_id,
	   const char *reason, const char *printer, struct juki_ctl_error *err)
{
	static const char sql_in[] = "SELECT count(*) FROM form_range"
				     " WHERE ?1 BETWEEN first AND last AND ?2 = ?2";
	static const char sql_used[] = "SELECT count(*) FROM form_use WHERE serial = ?1"
				       " AND ?2 = ?2";
	static const char sql_put[] =
	    "INSERT INTO form_use (serial, kind, request_id, reason, printer, who, at_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	struct juki_store *store = juki_node_store(cs->node);
	sqlite3_stmt *st;
	int64_t n;
	int rc;

	if ((rc = one_int(store, sql_in, serial, 0, &n)) != 0) {
		return rc;
	}
	if (n == 0) {
		return juki_ctl_fail(err, "not-found", "serial %lld: not a form received here",
				     (long long)serial);
	}
	if ((rc = one_int(store, sql_used, serial, 0, &n)) != 0) {
		return rc;
	}
	if (n > 0) {
		return juki_ctl_fail(err, "conflict", "serial %lld: used before",
				     (long long)serial);
	}
	if ((st = juki_store_prepare(store, sql_put)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, serial);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (request_id != NULL) {
		sqlite3_bind_text(st, 3, request_id, -1, SQLITE_STATIC);
	}
	if (reason != NULL) {
		sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	}
	if (printer != NULL) {
		sqlite3_bind_text(st, 5, printer, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 6, who_of(cs), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, juki_node_now_ms(cs->node));
	return step_done(st);
}

int
csd_cmd_forms_spoil(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *reason = json_string_value(json_object_get(args, "reason"));
	char check[96], target[32];
	int64_t serial;
	int rc;

	if ((rc = serial_of(args, "serial", &serial, err)) != 0) {
		return rc;
	}
	snprintf(target, sizeof(target), "form %lld", (long long)serial);
	juki_opcmds_note(juki_node_opcmds(cs->node), target, reason);
	if (reason == NULL || reason[0] == '\0') {
		return juki_ctl_fail(err, "usage", "reason: required");
	}
	if (juki_text_valid(reason, FORM_NOTE_MAX, check, sizeof(check)) != 0) {
		return juki_ctl_fail(err, "invalid", "reason: %s", check);
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	rc = use_serial(cs, serial, "spoiled", NULL, reason, NULL, err);
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		return rc;
	}
	*result = stock(store);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/*
 * copy.print (args: id, printer): take the next serial of the stock for
 * request id, answered here, and hand back what juki-ctl prints.  A
 * request is printed at most as many times as copies it asked for.
 */
int
csd_cmd_copy_print(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_prints[] = "SELECT count(*) FROM form_use WHERE request_id = ?1"
					 " AND kind = 'printed'";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *id = json_string_value(json_object_get(args, "id"));
	const char *printer = json_string_value(json_object_get(args, "printer"));
	const char *mayor = csd_conf(cs->node)->copy.mayor;
	char target[JUKI_UUID_LEN + 1], detail[48], today[11];
	json_t *row;
	sqlite3_stmt *st;
	int64_t serial, done = 0, copies;
	int rc;

	if (id == NULL || !juki_uuid_valid(id)) {
		return juki_ctl_fail(err, "usage", "id: a request id (UUIDv7)");
	}
	snprintf(target, sizeof(target), "%s", id);
	juki_opcmds_note(juki_node_opcmds(cs->node), target, NULL);
	if (printer == NULL || printer[0] == '\0' || strlen(printer) > PRINTER_MAX ||
	    strspn(printer, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
		strlen(printer)) {
		return juki_ctl_fail(err, "usage",
				     "printer: the terminal's CUPS queue (letters, digits, - _ .)");
	}
	if (mayor == NULL) {
		return juki_ctl_fail(err, "conflict",
				     "copy.mayor is not configured: this CS prints no copies");
	}
	if ((row = csd_copy_get(cs, id)) == NULL ||
	    strcmp(json_string_value(json_object_get(row, "side")), "issued") != 0) {
		json_decref(row);
		return juki_ctl_fail(err, "not-found", "no copy request %s issued here", id);
	}
	if (strcmp(json_string_value(json_object_get(row, "state")), "answered") != 0) {
		rc = juki_ctl_fail(err, "conflict", "request %s is %s: nothing to print", id,
				   json_string_value(json_object_get(row, "state")));
		json_decref(row);
		return rc;
	}
	copies = json_integer_value(json_object_get(json_object_get(row, "request"), "copies"));
	if ((rc = juki_store_begin(store)) != 0) {
		json_decref(row);
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_prints)) == NULL) {
		rc = JUKI_ESTORE;
		goto fail;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		done = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (done >= copies) {
		rc = juki_ctl_fail(err, "conflict", "request %s: its %lld copies are printed", id,
				   (long long)copies);
		goto fail;
	}
	serial = next_serial(store);
	if (serial < 0) {
		rc = serial == -1 ? juki_ctl_fail(err, "conflict",
						  "no forms in stock: juki-ctl forms receive")
				  : (int)serial;
		if (serial == -1) {
			juki_alert(juki_node_alerts(cs->node), "forms-empty", NULL, NULL,
				   "a copy could not be printed: no forms in stock");
		}
		goto fail;
	}
	if ((rc = use_serial(cs, serial, "printed", id, NULL, printer, err)) != 0 ||
	    (rc = juki_store_commit(store)) != 0) {
		goto fail;
	}
	snprintf(detail, sizeof(detail), "serial %lld", (long long)serial);
	juki_opcmds_note(juki_node_opcmds(cs->node), target, detail);
	juki_clock_date(juki_node_now_ms(cs->node), today, sizeof(today));
	json_object_set_new(row, "serial", json_integer(serial));
	json_object_set_new(row, "mayor", json_string(mayor));
	json_object_set_new(row, "date", json_string(today));
	json_object_set_new(row, "printer", json_string(printer));
	json_object_set_new(row, "issuer", json_string(juki_node_self(cs->node)->id));
	*result = row;
	return 0;
fail:
	juki_store_rollback(store);
	json_decref(row);
	return rc;
}
