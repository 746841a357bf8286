/*
 * The wide-area copy of the residence record (住民票の写しの広域交付, 第6-4):
 * the bodies of its messages and of the resident record system's answer
 * file, read and checked field by field (docs/protocol.md §17,
 * docs/import.md, the copy spool).  Pure functions: no store, no node; the unit test
 * and the fuzz target call them as the daemon does.
 *
 *   copy.request  交付地 CS -> 住所地 CS on muni: who asks (the requester,
 *                 how their identity was checked), for whom, which items
 *                 (令第15条の2第1項)
 *   copy.answer   住所地 CS -> 交付地 CS on muni: the items of the copy
 *                 (令第15条の2第2項) or a refusal with its reason
 *
 * A refusal names the field and the rule it breaks, never the value.
 */
#ifndef JUKI_CS_COPYMSG_H
#define JUKI_CS_COPYMSG_H

#include <jansson.h>
#include <stddef.h>

#include "juki/records/person.h"

#define CSD_COPY_MSG_REQUEST "copy.request"
#define CSD_COPY_MSG_ANSWER  "copy.answer"

#define CSD_COPY_TEXT_MAX    200 /* a document's name, a refusal's detail: bytes of UTF-8 */
#define CSD_COPY_PERSONS_MAX 20  /* persons on one copy (a household) */
#define CSD_COPY_COPIES_MAX  10  /* copies asked for in one request */
#define CSD_COPY_SERIAL_MAX  16  /* a card serial (cards.h) */

/* The optional items of a copy (令第15条の2第1項第3号); the basic ones are always given. */
enum csd_copy_item {
	CSD_COPY_HOUSEHOLDER = 1u << 0, /* 世帯主の氏名 */
	CSD_COPY_RELATION = 1u << 1,    /* 世帯主との続柄 */
	CSD_COPY_HONSEKI = 1u << 2,     /* 本籍及び筆頭者 */
	CSD_COPY_CODE = 1u << 3,        /* 住民票コード */
};

/* What a copy.request asks. */
struct csd_copy_request {
	/* for whom: the person whose residence record is copied */
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char birth[11];
	char home[JUKI_LGCODE_LEN + 1];   /* 住所地: the municipality that keeps the record */
	char issuer[JUKI_LGCODE_LEN + 1]; /* 交付地: the municipality that prints the copy */
	/* who asks */
	char req_name[JUKI_NAME_MAX + 1];
	int household; /* 0: the person himself; 1: a member of the household */
	int by_card;   /* identity checked with a resident card, else a document */
	char card[CSD_COPY_SERIAL_MAX + 1];     /* by_card: the card's serial */
	char req_code[JUKI_JUMIN_CODE_LEN + 1]; /* by_card: the card holder's code */
	char document[CSD_COPY_TEXT_MAX +
		      1]; /* !by_card: the kind of document (施行規則第5条第2項) */
	unsigned items;   /* enum csd_copy_item */
	int copies;
	int whole_household; /* the copy covers the whole household, not the person alone */
};

/* A problem with a body: the field and what is wrong (never the value). */
struct csd_copy_error {
	char field[64];
	char detail[128];
};

/* csd_copy_item_name() / csd_copy_item_parse(): "householder", ...; parse: 0 if unknown. */
const char *csd_copy_item_name(enum csd_copy_item item);
unsigned csd_copy_item_parse(const char *name);

/* csd_copy_items_json() - the item names of the mask, as an array (new reference). */
json_t *csd_copy_items_json(unsigned items);

/*
 * csd_copy_request_parse() - read a copy.request body.  Unknown keys are
 * refused (a peer that sends more than it should learns so).  Returns 0,
 * or -1 with err.
 */
int csd_copy_request_parse(const json_t *body, struct csd_copy_request *r,
			   struct csd_copy_error *err);

/* csd_copy_request_json() - the body of r (new reference), NULL on ENOMEM. */
json_t *csd_copy_request_json(const struct csd_copy_request *r);

/*
 * csd_copy_copy_check() - the items of a copy (令第15条の2第2項), as the
 * resident record system gives them and copy.answer carries them:
 *
 *   {"address": "...", "householder"?: "...", "honseki"?: "...",
 *    "persons": [{"name", "kana"?, "birth", "sex", "resident_since",
 *                 "relation"?, "code"?}, ...]}
 *
 * An optional item not asked for (items) is refused: the copy holds only
 * what the request asked.  Returns 0, or -1 with err.
 */
int csd_copy_copy_check(const json_t *copy, unsigned items, struct csd_copy_error *err);

/*
 * csd_copy_answer_parse() - read a copy.answer body (or the answer file,
 * which has the same keys): {"request_id", "status": "answered", "copy"}
 * or {"request_id", "status": "refused", "reason", "detail"?}.  items: what
 * the request asked (for csd_copy_copy_check()); *refused set; *copy and
 * *reason borrowed from body.  Returns 0, or -1 with err.
 */
int csd_copy_answer_parse(const json_t *body, unsigned items, const char **request_id, int *refused,
			  const json_t **copy, const char **reason, const char **detail,
			  struct csd_copy_error *err);

/* The reasons a copy.answer may refuse with (docs/protocol.md §9). */
int csd_copy_reason_valid(const char *reason);

#endif
