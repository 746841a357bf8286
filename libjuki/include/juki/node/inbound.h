/*
 * juki — the receiving side of a node (docs/architecture.md §4.1).
 *
 * A node port accepts connections from gateways only.  For each:
 *
 *   0. from accept, steps 1-3 together get handshake_timeout +
 *      line_timeout (each no more than its own limit); a connection that
 *      runs out is closed as a "slow-caller" alert;
 *   1. outer TLS 1.3; the peer must be a gateway (urn:juki:fwgate:*);
 *   2. the gateway names the caller: "FROM <urn> <service>\n"; the node
 *      checks the flow policy again (the receiver enforces it too) and
 *      answers "OK\n" or "DENY <code> <text>\n";
 *   3. inner TLS 1.3 through the tunnel, server side; the caller's own
 *      certificate must name the identity the gateway announced;
 *   4. frames: each message is checked (header, sender = the inner TLS
 *      peer, recipient = this node, a known type on the right service),
 *      applied by its handler and recorded in the inbox in one transaction
 *      with everything else read in the same turn; then acked in order.
 *      An id already recorded is acked "duplicate" when the frame's bytes
 *      have the digest recorded with it (a redelivery), else refused
 *      "replay-mismatch", alerted and kept in inbox_mismatch (outbox.h).
 *
 * A handler runs inside that transaction, within a savepoint of its own:
 * return 0 to accept, JUKI_REJECT with rej filled to refuse (its changes are
 * rolled back), or another negative code for an internal failure (the whole
 * turn is rolled back and the channel closed without acks, so the sender
 * delivers again).
 */
#ifndef JUKI_INBOUND_H
#define JUKI_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "juki/node/alert.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"
#include "juki/wire/policy.h"
#include "juki/wire/tls.h"

struct juki_handler {
	const char *type;          /* message type */
	enum juki_service service; /* the service it must arrive on */
	int (*fn)(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
	/*
	 * A query changes nothing: it is not recorded in the inbox, so a
	 * redelivered one is answered again instead of "duplicate".
	 */
	int query;
	/*
	 * A bulk message (thousands of records) is handled in a transaction of
	 * its own, without a savepoint: what came before it in the turn is
	 * committed and acknowledged first, and a refusal rolls back the whole
	 * transaction.  A savepoint inside a transaction keeps the original of
	 * every page the message changes in memory until the commit (measured:
	 * some 25 MiB for 5,000 records at a million rows).
	 */
	int bulk;
#define JUKI_BULK_TEXT 2
	/*
	 * bulk JUKI_BULK_TEXT: a bulk message whose fn reads msg->body_text
	 * when it is set (struct juki_msg): the body reaches it as the frame's
	 * text, vouched for as strict JSON, instead of a tree built and freed
	 * around the call (measured: a third of a receiver's CPU per record of
	 * a honnin.batch, docs/benchmarks.md).  fn must still take a tree body
	 * (body_text NULL).
	 */
	/*
	 * refused (NULL: none) - called when fn refused msg, after its changes
	 * were rolled back, inside the turn's transaction: it may record the
	 * refusal and rewrite rej, what the sender is told (a refusal a
	 * sender must not learn from).  0 or a negative code.
	 */
	int (*refused)(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
};

struct juki_inbound_conf {
	struct event_base *base;
	struct juki_store *store;
	struct juki_alerts *alerts;
	const struct juki_clock *clock;
	const struct juki_handler *handlers; /* terminated by type == NULL */
	void *ctx;                           /* passed to handlers and committed */
	/* Optional: a turn that accepted messages was committed (new outbox work?). */
	void (*committed)(void *ctx);
	int64_t handshake_timeout_ms;
	int64_t line_timeout_ms;
	int64_t idle_timeout_ms;
	size_t frame_max;
};

struct juki_inbound;

/*
 * juki_inbound_new() - listen on each address with tls (our identity) and
 * policy.  tls and policy are borrowed: keep them alive, or swap them with
 * juki_inbound_set_tls().  Returns 0 or a negative code with err.
 */
int juki_inbound_new(const struct juki_inbound_conf *conf, struct juki_tls *tls,
		     const struct juki_policy *policy, char *const *listen, size_t nlisten,
		     struct juki_inbound **out, char *err, size_t errlen);

/* juki_inbound_set_tls() - use new tls and policy for connections from now on (reload). */
void juki_inbound_set_tls(struct juki_inbound *in, struct juki_tls *tls,
			  const struct juki_policy *policy);

/* juki_inbound_addr() - the i-th bound address ("127.0.0.1:7101"), NULL past the end. */
const char *juki_inbound_addr(const struct juki_inbound *in, size_t i);

/*
 * juki_inbound_status() - {"listen": [...], "channels": n, "received": n,
 * "accepted": n, "duplicate": n, "slow_callers": n, "rejected": {reason: n}}.
 * Refused connections are counted as alerts; slow_callers are those that
 * did not finish their handshakes and FROM line in time.  NULL on ENOMEM.
 */
json_t *juki_inbound_status(const struct juki_inbound *in);

/* juki_inbound_free() - stop listening and close every channel. */
void juki_inbound_free(struct juki_inbound *in);

#endif
