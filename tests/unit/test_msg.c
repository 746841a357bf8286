#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/wire/frame.h"
#include "juki/wire/msg.h"

#define CS_OSAKA   "urn:juki:cs:271004"
#define CS_CHIYODA "urn:juki:cs:131016"
#define PREF_TOKYO "urn:juki:pref:13"
#define WIRE_TIME  "2026-11-25T01:02:03.456Z"
#define UNIQUE_N   10000

static int64_t
wire_ms(void)
{
	int64_t ms = 0;

	assert_int_equal(juki_clock_parse(WIRE_TIME, &ms), 0);
	return ms;
}

static int
hexval(char c)
{
	return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static void
test_uuid7_form(void **state)
{
	char id[JUKI_UUID_LEN + 1];

	(void)state;
	assert_int_equal(juki_uuid7(wire_ms(), id), 0);
	assert_int_equal(strlen(id), JUKI_UUID_LEN);
	for (size_t i = 0; i < JUKI_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			assert_int_equal(id[i], '-');
		} else {
			assert_non_null(strchr("0123456789abcdef", id[i]));
		}
	}
	assert_int_equal(id[14], '7');
	assert_int_equal(hexval(id[19]) & 0xc, 0x8);
	assert_true(juki_uuid_valid(id));

	/* The first 48 bits are the time, big-endian. */
	assert_int_equal(juki_uuid7(INT64_C(0x0123456789ab), id), 0);
	assert_memory_equal(id, "01234567-89ab-7", 15);
	assert_int_equal(juki_uuid7(0, id), 0);
	assert_memory_equal(id, "00000000-0000-7", 15);
	assert_int_equal(juki_uuid7((INT64_C(1) << 48) - 1, id), 0);
	assert_memory_equal(id, "ffffffff-ffff-7", 15);
	assert_int_equal(juki_uuid7(INT64_C(1) << 48, id), JUKI_ERANGE);
	assert_string_equal(id, "");
	assert_int_equal(juki_uuid7(-1, id), JUKI_ERANGE);
}

static void
test_uuid7_time_prefix(void **state)
{
	char id[JUKI_UUID_LEN + 1], hex[13];
	int64_t ms = wire_ms(), back = 0;

	(void)state;
	assert_int_equal(juki_uuid7(ms, id), 0);
	memcpy(hex, id, 8);
	memcpy(hex + 8, id + 9, 4);
	hex[12] = '\0';
	for (int i = 0; i < 12; i++) {
		back = back * 16 + hexval(hex[i]);
	}
	assert_int_equal(back, ms);
}

static void
test_uuid7_ordering(void **state)
{
	char a[JUKI_UUID_LEN + 1], b[JUKI_UUID_LEN + 1];
	int64_t ms = wire_ms();

	(void)state;
	/* Later milliseconds sort later, whatever the random bits; carries included. */
	for (int64_t i = 0; i < 2000; i++) {
		assert_int_equal(juki_uuid7(ms + i, a), 0);
		assert_int_equal(juki_uuid7(ms + i + 1, b), 0);
		assert_true(strcmp(a, b) < 0);
	}
	assert_int_equal(juki_uuid7(INT64_C(0xffffffff), a), 0);
	assert_int_equal(juki_uuid7(INT64_C(0x100000000), b), 0);
	assert_true(strcmp(a, b) < 0);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* An id derived from content: the same tail gives the same id, a valid v7. */
static void
test_uuid7_from_tail(void **state)
{
	unsigned char tail[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	char a[JUKI_UUID_LEN + 1], b[JUKI_UUID_LEN + 1];

	(void)state;
	assert_int_equal(juki_uuid7_from(INT64_C(0x0123456789ab), tail, a), 0);
	assert_string_equal(a, "01234567-89ab-7fff-bfff-ffffffffffff");
	assert_true(juki_uuid_valid(a));
	assert_int_equal(juki_uuid7_from(INT64_C(0x0123456789ab), tail, b), 0);
	assert_string_equal(a, b);
	tail[9] = 0xfe;
	assert_int_equal(juki_uuid7_from(INT64_C(0x0123456789ab), tail, b), 0);
	assert_string_equal(b, "01234567-89ab-7fff-bfff-fffffffffffe");
	assert_int_equal(juki_uuid7_from(INT64_C(1) << 48, tail, b), JUKI_ERANGE);
	assert_int_equal(juki_uuid7_from(-1, tail, b), JUKI_ERANGE);
}

static void
test_uuid7_unique(void **state)
{
	char(*ids)[JUKI_UUID_LEN + 1] = calloc(UNIQUE_N, sizeof(*ids));
	unsigned char seen_one[JUKI_UUID_LEN] = {0}, seen_zero[JUKI_UUID_LEN] = {0};
	int64_t ms = wire_ms();

	(void)state;
	assert_non_null(ids);
	/* All in one millisecond: only the 74 random bits can tell them apart. */
	for (int i = 0; i < UNIQUE_N; i++) {
		assert_int_equal(juki_uuid7(ms, ids[i]), 0);
		assert_true(juki_uuid_valid(ids[i]));
		for (size_t k = 0; k < JUKI_UUID_LEN; k++) {
			if (ids[i][k] != '-') {
				seen_one[k] |= (unsigned char)hexval(ids[i][k]);
				seen_zero[k] |= (unsigned char)~hexval(ids[i][k]) & 0xf;
			}
		}
	}
	qsort(ids, UNIQUE_N, sizeof(*ids), cmp_id);
	for (int i = 1; i < UNIQUE_N; i++) {
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	}
	/* Every random bit took both values; the fixed bits never moved. */
	for (size_t k = 15; k < JUKI_UUID_LEN; k++) {
		if (k == 18 || k == 23) {
			continue;
		}
		if (k == 19) {
			assert_int_equal(seen_one[k], 0xb);
			assert_int_equal(seen_zero[k], 0x7);
		} else {
			assert_int_equal(seen_one[k], 0xf);
			assert_int_equal(seen_zero[k], 0xf);
		}
	}
	assert_int_equal(seen_one[14], 0x7);
	assert_int_equal(seen_zero[14], 0x8);
	free(ids);
}

static void
test_uuid_valid(void **state)
{
	(void)state;
	assert_true(juki_uuid_valid("01234567-89ab-7def-8123-456789abcdef"));
	assert_true(juki_uuid_valid("01234567-89ab-7def-b123-456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89AB-7def-8123-456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89ab-4def-8123-456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89ab-7def-c123-456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89ab-7def-7123-456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89ab-7def-8123-456789abcdeg"));
	assert_false(juki_uuid_valid("0123456-789ab-7def-8123-456789abcdef"));
	assert_false(juki_uuid_valid("0123456789ab7def8123456789abcdef"));
	assert_false(juki_uuid_valid("01234567-89ab-7def-8123-456789abcde"));
	assert_false(juki_uuid_valid("01234567-89ab-7def-8123-456789abcdef0"));
	assert_false(juki_uuid_valid("{01234567-89ab-7def-8123-456789abcde}"));
	assert_false(juki_uuid_valid(""));
	assert_false(juki_uuid_valid(NULL));
}

static void
assert_msg_equal(const struct juki_msg *a, const struct juki_msg *b)
{
	assert_int_equal(a->version, b->version);
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->type, b->type);
	assert_string_equal(a->from, b->from);
	assert_string_equal(a->to, b->to);
	assert_int_equal(a->time_ms, b->time_ms);
	assert_string_equal(a->corr, b->corr);
	assert_true(json_equal(a->body, b->body));
}

static void
test_round_trip(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	struct juki_msg sent, got;
	char corr[JUKI_UUID_LEN + 1], expect[512], *text;
	const char *reason = "untouched";
	json_t *doc;

	(void)state;
	assert_int_equal(juki_uuid7(clk.fixed_ms - 5000, corr), 0);
	assert_int_equal(
	    juki_msg_init(&sent, JUKI_MSG_TENNYU, CS_OSAKA, CS_CHIYODA, corr,
			  json_pack("{s:s, s:i}", "name", "\xe5\xb1\xb1\xe7\x94\xb0", "n", 3),
			  &clk),
	    0);
	assert_int_equal(sent.version, JUKI_PROTO_VERSION);
	assert_true(juki_uuid_valid(sent.id));
	assert_int_equal(sent.time_ms, clk.fixed_ms);
	assert_string_not_equal(sent.id, corr);

	doc = juki_msg_to_json(&sent);
	assert_non_null(doc);
	/* The exact wire text: field order, UTC time with milliseconds. */
	text = json_dumps(doc, JSON_COMPACT);
	snprintf(expect, sizeof(expect),
		 "{\"v\":1,\"id\":\"%s\",\"type\":\"tennyu.notice\",\"from\":\"" CS_OSAKA
		 "\",\"to\":\"" CS_CHIYODA "\",\"time\":\"" WIRE_TIME "\",\"corr\":\"%s\","
		 "\"body\":{\"name\":\"\xe5\xb1\xb1\xe7\x94\xb0\",\"n\":3}}",
		 sent.id, corr);
	assert_string_equal(text, expect);
	free(text);

	assert_int_equal(juki_msg_from_json(doc, &got, &reason, NULL, 0), 0);
	assert_null(reason);
	assert_msg_equal(&sent, &got);
	/* The message holds its own reference to the body. */
	json_decref(doc);
	assert_int_equal(json_integer_value(json_object_get(got.body, "n")), 3);
	juki_msg_clear(&got);
	assert_null(got.body);
	assert_string_equal(got.id, "");
	juki_msg_clear(&sent);
}

static void
test_round_trip_frame_no_corr(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	struct evbuffer *wire = evbuffer_new();
	struct juki_msg sent, got;
	const char *reason = NULL;
	json_t *doc, *pulled = NULL;

	(void)state;
	assert_int_equal(
	    juki_msg_init(&sent, JUKI_MSG_TENSHUTSU, CS_CHIYODA, PREF_TOKYO, NULL, NULL, &clk), 0);
	assert_string_equal(sent.corr, "");
	assert_true(json_is_object(sent.body));
	assert_int_equal(json_object_size(sent.body), 0);
	doc = juki_msg_to_json(&sent);
	assert_true(json_is_null(json_object_get(doc, "corr")));
	assert_int_equal(juki_frame_push(wire, doc, JUKI_FRAME_MAX_DEFAULT), 0);
	json_decref(doc);
	assert_int_equal(juki_frame_pull(wire, JUKI_FRAME_MAX_DEFAULT, &pulled), 1);
	assert_int_equal(juki_msg_from_json(pulled, &got, &reason, NULL, 0), 0);
	assert_msg_equal(&sent, &got);
	json_decref(pulled);
	juki_msg_clear(&got);
	juki_msg_clear(&sent);

	/* "" for corr is the same as none. */
	assert_int_equal(juki_msg_init(&sent, "x", CS_CHIYODA, PREF_TOKYO, "", NULL, &clk), 0);
	assert_string_equal(sent.corr, "");
	juki_msg_clear(&sent);
	evbuffer_free(wire);
}

static void
test_init_refusals(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	char type47[JUKI_TYPE_MAX], type48[JUKI_TYPE_MAX + 1];
	struct juki_msg msg;

	(void)state;
	memset(type47, 'a', sizeof(type47) - 1);
	type47[sizeof(type47) - 1] = '\0';
	memset(type48, 'a', sizeof(type48) - 1);
	type48[sizeof(type48) - 1] = '\0';
	assert_int_equal(juki_msg_init(&msg, type47, CS_OSAKA, CS_CHIYODA, NULL, NULL, &clk), 0);
	assert_string_equal(msg.type, type47);
	juki_msg_clear(&msg);
	assert_int_equal(
	    juki_msg_init(&msg, "a.b_c-9", CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk), 0);
	juki_msg_clear(&msg);

	/* Every refusal frees the stolen body (the leak check would say otherwise). */
	assert_int_equal(
	    juki_msg_init(&msg, type48, CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
	    JUKI_EINVAL);
	assert_null(msg.body);
	assert_string_equal(msg.id, "");
	assert_int_equal(juki_msg_init(&msg, "", CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
			 JUKI_EINVAL);
	assert_int_equal(juki_msg_init(&msg, NULL, CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
			 JUKI_EINVAL);
	assert_int_equal(
	    juki_msg_init(&msg, "Tennyu.notice", CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
	    JUKI_EINVAL);
	assert_int_equal(
	    juki_msg_init(&msg, "tennyu notice", CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
	    JUKI_EINVAL);
	assert_int_equal(juki_msg_init(&msg, JUKI_MSG_TENNYU, "urn:juki:cs:271005", CS_CHIYODA,
				       NULL, json_object(), &clk),
			 JUKI_EINVAL);
	assert_int_equal(
	    juki_msg_init(&msg, JUKI_MSG_TENNYU, NULL, CS_CHIYODA, NULL, json_object(), &clk),
	    JUKI_EINVAL);
	assert_int_equal(
	    juki_msg_init(&msg, JUKI_MSG_TENNYU, CS_OSAKA, "cs:131016", NULL, json_object(), &clk),
	    JUKI_EINVAL);
	assert_int_equal(juki_msg_init(&msg, JUKI_MSG_TENNYU, CS_OSAKA, CS_CHIYODA,
				       "01234567-89ab-4def-8123-456789abcdef", json_object(), &clk),
			 JUKI_EINVAL);
	assert_int_equal(
	    juki_msg_init(&msg, JUKI_MSG_TENNYU, CS_OSAKA, CS_CHIYODA, NULL, json_array(), &clk),
	    JUKI_EINVAL);
	assert_null(msg.body);
	/* A time a UUIDv7 cannot carry. */
	clk.fixed_ms = -5;
	assert_int_equal(
	    juki_msg_init(&msg, JUKI_MSG_TENNYU, CS_OSAKA, CS_CHIYODA, NULL, json_object(), &clk),
	    JUKI_ERANGE);
	assert_null(msg.body);
}

/* A valid wire document to break one field at a time. */
static json_t *
good_doc(char id[JUKI_UUID_LEN + 1])
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	struct juki_msg msg;
	json_t *doc;

	assert_int_equal(juki_msg_init(&msg, JUKI_MSG_TENNYU, CS_OSAKA, CS_CHIYODA, NULL,
				       json_pack("{s:s}", "k", "v"), &clk),
			 0);
	doc = juki_msg_to_json(&msg);
	assert_non_null(doc);
	memcpy(id, msg.id, JUKI_UUID_LEN + 1);
	juki_msg_clear(&msg);
	return doc;
}

/*
 * Set key to val (stolen; NULL removes key) in a fresh good document and
 * check the outcome: want_reason NULL means accepted.
 */
static void
check_field(const char *key, json_t *val, const char *want_reason, int id_kept)
{
	char id[JUKI_UUID_LEN + 1];
	json_t *doc = good_doc(id);
	const char *reason = NULL;
	char detail[JUKI_DETAIL_MAX], prefix[64];
	struct juki_msg msg;
	int rc;

	if (val == NULL) {
		assert_int_equal(json_object_del(doc, key), 0);
	} else {
		assert_int_equal(json_object_set_new(doc, key, val), 0);
	}
	memset(&msg, 0x5a, sizeof(msg));
	memset(detail, 0x5a, sizeof(detail));
	rc = juki_msg_from_json(doc, &msg, &reason, detail, sizeof(detail));
	if (want_reason == NULL) {
		assert_int_equal(rc, 0);
		assert_null(reason);
		assert_non_null(msg.body);
		assert_string_equal(detail, "");
	} else {
		assert_int_equal(rc, JUKI_EPROTO);
		assert_non_null(reason);
		assert_string_equal(reason, want_reason);
		/* The detail names the field the case broke (docs/protocol.md §7). */
		snprintf(prefix, sizeof(prefix), "%s: ", key);
		assert_true(strncmp(detail, prefix, strlen(prefix)) == 0);
		assert_true(strlen(detail) > strlen(prefix));
		assert_null(msg.body);
		assert_string_equal(msg.type, "");
		assert_string_equal(msg.id, id_kept ? id : "");
	}
	juki_msg_clear(&msg);
	json_decref(doc);
}

static void
test_from_json_version(void **state)
{
	(void)state;
	check_field("v", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("v", json_string("1"), JUKI_R_BAD_HEADER, 1);
	check_field("v", json_real(1.0), JUKI_R_BAD_HEADER, 1);
	check_field("v", json_true(), JUKI_R_BAD_HEADER, 1);
	check_field("v", json_null(), JUKI_R_BAD_HEADER, 1);
	check_field("v", json_integer(2), JUKI_R_BAD_VERSION, 1);
	check_field("v", json_integer(0), JUKI_R_BAD_VERSION, 1);
	check_field("v", json_integer(-1), JUKI_R_BAD_VERSION, 1);
	check_field("v", json_integer(JUKI_PROTO_VERSION), NULL, 1);
}

static void
test_from_json_id(void **state)
{
	(void)state;
	check_field("id", NULL, JUKI_R_BAD_HEADER, 0);
	check_field("id", json_integer(7), JUKI_R_BAD_HEADER, 0);
	check_field("id", json_string(""), JUKI_R_BAD_HEADER, 0);
	check_field("id", json_string("01234567-89AB-7def-8123-456789abcdef"), JUKI_R_BAD_HEADER,
		    0);
	check_field("id", json_string("01234567-89ab-4def-8123-456789abcdef"), JUKI_R_BAD_HEADER,
		    0);
	check_field("id", json_string("01234567-89ab-7def-c123-456789abcdef"), JUKI_R_BAD_HEADER,
		    0);
	check_field("id", json_stringn("01234567-89ab-7def-8123-456789abcdef\0", 37),
		    JUKI_R_BAD_HEADER, 0);
}

static void
test_from_json_id_with_bad_version(void **state)
{
	json_t *doc = json_pack("{s:i, s:s}", "v", 9, "id", "nope");
	const char *reason = NULL;
	struct juki_msg msg;

	(void)state;
	assert_int_equal(juki_msg_from_json(doc, &msg, &reason, NULL, 0), JUKI_EPROTO);
	assert_string_equal(reason, JUKI_R_BAD_VERSION);
	assert_string_equal(msg.id, "");
	json_decref(doc);

	doc = json_pack("{s:i, s:s}", "v", 9, "id", "01234567-89ab-7def-8123-456789abcdef");
	assert_int_equal(juki_msg_from_json(doc, &msg, &reason, NULL, 0), JUKI_EPROTO);
	assert_string_equal(reason, JUKI_R_BAD_VERSION);
	assert_string_equal(msg.id, "01234567-89ab-7def-8123-456789abcdef");
	json_decref(doc);
}

static void
test_from_json_type(void **state)
{
	char t47[JUKI_TYPE_MAX], t48[JUKI_TYPE_MAX + 1];

	(void)state;
	memset(t47, 'z', sizeof(t47) - 1);
	t47[sizeof(t47) - 1] = '\0';
	memset(t48, 'z', sizeof(t48) - 1);
	t48[sizeof(t48) - 1] = '\0';
	check_field("type", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("type", json_integer(5), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_null(), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string(""), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string(t48), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string("Tennyu.notice"), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string("tennyu notice"), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string("tennyu/notice"), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string("t\xc3\xa9"), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_stringn("ack\0x", 5), JUKI_R_BAD_HEADER, 1);
	check_field("type", json_string(t47), NULL, 1);
	check_field("type", json_string("a.b_c-9"), NULL, 1);
	/* Form only: a type nobody handles is still a well-formed header. */
	check_field("type", json_string("no.such.type"), NULL, 1);
}

static void
test_from_json_idents(void **state)
{
	(void)state;
	check_field("from", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("from", json_string("urn:juki:cs:271005"), JUKI_R_BAD_HEADER, 1);
	check_field("from", json_string("cs:271004"), JUKI_R_BAD_HEADER, 1);
	check_field("from", json_string(""), JUKI_R_BAD_HEADER, 1);
	check_field("from", json_integer(271004), JUKI_R_BAD_HEADER, 1);
	check_field("to", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("to", json_string("urn:juki:pref:48"), JUKI_R_BAD_HEADER, 1);
	check_field("to", json_null(), JUKI_R_BAD_HEADER, 1);
	check_field("to", json_string(PREF_TOKYO), NULL, 1);
	check_field("from", json_string("urn:juki:op:cs:271004:tanaka"), NULL, 1);
}

static void
test_from_json_time(void **state)
{
	(void)state;
	check_field("time", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("time", json_string("yesterday"), JUKI_R_BAD_HEADER, 1);
	check_field("time", json_string("2026-13-01T00:00:00.000Z"), JUKI_R_BAD_HEADER, 1);
	check_field("time", json_string("2026-11-25T01:02:03.456+09:00"), JUKI_R_BAD_HEADER, 1);
	check_field("time", json_integer(1795000000000), JUKI_R_BAD_HEADER, 1);
	check_field("time", json_string("2026-11-25T01:02:03Z"), NULL, 1);
	/* A leap second is a time (RFC 3339 §5.6); second 61 is not. */
	check_field("time", json_string("2016-12-31T23:59:60.250Z"), NULL, 1);
	check_field("time", json_string("2016-12-31T23:59:61Z"), JUKI_R_BAD_HEADER, 1);
}

/*
 * A header refusal's detail, word for word: the field and the rule
 * (docs/protocol.md §7), "missing" when the member is absent.
 */
static void
test_from_json_detail(void **state)
{
	static const struct {
		const char *key;
		const char *json; /* the member's new value; NULL removes it */
		const char *reason;
		const char *detail;
	} cases[] = {
	    {"v", NULL, JUKI_R_BAD_HEADER, "v: missing"},
	    {"v", "\"1\"", JUKI_R_BAD_HEADER, "v: not an integer, the protocol version"},
	    {"v", "2", JUKI_R_BAD_VERSION, "v: version 2 not supported (this node speaks 1)"},
	    {"id", NULL, JUKI_R_BAD_HEADER, "id: missing"},
	    {"id", "\"nope\"", JUKI_R_BAD_HEADER, "id: not a UUIDv7 in canonical lower-case form"},
	    {"type", "\"Tennyu\"", JUKI_R_BAD_HEADER,
	     "type: not 1..47 characters of a-z 0-9 . _ -"},
	    {"from", "\"cs:271004\"", JUKI_R_BAD_HEADER, "from: not a juki identity"},
	    {"to", NULL, JUKI_R_BAD_HEADER, "to: missing"},
	    {"to", "\"urn:juki:pref:48\"", JUKI_R_BAD_HEADER, "to: not a juki identity"},
	    {"time", "\"yesterday\"", JUKI_R_BAD_HEADER,
	     "time: not RFC 3339 UTC, YYYY-MM-DDTHH:MM:SS[.fraction]Z"},
	    {"corr", "\"\"", JUKI_R_BAD_HEADER, "corr: neither null nor a UUIDv7"},
	    {"body", "[]", JUKI_R_BAD_HEADER, "body: not an object"},
	    {"body", NULL, JUKI_R_BAD_HEADER, "body: missing"},
	    {"extra", "1", JUKI_R_BAD_HEADER,
	     "extra: not a header member (v id type from to time corr body)"},
	    {"\u00e9\u00e9", "1", JUKI_R_BAD_HEADER,
	     "a top-level member: not a header member (v id type from to time corr body)"},
	};
	char id[JUKI_UUID_LEN + 1], detail[JUKI_DETAIL_MAX];
	const char *reason;
	struct juki_msg msg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = good_doc(id);

		if (cases[i].json == NULL) {
			assert_int_equal(json_object_del(doc, cases[i].key), 0);
		} else {
			assert_int_equal(
			    json_object_set_new(doc, cases[i].key,
						json_loads(cases[i].json, JSON_DECODE_ANY, NULL)),
			    0);
		}
		reason = NULL;
		assert_int_equal(juki_msg_from_json(doc, &msg, &reason, detail, sizeof(detail)),
				 JUKI_EPROTO);
		assert_string_equal(reason, cases[i].reason);
		assert_string_equal(detail, cases[i].detail);
		json_decref(doc);
	}
	/* Not an object; and a short buffer cuts the detail without overflowing. */
	{
		json_t *doc = json_array();

		assert_int_equal(juki_msg_from_json(doc, &msg, &reason, detail, sizeof(detail)),
				 JUKI_EPROTO);
		assert_string_equal(detail, "frame: not a JSON object");
		assert_int_equal(juki_msg_from_json(doc, &msg, &reason, detail, 6), JUKI_EPROTO);
		assert_string_equal(detail, "frame");
		json_decref(doc);
	}
}

static void
test_from_json_corr(void **state)
{
	(void)state;
	check_field("corr", json_integer(5), JUKI_R_BAD_HEADER, 1);
	check_field("corr", json_string(""), JUKI_R_BAD_HEADER, 1);
	check_field("corr", json_string("not-a-uuid"), JUKI_R_BAD_HEADER, 1);
	check_field("corr", json_string("01234567-89ab-4def-8123-456789abcdef"), JUKI_R_BAD_HEADER,
		    1);
	check_field("corr", json_null(), NULL, 1);
	check_field("corr", NULL, NULL, 1);
	check_field("corr", json_string("01234567-89ab-7def-8123-456789abcdef"), NULL, 1);
}

static void
test_from_json_body_and_extras(void **state)
{
	char id[JUKI_UUID_LEN + 1];
	const char *reason = NULL;
	struct juki_msg msg;
	json_t *doc;

	(void)state;
	check_field("body", NULL, JUKI_R_BAD_HEADER, 1);
	check_field("body", json_array(), JUKI_R_BAD_HEADER, 1);
	check_field("body", json_string("x"), JUKI_R_BAD_HEADER, 1);
	check_field("body", json_null(), JUKI_R_BAD_HEADER, 1);
	check_field("body", json_object(), NULL, 1);
	check_field("extra", json_integer(1), JUKI_R_BAD_HEADER, 1);
	check_field("V", json_integer(1), JUKI_R_BAD_HEADER, 1);

	/* Not an object at all. */
	doc = json_array();
	assert_int_equal(juki_msg_from_json(doc, &msg, &reason, NULL, 0), JUKI_EPROTO);
	assert_string_equal(reason, JUKI_R_BAD_JSON);
	assert_string_equal(msg.id, "");
	json_decref(doc);

	/* A NULL reason pointer is allowed. */
	doc = good_doc(id);
	json_object_del(doc, "body");
	assert_int_equal(juki_msg_from_json(doc, &msg, NULL, NULL, 0), JUKI_EPROTO);
	assert_string_equal(msg.id, id);
	json_decref(doc);
}

/* Ack document -> message -> ack, checking the header on the way. */
static int
read_ack(json_t *doc, const char *self, const char *peer, struct juki_ack *ack)
{
	const char *reason = NULL;
	struct juki_msg msg;
	int rc;

	assert_non_null(doc);
	assert_int_equal(juki_msg_from_json(doc, &msg, &reason, NULL, 0), 0);
	assert_string_equal(msg.type, JUKI_MSG_ACK);
	assert_string_equal(msg.from, self);
	assert_string_equal(msg.to, peer);
	rc = juki_ack_parse(&msg, ack);
	if (rc == 0) {
		assert_string_equal(ack->id, msg.id);
		assert_string_equal(ack->corr, msg.corr);
	}
	juki_msg_clear(&msg);
	json_decref(doc);
	return rc;
}

static void
test_ack_round_trip(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	char acked[JUKI_UUID_LEN + 1], *text;
	struct juki_ack ack;
	json_t *doc;

	(void)state;
	assert_int_equal(juki_uuid7(clk.fixed_ms - 1, acked), 0);

	doc = juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_ACCEPTED, "ignored", "ignored",
			   &clk);
	assert_non_null(doc);
	text = json_dumps(json_object_get(doc, "body"), JSON_COMPACT);
	assert_string_equal(text, "{\"status\":\"accepted\"}");
	free(text);
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_int_equal(ack.status, JUKI_ACK_ACCEPTED);
	assert_string_equal(ack.corr, acked);
	assert_true(juki_uuid_valid(ack.id));
	assert_string_not_equal(ack.id, acked);
	assert_string_equal(ack.reason, "");
	assert_string_equal(ack.detail, "");

	doc = juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_DUPLICATE, NULL, NULL, &clk);
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_int_equal(ack.status, JUKI_ACK_DUPLICATE);
	assert_string_equal(ack.corr, acked);

	doc = juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, JUKI_R_CHECK_DIGIT,
			   "jumin_code", &clk);
	assert_non_null(doc);
	text = json_dumps(json_object_get(doc, "body"), JSON_COMPACT);
	assert_string_equal(
	    text, "{\"status\":\"rejected\",\"reason\":\"check-digit\",\"detail\":\"jumin_code\"}");
	free(text);
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_int_equal(ack.status, JUKI_ACK_REJECTED);
	assert_string_equal(ack.corr, acked);
	assert_string_equal(ack.reason, JUKI_R_CHECK_DIGIT);
	assert_string_equal(ack.detail, "jumin_code");

	/* An unreadable message is rejected without a corr, and without detail. */
	doc =
	    juki_ack_new("", CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, JUKI_R_BAD_JSON, NULL, &clk);
	assert_non_null(doc);
	assert_true(json_is_null(json_object_get(doc, "corr")));
	assert_null(json_object_get(json_object_get(doc, "body"), "detail"));
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_string_equal(ack.corr, "");
	assert_string_equal(ack.reason, JUKI_R_BAD_JSON);
	assert_string_equal(ack.detail, "");

	doc = juki_ack_new(NULL, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, JUKI_R_BAD_HEADER, "",
			   &clk);
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_string_equal(ack.corr, "");
}

static void
test_ack_new_refusals(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	char acked[JUKI_UUID_LEN + 1];

	(void)state;
	assert_int_equal(juki_uuid7(clk.fixed_ms, acked), 0);
	assert_null(juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, NULL, NULL, &clk));
	assert_null(juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, "", NULL, &clk));
	assert_null(
	    juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, "Bad Reason", NULL, &clk));
	assert_null(juki_ack_new(acked, "urn:juki:cs:131017", CS_OSAKA, JUKI_ACK_ACCEPTED, NULL,
				 NULL, &clk));
	assert_null(juki_ack_new(acked, CS_CHIYODA, "", JUKI_ACK_ACCEPTED, NULL, NULL, &clk));
	assert_null(juki_ack_new("xyz", CS_CHIYODA, CS_OSAKA, JUKI_ACK_ACCEPTED, NULL, NULL, &clk));
	assert_null(
	    juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, (enum juki_ack_status)3, NULL, NULL, &clk));
	/* Invalid UTF-8 cannot become a JSON string. */
	assert_null(juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, JUKI_R_BAD_FIELD,
				 "\xff", &clk));
}

static void
test_ack_detail_truncated(void **state)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	char acked[JUKI_UUID_LEN + 1], long_detail[1001];
	struct juki_msg msg;
	struct juki_ack ack;
	json_t *doc, *body;
	size_t n;

	(void)state;
	assert_int_equal(juki_uuid7(clk.fixed_ms, acked), 0);
	/* 500 two-byte characters: 255 bytes would split one, so 254 are kept. */
	for (int i = 0; i < 500; i++) {
		memcpy(long_detail + 2 * i, "\xc3\xa9", 2);
	}
	long_detail[1000] = '\0';
	doc = juki_ack_new(acked, CS_CHIYODA, CS_OSAKA, JUKI_ACK_REJECTED, JUKI_R_BAD_FIELD,
			   long_detail, &clk);
	assert_non_null(doc);
	n = json_string_length(json_object_get(json_object_get(doc, "body"), "detail"));
	assert_int_equal(n, JUKI_DETAIL_MAX - 2);
	assert_int_equal(read_ack(doc, CS_CHIYODA, CS_OSAKA, &ack), 0);
	assert_int_equal(strlen(ack.detail), JUKI_DETAIL_MAX - 2);
	assert_memory_equal(ack.detail, long_detail, JUKI_DETAIL_MAX - 2);

	/* The receiver bounds a long detail the same way, whoever sent it. */
	body = json_pack("{s:s, s:s, s:s}", "status", "rejected", "reason", "invalid-field",
			 "detail", long_detail);
	assert_int_equal(juki_msg_init(&msg, JUKI_MSG_ACK, CS_CHIYODA, CS_OSAKA, acked, body, &clk),
			 0);
	assert_int_equal(juki_ack_parse(&msg, &ack), 0);
	assert_int_equal(strlen(ack.detail), JUKI_DETAIL_MAX - 2);
	juki_msg_clear(&msg);

	/* A one-byte text fits its 255 bytes whole. */
	memset(long_detail, 'd', 1000);
	body = json_pack("{s:s, s:s, s:s}", "status", "rejected", "reason", "invalid-field",
			 "detail", long_detail);
	assert_int_equal(juki_msg_init(&msg, JUKI_MSG_ACK, CS_CHIYODA, CS_OSAKA, acked, body, &clk),
			 0);
	assert_int_equal(juki_ack_parse(&msg, &ack), 0);
	assert_int_equal(strlen(ack.detail), JUKI_DETAIL_MAX - 1);
	juki_msg_clear(&msg);
}

/* Build an ack message with body and corr as given; return juki_ack_parse()'s verdict. */
static int
parse_body(const char *type, const char *corr, json_t *body)
{
	struct juki_clock clk = {.fixed_ms = wire_ms()};
	struct juki_msg msg;
	struct juki_ack ack;
	int rc;

	assert_non_null(body);
	assert_int_equal(juki_msg_init(&msg, type, CS_CHIYODA, CS_OSAKA, corr, body, &clk), 0);
	memset(&ack, 0x5a, sizeof(ack));
	rc = juki_ack_parse(&msg, &ack);
	if (rc != 0) {
		assert_string_equal(ack.reason, "");
		assert_string_equal(ack.corr, "");
	}
	juki_msg_clear(&msg);
	return rc;
}

static void
test_ack_parse_refusals(void **state)
{
	const char *corr = "01234567-89ab-7def-8123-456789abcdef";
	char r47[JUKI_REASON_MAX], r48[JUKI_REASON_MAX + 1];

	(void)state;
	memset(r47, 'r', sizeof(r47) - 1);
	r47[sizeof(r47) - 1] = '\0';
	memset(r48, 'r', sizeof(r48) - 1);
	r48[sizeof(r48) - 1] = '\0';
	assert_int_equal(parse_body("ack", corr, json_pack("{s:s}", "status", "accepted")), 0);
	assert_int_equal(parse_body("ack", corr, json_pack("{s:s}", "status", "ok")), JUKI_EPROTO);
	assert_int_equal(parse_body("ack", corr, json_pack("{s:s}", "status", "Accepted")),
			 JUKI_EPROTO);
	assert_int_equal(parse_body("ack", corr, json_pack("{s:i}", "status", 0)), JUKI_EPROTO);
	assert_int_equal(parse_body("ack", corr, json_object()), JUKI_EPROTO);
	assert_int_equal(
	    parse_body("tennyu.notice", corr, json_pack("{s:s}", "status", "accepted")),
	    JUKI_EPROTO);
	/* Accepting nothing in particular would let the sender drop the wrong message. */
	assert_int_equal(parse_body("ack", NULL, json_pack("{s:s}", "status", "accepted")),
			 JUKI_EPROTO);
	assert_int_equal(parse_body("ack", NULL, json_pack("{s:s}", "status", "duplicate")),
			 JUKI_EPROTO);

	assert_int_equal(parse_body("ack", corr, json_pack("{s:s}", "status", "rejected")),
			 JUKI_EPROTO);
	assert_int_equal(
	    parse_body("ack", corr, json_pack("{s:s, s:n}", "status", "rejected", "reason")),
	    JUKI_EPROTO);
	assert_int_equal(
	    parse_body("ack", corr, json_pack("{s:s, s:s}", "status", "rejected", "reason", "")),
	    JUKI_EPROTO);
	assert_int_equal(
	    parse_body("ack", corr,
		       json_pack("{s:s, s:s}", "status", "rejected", "reason", "Bad_Reason")),
	    JUKI_EPROTO);
	assert_int_equal(
	    parse_body("ack", corr, json_pack("{s:s, s:s}", "status", "rejected", "reason", r48)),
	    JUKI_EPROTO);
	assert_int_equal(
	    parse_body("ack", corr, json_pack("{s:s, s:s}", "status", "rejected", "reason", r47)),
	    0);
	assert_int_equal(parse_body("ack", corr,
				    json_pack("{s:s, s:s, s:i}", "status", "rejected", "reason",
					      "invalid-field", "detail", 3)),
			 JUKI_EPROTO);
	assert_int_equal(parse_body("ack", NULL,
				    json_pack("{s:s, s:s, s:n}", "status", "rejected", "reason",
					      "unknown-type", "detail")),
			 0);
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(juki_ack_status_name(JUKI_ACK_ACCEPTED), "accepted");
	assert_string_equal(juki_ack_status_name(JUKI_ACK_DUPLICATE), "duplicate");
	assert_string_equal(juki_ack_status_name(JUKI_ACK_REJECTED), "rejected");
	assert_string_equal(juki_ack_status_name((enum juki_ack_status)42), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid7_form),
	    cmocka_unit_test(test_uuid7_time_prefix),
	    cmocka_unit_test(test_uuid7_ordering),
	    cmocka_unit_test(test_uuid7_unique),
	    cmocka_unit_test(test_uuid7_from_tail),
	    cmocka_unit_test(test_uuid_valid),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_round_trip_frame_no_corr),
	    cmocka_unit_test(test_init_refusals),
	    cmocka_unit_test(test_from_json_version),
	    cmocka_unit_test(test_from_json_id),
	    cmocka_unit_test(test_from_json_id_with_bad_version),
	    cmocka_unit_test(test_from_json_type),
	    cmocka_unit_test(test_from_json_idents),
	    cmocka_unit_test(test_from_json_time),
	    cmocka_unit_test(test_from_json_detail),
	    cmocka_unit_test(test_from_json_corr),
	    cmocka_unit_test(test_from_json_body_and_extras),
	    cmocka_unit_test(test_ack_round_trip),
	    cmocka_unit_test(test_ack_new_refusals),
	    cmocka_unit_test(test_ack_detail_truncated),
	    cmocka_unit_test(test_ack_parse_refusals),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
