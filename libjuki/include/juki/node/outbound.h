/*
 * juki — the sending side of a node: delivery of the outbox (docs/architecture.md §4.2).
 *
 * One link per (destination, service) with entries waiting.  A link connects
 * to the first gateway of the ordered list (outer TLS 1.3, the gateway's
 * certificate must name a urn:juki:fwgate identity), asks
 * "CONNECT <destination> <service>\n", and on "OK\n" runs the inner TLS 1.3
 * handshake through the tunnel, client side, requiring the destination's
 * own certificate.  Then it sends outbox entries in order, up to `window`
 * unacknowledged, and on each ack (which must come in order) deletes the
 * entry — or moves it to outbox_rejected when refused, except for
 * "internal-error", which is retried.
 *
 * Failure to connect, a handshake failure, a timeout or "DENY unreachable"
 * moves to the next gateway; when all have failed the link waits (exponential
 * backoff with jitter) and starts again from the first.  While a link runs
 * over a backup gateway it probes the primary every `failback` and moves
 * back when it answers.
 */
#ifndef JUKI_OUTBOUND_H
#define JUKI_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "juki/node/alert.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"
#include "juki/wire/tls.h"

struct juki_outbound_conf {
	char *const *gateways; /* "host:port", primary first */
	size_t ngateways;
	size_t window;              /* unacknowledged messages in flight per link */
	int64_t connect_timeout_ms; /* TCP + TLS + CONNECT answer + inner TLS */
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	int64_t failback_ms;
	int64_t idle_timeout_ms; /* close a link with nothing to send after this */
	size_t frame_max;
};

/*
 * Called for every ack (accepted, duplicate or rejected) inside the
 * transaction that deletes the entry or moves it to outbox_rejected, so the
 * daemon can record the outcome with it.  entry has no payload.  A negative
 * return rolls the transaction back (the entry stays queued) and closes the
 * link, which delivers the entry again after the back-off.  JUKI_EAGAIN
 * says the daemon keeps the entry on purpose (the link server's feed, which
 * never lets an entry go on a refusal): no protocol-error alert, and the
 * link's last_error says so; any other code is a failure to record.
 */
typedef int (*juki_outbound_ack_cb)(void *ctx, const struct juki_outbox_entry *entry,
				    const struct juki_ack *ack);

struct juki_outbound;

/*
 * juki_outbound_new() - the delivery engine for store.  tls (borrowed) is
 * our identity for both TLS layers; conf is copied (the gateway strings
 * too).  Call juki_outbound_kick() once to pick up what is already queued.
 */
int juki_outbound_new(struct event_base *base, struct juki_store *store, struct juki_tls *tls,
		      const struct juki_outbound_conf *conf, const struct juki_clock *clock,
		      struct juki_alerts *alerts, juki_outbound_ack_cb on_ack, void *ctx,
		      struct juki_outbound **out);

/* juki_outbound_kick() - entries were committed: start or feed links. */
void juki_outbound_kick(struct juki_outbound *ob);

/*
 * juki_outbound_restart() - the queue of (dest, service) was rewritten
 * (juki_outbox_drop() and new entries): a link that is up closes, forgets
 * what it had in flight (acks for it would name entries gone) and
 * connects again, sending from the oldest entry queued.
 */
void juki_outbound_restart(struct juki_outbound *ob, const char *dest, const char *service);

/*
 * juki_outbound_reconfigure() - new identity and settings (reload); links
 * that are up stay up, new connections use the new ones.  0 or JUKI_ENOMEM.
 */
int juki_outbound_reconfigure(struct juki_outbound *ob, struct juki_tls *tls,
			      const struct juki_outbound_conf *conf);

/*
 * juki_outbound_status() - {"queued": n, "oldest_age_ms": n, "rejected": n,
 * "sent": n, "acked": n, "links": [{"dest", "service", "state", "gateway",
 * "in_flight", "failures", "last_error"}]}.  NULL on ENOMEM.
 */
json_t *juki_outbound_status(struct juki_outbound *ob);

/* juki_outbound_free() - close every link; queued entries stay in the store. */
void juki_outbound_free(struct juki_outbound *ob);

#endif
