#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/control.h"
#include "juki/node/log.h"

#include "helpers.h"

#define WAIT_MS 5000

/* Each command counts its calls in the context it is given. */
struct ctx {
	int calls;
};

/*
 * The server's event loop runs in a thread of its own, so that the
 * blocking client juki_ctl_call() can run in the test's.  A pipe stops it.
 */
struct fix {
	char tmp[64];
	char path[128];
	char err[256];
	struct ctx ctx, ctx2;
	struct event_base *base;
	struct juki_ctl_server *srv;
	struct event *stop_ev;
	int stop_pipe[2];
	pthread_t thread;
	int running;
};

static int
cmd_echo(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;

	(void)err;
	ctx->calls++;
	/* args is always an object, {} when the request had none. */
	if (!json_is_object(args)) {
		return juki_ctl_fail(err, "usage", "args is not an object");
	}
	*result = json_deep_copy(args);
	return 0;
}

static int
cmd_empty(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;

	(void)args;
	(void)err;
	ctx->calls++;
	*result = NULL;
	return 0;
}

static int
cmd_lookup(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;
	const char *code = json_string_value(json_object_get(args, "code"));

	(void)result;
	ctx->calls++;
	if (code == NULL) {
		return juki_ctl_fail(err, "usage", "code: required");
	}
	return juki_ctl_fail(err, "not-found", "no resident with code %s", code);
}

/* A failure that names no code, after making a result it must not leak. */
static int
cmd_broken(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;

	(void)args;
	(void)err;
	ctx->calls++;
	*result = json_pack("{s:s}", "half", "done");
	return JUKI_ESTORE;
}

static int
cmd_huge(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;
	size_t n = JUKI_CONTROL_FRAME_MAX;
	char *s = malloc(n + 1);

	(void)args;
	(void)err;
	ctx->calls++;
	if (s == NULL) {
		return JUKI_ENOMEM;
	}
	memset(s, 'x', n);
	s[n] = '\0';
	*result = json_pack("{s:s}", "blob", s);
	free(s);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

static const struct juki_ctl_cmd cmds[] = {
    {"echo", cmd_echo, "return the arguments", JUKI_ROLE_ALL, NULL},
    {"empty", cmd_empty, NULL, JUKI_ROLE_ALL, NULL},
    {"lookup", cmd_lookup, "look a resident up (args: code)", JUKI_ROLE_ALL, NULL},
    {"broken", cmd_broken, "fail without saying why", JUKI_ROLE_ALL, NULL},
    {"huge", cmd_huge, "a response over the frame limit", JUKI_ROLE_ALL, NULL},
    {NULL, NULL, NULL, 0, NULL},
};

static int
cmd_other(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct ctx *ctx = ctxp;

	(void)args;
	(void)err;
	ctx->calls++;
	*result = json_pack("{s:s}", "table", "second");
	return 0;
}

static const struct juki_ctl_cmd cmds2[] = {
    {"other", cmd_other, "the reloaded table", JUKI_ROLE_ALL, NULL},
    {NULL, NULL, NULL, 0, NULL},
};

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct fix *f = arg;
	char b;

	(void)what;
	if (read(fd, &b, 1) == 1) {
		event_base_loopbreak(f->base);
	}
}

static void *
serve(void *arg)
{
	struct fix *f = arg;

	event_base_dispatch(f->base);
	return NULL;
}

static void
server_start(struct fix *f)
{
	assert_false(f->running);
	assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
	f->running = 1;
}

static void
server_stop(struct fix *f)
{
	if (!f->running) {
		return;
	}
	assert_int_equal(write(f->stop_pipe[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	f->running = 0;
}

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	*state = f;
	f->stop_pipe[0] = f->stop_pipe[1] = -1;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "control") == NULL) {
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->tmp);
	f->base = event_base_new();
	if (f->base == NULL || pipe(f->stop_pipe) != 0) {
		return -1;
	}
	f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, f);
	if (f->stop_ev == NULL || event_add(f->stop_ev, NULL) != 0) {
		return -1;
	}
	if (juki_ctl_server_new(f->base, f->path, cmds, &f->ctx, &f->srv, f->err, sizeof(f->err)) !=
	    0) {
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc = 0;

	server_stop(f);
	juki_ctl_server_free(f->srv);
	if (f->stop_ev != NULL) {
		event_free(f->stop_ev);
	}
	if (f->base != NULL) {
		event_base_free(f->base);
	}
	if (f->stop_pipe[0] >= 0) {
		close(f->stop_pipe[0]);
		close(f->stop_pipe[1]);
	}
	if (f->tmp[0] != '\0') {
		rc = test_rm_rf(f->tmp);
	}
	free(f);
	return rc;
}

static int
call(struct fix *f, const char *cmd, json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return juki_ctl_call(f->path, cmd, args, WAIT_MS, result, err);
}

static void
test_server_socket(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_server *srv2 = NULL;
	char path[200];
	struct stat st;
	FILE *fp;

	/* Owner only. */
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	/* Not over a file that is not a socket, not in a missing directory. */
	snprintf(path, sizeof(path), "%s/file", f->tmp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(
	    juki_ctl_server_new(f->base, path, cmds, &f->ctx, &srv2, f->err, sizeof(f->err)),
	    JUKI_EEXIST);
	assert_null(srv2);
	assert_non_null(strstr(f->err, path));
	snprintf(path, sizeof(path), "%s/missing/ctl.sock", f->tmp);
	assert_int_equal(
	    juki_ctl_server_new(f->base, path, cmds, &f->ctx, &srv2, f->err, sizeof(f->err)),
	    -ENOENT);
	assert_null(srv2);

	/* Freeing the server removes its socket. */
	juki_ctl_server_free(f->srv);
	f->srv = NULL;
	assert_int_equal(lstat(f->path, &st), -1);
	juki_ctl_server_free(NULL);
}

static void
test_help(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *result = NULL, *list, *c;

	server_start(f);
	assert_int_equal(call(f, "help", NULL, &result, &err), 0);
	list = json_object_get(result, "commands");
	assert_true(json_is_array(list));
	/* The table, in its order; help itself is built in. */
	assert_int_equal(json_array_size(list), 5);
	for (size_t i = 0; i < 5; i++) {
		c = json_array_get(list, i);
		assert_int_equal(json_object_size(c), 2);
		assert_string_equal(json_string_value(json_object_get(c, "name")), cmds[i].name);
		assert_string_equal(json_string_value(json_object_get(c, "help")),
				    cmds[i].help ? cmds[i].help : "");
	}
	json_decref(result);
	/* help takes no arguments but does not mind them. */
	assert_int_equal(call(f, "help", json_pack("{s:i}", "x", 1), &result, &err), 0);
	json_decref(result);
	assert_int_equal(f->ctx.calls, 0);
}

static void
test_ok(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *args, *result = NULL;

	server_start(f);
	args = json_pack("{s:i,s:s,s:[i,i],s:{s:b}}", "n", 42, "name", "山田 花子", "list", 1, 2,
			 "nested", "flag", 1);
	json_incref(args);
	assert_int_equal(call(f, "echo", args, &result, &err), 0);
	/* The arguments arrive as sent, the result comes back as made. */
	assert_true(json_equal(result, args));
	json_decref(args);
	json_decref(result);

	/* No arguments: the command sees {}. */
	assert_int_equal(call(f, "echo", NULL, &result, &err), 0);
	assert_true(json_is_object(result));
	assert_int_equal(json_object_size(result), 0);
	json_decref(result);

	/* No result: the caller gets {}. */
	assert_int_equal(call(f, "empty", NULL, &result, &err), 0);
	assert_true(json_is_object(result));
	assert_int_equal(json_object_size(result), 0);
	json_decref(result);

	assert_int_equal(f->ctx.calls, 3);
}

static void
test_large(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *args, *result = NULL;
	size_t n = 3 * 1024 * 1024;
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, 'a', n);
	s[n] = '\0';
	server_start(f);
	/* Larger than any socket buffer, both ways. */
	args = json_pack("{s:s}", "blob", s);
	assert_int_equal(call(f, "echo", args, &result, &err), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(result, "blob"))), n);
	json_decref(result);
	free(s);

	/* Over the frame limit: refused as internal, the connection answers still. */
	assert_int_equal(call(f, "huge", NULL, &result, &err), JUKI_EINVAL);
	assert_null(result);
	assert_string_equal(err.code, "internal");
	assert_non_null(strstr(err.message, "too large"));
}

static void
test_errors(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *result = (json_t *)&err;

	server_start(f);
	assert_int_equal(
	    call(f, "lookup", json_pack("{s:s}", "code", "24727059608"), &result, &err),
	    JUKI_EINVAL);
	assert_null(result);
	assert_string_equal(err.code, "not-found");
	assert_string_equal(err.message, "no resident with code 24727059608");

	assert_int_equal(call(f, "lookup", NULL, &result, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "usage");
	assert_string_equal(err.message, "code: required");

	/* A failure that names no code is "internal" with the error's text. */
	assert_int_equal(call(f, "broken", NULL, &result, &err), JUKI_EINVAL);
	assert_null(result);
	assert_string_equal(err.code, "internal");
	assert_string_equal(err.message, juki_strerror(JUKI_ESTORE));

	assert_int_equal(call(f, "purge", NULL, &result, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "unknown-command");
	assert_non_null(strstr(err.message, "purge"));
	assert_int_equal(call(f, "", NULL, &result, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "unknown-command");
	assert_int_equal(call(f, "ECHO", NULL, &result, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "unknown-command");
	assert_int_equal(f->ctx.calls, 3);
}

/* A raw client: frames written and read by hand. */

static int
raw_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
raw_send(int fd, const char *payload, size_t len)
{
	uint32_t n = htonl((uint32_t)len);

	assert_int_equal(send(fd, &n, 4, MSG_NOSIGNAL), 4);
	if (len > 0) {
		assert_int_equal(send(fd, payload, len, MSG_NOSIGNAL), (ssize_t)len);
	}
}

static int
read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, WAIT_MS) != 1) {
			return -1;
		}
		n = recv(fd, (char *)buf + got, len - got, 0);
		if (n <= 0) {
			return (int)n;
		}
		got += (size_t)n;
	}
	return 1;
}

/* The next response as JSON; NULL when the server closed the connection. */
static json_t *
raw_recv(int fd)
{
	uint32_t n;
	char *buf;
	json_t *doc;
	int rc = read_full(fd, &n, 4);

	if (rc == 0) {
		return NULL;
	}
	assert_int_equal(rc, 1);
	n = ntohl(n);
	buf = malloc(n + 1);
	assert_non_null(buf);
	assert_int_equal(read_full(fd, buf, n), 1);
	doc = json_loadb(buf, n, 0, NULL);
	free(buf);
	assert_non_null(doc);
	return doc;
}

static void
expect_bad_request(json_t *resp, const char *words)
{
	const json_t *e = json_object_get(resp, "error");

	assert_int_equal(json_object_size(resp), 3);
	assert_int_equal(json_integer_value(json_object_get(resp, "v")), JUKI_CONTROL_VERSION);
	assert_true(json_is_false(json_object_get(resp, "ok")));
	assert_int_equal(json_object_size(e), 2);
	assert_string_equal(json_string_value(json_object_get(e, "code")), "bad-request");
	if (words != NULL &&
	    strstr(json_string_value(json_object_get(e, "message")), words) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"",
			 json_string_value(json_object_get(e, "message")), words);
	}
	json_decref(resp);
}

static void
test_bad_requests(void **state)
{
	static const struct {
		const char *payload;
		const char *words;
	} cases[] = {
	    {"{\"v\":1}", "expected"},
	    {"{\"cmd\":\"help\"}", "expected"},
	    {"{\"v\":\"1\",\"cmd\":\"help\"}", "expected"},
	    {"{\"v\":1.0,\"cmd\":\"help\"}", "expected"},
	    {"{\"v\":1,\"cmd\":5}", "expected"},
	    {"{\"v\":1,\"cmd\":null}", "expected"},
	    {"{\"v\":1,\"cmd\":\"help\",\"args\":[1]}", "expected"},
	    {"{\"v\":1,\"cmd\":\"help\",\"args\":\"x\"}", "expected"},
	    {"{\"v\":1,\"cmd\":\"help\",\"args\":null}", "expected"},
	    {"{\"v\":2,\"cmd\":\"help\"}", "version 2"},
	    {"{\"v\":0,\"cmd\":\"help\"}", "version 0"},
	    {"{\"v\":-1,\"cmd\":\"echo\"}", "version -1"},
	    {"[1,2]", "not a JSON object"},
	    {"\"help\"", "not a JSON object"},
	    {"not json at all", "not a JSON object"},
	    {"{\"v\":1,\"cmd\":\"help\"", "not a JSON object"},
	};
	struct fix *f = *state;
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	json_t *resp;
	int fd;

	server_start(f);
	fd = raw_connect(f->path);
	/* All at once: answered one by one, in order, on the one connection. */
	for (size_t i = 0; i < n; i++) {
		raw_send(fd, cases[i].payload, strlen(cases[i].payload));
	}
	{
		const char *ok = "{\"v\":1,\"cmd\":\"echo\",\"args\":{\"still\":\"here\"}}";

		raw_send(fd, ok, strlen(ok));
	}
	for (size_t i = 0; i < n; i++) {
		resp = raw_recv(fd);
		assert_non_null(resp);
		expect_bad_request(resp, cases[i].words);
	}
	resp = raw_recv(fd);
	assert_non_null(resp);
	assert_int_equal(json_object_size(resp), 3);
	assert_int_equal(json_integer_value(json_object_get(resp, "v")), 1);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(resp, "result"), "still")), "here");
	json_decref(resp);
	/* Nothing bad reached a command. */
	assert_int_equal(f->ctx.calls, 1);

	/* A broken stream is dropped: a zero-length frame... */
	raw_send(fd, "", 0);
	assert_null(raw_recv(fd));
	close(fd);
	/* ...or a length over the limit, refused from the header alone. */
	fd = raw_connect(f->path);
	{
		uint32_t big = htonl(JUKI_CONTROL_FRAME_MAX + 1);

		assert_int_equal(send(fd, &big, 4, MSG_NOSIGNAL), 4);
	}
	assert_null(raw_recv(fd));
	close(fd);
}

static void
test_set_cmds(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *result = NULL;

	juki_ctl_server_set_cmds(f->srv, cmds2, &f->ctx2);
	server_start(f);
	assert_int_equal(call(f, "other", NULL, &result, &err), 0);
	assert_string_equal(json_string_value(json_object_get(result, "table")), "second");
	json_decref(result);
	assert_int_equal(call(f, "echo", NULL, &result, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "unknown-command");
	assert_int_equal(call(f, "help", NULL, &result, &err), 0);
	assert_int_equal(json_array_size(json_object_get(result, "commands")), 1);
	json_decref(result);
	/* The new context is the one commands get. */
	assert_int_equal(f->ctx2.calls, 1);
	assert_int_equal(f->ctx.calls, 0);
}

/* A hand-made daemon that answers one request with a canned frame, then waits for the close. */
struct fake {
	int lfd;
	const char *response; /* NULL: close without answering; "": never answer */
	size_t len;
};

static void *
fake_serve(void *arg)
{
	struct fake *k = arg;
	char buf[4096];
	int fd = accept(k->lfd, NULL, NULL);

	if (fd < 0) {
		return NULL;
	}
	if (k->response == NULL) {
		close(fd);
		return NULL;
	}
	/* The request is small: one read takes it. */
	if (recv(fd, buf, sizeof(buf), 0) > 0 && k->len > 0) {
		uint32_t n = htonl((uint32_t)k->len);

		(void)!send(fd, &n, 4, MSG_NOSIGNAL);
		(void)!send(fd, k->response, k->len, MSG_NOSIGNAL);
	}
	/* Until the client hangs up. */
	while (recv(fd, buf, sizeof(buf), 0) > 0) {
	}
	close(fd);
	return NULL;
}

static int
fake_listen(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int
call_fake(struct fix *f, const char *response, size_t len, int64_t timeout_ms,
	  struct juki_ctl_error *err)
{
	struct fake k = {fake_listen(f->path), response, len};
	json_t *result = (json_t *)err;
	pthread_t t;
	int rc;

	assert_int_equal(pthread_create(&t, NULL, fake_serve, &k), 0);
	rc = juki_ctl_call(f->path, "status", NULL, timeout_ms, &result, err);
	assert_null(result);
	/* Should the client never have connected, this wakes the fake from accept(). */
	close(raw_connect(f->path));
	pthread_join(t, NULL);
	close(k.lfd);
	return rc;
}

static void
test_client_errors(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	json_t *result = (json_t *)&err;
	char path[200];
	int64_t t0;
	int rc;

	/* The client side alone: the server of the fixture is replaced by fakes. */
	juki_ctl_server_free(f->srv);
	f->srv = NULL;

	snprintf(path, sizeof(path), "%s/nobody.sock", f->tmp);
	assert_int_equal(juki_ctl_call(path, "status", NULL, WAIT_MS, &result, &err), -ENOENT);
	assert_null(result);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, path));

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(juki_ctl_call(path, "status", json_object(), WAIT_MS, &result, &err),
			 JUKI_ENAMETOOLONG);
	assert_string_equal(err.code, "unreachable");

	/* Answers that are not responses. */
	rc = call_fake(f, "{\"v\":1}", 7, WAIT_MS, &err);
	assert_int_equal(rc, JUKI_EPROTO);
	assert_string_equal(err.code, "bad-response");
	rc = call_fake(f, "{\"v\":1,\"ok\":\"yes\"}", 18, WAIT_MS, &err);
	assert_int_equal(rc, JUKI_EPROTO);
	assert_string_equal(err.code, "bad-response");
	rc = call_fake(f, "not json", 8, WAIT_MS, &err);
	assert_int_equal(rc, JUKI_EPROTO);
	assert_string_equal(err.code, "bad-response");
	rc = call_fake(f, "[true]", 6, WAIT_MS, &err);
	assert_int_equal(rc, JUKI_EPROTO);
	assert_string_equal(err.code, "bad-response");

	/* An error without a code or message still reads as one. */
	rc = call_fake(f, "{\"v\":1,\"ok\":false}", 18, WAIT_MS, &err);
	assert_int_equal(rc, JUKI_EINVAL);
	assert_string_equal(err.code, "internal");
	/* ok with no result is an empty result. */
	{
		struct fake k = {fake_listen(f->path), "{\"v\":1,\"ok\":true}", 17};
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, fake_serve, &k), 0);
		assert_int_equal(juki_ctl_call(f->path, "status", NULL, WAIT_MS, &result, &err), 0);
		assert_true(json_is_object(result));
		assert_int_equal(json_object_size(result), 0);
		json_decref(result);
		pthread_join(t, NULL);
		close(k.lfd);
	}

	/* A daemon that hangs up without answering. */
	rc = call_fake(f, NULL, 0, WAIT_MS, &err);
	assert_true(rc == JUKI_ECLOSED || rc == -ECONNRESET || rc == -EPIPE);
	assert_string_equal(err.code, "unreachable");

	/* A daemon that takes the request and never answers: the timeout ends the wait. */
	t0 = juki_clock_mono_ms();
	rc = call_fake(f, "", 0, 200, &err);
	assert_int_equal(rc, JUKI_ETIMEDOUT);
	assert_string_equal(err.code, "unreachable");
	assert_true(juki_clock_mono_ms() - t0 >= 190);
	assert_true(juki_clock_mono_ms() - t0 < WAIT_MS);
}

/*
 * Peer credentials: a client must run as the daemon's user or as root.
 * The child drops to nobody and reports what juki_ctl_call() returned.
 */
enum {
	CHILD_OK = 10,
	CHILD_CLOSED = 11,
	CHILD_EACCES = 12,
	CHILD_OTHER = 13,
	CHILD_NOPRIV = 14,
};

static int
child_call(const char *path, int drop)
{
	struct juki_ctl_error err;
	json_t *result = NULL;
	struct passwd *pw;
	int rc;

	if (drop) {
		pw = getpwnam("nobody");
		if (pw == NULL || setgroups(0, NULL) != 0 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
			return CHILD_NOPRIV;
		}
	}
	rc = juki_ctl_call(path, "echo", NULL, 3000, &result, &err);
	json_decref(result);
	if (rc == 0) {
		return CHILD_OK;
	}
	if (rc == JUKI_ECLOSED || rc == -ECONNRESET || rc == -EPIPE) {
		return CHILD_CLOSED;
	}
	return rc == -EACCES ? CHILD_EACCES : CHILD_OTHER;
}

struct child {
	pid_t pid;
	int fd;
	int done;
	int status;
};

static void
child_done(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	int status = 0;

	(void)fd;
	(void)what;
	waitpid(c->pid, &status, 0);
	c->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	c->done = 1;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * Fork a client and run the server's loop here until it has its answer
 * (the child's end of the pipe closes when it exits).  No other thread runs
 * while we fork.
 */
static int
run_child(struct fix *f, int drop)
{
	struct child c = {0};
	struct event *ev, *t;
	struct timeval tv = {0, 20000};
	int64_t deadline = juki_clock_mono_ms() + WAIT_MS;
	int p[2];

	assert_false(f->running);
	assert_int_equal(pipe(p), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		close(p[0]);
		_exit(child_call(f->path, drop));
	}
	close(p[1]);
	ev = event_new(f->base, p[0], EV_READ, child_done, &c);
	t = evtimer_new(f->base, tick, NULL);
	event_add(ev, NULL);
	while (!c.done && juki_clock_mono_ms() < deadline) {
		evtimer_add(t, &tv);
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	event_free(ev);
	event_free(t);
	close(p[0]);
	if (!c.done) {
		kill(c.pid, SIGKILL);
		waitpid(c.pid, NULL, 0);
		fail_msg("the client child did not finish");
	}
	return c.status;
}

static void
test_peer_credentials(void **state)
{
	struct fix *f = *state;
	int st;

	if (geteuid() != 0) {
		skip();
	}
	/* Root may always talk to the daemon. */
	assert_int_equal(run_child(f, 0), CHILD_OK);
	assert_int_equal(f->ctx.calls, 1);

	/* Another user is stopped by the file modes first... */
	st = run_child(f, 1);
	if (st == CHILD_NOPRIV) {
		skip();
	}
	assert_int_equal(st, CHILD_EACCES);
	assert_int_equal(chmod(f->tmp, 0711), 0);
	assert_int_equal(run_child(f, 1), CHILD_EACCES);

	/* ...and, where those are too open, by SO_PEERCRED: connected, then dropped. */
	assert_int_equal(chmod(f->path, 0666), 0);
	assert_int_equal(run_child(f, 1), CHILD_CLOSED);
	assert_int_equal(f->ctx.calls, 1);

	/* The daemon goes on serving its own. */
	assert_int_equal(run_child(f, 0), CHILD_OK);
	assert_int_equal(f->ctx.calls, 2);
}

/* Hooks: a gate that refuses what the caller's roles do not cover, and a record of all. */
struct hooked {
	int calls, done, refused, unrecorded;
	char last[64], outcome[32];
};

static int
hook_cmd(void *ctxp, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct hooked *h = ctxp;

	(void)args;
	(void)err;
	h->calls++;
	*result = json_object();
	return 0;
}

static int
hook_gate(void *ctxp, const struct juki_ctl_cmd *cmd, const struct juki_caller *caller,
	  const json_t *args, struct juki_ctl_error *err)
{
	struct hooked *h = ctxp;

	(void)args;
	if ((cmd->roles & caller->roles) == 0 ||
	    (cmd->dataset != NULL && !juki_caller_has_dataset(caller, cmd->dataset))) {
		h->refused++;
		return juki_ctl_fail(err, "forbidden", "no");
	}
	return 0;
}

static int
hook_done(void *ctxp, const char *name, const struct juki_ctl_cmd *cmd,
	  const struct juki_caller *caller, const json_t *args, struct juki_ctl_error *err,
	  int failed)
{
	struct hooked *h = ctxp;

	(void)cmd;
	(void)caller;
	(void)args;
	h->done++;
	snprintf(h->last, sizeof(h->last), "%s", name);
	snprintf(h->outcome, sizeof(h->outcome), "%s", failed ? err->code : "ok");
	/* The history cannot be written: what succeeded is withheld. */
	return h->unrecorded ? juki_ctl_fail(err, "internal", "not recorded") : 0;
}

static void
test_dispatch_hooks(void **state)
{
	static const struct juki_ctl_cmd table[] = {
	    {"records", hook_cmd, "clerical", JUKI_ROLE_CLERK, "honnin"},
	    {"backup", hook_cmd, "administrative", JUKI_ROLE_ADMIN, NULL},
	    {NULL, NULL, NULL, 0, NULL},
	};
	static const struct juki_ctl_hooks hooks = {hook_gate, hook_done, NULL};
	struct juki_caller clerk = {.roles = JUKI_ROLE_CLERK, .ndatasets = 1};
	struct juki_caller admin = {.roles = JUKI_ROLE_ADMIN, .all_datasets = 1};
	struct hooked h = {0};
	const struct juki_ctl_table tables[] = {{table, &h}};
	json_t *req, *resp;

	(void)state;
	snprintf(clerk.datasets[0], sizeof(clerk.datasets[0]), "tennyu");
	/* The clerk's data set is not honnin: refused before the command runs. */
	req = json_pack("{s:i,s:s}", "v", 1, "cmd", "records");
	resp = juki_ctl_dispatch(tables, 1, &hooks, &clerk, req);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(resp, "error"), "code")),
	    "forbidden");
	assert_int_equal(h.calls, 0);
	assert_int_equal(h.done, 1);
	assert_string_equal(h.outcome, "forbidden");
	json_decref(resp);
	snprintf(clerk.datasets[0], sizeof(clerk.datasets[0]), "honnin");
	resp = juki_ctl_dispatch(tables, 1, &hooks, &clerk, req);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(h.calls, 1);
	assert_string_equal(h.outcome, "ok");
	json_decref(resp);
	/* Done but not recorded: the caller gets the failure, not the result. */
	h.unrecorded = 1;
	resp = juki_ctl_dispatch(tables, 1, &hooks, &clerk, req);
	assert_false(json_is_true(json_object_get(resp, "ok")));
	assert_null(json_object_get(resp, "result"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(resp, "error"), "code")), "internal");
	assert_int_equal(h.calls, 2);
	h.unrecorded = 0;
	json_decref(resp);
	/* The administrator does no clerical work, whatever the data sets. */
	resp = juki_ctl_dispatch(tables, 1, &hooks, &admin, req);
	assert_int_equal(h.calls, 2);
	assert_int_equal(h.refused, 2);
	json_decref(resp);
	json_decref(req);
	/* Unknown commands and bad requests are recorded too. */
	req = json_pack("{s:i,s:s}", "v", 1, "cmd", "nothing");
	resp = juki_ctl_dispatch(tables, 1, &hooks, &clerk, req);
	assert_string_equal(h.last, "nothing");
	assert_string_equal(h.outcome, "unknown-command");
	json_decref(resp);
	json_decref(req);
	req = json_pack("{s:i}", "v", 1);
	resp = juki_ctl_dispatch(tables, 1, &hooks, &clerk, req);
	assert_string_equal(h.last, "-");
	assert_string_equal(h.outcome, "bad-request");
	json_decref(resp);
	json_decref(req);
	/* help lists what the caller's roles allow. */
	req = json_pack("{s:i,s:s}", "v", 1, "cmd", "help");
	resp = juki_ctl_dispatch(tables, 1, &hooks, &admin, req);
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(resp, "result"), "commands")), 1);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(json_object_get(resp, "result"), "commands"), 0),
		"name")),
	    "backup");
	json_decref(resp);
	json_decref(req);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_server_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_help, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_cmds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_credentials, setup, teardown),
	    cmocka_unit_test(test_dispatch_hooks),
	};

	signal(SIGPIPE, SIG_IGN);
	/* Refusals and failures are logged; what the client sees is checked here. */
	log_init("test_control", JUKI_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
