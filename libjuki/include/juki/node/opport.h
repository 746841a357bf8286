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

struct juki_node;
struct juki_opport;

/* juki_opport_new() - listen on the node's operator.listen addresses. */
int juki_opport_new(struct juki_node *node, struct juki_opport **out, char *err, size_t errlen);

/* juki_opport_free() - close every session and stop listening; NULL is fine. */
void juki_opport_free(struct juki_opport *port);

/* juki_opport_addr() - the i-th bound address, NULL past the last. */
const char *juki_opport_addr(const struct juki_opport *port, size_t i);

/* juki_opport_status() - {"listen": [...], "sessions": n, "operators": [ids]}. */
json_t *juki_opport_status(const struct juki_opport *port);

/*
 * juki_opport_recheck() - after a reload: every open session whose card's
 * certificate no longer verifies against the node's CA and CRL (revoked,
 * expired) is ended, in the history and as an alert.  NULL is fine.
 */
void juki_opport_recheck(struct juki_opport *port);

#endif
