/*
 * The signed manifest (wire/manifest.h): its canonical form, the signature
 * by the node's key, a changed byte, another node's key, another CA's
 * certificate, a revoked one, malformed manifests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>

#include "juki/base/error.h"
#include "juki/wire/manifest.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

#define NODE_A "urn:juki:cs:131016"
#define NODE_B "urn:juki:cs:131024"

struct fix {
	char tmp[64];
	char pki[128];
	char other[128];
	char ca[160];
	char crl[160];
	char name_a[64], name_b[64], name_x[64];
	char err[1024];
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL || test_mkdtemp(f->tmp, sizeof(f->tmp), "manifest") == NULL) {
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
	    juki_pki_issue(f->pki, NODE_A, 30, f->name_a, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, NODE_B, 30, f->name_b, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->other, NODE_A, 30, f->name_x, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_write_crl(f->pki, 30, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc = test_rm_rf(f->tmp);

	free(f);
	ERR_clear_error();
	return rc;
}

/* The TLS identity of name in pki, and its certificate's path in cert. */
static struct juki_tls *
identity(struct fix *f, const char *pki, const char *name, char *cert, size_t len)
{
	char key[256], ca[256];
	struct juki_tls_conf c = {0};
	struct juki_tls *tls = NULL;

	snprintf(cert, len, "%s/%s.crt", pki, name);
	snprintf(key, sizeof(key), "%s/%s.key", pki, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	c.cert = cert;
	c.key = key;
	c.ca = ca;
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), 0);
	return tls;
}

static json_t *
unsigned_manifest(const char *node)
{
	json_t *m = json_pack(
	    "{s:i,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "format", 1,
	    "node", node, "daemon", "juki-csd", "version", "0.1.0", "made",
	    "2026-12-07T04:40:00.000Z", "files", "path", "/usr/sbin/juki-csd", "sha256",
	    "1111111111111111111111111111111111111111111111111111111111111111", "kind", "binary",
	    "path", "/usr/lib/x86_64-linux-gnu/libc.so.6", "sha256",
	    "2222222222222222222222222222222222222222222222222222222222222222", "kind", "library",
	    "path", "/etc/juki/csd.yaml", "sha256",
	    "3333333333333333333333333333333333333333333333333333333333333333", "kind", "config");

	assert_non_null(m);
	return m;
}

/* A manifest signed by name of pki. */
static json_t *
signed_by(struct fix *f, const char *node, const char *pki, const char *name)
{
	char cert[256];
	struct juki_tls *tls = identity(f, pki, name, cert, sizeof(cert));
	json_t *m = unsigned_manifest(node);

	assert_int_equal(juki_manifest_sign(m, tls, cert, f->err, sizeof(f->err)), 0);
	juki_tls_free(tls);
	return m;
}

static void
test_sha256_file(void **state)
{
	struct fix *f = *state;
	char path[256], hex[65];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/abc", f->tmp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("abc", fp);
	fclose(fp);
	assert_int_equal(juki_sha256_file(path, hex), 0);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	snprintf(path, sizeof(path), "%s/none", f->tmp);
	assert_int_equal(juki_sha256_file(path, hex), -ENOENT);
}

/* The same content in another member order, with a signature, is the same bytes. */
static void
test_canonical(void **state)
{
	json_t *a = unsigned_manifest(NODE_A);
	json_t *b = json_loads("{\"version\":\"0.1.0\",\"node\":\"" NODE_A "\",\"format\":1,"
			       "\"files\":[],\"made\":\"2026-12-07T04:40:00.000Z\","
			       "\"daemon\":\"juki-csd\",\"signature\":{\"alg\":\"x\"}}",
			       0, NULL);
	char *ta, *tb;
	size_t la, lb;

	(void)state;
	json_object_set(b, "files", json_object_get(a, "files"));
	assert_int_equal(juki_manifest_canonical(a, &ta, &la), 0);
	assert_int_equal(juki_manifest_canonical(b, &tb, &lb), 0);
	assert_int_equal(la, lb);
	assert_string_equal(ta, tb);
	/* sorted keys, no white space */
	{
		const char *pre = "{\"daemon\":\"juki-csd\",\"files\":[{\"kind\":\"binary\",";

		assert_int_equal(strncmp(ta, pre, strlen(pre)), 0);
	}
	assert_null(strstr(ta, "signature"));
	assert_null(strchr(ta, ' '));
	free(ta);
	free(tb);
	/* only ASCII: a path's other characters are escaped */
	json_object_set_new(json_array_get(json_object_get(a, "files"), 2), "path",
			    json_string("/etc/juki/\xe4\xbd\x8f.yaml"));
	assert_int_equal(juki_manifest_canonical(a, &ta, &la), 0);
	assert_non_null(strstr(ta, "/etc/juki/\\u4F4F.yaml"));
	free(ta);
	json_decref(a);
	json_decref(b);
}

static void
test_sign_verify(void **state)
{
	struct fix *f = *state;
	json_t *m = signed_by(f, NODE_A, f->pki, f->name_a), *sig;
	char path[256], hex[65], *text;
	json_t *back;

	sig = json_object_get(m, "signature");
	assert_string_equal(json_string_value(json_object_get(sig, "alg")), "ecdsa-sha256");
	assert_non_null(
	    strstr(json_string_value(json_object_get(sig, "cert")), "BEGIN CERTIFICATE"));
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NULL, f->err, sizeof(f->err)), 0);
	assert_int_equal(juki_manifest_verify(m, f->ca, f->crl, NODE_A, f->err, sizeof(f->err)), 0);
	/* through a file, indented: the same bytes are signed */
	snprintf(path, sizeof(path), "%s/m.json", f->tmp);
	text = json_dumps(m, JSON_INDENT(2));
	{
		FILE *fp = fopen(path, "w");

		fputs(text, fp);
		fclose(fp);
	}
	assert_int_equal(juki_manifest_load(path, &back, hex, f->err, sizeof(f->err)), 0);
	assert_int_equal(juki_manifest_verify(back, f->ca, f->crl, NODE_A, f->err, sizeof(f->err)),
			 0);
	assert_non_null(juki_manifest_entry(back, "/etc/juki/csd.yaml"));
	assert_null(juki_manifest_entry(back, "/etc/juki/other.yaml"));
	free(text);
	json_decref(back);
	json_decref(m);
}

/* One changed byte anywhere in what is signed breaks the signature. */
static void
test_tamper(void **state)
{
	struct fix *f = *state;
	json_t *m = signed_by(f, NODE_A, f->pki, f->name_a), *e;
	char *text, *at;
	json_t *t;

	/* a digest */
	e = json_array_get(json_object_get(m, "files"), 1);
	json_object_set_new(
	    e, "sha256",
	    json_string("2222222222222222222222222222222222222222222222222222222222222223"));
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	assert_non_null(strstr(f->err, "signature does not match"));
	json_decref(m);
	/* one byte of the file's text: a path */
	m = signed_by(f, NODE_A, f->pki, f->name_a);
	text = json_dumps(m, JSON_COMPACT);
	at = strstr(text, "csd.yaml");
	at[0] = 'x';
	t = json_loads(text, 0, NULL);
	assert_int_equal(juki_manifest_verify(t, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	json_decref(t);
	/* the signature's own bytes */
	free(text);
	text = json_dumps(m, JSON_COMPACT);
	at = strstr(text, "\"value\":\"") + 9;
	at[5] = at[5] == 'A' ? 'B' : 'A';
	t = json_loads(text, 0, NULL);
	assert_int_equal(juki_manifest_verify(t, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	json_decref(t);
	/* an entry added after signing */
	json_array_append_new(
	    json_object_get(m, "files"),
	    json_pack("{s:s,s:s,s:s}", "path", "/tmp/evil.so", "sha256",
		      "4444444444444444444444444444444444444444444444444444444444444444", "kind",
		      "library"));
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	free(text);
	json_decref(m);
}

/* Another node's key, another CA, a revoked certificate: refused. */
static void
test_wrong_signer(void **state)
{
	struct fix *f = *state;
	json_t *m;
	char cert[256];
	struct juki_tls *tls;

	/* B signs a manifest that says it is A's */
	m = signed_by(f, NODE_A, f->pki, f->name_b);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NULL, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_non_null(strstr(f->err, "signed by " NODE_B));
	json_decref(m);
	/* B's own manifest is good, but not at A */
	m = signed_by(f, NODE_B, f->pki, f->name_b);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_B, f->err, sizeof(f->err)), 0);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	/* B's signature with A's certificate put in its place */
	tls = identity(f, f->pki, f->name_a, cert, sizeof(cert));
	{
		json_t *ma = unsigned_manifest(NODE_A);

		assert_int_equal(juki_manifest_sign(ma, tls, cert, f->err, sizeof(f->err)), 0);
		json_object_set(json_object_get(m, "signature"), "cert",
				json_object_get(json_object_get(ma, "signature"), "cert"));
		json_object_set_new(m, "node", json_string(NODE_A));
		assert_int_equal(
		    juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
		    JUKI_EAUTH);
		json_decref(ma);
	}
	juki_tls_free(tls);
	json_decref(m);
	/* A's name under another CA */
	m = signed_by(f, NODE_A, f->other, f->name_x);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_non_null(strstr(f->err, "refused"));
	json_decref(m);
	/* A's key, revoked */
	m = signed_by(f, NODE_A, f->pki, f->name_a);
	assert_int_equal(juki_pki_revoke(f->pki, NODE_A, f->err, sizeof(f->err)), 0);
	assert_int_equal(juki_manifest_verify(m, f->ca, f->crl, NODE_A, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)), 0);
	json_decref(m);
}

static void
test_malformed(void **state)
{
	struct fix *f = *state;
	json_t *m;
	char path[256], hex[65];
	FILE *fp;
	static const char *const bad_entries[] = {
	    "{\"path\":\"relative/x\",\"sha256\":\"" // relative
	    "1111111111111111111111111111111111111111111111111111111111111111\",\"kind\":"
	    "\"library\"}",
	    "{\"path\":\"/x\",\"sha256\":\"ABCD\",\"kind\":\"library\"}",
	    "{\"path\":\"/x\",\"sha256\":\"" // kind
	    "1111111111111111111111111111111111111111111111111111111111111111\",\"kind\":"
	    "\"script\"}",
	    "{\"path\":\"/usr/sbin/juki-csd\",\"sha256\":\"" // listed twice
	    "1111111111111111111111111111111111111111111111111111111111111111\",\"kind\":"
	    "\"library\"}",
	    "{\"path\":\"/y\",\"sha256\":\"" // a second binary
	    "1111111111111111111111111111111111111111111111111111111111111111\",\"kind\":"
	    "\"binary\"}",
	    "{\"path\":\"/z\",\"sha256\":\"" // an extra member
	    "1111111111111111111111111111111111111111111111111111111111111111\",\"kind\":"
	    "\"library\","
	    "\"mode\":1}",
	};

	/* unsigned */
	m = unsigned_manifest(NODE_A);
	assert_int_equal(juki_manifest_check(m, 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(juki_manifest_verify(m, f->ca, NULL, NODE_A, f->err, sizeof(f->err)),
			 JUKI_EFORMAT);
	assert_string_equal(f->err, "not signed");
	json_decref(m);
	for (size_t i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++) {
		m = unsigned_manifest(NODE_A);
		json_array_append_new(json_object_get(m, "files"),
				      json_loads(bad_entries[i], 0, NULL));
		assert_int_equal(juki_manifest_check(m, 1, f->err, sizeof(f->err)), JUKI_EFORMAT);
		json_decref(m);
	}
	/* unknown member, operator as node, no files */
	m = unsigned_manifest(NODE_A);
	json_object_set_new(m, "extra", json_true());
	assert_int_equal(juki_manifest_check(m, 1, f->err, sizeof(f->err)), JUKI_EFORMAT);
	json_decref(m);
	m = unsigned_manifest("urn:juki:op:cs:131016:sato");
	assert_int_equal(juki_manifest_check(m, 1, f->err, sizeof(f->err)), JUKI_EFORMAT);
	json_object_set_new(m, "node", json_string(NODE_A));
	json_object_set_new(m, "files", json_array());
	assert_int_equal(juki_manifest_check(m, 1, f->err, sizeof(f->err)), JUKI_EFORMAT);
	json_decref(m);
	/* duplicate keys in the file: refused, so what is read is what was signed */
	snprintf(path, sizeof(path), "%s/dup.json", f->tmp);
	fp = fopen(path, "w");
	fputs("{\"node\":\"" NODE_A "\",\"node\":\"" NODE_B "\"}", fp);
	fclose(fp);
	assert_int_equal(juki_manifest_load(path, &m, hex, f->err, sizeof(f->err)), JUKI_EJSON);
	assert_null(m);
	snprintf(path, sizeof(path), "%s/missing.json", f->tmp);
	assert_int_equal(juki_manifest_load(path, &m, hex, f->err, sizeof(f->err)), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_file),  cmocka_unit_test(test_canonical),
	    cmocka_unit_test(test_sign_verify),  cmocka_unit_test(test_tamper),
	    cmocka_unit_test(test_wrong_signer), cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
