/*
 * juki — agreements (協議, 第6-8(1)ア) under which a prefectural or the
 * national server provides identity information to a body, the 事務 list
 * they are checked against, and the rules a provision request must pass
 * before any record is read (docs/operations.md, "Agreements").
 *
 * An agreement, as `juki-ctl agreement add` gives it and `show` returns it:
 *
 *   {"id":"nenkin-2026", "body":"urn:juki:agency:nenkin",
 *    "jimu":["1-3", "1-4"], "items":["code","name","birth","sex","address"],
 *    "methods":["online","batch"], "daily_cap":50000, "bulk_threshold":1000,
 *    "keep_days":365, "responsible":"urn:juki:op:agency:nenkin:boss",
 *    "state":"active", ...}
 *
 * jimu are 事務 of 住民基本台帳法 別表 by table and row, "<table>-<row>":
 * table 1..6 (別表第一..第六), row 1..999 with an optional branch number
 * after a dot ("1-91.2" for 九十一の二).  items are of juki_items (the
 * 本人確認情報 a body may receive); methods "online" (provide.query) and
 * "batch" (provide.batch), or "feed" (異動等情報, 第6-8(6)ア: the body is a
 * certification authority, urn:juki:ca:<id>, and feed is its only method;
 * it names no 事務, daily_cap and bulk_threshold are optional and unused,
 * keep_days is the retention the authority is told); daily_cap the queries
 * per Japan day; a batch of
 * more than bulk_threshold queries needs the approval of the responsible
 * officer (責任者, a staff card of the body); keep_days how long the body
 * may keep what it received.
 *
 * States: pending (added) -> active (approved by a supervisor who did not
 * add it) -> suspended <-> active; pending, active or suspended -> ended.
 * Only an active agreement is used.
 *
 * The tables are the schema component "provide" (JUKI_AGREEMENT_SCHEMA):
 * agreements, the queries counted per agreement and Japan day, and the
 * batches being answered.
 */
#ifndef JUKI_AGREEMENT_H
#define JUKI_AGREEMENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/ident.h"
#include "juki/records/approval.h"
#include "juki/store/store.h"

#define JUKI_AGREEMENT_NSTEPS 1
extern const struct juki_migration juki_agreement_steps[JUKI_AGREEMENT_NSTEPS];
#define JUKI_AGREEMENT_SCHEMA                                                                      \
	{                                                                                          \
		"provide", juki_agreement_steps, JUKI_AGREEMENT_NSTEPS                             \
	}

/* The items of identity information a body may receive, as bits. */
enum juki_item {
	JUKI_ITEM_CODE = 1 << 0,    /* 住民票コード */
	JUKI_ITEM_NAME = 1 << 1,    /* 氏名 */
	JUKI_ITEM_BIRTH = 1 << 2,   /* 生年月日 */
	JUKI_ITEM_SEX = 1 << 3,     /* 性別 */
	JUKI_ITEM_ADDRESS = 1 << 4, /* 住所 (and its lgcode) */
	JUKI_ITEM_CHANGE = 1 << 5,  /* 異動事由 and its date */
};
#define JUKI_ITEMS_ALL 0x3fu

enum juki_method {
	JUKI_METHOD_ONLINE = 1 << 0, /* provide.query */
	JUKI_METHOD_BATCH = 1 << 1,  /* provide.batch */
	JUKI_METHOD_FEED = 1 << 2, /* ninsho.idou: 異動等情報 to an authority (node/ninsho.h) */
};

enum juki_agreement_state {
	JUKI_AGREEMENT_PENDING = 0,
	JUKI_AGREEMENT_ACTIVE,
	JUKI_AGREEMENT_SUSPENDED,
	JUKI_AGREEMENT_ENDED,
};

enum juki_agreement_action {
	JUKI_AGREEMENT_APPROVE,
	JUKI_AGREEMENT_SUSPEND,
	JUKI_AGREEMENT_RESUME,
	JUKI_AGREEMENT_END,
};

#define JUKI_AGREEMENT_JIMU_MAX 16 /* 事務 in one agreement */
#define JUKI_JIMU_LEN           10 /* "6-999.99" and its NUL fit */
#define JUKI_CAP_MAX            INT64_C(100000000)

struct juki_agreement {
	char id[JUKI_ID_MAX];
	char body[JUKI_URN_MAX];
	char jimu[JUKI_AGREEMENT_JIMU_MAX][JUKI_JIMU_LEN];
	size_t njimu;
	unsigned items;   /* enum juki_item bits */
	unsigned methods; /* enum juki_method bits */
	int64_t daily_cap;
	int64_t bulk_threshold;
	int64_t keep_days;
	char responsible[JUKI_URN_MAX];
	enum juki_agreement_state state;
	char added_by[JUKI_URN_MAX];
	char approved_by[JUKI_URN_MAX]; /* "" until approved */
	int64_t added_ms, approved_ms, changed_ms;
};

/* juki_item_name() - "code", "name", ...; NULL for anything but one bit of JUKI_ITEMS_ALL. */
const char *juki_item_name(unsigned item);

/*
 * juki_items_from_json() - the bits of an array of item names (none twice,
 * at least one).  Returns 0, or JUKI_EFORMAT with detail naming the rule.
 */
int juki_items_from_json(const json_t *array, unsigned *items, char *detail, size_t len);

/* juki_items_to_json() - the array of item names of items, in bit order; NULL on ENOMEM. */
json_t *juki_items_to_json(unsigned items);

/* juki_items_text() - the comma list of items in bit order ("code,name"), into buf. */
void juki_items_text(unsigned items, char *buf, size_t len);

/* juki_items_from_text() - the bits of a comma list as written by juki_items_text(). */
unsigned juki_items_from_text(const char *text);

/* juki_jimu_valid() - whether text is a 事務 id "<table>-<row>[.<branch>]" as above. */
int juki_jimu_valid(const char *text);

/* juki_agreement_state_name() - "pending", "active", "suspended", "ended". */
const char *juki_agreement_state_name(enum juki_agreement_state state);

/*
 * juki_agreement_next() - the state after action from state.  Returns 0, or
 * JUKI_EINVAL when the action is not allowed from that state.
 */
int juki_agreement_next(enum juki_agreement_state state, enum juki_agreement_action action,
			enum juki_agreement_state *next);

/*
 * juki_agreement_from_json() - read the terms of a new agreement (id,
 * body, jimu, items, methods, daily_cap, bulk_threshold, keep_days,
 * responsible; no other key): state pending, no one recorded.  The body is
 * an agency or an executive body, or a certification authority with the
 * method feed alone (above); responsible is a staff card of it.
 * Returns 0, or JUKI_EFORMAT with field and detail (the rule, never a value).
 */
int juki_agreement_from_json(const json_t *obj, struct juki_agreement *a, char *field,
			     size_t field_len, char *detail, size_t detail_len);

/* juki_agreement_to_json() - the object above with state and who and when; NULL on ENOMEM. */
json_t *juki_agreement_to_json(const struct juki_agreement *a);

/* juki_agreement_has_jimu() - whether jimu is one of a's. */
int juki_agreement_has_jimu(const struct juki_agreement *a, const char *jimu);

/* What a request asks, for juki_agreement_check(). */
struct juki_provide_ask {
	const struct juki_ident *sender; /* the body that asks */
	const char *jimu;
	unsigned items;  /* the items asked (bits) */
	unsigned method; /* JUKI_METHOD_ONLINE or JUKI_METHOD_BATCH */
	int64_t n;       /* the queries of this request */
	int64_t used;    /* queries already counted today under the agreement */
};

/*
 * juki_agreement_feed() - the active agreement with method feed for the
 * authority body, the first by id when there are several.  Returns 0,
 * JUKI_ENOTFOUND (none active) or JUKI_ESTORE.
 */
int juki_agreement_feed(struct juki_store *store, const char *body, struct juki_agreement *a);

/*
 * juki_agreement_check() - whether a (NULL: there is none of that id)
 * allows ask, in this order: the agreement exists and names the sender
 * (no-agreement), is active (agreement-inactive), holds the 事務
 * (jimu-not-agreed), allows every item asked (item-not-agreed) and the
 * method (method-not-agreed), and used + n stays within daily_cap
 * (over-cap).  Returns 0, or JUKI_EPERM with *reason a JUKI_R_* code and
 * detail (never a person's data).
 */
int juki_agreement_check(const struct juki_agreement *a, const struct juki_provide_ask *ask,
			 const char **reason, char *detail, size_t len);

/*
 * The 事務 list a providing server keeps (the file named by provide.jimu):
 * CSV lines "table,row,title" (row may carry ".branch"), '#' comments and
 * blank lines ignored, the first other line may be the header
 * "table,row,title".  juki_jimu_list_parse() - parse text; *out is a new
 * list.  Returns 0, or JUKI_EFORMAT with err naming the line;
 * JUKI_ENOMEM.
 */
struct juki_jimu_list;
int juki_jimu_list_parse(const char *text, size_t len, struct juki_jimu_list **out, char *err,
			 size_t errlen);
void juki_jimu_list_free(struct juki_jimu_list *list);
size_t juki_jimu_list_count(const struct juki_jimu_list *list);
/* juki_jimu_list_title() - the title of jimu, or NULL when it is not on the list. */
const char *juki_jimu_list_title(const struct juki_jimu_list *list, const char *jimu);
/* juki_jimu_list_json() - [{"jimu", "title"}...]; NULL on ENOMEM. */
json_t *juki_jimu_list_json(const struct juki_jimu_list *list);

/* Store: inside the caller's transaction; 0, JUKI_ENOTFOUND, JUKI_EDUP or JUKI_ESTORE. */
int juki_agreement_get(struct juki_store *store, const char *id, struct juki_agreement *a);
int juki_agreement_insert(struct juki_store *store, const struct juki_agreement *a);
int juki_agreement_update_state(struct juki_store *store, const struct juki_agreement *a);
/* juki_agreement_list_json() - every agreement (state NULL: any), by id; NULL on failure. */
json_t *juki_agreement_list_json(struct juki_store *store, const char *state);

/* The queries counted under agreement on Japan day (days since 1970, juki_clock_today()). */
int juki_agreement_used(struct juki_store *store, const char *agreement, int64_t day,
			int64_t *used);
int juki_agreement_count(struct juki_store *store, const char *agreement, int64_t day, int64_t n);

/* One part of a batch (provide.batch "batch"), for juki_batch_take(). */
struct juki_batch_part {
	const char *body;
	const char *agreement;
	const char *id; /* the batch's UUIDv7 */
	int64_t count;  /* queries in the whole batch */
	int64_t part;   /* 0-based */
	int64_t parts;
	int64_t n; /* queries in this part */
};

/*
 * juki_batch_take() - note that part p of its batch is answered: the first
 * part seen records the batch (body, agreement, count, parts); every other
 * must name the same, must not have been answered before, and the queries
 * of the parts answered must not exceed count.  Inside the caller's
 * transaction.  Returns 0; JUKI_EINVAL (bad-batch) with detail; JUKI_ESTORE.
 */
int juki_batch_take(struct juki_store *store, const struct juki_batch_part *p, int64_t now_ms,
		    char *detail, size_t len);

/*
 * A provide.query or provide.batch body as read by juki_provide_request_read():
 * its form only (what the agreement allows is juki_agreement_check()'s).
 */
struct juki_provide_request {
	const char *agreement; /* borrowed from the body */
	const char *jimu;
	const char *purpose;
	unsigned items;                  /* the items asked; 0: none named (all agreed) */
	struct juki_provide_query query; /* provide.query: the query */
	struct juki_batch_part batch;    /* provide.batch: id, count, part, parts, n */
	const json_t *queries;           /* provide.batch: the array, each read later */
	const json_t *approval;          /* provide.batch: NULL when absent */
};

#define JUKI_PURPOSE_CHARS 200

/*
 * juki_provide_request_read() - read body (batch: of provide.batch, else
 * provide.query): agreement (an id), jimu (juki_jimu_valid()), purpose
 * (1..200 characters of valid text), items (optional: juki_items_from_json());
 * a query: its query (approval.h); a batch: batch {id (UUIDv7), count, part,
 * parts: 1 <= parts <= 10000, 0 <= part < parts, parts <= count <= parts *
 * 1000}, queries (1..1000; each read apart, so that one bad query refuses
 * only itself) and approval (an object, when present); no other key.
 * Returns 0, or JUKI_EFORMAT with *reason (invalid-field, check-digit,
 * bad-batch) and detail naming the field and rule, never a value.
 */
int juki_provide_request_read(const json_t *body, int batch, struct juki_provide_request *r,
			      const char **reason, char *detail, size_t len);

#endif
