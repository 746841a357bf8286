/*
 * The wide-area copy of the residence record at a CS, both ends (copies.h):
 * the tables, the messages, the resident record system's spool, the clocks.
 * The forms stock and the print are in forms.c.
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
#include "copies.h"
#include "copymsg.h"
#include "csd.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/store/outbox.h"

#define ANSWER_MAX   (1024 * 1024) /* bytes of an answer file */
#define ANSWERS_TURN 100           /* answer files read per turn of the timer */
#define LIST_MAX     1000

const struct juki_conf_key csd_copy_keys[] = {
    JUKI_CONF_SCALAR(
	struct csd_copy_conf, spool, "spool", JUKI_CONF_PATH, NULL, JUKI_CONF_RESTART, 0, 0,
	"Wide-area copy spool of the resident record system: requests are written to "
	"<spool>/outgoing, its answers read from <spool>/answers and filed in done/ "
	"or rejected/ (docs/import.md, the copy spool); unset: copy requests from other "
	"municipalities are refused (rrs-refused)."),
    JUKI_CONF_SCALAR(struct csd_copy_conf, scan_interval, "scan_interval", JUKI_CONF_DURATION, "2s",
		     0, 10, 3600000,
		     "How often answers/ is looked at and the requests' clocks are checked."),
    JUKI_CONF_SCALAR(struct csd_copy_conf, timeout, "timeout", JUKI_CONF_DURATION, "30m", 0, 100,
		     INT64_C(30) * 86400 * 1000,
		     "A copy request sent and not answered after this is shown as overdue and "
		     "raises copy-overdue (第6-4)."),
    JUKI_CONF_SCALAR(struct csd_copy_conf, review, "review", JUKI_CONF_BOOL, "false", 0, 0, 0,
		     "An answer of the resident record system waits for a clerk's juki-ctl copy "
		     "review before it is sent back (第6-4(2): 必要に応じて審査)."),
    JUKI_CONF_SCALAR(struct csd_copy_conf, keep, "keep", JUKI_CONF_INT, "5", 0, 0, 100,
		     "Years a copy request and its outcome are kept after their last change "
		     "(第6-4(4)); juki-ctl purge erases them then; 0: never."),
    JUKI_CONF_SCALAR(struct csd_copy_conf, mayor, "mayor", JUKI_CONF_STRING, NULL, 0, 0, 0,
		     "The issuing mayor's title printed under the certification of a copy "
		     "(\"大阪市長　大阪　一郎\"); unset: copies are not printed here."),
    JUKI_CONF_END,
};

const struct juki_migration csd_copies_steps[1] = {
    {1, "CREATE TABLE copy_out ("
	" id TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" home TEXT NOT NULL,"
	" request TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('sent', 'answered', 'refused')),"
	" reason TEXT,"
	" detail TEXT,"
	" copy TEXT,"
	" clerk TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" overdue_ms INTEGER,"
	" logged TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX copy_out_state ON copy_out(state, created_ms);"
	"CREATE TABLE copy_in ("
	" id TEXT PRIMARY KEY,"
	" sender TEXT NOT NULL,"
	" code TEXT NOT NULL,"
	" request TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN"
	" ('received', 'spooled', 'review', 'answered', 'refused')),"
	" copy TEXT,"
	" reason TEXT,"
	" detail TEXT,"
	" answer_id TEXT,"
	" received_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" logged TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX copy_in_state ON copy_in(state);"
	/* The forms stock (forms.c): serial ranges received, each serial used once. */
	"CREATE TABLE form_range ("
	" first INTEGER PRIMARY KEY,"
	" last INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" who TEXT NOT NULL,"
	" note TEXT"
	");"
	"CREATE TABLE form_use ("
	" serial INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('printed', 'spoiled')),"
	" request_id TEXT,"
	" reason TEXT,"
	" printer TEXT,"
	" who TEXT NOT NULL,"
	" at_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX form_use_request ON form_use(request_id);"},
};

const char csd_copies_out_count[] = "SELECT count(*) FROM copy_out WHERE updated_ms < ?1";
const char csd_copies_out_delete[] = "DELETE FROM copy_out WHERE id IN"
				     " (SELECT id FROM copy_out WHERE updated_ms < ?1 LIMIT ?2)";
const char csd_copies_in_count[] = "SELECT count(*) FROM copy_in WHERE updated_ms < ?1";
const char csd_copies_in_delete[] = "DELETE FROM copy_in WHERE id IN"
				    " (SELECT id FROM copy_in WHERE updated_ms < ?1 LIMIT ?2)";

struct csd_copies {
	struct csd *cs;
	struct event *timer;
	char outgoing[PATH_MAX], answers[PATH_MAX], done[PATH_MAX], rejected[PATH_MAX];
	int have_spool;
	int spool_failing; /* copy-spool-failed raised: once until a write succeeds */
};

static const struct csd_copy_conf *
conf_of(struct csd *cs)
{
	return &csd_conf(cs->node)->copy;
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

/* -- the timer ------------------------------------------------------------- */

static void tick(evutil_socket_t fd, short what, void *arg);

static void
arm(struct csd_copies *c, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

void
csd_copies_kick(struct csd_copies *c)
{
	if (c != NULL) {
		arm(c, 0);
	}
}

static int
spool_dirs(const char *spool, struct csd_copies *c)
{
	if (snprintf(c->outgoing, sizeof(c->outgoing), "%s/outgoing", spool) >=
		(int)sizeof(c->outgoing) ||
	    snprintf(c->answers, sizeof(c->answers), "%s/answers", spool) >=
		(int)sizeof(c->answers) ||
	    snprintf(c->done, sizeof(c->done), "%s/done", spool) >= (int)sizeof(c->done) ||
	    snprintf(c->rejected, sizeof(c->rejected), "%s/rejected", spool) >=
		(int)sizeof(c->rejected)) {
		return JUKI_ERANGE;
	}
	return 0;
}

int
csd_copies_check(const struct csd_copy_conf *conf, char *err, size_t errlen)
{
	struct csd_copies c;
	const char *dirs[] = {c.outgoing, c.answers, c.done, c.rejected};
	int rc;

	if (conf->spool == NULL) {
		return 0;
	}
	if (spool_dirs(conf->spool, &c) != 0) {
		snprintf(err, errlen, "copy.spool: path too long");
		return JUKI_ECONFIG;
	}
	if ((rc = juki_dir_check_private(conf->spool, err, errlen)) != 0) {
		return rc;
	}
	for (size_t i = 0; i < 4; i++) {
		if ((rc = juki_dir_check_private(dirs[i], err, errlen)) != 0) {
			return rc;
		}
	}
	return 0;
}

int
csd_copies_start(struct csd *cs, struct csd_copies **out, char *err, size_t errlen)
{
	const struct csd_copy_conf *conf = &csd_conf(cs->node)->copy;
	struct csd_copies *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "copies: out of memory");
		return JUKI_ENOMEM;
	}
	c->cs = cs;
	if (conf->spool != NULL) {
		const char *dirs[] = {conf->spool, c->outgoing, c->answers, c->done, c->rejected};

		spool_dirs(conf->spool, c);
		for (size_t i = 0; i < 5; i++) {
			if (mkdir(dirs[i], 0700) != 0 && errno != EEXIST) {
				snprintf(err, errlen, "copy.spool: %s: %s", dirs[i],
					 strerror(errno));
				free(c);
				return -errno;
			}
		}
		c->have_spool = 1;
	}
	c->timer = evtimer_new(juki_node_base(cs->node), tick, c);
	if (c->timer == NULL) {
		snprintf(err, errlen, "copies: no timer");
		free(c);
		return JUKI_ENOMEM;
	}
	arm(c, 0);
	*out = c;
	return 0;
}

void
csd_copies_stop(struct csd_copies *c)
{
	if (c == NULL) {
		return;
	}
	event_free(c->timer);
	free(c);
}

void
csd_copies_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	conf->keep_years = csd_conf(node)->copy.keep;
}

/* -- the 住所地: requests received -------------------------------------------- */

static int
reject_field(struct juki_reject *rej, const struct csd_copy_error *e)
{
	return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: %s", e->field, e->detail);
}

int
csd_handle_copy_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] =
	    "INSERT INTO copy_in (id, sender, code, request, state, received_ms, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, 'received', ?5, ?5)";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	struct csd_copy_request r;
	struct csd_copy_error e;
	struct juki_ident sender;
	struct juki_change held;
	sqlite3_stmt *st;
	char *text;
	int rc;

	if (csd_copy_request_parse(msg->body, &r, &e) != 0) {
		return reject_field(rej, &e);
	}
	if (strcmp(r.home, juki_node_self(cs->node)->id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "home: not this municipality");
	}
	juki_ident_parse(msg->from, &sender);
	if (strcmp(r.issuer, sender.id) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "issuer: not the municipality that sent the request");
	}
	if (juki_date_not_future(r.birth, juki_node_now_ms(cs->node), "person.birth",
				 &(struct juki_field_error){0}) != 0) {
		return juki_reject_set(rej, JUKI_R_FUTURE_DATE, "person.birth: after today");
	}
	if (conf_of(cs)->spool == NULL) {
		return juki_reject_set(rej, JUKI_R_RRS_REFUSED,
				       "this municipality takes no wide-area copy requests");
	}
	rc = csd_held(cs, r.code, &held);
	if (rc == JUKI_ENOTFOUND || (rc == 0 && !csd_resident(cs, &held))) {
		return juki_reject_set(rej, JUKI_R_NOT_RESIDENT,
				       "the person is not a resident of this municipality");
	}
	if (rc != 0) {
		return rc;
	}
	if (strcmp(held.person.name, r.name) != 0 || strcmp(held.person.birth, r.birth) != 0) {
		return juki_reject_set(rej, JUKI_R_PERSON_MISMATCH,
				       "the name or the birth date is not that of the code");
	}
	if (r.by_card) {
		rc = csd_card_valid_for(store, r.card, r.req_code);
		if (rc < 0) {
			return rc;
		}
		if (rc == 0) {
			return juki_reject_set(
			    rej, JUKI_R_CARD_INVALID,
			    "the requester's card is not a valid card of its holder here");
		}
	}
	/* Kept as read: every key present, nothing the rules did not check. */
	{
		json_t *canon = csd_copy_request_json(&r);

		text = canon != NULL ? json_dumps(canon, JSON_COMPACT) : NULL;
		json_decref(canon);
	}
	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r.code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, juki_node_now_ms(cs->node));
	rc = step_done(st);
	free(text);
	if (rc == 0) {
		csd_copies_kick(cs->copies);
	}
	return rc;
}

/* Write the request's outgoing file: a temp name, fsync, rename; the same content each time. */
static int
write_outgoing(struct csd_copies *c, const char *id, const char *sender, const char *request,
	       int64_t received_ms)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64], when[32];
	json_t *req = json_loads(request, 0, NULL), *doc;
	struct juki_ident from;
	char *text;
	size_t len;
	int fd, rc = 0;

	if (req == NULL) {
		return JUKI_ENOMEM;
	}
	juki_ident_parse(sender, &from);
	juki_clock_format(received_ms, when, sizeof(when));
	doc = json_pack(
	    "{s:s,s:s,s:s,s:s,s:O,s:O,s:O,s:O,s:O}", "format", "juki-copy-request/1", "request_id",
	    id, "received", when, "issuer", from.id, "person", json_object_get(req, "person"),
	    "requester", json_object_get(req, "requester"), "items", json_object_get(req, "items"),
	    "copies", json_object_get(req, "copies"), "household",
	    json_object_get(req, "household") ? json_object_get(req, "household") : json_false());
	json_decref(req);
	if (doc == NULL || (text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
		json_decref(doc);
		return JUKI_ENOMEM;
	}
	json_decref(doc);
	snprintf(path, sizeof(path), "%s/%s.json", c->outgoing, id);
	snprintf(tmp, sizeof(tmp), "%s/.%s.json.tmp", c->outgoing, id);
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0 || rename(tmp, path) != 0) {
		rc = -errno;
		unlink(tmp);
	}
	if (fd >= 0) {
		close(fd);
	}
	free(text);
	return rc;
}

/* Requests received and not yet in the spool: written out, then marked spooled. */
static void
spool_out(struct csd_copies *c)
{
	static const char sql_get[] = "SELECT id, sender, request, received_ms FROM copy_in"
				      " WHERE state = 'received' ORDER BY received_ms LIMIT 100";
	static const char sql_set[] =
	    "UPDATE copy_in SET state = 'spooled', updated_ms = ?2 WHERE id = ?1"
	    " AND state = 'received'";
	struct juki_store *store = juki_node_store(c->cs->node);
	sqlite3_stmt *st = juki_store_prepare(store, sql_get);
	json_t *ids = json_array();
	const json_t *v;
	size_t i;

	if (st == NULL || ids == NULL) {
		json_decref(ids);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		int rc = write_outgoing(c, id, (const char *)sqlite3_column_text(st, 1),
					(const char *)sqlite3_column_text(st, 2),
					sqlite3_column_int64(st, 3));

		if (rc != 0) {
			if (!c->spool_failing) {
				c->spool_failing = 1;
				log_warnx("copies: cannot write a request to the spool: %s",
					  juki_strerror(rc));
				juki_alert(juki_node_alerts(c->cs->node), "copy-spool-failed", NULL,
					   NULL, "copy request %s: cannot write to the spool (%s)",
					   id, juki_strerror(rc));
			}
			break;
		}
		c->spool_failing = 0;
		json_array_append_new(ids, json_string(id));
	}
	sqlite3_reset(st);
	json_array_foreach(ids, i, v)
	{
		if ((st = juki_store_prepare(store, sql_set)) == NULL) {
			break;
		}
		sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, juki_node_now_ms(c->cs->node));
		step_done(st);
	}
	json_decref(ids);
}

/* Queue the copy.answer of the request id (row of copy_in) to its sender. */
static int
send_answer(struct csd *cs, const char *id, const char *sender, const json_t *copy,
	    const char *reason, const char *detail, char answer_id[JUKI_UUID_LEN + 1])
{
	static const char sql[] =
	    "UPDATE copy_in SET state = ?2, copy = ?3, reason = ?4, detail = ?5, answer_id = ?6,"
	    " updated_ms = ?7 WHERE id = ?1";
	struct juki_store *store = juki_node_store(cs->node);
	struct juki_msg msg;
	sqlite3_stmt *st;
	json_t *body;
	char *text = NULL;
	int rc;

	if (reason != NULL) {
		body = json_pack("{s:s,s:s,s:s}", "request_id", id, "status", "refused", "reason",
				 reason);
		if (body != NULL && detail != NULL && detail[0] != '\0') {
			json_object_set_new(body, "detail", json_string(detail));
		}
	} else {
		body = json_pack("{s:s,s:s,s:O}", "request_id", id, "status", "answered", "copy",
				 copy);
		text = json_dumps(copy, JSON_COMPACT);
		if (text == NULL) {
			json_decref(body);
			return JUKI_ENOMEM;
		}
	}
	if (body == NULL) {
		free(text);
		return JUKI_ENOMEM;
	}
	rc = juki_msg_init(&msg, JUKI_MSG_COPY_ANSWER, juki_node_self(cs->node)->urn, sender, id,
			   body, juki_node_clock(cs->node));
	if (rc != 0) {
		free(text);
		return rc;
	}
	rc = juki_outbox_put(store, &msg, "muni", juki_node_now_ms(cs->node), NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql)) == NULL) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, reason != NULL ? "refused" : "answered", -1,
				  SQLITE_STATIC);
		bind_opt(st, 3, text);
		bind_opt(st, 4, reason);
		bind_opt(st, 5, detail);
		sqlite3_bind_text(st, 6, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, juki_node_now_ms(cs->node));
		rc = step_done(st);
	}
	if (answer_id != NULL) {
		snprintf(answer_id, JUKI_UUID_LEN + 1, "%s", msg.id);
	}
	juki_msg_clear(&msg);
	free(text);
	return rc;
}

/* Keep an answer for the clerk's review (copy.review on). */
static int
hold_for_review(struct csd *cs, const char *id, const json_t *copy, const char *reason,
		const char *detail)
{
	static const char sql[] = "UPDATE copy_in SET state = 'review', copy = ?2, reason = ?3,"
				  " detail = ?4, updated_ms = ?5 WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sql);
	char *text = copy != NULL ? json_dumps(copy, JSON_COMPACT) : NULL;
	int rc;

	if (st == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_opt(st, 2, text);
	bind_opt(st, 3, reason);
	bind_opt(st, 4, detail);
	sqlite3_bind_int64(st, 5, juki_node_now_ms(cs->node));
	rc = step_done(st);
	free(text);
	return rc;
}

/* Move name from answers/ to dir (done/ or rejected/); a report next to a rejected one. */
static void
file_answer(struct csd_copies *c, const char *name, const char *dir, const json_t *report)
{
	char from[PATH_MAX + 300], to[PATH_MAX + 300];

	snprintf(from, sizeof(from), "%s/%s", c->answers, name);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	if (rename(from, to) != 0) {
		log_warn("copies: %s -> %s", from, to);
		unlink(from);
	}
	if (report != NULL) {
		char *text = json_dumps(report, JSON_INDENT(2));
		int fd;

		snprintf(to, sizeof(to), "%s/%s.report.json", dir, name);
		fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 && text != NULL) {
			if (write(fd, text, strlen(text)) < 0 || fsync(fd) != 0) {
				log_warn("copies: %s", to);
			}
		}
		if (fd >= 0) {
			close(fd);
		}
		free(text);
	}
}

static void
reject_answer(struct csd_copies *c, const char *name, const char *id, const char *field,
	      const char *detail)
{
	char when[32];
	json_t *report;

	juki_clock_format(juki_node_now_ms(c->cs->node), when, sizeof(when));
	report = json_pack("{s:s,s:s?,s:s,s:s,s:s}", "file", name, "request_id", id, "field", field,
			   "error", detail, "rejected", when);
	file_answer(c, name, c->rejected, report);
	json_decref(report);
	/* The file's name and the field: never a value, which may be a person's. */
	juki_alert(juki_node_alerts(c->cs->node), "copy-answer-rejected", NULL, NULL,
		   "answer file %s refused (%s: %s); nothing sent; its report is in rejected/",
		   name, field, detail);
	juki_opcmds_audit(juki_node_opcmds(c->cs->node), juki_node_self(c->cs->node)->urn,
			  "copy.answer-rejected", id != NULL ? id : name, "invalid", field);
}

/* Read one answer file: refuse it, ignore a repeat, or send/hold the answer. */
static void
read_answer(struct csd_copies *c, const char *name)
{
	static const char sql_row[] = "SELECT state, sender, request FROM copy_in WHERE id = ?1";
	struct csd *cs = c->cs;
	struct juki_store *store = juki_node_store(cs->node);
	char path[PATH_MAX + 300], state[16] = "", sender[JUKI_URN_MAX] = "";
	const char *id, *reason, *detail;
	const json_t *copy;
	struct csd_copy_request r;
	struct csd_copy_error e;
	json_error_t jerr;
	json_t *doc, *req = NULL;
	struct stat sb;
	sqlite3_stmt *st;
	int refused, rc;

	snprintf(path, sizeof(path), "%s/%s", c->answers, name);
	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		reject_answer(c, name, NULL, "file", "not a regular file");
		return;
	}
	if (sb.st_size > ANSWER_MAX) {
		reject_answer(c, name, NULL, "file", "larger than 1 MiB");
		return;
	}
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		char where[64];

		snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
		reject_answer(c, name, NULL, "json", where);
		return;
	}
	id = json_string_value(json_object_get(doc, "request_id"));
	if (id == NULL || !juki_uuid_valid(id)) {
		reject_answer(c, name, NULL, "request_id", "the id of a request, a UUIDv7");
		json_decref(doc);
		return;
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		json_decref(doc);
		return;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(sender, sizeof(sender), "%s", (const char *)sqlite3_column_text(st, 1));
		req = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (state[0] == '\0') {
		reject_answer(c, name, id, "request_id", "no request of that id here");
		json_decref(doc);
		return;
	}
	if (strcmp(state, "received") != 0 && strcmp(state, "spooled") != 0) {
		/* Answered before (the daemon stopped before it filed the file): once only. */
		log_info("copies: answer file %s: request %s is %s already; filed", name, id,
			 state);
		file_answer(c, name, c->done, NULL);
		json_decref(doc);
		json_decref(req);
		return;
	}
	if (req == NULL || csd_copy_request_parse(req, &r, &e) != 0) {
		reject_answer(c, name, id, "request", "the request kept here is unreadable");
		json_decref(doc);
		json_decref(req);
		return;
	}
	json_decref(req);
	/* The file's own key "format" aside, the body of copy.answer. */
	if (json_object_get(doc, "format") != NULL &&
	    (!json_is_string(json_object_get(doc, "format")) ||
	     strcmp(json_string_value(json_object_get(doc, "format")), "juki-copy-answer/1") !=
		 0)) {
		reject_answer(c, name, id, "format", "juki-copy-answer/1, or no format");
		json_decref(doc);
		return;
	}
	json_object_del(doc, "format");
	if (csd_copy_answer_parse(doc, r.items, &id, &refused, &copy, &reason, &detail, &e) != 0) {
		reject_answer(c, name, id, e.field, e.detail);
		json_decref(doc);
		return;
	}
	if (refused && strcmp(reason, JUKI_R_REVIEW_REFUSED) == 0) {
		reject_answer(c, name, id, "reason",
			      "review-refused is the clerk's, not the RRS's");
		json_decref(doc);
		return;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		json_decref(doc);
		return;
	}
	if (conf_of(cs)->review) {
		rc = hold_for_review(cs, id, copy, reason, detail);
	} else {
		rc = send_answer(cs, id, sender, copy, reason, detail, NULL);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		log_warnx("copies: answer file %s: %s", name, juki_strerror(rc));
		json_decref(doc);
		return;
	}
	{
		char out[PATH_MAX + 64];

		snprintf(out, sizeof(out), "%s/%s.json", c->outgoing, id);
		unlink(out);
	}
	file_answer(c, name, c->done, NULL);
	json_decref(doc);
	juki_node_kick(cs->node);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The answers waiting in answers/, in name order, a turn's worth at a time. */
static void
read_answers(struct csd_copies *c)
{
	DIR *d = opendir(c->answers);
	char *names[ANSWERS_TURN];
	size_t n = 0;
	struct dirent *de;

	if (d == NULL) {
		return;
	}
	while (n < ANSWERS_TURN && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue; /* being written, or . and .. */
		}
		if ((names[n] = strdup(de->d_name)) != NULL) {
			n++;
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		read_answer(c, names[i]);
		free(names[i]);
	}
}

/* -- the 交付地: requests sent ---------------------------------------------- */

static void
overdue(struct csd_copies *c)
{
	static const char sql_get[] =
	    "SELECT id, home FROM copy_out WHERE state = 'sent' AND overdue_ms IS NULL"
	    " AND created_ms <= ?1 ORDER BY created_ms LIMIT 100";
	static const char sql_set[] = "UPDATE copy_out SET overdue_ms = ?2 WHERE id = ?1";
	struct juki_store *store = juki_node_store(c->cs->node);
	int64_t now = juki_node_now_ms(c->cs->node);
	sqlite3_stmt *st = juki_store_prepare(store, sql_get);
	json_t *ids = json_array();
	const json_t *v;
	size_t i;

	if (st == NULL || ids == NULL) {
		json_decref(ids);
		return;
	}
	sqlite3_bind_int64(st, 1, now - conf_of(c->cs)->timeout);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(ids, json_pack("{s:s,s:s}", "id", sqlite3_column_text(st, 0),
						     "home", sqlite3_column_text(st, 1)));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	json_array_foreach(ids, i, v)
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
		juki_alert(juki_node_alerts(c->cs->node), "copy-overdue", NULL, NULL,
			   "copy request %s to %s not answered within %lld s", id,
			   json_string_value(json_object_get(v, "home")),
			   (long long)(conf_of(c->cs)->timeout / 1000));
		juki_opcmds_audit(juki_node_opcmds(c->cs->node), juki_node_self(c->cs->node)->urn,
				  "copy.overdue", id, "ok", NULL);
	}
	json_decref(ids);
}

/*
 * Every change of state not yet in the operation history (the steps the
 * network and the spool make, which no operator's command records): one
 * entry each, "copy.<state>", by the CS itself, under the request's id.
 */
static void
log_steps(struct csd_copies *c)
{
	static const char sql_out[] = "SELECT id, state, reason FROM copy_out"
				      " WHERE logged IS NOT state AND state != 'sent' LIMIT 100";
	static const char sql_in[] = "SELECT id, state, reason FROM copy_in"
				     " WHERE logged IS NOT state LIMIT 100";
	static const char set_out[] = "UPDATE copy_out SET logged = ?2 WHERE id = ?1";
	static const char set_in[] = "UPDATE copy_in SET logged = ?2 WHERE id = ?1";
	const char *const gets[] = {sql_out, sql_in}, *const sets[] = {set_out, set_in};
	struct juki_store *store = juki_node_store(c->cs->node);

	for (int t = 0; t < 2; t++) {
		sqlite3_stmt *st = juki_store_prepare(store, gets[t]);
		json_t *rows = json_array();
		const json_t *v;
		size_t i;

		if (st == NULL || rows == NULL) {
			json_decref(rows);
			return;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_array_append_new(rows, json_pack("{s:s,s:s,s:s?}", "id",
							      sqlite3_column_text(st, 0), "state",
							      sqlite3_column_text(st, 1), "reason",
							      sqlite3_column_text(st, 2)));
		}
		sqlite3_reset(st);
		json_array_foreach(rows, i, v)
		{
			char action[32];
			const char *state = json_string_value(json_object_get(v, "state"));
			const char *id = json_string_value(json_object_get(v, "id"));

			snprintf(action, sizeof(action), "copy.%s", state);
			juki_opcmds_audit(juki_node_opcmds(c->cs->node),
					  juki_node_self(c->cs->node)->urn, action, id, "ok",
					  json_string_value(json_object_get(v, "reason")));
			if ((st = juki_store_prepare(store, sets[t])) == NULL) {
				break;
			}
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
			step_done(st);
		}
		json_decref(rows);
	}
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct csd_copies *c = arg;

	(void)fd;
	(void)what;
	/* Each step in the history before the next can follow it. */
	log_steps(c);
	if (c->have_spool) {
		spool_out(c);
		log_steps(c);
		read_answers(c);
	}
	overdue(c);
	log_steps(c);
	arm(c, conf_of(c->cs)->scan_interval);
}

/* -- the 交付地: answers ------------------------------------------------------ */

int
csd_handle_copy_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql_row[] = "SELECT state, home, request FROM copy_out WHERE id = ?1";
	static const char sql_set[] = "UPDATE copy_out SET state = ?2, copy = ?3, reason = ?4,"
				      " detail = ?5, updated_ms = ?6 WHERE id = ?1";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *rid = json_string_value(json_object_get(msg->body, "request_id"));
	const char *id, *reason, *detail;
	char state[16] = "", home[JUKI_LGCODE_LEN + 1] = "", *text = NULL;
	struct csd_copy_request r;
	struct csd_copy_error e;
	struct juki_ident sender;
	const json_t *copy;
	json_t *req = NULL;
	sqlite3_stmt *st;
	int refused, rc;

	if (rid == NULL || !juki_uuid_valid(rid)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "request_id: a UUIDv7 required");
	}
	if (strcmp(msg->corr, rid) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "corr: not the request_id");
	}
	if ((st = juki_store_prepare(store, sql_row)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(home, sizeof(home), "%s", (const char *)sqlite3_column_text(st, 1));
		req = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	juki_ident_parse(msg->from, &sender);
	if (state[0] == '\0' || strcmp(home, sender.id) != 0) {
		json_decref(req);
		return juki_reject_set(rej, JUKI_R_UNKNOWN_REQUEST,
				       "no copy request of that id was sent to this municipality");
	}
	if (req == NULL || csd_copy_request_parse(req, &r, &e) != 0) {
		json_decref(req);
		return JUKI_ESTORE;
	}
	json_decref(req);
	if (csd_copy_answer_parse(msg->body, r.items, &id, &refused, &copy, &reason, &detail, &e) !=
	    0) {
		return reject_field(rej, &e);
	}
	if (strcmp(state, "sent") != 0) {
		/* A second answer to an answered request: the first stands. */
		return juki_reject_set(rej, JUKI_R_UNKNOWN_REQUEST,
				       "the request was answered before");
	}
	if (copy != NULL && (text = json_dumps(copy, JSON_COMPACT)) == NULL) {
		return JUKI_ENOMEM;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, refused ? "refused" : "answered", -1, SQLITE_STATIC);
	bind_opt(st, 3, text);
	bind_opt(st, 4, reason);
	bind_opt(st, 5, detail);
	sqlite3_bind_int64(st, 6, juki_node_now_ms(cs->node));
	rc = step_done(st);
	free(text);
	csd_copies_kick(cs->copies);
	return rc;
}

int
csd_copies_on_ack(struct csd *cs, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	static const char sql[] = "UPDATE copy_out SET state = 'refused', reason = ?2, detail = ?3,"
				  " updated_ms = ?4 WHERE id = ?1 AND state = 'sent'";
	sqlite3_stmt *st;
	int rc;

	if (strcmp(entry->type, JUKI_MSG_COPY_ANSWER) == 0) {
		return 1;
	}
	if (strcmp(entry->type, JUKI_MSG_COPY_REQUEST) != 0) {
		return 0;
	}
	if (ack->status != JUKI_ACK_REJECTED) {
		return 1;
	}
	/* Refused by the 住所地 CS: not resident, not that person, card not valid, ... */
	if ((st = juki_store_prepare(juki_node_store(cs->node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ack->reason, -1, SQLITE_STATIC);
	bind_opt(st, 3, ack->detail);
	sqlite3_bind_int64(st, 4, juki_node_now_ms(cs->node));
	rc = step_done(st);
	csd_copies_kick(cs->copies);
	return rc != 0 ? rc : 1;
}

/* -- commands ------------------------------------------------------------- */

int
csd_cmd_copy_request(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "INSERT INTO copy_out (id, code, home, request, state, clerk, created_ms, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, 'sent', ?5, ?6, ?6)";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	int64_t now = juki_node_now_ms(cs->node);
	struct csd_copy_request r;
	struct csd_copy_error e;
	struct juki_ident home;
	struct juki_msg msg;
	json_t *body = json_deep_copy(args);
	sqlite3_stmt *st;
	char *text;
	int rc;

	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	json_object_set_new(body, "issuer", json_string(juki_node_self(cs->node)->id));
	if (json_object_get(body, "copies") == NULL) {
		json_object_set_new(body, "copies", json_integer(1));
	}
	if (json_object_get(body, "items") == NULL) {
		json_object_set_new(body, "items", json_array());
	}
	if (csd_copy_request_parse(body, &r, &e) != 0) {
		json_decref(body);
		if (strcmp(e.field, "issuer") == 0) {
			return juki_ctl_fail(err, "invalid",
					     "home: this municipality; a copy of a resident here "
					     "is not a wide-area copy");
		}
		return juki_ctl_fail(err, "invalid", "%s: %s", e.field, e.detail);
	}
	if (juki_date_not_future(r.birth, now, "person.birth", &(struct juki_field_error){0}) !=
	    0) {
		json_decref(body);
		return juki_ctl_fail(err, "invalid", "person.birth: after today");
	}
	json_decref(body);
	/* The body as the peer reads it: what was checked, nothing more. */
	if ((body = csd_copy_request_json(&r)) == NULL ||
	    (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		json_decref(body);
		return JUKI_ENOMEM;
	}
	juki_ident_node(JUKI_KIND_CS, r.home, &home);
	rc = juki_msg_init(&msg, JUKI_MSG_COPY_REQUEST, juki_node_self(cs->node)->urn, home.urn,
			   NULL, body, juki_node_clock(cs->node));
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
		sqlite3_bind_text(st, 3, r.home, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, who_of(cs), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 6, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		goto out;
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), msg.id, NULL);
	juki_node_kick(cs->node);
	*result = json_pack("{s:s,s:s,s:s}", "id", msg.id, "state", "sent", "to", home.urn);
out:
	juki_msg_clear(&msg);
	free(text);
	return rc;
}

/* A row of copy_out or copy_in as JSON: (id, side, state, reason, detail, times, overdue). */
static json_t *
row_summary(sqlite3_stmt *st, const char *side, int64_t timeout, int64_t now)
{
	char when[32];
	json_t *row;
	int64_t created = sqlite3_column_int64(st, 5);

	juki_clock_format(created, when, sizeof(when));
	row = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s}", "id", sqlite3_column_text(st, 0),
			"side", side, "code", sqlite3_column_text(st, 1), "peer",
			sqlite3_column_text(st, 2), "state", sqlite3_column_text(st, 3), "reason",
			sqlite3_column_text(st, 4), "detail", sqlite3_column_text(st, 6), "created",
			when);
	if (row != NULL && strcmp(side, "issued") == 0) {
		int late = strcmp((const char *)sqlite3_column_text(st, 3), "sent") == 0 &&
			   created + timeout <= now;

		json_object_set_new(row, "overdue", json_boolean(late));
	}
	return row;
}

static const char sql_list_out[] =
    "SELECT id, code, home, state, reason, created_ms, detail FROM copy_out"
    " WHERE ?1 IS NULL OR state = ?1 ORDER BY created_ms, id LIMIT ?2";
static const char sql_list_in[] =
    "SELECT id, code, sender, state, reason, received_ms, detail FROM copy_in"
    " WHERE ?1 IS NULL OR state = ?1 ORDER BY received_ms, id LIMIT ?2";

int
csd_cmd_copy_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const char *state = json_string_value(json_object_get(args, "state"));
	const char *const sqls[] = {sql_list_out, sql_list_in};
	const char *const sides[] = {"issued", "home"};
	int64_t now = juki_node_now_ms(cs->node);
	json_t *out = json_object();

	if (json_object_get(args, "state") != NULL && state == NULL) {
		return juki_ctl_fail(err, "usage", "state: a state name");
	}
	for (int t = 0; t < 2; t++) {
		sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sqls[t]);
		json_t *rows = json_array();

		if (st == NULL || rows == NULL) {
			json_decref(rows);
			json_decref(out);
			return JUKI_ESTORE;
		}
		bind_opt(st, 1, state);
		sqlite3_bind_int64(st, 2, LIST_MAX);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_array_append_new(rows,
					      row_summary(st, sides[t], conf_of(cs)->timeout, now));
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		json_object_set_new(out, t == 0 ? "issued" : "home", rows);
	}
	*result = out;
	return 0;
}

/* The prints of a request: their serials, times and operators. */
static json_t *
prints_of(struct juki_store *store, const char *id)
{
	static const char sql[] = "SELECT serial, who, at_ms, printer FROM form_use"
				  " WHERE request_id = ?1 AND kind = 'printed' ORDER BY serial";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *a = json_array();

	if (st == NULL || a == NULL) {
		return a;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char when[32];

		juki_clock_format(sqlite3_column_int64(st, 2), when, sizeof(when));
		json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:s?}", "serial",
						   (json_int_t)sqlite3_column_int64(st, 0), "who",
						   sqlite3_column_text(st, 1), "at", when,
						   "printer", sqlite3_column_text(st, 3)));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return a;
}

json_t *csd_copy_get(struct csd *cs, const char *id);

/* The whole of request id, either side; NULL when unknown. */
json_t *
csd_copy_get(struct csd *cs, const char *id)
{
	static const char sql_out[] =
	    "SELECT id, code, home, state, reason, created_ms, detail, request, copy, clerk,"
	    " updated_ms, overdue_ms FROM copy_out WHERE id = ?1";
	static const char sql_in[] =
	    "SELECT id, code, sender, state, reason, received_ms, detail, request, copy, answer_id,"
	    " updated_ms FROM copy_in WHERE id = ?1";
	struct juki_store *store = juki_node_store(cs->node);
	const char *const sqls[] = {sql_out, sql_in};
	const char *const sides[] = {"issued", "home"};
	json_t *row = NULL;

	for (int t = 0; t < 2 && row == NULL; t++) {
		sqlite3_stmt *st = juki_store_prepare(store, sqls[t]);

		if (st == NULL) {
			return NULL;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			char when[32];

			row = row_summary(st, sides[t], conf_of(cs)->timeout,
					  juki_node_now_ms(cs->node));
			json_object_set_new(
			    row, "request",
			    json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL));
			if (sqlite3_column_type(st, 8) == SQLITE_TEXT) {
				json_object_set_new(
				    row, "copy",
				    json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL));
			}
			juki_clock_format(sqlite3_column_int64(st, 10), when, sizeof(when));
			json_object_set_new(row, "updated", json_string(when));
			if (t == 0) {
				json_object_set_new(
				    row, "clerk",
				    json_string((const char *)sqlite3_column_text(st, 9)));
				json_object_set_new(row, "prints", prints_of(store, id));
			}
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return row;
}

static int
id_arg(struct csd *cs, const json_t *args, const char **id, struct juki_ctl_error *err)
{
	*id = json_string_value(json_object_get(args, "id"));
	if (*id == NULL || !juki_uuid_valid(*id)) {
		return juki_ctl_fail(err, "usage", "id: a request id (UUIDv7)");
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), *id, NULL);
	return 0;
}

int
csd_cmd_copy_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const char *id;
	int rc;

	if ((rc = id_arg(cs, args, &id, err)) != 0) {
		return rc;
	}
	if ((*result = csd_copy_get(cs, id)) == NULL) {
		return juki_ctl_fail(err, "not-found", "no copy request %s here", id);
	}
	return 0;
}

int
csd_cmd_copy_review(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] = "SELECT state, sender, copy, reason, detail FROM copy_in"
				  " WHERE id = ?1";
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *id, *decision = json_string_value(json_object_get(args, "decision"));
	const char *why = json_string_value(json_object_get(args, "reason"));
	char state[16] = "", sender[JUKI_URN_MAX] = "", reason[64] = "", detail[256] = "";
	char answer[JUKI_UUID_LEN + 1], check[96];
	json_t *copy = NULL;
	sqlite3_stmt *st;
	int approve, rc;

	if ((rc = id_arg(cs, args, &id, err)) != 0) {
		return rc;
	}
	if (decision == NULL ||
	    (strcmp(decision, "approve") != 0 && strcmp(decision, "refuse") != 0)) {
		return juki_ctl_fail(err, "usage", "decision: approve or refuse");
	}
	approve = strcmp(decision, "approve") == 0;
	if (!approve && (why == NULL || why[0] == '\0')) {
		return juki_ctl_fail(err, "usage", "reason: required to refuse");
	}
	if (why != NULL && juki_text_valid(why, CSD_COPY_TEXT_MAX, check, sizeof(check)) != 0) {
		return juki_ctl_fail(err, "invalid", "reason: %s", check);
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(sender, sizeof(sender), "%s", (const char *)sqlite3_column_text(st, 1));
		if (sqlite3_column_type(st, 2) == SQLITE_TEXT) {
			copy = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
		}
		if (sqlite3_column_type(st, 3) == SQLITE_TEXT) {
			snprintf(reason, sizeof(reason), "%s",
				 (const char *)sqlite3_column_text(st, 3));
		}
		if (sqlite3_column_type(st, 4) == SQLITE_TEXT) {
			snprintf(detail, sizeof(detail), "%s",
				 (const char *)sqlite3_column_text(st, 4));
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (state[0] == '\0') {
		json_decref(copy);
		return juki_ctl_fail(err, "not-found", "no copy request %s received here", id);
	}
	if (strcmp(state, "review") != 0) {
		json_decref(copy);
		return juki_ctl_fail(err, "conflict", "request %s is %s: nothing to review", id,
				     state);
	}
	if ((rc = juki_store_begin(store)) != 0) {
		json_decref(copy);
		return rc;
	}
	if (approve) {
		rc = send_answer(cs, id, sender, copy, reason[0] ? reason : NULL,
				 reason[0] ? detail : NULL, answer);
	} else {
		rc = send_answer(cs, id, sender, NULL, JUKI_R_REVIEW_REFUSED, why, answer);
	}
	json_decref(copy);
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		return rc;
	}
	juki_node_kick(cs->node);
	csd_copies_kick(cs->copies);
	*result = json_pack("{s:s,s:s,s:s}", "id", id, "decision", decision, "answer_id", answer);
	return 0;
}

json_t *
csd_copies_status(struct csd *cs)
{
	static const char sql[] = "SELECT 'issued', state, count(*) FROM copy_out GROUP BY state"
				  " UNION ALL SELECT 'home', state, count(*) FROM copy_in"
				  " GROUP BY state";
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(cs->node), sql);
	json_t *out = json_pack("{s:{},s:{}}", "issued", "home");

	if (st == NULL || out == NULL) {
		return out;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object_set_new(json_object_get(out, (const char *)sqlite3_column_text(st, 0)),
				    (const char *)sqlite3_column_text(st, 1),
				    json_integer(sqlite3_column_int64(st, 2)));
	}
	sqlite3_reset(st);
	return out;
}
