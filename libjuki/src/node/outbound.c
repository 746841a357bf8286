#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/outbound.h"
#include "juki/wire/net.h"
#include "juki/wire/policy.h"

enum link_state {
	LINK_IDLE,
	LINK_CONNECTING,
	LINK_UP,
	LINK_BACKOFF,
};

static const char *const state_names[] = {
    [LINK_IDLE] = "idle",
    [LINK_CONNECTING] = "connecting",
    [LINK_UP] = "up",
    [LINK_BACKOFF] = "backoff",
};

struct inflight {
	int64_t seq;
	char msg_id[JUKI_UUID_LEN + 1];
	char type[JUKI_TYPE_MAX];
};

struct link {
	struct juki_outbound *ob;
	struct juki_ident dest;
	char service[16];
	enum link_state state;
	size_t gw;           /* gateway in use or being tried */
	unsigned failures;   /* rounds through every gateway that failed, in a row */
	struct event *timer; /* backoff wait, or the failback probe while up */
	int probing;
	int failback_due;
	struct juki_chan *chan;
	struct inflight *inflight; /* ring of window entries */
	size_t head, nin;
	int64_t last_sent_seq;
	char last_error[200];
	struct link *next;
};

struct juki_outbound {
	struct event_base *base;
	struct juki_net_group *steps; /* connections being set up, probes */
	struct juki_store *store;
	struct juki_tls *tls;
	struct juki_outbound_conf conf;
	char **gateways;
	const struct juki_clock *clock;
	struct juki_alerts *alerts;
	juki_outbound_ack_cb on_ack;
	void *ctx;
	struct link *links;
	uint64_t sent, acked, rejected;
};

static void link_connect(struct link *l);
static void pump(struct link *l);

static void
ms_to_tv(int64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static const char *
gateway_of(const struct link *l)
{
	return l->ob->gateways[l->gw];
}

static void
timer_in(struct link *l, int64_t ms)
{
	struct timeval tv;

	ms_to_tv(ms, &tv);
	evtimer_add(l->timer, &tv);
}

static int64_t
backoff_ms(const struct link *l)
{
	const struct juki_outbound_conf *c = &l->ob->conf;
	int64_t ms = c->backoff_min_ms;

	for (unsigned i = 1; i < l->failures && ms < c->backoff_max_ms; i++) {
		ms *= 2;
	}
	if (ms > c->backoff_max_ms) {
		ms = c->backoff_max_ms;
	}
	/* Jitter of up to a quarter, so that many links do not return in step. */
	if (ms >= 4) {
		ms = ms - ms / 4 + (int64_t)arc4random_uniform((uint32_t)(ms / 4 + 1));
	}
	return ms;
}

static void
clear_inflight(struct link *l)
{
	l->head = 0;
	l->nin = 0;
	/* Everything still queued is unacknowledged: start over from the oldest. */
	l->last_sent_seq = 0;
}

static int
has_work(struct link *l)
{
	struct juki_outbox_entry *e = NULL;
	size_t n = 0;
	int rc;

	rc = juki_outbox_next(l->ob->store, l->dest.urn, l->service, 0, 1, &e, &n);
	juki_outbox_entries_free(e, n);
	return rc == 0 && n > 0;
}

/* The established channel is gone: forget what was in flight and decide what next. */
static void
link_down(struct link *l, const char *why)
{
	if (l->chan != NULL) {
		juki_chan_free(l->chan);
		l->chan = NULL;
	}
	evtimer_del(l->timer);
	l->probing = 0;
	clear_inflight(l);
	snprintf(l->last_error, sizeof(l->last_error), "%s", why);
	if (l->failback_due) {
		/* Moving back to the primary gateway: at once. */
		l->failback_due = 0;
		l->gw = 0;
		link_connect(l);
		return;
	}
	l->gw = 0;
	if (has_work(l)) {
		l->state = LINK_BACKOFF;
		l->failures = l->failures ? l->failures : 1;
		timer_in(l, l->ob->conf.backoff_min_ms);
	} else {
		l->state = LINK_IDLE;
	}
}

static void
attempt_failed(struct link *l, const char *why, int try_next)
{
	log_notice("outbound: %s over %s via %s: %s", l->dest.urn, l->service, gateway_of(l), why);
	snprintf(l->last_error, sizeof(l->last_error), "%s: %s", gateway_of(l), why);
	if (try_next && l->gw + 1 < l->ob->conf.ngateways) {
		l->gw++;
		link_connect(l);
		return;
	}
	l->failures++;
	l->gw = 0;
	l->state = LINK_BACKOFF;
	timer_in(l, backoff_ms(l));
}

static void link_readable(struct juki_chan *chan, void *arg);
static void link_closed(struct juki_chan *chan, int rc, const char *why, void *arg);
static void link_drained(struct juki_chan *chan, void *arg);

static void
inner_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct link *l = arg;
	struct juki_outbound *ob = l->ob;
	static const struct juki_chan_cbs cbs = {
	    .readable = link_readable,
	    .closed = link_closed,
	    .drained = link_drained,
	};

	if (bev == NULL) {
		juki_alert(ob->alerts, juki_alert_code_tls(f), l->dest.urn, gateway_of(l),
			   "inner session: %s", why);
		attempt_failed(l, why, 0);
		return;
	}
	l->chan = juki_chan_new(bev, peer, l->service, ob->conf.frame_max, ob->conf.idle_timeout_ms,
				&cbs, l);
	if (l->chan == NULL) {
		attempt_failed(l, "out of memory", 0);
		return;
	}
	l->state = LINK_UP;
	l->failures = 0;
	l->last_error[0] = '\0';
	log_info("outbound: link up to %s over %s via %s", l->dest.urn, l->service, gateway_of(l));
	if (l->gw > 0 && ob->conf.failback_ms > 0) {
		timer_in(l, ob->conf.failback_ms);
	}
	pump(l);
}

static void
answer_line(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct link *l = arg;
	struct juki_outbound *ob = l->ob;
	char code[32] = "";

	if (rc != 0) {
		bufferevent_free(bev);
		attempt_failed(l, juki_strerror(rc), 1);
		return;
	}
	if (strcmp(line, "OK") == 0) {
		if (juki_net_wrap_tls(ob->steps, ob->tls, bev, JUKI_TLS_CLIENT, &l->dest,
				      ob->conf.connect_timeout_ms, inner_done, l) != 0) {
			attempt_failed(l, "cannot start the inner session", 0);
		}
		return;
	}
	bufferevent_free(bev);
	if (sscanf(line, "DENY %31s", code) != 1) {
		juki_alert(ob->alerts, "malformed-answer", NULL, gateway_of(l),
			   "gateway answered neither OK nor DENY");
		attempt_failed(l, "malformed answer from the gateway", 1);
		return;
	}
	/* The path may exist through another gateway; a refusal on principle will not. */
	if (strcmp(code, "unreachable") == 0 || strcmp(code, "limit") == 0 ||
	    strcmp(code, "timeout") == 0) {
		attempt_failed(l, line, 1);
		return;
	}
	juki_alert(ob->alerts, "connect-denied", l->dest.urn, gateway_of(l), "%s", line);
	attempt_failed(l, line, 0);
}

static void
outer_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct link *l = arg;
	struct juki_outbound *ob = l->ob;
	char request[JUKI_LINE_MAX];

	if (bev == NULL) {
		if (f == JUKI_TLSF_KEY) {
			juki_alert(ob->alerts, juki_alert_code_tls(f), NULL, gateway_of(l),
				   "to the gateway: %s", why);
		}
		attempt_failed(l, why, 1);
		return;
	}
	if (peer->kind != JUKI_KIND_FWGATE) {
		bufferevent_free(bev);
		juki_alert(ob->alerts, "not-a-gateway", peer->urn, gateway_of(l),
			   "gateway address answered with a node certificate");
		attempt_failed(l, "peer is not a gateway", 1);
		return;
	}
	snprintf(request, sizeof(request), "CONNECT %s %s", l->dest.urn, l->service);
	if (juki_net_write_line(bev, request) != 0) {
		bufferevent_free(bev);
		attempt_failed(l, "out of memory", 1);
		return;
	}
	juki_net_read_line(ob->steps, bev, JUKI_LINE_MAX, ob->conf.connect_timeout_ms, answer_line,
			   l);
}

static void
link_connect(struct link *l)
{
	struct juki_outbound *ob = l->ob;
	int rc;

	if (ob->conf.ngateways == 0) {
		snprintf(l->last_error, sizeof(l->last_error), "no gateway configured");
		l->state = LINK_IDLE;
		return;
	}
	l->state = LINK_CONNECTING;
	rc = juki_net_connect_tls(ob->steps, ob->tls, gateway_of(l), NULL,
				  ob->conf.connect_timeout_ms, outer_done, l);
	if (rc != 0) {
		attempt_failed(l, juki_strerror(rc), 1);
	}
}

static void
probe_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct link *l = arg;

	(void)peer;
	(void)f;
	(void)why;
	l->probing = 0;
	if (bev == NULL) {
		if (l->state == LINK_UP && l->gw > 0) {
			timer_in(l, l->ob->conf.failback_ms);
		}
		return;
	}
	bufferevent_free(bev);
	if (l->state != LINK_UP || l->gw == 0) {
		return;
	}
	log_info("outbound: primary gateway %s answers again; %s over %s moves back",
		 l->ob->gateways[0], l->dest.urn, l->service);
	l->failback_due = 1;
	if (l->nin == 0) {
		link_down(l, "moving back to the primary gateway");
	}
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;
	struct juki_outbound *ob = l->ob;

	(void)fd;
	(void)what;
	switch (l->state) {
	case LINK_BACKOFF:
		link_connect(l);
		break;
	case LINK_UP:
		if (l->gw > 0 && !l->probing) {
			l->probing = 1;
			if (juki_net_connect_tls(ob->steps, ob->tls, ob->gateways[0], NULL,
						 ob->conf.connect_timeout_ms, probe_done, l) != 0) {
				l->probing = 0;
				timer_in(l, ob->conf.failback_ms);
			}
		}
		break;
	default:
		break;
	}
}

static void
pump(struct link *l)
{
	struct juki_outbound *ob = l->ob;
	size_t window = ob->conf.window ? ob->conf.window : 1;

	/*
	 * Messages in flight are bounded in number (window) and, so that big
	 * batches do not pile up in memory, in bytes not yet written: a few
	 * frames' worth.  The rest follows when the channel has drained.
	 */
	while (l->state == LINK_UP && l->nin < window && !l->failback_due &&
	       juki_chan_pending(l->chan) < 2 * ob->conf.frame_max) {
		struct juki_outbox_entry *e = NULL;
		size_t n = 0, want = 1;

		if (juki_outbox_next(ob->store, l->dest.urn, l->service, l->last_sent_seq, want, &e,
				     &n) != 0) {
			log_error("outbound: reading the outbox: %s", juki_store_errmsg(ob->store));
			return;
		}
		for (size_t i = 0; i < n; i++) {
			struct inflight *f = &l->inflight[(l->head + l->nin) % window];

			if (juki_chan_send_raw(l->chan, e[i].payload, e[i].len) != 0) {
				/* Too big for the channel: it can never be delivered as is. */
				juki_outbox_reject(ob->store, e[i].seq, "too-large",
						   "message exceeds the frame limit",
						   juki_clock_now_ms(ob->clock));
				l->last_sent_seq = e[i].seq;
				continue;
			}
			f->seq = e[i].seq;
			snprintf(f->msg_id, sizeof(f->msg_id), "%s", e[i].msg_id);
			snprintf(f->type, sizeof(f->type), "%s", e[i].type);
			l->nin++;
			l->last_sent_seq = e[i].seq;
			ob->sent++;
		}
		juki_outbox_entries_free(e, n);
		if (n < want) {
			break;
		}
	}
}

/*
 * Apply one ack to the oldest message in flight; returns 0, or fills why
 * (len bytes) with the reason the link must drop (docs/protocol.md §7: what
 * an ack must carry).
 */
static int
apply_ack(struct link *l, const json_t *doc, char *why, size_t len)
{
	struct juki_outbound *ob = l->ob;
	size_t window = ob->conf.window ? ob->conf.window : 1;
	const char *self = juki_tls_self(ob->tls)->urn;
	struct inflight *f;
	struct juki_msg msg;
	struct juki_ack ack;
	const char *reason;
	char detail[JUKI_DETAIL_MAX];
	int rc = JUKI_EPROTO, kept = 0;

	memset(&msg, 0, sizeof(msg));
	if (juki_msg_from_json(doc, &msg, &reason, detail, sizeof(detail)) != 0) {
		snprintf(why, len, "malformed ack: %.200s", detail);
		goto out;
	}
	if (strcmp(msg.type, JUKI_MSG_ACK) != 0) {
		snprintf(why, len, "a message of type %s where an ack was due", msg.type);
		goto out;
	}
	if (juki_ack_parse(&msg, &ack) != 0) {
		snprintf(why, len, "malformed ack: body.status, body.reason or corr");
		goto out;
	}
	/* Only an ack the destination addressed to us, for what we sent, is ours. */
	if (strcmp(msg.from, l->dest.urn) != 0) {
		snprintf(why, len, "ack from %s, not the destination", msg.from);
		goto out;
	}
	if (strcmp(msg.to, self) != 0) {
		snprintf(why, len, "ack to %s, not this node", msg.to);
		goto out;
	}
	if (l->nin == 0) {
		snprintf(why, len, "ack for %s with nothing in flight",
			 ack.corr[0] ? ack.corr : "no message");
		goto out;
	}
	f = &l->inflight[l->head];
	if (strcmp(ack.corr, f->msg_id) != 0) {
		snprintf(why, len, "ack for %s, not the oldest message in flight (%s)",
			 ack.corr[0] ? ack.corr : "no message", f->msg_id);
		goto out;
	}
	if (ack.status == JUKI_ACK_REJECTED && strcmp(ack.reason, JUKI_R_INTERNAL) == 0) {
		snprintf(why, len, "receiver failed; delivering again later");
		rc = JUKI_EAGAIN;
		goto out;
	}
	/* The outcome and the daemon's record of it stand or fall together. */
	if ((rc = juki_store_exec(ob->store, "SAVEPOINT ack")) != 0) {
		snprintf(why, len, "cannot record an acknowledgement");
		goto out;
	}
	if (ack.status == JUKI_ACK_REJECTED) {
		rc = juki_outbox_reject(ob->store, f->seq, ack.reason, ack.detail,
					juki_clock_now_ms(ob->clock));
	} else {
		rc = juki_outbox_ack(ob->store, f->seq);
	}
	if (rc == 0 && ob->on_ack != NULL) {
		struct juki_outbox_entry entry;

		memset(&entry, 0, sizeof(entry));
		entry.seq = f->seq;
		snprintf(entry.dest, sizeof(entry.dest), "%s", l->dest.urn);
		snprintf(entry.service, sizeof(entry.service), "%s", l->service);
		snprintf(entry.msg_id, sizeof(entry.msg_id), "%s", f->msg_id);
		snprintf(entry.type, sizeof(entry.type), "%s", f->type);
		rc = ob->on_ack(ob->ctx, &entry, &ack);
		kept = rc != 0;
	}
	if (rc == 0) {
		rc = juki_store_exec(ob->store, "RELEASE ack");
	}
	if (rc != 0) {
		/* The entry stays queued, as if this ack had not come; acks before it stand. */
		juki_store_exec(ob->store, "ROLLBACK TO ack; RELEASE ack");
		if (kept && rc == JUKI_EAGAIN) {
			/* The daemon's own choice (the link server's feed): said as such. */
			snprintf(why, len, "%s %s kept queued by this node after the ack (%s%s%s)",
				 f->type, f->msg_id, juki_ack_status_name(ack.status),
				 ack.reason[0] ? ": " : "", ack.reason);
		} else {
			snprintf(why, len, "cannot record an acknowledgement");
		}
		goto out;
	}
	if (ack.status == JUKI_ACK_REJECTED) {
		log_notice("outbound: %s %s to %s rejected: %s (%s)", f->type, f->msg_id,
			   l->dest.urn, ack.reason, ack.detail);
		ob->rejected++;
	} else {
		ob->acked++;
	}
	l->head = (l->head + 1) % window;
	l->nin--;
out:
	juki_msg_clear(&msg);
	return rc;
}

static void
link_readable(struct juki_chan *chan, void *arg)
{
	struct link *l = arg;
	struct juki_store *store = l->ob->store;
	char why[256] = "";
	json_t *doc;
	int rc = 0, got;

	(void)chan;
	if (juki_store_begin(store) != 0) {
		link_down(l, "cannot open a transaction");
		return;
	}
	while ((got = juki_chan_recv(l->chan, &doc)) == 1) {
		rc = apply_ack(l, doc, why, sizeof(why));
		json_decref(doc);
		if (rc != 0) {
			break;
		}
	}
	if (got < 0 && rc == 0) {
		rc = got;
		snprintf(why, sizeof(why), "malformed frame from the receiver: %s",
			 juki_strerror(got));
	}
	if (rc == 0) {
		rc = juki_store_commit(store);
		snprintf(why, sizeof(why), "cannot commit acknowledgements");
	} else if (juki_store_commit(store) != 0) {
		/* Acks applied before the bad one stand; if even that fails, they come again. */
		juki_store_rollback(store);
	}
	if (rc != 0) {
		if (rc != JUKI_EAGAIN) {
			juki_alert(l->ob->alerts, "protocol-error", l->dest.urn, gateway_of(l),
				   "%s", why);
		}
		link_down(l, why);
		return;
	}
	if (l->failback_due && l->nin == 0) {
		link_down(l, "moving back to the primary gateway");
		return;
	}
	pump(l);
}

static void
link_drained(struct juki_chan *chan, void *arg)
{
	(void)chan;
	pump(arg);
}

static void
link_closed(struct juki_chan *chan, int rc, const char *why, void *arg)
{
	struct link *l = arg;
	char text[256];

	(void)chan;
	(void)rc;
	/*
	 * With messages unanswered, say so: a receiver that refuses our inner
	 * certificate, or a frame too large for it, closes without a word
	 * (docs/protocol.md §4, §5), and this is all the sender sees of it.
	 */
	if (l->nin > 0) {
		snprintf(text, sizeof(text), "%s, %zu message%s unacknowledged", why, l->nin,
			 l->nin == 1 ? "" : "s");
		why = text;
	}
	log_notice("outbound: link to %s over %s closed: %s", l->dest.urn, l->service, why);
	link_down(l, why);
}

static struct link *
link_get(struct juki_outbound *ob, const char *dest, const char *service)
{
	struct link *l;
	size_t window = ob->conf.window ? ob->conf.window : 1;

	for (l = ob->links; l != NULL; l = l->next) {
		if (strcmp(l->dest.urn, dest) == 0 && strcmp(l->service, service) == 0) {
			return l;
		}
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return NULL;
	}
	if (juki_ident_parse(dest, &l->dest) != 0 || juki_service_parse(service) == JUKI_SVC_NONE) {
		log_error("outbound: queued entries for an invalid destination %s/%s", dest,
			  service);
		free(l);
		return NULL;
	}
	l->inflight = calloc(window, sizeof(*l->inflight));
	l->timer = evtimer_new(ob->base, timer_fired, l);
	if (l->inflight == NULL || l->timer == NULL) {
		free(l->inflight);
		if (l->timer != NULL) {
			event_free(l->timer);
		}
		free(l);
		return NULL;
	}
	l->ob = ob;
	snprintf(l->service, sizeof(l->service), "%s", service);
	l->next = ob->links;
	ob->links = l;
	return l;
}

void
juki_outbound_kick(struct juki_outbound *ob)
{
	struct juki_outbox_queue *q = NULL;
	size_t n = 0;

	if (juki_outbox_dests(ob->store, &q, &n) != 0) {
		log_error("outbound: reading the outbox: %s", juki_store_errmsg(ob->store));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct link *l = link_get(ob, q[i].dest, q[i].service);

		if (l == NULL) {
			continue;
		}
		if (l->state == LINK_IDLE) {
			l->gw = 0;
			link_connect(l);
		} else if (l->state == LINK_UP) {
			pump(l);
		}
	}
	free(q);
}

void
juki_outbound_restart(struct juki_outbound *ob, const char *dest, const char *service)
{
	for (struct link *l = ob->links; l != NULL; l = l->next) {
		if (strcmp(l->dest.urn, dest) == 0 && strcmp(l->service, service) == 0 &&
		    l->state == LINK_UP) {
			log_info("outbound: %s over %s starts over: its queue was rewritten", dest,
				 service);
			link_down(l, "queue rewritten by the sender");
		}
	}
}

static int
copy_conf(struct juki_outbound *ob, const struct juki_outbound_conf *conf)
{
	char **gws = calloc(conf->ngateways ? conf->ngateways : 1, sizeof(*gws));

	if (gws == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < conf->ngateways; i++) {
		gws[i] = strdup(conf->gateways[i]);
		if (gws[i] == NULL) {
			while (i-- > 0) {
				free(gws[i]);
			}
			free(gws);
			return JUKI_ENOMEM;
		}
	}
	if (ob->gateways != NULL) {
		for (size_t i = 0; i < ob->conf.ngateways; i++) {
			free(ob->gateways[i]);
		}
		free(ob->gateways);
	}
	ob->gateways = gws;
	ob->conf = *conf;
	ob->conf.gateways = ob->gateways;
	return 0;
}

int
juki_outbound_new(struct event_base *base, struct juki_store *store, struct juki_tls *tls,
		  const struct juki_outbound_conf *conf, const struct juki_clock *clock,
		  struct juki_alerts *alerts, juki_outbound_ack_cb on_ack, void *ctx,
		  struct juki_outbound **out)
{
	struct juki_outbound *ob;

	*out = NULL;
	ob = calloc(1, sizeof(*ob));
	if (ob == NULL) {
		return JUKI_ENOMEM;
	}
	ob->base = base;
	ob->store = store;
	ob->tls = tls;
	ob->clock = clock;
	ob->alerts = alerts;
	ob->on_ack = on_ack;
	ob->ctx = ctx;
	ob->steps = juki_net_group_new(base);
	if (ob->steps == NULL || copy_conf(ob, conf) != 0) {
		juki_net_group_free(ob->steps);
		free(ob);
		return JUKI_ENOMEM;
	}
	*out = ob;
	return 0;
}

int
juki_outbound_reconfigure(struct juki_outbound *ob, struct juki_tls *tls,
			  const struct juki_outbound_conf *conf)
{
	size_t old_window = ob->conf.window ? ob->conf.window : 1;
	size_t new_window = conf->window ? conf->window : 1;
	int rc;

	/* The in-flight rings are sized by the window: a new size waits for a restart. */
	if (new_window != old_window) {
		log_warnx("outbound: delivery.window changes on restart only; keeping %zu",
			  old_window);
	}
	rc = copy_conf(ob, conf);
	if (rc != 0) {
		return rc;
	}
	ob->conf.window = old_window;
	ob->tls = tls;
	for (struct link *l = ob->links; l != NULL; l = l->next) {
		enum juki_tls_failure failure;
		char why[160], text[200];

		if (l->gw >= ob->conf.ngateways) {
			l->gw = 0;
		}
		/* A destination whose certificate no longer verifies (revoked) is not kept. */
		if (l->chan != NULL && juki_tls_peer_still_valid(tls, juki_chan_ssl(l->chan),
								 &failure, why, sizeof(why)) != 0) {
			juki_alert(ob->alerts, juki_alert_code_tls(failure), l->dest.urn, NULL,
				   "open link over %s ended: %s", l->service, why);
			snprintf(text, sizeof(text), "the destination's certificate: %s", why);
			link_down(l, text);
		}
	}
	return 0;
}

json_t *
juki_outbound_status(struct juki_outbound *ob)
{
	json_t *st, *links;
	int64_t count = 0, oldest = 0, rejected = 0;

	st = json_object();
	links = json_array();
	if (st == NULL || links == NULL) {
		json_decref(st);
		json_decref(links);
		return NULL;
	}
	juki_outbox_stats(ob->store, &count, &oldest);
	juki_outbox_rejected_count(ob->store, &rejected);
	json_object_set_new(st, "queued", json_integer(count));
	json_object_set_new(st, "oldest_age_ms",
			    json_integer(oldest ? juki_clock_now_ms(ob->clock) - oldest : 0));
	json_object_set_new(st, "rejected", json_integer(rejected));
	json_object_set_new(st, "sent", json_integer((json_int_t)ob->sent));
	json_object_set_new(st, "acked", json_integer((json_int_t)ob->acked));
	for (struct link *l = ob->links; l != NULL; l = l->next) {
		json_array_append_new(links, json_pack("{s:s,s:s,s:s,s:s?,s:I,s:I,s:s?}", "dest",
						       l->dest.urn, "service", l->service, "state",
						       state_names[l->state], "gateway",
						       l->state == LINK_IDLE ? NULL : gateway_of(l),
						       "in_flight", (json_int_t)l->nin, "failures",
						       (json_int_t)l->failures, "last_error",
						       l->last_error[0] ? l->last_error : NULL));
	}
	json_object_set_new(st, "links", links);
	return st;
}

void
juki_outbound_free(struct juki_outbound *ob)
{
	struct link *l, *next;

	if (ob == NULL) {
		return;
	}
	juki_net_group_free(ob->steps);
	for (l = ob->links; l != NULL; l = next) {
		next = l->next;
		juki_chan_free(l->chan);
		event_free(l->timer);
		free(l->inflight);
		free(l);
	}
	for (size_t i = 0; i < ob->conf.ngateways; i++) {
		free(ob->gateways[i]);
	}
	free(ob->gateways);
	free(ob);
}
