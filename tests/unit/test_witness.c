#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "juki/base/error.h"
#include "juki/node/witness.h"
#include "juki/store/audit.h"
#include "juki/store/store.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * The witness's judgement (witness.h): a node (cs:131016) signs its history
 * with its key; the witness's store keeps what it is sent.  Histories are
 * real files made with audit.h, copied to roll them back.
 */
struct fix {
	char tmp[64];
	char pki[128];
	char ca[256];
	char cert[256];       /* cs:131016 */
	char other_cert[256]; /* cs:271004 */
	char other_ca_cert[256];
	struct juki_tls *tls;
	struct juki_tls *other_tls; /* cs:271004's key */
	struct juki_store *store;   /* the witness's */
	char err[512];
};

#define T0   1764000000000LL
#define NODE "urn:juki:cs:131016"
#define OP   "urn:juki:op:cs:131016:tanaka"

static int
new_tls(struct fix *f, const char *dir, const char *name, struct juki_tls **out)
{
	struct juki_tls_conf conf = {0};
	char cert[256], key[256], ca[256];

	snprintf(cert, sizeof(cert), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	conf.cert = cert;
	conf.key = key;
	conf.ca = ca;
	return juki_tls_new(&conf, out, f->err, sizeof(f->err));
}

static int
setup(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_WITNESS_SCHEMA};
	struct fix *f = calloc(1, sizeof(*f));
	char other[128], path[256];

	if (f == NULL || test_mkdtemp(f->tmp, sizeof(f->tmp), "witness") == NULL) {
		return -1;
	}
	*state = f;
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(other, sizeof(other), "%s/other", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, NODE, 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:cs:271004", 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_init_ca(other, "another CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(other, NODE, 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->pki);
	snprintf(f->cert, sizeof(f->cert), "%s/cs-131016.crt", f->pki);
	snprintf(f->other_cert, sizeof(f->other_cert), "%s/cs-271004.crt", f->pki);
	snprintf(f->other_ca_cert, sizeof(f->other_ca_cert), "%s/cs-131016.crt", other);
	if (new_tls(f, f->pki, "cs-131016", &f->tls) != 0 ||
	    new_tls(f, f->pki, "cs-271004", &f->other_tls) != 0) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/witness.db", f->tmp);
	return juki_store_open(path, schemas, 1, &f->store, f->err, sizeof(f->err));
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc;

	juki_store_close(f->store);
	juki_tls_free(f->tls);
	juki_tls_free(f->other_tls);
	rc = test_rm_rf(f->tmp);
	free(f);
	ERR_clear_error();
	return rc;
}

static struct juki_audit *
history(struct fix *f, const char *name, struct juki_tls *signer)
{
	struct juki_audit *a = NULL;
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->tmp, name);
	if (juki_audit_open(path, signer, 1000, &a, f->err, sizeof(f->err)) != 0) {
		fail_msg("juki_audit_open: %s", f->err);
	}
	return a;
}

/* n entries and a checkpoint over them. */
static void
grow(struct juki_audit *a, int n, const char *action)
{
	static int64_t t = T0;

	for (int i = 0; i < n; i++) {
		t += 1000;
		assert_int_equal(juki_audit_append(a, t, OP, action, NULL, "ok", NULL), 0);
	}
	assert_int_equal(juki_audit_checkpoint(a, t), 0);
}

/* When the witness receives: an hour later each time, unless a case holds it still. */
static int64_t received = T0;
static int64_t received_step = 3600 * 1000LL;

static enum juki_witness_verdict
judge(struct fix *f, const char *from, const json_t *member, int *fresh)
{
	enum juki_witness_verdict v = JUKI_WITNESS_SAME;
	char why[256];

	assert_non_null(member);
	received += received_step;
	assert_int_equal(juki_witness_record(f->store, f->ca, from, member, received, &v, fresh,
					     why, sizeof(why)),
			 0);
	return v;
}

static enum juki_witness_verdict
judge_audit(struct fix *f, struct juki_audit *a, const char *cert, int *fresh)
{
	json_t *m = juki_witness_member(a, cert);
	enum juki_witness_verdict v = judge(f, NODE, m, fresh);

	json_decref(m);
	return v;
}

/* A history that grows: each new checkpoint is ok, once; repeated, it is the same. */
static void
test_grows(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = history(f, "a.audit", f->tls);
	json_t *exp;
	int fresh = 0;

	/* No checkpoint yet, nothing witnessed: nothing to say. */
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_SAME);
	grow(a, 3, "one");
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	assert_true(fresh);
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_SAME);
	assert_false(fresh);
	grow(a, 2, "two");
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	exp = juki_witness_export(f->store, "urn:juki:pref:13", NODE);
	assert_non_null(exp);
	assert_int_equal(json_array_size(json_object_get(exp, "checkpoints")), 2);
	assert_int_equal(json_array_size(json_object_get(exp, "certs")), 1);
	json_decref(exp);
	juki_audit_close(a);
}

/* Copy a history file (closed): the "earlier copy" of a rollback. */
static void
copy(struct fix *f, const char *from, const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp %s/%s %s/%s", f->tmp, from, f->tmp, to);
	assert_int_equal(system(cmd), 0);
}

/*
 * Rolled back to an earlier copy: the old checkpoint is "backwards";
 * a history that goes on from the copy to the same seq with other entries
 * is a "fork"; an empty one a "restart".  Each alerted once.
 */
static void
test_rollback_fork_restart(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = history(f, "b.audit", f->tls);
	struct juki_audit *old, *fork, *empty;
	json_t *m, *exp;
	struct juki_audit_cp *cps;
	size_t n;
	int fresh = 0;

	grow(a, 3, "one");
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	juki_audit_close(a);
	copy(f, "b.audit", "b-old.audit");
	a = history(f, "b.audit", f->tls);
	grow(a, 4, "two");
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);

	old = history(f, "b-old.audit", f->tls);
	assert_int_equal(judge_audit(f, old, f->cert, &fresh), JUKI_WITNESS_SAME);
	/* seq 3 was witnessed with this very hash: the same, but the head is 7 ... */
	grow(old, 1, "other");
	assert_int_equal(judge_audit(f, old, f->cert, &fresh), JUKI_WITNESS_BACKWARDS);
	assert_true(fresh);
	assert_int_equal(judge_audit(f, old, f->cert, &fresh), JUKI_WITNESS_BACKWARDS);
	assert_false(fresh); /* alerted once */
	grow(old, 3, "other");
	/* seq 8 now: past the head, but its previous checkpoint (4) was never witnessed */
	juki_audit_close(old);

	/* Another history to seq 7: another hash at a witnessed seq. */
	fork = history(f, "b-fork.audit", f->tls);
	grow(fork, 7, "forged");
	assert_int_equal(judge_audit(f, fork, f->cert, &fresh), JUKI_WITNESS_FORK);
	juki_audit_close(fork);

	empty = history(f, "b-empty.audit", f->tls);
	assert_int_equal(judge_audit(f, empty, f->cert, &fresh), JUKI_WITNESS_RESTART);
	assert_true(fresh);
	assert_int_equal(judge_audit(f, empty, f->cert, &fresh), JUKI_WITNESS_RESTART);
	assert_false(fresh);
	juki_audit_close(empty);

	/* The export, and the file checked against it. */
	exp = juki_witness_export(f->store, "urn:juki:pref:13", NODE);
	assert_int_equal(juki_witness_export_cps(exp, &cps, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n, 2); /* seq 3 and 7: the ones accepted */
	{
		char path[256];
		json_t *rep = NULL;

		snprintf(path, sizeof(path), "%s/b.audit", f->tmp);
		assert_int_equal(
		    juki_audit_verify_witnessed(path, cps, n, &rep, f->err, sizeof(f->err)), 0);
		assert_true(json_is_true(json_object_get(rep, "ok")));
		json_decref(rep);
		snprintf(path, sizeof(path), "%s/b-old.audit", f->tmp);
		assert_int_equal(
		    juki_audit_verify_witnessed(path, cps, n, &rep, f->err, sizeof(f->err)), 0);
		assert_true(json_is_false(json_object_get(rep, "ok")));
		/* b-old holds seq 7 now (with other entries): a fork there */
		assert_int_equal(json_integer_value(json_object_get(rep, "first_bad")), 7);
		assert_string_equal(json_string_value(json_object_get(rep, "reason")), "fork");
		json_decref(rep);
		snprintf(path, sizeof(path), "%s/b-empty.audit", f->tmp);
		assert_int_equal(
		    juki_audit_verify_witnessed(path, cps, n, &rep, f->err, sizeof(f->err)), 0);
		assert_int_equal(json_integer_value(json_object_get(rep, "first_bad")), 3);
		assert_string_equal(json_string_value(json_object_get(rep, "reason")), "rollback");
		json_decref(rep);
	}
	free(cps);
	json_decref(exp);
	m = juki_witness_export(f->store, "urn:juki:pref:13", NULL);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(m, "nodes"), 0), "through")),
			 7);
	json_decref(m);
	juki_audit_close(a);
}

/*
 * A busy node signs a checkpoint every heartbeat: of those received within
 * an hour the newest is kept, and going back below it is still seen.
 */
static void
test_thinned(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = history(f, "d.audit", f->tls);
	json_t *exp, *first = NULL;
	int fresh = 0;

	received = T0 - T0 % (3600 * 1000LL); /* the start of an hour */
	received_step = 1000;
	for (int i = 0; i < 5; i++) {
		grow(a, 2, "busy");
		if (i == 0) {
			first = juki_witness_member(a, f->cert);
		}
		assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	}
	exp = juki_witness_export(f->store, "urn:juki:pref:13", NODE);
	assert_int_equal(json_array_size(json_object_get(exp, "checkpoints")), 1);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(exp, "checkpoints"), 0), "seq")),
			 10);
	json_decref(exp);
	/* the first one, thinned out, presented again: backwards */
	assert_int_equal(judge(f, NODE, first, &fresh), JUKI_WITNESS_BACKWARDS);
	/* the next hour keeps its own */
	received_step = 3600 * 1000LL;
	grow(a, 1, "busy");
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	exp = juki_witness_export(f->store, "urn:juki:pref:13", NULL);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(exp, "nodes"), 0), "checkpoints")),
			 3); /* 10, 11 and the backwards one */
	json_decref(exp);
	json_decref(first);
	juki_audit_close(a);
}

/*
 * Not believed: a signature by another key, a certificate of another node
 * or another CA, a tampered hash, malformed members.
 */
static void
test_invalid(void **state)
{
	struct fix *f = *state;
	struct juki_audit *a = history(f, "c.audit", f->tls);
	struct juki_audit *b = history(f, "c-other.audit", f->other_tls);
	json_t *m;
	int fresh = 0;

	grow(a, 2, "one");
	grow(b, 2, "one");
	/* cs:271004's checkpoint presented as cs:131016's, with its own certificate */
	assert_int_equal(judge_audit(f, b, f->other_cert, &fresh), JUKI_WITNESS_INVALID);
	/* with cs:131016's certificate: the signature does not verify */
	assert_int_equal(judge_audit(f, b, f->cert, &fresh), JUKI_WITNESS_INVALID);
	/* a certificate for cs:131016 from another CA */
	assert_int_equal(judge_audit(f, a, f->other_ca_cert, &fresh), JUKI_WITNESS_INVALID);

	m = juki_witness_member(a, f->cert);
	json_object_set_new(m, "hash",
			    json_string("00000000000000000000000000000000"
					"00000000000000000000000000000000"));
	assert_int_equal(judge(f, NODE, m, &fresh), JUKI_WITNESS_INVALID);
	json_object_set_new(m, "hash", json_string("zz"));
	assert_int_equal(judge(f, NODE, m, &fresh), JUKI_WITNESS_INVALID);
	json_object_set_new(m, "seq", json_integer(-4));
	assert_int_equal(judge(f, NODE, m, &fresh), JUKI_WITNESS_INVALID);
	json_decref(m);
	m = json_string("checkpoint");
	assert_int_equal(judge(f, NODE, m, &fresh), JUKI_WITNESS_INVALID);
	json_decref(m);
	/* nothing of these was accepted: the real one is the first ok */
	assert_int_equal(judge_audit(f, a, f->cert, &fresh), JUKI_WITNESS_OK);
	juki_audit_close(a);
	juki_audit_close(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_grows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_fork_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thinned, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
