#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * Every case gets a temp dir with two PKIs: "pki" (the network's CA, with
 * cs:131016, fwgate:east and pref:13) and "other" (a second CA that also
 * issued a cs:131016).
 */
struct fix {
	char tmp[64];
	char pki[128];
	char other[128];
	char err[512];
};

/* One end of a handshake driven in memory over a socketpair. */
struct end {
	SSL *ssl;
	int done;              /* handshake completed */
	int failed;            /* handshake or post-handshake read failed */
	unsigned long errcode; /* first error-queue code of the failure */
};

static int
setup(void **state)
{
	static const char *const urns[] = {"urn:juki:cs:131016", "urn:juki:fwgate:east",
					   "urn:juki:pref:13"};
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "tls") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->other, sizeof(f->other), "%s/other", f->tmp);
	*state = f;
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_init_ca(f->other, "someone else's CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->other, urns[0], 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		if (juki_pki_issue(f->pki, urns[i], 30, NULL, f->err, sizeof(f->err)) != 0) {
			return -1;
		}
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

/* Paths of one identity's files, and the CA and CRL of its PKI. */
struct files {
	char cert[256];
	char key[256];
	char ca[256];
	char crl[256];
	struct juki_tls_conf conf;
};

static void
files_of(struct files *fl, const char *pki, const char *name, int with_crl)
{
	snprintf(fl->cert, sizeof(fl->cert), "%s/%s.crt", pki, name);
	snprintf(fl->key, sizeof(fl->key), "%s/%s.key", pki, name);
	snprintf(fl->ca, sizeof(fl->ca), "%s/ca.crt", pki);
	snprintf(fl->crl, sizeof(fl->crl), "%s/crl.pem", pki);
	fl->conf.cert = fl->cert;
	fl->conf.key = fl->key;
	fl->conf.ca = fl->ca;
	fl->conf.crl = with_crl ? fl->crl : NULL;
	fl->conf.pin_file = NULL;
}

static struct juki_tls *
tls_of(struct fix *f, const char *name, int with_crl)
{
	struct juki_tls *tls = NULL;
	struct files fl;

	files_of(&fl, f->pki, name, with_crl);
	if (juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)) != 0) {
		fail_msg("juki_tls_new %s: %s", name, f->err);
	}
	return tls;
}

static void
socket_pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(fds[i], F_GETFL);

		assert_int_equal(fcntl(fds[i], F_SETFL, fl | O_NONBLOCK), 0);
	}
}

/* Advance one end by one step; returns 1 when something changed. */
static int
step(struct end *e)
{
	unsigned char buf[64];
	int r;

	if (e->ssl == NULL || e->failed) {
		return 0;
	}
	/*
	 * After the handshake, read: in TLS 1.3 a client finishes before the
	 * server has judged its certificate, and hears of a refusal only as an
	 * alert on its next read.
	 */
	r = e->done ? SSL_read(e->ssl, buf, sizeof(buf)) : SSL_do_handshake(e->ssl);
	if (r > 0) {
		if (!e->done) {
			e->done = 1;
			return 1;
		}
		return 1;
	}
	switch (SSL_get_error(e->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		return 0;
	default:
		e->errcode = ERR_peek_error();
		e->failed = 1;
		ERR_clear_error();
		return 1;
	}
}

/* Drive both ends until neither moves for a few rounds. */
static void
run(struct end *a, struct end *b)
{
	int idle = 0;

	for (int i = 0; i < 1000 && idle < 4; i++) {
		int moved = step(a);

		moved |= step(b);
		idle = moved ? 0 : idle + 1;
	}
}

struct pair {
	int fds[2];
	struct end client;
	struct end server;
};

/* A handshake between a client SSL and a server SSL; either may be NULL for raw bytes. */
static void
handshake(struct pair *p, SSL *client, SSL *server)
{
	memset(p, 0, sizeof(*p));
	socket_pair(p->fds);
	p->client.ssl = client;
	p->server.ssl = server;
	if (client != NULL) {
		SSL_set_connect_state(client);
		assert_int_equal(SSL_set_fd(client, p->fds[0]), 1);
	}
	if (server != NULL) {
		SSL_set_accept_state(server);
		assert_int_equal(SSL_set_fd(server, p->fds[1]), 1);
	}
	run(&p->client, &p->server);
}

static void
pair_free(struct pair *p)
{
	SSL_free(p->client.ssl);
	SSL_free(p->server.ssl);
	close(p->fds[0]);
	close(p->fds[1]);
}

static enum juki_tls_failure
failure(struct end *e)
{
	return juki_tls_failure_of(e->ssl, e->errcode);
}

static void
assert_failure(struct end *e, enum juki_tls_failure want)
{
	enum juki_tls_failure got = failure(e);
	char text[256] = "";

	if (e->errcode != 0) {
		ERR_error_string_n(e->errcode, text, sizeof(text));
	}
	if (!e->failed || got != want) {
		fail_msg("want %s, got failed=%d %s (verify %ld, error %s)",
			 juki_tls_failure_name(want), e->failed, juki_tls_failure_name(got),
			 SSL_get_verify_result(e->ssl), text);
	}
}

static void
assert_peer(SSL *ssl, const char *urn)
{
	struct juki_ident id;

	assert_int_equal(juki_tls_peer_ident(ssl, &id), 0);
	assert_string_equal(id.urn, urn);
}

/* Both ends through juki_tls: client in role client, server in role server. */
static void
juki_handshake(struct pair *p, struct juki_tls *client, struct juki_tls *server)
{
	SSL *c = juki_tls_ssl_new(client, JUKI_TLS_CLIENT);
	SSL *s = juki_tls_ssl_new(server, JUKI_TLS_SERVER);

	assert_non_null(c);
	assert_non_null(s);
	handshake(p, c, s);
}

/* A peer that is not juki: a bare SSL_CTX with the given versions, cert and trust. */
static SSL_CTX *
plain_ctx(const SSL_METHOD *method, int minv, int maxv, const char *cert, const char *key,
	  const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, minv), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, maxv), 1);
	if (cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	}
	if (ca != NULL) {
		assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

/*
 * A certificate signed by the network's CA but made here, to have what
 * juki_pki_issue() never makes: a SAN other than one urn:juki URI (san NULL:
 * no SAN at all), or a validity in the past.  Written to <tmp>/<name>.crt/.key.
 */
static void
make_cert(struct fix *f, const char *name, const char *san, long from, long to)
{
	char path[256];
	EVP_PKEY *cakey, *key;
	X509 *ca, *cert;
	X509V3_CTX v3;
	FILE *fp;
	time_t now = time(NULL);

	snprintf(path, sizeof(path), "%s/ca.key", f->pki);
	fp = fopen(path, "r");
	assert_non_null(fp);
	cakey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/ca.crt", f->pki);
	fp = fopen(path, "r");
	assert_non_null(fp);
	ca = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cakey);
	assert_non_null(ca);

	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cert = X509_new();
	assert_non_null(key);
	assert_non_null(cert);
	assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)now), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(cert), now + from));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(cert), now + to));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN",
						    MBSTRING_UTF8, (const unsigned char *)name, -1,
						    -1, 0),
			 1);
	assert_int_equal(X509_set_issuer_name(cert, X509_get_subject_name(ca)), 1);
	assert_int_equal(X509_set_pubkey(cert, key), 1);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, ca, cert, NULL, NULL, 0);
	if (san != NULL) {
		X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name, san);

		assert_non_null(ext);
		assert_int_equal(X509_add_ext(cert, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	X509_EXTENSION *eku =
	    X509V3_EXT_nconf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
	assert_non_null(eku);
	assert_int_equal(X509_add_ext(cert, eku, -1), 1);
	X509_EXTENSION_free(eku);
	assert_true(X509_sign(cert, cakey, EVP_sha256()) > 0);

	snprintf(path, sizeof(path), "%s/%s.crt", f->tmp, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/%s.key", f->tmp, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);

	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
}

static void
test_handshake_ok(void **state)
{
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 1);
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct pair p;

	assert_string_equal(juki_tls_self(cs)->urn, "urn:juki:cs:131016");
	assert_int_equal(juki_tls_self(cs)->kind, JUKI_KIND_CS);
	assert_string_equal(juki_tls_self(gw)->urn, "urn:juki:fwgate:east");
	juki_handshake(&p, cs, gw);
	assert_true(p.client.done);
	assert_true(p.server.done);
	assert_false(p.client.failed);
	assert_false(p.server.failed);
	assert_int_equal(SSL_version(p.client.ssl), TLS1_3_VERSION);
	assert_peer(p.server.ssl, "urn:juki:cs:131016");
	assert_peer(p.client.ssl, "urn:juki:fwgate:east");
	assert_int_equal(juki_tls_failure_of(p.client.ssl, 0), JUKI_TLSF_NONE);
	assert_int_equal(juki_tls_failure_of(p.server.ssl, 0), JUKI_TLSF_NONE);
	/* data flows both ways */
	assert_int_equal(SSL_write(p.client.ssl, "ping", 4), 4);
	char buf[8] = {0};
	assert_int_equal(SSL_read(p.server.ssl, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	pair_free(&p);

	/* the other way round: the gateway calls the node */
	juki_handshake(&p, gw, cs);
	assert_true(p.client.done && p.server.done);
	assert_peer(p.server.ssl, "urn:juki:fwgate:east");
	assert_peer(p.client.ssl, "urn:juki:cs:131016");
	pair_free(&p);
	juki_tls_free(cs);
	juki_tls_free(gw);
}

static void
test_free_keeps_ssl(void **state)
{
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 0);
	struct juki_tls *pref = tls_of(f, "pref-13", 0);
	SSL *c = juki_tls_ssl_new(cs, JUKI_TLS_CLIENT);
	SSL *s = juki_tls_ssl_new(pref, JUKI_TLS_SERVER);
	struct pair p;

	/* a reload drops the old juki_tls while its connections go on */
	juki_tls_free(cs);
	juki_tls_free(pref);
	juki_tls_free(NULL);
	handshake(&p, c, s);
	assert_true(p.client.done && p.server.done);
	assert_peer(p.server.ssl, "urn:juki:cs:131016");
	assert_peer(p.client.ssl, "urn:juki:pref:13");
	pair_free(&p);
}

static void
test_unknown_ca(void **state)
{
	struct fix *f = *state;
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct juki_tls *stranger = NULL;
	struct files fl;
	struct pair p;

	/* a cs:131016 from another CA, which itself trusts our CA */
	files_of(&fl, f->other, "cs-131016", 0);
	snprintf(fl.ca, sizeof(fl.ca), "%s/ca.crt", f->pki);
	assert_int_equal(juki_tls_new(&fl.conf, &stranger, f->err, sizeof(f->err)), 0);

	juki_handshake(&p, stranger, gw);
	assert_false(p.server.done);
	assert_failure(&p.server, JUKI_TLSF_UNKNOWN_CA);
	assert_int_equal(SSL_get_verify_result(p.server.ssl),
			 X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	/* the refused side hears why */
	assert_failure(&p.client, JUKI_TLSF_UNKNOWN_CA);
	pair_free(&p);

	/* and as a server, it is refused by our client */
	juki_handshake(&p, gw, stranger);
	assert_false(p.client.done);
	assert_failure(&p.client, JUKI_TLSF_UNKNOWN_CA);
	assert_failure(&p.server, JUKI_TLSF_UNKNOWN_CA);
	pair_free(&p);
	juki_tls_free(gw);
	juki_tls_free(stranger);
}

static void
test_revoked(void **state)
{
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 1);
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct juki_tls *gw2;
	struct juki_tls *cs2;
	struct pair p;
	enum juki_tls_failure failure;
	char why[160];

	juki_handshake(&p, cs, gw);
	assert_true(p.server.done && !p.server.failed);
	/* the peer verifies again, against the same CA and CRL */
	assert_int_equal(juki_tls_peer_still_valid(gw, p.server.ssl, &failure, why, sizeof(why)),
			 0);
	assert_int_equal(failure, JUKI_TLSF_NONE);
	pair_free(&p);

	assert_int_equal(juki_pki_revoke(f->pki, "cs-131016", f->err, sizeof(f->err)), 0);
	/* the old context holds the old CRL until it is reloaded */
	juki_handshake(&p, cs, gw);
	assert_true(p.server.done && !p.server.failed);
	gw2 = tls_of(f, "fwgate-east", 1);
	/* the connection made before the reload is found revoked by the new context */
	assert_int_equal(juki_tls_peer_still_valid(gw, p.server.ssl, &failure, why, sizeof(why)),
			 0);
	assert_int_equal(juki_tls_peer_still_valid(gw2, p.server.ssl, &failure, why, sizeof(why)),
			 JUKI_ECERT);
	assert_int_equal(failure, JUKI_TLSF_REVOKED);
	assert_non_null(strstr(why, "revoked"));
	pair_free(&p);

	juki_handshake(&p, cs, gw2);
	assert_false(p.server.done);
	assert_failure(&p.server, JUKI_TLSF_REVOKED);
	assert_int_equal(SSL_get_verify_result(p.server.ssl), X509_V_ERR_CERT_REVOKED);
	assert_failure(&p.client, JUKI_TLSF_REVOKED);
	pair_free(&p);

	/* a revoked server is refused by a client that loaded the new CRL */
	assert_int_equal(juki_pki_revoke(f->pki, "urn:juki:fwgate:east", f->err, sizeof(f->err)),
			 0);
	cs2 = tls_of(f, "pref-13", 1);
	juki_handshake(&p, cs2, gw);
	assert_false(p.client.done);
	assert_failure(&p.client, JUKI_TLSF_REVOKED);
	pair_free(&p);

	/* without a CRL nothing is known to be revoked */
	juki_tls_free(gw2);
	gw2 = tls_of(f, "fwgate-east", 0);
	juki_handshake(&p, cs, gw2);
	assert_true(p.server.done && !p.server.failed);
	pair_free(&p);

	juki_tls_free(cs);
	juki_tls_free(cs2);
	juki_tls_free(gw);
	juki_tls_free(gw2);
}

static void
test_expired(void **state)
{
	struct fix *f = *state;
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	char cert[256], key[256];
	SSL_CTX *ctx;
	struct pair p;

	make_cert(f, "old", "URI:urn:juki:cs:131016", -10L * 86400, -86400);
	snprintf(cert, sizeof(cert), "%s/old.crt", f->tmp);
	snprintf(key, sizeof(key), "%s/old.key", f->tmp);
	ctx = plain_ctx(TLS_client_method(), TLS1_3_VERSION, TLS1_3_VERSION, cert, key, NULL);
	handshake(&p, SSL_new(ctx), juki_tls_ssl_new(gw, JUKI_TLS_SERVER));
	assert_failure(&p.server, JUKI_TLSF_EXPIRED);
	assert_failure(&p.client, JUKI_TLSF_EXPIRED);
	pair_free(&p);

	make_cert(f, "early", "URI:urn:juki:cs:131016", 86400, 10L * 86400);
	snprintf(cert, sizeof(cert), "%s/early.crt", f->tmp);
	snprintf(key, sizeof(key), "%s/early.key", f->tmp);
	SSL_CTX_free(ctx);
	ctx = plain_ctx(TLS_client_method(), TLS1_3_VERSION, TLS1_3_VERSION, cert, key, NULL);
	handshake(&p, SSL_new(ctx), juki_tls_ssl_new(gw, JUKI_TLS_SERVER));
	assert_failure(&p.server, JUKI_TLSF_EXPIRED);
	pair_free(&p);
	SSL_CTX_free(ctx);
	juki_tls_free(gw);
}

static void
test_no_cert(void **state)
{
	struct fix *f = *state;
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	SSL_CTX *ctx =
	    plain_ctx(TLS_client_method(), TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL, NULL);
	struct pair p;

	handshake(&p, SSL_new(ctx), juki_tls_ssl_new(gw, JUKI_TLS_SERVER));
	assert_false(p.server.done);
	assert_failure(&p.server, JUKI_TLSF_NO_CERT);
	/* the client finished its half, then heard "certificate required" */
	assert_failure(&p.client, JUKI_TLSF_NO_CERT);
	pair_free(&p);
	SSL_CTX_free(ctx);
	juki_tls_free(gw);
}

static void
test_version(void **state)
{
	struct fix *f = *state;
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct juki_tls *cs = tls_of(f, "cs-131016", 1);
	struct files fl;
	SSL_CTX *ctx;
	struct pair p;

	/* a TLS 1.2 client, even with a good certificate */
	files_of(&fl, f->pki, "cs-131016", 0);
	ctx = plain_ctx(TLS_client_method(), TLS1_VERSION, TLS1_2_VERSION, fl.cert, fl.key, NULL);
	handshake(&p, SSL_new(ctx), juki_tls_ssl_new(gw, JUKI_TLS_SERVER));
	assert_false(p.server.done);
	assert_failure(&p.server, JUKI_TLSF_VERSION);
	assert_failure(&p.client, JUKI_TLSF_VERSION);
	pair_free(&p);
	SSL_CTX_free(ctx);

	/* a TLS 1.2 server */
	files_of(&fl, f->pki, "fwgate-east", 0);
	ctx = plain_ctx(TLS_server_method(), TLS1_2_VERSION, TLS1_2_VERSION, fl.cert, fl.key, NULL);
	handshake(&p, juki_tls_ssl_new(cs, JUKI_TLS_CLIENT), SSL_new(ctx));
	assert_false(p.client.done);
	assert_failure(&p.client, JUKI_TLSF_VERSION);
	assert_failure(&p.server, JUKI_TLSF_VERSION);
	pair_free(&p);
	SSL_CTX_free(ctx);
	juki_tls_free(gw);
	juki_tls_free(cs);
}

static void
raw_to_server(struct fix *f, const char *bytes, size_t len, enum juki_tls_failure want)
{
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct pair p;

	memset(&p, 0, sizeof(p));
	socket_pair(p.fds);
	assert_int_equal(write(p.fds[0], bytes, len), (ssize_t)len);
	p.server.ssl = juki_tls_ssl_new(gw, JUKI_TLS_SERVER);
	assert_int_equal(SSL_set_fd(p.server.ssl, p.fds[1]), 1);
	run(&p.client, &p.server);
	assert_false(p.server.done);
	assert_failure(&p.server, want);
	pair_free(&p);
	juki_tls_free(gw);
}

static void
test_not_tls(void **state)
{
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";
	static const char post[] = "POST /x HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char connect[] = "CONNECT x\n";
	static const char ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
	static const char line[] = "CONNECT urn:juki:cs:271004 muni\n";
	static const char zeros[64] = {0};
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 1);
	struct pair p;

	raw_to_server(f, get, sizeof(get) - 1, JUKI_TLSF_NOT_TLS);
	raw_to_server(f, post, sizeof(post) - 1, JUKI_TLSF_NOT_TLS);
	raw_to_server(f, connect, sizeof(connect) - 1, JUKI_TLSF_NOT_TLS);
	raw_to_server(f, ssh, sizeof(ssh) - 1, JUKI_TLSF_NOT_TLS);
	raw_to_server(f, line, sizeof(line) - 1, JUKI_TLSF_NOT_TLS);
	raw_to_server(f, zeros, sizeof(zeros), JUKI_TLSF_NOT_TLS);

	/* our client meeting a server that answers in plain text */
	memset(&p, 0, sizeof(p));
	socket_pair(p.fds);
	p.client.ssl = juki_tls_ssl_new(cs, JUKI_TLS_CLIENT);
	assert_int_equal(SSL_set_fd(p.client.ssl, p.fds[0]), 1);
	assert_int_equal(write(p.fds[1], "HTTP/1.0 400 Bad Request\r\n\r\n", 28), 28);
	run(&p.client, &p.server);
	assert_failure(&p.client, JUKI_TLSF_NOT_TLS);
	pair_free(&p);

	/* a peer that connects and hangs up says nothing at all */
	memset(&p, 0, sizeof(p));
	socket_pair(p.fds);
	p.server.ssl = juki_tls_ssl_new(cs, JUKI_TLS_SERVER);
	assert_int_equal(SSL_set_fd(p.server.ssl, p.fds[1]), 1);
	assert_int_equal(shutdown(p.fds[0], SHUT_WR), 0);
	run(&p.client, &p.server);
	assert_failure(&p.server, JUKI_TLSF_PROTOCOL);
	pair_free(&p);
	juki_tls_free(cs);
}

static void
test_no_identity(void **state)
{
	static const struct {
		const char *name;
		const char *san;
	} cases[] = {
	    {"nosan", NULL},
	    {"dns", "DNS:cs.example.jp"},
	    {"https", "URI:https://cs.example.jp/"},
	    {"badcheck", "URI:urn:juki:cs:131017"},
	    {"two", "URI:urn:juki:cs:131016,URI:urn:juki:pref:13"},
	    {"upper", "URI:urn:juki:fwgate:East"},
	};
	struct fix *f = *state;
	struct juki_tls *gw = tls_of(f, "fwgate-east", 1);
	struct juki_tls *cs = tls_of(f, "cs-131016", 1);
	char cert[256], key[256];
	struct pair p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct juki_tls *tls = NULL;
		struct juki_tls_conf conf = {0};
		SSL_CTX *ctx;

		make_cert(f, cases[i].name, cases[i].san, -300, 86400);
		snprintf(cert, sizeof(cert), "%s/%s.crt", f->tmp, cases[i].name);
		snprintf(key, sizeof(key), "%s/%s.key", f->tmp, cases[i].name);

		/* as a client, refused by our server */
		ctx =
		    plain_ctx(TLS_client_method(), TLS1_3_VERSION, TLS1_3_VERSION, cert, key, NULL);
		handshake(&p, SSL_new(ctx), juki_tls_ssl_new(gw, JUKI_TLS_SERVER));
		assert_false(p.server.done);
		assert_failure(&p.server, JUKI_TLSF_NO_IDENTITY);
		pair_free(&p);
		SSL_CTX_free(ctx);

		/* as a server, refused by our client */
		ctx =
		    plain_ctx(TLS_server_method(), TLS1_3_VERSION, TLS1_3_VERSION, cert, key, NULL);
		handshake(&p, juki_tls_ssl_new(cs, JUKI_TLS_CLIENT), SSL_new(ctx));
		assert_false(p.client.done);
		assert_failure(&p.client, JUKI_TLSF_NO_IDENTITY);
		pair_free(&p);
		SSL_CTX_free(ctx);

		/* and never accepted as our own certificate */
		conf.cert = cert;
		conf.key = key;
		conf.ca = cert;
		conf.crl = NULL;
		assert_int_equal(juki_tls_new(&conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
		assert_null(tls);
		assert_non_null(strstr(f->err, "identity"));
		assert_non_null(strstr(f->err, cert));
	}
	juki_tls_free(gw);
	juki_tls_free(cs);
}

static void
copy_file(const char *from, const char *to)
{
	char buf[4096];
	FILE *in = fopen(from, "r");
	FILE *out = fopen(to, "w");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		assert_int_equal(fwrite(buf, 1, n, out), n);
	}
	fclose(in);
	fclose(out);
}

static void
test_key_perm(void **state)
{
	static const struct {
		mode_t mode;
		int rc;
	} modes[] = {
	    {0600, 0},
	    {0400, 0},
	    {0640, JUKI_EKEYPERM},
	    {0604, JUKI_EKEYPERM},
	    {0644, JUKI_EKEYPERM},
	    {0660, JUKI_EKEYPERM},
	    {0601, JUKI_EKEYPERM},
	    {0610, JUKI_EKEYPERM},
	};
	struct fix *f = *state;
	struct juki_tls *tls;
	struct files fl;
	char key[256], link[256], dir[256], fifo[256], want[32];

	files_of(&fl, f->pki, "cs-131016", 1);
	snprintf(key, sizeof(key), "%s/k.key", f->tmp);
	copy_file(fl.key, key);
	fl.conf.key = key;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(key, modes[i].mode), 0);
		f->err[0] = '\0';
		assert_int_equal(juki_tls_check_key_file(key, f->err, sizeof(f->err)), modes[i].rc);
		tls = NULL;
		assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), modes[i].rc);
		if (modes[i].rc == 0) {
			assert_non_null(tls);
			juki_tls_free(tls);
			continue;
		}
		assert_null(tls);
		snprintf(want, sizeof(want), "%04o", (unsigned)modes[i].mode);
		assert_non_null(strstr(f->err, key));
		assert_non_null(strstr(f->err, want));
	}

	/* the rule comes first: a bad mode is reported even when the certificate is missing */
	assert_int_equal(chmod(key, 0640), 0);
	fl.conf.cert = "/nonexistent/cert.pem";
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_EKEYPERM);
	fl.conf.cert = fl.cert;

	/* owned by someone else */
	if (geteuid() == 0) {
		assert_int_equal(chmod(key, 0600), 0);
		assert_int_equal(chown(key, 1, 1), 0);
		assert_int_equal(juki_tls_check_key_file(key, f->err, sizeof(f->err)),
				 JUKI_EKEYPERM);
		assert_non_null(strstr(f->err, "uid 1"));
		assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)),
				 JUKI_EKEYPERM);
		assert_int_equal(chown(key, 0, 0), 0);
	}

	/* a symlink to a good key is judged by the key */
	snprintf(link, sizeof(link), "%s/link.key", f->tmp);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(symlink(key, link), 0);
	assert_int_equal(juki_tls_check_key_file(link, f->err, sizeof(f->err)), 0);

	/* not a regular file: refused, and a FIFO does not hang us */
	snprintf(dir, sizeof(dir), "%s/keydir", f->tmp);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(juki_tls_check_key_file(dir, f->err, sizeof(f->err)), JUKI_EKEYPERM);
	assert_non_null(strstr(f->err, "regular"));
	snprintf(fifo, sizeof(fifo), "%s/fifo.key", f->tmp);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(juki_tls_check_key_file(fifo, f->err, sizeof(f->err)), JUKI_EKEYPERM);
	fl.conf.key = fifo;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_EKEYPERM);

	/* missing */
	snprintf(key, sizeof(key), "%s/missing.key", f->tmp);
	assert_int_equal(juki_tls_check_key_file(key, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, key));
	assert_non_null(strstr(f->err, "No such file"));
	assert_int_equal(juki_tls_check_key_file(NULL, f->err, sizeof(f->err)), JUKI_EINVAL);
}

static void
test_bad_files(void **state)
{
	struct fix *f = *state;
	struct juki_tls *tls = NULL;
	struct files fl, other;
	char garbage[256], empty[256], enc[256];
	FILE *fp;

	/* the fwgate key with the cs certificate */
	files_of(&fl, f->pki, "cs-131016", 1);
	files_of(&other, f->pki, "fwgate-east", 1);
	fl.conf.key = other.key;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_null(tls);
	assert_non_null(strstr(f->err, "does not match"));
	assert_non_null(strstr(f->err, fl.cert));
	assert_int_equal(ERR_peek_error(), 0);

	/* missing files name themselves */
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.cert = "/nonexistent/cs.crt";
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, "/nonexistent/cs.crt"));
	assert_non_null(strstr(f->err, "No such file"));
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.ca = "/nonexistent/ca.crt";
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, "CA file /nonexistent/ca.crt"));
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.crl = "/nonexistent/crl.pem";
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ENOENT);
	assert_non_null(strstr(f->err, "CRL file /nonexistent/crl.pem"));
	assert_null(tls);

	/* not PEM, or empty: OpenSSL's reason is in the message */
	snprintf(garbage, sizeof(garbage), "%s/garbage.pem", f->tmp);
	fp = fopen(garbage, "w");
	assert_non_null(fp);
	fputs("this is not a certificate\n", fp);
	fclose(fp);
	snprintf(empty, sizeof(empty), "%s/empty.pem", f->tmp);
	fp = fopen(empty, "w");
	assert_non_null(fp);
	fclose(fp);
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.cert = garbage;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_non_null(strstr(f->err, garbage));
	assert_non_null(strstr(f->err, "no start line"));
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.ca = empty;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_non_null(strstr(f->err, empty));
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.crl = garbage;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_non_null(strstr(f->err, garbage));
	/* a certificate where the CRL should be */
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.crl = fl.ca;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	/* a certificate where the key should be */
	snprintf(enc, sizeof(enc), "%s/cert-as-key.pem", f->tmp);
	copy_file(fl.cert, enc);
	assert_int_equal(chmod(enc, 0600), 0);
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.key = enc;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_non_null(strstr(f->err, enc));
	assert_null(tls);
	assert_int_equal(ERR_peek_error(), 0);

	/* an encrypted key is refused without prompting on a terminal */
	{
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

		assert_non_null(k);
		fp = fopen(enc, "w");
		assert_non_null(fp);
		assert_int_equal(PEM_write_PrivateKey(fp, k, EVP_aes_256_cbc(),
						      (unsigned char *)"secret", 6, NULL, NULL),
				 1);
		fclose(fp);
		EVP_PKEY_free(k);
		assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
		assert_non_null(strstr(f->err, enc));
	}

	/* missing pieces of the configuration */
	files_of(&fl, f->pki, "cs-131016", 1);
	fl.conf.ca = NULL;
	assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_tls_new(NULL, &tls, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_null(tls);

	/* the CA file may carry several CAs: ours after a stranger's */
	{
		char bundle[256], ours[256], theirs[256];
		FILE *out;

		snprintf(bundle, sizeof(bundle), "%s/bundle.pem", f->tmp);
		snprintf(ours, sizeof(ours), "%s/ca.crt", f->pki);
		snprintf(theirs, sizeof(theirs), "%s/ca.crt", f->other);
		copy_file(theirs, bundle);
		out = fopen(bundle, "a");
		assert_non_null(out);
		fp = fopen(ours, "r");
		assert_non_null(fp);
		for (int c; (c = fgetc(fp)) != EOF;) {
			fputc(c, out);
		}
		fclose(fp);
		fclose(out);
		files_of(&fl, f->pki, "cs-131016", 0);
		fl.conf.ca = bundle;
		assert_int_equal(juki_tls_new(&fl.conf, &tls, f->err, sizeof(f->err)), 0);
		struct juki_tls *gw = tls_of(f, "fwgate-east", 0);
		struct pair p;

		juki_handshake(&p, tls, gw);
		assert_true(p.client.done && p.server.done);
		pair_free(&p);
		juki_tls_free(gw);
		juki_tls_free(tls);
	}
}

static void
test_peer_ident_before_handshake(void **state)
{
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 0);
	SSL *ssl = juki_tls_ssl_new(cs, JUKI_TLS_CLIENT);
	struct juki_ident id;

	assert_non_null(ssl);
	assert_int_equal(juki_tls_peer_ident(ssl, &id), JUKI_ECERT);
	assert_int_equal(id.kind, JUKI_KIND_NONE);
	assert_int_equal(juki_tls_peer_ident(NULL, &id), JUKI_ECERT);
	SSL_free(ssl);
	juki_tls_free(cs);
}

static void
test_failure_of_codes(void **state)
{
	static const struct {
		int reason;
		enum juki_tls_failure want;
	} codes[] = {
	    {SSL_R_WRONG_VERSION_NUMBER, JUKI_TLSF_NOT_TLS},
	    {SSL_R_HTTP_REQUEST, JUKI_TLSF_NOT_TLS},
	    {SSL_R_HTTPS_PROXY_REQUEST, JUKI_TLSF_NOT_TLS},
	    {SSL_R_PACKET_LENGTH_TOO_LONG, JUKI_TLSF_NOT_TLS},
	    {SSL_R_RECORD_LENGTH_MISMATCH, JUKI_TLSF_NOT_TLS},
	    {SSL_R_UNSUPPORTED_PROTOCOL, JUKI_TLSF_VERSION},
	    {SSL_R_NO_PROTOCOLS_AVAILABLE, JUKI_TLSF_VERSION},
	    {SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, JUKI_TLSF_VERSION},
	    {SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, JUKI_TLSF_NO_CERT},
	    {SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, JUKI_TLSF_NO_CERT},
	    {SSL_R_TLSV1_ALERT_UNKNOWN_CA, JUKI_TLSF_UNKNOWN_CA},
	    {SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, JUKI_TLSF_UNKNOWN_CA},
	    {SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, JUKI_TLSF_REVOKED},
	    {SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, JUKI_TLSF_EXPIRED},
	    {SSL_R_CERTIFICATE_VERIFY_FAILED, JUKI_TLSF_PROTOCOL},
	    {SSL_R_UNEXPECTED_EOF_WHILE_READING, JUKI_TLSF_PROTOCOL},
	    {SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, JUKI_TLSF_PROTOCOL},
	};
	struct fix *f = *state;
	struct juki_tls *cs = tls_of(f, "cs-131016", 0);
	SSL *ssl = juki_tls_ssl_new(cs, JUKI_TLS_SERVER);

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		unsigned long e = ERR_PACK(ERR_LIB_SSL, 0, codes[i].reason);

		if (juki_tls_failure_of(ssl, e) != codes[i].want) {
			fail_msg("reason %d: want %s, got %s", codes[i].reason,
				 juki_tls_failure_name(codes[i].want),
				 juki_tls_failure_name(juki_tls_failure_of(ssl, e)));
		}
	}
	/* the same reason number from another library means nothing */
	assert_int_equal(juki_tls_failure_of(ssl, ERR_PACK(ERR_LIB_X509, 0, SSL_R_HTTP_REQUEST)),
			 JUKI_TLSF_PROTOCOL);
	/* no error and no finished handshake: something went wrong all the same */
	assert_int_equal(juki_tls_failure_of(ssl, 0), JUKI_TLSF_PROTOCOL);
	assert_int_equal(juki_tls_failure_of(NULL, 0), JUKI_TLSF_PROTOCOL);
	assert_int_equal(juki_tls_failure_of(NULL, ERR_PACK(ERR_LIB_SSL, 0, SSL_R_HTTP_REQUEST)),
			 JUKI_TLSF_NOT_TLS);
	SSL_free(ssl);
	juki_tls_free(cs);
}

static void
test_failure_names(void **state)
{
	static const struct {
		enum juki_tls_failure failure;
		const char *name;
	} names[] = {
	    {JUKI_TLSF_NONE, "none"},
	    {JUKI_TLSF_NOT_TLS, "not-tls"},
	    {JUKI_TLSF_VERSION, "version"},
	    {JUKI_TLSF_NO_CERT, "no-certificate"},
	    {JUKI_TLSF_UNKNOWN_CA, "unknown-ca"},
	    {JUKI_TLSF_REVOKED, "revoked"},
	    {JUKI_TLSF_EXPIRED, "expired"},
	    {JUKI_TLSF_NO_IDENTITY, "no-identity"},
	    {JUKI_TLSF_WRONG_PEER, "wrong-peer"},
	    {JUKI_TLSF_PROTOCOL, "protocol"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(juki_tls_failure_name(names[i].failure), names[i].name);
	}
	assert_string_equal(juki_tls_failure_name((enum juki_tls_failure)99), "protocol");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_keeps_ssl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_cert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_tls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_perm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_ident_before_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_of_codes, setup, teardown),
	    cmocka_unit_test(test_failure_names),
	};

	/* a peer that hangs up must not kill the test with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
