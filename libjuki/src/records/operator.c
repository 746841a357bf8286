#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/records/operator.h"

#define SALT_LEN 16
#define HASH_LEN 32

static const struct juki_migration steps[] = {
    {1, "CREATE TABLE operators ("
	" id TEXT PRIMARY KEY,"
	" roles INTEGER NOT NULL,"
	" datasets TEXT NOT NULL," /* JSON array of names */
	" pin TEXT NOT NULL,"      /* Argon2id, in its encoded form */
	" failures INTEGER NOT NULL DEFAULT 0,"
	" locked INTEGER NOT NULL DEFAULT 0,"
	" locked_ms INTEGER,"
	" lock_by TEXT," /* who locked or unlocked last ("wrong-pin": the PINs) */
	" last_login_ms INTEGER,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	/*
	 * state: 0 issued, 1 used, 2 pending, 3 approved, 4 refused.  deadline_ms is when
	 * an issued approval expires, or when pending input must be approved.
	 */
	"CREATE TABLE approvals ("
	" id INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" operator TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" deadline_ms INTEGER NOT NULL,"
	" by TEXT,"
	" decided_ms INTEGER,"
	" used_ms INTEGER,"
	" reported INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX approvals_due ON approvals(deadline_ms) WHERE state = 2 AND reported = 0;"},
};

const struct juki_schema juki_operator_schema = {"operator", steps,
						 sizeof(steps) / sizeof(steps[0])};

static const char *const role_names[] = {"clerk", "supervisor", "auditor", "administrator"};

unsigned
juki_role_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (strcmp(name, role_names[i]) == 0) {
			return 1u << i;
		}
	}
	return 0;
}

json_t *
juki_roles_json(unsigned roles)
{
	json_t *list = json_array();

	for (size_t i = 0; list != NULL && i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (roles & (1u << i)) {
			json_array_append_new(list, json_string(role_names[i]));
		}
	}
	return list;
}

int
juki_roles_from_json(const json_t *list, unsigned *roles, char *why, size_t whylen)
{
	const json_t *v;
	size_t i;

	*roles = 0;
	if (!json_is_array(list) || json_array_size(list) == 0) {
		snprintf(why, whylen, "roles: a list of clerk, supervisor, auditor, administrator");
		return JUKI_EFORMAT;
	}
	json_array_foreach(list, i, v)
	{
		unsigned bit = json_is_string(v) ? juki_role_parse(json_string_value(v)) : 0;

		if (bit == 0) {
			snprintf(
			    why, whylen,
			    "roles[%zu]: not a role (clerk, supervisor, auditor, administrator)",
			    i);
			return JUKI_EFORMAT;
		}
		*roles |= bit;
	}
	if ((*roles & JUKI_ROLE_ADMIN) && (*roles & JUKI_ROLE_CLERK)) {
		snprintf(why, whylen,
			 "roles: administrator and clerk are different people (第2-3(1))");
		return JUKI_EFORMAT;
	}
	return 0;
}

int
juki_pin_valid(const char *pin, char *why, size_t whylen)
{
	size_t n = strlen(pin);

	if (n < JUKI_PIN_MIN || n > JUKI_PIN_MAX) {
		snprintf(why, whylen, "pin: %d to %d characters", JUKI_PIN_MIN, JUKI_PIN_MAX);
		return JUKI_EFORMAT;
	}
	for (size_t i = 0; i < n; i++) {
		if (pin[i] < 0x21 || pin[i] > 0x7e) {
			snprintf(why, whylen, "pin: printable ASCII without spaces");
			return JUKI_EFORMAT;
		}
	}
	return 0;
}

/* The data sets as the canonical JSON text kept in the row. */
static char *
datasets_text(const json_t *datasets, const char *const *known, char *why, size_t whylen)
{
	const json_t *v;
	size_t i;

	if (!json_is_array(datasets) || json_array_size(datasets) == 0 ||
	    json_array_size(datasets) > JUKI_CALLER_DATASETS) {
		snprintf(why, whylen, "datasets: a list of 1 to %d data sets",
			 JUKI_CALLER_DATASETS);
		return NULL;
	}
	json_array_foreach(datasets, i, v)
	{
		const char *name = json_string_value(v);
		size_t k;

		for (k = 0; name != NULL && known[k] != NULL; k++) {
			if (strcmp(known[k], name) == 0) {
				break;
			}
		}
		if (name == NULL || known[k] == NULL) {
			size_t off = (size_t)snprintf(why, whylen, "datasets[%zu]: not one of", i);

			for (k = 0; known[k] != NULL && off < whylen; k++) {
				off += (size_t)snprintf(why + off, whylen - off, " %s", known[k]);
			}
			return NULL;
		}
	}
	return json_dumps(datasets, JSON_COMPACT);
}

static int
pin_hash(const char *pin, const struct juki_pin_cost *cost, char *out, size_t outlen)
{
	unsigned char salt[SALT_LEN];
	int rc;

	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		return JUKI_ETLS;
	}
	rc = argon2id_hash_encoded(cost->passes, cost->memory_kib, 1, pin, strlen(pin), salt,
				   sizeof(salt), HASH_LEN, out, outlen);
	return rc == ARGON2_OK ? 0 : JUKI_EINVAL;
}

/* Large enough for any cost this program accepts. */
#define ENCODED_MAX 160

int
juki_operator_add(struct juki_store *store, int64_t now_ms, const char *id, unsigned roles,
		  const json_t *datasets, const char *const *known, const char *pin,
		  const struct juki_pin_cost *cost, char *why, size_t whylen)
{
	static const char sql[] = "INSERT INTO operators (id, roles, datasets, pin, created_ms,"
				  " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
				  " ON CONFLICT (id) DO NOTHING";
	char encoded[ENCODED_MAX];
	sqlite3_stmt *st;
	char *ds = NULL;
	int rc;

	if (!juki_ident_token_valid(id)) {
		snprintf(why, whylen, "operator: 1 to 32 of a-z, 0-9 and -, not starting with -");
		return JUKI_EFORMAT;
	}
	if ((rc = juki_pin_valid(pin, why, whylen)) != 0) {
		return rc;
	}
	if ((ds = datasets_text(datasets, known, why, whylen)) == NULL) {
		return JUKI_EFORMAT;
	}
	if ((rc = pin_hash(pin, cost, encoded, sizeof(encoded))) != 0) {
		snprintf(why, whylen, "pin: could not make its verifier");
		goto out;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)roles);
	sqlite3_bind_text(st, 3, ds, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, encoded, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	if (rc == 0 && sqlite3_changes(juki_store_db(store)) == 0) {
		snprintf(why, whylen, "operator %s exists already", id);
		rc = JUKI_EDUP;
	}
	sqlite3_reset(st);
out:
	OPENSSL_cleanse(encoded, sizeof(encoded));
	free(ds);
	return rc;
}

static void
fill(sqlite3_stmt *st, struct juki_operator *op)
{
	json_t *ds = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
	const json_t *v;
	size_t i;

	memset(op, 0, sizeof(*op));
	snprintf(op->id, sizeof(op->id), "%s", (const char *)sqlite3_column_text(st, 0));
	op->roles = (unsigned)sqlite3_column_int(st, 1);
	json_array_foreach(ds, i, v)
	{
		if (json_is_string(v) && op->ndatasets < JUKI_CALLER_DATASETS) {
			snprintf(op->datasets[op->ndatasets++], JUKI_ID_MAX, "%s",
				 json_string_value(v));
		}
	}
	json_decref(ds);
	op->failures = sqlite3_column_int(st, 4);
	op->locked = sqlite3_column_int(st, 5);
}

static const char select_sql[] =
    "SELECT id, roles, datasets, pin, failures, locked FROM operators WHERE id = ?1";

int
juki_operator_get(struct juki_store *store, const char *id, struct juki_operator *out)
{
	sqlite3_stmt *st = juki_store_prepare(store, select_sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		fill(st, out);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
}

static int
exec_bound(struct juki_store *store, const char *sql, const char *id, int64_t a, int64_t b,
	   const char *text)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a);
	sqlite3_bind_int64(st, 3, b);
	if (text != NULL) {
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	if (rc == 0 && sqlite3_changes(juki_store_db(store)) == 0) {
		rc = JUKI_ENOTFOUND;
	}
	sqlite3_reset(st);
	return rc;
}

int
juki_operator_login(struct juki_store *store, int64_t now_ms, const char *id, const char *pin,
		    int max_failures, struct juki_operator *out, int *remaining)
{
	static const char ok_sql[] =
	    "UPDATE operators SET failures = 0, last_login_ms = ?2 WHERE id = ?1";
	static const char fail_sql[] =
	    "UPDATE operators SET failures = ?2, locked = (?2 >= ?3),"
	    " locked_ms = CASE WHEN ?2 >= ?3 THEN ?4 ELSE locked_ms END,"
	    " lock_by = CASE WHEN ?2 >= ?3 THEN 'wrong-pin' ELSE lock_by END WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, select_sql);
	char encoded[ENCODED_MAX];
	int rc, match;

	*remaining = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	fill(st, out);
	snprintf(encoded, sizeof(encoded), "%s", (const char *)sqlite3_column_text(st, 3));
	sqlite3_reset(st);
	if (out->locked) {
		*remaining = -1;
		rc = JUKI_ELOCKED;
		goto out;
	}
	/* The card may be anyone's: the PIN is what proves the person. */
	match = argon2id_verify(encoded, pin, strlen(pin)) == ARGON2_OK;
	if (match) {
		out->failures = 0;
		rc = exec_bound(store, ok_sql, id, now_ms, 0, NULL);
		goto out;
	}
	out->failures++;
	st = juki_store_prepare(store, fail_sql);
	if (st == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, out->failures);
	sqlite3_bind_int(st, 3, max_failures);
	sqlite3_bind_int64(st, 4, now_ms);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	sqlite3_reset(st);
	if (rc == 0) {
		out->locked = out->failures >= max_failures;
		*remaining = out->locked ? 0 : max_failures - out->failures;
		rc = out->locked ? JUKI_ELOCKED : JUKI_EAUTH;
	}
out:
	OPENSSL_cleanse(encoded, sizeof(encoded));
	return rc;
}

int
juki_operator_set_roles(struct juki_store *store, int64_t now_ms, const char *id, unsigned roles,
			const json_t *datasets, const char *const *known, char *why, size_t whylen)
{
	static const char sql[] =
	    "UPDATE operators SET roles = ?2, updated_ms = ?3, datasets = ?4 WHERE id = ?1";
	char *ds = datasets_text(datasets, known, why, whylen);
	int rc;

	if (ds == NULL) {
		return JUKI_EFORMAT;
	}
	rc = exec_bound(store, sql, id, roles, now_ms, ds);
	free(ds);
	return rc;
}

int
juki_operator_set_lock(struct juki_store *store, int64_t now_ms, const char *id, int locked,
		       const char *by)
{
	static const char lock_sql[] = "UPDATE operators SET locked = 1, locked_ms = ?2,"
				       " updated_ms = ?2, lock_by = ?4 WHERE id = ?1";
	static const char unlock_sql[] =
	    "UPDATE operators SET locked = 0, failures = 0, locked_ms = NULL, updated_ms = ?2,"
	    " lock_by = ?4 WHERE id = ?1";

	return exec_bound(store, locked ? lock_sql : unlock_sql, id, now_ms, 0, by);
}

int
juki_operator_set_pin(struct juki_store *store, int64_t now_ms, const char *id, const char *pin,
		      const struct juki_pin_cost *cost, char *why, size_t whylen)
{
	static const char sql[] = "UPDATE operators SET pin = ?4, failures = 0, updated_ms = ?2"
				  " WHERE id = ?1";
	char encoded[ENCODED_MAX];
	int rc;

	if ((rc = juki_pin_valid(pin, why, whylen)) != 0) {
		return rc;
	}
	if ((rc = pin_hash(pin, cost, encoded, sizeof(encoded))) != 0) {
		snprintf(why, whylen, "pin: could not make its verifier");
		return rc;
	}
	rc = exec_bound(store, sql, id, now_ms, 0, encoded);
	OPENSSL_cleanse(encoded, sizeof(encoded));
	return rc;
}

json_t *
juki_operator_list(struct juki_store *store)
{
	static const char sql[] = "SELECT id, roles, datasets, failures, locked, locked_ms,"
				  " lock_by, last_login_ms, created_ms FROM operators ORDER BY id";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *list = json_array();
	int rc;

	if (st == NULL || list == NULL) {
		json_decref(list);
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json_pack(
		    "{s:s,s:o,s:o,s:i,s:b,s:o,s:o,s:o,s:I}", "id", sqlite3_column_text(st, 0),
		    "roles", juki_roles_json((unsigned)sqlite3_column_int(st, 1)), "datasets",
		    json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL), "failures",
		    sqlite3_column_int(st, 3), "locked", sqlite3_column_int(st, 4), "locked_ms",
		    sqlite3_column_type(st, 5) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(st, 5)),
		    "lock_by",
		    sqlite3_column_type(st, 6) == SQLITE_NULL
			? json_null()
			: json_string((const char *)sqlite3_column_text(st, 6)),
		    "last_login_ms",
		    sqlite3_column_type(st, 7) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(st, 7)),
		    "created_ms", (json_int_t)sqlite3_column_int64(st, 8));

		if (row == NULL || json_array_append_new(list, row) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:o}", "operators", list);
}

/* Approvals. */

/* Run an UPDATE bound to (?1 id, ?2 a, ?3 text); JUKI_ENOTFOUND if it changed nothing. */
static int
exec_id(struct juki_store *store, const char *sql, int64_t id, int64_t a, const char *text)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, a);
	if (text != NULL) {
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	if (rc == 0 && sqlite3_changes(juki_store_db(store)) == 0) {
		rc = JUKI_ENOTFOUND;
	}
	sqlite3_reset(st);
	return rc;
}

static int
insert_approval(struct juki_store *store, int64_t now_ms, const char *kind, const char *op,
		const char *target, int state, const char *by, int64_t deadline_ms, int64_t *id)
{
	static const char sql[] = "INSERT INTO approvals (kind, operator, target, state,"
				  " created_ms, deadline_ms, by, decided_ms)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?7 IS NULL"
				  " THEN NULL ELSE ?5 END)";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, target, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, state);
	sqlite3_bind_int64(st, 5, now_ms);
	sqlite3_bind_int64(st, 6, deadline_ms);
	if (by != NULL) {
		sqlite3_bind_text(st, 7, by, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	sqlite3_reset(st);
	*id = sqlite3_last_insert_rowid(juki_store_db(store));
	return rc;
}

int
juki_approval_issue(struct juki_store *store, int64_t now_ms, const char *kind, const char *op,
		    const char *target, const char *by, int64_t expires_ms, int64_t *id)
{
	return insert_approval(store, now_ms, kind, op, target, JUKI_APPROVAL_ISSUED, by,
			       expires_ms, id);
}

int
juki_approval_pend(struct juki_store *store, int64_t now_ms, const char *kind, const char *op,
		   const char *target, int64_t deadline_ms, int64_t *id)
{
	return insert_approval(store, now_ms, kind, op, target, JUKI_APPROVAL_PENDING, NULL,
			       deadline_ms, id);
}

int
juki_approval_use(struct juki_store *store, int64_t now_ms, int64_t id, const char *kind,
		  const char *op, const char *target, char *why, size_t whylen)
{
	static const char get_sql[] = "SELECT kind, operator, target, state, deadline_ms"
				      " FROM approvals WHERE id = ?1";
	static const char use_sql[] =
	    "UPDATE approvals SET state = 1, used_ms = ?2 WHERE id = ?1 AND state = 0";
	sqlite3_stmt *st = juki_store_prepare(store, get_sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		snprintf(why, whylen, "no approval %lld", (long long)id);
		return rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), kind) != 0 ||
	    strcmp((const char *)sqlite3_column_text(st, 1), op) != 0 ||
	    strcmp((const char *)sqlite3_column_text(st, 2), target) != 0) {
		snprintf(why, whylen, "approval %lld is for %s by %s on %s", (long long)id,
			 sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			 sqlite3_column_text(st, 2));
		rc = JUKI_EPERM;
	} else if (sqlite3_column_int(st, 3) != JUKI_APPROVAL_ISSUED) {
		snprintf(why, whylen, "approval %lld was used already", (long long)id);
		rc = JUKI_EEXIST;
	} else if (sqlite3_column_int64(st, 4) <= now_ms) {
		snprintf(why, whylen, "approval %lld has expired", (long long)id);
		rc = JUKI_ETIMEDOUT;
	} else {
		rc = 0;
	}
	sqlite3_reset(st);
	if (rc != 0) {
		return rc;
	}
	return exec_id(store, use_sql, id, now_ms, NULL);
}

/* Pending input id decided by a supervisor: state approved or refused. */
static int
decide(struct juki_store *store, int64_t now_ms, int64_t id, const char *by, const char *by_op,
       int state, int *late)
{
	static const char get_sql[] =
	    "SELECT state, deadline_ms, operator FROM approvals WHERE id = ?1";
	static const char approve_sql[] = "UPDATE approvals SET state = 3, decided_ms = ?2, by = ?3"
					  " WHERE id = ?1 AND state = 2";
	static const char refuse_sql[] = "UPDATE approvals SET state = 4, decided_ms = ?2, by = ?3"
					 " WHERE id = ?1 AND state = 2";
	sqlite3_stmt *st = juki_store_prepare(store, get_sql);
	int rc;

	*late = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*late = sqlite3_column_int64(st, 1) < now_ms;
		if (sqlite3_column_int(st, 0) != JUKI_APPROVAL_PENDING) {
			rc = JUKI_EEXIST;
		} else if (by_op != NULL &&
			   strcmp((const char *)sqlite3_column_text(st, 2), by_op) == 0) {
			/* Nobody decides on their own input. */
			rc = JUKI_EPERM;
		} else {
			rc = 0;
		}
	} else {
		rc = rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	sqlite3_reset(st);
	if (rc != 0) {
		return rc;
	}
	return exec_id(store, state == JUKI_APPROVAL_APPROVED ? approve_sql : refuse_sql, id,
		       now_ms, by);
}

int
juki_approval_confirm(struct juki_store *store, int64_t now_ms, int64_t id, const char *by,
		      const char *by_op, int *late)
{
	return decide(store, now_ms, id, by, by_op, JUKI_APPROVAL_APPROVED, late);
}

int
juki_approval_refuse(struct juki_store *store, int64_t now_ms, int64_t id, const char *by,
		     const char *by_op, int *late)
{
	return decide(store, now_ms, id, by, by_op, JUKI_APPROVAL_REFUSED, late);
}

int
juki_approval_overdue(struct juki_store *store, int64_t now_ms,
		      void (*cb)(void *arg, int64_t id, const char *kind, const char *op,
				 const char *target, int64_t deadline_ms),
		      void *arg)
{
	static const char due_sql[] = "SELECT id, kind, operator, target, deadline_ms"
				      " FROM approvals WHERE state = 2 AND reported = 0"
				      " AND deadline_ms < ?1 ORDER BY deadline_ms LIMIT 100";
	static const char mark_sql[] = "UPDATE approvals SET reported = 1 WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, due_sql);
	int64_t ids[100];
	int n = 0, rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 100) {
		ids[n++] = sqlite3_column_int64(st, 0);
		cb(arg, ids[n - 1], (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2),
		   (const char *)sqlite3_column_text(st, 3), sqlite3_column_int64(st, 4));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		return JUKI_ESTORE;
	}
	for (int i = 0; i < n; i++) {
		if ((rc = exec_id(store, mark_sql, ids[i], now_ms, NULL)) != 0) {
			return rc;
		}
	}
	return n;
}

static const char *const state_names[] = {"issued", "used", "pending", "approved", "refused"};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

json_t *
juki_approval_list(struct juki_store *store, const char *state, size_t limit)
{
	static const char sql[] = "SELECT id, kind, operator, target, state, created_ms,"
				  " deadline_ms, by, decided_ms, used_ms, reported FROM approvals"
				  " WHERE ?1 < 0 OR state = ?1 ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt *st;
	json_t *list;
	int want = -1, rc;

	for (size_t i = 0; state != NULL && i < NSTATES; i++) {
		if (strcmp(state, state_names[i]) == 0) {
			want = (int)i;
		}
	}
	if (state != NULL && want < 0) {
		return NULL;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL || (list = json_array()) == NULL) {
		return NULL;
	}
	sqlite3_bind_int(st, 1, want);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int s = sqlite3_column_int(st, 4);
		json_t *row = json_pack(
		    "{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:o,s:b}", "id",
		    (json_int_t)sqlite3_column_int64(st, 0), "kind", sqlite3_column_text(st, 1),
		    "operator", sqlite3_column_text(st, 2), "target", sqlite3_column_text(st, 3),
		    "state", s >= 0 && (size_t)s < NSTATES ? state_names[s] : "?", "created_ms",
		    (json_int_t)sqlite3_column_int64(st, 5), "deadline_ms",
		    (json_int_t)sqlite3_column_int64(st, 6), "by",
		    sqlite3_column_type(st, 7) == SQLITE_NULL
			? json_null()
			: json_string((const char *)sqlite3_column_text(st, 7)),
		    "decided_ms",
		    sqlite3_column_type(st, 8) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(st, 8)),
		    "used_ms",
		    sqlite3_column_type(st, 9) == SQLITE_NULL
			? json_null()
			: json_integer(sqlite3_column_int64(st, 9)),
		    "overdue", sqlite3_column_int(st, 10));

		if (row == NULL || json_array_append_new(list, row) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:o}", "approvals", list);
}
