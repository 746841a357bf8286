/*
 * juki-authlinkd — the link server (連携サーバ) that passes 異動等情報 on to
 * the certification authority (第6-8(6)).
 *
 * It takes ninsho.idou from its sources (the national server, or a
 * prefecture that provides itself), numbers every entry without gaps,
 * chains it into a running digest and keeps it (feed.h), and feeds the
 * authority with ninsho.feed through the outbox: in order, each message
 * acknowledged only after the authority committed it.  The authority may
 * ask for a re-send from any entry not yet erased (ninsho.resend).  Entries
 * are erased after the authority acknowledged them and authlink.keep passed.
 */
#ifndef JUKI_AUTHLINK_AUTHLINKD_H
#define JUKI_AUTHLINK_AUTHLINKD_H

#include <event2/event.h>
#include <jansson.h>

#include "juki/base/ident.h"
#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/node.h"

/* The authlink: section. */
struct authlink_section {
	char *ca;       /* the authority's urn */
	char **sources; /* who may send ninsho.idou (none listed: the national server) */
	size_t nsources;
	int64_t keep;      /* ms after the authority's ack before an entry is erased */
	int64_t lag_alert; /* ms an entry may wait unacknowledged before authlink-lag */
};

struct authlinkd_conf {
	struct juki_node_conf node;
	struct authlink_section authlink;
};

struct juki_reports;

/* The link server's state, its node's private data (juki_node_priv()). */
struct authlinkd {
	char ca[JUKI_URN_MAX];        /* the authority fed: authlink.ca at start */
	struct event *lag_timer;      /* watches the oldest unacknowledged entry */
	int lagging;                  /* authlink-lag raised for the present episode */
	int refused;                  /* authlink-refused raised since the last accepted ack */
	struct juki_reports *reports; /* management reports held for the authority */
	int64_t
	    twice; /* entries received again from another centre, passed on once (since start) */
};

extern const struct juki_conf_key authlinkd_conf_keys[];
extern const struct juki_daemon_ops authlinkd_ops;

/* The default source when authlink.sources lists none. */
#define AUTHLINK_DEFAULT_SOURCE "urn:juki:jlis:0"

#endif
