/*
 * juki — TLS contexts and peer identity (OpenSSL 3).
 *
 * One struct juki_tls per node identity: the node's certificate and key, the
 * CA bundle it trusts and the CRL it honours.  It hands out SSL objects for
 * either end of a connection, always TLS 1.3 only, always with the peer's
 * certificate required and verified (chain to our CA, CRL of every
 * certificate in the chain, a SAN URI that parses as a urn:juki identity).
 * Both the outer (node <-> gateway) and the inner (node <-> node, through the
 * tunnel) sessions use these.
 *
 * A private key file must be owned by the running user and readable by
 * nobody else (mode 0600 or 0400): anything more open refuses to start
 * (第4-5(1)).  The key may instead stay on a PKCS#11 token (key: a pkcs11:
 * URI, wire/token.h): its PIN then comes from pin_file, under the same rule,
 * never from the URI; the key is used on the token and never read.
 */
#ifndef JUKI_TLS_H
#define JUKI_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "juki/base/config.h"
#include "juki/base/ident.h"

struct juki_tls_conf {
	const char *cert;     /* PEM: our certificate (and intermediates) */
	const char *key;      /* PEM: our private key, mode 0600/0400; or a pkcs11: URI */
	const char *ca;       /* PEM: the CA certificate(s) we trust */
	const char *crl;      /* PEM: CRL(s) of that CA; NULL for none */
	const char *pin_file; /* the token's PIN when key is a pkcs11: URI; mode 0600/0400 */
};

/*
 * The TLS files of a daemon's configuration (its tls: section): the key
 * table that reads them, and the struct juki_tls_conf view of them.
 */
struct juki_tls_files {
	char *cert, *key, *ca, *crl, *pin_file;
};

extern const struct juki_conf_key juki_tls_files_keys[];

struct juki_tls_conf juki_tls_files_conf(const struct juki_tls_files *files);

enum juki_tls_role {
	JUKI_TLS_SERVER,
	JUKI_TLS_CLIENT,
};

/* Why a handshake failed, for counters, alerts and logs. */
enum juki_tls_failure {
	JUKI_TLSF_NONE = 0,
	JUKI_TLSF_NOT_TLS,     /* the peer did not speak TLS (plain TCP, HTTP...) */
	JUKI_TLSF_VERSION,     /* TLS below 1.3 offered */
	JUKI_TLSF_NO_CERT,     /* the peer presented no certificate */
	JUKI_TLSF_UNKNOWN_CA,  /* certificate not issued by our CA */
	JUKI_TLSF_REVOKED,     /* certificate on the CRL */
	JUKI_TLSF_EXPIRED,     /* not yet valid or expired */
	JUKI_TLSF_NO_IDENTITY, /* no valid urn:juki SAN URI */
	JUKI_TLSF_WRONG_PEER,  /* valid, but not who we expected */
	JUKI_TLSF_PROTOCOL,    /* anything else */
	JUKI_TLSF_TIMEOUT,     /* not done within its time (a slow or silent peer) */
	JUKI_TLSF_KEY,         /* our own key failed to sign: its token is gone or locked */
};

struct juki_tls;

/*
 * juki_tls_new() - load certificate, key, CA and CRL and build the contexts.
 * Checks the key file's mode and owner first (JUKI_EKEYPERM), then that the
 * key matches the certificate and that the certificate names a urn:juki
 * identity (JUKI_ECERT).  A key on a token (conf->key a pkcs11: URI) needs
 * conf->pin_file (checked as a key file is) and a URI without a PIN in it;
 * the token missing, or its key, is JUKI_ENOENT, a wrong PIN JUKI_EAUTH, a
 * locked one JUKI_ELOCKED.  Returns 0 or a negative code with a message in
 * err.
 */
int juki_tls_new(const struct juki_tls_conf *conf, struct juki_tls **out, char *err, size_t errlen);

/*
 * juki_tls_new_key() - as juki_tls_new() with a private key already loaded
 * (an operator's card: a key on a PKCS#11 token, or one decrypted from a
 * passphrase-protected file); conf->key is ignored.  The same checks
 * follow: the key matches the certificate, the certificate names a
 * urn:juki identity (JUKI_ECERT).  The contexts take their own reference
 * to key; the caller still frees its own.
 */
int juki_tls_new_key(const struct juki_tls_conf *conf, EVP_PKEY *key, struct juki_tls **out,
		     char *err, size_t errlen);

/* juki_tls_on_token() - whether our key is on a PKCS#11 token. */
int juki_tls_on_token(const struct juki_tls *tls);

/*
 * juki_tls_key_check() - sign a few bytes with our key: 0 when it works,
 * JUKI_ETLS when it does not (a token that went away or locked).
 */
int juki_tls_key_check(struct juki_tls *tls);

/* juki_tls_free() - drop our reference; SSL objects already made stay valid. */
void juki_tls_free(struct juki_tls *tls);

/* juki_tls_self() - the identity named by our own certificate. */
const struct juki_ident *juki_tls_self(const struct juki_tls *tls);

/*
 * juki_tls_ssl_new() - a new SSL object for one connection in role.
 * Returns NULL on allocation failure.  The caller owns it (SSL_free, or a
 * bufferevent that frees it).
 */
SSL *juki_tls_ssl_new(struct juki_tls *tls, enum juki_tls_role role);

/*
 * juki_tls_peer_ident() - after a completed handshake, the peer's identity
 * from its certificate's SAN URI.  Returns 0 or JUKI_ECERT.
 */
int juki_tls_peer_ident(SSL *ssl, struct juki_ident *out);

/*
 * juki_tls_cert_ident() - the identity a certificate names: its one SAN URI,
 * a canonical urn:juki identity (as a peer's is read).  Returns 0 or
 * JUKI_ECERT.
 */
int juki_tls_cert_ident(X509 *cert, struct juki_ident *out);

/*
 * juki_tls_failure_of() - classify a failed handshake on ssl; errcode is the
 * first OpenSSL error-queue code seen for it (0 if none; e.g. what
 * bufferevent_get_openssl_error() returned).
 */
enum juki_tls_failure juki_tls_failure_of(SSL *ssl, unsigned long errcode);

/* juki_tls_failure_name() - "not-tls", "unknown-ca", "revoked", ... */
const char *juki_tls_failure_name(enum juki_tls_failure failure);

/*
 * juki_tls_peer_still_valid() - verify again, against tls's CA and CRL now,
 * the certificate the peer of ssl presented in its handshake: after a reload
 * a connection of a revoked (or since expired) certificate is not kept.
 * Returns 0, or JUKI_ECERT with *failure (JUKI_TLSF_REVOKED, ...) and the
 * verifier's reason in why.
 */
int juki_tls_peer_still_valid(const struct juki_tls *tls, SSL *ssl, enum juki_tls_failure *failure,
			      char *why, size_t whylen);

/*
 * juki_tls_check_key_file() - the key-file rule alone: regular file, owned by
 * the effective user, no group/other permission bits.  Returns 0,
 * JUKI_EKEYPERM, or -errno; a message in err.
 */
int juki_tls_check_key_file(const char *path, char *err, size_t errlen);

/*
 * juki_tls_open_private() - open path for reading under the key-file rule,
 * checked on the opened file itself (O_NONBLOCK: a FIFO planted there does
 * not hang us).  what names the file in err ("key file", "PIN file").
 * Returns 0 with the descriptor in *fdp, JUKI_EKEYPERM, or -errno.
 */
int juki_tls_open_private(const char *what, const char *path, int *fdp, char *err, size_t errlen);

/*
 * juki_tls_sign() / juki_tls_verify_cert() - ECDSA over SHA-256 with the
 * identity's private key, and its check against a certificate file.
 * juki_tls_sign(): *sig is malloc'd, the caller free()s it; returns 0,
 * JUKI_EINVAL, JUKI_ENOMEM or JUKI_ETLS.  juki_tls_verify_cert() uses the
 * public key of the first certificate in the file, not its validity dates
 * or chain (a checkpoint stays valid after its certificate expires);
 * returns 0 for a good signature, JUKI_EAUTH for a bad one, JUKI_ECERT when
 * the file holds no certificate, -errno when it cannot be read.
 */
int juki_tls_sign(struct juki_tls *tls, const void *data, size_t len, unsigned char **sig,
		  size_t *siglen);
int juki_tls_verify_cert(const char *cert_pem, const void *data, size_t len,
			 const unsigned char *sig, size_t siglen);

/*
 * juki_seterr_ssl() - write "<what>: <first OpenSSL error>" (or just what,
 * when the queue is empty) into err and empty the queue, so the next caller
 * on this thread does not inherit the failure.  Returns code.  It lives here
 * and not beside juki_seterr() in base/error.h because it needs OpenSSL,
 * which the base layer does not use.
 */
int juki_seterr_ssl(char *err, size_t errlen, int code, const char *what);

#endif
