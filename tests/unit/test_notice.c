#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/node/notice.h"
#include "juki/store/store.h"

#include "helpers.h"

#define ID  "01890a5d-ac96-774b-bcce-b302099a8057"
#define ID2 "01890a5d-ac96-774b-bcce-b302099a8058"

static int
text_ok(const char *s)
{
	char why[128];

	return juki_notice_text_check(s, strlen(s), why, sizeof(why)) == 0;
}

/* The text: 1..1000 bytes of UTF-8, no control character of any kind. */
static void
test_text(void **state)
{
	char big[JUKI_NOTICE_TEXT_MAX + 2], why[128];

	(void)state;
	assert_true(text_ok("planned stop of the gateway at 22:00 JST"));
	assert_true(text_ok("\xe8\xa8\xbc\xe6\x98\x8e\xe6\x9b\xb8\xe3\x81\xae\xe6\x9b\xb4\xe6\x96"
			    "\xb0")); /* 証明書の更新 */
	assert_false(text_ok(""));
	assert_false(text_ok("two\nlines"));
	assert_false(text_ok("tab\there"));
	assert_false(text_ok("\x1b[2Jcleared"));
	assert_false(text_ok("del\x7f"));
	assert_false(text_ok("c1 \xc2\x85 next line"));
	assert_false(text_ok("\xff\xfe"));     /* not UTF-8 */
	assert_false(text_ok("\xc0\xaf"));     /* overlong '/' */
	assert_false(text_ok("\xed\xa0\x80")); /* a surrogate */
	assert_false(text_ok("cut \xe8\xa8")); /* a character cut short */
	memset(big, 'a', sizeof(big));
	big[JUKI_NOTICE_TEXT_MAX] = '\0';
	assert_true(text_ok(big));
	big[JUKI_NOTICE_TEXT_MAX] = 'a';
	big[JUKI_NOTICE_TEXT_MAX + 1] = '\0';
	assert_int_equal(juki_notice_text_check(big, strlen(big), why, sizeof(why)), JUKI_EINVAL);
	assert_non_null(strstr(why, "1001 bytes"));
	/* a NUL inside: the length says what the text is */
	assert_false(juki_notice_text_check("a\0b", 3, why, sizeof(why)) == 0);
	assert_true(juki_notice_severity_valid("critical"));
	assert_false(juki_notice_severity_valid("fatal"));
	assert_false(juki_notice_severity_valid(NULL));
}

static const char *
parse_reason(const char *json)
{
	static struct juki_reject rej;
	struct juki_notice n;
	json_t *body = json_loads(json, JSON_ALLOW_NUL, NULL);
	int rc;

	assert_non_null(body);
	memset(&rej, 0, sizeof(rej));
	rc = juki_notice_parse(body, &n, &rej);
	json_decref(body);
	return rc == 0 ? "ok" : rej.detail;
}

static void
test_parse(void **state)
{
	(void)state;
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"warning\",\"text\":\"stop at 22:00\"}"),
			    "ok");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"warning\"}"),
			    "text: missing or not a string");
	assert_string_equal(parse_reason("{\"id\":\"x\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"info\",\"text\":\"t\"}"),
			    "id: not a UUIDv7");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"yesterday\","
					 "\"severity\":\"info\",\"text\":\"t\"}"),
			    "time: not an RFC 3339 UTC time");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"fatal\",\"text\":\"t\"}"),
			    "severity: not info, warning or critical");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"info\",\"text\":\"a\\nb\"}"),
			    "text: a control character (U+000A) at byte 1");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"info\",\"text\":\"t\",\"x\":1}"),
			    "x: not a member here");
	assert_string_equal(parse_reason("{\"id\":\"" ID "\",\"time\":\"2026-12-07T04:00:00.000Z\","
					 "\"severity\":\"info\",\"text\":\"a\\u0000b\"}"),
			    "text: a NUL character");
}

static void
test_ack_parse(void **state)
{
	char id[JUKI_UUID_LEN + 1], by[JUKI_NOTICE_BY_MAX];
	struct juki_reject rej;
	int64_t t;
	json_t *b;

	(void)state;
	b = json_pack("{s:s,s:s,s:s}", "id", ID, "by", "urn:juki:op:cs:131016:tanaka", "time",
		      "2026-12-07T04:00:00.000Z");
	assert_int_equal(juki_notice_ack_parse(b, id, by, &t, &rej), 0);
	assert_string_equal(by, "urn:juki:op:cs:131016:tanaka");
	json_object_set_new(b, "by", json_string("admin:uid=0"));
	assert_int_equal(juki_notice_ack_parse(b, id, by, &t, &rej), 0);
	json_object_set_new(b, "by", json_string("admin:uid=x"));
	assert_int_equal(juki_notice_ack_parse(b, id, by, &t, &rej), JUKI_REJECT);
	json_object_set_new(b, "by", json_string("urn:juki:cs:131016"));
	assert_int_equal(juki_notice_ack_parse(b, id, by, &t, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, "invalid-field");
	json_decref(b);
}

/* What the node keeps: each notice once; status counts the unacknowledged. */
static void
test_store(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_NOTICE_SCHEMA};
	struct juki_store *store = NULL;
	struct juki_notice n = {.id = ID, .time_ms = 1, .severity = "info", .text = "t"};
	char tmp[64], path[128], err[256];
	json_t *st;

	(void)state;
	assert_non_null(test_mkdtemp(tmp, sizeof(tmp), "notice"));
	snprintf(path, sizeof(path), "%s/store.db", tmp);
	assert_int_equal(juki_store_open(path, schemas, 1, &store, err, sizeof(err)), 0);
	assert_int_equal(juki_notice_store_received(store, "urn:juki:jlis:0", &n, 2), 0);
	assert_int_equal(juki_notice_store_received(store, "urn:juki:jlis:0", &n, 3), 0);
	snprintf(n.id, sizeof(n.id), "%s", ID2);
	assert_int_equal(juki_notice_store_received(store, "urn:juki:pref:13", &n, 4), 0);
	st = juki_notice_status_of(store);
	assert_int_equal(json_integer_value(json_object_get(st, "unacked")), 2);
	assert_int_equal(json_array_size(json_object_get(st, "recent")), 2);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(st, "recent"), 0), "id")),
			    ID2);
	json_decref(st);
	/* at a sender: an ack of a notice never sent there */
	assert_int_equal(juki_notice_store_acked(store, ID, "urn:juki:cs:131016", "admin:uid=0", 5),
			 JUKI_ENOTFOUND);
	juki_store_close(store);
	assert_int_equal(test_rm_rf(tmp), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_ack_parse),
	    cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
