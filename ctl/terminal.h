/*
 * juki-ctl — the operator's terminal: a card and a session on a daemon's
 * operator port (docs/control.md §6).
 *
 * The card is the operator's certificate and its private key, the key
 * either on a PKCS#11 token (a pkcs11: URI, reached through the libp11
 * engine in libjuki wire/token.c, the one file on the ENGINE API) or, where no
 * token exists, in a passphrase-encrypted PKCS#8 PEM file.  The key is
 * unlocked by the card PIN: the URI's pin-source/pin-value when it has one,
 * else read from --card-pin-fd, else asked on the terminal without echo.
 *
 * The card proves itself in the TLS 1.3 handshake; the daemon's certificate
 * must chain to the CA, be unrevoked and name the node the operator's
 * certificate names (urn:juki:op:cs:131016:x talks to urn:juki:cs:131016).
 * Then the operator PIN (read from --pin-fd, or asked on the terminal
 * without echo; never argv or the environment) goes in a "login" request,
 * checked by the daemon against its own verifier.
 */
#ifndef JUKI_CTL_TERMINAL_H
#define JUKI_CTL_TERMINAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "juki/node/control.h"

struct ctl_terminal {
	const char *connect; /* host:port of the daemon's operator port */
	const char *cert;    /* PEM: the operator's certificate */
	const char *card;    /* pkcs11: URI of the key on the token, or NULL */
	const char *key;     /* PEM: encrypted key file, when there is no token */
	const char *ca;      /* PEM: the CA certificate(s) */
	const char *crl;     /* PEM: CRL(s), or NULL */
	int pin_fd;          /* operator PIN from this fd; -1: ask on the terminal */
	int card_pin_fd;     /* card PIN from this fd; -1: URI, else ask */
	const char *printer; /* the terminal's CUPS queue (terminal file only), or NULL */
};

/*
 * ctl_terminal_load() - fill t from the YAML file at path (keys connect,
 * cert, card, key, ca, crl, printer; file:line:col errors), leaving members already
 * set (from options) as they are.  Strings point into storage owned by the
 * caller's *hold (free with ctl_terminal_hold_free()).
 */
struct ctl_terminal_hold;
int ctl_terminal_load(const char *path, struct ctl_terminal *t, struct ctl_terminal_hold **hold,
		      char *err, size_t errlen);
void ctl_terminal_hold_free(struct ctl_terminal_hold *hold);

/*
 * ctl_card_key() - the card's private key: from the token (uri) with the
 * card PIN, or from the encrypted key file.  pin may be NULL when the URI
 * carries it.  Returns 0 with *out (caller frees), JUKI_EAUTH when the
 * card refused the PIN or the passphrase is wrong, another negative code
 * (with err) otherwise.
 */
int ctl_card_key(const char *uri, const char *keyfile, const char *pin, EVP_PKEY **out, char *err,
		 size_t errlen);

/* ctl_card_uri_has_pin() - whether a pkcs11: URI carries pin-value or pin-source. */
int ctl_card_uri_has_pin(const char *uri);

/*
 * ctl_read_pin() - one secret: the first line of fd (without its newline),
 * or, with fd == -1, from /dev/tty after prompt with echo off (restored on
 * every path).  1..256 bytes.  Returns 0, JUKI_EINVAL (empty/too long/no
 * terminal) with err.  The caller wipes buf (OPENSSL_cleanse).
 */
int ctl_read_pin(int fd, const char *prompt, char *buf, size_t len, char *err, size_t errlen);

struct ctl_session;

/*
 * ctl_session_open() - unlock the card, connect, handshake, log in.
 * Returns 0; or a negative code with err->code:
 *   "unreachable"  no connection / handshake failed (message says which)
 *   "card"         the card or key file could not be used (wrong card PIN,
 *                  wrong passphrase: err->code "wrong-pin" instead)
 *   "wrong-pin"    the daemon refused the operator PIN (message: attempts left)
 *   "locked"       the operator is locked
 *   any other code the daemon answered the login with.
 */
int ctl_session_open(const struct ctl_terminal *t, int64_t timeout_ms, struct ctl_session **out,
		     struct juki_ctl_error *err);

/* ctl_session_call() - one request on the session, as juki_ctl_call(). */
int ctl_session_call(struct ctl_session *s, const char *cmd, json_t *args, json_t **result,
		     struct juki_ctl_error *err);

/* ctl_session_login() - the login result: {"operator", "roles", "datasets"}. */
const json_t *ctl_session_login(const struct ctl_session *s);

void ctl_session_close(struct ctl_session *s);

#endif
