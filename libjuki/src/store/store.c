#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "juki/base/error.h"
#include "juki/store/store.h"

#define BUSY_TIMEOUT_MS     5000
#define CHECKPOINT_PAUSE_NS (10 * 1000 * 1000)
#define STMT_BUCKETS        64

struct cached_stmt {
	const char *sql;
	sqlite3_stmt *stmt;
	struct cached_stmt *next;
};

struct juki_store {
	sqlite3 *db;
	char *path;
	struct cached_stmt *stmts[STMT_BUCKETS];
	/*
	 * Our own error text, shown by juki_store_errmsg() instead of
	 * SQLite's while set: for refusals SQLite knows nothing about, and
	 * to keep the cause of a failure readable after the rollback that
	 * follows it has reset SQLite's message to "not an error".
	 */
	char errbuf[256];
	int errset;
	int wal_reserved; /* juki_wal_setup() at each open: not for a file loaded in bulk */
	/*
	 * A full database or disk: full from the first write it refused to
	 * the next write transaction committed (one occurrence, one call of
	 * on_full each way); changes_at_begin tells a commit that wrote.
	 */
	juki_store_full_cb on_full;
	void *full_arg;
	int full;
	sqlite3_int64 changes_at_begin;
};

/*
 * The tables libjuki keeps itself; the column meanings are in outbox.h.
 * inbox is WITHOUT ROWID because it is looked up only by msg_id, and
 * UUIDv7 ids arrive roughly in key order.
 */
static const struct juki_migration builtin_steps[] = {
    {1, "CREATE TABLE outbox("
	"seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"dest TEXT NOT NULL,"
	"service TEXT NOT NULL,"
	"msg_id TEXT NOT NULL UNIQUE,"
	"type TEXT NOT NULL,"
	"payload BLOB NOT NULL,"
	"created_ms INTEGER NOT NULL,"
	"attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX outbox_queue ON outbox(dest, service, seq);"
	"CREATE TABLE outbox_rejected("
	"seq INTEGER PRIMARY KEY,"
	"dest TEXT NOT NULL,"
	"service TEXT NOT NULL,"
	"msg_id TEXT NOT NULL,"
	"type TEXT NOT NULL,"
	"payload BLOB NOT NULL,"
	"created_ms INTEGER NOT NULL,"
	"rejected_ms INTEGER NOT NULL,"
	"reason TEXT NOT NULL,"
	"detail TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE inbox("
	"msg_id TEXT PRIMARY KEY,"
	"sender TEXT NOT NULL,"
	"type TEXT NOT NULL,"
	"status INTEGER NOT NULL,"
	"reason TEXT,"
	"received_ms INTEGER NOT NULL) WITHOUT ROWID;"},
    /* The node a store belongs to (juki_node: refused by any other; restore checks it). */
    {2, "CREATE TABLE node_identity(urn TEXT NOT NULL);"},
    /*
     * The SHA-256 of each received message's frame (NULL in rows from
     * before: unknown), and the refused replays of a recorded id with
     * other bytes, kept for inspection (outbox.h).
     */
    {3, "ALTER TABLE inbox ADD COLUMN digest BLOB;"
	"CREATE TABLE inbox_mismatch("
	"id INTEGER PRIMARY KEY,"
	"msg_id TEXT NOT NULL,"
	"sender TEXT NOT NULL,"
	"digest BLOB NOT NULL,"
	"received_ms INTEGER NOT NULL,"
	"text BLOB NOT NULL,"
	"UNIQUE(msg_id, digest));"
	"CREATE INDEX inbox_mismatch_received ON inbox_mismatch(received_ms);"},
};

static const struct juki_schema builtin_schema = {
    "juki",
    builtin_steps,
    sizeof(builtin_steps) / sizeof(builtin_steps[0]),
};

static void
own_error(struct juki_store *store, const char *text)
{
	snprintf(store->errbuf, sizeof(store->errbuf), "%s", text);
	store->errset = 1;
}

/* Whether SQLite's last failure on db was a full database or disk. */
static int
is_full(sqlite3 *db)
{
	int code = sqlite3_extended_errcode(db), sys = sqlite3_system_errno(db);

	return (code & 0xff) == SQLITE_FULL ||
	       ((code & 0xff) == SQLITE_IOERR && (sys == ENOSPC || sys == EDQUOT));
}

/* After a failure: a full disk opens an occurrence, once. */
static void
note_failure(struct juki_store *store)
{
	if (store->full || !is_full(store->db)) {
		return;
	}
	store->full = 1;
	if (store->on_full != NULL) {
		store->on_full(store->full_arg, 1, "database or disk is full");
	}
}

/* After a commit: one that wrote ends the occurrence. */
static void
note_commit(struct juki_store *store)
{
	if (!store->full || sqlite3_total_changes64(store->db) == store->changes_at_begin) {
		return;
	}
	store->full = 0;
	if (store->on_full != NULL) {
		store->on_full(store->full_arg, 0, "writes succeed again");
	}
}

static size_t
bucket_of(const char *sql)
{
	uintptr_t h = (uintptr_t)sql;

	/* addresses differ mostly in their middle bits: spread them over the buckets */
	h ^= h >> 17;
	h *= (uintptr_t)0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 7) % STMT_BUCKETS;
}

static int
validate_schema(const struct juki_schema *schema)
{
	size_t i;

	if (schema->component == NULL || schema->component[0] == '\0') {
		return JUKI_EINVAL;
	}
	if (schema->nsteps > 0 && schema->steps == NULL) {
		return JUKI_EINVAL;
	}
	for (i = 0; i < schema->nsteps; i++) {
		if (schema->steps[i].sql == NULL || schema->steps[i].version < 1) {
			return JUKI_EINVAL;
		}
		if (i > 0 && schema->steps[i].version <= schema->steps[i - 1].version) {
			return JUKI_EINVAL;
		}
	}
	return 0;
}

static int
validate_schemas(const struct juki_schema *schemas, size_t nschemas, char *err, size_t errlen)
{
	size_t i, j;

	if (nschemas > 0 && schemas == NULL) {
		juki_seterr(err, errlen, "schemas is NULL");
		return JUKI_EINVAL;
	}
	for (i = 0; i < nschemas; i++) {
		if (validate_schema(&schemas[i]) != 0) {
			juki_seterr(
			    err, errlen,
			    "schema %zu (%s): no component, or steps not in increasing order", i,
			    schemas[i].component ? schemas[i].component : "?");
			return JUKI_EINVAL;
		}
		if (strcmp(schemas[i].component, builtin_schema.component) == 0) {
			juki_seterr(err, errlen, "schema %s: the name is reserved for libjuki",
				    schemas[i].component);
			return JUKI_EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(schemas[i].component, schemas[j].component) == 0) {
				juki_seterr(err, errlen, "schema %s: listed twice",
					    schemas[i].component);
				return JUKI_EINVAL;
			}
		}
	}
	return 0;
}

static int
read_version(sqlite3 *db, const char *component, int *version)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version WHERE component = ?1", -1,
				&stmt, NULL);
	if (rc != SQLITE_OK) {
		goto out;
	}
	sqlite3_bind_text(stmt, 1, component, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int(stmt, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*version = 0;
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(stmt);
	return rc == SQLITE_OK ? 0 : JUKI_ESTORE;
}

static int
write_version(sqlite3 *db, const char *component, int version)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"INSERT INTO schema_version(component, version) VALUES(?1, ?2) "
				"ON CONFLICT(component) DO UPDATE SET version = excluded.version",
				-1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		goto out;
	}
	sqlite3_bind_text(stmt, 1, component, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, version);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(stmt);
	return rc == SQLITE_OK ? 0 : JUKI_ESTORE;
}

static int
check_known(sqlite3 *db, const struct juki_schema *schema, char *err, size_t errlen)
{
	int current, known;

	if (read_version(db, schema->component, &current) != 0) {
		juki_seterr(err, errlen, "schema %s: %s", schema->component, sqlite3_errmsg(db));
		return JUKI_ESTORE;
	}
	known = schema->nsteps > 0 ? schema->steps[schema->nsteps - 1].version : 0;
	if (current > known) {
		juki_seterr(err, errlen,
			    "schema %s: the database is at version %d, this program knows up to %d",
			    schema->component, current, known);
		return JUKI_ESCHEMA;
	}
	return 0;
}

/*
 * Each step commits with its schema_version row, so a crash between steps
 * leaves a database that the next start continues from.  The version is
 * read again inside the write lock in case another process (juki-ctl on
 * the daemon's file) migrated it meanwhile.
 */
static int
migrate(sqlite3 *db, const struct juki_schema *schema, char *err, size_t errlen)
{
	const struct juki_migration *step;
	char *msg = NULL;
	int current, rc = 0;
	size_t i;

	for (i = 0; i < schema->nsteps; i++) {
		step = &schema->steps[i];
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
			juki_seterr(err, errlen, "schema %s v%d: %s", schema->component,
				    step->version, msg ? msg : sqlite3_errmsg(db));
			rc = JUKI_ESTORE;
			goto out;
		}
		if (read_version(db, schema->component, &current) != 0) {
			juki_seterr(err, errlen, "schema %s v%d: %s", schema->component,
				    step->version, sqlite3_errmsg(db));
			rc = JUKI_ESTORE;
			goto fail;
		}
		if (current >= step->version) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			continue;
		}
		if (sqlite3_exec(db, step->sql, NULL, NULL, &msg) != SQLITE_OK) {
			juki_seterr(err, errlen, "schema %s v%d: %s", schema->component,
				    step->version, msg ? msg : sqlite3_errmsg(db));
			rc = JUKI_ESTORE;
			goto fail;
		}
		if (write_version(db, schema->component, step->version) != 0 ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			juki_seterr(err, errlen, "schema %s v%d: %s", schema->component,
				    step->version, msg ? msg : sqlite3_errmsg(db));
			rc = JUKI_ESTORE;
			goto fail;
		}
	}
	goto out;
fail:
	if (!sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
out:
	sqlite3_free(msg);
	return rc;
}

/*
 * The file is created here rather than by SQLite so that it never exists
 * with the umask's permissions; SQLite gives the -wal and -shm files the
 * mode of the database.  An existing file keeps the mode its owner chose.
 */
static int
create_file(const char *path, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			return 0;
		}
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return JUKI_ESTORE;
	}
	if (fchmod(fd, 0600) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return JUKI_ESTORE;
	}
	close(fd);
	return 0;
}

void
juki_wal_setup(sqlite3 *db, const char *path)
{
	static const unsigned char zeros[65536];
	sqlite3_stmt *st = NULL;
	int64_t page = 0;
	off_t want, at;
	struct stat sb;
	char wal[4096];
	int fd = -1;

	sqlite3_wal_autocheckpoint(db, JUKI_WAL_CHECKPOINT_PAGES);
	if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		page = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	/* the WAL's header (32 bytes), then each frame: a header of 24 bytes and a page */
	want = 32 + (off_t)JUKI_WAL_CHECKPOINT_PAGES * (off_t)(24 + page);
	if (page <= 0 || snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal) ||
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		return;
	}
	/* The write lock is held: no connection adds a frame meanwhile. */
	if ((fd = open(wal, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0 && fstat(fd, &sb) == 0 &&
	    S_ISREG(sb.st_mode) && sb.st_size < want) {
		for (at = sb.st_size; at < want; at += (off_t)sizeof(zeros)) {
			size_t n =
			    want - at < (off_t)sizeof(zeros) ? (size_t)(want - at) : sizeof(zeros);

			if (pwrite(fd, zeros, n, at) != (ssize_t)n) {
				break;
			}
		}
		if (at < want || fdatasync(fd) != 0) {
			(void)ftruncate(fd, sb.st_size);
		}
	}
	if (fd >= 0) {
		close(fd);
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* The connection store->db as every store is used; err may be NULL. */
static int
configure(struct juki_store *store, char *err, size_t errlen)
{
	static const char *const pragmas = "PRAGMA synchronous = FULL;"
					   "PRAGMA foreign_keys = ON;"
					   "PRAGMA secure_delete = ON;"
					   /*
					    * 16 MiB of page cache: random codes keep
					    * index pages hot, and the daemon stays
					    * within its 64 MiB.
					    */
					   "PRAGMA cache_size = -16384;"
					   "PRAGMA temp_store = MEMORY;"
					   "CREATE TABLE IF NOT EXISTS schema_version("
					   "component TEXT PRIMARY KEY, version INTEGER NOT NULL);";
	sqlite3 *db = store->db;
	const char *path = store->path;
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	char *msg = NULL;
	int rc = JUKI_ESTORE;

	if (sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	mode = sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		juki_seterr(err, errlen, "%s: journal mode is %s, not wal", path,
			    mode ? (const char *)mode : "unknown");
		goto out;
	}
	if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_free(msg);
	sqlite3_finalize(stmt);
	if (rc == 0 && store->wal_reserved) {
		juki_wal_setup(db, path); /* with stmt finalized */
	}
	return rc;
}

static int64_t
hash64_final(EVP_MD_CTX *ctx)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t v = 0;

	EVP_DigestFinal_ex(ctx, md, &len);
	for (int i = 0; i < 8; i++) {
		v = v << 8 | md[i];
	}
	return (int64_t)v;
}

int64_t
juki_hash64(const char *const *parts, size_t n)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int64_t v = 0;

	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		for (size_t i = 0; i < n; i++) {
			EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
		}
		v = hash64_final(ctx);
	}
	EVP_MD_CTX_free(ctx);
	return v;
}

/* juki_hash64(a, b, ...) in SQL: the same value for the same texts (NULL as ""). */
static void
sql_hash64(sqlite3_context *sctx, int argc, sqlite3_value **argv)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	static const unsigned char nul = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		sqlite3_result_error_nomem(sctx);
		return;
	}
	for (int i = 0; i < argc; i++) {
		const unsigned char *t = sqlite3_value_text(argv[i]);

		if (t != NULL) {
			EVP_DigestUpdate(ctx, t, (size_t)sqlite3_value_bytes(argv[i]));
		}
		EVP_DigestUpdate(ctx, &nul, 1);
	}
	sqlite3_result_int64(sctx, hash64_final(ctx));
	EVP_MD_CTX_free(ctx);
}

static int
store_open(const char *path, const struct juki_schema *schemas, size_t nschemas, int wal_reserved,
	   struct juki_store **out, char *err, size_t errlen)
{
	struct juki_store *store = NULL;
	size_t i;
	int rc;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (out == NULL) {
		return JUKI_EINVAL;
	}
	*out = NULL;
	/* a store is durable: no in-memory or anonymous temporary database */
	if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0) {
		juki_seterr(err, errlen, "a store needs a file path");
		return JUKI_EINVAL;
	}
	rc = validate_schemas(schemas, nschemas, err, errlen);
	if (rc != 0) {
		return rc;
	}
	store = calloc(1, sizeof(*store));
	if (store == NULL || (store->path = strdup(path)) == NULL) {
		juki_seterr(err, errlen, "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	store->wal_reserved = wal_reserved;
	rc = create_file(path, err, errlen);
	if (rc != 0) {
		goto out;
	}
	if (sqlite3_open_v2(path, &store->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path,
			    store->db ? sqlite3_errmsg(store->db) : "out of memory");
		rc = JUKI_ESTORE;
		goto out;
	}
	rc = configure(store, err, errlen);
	if (rc == 0 && sqlite3_create_function(store->db, "juki_hash64", -1,
					       SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_hash64,
					       NULL, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(store->db));
		rc = JUKI_ESTORE;
	}
	if (rc != 0) {
		goto out;
	}
	/* refuse before changing anything if any component is from the future */
	rc = check_known(store->db, &builtin_schema, err, errlen);
	for (i = 0; rc == 0 && i < nschemas; i++) {
		rc = check_known(store->db, &schemas[i], err, errlen);
	}
	if (rc != 0) {
		goto out;
	}
	rc = migrate(store->db, &builtin_schema, err, errlen);
	for (i = 0; rc == 0 && i < nschemas; i++) {
		rc = migrate(store->db, &schemas[i], err, errlen);
	}
	if (rc != 0) {
		goto out;
	}
	*out = store;
	store = NULL;
out:
	juki_store_close(store);
	return rc;
}

int
juki_store_open(const char *path, const struct juki_schema *schemas, size_t nschemas,
		struct juki_store **out, char *err, size_t errlen)
{
	return store_open(path, schemas, nschemas, 1, out, err, errlen);
}

int
juki_store_open_bulk(const char *path, const struct juki_schema *schemas, size_t nschemas,
		     struct juki_store **out, char *err, size_t errlen)
{
	return store_open(path, schemas, nschemas, 0, out, err, errlen);
}

void
juki_store_close(struct juki_store *store)
{
	struct cached_stmt *c, *next;
	size_t i;

	if (store == NULL) {
		return;
	}
	for (i = 0; i < STMT_BUCKETS; i++) {
		for (c = store->stmts[i]; c != NULL; c = next) {
			next = c->next;
			sqlite3_finalize(c->stmt);
			free(c);
		}
	}
	/* v2: statements the daemon prepared itself and leaked must not keep the file open */
	sqlite3_close_v2(store->db);
	free(store->path);
	free(store);
}

int
juki_store_replace(struct juki_store *store, const char *from, char *err, size_t errlen)
{
	size_t len = strlen(store->path) + sizeof("-wal");
	char *wal = malloc(len), *dir = strdup(store->path), *slash;
	struct stat sb;
	int rc = JUKI_ESTORE, dfd;

	if (wal == NULL || dir == NULL) {
		free(wal);
		free(dir);
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	snprintf(wal, len, "%s-wal", store->path);
	for (size_t i = 0; i < STMT_BUCKETS; i++) {
		struct cached_stmt *c, *next;

		for (c = store->stmts[i]; c != NULL; c = next) {
			next = c->next;
			sqlite3_finalize(c->stmt);
			free(c);
		}
		store->stmts[i] = NULL;
	}
	/* The last connection closes: SQLite checkpoints the WAL and removes it. */
	if (sqlite3_close(store->db) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", store->path, sqlite3_errmsg(store->db));
		goto reopen;
	}
	store->db = NULL;
	if (stat(wal, &sb) == 0 && sb.st_size > 0) {
		/* Another connection holds it: the file must not meet this WAL. */
		juki_seterr(err, errlen, "%s: the store is open elsewhere", store->path);
		goto reopen;
	}
	if (rename(from, store->path) != 0) {
		juki_seterr(err, errlen, "%s: %s", from, strerror(errno));
		goto reopen;
	}
	(void)unlink(wal);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*(slash == dir ? slash + 1 : slash) = '\0';
	}
	dfd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;
reopen:
	if (store->db == NULL) {
		if (sqlite3_open_v2(store->path, &store->db,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				    NULL) != SQLITE_OK ||
		    configure(store, rc == 0 ? err : NULL, errlen) != 0 ||
		    sqlite3_create_function(store->db, "juki_hash64", -1,
					    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_hash64,
					    NULL, NULL) != SQLITE_OK) {
			if (rc == 0) {
				juki_seterr(err, errlen, "%s: reopened: %s", store->path,
					    store->db ? sqlite3_errmsg(store->db)
						      : "out of memory");
			}
			rc = JUKI_ESTORE;
		}
	}
	free(wal);
	free(dir);
	return rc;
}

sqlite3 *
juki_store_db(struct juki_store *store)
{
	return store ? store->db : NULL;
}

const char *
juki_store_path(const struct juki_store *store)
{
	return store ? store->path : NULL;
}

static int
only_space(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
			return 0;
		}
	}
	return 1;
}

sqlite3_stmt *
juki_store_prepare(struct juki_store *store, const char *sql)
{
	struct cached_stmt *c;
	sqlite3_stmt *stmt = NULL;
	const char *tail = NULL;
	size_t b;

	if (store == NULL || sql == NULL) {
		return NULL;
	}
	store->errset = 0;
	b = bucket_of(sql);
	for (c = store->stmts[b]; c != NULL; c = c->next) {
		if (c->sql == sql) {
			sqlite3_reset(c->stmt);
			sqlite3_clear_bindings(c->stmt);
			return c->stmt;
		}
	}
	if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail) !=
	    SQLITE_OK) {
		return NULL;
	}
	if (stmt == NULL) {
		own_error(store, "empty statement");
		return NULL;
	}
	/* a second statement would be silently ignored: refuse it */
	if (tail != NULL && !only_space(tail)) {
		sqlite3_finalize(stmt);
		own_error(store, "more than one statement given to juki_store_prepare");
		return NULL;
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		sqlite3_finalize(stmt);
		own_error(store, "out of memory");
		return NULL;
	}
	c->sql = sql;
	c->stmt = stmt;
	c->next = store->stmts[b];
	store->stmts[b] = c;
	return stmt;
}

const char *
juki_store_errmsg(struct juki_store *store)
{
	if (store == NULL) {
		return "no store";
	}
	return store->errset ? store->errbuf : sqlite3_errmsg(store->db);
}

int
juki_store_begin(struct juki_store *store)
{
	if (store == NULL) {
		return JUKI_EINVAL;
	}
	store->errset = 0;
	if (!sqlite3_get_autocommit(store->db)) {
		own_error(store, "a transaction is already open");
		return JUKI_EINVAL;
	}
	if (sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		note_failure(store);
		return JUKI_ESTORE;
	}
	store->changes_at_begin = sqlite3_total_changes64(store->db);
	return 0;
}

int
juki_store_commit(struct juki_store *store)
{
	if (store == NULL) {
		return JUKI_EINVAL;
	}
	store->errset = 0;
	if (sqlite3_get_autocommit(store->db)) {
		own_error(store, "no transaction is open");
		return JUKI_EINVAL;
	}
	if (sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		/* e.g. a deferred foreign key: the transaction is still open */
		juki_store_rollback(store);
		return JUKI_ESTORE;
	}
	note_commit(store);
	return 0;
}

int
juki_store_rollback(struct juki_store *store)
{
	if (store == NULL) {
		return JUKI_EINVAL;
	}
	/*
	 * Keep the message of whatever made the caller roll back: after a
	 * successful ROLLBACK SQLite's own text would be "not an error".
	 */
	if (!store->errset) {
		snprintf(store->errbuf, sizeof(store->errbuf), "%s", sqlite3_errmsg(store->db));
		/* what made the caller roll back: a statement of its own may have hit the full disk
		 */
		note_failure(store);
	}
	if (sqlite3_get_autocommit(store->db)) {
		store->errset = 1;
		return 0;
	}
	if (sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
		store->errset = 0;
		return JUKI_ESTORE;
	}
	store->errset = 1;
	return 0;
}

int
juki_store_in_txn(const struct juki_store *store)
{
	/* SQLite's own state, which also sees the rollback it does by itself after IOERR or FULL */
	return store != NULL && !sqlite3_get_autocommit(store->db);
}

int
juki_store_exec(struct juki_store *store, const char *sql)
{
	char *msg = NULL;
	int rc = 0;

	if (store == NULL || sql == NULL) {
		return JUKI_EINVAL;
	}
	store->errset = 0;
	if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		own_error(store, msg ? msg : sqlite3_errmsg(store->db));
		note_failure(store);
		rc = JUKI_ESTORE;
	}
	sqlite3_free(msg);
	return rc;
}

int
juki_store_checkpoint(struct juki_store *store, int tries)
{
	struct timespec pause = {0, CHECKPOINT_PAUSE_NS};
	struct cached_stmt *c;
	int log, ckpt, i, rc = JUKI_EAGAIN, src;
	size_t b;

	if (store == NULL || tries < 1) {
		return JUKI_EINVAL;
	}
	store->errset = 0;
	if (!sqlite3_get_autocommit(store->db)) {
		own_error(store, "checkpoint inside a transaction");
		return JUKI_EINVAL;
	}
	/* a cached statement left mid-result holds a read snapshot on the WAL */
	for (b = 0; b < STMT_BUCKETS; b++) {
		for (c = store->stmts[b]; c != NULL; c = c->next) {
			sqlite3_reset(c->stmt);
		}
	}
	/*
	 * TRUNCATE waits for readers in the busy handler; switch it off so
	 * that the caller's tries, not the busy timeout, bound the wait.
	 */
	sqlite3_busy_timeout(store->db, 0);
	for (i = 0; i < tries; i++) {
		if (i > 0) {
			nanosleep(&pause, NULL);
		}
		log = ckpt = -1;
		src = sqlite3_wal_checkpoint_v2(store->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log,
						&ckpt);
		if (src == SQLITE_OK && log == ckpt) {
			rc = 0;
			break;
		}
		if (src != SQLITE_OK && src != SQLITE_BUSY) {
			own_error(store, sqlite3_errmsg(store->db));
			rc = JUKI_ESTORE;
			break;
		}
	}
	if (rc == JUKI_EAGAIN) {
		own_error(store, "checkpoint did not complete: readers hold the WAL");
	}
	sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
	return rc;
}

int
juki_store_schema_version(struct juki_store *store, const char *component, int *version)
{
	if (store == NULL || component == NULL || version == NULL) {
		return JUKI_EINVAL;
	}
	store->errset = 0;
	return read_version(store->db, component, version);
}

void
juki_store_on_full(struct juki_store *store, juki_store_full_cb cb, void *arg)
{
	if (store != NULL) {
		store->on_full = cb;
		store->full_arg = arg;
	}
}

int
juki_store_full(const struct juki_store *store)
{
	return store != NULL && store->full;
}
