/*
 * The operator's terminal: its file, the PINs, and a session on a daemon's
 * operator port.  The card itself is card.c.
 *
 * A session writes with SSL_write on a plain socket, so a daemon that
 * closes early raises SIGPIPE: the program ignores it (ctl_main does).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/control.h"
#include "juki/wire/frame.h"
#include "juki/wire/tls.h"
#include "sock.h"
#include "terminal.h"

#define PIN_MAX  256
#define PIN_BUF  (PIN_MAX + 1)
#define HOST_MAX 256
#define ADDR_MAX (HOST_MAX + 8)

/* The terminal file */

struct terminal_file {
	char *connect;
	char *cert;
	char *card;
	char *key;
	char *ca;
	char *crl;
	char *printer;
};

struct ctl_terminal_hold {
	struct terminal_file file;
};

static const struct juki_conf_key terminal_keys[] = {
    JUKI_CONF_SCALAR(struct terminal_file, connect, "connect", JUKI_CONF_ADDR, NULL, 0, 0, 0,
		     "host:port of the daemon's operator port."),
    JUKI_CONF_SCALAR(struct terminal_file, cert, "cert", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "The operator's certificate (PEM), urn:juki:op:<kind>:<id>:<operator>."),
    JUKI_CONF_SCALAR(struct terminal_file, card, "card", JUKI_CONF_STRING, NULL, 0, 0, 0,
		     "pkcs11: URI of the operator's key on the token."),
    JUKI_CONF_SCALAR(struct terminal_file, key, "key", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "Encrypted PKCS#8 key file, where there is no token (instead of card)."),
    JUKI_CONF_SCALAR(struct terminal_file, ca, "ca", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "The CA certificate(s) the daemon's certificate chains to (PEM)."),
    JUKI_CONF_SCALAR(struct terminal_file, crl, "crl", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "The CA's CRL (PEM)."),
    JUKI_CONF_SCALAR(struct terminal_file, printer, "printer", JUKI_CONF_STRING, NULL, 0, 0, 0,
		     "The terminal's own CUPS queue: certified copies are printed there and "
		     "nowhere else (第4-8(3)イ)."),
    JUKI_CONF_END,
};

void
ctl_terminal_hold_free(struct ctl_terminal_hold *hold)
{
	if (hold == NULL) {
		return;
	}
	juki_conf_free(terminal_keys, &hold->file);
	free(hold);
}

int
ctl_terminal_load(const char *path, struct ctl_terminal *t, struct ctl_terminal_hold **hold,
		  char *err, size_t errlen)
{
	struct ctl_terminal_hold *h;
	struct terminal_file *f;
	int rc;

	*hold = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	f = &h->file;
	rc = juki_conf_load(path, terminal_keys, f, err, errlen);
	if (rc != 0) {
		free(h);
		return rc;
	}
	if (f->card != NULL && strncasecmp(f->card, "pkcs11:", 7) != 0) {
		juki_seterr(err, errlen, "%s: card: not a pkcs11: URI", path);
		ctl_terminal_hold_free(h);
		return JUKI_ECONFIG;
	}
	if (f->card != NULL && f->key != NULL) {
		juki_seterr(
		    err, errlen,
		    "%s: card, key: one or the other (a key on a token, or an encrypted key "
		    "file)",
		    path);
		ctl_terminal_hold_free(h);
		return JUKI_ECONFIG;
	}
	t->connect = t->connect != NULL ? t->connect : f->connect;
	t->cert = t->cert != NULL ? t->cert : f->cert;
	t->ca = t->ca != NULL ? t->ca : f->ca;
	t->crl = t->crl != NULL ? t->crl : f->crl;
	t->printer = f->printer; /* the file's alone: no option names another printer */
	/* card and key are alternatives: an option naming either replaces both. */
	if (t->card == NULL && t->key == NULL) {
		t->card = f->card;
		t->key = f->key;
	}
	*hold = h;
	return 0;
}

/* PINs */

/*
 * Wait until fd is readable or, with sfd >= 0, a signal arrives on sfd
 * (*sig set).  Returns 0 or -errno.
 */
static int
wait_input(int fd, int sfd, int *sig)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};

	for (;;) {
		if (poll(p, sfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (sfd >= 0 && (p[1].revents & POLLIN) != 0) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				*sig = (int)si.ssi_signo;
				return 0;
			}
			continue;
		}
		if (p[0].revents != 0) {
			return 0;
		}
	}
}

/*
 * One line from fd, one byte at a time: whatever follows the line stays in
 * fd for the next reader, so one pipe can carry both PINs.
 */
static int
read_line(int fd, int sfd, const char *what, char *buf, size_t max, int *sig, char *err,
	  size_t errlen)
{
	size_t n = 0;
	int rc;

	*sig = 0;
	for (;;) {
		ssize_t r;
		char c;

		if (sfd >= 0) {
			rc = wait_input(fd, sfd, sig);
			if (rc != 0 || *sig != 0) {
				juki_seterr(err, errlen, "%s: %s", what,
					    rc != 0 ? strerror(-rc) : "interrupted");
				return rc != 0 ? rc : JUKI_EINVAL;
			}
		}
		r = read(fd, &c, 1);
		if (r < 0 && errno == EAGAIN) {
			rc = wait_input(fd, -1, sig);
			if (rc != 0) {
				juki_seterr(err, errlen, "%s: %s", what, strerror(-rc));
				return rc;
			}
			continue;
		}
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			rc = -errno;
			juki_seterr(err, errlen, "%s: %s", what, strerror(errno));
			return rc;
		}
		if (r == 0 || c == '\n') {
			break;
		}
		if (c == '\0') {
			juki_seterr(err, errlen, "%s: the line holds a NUL byte", what);
			return JUKI_EINVAL;
		}
		if (n >= max) {
			juki_seterr(err, errlen, "%s: longer than %zu bytes", what, max);
			return JUKI_EINVAL;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r') {
		n--;
	}
	buf[n] = '\0';
	if (n == 0) {
		juki_seterr(err, errlen, "%s: empty", what);
		return JUKI_EINVAL;
	}
	return 0;
}

/*
 * Echo off on /dev/tty, and back on whatever happens: the signals that end
 * a program at the keyboard are blocked and read through a signalfd while
 * we wait, and re-raised once the terminal is restored.
 */
static int
read_tty(const char *prompt, char *buf, size_t max, char *err, size_t errlen)
{
	struct termios saved, quiet;
	sigset_t set, old;
	int tty, sfd = -1, sig = 0;
	int rc;

	tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0) {
		juki_seterr(err, errlen, "no terminal to ask on (%s)", strerror(errno));
		return JUKI_EINVAL;
	}
	if (tcgetattr(tty, &saved) != 0) {
		juki_seterr(err, errlen, "/dev/tty: %s", strerror(errno));
		close(tty);
		return JUKI_EINVAL;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "signalfd: %s", strerror(errno));
		goto out;
	}
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL | ICANON;
	if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "/dev/tty: %s", strerror(errno));
		goto out;
	}
	if (prompt != NULL && write(tty, prompt, strlen(prompt)) < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "/dev/tty: %s", strerror(errno));
	} else {
		rc = read_line(tty, sfd, "the terminal", buf, max, &sig, err, errlen);
	}
	tcsetattr(tty, TCSAFLUSH, &saved);
out:
	if (sfd >= 0) {
		close(sfd);
	}
	close(tty);
	if (sig != 0) {
		/* pending while blocked, delivered as the mask comes back */
		raise(sig);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int
ctl_read_pin(int fd, const char *prompt, char *buf, size_t len, char *err, size_t errlen)
{
	char what[32];
	size_t max;
	int sig;
	int rc;

	if (buf == NULL || len < 2) {
		juki_seterr(err, errlen, "no room for a PIN");
		return JUKI_EINVAL;
	}
	max = len - 1 < PIN_MAX ? len - 1 : PIN_MAX;
	if (fd >= 0) {
		snprintf(what, sizeof(what), "fd %d", fd);
		rc = read_line(fd, -1, what, buf, max, &sig, err, errlen);
	} else {
		rc = read_tty(prompt, buf, max, err, errlen);
	}
	if (rc != 0) {
		OPENSSL_cleanse(buf, len);
	}
	return rc;
}

/* The session */

struct ctl_session {
	char addr[ADDR_MAX];
	int fd;
	SSL *ssl;
	struct juki_tls *tls;
	json_t *login;
	int64_t timeout_ms;
	int broken; /* an I/O failure: no more requests */
};

static int
tcp_connect(struct ctl_session *s, int64_t deadline, struct juki_ctl_error *err)
{
	char why[256];
	int rc = ctl_sock_connect(s->addr, deadline, &s->fd, why, sizeof(why));

	if (rc == JUKI_EINVAL) {
		juki_ctl_fail(err, "usage", "connect: %s is not host:port", s->addr);
	} else if (rc == JUKI_ENOENT) {
		juki_ctl_fail(err, "unreachable", "%s: %s", s->addr, why);
	} else if (rc != 0) {
		juki_ctl_fail(err, "unreachable", "connect %s: %s", s->addr, why);
	}
	return rc;
}

/* Why TLS failed, from the terminal's side, with the first OpenSSL error. */
static int
tls_failed(struct ctl_session *s, const char *what, struct juki_ctl_error *err)
{
	unsigned long e = ERR_peek_error();
	long v = SSL_get_verify_result(s->ssl);
	enum juki_tls_failure f = juki_tls_failure_of(s->ssl, e);
	char text[256] = "no detail";

	if (e != 0) {
		ERR_error_string_n(e, text, sizeof(text));
	}
	ERR_clear_error();
	if (v != X509_V_OK) {
		juki_ctl_fail(err, "unreachable",
			      "%s: %s: the daemon's certificate is refused: %s (%s)", s->addr, what,
			      X509_verify_cert_error_string(v), juki_tls_failure_name(f));
	} else if (f == JUKI_TLSF_REVOKED || f == JUKI_TLSF_UNKNOWN_CA || f == JUKI_TLSF_EXPIRED ||
		   f == JUKI_TLSF_NO_CERT) {
		juki_ctl_fail(err, "unreachable",
			      "%s: %s: the daemon refused the card's certificate (%s)", s->addr,
			      what, juki_tls_failure_name(f));
	} else if (e == 0) {
		juki_ctl_fail(err, "unreachable", "%s: %s: the daemon closed the connection",
			      s->addr, what);
	} else {
		juki_ctl_fail(err, "unreachable", "%s: %s: TLS failed (%s): %s", s->addr, what,
			      juki_tls_failure_name(f), text);
	}
	return JUKI_ETLS;
}

static int
handshake(struct ctl_session *s, int64_t deadline, struct juki_ctl_error *err)
{
	for (;;) {
		int r;
		int rc;

		ERR_clear_error();
		r = SSL_do_handshake(s->ssl);
		if (r == 1) {
			return 0;
		}
		rc = ctl_sock_ssl_wait(s->ssl, s->fd, r, deadline);
		if (rc == 1) {
			continue;
		}
		if (rc == JUKI_ETIMEDOUT) {
			juki_ctl_fail(err, "unreachable", "%s: TLS handshake: timed out", s->addr);
			return rc;
		}
		return tls_failed(s, "TLS handshake", err);
	}
}

static int
recv_frame(struct ctl_session *s, int64_t deadline, json_t **doc)
{
	struct evbuffer *in = evbuffer_new();
	unsigned char buf[16384];
	int rc;

	if (in == NULL) {
		return JUKI_ENOMEM;
	}
	for (;;) {
		size_t n = 0;

		rc = juki_frame_pull(in, JUKI_CONTROL_FRAME_MAX, doc);
		if (rc != 0) {
			break;
		}
		rc = ctl_sock_ssl_read(s->ssl, s->fd, buf, sizeof(buf), &n, deadline);
		if (rc != 0) {
			break;
		}
		if (evbuffer_add(in, buf, n) != 0) {
			rc = JUKI_ENOMEM;
			break;
		}
	}
	evbuffer_free(in);
	return rc == 1 ? 0 : rc;
}

static void
io_failed(struct ctl_session *s, const char *cmd, int rc, struct juki_ctl_error *err)
{
	s->broken = 1;
	switch (rc) {
	case JUKI_EJSON:
	case JUKI_EFRAME:
	case JUKI_ETOOBIG:
		juki_ctl_fail(err, "bad-response", "%s: %s: malformed response from the daemon: %s",
			      s->addr, cmd, juki_strerror(rc));
		break;
	case JUKI_ETLS:
		tls_failed(s, cmd, err);
		break;
	case JUKI_ECLOSED:
		juki_ctl_fail(err, "unreachable", "%s: %s: the daemon closed the connection",
			      s->addr, cmd);
		break;
	case JUKI_ETIMEDOUT:
		juki_ctl_fail(err, "unreachable", "%s: %s: no response within %lld ms", s->addr,
			      cmd, (long long)s->timeout_ms);
		break;
	default:
		juki_ctl_fail(err, "unreachable", "%s: %s: %s", s->addr, cmd, juki_strerror(rc));
		break;
	}
}

/*
 * Send req (borrowed) and read the response.  The serialised request is
 * wiped once sent: the login request carries the PIN.
 */
static int
exchange(struct ctl_session *s, const char *cmd, const json_t *req, json_t **result,
	 struct juki_ctl_error *err)
{
	int64_t deadline = juki_clock_mono_ms() + s->timeout_ms;
	struct evbuffer *out = NULL;
	json_t *resp = NULL;
	json_t *e;
	int rc;

	*result = NULL;
	if (s->broken) {
		juki_ctl_fail(err, "unreachable", "%s: the session has failed", s->addr);
		return JUKI_ECLOSED;
	}
	out = evbuffer_new();
	if (req == NULL || out == NULL) {
		juki_ctl_fail(err, "internal", "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	rc = juki_frame_push(out, req, JUKI_CONTROL_FRAME_MAX);
	if (rc != 0) {
		juki_ctl_fail(err, "usage", "%s: request too large", cmd);
		goto out;
	}
	{
		size_t len = evbuffer_get_length(out);
		unsigned char *data = evbuffer_pullup(out, -1);

		rc = data != NULL ? ctl_sock_ssl_write(s->ssl, s->fd, data, len, deadline)
				  : JUKI_ENOMEM;
		if (data != NULL) {
			OPENSSL_cleanse(data, len);
		}
	}
	if (rc == JUKI_ECLOSED) {
		/*
		 * A daemon that refused our certificate sent an alert and hung up,
		 * maybe before our write: the alert, still readable, says why.
		 */
		int why = recv_frame(s, deadline, &resp);

		json_decref(resp);
		resp = NULL;
		if (why == JUKI_ETLS) {
			rc = why;
		}
	}
	if (rc == 0) {
		rc = recv_frame(s, deadline, &resp);
	}
	if (rc != 0) {
		io_failed(s, cmd, rc, err);
		if (rc == JUKI_EJSON || rc == JUKI_EFRAME || rc == JUKI_ETOOBIG) {
			rc = JUKI_EPROTO;
		}
		goto out;
	}
	e = json_object_get(resp, "error");
	if (!json_is_integer(json_object_get(resp, "v")) ||
	    json_integer_value(json_object_get(resp, "v")) != JUKI_CONTROL_VERSION) {
		juki_ctl_fail(err, "bad-response", "%s: %s: response of another protocol version",
			      s->addr, cmd);
		rc = JUKI_EPROTO;
	} else if (json_is_true(json_object_get(resp, "ok"))) {
		*result = json_incref(json_object_get(resp, "result"));
		if (*result == NULL) {
			*result = json_object();
		}
		rc = 0;
	} else if (json_is_false(json_object_get(resp, "ok")) &&
		   json_is_string(json_object_get(e, "code"))) {
		const char *m = json_string_value(json_object_get(e, "message"));

		juki_ctl_fail(err, json_string_value(json_object_get(e, "code")), "%s",
			      m != NULL ? m : "");
		rc = JUKI_EINVAL;
	} else {
		juki_ctl_fail(err, "bad-response", "%s: %s: malformed response from the daemon",
			      s->addr, cmd);
		rc = JUKI_EPROTO;
	}
out:
	json_decref(resp);
	if (out != NULL) {
		evbuffer_free(out);
	}
	return rc;
}

int
ctl_session_call(struct ctl_session *s, const char *cmd, json_t *args, json_t **result,
		 struct juki_ctl_error *err)
{
	json_t *req;
	int rc;

	memset(err, 0, sizeof(*err));
	req = json_pack("{s:i,s:s,s:o}", "v", JUKI_CONTROL_VERSION, "cmd", cmd, "args",
			args != NULL ? args : json_object());
	rc = exchange(s, cmd, req, result, err);
	json_decref(req);
	return rc;
}

static int
login(struct ctl_session *s, const char *pin, struct juki_ctl_error *err)
{
	json_t *req;
	json_t *result = NULL;
	json_t *v;
	int rc;

	req = json_pack("{s:i,s:s,s:{s:s}}", "v", JUKI_CONTROL_VERSION, "cmd", "login", "args",
			"pin", pin);
	rc = exchange(s, "login", req, &result, err);
	v = json_object_get(json_object_get(req, "args"), "pin");
	if (json_is_string(v)) {
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
	json_decref(req);
	if (rc == 0 && !json_is_object(result)) {
		juki_ctl_fail(err, "bad-response", "%s: login: the result is not an object",
			      s->addr);
		rc = JUKI_EPROTO;
	}
	if (rc == 0) {
		s->login = result;
		return 0;
	}
	json_decref(result);
	if (strcmp(err->code, "wrong-pin") == 0) {
		rc = JUKI_EAUTH;
	} else if (strcmp(err->code, "locked") == 0) {
		rc = JUKI_ELOCKED;
	}
	return rc;
}

/* The daemon must be the node the operator's certificate names. */
static int
check_peer(struct ctl_session *s, struct juki_ctl_error *err)
{
	const struct juki_ident *self = juki_tls_self(s->tls);
	struct juki_ident node, peer;

	if (juki_ident_node(self->node_kind, self->id, &node) != 0) {
		juki_ctl_fail(err, "card", "%s names no node", self->urn);
		return JUKI_ECERT;
	}
	if (juki_tls_peer_ident(s->ssl, &peer) != 0) {
		juki_ctl_fail(err, "unreachable", "%s: the daemon's certificate names no identity",
			      s->addr);
		return JUKI_ECERT;
	}
	if (peer.kind != node.kind || strcmp(peer.id, node.id) != 0) {
		juki_ctl_fail(err, "unreachable",
			      "%s: wrong peer: it is %s, but the card's certificate is for %s",
			      s->addr, peer.urn, node.urn);
		return JUKI_ECERT;
	}
	return 0;
}

static int
terminal_valid(const struct ctl_terminal *t, int64_t timeout_ms, struct juki_ctl_error *err)
{
	if (t == NULL || t->connect == NULL) {
		juki_ctl_fail(err, "usage",
			      "no daemon to connect to: --connect HOST:PORT or connect: in the "
			      "terminal file");
	} else if (t->cert == NULL) {
		juki_ctl_fail(err, "usage",
			      "no card certificate: --cert FILE or cert: in the terminal file");
	} else if (t->ca == NULL) {
		juki_ctl_fail(err, "usage", "no CA file: --ca FILE or ca: in the terminal file");
	} else if ((t->card == NULL) == (t->key == NULL)) {
		juki_ctl_fail(err, "usage",
			      "the card: --card URI (a key on a token) or --key FILE (an "
			      "encrypted key file), one of the two");
	} else if (timeout_ms <= 0) {
		juki_ctl_fail(err, "usage", "the timeout must be positive");
	} else {
		return 0;
	}
	return JUKI_EINVAL;
}

/* The card's key and the TLS contexts made with it. */
static int
card_open(struct ctl_session *s, const struct ctl_terminal *t, struct juki_ctl_error *err)
{
	struct juki_tls_conf conf = {.cert = t->cert, .ca = t->ca, .crl = t->crl};
	const struct juki_ident *self;
	const char *card_pin = NULL;
	char pin[PIN_BUF];
	char why[512];
	EVP_PKEY *key = NULL;
	int rc;

	if (t->key != NULL || !ctl_card_uri_has_pin(t->card)) {
		rc = ctl_read_pin(t->card_pin_fd,
				  t->key != NULL ? "Key passphrase: " : "Card PIN: ", pin,
				  sizeof(pin), why, sizeof(why));
		if (rc != 0) {
			juki_ctl_fail(err, "usage", "%s: %s%s",
				      t->key != NULL ? "key passphrase" : "card PIN", why,
				      t->card_pin_fd < 0 ? " (or --card-pin-fd N)" : "");
			return rc;
		}
		card_pin = pin;
	}
	rc = ctl_card_key(t->card, t->key, card_pin, &key, why, sizeof(why));
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc == JUKI_EAUTH) {
		juki_ctl_fail(err, "wrong-pin", "card: %s", why);
		return rc;
	}
	if (rc != 0) {
		juki_ctl_fail(err, "card", "%s", why);
		return rc;
	}
	rc = juki_tls_new_key(&conf, key, &s->tls, why, sizeof(why));
	EVP_PKEY_free(key);
	if (rc != 0) {
		juki_ctl_fail(err, "card", "%s", why);
		return rc;
	}
	self = juki_tls_self(s->tls);
	if (self->kind != JUKI_KIND_OP) {
		juki_ctl_fail(err, "card", "certificate %s is for %s, not an operator", t->cert,
			      self->urn);
		return JUKI_ECERT;
	}
	return 0;
}

int
ctl_session_open(const struct ctl_terminal *t, int64_t timeout_ms, struct ctl_session **out,
		 struct juki_ctl_error *err)
{
	struct ctl_session *s = NULL;
	char pin[PIN_BUF];
	char why[512];
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	rc = terminal_valid(t, timeout_ms, err);
	if (rc != 0) {
		return rc;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		juki_ctl_fail(err, "internal", "out of memory");
		return JUKI_ENOMEM;
	}
	s->fd = -1;
	s->timeout_ms = timeout_ms;
	snprintf(s->addr, sizeof(s->addr), "%s", t->connect);
	rc = card_open(s, t, err);
	if (rc != 0) {
		goto out;
	}
	rc = tcp_connect(s, juki_clock_mono_ms() + timeout_ms, err);
	if (rc != 0) {
		goto out;
	}
	s->ssl = juki_tls_ssl_new(s->tls, JUKI_TLS_CLIENT);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
		juki_ctl_fail(err, "internal", "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	rc = handshake(s, juki_clock_mono_ms() + timeout_ms, err);
	if (rc == 0) {
		rc = check_peer(s, err);
	}
	if (rc != 0) {
		s->broken = 1;
		goto out;
	}
	/* Asked only now: an unreachable daemon or a refused card wastes no PIN. */
	rc = ctl_read_pin(t->pin_fd, "PIN: ", pin, sizeof(pin), why, sizeof(why));
	if (rc != 0) {
		juki_ctl_fail(err, "usage", "operator PIN: %s%s", why,
			      t->pin_fd < 0 ? " (or --pin-fd N)" : "");
		goto out;
	}
	rc = login(s, pin, err);
	OPENSSL_cleanse(pin, sizeof(pin));
out:
	if (rc != 0) {
		ctl_session_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

const json_t *
ctl_session_login(const struct ctl_session *s)
{
	return s != NULL ? s->login : NULL;
}

void
ctl_session_close(struct ctl_session *s)
{
	if (s == NULL) {
		return;
	}
	if (s->ssl != NULL && !s->broken && SSL_is_init_finished(s->ssl)) {
		/* one close_notify, without waiting for the daemon's */
		SSL_shutdown(s->ssl);
	}
	SSL_free(s->ssl);
	if (s->fd >= 0) {
		close(s->fd);
	}
	/* the SSL_CTX held the card's key: for a token, this finishes the engine */
	juki_tls_free(s->tls);
	json_decref(s->login);
	free(s);
	ERR_clear_error();
}
