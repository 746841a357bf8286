#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/ident.h"
#include "juki/node/log.h"
#include "juki/node/provnotice.h"
#include "juki/records/honnin.h"
#include "juki/records/person.h"
#include "juki/records/provision.h"

/* Field bounds of a notified record (bytes). */
#define ITEMS_MAX   64
#define TEXT_MAX    256
#define PURPOSE_MAX (JUKI_PROVISION_PURPOSE_MAX * 4)

const struct juki_migration juki_provnotice_steps[JUKI_PROVNOTICE_NSTEPS] = {
    {1, "CREATE TABLE provnotice_sent ("
	" id TEXT PRIMARY KEY,"
	" dest TEXT NOT NULL,"
	" day TEXT NOT NULL,"
	" sent_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX provnotice_sent_day ON provnotice_sent(day, dest);"},
};

const char juki_provnotice_purge_count[] =
    "SELECT count(*) FROM provnotice_sent WHERE sent_ms < ?1";
const char juki_provnotice_purge_delete[] =
    "DELETE FROM provnotice_sent WHERE id IN"
    " (SELECT id FROM provnotice_sent WHERE sent_ms < ?1 LIMIT ?2)";

/* Rounds of a tick's turn of the loop: a backlog is drained a turn at a time. */
#define TICK_ROUNDS 4

struct juki_provnotice {
	struct juki_node *node;
	struct juki_reconcile *reconcile;
	int64_t interval;
	struct event *timer;
	/* Where a backlog's drain is (the next turn goes on from there); a tick starts over. */
	int draining;
	int64_t after_ms;
	char after_id[JUKI_UUID_LEN + 1];
};

/* Counts: the number of ids and the XOR of their SHA-256, hex. */
static json_t *
digest_of(sqlite3_stmt *st)
{
	unsigned char acc[JUKI_DIGEST_LEN] = {0}, md[EVP_MAX_MD_SIZE];
	char hex[2 * JUKI_DIGEST_LEN + 1];
	json_int_t n = 0;
	unsigned int len;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(st, 0);

		if (EVP_Digest(id, (size_t)sqlite3_column_bytes(st, 0), md, &len, EVP_sha256(),
			       NULL) != 1) {
			sqlite3_reset(st);
			return NULL;
		}
		for (size_t i = 0; i < JUKI_DIGEST_LEN; i++) {
			acc[i] ^= md[i];
		}
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return NULL;
	}
	juki_hex_encode(acc, JUKI_DIGEST_LEN, hex);
	return json_pack("{s:I,s:s}", "total", n, "digest", hex);
}

json_t *
juki_provnotice_counts(struct juki_store *store, const char *peer, const char *day, int sent)
{
	static const char sql_sent[] =
	    "SELECT id FROM provnotice_sent WHERE dest = ?1 AND day = ?2";
	static const char sql_recv[] = "SELECT id FROM provisions WHERE origin = ?1"
				       " AND time_ms >= ?3 AND time_ms < ?4";
	sqlite3_stmt *st = juki_store_prepare(store, sent ? sql_sent : sql_recv);
	int64_t utc;

	if (st == NULL || juki_clock_parse_day(day, &utc) != 0) {
		return NULL;
	}
	sqlite3_bind_text(st, 1, peer, -1, SQLITE_TRANSIENT);
	if (sent) {
		sqlite3_bind_text(st, 2, day, -1, SQLITE_TRANSIENT);
	} else {
		/* The JST day: from 00:00 +09:00. */
		int64_t start = utc - 9 * 3600 * 1000;

		sqlite3_bind_int64(st, 3, start);
		sqlite3_bind_int64(st, 4, start + JUKI_DAY_MS);
	}
	return digest_of(st);
}

static json_t *
sent_counts(struct juki_store *store, const char *dest, const char *day)
{
	return juki_provnotice_counts(store, dest, day, 1);
}

static json_t *
sent_days(struct juki_store *store, const char *first)
{
	static const char sql[] = "SELECT DISTINCT dest, day FROM provnotice_sent WHERE day >= ?1"
				  " ORDER BY day, dest";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, first, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(out,
				      json_pack("{s:s,s:s}", "dest", sqlite3_column_text(st, 0),
						"day", sqlite3_column_text(st, 1)));
	}
	sqlite3_reset(st);
	return out;
}

/* One record of the provisions table as a notice carries it (columns 0..10). */
static json_t *
record_of(sqlite3_stmt *st)
{
	return json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "id", sqlite3_column_text(st, 0),
	    "kind", sqlite3_column_text(st, 1), "code", sqlite3_column_text(st, 2), "body",
	    sqlite3_column_text(st, 3), "staff", sqlite3_column_text(st, 4), "agreement",
	    sqlite3_column_text(st, 5), "jimu", sqlite3_column_text(st, 6), "items",
	    sqlite3_column_text(st, 7), "purpose", sqlite3_column_text(st, 8), "time_ms",
	    (json_int_t)sqlite3_column_int64(st, 9), "request", sqlite3_column_text(st, 10));
}

/* Queue records (an array) as one provide.notice to dest, inside the transaction. */
static int
queue_notice(struct juki_node *node, const char *dest, json_t *records)
{
	struct juki_msg msg;
	int rc;

	if (juki_msg_init(&msg, JUKI_MSG_PROVIDE_NOTICE, juki_node_self(node)->urn, dest, NULL,
			  json_pack("{s:O}", "records", records), juki_node_clock(node)) != 0) {
		return JUKI_ENOMEM;
	}
	rc = juki_outbox_put(juki_node_store(node), &msg, "provide", juki_node_now_ms(node), NULL);
	juki_msg_clear(&msg);
	return rc;
}

/* A list of notices being made: one pending message per prefecture. */
struct pending {
	char dest[JUKI_URN_MAX];
	json_t *records;
	struct pending *next;
};

static int
flush_pending(struct juki_node *node, struct pending **list)
{
	int rc = 0;

	while (*list != NULL) {
		struct pending *p = *list;

		if (rc == 0 && json_array_size(p->records) > 0) {
			rc = queue_notice(node, p->dest, p->records);
		}
		*list = p->next;
		json_decref(p->records);
		free(p);
	}
	return rc;
}

static int
add_pending(struct juki_node *node, struct pending **list, const char *dest, json_t *record)
{
	struct pending *p;

	for (p = *list; p != NULL && strcmp(p->dest, dest) != 0; p = p->next) {
	}
	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL || (p->records = json_array()) == NULL) {
			free(p);
			json_decref(record);
			return JUKI_ENOMEM;
		}
		snprintf(p->dest, sizeof(p->dest), "%s", dest);
		p->next = *list;
		*list = p;
	}
	if (json_array_append_new(p->records, record) != 0) {
		return JUKI_ENOMEM;
	}
	if (json_array_size(p->records) >= JUKI_PROVNOTICE_MAX) {
		int rc = queue_notice(node, p->dest, p->records);

		json_array_clear(p->records);
		return rc;
	}
	return 0;
}

/* Note id as sent to dest, made on its day, and mark it notified. */
static int
note_sent(struct juki_node *node, const char *id, const char *dest, int64_t time_ms)
{
	static const char sql_mark[] = "UPDATE provisions SET notified = 1 WHERE id = ?1";
	static const char sql_note[] = "INSERT OR REPLACE INTO provnotice_sent (id, dest, day,"
				       " sent_ms) VALUES (?1, ?2, ?3, ?4)";
	struct juki_store *store = juki_node_store(node);
	sqlite3_stmt *st;
	char day[11];
	int rc;

	juki_honnin_day(time_ms, day);
	if ((st = juki_store_prepare(store, sql_mark)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || (st = juki_store_prepare(store, sql_note)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, dest, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, juki_node_now_ms(node));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* The prefecture of lgcode's municipality: urn:juki:pref:NN. */
static int
pref_of(const char *lgcode, char *urn, size_t len)
{
	struct juki_ident pref;
	char id[3];

	if (lgcode == NULL || strlen(lgcode) < 2) {
		return JUKI_EINVAL;
	}
	memcpy(id, lgcode, 2);
	id[2] = '\0';
	if (juki_ident_node(JUKI_KIND_PREF, id, &pref) != 0) {
		return JUKI_EINVAL;
	}
	snprintf(urn, len, "%s", pref.urn);
	return 0;
}

/*
 * One round of juki_provnotice_send(): up to JUKI_PROVNOTICE_MAX records
 * after (*after_ms, after_id), noted as sent and added to the pending
 * notices.  *rows_read says how many were read (fewer than asked: the
 * last round).  A round reads its rows before it writes.
 */
static int
send_round(struct juki_node *node, struct pending **list, int64_t *after_ms,
	   char after_id[JUKI_UUID_LEN + 1], int64_t *n, int64_t *h, size_t *rows_read)
{
	/* Made here and not yet notified, oldest first, with the person's municipality now. */
	static const char sql[] =
	    "SELECT p.id, p.kind, p.code, p.body, p.staff, p.agreement, p.jimu, p.items, p.purpose,"
	    " p.time_ms, p.request, h.lgcode FROM provisions p LEFT JOIN honnin h ON h.code = "
	    "p.code"
	    " WHERE p.notified = 0 AND p.origin = ?1 AND (p.time_ms, p.id) > (?3, ?4)"
	    " ORDER BY p.time_ms, p.id LIMIT ?2";
	struct juki_store *store = juki_node_store(node);
	sqlite3_stmt *st;
	json_t *rows;
	int rc;

	*rows_read = 0;
	if ((st = juki_store_prepare(store, sql)) == NULL || (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, juki_node_self(node)->urn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, JUKI_PROVNOTICE_MAX);
	sqlite3_bind_int64(st, 3, *after_ms);
	sqlite3_bind_text(st, 4, after_id, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *rec = record_of(st);
		const unsigned char *lg = sqlite3_column_text(st, 11);

		json_object_set_new(rec, "lgcode", json_string(lg != NULL ? (const char *)lg : ""));
		json_array_append_new(rows, rec);
		*after_ms = sqlite3_column_int64(st, 9);
		snprintf(after_id, JUKI_UUID_LEN + 1, "%s",
			 (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
	*rows_read = json_array_size(rows);
	for (size_t i = 0; rc == 0 && i < json_array_size(rows); i++) {
		json_t *rec = json_array_get(rows, i);
		const char *id = json_string_value(json_object_get(rec, "id"));
		char dest[JUKI_URN_MAX];

		if (pref_of(json_string_value(json_object_get(rec, "lgcode")), dest,
			    sizeof(dest)) != 0) {
			(*h)++; /* no record of the person here (yet): a later round */
			continue;
		}
		if ((rc = note_sent(node, id, dest,
				    json_integer_value(json_object_get(rec, "time_ms")))) != 0) {
			break;
		}
		json_object_del(rec, "lgcode");
		rc = add_pending(node, list, dest, json_incref(rec));
		(*n)++;
	}
	json_decref(rows);
	return rc;
}

/*
 * Up to rounds rounds from (*after_ms, after_id) in one transaction; *more
 * when the last round was full (a backlog remains).
 */
static int
send_rounds(struct juki_provnotice *pn, int rounds, int64_t *after_ms,
	    char after_id[JUKI_UUID_LEN + 1], int64_t *sent, int64_t *held, int *more)
{
	struct juki_node *node = pn->node;
	struct juki_store *store = juki_node_store(node);
	struct pending *list = NULL;
	int64_t n = 0, h = 0;
	size_t got = JUKI_PROVNOTICE_MAX;
	int rc;

	*more = 0;
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	/*
	 * In rounds of one notice's records: what is held in memory is a round's
	 * rows and the notices not yet full (one per prefecture), never the
	 * whole backlog (at a million provisions a backlog read at once was
	 * 100 MB of JSON).
	 */
	for (int round = 0; rc == 0 && round < rounds && got == JUKI_PROVNOTICE_MAX; round++) {
		rc = send_round(node, &list, after_ms, after_id, &n, &h, &got);
	}
	if (flush_pending(node, &list) != 0 && rc == 0) {
		rc = JUKI_ENOMEM;
	}
	if (rc == 0) {
		rc = juki_store_commit(store);
	}
	if (rc != 0) {
		juki_store_rollback(store);
		return rc;
	}
	if (n > 0) {
		log_info("provnotice: %lld provision records queued to the prefectures",
			 (long long)n);
		juki_node_kick(node);
	}
	*more = got == JUKI_PROVNOTICE_MAX;
	if (sent != NULL) {
		*sent = n;
	}
	if (held != NULL) {
		*held = h;
	}
	return 0;
}

int
juki_provnotice_send(struct juki_provnotice *pn, int64_t *sent, int64_t *held)
{
	char after_id[JUKI_UUID_LEN + 1] = "";
	int64_t after_ms = INT64_MIN;
	int more;

	/* At most 100 notices' worth per call, from the oldest. */
	return send_rounds(pn, 100, &after_ms, after_id, sent, held, &more);
}

/* The kind's resend: every record of day sent to dest, queued again. */
static int
resend_day(void *ctx, const char *dest, const char *day, size_t *n)
{
	static const char sql[] =
	    "SELECT p.id, p.kind, p.code, p.body, p.staff, p.agreement, p.jimu, p.items, p.purpose,"
	    " p.time_ms, p.request FROM provnotice_sent s JOIN provisions p ON p.id = s.id"
	    " WHERE s.dest = ?1 AND s.day = ?2 ORDER BY p.time_ms, p.id";
	struct juki_provnotice *pn = ctx;
	struct juki_node *node = pn->node;
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(node), sql);
	struct pending *list = NULL;
	json_t *rows = json_array();
	int rc;

	*n = 0;
	if (st == NULL || rows == NULL) {
		json_decref(rows);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_array_append_new(rows, record_of(st));
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
	for (size_t i = 0; rc == 0 && i < json_array_size(rows); i++) {
		rc = add_pending(node, &list, dest, json_incref(json_array_get(rows, i)));
		(*n)++;
	}
	json_decref(rows);
	if (flush_pending(node, &list) != 0 && rc == 0) {
		rc = JUKI_ENOMEM;
	}
	if (rc == 0) {
		log_notice("provnotice: %zu provision records of %s sent to %s again", *n, day,
			   dest);
	}
	return rc;
}

const struct juki_reconcile_kind juki_provnotice_kind = {
    .type = JUKI_MSG_PROVIDE_COUNT,
    .service = "provide",
    .sent = sent_counts,
    .days = sent_days,
    .resend = resend_day,
};

static void
arm(struct juki_provnotice *pn)
{
	struct timeval tv = {(time_t)(pn->interval / 1000),
			     (suseconds_t)(pn->interval % 1000) * 1000};

	evtimer_del(pn->timer);
	if (pn->interval > 0) {
		evtimer_add(pn->timer, &tv);
	}
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct juki_provnotice *pn = arg;
	int rc;

	int more = 0;

	(void)fd;
	(void)what;
	/*
	 * A tick starts from the oldest record not notified (a record held for
	 * want of its person's municipality is tried again); a backlog is then
	 * drained TICK_ROUNDS notices a turn of the loop, from where the last
	 * turn ended, so that queries and batches are answered in between.
	 */
	if (!pn->draining) {
		pn->after_ms = INT64_MIN;
		pn->after_id[0] = '\0';
	}
	rc = send_rounds(pn, TICK_ROUNDS, &pn->after_ms, pn->after_id, NULL, NULL, &more);
	if (rc != 0) {
		log_error("provnotice: cannot queue the provision notices: %s", juki_strerror(rc));
	}
	pn->draining = rc == 0 && more;
	if (pn->draining) {
		struct timeval now = {0, 0};

		evtimer_add(pn->timer, &now);
		return;
	}
	arm(pn);
}

static struct juki_reconcile_conf
reconcile_conf(struct juki_node *node)
{
	const struct juki_node_conf *c = juki_node_conf(node);
	struct juki_reconcile_conf rc = {
	    .interval = c->honnin.reconcile_interval,
	    .days = c->honnin.reconcile_days,
	    .batch_records = JUKI_PROVNOTICE_MAX,
	    .frame_max = c->limits.frame_max,
	};

	return rc;
}

struct juki_provnotice *
juki_provnotice_start(struct juki_node *node, int64_t interval_ms)
{
	struct juki_provnotice *pn = calloc(1, sizeof(*pn));
	struct juki_reconcile_env env = {
	    .base = juki_node_base(node),
	    .store = juki_node_store(node),
	    .alerts = juki_node_alerts(node),
	    .clock = juki_node_clock(node),
	    .outbound = juki_node_outbound(node),
	    .self = juki_node_self(node)->urn,
	    .dest = NULL,
	    .ctx = pn,
	    .kind = &juki_provnotice_kind,
	};
	struct juki_reconcile_conf conf = reconcile_conf(node);

	if (pn == NULL) {
		return NULL;
	}
	pn->node = node;
	pn->interval = interval_ms;
	pn->timer = evtimer_new(juki_node_base(node), tick, pn);
	pn->reconcile = juki_reconcile_new(&env, &conf);
	if (pn->timer == NULL || pn->reconcile == NULL ||
	    juki_node_module_set(node, JUKI_MODULE_PROVNOTICE, pn) != 0) {
		juki_provnotice_stop(pn);
		return NULL;
	}
	arm(pn);
	return pn;
}

void
juki_provnotice_reloaded(struct juki_provnotice *pn, int64_t interval_ms)
{
	struct juki_reconcile_conf conf;

	if (pn == NULL) {
		return;
	}
	conf = reconcile_conf(pn->node);
	juki_reconcile_reloaded(pn->reconcile, &conf);
	if (interval_ms != pn->interval) {
		pn->interval = interval_ms;
		arm(pn);
	}
}

void
juki_provnotice_stop(struct juki_provnotice *pn)
{
	if (pn == NULL) {
		return;
	}
	juki_node_module_clear(pn->node, JUKI_MODULE_PROVNOTICE, pn);
	if (pn->timer != NULL) {
		event_free(pn->timer);
	}
	juki_reconcile_free(pn->reconcile);
	free(pn);
}

int
juki_provnotice_on_ack(struct juki_provnotice *pn, const struct juki_outbox_entry *entry,
		       const struct juki_ack *ack)
{
	if (pn == NULL) {
		return 0;
	}
	return juki_reconcile_on_ack(pn->reconcile, entry, ack);
}

int
juki_provnotice_reconcile(struct juki_provnotice *pn, const char *day, int check, json_t **result)
{
	int queued = 0, rc;
	json_t *days;

	/* What is not yet notified goes first: the queries count what was sent. */
	if (check && (rc = juki_provnotice_send(pn, NULL, NULL)) != 0) {
		return rc;
	}
	if (check && (rc = juki_reconcile_check(pn->reconcile, day, &queued)) != 0) {
		return rc;
	}
	if ((days = juki_reconcile_table(pn->reconcile, day)) == NULL) {
		return JUKI_ESTORE;
	}
	*result = json_pack("{s:i,s:o}", "queued", queued, "days", days);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* The receiving side, at a prefecture. */

/* A string field of rec at most max bytes (required: not empty). */
static const char *
field(const json_t *rec, const char *key, size_t max, int required)
{
	const char *v = json_string_value(json_object_get(rec, key));

	if (v == NULL || strlen(v) > max || (required && v[0] == '\0')) {
		return NULL;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			return NULL;
		}
	}
	return v;
}

/* Check record i of a notice into p; a refusal names the field. */
static int
check_record(const json_t *rec, size_t i, struct juki_provision *p, char *code, size_t codelen,
	     struct juki_reject *rej)
{
	struct juki_field_error fe;
	struct juki_ident body;
	const json_t *t = json_object_get(rec, "time_ms");

	memset(p, 0, sizeof(*p));
	if (!json_is_object(rec)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records[%zu]: an object", i);
	}
	p->id = field(rec, "id", JUKI_UUID_LEN, 1);
	if (p->id == NULL || !juki_uuid_valid(p->id)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records[%zu].id: a UUIDv7", i);
	}
	p->kind = field(rec, "kind", 16, 1);
	if (p->kind == NULL || strcmp(p->kind, "provide") != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records[%zu].kind: \"provide\"", i);
	}
	if (juki_json_code(rec, "code", 0, code, codelen, &fe) != 0) {
		return juki_reject_set(rej, fe.reason, "records[%zu].code: %s", i, fe.detail);
	}
	p->code = code;
	p->body = field(rec, "body", JUKI_URN_MAX - 1, 1);
	if (p->body == NULL || juki_ident_parse(p->body, &body) != 0 ||
	    (body.kind != JUKI_KIND_AGENCY && body.kind != JUKI_KIND_EXEC)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "records[%zu].body: an agency or executive body", i);
	}
	if ((p->staff = field(rec, "staff", JUKI_URN_MAX - 1, 0)) == NULL ||
	    (p->agreement = field(rec, "agreement", TEXT_MAX, 0)) == NULL ||
	    (p->jimu = field(rec, "jimu", TEXT_MAX, 0)) == NULL ||
	    (p->items = field(rec, "items", ITEMS_MAX, 1)) == NULL ||
	    (p->purpose = field(rec, "purpose", PURPOSE_MAX, 0)) == NULL ||
	    (p->request = field(rec, "request", JUKI_UUID_LEN, 0)) == NULL) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "records[%zu]: staff, agreement, jimu, items, purpose and "
				       "request are strings (items not empty)",
				       i);
	}
	if (!json_is_integer(t) || json_integer_value(t) <= 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records[%zu].time_ms: a time", i);
	}
	p->time_ms = json_integer_value(t);
	return 0;
}

int
juki_provnotice_receive(struct juki_store *store, const struct juki_msg *msg,
			struct juki_reject *rej)
{
	static const char sql_has[] = "SELECT 1 FROM provisions WHERE id = ?1";
	const json_t *records = json_object_get(msg->body, "records");
	struct juki_ident sender;
	const json_t *rec;
	size_t i;
	int rc;

	if (juki_ident_parse(msg->from, &sender) != 0 || sender.kind != JUKI_KIND_JLIS) {
		return juki_reject_set(rej, JUKI_R_POLICY,
				       "provision notices come from the national server");
	}
	if (!json_is_array(records) || json_array_size(records) == 0 ||
	    json_array_size(records) > JUKI_PROVNOTICE_MAX) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records: 1 to %d records",
				       JUKI_PROVNOTICE_MAX);
	}
	/* Every record checked before any is stored. */
	json_array_foreach(records, i, rec)
	{
		struct juki_provision p;
		char code[JUKI_JUMIN_CODE_LEN + 1];

		if ((rc = check_record(rec, i, &p, code, sizeof(code), rej)) != 0) {
			return rc;
		}
	}
	json_array_foreach(records, i, rec)
	{
		struct juki_provision p;
		char code[JUKI_JUMIN_CODE_LEN + 1];
		sqlite3_stmt *st = juki_store_prepare(store, sql_has);
		int has;

		check_record(rec, i, &p, code, sizeof(code), rej);
		p.origin = msg->from;
		p.notified = 1;
		if (st == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, p.id, -1, SQLITE_TRANSIENT);
		has = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
		/* A record sent again (reconciliation) is held once. */
		if (!has && (rc = juki_provision_add(store, &p)) != 0) {
			return rc;
		}
	}
	return 0;
}

int
juki_provnotice_answer_counts(struct juki_store *store, const struct juki_msg *msg,
			      struct juki_reject *rej)
{
	const char *day = json_string_value(json_object_get(msg->body, "day"));

	if (day == NULL || !juki_date_valid(day)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "day: a date YYYY-MM-DD");
	}
	rej->result = juki_provnotice_counts(store, msg->from, day, 0);
	return rej->result != NULL ? 0 : JUKI_ESTORE;
}
