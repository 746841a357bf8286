/*
 * juki — watching the network (第2-1(3), 第4-7(3), 第4-9(4); docs/architecture.md,
 * "Monitoring").
 *
 * Every server node (cs, pref, jlis, authlink) runs the monitor: node.c
 * starts it, merges its message handlers into the daemon's and serves its
 * control commands, so no daemon does anything for it.
 *
 * Watched side: every monitor.interval the node queues a monitor.heartbeat
 * (a query over the service "monitor", through the outbox) to each of its
 * watchers — a CS to its prefecture and the national server, a prefecture
 * and authlink:0 to the national server, authlink:NN to its prefecture and
 * the national server, unless monitor.watchers says otherwise.  At most one
 * heartbeat per watcher is ever undelivered: while one waits in the outbox
 * no other is queued (the one waiting goes when the line is back).  The
 * watcher's accepted ack carries its clock ({"time"}), from which the node
 * learns its skew.  Every alert raised at the node is forwarded to each
 * watcher as a monitor.alert (at most monitor.alert_rate a minute; past
 * that, one "alerts-suppressed" summary a minute), delivered at once.
 * monitor.intrusion_refusals refused handshakes within a minute raise
 * "intrusion-suspected".
 *
 * Watching side (a node with a board: monitor.board, by default jlis and
 * the prefectures): the last heartbeat of every node that sends them, its
 * forwarded alerts, and the nodes silent for monitor.down_after, marked
 * down with the alert "node-down" (and a log line when they come back).
 *
 * Store component "monitor":
 *   monitor_nodes(node PRIMARY KEY, kind, pref, daemon, version, state,
 *                 last_seen_ms, skew_ms, down, down_since_ms, heartbeat TEXT)
 *   monitor_alerts(id INTEGER PRIMARY KEY, node, seq, time_ms, code, class,
 *                 peer, addr, detail, received_ms)  -- the newest kept
 */
#ifndef JUKI_MONITOR_H
#define JUKI_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/config.h"
#include "juki/node/control.h"
#include "juki/node/inbound.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

/* Message types on the service "monitor" (docs/protocol.md, the service monitor). */
#define JUKI_MSG_HEARTBEAT     "monitor.heartbeat" /* node -> watcher; a query */
#define JUKI_MSG_MONITOR_ALERT "monitor.alert"     /* node -> watcher: an alert raised */

/* Refusals of monitor messages. */
#define JUKI_R_NOT_WATCHING "not-watching" /* this node keeps no board */

/* Bounds of what a heartbeat or alert may carry. */
#define JUKI_MONITOR_BODY_MAX    (64 * 1024) /* a heartbeat's body, as JSON text */
#define JUKI_MONITOR_DETAIL      256         /* an alert's detail, bytes */
#define JUKI_MONITOR_WATCHERS    8           /* watchers of one node at most */
#define JUKI_MONITOR_ALERTS_KEPT 1000        /* forwarded alerts a board keeps */

struct juki_node;

/* The monitor: section of every server node's configuration. */
struct juki_monitor_conf {
	int64_t interval;   /* between heartbeats */
	int64_t down_after; /* a node silent this long is down */
	char **watchers;    /* "auto" and/or urns; [] none */
	size_t nwatchers;
	char **centres; /* the national centres "auto" names: [urn:juki:jlis:0] by default */
	size_t ncentres;
	int board;                  /* JUKI_MONITOR_BOARD_* */
	int64_t alert_rate;         /* alerts forwarded a minute at most */
	int64_t intrusion_refusals; /* refused handshakes a minute that raise intrusion-suspected */
	int64_t alert_open;         /* a forwarded alert counts as open this long */
};

enum { JUKI_MONITOR_BOARD_AUTO, JUKI_MONITOR_BOARD_YES, JUKI_MONITOR_BOARD_NO };

extern const struct juki_conf_key juki_monitor_conf_keys[];
int juki_monitor_conf_check(const void *section, const char **blame, char *why, size_t whylen);

#define JUKI_MONITOR_CONF_KEY(st, f)                                                               \
	{                                                                                          \
		.name = "monitor", .type = JUKI_CONF_SECTION, .offset = offsetof(st, f),           \
		.sub = juki_monitor_conf_keys, .check = juki_monitor_conf_check,                   \
		.help = "Heartbeats to the watching nodes, their boards and forwarded alerts "     \
			"(第4-7(3), 第4-9(4))."                                                  \
	}

/*
 * An extension of the heartbeat: the member name, made by make() at the
 * watched node (a NULL result leaves it out), and seen by observe() at the
 * watcher for every heartbeat that carries it (may be NULL).  observe runs
 * inside the watcher's store transaction of the message: it may write its
 * own tables, and must not begin or commit.
 */
struct juki_monitor_part {
	const char *name; /* the heartbeat member */
	json_t *(*make)(struct juki_node *node);
	void (*observe)(struct juki_node *node, const char *from, const json_t *value,
			int64_t now_ms);
};

/*
 * What runs beside a board (the board's web page): a row in the static
 * services[] of monitor.c.  start() runs when the node starts keeping a
 * board (at its start, or a reload that turns monitor.board on; 0 or a
 * negative code with err: at start the node does not start, at a reload
 * it is logged), reload() at each reload while it keeps one (may be NULL),
 * stop() when it stops keeping one or stops.  The monitor is running
 * (juki_monitor_board_json() answers) during all three.
 */
struct juki_monitor_service {
	const char *name;
	int (*start)(struct juki_node *node, char *err, size_t errlen);
	void (*reload)(struct juki_node *node);
	void (*stop)(struct juki_node *node);
};

/* The store component "monitor". */
#define JUKI_MONITOR_NSTEPS 1
extern const struct juki_migration juki_monitor_steps[JUKI_MONITOR_NSTEPS];
#define JUKI_MONITOR_SCHEMA                                                                        \
	{                                                                                          \
		"monitor", juki_monitor_steps, JUKI_MONITOR_NSTEPS                                 \
	}

/* The message handlers (monitor.heartbeat, monitor.alert), ended by {NULL}; ctx: the node. */
extern const struct juki_handler juki_monitor_handlers[];

/* The control commands ("board"), ended by {NULL}; ctx: the node. */
extern const struct juki_ctl_cmd juki_monitor_cmds[];

struct juki_monitor;

/*
 * juki_monitor_start() - run the monitor of node with conf (borrowed: keep
 * it alive until juki_monitor_reload() or _stop()).  It takes the node's
 * JUKI_MODULE_MONITOR slot.  0 or a negative code with err.
 */
int juki_monitor_start(struct juki_node *node, const struct juki_monitor_conf *conf, char *err,
		       size_t errlen);
/*
 * juki_monitor_watchers() - the nodes that watch self under conf's
 * monitor.watchers, "auto" expanded (a CS and a prefecture's link server:
 * their prefecture; every node but a national centre: every centre of
 * monitor.centres, urn:juki:jlis:0 by default; a national centre: the
 * other centres),
 * without self or repeats, at most JUKI_MONITOR_WATCHERS.  Returns how many
 * were written to urns.
 */
size_t juki_monitor_watchers(const struct juki_ident *self, const struct juki_monitor_conf *conf,
			     char urns[][JUKI_URN_MAX]);
/* juki_monitor_reload() - take a new conf (intervals, watchers, rates; the board stays). */
void juki_monitor_reload(struct juki_node *node, const struct juki_monitor_conf *conf);
void juki_monitor_stop(struct juki_node *node);

/*
 * juki_monitor_on_ack() - node.c's ack callback: the ack of a heartbeat
 * (its result the watcher's clock) or a forwarded alert.  Returns 1 when
 * the entry was the monitor's, else 0.
 */
int juki_monitor_on_ack(struct juki_node *node, const struct juki_outbox_entry *entry,
			const struct juki_ack *ack);

/*
 * juki_monitor_status() - the status part "monitor": {"watchers": [{"node",
 * "last_ok", "skew_ms", "pending", "last_error"}], "board": {"nodes": n,
 * "down": n} or null}.  NULL when the monitor is not running.
 */
json_t *juki_monitor_status(struct juki_node *node);

/*
 * juki_monitor_board_json() - the board: {"self", "time", "nodes": [{"node",
 * "kind", "pref", "daemon", "version", "state": "up"|"down"|"degraded"|
 * "intrusion", "last_seen", "skew_ms", "queues", "alerts_open",
 * "heartbeat"}], "alerts": [{"node", "seq", "time", "code", "class",
 * "peer", "detail", "received"}]} of the nodes of prefecture pref ("13"
 * as the number 13; 0: all), alerts newest first.  NULL when the node
 * keeps no board, or on failure.
 */
json_t *juki_monitor_board_json(struct juki_node *node, int pref);

/*
 * juki_monitor_heartbeat_check() - is body a heartbeat this watcher takes?
 * Every member it knows has its type and bound checked; unknown members are
 * ignored.  0, or JUKI_EINVAL with the member and its rule in why.
 */
int juki_monitor_heartbeat_check(const json_t *body, char *why, size_t whylen);

/* juki_monitor_alert_check() - the same for a monitor.alert body. */
int juki_monitor_alert_check(const json_t *body, char *why, size_t whylen);

/*
 * The rate of forwarded alerts: at most a number a minute, the minute
 * starting at window_ms.  juki_monitor_rate_roll() - at now_ms, when the
 * minute is over, start a new one at now_ms and return how many alerts
 * were suppressed in the one that ended (the summary to send; 0: none).
 * juki_monitor_rate_take() - may one more alert go in this minute (1,
 * counted), or not (0, counted as suppressed)?
 */
struct juki_monitor_rate {
	int64_t window_ms;
	int64_t in_window;
	int64_t suppressed;
};
int64_t juki_monitor_rate_roll(struct juki_monitor_rate *r, int64_t now_ms);
int juki_monitor_rate_take(struct juki_monitor_rate *r, int64_t rate);

/*
 * juki_monitor_alert_class() - "intrusion" for the alert codes that suggest
 * an attack (intrusion-suspected, the operation history's and the
 * integrity's codes), else "fault".
 */
const char *juki_monitor_alert_class(const char *code);

#endif
