/*
 * juki — the bulk load's control commands: load.h.
 */
#include "juki/node/load.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/daemon.h"
#include "juki/node/log.h"
#include "juki/node/node.h"
#include "juki/node/opcmds.h"
#include "juki/records/honnin_load.h"

#define LOAD_FILES_MAX 64
#define LOAD_CACHE_KIB 262144 /* the shadow's page cache while it is built: 256 MiB */
/* How often the event loop looks whether the thread is through: its end is not waited for. */
#define LOAD_POLL_US 20000

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct load_job {
	struct juki_node *node;
	int64_t id;
	int merge;
	char *files[LOAD_FILES_MAX];
	size_t nfiles;
	char shadow[PATH_MAX];
	char who[JUKI_URN_MAX];
	struct juki_load_conf conf;
	char self_id[JUKI_ID_MAX];
	char dest[JUKI_LOAD_DESTS][JUKI_URN_MAX];
	const char *dests[JUKI_LOAD_DESTS];
	struct juki_loader *ld;
	struct juki_load_progress last; /* kept when the loader is gone */
	pthread_t thread;
	int thread_running;
	int built; /* set by the thread when it is done: 1 ok, -1 failed */
	int stop;  /* set at the node's stop */
	struct juki_load_error err;
	enum job_state state;
	int64_t started_ms, finished_ms;
	int64_t wall0_ms, rows_ms,
	    built_ms; /* when the rows were in, when the indexes were built */
	struct event *timer;
};

struct load_state {
	int64_t next_id;
	struct load_job *job; /* the one under way or the last one */
};

static struct load_state *
state_of(struct juki_node *node)
{
	struct load_state *s = juki_node_module(node, JUKI_MODULE_LOAD);

	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
		if (juki_node_module_set(node, JUKI_MODULE_LOAD, s) != 0) {
			free(s);
			s = NULL;
		}
	}
	return s;
}

static void
job_free(struct load_job *job)
{
	if (job == NULL) {
		return;
	}
	if (job->timer != NULL) {
		event_free(job->timer);
	}
	juki_loader_free(job->ld);
	for (size_t i = 0; i < job->nfiles; i++) {
		free(job->files[i]);
	}
	free(job);
}

static void
remove_shadow(const char *path)
{
	static const char *const tails[] = {"", "-journal", "-wal", "-shm"};
	char p[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, tails[i]);
		(void)unlink(p);
	}
}

void
juki_load_leftover(const char *store_path)
{
	char p[PATH_MAX];

	if (store_path != NULL && snprintf(p, sizeof(p), "%s.load", store_path) < (int)sizeof(p)) {
		remove_shadow(p);
	}
}

static const char *
phase_name(const struct load_job *job)
{
	if (job->state == JOB_DONE) {
		return "done";
	}
	if (job->state == JOB_FAILED) {
		return "failed";
	}
	return job->last.phase == 0 ? "rows" : "indexes";
}

static json_t *
job_json(struct load_job *job, int64_t now_ms)
{
	struct juki_load_progress *p = &job->last;
	int64_t end = job->finished_ms ? job->finished_ms : now_ms;
	double secs = (double)(end - job->started_ms) / 1000.0;
	json_t *files = json_array(), *out;
	struct juki_loader *ld = __atomic_load_n(&job->ld, __ATOMIC_ACQUIRE);

	if (ld != NULL) {
		juki_loader_progress(ld, p);
	}
	for (size_t i = 0; i < job->nfiles; i++) {
		json_array_append_new(files, json_string(job->files[i]));
	}
	out = json_pack("{s:I,s:s,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "job",
			(json_int_t)job->id, "state",
			job->state == JOB_RUNNING ? "running"
			: job->state == JOB_DONE  ? "done"
						  : "failed",
			"phase", phase_name(job), "merge", job->merge, "files", files, "file",
			(json_int_t)p->file, "rows", (json_int_t)p->rows, "current",
			(json_int_t)p->current, "history", (json_int_t)p->history, "duplicates",
			(json_int_t)p->duplicates, "bytes", (json_int_t)p->bytes, "bytes_total",
			(json_int_t)p->bytes_total, "seconds", secs, "rows_per_s",
			secs > 0 ? (double)p->rows / secs : 0.0);
	if (out != NULL && job->state == JOB_FAILED) {
		json_object_set_new(out, "error",
				    json_pack("{s:s,s:I,s:s,s:s,s:s}", "file", job->err.file,
					      "line", (json_int_t)job->err.line, "field",
					      job->err.field, "reason", job->err.reason, "detail",
					      job->err.detail));
	}
	return out;
}

static void job_fail(struct load_job *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
job_fail(struct load_job *job, const char *reason, const char *fmt, ...)
{
	va_list ap;

	memset(&job->err, 0, sizeof(job->err));
	snprintf(job->err.reason, sizeof(job->err.reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(job->err.detail, sizeof(job->err.detail), fmt, ap);
	va_end(ap);
}

static int
fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		return -1;
	}
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * The shadow written back to disk while its indexes are built: once the
 * rows are in, a helper thread fdatasyncs it every FLUSH_EVERY_MS, so the
 * disk writes the table while the CPU sorts, and the sync before the
 * rename has little left to do.  (Not while the rows go in: tried there
 * too, it made them no faster.)  The descriptor is opened before anything
 * is written and the last sync goes through it too: a write-back error
 * seen by any of its syncs fails the load (on Linux an error one sync has
 * seen is not reported to a descriptor opened later).
 */
#define FLUSH_EVERY_MS 250

struct flusher {
	int fd;
	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int err; /* the first errno of a failed sync */
};

static void *
flusher_main(void *arg)
{
	struct flusher *fl = arg;

	pthread_mutex_lock(&fl->mu);
	while (!fl->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&fl->mu);
		if (fdatasync(fl->fd) != 0) {
			pthread_mutex_lock(&fl->mu);
			if (fl->err == 0) {
				fl->err = errno;
			}
			break;
		}
		pthread_mutex_lock(&fl->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += FLUSH_EVERY_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!fl->stop) {
			pthread_cond_timedwait(&fl->cv, &fl->mu, &ts);
		}
	}
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

static int
flusher_start(struct flusher *fl, const char *path)
{
	memset(fl, 0, sizeof(*fl));
	if ((fl->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return -1;
	}
	pthread_mutex_init(&fl->mu, NULL);
	pthread_cond_init(&fl->cv, NULL);
	return 0;
}

static void
flusher_go(struct flusher *fl)
{
	/* Without the helper the load is only slower: the last sync does it all. */
	fl->running = pthread_create(&fl->thread, NULL, flusher_main, fl) == 0;
}

/* The helper stopped, then the last sync: 0, or -1 with errno. */
static int
flusher_finish(struct flusher *fl, int sync)
{
	int rc = 0;

	if (fl->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (fl->running) {
		pthread_mutex_lock(&fl->mu);
		fl->stop = 1;
		pthread_cond_signal(&fl->cv);
		pthread_mutex_unlock(&fl->mu);
		pthread_join(fl->thread, NULL);
		fl->running = 0;
	}
	if (fl->err != 0) {
		errno = fl->err;
		rc = -1;
	} else if (sync && fsync(fl->fd) != 0) {
		rc = -1;
	}
	{
		int e = errno;

		close(fl->fd);
		errno = e;
	}
	fl->fd = -1;
	pthread_mutex_destroy(&fl->mu);
	pthread_cond_destroy(&fl->cv);
	return rc;
}

/* The thread of a fresh load: every row into the shadow, then its indexes; durable. */
static void *
build_main(void *arg)
{
	struct load_job *job = arg;
	struct juki_store *sh = NULL;
	struct juki_loader *ld = NULL;
	struct flusher fl = {.fd = -1};
	char err[256], pragmas[160];
	int rc = 0;

	if (juki_store_open_bulk(job->shadow, NULL, 0, &sh, err, sizeof(err)) != 0) {
		job_fail(job, "store", "%s", err);
		rc = -1;
		goto out;
	}
	if (flusher_start(&fl, job->shadow) != 0) {
		job_fail(job, "io", "%s: %s", job->shadow, strerror(errno));
		rc = -1;
		goto out;
	}
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -%d;"
		 "PRAGMA temp_store = FILE; PRAGMA secure_delete = OFF; PRAGMA threads = 2",
		 LOAD_CACHE_KIB);
	if (juki_store_exec(sh, pragmas) != 0 || juki_store_begin(sh) != 0) {
		job_fail(job, "store", "%s", juki_store_errmsg(sh));
		rc = -1;
		goto out;
	}
	if (juki_loader_new(sh, &job->conf, &ld) != 0) {
		job_fail(job, "store", "%s", juki_store_errmsg(sh));
		rc = -1;
		goto out;
	}
	/* Published for load.status on the event loop, which reads its progress only. */
	__atomic_store_n(&job->ld, ld, __ATOMIC_RELEASE);
	for (size_t i = 0; i < job->nfiles; i++) {
		struct stat sb;

		if (stat(job->files[i], &sb) == 0) {
			juki_loader_expect(job->ld, sb.st_size);
		}
	}
	for (size_t i = 0; i < job->nfiles && rc == 0; i++) {
		if (__atomic_load_n(&job->stop, __ATOMIC_RELAXED)) {
			job_fail(job, "stopped", "the daemon stopped");
			rc = -1;
		} else if (juki_loader_file(job->ld, job->files[i], &job->err) != 0) {
			rc = -1;
		}
	}
	job->rows_ms = juki_clock_mono_ms();
	if (rc == 0) {
		flusher_go(&fl);
	}
	if (rc == 0 &&
	    (juki_loader_finish(job->ld, &job->err) != 0 || juki_store_commit(sh) != 0)) {
		if (job->err.reason[0] == '\0') {
			job_fail(job, "store", "%s", juki_store_errmsg(sh));
		}
		rc = -1;
	}
out:
	juki_store_close(sh);
	if (fl.fd >= 0 && flusher_finish(&fl, rc == 0) != 0 && rc == 0) {
		job_fail(job, "io", "%s: %s", job->shadow, strerror(errno));
		rc = -1;
	}
	job->built_ms = juki_clock_mono_ms();
	__atomic_store_n(&job->built, rc == 0 ? 1 : -1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Into the shadow, the tables the daemon kept writing while it was built
 * (all but the records), then the load's update counts on top of the
 * store's; the shadow then takes the store's place.
 */
static int
swap_in(struct load_job *job)
{
	static const char tables_sql[] =
	    "SELECT name FROM live.sqlite_master WHERE type = 'table'"
	    " AND name NOT LIKE 'sqlite_%' AND name NOT IN ('honnin', 'honnin_history',"
	    " 'honnin_person', 'honnin_person_new') ORDER BY name";
	struct juki_store *main_store = juki_node_store(job->node), *sh = NULL;
	sqlite3_stmt *st = NULL;
	char err[256], sql[PATH_MAX + 64];
	int64_t held = 0;
	int rc;

	rc = juki_load_empty(main_store, &held);
	if (rc != 1) {
		if (rc < 0) {
			job_fail(job, "store", "%s", juki_store_errmsg(main_store));
		} else {
			job_fail(job, "conflict",
				 "records arrived during the load: load again with --merge");
		}
		return -1;
	}
	if (juki_store_open_bulk(job->shadow, NULL, 0, &sh, err, sizeof(err)) != 0) {
		job_fail(job, "store", "%s", err);
		return -1;
	}
	{
		char *q =
		    sqlite3_mprintf("ATTACH DATABASE %Q AS live", juki_store_path(main_store));

		rc = q == NULL ? -1 : juki_store_exec(sh, q);
		sqlite3_free(q);
	}
	if (rc != 0 || juki_store_begin(sh) != 0 ||
	    sqlite3_prepare_v2(juki_store_db(sh), tables_sql, -1, &st, NULL) != SQLITE_OK) {
		goto fail;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		snprintf(
		    sql, sizeof(sql),
		    "DELETE FROM main.\"%s\"; INSERT INTO main.\"%s\" SELECT * FROM live.\"%s\"", t,
		    t, t);
		if (juki_store_exec(sh, sql) != 0) {
			goto fail;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE ||
	    juki_store_exec(
		sh, "DELETE FROM main.sqlite_sequence;"
		    "INSERT INTO main.sqlite_sequence SELECT * FROM live.sqlite_sequence") != 0 ||
	    juki_loader_flush_counts(job->ld, sh) != 0 || juki_store_commit(sh) != 0 ||
	    juki_store_exec(sh, "DETACH DATABASE live") != 0) {
		goto fail;
	}
	juki_store_close(sh);
	sh = NULL;
	if (fsync_path(job->shadow) != 0) {
		job_fail(job, "io", "%s: %s", job->shadow, strerror(errno));
		return -1;
	}
	if (juki_store_replace(main_store, job->shadow, err, sizeof(err)) != 0) {
		job_fail(job, "store", "%s", err);
		return -1;
	}
	return 0;
fail:
	job_fail(job, "store", "%s", juki_store_errmsg(sh));
	sqlite3_finalize(st);
	juki_store_rollback(sh);
	juki_store_close(sh);
	return -1;
}

static void
job_finish(struct load_job *job, int ok)
{
	struct juki_node *node = job->node;
	char target[32], detail[700];

	if (job->ld != NULL) {
		juki_loader_progress(job->ld, &job->last);
	}
	job->state = ok ? JOB_DONE : JOB_FAILED;
	job->finished_ms = juki_node_now_ms(node);
	snprintf(target, sizeof(target), "load-%lld", (long long)job->id);
	if (ok) {
		snprintf(detail, sizeof(detail),
			 "files=%zu rows=%lld current=%lld history=%lld duplicates=%lld merge=%d",
			 job->nfiles, (long long)job->last.rows, (long long)job->last.current,
			 (long long)job->last.history, (long long)job->last.duplicates, job->merge);
		log_info(
		    "load %lld: %lld rows (%lld current, %lld history, %lld already held) "
		    "in %.1f s (rows %.1f s, indexes %.1f s, swap %.1f s)",
		    (long long)job->id, (long long)job->last.rows, (long long)job->last.current,
		    (long long)job->last.history, (long long)job->last.duplicates,
		    (double)(job->finished_ms - job->started_ms) / 1000.0,
		    job->rows_ms ? (double)(job->rows_ms - job->wall0_ms) / 1000.0 : 0.0,
		    job->rows_ms ? (double)(job->built_ms - job->rows_ms) / 1000.0 : 0.0,
		    job->rows_ms ? (double)(juki_clock_mono_ms() - job->built_ms) / 1000.0 : 0.0);
	} else {
		/* The history names the file and line, never a value. */
		snprintf(detail, sizeof(detail), "file=%s line=%lld field=%s reason=%s",
			 job->err.file[0] ? strrchr(job->err.file, '/') != NULL
						? strrchr(job->err.file, '/') + 1
						: job->err.file
					  : "-",
			 (long long)job->err.line, job->err.field[0] ? job->err.field : "-",
			 job->err.reason);
		log_warnx("load %lld: refused, nothing loaded: %s:%lld: %s%s%s (%s)",
			  (long long)job->id, job->err.file, (long long)job->err.line,
			  job->err.field, job->err.field[0] ? ": " : "", job->err.detail,
			  job->err.reason);
	}
	juki_opcmds_audit(juki_node_opcmds(node), job->who, "load.done", target,
			  ok ? "ok" : "invalid", detail);
	if (!job->merge) {
		remove_shadow(job->shadow);
	}
	juki_loader_free(job->ld);
	job->ld = NULL;
	/*
	 * The load's batches, keys and page cache go back to the system: the
	 * daemon serves on in its ordinary size (daemon.c keeps up to
	 * M_TRIM_THRESHOLD free otherwise, in the one arena of all its threads).
	 */
	malloc_trim(0);
}

static void
poll_job(evutil_socket_t fd, short what, void *arg)
{
	struct load_job *job = arg;
	struct timeval tv = {0, LOAD_POLL_US};
	int built = __atomic_load_n(&job->built, __ATOMIC_ACQUIRE), ok;

	(void)fd;
	(void)what;
	if (built == 0) {
		evtimer_add(job->timer, &tv);
		return;
	}
	pthread_join(job->thread, NULL);
	job->thread_running = 0;
	ok = built == 1;
	if (ok) {
		juki_daemon_busy_begin(juki_node_daemon(job->node), 10 * 60 * 1000);
		ok = swap_in(job) == 0;
		juki_daemon_busy_end(juki_node_daemon(job->node));
	}
	job_finish(job, ok);
}

static int
merge_load(struct load_job *job, struct juki_ctl_error *err)
{
	struct juki_node *node = job->node;
	struct juki_store *store = juki_node_store(node);
	struct juki_daemon *d = juki_node_daemon(node);
	int rc = 0;

	job->conf.fresh = 0;
	if (juki_store_begin(store) != 0) {
		return juki_ctl_fail(err, "internal", "store: %s", juki_store_errmsg(store));
	}
	juki_daemon_busy_begin(d, 60 * 60 * 1000);
	if (juki_loader_new(store, &job->conf, &job->ld) != 0) {
		job_fail(job, "store", "%s", juki_store_errmsg(store));
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < job->nfiles; i++) {
		struct stat sb;

		if (stat(job->files[i], &sb) == 0) {
			juki_loader_expect(job->ld, sb.st_size);
		}
	}
	for (size_t i = 0; rc == 0 && i < job->nfiles; i++) {
		if (juki_loader_file(job->ld, job->files[i], &job->err) != 0) {
			rc = -1;
		}
	}
	if (rc == 0 &&
	    (juki_loader_flush_counts(job->ld, store) != 0 || juki_store_commit(store) != 0)) {
		job_fail(job, "store", "%s", juki_store_errmsg(store));
		rc = -1;
	}
	if (rc != 0) {
		juki_store_rollback(store);
	}
	juki_daemon_busy_end(d);
	job_finish(job, rc == 0);
	return 0;
}

int
juki_load_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct load_state *s = state_of(node);
	struct juki_store *store = juki_node_store(node);
	const struct juki_caller *caller = juki_opcmds_caller(juki_node_opcmds(node));
	const struct juki_ident *self = juki_node_self(node);
	const struct juki_node_spec *spec = juki_node_spec(node);
	const json_t *files = json_object_get(args, "files"),
		     *merge = json_object_get(args, "merge");
	struct load_job *job;
	size_t i;
	json_t *f;
	int64_t held = 0;
	int empty;
	char target[32], detail[64];

	if (s == NULL) {
		return juki_ctl_fail(err, "internal", "out of memory");
	}
	if (caller != NULL && strcmp(caller->from, "local") != 0) {
		return juki_ctl_fail(err, "forbidden",
				     "load reads files on this host: run it on the local control "
				     "socket");
	}
	if (self->kind != JUKI_KIND_CS && self->kind != JUKI_KIND_PREF &&
	    self->kind != JUKI_KIND_JLIS) {
		return juki_ctl_fail(err, "unknown-command", "this node keeps no records to load");
	}
	if (!json_is_array(files) || json_array_size(files) == 0 ||
	    json_array_size(files) > LOAD_FILES_MAX) {
		return juki_ctl_fail(err, "usage", "files: 1 to %d paths", LOAD_FILES_MAX);
	}
	if (merge != NULL && !json_is_boolean(merge)) {
		return juki_ctl_fail(err, "usage", "merge: true or false");
	}
	json_array_foreach(files, i, f)
	{
		const char *p = json_string_value(f);
		struct stat sb;

		errno = 0;
		if (p == NULL || p[0] != '/') {
			return juki_ctl_fail(err, "usage", "files[%zu]: an absolute path", i);
		}
		if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode) || access(p, R_OK) != 0) {
			return juki_ctl_fail(err, "not-found", "%s: %s", p,
					     errno ? strerror(errno) : "not a regular file");
		}
	}
	if (s->job != NULL && s->job->state == JOB_RUNNING) {
		return juki_ctl_fail(err, "conflict", "load %lld is under way",
				     (long long)s->job->id);
	}
	if (juki_store_in_txn(store)) {
		return juki_ctl_fail(err, "conflict", "the store is in a transaction");
	}
	empty = juki_load_empty(store, &held);
	if (empty < 0) {
		return juki_ctl_fail(err, "internal", "store: %s", juki_store_errmsg(store));
	}
	if (!empty && !json_is_true(merge)) {
		return juki_ctl_fail(err, "conflict",
				     "the store holds records already: a load into a store that is "
				     "not empty needs --merge");
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		return juki_ctl_fail(err, "internal", "out of memory");
	}
	job->node = node;
	job->id = ++s->next_id;
	job->merge = json_is_true(merge);
	job->started_ms = juki_node_now_ms(node);
	job->wall0_ms = juki_clock_mono_ms();
	snprintf(job->who, sizeof(job->who), "%s", caller != NULL ? caller->who : "-");
	json_array_foreach(files, i, f)
	{
		if ((job->files[i] = strdup(json_string_value(f))) == NULL) {
			job_free(job);
			return juki_ctl_fail(err, "internal", "out of memory");
		}
		job->nfiles++;
	}
	snprintf(job->self_id, sizeof(job->self_id), "%s", self->id);
	for (size_t d = 0;
	     spec->honnin_dest != NULL && d < JUKI_LOAD_DESTS && spec->honnin_dest(node, d) != NULL;
	     d++) {
		snprintf(job->dest[d], sizeof(job->dest[d]), "%s", spec->honnin_dest(node, d));
		job->dests[d] = job->dest[d];
		job->conf.ndests++;
	}
	job->conf.kind = self->kind;
	job->conf.self_id = job->self_id;
	job->conf.dests = job->dests;
	job->conf.now_ms = job->started_ms;
	job->conf.fresh = !job->merge;
	job->conf.cancel = &job->stop;
	snprintf(target, sizeof(target), "load-%lld", (long long)job->id);
	snprintf(detail, sizeof(detail), "files=%zu merge=%d", job->nfiles, job->merge);
	juki_opcmds_note(juki_node_opcmds(node), target, detail);
	job_free(s->job);
	s->job = job;
	if (job->merge) {
		merge_load(job, err);
		*result = job_json(job, juki_node_now_ms(node));
		return 0;
	}
	if (snprintf(job->shadow, sizeof(job->shadow), "%s.load", juki_store_path(store)) >=
	    (int)sizeof(job->shadow)) {
		s->job = NULL;
		job_free(job);
		return juki_ctl_fail(err, "internal", "store path too long");
	}
	remove_shadow(job->shadow);
	{
		/*
		 * The shadow starts as a copy of the store: every table, the records'
		 * empty.  It becomes the store: made 0600 before anything is in it
		 * (VACUUM INTO writes into an empty file as it finds it).
		 */
		int fd = open(job->shadow, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		char *q = sqlite3_mprintf("VACUUM INTO %Q", job->shadow);
		int rc =
		    q == NULL || fd < 0 || fchmod(fd, 0600) != 0 ? -1 : juki_store_exec(store, q);

		if (fd >= 0) {
			close(fd);
		}
		if (rc != 0) {
			remove_shadow(job->shadow);
		}

		sqlite3_free(q);
		if (rc != 0) {
			s->job = NULL;
			job_free(job);
			return juki_ctl_fail(err, "internal", "store: %s",
					     juki_store_errmsg(store));
		}
	}
	job->timer = evtimer_new(juki_node_base(node), poll_job, job);
	if (job->timer == NULL || pthread_create(&job->thread, NULL, build_main, job) != 0) {
		remove_shadow(job->shadow);
		s->job = NULL;
		job_free(job);
		return juki_ctl_fail(err, "internal", "cannot start the load");
	}
	job->thread_running = 1;
	{
		struct timeval tv = {0, LOAD_POLL_US};

		evtimer_add(job->timer, &tv);
	}
	*result = job_json(job, juki_node_now_ms(node));
	return 0;
}

int
juki_load_cmd_status(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct load_state *s = juki_node_module(node, JUKI_MODULE_LOAD);
	const json_t *id = json_object_get(args, "job");

	if (id != NULL && !json_is_integer(id)) {
		return juki_ctl_fail(err, "usage", "job: an integer");
	}
	if (s == NULL || s->job == NULL || (id != NULL && json_integer_value(id) != s->job->id)) {
		return juki_ctl_fail(err, "not-found", "no such load");
	}
	*result = job_json(s->job, juki_node_now_ms(node));
	return 0;
}

void
juki_load_stop(struct juki_node *node)
{
	struct load_state *s = juki_node_module(node, JUKI_MODULE_LOAD);

	if (s == NULL) {
		return;
	}
	if (s->job != NULL && s->job->thread_running) {
		__atomic_store_n(&s->job->stop, 1, __ATOMIC_RELAXED);
		pthread_join(s->job->thread, NULL);
		remove_shadow(s->job->shadow);
	}
	job_free(s->job);
	juki_node_module_clear(node, JUKI_MODULE_LOAD, s);
	free(s);
}
