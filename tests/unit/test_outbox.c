#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "juki/base/error.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define CS_OSAKA   "urn:juki:cs:271004"
#define CS_CHIYODA "urn:juki:cs:131016"
#define PREF_TOKYO "urn:juki:pref:13"

struct fixture {
	char dir[64];
	char path[128];
	struct juki_store *store;
};

static struct juki_store *
reopen(struct fixture *f)
{
	char err[256] = "";
	int rc;

	juki_store_close(f->store);
	f->store = NULL;
	rc = juki_store_open(f->path, NULL, 0, &f->store, err, sizeof(err));
	if (rc != 0) {
		print_error("open %s: %s: %s\n", f->path, juki_strerror(rc), err);
	}
	assert_int_equal(rc, 0);
	return f->store;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	if (test_mkdtemp(f->dir, sizeof(f->dir), "outbox") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	if (juki_store_open(f->path, NULL, 0, &f->store, NULL, 0) != 0) {
		test_rm_rf(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	juki_store_close(f->store);
	test_rm_rf(f->dir);
	free(f);
	return 0;
}

/* message number n: its id carries n so that order can be checked */
static void
make_msg(struct juki_msg *m, int n, const char *to)
{
	memset(m, 0, sizeof(*m));
	m->version = JUKI_PROTO_VERSION;
	snprintf(m->id, sizeof(m->id), "0190a5d0-0000-7000-8000-%012d", n);
	snprintf(m->type, sizeof(m->type), "%s", JUKI_MSG_TENNYU);
	snprintf(m->from, sizeof(m->from), "%s", CS_OSAKA);
	snprintf(m->to, sizeof(m->to), "%s", to);
	m->time_ms = 1000 + n;
	m->body = json_pack("{s:i, s:s}", "n", n, "name", "山田 太郎");
	assert_non_null(m->body);
}

static int
msg_number(const struct juki_outbox_entry *e)
{
	return atoi(e->msg_id + 24);
}

static int64_t
put(struct juki_store *store, int n, const char *to, const char *service, int64_t now_ms)
{
	struct juki_msg m;
	int64_t seq = -1;
	int rc;

	make_msg(&m, n, to);
	rc = juki_outbox_put(store, &m, service, now_ms, &seq);
	json_decref(m.body);
	assert_int_equal(rc, 0);
	assert_true(seq > 0);
	return seq;
}

static int64_t
count_rows(struct juki_store *store, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(juki_store_db(store), sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static void
test_put_commit_rollback(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_queue *q = NULL;
	int64_t count = -1, oldest = -1, s1, s2, s3;
	size_t n = 99;

	assert_int_equal(juki_store_begin(f->store), 0);
	put(f->store, 1, CS_CHIYODA, "muni", 5000);
	put(f->store, 2, CS_CHIYODA, "muni", 3000);
	put(f->store, 3, PREF_TOKYO, "honnin", 1000);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 0);
	assert_int_equal(oldest, 0);
	assert_int_equal(juki_outbox_queues(f->store, &q, &n), 0);
	assert_int_equal(n, 0);
	assert_null(q);

	assert_int_equal(juki_store_begin(f->store), 0);
	s1 = put(f->store, 1, CS_CHIYODA, "muni", 5000);
	s2 = put(f->store, 2, CS_CHIYODA, "muni", 3000);
	s3 = put(f->store, 3, PREF_TOKYO, "honnin", 1000);
	assert_true(s1 < s2 && s2 < s3);
	assert_int_equal(juki_store_commit(f->store), 0);

	/* oldest first, neither in the order they were queued nor by name */
	assert_int_equal(juki_outbox_queues(f->store, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].dest, PREF_TOKYO);
	assert_string_equal(q[0].service, "honnin");
	assert_int_equal(q[0].count, 1);
	assert_int_equal(q[0].oldest_ms, 1000);
	assert_string_equal(q[1].dest, CS_CHIYODA);
	assert_string_equal(q[1].service, "muni");
	assert_int_equal(q[1].count, 2);
	assert_int_equal(q[1].oldest_ms, 3000);
	free(q);

	/* The kick's view, from the index alone: in queueing order, no time. */
	assert_int_equal(juki_outbox_dests(f->store, &q, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(q[0].dest, CS_CHIYODA);
	assert_int_equal(q[0].count, 2);
	assert_int_equal(q[0].oldest_ms, 0);
	assert_string_equal(q[1].dest, PREF_TOKYO);
	assert_string_equal(q[1].service, "honnin");
	assert_int_equal(q[1].count, 1);
	free(q);

	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 3);
	assert_int_equal(oldest, 1000);

	/* the same destination over another service is another queue */
	assert_int_equal(juki_store_begin(f->store), 0);
	put(f->store, 4, CS_CHIYODA, "honnin", 500);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_queues(f->store, &q, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(q[0].dest, CS_CHIYODA);
	assert_string_equal(q[0].service, "honnin");
	assert_int_equal(q[0].count, 1);
	assert_int_equal(q[0].oldest_ms, 500);
	assert_string_equal(q[1].dest, PREF_TOKYO);
	assert_string_equal(q[2].dest, CS_CHIYODA);
	assert_string_equal(q[2].service, "muni");
	free(q);

	assert_int_equal(juki_outbox_queues(NULL, &q, &n), JUKI_EINVAL);
	assert_int_equal(juki_outbox_queues(f->store, NULL, &n), JUKI_EINVAL);
	assert_int_equal(juki_outbox_queues(f->store, &q, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_stats(f->store, NULL, &oldest), JUKI_EINVAL);
	assert_int_equal(juki_outbox_stats(f->store, &count, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_stats(NULL, &count, &oldest), JUKI_EINVAL);
}

static void
test_next(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	json_t *doc, *body;
	json_error_t jerr;
	int64_t seqs[5];
	size_t n = 99;
	int i;

	assert_int_equal(juki_store_begin(f->store), 0);
	for (i = 0; i < 5; i++) {
		seqs[i] = put(f->store, i, CS_CHIYODA, "muni", 7000 + i);
		/* another queue in between must not show up */
		put(f->store, 100 + i, PREF_TOKYO, "muni", 7000 + i);
	}
	assert_int_equal(juki_store_commit(f->store), 0);

	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(e[i].seq, seqs[i]);
		assert_int_equal(msg_number(&e[i]), i);
		assert_string_equal(e[i].dest, CS_CHIYODA);
		assert_string_equal(e[i].service, "muni");
		assert_string_equal(e[i].type, JUKI_MSG_TENNYU);
		assert_int_equal(e[i].created_ms, 7000 + i);
		assert_int_equal(e[i].attempts, 0);
		assert_int_equal(e[i].len, strlen(e[i].payload));
		/* the payload is the message as it goes on the wire, compact */
		assert_null(strchr(e[i].payload, '\n'));
		assert_null(strstr(e[i].payload, ": "));
		doc = json_loadb(e[i].payload, e[i].len, 0, &jerr);
		assert_non_null(doc);
		assert_string_equal(json_string_value(json_object_get(doc, "id")), e[i].msg_id);
		assert_string_equal(json_string_value(json_object_get(doc, "to")), CS_CHIYODA);
		body = json_object_get(doc, "body");
		assert_int_equal(json_integer_value(json_object_get(body, "n")), i);
		assert_string_equal(json_string_value(json_object_get(body, "name")), "山田 太郎");
		json_decref(doc);
	}
	juki_outbox_entries_free(e, n);

	/* after_seq and max */
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", seqs[1], 2, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].seq, seqs[2]);
	assert_int_equal(e[1].seq, seqs[3]);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", seqs[4], 10, &e, &n), 0);
	assert_int_equal(n, 0);
	assert_null(e);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", seqs[4] - 1, 1, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].seq, seqs[4]);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, SIZE_MAX, &e, &n), 0);
	assert_int_equal(n, 5);
	juki_outbox_entries_free(e, n);
	n = 99;
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 0, &e, &n), 0);
	assert_int_equal(n, 0);
	assert_null(e);

	/* other queues and unknown ones */
	assert_int_equal(juki_outbox_next(f->store, PREF_TOKYO, "muni", 0, 100, &e, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(msg_number(&e[0]), 100);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "honnin", 0, 100, &e, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(juki_outbox_next(f->store, "urn:juki:cs:011002", "muni", 0, 100, &e, &n),
			 0);
	assert_int_equal(n, 0);

	assert_int_equal(juki_outbox_next(NULL, CS_CHIYODA, "muni", 0, 1, &e, &n), JUKI_EINVAL);
	assert_int_equal(juki_outbox_next(f->store, NULL, "muni", 0, 1, &e, &n), JUKI_EINVAL);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, NULL, 0, 1, &e, &n), JUKI_EINVAL);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 1, NULL, &n),
			 JUKI_EINVAL);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 1, &e, NULL),
			 JUKI_EINVAL);
	juki_outbox_entries_free(NULL, 3);
}

static void
test_ack_attempted(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	int64_t s1, s2, count = -1, oldest = -1;
	size_t n = 0;

	assert_int_equal(juki_store_begin(f->store), 0);
	s1 = put(f->store, 1, CS_CHIYODA, "muni", 100);
	s2 = put(f->store, 2, CS_CHIYODA, "muni", 200);
	assert_int_equal(juki_store_commit(f->store), 0);

	assert_int_equal(juki_outbox_attempted(f->store, s1), 0);
	assert_int_equal(juki_outbox_attempted(f->store, s1), 0);
	assert_int_equal(juki_outbox_attempted(f->store, s2 + 100), JUKI_ENOTFOUND);
	assert_int_equal(juki_outbox_attempted(NULL, s1), JUKI_EINVAL);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].attempts, 2);
	assert_int_equal(e[1].attempts, 0);
	juki_outbox_entries_free(e, n);

	/* outside any transaction: deleted for good */
	assert_int_equal(juki_outbox_ack(f->store, s1), 0);
	assert_false(juki_store_in_txn(f->store));
	assert_int_equal(juki_outbox_ack(f->store, s1), JUKI_ENOTFOUND);
	assert_int_equal(juki_outbox_ack(NULL, s1), JUKI_EINVAL);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 1);
	assert_int_equal(oldest, 200);

	/* inside the caller's transaction: undone with it */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_outbox_ack(f->store, s2), 0);
	assert_true(juki_store_in_txn(f->store));
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].seq, s2);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_ack(f->store, s2), 0);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 0);
	assert_int_equal(oldest, 0);
}

static void
test_reject(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	int64_t s1, s2, s3, count = -1;
	sqlite3_stmt *stmt = NULL;
	char *payload;
	size_t n = 0;

	assert_int_equal(juki_store_begin(f->store), 0);
	s1 = put(f->store, 1, CS_CHIYODA, "muni", 100);
	s2 = put(f->store, 2, CS_CHIYODA, "muni", 200);
	s3 = put(f->store, 3, CS_CHIYODA, "muni", 300);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 1, &e, &n), 0);
	assert_int_equal(n, 1);
	payload = strdup(e[0].payload);
	assert_non_null(payload);
	juki_outbox_entries_free(e, n);

	assert_int_equal(juki_outbox_reject(f->store, s1, JUKI_R_CHECK_DIGIT, "jumin code", 9000),
			 0);
	assert_false(juki_store_in_txn(f->store));
	assert_int_equal(juki_outbox_rejected_count(f->store, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].seq, s2);
	juki_outbox_entries_free(e, n);

	assert_int_equal(
	    sqlite3_prepare_v2(juki_store_db(f->store),
			       "SELECT seq, dest, service, msg_id, type, payload, created_ms, "
			       "rejected_ms, reason, detail FROM outbox_rejected",
			       -1, &stmt, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(stmt, 0), s1);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 1), CS_CHIYODA);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 2), "muni");
	assert_string_equal((const char *)sqlite3_column_text(stmt, 3),
			    "0190a5d0-0000-7000-8000-000000000001");
	assert_string_equal((const char *)sqlite3_column_text(stmt, 4), JUKI_MSG_TENNYU);
	assert_int_equal(sqlite3_column_type(stmt, 5), SQLITE_BLOB);
	assert_int_equal(sqlite3_column_bytes(stmt, 5), strlen(payload));
	assert_memory_equal(sqlite3_column_blob(stmt, 5), payload, strlen(payload));
	assert_int_equal(sqlite3_column_int64(stmt, 6), 100);
	assert_int_equal(sqlite3_column_int64(stmt, 7), 9000);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 8), JUKI_R_CHECK_DIGIT);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 9), "jumin code");
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	free(payload);

	/* unknown seq, including the one just moved */
	assert_int_equal(juki_outbox_reject(f->store, s1, JUKI_R_INTERNAL, NULL, 9100),
			 JUKI_ENOTFOUND);
	assert_int_equal(juki_outbox_reject(f->store, s3 + 1, JUKI_R_INTERNAL, NULL, 9100),
			 JUKI_ENOTFOUND);
	assert_false(juki_store_in_txn(f->store));
	assert_int_equal(juki_outbox_rejected_count(f->store, &count), 0);
	assert_int_equal(count, 1);

	assert_int_equal(juki_outbox_reject(f->store, s2, NULL, NULL, 9100), JUKI_EINVAL);
	assert_int_equal(juki_outbox_reject(f->store, s2, "", NULL, 9100), JUKI_EINVAL);
	assert_int_equal(juki_outbox_reject(NULL, s2, JUKI_R_INTERNAL, NULL, 9100), JUKI_EINVAL);
	assert_int_equal(juki_outbox_rejected_count(f->store, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_rejected_count(NULL, &count), JUKI_EINVAL);

	/* inside the caller's transaction: it stays open, and a rollback undoes the move */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_outbox_reject(f->store, s2, JUKI_R_POLICY, NULL, 9200), 0);
	assert_true(juki_store_in_txn(f->store));
	assert_int_equal(juki_outbox_reject(f->store, s2, JUKI_R_POLICY, NULL, 9200),
			 JUKI_ENOTFOUND);
	assert_true(juki_store_in_txn(f->store));
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_outbox_rejected_count(f->store, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM outbox"), 2);

	/* committed: a NULL detail is stored as empty text */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_outbox_reject(f->store, s2, JUKI_R_POLICY, NULL, 9200), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_rejected_count(f->store, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM outbox_rejected "
					      "WHERE detail = '' AND reason = 'policy-denied'"),
			 1);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM outbox"), 1);
}

/* juki_outbox_drop(): one queue's entries of one type, in the caller's transaction only. */
static void
test_drop(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	int64_t dropped = -1, keep;
	size_t n = 0;

	assert_int_equal(juki_store_begin(f->store), 0);
	put(f->store, 1, CS_CHIYODA, "muni", 100);
	put(f->store, 2, CS_CHIYODA, "muni", 200);
	keep = put(f->store, 3, CS_CHIYODA, "honnin", 300);
	put(f->store, 4, PREF_TOKYO, "muni", 400);
	assert_int_equal(juki_store_commit(f->store), 0);

	/* outside a transaction: refused, nothing dropped */
	assert_int_equal(juki_outbox_drop(f->store, CS_CHIYODA, "muni", JUKI_MSG_TENNYU, &dropped),
			 JUKI_EINVAL);
	assert_int_equal(dropped, 0);
	assert_int_equal(juki_outbox_drop(NULL, CS_CHIYODA, "muni", JUKI_MSG_TENNYU, NULL),
			 JUKI_EINVAL);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM outbox"), 4);

	assert_int_equal(juki_store_begin(f->store), 0);
	/* another type: nothing */
	assert_int_equal(juki_outbox_drop(f->store, CS_CHIYODA, "muni", JUKI_MSG_ACK, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(juki_outbox_drop(f->store, CS_CHIYODA, "muni", JUKI_MSG_TENNYU, &dropped),
			 0);
	assert_int_equal(dropped, 2);
	assert_int_equal(juki_store_commit(f->store), 0);
	/* the other service and the other destination keep theirs */
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "honnin", 0, 10, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].seq, keep);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_next(f->store, PREF_TOKYO, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 1);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 0);
	juki_outbox_entries_free(e, n);
	/* nothing went to outbox_rejected: dropped, not refused */
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM outbox_rejected"), 0);
}

static void
test_put_errors(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	struct juki_msg m, bad;
	int64_t count = -1, oldest, seq = -1;
	size_t n = 0;

	make_msg(&m, 1, CS_CHIYODA);

	/* outside a transaction the entry could outlive a change that is undone */
	assert_int_equal(juki_outbox_put(f->store, &m, "muni", 100, &seq), JUKI_EINVAL);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 0);

	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_outbox_put(f->store, &m, "muni", 100, &seq), 0);
	/* the same id twice, even for another queue */
	assert_int_equal(juki_outbox_put(f->store, &m, "muni", 100, NULL), JUKI_EDUP);
	assert_int_equal(juki_outbox_put(f->store, &m, "honnin", 100, NULL), JUKI_EDUP);
	assert_non_null(strstr(juki_store_errmsg(f->store), "UNIQUE"));
	/* the transaction survives the refused statement */
	assert_true(juki_store_in_txn(f->store));
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 1);

	/* a committed id stays a duplicate in a later transaction */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_outbox_put(f->store, &m, "muni", 100, NULL), JUKI_EDUP);

	/* malformed input */
	assert_int_equal(juki_outbox_put(NULL, &m, "muni", 100, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_put(f->store, NULL, "muni", 100, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_put(f->store, &m, NULL, 100, NULL), JUKI_EINVAL);
	assert_int_equal(juki_outbox_put(f->store, &m, "", 100, NULL), JUKI_EINVAL);
	/* service: 15 characters fit, 16 do not */
	make_msg(&bad, 2, CS_CHIYODA);
	assert_int_equal(juki_outbox_put(f->store, &bad, "abcdefghijklmnop", 100, NULL),
			 JUKI_EINVAL);
	assert_int_equal(juki_outbox_put(f->store, &bad, "abcdefghijklmno", 100, NULL), 0);
	json_decref(bad.body);

	make_msg(&bad, 3, CS_CHIYODA);
	bad.id[JUKI_UUID_LEN - 1] = '\0';
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	memset(bad.id, 'a', sizeof(bad.id));
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	bad.id[0] = '\0';
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	json_decref(bad.body);

	make_msg(&bad, 4, CS_CHIYODA);
	bad.to[0] = '\0';
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	memset(bad.to, 'x', sizeof(bad.to));
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	json_decref(bad.body);

	make_msg(&bad, 5, CS_CHIYODA);
	bad.type[0] = '\0';
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	memset(bad.type, 't', sizeof(bad.type));
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	json_decref(bad.body);

	make_msg(&bad, 6, CS_CHIYODA);
	bad.from[0] = '\0';
	assert_int_equal(juki_outbox_put(f->store, &bad, "muni", 100, NULL), JUKI_EINVAL);
	json_decref(bad.body);
	assert_int_equal(juki_store_commit(f->store), 0);

	/* only the two good ones are there */
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 2);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "abcdefghijklmno", 0, 10, &e, &n),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].service, "abcdefghijklmno");
	juki_outbox_entries_free(e, n);
	json_decref(m.body);
}

static void
test_inbox(void **state)
{
	struct fixture *f = *state;
	struct juki_msg m1, m2, m3;
	int status = -1;

	make_msg(&m1, 1, CS_CHIYODA);
	make_msg(&m2, 2, CS_CHIYODA);
	make_msg(&m3, 3, CS_CHIYODA);

	assert_int_equal(juki_inbox_lookup(f->store, m1.id, &status), JUKI_ENOTFOUND);
	/* recorded with the change, never alone */
	assert_int_equal(juki_inbox_record(f->store, &m1, JUKI_ACK_ACCEPTED, NULL, 100),
			 JUKI_EINVAL);
	assert_int_equal(juki_inbox_lookup(f->store, m1.id, &status), JUKI_ENOTFOUND);

	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_inbox_record(f->store, &m1, JUKI_ACK_ACCEPTED, NULL, 100), 0);
	assert_int_equal(juki_inbox_lookup(f->store, m1.id, &status), 0);
	assert_int_equal(status, JUKI_ACK_ACCEPTED);
	assert_int_equal(juki_inbox_record(f->store, &m1, JUKI_ACK_ACCEPTED, NULL, 100), JUKI_EDUP);
	assert_int_equal(juki_inbox_record(f->store, &m1, JUKI_ACK_REJECTED, JUKI_R_INTERNAL, 100),
			 JUKI_EDUP);
	assert_int_equal(
	    juki_inbox_record(f->store, &m2, JUKI_ACK_REJECTED, JUKI_R_UNKNOWN_PERSON, 200), 0);
	assert_int_equal(juki_store_commit(f->store), 0);

	status = -1;
	assert_int_equal(juki_inbox_lookup(f->store, m1.id, &status), 0);
	assert_int_equal(status, JUKI_ACK_ACCEPTED);
	assert_int_equal(juki_inbox_lookup(f->store, m2.id, &status), 0);
	assert_int_equal(status, JUKI_ACK_REJECTED);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox WHERE "
					      "reason = 'unknown-person' AND sender = "
					      "'urn:juki:cs:271004' AND type = 'tennyu.notice' "
					      "AND received_ms = 200"),
			 1);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox WHERE reason IS NULL "
					      "AND received_ms = 100"),
			 1);

	/* a committed id is a duplicate in any later transaction; a rolled back one is not */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_inbox_record(f->store, &m1, JUKI_ACK_ACCEPTED, NULL, 300), JUKI_EDUP);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_ACCEPTED, NULL, 300), 0);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_inbox_lookup(f->store, m3.id, &status), JUKI_ENOTFOUND);

	/* bad input */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_REJECTED, NULL, 300),
			 JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_REJECTED, "", 300), JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_ACCEPTED, JUKI_R_INTERNAL, 300),
			 JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_DUPLICATE, NULL, 300),
			 JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, &m3, 99, NULL, 300), JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, &m3, -1, NULL, 300), JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(f->store, NULL, JUKI_ACK_ACCEPTED, NULL, 300),
			 JUKI_EINVAL);
	assert_int_equal(juki_inbox_record(NULL, &m3, JUKI_ACK_ACCEPTED, NULL, 300), JUKI_EINVAL);
	m3.from[0] = '\0';
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_ACCEPTED, NULL, 300),
			 JUKI_EINVAL);
	m3.id[5] = '\0';
	snprintf(m3.from, sizeof(m3.from), "%s", CS_OSAKA);
	assert_int_equal(juki_inbox_record(f->store, &m3, JUKI_ACK_ACCEPTED, NULL, 300),
			 JUKI_EINVAL);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox"), 2);

	assert_int_equal(juki_inbox_lookup(f->store, "", &status), JUKI_ENOTFOUND);
	assert_int_equal(juki_inbox_lookup(f->store, NULL, &status), JUKI_EINVAL);
	assert_int_equal(juki_inbox_lookup(f->store, m1.id, NULL), JUKI_EINVAL);
	assert_int_equal(juki_inbox_lookup(NULL, m1.id, &status), JUKI_EINVAL);

	json_decref(m1.body);
	json_decref(m2.body);
	json_decref(m3.body);
}

/*
 * A replayed id with other bytes is told from an honest redelivery: the
 * inbox keeps the SHA-256 of the frame; the outbox resends its stored text
 * byte for byte, so the sender's redelivery digests the same.
 */
static void
test_inbox_digest(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL, *again = NULL;
	unsigned char d1[JUKI_INBOX_DIGEST_LEN], d2[JUKI_INBOX_DIGEST_LEN];
	static const char other[] = "{\"v\":1,\"body\":{\"name\":\"another\"}}";
	struct juki_msg m, old;
	int status = -1, same = -1, kept = -1;
	size_t n = 0, n2 = 0;
	char sql[128];

	/* what an honest sender delivers, twice: the same bytes */
	assert_int_equal(juki_store_begin(f->store), 0);
	put(f->store, 7, CS_CHIYODA, "muni", 100);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 1, &e, &n), 0);
	reopen(f);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 1, &again, &n2), 0);
	assert_int_equal(n, 1);
	assert_int_equal(n2, 1);
	assert_int_equal(e[0].len, again[0].len);
	assert_memory_equal(e[0].payload, again[0].payload, e[0].len);
	assert_int_equal(juki_inbox_digest(e[0].payload, e[0].len, d1), 0);
	assert_int_equal(juki_inbox_digest(other, strlen(other), d2), 0);
	assert_memory_not_equal(d1, d2, sizeof(d1));
	assert_int_equal(juki_inbox_digest(NULL, 0, d2), JUKI_EINVAL);
	assert_int_equal(juki_inbox_digest(other, strlen(other), d2), 0);

	/* received and recorded with its digest */
	make_msg(&m, 7, CS_CHIYODA);
	assert_int_equal(juki_inbox_check(f->store, m.id, d1, &status, &same), JUKI_ENOTFOUND);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_inbox_record_digest(f->store, &m, JUKI_ACK_ACCEPTED, NULL, d1, 500),
			 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT length(digest) FROM inbox"), 32);

	/* the same bytes: a redelivery; other bytes: a replay; no digest to compare: unknown */
	assert_int_equal(juki_inbox_digest(again[0].payload, again[0].len, d2), 0);
	assert_memory_equal(d1, d2, sizeof(d1));
	assert_int_equal(juki_inbox_check(f->store, m.id, d2, &status, &same), 0);
	assert_int_equal(status, JUKI_ACK_ACCEPTED);
	assert_int_equal(same, 1);
	assert_int_equal(juki_inbox_digest(other, strlen(other), d2), 0);
	assert_int_equal(juki_inbox_check(f->store, m.id, d2, &status, &same), 0);
	assert_int_equal(same, 0);
	assert_int_equal(juki_inbox_check(f->store, m.id, NULL, &status, &same), 0);
	assert_int_equal(same, 1);
	assert_int_equal(juki_inbox_check(f->store, m.id, d1, &status, NULL), JUKI_EINVAL);
	assert_int_equal(juki_inbox_check(f->store, NULL, d1, &status, &same), JUKI_EINVAL);

	/* a row recorded without a digest (as before digests were kept) is a duplicate */
	make_msg(&old, 8, CS_CHIYODA);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_inbox_record(f->store, &old, JUKI_ACK_ACCEPTED, NULL, 600), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	same = -1;
	assert_int_equal(juki_inbox_check(f->store, old.id, d2, &status, &same), 0);
	assert_int_equal(same, 1);

	/* the replay is kept in the turn's transaction: never outside one */
	assert_int_equal(
	    juki_inbox_keep_mismatch(f->store, &m, d2, other, strlen(other), 700, &kept),
	    JUKI_EINVAL);
	assert_int_equal(kept, 0);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(
	    juki_inbox_keep_mismatch(f->store, &m, d2, other, strlen(other), 700, &kept), 0);
	assert_int_equal(kept, 1);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox_mismatch"), 0);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(
	    juki_inbox_keep_mismatch(f->store, &m, d2, other, strlen(other), 700, &kept), 0);
	assert_int_equal(kept, 1);
	/* the same replay again: kept once */
	assert_int_equal(
	    juki_inbox_keep_mismatch(f->store, &m, d2, other, strlen(other), 800, &kept), 0);
	assert_int_equal(kept, 0);
	assert_int_equal(juki_inbox_keep_mismatch(f->store, &m, NULL, other, 1, 800, &kept),
			 JUKI_EINVAL);
	assert_int_equal(juki_store_commit(f->store), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM inbox_mismatch WHERE msg_id = '%s' AND sender = '%s'", m.id,
		 CS_OSAKA);
	assert_int_equal(count_rows(f->store, sql), 1);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox_mismatch WHERE "
					      "received_ms = 700 AND length(digest) = 32 AND "
					      "CAST(text AS TEXT) LIKE '%another%'"),
			 1);
	/* the first one's record stands */
	assert_int_equal(juki_inbox_check(f->store, m.id, d1, &status, &same), 0);
	assert_int_equal(same, 1);

	/* bounded: once full, a further replay is not kept */
	assert_int_equal(juki_store_begin(f->store), 0);
	for (int i = 1; i < JUKI_INBOX_MISMATCH_MAX; i++) {
		char text[32];

		snprintf(text, sizeof(text), "{\"n\":%d}", i);
		assert_int_equal(juki_inbox_digest(text, strlen(text), d2), 0);
		assert_int_equal(
		    juki_inbox_keep_mismatch(f->store, &m, d2, text, strlen(text), 900, &kept), 0);
		assert_int_equal(kept, 1);
	}
	assert_int_equal(juki_inbox_digest("{}", 2, d2), 0);
	assert_int_equal(juki_inbox_keep_mismatch(f->store, &m, d2, "{}", 2, 900, &kept), 0);
	assert_int_equal(kept, 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox_mismatch"),
			 JUKI_INBOX_MISMATCH_MAX);

	juki_outbox_entries_free(e, n);
	juki_outbox_entries_free(again, n2);
	json_decref(m.body);
	json_decref(old.body);
}

/* A store of schema 2 (inbox without digests) migrates; its rows are of unknown digest. */
static void
test_inbox_digest_migration(void **state)
{
	struct fixture *f = *state;
	unsigned char d[JUKI_INBOX_DIGEST_LEN];
	struct juki_msg m;
	int version = 0, status = -1, same = -1;
	sqlite3 *db = NULL;

	make_msg(&m, 9, CS_CHIYODA);
	juki_store_close(f->store);
	f->store = NULL;
	/* back to what a store of the previous version holds */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
			 "DROP TABLE inbox_mismatch;"
			 "ALTER TABLE inbox DROP COLUMN digest;"
			 "UPDATE schema_version SET version = 2 WHERE component = 'juki';"
			 "INSERT INTO inbox VALUES ('0190a5d0-0000-7000-8000-000000000009',"
			 " 'urn:juki:cs:271004', 'tennyu.notice', 0, NULL, 42);",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	reopen(f);
	assert_int_equal(juki_store_schema_version(f->store, "juki", &version), 0);
	assert_int_equal(version, 3);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox WHERE digest IS NULL"),
			 1);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM inbox_mismatch"), 0);
	assert_int_equal(juki_inbox_digest("{}", 2, d), 0);
	assert_int_equal(juki_inbox_check(f->store, m.id, d, &status, &same), 0);
	assert_int_equal(status, JUKI_ACK_ACCEPTED);
	assert_int_equal(same, 1);
	json_decref(m.body);
}

static void
test_persistence(void **state)
{
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	struct juki_msg m;
	char *payload;
	int64_t seq, count = -1, oldest = -1;
	int status = -1;
	size_t n = 0;

	assert_int_equal(juki_store_begin(f->store), 0);
	seq = put(f->store, 1, CS_CHIYODA, "muni", 4242);
	make_msg(&m, 50, CS_OSAKA);
	assert_int_equal(juki_inbox_record(f->store, &m, JUKI_ACK_ACCEPTED, NULL, 4243), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 1);
	payload = strdup(e[0].payload);
	assert_non_null(payload);
	juki_outbox_entries_free(e, n);

	/* begun, never committed: gone after the close */
	assert_int_equal(juki_store_begin(f->store), 0);
	put(f->store, 2, CS_CHIYODA, "muni", 4300);

	reopen(f);
	assert_int_equal(juki_outbox_next(f->store, CS_CHIYODA, "muni", 0, 10, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].seq, seq);
	assert_int_equal(e[0].created_ms, 4242);
	assert_string_equal(e[0].payload, payload);
	assert_int_equal(msg_number(&e[0]), 1);
	juki_outbox_entries_free(e, n);
	assert_int_equal(juki_inbox_lookup(f->store, m.id, &status), 0);
	assert_int_equal(status, JUKI_ACK_ACCEPTED);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, 1);
	assert_int_equal(oldest, 4242);

	/* a seq is never handed out twice, even after its entry was acked */
	assert_int_equal(juki_outbox_ack(f->store, seq), 0);
	reopen(f);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_true(put(f->store, 3, CS_CHIYODA, "muni", 4400) > seq);
	assert_int_equal(juki_store_commit(f->store), 0);

	free(payload);
	json_decref(m.body);
}

static void
test_many(void **state)
{
	enum { TOTAL = 10000, PAGE = 500 };
	struct fixture *f = *state;
	struct juki_outbox_entry *e = NULL;
	int64_t after = 0, last = 0, count = -1, oldest = -1;
	size_t n = 0, i, pages = 0;
	int next = 0, others = 0;

	assert_int_equal(juki_store_begin(f->store), 0);
	for (int k = 0; k < TOTAL; k++) {
		put(f->store, k, CS_CHIYODA, "muni", 1000000 + k);
		if (k % 10 == 0) {
			put(f->store, TOTAL + k, PREF_TOKYO, "honnin", 1000000 + k);
		}
	}
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_equal(juki_outbox_stats(f->store, &count, &oldest), 0);
	assert_int_equal(count, TOTAL + TOTAL / 10);
	assert_int_equal(oldest, 1000000);

	for (;;) {
		assert_int_equal(
		    juki_outbox_next(f->store, CS_CHIYODA, "muni", after, PAGE, &e, &n), 0);
		if (n == 0) {
			break;
		}
		pages++;
		assert_true(n <= PAGE);
		for (i = 0; i < n; i++) {
			assert_true(e[i].seq > last);
			last = e[i].seq;
			assert_int_equal(msg_number(&e[i]), next);
			next++;
		}
		after = e[n - 1].seq;
		juki_outbox_entries_free(e, n);
	}
	assert_int_equal(next, TOTAL);
	assert_int_equal(pages, TOTAL / PAGE);

	assert_int_equal(juki_outbox_next(f->store, PREF_TOKYO, "honnin", 0, SIZE_MAX, &e, &n), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(msg_number(&e[i]), TOTAL + 10 * (int)i);
		others++;
	}
	juki_outbox_entries_free(e, n);
	assert_int_equal(others, TOTAL / 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_commit_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_next, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_attempted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reject, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inbox_digest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inbox_digest_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
