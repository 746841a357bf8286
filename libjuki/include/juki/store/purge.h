/*
 * juki — secure purge of what a node keeps only for a period
 * (docs/architecture.md §11, 第6-7).
 *
 * The date rule.  Identity information is erased "after the period that ends
 * on the day five years pass, counted from the day it was recorded"
 * (記録された日から起算して5年を経過する日までの期間経過後).  The period starts on
 * the JST calendar day of the recording (that day counts: 起算して), and ends
 * on the day before the same month and day `years` later; when that day does
 * not exist (29 February in a common year) it ends on the last day of the
 * month (民法 143(2)).  Purge is due from 00:00 JST of the day after the
 * period ends.  So a record of 2024-04-01 (any time that day, JST) is due
 * from 2029-04-01T00:00+09:00; one of 2024-02-29 from 2029-03-01T00:00+09:00,
 * and with four years from 2028-02-29T00:00+09:00.
 *
 * The rules.  A rule names a table and two statements over a cutoff: a row is
 * due when its time column is below the cutoff the rule's period gives for
 * the time of the run.  libjuki's own rules, applied first and in this order:
 *
 *   honnin_removed_history  honnin_history rows of every person whose current
 *                           record is a removal (kind 1) recorded before the
 *                           identity cutoff (`years`)
 *   honnin_removed          those current removal records themselves
 *   honnin_history          history rows superseded (superseded_ms) before
 *                           the identity cutoff
 *   reconcile_query,        reconciliation's queries in flight and its rows
 *   reconcile               per day (reconcile.h), by day as the update
 *                           counts (`years`)
 *   outbox_rejected         refused messages (they hold identity data in
 *                           their payloads) by rejected_ms (`rejected_years`)
 *   inbox                   message ids received (received_ms) more than
 *                           `inbox_days` days ago: the horizon of duplicate
 *                           detection
 *   inbox_mismatch          refused replays (their text) received
 *                           (received_ms) before the same horizon
 *
 * The honnin rules apply only when the store has the honnin tables
 * (juki_honnin_schema), the reconcile rules only when it has reconcile's.  A daemon adds rules for
 * its own tables.
 *
 * Deleting is secure: the store runs with secure_delete=ON, so SQLite
 * overwrites deleted content with zeros; the old page images that remain in
 * the write-ahead log are erased by a TRUNCATE checkpoint, retried until it
 * completes; then every rule is counted again (0 due) and the -wal file must
 * be 0 bytes.
 */
#ifndef JUKI_PURGE_H
#define JUKI_PURGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/store/store.h"

#define JUKI_PURGE_BATCH              10000 /* rows deleted per transaction */
#define JUKI_PURGE_CHECKPOINT_TRIES   1000  /* 10 ms apart: ten seconds */
#define JUKI_PURGE_DEFAULT_YEARS      5
#define JUKI_PURGE_DEFAULT_INBOX_DAYS 400

/* Which configured period a rule counts with. */
enum juki_purge_period {
	JUKI_PURGE_YEARS = 0,          /* conf->years, by the date rule */
	JUKI_PURGE_REJECTED_YEARS = 1, /* conf->rejected_years, by the date rule */
	JUKI_PURGE_INBOX_DAYS = 2,     /* conf->inbox_days: whole days of 86,400 s before the run */
	JUKI_PURGE_PROVISION_YEARS = 3, /* conf->provision_years, by the date rule */
	JUKI_PURGE_KEEP_MS = 4,         /* conf->keep_ms: rows older than that before the run */
	JUKI_PURGE_KEEP_YEARS = 5,      /* conf->keep_years (a daemon's own), by the date rule */
};

/*
 * A purge rule.  Both statements are single statements with parameters:
 *   count_sql   ?1 = cutoff (ms): one row, one integer, the rows due;
 *   delete_sql  ?1 = cutoff (ms), ?2 = at most this many rows: deletes due
 *               rows, at most ?2 of them (a LIMIT in a subquery: "DELETE FROM
 *               t WHERE rowid IN (SELECT rowid FROM t WHERE at_ms < ?1 LIMIT
 *               ?2)"); it is run again until it deletes fewer than ?2.
 * Statements are prepared through the store's cache, so they must be string
 * literals (static storage).  Rules run in the order given, after libjuki's;
 * a rule that must go before another (rows that find their due rows through
 * another table) comes first.
 */
struct juki_purge_rule {
	const char *name;  /* in the report and the log: "csd_cases" */
	const char *table; /* the table it deletes from */
	const char *count_sql;
	const char *delete_sql;
	enum juki_purge_period period;
};

/*
 * The periods, in the units their names say; 0 means never (nothing of that
 * rule is ever due).  The first three are the `purge:` section of a node's
 * configuration (node.h).
 */
struct juki_purge_conf {
	int64_t years;          /* identity information: removals and history */
	int64_t rejected_years; /* outbox_rejected */
	int64_t inbox_days;     /* inbox */
	/*
	 * Provision records (提供状況, 第6-8(5)ウ): the daemon's `provision.keep`,
	 * not part of the `purge:` section; 0: never (the default when unset).
	 */
	int64_t provision_years;
	/*
	 * A daemon's own period counted in milliseconds before the run (the
	 * link server's `authlink.keep`); 0: never (the default when unset).
	 */
	int64_t keep_ms;
	/*
	 * A daemon's own records kept for a period it configures (the CS's
	 * wide-area copy requests: `copy.keep`, 第6-4(4)), set by its
	 * purge_conf; 0: never.
	 */
	int64_t keep_years;
	int64_t batch;        /* rows per transaction; 0: JUKI_PURGE_BATCH */
	int checkpoint_tries; /* 0: JUKI_PURGE_CHECKPOINT_TRIES */
	/*
	 * Called between transactions and before the checkpoint, e.g. to ping
	 * the service manager's watchdog during a long purge; NULL: none.
	 */
	void (*tick)(void *arg);
	void *tick_arg;
};

/*
 * juki_purge_due_ms() - when a record dated from_ms (Unix ms) becomes due
 * for purge after `years` years under the date rule above: 00:00 JST of the
 * day after its period ends, as Unix ms.  years <= 0, or a due day past the
 * year 9999, gives INT64_MAX (never).
 */
int64_t juki_purge_due_ms(int64_t from_ms, int years);

/*
 * juki_purge_cutoff_ms() - the cutoff of the date rule at now_ms: a record
 * dated from_ms is due at now_ms exactly when from_ms < the cutoff, that is
 * when juki_purge_due_ms(from_ms, years) <= now_ms.  INT64_MIN (nothing is
 * due) for years <= 0 or beyond 9999.
 */
int64_t juki_purge_cutoff_ms(int64_t now_ms, int years);

/*
 * juki_purge_run() - apply libjuki's rules and then the daemon's (rules,
 * ended by an entry whose name is NULL; NULL for none) to store at now_ms.
 *
 * With dry_run, only counts what is due.  Otherwise deletes rule by rule in
 * transactions of at most conf->batch rows, so that a large purge never
 * holds the write lock for long; then a TRUNCATE checkpoint retried until
 * it completes (juki_store_checkpoint()); then verifies that no rule has a
 * due row left and that the -wal file is 0 bytes.  Running it again removes
 * nothing.  Outside any transaction of the caller.
 *
 * *report (new reference, also set on a failed verification) is
 *   {"dry_run": bool, "now": time, "due": n, "removed": n,
 *    "rules": [{"name", "table", "period": "years"|"rejected_years"|
 *               "inbox_days"|"provision_years"|"keep", "cutoff": time | null (never), "due": n,
 *               "removed": n, "remaining": n (not in a dry run)}, ...],
 *    "checkpoint": {"complete": bool, "wal_bytes": n},      (not in a dry run)
 *    "verified": bool}                                     (not in a dry run)
 * with counts only: no personal data.  Times are RFC 3339 UTC.
 *
 * Returns 0; JUKI_EINVAL for NULL arguments, a rule without a name, table
 * or statements, an unknown period, periods below 0 or above 9999 years
 * (3,650,000 days), a negative batch, or inside a transaction; JUKI_ESTORE for a statement that
 * fails (the rows of the transactions committed before stay deleted; no report); JUKI_EAGAIN when
 * the checkpoint could not complete (readers held the WAL) and JUKI_EIO when
 * rows are left or the -wal file is not empty: both with *report saying so.
 */
int juki_purge_run(struct juki_store *store, const struct juki_purge_conf *conf,
		   const struct juki_purge_rule *rules, int64_t now_ms, int dry_run,
		   json_t **report);

/*
 * Files that hold personal data outside the store (a CS's filed imports,
 * old backups) are erased as its rows are: their content overwritten with
 * zeros and fsync'd, then the name unlinked and the directory fsync'd.  On a
 * file system that writes in place (ext4, XFS on a disk) that leaves none
 * of the content readable through the file system or the device; on an SSD
 * (the controller remaps blocks) or a copy-on-write file system (btrfs,
 * ZFS, or one with snapshots) the zeros go to new blocks and the old ones
 * may remain on the medium until reused: there only encryption of the
 * volume (its key destroyed with the medium) makes them unreadable.
 */
struct juki_purge_file_counts {
	int64_t due;     /* files before the cutoff */
	int64_t removed; /* erased */
	int64_t failed;  /* due but not erased */
};

/*
 * juki_purge_erase_at() - erase the regular file name in the directory
 * dirfd as above (a symbolic link is not followed: JUKI_EINVAL or -ELOOP).
 * Returns 0 or a negative code; the file is left when it fails.
 */
int juki_purge_erase_at(int dirfd, const char *name);

/*
 * juki_purge_files() - the regular files directly in dir (not below; links
 * are not followed) last modified before cutoff_ms (INT64_MIN: none) are
 * due; unless dry_run, erase each (juki_purge_erase_at()).  A missing dir
 * has none.  Sets *n.  Returns 0, or the last failure (-errno) with the
 * others still erased and n->failed counting what was left.
 */
int juki_purge_files(const char *dir, int64_t cutoff_ms, int dry_run,
		     struct juki_purge_file_counts *n);

#endif
