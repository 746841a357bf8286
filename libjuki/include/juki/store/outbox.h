/*
 * juki — the durable outbox and inbox (docs/design.md §4, "Nothing lost,
 * nothing twice"; docs/architecture.md §4.3).
 *
 * Outbox: a message is put in the outbox in the same transaction as the
 * change that causes it.  Entries are delivered per (destination, service)
 * in seq order and deleted only when the receiver's ack arrives; a rejected
 * entry moves to outbox_rejected with its reason, so nothing vanishes
 * silently.
 *
 * Inbox: the receiver records every message id it has applied, in the same
 * transaction as the change the message makes, before it acks; a message
 * whose id is already recorded is answered "duplicate" and not applied again.
 * With the id it keeps the SHA-256 of the frame's bytes as received (an
 * honest redelivery resends the outbox's stored text, byte for byte): an id
 * recorded with another digest is a replay, refused "replay-mismatch" and
 * its text kept in inbox_mismatch.  Rows recorded before digests were kept
 * have none (unknown) and are answered "duplicate" as before.
 *
 * Tables (component "juki" of the store):
 *   outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, dest, service, msg_id UNIQUE,
 *          type, payload BLOB, created_ms, attempts)
 *   outbox_rejected(seq PRIMARY KEY, dest, service, msg_id, type, payload,
 *          created_ms, rejected_ms, reason, detail)
 *   inbox(msg_id PRIMARY KEY, sender, type, status, reason, received_ms,
 *          digest BLOB)  -- digest: SHA-256 of the frame, NULL when unknown
 *   inbox_mismatch(id INTEGER PRIMARY KEY, msg_id, sender, digest, received_ms,
 *          text BLOB, UNIQUE(msg_id, digest))  -- refused replays, at most
 *          JUKI_INBOX_MISMATCH_MAX rows, purged with the inbox (inbox_days)
 */
#ifndef JUKI_OUTBOX_H
#define JUKI_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "juki/store/store.h"
#include "juki/wire/msg.h"

#define JUKI_INBOX_DIGEST_LEN 32 /* SHA-256 */
/* Refused replays kept for inspection; past this many they are alerted only. */
#define JUKI_INBOX_MISMATCH_MAX 100

struct juki_outbox_entry {
	int64_t seq;
	char dest[JUKI_URN_MAX];
	char service[16];
	char msg_id[JUKI_UUID_LEN + 1];
	char type[JUKI_TYPE_MAX];
	char *payload; /* the serialised message (JSON text), malloc'd */
	size_t len;
	int64_t created_ms;
	int attempts;
};

/* A (destination, service) pair with work waiting. */
struct juki_outbox_queue {
	char dest[JUKI_URN_MAX];
	char service[16];
	int64_t count;
	int64_t oldest_ms; /* created_ms of the oldest entry */
};

/*
 * juki_outbox_put() - serialise msg and queue it for msg->to over service.
 * Must run inside the caller's transaction.  On success *seq (if not NULL)
 * is the entry's sequence number.  Returns 0, JUKI_EDUP (same msg id
 * queued before), JUKI_ESTORE, JUKI_ENOMEM; JUKI_EINVAL outside a
 * transaction, or for an empty or over-long service (at most 15 bytes),
 * id (36 characters), type, from or to.
 */
int juki_outbox_put(struct juki_store *store, const struct juki_msg *msg, const char *service,
		    int64_t now_ms, int64_t *seq);

/*
 * juki_outbox_put_body() - the same with the body given as JSON text
 * (body_len bytes of one JSON object) in place of msg->body, which must be
 * an empty object: for big bodies made as text, without a JSON tree.
 * body NULL is juki_outbox_put().
 */
int juki_outbox_put_body(struct juki_store *store, const struct juki_msg *msg, const char *body,
			 size_t body_len, const char *service, int64_t now_ms, int64_t *seq);

/*
 * juki_outbox_queues() - every (dest, service) with entries, oldest first.
 * *out is malloc'd (free() it); *n its length.
 */
int juki_outbox_queues(struct juki_store *store, struct juki_outbox_queue **out, size_t *n);

/*
 * juki_outbox_dests() - as juki_outbox_queues(), oldest_ms 0, in queueing
 * order: read from the queue index alone, never a payload (for the sender's
 * kick after every commit).
 */
int juki_outbox_dests(struct juki_store *store, struct juki_outbox_queue **out, size_t *n);

/*
 * juki_outbox_next() - up to max entries of (dest, service) with seq >
 * after_seq, in seq order.  *out is an array of *n entries; free with
 * juki_outbox_entries_free().
 */
int juki_outbox_next(struct juki_store *store, const char *dest, const char *service,
		     int64_t after_seq, size_t max, struct juki_outbox_entry **out, size_t *n);
void juki_outbox_entries_free(struct juki_outbox_entry *entries, size_t n);

/* juki_outbox_attempted() - count one more delivery attempt of seq.  JUKI_ENOTFOUND if none. */
int juki_outbox_attempted(struct juki_store *store, int64_t seq);

/*
 * juki_outbox_ack() - the receiver accepted seq (or had it): delete it.
 * JUKI_ENOTFOUND if no such seq (acked before).
 */
int juki_outbox_ack(struct juki_store *store, int64_t seq);

/*
 * juki_outbox_drop() - delete every queued entry of type for (dest,
 * service), unsent or in flight, inside the caller's transaction
 * (JUKI_EINVAL otherwise): for a queue its sender rewrites as a whole (the
 * link server's feed when the authority asks for a re-send).  *dropped
 * (may be NULL) is how many.  0, JUKI_EINVAL or JUKI_ESTORE.
 */
int juki_outbox_drop(struct juki_store *store, const char *dest, const char *service,
		     const char *type, int64_t *dropped);

/*
 * juki_outbox_reject() - the receiver rejected seq: move it to
 * outbox_rejected with reason (required) and detail (NULL stores "").
 * JUKI_ENOTFOUND if no such seq.  Runs in the caller's transaction if one
 * is open, else in its own.
 */
int juki_outbox_reject(struct juki_store *store, int64_t seq, const char *reason,
		       const char *detail, int64_t now_ms);

/* juki_outbox_stats() - entries waiting and the created_ms of the oldest (0 if none). */
int juki_outbox_stats(struct juki_store *store, int64_t *count, int64_t *oldest_ms);

/* juki_outbox_rejected_count() - entries in outbox_rejected. */
int juki_outbox_rejected_count(struct juki_store *store, int64_t *count);

/*
 * juki_inbox_lookup() - was msg_id recorded?  Returns 0 with *status (a
 * juki_ack_status) when it was, JUKI_ENOTFOUND when not.
 */
int juki_inbox_lookup(struct juki_store *store, const char *msg_id, int *status);

/*
 * juki_inbox_record() - record msg as received with status (accepted, with
 * reason NULL, or rejected, with a reason).  Inside the caller's
 * transaction (JUKI_EINVAL otherwise).  JUKI_EDUP if the id is already
 * recorded.
 */
int juki_inbox_record(struct juki_store *store, const struct juki_msg *msg, int status,
		      const char *reason, int64_t now_ms);

/*
 * juki_inbox_record_digest() - the same, with digest (JUKI_INBOX_DIGEST_LEN
 * bytes from juki_inbox_digest(); NULL records none: unknown).
 * juki_inbox_record() is this with digest NULL.
 */
int juki_inbox_record_digest(struct juki_store *store, const struct juki_msg *msg, int status,
			     const char *reason, const unsigned char digest[JUKI_INBOX_DIGEST_LEN],
			     int64_t now_ms);

/* juki_inbox_digest() - SHA-256 of a frame's len bytes of text.  0, JUKI_EINVAL, JUKI_ENOMEM. */
int juki_inbox_digest(const char *text, size_t len, unsigned char out[JUKI_INBOX_DIGEST_LEN]);

/*
 * juki_inbox_check() - as juki_inbox_lookup(), and *same: 1 when the
 * recorded digest equals digest, or either is unknown (a row from before
 * digests, or digest NULL): a redelivery; 0 when they differ: a replay of
 * the id with other bytes.
 */
int juki_inbox_check(struct juki_store *store, const char *msg_id,
		     const unsigned char digest[JUKI_INBOX_DIGEST_LEN], int *status, int *same);

/*
 * juki_inbox_keep_mismatch() - keep the refused replay msg (its frame text
 * of len bytes, with digest) in inbox_mismatch, inside the caller's
 * transaction (JUKI_EINVAL otherwise).  *kept (may be NULL) is 1 when a row
 * was added, 0 when the same (id, digest) is kept already or the table is
 * full (JUKI_INBOX_MISMATCH_MAX rows).
 */
int juki_inbox_keep_mismatch(struct juki_store *store, const struct juki_msg *msg,
			     const unsigned char digest[JUKI_INBOX_DIGEST_LEN], const char *text,
			     size_t len, int64_t now_ms, int *kept);

#endif
