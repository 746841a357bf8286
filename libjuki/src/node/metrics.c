#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sqlite3.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/inbound.h"
#include "juki/node/log.h"
#include "juki/node/metrics.h"
#include "juki/node/node.h"
#include "juki/node/outbound.h"
#include "juki/node/reconcile.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/pki.h"

#define MAX_LABELS 4
/* Request line and headers a scraper sends: a few hundred bytes. */
#define HEADERS_MAX 8192

const struct juki_conf_key juki_metrics_keys[] = {
    JUKI_CONF_SCALAR(struct juki_metrics_conf, listen, "listen", JUKI_CONF_ADDR, NULL, 0, 0, 0,
		     "host:port of the metrics endpoint (plain HTTP, GET /metrics); loopback "
		     "unless allow_remote; none: no metrics."),
    JUKI_CONF_SCALAR(struct juki_metrics_conf, allow_remote, "allow_remote", JUKI_CONF_BOOL,
		     "false", 0, 0, 0,
		     "Allow a listen address other than loopback (the metrics carry no personal "
		     "data, but queue names and counts: firewall it)."),
    JUKI_CONF_SCALAR(struct juki_metrics_conf, timeout, "timeout", JUKI_CONF_DURATION, "5s", 0, 100,
		     60000, "Time a request may take, from its first byte to the answer."),
    JUKI_CONF_END,
};

/* The one table: every metric's name, type and help. */
static const struct metric_def {
	const char *name, *type, *help;
} defs[JUKI_METRICS_N] = {
    [JUKI_M_BUILD_INFO] = {"juki_build_info", "gauge", "The daemon and its version; always 1."},
    [JUKI_M_START_TIME] = {"juki_uptime_seconds", "gauge", "Seconds since the daemon started."},
    [JUKI_M_RSS] = {"juki_resident_memory_bytes", "gauge", "Resident set size."},
    [JUKI_M_PEAK_RSS] = {"juki_peak_resident_memory_bytes", "gauge",
			 "Peak resident set size since start."},
    [JUKI_M_ALERTS] = {"juki_alerts_total", "counter", "Alerts raised since start, by code."},
    [JUKI_M_HANDSHAKE_FAILURES] = {"juki_handshake_failures_total", "counter",
				   "TLS handshakes refused or failed since start, by alert code."},
    [JUKI_M_RECEIVED] = {"juki_messages_received_total", "counter",
			 "Messages received on the node port, by type (other: unknown or "
			 "malformed)."},
    [JUKI_M_ACCEPTED] = {"juki_messages_accepted_total", "counter",
			 "Messages received and accepted, by type."},
    [JUKI_M_DUPLICATE] = {"juki_messages_duplicate_total", "counter",
			  "Messages received again and answered as duplicates."},
    [JUKI_M_REJECTED] = {"juki_messages_rejected_total", "counter",
			 "Messages received and refused, by type."},
    [JUKI_M_REJECTED_BY_REASON] = {"juki_messages_rejected_reason_total", "counter",
				   "Messages received and refused, by reason code."},
    [JUKI_M_COMMITS] = {"juki_store_commits_total", "counter",
			"Inbound turns committed to the store with their acknowledgements."},
    [JUKI_M_CHANNELS] = {"juki_inbound_channels", "gauge", "Inbound channels open."},
    [JUKI_M_OUTBOX_DEPTH] = {"juki_outbox_messages", "gauge",
			     "Messages waiting in the outbox, by destination and service."},
    [JUKI_M_OUTBOX_OLDEST] = {"juki_outbox_oldest_age_seconds", "gauge",
			      "Age of the oldest waiting message, by destination and service."},
    [JUKI_M_OUTBOX_REJECTED] = {"juki_outbox_rejected_messages", "gauge",
				"Messages this node sent that their receiver refused, kept."},
    [JUKI_M_SENT] = {"juki_messages_sent_total", "counter", "Messages sent since start."},
    [JUKI_M_ACKED] = {"juki_messages_acked_total", "counter",
		      "Messages acknowledged by their receiver since start."},
    [JUKI_M_RECONCILE_DAYS] = {"juki_reconcile_days", "gauge",
			       "Recent days of update-count reconciliation, by status."},
    [JUKI_M_PURGE_RUNS] = {"juki_purge_runs_total", "counter",
			   "Purge runs since start, by result (ok, failed, dry_run)."},
    [JUKI_M_PURGE_REMOVED] = {"juki_purge_removed_total", "counter",
			      "Rows removed by purge runs since start."},
    [JUKI_M_PURGE_FILES] = {"juki_purge_files_removed_total", "counter",
			    "Files erased by purge runs since start."},
    [JUKI_M_STORE_BYTES] = {"juki_store_bytes", "gauge", "Size of the store (pages in use)."},
    [JUKI_M_STORE_FREE] = {"juki_store_free_bytes", "gauge",
			   "Space left on the store's file system for the daemon."},
    [JUKI_M_CERT_NOT_AFTER] = {"juki_certificate_expiry_timestamp_seconds", "gauge",
			       "Unix time when a certificate expires, or the CRL's next update "
			       "is due, by file."},
    [JUKI_M_GW_CONNECTIONS] = {"juki_gateway_connections_total", "counter",
			       "Callers accepted by the gateway."},
    [JUKI_M_GW_TUNNELS_OPEN] = {"juki_gateway_tunnels_open", "gauge", "Tunnels open now."},
    [JUKI_M_GW_CONNECTS_ALLOWED] = {"juki_gateway_connects_allowed_total", "counter",
				    "CONNECT requests that became tunnels."},
    [JUKI_M_GW_CONNECTS_DENIED] = {"juki_gateway_connects_denied_total", "counter",
				   "Callers refused (DENY or no tunnel)."},
    [JUKI_M_GW_BYTES] = {"juki_gateway_bytes_total", "counter",
			 "Bytes relayed through tunnels, by direction (up: caller to "
			 "destination)."},
    [JUKI_M_SCRAPE_SECONDS] = {"juki_scrape_duration_seconds", "gauge",
			       "Time taken to collect this answer."},
};

struct juki_metrics_out {
	struct evbuffer *buf[JUKI_METRICS_N];
};

const char *
juki_metric_name(enum juki_metric m)
{
	return (unsigned)m < JUKI_METRICS_N ? defs[m].name : NULL;
}

struct juki_metrics_out *
juki_metrics_out_new(void)
{
	return calloc(1, sizeof(struct juki_metrics_out));
}

void
juki_metrics_out_free(struct juki_metrics_out *o)
{
	if (o == NULL) {
		return;
	}
	for (size_t i = 0; i < JUKI_METRICS_N; i++) {
		if (o->buf[i] != NULL) {
			evbuffer_free(o->buf[i]);
		}
	}
	free(o);
}

/* A label value: backslash, double quote and newline escaped (exposition format). */
static void
put_escaped(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"') {
			evbuffer_add_printf(b, "\\%c", *v);
		} else if (*v == '\n') {
			evbuffer_add(b, "\\n", 2);
		} else {
			evbuffer_add(b, v, 1);
		}
	}
}

void
juki_metrics_put(struct juki_metrics_out *o, enum juki_metric m, double value, ...)
{
	struct evbuffer *b;
	va_list ap;
	const char *k;
	int n = 0;

	if (o == NULL || (unsigned)m >= JUKI_METRICS_N) {
		return;
	}
	if (o->buf[m] == NULL && (o->buf[m] = evbuffer_new()) == NULL) {
		return;
	}
	b = o->buf[m];
	evbuffer_add_printf(b, "%s", defs[m].name);
	va_start(ap, value);
	while (n < MAX_LABELS && (k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		evbuffer_add_printf(b, "%s%s=\"", n == 0 ? "{" : ",", k);
		put_escaped(b, v != NULL ? v : "");
		evbuffer_add(b, "\"", 1);
		n++;
	}
	va_end(ap);
	if (value == (double)(long long)value && value < 9e15 && value > -9e15) {
		evbuffer_add_printf(b, "%s %lld\n", n > 0 ? "}" : "", (long long)value);
	} else {
		evbuffer_add_printf(b, "%s %.6g\n", n > 0 ? "}" : "", value);
	}
}

/* The whole answer: HELP and TYPE once before the samples of each metric that has any. */
static struct evbuffer *
render(struct juki_metrics_out *o)
{
	struct evbuffer *out = evbuffer_new();

	for (size_t i = 0; out != NULL && i < JUKI_METRICS_N; i++) {
		if (o->buf[i] == NULL) {
			continue;
		}
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", defs[i].name, defs[i].help,
				    defs[i].name, defs[i].type);
		evbuffer_add_buffer(out, o->buf[i]);
	}
	return out;
}

char *
juki_metrics_text(struct juki_metrics_out *o)
{
	struct evbuffer *b = render(o);
	size_t n;
	char *text;

	if (b == NULL) {
		return NULL;
	}
	n = evbuffer_get_length(b);
	if ((text = malloc(n + 1)) != NULL) {
		evbuffer_remove(b, text, n);
		text[n] = '\0';
	}
	evbuffer_free(b);
	return text;
}

/* The alert codes of refused or failed handshakes (alert.c juki_alert_code_tls()). */
static int
is_handshake_code(const char *code)
{
	static const char *const codes[] = {
	    "not-tls",
	    "unknown-certificate",
	    "revoked-certificate",
	    "expired-certificate",
	    "no-certificate",
	    "identity-mismatch",
	    "handshake-failed",
	    "slow-caller",
	    NULL,
	};

	for (size_t i = 0; codes[i] != NULL; i++) {
		if (strcmp(codes[i], code) == 0) {
			return 1;
		}
	}
	return 0;
}

void
juki_metrics_put_process(struct juki_metrics_out *o, const char *daemon,
			 const struct juki_alerts *alerts, int64_t uptime_ms)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long long kib;
	json_t *aj, *v;
	const char *code;

	juki_metrics_put(o, JUKI_M_BUILD_INFO, 1, "daemon", daemon, "version", JUKI_VERSION, NULL);
	juki_metrics_put(o, JUKI_M_START_TIME, (double)uptime_ms / 1000.0, NULL);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %lld kB", &kib) == 1) {
			juki_metrics_put(o, JUKI_M_RSS, (double)kib * 1024, NULL);
		} else if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) {
			juki_metrics_put(o, JUKI_M_PEAK_RSS, (double)kib * 1024, NULL);
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	if (alerts == NULL || (aj = juki_alerts_json(alerts, 0)) == NULL) {
		return;
	}
	json_object_foreach(json_object_get(aj, "counts"), code, v)
	{
		juki_metrics_put(o, JUKI_M_ALERTS, (double)json_integer_value(v), "code", code,
				 NULL);
		if (is_handshake_code(code)) {
			juki_metrics_put(o, JUKI_M_HANDSHAKE_FAILURES,
					 (double)json_integer_value(v), "code", code, NULL);
		}
	}
	if (json_object_size(json_object_get(aj, "counts")) == 0) {
		/* The counter exists before the first alert, so that rate() sees it begin. */
		juki_metrics_put(o, JUKI_M_ALERTS, 0, "code", "none", NULL);
	}
	json_decref(aj);
}

void
juki_metrics_put_cert(struct juki_metrics_out *o, const char *which, const char *path)
{
	long long ms;

	if (path != NULL && juki_pki_file_times(path, strcmp(which, "crl") == 0, &ms) == 0 &&
	    ms != INT64_MIN) {
		juki_metrics_put(o, JUKI_M_CERT_NOT_AFTER, (double)(ms / 1000), "file", which,
				 NULL);
	}
}

/* ---- the server ---- */

struct juki_metrics {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	juki_metrics_collect_cb collect;
	void *ctx;
	char addr[80];
	char *listen; /* the configured address, to see a change on reload */
	int64_t timeout;
};

static void
reply_error(struct evhttp_request *req, int code, const char *reason)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	if (b != NULL) {
		evbuffer_add_printf(b, "%d %s\n", code, reason);
	}
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL) {
		evbuffer_free(b);
	}
}

static void
serve(struct evhttp_request *req, void *arg)
{
	struct juki_metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct juki_metrics_out *o;
	struct evbuffer *body;
	struct timespec t0, t1;

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		reply_error(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	if (cmd != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		reply_error(req, HTTP_BADMETHOD, "Method Not Allowed");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((o = juki_metrics_out_new()) == NULL) {
		reply_error(req, HTTP_INTERNAL, "Internal Server Error");
		return;
	}
	m->collect(m->ctx, o);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	juki_metrics_put(o, JUKI_M_SCRAPE_SECONDS,
			 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
			 NULL);
	body = render(o);
	juki_metrics_out_free(o);
	if (body == NULL) {
		reply_error(req, HTTP_INTERNAL, "Internal Server Error");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

/* Loopback: 127.0.0.0/8, ::1 or localhost. */
static int
is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0) {
		return 1;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int
juki_metrics_conf_check(const void *section, const char **blame, char *why, size_t whylen)
{
	const struct juki_metrics_conf *c = section;
	char host[256];
	int port;

	if (c->listen == NULL) {
		return 0;
	}
	if (juki_conf_split_addr(c->listen, host, sizeof(host), &port) != 0) {
		*blame = "listen";
		snprintf(why, whylen, "host:port");
		return JUKI_ECONFIG;
	}
	if (!c->allow_remote && !is_loopback(host)) {
		*blame = "listen";
		snprintf(why, whylen,
			 "%s is not a loopback address: metrics are served on loopback only "
			 "unless metrics.allow_remote is true",
			 host);
		return JUKI_ECONFIG;
	}
	return 0;
}

int
juki_metrics_new(struct event_base *base, const struct juki_metrics_conf *conf,
		 juki_metrics_collect_cb collect, void *ctx, struct juki_metrics **out, char *err,
		 size_t errlen)
{
	struct juki_metrics *m;
	struct timeval tv;
	char host[256];
	int port;
	evutil_socket_t fd;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	*out = NULL;
	if (conf->listen == NULL) {
		return 0;
	}
	if (juki_conf_split_addr(conf->listen, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "metrics.listen: host:port");
		return JUKI_ECONFIG;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->listen = strdup(conf->listen)) == NULL ||
	    (m->http = evhttp_new(base)) == NULL) {
		juki_metrics_free(m);
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	m->collect = collect;
	m->ctx = ctx;
	m->timeout = conf->timeout;
	tv.tv_sec = conf->timeout / 1000;
	tv.tv_usec = (conf->timeout % 1000) * 1000;
	evhttp_set_timeout_tv(m->http, &tv);
	evhttp_set_max_headers_size(m->http, HEADERS_MAX);
	evhttp_set_max_body_size(m->http, 0);
	/* Every method reaches serve(), which answers 405 to all but GET. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, serve, m);
	if ((m->sock = evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port)) == NULL) {
		snprintf(err, errlen, "metrics.listen: cannot listen on %s", conf->listen);
		juki_metrics_free(m);
		return JUKI_EIO;
	}
	fd = evhttp_bound_socket_get_fd(m->sock);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		char ip[INET6_ADDRSTRLEN] = "?";

		if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			snprintf(m->addr, sizeof(m->addr), "[%s]:%u", ip, ntohs(s6->sin6_port));
		} else {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			snprintf(m->addr, sizeof(m->addr), "%s:%u", ip, ntohs(s4->sin_port));
		}
	}
	*out = m;
	return 0;
}

const char *
juki_metrics_addr(const struct juki_metrics *m)
{
	return m != NULL ? m->addr : NULL;
}

int
juki_metrics_reconfigure(struct juki_metrics **mp, struct event_base *base,
			 const struct juki_metrics_conf *conf, juki_metrics_collect_cb collect,
			 void *ctx, char *err, size_t errlen)
{
	struct juki_metrics *m = *mp, *fresh;
	int rc;

	if (m != NULL && conf->listen != NULL && strcmp(m->listen, conf->listen) == 0) {
		/* The same address: the socket stays, a new deadline applies to new requests. */
		struct timeval tv = {conf->timeout / 1000, (conf->timeout % 1000) * 1000};

		evhttp_set_timeout_tv(m->http, &tv);
		m->timeout = conf->timeout;
		return 0;
	}
	if (m == NULL && conf->listen == NULL) {
		return 0;
	}
	/* A new address is bound before the old one closes: if it cannot be, nothing changes. */
	if ((rc = juki_metrics_new(base, conf, collect, ctx, &fresh, err, errlen)) != 0) {
		return rc;
	}
	juki_metrics_free(m);
	*mp = fresh;
	return 0;
}

void
juki_metrics_free(struct juki_metrics *m)
{
	if (m == NULL) {
		return;
	}
	if (m->http != NULL) {
		evhttp_free(m->http);
	}
	free(m->listen);
	free(m);
}

/* ---- a server node's metrics ---- */

struct node_metrics {
	struct juki_node *node;
	struct juki_metrics *http;
	uint64_t purge_ok, purge_failed, purge_dry, purge_removed, purge_files;
};

static void
put_inbound(struct juki_metrics_out *o, struct juki_inbound *in)
{
	json_t *st = juki_inbound_status(in), *v;
	const char *k;

	if (st == NULL) {
		return;
	}
	juki_metrics_put(o, JUKI_M_CHANNELS,
			 (double)json_integer_value(json_object_get(st, "channels")), NULL);
	juki_metrics_put(o, JUKI_M_RECEIVED,
			 (double)json_integer_value(json_object_get(st, "received")), "type", "all",
			 NULL);
	juki_metrics_put(o, JUKI_M_ACCEPTED,
			 (double)json_integer_value(json_object_get(st, "accepted")), "type", "all",
			 NULL);
	juki_metrics_put(o, JUKI_M_DUPLICATE,
			 (double)json_integer_value(json_object_get(st, "duplicate")), NULL);
	juki_metrics_put(o, JUKI_M_COMMITS,
			 (double)json_integer_value(json_object_get(st, "commits")), NULL);
	json_object_foreach(json_object_get(st, "types"), k, v)
	{
		juki_metrics_put(o, JUKI_M_RECEIVED,
				 (double)json_integer_value(json_object_get(v, "received")), "type",
				 k, NULL);
		juki_metrics_put(o, JUKI_M_ACCEPTED,
				 (double)json_integer_value(json_object_get(v, "accepted")), "type",
				 k, NULL);
		juki_metrics_put(o, JUKI_M_REJECTED,
				 (double)json_integer_value(json_object_get(v, "rejected")), "type",
				 k, NULL);
	}
	json_object_foreach(json_object_get(st, "rejected"), k, v)
	{
		juki_metrics_put(o, JUKI_M_REJECTED_BY_REASON, (double)json_integer_value(v),
				 "reason", k, NULL);
	}
	json_decref(st);
}

static void
put_outbound(struct juki_metrics_out *o, struct juki_node *node)
{
	struct juki_store *store = juki_node_store(node);
	struct juki_outbox_queue *q = NULL;
	json_t *st = juki_outbound_status(juki_node_outbound(node));
	int64_t now = juki_node_now_ms(node), rejected = 0;
	size_t n = 0;

	if (juki_outbox_queues(store, &q, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			juki_metrics_put(o, JUKI_M_OUTBOX_DEPTH, (double)q[i].count, "dest",
					 q[i].dest, "service", q[i].service, NULL);
			juki_metrics_put(o, JUKI_M_OUTBOX_OLDEST,
					 (double)(now - q[i].oldest_ms) / 1000.0, "dest", q[i].dest,
					 "service", q[i].service, NULL);
		}
		free(q);
	}
	if (n == 0) {
		/* An empty outbox is a depth of 0, not an absent series. */
		juki_metrics_put(o, JUKI_M_OUTBOX_DEPTH, 0, NULL);
	}
	if (juki_outbox_rejected_count(store, &rejected) == 0) {
		juki_metrics_put(o, JUKI_M_OUTBOX_REJECTED, (double)rejected, NULL);
	}
	if (st != NULL) {
		juki_metrics_put(o, JUKI_M_SENT,
				 (double)json_integer_value(json_object_get(st, "sent")), NULL);
		juki_metrics_put(o, JUKI_M_ACKED,
				 (double)json_integer_value(json_object_get(st, "acked")), NULL);
		json_decref(st);
	}
}

static void
put_reconcile(struct juki_metrics_out *o, struct juki_reconcile *r)
{
	json_t *days = r != NULL ? juki_reconcile_table(r, NULL) : NULL, *d, *count;
	const char *k;
	size_t i;

	if (days == NULL || (count = json_object()) == NULL) {
		json_decref(days);
		return;
	}
	json_array_foreach(days, i, d)
	{
		const char *s = json_string_value(json_object_get(d, "status"));

		if (s != NULL) {
			json_object_set_new(
			    count, s,
			    json_integer(json_integer_value(json_object_get(count, s)) + 1));
		}
	}
	json_object_foreach(count, k, d)
	{
		juki_metrics_put(o, JUKI_M_RECONCILE_DAYS, (double)json_integer_value(d), "status",
				 k, NULL);
	}
	json_decref(count);
	json_decref(days);
}

/* The store's pages in use (two pragmas) and the room left on its file system. */
static void
put_store(struct juki_metrics_out *o, struct juki_node *node)
{
	sqlite3 *db = juki_store_db(juki_node_store(node));
	sqlite3_stmt *st;
	long long pages = -1, size = -1;
	struct statvfs vfs;

	if (sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			pages = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			size = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	if (pages >= 0 && size > 0) {
		juki_metrics_put(o, JUKI_M_STORE_BYTES, (double)(pages * size), NULL);
	}
	if (statvfs(juki_store_path(juki_node_store(node)), &vfs) == 0) {
		juki_metrics_put(o, JUKI_M_STORE_FREE, (double)vfs.f_bavail * (double)vfs.f_frsize,
				 NULL);
	}
}

static void
node_collect(void *ctx, struct juki_metrics_out *o)
{
	struct node_metrics *nm = ctx;
	struct juki_node *node = nm->node;
	const struct juki_node_conf *conf = juki_node_conf(node);
	const struct juki_node_spec *spec = juki_node_spec(node);

	juki_metrics_put_process(o, spec->daemon, juki_node_alerts(node),
				 juki_clock_mono_ms() -
				     juki_daemon_started_ms(juki_node_daemon(node)));
	put_inbound(o, juki_node_inbound(node));
	put_outbound(o, node);
	put_reconcile(o, juki_node_reconcile(node));
	juki_metrics_put(o, JUKI_M_PURGE_RUNS, (double)nm->purge_ok, "result", "ok", NULL);
	juki_metrics_put(o, JUKI_M_PURGE_RUNS, (double)nm->purge_failed, "result", "failed", NULL);
	juki_metrics_put(o, JUKI_M_PURGE_RUNS, (double)nm->purge_dry, "result", "dry_run", NULL);
	juki_metrics_put(o, JUKI_M_PURGE_REMOVED, (double)nm->purge_removed, NULL);
	juki_metrics_put(o, JUKI_M_PURGE_FILES, (double)nm->purge_files, NULL);
	put_store(o, node);
	juki_metrics_put_cert(o, "node", conf->tls.cert);
	juki_metrics_put_cert(o, "ca", conf->tls.ca);
	juki_metrics_put_cert(o, "crl", conf->tls.crl);
}

int
juki_node_metrics_start(struct juki_node *node, char *err, size_t errlen)
{
	struct node_metrics *nm = calloc(1, sizeof(*nm));
	int rc;

	if (nm == NULL) {
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	nm->node = node;
	if ((rc = juki_node_module_set(node, JUKI_MODULE_METRICS, nm)) != 0) {
		free(nm);
		snprintf(err, errlen, "metrics: started twice");
		return rc;
	}
	rc = juki_metrics_new(juki_node_base(node), &juki_node_conf(node)->metrics, node_collect,
			      nm, &nm->http, err, errlen);
	if (rc != 0) {
		juki_node_module_clear(node, JUKI_MODULE_METRICS, nm);
		free(nm);
		return rc;
	}
	if (nm->http != NULL) {
		log_info("%s: metrics http://%s/metrics", juki_node_spec(node)->daemon,
			 juki_metrics_addr(nm->http));
	}
	return 0;
}

int
juki_node_metrics_reload(struct juki_node *node, const struct juki_metrics_conf *conf, char *err,
			 size_t errlen)
{
	struct node_metrics *nm = juki_node_module(node, JUKI_MODULE_METRICS);

	if (nm == NULL) {
		return 0;
	}
	return juki_metrics_reconfigure(&nm->http, juki_node_base(node), conf, node_collect, nm,
					err, errlen);
}

void
juki_node_metrics_stop(struct juki_node *node)
{
	struct node_metrics *nm = juki_node_module(node, JUKI_MODULE_METRICS);

	if (nm == NULL) {
		return;
	}
	juki_node_module_clear(node, JUKI_MODULE_METRICS, nm);
	juki_metrics_free(nm->http);
	free(nm);
}

void
juki_node_metrics_purged(struct juki_node *node, const json_t *report)
{
	struct node_metrics *nm = juki_node_module(node, JUKI_MODULE_METRICS);

	if (nm == NULL) {
		return;
	}
	if (report == NULL) {
		nm->purge_failed++;
		return;
	}
	if (json_is_true(json_object_get(report, "dry_run"))) {
		nm->purge_dry++;
		return;
	}
	nm->purge_ok++;
	nm->purge_removed += (uint64_t)json_integer_value(json_object_get(report, "removed"));
	nm->purge_files += (uint64_t)json_integer_value(json_object_get(report, "files_removed"));
}
