/*
 * juki — identity information (本人確認情報) as every server keeps it: the
 * current record of each person, the history of older records, the change
 * reasons (異動事由), the precedence rule between records, and the per-day
 * update counts (更新件数リスト).  Shared by juki-csd, juki-prefd and
 * juki-jlisd (docs/protocol.md §10.4-§10.7, docs/architecture.md §7, §9;
 * 第6-6, 第6-7).
 *
 * A change record, as it travels (honnin.batch bodies) and is kept:
 *
 *   {"code":"24727059608", "lgcode":"131016", "version":3,
 *    "reason":"転居", "reason_date":"2026-11-20",
 *    "recorded":"2026-11-25T01:02:03.456Z",
 *    "person":{"name":..., "kana":..., "birth":..., "sex":..., "address":...}}
 *
 * A 住民票コード変更 makes two records: the old code's record ends (it
 * carries "new_code", and counts as a removal) and the new code's begins
 * (it carries "old_code", and counts as an entry).
 *
 * lgcode names the municipality whose register the record belongs to and
 * that recorded it; version counts that municipality's records of the
 * person (1, 2, ...); recorded is when that CS recorded it.
 *
 * Precedence (which record is current): records of the same municipality
 * are ordered by version.  Records of different municipalities are ordered
 * by (reason_date, rank of kind: removal < entry < correction, recorded,
 * lgcode): a person leaving A and entering B on one day is removed at A
 * before being entered at B, whichever notice arrives first.  The newer
 * record is current; every other one is kept as history; a record already
 * held (same code, lgcode and version) is a duplicate and changes nothing.
 */
#ifndef JUKI_HONNIN_H
#define JUKI_HONNIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/records/person.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

/* What a change does to the register. */
enum juki_change_kind {
	JUKI_CHANGE_ENTRY = 0,      /* 記載: the person enters the register */
	JUKI_CHANGE_REMOVAL = 1,    /* 消除: the person leaves it */
	JUKI_CHANGE_CORRECTION = 2, /* 修正: a recorded item changes */
};

struct juki_reason {
	const char *name;   /* 転入 */
	const char *romaji; /* tennyu */
	enum juki_change_kind kind;
};

/* juki_reason_find() - by Japanese name or romaji; NULL if not on the list. */
const struct juki_reason *juki_reason_find(const char *name);

/* juki_reasons() - the whole list (*n entries). */
const struct juki_reason *juki_reasons(size_t *n);

/* juki_change_kind_name() - "entry", "removal", "correction". */
const char *juki_change_kind_name(enum juki_change_kind kind);

struct juki_change {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char lgcode[JUKI_LGCODE_LEN + 1];
	int64_t version;
	const struct juki_reason *reason;
	enum juki_change_kind kind; /* reason->kind, but for 住民票コード変更 (see above) */
	char reason_date[11];
	int64_t recorded_ms;
	struct juki_person person; /* person.code and person.lgcode mirror the above */
	char
	    old_code[JUKI_JUMIN_CODE_LEN + 1]; /* 住民票コード変更, new record: the code replaced */
	char
	    new_code[JUKI_JUMIN_CODE_LEN + 1]; /* 住民票コード変更, old record: the code now used */
};

/* juki_change_kind_of() - the effective kind of c (as juki_change.kind). */
enum juki_change_kind juki_change_kind_of(const struct juki_change *c);

/*
 * juki_change_from_json() - read and validate a change record (every field
 * rule of person.h, a reason on the list, a real reason date, version >= 1,
 * for 住民票コード変更 exactly one of old_code and new_code, for any other
 * reason neither).  Returns 0 or JUKI_EFORMAT /
 * JUKI_ECHECKDIGIT with fe naming the field.
 */
int juki_change_from_json(const json_t *obj, struct juki_change *c, struct juki_field_error *fe);

/*
 * juki_change_from_text() - c read in place from rec (len bytes) when rec
 * is exactly what juki_change_text(c) writes and c passes every rule of
 * juki_change_from_json(): 0.  JUKI_EFORMAT for anything else, with no
 * word of why (another form may still be valid: juki_change_from_json()
 * decides, and words a refusal).  How receivers read honnin.batch bodies.
 */
int juki_change_from_text(const char *rec, size_t len, struct juki_change *c);

/*
 * juki_change_dates_check() - the dates of c, reason_date and person.birth,
 * by the rule of juki_date_not_future() (person.h): not after the Japan day
 * of now_ms.  Every way a record enters (import, clerk, network) checks it
 * with this.  Returns 0, or JUKI_ERANGE with fe naming the field
 * ("reason_date", "person.birth") and reason JUKI_R_FUTURE_DATE.
 */
int juki_change_dates_check(const struct juki_change *c, int64_t now_ms,
			    struct juki_field_error *fe);

/* juki_change_to_json() - the object above; NULL on ENOMEM. */
json_t *juki_change_to_json(const struct juki_change *c);

/*
 * juki_change_text() - the same record as compact JSON text, byte for byte
 * what json_dumps(juki_change_to_json(c), JSON_COMPACT) writes, without the
 * tree: the form kept in the store and sent on.  malloc'd, *len its length;
 * NULL on ENOMEM.
 */
char *juki_change_text(const struct juki_change *c, size_t *len);

/*
 * juki_change_text_append() - the same text appended to t (no buffer of its
 * own per record: the bulk load writes a batch's records into one).  0, or
 * JUKI_ENOMEM with t's length as it was.
 */
struct juki_text;
int juki_change_text_append(const struct juki_change *c, struct juki_text *t);

/*
 * juki_change_newer() - does a supersede b by the precedence rule above?
 * Returns 1 (a newer), 0 (b newer or the same record).
 */
int juki_change_newer(const struct juki_change *a, const struct juki_change *b);

/*
 * The tables (component "honnin"), for the daemons' schema lists; the steps
 * are there too so that a daemon can list them in a static initialiser.
 */
extern const struct juki_schema juki_honnin_schema;
extern const struct juki_migration juki_honnin_steps[];
#define JUKI_HONNIN_NSTEPS 4
#define JUKI_HONNIN_SCHEMA                                                                         \
	{                                                                                          \
		"honnin", juki_honnin_steps, JUKI_HONNIN_NSTEPS                                    \
	}

/* What juki_honnin_apply() did. */
enum juki_apply_outcome {
	JUKI_APPLIED_CURRENT,   /* the record is now the person's current one */
	JUKI_APPLIED_HISTORY,   /* kept as history: a newer record is current */
	JUKI_APPLIED_DUPLICATE, /* already held: nothing changed */
};

struct juki_counter;

/*
 * juki_honnin_apply() - record c, received from sender (NULL when this node
 * recorded it itself), at now_ms: under the precedence rule, as the current
 * record or as history.  When counter is not NULL and c was not a
 * duplicate, c is counted there as received from sender.  Inside the
 * caller's transaction.  Returns 0 with *outcome, JUKI_ESTORE or
 * JUKI_ENOMEM.
 */
int juki_honnin_apply(struct juki_store *store, const struct juki_change *c, const char *sender,
		      int64_t now_ms, struct juki_counter *counter,
		      enum juki_apply_outcome *outcome);

/*
 * juki_honnin_apply_text() - the same, with the record already serialised
 * (rec, len: c as JSON, e.g. as it arrived), so it is not made again.
 */
int juki_honnin_apply_text(struct juki_store *store, const struct juki_change *c, const char *rec,
			   size_t len, const char *sender, int64_t now_ms,
			   struct juki_counter *counter, enum juki_apply_outcome *outcome);

/*
 * juki_honnin_holders() - the municipalities that hold code here: those
 * whose own latest record of it (the highest version of that lgcode,
 * current or history) is not a removal, in lgcode order.  Under the
 * precedence rule a later 転出 ends a municipality's hold whatever order
 * the records arrived in.  At most max are written to lgcodes; *n is how
 * many hold (it may exceed max).  0 or JUKI_ESTORE.
 */
int juki_honnin_holders(struct juki_store *store, const char *code,
			char (*lgcodes)[JUKI_LGCODE_LEN + 1], size_t max, size_t *n);

/*
 * juki_honnin_superseded() - whether code has any older record here
 * (history): without one it has one record or none, held once at most.
 * One index probe, for the common case of someone new.  0 or JUKI_ESTORE.
 */
int juki_honnin_superseded(struct juki_store *store, const char *code, int *any);

/*
 * juki_honnin_current() - the current record of code.  Returns 0, or
 * JUKI_ENOTFOUND, JUKI_ESTORE, JUKI_EFORMAT (a stored record that no longer
 * parses).
 */
int juki_honnin_current(struct juki_store *store, const char *code, struct juki_change *c);

/*
 * juki_honnin_merge_keys() - merge the keys of lookups by attributes noted
 * since the last merge into their big index (honnin_person), in key order.
 * Done by the store itself every JUKI_HONNIN_MERGE_AT keys, inside the
 * transaction that notes the last one.  0 or JUKI_ESTORE.
 */
#define JUKI_HONNIN_MERGE_AT 65536
int juki_honnin_merge_keys(struct juki_store *store);

/*
 * juki_honnin_find() - the current records whose person has exactly this
 * name, birth date, sex and address (第4-4(7): the full set, matched
 * exactly), at most max, in code order, as change objects.  *more is set
 * when there were more.  NULL on failure.
 */
json_t *juki_honnin_find(struct juki_store *store, const char *name, const char *birth, int sex,
			 const char *address, size_t max, int *more);

/*
 * juki_honnin_history_json() - every record held for code, newest first, as
 * change objects with "current": true/false.  NULL on failure.
 */
json_t *juki_honnin_history_json(struct juki_store *store, const char *code);

/*
 * Update counts (更新件数リスト): for each (peer, day) the number of records
 * per reason and a digest — the XOR of SHA-256(code "|" lgcode "|" version)
 * over the records, so that it does not depend on order.  A receiver keeps
 * what it recorded per sender ("received"); a sender keeps what it queued per
 * destination ("sent").
 */
#define JUKI_DIGEST_LEN 32

enum juki_count_side {
	JUKI_COUNT_RECEIVED = 0,
	JUKI_COUNT_SENT = 1,
};

/*
 * A counter gathers counts in memory during a batch; juki_counter_flush()
 * adds them to the store inside the batch's transaction.
 */
struct juki_counter *juki_counter_new(void);
void juki_counter_free(struct juki_counter *counter);

/* juki_counter_add() - count c for (side, peer, the JST day of c->recorded_ms). */
int juki_counter_add(struct juki_counter *counter, enum juki_count_side side, const char *peer,
		     const struct juki_change *c);

/* juki_counter_flush() - add what was counted to the store and start empty. */
int juki_counter_flush(struct juki_counter *counter, struct juki_store *store);

/* juki_counter_reset() - forget what was counted (the transaction rolled back). */
void juki_counter_reset(struct juki_counter *counter);

/*
 * juki_count_key() - the text a record's digest is the SHA-256 of:
 * code "|" lgcode "|" version (decimal), into out; returns its length.
 */
#define JUKI_COUNT_KEY_MAX 64
size_t juki_count_key(const char *code, const char *lgcode, int64_t version,
		      char out[JUKI_COUNT_KEY_MAX]);

/*
 * juki_counts_store() - add the counts n (per reason, juki_reasons() order)
 * of (side, peer, day) to the store and XOR digest into its digest: what
 * juki_counter_flush() does for each entry, for counters kept elsewhere
 * (the bulk load's).  Inside the caller's transaction.
 */
int juki_counts_store(struct juki_store *store, int side, const char *peer, const char *day,
		      const int64_t *n, const unsigned char digest[JUKI_DIGEST_LEN]);

/*
 * juki_honnin_counts_json() - {"day": D, "peer": P, "total": n, "by_reason":
 * {reason: n}, "digest": hex} for (side, peer, day); zero counts when
 * nothing was recorded.  NULL on failure.
 */
json_t *juki_honnin_counts_json(struct juki_store *store, enum juki_count_side side,
				const char *peer, const char *day);

/* juki_honnin_day() - the JST day "YYYY-MM-DD" of a record recorded at ms. */
void juki_honnin_day(int64_t recorded_ms, char day[11]);

/*
 * A batcher packs change records for one destination (or several: a
 * prefecture's national centres) into honnin.batch messages, {"records":
 * [change...]}, and puts each in the outbox (service honnin) inside the
 * caller's transaction: a message is closed when it holds max_records, or
 * when the next record could take it past max_bytes; it is put in the
 * outbox once per destination, each copy with its own id, so that each
 * destination acknowledges, and is delivered to, on its own.
 */
struct juki_batcher;

/* Destinations of one batcher at most. */
#define JUKI_BATCHER_DESTS 4

struct juki_batcher *juki_batcher_new(struct juki_store *store, const char *self, const char *dest,
				      size_t max_records, size_t max_bytes,
				      const struct juki_clock *clock);

/*
 * juki_batcher_add_dest() - one more destination for every message closed
 * from now on (a destination already there is not added twice).  Returns 0,
 * or JUKI_EINVAL past JUKI_BATCHER_DESTS.
 */
int juki_batcher_add_dest(struct juki_batcher *b, const char *dest);

/* juki_batcher_ndests(), juki_batcher_dest() - the destinations, the first given to _new(). */
size_t juki_batcher_ndests(const struct juki_batcher *b);
const char *juki_batcher_dest(const struct juki_batcher *b, size_t i);

/* juki_batcher_add() - add c (serialised now). */
int juki_batcher_add(struct juki_batcher *b, const struct juki_change *c);

/* juki_batcher_add_json() - add a record in JSON form (serialised now). */
int juki_batcher_add_json(struct juki_batcher *b, json_t *record);

/* juki_batcher_add_text() - add a record already serialised (len bytes of one JSON object). */
int juki_batcher_add_text(struct juki_batcher *b, const char *record, size_t len);

/* juki_batcher_flush() - put the open message, if any, in the outbox. */
int juki_batcher_flush(struct juki_batcher *b);

/* juki_batcher_messages() - messages put in the outbox so far. */
size_t juki_batcher_messages(const struct juki_batcher *b);

/* juki_batcher_free() - forget the open message (flush first to keep it). */
void juki_batcher_free(struct juki_batcher *b);

/*
 * juki_honnin_receive() - the receiving side of a honnin.batch: every record
 * is read, must pass origin(sender, record) — the receiver's rule of who
 * may send which records — and have no date after today (JST, of now_ms:
 * juki_change_dates_check(), reason JUKI_R_FUTURE_DATE), then is applied
 * and counted as received from the sender.  Records that were not already
 * held go on to forward (if not NULL), counted as sent to forward_dest
 * (NULL: the batcher's first destination) and to every further destination
 * of the batcher.
 * The body is msg->body_text when set (struct juki_msg; read in place,
 * a record in the form juki_change_text() writes kept and forwarded as the
 * bytes that came), else msg->body.
 * Inside the inbound transaction; a refusal fills rej ("records[i].field:
 * ...") and returns JUKI_REJECT, and the caller's savepoint undoes the
 * records applied before it.
 */
int juki_honnin_receive(struct juki_store *store, const struct juki_msg *msg, int64_t now_ms,
			int (*origin)(const struct juki_ident *sender, const struct juki_change *c),
			struct juki_batcher *forward, const char *forward_dest,
			struct juki_reject *rej);

/*
 * A hook on the records of a batch that become current (for 異動等情報,
 * records/idou.h): current() is called for each, in record order, with the
 * record it replaced (prev, NULL when the code had none here) and the
 * record (cur); a record kept as history or already held is not shown.
 * A non-zero return refuses the batch as a failure of the receiver.
 */
struct juki_honnin_hook {
	int (*current)(void *arg, const struct juki_change *prev, const struct juki_change *cur);
	void *arg;
};

/*
 * juki_honnin_receive_hooked() - juki_honnin_receive() with hook (NULL:
 * the same).  The replaced record is read only for a code held before,
 * from the row the apply reads anyway, and only when hook is set.
 */
int juki_honnin_receive_hooked(struct juki_store *store, const struct juki_msg *msg, int64_t now_ms,
			       int (*origin)(const struct juki_ident *sender,
					     const struct juki_change *c),
			       struct juki_batcher *forward, const char *forward_dest,
			       const struct juki_honnin_hook *hook, struct juki_reject *rej);

/*
 * juki_honnin_batch_codes() - fn(arg, code) for the code of each record of
 * a honnin.batch msg (one juki_honnin_receive() accepted), tree or text
 * body alike, in record order; stops at and returns fn's first non-zero.
 */
int juki_honnin_batch_codes(const struct juki_msg *msg, int (*fn)(void *arg, const char *code),
			    void *arg);

/*
 * Ranges of 住民票コード, to narrow down a difference in a day's counts
 * (docs/protocol.md §10.7): a JSON list of 1 to JUKI_HONNIN_RANGES_MAX
 * {"from": code, "to": code}, both 11 digits, from <= to, in ascending order
 * without overlap; a code c is in a range when from <= c <= to.
 */
#define JUKI_HONNIN_RANGES_MAX 256

/* juki_honnin_ranges_check() - 0, or JUKI_EINVAL with why ("ranges[i]: ..."). */
int juki_honnin_ranges_check(const json_t *ranges, char *why, size_t len);

/*
 * juki_honnin_range_digests() - for each range (checked), the records held
 * (current and history) with `recorded` on the JST day and the code in the
 * range, from sender (NULL: every record, the node's own included):
 * [{"from", "to", "count": n, "digest": hex}...] in the order of ranges,
 * digest as the day digest (the XOR of SHA-256(code "|" lgcode "|"
 * version)).  Read through the index of the day (recorded_ms): the work is
 * that of the day's records.  NULL on failure or invalid ranges.
 */
json_t *juki_honnin_range_digests(struct juki_store *store, const char *sender, const char *day,
				  const json_t *ranges);

/*
 * juki_honnin_resend_ranges() - add to b every record held (current and
 * history, from anyone) with `recorded` on day and the code in one of
 * ranges; *count counts them.  Inside the caller's transaction (flush b
 * after).  Returns 0 or a negative code.
 */
int juki_honnin_resend_ranges(struct juki_store *store, const char *day, const json_t *ranges,
			      struct juki_batcher *b, size_t *count);

/*
 * juki_honnin_answer_counts() - the receiving side of a honnin.count.query
 * {"day": D}: the counts received from the sender on that day, as the ack's
 * result; with "ranges" (above) in the body, the result also has "ranges":
 * juki_honnin_range_digests() over the records from the sender.  Returns 0
 * or JUKI_REJECT (an invalid day or ranges).
 */
int juki_honnin_answer_counts(struct juki_store *store, const struct juki_msg *msg,
			      struct juki_reject *rej);

#endif
