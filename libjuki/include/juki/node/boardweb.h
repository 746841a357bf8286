/*
 * juki — the board's web page (docs/operations.md, docs/architecture.md).
 *
 * A node that keeps the board (the national and prefectural servers) can
 * show it to its operators in a browser: HTTPS on boardweb.listen, served by
 * libevent's evhttp over bufferevent_openssl with the node's own TLS
 * contexts (tls.h): TLS 1.3 only, the client's certificate required and
 * verified against the node's CA and CRL.  The certificate must then be an
 * operator of this node, active (not locked), whose roles allow the control
 * command "board" — the same rules as on the operator port (opport.h) and
 * the same gate as the command itself (opcmds.h).  Every page view, every
 * refusal and every refused handshake goes into the operation history;
 * refused and overdue handshakes are alerted.  One deadline bounds a
 * connection from accept to a complete request (and, after each answer,
 * to the next): a client that trickles bytes is cut off as a silent one.
 *
 * Routes: "/" the page, "/board.js" and "/board.css" its script and style
 * (built into the binary from libjuki/src/node/boardweb/), "/board.json" the
 * board as the command "board" returns it, with "prefs" (the worst state of
 * each prefecture's nodes) and "refresh_ms" added.  Nothing else; GET and
 * HEAD only.
 */
#ifndef JUKI_BOARDWEB_H
#define JUKI_BOARDWEB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/ident.h"
#include "juki/node/alert.h"
#include "juki/node/control.h"
#include "juki/node/opcmds.h"
#include "juki/store/store.h"
#include "juki/wire/tls.h"

/* The boardweb: section of a node's configuration. */
struct juki_node_boardweb {
	char **listen; /* HTTPS addresses; none: no page */
	size_t nlisten;
	int64_t deadline;    /* accept to a complete request, and an answer to the next */
	int64_t refresh;     /* how often the page asks for the board again */
	int64_t connections; /* at once */
};

extern const struct juki_conf_key juki_node_boardweb_keys[];

struct juki_boardweb;

/* What the server works with, borrowed from the node that runs it. */
struct juki_boardweb_env {
	struct event_base *base;
	struct juki_store *store; /* the operators table */
	struct juki_alerts *alerts;
	struct juki_clock *clock;
	const struct juki_ident *self;
	struct juki_opcmds *opcmds;          /* the history and the gate of every request */
	const struct juki_ctl_table *tables; /* where the command "board" is */
	size_t ntables;
};

/* Its settings, given again at every reload (borrowed). */
struct juki_boardweb_conf {
	const struct juki_node_boardweb *web;
	struct juki_tls *tls; /* the node's identity, CA and CRL */
};

struct juki_node;

/*
 * The monitor's service (monitor.h, struct juki_monitor_service): started
 * when the node keeps a board — listening when boardweb.listen is set, in
 * the node's module slot JUKI_MODULE_BOARDWEB — reloaded with it (the new
 * CA, CRL, deadline and refresh), stopped before the board.  It reads what
 * the monitor's command "board" returns, under the node's history hooks.
 */
int juki_boardweb_start(struct juki_node *node, char *err, size_t errlen);
void juki_boardweb_reload(struct juki_node *node);
void juki_boardweb_stop(struct juki_node *node);

/* juki_boardweb_new() - listen on conf->web->listen.  0 or a negative code with err. */
int juki_boardweb_new(const struct juki_boardweb_env *env, const struct juki_boardweb_conf *conf,
		      struct juki_boardweb **out, char *err, size_t errlen);

/* juki_boardweb_reloaded() - new settings: new connections use the new CA and CRL. */
void juki_boardweb_reloaded(struct juki_boardweb *web, const struct juki_boardweb_conf *conf);

/* juki_boardweb_free() - stop listening, close every connection; NULL is fine. */
void juki_boardweb_free(struct juki_boardweb *web);

/* juki_boardweb_addr() - the i-th bound address, NULL past the last. */
const char *juki_boardweb_addr(const struct juki_boardweb *web, size_t i);

/* juki_boardweb_status() - {"listen": [...], "connections": n, "views": n, "refused": n}. */
json_t *juki_boardweb_status(const struct juki_boardweb *web);

/*
 * juki_boardweb_prefs() - the worst state of each prefecture's nodes on a
 * board ({"nodes": [{"pref", "state"}, ...]}): an object "01".."47" ->
 * "up" | "degraded" | "down" | "intrusion", only prefectures with nodes.  A
 * node's pref is 1..47 (a number or its two digits); others are left out; a
 * state the page does not know counts as degraded.  Pure; NULL on ENOMEM.
 */
json_t *juki_boardweb_prefs(const json_t *board);

/*
 * An asset of the page, built into the binary (boardweb_assets.c, made by
 * cmake/embed.cmake from libjuki/src/node/boardweb/).
 */
struct juki_boardweb_asset {
	const char *path; /* "/", "/board.js", ... */
	const char *type; /* its Content-Type */
	const unsigned char *data;
	size_t len;
};

/* juki_boardweb_asset() - the asset served at path (no query), NULL for none. */
const struct juki_boardweb_asset *juki_boardweb_asset(const char *path);

#endif
