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

#include "juki/base/ident.h"
#include "juki/records/operator.h"

#define JUKI_CONTROL_VERSION   1
#define JUKI_CONTROL_FRAME_MAX (16 * 1024 * 1024)

struct juki_ctl_error {
	char code[32];
	char message[256];
};

/*
 * A command: fn reads args (an object, maybe empty) and sets *result (a
 * new reference; NULL means {}) and returns 0, or fills err and returns
 * a negative code.  roles are those that may run it (0: nobody but the
 * built-in checks of a server without hooks, see juki_ctl_hooks); dataset,
 * when not NULL, is the data set it reads or changes (第4-4(5)).
 */
struct juki_ctl_cmd {
	const char *name;
	int (*fn)(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
	const char *help;
	unsigned roles;
	const char *dataset;
};

/*
 * A table of commands, ended by an entry whose name is NULL, and the ctx
 * its commands are given: a server serves the tables of several modules,
 * each with the state of its own.
 */
struct juki_ctl_table {
	const struct juki_ctl_cmd *cmds;
	void *ctx;
};

/*
 * Who is asking: the administrator on the local socket, or an operator
 * logged in on the operator port.
 */
struct juki_caller {
	char who[JUKI_URN_MAX]; /* operator URN, or "admin:uid=N" */
	char op[JUKI_ID_MAX];   /* operator id; "" for the local administrator */
	unsigned roles;         /* JUKI_ROLE_* */
	int all_datasets;       /* the local administrator */
	char datasets[JUKI_CALLER_DATASETS][JUKI_ID_MAX];
	size_t ndatasets;
	char from[64]; /* peer address, or "local" */
};

/* juki_caller_has_dataset() - may caller touch dataset? */
int juki_caller_has_dataset(const struct juki_caller *caller, const char *dataset);

/*
 * Hooks around every request of a server that has them: gate() runs
 * first and may refuse (fill err, return non-zero); done() runs after,
 * whatever happened (cmd NULL for an unknown command; failed set when err
 * holds why the request failed), to record the request in the operation
 * history.  done() returns non-zero, with err filled, when a request that
 * succeeded must fail after all because what it did could not be recorded:
 * its result is withheld.  Both are given ctx, or the first table's ctx
 * when it is NULL.
 */
struct juki_ctl_hooks {
	int (*gate)(void *ctx, const struct juki_ctl_cmd *cmd, const struct juki_caller *caller,
		    const json_t *args, struct juki_ctl_error *err);
	int (*done)(void *ctx, const char *name, const struct juki_ctl_cmd *cmd,
		    const struct juki_caller *caller, const json_t *args,
		    struct juki_ctl_error *err, int failed);
	void *ctx;
};

/*
 * juki_ctl_dispatch() - run one request (a parsed frame) against the tables for
 * caller, with hooks (NULL: none), and build its response (NULL on
 * ENOMEM).  "help" lists the commands the caller's roles may run.
 */
json_t *juki_ctl_dispatch(const struct juki_ctl_table *tables, size_t ntables,
			  const struct juki_ctl_hooks *hooks, const struct juki_caller *caller,
			  const json_t *req);

/* juki_ctl_failure() - the response {"v":1,"ok":false,"error":{...}} for err. */
json_t *juki_ctl_failure(const struct juki_ctl_error *err);

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

/*
 * juki_ctl_server_set_tables() - serve several tables, each with its own
 * ctx (borrowed): a command is looked up in them in order.
 */
void juki_ctl_server_set_tables(struct juki_ctl_server *srv, const struct juki_ctl_table *tables,
				size_t ntables);

/*
 * juki_ctl_server_set_hooks() - check and record every request (hooks
 * borrowed; NULL: none).  The caller of the local socket is the
 * administrator: JUKI_ROLE_ADMIN, every data set.
 */
void juki_ctl_server_set_hooks(struct juki_ctl_server *srv, const struct juki_ctl_hooks *hooks);

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
