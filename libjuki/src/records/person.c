#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uninorm.h>
#include <unistr.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"

static int __attribute__((format(printf, 4, 5)))
field_fail(struct juki_field_error *fe, const char *field, int rc, const char *fmt, ...)
{
	va_list ap;

	snprintf(fe->field, sizeof(fe->field), "%s", field);
	fe->reason = rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD;
	va_start(ap, fmt);
	vsnprintf(fe->detail, sizeof(fe->detail), fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * Code points that are in NFC whatever surrounds them: NFC_Quick_Check Yes,
 * canonical combining class 0, and never the second half of a composition.
 * Names and addresses are almost all made of these (kana, ideographs,
 * ASCII, full-width forms), so normalising them to compare would find
 * nothing; anything else takes the full check.
 */
static int
stable_in_nfc(ucs4_t c)
{
	return (c >= 0x20 && c <= 0x7e) ||       /* ASCII */
	       (c >= 0x3000 && c <= 0x3029) ||   /* CJK symbols (not the tone marks 302A-302F) */
	       (c >= 0x3030 && c <= 0x3098) ||   /* more symbols, hiragana */
	       (c >= 0x309b && c <= 0x30ff) ||   /* spacing sound marks, katakana (not 3099-309A) */
	       (c >= 0x3400 && c <= 0x4dbf) ||   /* CJK ideographs, extension A */
	       (c >= 0x4e00 && c <= 0x9fff) ||   /* CJK unified ideographs */
	       (c >= 0xff01 && c <= 0xff9f) ||   /* full-width and half-width forms */
	       (c >= 0x20000 && c <= 0x2a6df) || /* CJK ideographs, extension B */
	       (c >= 0x2a700 && c <= 0x2ebef);   /* CJK ideographs, extensions C-F */
}

static int
all_stable(const uint8_t *s, size_t n)
{
	const uint8_t *end = s + n;
	ucs4_t c;

	while (s < end) {
		int k = u8_mbtouc(&c, s, (size_t)(end - s));

		if (k <= 0 || !stable_in_nfc(c)) {
			return 0;
		}
		s += k;
	}
	return 1;
}

int
juki_text_valid(const char *text, size_t max, char *detail, size_t len)
{
	size_t n = text ? strlen(text) : 0, nfc_len = 0;
	const uint8_t *s = (const uint8_t *)text;
	uint8_t *nfc;
	int same;

	if (n == 0) {
		snprintf(detail, len, "empty");
		return JUKI_EFORMAT;
	}
	if (n > max) {
		snprintf(detail, len, "longer than %zu bytes", max);
		return JUKI_ETOOBIG;
	}
	if (u8_check(s, n) != NULL) {
		snprintf(detail, len, "not valid UTF-8");
		return JUKI_EFORMAT;
	}
	/* C0, DEL, and C1 (U+0080..U+009F, which UTF-8 writes as C2 80..C2 9F). */
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)) {
			snprintf(detail, len, "contains a control character");
			return JUKI_EFORMAT;
		}
	}
	if (all_stable(s, n)) {
		return 0;
	}
	nfc = u8_normalize(UNINORM_NFC, s, n, NULL, &nfc_len);
	if (nfc == NULL) {
		snprintf(detail, len, "cannot be normalised");
		return JUKI_EFORMAT;
	}
	same = nfc_len == n && memcmp(nfc, s, n) == 0;
	free(nfc);
	if (!same) {
		snprintf(detail, len, "not in Unicode NFC");
		return JUKI_EFORMAT;
	}
	return 0;
}

int
juki_json_code(const json_t *obj, const char *key, int lgcode, char *out, size_t len,
	       struct juki_field_error *fe)
{
	const char *v = json_string_value(json_object_get(obj, key));
	int rc;

	if (v == NULL) {
		return field_fail(fe, key, JUKI_EFORMAT, "required string");
	}
	rc = lgcode ? juki_lgcode_check(v) : juki_jumin_code_check(v);
	if (rc == JUKI_EFORMAT) {
		return field_fail(fe, key, rc, "%s",
				  lgcode ? "must be 6 digits, the first two a prefecture (01..47)"
					 : "must be 11 digits");
	}
	if (rc != 0) {
		return field_fail(fe, key, rc, "check digit does not match");
	}
	snprintf(out, len, "%s", v);
	return 0;
}

int
juki_json_date(const json_t *obj, const char *key, char out[11], struct juki_field_error *fe)
{
	const char *v = json_string_value(json_object_get(obj, key));

	if (v == NULL || !juki_date_valid(v)) {
		return field_fail(fe, key, JUKI_EFORMAT, "must be a real date YYYY-MM-DD");
	}
	memcpy(out, v, 11);
	return 0;
}

int
juki_date_not_future(const char *date, int64_t now_ms, const char *field,
		     struct juki_field_error *fe)
{
	char today[11];

	if (date == NULL || !juki_date_valid(date)) {
		return field_fail(fe, field, JUKI_EFORMAT, "must be a real date YYYY-MM-DD");
	}
	/* Both YYYY-MM-DD, today the Japan day of now: their order is the text's. */
	juki_clock_date(now_ms, today, sizeof(today));
	if (strcmp(date, today) <= 0) {
		return 0;
	}
	field_fail(fe, field, JUKI_ERANGE, "after today (%s, JST)", today);
	fe->reason = JUKI_R_FUTURE_DATE;
	return JUKI_ERANGE;
}

int
juki_person_dates_check(const struct juki_person *p, int64_t now_ms, struct juki_field_error *fe)
{
	return juki_date_not_future(p->birth, now_ms, "birth", fe);
}

static int
text_field(const json_t *obj, const char *key, size_t max, int required, char *out,
	   struct juki_field_error *fe)
{
	const json_t *v = json_object_get(obj, key);
	char detail[96];
	int rc;

	if (v == NULL || json_is_null(v)) {
		if (required) {
			return field_fail(fe, key, JUKI_EFORMAT, "required");
		}
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v)) {
		return field_fail(fe, key, JUKI_EFORMAT, "must be a string");
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		return field_fail(fe, key, JUKI_EFORMAT, "contains a NUL character");
	}
	rc = juki_text_valid(json_string_value(v), max, detail, sizeof(detail));
	if (rc != 0) {
		return field_fail(fe, key, JUKI_EFORMAT, "%s", detail);
	}
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* The person fields of obj; with_codes also its code and lgcode (else refused as unknown). */
static int
person_read(const json_t *obj, int partial, int with_codes, struct juki_person *p,
	    struct juki_field_error *fe)
{
	static const char *const known[] = {"name",    "kana", "birth",  "sex",
					    "address", "code", "lgcode", NULL};
	const size_t nknown = with_codes ? 7 : 5;
	const char *key;
	const json_t *v;
	int rc;

	if (!json_is_object(obj)) {
		return field_fail(fe, "person", JUKI_EFORMAT, "must be an object");
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		for (i = 0; i < nknown && strcmp(known[i], key) != 0; i++) {
		}
		if (i == nknown) {
			return field_fail(fe, "person", JUKI_EFORMAT, "unknown field");
		}
	}
	if (with_codes &&
	    (rc = juki_json_code(obj, "code", 0, p->code, sizeof(p->code), fe)) != 0) {
		return rc;
	}
	if ((rc = text_field(obj, "name", JUKI_NAME_MAX, !partial, p->name, fe)) != 0 ||
	    (rc = text_field(obj, "kana", JUKI_NAME_MAX, 0, p->kana, fe)) != 0 ||
	    (rc = text_field(obj, "address", JUKI_ADDRESS_MAX, !partial, p->address, fe)) != 0) {
		return rc;
	}
	if (!partial || json_object_get(obj, "birth") != NULL) {
		if ((rc = juki_json_date(obj, "birth", p->birth, fe)) != 0) {
			return rc;
		}
	}
	v = json_object_get(obj, "sex");
	if (v != NULL || !partial) {
		if (!json_is_integer(v) ||
		    (json_integer_value(v) != 1 && json_integer_value(v) != 2)) {
			return field_fail(fe, "sex", JUKI_EFORMAT,
					  "must be 1 (male) or 2 (female)");
		}
		p->sex = (int)json_integer_value(v);
	}
	if (with_codes && (!partial || json_object_get(obj, "lgcode") != NULL)) {
		if ((rc = juki_json_code(obj, "lgcode", 1, p->lgcode, sizeof(p->lgcode), fe)) !=
		    0) {
			return rc;
		}
	}
	return 0;
}

int
juki_person_from_json(const json_t *obj, int partial, struct juki_person *p,
		      struct juki_field_error *fe)
{
	memset(p, 0, sizeof(*p));
	memset(fe, 0, sizeof(*fe));
	return person_read(obj, partial, 1, p, fe);
}

int
juki_person_fields_from_json(const json_t *obj, const char *code, const char *lgcode,
			     struct juki_person *p, struct juki_field_error *fe)
{
	memset(p, 0, sizeof(*p));
	memset(fe, 0, sizeof(*fe));
	snprintf(p->code, sizeof(p->code), "%s", code);
	snprintf(p->lgcode, sizeof(p->lgcode), "%s", lgcode);
	return person_read(obj, 0, 0, p, fe);
}

json_t *
juki_person_to_json(const struct juki_person *p)
{
	return json_pack("{s:s,s:s,s:s*,s:s,s:i,s:s,s:s}", "code", p->code, "name", p->name, "kana",
			 p->kana[0] ? p->kana : NULL, "birth", p->birth, "sex", p->sex, "address",
			 p->address, "lgcode", p->lgcode);
}
