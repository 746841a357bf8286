/*
 * juki — 異動等情報 toward the certification authority (第6-8(6)): the
 * message types and reason codes of the service "ninsho", and the sending
 * side at the national (and a prefectural) server (docs/protocol.md
 * "ninsho", docs/architecture.md "異動等情報", docs/operations.md).
 *
 * The entries themselves and the rule that derives them are of the records
 * layer (juki/records/idou.h).  Here: a server configured with
 * ninsho.authlink, under an active agreement (records/agreement.h, method
 * "feed") with the authority ninsho.ca, puts ONE ninsho.idou message per
 * honnin.batch it applies (more when it holds over JUKI_IDOU_MAX entries)
 * into the outbox toward the link server, in the batch's transaction:
 *
 *   {"ca":"urn:juki:ca:jpki", "agreement":"<id>", "retention_days":N,
 *    "entries":[entry, ...]}
 *
 * Without an active feed agreement nothing is queued: the entries are
 * counted as withheld and the alert ninsho-no-agreement is raised once per
 * Japan day.
 *
 * Shared by juki-jlisd and juki-prefd (node/provide.c's way): the state is
 * in the node's JUKI_MODULE_NINSHO slot.
 */
#ifndef JUKI_NODE_NINSHO_H
#define JUKI_NODE_NINSHO_H

#include <stdint.h>

#include <jansson.h>

#include "juki/base/config.h"
#include "juki/base/ident.h"
#include "juki/node/node.h"
#include "juki/records/honnin.h"
#include "juki/records/idou.h"
#include "juki/wire/msg.h"

/* Message types of the service ninsho. */
#define JUKI_MSG_NINSHO_IDOU   "ninsho.idou"   /* jlis/pref -> authlink: 異動等情報 */
#define JUKI_MSG_NINSHO_FEED   "ninsho.feed"   /* authlink -> ca: numbered, chained entries */
#define JUKI_MSG_NINSHO_RESEND "ninsho.resend" /* ca -> authlink: send again from seq n */

/* Reason codes of the service ninsho (docs/protocol.md §9). */
#define JUKI_R_NINSHO_WRONG_CA "ninsho-wrong-ca" /* ninsho.idou names another authority */
#define JUKI_R_FEED_GAP        "feed-gap"        /* first seq beyond the last committed + 1 */
#define JUKI_R_FEED_DIGEST     "feed-digest"     /* a digest does not chain */
#define JUKI_R_RESEND_AHEAD    "resend-ahead"    /* resend from beyond what was sent, or < 1 */
#define JUKI_R_RESEND_ERASED   "resend-erased"   /* resend from an entry already erased */

/* The alert of the sending side: entries withheld for want of an active agreement. */
#define JUKI_ALERT_NINSHO_NO_AGREEMENT "ninsho-no-agreement"

/* The `ninsho:` section of jlisd's and prefd's configuration. */
struct juki_ninsho_conf {
	char *authlink; /* urn of the link server; NULL or "": this server sends nothing */
	char *ca;       /* urn of the authority the agreement is with */
};

extern const struct juki_conf_key juki_ninsho_keys[];

/* The section, for a daemon's key table: st its conf, f the struct juki_ninsho_conf field. */
#define JUKI_NINSHO_CONF_KEYS(st, f)                                                                 \
	JUKI_CONF_SECTIONKEY(st, f, "ninsho", juki_ninsho_keys,                                      \
			     "異動等情報 to the certification authority (第6-8(6)): the link " \
			     "server and the authority.")

/* juki_ninsho_check() - authlink and ca are identities of their kinds.  0 or JUKI_ECONFIG. */
int juki_ninsho_check(const struct juki_ninsho_conf *conf, char *err, size_t errlen);

struct juki_ninsho;

/*
 * juki_ninsho_start() - take the node's JUKI_MODULE_NINSHO slot with conf
 * (copied; juki_ninsho_reload() takes a new one).  NULL on ENOMEM or when
 * the node runs it already.  juki_ninsho_stop() - free; NULL is fine.
 */
struct juki_ninsho *juki_ninsho_start(struct juki_node *node, const struct juki_ninsho_conf *conf);
int juki_ninsho_reload(struct juki_ninsho *n, const struct juki_ninsho_conf *conf);
void juki_ninsho_stop(struct juki_ninsho *n);

/* juki_ninsho_of() - the node's state (its slot); NULL when not started. */
struct juki_ninsho *juki_ninsho_of(struct juki_node *node);

/*
 * juki_ninsho_hook() - the hook to give juki_honnin_receive_hooked() for a
 * batch: NULL when ninsho.authlink is not set (n NULL too), so that a
 * server that sends nothing derives nothing.  juki_ninsho_flush() - after
 * the records are applied, in the same transaction: queue what the batch
 * derived (or withhold it), and forget it; juki_ninsho_reset() - forget it
 * (the transaction rolled back).
 */
const struct juki_honnin_hook *juki_ninsho_hook(struct juki_ninsho *n);
int juki_ninsho_flush(struct juki_ninsho *n);
void juki_ninsho_reset(struct juki_ninsho *n);

/*
 * juki_ninsho_status() - {"authlink" (null when off), "ca", "agreement" (the
 * id of the active feed agreement, null when none), "sent_entries",
 * "withheld" (entries queued and withheld since start)}; NULL when the
 * node does not run the module.
 */
json_t *juki_ninsho_status(struct juki_node *node);

#endif
