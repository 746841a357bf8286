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
 * A difference raises an alert ("count-mismatch") and the records of that
 * day are sent again — the receiver keeps what it already has and records
 * the rest — and the day is asked again, so that a receiver restored from an
 * older backup catches up by itself.
 *
 * Tables (component "reconcile"):
 *   reconcile_query(msg_id, dest, day, sent_total, sent_digest, queued_ms)
 *   reconcile(dest, day, status, sent_total, received_total, sent_digest,
 *             received_digest, checked_ms, resent)
 * status: "pending" (asked, no answer yet), "ok", "mismatch" (records sent
 * again, asked again), "refused" (the receiver rejected the query).
 */
#ifndef JUKI_RECONCILE_H
#define JUKI_RECONCILE_H

#include <jansson.h>

#include "juki/honnin.h"
#include "juki/node.h"

extern const struct juki_migration juki_reconcile_steps[];
#define JUKI_RECONCILE_NSTEPS 1
#define JUKI_RECONCILE_SCHEMA                                                                      \
	{                                                                                          \
		"reconcile", juki_reconcile_steps, JUKI_RECONCILE_NSTEPS                           \
	}

struct juki_reconcile;

/*
 * juki_reconcile_new() - reconcile what node sends to its receiver
 * (node->spec->honnin_dest, read each time: a reload may change it), every
 * node->conf->honnin.reconcile_interval (0: only when asked) over the last
 * reconcile_days days.  NULL on ENOMEM.
 */
struct juki_reconcile *juki_reconcile_new(struct juki_node *node);
void juki_reconcile_free(struct juki_reconcile *r);

/*
 * juki_reconcile_reloaded() - the node's configuration changed: when
 * reconcile_interval did, the next round comes one new interval from now
 * (none when 0).
 */
void juki_reconcile_reloaded(struct juki_reconcile *r);

/* juki_reconcile_dest() - the receiver reconciled with, now. */
const char *juki_reconcile_dest(const struct juki_reconcile *r);

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
 * "received_digest", "checked", "resent"}.  NULL on failure.
 */
json_t *juki_reconcile_table(struct juki_reconcile *r, const char *day);

#endif
