/*
 * juki — provision notices (第6-8(5)イ): the national server tells each
 * prefecture what it provided of that prefecture's residents' identity
 * information (docs/protocol.md, provide.notice).
 *
 * At the national server (sending side): the provision records not yet
 * notified (provisions.notified = 0) go, in order of when they were made,
 * to the prefecture of the person's current address there (the first two
 * digits of the 地方公共団体コード of the current record), as provide.notice
 * messages of at most JUKI_PROVNOTICE_MAX records over the service
 * "provide", through the outbox (durable, in order, acknowledged).  In the
 * same transaction each record is marked notified and noted in
 * provnotice_sent (id, dest, day: the JST day the record was made), what
 * reconciliation counts.  A record whose person holds no record there is
 * left for a later round.
 *
 * Reconciliation (node/reconcile.h with the kind juki_provnotice_kind):
 * for each (prefecture, day) of the recent days, a provide.count.query
 * {"day", "sent": {"total", "digest"}} behind the notices; the prefecture
 * answers the count and digest of the records it holds from this sender
 * for that day (digest: the XOR of SHA-256 of each record id, hex).  A
 * difference raises "count-mismatch" and sends that day's notices again
 * (the prefecture keeps what it holds); at most three times a day.
 *
 * At the prefecture (receiving side): juki_provnotice_receive() stores the
 * records in its provisions table with origin the sender (the national
 * server), each id once; juki_provnotice_answer_counts() answers the query.
 *
 * Table (component "provnotice", at the national server):
 *   provnotice_sent(id PRIMARY KEY, dest, day, sent_ms)
 */
#ifndef JUKI_PROVNOTICE_H
#define JUKI_PROVNOTICE_H

#include <stdint.h>

#include <jansson.h>

#include "juki/node/node.h"
#include "juki/node/reconcile.h"
#include "juki/store/outbox.h"
#include "juki/store/purge.h"
#include "juki/wire/msg.h"

/* Records in one provide.notice at most. */
#define JUKI_PROVNOTICE_MAX 500

#define JUKI_PROVNOTICE_NSTEPS 1
extern const struct juki_migration juki_provnotice_steps[JUKI_PROVNOTICE_NSTEPS];
#define JUKI_PROVNOTICE_SCHEMA                                                                     \
	{                                                                                          \
		"provnotice", juki_provnotice_steps, JUKI_PROVNOTICE_NSTEPS                        \
	}

/*
 * What was noted as sent goes with the provision records it counts: erased
 * after the same period (provision.keep), by when it was sent.
 */
#define JUKI_PROVNOTICE_PURGE_RULE                                                                 \
	{                                                                                          \
		"provnotice_sent", "provnotice_sent", juki_provnotice_purge_count,                 \
		    juki_provnotice_purge_delete, JUKI_PURGE_PROVISION_YEARS                       \
	}
extern const char juki_provnotice_purge_count[];
extern const char juki_provnotice_purge_delete[];

/* What is reconciled: provision notices, per (prefecture, JST day). */
extern const struct juki_reconcile_kind juki_provnotice_kind;

struct juki_provnotice;

/*
 * juki_provnotice_start() - send the national server's notices every
 * interval_ms (0: only when asked) and reconcile them every
 * reconcile_ms over the last days days (the node's honnin: settings).
 * The node's store must hold the schemas "provision", "provnotice" and
 * "reconcile".  It takes the node's JUKI_MODULE_PROVNOTICE slot (node.h).
 * NULL on ENOMEM or when the node runs it already.
 */
struct juki_provnotice *juki_provnotice_start(struct juki_node *node, int64_t interval_ms);

/* juki_provnotice_reloaded() - a new interval (and the node's reconcile settings). */
void juki_provnotice_reloaded(struct juki_provnotice *pn, int64_t interval_ms);

void juki_provnotice_stop(struct juki_provnotice *pn);

/*
 * juki_provnotice_send() - queue every record not yet notified now, in one
 * transaction, and deliver.  *sent (may be NULL) counts the records queued,
 * *held (may be NULL) those left for lack of a current record.  0 or a
 * negative code.
 */
int juki_provnotice_send(struct juki_provnotice *pn, int64_t *sent, int64_t *held);

/* juki_provnotice_on_ack() - for the node's on_ack: the answers to count queries. */
int juki_provnotice_on_ack(struct juki_provnotice *pn, const struct juki_outbox_entry *entry,
			   const struct juki_ack *ack);

/*
 * juki_provnotice_reconcile() - with check set, queue the count queries of
 * day (NULL: the recent days) now; then the comparison table
 * (juki_reconcile_table(), a row per prefecture and day) in *result as
 * {"queued": n, "days": [...]}.  0 or a negative code.
 */
int juki_provnotice_reconcile(struct juki_provnotice *pn, const char *day, int check,
			      json_t **result);

/*
 * juki_provnotice_receive() - at a prefecture: store the records of a
 * provide.notice from the national server, each id once (a record held
 * already is left as it is).  Refuses a sender that is not a national
 * server and a malformed record (invalid-field "records[i].<field>: ...")
 * before storing any.  Inside the handler's transaction.
 */
int juki_provnotice_receive(struct juki_store *store, const struct juki_msg *msg,
			    struct juki_reject *rej);

/*
 * juki_provnotice_answer_counts() - at a prefecture: the answer to a
 * provide.count.query, {"total", "digest"} of the records held from
 * msg->from made on the body's "day" (JST).
 */
int juki_provnotice_answer_counts(struct juki_store *store, const struct juki_msg *msg,
				  struct juki_reject *rej);

/*
 * juki_provnotice_counts() - {"total", "digest"} of the provision records
 * made on day (JST) that were sent to dest (sent set: provnotice_sent) or
 * received from dest (provisions with origin dest).  NULL on failure.
 */
json_t *juki_provnotice_counts(struct juki_store *store, const char *peer, const char *day,
			       int sent);

#endif
