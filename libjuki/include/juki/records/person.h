/*
 * juki — identity information (本人確認情報, docs/protocol.md §10.1) as it travels and is
 * kept: 住民票コード, 氏名, 生年月日, 性別, 住所 and its local-government code.
 *
 * In JSON (messages, control requests, files):
 *
 *   {"code":"24727059608", "name":"山田 花子", "kana":"ヤマダ ハナコ",
 *    "birth":"1990-04-01", "sex":2, "address":"東京都千代田区…",
 *    "lgcode":"131016"}
 *
 * sex follows ISO 5218 as the register does: 1 male, 2 female.  kana is
 * optional.  Names and addresses are UTF-8 in Unicode NFC, without control
 * characters, compared exactly and never truncated: a value over the limit
 * is refused, not cut.
 */
#ifndef JUKI_PERSON_H
#define JUKI_PERSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/codes.h"

#define JUKI_NAME_MAX    256 /* bytes of UTF-8 */
#define JUKI_ADDRESS_MAX 512 /* bytes of UTF-8 */

struct juki_person {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char kana[JUKI_NAME_MAX + 1];
	char birth[11];
	int sex;
	char address[JUKI_ADDRESS_MAX + 1];
	char lgcode[JUKI_LGCODE_LEN + 1];
};

/* What was wrong, for a reject or a control error: the field and a reason code. */
struct juki_field_error {
	char field[32];
	const char *reason; /* JUKI_R_BAD_FIELD, JUKI_R_CHECK_DIGIT or JUKI_R_FUTURE_DATE */
	char detail[128];   /* names the rule, never the value */
};

/*
 * juki_text_valid() - UTF-8, NFC, no control characters, 1..max bytes.
 * Returns 0, or JUKI_EFORMAT / JUKI_ETOOBIG with a reason in detail.
 */
int juki_text_valid(const char *text, size_t max, char *detail, size_t len);

/*
 * juki_person_from_json() - read and validate a person object.  Unknown
 * keys are refused.  When partial is true only "code" is required and the
 * other fields are validated if present.  Returns 0, or JUKI_EFORMAT /
 * JUKI_ECHECKDIGIT with fe filled.
 */
int juki_person_from_json(const json_t *obj, int partial, struct juki_person *p,
			  struct juki_field_error *fe);

/*
 * juki_person_fields_from_json() - the person of a change record: obj holds
 * every field but the codes, which the record carries (code and lgcode,
 * already validated) and which obj must not hold.  As
 * juki_person_from_json(obj + code + lgcode, 0, ...).
 */
int juki_person_fields_from_json(const json_t *obj, const char *code, const char *lgcode,
				 struct juki_person *p, struct juki_field_error *fe);

/* juki_person_to_json() - the object above (kana only when set); NULL on ENOMEM. */
json_t *juki_person_to_json(const struct juki_person *p);

/*
 * juki_json_code() - fetch a required string field holding a code of kind
 * "jumin" (11 digits) or "lgcode" (6 digits), validated with its check digit.
 */
int juki_json_code(const json_t *obj, const char *key, int lgcode, char *out, size_t len,
		   struct juki_field_error *fe);

/* juki_json_date() - fetch a required "YYYY-MM-DD" field that names a real day. */
int juki_json_date(const json_t *obj, const char *key, char out[11], struct juki_field_error *fe);

/*
 * The dates of the register — a birth date, the date of a change (異動日) —
 * are never after today.  One rule for every way in (import, clerk,
 * network):
 *
 * juki_date_not_future() - date (a real day, "YYYY-MM-DD") is not after
 * the Japan day of now_ms: JST, UTC+9, so the day turns at 00:00 JST, 15:00
 * UTC.  A date equal to today is allowed.  now_ms is the caller's clock
 * (juki_node_now_ms(): the daemon's clock, with its clock_offset); it is
 * never read here.  Returns 0, JUKI_EFORMAT (not a real date: reason
 * JUKI_R_BAD_FIELD) or JUKI_ERANGE (after today: reason JUKI_R_FUTURE_DATE,
 * detail "after today (2026-12-06, JST)"), with fe naming field.  The
 * detail names today, never the date refused: it may be a person's.
 */
int juki_date_not_future(const char *date, int64_t now_ms, const char *field,
			 struct juki_field_error *fe);

/*
 * juki_person_dates_check() - the dates of p (birth) by the rule above;
 * fe->field is "birth".
 */
int juki_person_dates_check(const struct juki_person *p, int64_t now_ms,
			    struct juki_field_error *fe);

#endif
