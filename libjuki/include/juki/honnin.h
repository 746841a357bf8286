/*
 * juki — identity information (本人確認情報) as every server keeps it: the
 * current record of each person, the history of older records, the change
 * reasons (異動事由), the precedence rule between records, and the per-day
 * update counts (更新件数リスト).  Shared by juki-csd, juki-prefd and
 * juki-jlisd (DESIGN §4, §5, §6; 第6-6, 第6-7).
 *
 * A change record, as it travels (honnin.batch bodies) and is kept:
 *
 *   {"code":"24727059608", "lgcode":"131016", "version":3,
 *    "reason":"転居", "reason_date":"2026-11-20",
 *    "recorded":"2026-11-25T01:02:03.456Z",
 *    "person":{"name":..., "kana":..., "birth":..., "sex":..., "address":...},
 *    "old_code":"..."}                       (住民票コード変更 only)
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

#include "juki/person.h"
#include "juki/store.h"

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
	char reason_date[11];
	int64_t recorded_ms;
	struct juki_person person;              /* person.code and person.lgcode mirror the above */
	char old_code[JUKI_JUMIN_CODE_LEN + 1]; /* 住民票コード変更: the code replaced */
};

/*
 * juki_change_from_json() - read and validate a change record (every field
 * rule of person.h, a reason on the list, a real reason date, version >= 1,
 * old_code exactly for 住民票コード変更).  Returns 0 or JUKI_EFORMAT /
 * JUKI_ECHECKDIGIT with fe naming the field.
 */
int juki_change_from_json(const json_t *obj, struct juki_change *c, struct juki_field_error *fe);

/* juki_change_to_json() - the object above; NULL on ENOMEM. */
json_t *juki_change_to_json(const struct juki_change *c);

/*
 * juki_change_newer() - does a supersede b by the precedence rule above?
 * Returns 1 (a newer), 0 (b newer or the same record).
 */
int juki_change_newer(const struct juki_change *a, const struct juki_change *b);

/* The tables (component "honnin"), for the daemons' schema lists. */
extern const struct juki_schema juki_honnin_schema;

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
 * juki_honnin_current() - the current record of code.  Returns 0, or
 * JUKI_ENOTFOUND, JUKI_ESTORE, JUKI_EFORMAT (a stored record that no longer
 * parses).
 */
int juki_honnin_current(struct juki_store *store, const char *code, struct juki_change *c);

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
 * juki_honnin_counts_json() - {"day": D, "peer": P, "total": n, "by_reason":
 * {reason: n}, "digest": hex} for (side, peer, day); zero counts when
 * nothing was recorded.  NULL on failure.
 */
json_t *juki_honnin_counts_json(struct juki_store *store, enum juki_count_side side,
				const char *peer, const char *day);

/* juki_honnin_day() - the JST day "YYYY-MM-DD" of a record recorded at ms. */
void juki_honnin_day(int64_t recorded_ms, char day[11]);

#endif
