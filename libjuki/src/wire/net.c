#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/wire/frame.h"
#include "juki/wire/net.h"

/* How long close_after_flush waits for the kernel to take the last bytes. */
#define FLUSH_LIMIT_MS 3000
#define FLUSH_POLL_MS  10

static void
ms_to_tv(int64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

void
juki_net_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;

		/* sun_path need not hold a NUL when the path fills it. */
		snprintf(buf, len, "unix:%.*s", (int)sizeof(un->sun_path), un->sun_path);
		break;
	}
	default:
		snprintf(buf, len, "?");
	}
}

void
juki_net_peer_text(evutil_socket_t fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	/* An unnamed UNIX peer fills in no path at all. */
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	juki_net_addr_text((struct sockaddr *)&ss, buf, len);
}

/*
 * Requests, answers and acks are small and wait for each other: Nagle's
 * algorithm against delayed ACKs would add tens of milliseconds per step.
 */
static void
set_nodelay(evutil_socket_t fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * "host:port" or "[v6]:port", port 0..65535 (0: any, for listeners); numeric
 * hosts need no lookup, names go through the resolver (blocking, at setup).
 */
static int
resolve(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
	char host[256];
	const char *colon, *h, *port;
	struct addrinfo hints, *res = NULL;
	size_t hlen, plen;

	*sslen = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr) {
		return JUKI_EFORMAT;
	}
	port = colon + 1;
	plen = strlen(port);
	if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || atol(port) > 65535) {
		return JUKI_EFORMAT;
	}
	h = addr;
	hlen = (size_t)(colon - addr);
	if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']') {
			return JUKI_EFORMAT;
		}
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen) != NULL) {
		/* An IPv6 address needs its brackets, or the port is ambiguous. */
		return JUKI_EFORMAT;
	}
	if (hlen >= sizeof(host)) {
		return JUKI_EFORMAT;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		return JUKI_ENOENT;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = (int)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct juki_listener {
	struct evconnlistener *lev;
	juki_accept_cb cb;
	void *arg;
	char addr[160];
	char *unix_path;
};

static void
listener_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
		void *arg)
{
	struct juki_listener *l = arg;
	struct sockaddr_storage ss;

	(void)lev;
	/* Only len bytes are the address (an unnamed UNIX peer has no path): pad with NULs. */
	memset(&ss, 0, sizeof(ss));
	if (len > 0 && (size_t)len <= sizeof(ss)) {
		memcpy(&ss, sa, (size_t)len);
	} else {
		ss.ss_family = sa->sa_family;
	}
	l->cb(fd, (struct sockaddr *)&ss, len, l->arg);
}

static int
listener_bind(struct event_base *base, const struct sockaddr *sa, int len, juki_accept_cb cb,
	      void *arg, struct juki_listener **out)
{
	struct juki_listener *l;
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return JUKI_ENOMEM;
	}
	l->cb = cb;
	l->arg = arg;
	l->lev = evconnlistener_new_bind(
	    base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128, sa, len);
	if (l->lev == NULL) {
		int rc = -errno;

		free(l);
		return rc != 0 ? rc : JUKI_EIO;
	}
	if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&bound, &bl) == 0) {
		juki_net_addr_text((struct sockaddr *)&bound, l->addr, sizeof(l->addr));
	}
	*out = l;
	return 0;
}

int
juki_net_listen(struct event_base *base, const char *addr, juki_accept_cb cb, void *arg,
		struct juki_listener **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int len, rc;

	*out = NULL;
	rc = resolve(addr, &ss, &len);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: not a host:port address", addr);
		return rc;
	}
	rc = listener_bind(base, (struct sockaddr *)&ss, len, cb, arg, out);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", addr, juki_strerror(rc));
	}
	return rc;
}

int
juki_net_listen_unix(struct event_base *base, const char *path, int mode, juki_accept_cb cb,
		     void *arg, struct juki_listener **out, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int rc;

	*out = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return JUKI_ENAMETOOLONG;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and is not a socket",
				 path);
			return JUKI_EEXIST;
		}
		unlink(path);
	}
	/* Create the socket file with no permissions for others at all, then widen. */
	old = umask(0177);
	rc = listener_bind(base, (struct sockaddr *)&sun, (int)sizeof(sun), cb, arg, out);
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "control socket %s: %s", path, juki_strerror(rc));
		return rc;
	}
	if (chmod(path, (mode_t)mode) != 0) {
		rc = -errno;
		snprintf(err, errlen, "control socket %s: chmod: %s", path, strerror(errno));
		juki_listener_free(*out);
		*out = NULL;
		return rc;
	}
	(*out)->unix_path = strdup(path);
	snprintf((*out)->addr, sizeof((*out)->addr), "unix:%s", path);
	return 0;
}

void
juki_listener_free(struct juki_listener *listener)
{
	if (listener == NULL) {
		return;
	}
	evconnlistener_free(listener->lev);
	if (listener->unix_path != NULL) {
		unlink(listener->unix_path);
		free(listener->unix_path);
	}
	free(listener);
}

const char *
juki_listener_addr(const struct juki_listener *listener)
{
	return listener->addr;
}

/*
 * Steps in progress belong to a group, so that their owner can cancel them
 * all when it stops: every pending step holds a bufferevent (freed on
 * cancel) and maybe a timer.  Each kind of step starts with this record.
 */
enum pending_kind {
	PENDING_TLS,
	PENDING_LINE,
	PENDING_FLUSH,
};

struct pending {
	enum pending_kind kind;
	struct juki_net_group *group;
	struct pending *prev, *next;
	struct bufferevent *bev;
	struct event *timer;
};

struct juki_net_group {
	struct event_base *base;
	struct pending *head;
};

struct juki_net_group *
juki_net_group_new(struct event_base *base)
{
	struct juki_net_group *g = calloc(1, sizeof(*g));

	if (g != NULL) {
		g->base = base;
	}
	return g;
}

struct event_base *
juki_net_group_base(const struct juki_net_group *group)
{
	return group->base;
}

static void
pending_add(struct juki_net_group *g, struct pending *p, enum pending_kind kind)
{
	p->kind = kind;
	p->group = g;
	p->prev = NULL;
	p->next = g->head;
	if (g->head != NULL) {
		g->head->prev = p;
	}
	g->head = p;
}

/* Take p off its group and release its timer; the bufferevent is the caller's. */
static void
pending_done(struct pending *p)
{
	if (p->prev != NULL) {
		p->prev->next = p->next;
	} else {
		p->group->head = p->next;
	}
	if (p->next != NULL) {
		p->next->prev = p->prev;
	}
	if (p->timer != NULL) {
		event_free(p->timer);
	}
	free(p);
}

void
juki_net_group_free(struct juki_net_group *group)
{
	struct pending *p;

	if (group == NULL) {
		return;
	}
	while ((p = group->head) != NULL) {
		if (p->bev != NULL) {
			bufferevent_free(p->bev);
		}
		pending_done(p);
	}
	free(group);
}

int64_t
juki_net_deadline(int64_t budget_ms)
{
	return juki_clock_mono_ms() + (budget_ms > 0 ? budget_ms : 0);
}

int64_t
juki_net_left(int64_t deadline, int64_t step_ms)
{
	int64_t left = deadline - juki_clock_mono_ms();

	if (left < 0) {
		left = 0;
	}
	return step_ms < left ? step_ms : left;
}

/* One TLS handshake in progress; its timer bounds it in total. */
struct tls_step {
	struct pending p;
	juki_tls_step_cb cb;
	void *arg;
	int has_expect;
	struct juki_ident expect;
};

static void
step_fail(struct tls_step *st, enum juki_tls_failure failure, const char *why)
{
	juki_tls_step_cb cb = st->cb;
	void *arg = st->arg;

	if (st->p.bev != NULL) {
		bufferevent_free(st->p.bev);
	}
	pending_done(&st->p);
	cb(NULL, NULL, failure, why, arg);
}

static void
step_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_step *st = arg;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct juki_ident peer;
	char why[512];

	if (what & BEV_EVENT_CONNECTED) {
		juki_tls_step_cb cb = st->cb;
		void *cbarg = st->arg;

		if (juki_tls_peer_ident(ssl, &peer) != 0) {
			step_fail(st, JUKI_TLSF_NO_IDENTITY, "peer certificate names no identity");
			return;
		}
		if (st->has_expect && strcmp(peer.urn, st->expect.urn) != 0) {
			snprintf(why, sizeof(why), "expected %s, peer is %s", st->expect.urn,
				 peer.urn);
			step_fail(st, JUKI_TLSF_WRONG_PEER, why);
			return;
		}
		set_nodelay(bufferevent_getfd(bev));
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		pending_done(&st->p);
		cb(bev, &peer, JUKI_TLSF_NONE, NULL, cbarg);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e, first = 0;
		enum juki_tls_failure f;
		int saved = EVUTIL_SOCKET_ERROR();

		while ((e = bufferevent_get_openssl_error(bev)) != 0) {
			if (first == 0) {
				first = e;
			}
		}
		f = juki_tls_failure_of(ssl, first);
		if (first != 0) {
			char ebuf[160];

			ERR_error_string_n(first, ebuf, sizeof(ebuf));
			snprintf(why, sizeof(why), "%s: %s", juki_tls_failure_name(f), ebuf);
		} else if (saved != 0) {
			snprintf(why, sizeof(why), "%s: %s", juki_tls_failure_name(f),
				 evutil_socket_error_to_string(saved));
		} else {
			snprintf(why, sizeof(why), "%s", juki_tls_failure_name(f));
		}
		ERR_clear_error();
		step_fail(st, f, why);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		int saved = EVUTIL_SOCKET_ERROR();
		evutil_socket_t fd = bufferevent_getfd(bev);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		/* A connect that failed ends here as a dirty shutdown; errno says why. */
		if (saved != 0 && fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
			snprintf(why, sizeof(why), "connect: %s",
				 evutil_socket_error_to_string(saved));
			step_fail(st, JUKI_TLSF_PROTOCOL, why);
			return;
		}
		step_fail(st, JUKI_TLSF_PROTOCOL, "connection closed during handshake");
	}
}

static void
step_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	step_fail(arg, JUKI_TLSF_TIMEOUT, "handshake timed out");
}

static struct tls_step *
step_new(struct juki_net_group *g, const struct juki_ident *expect, int64_t timeout_ms,
	 juki_tls_step_cb cb, void *arg)
{
	struct tls_step *st;
	struct timeval tv;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		return NULL;
	}
	st->cb = cb;
	st->arg = arg;
	if (expect != NULL) {
		st->has_expect = 1;
		st->expect = *expect;
	}
	st->p.timer = evtimer_new(g->base, step_timeout, st);
	if (st->p.timer == NULL) {
		free(st);
		return NULL;
	}
	pending_add(g, &st->p, PENDING_TLS);
	ms_to_tv(timeout_ms, &tv);
	evtimer_add(st->p.timer, &tv);
	return st;
}

static void
step_start(struct tls_step *st)
{
	bufferevent_openssl_set_allow_dirty_shutdown(st->p.bev, 1);
	bufferevent_setcb(st->p.bev, NULL, NULL, step_event, st);
	bufferevent_enable(st->p.bev, EV_READ | EV_WRITE);
}

int
juki_net_accept_tls(struct juki_net_group *group, struct juki_tls *tls, evutil_socket_t fd,
		    int64_t timeout_ms, juki_tls_step_cb cb, void *arg)
{
	struct tls_step *st;
	SSL *ssl;

	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	set_nodelay(fd);
	st = step_new(group, NULL, timeout_ms, cb, arg);
	ssl = juki_tls_ssl_new(tls, JUKI_TLS_SERVER);
	if (st != NULL && ssl != NULL) {
		st->p.bev = bufferevent_openssl_socket_new(
		    group->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	}
	if (st == NULL || st->p.bev == NULL) {
		if (st != NULL) {
			pending_done(&st->p);
		}
		SSL_free(ssl);
		evutil_closesocket(fd);
		return JUKI_ENOMEM;
	}
	step_start(st);
	return 0;
}

int
juki_net_connect_tls(struct juki_net_group *group, struct juki_tls *tls, const char *addr,
		     const struct juki_ident *expect, int64_t timeout_ms, juki_tls_step_cb cb,
		     void *arg)
{
	struct sockaddr_storage ss;
	struct tls_step *st;
	SSL *ssl = NULL;
	int len, rc;

	rc = resolve(addr, &ss, &len);
	if (rc != 0) {
		return rc;
	}
	st = step_new(group, expect, timeout_ms, cb, arg);
	if (st != NULL) {
		ssl = juki_tls_ssl_new(tls, JUKI_TLS_CLIENT);
	}
	/*
	 * libevent makes the socket itself (it ignores one handed to an SSL
	 * bufferevent that has still to connect), so TCP_NODELAY waits for the
	 * end of the handshake.  Deferred callbacks: a connect that fails at
	 * once must not call back before we return.
	 */
	if (ssl != NULL) {
		st->p.bev =
		    bufferevent_openssl_socket_new(group->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	}
	if (st == NULL || st->p.bev == NULL) {
		if (st != NULL) {
			pending_done(&st->p);
		}
		SSL_free(ssl);
		return JUKI_ENOMEM;
	}
	step_start(st);
	/* A failure to connect arrives as BEV_EVENT_ERROR in step_event(). */
	bufferevent_socket_connect(st->p.bev, (struct sockaddr *)&ss, len);
	return 0;
}

int
juki_net_wrap_tls(struct juki_net_group *group, struct juki_tls *tls, struct bufferevent *under,
		  enum juki_tls_role role, const struct juki_ident *expect, int64_t timeout_ms,
		  juki_tls_step_cb cb, void *arg)
{
	struct tls_step *st;
	SSL *ssl = NULL;

	st = step_new(group, expect, timeout_ms, cb, arg);
	if (st != NULL) {
		ssl = juki_tls_ssl_new(tls, role);
	}
	if (ssl != NULL) {
		st->p.bev = bufferevent_openssl_filter_new(group->base, under, ssl,
							   role == JUKI_TLS_SERVER
							       ? BUFFEREVENT_SSL_ACCEPTING
							       : BUFFEREVENT_SSL_CONNECTING,
							   BEV_OPT_CLOSE_ON_FREE);
	}
	if (st == NULL || st->p.bev == NULL) {
		if (st != NULL) {
			pending_done(&st->p);
		}
		SSL_free(ssl);
		bufferevent_free(under);
		return JUKI_ENOMEM;
	}
	step_start(st);
	return 0;
}

struct line_step {
	struct pending p;
	size_t max;
	juki_line_cb cb;
	void *arg;
};

static void
line_done(struct bufferevent *bev, struct line_step *ls, const char *line, int rc)
{
	juki_line_cb cb = ls->cb;
	void *arg = ls->arg;

	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	pending_done(&ls->p);
	cb(bev, line, rc, arg);
}

static void
line_read(struct bufferevent *bev, void *arg)
{
	struct line_step *ls = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	size_t eol_len = 0, n;
	char line[JUKI_LINE_MAX + 1];

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > ls->max) {
			line_done(bev, ls, NULL, JUKI_ETOOBIG);
		}
		return;
	}
	n = (size_t)eol.pos;
	if (n > ls->max) {
		line_done(bev, ls, NULL, JUKI_ETOOBIG);
		return;
	}
	evbuffer_remove(in, line, n);
	evbuffer_drain(in, eol_len);
	line[n] = '\0';
	if (n > 0 && line[n - 1] == '\r') {
		line[--n] = '\0';
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
			line_done(bev, ls, NULL, JUKI_EFORMAT);
			return;
		}
	}
	line_done(bev, ls, line, 0);
}

static void
line_event(struct bufferevent *bev, short what, void *arg)
{
	line_done(bev, arg, NULL, (what & BEV_EVENT_TIMEOUT) ? JUKI_ETIMEDOUT : JUKI_ECLOSED);
}

static void
line_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct line_step *ls = arg;

	(void)fd;
	(void)what;
	line_done(ls->p.bev, ls, NULL, JUKI_ETIMEDOUT);
}

void
juki_net_read_line(struct juki_net_group *group, struct bufferevent *bev, size_t max,
		   int64_t timeout_ms, juki_line_cb cb, void *arg)
{
	struct line_step *ls;
	struct timeval tv;

	ls = calloc(1, sizeof(*ls));
	if (ls == NULL || (ls->p.timer = evtimer_new(group->base, line_timeout, ls)) == NULL) {
		free(ls);
		cb(bev, NULL, JUKI_ENOMEM, arg);
		return;
	}
	pending_add(group, &ls->p, PENDING_LINE);
	ls->p.bev = bev;
	ls->max = max == 0 || max > JUKI_LINE_MAX ? JUKI_LINE_MAX : max;
	ls->cb = cb;
	ls->arg = arg;
	/*
	 * A timer, not the bufferevent's read timeout: that one is re-armed by
	 * every byte, and a peer sending one byte at a time would hold the
	 * connection for as long as it likes.
	 */
	ms_to_tv(timeout_ms, &tv);
	evtimer_add(ls->p.timer, &tv);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setcb(bev, line_read, NULL, line_event, ls);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		line_read(bev, ls);
	}
}

int
juki_net_parse_request(const char *line, const char *verb, struct juki_ident *ident,
		       enum juki_service *svc, const char **why)
{
	const char *p = line, *sp;
	char token[JUKI_URN_MAX];
	size_t vlen = strlen(verb), n;

	*svc = JUKI_SVC_NONE;
	memset(ident, 0, sizeof(*ident));
	if (strncmp(p, verb, vlen) != 0 || p[vlen] != ' ') {
		*why = "expected <verb> <urn> <service>";
		return JUKI_EFORMAT;
	}
	p += vlen + 1;
	sp = strchr(p, ' ');
	n = sp ? (size_t)(sp - p) : 0;
	if (sp == NULL || n == 0 || n >= sizeof(token)) {
		*why = "expected <verb> <urn> <service>";
		return JUKI_EFORMAT;
	}
	memcpy(token, p, n);
	token[n] = '\0';
	if (juki_ident_parse(token, ident) != 0 || ident->kind == JUKI_KIND_OP) {
		memset(ident, 0, sizeof(*ident));
		*why = "not a node identity";
		return JUKI_EFORMAT;
	}
	p = sp + 1;
	if (strchr(p, ' ') != NULL || (*svc = juki_service_parse(p)) == JUKI_SVC_NONE) {
		*svc = JUKI_SVC_NONE;
		memset(ident, 0, sizeof(*ident));
		*why = "unknown service";
		return JUKI_EFORMAT;
	}
	return 0;
}

int
juki_net_write_line(struct bufferevent *bev, const char *text)
{
	if (bufferevent_write(bev, text, strlen(text)) != 0 ||
	    bufferevent_write(bev, "\n", 1) != 0) {
		return JUKI_ENOMEM;
	}
	return 0;
}

/* A bufferevent on its way out: written out, then freed. */
struct flush_step {
	struct pending p;
};

static void
flush_written(struct bufferevent *bev, void *arg)
{
	struct flush_step *fs = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_free(bev);
		pending_done(&fs->p);
	}
}

static void
flush_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	bufferevent_free(bev);
	pending_done(&((struct flush_step *)arg)->p);
}

void
juki_net_close_after_flush(struct juki_net_group *group, struct bufferevent *bev,
			   int64_t timeout_ms)
{
	struct flush_step *fs;
	struct timeval tv;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 ||
	    (fs = calloc(1, sizeof(*fs))) == NULL) {
		bufferevent_free(bev);
		return;
	}
	pending_add(group, &fs->p, PENDING_FLUSH);
	fs->p.bev = bev;
	ms_to_tv(timeout_ms, &tv);
	bufferevent_setcb(bev, NULL, flush_written, flush_event, fs);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_disable(bev, EV_READ);
	bufferevent_enable(bev, EV_WRITE);
}

void
juki_net_deny(struct juki_net_group *group, struct bufferevent *bev, const char *code,
	      const char *text, int64_t timeout_ms)
{
	char line[JUKI_LINE_MAX];

	snprintf(line, sizeof(line), "DENY %s %s", code, text);
	juki_net_write_line(bev, line);
	juki_net_close_after_flush(group, bev, timeout_ms);
}

struct juki_chan {
	struct bufferevent *bev;
	struct juki_ident peer;
	char service[16];
	size_t frame_max;
	struct juki_chan_cbs cbs;
	void *arg;
	struct event *flush_timer;
	int64_t flush_deadline;
};

static void
chan_read(struct bufferevent *bev, void *arg)
{
	struct juki_chan *chan = arg;

	(void)bev;
	if (chan->cbs.readable != NULL) {
		chan->cbs.readable(chan, chan->arg);
	}
}

static void
chan_write(struct bufferevent *bev, void *arg)
{
	struct juki_chan *chan = arg;

	(void)bev;
	if (chan->cbs.drained != NULL) {
		chan->cbs.drained(chan, chan->arg);
	}
}

static void
chan_event(struct bufferevent *bev, short what, void *arg)
{
	struct juki_chan *chan = arg;
	const char *why = "closed by the peer (EOF)";
	int rc = JUKI_ECLOSED;
	char buf[200];

	if (what & BEV_EVENT_TIMEOUT) {
		why = "idle timeout";
		rc = JUKI_ETIMEDOUT;
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		int saved = EVUTIL_SOCKET_ERROR();

		/* A TLS alert or error by its name; else errno; errno 0 is no reason but EOF. */
		if (e != 0) {
			const char *r = ERR_reason_error_string(e);

			if (r != NULL) {
				snprintf(buf, sizeof(buf), "TLS: %s", r);
			} else {
				ERR_error_string_n(e, buf, sizeof(buf));
			}
			why = buf;
			while (bufferevent_get_openssl_error(bev) != 0) {
			}
			rc = JUKI_EIO;
		} else if (saved != 0) {
			snprintf(buf, sizeof(buf), "%s", evutil_socket_error_to_string(saved));
			why = buf;
			rc = JUKI_EIO;
		}
		ERR_clear_error();
	}
	chan->cbs.closed(chan, rc, why, chan->arg);
}

struct juki_chan *
juki_chan_new(struct bufferevent *bev, const struct juki_ident *peer, const char *service,
	      size_t frame_max, int64_t idle_ms, const struct juki_chan_cbs *cbs, void *arg)
{
	struct juki_chan *chan;

	chan = calloc(1, sizeof(*chan));
	if (chan == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	chan->bev = bev;
	chan->peer = *peer;
	snprintf(chan->service, sizeof(chan->service), "%s", service);
	chan->frame_max = frame_max;
	chan->cbs = *cbs;
	chan->arg = arg;
	if (idle_ms > 0) {
		struct timeval tv;

		ms_to_tv(idle_ms, &tv);
		bufferevent_set_timeouts(bev, &tv, NULL);
	} else {
		bufferevent_set_timeouts(bev, NULL, NULL);
	}
	bufferevent_setcb(bev, chan_read, chan_write, chan_event, chan);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/*
	 * Frames that came in with the end of the handshake are buffered
	 * already, and no read event will announce them: announce them from the
	 * loop (not from here, before the caller holds chan).
	 */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	}
	return chan;
}

int
juki_chan_recv(struct juki_chan *chan, json_t **doc)
{
	return juki_frame_pull(bufferevent_get_input(chan->bev), chan->frame_max, doc);
}

int
juki_chan_recv_text(struct juki_chan *chan, json_t **doc, char **text, size_t *len)
{
	return juki_frame_pull_text(bufferevent_get_input(chan->bev), chan->frame_max, doc, text,
				    len);
}

int
juki_chan_recv_raw(struct juki_chan *chan, char **text, size_t *len)
{
	return juki_frame_pull_raw(bufferevent_get_input(chan->bev), chan->frame_max, text, len);
}

int
juki_chan_send(struct juki_chan *chan, const json_t *doc)
{
	return juki_frame_push(bufferevent_get_output(chan->bev), doc, chan->frame_max);
}

int
juki_chan_send_raw(struct juki_chan *chan, const char *payload, size_t len)
{
	return juki_frame_push_raw(bufferevent_get_output(chan->bev), payload, len,
				   chan->frame_max);
}

static size_t
pending_bytes(struct bufferevent *bev)
{
	size_t n = 0;

	for (; bev != NULL; bev = bufferevent_get_underlying(bev)) {
		n += evbuffer_get_length(bufferevent_get_output(bev));
	}
	return n;
}

size_t
juki_chan_pending(const struct juki_chan *chan)
{
	return pending_bytes(chan->bev);
}

static void
flush_check(evutil_socket_t fd, short what, void *arg)
{
	struct juki_chan *chan = arg;
	struct timeval tv = {0, FLUSH_POLL_MS * 1000};

	(void)fd;
	(void)what;
	/* Each layer of a stacked session owns an output buffer; all must drain. */
	if (pending_bytes(chan->bev) == 0 || juki_clock_mono_ms() >= chan->flush_deadline) {
		juki_chan_free(chan);
		return;
	}
	evtimer_add(chan->flush_timer, &tv);
}

void
juki_chan_close_after_flush(struct juki_chan *chan)
{
	struct timeval tv = {0, 0};

	bufferevent_disable(chan->bev, EV_READ);
	bufferevent_setcb(chan->bev, NULL, NULL, NULL, NULL);
	chan->flush_deadline = juki_clock_mono_ms() + FLUSH_LIMIT_MS;
	chan->flush_timer = evtimer_new(bufferevent_get_base(chan->bev), flush_check, chan);
	if (chan->flush_timer == NULL) {
		juki_chan_free(chan);
		return;
	}
	evtimer_add(chan->flush_timer, &tv);
}

const struct juki_ident *
juki_chan_peer(const struct juki_chan *chan)
{
	return &chan->peer;
}

SSL *
juki_chan_ssl(const struct juki_chan *chan)
{
	return bufferevent_openssl_get_ssl(chan->bev);
}

const char *
juki_chan_service(const struct juki_chan *chan)
{
	return chan->service;
}

void
juki_chan_set_arg(struct juki_chan *chan, void *arg)
{
	chan->arg = arg;
}

void
juki_chan_free(struct juki_chan *chan)
{
	if (chan == NULL) {
		return;
	}
	if (chan->flush_timer != NULL) {
		event_free(chan->flush_timer);
	}
	bufferevent_free(chan->bev);
	free(chan);
}
