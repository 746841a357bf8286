/*
 * The bodies of the wide-area copy's messages and of the resident record
 * system's answer file (cs/copymsg.c): every field checked, the refusal
 * naming the field and never the value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copymsg.h"
#include "juki/wire/msg.h"

#define CODE "24727059608"
#define RID  "0190a000-0000-7000-8000-000000000001"

static json_t *
good_request(void)
{
	json_t *body = json_loads(
	    "{\"person\": {\"code\": \"" CODE "\", \"name\": \"\xf0\xa0\xae\xb7田 太郎\","
	    " \"birth\": \"1980-04-01\"},"
	    " \"requester\": {\"name\": \"\xf0\xa0\xae\xb7田 太郎\", \"relation\": \"self\","
	    " \"identity\": \"card\", \"card\": \"K1\", \"code\": \"" CODE "\"},"
	    " \"home\": \"131016\", \"issuer\": \"271004\", \"items\": [\"householder\"],"
	    " \"copies\": 2, \"household\": false}",
	    0, NULL);

	assert_non_null(body);
	return body;
}

/* body with key (a dotted path of one or two levels) set to v (stolen; NULL: removed). */
static json_t *
with(const char *key, json_t *v)
{
	json_t *body = good_request(), *obj = body;
	char k[64];
	char *dot;

	snprintf(k, sizeof(k), "%s", key);
	if ((dot = strchr(k, '.')) != NULL) {
		*dot = '\0';
		obj = json_object_get(body, k);
		key = dot + 1;
	} else {
		key = k;
	}
	if (v == NULL) {
		json_object_del(obj, key);
	} else {
		json_object_set_new(obj, key, v);
	}
	return body;
}

static void
refused(json_t *body, const char *field)
{
	struct csd_copy_request r;
	struct csd_copy_error e;

	assert_int_equal(csd_copy_request_parse(body, &r, &e), -1);
	if (strcmp(e.field, field) != 0) {
		fail_msg("field %s (%s), expected %s", e.field, e.detail, field);
	}
	json_decref(body);
}

static void
test_request_good(void **state)
{
	struct csd_copy_request r;
	struct csd_copy_error e;
	json_t *body = good_request(), *back;

	(void)state;
	assert_int_equal(csd_copy_request_parse(body, &r, &e), 0);
	assert_string_equal(r.code, CODE);
	assert_string_equal(r.home, "131016");
	assert_string_equal(r.issuer, "271004");
	assert_int_equal(r.by_card, 1);
	assert_string_equal(r.card, "K1");
	assert_int_equal(r.items, CSD_COPY_HOUSEHOLDER);
	assert_int_equal(r.copies, 2);
	/* What is sent is what was read. */
	back = csd_copy_request_json(&r);
	assert_true(json_equal(back, body));
	json_decref(back);
	json_decref(body);
	/* A document instead of a card. */
	body = with("requester.identity", json_string("document"));
	json_object_del(json_object_get(body, "requester"), "card");
	json_object_del(json_object_get(body, "requester"), "code");
	json_object_set_new(json_object_get(body, "requester"), "document",
			    json_string("運転免許証"));
	assert_int_equal(csd_copy_request_parse(body, &r, &e), 0);
	assert_int_equal(r.by_card, 0);
	assert_string_equal(r.document, "運転免許証");
	json_decref(body);
}

static void
test_request_refusals(void **state)
{
	(void)state;
	refused(json_string("x"), "body");
	refused(with("extra", json_true()), "body");
	refused(with("person", NULL), "person");
	refused(with("person.code", json_string("24727059609")), "person.code");
	refused(with("person.name", json_string("")), "person.name");
	refused(with("person.name", json_string("a\x01")), "person.name");
	refused(with("person.name", json_string("\xff")), "person.name");
	refused(with("person.birth", json_string("1980-02-30")), "person.birth");
	{
		char big[400];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		refused(with("person.name", json_string(big)), "person.name");
		refused(with("requester.name", json_string(big)), "requester.name");
	}
	refused(with("person.more", json_string("x")), "person");
	refused(with("home", json_string("131017")), "home");
	refused(with("issuer", json_string("131016")), "issuer");
	refused(with("requester.relation", json_string("friend")), "requester.relation");
	refused(with("requester.identity", json_string("face")), "requester.identity");
	refused(with("requester.card", json_string("k1")), "requester.card");
	refused(with("requester.card", json_string("0123456789ABCDEFG")), "requester.card");
	refused(with("requester.document", json_string("x")), "requester.document");
	refused(with("requester.code", json_string("11111111111")), "requester.code");
	refused(with("items", json_pack("[s]", "spouse")), "items");
	refused(with("items", json_pack("[s,s]", "code", "code")), "items");
	refused(with("items", json_string("code")), "items");
	refused(with("copies", json_integer(0)), "copies");
	refused(with("copies", json_integer(11)), "copies");
	refused(with("copies", json_string("1")), "copies");
	refused(with("household", json_string("yes")), "household");
}

static json_t *
good_copy(void)
{
	json_t *copy = json_loads("{\"address\": \"東京都千代田区1丁目\", \"householder\": \"a\","
				  " \"persons\": [{\"name\": \"葛\xf3\xa0\x84\x80西 花子\","
				  " \"birth\": \"1980-04-01\", \"sex\": 2,"
				  " \"resident_since\": \"2020-04-01\", \"relation\": \"妻\"}]}",
				  0, NULL);

	assert_non_null(copy);
	return copy;
}

static void
answer_refused(json_t *body, unsigned items, const char *field)
{
	const char *id, *reason, *detail;
	const json_t *copy;
	struct csd_copy_error e;
	int refused;

	assert_int_equal(
	    csd_copy_answer_parse(body, items, &id, &refused, &copy, &reason, &detail, &e), -1);
	if (strcmp(e.field, field) != 0) {
		fail_msg("field %s (%s), expected %s", e.field, e.detail, field);
	}
	json_decref(body);
}

static void
test_answer(void **state)
{
	unsigned items = CSD_COPY_HOUSEHOLDER | CSD_COPY_RELATION;
	const char *id, *reason, *detail;
	const json_t *copy;
	struct csd_copy_error e;
	json_t *body;
	int refused;

	(void)state;
	body = json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy",
			 good_copy());
	assert_int_equal(
	    csd_copy_answer_parse(body, items, &id, &refused, &copy, &reason, &detail, &e), 0);
	assert_string_equal(id, RID);
	assert_int_equal(refused, 0);
	assert_non_null(copy);
	json_decref(body);
	body = json_pack("{s:s,s:s,s:s,s:s}", "request_id", RID, "status", "refused", "reason",
			 JUKI_R_RRS_REFUSED, "detail", "支援措置");
	assert_int_equal(
	    csd_copy_answer_parse(body, items, &id, &refused, &copy, &reason, &detail, &e), 0);
	assert_int_equal(refused, 1);
	assert_string_equal(reason, JUKI_R_RRS_REFUSED);
	assert_string_equal(detail, "支援措置");
	json_decref(body);

	/* Items not asked for are refused: the copy holds what was asked, no more. */
	body = json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy",
			 good_copy());
	answer_refused(body, CSD_COPY_RELATION, "copy.householder");
	body = json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy",
			 good_copy());
	answer_refused(body, CSD_COPY_HOUSEHOLDER, "copy.persons[0].relation");
	answer_refused(json_pack("{s:s,s:s}", "request_id", "x", "status", "refused"), items,
		       "request_id");
	answer_refused(json_pack("{s:s,s:s}", "request_id", RID, "status", "maybe"), items,
		       "status");
	answer_refused(
	    json_pack("{s:s,s:s,s:s}", "request_id", RID, "status", "refused", "reason", "because"),
	    items, "reason");
	answer_refused(json_pack("{s:s,s:s,s:s,s:o}", "request_id", RID, "status", "refused",
				 "reason", JUKI_R_RRS_REFUSED, "copy", good_copy()),
		       items, "copy");
	answer_refused(json_pack("{s:s,s:s,s:s,s:b}", "request_id", RID, "status", "answered",
				 "other", "x", "copy", 1),
		       items, "body");
	{
		json_t *c = good_copy();

		json_object_set_new(json_array_get(json_object_get(c, "persons"), 0), "sex",
				    json_integer(3));
		answer_refused(
		    json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy", c),
		    items, "copy.persons[0].sex");
		c = good_copy();
		json_object_set_new(json_array_get(json_object_get(c, "persons"), 0), "birth",
				    json_string("1980-13-01"));
		answer_refused(
		    json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy", c),
		    items, "copy.persons[0].birth");
		c = good_copy();
		json_object_set_new(c, "persons", json_array());
		answer_refused(
		    json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy", c),
		    items, "copy.persons");
		c = good_copy();
		json_object_del(c, "address");
		answer_refused(
		    json_pack("{s:s,s:s,s:o}", "request_id", RID, "status", "answered", "copy", c),
		    items, "copy.address");
	}
}

static void
test_items(void **state)
{
	json_t *a;

	(void)state;
	assert_int_equal(csd_copy_item_parse("honseki"), CSD_COPY_HONSEKI);
	assert_int_equal(csd_copy_item_parse("x"), 0);
	assert_int_equal(csd_copy_item_parse(NULL), 0);
	assert_string_equal(csd_copy_item_name(CSD_COPY_CODE), "code");
	a = csd_copy_items_json(CSD_COPY_CODE | CSD_COPY_HOUSEHOLDER);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "householder");
	json_decref(a);
	assert_true(csd_copy_reason_valid(JUKI_R_NOT_RESIDENT));
	assert_true(csd_copy_reason_valid(JUKI_R_REVIEW_REFUSED));
	assert_false(csd_copy_reason_valid(JUKI_R_BAD_FIELD));
	assert_false(csd_copy_reason_valid(NULL));
}

/* The example files of docs/import.md (conf/copy-*.json) are what the parsers take. */
static json_t *
example(const char *name)
{
	const char *src = getenv("JUKI_SOURCE_DIR");
	char path[512];
	json_t *doc;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/conf/%s", src, name);
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(doc);
	return doc;
}

static void
test_examples(void **state)
{
	unsigned items = CSD_COPY_HOUSEHOLDER | CSD_COPY_RELATION;
	const char *id, *reason, *detail;
	struct csd_copy_request r;
	const json_t *copy;
	struct csd_copy_error e;
	json_t *doc;
	int refused;

	(void)state;
	doc = example("copy-request-example.json");
	assert_string_equal(json_string_value(json_object_get(doc, "format")),
			    "juki-copy-request/1");
	json_object_del(doc, "format");
	json_object_del(doc, "request_id");
	json_object_del(doc, "received");
	json_object_set_new(doc, "home", json_string("131016"));
	assert_int_equal(csd_copy_request_parse(doc, &r, &e), 0);
	assert_int_equal(r.items, items);
	json_decref(doc);
	doc = example("copy-answer-example.json");
	json_object_del(doc, "format");
	assert_int_equal(
	    csd_copy_answer_parse(doc, items, &id, &refused, &copy, &reason, &detail, &e), 0);
	assert_int_equal(refused, 0);
	assert_int_equal(json_array_size(json_object_get(copy, "persons")), 2);
	json_decref(doc);
	doc = example("copy-refusal-example.json");
	json_object_del(doc, "format");
	assert_int_equal(
	    csd_copy_answer_parse(doc, items, &id, &refused, &copy, &reason, &detail, &e), 0);
	assert_int_equal(refused, 1);
	assert_string_equal(reason, JUKI_R_RRS_REFUSED);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_good), cmocka_unit_test(test_request_refusals),
	    cmocka_unit_test(test_answer),       cmocka_unit_test(test_items),
	    cmocka_unit_test(test_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
