/*
 * juki — private keys on PKCS#11 tokens (an HSM, a smart card, SoftHSM2 in
 * tests), reached through the libp11 engine.
 *
 * One implementation for the operator's card (juki-ctl) and a node's own key
 * (tls.key: pkcs11:... in a daemon's or the gateway's configuration): the key
 * is used on the token and never leaves it, the process holds a handle.
 * token.c is the only file that uses OpenSSL's ENGINE API, deprecated in 3.0
 * (docs/style.md §1): the move to a PKCS#11 provider replaces that file alone.
 *
 * URIs are RFC 7512 (pkcs11:token=...;object=...;type=private), plus
 * ?module-path=/path/to/module.so; without it the module is SoftHSM2's.
 */
#ifndef JUKI_TOKEN_H
#define JUKI_TOKEN_H

#include <stddef.h>

#include <openssl/evp.h>

/* The longest PIN read from a PIN file (PKCS#11 tokens take 4..255 bytes). */
#define JUKI_TOKEN_PIN_MAX 256

/* juki_token_is_uri() - whether s is a pkcs11: URI (scheme case-insensitive). */
int juki_token_is_uri(const char *s);

/* juki_token_uri_has_pin() - whether a pkcs11: URI carries pin-value or pin-source. */
int juki_token_uri_has_pin(const char *uri);

/*
 * juki_token_key() - the private key at uri on its token, logged in with pin
 * (NULL: the URI's pin-value/pin-source).  noun names the thing in messages
 * ("card": "the card refused the card PIN"; NULL: "token").  *out is an
 * EVP_PKEY whose operations run on the token; freeing the last one logs out
 * and unloads the module.  Returns 0; JUKI_EAUTH when the token refused the
 * PIN, JUKI_ELOCKED when its PIN is locked, JUKI_ENOENT when the token or
 * the key is not there (or the engine is not installed), JUKI_EINVAL for a
 * malformed URI, another negative code otherwise; a message in err.
 */
int juki_token_key(const char *uri, const char *pin, const char *noun, EVP_PKEY **out, char *err,
		   size_t errlen);

/*
 * juki_token_read_pin_file() - the PIN in the file at path: its first line,
 * 1..JUKI_TOKEN_PIN_MAX-1 bytes.  The file must be a regular file owned by
 * the effective user with no group or other permission bits (0600/0400):
 * else JUKI_EKEYPERM.  Returns 0, JUKI_EKEYPERM, JUKI_EINVAL (empty, too
 * long) or -errno, with a message in err.  The caller wipes pin.
 */
int juki_token_read_pin_file(const char *path, char *pin, size_t len, char *err, size_t errlen);

/*
 * juki_token_keygen() - make a new EC P-256 key pair on the token the URI
 * names (token=), labelled by its object= (and id= when given), logged in
 * with pin: the private key sensitive and never extractable.  *pub (the
 * caller frees it) is the public key, to certify.  JUKI_EEXIST when the
 * token already holds a private key of that label; other codes as
 * juki_token_key().
 */
int juki_token_keygen(const char *uri, const char *pin, EVP_PKEY **pub, char *err, size_t errlen);

#endif
