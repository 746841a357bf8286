/*
 * juki — a development PKI for any topology (`juki-ctl pki`).
 *
 * A PKI directory holds:
 *   ca.crt  ca.key            the CA (ECDSA P-256, self-signed)
 *   crl.pem                   the CA's current CRL (always present, maybe empty)
 *   <name>.crt  <name>.key    one pair per identity; <name> from
 *                             juki_ident_filename() ("cs-131016", "fwgate-east")
 *   index.json                every certificate issued: name, urn, serial,
 *                             not_after, revoked (time or null)
 * Keys are written with mode 0600, certificates and the CRL 0644.  Node
 * certificates carry the SAN URI urn:juki:..., serverAuth and clientAuth,
 * and a random 128-bit serial.
 */
#ifndef JUKI_PKI_H
#define JUKI_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * juki_pki_init_ca() - make dir (mode 0700 if new) and a new CA in it named
 * cn, valid for days.  Fails with JUKI_EEXIST if dir already holds ca.key.
 */
int juki_pki_init_ca(const char *dir, const char *cn, int days, char *err, size_t errlen);

/*
 * juki_pki_issue() - issue a certificate for identity urn (validated with
 * juki_ident_parse()) from the CA in dir, valid for days, written as
 * <name>.crt/.key.  JUKI_EEXIST if that name was issued and is not revoked.
 * When name_out is not NULL it receives <name> (at least 64 bytes).
 */
int juki_pki_issue(const char *dir, const char *urn, int days, char *name_out, char *err,
		   size_t errlen);

/*
 * juki_pki_issue_key() - as juki_pki_issue() for a key made elsewhere (on a
 * PKCS#11 token: wire/token.h): the certificate certifies pub, only
 * <name>.crt is written, and a <name>.key left by an earlier certificate of
 * that name is removed.
 */
int juki_pki_issue_key(const char *dir, const char *urn, int days, EVP_PKEY *pub, char *name_out,
		       char *err, size_t errlen);

/*
 * juki_pki_revoke() - revoke the certificate issued as name (or as the urn
 * given instead) and rewrite crl.pem.  JUKI_ENOTFOUND if unknown; revoking
 * twice is not an error.
 */
int juki_pki_revoke(const char *dir, const char *name_or_urn, char *err, size_t errlen);

/* juki_pki_write_crl() - rewrite crl.pem from index.json (nextUpdate: days). */
int juki_pki_write_crl(const char *dir, int days, char *err, size_t errlen);

/*
 * juki_pki_encrypt_key() - replace the unencrypted private key file at path
 * (as issued above; it must pass juki_tls_check_key_file()) by the same key
 * as an encrypted PKCS#8 PEM ("ENCRYPTED PRIVATE KEY": PBES2, scrypt
 * N=16384 r=8 p=1, AES-256-CBC) under pass (1..1024 bytes), mode 0600,
 * written atomically.  For an operator's card where no token exists.
 * Returns 0, JUKI_EINVAL (no passphrase), JUKI_EKEYPERM, JUKI_ECERT (not an
 * unencrypted private key: already encrypted, or no key at all), -errno.
 */
int juki_pki_encrypt_key(const char *path, const char *pass, char *err, size_t errlen);

/*
 * juki_pki_file_times() - the validity of the PEM file path: the first
 * certificate's notAfter, or (crl) the CRL's nextUpdate, in ms since the
 * epoch (INT64_MIN: a CRL without nextUpdate).  Returns 0, JUKI_EIO (cannot
 * read) or JUKI_EFORMAT (no certificate or CRL in it).
 */
int juki_pki_file_times(const char *path, int crl, long long *ms);

/* juki_pki_chain_check()'s now_ms that leaves the validity dates unchecked. */
#define JUKI_PKI_ANY_TIME INT64_MIN

/*
 * juki_pki_chain_check() - does cert (with the intermediates in chain, which
 * may be NULL) chain to the CAs in ca_file, not revoked by crl_file
 * (NULL: no CRL check), valid at now_ms (0: now; JUKI_PKI_ANY_TIME: dates
 * not checked)?  Returns 0; JUKI_EAUTH when it is refused (OpenSSL's reason
 * in err); JUKI_ECERT when a file cannot be loaded; JUKI_ENOMEM.
 */
int juki_pki_chain_check(X509 *cert, STACK_OF(X509) * chain, const char *ca_file,
			 const char *crl_file, int64_t now_ms, char *err, size_t errlen);

/*
 * juki_pki_sig_b64_ok() - is b64 (standard base64, at most JUKI_PKI_SIG_B64_MAX
 * characters) a signature of data by cert's key: SHA-256 with ECDSA or RSA,
 * or pure EdDSA?  1 or 0.
 */
#define JUKI_PKI_SIG_B64_MAX 1024 /* an ECDSA P-256..P-521 or RSA-4096 signature */
int juki_pki_sig_b64_ok(X509 *cert, const void *data, size_t len, const char *b64);

#endif
