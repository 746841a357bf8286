/*
 * Notices (第4-7(3)): notice.h says what they are; docs/protocol.md has the
 * two messages, docs/operations.md how an operator uses them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/log.h"
#include "juki/node/monitor.h"
#include "juki/node/node.h"
#include "juki/node/notice.h"

const struct juki_migration juki_notice_steps[JUKI_NOTICE_NSTEPS] = {
    {1, "CREATE TABLE notice_sent ("
	" id TEXT PRIMARY KEY,"
	" time_ms INTEGER NOT NULL,"
	" severity TEXT NOT NULL,"
	" text TEXT NOT NULL,"
	" by TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE notice_dest ("
	" id TEXT NOT NULL,"
	" node TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reason TEXT,"
	" acked_ms INTEGER,"
	" acked_by TEXT,"
	" msg_id TEXT,"
	" PRIMARY KEY (id, node)"
	") WITHOUT ROWID;"
	"CREATE INDEX notice_dest_msg ON notice_dest(msg_id);"
	"CREATE TABLE notice_received ("
	" id TEXT PRIMARY KEY,"
	" sender TEXT NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" severity TEXT NOT NULL,"
	" text TEXT NOT NULL,"
	" acked_ms INTEGER,"
	" acked_by TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX notice_received_time ON notice_received(received_ms);"},
};

static const char *const severities[] = {"info", "warning", "critical", NULL};

int
juki_notice_severity_valid(const char *severity)
{
	for (size_t i = 0; severity != NULL && severities[i] != NULL; i++) {
		if (strcmp(severity, severities[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

int
juki_notice_text_check(const char *text, size_t len, char *why, size_t whylen)
{
	const uint8_t *s = (const uint8_t *)text;
	size_t off = 0;

	if (text == NULL || len == 0) {
		juki_seterr(why, whylen, "empty");
		return JUKI_EINVAL;
	}
	if (len > JUKI_NOTICE_TEXT_MAX) {
		juki_seterr(why, whylen, "%zu bytes, more than %d", len, JUKI_NOTICE_TEXT_MAX);
		return JUKI_EINVAL;
	}
	if (u8_check(s, len) != NULL) {
		juki_seterr(why, whylen, "not UTF-8 at byte %zu", (size_t)(u8_check(s, len) - s));
		return JUKI_EINVAL;
	}
	while (off < len) {
		ucs4_t c;
		int n = u8_mbtouc(&c, s + off, len - off);

		/* C0 (a NUL, a newline, an escape), DEL and C1 could forge a terminal's lines. */
		if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
			juki_seterr(why, whylen, "a control character (U+%04X) at byte %zu",
				    (unsigned)c, off);
			return JUKI_EINVAL;
		}
		off += (size_t)(n > 0 ? n : 1);
	}
	return 0;
}

/* A member of body that must be a string: its value, or NULL (rej filled). */
static const char *
member_str(const json_t *body, const char *key, size_t max, struct juki_reject *rej)
{
	const json_t *v = json_object_get(body, key);

	if (!json_is_string(v)) {
		juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: missing or not a string", key);
		return NULL;
	}
	if (json_string_length(v) > max) {
		juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: longer than %zu bytes", key, max);
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: a NUL character", key);
		return NULL;
	}
	return json_string_value(v);
}

/* Only the members named (keys, NULL-terminated) may be there. */
static int
members_known(const json_t *body, const char *const *keys, struct juki_reject *rej)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)body, key, v)
	{
		size_t i;

		(void)v;
		for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++) {
		}
		if (keys[i] == NULL) {
			return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%.64s: not a member here",
					       key);
		}
	}
	return 0;
}

int
juki_notice_parse(const json_t *body, struct juki_notice *out, struct juki_reject *rej)
{
	static const char *const keys[] = {"id", "time", "severity", "text", NULL};
	const char *id, *time, *sev, *text;
	char why[128];

	memset(out, 0, sizeof(*out));
	if (!json_is_object(body)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: not an object");
	}
	if (members_known(body, keys, rej) != 0 ||
	    (id = member_str(body, "id", JUKI_UUID_LEN, rej)) == NULL ||
	    (time = member_str(body, "time", 64, rej)) == NULL ||
	    (sev = member_str(body, "severity", sizeof(out->severity) - 1, rej)) == NULL ||
	    (text = member_str(body, "text", JUKI_NOTICE_TEXT_MAX * 2, rej)) == NULL) {
		return JUKI_REJECT;
	}
	if (!juki_uuid_valid(id)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "id: not a UUIDv7");
	}
	if (juki_clock_parse(time, &out->time_ms) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "time: not an RFC 3339 UTC time");
	}
	if (!juki_notice_severity_valid(sev)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "severity: not info, warning or critical");
	}
	if (juki_notice_text_check(text, strlen(text), why, sizeof(why)) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "text: %s", why);
	}
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->severity, sizeof(out->severity), "%s", sev);
	snprintf(out->text, sizeof(out->text), "%s", text);
	return 0;
}

/* "admin:uid=N" or an operator's identity: who acknowledged. */
static int
by_valid(const char *by)
{
	struct juki_ident ident;
	const char *p;

	if (strncmp(by, "admin:uid=", 10) == 0) {
		p = by + 10;
		if (*p == '\0' || strlen(p) > 10) {
			return 0;
		}
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9') {
				return 0;
			}
		}
		return 1;
	}
	return juki_ident_parse(by, &ident) == 0 && ident.kind == JUKI_KIND_OP;
}

int
juki_notice_ack_parse(const json_t *body, char id[JUKI_UUID_LEN + 1], char by[JUKI_NOTICE_BY_MAX],
		      int64_t *time_ms, struct juki_reject *rej)
{
	static const char *const keys[] = {"id", "by", "time", NULL};
	const char *vid, *vby, *vtime;

	if (!json_is_object(body)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: not an object");
	}
	if (members_known(body, keys, rej) != 0 ||
	    (vid = member_str(body, "id", JUKI_UUID_LEN, rej)) == NULL ||
	    (vby = member_str(body, "by", JUKI_NOTICE_BY_MAX - 1, rej)) == NULL ||
	    (vtime = member_str(body, "time", 64, rej)) == NULL) {
		return JUKI_REJECT;
	}
	if (!juki_uuid_valid(vid)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "id: not a UUIDv7");
	}
	if (!by_valid(vby)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "by: not an operator's identity or admin:uid=N");
	}
	if (juki_clock_parse(vtime, time_ms) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "time: not an RFC 3339 UTC time");
	}
	snprintf(id, JUKI_UUID_LEN + 1, "%s", vid);
	snprintf(by, JUKI_NOTICE_BY_MAX, "%s", vby);
	return 0;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_notice_store_received(struct juki_store *store, const char *sender,
			   const struct juki_notice *n, int64_t now_ms)
{
	static const char sql[] = "INSERT OR IGNORE INTO notice_received(id, sender, time_ms, "
				  "received_ms, severity, text)"
				  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, n->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, sender, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, n->time_ms);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_text(st, 5, n->severity, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, n->text, -1, SQLITE_TRANSIENT);
	return step_done(st);
}

int
juki_notice_store_acked(struct juki_store *store, const char *id, const char *node, const char *by,
			int64_t time_ms)
{
	static const char sql[] = "UPDATE notice_dest SET acked_ms = coalesce(acked_ms, ?3), "
				  "acked_by = coalesce(acked_by, "
				  "?4) WHERE id = ?1 AND node = ?2";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, node, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, time_ms);
	sqlite3_bind_text(st, 4, by, -1, SQLITE_TRANSIENT);
	rc = step_done(st);
	if (rc == 0 && sqlite3_changes(sqlite3_db_handle(st)) == 0) {
		rc = JUKI_ENOTFOUND;
	}
	return rc;
}

static json_t *
time_or_null(sqlite3_stmt *st, int col)
{
	char buf[32];

	if (sqlite3_column_type(st, col) == SQLITE_NULL ||
	    juki_clock_format(sqlite3_column_int64(st, col), buf, sizeof(buf)) != 0) {
		return json_null();
	}
	return json_string(buf);
}

static json_t *
text_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		return json_null();
	}
	return json_string((const char *)sqlite3_column_text(st, col));
}

/* Received notices, newest first: columns id, sender, time, received, severity, text, acked. */
static json_t *
received_json(struct juki_store *store, int64_t limit, int unacked_only)
{
	static const char sql[] =
	    "SELECT id, sender, time_ms, received_ms, severity, text, acked_ms, acked_by"
	    " FROM notice_received WHERE (?2 = 0 OR acked_ms IS NULL)"
	    " ORDER BY received_ms DESC, id DESC LIMIT ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int(st, 2, unacked_only);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    out,
		    json_pack("{s:s,s:s,s:o,s:o,s:s,s:s,s:o,s:o}", "id", sqlite3_column_text(st, 0),
			      "from", sqlite3_column_text(st, 1), "time", time_or_null(st, 2),
			      "received", time_or_null(st, 3), "severity",
			      sqlite3_column_text(st, 4), "text", sqlite3_column_text(st, 5),
			      "acked", time_or_null(st, 6), "by", text_or_null(st, 7)));
	}
	sqlite3_reset(st);
	return out;
}

json_t *
juki_notice_status_of(struct juki_store *store)
{
	static const char sql[] = "SELECT count(*) FROM notice_received WHERE acked_ms IS NULL";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_int_t unacked = 0;

	if (st == NULL) {
		return NULL;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		unacked = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return json_pack("{s:I,s:o*}", "unacked", unacked, "recent",
			 received_json(store, JUKI_NOTICE_RECENT, 0));
}

json_t *
juki_notice_status(struct juki_node *node)
{
	return juki_notice_status_of(juki_node_store(node));
}

/* ---- receiving ---------------------------------------------------------------------- */

/* Does urn watch this node (juki_monitor_watchers())? */
static int
watched_by(struct juki_node *node, const char *urn)
{
	char urns[JUKI_MONITOR_WATCHERS][JUKI_URN_MAX];
	size_t n =
	    juki_monitor_watchers(juki_node_self(node), &juki_node_conf(node)->monitor, urns);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(urns[i], urn) == 0) {
			return 1;
		}
	}
	return 0;
}

int
juki_notice_handle(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	struct juki_notice n;
	int rc;

	if (!watched_by(node, msg->from)) {
		juki_alert(juki_node_alerts(node), "notice-refused", msg->from, NULL,
			   "a notice from a node that does not watch this one");
		return juki_reject_set(rej, JUKI_R_NOT_WATCHER,
				       "%s does not watch this node (monitor.watchers)", msg->from);
	}
	if (juki_notice_parse(msg->body, &n, rej) != 0) {
		return JUKI_REJECT;
	}
	rc = juki_notice_store_received(juki_node_store(node), msg->from, &n,
					juki_node_now_ms(node));
	if (rc == 0) {
		/* The text may say anything: the log names the notice, never its text. */
		log_notice("notice: %s from %s, %s", n.id, msg->from, n.severity);
	}
	return rc;
}

int
juki_notice_handle_ack(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	char id[JUKI_UUID_LEN + 1], by[JUKI_NOTICE_BY_MAX];
	int64_t t;
	int rc;

	if (juki_notice_ack_parse(msg->body, id, by, &t, rej) != 0) {
		return JUKI_REJECT;
	}
	rc = juki_notice_store_acked(juki_node_store(node), id, msg->from, by, t);
	if (rc == JUKI_ENOTFOUND) {
		return juki_reject_set(rej, JUKI_R_UNKNOWN_NOTICE,
				       "no notice %s was sent to %s from here", id, msg->from);
	}
	if (rc == 0) {
		juki_opcmds_audit(juki_node_opcmds(node), msg->from, "notice.acked", id, "ok",
				  NULL);
	}
	return rc;
}

int
juki_notice_on_ack(struct juki_node *node, const struct juki_outbox_entry *entry,
		   const struct juki_ack *ack)
{
	static const char sql[] = "UPDATE notice_dest SET state = ?2, reason = ?3"
				  " WHERE msg_id = ?1 AND state = 'queued'";
	sqlite3_stmt *st;

	if (strcmp(entry->type, JUKI_MSG_NOTICE) != 0) {
		return 0;
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, ack->status == JUKI_ACK_REJECTED ? "refused" : "delivered", -1,
			  SQLITE_STATIC);
	if (ack->status == JUKI_ACK_REJECTED) {
		sqlite3_bind_text(st, 3, ack->reason, -1, SQLITE_TRANSIENT);
	}
	return step_done(st);
}

/* ---- commands ----------------------------------------------------------------------- */

/* Add urn to the array to, once. */
static void
add_target(json_t *to, const char *urn)
{
	size_t i;
	json_t *v;

	json_array_foreach(to, i, v)
	{
		if (strcmp(json_string_value(v), urn) == 0) {
			return;
		}
	}
	json_array_append_new(to, json_string(urn));
}

/* The nodes on the board of prefecture pref (0: all). */
static int
add_board(struct juki_node *node, int pref, json_t *to)
{
	json_t *board = juki_monitor_board_json(node, pref);
	json_t *nodes = json_object_get(board, "nodes"), *n;
	size_t i;

	if (board == NULL) {
		return JUKI_ENOTFOUND; /* no board kept here */
	}
	json_array_foreach(nodes, i, n)
	{
		const char *urn = json_string_value(json_object_get(n, "node"));

		if (urn != NULL && strcmp(urn, juki_node_self(node)->urn) != 0) {
			add_target(to, urn);
		}
	}
	json_decref(board);
	return 0;
}

/* The recipients named by args "to": urns, "all", "pref:NN". */
static int
resolve_to(struct juki_node *node, const json_t *arg, json_t *to, struct juki_ctl_error *err)
{
	size_t i;
	json_t *v;

	if (json_is_string(arg)) {
		json_t *one = json_pack("[O]", arg);
		int rc = one != NULL ? resolve_to(node, one, to, err) : JUKI_ENOMEM;

		json_decref(one);
		return rc;
	}
	if (!json_is_array(arg) || json_array_size(arg) == 0) {
		return juki_ctl_fail(err, "usage", "to: one or more node urns, all or pref:NN");
	}
	json_array_foreach(arg, i, v)
	{
		const char *s = json_string_value(v);
		struct juki_ident ident;

		if (s == NULL) {
			return juki_ctl_fail(err, "usage", "to[%zu]: not a string", i);
		}
		if (strcmp(s, "all") == 0) {
			if (add_board(node, 0, to) != 0) {
				return juki_ctl_fail(err, "no-board",
						     "to[%zu]: this node keeps no board to take "
						     "the nodes from (monitor.board)",
						     i);
			}
		} else if (strncmp(s, "pref:", 5) == 0) {
			int pref = (s[5] >= '0' && s[5] <= '9' && s[6] >= '0' && s[6] <= '9' &&
				    s[7] == '\0')
				       ? (s[5] - '0') * 10 + (s[6] - '0')
				       : 0;

			if (pref < 1 || pref > 47) {
				return juki_ctl_fail(err, "usage",
						     "to[%zu]: pref:NN with NN from 01 to 47", i);
			}
			if (add_board(node, pref, to) != 0) {
				return juki_ctl_fail(err, "no-board",
						     "to[%zu]: this node keeps no board to take "
						     "the nodes from (monitor.board)",
						     i);
			}
		} else if (juki_ident_parse(s, &ident) != 0 || ident.kind == JUKI_KIND_OP ||
			   ident.kind == JUKI_KIND_CA || ident.kind == JUKI_KIND_FWGATE ||
			   ident.kind == JUKI_KIND_EXEC || ident.kind == JUKI_KIND_AGENCY) {
			return juki_ctl_fail(err, "usage",
					     "to[%zu]: not a server node's urn, all or pref:NN", i);
		} else if (strcmp(ident.urn, juki_node_self(node)->urn) == 0) {
			return juki_ctl_fail(err, "usage", "to[%zu]: this node itself", i);
		} else {
			add_target(to, ident.urn);
		}
		if (json_array_size(to) > JUKI_NOTICE_TO_MAX) {
			return juki_ctl_fail(err, "usage", "to: more than %d nodes",
					     JUKI_NOTICE_TO_MAX);
		}
	}
	if (json_array_size(to) == 0) {
		return juki_ctl_fail(err, "no-recipients",
				     "to: no node on the board matches (no heartbeat yet?)");
	}
	return 0;
}

static const char *
caller_of(struct juki_node *node)
{
	const struct juki_caller *c = juki_opcmds_caller(juki_node_opcmds(node));

	return c != NULL && c->who[0] != '\0' ? c->who : "admin:uid=0";
}

/*
 * Queue one message of type with body (stolen) to dest over monitor, in a
 * transaction; its id into msg_id (may be NULL).
 */
static int
queue(struct juki_node *node, const char *type, const char *dest, json_t *body,
      char msg_id[JUKI_UUID_LEN + 1])
{
	struct juki_msg msg;
	int rc;

	if (juki_msg_init(&msg, type, juki_node_self(node)->urn, dest, NULL, body,
			  juki_node_clock(node)) != 0) {
		return JUKI_ENOMEM;
	}
	if (msg_id != NULL) {
		memcpy(msg_id, msg.id, JUKI_UUID_LEN + 1);
	}
	rc = juki_outbox_put(juki_node_store(node), &msg, "monitor", juki_node_now_ms(node), NULL);
	juki_msg_clear(&msg);
	return rc;
}

int
juki_notice_cmd_send(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_sent[] =
	    "INSERT INTO notice_sent(id, time_ms, severity, text, by) VALUES(?1, ?2, ?3, ?4, ?5)";
	static const char sql_dest[] =
	    "INSERT INTO notice_dest(id, node, state, msg_id) VALUES(?1, ?2, 'queued', ?3)";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const char *sev = json_string_value(json_object_get(args, "severity"));
	const char *text = json_string_value(json_object_get(args, "text"));
	int64_t now = juki_node_now_ms(node);
	char id[JUKI_UUID_LEN + 1], msg_id[JUKI_UUID_LEN + 1], when[32], why[128], note[64];
	sqlite3_stmt *st;
	json_t *to, *v;
	size_t i;
	int rc;

	if (sev == NULL) {
		sev = "info";
	}
	if (!juki_notice_severity_valid(sev)) {
		return juki_ctl_fail(err, "usage", "severity: info, warning or critical");
	}
	if (text == NULL) {
		return juki_ctl_fail(err, "usage", "text: required");
	}
	if (juki_notice_text_check(text, json_string_length(json_object_get(args, "text")), why,
				   sizeof(why)) != 0) {
		return juki_ctl_fail(err, "invalid-text", "text: %s", why);
	}
	if ((to = json_array()) == NULL) {
		return JUKI_ENOMEM;
	}
	if ((rc = resolve_to(node, json_object_get(args, "to"), to, err)) != 0) {
		json_decref(to);
		return rc;
	}
	if ((rc = juki_uuid7(now, id)) != 0 || (rc = juki_clock_format(now, when, sizeof(when)))) {
		json_decref(to);
		return rc;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		json_decref(to);
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_sent)) == NULL) {
		rc = JUKI_ESTORE;
	} else {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, sev, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, caller_of(node), -1, SQLITE_TRANSIENT);
		rc = step_done(st);
	}
	json_array_foreach(to, i, v)
	{
		if (rc != 0) {
			break;
		}
		rc = queue(node, JUKI_MSG_NOTICE, json_string_value(v),
			   json_pack("{s:s,s:s,s:s,s:s}", "id", id, "time", when, "severity", sev,
				     "text", text),
			   msg_id);
		if (rc != 0) {
			break;
		}
		if ((st = juki_store_prepare(store, sql_dest)) == NULL) {
			rc = JUKI_ESTORE;
			break;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, json_string_value(v), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_STATIC);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		json_decref(to);
		return rc;
	}
	juki_node_kick(node);
	snprintf(note, sizeof(note), "%s to %zu nodes", sev, json_array_size(to));
	juki_opcmds_note(juki_node_opcmds(node), id, note);
	*result = json_pack("{s:s,s:s,s:o}", "id", id, "severity", sev, "to", to);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* The recipients of notice id with their states. */
static json_t *
dests_json(struct juki_store *store, const char *id)
{
	static const char sql[] = "SELECT node, state, reason, acked_ms, acked_by FROM notice_dest"
				  " WHERE id = ?1 ORDER BY node";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    out,
		    json_pack("{s:s,s:s,s:o,s:o,s:o}", "node", sqlite3_column_text(st, 0), "state",
			      sqlite3_column_text(st, 1), "reason", text_or_null(st, 2), "acked",
			      time_or_null(st, 3), "by", text_or_null(st, 4)));
	}
	sqlite3_reset(st);
	return out;
}

int
juki_notice_cmd_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] = "SELECT id, time_ms, severity, text, by FROM notice_sent"
				  " ORDER BY time_ms DESC, id DESC LIMIT ?1";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const json_t *lim = json_object_get(args, "limit");
	json_int_t limit = 100;
	sqlite3_stmt *st;
	json_t *sent, *v;
	size_t i;

	if (lim != NULL) {
		if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
		    json_integer_value(lim) > 10000) {
			return juki_ctl_fail(err, "usage", "limit: 1 to 10000");
		}
		limit = json_integer_value(lim);
	}
	if ((st = juki_store_prepare(store, sql)) == NULL || (sent = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    sent,
		    json_pack("{s:s,s:o,s:s,s:s,s:s}", "id", sqlite3_column_text(st, 0), "time",
			      time_or_null(st, 1), "severity", sqlite3_column_text(st, 2), "text",
			      sqlite3_column_text(st, 3), "by", sqlite3_column_text(st, 4)));
	}
	sqlite3_reset(st);
	/* The statement is shared: read the recipients after the notices. */
	json_array_foreach(sent, i, v)
	{
		json_object_set_new(v, "to",
				    dests_json(store, json_string_value(json_object_get(v, "id"))));
	}
	*result = json_pack("{s:o,s:o*}", "sent", sent, "received", received_json(store, limit, 0));
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

int
juki_notice_cmd_ack(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql_get[] = "SELECT sender, acked_ms FROM notice_received WHERE id = ?1";
	static const char sql_set[] =
	    "UPDATE notice_received SET acked_ms = ?2, acked_by = ?3 WHERE id = ?1";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const char *id = json_string_value(json_object_get(args, "id"));
	const char *by = caller_of(node);
	int64_t now = juki_node_now_ms(node);
	char sender[JUKI_URN_MAX] = "", when[32];
	sqlite3_stmt *st;
	int acked = 0, rc;

	if (id == NULL || !juki_uuid_valid(id)) {
		return juki_ctl_fail(err, "usage", "id: a notice's id (notice list)");
	}
	juki_opcmds_note(juki_node_opcmds(node), id, NULL);
	if ((st = juki_store_prepare(store, sql_get)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(sender, sizeof(sender), "%s", sqlite3_column_text(st, 0));
		acked = sqlite3_column_type(st, 1) != SQLITE_NULL;
	}
	sqlite3_reset(st);
	if (sender[0] == '\0') {
		return juki_ctl_fail(err, "unknown-notice", "no notice %s was received here", id);
	}
	if (acked) {
		return juki_ctl_fail(err, "already-acked", "notice %s was acknowledged before", id);
	}
	if ((rc = juki_clock_format(now, when, sizeof(when))) != 0 ||
	    (rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		rc = JUKI_ESTORE;
	} else {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, by, -1, SQLITE_TRANSIENT);
		rc = step_done(st);
	}
	if (rc == 0) {
		rc = queue(node, JUKI_MSG_NOTICE_ACK, sender,
			   json_pack("{s:s,s:s,s:s}", "id", id, "by", by, "time", when), NULL);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		return rc;
	}
	juki_node_kick(node);
	*result = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "to", sender, "by", by, "acked", when);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}
