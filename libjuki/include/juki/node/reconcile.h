/*
 * juki — reconciliation of update counts (更新件数リスト, 第6-6(2),(4)), the
 * sender's side.
 *
 * A node that sends identity information (a CS to its prefecture, a
 * prefecture to the nation) asks the receiver, for each recent day, what it
 * recorded from this node: a honnin.count.query {"day", "sent"} travels in the
 * same ordered queue as the records, so it is answered after every record
 * sent before it.  The snapshot of what had been sent when the query was
 * queued is kept with it; the answer (the ack's result) is compared with it.
 * A difference raises an alert ("count-mismatch") and is narrowed down:
 * the receiver is asked for digests over ranges of 住民票コード of that day
 * (the same query with "ranges"), compared with ours; ranges that differ are
 * split ten ways by the next digit of the code and asked again, until they
 * hold at most JUKI_RECONCILE_LEAF of our records; only the records in those
 * are sent again — the receiver keeps what it already has and records the
 * rest — and the day is asked again, so that a receiver restored from an
 * older backup catches up by itself.  A day is re-sent at most three times
 * a day (JST); the count starts again the next day.
 *
 * Bounds: one message a round, at most JUKI_HONNIN_RANGES_MAX ranges in it;
 * at most JUKI_RECONCILE_MAX_ROUNDS rounds, after which the ranges that
 * still differ are sent as they stand (as are those that would not fit in
 * the next message).
 *
 * Tables (component "reconcile"):
 *   reconcile_query(msg_id, dest, day, sent_total, sent_digest, queued_ms,
 *                   ranges, round)
 *   reconcile(dest, day, status, sent_total, received_total, sent_digest,
 *             received_digest, checked_ms, resent, resent_on, last_resent,
 *             last_rounds, last_nranges, last_ranges)
 * status: "pending" (asked, no answer yet, or being narrowed down), "ok",
 * "mismatch" (left to an operator), "refused" (the receiver rejected the
 * query).
 */
#ifndef JUKI_RECONCILE_H
#define JUKI_RECONCILE_H

#include <jansson.h>

#include "juki/node/alert.h"
#include "juki/node/outbound.h"
#include "juki/records/honnin.h"

extern const struct juki_migration juki_reconcile_steps[];
#define JUKI_RECONCILE_NSTEPS 2
#define JUKI_RECONCILE_SCHEMA                                                                      \
	{                                                                                          \
		"reconcile", juki_reconcile_steps, JUKI_RECONCILE_NSTEPS                           \
	}

struct juki_reconcile;

/*
 * What is reconciled, when it is not identity information: the count query's
 * type and service (it travels behind the records, in their queue), what
 * was sent, the (receiver, day) pairs to ask about, and how a day that
 * differs is sent again.  Used for the national server's provision notices
 * (node/provnotice.h); NULL in the env is identity information (honnin),
 * whose differences are narrowed down over ranges of codes.
 */
struct juki_reconcile_kind {
	const char *type;    /* "provide.count.query" */
	const char *service; /* "provide" */
	/* {"total", "digest"} of what was sent to dest on day (JST); NULL on failure. */
	json_t *(*sent)(struct juki_store *store, const char *dest, const char *day);
	/* [{"dest", "day"}]: every pair with something sent on day first or later; NULL: failure.
	 */
	json_t *(*days)(struct juki_store *store, const char *first);
	/* Queue dest's records of day again (inside the ack's transaction); *n how many. */
	int (*resend)(void *ctx, const char *dest, const char *day, size_t *n);
};

/*
 * What reconciliation works with, borrowed from the node that runs it: its
 * loop, store, alerts, clock and outbound delivery (kicked when queries are
 * queued), its identity, and the receiver, asked each time (a reload may
 * change it).
 */
struct juki_reconcile_env {
	struct event_base *base;
	struct juki_store *store;
	struct juki_alerts *alerts;
	struct juki_clock *clock;
	struct juki_outbound *outbound;
	const char *self; /* our URN */
	/*
	 * The i-th receiver (from 0; NULL after the last): one for a CS, every
	 * national centre for a prefecture, each reconciled on its own.  NULL
	 * with a kind: every receiver of kind->days().
	 */
	const char *(*dest)(void *ctx, size_t i);
	void *ctx;
	const struct juki_reconcile_kind *kind; /* NULL: identity information (honnin) */
};

/* The settings it follows (the node's honnin: section and frame limit). */
struct juki_reconcile_conf {
	int64_t interval;      /* every this many ms (0: only when asked) */
	int64_t days;          /* over the last this many days */
	int64_t batch_records; /* records per honnin.batch of a re-sent day */
	int64_t frame_max;     /* a re-sent batch stays under 3/4 of it */
};

/*
 * juki_reconcile_new() - reconcile what the node sends to env->dest(), every
 * conf->interval over the last conf->days days.  NULL on ENOMEM.
 */
struct juki_reconcile *juki_reconcile_new(const struct juki_reconcile_env *env,
					  const struct juki_reconcile_conf *conf);
void juki_reconcile_free(struct juki_reconcile *r);

/*
 * juki_reconcile_reloaded() - the node's configuration changed: when the
 * interval did, the next round comes one new interval from now (none when 0).
 */
void juki_reconcile_reloaded(struct juki_reconcile *r, const struct juki_reconcile_conf *conf);

/* juki_reconcile_dest() - the receiver reconciled with, now (NULL: the kind's receivers). */
const char *juki_reconcile_dest(const struct juki_reconcile *r);

/* juki_reconcile_dest_at() - the i-th receiver (0: juki_reconcile_dest()); NULL after the last. */
const char *juki_reconcile_dest_at(const struct juki_reconcile *r, size_t i);

/*
 * juki_reconcile_check() - queue queries now: for day (NULL: every recent day
 * with records sent) in a transaction of its own, and deliver.  *queued (if
 * not NULL) counts the queries.  Returns 0 or a negative code.
 */
int juki_reconcile_check(struct juki_reconcile *r, const char *day, int *queued);

/*
 * juki_reconcile_on_ack() - the answer to a query (entry->type is
 * honnin.count.query), inside the ack's transaction.  Other entries are
 * ignored.  Returns 0 or a negative code.
 */
int juki_reconcile_on_ack(struct juki_reconcile *r, const struct juki_outbox_entry *entry,
			  const struct juki_ack *ack);

/*
 * juki_reconcile_table() - the rows of day (NULL: the recent days), newest
 * day first: {"dest", "day", "status", "sent", "received", "sent_digest",
 * "received_digest", "checked", "resent" (re-sends of the day today), and
 * once a difference was narrowed down "last_resend": {"records" sent again,
 * "rounds", "ranges" (how many), "shown" (the first 32, [{"from","to"}])}}.
 * NULL on failure.
 */
json_t *juki_reconcile_table(struct juki_reconcile *r, const char *day);

/*
 * juki_reconcile_across() - the comparison across the receivers (a
 * prefecture's national centres, `juki-ctl reconcile --centres`), from the
 * rows of juki_reconcile_table(): per day, newest first, {"day", "agree",
 * "centres": [{"dest", "status", "sent", "received", "sent_digest",
 * "received_digest"}]}; agree is true when every receiver has the day "ok"
 * and all recorded the same total and digest.  NULL on failure.
 */
json_t *juki_reconcile_across(struct juki_reconcile *r, const char *day);

/* Narrowing down: a range is sent when it holds at most this many of our records. */
#define JUKI_RECONCILE_LEAF 16
/* The first round asks over ranges of this many digits of code at most (100 ranges). */
#define JUKI_RECONCILE_FIRST_DEPTH 2
/* Rounds (messages) of one narrowing at most. */
#define JUKI_RECONCILE_MAX_ROUNDS 6

/*
 * juki_reconcile_first_ranges() - the ranges the first round asks over, for
 * a day of total records: by the first digits of the code, as many as take a
 * range to about JUKI_RECONCILE_LEAF records, at most
 * JUKI_RECONCILE_FIRST_DEPTH (total 0: one range of every code).  NULL on
 * ENOMEM.
 */
json_t *juki_reconcile_first_ranges(int64_t total);

/*
 * juki_reconcile_narrow() - one round: ours and theirs are the digests of
 * the same ranges (juki_honnin_range_digests()), at round (1, 2, ...).  Of
 * the ranges that differ and hold records of ours, those with at most
 * JUKI_RECONCILE_LEAF, a single code, or at the last round go to *resend;
 * the others are split ten ways into *next as far as it stays within
 * JUKI_HONNIN_RANGES_MAX, the rest to *resend.  Both new arrays of
 * {"from","to"}.  0 or JUKI_ENOMEM.
 */
int juki_reconcile_narrow(const json_t *ours, const json_t *theirs, int round, json_t **next,
			  json_t **resend);

#endif
