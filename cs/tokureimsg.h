/*
 * The special move-out/move-in with the resident card (転入転出の特例,
 * 第6-5): the bodies of its messages, read and checked field by field
 * (docs/protocol.md §18).  Pure functions: no store, no node; the unit test
 * and the fuzz targets call them as the daemon does.
 *
 *   tokurei.request    転入地 CS -> 転出地 CS on muni: 最初の転入届 received
 *                      from a card holder; asks for the 転出証明書情報
 *   tokurei.answer     転出地 CS -> 転入地 CS on muni: the 転出証明書情報
 *                      (令第24条の4); a refusal travels in the ack
 *   tokurei.collected  転入地 CS -> 転出地 CS on muni: the card was collected
 *
 * A refusal names the field and the rule it breaks, never the value.
 */
#ifndef JUKI_CS_TOKUREIMSG_H
#define JUKI_CS_TOKUREIMSG_H

#include <jansson.h>
#include <stddef.h>

#include "juki/records/person.h"

#define CSD_TOKUREI_SERIAL_MAX  16 /* a card serial (cards.h) */
#define CSD_TOKUREI_MEMBERS_MAX 19 /* 世帯員 moving with the card holder */

/* A household member moving with the holder (世帯員に関する付記転出届): their items. */
struct csd_tokurei_member {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char kana[JUKI_NAME_MAX + 1]; /* "" when not recorded */
	char birth[11];
	int sex;
};

/* 転出証明書情報 (令第24条の4): the person's items, where and when to. */
struct csd_tokurei_cert {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char kana[JUKI_NAME_MAX + 1]; /* "" when not recorded */
	char birth[11];
	int sex;                                /* 1 male, 2 female */
	char address[JUKI_ADDRESS_MAX + 1];     /* the address moved out of */
	char from[JUKI_LGCODE_LEN + 1];         /* 転出地 */
	char to[JUKI_LGCODE_LEN + 1];           /* 転入地 (予定) */
	char new_address[JUKI_ADDRESS_MAX + 1]; /* 転出先 (予定) */
	char date[11];                          /* 転出の予定年月日 */
	char card[CSD_TOKUREI_SERIAL_MAX + 1];
	/* optional: the household members of the 世帯員に関する付記転出届, each once, not the
	 * holder */
	struct csd_tokurei_member members[CSD_TOKUREI_MEMBERS_MAX];
	size_t nmembers;
};

/* What a tokurei.request asks. */
struct csd_tokurei_request {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char birth[11];
	char card[CSD_TOKUREI_SERIAL_MAX + 1];
	char from[JUKI_LGCODE_LEN + 1];
	char to[JUKI_LGCODE_LEN + 1];
};

struct csd_tokurei_error {
	char field[64];
	char detail[128];
};

int csd_tokurei_request_parse(const json_t *body, struct csd_tokurei_request *r,
			      struct csd_tokurei_error *err);
json_t *csd_tokurei_request_json(const struct csd_tokurei_request *r);

int csd_tokurei_cert_parse(const json_t *body, struct csd_tokurei_cert *c,
			   struct csd_tokurei_error *err);
json_t *csd_tokurei_cert_json(const struct csd_tokurei_cert *c);

/* tokurei.answer: {"request_id", "certificate"}; *request_id borrowed from body. */
int csd_tokurei_answer_parse(const json_t *body, const char **request_id,
			     struct csd_tokurei_cert *c, struct csd_tokurei_error *err);

/* tokurei.collected: {"request_id", "card"}; *request_id borrowed from body. */
int csd_tokurei_collected_parse(const json_t *body, const char **request_id,
				char card[CSD_TOKUREI_SERIAL_MAX + 1],
				struct csd_tokurei_error *err);

#endif
