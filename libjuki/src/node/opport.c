#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/node/opport.h"
#include "juki/records/operator.h"
#include "juki/store/audit.h"
#include "juki/wire/net.h"

/* A session from accept to close: handshaking while chan is NULL. */
struct session {
	struct juki_opport *port;
	struct session *prev, *next;
	struct juki_chan *chan;
	struct juki_caller caller;
	int logged_in;
	/* Armed at accept: the handshake and the login together, whatever arrives meanwhile. */
	struct event *login_due;
};

struct juki_opport {
	struct juki_opport_env env;
	struct juki_opport_conf conf;
	struct juki_net_group *group;
	struct juki_listener **listeners;
	size_t nlisteners;
	struct session *sessions;
	size_t nsessions;
};

static void
session_unlink(struct session *s)
{
	struct juki_opport *port = s->port;

	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else {
		port->sessions = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	}
	port->nsessions--;
}

static void
session_free(struct session *s)
{
	if (s->login_due != NULL) {
		event_free(s->login_due);
	}
	session_unlink(s);
	juki_chan_free(s->chan);
	free(s);
}

/* Answer what is queued, then let the channel go on its own. */
static void
session_end(struct session *s)
{
	struct juki_chan *chan = s->chan;

	s->chan = NULL;
	session_free(s);
	if (chan != NULL) {
		juki_chan_close_after_flush(chan);
	}
}

static void
send_doc(struct session *s, json_t *resp)
{
	if (resp == NULL || juki_chan_send(s->chan, resp) != 0) {
		struct juki_ctl_error err;
		json_t *fail;

		juki_ctl_fail(&err, "internal", "response too large or out of memory");
		fail = juki_ctl_failure(&err);
		if (fail != NULL) {
			juki_chan_send(s->chan, fail);
		}
		json_decref(fail);
	}
	json_decref(resp);
}

static json_t *fail(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *
fail(const char *code, const char *fmt, ...)
{
	struct juki_ctl_error err;
	va_list ap;

	snprintf(err.code, sizeof(err.code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	return juki_ctl_failure(&err);
}

static void
audit_login(struct session *s, const char *outcome, const char *extra)
{
	char detail[JUKI_AUDIT_FIELD_MAX];

	snprintf(detail, sizeof(detail), "from %s%s%s", s->caller.from, extra ? " " : "",
		 extra ? extra : "");
	juki_opcmds_audit(s->port->env.opcmds, s->caller.who[0] ? s->caller.who : "-", "login",
			  NULL, outcome, detail);
}

static void
take_operator(struct juki_caller *caller, const struct juki_operator *op)
{
	caller->roles = op->roles;
	caller->ndatasets = op->ndatasets;
	memcpy(caller->datasets, op->datasets, sizeof(caller->datasets));
}

int
juki_opport_is_ours(const struct juki_ident *self, const struct juki_ident *peer)
{
	return peer->kind == JUKI_KIND_OP && peer->node_kind == self->kind &&
	       strcmp(peer->id, self->id) == 0;
}

int
juki_opport_operator(struct juki_store *store, const struct juki_ident *peer,
		     struct juki_caller *caller)
{
	struct juki_operator op;
	int rc;

	snprintf(caller->who, sizeof(caller->who), "%s", peer->urn);
	snprintf(caller->op, sizeof(caller->op), "%s", peer->op);
	caller->all_datasets = 0;
	if ((rc = juki_operator_get(store, peer->op, &op)) != 0) {
		return rc;
	}
	if (op.locked) {
		return JUKI_ELOCKED;
	}
	take_operator(caller, &op);
	return 0;
}

/* Returns 1 when the session has ended. */
static int
login(struct session *s, const json_t *req)
{
	struct juki_opport *port = s->port;
	const struct juki_node_operator *oc = port->conf.oper;
	const json_t *args = json_object_get(req, "args");
	const char *pin = json_string_value(json_object_get(args, "pin"));
	struct juki_operator op;
	char extra[48];
	json_t *resp;
	int remaining = 0, rc;

	if (s->logged_in) {
		audit_login(s, "conflict", "logged in already");
		send_doc(s, fail("conflict", "%s is logged in already", s->caller.op));
		return 0;
	}
	if (pin == NULL) {
		audit_login(s, "usage", "no PIN");
		send_doc(s, fail("usage", "login needs args.pin, a string"));
		return 0;
	}
	rc = juki_operator_login(port->env.store, juki_clock_now_ms(port->env.clock), s->caller.op,
				 pin, (int)oc->pin_attempts, &op, &remaining);
	switch (rc) {
	case 0:
		s->logged_in = 1;
		evtimer_del(s->login_due);
		take_operator(&s->caller, &op);
		resp = json_pack("{s:s,s:s,s:o,s:o}", "operator", s->caller.who, "id", op.id,
				 "roles", juki_roles_json(op.roles), "datasets", json_array());
		for (size_t i = 0; resp != NULL && i < op.ndatasets; i++) {
			json_array_append_new(json_object_get(resp, "datasets"),
					      json_string(op.datasets[i]));
		}
		audit_login(s, "ok", NULL);
		log_info("operator port: %s logged in from %s", s->caller.who, s->caller.from);
		send_doc(s, json_pack("{s:i,s:b,s:o}", "v", JUKI_CONTROL_VERSION, "ok", 1, "result",
				      resp));
		return 0;
	case JUKI_EAUTH:
		snprintf(extra, sizeof(extra), "attempts_left=%d", remaining);
		audit_login(s, "wrong-pin", extra);
		resp =
		    fail("wrong-pin", "wrong PIN; %d attempt(s) left before the operator is locked",
			 remaining);
		json_object_set_new(json_object_get(resp, "error"), "attempts_left",
				    json_integer(remaining));
		send_doc(s, resp);
		return 0;
	case JUKI_ELOCKED:
		if (remaining == 0) {
			/* This attempt was the last one. */
			audit_login(s, "wrong-pin", "locked now");
			juki_alert(port->env.alerts, "operator-locked", s->caller.who,
				   s->caller.from,
				   "%lld wrong PINs in a row: locked until a supervisor unlocks",
				   (long long)oc->pin_attempts);
		} else {
			audit_login(s, "locked", NULL);
		}
		send_doc(s, fail("locked", "operator %s is locked: a supervisor must unlock it",
				 s->caller.op));
		session_end(s);
		return 1;
	case JUKI_ENOTFOUND:
		audit_login(s, "unknown-operator", NULL);
		send_doc(s, fail("unknown-operator", "no operator %s on this node", s->caller.op));
		session_end(s);
		return 1;
	default:
		audit_login(s, "internal", juki_strerror(rc));
		send_doc(s, fail("internal", "%s", juki_strerror(rc)));
		return 0;
	}
}

/*
 * The operator's row is read again before every request: a lock or a
 * change of roles by a supervisor takes effect on sessions already open.
 */
static int
still_allowed(struct session *s)
{
	struct juki_ident peer;

	memset(&peer, 0, sizeof(peer));
	snprintf(peer.urn, sizeof(peer.urn), "%s", s->caller.who);
	snprintf(peer.op, sizeof(peer.op), "%s", s->caller.op);
	if (juki_opport_operator(s->port->env.store, &peer, &s->caller) != 0) {
		send_doc(s, fail("locked", "operator %s is locked or was removed", s->caller.op));
		juki_opcmds_audit(s->port->env.opcmds, s->caller.who, "session", NULL, "locked",
				  "session ended");
		session_end(s);
		return 0;
	}
	return 1;
}

/* Returns 1 when the session has ended. */
static int
handle(struct session *s, const json_t *req)
{
	struct juki_opport *port = s->port;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (cmd != NULL && strcmp(cmd, "login") == 0) {
		return login(s, req);
	}
	if (!s->logged_in) {
		juki_opcmds_audit(port->env.opcmds, s->caller.who, cmd != NULL ? cmd : "-", NULL,
				  "login-required", NULL);
		send_doc(s, fail("login-required",
				 "log in first: {\"cmd\":\"login\",\"args\":{\"pin\":...}}"));
		return 0;
	}
	if (!still_allowed(s)) {
		return 1;
	}
	send_doc(s, juki_ctl_dispatch(port->env.tables, port->env.ntables,
				      juki_opcmds_hooks(port->env.opcmds), &s->caller, req));
	return 0;
}

static void
chan_readable(struct juki_chan *chan, void *arg)
{
	struct session *s = arg;
	json_t *req;
	int rc;

	while ((rc = juki_chan_recv(chan, &req)) != 0) {
		if (rc == JUKI_EJSON) {
			send_doc(s, fail("bad-request", "request is not a JSON object"));
			continue;
		}
		if (rc < 0) {
			log_warnx("operator port: dropping %s: %s", s->caller.who,
				  juki_strerror(rc));
			session_free(s);
			return;
		}
		rc = handle(s, req);
		json_decref(req);
		if (rc) {
			return;
		}
	}
}

static void
chan_closed(struct juki_chan *chan, int rc, const char *why, void *arg)
{
	struct session *s = arg;

	(void)chan;
	(void)rc;
	log_info("operator port: %s closed (%s)", s->caller.who, why ? why : "-");
	session_free(s);
}

static const struct juki_chan_cbs chan_cbs = {chan_readable, chan_closed, NULL};

static void
handshake_done(struct bufferevent *bev, const struct juki_ident *peer,
	       enum juki_tls_failure failure, const char *why, void *arg)
{
	struct session *s = arg;
	struct juki_opport *port = s->port;

	if (failure != JUKI_TLSF_NONE) {
		char outcome[32];

		snprintf(outcome, sizeof(outcome), "tls-%s", juki_tls_failure_name(failure));
		juki_alert(port->env.alerts, juki_alert_code_tls(failure), NULL, s->caller.from,
			   "operator port: %s", why ? why : "handshake failed");
		audit_login(s, outcome, NULL);
		session_free(s);
		return;
	}
	snprintf(s->caller.who, sizeof(s->caller.who), "%s", peer->urn);
	s->chan = juki_chan_new(bev, peer, "operator", JUKI_CONTROL_FRAME_MAX,
				port->conf.oper->idle_timeout, &chan_cbs, s);
	if (s->chan == NULL) {
		session_free(s);
		return;
	}
	if (!juki_opport_is_ours(port->env.self, peer)) {
		juki_alert(port->env.alerts, "identity-mismatch", peer->urn, s->caller.from,
			   "operator port: not an operator certificate of this node");
		audit_login(s, "wrong-node", NULL);
		send_doc(s, fail("forbidden", "%s is not an operator certificate of this node",
				 peer->urn));
		session_end(s);
		return;
	}
	snprintf(s->caller.op, sizeof(s->caller.op), "%s", peer->op);
}

/* Not logged in by the deadline: a caller before trust holds nothing for long. */
static void
login_overdue(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct juki_opport *port = s->port;

	(void)fd;
	(void)what;
	if (s->chan == NULL) {
		/* Still in its handshake, which ends by the same deadline and says so. */
		return;
	}
	juki_alert(port->env.alerts, "slow-caller", s->caller.who, s->caller.from,
		   "operator port: not logged in within %lld ms of accept",
		   (long long)port->conf.pretrust_timeout);
	audit_login(s, "timeout", NULL);
	send_doc(s, fail("timeout", "not logged in within %lld ms",
			 (long long)port->conf.pretrust_timeout));
	session_end(s);
}

static void
accept_cb(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
	struct juki_opport *port = arg;
	struct session *s;

	(void)len;
	if (port->nsessions >= (size_t)port->conf.oper->sessions ||
	    (s = calloc(1, sizeof(*s))) == NULL) {
		log_warnx("operator port: %zu sessions open, refusing one more", port->nsessions);
		evutil_closesocket(fd);
		return;
	}
	s->port = port;
	juki_net_addr_text(sa, s->caller.from, sizeof(s->caller.from));
	s->next = port->sessions;
	if (s->next != NULL) {
		s->next->prev = s;
	}
	port->sessions = s;
	port->nsessions++;
	if ((s->login_due = evtimer_new(port->env.base, login_overdue, s)) == NULL) {
		session_free(s);
		evutil_closesocket(fd);
		return;
	}
	{
		struct timeval tv = {(time_t)(port->conf.pretrust_timeout / 1000),
				     (suseconds_t)(port->conf.pretrust_timeout % 1000 * 1000)};

		evtimer_add(s->login_due, &tv);
	}
	if (juki_net_accept_tls(port->group, port->conf.tls, fd,
				juki_net_left(juki_net_deadline(port->conf.pretrust_timeout),
					      port->conf.handshake_timeout),
				handshake_done, s) != 0) {
		session_free(s);
	}
}

void
juki_opport_recheck(struct juki_opport *port, const struct juki_opport_conf *conf)
{
	struct session *s, *next;
	enum juki_tls_failure failure;
	char why[160];

	if (port == NULL) {
		return;
	}
	port->conf = *conf;
	for (s = port != NULL ? port->sessions : NULL; s != NULL; s = next) {
		next = s->next;
		/* Sessions still in their handshake are checked by it. */
		if (s->chan == NULL ||
		    juki_tls_peer_still_valid(port->conf.tls, juki_chan_ssl(s->chan), &failure, why,
					      sizeof(why)) == 0) {
			continue;
		}
		juki_alert(port->env.alerts, juki_alert_code_tls(failure), s->caller.who,
			   s->caller.from, "operator port: open session ended: %s", why);
		juki_opcmds_audit(port->env.opcmds, s->caller.who, "session", NULL, "cert-invalid",
				  why);
		log_notice("operator port: %s: session ended, its card's certificate: %s",
			   s->caller.who, why);
		send_doc(s, fail("card-invalid", "the card's certificate: %s: session ended", why));
		session_end(s);
	}
}

int
juki_opport_new(const struct juki_opport_env *env, const struct juki_opport_conf *conf,
		struct juki_opport **out, char *err, size_t errlen)
{
	const struct juki_node_operator *oc = conf->oper;
	struct juki_opport *port;
	int rc = JUKI_ENOMEM;

	*out = NULL;
	if ((port = calloc(1, sizeof(*port))) == NULL ||
	    (port->listeners = calloc(oc->nlisten, sizeof(*port->listeners))) == NULL ||
	    (port->group = juki_net_group_new(env->base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	port->env = *env;
	port->conf = *conf;
	for (size_t i = 0; i < oc->nlisten; i++) {
		char why[256];

		rc = juki_net_listen(env->base, oc->listen[i], accept_cb, port, &port->listeners[i],
				     why, sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "operator.listen %s: %s", oc->listen[i], why);
			goto fail;
		}
		port->nlisteners++;
	}
	*out = port;
	return 0;
fail:
	juki_opport_free(port);
	return rc;
}

void
juki_opport_free(struct juki_opport *port)
{
	if (port == NULL) {
		return;
	}
	for (size_t i = 0; i < port->nlisteners; i++) {
		juki_listener_free(port->listeners[i]);
	}
	free(port->listeners);
	/* Pending handshakes go with the group; their sessions with the list. */
	juki_net_group_free(port->group);
	while (port->sessions != NULL) {
		session_free(port->sessions);
	}
	free(port);
}

const char *
juki_opport_addr(const struct juki_opport *port, size_t i)
{
	return port != NULL && i < port->nlisteners ? juki_listener_addr(port->listeners[i]) : NULL;
}

json_t *
juki_opport_status(const struct juki_opport *port)
{
	json_t *listen = json_array(), *ops = json_array();

	for (size_t i = 0; i < port->nlisteners; i++) {
		json_array_append_new(listen, json_string(juki_listener_addr(port->listeners[i])));
	}
	for (const struct session *s = port->sessions; s != NULL; s = s->next) {
		if (s->logged_in) {
			json_array_append_new(ops, json_string(s->caller.op));
		}
	}
	return json_pack("{s:o,s:I,s:o}", "listen", listen, "sessions", (json_int_t)port->nsessions,
			 "operators", ops);
}
