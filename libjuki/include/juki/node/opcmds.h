/*
 * juki — the commands every server node has about its operators and their
 * work (docs/control.md): operator.*, approval.*, audit.*, lookup, export,
 * pin.change; the hooks that check every request against the caller's roles
 * and data sets and record it in the operation history (audit.h); the
 * approval of important input (第4-8(2)); the operators' lookup limits.
 */
#ifndef JUKI_OPCMDS_H
#define JUKI_OPCMDS_H

#include <jansson.h>

#include "juki/node/control.h"

struct juki_node;

/* The commands, ended by an entry whose name is NULL. */
extern const struct juki_ctl_cmd juki_opcmds[];

/* The hooks that check (roles, data sets) and record every request. */
extern const struct juki_ctl_hooks juki_opcmds_hooks;

/*
 * juki_opcmds_audit() - append one entry to the node's history (the caller's
 * identity as who); on failure alert and refuse operations from then on.
 */
void juki_opcmds_audit(struct juki_node *node, const char *who, const char *action,
		       const char *target, const char *outcome, const char *detail);

/*
 * juki_opcmds_approval_take() - important input of kind on target by the
 * caller (第4-8(2)): with args "approval", use that approval (given
 * beforehand, once); without, record the input as pending approval within
 * operator.approve_within.  Inside the input's transaction; after the
 * commit call juki_opcmds_approvals_check().  *info: {"id", "state",
 * "deadline_ms"?}.  Returns 0 or a negative code with err.
 */
int juki_opcmds_approval_take(struct juki_node *node, const json_t *args, const char *kind,
			      const char *target, json_t **info, struct juki_ctl_error *err);

/* juki_opcmds_approvals_check() - alert pending input past its deadline; arm the timer. */
void juki_opcmds_approvals_check(struct juki_node *node);

/* juki_opcmds_rates_free() - forget the operators' lookup counts (at stop). */
void juki_opcmds_rates_free(struct juki_node *node);

#endif
