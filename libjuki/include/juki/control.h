/*
 * juki — the local control channel (docs/control.md).
 *
 * A UNIX stream socket owned by the daemon's user, mode 0600; a connecting
 * process must run as that user or as root (SO_PEERCRED).  On it, frames
 * (frame.h) carry requests and responses, one response per request, in
 * order:
 *
 *   request   {"v":1, "cmd":"status", "args":{...}}
 *   response  {"v":1, "ok":true,  "result":{...}}
 *             {"v":1, "ok":false, "error":{"code":"not-found", "message":"..."}}
 *
 * Error codes: "usage" (bad or missing arguments), "invalid" (input refused
 * by validation), "not-found", "conflict" (the state forbids it),
 * "unknown-command", "bad-request" (not a request at all), "internal".
 */
#ifndef JUKI_CONTROL_H
#define JUKI_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#define JUKI_CONTROL_VERSION   1
#define JUKI_CONTROL_FRAME_MAX (16 * 1024 * 1024)

struct juki_ctl_error {
	char code[32];
	char message[256];
};

/*
 * A command: fn reads args (an object, maybe empty) and sets *result (a
 * new reference; NULL means {}) and returns 0, or fills err and returns
 * a negative code.
 */
struct juki_ctl_cmd {
	const char *name;
	int (*fn)(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
	const char *help;
};

/* juki_ctl_fail() - fill err and return JUKI_EINVAL, for commands' tail calls. */
int juki_ctl_fail(struct juki_ctl_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct juki_ctl_server;

/*
 * juki_ctl_server_new() - listen at path.  cmds is a table terminated by
 * name == NULL (borrowed, as is ctx).  A "help" command listing the table
 * is built in.  Returns 0 or a negative code with err.
 */
int juki_ctl_server_new(struct event_base *base, const char *path, const struct juki_ctl_cmd *cmds,
			void *ctx, struct juki_ctl_server **out, char *err, size_t errlen);

/* juki_ctl_server_set_cmds() - a new command table and context (reload). */
void juki_ctl_server_set_cmds(struct juki_ctl_server *srv, const struct juki_ctl_cmd *cmds,
			      void *ctx);

void juki_ctl_server_free(struct juki_ctl_server *srv);

/*
 * juki_ctl_call() - the client side: connect to path, send cmd with args
 * (stolen; NULL for none), wait up to timeout_ms for the response.
 * Returns 0 with *result (new reference); JUKI_ECLOSED / -errno when the
 * daemon cannot be reached (err->code "unreachable"); JUKI_EPROTO for a
 * malformed response; JUKI_EINVAL when the daemon answered ok:false (err
 * holds its code and message).
 */
int juki_ctl_call(const char *path, const char *cmd, json_t *args, int64_t timeout_ms,
		  json_t **result, struct juki_ctl_error *err);

#endif
