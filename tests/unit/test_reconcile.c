/*
 * Narrowing down a difference in a day's update counts (docs/protocol.md
 * §10.7): digests over ranges of codes, read from the store, and the rounds
 * that find the one record a receiver lacks among thousands.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/node/reconcile.h"
#include "juki/records/honnin.h"
#include "juki/store/purge.h"

#include "helpers.h"

#define SENDER "urn:juki:cs:131016"
#define DAY    "2026-11-25"
#define N      3000

struct fx {
	char dir[64];
	struct juki_store *sent, *recv; /* the sender's store, the receiver's */
	char codes[N][JUKI_JUMIN_CODE_LEN + 1];
};

static void
open_store(struct fx *f, const char *name, struct juki_store **store)
{
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/%s.db", f->dir, name);
	assert_int_equal(juki_store_open(path, &juki_honnin_schema, 1, store, err, sizeof(err)), 0);
}

/* Code i: ten digits spread over the whole space, and the check digit. */
static void
code_of(unsigned i, char code[JUKI_JUMIN_CODE_LEN + 1])
{
	unsigned long long x = (unsigned long long)i * 2654435761ULL % 10000000000ULL;

	snprintf(code, JUKI_JUMIN_CODE_LEN + 1, "%010llu", x);
	code[10] = (char)juki_jumin_check_digit(code);
	code[11] = '\0';
}

static void
apply(struct juki_store *store, const char *code, int i, const char *sender,
      struct juki_counter *counter)
{
	char recorded[32];
	struct juki_field_error fe;
	struct juki_change c;
	enum juki_apply_outcome outcome;
	json_t *r;

	snprintf(recorded, sizeof(recorded), "2026-11-25T%02d:%02d:%02d.000Z", i / 3600 % 12,
		 i / 60 % 60, i % 60);
	r = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s,s:i,s:s}}", "code", code, "lgcode",
		      "131016", "version", 1, "reason", "職権記載", "reason_date", DAY, "recorded",
		      recorded, "person", "name", "山田 花子", "birth", "1990-04-01", "sex", 2,
		      "address", "東京都千代田区");
	assert_int_equal(juki_change_from_json(r, &c, &fe), 0);
	json_decref(r);
	assert_int_equal(juki_honnin_apply(store, &c, sender, 1000, NULL, &outcome), 0);
	if (counter != NULL) {
		assert_int_equal(juki_counter_add(counter, JUKI_COUNT_SENT, "urn:juki:pref:13", &c),
				 0);
	}
}

/* N records at the sender (its own, counted as sent); the receiver has all but lost. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct juki_counter *counter = juki_counter_new();

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "reconcile"));
	open_store(f, "sent", &f->sent);
	open_store(f, "recv", &f->recv);
	assert_int_equal(juki_store_begin(f->sent), 0);
	assert_int_equal(juki_store_begin(f->recv), 0);
	for (unsigned i = 0; i < N; i++) {
		code_of(i + 1, f->codes[i]);
		apply(f->sent, f->codes[i], (int)i, NULL, counter);
		if (i != 1777) {
			apply(f->recv, f->codes[i], (int)i, SENDER, NULL);
		}
	}
	assert_int_equal(juki_counter_flush(counter, f->sent), 0);
	assert_int_equal(juki_store_commit(f->sent), 0);
	assert_int_equal(juki_store_commit(f->recv), 0);
	juki_counter_free(counter);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->sent);
	juki_store_close(f->recv);
	assert_int_equal(test_rm_rf(f->dir), 0);
	free(f);
	return 0;
}

static json_t *
ranges(const char *const *bounds)
{
	json_t *out = json_array();

	for (size_t i = 0; bounds[i] != NULL; i += 2) {
		json_array_append_new(
		    out, json_pack("{s:s,s:s}", "from", bounds[i], "to", bounds[i + 1]));
	}
	return out;
}

static void
test_range_digests(void **state)
{
	struct fx *f = *state;
	static const char *const whole[] = {"00000000000", "99999999999", NULL};
	static const char *const halves[] = {"00000000000", "49999999999", "50000000000",
					     "99999999999", NULL};
	json_t *counts, *r = ranges(whole), *h = ranges(halves), *d, *dh;
	unsigned char x[JUKI_DIGEST_LEN] = {0};
	size_t low = 0;

	/* One range of every code is the day: the same count and digest as the counts. */
	counts = juki_honnin_counts_json(f->sent, JUKI_COUNT_SENT, "urn:juki:pref:13", DAY);
	d = juki_honnin_range_digests(f->sent, NULL, DAY, r);
	assert_non_null(d);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 0), "count")), N);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "digest")),
			    json_string_value(json_object_get(counts, "digest")));
	/* Two halves: counts add up, digests XOR to the whole. */
	dh = juki_honnin_range_digests(f->sent, NULL, DAY, h);
	for (size_t i = 0; i < 2; i++) {
		const char *hex =
		    json_string_value(json_object_get(json_array_get(dh, i), "digest"));

		for (size_t j = 0; j < JUKI_DIGEST_LEN; j++) {
			unsigned v;

			assert_int_equal(sscanf(hex + 2 * j, "%2x", &v), 1);
			x[j] ^= (unsigned char)v;
		}
	}
	for (size_t i = 0; i < N; i++) {
		low += strcmp(f->codes[i], "49999999999") <= 0;
	}
	assert_int_equal(json_integer_value(json_object_get(json_array_get(dh, 0), "count")), low);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(dh, 1), "count")),
			 N - low);
	{
		char hex[2 * JUKI_DIGEST_LEN + 1];

		for (size_t j = 0; j < JUKI_DIGEST_LEN; j++) {
			snprintf(hex + 2 * j, 3, "%02x", x[j]);
		}
		assert_string_equal(hex, json_string_value(json_object_get(counts, "digest")));
	}
	json_decref(dh);
	json_decref(d);
	/* At the receiver, by sender: one fewer; from another sender, nothing. */
	d = juki_honnin_range_digests(f->recv, SENDER, DAY, r);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 0), "count")), N - 1);
	json_decref(d);
	d = juki_honnin_range_digests(f->recv, "urn:juki:cs:271004", DAY, r);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 0), "count")), 0);
	json_decref(d);
	/* Another day: nothing. */
	d = juki_honnin_range_digests(f->sent, NULL, "2026-11-26", r);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 0), "count")), 0);
	json_decref(d);
	json_decref(counts);
	json_decref(r);
	json_decref(h);
}

static void
test_ranges_check(void **state)
{
	static const char *const bad[][5] = {
	    {"0000000000", "99999999999", NULL},                                /* 10 digits */
	    {"0000000000x", "99999999999", NULL},                               /* not a digit */
	    {"50000000000", "49999999999", NULL},                               /* from > to */
	    {"00000000000", "50000000000", "50000000000", "99999999999", NULL}, /* overlap */
	    {"50000000000", "99999999999", "00000000000", "49999999999", NULL}, /* order */
	};
	char why[128];
	json_t *r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = ranges(bad[i]);
		assert_int_equal(juki_honnin_ranges_check(r, why, sizeof(why)), JUKI_EINVAL);
		assert_non_null(strstr(why, "ranges"));
		json_decref(r);
	}
	r = json_array();
	assert_int_equal(juki_honnin_ranges_check(r, why, sizeof(why)), JUKI_EINVAL);
	for (int i = 0; i <= JUKI_HONNIN_RANGES_MAX; i++) {
		char c[JUKI_JUMIN_CODE_LEN + 1];

		snprintf(c, sizeof(c), "%011d", i);
		json_array_append_new(r, json_pack("{s:s,s:s}", "from", c, "to", c));
	}
	assert_int_equal(juki_honnin_ranges_check(r, why, sizeof(why)), JUKI_EINVAL);
	json_array_remove(r, 0);
	assert_int_equal(juki_honnin_ranges_check(r, why, sizeof(why)), 0);
	json_decref(r);
	/* The first round: 100 ranges by two digits for thousands; one range for none. */
	r = juki_reconcile_first_ranges(N);
	assert_int_equal(json_array_size(r), 100);
	assert_int_equal(juki_honnin_ranges_check(r, why, sizeof(why)), 0);
	json_decref(r);
	r = juki_reconcile_first_ranges(0);
	assert_int_equal(json_array_size(r), 1);
	json_decref(r);
}

/* The records the sender holds in ranges: counted through a batcher into a scratch outbox. */
static size_t
in_ranges(struct fx *f, const json_t *rs, const char *code, int *found)
{
	size_t n = 0, i;
	json_t *r;

	*found = 0;
	json_array_foreach(rs, i, r)
	{
		const char *from = json_string_value(json_object_get(r, "from"));
		const char *to = json_string_value(json_object_get(r, "to"));

		for (size_t k = 0; k < N; k++) {
			if (strcmp(f->codes[k], from) >= 0 && strcmp(f->codes[k], to) <= 0) {
				n++;
				*found |= strcmp(f->codes[k], code) == 0;
			}
		}
	}
	return n;
}

static void
test_narrow_finds_one(void **state)
{
	struct fx *f = *state;
	json_t *ask = juki_reconcile_first_ranges(N), *all = json_array();
	int round = 1, found;
	size_t n;

	/* Round by round, as the sender does with the receiver's answers. */
	while (json_array_size(ask) > 0) {
		json_t *ours = juki_honnin_range_digests(f->sent, NULL, DAY, ask);
		json_t *theirs = juki_honnin_range_digests(f->recv, SENDER, DAY, ask);
		json_t *next, *resend;

		assert_non_null(ours);
		assert_non_null(theirs);
		assert_true(json_array_size(ask) <= JUKI_HONNIN_RANGES_MAX);
		assert_int_equal(juki_reconcile_narrow(ours, theirs, round, &next, &resend), 0);
		json_array_extend(all, resend);
		json_decref(ours);
		json_decref(theirs);
		json_decref(resend);
		json_decref(ask);
		ask = next;
		round++;
		assert_true(round <= JUKI_RECONCILE_MAX_ROUNDS + 1);
	}
	json_decref(ask);
	/* One small range, holding the lost record and at most a leaf's worth of others. */
	assert_int_equal(json_array_size(all), 1);
	n = in_ranges(f, all, f->codes[1777], &found);
	assert_true(found);
	assert_true(n >= 1 && n <= JUKI_RECONCILE_LEAF);
	assert_int_equal(round - 1, 2); /* 3,000 records: 100 ranges of ~30, then 10 of ~3 */
	/* What would be sent again is exactly those records, read from the store. */
	{
		struct juki_batcher *b;
		size_t sent = 0;

		assert_int_equal(juki_store_begin(f->sent), 0);
		b = juki_batcher_new(f->sent, "urn:juki:cs:131016", "urn:juki:pref:13", 5000,
				     1 << 20, NULL);
		assert_non_null(b);
		assert_int_equal(juki_honnin_resend_ranges(f->sent, DAY, all, b, &sent), 0);
		assert_int_equal(sent, n);
		juki_batcher_free(b);
		juki_store_rollback(f->sent);
	}
	/* Equal stores: nothing differs, nothing to send, no next round. */
	{
		json_t *r = juki_reconcile_first_ranges(N), *next, *resend;
		json_t *ours = juki_honnin_range_digests(f->sent, NULL, DAY, r);

		assert_int_equal(juki_reconcile_narrow(ours, ours, 1, &next, &resend), 0);
		assert_int_equal(json_array_size(next), 0);
		assert_int_equal(json_array_size(resend), 0);
		json_decref(next);
		json_decref(resend);
		json_decref(ours);
		json_decref(r);
	}
	json_decref(all);
}

/* Many differences: the next message stays within 256 ranges; the rest goes as it stands. */
static void
test_narrow_bounded(void **state)
{
	struct fx *f = *state;
	json_t *ask = juki_reconcile_first_ranges(N), *empty;
	json_t *ours = juki_honnin_range_digests(f->sent, NULL, DAY, ask), *next, *resend;
	char why[128];

	/* A receiver with nothing: every range differs. */
	empty = juki_honnin_range_digests(f->recv, "urn:juki:cs:271004", DAY, ask);
	assert_int_equal(juki_reconcile_narrow(ours, empty, 1, &next, &resend), 0);
	assert_true(json_array_size(next) <= JUKI_HONNIN_RANGES_MAX);
	/* Every range is either asked deeper (10 each) or sent. */
	assert_int_equal(json_array_size(next) / 10 + json_array_size(resend), 100);
	/*
	 * What is sent as it stands comes in code order with the leaves, as a
	 * re-send needs (a rebuilt, empty national centre gets here).
	 */
	assert_int_equal(juki_honnin_ranges_check(resend, why, sizeof(why)), 0);
	json_decref(next);
	json_decref(resend);
	/* At the last round, everything that differs is sent as it stands. */
	assert_int_equal(
	    juki_reconcile_narrow(ours, empty, JUKI_RECONCILE_MAX_ROUNDS, &next, &resend), 0);
	assert_int_equal(json_array_size(next), 0);
	assert_int_equal(json_array_size(resend), 100);
	json_decref(next);
	json_decref(resend);
	json_decref(ours);
	json_decref(empty);
	json_decref(ask);
}

/*
 * Leaves and ranges too many to split, mixed: every other range holds a
 * leaf's worth, the others ten times that, and the receiver none.  What is
 * re-sent must still be in code order (an empty national centre catching up
 * got its whole day refused as "ranges out of order" before).
 */
static void
test_narrow_mixed_in_order(void **state)
{
	json_t *ours = juki_reconcile_first_ranges(100000), *theirs = json_array(), *next, *resend;
	json_t *r, *prev = NULL;
	char why[128];
	size_t i;

	(void)state;
	json_array_foreach(ours, i, r)
	{
		json_object_set_new(r, "count", json_integer(i % 2 ? 10 * JUKI_RECONCILE_LEAF : 1));
		json_object_set_new(r, "digest", json_string("aa"));
		json_array_append_new(
		    theirs, json_pack("{s:O,s:O,s:i,s:s}", "from", json_object_get(r, "from"), "to",
				      json_object_get(r, "to"), "count", 0, "digest", "00"));
	}
	assert_int_equal(juki_reconcile_narrow(ours, theirs, 1, &next, &resend), 0);
	/* 50 leaves, 25 split into the next round, 25 sent as they stand. */
	assert_int_equal(json_array_size(next), 250);
	assert_int_equal(json_array_size(resend), 75);
	assert_int_equal(juki_honnin_ranges_check(resend, why, sizeof(why)), 0);
	json_array_foreach(resend, i, r)
	{
		if (prev != NULL) {
			assert_true(strcmp(json_string_value(json_object_get(prev, "to")),
					   json_string_value(json_object_get(r, "from"))) < 0);
		}
		prev = r;
	}
	json_decref(next);
	json_decref(resend);
	json_decref(ours);
	json_decref(theirs);
}

/* A batcher with two destinations: each message once per destination, each its own id. */
static void
test_batcher_two_destinations(void **state)
{
	struct fx *f = *state;
	struct juki_batcher *b;
	json_t *day = juki_reconcile_first_ranges(1);
	sqlite3_stmt *st;
	size_t sent = 0;
	int east = 0, west = 0;

	assert_int_equal(juki_store_begin(f->sent), 0);
	b = juki_batcher_new(f->sent, "urn:juki:pref:13", "urn:juki:jlis:east", 1000, 1 << 20,
			     NULL);
	assert_non_null(b);
	assert_int_equal(juki_batcher_add_dest(b, "urn:juki:jlis:west"), 0);
	assert_int_equal(juki_batcher_add_dest(b, "urn:juki:jlis:west"), 0); /* once */
	assert_int_equal(juki_batcher_ndests(b), 2);
	assert_string_equal(juki_batcher_dest(b, 1), "urn:juki:jlis:west");
	assert_null(juki_batcher_dest(b, 2));
	assert_int_equal(juki_honnin_resend_ranges(f->sent, DAY, day, b, &sent), 0);
	assert_int_equal(sent, N);
	json_decref(day);
	assert_int_equal(juki_batcher_flush(b), 0);
	juki_batcher_free(b);
	st = juki_store_prepare(f->sent, "SELECT dest, count(*), count(DISTINCT msg_id),"
					 " sum(length(payload)) FROM outbox WHERE type ="
					 " 'honnin.batch' GROUP BY dest");
	assert_non_null(st);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *dest = (const char *)sqlite3_column_text(st, 0);
		int n = sqlite3_column_int(st, 1);

		assert_int_equal(n, sqlite3_column_int(st, 2));
		assert_int_equal(n, (int)(sent + 999) / 1000);
		if (strcmp(dest, "urn:juki:jlis:east") == 0) {
			east = n;
		} else if (strcmp(dest, "urn:juki:jlis:west") == 0) {
			west = n;
		}
	}
	sqlite3_reset(st);
	assert_true(east > 0 && east == west);
	juki_store_rollback(f->sent);
}

/* The reconcile tables' rows go with the update counts, by day, after purge.years. */
static void
test_purge_rows(void **state)
{
	struct fx *f = *state;
	const struct juki_schema schemas[] = {JUKI_HONNIN_SCHEMA, JUKI_RECONCILE_SCHEMA};
	struct juki_purge_conf conf = {.years = 5, .rejected_years = 5, .inbox_days = 400};
	struct juki_store *store;
	char path[128], err[256];
	json_t *report;
	int64_t now;
	sqlite3_stmt *st;

	(void)state;
	snprintf(path, sizeof(path), "%s/node.db", f->dir);
	assert_int_equal(juki_store_open(path, schemas, 2, &store, err, sizeof(err)), 0);
	assert_int_equal(
	    juki_store_exec(
		store, "INSERT INTO reconcile (dest, day, status, resent) VALUES"
		       " ('urn:juki:pref:13', '2021-03-31', 'ok', 0),"
		       " ('urn:juki:pref:13', '2021-04-01', 'ok', 0);"
		       "INSERT INTO reconcile_query (msg_id, dest, day, sent_total, sent_digest,"
		       " queued_ms) VALUES ('a', 'urn:juki:pref:13', '2021-03-31', 1, '', 0),"
		       " ('b', 'urn:juki:pref:13', '2021-04-01', 1, '', 0)"),
	    0);
	/* Just before 2026-04-01T00:00 JST: a day of 2021-03-31 is due, 2021-04-01 not yet. */
	assert_int_equal(juki_clock_parse("2026-03-31T14:59:59.000Z", &now), 0);
	assert_int_equal(juki_purge_run(store, &conf, NULL, now, 0, &report), 0);
	json_decref(report);
	st = juki_store_prepare(store, "SELECT (SELECT group_concat(day) FROM reconcile),"
				       " (SELECT group_concat(msg_id) FROM reconcile_query)");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "2021-04-01");
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "b");
	sqlite3_reset(st);
	juki_store_close(store);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_range_digests, setup, teardown),
	    cmocka_unit_test(test_ranges_check),
	    cmocka_unit_test_setup_teardown(test_narrow_finds_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_narrow_bounded, setup, teardown),
	    cmocka_unit_test(test_narrow_mixed_in_order),
	    cmocka_unit_test_setup_teardown(test_batcher_two_destinations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_purge_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
