#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <event2/event.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/boardweb.h"
#include "juki/node/log.h"
#include "juki/node/monitor.h"
#include "juki/node/node.h"
#include "juki/node/notice.h"
#include "juki/node/witness.h"
#include "juki/store/outbox.h"

/* Alerts waiting to be forwarded (the listener only takes note). */
#define ALERT_QUEUE 256
/* Refused handshakes remembered for intrusion-suspected (monitor.intrusion_refusals at most). */
#define REFUSALS 1024
#define MINUTE   60000
/* After a watcher refused a heartbeat, the next one waits this many intervals. */
#define REFUSED_PAUSE 10
/* Forwarded alerts a board returns at most. */
#define BOARD_ALERTS 200

/*
 * The heartbeat's extensions (monitor.h): one row each, ended by {NULL}.
 * The notices' witness ("checkpoint") and the integrity ("integrity") add
 * theirs here.
 */
static const struct juki_monitor_part parts[] = {
    {"integrity", juki_integrity_heartbeat, NULL},
    {"checkpoint", juki_witness_heartbeat, juki_witness_observe},
    {NULL, NULL, NULL},
};

/*
 * Validators of those members (NULL-name ended): a heartbeat whose member
 * fails its check is refused invalid-field with the reason it gives.  A
 * member without a row here need only be an object or null.
 */
static const struct {
	const char *name;
	int (*check)(const json_t *value, char *why, size_t whylen);
} part_checks[] = {
    {"integrity", juki_integrity_member_check},
    {NULL, NULL},
};

/*
 * What runs beside a board (monitor.h, struct juki_monitor_service): the
 * board's own web page adds its row here.  Ended by {NULL}.
 */
static const struct juki_monitor_service services[] = {
    {"boardweb", juki_boardweb_start, juki_boardweb_reload, juki_boardweb_stop},
    {NULL, NULL, NULL, NULL},
};

static const char *const board_names[] = {"auto", "true", "false", NULL};

const struct juki_conf_key juki_monitor_conf_keys[] = {
    JUKI_CONF_SCALAR(struct juki_monitor_conf, interval, "interval", JUKI_CONF_DURATION, "30s", 0,
		     100, 3600000, "Between two heartbeats to each watcher."),
    JUKI_CONF_SCALAR(struct juki_monitor_conf, down_after, "down_after", JUKI_CONF_DURATION, "90s",
		     0, 300, JUKI_DAY_MS,
		     "At a board: a node whose last heartbeat is older than this is marked "
		     "down and the alert node-down raised (more than interval)."),
    {.name = "watchers",
     .type = JUKI_CONF_LIST,
     .offset = offsetof(struct juki_monitor_conf, watchers),
     .def = "[auto]",
     .min = 0,
     .max = JUKI_MONITOR_WATCHERS,
     .elem_type = JUKI_CONF_STRING,
     .elem_size = sizeof(char *),
     .count_offset = offsetof(struct juki_monitor_conf, nwatchers),
     .help = "The nodes this node sends heartbeats and alerts to: \"auto\" (a CS: its "
	     "prefecture and the national centres; a prefecture and authlink:0: the national "
	     "centres; authlink:NN: its prefecture and the national centres; a national "
	     "centre: the other centres) and/or identities; [] none."},
    {.name = "centres",
     .type = JUKI_CONF_LIST,
     .offset = offsetof(struct juki_monitor_conf, centres),
     .def = "[urn:juki:jlis:0]",
     .min = 1,
     .max = JUKI_MONITOR_WATCHERS,
     .elem_type = JUKI_CONF_IDENT,
     .elem_size = sizeof(char *),
     .count_offset = offsetof(struct juki_monitor_conf, ncentres),
     .help = "The national centres \"auto\" means (docs/architecture.md §27): each gets the "
	     "heartbeats, and so shows this node on its board."},
    JUKI_CONF_ENUMKEY(struct juki_monitor_conf, board, "board", board_names, "auto", 0,
		      "Keep a board of the nodes that send heartbeats here: true, false or auto "
		      "(jlis and the prefectures)."),
    JUKI_CONF_SCALAR(struct juki_monitor_conf, alert_rate, "alert_rate", JUKI_CONF_INT, "60", 0, 1,
		     100000,
		     "Alerts forwarded to the watchers a minute at most; past it one "
		     "alerts-suppressed summary says how many were not."),
    JUKI_CONF_SCALAR(struct juki_monitor_conf, intrusion_refusals, "intrusion_refusals",
		     JUKI_CONF_INT, "10", 0, 1, 1000,
		     "Refused handshakes (unknown, revoked, expired or missing certificates) "
		     "within a minute that raise intrusion-suspected."),
    JUKI_CONF_SCALAR(struct juki_monitor_conf, alert_open, "alert_open", JUKI_CONF_DURATION, "24h",
		     0, 1000, 31 * JUKI_DAY_MS,
		     "At a board: a forwarded alert counts as open this long (an intrusion "
		     "alert marks its node intrusion while open)."),
    JUKI_CONF_END,
};

int
juki_monitor_conf_check(const void *section, const char **blame, char *why, size_t whylen)
{
	const struct juki_monitor_conf *c = section;
	struct juki_ident id;

	for (size_t i = 0; i < c->nwatchers; i++) {
		if (strcmp(c->watchers[i], "auto") == 0) {
			continue;
		}
		if (juki_ident_parse(c->watchers[i], &id) != 0 ||
		    (id.kind != JUKI_KIND_JLIS && id.kind != JUKI_KIND_PREF &&
		     id.kind != JUKI_KIND_CS && id.kind != JUKI_KIND_AUTHLINK)) {
			*blame = "watchers";
			snprintf(why, whylen, "\"auto\" or the identity of a server node");
			return JUKI_ECONFIG;
		}
	}
	for (size_t i = 0; i < c->ncentres; i++) {
		if (juki_ident_parse(c->centres[i], &id) != 0 || id.kind != JUKI_KIND_JLIS) {
			*blame = "centres";
			snprintf(why, whylen, "national centres: urn:juki:jlis:<name>");
			return JUKI_ECONFIG;
		}
	}
	if (c->down_after <= c->interval) {
		*blame = "down_after";
		snprintf(why, whylen, "more than interval");
		return JUKI_ECONFIG;
	}
	return 0;
}

const struct juki_migration juki_monitor_steps[JUKI_MONITOR_NSTEPS] = {
    {1, "CREATE TABLE monitor_nodes ("
	" node TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" pref TEXT,"
	" daemon TEXT NOT NULL,"
	" version TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" last_seen_ms INTEGER NOT NULL,"
	" skew_ms INTEGER,"
	" down INTEGER NOT NULL DEFAULT 0,"
	" down_since_ms INTEGER,"
	" heartbeat TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE monitor_alerts ("
	" id INTEGER PRIMARY KEY,"
	" node TEXT NOT NULL,"
	" pref TEXT,"
	" seq INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" code TEXT NOT NULL,"
	" class TEXT NOT NULL,"
	" peer TEXT,"
	" addr TEXT,"
	" detail TEXT NOT NULL,"
	" received_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX monitor_alerts_node ON monitor_alerts (node, received_ms);"},
};

struct watcher {
	char urn[JUKI_URN_MAX];
	int64_t last_ok_ms; /* INT64_MIN: never */
	int64_t skew_ms;
	int has_skew;
	int64_t paused_until_ms; /* after a refusal */
	char last_error[JUKI_REASON_MAX + JUKI_DETAIL_MAX + 4];
};

struct pending_alert {
	uint64_t seq;
	int64_t time_ms;
	char code[32];
	char peer[JUKI_URN_MAX];
	char addr[64];
	char detail[JUKI_MONITOR_DETAIL];
};

struct juki_monitor {
	struct juki_node *node;
	const struct juki_monitor_conf *conf;
	int board;
	struct watcher w[JUKI_MONITOR_WATCHERS];
	size_t nw;
	struct event *beat;  /* heartbeats */
	struct event *check; /* down detection, at a board */
	struct event *flush; /* forwarding alerts */
	uint64_t hb_seq;
	int64_t started_ms;
	int64_t board_since_ms;
	/* alerts to forward */
	struct pending_alert q[ALERT_QUEUE];
	size_t nq;
	int flush_armed;
	struct juki_monitor_rate rate;
	/* refused handshakes */
	int64_t refusals[REFUSALS];
	size_t nrefusals; /* total pushed */
	int64_t intrusion_ms;
	int intrusion_due;
	char intrusion_addr[64];
};

static struct juki_monitor *
monitor_of(const struct juki_node *node)
{
	return juki_node_module(node, JUKI_MODULE_MONITOR);
}

/* --- the validator ---------------------------------------------------------------------- */

static int
bad(char *why, size_t whylen, const char *member, const char *rule)
{
	snprintf(why, whylen, "%s: %s", member, rule);
	return JUKI_EINVAL;
}

static int
is_count(const json_t *v, json_int_t max)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

static int
is_time(const json_t *v)
{
	int64_t ms;

	return json_is_string(v) && json_string_length(v) < 40 &&
	       juki_clock_parse(json_string_value(v), &ms) == 0;
}

/* Printable ASCII/UTF-8 text of 1..max bytes without control characters. */
static int
is_text(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL || (len = json_string_length(v)) == 0 || len > max || strlen(s) != len) {
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* A token: [A-Za-z0-9._+-], 1..max bytes (daemon names, versions, codes). */
static int
is_token(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL || (len = json_string_length(v)) == 0 || len > max || strlen(s) != len) {
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '+' || c == '-')) {
			return 0;
		}
	}
	return 1;
}

#define COUNT_MAX ((json_int_t)1 << 53)
#define SKEW_MAX  ((json_int_t)366 * 86400 * 1000)

int
juki_monitor_heartbeat_check(const json_t *body, char *why, size_t whylen)
{
	const json_t *v, *m;
	static const char *const queue_keys[] = {"outbox", "oldest_ms", "rejected", "inbox"};

	if (!json_is_object(body)) {
		return bad(why, whylen, "body", "an object");
	}
	if (!is_count(json_object_get(body, "seq"), COUNT_MAX)) {
		return bad(why, whylen, "seq", "a count");
	}
	v = json_object_get(body, "interval_ms");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > JUKI_DAY_MS) {
		return bad(why, whylen, "interval_ms", "1 to 86400000");
	}
	if (!is_time(json_object_get(body, "started"))) {
		return bad(why, whylen, "started", "an RFC 3339 UTC time");
	}
	if (!is_token(json_object_get(body, "daemon"), 32)) {
		return bad(why, whylen, "daemon", "a name of 1..32 [A-Za-z0-9._+-]");
	}
	if (!is_token(json_object_get(body, "version"), 32)) {
		return bad(why, whylen, "version", "a version of 1..32 [A-Za-z0-9._+-]");
	}
	v = json_object_get(body, "state");
	if (!json_is_string(v) || (strcmp(json_string_value(v), "ok") != 0 &&
				   strcmp(json_string_value(v), "degraded") != 0)) {
		return bad(why, whylen, "state", "\"ok\" or \"degraded\"");
	}
	m = json_object_get(body, "queues");
	if (!json_is_object(m)) {
		return bad(why, whylen, "queues", "an object");
	}
	for (size_t i = 0; i < sizeof(queue_keys) / sizeof(queue_keys[0]); i++) {
		v = json_object_get(m, queue_keys[i]);
		if (v != NULL && !is_count(v, COUNT_MAX)) {
			snprintf(why, whylen, "queues.%s: a count", queue_keys[i]);
			return JUKI_EINVAL;
		}
	}
	if (json_object_size(m) > 16) {
		return bad(why, whylen, "queues", "16 members at most");
	}
	v = json_object_get(body, "reconcile");
	if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
		return bad(why, whylen, "reconcile", "an object or null");
	}
	m = json_object_get(body, "disk");
	if (m != NULL) {
		if (!json_is_object(m)) {
			return bad(why, whylen, "disk", "an object");
		}
		if ((v = json_object_get(m, "store_free_bytes")) != NULL &&
		    !is_count(v, COUNT_MAX)) {
			return bad(why, whylen, "disk.store_free_bytes", "a count");
		}
		if ((v = json_object_get(m, "store_bytes")) != NULL && !is_count(v, COUNT_MAX)) {
			return bad(why, whylen, "disk.store_bytes", "a count");
		}
	}
	m = json_object_get(body, "certs");
	if (m != NULL) {
		if (!json_is_object(m)) {
			return bad(why, whylen, "certs", "an object");
		}
		v = json_object_get(m, "node_not_after");
		if (v != NULL && !json_is_null(v) && !is_time(v)) {
			return bad(why, whylen, "certs.node_not_after", "a time or null");
		}
		v = json_object_get(m, "crl_next_update");
		if (v != NULL && !json_is_null(v) && !is_time(v)) {
			return bad(why, whylen, "certs.crl_next_update", "a time or null");
		}
	}
	m = json_object_get(body, "alerts");
	if (m != NULL &&
	    (!json_is_object(m) || !is_count(json_object_get(m, "total"), COUNT_MAX))) {
		return bad(why, whylen, "alerts", "an object with total, a count");
	}
	v = json_object_get(body, "skew_ms");
	if (v != NULL && !json_is_null(v) &&
	    (!json_is_integer(v) || json_integer_value(v) < -SKEW_MAX ||
	     json_integer_value(v) > SKEW_MAX)) {
		return bad(why, whylen, "skew_ms", "milliseconds within a year, or null");
	}
	for (const struct juki_monitor_part *p = parts; p->name != NULL; p++) {
		v = json_object_get(body, p->name);
		if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
			return bad(why, whylen, p->name, "an object or null");
		}
	}
	for (size_t i = 0; part_checks[i].name != NULL; i++) {
		char sub[JUKI_DETAIL_MAX];

		v = json_object_get(body, part_checks[i].name);
		if (v != NULL && !json_is_null(v) &&
		    part_checks[i].check(v, sub, sizeof(sub)) != 0) {
			return bad(why, whylen, part_checks[i].name, sub);
		}
	}
	return 0;
}

int
juki_monitor_alert_check(const json_t *body, char *why, size_t whylen)
{
	const json_t *v;
	const char *cls;

	if (!json_is_object(body)) {
		return bad(why, whylen, "body", "an object");
	}
	if (!is_count(json_object_get(body, "seq"), COUNT_MAX)) {
		return bad(why, whylen, "seq", "a count");
	}
	if (!is_time(json_object_get(body, "time"))) {
		return bad(why, whylen, "time", "an RFC 3339 UTC time");
	}
	if (!is_token(json_object_get(body, "code"), 31)) {
		return bad(why, whylen, "code", "a code of 1..31 [A-Za-z0-9._+-]");
	}
	v = json_object_get(body, "peer");
	if (v != NULL && !json_is_null(v) && !is_text(v, JUKI_URN_MAX - 1)) {
		return bad(why, whylen, "peer", "an identity or null");
	}
	v = json_object_get(body, "addr");
	if (v != NULL && !json_is_null(v) && !is_text(v, 63)) {
		return bad(why, whylen, "addr", "an address or null");
	}
	v = json_object_get(body, "detail");
	if (!json_is_string(v) || json_string_length(v) >= JUKI_MONITOR_DETAIL ||
	    (json_string_length(v) > 0 && !is_text(v, JUKI_MONITOR_DETAIL - 1))) {
		return bad(why, whylen, "detail",
			   "text below 256 bytes without control characters");
	}
	cls = json_string_value(json_object_get(body, "class"));
	if (cls == NULL || (strcmp(cls, "fault") != 0 && strcmp(cls, "intrusion") != 0)) {
		return bad(why, whylen, "class", "\"fault\" or \"intrusion\"");
	}
	return 0;
}

const char *
juki_monitor_alert_class(const char *code)
{
	static const char *const intrusion[] = {
	    "intrusion-suspected",
	    "audit-missing",
	    "audit-rollback",
	    "audit-broken",
	    "integrity-mismatch",
	    "replay-mismatch",
	    NULL,
	};

	for (size_t i = 0; intrusion[i] != NULL; i++) {
		if (strcmp(code, intrusion[i]) == 0) {
			return "intrusion";
		}
	}
	return "fault";
}

/* --- watched side ------------------------------------------------------------------------- */

static size_t
add_urn(char urns[][JUKI_URN_MAX], size_t n, const struct juki_ident *self, const char *urn)
{
	if (strcmp(urn, self->urn) == 0 || n == JUKI_MONITOR_WATCHERS) {
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(urns[i], urn) == 0) {
			return n;
		}
	}
	snprintf(urns[n], JUKI_URN_MAX, "%s", urn);
	return n + 1;
}

size_t
juki_monitor_watchers(const struct juki_ident *self, const struct juki_monitor_conf *conf,
		      char urns[][JUKI_URN_MAX])
{
	char pref[3], urn[JUKI_URN_MAX];
	size_t n = 0;

	for (size_t i = 0; i < conf->nwatchers; i++) {
		if (strcmp(conf->watchers[i], "auto") != 0) {
			n = add_urn(urns, n, self, conf->watchers[i]);
			continue;
		}
		if ((self->kind == JUKI_KIND_CS ||
		     (self->kind == JUKI_KIND_AUTHLINK && strcmp(self->id, "0") != 0)) &&
		    juki_ident_pref_of(self, pref) == 0) {
			snprintf(urn, sizeof(urn), "urn:juki:pref:%s", pref);
			n = add_urn(urns, n, self, urn);
		}
		/* Every national centre; a centre, the others (add_urn() skips self). */
		for (size_t c = 0; c < conf->ncentres; c++) {
			n = add_urn(urns, n, self, conf->centres[c]);
		}
	}
	return n;
}

/* The watchers conf names; those kept from before keep what was learnt of them. */
static void
set_watchers(struct juki_monitor *m)
{
	struct watcher old[JUKI_MONITOR_WATCHERS];
	char urns[JUKI_MONITOR_WATCHERS][JUKI_URN_MAX];
	size_t nold = m->nw;

	memcpy(old, m->w, sizeof(old));
	m->nw = juki_monitor_watchers(juki_node_self(m->node), m->conf, urns);
	for (size_t i = 0; i < m->nw; i++) {
		memset(&m->w[i], 0, sizeof(m->w[i]));
		snprintf(m->w[i].urn, sizeof(m->w[i].urn), "%s", urns[i]);
		m->w[i].last_ok_ms = INT64_MIN;
		for (size_t j = 0; j < nold; j++) {
			if (strcmp(m->w[i].urn, old[j].urn) == 0) {
				m->w[i] = old[j];
			}
		}
	}
}

static int
keeps_board(const struct juki_node *node, const struct juki_monitor_conf *conf)
{
	enum juki_kind k = juki_node_self(node)->kind;

	if (conf->board == JUKI_MONITOR_BOARD_AUTO) {
		return k == JUKI_KIND_JLIS || k == JUKI_KIND_PREF;
	}
	return conf->board == JUKI_MONITOR_BOARD_YES;
}

static json_t *
time_json(int64_t ms)
{
	char when[32];

	if (ms == INT64_MIN || juki_clock_format(ms, when, sizeof(when)) != 0) {
		return json_null();
	}
	return json_string(when);
}

/* notAfter of the node's certificate and nextUpdate of its CRL (NULL when unknown). */
static json_t *
certs_json(const struct juki_node_conf *conf)
{
	json_t *c = json_object();
	FILE *f;
	X509 *x = NULL;
	X509_CRL *crl = NULL;
	struct tm tm;

	if (c == NULL) {
		return NULL;
	}
	json_object_set_new(c, "node_not_after", json_null());
	json_object_set_new(c, "crl_next_update", json_null());
	if (conf->tls.cert != NULL && (f = fopen(conf->tls.cert, "r")) != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		json_object_set_new(c, "node_not_after", time_json((int64_t)timegm(&tm) * 1000));
	}
	X509_free(x);
	if (conf->tls.crl != NULL && (f = fopen(conf->tls.crl, "r")) != NULL) {
		crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL &&
	    ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm) == 1) {
		json_object_set_new(c, "crl_next_update", time_json((int64_t)timegm(&tm) * 1000));
	}
	X509_CRL_free(crl);
	return c;
}

static json_t *
disk_json(const char *store)
{
	struct statvfs vfs;
	struct stat st;
	char dir[PATH_MAX], wal[PATH_MAX];
	const char *slash = strrchr(store, '/');
	int64_t bytes = 0;
	json_t *d = json_object();

	if (d == NULL) {
		return NULL;
	}
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		snprintf(dir, sizeof(dir), "%.*s",
			 (int)(slash - store) > 0 ? (int)(slash - store) : 1, store);
	}
	if (statvfs(dir, &vfs) == 0) {
		json_object_set_new(
		    d, "store_free_bytes",
		    json_integer((json_int_t)vfs.f_bavail * (json_int_t)vfs.f_frsize));
	}
	if (stat(store, &st) == 0) {
		bytes += st.st_size;
	}
	snprintf(wal, sizeof(wal), "%s-wal", store);
	if (stat(wal, &st) == 0) {
		bytes += st.st_size;
	}
	json_object_set_new(d, "store_bytes", json_integer(bytes));
	return d;
}

/* The heartbeat's body without skew_ms (which is each watcher's own). */
static json_t *
heartbeat_body(struct juki_monitor *m)
{
	struct juki_node *node = m->node;
	struct juki_store *store = juki_node_store(node);
	int64_t now = juki_node_now_ms(node), count = 0, oldest = 0, rejected = 0;
	int degraded = 0;
	json_t *b, *v;

	juki_outbox_stats(store, &count, &oldest);
	juki_outbox_rejected_count(store, &rejected);
	if (oldest != 0 && now - oldest > m->conf->down_after) {
		degraded = 1; /* something waits longer than a watcher would call a node down */
	}
	if (juki_store_full(store)) {
		degraded = 1;
	}
	b = json_pack("{s:I,s:I,s:o,s:s,s:s,s:{s:I,s:I,s:I,s:I},s:n,s:o,s:o,s:{s:I}}", "seq",
		      (json_int_t)++m->hb_seq, "interval_ms", (json_int_t)m->conf->interval,
		      "started", time_json(m->started_ms), "daemon", juki_node_daemon_name(node),
		      "version", JUKI_VERSION, "queues", "outbox", (json_int_t)count, "oldest_ms",
		      (json_int_t)(oldest != 0 ? now - oldest : 0), "rejected",
		      (json_int_t)rejected, "inbox", (json_int_t)juki_node_received(node),
		      "reconcile", "disk", disk_json(juki_store_path(store)), "certs",
		      certs_json(juki_node_conf(node)), "alerts", "total",
		      (json_int_t)juki_alerts_count(juki_node_alerts(node), NULL));
	if (b == NULL) {
		return NULL;
	}
	for (const struct juki_monitor_part *p = parts; p->name != NULL; p++) {
		if (p->make != NULL && (v = p->make(node)) != NULL) {
			if (json_is_object(v) && json_is_true(json_object_get(v, "ok")) == 0 &&
			    json_object_get(v, "ok") != NULL) {
				degraded = 1;
			}
			json_object_set_new(b, p->name, v);
		}
	}
	json_object_set_new(b, "state", json_string(degraded ? "degraded" : "ok"));
	return b;
}

static int
queued_count(struct juki_monitor *m, const char *dest, const char *type, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM outbox WHERE dest = ?1 AND service = "
				  "'monitor' AND (?2 IS NULL OR type = ?2)";
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(m->node), sql);
	int rc;

	*n = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	if (type != NULL) {
		sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : JUKI_ESTORE;
}

static int
put(struct juki_monitor *m, const char *type, const char *dest, json_t *body)
{
	struct juki_msg msg;
	int rc;

	rc = juki_msg_init(&msg, type, juki_node_self(m->node)->urn, dest, NULL, body,
			   juki_node_clock(m->node));
	if (rc != 0) {
		return rc;
	}
	rc = juki_outbox_put(juki_node_store(m->node), &msg, "monitor", juki_node_now_ms(m->node),
			     NULL);
	juki_msg_clear(&msg);
	return rc;
}

static void
send_heartbeats(struct juki_monitor *m)
{
	struct juki_store *store = juki_node_store(m->node);
	int64_t now = juki_node_now_ms(m->node), n;
	json_t *body = NULL;
	int queued = 0, rc = 0;

	if (m->nw == 0 || juki_store_in_txn(store) || juki_store_begin(store) != 0) {
		return;
	}
	for (size_t i = 0; rc == 0 && i < m->nw; i++) {
		struct watcher *w = &m->w[i];
		json_t *b;

		if (now < w->paused_until_ms ||
		    queued_count(m, w->urn, JUKI_MSG_HEARTBEAT, &n) != 0 || n > 0) {
			continue; /* at most one undelivered heartbeat per watcher */
		}
		if (body == NULL && (body = heartbeat_body(m)) == NULL) {
			rc = JUKI_ENOMEM;
			break;
		}
		if ((b = json_deep_copy(body)) == NULL) {
			rc = JUKI_ENOMEM;
			break;
		}
		json_object_set_new(b, "skew_ms",
				    w->has_skew ? json_integer(w->skew_ms) : json_null());
		if ((rc = put(m, JUKI_MSG_HEARTBEAT, w->urn, b)) == 0) {
			queued++;
		}
	}
	json_decref(body);
	if (rc == 0 && (rc = juki_store_commit(store)) == 0) {
		if (queued > 0) {
			juki_node_kick(m->node);
		}
		return;
	}
	juki_store_rollback(store);
	log_warnx("monitor: heartbeat not queued: %s", juki_strerror(rc));
}

static void
beat(evutil_socket_t fd, short what, void *arg)
{
	struct juki_monitor *m = arg;
	struct timeval tv = {m->conf->interval / 1000, (m->conf->interval % 1000) * 1000};

	(void)fd;
	(void)what;
	send_heartbeats(m);
	evtimer_add(m->beat, &tv);
}

int
juki_monitor_on_ack(struct juki_node *node, const struct juki_outbox_entry *entry,
		    const struct juki_ack *ack)
{
	struct juki_monitor *m = monitor_of(node);
	int64_t now, t;
	const char *when;

	if (strcmp(entry->service, "monitor") != 0 ||
	    (strcmp(entry->type, JUKI_MSG_HEARTBEAT) != 0 &&
	     strcmp(entry->type, JUKI_MSG_MONITOR_ALERT) != 0)) {
		return 0;
	}
	if (m == NULL) {
		return 1;
	}
	now = juki_node_now_ms(node);
	for (size_t i = 0; i < m->nw; i++) {
		struct watcher *w = &m->w[i];

		if (strcmp(w->urn, entry->dest) != 0) {
			continue;
		}
		if (ack->status == JUKI_ACK_REJECTED) {
			snprintf(w->last_error, sizeof(w->last_error), "%s: %s", ack->reason,
				 ack->detail);
			log_warnx("monitor: %s refused a %s: %s: %s", w->urn, entry->type,
				  ack->reason, ack->detail);
			if (strcmp(entry->type, JUKI_MSG_HEARTBEAT) == 0) {
				w->paused_until_ms = now + REFUSED_PAUSE * m->conf->interval;
			}
			return 1;
		}
		if (strcmp(entry->type, JUKI_MSG_HEARTBEAT) != 0) {
			return 1;
		}
		w->last_ok_ms = now;
		w->last_error[0] = '\0';
		when = json_string_value(json_object_get(ack->result, "time"));
		if (when != NULL && juki_clock_parse(when, &t) == 0) {
			w->skew_ms = now - t;
			w->has_skew = 1;
		}
		return 1;
	}
	return 1;
}

/* --- forwarding alerts ------------------------------------------------------------------- */

static int
is_refusal(const char *code)
{
	static const char *const codes[] = {
	    "not-tls",        "unknown-certificate", "revoked-certificate", "expired-certificate",
	    "no-certificate", "identity-mismatch",   "handshake-failed",    NULL,
	};

	for (size_t i = 0; codes[i] != NULL; i++) {
		if (strcmp(code, codes[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
arm_flush(struct juki_monitor *m, int64_t after_ms)
{
	struct timeval tv = {after_ms / 1000, (after_ms % 1000) * 1000};

	if (!m->flush_armed || after_ms == 0) {
		evtimer_add(m->flush, &tv);
		m->flush_armed = 1;
	}
}

int64_t
juki_monitor_rate_roll(struct juki_monitor_rate *r, int64_t now_ms)
{
	int64_t gone = 0;

	if (now_ms - r->window_ms >= MINUTE) {
		gone = r->suppressed;
		r->window_ms = now_ms;
		r->in_window = 0;
		r->suppressed = 0;
	}
	return gone;
}

int
juki_monitor_rate_take(struct juki_monitor_rate *r, int64_t rate)
{
	if (r->in_window < rate) {
		r->in_window++;
		return 1;
	}
	r->suppressed++;
	return 0;
}

/* The alert listener (alert.h): take note, forward later. */
static void
on_alert(void *ctx, uint64_t seq, int64_t time_ms, const char *code, const char *peer,
	 const char *addr, const char *detail)
{
	struct juki_monitor *m = ctx;
	struct pending_alert *a;

	if (is_refusal(code)) {
		size_t n = (size_t)m->conf->intrusion_refusals;
		int64_t first;

		m->refusals[m->nrefusals % REFUSALS] = time_ms;
		m->nrefusals++;
		if (m->nrefusals >= n) {
			first = m->refusals[(m->nrefusals - n) % REFUSALS];
			if (time_ms - first < MINUTE &&
			    (m->intrusion_ms == 0 || time_ms - m->intrusion_ms >= MINUTE)) {
				m->intrusion_ms = time_ms;
				m->intrusion_due = 1;
				snprintf(m->intrusion_addr, sizeof(m->intrusion_addr), "%s", addr);
				arm_flush(m, 0);
			}
		}
	}
	if (m->nw == 0) {
		return;
	}
	if (m->nq == ALERT_QUEUE) {
		m->rate.suppressed++;
		return;
	}
	a = &m->q[m->nq++];
	a->seq = seq;
	a->time_ms = time_ms;
	snprintf(a->code, sizeof(a->code), "%s", code);
	snprintf(a->peer, sizeof(a->peer), "%s", peer);
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
	arm_flush(m, 0);
}

static json_t *
alert_body(const struct pending_alert *a)
{
	return json_pack("{s:I,s:o,s:s,s:s?,s:s?,s:s,s:s}", "seq", (json_int_t)a->seq, "time",
			 time_json(a->time_ms), "code", a->code, "peer",
			 a->peer[0] ? a->peer : NULL, "addr", a->addr[0] ? a->addr : NULL, "detail",
			 a->detail, "class", juki_monitor_alert_class(a->code));
}

static int
put_alert(struct juki_monitor *m, const struct pending_alert *a)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < m->nw; i++) {
		json_t *body = alert_body(a);

		rc = body != NULL ? put(m, JUKI_MSG_MONITOR_ALERT, m->w[i].urn, body) : JUKI_ENOMEM;
	}
	return rc;
}

static void
flush(evutil_socket_t fd, short what, void *arg)
{
	struct juki_monitor *m = arg;
	struct juki_store *store = juki_node_store(m->node);
	int64_t now = juki_node_now_ms(m->node);
	size_t put_n = 0;
	int rc = 0;

	(void)fd;
	(void)what;
	m->flush_armed = 0;
	if (m->intrusion_due) {
		m->intrusion_due = 0;
		juki_alert(juki_node_alerts(m->node), "intrusion-suspected", NULL,
			   m->intrusion_addr[0] ? m->intrusion_addr : NULL,
			   "%lld or more refused handshakes within a minute",
			   (long long)m->conf->intrusion_refusals);
	}
	if (m->nw == 0) {
		m->nq = 0;
		return;
	}
	if (juki_store_in_txn(store)) {
		arm_flush(m, 100);
		return;
	}
	if (juki_store_begin(store) != 0) {
		arm_flush(m, 1000);
		return;
	}
	for (size_t i = 0; rc == 0 && i <= m->nq; i++) {
		int64_t gone = juki_monitor_rate_roll(&m->rate, now);

		if (gone > 0) {
			struct pending_alert s = {.seq = 0, .time_ms = now};

			snprintf(s.code, sizeof(s.code), "alerts-suppressed");
			snprintf(s.detail, sizeof(s.detail),
				 "%lld alerts were not forwarded in the last minute "
				 "(monitor.alert_rate %lld); see juki-ctl alerts there",
				 (long long)gone, (long long)m->conf->alert_rate);
			rc = put_alert(m, &s);
			put_n++;
		}
		if (i == m->nq || rc != 0) {
			break;
		}
		if (juki_monitor_rate_take(&m->rate, m->conf->alert_rate)) {
			rc = put_alert(m, &m->q[i]);
			put_n++;
		}
	}
	if (rc == 0 && (rc = juki_store_commit(store)) == 0) {
		m->nq = 0;
		if (put_n > 0) {
			juki_node_kick(m->node);
		}
	} else {
		juki_store_rollback(store);
		log_warnx("monitor: alerts not forwarded: %s", juki_strerror(rc));
		m->nq = 0;
	}
	if (m->rate.suppressed > 0) {
		arm_flush(m, m->rate.window_ms + MINUTE - now);
	}
}

/* --- the board --------------------------------------------------------------------------- */

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
on_heartbeat(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char get_sql[] =
	    "SELECT down, down_since_ms FROM monitor_nodes WHERE node = ?1";
	static const char put_sql[] =
	    "INSERT INTO monitor_nodes (node, kind, pref, daemon, version, state, last_seen_ms,"
	    " skew_ms, down, down_since_ms, heartbeat) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0,"
	    " NULL, ?9) ON CONFLICT (node) DO UPDATE SET kind = excluded.kind, pref = "
	    "excluded.pref, daemon = excluded.daemon, version = excluded.version, state = "
	    "excluded.state, last_seen_ms = excluded.last_seen_ms, skew_ms = excluded.skew_ms,"
	    " down = 0, down_since_ms = NULL, heartbeat = excluded.heartbeat";
	struct juki_node *node = ctx;
	struct juki_monitor *m = monitor_of(node);
	struct juki_store *store = juki_node_store(node);
	int64_t now = juki_node_now_ms(node), down_since = 0;
	struct juki_ident from;
	sqlite3_stmt *st;
	char why[JUKI_DETAIL_MAX], pref[3], *text;
	size_t len;
	int was_down = 0, rc;
	const json_t *skew;

	if (m == NULL || !m->board) {
		return juki_reject_set(rej, JUKI_R_NOT_WATCHING, "%s keeps no board",
				       juki_node_self(node)->urn);
	}
	len = json_dumpb(msg->body, NULL, 0, JSON_COMPACT);
	if (len > JUKI_MONITOR_BODY_MAX) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: %zu bytes, at most %d", len,
				       JUKI_MONITOR_BODY_MAX);
	}
	if (juki_monitor_heartbeat_check(msg->body, why, sizeof(why)) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s", why);
	}
	if (juki_ident_parse(msg->from, &from) != 0) {
		return juki_reject_set(rej, JUKI_R_SENDER, "from: not an identity");
	}
	if ((st = juki_store_prepare(store, get_sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->from, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		was_down = sqlite3_column_int(st, 0);
		down_since = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if ((text = json_dumps(msg->body, JSON_COMPACT)) == NULL) {
		return JUKI_ENOMEM;
	}
	if ((st = juki_store_prepare(store, put_sql)) == NULL) {
		free(text);
		return JUKI_ESTORE;
	}
	skew = json_object_get(msg->body, "skew_ms");
	sqlite3_bind_text(st, 1, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, juki_kind_name(from.kind), -1, SQLITE_STATIC);
	if (juki_ident_pref_of(&from, pref) == 0) {
		sqlite3_bind_text(st, 3, pref, -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 4, json_string_value(json_object_get(msg->body, "daemon")), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, json_string_value(json_object_get(msg->body, "version")), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 6, json_string_value(json_object_get(msg->body, "state")), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now);
	if (json_is_integer(skew)) {
		sqlite3_bind_int64(st, 8, json_integer_value(skew));
	}
	sqlite3_bind_text(st, 9, text, -1, SQLITE_STATIC);
	rc = step_done(st);
	free(text);
	if (rc != 0) {
		return rc;
	}
	for (const struct juki_monitor_part *p = parts; p->name != NULL; p++) {
		const json_t *v = json_object_get(msg->body, p->name);

		if (p->observe != NULL && v != NULL) {
			p->observe(node, msg->from, v, now);
		}
	}
	if (was_down) {
		log_notice("monitor: %s is back: heartbeats again after %llds down", msg->from,
			   (long long)((now - down_since) / 1000));
	}
	rej->result = json_pack("{s:o}", "time", time_json(now));
	return rej->result != NULL ? 0 : JUKI_ENOMEM;
}

static int
on_alert_msg(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] =
	    "INSERT INTO monitor_alerts (node, pref, seq, time_ms, code, class, peer, addr, detail,"
	    " received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	static const char prune[] = "DELETE FROM monitor_alerts WHERE id <= ?1";
	struct juki_node *node = ctx;
	struct juki_monitor *m = monitor_of(node);
	struct juki_store *store = juki_node_store(node);
	const json_t *b = msg->body;
	struct juki_ident from;
	sqlite3_stmt *st;
	char why[JUKI_DETAIL_MAX], pref[3];
	int64_t t = 0, id;
	int rc;

	if (m == NULL || !m->board) {
		return juki_reject_set(rej, JUKI_R_NOT_WATCHING, "%s keeps no board",
				       juki_node_self(node)->urn);
	}
	if (juki_monitor_alert_check(b, why, sizeof(why)) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s", why);
	}
	if (juki_ident_parse(msg->from, &from) != 0) {
		return juki_reject_set(rej, JUKI_R_SENDER, "from: not an identity");
	}
	juki_clock_parse(json_string_value(json_object_get(b, "time")), &t);
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->from, -1, SQLITE_STATIC);
	if (juki_ident_pref_of(&from, pref) == 0) {
		sqlite3_bind_text(st, 2, pref, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 3, json_integer_value(json_object_get(b, "seq")));
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_text(st, 5, json_string_value(json_object_get(b, "code")), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, json_string_value(json_object_get(b, "class")), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, json_string_value(json_object_get(b, "peer")), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, json_string_value(json_object_get(b, "addr")), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, json_string_value(json_object_get(b, "detail")), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, juki_node_now_ms(node));
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	id = sqlite3_last_insert_rowid(juki_store_db(store));
	if (id > JUKI_MONITOR_ALERTS_KEPT && (st = juki_store_prepare(store, prune)) != NULL) {
		sqlite3_bind_int64(st, 1, id - JUKI_MONITOR_ALERTS_KEPT);
		(void)step_done(st);
	}
	log_notice("monitor: alert from %s: %s (%s)", msg->from,
		   json_string_value(json_object_get(b, "code")),
		   json_string_value(json_object_get(b, "class")));
	return 0;
}

const struct juki_handler juki_monitor_handlers[] = {
    {.type = JUKI_MSG_HEARTBEAT, .service = JUKI_SVC_MONITOR, .fn = on_heartbeat, .query = 1},
    {.type = JUKI_MSG_MONITOR_ALERT, .service = JUKI_SVC_MONITOR, .fn = on_alert_msg},
    JUKI_NOTICE_HANDLERS,
    {.type = NULL},
};

/* Nodes silent for down_after: down, alerted once, until they beat again. */
static void
check_down(evutil_socket_t fd, short what, void *arg)
{
	static const char sel[] = "SELECT node, last_seen_ms FROM monitor_nodes WHERE down = 0 AND"
				  " last_seen_ms < ?1 ORDER BY node LIMIT 1000";
	static const char upd[] =
	    "UPDATE monitor_nodes SET down = 1, down_since_ms = ?2 WHERE node = ?1";
	struct juki_monitor *m = arg;
	struct juki_store *store = juki_node_store(m->node);
	int64_t now = juki_node_now_ms(m->node), cutoff = now - m->conf->down_after;
	int64_t period = m->conf->down_after / 4;
	struct timeval tv;
	sqlite3_stmt *st, *up;
	char when[32];
	struct {
		char urn[JUKI_URN_MAX];
		int64_t last;
	} *gone = NULL;
	size_t n = 0, cap = 0;

	(void)fd;
	(void)what;
	if (period < 100) {
		period = 100;
	} else if (period > 5000) {
		period = 5000;
	}
	tv.tv_sec = period / 1000;
	tv.tv_usec = (period % 1000) * 1000;
	evtimer_add(m->check, &tv);
	/* A board just started has heard from nobody yet: no one is down before down_after. */
	if (m->board_since_ms > cutoff || juki_store_in_txn(store)) {
		return;
	}
	if ((st = juki_store_prepare(store, sel)) == NULL) {
		return;
	}
	sqlite3_bind_int64(st, 1, cutoff);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			void *g = realloc(gone, (cap = cap ? cap * 2 : 8) * sizeof(*gone));

			if (g == NULL) {
				break;
			}
			gone = g;
		}
		snprintf(gone[n].urn, sizeof(gone[n].urn), "%s", sqlite3_column_text(st, 0));
		gone[n].last = sqlite3_column_int64(st, 1);
		n++;
	}
	sqlite3_reset(st);
	if (n == 0 || juki_store_begin(store) != 0) {
		free(gone);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if ((up = juki_store_prepare(store, upd)) == NULL) {
			break;
		}
		sqlite3_bind_text(up, 1, gone[i].urn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 2, now);
		(void)step_done(up);
	}
	if (juki_store_commit(store) != 0) {
		juki_store_rollback(store);
		free(gone);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		juki_clock_format(gone[i].last, when, sizeof(when));
		juki_alert(juki_node_alerts(m->node), "node-down", gone[i].urn, NULL,
			   "no heartbeat for %llds (last %s): the node or the line to it is down",
			   (long long)((now - gone[i].last) / 1000), when);
	}
	free(gone);
}

static const char *
node_state(int down, int intrusion, const char *hb_state)
{
	if (down) {
		return "down";
	}
	if (intrusion) {
		return "intrusion";
	}
	return hb_state != NULL && strcmp(hb_state, "degraded") == 0 ? "degraded" : "up";
}

json_t *
juki_monitor_board_json(struct juki_node *node, int pref)
{
	static const char nodes_sql[] =
	    "SELECT node, kind, pref, daemon, version, state, last_seen_ms, skew_ms, down,"
	    " heartbeat,"
	    " (SELECT count(*) FROM monitor_alerts a WHERE a.node = n.node AND a.received_ms >= "
	    "?2),"
	    " (SELECT count(*) FROM monitor_alerts a WHERE a.node = n.node AND a.received_ms >= ?2"
	    "  AND a.class = 'intrusion')"
	    " FROM monitor_nodes n WHERE ?1 IS NULL OR pref = ?1 ORDER BY node";
	static const char alerts_sql[] =
	    "SELECT node, seq, time_ms, code, class, peer, detail, received_ms FROM monitor_alerts"
	    " WHERE ?1 IS NULL OR pref = ?1 ORDER BY id DESC LIMIT ?2";
	struct juki_monitor *m = monitor_of(node);
	struct juki_store *store;
	int64_t now;
	json_t *board, *nodes, *alerts;
	sqlite3_stmt *st;
	char p[4];

	if (m == NULL || !m->board || pref < 0 || pref > 99) {
		return NULL;
	}
	store = juki_node_store(node);
	now = juki_node_now_ms(node);
	snprintf(p, sizeof(p), "%02d", pref);
	board = json_pack("{s:s,s:o,s:[],s:[]}", "self", juki_node_self(node)->urn, "time",
			  time_json(now), "nodes", "alerts");
	if (board == NULL) {
		return NULL;
	}
	nodes = json_object_get(board, "nodes");
	alerts = json_object_get(board, "alerts");
	if ((st = juki_store_prepare(store, nodes_sql)) == NULL) {
		json_decref(board);
		return NULL;
	}
	if (pref > 0) {
		sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 2, now - m->conf->alert_open);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *hb = json_loads((const char *)sqlite3_column_text(st, 9), 0, NULL);
		json_t *queues = json_object_get(hb, "queues");

		json_array_append_new(
		    nodes, json_pack("{s:s,s:s,s:s?,s:s,s:s,s:s,s:o,s:o,s:O,s:I,s:o}", "node",
				     sqlite3_column_text(st, 0), "kind", sqlite3_column_text(st, 1),
				     "pref", sqlite3_column_text(st, 2), "daemon",
				     sqlite3_column_text(st, 3), "version",
				     sqlite3_column_text(st, 4), "state",
				     node_state(sqlite3_column_int(st, 8),
						sqlite3_column_int64(st, 11) > 0,
						(const char *)sqlite3_column_text(st, 5)),
				     "last_seen", time_json(sqlite3_column_int64(st, 6)), "skew_ms",
				     sqlite3_column_type(st, 7) == SQLITE_NULL
					 ? json_null()
					 : json_integer(sqlite3_column_int64(st, 7)),
				     "queues", queues != NULL ? queues : json_null(), "alerts_open",
				     (json_int_t)sqlite3_column_int64(st, 10), "heartbeat",
				     hb != NULL ? hb : json_null()));
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, alerts_sql)) == NULL) {
		json_decref(board);
		return NULL;
	}
	if (pref > 0) {
		sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, 2, BOARD_ALERTS);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    alerts,
		    json_pack(
			"{s:s,s:I,s:o,s:s,s:s,s:s?,s:s,s:o}", "node", sqlite3_column_text(st, 0),
			"seq", (json_int_t)sqlite3_column_int64(st, 1), "time",
			time_json(sqlite3_column_int64(st, 2)), "code", sqlite3_column_text(st, 3),
			"class", sqlite3_column_text(st, 4), "peer", sqlite3_column_text(st, 5),
			"detail", sqlite3_column_text(st, 6), "received",
			time_json(sqlite3_column_int64(st, 7))));
	}
	sqlite3_reset(st);
	return board;
}

static json_t *
board_counts(struct juki_monitor *m)
{
	static const char sql[] = "SELECT count(*), coalesce(sum(down), 0) FROM monitor_nodes";
	sqlite3_stmt *st;
	json_t *c = NULL;

	if (!m->board) {
		return json_null();
	}
	if ((st = juki_store_prepare(juki_node_store(m->node), sql)) == NULL) {
		return json_null();
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		c = json_pack("{s:I,s:I}", "nodes", (json_int_t)sqlite3_column_int64(st, 0), "down",
			      (json_int_t)sqlite3_column_int64(st, 1));
	}
	sqlite3_reset(st);
	return c != NULL ? c : json_null();
}

json_t *
juki_monitor_status(struct juki_node *node)
{
	struct juki_monitor *m = monitor_of(node);
	json_t *ws;
	int64_t n;

	if (m == NULL || (ws = json_array()) == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < m->nw; i++) {
		const struct watcher *w = &m->w[i];

		queued_count(m, w->urn, NULL, &n);
		json_array_append_new(
		    ws, json_pack("{s:s,s:o,s:o,s:I,s:s?}", "node", w->urn, "last_ok",
				  time_json(w->last_ok_ms), "skew_ms",
				  w->has_skew ? json_integer(w->skew_ms) : json_null(), "pending",
				  (json_int_t)n, "last_error",
				  w->last_error[0] ? w->last_error : NULL));
	}
	return json_pack("{s:o,s:o,s:I}", "watchers", ws, "board", board_counts(m), "interval_ms",
			 (json_int_t)m->conf->interval);
}

/* --- control ------------------------------------------------------------------------------ */

static int
cmd_board(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_monitor *m = monitor_of(node);
	const json_t *p = json_object_get(args, "pref");
	int pref = 0;

	if (m == NULL || !m->board) {
		return juki_ctl_fail(err, "conflict", "%s keeps no board (monitor.board)",
				     juki_node_self(node)->urn);
	}
	if (p != NULL) {
		if (json_is_integer(p) && json_integer_value(p) >= 1 &&
		    json_integer_value(p) <= 47) {
			pref = (int)json_integer_value(p);
		} else if (json_is_string(p) && strlen(json_string_value(p)) == 2 &&
			   atoi(json_string_value(p)) >= 1 && atoi(json_string_value(p)) <= 47) {
			pref = atoi(json_string_value(p));
		} else {
			return juki_ctl_fail(err, "usage", "pref: a prefecture code 01..47");
		}
	}
	*result = juki_monitor_board_json(node, pref);
	return *result != NULL ? 0 : juki_ctl_fail(err, "internal", "the board cannot be read");
}

const struct juki_ctl_cmd juki_monitor_cmds[] = {
    {"board", cmd_board, "the monitoring board: nodes, their states and alerts (args: pref)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},
    JUKI_NOTICE_CMDS,
    JUKI_WITNESS_CMDS,
    {NULL, NULL, NULL, 0, NULL},
};

/* --- life --------------------------------------------------------------------------------- */

/* Stop the services beside the board, the first n of them, last first. */
static void
services_stop(struct juki_node *node, size_t n)
{
	while (n-- > 0) {
		if (services[n].stop != NULL) {
			services[n].stop(node);
		}
	}
}

/* Start the services beside the board; on a failure those started are stopped again. */
static int
services_start(struct juki_node *node, char *err, size_t errlen)
{
	int rc;

	for (size_t i = 0; services[i].name != NULL; i++) {
		if (services[i].start != NULL && (rc = services[i].start(node, err, errlen)) != 0) {
			services_stop(node, i);
			return rc;
		}
	}
	return 0;
}

static size_t
services_count(void)
{
	size_t n = 0;

	while (services[n].name != NULL) {
		n++;
	}
	return n;
}

int
juki_monitor_start(struct juki_node *node, const struct juki_monitor_conf *conf, char *err,
		   size_t errlen)
{
	struct juki_monitor *m = calloc(1, sizeof(*m));
	struct event_base *base = juki_node_base(node);
	struct timeval zero = {0, 0};
	int rc;

	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	m->node = node;
	m->conf = conf;
	m->board = keeps_board(node, conf);
	m->started_ms = juki_node_now_ms(node);
	m->board_since_ms = m->started_ms;
	m->rate.window_ms = m->started_ms;
	set_watchers(m);
	if ((m->beat = evtimer_new(base, beat, m)) == NULL ||
	    (m->check = evtimer_new(base, check_down, m)) == NULL ||
	    (m->flush = evtimer_new(base, flush, m)) == NULL) {
		rc = JUKI_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = juki_node_module_set(node, JUKI_MODULE_MONITOR, m)) != 0) {
		snprintf(err, errlen, "monitor: runs already");
		goto fail;
	}
	if (m->board && (rc = services_start(node, err, errlen)) != 0) {
		juki_node_module_clear(node, JUKI_MODULE_MONITOR, m);
		goto fail;
	}
	juki_alerts_on_raise(juki_node_alerts(node), on_alert, m);
	evtimer_add(m->beat, &zero);
	if (m->board) {
		evtimer_add(m->check, &zero);
	}
	log_info("monitor: %zu watcher(s)%s", m->nw, m->board ? "; keeping a board" : "");
	return 0;
fail:
	if (m->beat != NULL) {
		event_free(m->beat);
	}
	if (m->check != NULL) {
		event_free(m->check);
	}
	if (m->flush != NULL) {
		event_free(m->flush);
	}
	free(m);
	return rc;
}

void
juki_monitor_reload(struct juki_node *node, const struct juki_monitor_conf *conf)
{
	struct juki_monitor *m = monitor_of(node);
	int board;

	if (m == NULL) {
		return;
	}
	m->conf = conf;
	set_watchers(m);
	board = keeps_board(node, conf);
	if (board && !m->board) {
		struct timeval zero = {0, 0};
		char err[256];

		m->board_since_ms = juki_node_now_ms(node);
		evtimer_add(m->check, &zero);
		if (services_start(node, err, sizeof(err)) != 0) {
			log_warnx("monitor: the board is kept, but not all beside it: %s", err);
		}
	} else if (!board && m->board) {
		evtimer_del(m->check);
		services_stop(node, services_count());
	} else if (board) {
		for (size_t i = 0; services[i].name != NULL; i++) {
			if (services[i].reload != NULL) {
				services[i].reload(node);
			}
		}
	}
	m->board = board;
}

void
juki_monitor_stop(struct juki_node *node)
{
	struct juki_monitor *m = monitor_of(node);

	if (m == NULL) {
		return;
	}
	if (m->board) {
		services_stop(node, services_count());
	}
	juki_alerts_on_raise(juki_node_alerts(node), NULL, NULL);
	juki_node_module_clear(node, JUKI_MODULE_MONITOR, m);
	event_free(m->beat);
	event_free(m->check);
	event_free(m->flush);
	free(m);
}
