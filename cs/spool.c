#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "csd.h"
#include "import.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "spool.h"

/* The longest the commit of a file is pinged for: past it, the watchdog judges. */
#define BUSY_MAX_MS (10 * 60 * 1000)

/* Finished jobs remembered for "import.status" besides their files in done/ and rejected/. */
#define RECENT_MAX 64
/* A file whose register changed under it is validated again at most this often. */
#define MAX_ATTEMPTS 3
#define NAME_MAX_LEN 200
/* Room for the spool's directories, so that a directory, a name and a suffix fit a path. */
#define DIR_MAX 3072

enum job_state {
	JOB_VALIDATING,
	JOB_ACCEPTED,
	JOB_REJECTED,
};

static const char *const state_names[] = {
    [JOB_VALIDATING] = "validating",
    [JOB_ACCEPTED] = "accepted",
    [JOB_REJECTED] = "rejected",
};

struct job {
	char name[NAME_MAX_LEN + 1];
	enum job_state state;
	struct csd_import *imp;
	json_t *result; /* the receipt or the report */
	int64_t started_ms, finished_ms;
	int attempts;
	struct job *next;
};

struct csd_spool {
	struct csd *cs;
	char incoming[DIR_MAX], done[DIR_MAX], rejected[DIR_MAX];
	struct event *timer;
	struct job *active;
	struct job *recent;
	size_t nrecent;
};

static const char sql_log_get[] = "SELECT receipt FROM import_log WHERE sha256 = ?1";
static const char sql_log_put[] =
    "INSERT INTO import_log (sha256, name, imported_ms, receipt) VALUES (?1, ?2, ?3, ?4)";

static void
job_free(struct job *j)
{
	if (j == NULL) {
		return;
	}
	csd_import_close(j->imp);
	json_decref(j->result);
	free(j);
}

static void
arm(struct csd_spool *sp, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(sp->timer, &tv);
}

static int
name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_LEN || name[0] == '.') {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_')) {
			return 0;
		}
	}
	return 1;
}

/* Write a JSON document next to a file, atomically: a temp name, fsync, rename. */
static int
write_json(const char *dir, const char *name, const char *suffix, const json_t *doc)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *text = json_dumps(doc, JSON_INDENT(2));
	size_t len;
	int fd, rc = 0;

	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix);
	snprintf(tmp, sizeof(tmp), "%s/.%s%s.tmp", dir, name, suffix);
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0 || rename(tmp, path) != 0) {
		rc = -errno;
	}
	if (fd >= 0) {
		close(fd);
	}
	free(text);
	return rc;
}

/* Move a finished file out of incoming/ (never over another), then its receipt or report. */
static void
file_away(struct csd_spool *sp, struct job *j)
{
	const char *dir = j->state == JOB_ACCEPTED ? sp->done : sp->rejected;
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;

	snprintf(from, sizeof(from), "%s/%s", sp->incoming, j->name);
	snprintf(to, sizeof(to), "%s/%s", dir, j->name);
	if (stat(to, &st) == 0) {
		/* A name used before: keep both, the new one stamped. */
		size_t used = strlen(j->name);

		snprintf(j->name + used, sizeof(j->name) - used, ".%lld",
			 (long long)j->finished_ms);
		snprintf(to, sizeof(to), "%s/%s", dir, j->name);
	}
	if (rename(from, to) != 0) {
		log_warn("import: cannot move %s to %s", from, to);
	} else if (utimensat(AT_FDCWD, to, NULL, 0) != 0) {
		/* Its time is the filing's: import.keep counts from there, not from its writing. */
		log_warn("import: cannot set the time of %s", to);
	}
	if (write_json(dir, j->name, j->state == JOB_ACCEPTED ? ".receipt.json" : ".report.json",
		       j->result) != 0) {
		log_warn("import: cannot write the %s of %s",
			 j->state == JOB_ACCEPTED ? "receipt" : "report", j->name);
	}
}

static void
finish(struct csd_spool *sp, enum job_state state, json_t *result)
{
	struct job *j = sp->active, **pp;

	sp->active = NULL;
	j->state = state;
	j->result = result;
	j->finished_ms = juki_node_now_ms(sp->cs->node);
	csd_import_close(j->imp);
	j->imp = NULL;
	file_away(sp, j);
	j->next = sp->recent;
	sp->recent = j;
	if (++sp->nrecent > RECENT_MAX) {
		for (pp = &sp->recent; (*pp)->next != NULL; pp = &(*pp)->next) {
		}
		job_free(*pp);
		*pp = NULL;
		sp->nrecent--;
	}
}

static void
reject(struct csd_spool *sp, const char *aborted)
{
	json_t *report = sp->active->imp != NULL ? csd_import_report_json(sp->active->imp) : NULL;

	if (report == NULL) {
		report = json_object();
	}
	if (aborted != NULL) {
		json_object_set_new(report, "aborted", json_string(aborted));
	}
	json_object_set_new(report, "file", json_string(sp->active->name));
	if (aborted != NULL) {
		/* Not the file's errors (there may be none): what stopped it. */
		log_notice("import: %s refused: %s", sp->active->name, aborted);
	} else {
		log_notice("import: %s refused: %lld errors", sp->active->name,
			   (long long)json_integer_value(json_object_get(report, "error_count")));
	}
	finish(sp, JOB_REJECTED, report);
}

/*
 * Why a step failed, in words: the store's own for a store failure
 * ("store: database or disk is full"), which a bare code would hide.
 */
static const char *
failure(struct csd_spool *sp, int rc, char *buf, size_t len)
{
	if (rc == JUKI_ESTORE) {
		snprintf(buf, len, "store: %s", juki_store_errmsg(juki_node_store(sp->cs->node)));
		return buf;
	}
	return juki_strerror(rc);
}

/* What the CS holds of code, for the import's consistency rules. */
static int
lookup(void *ctx, const char *code, struct juki_change *current, int64_t *own_version)
{
	static const char sql[] =
	    "SELECT max(version) FROM honnin_history WHERE code = ?1 AND lgcode = ?2";
	struct csd *cs = ctx;
	sqlite3_stmt *st;
	int rc = juki_honnin_current(juki_node_store(cs->node), code, current);

	*own_version = 0;
	if (rc != 0) {
		return rc;
	}
	/* Versions only grow: when the current record is ours, it holds our highest. */
	if (strcmp(current->lgcode, juki_node_self(cs->node)->id) == 0) {
		*own_version = current->version;
		return 0;
	}
	if ((st = juki_store_prepare(juki_node_store(cs->node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, juki_node_self(cs->node)->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > *own_version) {
		*own_version = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return 0;
}

/* A receipt stored with an applied file: the file was applied before. */
static json_t *
applied_before(struct csd *cs, const char *sha256)
{
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sql_log_get);
	json_t *receipt = NULL;

	if (st == NULL) {
		return NULL;
	}
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		receipt = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	}
	sqlite3_reset(st);
	return receipt;
}

/* Finish an op that recorded a file: the batch, the counts, the log of applied files. */
static int
finish_op(struct csd_spool *sp, struct csd_op *op, const json_t *receipt)
{
	sqlite3_stmt *st;
	char *text;
	int rc;

	if ((rc = csd_op_finish(op)) != 0) {
		return rc;
	}
	text = json_dumps(receipt, JSON_COMPACT);
	st = juki_store_prepare(juki_node_store(sp->cs->node), sql_log_put);
	if (text == NULL || st == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, json_string_value(json_object_get(receipt, "sha256")), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sp->active->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, op->now);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	sqlite3_reset(st);
	free(text);
	return rc;
}

/* Replay the validated file into the register, in one transaction. */
static int
apply(struct csd_spool *sp, json_t *receipt)
{
	struct csd *cs = sp->cs;
	struct juki_store *store = juki_node_store(cs->node);
	struct csd_import_change ic;
	struct csd_op op;
	int rc;

	if ((rc = csd_op_init(cs, &op)) != 0) {
		return rc;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		csd_op_free(&op);
		return rc;
	}
	rc = csd_import_rewind(sp->active->imp, lookup, cs);
	while (rc == 0 && (rc = csd_import_next(sp->active->imp, &ic)) == 1) {
		rc = csd_op_record(&op, &ic.change);
		/* A file of millions of rows holds the loop for minutes. */
		if (op.changes % 256 == 0) {
			juki_daemon_alive(juki_node_daemon(cs->node));
		}
	}
	/*
	 * The last batch, the counts, the commit and the WAL checkpoint after
	 * it take the longer the larger the file, and cannot ping themselves.
	 */
	juki_daemon_busy_begin(juki_node_daemon(cs->node), BUSY_MAX_MS);
	if (rc == 0) {
		rc = finish_op(sp, &op, receipt);
	}
	if (rc == 0) {
		rc = juki_store_commit(store);
	}
	juki_daemon_busy_end(juki_node_daemon(cs->node));
	if (rc != 0) {
		juki_store_rollback(store);
	} else {
		log_notice("import: %s applied: %zu changes", sp->active->name, op.changes);
		juki_node_kick(cs->node);
	}
	csd_op_free(&op);
	return rc;
}

/* The SHA-256 of a file, in hex (what receipts and import_log hold). */
static int
file_sha256(const char *path, char hex[65])
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = JUKI_EIO;

	if (ctx != NULL && f != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			EVP_DigestUpdate(ctx, buf, n);
		}
		if (!ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
			juki_hex_encode(md, 32, hex);
			rc = 0;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The whole file is valid: apply it. */
static void
accept_file(struct csd_spool *sp)
{
	struct job *j = sp->active;
	json_t *receipt = csd_import_receipt_json(j->imp);
	char err[256];
	int rc;

	if (receipt == NULL) {
		reject(sp, "cannot build the receipt");
		return;
	}
	rc = apply(sp, receipt);
	if (rc == JUKI_EAGAIN && ++j->attempts < MAX_ATTEMPTS) {
		/* The register changed between validation and replay: validate again. */
		char path[PATH_MAX];

		json_decref(receipt);
		csd_import_close(j->imp);
		j->imp = NULL;
		snprintf(path, sizeof(path), "%s/%s", sp->incoming, j->name);
		if (csd_import_open(path, juki_node_self(sp->cs->node)->id,
				    juki_node_now_ms(sp->cs->node), NULL, &j->imp, err,
				    sizeof(err)) != 0) {
			reject(sp, err);
		}
		return;
	}
	if (rc != 0) {
		json_decref(receipt);
		reject(sp, failure(sp, rc, err, sizeof(err)));
		return;
	}
	finish(sp, JOB_ACCEPTED, receipt);
}

/*
 * Who may have put a file in the spool: the daemon's user or root.  Anyone
 * else could have the daemon apply changes to the register.
 */
static int
owner_ok(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		juki_seterr(err, errlen,
			    "%s: owned by uid %u, not by the daemon's user (uid %u) or root", path,
			    (unsigned)st.st_uid, (unsigned)geteuid());
		return 0;
	}
	return 1;
}

/*
 * The spool and the folders above it, then incoming/, done/ and rejected/
 * that exist: each owned by the daemon's user or root and writable by
 * nobody else (juki_dir_check_private(), base/dir.h).
 */
int
csd_spool_check(const char *dir, char *err, size_t errlen)
{
	static const char *const sub[] = {"", "/incoming", "/done", "/rejected"};
	char path[DIR_MAX + 16], why[PATH_MAX + 128];
	int rc;

	if (dir == NULL) {
		return 0;
	}
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (i > 0 && lstat(path, &st) != 0 && errno == ENOENT) {
			continue;
		}
		if ((rc = juki_dir_check_private(path, why, sizeof(why))) != 0) {
			snprintf(err, errlen, "import spool: %s", why);
			return rc;
		}
	}
	return 0;
}

/* Partial uploads left by a failure or a stop: removed, they only take room. */
static void
remove_partial_uploads(struct csd_spool *sp)
{
	DIR *d = opendir(sp->incoming);
	struct dirent *e;

	if (d == NULL) {
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".upload-", 8) == 0) {
			if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
				log_notice("import: removed the partial upload %s/%s", sp->incoming,
					   e->d_name);
			}
		}
	}
	closedir(d);
}

/* The first file of incoming/ by name, or none. */
static int
next_file(struct csd_spool *sp, char *name, size_t len)
{
	DIR *d = opendir(sp->incoming);
	struct dirent *e;
	int found = 0;

	if (d == NULL) {
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char path[PATH_MAX];

		if (e->d_name[0] == '.' || !name_valid(e->d_name)) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", sp->incoming, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			continue;
		}
		if (!found || strcmp(e->d_name, name) < 0) {
			snprintf(name, len, "%.200s", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static void
start_next(struct csd_spool *sp)
{
	struct csd *cs = sp->cs;
	struct job *j;
	char name[NAME_MAX_LEN + 1], path[PATH_MAX], err[256], sha[65];
	json_t *before;
	struct csd_import_limits limits = {
	    .max_bytes = (uint64_t)csd_conf(cs->node)->import.max_bytes,
	};

	if (!next_file(sp, name, sizeof(name))) {
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		return;
	}
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->state = JOB_VALIDATING;
	j->started_ms = juki_node_now_ms(cs->node);
	sp->active = j;
	snprintf(path, sizeof(path), "%s/%s", sp->incoming, name);
	if (!owner_ok(path, err, sizeof(err))) {
		juki_alert(juki_node_alerts(cs->node), "spool-owner", NULL, NULL, "%s", err);
		reject(sp, err);
		return;
	}
	/*
	 * A file applied before (the daemon stopped between the commit and the
	 * filing, or the same file came again) is filed, never applied twice.
	 */
	if (file_sha256(path, sha) == 0 && (before = applied_before(cs, sha)) != NULL) {
		log_notice("import: %s was applied before; filing it", name);
		finish(sp, JOB_ACCEPTED, before);
		return;
	}
	if (csd_import_open(path, juki_node_self(cs->node)->id, j->started_ms, &limits, &j->imp,
			    err, sizeof(err)) != 0) {
		reject(sp, err);
		return;
	}
	log_info("import: %s: validating", name);
}

static int
record_change(void *arg, const struct csd_import_change *c)
{
	struct juki_change change = c->change;

	return csd_op_record(arg, &change);
}

/*
 * A small file is validated and recorded in one pass, in one transaction:
 * each change is recorded as validation produces it, and the transaction
 * goes back if an error turns up further on.  The register cannot change
 * under it, so no replay is needed.
 */
static void
single_pass(struct csd_spool *sp)
{
	struct csd *cs = sp->cs;
	struct juki_store *store = juki_node_store(cs->node);
	struct csd_import *imp = sp->active->imp;
	json_t *receipt = NULL;
	struct csd_op op;
	char why[320];
	int rc;

	if ((rc = csd_op_init(cs, &op)) != 0 || (rc = juki_store_begin(store)) != 0) {
		csd_op_free(&op);
		reject(sp, failure(sp, rc, why, sizeof(why)));
		return;
	}
	csd_import_on_change(imp, record_change, &op);
	rc = csd_import_validate(imp, 0, lookup, cs);
	if (rc == 1 && csd_import_accepted(imp)) {
		receipt = csd_import_receipt_json(imp);
		rc = receipt == NULL ? JUKI_ENOMEM : finish_op(sp, &op, receipt);
		if (rc == 0) {
			rc = juki_store_commit(store);
		}
		if (rc == 0) {
			log_notice("import: %s applied: %zu changes", sp->active->name, op.changes);
			csd_op_free(&op);
			juki_node_kick(cs->node);
			finish(sp, JOB_ACCEPTED, receipt);
			return;
		}
	}
	juki_store_rollback(store);
	csd_op_free(&op);
	json_decref(receipt);
	reject(sp, rc < 0 ? failure(sp, rc, why, sizeof(why)) : NULL);
}

static void
run(evutil_socket_t fd, short what, void *arg)
{
	struct csd_spool *sp = arg;
	int rc;

	(void)fd;
	(void)what;
	if (sp->active == NULL) {
		start_next(sp);
	}
	if (sp->active == NULL) {
		arm(sp, csd_conf(sp->cs->node)->import.scan_interval);
		return;
	}
	if (sp->active->imp != NULL && csd_import_bytes_total(sp->active->imp) <=
					   (uint64_t)csd_conf(sp->cs->node)->import.single_pass) {
		single_pass(sp);
		arm(sp, 0);
		return;
	}
	/*
	 * One transaction around a step's lookups: without it each of them is a
	 * read transaction of its own, with its locks taken and released.
	 */
	if ((rc = juki_store_begin(juki_node_store(sp->cs->node))) == 0) {
		rc = csd_import_validate(sp->active->imp,
					 (size_t)csd_conf(sp->cs->node)->import.step_rows, lookup,
					 sp->cs);
		juki_store_rollback(juki_node_store(sp->cs->node));
	}
	/* Steps follow each other at once: the watchdog's own timer may wait behind them. */
	juki_daemon_alive(juki_node_daemon(sp->cs->node));
	if (rc < 0) {
		char why[320];

		reject(sp, failure(sp, rc, why, sizeof(why)));
	} else if (rc == 1 && !csd_import_accepted(sp->active->imp)) {
		reject(sp, NULL);
	} else if (rc == 1) {
		accept_file(sp);
	}
	/* More to do: come back at once, after whatever else is waiting. */
	arm(sp, 0);
}

static int
make_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "import spool %s: %s", path, strerror(errno));
		return -errno;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "import spool %s: not a directory", path);
		return JUKI_EINVAL;
	}
	return 0;
}

int
csd_spool_new(struct csd *cs, struct csd_spool **out, char *err, size_t errlen)
{
	const char *dir = csd_conf(cs->node)->import.spool;
	struct csd_spool *sp;
	int rc;

	*out = NULL;
	if (dir == NULL) {
		return 0;
	}
	if (strlen(dir) > DIR_MAX - 16) {
		snprintf(err, errlen, "import.spool: a path of at most %d bytes", DIR_MAX - 16);
		return JUKI_ENAMETOOLONG;
	}
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL) {
		return JUKI_ENOMEM;
	}
	sp->cs = cs;
	snprintf(sp->incoming, sizeof(sp->incoming), "%s/incoming", dir);
	snprintf(sp->done, sizeof(sp->done), "%s/done", dir);
	snprintf(sp->rejected, sizeof(sp->rejected), "%s/rejected", dir);
	if ((rc = make_dir(dir, err, errlen)) != 0 ||
	    (rc = make_dir(sp->incoming, err, errlen)) != 0 ||
	    (rc = make_dir(sp->done, err, errlen)) != 0 ||
	    (rc = make_dir(sp->rejected, err, errlen)) != 0 ||
	    (rc = csd_spool_check(dir, err, errlen)) != 0) {
		free(sp);
		return rc;
	}
	remove_partial_uploads(sp);
	sp->timer = evtimer_new(juki_node_base(cs->node), run, sp);
	if (sp->timer == NULL) {
		free(sp);
		return JUKI_ENOMEM;
	}
	arm(sp, 0);
	*out = sp;
	return 0;
}

int
csd_spool_purge(struct juki_node *node, int64_t now_ms, int dry_run, json_t *files)
{
	const struct csd_import_conf *ic = &csd_conf(node)->import;
	char dir[PATH_MAX];
	int rc = 0, frc;

	if (ic->spool == NULL) {
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/done", ic->spool);
	if ((frc = juki_node_purge_files("import_done", dir, ic->keep, now_ms, dry_run, files)) !=
	    0) {
		rc = frc;
	}
	snprintf(dir, sizeof(dir), "%s/rejected", ic->spool);
	if ((frc = juki_node_purge_files("import_rejected", dir, ic->keep, now_ms, dry_run,
					 files)) != 0) {
		rc = frc;
	}
	return rc;
}

void
csd_spool_free(struct csd_spool *sp)
{
	struct job *j;

	if (sp == NULL) {
		return;
	}
	event_free(sp->timer);
	job_free(sp->active);
	while ((j = sp->recent) != NULL) {
		sp->recent = j->next;
		job_free(j);
	}
	free(sp);
}

static struct csd_spool *
spool_of(void *ctx, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);

	if (cs->spool == NULL) {
		juki_ctl_fail(err, "conflict", "no import spool is configured (import.spool)");
	}
	return cs->spool;
}

/* All n bytes at offset off: 0, or the errno of the failure. */
static int
write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return w < 0 ? errno : EIO;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/*
 * An upload failed with errnum: its partial file is removed (a full disk
 * stays full otherwise), a full disk alerted, the error said as it is.
 */
static int
upload_failed(struct csd_spool *sp, const char *tmp, int errnum, struct juki_ctl_error *err)
{
	unlink(tmp);
	if (errnum == ENOSPC || errnum == EDQUOT || errnum == EFBIG) {
		juki_alert(juki_node_alerts(sp->cs->node), "disk-full", NULL, NULL,
			   "import upload %s: %s; the partial upload is removed", tmp,
			   strerror(errnum));
	}
	return juki_ctl_fail(err, "internal", "%s: %s", tmp, strerror(errnum));
}

int
csd_cmd_import_put(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd_spool *sp = spool_of(ctx, err);
	const char *name = json_string_value(json_object_get(args, "name"));
	const char *data = json_string_value(json_object_get(args, "data"));
	const json_t *offset = json_object_get(args, "offset");
	int last = json_is_true(json_object_get(args, "last"));
	char tmp[PATH_MAX], path[PATH_MAX];
	unsigned char *bytes = NULL;
	struct stat st;
	size_t dlen;
	int fd = -1, n = 0, rc = 0, e;

	if (sp == NULL) {
		return JUKI_EINVAL;
	}
	if (name == NULL || !name_valid(name)) {
		return juki_ctl_fail(err, "usage",
				     "name: 1..200 of [A-Za-z0-9._-], not starting with .");
	}
	if (data == NULL || !json_is_integer(offset) || json_integer_value(offset) < 0) {
		return juki_ctl_fail(err, "usage", "data (base64) and offset required");
	}
	snprintf(tmp, sizeof(tmp), "%s/.upload-%s", sp->incoming, name);
	snprintf(path, sizeof(path), "%s/%s", sp->incoming, name);
	dlen = strlen(data);
	if (dlen % 4 != 0) {
		return juki_ctl_fail(err, "usage", "data: base64 in whole quanta");
	}
	if (dlen > 0) {
		bytes = malloc(dlen / 4 * 3);
		if (bytes == NULL) {
			return JUKI_ENOMEM;
		}
		n = EVP_DecodeBlock(bytes, (const unsigned char *)data, (int)dlen);
		if (n < 0) {
			free(bytes);
			return juki_ctl_fail(err, "usage", "data: not base64");
		}
		/* EVP_DecodeBlock counts the padding as zero bytes. */
		n -= (data[dlen - 1] == '=') + (data[dlen - 2] == '=');
	}
	fd = open(tmp,
		  O_WRONLY | O_CREAT | O_CLOEXEC | (json_integer_value(offset) == 0 ? O_TRUNC : 0),
		  0600);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = upload_failed(sp, tmp, errno, err);
		goto out;
	}
	if (st.st_size != json_integer_value(offset)) {
		rc = juki_ctl_fail(err, "usage", "offset %lld, but %lld bytes are uploaded",
				   (long long)json_integer_value(offset), (long long)st.st_size);
		unlink(tmp);
		goto out;
	}
	if (n > 0 && (e = write_all(fd, bytes, (size_t)n, st.st_size)) != 0) {
		rc = upload_failed(sp, tmp, e, err);
		goto out;
	}
	if (last) {
		char done[PATH_MAX], rejected[PATH_MAX];

		snprintf(done, sizeof(done), "%s/%s", sp->done, name);
		snprintf(rejected, sizeof(rejected), "%s/%s", sp->rejected, name);
		if (stat(path, &st) == 0 || stat(done, &st) == 0 || stat(rejected, &st) == 0) {
			rc = juki_ctl_fail(err, "conflict",
					   "a file named %s is already in the spool", name);
			unlink(tmp);
			goto out;
		}
		if (fsync(fd) != 0 || rename(tmp, path) != 0) {
			rc = upload_failed(sp, tmp, errno, err);
			goto out;
		}
		log_info("import: %s received over the control socket", name);
		arm(sp, 0);
	}
	*result = json_pack("{s:s,s:I}", "job", name, "size",
			    (json_int_t)(json_integer_value(offset) + n));
out:
	if (fd >= 0) {
		close(fd);
	}
	free(bytes);
	return rc;
}

static json_t *
job_json(const struct job *j)
{
	json_t *out = json_pack("{s:s,s:s}", "job", j->name, "state", state_names[j->state]);

	if (j->imp != NULL) {
		json_object_set_new(out, "rows", json_integer((json_int_t)csd_import_rows(j->imp)));
		json_object_set_new(out, "bytes_read",
				    json_integer((json_int_t)csd_import_bytes_read(j->imp)));
		json_object_set_new(out, "bytes_total",
				    json_integer((json_int_t)csd_import_bytes_total(j->imp)));
		json_object_set_new(out, "errors",
				    json_integer((json_int_t)csd_import_error_count(j->imp)));
	}
	if (j->result != NULL) {
		json_object_set(out, j->state == JOB_ACCEPTED ? "receipt" : "report", j->result);
	}
	return out;
}

/* A job finished before this daemon started: its receipt or report on disk. */
static json_t *
filed_job(struct csd_spool *sp, const char *name)
{
	char path[PATH_MAX];
	json_t *doc;

	snprintf(path, sizeof(path), "%s/%s.receipt.json", sp->done, name);
	if ((doc = json_load_file(path, 0, NULL)) != NULL) {
		return json_pack("{s:s,s:s,s:o}", "job", name, "state", "accepted", "receipt", doc);
	}
	snprintf(path, sizeof(path), "%s/%s.report.json", sp->rejected, name);
	if ((doc = json_load_file(path, 0, NULL)) != NULL) {
		return json_pack("{s:s,s:s,s:o}", "job", name, "state", "rejected", "report", doc);
	}
	return NULL;
}

int
csd_cmd_import_status(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd_spool *sp = spool_of(ctx, err);
	const char *name = json_string_value(json_object_get(args, "job"));
	char path[PATH_MAX];
	struct stat st;
	json_t *jobs;

	if (sp == NULL) {
		return JUKI_EINVAL;
	}
	if (name == NULL) {
		jobs = json_array();
		if (sp->active != NULL) {
			json_array_append_new(jobs, job_json(sp->active));
		}
		for (struct job *j = sp->recent; j != NULL; j = j->next) {
			json_array_append_new(jobs, job_json(j));
		}
		*result = json_pack("{s:o}", "jobs", jobs);
		return 0;
	}
	if (sp->active != NULL && strcmp(sp->active->name, name) == 0) {
		*result = job_json(sp->active);
		return 0;
	}
	for (struct job *j = sp->recent; j != NULL; j = j->next) {
		if (strcmp(j->name, name) == 0) {
			*result = job_json(j);
			return 0;
		}
	}
	if (name_valid(name) && (*result = filed_job(sp, name)) != NULL) {
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", sp->incoming, name);
	if (name_valid(name) && stat(path, &st) == 0) {
		*result = json_pack("{s:s,s:s}", "job", name, "state", "queued");
		return 0;
	}
	return juki_ctl_fail(err, "not-found", "no import job %s", name);
}
