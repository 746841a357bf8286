/*
 * juki — the commands every server node has about its operators and their
 * work (docs/control.md): operator.*, approval.*, audit.*, lookup, export,
 * pin.change; the hooks that check every request against the caller's roles
 * and data sets and record it in the operation history (audit.h); the
 * approval of important input (第4-8(2)); the operators' lookup limits.
 *
 * They keep their own state (struct juki_opcmds): the operation history,
 * the request under way, the lookup counts, the timer of the next overdue
 * approval.  Of the node they are given only what they work with.
 */
#ifndef JUKI_OPCMDS_H
#define JUKI_OPCMDS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/ident.h"
#include "juki/node/alert.h"
#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/store/store.h"
#include "juki/wire/tls.h"

/* The operator port and the rules operators work under (第4-4, 第4-8(2)). */
struct juki_node_operator {
	char **listen; /* operator-port addresses; none: no operator port */
	size_t nlisten;
	int64_t pin_attempts;       /* consecutive wrong PINs that lock an operator */
	int64_t pin_memory;         /* Argon2id memory of new PIN verifiers, bytes */
	int64_t pin_passes;         /* Argon2id passes of new PIN verifiers */
	int64_t idle_timeout;       /* a session silent this long is closed */
	int64_t sessions;           /* sessions at once */
	int64_t lookups_per_minute; /* per operator */
	int64_t lookup_max;         /* records one lookup returns at most */
	int64_t bulk_records;       /* output of more records needs an approval */
	int64_t export_max;         /* records one export returns at most */
	int64_t approval_valid;     /* an approval given beforehand expires after this */
	int64_t approve_within;     /* online important input must be approved within this */
	char **purposes;            /* the purposes a lookup may state */
	size_t npurposes;
};

/* The operation history (第4-4(6)): audit.h. */
struct juki_node_audit {
	char *path; /* NULL: the store's path + ".audit" */
	int64_t checkpoint_every;
	char *certs; /* the node's certificates, current and earlier; NULL: tls.cert */
};

struct juki_opcmds;

/* What the commands work with, borrowed from the node that runs them. */
struct juki_opcmds_env {
	struct juki_daemon *daemon; /* the daemon that runs them */
	struct event_base *base;
	struct juki_store *store;
	struct juki_alerts *alerts;
	struct juki_clock *clock;
	const struct juki_ident *self;
	const char *const *datasets; /* the node's data sets (第4-4(5)), NULL-terminated */
	const char *name;            /* the daemon, named in the history's start and stop */
};

/* The settings they follow, given again at every reload (borrowed). */
struct juki_opcmds_conf {
	const struct juki_node_operator *oper;
	const struct juki_node_audit *audit;
	const char *cert; /* the node's certificate: audit.certs when that is not set */
};

/*
 * juki_opcmds_new() - open the operation history at audit_path (signed by
 * signer, borrowed until the next juki_opcmds_reloaded()), compare it with
 * the head env->store remembers (a history that is not the one recorded
 * raises audit-missing or audit-rollback and suspends work until
 * audit.adopt, docs/audit.md §5.3) and record the start.  Returns 0 or a negative code with err.
 */
int juki_opcmds_new(const struct juki_opcmds_env *env, const struct juki_opcmds_conf *conf,
		    const char *audit_path, struct juki_tls *signer, struct juki_opcmds **out,
		    char *err, size_t errlen);

/* juki_opcmds_reloaded() - new settings and a new signer. */
void juki_opcmds_reloaded(struct juki_opcmds *oc, const struct juki_opcmds_conf *conf,
			  struct juki_tls *signer);

/* juki_opcmds_free() - record the stop, sign what is unsigned, close; NULL is fine. */
void juki_opcmds_free(struct juki_opcmds *oc);

/*
 * The tables of the commands' own state in the node's store (component
 * "opcmds"): lookup_rate, each operator's last lookups, so that a restart
 * does not reset the lookup limit.  The node opens its store with it.
 */
extern const struct juki_schema juki_opcmds_schema;

/* The commands, ended by an entry whose name is NULL; their ctx is the struct juki_opcmds. */
extern const struct juki_ctl_cmd juki_opcmds[];

/* juki_opcmds_hooks() - the hooks that check (roles, data sets) and record every request. */
const struct juki_ctl_hooks *juki_opcmds_hooks(struct juki_opcmds *oc);

/*
 * juki_opcmds_audit() - append one entry to the history (the caller's
 * identity as who); on failure alert and refuse operations from then on.
 * Returns 0 when the entry was written.
 */
int juki_opcmds_audit(struct juki_opcmds *oc, const char *who, const char *action,
		      const char *target, const char *outcome, const char *detail);

/*
 * juki_opcmds_history() - the operation history itself (audit.h), for the
 * witnessed checkpoints of the heartbeat (witness.h); NULL when oc is.
 */
struct juki_audit *juki_opcmds_history(struct juki_opcmds *oc);

/*
 * juki_opcmds_note() - what the history should name as the target (an
 * identifier, never personal data) and detail of the request under way,
 * for a command whose target is not among its arguments (a new id).  oc
 * NULL, target or detail NULL: nothing.
 */
void juki_opcmds_note(struct juki_opcmds *oc, const char *target, const char *detail);

/*
 * juki_opcmds_approval_take() - important input of kind on target by the
 * caller of the request under way (第4-8(2)): with args "approval", use that
 * approval (given beforehand, once); without, record the input as pending
 * approval within operator.approve_within.  Inside the input's transaction;
 * after the commit call juki_opcmds_approvals_check().  *info: {"id",
 * "state", "deadline_ms"?}.  Returns 0 or a negative code with err.
 */
int juki_opcmds_approval_take(struct juki_opcmds *oc, const json_t *args, const char *kind,
			      const char *target, json_t **info, struct juki_ctl_error *err);

/*
 * juki_opcmds_caller() - who makes the request under way (a daemon's own
 * command asks it: an agreement's approver is not the one who added it);
 * NULL outside a request.
 */
const struct juki_caller *juki_opcmds_caller(const struct juki_opcmds *oc);

/* juki_opcmds_approvals_check() - alert pending input past its deadline; arm the timer. */
void juki_opcmds_approvals_check(struct juki_opcmds *oc);

#endif
