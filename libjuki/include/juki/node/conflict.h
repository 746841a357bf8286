/*
 * juki — 二重登録: a person current in two municipalities at once, as a
 * prefectural or the national server sees it (docs/architecture.md §6.1).
 *
 * A municipality holds a person when its own latest record of the person's
 * 住民票コード at this server is not a removal.  After a honnin.batch is
 * applied, every code of the batch is looked at again: held by two or more
 * municipalities, it is a conflict, kept in honnin_conflict (opened once,
 * its holders kept up to date); held by one or none, any conflict of it is
 * cleared.  A normal move-in is one for a moment (the new municipality's
 * 転入 usually arrives before the former's 転出), so the alert
 * "double-registration" is raised only for a conflict still open after the
 * grace (conflict_grace), once per conflict.  It names the conflict's
 * number and the municipalities, never the code: `juki-ctl conflicts`
 * (supervisor, auditor) shows that.
 */
#ifndef JUKI_NODE_CONFLICT_H
#define JUKI_NODE_CONFLICT_H

#include <stdint.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/node.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

/* The table honnin_conflict, a schema of its own ("conflict"), for a spec's schemas. */
#define JUKI_CONFLICT_NSTEPS 1
extern const struct juki_migration juki_conflict_steps[JUKI_CONFLICT_NSTEPS];
#define JUKI_CONFLICT_SCHEMA                                                                       \
	{                                                                                          \
		"conflict", juki_conflict_steps, JUKI_CONFLICT_NSTEPS                              \
	}

struct juki_conflicts;

/*
 * juki_conflicts_start() - watch for conflicts open longer than grace_ms
 * and raise their alert, the node's JUKI_MODULE_CONFLICTS (node.h); NULL on
 * ENOMEM or when the node runs it already.  juki_conflicts_stop() ends it.
 */
struct juki_conflicts *juki_conflicts_start(struct juki_node *node, int64_t grace_ms);
void juki_conflicts_stop(struct juki_conflicts *cf);

/* juki_conflicts_set_grace() - a reloaded grace. */
void juki_conflicts_set_grace(struct juki_conflicts *cf, int64_t grace_ms);

/*
 * juki_conflicts_scan() - look again at every code of the applied batch
 * (its body "records"), inside the batch's transaction.  0 or JUKI_ESTORE.
 */
int juki_conflicts_scan(struct juki_conflicts *cf, const struct juki_msg *batch);

/*
 * juki_conflicts_cmd() - the control command "conflicts": the open
 * conflicts, oldest first, {"total", "conflicts": [{"id", "code",
 * "holders": [lgcode...], "since", "alerted"}]} (args: limit).  ctx is the
 * node.
 */
int juki_conflicts_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

#endif
