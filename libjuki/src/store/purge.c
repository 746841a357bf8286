#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/store/purge.h"

#define LAST_YEAR 9999
#define MAX_DAYS  3650000
/* Beyond this many ms from 1970 the day arithmetic below could overflow. */
#define FAR_MS (1LL << 61)

/*
 * The tables of honnin.h.  Removed persons go first and their history with
 * them: once the current removal record is gone, nothing would find that
 * history by the removal any more.
 */
static const char removed_history_count[] =
    "SELECT count(*) FROM honnin_history WHERE code IN"
    " (SELECT code FROM honnin WHERE kind = 1 AND recorded_ms < ?1)";
static const char removed_history_delete[] =
    "DELETE FROM honnin_history WHERE id IN (SELECT h.id FROM honnin AS c"
    " JOIN honnin_history AS h ON h.code = c.code"
    " WHERE c.kind = 1 AND c.recorded_ms < ?1 LIMIT ?2)";
static const char removed_count[] =
    "SELECT count(*) FROM honnin WHERE kind = 1 AND recorded_ms < ?1";
static const char removed_delete[] =
    "DELETE FROM honnin WHERE code IN"
    " (SELECT code FROM honnin WHERE kind = 1 AND recorded_ms < ?1 LIMIT ?2)";
/* Not the removed persons' history: the first rule takes it, and a dry run must not count it twice.
 */
static const char history_count[] =
    "SELECT count(*) FROM honnin_history WHERE superseded_ms < ?1"
    " AND code NOT IN (SELECT code FROM honnin WHERE kind = 1 AND recorded_ms < ?1)";
static const char history_delete[] =
    "DELETE FROM honnin_history WHERE id IN"
    " (SELECT id FROM honnin_history WHERE superseded_ms < ?1"
    " AND code NOT IN (SELECT code FROM honnin WHERE kind = 1 AND recorded_ms < ?1) LIMIT ?2)";
/*
 * The update counts (更新件数リスト) are kept per JST day as text: a day is
 * due when it is before the cutoff's day, as a record of that day would be.
 * ?3 is the offset of Japan from UTC, bound by bind_cutoff().
 */
#define DAY_BEFORE_CUTOFF "day < strftime('%Y-%m-%d', (?1 + ?3) / 1000, 'unixepoch')"
static const char counts_count[] = "SELECT count(*) FROM honnin_counts WHERE " DAY_BEFORE_CUTOFF;
static const char counts_delete[] =
    "DELETE FROM honnin_counts WHERE (side, peer, day, reason) IN"
    " (SELECT side, peer, day, reason FROM honnin_counts WHERE " DAY_BEFORE_CUTOFF " LIMIT ?2)";
static const char digest_count[] = "SELECT count(*) FROM honnin_digest WHERE " DAY_BEFORE_CUTOFF;
static const char digest_delete[] =
    "DELETE FROM honnin_digest WHERE (side, peer, day) IN"
    " (SELECT side, peer, day FROM honnin_digest WHERE " DAY_BEFORE_CUTOFF " LIMIT ?2)";
/* Reconciliation's rows (the sender's side, component "reconcile"): per day too. */
static const char reconcile_count[] = "SELECT count(*) FROM reconcile WHERE " DAY_BEFORE_CUTOFF;
static const char reconcile_delete[] =
    "DELETE FROM reconcile WHERE (dest, day) IN"
    " (SELECT dest, day FROM reconcile WHERE " DAY_BEFORE_CUTOFF " LIMIT ?2)";
static const char reconcile_query_count[] =
    "SELECT count(*) FROM reconcile_query WHERE " DAY_BEFORE_CUTOFF;
static const char reconcile_query_delete[] =
    "DELETE FROM reconcile_query WHERE msg_id IN"
    " (SELECT msg_id FROM reconcile_query WHERE " DAY_BEFORE_CUTOFF " LIMIT ?2)";
static const char rejected_count[] = "SELECT count(*) FROM outbox_rejected WHERE rejected_ms < ?1";
static const char rejected_delete[] =
    "DELETE FROM outbox_rejected WHERE seq IN"
    " (SELECT seq FROM outbox_rejected WHERE rejected_ms < ?1 LIMIT ?2)";
static const char inbox_count[] = "SELECT count(*) FROM inbox WHERE received_ms < ?1";
static const char inbox_delete[] = "DELETE FROM inbox WHERE msg_id IN"
				   " (SELECT msg_id FROM inbox WHERE received_ms < ?1 LIMIT ?2)";
/* Refused replays (outbox.h), kept as long as the ids they reused. */
static const char mismatch_count[] = "SELECT count(*) FROM inbox_mismatch WHERE received_ms < ?1";
static const char mismatch_delete[] =
    "DELETE FROM inbox_mismatch WHERE id IN"
    " (SELECT id FROM inbox_mismatch WHERE received_ms < ?1 LIMIT ?2)";

static const struct juki_purge_rule honnin_rules[] = {
    {"honnin_removed_history", "honnin_history", removed_history_count, removed_history_delete,
     JUKI_PURGE_YEARS},
    {"honnin_removed", "honnin", removed_count, removed_delete, JUKI_PURGE_YEARS},
    {"honnin_history", "honnin_history", history_count, history_delete, JUKI_PURGE_YEARS},
    {"honnin_counts", "honnin_counts", counts_count, counts_delete, JUKI_PURGE_YEARS},
    {"honnin_digest", "honnin_digest", digest_count, digest_delete, JUKI_PURGE_YEARS},
};

static const struct juki_purge_rule reconcile_rules[] = {
    {"reconcile_query", "reconcile_query", reconcile_query_count, reconcile_query_delete,
     JUKI_PURGE_YEARS},
    {"reconcile", "reconcile", reconcile_count, reconcile_delete, JUKI_PURGE_YEARS},
};

static const struct juki_purge_rule store_rules[] = {
    {"outbox_rejected", "outbox_rejected", rejected_count, rejected_delete,
     JUKI_PURGE_REJECTED_YEARS},
    {"inbox", "inbox", inbox_count, inbox_delete, JUKI_PURGE_INBOX_DAYS},
    {"inbox_mismatch", "inbox_mismatch", mismatch_count, mismatch_delete, JUKI_PURGE_INBOX_DAYS},
};

#define NHONNIN (sizeof(honnin_rules) / sizeof(honnin_rules[0]))
#define NSTORE  (sizeof(store_rules) / sizeof(store_rules[0]))
#define NRECON  (sizeof(reconcile_rules) / sizeof(reconcile_rules[0]))

static const char *const period_names[] = {"years",           "rejected_years", "inbox_days",
					   "provision_years", "keep",           "keep_years"};

int64_t
juki_purge_due_ms(int64_t from_ms, int years)
{
	int64_t y, due_y;
	int m, d;

	if (years <= 0 || years > LAST_YEAR || from_ms > FAR_MS) {
		return INT64_MAX;
	}
	if (from_ms < -FAR_MS) {
		from_ms = -FAR_MS;
	}
	juki_clock_civil_from_days(juki_clock_today(from_ms), &y, &m, &d);
	due_y = y + years;
	if (due_y > LAST_YEAR) {
		return INT64_MAX;
	}
	/*
	 * The period ends the day before the same date `years` on, so purge is
	 * due on that date; a 29 February without its twin ends the period on
	 * 28 February (民法 143(2)), and purge is due on 1 March.
	 */
	if (m == 2 && d == 29 && juki_clock_days_in_month(due_y, 2) == 28) {
		m = 3;
		d = 1;
	}
	return juki_clock_day_start(juki_clock_days_from_civil(due_y, m, d));
}

int64_t
juki_purge_cutoff_ms(int64_t now_ms, int years)
{
	int64_t y, last_y;
	int m, d;

	if (years <= 0 || years > LAST_YEAR || now_ms < -FAR_MS) {
		return INT64_MIN;
	}
	if (now_ms > FAR_MS) {
		now_ms = FAR_MS;
	}
	juki_clock_civil_from_days(juki_clock_today(now_ms), &y, &m, &d);
	/* Past the last year due dates exist for, the last day of it decides. */
	if (y > LAST_YEAR) {
		y = LAST_YEAR;
		m = 12;
		d = 31;
	}
	/*
	 * The latest day whose due date is today or earlier: the same date
	 * `years` back, or the end of that month when it has no such day (a
	 * 29 February looking back to a common year).  Everything recorded
	 * before the next midnight is due.
	 */
	last_y = y - years;
	if (d > juki_clock_days_in_month(last_y, m)) {
		d = juki_clock_days_in_month(last_y, m);
	}
	return juki_clock_day_start(juki_clock_days_from_civil(last_y, m, d) + 1);
}

static int64_t
cutoff_of(enum juki_purge_period period, const struct juki_purge_conf *conf, int64_t now_ms)
{
	switch (period) {
	case JUKI_PURGE_YEARS:
		return juki_purge_cutoff_ms(now_ms, (int)conf->years);
	case JUKI_PURGE_REJECTED_YEARS:
		return juki_purge_cutoff_ms(now_ms, (int)conf->rejected_years);
	case JUKI_PURGE_PROVISION_YEARS:
		return juki_purge_cutoff_ms(now_ms, (int)conf->provision_years);
	case JUKI_PURGE_KEEP_MS:
		return conf->keep_ms <= 0 ? INT64_MIN : now_ms - conf->keep_ms;
	case JUKI_PURGE_KEEP_YEARS:
		return juki_purge_cutoff_ms(now_ms, (int)conf->keep_years);
	default:
		if (conf->inbox_days <= 0) {
			return INT64_MIN;
		}
		return now_ms - conf->inbox_days * JUKI_DAY_MS;
	}
}

static int
rule_valid(const struct juki_purge_rule *r)
{
	return r->name != NULL && r->table != NULL && r->count_sql != NULL &&
	       r->delete_sql != NULL && (int)r->period >= JUKI_PURGE_YEARS &&
	       r->period <= JUKI_PURGE_KEEP_YEARS;
}

/* ?1 the cutoff, and ?3 (in the statements by day) the offset of Japan from UTC. */
static void
bind_cutoff(sqlite3_stmt *st, int64_t cutoff)
{
	sqlite3_bind_int64(st, 1, cutoff);
	if (sqlite3_bind_parameter_count(st) >= 3) {
		sqlite3_bind_int64(st, 3, JUKI_JST_OFFSET_MS);
	}
}

static int
count_due(struct juki_store *store, const struct juki_purge_rule *r, int64_t cutoff, int64_t *n)
{
	sqlite3_stmt *st = juki_store_prepare(store, r->count_sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	bind_cutoff(st, cutoff);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		*n = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = JUKI_ESTORE;
	}
	sqlite3_reset(st);
	return rc;
}

static void
tick(const struct juki_purge_conf *conf)
{
	if (conf->tick != NULL) {
		conf->tick(conf->tick_arg);
	}
}

/* Delete what r finds due, at most batch rows per transaction. */
static int
delete_due(struct juki_store *store, const struct juki_purge_conf *conf,
	   const struct juki_purge_rule *r, int64_t cutoff, int64_t batch, int64_t *removed)
{
	sqlite3_stmt *st;
	int64_t n;
	int rc;

	*removed = 0;
	do {
		if ((rc = juki_store_begin(store)) != 0) {
			return rc;
		}
		if ((st = juki_store_prepare(store, r->delete_sql)) == NULL) {
			juki_store_rollback(store);
			return JUKI_ESTORE;
		}
		bind_cutoff(st, cutoff);
		sqlite3_bind_int64(st, 2, batch);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			juki_store_rollback(store);
			return JUKI_ESTORE;
		}
		n = sqlite3_changes64(juki_store_db(store));
		if ((rc = juki_store_commit(store)) != 0) {
			return rc;
		}
		*removed += n;
		tick(conf);
	} while (n >= batch);
	return 0;
}

static json_t *
time_or_null(int64_t ms)
{
	char when[32];

	if (ms == INT64_MIN || juki_clock_format(ms, when, sizeof(when)) != 0) {
		return json_null();
	}
	return json_string(when);
}

static int
wal_bytes(struct juki_store *store, int64_t *bytes)
{
	const char *path = juki_store_path(store);
	char *wal = NULL;
	struct stat sb;
	int rc = 0;

	if (asprintf(&wal, "%s-wal", path) < 0) {
		return JUKI_ENOMEM;
	}
	*bytes = 0;
	if (stat(wal, &sb) == 0) {
		*bytes = (int64_t)sb.st_size;
	} else if (errno != ENOENT) {
		rc = -errno;
	}
	free(wal);
	return rc;
}

/* The rules that apply to this store, libjuki's first. */
static int
collect_rules(struct juki_store *store, const struct juki_purge_rule *extra,
	      const struct juki_purge_rule ***out, size_t *n)
{
	const struct juki_purge_rule **list;
	size_t nextra = 0, k = 0;
	int honnin = 0, reconcile = 0;

	while (extra != NULL && extra[nextra].name != NULL) {
		nextra++;
	}
	if (juki_store_schema_version(store, "honnin", &honnin) != 0 ||
	    juki_store_schema_version(store, "reconcile", &reconcile) != 0) {
		return JUKI_ESTORE;
	}
	list = calloc(NHONNIN + NRECON + NSTORE + nextra + 1, sizeof(*list));
	if (list == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; honnin > 0 && i < NHONNIN; i++) {
		list[k++] = &honnin_rules[i];
	}
	for (size_t i = 0; reconcile > 0 && i < NRECON; i++) {
		list[k++] = &reconcile_rules[i];
	}
	for (size_t i = 0; i < NSTORE; i++) {
		list[k++] = &store_rules[i];
	}
	for (size_t i = 0; i < nextra; i++) {
		list[k++] = &extra[i];
	}
	*out = list;
	*n = k;
	return 0;
}

static int
check_args(struct juki_store *store, const struct juki_purge_conf *conf,
	   const struct juki_purge_rule *rules, json_t **report)
{
	if (store == NULL || conf == NULL || report == NULL) {
		return JUKI_EINVAL;
	}
	if (conf->years < 0 || conf->years > LAST_YEAR || conf->rejected_years < 0 ||
	    conf->rejected_years > LAST_YEAR || conf->provision_years < 0 ||
	    conf->provision_years > LAST_YEAR || conf->keep_ms < 0 || conf->keep_years < 0 ||
	    conf->keep_years > LAST_YEAR || conf->inbox_days < 0 || conf->inbox_days > MAX_DAYS ||
	    conf->batch < 0 || conf->checkpoint_tries < 0) {
		return JUKI_EINVAL;
	}
	for (size_t i = 0; rules != NULL && rules[i].name != NULL; i++) {
		if (!rule_valid(&rules[i])) {
			return JUKI_EINVAL;
		}
	}
	/* each batch commits on its own, and the checkpoint needs no open transaction */
	if (juki_store_in_txn(store)) {
		return JUKI_EINVAL;
	}
	return 0;
}

int
juki_purge_run(struct juki_store *store, const struct juki_purge_conf *conf,
	       const struct juki_purge_rule *rules, int64_t now_ms, int dry_run, json_t **report)
{
	const struct juki_purge_rule **list = NULL;
	json_t *rep = NULL, *items, *item;
	int64_t batch, due, removed, left, total_due = 0, total_removed = 0, total_left = 0;
	int64_t wal = 0, *cutoffs = NULL;
	int rc, ckpt_rc = 0, tries;
	size_t n = 0;

	if ((rc = check_args(store, conf, rules, report)) != 0) {
		return rc;
	}
	*report = NULL;
	batch = conf->batch > 0 ? conf->batch : JUKI_PURGE_BATCH;
	tries = conf->checkpoint_tries > 0 ? conf->checkpoint_tries : JUKI_PURGE_CHECKPOINT_TRIES;
	if ((rc = collect_rules(store, rules, &list, &n)) != 0) {
		return rc;
	}
	items = json_array();
	rep = json_pack("{s:b,s:o,s:o}", "dry_run", dry_run != 0, "now", time_or_null(now_ms),
			"rules", items);
	cutoffs = calloc(n + 1, sizeof(*cutoffs));
	if (rep == NULL || items == NULL || cutoffs == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		cutoffs[i] = cutoff_of(list[i]->period, conf, now_ms);
		removed = 0;
		if ((rc = count_due(store, list[i], cutoffs[i], &due)) != 0) {
			goto out;
		}
		if (!dry_run && due > 0 &&
		    (rc = delete_due(store, conf, list[i], cutoffs[i], batch, &removed)) != 0) {
			goto out;
		}
		item = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I}", "name", list[i]->name, "table",
				 list[i]->table, "period", period_names[list[i]->period], "cutoff",
				 time_or_null(cutoffs[i]), "due", (json_int_t)due, "removed",
				 (json_int_t)removed);
		if (item == NULL || json_array_append_new(items, item) != 0) {
			rc = JUKI_ENOMEM;
			goto out;
		}
		total_due += due;
		total_removed += removed;
	}
	json_object_set_new(rep, "due", json_integer(total_due));
	json_object_set_new(rep, "removed", json_integer(total_removed));
	if (dry_run) {
		goto done;
	}
	/*
	 * secure_delete zeroed the rows in the pages written to the WAL; the
	 * older images of those pages, with the rows in them, are still in the
	 * WAL file until a checkpoint copies the pages home and truncates it.
	 */
	tick(conf);
	ckpt_rc = juki_store_checkpoint(store, tries);
	if (ckpt_rc != 0 && ckpt_rc != JUKI_EAGAIN) {
		rc = ckpt_rc;
		goto out;
	}
	if ((rc = wal_bytes(store, &wal)) != 0) {
		goto out;
	}
	json_object_set_new(
	    rep, "checkpoint",
	    json_pack("{s:b,s:I}", "complete", ckpt_rc == 0, "wal_bytes", (json_int_t)wal));
	for (size_t i = 0; i < n; i++) {
		if ((rc = count_due(store, list[i], cutoffs[i], &left)) != 0) {
			goto out;
		}
		json_object_set_new(json_array_get(items, i), "remaining", json_integer(left));
		total_left += left;
	}
	json_object_set_new(rep, "verified",
			    json_boolean(ckpt_rc == 0 && wal == 0 && total_left == 0));
	if (ckpt_rc != 0) {
		rc = ckpt_rc;
	} else if (wal != 0 || total_left != 0) {
		rc = JUKI_EIO;
	}
done:
	*report = rep;
	rep = NULL;
out:
	json_decref(rep);
	free(cutoffs);
	free(list);
	return rc;
}

int
juki_purge_erase_at(int dirfd, const char *name)
{
	static const unsigned char zeros[65536];
	struct stat sb;
	off_t off = 0;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
	} else if (!S_ISREG(sb.st_mode)) {
		rc = JUKI_EINVAL;
	}
	while (rc == 0 && off < sb.st_size) {
		size_t want = (size_t)(sb.st_size - off) < sizeof(zeros)
				  ? (size_t)(sb.st_size - off)
				  : sizeof(zeros);
		ssize_t n = pwrite(fd, zeros, want, off);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			rc = n < 0 ? -errno : JUKI_EIO;
			break;
		}
		off += n;
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = -errno;
	}
	close(fd);
	if (rc == 0 && unlinkat(dirfd, name, 0) != 0) {
		rc = -errno;
	}
	return rc;
}

int
juki_purge_files(const char *dir, int64_t cutoff_ms, int dry_run, struct juki_purge_file_counts *n)
{
	DIR *d;
	struct dirent *e;
	int dfd, rc = 0;

	if (dir == NULL || n == NULL) {
		return JUKI_EINVAL;
	}
	memset(n, 0, sizeof(*n));
	if ((d = opendir(dir)) == NULL) {
		return errno == ENOENT ? 0 : -errno;
	}
	dfd = dirfd(d);
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		struct stat sb;
		int64_t mtime_ms;
		int erc;

		if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(sb.st_mode)) {
			continue;
		}
		mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
		if (cutoff_ms == INT64_MIN || mtime_ms >= cutoff_ms) {
			continue;
		}
		n->due++;
		if (dry_run) {
			continue;
		}
		if ((erc = juki_purge_erase_at(dfd, e->d_name)) == 0) {
			n->removed++;
		} else {
			n->failed++;
			rc = erc;
		}
	}
	if (!dry_run && n->removed > 0 && fsync(dfd) != 0 && rc == 0) {
		rc = -errno;
	}
	closedir(d);
	return rc;
}
