#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "juki/base/error.h"
#include "juki/store/audit.h"
#include "juki/store/store.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * One temp dir per run: a PKI with two nodes (cs:131016 signs the
 * histories, cs:271004 is "a different node") and a second CA that also
 * issued a cs:131016.  Each case makes its own history file.
 */
struct fix {
	char tmp[64];
	char pki[128];
	char other[128];
	char cert[256];       /* cs:131016, the signer */
	char other_node[256]; /* cs:271004, same CA */
	char other_ca[256];   /* cs:131016 from the other CA */
	char path[256];       /* this case's history */
	struct juki_tls *tls;
	int n;
	char err[512];
};

#define T0   1764000000000LL /* 2025-11-24T16:00:00Z */
#define OP_A "urn:juki:op:cs:131016:tanaka"
#define OP_B "urn:juki:op:cs:131016:suzuki"

static int
group_setup(void **state)
{
	struct juki_tls_conf conf = {0};
	char key[256], ca[256];
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	*state = f;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "audit") == NULL) {
		return -1;
	}
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->other, sizeof(f->other), "%s/other", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:cs:131016", 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:cs:271004", 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_init_ca(f->other, "another CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->other, "urn:juki:cs:131016", 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	snprintf(f->cert, sizeof(f->cert), "%s/cs-131016.crt", f->pki);
	snprintf(f->other_node, sizeof(f->other_node), "%s/cs-271004.crt", f->pki);
	snprintf(f->other_ca, sizeof(f->other_ca), "%s/cs-131016.crt", f->other);
	snprintf(key, sizeof(key), "%s/cs-131016.key", f->pki);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->pki);
	conf.cert = f->cert;
	conf.key = key;
	conf.ca = ca;
	return juki_tls_new(&conf, &f->tls, f->err, sizeof(f->err)) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	struct fix *f = *state;
	int rc;

	juki_tls_free(f->tls);
	rc = test_rm_rf(f->tmp);
	free(f);
	ERR_clear_error();
	return rc;
}

/* A fresh history path for each case. */
static int
setup(void **state)
{
	struct fix *f = *state;

	snprintf(f->path, sizeof(f->path), "%s/audit-%d.db", f->tmp, ++f->n);
	return 0;
}

static struct juki_audit *
open_history(struct fix *f, struct juki_tls *signer, int64_t every)
{
	struct juki_audit *a = NULL;

	if (juki_audit_open(f->path, signer, every, &a, f->err, sizeof(f->err)) != 0) {
		fail_msg("juki_audit_open: %s", f->err);
	}
	return a;
}

/* n entries at T0 + i seconds: operators alternate, every third has no target. */
static void
fill(struct juki_audit *a, int from, int n)
{
	char target[32], detail[64];

	for (int i = from; i < from + n; i++) {
		snprintf(target, sizeof(target), "%011d", 10000000 + i);
		snprintf(detail, sizeof(detail), "rule %d", i);
		assert_int_equal(juki_audit_append(a, T0 + i * 1000LL, i % 2 ? OP_B : OP_A,
						   "resident.show", i % 3 == 0 ? NULL : target,
						   "ok", detail),
				 0);
	}
}

/* A history of n entries (checkpoints every 5), closed. */
static void
make_history(struct fix *f, int n)
{
	struct juki_audit *a = open_history(f, f->tls, 5);

	fill(a, 1, n);
	juki_audit_close(a);
}

struct result {
	int ok;
	int64_t entries;
	int64_t checkpoints;
	int64_t first_broken; /* -1 when null */
	char reason[32];
	int64_t unsigned_tail;
	int64_t signed_through;
};

static struct result
verify(struct fix *f, const char *cert)
{
	struct result r = {0};
	json_t *report = NULL, *fb, *reason;

	if (juki_audit_verify_file(f->path, cert, &report, f->err, sizeof(f->err)) != 0) {
		fail_msg("juki_audit_verify_file: %s", f->err);
	}
	r.ok = json_is_true(json_object_get(report, "ok"));
	r.entries = json_integer_value(json_object_get(report, "entries"));
	r.checkpoints = json_integer_value(json_object_get(report, "checkpoints"));
	fb = json_object_get(report, "first_broken");
	r.first_broken = json_is_integer(fb) ? json_integer_value(fb) : -1;
	reason = json_object_get(report, "reason");
	snprintf(r.reason, sizeof(r.reason), "%s",
		 json_is_string(reason) ? json_string_value(reason) : "");
	r.unsigned_tail = json_integer_value(json_object_get(report, "unsigned_tail"));
	r.signed_through = json_integer_value(json_object_get(report, "signed_through"));
	/* the report's form: null exactly when ok */
	assert_int_equal(json_is_null(fb), r.ok);
	assert_int_equal(json_is_null(reason), r.ok);
	json_decref(report);
	return r;
}

static void
assert_broken(struct fix *f, const char *cert, int64_t seq, const char *reason)
{
	struct result r = verify(f, cert);

	assert_false(r.ok);
	assert_int_equal(r.first_broken, seq);
	assert_string_equal(r.reason, reason);
}

static void
assert_intact(struct fix *f)
{
	struct result r = verify(f, f->cert);

	if (!r.ok) {
		fail_msg("history broken at %lld (%s)", (long long)r.first_broken, r.reason);
	}
}

/* SQL on the file through a connection of its own, as someone with the sqlite3 tool. */
static void
sql(struct fix *f, const char *stmt)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, stmt, NULL, NULL, &msg) != SQLITE_OK) {
		fail_msg("%s: %s", stmt, msg);
	}
	sqlite3_close(db);
}

static void
test_append_show(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	json_t *r, *e;

	fill(a, 1, 7);
	r = juki_audit_show(a, NULL, 0, 100);
	assert_non_null(r);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 7);
	assert_false(json_is_true(json_object_get(r, "more")));
	e = json_array_get(json_object_get(r, "entries"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(e, "time")),
			    "2025-11-24T16:00:01.000Z");
	assert_string_equal(json_string_value(json_object_get(e, "operator")), OP_B);
	assert_string_equal(json_string_value(json_object_get(e, "action")), "resident.show");
	assert_string_equal(json_string_value(json_object_get(e, "target")), "00010000001");
	assert_string_equal(json_string_value(json_object_get(e, "outcome")), "ok");
	assert_string_equal(json_string_value(json_object_get(e, "detail")), "rule 1");
	/* entry 3 was appended without a target: null, not "" */
	e = json_array_get(json_object_get(r, "entries"), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 3);
	assert_true(json_is_null(json_object_get(e, "target")));
	json_decref(r);

	/* one operator: A has the even entries 2, 4, 6 */
	r = juki_audit_show(a, OP_A, 0, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 3);
	e = json_array_get(json_object_get(r, "entries"), 1);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 4);
	json_decref(r);
	r = juki_audit_show(a, "urn:juki:op:cs:131016:nobody", 0, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 0);
	assert_false(json_is_true(json_object_get(r, "more")));
	json_decref(r);

	/* since: at or after, oldest first */
	r = juki_audit_show(a, NULL, T0 + 5000, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 3);
	e = json_array_get(json_object_get(r, "entries"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 5);
	json_decref(r);
	r = juki_audit_show(a, OP_B, T0 + 4000, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 2); /* 5, 7 */
	json_decref(r);
	r = juki_audit_show(a, NULL, T0 + 8000, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 0);
	json_decref(r);

	/* limit and more, at the boundary */
	r = juki_audit_show(a, NULL, 0, 3);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 3);
	assert_true(json_is_true(json_object_get(r, "more")));
	e = json_array_get(json_object_get(r, "entries"), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 3);
	json_decref(r);
	r = juki_audit_show(a, NULL, 0, 7);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 7);
	assert_false(json_is_true(json_object_get(r, "more")));
	json_decref(r);
	r = juki_audit_show(a, NULL, 0, 0);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 0);
	assert_true(json_is_true(json_object_get(r, "more")));
	json_decref(r);
	r = juki_audit_show(a, OP_A, 0, 2);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 2);
	assert_true(json_is_true(json_object_get(r, "more")));
	json_decref(r);
	assert_null(juki_audit_show(NULL, NULL, 0, 10));
	juki_audit_close(a);
}

/* A clock that stepped back: since still finds every entry at or after it, in seq order. */
static void
test_show_clock_back(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 100);
	static const int64_t times[] = {100000, 200000, 150000, 300000, 120000};
	json_t *r, *entries;

	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(juki_audit_append(a, times[i], OP_A, "login", NULL, "ok", NULL),
				 0);
	}
	r = juki_audit_show(a, NULL, 140000, 10);
	entries = json_object_get(r, "entries");
	assert_int_equal(json_array_size(entries), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 0), "seq")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 1), "seq")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 2), "seq")), 4);
	json_decref(r);
	juki_audit_close(a);
	assert_intact(f);
}

static void
test_reopen_continues(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	struct result res;
	json_t *r;

	fill(a, 1, 3);
	juki_audit_close(a);
	a = open_history(f, f->tls, 5);
	fill(a, 4, 4);
	r = juki_audit_show(a, NULL, 0, 100);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 7);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(r, "entries"), 6), "seq")),
			 7);
	json_decref(r);
	juki_audit_close(a);
	/* the chain runs through the reopening, and the checkpoint at 5 counted from 0 */
	res = verify(f, f->cert);
	assert_true(res.ok);
	assert_int_equal(res.entries, 7);
	assert_int_equal(res.checkpoints, 1);
	assert_int_equal(res.signed_through, 5);
	assert_int_equal(res.unsigned_tail, 2);
	/* and the last checkpoint is remembered: the next one is due at 10, not 12 */
	a = open_history(f, f->tls, 5);
	fill(a, 8, 3);
	juki_audit_close(a);
	res = verify(f, f->cert);
	assert_true(res.ok);
	assert_int_equal(res.checkpoints, 2);
	assert_int_equal(res.signed_through, 10);
	assert_int_equal(res.unsigned_tail, 0);
}

static void
test_verify_ok_and_checkpoint(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	struct result r;

	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.entries, 0);
	assert_int_equal(r.checkpoints, 0);
	assert_int_equal(r.unsigned_tail, 0);
	/* nothing to sign on an empty history */
	assert_int_equal(juki_audit_checkpoint(a, T0), 0);
	fill(a, 1, 12);
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.entries, 12);
	assert_int_equal(r.checkpoints, 2);
	assert_int_equal(r.signed_through, 10);
	assert_int_equal(r.unsigned_tail, 2);
	assert_int_equal(juki_audit_checkpoint(a, T0 + 20000), 0);
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.checkpoints, 3);
	assert_int_equal(r.signed_through, 12);
	assert_int_equal(r.unsigned_tail, 0);
	/* nothing new: no second checkpoint at 12 */
	assert_int_equal(juki_audit_checkpoint(a, T0 + 21000), 0);
	r = verify(f, f->cert);
	assert_int_equal(r.checkpoints, 3);
	/* the interval counts from the manual checkpoint: next at 17 */
	fill(a, 13, 5);
	r = verify(f, f->cert);
	assert_int_equal(r.checkpoints, 4);
	assert_int_equal(r.signed_through, 17);
	assert_int_equal(juki_audit_checkpoint(NULL, T0), JUKI_EINVAL);
	juki_audit_close(a);
}

/*
 * After a change of the node's key, checkpoints signed with the old key
 * verify against a file of the node's certificates, current and earlier,
 * and fail against the new certificate alone.
 */
static void
test_verify_after_key_change(void **state)
{
	struct fix *f = *state;
	struct juki_tls_conf conf = {0};
	struct juki_tls *newer = NULL;
	struct juki_audit *a = open_history(f, f->tls, 5);
	char key[300], bundle[300], cmd[1200];
	struct result r;

	fill(a, 1, 6);
	/* The node's new key (a certificate of the other CA stands for it here). */
	snprintf(key, sizeof(key), "%s/cs-131016.key", f->other);
	conf.cert = f->other_ca;
	conf.key = key;
	conf.ca = f->other_ca;
	assert_int_equal(juki_tls_new(&conf, &newer, f->err, sizeof(f->err)), 0);
	juki_audit_set_signer(a, newer);
	fill(a, 7, 5);
	juki_audit_close(a);
	r = verify(f, f->other_ca);
	assert_false(r.ok);
	assert_int_equal(r.first_broken, 5);
	assert_string_equal(r.reason, "signature");
	snprintf(bundle, sizeof(bundle), "%s/certs-%d.pem", f->tmp, f->n);
	snprintf(cmd, sizeof(cmd), "cat %s %s > %s", f->other_ca, f->cert, bundle);
	assert_int_equal(system(cmd), 0);
	r = verify(f, bundle);
	assert_true(r.ok);
	assert_int_equal(r.checkpoints, 2);
	assert_int_equal(r.signed_through, 10);
	juki_tls_free(newer);
}

/* Verification reads the WAL of a history the daemon still has open. */
static void
test_verify_while_open(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	struct result r;

	fill(a, 1, 8);
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.entries, 8);
	fill(a, 9, 2);
	r = verify(f, f->cert);
	assert_int_equal(r.entries, 10);
	assert_int_equal(r.signed_through, 10);
	/* and appending goes on after a verification */
	fill(a, 11, 1);
	juki_audit_close(a);
	assert_int_equal(verify(f, f->cert).entries, 11);
}

/* Any field of a row changed with SQL breaks the chain at exactly that row. */
static void
test_edit_row(void **state)
{
	static const struct {
		const char *edit;
		const char *restore;
	} edits[] = {
	    {"UPDATE entries SET time_ms = time_ms + 1 WHERE seq = 7",
	     "UPDATE entries SET time_ms = time_ms - 1 WHERE seq = 7"},
	    {"UPDATE entries SET operator = '" OP_A "' WHERE seq = 7",
	     "UPDATE entries SET operator = '" OP_B "' WHERE seq = 7"},
	    {"UPDATE entries SET action = 'login' WHERE seq = 7",
	     "UPDATE entries SET action = 'resident.show' WHERE seq = 7"},
	    {"UPDATE entries SET target = '00010000008' WHERE seq = 7",
	     "UPDATE entries SET target = '00010000007' WHERE seq = 7"},
	    {"UPDATE entries SET target = NULL WHERE seq = 7",
	     "UPDATE entries SET target = '00010000007' WHERE seq = 7"},
	    {"UPDATE entries SET outcome = 'forbidden' WHERE seq = 7",
	     "UPDATE entries SET outcome = 'ok' WHERE seq = 7"},
	    {"UPDATE entries SET detail = 'rule 7 ' WHERE seq = 7",
	     "UPDATE entries SET detail = 'rule 7' WHERE seq = 7"},
	    {"UPDATE entries SET detail = NULL WHERE seq = 7",
	     "UPDATE entries SET detail = 'rule 7' WHERE seq = 7"},
	    {"UPDATE entries SET hash = zeroblob(32) WHERE seq = 7", NULL},
	    {"UPDATE entries SET time_ms = 'yesterday' WHERE seq = 7", NULL},
	    {"UPDATE entries SET operator = CAST(operator AS BLOB) WHERE seq = 7", NULL},
	};
	struct fix *f = *state;
	sqlite3_stmt *st;
	sqlite3 *db;
	unsigned char hash[32];
	int64_t time_ms;

	make_history(f, 12);
	assert_intact(f);
	/* keep what the last edits cannot give back by a plain UPDATE */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT hash, time_ms FROM entries WHERE seq = 7",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(hash, sqlite3_column_blob(st, 0), 32);
	time_ms = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);

	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		sql(f, edits[i].edit);
		assert_broken(f, f->cert, 7, "hash");
		if (edits[i].restore != NULL) {
			sql(f, edits[i].restore);
		} else {
			assert_int_equal(sqlite3_prepare_v2(db,
							    "UPDATE entries SET hash = ?1, "
							    "time_ms = ?2, operator = '" OP_B
							    "' WHERE seq = 7",
							    -1, &st, NULL),
					 SQLITE_OK);
			sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, time_ms);
			assert_int_equal(sqlite3_step(st), SQLITE_DONE);
			sqlite3_finalize(st);
		}
		assert_intact(f);
	}
	sqlite3_close(db);
	/* entry 6 has no target: an empty one is a different entry */
	sql(f, "UPDATE entries SET target = '' WHERE seq = 6");
	assert_broken(f, f->cert, 6, "hash");
	sql(f, "UPDATE entries SET target = NULL WHERE seq = 6");
	assert_intact(f);
	/* an entry in a signed stretch and one in the unsigned tail alike */
	sql(f, "UPDATE entries SET outcome = 'wrong-pin' WHERE seq = 12");
	assert_broken(f, f->cert, 12, "hash");
	sql(f, "UPDATE entries SET outcome = 'wrong-pin' WHERE seq = 1");
	assert_broken(f, f->cert, 1, "hash");
}

static void
test_delete_rows(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a;
	struct result r;
	char err[256];

	make_history(f, 12);
	sql(f, "DELETE FROM entries WHERE seq = 6");
	assert_broken(f, f->cert, 6, "sequence");

	setup(state);
	make_history(f, 12);
	sql(f, "DELETE FROM entries WHERE seq = 1");
	assert_broken(f, f->cert, 1, "sequence");

	/* the unsigned tail cut short is not detectable from the file: it only shrinks */
	setup(state);
	make_history(f, 12);
	sql(f, "DELETE FROM entries WHERE seq = 12");
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.entries, 11);
	assert_int_equal(r.unsigned_tail, 1);

	/* a signed entry cut from the end is */
	sql(f, "DELETE FROM entries WHERE seq >= 10");
	assert_broken(f, f->cert, 10, "sequence");
	/* and the daemon refuses to build on it: the next numbers are signed already */
	assert_int_equal(juki_audit_open(f->path, f->tls, 5, &a, err, sizeof(err)), JUKI_ESTORE);
	assert_null(a);
	assert_non_null(strstr(err, "missing"));

	/* all entries gone, checkpoints left */
	sql(f, "DELETE FROM entries");
	assert_broken(f, f->cert, 1, "sequence");

	/* an entry numbered before the first */
	setup(state);
	make_history(f, 3);
	sql(f, "UPDATE entries SET seq = 0 WHERE seq = 1");
	assert_broken(f, f->cert, 0, "sequence");
}

static void
flip_sig_bit(struct fix *f, int64_t seq, int at)
{
	unsigned char sig[128];
	sqlite3_stmt *st;
	sqlite3 *db;
	int len;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT sig FROM checkpoints WHERE seq = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	len = sqlite3_column_bytes(st, 0);
	assert_true(len > at && len <= (int)sizeof(sig));
	memcpy(sig, sqlite3_column_blob(st, 0), (size_t)len);
	sqlite3_finalize(st);
	sig[at] ^= 1;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE checkpoints SET sig = ?1 WHERE seq = ?2", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_blob(st, 1, sig, len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seq);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
test_checkpoint_tampered(void **state)
{
	struct fix *f = *state;

	make_history(f, 12);
	/* one bit of the signature at 10 */
	flip_sig_bit(f, 10, 20);
	assert_broken(f, f->cert, 10, "signature");
	flip_sig_bit(f, 10, 20);
	assert_intact(f);

	setup(state);
	make_history(f, 12);
	sql(f, "UPDATE checkpoints SET sig = randomblob(71) WHERE seq = 5");
	assert_broken(f, f->cert, 5, "signature");
	sql(f, "UPDATE checkpoints SET sig = zeroblob(0) WHERE seq = 5");
	assert_broken(f, f->cert, 5, "signature");
	sql(f, "UPDATE checkpoints SET sig = 'not a signature' WHERE seq = 5");
	assert_broken(f, f->cert, 5, "signature");

	/* the checkpoint's time is signed too */
	setup(state);
	make_history(f, 12);
	sql(f, "UPDATE checkpoints SET time_ms = time_ms + 1 WHERE seq = 10");
	assert_broken(f, f->cert, 10, "signature");

	/* a checkpoint's hash that is not the chain's */
	setup(state);
	make_history(f, 12);
	sql(f, "UPDATE checkpoints SET hash = zeroblob(32) WHERE seq = 10");
	assert_broken(f, f->cert, 10, "checkpoint");

	/* moved to another entry */
	setup(state);
	make_history(f, 12);
	sql(f, "UPDATE checkpoints SET seq = 6 WHERE seq = 5");
	assert_broken(f, f->cert, 6, "checkpoint");

	/* one that matches no entry */
	setup(state);
	make_history(f, 12);
	sql(f, "INSERT INTO checkpoints SELECT 0, time_ms, hash, sig, prev FROM checkpoints "
	       "WHERE seq = 5");
	assert_broken(f, f->cert, 0, "checkpoint");
}

/* The right signatures, but from another node, or from our name under another CA. */
static void
test_other_certificate(void **state)
{
	struct fix *f = *state;

	make_history(f, 12);
	assert_intact(f);
	assert_broken(f, f->other_node, 5, "signature");
	assert_broken(f, f->other_ca, 5, "signature");
}

/*
 * The chain computed here from the encoding in docs/audit.md, without
 * audit.c: what an independent verifier, or an attacker with the file,
 * would compute.
 */
static void
put_field(unsigned char *buf, size_t *n, const unsigned char *text, int len, int absent)
{
	uint32_t l = absent ? 0xFFFFFFFFu : (uint32_t)len;

	for (int i = 0; i < 4; i++) {
		buf[(*n)++] = (unsigned char)(l >> (24 - 8 * i));
	}
	if (!absent) {
		memcpy(buf + *n, text, (size_t)len);
		*n += (size_t)len;
	}
}

static void
doc_hash(const unsigned char prev[32], sqlite3_stmt *row, unsigned char out[32])
{
	unsigned char buf[32 + 16 + 5 * (4 + 256)];
	size_t n = 0;

	memcpy(buf, prev, 32);
	n = 32;
	for (int c = 0; c < 2; c++) {
		uint64_t v = (uint64_t)sqlite3_column_int64(row, c);

		for (int i = 0; i < 8; i++) {
			buf[n++] = (unsigned char)(v >> (56 - 8 * i));
		}
	}
	for (int c = 2; c < 7; c++) {
		const unsigned char *t = sqlite3_column_text(row, c);

		put_field(buf, &n, t, sqlite3_column_bytes(row, c),
			  sqlite3_column_type(row, c) == SQLITE_NULL);
	}
	assert_int_equal(EVP_Digest(buf, n, out, NULL, EVP_sha256(), NULL), 1);
}

/* Recompute every hash from the rows; with write, store them (the attacker). */
static int
rechain(struct fix *f, int write)
{
	sqlite3 *db;
	sqlite3_stmt *st, *up;
	unsigned char prev[32] = {0}, h[32];
	int same = 1;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT seq, time_ms, operator, action, target, "
					    "outcome, detail, hash FROM entries ORDER BY seq",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE entries SET hash = ?1 WHERE seq = ?2", -1, &up, NULL),
	    SQLITE_OK);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		doc_hash(prev, st, h);
		if (sqlite3_column_bytes(st, 7) != 32 ||
		    memcmp(sqlite3_column_blob(st, 7), h, 32)) {
			same = 0;
		}
		if (write) {
			sqlite3_bind_blob(up, 1, h, 32, SQLITE_TRANSIENT);
			sqlite3_bind_int64(up, 2, sqlite3_column_int64(st, 0));
			assert_int_equal(sqlite3_step(up), SQLITE_DONE);
			sqlite3_reset(up);
		}
		memcpy(prev, h, 32);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_close(db);
	return same;
}

/* The worked example of docs/audit.md §3, byte for byte. */
static void
test_known_answer(void **state)
{
	static const unsigned char want[32] = {
	    0xa5, 0x1e, 0xe4, 0xed, 0x17, 0x73, 0xc8, 0x9a, 0xe3, 0xb7, 0xe1,
	    0x17, 0xcb, 0x38, 0x53, 0xf9, 0x84, 0xc2, 0x35, 0xa5, 0x8b, 0x4e,
	    0x3c, 0xc3, 0xeb, 0xa0, 0xdd, 0x3e, 0xb4, 0x0d, 0x80, 0xd2,
	};
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	sqlite3_stmt *st;
	sqlite3 *db;

	/* entry 1 of a real history: the daemon's start */
	assert_int_equal(
	    juki_audit_append(a, 1764000001000LL, "-", "start", NULL, "ok", "juki-csd"), 0);
	juki_audit_close(a);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT hash FROM entries WHERE seq = 1", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), 32);
	assert_memory_equal(sqlite3_column_blob(st, 0), want, 32);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
test_rewritten_chain(void **state)
{
	struct fix *f = *state;
	struct result r;

	make_history(f, 12);
	/* the documented encoding is the one in use */
	assert_true(rechain(f, 0));

	/* edit entry 3, then make every hash agree again */
	sql(f, "UPDATE entries SET target = '99999999999' WHERE seq = 3");
	assert_false(rechain(f, 0));
	rechain(f, 1);
	assert_true(rechain(f, 0));
	/* the chain holds, but not the hash the node signed at 5 */
	assert_broken(f, f->cert, 5, "checkpoint");
	/* and carrying the new hashes into the checkpoints needs the node's key */
	sql(f, "UPDATE checkpoints SET hash = (SELECT hash FROM entries "
	       "WHERE entries.seq = checkpoints.seq)");
	assert_broken(f, f->cert, 5, "signature");

	/* an edit in the unsigned tail, rechained, is out of the signatures' reach */
	setup(state);
	make_history(f, 12);
	sql(f, "UPDATE entries SET outcome = 'forbidden' WHERE seq = 12");
	rechain(f, 1);
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.signed_through, 10);
	assert_int_equal(r.unsigned_tail, 2);
}

/*
 * The forgeries the file alone cannot show, and what the node's own store
 * remembers of its history shows.  A history bound to a store of its own.
 */
struct bound {
	struct juki_store *store;
	struct juki_audit *audit;
};

static void
store_path(struct fix *f, char *out, size_t len)
{
	snprintf(out, len, "%s.store", f->path);
}

static struct bound
open_bound(struct fix *f, int64_t every)
{
	static const struct juki_schema schema = JUKI_AUDIT_SCHEMA;
	struct bound b = {0};
	char path[300];

	store_path(f, path, sizeof(path));
	if (juki_store_open(path, &schema, 1, &b.store, f->err, sizeof(f->err)) != 0) {
		fail_msg("juki_store_open: %s", f->err);
	}
	b.audit = open_history(f, f->tls, every);
	assert_int_equal(juki_audit_bind(b.audit, b.store), 0);
	return b;
}

static void
close_bound(struct bound *b)
{
	juki_audit_close(b->audit);
	juki_store_close(b->store);
}

/* The report of the file checked against the head the node's store remembers. */
static struct result
verify_head(struct fix *f)
{
	struct juki_audit_head head;
	struct result r = {0};
	json_t *report = NULL;
	char path[300];

	store_path(f, path, sizeof(path));
	assert_int_equal(juki_audit_head_read(path, &head, f->err, sizeof(f->err)), 0);
	if (juki_audit_verify_file_head(f->path, f->cert, &head, &report, f->err, sizeof(f->err)) !=
	    0) {
		fail_msg("juki_audit_verify_file_head: %s", f->err);
	}
	r.ok = json_is_true(json_object_get(report, "ok"));
	r.entries = json_integer_value(json_object_get(report, "entries"));
	r.first_broken = json_is_integer(json_object_get(report, "first_broken"))
			     ? json_integer_value(json_object_get(report, "first_broken"))
			     : -1;
	snprintf(r.reason, sizeof(r.reason), "%s",
		 json_is_string(json_object_get(report, "reason"))
		     ? json_string_value(json_object_get(report, "reason"))
		     : "");
	assert_int_equal(json_integer_value(json_object_get(report, "recorded")), head.seq);
	json_decref(report);
	return r;
}

/* Reopened after the forgery: the state, and no entry or checkpoint is written. */
static void
assert_refused(struct fix *f, enum juki_audit_state want, int64_t seq, const char *reason)
{
	struct bound b = open_bound(f, 5);
	const char *why_reason = NULL;
	int64_t at = 0;
	char why[200];

	assert_int_equal(juki_audit_state(b.audit, &at, &why_reason, why, sizeof(why)), want);
	assert_int_equal(at, seq);
	assert_string_equal(why_reason, reason);
	assert_true(strlen(why) > 0);
	assert_int_equal(juki_audit_append(b.audit, T0 + 99000, OP_A, "login", NULL, "ok", NULL),
			 JUKI_EPERM);
	/* nor does it sign what it cannot link to its last checkpoint */
	assert_int_equal(juki_audit_checkpoint(b.audit, T0 + 99000), JUKI_EPERM);
	close_bound(&b);
}

/* A checkpoint deleted from the middle: the next one names it as the one before. */
static void
test_checkpoint_deleted(void **state)
{
	struct fix *f = *state;

	make_history(f, 15);
	assert_intact(f);
	sql(f, "DELETE FROM checkpoints WHERE seq = 5");
	assert_broken(f, f->cert, 5, "checkpoint");

	setup(state);
	make_history(f, 15);
	sql(f, "DELETE FROM checkpoints WHERE seq = 10");
	assert_broken(f, f->cert, 10, "checkpoint");
}

/* Cut back to a checkpoint, later checkpoints deleted too. */
static void
test_cut_to_checkpoint(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	struct result r;

	fill(b.audit, 1, 12);
	close_bound(&b);
	sql(f, "DELETE FROM entries WHERE seq > 5; DELETE FROM checkpoints WHERE seq > 5");
	/* the file alone cannot tell (docs/audit.md §5.2) */
	assert_true(verify(f, f->cert).ok);
	/* the node's store can */
	r = verify_head(f);
	assert_false(r.ok);
	assert_int_equal(r.first_broken, 6);
	assert_string_equal(r.reason, "missing");
	assert_refused(f, JUKI_AUDIT_ROLLBACK, 6, "missing");
}

/* Every checkpoint deleted and the entries rewritten with their hashes. */
static void
test_checkpoints_deleted_rewritten(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	struct result r;

	fill(b.audit, 1, 12);
	close_bound(&b);
	sql(f, "DELETE FROM checkpoints; UPDATE entries SET outcome = 'forbidden' WHERE seq = 3");
	rechain(f, 1);
	assert_true(verify(f, f->cert).ok);
	r = verify_head(f);
	assert_false(r.ok);
	assert_int_equal(r.first_broken, 12); /* not the entry the node recorded last */
	assert_string_equal(r.reason, "rewritten");
	assert_refused(f, JUKI_AUDIT_ROLLBACK, 12, "rewritten");
}

/* The file replaced by a fresh history of the same node, shorter or longer. */
static void
test_fresh_file_same_node(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	struct juki_audit *a;

	fill(b.audit, 1, 12);
	close_bound(&b);
	assert_int_equal(unlink(f->path), 0);
	a = open_history(f, f->tls, 5);
	fill(a, 1, 7);
	juki_audit_close(a);
	assert_true(verify(f, f->cert).ok);
	assert_false(verify_head(f).ok);
	assert_refused(f, JUKI_AUDIT_ROLLBACK, 8, "missing");

	assert_int_equal(unlink(f->path), 0);
	a = open_history(f, f->tls, 5);
	fill(a, 100, 20);
	juki_audit_close(a);
	assert_true(verify(f, f->cert).ok);
	assert_false(verify_head(f).ok);
	assert_refused(f, JUKI_AUDIT_ROLLBACK, 12, "rewritten");
}

static void
copy_file(const char *from, const char *to)
{
	assert_int_equal(test_copy_file(from, to), 0);
}

/* Rolled back to an older copy of itself. */
static void
test_rollback_to_older_copy(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	char old[300];

	fill(b.audit, 1, 6);
	close_bound(&b);
	snprintf(old, sizeof(old), "%s.old", f->path);
	copy_file(f->path, old);
	b = open_bound(f, 5);
	assert_int_equal(juki_audit_state(b.audit, NULL, NULL, NULL, 0), JUKI_AUDIT_OK);
	fill(b.audit, 7, 6);
	close_bound(&b);
	copy_file(old, f->path);
	assert_true(verify(f, f->cert).ok);
	assert_false(verify_head(f).ok);
	assert_refused(f, JUKI_AUDIT_ROLLBACK, 7, "missing");
}

/* Deleted at rest and while open; adopted, the chain goes on, the store remembers it. */
static void
test_file_missing_and_adopted(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	char found[JUKI_AUDIT_FIELD_MAX];
	struct result r;

	fill(b.audit, 1, 4);
	close_bound(&b);
	assert_int_equal(unlink(f->path), 0);
	r = verify_head(f);
	assert_false(r.ok);
	assert_string_equal(r.reason, "missing");
	assert_refused(f, JUKI_AUDIT_GONE, 1, "missing");

	/* deleted while open: the next write sees it */
	b = open_bound(f, 5);
	assert_int_equal(juki_audit_adopt(b.audit, found, sizeof(found)), 0);
	assert_non_null(strstr(found, "4 entries"));
	assert_int_equal(juki_audit_adopt(b.audit, found, sizeof(found)), JUKI_EEXIST);
	fill(b.audit, 1, 3);
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(juki_audit_append(b.audit, T0, OP_A, "login", NULL, "ok", NULL),
			 JUKI_EPERM);
	assert_int_equal(juki_audit_check(b.audit), JUKI_AUDIT_GONE);
	assert_int_equal(juki_audit_adopt(b.audit, found, sizeof(found)), 0);
	assert_non_null(strstr(found, "gone"));
	fill(b.audit, 1, 2);
	close_bound(&b);
	assert_intact(f);
	assert_true(verify_head(f).ok);
	/* and the next start finds the adopted history the one recorded */
	b = open_bound(f, 5);
	assert_int_equal(juki_audit_state(b.audit, NULL, NULL, NULL, 0), JUKI_AUDIT_OK);
	close_bound(&b);
}

/* A break found while running names the entry that was changed, not the next new one. */
static void
test_changed_entry_found_there(void **state)
{
	struct fix *f = *state;
	struct bound b = open_bound(f, 5);
	const char *reason;
	int64_t seq;

	/* rewritten with its hashes after the last checkpoint */
	fill(b.audit, 1, 8);
	sql(f, "UPDATE entries SET detail = 'nothing' WHERE seq = 6");
	rechain(f, 1);
	assert_int_equal(juki_audit_append(b.audit, T0, OP_A, "login", NULL, "ok", NULL),
			 JUKI_EPERM);
	assert_int_equal(juki_audit_state(b.audit, &seq, &reason, NULL, 0), JUKI_AUDIT_ROLLBACK);
	assert_int_equal(seq, 6);
	assert_string_equal(reason, "rewritten");
	close_bound(&b);

	/* changed without its hash: the next checkpoint will not sign over it */
	setup(state);
	b = open_bound(f, 5);
	fill(b.audit, 1, 8);
	sql(f, "UPDATE entries SET detail = 'nothing' WHERE seq = 7");
	fill(b.audit, 9, 1);
	assert_int_equal(juki_audit_append(b.audit, T0, OP_A, "login", NULL, "ok", NULL),
			 JUKI_EPERM);
	assert_int_equal(juki_audit_state(b.audit, &seq, &reason, NULL, 0), JUKI_AUDIT_ROLLBACK);
	assert_int_equal(seq, 7);
	assert_string_equal(reason, "hash");
	close_bound(&b);
	assert_broken(f, f->cert, 7, "hash");

	/* an entry slipped in after the last one written, chained */
	setup(state);
	b = open_bound(f, 5);
	fill(b.audit, 1, 8);
	sql(f, "INSERT INTO entries SELECT 9, time_ms, operator, action, target, outcome, detail, "
	       "hash FROM entries WHERE seq = 8");
	rechain(f, 1);
	assert_int_equal(juki_audit_append(b.audit, T0, OP_A, "login", NULL, "ok", NULL),
			 JUKI_EPERM);
	assert_int_equal(juki_audit_state(b.audit, &seq, &reason, NULL, 0), JUKI_AUDIT_ROLLBACK);
	assert_int_equal(seq, 9);
	assert_string_equal(reason, "rewritten");
	close_bound(&b);
}

/* More certificates than a verifier takes are refused, not ignored. */
static void
test_certs_over_limit(void **state)
{
	struct fix *f = *state;
	char pem[300], *one;
	json_t *report = NULL;
	FILE *in, *out;
	long len;

	make_history(f, 6);
	in = fopen(f->cert, "rb");
	assert_non_null(in);
	fseek(in, 0, SEEK_END);
	len = ftell(in);
	rewind(in);
	one = malloc((size_t)len);
	assert_int_equal(fread(one, 1, (size_t)len, in), (size_t)len);
	fclose(in);
	snprintf(pem, sizeof(pem), "%s.certs", f->path);
	out = fopen(pem, "wb");
	for (int i = 0; i < JUKI_AUDIT_CERTS_MAX; i++) {
		fwrite(one, 1, (size_t)len, out);
	}
	fclose(out);
	assert_true(verify(f, pem).ok);
	out = fopen(pem, "ab");
	fwrite(one, 1, (size_t)len, out);
	fclose(out);
	free(one);
	assert_int_equal(juki_audit_verify_file(f->path, pem, &report, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_null(report);
	assert_non_null(strstr(f->err, "more than 16"));
}

/* A copy in a folder the verifier cannot write to: checked, and nothing written beside it. */
static void
test_read_only_folder(void **state)
{
	struct fix *f = *state;
	char dir[300], copy[350], cert[350];
	int status, files = 0;
	struct dirent *d;
	pid_t pid;
	DIR *dp;

	make_history(f, 12);
	snprintf(dir, sizeof(dir), "%s/ro", f->tmp);
	snprintf(copy, sizeof(copy), "%s/history.db", dir);
	snprintf(cert, sizeof(cert), "%s/node.crt", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	copy_file(f->path, copy);
	copy_file(f->cert, cert);
	assert_int_equal(chmod(copy, 0444), 0);
	assert_int_equal(chmod(cert, 0444), 0);
	assert_int_equal(chmod(dir, 0555), 0);
	assert_int_equal(chmod(f->tmp, 0711), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		json_t *report = NULL;
		char err[256];

		/* root writes anywhere: check as nobody, as an auditor would */
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
			_exit(3);
		}
		if (juki_audit_verify_file(copy, cert, &report, err, sizeof(err)) != 0) {
			fprintf(stderr, "verify: %s\n", err);
			_exit(1);
		}
		_exit(json_is_true(json_object_get(report, "ok")) &&
			      json_integer_value(json_object_get(report, "entries")) == 12
			  ? 0
			  : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(f->tmp, 0700);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	dp = opendir(dir);
	assert_non_null(dp);
	while ((d = readdir(dp)) != NULL) {
		files += d->d_name[0] != '.';
	}
	closedir(dp);
	assert_int_equal(files, 2); /* no -wal, no -shm */
	assert_int_equal(chmod(dir, 0755), 0);
}

/* A row that chains but breaks the rules of §1 (a control character, rechained). */
static void
test_field_rules_on_verify(void **state)
{
	struct fix *f = *state;

	make_history(f, 7);
	sql(f, "UPDATE entries SET detail = 'a' || char(10) || '7 forged line' WHERE seq = 7");
	rechain(f, 1);
	assert_broken(f, f->cert, 7, "field");

	setup(state);
	make_history(f, 7);
	sql(f, "UPDATE entries SET operator = '' WHERE seq = 6");
	rechain(f, 1);
	assert_broken(f, f->cert, 6, "field");
}

static void
test_fields_refused(void **state)
{
	static const char *const bad[] = {
	    "",                 /* empty where required */
	    "a\nb",             /* newline: would forge a line */
	    "a\tb",             /* any C0 control */
	    "\x1b[2J",          /* escape sequence */
	    "a\x7f",            /* DEL */
	    "a\xc2\x85",        /* C1 control (NEL) */
	    "a\xff",            /* not UTF-8 */
	    "\xc0\xaf",         /* overlong */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* beyond U+10FFFF */
	    "\xe3\x81",         /* cut short */
	};
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, f->tls, 5);
	char max[JUKI_AUDIT_FIELD_MAX + 2];
	json_t *r, *e;

	memset(max, 'x', sizeof(max));
	max[JUKI_AUDIT_FIELD_MAX + 1] = '\0';
	/* one byte over the limit, in each field */
	assert_int_equal(juki_audit_append(a, T0, max, "a", "t", "ok", "d"), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, max, "t", "ok", "d"), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, "a", max, "ok", "d"), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, "a", "t", max, "d"), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, "a", "t", "ok", max), JUKI_EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(juki_audit_append(a, T0, bad[i], "a", NULL, "ok", NULL),
				 JUKI_EINVAL);
		assert_int_equal(juki_audit_append(a, T0, OP_A, "a", NULL, bad[i], NULL),
				 JUKI_EINVAL);
		if (bad[i][0] != '\0') {
			assert_int_equal(juki_audit_append(a, T0, OP_A, "a", bad[i], "ok", NULL),
					 JUKI_EINVAL);
			assert_int_equal(juki_audit_append(a, T0, OP_A, "a", NULL, "ok", bad[i]),
					 JUKI_EINVAL);
		}
	}
	/* missing required fields, bad times, no history */
	assert_int_equal(juki_audit_append(a, T0, NULL, "a", NULL, "ok", NULL), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, NULL, NULL, "ok", NULL), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, T0, OP_A, "a", NULL, NULL, NULL), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, -1, OP_A, "a", NULL, "ok", NULL), JUKI_EINVAL);
	assert_int_equal(juki_audit_append(a, 253402300800000LL, OP_A, "a", NULL, "ok", NULL),
			 JUKI_EINVAL);
	assert_int_equal(juki_audit_append(NULL, T0, OP_A, "a", NULL, "ok", NULL), JUKI_EINVAL);

	/* nothing of that was recorded; the limit itself, empty optional fields and kanji are */
	max[JUKI_AUDIT_FIELD_MAX] = '\0';
	assert_int_equal(juki_audit_append(a, T0, max, max, max, max, max), 0);
	assert_int_equal(juki_audit_append(a, T0, OP_A, "login", "", "wrong-pin", ""), 0);
	assert_int_equal(juki_audit_append(a, 0, OP_A, "a", "千代田区 rule", "ok", "é"), 0);
	r = juki_audit_show(a, NULL, 0, 10);
	assert_int_equal(json_array_size(json_object_get(r, "entries")), 3);
	e = json_array_get(json_object_get(r, "entries"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
	assert_int_equal(strlen(json_string_value(json_object_get(e, "detail"))),
			 JUKI_AUDIT_FIELD_MAX);
	e = json_array_get(json_object_get(r, "entries"), 1);
	assert_string_equal(json_string_value(json_object_get(e, "target")), "");
	e = json_array_get(json_object_get(r, "entries"), 2);
	assert_string_equal(json_string_value(json_object_get(e, "time")),
			    "1970-01-01T00:00:00.000Z");
	assert_string_equal(json_string_value(json_object_get(e, "target")), "千代田区 rule");
	json_decref(r);
	juki_audit_close(a);
	assert_intact(f);
}

static void
test_file_mode(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a;
	struct stat st;
	char wal[300];
	mode_t old = umask(0);

	a = open_history(f, f->tls, 5);
	umask(old);
	fill(a, 1, 2);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	juki_audit_close(a);
}

static void
test_open_refused(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = (struct juki_audit *)f;
	json_t *report = NULL;
	sqlite3 *db;
	char path[300];
	struct stat st;
	off_t size;

	assert_int_equal(juki_audit_open(f->path, f->tls, 0, &a, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_null(a);
	assert_int_equal(juki_audit_open(NULL, f->tls, 5, &a, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_audit_open(":memory:", f->tls, 5, &a, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_audit_open(f->path, f->tls, 5, NULL, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	snprintf(path, sizeof(path), "%s/no/such/dir/audit.db", f->tmp);
	assert_int_equal(juki_audit_open(path, f->tls, 5, &a, f->err, sizeof(f->err)), -ENOENT);
	assert_null(a);

	/* the node's store (any other SQLite file) is left alone */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "CREATE TABLE outbox(seq INTEGER PRIMARY KEY)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(stat(f->path, &st), 0);
	size = st.st_size;
	assert_int_equal(juki_audit_open(f->path, f->tls, 5, &a, f->err, sizeof(f->err)),
			 JUKI_ESCHEMA);
	assert_non_null(strstr(f->err, "not an operation history"));
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, size);

	/* a history from a later version of the program */
	setup(state);
	make_history(f, 1);
	sql(f, "PRAGMA user_version = 3");
	assert_int_equal(juki_audit_open(f->path, f->tls, 5, &a, f->err, sizeof(f->err)),
			 JUKI_ESCHEMA);
	assert_int_equal(juki_audit_verify_file(f->path, f->cert, &report, f->err, sizeof(f->err)),
			 JUKI_ESCHEMA);
	assert_null(report);

	/* a head without a readable hash */
	setup(state);
	make_history(f, 3);
	sql(f, "UPDATE entries SET hash = 'x' WHERE seq = 3");
	assert_int_equal(juki_audit_open(f->path, f->tls, 5, &a, f->err, sizeof(f->err)),
			 JUKI_ESTORE);
	assert_null(a);
}

static void
test_verify_cannot_run(void **state)
{
	struct fix *f = *state;
	json_t *report = (json_t *)f;
	char path[300], notcert[300];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/missing.db", f->tmp);
	assert_int_equal(juki_audit_verify_file(path, f->cert, &report, f->err, sizeof(f->err)),
			 -ENOENT);
	assert_null(report);
	/* and it was not created by the attempt */
	assert_int_equal(access(path, F_OK), -1);

	snprintf(path, sizeof(path), "%s/notadb.db", f->tmp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++) {
		fputs("this is not a database at all\n", fp);
	}
	fclose(fp);
	assert_true(juki_audit_verify_file(path, f->cert, &report, f->err, sizeof(f->err)) < 0);
	assert_null(report);
	assert_true(f->err[0] != '\0');
	/* an empty file is an empty SQLite database, but no history */
	fp = fopen(path, "w");
	fclose(fp);
	assert_int_equal(juki_audit_verify_file(path, f->cert, &report, f->err, sizeof(f->err)),
			 JUKI_ESCHEMA);

	make_history(f, 6);
	snprintf(notcert, sizeof(notcert), "%s/missing.crt", f->tmp);
	assert_int_equal(juki_audit_verify_file(f->path, notcert, &report, f->err, sizeof(f->err)),
			 -ENOENT);
	snprintf(notcert, sizeof(notcert), "%s/pki/index.json", f->tmp);
	assert_int_equal(juki_audit_verify_file(f->path, notcert, &report, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_null(report);
	/* a history without its tables (dropped) cannot be checked at all */
	sql(f, "DROP TABLE checkpoints");
	assert_int_equal(juki_audit_verify_file(f->path, f->cert, &report, f->err, sizeof(f->err)),
			 JUKI_ESTORE);
	assert_int_equal(juki_audit_verify_file(NULL, f->cert, &report, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_audit_verify_file(f->path, NULL, &report, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_audit_verify_file(f->path, f->cert, NULL, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
}

static void
test_no_signer(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = open_history(f, NULL, 3);
	struct result r;

	fill(a, 1, 7);
	assert_int_equal(juki_audit_checkpoint(a, T0), JUKI_EINVAL);
	r = verify(f, f->cert);
	assert_true(r.ok);
	assert_int_equal(r.checkpoints, 0);
	assert_int_equal(r.unsigned_tail, 7);
	/* with a signer, the overdue checkpoint comes with the next entry */
	juki_audit_set_signer(a, f->tls);
	fill(a, 8, 1);
	r = verify(f, f->cert);
	assert_int_equal(r.checkpoints, 1);
	assert_int_equal(r.signed_through, 8);
	assert_int_equal(r.unsigned_tail, 0);
	juki_audit_set_signer(a, NULL);
	fill(a, 9, 3);
	assert_int_equal(verify(f, f->cert).checkpoints, 1);
	juki_audit_set_signer(NULL, f->tls);
	juki_audit_close(a);
	juki_audit_close(NULL);
}

static void
test_sign_verify(void **state)
{
	static const char msg[] = "juki-audit-checkpoint-v1 test";
	struct fix *f = *state;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char path[300];

	assert_int_equal(juki_tls_sign(f->tls, msg, sizeof(msg), &sig, &siglen), 0);
	assert_non_null(sig);
	assert_true(siglen > 8 && siglen <= 72); /* DER ECDSA P-256 */
	assert_int_equal(juki_tls_verify_cert(f->cert, msg, sizeof(msg), sig, siglen), 0);
	/* other data, another key, a changed or cut signature */
	assert_int_equal(juki_tls_verify_cert(f->cert, msg, sizeof(msg) - 1, sig, siglen),
			 JUKI_EAUTH);
	assert_int_equal(juki_tls_verify_cert(f->other_node, msg, sizeof(msg), sig, siglen),
			 JUKI_EAUTH);
	assert_int_equal(juki_tls_verify_cert(f->other_ca, msg, sizeof(msg), sig, siglen),
			 JUKI_EAUTH);
	assert_int_equal(juki_tls_verify_cert(f->cert, msg, sizeof(msg), sig, siglen - 1),
			 JUKI_EAUTH);
	assert_int_equal(juki_tls_verify_cert(f->cert, msg, sizeof(msg), sig, 0), JUKI_EAUTH);
	sig[siglen - 1] ^= 1;
	assert_int_equal(juki_tls_verify_cert(f->cert, msg, sizeof(msg), sig, siglen), JUKI_EAUTH);
	sig[siglen - 1] ^= 1;
	/* the certificate file: missing, not a certificate */
	snprintf(path, sizeof(path), "%s/missing.crt", f->tmp);
	assert_int_equal(juki_tls_verify_cert(path, msg, sizeof(msg), sig, siglen), -ENOENT);
	snprintf(path, sizeof(path), "%s/cs-131016.key", f->pki);
	assert_int_equal(juki_tls_verify_cert(path, msg, sizeof(msg), sig, siglen), JUKI_ECERT);
	assert_int_equal(juki_tls_verify_cert(NULL, msg, sizeof(msg), sig, siglen), JUKI_EINVAL);
	free(sig);
	sig = NULL;
	/* ECDSA signatures differ each time, and both verify */
	assert_int_equal(juki_tls_sign(f->tls, "", 0, &sig, &siglen), 0);
	assert_int_equal(juki_tls_verify_cert(f->cert, "", 0, sig, siglen), 0);
	free(sig);
	assert_int_equal(juki_tls_sign(NULL, msg, sizeof(msg), &sig, &siglen), JUKI_EINVAL);
	assert_null(sig);
	assert_int_equal(siglen, 0);
	assert_int_equal(juki_tls_sign(f->tls, msg, sizeof(msg), NULL, &siglen), JUKI_EINVAL);
}

/* juki-ctl audit verify --file: exit code and the line an auditor reads. */
static int
run_ctl(struct fix *f, const char *cert, char *out, size_t outlen)
{
	const char *dir = getenv("JUKI_BUILD_DIR");
	char ctl[512];
	int pipefd[2], status;
	size_t n = 0;
	ssize_t got;
	pid_t pid;

	if (dir == NULL) {
		fail_msg("JUKI_BUILD_DIR is not set (run through ctest)");
	}
	snprintf(ctl, sizeof(ctl), "%s/ctl/juki-ctl", dir);
	if (access(ctl, X_OK) != 0) {
		fail_msg("%s is not built", ctl);
	}
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		if (cert != NULL) {
			execl(ctl, ctl, "audit", "verify", "--file", f->path, "--cert", cert,
			      (char *)NULL);
		} else {
			execl(ctl, ctl, "audit", "verify", "--file", f->path, (char *)NULL);
		}
		_exit(127);
	}
	close(pipefd[1]);
	while (n + 1 < outlen && (got = read(pipefd[0], out + n, outlen - 1 - n)) > 0) {
		n += (size_t)got;
	}
	out[n] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_ctl_verify_file(void **state)
{
	struct fix *f = *state;
	char out[1024];

	make_history(f, 7);
	assert_int_equal(run_ctl(f, f->cert, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "audit: ok: 7 entries, 1 checkpoints"));
	assert_non_null(strstr(out, "last 2 entries are not signed"));
	sql(f, "UPDATE entries SET detail = 'nothing happened' WHERE seq = 4");
	assert_int_equal(run_ctl(f, f->cert, out, sizeof(out)), 1);
	assert_string_equal(out, "audit: broken at entry 4 (hash)\n");
	assert_int_equal(run_ctl(f, f->other_node, out, sizeof(out)), 1);
	assert_int_equal(run_ctl(f, NULL, out, sizeof(out)), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_append_show, setup),
	    cmocka_unit_test_setup(test_show_clock_back, setup),
	    cmocka_unit_test_setup(test_reopen_continues, setup),
	    cmocka_unit_test_setup(test_verify_ok_and_checkpoint, setup),
	    cmocka_unit_test_setup(test_verify_after_key_change, setup),
	    cmocka_unit_test_setup(test_checkpoint_deleted, setup),
	    cmocka_unit_test_setup(test_cut_to_checkpoint, setup),
	    cmocka_unit_test_setup(test_checkpoints_deleted_rewritten, setup),
	    cmocka_unit_test_setup(test_fresh_file_same_node, setup),
	    cmocka_unit_test_setup(test_rollback_to_older_copy, setup),
	    cmocka_unit_test_setup(test_file_missing_and_adopted, setup),
	    cmocka_unit_test_setup(test_changed_entry_found_there, setup),
	    cmocka_unit_test_setup(test_certs_over_limit, setup),
	    cmocka_unit_test_setup(test_read_only_folder, setup),
	    cmocka_unit_test_setup(test_field_rules_on_verify, setup),
	    cmocka_unit_test_setup(test_verify_while_open, setup),
	    cmocka_unit_test_setup(test_edit_row, setup),
	    cmocka_unit_test_setup(test_delete_rows, setup),
	    cmocka_unit_test_setup(test_checkpoint_tampered, setup),
	    cmocka_unit_test_setup(test_other_certificate, setup),
	    cmocka_unit_test_setup(test_known_answer, setup),
	    cmocka_unit_test_setup(test_rewritten_chain, setup),
	    cmocka_unit_test_setup(test_fields_refused, setup),
	    cmocka_unit_test_setup(test_file_mode, setup),
	    cmocka_unit_test_setup(test_open_refused, setup),
	    cmocka_unit_test_setup(test_verify_cannot_run, setup),
	    cmocka_unit_test_setup(test_no_signer, setup),
	    cmocka_unit_test_setup(test_sign_verify, setup),
	    cmocka_unit_test_setup(test_ctl_verify_file, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
