#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "gateway.h"
#include "juki/base/clock.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/control.h"
#include "juki/node/log.h"
#include "juki/wire/net.h"
#include "juki/wire/policy.h"
#include "juki/wire/tls.h"

#define ALERT_RING 4096
/* Time a refused caller gets to read its DENY line. */
#define DENY_FLUSH_MS 2000
/*
 * Refusals from one source after its first are logged as one summary line
 * per this interval (each is still an alert, recorded and counted).
 */
#define REFUSAL_SUMMARY_MS 60000
#define REFUSAL_KINDS      8

static const struct juki_conf_key route_keys[] = {
    JUKI_CONF_SCALAR(struct fwgate_route, node, "node", JUKI_CONF_IDENT, NULL, JUKI_CONF_REQUIRED,
		     0, 0, "A node's identity."),
    JUKI_CONF_SCALAR(struct fwgate_route, address, "address", JUKI_CONF_ADDR, NULL,
		     JUKI_CONF_REQUIRED, 0, 0, "Its node port, host:port."),
    JUKI_CONF_END,
};

static const struct juki_conf_key limit_keys[] = {
    JUKI_CONF_SCALAR(struct fwgate_limits, per_address, "per_address", JUKI_CONF_INT, "64", 0, 1,
		     100000,
		     "Concurrent connections from one address; more are refused as a flood."),
    JUKI_CONF_SCALAR(struct fwgate_limits, per_node, "per_node", JUKI_CONF_INT, "256", 0, 1, 100000,
		     "Concurrent tunnels from one node identity."),
    JUKI_CONF_SCALAR(struct fwgate_limits, handshake_timeout, "handshake_timeout",
		     JUKI_CONF_DURATION, "10s", 0, 100, 600000,
		     "Time allowed for a caller's TLS handshake, from accept; with line_timeout, "
		     "the total a caller has from accept to its CONNECT line."),
    JUKI_CONF_SCALAR(struct fwgate_limits, line_timeout, "line_timeout", JUKI_CONF_DURATION, "10s",
		     0, 100, 600000,
		     "Time allowed for the whole CONNECT line, from the end of the handshake; "
		     "bytes that trickle in do not extend it."),
    JUKI_CONF_SCALAR(struct fwgate_limits, connect_timeout, "connect_timeout", JUKI_CONF_DURATION,
		     "5s", 0, 100, 600000,
		     "Time allowed to reach the destination and hear its answer."),
    JUKI_CONF_SCALAR(struct fwgate_limits, idle_timeout, "idle_timeout", JUKI_CONF_DURATION, "10m",
		     0, 1000, JUKI_DAY_MS, "A tunnel without traffic this long is closed."),
    JUKI_CONF_SCALAR(struct fwgate_limits, buffer, "buffer", JUKI_CONF_SIZE, "1MiB", 0, 16384,
		     268435456, "Bytes held per direction before reading from the sender pauses."),
    JUKI_CONF_END,
};

const struct juki_conf_key fwgate_conf_keys[] = {
    JUKI_CONF_SCALAR(
	struct fwgate_conf, node, "node", JUKI_CONF_IDENT, NULL,
	JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 0, 0,
	"This gateway's identity, urn:juki:fwgate:<id>; must be the one its certificate names."),
    JUKI_CONF_SECTIONKEY(struct fwgate_conf, tls, "tls", juki_tls_files_keys,
			 "Certificate, key, CA and CRL of this gateway."),
    JUKI_CONF_SCALARLIST(struct fwgate_conf, listen, nlisten, "listen", JUKI_CONF_ADDR,
			 JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 1, 16,
			 "Addresses nodes connect to (host:port)."),
    JUKI_CONF_SCALAR(struct fwgate_conf, policy, "policy", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED,
		     0, 0, "Flow policy file (juki-policy(5)): default deny."),
    JUKI_CONF_SCALAR(struct fwgate_conf, control, "control", JUKI_CONF_PATH, NULL,
		     JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 0, 0,
		     "Control socket for juki-ctl (mode 0600)."),
    JUKI_CONF_ENUMKEY(struct fwgate_conf, log_level, "log_level", juki_log_level_names, "info", 0,
		      "error, warning, notice, info or debug."),
    JUKI_CONF_SECTIONLIST(struct fwgate_conf, directory, ndirectory, "directory",
			  struct fwgate_route, route_keys, 0, 0, 100000,
			  "Where each node's port is: a list of {node, address}."),
    JUKI_CONF_SECTIONKEY(struct fwgate_conf, limits, "limits", limit_keys,
			 "Bounds on callers: floods, slow handshakes, idle tunnels."),
    JUKI_METRICS_CONF_KEY(struct fwgate_conf, metrics),
    JUKI_CONF_END,
};

struct counter {
	char key[JUKI_URN_MAX];
	int64_t n;
	struct counter *next;
};

struct session;

/* Refusals from one source address in the current summary interval. */
struct refusal_src {
	char host[64];
	int64_t since; /* monotonic ms: the interval began */
	uint64_t n;    /* refusals since then not logged one by one */
	struct {
		char kind[24];
		uint64_t n;
	} kinds[REFUSAL_KINDS];
	size_t nkinds;
	uint64_t other; /* kinds beyond REFUSAL_KINDS */
	struct refusal_src *next;
};

struct gateway {
	struct juki_daemon *d;
	struct event_base *base;
	const struct fwgate_conf *conf;
	struct juki_clock clock;
	struct juki_ident self;
	struct juki_tls *tls;
	struct juki_policy *policy;
	struct juki_alerts *alerts;
	int key_down; /* the key on the token did not sign at the last status */
	struct juki_listener **listeners;
	size_t nlisteners;
	struct juki_ctl_server *ctl;
	struct juki_net_group *steps; /* callers and destinations being set up, refusals */
	struct counter *per_address, *per_node;
	struct session *sessions; /* every caller, from accept to close */
	struct refusal_src *refusals;
	struct event *summary_timer;
	uint64_t accepted, tunnels_total, denied, slow_callers, bytes_up, bytes_down;
	int64_t active;
	struct juki_metrics *metrics; /* metrics.listen, when configured */
};

struct session {
	struct gateway *gw;
	char addr[64];
	char host[64];
	int64_t deadline; /* of everything before the caller is trusted (net.h) */
	struct juki_ident src, dst;
	enum juki_service svc;
	int counted_node;
	struct bufferevent *a; /* the caller, while no step holds it */
	struct bufferevent *b; /* the destination, once the tunnel is up */
	int tunnel;
	struct session *prev, *next;
};

static const struct juki_ctl_cmd gateway_cmds[];

/* Concurrent-use counters by key (address or identity): a short list suffices. */
static int64_t
counter_add(struct counter **list, const char *key, int64_t delta)
{
	struct counter **pp, *c;

	for (pp = list; (c = *pp) != NULL; pp = &c->next) {
		if (strcmp(c->key, key) == 0) {
			c->n += delta;
			if (c->n <= 0) {
				*pp = c->next;
				free(c);
				return 0;
			}
			return c->n;
		}
	}
	if (delta <= 0) {
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return INT64_MAX;
	}
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->n = delta;
	c->next = *list;
	*list = c;
	return c->n;
}

static void
session_free(struct session *s)
{
	struct gateway *gw = s->gw;

	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else {
		gw->sessions = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	}
	if (s->tunnel) {
		gw->active--;
	}
	counter_add(&gw->per_address, s->host, -1);
	if (s->counted_node) {
		counter_add(&gw->per_node, s->src.urn, -1);
	}
	free(s);
}

/*
 * Repeated refusals.  A source refused again and again (a misconfigured node,
 * a scan, a flood) would write a warning line per attempt: the first refusal
 * from a source is logged in full, the ones after it in the same interval
 * only as a count per kind, in one line per source and interval:
 *
 *   fwgate: 312 refused from 127.0.0.1 in the last 60 s: forbidden 300, unreachable 12
 *
 * A source with nothing to summarise at the end of an interval is forgotten,
 * so its next refusal is logged in full again.  Alerts are recorded and
 * counted one by one throughout.
 */

/* Returns 1 when this refusal is to be logged in full, 0 when it is only counted. */
static int
refusal_note(struct gateway *gw, const char *host, const char *kind)
{
	struct refusal_src *r;

	for (r = gw->refusals; r != NULL; r = r->next) {
		if (strcmp(r->host, host) == 0) {
			break;
		}
	}
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL) {
			return 1;
		}
		snprintf(r->host, sizeof(r->host), "%s", host);
		r->since = juki_clock_mono_ms();
		r->next = gw->refusals;
		gw->refusals = r;
		return 1;
	}
	r->n++;
	for (size_t i = 0; i < r->nkinds; i++) {
		if (strcmp(r->kinds[i].kind, kind) == 0) {
			r->kinds[i].n++;
			return 0;
		}
	}
	if (r->nkinds == REFUSAL_KINDS) {
		r->other++;
		return 0;
	}
	snprintf(r->kinds[r->nkinds].kind, sizeof(r->kinds[0].kind), "%s", kind);
	r->kinds[r->nkinds++].n = 1;
	return 0;
}

/* Log one line per source with refusals not logged yet; forget the quiet ones. */
static void
refusals_summarise(struct gateway *gw)
{
	struct refusal_src **pp = &gw->refusals, *r;
	int64_t now = juki_clock_mono_ms();

	while ((r = *pp) != NULL) {
		char line[512];
		size_t len;

		if (r->n == 0) {
			*pp = r->next;
			free(r);
			continue;
		}
		len = (size_t)snprintf(
		    line, sizeof(line),
		    "%llu refused from %s in the last %lld s:", (unsigned long long)r->n, r->host,
		    (long long)((now - r->since + 500) / 1000));
		for (size_t i = 0; i < r->nkinds && len < sizeof(line); i++) {
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s %s %llu",
						i > 0 ? "," : "", r->kinds[i].kind,
						(unsigned long long)r->kinds[i].n);
		}
		if (r->other > 0 && len < sizeof(line)) {
			snprintf(line + len, sizeof(line) - len, ", other %llu",
				 (unsigned long long)r->other);
		}
		log_warnx("fwgate: %s", line);
		r->n = 0;
		r->nkinds = 0;
		r->other = 0;
		r->since = now;
		pp = &r->next;
	}
}

static void
summary_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	refusals_summarise(arg);
}

static void refusal_alert(struct gateway *gw, const char *host, const char *kind, const char *code,
			  const char *peer, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Raise the alert of a refusal: logged in full, or counted for the summary. */
static void
refusal_alert(struct gateway *gw, const char *host, const char *kind, const char *code,
	      const char *peer, const char *addr, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (refusal_note(gw, host, kind)) {
		juki_alert(gw->alerts, code, peer, addr, "%s", text);
	} else {
		juki_alert_quiet(gw->alerts, code, peer, addr, "%s", text);
	}
}

static void refuse(struct session *s, struct bufferevent *bev, const char *code, const char *alert,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Refuse the caller: alert, answer DENY, close, forget the session. */
static void
refuse(struct session *s, struct bufferevent *bev, const char *code, const char *alert,
       const char *fmt, ...)
{
	struct gateway *gw = s->gw;
	char text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	gw->denied++;
	refusal_alert(gw, s->host, code, alert, s->src.urn[0] ? s->src.urn : NULL, s->addr,
		      "deny %s: %s", code, text);
	juki_net_deny(gw->steps, bev, code, text, DENY_FLUSH_MS);
	session_free(s);
}

/* The tunnel: bytes both ways, unread, with backpressure. */

static void
tunnel_end(struct session *s, struct bufferevent *closed, const char *why)
{
	struct bufferevent *other = closed == s->a ? s->b : s->a;

	log_info("gateway: tunnel %s -> %s over %s closed: %s", s->src.urn, s->dst.urn,
		 juki_service_name(s->svc), why);
	/* What the closing side sent is already queued on the other: let it go out. */
	bufferevent_free(closed);
	juki_net_close_after_flush(s->gw->steps, other, DENY_FLUSH_MS);
	session_free(s);
}

static void
relay(struct session *s, struct bufferevent *from, struct bufferevent *to, uint64_t *bytes)
{
	struct evbuffer *in = bufferevent_get_input(from);
	struct evbuffer *out = bufferevent_get_output(to);

	*bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	if ((int64_t)evbuffer_get_length(out) >= s->gw->conf->limits.buffer) {
		bufferevent_disable(from, EV_READ);
	}
}

static void
a_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	relay(s, bev, s->b, &s->gw->bytes_up);
}

static void
b_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	relay(s, bev, s->a, &s->gw->bytes_down);
}

/* The receiving side drained below the low-water mark: resume the sender. */
static void
a_written(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	bufferevent_enable(s->b, EV_READ);
}

static void
b_written(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	bufferevent_enable(s->a, EV_READ);
}

static void
tunnel_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	tunnel_end(s, bev,
		   (what & BEV_EVENT_TIMEOUT) ? "idle"
		   : (what & BEV_EVENT_EOF)   ? "closed"
					      : "error");
}

static void
tunnel_start(struct session *s)
{
	struct gateway *gw = s->gw;
	const struct fwgate_limits *lim = &gw->conf->limits;
	struct timeval idle = {(time_t)(lim->idle_timeout / 1000),
			       (suseconds_t)(lim->idle_timeout % 1000) * 1000};
	size_t low = (size_t)lim->buffer / 2;

	s->tunnel = 1;
	gw->active++;
	gw->tunnels_total++;
	bufferevent_setcb(s->a, a_read, a_written, tunnel_event, s);
	bufferevent_setcb(s->b, b_read, b_written, tunnel_event, s);
	bufferevent_setwatermark(s->a, EV_WRITE, low, 0);
	bufferevent_setwatermark(s->b, EV_WRITE, low, 0);
	bufferevent_set_timeouts(s->a, &idle, NULL);
	bufferevent_set_timeouts(s->b, &idle, NULL);
	bufferevent_enable(s->a, EV_READ | EV_WRITE);
	bufferevent_enable(s->b, EV_READ | EV_WRITE);
	log_info("gateway: tunnel %s -> %s over %s (from %s)", s->src.urn, s->dst.urn,
		 juki_service_name(s->svc), s->addr);
	/* Bytes that came with or right after the CONNECT line are the caller's first data. */
	if (evbuffer_get_length(bufferevent_get_input(s->a)) > 0) {
		a_read(s->a, s);
	}
}

static void
dest_answer(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct session *s = arg;
	char reason[200];

	if (rc == 0 && strcmp(line, "OK") == 0) {
		if (juki_net_write_line(s->a, "OK") != 0) {
			bufferevent_free(bev);
			bufferevent_free(s->a);
			session_free(s);
			return;
		}
		s->b = bev;
		tunnel_start(s);
		return;
	}
	bufferevent_free(bev);
	if (rc != 0) {
		refuse(s, s->a, "unreachable", "destination-failed", "%s did not answer: %s",
		       s->dst.urn, juki_strerror(rc));
		return;
	}
	snprintf(reason, sizeof(reason), "%s", strncmp(line, "DENY ", 5) == 0 ? line + 5 : line);
	refuse(s, s->a, "refused", "destination-refused", "%s refused: %s", s->dst.urn, reason);
}

static void
dest_connected(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	       const char *why, void *arg)
{
	struct session *s = arg;
	struct gateway *gw = s->gw;
	char line[JUKI_LINE_MAX];

	(void)peer;
	if (bev == NULL) {
		refuse(s, s->a, "unreachable",
		       f == JUKI_TLSF_WRONG_PEER ? "identity-mismatch" : "destination-failed",
		       "%s: %s", s->dst.urn, why);
		return;
	}
	snprintf(line, sizeof(line), "FROM %s %s", s->src.urn, juki_service_name(s->svc));
	if (juki_net_write_line(bev, line) != 0) {
		bufferevent_free(bev);
		refuse(s, s->a, "unreachable", "destination-failed", "out of memory");
		return;
	}
	juki_net_read_line(gw->steps, bev, JUKI_LINE_MAX, gw->conf->limits.connect_timeout,
			   dest_answer, s);
}

static const char *
route_of(const struct gateway *gw, const char *urn)
{
	for (size_t i = 0; i < gw->conf->ndirectory; i++) {
		if (strcmp(gw->conf->directory[i].node, urn) == 0) {
			return gw->conf->directory[i].address;
		}
	}
	return NULL;
}

static void
connect_line(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct session *s = arg;
	struct gateway *gw = s->gw;
	char why[200];
	const char *addr, *bad;

	if (rc == JUKI_ECLOSED) {
		bufferevent_free(bev);
		session_free(s);
		return;
	}
	if (rc != 0) {
		s->a = bev;
		/* The caller reads this text: say what was wrong with its line, not an errno. */
		if (rc == JUKI_ETIMEDOUT) {
			/* Silent or trickling: either way it held a connection for nothing. */
			gw->slow_callers++;
			refuse(s, bev, "timeout", "slow-caller",
			       "CONNECT line: no request within %lld ms",
			       (long long)gw->conf->limits.line_timeout);
		} else if (rc == JUKI_ETOOBIG) {
			refuse(s, bev, "malformed", "malformed-request",
			       "CONNECT line: longer than %d bytes", JUKI_LINE_MAX);
		} else if (rc == JUKI_EFORMAT) {
			refuse(s, bev, "malformed", "malformed-request",
			       "CONNECT line: a NUL or control byte");
		} else {
			refuse(s, bev, "malformed", "malformed-request", "CONNECT line: %s",
			       juki_strerror(rc));
		}
		return;
	}
	s->a = bev;
	if (juki_net_parse_request(line, "CONNECT", &s->dst, &s->svc, &bad) != 0) {
		refuse(s, bev, "malformed", "malformed-request", "CONNECT line: %s", bad);
		return;
	}
	if (strcmp(s->src.urn, s->dst.urn) == 0) {
		refuse(s, bev, "policy", "policy-denied", "a node does not tunnel to itself");
		return;
	}
	if (juki_policy_check(gw->policy, &s->src, &s->dst, s->svc, why, sizeof(why)) != 0) {
		refuse(s, bev, "policy", "policy-denied", "%s", why);
		return;
	}
	if (counter_add(&gw->per_node, s->src.urn, 1) > gw->conf->limits.per_node) {
		counter_add(&gw->per_node, s->src.urn, -1);
		refuse(s, bev, "limit", "flood", "too many tunnels from %s", s->src.urn);
		return;
	}
	s->counted_node = 1;
	addr = route_of(gw, s->dst.urn);
	if (addr == NULL) {
		refuse(s, bev, "unknown-node", "unknown-node", "%s is not in the directory",
		       s->dst.urn);
		return;
	}
	rc = juki_net_connect_tls(gw->steps, gw->tls, addr, &s->dst,
				  gw->conf->limits.connect_timeout, dest_connected, s);
	if (rc != 0) {
		refuse(s, bev, "unreachable", "destination-failed", "%s at %s: %s", s->dst.urn,
		       addr, juki_strerror(rc));
	}
}

static void
caller_handshake(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
		 const char *why, void *arg)
{
	struct session *s = arg;
	struct gateway *gw = s->gw;

	if (bev == NULL) {
		if (f == JUKI_TLSF_TIMEOUT) {
			gw->slow_callers++;
			refusal_alert(gw, s->host, "slow-caller", "slow-caller", NULL, s->addr,
				      "caller handshake: not done within %lld ms",
				      (long long)gw->conf->limits.handshake_timeout);
		} else {
			refusal_alert(gw, s->host, juki_alert_code_tls(f), juki_alert_code_tls(f),
				      NULL, s->addr, "caller handshake: %s", why);
		}
		session_free(s);
		return;
	}
	s->src = *peer;
	if (peer->kind == JUKI_KIND_OP) {
		s->a = bev;
		refuse(s, bev, "forbidden", "policy-denied", "%s may not open tunnels", peer->urn);
		return;
	}
	juki_net_read_line(gw->steps, bev, JUKI_LINE_MAX,
			   juki_net_left(s->deadline, gw->conf->limits.line_timeout), connect_line,
			   s);
}

static void
host_of(const struct sockaddr *sa, char *buf, size_t len)
{
	char *colon;

	juki_net_addr_text(sa, buf, len);
	colon = strrchr(buf, ':');
	if (colon != NULL && sa->sa_family != AF_UNIX) {
		*colon = '\0';
	}
}

static void
accept_cb(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
	struct gateway *gw = arg;
	struct session *s;

	(void)len;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		evutil_closesocket(fd);
		return;
	}
	s->gw = gw;
	s->next = gw->sessions;
	if (gw->sessions != NULL) {
		gw->sessions->prev = s;
	}
	gw->sessions = s;
	juki_net_addr_text(sa, s->addr, sizeof(s->addr));
	host_of(sa, s->host, sizeof(s->host));
	/*
	 * One deadline for everything before the caller is trusted, taken now:
	 * the handshake and the CONNECT line together.  Until the session is
	 * freed (trusted, refused or timed out) it counts against per_address.
	 */
	s->deadline =
	    juki_net_deadline(gw->conf->limits.handshake_timeout + gw->conf->limits.line_timeout);
	gw->accepted++;
	if (counter_add(&gw->per_address, s->host, 1) > gw->conf->limits.per_address) {
		refusal_alert(gw, s->host, "flood", "flood", NULL, s->addr,
			      "more than %lld connections from %s",
			      (long long)gw->conf->limits.per_address, s->host);
		gw->denied++;
		evutil_closesocket(fd);
		session_free(s);
		return;
	}
	if (juki_net_accept_tls(gw->steps, gw->tls, fd,
				juki_net_left(s->deadline, gw->conf->limits.handshake_timeout),
				caller_handshake, s) != 0) {
		session_free(s);
	}
}

/* Control commands. */

static int
cmd_status(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct gateway *gw = ctx;
	json_t *listen = json_array();

	(void)args;
	(void)err;
	for (size_t i = 0; i < gw->nlisteners; i++) {
		json_array_append_new(listen, json_string(juki_listener_addr(gw->listeners[i])));
	}
	*result = json_pack(
	    "{s:s,s:s,s:s,s:s,s:I,s:b,s:o,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "daemon",
	    "juki-fwgated", "version", JUKI_VERSION, "node", gw->self.urn, "kind", "fwgate",
	    "uptime_ms", (json_int_t)(juki_clock_mono_ms() - juki_daemon_started_ms(gw->d)),
	    "ready", 1, "listen", listen, "directory", (json_int_t)gw->conf->ndirectory,
	    "policy_rules", (json_int_t)juki_policy_rule_count(gw->policy), "counters", "accepted",
	    (json_int_t)gw->accepted, "tunnels", (json_int_t)gw->tunnels_total, "active",
	    (json_int_t)gw->active, "denied", (json_int_t)gw->denied, "slow_callers",
	    (json_int_t)gw->slow_callers, "bytes_relayed",
	    (json_int_t)(gw->bytes_up + gw->bytes_down));
	if (*result == NULL) {
		return JUKI_ENOMEM;
	}
	if (juki_daemon_config_path(gw->d) != NULL) {
		json_object_set_new(*result, "config", json_string(juki_daemon_config_path(gw->d)));
	}
	json_object_set_new(*result, "key",
			    juki_alert_key_check(gw->alerts, gw->tls, &gw->key_down));
	json_object_set_new(*result, "alerts", juki_alerts_json(gw->alerts, 0));
	return 0;
}

static int
cmd_alerts(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct gateway *gw = ctx;
	const json_t *v = json_object_get(args, "max");
	json_int_t max = 100;

	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			return juki_ctl_fail(err, "usage", "max: a count");
		}
		max = json_integer_value(v);
	}
	*result = juki_alerts_json(gw->alerts, (size_t)max);
	return *result ? 0 : JUKI_ENOMEM;
}

static const struct juki_ctl_cmd gateway_cmds[] = {
    {"status", cmd_status, "identity, listeners, counters of tunnels and denials", JUKI_ROLE_ADMIN,
     NULL},
    {"alerts", cmd_alerts, "recent alerts and counts per code (args: max)", JUKI_ROLE_ADMIN, NULL},
    {NULL, NULL, NULL, 0, NULL},
};

/* The gateway's metrics (node/metrics.h): the counters of status, as numbers. */
static void
collect(void *ctx, struct juki_metrics_out *o)
{
	struct gateway *gw = ctx;

	juki_metrics_put_process(o, "juki-fwgated", gw->alerts,
				 juki_clock_mono_ms() - juki_daemon_started_ms(gw->d));
	juki_metrics_put(o, JUKI_M_GW_CONNECTIONS, (double)gw->accepted, NULL);
	juki_metrics_put(o, JUKI_M_GW_TUNNELS_OPEN, (double)gw->active, NULL);
	juki_metrics_put(o, JUKI_M_GW_CONNECTS_ALLOWED, (double)gw->tunnels_total, NULL);
	juki_metrics_put(o, JUKI_M_GW_CONNECTS_DENIED, (double)gw->denied, NULL);
	juki_metrics_put(o, JUKI_M_GW_BYTES, (double)gw->bytes_up, "direction", "up", NULL);
	juki_metrics_put(o, JUKI_M_GW_BYTES, (double)gw->bytes_down, "direction", "down", NULL);
	juki_metrics_put_cert(o, "node", gw->conf->tls.cert);
	juki_metrics_put_cert(o, "ca", gw->conf->tls.ca);
	juki_metrics_put_cert(o, "crl", gw->conf->tls.crl);
}

/* Daemon life. */

static int
load_material(const struct fwgate_conf *conf, struct juki_tls **tls, struct juki_policy **policy,
	      char *err, size_t errlen)
{
	struct juki_tls_conf tc = juki_tls_files_conf(&conf->tls);
	struct juki_ident want;
	int rc;

	*tls = NULL;
	*policy = NULL;
	if (juki_ident_parse(conf->node, &want) != 0 || want.kind != JUKI_KIND_FWGATE) {
		snprintf(err, errlen, "node: %s is not a gateway identity", conf->node);
		return JUKI_ECONFIG;
	}
	for (size_t i = 0; i < conf->ndirectory; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(conf->directory[i].node, conf->directory[j].node) == 0) {
				snprintf(err, errlen, "directory: %s is listed twice",
					 conf->directory[i].node);
				return JUKI_ECONFIG;
			}
		}
	}
	if ((rc = juki_tls_new(&tc, tls, err, errlen)) != 0) {
		return rc;
	}
	if (strcmp(juki_tls_self(*tls)->urn, want.urn) != 0) {
		snprintf(err, errlen, "tls.cert names %s, but node is %s", juki_tls_self(*tls)->urn,
			 want.urn);
		juki_tls_free(*tls);
		*tls = NULL;
		return JUKI_ECERT;
	}
	if ((rc = juki_policy_load(conf->policy, policy, err, errlen)) != 0) {
		juki_tls_free(*tls);
		*tls = NULL;
	}
	return rc;
}

static int
gateway_check(const struct juki_daemon_ops *ops, void *confp, char *err, size_t errlen)
{
	const struct fwgate_conf *conf = confp;
	struct juki_tls *tls;
	struct juki_policy *policy;
	char why[PATH_MAX + 128];
	int rc;

	(void)ops;
	/* Whoever else can write to the socket's folder can take the gateway's control. */
	if (conf->control != NULL &&
	    (rc = juki_dir_check_parent(conf->control, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "control: %s", why);
		return rc;
	}
	rc = load_material(confp, &tls, &policy, err, errlen);
	juki_tls_free(tls);
	juki_policy_free(policy);
	return rc;
}

static void
gateway_stop(struct juki_daemon *d, void *nodep)
{
	struct gateway *gw = nodep;
	struct counter *c;

	(void)d;
	juki_metrics_free(gw->metrics);
	juki_ctl_server_free(gw->ctl);
	for (size_t i = 0; i < gw->nlisteners; i++) {
		juki_listener_free(gw->listeners[i]);
	}
	free(gw->listeners);
	/* Cancel set-ups first; then each session holds only its own bufferevents. */
	juki_net_group_free(gw->steps);
	while (gw->sessions != NULL) {
		struct session *s = gw->sessions;

		if (s->a != NULL) {
			bufferevent_free(s->a);
		}
		if (s->b != NULL) {
			bufferevent_free(s->b);
		}
		session_free(s);
	}
	while ((c = gw->per_address) != NULL) {
		gw->per_address = c->next;
		free(c);
	}
	while ((c = gw->per_node) != NULL) {
		gw->per_node = c->next;
		free(c);
	}
	if (gw->summary_timer != NULL) {
		event_free(gw->summary_timer);
	}
	/* Say what is counted and not said yet; the second pass frees every source. */
	refusals_summarise(gw);
	refusals_summarise(gw);
	juki_alerts_free(gw->alerts);
	juki_tls_free(gw->tls);
	juki_policy_free(gw->policy);
	free(gw);
}

static int
gateway_start(struct juki_daemon *d, void *confp, void **nodep, char *err, size_t errlen)
{
	const struct fwgate_conf *conf = confp;
	const struct timeval summary_every = {REFUSAL_SUMMARY_MS / 1000, 0};
	struct gateway *gw;
	int rc;

	gw = calloc(1, sizeof(*gw));
	if (gw == NULL) {
		return JUKI_ENOMEM;
	}
	gw->d = d;
	gw->base = juki_daemon_base(d);
	gw->conf = conf;
	log_setlevel(juki_log_level_of(conf->log_level));
	gw->alerts = juki_alerts_new(ALERT_RING, &gw->clock);
	gw->listeners = calloc(conf->nlisten, sizeof(*gw->listeners));
	gw->steps = juki_net_group_new(gw->base);
	gw->summary_timer = event_new(gw->base, -1, EV_PERSIST, summary_tick, gw);
	if (gw->alerts == NULL || gw->listeners == NULL || gw->steps == NULL ||
	    gw->summary_timer == NULL) {
		rc = JUKI_ENOMEM;
		goto fail;
	}
	if ((rc = load_material(conf, &gw->tls, &gw->policy, err, errlen)) != 0) {
		goto fail;
	}
	gw->self = *juki_tls_self(gw->tls);
	evtimer_add(gw->summary_timer, &summary_every);
	for (size_t i = 0; i < conf->nlisten; i++) {
		rc = juki_net_listen(gw->base, conf->listen[i], accept_cb, gw, &gw->listeners[i],
				     err, errlen);
		if (rc != 0) {
			goto fail;
		}
		gw->nlisteners++;
		log_info("gateway: listening on %s", juki_listener_addr(gw->listeners[i]));
	}
	if ((rc = juki_ctl_server_new(gw->base, conf->control, gateway_cmds, gw, &gw->ctl, err,
				      errlen)) != 0) {
		goto fail;
	}
	if ((rc = juki_metrics_new(gw->base, &conf->metrics, collect, gw, &gw->metrics, err,
				   errlen)) != 0) {
		goto fail;
	}
	if (gw->metrics != NULL) {
		log_info("gateway: metrics http://%s/metrics", juki_metrics_addr(gw->metrics));
	}
	log_info("gateway: %zu policy rules, %zu nodes in the directory",
		 juki_policy_rule_count(gw->policy), conf->ndirectory);
	*nodep = gw;
	return 0;
fail:
	gateway_stop(d, gw);
	return rc;
}

/* After a reload: the tunnels of callers whose certificate no longer verifies (revoked) end. */
static void
end_invalid_tunnels(struct gateway *gw)
{
	struct session *s, *next;
	enum juki_tls_failure failure;
	char why[160];
	SSL *ssl;

	for (s = gw->sessions; s != NULL; s = next) {
		next = s->next;
		if (!s->tunnel || s->a == NULL ||
		    (ssl = bufferevent_openssl_get_ssl(s->a)) == NULL ||
		    juki_tls_peer_still_valid(gw->tls, ssl, &failure, why, sizeof(why)) == 0) {
			continue;
		}
		juki_alert(gw->alerts, juki_alert_code_tls(failure), s->src.urn, s->addr,
			   "tunnel to %s ended: %s", s->dst.urn, why);
		tunnel_end(s, s->a, why);
	}
}

static int
gateway_reload(struct juki_daemon *d, void *nodep, void *newconfp, char *err, size_t errlen)
{
	struct gateway *gw = nodep;
	const struct fwgate_conf *conf = newconfp, *old = gw->conf;
	struct juki_tls *tls;
	struct juki_policy *policy;
	int rc;

	(void)d;
	if (strcmp(conf->node, old->node) != 0 || strcmp(conf->control, old->control) != 0 ||
	    conf->nlisten != old->nlisten) {
		snprintf(err, errlen, "node, control and listen change on restart only");
		return JUKI_ECONFIG;
	}
	for (size_t i = 0; i < conf->nlisten; i++) {
		if (strcmp(conf->listen[i], old->listen[i]) != 0) {
			snprintf(err, errlen, "listen changes on restart only");
			return JUKI_ECONFIG;
		}
	}
	if ((rc = load_material(conf, &tls, &policy, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = juki_metrics_reconfigure(&gw->metrics, gw->base, &conf->metrics, collect, gw, err,
					   errlen)) != 0) {
		juki_tls_free(tls);
		juki_policy_free(policy);
		return rc;
	}
	juki_tls_free(gw->tls);
	juki_policy_free(gw->policy);
	gw->tls = tls;
	gw->policy = policy;
	gw->conf = conf;
	end_invalid_tunnels(gw);
	log_setlevel(juki_log_level_of(conf->log_level));
	log_info("gateway: reloaded: %zu policy rules, %zu nodes in the directory",
		 juki_policy_rule_count(policy), conf->ndirectory);
	return 0;
}

const struct juki_daemon_ops fwgate_ops = {
    .name = "juki-fwgated",
    .summary = "juki gateway: mutual-TLS tunnels between nodes under the flow policy",
    .default_config = "/etc/juki/fwgated.yaml",
    .conf_table = fwgate_conf_keys,
    .conf_size = sizeof(struct fwgate_conf),
    .check = gateway_check,
    .start = gateway_start,
    .reload = gateway_reload,
    .stop = gateway_stop,
};
