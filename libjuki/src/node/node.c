#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/node/load.h"
#include "juki/node/log.h"
#include "juki/node/monitor.h"
#include "juki/node/node.h"
#include "juki/node/notice.h"
#include "juki/node/opcmds.h"
#include "juki/node/opport.h"
#include "juki/node/reconcile.h"
#include "juki/node/witness.h"
#include "juki/records/operator.h"
#include "juki/store/audit.h"
#include "juki/store/backup.h"
#include "juki/store/purge.h"

#define ALERT_RING 1024

/* A server node; the daemon's state (spec->size bytes) is priv. */
struct juki_node {
	struct juki_daemon *daemon;
	struct event_base *base;
	const struct juki_node_spec *spec;
	const struct juki_node_conf *conf;
	const void *daemon_conf; /* the whole configuration, of which conf is part */
	void *priv;
	struct juki_clock clock;
	struct juki_ident self;
	struct juki_tls *tls;
	struct juki_policy *policy;
	struct juki_store *store;
	struct juki_alerts *alerts;
	struct juki_inbound *inbound;
	struct juki_outbound *outbound;
	struct juki_ctl_server *ctl;
	struct juki_ctl_table tables[4];  /* the common commands, the operators', the daemon's,
					     the monitor's */
	struct juki_handler *handlers;    /* the daemon's and the monitor's (merged at start) */
	struct juki_schema *schemas;      /* the daemon's + the common ones it needs */
	size_t nschemas;                  /* how many: build_schemas() */
	struct juki_reconcile *reconcile; /* when spec->honnin_dest */
	struct event *tick;               /* the deadline and key checks, every minute */
	int key_down;                     /* the key on the token did not sign at the last check */
	struct juki_opcmds *opcmds;       /* the operators' commands and the operation history */
	struct juki_opport *opport;       /* the operator port, when configured */
	struct juki_node_modules modules; /* the shared modules' states (juki_node_module()) */
};

static void committed(void *ctx);
static int node_on_ack(void *ctx, const struct juki_outbox_entry *entry,
		       const struct juki_ack *ack);
static int build_schemas(struct juki_node *node);
static int merge_handlers(struct juki_node *node);
static void tick(evutil_socket_t fd, short what, void *arg);
static void node_stop(struct juki_node *node);

/* The table of a daemon that has no commands of its own. */
static const struct juki_ctl_cmd no_cmds[] = {{NULL, NULL, NULL, 0, NULL}};

#define TICK_MS 60000
/* Control command tables: the common, the operators', the daemon's, the monitor's. */
#define NODE_TABLES 4

const struct juki_conf_key juki_node_limits_keys[] = {
    JUKI_CONF_SCALAR(struct juki_node_limits, frame_max, "frame_max", JUKI_CONF_SIZE, "4MiB", 0,
		     1024, 64 * 1024 * 1024,
		     "Largest frame accepted or sent; a larger one closes the channel."),
    JUKI_CONF_SCALAR(struct juki_node_limits, handshake_timeout, "handshake_timeout",
		     JUKI_CONF_DURATION, "10s", 0, 100, 600000,
		     "Time allowed for a TLS handshake."),
    JUKI_CONF_SCALAR(
	struct juki_node_limits, line_timeout, "line_timeout", JUKI_CONF_DURATION, "10s", 0, 100,
	600000,
	"Time allowed for the gateway's FROM line; with handshake_timeout, all the time "
	"a caller has from accept until it is trusted (node port: handshakes and FROM "
	"line; operator port: handshake and login)."),
    JUKI_CONF_SCALAR(struct juki_node_limits, idle_timeout, "idle_timeout", JUKI_CONF_DURATION,
		     "5m", 0, 1000, JUKI_DAY_MS, "An inbound channel silent this long is closed."),
    JUKI_CONF_END,
};

int
juki_node_delivery_check(const void *section, const char **blame, char *why, size_t whylen)
{
	const struct juki_node_delivery *d = section;
	int minutes;

	if (juki_clock_hhmm(d->deadline, &minutes) != 0) {
		*blame = "deadline";
		snprintf(why, whylen, "a time of day HH:MM (JST)");
		return JUKI_ECONFIG;
	}
	return 0;
}

const struct juki_conf_key juki_node_honnin_keys[] = {
    JUKI_CONF_SCALAR(struct juki_node_honnin, batch_records, "batch_records", JUKI_CONF_INT, "5000",
		     0, 1, 100000,
		     "Change records per honnin.batch message (bounded by frame_max)."),
    JUKI_CONF_SCALAR(
	struct juki_node_honnin, reconcile_interval, "reconcile_interval", JUKI_CONF_DURATION, "1h",
	0, 0, 604800000,
	"How often update counts are compared with the receiver (0: only on request)."),
    JUKI_CONF_SCALAR(struct juki_node_honnin, reconcile_days, "reconcile_days", JUKI_CONF_INT, "7",
		     0, 1, 400, "How many recent days each comparison covers."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_node_delivery_keys[] = {
    JUKI_CONF_SCALAR(struct juki_node_delivery, window, "window", JUKI_CONF_INT, "64",
		     JUKI_CONF_RESTART, 1, 4096,
		     "Messages in flight per link before waiting for acks."),
    JUKI_CONF_SCALAR(struct juki_node_delivery, connect_timeout, "connect_timeout",
		     JUKI_CONF_DURATION, "5s", 0, 100, 600000,
		     "Time allowed to reach the destination through a gateway."),
    JUKI_CONF_SCALAR(struct juki_node_delivery, backoff_min, "backoff_min", JUKI_CONF_DURATION,
		     "200ms", 0, 10, 600000, "First wait after every gateway failed."),
    JUKI_CONF_SCALAR(struct juki_node_delivery, backoff_max, "backoff_max", JUKI_CONF_DURATION,
		     "30s", 0, 10, 3600000, "Longest wait between rounds."),
    JUKI_CONF_SCALAR(struct juki_node_delivery, failback, "failback", JUKI_CONF_DURATION, "30s", 0,
		     0, 3600000,
		     "While on a backup line, how often to try the primary again (0: never)."),
    JUKI_CONF_SCALAR(struct juki_node_delivery, idle_timeout, "idle_timeout", JUKI_CONF_DURATION,
		     "60s", 0, 1000, JUKI_DAY_MS,
		     "A link with nothing to send, or no ack for this long, is closed."),
    JUKI_CONF_SCALAR(
	struct juki_node_delivery, deadline, "deadline", JUKI_CONF_STRING, "08:30", 0, 0, 0,
	"Start of the operating day, HH:MM JST: an entry still undelivered then raises an "
	"alert (第6-6(1))."),

    JUKI_CONF_END,
};

const struct juki_conf_key juki_node_purge_keys[] = {
    JUKI_CONF_SCALAR(struct juki_purge_conf, years, "years", JUKI_CONF_INT, "5", 0, 0, 100,
		     "Identity information is purged this many years after newer information "
		     "for the person, or its removal, was recorded (第6-7); 0: never."),
    JUKI_CONF_SCALAR(struct juki_purge_conf, rejected_years, "rejected_years", JUKI_CONF_INT, "5",
		     0, 0, 100,
		     "Messages this node sent that their receiver refused (outbox_rejected; "
		     "they hold identity data) are kept this many years; 0: forever."),
    JUKI_CONF_SCALAR(struct juki_purge_conf, inbox_days, "inbox_days", JUKI_CONF_INT, "400", 0, 0,
		     36500,
		     "Ids of received messages are kept this many days to answer a redelivery "
		     "as a duplicate; 0: forever."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_node_operator_keys[] = {
    JUKI_CONF_SCALARLIST(struct juki_node_operator, listen, nlisten, "listen", JUKI_CONF_ADDR,
			 JUKI_CONF_RESTART, 0, 16,
			 "Operator-port addresses (host:port) where operators' terminals connect "
			 "with their cards; none: no operator port."),
    JUKI_CONF_SCALAR(struct juki_node_operator, pin_attempts, "pin_attempts", JUKI_CONF_INT, "3", 0,
		     1, 10,
		     "Consecutive wrong PINs that lock an operator until a supervisor unlocks "
		     "them (第4-4(8))."),
    JUKI_CONF_SCALAR(struct juki_node_operator, pin_memory, "pin_memory", JUKI_CONF_SIZE, "19MiB",
		     0, 64 * 1024, 1024 * 1024 * 1024,
		     "Argon2id memory of each new PIN verifier (existing verifiers keep theirs)."),
    JUKI_CONF_SCALAR(struct juki_node_operator, pin_passes, "pin_passes", JUKI_CONF_INT, "2", 0, 1,
		     20, "Argon2id passes of each new PIN verifier."),
    JUKI_CONF_SCALAR(struct juki_node_operator, idle_timeout, "idle_timeout", JUKI_CONF_DURATION,
		     "15m", 0, 1000, JUKI_DAY_MS,
		     "An operator session silent this long is closed; the next command logs in "
		     "again."),
    JUKI_CONF_SCALAR(struct juki_node_operator, sessions, "sessions", JUKI_CONF_INT, "64", 0, 1,
		     4096, "Operator sessions open at once."),
    JUKI_CONF_SCALAR(struct juki_node_operator, lookups_per_minute, "lookups_per_minute",
		     JUKI_CONF_INT, "30", 0, 1, 100000,
		     "Identity lookups one operator may make in a minute (第4-4(7))."),
    JUKI_CONF_SCALAR(struct juki_node_operator, lookup_max, "lookup_max", JUKI_CONF_INT, "10", 0, 1,
		     1000, "Records one lookup returns at most."),
    JUKI_CONF_SCALAR(struct juki_node_operator, bulk_records, "bulk_records", JUKI_CONF_INT, "100",
		     0, 0, 100000000,
		     "An output of more records than this needs a supervisor's approval given "
		     "beforehand (第4-8(2))."),
    JUKI_CONF_SCALAR(struct juki_node_operator, export_max, "export_max", JUKI_CONF_INT, "20000", 0,
		     1, 1000000, "Records one export returns at most."),
    JUKI_CONF_SCALAR(struct juki_node_operator, approval_valid, "approval_valid",
		     JUKI_CONF_DURATION, "8h", 0, 1000, 31 * JUKI_DAY_MS,
		     "An approval given beforehand expires after this if not used."),
    JUKI_CONF_SCALAR(struct juki_node_operator, approve_within, "approve_within",
		     JUKI_CONF_DURATION, "24h", 0, 1000, 31 * JUKI_DAY_MS,
		     "Important input made online without an approval must be approved within "
		     "this; later raises the alert approval-overdue (第4-8(2))."),
    JUKI_CONF_SCALARLIST(struct juki_node_operator, purposes, npurposes, "purposes",
			 JUKI_CONF_STRING, 0, 0, 64,
			 "The purposes a lookup may state (none: certificate, benefit, tax, "
			 "pension, correction, inquiry)."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_node_audit_keys[] = {
    JUKI_CONF_SCALAR(struct juki_node_audit, path, "path", JUKI_CONF_PATH, NULL, JUKI_CONF_RESTART,
		     0, 0,
		     "The operation history's own SQLite file (default: the store's path with "
		     "\".audit\" added)."),
    JUKI_CONF_SCALAR(struct juki_node_audit, checkpoint_every, "checkpoint_every", JUKI_CONF_INT,
		     "100", JUKI_CONF_RESTART, 1, 1000000,
		     "Entries between checkpoints signed with the node's key (read at start)."),
    JUKI_CONF_SCALAR(struct juki_node_audit, certs, "certs", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "A PEM file of the node's certificates, current and earlier, that audit "
		     "verify checks checkpoints with: after a change of key, append the old "
		     "certificate (default: tls.cert alone)."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_node_backup_keys[] = {
    JUKI_CONF_SCALAR(struct juki_node_backup, dir, "dir", JUKI_CONF_PATH, NULL, 0, 0, 0,
		     "The directory whose subdirectories are this node's backups (the timer's "
		     "/var/lib/juki/backup/<name>): juki-ctl purge erases those older than keep; "
		     "none: backups are not pruned."),
    JUKI_CONF_SCALAR(struct juki_node_backup, keep, "keep", JUKI_CONF_DURATION, "14d", 0, 0,
		     INT64_C(36500) * JUKI_DAY_MS,
		     "Backups in backup.dir older than this are erased by juki-ctl purge, the "
		     "newest never (a backup holds what the purge has since erased); 0: all kept."),
    JUKI_CONF_END,
};

int64_t
juki_node_now_ms(const struct juki_node *node)
{
	return juki_clock_now_ms(&node->clock);
}

/* Load what a configuration names; both outputs are NULL on failure. */
static int
load_material(const struct juki_node_conf *conf, enum juki_kind kind, struct juki_tls **tls,
	      struct juki_policy **policy, char *err, size_t errlen)
{
	struct juki_tls_conf tc = juki_tls_files_conf(&conf->tls);
	struct juki_ident want;
	const struct juki_ident *self;
	int rc;

	*tls = NULL;
	*policy = NULL;
	if ((rc = juki_ident_parse(conf->node, &want)) != 0) {
		snprintf(err, errlen, "node: %s is not an identity", conf->node);
		return rc;
	}
	if (want.kind != kind) {
		snprintf(err, errlen, "node: %s is not a %s node", conf->node,
			 juki_kind_name(kind));
		return JUKI_ECONFIG;
	}
	if ((rc = juki_tls_new(&tc, tls, err, errlen)) != 0) {
		return rc;
	}
	self = juki_tls_self(*tls);
	if (strcmp(self->urn, want.urn) != 0) {
		snprintf(err, errlen, "tls.cert names %s, but node is %s", self->urn, want.urn);
		juki_tls_free(*tls);
		*tls = NULL;
		return JUKI_ECERT;
	}
	if ((rc = juki_policy_load(conf->policy, policy, err, errlen)) != 0) {
		juki_tls_free(*tls);
		*tls = NULL;
		return rc;
	}
	return 0;
}

/*
 * The folders of the store, the operation history, the control socket and
 * the backups: whoever else can write to them can swap the register, take
 * the socket or plant a backup (base/dir.h).
 */
static int
check_folders(const struct juki_node_conf *conf, char *err, size_t errlen)
{
	struct {
		const char *key, *file;
	} f[] = {
	    {"store", conf->store}, {"audit.path", conf->audit.path}, {"control", conf->control}};
	char why[PATH_MAX + 128];
	int rc;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].file != NULL &&
		    (rc = juki_dir_check_parent(f[i].file, why, sizeof(why))) != 0) {
			snprintf(err, errlen, "%s: %s", f[i].key, why);
			return rc;
		}
	}
	if (conf->backup.dir != NULL &&
	    (rc = juki_dir_check_private(conf->backup.dir, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "backup.dir: %s", why);
		return rc;
	}
	return 0;
}

int
juki_node_check(const struct juki_node_conf *conf, enum juki_kind kind, char *err, size_t errlen)
{
	struct juki_tls *tls;
	struct juki_policy *policy;
	int rc;

	if ((rc = check_folders(conf, err, errlen)) != 0) {
		return rc;
	}

	if (conf->limits.frame_max < 1024) {
		snprintf(err, errlen, "limits.frame_max: at least 1KiB");
		return JUKI_ECONFIG;
	}
	if (conf->delivery.backoff_min > conf->delivery.backoff_max) {
		snprintf(err, errlen, "delivery.backoff_min is above delivery.backoff_max");
		return JUKI_ECONFIG;
	}
	rc = load_material(conf, kind, &tls, &policy, err, errlen);
	juki_tls_free(tls);
	juki_policy_free(policy);
	return rc;
}

static struct juki_outbound_conf
outbound_conf(const struct juki_node_conf *conf)
{
	struct juki_outbound_conf oc = {
	    .gateways = conf->gateways,
	    .ngateways = conf->ngateways,
	    .window = (size_t)conf->delivery.window,
	    .connect_timeout_ms = conf->delivery.connect_timeout,
	    .backoff_min_ms = conf->delivery.backoff_min,
	    .backoff_max_ms = conf->delivery.backoff_max,
	    .failback_ms = conf->delivery.failback,
	    .idle_timeout_ms = conf->delivery.idle_timeout,
	    .frame_max = (size_t)conf->limits.frame_max,
	};

	return oc;
}

/*
 * A store belongs to the node that first opened it: another node's store
 * (a backup restored to the wrong host, a config pointing at the wrong
 * file) is refused, never taken over.
 */
static int
own_store(struct juki_node *node, char *err, size_t errlen)
{
	sqlite3_stmt *st = juki_store_prepare(node->store, "SELECT urn FROM node_identity");
	int rc;

	if (st == NULL) {
		snprintf(err, errlen, "%s: %s", node->conf->store, juki_store_errmsg(node->store));
		return JUKI_ESTORE;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), node->self.urn) != 0) {
		snprintf(err, errlen,
			 "%s belongs to %s, not to this node (%s): a backup restored to the "
			 "wrong node, or the wrong store in the configuration?",
			 node->conf->store, (const char *)sqlite3_column_text(st, 0),
			 node->self.urn);
		sqlite3_reset(st);
		return JUKI_EEXIST;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		return 0;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", node->conf->store, juki_store_errmsg(node->store));
		return JUKI_ESTORE;
	}
	st = juki_store_prepare(node->store, "INSERT INTO node_identity (urn) VALUES (?1)");
	if (st != NULL) {
		sqlite3_bind_text(st, 1, node->self.urn, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (st == NULL || rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", node->conf->store, juki_store_errmsg(node->store));
		return JUKI_ESTORE;
	}
	return 0;
}

/* Resident and peak size (/proc/self/status) and SQLite's share of the heap. */
static json_t *
memory_status(void)
{
	json_t *m = json_pack("{s:I,s:I}", "sqlite_bytes", (json_int_t)sqlite3_memory_used(),
			      "sqlite_peak_bytes", (json_int_t)sqlite3_memory_highwater(0));
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long long kib;

	while (m != NULL && f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %lld kB", &kib) == 1) {
			json_object_set_new(m, "rss_bytes", json_integer(kib * 1024));
		} else if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) {
			json_object_set_new(m, "peak_rss_bytes", json_integer(kib * 1024));
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return m;
}

static int
cmd_status(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	json_t *st;

	(void)args;
	(void)err;
	st = json_pack("{s:s,s:s,s:s,s:s,s:I,s:b,s:s}", "daemon", node->spec->daemon, "version",
		       JUKI_VERSION, "node", node->self.urn, "kind",
		       juki_kind_name(node->self.kind), "uptime_ms",
		       (json_int_t)(juki_clock_mono_ms() - juki_daemon_started_ms(node->daemon)),
		       "ready", 1, "store", juki_store_path(node->store));
	if (st == NULL) {
		return JUKI_ENOMEM;
	}
	if (juki_daemon_config_path(node->daemon) != NULL) {
		json_object_set_new(st, "config",
				    json_string(juki_daemon_config_path(node->daemon)));
	}
	json_object_set_new(st, "key",
			    juki_alert_key_check(node->alerts, node->tls, &node->key_down));
	json_object_set_new(st, "inbound", juki_inbound_status(node->inbound));
	json_object_set_new(st, "outbound", juki_outbound_status(node->outbound));
	json_object_set_new(st, "alerts", juki_alerts_json(node->alerts, 0));
	json_object_set_new(st, "memory", memory_status());
	json_object_set_new(st, "monitor", juki_monitor_status(node));
	json_object_set_new(st, "notices", juki_notice_status(node));
	if (node->opport != NULL) {
		json_object_set_new(st, "operator_port", juki_opport_status(node->opport));
	}
	json_object_set_new(st, "integrity", juki_integrity_status(node));
	if (juki_node_module(node, JUKI_MODULE_BOARDWEB) != NULL) {
		json_object_set_new(
		    st, "boardweb",
		    juki_boardweb_status(juki_node_module(node, JUKI_MODULE_BOARDWEB)));
	}
	if (node->spec->status != NULL) {
		json_t *own = node->spec->status(node);

		if (own != NULL) {
			json_object_update(st, own);
			json_decref(own);
		}
	}
	*result = st;
	return 0;
}

static int
cmd_alerts(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	json_int_t max = 100;
	const json_t *v = json_object_get(args, "max");

	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			return juki_ctl_fail(err, "usage", "max: a count");
		}
		max = json_integer_value(v);
	}
	*result = juki_alerts_json(node->alerts, (size_t)max);
	return *result ? 0 : JUKI_ENOMEM;
}

static int
cmd_outbox(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	static const char sql[] =
	    "SELECT seq, dest, service, msg_id, type, rejected_ms, reason, detail"
	    " FROM outbox_rejected ORDER BY seq DESC LIMIT 100";
	sqlite3_stmt *st;
	json_t *rejected;
	struct juki_outbox_queue *q = NULL;
	size_t n = 0;
	char when[32];

	(void)args;
	*result = json_object();
	rejected = json_array();
	if (*result == NULL || rejected == NULL) {
		json_decref(rejected);
		return JUKI_ENOMEM;
	}
	if (juki_outbox_queues(node->store, &q, &n) == 0) {
		json_t *queues = json_array();

		for (size_t i = 0; i < n; i++) {
			json_array_append_new(
			    queues,
			    json_pack("{s:s,s:s,s:I,s:I}", "dest", q[i].dest, "service",
				      q[i].service, "count", (json_int_t)q[i].count,
				      "oldest_age_ms",
				      (json_int_t)(juki_node_now_ms(node) - q[i].oldest_ms)));
		}
		json_object_set_new(*result, "queues", queues);
		free(q);
	}
	st = juki_store_prepare(node->store, sql);
	if (st == NULL) {
		json_decref(rejected);
		return juki_ctl_fail(err, "internal", "%s", juki_store_errmsg(node->store));
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		juki_clock_format(sqlite3_column_int64(st, 5), when, sizeof(when));
		json_array_append_new(
		    rejected,
		    json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "seq",
			      (json_int_t)sqlite3_column_int64(st, 0), "dest",
			      sqlite3_column_text(st, 1), "service", sqlite3_column_text(st, 2),
			      "msg_id", sqlite3_column_text(st, 3), "type",
			      sqlite3_column_text(st, 4), "rejected", when, "reason",
			      sqlite3_column_text(st, 6), "detail",
			      sqlite3_column_text(st, 7) ? (const char *)sqlite3_column_text(st, 7)
							 : ""));
	}
	sqlite3_reset(st);
	json_object_set_new(*result, "rejected", rejected);
	return 0;
}

static int
cmd_reconcile(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const char *day = json_string_value(json_object_get(args, "date")), *d;
	int check = json_is_true(json_object_get(args, "check")), queued = 0, rc;
	int centres = json_is_true(json_object_get(args, "centres"));
	json_t *dests;

	if (node->reconcile == NULL) {
		return juki_ctl_fail(err, "conflict", "this node sends no identity information");
	}
	if (json_object_get(args, "date") != NULL && (day == NULL || !juki_date_valid(day))) {
		return juki_ctl_fail(err, "usage", "date: YYYY-MM-DD");
	}
	if (centres && node->self.kind != JUKI_KIND_PREF) {
		return juki_ctl_fail(err, "conflict",
				     "centres: only a prefectural server sends to the national "
				     "centres");
	}
	if (check && (rc = juki_reconcile_check(node->reconcile, day, &queued)) != 0) {
		return juki_ctl_fail(err, "internal", "cannot ask %s: %s",
				     juki_reconcile_dest(node->reconcile), juki_strerror(rc));
	}
	if ((dests = json_array()) == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; (d = juki_reconcile_dest_at(node->reconcile, i)) != NULL; i++) {
		json_array_append_new(dests, json_string(d));
	}
	*result =
	    json_pack("{s:s,s:o,s:i,s:o?}", "dest", juki_reconcile_dest(node->reconcile), "dests",
		      dests, "queued", queued, "days", juki_reconcile_table(node->reconcile, day));
	if (*result != NULL && centres) {
		json_object_set_new(*result, "centres",
				    juki_reconcile_across(node->reconcile, day));
	}
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* Long purges and backups run on the loop: keep the service manager's watchdog fed. */
static void
watchdog_tick(void *arg)
{
	(void)arg;
	juki_sd_notify("WATCHDOG=1");
}

static int
cmd_backup(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const char *dir = json_string_value(json_object_get(args, "dir"));
	struct juki_backup_opts opts = {
	    .node = node->self.urn,
	    .now_ms = juki_node_now_ms(node),
	    .tick = watchdog_tick,
	};
	char why[512];
	int rc;

	if (dir == NULL || dir[0] != '/') {
		return juki_ctl_fail(err, "usage", "dir: an absolute directory path");
	}
	rc = juki_backup_take(node->store, dir, &opts, result, why, sizeof(why));
	if (rc != 0) {
		log_warnx("backup: %s: %s", juki_strerror(rc), why);
		return juki_ctl_fail(
		    err, rc == JUKI_EEXIST || rc == JUKI_EPERM ? "conflict" : "internal", "%s",
		    why);
	}
	log_notice("backup: %s: %lld bytes, %lld pages, sha256 %.16s...", dir,
		   (long long)json_integer_value(json_object_get(*result, "size")),
		   (long long)json_integer_value(json_object_get(*result, "page_count")),
		   json_string_value(json_object_get(*result, "sha256")));
	return 0;
}

/* "name n, name n" of a report's list, n its key. */
static void
purge_counts(const json_t *list, const char *key, char *line, size_t len)
{
	const json_t *r;
	size_t i, off = 0;

	line[0] = '\0';
	json_array_foreach(list, i, r)
	{
		int n = snprintf(line + off, len - off, "%s%s %lld", i ? ", " : "",
				 json_string_value(json_object_get(r, "name")),
				 (long long)json_integer_value(json_object_get(r, key)));

		if (n < 0 || (size_t)n >= len - off) {
			break;
		}
		off += (size_t)n;
	}
}

/* One line of counts per run: rule names and numbers only, never what was removed. */
static void
log_purge(const json_t *report, int rc)
{
	char line[1024], files[256];
	int dry = json_is_true(json_object_get(report, "dry_run"));
	const char *key = dry ? "due" : "removed";

	purge_counts(json_object_get(report, "rules"), key, line, sizeof(line));
	purge_counts(json_object_get(report, "files"), key, files, sizeof(files));
	if (dry) {
		log_info("purge: dry run: %lld due (%s); files: %lld due (%s)",
			 (long long)json_integer_value(json_object_get(report, "due")), line,
			 (long long)json_integer_value(json_object_get(report, "files_due")),
			 files);
		return;
	}
	if (rc == 0) {
		log_notice(
		    "purge: removed %lld (%s); files: %lld erased (%s); checkpoint complete, "
		    "verified",
		    (long long)json_integer_value(json_object_get(report, "removed")), line,
		    (long long)json_integer_value(json_object_get(report, "files_removed")), files);
		return;
	}
	log_warnx("purge: removed %lld (%s); files: %lld erased (%s); NOT verified: %s",
		  (long long)json_integer_value(json_object_get(report, "removed")), line,
		  (long long)json_integer_value(json_object_get(report, "files_removed")), files,
		  juki_strerror(rc));
}

static json_t *
time_or_null(int64_t ms)
{
	char when[32];

	if (ms == INT64_MIN || juki_clock_format(ms, when, sizeof(when)) != 0) {
		return json_null();
	}
	return json_string(when);
}

int
juki_node_purge_files(const char *name, const char *dir, int64_t keep_ms, int64_t now_ms,
		      int dry_run, json_t *files)
{
	struct juki_purge_file_counts n;
	int64_t cutoff = keep_ms > 0 ? now_ms - keep_ms : INT64_MIN;
	int rc = juki_purge_files(dir, cutoff, dry_run, &n);

	if (rc != 0) {
		log_warnx("purge: %s: %lld files of %s not erased: %s", name, (long long)n.failed,
			  dir, juki_strerror(rc));
	}
	json_array_append_new(
	    files, json_pack("{s:s,s:s,s:I,s:o,s:I,s:I,s:I}", "name", name, "dir", dir, "keep_days",
			     (json_int_t)(keep_ms / JUKI_DAY_MS), "cutoff", time_or_null(cutoff),
			     "due", (json_int_t)n.due, "removed", (json_int_t)n.removed, "failed",
			     (json_int_t)(rc != 0 && n.failed == 0 ? 1 : n.failed)));
	return rc;
}

/* The node's backups past backup.keep, the newest kept: one more item of files. */
static int
purge_backups(struct juki_node *node, int64_t now_ms, int dry_run, json_t *files)
{
	const struct juki_node_backup *b = &node->conf->backup;
	struct juki_backup_prune_counts n;
	int64_t cutoff = b->keep > 0 ? now_ms - b->keep : INT64_MIN;
	int rc;

	if (b->dir == NULL) {
		return 0;
	}
	rc = juki_backup_prune(b->dir, node->self.urn, cutoff, dry_run, &n);
	if (rc != 0) {
		log_warnx("purge: backups: %lld of %s not erased: %s", (long long)n.failed, b->dir,
			  juki_strerror(rc));
	}
	json_array_append_new(
	    files, json_pack("{s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I}", "name", "backups", "dir", b->dir,
			     "keep_days", (json_int_t)(b->keep / JUKI_DAY_MS), "cutoff",
			     time_or_null(cutoff), "backups", (json_int_t)n.backups, "due",
			     (json_int_t)n.due, "removed", (json_int_t)n.removed, "failed",
			     (json_int_t)(rc != 0 && n.failed == 0 ? 1 : n.failed)));
	return rc;
}

/*
 * The files past their period beside the store's rows: the daemon's own
 * (spec->purge_files) and the old backups.  Adds "files" to report, with
 * the totals "files_due" and "files_removed".  Returns 0 or a failure.
 */
static int
purge_files(struct juki_node *node, int64_t now_ms, int dry_run, json_t *report)
{
	json_t *files = json_array(), *f;
	int64_t due = 0, removed = 0;
	size_t i;
	int rc = 0, frc;

	if (files == NULL) {
		return JUKI_ENOMEM;
	}
	if (node->spec->purge_files != NULL &&
	    (frc = node->spec->purge_files(node, now_ms, dry_run, files)) != 0) {
		rc = frc;
	}
	if ((frc = purge_backups(node, now_ms, dry_run, files)) != 0) {
		rc = frc;
	}
	json_array_foreach(files, i, f)
	{
		due += json_integer_value(json_object_get(f, "due"));
		removed += json_integer_value(json_object_get(f, "removed"));
	}
	json_object_set_new(report, "files", files);
	json_object_set_new(report, "files_due", json_integer(due));
	json_object_set_new(report, "files_removed", json_integer(removed));
	return rc;
}

static int
cmd_purge(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_purge_conf conf = node->conf->purge;
	const json_t *dry = json_object_get(args, "dry_run");
	int64_t now = juki_node_now_ms(node);
	json_t *report = NULL;
	int rc, frc;

	if (dry != NULL && !json_is_boolean(dry)) {
		return juki_ctl_fail(err, "usage", "dry_run: true or false");
	}
	conf.tick = watchdog_tick;
	if (node->spec->purge_conf != NULL) {
		node->spec->purge_conf(node, &conf);
	}
	rc = juki_purge_run(node->store, &conf, node->spec->purge, now, json_is_true(dry), &report);
	if (report == NULL) {
		juki_node_metrics_purged(node, NULL);
		log_warnx("purge: %s: %s", juki_strerror(rc), juki_store_errmsg(node->store));
		return juki_ctl_fail(err, "internal", "%s: %s", juki_strerror(rc),
				     juki_store_errmsg(node->store));
	}
	frc = purge_files(node, now, json_is_true(dry), report);
	log_purge(report, rc);
	juki_node_metrics_purged(node, rc == 0 && frc == 0 ? report : NULL);
	if (rc != 0) {
		json_decref(report);
		if (rc == JUKI_EAGAIN) {
			return juki_ctl_fail(err, "internal",
					     "rows removed, but the WAL checkpoint did not "
					     "complete (readers held it): run purge again");
		}
		return juki_ctl_fail(err, "internal",
				     "rows removed, but rows are left or the WAL is not empty");
	}
	if (frc != 0) {
		json_decref(report);
		return juki_ctl_fail(err, "internal",
				     "rows removed, but files past their period could not be "
				     "erased (%s): see the log, run purge again",
				     juki_strerror(frc));
	}
	*result = report;
	return 0;
}

static const struct juki_ctl_cmd common_cmds[] = {
    {"status", cmd_status, "identity, uptime, queues, channels, counters", JUKI_ROLE_ALL, NULL},
    {"alerts", cmd_alerts, "recent alerts and counts per code (args: max)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},
    {"outbox", cmd_outbox, "queued deliveries per destination and rejected messages",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, NULL},
    {"reconcile", cmd_reconcile,
     "update counts compared with the receiver, or each national centre (args: date, "
     "check: ask again first, centres: compare across the centres)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, NULL},
    {"backup", cmd_backup, "a consistent copy of the store and its manifest into dir (args: dir)",
     JUKI_ROLE_ADMIN, NULL},
    {"purge", cmd_purge, "remove what is past its period, securely (args: dry_run)",
     JUKI_ROLE_ADMIN, NULL},
    JUKI_OPCAL_CMDS,
    JUKI_LOAD_CMDS,
    {"integrity", juki_integrity_cmd, "the programs and configuration against the manifest",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},
    {NULL, NULL, NULL, 0, NULL},
};

static struct juki_opport_conf
opport_conf(const struct juki_node_conf *conf, struct juki_tls *tls)
{
	struct juki_opport_conf c = {&conf->oper, conf->limits.handshake_timeout,
				     conf->limits.handshake_timeout + conf->limits.line_timeout,
				     tls};

	return c;
}

static struct juki_opcmds_conf
opcmds_conf(const struct juki_node_conf *conf)
{
	struct juki_opcmds_conf c = {&conf->oper, &conf->audit, conf->tls.cert};

	return c;
}

/*
 * The operators' commands with the operation history, next to the store
 * unless configured elsewhere; the control socket serves the common
 * commands, theirs and the daemon's.
 */
static int
start_opcmds(struct juki_node *node, char *err, size_t errlen)
{
	const struct juki_node_conf *conf = node->conf;
	struct juki_opcmds_env env = {
	    .daemon = node->daemon,
	    .base = node->base,
	    .store = node->store,
	    .alerts = node->alerts,
	    .clock = &node->clock,
	    .self = &node->self,
	    .datasets = node->spec->datasets,
	    .name = node->spec->daemon,
	};
	struct juki_opcmds_conf oconf = opcmds_conf(conf);
	size_t len = strlen(conf->store) + sizeof(".audit");
	char *path = malloc(len);
	int rc;

	if (path == NULL) {
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	snprintf(path, len, "%s.audit", conf->store);
	rc = juki_opcmds_new(&env, &oconf, conf->audit.path != NULL ? conf->audit.path : path,
			     node->tls, &node->opcmds, err, errlen);
	free(path);
	if (rc != 0) {
		return rc;
	}
	node->tables[0] = (struct juki_ctl_table){common_cmds, node};
	node->tables[1] = (struct juki_ctl_table){juki_opcmds, node->opcmds};
	node->tables[2] =
	    (struct juki_ctl_table){node->spec->cmds != NULL ? node->spec->cmds : no_cmds, node};
	node->tables[3] = (struct juki_ctl_table){juki_monitor_cmds, node};
	return 0;
}

static const char *
reconcile_dest(void *ctx, size_t i)
{
	struct juki_node *node = ctx;

	return node->spec->honnin_dest(node, i);
}

static struct juki_reconcile_conf
reconcile_conf(const struct juki_node_conf *conf)
{
	struct juki_reconcile_conf c = {
	    .interval = conf->honnin.reconcile_interval,
	    .days = conf->honnin.reconcile_days,
	    .batch_records = conf->honnin.batch_records,
	    .frame_max = conf->limits.frame_max,
	};

	return c;
}

/* Reconciliation of what the node sends to spec->honnin_dest, with what it needs of the node. */
static int
reconcile_start(struct juki_node *node)
{
	struct juki_reconcile_env env = {
	    .base = node->base,
	    .store = node->store,
	    .alerts = node->alerts,
	    .clock = &node->clock,
	    .outbound = node->outbound,
	    .self = node->self.urn,
	    .dest = reconcile_dest,
	    .ctx = node,
	};
	struct juki_reconcile_conf conf = reconcile_conf(node->conf);

	node->reconcile = juki_reconcile_new(&env, &conf);
	return node->reconcile != NULL ? 0 : JUKI_ENOMEM;
}

/*
 * The store's disk is full: every change is refused — no message
 * acknowledged (its sender delivers it again), no import applied — until
 * there is room.  One alert per occurrence, not one per refused message.
 */
static void
store_full(void *arg, int full, const char *why)
{
	struct juki_node *node = arg;

	if (full) {
		juki_alert(node->alerts, "disk-full", NULL, NULL,
			   "store: %s (%s): changes are refused, and messages not acknowledged, "
			   "until there is room",
			   why, node->conf->store);
	} else {
		log_notice("store: %s (%s)", why, node->conf->store);
	}
}

static int
node_start(struct juki_node *node, struct juki_daemon *d, const struct juki_node_conf *conf,
	   const struct juki_node_spec *spec, char *err, size_t errlen)
{
	struct juki_inbound_conf ic;
	struct juki_outbound_conf oc = outbound_conf(conf);
	int rc;

	node->daemon = d;
	node->base = juki_daemon_base(d);
	node->spec = spec;
	node->conf = conf;
	node->clock.offset_ms = conf->clock_offset;
	log_setlevel(juki_log_level_of(conf->log_level));
	if ((rc = load_material(conf, spec->kind, &node->tls, &node->policy, err, errlen)) != 0) {
		goto fail;
	}
	node->self = *juki_tls_self(node->tls);
	node->alerts = juki_alerts_new(ALERT_RING, &node->clock);
	if (node->alerts == NULL) {
		rc = JUKI_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Before any port opens: with integrity.enforce a mismatch stops the start here. */
	if ((rc = juki_integrity_start(node, err, errlen)) != 0) {
		goto fail;
	}
	if ((rc = build_schemas(node)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* A shadow left by a load the daemon was killed in is no part of the store. */
	juki_load_leftover(conf->store);
	if ((rc = juki_store_open(conf->store, node->schemas, node->nschemas, &node->store, err,
				  errlen)) != 0 ||
	    (rc = own_store(node, err, errlen)) != 0) {
		goto fail;
	}
	juki_store_on_full(node->store, store_full, node);
	memset(&ic, 0, sizeof(ic));
	ic.base = node->base;
	ic.store = node->store;
	ic.alerts = node->alerts;
	ic.clock = &node->clock;
	if ((rc = merge_handlers(node)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ic.handlers = node->handlers;
	ic.ctx = node;
	ic.committed = committed;
	ic.handshake_timeout_ms = conf->limits.handshake_timeout;
	ic.line_timeout_ms = conf->limits.line_timeout;
	ic.idle_timeout_ms = conf->limits.idle_timeout;
	ic.frame_max = (size_t)conf->limits.frame_max;
	if ((rc = juki_inbound_new(&ic, node->tls, node->policy, conf->listen, conf->nlisten,
				   &node->inbound, err, errlen)) != 0) {
		goto fail;
	}
	if ((rc = juki_outbound_new(node->base, node->store, node->tls, &oc, &node->clock,
				    node->alerts, node_on_ack, node, &node->outbound)) != 0) {
		snprintf(err, errlen, "delivery: %s", juki_strerror(rc));
		goto fail;
	}
	if ((rc = start_opcmds(node, err, errlen)) != 0) {
		goto fail;
	}
	if ((rc = juki_ctl_server_new(node->base, conf->control, common_cmds, node, &node->ctl, err,
				      errlen)) != 0) {
		goto fail;
	}
	juki_ctl_server_set_tables(node->ctl, node->tables, NODE_TABLES);
	juki_ctl_server_set_hooks(node->ctl, juki_opcmds_hooks(node->opcmds));
	if (conf->oper.nlisten > 0) {
		struct juki_opport_env env = {
		    .base = node->base,
		    .store = node->store,
		    .alerts = node->alerts,
		    .clock = &node->clock,
		    .self = &node->self,
		    .opcmds = node->opcmds,
		    .tables = node->tables,
		    .ntables = NODE_TABLES,
		};
		struct juki_opport_conf pconf = opport_conf(conf, node->tls);

		if ((rc = juki_opport_new(&env, &pconf, &node->opport, err, errlen)) != 0) {
			goto fail;
		}
	}
	if ((rc = juki_node_metrics_start(node, err, errlen)) != 0) {
		goto fail;
	}
	if (spec->honnin_dest != NULL && (rc = reconcile_start(node)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = juki_monitor_start(node, &conf->monitor, err, errlen)) != 0) {
		goto fail;
	}
	if ((node->tick = evtimer_new(node->base, tick, node)) == NULL) {
		rc = JUKI_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; juki_inbound_addr(node->inbound, i) != NULL; i++) {
		log_info("%s: node port %s", spec->daemon, juki_inbound_addr(node->inbound, i));
	}
	for (size_t i = 0; juki_opport_addr(node->opport, i) != NULL; i++) {
		log_info("%s: operator port %s", spec->daemon, juki_opport_addr(node->opport, i));
	}
	juki_outbound_kick(node->outbound);
	juki_opcmds_approvals_check(node->opcmds);
	tick(-1, 0, node);
	return 0;
fail:
	node_stop(node);
	return rc;
}

/*
 * The node's own state in its store (component "node"): the deadline alerts
 * raised, one row per destination, service and operating day, so that a
 * restart does not raise them again.
 */
static const struct juki_migration node_steps[] = {
    {1, "CREATE TABLE deadline_alerted ("
	" dest TEXT NOT NULL,"
	" service TEXT NOT NULL,"
	" day TEXT NOT NULL,"
	" PRIMARY KEY (dest, service, day)"
	") WITHOUT ROWID;"},
};

/*
 * True when the deadline alert of (dest, svc, day) was raised before;
 * otherwise records it.  A store that fails answers false: an alert twice
 * rather than none.
 */
static int
already_alerted(struct juki_node *node, const char *dest, const char *svc, const char *day)
{
	static const char sql[] =
	    "INSERT OR IGNORE INTO deadline_alerted (dest, service, day) VALUES (?1, ?2, ?3)";
	sqlite3_stmt *st = juki_store_prepare(node->store, sql);
	int rc;

	if (st == NULL) {
		return 0;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, svc, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("deadline: cannot record an alert: %s", juki_store_errmsg(node->store));
		return 0;
	}
	return sqlite3_changes(juki_store_db(node->store)) == 0;
}

/* The alerts of earlier operating days are never asked about again. */
static void
prune_alerted(struct juki_node *node, const char *day)
{
	static const char sql[] = "DELETE FROM deadline_alerted WHERE day < ?1";
	sqlite3_stmt *st = juki_store_prepare(node->store, sql);

	if (st == NULL) {
		return;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	(void)sqlite3_step(st);
	sqlite3_reset(st);
}

/*
 * What was queued before the operating day began and is still undelivered
 * missed its deadline: one alert per destination, service and day.
 */
static void
check_deadline(struct juki_node *node)
{
	/* Heartbeats and forwarded alerts have no operating day: the monitor watches them. */
	static const char sql[] = "SELECT dest, service, count(*), min(created_ms) FROM outbox"
				  " WHERE created_ms < ?1 AND service <> 'monitor'"
				  " GROUP BY dest, service";
	int64_t start;
	sqlite3_stmt *st;
	char day[11], when[32];

	/* The start of the operating day now in progress (opcal.h); the config check saw HH:MM. */
	if (juki_opcal_day_begun(node, juki_node_now_ms(node), node->conf->delivery.deadline,
				 &start) != 0) {
		return;
	}
	juki_clock_date(start, day, sizeof(day));
	prune_alerted(node, day);
	if ((st = juki_store_prepare(node->store, sql)) == NULL) {
		return;
	}
	sqlite3_bind_int64(st, 1, start);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *dest = (const char *)sqlite3_column_text(st, 0);
		const char *svc = (const char *)sqlite3_column_text(st, 1);

		if (already_alerted(node, dest, svc, day)) {
			continue;
		}
		juki_clock_format(sqlite3_column_int64(st, 3), when, sizeof(when));
		juki_alert(
		    node->alerts, "deadline-missed", dest, NULL,
		    "%lld %s messages queued before the operating day of %s began are undelivered "
		    "(oldest %s)",
		    (long long)sqlite3_column_int64(st, 2), svc, day, when);
	}
	sqlite3_reset(st);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct juki_node *node = arg;
	struct timeval tv = {TICK_MS / 1000, 0};

	(void)fd;
	(void)what;
	check_deadline(node);
	json_decref(juki_alert_key_check(node->alerts, node->tls, &node->key_down));
	juki_integrity_check(node);
	evtimer_add(node->tick, &tv);
}

static int
node_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct juki_node *node = ctx;
	int rc = 0;

	if (juki_monitor_on_ack(node, entry, ack)) {
		return 0;
	}
	if (node->reconcile != NULL) {
		rc = juki_reconcile_on_ack(node->reconcile, entry, ack);
	}
	if (rc == 0 && strcmp(entry->service, "monitor") == 0) {
		rc = juki_notice_on_ack(node, entry, ack);
	}
	if (rc == 0 && node->spec->on_ack != NULL) {
		rc = node->spec->on_ack(node, entry, ack);
	}
	if (rc != 0) {
		log_error("outbound: the ack of %s (%s) to %s cannot be recorded: %s",
			  entry->msg_id, entry->type, entry->dest, juki_strerror(rc));
	}
	return rc;
}

static int
build_schemas(struct juki_node *node)
{
	static const struct juki_schema reconcile = JUKI_RECONCILE_SCHEMA;
	static const struct juki_schema own = {"node", node_steps,
					       sizeof(node_steps) / sizeof(node_steps[0])};
	static const struct juki_schema audit = JUKI_AUDIT_SCHEMA;
	static const struct juki_schema calendar = JUKI_OPCAL_SCHEMA;
	static const struct juki_schema monitor = JUKI_MONITOR_SCHEMA;
	static const struct juki_schema notice = JUKI_NOTICE_SCHEMA;
	static const struct juki_schema witness = JUKI_WITNESS_SCHEMA;
	/* The common schemas every node opens after its own. */
	static const struct juki_schema *const common[] = {
	    &juki_operator_schema,
	    &juki_opcmds_schema,
	    &own,
	    &audit, /* the head of the operation history (audit.h) */
	    &calendar,
	    &monitor,
	    &notice,  /* notices sent and received (notice.h) */
	    &witness, /* checkpoints witnessed (witness.h) */
	};
	size_t n = node->spec->nschemas, ncommon = sizeof(common) / sizeof(common[0]);

	/* The reconcile schema last: only a node with honnin_dest opens it. */
	node->schemas = calloc(n + ncommon + 1, sizeof(*node->schemas));
	if (node->schemas == NULL) {
		return JUKI_ENOMEM;
	}
	memcpy(node->schemas, node->spec->schemas, n * sizeof(*node->schemas));
	for (size_t i = 0; i < ncommon; i++) {
		node->schemas[n + i] = *common[i];
	}
	node->nschemas = n + ncommon;
	if (node->spec->honnin_dest != NULL) {
		node->schemas[node->nschemas++] = reconcile;
	}
	return 0;
}

/*
 * The handlers the node port serves: the daemon's and the monitor's, which
 * every node takes (a daemon's own handler of the same type wins).
 */
static int
merge_handlers(struct juki_node *node)
{
	const struct juki_handler *own = node->spec->handlers;
	size_t n = 0, k = 0;

	while (own != NULL && own[n].type != NULL) {
		n++;
	}
	while (juki_monitor_handlers[k].type != NULL) {
		k++;
	}
	if ((node->handlers = calloc(n + k + 1, sizeof(*node->handlers))) == NULL) {
		return JUKI_ENOMEM;
	}
	if (n > 0) {
		memcpy(node->handlers, own, n * sizeof(*own));
	}
	memcpy(node->handlers + n, juki_monitor_handlers, k * sizeof(*juki_monitor_handlers));
	return 0;
}

static void
committed(void *ctx)
{
	juki_outbound_kick(((struct juki_node *)ctx)->outbound);
}

static int
same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb) {
		return 0;
	}
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0) {
			return 0;
		}
	}
	return 1;
}

static int
node_reload(struct juki_node *node, const struct juki_node_conf *conf, char *err, size_t errlen)
{
	const struct juki_node_conf *old = node->conf;
	struct juki_outbound_conf oc = outbound_conf(conf);
	struct juki_tls *tls;
	struct juki_policy *policy;
	int rc;

	if (strcmp(old->node, conf->node) != 0 || strcmp(old->store, conf->store) != 0 ||
	    strcmp(old->control, conf->control) != 0 ||
	    !same_list(old->listen, old->nlisten, conf->listen, conf->nlisten) ||
	    !same_list(old->oper.listen, old->oper.nlisten, conf->oper.listen,
		       conf->oper.nlisten) ||
	    (old->audit.path == NULL) != (conf->audit.path == NULL) ||
	    (old->audit.path != NULL && strcmp(old->audit.path, conf->audit.path) != 0) ||
	    old->audit.checkpoint_every != conf->audit.checkpoint_every) {
		snprintf(err, errlen,
			 "node, store, control, listen, operator.listen, audit.path and "
			 "audit.checkpoint_every change on restart only");
		return JUKI_ECONFIG;
	}
	if ((rc = load_material(conf, node->spec->kind, &tls, &policy, err, errlen)) != 0) {
		return rc;
	}
	if ((rc = juki_node_metrics_reload(node, &conf->metrics, err, errlen)) != 0) {
		juki_tls_free(tls);
		juki_policy_free(policy);
		return rc;
	}
	if ((rc = juki_outbound_reconfigure(node->outbound, tls, &oc)) != 0) {
		snprintf(err, errlen, "delivery: %s", juki_strerror(rc));
		juki_tls_free(tls);
		juki_policy_free(policy);
		return rc;
	}
	juki_inbound_set_tls(node->inbound, tls, policy);
	{
		struct juki_opcmds_conf oconf = opcmds_conf(conf);

		juki_opcmds_reloaded(node->opcmds, &oconf, tls);
	}
	juki_tls_free(node->tls);
	juki_policy_free(node->policy);
	node->tls = tls;
	node->policy = policy;
	node->conf = conf;
	node->clock.offset_ms = conf->clock_offset;
	if (node->reconcile != NULL) {
		struct juki_reconcile_conf rconf = reconcile_conf(conf);

		juki_reconcile_reloaded(node->reconcile, &rconf);
	}
	{
		struct juki_opport_conf pconf = opport_conf(conf, tls);

		juki_opport_recheck(node->opport, &pconf);
	}
	log_setlevel(juki_log_level_of(conf->log_level));
	juki_monitor_reload(node, &conf->monitor);
	juki_outbound_kick(node->outbound);
	/* The clock or the deadline may have moved: look again now. */
	check_deadline(node);
	return 0;
}

void
juki_node_kick(struct juki_node *node)
{
	juki_outbound_kick(node->outbound);
}

static void
node_stop(struct juki_node *node)
{
	if (node->tick != NULL) {
		event_free(node->tick);
		node->tick = NULL;
	}
	juki_monitor_stop(node);
	juki_load_stop(node);
	juki_node_metrics_stop(node);
	juki_reconcile_free(node->reconcile);
	node->reconcile = NULL;
	free(node->handlers);
	node->handlers = NULL;
	free(node->schemas);
	node->schemas = NULL;
	juki_opport_free(node->opport);
	node->opport = NULL;
	juki_ctl_server_free(node->ctl);
	node->ctl = NULL;
	juki_opcmds_free(node->opcmds);
	node->opcmds = NULL;
	juki_outbound_free(node->outbound);
	node->outbound = NULL;
	juki_inbound_free(node->inbound);
	node->inbound = NULL;
	juki_store_close(node->store);
	node->store = NULL;
	juki_integrity_stop(node);
	juki_alerts_free(node->alerts);
	node->alerts = NULL;
	juki_tls_free(node->tls);
	node->tls = NULL;
	juki_policy_free(node->policy);
	node->policy = NULL;
}

static const struct juki_node_conf *
node_conf_of(const struct juki_node_spec *spec, const void *conf)
{
	return (const struct juki_node_conf *)((const char *)conf + spec->conf_node);
}

int
juki_node_daemon_check(const struct juki_daemon_ops *ops, void *conf, char *err, size_t errlen)
{
	const struct juki_node_spec *spec = ops->data;
	int rc;

	if (spec->check != NULL && (rc = spec->check(conf, err, errlen)) != 0) {
		return rc;
	}
	return juki_node_check(node_conf_of(spec, conf), spec->kind, err, errlen);
}

int
juki_node_daemon_start(struct juki_daemon *d, void *conf, void **nodep, char *err, size_t errlen)
{
	const struct juki_node_spec *spec = juki_daemon_ops_of(d)->data;
	struct juki_node *node;
	int rc;

	if ((node = calloc(1, sizeof(*node))) == NULL ||
	    (spec->size > 0 && (node->priv = calloc(1, spec->size)) == NULL)) {
		free(node);
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	node->daemon_conf = conf;
	if ((rc = node_start(node, d, node_conf_of(spec, conf), spec, err, errlen)) != 0) {
		free(node->priv);
		free(node);
		return rc;
	}
	if (spec->started != NULL && (rc = spec->started(node, err, errlen)) != 0) {
		node_stop(node);
		free(node->priv);
		free(node);
		return rc;
	}
	*nodep = node;
	return 0;
}

int
juki_node_daemon_reload(struct juki_daemon *d, void *nodep, void *newconf, char *err, size_t errlen)
{
	struct juki_node *node = nodep;
	const struct juki_node_spec *spec = node->spec;
	int rc;

	(void)d;
	/* The daemon's rules first: past the node's reload, nothing may fail. */
	if ((spec->check != NULL && (rc = spec->check(newconf, err, errlen)) != 0) ||
	    (rc = node_reload(node, node_conf_of(spec, newconf), err, errlen)) != 0) {
		return rc;
	}
	node->daemon_conf = newconf;
	if (spec->reloaded != NULL) {
		spec->reloaded(node);
	}
	return 0;
}

void
juki_node_daemon_stop(struct juki_daemon *d, void *nodep)
{
	struct juki_node *node = nodep;

	(void)d;
	if (node->spec->stopping != NULL) {
		node->spec->stopping(node);
	}
	node_stop(node);
	free(node->priv);
	free(node);
}

const void *
juki_node_daemon_conf(const struct juki_node *node)
{
	return node->daemon_conf;
}

void *
juki_node_priv(struct juki_node *node)
{
	return node->priv;
}

struct event_base *
juki_node_base(const struct juki_node *node)
{
	return node->base;
}

struct juki_daemon *
juki_node_daemon(const struct juki_node *node)
{
	return node->daemon;
}

struct juki_store *
juki_node_store(const struct juki_node *node)
{
	return node->store;
}

struct juki_outbound *
juki_node_outbound(const struct juki_node *node)
{
	return node->outbound;
}

struct juki_alerts *
juki_node_alerts(const struct juki_node *node)
{
	return node->alerts;
}

struct juki_clock *
juki_node_clock(struct juki_node *node)
{
	return &node->clock;
}

const struct juki_ident *
juki_node_self(const struct juki_node *node)
{
	return &node->self;
}

const struct juki_node_conf *
juki_node_conf(const struct juki_node *node)
{
	return node->conf;
}

const char *
juki_node_daemon_name(const struct juki_node *node)
{
	return node->spec->daemon;
}

int64_t
juki_node_received(const struct juki_node *node)
{
	json_t *st = juki_inbound_status(node->inbound);
	int64_t n = json_integer_value(json_object_get(st, "received"));

	json_decref(st);
	return n;
}

struct juki_tls *
juki_node_tls(const struct juki_node *node)
{
	return node->tls;
}

struct juki_opcmds *
juki_node_opcmds(const struct juki_node *node)
{
	return node->opcmds;
}

const struct juki_node_spec *
juki_node_spec(const struct juki_node *node)
{
	return node->spec;
}

struct juki_inbound *
juki_node_inbound(const struct juki_node *node)
{
	return node->inbound;
}

struct juki_reconcile *
juki_node_reconcile(const struct juki_node *node)
{
	return node->reconcile;
}

int
juki_node_modules_set(struct juki_node_modules *m, enum juki_module id, void *state)
{
	if ((unsigned)id >= JUKI_MODULES) {
		return JUKI_EINVAL;
	}
	if (state != NULL && m->state[id] != NULL && m->state[id] != state) {
		return JUKI_EEXIST;
	}
	m->state[id] = state;
	return 0;
}

void *
juki_node_modules_get(const struct juki_node_modules *m, enum juki_module id)
{
	return (unsigned)id < JUKI_MODULES ? m->state[id] : NULL;
}

void
juki_node_modules_clear(struct juki_node_modules *m, enum juki_module id, const void *state)
{
	if ((unsigned)id < JUKI_MODULES && state != NULL && m->state[id] == state) {
		m->state[id] = NULL;
	}
}

int
juki_node_module_set(struct juki_node *node, enum juki_module id, void *state)
{
	return juki_node_modules_set(&node->modules, id, state);
}

void *
juki_node_module(const struct juki_node *node, enum juki_module id)
{
	return juki_node_modules_get(&node->modules, id);
}

void
juki_node_module_clear(struct juki_node *node, enum juki_module id, const void *state)
{
	juki_node_modules_clear(&node->modules, id, state);
}
