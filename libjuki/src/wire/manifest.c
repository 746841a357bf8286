/*
 * juki — the signed manifest of a node's installed programs (manifest.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/ident.h"
#include "juki/wire/manifest.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#define CERT_PEM_MAX  16384 /* bytes of the certificate a signature carries */
#define SIG_ALG       "ecdsa-sha256"
#define MANIFEST_FORM 1

void
juki_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	juki_hex_encode(md, sizeof(md), hex);
}

int
juki_sha256_file(const char *path, char hex[65])
{
	unsigned char buf[65536], md[32];
	unsigned int n = 0;
	EVP_MD_CTX *ctx;
	ssize_t got;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return -errno;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	for (;;) {
		got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0) {
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)got);
	}
	EVP_DigestFinal_ex(ctx, md, &n);
	juki_hex_encode(md, sizeof(md), hex);
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}

int
juki_manifest_kind_valid(const char *kind)
{
	return kind != NULL && (strcmp(kind, "binary") == 0 || strcmp(kind, "library") == 0 ||
				strcmp(kind, "config") == 0);
}

static int
hex64_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return i == 64;
}

/* A program's name or version: 1..64 of [A-Za-z0-9._+~-]. */
static int
word_valid(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (s == NULL || n == 0 || n > 64 || strlen(s) != n) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+~-",
			   s[i]) == NULL) {
			return 0;
		}
	}
	return 1;
}

static int
bad(char *err, size_t errlen, const char *what)
{
	juki_seterr(err, errlen, "%s", what);
	return JUKI_EFORMAT;
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every path of files is absolute, within bounds and listed once; one binary. */
static int
check_files(const json_t *files, char *err, size_t errlen)
{
	const char **paths;
	const json_t *f;
	size_t i, n = json_array_size(files), binaries = 0;
	int rc = 0;

	if (!json_is_array(files) || n == 0 || n > JUKI_MANIFEST_MAX_FILES) {
		return bad(err, errlen, "files: an array of 1 to 1024 entries");
	}
	paths = calloc(n, sizeof(*paths));
	if (paths == NULL) {
		return JUKI_ENOMEM;
	}
	json_array_foreach(files, i, f)
	{
		const json_t *p = json_object_get(f, "path");
		const json_t *h = json_object_get(f, "sha256");
		const json_t *k = json_object_get(f, "kind");

		if (!json_is_object(f) || json_object_size(f) != 3 || !json_is_string(p) ||
		    !json_is_string(h) || !json_is_string(k)) {
			juki_seterr(err, errlen, "files[%zu]: {\"path\", \"sha256\", \"kind\"}", i);
			rc = JUKI_EFORMAT;
			goto out;
		}
		paths[i] = json_string_value(p);
		if (paths[i][0] != '/' || json_string_length(p) != strlen(paths[i]) ||
		    json_string_length(p) > JUKI_MANIFEST_PATH_MAX) {
			juki_seterr(err, errlen, "files[%zu]: path: an absolute path", i);
			rc = JUKI_EFORMAT;
			goto out;
		}
		if (!hex64_valid(json_string_value(h))) {
			juki_seterr(err, errlen, "files[%zu]: sha256: 64 lowercase hex digits", i);
			rc = JUKI_EFORMAT;
			goto out;
		}
		if (!juki_manifest_kind_valid(json_string_value(k))) {
			juki_seterr(err, errlen, "files[%zu]: kind: binary, library or config", i);
			rc = JUKI_EFORMAT;
			goto out;
		}
		binaries += strcmp(json_string_value(k), "binary") == 0;
	}
	if (binaries != 1) {
		rc = bad(err, errlen, "files: exactly one binary");
		goto out;
	}
	qsort(paths, n, sizeof(*paths), path_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(paths[i - 1], paths[i]) == 0) {
			rc = bad(err, errlen, "files: a path listed twice");
			goto out;
		}
	}
out:
	free(paths);
	return rc;
}

int
juki_manifest_check(const json_t *m, int unsigned_ok, char *err, size_t errlen)
{
	static const char *const members[] = {"format", "node",  "daemon",    "version",
					      "made",   "files", "signature", NULL};
	struct juki_ident id;
	const char *key;
	const json_t *v, *sig;
	int64_t ms;

	if (!json_is_object(m)) {
		return bad(err, errlen, "a JSON object");
	}
	json_object_foreach((json_t *)m, key, v)
	{
		size_t i;

		for (i = 0; members[i] != NULL && strcmp(members[i], key) != 0; i++) {
		}
		if (members[i] == NULL) {
			juki_seterr(err, errlen, "unknown member %.40s", key);
			return JUKI_EFORMAT;
		}
	}
	v = json_object_get(m, "format");
	if (!json_is_integer(v) || json_integer_value(v) != MANIFEST_FORM) {
		return bad(err, errlen, "format: 1");
	}
	v = json_object_get(m, "node");
	if (!json_is_string(v) || juki_ident_parse(json_string_value(v), &id) != 0 ||
	    id.kind == JUKI_KIND_OP || id.kind == JUKI_KIND_EXEC) {
		return bad(err, errlen, "node: a node's identity");
	}
	v = json_object_get(m, "made");
	if (!json_is_string(v) || juki_clock_parse(json_string_value(v), &ms) != 0) {
		return bad(err, errlen, "made: a time (RFC 3339)");
	}
	v = json_object_get(m, "daemon");
	if (v != NULL && !word_valid(v)) {
		return bad(err, errlen, "daemon: a program's name");
	}
	v = json_object_get(m, "version");
	if (v != NULL && !word_valid(v)) {
		return bad(err, errlen, "version: a version");
	}
	if (check_files(json_object_get(m, "files"), err, errlen) != 0) {
		return JUKI_EFORMAT;
	}
	sig = json_object_get(m, "signature");
	if (sig == NULL) {
		return unsigned_ok ? 0 : bad(err, errlen, "not signed");
	}
	if (!json_is_object(sig) || json_object_size(sig) != 3 ||
	    !json_is_string(json_object_get(sig, "alg")) ||
	    strcmp(json_string_value(json_object_get(sig, "alg")), SIG_ALG) != 0 ||
	    !json_is_string(json_object_get(sig, "cert")) ||
	    json_string_length(json_object_get(sig, "cert")) > CERT_PEM_MAX ||
	    !json_is_string(json_object_get(sig, "value")) ||
	    json_string_length(json_object_get(sig, "value")) > JUKI_PKI_SIG_B64_MAX) {
		return bad(
		    err, errlen,
		    "signature: {\"alg\": \"ecdsa-sha256\", \"cert\": PEM, \"value\": base64}");
	}
	return 0;
}

int
juki_manifest_canonical(const json_t *m, char **out, size_t *len)
{
	json_t *copy;
	char *text;

	*out = NULL;
	*len = 0;
	if (!json_is_object(m) || (copy = json_copy((json_t *)m)) == NULL) {
		return json_is_object(m) ? JUKI_ENOMEM : JUKI_EJSON;
	}
	json_object_del(copy, "signature");
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(copy);
	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	*out = text;
	*len = strlen(text);
	return 0;
}

/* The text of the file at path, at most max bytes (NUL terminated). */
static int
read_small(const char *path, size_t max, char **out, size_t *outlen)
{
	char *buf;
	size_t n = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*out = NULL;
	if (fd < 0) {
		return -errno;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		close(fd);
		return JUKI_ENOMEM;
	}
	for (;;) {
		got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			int e = -errno;

			close(fd);
			free(buf);
			return e;
		}
		if (got == 0) {
			break;
		}
		n += (size_t)got;
		if (n > max) {
			close(fd);
			free(buf);
			return JUKI_ETOOBIG;
		}
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

int
juki_manifest_sign(json_t *m, struct juki_tls *tls, const char *cert_pem, char *err, size_t errlen)
{
	char *text = NULL, *pem = NULL, *b64 = NULL;
	unsigned char *sig = NULL;
	size_t len = 0, pemlen = 0, siglen = 0;
	int rc;

	json_object_del(m, "signature");
	if ((rc = juki_manifest_check(m, 1, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = read_small(cert_pem, CERT_PEM_MAX, &pem, &pemlen)) != 0) {
		juki_seterr(err, errlen, "%s: %s", cert_pem, juki_strerror(rc));
		return JUKI_ECERT;
	}
	if ((rc = juki_manifest_canonical(m, &text, &len)) != 0) {
		goto out;
	}
	if ((rc = juki_tls_sign(tls, text, len, &sig, &siglen)) != 0) {
		juki_seterr(err, errlen, "the node's key did not sign: %s", juki_strerror(rc));
		goto out;
	}
	b64 = malloc(4 * ((siglen + 2) / 3) + 1);
	if (b64 == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
	if (json_object_set_new(
		m, "signature",
		json_pack("{s:s,s:s,s:s}", "alg", SIG_ALG, "cert", pem, "value", b64)) != 0) {
		rc = JUKI_ENOMEM;
	}
out:
	if (rc == JUKI_ENOMEM) {
		juki_seterr(err, errlen, "out of memory");
	}
	free(text);
	free(pem);
	free(sig);
	free(b64);
	return rc;
}

/* The signature's certificate chains to ca_file (and is not revoked by crl_file). */
static int
check_chain(X509 *cert, const char *ca_file, const char *crl_file, char *err, size_t errlen)
{
	char why[256];
	int rc;

	if (access(ca_file, R_OK) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "the CA file %s: %s", ca_file, strerror(errno));
		return rc;
	}
	/* The manifest outlives its signer's validity: the dates are not checked. */
	rc = juki_pki_chain_check(cert, NULL, ca_file, crl_file, JUKI_PKI_ANY_TIME, why,
				  sizeof(why));
	if (rc == JUKI_EAUTH) {
		juki_seterr(err, errlen, "the signer's certificate is refused (%s)", why);
		return JUKI_ECERT;
	}
	if (rc != 0) {
		juki_seterr(err, errlen, "%s", why);
	}
	return rc;
}

int
juki_manifest_verify(const json_t *m, const char *ca_file, const char *crl_file, const char *node,
		     char *err, size_t errlen)
{
	const json_t *sig;
	const char *pem, *mnode;
	struct juki_ident id;
	X509 *cert = NULL;
	BIO *bio = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = juki_manifest_check(m, 0, err, errlen)) != 0) {
		return rc;
	}
	mnode = json_string_value(json_object_get(m, "node"));
	if (node != NULL && strcmp(mnode, node) != 0) {
		juki_seterr(err, errlen, "the manifest is %s's, not this node's (%s)", mnode, node);
		return JUKI_ECERT;
	}
	sig = json_object_get(m, "signature");
	pem = json_string_value(json_object_get(sig, "cert"));
	bio = BIO_new_mem_buf(pem, (int)strlen(pem));
	cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (cert == NULL || juki_tls_cert_ident(cert, &id) != 0) {
		juki_seterr(err, errlen, "signature: the certificate cannot be read");
		rc = JUKI_ECERT;
		goto out;
	}
	if (strcmp(id.urn, mnode) != 0) {
		juki_seterr(err, errlen, "signed by %s, not by the node %s", id.urn, mnode);
		rc = JUKI_ECERT;
		goto out;
	}
	if ((rc = check_chain(cert, ca_file, crl_file, err, errlen)) != 0) {
		goto out;
	}
	if ((rc = juki_manifest_canonical(m, &text, &len)) != 0) {
		goto out;
	}
	if (!juki_pki_sig_b64_ok(cert, text, len,
				 json_string_value(json_object_get(sig, "value")))) {
		juki_seterr(err, errlen, "the signature does not match the manifest");
		rc = JUKI_EAUTH;
	}
out:
	free(text);
	X509_free(cert);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int
juki_manifest_load(const char *path, json_t **out, char hex[65], char *err, size_t errlen)
{
	json_error_t jerr;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if ((rc = read_small(path, JUKI_MANIFEST_MAX_BYTES, &text, &len)) != 0) {
		juki_seterr(err, errlen, "%s: %s", path,
			    rc == JUKI_ETOOBIG ? "larger than 1 MiB" : juki_strerror(rc));
		return rc;
	}
	if (hex != NULL) {
		juki_sha256_hex(text, len, hex);
	}
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (*out == NULL) {
		juki_seterr(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
		return JUKI_EJSON;
	}
	return 0;
}

const json_t *
juki_manifest_entry(const json_t *m, const char *path)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(m, "files"), i, f)
	{
		if (strcmp(json_string_value(json_object_get(f, "path")), path) == 0) {
			return f;
		}
	}
	return NULL;
}
