/*
 * The special move-out/move-in with the resident card at a CS, both ends
 * (tokurei.h): the tables, the messages, the resident record system's
 * spool, the clocks, the commands.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cards.h"
#include "csd.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/store/outbox.h"
#include "tokurei.h"
#include "tokureimsg.h"

#define LIST_MAX 1000
#define YEAR_MS  (INT64_C(366) * 86400 * 1000) /* never erased a day early */

const struct juki_conf_key csd_tokurei_keys[] = {
    JUKI_CONF_SCALAR(
	struct csd_tokurei_conf, spool, "spool", JUKI_CONF_PATH, NULL, JUKI_CONF_RESTART, 0, 0,
	"Special move-out/in spool of the resident record system: its 転出証明書情報 are read "
	"from <spool>/certificates (filed in done/ or rejected/); the one of a 付記転出届 entered "
	"at the counter is written to <spool>/moveout, that of a 最初の転入届 whose card was "
	"collected to <spool>/movein (docs/import.md, the special move spool); unset: "
	"tokurei.moveout is refused and tokurei.request from other municipalities are refused "
	"(no-moveout)."),
    JUKI_CONF_SCALAR(struct csd_tokurei_conf, scan_interval, "scan_interval", JUKI_CONF_DURATION,
		     "2s", 0, 10, 3600000,
		     "How often the spool is written and the requests' clocks are checked."),
    JUKI_CONF_SCALAR(struct csd_tokurei_conf, timeout, "timeout", JUKI_CONF_DURATION, "30m", 0, 100,
		     INT64_C(30) * 86400 * 1000,
		     "A tokurei.request sent and not answered after this is shown as overdue and "
		     "raises tokurei-overdue (第6-5)."),
    JUKI_CONF_SCALAR(struct csd_tokurei_conf, keep, "keep", JUKI_CONF_INT, "5", 0, 0, 100,
		     "Years (of 366 days) a special move's records are kept after their last "
		     "change (第6-5(6)); juki-ctl purge erases them then; 0: never."),
    JUKI_CONF_END,
};

const struct juki_migration csd_tokurei_steps[1] = {
    {1, "CREATE TABLE tokurei_out ("
	" id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" card TEXT NOT NULL,"
	" dest TEXT NOT NULL,"
	" cert TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('registered', 'answered', 'collected')),"
	" request_id TEXT UNIQUE,"
	" clerk TEXT NOT NULL,"
	" source TEXT UNIQUE," /* the resident record system's file it came from, if any */
	" spooled INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" logged TEXT"
	") WITHOUT ROWID;"
	"CREATE UNIQUE INDEX tokurei_out_open ON tokurei_out(code) WHERE state = 'registered';"
	"CREATE TABLE tokurei_in ("
	" id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" card TEXT NOT NULL,"
	" origin TEXT NOT NULL,"
	" request TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('sent', 'answered', 'refused', 'collected')),"
	" reason TEXT,"
	" detail TEXT,"
	" cert TEXT,"
	" clerk TEXT NOT NULL,"
	" collector TEXT,"
	" collected_ms INTEGER,"
	" spooled INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" overdue_ms INTEGER,"
	" logged TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX tokurei_in_state ON tokurei_in(state, created_ms);"},
};

const char csd_tokurei_out_count[] = "SELECT count(*) FROM tokurei_out WHERE updated_ms < ?1";
const char csd_tokurei_out_delete[] =
    "DELETE FROM tokurei_out WHERE id IN"
    " (SELECT id FROM tokurei_out WHERE updated_ms < ?1 LIMIT ?2)";
const char csd_tokurei_in_count[] = "SELECT count(*) FROM tokurei_in WHERE updated_ms < ?1";
const char csd_tokurei_in_delete[] = "DELETE FROM tokurei_in WHERE id IN"
				     " (SELECT id FROM tokurei_in WHERE updated_ms < ?1 LIMIT ?2)";

#define R_NO_MOVEOUT JUKI_R_NO_MOVEOUT

struct csd_tokurei {
	struct csd *cs;
	struct event *timer;
	char moveout[PATH_MAX], movein[PATH_MAX];
	char certs[PATH_MAX], done[PATH_MAX], rejected[PATH_MAX];
	int have_spool;
	int spool_failing;
};

static const struct csd_tokurei_conf *
conf_of(struct csd *cs)
{
	return &csd_conf(cs->node)->tokurei;
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL || v[0] == '\0') {
		sqlite3_bind_null(st, i);
	} else {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	}
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static const char *
who_of(struct csd *cs)
{
	const struct juki_caller *c = juki_opcmds_caller(juki_node_opcmds(cs->node));

	return c != NULL ? c->who : juki_node_self(cs->node)->urn;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? s : "";
}

/* -- the timer ------------------------------------------------------------- */

static void tick(evutil_socket_t fd, short what, void *arg);

static void
arm(struct csd_tokurei *t, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(t->timer, &tv);
}

void
csd_tokurei_kick(struct csd_tokurei *t)
{
	if (t != NULL) {
		arm(t, 0);
	}
}

static int
spool_dirs(const char *spool, struct csd_tokurei *t)
{
	if (snprintf(t->moveout, sizeof(t->moveout), "%s/moveout", spool) >=
		(int)sizeof(t->moveout) ||
	    snprintf(t->movein, sizeof(t->movein), "%s/movein", spool) >= (int)sizeof(t->movein) ||
	    snprintf(t->certs, sizeof(t->certs), "%s/certificates", spool) >=
		(int)sizeof(t->certs) ||
	    snprintf(t->done, sizeof(t->done), "%s/done", spool) >= (int)sizeof(t->done) ||
	    snprintf(t->rejected, sizeof(t->rejected), "%s/rejected", spool) >=
		(int)sizeof(t->rejected)) {
		return JUKI_ERANGE;
	}
	return 0;
}

int
csd_tokurei_check(const struct csd_tokurei_conf *conf, char *err, size_t errlen)
{
	struct csd_tokurei t;
	int rc;

	if (conf->spool == NULL) {
		return 0;
	}
	if (spool_dirs(conf->spool, &t) != 0) {
		snprintf(err, errlen, "tokurei.spool: path too long");
		return JUKI_ECONFIG;
	}
	if ((rc = juki_dir_check_private(conf->spool, err, errlen)) != 0 ||
	    (rc = juki_dir_check_private(t.moveout, err, errlen)) != 0 ||
	    (rc = juki_dir_check_private(t.movein, err, errlen)) != 0 ||
	    (rc = juki_dir_check_private(t.certs, err, errlen)) != 0 ||
	    (rc = juki_dir_check_private(t.done, err, errlen)) != 0 ||
	    (rc = juki_dir_check_private(t.rejected, err, errlen)) != 0) {
		return rc;
	}
	return 0;
}

int
csd_tokurei_start(struct csd *cs, struct csd_tokurei **out, char *err, size_t errlen)
{
	const struct csd_tokurei_conf *conf = conf_of(cs);
	struct csd_tokurei *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL) {
		snprintf(err, errlen, "tokurei: out of memory");
		return JUKI_ENOMEM;
	}
	t->cs = cs;
	if (conf->spool != NULL) {
		const char *dirs[] = {conf->spool, t->moveout, t->movein,
				      t->certs,    t->done,    t->rejected};

		spool_dirs(conf->spool, t);
		for (size_t i = 0; i < 6; i++) {
			if (mkdir(dirs[i], 0700) != 0 && errno != EEXIST) {
				snprintf(err, errlen, "tokurei.spool: %s: %s", dirs[i],
					 strerror(errno));
				free(t);
				return -errno;
			}
		}
		t->have_spool = 1;
	}
	t->timer = evtimer_new(juki_node_base(cs->node), tick, t);
	if (t->timer == NULL) {
		snprintf(err, errlen, "tokurei: no timer");
		free(t);
		return JUKI_ENOMEM;
	}
	arm(t, 0);
	*out = t;
	return 0;
}

void
csd_tokurei_stop(struct csd_tokurei *t)
{
	if (t == NULL) {
		return;
	}
	event_free(t->timer);
	free(t);
}

void
csd_tokurei_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	conf->keep_ms = csd_conf(node)->tokurei.keep * YEAR_MS;
}

/* Write dir/<id>.json: a temp name, fsync, rename; the same content each time. */
static int
write_file(const char *dir, const char *id, const json_t *doc)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	size_t len;
	int fd, rc = 0;

	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s.json", dir, id);
	snprintf(tmp, sizeof(tmp), "%s/.%s.json.tmp", dir, id);
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0 || rename(tmp, path) != 0) {
		rc = errno != 0 ? -errno : JUKI_EIO;
		unlink(tmp);
	}
	if (fd >= 0) {
		close(fd);
	}
	free(text);
	return rc;
}

/*
 * The 転出証明書情報 not yet handed to the resident record system: a
 * 付記転出 registered here (moveout/), a card collected here (movein/).
 */
static void
spool_out(struct csd_tokurei *t)
{
	static const char sql_out[] =
	    "SELECT id, cert, created_ms, clerk, NULL FROM tokurei_out WHERE spooled = 0"
	    " ORDER BY created_ms LIMIT 100";
	static const char sql_in[] =
	    "SELECT id, cert, collected_ms, collector, origin FROM tokurei_in WHERE spooled = 0"
	    " AND state = 'collected' ORDER BY collected_ms LIMIT 100";
	static const char set_out[] = "UPDATE tokurei_out SET spooled = 1 WHERE id = ?1";
	static const char set_in[] = "UPDATE tokurei_in SET spooled = 1 WHERE id = ?1";
	const char *const gets[] = {sql_out, sql_in}, *const sets[] = {set_out, set_in};
	const char *const formats[] = {"juki-tokurei-moveout/1", "juki-tokurei-movein/1"};
	const char *const dirs[] = {t->moveout, t->movein};
	struct juki_store *store = juki_node_store(t->cs->node);

	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = juki_store_prepare(store, gets[k]);
		json_t *ids = json_array();
		const json_t *v;
		size_t i;

		if (st == NULL || ids == NULL) {
			json_decref(ids);
			return;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *id = col(st, 0);
			char when[32];
			json_t *doc;
			int rc;

			juki_clock_format(sqlite3_column_int64(st, 2), when, sizeof(when));
			doc = json_pack("{s:s,s:s,s:o,s:s}", "format", formats[k], "id", id,
					"certificate", json_loads(col(st, 1), 0, NULL),
					k == 0 ? "registered" : "collected", when);
			rc = doc != NULL ? write_file(dirs[k], id, doc) : JUKI_ENOMEM;
			json_decref(doc);
			if (rc != 0) {
				if (!t->spool_failing) {
					t->spool_failing = 1;
					log_warnx("tokurei: cannot write to the spool: %s",
						  juki_strerror(rc));
					juki_alert(
					    juki_node_alerts(t->cs->node), "tokurei-spool-failed",
					    NULL, NULL,
					    "special move %s: cannot write to the spool (%s)", id,
					    juki_strerror(rc));
				}
				break;
			}
			t->spool_failing = 0;
			json_array_append_new(ids, json_string(id));
		}
		sqlite3_reset(st);
		json_array_foreach(ids, i, v)
		{
			if ((st = juki_store_prepare(store, sets[k])) == NULL) {
				break;
			}
			sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_STATIC);
			step_done(st);
		}
		json_decref(ids);
	}
}

static void
overdue(struct csd_tokurei *t)
{
	static const char sql_get[] =
	    "SELECT id, origin FROM tokurei_in WHERE state = 'sent' AND overdue_ms IS NULL"
	    " AND created_ms <= ?1 ORDER BY created_ms LIMIT 100";
	static const char sql_set[] = "UPDATE tokurei_in SET overdue_ms = ?2 WHERE id = ?1";
	struct juki_store *store = juki_node_store(t->cs->node);
	int64_t now = juki_node_now_ms(t->cs->node);
	sqlite3_stmt *st = juki_store_prepare(store, sql_get);
	json_t *rows = json_array();
	const json_t *v;
	size_t i;

	if (st == NULL || rows == NULL) {
		json_decref(rows);
		return;
	}
	sqlite3_bind_int64(st, 1, now - conf_of(t->cs)->timeout);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    rows, json_pack("{s:s,s:s}", "id", col(st, 0), "origin", col(st, 1)));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	json_array_foreach(rows, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));

		if ((st = juki_store_prepare(store, sql_set)) == NULL) {
			break;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		if (step_done(st) != 0) {
			break;
		}
		juki_alert(juki_node_alerts(t->cs->node), "tokurei-overdue", NULL, NULL,
			   "special move-in request %s to %s not answered within %lld s", id,
			   json_string_value(json_object_get(v, "origin")),
			   (long long)(conf_of(t->cs)->timeout / 1000));
		juki_opcmds_audit(juki_node_opcmds(t->cs->node), juki_node_self(t->cs->node)->urn,
				  "tokurei.overdue", id, "ok", NULL);
	}
	json_decref(rows);
}

/*
 * Every change of state the network made (no operator's command records
 * it) in the operation history: "tokurei.<state>", by the CS itself.
 */
static void
log_steps(struct csd_tokurei *t)
{
	static const char sql_out[] = "SELECT id, state, NULL FROM tokurei_out"
				      " WHERE logged IS NOT state LIMIT 100";
	static const char sql_in[] = "SELECT id, state, reason FROM tokurei_in"
				     " WHERE logged IS NOT state LIMIT 100";
	static const char set_out[] = "UPDATE tokurei_out SET logged = ?2 WHERE id = ?1";
	static const char set_in[] = "UPDATE tokurei_in SET logged = ?2 WHERE id = ?1";
	const char *const gets[] = {sql_out, sql_in}, *const sets[] = {set_out, set_in};
	struct juki_store *store = juki_node_store(t->cs->node);

	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = juki_store_prepare(store, gets[k]);
		json_t *rows = json_array();
		const json_t *v;
		size_t i;

		if (st == NULL || rows == NULL) {
			json_decref(rows);
			return;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_array_append_new(rows, json_pack("{s:s,s:s,s:s?}", "id", col(st, 0),
							      "state", col(st, 1), "reason",
							      sqlite3_column_text(st, 2)));
		}
		sqlite3_reset(st);
		json_array_foreach(rows, i, v)
		{
			const char *id = json_string_value(json_object_get(v, "id"));
			const char *state = json_string_value(json_object_get(v, "state"));
			char action[48];

			/* The clerks' own steps are in the history under their names. */
			if (!((k == 0 && strcmp(state, "registered") == 0) ||
			      (k == 1 &&
			       (strcmp(state, "sent") == 0 || strcmp(state, "collected") == 0)))) {
				snprintf(action, sizeof(action), "tokurei.%s%s",
					 k == 0 ? "moveout-" : "movein-", state);
				juki_opcmds_audit(juki_node_opcmds(t->cs->node),
						  juki_node_self(t->cs->node)->urn, action, id,
						  "ok",
						  json_string_value(json_object_get(v, "reason")));
			}
			if ((st = juki_store_prepare(store, sets[k])) == NULL) {
				break;
			}
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
			step_done(st);
		}
		json_decref(rows);
	}
}

/*
 * Record a 付記転出 with its 転出証明書情報 c (checked by the caller) in
 * tokurei_out: by clerk, from the resident record system's file source
 * (NULL: entered at the counter; then the file for the system is still to
 * write).  *dup set when the person has an open 付記転出 or source was
 * taken before.  Returns 0 or a negative code.
 */
static int
insert_moveout(struct csd *cs, const struct csd_tokurei_cert *c, const char *clerk,
	       const char *source, char id[JUKI_UUID_LEN + 1], int *dup)
{
	static const char sql[] =
	    "INSERT INTO tokurei_out (id, code, card, dest, cert, state, clerk, source, spooled,"
	    " created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'registered', ?6, ?7, ?8, ?9, "
	    "?9)";
	struct juki_store *store = juki_node_store(cs->node);
	int64_t now = juki_node_now_ms(cs->node);
	json_t *certj = csd_tokurei_cert_json(c);
	char *text = certj != NULL ? json_dumps(certj, JSON_COMPACT) : NULL;
	sqlite3_stmt *st;
	int rc;

	*dup = 0;
	json_decref(certj);
	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	if ((rc = juki_uuid7(now, id)) != 0 || (st = juki_store_prepare(store, sql)) == NULL) {
		free(text);
		return rc != 0 ? rc : JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->card, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, clerk, -1, SQLITE_TRANSIENT);
	bind_opt(st, 7, source);
	sqlite3_bind_int(st, 8, source != NULL);
	sqlite3_bind_int64(st, 9, now);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	if (rc != 0 && sqlite3_extended_errcode(juki_store_db(store)) == SQLITE_CONSTRAINT_UNIQUE) {
		*dup = 1;
		rc = 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(text);
	return rc;
}

/* Move name from certificates/ to dir; a report next to a rejected one. */
static void
file_cert(struct csd_tokurei *t, const char *name, const char *dir, const json_t *report)
{
	char from[PATH_MAX + 300], to[PATH_MAX + 300];

	snprintf(from, sizeof(from), "%s/%s", t->certs, name);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	if (rename(from, to) != 0) {
		log_warn("tokurei: %s -> %s", from, to);
		unlink(from);
	}
	if (report != NULL) {
		snprintf(to, sizeof(to), "%s.report", name); /* write_file() adds .json */
		if (write_file(dir, to, report) != 0) {
			log_warnx("tokurei: cannot write the report of %s", name);
		}
	}
}

static void
reject_cert(struct csd_tokurei *t, const char *name, const char *field, const char *detail)
{
	char when[32];
	json_t *report;

	juki_clock_format(juki_node_now_ms(t->cs->node), when, sizeof(when));
	report = json_pack("{s:s,s:s,s:s,s:s}", "file", name, "field", field, "error", detail,
			   "rejected", when);
	file_cert(t, name, t->rejected, report);
	json_decref(report);
	juki_alert(juki_node_alerts(t->cs->node), "tokurei-certificate-rejected", NULL, NULL,
		   "certificate file %s refused (%s: %s); nothing registered; its report is in "
		   "rejected/",
		   name, field, detail);
	juki_opcmds_audit(juki_node_opcmds(t->cs->node), juki_node_self(t->cs->node)->urn,
			  "tokurei.certificate-rejected", name, "invalid", field);
}

/* The person code (a member when member) is a resident here named and born as c says. */
static int
check_resident(struct csd *cs, const char *code, const char *name, const char *birth,
	       const char **field, const char **detail)
{
	struct juki_change held;
	int rc = csd_held(cs, code, &held);

	if (rc == JUKI_ENOTFOUND || (rc == 0 && !csd_resident(cs, &held))) {
		*detail = "not-resident: no resident of that code here";
		return 1;
	}
	if (rc != 0) {
		*field = "store";
		*detail = "the register could not be read";
		return rc;
	}
	if (strcmp(held.person.name, name) != 0 || strcmp(held.person.birth, birth) != 0) {
		*detail = "person-mismatch: the name or the birth date is not the register's";
		return 1;
	}
	return 0;
}

/*
 * A 転出証明書情報 the resident record system entered (第6-5(2)): one file
 * of certificates/, {"format": "juki-tokurei-certificate/1", "certificate"}.
 * Checked whole and against the register and the card register; recorded,
 * or refused into rejected/ with a report.
 */
static void
read_cert(struct csd_tokurei *t, const char *name)
{
	struct csd *cs = t->cs;
	char path[PATH_MAX + 300], id[JUKI_UUID_LEN + 1];
	const char *field = NULL, *detail = NULL;
	struct csd_tokurei_cert c;
	struct csd_tokurei_error e;
	json_error_t jerr;
	struct stat sb;
	json_t *doc;
	int rc, dup;

	snprintf(path, sizeof(path), "%s/%s", t->certs, name);
	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		reject_cert(t, name, "file", "not a regular file");
		return;
	}
	if (sb.st_size > 1024 * 1024) {
		reject_cert(t, name, "file", "larger than 1 MiB");
		return;
	}
	if ((doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		char where[64];

		snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
		reject_cert(t, name, "json", where);
		return;
	}
	if (!json_is_object(doc) || json_object_size(doc) != 2 ||
	    !json_is_string(json_object_get(doc, "format")) ||
	    strcmp(json_string_value(json_object_get(doc, "format")),
		   "juki-tokurei-certificate/1") != 0) {
		reject_cert(t, name, "format",
			    "{\"format\": \"juki-tokurei-certificate/1\", \"certificate\"}");
		json_decref(doc);
		return;
	}
	rc = csd_tokurei_cert_parse(json_object_get(doc, "certificate"), &c, &e);
	json_decref(doc);
	if (rc != 0) {
		char f[80];

		snprintf(f, sizeof(f), "certificate.%s", e.field);
		reject_cert(t, name, f, e.detail);
		return;
	}
	if (strcmp(c.from, juki_node_self(cs->node)->id) != 0) {
		reject_cert(t, name, "certificate.from", "not this municipality");
		return;
	}
	field = "certificate.code";
	if ((rc = check_resident(cs, c.code, c.name, c.birth, &field, &detail)) != 0) {
		if (rc < 0) {
			return; /* the store: try again at the next look */
		}
		reject_cert(t, name, field, detail);
		return;
	}
	for (size_t i = 0; i < c.nmembers; i++) {
		field = "certificate.members";
		rc = check_resident(cs, c.members[i].code, c.members[i].name, c.members[i].birth,
				    &field, &detail);
		if (rc < 0) {
			return;
		}
		if (rc > 0) {
			reject_cert(t, name, field, detail);
			return;
		}
	}
	/* 第6-5(1): the card held and valid, from the register. */
	if ((rc = csd_card_valid_for(juki_node_store(cs->node), c.card, c.code)) <= 0) {
		if (rc == 0) {
			reject_cert(t, name, "certificate.card",
				    "card-invalid: not a valid card of its holder here");
		}
		return;
	}
	rc = insert_moveout(cs, &c, juki_node_self(cs->node)->urn, name, id, &dup);
	if (rc != 0) {
		log_warnx("tokurei: certificate file %s: %s", name, juki_strerror(rc));
		return;
	}
	if (dup) {
		static const char sql[] = "SELECT 1 FROM tokurei_out WHERE source = ?1";
		sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sql);
		int again = 0;

		if (st != NULL) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			again = sqlite3_step(st) == SQLITE_ROW;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
		}
		if (again) {
			/* Taken before the daemon stopped, not yet filed: once only. */
			file_cert(t, name, t->done, NULL);
		} else {
			reject_cert(t, name, "certificate.code",
				    "conflict: a 付記転出 of this person is open already");
		}
		return;
	}
	juki_opcmds_audit(juki_node_opcmds(cs->node), juki_node_self(cs->node)->urn,
			  "tokurei.moveout", id, "ok", "from the resident record system");
	file_cert(t, name, t->done, NULL);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
read_certs(struct csd_tokurei *t)
{
	DIR *d = opendir(t->certs);
	char *names[100];
	size_t n = 0;
	struct dirent *de;

	if (d == NULL) {
		return;
	}
	while (n < 100 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		if ((names[n] = strdup(de->d_name)) != NULL) {
			n++;
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		read_cert(t, names[i]);
		free(names[i]);
	}
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct csd_tokurei *t = arg;

	(void)fd;
	(void)what;
	log_steps(t);
	if (t->have_spool) {
		read_certs(t);
		spool_out(t);
	}
	overdue(t);
	log_steps(t);
	arm(t, conf_of(t->cs)->scan_interval);
}

/* -- the 転出地 ---------------------------------------------------------------- */

static int
reject_field(struct juki_reject *rej, const struct csd_tokurei_error *e)
{
	return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: %s", e->field, e->detail);
}

int
csd_handle_tokurei_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql_row[] =
	    "SELECT id, card, dest, cert FROM tokurei_out WHERE code = ?1 AND state = 'registered'";
	static const char sql_set[] =
	    "UPDATE tokurei_out SET state = 'answered', request_id = ?2, updated_ms = ?3"
	    " WHERE id = ?1 AND state = 'registered'";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	struct csd_tokurei_request r;
	struct csd_tokurei_cert cert;
	struct csd_tokurei_error e;
	struct juki_ident sender;
	char id[JUKI_UUID_LEN + 1] = "", card[CSD_TOKUREI_SERIAL_MAX + 1] = "";
	char dest[JUKI_LGCODE_LEN + 1] = "";
	json_t *certj = NULL, *body;
	struct juki_msg ans;
	sqlite3_stmt *st;
	int rc;

	if (csd_tokurei_request_parse(msg->body, &r, &e) != 0) {
		return reject_field(rej, &e);
	}
	if (strcmp(r.from, juki_node_self(cs->node)->id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "from: not this municipality");
	}
	juki_ident_parse(msg->from, &sender);
	if (strcmp(r.to, sender.id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "to: not the municipality that sent the request");
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, r.code, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%s", col(st, 0));
		snprintf(card, sizeof(card), "%s", col(st, 1));
		snprintf(dest, sizeof(dest), "%s", col(st, 2));
		certj = json_loads(col(st, 3), 0, NULL);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (id[0] == '\0' || strcmp(dest, r.to) != 0) {
		json_decref(certj);
		return juki_reject_set(rej, R_NO_MOVEOUT,
				       "no 付記転出届 to this municipality on record");
	}
	if (certj == NULL || csd_tokurei_cert_parse(certj, &cert, &e) != 0) {
		json_decref(certj);
		return JUKI_ESTORE;
	}
	if (strcmp(card, r.card) != 0 || (rc = csd_card_valid_for(store, r.card, r.code)) == 0) {
		json_decref(certj);
		return juki_reject_set(rej, JUKI_R_CARD_INVALID,
				       "the card is not the valid card of the 付記転出届");
	}
	if (rc < 0) {
		json_decref(certj);
		return rc;
	}
	if (strcmp(cert.name, r.name) != 0 || strcmp(cert.birth, r.birth) != 0) {
		json_decref(certj);
		return juki_reject_set(rej, JUKI_R_PERSON_MISMATCH,
				       "the name or the birth date is not that of the code");
	}
	body = json_pack("{s:s,s:o}", "request_id", msg->id, "certificate", certj);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_msg_init(&ans, JUKI_MSG_TOKUREI_ANSWER, juki_node_self(cs->node)->urn, msg->from,
			   msg->id, body, juki_node_clock(cs->node));
	if (rc != 0) {
		return rc;
	}
	rc = juki_outbox_put(store, &ans, "muni", juki_node_now_ms(cs->node), NULL);
	juki_msg_clear(&ans);
	if (rc == 0 && (st = juki_store_prepare(store, sql_set)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, msg->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, juki_node_now_ms(cs->node));
		rc = step_done(st);
	}
	if (rc == 0) {
		juki_node_kick(cs->node);
		csd_tokurei_kick(cs->tokurei);
	}
	return rc;
}

/* A refused request in the history here: its id and the reason, nothing of the person. */
int
csd_tokurei_request_refused(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct csd *cs = juki_node_priv(ctx);

	juki_opcmds_audit(juki_node_opcmds(cs->node), msg->from, "tokurei.request", msg->id,
			  "refused", rej->reason);
	return 0;
}

int
csd_handle_tokurei_collected(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql_row[] =
	    "SELECT id, code, card, dest, state FROM tokurei_out WHERE request_id = ?1";
	static const char sql_set[] = "UPDATE tokurei_out SET state = 'collected', updated_ms = ?2"
				      " WHERE id = ?1 AND state = 'answered'";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	char card[CSD_TOKUREI_SERIAL_MAX + 1], id[JUKI_UUID_LEN + 1] = "";
	char code[JUKI_JUMIN_CODE_LEN + 1] = "", held[CSD_TOKUREI_SERIAL_MAX + 1] = "";
	char dest[JUKI_LGCODE_LEN + 1] = "", state[16] = "";
	struct csd_tokurei_error e;
	struct juki_ident sender;
	enum csd_card_state from;
	enum csd_card_refusal why;
	const char *rid;
	sqlite3_stmt *st;
	int rc;

	if (csd_tokurei_collected_parse(msg->body, &rid, card, &e) != 0) {
		return reject_field(rej, &e);
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%s", col(st, 0));
		snprintf(code, sizeof(code), "%s", col(st, 1));
		snprintf(held, sizeof(held), "%s", col(st, 2));
		snprintf(dest, sizeof(dest), "%s", col(st, 3));
		snprintf(state, sizeof(state), "%s", col(st, 4));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	juki_ident_parse(msg->from, &sender);
	if (id[0] == '\0' || strcmp(dest, sender.id) != 0) {
		return juki_reject_set(rej, JUKI_R_UNKNOWN_REQUEST,
				       "no special move-in request of that id answered here");
	}
	if (strcmp(card, held) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "card: not the card of the request");
	}
	if (strcmp(state, "collected") == 0) {
		return 0; /* told before */
	}
	rc = csd_card_change(store, card, CSD_CARD_COLLECT, "転入地で回収 (転入転出の特例)",
			     juki_node_now_ms(cs->node), msg->from, &from, &why);
	if (rc != 0) {
		return rc;
	}
	/* A card invalidated meanwhile stays so; the move is done all the same. */
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, juki_node_now_ms(cs->node));
	rc = step_done(st);
	csd_tokurei_kick(cs->tokurei);
	return rc;
}

/* -- the 転入地 ---------------------------------------------------------------- */

int
csd_handle_tokurei_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql_row[] = "SELECT state, origin, code FROM tokurei_in WHERE id = ?1";
	static const char sql_set[] = "UPDATE tokurei_in SET state = 'answered', cert = ?2,"
				      " updated_ms = ?3 WHERE id = ?1 AND state = 'sent'";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	char state[16] = "", origin[JUKI_LGCODE_LEN + 1] = "", code[JUKI_JUMIN_CODE_LEN + 1] = "";
	struct csd_tokurei_cert cert;
	struct csd_tokurei_error e;
	struct juki_ident sender;
	const char *rid;
	sqlite3_stmt *st;
	json_t *canon;
	char *text;
	int rc;

	if (csd_tokurei_answer_parse(msg->body, &rid, &cert, &e) != 0) {
		return reject_field(rej, &e);
	}
	if (strcmp(msg->corr, rid) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "corr: not the request_id");
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", col(st, 0));
		snprintf(origin, sizeof(origin), "%s", col(st, 1));
		snprintf(code, sizeof(code), "%s", col(st, 2));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	juki_ident_parse(msg->from, &sender);
	if (state[0] == '\0' || strcmp(origin, sender.id) != 0) {
		return juki_reject_set(rej, JUKI_R_UNKNOWN_REQUEST,
				       "no special move-in request of that id was sent there");
	}
	if (strcmp(cert.code, code) != 0 || strcmp(cert.from, origin) != 0 ||
	    strcmp(cert.to, juki_node_self(cs->node)->id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "certificate: not that of the person and move asked");
	}
	if (strcmp(state, "sent") != 0) {
		return juki_reject_set(rej, JUKI_R_UNKNOWN_REQUEST,
				       "the request was answered before");
	}
	if ((canon = csd_tokurei_cert_json(&cert)) == NULL ||
	    (text = json_dumps(canon, JSON_COMPACT)) == NULL) {
		json_decref(canon);
		return JUKI_ENOMEM;
	}
	json_decref(canon);
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, juki_node_now_ms(cs->node));
	rc = step_done(st);
	free(text);
	csd_tokurei_kick(cs->tokurei);
	return rc;
}

int
csd_tokurei_on_ack(struct csd *cs, const struct juki_outbox_entry *entry,
		   const struct juki_ack *ack)
{
	static const char sql[] = "UPDATE tokurei_in SET state = 'refused', reason = ?2,"
				  " detail = ?3, updated_ms = ?4 WHERE id = ?1 AND state = 'sent'";
	sqlite3_stmt *st;
	int rc;

	if (strcmp(entry->type, JUKI_MSG_TOKUREI_ANSWER) == 0 ||
	    strcmp(entry->type, JUKI_MSG_TOKUREI_COLLECTED) == 0) {
		return 1;
	}
	if (strcmp(entry->type, JUKI_MSG_TOKUREI_REQUEST) != 0) {
		return 0;
	}
	if (ack->status != JUKI_ACK_REJECTED) {
		return 1;
	}
	if ((st = juki_store_prepare(juki_node_store(cs->node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ack->reason, -1, SQLITE_STATIC);
	bind_opt(st, 3, ack->detail);
	sqlite3_bind_int64(st, 4, juki_node_now_ms(cs->node));
	rc = step_done(st);
	csd_tokurei_kick(cs->tokurei);
	return rc != 0 ? rc : 1;
}

/* -- commands ------------------------------------------------------------- */

static int
text_arg(const json_t *args, const char *key, size_t max, char *out, size_t len,
	 struct juki_ctl_error *err)
{
	const char *s = json_string_value(json_object_get(args, key));
	char why[96];

	if (s == NULL) {
		return juki_ctl_fail(err, "usage", "%s: required", key);
	}
	if (strlen(s) >= len || juki_text_valid(s, max, why, sizeof(why)) != 0) {
		return juki_ctl_fail(err, "invalid", "%s: %s", key,
				     strlen(s) >= len ? "too long" : why);
	}
	snprintf(out, len, "%s", s);
	return 0;
}

int
csd_cmd_tokurei_moveout(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "INSERT INTO tokurei_out (id, code, card, dest, cert, state, clerk, created_ms,"
	    " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'registered', ?6, ?7, ?7)";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	int64_t now = juki_node_now_ms(cs->node);
	struct csd_tokurei_cert c;
	struct juki_field_error fe;
	struct juki_change held;
	char id[JUKI_UUID_LEN + 1];
	sqlite3_stmt *st;
	json_t *certj;
	char *text;
	int rc;

	memset(&c, 0, sizeof(c));
	/* The history names the record's id, or the card before there is one: never the code. */
	juki_opcmds_note(juki_node_opcmds(cs->node), "-", NULL);
	if (json_is_string(json_object_get(args, "card")) &&
	    csd_card_serial_valid(json_string_value(json_object_get(args, "card")))) {
		juki_opcmds_note(juki_node_opcmds(cs->node),
				 json_string_value(json_object_get(args, "card")), NULL);
	}
	if (conf_of(cs)->spool == NULL) {
		return juki_ctl_fail(err, "conflict",
				     "tokurei.spool is not set: no special move-out here");
	}
	if (juki_json_code(args, "code", 0, c.code, sizeof(c.code), &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "code: %s", fe.detail);
	}
	if (juki_json_code(args, "to", 1, c.to, sizeof(c.to), &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "to: %s", fe.detail);
	}
	if (juki_json_date(args, "date", c.date, &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "date: %s", fe.detail);
	}
	if ((rc = text_arg(args, "new_address", JUKI_ADDRESS_MAX, c.new_address,
			   sizeof(c.new_address), err)) != 0 ||
	    (rc = text_arg(args, "card", CSD_TOKUREI_SERIAL_MAX, c.card, sizeof(c.card), err)) !=
		0) {
		return rc;
	}
	memcpy(c.from, juki_node_self(cs->node)->id, JUKI_LGCODE_LEN);
	c.from[JUKI_LGCODE_LEN] = '\0';
	if (strcmp(c.to, c.from) == 0) {
		return juki_ctl_fail(err, "invalid",
				     "to: this municipality; a move within it is no 転出");
	}
	rc = csd_held(cs, c.code, &held);
	if (rc == JUKI_ENOTFOUND || (rc == 0 && !csd_resident(cs, &held))) {
		return juki_ctl_fail(err, "not-found", "no resident of that code here");
	}
	if (rc != 0) {
		return rc;
	}
	/* 第6-5(1): the card held and valid, from the register. */
	if ((rc = csd_card_valid_for(store, c.card, c.code)) < 0) {
		return rc;
	}
	if (rc == 0) {
		return juki_ctl_fail(err, "refused",
				     "card-invalid: the card is not a valid card of its holder "
				     "here (suspended, collected, invalidated or another's)");
	}
	/* 世帯員に関する付記転出届: residents here at the holder's address, each once. */
	{
		const json_t *ms = json_object_get(args, "members"), *v;
		size_t i;

		if (ms != NULL && (!json_is_array(ms) || json_array_size(ms) == 0 ||
				   json_array_size(ms) > CSD_TOKUREI_MEMBERS_MAX)) {
			return juki_ctl_fail(err, "invalid", "members: a list of 1 to %d codes",
					     CSD_TOKUREI_MEMBERS_MAX);
		}
		json_array_foreach(ms, i, v)
		{
			struct csd_tokurei_member *m = &c.members[i];
			struct juki_change mh;
			json_t *one = json_pack("{s:O}", "code", v);

			rc = juki_json_code(one, "code", 0, m->code, sizeof(m->code), &fe);
			json_decref(one);
			if (rc != 0) {
				return juki_ctl_fail(err, "invalid", "members: %s", fe.detail);
			}
			for (size_t j = 0; j < i; j++) {
				if (strcmp(c.members[j].code, m->code) == 0) {
					return juki_ctl_fail(err, "invalid",
							     "members: a member named twice");
				}
			}
			if (strcmp(m->code, c.code) == 0) {
				return juki_ctl_fail(
				    err, "invalid",
				    "members: the holder is no member of their own");
			}
			rc = csd_held(cs, m->code, &mh);
			if (rc == JUKI_ENOTFOUND || (rc == 0 && !csd_resident(cs, &mh))) {
				return juki_ctl_fail(err, "not-found",
						     "members: member %zu is no resident here",
						     i + 1);
			}
			if (rc != 0) {
				return rc;
			}
			if (strcmp(mh.person.address, held.person.address) != 0) {
				return juki_ctl_fail(err, "refused",
						     "members: member %zu does not live at the "
						     "holder's address",
						     i + 1);
			}
			snprintf(m->name, sizeof(m->name), "%s", mh.person.name);
			snprintf(m->kana, sizeof(m->kana), "%s", mh.person.kana);
			snprintf(m->birth, sizeof(m->birth), "%s", mh.person.birth);
			m->sex = mh.person.sex;
			c.nmembers = i + 1;
		}
	}
	snprintf(c.name, sizeof(c.name), "%s", held.person.name);
	snprintf(c.kana, sizeof(c.kana), "%s", held.person.kana);
	snprintf(c.birth, sizeof(c.birth), "%s", held.person.birth);
	snprintf(c.address, sizeof(c.address), "%s", held.person.address);
	c.sex = held.person.sex;
	if ((certj = csd_tokurei_cert_json(&c)) == NULL ||
	    (text = json_dumps(certj, JSON_COMPACT)) == NULL) {
		json_decref(certj);
		return JUKI_ENOMEM;
	}
	if ((rc = juki_uuid7(now, id)) != 0 || (st = juki_store_prepare(store, sql)) == NULL) {
		json_decref(certj);
		free(text);
		return rc != 0 ? rc : JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c.code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c.card, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c.to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, who_of(cs), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, now);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
	if (rc != 0 && sqlite3_extended_errcode(juki_store_db(store)) == SQLITE_CONSTRAINT_UNIQUE) {
		rc = 1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(text);
	if (rc == 1) {
		json_decref(certj);
		return juki_ctl_fail(err, "conflict",
				     "a 付記転出届 of this person is on record already");
	}
	if (rc != 0) {
		json_decref(certj);
		return rc;
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), id, NULL);
	csd_tokurei_kick(cs->tokurei);
	*result = json_pack("{s:s,s:s,s:o}", "id", id, "state", "registered", "certificate", certj);
	return 0;
}

int
csd_cmd_tokurei_movein(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "INSERT INTO tokurei_in (id, code, card, origin, request, state, clerk, created_ms,"
	    " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'sent', ?6, ?7, ?7)";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	int64_t now = juki_node_now_ms(cs->node);
	struct csd_tokurei_request r;
	struct csd_tokurei_error e;
	struct juki_ident origin;
	struct juki_msg msg;
	json_t *body = json_deep_copy(args);
	sqlite3_stmt *st;
	char *text;
	int rc;

	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), "-", NULL);
	if (json_is_string(json_object_get(args, "card")) &&
	    csd_card_serial_valid(json_string_value(json_object_get(args, "card")))) {
		juki_opcmds_note(juki_node_opcmds(cs->node),
				 json_string_value(json_object_get(args, "card")), NULL);
	}
	json_object_set_new(body, "to", json_string(juki_node_self(cs->node)->id));
	if (csd_tokurei_request_parse(body, &r, &e) != 0) {
		json_decref(body);
		if (strcmp(e.field, "to") == 0) {
			return juki_ctl_fail(
			    err, "invalid", "from: this municipality; a move within it is no 転入");
		}
		return juki_ctl_fail(err, "invalid", "%s: %s", e.field, e.detail);
	}
	json_decref(body);
	if ((body = csd_tokurei_request_json(&r)) == NULL ||
	    (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		json_decref(body);
		return JUKI_ENOMEM;
	}
	juki_ident_node(JUKI_KIND_CS, r.from, &origin);
	rc = juki_msg_init(&msg, JUKI_MSG_TOKUREI_REQUEST, juki_node_self(cs->node)->urn,
			   origin.urn, NULL, body, juki_node_clock(cs->node));
	if (rc != 0) {
		free(text);
		return rc;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		goto out;
	}
	rc = juki_outbox_put(store, &msg, "muni", now, NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r.code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r.card, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r.from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, who_of(cs), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		goto out;
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), msg.id, NULL);
	juki_node_kick(cs->node);
	*result = json_pack("{s:s,s:s,s:s}", "id", msg.id, "state", "sent", "to", origin.urn);
out:
	juki_msg_clear(&msg);
	free(text);
	return rc;
}

static int
id_arg(struct csd *cs, const json_t *args, const char **id, struct juki_ctl_error *err)
{
	*id = json_string_value(json_object_get(args, "id"));
	if (*id == NULL || !juki_uuid_valid(*id)) {
		return juki_ctl_fail(err, "usage", "id: a special move's id (UUIDv7)");
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), *id, NULL);
	return 0;
}

int
csd_cmd_tokurei_collect(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_row[] = "SELECT state, origin, card FROM tokurei_in WHERE id = ?1";
	static const char sql_set[] =
	    "UPDATE tokurei_in SET state = 'collected', collector = ?2, collected_ms = ?3,"
	    " updated_ms = ?3 WHERE id = ?1 AND state = 'answered'";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	int64_t now = juki_node_now_ms(cs->node);
	char state[16] = "", origin_lg[JUKI_LGCODE_LEN + 1] = "";
	char card[CSD_TOKUREI_SERIAL_MAX + 1] = "";
	struct juki_ident origin;
	struct juki_msg msg;
	const char *id;
	sqlite3_stmt *st;
	json_t *body;
	int rc;

	if ((rc = id_arg(cs, args, &id, err)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", col(st, 0));
		snprintf(origin_lg, sizeof(origin_lg), "%s", col(st, 1));
		snprintf(card, sizeof(card), "%s", col(st, 2));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (state[0] == '\0') {
		return juki_ctl_fail(err, "not-found", "no special move-in %s here", id);
	}
	if (strcmp(state, "answered") != 0) {
		return juki_ctl_fail(err, "conflict",
				     "special move-in %s is %s: only an answered one is completed",
				     id, state);
	}
	body = json_pack("{s:s,s:s}", "request_id", id, "card", card);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	juki_ident_node(JUKI_KIND_CS, origin_lg, &origin);
	rc = juki_msg_init(&msg, JUKI_MSG_TOKUREI_COLLECTED, juki_node_self(cs->node)->urn,
			   origin.urn, id, body, juki_node_clock(cs->node));
	if (rc != 0) {
		return rc;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		goto out;
	}
	rc = juki_outbox_put(store, &msg, "muni", now, NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_set)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, who_of(cs), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		goto out;
	}
	juki_node_kick(cs->node);
	csd_tokurei_kick(cs->tokurei);
	*result = json_pack("{s:s,s:s,s:s}", "id", id, "state", "collected", "card", card);
out:
	juki_msg_clear(&msg);
	return rc;
}

static const char sql_show_out[] =
    "SELECT id, 'moveout', code, dest, state, NULL, NULL, cert, clerk, created_ms, updated_ms,"
    " card, request_id, NULL FROM tokurei_out WHERE ?1 IS NULL OR id = ?1"
    " ORDER BY created_ms, id LIMIT ?2";
static const char sql_show_in[] =
    "SELECT id, 'movein', code, origin, state, reason, detail, cert, clerk, created_ms,"
    " updated_ms, card, collector, overdue_ms FROM tokurei_in WHERE ?1 IS NULL OR id = ?1"
    " ORDER BY created_ms, id LIMIT ?2";

static json_t *
row_json(struct csd *cs, sqlite3_stmt *st, int whole)
{
	char created[32], updated[32];
	const char *side = col(st, 1);
	json_t *row;

	juki_clock_format(sqlite3_column_int64(st, 9), created, sizeof(created));
	juki_clock_format(sqlite3_column_int64(st, 10), updated, sizeof(updated));
	row = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s,s:s,s:s,s:s}", "id", col(st, 0), "side",
			side, "code", col(st, 2), "peer", col(st, 3), "state", col(st, 4), "reason",
			sqlite3_column_text(st, 5), "detail", sqlite3_column_text(st, 6), "card",
			col(st, 11), "clerk", col(st, 8), "created", created, "updated", updated);
	if (row == NULL) {
		return NULL;
	}
	if (strcmp(side, "movein") == 0) {
		int late = strcmp(col(st, 4), "sent") == 0 &&
			   sqlite3_column_int64(st, 9) + conf_of(cs)->timeout <=
			       juki_node_now_ms(cs->node);

		json_object_set_new(row, "overdue", json_boolean(late));
		if (sqlite3_column_type(st, 12) == SQLITE_TEXT) {
			json_object_set_new(row, "collector", json_string(col(st, 12)));
		}
	} else if (sqlite3_column_type(st, 12) == SQLITE_TEXT) {
		json_object_set_new(row, "request_id", json_string(col(st, 12)));
	}
	if (whole && sqlite3_column_type(st, 7) == SQLITE_TEXT) {
		json_object_set_new(row, "certificate", json_loads(col(st, 7), 0, NULL));
	}
	return row;
}

int
csd_cmd_tokurei_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const char *const sqls[] = {sql_show_out, sql_show_in};
	json_t *row = NULL;
	const char *id;
	int rc;

	if ((rc = id_arg(cs, args, &id, err)) != 0) {
		return rc;
	}
	for (int k = 0; k < 2 && row == NULL; k++) {
		sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sqls[k]);

		if (st == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, 1);
		if (sqlite3_step(st) == SQLITE_ROW) {
			row = row_json(cs, st, 1);
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	if (row == NULL) {
		return juki_ctl_fail(err, "not-found", "no special move %s here", id);
	}
	*result = row;
	return 0;
}

int
csd_cmd_tokurei_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const char *const sqls[] = {sql_show_out, sql_show_in};
	const char *const keys[] = {"moveout", "movein"};
	json_t *out = json_object();

	(void)args;
	(void)err;
	if (out == NULL) {
		return JUKI_ENOMEM;
	}
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sqls[k]);
		json_t *rows = json_array();

		if (st == NULL || rows == NULL) {
			json_decref(rows);
			json_decref(out);
			return JUKI_ESTORE;
		}
		sqlite3_bind_null(st, 1);
		sqlite3_bind_int64(st, 2, LIST_MAX);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_array_append_new(rows, row_json(cs, st, 0));
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		json_object_set_new(out, keys[k], rows);
	}
	*result = out;
	return 0;
}
