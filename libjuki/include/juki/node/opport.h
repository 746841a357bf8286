/*
 * juki — the operator port of a server node (docs/control.md §6).
 *
 * Operators (端末機 users) reach a daemon here rather than on its local
 * socket: TLS 1.3 on a TCP port of its own, the client certificate being
 * the operator's card, urn:juki:op:<kind>:<id>:<operator> naming this node.
 * The session then carries the control protocol's frames; the first
 * request must be "login" with the operator's PIN, which the daemon checks
 * against its own verifier and counts (operator.h).  Every request after
 * that is checked against the operator's roles and data sets, and every
 * request, login attempts and refused handshakes included, goes into the
 * operation history (audit.h).
 *
 * The commands about operators themselves — operator.*, approval.*,
 * audit.*, lookup, export, pin.change — are common to every server node
 * and live in opcmds.c (opcmds.h).
 */
#ifndef JUKI_OPPORT_H
#define JUKI_OPPORT_H

#include <stddef.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/opcmds.h"

struct juki_opport;

/* What the port works with, borrowed from the node that runs it. */
struct juki_opport_env {
	struct event_base *base;
	struct juki_store *store; /* the operators table */
	struct juki_alerts *alerts;
	struct juki_clock *clock;
	const struct juki_ident *self;
	struct juki_opcmds *opcmds; /* the history and the hooks of every request */
	const struct juki_ctl_table *tables;
	size_t ntables;
};

/* Its settings, given again at every reload (borrowed). */
struct juki_opport_conf {
	const struct juki_node_operator *oper;
	int64_t handshake_timeout;
	int64_t pretrust_timeout; /* from accept to a good login: handshake and login together */
	struct juki_tls *tls;     /* the node's identity, CA and CRL */
};

/*
 * The rules an operator's certificate is held to, wherever it is presented
 * (the operator port, the board's web page, boardweb.h):
 *
 * juki_opport_is_ours() - whether peer (a verified certificate's identity)
 * is an operator certificate of this node, self: urn:juki:op:<kind>:<id>:<op>.
 *
 * juki_opport_operator() - the operator's row, read now: caller gets the
 * certificate's URN as who, the operator id, its roles and data sets (from
 * is left as it is).  Returns 0, JUKI_ENOTFOUND (no such operator),
 * JUKI_ELOCKED (locked by wrong PINs or by a supervisor) or JUKI_ESTORE.
 */
int juki_opport_is_ours(const struct juki_ident *self, const struct juki_ident *peer);
int juki_opport_operator(struct juki_store *store, const struct juki_ident *peer,
			 struct juki_caller *caller);

/* juki_opport_new() - listen on conf->oper->listen. */
int juki_opport_new(const struct juki_opport_env *env, const struct juki_opport_conf *conf,
		    struct juki_opport **out, char *err, size_t errlen);

/* juki_opport_free() - close every session and stop listening; NULL is fine. */
void juki_opport_free(struct juki_opport *port);

/* juki_opport_addr() - the i-th bound address, NULL past the last. */
const char *juki_opport_addr(const struct juki_opport *port, size_t i);

/* juki_opport_status() - {"listen": [...], "sessions": n, "operators": [ids]}. */
json_t *juki_opport_status(const struct juki_opport *port);

/*
 * juki_opport_recheck() - after a reload, with the new settings: every open
 * session whose card's certificate no longer verifies against the node's CA
 * and CRL (revoked, expired) is ended, in the history and as an alert.
 * NULL is fine.
 */
void juki_opport_recheck(struct juki_opport *port, const struct juki_opport_conf *conf);

#endif
