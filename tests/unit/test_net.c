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
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/frame.h"
#include "juki/wire/net.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * The group shares a temp dir with a PKI ("pki": fwgate:east, cs:131016,
 * cs:271004) and a second CA ("other") that also issued a cs:131016; each
 * case gets a fresh event base.
 */
struct fix {
	char tmp[64];
	char pki[128];
	char other[128];
	char err[512];
	struct juki_tls *gw;       /* urn:juki:fwgate:east */
	struct juki_tls *cs;       /* urn:juki:cs:131016 */
	struct juki_tls *cs2;      /* urn:juki:cs:271004 */
	struct juki_tls *stranger; /* urn:juki:cs:131016 from the other CA */
	struct event_base *base;
	struct juki_net_group *group; /* the steps of a test; cancelled at its end */
};

#define GW_URN  "urn:juki:fwgate:east"
#define CS_URN  "urn:juki:cs:131016"
#define CS2_URN "urn:juki:cs:271004"

/* Every wait in these tests is bounded by this; none comes near it. */
#define WAIT_MS 5000

static struct juki_tls *
load_tls(struct fix *f, const char *pki, const char *name)
{
	char cert[256], key[256], ca[256], crl[256];
	struct juki_tls_conf conf = {.cert = cert, .key = key, .ca = ca, .crl = crl};
	struct juki_tls *tls = NULL;

	snprintf(cert, sizeof(cert), "%s/%s.crt", pki, name);
	snprintf(key, sizeof(key), "%s/%s.key", pki, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", pki);
	if (juki_tls_new(&conf, &tls, f->err, sizeof(f->err)) != 0) {
		return NULL;
	}
	return tls;
}

static int
group_setup(void **state)
{
	static const char *const urns[] = {GW_URN, CS_URN, CS2_URN};
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	*state = f;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "net") == NULL) {
		return -1;
	}
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->other, sizeof(f->other), "%s/other", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 30, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_init_ca(f->other, "another CA", 30, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->other, CS_URN, 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	for (size_t i = 0; i < sizeof(urns) / sizeof(urns[0]); i++) {
		if (juki_pki_issue(f->pki, urns[i], 30, NULL, f->err, sizeof(f->err)) != 0) {
			return -1;
		}
	}
	f->gw = load_tls(f, f->pki, "fwgate-east");
	f->cs = load_tls(f, f->pki, "cs-131016");
	f->cs2 = load_tls(f, f->pki, "cs-271004");
	f->stranger = load_tls(f, f->other, "cs-131016");
	return f->gw && f->cs && f->cs2 && f->stranger ? 0 : -1;
}

static int
group_teardown(void **state)
{
	struct fix *f = *state;
	int rc = 0;

	if (f == NULL) {
		return 0;
	}
	juki_tls_free(f->gw);
	juki_tls_free(f->cs);
	juki_tls_free(f->cs2);
	juki_tls_free(f->stranger);
	if (f->tmp[0] != '\0') {
		rc = test_rm_rf(f->tmp);
	}
	free(f);
	ERR_clear_error();
	return rc;
}

static int
setup(void **state)
{
	struct fix *f = *state;

	f->base = event_base_new();
	f->group = f->base != NULL ? juki_net_group_new(f->base) : NULL;
	return f->group != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	juki_net_group_free(f->group);
	f->group = NULL;
	event_base_free(f->base);
	f->base = NULL;
	ERR_clear_error();
	return 0;
}

/* Event-driven waiting: run the loop until *counter reaches want, or timeout_ms passes. */

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

typedef int (*cond_fn)(void *arg);

static int
run_until_fn(struct event_base *base, cond_fn done, void *arg, int64_t timeout_ms)
{
	int64_t deadline = juki_clock_mono_ms() + timeout_ms;
	struct event *t = evtimer_new(base, tick, NULL);
	struct timeval tv = {0, 20000};
	int ok;

	assert_non_null(t);
	while (!(ok = done(arg)) && juki_clock_mono_ms() < deadline) {
		/* The tick bounds each turn, so the deadline is seen even when nothing happens. */
		evtimer_add(t, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(t);
	return ok;
}

struct count_cond {
	const int *counter;
	int want;
};

static int
count_reached(void *arg)
{
	struct count_cond *c = arg;

	return *c->counter >= c->want;
}

static int
run_until(struct event_base *base, const int *counter, int want, int64_t timeout_ms)
{
	struct count_cond c = {counter, want};

	return run_until_fn(base, count_reached, &c, timeout_ms);
}

static int
never(void *arg)
{
	(void)arg;
	return 0;
}

/* Run the loop for ms, for "nothing more happens" checks. */
static void
run_for(struct event_base *base, int64_t ms)
{
	run_until_fn(base, never, NULL, ms);
}

struct input_cond {
	struct bufferevent *bev;
	size_t want;
};

static int
input_reached(void *arg)
{
	struct input_cond *c = arg;

	return evbuffer_get_length(bufferevent_get_input(c->bev)) >= c->want;
}

static void
write_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void
nonblocking_pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_int_equal(evutil_make_socket_nonblocking(fds[0]), 0);
	assert_int_equal(evutil_make_socket_nonblocking(fds[1]), 0);
}

/* A TCP port on 127.0.0.1 that refuses connections: bound, never listening. */
static int
closed_port(char *addr, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

/* A plain TCP client connected to addr ("127.0.0.1:port"). */
static int
tcp_connect(const char *addr)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	int fd;

	assert_int_equal(evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sl), 0);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, (socklen_t)sl), 0);
	return fd;
}

static void
local_text(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	juki_net_addr_text((struct sockaddr *)&ss, buf, len);
}

/* Listeners. */

struct acceptor {
	struct fix *f;
	int accepted;
	int fd;
	char peer[160];
	/* When tls is set, each connection goes straight into juki_net_accept_tls(). */
	struct juki_tls *tls;
	int64_t timeout_ms;
	struct step *result;
};

struct step {
	int done;
	struct bufferevent *bev;
	struct juki_ident peer;
	enum juki_tls_failure failure;
	char why[512];
	int64_t at_ms;
};

static void
step_cb(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure failure,
	const char *why, void *arg)
{
	struct step *s = arg;

	s->done++;
	s->bev = bev;
	s->failure = failure;
	s->at_ms = juki_clock_mono_ms();
	memset(&s->peer, 0, sizeof(s->peer));
	if (peer != NULL) {
		s->peer = *peer;
	}
	snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
}

static void
on_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
	struct acceptor *a = arg;

	assert_true(len > 0);
	a->accepted++;
	juki_net_addr_text(sa, a->peer, sizeof(a->peer));
	if (a->tls == NULL) {
		a->fd = fd;
		return;
	}
	assert_int_equal(
	    juki_net_accept_tls(a->f->group, a->tls, fd, a->timeout_ms, step_cb, a->result), 0);
}

static void
test_listen_tcp(void **state)
{
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l = NULL, *l2 = (struct juki_listener *)&a;
	char want[160], text[160];
	const char *addr;
	int c;

	assert_int_equal(
	    juki_net_listen(f->base, "127.0.0.1:0", on_accept, &a, &l, f->err, sizeof(f->err)), 0);
	addr = juki_listener_addr(l);
	/* Port 0 is resolved to the port the kernel chose. */
	assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
	assert_true(atoi(addr + 10) > 0);
	assert_string_not_equal(addr, "127.0.0.1:0");

	c = tcp_connect(addr);
	assert_true(run_until(f->base, &a.accepted, 1, WAIT_MS));
	local_text(c, want, sizeof(want));
	assert_string_equal(a.peer, want);
	/* Each end names the other. */
	juki_net_peer_text(a.fd, text, sizeof(text));
	assert_string_equal(text, want);
	juki_net_peer_text(c, text, sizeof(text));
	assert_string_equal(text, addr);
	/* The accepted socket was handed over: non-blocking, ours to close. */
	assert_true(fcntl(a.fd, F_GETFL) & O_NONBLOCK);
	close(a.fd);
	close(c);

	/* The same address twice: the second is refused with the reason. */
	f->err[0] = '\0';
	assert_int_equal(juki_net_listen(f->base, addr, on_accept, &a, &l2, f->err, sizeof(f->err)),
			 -EADDRINUSE);
	assert_null(l2);
	assert_non_null(strstr(f->err, addr));
	juki_listener_free(l);
	juki_listener_free(NULL);

	/* Names go through the resolver. */
	assert_int_equal(
	    juki_net_listen(f->base, "localhost:0", on_accept, &a, &l, f->err, sizeof(f->err)), 0);
	addr = juki_listener_addr(l);
	assert_true(strncmp(addr, "127.0.0.1:", 10) == 0 || strncmp(addr, "[::1]:", 6) == 0);
	juki_listener_free(l);
}

static void
test_listen_v6(void **state)
{
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l = NULL;
	char want[160];
	int rc, c;

	rc = juki_net_listen(f->base, "[::1]:0", on_accept, &a, &l, f->err, sizeof(f->err));
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
		skip();
	}
	assert_int_equal(rc, 0);
	assert_int_equal(strncmp(juki_listener_addr(l), "[::1]:", 6), 0);
	assert_true(atoi(juki_listener_addr(l) + 6) > 0);
	c = tcp_connect(juki_listener_addr(l));
	assert_true(run_until(f->base, &a.accepted, 1, WAIT_MS));
	local_text(c, want, sizeof(want));
	assert_string_equal(a.peer, want);
	assert_int_equal(strncmp(a.peer, "[::1]:", 6), 0);
	close(a.fd);
	close(c);
	juki_listener_free(l);
}

static void
test_listen_bad(void **state)
{
	static const char *const format[] = {
	    "",
	    "nonsense",
	    ":7000",
	    "127.0.0.1:",
	    "127.0.0.1",
	    "[::1]:",
	    "[::1]",
	    "[::1:7000",
	    "::1:7000",
	    "[]:7000",
	    "127.0.0.1:99999",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:+80",
	    "127.0.0.1:0x50",
	    "127.0.0.1:port",
	    "127.0.0.1:80 ",
	    "a:b:c",
	    "127.0.0.1:123456",
	};
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l;

	for (size_t i = 0; i < sizeof(format) / sizeof(format[0]); i++) {
		l = (struct juki_listener *)&a;
		f->err[0] = '\0';
		if (juki_net_listen(f->base, format[i], on_accept, &a, &l, f->err,
				    sizeof(f->err)) != JUKI_EFORMAT) {
			fail_msg("\"%s\" was not refused as malformed", format[i]);
		}
		assert_null(l);
		assert_non_null(strstr(f->err, format[i]));
	}
	/* Not ours to bind. */
	l = (struct juki_listener *)&a;
	assert_true(juki_net_listen(f->base, "192.0.2.1:7000", on_accept, &a, &l, f->err,
				    sizeof(f->err)) < 0);
	assert_null(l);
}

static void
test_listen_unix(void **state)
{
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l = NULL;
	struct sockaddr_un sun;
	char path[100], want[120], text[120];
	struct stat st;
	mode_t old;
	int c;

	snprintf(path, sizeof(path), "%s/ctl.sock", f->tmp);
	old = umask(022);
	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0640, on_accept, &a, &l, f->err, sizeof(f->err)),
	    0);
	/* The process umask is left as it was. */
	assert_int_equal(umask(old), 022);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	snprintf(want, sizeof(want), "unix:%s", path);
	assert_string_equal(juki_listener_addr(l), want);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_true(run_until(f->base, &a.accepted, 1, WAIT_MS));
	/* An unbound client has no name. */
	assert_string_equal(a.peer, "unix:");
	juki_net_peer_text(c, text, sizeof(text));
	assert_string_equal(text, want);
	close(a.fd);
	close(c);

	/* Freeing the listener removes the socket file. */
	juki_listener_free(l);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_listen_unix_replaces_stale(void **state)
{
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l = NULL;
	struct sockaddr_un sun;
	char path[100];
	struct stat st;
	int s, c;

	/* A daemon that died left its socket file behind. */
	snprintf(path, sizeof(path), "%s/stale.sock", f->tmp);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(s);
	assert_int_equal(lstat(path, &st), 0);

	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0600, on_accept, &a, &l, f->err, sizeof(f->err)),
	    0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_true(run_until(f->base, &a.accepted, 1, WAIT_MS));
	close(a.fd);
	close(c);
	juki_listener_free(l);
}

static void
test_listen_unix_refused(void **state)
{
	struct fix *f = *state;
	struct acceptor a = {.f = f, .fd = -1};
	struct juki_listener *l;
	char path[300], buf[16];
	struct stat st;
	FILE *fp;

	/* Anything that is not a socket is left alone. */
	snprintf(path, sizeof(path), "%s/precious", f->tmp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("data", fp);
	fclose(fp);
	l = (struct juki_listener *)&a;
	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0600, on_accept, &a, &l, f->err, sizeof(f->err)),
	    JUKI_EEXIST);
	assert_null(l);
	assert_non_null(strstr(f->err, "not a socket"));
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "data");
	unlink(path);

	snprintf(path, sizeof(path), "%s/dir", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	l = (struct juki_listener *)&a;
	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0600, on_accept, &a, &l, f->err, sizeof(f->err)),
	    JUKI_EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	rmdir(path);

	/* sun_path holds 108 bytes with the NUL. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[108] = '\0';
	l = (struct juki_listener *)&a;
	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0600, on_accept, &a, &l, f->err, sizeof(f->err)),
	    JUKI_ENAMETOOLONG);
	assert_null(l);

	snprintf(path, sizeof(path), "%s/no/such/dir/ctl.sock", f->tmp);
	l = (struct juki_listener *)&a;
	assert_int_equal(
	    juki_net_listen_unix(f->base, path, 0600, on_accept, &a, &l, f->err, sizeof(f->err)),
	    -ENOENT);
	assert_null(l);
	assert_non_null(strstr(f->err, path));
}

static void
test_addr_text(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	struct sockaddr other;
	char buf[160], small[12];
	int p[2];

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(7000);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	juki_net_addr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:7000");
	sin.sin_port = 0;
	juki_net_addr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:0");
	sin.sin_port = htons(65535);
	inet_pton(AF_INET, "255.255.255.255", &sin.sin_addr);
	juki_net_addr_text((struct sockaddr *)&sin, buf, sizeof(buf));
	assert_string_equal(buf, "255.255.255.255:65535");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	juki_net_addr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:443");
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	juki_net_addr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[::ffff:192.0.2.1]:443");
	inet_pton(AF_INET6, "fe80:1234:5678:9abc:def0:1234:5678:9abc", &sin6.sin6_addr);
	juki_net_addr_text((struct sockaddr *)&sin6, buf, sizeof(buf));
	assert_string_equal(buf, "[fe80:1234:5678:9abc:def0:1234:5678:9abc]:443");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/run/juki/csd.sock");
	juki_net_addr_text((struct sockaddr *)&sun, buf, sizeof(buf));
	assert_string_equal(buf, "unix:/run/juki/csd.sock");

	memset(&other, 0, sizeof(other));
	other.sa_family = AF_APPLETALK;
	juki_net_addr_text(&other, buf, sizeof(buf));
	assert_string_equal(buf, "?");

	/* A short buffer is cut, never overrun. */
	memset(small, 'Z', sizeof(small));
	sin.sin_port = htons(7000);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	juki_net_addr_text((struct sockaddr *)&sin, small, 8);
	assert_string_equal(small, "192.0.2");
	assert_int_equal(small[8], 'Z');

	/* Not a socket, or not connected. */
	assert_int_equal(pipe(p), 0);
	juki_net_peer_text(p[0], buf, sizeof(buf));
	assert_string_equal(buf, "?");
	close(p[0]);
	close(p[1]);
	p[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	juki_net_peer_text(p[0], buf, sizeof(buf));
	assert_string_equal(buf, "?");
	close(p[0]);
}

/* Request lines. */

static void
test_parse_request_accepted(void **state)
{
	static const struct {
		const char *line;
		const char *verb;
		const char *urn;
		enum juki_kind kind;
		enum juki_service svc;
	} cases[] = {
	    {"CONNECT urn:juki:cs:131016 muni", "CONNECT", CS_URN, JUKI_KIND_CS, JUKI_SVC_MUNI},
	    {"CONNECT urn:juki:pref:13 honnin", "CONNECT", "urn:juki:pref:13", JUKI_KIND_PREF,
	     JUKI_SVC_HONNIN},
	    {"CONNECT urn:juki:jlis:0 provide", "CONNECT", "urn:juki:jlis:0", JUKI_KIND_JLIS,
	     JUKI_SVC_PROVIDE},
	    {"CONNECT urn:juki:authlink:13 ninsho", "CONNECT", "urn:juki:authlink:13",
	     JUKI_KIND_AUTHLINK, JUKI_SVC_NINSHO},
	    {"CONNECT urn:juki:jlis:0 monitor", "CONNECT", "urn:juki:jlis:0", JUKI_KIND_JLIS,
	     JUKI_SVC_MONITOR},
	    {"CONNECT urn:juki:ca:jpki ninsho", "CONNECT", "urn:juki:ca:jpki", JUKI_KIND_CA,
	     JUKI_SVC_NINSHO},
	    {"CONNECT urn:juki:agency:nenkin provide", "CONNECT", "urn:juki:agency:nenkin",
	     JUKI_KIND_AGENCY, JUKI_SVC_PROVIDE},
	    {"CONNECT urn:juki:fwgate:west monitor", "CONNECT", "urn:juki:fwgate:west",
	     JUKI_KIND_FWGATE, JUKI_SVC_MONITOR},
	    {"FROM urn:juki:cs:271004 muni", "FROM", CS2_URN, JUKI_KIND_CS, JUKI_SVC_MUNI},
	    {"FROM urn:juki:pref:27 honnin", "FROM", "urn:juki:pref:27", JUKI_KIND_PREF,
	     JUKI_SVC_HONNIN},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct juki_ident ident;
		enum juki_service svc;
		const char *why = "untouched";

		if (juki_net_parse_request(cases[i].line, cases[i].verb, &ident, &svc, &why) != 0) {
			fail_msg("\"%s\" refused: %s", cases[i].line, why);
		}
		assert_string_equal(ident.urn, cases[i].urn);
		assert_int_equal(ident.kind, cases[i].kind);
		assert_int_equal(svc, cases[i].svc);
	}
}

static void
test_parse_request_refused(void **state)
{
	static const char *const shape = "expected <verb> <urn> <service>";
	static const char *const node = "not a node identity";
	static const char *const service = "unknown service";
	static const struct {
		const char *line;
		const char *verb;
		const char *why;
	} cases[] = {
	    {"", "CONNECT", shape},
	    {"CONNECT", "CONNECT", shape},
	    {"CONNECT ", "CONNECT", shape},
	    {"CONNECT  ", "CONNECT", shape},
	    {"CONNECT urn:juki:cs:131016", "CONNECT", shape},
	    {"CONNECT  urn:juki:cs:131016 muni", "CONNECT", shape},
	    {" CONNECT urn:juki:cs:131016 muni", "CONNECT", shape},
	    {"CONNECTX urn:juki:cs:131016 muni", "CONNECT", shape},
	    {"CONNEC urn:juki:cs:131016 muni", "CONNECT", shape},
	    {"connect urn:juki:cs:131016 muni", "CONNECT", shape},
	    {"CONNECT\turn:juki:cs:131016 muni", "CONNECT", shape},
	    {"CONNECT urn:juki:cs:131016\tmuni", "CONNECT", shape},
	    {"FROM urn:juki:cs:131016 muni", "CONNECT", shape},
	    {"CONNECT urn:juki:cs:131016 muni", "FROM", shape},
	    {"GET / HTTP/1.1", "CONNECT", shape},
	    {"CONNECT urn:juki:cs:131017 muni", "CONNECT", node},
	    {"CONNECT urn:juki:cs:13101 muni", "CONNECT", node},
	    {"CONNECT urn:juki:pref:48 honnin", "CONNECT", node},
	    {"CONNECT urn:juki:op:cs:131016:tanaka muni", "CONNECT", node},
	    {"CONNECT urn:juki:CS:131016 muni", "CONNECT", node},
	    {"CONNECT cs:131016 muni", "CONNECT", node},
	    {"CONNECT 127.0.0.1:7000 muni", "CONNECT", node},
	    {"CONNECT muni urn:juki:cs:131016", "CONNECT", node},
	    {"FROM urn:juki:op:pref:13:sato honnin", "FROM", node},
	    {"CONNECT urn:juki:cs:131016 ", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016  muni", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 muni ", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 muni honnin", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 MUNI", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 mun", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 munii", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 none", "CONNECT", service},
	    {"CONNECT urn:juki:cs:131016 muni\r", "CONNECT", service},
	};
	char longline[400];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct juki_ident ident;
		enum juki_service svc = JUKI_SVC_MUNI;
		const char *why = NULL;
		int rc;

		memset(&ident, 0xa5, sizeof(ident));
		rc = juki_net_parse_request(cases[i].line, cases[i].verb, &ident, &svc, &why);
		if (rc != JUKI_EFORMAT) {
			fail_msg("\"%s\" (verb %s): rc %d", cases[i].line, cases[i].verb, rc);
		}
		if (why == NULL || strcmp(why, cases[i].why) != 0) {
			fail_msg("\"%s\": why \"%s\", want \"%s\"", cases[i].line,
				 why ? why : "(null)", cases[i].why);
		}
		/* Nothing half-parsed is left for a careless caller. */
		assert_int_equal(svc, JUKI_SVC_NONE);
		assert_int_equal(ident.kind, JUKI_KIND_NONE);
		assert_string_equal(ident.urn, "");
	}

	/* An identity token too long to be one, however it continues. */
	snprintf(longline, sizeof(longline), "CONNECT urn:juki:agency:%0300d muni", 0);
	{
		struct juki_ident ident;
		enum juki_service svc;
		const char *why = NULL;

		assert_int_equal(juki_net_parse_request(longline, "CONNECT", &ident, &svc, &why),
				 JUKI_EFORMAT);
		assert_non_null(why);
		assert_int_equal(svc, JUKI_SVC_NONE);
	}
}

/* Lines. */

struct line_result {
	int done;
	int rc;
	char line[JUKI_LINE_MAX + 2];
	int had_line;
	struct bufferevent *bev;
	int64_t at_ms;
};

static void
line_cb(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct line_result *r = arg;

	r->done++;
	r->rc = rc;
	r->bev = bev;
	r->had_line = line != NULL;
	r->at_ms = juki_clock_mono_ms();
	snprintf(r->line, sizeof(r->line), "%s", line ? line : "");
}

/* A bufferevent on one end of a socket pair; *peer is the other end, for the test to write. */
static struct bufferevent *
line_pair(struct fix *f, int *peer)
{
	int fds[2];
	struct bufferevent *bev;

	nonblocking_pair(fds);
	bev = bufferevent_socket_new(f->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	*peer = fds[1];
	return bev;
}

/* Write text to the peer and read one line with max and timeout. */
static void
one_line(struct fix *f, const char *text, size_t len, size_t max, struct line_result *r)
{
	struct bufferevent *bev;
	int peer;

	memset(r, 0, sizeof(*r));
	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, max, WAIT_MS, line_cb, r);
	write_all(peer, text, len);
	assert_true(run_until(f->base, &r->done, 1, WAIT_MS));
	assert_ptr_equal(r->bev, bev);
	assert_int_equal(r->done, 1);
	bufferevent_free(bev);
	close(peer);
}

static void
expect_line(struct fix *f, const char *text, size_t max, const char *want)
{
	struct line_result r;

	one_line(f, text, strlen(text), max, &r);
	if (r.rc != 0) {
		fail_msg("line \"%s\": rc %d", text, r.rc);
	}
	assert_true(r.had_line);
	assert_string_equal(r.line, want);
}

static void
expect_refusal(struct fix *f, const char *text, size_t len, size_t max, int rc)
{
	struct line_result r;

	one_line(f, text, len, max, &r);
	if (r.rc != rc) {
		fail_msg("line of %zu bytes: rc %d, want %d", len, r.rc, rc);
	}
	assert_false(r.had_line);
}

static void
test_read_line(void **state)
{
	struct fix *f = *state;

	expect_line(f, "CONNECT urn:juki:cs:131016 muni\n", 0, "CONNECT urn:juki:cs:131016 muni");
	expect_line(f, "OK\r\n", 0, "OK");
	expect_line(f, "\n", 0, "");
	expect_line(f, "\r\n", 0, "");
	expect_line(f, "DENY policy no rule allows cs -> pref over muni\n", 0,
		    "DENY policy no rule allows cs -> pref over muni");
	/* Bytes above ASCII are not control bytes. */
	expect_line(f, "DENY refused 転入 \xc3\xbc\n", 0, "DENY refused 転入 \xc3\xbc");
}

static void
test_read_line_split(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	struct input_cond in;
	int peer;

	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	in.bev = bev;
	write_all(peer, "CONN", 4);
	in.want = 4;
	assert_true(run_until_fn(f->base, input_reached, &in, WAIT_MS));
	assert_int_equal(r.done, 0);
	write_all(peer, "ECT urn:juki:cs:131016 muni\r", 28);
	in.want = 32;
	assert_true(run_until_fn(f->base, input_reached, &in, WAIT_MS));
	/* A CR alone does not end a line. */
	assert_int_equal(r.done, 0);
	write_all(peer, "\n", 1);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.line, "CONNECT urn:juki:cs:131016 muni");
	bufferevent_free(bev);
	close(peer);
}

static void
test_read_line_leaves_rest(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	char rest[16];
	int peer;

	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	write_all(peer, "FIRST\nSECOND\r\n\x16\x03\x01", 17);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.line, "FIRST");
	/* What follows the line (here the next line and a TLS record) stays for the next step. */
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 11);

	/* A line already buffered is delivered at once, before the call returns. */
	memset(&r, 0, sizeof(r));
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.line, "SECOND");
	assert_int_equal(evbuffer_remove(bufferevent_get_input(bev), rest, sizeof(rest)), 3);
	assert_memory_equal(rest, "\x16\x03\x01", 3);

	/* After the line, its timeout no longer runs. */
	memset(&r, 0, sizeof(r));
	juki_net_read_line(f->group, bev, 0, 100, line_cb, &r);
	write_all(peer, "THIRD\n", 6);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	run_for(f->base, 250);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.rc, 0);
	bufferevent_free(bev);
	close(peer);
}

static void
test_read_line_too_long(void **state)
{
	struct fix *f = *state;
	char buf[JUKI_LINE_MAX + 8], want[JUKI_LINE_MAX + 1];

	/* max bounds the line without its CR LF. */
	expect_line(f, "0123456789\n", 10, "0123456789");
	expect_refusal(f, "01234567890\n", 12, 10, JUKI_ETOOBIG);

	/* max 0, or anything above JUKI_LINE_MAX, means JUKI_LINE_MAX. */
	memset(want, 'a', JUKI_LINE_MAX);
	want[JUKI_LINE_MAX] = '\0';
	snprintf(buf, sizeof(buf), "%s\n", want);
	expect_line(f, buf, 0, want);
	expect_line(f, buf, 100000, want);
	memset(buf, 'a', JUKI_LINE_MAX + 1);
	buf[JUKI_LINE_MAX + 1] = '\n';
	expect_refusal(f, buf, JUKI_LINE_MAX + 2, 0, JUKI_ETOOBIG);
	expect_refusal(f, buf, JUKI_LINE_MAX + 2, 100000, JUKI_ETOOBIG);
}

static void
test_read_line_too_long_unterminated(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	struct input_cond in;
	char buf[JUKI_LINE_MAX + 1];
	int64_t t0;
	int peer;

	/* Exactly max bytes and no newline yet: still waiting. */
	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 10, WAIT_MS, line_cb, &r);
	write_all(peer, "0123456789", 10);
	in.bev = bev;
	in.want = 10;
	assert_true(run_until_fn(f->base, input_reached, &in, WAIT_MS));
	assert_int_equal(r.done, 0);
	/* One more byte without a newline is refused at once, not at the timeout. */
	t0 = juki_clock_mono_ms();
	write_all(peer, "X", 1);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ETOOBIG);
	assert_true(r.at_ms - t0 < WAIT_MS / 2);
	bufferevent_free(bev);
	close(peer);

	memset(&r, 0, sizeof(r));
	memset(buf, 'a', sizeof(buf));
	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	write_all(peer, buf, sizeof(buf));
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ETOOBIG);
	assert_false(r.had_line);
	bufferevent_free(bev);
	close(peer);
}

static void
test_read_line_control(void **state)
{
	static const struct {
		const char *text;
		size_t len;
	} cases[] = {
	    {"OK\x01\n", 4}, {"A\tB\n", 4},       {"\x7f\n", 2},   {"A\0B\n", 4},
	    {"O\rK\n", 4},   {"\x1b[31mOK\n", 8}, {"OK\r\r\n", 5}, {"\x16\x03\x01\n", 4},
	    {"\x00\n", 2},   {"DENY\x0bx\n", 7},
	};
	struct fix *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expect_refusal(f, cases[i].text, cases[i].len, 0, JUKI_EFORMAT);
	}
}

/*
 * A peer that trickles its line one byte at a time is cut off when the line's
 * time is up, counted from the start: the bytes do not re-arm it.
 */
static void
test_read_line_deadline_is_total(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	int64_t t0;
	int peer, sent = 0;

	bev = line_pair(f, &peer);
	t0 = juki_clock_mono_ms();
	juki_net_read_line(f->group, bev, 0, 300, line_cb, &r);
	/* One byte every 50 ms, for up to 2 s: far longer than the 300 ms allowed. */
	while (!r.done && sent < 40) {
		write_all(peer, "C", 1);
		sent++;
		run_until(f->base, &r.done, 1, 50);
	}
	assert_int_equal(r.done, 1);
	assert_int_equal(r.rc, JUKI_ETIMEDOUT);
	assert_false(r.had_line);
	assert_true(r.at_ms - t0 >= 290);
	assert_true(r.at_ms - t0 < 1000);
	assert_true(sent < 20);
	/* Whatever came stays unread; the callback owns bev. */
	assert_ptr_equal(r.bev, bev);
	bufferevent_free(bev);
	close(peer);
}

/* The pre-trust deadline: what a step may take is what is left of it. */
static void
test_deadline_left(void **state)
{
	int64_t now = juki_clock_mono_ms();
	int64_t d = juki_net_deadline(1000);

	(void)state;
	assert_true(d >= now + 1000);
	assert_true(d < now + 1000 + 500);
	/* A step's own limit when the deadline is further away... */
	assert_int_equal(juki_net_left(d, 200), 200);
	/* ... what is left of the deadline when it is nearer... */
	assert_true(juki_net_left(d, 5000) <= 1000);
	assert_true(juki_net_left(d, 5000) > 500);
	/* ... and nothing once it has passed. */
	assert_int_equal(juki_net_left(now - 1, 5000), 0);
	assert_int_equal(juki_net_left(juki_net_deadline(0), 5000), 0);
	assert_int_equal(juki_net_left(juki_net_deadline(-5), 5000), 0);
}

static void
test_read_line_timeout(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	struct input_cond in;
	int64_t t0;
	int peer;

	bev = line_pair(f, &peer);
	t0 = juki_clock_mono_ms();
	juki_net_read_line(f->group, bev, 0, 150, line_cb, &r);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ETIMEDOUT);
	assert_false(r.had_line);
	assert_ptr_equal(r.bev, bev);
	assert_true(r.at_ms - t0 >= 140);
	assert_true(r.at_ms - t0 < WAIT_MS / 2);
	bufferevent_free(bev);
	close(peer);

	/* A line begun but never finished times out the same. */
	memset(&r, 0, sizeof(r));
	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, 150, line_cb, &r);
	write_all(peer, "CONNECT urn:juki", 16);
	in.bev = bev;
	in.want = 16;
	assert_true(run_until_fn(f->base, input_reached, &in, WAIT_MS));
	assert_int_equal(r.done, 0);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ETIMEDOUT);
	bufferevent_free(bev);
	close(peer);
}

static void
test_read_line_peer_close(void **state)
{
	struct fix *f = *state;
	struct line_result r = {0};
	struct bufferevent *bev;
	int peer;

	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	close(peer);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ECLOSED);
	assert_false(r.had_line);
	assert_ptr_equal(r.bev, bev);
	bufferevent_free(bev);

	/* Half a line, then the peer hangs up. */
	memset(&r, 0, sizeof(r));
	bev = line_pair(f, &peer);
	juki_net_read_line(f->group, bev, 0, WAIT_MS, line_cb, &r);
	write_all(peer, "CONNECT urn:juki:cs:131016", 26);
	close(peer);
	assert_true(run_until(f->base, &r.done, 1, WAIT_MS));
	assert_int_equal(r.rc, JUKI_ECLOSED);
	assert_false(r.had_line);
	bufferevent_free(bev);
}

/* The far end of a connection, reading everything until it closes. */
struct sink {
	struct evbuffer *got;
	int eof;
};

static void
sink_read(struct bufferevent *bev, void *arg)
{
	struct sink *k = arg;

	evbuffer_add_buffer(k->got, bufferevent_get_input(bev));
}

static void
sink_event(struct bufferevent *bev, short what, void *arg)
{
	struct sink *k = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		k->eof++;
	}
}

static void
test_write_line_and_deny(void **state)
{
	struct fix *f = *state;
	struct sink k = {evbuffer_new(), 0};
	struct bufferevent *bev, *far;
	char buf[300];
	size_t n;
	int peer;

	bev = line_pair(f, &peer);
	far = bufferevent_socket_new(f->base, peer, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(far, sink_read, NULL, sink_event, &k);
	bufferevent_enable(far, EV_READ);
	assert_int_equal(juki_net_write_line(bev, "OK"), 0);
	/* bev is taken over: the DENY line goes out after what was queued, then it closes. */
	juki_net_deny(f->group, bev, "policy", "no rule allows cs -> pref over muni", WAIT_MS);
	assert_true(run_until(f->base, &k.eof, 1, WAIT_MS));
	n = (size_t)evbuffer_remove(k.got, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_string_equal(buf, "OK\nDENY policy no rule allows cs -> pref over muni\n");
	bufferevent_free(far);
	evbuffer_free(k.got);

	/* Nothing queued: closed at once. */
	bev = line_pair(f, &peer);
	k.eof = 0;
	k.got = evbuffer_new();
	far = bufferevent_socket_new(f->base, peer, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(far, sink_read, NULL, sink_event, &k);
	bufferevent_enable(far, EV_READ);
	juki_net_close_after_flush(f->group, bev, WAIT_MS);
	assert_true(run_until(f->base, &k.eof, 1, WAIT_MS));
	assert_int_equal(evbuffer_get_length(k.got), 0);
	bufferevent_free(far);
	evbuffer_free(k.got);
}

/* Wait until the other end of fd closes (fd is consumed). */
static void
expect_closed(struct fix *f, int fd)
{
	struct sink k = {evbuffer_new(), 0};
	struct bufferevent *far;

	evutil_make_socket_nonblocking(fd);
	far = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(far, sink_read, NULL, sink_event, &k);
	bufferevent_enable(far, EV_READ);
	assert_true(run_until(f->base, &k.eof, 1, WAIT_MS));
	bufferevent_free(far);
	evbuffer_free(k.got);
}

/* TLS steps. */

/* A listener whose connections go into juki_net_accept_tls() with tls. */
static struct juki_listener *
tls_listener(struct fix *f, struct acceptor *a, struct juki_tls *tls, int64_t timeout_ms,
	     struct step *result)
{
	struct juki_listener *l = NULL;

	memset(a, 0, sizeof(*a));
	a->f = f;
	a->fd = -1;
	a->tls = tls;
	a->timeout_ms = timeout_ms;
	a->result = result;
	assert_int_equal(
	    juki_net_listen(f->base, "127.0.0.1:0", on_accept, a, &l, f->err, sizeof(f->err)), 0);
	return l;
}

static void
free_step(struct step *s)
{
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
}

/* A line each way over two established sessions proves they carry data. */
static void
exchange(struct fix *f, struct bufferevent *a, struct bufferevent *b)
{
	struct line_result ra = {0}, rb = {0};

	juki_net_read_line(f->group, b, 0, WAIT_MS, line_cb, &rb);
	assert_int_equal(juki_net_write_line(a, "PING from a"), 0);
	assert_true(run_until(f->base, &rb.done, 1, WAIT_MS));
	assert_int_equal(rb.rc, 0);
	assert_string_equal(rb.line, "PING from a");
	juki_net_read_line(f->group, a, 0, WAIT_MS, line_cb, &ra);
	assert_int_equal(juki_net_write_line(b, "PONG from b"), 0);
	assert_true(run_until(f->base, &ra.done, 1, WAIT_MS));
	assert_int_equal(ra.rc, 0);
	assert_string_equal(ra.line, "PONG from b");
}

static void
test_tls_handshake(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct step server = {0}, client = {0};
	struct juki_listener *l = tls_listener(f, &a, f->gw, WAIT_MS, &server);
	struct juki_ident expect;

	assert_int_equal(juki_ident_parse(GW_URN, &expect), 0);
	assert_int_equal(juki_net_connect_tls(f->group, f->cs, juki_listener_addr(l), &expect,
					      WAIT_MS, step_cb, &client),
			 0);
	/* Never called back before the call returns. */
	assert_int_equal(client.done, 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_NONE);
	assert_non_null(client.bev);
	assert_string_equal(client.peer.urn, GW_URN);
	assert_int_equal(client.peer.kind, JUKI_KIND_FWGATE);
	assert_int_equal(server.failure, JUKI_TLSF_NONE);
	assert_non_null(server.bev);
	assert_string_equal(server.peer.urn, CS_URN);
	assert_int_equal(server.peer.kind, JUKI_KIND_CS);
	assert_string_equal(SSL_get_version(bufferevent_openssl_get_ssl(client.bev)), "TLSv1.3");
	exchange(f, client.bev, server.bev);
	free_step(&client);
	free_step(&server);

	/* Without expect, any identity of our CA will do. */
	memset(&client, 0, sizeof(client));
	memset(&server, 0, sizeof(server));
	assert_int_equal(juki_net_connect_tls(f->group, f->cs2, juki_listener_addr(l), NULL,
					      WAIT_MS, step_cb, &client),
			 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_NONE);
	assert_string_equal(client.peer.urn, GW_URN);
	assert_string_equal(server.peer.urn, CS2_URN);
	exchange(f, server.bev, client.bev);
	free_step(&client);
	free_step(&server);
	assert_int_equal(a.accepted, 2);
	juki_listener_free(l);
}

static void
test_tls_wrong_peer(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct step server = {0}, client = {0};
	struct juki_listener *l = tls_listener(f, &a, f->gw, WAIT_MS, &server);
	struct juki_ident expect;

	assert_int_equal(juki_ident_parse(CS2_URN, &expect), 0);
	assert_int_equal(juki_net_connect_tls(f->group, f->cs, juki_listener_addr(l), &expect,
					      WAIT_MS, step_cb, &client),
			 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_WRONG_PEER);
	assert_null(client.bev);
	assert_non_null(strstr(client.why, CS2_URN));
	assert_non_null(strstr(client.why, GW_URN));
	/* The server side ends one way or the other; it must end. */
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	free_step(&server);
	assert_int_equal(client.done, 1);
	juki_listener_free(l);
}

static void
test_tls_unknown_ca(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct step server = {0}, client = {0};
	struct juki_listener *l = tls_listener(f, &a, f->gw, WAIT_MS, &server);

	/* A client from another CA: the server refuses it. */
	assert_int_equal(juki_net_connect_tls(f->group, f->stranger, juki_listener_addr(l), NULL,
					      WAIT_MS, step_cb, &client),
			 0);
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_equal(server.failure, JUKI_TLSF_UNKNOWN_CA);
	assert_null(server.bev);
	assert_non_null(strstr(server.why, "unknown-ca"));
	/* In TLS 1.3 the client may finish before it hears the refusal. */
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	free_step(&client);
	juki_listener_free(l);

	/* A server from another CA: the client refuses it. */
	memset(&client, 0, sizeof(client));
	memset(&server, 0, sizeof(server));
	l = tls_listener(f, &a, f->stranger, WAIT_MS, &server);
	assert_int_equal(juki_net_connect_tls(f->group, f->cs2, juki_listener_addr(l), NULL,
					      WAIT_MS, step_cb, &client),
			 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_UNKNOWN_CA);
	assert_null(client.bev);
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_null(server.bev);
	assert_int_not_equal(server.failure, JUKI_TLSF_NONE);
	juki_listener_free(l);
}

static void
test_tls_connect_refused(void **state)
{
	struct fix *f = *state;
	struct step client = {0};
	char addr[64];
	int hold = closed_port(addr, sizeof(addr));

	assert_int_equal(
	    juki_net_connect_tls(f->group, f->cs, addr, NULL, WAIT_MS, step_cb, &client), 0);
	assert_int_equal(client.done, 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_PROTOCOL);
	assert_null(client.bev);
	/* The errno text says what happened. */
	assert_non_null(strcasestr(client.why, "refused"));
	run_for(f->base, 50);
	assert_int_equal(client.done, 1);
	close(hold);
}

static void
test_tls_connect_bad_addr(void **state)
{
	struct fix *f = *state;
	struct step client = {0};

	assert_int_equal(
	    juki_net_connect_tls(f->group, f->cs, "nonsense", NULL, WAIT_MS, step_cb, &client),
	    JUKI_EFORMAT);
	assert_int_equal(
	    juki_net_connect_tls(f->group, f->cs, ":7000", NULL, WAIT_MS, step_cb, &client),
	    JUKI_EFORMAT);
	/* A refused call never calls back. */
	run_for(f->base, 50);
	assert_int_equal(client.done, 0);
}

static void
test_tls_timeout_silent_server(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct juki_listener *l;
	struct step client = {0};
	int64_t t0;

	/* The listener accepts and never says a word. */
	memset(&a, 0, sizeof(a));
	a.f = f;
	a.fd = -1;
	assert_int_equal(
	    juki_net_listen(f->base, "127.0.0.1:0", on_accept, &a, &l, f->err, sizeof(f->err)), 0);
	t0 = juki_clock_mono_ms();
	assert_int_equal(juki_net_connect_tls(f->group, f->cs, juki_listener_addr(l), NULL, 200,
					      step_cb, &client),
			 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_TIMEOUT);
	assert_null(client.bev);
	assert_non_null(strstr(client.why, "timed out"));
	assert_true(client.at_ms - t0 >= 190);
	assert_true(client.at_ms - t0 < WAIT_MS / 2);
	assert_int_equal(a.accepted, 1);
	close(a.fd);
	juki_listener_free(l);
}

static void
test_tls_timeout_silent_client(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct step server = {0};
	struct juki_listener *l = tls_listener(f, &a, f->gw, 200, &server);
	int64_t t0 = juki_clock_mono_ms();
	int c = tcp_connect(juki_listener_addr(l));

	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_equal(server.failure, JUKI_TLSF_TIMEOUT);
	assert_null(server.bev);
	assert_non_null(strstr(server.why, "timed out"));
	assert_true(server.at_ms - t0 >= 190);
	/* The server closed its end. */
	expect_closed(f, c);
	juki_listener_free(l);
}

static void
test_tls_not_tls(void **state)
{
	struct fix *f = *state;
	struct acceptor a;
	struct step server = {0};
	struct juki_listener *l = tls_listener(f, &a, f->gw, WAIT_MS, &server);
	int c = tcp_connect(juki_listener_addr(l));

	write_all(c, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_equal(server.failure, JUKI_TLSF_NOT_TLS);
	assert_null(server.bev);
	close(c);

	/* A peer that hangs up mid-handshake. */
	memset(&server, 0, sizeof(server));
	c = tcp_connect(juki_listener_addr(l));
	close(c);
	assert_true(run_until(f->base, &server.done, 1, WAIT_MS));
	assert_int_not_equal(server.failure, JUKI_TLSF_NONE);
	assert_null(server.bev);
	juki_listener_free(l);
}

/* Two TLS sessions over a socket pair, made with juki_net_wrap_tls(). */
struct tls_pair {
	struct step client, server;
	int fds[2];
};

static void
wrap_pair(struct fix *f, struct tls_pair *p, struct juki_tls *client_tls,
	  struct juki_tls *server_tls, const char *expect_urn, int64_t timeout_ms)
{
	struct bufferevent *a, *b;
	struct juki_ident expect;

	memset(p, 0, sizeof(*p));
	nonblocking_pair(p->fds);
	a = bufferevent_socket_new(f->base, p->fds[0], BEV_OPT_CLOSE_ON_FREE);
	b = bufferevent_socket_new(f->base, p->fds[1], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(a);
	assert_non_null(b);
	if (expect_urn != NULL) {
		assert_int_equal(juki_ident_parse(expect_urn, &expect), 0);
	}
	assert_int_equal(juki_net_wrap_tls(f->group, server_tls, b, JUKI_TLS_SERVER, NULL,
					   timeout_ms, step_cb, &p->server),
			 0);
	assert_int_equal(juki_net_wrap_tls(f->group, client_tls, a, JUKI_TLS_CLIENT,
					   expect_urn ? &expect : NULL, timeout_ms, step_cb,
					   &p->client),
			 0);
	assert_true(run_until(f->base, &p->client.done, 1, WAIT_MS));
	assert_true(run_until(f->base, &p->server.done, 1, WAIT_MS));
}

static void
test_wrap_tls(void **state)
{
	struct fix *f = *state;
	struct tls_pair p;

	wrap_pair(f, &p, f->cs, f->cs2, CS2_URN, WAIT_MS);
	assert_int_equal(p.client.failure, JUKI_TLSF_NONE);
	assert_int_equal(p.server.failure, JUKI_TLSF_NONE);
	assert_string_equal(p.client.peer.urn, CS2_URN);
	assert_string_equal(p.server.peer.urn, CS_URN);
	/* The session is a filter over the bufferevent it was given. */
	assert_non_null(bufferevent_get_underlying(p.client.bev));
	exchange(f, p.client.bev, p.server.bev);
	free_step(&p.client);
	free_step(&p.server);
}

static void
test_wrap_tls_wrong_peer(void **state)
{
	struct fix *f = *state;
	struct tls_pair p;

	/* The inner session must reach the node the tunnel was asked for. */
	wrap_pair(f, &p, f->cs, f->cs2, "urn:juki:pref:13", WAIT_MS);
	assert_int_equal(p.client.failure, JUKI_TLSF_WRONG_PEER);
	assert_null(p.client.bev);
	assert_non_null(strstr(p.client.why, "urn:juki:pref:13"));
	assert_non_null(strstr(p.client.why, CS2_URN));
	free_step(&p.server);
}

static void
test_wrap_tls_timeout(void **state)
{
	struct fix *f = *state;
	struct step client = {0};
	struct bufferevent *a;
	int64_t t0;
	int fds[2];

	nonblocking_pair(fds);
	a = bufferevent_socket_new(f->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	t0 = juki_clock_mono_ms();
	assert_int_equal(
	    juki_net_wrap_tls(f->group, f->cs, a, JUKI_TLS_CLIENT, NULL, 150, step_cb, &client), 0);
	assert_true(run_until(f->base, &client.done, 1, WAIT_MS));
	assert_int_equal(client.failure, JUKI_TLSF_TIMEOUT);
	assert_null(client.bev);
	assert_non_null(strstr(client.why, "timed out"));
	assert_true(client.at_ms - t0 >= 140);
	/* The bufferevent underneath was freed with the step: its socket is closed. */
	expect_closed(f, fds[1]);
}

/* Channels. */

struct chan_end {
	struct fix *f;
	struct juki_chan *chan;
	json_t *docs;
	int nframes;
	int ejson;
	int broken; /* juki_chan_recv() said the stream is unusable */
	int closed;
	int closed_rc;
	char why[200];
	int drained;
	int reads; /* readable() calls */
	int64_t last_ms;
};

static void
end_readable(struct juki_chan *chan, void *arg)
{
	struct chan_end *e = arg;
	json_t *doc;
	int rc;

	assert_ptr_equal(chan, e->chan);
	e->reads++;
	for (;;) {
		rc = juki_chan_recv(chan, &doc);
		if (rc == 0) {
			return;
		}
		if (rc == 1) {
			json_array_append_new(e->docs, doc);
			e->nframes++;
			e->last_ms = juki_clock_mono_ms();
			continue;
		}
		if (rc == JUKI_EJSON) {
			e->ejson++;
			continue;
		}
		/* The contract: the channel is unusable, free it. */
		e->broken = rc;
		juki_chan_free(chan);
		e->chan = NULL;
		return;
	}
}

static void
end_closed(struct juki_chan *chan, int rc, const char *why, void *arg)
{
	struct chan_end *e = arg;

	assert_ptr_equal(chan, e->chan);
	e->closed++;
	e->closed_rc = rc;
	e->last_ms = juki_clock_mono_ms();
	snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
	juki_chan_free(chan);
	e->chan = NULL;
}

static void
end_drained(struct juki_chan *chan, void *arg)
{
	struct chan_end *e = arg;

	(void)chan;
	e->drained++;
}

static int
end_broken(void *arg)
{
	return ((struct chan_end *)arg)->broken != 0;
}

static const struct juki_chan_cbs end_cbs = {
    .readable = end_readable,
    .closed = end_closed,
    .drained = end_drained,
};

static void
end_init(struct chan_end *e, struct fix *f)
{
	memset(e, 0, sizeof(*e));
	e->f = f;
	e->docs = json_array();
}

static void
end_free(struct chan_end *e)
{
	juki_chan_free(e->chan);
	e->chan = NULL;
	json_decref(e->docs);
	e->docs = NULL;
}

/* Channels a (client) and b (server) over a TLS session on a socket pair. */
static void
chan_pair(struct fix *f, struct chan_end *a, struct chan_end *b, size_t max_a, size_t max_b,
	  int64_t idle_a, int64_t idle_b)
{
	struct tls_pair p;

	wrap_pair(f, &p, f->cs, f->cs2, CS2_URN, WAIT_MS);
	assert_non_null(p.client.bev);
	assert_non_null(p.server.bev);
	end_init(a, f);
	end_init(b, f);
	a->chan = juki_chan_new(p.client.bev, &p.client.peer, "muni", max_a, idle_a, &end_cbs, a);
	b->chan = juki_chan_new(p.server.bev, &p.server.peer, "muni", max_b, idle_b, &end_cbs, b);
	assert_non_null(a->chan);
	assert_non_null(b->chan);
}

static void
test_chan_both_ways(void **state)
{
	struct fix *f = *state;
	struct chan_end a, b, other;
	json_t *doc;
	size_t before;

	chan_pair(f, &a, &b, JUKI_FRAME_MAX_DEFAULT, JUKI_FRAME_MAX_DEFAULT, 0, 0);
	assert_string_equal(juki_chan_peer(a.chan)->urn, CS2_URN);
	assert_string_equal(juki_chan_peer(b.chan)->urn, CS_URN);
	assert_string_equal(juki_chan_service(a.chan), "muni");

	assert_int_equal(juki_chan_pending(a.chan), 0);
	for (int i = 1; i <= 3; i++) {
		doc = json_pack("{s:i,s:s}", "n", i, "text", "転入通知");
		assert_int_equal(juki_chan_send(a.chan, doc), 0);
		json_decref(doc);
	}
	assert_true(juki_chan_pending(a.chan) > 0);
	doc = json_pack("{s:s}", "reply", "ok");
	assert_int_equal(juki_chan_send(b.chan, doc), 0);
	json_decref(doc);
	assert_true(run_until(f->base, &b.nframes, 3, WAIT_MS));
	assert_true(run_until(f->base, &a.nframes, 1, WAIT_MS));
	/* In order, whole. */
	for (int i = 0; i < 3; i++) {
		doc = json_array_get(b.docs, (size_t)i);
		assert_int_equal(json_integer_value(json_object_get(doc, "n")), i + 1);
		assert_string_equal(json_string_value(json_object_get(doc, "text")), "転入通知");
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(a.docs, 0), "reply")),
			    "ok");
	/* Written out: the optional drained callback came, nothing is pending in any layer. */
	assert_true(run_until(f->base, &a.drained, 1, WAIT_MS));
	assert_int_equal(juki_chan_pending(a.chan), 0);

	/* Raw payloads; one that is not an object is refused and the stream goes on. */
	assert_int_equal(juki_chan_send_raw(a.chan, "{\"raw\":true}", 12), 0);
	assert_int_equal(juki_chan_send_raw(a.chan, "[1,2]", 5), 0);
	assert_int_equal(juki_chan_send_raw(a.chan, "not json", 8), 0);
	assert_int_equal(juki_chan_send_raw(a.chan, "{\"after\":1}", 11), 0);
	before = juki_chan_pending(a.chan);
	assert_int_equal(juki_chan_send_raw(a.chan, "", 0), JUKI_EINVAL);
	doc = json_array();
	assert_int_not_equal(juki_chan_send(a.chan, doc), 0);
	json_decref(doc);
	assert_int_equal(juki_chan_pending(a.chan), before);
	assert_true(run_until(f->base, &b.nframes, 5, WAIT_MS));
	assert_int_equal(b.ejson, 2);
	assert_true(json_is_true(json_object_get(json_array_get(b.docs, 3), "raw")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b.docs, 4), "after")),
			 1);
	assert_int_equal(b.closed, 0);
	assert_int_equal(b.broken, 0);

	/* set_arg moves the callbacks' argument. */
	end_init(&other, f);
	other.chan = b.chan;
	juki_chan_set_arg(b.chan, &other);
	doc = json_pack("{s:i}", "n", 99);
	assert_int_equal(juki_chan_send(a.chan, doc), 0);
	json_decref(doc);
	assert_true(run_until(f->base, &other.nframes, 1, WAIT_MS));
	assert_int_equal(b.nframes, 5);
	b.chan = NULL;

	/* A peer that goes away: closed, with the reason. */
	juki_chan_free(other.chan);
	other.chan = NULL;
	assert_true(run_until(f->base, &a.closed, 1, WAIT_MS));
	assert_int_equal(a.closed_rc, JUKI_ECLOSED);
	assert_string_equal(a.why, "closed by the peer (EOF)");
	end_free(&a);
	end_free(&b);
	end_free(&other);
	juki_chan_free(NULL);
}

static void
test_chan_buffered_before_new(void **state)
{
	struct fix *f = *state;
	struct chan_end a, b;
	struct tls_pair p;
	struct input_cond in;
	json_t *doc;

	/* A frame that is in the session's buffer before the channel exists (it came right
	 * after the handshake) is still announced. */
	wrap_pair(f, &p, f->cs, f->cs2, CS2_URN, WAIT_MS);
	end_init(&a, f);
	end_init(&b, f);
	a.chan = juki_chan_new(p.client.bev, &p.client.peer, "muni", JUKI_FRAME_MAX_DEFAULT, 0,
			       &end_cbs, &a);
	doc = json_pack("{s:s}", "first", "frame");
	assert_int_equal(juki_chan_send(a.chan, doc), 0);
	json_decref(doc);
	in.bev = p.server.bev;
	in.want = 1;
	assert_true(run_until_fn(f->base, input_reached, &in, WAIT_MS));
	b.chan = juki_chan_new(p.server.bev, &p.server.peer, "muni", JUKI_FRAME_MAX_DEFAULT, 0,
			       &end_cbs, &b);
	/* Not from inside juki_chan_new(): the caller did not hold the channel yet. */
	assert_int_equal(b.reads, 0);
	assert_true(run_until(f->base, &b.nframes, 1, WAIT_MS));
	assert_string_equal(json_string_value(json_object_get(json_array_get(b.docs, 0), "first")),
			    "frame");
	end_free(&a);
	end_free(&b);
}

static void
test_chan_frame_limit(void **state)
{
	struct fix *f = *state;
	struct chan_end a, b;
	char big[201];
	json_t *doc;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	/* The sender's own limit: refused, nothing queued. */
	chan_pair(f, &a, &b, 64, JUKI_FRAME_MAX_DEFAULT, 0, 0);
	doc = json_pack("{s:s}", "big", big);
	assert_int_equal(juki_chan_send(a.chan, doc), JUKI_ETOOBIG);
	assert_int_equal(juki_chan_send_raw(a.chan, big, 65), JUKI_ETOOBIG);
	assert_int_equal(juki_chan_pending(a.chan), 0);
	/* 64 bytes of payload are exactly at the limit. */
	{
		char at[65];

		memset(at, ' ', 64);
		at[0] = '{';
		at[63] = '}';
		at[64] = '\0';
		assert_int_equal(juki_chan_send_raw(a.chan, at, 64), 0);
	}
	assert_true(run_until(f->base, &b.nframes, 1, WAIT_MS));
	end_free(&a);
	end_free(&b);

	/* The receiver's limit: the frame is refused from its header, the channel is dead. */
	chan_pair(f, &a, &b, JUKI_FRAME_MAX_DEFAULT, 64, 0, 0);
	assert_int_equal(juki_chan_send(a.chan, doc), 0);
	json_decref(doc);
	assert_true(run_until_fn(f->base, end_broken, &b, WAIT_MS));
	assert_int_equal(b.broken, JUKI_ETOOBIG);
	assert_int_equal(b.nframes, 0);
	/* ... and the sender hears that the receiver hung up. */
	assert_true(run_until(f->base, &a.closed, 1, WAIT_MS));
	assert_int_equal(a.closed_rc, JUKI_ECLOSED);
	end_free(&a);
	end_free(&b);
}

/* A channel on a plain socket, so that the test can write raw bytes to it. */
static void
raw_chan(struct fix *f, struct chan_end *e, int *peer, size_t max)
{
	struct juki_ident ident;
	struct bufferevent *bev = line_pair(f, peer);

	assert_int_equal(juki_ident_parse(CS2_URN, &ident), 0);
	end_init(e, f);
	e->chan = juki_chan_new(bev, &ident, "honnin", max, 0, &end_cbs, e);
	assert_non_null(e->chan);
	assert_string_equal(juki_chan_service(e->chan), "honnin");
	assert_string_equal(juki_chan_peer(e->chan)->urn, CS2_URN);
}

static void
test_chan_raw_frames(void **state)
{
	struct fix *f = *state;
	struct chan_end e;
	int peer;

	/* One frame written in three pieces is one frame. */
	raw_chan(f, &e, &peer, 1024);
	write_all(peer, "\0\0", 2);
	assert_true(run_until(f->base, &e.reads, 1, WAIT_MS));
	write_all(peer, "\0\x08{\"a\"", 6);
	assert_true(run_until(f->base, &e.reads, 2, WAIT_MS));
	assert_int_equal(e.nframes, 0);
	write_all(peer, ":12}\0\0\0\x02{}", 10);
	assert_true(run_until(f->base, &e.nframes, 2, WAIT_MS));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(e.docs, 0), "a")), 12);
	assert_int_equal(json_object_size(json_array_get(e.docs, 1)), 0);
	/* Not an object: consumed and reported, the next frame still arrives. */
	write_all(peer, "\0\0\0\x02[]\0\0\0\x02{}", 12);
	assert_true(run_until(f->base, &e.nframes, 3, WAIT_MS));
	assert_int_equal(e.ejson, 1);
	assert_int_equal(e.broken, 0);

	/* A zero length is a broken stream. */
	write_all(peer, "\0\0\0\0", 4);
	assert_true(run_until_fn(f->base, end_broken, &e, WAIT_MS));
	assert_int_equal(e.broken, JUKI_EFRAME);
	end_free(&e);
	close(peer);

	/* Over the limit: refused from the header alone, before the payload arrives. */
	raw_chan(f, &e, &peer, 1024);
	write_all(peer, "\0\0\x04\x01", 4);
	assert_true(run_until_fn(f->base, end_broken, &e, WAIT_MS));
	assert_int_equal(e.broken, JUKI_ETOOBIG);
	end_free(&e);
	close(peer);

	/* Exactly at the limit is fine. */
	raw_chan(f, &e, &peer, 8);
	write_all(peer, "\0\0\0\x08{\"a\":12}", 12);
	assert_true(run_until(f->base, &e.nframes, 1, WAIT_MS));
	end_free(&e);
	close(peer);
}

static void
test_chan_close_after_flush(void **state)
{
	enum { N = 300 };
	struct fix *f = *state;
	struct chan_end a, b;
	char pad[4001];

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	chan_pair(f, &a, &b, JUKI_FRAME_MAX_DEFAULT, JUKI_FRAME_MAX_DEFAULT, 0, 0);
	/* Far more than a socket buffer takes at once. */
	for (int i = 0; i < N; i++) {
		json_t *doc = json_pack("{s:i,s:s}", "n", i, "pad", pad);

		assert_int_equal(juki_chan_send(a.chan, doc), 0);
		json_decref(doc);
	}
	assert_true(juki_chan_pending(a.chan) > (size_t)N * 4000);
	juki_chan_close_after_flush(a.chan);
	a.chan = NULL;
	assert_true(run_until(f->base, &b.closed, 1, WAIT_MS));
	/* Everything queued arrived, in order, before the close. */
	assert_int_equal(b.nframes, N);
	for (int i = 0; i < N; i++) {
		const json_t *doc = json_array_get(b.docs, (size_t)i);

		assert_int_equal(json_integer_value(json_object_get(doc, "n")), i);
		assert_int_equal(strlen(json_string_value(json_object_get(doc, "pad"))), 4000);
	}
	assert_int_equal(b.closed_rc, JUKI_ECLOSED);
	/* The closing side is not called back: it was handed over. */
	assert_int_equal(a.closed, 0);
	end_free(&a);
	end_free(&b);
}

struct ticker {
	struct chan_end *from;
	struct event *ev;
	int sent;
	int count;
	int64_t last_ms;
};

static void
ticker_fire(evutil_socket_t fd, short what, void *arg)
{
	struct ticker *t = arg;
	json_t *doc = json_pack("{s:i}", "tick", t->sent);

	(void)fd;
	(void)what;
	assert_int_equal(juki_chan_send(t->from->chan, doc), 0);
	json_decref(doc);
	t->last_ms = juki_clock_mono_ms();
	if (++t->sent == t->count) {
		event_del(t->ev);
	}
}

static void
test_chan_idle_timeout(void **state)
{
	struct fix *f = *state;
	struct chan_end a, b;
	struct ticker t = {.from = &a, .count = 6};
	struct timeval every = {0, 50000};

	/* b closes after 150 ms without traffic; a never does on its own. */
	chan_pair(f, &a, &b, JUKI_FRAME_MAX_DEFAULT, JUKI_FRAME_MAX_DEFAULT, 0, 150);
	t.ev = event_new(f->base, -1, EV_PERSIST, ticker_fire, &t);
	event_add(t.ev, &every);
	/* Traffic every 50 ms for 300 ms keeps it open... */
	assert_true(run_until(f->base, &t.sent, t.count, WAIT_MS));
	assert_int_equal(b.closed, 0);
	assert_true(run_until(f->base, &b.nframes, t.count, WAIT_MS));
	/* ...and silence closes it. */
	assert_true(run_until(f->base, &b.closed, 1, WAIT_MS));
	assert_int_equal(b.closed_rc, JUKI_ETIMEDOUT);
	assert_string_equal(b.why, "idle timeout");
	assert_true(b.last_ms - t.last_ms >= 140);
	assert_true(run_until(f->base, &a.closed, 1, WAIT_MS));
	assert_int_equal(a.closed_rc, JUKI_ECLOSED);
	event_free(t.ev);
	end_free(&a);
	end_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listen_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_v6, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_unix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_unix_replaces_stale, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_unix_refused, setup, teardown),
	    cmocka_unit_test(test_addr_text),
	    cmocka_unit_test(test_parse_request_accepted),
	    cmocka_unit_test(test_parse_request_refused),
	    cmocka_unit_test_setup_teardown(test_read_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_split, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_leaves_rest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_too_long_unterminated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_control, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_line_deadline_is_total, setup, teardown),
	    cmocka_unit_test(test_deadline_left),
	    cmocka_unit_test_setup_teardown(test_read_line_peer_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_line_and_deny, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_wrong_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_unknown_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_connect_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_connect_bad_addr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_timeout_silent_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_timeout_silent_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_not_tls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_tls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_tls_wrong_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_tls_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_buffered_before_new, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_frame_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_raw_frames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_close_after_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chan_idle_timeout, setup, teardown),
	};

	/* A peer that hangs up must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
