#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#define CA_CERT    "ca.crt"
#define CA_KEY     "ca.key"
#define CRL_FILE   "crl.pem"
#define INDEX_FILE "index.json"

#define INDEX_VERSION    1
#define DAYS_MAX         36500 /* a hundred years: beyond that is a typo */
#define CRL_DAYS_DEFAULT 30
#define CN_MAX           64 /* ub-common-name, RFC 5280 */
#define SERIAL_BITS      128
#define NAME_OUT_MIN     64 /* what the header promises name_out holds */
#define BACKDATE_SECS    300

#define MODE_SECRET 0600
#define MODE_PUBLIC 0644

/*
 * An open PKI directory.  All file access goes through dirfd, which also
 * holds an exclusive flock: two `juki-ctl pki` runs never interleave their
 * read-modify-write of index.json and crl.pem.
 */
struct pki {
	const char *dir;
	int dirfd;
	X509 *ca;
	EVP_PKEY *cakey;
	json_t *index;
};

static int
days_valid(int days, const char *what, char *err, size_t errlen)
{
	if (days < 1 || days > DAYS_MAX) {
		juki_seterr(err, errlen, "%s must be 1..%d days, not %d", what, DAYS_MAX, days);
		return JUKI_EINVAL;
	}
	return 0;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Write data to name in dir atomically: a fresh temporary file (O_EXCL, so
 * never someone else's file, and created with its final mode so a key is
 * never readable even for a moment), fsync, rename over name, fsync the
 * directory.  A crash leaves either the old file or the new one.
 */
static int
write_atomic(struct pki *p, const char *name, const void *data, size_t len, mode_t mode, char *err,
	     size_t errlen)
{
	unsigned char rnd[8];
	char tmp[256];
	const char *c = data;
	int fd = -1;
	int rc = 0;

	for (int attempt = 0; fd < 0; attempt++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			return juki_seterr_ssl(err, errlen, JUKI_EIO,
					       "random bytes for a temporary name");
		}
		snprintf(tmp, sizeof(tmp), ".%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0],
			 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    mode);
		if (fd < 0 && (errno != EEXIST || attempt == 4)) {
			rc = -errno;
			juki_seterr(err, errlen, "%s/%s: %s", p->dir, tmp, strerror(errno));
			return rc;
		}
	}
	/* The umask may have taken bits from a public file; modes here are exact. */
	if (fchmod(fd, mode) != 0) {
		rc = -errno;
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		c += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto out;
	}
	rc = close(fd) != 0 ? -errno : 0;
	fd = -1;
	if (rc == 0 && renameat(p->dirfd, tmp, p->dirfd, name) != 0) {
		rc = -errno;
	}
	if (rc == 0 && fsync(p->dirfd) != 0) {
		/* renamed already: report, but there is no temporary file left to remove */
		rc = -errno;
		juki_seterr(err, errlen, "%s: fsync: %s", p->dir, strerror(-rc));
		return rc;
	}
out:
	if (rc != 0) {
		juki_seterr(err, errlen, "%s/%s: %s", p->dir, name, strerror(-rc));
		if (fd >= 0) {
			close(fd);
		}
		unlinkat(p->dirfd, tmp, 0);
	}
	return rc;
}

/* Serialise an OpenSSL object as PEM through a memory BIO, then write it atomically. */
static int
write_bio(struct pki *p, const char *name, BIO *bio, mode_t mode, char *err, size_t errlen)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0) {
		return juki_seterr_ssl(err, errlen, JUKI_EIO, "PEM encoding");
	}
	return write_atomic(p, name, data, (size_t)len, mode, err, errlen);
}

static int
write_key(struct pki *p, const char *name, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	int rc;

	if (bio == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "BIO_new");
	}
	if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "PEM encoding of a private key");
	} else {
		rc = write_bio(p, name, bio, MODE_SECRET, err, errlen);
	}
	BIO_free(bio);
	return rc;
}

static int
write_cert(struct pki *p, const char *name, X509 *cert, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int rc;

	if (bio == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "BIO_new");
	}
	if (!PEM_write_bio_X509(bio, cert)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "PEM encoding of a certificate");
	} else {
		rc = write_bio(p, name, bio, MODE_PUBLIC, err, errlen);
	}
	BIO_free(bio);
	return rc;
}

static FILE *
open_in(struct pki *p, const char *name, int *rc, char *err, size_t errlen)
{
	FILE *fp;
	int fd;

	fd = openat(p->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*rc = -errno;
		juki_seterr(err, errlen, "%s/%s: %s", p->dir, name, strerror(errno));
		return NULL;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		*rc = -errno;
		juki_seterr(err, errlen, "%s/%s: %s", p->dir, name, strerror(errno));
		close(fd);
	}
	return fp;
}

static int
load_ca(struct pki *p, char *err, size_t errlen)
{
	char what[512];
	FILE *fp;
	int rc = 0;

	fp = open_in(p, CA_CERT, &rc, err, errlen);
	if (fp == NULL) {
		return rc;
	}
	p->ca = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (p->ca == NULL) {
		snprintf(what, sizeof(what), "%s/%s", p->dir, CA_CERT);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	fp = open_in(p, CA_KEY, &rc, err, errlen);
	if (fp == NULL) {
		return rc;
	}
	p->cakey = PEM_read_PrivateKey_ex(fp, NULL, no_passphrase, NULL, NULL, NULL);
	fclose(fp);
	if (p->cakey == NULL) {
		snprintf(what, sizeof(what), "%s/%s", p->dir, CA_KEY);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	if (X509_check_private_key(p->ca, p->cakey) != 1) {
		snprintf(what, sizeof(what), "%s/%s does not match %s", p->dir, CA_KEY, CA_CERT);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	return 0;
}

static int
entry_valid(json_t *e)
{
	json_t *revoked = json_object_get(e, "revoked");

	return json_is_object(e) && json_is_string(json_object_get(e, "name")) &&
	       json_is_string(json_object_get(e, "urn")) &&
	       json_is_string(json_object_get(e, "serial")) &&
	       json_is_string(json_object_get(e, "not_after")) &&
	       (json_is_null(revoked) || json_is_string(revoked));
}

static int
load_index(struct pki *p, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *certs;
	json_t *num;
	json_t *e;
	size_t i;
	FILE *fp;
	int rc = 0;

	fp = open_in(p, INDEX_FILE, &rc, err, errlen);
	if (fp == NULL) {
		return rc;
	}
	p->index = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	fclose(fp);
	if (p->index == NULL) {
		juki_seterr(err, errlen, "%s/%s:%d:%d: %s", p->dir, INDEX_FILE, jerr.line,
			    jerr.column, jerr.text);
		return JUKI_EJSON;
	}
	certs = json_object_get(p->index, "certificates");
	num = json_object_get(p->index, "crl_number");
	if (!json_is_array(certs) || !json_is_integer(num) || json_integer_value(num) < 0) {
		juki_seterr(err, errlen, "%s/%s: not a juki PKI index", p->dir, INDEX_FILE);
		return JUKI_EJSON;
	}
	json_array_foreach(certs, i, e)
	{
		if (!entry_valid(e)) {
			juki_seterr(err, errlen, "%s/%s: certificate entry %zu is malformed",
				    p->dir, INDEX_FILE, i);
			return JUKI_EJSON;
		}
	}
	return 0;
}

static int
save_index(struct pki *p, char *err, size_t errlen)
{
	char *text = json_dumps(p->index, JSON_INDENT(2));
	char *line;
	int rc;

	if (text == NULL) {
		juki_seterr(err, errlen, "%s/%s: cannot encode", p->dir, INDEX_FILE);
		return JUKI_ENOMEM;
	}
	line = malloc(strlen(text) + 2);
	if (line == NULL) {
		free(text);
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	sprintf(line, "%s\n", text);
	rc = write_atomic(p, INDEX_FILE, line, strlen(line), MODE_PUBLIC, err, errlen);
	free(line);
	free(text);
	return rc;
}

static void
pki_close(struct pki *p)
{
	X509_free(p->ca);
	EVP_PKEY_free(p->cakey);
	json_decref(p->index);
	if (p->dirfd >= 0) {
		/* closing the descriptor releases the flock */
		close(p->dirfd);
	}
	memset(p, 0, sizeof(*p));
	p->dirfd = -1;
}

/* Open and lock dir; with full set, load the CA and the index too. */
static int
pki_open(struct pki *p, const char *dir, int full, char *err, size_t errlen)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "PKI directory %s: %s", dir, strerror(errno));
		return rc;
	}
	if (flock(p->dirfd, LOCK_EX) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "PKI directory %s: lock: %s", dir, strerror(errno));
		return rc;
	}
	if (!full) {
		return 0;
	}
	rc = load_ca(p, err, errlen);
	if (rc != 0) {
		return rc;
	}
	return load_index(p, err, errlen);
}

static int
add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value, char *err, size_t errlen)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
	char what[128];
	int ok;

	if (ext == NULL) {
		snprintf(what, sizeof(what), "extension %s=%s", OBJ_nid2sn(nid), value);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok) {
		snprintf(what, sizeof(what), "extension %s", OBJ_nid2sn(nid));
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	return 0;
}

static int
serial_in_index(json_t *index, const char *hex)
{
	json_t *certs = json_object_get(index, "certificates");
	json_t *e;
	size_t i;

	json_array_foreach(certs, i, e)
	{
		if (strcasecmp(json_string_value(json_object_get(e, "serial")), hex) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * A random positive 128-bit serial (top bit set, so always 128 bits), unique
 * in the index; *hex receives its upper-case hex form (OPENSSL_free it).
 */
static int
new_serial(X509 *cert, json_t *index, char **hex, char *err, size_t errlen)
{
	BIGNUM *bn = BN_new();
	int rc = 0;

	*hex = NULL;
	if (bn == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "BN_new");
	}
	do {
		OPENSSL_free(*hex);
		*hex = NULL;
		if (!BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
		    (*hex = BN_bn2hex(bn)) == NULL) {
			rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "random serial");
			goto out;
		}
	} while (index != NULL && serial_in_index(index, *hex));
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "serial number");
	}
out:
	if (rc != 0) {
		OPENSSL_free(*hex);
		*hex = NULL;
	}
	BN_free(bn);
	return rc;
}

/*
 * The common part of every certificate: version 3, serial, validity from five
 * minutes ago (so a peer whose clock runs a little behind accepts it at once)
 * for days, subject CN, public key.
 */
static int
cert_start(X509 *cert, EVP_PKEY *key, const char *cn, time_t now, int days, json_t *index,
	   char **serial_hex, char *err, size_t errlen)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int rc;

	if (!X509_set_version(cert, X509_VERSION_3)) {
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, "certificate version");
	}
	rc = new_serial(cert, index, serial_hex, err, errlen);
	if (rc != 0) {
		return rc;
	}
	/*
	 * V_ASN1_UTF8STRING rather than MBSTRING_UTF8 skips the 64-character
	 * bound on CN: an operator urn can be longer, and no verifier checks it.
	 */
	if (ASN1_TIME_set(X509_getm_notBefore(cert), now - BACKDATE_SECS) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(cert), now + (time_t)days * 86400) == NULL ||
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_pubkey(cert, key)) {
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, "certificate fields");
	}
	return 0;
}

static int
new_key(EVP_PKEY **key, char *err, size_t errlen)
{
	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (*key == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_EIO, "EC P-256 key generation");
	}
	return 0;
}

static int
make_ca(const char *cn, int days, time_t now, EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
	char *serial = NULL;
	X509V3_CTX v3;
	int rc;

	*cert = NULL;
	rc = new_key(key, err, errlen);
	if (rc != 0) {
		return rc;
	}
	*cert = X509_new();
	if (*cert == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "X509_new");
	}
	rc = cert_start(*cert, *key, cn, now, days, NULL, &serial, err, errlen);
	if (rc != 0) {
		goto out;
	}
	if (!X509_set_issuer_name(*cert, X509_get_subject_name(*cert))) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "issuer name");
		goto out;
	}
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, *cert, *cert, NULL, NULL, 0);
	if ((rc = add_ext(*cert, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err,
			  errlen)) != 0 ||
	    (rc = add_ext(*cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign", err,
			  errlen)) != 0 ||
	    (rc = add_ext(*cert, &v3, NID_subject_key_identifier, "hash", err, errlen)) != 0) {
		goto out;
	}
	if (X509_sign(*cert, *key, EVP_sha256()) <= 0) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "signing the CA certificate");
		goto out;
	}
out:
	OPENSSL_free(serial);
	return rc;
}

static int
add_san_uri(X509 *cert, const char *urn, char *err, size_t errlen)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
	int rc = 0;

	if (names == NULL || gn == NULL || uri == NULL || !ASN1_STRING_set(uri, urn, -1)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "subjectAltName");
		goto out;
	}
	GENERAL_NAME_set0_value(gn, GEN_URI, uri);
	uri = NULL;
	if (!sk_GENERAL_NAME_push(names, gn)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "subjectAltName");
		goto out;
	}
	gn = NULL;
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "subjectAltName");
	}
out:
	ASN1_IA5STRING_free(uri);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return rc;
}

/* A leaf for *key, or for a new key made here when *key is NULL. */
static int
make_leaf(struct pki *p, const char *urn, int days, time_t now, EVP_PKEY **key, X509 **cert,
	  char **serial, char *err, size_t errlen)
{
	X509V3_CTX v3;
	int rc;

	*cert = NULL;
	rc = *key != NULL ? 0 : new_key(key, err, errlen);
	if (rc != 0) {
		return rc;
	}
	*cert = X509_new();
	if (*cert == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "X509_new");
	}
	rc = cert_start(*cert, *key, urn, now, days, p->index, serial, err, errlen);
	if (rc != 0) {
		return rc;
	}
	if (!X509_set_issuer_name(*cert, X509_get_subject_name(p->ca))) {
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, "issuer name");
	}
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, p->ca, *cert, NULL, NULL, 0);
	if ((rc = add_ext(*cert, &v3, NID_basic_constraints, "critical,CA:FALSE", err, errlen)) !=
		0 ||
	    (rc = add_ext(*cert, &v3, NID_key_usage, "critical,digitalSignature", err, errlen)) !=
		0 ||
	    (rc = add_ext(*cert, &v3, NID_ext_key_usage, "serverAuth,clientAuth", err, errlen)) !=
		0 ||
	    (rc = add_ext(*cert, &v3, NID_subject_key_identifier, "hash", err, errlen)) != 0 ||
	    (rc = add_ext(*cert, &v3, NID_authority_key_identifier, "keyid:always", err, errlen)) !=
		0 ||
	    (rc = add_san_uri(*cert, urn, err, errlen)) != 0) {
		return rc;
	}
	if (X509_sign(*cert, p->cakey, EVP_sha256()) <= 0) {
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, "signing the certificate");
	}
	return 0;
}

static ASN1_TIME *
time_from_text(const char *text)
{
	int64_t ms;

	if (juki_clock_parse(text, &ms) != 0) {
		return NULL;
	}
	return ASN1_TIME_set(NULL, (time_t)(ms / 1000));
}

static int
add_revoked(X509_CRL *crl, json_t *e, char *err, size_t errlen)
{
	const char *serial = json_string_value(json_object_get(e, "serial"));
	const char *when = json_string_value(json_object_get(e, "revoked"));
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = time_from_text(when);
	BIGNUM *bn = NULL;
	int rc = 0;

	if (r == NULL || t == NULL || BN_hex2bn(&bn, serial) != (int)strlen(serial) ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || !X509_REVOKED_set_serialNumber(r, ai) ||
	    !X509_REVOKED_set_revocationDate(r, t)) {
		ERR_clear_error();
		juki_seterr(err, errlen, "index entry %s: bad serial \"%s\" or time \"%s\"",
			    json_string_value(json_object_get(e, "name")), serial, when);
		rc = JUKI_EJSON;
		goto out;
	}
	if (!X509_CRL_add0_revoked(crl, r)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "CRL entry");
		goto out;
	}
	r = NULL;
out:
	X509_REVOKED_free(r);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	BN_free(bn);
	return rc;
}

static int
crl_extensions(struct pki *p, X509_CRL *crl, json_int_t number, char *err, size_t errlen)
{
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509_EXTENSION *aki = NULL;
	X509V3_CTX v3;
	int rc = 0;

	if (num == NULL || !ASN1_INTEGER_set_int64(num, number) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_DEFAULT) != 1) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "CRL number");
		goto out;
	}
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, p->ca, NULL, NULL, crl, 0);
	aki = X509V3_EXT_nconf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "CRL authorityKeyIdentifier");
	}
out:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	return rc;
}

/*
 * Take the next CRL number, record it in the index first (a number used once
 * is never reused, even if writing the CRL then fails), and write crl.pem
 * listing every revoked entry of the index.
 */
static int
crl_write(struct pki *p, int days, time_t now, char *err, size_t errlen)
{
	json_t *certs = json_object_get(p->index, "certificates");
	json_int_t number = json_integer_value(json_object_get(p->index, "crl_number")) + 1;
	ASN1_TIME *last = NULL;
	ASN1_TIME *next = NULL;
	X509_CRL *crl = NULL;
	BIO *bio = NULL;
	json_t *e;
	size_t i;
	int rc;

	if (json_object_set_new(p->index, "crl_number", json_integer(number)) != 0) {
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	rc = save_index(p, err, errlen);
	if (rc != 0) {
		return rc;
	}
	crl = X509_CRL_new();
	last = ASN1_TIME_set(NULL, now);
	next = ASN1_TIME_set(NULL, now + (time_t)days * 86400);
	if (crl == NULL || last == NULL || next == NULL ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->ca)) ||
	    !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "CRL fields");
		goto out;
	}
	json_array_foreach(certs, i, e)
	{
		if (json_is_string(json_object_get(e, "revoked"))) {
			rc = add_revoked(crl, e, err, errlen);
			if (rc != 0) {
				goto out;
			}
		}
	}
	rc = crl_extensions(p, crl, number, err, errlen);
	if (rc != 0) {
		goto out;
	}
	if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, p->cakey, EVP_sha256()) <= 0) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, "signing the CRL");
		goto out;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "PEM encoding of the CRL");
		goto out;
	}
	rc = write_bio(p, CRL_FILE, bio, MODE_PUBLIC, err, errlen);
out:
	BIO_free(bio);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return rc;
}

static int
new_index(json_t **out, const char *cn)
{
	*out = json_pack("{s:i, s:s, s:i, s:[]}", "version", INDEX_VERSION, "ca", cn, "crl_number",
			 0, "certificates");
	return *out == NULL ? JUKI_ENOMEM : 0;
}

int
juki_pki_init_ca(const char *dir, const char *cn, int days, char *err, size_t errlen)
{
	struct pki p = {.dirfd = -1};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat st;
	time_t now = time(NULL);
	int rc;

	if (dir == NULL || *dir == '\0') {
		juki_seterr(err, errlen, "no PKI directory given");
		return JUKI_EINVAL;
	}
	if (cn == NULL || *cn == '\0' || strlen(cn) > CN_MAX) {
		juki_seterr(err, errlen, "the CA name must be 1..%d bytes", CN_MAX);
		return JUKI_EINVAL;
	}
	rc = days_valid(days, "CA validity", err, errlen);
	if (rc != 0) {
		return rc;
	}
	ERR_clear_error();
	if (mkdir(dir, 0700) == 0) {
		/* mkdir's mode passes through the umask; the directory is exactly 0700 */
		if (chmod(dir, 0700) != 0) {
			rc = -errno;
			juki_seterr(err, errlen, "PKI directory %s: %s", dir, strerror(errno));
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		juki_seterr(err, errlen, "PKI directory %s: %s", dir, strerror(errno));
		return rc;
	}
	rc = pki_open(&p, dir, 0, err, errlen);
	if (rc != 0) {
		goto out;
	}
	if (fstatat(p.dirfd, CA_KEY, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		juki_seterr(err, errlen, "%s already holds a CA (%s)", dir, CA_KEY);
		rc = JUKI_EEXIST;
		goto out;
	}
	rc = make_ca(cn, days, now, &key, &cert, err, errlen);
	if (rc != 0) {
		goto out;
	}
	/* The key first: a certificate without its key would be a CA nobody can use. */
	if ((rc = write_key(&p, CA_KEY, key, err, errlen)) != 0 ||
	    (rc = write_cert(&p, CA_CERT, cert, err, errlen)) != 0) {
		goto out;
	}
	if (new_index(&p.index, cn) != 0) {
		juki_seterr(err, errlen, "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	p.ca = cert;
	p.cakey = key;
	cert = NULL;
	key = NULL;
	rc = crl_write(&p, CRL_DAYS_DEFAULT, now, err, errlen);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	pki_close(&p);
	return rc;
}

static int
name_active(json_t *index, const char *name)
{
	json_t *certs = json_object_get(index, "certificates");
	json_t *e;
	size_t i;

	json_array_foreach(certs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0 &&
		    json_is_null(json_object_get(e, "revoked"))) {
			return 1;
		}
	}
	return 0;
}

static int
time_text(time_t t, char *buf, size_t len)
{
	return juki_clock_format((int64_t)t * 1000, buf, len);
}

static int
issue(const char *dir, const char *urn, int days, EVP_PKEY *pub, char *name_out, char *err,
      size_t errlen)
{
	struct pki p = {.dirfd = -1};
	struct juki_ident ident;
	char name[JUKI_URN_MAX];
	char file[JUKI_URN_MAX + 8];
	char not_after[32];
	char *serial = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	time_t now = time(NULL);
	json_t *entry;
	int rc;

	if (dir == NULL || urn == NULL) {
		juki_seterr(err, errlen, "no PKI directory or identity given");
		return JUKI_EINVAL;
	}
	if (juki_ident_parse(urn, &ident) != 0) {
		juki_seterr(err, errlen, "\"%s\" is not a valid urn:juki identity", urn);
		return JUKI_EIDENT;
	}
	rc = days_valid(days, "certificate validity", err, errlen);
	if (rc != 0) {
		return rc;
	}
	if (juki_ident_filename(&ident, name, sizeof(name)) != 0 ||
	    (name_out != NULL && strlen(name) >= NAME_OUT_MIN)) {
		juki_seterr(err, errlen, "file name for %s is too long", urn);
		return JUKI_ENAMETOOLONG;
	}
	ERR_clear_error();
	rc = pki_open(&p, dir, 1, err, errlen);
	if (rc != 0) {
		goto out;
	}
	if (name_active(p.index, name)) {
		juki_seterr(err, errlen, "%s was already issued as %s and is not revoked", urn,
			    name);
		rc = JUKI_EEXIST;
		goto out;
	}
	if (pub != NULL && !EVP_PKEY_up_ref(pub)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "the public key");
		goto out;
	}
	key = pub;
	rc = make_leaf(&p, ident.urn, days, now, &key, &cert, &serial, err, errlen);
	if (rc != 0) {
		goto out;
	}
	snprintf(file, sizeof(file), "%s.key", name);
	if (pub == NULL) {
		rc = write_key(&p, file, key, err, errlen);
	} else if (unlinkat(p.dirfd, file, 0) != 0 && errno != ENOENT) {
		/* a key file of an earlier certificate of this name would not match this one */
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", file, strerror(errno));
	}
	if (rc != 0) {
		goto out;
	}
	snprintf(file, sizeof(file), "%s.crt", name);
	rc = write_cert(&p, file, cert, err, errlen);
	if (rc != 0) {
		goto out;
	}
	time_text(now + (time_t)days * 86400, not_after, sizeof(not_after));
	entry = json_pack("{s:s, s:s, s:s, s:s, s:n}", "name", name, "urn", ident.urn, "serial",
			  serial, "not_after", not_after, "revoked");
	if (entry == NULL ||
	    json_array_append_new(json_object_get(p.index, "certificates"), entry) != 0) {
		juki_seterr(err, errlen, "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	rc = save_index(&p, err, errlen);
	if (rc == 0 && name_out != NULL) {
		memcpy(name_out, name, strlen(name) + 1);
	}
out:
	OPENSSL_free(serial);
	X509_free(cert);
	EVP_PKEY_free(key);
	pki_close(&p);
	return rc;
}

int
juki_pki_issue(const char *dir, const char *urn, int days, char *name_out, char *err, size_t errlen)
{
	return issue(dir, urn, days, NULL, name_out, err, errlen);
}

int
juki_pki_issue_key(const char *dir, const char *urn, int days, EVP_PKEY *pub, char *name_out,
		   char *err, size_t errlen)
{
	if (pub == NULL) {
		juki_seterr(err, errlen, "no public key given");
		return JUKI_EINVAL;
	}
	return issue(dir, urn, days, pub, name_out, err, errlen);
}

int
juki_pki_revoke(const char *dir, const char *name_or_urn, char *err, size_t errlen)
{
	struct pki p = {.dirfd = -1};
	char when[32];
	time_t now = time(NULL);
	json_t *certs;
	json_t *e;
	size_t i;
	int found = 0;
	int rc;

	if (dir == NULL || name_or_urn == NULL || *name_or_urn == '\0') {
		juki_seterr(err, errlen, "no PKI directory or certificate given");
		return JUKI_EINVAL;
	}
	ERR_clear_error();
	rc = pki_open(&p, dir, 1, err, errlen);
	if (rc != 0) {
		goto out;
	}
	time_text(now, when, sizeof(when));
	certs = json_object_get(p.index, "certificates");
	json_array_foreach(certs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "name")), name_or_urn) != 0 &&
		    strcmp(json_string_value(json_object_get(e, "urn")), name_or_urn) != 0) {
			continue;
		}
		found = 1;
		if (json_is_null(json_object_get(e, "revoked")) &&
		    json_object_set_new(e, "revoked", json_string(when)) != 0) {
			juki_seterr(err, errlen, "out of memory");
			rc = JUKI_ENOMEM;
			goto out;
		}
	}
	if (!found) {
		juki_seterr(err, errlen, "no certificate was issued as %s in %s", name_or_urn, dir);
		rc = JUKI_ENOTFOUND;
		goto out;
	}
	rc = crl_write(&p, CRL_DAYS_DEFAULT, now, err, errlen);
out:
	pki_close(&p);
	return rc;
}

int
juki_pki_write_crl(const char *dir, int days, char *err, size_t errlen)
{
	struct pki p = {.dirfd = -1};
	int rc;

	if (dir == NULL) {
		juki_seterr(err, errlen, "no PKI directory given");
		return JUKI_EINVAL;
	}
	rc = days_valid(days, "CRL validity", err, errlen);
	if (rc != 0) {
		return rc;
	}
	ERR_clear_error();
	rc = pki_open(&p, dir, 1, err, errlen);
	if (rc == 0) {
		rc = crl_write(&p, days, time(NULL), err, errlen);
	}
	pki_close(&p);
	return rc;
}

/*
 * scrypt as `openssl pkcs8 -scrypt` sets it: 16 MiB of memory per guess,
 * inside OpenSSL's default decryption limit of 32 MiB.
 */
#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1
#define PASS_MAX 1024

static int
encrypted_pem(EVP_PKEY *key, const char *pass, BIO **out, char *err, size_t errlen)
{
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *p8 = NULL;
	BIO *bio = NULL;
	int rc = JUKI_EIO;

	*out = NULL;
	p8inf = EVP_PKEY2PKCS8(key);
	pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, SCRYPT_N, SCRYPT_R, SCRYPT_P);
	if (p8inf == NULL || pbe == NULL) {
		rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "PKCS#8 encryption parameters");
		goto out;
	}
	p8 = PKCS8_set0_pbe(pass, (int)strlen(pass), p8inf, pbe);
	if (p8 == NULL) {
		rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "PKCS#8 encryption");
		goto out;
	}
	pbe = NULL; /* owned by p8 now */
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_PKCS8(bio, p8)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_EIO, "PEM encoding of an encrypted key");
		goto out;
	}
	*out = bio;
	bio = NULL;
	rc = 0;
out:
	BIO_free(bio);
	X509_SIG_free(p8);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	return rc;
}

int
juki_pki_encrypt_key(const char *path, const char *pass, char *err, size_t errlen)
{
	struct pki p = {.dirfd = -1};
	char dir[PATH_MAX];
	const char *base;
	const char *slash;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	FILE *fp;
	int rc;

	if (path == NULL || pass == NULL || *pass == '\0' || strlen(pass) > PASS_MAX) {
		juki_seterr(err, errlen, "a key file and a passphrase of 1..%d bytes are needed",
			    PASS_MAX);
		return JUKI_EINVAL;
	}
	slash = strrchr(path, '/');
	base = slash != NULL ? slash + 1 : path;
	if (*base == '\0' || (slash != NULL && (size_t)(slash - path) >= sizeof(dir))) {
		juki_seterr(err, errlen, "%s: not a file name", path);
		return JUKI_EINVAL;
	}
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	}
	ERR_clear_error();
	/* The plain key obeys the key-file rule; the encrypted one keeps it (0600). */
	rc = juki_tls_check_key_file(path, err, errlen);
	if (rc != 0) {
		return rc;
	}
	fp = fopen(path, "re");
	if (fp == NULL) {
		rc = -errno;
		juki_seterr(err, errlen, "key file %s: %s", path, strerror(errno));
		return rc;
	}
	key = PEM_read_PrivateKey_ex(fp, NULL, no_passphrase, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL) {
		char what[PATH_MAX + 64];

		snprintf(what, sizeof(what), "key file %s: not an unencrypted private key", path);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	rc = encrypted_pem(key, pass, &bio, err, errlen);
	if (rc != 0) {
		goto out;
	}
	p.dir = dir;
	p.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p.dirfd < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	rc = write_bio(&p, base, bio, MODE_SECRET, err, errlen);
out:
	/* the memory BIO held only ciphertext; the plain key dies with key */
	BIO_free(bio);
	EVP_PKEY_free(key);
	pki_close(&p);
	return rc;
}

int
juki_pki_file_times(const char *path, int crl, long long *ms)
{
	FILE *f = fopen(path, "r");
	const ASN1_TIME *t = NULL;
	X509 *cert = NULL;
	X509_CRL *list = NULL;
	struct tm tm;
	int rc = JUKI_EFORMAT;

	if (f == NULL) {
		return JUKI_EIO;
	}
	if (crl) {
		list = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		if (list != NULL) {
			t = X509_CRL_get0_nextUpdate(list);
			rc = 0;
			*ms = INT64_MIN;
		}
	} else if ((cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		t = X509_get0_notAfter(cert);
		rc = t != NULL ? 0 : JUKI_EFORMAT;
	}
	fclose(f);
	ERR_clear_error();
	if (rc == 0 && t != NULL) {
		if (ASN1_TIME_to_tm(t, &tm) == 1) {
			*ms = (long long)timegm(&tm) * 1000;
		} else {
			rc = JUKI_EFORMAT;
		}
	}
	X509_free(cert);
	X509_CRL_free(list);
	return rc;
}

int
juki_pki_chain_check(X509 *cert, STACK_OF(X509) * chain, const char *ca_file, const char *crl_file,
		     int64_t now_ms, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	int rc = 0;

	if (store == NULL || vctx == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (X509_STORE_load_file(store, ca_file) != 1) {
		rc = JUKI_ECERT;
		juki_seterr(err, errlen, "the CA file %s cannot be loaded", ca_file);
		goto out;
	}
	if (crl_file != NULL) {
		if (X509_STORE_load_file(store, crl_file) != 1) {
			rc = JUKI_ECERT;
			juki_seterr(err, errlen, "the CRL file %s cannot be loaded", crl_file);
			goto out;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	if (now_ms == JUKI_PKI_ANY_TIME) {
		X509_STORE_set_flags(store, X509_V_FLAG_NO_CHECK_TIME);
	}
	if (X509_STORE_CTX_init(vctx, store, cert, chain) != 1) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (now_ms > 0) {
		X509_STORE_CTX_set_time(vctx, 0, (time_t)(now_ms / 1000));
	}
	if (X509_verify_cert(vctx) != 1) {
		juki_seterr(err, errlen, "untrusted certificate: %s",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		rc = JUKI_EAUTH;
	}
out:
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

int
juki_pki_sig_b64_ok(X509 *cert, const void *data, size_t len, const char *b64)
{
	size_t b64len = b64 != NULL ? strlen(b64) : 0;
	unsigned char *der = NULL;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *key = X509_get0_pubkey(cert);
	const EVP_MD *digest = EVP_sha256();
	int n, ok = 0;

	if (key == NULL || b64len < 4 || b64len % 4 != 0 || b64len > JUKI_PKI_SIG_B64_MAX) {
		goto out;
	}
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
		digest = NULL;
	}
	der = malloc(b64len / 4 * 3);
	if (der == NULL) {
		goto out;
	}
	n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)b64len);
	if (n < 0) {
		goto out;
	}
	/* EVP_DecodeBlock counts the padding's zero bytes: drop them. */
	n -= (b64[b64len - 1] == '=') + (b64[b64len - 2] == '=');
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestVerifyInit(md, NULL, digest, NULL, key) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)n, data, len) == 1;
out:
	EVP_MD_CTX_free(md);
	free(der);
	ERR_clear_error();
	return ok;
}
