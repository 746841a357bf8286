#include <stdio.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/records/provision.h"
#include "juki/wire/msg.h"

const struct juki_migration juki_provision_steps[JUKI_PROVISION_NSTEPS] = {
    {1, "CREATE TABLE provisions ("
	" id TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('provide', 'use')),"
	" code TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" staff TEXT NOT NULL DEFAULT '',"
	" agreement TEXT NOT NULL DEFAULT '',"
	" jimu TEXT NOT NULL DEFAULT '',"
	" items TEXT NOT NULL,"
	" purpose TEXT NOT NULL DEFAULT '',"
	" time_ms INTEGER NOT NULL,"
	" request TEXT NOT NULL DEFAULT '',"
	" origin TEXT NOT NULL,"
	" notified INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE INDEX provisions_code ON provisions(code);"
	"CREATE INDEX provisions_time ON provisions(time_ms);"},
};

/* After "provision", at the national server only (provision.h). */
const struct juki_migration juki_provision_national_steps[JUKI_PROVISION_NATIONAL_NSTEPS] = {
    {1, "DROP INDEX IF EXISTS provisions_code;"
	/*
	 * The provision notices' sender asks for the records not yet notified,
	 * oldest first, every round: without this it would walk every record
	 * of the keep period (years) through provisions_time to find them.
	 */
	"CREATE INDEX provisions_unnotified ON provisions(time_ms, id) WHERE notified = 0;"},
};

const char juki_provision_purge_count[] = "SELECT count(*) FROM provisions WHERE time_ms < ?1";
const char juki_provision_purge_delete[] =
    "DELETE FROM provisions WHERE id IN"
    " (SELECT id FROM provisions WHERE time_ms < ?1 LIMIT ?2)";

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

int
juki_provision_add(struct juki_store *store, const struct juki_provision *p)
{
	static const char sql[] =
	    "INSERT INTO provisions (id, kind, code, body, staff, agreement, jimu, items, purpose,"
	    " time_ms, request, origin, notified)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
	char id[JUKI_UUID_LEN + 1];
	sqlite3_stmt *st;
	int rc;

	if (p == NULL || p->kind == NULL ||
	    (strcmp(p->kind, "provide") != 0 && strcmp(p->kind, "use") != 0) || p->code == NULL ||
	    p->code[0] == '\0' || p->body == NULL || p->body[0] == '\0' || p->items == NULL ||
	    p->origin == NULL || p->origin[0] == '\0') {
		return JUKI_EINVAL;
	}
	if (p->id != NULL && p->id[0] != '\0') {
		snprintf(id, sizeof(id), "%s", p->id);
	} else if ((rc = juki_uuid7(p->time_ms, id)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, JUKI_UUID_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, or_empty(p->staff), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, or_empty(p->agreement), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, or_empty(p->jimu), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, p->items, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, or_empty(p->purpose), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, p->time_ms);
	sqlite3_bind_text(st, 11, or_empty(p->request), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, p->origin, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, p->notified ? 1 : 0);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static json_t *
items_array(const char *list)
{
	json_t *a = json_array();
	const char *p = list;

	while (a != NULL && p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

		if (n > 0) {
			json_array_append_new(a, json_stringn(p, n));
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return a;
}

json_t *
juki_provision_for_code(struct juki_store *store, const char *code)
{
	static const char sql[] =
	    "SELECT id, kind, code, body, staff, agreement, jimu, items, purpose, time_ms, request,"
	    " origin FROM provisions WHERE code = ?1 ORDER BY time_ms, id";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();
	char when[40];
	int rc;

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		juki_clock_format(sqlite3_column_int64(st, 9), when, sizeof(when));
		json_array_append_new(
		    out, json_pack(
			     "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s}", "id",
			     sqlite3_column_text(st, 0), "kind", sqlite3_column_text(st, 1), "code",
			     sqlite3_column_text(st, 2), "body", sqlite3_column_text(st, 3),
			     "staff", sqlite3_column_text(st, 4), "agreement",
			     sqlite3_column_text(st, 5), "jimu", sqlite3_column_text(st, 6),
			     "items", items_array((const char *)sqlite3_column_text(st, 7)),
			     "purpose", sqlite3_column_text(st, 8), "time", when, "request",
			     sqlite3_column_text(st, 10), "origin", sqlite3_column_text(st, 11)));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int64_t
juki_provision_count(struct juki_store *store)
{
	static const char sql[] = "SELECT count(*) FROM provisions";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int64_t n = 0;

	if (st != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			n = sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
	}
	return n;
}

int
juki_provision_erase_before(struct juki_store *store, int64_t cutoff_ms, int64_t *removed)
{
	sqlite3_stmt *st;
	int64_t total = 0;
	int rc, n;

	if (removed != NULL) {
		*removed = 0;
	}
	if (juki_store_in_txn(store)) {
		return JUKI_EINVAL;
	}
	do {
		if ((rc = juki_store_begin(store)) != 0) {
			return rc;
		}
		if ((st = juki_store_prepare(store, juki_provision_purge_delete)) == NULL) {
			juki_store_rollback(store);
			return JUKI_ESTORE;
		}
		sqlite3_bind_int64(st, 1, cutoff_ms);
		sqlite3_bind_int64(st, 2, JUKI_PURGE_BATCH);
		rc = sqlite3_step(st);
		n = sqlite3_changes(juki_store_db(store));
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			juki_store_rollback(store);
			return JUKI_ESTORE;
		}
		if ((rc = juki_store_commit(store)) != 0) {
			return rc;
		}
		total += n;
	} while (n == JUKI_PURGE_BATCH);
	if (removed != NULL) {
		*removed = total;
	}
	/* secure_delete zeroed the pages; the WAL's old images go with the checkpoint. */
	return juki_store_checkpoint(store, JUKI_PURGE_CHECKPOINT_TRIES);
}
