#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "juki/base/error.h"
#include "juki/wire/frame.h"

#define SMALL_MAX 16

static void
add_header(struct evbuffer *buf, uint32_t len)
{
	unsigned char h[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
			      (unsigned char)(len >> 8), (unsigned char)len};

	assert_int_equal(evbuffer_add(buf, h, sizeof(h)), 0);
}

static void
add_frame(struct evbuffer *buf, const char *payload, size_t len)
{
	add_header(buf, (uint32_t)len);
	assert_int_equal(evbuffer_add(buf, payload, len), 0);
}

/* The whole content of buf as a NUL-terminated copy, buf untouched. */
static char *
contents(struct evbuffer *buf, size_t *len)
{
	char *s;

	*len = evbuffer_get_length(buf);
	s = malloc(*len + 1);
	assert_non_null(s);
	assert_int_equal(evbuffer_copyout(buf, s, *len), (ev_ssize_t)*len);
	s[*len] = '\0';
	return s;
}

static json_t *
sample_doc(void)
{
	/* Keys deliberately not in sorted order: the encoder must keep insertion order. */
	json_t *doc = json_pack("{s:i, s:s, s:{s:[i, b, n, s]}}", "v", 1, "type", "tennyu.notice",
				"body", "a", 1, 1, "\xc3\xa9");

	assert_non_null(doc);
	return doc;
}

static void
test_encode_exact(void **state)
{
	static const char expect[] = "{\"v\":1,\"type\":\"tennyu.notice\","
				     "\"body\":{\"a\":[1,true,null,\"\xc3\xa9\"]}}";
	struct evbuffer *out = evbuffer_new();
	json_t *doc = sample_doc();
	size_t plen = sizeof(expect) - 1, len;
	unsigned char *bytes;

	(void)state;
	assert_int_equal(juki_frame_push(out, doc, JUKI_FRAME_MAX_DEFAULT), 0);
	assert_int_equal(evbuffer_get_length(out), 4 + plen);
	bytes = (unsigned char *)contents(out, &len);
	assert_int_equal(bytes[0], (plen >> 24) & 0xff);
	assert_int_equal(bytes[1], (plen >> 16) & 0xff);
	assert_int_equal(bytes[2], (plen >> 8) & 0xff);
	assert_int_equal(bytes[3], plen & 0xff);
	assert_memory_equal(bytes + 4, expect, plen);
	free(bytes);

	/* The raw form frames the same bytes. */
	evbuffer_drain(out, evbuffer_get_length(out));
	assert_int_equal(juki_frame_push_raw(out, "{}", 2, JUKI_FRAME_MAX_DEFAULT), 0);
	bytes = (unsigned char *)contents(out, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(bytes, "\0\0\0\2{}", 6);
	free(bytes);

	json_decref(doc);
	evbuffer_free(out);
}

static void
test_pull_byte_by_byte(void **state)
{
	struct evbuffer *wire = evbuffer_new(), *in = evbuffer_new();
	json_t *doc = sample_doc(), *got = NULL;
	size_t len;
	char *bytes;

	(void)state;
	assert_int_equal(juki_frame_push(wire, doc, JUKI_FRAME_MAX_DEFAULT), 0);
	bytes = contents(wire, &len);
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(evbuffer_add(in, bytes + i, 1), 0);
		if (i + 1 < len) {
			assert_int_equal(juki_frame_pull(in, JUKI_FRAME_MAX_DEFAULT, &got), 0);
			assert_null(got);
			/* Nothing taken while incomplete. */
			assert_int_equal(evbuffer_get_length(in), i + 1);
		}
	}
	assert_int_equal(juki_frame_pull(in, JUKI_FRAME_MAX_DEFAULT, &got), 1);
	assert_non_null(got);
	assert_true(json_equal(got, doc));
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(json_object_size(got), 3);
	json_decref(got);
	free(bytes);
	json_decref(doc);
	evbuffer_free(in);
	evbuffer_free(wire);
}

static void
test_two_frames(void **state)
{
	struct evbuffer *in = evbuffer_new();
	json_t *a = json_pack("{s:s}", "n", "first");
	json_t *b = json_pack("{s:s}", "n", "second");
	json_t *got = NULL;
	char *payload = NULL;
	size_t len = 99;

	(void)state;
	assert_int_equal(juki_frame_push(in, a, SMALL_MAX), 0);
	assert_int_equal(juki_frame_push(in, b, 64), 0);
	assert_int_equal(juki_frame_pull(in, 64, &got), 1);
	assert_true(json_equal(got, a));
	json_decref(got);
	assert_int_equal(juki_frame_pull_raw(in, 64, &payload, &len), 1);
	assert_int_equal(len, strlen("{\"n\":\"second\"}"));
	assert_string_equal(payload, "{\"n\":\"second\"}");
	free(payload);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(juki_frame_pull(in, 64, &got), 0);
	assert_null(got);
	assert_int_equal(juki_frame_pull_raw(in, 64, &payload, &len), 0);
	assert_null(payload);
	assert_int_equal(len, 0);
	json_decref(a);
	json_decref(b);
	evbuffer_free(in);
}

static void
test_zero_length(void **state)
{
	struct evbuffer *in = evbuffer_new();
	json_t *got = NULL;
	char *payload = NULL;
	size_t len;

	(void)state;
	/* Three header bytes decide nothing yet. */
	assert_int_equal(evbuffer_add(in, "\0\0\0", 3), 0);
	assert_int_equal(juki_frame_pull_raw(in, SMALL_MAX, &payload, &len), 0);
	assert_int_equal(evbuffer_add(in, "\0{}", 3), 0);
	assert_int_equal(juki_frame_pull_raw(in, SMALL_MAX, &payload, &len), JUKI_EFRAME);
	assert_null(payload);
	assert_int_equal(evbuffer_get_length(in), 6);
	assert_int_equal(juki_frame_pull(in, SMALL_MAX, &got), JUKI_EFRAME);
	assert_null(got);
	assert_int_equal(evbuffer_get_length(in), 6);
	evbuffer_free(in);
}

static void
test_too_big_before_payload(void **state)
{
	struct evbuffer *in = evbuffer_new();
	json_t *got = NULL;
	char *payload = NULL, *bytes;
	size_t len;

	(void)state;
	add_header(in, SMALL_MAX + 1);
	assert_int_equal(juki_frame_pull_raw(in, SMALL_MAX, &payload, &len), JUKI_ETOOBIG);
	assert_null(payload);
	assert_int_equal(juki_frame_pull(in, SMALL_MAX, &got), JUKI_ETOOBIG);
	assert_null(got);
	bytes = contents(in, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(bytes, "\0\0\0\x11", 4);
	free(bytes);
	evbuffer_drain(in, 4);

	/* The default limit, and the largest length a header can say. */
	add_header(in, JUKI_FRAME_MAX_DEFAULT + 1);
	assert_int_equal(juki_frame_pull_raw(in, JUKI_FRAME_MAX_DEFAULT, &payload, &len),
			 JUKI_ETOOBIG);
	assert_int_equal(evbuffer_get_length(in), 4);
	evbuffer_drain(in, 4);
	add_header(in, UINT32_MAX);
	assert_int_equal(juki_frame_pull_raw(in, JUKI_FRAME_MAX_DEFAULT, &payload, &len),
			 JUKI_ETOOBIG);
	assert_int_equal(evbuffer_get_length(in), 4);
	evbuffer_free(in);
}

static void
test_exactly_max(void **state)
{
	struct evbuffer *in = evbuffer_new();
	const size_t max = JUKI_FRAME_MAX_DEFAULT;
	/* {"p":"aaa..."} is 8 bytes plus the string. */
	char *text = malloc(max + 2);
	json_t *doc, *got = NULL;
	char *payload = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(text);
	memset(text, 'a', max - 8);
	text[max - 8] = '\0';
	doc = json_pack("{s:s}", "p", text);
	assert_non_null(doc);
	assert_int_equal(juki_frame_push(in, doc, max), 0);
	assert_int_equal(evbuffer_get_length(in), 4 + max);
	assert_int_equal(juki_frame_pull(in, max, &got), 1);
	assert_true(json_equal(got, doc));
	json_decref(got);
	/* One byte less of limit and it is refused on both sides. */
	assert_int_equal(juki_frame_push(in, doc, max - 1), JUKI_ETOOBIG);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(juki_frame_push(in, doc, max), 0);
	assert_int_equal(juki_frame_pull(in, max - 1, &got), JUKI_ETOOBIG);
	assert_int_equal(evbuffer_get_length(in), 4 + max);
	evbuffer_drain(in, 4 + max);

	memset(text, 'b', max + 1);
	assert_int_equal(juki_frame_push_raw(in, text, max, max), 0);
	assert_int_equal(juki_frame_push_raw(in, text, max + 1, max), JUKI_ETOOBIG);
	assert_int_equal(evbuffer_get_length(in), 4 + max);
	assert_int_equal(juki_frame_pull_raw(in, max, &payload, &len), 1);
	assert_int_equal(len, max);
	assert_int_equal(payload[max - 1], 'b');
	assert_int_equal(payload[max], '\0');
	assert_int_equal(evbuffer_get_length(in), 0);
	free(payload);
	free(text);
	json_decref(doc);
	evbuffer_free(in);
}

/* Each bad payload is consumed, reported, and the frame after it still reads. */
static void
check_bad_json(const char *payload, size_t plen)
{
	struct evbuffer *in = evbuffer_new();
	json_t *got = NULL;

	add_frame(in, payload, plen);
	add_frame(in, "{\"ok\":true}", 11);
	assert_int_equal(juki_frame_pull(in, 64, &got), JUKI_EJSON);
	assert_null(got);
	assert_int_equal(evbuffer_get_length(in), 4 + 11);
	assert_int_equal(juki_frame_pull(in, 64, &got), 1);
	assert_true(json_is_true(json_object_get(got, "ok")));
	json_decref(got);
	evbuffer_free(in);
}

#define BAD(lit) check_bad_json((lit), sizeof(lit) - 1)

static void
test_invalid_json(void **state)
{
	(void)state;
	BAD("{\"a\":");
	BAD("not json");
	BAD("{} {}");
	BAD("{\"a\":\"\xff\"}");
}

static void
test_not_object(void **state)
{
	(void)state;
	BAD("[1,2]");
	BAD("[]");
	BAD("\"s\"");
	BAD("1");
	BAD("null");
}

static void
test_duplicate_keys(void **state)
{
	(void)state;
	BAD("{\"a\":1,\"a\":2}");
	BAD("{\"b\":{\"x\":1,\"x\":1}}");
}

static void
test_nul_refused(void **state)
{
	(void)state;
	BAD("{\"a\":\"\\u0000\"}");
	BAD("{\"a\":\"x\0y\"}");
	BAD("{}\0");
}

static void
test_push_refusals(void **state)
{
	struct evbuffer *out = evbuffer_new();
	/* {"k":"0123456789"} is 18 bytes. */
	json_t *doc = json_pack("{s:s}", "k", "0123456789");
	json_t *arr = json_array();
	char *bytes;
	size_t len;

	(void)state;
	assert_int_equal(evbuffer_add(out, "abc", 3), 0);
	assert_int_equal(juki_frame_push(out, doc, 17), JUKI_ETOOBIG);
	assert_int_equal(juki_frame_push_raw(out, "0123456789", 10, 9), JUKI_ETOOBIG);
	assert_int_equal(juki_frame_push(out, arr, 64), JUKI_EINVAL);
	assert_int_equal(juki_frame_push(out, NULL, 64), JUKI_EINVAL);
	assert_int_equal(juki_frame_push_raw(out, "", 0, 64), JUKI_EINVAL);
	bytes = contents(out, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(bytes, "abc", 3);
	free(bytes);

	assert_int_equal(juki_frame_push(out, doc, 18), 0);
	assert_int_equal(evbuffer_get_length(out), 3 + 4 + 18);

	/* A buffer that takes no more data: ENOMEM, and still nothing partial. */
	evbuffer_freeze(out, 0);
	assert_int_equal(juki_frame_push(out, doc, 64), JUKI_ENOMEM);
	assert_int_equal(juki_frame_push_raw(out, "{}", 2, 64), JUKI_ENOMEM);
	assert_int_equal(evbuffer_get_length(out), 3 + 4 + 18);

	json_decref(arr);
	json_decref(doc);
	evbuffer_free(out);
}

static void
test_pull_frozen(void **state)
{
	struct evbuffer *in = evbuffer_new();
	char *payload = NULL;
	size_t len;

	(void)state;
	add_frame(in, "{}", 2);
	evbuffer_freeze(in, 1);
	assert_int_equal(juki_frame_pull_raw(in, 64, &payload, &len), JUKI_EIO);
	assert_null(payload);
	assert_int_equal(evbuffer_get_length(in), 6);
	evbuffer_unfreeze(in, 1);
	assert_int_equal(juki_frame_pull_raw(in, 64, &payload, &len), 1);
	assert_string_equal(payload, "{}");
	free(payload);
	evbuffer_free(in);
}

static int
want_batch(const char *type, void *arg)
{
	(void)arg;
	return strcmp(type, "honnin.batch") == 0;
}

#define HEAD "{\"v\":1,\"id\":\"x\",\"type\":\"honnin.batch\",\"body\":"

/* split() of HEAD body "}": 1 with the body's span, or 0; a split always parses whole. */
static int
split_body(const char *body)
{
	size_t n = strlen(HEAD) + strlen(body) + 1, off, blen;
	char *frame = malloc(n + 1);
	json_t *doc = NULL, *whole = NULL;
	int rc;

	snprintf(frame, n + 1, "%s%s}", HEAD, body);
	rc = juki_frame_split(frame, n, want_batch, NULL, &doc, &off, &blen);
	if (rc == 1) {
		assert_int_equal(off, strlen(HEAD));
		assert_int_equal(blen, strlen(body));
		assert_int_equal(json_object_size(json_object_get(doc, "body")), 0);
		assert_string_equal(json_string_value(json_object_get(doc, "type")),
				    "honnin.batch");
		assert_int_equal(juki_frame_parse(frame, n, &whole), 1);
		json_decref(whole);
	} else {
		assert_null(doc);
	}
	json_decref(doc);
	free(frame);
	return rc;
}

/* The body of a bulk message read without a tree: only what jansson takes. */
static void
test_split(void **state)
{
	static const char *const refused[] = {
	    "{\"a\":\"\xc0\x80\"}",         /* overlong */
	    "{\"a\":\"\xed\xa0\x80\"}",     /* a surrogate in UTF-8 */
	    "{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
	    "{\"a\":\"\xe3\x81\"}",         /* cut short */
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\udc00\\ud800\"}",
	    "{\"a\":\"\\x\"}",
	    "{\"a\":\"a\tb\"}",
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":01}",
	    "{\"a\":-}",
	    "{\"a\":[1,]}",
	    "{\"a\":{\"b\":1,}}",
	    "{\"a\":tru}",
	    "{\"a\":1 2}",
	    "{\"a\":\"b\"",
	    "[1]",
	    "\"s\"",
	};
	/* Valid, but left to jansson: reals, long integers, escaped keys, deep nesting. */
	static const char *const left[] = {
	    "{\"a\":1.5}",
	    "{\"a\":1e3}",
	    "{\"a\":1234567890123456789}",
	    "{\"\\u0061\":1}",
	    "{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
	};
	static const char *const taken[] = {
	    "{}",
	    "{\"records\":[{\"a\":\"\xe5\xb1\xb1\xe7\x94\xb0\",\"b\":-0,\"c\":[true,false,null]}]}",
	    "{ \"a\" :\t[ 1 ,\r\n\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\" ] }",
	    "{\"a\":\"\xf0\x9f\x98\x80\",\"b\":123456789012345678}",
	};
	json_t *doc;
	size_t off, len;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(split_body(refused[i]), 0);
	}
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
		assert_int_equal(split_body(left[i]), 0);
	}
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		assert_int_equal(split_body(taken[i]), 1);
	}
	/* Another type, a body before the type, a header jansson refuses: not split. */
	assert_int_equal(juki_frame_split("{\"type\":\"ack\",\"body\":{}}", 24, want_batch, NULL,
					  &doc, &off, &len),
			 0);
	assert_int_equal(juki_frame_split("{\"body\":{},\"type\":\"honnin.batch\"}", 33, want_batch,
					  NULL, &doc, &off, &len),
			 0);
	assert_int_equal(split_body("{},\"type\":\"x\""), 0);
	assert_int_equal(split_body("{},\"body\":{}"), 0);
	assert_int_equal(split_body("{}} "), 0);
}

/* Random damage to a valid frame: whatever split() takes, jansson takes too. */
static void
test_split_damaged(void **state)
{
	static const char frame[] =
	    HEAD "{\"records\":[{\"code\":\"24727059608\",\"version\":3,\"person\":{\"name\":"
		 "\"\xe5\xb1\xb1\xe7\x94\xb0 "
		 "\xe8\x8a\xb1\xe5\xad\x90\",\"sex\":2,\"k\":\"a\\\"b\\u00e9\"},"
		 "\"x\":[true,false,null,-12]}]}}";
	static const unsigned char bytes[] = {'"',  '\\', '{',  '}',  '[',  ']',  ',',  ':',
					      '0',  '1',  'u',  'e',  '.',  0x00, 0x1f, 0x80,
					      0xc0, 0xe3, 0xed, 0xf4, 0xff, ' ',  'n',  '-'};
	char buf[sizeof(frame)];
	unsigned seed = 2026;
	size_t split = 0;

	(void)state;
	for (int round = 0; round < 200000; round++) {
		json_t *doc = NULL, *whole = NULL;
		size_t off, len, n = sizeof(frame) - 1;
		int rc;

		memcpy(buf, frame, sizeof(frame));
		for (int k = 0; k < 1 + round % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[strlen(HEAD) + (seed >> 8) % (n - strlen(HEAD))] =
			    (char)bytes[(seed >> 20) % sizeof(bytes)];
		}
		rc = juki_frame_split(buf, n, want_batch, NULL, &doc, &off, &len);
		if (rc == 1) {
			split++;
			assert_int_equal(juki_frame_parse(buf, n, &whole), 1);
			json_decref(whole);
		}
		json_decref(doc);
	}
	/* Some damage leaves valid JSON (a digit for a digit): those were taken. */
	assert_true(split > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_exact),
	    cmocka_unit_test(test_pull_byte_by_byte),
	    cmocka_unit_test(test_two_frames),
	    cmocka_unit_test(test_zero_length),
	    cmocka_unit_test(test_too_big_before_payload),
	    cmocka_unit_test(test_exactly_max),
	    cmocka_unit_test(test_invalid_json),
	    cmocka_unit_test(test_not_object),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_nul_refused),
	    cmocka_unit_test(test_push_refusals),
	    cmocka_unit_test(test_pull_frozen),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_split_damaged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
