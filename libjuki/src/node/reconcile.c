#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/reconcile.h"
#include "juki/store/outbox.h"

/* A day whose counts still differ after this many re-sends is left to an operator. */
#define MAX_RESENDS 3

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

/* Queue one query for day with the snapshot of what was sent, inside a transaction. */
static int
queue_query(struct juki_reconcile *r, const char *day)
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

	sent = juki_honnin_counts_json(store, JUKI_COUNT_SENT, juki_reconcile_dest(r), day);
	if (sent == NULL) {
		return JUKI_ESTORE;
	}
	total = json_integer_value(json_object_get(sent, "total"));
	digest = json_string_value(json_object_get(sent, "digest"));
	body = json_pack("{s:s,s:{s:I,s:s}}", "day", day, "sent", "total", total, "digest", digest);
	if (body == NULL ||
	    (rc = juki_msg_init(&msg, JUKI_MSG_COUNT_QUERY, r->env.self, juki_reconcile_dest(r),
				NULL, body, r->env.clock)) != 0) {
		json_decref(sent);
		return JUKI_ENOMEM;
	}
	rc = juki_outbox_put(store, &msg, "honnin", now, NULL);
	if (rc == 0 && (st = juki_store_prepare(store, sql_q)) != NULL) {
		sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, juki_reconcile_dest(r), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, total);
		sqlite3_bind_text(st, 5, digest, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		rc = step_done(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	if (rc == 0 && (st = juki_store_prepare(store, sql_r)) != NULL) {
		sqlite3_bind_text(st, 1, juki_reconcile_dest(r), -1, SQLITE_STATIC);
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

int
juki_reconcile_check(struct juki_reconcile *r, const char *day, int *queued)
{
	static const char sql_days[] = "SELECT DISTINCT day FROM honnin_counts"
				       " WHERE side = 1 AND peer = ?1 AND day >= ?2 ORDER BY day";
	struct juki_store *store = r->env.store;
	int64_t now = juki_clock_now_ms(r->env.clock);
	char first[11];
	sqlite3_stmt *st;
	int rc, n = 0;

	if (queued != NULL) {
		*queued = 0;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	if (day != NULL) {
		rc = queue_query(r, day);
		n = rc == 0;
	} else if ((st = juki_store_prepare(store, sql_days)) == NULL) {
		rc = JUKI_ESTORE;
	} else {
		json_t *days = json_array();
		size_t i;
		json_t *d;

		juki_clock_date(now - (r->conf.days - 1) * JUKI_DAY_MS, first, sizeof(first));
		sqlite3_bind_text(st, 1, juki_reconcile_dest(r), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, first, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_array_append_new(
			    days, json_string((const char *)sqlite3_column_text(st, 0)));
		}
		sqlite3_reset(st);
		json_array_foreach(days, i, d)
		{
			if ((rc = queue_query(r, json_string_value(d))) != 0) {
				break;
			}
			n++;
		}
		json_decref(days);
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

/* Send every record of day to the receiver again; it keeps what it has. */
static int
resend_day(struct juki_reconcile *r, const char *day, size_t *count)
{
	static const char sql[] =
	    "SELECT rec FROM honnin WHERE recorded_ms >= ?1 AND recorded_ms < ?2"
	    " UNION ALL SELECT rec FROM honnin_history WHERE recorded_ms >= ?1 AND recorded_ms < "
	    "?2";
	struct juki_batcher *b;
	int64_t start;
	sqlite3_stmt *st;
	int rc = 0;

	*count = 0;
	if (juki_clock_parse_day(day, &start) != 0) {
		return JUKI_EINVAL;
	}
	start = juki_clock_midnight(start); /* 00:00 UTC is 09:00 in Japan, the same day */
	b = juki_batcher_new(r->env.store, r->env.self, juki_reconcile_dest(r),
			     (size_t)r->conf.batch_records, (size_t)r->conf.frame_max * 3 / 4,
			     r->env.clock);
	st = juki_store_prepare(r->env.store, sql);
	if (b == NULL || st == NULL) {
		juki_batcher_free(b);
		return b == NULL ? JUKI_ENOMEM : JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, start);
	sqlite3_bind_int64(st, 2, start + JUKI_DAY_MS);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		json_t *rec = json_loadb(sqlite3_column_blob(st, 0),
					 (size_t)sqlite3_column_bytes(st, 0), 0, NULL);

		if (rec == NULL) {
			continue;
		}
		rc = juki_batcher_add_json(b, rec);
		json_decref(rec);
		(*count)++;
	}
	sqlite3_reset(st);
	if (rc == 0) {
		rc = juki_batcher_flush(b);
	}
	juki_batcher_free(b);
	return rc;
}

int
juki_reconcile_on_ack(struct juki_reconcile *r, const struct juki_outbox_entry *entry,
		      const struct juki_ack *ack)
{
	static const char sql_get[] =
	    "SELECT day, sent_total, sent_digest FROM reconcile_query WHERE msg_id = ?1";
	static const char sql_del[] = "DELETE FROM reconcile_query WHERE msg_id = ?1";
	static const char sql_set[] =
	    "UPDATE reconcile SET status = ?3, received_total = ?4, received_digest = ?5,"
	    " checked_ms = ?6, resent = resent + ?7 WHERE dest = ?1 AND day = ?2";
	static const char sql_resent[] =
	    "SELECT resent FROM reconcile WHERE dest = ?1 AND day = ?2";
	struct juki_store *store = r->env.store;
	const char *status = "ok", *received_digest = NULL;
	json_int_t sent_total, received_total = 0;
	char day[11], sent_digest[2 * JUKI_DIGEST_LEN + 1];
	sqlite3_stmt *st;
	int rc, resend = 0;

	if (strcmp(entry->type, JUKI_MSG_COUNT_QUERY) != 0 ||
	    strcmp(entry->dest, juki_reconcile_dest(r)) != 0) {
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
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_del)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, entry->msg_id, -1, SQLITE_STATIC);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if (ack->status == JUKI_ACK_REJECTED) {
		status = "refused";
		juki_alert(r->env.alerts, "count-query-refused", juki_reconcile_dest(r), NULL,
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

		if ((st = juki_store_prepare(store, sql_resent)) != NULL) {
			sqlite3_bind_text(st, 1, juki_reconcile_dest(r), -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW) {
				resent = sqlite3_column_int64(st, 0);
			}
			sqlite3_reset(st);
		}
		juki_alert(r->env.alerts, "count-mismatch", juki_reconcile_dest(r), NULL,
			   "update counts of %s: sent %lld, recorded %lld%s", day,
			   (long long)sent_total, (long long)received_total,
			   resent < MAX_RESENDS ? "; sending the day again"
						: "; left to an operator");
		resend = resent < MAX_RESENDS;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, juki_reconcile_dest(r), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, received_total);
	if (received_digest != NULL) {
		sqlite3_bind_text(st, 5, received_digest, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(st, 6, juki_clock_now_ms(r->env.clock));
	sqlite3_bind_int(st, 7, resend);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if (resend) {
		size_t n;

		if ((rc = resend_day(r, day, &n)) != 0) {
			return rc;
		}
		log_notice("reconcile: %zu records of %s sent to %s again", n, day,
			   juki_reconcile_dest(r));
		/* Asked again behind the records, with the same snapshot of what was sent. */
		return queue_query(r, day);
	}
	return 0;
}

json_t *
juki_reconcile_table(struct juki_reconcile *r, const char *day)
{
	static const char sql[] =
	    "SELECT day, status, sent_total, received_total, sent_digest, received_digest,"
	    " checked_ms, resent FROM reconcile WHERE dest = ?1 AND (?2 IS NULL OR day = ?2)"
	    " ORDER BY day DESC LIMIT 31";
	json_t *rows = json_array();
	sqlite3_stmt *st = juki_store_prepare(r->env.store, sql);
	char when[32];

	if (rows == NULL || st == NULL) {
		json_decref(rows);
		return NULL;
	}
	sqlite3_bind_text(st, 1, juki_reconcile_dest(r), -1, SQLITE_STATIC);
	if (day != NULL) {
		sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = json_pack(
		    "{s:s,s:s,s:s,s:I,s:I,s:s?,s:s?,s:I}", "dest", juki_reconcile_dest(r), "day",
		    sqlite3_column_text(st, 0), "status", sqlite3_column_text(st, 1), "sent",
		    (json_int_t)sqlite3_column_int64(st, 2), "received",
		    (json_int_t)sqlite3_column_int64(st, 3), "sent_digest",
		    sqlite3_column_text(st, 4), "received_digest", sqlite3_column_text(st, 5),
		    "resent", (json_int_t)sqlite3_column_int64(st, 7));

		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			juki_clock_format(sqlite3_column_int64(st, 6), when, sizeof(when));
			json_object_set_new(row, "checked", json_string(when));
		}
		json_array_append_new(rows, row);
	}
	sqlite3_reset(st);
	return rows;
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

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct juki_reconcile *r = arg;
	int rc, n;

	(void)fd;
	(void)what;
	if ((rc = juki_reconcile_check(r, NULL, &n)) != 0) {
		log_error("reconcile: cannot ask %s: %s", juki_reconcile_dest(r),
			  juki_strerror(rc));
	} else if (n > 0) {
		log_info("reconcile: asked %s for the counts of %d days", juki_reconcile_dest(r),
			 n);
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
	return r->env.dest(r->env.ctx);
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
