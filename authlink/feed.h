/*
 * The link server's feed (docs/protocol.md "ninsho: 異動等情報", docs/architecture.md
 * "The link server"): the 異動等情報 entries received from the sources, numbered
 * without gaps and chained by a running digest, kept until the authority
 * acknowledged them and authlink.keep has passed.
 *
 * Store component "feed":
 *   feed(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, source, agreement, retention_days,
 *        code, kind, date, items TEXT (JSON, change only), new_code (code-change
 *        only), digest BLOB, received_ms, acked_ms)
 *   feed_state(one row: next_seq, last_digest, acked_seq) -- never reset by erasure
 *   feed_out(msg_id PRIMARY KEY, first_seq, last_seq) -- the ninsho.feed messages queued
 *
 * Running digest: d_0 = 32 zero bytes, d_n = SHA-256(d_{n-1} || line_n), line_n
 * the UTF-8 bytes of "juki-ninsho-feed/1\n" seq "\n" id "\n" code "\n" kind "\n"
 * date "\n" name "\n" birth "\n" sex "\n" lgcode "\n" address "\n" new_code "\n"
 * (absent items empty, sex as its digit).
 *
 * Everything here runs in the caller's transaction, on the node's store.
 */
#ifndef JUKI_AUTHLINK_FEED_H
#define JUKI_AUTHLINK_FEED_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/codes.h"
#include "juki/node/ninsho.h"
#include "juki/records/idou.h"
#include "juki/records/person.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

#define FEED_DIGEST_LEN    32
#define FEED_DIGEST_HEX    (2 * FEED_DIGEST_LEN)
#define FEED_MAX_ENTRIES   1000 /* entries of one ninsho.idou or ninsho.feed message */
#define FEED_AGREEMENT_MAX 64   /* bytes of an agreement id */
#define FEED_LINE_TAG      "juki-ninsho-feed/1"

/* Reasons of the link server beside those of node/ninsho.h (docs/protocol.md §9). */
#define FEED_R_NOT_SOURCE "ninsho-not-source" /* the sender is not in authlink.sources */

/* One entry of the feed: an idou entry with its place in the chain. */
struct feed_entry {
	int64_t seq; /* 0 until appended */
	char id[JUKI_UUID_LEN + 1];
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char kind[16]; /* death, removal, code-change, change */
	char date[11];
	int has_items; /* change: the new basic four items */
	struct juki_person items;
	char new_code[JUKI_JUMIN_CODE_LEN + 1]; /* code-change: "" otherwise */
	unsigned char digest[FEED_DIGEST_LEN];
};

extern const struct juki_migration feed_steps[];
#define FEED_NSTEPS 1
#define FEED_SCHEMA                                                                                \
	{                                                                                          \
		"feed", feed_steps, FEED_NSTEPS                                                    \
	}

/* Erasure after authlink.keep (JUKI_PURGE_KEEP_MS): acknowledged rows only. */
extern const char feed_purge_count[];
extern const char feed_purge_delete[];

/* What a ninsho.feed message says of where its entries come from. */
struct feed_header {
	char ca[JUKI_URN_MAX];
	char source[JUKI_URN_MAX];
	char agreement[FEED_AGREEMENT_MAX + 1];
	int64_t retention_days;
};

/*
 * feed_entry_from_json() - read and validate one entry of a ninsho.idou
 * body (juki_idou_from_json(), records/idou.h).  0, or JUKI_REJECT with
 * rej filled (its detail names the field, never a value).
 */
int feed_entry_from_json(const json_t *obj, struct feed_entry *e, struct juki_reject *rej);

/*
 * feed_idou_read() - read and validate a ninsho.idou body from source:
 * {"ca" (must be ca, else JUKI_R_NINSHO_WRONG_CA), "agreement" (1 to
 * FEED_AGREEMENT_MAX bytes of printable ASCII), "retention_days" (0 to
 * 36500), "entries" (1 to FEED_MAX_ENTRIES valid entries)}, no other key.
 * On success *out is a malloc'd array of *n entries (free() it) and hdr
 * their header; else JUKI_REJECT with rej filled (the detail names the
 * field and the entry's index, never a value), or JUKI_ENOMEM.
 */
int feed_idou_read(const json_t *body, const char *ca, const char *source, struct feed_header *hdr,
		   struct feed_entry **out, size_t *n, struct juki_reject *rej);

/* feed_resend_read() - a ninsho.resend body {"from": n}: 0, or JUKI_REJECT (invalid-field). */
int feed_resend_read(const json_t *body, int64_t *from, struct juki_reject *rej);

/*
 * feed_line() - line_n of e (its seq set) into buf (len bytes); returns its
 * length, or the length it would need when that is len or more.
 */
size_t feed_line(const struct feed_entry *e, char *buf, size_t len);

/* feed_digest_next() - d_n from prev = d_{n-1} and e (its seq set): 0 or JUKI_ENOMEM. */
int feed_digest_next(const unsigned char prev[FEED_DIGEST_LEN], const struct feed_entry *e,
		     unsigned char out[FEED_DIGEST_LEN]);

/* feed_entry_to_json() - the entry as a ninsho.feed message carries it (with seq, digest). */
json_t *feed_entry_to_json(const struct feed_entry *e);

/*
 * feed_entry_held() - whether an entry with e's id is in the feed: 0 not,
 * 1 the same entry (code, kind, date, items, new code), 2 another entry
 * under that id; negative on failure.  Two national centres derive the same
 * entry with the same id from the same record (docs/architecture.md §27):
 * the second copy is the same entry, passed on once.
 */
int feed_entry_held(struct juki_store *store, const struct feed_entry *e);

/*
 * feed_append() - give each of the n entries the next seq and its digest,
 * store them (received at now_ms) and queue one ninsho.feed message from
 * self to hdr->ca with them.  JUKI_EDUP when an entry id is in the feed
 * already (*dup_index names it); JUKI_ESTORE, JUKI_ENOMEM.
 */
int feed_append(struct juki_store *store, const struct juki_clock *clock, const char *self,
		const struct feed_header *hdr, struct feed_entry *e, size_t n, int64_t now_ms,
		size_t *dup_index);

/* The counters of the feed (status "feed"). */
struct feed_counts {
	int64_t last_seq;          /* the last seq given (0: none yet) */
	int64_t acked_seq;         /* the authority acknowledged up to here */
	int64_t unacked;           /* entries not acknowledged */
	int64_t oldest_unacked_ms; /* received_ms of the oldest of them (0: none) */
	int64_t erased_to;         /* entries up to here are erased */
};

int feed_counts(struct juki_store *store, struct feed_counts *c);

/*
 * feed_on_ack() - the authority answered the ninsho.feed message msg_id:
 * accepted (or duplicate) with result {"seq", "digest"} naming the message's
 * last entry and its digest: the message's rows are acknowledged at now_ms.
 * Returns 0; JUKI_EPROTO with why filled when the result does not match
 * (the caller alerts and keeps the entry queued); JUKI_ENOTFOUND for a
 * message not of the feed; JUKI_ESTORE.
 */
int feed_on_ack(struct juki_store *store, const char *msg_id, const json_t *result, int64_t now_ms,
		char *why, size_t whylen);

/*
 * feed_resend() - the authority asks for everything from seq from: refused
 * resend-ahead (from < 1 or past last + 1) or resend-erased (entry from was
 * erased) with rej filled (JUKI_REJECT); else drop the queued ninsho.feed
 * messages to ca, mark rows >= from unacknowledged and queue them again (at
 * most FEED_MAX_ENTRIES a message).  *to is the last seq re-queued (from - 1
 * when none).  0, JUKI_REJECT, JUKI_ESTORE, JUKI_ENOMEM.
 */
int feed_resend(struct juki_store *store, const struct juki_clock *clock, const char *self,
		const char *ca, int64_t from, int64_t now_ms, int64_t *to, struct juki_reject *rej);

/*
 * feed_show() - up to limit rows from seq from: [{"seq", "kind", "date",
 * "received", "acked"}] (no codes, names or items).  NULL on failure.
 */
json_t *feed_show(struct juki_store *store, int64_t from, int64_t limit);

#endif
