#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/reconcile.h"
#include "juki/store/outbox.h"

/* A day whose counts still differ after this many re-sends in a day is left to an operator. */
#define MAX_RESENDS 3
/* The ranges re-sent that a day's row keeps to show (all are counted). */
#define SHOWN_RANGES 32

const struct juki_migration juki_reconcile_steps[JUKI_RECONCILE_NSTEPS] = {
    {1, "CREATE TABLE reconcile_query ("
	" msg_id TEXT PRIMARY KEY,"
	" dest TEXT NOT NULL,"
	" day TEXT NOT NULL,"
	" sent_total INTEGER NOT NULL,"
	" sent_digest TEXT NOT NULL,"
	" queued_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE reconcile ("
	" dest TEXT NOT NULL,"
	" day TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" sent_total INTEGER,"
	" received_total INTEGER,"
	" sent_digest TEXT,"
	" received_digest TEXT,"
	" checked_ms INTEGER,"
	" resent INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (dest, day)"
	") WITHOUT ROWID;"},
    /*
     * Narrowing down a difference: a query over ranges of codes keeps our
     * digests of those ranges (JSON) and its round; a day keeps the JST day
     * its re-sends were last counted on (the count starts again each day),
     * and what the last narrowing re-sent: records, rounds, the ranges.
     */
    {2, "ALTER TABLE reconcile_query ADD COLUMN ranges TEXT;"
	"ALTER TABLE reconcile_query ADD COLUMN round INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE reconcile ADD COLUMN resent_on TEXT;"
	"ALTER TABLE reconcile ADD COLUMN last_resent INTEGER;"
	"ALTER TABLE reconcile ADD COLUMN last_rounds INTEGER;"
	"ALTER TABLE reconcile ADD COLUMN last_nranges INTEGER;"
	"ALTER TABLE reconcile ADD COLUMN last_ranges TEXT;"},
};

struct juki_reconcile {
	struct juki_reconcile_env env;
	struct juki_reconcile_conf conf;
	int64_t interval; /* the one the timer was armed with */
	struct event *timer;
};

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : JUKI_ESTORE;
}

/* The count query's type and service: honnin's, or the kind's. */
static const char *
query_type(const struct juki_reconcile *r)
{
	return r->env.kind != NULL ? r->env.kind->type : JUKI_MSG_COUNT_QUERY;
}

static const char *
query_service(const struct juki_reconcile *r)
{
	return r->env.kind != NULL ? r->env.kind->service : "honnin";
}

/* Queue one query for day with the snapshot of what was sent, inside a transaction. */
static int
queue_query(struct juki_reconcile *r, const char *dest, const char *day)
{
	static const char sql_q[] =
	    "INSERT INTO reconcile_query (msg_id, dest, day, sent_total, sent_digest, queued_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	static const char sql_r[] =
	    "INSERT INTO reconcile (dest, day, status, sent_total, sent_digest)"
	    " VALUES (?1, ?2, 'pending', ?3, ?4)"
	    " ON CONFLICT (dest, day) DO UPDATE SET status = 'pending', sent_total = ?3,"
	    " sent_digest = ?4";
	struct juki_store *store = r->env.store;
	int64_t now = juki_clock_now_ms(r->env.clock);
	json_t *sent, *body;
	struct juki_msg msg;
	sqlite3_stmt *st;
	json_int_t total;
	const char *digest;
	int rc;

	sent = r->env.kind != NULL ? r->env.kind->sent(store, dest, day)
				   : juki_honnin_counts_json(store, JUKI_COUNT_SENT, dest, day);
	if (sent == NULL) {
		return JUKI_ESTORE;
	}
	total = json_integer_value(json_object_get(sent, "total"));
	digest = json_string_value(json_object_get(sent, "digest"));
	body = json_pack("{s:s,s:{s:I,s:s}}", "day", day, "sent", "total", total, "digest", digest);
	if (body == NULL || (rc = juki_msg_init(&msg, query_type(r), r->env.self, dest, NULL, body,
						r->env.clock)) != 0) {
		json_decref(sent);
		return JUKI_ENOMEM;
	}
	rc = juki_outbox_put(store, &msg, query_service(r), now, NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_q)) != NULL) {
		sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, total);
		sqlite3_bind_text(st, 5, digest, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		rc = step_done(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0 && (st = juki_store_prepare(store, sql_r)) != NULL) {
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, total);
		sqlite3_bind_text(st, 4, digest, -1, SQLITE_STATIC);
		rc = step_done(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	juki_msg_clear(&msg);
	json_decref(sent);
	return rc;
}

/* Queue the queries of dest: of day, or of every recent day (from first) with records sent. */
static int
queue_days(struct juki_reconcile *r, const char *dest, const char *day, const char *first, int *n)
{
	/* Not a day being narrowed down: its round asks for it again when done. */
	static const char sql_days[] =
	    "SELECT DISTINCT day FROM honnin_counts WHERE side = 1 AND peer = ?1 AND day >= ?2"
	    " AND day NOT IN (SELECT day FROM reconcile_query WHERE dest = ?1"
	    " AND ranges IS NOT NULL) ORDER BY day";
	sqlite3_stmt *st;
	json_t *days;
	size_t i;
	json_t *d;
	int rc = 0;

	if (day != NULL) {
		rc = queue_query(r, dest, day);
		*n += rc == 0;
		return rc;
	}
	if ((st = juki_store_prepare(r->env.store, sql_days)) == NULL ||
	    (days = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, first, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(days, json_string((const char *)sqlite3_column_text(st, 0)));
	}
	sqlite3_reset(st);
	json_array_foreach(days, i, d)
	{
		if ((rc = queue_query(r, dest, json_string_value(d))) != 0) {
			break;
		}
		(*n)++;
	}
	json_decref(days);
	return rc;
}

int
juki_reconcile_check(struct juki_reconcile *r, const char *day, int *queued)
{
	struct juki_store *store = r->env.store;
	int64_t now = juki_clock_now_ms(r->env.clock);
	char first[11];
	int rc, n = 0;

	if (queued != NULL) {
		*queued = 0;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	juki_clock_date(now - (r->conf.days - 1) * JUKI_DAY_MS, first, sizeof(first));
	if (r->env.kind != NULL) {
		/* Every (receiver, day) with something sent: of day, or of the recent days. */
		json_t *pairs = r->env.kind->days(store, day != NULL ? day : first);
		const json_t *pair;
		size_t i;

		rc = pairs == NULL ? JUKI_ESTORE : 0;
		json_array_foreach(pairs, i, pair)
		{
			const char *d = json_string_value(json_object_get(pair, "day"));

			if (day != NULL && strcmp(d, day) != 0) {
				continue;
			}
			if ((rc = queue_query(r, json_string_value(json_object_get(pair, "dest")),
					      d)) != 0) {
				break;
			}
			n++;
		}
		json_decref(pairs);
	} else {
		/* Each receiver on its own (a prefecture's national centres). */
		const char *dest;

		for (size_t k = 0; rc == 0 && (dest = juki_reconcile_dest_at(r, k)) != NULL; k++) {
			rc = queue_days(r, dest, day, first, &n);
		}
	}
	if (rc == 0) {
		rc = juki_store_commit(store);
	}
	if (rc != 0) {
		juki_store_rollback(store);
		return rc;
	}
	if (queued != NULL) {
		*queued = n;
	}
	if (n > 0) {
		juki_outbound_kick(r->env.outbound);
	}
	return 0;
}

/* The JST day of now: re-sends are counted per day. */
static void
today(struct juki_reconcile *r, char day[11])
{
	juki_honnin_day(juki_clock_now_ms(r->env.clock), day);
}

/* The length of the code prefix that range [from, to] covers (11: a single code). */
static size_t
prefix_len(const char *from, const char *to)
{
	size_t k = 0;

	while (k < JUKI_JUMIN_CODE_LEN && from[k] == to[k]) {
		k++;
	}
	return k;
}

/* The range of the codes starting with prefix (k digits). */
static json_t *
prefix_range(const char *prefix, size_t k)
{
	char from[JUKI_JUMIN_CODE_LEN + 1], to[JUKI_JUMIN_CODE_LEN + 1];

	memcpy(from, prefix, k);
	memcpy(to, prefix, k);
	memset(from + k, '0', JUKI_JUMIN_CODE_LEN - k);
	memset(to + k, '9', JUKI_JUMIN_CODE_LEN - k);
	from[JUKI_JUMIN_CODE_LEN] = to[JUKI_JUMIN_CODE_LEN] = '\0';
	return json_pack("{s:s,s:s}", "from", from, "to", to);
}

/* The ten ranges of the codes under range's prefix, one per next digit, appended to out. */
static int
split(const json_t *range, json_t *out)
{
	const char *from = json_string_value(json_object_get(range, "from"));
	const char *to = json_string_value(json_object_get(range, "to"));
	size_t k = prefix_len(from, to);
	char prefix[JUKI_JUMIN_CODE_LEN + 1];

	memcpy(prefix, from, k);
	for (char d = '0'; d <= '9'; d++) {
		prefix[k] = d;
		if (json_array_append_new(out, prefix_range(prefix, k + 1)) != 0) {
			return JUKI_ENOMEM;
		}
	}
	return 0;
}

json_t *
juki_reconcile_first_ranges(int64_t total)
{
	json_t *out = json_array(), *all = prefix_range("", 0);
	int64_t per = JUKI_RECONCILE_LEAF; /* a day up to this many: LEAF a range at depth */
	int depth = 0;

	/* As deep as takes a range to about JUKI_RECONCILE_LEAF records, within one message. */
	while (depth < JUKI_RECONCILE_FIRST_DEPTH && total > per) {
		per *= 10;
		depth++;
	}
	if (out == NULL || all == NULL) {
		json_decref(out);
		json_decref(all);
		return NULL;
	}
	json_array_append(out, all);
	for (int d = 0; d < depth; d++) {
		json_t *next = json_array();
		size_t i;
		json_t *range;

		json_array_foreach(out, i, range)
		{
			if (next == NULL || split(range, next) != 0) {
				break;
			}
		}
		json_decref(out);
		out = next;
	}
	json_decref(all);
	return out;
}

static int
same_range(const json_t *a, const json_t *b)
{
	static const char *const keys[] = {"from", "to", "digest"};

	for (size_t i = 0; i < 3; i++) {
		const char *x = json_string_value(json_object_get(a, keys[i]));
		const char *y = json_string_value(json_object_get(b, keys[i]));

		if (x == NULL || y == NULL || strcmp(x, y) != 0) {
			return 0;
		}
	}
	return json_integer_value(json_object_get(a, "count")) ==
	       json_integer_value(json_object_get(b, "count"));
}

static int
by_from(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "from")),
		      json_string_value(json_object_get(*(json_t *const *)b, "from")));
}

/* Put ranges (disjoint, each {"from","to"}) in the order of their first code. */
static int
sort_ranges(json_t *ranges)
{
	size_t n = json_array_size(ranges), i;
	json_t **v;

	if (n < 2) {
		return 0;
	}
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		return JUKI_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		v[i] = json_incref(json_array_get(ranges, i));
	}
	qsort(v, n, sizeof(*v), by_from);
	json_array_clear(ranges);
	for (i = 0; i < n; i++) {
		json_array_append_new(ranges, v[i]);
	}
	free(v);
	return 0;
}

int
juki_reconcile_narrow(const json_t *ours, const json_t *theirs, int round, json_t **next,
		      json_t **resend)
{
	json_t *deeper = json_array();
	size_t i;
	json_t *o;

	*next = json_array();
	*resend = json_array();
	if (*next == NULL || *resend == NULL || deeper == NULL) {
		goto nomem;
	}
	json_array_foreach(ours, i, o)
	{
		const json_t *t = json_array_get(theirs, i);
		json_int_t count = json_integer_value(json_object_get(o, "count"));
		const char *from = json_string_value(json_object_get(o, "from"));
		const char *to = json_string_value(json_object_get(o, "to"));

		if (t != NULL && same_range(o, t)) {
			continue;
		}
		if (count == 0) {
			/* Only the receiver holds records here: nothing to send. */
			continue;
		}
		if (count <= JUKI_RECONCILE_LEAF || round >= JUKI_RECONCILE_MAX_ROUNDS ||
		    prefix_len(from, to) == JUKI_JUMIN_CODE_LEN) {
			json_array_append_new(*resend,
					      json_pack("{s:s,s:s}", "from", from, "to", to));
		} else {
			json_array_append_new(deeper,
					      json_pack("{s:s,s:s}", "from", from, "to", to));
		}
	}
	/* Split what fits in the next message; the rest is sent as it stands. */
	json_array_foreach(deeper, i, o)
	{
		if (json_array_size(*next) + 10 <= JUKI_HONNIN_RANGES_MAX) {
			if (split(o, *next) != 0) {
				goto nomem;
			}
		} else {
			json_array_append(*resend, o);
		}
	}
	json_decref(deeper);
	/*
	 * Those sent as they stand came after the leaves: in code order again,
	 * as ranges must be (juki_honnin_ranges_check()).  An empty receiver (a
	 * centre rebuilt from nothing) differs in every range and gets there.
	 */
	if (sort_ranges(*resend) != 0) {
		goto nomem;
	}
	return 0;
nomem:
	json_decref(deeper);
	json_decref(*next);
	json_decref(*resend);
	*next = *resend = NULL;
	return JUKI_ENOMEM;
}

/*
 * Ask the receiver for its digests of ranges of day (round 1, 2, ...): our
 * own digests of them are kept with the query, the snapshot its answer is
 * compared with.
 */
static int
queue_ranges(struct juki_reconcile *r, const char *dest, const char *day, json_int_t sent_total,
	     const char *sent_digest, const json_t *ranges, int round)
{
	static const char sql_q[] =
	    "INSERT INTO reconcile_query (msg_id, dest, day, sent_total, sent_digest, queued_ms,"
	    " ranges, round) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	static const char sql_r[] = "UPDATE reconcile SET status = 'pending', last_rounds = ?3"
				    " WHERE dest = ?1 AND day = ?2";
	struct juki_store *store = r->env.store;
	json_t *ours, *body;
	struct juki_msg msg;
	sqlite3_stmt *st;
	char *text;
	int rc;

	if ((ours = juki_honnin_range_digests(store, NULL, day, ranges)) == NULL) {
		return JUKI_ESTORE;
	}
	body = json_pack("{s:s,s:{s:I,s:s},s:O}", "day", day, "sent", "total", sent_total, "digest",
			 sent_digest, "ranges", ranges);
	text = json_dumps(ours, JSON_COMPACT);
	json_decref(ours);
	if (body == NULL || text == NULL ||
	    juki_msg_init(&msg, JUKI_MSG_COUNT_QUERY, r->env.self, dest, NULL, body,
			  r->env.clock) != 0) {
		free(text);
		return JUKI_ENOMEM;
	}
	rc = juki_outbox_put(store, &msg, "honnin", juki_clock_now_ms(r->env.clock), NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_q)) != NULL) {
		sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, sent_total);
		sqlite3_bind_text(st, 5, sent_digest, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, juki_clock_now_ms(r->env.clock));
		sqlite3_bind_text(st, 7, text, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 8, round);
		rc = step_done(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0 && (st = juki_store_prepare(store, sql_r)) != NULL) {
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, round);
		rc = step_done(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	juki_msg_clear(&msg);
	free(text);
	return rc;
}

/* Send the records of day in ranges again (the receiver keeps what it has), and note them. */
static int
resend_ranges(struct juki_reconcile *r, const char *dest, const char *day, const json_t *ranges)
{
	static const char sql_get[] =
	    "SELECT last_ranges FROM reconcile WHERE dest = ?1 AND day = ?2";
	static const char sql_set[] =
	    "UPDATE reconcile SET last_resent = coalesce(last_resent, 0) + ?3,"
	    " last_nranges = coalesce(last_nranges, 0) + ?4, last_ranges = ?5"
	    " WHERE dest = ?1 AND day = ?2";
	struct juki_store *store = r->env.store;
	struct juki_batcher *b;
	json_t *shown = NULL;
	sqlite3_stmt *st;
	size_t n = 0, i;
	json_t *range;
	char *text;
	int rc;

	if (json_array_size(ranges) == 0) {
		return 0;
	}
	b = juki_batcher_new(store, r->env.self, dest, (size_t)r->conf.batch_records,
			     (size_t)r->conf.frame_max * 3 / 4, r->env.clock);
	if (b == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_honnin_resend_ranges(store, day, ranges, b, &n);
	if (rc == 0) {
		rc = juki_batcher_flush(b);
	}
	juki_batcher_free(b);
	if (rc != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_get)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		shown = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	}
	sqlite3_reset(st);
	if (!json_is_array(shown)) {
		json_decref(shown);
		shown = json_array();
	}
	json_array_foreach(ranges, i, range)
	{
		if (json_array_size(shown) >= SHOWN_RANGES) {
			break;
		}
		json_array_append(shown, range);
	}
	text = json_dumps(shown, JSON_COMPACT);
	json_decref(shown);
	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)json_array_size(ranges));
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	rc = step_done(st);
	free(text);
	if (rc == 0) {
		log_info("reconcile: %zu records of %s in %zu ranges sent to %s again", n, day,
			 json_array_size(ranges), dest);
	}
	return rc;
}

/* The narrowing of day ended: count the re-send (per day of now) and ask for the day again. */
static int
narrowed(struct juki_reconcile *r, const char *dest, const char *day)
{
	static const char sql[] =
	    "UPDATE reconcile SET resent = CASE WHEN resent_on = ?3 THEN resent + 1 ELSE 1 END,"
	    " resent_on = ?3 WHERE dest = ?1 AND day = ?2"
	    " RETURNING coalesce(last_resent, 0), coalesce(last_nranges, 0), last_rounds";
	sqlite3_stmt *st = juki_store_prepare(r->env.store, sql);
	char now[11];
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	today(r, now);
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		log_notice(
		    "reconcile: %lld records of %s (%lld ranges, %d rounds) sent to %s again",
		    (long long)sqlite3_column_int64(st, 0), day,
		    (long long)sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2), dest);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	/* Asked again behind the records. */
	return queue_query(r, dest, day);
}

/* The answer to a query over ranges: narrow down, re-send, ask deeper or finish. */
static int
on_ranges_answer(struct juki_reconcile *r, const char *dest, const char *day, json_int_t sent_total,
		 const char *sent_digest, const char *ours_text, int round,
		 const struct juki_ack *ack)
{
	json_t *ours = json_loads(ours_text, 0, NULL), *theirs = NULL, *next = NULL, *resend = NULL;
	int rc;

	if (ack->status != JUKI_ACK_REJECTED && ack->result != NULL) {
		theirs = json_object_get(ack->result, "ranges");
	}
	if (ours == NULL) {
		return JUKI_ENOMEM;
	}
	if (!json_is_array(theirs) || json_array_size(theirs) != json_array_size(ours)) {
		/* A receiver that does not answer over ranges: the whole day, as before. */
		json_t *all = juki_reconcile_first_ranges(0);

		log_notice("reconcile: %s does not answer over ranges; sending all of %s again",
			   dest, day);
		rc = all == NULL ? JUKI_ENOMEM : resend_ranges(r, dest, day, all);
		json_decref(all);
		json_decref(ours);
		return rc != 0 ? rc : narrowed(r, dest, day);
	}
	rc = juki_reconcile_narrow(ours, theirs, round, &next, &resend);
	json_decref(ours);
	if (rc == 0) {
		rc = resend_ranges(r, dest, day, resend);
	}
	if (rc == 0) {
		rc = json_array_size(next) > 0
			 ? queue_ranges(r, dest, day, sent_total, sent_digest, next, round + 1)
			 : narrowed(r, dest, day);
	}
	json_decref(next);
	json_decref(resend);
	return rc;
}

/* Whether dest is one of the receivers reconciled with now. */
static int
is_dest(const struct juki_reconcile *r, const char *dest)
{
	const char *d;

	for (size_t k = 0; (d = juki_reconcile_dest_at(r, k)) != NULL; k++) {
		if (strcmp(d, dest) == 0) {
			return 1;
		}
	}
	return 0;
}

/* How many receivers (0: the kind's, any). */
static size_t
dests_count(const struct juki_reconcile *r)
{
	size_t k = 0;

	while (juki_reconcile_dest_at(r, k) != NULL) {
		k++;
	}
	return k;
}

/* The receivers, as a JSON list (NULL: the kind's, any). */
static json_t *
dests_json(const struct juki_reconcile *r)
{
	json_t *list;
	const char *d;

	if (juki_reconcile_dest(r) == NULL || (list = json_array()) == NULL) {
		return NULL;
	}
	for (size_t k = 0; (d = juki_reconcile_dest_at(r, k)) != NULL; k++) {
		json_array_append_new(list, json_string(d));
	}
	return list;
}

int
juki_reconcile_on_ack(struct juki_reconcile *r, const struct juki_outbox_entry *entry,
		      const struct juki_ack *ack)
{
	static const char sql_get[] = "SELECT day, sent_total, sent_digest, ranges, round"
				      " FROM reconcile_query WHERE msg_id = ?1";
	static const char sql_del[] = "DELETE FROM reconcile_query WHERE msg_id = ?1";
	static const char sql_set[] =
	    "UPDATE reconcile SET status = ?3, received_total = ?4, received_digest = ?5,"
	    " checked_ms = ?6 WHERE dest = ?1 AND day = ?2";
	static const char sql_resent[] = "SELECT CASE WHEN resent_on = ?3 THEN resent ELSE 0 END"
					 " FROM reconcile WHERE dest = ?1 AND day = ?2";
	static const char sql_start[] =
	    "UPDATE reconcile SET last_resent = 0, last_nranges = 0, last_ranges = '[]',"
	    " last_rounds = 0 WHERE dest = ?1 AND day = ?2";
	static const char sql_kind_resent[] =
	    "UPDATE reconcile SET last_resent = ?3 WHERE dest = ?1 AND day = ?2";
	struct juki_store *store = r->env.store;
	const char *dest = entry->dest;
	const char *status = "ok", *received_digest = NULL;
	json_int_t sent_total, received_total = 0;
	char day[11], now[11], sent_digest[2 * JUKI_DIGEST_LEN + 1];
	char *ranges = NULL;
	sqlite3_stmt *st;
	int rc, resend = 0, round;

	if (strcmp(entry->type, query_type(r)) != 0 ||
	    (juki_reconcile_dest(r) != NULL && !is_dest(r, entry->dest))) {
		return 0;
	}
	if ((st = juki_store_prepare(store, sql_get)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 0;
	}
	snprintf(day, sizeof(day), "%s", (const char *)sqlite3_column_text(st, 0));
	sent_total = sqlite3_column_int64(st, 1);
	snprintf(sent_digest, sizeof(sent_digest), "%s", (const char *)sqlite3_column_text(st, 2));
	if (sqlite3_column_type(st, 3) != SQLITE_NULL &&
	    (ranges = strdup((const char *)sqlite3_column_text(st, 3))) == NULL) {
		sqlite3_reset(st);
		return JUKI_ENOMEM;
	}
	round = sqlite3_column_int(st, 4);
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_del)) == NULL) {
		free(ranges);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
	if ((rc = step_done(st)) != 0) {
		free(ranges);
		return rc;
	}
	if (ranges != NULL) {
		rc = ack->status != JUKI_ACK_REJECTED && ack->result == NULL
			 ? 0 /* answered before: the next round starts again */
			 : on_ranges_answer(r, dest, day, sent_total, sent_digest, ranges, round,
					    ack);
		free(ranges);
		return rc;
	}
	if (ack->status == JUKI_ACK_REJECTED) {
		status = "refused";
		juki_alert(r->env.alerts, "count-query-refused", dest, NULL,
			   "update counts of %s: %s", day, ack->reason);
	} else if (ack->result == NULL) {
		/* Answered before (a redelivery after a reconnect): the next round asks again. */
		return 0;
	} else {
		received_total = json_integer_value(json_object_get(ack->result, "total"));
		received_digest = json_string_value(json_object_get(ack->result, "digest"));
		if (received_total != sent_total || received_digest == NULL ||
		    strcmp(received_digest, sent_digest) != 0) {
			status = "mismatch";
			resend = 1;
		}
	}
	if (resend) {
		json_int_t resent = 0;

		today(r, now);
		if ((st = juki_store_prepare(store, sql_resent)) != NULL) {
			sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW) {
				resent = sqlite3_column_int64(st, 0);
			}
			sqlite3_reset(st);
		}
		juki_alert(r->env.alerts, "count-mismatch", dest, NULL,
			   "update counts of %s: sent %lld, recorded %lld%s", day,
			   (long long)sent_total, (long long)received_total,
			   resent < MAX_RESENDS ? "; sending the records that differ again"
						: "; left to an operator");
		resend = resent < MAX_RESENDS;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, received_total);
	if (received_digest != NULL) {
		sqlite3_bind_text(st, 5, received_digest, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(st, 6, juki_clock_now_ms(r->env.clock));
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if (resend && r->env.kind != NULL) {
		/* The whole day again: the receiver keeps what it has. */
		size_t n = 0;

		if ((rc = r->env.kind->resend(r->env.ctx, dest, day, &n)) != 0) {
			return rc;
		}
		if ((st = juki_store_prepare(store, sql_start)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		if ((rc = step_done(st)) != 0) {
			return rc;
		}
		if ((st = juki_store_prepare(store, sql_kind_resent)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
		return (rc = step_done(st)) != 0 ? rc : narrowed(r, dest, day);
	}
	if (resend) {
		json_t *first = juki_reconcile_first_ranges(sent_total);

		if (first == NULL) {
			return JUKI_ENOMEM;
		}
		if ((st = juki_store_prepare(store, sql_start)) == NULL) {
			rc = JUKI_ESTORE;
		} else {
			sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
			rc = step_done(st);
		}
		/* Narrowed down over ranges of codes, one message a round (protocol.md §10.7). */
		if (rc == 0) {
			rc = queue_ranges(r, dest, day, sent_total, sent_digest, first, 1);
		}
		json_decref(first);
		return rc;
	}
	return 0;
}

json_t *
juki_reconcile_table(struct juki_reconcile *r, const char *day)
{
	static const char sql[] =
	    "SELECT day, status, sent_total, received_total, sent_digest, received_digest,"
	    " checked_ms, CASE WHEN resent_on = ?3 THEN resent ELSE 0 END, last_resent,"
	    " last_rounds, last_nranges, last_ranges, dest"
	    " FROM reconcile WHERE (?1 IS NULL OR dest IN (SELECT value FROM json_each(?1)))"
	    " AND (?2 IS NULL OR day = ?2)"
	    " ORDER BY day DESC, dest LIMIT ?4";
	json_t *rows = json_array(), *dests = dests_json(r);
	sqlite3_stmt *st = juki_store_prepare(r->env.store, sql);
	char when[32], now[11], *list = NULL;

	if (rows == NULL || st == NULL ||
	    (dests != NULL && (list = json_dumps(dests, JSON_COMPACT)) == NULL)) {
		json_decref(rows);
		json_decref(dests);
		return NULL;
	}
	json_decref(dests);
	today(r, now);
	if (list != NULL) {
		sqlite3_bind_text(st, 1, list, -1, free);
	}
	if (day != NULL) {
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	/* The newest 31 days of each receiver. */
	sqlite3_bind_int64(st, 4, 31 * (int64_t)(dests_count(r) ? dests_count(r) : 64));
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = json_pack(
		    "{s:s,s:s,s:s,s:I,s:I,s:s?,s:s?,s:I}", "dest", sqlite3_column_text(st, 12),
		    "day", sqlite3_column_text(st, 0), "status", sqlite3_column_text(st, 1), "sent",
		    (json_int_t)sqlite3_column_int64(st, 2), "received",
		    (json_int_t)sqlite3_column_int64(st, 3), "sent_digest",
		    sqlite3_column_text(st, 4), "received_digest", sqlite3_column_text(st, 5),
		    "resent", (json_int_t)sqlite3_column_int64(st, 7));

		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			juki_clock_format(sqlite3_column_int64(st, 6), when, sizeof(when));
			json_object_set_new(row, "checked", json_string(when));
		}
		/* What the last narrowing of the day re-sent. */
		if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
			json_t *ranges = NULL;

			if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
				ranges =
				    json_loads((const char *)sqlite3_column_text(st, 11), 0, NULL);
			}
			json_object_set_new(row, "last_resend",
					    json_pack("{s:I,s:i,s:I,s:o}", "records",
						      (json_int_t)sqlite3_column_int64(st, 8),
						      "rounds", sqlite3_column_int(st, 9), "ranges",
						      (json_int_t)sqlite3_column_int64(st, 10),
						      "shown",
						      ranges != NULL ? ranges : json_array()));
		}
		json_array_append_new(rows, row);
	}
	sqlite3_reset(st);
	return rows;
}

json_t *
juki_reconcile_across(struct juki_reconcile *r, const char *day)
{
	json_t *rows = juki_reconcile_table(r, day), *out = json_array(), *row;
	size_t i, n = dests_count(r);

	if (rows == NULL || out == NULL) {
		json_decref(rows);
		json_decref(out);
		return NULL;
	}
	/* The table is newest day first, receivers in order within a day: group by day. */
	json_array_foreach(rows, i, row)
	{
		const char *d = json_string_value(json_object_get(row, "day"));
		json_t *last =
		    json_array_size(out) ? json_array_get(out, json_array_size(out) - 1) : NULL;
		json_t *c;

		if (last == NULL ||
		    strcmp(json_string_value(json_object_get(last, "day")), d) != 0) {
			last = json_pack("{s:s,s:o,s:b}", "day", d, "centres", json_array(),
					 "agree", 1);
			json_array_append_new(out, last);
		}
		c = json_pack("{s:O,s:O,s:O,s:O,s:O*,s:O*}", "dest", json_object_get(row, "dest"),
			      "status", json_object_get(row, "status"), "sent",
			      json_object_get(row, "sent"), "received",
			      json_object_get(row, "received"), "sent_digest",
			      json_object_get(row, "sent_digest"), "received_digest",
			      json_object_get(row, "received_digest"));
		json_array_append_new(json_object_get(last, "centres"), c);
	}
	json_decref(rows);
	/*
	 * A day agrees when every receiver answered ok — its total and digest
	 * equal to what was sent to it — and all recorded the same total and
	 * digest: the receivers hold the same records of this sender.
	 */
	json_array_foreach(out, i, row)
	{
		const json_t *cs = json_object_get(row, "centres"), *c;
		const json_t *first = json_array_get(cs, 0);
		int agree = json_array_size(cs) == n;
		size_t k;

		json_array_foreach(cs, k, c)
		{
			if (strcmp(json_string_value(json_object_get(c, "status")), "ok") != 0 ||
			    !json_equal(json_object_get(c, "received"),
					json_object_get(first, "received")) ||
			    !json_equal(json_object_get(c, "received_digest"),
					json_object_get(first, "received_digest"))) {
				agree = 0;
			}
		}
		json_object_set_new(row, "agree", json_boolean(agree));
	}
	return out;
}

/* Every interval of the node's current configuration, from now; never when 0. */
static void
arm(struct juki_reconcile *r)
{
	int64_t interval = r->conf.interval;
	struct timeval tv = {(time_t)(interval / 1000), (suseconds_t)(interval % 1000) * 1000};

	evtimer_del(r->timer);
	if (interval > 0) {
		evtimer_add(r->timer, &tv);
	}
	r->interval = interval;
}

/* Whom a round asks, for the log. */
static const char *
who(const struct juki_reconcile *r)
{
	return juki_reconcile_dest(r) != NULL && dests_count(r) == 1 ? juki_reconcile_dest(r)
								     : "the receivers";
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct juki_reconcile *r = arg;
	int rc, n;

	(void)fd;
	(void)what;
	if ((rc = juki_reconcile_check(r, NULL, &n)) != 0) {
		log_error("reconcile: cannot ask %s: %s", who(r), juki_strerror(rc));
	} else if (n > 0) {
		log_info("reconcile: asked %s for the counts of %d days", who(r), n);
	}
	arm(r);
}

struct juki_reconcile *
juki_reconcile_new(const struct juki_reconcile_env *env, const struct juki_reconcile_conf *conf)
{
	struct juki_reconcile *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	r->env = *env;
	r->conf = *conf;
	r->timer = evtimer_new(env->base, tick, r);
	if (r->timer == NULL) {
		free(r);
		return NULL;
	}
	arm(r);
	return r;
}

void
juki_reconcile_reloaded(struct juki_reconcile *r, const struct juki_reconcile_conf *conf)
{
	if (r == NULL) {
		return;
	}
	r->conf = *conf;
	/* Only a new interval moves the next round: frequent reloads must not put it off. */
	if (r->conf.interval != r->interval) {
		arm(r);
	}
}

const char *
juki_reconcile_dest(const struct juki_reconcile *r)
{
	return juki_reconcile_dest_at(r, 0);
}

const char *
juki_reconcile_dest_at(const struct juki_reconcile *r, size_t i)
{
	return r->env.dest != NULL ? r->env.dest(r->env.ctx, i) : NULL;
}

void
juki_reconcile_free(struct juki_reconcile *r)
{
	if (r == NULL) {
		return;
	}
	event_free(r->timer);
	free(r);
}
