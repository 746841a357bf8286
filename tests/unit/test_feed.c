/*
 * The link server's feed (authlink/feed.h): the digest line and chain, seq
 * continuity across erasure, acks, the re-send rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "feed.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/store/outbox.h"
#include "juki/store/purge.h"
#include "juki/store/store.h"

#include "helpers.h"

#define SELF "urn:juki:authlink:0"
#define CA   "urn:juki:ca:jpki"
#define JLIS "urn:juki:jlis:0"

/* Valid 住民票コード (check digits right); synthetic. */
static const char *const codes[] = {"24727059608", "10000000014", "10000000022",
				    "10000000030", "10000000049", "10000000057"};

struct fx {
	char dir[64];
	char path[128];
	struct juki_store *store;
	struct juki_clock clock;
};

static int
setup(void **state)
{
	static const struct juki_schema schemas[] = {FEED_SCHEMA};
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || test_mkdtemp(f->dir, sizeof(f->dir), "feed") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/authlink.db", f->dir);
	if (juki_store_open(f->path, schemas, 1, &f->store, NULL, 0) != 0) {
		test_rm_rf(f->dir);
		free(f);
		return -1;
	}
	f->clock.fixed_ms = INT64_C(1780000000000);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->store);
	test_rm_rf(f->dir);
	free(f);
	return 0;
}

static json_t *
entry_json(int i, const char *kind)
{
	char id[40];
	json_t *e;

	snprintf(id, sizeof(id), "0190a5d0-0000-7000-8000-%012d", i);
	e = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "code", codes[i % 6], "kind", kind, "date",
		      "2026-04-01");
	if (strcmp(kind, "change") == 0) {
		json_object_set_new(e, "items",
				    json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", "試験 花子", "birth",
					      "1990-04-01", "sex", 2, "address",
					      "東京都千代田区本町1丁目2番3号", "lgcode", "131016"));
	}
	if (strcmp(kind, "code-change") == 0) {
		json_object_set_new(e, "new_code", json_string(codes[(i + 1) % 6]));
	}
	return e;
}

static void
entry_of(int i, const char *kind, struct feed_entry *e)
{
	struct juki_reject rej;
	json_t *j = entry_json(i, kind);

	memset(&rej, 0, sizeof(rej));
	assert_int_equal(feed_entry_from_json(j, e, &rej), 0);
	json_decref(j);
}

static const struct feed_header hdr = {CA, JLIS, "ag-1", 30};

static void
append(struct fx *f, int first, int n, int64_t now)
{
	static const char *const kinds[] = {"death", "removal", "change", "code-change"};
	struct feed_entry e[8];

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		entry_of(first + i, kinds[(first + i) % 4], &e[i]);
	}
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(feed_append(f->store, &f->clock, SELF, &hdr, e, (size_t)n, now, NULL), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
}

static int64_t
rows(struct fx *f, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store), sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The queued ninsho.feed messages, oldest first. */
static json_t *
queued(struct fx *f)
{
	struct juki_outbox_entry *e = NULL;
	json_t *out = json_array();
	size_t n = 0;

	assert_int_equal(juki_outbox_next(f->store, CA, "ninsho", 0, 100, &e, &n), 0);
	for (size_t i = 0; i < n; i++) {
		json_t *doc = json_loadb(e[i].payload, e[i].len, 0, NULL);

		assert_non_null(doc);
		json_array_append_new(out, doc);
	}
	juki_outbox_entries_free(e, n);
	return out;
}

/* The line is exactly the documented one; the digest is SHA-256 over the previous || line. */
static void
test_line_and_digest(void **state)
{
	static const char want_change[] =
	    "juki-ninsho-feed/1\n7\n0190a5d0-0000-7000-8000-000000000002\n10000000022\nchange\n"
	    "2026-04-01\n試験 花子\n1990-04-01\n2\n131016\n東京都千代田区本町1丁目2番3号\n\n";
	static const char want_cc[] =
	    "juki-ninsho-feed/1\n8\n0190a5d0-0000-7000-8000-000000000003\n10000000030\ncode-change"
	    "\n2026-04-01\n\n\n\n\n\n10000000049\n";
	unsigned char prev[FEED_DIGEST_LEN], d[FEED_DIGEST_LEN], want[SHA256_DIGEST_LENGTH];
	unsigned char buf[FEED_DIGEST_LEN + 512];
	char line[1024], hex[FEED_DIGEST_HEX + 1];
	struct feed_entry e;
	size_t n;

	(void)state;
	entry_of(2, "change", &e);
	e.seq = 7;
	n = feed_line(&e, line, sizeof(line));
	assert_int_equal(n, strlen(want_change));
	assert_string_equal(line, want_change);
	memset(prev, 0xab, sizeof(prev));
	assert_int_equal(feed_digest_next(prev, &e, d), 0);
	memcpy(buf, prev, FEED_DIGEST_LEN);
	memcpy(buf + FEED_DIGEST_LEN, line, n);
	SHA256(buf, FEED_DIGEST_LEN + n, want);
	assert_memory_equal(d, want, FEED_DIGEST_LEN);

	/* the example of docs/protocol.md §16.4: a death, 93 bytes */
	{
		static const char want_death[] =
		    "juki-ninsho-feed/1\n7\n0190a5d0-0000-7000-8000-000000000001\n24727059608\n"
		    "death\n2026-04-01\n\n\n\n\n\n\n";
		json_t *j = entry_json(0, "death");
		struct juki_reject rej;

		json_object_set_new(j, "id", json_string("0190a5d0-0000-7000-8000-000000000001"));
		assert_int_equal(feed_entry_from_json(j, &e, &rej), 0);
		json_decref(j);
		e.seq = 7;
		assert_int_equal(feed_line(&e, line, sizeof(line)), 93);
		assert_string_equal(line, want_death);
	}
	entry_of(3, "code-change", &e);
	e.seq = 8;
	feed_line(&e, line, sizeof(line));
	assert_string_equal(line, want_cc);

	/* hex round trip; upper case and short strings refused */
	juki_hex_encode(d, FEED_DIGEST_LEN, hex);
	assert_int_equal(strlen(hex), FEED_DIGEST_HEX);
	assert_int_equal(juki_hex_decode(hex, buf, FEED_DIGEST_LEN), 0);
	assert_memory_equal(buf, d, FEED_DIGEST_LEN);
	hex[0] = 'A';
	assert_int_equal(juki_hex_decode(hex, buf, FEED_DIGEST_LEN), JUKI_EFORMAT);
	assert_int_equal(juki_hex_decode("00", buf, FEED_DIGEST_LEN), JUKI_EFORMAT);
	assert_int_equal(juki_hex_decode(NULL, buf, FEED_DIGEST_LEN), JUKI_EFORMAT);
}

/* Entries of an ninsho.idou: what is refused, by reason, never naming a value. */
static void
test_entry_rules(void **state)
{
	struct juki_reject rej;
	struct feed_entry e;
	json_t *j;

	(void)state;
	struct {
		const char *key;
		json_t *value;
		const char *reason;
	} bad[] = {
	    {"kind", json_string("birth"), JUKI_R_BAD_FIELD},
	    {"code", json_string("24727059609"), JUKI_R_CHECK_DIGIT},
	    {"date", json_string("2026-02-30"), JUKI_R_BAD_FIELD},
	    {"id", json_string("not-a-uuid"), JUKI_R_BAD_FIELD},
	    {"extra", json_true(), JUKI_R_BAD_FIELD},
	    {"items", json_object(), JUKI_R_BAD_FIELD},            /* not a change */
	    {"new_code", json_string(codes[1]), JUKI_R_BAD_FIELD}, /* not a code-change */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = entry_json(0, "death");
		json_object_set_new(j, bad[i].key, bad[i].value);
		memset(&rej, 0, sizeof(rej));
		assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
		assert_string_equal(rej.reason, bad[i].reason);
		assert_null(strstr(rej.detail, "24727059609"));
		json_decref(j);
	}
	/* a change without its items, with kana, or with a bad sex */
	j = entry_json(0, "change");
	json_object_del(j, "items");
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	json_decref(j);
	j = entry_json(0, "change");
	json_object_set_new(json_object_get(j, "items"), "kana", json_string("シケン"));
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	json_decref(j);
	j = entry_json(0, "change");
	json_object_set_new(json_object_get(j, "items"), "sex", json_integer(7));
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	assert_non_null(strstr(rej.detail, "items.sex"));
	json_decref(j);
	/* a code-change to the same code, or without one */
	j = entry_json(0, "code-change");
	json_object_set_new(j, "new_code", json_string(codes[0]));
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	json_decref(j);
	j = entry_json(0, "code-change");
	json_object_del(j, "new_code");
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	json_decref(j);
	j = json_string("x");
	assert_int_equal(feed_entry_from_json(j, &e, &rej), JUKI_REJECT);
	json_decref(j);
}

/* Appended entries chain from 32 zero bytes; the state holds the last digest; one message. */
static void
test_append_chains(void **state)
{
	struct fx *f = *state;
	unsigned char d[FEED_DIGEST_LEN];
	json_t *msgs, *entries;
	struct feed_counts c;
	struct feed_entry e;
	size_t i;

	append(f, 0, 4, 1000);
	append(f, 4, 2, 2000);
	msgs = queued(f);
	assert_int_equal(json_array_size(msgs), 2);
	memset(d, 0, sizeof(d));
	for (size_t m = 0; m < 2; m++) {
		json_t *doc = json_array_get(msgs, m), *x;

		assert_string_equal(json_string_value(json_object_get(doc, "type")), "ninsho.feed");
		assert_string_equal(json_string_value(json_object_get(doc, "to")), CA);
		assert_string_equal(
		    json_string_value(json_object_get(
			json_object_get(json_object_get(doc, "body"), "header"), "source")),
		    JLIS);
		entries = json_object_get(json_object_get(doc, "body"), "entries");
		json_array_foreach(entries, i, x)
		{
			struct juki_reject rej;
			char hex[FEED_DIGEST_HEX + 1];
			json_t *copy = json_deep_copy(x);

			/* read back as an idou entry: the same digest follows from the text */
			json_object_del(copy, "seq");
			json_object_del(copy, "digest");
			assert_int_equal(feed_entry_from_json(copy, &e, &rej), 0);
			json_decref(copy);
			e.seq = json_integer_value(json_object_get(x, "seq"));
			assert_int_equal(e.seq, (int64_t)(m * 4 + i + 1));
			assert_int_equal(feed_digest_next(d, &e, d), 0);
			juki_hex_encode(d, FEED_DIGEST_LEN, hex);
			assert_string_equal(json_string_value(json_object_get(x, "digest")), hex);
		}
	}
	json_decref(msgs);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.last_seq, 6);
	assert_int_equal(c.unacked, 6);
	assert_int_equal(c.oldest_unacked_ms, 1000);
	assert_int_equal(c.erased_to, 0);
	assert_int_equal(rows(f, "SELECT count(*) FROM feed_state WHERE last_digest = "
				 "(SELECT digest FROM feed WHERE seq = 6)"),
			 1);
}

static void
test_duplicate_entry_id(void **state)
{
	struct fx *f = *state;
	struct feed_entry e[2];
	size_t dup = 99;

	append(f, 0, 1, 1000);
	entry_of(1, "death", &e[0]);
	entry_of(0, "death", &e[1]);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(feed_append(f->store, &f->clock, SELF, &hdr, e, 2, 2000, &dup), JUKI_EDUP);
	assert_int_equal(dup, 1);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(rows(f, "SELECT next_seq FROM feed_state"), 2);
}

static json_t *
result_of(struct fx *f, int64_t seq)
{
	char sql[96], hex[FEED_DIGEST_HEX + 1];
	sqlite3_stmt *st = NULL;

	snprintf(sql, sizeof(sql), "SELECT digest FROM feed WHERE seq = %lld", (long long)seq);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store), sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	juki_hex_encode(sqlite3_column_blob(st, 0), FEED_DIGEST_LEN, hex);
	sqlite3_finalize(st);
	return json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "digest", hex);
}

static const char *
msg_id(json_t *msgs, size_t i)
{
	return json_string_value(json_object_get(json_array_get(msgs, i), "id"));
}

/* An ack must name the message's last seq and its digest; else nothing is acknowledged. */
static void
test_on_ack(void **state)
{
	struct fx *f = *state;
	json_t *msgs, *res;
	struct feed_counts c;
	char why[200];

	append(f, 0, 3, 1000);
	append(f, 3, 2, 2000);
	msgs = queued(f);
	/* wrong seq, wrong digest, none */
	res = result_of(f, 2);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 5000, why, sizeof(why)),
			 JUKI_EPROTO);
	json_decref(res);
	res = result_of(f, 4);
	json_object_set_new(res, "seq", json_integer(3));
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 5000, why, sizeof(why)),
			 JUKI_EPROTO);
	assert_non_null(strstr(why, "not ours"));
	json_decref(res);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), NULL, 5000, why, sizeof(why)),
			 JUKI_EPROTO);
	assert_int_equal(rows(f, "SELECT count(*) FROM feed WHERE acked_ms IS NOT NULL"), 0);
	/* right */
	res = result_of(f, 3);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 5000, why, sizeof(why)), 0);
	json_decref(res);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.acked_seq, 3);
	assert_int_equal(c.unacked, 2);
	assert_int_equal(c.oldest_unacked_ms, 2000);
	/* a message not of the feed (or rewritten by a re-send) */
	res = result_of(f, 3);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 5000, why, sizeof(why)),
			 JUKI_ENOTFOUND);
	json_decref(res);
	json_decref(msgs);
}

static void
purge(struct fx *f, int64_t keep_ms, int64_t now)
{
	static const struct juki_purge_rule rules[] = {
	    {"feed", "feed", feed_purge_count, feed_purge_delete, JUKI_PURGE_KEEP_MS},
	    {NULL, NULL, NULL, NULL, 0},
	};
	struct juki_purge_conf conf = {0};
	json_t *report = NULL;

	conf.keep_ms = keep_ms;
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 0, &report), 0);
	json_decref(report);
}

/* Erasure takes acknowledged rows only, past keep; the numbering and the chain go on. */
static void
test_erasure_keeps_numbering(void **state)
{
	struct fx *f = *state;
	unsigned char last[FEED_DIGEST_LEN];
	json_t *msgs, *res;
	struct feed_counts c;
	char why[200];

	append(f, 0, 3, 1000);
	append(f, 3, 2, 2000);
	msgs = queued(f);
	res = result_of(f, 3);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 5000, why, sizeof(why)), 0);
	json_decref(res);
	json_decref(msgs);
	purge(f, 10000, 14000); /* acked at 5000: not yet past */
	assert_int_equal(rows(f, "SELECT count(*) FROM feed"), 5);
	purge(f, 10000, 15001);
	assert_int_equal(rows(f, "SELECT count(*) FROM feed"), 2);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.erased_to, 3);
	assert_int_equal(c.last_seq, 5);
	assert_int_equal(c.unacked, 2);
	/* unacknowledged rows are never erased, however old */
	purge(f, 1, INT64_C(1) << 50);
	assert_int_equal(rows(f, "SELECT count(*) FROM feed"), 2);
	/* on from 6, chained to 5 */
	append(f, 5, 1, 20000);
	assert_int_equal(rows(f, "SELECT max(seq) FROM feed"), 6);
	{
		sqlite3_stmt *st = NULL;
		struct feed_entry e;
		unsigned char d[FEED_DIGEST_LEN];

		assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store),
						    "SELECT digest FROM feed WHERE seq = 5", -1,
						    &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		memcpy(last, sqlite3_column_blob(st, 0), FEED_DIGEST_LEN);
		sqlite3_finalize(st);
		entry_of(5, "removal", &e);
		e.seq = 6;
		assert_int_equal(feed_digest_next(last, &e, d), 0);
		assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store),
						    "SELECT digest FROM feed WHERE seq = 6", -1,
						    &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_memory_equal(sqlite3_column_blob(st, 0), d, FEED_DIGEST_LEN);
		sqlite3_finalize(st);
	}
}

static int
resend(struct fx *f, int64_t from, int64_t *to, struct juki_reject *rej)
{
	int rc;

	memset(rej, 0, sizeof(*rej));
	assert_int_equal(juki_store_begin(f->store), 0);
	rc = feed_resend(f->store, &f->clock, SELF, CA, from, 9000, to, rej);
	if (rc == 0) {
		assert_int_equal(juki_store_commit(f->store), 0);
	} else {
		assert_int_equal(juki_store_rollback(f->store), 0);
	}
	return rc;
}

/* Re-send: ahead and erased refused; else the queue is rewritten from n, acks cleared. */
static void
test_resend_rules(void **state)
{
	struct fx *f = *state;
	struct juki_reject rej;
	struct feed_counts c;
	json_t *msgs, *res, *first;
	int64_t to = -1;
	char why[200];

	append(f, 0, 3, 1000);
	append(f, 3, 3, 2000);
	append(f, 6, 2, 3000);
	msgs = queued(f);
	for (size_t i = 0; i < 2; i++) {
		res = result_of(f, i == 0 ? 3 : 6);
		assert_int_equal(
		    feed_on_ack(f->store, msg_id(msgs, i), res, 5000, why, sizeof(why)), 0);
		json_decref(res);
	}
	json_decref(msgs);
	/* ahead of what was sent, or below 1 */
	assert_int_equal(resend(f, 10, &to, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_RESEND_AHEAD);
	assert_int_equal(resend(f, 0, &to, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_RESEND_AHEAD);
	assert_int_equal(resend(f, -1, &to, &rej), JUKI_REJECT);
	/* the end: nothing to send, the queue emptied of the feed */
	assert_int_equal(resend(f, 9, &to, &rej), 0);
	assert_int_equal(to, 8);
	msgs = queued(f);
	assert_int_equal(json_array_size(msgs), 0);
	json_decref(msgs);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.acked_seq, 6);
	/* from 2: rows 2.. unacknowledged, queued again in one message from 2 */
	assert_int_equal(resend(f, 2, &to, &rej), 0);
	assert_int_equal(to, 8);
	msgs = queued(f);
	assert_int_equal(json_array_size(msgs), 1);
	first = json_array_get(
	    json_object_get(json_object_get(json_array_get(msgs, 0), "body"), "entries"), 0);
	assert_int_equal(json_integer_value(json_object_get(first, "seq")), 2);
	assert_int_equal(json_array_size(json_object_get(
			     json_object_get(json_array_get(msgs, 0), "body"), "entries")),
			 7);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.acked_seq, 1);
	assert_int_equal(c.unacked, 7);
	assert_int_equal(rows(f, "SELECT count(*) FROM feed_out"), 1);
	/* its ack acknowledges 2..8 */
	res = result_of(f, 8);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 6000, why, sizeof(why)), 0);
	json_decref(res);
	json_decref(msgs);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.acked_seq, 8);
	assert_int_equal(c.unacked, 0);
	/* erased: refused */
	purge(f, 1000, 6001); /* row 1, acked at 5000; the rest at 6000 */
	assert_int_equal(resend(f, 1, &to, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_RESEND_ERASED);
	assert_int_equal(resend(f, 2, &to, &rej), 0);
	purge(f, 1, INT64_C(1) << 50);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.erased_to, 1);
	/* after everything acked was erased: from 2 refused, the end still accepted */
	res = NULL;
	msgs = queued(f);
	res = result_of(f, 8);
	assert_int_equal(feed_on_ack(f->store, msg_id(msgs, 0), res, 7000, why, sizeof(why)), 0);
	json_decref(res);
	json_decref(msgs);
	purge(f, 1, INT64_C(1) << 50);
	assert_int_equal(feed_counts(f->store, &c), 0);
	assert_int_equal(c.erased_to, 8);
	assert_int_equal(resend(f, 8, &to, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_RESEND_ERASED);
	assert_int_equal(resend(f, 9, &to, &rej), 0);
}

/* A re-send splits at FEED_MAX_ENTRIES and where the header changes. */
static void
test_resend_splits(void **state)
{
	struct fx *f = *state;
	struct feed_header other = {CA, "urn:juki:pref:13", "ag-2", 60};
	struct feed_entry *e = calloc(FEED_MAX_ENTRIES, sizeof(*e));
	struct juki_reject rej;
	json_t *msgs;
	int64_t to;

	assert_non_null(e);
	for (int i = 0; i < FEED_MAX_ENTRIES; i++) {
		char id[40];
		json_t *j = entry_json(i, "death");

		snprintf(id, sizeof(id), "0190a5d0-0000-7000-8000-%012d", 100000 + i);
		json_object_set_new(j, "id", json_string(id));
		assert_int_equal(feed_entry_from_json(j, &e[i], &rej), 0);
		json_decref(j);
	}
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(
	    feed_append(f->store, &f->clock, SELF, &hdr, e, FEED_MAX_ENTRIES, 1000, NULL), 0);
	entry_of(1, "death", &e[0]);
	assert_int_equal(feed_append(f->store, &f->clock, SELF, &other, e, 1, 1000, NULL), 0);
	entry_of(2, "death", &e[0]);
	assert_int_equal(feed_append(f->store, &f->clock, SELF, &hdr, e, 1, 1000, NULL), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	free(e);
	assert_int_equal(resend(f, 1, &to, &rej), 0);
	assert_int_equal(to, FEED_MAX_ENTRIES + 2);
	msgs = queued(f);
	assert_int_equal(json_array_size(msgs), 3);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(json_array_get(msgs, 1), "body"), "header"),
		"source")),
	    "urn:juki:pref:13");
	json_decref(msgs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_and_digest),
	    cmocka_unit_test(test_entry_rules),
	    cmocka_unit_test_setup_teardown(test_append_chains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_entry_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_on_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_erasure_keeps_numbering, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resend_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resend_splits, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
