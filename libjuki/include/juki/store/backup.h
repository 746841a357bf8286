/*
 * juki — backups of a daemon's store (docs/architecture.md §12, 第4-9(2)).
 *
 * A backup is a directory holding two files: a consistent copy of the store
 * taken online through SQLite's backup API, and manifest.json, which
 * describes it and is written last, so that a directory with a manifest
 * holds a complete backup:
 *
 *   {"manifest_version": 1, "node": "urn:juki:pref:13",
 *    "time": "2026-11-25T01:02:03.456Z", "source": "/var/lib/juki/prefd.db",
 *    "file": "prefd.db", "size": 123456, "sha256": "<64 hex digits>",
 *    "page_size": 4096, "page_count": 30, "sqlite": "3.40.1",
 *    "schemas": {"juki": 1, "prefd": 1}}
 *
 * The copy is a self-contained database (rollback-journal mode, no -wal);
 * the daemon turns it back into WAL mode when it opens it after a restore.
 * The directory is created mode 0700, the files are 0600: a backup holds
 * everything the store does.
 */
#ifndef JUKI_BACKUP_H
#define JUKI_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/store/store.h"

#define JUKI_BACKUP_MANIFEST         "manifest.json"
#define JUKI_BACKUP_MANIFEST_VERSION 1
#define JUKI_BACKUP_MANIFEST_MAX     (64 * 1024)
#define JUKI_BACKUP_PAGES_PER_STEP   1024
#define JUKI_BACKUP_BEFORE_RESTORE   ".before-restore"

struct juki_backup_opts {
	const char *node; /* the node whose store it is, for the manifest */
	int64_t now_ms;   /* the manifest's time */
	/*
	 * Called after each step of the copy, e.g. to ping the service manager's
	 * watchdog while a large store is copied; NULL: none.
	 */
	void (*tick)(void *arg);
	void *tick_arg;
};

/*
 * juki_backup_take() - copy store into dir (created with missing parents,
 * mode 0700, when it does not exist) in steps of JUKI_BACKUP_PAGES_PER_STEP
 * pages, then write the manifest: each file written under a temporary name,
 * fsync'd, renamed into place, and the directory fsync'd.  Sets *manifest
 * (new reference).  Returns 0; JUKI_EINVAL for NULL arguments, an empty or
 * relative dir or a missing node; JUKI_EEXIST when dir already holds a
 * manifest (a backup is never overwritten) or a file of the copy's name
 * (the store's own directory, say); JUKI_EPERM when dir or a folder above
 * it is writable by others than the daemon's user and root, or owned by
 * another user (juki_dir_check_private()); -errno for a file-system
 * failure; JUKI_ESTORE when SQLite fails; JUKI_ENOMEM.  err says which
 * file and why.  Nothing is left under the final names on failure.
 */
int juki_backup_take(struct juki_store *store, const char *dir, const struct juki_backup_opts *opts,
		     json_t **manifest, char *err, size_t errlen);

/*
 * juki_backup_verify() - read dir's manifest; recompute the copy's size
 * and SHA-256; open the copy read-only and run PRAGMA integrity_check; check
 * its page count and schema versions against the manifest.  Sets *manifest
 * (new reference; may be NULL when not wanted) only on success.  Returns 0;
 * JUKI_EINVAL for NULL arguments; JUKI_ENOENT when dir or the manifest or
 * the copy is missing; JUKI_EFORMAT for a manifest that is not as above;
 * JUKI_EIO when the copy does not match its manifest or fails the integrity
 * check; -errno; JUKI_ENOMEM.  err says what does not match.
 */
int juki_backup_verify(const char *dir, json_t **manifest, char *err, size_t errlen);

/*
 * juki_backup_restore() - replace the store at store_path with the backup
 * in dir, offline (the daemon stopped):
 *   1. verify the backup (as juki_backup_verify());
 *   2. refuse, with -EBUSY, when the store is in use: the current store is
 *      opened with locking_mode=EXCLUSIVE and a zero busy timeout and read,
 *      which needs the lock no other connection may share — every open
 *      connection of a WAL database holds a shared lock on the file, even
 *      idle (a plain BEGIN EXCLUSIVE would not see an idle daemon: in WAL
 *      mode it excludes only other writers);
 *   3. refuse, with JUKI_EEXIST, a store that belongs to another node than
 *      the backup's (its node_identity, written by the daemon at first
 *      start);
 *   4. fold the old store's WAL into it, so that the replaced file is
 *      complete by itself, and keep it as <store_path>.before-restore (mode
 *      0600, an earlier one replaced);
 *   5. while holding SQLite's exclusive lock range on the old file (so that
 *      a daemon starting meanwhile waits), remove the old -wal, -shm and
 *      -journal (SQLite would apply a stale WAL or journal to the new file),
 *      copy the backup to a temporary file next to the store (mode 0600,
 *      the old file's owner and group; the SHA-256 checked again as it is
 *      copied), fsync it and rename it over the store; fsync the directory.
 * Refused first, with JUKI_EPERM, when dir or the store's folder (or a
 * folder above them) is writable by others than the caller and root, or
 * owned by another user (juki_dir_check_private()).
 * A missing store is simply created.  Sets *manifest (new reference; may be
 * NULL when not wanted) on success.  Returns 0; the codes of
 * juki_backup_verify(); JUKI_EPERM; -EBUSY; JUKI_EEXIST; -errno; JUKI_ESTORE.  err says why.
 */
int juki_backup_restore(const char *dir, const char *store_path, json_t **manifest, char *err,
			size_t errlen);

struct juki_backup_prune_counts {
	int64_t backups; /* complete backups of the node found */
	int64_t due;     /* of them, taken before the cutoff and not the newest */
	int64_t removed; /* erased */
	int64_t failed;  /* due but not (wholly) erased */
};

/*
 * juki_backup_prune() - the retention of backups (backup.keep, 第6-7): of
 * the directories directly in dir that hold a complete backup of node (a
 * valid manifest naming it; anything else is left alone), those whose
 * manifest time is before cutoff_ms (INT64_MIN: none) are due, except the
 * newest, which is always kept.  Unless dry_run, each due backup is erased
 * as purged files are (juki_purge_erase_at(), purge.h: overwritten, then
 * unlinked; the manifest last, so that an interrupted erasure is found and
 * finished by the next run) and its directory removed.  A missing dir holds
 * none.  Sets *n.  Returns 0, or the last failure (a negative code).
 */
int juki_backup_prune(const char *dir, const char *node, int64_t cutoff_ms, int dry_run,
		      struct juki_backup_prune_counts *n);

#endif
