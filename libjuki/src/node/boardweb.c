#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "juki/base/error.h"
#include "juki/node/boardweb.h"
#include "juki/node/log.h"
#include "juki/node/monitor.h"
#include "juki/node/node.h"
#include "juki/node/opport.h"
#include "juki/wire/net.h"

const struct juki_conf_key juki_node_boardweb_keys[] = {
    JUKI_CONF_SCALARLIST(struct juki_node_boardweb, listen, nlisten, "listen", JUKI_CONF_ADDR,
			 JUKI_CONF_RESTART, 0, 16,
			 "HTTPS addresses (numeric host:port) of the board's web page, for "
			 "operators' browsers with their certificates; none: no page.  Served only "
			 "while the node keeps the board (monitor.board)."),
    JUKI_CONF_SCALAR(struct juki_node_boardweb, deadline, "deadline", JUKI_CONF_DURATION, "10s", 0,
		     100, 600000,
		     "From accept to a complete request (handshake included), and from an "
		     "answer to the next request: a client slower than this is cut off."),
    JUKI_CONF_SCALAR(struct juki_node_boardweb, refresh, "refresh", JUKI_CONF_DURATION, "2s", 0,
		     200, 5000, "How often the page asks for the board again (at most 5s)."),
    JUKI_CONF_SCALAR(struct juki_node_boardweb, connections, "connections", JUKI_CONF_INT, "64", 0,
		     1, 4096, "Connections to the page at once; more are closed at accept."),
    JUKI_CONF_END,
};

extern const struct juki_boardweb_asset juki_boardweb_assets[];

/* What a refused or overdue handshake leaves to report from the event loop. */
struct report {
	struct report *next;
	enum juki_tls_failure failure;
	char from[64];
	char why[160];
};

/* One connection, from the bufferevent made for it to the SSL object's end. */
struct conn {
	struct juki_boardweb *web;
	struct conn *prev, *next;
	SSL *ssl;
	struct event *due;
	int handshaken;
	int served; /* requests answered */
	int timed_out;
	uint64_t read_at_handshake;    /* bytes read from the socket when the handshake ended */
	enum juki_tls_failure failure; /* what refused the handshake; NONE: nothing yet */
	int hangup;                    /* the client went away mid-handshake: not a refusal */
	char why[160];
	char from[64];
};

struct juki_boardweb {
	struct juki_boardweb_env env;
	struct juki_boardweb_conf conf;
	struct juki_tls *tls; /* our reference to conf.tls, for connections not yet accepted */
	struct juki_ctl_table board_table; /* the monitor's commands, when the monitor starts us */
	struct evhttp *http;
	char **addrs;
	size_t naddrs;
	struct conn *conns;
	size_t nconns;
	struct report *reports;
	struct event *flush;
	int closing;
	int64_t views, refused;
};

/* The SSL objects' slot for their struct conn, and its destructor. */
static int conn_index = -1;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

static void
conn_index_init(void)
{
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_gone);
}

const struct juki_boardweb_asset *
juki_boardweb_asset(const char *path)
{
	for (const struct juki_boardweb_asset *a = juki_boardweb_assets; a->path != NULL; a++) {
		if (strcmp(a->path, path) == 0) {
			return a;
		}
	}
	return NULL;
}

static int
state_rank(const char *state)
{
	static const char *const order[] = {"up", "degraded", "down", "intrusion"};

	for (int i = 0; i < 4; i++) {
		if (state != NULL && strcmp(state, order[i]) == 0) {
			return i;
		}
	}
	return 1; /* unknown: something is not as it should be */
}

json_t *
juki_boardweb_prefs(const json_t *board)
{
	static const char *const names[] = {"up", "degraded", "down", "intrusion"};
	const json_t *nodes = json_object_get(board, "nodes"), *n;
	int worst[48];
	json_t *out = json_object();
	size_t i;

	if (out == NULL) {
		return NULL;
	}
	for (i = 0; i < 48; i++) {
		worst[i] = -1;
	}
	json_array_foreach(nodes, i, n)
	{
		const json_t *p = json_object_get(n, "pref");
		long pref = 0;
		int rank;

		if (json_is_integer(p)) {
			pref = (long)json_integer_value(p);
		} else if (json_is_string(p) && strlen(json_string_value(p)) == 2 &&
			   json_string_value(p)[0] >= '0' && json_string_value(p)[0] <= '9' &&
			   json_string_value(p)[1] >= '0' && json_string_value(p)[1] <= '9') {
			pref = strtol(json_string_value(p), NULL, 10);
		}
		if (pref < 1 || pref > 47) {
			continue;
		}
		rank = state_rank(json_string_value(json_object_get(n, "state")));
		if (rank > worst[pref]) {
			worst[pref] = rank;
		}
	}
	for (i = 1; i <= 47; i++) {
		char key[3];

		if (worst[i] < 0) {
			continue;
		}
		snprintf(key, sizeof(key), "%02zu", i);
		if (json_object_set_new(out, key, json_string(names[worst[i]])) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* History and alerts: of the server's own work, outside any command. */

static void
audit(struct juki_boardweb *web, const char *who, const char *target, const char *outcome,
      const char *from)
{
	char detail[96];

	snprintf(detail, sizeof(detail), "web from %s", from[0] ? from : "-");
	juki_opcmds_audit(web->env.opcmds, who != NULL && who[0] ? who : "-", "board.web", target,
			  outcome, detail);
}

static void
flush_reports(evutil_socket_t fd, short what, void *arg)
{
	struct juki_boardweb *web = arg;
	struct report *r;

	(void)fd;
	(void)what;
	while ((r = web->reports) != NULL) {
		char outcome[32];

		web->reports = r->next;
		snprintf(outcome, sizeof(outcome), "tls-%s", juki_tls_failure_name(r->failure));
		if (r->failure == JUKI_TLSF_TIMEOUT) {
			juki_alert(web->env.alerts, "slow-caller", NULL, r->from, "board page: %s",
				   r->why);
		} else {
			juki_alert(web->env.alerts, juki_alert_code_tls(r->failure), NULL, r->from,
				   "board page: %s", r->why);
		}
		audit(web, NULL, NULL, outcome, r->from);
		web->refused++;
		free(r);
	}
}

static void
conn_from(struct conn *c)
{
	int fd;

	if (c->from[0] == '\0' && (fd = SSL_get_fd(c->ssl)) >= 0) {
		juki_net_peer_text(fd, c->from, sizeof(c->from));
	}
}

/* The SSL object is being freed (evhttp let its connection go): so goes ours. */
static void
conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct conn *c = ptr;
	struct juki_boardweb *web;
	struct report *r;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (c == NULL) {
		return;
	}
	web = c->web;
	if (c->due != NULL) {
		event_free(c->due);
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		web->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	web->nconns--;
	if (!web->closing && !c->handshaken && !c->hangup &&
	    (c->failure != JUKI_TLSF_NONE || c->timed_out) && (r = calloc(1, sizeof(*r))) != NULL) {
		r->failure =
		    c->timed_out && c->failure == JUKI_TLSF_NONE ? JUKI_TLSF_TIMEOUT : c->failure;
		snprintf(r->from, sizeof(r->from), "%s", c->from);
		snprintf(r->why, sizeof(r->why), "%s", c->why);
		r->next = web->reports;
		web->reports = r;
		event_active(web->flush, EV_TIMEOUT, 0);
	}
	free(c);
}

/*
 * Watch the handshake: the first fatal alert we send names the refusal
 * (read while OpenSSL's error queue still holds the reason); a client that
 * simply hangs up — as Chromium does once, to pick the certificate the
 * server asks for — refused nothing.
 */
static void
info_cb(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl;
	struct conn *c = SSL_get_ex_data(ssl, conn_index);
	unsigned long e;

	if (c == NULL) {
		return;
	}
	if (where & SSL_CB_HANDSHAKE_START) {
		conn_from(c);
	}
	if (where & SSL_CB_HANDSHAKE_DONE) {
		if (!c->handshaken && SSL_get_rbio(ssl) != NULL) {
			c->read_at_handshake = BIO_number_read(SSL_get_rbio(ssl));
		}
		c->handshaken = 1;
		return;
	}
	if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE) || (ret >> 8) != SSL3_AL_FATAL ||
	    c->handshaken || c->failure != JUKI_TLSF_NONE || c->hangup) {
		return;
	}
	conn_from(c);
	e = ERR_peek_error();
	if (e == 0 || ERR_SYSTEM_ERROR(e) ||
	    (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	     ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		c->hangup = 1;
		return;
	}
	c->failure = juki_tls_failure_of(ssl, e);
	if (c->failure == JUKI_TLSF_NONE) {
		c->failure = JUKI_TLSF_PROTOCOL;
	}
	snprintf(c->why, sizeof(c->why), "%s: %s", juki_tls_failure_name(c->failure),
		 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "handshake failed");
}

static void
arm(struct conn *c)
{
	int64_t ms = c->web->conf.web->deadline;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

	evtimer_add(c->due, &tv);
}

/*
 * The deadline: the socket is shut down under evhttp, which then sees the
 * end of the stream and lets the connection go in its own time.
 */
static void
overdue(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int sock = SSL_get_fd(c->ssl);

	(void)fd;
	(void)what;
	conn_from(c);
	c->timed_out = 1;
	if (!c->handshaken) {
		snprintf(c->why, sizeof(c->why),
			 "handshake not done within %lld ms of accept: cut off",
			 (long long)c->web->conf.web->deadline);
	} else if (c->served == 0 && SSL_get_rbio(c->ssl) != NULL &&
		   BIO_number_read(SSL_get_rbio(c->ssl)) == c->read_at_handshake) {
		/*
		 * Nothing at all since the handshake: a browser's spare connection,
		 * opened ahead of a request it did not need.  Closed, not alerted.
		 */
		log_info("board page: an idle connection from %s closed at the deadline", c->from);
	} else if (c->served == 0) {
		struct juki_ident peer;

		juki_tls_peer_ident(c->ssl, &peer);
		juki_alert(c->web->env.alerts, "slow-caller", peer.urn[0] ? peer.urn : NULL,
			   c->from,
			   "board page: no whole request within %lld ms of accept: cut off",
			   (long long)c->web->conf.web->deadline);
		audit(c->web, peer.urn, NULL, "timeout", c->from);
		c->web->refused++;
	}
	if (sock >= 0) {
		shutdown(sock, SHUT_RDWR);
	}
}

/* evhttp asks for the bufferevent of each accepted connection. */
static struct bufferevent *
make_bev(struct event_base *base, void *arg)
{
	struct juki_boardweb *web = arg;
	struct bufferevent *bev;
	struct conn *c;
	SSL *ssl;

	/*
	 * Nothing here may fail into a plain bufferevent: evhttp would make one
	 * itself and speak HTTP in clear.  What cannot get TLS gets an SSL
	 * object that is shut down at once (or, short of memory, a bufferevent
	 * every request on which is refused: handle() wants our SSL object).
	 */
	ssl = juki_tls_ssl_new(web->tls, JUKI_TLS_SERVER);
	c = calloc(1, sizeof(*c));
	if (ssl == NULL || c == NULL || (c->due = evtimer_new(base, overdue, c)) == NULL) {
		free(c);
		SSL_free(ssl);
		log_warnx("board page: out of memory at accept");
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	c->web = web;
	c->ssl = ssl;
	c->next = web->conns;
	if (c->next != NULL) {
		c->next->prev = c;
	}
	web->conns = c;
	web->nconns++;
	SSL_set_ex_data(ssl, conn_index, c);
	SSL_set_info_callback(ssl, info_cb);
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl); /* and c with it */
		log_warnx("board page: out of memory at accept");
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (web->nconns > (size_t)web->conf.web->connections) {
		struct timeval now = {0, 0};

		log_warnx("board page: %zu connections open, closing one more", web->nconns - 1);
		c->hangup = 1; /* ours, not the client's refusal: logged, not alerted */
		evtimer_add(c->due, &now);
		return bev;
	}
	arm(c);
	return bev;
}

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *type, const void *data,
      size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evbuffer_new();

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'none'; script-src 'self'; style-src 'self'; "
			  "connect-src 'self'; img-src 'self'; frame-ancestors 'none'; "
			  "base-uri 'none'; form-action 'none'");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	if (body != NULL && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evbuffer_add(body, data, len);
	}
	evhttp_send_reply(req, code, reason, body);
	if (body != NULL) {
		evbuffer_free(body);
	}
}

static void
refuse(struct evhttp_request *req, int code, const char *reason, const char *message)
{
	char text[400];
	int n = snprintf(text, sizeof(text), "%d %s: %s\n", code, reason, message);

	/* A refused caller gets no second try on the same connection. */
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	reply(req, code, reason, "text/plain; charset=utf-8", text,
	      n < 0                      ? 0
	      : (size_t)n < sizeof(text) ? (size_t)n
					 : sizeof(text) - 1);
}

/* The command "board" among the node's tables, and the ctx it runs with. */
static const struct juki_ctl_cmd *
board_cmd(const struct juki_boardweb *web, void **ctx)
{
	for (size_t t = 0; t < web->env.ntables; t++) {
		for (const struct juki_ctl_cmd *c = web->env.tables[t].cmds; c->name != NULL; c++) {
			if (strcmp(c->name, "board") == 0) {
				*ctx = web->env.tables[t].ctx;
				return c;
			}
		}
	}
	return NULL;
}

/* The board as JSON, with what the page draws from it added. */
static void
serve_json(struct juki_boardweb *web, struct evhttp_request *req, const struct juki_ctl_cmd *cmd,
	   void *cmd_ctx, struct juki_ctl_error *err, int *ok)
{
	json_t *args = json_object(), *board = NULL, *prefs;
	char *text = NULL;
	int rc;

	*ok = 0;
	rc = args == NULL ? JUKI_ENOMEM : cmd->fn(cmd_ctx, args, &board, err);
	json_decref(args);
	if (rc != 0 || board == NULL) {
		if (err->code[0] == '\0') {
			juki_ctl_fail(err, "internal", "%s", juki_strerror(rc ? rc : JUKI_ENOMEM));
		}
		json_decref(board);
		refuse(req, 503, "Service Unavailable", err->message);
		return;
	}
	if ((prefs = juki_boardweb_prefs(board)) != NULL) {
		json_object_set_new(board, "prefs", prefs);
	}
	json_object_set_new(board, "refresh_ms", json_integer(web->conf.web->refresh));
	text = json_dumps(board, JSON_COMPACT);
	json_decref(board);
	if (text == NULL) {
		juki_ctl_fail(err, "internal", "out of memory");
		refuse(req, 503, "Service Unavailable", "out of memory");
		return;
	}
	reply(req, 200, "OK", "application/json", text, strlen(text));
	free(text);
	*ok = 1;
}

static void
handle(struct evhttp_request *req, void *arg)
{
	struct juki_boardweb *web = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct conn *c = ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
	const struct juki_boardweb_asset *asset;
	const struct juki_ctl_hooks *hooks = juki_opcmds_hooks(web->env.opcmds);
	const struct juki_ctl_cmd *cmd;
	struct juki_ctl_error err;
	struct juki_caller caller;
	struct juki_ident peer;
	void *cmd_ctx = NULL, *hctx;
	char path[64];
	const char *uri = evhttp_request_get_uri(req), *q, *target;
	size_t plen;
	int rc, ok = 1;

	memset(&err, 0, sizeof(err));
	memset(&caller, 0, sizeof(caller));
	if (c == NULL || juki_tls_peer_ident(ssl, &peer) != 0) {
		/* Not our TLS connection (see make_bev): nothing is served on it. */
		refuse(req, 403, "Forbidden", "no verified certificate");
		return;
	}
	evtimer_del(c->due);
	c->served++;
	snprintf(caller.from, sizeof(caller.from), "%s", c->from);
	/* The path without its query; the page's own requests have none. */
	q = uri != NULL ? strpbrk(uri, "?#") : NULL;
	plen = uri == NULL ? 0 : q != NULL ? (size_t)(q - uri) : strlen(uri);
	snprintf(path, sizeof(path), "%.*s", (int)(plen < sizeof(path) ? plen : sizeof(path) - 1),
		 uri != NULL ? uri : "");
	/* What the history names: one of our paths, never what a client made up. */
	target =
	    juki_boardweb_asset(path) != NULL || strcmp(path, "/board.json") == 0 ? path : "other";
	if (!juki_opport_is_ours(web->env.self, &peer)) {
		juki_alert(web->env.alerts, "identity-mismatch", peer.urn, c->from,
			   "board page: not an operator certificate of this node");
		audit(web, peer.urn, target, "wrong-node", c->from);
		web->refused++;
		refuse(req, 403, "Forbidden", "not an operator certificate of this node");
		goto out;
	}
	if ((rc = juki_opport_operator(web->env.store, &peer, &caller)) != 0) {
		const char *outcome = rc == JUKI_ELOCKED     ? "locked"
				      : rc == JUKI_ENOTFOUND ? "unknown-operator"
							     : "internal";

		audit(web, peer.urn, target, outcome, c->from);
		web->refused++;
		refuse(req, 403, "Forbidden",
		       rc == JUKI_ELOCKED ? "the operator is locked: a supervisor must unlock it"
					  : "no such operator on this node");
		goto out;
	}
	asset = juki_boardweb_asset(path);
	if (asset == NULL && strcmp(path, "/board.json") != 0) {
		audit(web, caller.who, target, "not-found", c->from);
		refuse(req, 404, "Not Found", "the board page has /, /board.json and its assets");
		goto out;
	}
	if (asset != NULL && strcmp(asset->path, "/") != 0) {
		/* The page's script and style: no data, for any active operator of ours. */
		reply(req, 200, "OK", asset->type, asset->data, asset->len);
		goto out;
	}
	if ((cmd = board_cmd(web, &cmd_ctx)) == NULL) {
		audit(web, caller.who, target, "no-board", c->from);
		web->refused++;
		refuse(req, 503, "Service Unavailable", "this node keeps no board");
		goto out;
	}
	/*
	 * The command's own gate (its roles, and whatever else refuses work now)
	 * and its record in the history, under the name of the page.
	 */
	hctx = hooks->ctx != NULL     ? hooks->ctx
	       : web->env.ntables > 0 ? web->env.tables[0].ctx
				      : NULL;
	if (hooks->gate != NULL && hooks->gate(hctx, cmd, &caller, NULL, &err) != 0) {
		ok = 0;
		web->refused++;
		refuse(req, 403, "Forbidden", err.message);
	} else if (asset != NULL) {
		web->views++;
		reply(req, 200, "OK", asset->type, asset->data, asset->len);
	} else {
		serve_json(web, req, cmd, cmd_ctx, &err, &ok);
		web->views += ok;
	}
	{
		char detail[96];

		snprintf(detail, sizeof(detail), "web from %s", c->from);
		juki_opcmds_note(web->env.opcmds, target, detail);
	}
	if (hooks->done != NULL) {
		/* The board holds no personal data: it is served whatever the history says. */
		(void)hooks->done(hctx, "board.web", cmd, &caller, NULL, &err, !ok);
	}
out:
	arm(c);
}

static int
listen_on(struct juki_boardweb *web, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct evconnlistener *lev;
	struct evhttp_bound_socket *bound;
	char text[80];

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "boardweb.listen %s: not a numeric host:port", addr);
		return JUKI_EFORMAT;
	}
	lev = evconnlistener_new_bind(web->env.base, NULL, NULL,
				      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
					  LEV_OPT_CLOSE_ON_EXEC,
				      128, (struct sockaddr *)&ss, sslen);
	if (lev == NULL) {
		snprintf(err, errlen, "boardweb.listen %s: %s", addr,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return JUKI_EIO;
	}
	if ((bound = evhttp_bind_listener(web->http, lev)) == NULL) {
		evconnlistener_free(lev);
		snprintf(err, errlen, "boardweb.listen %s: out of memory", addr);
		return JUKI_ENOMEM;
	}
	{
		struct sockaddr_storage got;
		socklen_t glen = sizeof(got);

		if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&got, &glen) == 0) {
			juki_net_addr_text((struct sockaddr *)&got, text, sizeof(text));
		} else {
			snprintf(text, sizeof(text), "%s", addr);
		}
	}
	if ((web->addrs[web->naddrs] = strdup(text)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	web->naddrs++;
	return 0;
}

int
juki_boardweb_new(const struct juki_boardweb_env *env, const struct juki_boardweb_conf *conf,
		  struct juki_boardweb **out, char *err, size_t errlen)
{
	struct juki_boardweb *web;
	int rc = JUKI_ENOMEM;

	*out = NULL;
	pthread_once(&conn_once, conn_index_init);
	if (conn_index < 0) {
		snprintf(err, errlen, "board page: no SSL ex_data slot");
		return JUKI_ETLS;
	}
	if ((web = calloc(1, sizeof(*web))) == NULL ||
	    (web->addrs = calloc(conf->web->nlisten, sizeof(*web->addrs))) == NULL ||
	    (web->http = evhttp_new(env->base)) == NULL ||
	    (web->flush = event_new(env->base, -1, 0, flush_reports, web)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	web->env = *env;
	web->conf = *conf;
	web->tls = conf->tls;
	evhttp_set_bevcb(web->http, make_bev, web);
	evhttp_set_gencb(web->http, handle, web);
	evhttp_set_allowed_methods(web->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(web->http, 16 * 1024);
	evhttp_set_max_body_size(web->http, 0);
	{
		struct timeval tv = {(time_t)(conf->web->deadline / 1000),
				     (suseconds_t)(conf->web->deadline % 1000 * 1000)};

		evhttp_set_timeout_tv(web->http, &tv);
	}
	for (size_t i = 0; i < conf->web->nlisten; i++) {
		if ((rc = listen_on(web, conf->web->listen[i], err, errlen)) != 0) {
			goto fail;
		}
	}
	*out = web;
	return 0;
fail:
	juki_boardweb_free(web);
	return rc;
}

void
juki_boardweb_reloaded(struct juki_boardweb *web, const struct juki_boardweb_conf *conf)
{
	if (web == NULL) {
		return;
	}
	web->conf = *conf;
	web->tls = conf->tls;
}

void
juki_boardweb_free(struct juki_boardweb *web)
{
	struct report *r;

	if (web == NULL) {
		return;
	}
	web->closing = 1;
	if (web->http != NULL) {
		evhttp_free(web->http); /* every connection, and their SSL objects */
	}
	/* Connections evhttp has not taken yet (none, unless it failed to): theirs too. */
	while (web->conns != NULL) {
		struct conn *c = web->conns;

		SSL_set_ex_data(c->ssl, conn_index, NULL);
		conn_gone(NULL, c, NULL, 0, 0, NULL);
	}
	flush_reports(-1, 0, web);
	while ((r = web->reports) != NULL) {
		web->reports = r->next;
		free(r);
	}
	if (web->flush != NULL) {
		event_free(web->flush);
	}
	for (size_t i = 0; i < web->naddrs; i++) {
		free(web->addrs[i]);
	}
	free(web->addrs);
	free(web);
}

const char *
juki_boardweb_addr(const struct juki_boardweb *web, size_t i)
{
	return web != NULL && i < web->naddrs ? web->addrs[i] : NULL;
}

json_t *
juki_boardweb_status(const struct juki_boardweb *web)
{
	json_t *listen = json_array();

	for (size_t i = 0; i < web->naddrs; i++) {
		json_array_append_new(listen, json_string(web->addrs[i]));
	}
	return json_pack("{s:o,s:I,s:I,s:I}", "listen", listen, "connections",
			 (json_int_t)web->nconns, "views", (json_int_t)web->views, "refused",
			 (json_int_t)web->refused);
}

int
juki_boardweb_start(struct juki_node *node, char *err, size_t errlen)
{
	const struct juki_node_conf *nc = juki_node_conf(node);
	struct juki_boardweb_env env = {
	    .base = juki_node_base(node),
	    .store = juki_node_store(node),
	    .alerts = juki_node_alerts(node),
	    .clock = juki_node_clock(node),
	    .self = juki_node_self(node),
	    .opcmds = juki_node_opcmds(node),
	};
	struct juki_boardweb_conf conf = {&nc->boardweb, juki_node_tls(node)};
	struct juki_boardweb *web;
	int rc;

	if (nc->boardweb.nlisten == 0) {
		return 0;
	}
	if ((rc = juki_boardweb_new(&env, &conf, &web, err, errlen)) != 0) {
		return rc;
	}
	web->board_table = (struct juki_ctl_table){juki_monitor_cmds, node};
	web->env.tables = &web->board_table;
	web->env.ntables = 1;
	if ((rc = juki_node_module_set(node, JUKI_MODULE_BOARDWEB, web)) != 0) {
		juki_boardweb_free(web);
		snprintf(err, errlen, "board page: started twice");
		return rc;
	}
	for (size_t i = 0; i < web->naddrs; i++) {
		log_info("%s: board page https://%s/", juki_node_daemon_name(node), web->addrs[i]);
	}
	return 0;
}

void
juki_boardweb_reload(struct juki_node *node)
{
	struct juki_boardweb *web = juki_node_module(node, JUKI_MODULE_BOARDWEB);
	struct juki_boardweb_conf conf = {&juki_node_conf(node)->boardweb, juki_node_tls(node)};

	juki_boardweb_reloaded(web, &conf);
}

void
juki_boardweb_stop(struct juki_node *node)
{
	struct juki_boardweb *web = juki_node_module(node, JUKI_MODULE_BOARDWEB);

	if (web != NULL) {
		juki_node_module_clear(node, JUKI_MODULE_BOARDWEB, web);
		juki_boardweb_free(web);
	}
}
