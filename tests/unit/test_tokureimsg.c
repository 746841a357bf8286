/*
 * The bodies of the special move-out/in's messages (cs/tokureimsg.c):
 * every field checked, the refusal naming the field and never the value;
 * the example files of the resident record system's spool read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/wire/msg.h"
#include "tokureimsg.h"

#define CODE "24727059608"
#define RID  "0190a000-0000-7000-8000-000000000001"

static json_t *
good_request(void)
{
	json_t *body = json_loads("{\"code\": \"" CODE "\", \"name\": \"\xf0\xa0\xae\xb7田 太郎\","
				  " \"birth\": \"1980-04-01\", \"card\": \"K1\","
				  " \"from\": \"131016\", \"to\": \"271004\"}",
				  0, NULL);

	assert_non_null(body);
	return body;
}

static json_t *
good_cert(void)
{
	json_t *c =
	    json_loads("{\"code\": \"" CODE "\", \"name\": \"山田 太郎\","
		       " \"kana\": \"やまだ たろう\", \"birth\": \"1980-04-01\", \"sex\": 1,"
		       " \"address\": \"東京都千代田区千代田1番1号\", \"from\": \"131016\","
		       " \"to\": \"271004\", \"new_address\": \"大阪府大阪市北区1\","
		       " \"date\": \"2026-04-01\", \"card\": \"K1\"}",
		       0, NULL);

	assert_non_null(c);
	return c;
}

static void
test_request(void **state)
{
	struct csd_tokurei_request r, again;
	struct csd_tokurei_error e;
	json_t *body = good_request(), *back;

	(void)state;
	assert_int_equal(csd_tokurei_request_parse(body, &r, &e), 0);
	assert_string_equal(r.code, CODE);
	assert_string_equal(r.card, "K1");
	back = csd_tokurei_request_json(&r);
	assert_int_equal(csd_tokurei_request_parse(back, &again, &e), 0);
	assert_memory_equal(&r, &again, sizeof(r));
	json_decref(back);
	json_decref(body);
}

static void
check_refused(json_t *body, const char *field)
{
	struct csd_tokurei_request r;
	struct csd_tokurei_error e;

	memset(&e, 0, sizeof(e));
	assert_int_equal(csd_tokurei_request_parse(body, &r, &e), -1);
	assert_string_equal(e.field, field);
	assert_null(strstr(e.detail, CODE));
	assert_null(strstr(e.detail, "田"));
	json_decref(body);
}

static json_t *
with(const char *key, json_t *v)
{
	json_t *body = good_request();

	if (v == NULL) {
		json_object_del(body, key);
	} else {
		json_object_set_new(body, key, v);
	}
	return body;
}

static void
test_request_refusals(void **state)
{
	(void)state;
	check_refused(json_string("x"), "body");
	check_refused(with("extra", json_true()), "body");
	check_refused(with("code", json_string("24727059609")), "code"); /* check digit */
	check_refused(with("code", NULL), "code");
	check_refused(with("name", NULL), "name");
	check_refused(with("name", json_string("a\x01")), "name");
	check_refused(with("birth", json_string("1980-02-30")), "birth");
	check_refused(with("card", json_string("k1")), "card");
	check_refused(with("card", json_string("K12345678901234567")), "card");
	check_refused(with("card", json_integer(1)), "card");
	check_refused(with("from", json_string("13101")), "from");
	check_refused(with("to", json_string("131016")), "to"); /* the same as from */
}

static void
test_answer(void **state)
{
	struct csd_tokurei_cert c, again;
	struct csd_tokurei_error e;
	const char *rid;
	json_t *body = json_pack("{s:s,s:o}", "request_id", RID, "certificate", good_cert());
	json_t *back;

	(void)state;
	assert_int_equal(csd_tokurei_answer_parse(body, &rid, &c, &e), 0);
	assert_string_equal(rid, RID);
	assert_int_equal(c.sex, 1);
	assert_string_equal(c.kana, "やまだ たろう");
	back = csd_tokurei_cert_json(&c);
	assert_int_equal(csd_tokurei_cert_parse(back, &again, &e), 0);
	assert_memory_equal(&c, &again, sizeof(c));
	json_decref(back);
	/* Each field of the certificate. */
	{
		const char *keys[] = {"sex", "address", "new_address", "date", "card", "to"};
		json_t *vals[] = {json_integer(3),  json_string(""),    json_null(),
				  json_string("x"), json_string("a-b"), json_string("131016")};

		for (size_t i = 0; i < 6; i++) {
			json_object_set_new(json_object_get(body, "certificate"), keys[i], vals[i]);
			assert_int_equal(csd_tokurei_answer_parse(body, &rid, &c, &e), -1);
			assert_string_equal(e.field, keys[i]);
			json_object_set_new(body, "certificate", good_cert());
		}
	}
	json_object_set_new(json_object_get(body, "certificate"), "spouse", json_string("x"));
	assert_int_equal(csd_tokurei_answer_parse(body, &rid, &c, &e), -1);
	assert_string_equal(e.field, "certificate");
	json_object_set_new(body, "certificate", good_cert());
	json_object_set_new(body, "request_id", json_string("not-a-uuid"));
	assert_int_equal(csd_tokurei_answer_parse(body, &rid, &c, &e), -1);
	assert_string_equal(e.field, "request_id");
	json_object_set_new(body, "request_id", json_string(RID));
	json_object_del(body, "certificate");
	assert_int_equal(csd_tokurei_answer_parse(body, &rid, &c, &e), -1);
	assert_string_equal(e.field, "certificate");
	json_decref(body);
}

static void
test_members(void **state)
{
	struct csd_tokurei_cert c, again;
	struct csd_tokurei_error e;
	json_t *cert = good_cert(), *back;
	json_t *m = json_pack("{s:s,s:s,s:s,s:i}", "code", "73020070665", "name", "山田 花子",
			      "birth", "1982-05-05", "sex", 2);

	(void)state;
	json_object_set_new(cert, "members", json_pack("[O]", m));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), 0);
	assert_int_equal(c.nmembers, 1);
	assert_string_equal(c.members[0].name, "山田 花子");
	back = csd_tokurei_cert_json(&c);
	assert_int_equal(csd_tokurei_cert_parse(back, &again, &e), 0);
	assert_memory_equal(&c, &again, sizeof(c));
	json_decref(back);
	/* Twice, the holder, a bad field, not a list, too many. */
	json_object_set_new(cert, "members", json_pack("[O,O]", m, m));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members.code");
	json_object_set_new(cert, "members",
			    json_pack("[{s:s,s:s,s:s,s:i}]", "code", CODE, "name", "x", "birth",
				      "1980-01-01", "sex", 1));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members.code");
	json_object_set_new(m, "sex", json_integer(0));
	json_object_set_new(cert, "members", json_pack("[O]", m));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members.sex");
	json_object_set_new(m, "sex", json_integer(2));
	json_object_set_new(m, "spouse", json_true());
	json_object_set_new(cert, "members", json_pack("[O]", m));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members.body");
	json_object_set_new(cert, "members", json_string("x"));
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members");
	json_object_del(m, "spouse");
	{
		json_t *a = json_array();

		for (int i = 0; i < CSD_TOKUREI_MEMBERS_MAX + 1; i++) {
			json_array_append(a, m);
		}
		json_object_set_new(cert, "members", a);
	}
	assert_int_equal(csd_tokurei_cert_parse(cert, &c, &e), -1);
	assert_string_equal(e.field, "members");
	json_decref(m);
	json_decref(cert);
}

static void
test_collected(void **state)
{
	char card[CSD_TOKUREI_SERIAL_MAX + 1];
	struct csd_tokurei_error e;
	const char *rid;
	json_t *body = json_pack("{s:s,s:s}", "request_id", RID, "card", "K1");

	(void)state;
	assert_int_equal(csd_tokurei_collected_parse(body, &rid, card, &e), 0);
	assert_string_equal(card, "K1");
	json_object_set_new(body, "card", json_string(""));
	assert_int_equal(csd_tokurei_collected_parse(body, &rid, card, &e), -1);
	assert_string_equal(e.field, "card");
	json_object_set_new(body, "card", json_string("K1"));
	json_object_set_new(body, "more", json_true());
	assert_int_equal(csd_tokurei_collected_parse(body, &rid, card, &e), -1);
	assert_string_equal(e.field, "body");
	json_decref(body);
	assert_int_equal(csd_tokurei_collected_parse(json_null(), &rid, card, &e), -1);
}

static void
test_examples(void **state)
{
	const char *names[] = {"tokurei-moveout-example.json", "tokurei-movein-example.json",
			       "tokurei-certificate-example.json"};
	const char *src = getenv("JUKI_SOURCE_DIR");

	(void)state;
	assert_non_null(src);
	for (size_t i = 0; i < 3; i++) {
		struct csd_tokurei_cert c;
		struct csd_tokurei_error e;
		char path[512];
		json_t *doc;

		snprintf(path, sizeof(path), "%s/conf/%s", src, names[i]);
		doc = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(doc);
		if (i < 2) {
			assert_true(juki_uuid_valid(json_string_value(json_object_get(doc, "id"))));
		}
		assert_int_equal(
		    csd_tokurei_cert_parse(json_object_get(doc, "certificate"), &c, &e), 0);
		json_decref(doc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request),   cmocka_unit_test(test_request_refusals),
	    cmocka_unit_test(test_answer),    cmocka_unit_test(test_members),
	    cmocka_unit_test(test_collected), cmocka_unit_test(test_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
