#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/records/approval.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * Each case gets a network PKI ("pki": the 責任者 boss, another staff member
 * sato, a revoked officer old) and a second CA ("other") that also issued a
 * card naming boss: real ECDSA keys made by OpenSSL through juki-ctl pki's
 * library.
 */
#define BODY  "urn:juki:agency:nenkin"
#define BOSS  "urn:juki:op:agency:nenkin:boss"
#define SATO  "urn:juki:op:agency:nenkin:sato"
#define OLD   "urn:juki:op:agency:nenkin:old"
#define BATCH "01938d6c-4b2a-7c3d-8e4f-5a6b7c8d9e0f"

struct fix {
	char tmp[64];
	char pki[128];
	char other[128];
	char ca[192];
	char crl[192];
	char err[512];
	json_t *parts[3]; /* the queries of a batch of 3 parts */
	json_t *hashes;   /* their hashes */
};

static json_t *
code_query(int n)
{
	/* 10 digits then the check digit of juki_jumin_check_digit() */
	char first10[11], code[12];

	snprintf(first10, sizeof(first10), "%010u", (unsigned)(1000000 + n) % 1000000000u);
	snprintf(code, sizeof(code), "%s%c", first10, juki_jumin_check_digit(first10));
	return json_pack("{s:s}", "code", code);
}

static json_t *
four_query(void)
{
	return json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", "山田 花子", "birth", "1990-04-01", "sex",
			 2, "address", "東京都千代田区千代田1番1号", "lgcode", "131016");
}

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char hex[JUKI_PART_HASH_LEN + 1];
	struct juki_field_error fe;
	size_t bad;

	if (f == NULL || test_mkdtemp(f->tmp, sizeof(f->tmp), "approval") == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->other, sizeof(f->other), "%s/other", f->tmp);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->pki);
	snprintf(f->crl, sizeof(f->crl), "%s/crl.pem", f->pki);
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_init_ca(f->other, "someone else's CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, BOSS, 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, SATO, 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, OLD, 30, NULL, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_revoke(f->pki, OLD, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->other, BOSS, 30, NULL, f->err, sizeof(f->err)) != 0) {
		fprintf(stderr, "setup: %s\n", f->err);
		return -1;
	}
	f->hashes = json_array();
	for (int p = 0; p < 3; p++) {
		f->parts[p] = json_array();
		for (int i = 0; i < 4; i++) {
			json_array_append_new(f->parts[p], code_query(p * 10 + i));
		}
		json_array_append_new(f->parts[p], four_query());
		if (juki_approval_part_hash(f->parts[p], hex, &bad, &fe) != 0) {
			return -1;
		}
		json_array_append_new(f->hashes, json_string(hex));
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc = test_rm_rf(f->tmp);

	for (int p = 0; p < 3; p++) {
		json_decref(f->parts[p]);
	}
	json_decref(f->hashes);
	free(f);
	ERR_clear_error();
	return rc;
}

/* The approval of BATCH by the card name (in pki dir) over parts hashes. */
static json_t *
approve(struct fix *f, const char *dir, const char *name, const char *batch, const json_t *hashes)
{
	char cert[256], key[256], ca[256];
	struct juki_tls_conf conf = {.cert = cert, .key = key, .ca = ca};
	struct juki_tls *card = NULL;
	json_t *out = NULL;

	snprintf(cert, sizeof(cert), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	assert_int_equal(juki_tls_new(&conf, &card, f->err, sizeof(f->err)), 0);
	assert_int_equal(
	    juki_approval_sign(card, cert, BODY, batch, 15, hashes, &out, f->err, sizeof(f->err)),
	    0);
	juki_tls_free(card);
	return out;
}

static int
verify(struct fix *f, const json_t *approval, const char *batch, size_t part, size_t parts,
       const json_t *queries, char *detail, size_t len)
{
	struct juki_approval_part p = {
	    .body = BODY,
	    .batch_id = batch,
	    .count = 15,
	    .part = part,
	    .parts = parts,
	    .queries = queries,
	};

	return juki_approval_verify(approval, &p, BOSS, f->ca, f->crl, 0, detail, len);
}

static void
test_query_lines(void **state)
{
	struct juki_provide_query q;
	struct juki_field_error fe;
	char line[2048];
	json_t *o;
	int n;

	(void)state;
	o = four_query();
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), 0);
	n = juki_provide_query_line(&q, line, sizeof(line));
	assert_int_equal(n, (int)strlen(line));
	assert_string_equal(line,
			    "four:山田 花子\t1990-04-01\t2\t131016\t東京都千代田区千代田1番1号\n");
	json_decref(o);

	o = json_pack("{s:s}", "code", "24727059608");
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), 0);
	juki_provide_query_line(&q, line, sizeof(line));
	assert_string_equal(line, "code:24727059608\n");
	json_decref(o);

	/* a partial match is no query; nor both; nor a wrong check digit; nor a tab in a name */
	o = json_pack("{s:s,s:s,s:i,s:s}", "name", "山田 花子", "birth", "1990-04-01", "sex", 2,
		      "address", "東京都");
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), JUKI_EFORMAT);
	json_decref(o);
	o = json_pack("{s:s,s:s}", "code", "24727059608", "name", "山田 花子");
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), JUKI_EFORMAT);
	json_decref(o);
	o = json_pack("{s:s}", "code", "24727059609");
	assert_int_not_equal(juki_provide_query_from_json(o, NULL, &q, &fe), 0);
	assert_string_equal(fe.field, "code");
	json_decref(o);
	o = four_query();
	json_object_set_new(o, "name", json_string("山田\t花子"));
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), JUKI_EFORMAT);
	assert_string_equal(fe.field, "name");
	json_decref(o);
	/* the other keys of provide.query are skipped when listed, refused when not */
	o = json_pack("{s:s,s:s}", "code", "24727059608", "purpose", "年金");
	assert_int_equal(juki_provide_query_from_json(o, NULL, &q, &fe), JUKI_EFORMAT);
	assert_int_equal(juki_provide_query_from_json(
			     o, (const char *const[]){"agreement", "purpose", NULL}, &q, &fe),
			 0);
	json_decref(o);
}

static void
test_part_hash(void **state)
{
	struct fix *f = *state;
	unsigned char md[32];
	char hex[JUKI_PART_HASH_LEN + 1], want[JUKI_PART_HASH_LEN + 1];
	struct juki_field_error fe;
	const char lines[] = "code:24727059608\n";
	json_t *q = json_pack("[{s:s}]", "code", "24727059608");
	json_t *big = json_array();
	size_t bad;

	assert_int_equal(juki_approval_part_hash(q, hex, &bad, &fe), 0);
	SHA256((const unsigned char *)lines, strlen(lines), md);
	for (int i = 0; i < 32; i++) {
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	}
	assert_string_equal(hex, want);
	/* a bad query is named by its index */
	json_array_append_new(q, json_pack("{s:s}", "code", "123"));
	assert_int_equal(juki_approval_part_hash(q, hex, &bad, &fe), JUKI_EFORMAT);
	assert_int_equal(bad, 1);
	/* empty and oversized parts */
	assert_int_equal(juki_approval_part_hash(big, hex, &bad, &fe), JUKI_ERANGE);
	for (int i = 0; i <= JUKI_PROVIDE_PART_MAX; i++) {
		json_array_append(big, json_array_get(f->parts[0], 0));
	}
	assert_int_equal(juki_approval_part_hash(big, hex, &bad, &fe), JUKI_ERANGE);
	json_decref(big);
	json_decref(q);
}

static void
test_text(void **state)
{
	struct fix *f = *state;
	char *text = NULL, want[1024];
	size_t len = 0;

	assert_int_equal(juki_approval_text(BODY, BATCH, 15, f->hashes, &text, &len), 0);
	snprintf(want, sizeof(want), "juki-provide-approval/1\n%s\n%s\n15\n%s\n%s\n%s\n", BODY,
		 BATCH, json_string_value(json_array_get(f->hashes, 0)),
		 json_string_value(json_array_get(f->hashes, 1)),
		 json_string_value(json_array_get(f->hashes, 2)));
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	free(text);
}

/* A valid approval holds for every part of its batch. */
static void
test_valid(void **state)
{
	struct fix *f = *state;
	json_t *a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, f->hashes);
	char detail[256];

	assert_string_equal(json_string_value(json_object_get(a, "responsible")), BOSS);
	for (size_t p = 0; p < 3; p++) {
		assert_int_equal(verify(f, a, BATCH, p, 3, f->parts[p], detail, sizeof(detail)), 0);
	}
	json_decref(a);
}

/* Another batch's approval: other queries, or the same queries under another id or count. */
static void
test_other_batch(void **state)
{
	struct fix *f = *state;
	json_t *hashes = json_deep_copy(f->hashes);
	json_t *a, *b;
	char detail[256];
	char hex[JUKI_PART_HASH_LEN + 1];
	struct juki_field_error fe;
	json_t *q = json_pack("[{s:s}]", "code", "24727059608");
	size_t bad;

	/* approved over other queries in part 1 */
	juki_approval_part_hash(q, hex, &bad, &fe);
	json_array_set_new(hashes, 1, json_string(hex));
	a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, hashes);
	assert_int_equal(verify(f, a, BATCH, 1, 3, f->parts[1], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "part hash mismatch"));
	/* the same queries, but the approval was for another batch id */
	b = approve(f, f->pki, "op-agency-nenkin-boss", "01938d6c-4b2a-7c3d-8e4f-000000000000",
		    f->hashes);
	assert_int_equal(verify(f, b, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "bad signature"));
	json_decref(a);
	json_decref(b);
	json_decref(hashes);
	json_decref(q);
}

/* Another signer: a staff member's own card, a revoked card, a card of another CA. */
static void
test_other_signer(void **state)
{
	struct fix *f = *state;
	json_t *a = approve(f, f->pki, "op-agency-nenkin-sato", BATCH, f->hashes);
	json_t *forged;
	char detail[256];

	assert_int_equal(verify(f, a, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "wrong signer"));
	/* sato's signature under boss's name and certificate */
	forged = json_deep_copy(a);
	json_object_set_new(forged, "responsible", json_string(BOSS));
	json_decref(a);
	a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, f->hashes);
	json_object_set(forged, "cert", json_object_get(a, "cert"));
	assert_int_equal(verify(f, forged, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "bad signature"));
	json_decref(forged);
	json_decref(a);
	/* a card naming boss, from someone else's CA */
	a = approve(f, f->other, "op-agency-nenkin-boss", BATCH, f->hashes);
	assert_int_equal(verify(f, a, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "untrusted certificate"));
	json_decref(a);
}

/* A revoked 責任者's card. */
static void
test_revoked(void **state)
{
	struct fix *f = *state;
	json_t *a = approve(f, f->pki, "op-agency-nenkin-old", BATCH, f->hashes);
	struct juki_approval_part p = {BODY, BATCH, 15, 0, 3, f->parts[0]};
	char detail[256];

	assert_int_equal(juki_approval_verify(a, &p, OLD, f->ca, f->crl, 0, detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "revoked"));
	/* without the CRL it would pass: the CRL is what refuses it */
	assert_int_equal(juki_approval_verify(a, &p, OLD, f->ca, NULL, 0, detail, sizeof(detail)),
			 0);
	json_decref(a);
}

/* A tampered part: one query changed after the approval. */
static void
test_tampered_part(void **state)
{
	struct fix *f = *state;
	json_t *a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, f->hashes);
	json_t *tampered = json_deep_copy(f->parts[2]);
	char detail[256];

	json_array_set_new(tampered, 4,
			   json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", "山田 花子", "birth",
				     "1990-04-02", "sex", 2, "address",
				     "東京都千代田区千代田1番1号", "lgcode", "131016"));
	assert_int_equal(verify(f, a, BATCH, 2, 3, tampered, detail, sizeof(detail)), JUKI_EAUTH);
	assert_non_null(strstr(detail, "part hash mismatch"));
	/* a signature altered by one byte */
	json_object_set_new(a, "sig",
			    json_string("MEUCIQ"
					"AAAA"));
	assert_int_equal(verify(f, a, BATCH, 2, 3, f->parts[2], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "bad signature"));
	/* a malformed query in the part is the part's fault, not the approval's */
	json_array_set_new(tampered, 0, json_pack("{s:s}", "code", "2472705960"));
	assert_int_equal(verify(f, a, BATCH, 2, 3, tampered, detail, sizeof(detail)), JUKI_EFORMAT);
	assert_non_null(strstr(detail, "queries[0].code"));
	json_decref(tampered);
	json_decref(a);
}

/* A truncated parts list: an approval of two parts does not cover a batch of three. */
static void
test_truncated_parts(void **state)
{
	struct fix *f = *state;
	json_t *two =
	    json_pack("[O,O]", json_array_get(f->hashes, 0), json_array_get(f->hashes, 1));
	json_t *a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, two);
	json_t *b;
	char detail[256];

	assert_int_equal(verify(f, a, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "wrong batch"));
	/* a valid approval with its last part cut off the list */
	b = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, f->hashes);
	json_array_remove(json_object_get(b, "parts"), 2);
	assert_int_equal(verify(f, b, BATCH, 0, 3, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	/* ...and claimed as a batch of two parts, the signature no longer holds */
	assert_int_equal(verify(f, b, BATCH, 0, 2, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "bad signature"));
	/* extra keys, a missing key */
	json_object_set_new(b, "note", json_string("x"));
	assert_int_equal(verify(f, b, BATCH, 0, 2, f->parts[0], detail, sizeof(detail)),
			 JUKI_EAUTH);
	assert_non_null(strstr(detail, "not an approval object"));
	json_decref(a);
	json_decref(b);
	json_decref(two);
}

/*
 * The checks a server repeats for each later part of an approval it has
 * verified in full: this part's hash and the number of parts, nothing else.
 */
static void
test_check_part(void **state)
{
	struct fix *f = *state;
	json_t *a = approve(f, f->pki, "op-agency-nenkin-boss", BATCH, f->hashes);
	json_t *tampered = json_deep_copy(f->parts[1]);
	struct juki_approval_part p = {
	    .body = BODY, .batch_id = BATCH, .count = 15, .part = 1, .parts = 3};
	char detail[256];

	p.queries = f->parts[1];
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), 0);
	/* another part's queries under this part's index */
	p.queries = f->parts[2];
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), JUKI_EAUTH);
	assert_non_null(strstr(detail, "part hash mismatch"));
	/* one query changed */
	json_array_set_new(tampered, 0, json_pack("{s:s}", "code", "24727059608"));
	p.queries = tampered;
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), JUKI_EAUTH);
	/* a part past the list, a batch of another number of parts */
	p.queries = f->parts[1];
	p.part = 3;
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), JUKI_EAUTH);
	assert_non_null(strstr(detail, "wrong batch"));
	p.part = 1;
	p.parts = 4;
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), JUKI_EAUTH);
	/* a malformed query is the part's fault */
	p.parts = 3;
	json_array_set_new(tampered, 0, json_pack("{s:s}", "code", "2472705960"));
	p.queries = tampered;
	assert_int_equal(juki_approval_check_part(a, &p, detail, sizeof(detail)), JUKI_EFORMAT);
	assert_non_null(strstr(detail, "queries[0].code"));
	json_decref(tampered);
	json_decref(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_lines),
	    cmocka_unit_test_setup_teardown(test_part_hash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_signer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_part, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_part, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
