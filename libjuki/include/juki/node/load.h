/*
 * juki — the control commands of the bulk load, `load` and `load.status`,
 * at juki-csd, juki-prefd and juki-jlisd (docs/control.md §11,
 * docs/architecture.md §26).
 *
 * Into an empty store the rows are built in a thread of its own into a
 * shadow file beside the store (<store>.load: a copy of the store made with
 * VACUUM INTO, written without a journal, indexes built after the rows,
 * fsync'd), and swapped in atomically on the event loop with
 * juki_store_replace(), after the tables the daemon wrote meanwhile are
 * copied into it; the daemon serves throughout.  A kill at any moment
 * leaves the store as it was or the whole load in it.  With merge the rows
 * go into the store itself in one transaction, on the event loop.
 */
#ifndef JUKI_NODE_LOAD_H
#define JUKI_NODE_LOAD_H

#include <jansson.h>

#include "juki/node/control.h"

struct juki_node;

int juki_load_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int juki_load_cmd_status(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);

/* juki_load_stop() - at the node's stop: end a load under way (its shadow removed). */
void juki_load_stop(struct juki_node *node);

/* juki_load_leftover() - at the start: remove a shadow a killed load left (<store>.load). */
void juki_load_leftover(const char *store_path);

#define JUKI_LOAD_CMDS                                                                             \
	{"load", juki_load_cmd,                                                                    \
	 "bulk load of records and history from files on this host (args: files, merge); "         \
	 "local socket only",                                                                      \
	 JUKI_ROLE_ADMIN, NULL},                                                                   \
	{                                                                                          \
		"load.status", juki_load_cmd_status, "the bulk load under way or the last one",    \
		    JUKI_ROLE_ADMIN | JUKI_ROLE_SUPERVISOR, NULL                                   \
	}

#endif
