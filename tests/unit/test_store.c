#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/store/store.h"

#include "helpers.h"

struct fixture {
	char dir[64];
	char path[128];
	char wal[136];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	if (test_mkdtemp(f->dir, sizeof(f->dir), "store") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	snprintf(f->wal, sizeof(f->wal), "%s-wal", f->path);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	test_rm_rf(f->dir);
	free(f);
	return 0;
}

static struct juki_store *
open_ok(const char *path, const struct juki_schema *schemas, size_t n)
{
	struct juki_store *store = NULL;
	char err[256] = "";
	int rc;

	rc = juki_store_open(path, schemas, n, &store, err, sizeof(err));
	if (rc != 0) {
		print_error("open %s: %s: %s\n", path, juki_strerror(rc), err);
	}
	assert_int_equal(rc, 0);
	assert_non_null(store);
	return store;
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static void
query_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *stmt = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(buf, len, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
}

static int
table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *stmt = NULL;
	int found;

	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &stmt, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	return found;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
test_pragmas(void **state)
{
	struct fixture *f = *state;
	struct juki_store *store;
	char mode[16];
	int version = -1;
	sqlite3 *db;

	store = open_ok(f->path, NULL, 0);
	db = juki_store_db(store);
	assert_non_null(db);
	assert_string_equal(juki_store_path(store), f->path);
	query_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(db, "PRAGMA secure_delete"), 1);
	assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 5000);
	assert_int_equal(query_int(db, "PRAGMA cache_size"), -16384);
	assert_int_equal(query_int(db, "PRAGMA temp_store"), 2);

	/* the built-in schema is there from the first open */
	assert_int_equal(juki_store_schema_version(store, "juki", &version), 0);
	assert_int_equal(version, 3);
	assert_true(table_exists(db, "node_identity"));
	assert_true(table_exists(db, "outbox"));
	assert_true(table_exists(db, "outbox_rejected"));
	assert_true(table_exists(db, "inbox"));
	assert_true(table_exists(db, "inbox_mismatch"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
				       "AND name = 'outbox_queue' AND tbl_name = 'outbox'"),
			 1);
	assert_int_equal(juki_store_schema_version(store, "csd", &version), 0);
	assert_int_equal(version, 0);
	assert_int_equal(juki_store_schema_version(store, NULL, &version), JUKI_EINVAL);
	assert_int_equal(juki_store_schema_version(store, "juki", NULL), JUKI_EINVAL);
	assert_int_equal(juki_store_schema_version(NULL, "juki", &version), JUKI_EINVAL);
	juki_store_close(store);

	/* pragmas of a connection are set again on every open */
	store = open_ok(f->path, NULL, 0);
	db = juki_store_db(store);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	juki_store_close(store);

	juki_store_close(NULL);
	assert_null(juki_store_db(NULL));
	assert_null(juki_store_path(NULL));
}

static void
test_file_mode(void **state)
{
	struct fixture *f = *state;
	struct juki_store *store;
	char other[160];
	struct stat st;
	mode_t old;
	int fd;

	/* a permissive umask must not leak into the file's mode */
	old = umask(0);
	store = open_ok(f->path, NULL, 0);
	assert_int_equal(juki_store_exec(store, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(f->wal, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	juki_store_close(store);

	/* an existing file keeps the mode its owner gave it */
	snprintf(other, sizeof(other), "%s/existing.db", f->dir);
	fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	store = open_ok(other, NULL, 0);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	juki_store_close(store);
	umask(old);
}

static void
test_open_bad(void **state)
{
	struct fixture *f = *state;
	struct juki_store *store = (struct juki_store *)&store;
	char path[200], err[256];
	FILE *fp;

	assert_int_equal(juki_store_open(f->path, NULL, 0, NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_store_open(NULL, NULL, 0, &store, err, sizeof(err)), JUKI_EINVAL);
	assert_null(store);
	assert_int_equal(juki_store_open("", NULL, 0, &store, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_store_open(":memory:", NULL, 0, &store, err, sizeof(err)),
			 JUKI_EINVAL);
	assert_null(store);
	assert_int_equal(access(":memory:", F_OK), -1);

	snprintf(path, sizeof(path), "%s/no/such/dir/node.db", f->dir);
	assert_int_equal(juki_store_open(path, NULL, 0, &store, err, sizeof(err)), JUKI_ESTORE);
	assert_null(store);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	/* err is optional */
	assert_int_equal(juki_store_open(path, NULL, 0, &store, NULL, 0), JUKI_ESTORE);

	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 512; i++) {
		fputs("this is not a database ", fp);
	}
	fclose(fp);
	assert_int_equal(juki_store_open(path, NULL, 0, &store, err, sizeof(err)), JUKI_ESTORE);
	assert_null(store);
	assert_non_null(strstr(err, "not a database"));

	/* a directory is not a database file */
	assert_int_equal(juki_store_open(f->dir, NULL, 0, &store, err, sizeof(err)), JUKI_ESTORE);
	assert_null(store);
}

static const struct juki_migration csd_v1[] = {
    {1, "CREATE TABLE log(step INTEGER NOT NULL); INSERT INTO log VALUES(1);"},
};

static const struct juki_migration csd_v2[] = {
    {1, "CREATE TABLE log(step INTEGER NOT NULL); INSERT INTO log VALUES(1);"},
    {2, "INSERT INTO log VALUES(2); CREATE TABLE resident(code TEXT PRIMARY KEY);"},
};

static const struct juki_migration other_v1[] = {
    {1, "CREATE TABLE other(x);"},
};

static void
test_migrations(void **state)
{
	struct fixture *f = *state;
	struct juki_schema schemas[2] = {
	    {"csd", csd_v1, 1},
	    {"other", other_v1, 1},
	};
	struct juki_store *store;
	int version = -1;
	sqlite3 *db;

	store = open_ok(f->path, schemas, 2);
	db = juki_store_db(store);
	assert_int_equal(juki_store_schema_version(store, "csd", &version), 0);
	assert_int_equal(version, 1);
	assert_int_equal(juki_store_schema_version(store, "other", &version), 0);
	assert_int_equal(version, 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM log"), 1);
	assert_true(table_exists(db, "other"));
	assert_false(juki_store_in_txn(store));
	juki_store_close(store);

	/* nothing new: nothing runs (step 1 would fail on the existing table) */
	store = open_ok(f->path, schemas, 2);
	assert_int_equal(query_int(juki_store_db(store), "SELECT count(*) FROM log"), 1);
	juki_store_close(store);

	/* a v2 step: only v2 runs */
	schemas[0].steps = csd_v2;
	schemas[0].nsteps = 2;
	store = open_ok(f->path, schemas, 2);
	db = juki_store_db(store);
	assert_int_equal(juki_store_schema_version(store, "csd", &version), 0);
	assert_int_equal(version, 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM log"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM log WHERE step = 2"), 1);
	assert_true(table_exists(db, "resident"));
	juki_store_close(store);

	store = open_ok(f->path, schemas, 2);
	assert_int_equal(query_int(juki_store_db(store), "SELECT count(*) FROM log"), 2);
	juki_store_close(store);
}

static void
test_migration_failure(void **state)
{
	static const struct juki_migration bad[] = {
	    {1, "CREATE TABLE log(step INTEGER NOT NULL); INSERT INTO log VALUES(1);"},
	    {2, "CREATE TABLE t2(x); INSERT INTO log VALUES(2); INSERT INTO nosuch VALUES(1);"},
	};
	struct fixture *f = *state;
	struct juki_schema schema = {"csd", bad, 2};
	struct juki_store *store = NULL;
	char err[256] = "";
	int version = -1;
	sqlite3 *db;

	assert_int_equal(juki_store_open(f->path, &schema, 1, &store, err, sizeof(err)),
			 JUKI_ESTORE);
	assert_null(store);
	assert_non_null(strstr(err, "csd"));
	assert_non_null(strstr(err, "v2"));
	assert_non_null(strstr(err, "no such table: nosuch"));

	/* v1 committed on its own; v2 left nothing behind */
	schema.nsteps = 1;
	store = open_ok(f->path, &schema, 1);
	db = juki_store_db(store);
	assert_int_equal(juki_store_schema_version(store, "csd", &version), 0);
	assert_int_equal(version, 1);
	assert_false(table_exists(db, "t2"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM log"), 1);
	juki_store_close(store);
}

static void
test_schema_newer(void **state)
{
	struct fixture *f = *state;
	struct juki_schema schemas[2] = {
	    {"other", other_v1, 1},
	    {"csd", csd_v2, 2},
	};
	struct juki_store *store = NULL;
	char err[256] = "";
	sqlite3 *db = NULL;

	juki_store_close(open_ok(f->path, &schemas[1], 1));

	/* the program knows csd up to v1 only; "other" is new but must not be applied */
	schemas[1].nsteps = 1;
	assert_int_equal(juki_store_open(f->path, schemas, 2, &store, err, sizeof(err)),
			 JUKI_ESCHEMA);
	assert_null(store);
	assert_non_null(strstr(err, "csd"));
	assert_non_null(strstr(err, "version 2"));
	assert_non_null(strstr(err, "up to 1"));
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_false(table_exists(db, "other"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version "
				       "WHERE component = 'other'"),
			 0);
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
				       "WHERE component = 'csd'"),
			 2);

	/* a component with no steps at all, known only to a newer program */
	schemas[1].nsteps = 0;
	assert_int_equal(juki_store_open(f->path, &schemas[1], 1, &store, err, sizeof(err)),
			 JUKI_ESCHEMA);

	/* libjuki's own schema from the future */
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE schema_version SET version = 99 WHERE component = 'juki'",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(juki_store_open(f->path, NULL, 0, &store, err, sizeof(err)), JUKI_ESCHEMA);
	assert_non_null(strstr(err, "juki"));
	assert_null(store);
}

static void
test_schema_invalid(void **state)
{
	static const struct juki_migration out_of_order[] = {
	    {1, "SELECT 1"}, {3, "SELECT 1"}, {2, "SELECT 1"}};
	static const struct juki_migration repeated[] = {{1, "SELECT 1"}, {1, "SELECT 1"}};
	static const struct juki_migration zero[] = {{0, "SELECT 1"}};
	static const struct juki_migration negative[] = {{-1, "SELECT 1"}};
	static const struct juki_migration no_sql[] = {{1, NULL}};
	const struct juki_schema cases[][2] = {
	    {{"csd", out_of_order, 3}}, {{"csd", repeated, 2}},
	    {{"csd", zero, 1}},         {{"csd", negative, 1}},
	    {{"csd", no_sql, 1}},       {{NULL, csd_v1, 1}},
	    {{"", csd_v1, 1}},          {{"csd", NULL, 1}},
	    {{"juki", csd_v1, 1}},      {{"csd", csd_v1, 1}, {"csd", other_v1, 1}},
	};
	struct fixture *f = *state;
	struct juki_store *store = NULL;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(juki_store_open(f->path, cases[i], cases[i][1].component ? 2 : 1,
						 &store, err, sizeof(err)),
				 JUKI_EINVAL);
		assert_null(store);
		assert_true(err[0] != '\0');
		/* refused before anything is created */
		assert_int_equal(access(f->path, F_OK), -1);
	}
	assert_int_equal(juki_store_open(f->path, NULL, 1, &store, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(access(f->path, F_OK), -1);
}

static void
test_stmt_cache(void **state)
{
	static const char sel[] = "SELECT ?1";
	static char many[200][40];
	static const char bad[] = "SELEC 1";
	static const char two[] = "SELECT 1; SELECT 2";
	static const char trailing[] = "SELECT 3;  \n";
	struct fixture *f = *state;
	sqlite3_stmt *a, *b, *stmts[200];
	struct juki_store *store;
	char copy[sizeof(sel)];
	size_t i;

	store = open_ok(f->path, NULL, 0);
	a = juki_store_prepare(store, sel);
	assert_non_null(a);
	assert_int_equal(sqlite3_bind_int(a, 1, 42), SQLITE_OK);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 42);
	assert_true(sqlite3_stmt_busy(a));

	/* same pointer: same statement, reset and with its bindings cleared */
	b = juki_store_prepare(store, sel);
	assert_ptr_equal(a, b);
	assert_false(sqlite3_stmt_busy(b));
	assert_int_equal(sqlite3_step(b), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(b, 0), SQLITE_NULL);

	/* the key is the address, not the text */
	memcpy(copy, sel, sizeof(sel));
	b = juki_store_prepare(store, copy);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(juki_store_prepare(store, copy), b);

	/* enough statements to chain in every bucket */
	for (i = 0; i < 200; i++) {
		snprintf(many[i], sizeof(many[i]), "SELECT %zu", i);
		stmts[i] = juki_store_prepare(store, many[i]);
		assert_non_null(stmts[i]);
	}
	for (i = 0; i < 200; i++) {
		assert_ptr_equal(juki_store_prepare(store, many[i]), stmts[i]);
		assert_int_equal(sqlite3_step(stmts[i]), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(stmts[i], 0), (int)i);
	}
	assert_ptr_equal(juki_store_prepare(store, sel), a);

	assert_null(juki_store_prepare(store, bad));
	assert_non_null(strstr(juki_store_errmsg(store), "syntax error"));
	assert_null(juki_store_prepare(store, two));
	assert_non_null(strstr(juki_store_errmsg(store), "more than one statement"));
	assert_null(juki_store_prepare(store, ""));
	assert_non_null(strstr(juki_store_errmsg(store), "empty"));
	assert_null(juki_store_prepare(store, "  -- only a comment"));
	assert_null(juki_store_prepare(store, NULL));
	assert_null(juki_store_prepare(NULL, sel));
	/* a trailing semicolon and blanks are one statement */
	a = juki_store_prepare(store, trailing);
	assert_non_null(a);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 3);
	/* a failure is not remembered once a call succeeds */
	assert_null(strstr(juki_store_errmsg(store), "empty"));
	assert_string_equal(juki_store_errmsg(NULL), "no store");
	/* closing with statements mid-result must finalize them (ASan checks the rest) */
	juki_store_close(store);
}

static const struct juki_migration fk_steps[] = {
    {1, "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
	"CREATE TABLE child(pid INTEGER NOT NULL REFERENCES parent(id) "
	"DEFERRABLE INITIALLY DEFERRED);"
	"CREATE TABLE strict_child(pid INTEGER NOT NULL REFERENCES parent(id));"
	"CREATE TABLE t(x INTEGER);"},
};

static void
test_transactions(void **state)
{
	struct fixture *f = *state;
	static const char insert_strict[] = "INSERT INTO strict_child VALUES(?1)";
	struct juki_schema schema = {"test", fk_steps, 1};
	struct juki_store *store;
	sqlite3_stmt *stmt;
	sqlite3 *db;

	store = open_ok(f->path, &schema, 1);
	db = juki_store_db(store);
	assert_false(juki_store_in_txn(store));
	assert_int_equal(juki_store_begin(store), 0);
	assert_true(juki_store_in_txn(store));
	assert_int_equal(juki_store_begin(store), JUKI_EINVAL);
	assert_non_null(strstr(juki_store_errmsg(store), "already open"));
	assert_true(juki_store_in_txn(store));
	assert_int_equal(juki_store_exec(store, "INSERT INTO t VALUES(1)"), 0);
	assert_int_equal(juki_store_rollback(store), 0);
	assert_false(juki_store_in_txn(store));
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 0);
	/* rollback with none open is harmless, commit is misuse */
	assert_int_equal(juki_store_rollback(store), 0);
	assert_int_equal(juki_store_commit(store), JUKI_EINVAL);
	assert_non_null(strstr(juki_store_errmsg(store), "no transaction"));

	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_store_exec(store, "INSERT INTO t VALUES(1); INSERT INTO t VALUES(2)"),
			 0);
	assert_int_equal(juki_store_commit(store), 0);
	assert_false(juki_store_in_txn(store));
	assert_int_equal(query_int(db, "SELECT sum(x) FROM t"), 3);

	/* foreign keys are enforced */
	assert_int_equal(juki_store_exec(store, "INSERT INTO strict_child VALUES(7)"), JUKI_ESTORE);
	assert_non_null(strstr(juki_store_errmsg(store), "FOREIGN KEY"));

	/* a commit that fails (deferred foreign key) rolls back and says why */
	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_store_exec(store, "INSERT INTO child VALUES(7)"), 0);
	assert_int_equal(juki_store_exec(store, "INSERT INTO t VALUES(100)"), 0);
	assert_int_equal(juki_store_commit(store), JUKI_ESTORE);
	assert_false(juki_store_in_txn(store));
	assert_non_null(strstr(juki_store_errmsg(store), "FOREIGN KEY"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM child"), 0);
	assert_int_equal(query_int(db, "SELECT sum(x) FROM t"), 3);

	/* the cause of a failure outlives the rollback it leads to */
	assert_int_equal(juki_store_begin(store), 0);
	stmt = juki_store_prepare(store, insert_strict);
	assert_non_null(stmt);
	/* pid left unbound: NULL */
	assert_int_equal(sqlite3_step(stmt), SQLITE_CONSTRAINT);
	assert_int_equal(juki_store_rollback(store), 0);
	assert_false(juki_store_in_txn(store));
	assert_non_null(strstr(juki_store_errmsg(store), "NOT NULL constraint failed"));
	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_store_exec(store, "INSERT INTO nosuch VALUES(1)"), JUKI_ESTORE);
	assert_int_equal(juki_store_rollback(store), 0);
	assert_non_null(strstr(juki_store_errmsg(store), "no such table: nosuch"));

	assert_int_equal(juki_store_exec(store, NULL), JUKI_EINVAL);
	assert_int_equal(juki_store_exec(NULL, "SELECT 1"), JUKI_EINVAL);
	assert_int_equal(juki_store_begin(NULL), JUKI_EINVAL);
	assert_int_equal(juki_store_commit(NULL), JUKI_EINVAL);
	assert_int_equal(juki_store_rollback(NULL), JUKI_EINVAL);
	assert_false(juki_store_in_txn(NULL));
	juki_store_close(store);

	/* an open transaction is not committed by closing */
	store = open_ok(f->path, &schema, 1);
	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_store_exec(store, "INSERT INTO t VALUES(1000)"), 0);
	juki_store_close(store);
	store = open_ok(f->path, &schema, 1);
	assert_int_equal(query_int(juki_store_db(store), "SELECT sum(x) FROM t"), 3);
	juki_store_close(store);
}

/* juki_hash64 in C and in SQL agree, and tell texts apart where concatenation would not. */
static void
test_hash64(void **state)
{
	struct fixture *f = *state;
	const char *ab[] = {"山田 花子", "1990-04-01"};
	const char *split[] = {"山田 花子1990", "-04-01"};
	struct juki_store *store;
	sqlite3_stmt *st;

	assert_int_equal(juki_store_open(f->path, NULL, 0, &store, NULL, 0), 0);
	assert_int_equal(sqlite3_prepare_v2(
			     juki_store_db(store),
			     "SELECT juki_hash64('山田 花子', '1990-04-01'), juki_hash64(NULL, '')",
			     -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(sqlite3_column_int64(st, 0) == juki_hash64(ab, 2));
	assert_true(sqlite3_column_int64(st, 1) != 0);
	sqlite3_finalize(st);
	assert_true(juki_hash64(ab, 2) != juki_hash64(split, 2));
	assert_true(juki_hash64(ab, 2) != juki_hash64(ab, 1));
	/* A known value: the first 8 bytes of SHA-256("a\0"), big-endian. */
	{
		const char *a[] = {"a"};

		assert_true((uint64_t)juki_hash64(a, 1) == UINT64_C(0xffe9aaeaa2a2d504));
	}
	juki_store_close(store);
}

static void
fill(struct juki_store *store, int rows)
{
	assert_int_equal(juki_store_begin(store), 0);
	for (int i = 0; i < rows; i++) {
		assert_int_equal(juki_store_exec(store, "INSERT INTO t VALUES(randomblob(200))"),
				 0);
	}
	assert_int_equal(juki_store_commit(store), 0);
}

static void
test_checkpoint(void **state)
{
	static const char scan[] = "SELECT x FROM t";
	struct fixture *f = *state;
	struct juki_schema schema = {"test", fk_steps, 1};
	struct juki_store *store;
	sqlite3 *reader = NULL;
	sqlite3_stmt *stmt;
	int64_t t0;

	store = open_ok(f->path, &schema, 1);
	fill(store, 100);
	assert_true(file_size(f->wal) > 0);
	assert_int_equal(juki_store_checkpoint(store, 5), 0);
	assert_int_equal(file_size(f->wal), 0);

	assert_int_equal(juki_store_checkpoint(store, 0), JUKI_EINVAL);
	assert_int_equal(juki_store_checkpoint(NULL, 5), JUKI_EINVAL);
	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_store_checkpoint(store, 5), JUKI_EINVAL);
	assert_int_equal(juki_store_rollback(store), 0);

	/* a reader in another connection holds the WAL: tries run out quickly */
	fill(store, 50);
	assert_int_equal(sqlite3_open(f->path, &reader), SQLITE_OK);
	assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM t;", NULL, NULL, NULL),
			 SQLITE_OK);
	t0 = juki_clock_mono_ms();
	assert_int_equal(juki_store_checkpoint(store, 3), JUKI_EAGAIN);
	assert_true(juki_clock_mono_ms() - t0 < 2000);
	assert_non_null(strstr(juki_store_errmsg(store), "readers"));
	assert_true(file_size(f->wal) > 0);
	/* the busy timeout is back for everything else */
	assert_int_equal(query_int(juki_store_db(store), "PRAGMA busy_timeout"), 5000);
	assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(reader);
	assert_int_equal(juki_store_checkpoint(store, 3), 0);
	assert_int_equal(file_size(f->wal), 0);

	/* a cached statement left mid-result does not block it */
	fill(store, 50);
	stmt = juki_store_prepare(store, scan);
	assert_non_null(stmt);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_true(file_size(f->wal) > 0);
	assert_int_equal(juki_store_checkpoint(store, 1), 0);
	assert_int_equal(file_size(f->wal), 0);
	assert_int_equal(query_int(juki_store_db(store), "SELECT count(*) FROM t"), 200);
	juki_store_close(store);
}

/*
 * The WAL at the size it reaches between checkpoints from the start, so that
 * commits do not grow it; a WAL with frames in it (a crash before a
 * checkpoint) keeps them, and the zeros after them are no frames.
 */
static void
test_wal_reserved(void **state)
{
	struct fixture *f = *state;
	struct juki_schema schema = {"test", fk_steps, 1};
	const off_t want = 32 + JUKI_WAL_CHECKPOINT_PAGES * (off_t)(24 + 4096);
	struct juki_store *store, *copy;
	char crashed[160], crashed_wal[168];
	off_t before;

	store = open_ok(f->path, &schema, 1);
	assert_int_equal(file_size(f->wal), want);
	assert_int_equal(query_int(juki_store_db(store), "PRAGMA wal_autocheckpoint"),
			 JUKI_WAL_CHECKPOINT_PAGES);
	fill(store, 100);
	assert_int_equal(file_size(f->wal), want); /* written into, not grown */

	/* a copy of the files as a power cut would leave them: frames, no checkpoint */
	snprintf(crashed, sizeof(crashed), "%s/crashed.db", f->dir);
	snprintf(crashed_wal, sizeof(crashed_wal), "%s-wal", crashed);
	assert_int_equal(test_copy_file(f->path, crashed), 0);
	assert_int_equal(test_copy_file(f->wal, crashed_wal), 0);
	assert_int_equal(truncate(crashed_wal, 200 * 1024), 0); /* shorter than reserved */
	before = file_size(crashed_wal);
	copy = open_ok(crashed, &schema, 1);
	assert_true(file_size(crashed_wal) > before);
	assert_int_equal(query_int(juki_store_db(copy), "SELECT count(*) FROM t"), 100);
	fill(copy, 10);
	assert_int_equal(query_int(juki_store_db(copy), "SELECT count(*) FROM t"), 110);
	juki_store_close(copy);
	copy = open_ok(crashed, &schema, 1);
	assert_int_equal(query_int(juki_store_db(copy), "SELECT count(*) FROM t"), 110);
	juki_store_close(copy);

	/* a file loaded in bulk reserves nothing; put in place, it is the store's again */
	assert_int_equal(juki_store_open_bulk(crashed, &schema, 1, &copy, NULL, 0), 0);
	fill(copy, 10);
	assert_true(file_size(crashed_wal) < want);
	juki_store_close(copy);
	assert_int_equal(juki_store_replace(store, crashed, NULL, 0), 0);
	assert_int_equal(file_size(f->wal), want);
	assert_int_equal(query_int(juki_store_db(store), "SELECT count(*) FROM t"), 120);
	juki_store_close(store);
}

struct full_calls {
	int started, ended;
	char why[64];
};

static void
count_full(void *arg, int full, const char *why)
{
	struct full_calls *c = arg;

	if (full) {
		c->started++;
	} else {
		c->ended++;
	}
	snprintf(c->why, sizeof(c->why), "%s", why);
}

static const struct juki_migration big_steps[] = {
    {1, "CREATE TABLE big (v TEXT NOT NULL)"},
};
static const struct juki_schema big_schema = {"big", big_steps, 1};

/*
 * A full database (max_page_count stands in for a full disk: SQLite says
 * SQLITE_FULL for both): one occurrence from the first refused write to the
 * next transaction committed that wrote, however many writes fail between.
 */
static void
test_full_store(void **state)
{
	struct fixture *f = *state;
	struct juki_store *s = open_ok(f->path, &big_schema, 1);
	struct full_calls c = {0};
	sqlite3_stmt *st;

	juki_store_on_full(s, count_full, &c);
	assert_int_equal(juki_store_exec(s, "PRAGMA max_page_count = 30"), 0);
	for (int i = 0; i < 5; i++) {
		/* an exec of the caller's */
		assert_int_equal(juki_store_begin(s), 0);
		assert_int_equal(
		    juki_store_exec(s, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
				       "SELECT i + 1 FROM n WHERE i < 400) "
				       "INSERT INTO big SELECT printf('%0500d', i) FROM n"),
		    JUKI_ESTORE);
		assert_string_equal(juki_store_errmsg(s), "database or disk is full");
		assert_int_equal(juki_store_rollback(s), 0);
		/* a statement of the caller's own, then the rollback that follows it */
		assert_int_equal(juki_store_begin(s), 0);
		st = juki_store_prepare(s,
					"INSERT INTO big SELECT printf('%0500d', 1) FROM "
					"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
					"FROM n WHERE i < 400) SELECT i FROM n)");
		assert_non_null(st);
		assert_int_equal(sqlite3_step(st), SQLITE_FULL);
		sqlite3_reset(st);
		assert_int_equal(juki_store_rollback(s), 0);
		assert_string_equal(juki_store_errmsg(s), "database or disk is full");
		assert_true(juki_store_full(s));
	}
	assert_int_equal(c.started, 1);
	assert_int_equal(c.ended, 0);
	assert_string_equal(c.why, "database or disk is full");
	/* a transaction that writes nothing does not end it */
	assert_int_equal(juki_store_begin(s), 0);
	assert_int_equal(juki_store_commit(s), 0);
	assert_true(juki_store_full(s));
	/* room again: the first commit that writes ends it, once */
	assert_int_equal(juki_store_exec(s, "PRAGMA max_page_count = 100000"), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(juki_store_begin(s), 0);
		assert_int_equal(juki_store_exec(s, "INSERT INTO big VALUES ('x')"), 0);
		assert_int_equal(juki_store_commit(s), 0);
	}
	assert_false(juki_store_full(s));
	assert_int_equal(c.ended, 1);
	/* the next occurrence is a new one */
	assert_int_equal(juki_store_exec(s, "PRAGMA max_page_count = 30"), 0);
	assert_int_equal(juki_store_begin(s), 0);
	assert_int_equal(juki_store_exec(s, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
					    "SELECT i + 1 FROM n WHERE i < 400) "
					    "INSERT INTO big SELECT printf('%0500d', i) FROM n"),
			 JUKI_ESTORE);
	juki_store_rollback(s);
	assert_int_equal(c.started, 2);
	juki_store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_newer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stmt_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wal_reserved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hash64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_store, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
