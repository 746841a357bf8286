#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/wire/pki.h"

#include "helpers.h"

struct fix {
	char tmp[64];
	char dir[128]; /* the PKI directory, not yet created */
	char err[512];
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "pki") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/pki", f->tmp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc = test_rm_rf(f->tmp);

	free(f);
	return rc;
}

static void
path_of(const struct fix *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
}

static int
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

static X509 *
read_cert(const struct fix *f, const char *name)
{
	char path[256];
	FILE *fp;
	X509 *x;

	path_of(f, name, path, sizeof(path));
	fp = fopen(path, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *
read_key(const struct fix *f, const char *name)
{
	char path[256];
	EVP_PKEY *k;
	FILE *fp;

	path_of(f, name, path, sizeof(path));
	fp = fopen(path, "r");
	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	return k;
}

static X509_CRL *
read_crl(const struct fix *f)
{
	char path[256];
	X509_CRL *crl;
	FILE *fp;

	path_of(f, "crl.pem", path, sizeof(path));
	fp = fopen(path, "r");
	assert_non_null(fp);
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(crl);
	return crl;
}

static json_t *
read_index(const struct fix *f)
{
	char path[256];
	json_t *j;

	path_of(f, "index.json", path, sizeof(path));
	j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	return j;
}

static json_t *
index_certs(json_t *index)
{
	json_t *certs = json_object_get(index, "certificates");

	assert_true(json_is_array(certs));
	return certs;
}

/* The serial as upper-case hex, as index.json writes it; free with OPENSSL_free. */
static char *
serial_hex(const ASN1_INTEGER *serial)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex;

	assert_non_null(bn);
	hex = BN_bn2hex(bn);
	BN_free(bn);
	assert_non_null(hex);
	return hex;
}

static long
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v;

	assert_non_null(n);
	v = ASN1_INTEGER_get(n);
	ASN1_INTEGER_free(n);
	return v;
}

static int
crl_count(X509_CRL *crl)
{
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);

	return revoked == NULL ? 0 : sk_X509_REVOKED_num(revoked);
}

static int
crl_lists(X509_CRL *crl, const char *hex)
{
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	int found = 0;

	for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
		char *h =
		    serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)));

		found += strcmp(h, hex) == 0;
		OPENSSL_free(h);
	}
	return found;
}

static time_t
time_of(const ASN1_TIME *t)
{
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		/* dot files count: a leftover temporary file would be one */
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	}
	closedir(d);
	return n;
}

static void
init_ca(struct fix *f)
{
	assert_int_equal(juki_pki_init_ca(f->dir, "juki test CA", 3650, f->err, sizeof(f->err)), 0);
}

static void
issue(struct fix *f, const char *urn, const char *expect_name)
{
	char name[64];

	memset(name, 'x', sizeof(name));
	assert_int_equal(juki_pki_issue(f->dir, urn, 365, name, f->err, sizeof(f->err)), 0);
	assert_string_equal(name, expect_name);
}

/* Verify cert against the PKI's CA and CRL the way a TLS peer would. */
static int
verify_with_crl(struct fix *f, X509 *cert)
{
	X509 *ca = read_cert(f, "ca.crt");
	X509_CRL *crl = read_crl(f);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int result;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_add_crl(store, crl), 1);
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT), 1);
	X509_verify_cert(ctx);
	result = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_CRL_free(crl);
	X509_free(ca);
	ERR_clear_error();
	return result;
}

static void
test_init_ca(void **state)
{
	struct fix *f = *state;
	BASIC_CONSTRAINTS *bc;
	X509_CRL *crl;
	EVP_PKEY *key;
	json_t *index;
	char path[256];
	time_t now = time(NULL);
	X509 *ca;
	int crit = -1;

	init_ca(f);
	assert_int_equal(mode_of(f->dir), 0700);
	path_of(f, "ca.key", path, sizeof(path));
	assert_int_equal(mode_of(path), 0600);
	path_of(f, "ca.crt", path, sizeof(path));
	assert_int_equal(mode_of(path), 0644);
	path_of(f, "crl.pem", path, sizeof(path));
	assert_int_equal(mode_of(path), 0644);
	path_of(f, "index.json", path, sizeof(path));
	assert_int_equal(mode_of(path), 0644);
	/* exactly the four files: no temporary file left behind */
	assert_int_equal(count_files(f->dir), 4);

	ca = read_cert(f, "ca.crt");
	key = read_key(f, "ca.key");
	assert_int_equal(X509_check_private_key(ca, key), 1);
	assert_true(EVP_PKEY_is_a(key, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_verify(ca, key), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);
	assert_int_equal(X509_get_version(ca), X509_VERSION_3);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_true(time_of(X509_get0_notBefore(ca)) <= now - 290);
	assert_true(time_of(X509_get0_notAfter(ca)) >= now + 3650L * 86400 - 10);

	crl = read_crl(f);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_CRL_verify(crl, key), 1);
	assert_int_equal(crl_count(crl), 0);
	assert_int_equal(crl_number(crl), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
	assert_true(labs((long)(time_of(X509_CRL_get0_nextUpdate(crl)) - (now + 30L * 86400))) <
		    10);
	AUTHORITY_KEYID *aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	assert_non_null(aki);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(ca)), 0);
	AUTHORITY_KEYID_free(aki);
	X509_CRL_free(crl);

	index = read_index(f);
	assert_int_equal(json_array_size(index_certs(index)), 0);
	assert_int_equal(json_integer_value(json_object_get(index, "crl_number")), 1);
	json_decref(index);
	EVP_PKEY_free(key);
	X509_free(ca);
}

static void
test_init_ca_twice(void **state)
{
	struct fix *f = *state;
	X509 *before, *after;

	init_ca(f);
	before = read_cert(f, "ca.crt");
	assert_int_equal(juki_pki_init_ca(f->dir, "other", 10, f->err, sizeof(f->err)),
			 JUKI_EEXIST);
	assert_non_null(strstr(f->err, "ca.key"));
	after = read_cert(f, "ca.crt");
	assert_int_equal(X509_cmp(before, after), 0);
	X509_free(before);
	X509_free(after);
}

static void
test_init_ca_existing_dir(void **state)
{
	struct fix *f = *state;
	char path[256];

	/* an existing empty directory is used as it is */
	assert_int_equal(mkdir(f->dir, 0750), 0);
	init_ca(f);
	assert_int_equal(mode_of(f->dir), 0750);
	path_of(f, "ca.key", path, sizeof(path));
	assert_int_equal(mode_of(path), 0600);
}

static void
test_init_ca_umask(void **state)
{
	struct fix *f = *state;
	char path[256];
	mode_t old = umask(0277);

	/* a strict umask must not change the modes the files are promised */
	init_ca(f);
	umask(old);
	assert_int_equal(mode_of(f->dir), 0700);
	path_of(f, "ca.crt", path, sizeof(path));
	assert_int_equal(mode_of(path), 0644);
	path_of(f, "ca.key", path, sizeof(path));
	assert_int_equal(mode_of(path), 0600);
}

static void
test_init_ca_bad_args(void **state)
{
	struct fix *f = *state;
	char longcn[80];
	char deep[256];
	struct stat st;

	memset(longcn, 'a', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	assert_int_equal(juki_pki_init_ca(f->dir, "ca", 0, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_non_null(strstr(f->err, "days"));
	assert_int_equal(juki_pki_init_ca(f->dir, "ca", -5, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca(f->dir, "ca", 36501, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca(f->dir, "", 10, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca(f->dir, NULL, 10, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca(f->dir, longcn, 10, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca(NULL, "ca", 10, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_init_ca("", "ca", 10, f->err, sizeof(f->err)), JUKI_EINVAL);
	/* nothing was created by the refusals */
	assert_int_equal(stat(f->dir, &st), -1);
	snprintf(deep, sizeof(deep), "%s/no/such/parent", f->tmp);
	assert_int_equal(juki_pki_init_ca(deep, "ca", 10, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, deep));
	/* the boundaries themselves are accepted */
	assert_int_equal(
	    juki_pki_init_ca(f->dir, longcn + sizeof(longcn) - 65, 36500, f->err, sizeof(f->err)),
	    0);
}

static void
check_node_cert(struct fix *f, const char *name, const char *urn, const char *serial)
{
	char file[128];
	X509 *ca = read_cert(f, "ca.crt");
	X509 *cert;
	EVP_PKEY *key;
	EVP_PKEY *capub = X509_get0_pubkey(ca);
	GENERAL_NAMES *san;
	BASIC_CONSTRAINTS *bc;
	const GENERAL_NAME *gn;
	BIGNUM *bn;
	char *hex;
	char cn[160];
	time_t now = time(NULL);
	int crit = -1;

	snprintf(file, sizeof(file), "%s.crt", name);
	cert = read_cert(f, file);
	snprintf(file, sizeof(file), "%s.key", name);
	key = read_key(f, file);
	assert_int_equal(X509_check_private_key(cert, key), 1);
	assert_true(EVP_PKEY_is_a(key, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	assert_int_equal(X509_verify(cert, capub), 1);
	assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)), 0);

	assert_int_not_equal(
	    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)),
	    -1);
	assert_string_equal(cn, urn);

	san = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	gn = sk_GENERAL_NAME_value(san, 0);
	assert_int_equal(gn->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
			    urn);
	GENERAL_NAMES_free(san);

	assert_true(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE);
	assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
	bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(cert), 0);
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(ca)),
	    0);

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	assert_non_null(bn);
	assert_int_equal(BN_num_bits(bn), 128);
	assert_false(BN_is_negative(bn));
	BN_free(bn);
	hex = serial_hex(X509_get0_serialNumber(cert));
	assert_string_equal(hex, serial);
	OPENSSL_free(hex);

	/* five minutes back, so a peer whose clock lags accepts it at once */
	assert_true(time_of(X509_get0_notBefore(cert)) <= now - 295);
	assert_true(time_of(X509_get0_notBefore(cert)) >= now - 310);
	assert_true(labs((long)(time_of(X509_get0_notAfter(cert)) - (now + 365L * 86400))) < 10);
	assert_int_equal(verify_with_crl(f, cert), X509_V_OK);

	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(ca);
}

static void
test_issue(void **state)
{
	static const char *const urns[] = {"urn:juki:cs:131016", "urn:juki:fwgate:east",
					   "urn:juki:pref:13"};
	static const char *const names[] = {"cs-131016", "fwgate-east", "pref-13"};
	struct fix *f = *state;
	char path[256];
	json_t *index;
	json_t *certs;

	init_ca(f);
	for (size_t i = 0; i < 3; i++) {
		issue(f, urns[i], names[i]);
	}
	index = read_index(f);
	certs = index_certs(index);
	assert_int_equal(json_array_size(certs), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *e = json_array_get(certs, i);
		const char *serial = json_string_value(json_object_get(e, "serial"));
		const char *not_after = json_string_value(json_object_get(e, "not_after"));
		int64_t ms;

		assert_string_equal(json_string_value(json_object_get(e, "name")), names[i]);
		assert_string_equal(json_string_value(json_object_get(e, "urn")), urns[i]);
		assert_non_null(serial);
		assert_non_null(not_after);
		assert_int_equal(juki_clock_parse(not_after, &ms), 0);
		assert_true(llabs(ms / 1000 - ((int64_t)time(NULL) + 365LL * 86400)) < 10);
		assert_true(json_is_null(json_object_get(e, "revoked")));
		for (size_t j = 0; j < i; j++) {
			const char *other =
			    json_string_value(json_object_get(json_array_get(certs, j), "serial"));

			assert_string_not_equal(serial, other);
		}
		check_node_cert(f, names[i], urns[i], serial);
		snprintf(path, sizeof(path), "%s/%s.key", f->dir, names[i]);
		assert_int_equal(mode_of(path), 0600);
		snprintf(path, sizeof(path), "%s/%s.crt", f->dir, names[i]);
		assert_int_equal(mode_of(path), 0644);
	}
	json_decref(index);
	assert_int_equal(count_files(f->dir), 4 + 6);
}

static void
test_issue_operator(void **state)
{
	struct fix *f = *state;
	char urn[128];
	char op[40];

	init_ca(f);
	issue(f, "urn:juki:op:cs:131016:tanaka", "op-cs-131016-tanaka");
	/* a valid urn whose file name does not fit the 64 bytes of name_out */
	memset(op, 'a', 32);
	op[32] = '\0';
	snprintf(urn, sizeof(urn), "urn:juki:op:agency:%s:%s", op, op);
	assert_int_equal(juki_pki_issue(f->dir, urn, 30, (char[64]){0}, f->err, sizeof(f->err)),
			 JUKI_ENAMETOOLONG);
	/* without name_out the long name is fine */
	assert_int_equal(juki_pki_issue(f->dir, urn, 30, NULL, f->err, sizeof(f->err)), 0);
}

static void
test_issue_twice(void **state)
{
	struct fix *f = *state;
	X509 *before, *after;
	json_t *index;

	init_ca(f);
	issue(f, "urn:juki:cs:131016", "cs-131016");
	before = read_cert(f, "cs-131016.crt");
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_EEXIST);
	assert_non_null(strstr(f->err, "cs-131016"));
	after = read_cert(f, "cs-131016.crt");
	assert_int_equal(X509_cmp(before, after), 0);
	index = read_index(f);
	assert_int_equal(json_array_size(index_certs(index)), 1);
	json_decref(index);
	X509_free(before);
	X509_free(after);
}

static void
test_issue_bad(void **state)
{
	struct fix *f = *state;
	char path[256];
	FILE *fp;

	/* no CA yet */
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_ENOENT);
	assert_non_null(strstr(f->err, f->dir));
	init_ca(f);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131017", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_EIDENT);
	assert_non_null(strstr(f->err, "urn:juki:cs:131017"));
	assert_int_equal(juki_pki_issue(f->dir, "", 365, NULL, f->err, sizeof(f->err)),
			 JUKI_EIDENT);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016,URI:x", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_EIDENT);
	assert_int_equal(juki_pki_issue(f->dir, NULL, 365, NULL, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 0, NULL, f->err, sizeof(f->err)),
	    JUKI_EINVAL);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 36501, NULL, f->err, sizeof(f->err)),
	    JUKI_EINVAL);
	/* none of that issued anything */
	assert_int_equal(count_files(f->dir), 4);

	/* a damaged index is refused, not overwritten */
	path_of(f, "index.json", path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"certificates\": [", fp);
	fclose(fp);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_EJSON);
	assert_non_null(strstr(f->err, "index.json"));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"crl_number\": 1, \"certificates\": 3}", fp);
	fclose(fp);
	assert_int_equal(
	    juki_pki_issue(f->dir, "urn:juki:cs:131016", 365, NULL, f->err, sizeof(f->err)),
	    JUKI_EJSON);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"crl_number\": 1, \"certificates\": [{\"name\": \"cs-131016\"}]}", fp);
	fclose(fp);
	assert_int_equal(juki_pki_revoke(f->dir, "cs-131016", f->err, sizeof(f->err)), JUKI_EJSON);
	assert_non_null(strstr(f->err, "entry 0"));
}

static void
test_revoke(void **state)
{
	struct fix *f = *state;
	char *cs_serial, *fw_serial, *pref_serial;
	X509 *cs, *fw, *pref;
	X509_CRL *crl;
	EVP_PKEY *cakey;
	json_t *index;
	json_t *e;
	int64_t ms;

	init_ca(f);
	issue(f, "urn:juki:cs:131016", "cs-131016");
	issue(f, "urn:juki:fwgate:east", "fwgate-east");
	issue(f, "urn:juki:pref:13", "pref-13");
	cs = read_cert(f, "cs-131016.crt");
	fw = read_cert(f, "fwgate-east.crt");
	pref = read_cert(f, "pref-13.crt");
	cs_serial = serial_hex(X509_get0_serialNumber(cs));
	fw_serial = serial_hex(X509_get0_serialNumber(fw));
	pref_serial = serial_hex(X509_get0_serialNumber(pref));
	cakey = read_key(f, "ca.key");

	/* by file name */
	assert_int_equal(juki_pki_revoke(f->dir, "cs-131016", f->err, sizeof(f->err)), 0);
	crl = read_crl(f);
	assert_int_equal(X509_CRL_verify(crl, cakey), 1);
	assert_int_equal(crl_number(crl), 2);
	assert_int_equal(crl_count(crl), 1);
	assert_int_equal(crl_lists(crl, cs_serial), 1);
	X509_CRL_free(crl);
	index = read_index(f);
	e = json_array_get(index_certs(index), 0);
	assert_true(json_is_string(json_object_get(e, "revoked")));
	assert_int_equal(juki_clock_parse(json_string_value(json_object_get(e, "revoked")), &ms),
			 0);
	assert_true(llabs(ms / 1000 - (int64_t)time(NULL)) < 10);
	assert_true(
	    json_is_null(json_object_get(json_array_get(index_certs(index), 1), "revoked")));
	json_decref(index);
	assert_int_equal(verify_with_crl(f, cs), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify_with_crl(f, fw), X509_V_OK);

	/* by urn */
	assert_int_equal(juki_pki_revoke(f->dir, "urn:juki:fwgate:east", f->err, sizeof(f->err)),
			 0);
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 3);
	assert_int_equal(crl_count(crl), 2);
	assert_int_equal(crl_lists(crl, cs_serial), 1);
	assert_int_equal(crl_lists(crl, fw_serial), 1);
	assert_int_equal(crl_lists(crl, pref_serial), 0);
	X509_CRL_free(crl);
	assert_int_equal(verify_with_crl(f, fw), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify_with_crl(f, pref), X509_V_OK);

	/* twice is not an error, and lists the serial once */
	assert_int_equal(juki_pki_revoke(f->dir, "cs-131016", f->err, sizeof(f->err)), 0);
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 4);
	assert_int_equal(crl_count(crl), 2);
	assert_int_equal(crl_lists(crl, cs_serial), 1);
	X509_CRL_free(crl);

	/* unknown names and urns change nothing */
	assert_int_equal(juki_pki_revoke(f->dir, "nobody", f->err, sizeof(f->err)), JUKI_ENOTFOUND);
	assert_non_null(strstr(f->err, "nobody"));
	assert_int_equal(juki_pki_revoke(f->dir, "urn:juki:pref:14", f->err, sizeof(f->err)),
			 JUKI_ENOTFOUND);
	assert_int_equal(juki_pki_revoke(f->dir, "cs-13101", f->err, sizeof(f->err)),
			 JUKI_ENOTFOUND);
	assert_int_equal(juki_pki_revoke(f->dir, "", f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_revoke(f->dir, NULL, f->err, sizeof(f->err)), JUKI_EINVAL);
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 4);
	X509_CRL_free(crl);

	OPENSSL_free(cs_serial);
	OPENSSL_free(fw_serial);
	OPENSSL_free(pref_serial);
	EVP_PKEY_free(cakey);
	X509_free(cs);
	X509_free(fw);
	X509_free(pref);
}

static void
test_reissue_after_revoke(void **state)
{
	struct fix *f = *state;
	char *old_serial, *new_serial;
	X509 *old, *cur;
	X509_CRL *crl;
	json_t *index;
	json_t *certs;

	init_ca(f);
	issue(f, "urn:juki:cs:131016", "cs-131016");
	old = read_cert(f, "cs-131016.crt");
	assert_int_equal(juki_pki_revoke(f->dir, "cs-131016", f->err, sizeof(f->err)), 0);
	issue(f, "urn:juki:cs:131016", "cs-131016");
	cur = read_cert(f, "cs-131016.crt");
	old_serial = serial_hex(X509_get0_serialNumber(old));
	new_serial = serial_hex(X509_get0_serialNumber(cur));
	assert_string_not_equal(old_serial, new_serial);
	assert_int_equal(verify_with_crl(f, old), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify_with_crl(f, cur), X509_V_OK);

	index = read_index(f);
	certs = index_certs(index);
	assert_int_equal(json_array_size(certs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(certs, 0), "serial")),
			    old_serial);
	assert_true(json_is_string(json_object_get(json_array_get(certs, 0), "revoked")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(certs, 1), "serial")),
			    new_serial);
	assert_true(json_is_null(json_object_get(json_array_get(certs, 1), "revoked")));
	json_decref(index);

	/* revoking the urn now revokes the new certificate as well */
	assert_int_equal(juki_pki_revoke(f->dir, "urn:juki:cs:131016", f->err, sizeof(f->err)), 0);
	crl = read_crl(f);
	assert_int_equal(crl_count(crl), 2);
	assert_int_equal(crl_lists(crl, old_serial), 1);
	assert_int_equal(crl_lists(crl, new_serial), 1);
	X509_CRL_free(crl);

	OPENSSL_free(old_serial);
	OPENSSL_free(new_serial);
	X509_free(old);
	X509_free(cur);
}

static void
test_write_crl(void **state)
{
	struct fix *f = *state;
	char missing[256];
	X509_CRL *crl;
	time_t now = time(NULL);

	init_ca(f);
	assert_int_equal(juki_pki_write_crl(f->dir, 7, f->err, sizeof(f->err)), 0);
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 2);
	assert_true(labs((long)(time_of(X509_CRL_get0_nextUpdate(crl)) - (now + 7L * 86400))) < 10);
	assert_true(labs((long)(time_of(X509_CRL_get0_lastUpdate(crl)) - now)) < 10);
	X509_CRL_free(crl);
	assert_int_equal(juki_pki_write_crl(f->dir, 1, f->err, sizeof(f->err)), 0);
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 3);
	X509_CRL_free(crl);

	assert_int_equal(juki_pki_write_crl(f->dir, 0, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_write_crl(f->dir, 36501, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_write_crl(NULL, 7, f->err, sizeof(f->err)), JUKI_EINVAL);
	snprintf(missing, sizeof(missing), "%s/missing", f->tmp);
	assert_int_equal(juki_pki_write_crl(missing, 7, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, missing));
	crl = read_crl(f);
	assert_int_equal(crl_number(crl), 3);
	X509_CRL_free(crl);
}

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pass = u;
	int n = (int)strlen(pass);

	(void)rwflag;
	if (n > size) {
		return -1;
	}
	memcpy(buf, pass, (size_t)n);
	return n;
}

static EVP_PKEY *
read_key_with(const char *path, const char *pass)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, pass_cb, (void *)pass);
	fclose(fp);
	ERR_clear_error();
	return k;
}

static void
test_encrypt_key(void **state)
{
	struct fix *f = *state;
	char path[256], head[64];
	X509 *cert;
	EVP_PKEY *key;
	FILE *fp;
	DIR *d;
	struct dirent *de;

	init_ca(f);
	issue(f, "urn:juki:op:cs:131016:tanaka", "op-cs-131016-tanaka");
	path_of(f, "op-cs-131016-tanaka.key", path, sizeof(path));
	assert_int_equal(juki_pki_encrypt_key(path, "correct horse", f->err, sizeof(f->err)), 0);
	assert_int_equal(mode_of(path), 0600);

	/* an encrypted PKCS#8 PEM, scrypt-based: nothing of the key in the clear */
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(head, sizeof(head), fp));
	fclose(fp);
	assert_string_equal(head, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
	assert_null(read_key_with(path, ""));
	assert_null(read_key_with(path, "wrong horse"));

	/* the same key as before: it still matches the certificate */
	key = read_key_with(path, "correct horse");
	assert_non_null(key);
	cert = read_cert(f, "op-cs-131016-tanaka.crt");
	assert_int_equal(X509_check_private_key(cert, key), 1);
	X509_free(cert);
	EVP_PKEY_free(key);

	/* no temporary file is left beside it */
	d = opendir(f->dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		assert_null(strstr(de->d_name, ".tmp-"));
	}
	closedir(d);

	/* twice is refused: it is not an unencrypted key any more */
	assert_int_equal(juki_pki_encrypt_key(path, "correct horse", f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_non_null(strstr(f->err, "not an unencrypted private key"));
}

static void
test_encrypt_key_bad(void **state)
{
	struct fix *f = *state;
	char path[256], pass[1100];

	init_ca(f);
	issue(f, "urn:juki:op:cs:131016:tanaka", "op-cs-131016-tanaka");
	path_of(f, "op-cs-131016-tanaka.key", path, sizeof(path));
	assert_int_equal(juki_pki_encrypt_key(path, "", f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_encrypt_key(path, NULL, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_pki_encrypt_key(NULL, "pass", f->err, sizeof(f->err)), JUKI_EINVAL);
	memset(pass, 'p', sizeof(pass));
	pass[1025] = '\0';
	assert_int_equal(juki_pki_encrypt_key(path, pass, f->err, sizeof(f->err)), JUKI_EINVAL);
	pass[1024] = '\0';
	assert_int_equal(juki_pki_encrypt_key(path, pass, f->err, sizeof(f->err)), 0);

	/* a key file others can read is refused, and left as it was */
	issue(f, "urn:juki:op:cs:131016:suzuki", "op-cs-131016-suzuki");
	path_of(f, "op-cs-131016-suzuki.key", path, sizeof(path));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(juki_pki_encrypt_key(path, "correct horse", f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	assert_int_equal(mode_of(path), 0644);

	/* a certificate is no key; a missing file; a directory */
	path_of(f, "op-cs-131016-suzuki.crt", path, sizeof(path));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(juki_pki_encrypt_key(path, "correct horse", f->err, sizeof(f->err)),
			 JUKI_ECERT);
	path_of(f, "nosuch.key", path, sizeof(path));
	assert_int_equal(juki_pki_encrypt_key(path, "correct horse", f->err, sizeof(f->err)),
			 -ENOENT);
	assert_int_equal(juki_pki_encrypt_key(f->dir, "correct horse", f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	assert_int_equal(juki_pki_encrypt_key("dir/", "correct horse", f->err, sizeof(f->err)),
			 JUKI_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_ca_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_ca_existing_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_ca_umask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_ca_bad_args, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_operator, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reissue_after_revoke, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_crl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encrypt_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encrypt_key_bad, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
