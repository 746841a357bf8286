/*
 * A receiving body's link to the providing server: the body file, the
 * staff card, the gateway, the two TLS sessions and the messages.
 *
 * Synchronous, like the operator's session (terminal.c): a non-blocking
 * socket driven by poll() against deadlines (sock.c, which both use).
 * The inner TLS session runs over the outer one through a BIO of our own
 * whose read and write are SSL_read/SSL_write on the outer session,
 * waiting up to the current deadline: to the inner session it is a
 * blocking BIO.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/frame.h"
#include "juki/wire/msg.h"
#include "juki/wire/net.h"
#include "juki/wire/tls.h"
#include "link.h"
#include "sock.h"
#include "terminal.h"

#define PIN_BUF  257
#define HOST_MAX 256

static const struct juki_conf_key staff_keys[] = {
    JUKI_CONF_SCALAR(struct ctl_body_staff, cert, "cert", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED,
		     0, 0,
		     "The staff member's card certificate (PEM), "
		     "urn:juki:op:<agency|exec>:<id>:<staff>."),
    JUKI_CONF_SCALAR(struct ctl_body_staff, card, "card", JUKI_CONF_STRING, NULL, 0, 0, 0,
		     "pkcs11: URI of the staff member's key on the token (no PIN in it)."),
    JUKI_CONF_SCALAR(struct ctl_body_staff, key, "key", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "Passphrase-encrypted PKCS#8 key file, where there is no token (instead of "
		     "card)."),
    JUKI_CONF_END,
};

const struct juki_conf_key ctl_body_keys[] = {
    JUKI_CONF_SCALAR(struct ctl_body, body, "body", JUKI_CONF_IDENT, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "The receiving body, urn:juki:agency:<id> or urn:juki:exec:<id>; its "
		     "certificate must name it."),
    JUKI_CONF_SECTIONKEY(struct ctl_body, tls, "tls", juki_tls_files_keys,
			 "The body's node certificate, key, CA and CRL (the outer TLS)."),
    JUKI_CONF_SCALARLIST(struct ctl_body, gateways, ngateways, "gateways", JUKI_CONF_ADDR,
			 JUKI_CONF_REQUIRED, 1, 16,
			 "Gateways (host:port), tried in order: the next when one cannot be "
			 "reached."),
    JUKI_CONF_SCALAR(struct ctl_body, server, "server", JUKI_CONF_IDENT, NULL, JUKI_CONF_REQUIRED,
		     0, 0, "The providing server: urn:juki:pref:<NN> or urn:juki:jlis:0."),
    JUKI_CONF_SCALARLIST(struct ctl_body, fallback, nfallback, "fallback", JUKI_CONF_IDENT, 0, 0, 3,
			 "Providing servers tried in order when no gateway reaches `server` (the "
			 "other national centre: [urn:juki:jlis:west])."),
    JUKI_CONF_SECTIONKEY(struct ctl_body, staff, "staff", staff_keys,
			 "The staff member's card (the inner TLS): only staff hold one "
			 "(第6-8(1)イ)."),
    JUKI_CONF_SCALAR(struct ctl_body, answers, "answers", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED,
		     0, 0,
		     "The answer directory: answer files of provide batch, erased by provide "
		     "purge after their erase-by date."),
    JUKI_CONF_SCALAR(struct ctl_body, keep, "keep", JUKI_CONF_DURATION, "0", 0, 0, 0,
		     "How long an answer file may be kept: its erase-by date is today + this; "
		     "0: the period the server's answer gives."),
    JUKI_CONF_SCALAR(struct ctl_body, connect_timeout, "connect_timeout", JUKI_CONF_DURATION, "5s",
		     0, 100, 600000,
		     "Each step of setting up the link: connect, outer handshake, the "
		     "gateway's answer, inner handshake."),
    JUKI_CONF_SCALAR(struct ctl_body, part_timeout, "part_timeout", JUKI_CONF_DURATION, "60s", 0,
		     100, 3600000, "One query, or one part of a batch: until its answer."),
    JUKI_CONF_SCALAR(struct ctl_body, deadline, "deadline", JUKI_CONF_DURATION, "1h", 0, 1000,
		     86400000, "One whole command."),
    JUKI_CONF_SCALAR(struct ctl_body, part_size, "part_size", JUKI_CONF_INT, "1000", 0, 1, 1000,
		     "Queries in one part of a batch."),
    JUKI_CONF_SCALAR(struct ctl_body, frame_max, "frame_max", JUKI_CONF_SIZE, "4MiB", 0, 1024,
		     67108864, "Bytes of one frame, either way (the server's limits.frame_max)."),
    JUKI_CONF_SCALAR(struct ctl_body, file_max, "file_max", JUKI_CONF_SIZE, "256MiB", 0, 1024,
		     INT64_C(4294967296), "Bytes of a queries file."),
    JUKI_CONF_SCALAR(struct ctl_body, clock_offset, "clock_offset", JUKI_CONF_DURATION, "0", 0, 0,
		     0,
		     "Added to the system clock for the dates of answer files (tests, like a "
		     "daemon's clock_offset)."),
    JUKI_CONF_END,
};

void
ctl_body_free(struct ctl_body *b)
{
	juki_conf_free(ctl_body_keys, b);
	memset(b, 0, sizeof(*b));
}

/* Whether server and every fallback are national centres, each named once. */
static int
all_centres(const struct ctl_body *b)
{
	struct juki_ident id;

	for (size_t i = 0; i <= b->nfallback; i++) {
		const char *s = i == 0 ? b->server : b->fallback[i - 1];

		if (juki_ident_parse(s, &id) != 0 || id.kind != JUKI_KIND_JLIS) {
			return 0;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s, j == 0 ? b->server : b->fallback[j - 1]) == 0) {
				return 0;
			}
		}
	}
	return 1;
}

int
ctl_body_load(const char *path, struct ctl_body *b, char *err, size_t errlen)
{
	struct juki_ident id;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = juki_conf_load(path, ctl_body_keys, b, err, errlen);
	if (rc != 0) {
		return rc;
	}
	rc = JUKI_ECONFIG;
	if (juki_ident_parse(b->body, &id) != 0 ||
	    (strcmp(juki_kind_name(id.kind), "agency") != 0 &&
	     strcmp(juki_kind_name(id.kind), "exec") != 0)) {
		juki_seterr(err, errlen, "%s: body: %s is not a receiving body (agency or exec)",
			    path, b->body);
	} else if ((b->staff.card == NULL) == (b->staff.key == NULL)) {
		juki_seterr(err, errlen,
			    "%s: staff: card or key, one of the two (a key on a token, or an "
			    "encrypted key file)",
			    path);
	} else if (b->nfallback > 0 && !all_centres(b)) {
		juki_seterr(err, errlen,
			    "%s: fallback: only between national centres (server and fallback "
			    "urn:juki:jlis:<name>, each named once)",
			    path);
	} else if (b->staff.card != NULL && strncasecmp(b->staff.card, "pkcs11:", 7) != 0) {
		juki_seterr(err, errlen, "%s: staff.card: not a pkcs11: URI", path);
	} else if (b->staff.card != NULL && ctl_card_uri_has_pin(b->staff.card)) {
		juki_seterr(err, errlen,
			    "%s: staff.card: the URI carries a PIN; no PIN belongs in the file",
			    path);
	} else {
		return 0;
	}
	ctl_body_free(b);
	return rc;
}

/* The card */

int
ctl_card_open(const char *cert, const char *uri, const char *keyfile, const char *ca,
	      const char *crl, int pin_fd, struct juki_tls **out, struct juki_ctl_error *err)
{
	struct juki_tls_conf conf = {.cert = cert, .ca = ca, .crl = crl};
	const char *card_pin = NULL;
	char pin[PIN_BUF];
	char why[512];
	EVP_PKEY *key = NULL;
	int rc;

	*out = NULL;
	if (keyfile != NULL || !ctl_card_uri_has_pin(uri)) {
		rc = ctl_read_pin(pin_fd, keyfile != NULL ? "Key passphrase: " : "Card PIN: ", pin,
				  sizeof(pin), why, sizeof(why));
		if (rc != 0) {
			juki_ctl_fail(err, "usage", "%s: %s%s",
				      keyfile != NULL ? "key passphrase" : "card PIN", why,
				      pin_fd < 0 ? " (or --card-pin-fd N)" : "");
			return rc;
		}
		card_pin = pin;
	}
	rc = ctl_card_key(uri, keyfile, card_pin, &key, why, sizeof(why));
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc == JUKI_EAUTH) {
		juki_ctl_fail(err, "wrong-pin", "card: %s", why);
		return rc;
	}
	if (rc != 0) {
		juki_ctl_fail(err, "card", "%s", why);
		return rc;
	}
	rc = juki_tls_new_key(&conf, key, out, why, sizeof(why));
	EVP_PKEY_free(key);
	if (rc != 0) {
		juki_ctl_fail(err, "card", "%s", why);
		return rc;
	}
	if (juki_tls_self(*out)->kind != JUKI_KIND_OP) {
		juki_ctl_fail(err, "card", "certificate %s is for %s, not a staff member", cert,
			      juki_tls_self(*out)->urn);
		juki_tls_free(*out);
		*out = NULL;
		return JUKI_ECERT;
	}
	return 0;
}

/* The link */

struct ctl_link {
	const struct ctl_body *b;
	char server[JUKI_URN_MAX]; /* the server reached: server, or one of fallback */
	char gateway[HOST_MAX + 8];
	int fd;
	SSL *outer;
	SSL *inner;
	struct juki_tls *node; /* the body's node certificate */
	struct juki_tls *card; /* the staff member's card */
	struct evbuffer *in;   /* bytes of the inner session not yet a frame */
	int64_t deadline;      /* the whole command (mono ms) */
	int64_t step;          /* the current step's end (mono ms) */
	int io_error;          /* why the outer BIO failed (JUKI_ETIMEDOUT, ...) */
	int broken;
};

static int64_t
step_end(const struct ctl_link *l, int64_t ms)
{
	int64_t end = juki_clock_mono_ms() + ms;

	return end < l->deadline ? end : l->deadline;
}

/* Connect l->fd to the gateway at addr within the connect timeout. */
static int
tcp_connect(struct ctl_link *l, const char *addr, char *why, size_t whylen)
{
	char text[256];
	int rc =
	    ctl_sock_connect(addr, step_end(l, l->b->connect_timeout), &l->fd, text, sizeof(text));

	if (rc != 0) {
		juki_seterr(why, whylen,
			    rc == JUKI_EINVAL || rc == JUKI_ENOENT ? "%s" : "connect: %s", text);
	}
	return rc;
}

/* The outer session, waiting up to l->step (sock.h). */
static int
outer_write(struct ctl_link *l, const void *data, size_t len)
{
	return ctl_sock_ssl_write(l->outer, l->fd, data, len, l->step);
}

/* Up to len bytes (at least one) from the outer session. */
static int
outer_read(struct ctl_link *l, void *buf, size_t len, size_t *got)
{
	return ctl_sock_ssl_read(l->outer, l->fd, buf, len, got, l->step);
}

static const char *
ssl_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();

	if (e == 0) {
		snprintf(buf, len, "closed by the peer");
	} else {
		ERR_error_string_n(e, buf, len);
	}
	ERR_clear_error();
	return buf;
}

static int
outer_handshake(struct ctl_link *l, char *why, size_t whylen)
{
	struct juki_ident peer;
	char text[256];

	l->step = step_end(l, l->b->connect_timeout);
	for (;;) {
		int r, rc;

		ERR_clear_error();
		r = SSL_do_handshake(l->outer);
		if (r == 1) {
			break;
		}
		rc = ctl_sock_ssl_wait(l->outer, l->fd, r, l->step);
		if (rc == 1) {
			continue;
		}
		if (rc == JUKI_ETIMEDOUT) {
			juki_seterr(why, whylen, "outer TLS handshake: timed out");
		} else if (SSL_get_verify_result(l->outer) != X509_V_OK) {
			juki_seterr(why, whylen,
				    "outer TLS: the gateway's certificate is refused: %s",
				    X509_verify_cert_error_string(SSL_get_verify_result(l->outer)));
		} else {
			juki_seterr(why, whylen, "outer TLS handshake: %s",
				    ssl_error_text(text, sizeof(text)));
		}
		return rc == JUKI_ETIMEDOUT ? rc : JUKI_ETLS;
	}
	if (juki_tls_peer_ident(l->outer, &peer) != 0 || peer.kind != JUKI_KIND_FWGATE) {
		juki_seterr(why, whylen, "the peer is not a gateway (%s)",
			    peer.urn[0] != '\0' ? peer.urn : "no identity");
		return JUKI_ECERT;
	}
	return 0;
}

/*
 * CONNECT and its answer, read a byte at a time: what follows the line is
 * the inner session's.  Returns 0 (OK), 1 (DENY, the line in answer), or a
 * negative code.
 */
static int
tunnel(struct ctl_link *l, char *answer, size_t len, char *why, size_t whylen)
{
	char line[JUKI_LINE_MAX + 2];
	size_t n = 0;
	int rc;

	l->step = step_end(l, l->b->connect_timeout);
	snprintf(line, sizeof(line), "CONNECT %s provide\n", l->server);
	rc = outer_write(l, line, strlen(line));
	while (rc == 0) {
		size_t got = 0;
		char c;

		rc = outer_read(l, &c, 1, &got);
		if (rc != 0) {
			break;
		}
		if (c == '\n') {
			break;
		}
		if (n >= JUKI_LINE_MAX) {
			juki_seterr(why, whylen, "the gateway's answer is over %d bytes",
				    JUKI_LINE_MAX);
			return JUKI_EPROTO;
		}
		answer[n++] = c;
	}
	if (rc != 0) {
		juki_seterr(why, whylen, "CONNECT: %s",
			    rc == JUKI_ETIMEDOUT ? "no answer in time" : juki_strerror(rc));
		return rc;
	}
	if (n > 0 && answer[n - 1] == '\r') {
		n--;
	}
	answer[n < len ? n : len - 1] = '\0';
	for (size_t i = 0; answer[i] != '\0'; i++) {
		if ((unsigned char)answer[i] < 0x20 || answer[i] == 0x7f) {
			answer[i] = '?';
		}
	}
	if (strcmp(answer, "OK") == 0) {
		return 0;
	}
	if (strncmp(answer, "DENY ", 5) == 0) {
		return 1;
	}
	juki_seterr(why, whylen, "the gateway's answer is neither OK nor DENY");
	return JUKI_EPROTO;
}

static void
link_reset(struct ctl_link *l)
{
	SSL_free(l->inner);
	l->inner = NULL;
	SSL_free(l->outer);
	l->outer = NULL;
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}

/* The BIO under the inner session: the outer session, waiting up to l->step. */

static BIO_METHOD *tunnel_method;

static int
tunnel_bio_write(BIO *bio, const char *data, size_t len, size_t *written)
{
	struct ctl_link *l = BIO_get_data(bio);
	int rc = outer_write(l, data, len);

	*written = 0;
	if (rc != 0) {
		l->io_error = rc;
		return 0;
	}
	*written = len;
	return 1;
}

static int
tunnel_bio_read(BIO *bio, char *data, size_t len, size_t *got)
{
	struct ctl_link *l = BIO_get_data(bio);
	int rc = outer_read(l, data, len, got);

	if (rc != 0) {
		*got = 0;
		l->io_error = rc;
		return 0;
	}
	return 1;
}

static long
tunnel_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void)bio;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
tunnel_bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static BIO *
tunnel_bio(struct ctl_link *l)
{
	BIO *bio;

	if (tunnel_method == NULL) {
		tunnel_method =
		    BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "juki tunnel");
		if (tunnel_method == NULL ||
		    BIO_meth_set_write_ex(tunnel_method, tunnel_bio_write) != 1 ||
		    BIO_meth_set_read_ex(tunnel_method, tunnel_bio_read) != 1 ||
		    BIO_meth_set_ctrl(tunnel_method, tunnel_bio_ctrl) != 1 ||
		    BIO_meth_set_create(tunnel_method, tunnel_bio_create) != 1) {
			return NULL;
		}
	}
	bio = BIO_new(tunnel_method);
	if (bio != NULL) {
		BIO_set_data(bio, l);
	}
	return bio;
}

static const char *
io_text(int rc)
{
	switch (rc) {
	case JUKI_ETIMEDOUT:
		return "timed out";
	case JUKI_ECLOSED:
		return "closed by the peer (EOF)";
	default:
		return juki_strerror(rc);
	}
}

static int
inner_handshake(struct ctl_link *l, struct juki_ctl_error *err)
{
	struct juki_ident peer;
	char text[256];
	BIO *bio;

	l->step = step_end(l, l->b->connect_timeout);
	l->inner = juki_tls_ssl_new(l->card, JUKI_TLS_CLIENT);
	bio = l->inner != NULL ? tunnel_bio(l) : NULL;
	if (bio == NULL) {
		juki_ctl_fail(err, "internal", "out of memory");
		return JUKI_ENOMEM;
	}
	SSL_set_bio(l->inner, bio, bio);
	l->io_error = 0;
	ERR_clear_error();
	if (SSL_connect(l->inner) != 1) {
		long v = SSL_get_verify_result(l->inner);

		if (l->io_error != 0) {
			juki_ctl_fail(err, "unreachable", "%s: inner TLS handshake: %s", l->gateway,
				      io_text(l->io_error));
		} else if (v != X509_V_OK) {
			juki_ctl_fail(err, "unreachable",
				      "%s: inner TLS: the server's certificate is refused: %s",
				      l->gateway, X509_verify_cert_error_string(v));
		} else {
			juki_ctl_fail(err, "unreachable", "%s: inner TLS handshake: %s", l->gateway,
				      ssl_error_text(text, sizeof(text)));
		}
		return l->io_error != 0 ? l->io_error : JUKI_ETLS;
	}
	if (juki_tls_peer_ident(l->inner, &peer) != 0 || strcmp(peer.urn, l->server) != 0) {
		juki_ctl_fail(err, "wrong-peer",
			      "%s: the inner certificate names %s, not the server asked for (%s)",
			      l->gateway, peer.urn[0] != '\0' ? peer.urn : "no identity",
			      l->server);
		return JUKI_ECERT;
	}
	return 0;
}

/* DENY codes after which another gateway may still reach the server (as outbound.c). */
static int
deny_retryable(const char *answer)
{
	static const char *const codes[] = {"unreachable", "limit", "timeout", NULL};
	const char *code = answer + 5;

	for (size_t i = 0; codes[i] != NULL; i++) {
		size_t n = strlen(codes[i]);

		if (strncmp(code, codes[i], n) == 0 && (code[n] == ' ' || code[n] == '\0')) {
			return 1;
		}
	}
	return 0;
}

/*
 * Through each gateway in turn, a tunnel to l->server: 0, JUKI_EPERM (a DENY
 * no other gateway or server would answer otherwise), JUKI_ENOMEM, or
 * another negative code when no gateway reached it (err says why).
 */
static int
reach_server(struct ctl_link *l, char *why, size_t whylen, char *answer, size_t alen,
	     struct juki_ctl_error *err)
{
	const struct ctl_body *b = l->b;
	int rc = JUKI_ECLOSED;

	for (size_t g = 0; g < b->ngateways; g++) {
		snprintf(l->gateway, sizeof(l->gateway), "%s", b->gateways[g]);
		link_reset(l);
		if (juki_clock_mono_ms() >= l->deadline) {
			juki_ctl_fail(err, "unreachable", "the command's deadline has passed");
			return JUKI_ETIMEDOUT;
		}
		rc = tcp_connect(l, l->gateway, why, whylen);
		if (rc == 0) {
			l->outer = juki_tls_ssl_new(l->node, JUKI_TLS_CLIENT);
			if (l->outer == NULL || SSL_set_fd(l->outer, l->fd) != 1) {
				juki_ctl_fail(err, "internal", "out of memory");
				return JUKI_ENOMEM;
			}
			rc = outer_handshake(l, why, whylen);
		}
		if (rc == 0) {
			rc = tunnel(l, answer, alen, why, whylen);
			if (rc == 1) {
				juki_ctl_fail(err, "denied", "gateway %s: %s", l->gateway, answer);
				if (!deny_retryable(answer)) {
					return JUKI_EPERM;
				}
				snprintf(why, whylen, "%s", answer);
			}
		}
		if (rc == 0) {
			return 0;
		}
		if (rc != 1) {
			juki_ctl_fail(err, "unreachable", "gateway %s: %s", l->gateway, why);
		}
		if (g + 1 < b->ngateways) {
			fprintf(stderr, "juki-ctl: gateway %s: %s; trying the next\n", l->gateway,
				why);
		}
		/* Denied here, but another server may still be reached. */
		rc = rc == 1 ? -EHOSTUNREACH : rc;
	}
	return rc;
}

int
ctl_link_open(const struct ctl_body *b, int card_pin_fd, int64_t deadline_mono,
	      struct ctl_link **out, struct juki_ctl_error *err)
{
	struct juki_tls_conf nconf = juki_tls_files_conf(&b->tls);
	struct ctl_link *l;
	char why[512], answer[JUKI_LINE_MAX + 1];
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	l = calloc(1, sizeof(*l));
	if (l == NULL || (l->in = evbuffer_new()) == NULL) {
		free(l);
		juki_ctl_fail(err, "internal", "out of memory");
		return JUKI_ENOMEM;
	}
	l->b = b;
	l->fd = -1;
	l->deadline = deadline_mono;
	rc = juki_tls_new(&nconf, &l->node, why, sizeof(why));
	if (rc != 0) {
		juki_ctl_fail(err, "usage", "the body's certificate: %s", why);
		goto fail;
	}
	if (strcmp(juki_tls_self(l->node)->urn, b->body) != 0) {
		juki_ctl_fail(err, "usage", "the body's certificate names %s, not %s",
			      juki_tls_self(l->node)->urn, b->body);
		rc = JUKI_ECERT;
		goto fail;
	}
	rc = ctl_card_open(b->staff.cert, b->staff.card, b->staff.key, b->tls.ca, b->tls.crl,
			   card_pin_fd, &l->card, err);
	if (rc != 0) {
		goto fail;
	}
	{
		const struct juki_ident *staff = juki_tls_self(l->card);
		struct juki_ident body;

		juki_ident_parse(b->body, &body);
		if (staff->node_kind != body.kind || strcmp(staff->id, body.id) != 0) {
			juki_ctl_fail(err, "card", "the card %s is not a staff member of %s",
				      staff->urn, b->body);
			rc = JUKI_ECERT;
			goto fail;
		}
	}
	rc = JUKI_ECLOSED;
	juki_ctl_fail(err, "unreachable", "no gateway");
	/*
	 * The server, else each fallback in turn (the other national centre):
	 * the next only when no gateway could reach this one (DENY unreachable,
	 * limit or timeout, or no gateway answering at all).
	 */
	for (size_t s = 0; s <= b->nfallback && rc != 0; s++) {
		snprintf(l->server, sizeof(l->server), "%s",
			 s == 0 ? b->server : b->fallback[s - 1]);
		if (s > 0) {
			fprintf(stderr, "juki-ctl: %s cannot be reached; trying %s\n",
				s == 1 ? b->server : b->fallback[s - 2], l->server);
		}
		rc = reach_server(l, why, sizeof(why), answer, sizeof(answer), err);
		if (rc == JUKI_EPERM || rc == JUKI_ENOMEM) {
			goto fail;
		}
	}
	if (rc != 0) {
		/* The last answer was a DENY (unreachable, limit, timeout): refused, as before. */
		rc = rc == -EHOSTUNREACH ? JUKI_EPERM : rc;
		goto fail;
	}
	rc = inner_handshake(l, err);
	if (rc != 0) {
		goto fail;
	}
	*out = l;
	return 0;
fail:
	l->broken = 1;
	ctl_link_close(l);
	return rc != 0 ? rc : JUKI_EIO;
}

int
ctl_link_lost(const struct ctl_link *l, int rc)
{
	/* send_failed() breaks the link for these; a bad frame or ack is the server's fault. */
	return rc != 0 && rc != JUKI_EPERM && rc != JUKI_EPROTO && rc != JUKI_ENOMEM && l != NULL &&
	       l->broken;
}

int
ctl_link_move(struct ctl_link *l, struct juki_ctl_error *err)
{
	const struct ctl_body *b = l->b;
	char lost[JUKI_URN_MAX], why[512], answer[JUKI_LINE_MAX + 1];
	size_t cur = 0;
	int rc = JUKI_ECLOSED;

	memset(err, 0, sizeof(*err));
	snprintf(lost, sizeof(lost), "%s", l->server);
	for (size_t s = 1; s <= b->nfallback; s++) {
		if (strcmp(b->fallback[s - 1], l->server) == 0) {
			cur = s;
		}
	}
	link_reset(l);
	evbuffer_drain(l->in, evbuffer_get_length(l->in));
	l->broken = 1;
	juki_ctl_fail(err, "unreachable", "%s was lost and no other centre is left to try", lost);
	/* The centres after the one lost, in the body file's order. */
	for (size_t s = cur + 1; s <= b->nfallback && rc != 0; s++) {
		snprintf(l->server, sizeof(l->server), "%s", b->fallback[s - 1]);
		fprintf(stderr, "juki-ctl: the link to %s was lost; moving to %s\n", lost,
			l->server);
		rc = reach_server(l, why, sizeof(why), answer, sizeof(answer), err);
		if (rc == JUKI_EPERM || rc == JUKI_ENOMEM) {
			break;
		}
	}
	if (rc == 0) {
		rc = inner_handshake(l, err);
	}
	if (rc == 0) {
		l->broken = 0;
		return 0;
	}
	link_reset(l);
	return rc == -EHOSTUNREACH ? JUKI_EPERM : rc;
}

const char *
ctl_link_staff(const struct ctl_link *l)
{
	return juki_tls_self(l->card)->urn;
}

const char *
ctl_link_server(const struct ctl_link *l)
{
	return l->server;
}

const char *
ctl_link_gateway(const struct ctl_link *l)
{
	return l->gateway;
}

static int
inner_write_all(struct ctl_link *l, const unsigned char *data, size_t len)
{
	size_t n = 0;

	l->io_error = 0;
	ERR_clear_error();
	while (len > 0) {
		if (SSL_write_ex(l->inner, data, len, &n) != 1) {
			return l->io_error != 0 ? l->io_error : JUKI_ETLS;
		}
		data += n;
		len -= n;
	}
	return 0;
}

static int
inner_read_frame(struct ctl_link *l, json_t **doc)
{
	unsigned char buf[16384];

	for (;;) {
		size_t n = 0;
		int rc = juki_frame_pull(l->in, (size_t)l->b->frame_max, doc);

		if (rc != 0) {
			return rc == 1 ? 0 : rc;
		}
		l->io_error = 0;
		ERR_clear_error();
		if (SSL_read_ex(l->inner, buf, sizeof(buf), &n) != 1) {
			int e = SSL_get_error(l->inner, 0);

			if (l->io_error != 0) {
				return l->io_error;
			}
			return e == SSL_ERROR_ZERO_RETURN ? JUKI_ECLOSED : JUKI_ETLS;
		}
		if (evbuffer_add(l->in, buf, n) != 0) {
			return JUKI_ENOMEM;
		}
	}
}

static int
send_failed(struct ctl_link *l, const char *type, int rc, struct juki_ctl_error *err)
{
	char text[256];

	l->broken = 1;
	switch (rc) {
	case JUKI_EJSON:
	case JUKI_EFRAME:
	case JUKI_ETOOBIG:
		juki_ctl_fail(err, "bad-response", "%s: malformed frame from the server: %s", type,
			      juki_strerror(rc));
		return JUKI_EPROTO;
	case JUKI_ETLS:
		juki_ctl_fail(err, "unreachable", "%s: TLS: %s", type,
			      ssl_error_text(text, sizeof(text)));
		return rc;
	default:
		juki_ctl_fail(err, "unreachable", "%s: %s", type, io_text(rc));
		return rc;
	}
}

int
ctl_link_post(struct ctl_link *l, const char *type, json_t *body, int64_t timeout_ms,
	      char id[JUKI_UUID_LEN + 1], struct juki_ctl_error *err)
{
	struct juki_clock clock = {0};
	struct juki_msg msg = {0};
	struct evbuffer *out = NULL;
	json_t *doc = NULL;
	int rc;

	id[0] = '\0';
	memset(err, 0, sizeof(*err));
	if (l->broken) {
		json_decref(body);
		juki_ctl_fail(err, "unreachable", "the link has failed");
		return JUKI_ECLOSED;
	}
	rc = juki_msg_init(&msg, type, l->b->body, l->server, NULL, body, &clock);
	if (rc != 0) {
		juki_ctl_fail(err, "internal", "%s: %s", type, juki_strerror(rc));
		return rc;
	}
	doc = juki_msg_to_json(&msg);
	out = evbuffer_new();
	if (doc == NULL || out == NULL) {
		juki_ctl_fail(err, "internal", "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	rc = juki_frame_push(out, doc, (size_t)l->b->frame_max);
	if (rc != 0) {
		juki_ctl_fail(err, "too-large", "%s: the message is over frame_max (%lld bytes)",
			      type, (long long)l->b->frame_max);
		goto out;
	}
	l->step = step_end(l, timeout_ms);
	rc = inner_write_all(l, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	if (rc != 0) {
		rc = send_failed(l, type, rc, err);
		goto out;
	}
	snprintf(id, JUKI_UUID_LEN + 1, "%s", msg.id);
out:
	json_decref(doc);
	juki_msg_clear(&msg);
	if (out != NULL) {
		evbuffer_free(out);
	}
	return rc;
}

int
ctl_link_wait(struct ctl_link *l, const char *type, const char *id, int64_t timeout_ms,
	      json_t **result, struct juki_ctl_error *err)
{
	struct juki_msg reply = {0};
	struct juki_ack ack;
	const char *reason = NULL;
	json_t *doc = NULL;
	int rc;

	*result = NULL;
	memset(err, 0, sizeof(*err));
	if (l->broken) {
		juki_ctl_fail(err, "unreachable", "the link has failed");
		return JUKI_ECLOSED;
	}
	l->step = step_end(l, timeout_ms);
	rc = inner_read_frame(l, &doc);
	if (rc != 0) {
		rc = send_failed(l, type, rc, err);
		goto out;
	}
	rc = juki_msg_from_json(doc, &reply, &reason, NULL, 0);
	if (rc != 0 || strcmp(reply.type, JUKI_MSG_ACK) != 0 || juki_ack_parse(&reply, &ack) != 0) {
		l->broken = 1;
		juki_ctl_fail(err, "bad-response", "%s: the server's answer is not an ack", type);
		rc = JUKI_EPROTO;
		goto out;
	}
	if (strcmp(reply.from, l->server) != 0 ||
	    (strcmp(reply.to, l->b->body) != 0 && strcmp(reply.to, ctl_link_staff(l)) != 0) ||
	    (ack.corr[0] != '\0' && strcmp(ack.corr, id) != 0)) {
		l->broken = 1;
		juki_ctl_fail(err, "bad-response", "%s: an ack that is not for this message", type);
		rc = JUKI_EPROTO;
		goto out;
	}
	if (ack.status == JUKI_ACK_REJECTED) {
		juki_ctl_fail(err, ack.reason, "%s", ack.detail);
		rc = JUKI_EPERM;
		goto out;
	}
	*result = json_is_object(ack.result) ? json_incref((json_t *)ack.result) : json_object();
	rc = 0;
out:
	json_decref(doc);
	juki_msg_clear(&reply);
	return rc;
}

int
ctl_link_send(struct ctl_link *l, const char *type, json_t *body, int64_t timeout_ms,
	      json_t **result, struct juki_ctl_error *err)
{
	char id[JUKI_UUID_LEN + 1];
	int rc;

	*result = NULL;
	rc = ctl_link_post(l, type, body, timeout_ms, id, err);
	return rc != 0 ? rc : ctl_link_wait(l, type, id, timeout_ms, result, err);
}

void
ctl_link_close(struct ctl_link *l)
{
	if (l == NULL) {
		return;
	}
	if (l->inner != NULL && !l->broken && SSL_is_init_finished(l->inner)) {
		l->step = step_end(l, 1000);
		SSL_shutdown(l->inner);
	}
	link_reset(l);
	juki_tls_free(l->card);
	juki_tls_free(l->node);
	if (l->in != NULL) {
		evbuffer_free(l->in);
	}
	free(l);
	ERR_clear_error();
}
