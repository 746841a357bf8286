/*
 * juki — what every server node has in common (cs, pref, jlis, authlink):
 * its configuration keys, and the running parts built from them — TLS
 * identity, flow policy, store, alerts, the node port (inbound), delivery of
 * the outbox (outbound) and the control socket with the common commands
 * "status", "alerts", "outbox", "backup" and "purge".
 *
 * struct juki_node is the runtime's own: a daemon describes itself with a
 * struct juki_node_spec and runs with JUKI_NODE_DAEMON_OPS(spec); its
 * message handlers, control commands and callbacks receive the struct
 * juki_node * as their ctx and reach the daemon's state (spec->size bytes)
 * with juki_node_priv() and the rest with the accessors below.
 */
#ifndef JUKI_NODE_H
#define JUKI_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/node/alert.h"
#include "juki/node/boardweb.h"
#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/integrity.h"
#include "juki/node/log.h"
#include "juki/node/metrics.h"
#include "juki/node/monitor.h"
#include "juki/node/opcal.h"
#include "juki/node/opcmds.h"
#include "juki/node/outbound.h"
#include "juki/store/audit.h"
#include "juki/store/purge.h"
#include "juki/store/store.h"
#include "juki/wire/policy.h"
#include "juki/wire/tls.h"

struct juki_node_limits {
	int64_t frame_max;
	int64_t handshake_timeout;
	int64_t line_timeout;
	int64_t idle_timeout;
};

struct juki_node_delivery {
	int64_t window;
	int64_t connect_timeout;
	int64_t backoff_min;
	int64_t backoff_max;
	int64_t failback;
	int64_t idle_timeout;
	char *deadline; /* "HH:MM" JST: when the operating day starts (第6-6(1)) */
};

/* Identity information: batching and the reconciliation of update counts. */
struct juki_node_honnin {
	int64_t batch_records;      /* change records per honnin.batch message */
	int64_t reconcile_interval; /* how often update counts are compared (0: never) */
	int64_t reconcile_days;     /* how many recent days each comparison covers */
};

/* Where the node's backups are kept, and for how long (juki-ctl purge, 第6-7). */
struct juki_node_backup {
	char *dir;    /* the directory of the backups' directories; NULL: not pruned */
	int64_t keep; /* older backups than this are erased, the newest never (0: all kept) */
};

struct juki_node_conf {
	char *node; /* our identity; must match the certificate */
	struct juki_tls_files tls;
	char **listen; /* node port: gateways connect here */
	size_t nlisten;
	char **gateways; /* ordered: primary first */
	size_t ngateways;
	char *policy;
	char *store;
	char *control;
	int log_level; /* index into juki_log_level_names */
	struct juki_node_limits limits;
	struct juki_node_delivery delivery;
	struct juki_node_honnin honnin;
	struct juki_purge_conf purge;   /* years, rejected_years, inbox_days from the file */
	struct juki_node_operator oper; /* the operator: section */
	struct juki_node_audit audit;
	struct juki_node_backup backup;
	struct juki_calendar_conf calendar; /* the operating calendar (第6-1, opcal.h) */
	struct juki_node_boardweb boardweb; /* the board's web page */
	int64_t clock_offset;
	struct juki_metrics_conf metrics;
	struct juki_monitor_conf monitor;     /* the monitor: section (monitor.h) */
	struct juki_integrity_conf integrity; /* the integrity: section */
};

extern const struct juki_conf_key juki_node_limits_keys[];
extern const struct juki_conf_key juki_node_delivery_keys[];
extern const struct juki_conf_key juki_node_honnin_keys[];
extern const struct juki_conf_key juki_node_operator_keys[];
extern const struct juki_conf_key juki_node_audit_keys[];
extern const struct juki_conf_key juki_node_backup_keys[];

/* juki_node_delivery_check() - the delivery section's own rule (deadline is HH:MM). */
int juki_node_delivery_check(const void *section, const char **blame, char *why, size_t whylen);
extern const struct juki_conf_key juki_node_purge_keys[];

/* The key-table entries of struct juki_node_conf, placed at field f of st. */
#define JUKI_NODE_CONF_KEYS(st, f)                                                                 \
	JUKI_CONF_SCALAR(                                                                          \
	    st, f.node, "node", JUKI_CONF_IDENT, NULL, JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 0,  \
	    0,                                                                                     \
	    "This node's identity, urn:juki:<kind>:<id>; must be the one its certificate names."), \
	    JUKI_CONF_SECTIONKEY(                                                                  \
		st, f.tls, "tls", juki_tls_files_keys,                                             \
		"Certificate, key, CA and CRL of this node (第4-3(4),(5), 第4-5(1))."),            \
	    JUKI_CONF_SCALARLIST(st, f.listen, f.nlisten, "listen", JUKI_CONF_ADDR,                \
				 JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 1, 16,                    \
				 "Node-port addresses (host:port) that gateways connect to."),     \
	    JUKI_CONF_SCALARLIST(                                                                  \
		st, f.gateways, f.ngateways, "gateways", JUKI_CONF_ADDR, 0, 0, 16,                 \
		"Gateway endpoints, primary first; later ones are backup lines (第3-3(2))."),      \
	    JUKI_CONF_SCALAR(st, f.policy, "policy", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED, 0,  \
			     0, "Flow policy file, the same as the gateways'."),                   \
	    JUKI_CONF_SCALAR(st, f.store, "store", JUKI_CONF_PATH, NULL,                           \
			     JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 0, 0,                         \
			     "SQLite database file."),                                             \
	    JUKI_CONF_SCALAR(st, f.control, "control", JUKI_CONF_PATH, NULL,                       \
			     JUKI_CONF_REQUIRED | JUKI_CONF_RESTART, 0, 0,                         \
			     "Control socket for juki-ctl (mode 0600)."),                          \
	    JUKI_CONF_ENUMKEY(st, f.log_level, "log_level", juki_log_level_names, "info", 0,       \
			      "error, warning, notice, info or debug."),                           \
	    JUKI_CONF_SECTIONKEY(st, f.limits, "limits", juki_node_limits_keys,                    \
				 "Bounds on what peers may send and how long they may take."),     \
	    {.name = "delivery",                                                                   \
	     .type = JUKI_CONF_SECTION,                                                            \
	     .offset = offsetof(st, f.delivery),                                                   \
	     .sub = juki_node_delivery_keys,                                                       \
	     .check = juki_node_delivery_check,                                                    \
	     .help = "Delivery of the outbox through the gateways."},                              \
	    JUKI_CONF_SECTIONKEY(                                                                  \
		st, f.honnin, "honnin", juki_node_honnin_keys,                                     \
		"Identity information: batches and update-count reconciliation."),                 \
	    JUKI_CONF_SECTIONKEY(st, f.purge, "purge", juki_node_purge_keys,                       \
				 "How long what the node keeps is kept (第6-7): juki-ctl purge."), \
	    JUKI_CONF_SECTIONKEY(st, f.oper, "operator", juki_node_operator_keys,                  \
				 "The operator port, PINs, lookups and approvals (第4-4)."),       \
	    JUKI_CONF_SECTIONKEY(st, f.audit, "audit", juki_node_audit_keys,                       \
				 "The operation history (第4-4(6))."),                             \
	    JUKI_CONF_SECTIONKEY(st, f.backup, "backup", juki_node_backup_keys,                    \
				 "Where backups are kept, and how long (第4-9(2), 第6-7)."),       \
	    JUKI_CALENDAR_CONF_KEY(st, f.calendar),                                                \
	    JUKI_CONF_SECTIONKEY(st, f.boardweb, "boardweb", juki_node_boardweb_keys,              \
				 "The board's web page for operators' browsers (第4-7(3))."),      \
	    JUKI_CONF_SCALAR(                                                                      \
		st, f.clock_offset, "clock_offset", JUKI_CONF_DURATION, "0", 0, 0,                 \
		INT64_C(1000) * 365 * 86400 * 1000,                                                \
		"Added to the system clock: for drills and tests of dated rules only."),           \
	    JUKI_METRICS_CONF_KEY(st, f.metrics), JUKI_INTEGRITY_CONF_KEY(st, f.integrity),        \
	    JUKI_MONITOR_CONF_KEY(st, f.monitor)

struct juki_node;

struct juki_node_spec {
	const char *daemon;                /* "juki-csd" */
	enum juki_kind kind;               /* the kind this daemon serves */
	const struct juki_schema *schemas; /* the daemon's own tables */
	size_t nschemas;
	const struct juki_handler *handlers;       /* message types it accepts */
	const struct juki_ctl_cmd *cmds;           /* its own control commands */
	juki_outbound_ack_cb on_ack;               /* NULL: only recorded in outbox_rejected */
	json_t *(*status)(struct juki_node *node); /* its part of "status" (NULL: none) */
	/*
	 * The nodes its identity information goes to, the i-th from 0 and NULL
	 * after the last (a CS's prefecture; a prefecture's national server, or
	 * each of its national centres), whose update counts it reconciles,
	 * each on its own; NULL for a node that sends none.
	 */
	const char *(*honnin_dest)(struct juki_node *node, size_t i);
	/*
	 * Purge rules for its own tables, run after libjuki's, ended by an
	 * entry whose name is NULL (NULL: none).
	 */
	const struct juki_purge_rule *purge;
	/*
	 * Files of its own that hold personal data and are kept for a period
	 * (a CS's filed imports): erase those past it at now_ms, or with
	 * dry_run only count them, appending one item per directory to files
	 * ({"name", "dir", "keep_days", "cutoff", "due", "removed", "failed"},
	 * juki_node_purge_files_item()).  Run by "purge" after the rules.
	 * Returns 0 or the last failure.  NULL: none.
	 */
	int (*purge_files)(struct juki_node *node, int64_t now_ms, int dry_run, json_t *files);
	/*
	 * Periods of its own that the `purge:` section does not hold (a
	 * prefecture's provision.keep): set them in conf before "purge" runs.
	 * NULL: none.
	 */
	void (*purge_conf)(struct juki_node *node, struct juki_purge_conf *conf);
	/* The data sets its commands touch (第4-4(5)), NULL-terminated. */
	const char *const *datasets;
	/*
	 * Its life under juki_daemon_main() (JUKI_NODE_DAEMON_OPS): the state
	 * is size bytes, zeroed, struct juki_node first; its configuration
	 * holds struct juki_node_conf at offset conf_node.  Each hook may be
	 * NULL.  check() - the daemon's own rules, before the node's (at -n,
	 * start and reload); started() - after the node started (a failure
	 * stops it again); reloaded() - after the node took a new
	 * configuration that check() passed; stopping() - before the node
	 * stops.
	 */
	size_t size;
	size_t conf_node;
	int (*check)(const void *conf, char *err, size_t errlen);
	int (*started)(struct juki_node *node, char *err, size_t errlen);
	void (*reloaded)(struct juki_node *node);
	void (*stopping)(struct juki_node *node);
};

/*
 * juki_node_purge_files() - erase the files directly in dir last modified
 * more than keep_ms (0: never) before now_ms, or count them with dry_run
 * (juki_purge_files(), purge.h), and append the report item named name to
 * files.  For a spec's purge_files.  Returns 0 or the last failure.
 */
int juki_node_purge_files(const char *name, const char *dir, int64_t keep_ms, int64_t now_ms,
			  int dry_run, json_t *files);

/*
 * juki_node_check() - everything about conf that can be checked without
 * side effects: identity of the right kind and equal to the certificate's,
 * key file mode, certificate and CA load, policy loads; the folders of
 * store, audit.path and control owned by the daemon's user or root and
 * writable by nobody else (juki_dir_check_private(), base/dir.h).
 */
int juki_node_check(const struct juki_node_conf *conf, enum juki_kind kind, char *err,
		    size_t errlen);

/*
 * The daemon operations of a server node whose spec is spec: start, reload
 * and stop the node with the spec's hooks around it, e.g.
 *   const struct juki_daemon_ops csd_ops = {.name = ..., JUKI_NODE_DAEMON_OPS(csd_spec)};
 */
int juki_node_daemon_check(const struct juki_daemon_ops *ops, void *conf, char *err, size_t errlen);
int juki_node_daemon_start(struct juki_daemon *d, void *conf, void **nodep, char *err,
			   size_t errlen);
int juki_node_daemon_reload(struct juki_daemon *d, void *nodep, void *newconf, char *err,
			    size_t errlen);
void juki_node_daemon_stop(struct juki_daemon *d, void *nodep);
#define JUKI_NODE_DAEMON_OPS(spec)                                                                 \
	.check = juki_node_daemon_check, .start = juki_node_daemon_start,                          \
	.reload = juki_node_daemon_reload, .stop = juki_node_daemon_stop, .data = &(spec)

/* juki_node_daemon_conf() - the daemon's whole configuration (its spec's). */
const void *juki_node_daemon_conf(const struct juki_node *node);

/* juki_node_kick() - entries were committed to the outbox: deliver them. */
void juki_node_kick(struct juki_node *node);

/* juki_node_now_ms() - the node's clock. */
int64_t juki_node_now_ms(const struct juki_node *node);

/*
 * What a daemon's handlers, commands and hooks may use of its node (struct
 * juki_node is the runtime's own): the daemon's state (its spec's size,
 * zeroed at start), the event loop, the daemon, the store, the alerts, the
 * clock, the node's identity, its part of the configuration, its outbound
 * delivery (for a module that queues its own queries), and the operators'
 * commands (for the approval of important input).
 */
void *juki_node_priv(struct juki_node *node);
struct event_base *juki_node_base(const struct juki_node *node);
struct juki_daemon *juki_node_daemon(const struct juki_node *node);
struct juki_store *juki_node_store(const struct juki_node *node);
struct juki_alerts *juki_node_alerts(const struct juki_node *node);
struct juki_outbound *juki_node_outbound(const struct juki_node *node);
struct juki_clock *juki_node_clock(struct juki_node *node);
const struct juki_ident *juki_node_self(const struct juki_node *node);
const struct juki_node_conf *juki_node_conf(const struct juki_node *node);
/* juki_node_daemon_name() - the daemon's name ("juki-csd"). */
const char *juki_node_daemon_name(const struct juki_node *node);
/* juki_node_received() - messages received on the node port since start. */
int64_t juki_node_received(const struct juki_node *node);
struct juki_opcmds *juki_node_opcmds(const struct juki_node *node);
/* The daemon's spec, the node port and the reconciliation (NULL: the node sends none). */
const struct juki_node_spec *juki_node_spec(const struct juki_node *node);
struct juki_inbound *juki_node_inbound(const struct juki_node *node);
struct juki_reconcile *juki_node_reconcile(const struct juki_node *node);
/* juki_node_tls() - the node's identity, CA and CRL now (a reload replaces it). */
struct juki_tls *juki_node_tls(const struct juki_node *node);

/*
 * The runtime's modules that several daemons share (conflict.h, provide.h,
 * provnotice.h, report.h).  Their handlers and control commands are given
 * only the node: each module finds its state in the node's slot of its id,
 * filled by its start and emptied by its stop, whatever the daemon's own
 * state looks like.  A new shared module adds its id here (before
 * JUKI_MODULES).
 */
enum juki_module {
	JUKI_MODULE_CONFLICTS,  /* struct juki_conflicts (二重登録) */
	JUKI_MODULE_PROVIDE,    /* struct juki_provide (provision, 第6-8) */
	JUKI_MODULE_PROVNOTICE, /* struct juki_provnotice (provision notices) */
	JUKI_MODULE_REPORTS,    /* struct juki_reports (management reports) */
	JUKI_MODULE_NINSHO,     /* struct juki_ninsho (異動等情報, 第6-8(6)) */
	JUKI_MODULE_METRICS,    /* struct node_metrics (metrics.c) */
	JUKI_MODULE_MONITOR,    /* struct juki_monitor (heartbeats, the board) */
	JUKI_MODULE_INTEGRITY,  /* struct juki_integrity (第4-7(4)) */
	JUKI_MODULE_BOARDWEB,   /* struct juki_boardweb (the board's web page) */
	JUKI_MODULE_LOAD,       /* struct load_state (load.c: the bulk load) */
	JUKI_MODULES            /* the number of slots */
};

/* The slots themselves, one a module (a node holds one; usable alone in tests). */
struct juki_node_modules {
	void *state[JUKI_MODULES];
};

/*
 * juki_node_modules_set() - put state in the slot of id, or empty it with
 * NULL.  0; JUKI_EINVAL for an id out of range; JUKI_EEXIST when the slot
 * holds another state already (a module runs once at a node; the slot is
 * left as it was).  juki_node_modules_get() - the state in the slot of id,
 * NULL when empty or for an id out of range.  juki_node_modules_clear() -
 * empty the slot of id if it holds state (a module's stop: a second start
 * that never took the slot leaves the first one's alone).
 */
int juki_node_modules_set(struct juki_node_modules *m, enum juki_module id, void *state);
void *juki_node_modules_get(const struct juki_node_modules *m, enum juki_module id);
void juki_node_modules_clear(struct juki_node_modules *m, enum juki_module id, const void *state);

/* juki_node_module_set(), juki_node_module(), juki_node_module_clear() - on the node's slots. */
int juki_node_module_set(struct juki_node *node, enum juki_module id, void *state);
void *juki_node_module(const struct juki_node *node, enum juki_module id);
void juki_node_module_clear(struct juki_node *node, enum juki_module id, const void *state);

#endif
