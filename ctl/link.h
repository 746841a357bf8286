/*
 * juki-ctl — a receiving body's link to the providing server (第6-8(1)イ;
 * docs/body.md, docs/protocol.md §13.3).
 *
 * A body (国の機関等 urn:juki:agency:<id>, 執行機関 urn:juki:exec:<id>) runs
 * no daemon: each `juki-ctl provide` command opens one link, sends its
 * messages one at a time, and closes it.  The link is
 *
 *   TCP to a gateway (the body file's list, in order: a connect error, a
 *   timeout, a failed outer handshake or DENY unreachable/limit/timeout
 *   moves to the next),
 *   outer TLS 1.3 with the body's node certificate (the gateway must be a
 *   fwgate identity),
 *   "CONNECT <server> provide", answered OK or DENY,
 *   inner TLS 1.3, through the tunnel, with the staff member's card (a key
 *   on a PKCS#11 token, or a passphrase-protected key file: card.c); the
 *   far end's certificate must name the server asked for,
 *   juki messages (frames, header, ack: docs/protocol.md §5-§7).
 *
 * The body file (conf/body.yaml) is read against a key table like a
 * daemon's configuration.
 */
#ifndef JUKI_CTL_LINK_H
#define JUKI_CTL_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/wire/msg.h"
#include "juki/wire/tls.h"

/* The staff member's card (section staff:). */
struct ctl_body_staff {
	char *cert; /* PEM: urn:juki:op:<agency|exec>:<id>:<staff> */
	char *card; /* pkcs11: URI of the key on the token, or NULL */
	char *key;  /* PEM: encrypted key file, where there is no token */
};

/* The body file. */
struct ctl_body {
	char *body;                /* urn:juki:agency:<id> / urn:juki:exec:<id> */
	struct juki_tls_files tls; /* the body's node certificate, key, CA, CRL */
	char **gateways;           /* host:port, in the order tried */
	size_t ngateways;
	char *server;    /* the providing server: urn:juki:pref:NN or urn:juki:jlis:0 */
	char **fallback; /* tried in order when no gateway reaches server (the other centre) */
	size_t nfallback;
	struct ctl_body_staff staff;
	char *answers;           /* the answer directory */
	int64_t keep;            /* how long answers may be kept, ms (0: as the server says) */
	int64_t connect_timeout; /* each step of setting up the link, ms */
	int64_t part_timeout;    /* one message's ack, ms */
	int64_t deadline;        /* one whole command, ms */
	int64_t part_size;       /* queries per provide.batch part */
	int64_t frame_max;       /* bytes of one frame, either way */
	int64_t file_max;        /* bytes of a queries file */
	int64_t clock_offset;    /* added to the system clock (tests; as a daemon's) */
};

extern const struct juki_conf_key ctl_body_keys[];

/*
 * ctl_body_load() - read the body file at path into b (zeroed here);
 * checks that body is an agency or exec identity, that card and key are
 * one or the other, and that card is a pkcs11: URI.  Returns 0 or a
 * negative code with a "file:line:col: key: what" message in err.
 */
int ctl_body_load(const char *path, struct ctl_body *b, char *err, size_t errlen);
void ctl_body_free(struct ctl_body *b);

/*
 * ctl_card_open() - unlock a card (uri, or keyfile) with its PIN or
 * passphrase (the URI's own, else from pin_fd, else asked on the
 * terminal) and make TLS contexts of it with cert, ca and crl.  The
 * certificate must name an operator.  Returns 0 with *out, or a negative
 * code with err->code "usage" (no PIN), "wrong-pin", or "card".
 */
int ctl_card_open(const char *cert, const char *uri, const char *keyfile, const char *ca,
		  const char *crl, int pin_fd, struct juki_tls **out, struct juki_ctl_error *err);

struct ctl_link;

/*
 * ctl_link_open() - unlock the staff card (card_pin_fd as for
 * ctl_card_open()), then connect as above.  deadline_mono is the whole
 * command's end (juki_clock_mono_ms() time); each step also has the body
 * file's connect_timeout.  Returns 0 with *out, or a negative code with
 * err->code:
 *   "usage", "wrong-pin", "card"  the body file or the card
 *   "unreachable"                 no gateway reached, handshake failed or
 *                                 timed out (message names the last one)
 *   "denied"                      a gateway answered DENY (its code and text)
 *   "wrong-peer"                  the inner certificate names another server
 * Progress ("gateway X: connect refused, trying the next") goes to stderr.
 */
int ctl_link_open(const struct ctl_body *b, int card_pin_fd, int64_t deadline_mono,
		  struct ctl_link **out, struct juki_ctl_error *err);

/* ctl_link_staff() - the staff member's identity (the card's). */
const char *ctl_link_staff(const struct ctl_link *l);

/* ctl_link_server() - the providing server reached: server, or one of fallback. */
const char *ctl_link_server(const struct ctl_link *l);

/* ctl_link_gateway() - the gateway the link went through (host:port). */
const char *ctl_link_gateway(const struct ctl_link *l);

/*
 * ctl_link_send() - one message of type with body (stolen) from the body
 * to the server, and its ack, within timeout_ms (and the link's deadline).
 * Returns 0 with *result (the accepted ack's result, a new reference; an
 * empty object when it has none); JUKI_EPERM when the server rejected it,
 * err->code its reason and err->message its detail; another negative code
 * with err->code "unreachable" (closed, timed out) or "bad-response".
 * After a failure other than a rejection, the link is broken.
 */
int ctl_link_send(struct ctl_link *l, const char *type, json_t *body, int64_t timeout_ms,
		  json_t **result, struct juki_ctl_error *err);

/*
 * ctl_link_post() and ctl_link_wait() - ctl_link_send() in two halves, so
 * that several messages can be in flight (a batch's parts): post sends the
 * message (body stolen) and gives its id; wait reads the next ack, which
 * must be for id (the server acknowledges in order), within timeout_ms.
 * They return as ctl_link_send(); a rejected message does not break the
 * link, but the caller that gives up on it closes the link.
 */
int ctl_link_post(struct ctl_link *l, const char *type, json_t *body, int64_t timeout_ms,
		  char id[JUKI_UUID_LEN + 1], struct juki_ctl_error *err);
int ctl_link_wait(struct ctl_link *l, const char *type, const char *id, int64_t timeout_ms,
		  json_t **result, struct juki_ctl_error *err);

/*
 * ctl_link_lost() - whether rc, a failure of ctl_link_post() or
 * ctl_link_wait(), is the link's (closed, timed out, TLS), after which
 * another centre may take the rest of the work; not a rejection, a bad
 * response or a local failure.
 */
int ctl_link_lost(const struct ctl_link *l, int rc);

/*
 * ctl_link_move() - after the link to a centre was lost (ctl_link_lost()),
 * reach the next of fallback after it, with the card already unlocked
 * (progress on stderr).  Whatever was in flight on the lost link is
 * forgotten: the caller sends again what it had no ack for.  Returns 0, the
 * link now to ctl_link_server(); or a negative code with err as
 * ctl_link_open() (also when no centre is left to try), the link broken.
 */
int ctl_link_move(struct ctl_link *l, struct juki_ctl_error *err);

void ctl_link_close(struct ctl_link *l);

#endif
