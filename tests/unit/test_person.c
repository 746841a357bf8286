#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"

#define GOOD_CODE   "24727059608"
#define GOOD_LGCODE "131016"

/* "が" composed (U+304C), and the same as "か" + combining voiced mark (U+3099). */
#define GA_NFC "\xe3\x81\x8c"
#define GA_NFD "\xe3\x81\x8b\xe3\x82\x99"

static json_t *
good_person(void)
{
	json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s}", "code", GOOD_CODE, "name",
			      "山田 花子", "kana", "ヤマダ ハナコ", "birth", "1990-04-01", "sex", 2,
			      "address", "東京都千代田区千代田1-1", "lgcode", GOOD_LGCODE);

	assert_non_null(p);
	return p;
}

/* A string of exactly n bytes: as many "あ" as fit, then ASCII. */
static char *
text_of(size_t n)
{
	char *s = malloc(n + 1);
	size_t i = 0;

	assert_non_null(s);
	for (; i + 3 <= n; i += 3) {
		memcpy(s + i, "あ", 3);
	}
	for (; i < n; i++) {
		s[i] = 'x';
	}
	s[n] = '\0';
	return s;
}

/*
 * One field rule: set key to the JSON value (NULL: remove the key), and
 * expect rc with the named field.
 */
struct rule {
	const char *key;
	const char *value; /* JSON text */
	int rc;
	const char *field;
};

static const struct rule full_rules[] = {
    /* code */
    {"code", NULL, JUKI_EFORMAT, "code"},
    {"code", "null", JUKI_EFORMAT, "code"},
    {"code", "24727059608", JUKI_EFORMAT, "code"},
    {"code", "\"2472705960\"", JUKI_EFORMAT, "code"},
    {"code", "\"247270596080\"", JUKI_EFORMAT, "code"},
    {"code", "\"2472705960A\"", JUKI_EFORMAT, "code"},
    {"code", "\"2472705960８\"", JUKI_EFORMAT, "code"},
    {"code", "\" 24727059608\"", JUKI_EFORMAT, "code"},
    {"code", "\"24727059607\"", JUKI_ECHECKDIGIT, "code"},
    /* name */
    {"name", NULL, JUKI_EFORMAT, "name"},
    {"name", "null", JUKI_EFORMAT, "name"},
    {"name", "\"\"", JUKI_EFORMAT, "name"},
    {"name", "42", JUKI_EFORMAT, "name"},
    {"name", "[\"山田\"]", JUKI_EFORMAT, "name"},
    {"name", "\"山田" GA_NFD "\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田\\t花子\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田花子\\n\"", JUKI_EFORMAT, "name"},
    {"name", "\"\\r山田\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田\\u007f\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田\\u001b[0m\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田\\u0085花子\"", JUKI_EFORMAT, "name"},
    {"name", "\"山田\\u0000花子\"", JUKI_EFORMAT, "name"},
    {"name", "\"A\\u030a\"", JUKI_EFORMAT, "name"},
    {"name", "\"\\u212b\"", JUKI_EFORMAT, "name"},
    /* kana: optional, but validated when given */
    {"kana", "\"\"", JUKI_EFORMAT, "kana"},
    {"kana", "1", JUKI_EFORMAT, "kana"},
    {"kana", "\"ヤマ\\u30ab\\u3099\"", JUKI_EFORMAT, "kana"},
    {"kana", "\"ヤマダ\\tハナコ\"", JUKI_EFORMAT, "kana"},
    /* birth */
    {"birth", NULL, JUKI_EFORMAT, "birth"},
    {"birth", "null", JUKI_EFORMAT, "birth"},
    {"birth", "19900401", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990-4-1\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990/04/01\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990-02-30\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990-13-01\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990-04-00\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1900-02-29\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1799-12-31\"", JUKI_EFORMAT, "birth"},
    {"birth", "\"1990-04-01T00:00:00Z\"", JUKI_EFORMAT, "birth"},
    /* sex */
    {"sex", NULL, JUKI_EFORMAT, "sex"},
    {"sex", "null", JUKI_EFORMAT, "sex"},
    {"sex", "0", JUKI_EFORMAT, "sex"},
    {"sex", "3", JUKI_EFORMAT, "sex"},
    {"sex", "9", JUKI_EFORMAT, "sex"},
    {"sex", "-1", JUKI_EFORMAT, "sex"},
    {"sex", "\"2\"", JUKI_EFORMAT, "sex"},
    {"sex", "2.0", JUKI_EFORMAT, "sex"},
    {"sex", "true", JUKI_EFORMAT, "sex"},
    {"sex", "4294967298", JUKI_EFORMAT, "sex"},
    /* address */
    {"address", NULL, JUKI_EFORMAT, "address"},
    {"address", "\"\"", JUKI_EFORMAT, "address"},
    {"address", "{}", JUKI_EFORMAT, "address"},
    {"address", "\"東京都\\n千代田区\"", JUKI_EFORMAT, "address"},
    {"address", "\"" GA_NFD "\"", JUKI_EFORMAT, "address"},
    /* lgcode */
    {"lgcode", NULL, JUKI_EFORMAT, "lgcode"},
    {"lgcode", "131016", JUKI_EFORMAT, "lgcode"},
    {"lgcode", "\"13101\"", JUKI_EFORMAT, "lgcode"},
    {"lgcode", "\"1310160\"", JUKI_EFORMAT, "lgcode"},
    {"lgcode", "\"13101x\"", JUKI_EFORMAT, "lgcode"},
    {"lgcode", "\"131017\"", JUKI_ECHECKDIGIT, "lgcode"},
    /* anything else */
    {"email", "\"a@example.jp\"", JUKI_EFORMAT, "person"},
    {"Name", "\"山田\"", JUKI_EFORMAT, "person"},
    {"", "1", JUKI_EFORMAT, "person"},
};

static void
apply_rule(json_t *obj, const struct rule *r)
{
	json_error_t jerr;
	json_t *v;

	if (r->value == NULL) {
		json_object_del(obj, r->key);
		return;
	}
	v = json_loads(r->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (v == NULL) {
		fail_msg("rule %s=%s: %s", r->key, r->value, jerr.text);
	}
	json_object_set_new(obj, r->key, v);
}

static void
check_refusal(const struct rule *r, int partial, json_t *obj)
{
	struct juki_person p;
	struct juki_field_error fe;
	const json_t *v;
	int rc;

	rc = juki_person_from_json(obj, partial, &p, &fe);
	if (rc != r->rc) {
		fail_msg("%s %s=%s: rc %d (%s), want %d", partial ? "partial" : "full", r->key,
			 r->value ? r->value : "(absent)", rc, fe.detail, r->rc);
	}
	if (strcmp(fe.field, r->field) != 0) {
		fail_msg("%s=%s: field %s, want %s", r->key, r->value ? r->value : "(absent)",
			 fe.field, r->field);
	}
	assert_string_equal(fe.reason,
			    r->rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD);
	assert_true(fe.detail[0] != '\0');
	/* The detail names the rule, never the value. */
	v = json_object_get(obj, r->key);
	if (json_is_string(v) && json_string_length(v) > 2) {
		if (strstr(fe.detail, json_string_value(v)) != NULL) {
			fail_msg("%s: detail \"%s\" repeats the value", r->key, fe.detail);
		}
	}
}

static void
test_good(void **state)
{
	json_t *obj = good_person(), *back;
	struct juki_person p;
	struct juki_field_error fe;

	(void)state;
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.code, GOOD_CODE);
	assert_string_equal(p.name, "山田 花子");
	assert_string_equal(p.kana, "ヤマダ ハナコ");
	assert_string_equal(p.birth, "1990-04-01");
	assert_int_equal(p.sex, 2);
	assert_string_equal(p.address, "東京都千代田区千代田1-1");
	assert_string_equal(p.lgcode, GOOD_LGCODE);
	back = juki_person_to_json(&p);
	assert_non_null(back);
	assert_true(json_equal(back, obj));
	json_decref(back);

	/* kana is optional: absent or null, and then not written back. */
	json_object_del(obj, "kana");
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.kana, "");
	back = juki_person_to_json(&p);
	assert_null(json_object_get(back, "kana"));
	assert_true(json_equal(back, obj));
	json_decref(back);
	json_object_set_new(obj, "kana", json_null());
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.kana, "");

	/* Male, a leap day, another municipality. */
	json_object_set_new(obj, "sex", json_integer(1));
	json_object_set_new(obj, "birth", json_string("2000-02-29"));
	json_object_set_new(obj, "lgcode", json_string("271004"));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_int_equal(p.sex, 1);
	assert_string_equal(p.birth, "2000-02-29");
	assert_string_equal(p.lgcode, "271004");
	json_decref(obj);
}

static void
test_names_as_written(void **state)
{
	static const char *const names[] = {
	    GA_NFC,                   /* composed が */
	    "髙橋 𠮷男",              /* outside the BMP */
	    "葛\xf3\xa0\x84\x80飾",   /* an ideographic variation sequence */
	    "ｶﾞ",                     /* half-width kana are NFC as they are */
	    "\xc3\x85ngstr\xc3\xb6m", /* precomposed Å and ö */
	    "O'Brien-Smith  Jr.",     /* punctuation, two spaces */
	};
	struct juki_person p;
	struct juki_field_error fe;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *obj = good_person();

		json_object_set_new(obj, "name", json_string(names[i]));
		json_object_set_new(obj, "kana", json_string(names[i]));
		json_object_set_new(obj, "address", json_string(names[i]));
		if (juki_person_from_json(obj, 0, &p, &fe) != 0) {
			fail_msg("name %zu refused: %s: %s", i, fe.field, fe.detail);
		}
		/* Compared exactly, never altered. */
		assert_string_equal(p.name, names[i]);
		assert_string_equal(p.kana, names[i]);
		assert_string_equal(p.address, names[i]);
		json_decref(obj);
	}
}

static void
test_full_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(full_rules) / sizeof(full_rules[0]); i++) {
		json_t *obj = good_person();

		apply_rule(obj, &full_rules[i]);
		check_refusal(&full_rules[i], 0, obj);
		json_decref(obj);
	}
}

static void
test_nfc(void **state)
{
	json_t *obj = good_person();
	struct juki_person p;
	struct juki_field_error fe;

	(void)state;
	json_object_set_new(obj, "name", json_string("山田 " GA_NFD));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "name");
	assert_non_null(strstr(fe.detail, "NFC"));
	json_object_set_new(obj, "name", json_string("山田 " GA_NFC));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.name, "山田 " GA_NFC);
	json_decref(obj);
}

static void
test_lengths(void **state)
{
	struct juki_person p;
	struct juki_field_error fe;
	json_t *obj = good_person();
	char *s;

	(void)state;
	/* Exactly at the limit is kept whole. */
	s = text_of(JUKI_NAME_MAX);
	json_object_set_new(obj, "name", json_string(s));
	json_object_set_new(obj, "kana", json_string(s));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.name, s);
	assert_string_equal(p.kana, s);
	free(s);
	s = text_of(JUKI_ADDRESS_MAX);
	json_object_set_new(obj, "address", json_string(s));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), 0);
	assert_string_equal(p.address, s);
	free(s);

	/* One byte over is refused, not cut. */
	s = text_of(JUKI_NAME_MAX + 1);
	json_object_set_new(obj, "name", json_string(s));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "name");
	assert_string_equal(fe.reason, JUKI_R_BAD_FIELD);
	assert_string_equal(p.name, "");
	json_object_set_new(obj, "name", json_string("山田"));
	json_object_set_new(obj, "kana", json_string(s));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "kana");
	json_object_set_new(obj, "kana", json_string("ヤマダ"));
	free(s);
	s = text_of(JUKI_ADDRESS_MAX + 1);
	json_object_set_new(obj, "address", json_string(s));
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "address");
	free(s);
	/* A multi-byte character that would cross the limit counts whole. */
	{
		char buf[JUKI_NAME_MAX + 8];

		memset(buf, 'x', JUKI_NAME_MAX - 2);
		memcpy(buf + JUKI_NAME_MAX - 2, "あ", 4);
		assert_int_equal(strlen(buf), JUKI_NAME_MAX + 1);
		json_object_set_new(obj, "address", json_string("東京都"));
		json_object_set_new(obj, "name", json_string(buf));
		assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
		assert_string_equal(fe.field, "name");
	}
	json_decref(obj);
}

static void
test_not_an_object(void **state)
{
	static const char *const docs[] = {"[]", "\"24727059608\"", "null", "1"};
	struct juki_person p;
	struct juki_field_error fe;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);

		assert_int_equal(juki_person_from_json(v, 0, &p, &fe), JUKI_EFORMAT);
		assert_string_equal(fe.field, "person");
		assert_int_equal(juki_person_from_json(v, 1, &p, &fe), JUKI_EFORMAT);
		json_decref(v);
	}
	assert_int_equal(juki_person_from_json(NULL, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "person");
}

static void
test_partial(void **state)
{
	static const struct rule partial_rules[] = {
	    {"code", NULL, JUKI_EFORMAT, "code"},
	    {"code", "\"24727059607\"", JUKI_ECHECKDIGIT, "code"},
	    {"name", "\"\"", JUKI_EFORMAT, "name"},
	    {"name", "\"" GA_NFD "\"", JUKI_EFORMAT, "name"},
	    {"kana", "\"ヤマダ\\u0001\"", JUKI_EFORMAT, "kana"},
	    {"birth", "\"1990-02-30\"", JUKI_EFORMAT, "birth"},
	    {"sex", "3", JUKI_EFORMAT, "sex"},
	    {"sex", "\"1\"", JUKI_EFORMAT, "sex"},
	    {"address", "\"東京都\\u007f\"", JUKI_EFORMAT, "address"},
	    {"lgcode", "\"131017\"", JUKI_ECHECKDIGIT, "lgcode"},
	    {"lgcode", "\"1310\"", JUKI_EFORMAT, "lgcode"},
	    {"reason", "\"move\"", JUKI_EFORMAT, "person"},
	};
	struct juki_person p;
	struct juki_field_error fe;
	json_t *obj;

	(void)state;
	/* Only the code is required. */
	obj = json_pack("{s:s}", "code", GOOD_CODE);
	assert_int_equal(juki_person_from_json(obj, 1, &p, &fe), 0);
	assert_string_equal(p.code, GOOD_CODE);
	assert_string_equal(p.name, "");
	assert_string_equal(p.birth, "");
	assert_int_equal(p.sex, 0);
	assert_string_equal(p.address, "");
	assert_string_equal(p.lgcode, "");
	/* ... which full mode does not accept. */
	assert_int_equal(juki_person_from_json(obj, 0, &p, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "name");

	/* Given fields are read. */
	json_object_set_new(obj, "name", json_string(GA_NFC));
	json_object_set_new(obj, "sex", json_integer(1));
	json_object_set_new(obj, "lgcode", json_string("271004"));
	assert_int_equal(juki_person_from_json(obj, 1, &p, &fe), 0);
	assert_string_equal(p.name, GA_NFC);
	assert_int_equal(p.sex, 1);
	assert_string_equal(p.lgcode, "271004");
	assert_string_equal(p.birth, "");
	/* A null text field is absent. */
	json_object_set_new(obj, "name", json_null());
	assert_int_equal(juki_person_from_json(obj, 1, &p, &fe), 0);
	assert_string_equal(p.name, "");
	json_decref(obj);

	for (size_t i = 0; i < sizeof(partial_rules) / sizeof(partial_rules[0]); i++) {
		obj = json_pack("{s:s}", "code", GOOD_CODE);
		apply_rule(obj, &partial_rules[i]);
		check_refusal(&partial_rules[i], 1, obj);
		json_decref(obj);
	}
}

static void
test_json_code(void **state)
{
	json_t *obj = json_pack("{s:s,s:s,s:i,s:s}", "jumin", GOOD_CODE, "lg", GOOD_LGCODE, "num",
				131016, "bad", "131017");
	struct juki_field_error fe;
	char out[16];

	(void)state;
	memset(&fe, 0, sizeof(fe));
	assert_int_equal(juki_json_code(obj, "jumin", 0, out, sizeof(out), &fe), 0);
	assert_string_equal(out, GOOD_CODE);
	assert_int_equal(juki_json_code(obj, "lg", 1, out, sizeof(out), &fe), 0);
	assert_string_equal(out, GOOD_LGCODE);

	/* A code of the other kind has the wrong length. */
	strcpy(out, "untouched");
	assert_int_equal(juki_json_code(obj, "lg", 0, out, sizeof(out), &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "lg");
	assert_string_equal(fe.reason, JUKI_R_BAD_FIELD);
	assert_non_null(strstr(fe.detail, "11"));
	assert_string_equal(out, "untouched");
	assert_int_equal(juki_json_code(obj, "jumin", 1, out, sizeof(out), &fe), JUKI_EFORMAT);
	assert_non_null(strstr(fe.detail, "6"));

	assert_int_equal(juki_json_code(obj, "bad", 1, out, sizeof(out), &fe), JUKI_ECHECKDIGIT);
	assert_string_equal(fe.field, "bad");
	assert_string_equal(fe.reason, JUKI_R_CHECK_DIGIT);
	assert_null(strstr(fe.detail, "131017"));

	assert_int_equal(juki_json_code(obj, "num", 1, out, sizeof(out), &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "num");
	assert_int_equal(juki_json_code(obj, "missing", 1, out, sizeof(out), &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "missing");
	assert_string_equal(out, "untouched");
	json_decref(obj);
}

static void
test_json_date(void **state)
{
	json_t *obj =
	    json_pack("{s:s,s:s,s:i}", "d", "2024-02-29", "bad", "2023-02-29", "n", 20240229);
	struct juki_field_error fe;
	char out[11];

	(void)state;
	assert_int_equal(juki_json_date(obj, "d", out, &fe), 0);
	assert_string_equal(out, "2024-02-29");
	assert_int_equal(juki_json_date(obj, "bad", out, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "bad");
	assert_string_equal(fe.reason, JUKI_R_BAD_FIELD);
	assert_int_equal(juki_json_date(obj, "n", out, &fe), JUKI_EFORMAT);
	assert_int_equal(juki_json_date(obj, "missing", out, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "missing");
	json_decref(obj);
}

static void
test_text_valid(void **state)
{
	static const struct {
		const char *text;
		size_t max;
		int rc;
		const char *detail; /* a word the detail must hold */
	} cases[] = {
	    {GA_NFC, 3, 0, NULL},
	    {GA_NFC, 2, JUKI_ETOOBIG, "longer"},
	    {GA_NFD, 16, JUKI_EFORMAT, "NFC"},
	    {"A\xcc\x8a", 16, JUKI_EFORMAT, "NFC"},
	    {"\xe2\x84\xab", 16, JUKI_EFORMAT, "NFC"}, /* ANGSTROM SIGN: NFC is U+00C5 */
	    {"\xc3\x85", 16, 0, NULL},
	    {"\xf0\xa0\xae\xb7", 4, 0, NULL},
	    {"abc", 3, 0, NULL},
	    {"abcd", 3, JUKI_ETOOBIG, "3"},
	    {"", 16, JUKI_EFORMAT, "empty"},
	    {NULL, 16, JUKI_EFORMAT, "empty"},
	    {"\xff", 16, JUKI_EFORMAT, "UTF-8"},
	    {"a\xc0\xaf", 16, JUKI_EFORMAT, "UTF-8"},        /* overlong "/" */
	    {"\xed\xa0\x80", 16, JUKI_EFORMAT, "UTF-8"},     /* a surrogate */
	    {"\xe3\x81", 16, JUKI_EFORMAT, "UTF-8"},         /* cut short */
	    {"\xf4\x90\x80\x80", 16, JUKI_EFORMAT, "UTF-8"}, /* past U+10FFFF */
	    {"a\x01", 16, JUKI_EFORMAT, "control"},
	    {"a\x1f", 16, JUKI_EFORMAT, "control"},
	    {"\ta", 16, JUKI_EFORMAT, "control"},
	    {"a\x7f", 16, JUKI_EFORMAT, "control"},
	    {"a\xc2\x80", 16, JUKI_EFORMAT, "control"}, /* C1 controls are control characters */
	    {"a\xc2\x85", 16, JUKI_EFORMAT, "control"},
	    {"a\xc2\x9f", 16, JUKI_EFORMAT, "control"},
	    {"a\xc2\xa0", 16, 0, NULL}, /* NO-BREAK SPACE is not */
	};
	char detail[96];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		detail[0] = '\0';
		rc = juki_text_valid(cases[i].text, cases[i].max, detail, sizeof(detail));
		if (rc != cases[i].rc) {
			fail_msg("case %zu: rc %d (%s), want %d", i, rc, detail, cases[i].rc);
		}
		if (cases[i].detail != NULL && strstr(detail, cases[i].detail) == NULL) {
			fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, detail,
				 cases[i].detail);
		}
	}
	/* A short detail buffer is cut, not overrun. */
	memset(detail, 'Z', sizeof(detail));
	assert_int_equal(juki_text_valid("", 4, detail, 4), JUKI_EFORMAT);
	assert_int_equal(strlen(detail), 3);
	assert_int_equal(detail[4], 'Z');
}

/*
 * The quick path of NFC (code points stable in NFC whatever surrounds them)
 * and the full check agree: what the quick path lets through is in NFC, and
 * what it does not know goes through normalisation.
 */
static void
test_nfc_quick_path(void **state)
{
	char d[96];

	(void)state;
	/* Kana, ideographs (also outside the BMP), full-width forms: accepted at once. */
	assert_int_equal(juki_text_valid("山田 花子", 64, d, sizeof(d)), 0);
	assert_int_equal(juki_text_valid("\xf0\xa0\xae\xb7田 太郎", 64, d, sizeof(d)), 0);
	assert_int_equal(juki_text_valid("髙橋 がくと ガクト ｶﾞｸﾄ", 64, d, sizeof(d)), 0);
	assert_int_equal(juki_text_valid("東京都千代田区１丁目２番", 64, d, sizeof(d)), 0);
	/* A combining sound mark after kana: not stable, and not NFC. */
	assert_int_equal(juki_text_valid("か\xe3\x82\x99", 64, d, sizeof(d)), JUKI_EFORMAT);
	/* A compatibility ideograph (U+F900) decomposes: not NFC. */
	assert_int_equal(juki_text_valid("\xef\xa4\x80", 64, d, sizeof(d)), JUKI_EFORMAT);
	/* Latin with a precomposed accent: outside the quick path, and NFC. */
	assert_int_equal(juki_text_valid("Jos\xc3\xa9", 64, d, sizeof(d)), 0);
	/* The same written with a combining accent: not NFC. */
	assert_int_equal(juki_text_valid("Jose\xcc\x81", 64, d, sizeof(d)), JUKI_EFORMAT);
	/* A CJK tone mark (U+302A, combining class 218) after an ideograph. */
	assert_int_equal(juki_text_valid("\xe5\xb1\xb1\xe3\x80\xaa", 64, d, sizeof(d)), 0);
}

/* A time given as RFC 3339 UTC, for the clock the caller passes. */
static int64_t
at(const char *utc)
{
	int64_t ms;

	assert_int_equal(juki_clock_parse(utc, &ms), 0);
	return ms;
}

/* The one rule of every date of the register: not after today in Japan. */
static void
test_date_not_future(void **state)
{
	struct juki_field_error fe;
	struct juki_person p;
	json_t *o = good_person();
	/* 2026-12-06 12:00 JST */
	int64_t noon = at("2026-12-06T03:00:00Z");

	(void)state;
	/* Today is allowed, tomorrow is not. */
	assert_int_equal(juki_date_not_future("2026-12-06", noon, "birth", &fe), 0);
	assert_int_equal(juki_date_not_future("1800-01-01", noon, "birth", &fe), 0);
	assert_int_equal(juki_date_not_future("2026-12-07", noon, "birth", &fe), JUKI_ERANGE);
	assert_string_equal(fe.field, "birth");
	assert_string_equal(fe.reason, JUKI_R_FUTURE_DATE);
	/* The detail names today, never the date refused (it may be a person's). */
	assert_string_equal(fe.detail, "after today (2026-12-06, JST)");
	assert_int_equal(juki_date_not_future("9999-12-31", noon, "reason_date", &fe), JUKI_ERANGE);
	assert_string_equal(fe.field, "reason_date");

	/* The day turns at 00:00 JST, 15:00 UTC, not at midnight UTC. */
	assert_int_equal(
	    juki_date_not_future("2026-12-07", at("2026-12-06T14:59:59.999Z"), "d", &fe),
	    JUKI_ERANGE);
	assert_string_equal(fe.detail, "after today (2026-12-06, JST)");
	assert_int_equal(juki_date_not_future("2026-12-07", at("2026-12-06T15:00:00Z"), "d", &fe),
			 0);
	assert_int_equal(juki_date_not_future("2026-12-08", at("2026-12-06T15:00:00Z"), "d", &fe),
			 JUKI_ERANGE);
	assert_string_equal(fe.detail, "after today (2026-12-07, JST)");
	/* Still 2026-12-06 in UTC, already 2026-12-07 in Japan: the Japan day counts. */
	assert_int_equal(juki_date_not_future("2026-12-07", at("2026-12-06T23:59:59Z"), "d", &fe),
			 0);

	/* A leap day: today on 2028-02-29, and 2028-03-01 is tomorrow. */
	assert_int_equal(juki_date_not_future("2028-02-29", at("2028-02-28T15:00:00Z"), "d", &fe),
			 0);
	assert_int_equal(juki_date_not_future("2028-02-29", at("2028-02-28T14:59:59Z"), "d", &fe),
			 JUKI_ERANGE);
	assert_string_equal(fe.detail, "after today (2028-02-28, JST)");
	assert_int_equal(juki_date_not_future("2028-03-01", at("2028-02-29T14:59:59Z"), "d", &fe),
			 JUKI_ERANGE);
	assert_string_equal(fe.detail, "after today (2028-02-29, JST)");
	/* ... and not a day that does not exist. */
	assert_int_equal(juki_date_not_future("2027-02-29", noon, "d", &fe), JUKI_EFORMAT);
	assert_string_equal(fe.reason, JUKI_R_BAD_FIELD);
	assert_int_equal(juki_date_not_future(NULL, noon, "d", &fe), JUKI_EFORMAT);

	/* A person: the birth date by the same rule, the rest untouched. */
	assert_int_equal(juki_person_from_json(o, 0, &p, &fe), 0);
	assert_int_equal(juki_person_dates_check(&p, noon, &fe), 0);
	json_object_set_new(o, "birth", json_string("2026-12-07"));
	assert_int_equal(juki_person_from_json(o, 0, &p, &fe), 0);
	assert_int_equal(juki_person_dates_check(&p, noon, &fe), JUKI_ERANGE);
	assert_string_equal(fe.field, "birth");
	assert_string_equal(fe.reason, JUKI_R_FUTURE_DATE);
	assert_int_equal(juki_person_dates_check(&p, at("2026-12-06T15:00:00Z"), &fe), 0);
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),           cmocka_unit_test(test_names_as_written),
	    cmocka_unit_test(test_full_rules),     cmocka_unit_test(test_nfc),
	    cmocka_unit_test(test_nfc_quick_path), cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_not_an_object),  cmocka_unit_test(test_partial),
	    cmocka_unit_test(test_json_code),      cmocka_unit_test(test_json_date),
	    cmocka_unit_test(test_text_valid),     cmocka_unit_test(test_date_not_future),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
