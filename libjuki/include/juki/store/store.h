/*
 * juki — the SQLite store of a daemon (docs/architecture.md §4.4).
 *
 * One database file per daemon, opened with WAL, synchronous=FULL,
 * foreign_keys=ON, secure_delete=ON and a busy timeout.  Schemas are
 * versioned per component ("juki" for the tables libjuki itself keeps: the
 * outbox and inbox; "csd", "prefd" ... for each daemon's own) in the table
 * schema_version(component, version); juki_store_open() applies the missing
 * migration steps of each component in order, each in its own transaction,
 * and refuses a database whose version of a component is newer than the
 * program knows (JUKI_ESCHEMA).
 */
#ifndef JUKI_STORE_H
#define JUKI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/*
 * The WAL pages after which a commit checkpoints, for the store and the
 * operation history alike: 16 MiB of WAL.  SQLite's 1,000 made every 300th
 * lookup wait for a checkpoint (docs/benchmarks.md, "How cost grows"); a
 * quarter as many, each larger, keep them out of the 99th percentile.
 */
#define JUKI_WAL_CHECKPOINT_PAGES 4000

/*
 * juki_wal_setup() - for db, open read-write in WAL mode at path: a
 * checkpoint every JUKI_WAL_CHECKPOINT_PAGES, and the WAL given the size it
 * reaches between two, its blocks written with zeros, so that a commit does
 * not grow the file (on ext4 an fdatasync of a file that grew writes its
 * inode too).  SQLite takes the zeros after the last frame for no frame, as
 * in a WAL it reuses.  The zeros are written under the write lock, with no
 * statement of db open; best effort: a full disk leaves the WAL as it was.
 */
void juki_wal_setup(sqlite3 *db, const char *path);

struct juki_migration {
	int version;     /* 1, 2, 3 ... in order */
	const char *sql; /* one or more statements */
};

struct juki_schema {
	const char *component;
	const struct juki_migration *steps;
	size_t nsteps;
};

struct juki_store;

/*
 * juki_store_open() - open (creating if needed, mode 0600) the database at
 * path and bring every schema in schemas up to date.  The "juki" schema of
 * the outbox/inbox is always applied first and need not be listed.
 * Returns 0, JUKI_ESTORE or JUKI_ESCHEMA with a message in err (err may be
 * NULL); JUKI_EINVAL for a missing path or ":memory:", or a schema without
 * a component name, named "juki", listed twice, or whose steps are not in
 * strictly increasing order from 1 (checked before the file is touched);
 * JUKI_ENOMEM.  A newer component is refused before any step is applied.
 * An existing file keeps its mode.
 */
int juki_store_open(const char *path, const struct juki_schema *schemas, size_t nschemas,
		    struct juki_store **out, char *err, size_t errlen);

/*
 * juki_store_open_bulk() - juki_store_open() for a file written in bulk with
 * its journal off and then put in place (the load's shadow): no WAL is
 * reserved (juki_wal_setup()), as it would be written for nothing.
 */
int juki_store_open_bulk(const char *path, const struct juki_schema *schemas, size_t nschemas,
			 struct juki_store **out, char *err, size_t errlen);

/* juki_store_close() - finalize cached statements and close; NULL is fine. */
void juki_store_close(struct juki_store *store);

/*
 * juki_store_replace() - put the database file at from in the place of the
 * store's file, atomically (rename), and go on with it: the cached
 * statements are finalized, the connection closed (SQLite checkpoints the
 * WAL and removes it), from renamed over the store's path, the directory
 * synced, the file opened again as juki_store_open() opens one (WAL,
 * synchronous=FULL, ...; no migration: from must hold the same schemas).
 * from must be complete and durable (fsync'd) before.  On failure the
 * store goes on with its old file when it still can.  0 or JUKI_ESTORE.
 * Outside a transaction; statements the caller prepared itself must be
 * finalized first.
 */
int juki_store_replace(struct juki_store *store, const char *from, char *err, size_t errlen);

/* juki_store_db() - the sqlite3 handle, for the daemon's own statements. */
sqlite3 *juki_store_db(struct juki_store *store);

/* juki_store_path() - the file the store was opened from. */
const char *juki_store_path(const struct juki_store *store);

/*
 * juki_store_prepare() - a prepared statement for sql, cached by the
 * address of sql (pass string literals) and reset and cleared before it is
 * handed out.  Owned by the store.  NULL on failure (logged by the caller
 * through juki_store_errmsg()), including for sql holding more than one
 * statement, which SQLite would otherwise silently ignore.
 */
sqlite3_stmt *juki_store_prepare(struct juki_store *store, const char *sql);

/*
 * juki_store_errmsg() - the last SQLite error text of this store, or the
 * reason for a refusal of the store's own.  It still describes the failure
 * after the juki_store_rollback() that follows it.
 */
const char *juki_store_errmsg(struct juki_store *store);

/*
 * Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK.  begin fails with
 * JUKI_EINVAL if one is already open, commit if none is.  rollback is safe
 * to call when none is.  A commit that fails rolls back (the transaction is
 * then closed).  All return 0 or JUKI_ESTORE.  juki_store_in_txn() is
 * SQLite's own state, so it also sees a rollback SQLite did by itself.
 */
int juki_store_begin(struct juki_store *store);
int juki_store_commit(struct juki_store *store);
int juki_store_rollback(struct juki_store *store);
int juki_store_in_txn(const struct juki_store *store);

/*
 * A full database or disk (SQLITE_FULL, or an I/O error of ENOSPC or
 * EDQUOT): every write fails until there is room again.  The store notes
 * it from begin, commit, exec and from the rollback that follows a failed
 * statement of the caller's own; one occurrence lasts from the first
 * refused write to the next committed transaction that wrote something.
 * juki_store_on_full() - call cb(arg, 1, why) when an occurrence starts and
 * cb(arg, 0, why) when it ends (cb NULL: none); juki_store_full() -
 * whether one is in progress.  juki_store_errmsg() then says "database or
 * disk is full".
 */
typedef void (*juki_store_full_cb)(void *arg, int full, const char *why);
void juki_store_on_full(struct juki_store *store, juki_store_full_cb cb, void *arg);
int juki_store_full(const struct juki_store *store);

/* juki_store_exec() - run statements with no results.  0 or JUKI_ESTORE. */
int juki_store_exec(struct juki_store *store, const char *sql);

/*
 * juki_store_checkpoint() - a TRUNCATE WAL checkpoint, retried (up to
 * tries times, waiting 10 ms between) until SQLite reports it complete.
 * The busy timeout is off meanwhile, so tries bounds the wait; cached
 * statements are reset first.  Returns 0, or JUKI_EAGAIN if readers kept it
 * from completing; JUKI_EINVAL inside a transaction or for tries < 1.
 */
int juki_store_checkpoint(struct juki_store *store, int tries);

/*
 * juki_hash64() - the first 8 bytes of SHA-256 over each text followed by a
 * NUL byte, as a signed 64-bit integer: a compact key to index texts by.
 * The same function is in SQL on every store as juki_hash64(a, b, ...), for
 * migrations that fill such a key.
 */
int64_t juki_hash64(const char *const *parts, size_t n);

/* juki_store_schema_version() - version of component, 0 if never applied. */
int juki_store_schema_version(struct juki_store *store, const char *component, int *version);

#endif
