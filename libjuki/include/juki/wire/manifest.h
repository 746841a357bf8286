/*
 * juki — the signed manifest of a node's installed programs (第4-7(1)イ,
 * 第4-7(4)): the files a daemon runs from — its binary, the shared libraries
 * it has loaded, its configuration — each with its SHA-256, signed by the
 * node's own key (a key file or a key on a PKCS#11 token), whose certificate
 * the network's CA issued and which the manifest carries:
 *
 *   {"format": 1, "node": "urn:juki:cs:131016", "daemon": "juki-csd",
 *    "version": "0.1.0", "made": "2026-12-07T04:40:00.000Z",
 *    "files": [{"path": "/usr/sbin/juki-csd", "sha256": "<64 hex>",
 *               "kind": "binary"|"library"|"config"}, ...],
 *    "signature": {"alg": "ecdsa-sha256", "cert": "<PEM>", "value": "<base64 DER>"}}
 *
 * The signed bytes (the canonical form) are the manifest without its
 * "signature" member as JSON with the keys sorted, no white space and only
 * ASCII (every other character \u-escaped): juki_manifest_canonical().
 * A manifest is read with duplicate keys refused, so what is checked is
 * what was signed.  docs/architecture.md says what is checked and when.
 */
#ifndef JUKI_WIRE_MANIFEST_H
#define JUKI_WIRE_MANIFEST_H

#include <stddef.h>

#include <jansson.h>

#include "juki/wire/tls.h"

#define JUKI_MANIFEST_MAX_BYTES (1024 * 1024) /* a manifest file larger than this is refused */
#define JUKI_MANIFEST_MAX_FILES 1024
#define JUKI_MANIFEST_PATH_MAX  4096

/*
 * juki_sha256_file() - the SHA-256 of the file at path, as 64 lowercase hex
 * digits and a NUL in hex (65 bytes).  Returns 0 or -errno.
 */
int juki_sha256_file(const char *path, char hex[65]);

/* juki_sha256_hex() - the SHA-256 of data[0..len) as hex (65 bytes). */
void juki_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * juki_manifest_kind_valid() - whether kind is "binary", "library" or "config".
 */
int juki_manifest_kind_valid(const char *kind);

/*
 * juki_manifest_check() - m has the form above: the members named, of their
 * types (version and daemon optional), node a node identity, made a time,
 * files at most JUKI_MANIFEST_MAX_FILES of absolute paths (no NUL, at most
 * JUKI_MANIFEST_PATH_MAX bytes), each listed once, exactly one binary, hex
 * digests; signature optional when unsigned is set.  Returns 0 or
 * JUKI_EFORMAT with what is wrong in err.
 */
int juki_manifest_check(const json_t *m, int unsigned_ok, char *err, size_t errlen);

/*
 * juki_manifest_canonical() - the signed bytes of m (malloc'd, NUL
 * terminated, *len without it).  Returns 0, JUKI_ENOMEM or JUKI_EJSON.
 */
int juki_manifest_canonical(const json_t *m, char **out, size_t *len);

/*
 * juki_manifest_sign() - sign m (its "signature" replaced) with the key of
 * tls, whose certificate cert_pem (a file) is carried in the signature.
 * m must pass juki_manifest_check() unsigned.  Returns 0, JUKI_EFORMAT,
 * JUKI_ECERT (the certificate cannot be read), JUKI_ENOMEM or JUKI_ETLS
 * (the key did not sign: a token removed or locked), err saying why.
 */
int juki_manifest_sign(json_t *m, struct juki_tls *tls, const char *cert_pem, char *err,
		       size_t errlen);

/*
 * juki_manifest_verify() - m is well formed and signed by the key of the
 * certificate it carries, which names m's node (and node, when not NULL),
 * was issued by a CA of ca_file and, when crl_file is not NULL, is not
 * revoked by it.  The certificate's and the CRL's dates are not checked:
 * a manifest signed while the certificate was valid stays valid (a renewed
 * key signs the next one).  Returns 0; JUKI_EFORMAT (malformed, or no
 * signature); JUKI_ECERT (the certificate is unreadable, names another node,
 * or is not the network's or revoked); JUKI_EAUTH (the signature does not
 * match: a byte changed, or another key signed); -errno when ca_file or
 * crl_file cannot be read.  err says which.
 */
int juki_manifest_verify(const json_t *m, const char *ca_file, const char *crl_file,
			 const char *node, char *err, size_t errlen);

/*
 * juki_manifest_load() - read the manifest file at path (at most
 * JUKI_MANIFEST_MAX_BYTES, duplicate keys refused) into *out, and its
 * SHA-256 into hex when not NULL.  Returns 0, -errno, JUKI_ETOOBIG or
 * JUKI_EJSON, err saying why.
 */
int juki_manifest_load(const char *path, json_t **out, char hex[65], char *err, size_t errlen);

/*
 * juki_manifest_entry() - the entry of files whose path is path, or NULL.
 */
const json_t *juki_manifest_entry(const json_t *m, const char *path);

#endif
