#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"

/* 2026-11-25T01:02:03.456Z */
#define T0 1795568523456LL

static const char *
str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static json_int_t
num(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void
test_empty(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(4, &clock);
	json_t *doc;

	(void)state;
	assert_non_null(a);
	assert_int_equal(juki_alerts_count(a, NULL), 0);
	assert_int_equal(juki_alerts_count(a, "flood"), 0);
	doc = juki_alerts_json(a, 100);
	assert_non_null(doc);
	assert_int_equal(json_object_size(doc), 3);
	assert_int_equal(num(doc, "total"), 0);
	assert_true(json_is_object(json_object_get(doc, "counts")));
	assert_int_equal(json_object_size(json_object_get(doc, "counts")), 0);
	assert_true(json_is_array(json_object_get(doc, "recent")));
	assert_int_equal(json_array_size(json_object_get(doc, "recent")), 0);
	json_decref(doc);
	juki_alerts_free(a);
	juki_alerts_free(NULL);
}

static void
test_record_shape(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(8, &clock);
	json_t *doc, *recent, *r;
	char when[32];

	(void)state;
	juki_alert(a, "policy-denied", "urn:juki:cs:131016", "127.0.0.1:4000", "deny %s: %d",
		   "policy", 42);
	clock.fixed_ms = T0 + 1000;
	juki_alert(a, "not-tls", NULL, NULL, "plain TCP");
	doc = juki_alerts_json(a, 10);
	assert_non_null(doc);
	assert_int_equal(num(doc, "total"), 2);
	recent = json_object_get(doc, "recent");
	assert_int_equal(json_array_size(recent), 2);

	r = json_array_get(recent, 0);
	assert_int_equal(json_object_size(r), 6);
	assert_int_equal(num(r, "seq"), 1);
	juki_clock_format(T0, when, sizeof(when));
	assert_string_equal(str(r, "time"), when);
	assert_string_equal(str(r, "time"), "2026-11-25T01:02:03.456Z");
	assert_string_equal(str(r, "code"), "policy-denied");
	assert_string_equal(str(r, "peer"), "urn:juki:cs:131016");
	assert_string_equal(str(r, "addr"), "127.0.0.1:4000");
	assert_string_equal(str(r, "detail"), "deny policy: 42");

	/* Unknown peer and address are null, not "" and not missing. */
	r = json_array_get(recent, 1);
	assert_int_equal(num(r, "seq"), 2);
	juki_clock_format(T0 + 1000, when, sizeof(when));
	assert_string_equal(str(r, "time"), when);
	assert_true(json_is_null(json_object_get(r, "peer")));
	assert_true(json_is_null(json_object_get(r, "addr")));
	assert_string_equal(str(r, "detail"), "plain TCP");
	json_decref(doc);
	juki_alerts_free(a);
}

static void
test_counts_per_code(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(2, &clock);
	json_t *doc, *counts;

	(void)state;
	for (int i = 0; i < 5; i++) {
		juki_alert(a, "flood", NULL, "10.0.0.1:1", "n=%d", i);
	}
	for (int i = 0; i < 3; i++) {
		juki_alert(a, "unknown-certificate", NULL, NULL, "n=%d", i);
	}
	juki_alert(a, "revoked-certificate", "urn:juki:cs:271004", NULL, "once");
	/* The ring keeps 2, the counts keep everything. */
	assert_int_equal(juki_alerts_count(a, NULL), 9);
	assert_int_equal(juki_alerts_count(a, "flood"), 5);
	assert_int_equal(juki_alerts_count(a, "unknown-certificate"), 3);
	assert_int_equal(juki_alerts_count(a, "revoked-certificate"), 1);
	assert_int_equal(juki_alerts_count(a, "revoked"), 0);
	assert_int_equal(juki_alerts_count(a, "FLOOD"), 0);

	doc = juki_alerts_json(a, 100);
	counts = json_object_get(doc, "counts");
	assert_int_equal(json_object_size(counts), 3);
	assert_int_equal(num(counts, "flood"), 5);
	assert_int_equal(num(counts, "unknown-certificate"), 3);
	assert_int_equal(num(counts, "revoked-certificate"), 1);
	assert_int_equal(num(doc, "total"), 9);
	assert_int_equal(json_array_size(json_object_get(doc, "recent")), 2);
	json_decref(doc);
	juki_alerts_free(a);
}

static void
test_ring_wraps(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(3, &clock);
	json_t *doc, *recent;
	char detail[16];

	(void)state;
	for (int i = 1; i <= 10; i++) {
		clock.fixed_ms = T0 + i;
		juki_alert(a, i % 2 ? "odd" : "even", NULL, NULL, "alert %d", i);
		doc = juki_alerts_json(a, 100);
		recent = json_object_get(doc, "recent");
		/* Always the newest min(i, 3), oldest first, seq consecutive. */
		assert_int_equal(json_array_size(recent), i < 3 ? i : 3);
		for (size_t k = 0; k < json_array_size(recent); k++) {
			const json_t *r = json_array_get(recent, k);
			int seq = i - (int)json_array_size(recent) + 1 + (int)k;

			assert_int_equal(num(r, "seq"), seq);
			snprintf(detail, sizeof(detail), "alert %d", seq);
			assert_string_equal(str(r, "detail"), detail);
			assert_string_equal(str(r, "code"), seq % 2 ? "odd" : "even");
		}
		json_decref(doc);
	}
	assert_int_equal(juki_alerts_count(a, "odd"), 5);
	assert_int_equal(juki_alerts_count(a, "even"), 5);
	juki_alerts_free(a);
}

static void
test_max(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(5, &clock);
	json_t *doc, *recent;

	(void)state;
	for (int i = 1; i <= 8; i++) {
		juki_alert(a, "flood", NULL, NULL, "%d", i);
	}
	/* max 0: counts only (what "status" embeds). */
	doc = juki_alerts_json(a, 0);
	assert_int_equal(json_array_size(json_object_get(doc, "recent")), 0);
	assert_int_equal(num(doc, "total"), 8);
	assert_int_equal(num(json_object_get(doc, "counts"), "flood"), 8);
	json_decref(doc);

	/* max below what is kept: the newest max. */
	doc = juki_alerts_json(a, 2);
	recent = json_object_get(doc, "recent");
	assert_int_equal(json_array_size(recent), 2);
	assert_int_equal(num(json_array_get(recent, 0), "seq"), 7);
	assert_int_equal(num(json_array_get(recent, 1), "seq"), 8);
	json_decref(doc);

	/* max above the capacity: what the ring holds. */
	doc = juki_alerts_json(a, 1000);
	recent = json_object_get(doc, "recent");
	assert_int_equal(json_array_size(recent), 5);
	assert_int_equal(num(json_array_get(recent, 0), "seq"), 4);
	assert_int_equal(num(json_array_get(recent, 4), "seq"), 8);
	json_decref(doc);

	doc = juki_alerts_json(a, SIZE_MAX);
	assert_int_equal(json_array_size(json_object_get(doc, "recent")), 5);
	json_decref(doc);
	juki_alerts_free(a);
}

static void
test_capacity_zero(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(0, &clock);
	json_t *doc, *recent;

	(void)state;
	assert_non_null(a);
	juki_alert(a, "a", NULL, NULL, "first");
	juki_alert(a, "b", NULL, NULL, "second");
	doc = juki_alerts_json(a, 10);
	recent = json_object_get(doc, "recent");
	assert_int_equal(json_array_size(recent), 1);
	assert_string_equal(str(json_array_get(recent, 0), "detail"), "second");
	assert_int_equal(num(doc, "total"), 2);
	json_decref(doc);
	juki_alerts_free(a);
}

static void
test_long_fields_cut(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(2, &clock);
	char code[100], peer[300], addr[200], detail[1000];
	json_t *doc, *r;

	(void)state;
	memset(code, 'c', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	memset(peer, 'p', sizeof(peer) - 1);
	peer[sizeof(peer) - 1] = '\0';
	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	memset(detail, 'd', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	juki_alert(a, code, peer, addr, "%s", detail);
	doc = juki_alerts_json(a, 1);
	r = json_array_get(json_object_get(doc, "recent"), 0);
	/* Bounded records: each field is cut, never overflowing. */
	assert_int_equal(strlen(str(r, "code")), 31);
	assert_int_equal(strlen(str(r, "peer")), 127);
	assert_int_equal(strlen(str(r, "addr")), 63);
	assert_int_equal(strlen(str(r, "detail")), 255);
	assert_int_equal(strncmp(str(r, "code"), code, 31), 0);
	/* The count is kept under the code as recorded. */
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(doc, "counts"), str(r, "code"))), 1);
	json_decref(doc);
	juki_alerts_free(a);
}

static void
test_code_table_full(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(4, &clock);
	json_t *doc, *counts;
	char code[32];

	(void)state;
	/* 64 distinct codes are counted by name; more go to "other". */
	for (int i = 0; i < 64; i++) {
		snprintf(code, sizeof(code), "code-%02d", i);
		juki_alert(a, code, NULL, NULL, "x");
	}
	juki_alert(a, "code-00", NULL, NULL, "again");
	juki_alert(a, "late-1", NULL, NULL, "x");
	juki_alert(a, "late-2", NULL, NULL, "x");
	juki_alert(a, "late-1", NULL, NULL, "x");
	assert_int_equal(juki_alerts_count(a, NULL), 68);
	assert_int_equal(juki_alerts_count(a, "code-00"), 2);
	assert_int_equal(juki_alerts_count(a, "code-63"), 1);
	doc = juki_alerts_json(a, 0);
	counts = json_object_get(doc, "counts");
	assert_int_equal(json_object_size(counts), 65);
	assert_int_equal(num(counts, "other"), 3);
	assert_int_equal(num(counts, "code-00"), 2);
	assert_null(json_object_get(counts, "late-1"));
	json_decref(doc);
	juki_alerts_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_record_shape),
	    cmocka_unit_test(test_counts_per_code),
	    cmocka_unit_test(test_ring_wraps),
	    cmocka_unit_test(test_max),
	    cmocka_unit_test(test_capacity_zero),
	    cmocka_unit_test(test_long_fields_cut),
	    cmocka_unit_test(test_code_table_full),
	};

	/* Every alert is also a log line; the records are what is checked here. */
	log_init("test_alert", JUKI_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
