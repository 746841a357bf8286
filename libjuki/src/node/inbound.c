#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "juki/base/error.h"
#include "juki/node/inbound.h"
#include "juki/node/log.h"
#include "juki/store/outbox.h"
#include "juki/wire/frame.h"
#include "juki/wire/net.h"

/* Messages applied per transaction: enough for group commit, small enough to stay fair. */
#define BATCH_MAX   512
#define MAX_REASONS 32
/* Time a refused gateway connection gets to take its DENY line. */
#define DENY_FLUSH_MS 2000

struct reason_count {
	char reason[JUKI_REASON_MAX];
	uint64_t n;
};

/* Messages of one type (one per handler's type, the last for the rest). */
struct type_count {
	const char *type;
	uint64_t received, accepted, rejected;
};

struct conn;

struct juki_inbound {
	struct juki_inbound_conf conf;
	struct juki_tls *tls;
	const struct juki_policy *policy;
	struct juki_listener **listeners;
	size_t nlisteners;
	struct juki_net_group *steps; /* connections being set up */
	struct conn *conns;           /* every connection, being set up or up */
	size_t nchans;
	uint64_t received, accepted, duplicate;
	uint64_t rejected_total, commits; /* refusals; turns committed with messages */
	struct type_count *types;         /* ntypes, the last "other" */
	size_t ntypes;
	uint64_t slow_callers; /* connections that ran out of their pre-trust time */
	struct reason_count rejected[MAX_REASONS];
	size_t nrejected;
};

struct conn {
	struct juki_inbound *in;
	char addr[64];
	int64_t deadline; /* of everything before the channel is up (net.h) */
	struct juki_ident src;
	enum juki_service svc;
	int body_call;            /* an agency or exec body on provide: staff cards allowed */
	char staff[JUKI_URN_MAX]; /* the staff card of the inner session, or "" */
	struct juki_chan *chan;
	struct conn *prev, *next;
};

static void
count_reject(struct juki_inbound *in, const char *reason)
{
	in->rejected_total++;
	for (size_t i = 0; i < in->nrejected; i++) {
		if (strcmp(in->rejected[i].reason, reason) == 0) {
			in->rejected[i].n++;
			return;
		}
	}
	if (in->nrejected < MAX_REASONS) {
		snprintf(in->rejected[in->nrejected].reason, JUKI_REASON_MAX, "%s", reason);
		in->rejected[in->nrejected++].n = 1;
	}
}

static const struct juki_ident *
self_of(const struct juki_inbound *in)
{
	return juki_tls_self(in->tls);
}

static void
conn_unlink(struct conn *c)
{
	struct juki_inbound *in = c->in;

	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		in->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	if (c->chan != NULL) {
		in->nchans--;
	}
}

static void
conn_free(struct conn *c)
{
	conn_unlink(c);
	juki_chan_free(c->chan);
	free(c);
}

static void chan_readable(struct juki_chan *chan, void *arg);
static void chan_closed(struct juki_chan *chan, int rc, const char *why, void *arg);

/* The pre-trust time ran out (a silent or trickling peer): alert, count, close. */
static void
slow_caller(struct conn *c, const char *step)
{
	struct juki_inbound *in = c->in;

	in->slow_callers++;
	juki_alert(in->conf.alerts, "slow-caller", c->src.urn[0] ? c->src.urn : NULL, c->addr,
		   "node port: %s not done in time (%lld ms from accept at most)", step,
		   (long long)(in->conf.handshake_timeout_ms + in->conf.line_timeout_ms));
	conn_free(c);
}

static void
inner_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct conn *c = arg;
	struct juki_inbound *in = c->in;
	static const struct juki_chan_cbs cbs = {
	    .readable = chan_readable,
	    .closed = chan_closed,
	};

	if (bev == NULL) {
		if (f == JUKI_TLSF_TIMEOUT) {
			slow_caller(c, "inner handshake");
			return;
		}
		juki_alert(in->conf.alerts, juki_alert_code_tls(f), c->src.urn, c->addr,
			   "inner handshake from %s over %s: %s", c->src.urn,
			   juki_service_name(c->svc), why);
		conn_free(c);
		return;
	}
	if (c->body_call && strcmp(peer->urn, c->src.urn) != 0) {
		/* A body's staff member: an operator identity of that very body, nothing else. */
		if (peer->kind != JUKI_KIND_OP || peer->node_kind != c->src.kind ||
		    strcmp(peer->id, c->src.id) != 0) {
			juki_alert(in->conf.alerts, juki_alert_code_tls(JUKI_TLSF_WRONG_PEER),
				   c->src.urn, c->addr,
				   "inner handshake from %s over %s: expected %s or a staff card "
				   "of it, peer is %s",
				   c->src.urn, juki_service_name(c->svc), c->src.urn, peer->urn);
			bufferevent_free(bev);
			conn_free(c);
			return;
		}
		snprintf(c->staff, sizeof(c->staff), "%s", peer->urn);
	}
	c->chan = juki_chan_new(bev, &c->src, juki_service_name(c->svc), in->conf.frame_max,
				in->conf.idle_timeout_ms, &cbs, c);
	if (c->chan == NULL) {
		log_warnx("inbound: out of memory for a channel from %s", peer->urn);
		conn_free(c);
		return;
	}
	in->nchans++;
	log_info("inbound: channel up from %s%s%s over %s via %s", c->src.urn,
		 c->staff[0] ? " staff " : "", c->staff, juki_service_name(c->svc), c->addr);
}

static void
from_line(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct conn *c = arg;
	struct juki_inbound *in = c->in;
	const char *bad;
	char why[200];

	if (rc == JUKI_ETIMEDOUT) {
		bufferevent_free(bev);
		slow_caller(c, "FROM line");
		return;
	}
	if (rc != 0) {
		juki_alert(in->conf.alerts, "malformed-request", NULL, c->addr,
			   "FROM line from gateway: %s", juki_strerror(rc));
		if (rc == JUKI_ECLOSED || rc == JUKI_ETIMEDOUT) {
			bufferevent_free(bev);
		} else {
			juki_net_deny(in->steps, bev, "malformed", "expected FROM <urn> <service>",
				      DENY_FLUSH_MS);
		}
		conn_free(c);
		return;
	}
	if (juki_net_parse_request(line, "FROM", &c->src, &c->svc, &bad) != 0) {
		juki_alert(in->conf.alerts, "malformed-request", NULL, c->addr,
			   "gateway sent a malformed FROM line: %s", bad);
		juki_net_deny(in->steps, bev, "malformed", bad, DENY_FLUSH_MS);
		conn_free(c);
		return;
	}
	if (juki_policy_check(in->policy, &c->src, self_of(in), c->svc, why, sizeof(why)) != 0) {
		juki_alert(in->conf.alerts, "policy-denied", c->src.urn, c->addr, "%s", why);
		juki_net_deny(in->steps, bev, "policy", why, DENY_FLUSH_MS);
		conn_free(c);
		return;
	}
	/*
	 * On provide an agency or executive body speaks through a staff member:
	 * the inner certificate may be a staff card of the body (checked when
	 * the handshake is done), which reaches the handlers as msg->staff.
	 */
	c->body_call = c->svc == JUKI_SVC_PROVIDE &&
		       (c->src.kind == JUKI_KIND_AGENCY || c->src.kind == JUKI_KIND_EXEC);
	if (juki_net_write_line(bev, "OK") != 0 ||
	    juki_net_wrap_tls(
		in->steps, in->tls, bev, JUKI_TLS_SERVER, c->body_call ? NULL : &c->src,
		juki_net_left(c->deadline, in->conf.handshake_timeout_ms), inner_done, c) != 0) {
		log_warnx("inbound: cannot start the inner session from %s", c->src.urn);
		conn_free(c);
	}
}

static void
outer_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct conn *c = arg;
	struct juki_inbound *in = c->in;

	if (bev == NULL) {
		if (f == JUKI_TLSF_TIMEOUT) {
			slow_caller(c, "outer handshake");
			return;
		}
		juki_alert(in->conf.alerts, juki_alert_code_tls(f), NULL, c->addr, "node port: %s",
			   why);
		conn_free(c);
		return;
	}
	if (peer->kind != JUKI_KIND_FWGATE) {
		juki_alert(in->conf.alerts, "not-a-gateway", peer->urn, c->addr,
			   "node port accepts gateways only");
		juki_net_deny(in->steps, bev, "forbidden", "node port accepts gateways only",
			      DENY_FLUSH_MS);
		conn_free(c);
		return;
	}
	juki_net_read_line(in->steps, bev, JUKI_LINE_MAX,
			   juki_net_left(c->deadline, in->conf.line_timeout_ms), from_line, c);
}

static void
accept_cb(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
	struct juki_inbound *in = arg;
	struct conn *c;

	(void)len;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->in = in;
	c->next = in->conns;
	if (in->conns != NULL) {
		in->conns->prev = c;
	}
	in->conns = c;
	juki_net_addr_text(sa, c->addr, sizeof(c->addr));
	/*
	 * One deadline for everything before the channel is up, taken now: the
	 * outer handshake, the FROM line and the inner handshake together get
	 * handshake_timeout + line_timeout, each step no more than its own limit.
	 */
	c->deadline = juki_net_deadline(in->conf.handshake_timeout_ms + in->conf.line_timeout_ms);
	if (juki_net_accept_tls(in->steps, in->tls, fd,
				juki_net_left(c->deadline, in->conf.handshake_timeout_ms),
				outer_done, c) != 0) {
		conn_free(c);
	}
}

/*
 * The handler of type carried by svc; else the first of type (refused as not carried by svc).
 * A type may have one handler per service (report.answer: provide and ninsho).
 */
static const struct juki_handler *
find_handler(const struct juki_inbound *in, const char *type, enum juki_service svc)
{
	const struct juki_handler *first = NULL;

	for (const struct juki_handler *h = in->conf.handlers; h->type != NULL; h++) {
		if (strcmp(h->type, type) == 0) {
			if (h->service == svc) {
				return h;
			}
			if (first == NULL) {
				first = h;
			}
		}
	}
	return first;
}

static int
queue_ack(struct conn *c, json_t *acks, const char *corr, enum juki_ack_status status,
	  const char *reason, const char *detail)
{
	json_t *ack = juki_ack_new(corr, self_of(c->in)->urn, c->src.urn, status, reason, detail,
				   c->in->conf.clock);

	if (ack == NULL || json_array_append_new(acks, ack) != 0) {
		return JUKI_ENOMEM;
	}
	return 0;
}

/* The counters of one message by its type: only the types of the handlers, the rest "other". */
static void
count_type(struct juki_inbound *in, const char *type, int accepted, int rejected)
{
	struct type_count *t;
	size_t i;

	if (in->types == NULL) {
		return;
	}
	for (i = 0; i + 1 < in->ntypes; i++) {
		if (strcmp(in->types[i].type, type) == 0) {
			break;
		}
	}
	t = &in->types[i];
	t->received++;
	t->accepted += accepted != 0;
	t->rejected += rejected != 0;
}

static int
refuse(struct conn *c, json_t *acks, const struct juki_msg *msg, const char *reason,
       const char *detail)
{
	count_reject(c->in, reason);
	log_notice("inbound: rejected %s %s from %s: %s (%s)", msg->type[0] ? msg->type : "-",
		   msg->id[0] ? msg->id : "-", c->src.urn, reason, detail);
	return queue_ack(c, acks, msg->id, JUKI_ACK_REJECTED, reason, detail);
}

#define RAW_MARK "\001juki-result\001"

/*
 * The last ack of acks given result (compact JSON text of an object) as its
 * body's "result": the ack is written as text around a mark and the result
 * put in its place, so the result is never a tree.  The ack becomes a JSON
 * string holding the frame's text (send_acks() sends it as is).
 */
static int
splice_result(json_t *acks, const char *result, size_t rlen)
{
	static const char mark[] = "\""
				   "\\u0001juki-result\\u0001"
				   "\"";
	size_t i = json_array_size(acks) - 1;
	json_t *last = json_array_get(acks, i);
	char *text, *at, *raw;
	size_t len, head;
	json_t *s;

	if (json_object_set_new(json_object_get(last, "body"), "result", json_string(RAW_MARK)) !=
		0 ||
	    (text = json_dumps(last, JSON_COMPACT)) == NULL) {
		return JUKI_ENOMEM;
	}
	if ((at = strstr(text, mark)) == NULL) {
		free(text);
		return JUKI_EINVAL;
	}
	len = strlen(text);
	head = (size_t)(at - text);
	if ((raw = malloc(len - (sizeof(mark) - 1) + rlen + 1)) == NULL) {
		free(text);
		return JUKI_ENOMEM;
	}
	memcpy(raw, text, head);
	memcpy(raw + head, result, rlen);
	memcpy(raw + head + rlen, at + sizeof(mark) - 1, len - head - (sizeof(mark) - 1));
	len = len - (sizeof(mark) - 1) + rlen;
	free(text);
	s = json_stringn_nocheck(raw, len);
	free(raw);
	return s != NULL && json_array_set_new(acks, i, s) == 0 ? 0 : JUKI_ENOMEM;
}

/* Whether doc is a bulk message (struct juki_handler): handled alone. */
static int
is_bulk(const struct juki_inbound *in, const struct conn *c, const json_t *doc)
{
	const char *type = json_string_value(json_object_get(doc, "type"));
	const struct juki_handler *h = type != NULL ? find_handler(in, type, c->svc) : NULL;

	return h != NULL && h->bulk;
}

/*
 * Returns 0 (an ack was queued) or a negative code for an internal failure.
 * alone: the message is the only one in the store's transaction, so a
 * refusal rolls the transaction back instead of a savepoint.
 */
static int
handle_one(struct conn *c, const json_t *doc, const char *text, size_t len, size_t body_off,
	   size_t body_len, json_t *acks, int alone)
{
	struct juki_inbound *in = c->in;
	struct juki_store *store = in->conf.store;
	const struct juki_handler *h;
	struct juki_reject rej;
	struct juki_msg msg;
	const char *reason = NULL;
	char detail[JUKI_DETAIL_MAX];
	unsigned char digest[JUKI_INBOX_DIGEST_LEN];
	int rc, status, same = 1, kept = 0;

	uint64_t accepted0 = in->accepted, rejected0 = in->rejected_total;

	memset(&msg, 0, sizeof(msg));
	memset(&rej, 0, sizeof(rej));
	in->received++;
	if (juki_msg_from_json(doc, &msg, &reason, detail, sizeof(detail)) != 0) {
		juki_alert(in->conf.alerts, "malformed-message", c->src.urn, c->addr,
			   "message header refused: %s (%s)", reason, detail);
		rc = refuse(c, acks, &msg, reason, detail);
		goto out;
	}
	if (strcmp(msg.from, c->src.urn) != 0) {
		juki_alert(in->conf.alerts, "sender-mismatch", c->src.urn, c->addr,
			   "header names %s as sender", msg.from);
		snprintf(detail, sizeof(detail), "from: not the peer of the inner session (%s)",
			 c->src.urn);
		rc = refuse(c, acks, &msg, JUKI_R_SENDER, detail);
		goto out;
	}
	if (strcmp(msg.to, self_of(in)->urn) != 0) {
		juki_alert(in->conf.alerts, "recipient-mismatch", c->src.urn, c->addr,
			   "header names %s as recipient", msg.to);
		snprintf(detail, sizeof(detail), "to: not this node (%s)", self_of(in)->urn);
		rc = refuse(c, acks, &msg, JUKI_R_RECIPIENT, detail);
		goto out;
	}
	snprintf(msg.staff, sizeof(msg.staff), "%s", c->staff);
	if (body_len > 0) {
		/* Split by recv_frame() for a handler that reads the body's text itself. */
		msg.body_text = text + body_off;
		msg.body_len = body_len;
	}
	h = find_handler(in, msg.type, c->svc);
	if (h == NULL) {
		rc = refuse(c, acks, &msg, JUKI_R_UNKNOWN_TYPE, "type: no such message type here");
		goto out;
	}
	if (h->service != c->svc) {
		/* The receiver's own policy check, as for the FROM line: a refusal to report. */
		juki_alert(in->conf.alerts, "policy-denied", c->src.urn, c->addr,
			   "%s is not carried by %s", msg.type, juki_service_name(c->svc));
		snprintf(detail, sizeof(detail), "type: not carried by service %s",
			 juki_service_name(c->svc));
		rc = refuse(c, acks, &msg, JUKI_R_POLICY, detail);
		goto out;
	}
	/* The frame's bytes: an honest redelivery resends the sender's outbox text as stored. */
	if (!h->query && (rc = juki_inbox_digest(text, len, digest)) != 0) {
		goto out;
	}
	rc = h->query ? JUKI_ENOTFOUND : juki_inbox_check(store, msg.id, digest, &status, &same);
	if (rc == 0 && !same) {
		/* The id again with other bytes: a replay, kept within this turn's transaction. */
		rc = juki_inbox_keep_mismatch(store, &msg, digest, text, len,
					      juki_clock_now_ms(in->conf.clock), &kept);
		if (rc != 0) {
			goto out;
		}
		juki_alert(in->conf.alerts, "replay-mismatch", c->src.urn, c->addr,
			   "message %s from %s (%s) reuses a received id with other bytes; %s",
			   msg.id, c->src.urn, msg.type,
			   kept ? "kept in inbox_mismatch"
				: "not kept (kept before, or table full)");
		rc = refuse(c, acks, &msg, JUKI_R_REPLAY,
			    "message id received before with other content");
		goto out;
	}
	if (rc == 0) {
		in->duplicate++;
		rc = queue_ack(c, acks, msg.id, JUKI_ACK_DUPLICATE, NULL, NULL);
		goto out;
	}
	if (rc != JUKI_ENOTFOUND) {
		goto out;
	}
	if (!alone && (rc = juki_store_exec(store, "SAVEPOINT msg")) != 0) {
		goto out;
	}
	rc = h->fn(in->conf.ctx, &msg, &rej);
	if (rc == JUKI_REJECT) {
		rc = alone ? juki_store_rollback(store)
			   : juki_store_exec(store, "ROLLBACK TO msg; RELEASE msg");
		if (rc == 0 && h->refused != NULL) {
			if (alone) {
				rc = juki_store_begin(store);
			}
			if (rc == 0) {
				rc = h->refused(in->conf.ctx, &msg, &rej);
			}
		}
		if (rc != 0) {
			goto out;
		}
		rc = refuse(c, acks, &msg, rej.reason[0] ? rej.reason : JUKI_R_BAD_FIELD,
			    rej.detail);
		goto out;
	}
	if (rc != 0) {
		log_error("inbound: %s %s from %s failed: %s%s", msg.type, msg.id, c->src.urn,
			  rc == JUKI_ESTORE ? "store: " : "",
			  rc == JUKI_ESTORE ? juki_store_errmsg(store) : juki_strerror(rc));
		goto out;
	}
	rc = h->query ? 0
		      : juki_inbox_record_digest(store, &msg, JUKI_ACK_ACCEPTED, NULL, digest,
						 juki_clock_now_ms(in->conf.clock));
	if (rc == 0 && !alone) {
		rc = juki_store_exec(store, "RELEASE msg");
	}
	if (rc == 0) {
		in->accepted++;
		rc = queue_ack(c, acks, msg.id, JUKI_ACK_ACCEPTED, NULL, NULL);
	}
	if (rc == 0 && rej.result != NULL) {
		json_t *last = json_array_get(acks, json_array_size(acks) - 1);

		json_object_set(json_object_get(last, "body"), "result", rej.result);
	} else if (rc == 0 && rej.result_text != NULL) {
		rc = splice_result(acks, rej.result_text, rej.result_len);
	}
out:
	count_type(in, msg.type, in->accepted > accepted0, in->rejected_total > rejected0);
	json_decref(rej.result);
	free(rej.result_text);
	juki_msg_clear(&msg);
	return rc;
}

static void
send_acks(struct conn *c, json_t *acks)
{
	size_t i;
	json_t *ack;

	json_array_foreach(acks, i, ack)
	{
		if ((json_is_string(ack) ? juki_chan_send_raw(c->chan, json_string_value(ack),
							      json_string_length(ack))
					 : juki_chan_send(c->chan, ack)) != 0) {
			log_warnx("inbound: cannot queue an ack to %s", c->src.urn);
		}
	}
}

/* Whether the handler of type on c's service reads a body's text itself. */
static int
wants_text(const char *type, void *arg)
{
	const struct conn *c = arg;
	const struct juki_handler *h = find_handler(c->in, type, c->svc);

	return h != NULL && h->bulk == JUKI_BULK_TEXT && h->service == c->svc;
}

/*
 * The next frame as juki_chan_recv_text() gives it, but for a handler that
 * reads the body's text (body_text): then *doc is the header with an empty
 * body and *body_len > 0 bytes of text at *body_off are the body.
 */
static int
recv_frame(struct conn *c, json_t **doc, char **text, size_t *len, size_t *body_off,
	   size_t *body_len)
{
	int got = juki_chan_recv_raw(c->chan, text, len);

	*doc = NULL;
	*body_off = *body_len = 0;
	if (got != 1) {
		return got;
	}
	got = juki_frame_split(*text, *len, wants_text, c, doc, body_off, body_len);
	if (got == 0) {
		got = juki_frame_parse(*text, *len, doc);
	}
	if (got != 1) {
		free(*text);
		*text = NULL;
	}
	return got;
}

static void
chan_readable(struct juki_chan *chan, void *arg)
{
	struct conn *c = arg;
	struct juki_inbound *in = c->in;
	struct juki_store *store = in->conf.store;
	int broken = 0;

	(void)chan;
	while (!broken) {
		json_t *acks = json_array();
		size_t n = 0;
		int rc = 0, bulk = 0;

		if (acks == NULL) {
			break;
		}
		while (n < BATCH_MAX) {
			json_t *doc = NULL;
			char *text = NULL;
			size_t len = 0, body_off = 0, body_len = 0;
			int got = recv_frame(c, &doc, &text, &len, &body_off, &body_len);

			if (got == 0) {
				break;
			}
			if (got == JUKI_EJSON) {
				struct juki_msg none = {0};

				juki_alert(in->conf.alerts, "malformed-message", c->src.urn,
					   c->addr, "frame is not a JSON object");
				refuse(c, acks, &none, JUKI_R_BAD_JSON,
				       "frame: not a JSON object (strict UTF-8, no duplicate "
				       "keys, no \\u0000)");
				broken = 1;
				break;
			}
			if (got < 0) {
				juki_alert(in->conf.alerts,
					   got == JUKI_ETOOBIG ? "frame-too-large"
							       : "malformed-frame",
					   c->src.urn, c->addr, "%s", juki_strerror(got));
				broken = 1;
				break;
			}
			bulk = is_bulk(in, c, doc);
			if (bulk && n > 0) {
				/* What came before a bulk message is committed and acknowledged. */
				if (juki_store_in_txn(store) &&
				    (rc = juki_store_commit(store)) != 0) {
					json_decref(doc);
					free(text);
					break;
				}
				send_acks(c, acks);
				json_array_clear(acks);
			}
			if (!juki_store_in_txn(store) && (rc = juki_store_begin(store)) != 0) {
				json_decref(doc);
				free(text);
				break;
			}
			rc = handle_one(c, doc, text, len, body_off, body_len, acks, bulk);
			json_decref(doc);
			free(text);
			n++;
			if (rc != 0 || bulk) {
				/* A bulk message ends its turn: committed now. */
				break;
			}
		}
		if (rc == 0 && juki_store_in_txn(store)) {
			rc = juki_store_commit(store);
		}
		if (rc != 0) {
			/* Nothing of this turn happened: no acks, and the sender delivers again. */
			juki_store_rollback(store);
			if (rc == JUKI_ESTORE) {
				/* the store's own words: "database or disk is full", say */
				log_error("inbound: turn from %s rolled back: store: %s; closing",
					  c->src.urn, juki_store_errmsg(store));
			} else {
				log_error("inbound: turn from %s rolled back: %s; closing",
					  c->src.urn, juki_strerror(rc));
			}
			json_decref(acks);
			conn_free(c);
			return;
		}
		send_acks(c, acks);
		json_decref(acks);
		in->commits += n > 0;
		if (n > 0 && in->conf.committed != NULL) {
			in->conf.committed(in->conf.ctx);
		}
		if (n < BATCH_MAX && !broken && !bulk) {
			return;
		}
	}
	/* The stream can no longer be trusted: flush the acks given so far and close. */
	conn_unlink(c);
	juki_chan_close_after_flush(c->chan);
	free(c);
}

static void
chan_closed(struct juki_chan *chan, int rc, const char *why, void *arg)
{
	struct conn *c = arg;

	(void)chan;
	(void)rc;
	log_info("inbound: channel from %s closed: %s", c->src.urn, why);
	conn_free(c);
}

int
juki_inbound_new(const struct juki_inbound_conf *conf, struct juki_tls *tls,
		 const struct juki_policy *policy, char *const *listen, size_t nlisten,
		 struct juki_inbound **out, char *err, size_t errlen)
{
	struct juki_inbound *in;
	int rc;

	*out = NULL;
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		return JUKI_ENOMEM;
	}
	in->conf = *conf;
	in->tls = tls;
	in->policy = policy;
	in->listeners = calloc(nlisten ? nlisten : 1, sizeof(*in->listeners));
	in->steps = juki_net_group_new(conf->base);
	for (const struct juki_handler *h = conf->handlers; h != NULL && h->type != NULL; h++) {
		in->ntypes++;
	}
	in->types = calloc(++in->ntypes, sizeof(*in->types));
	for (size_t i = 0; in->types != NULL && i + 1 < in->ntypes; i++) {
		in->types[i].type = conf->handlers[i].type;
	}
	if (in->types != NULL) {
		in->types[in->ntypes - 1].type = "other";
	}
	if (in->listeners == NULL || in->steps == NULL || in->types == NULL) {
		juki_inbound_free(in);
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < nlisten; i++) {
		rc = juki_net_listen(conf->base, listen[i], accept_cb, in, &in->listeners[i], err,
				     errlen);
		if (rc != 0) {
			juki_inbound_free(in);
			return rc;
		}
		in->nlisteners++;
	}
	*out = in;
	return 0;
}

void
juki_inbound_set_tls(struct juki_inbound *in, struct juki_tls *tls,
		     const struct juki_policy *policy)
{
	struct conn *c, *next;
	enum juki_tls_failure failure;
	char why[160];

	in->tls = tls;
	in->policy = policy;
	/* A channel whose peer's certificate no longer verifies (revoked) is not kept. */
	for (c = in->conns; c != NULL; c = next) {
		next = c->next;
		if (c->chan == NULL || juki_tls_peer_still_valid(tls, juki_chan_ssl(c->chan),
								 &failure, why, sizeof(why)) == 0) {
			continue;
		}
		juki_alert(in->conf.alerts, juki_alert_code_tls(failure), c->src.urn, c->addr,
			   "open channel ended: %s", why);
		log_notice("inbound: channel from %s ended: its certificate: %s", c->src.urn, why);
		conn_free(c);
	}
}

const char *
juki_inbound_addr(const struct juki_inbound *in, size_t i)
{
	return i < in->nlisteners ? juki_listener_addr(in->listeners[i]) : NULL;
}

/* {"<type>": {"received", "accepted", "rejected"}} of the types received so far. */
static json_t *
types_status(const struct juki_inbound *in)
{
	json_t *types = json_object();

	for (size_t i = 0; types != NULL && i < in->ntypes; i++) {
		const struct type_count *t = &in->types[i];

		if (t->received > 0 && json_object_get(types, t->type) == NULL) {
			json_object_set_new(types, t->type,
					    json_pack("{s:I,s:I,s:I}", "received",
						      (json_int_t)t->received, "accepted",
						      (json_int_t)t->accepted, "rejected",
						      (json_int_t)t->rejected));
		}
	}
	return types;
}

json_t *
juki_inbound_status(const struct juki_inbound *in)
{
	json_t *st, *listen, *rejected;

	st = json_object();
	listen = json_array();
	rejected = json_object();
	if (st == NULL || listen == NULL || rejected == NULL) {
		json_decref(st);
		json_decref(listen);
		json_decref(rejected);
		return NULL;
	}
	for (size_t i = 0; i < in->nlisteners; i++) {
		json_array_append_new(listen, json_string(juki_listener_addr(in->listeners[i])));
	}
	for (size_t i = 0; i < in->nrejected; i++) {
		json_object_set_new(rejected, in->rejected[i].reason,
				    json_integer((json_int_t)in->rejected[i].n));
	}
	json_object_set_new(st, "listen", listen);
	json_object_set_new(st, "channels", json_integer((json_int_t)in->nchans));
	json_object_set_new(st, "received", json_integer((json_int_t)in->received));
	json_object_set_new(st, "accepted", json_integer((json_int_t)in->accepted));
	json_object_set_new(st, "duplicate", json_integer((json_int_t)in->duplicate));
	json_object_set_new(st, "slow_callers", json_integer((json_int_t)in->slow_callers));
	json_object_set_new(st, "rejected", rejected);
	json_object_set_new(st, "commits", json_integer((json_int_t)in->commits));
	json_object_set_new(st, "types", types_status(in));
	return st;
}

void
juki_inbound_free(struct juki_inbound *in)
{
	if (in == NULL) {
		return;
	}
	for (size_t i = 0; i < in->nlisteners; i++) {
		juki_listener_free(in->listeners[i]);
	}
	free(in->listeners);
	free(in->types);
	/* Cancel set-ups first: their connections hold no bufferevent of their own. */
	juki_net_group_free(in->steps);
	while (in->conns != NULL) {
		conn_free(in->conns);
	}
	free(in);
}
