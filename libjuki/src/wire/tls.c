#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "juki/base/config.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/tls.h"
#include "juki/wire/token.h"

/*
 * One SSL_CTX serves both roles: the settings are the same for either end,
 * and SSL_set_accept_state()/SSL_set_connect_state() pick the role per
 * connection.  SSL objects hold their own reference to the SSL_CTX, so
 * dropping ours in juki_tls_free() leaves them working.
 */
struct juki_tls {
	SSL_CTX *ctx;
	struct juki_ident self;
	int on_token; /* the key is on a PKCS#11 token */
};

/*
 * The verify callback marks a leaf without a usable urn:juki SAN with this
 * verify error; it lands in SSL_get_verify_result() of the connection, so the
 * reason survives without any process-wide ex_data index.
 */
#define VERIFY_ERR_NO_IDENTITY X509_V_ERR_APPLICATION_VERIFICATION

/*
 * The identity a certificate names: exactly one SAN URI, and that URI a
 * valid urn:juki identity.  A second URI would let one certificate speak
 * for two nodes, so it is refused rather than picking one.
 */
static int
cert_ident(X509 *cert, struct juki_ident *out)
{
	GENERAL_NAMES *names;
	const ASN1_IA5STRING *uri = NULL;
	const unsigned char *data;
	char buf[JUKI_URN_MAX];
	int crit = 0;
	int nuri = 0;
	int len;
	int rc = JUKI_ECERT;

	memset(out, 0, sizeof(*out));
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (names == NULL) {
		/* crit tells missing from duplicated extensions; both mean no identity */
		ERR_clear_error();
		return JUKI_ECERT;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type == GEN_URI) {
			uri = gn->d.uniformResourceIdentifier;
			nuri++;
		}
	}
	if (nuri != 1) {
		goto out;
	}
	len = ASN1_STRING_length(uri);
	data = ASN1_STRING_get0_data(uri);

	if (len <= 0 || (size_t)len >= sizeof(buf) || memchr(data, '\0', (size_t)len) != NULL) {
		goto out;
	}
	memcpy(buf, data, (size_t)len);
	buf[len] = '\0';
	if (juki_ident_parse(buf, out) != 0 || strcmp(out->urn, buf) != 0) {
		memset(out, 0, sizeof(*out));
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(names);
	return rc;
}

int
juki_tls_cert_ident(X509 *cert, struct juki_ident *out)
{
	return cert_ident(cert, out);
}

static int
verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
	struct juki_ident ident;
	X509 *cert;

	if (!preverify_ok || X509_STORE_CTX_get_error_depth(store) != 0) {
		return preverify_ok;
	}
	cert = X509_STORE_CTX_get_current_cert(store);
	if (cert == NULL || cert_ident(cert, &ident) != 0) {
		X509_STORE_CTX_set_error(store, VERIFY_ERR_NO_IDENTITY);
		return 0;
	}
	return 1;
}

static int
check_key_stat(const char *what, const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		juki_seterr(err, errlen, "%s %s is not a regular file", what, path);
		return JUKI_EKEYPERM;
	}
	if (st->st_uid != geteuid()) {
		juki_seterr(err, errlen,
			    "%s %s is owned by uid %u, not by the running user (uid %u)", what,
			    path, (unsigned)st->st_uid, (unsigned)geteuid());
		return JUKI_EKEYPERM;
	}
	if ((st->st_mode & 077) != 0) {
		juki_seterr(err, errlen,
			    "%s %s has mode %04o; it must not be accessible by group or others "
			    "(use 0600 or 0400)",
			    what, path, (unsigned)(st->st_mode & 07777));
		return JUKI_EKEYPERM;
	}
	return 0;
}

/* The rule checked on the opened file itself (juki_open_regular()). */
int
juki_tls_open_private(const char *what, const char *path, int *fdp, char *err, size_t errlen)
{
	struct stat st;
	int fd = juki_open_regular(path, &st);
	int rc;

	*fdp = -1;
	if (fd < 0 && fd != JUKI_EINVAL) {
		juki_seterr(err, errlen, "%s %s: %s", what, path, strerror(-fd));
		return fd;
	}
	/* not a regular file (JUKI_EINVAL): refused by the rule, with st filled */
	rc = check_key_stat(what, path, &st, err, errlen);
	if (rc != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return rc;
	}
	*fdp = fd;
	return 0;
}

int
juki_tls_check_key_file(const char *path, char *err, size_t errlen)
{
	int fd;
	int rc;

	if (path == NULL) {
		juki_seterr(err, errlen, "no key file given");
		return JUKI_EINVAL;
	}
	rc = juki_tls_open_private("key file", path, &fd, err, errlen);
	if (rc == 0) {
		close(fd);
	}
	return rc;
}

/* A key file never prompts: a daemon has no terminal to ask on. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	char what[512];
	FILE *fp = NULL;
	int fd;
	int rc;

	*out = NULL;
	rc = juki_tls_open_private("key file", path, &fd, err, errlen);
	if (rc != 0) {
		return rc;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		rc = -errno;
		juki_seterr(err, errlen, "key file %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	*out = PEM_read_PrivateKey_ex(fp, NULL, no_passphrase, NULL, NULL, NULL);
	fclose(fp);
	if (*out == NULL) {
		snprintf(what, sizeof(what), "key file %s: no usable private key", path);
		return juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
	}
	return 0;
}

static FILE *
open_pem(const char *path, const char *what, int *rc, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		*rc = -errno;
		juki_seterr(err, errlen, "%s %s: %s", what, path, strerror(errno));
	}
	return fp;
}

/* Every certificate in a PEM file, in order; JUKI_ECERT when there is none. */
static int
load_certs(const char *path, const char *what, STACK_OF(X509) * *out, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = NULL;
	char msg[512];
	unsigned long e;
	FILE *fp;
	X509 *x;
	int rc = 0;

	*out = NULL;
	fp = open_pem(path, what, &rc, err, errlen);
	if (fp == NULL) {
		return rc;
	}
	certs = sk_X509_new_null();
	if (certs == NULL) {
		rc = JUKI_ENOMEM;
		juki_seterr(err, errlen, "%s %s: out of memory", what, path);
		goto out;
	}
	while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			rc = JUKI_ENOMEM;
			juki_seterr(err, errlen, "%s %s: out of memory", what, path);
			goto out;
		}
	}
	/* The loop ends on "no start line" at end of file; anything else is damage. */
	e = ERR_peek_last_error();

	if (sk_X509_num(certs) == 0 || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		snprintf(msg, sizeof(msg), "%s %s: no valid PEM certificate", what, path);
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
		goto out;
	}
	ERR_clear_error();
	*out = certs;
	certs = NULL;
out:
	sk_X509_pop_free(certs, X509_free);
	fclose(fp);
	return rc;
}

static int
load_crls(const char *path, X509_STORE *store, char *err, size_t errlen)
{
	char msg[512];
	unsigned long e;
	X509_CRL *crl;
	FILE *fp;
	int n = 0;
	int rc = 0;

	fp = open_pem(path, "CRL file", &rc, err, errlen);
	if (fp == NULL) {
		return rc;
	}
	while ((crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL)) != NULL) {
		int ok = X509_STORE_add_crl(store, crl);

		X509_CRL_free(crl);
		if (!ok) {
			snprintf(msg, sizeof(msg), "CRL file %s", path);
			rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
			goto out;
		}
		n++;
	}
	e = ERR_peek_last_error();
	if (n == 0 || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		snprintf(msg, sizeof(msg), "CRL file %s: no valid PEM CRL", path);
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
		goto out;
	}
	ERR_clear_error();
out:
	fclose(fp);
	return rc;
}

static int
build_store(const struct juki_tls_conf *conf, X509_STORE **out, char *err, size_t errlen)
{
	STACK_OF(X509) *cas = NULL;
	X509_STORE *store = NULL;
	char msg[512];
	int rc;

	*out = NULL;
	rc = load_certs(conf->ca, "CA file", &cas, err, errlen);
	if (rc != 0) {
		return rc;
	}
	store = X509_STORE_new();
	if (store == NULL) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "X509_STORE_new");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(cas); i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
			snprintf(msg, sizeof(msg), "CA file %s", conf->ca);
			rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
			goto out;
		}
	}
	if (conf->crl != NULL) {
		rc = load_crls(conf->crl, store, err, errlen);
		if (rc != 0) {
			goto out;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	*out = store;
	store = NULL;
out:
	X509_STORE_free(store);
	sk_X509_pop_free(cas, X509_free);
	return rc;
}

static int
build_ctx(const struct juki_tls_conf *conf, X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
	  X509_STORE *store, SSL_CTX **out, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "juki";
	SSL_CTX *ctx;
	int rc = JUKI_ETLS;

	*out = NULL;
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "SSL_CTX_new");
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ETLS, "cannot restrict to TLS 1.3");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_set1_chain(ctx, chain) != 1) {
		char msg[512];

		snprintf(msg, sizeof(msg), "certificate %s", conf->cert);
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		char msg[1024];

		if (conf->key != NULL) {
			snprintf(msg, sizeof(msg), "key %s does not match certificate %s",
				 conf->key, conf->cert);
		} else {
			snprintf(msg, sizeof(msg), "the key does not match certificate %s",
				 conf->cert);
		}
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, msg);
		goto out;
	}
	SSL_CTX_set1_cert_store(ctx, store);
	if (conf->crl != NULL) {
		/* The SSL_CTX's own parameters are merged in at verify time; set both. */
		X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
					    X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	/*
	 * No resumption: every connection proves both certificates afresh, so a
	 * new CRL takes effect on the next connection.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	SSL_CTX_free(ctx);
	return rc;
}

/*
 * The key on a token: the PIN from its file (the key file's rule), never
 * from the URI, which sits in a configuration file anyone may read.
 */
static int
load_token_key(const struct juki_tls_conf *conf, EVP_PKEY **out, char *err, size_t errlen)
{
	char pin[JUKI_TOKEN_PIN_MAX];
	char why[512];
	int rc;

	*out = NULL;
	if (juki_token_uri_has_pin(conf->key)) {
		juki_seterr(err, errlen,
			    "key: the pkcs11: URI carries a PIN (pin-value, pin-source); the "
			    "token's PIN goes in the PIN file alone");
		return JUKI_EINVAL;
	}
	if (conf->pin_file == NULL) {
		juki_seterr(err, errlen,
			    "key %s is on a token: its PIN file (tls.pin_file) is not given",
			    conf->key);
		return JUKI_EINVAL;
	}
	rc = juki_token_read_pin_file(conf->pin_file, pin, sizeof(pin), err, errlen);
	if (rc != 0) {
		return rc;
	}
	rc = juki_token_key(conf->key, pin, "token", out, why, sizeof(why));
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc != 0) {
		juki_seterr(err, errlen, "key on a token: %s", why);
	}
	return rc;
}

int
juki_tls_new(const struct juki_tls_conf *conf, struct juki_tls **out, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	int token;
	int rc;

	*out = NULL;
	if (conf == NULL || conf->cert == NULL || conf->key == NULL || conf->ca == NULL) {
		juki_seterr(err, errlen, "TLS needs a certificate, a key and a CA file");
		return JUKI_EINVAL;
	}
	token = juki_token_is_uri(conf->key);
	if (!token && conf->pin_file != NULL) {
		juki_seterr(err, errlen,
			    "a PIN file (tls.pin_file) goes with a key on a token (a pkcs11: URI), "
			    "not with key file %s",
			    conf->key);
		return JUKI_EINVAL;
	}
	ERR_clear_error();
	/* The key first: a key anyone can read refuses to start, whatever else is wrong. */
	if (token) {
		rc = load_token_key(conf, &key, err, errlen);
	} else {
		rc = load_key(conf->key, &key, err, errlen);
	}
	if (rc == 0) {
		rc = juki_tls_new_key(conf, key, out, err, errlen);
	}
	if (rc == 0) {
		(*out)->on_token = token;
		/*
		 * Matching the certificate compared public halves: a token that
		 * lost its key, or a session that is no longer logged in, shows
		 * only when it signs.
		 */
		if (token && juki_tls_key_check(*out) != 0) {
			juki_seterr(err, errlen, "key %s: the token does not sign with it",
				    conf->key);
			juki_tls_free(*out);
			*out = NULL;
			rc = JUKI_ENOENT;
		}
	}
	EVP_PKEY_free(key);
	return rc;
}

int
juki_tls_on_token(const struct juki_tls *tls)
{
	return tls != NULL && tls->on_token;
}

int
juki_tls_key_check(struct juki_tls *tls)
{
	static const char probe[] = "juki key check";
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc = juki_tls_sign(tls, probe, sizeof(probe) - 1, &sig, &siglen);

	free(sig);
	return rc == 0 ? 0 : JUKI_ETLS;
}

int
juki_tls_new_key(const struct juki_tls_conf *conf, EVP_PKEY *key, struct juki_tls **out, char *err,
		 size_t errlen)
{
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509) *chain = NULL;
	X509_STORE *store = NULL;
	struct juki_tls *tls = NULL;
	X509 *cert;
	int rc;

	*out = NULL;
	if (conf == NULL || conf->cert == NULL || key == NULL || conf->ca == NULL) {
		juki_seterr(err, errlen, "TLS needs a certificate, a key and a CA file");
		return JUKI_EINVAL;
	}
	ERR_clear_error();
	rc = load_certs(conf->cert, "certificate file", &certs, err, errlen);
	if (rc != 0) {
		goto out;
	}
	rc = build_store(conf, &store, err, errlen);
	if (rc != 0) {
		goto out;
	}
	tls = calloc(1, sizeof(*tls));
	if (tls == NULL) {
		rc = JUKI_ENOMEM;
		juki_seterr(err, errlen, "out of memory");
		goto out;
	}
	cert = sk_X509_value(certs, 0);
	if (cert_ident(cert, &tls->self) != 0) {
		rc = JUKI_ECERT;
		juki_seterr(
		    err, errlen,
		    "certificate %s names no urn:juki identity (it needs exactly one SAN URI "
		    "urn:juki:...)",
		    conf->cert);
		goto out;
	}
	chain = sk_X509_new_null();
	if (chain == NULL) {
		rc = JUKI_ENOMEM;
		juki_seterr(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 1; i < sk_X509_num(certs); i++) {
		if (!sk_X509_push(chain, sk_X509_value(certs, i))) {
			rc = JUKI_ENOMEM;
			juki_seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	rc = build_ctx(conf, cert, chain, key, store, &tls->ctx, err, errlen);
	if (rc != 0) {
		goto out;
	}
	*out = tls;
	tls = NULL;
out:
	juki_tls_free(tls);
	/* chain borrows the certificates that certs owns */
	sk_X509_free(chain);
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

void
juki_tls_free(struct juki_tls *tls)
{
	if (tls == NULL) {
		return;
	}
	SSL_CTX_free(tls->ctx);
	free(tls);
}

const struct juki_ident *
juki_tls_self(const struct juki_tls *tls)
{
	return &tls->self;
}

SSL *
juki_tls_ssl_new(struct juki_tls *tls, enum juki_tls_role role)
{
	SSL *ssl;

	if (tls == NULL) {
		return NULL;
	}
	ssl = SSL_new(tls->ctx);
	if (ssl == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (role == JUKI_TLS_SERVER) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
	}
	return ssl;
}

int
juki_tls_peer_ident(SSL *ssl, struct juki_ident *out)
{
	X509 *cert;

	memset(out, 0, sizeof(*out));
	if (ssl == NULL || !SSL_is_init_finished(ssl) || SSL_get_verify_result(ssl) != X509_V_OK) {
		return JUKI_ECERT;
	}
	cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL) {
		return JUKI_ECERT;
	}
	return cert_ident(cert, out);
}

static enum juki_tls_failure
failure_of_verify(long v)
{
	switch (v) {
	case X509_V_ERR_CERT_REVOKED:
		return JUKI_TLSF_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return JUKI_TLSF_UNKNOWN_CA;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return JUKI_TLSF_EXPIRED;
	case VERIFY_ERR_NO_IDENTITY:
		return JUKI_TLSF_NO_IDENTITY;
	default:
		return JUKI_TLSF_PROTOCOL;
	}
}

static enum juki_tls_failure
failure_of_reason(int reason)
{
	switch (reason) {
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
	case SSL_R_RECORD_TOO_SMALL:
	case SSL_R_BAD_RECORD_TYPE:
	case SSL_R_UNKNOWN_PROTOCOL:
		return JUKI_TLSF_NOT_TLS;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return JUKI_TLSF_VERSION;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return JUKI_TLSF_NO_CERT;
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		return JUKI_TLSF_UNKNOWN_CA;
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		return JUKI_TLSF_REVOKED;
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		return JUKI_TLSF_EXPIRED;
	default:
		return JUKI_TLSF_PROTOCOL;
	}
}

int
juki_tls_peer_still_valid(const struct juki_tls *tls, SSL *ssl, enum juki_tls_failure *failure,
			  char *why, size_t whylen)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	int rc = JUKI_ECERT;

	*failure = JUKI_TLSF_NO_CERT;
	juki_seterr(why, whylen, "no certificate");
	/* The server's peer chain leaves the leaf out: the leaf is passed apart. */
	if (leaf != NULL && vctx != NULL &&
	    X509_STORE_CTX_init(vctx, SSL_CTX_get_cert_store(tls->ctx), leaf,
				SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_default(vctx, SSL_is_server(ssl) ? "ssl_client" : "ssl_server") ==
		1) {
		if (X509_verify_cert(vctx) == 1) {
			*failure = JUKI_TLSF_NONE;
			rc = 0;
		} else {
			*failure = failure_of_verify(X509_STORE_CTX_get_error(vctx));
			juki_seterr(why, whylen, "%s",
				    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		}
	}
	X509_STORE_CTX_free(vctx);
	return rc;
}

/*
 * Whether the key of ssl's context still signs: a key on a token that was
 * removed, locked or logged out fails here.  Asked only when the handshake
 * failed in a crypto library call (our signature in CertificateVerify fails
 * so), and only of a key of the PKCS#11 engine, the one kind without a
 * provider (a key read from a file has OpenSSL's default provider and cannot
 * go away): at most one signature on the token per failed handshake.
 */
static const EVP_MD *sign_digest(const EVP_PKEY *key);

static int
own_key_fails(SSL *ssl)
{
	static const char probe[] = "juki key check";
	EVP_PKEY *key;
	EVP_MD_CTX *md;
	unsigned char sig[EVP_MAX_MD_SIZE * 8];
	size_t n = sizeof(sig);
	int ok;

	if (ssl == NULL || (key = SSL_get_privatekey(ssl)) == NULL ||
	    EVP_PKEY_get0_provider(key) != NULL || EVP_PKEY_get_size(key) > (int)sizeof(sig) ||
	    (md = EVP_MD_CTX_new()) == NULL) {
		return 0;
	}
	ok = EVP_DigestSignInit(md, NULL, sign_digest(key), NULL, key) == 1 &&
	     EVP_DigestSign(md, sig, &n, (const unsigned char *)probe, sizeof(probe) - 1) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return !ok;
}

enum juki_tls_failure
juki_tls_failure_of(SSL *ssl, unsigned long errcode)
{
	enum juki_tls_failure by_reason = JUKI_TLSF_PROTOCOL;
	long v = X509_V_OK;

	if (errcode != 0 && !ERR_SYSTEM_ERROR(errcode) &&
	    (ERR_GET_LIB(errcode) != ERR_LIB_SSL || ERR_GET_REASON(errcode) == ERR_R_EVP_LIB) &&
	    own_key_fails(ssl)) {
		return JUKI_TLSF_KEY;
	}
	if (errcode != 0 && !ERR_SYSTEM_ERROR(errcode) && ERR_GET_LIB(errcode) == ERR_LIB_SSL) {
		by_reason = failure_of_reason(ERR_GET_REASON(errcode));
	}
	/*
	 * A reason that names the failure wins: an alert from the peer, plain
	 * text, a version, a missing certificate.  Our own verification failing
	 * shows up as the generic "certificate verify failed", and the verify
	 * result then says why.  (A peer that does not insist on verification
	 * keeps a bad verify result on a handshake that failed for another
	 * reason, so the result alone would mislead.)
	 */
	if (by_reason != JUKI_TLSF_PROTOCOL) {
		return by_reason;
	}
	if (ssl != NULL) {
		v = SSL_get_verify_result(ssl);
	}
	if (v != X509_V_OK) {
		return failure_of_verify(v);
	}
	if (errcode == 0 && ssl != NULL && SSL_is_init_finished(ssl)) {
		return JUKI_TLSF_NONE;
	}
	return JUKI_TLSF_PROTOCOL;
}

const char *
juki_tls_failure_name(enum juki_tls_failure failure)
{
	switch (failure) {
	case JUKI_TLSF_NONE:
		return "none";
	case JUKI_TLSF_NOT_TLS:
		return "not-tls";
	case JUKI_TLSF_VERSION:
		return "version";
	case JUKI_TLSF_NO_CERT:
		return "no-certificate";
	case JUKI_TLSF_UNKNOWN_CA:
		return "unknown-ca";
	case JUKI_TLSF_REVOKED:
		return "revoked";
	case JUKI_TLSF_EXPIRED:
		return "expired";
	case JUKI_TLSF_NO_IDENTITY:
		return "no-identity";
	case JUKI_TLSF_WRONG_PEER:
		return "wrong-peer";
	case JUKI_TLSF_PROTOCOL:
		return "protocol";
	case JUKI_TLSF_TIMEOUT:
		return "timeout";
	case JUKI_TLSF_KEY:
		return "key-unavailable";
	}
	return "protocol";
}

/*
 * The digest for a key: SHA-256, except for the EdDSA keys, which hash
 * internally and take none.  Node keys are P-256; the others cost nothing.
 */
static const EVP_MD *
sign_digest(const EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
		return NULL;
	}
	return EVP_sha256();
}

int
juki_tls_sign(struct juki_tls *tls, const void *data, size_t len, unsigned char **sig,
	      size_t *siglen)
{
	EVP_MD_CTX *md = NULL;
	unsigned char *buf = NULL;
	EVP_PKEY *key;
	size_t n = 0;
	int rc = JUKI_ETLS;

	if (sig != NULL) {
		*sig = NULL;
	}
	if (siglen != NULL) {
		*siglen = 0;
	}
	if (tls == NULL || (data == NULL && len > 0) || sig == NULL || siglen == NULL) {
		return JUKI_EINVAL;
	}
	/* The SSL_CTX holds the key; juki_tls_new() checked it against the certificate. */
	key = SSL_CTX_get0_privatekey(tls->ctx);
	if (key == NULL) {
		return JUKI_ECERT;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, sign_digest(key), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &n, data, len) != 1) {
		goto out;
	}
	buf = malloc(n);
	if (buf == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	/* n is the maximum length; the DER of an ECDSA signature is often shorter */
	if (EVP_DigestSign(md, buf, &n, data, len) != 1) {
		goto out;
	}
	*sig = buf;
	*siglen = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

int
juki_tls_verify_cert(const char *cert_pem, const void *data, size_t len, const unsigned char *sig,
		     size_t siglen)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	FILE *fp;
	int rc;

	if (cert_pem == NULL || (data == NULL && len > 0) || (sig == NULL && siglen > 0)) {
		return JUKI_EINVAL;
	}
	fp = fopen(cert_pem, "re");
	if (fp == NULL) {
		return -errno;
	}
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (cert == NULL || (key = X509_get_pubkey(cert)) == NULL) {
		rc = JUKI_ECERT;
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, sign_digest(key), NULL, key) != 1) {
		rc = JUKI_ETLS;
		goto out;
	}
	/* 1 is a good signature; 0 a bad one, and a negative value one that is not even DER. */
	rc = siglen > 0 && EVP_DigestVerify(md, sig, siglen, data, len) == 1 ? 0 : JUKI_EAUTH;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

const struct juki_conf_key juki_tls_files_keys[] = {
    JUKI_CONF_SCALAR(struct juki_tls_files, cert, "cert", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED,
		     0, 0, "This node's certificate (PEM), SAN URI naming the node."),
    JUKI_CONF_SCALAR(struct juki_tls_files, key, "key", JUKI_CONF_PATH, NULL,
		     JUKI_CONF_REQUIRED | JUKI_CONF_PKCS11, 0, 0,
		     "Its private key: a PEM file owned by the daemon's user, mode 0600 or 0400; "
		     "or a key on a PKCS#11 token, pkcs11:token=<label>;object=<label> "
		     "(RFC 7512; ?module-path=<module.so>, default SoftHSM2's), its PIN in "
		     "pin_file, never in the URI."),
    JUKI_CONF_SCALAR(struct juki_tls_files, pin_file, "pin_file", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "With a key on a token: the file holding the token's PIN (its first line), "
		     "owned by the daemon's user, mode 0600 or 0400; refused with a key file."),
    JUKI_CONF_SCALAR(struct juki_tls_files, ca, "ca", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED, 0,
		     0, "The network's CA certificate(s) (PEM)."),
    JUKI_CONF_SCALAR(struct juki_tls_files, crl, "crl", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "The CA's revocation list (PEM); reloaded on SIGHUP."),
    JUKI_CONF_END,
};

struct juki_tls_conf
juki_tls_files_conf(const struct juki_tls_files *files)
{
	struct juki_tls_conf c = {
	    .cert = files->cert,
	    .key = files->key,
	    .ca = files->ca,
	    .crl = files->crl,
	    .pin_file = files->pin_file,
	};

	return c;
}

int
juki_seterr_ssl(char *err, size_t errlen, int code, const char *what)
{
	unsigned long e = ERR_peek_error();
	char text[256];

	if (e != 0) {
		ERR_error_string_n(e, text, sizeof(text));
		juki_seterr(err, errlen, "%s: %s", what, text);
	} else {
		juki_seterr(err, errlen, "%s", what);
	}
	ERR_clear_error();
	return code;
}
