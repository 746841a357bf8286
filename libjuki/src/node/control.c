#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/control.h"
#include "juki/node/log.h"
#include "juki/wire/frame.h"
#include "juki/wire/net.h"

/* A control client that says nothing for this long is dropped. */
#define IDLE_MS 60000

struct juki_ctl_server {
	struct event_base *base;
	struct juki_listener *listener;
	struct juki_ctl_table one; /* the tables of juki_ctl_server_new() and set_cmds() */
	const struct juki_ctl_table *tables;
	size_t ntables;
	const struct juki_ctl_hooks *hooks;
};

/* One client of the local socket: always the administrator. */
struct client {
	struct juki_ctl_server *srv;
	struct juki_caller caller;
};

int
juki_ctl_fail(struct juki_ctl_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return JUKI_EINVAL;
}

int
juki_caller_has_dataset(const struct juki_caller *caller, const char *dataset)
{
	if (caller->all_datasets) {
		return 1;
	}
	for (size_t i = 0; i < caller->ndatasets; i++) {
		if (strcmp(caller->datasets[i], dataset) == 0) {
			return 1;
		}
	}
	return 0;
}

json_t *
juki_ctl_failure(const struct juki_ctl_error *err)
{
	return json_pack("{s:i,s:b,s:{s:s,s:s}}", "v", JUKI_CONTROL_VERSION, "ok", 0, "error",
			 "code", err->code[0] ? err->code : "internal", "message", err->message);
}

static json_t *
help_result(const struct juki_ctl_table *tables, size_t ntables, const struct juki_ctl_hooks *hooks,
	    const struct juki_caller *caller)
{
	json_t *list = json_array();

	for (size_t t = 0; t < ntables; t++) {
		for (const struct juki_ctl_cmd *c = tables[t].cmds; c->name != NULL; c++) {
			if (hooks != NULL && (c->roles & caller->roles) == 0) {
				continue;
			}
			json_array_append_new(list, json_pack("{s:s,s:s}", "name", c->name, "help",
							      c->help ? c->help : ""));
		}
	}
	return json_pack("{s:o}", "commands", list);
}

static void *
hooks_ctx(const struct juki_ctl_hooks *hooks, void *ctx)
{
	return hooks->ctx != NULL ? hooks->ctx : ctx;
}

static json_t *
run(const struct juki_ctl_cmd *c, void *cmd_ctx, void *ctx, const struct juki_ctl_hooks *hooks,
    const struct juki_caller *caller, const json_t *args, struct juki_ctl_error *err)
{
	json_t *result = NULL;
	int rc = 0;

	if (hooks != NULL && hooks->gate != NULL) {
		rc = hooks->gate(hooks_ctx(hooks, ctx), c, caller, args, err);
	}
	if (rc == 0) {
		rc = c->fn(cmd_ctx, args, &result, err);
	}
	if (rc != 0) {
		json_decref(result);
		result = NULL;
		if (err->code[0] == '\0') {
			juki_ctl_fail(err, "internal", "%s", juki_strerror(rc));
		}
		log_info("control: %s failed: %s", c->name, err->code);
	}
	if (hooks != NULL && hooks->done != NULL &&
	    hooks->done(hooks_ctx(hooks, ctx), c->name, c, caller, args, err, rc != 0) != 0 &&
	    rc == 0) {
		/* Done, but not recorded: the result is withheld. */
		json_decref(result);
		result = NULL;
		rc = JUKI_ESTORE;
		log_info("control: %s withheld: %s", c->name, err->code);
	}
	if (rc != 0) {
		return juki_ctl_failure(err);
	}
	return json_pack("{s:i,s:b,s:o}", "v", JUKI_CONTROL_VERSION, "ok", 1, "result",
			 result ? result : json_object());
}

json_t *
juki_ctl_dispatch(const struct juki_ctl_table *tables, size_t ntables,
		  const struct juki_ctl_hooks *hooks, const struct juki_caller *caller,
		  const json_t *req)
{
	void *ctx = ntables > 0 ? tables[0].ctx : NULL;
	struct juki_ctl_error err;
	const json_t *args;
	const char *name;
	json_t *v, *resp;

	memset(&err, 0, sizeof(err));
	v = json_object_get(req, "v");
	name = json_string_value(json_object_get(req, "cmd"));
	args = json_object_get(req, "args");
	if (!json_is_integer(v) || name == NULL || (args != NULL && !json_is_object(args))) {
		juki_ctl_fail(&err, "bad-request",
			      "expected {\"v\":1, \"cmd\":..., \"args\":{...}}");
	} else if (json_integer_value(v) != JUKI_CONTROL_VERSION) {
		juki_ctl_fail(&err, "bad-request", "control protocol version %lld not supported",
			      (long long)json_integer_value(v));
	} else if (strcmp(name, "help") == 0) {
		return json_pack("{s:i,s:b,s:o}", "v", JUKI_CONTROL_VERSION, "ok", 1, "result",
				 help_result(tables, ntables, hooks, caller));
	} else {
		for (size_t t = 0; t < ntables; t++) {
			for (const struct juki_ctl_cmd *c = tables[t].cmds; c->name != NULL; c++) {
				if (strcmp(c->name, name) == 0) {
					json_t *empty = json_object();

					resp = run(c, tables[t].ctx, ctx, hooks, caller,
						   args ? args : empty, &err);
					json_decref(empty);
					return resp;
				}
			}
		}
		juki_ctl_fail(&err, "unknown-command", "no command %s here (try help)", name);
	}
	if (hooks != NULL && hooks->done != NULL) {
		(void)hooks->done(hooks_ctx(hooks, ctx), name != NULL ? name : "-", NULL, caller,
				  NULL, &err, 1);
	}
	return juki_ctl_failure(&err);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;
	struct juki_ctl_server *srv = cl->srv;
	json_t *req, *resp;
	int rc;

	for (;;) {
		rc = juki_frame_pull(bufferevent_get_input(bev), JUKI_CONTROL_FRAME_MAX, &req);
		if (rc == JUKI_EJSON) {
			struct juki_ctl_error err;

			/* Answered, and the requests queued behind it still are. */
			juki_ctl_fail(&err, "bad-request", "request is not a JSON object");
			resp = juki_ctl_failure(&err);
			juki_frame_push(bufferevent_get_output(bev), resp, JUKI_CONTROL_FRAME_MAX);
			json_decref(resp);
			continue;
		}
		if (rc != 1) {
			break;
		}
		resp = juki_ctl_dispatch(srv->tables, srv->ntables, srv->hooks, &cl->caller, req);
		json_decref(req);
		if (resp == NULL || juki_frame_push(bufferevent_get_output(bev), resp,
						    JUKI_CONTROL_FRAME_MAX) != 0) {
			struct juki_ctl_error err;

			json_decref(resp);
			juki_ctl_fail(&err, "internal", "response too large or out of memory");
			resp = juki_ctl_failure(&err);
			juki_frame_push(bufferevent_get_output(bev), resp, JUKI_CONTROL_FRAME_MAX);
		}
		json_decref(resp);
	}
	if (rc < 0) {
		log_warnx("control: dropping a client: %s", juki_strerror(rc));
		bufferevent_free(bev);
		free(cl);
	}
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	bufferevent_free(bev);
	free(arg);
}

static void
accept_cb(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
	struct juki_ctl_server *srv = arg;
	struct bufferevent *bev;
	struct client *cl;
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	struct timeval tv = {IDLE_MS / 1000, 0};

	(void)sa;
	(void)len;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warnx("control: refused a client running as uid %ld",
			  (long)(credlen == sizeof(cred) ? (long)cred.uid : -1L));
		evutil_closesocket(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	cl = calloc(1, sizeof(*cl));
	bev = cl != NULL ? bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (bev == NULL) {
		free(cl);
		evutil_closesocket(fd);
		return;
	}
	cl->srv = srv;
	snprintf(cl->caller.who, sizeof(cl->caller.who), "admin:uid=%ld", (long)cred.uid);
	cl->caller.roles = JUKI_ROLE_ADMIN;
	cl->caller.all_datasets = 1;
	snprintf(cl->caller.from, sizeof(cl->caller.from), "local");
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setcb(bev, client_read, NULL, client_event, cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
juki_ctl_server_new(struct event_base *base, const char *path, const struct juki_ctl_cmd *cmds,
		    void *ctx, struct juki_ctl_server **out, char *err, size_t errlen)
{
	struct juki_ctl_server *srv;
	int rc;

	*out = NULL;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		return JUKI_ENOMEM;
	}
	srv->base = base;
	juki_ctl_server_set_cmds(srv, cmds, ctx);
	rc = juki_net_listen_unix(base, path, 0600, accept_cb, srv, &srv->listener, err, errlen);
	if (rc != 0) {
		free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

void
juki_ctl_server_set_cmds(struct juki_ctl_server *srv, const struct juki_ctl_cmd *cmds, void *ctx)
{
	srv->one.cmds = cmds;
	srv->one.ctx = ctx;
	srv->tables = &srv->one;
	srv->ntables = 1;
}

void
juki_ctl_server_set_tables(struct juki_ctl_server *srv, const struct juki_ctl_table *tables,
			   size_t ntables)
{
	srv->tables = tables;
	srv->ntables = ntables;
}

void
juki_ctl_server_set_hooks(struct juki_ctl_server *srv, const struct juki_ctl_hooks *hooks)
{
	srv->hooks = hooks;
}

void
juki_ctl_server_free(struct juki_ctl_server *srv)
{
	if (srv == NULL) {
		return;
	}
	juki_listener_free(srv->listener);
	free(srv);
}

/* Wait for fd to be ready for events until deadline (monotonic ms). */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = deadline - juki_clock_mono_ms();
	int n;

	if (left <= 0) {
		return JUKI_ETIMEDOUT;
	}
	n = poll(&p, 1, (int)left);
	if (n < 0) {
		return -errno;
	}
	return n == 0 ? JUKI_ETIMEDOUT : 0;
}

static int
send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n;
		int rc = wait_fd(fd, POLLOUT, deadline);

		if (rc != 0) {
			return rc;
		}
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
recv_frame(int fd, int64_t deadline, json_t **doc)
{
	struct evbuffer *in = evbuffer_new();
	char buf[65536];
	int rc;

	if (in == NULL) {
		return JUKI_ENOMEM;
	}
	for (;;) {
		ssize_t n;

		rc = juki_frame_pull(in, JUKI_CONTROL_FRAME_MAX, doc);
		if (rc != 0) {
			break;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc != 0) {
			break;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n <= 0) {
			rc = n == 0 ? JUKI_ECLOSED : -errno;
			break;
		}
		evbuffer_add(in, buf, (size_t)n);
	}
	evbuffer_free(in);
	return rc == 1 ? 0 : rc;
}

int
juki_ctl_call(const char *path, const char *cmd, json_t *args, int64_t timeout_ms, json_t **result,
	      struct juki_ctl_error *err)
{
	struct sockaddr_un sun;
	int64_t deadline = juki_clock_mono_ms() + timeout_ms;
	struct evbuffer *out = NULL;
	json_t *req = NULL, *resp = NULL;
	int fd = -1, rc;

	*result = NULL;
	memset(err, 0, sizeof(*err));
	req = json_pack("{s:i,s:s,s:o}", "v", JUKI_CONTROL_VERSION, "cmd", cmd, "args",
			args ? args : json_object());
	out = evbuffer_new();
	if (req == NULL || out == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		rc = JUKI_ENAMETOOLONG;
		juki_ctl_fail(err, "unreachable", "%s: path too long", path);
		goto out;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		rc = -errno;
		juki_ctl_fail(err, "unreachable", "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = juki_frame_push(out, req, JUKI_CONTROL_FRAME_MAX);
	if (rc != 0) {
		juki_ctl_fail(err, "usage", "request too large");
		goto out;
	}
	{
		size_t len = evbuffer_get_length(out);

		rc = send_all(fd, (const char *)evbuffer_pullup(out, -1), len, deadline);
	}
	if (rc == 0) {
		rc = recv_frame(fd, deadline, &resp);
	}
	if (rc == JUKI_EJSON || rc == JUKI_EFRAME || rc == JUKI_ETOOBIG) {
		juki_ctl_fail(err, "bad-response", "malformed response from the daemon: %s",
			      juki_strerror(rc));
		rc = JUKI_EPROTO;
		goto out;
	}
	if (rc != 0) {
		juki_ctl_fail(err, "unreachable", "%s: %s", path, juki_strerror(rc));
		goto out;
	}
	if (json_is_true(json_object_get(resp, "ok"))) {
		*result = json_incref(json_object_get(resp, "result"));
		if (*result == NULL) {
			*result = json_object();
		}
		rc = 0;
	} else if (json_is_false(json_object_get(resp, "ok"))) {
		json_t *e = json_object_get(resp, "error");

		juki_ctl_fail(err,
			      json_string_value(json_object_get(e, "code"))
				  ? json_string_value(json_object_get(e, "code"))
				  : "internal",
			      "%s",
			      json_string_value(json_object_get(e, "message"))
				  ? json_string_value(json_object_get(e, "message"))
				  : "");
		rc = JUKI_EINVAL;
	} else {
		juki_ctl_fail(err, "bad-response", "malformed response from the daemon");
		rc = JUKI_EPROTO;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (out != NULL) {
		evbuffer_free(out);
	}
	json_decref(req);
	json_decref(resp);
	return rc;
}
