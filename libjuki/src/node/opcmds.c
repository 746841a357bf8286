/*
 * The commands every server node has for its operators, and the checks and
 * records around every request (opcmds.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/records/honnin.h"
#include "juki/records/operator.h"
#include "juki/records/provision.h"
#include "juki/store/audit.h"

/*
 * The times of an operator's last lookups, a ring of lookups_per_minute,
 * kept in the store too (table lookup_rate, a row per slot) so that a
 * restart does not give an operator a fresh minute; slot -1 holds when the
 * alert rate-limited was last raised for the operator.
 */
struct juki_rate {
	char op[JUKI_ID_MAX];
	int64_t *times;
	size_t cap, next, count;
	int64_t alerted_ms; /* the last rate-limited alert; INT64_MIN: none */
};

#define RATE_WINDOW_MS 60000

static const struct juki_migration opcmds_steps[] = {
    {1, "CREATE TABLE lookup_rate ("
	" op TEXT NOT NULL,"
	" slot INTEGER NOT NULL,"
	" at_ms INTEGER NOT NULL,"
	" PRIMARY KEY (op, slot)"
	") WITHOUT ROWID;"},
};

const struct juki_schema juki_opcmds_schema = {"opcmds", opcmds_steps,
					       sizeof(opcmds_steps) / sizeof(opcmds_steps[0])};

struct juki_opcmds {
	struct juki_opcmds_env env;
	struct juki_opcmds_conf conf;
	struct juki_ctl_hooks hooks;
	struct juki_audit *audit; /* the operation history */
	char *audit_path;
	int audit_broken;            /* an append failed: refuse operations */
	int audit_alerted;           /* the history's state was alerted */
	struct verify_job *job;      /* the last audit.verify, running or done */
	int64_t jobs;                /* audit.verify jobs started */
	struct event *approvals_due; /* when the next pending approval is overdue */
	struct juki_rate *rates;     /* each operator's last lookups */
	size_t nrates;
	/* During a request: who asks, and what the history should say of it. */
	const struct juki_caller *caller;
	int request_txn; /* the request's writes wait for its history entry */
	char audit_target[64];
	char audit_detail[JUKI_AUDIT_FIELD_MAX];
};

/*
 * An audit.verify runs in a thread of its own, on a connection of its own,
 * so that the event loop keeps serving; juki-ctl asks for its report.
 */
struct verify_job {
	int64_t id;
	pthread_t thread;
	atomic_int done;
	char *path, *cert;
	struct juki_audit_head head;
	json_t *report;
	int rc;
	char err[256];
};

/* When a node's configuration names none. */
static const char *const default_purposes[] = {
    "certificate", /* 住民票の写し等の交付 */
    "benefit",     /* 給付・手当の事務 */
    "tax",         /* 税務 */
    "pension",     /* 年金 */
    "correction",  /* 記載事項の確認・修正 */
    "inquiry",     /* 本人からの照会 */
    NULL,
};

static const char *const wildcards[] = {"*", "?", "%", "_", "＊", "？", "％", "＿", NULL};

static int64_t
now_ms(const struct juki_opcmds *oc)
{
	return juki_clock_now_ms(oc->env.clock);
}

/*
 * The history is not the one the node recorded (docs/audit.md §5.3): one
 * alert, and clerical work is refused until an administrator adopts it.
 */
static void
audit_state_alert(struct juki_opcmds *oc)
{
	char why[256];
	int64_t seq;
	enum juki_audit_state st = juki_audit_state(oc->audit, &seq, NULL, why, sizeof(why));

	if (st == JUKI_AUDIT_OK || oc->audit_alerted) {
		return;
	}
	oc->audit_alerted = 1;
	log_error("audit: %s (from entry %lld); work is refused until an administrator runs "
		  "juki-ctl audit adopt",
		  why, (long long)seq);
	juki_alert(oc->env.alerts, st == JUKI_AUDIT_GONE ? "audit-missing" : "audit-rollback", NULL,
		   NULL,
		   "%s (from entry %lld): work is refused until an administrator runs juki-ctl "
		   "audit adopt",
		   why, (long long)seq);
}

int
juki_opcmds_audit(struct juki_opcmds *oc, const char *who, const char *action, const char *target,
		  const char *outcome, const char *detail)
{
	int rc;

	if (oc->audit == NULL) {
		return 0;
	}
	rc = juki_audit_append(oc->audit, now_ms(oc), who, action, target, outcome, detail);
	if (rc == JUKI_EPERM) {
		/* Not the history the node recorded: nothing is written until adopted. */
		audit_state_alert(oc);
		return rc;
	}
	if (rc == 0 && oc->audit_broken) {
		/* Room again (a disk freed, a file system remounted): work goes on. */
		oc->audit_broken = 0;
		log_notice("audit: the operation history is written again");
	}
	if (rc != 0 && !oc->audit_broken) {
		oc->audit_broken = 1;
		log_error("audit: cannot append to the operation history: %s; operations are "
			  "refused until it can",
			  juki_strerror(rc));
		juki_alert(oc->env.alerts, "audit-failed", NULL, NULL,
			   "the operation history cannot be written (%s)", juki_strerror(rc));
	}
	return rc;
}

static void
role_names(unsigned roles, char *buf, size_t len)
{
	static const char *const names[] = {"clerk", "supervisor", "auditor", "administrator"};
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < 4 && off < len; i++) {
		if (roles & (1u << i)) {
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						names[i]);
		}
	}
}

/* What still runs while the history is suspended: to look, and to decide. */
static int
while_suspended(const char *name)
{
	static const char *const allowed[] = {"status",       "alerts",      "audit.show",
					      "audit.verify", "audit.adopt", NULL};

	for (size_t i = 0; allowed[i] != NULL; i++) {
		if (strcmp(name, allowed[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

static int
gate(void *ctx, const struct juki_ctl_cmd *cmd, const struct juki_caller *caller,
     const json_t *args, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	char need[64];

	(void)args;
	oc->audit_target[0] = '\0';
	oc->audit_detail[0] = '\0';
	/*
	 * Every request is recorded, so nothing but looking runs while the
	 * history cannot be written; the entry of each request is tried again,
	 * and the first that is written ends the refusal.
	 */
	if (oc->audit_broken && strcmp(cmd->name, "status") != 0 &&
	    strcmp(cmd->name, "alerts") != 0) {
		return juki_ctl_fail(err, "internal",
				     "the operation history cannot be written: operations are "
				     "refused until it can (第4-4(6))");
	}
	if (juki_audit_check(oc->audit) != JUKI_AUDIT_OK) {
		audit_state_alert(oc);
		/* What lets an administrator look and decide still runs. */
		if (!while_suspended(cmd->name)) {
			char why[200];

			juki_audit_state(oc->audit, NULL, NULL, why, sizeof(why));
			return juki_ctl_fail(
			    err, "audit-suspended",
			    "the operation history is not the one this node "
			    "recorded (%s): work is refused until an administrator "
			    "runs juki-ctl audit adopt (第4-4(6))",
			    why);
		}
	}
	if ((cmd->roles & caller->roles) == 0) {
		role_names(cmd->roles, need, sizeof(need));
		if (caller->op[0] == '\0' && (cmd->roles & JUKI_ROLE_CLERK)) {
			return juki_ctl_fail(err, "forbidden",
					     "%s is clerical work: an operator does it with a card "
					     "on the operator port, not the administrator "
					     "(第2-3(1))",
					     cmd->name);
		}
		return juki_ctl_fail(err, "forbidden", "%s needs the role %s", cmd->name, need);
	}
	if (cmd->dataset != NULL && !juki_caller_has_dataset(caller, cmd->dataset)) {
		return juki_ctl_fail(err, "forbidden",
				     "%s touches the data set %s, which is not one of yours "
				     "(第4-4(5))",
				     cmd->name, cmd->dataset);
	}
	oc->caller = caller;
	return 0;
}

void
juki_opcmds_note(struct juki_opcmds *oc, const char *target, const char *detail)
{
	if (oc == NULL) {
		return;
	}
	if (target != NULL) {
		snprintf(oc->audit_target, sizeof(oc->audit_target), "%s", target);
	}
	if (detail != NULL) {
		snprintf(oc->audit_detail, sizeof(oc->audit_detail), "%s", detail);
	}
}

/* What the history names as the target: an identifier, never a name. */
static void
target_of(struct juki_opcmds *oc, const json_t *args, char *buf, size_t len)
{
	static const char *const keys[] = {"code", "operator", "approval", "job", "lgcode", NULL};

	if (oc->audit_target[0] != '\0') {
		snprintf(buf, len, "%s", oc->audit_target);
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; keys[i] != NULL; i++) {
		const json_t *v = json_object_get(args, keys[i]);

		if (json_is_integer(v)) {
			snprintf(buf, len, "%s=%lld", keys[i], (long long)json_integer_value(v));
			return;
		}
		if (json_is_string(v)) {
			const char *s = json_string_value(v);
			size_t n = 0;

			/* Whatever was sent is bounded and kept to identifier characters. */
			while (s[n] != '\0' && n < 40 &&
			       ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'z') ||
				(s[n] >= 'A' && s[n] <= 'Z') || s[n] == '-' || s[n] == '.' ||
				s[n] == ':' || s[n] == '_')) {
				n++;
			}
			if (n > 0) {
				snprintf(buf, len, "%.*s", (int)n, s);
			}
			return;
		}
	}
}

/*
 * A request whose writes are one with its history entry (a lookup: the
 * count against the operator's allowance, the use of each person's data):
 * they wait in a transaction the request opened, the history entry is
 * appended and the store's note of the history's head joins them, and one
 * commit makes them durable together.  Two fdatasyncs a lookup (the
 * history, then the store) where they were three or four.
 */
static int
request_begin(struct juki_opcmds *oc)
{
	int rc = juki_store_begin(oc->env.store);

	oc->request_txn = rc == 0;
	return rc;
}

static int
done(void *ctx, const char *name, const struct juki_ctl_cmd *cmd, const struct juki_caller *caller,
     const json_t *args, struct juki_ctl_error *err, int failed)
{
	struct juki_opcmds *oc = ctx;
	char target[64];
	int rc;

	(void)cmd;
	target_of(oc, args, target, sizeof(target));
	rc = juki_opcmds_audit(oc, caller->who, name, target[0] ? target : NULL,
			       failed ? err->code : "ok",
			       oc->audit_detail[0] ? oc->audit_detail : NULL);
	if (oc->request_txn) {
		oc->request_txn = 0;
		/* A statement that failed may have ended the transaction already. */
		if (!juki_store_in_txn(oc->env.store)) {
			rc = rc != 0 ? rc : failed ? 0 : JUKI_ESTORE;
		} else if (rc == 0) {
			rc = juki_store_commit(oc->env.store);
		} else {
			juki_store_rollback(oc->env.store);
		}
		if (rc != 0 && !failed) {
			log_warnx("%s: not recorded, the result is withheld: %s", name,
				  juki_strerror(rc));
			juki_ctl_fail(err, "internal",
				      "%s could not be recorded in the operation history: no "
				      "result is given (第4-4(6))",
				      name);
		}
	} else {
		rc = 0;
	}
	oc->caller = NULL;
	oc->audit_target[0] = '\0';
	oc->audit_detail[0] = '\0';
	return rc;
}

const struct juki_ctl_hooks *
juki_opcmds_hooks(struct juki_opcmds *oc)
{
	return &oc->hooks;
}

const struct juki_caller *
juki_opcmds_caller(const struct juki_opcmds *oc)
{
	return oc != NULL ? oc->caller : NULL;
}

/* Argument helpers. */

static const char *
str_arg(const json_t *args, const char *key, const char *what, struct juki_ctl_error *err)
{
	const char *s = json_string_value(json_object_get(args, key));

	if (s == NULL || s[0] == '\0') {
		juki_ctl_fail(err, "usage", "%s: %s", key, what);
	}
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int
id_arg(const json_t *args, const char *key, int64_t *out, struct juki_ctl_error *err)
{
	const json_t *v = json_object_get(args, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		return juki_ctl_fail(err, "usage", "%s: an approval number", key);
	}
	*out = json_integer_value(v);
	return 0;
}

static struct juki_pin_cost
pin_cost(const struct juki_opcmds *oc)
{
	struct juki_pin_cost c = {(uint32_t)(oc->conf.oper->pin_memory / 1024),
				  (uint32_t)oc->conf.oper->pin_passes};

	return c;
}

static int
store_fail(struct juki_opcmds *oc, struct juki_ctl_error *err)
{
	return juki_ctl_fail(err, "internal", "store: %s", juki_store_errmsg(oc->env.store));
}

/* Operators. */

static int
cmd_operator_add(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	struct juki_pin_cost cost = pin_cost(oc);
	const char *id, *pin;
	unsigned roles;
	char why[200];
	int rc;

	if ((id = str_arg(args, "operator", "the operator's id", err)) == NULL ||
	    (pin = str_arg(args, "pin", "the operator's first PIN", err)) == NULL) {
		return JUKI_EINVAL;
	}
	if (juki_roles_from_json(json_object_get(args, "roles"), &roles, why, sizeof(why)) != 0) {
		return juki_ctl_fail(err, "invalid", "%s", why);
	}
	rc = juki_operator_add(oc->env.store, now_ms(oc), id, roles,
			       json_object_get(args, "datasets"), oc->env.datasets, pin, &cost, why,
			       sizeof(why));
	if (rc == JUKI_EDUP) {
		return juki_ctl_fail(err, "conflict", "%s", why);
	}
	if (rc == JUKI_ESTORE) {
		return store_fail(oc, err);
	}
	if (rc != 0) {
		return juki_ctl_fail(err, "invalid", "%s", why);
	}
	*result = json_pack("{s:s,s:o}", "operator", id, "roles", juki_roles_json(roles));
	return 0;
}

static int
cmd_operator_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;

	(void)args;
	*result = juki_operator_list(oc->env.store);
	return *result != NULL ? 0 : store_fail(oc, err);
}

static int
not_found_or_store(struct juki_opcmds *oc, int rc, const char *id, struct juki_ctl_error *err)
{
	if (rc == JUKI_ENOTFOUND) {
		return juki_ctl_fail(err, "not-found", "no operator %s", id);
	}
	return store_fail(oc, err);
}

static int
cmd_operator_set_roles(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	const char *id;
	unsigned roles;
	char why[200];
	int rc;

	if ((id = str_arg(args, "operator", "the operator's id", err)) == NULL) {
		return JUKI_EINVAL;
	}
	if (juki_roles_from_json(json_object_get(args, "roles"), &roles, why, sizeof(why)) != 0) {
		return juki_ctl_fail(err, "invalid", "%s", why);
	}
	rc = juki_operator_set_roles(oc->env.store, now_ms(oc), id, roles,
				     json_object_get(args, "datasets"), oc->env.datasets, why,
				     sizeof(why));
	if (rc == JUKI_EFORMAT) {
		return juki_ctl_fail(err, "invalid", "%s", why);
	}
	if (rc != 0) {
		return not_found_or_store(oc, rc, id, err);
	}
	*result = json_pack("{s:s,s:o,s:O}", "operator", id, "roles", juki_roles_json(roles),
			    "datasets", json_object_get(args, "datasets"));
	return 0;
}

static int
set_lock(struct juki_opcmds *oc, const json_t *args, int locked, json_t **result,
	 struct juki_ctl_error *err)
{
	const char *id = str_arg(args, "operator", "the operator's id", err);
	int rc;

	if (id == NULL) {
		return JUKI_EINVAL;
	}
	rc = juki_operator_set_lock(oc->env.store, now_ms(oc), id, locked, oc->caller->who);
	if (rc != 0) {
		return not_found_or_store(oc, rc, id, err);
	}
	*result = json_pack("{s:s,s:b}", "operator", id, "locked", locked);
	return 0;
}

static int
cmd_operator_lock(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return set_lock(ctx, args, 1, result, err);
}

static int
cmd_operator_unlock(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return set_lock(ctx, args, 0, result, err);
}

static int
cmd_operator_set_pin(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	struct juki_pin_cost cost = pin_cost(oc);
	const char *id, *pin;
	char why[200];
	int rc;

	if ((id = str_arg(args, "operator", "the operator's id", err)) == NULL ||
	    (pin = str_arg(args, "pin", "the new PIN", err)) == NULL) {
		return JUKI_EINVAL;
	}
	rc = juki_operator_set_pin(oc->env.store, now_ms(oc), id, pin, &cost, why, sizeof(why));
	if (rc == JUKI_EFORMAT) {
		return juki_ctl_fail(err, "invalid", "%s", why);
	}
	if (rc != 0) {
		return not_found_or_store(oc, rc, id, err);
	}
	*result = json_pack("{s:s}", "operator", id);
	return 0;
}

/* The operator's own PIN: the session already proved card and PIN. */
static int
cmd_pin_change(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	const struct juki_caller *caller = oc->caller;
	struct juki_pin_cost cost = pin_cost(oc);
	const char *pin;
	char why[200];
	int rc;

	if (caller->op[0] == '\0') {
		return juki_ctl_fail(err, "forbidden", "only an operator has a PIN to change");
	}
	if ((pin = str_arg(args, "new_pin", "the new PIN", err)) == NULL) {
		return JUKI_EINVAL;
	}
	rc = juki_operator_set_pin(oc->env.store, now_ms(oc), caller->op, pin, &cost, why,
				   sizeof(why));
	if (rc == JUKI_EFORMAT) {
		return juki_ctl_fail(err, "invalid", "new_%s", why);
	}
	if (rc != 0) {
		return not_found_or_store(oc, rc, caller->op, err);
	}
	*result = json_pack("{s:s}", "operator", caller->op);
	return 0;
}

/* Approvals. */

static int
kind_valid(const char *kind)
{
	return strcmp(kind, "export") == 0 || strcmp(kind, "correct") == 0;
}

static int
cmd_approval_issue(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	struct juki_operator who;
	const char *kind, *op, *target;
	int64_t now = now_ms(oc), id;
	int rc;

	if ((kind = str_arg(args, "kind", "export or correct", err)) == NULL ||
	    (op = str_arg(args, "operator", "the operator it is for", err)) == NULL ||
	    (target = str_arg(args, "target",
			      "the local-government code (export) or the "
			      "住民票コード (correct)",
			      err)) == NULL) {
		return JUKI_EINVAL;
	}
	if (!kind_valid(kind)) {
		return juki_ctl_fail(err, "usage", "kind: export or correct");
	}
	if (strlen(target) > 32) {
		return juki_ctl_fail(err, "usage", "target: a code");
	}
	if (strcmp(op, oc->caller->op) == 0) {
		return juki_ctl_fail(err, "forbidden",
				     "a supervisor does not approve their own work");
	}
	if ((rc = juki_operator_get(oc->env.store, op, &who)) != 0) {
		return not_found_or_store(oc, rc, op, err);
	}
	if (juki_approval_issue(oc->env.store, now, kind, op, target, oc->caller->who,
				now + oc->conf.oper->approval_valid, &id) != 0) {
		return store_fail(oc, err);
	}
	snprintf(oc->audit_detail, sizeof(oc->audit_detail), "approval=%lld kind=%s for=%s",
		 (long long)id, kind, op);
	*result = json_pack("{s:I,s:s,s:s,s:s,s:I}", "approval", (json_int_t)id, "kind", kind,
			    "operator", op, "target", target, "expires_ms",
			    (json_int_t)(now + oc->conf.oper->approval_valid));
	return 0;
}

/* A supervisor approves or refuses input recorded pending (never their own). */
static int
decide_pending(struct juki_opcmds *oc, const json_t *args, int approve, json_t **result,
	       struct juki_ctl_error *err)
{
	int64_t id;
	int late = 0, rc;

	if (id_arg(args, "approval", &id, err) != 0) {
		return JUKI_EINVAL;
	}
	rc = approve ? juki_approval_confirm(oc->env.store, now_ms(oc), id, oc->caller->who,
					     oc->caller->op, &late)
		     : juki_approval_refuse(oc->env.store, now_ms(oc), id, oc->caller->who,
					    oc->caller->op, &late);
	if (rc == JUKI_EPERM) {
		return juki_ctl_fail(err, "forbidden",
				     "a supervisor does not decide on their own input");
	}
	if (rc == JUKI_ENOTFOUND) {
		return juki_ctl_fail(err, "not-found", "no approval %lld", (long long)id);
	}
	if (rc == JUKI_EEXIST) {
		return juki_ctl_fail(err, "conflict", "approval %lld is not waiting for approval",
				     (long long)id);
	}
	if (rc != 0) {
		return store_fail(oc, err);
	}
	snprintf(oc->audit_detail, sizeof(oc->audit_detail), "approval=%lld%s%s", (long long)id,
		 approve ? "" : " refused", late ? " late" : "");
	if (!approve) {
		juki_alert(oc->env.alerts, "input-refused", NULL, NULL,
			   "input %lld was refused by a supervisor: a correction must follow "
			   "(第4-8(2))",
			   (long long)id);
	}
	*result = json_pack("{s:I,s:s,s:b}", "approval", (json_int_t)id, "state",
			    approve ? "approved" : "refused", "late", late);
	return 0;
}

static int
cmd_approval_confirm(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return decide_pending(ctx, args, 1, result, err);
}

static int
cmd_approval_refuse(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return decide_pending(ctx, args, 0, result, err);
}

static int
cmd_approval_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	const json_t *state = json_object_get(args, "state");
	const json_t *limit = json_object_get(args, "limit");

	if ((state != NULL && !json_is_string(state)) ||
	    (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1))) {
		return juki_ctl_fail(err, "usage",
				     "state: issued, used, pending, approved or refused; "
				     "limit: a count");
	}
	*result = juki_approval_list(oc->env.store, json_string_value(state),
				     limit != NULL ? (size_t)json_integer_value(limit) : 100);
	if (*result == NULL && state != NULL) {
		return juki_ctl_fail(err, "usage",
				     "state: issued, used, pending, approved or refused");
	}
	return *result != NULL ? 0 : store_fail(oc, err);
}

int
juki_opcmds_approval_take(struct juki_opcmds *oc, const json_t *args, const char *kind,
			  const char *target, json_t **info, struct juki_ctl_error *err)
{
	const json_t *v = json_object_get(args, "approval");
	int64_t now = now_ms(oc), id;
	char why[200];
	int rc;

	*info = NULL;
	if (v != NULL) {
		if (id_arg(args, "approval", &id, err) != 0) {
			return JUKI_EINVAL;
		}
		rc = juki_approval_use(oc->env.store, now, id, kind, oc->caller->op, target, why,
				       sizeof(why));
		if (rc == JUKI_ESTORE) {
			return store_fail(oc, err);
		}
		if (rc != 0) {
			return juki_ctl_fail(err, "approval", "%s", why);
		}
		*info = json_pack("{s:I,s:s}", "id", (json_int_t)id, "state", "used");
	} else {
		int64_t deadline = now + oc->conf.oper->approve_within;

		if (juki_approval_pend(oc->env.store, now, kind, oc->caller->op, target, deadline,
				       &id) != 0) {
			return store_fail(oc, err);
		}
		*info = json_pack("{s:I,s:s,s:I}", "id", (json_int_t)id, "state", "pending",
				  "deadline_ms", (json_int_t)deadline);
	}
	snprintf(oc->audit_detail, sizeof(oc->audit_detail), "approval=%lld %s", (long long)id,
		 v != NULL ? "used" : "pending");
	return *info != NULL ? 0 : JUKI_ENOMEM;
}

static void
overdue(void *arg, int64_t id, const char *kind, const char *op, const char *target,
	int64_t deadline_ms)
{
	struct juki_opcmds *oc = arg;
	char when[32];

	(void)target;
	juki_clock_format(deadline_ms, when, sizeof(when));
	juki_alert(oc->env.alerts, "approval-overdue", NULL, NULL,
		   "input %lld (%s by %s) was not approved by a supervisor by %s (第4-8(2))",
		   (long long)id, kind, op, when);
}

static void
approvals_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	juki_opcmds_approvals_check(arg);
}

void
juki_opcmds_approvals_check(struct juki_opcmds *oc)
{
	static const char next_sql[] = "SELECT min(deadline_ms) FROM approvals"
				       " WHERE state = 2 AND reported = 0";
	int64_t now = now_ms(oc);
	sqlite3_stmt *st;

	if (juki_approval_overdue(oc->env.store, now, overdue, oc) < 0) {
		log_warnx("approvals: %s", juki_store_errmsg(oc->env.store));
	}
	if (oc->approvals_due == NULL &&
	    (oc->approvals_due = evtimer_new(oc->env.base, approvals_due, oc)) == NULL) {
		return;
	}
	evtimer_del(oc->approvals_due);
	if ((st = juki_store_prepare(oc->env.store, next_sql)) == NULL) {
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		int64_t wait = sqlite3_column_int64(st, 0) - now + 1;
		struct timeval tv;

		if (wait < 1) {
			wait = 1;
		}
		tv.tv_sec = (time_t)(wait / 1000);
		tv.tv_usec = (suseconds_t)(wait % 1000 * 1000);
		evtimer_add(oc->approvals_due, &tv);
	}
	sqlite3_reset(st);
}

/* The operation history. */

static int
cmd_audit_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	const json_t *op = json_object_get(args, "operator");
	const json_t *since = json_object_get(args, "since_ms");
	const json_t *limit = json_object_get(args, "limit");

	if ((op != NULL && !json_is_string(op)) || (since != NULL && !json_is_integer(since)) ||
	    (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
			       json_integer_value(limit) > 100000))) {
		return juki_ctl_fail(err, "usage",
				     "operator: a URN; since_ms: a time; limit: 1 to 100000");
	}
	*result = juki_audit_show(oc->audit, json_string_value(op),
				  since != NULL ? json_integer_value(since) : 0,
				  limit != NULL ? (size_t)json_integer_value(limit) : 1000);
	return *result != NULL ? 0 : juki_ctl_fail(err, "internal", "cannot read the history");
}

static void *
verify_main(void *arg)
{
	struct verify_job *job = arg;

	job->rc = juki_audit_verify_file_head(job->path, job->cert, &job->head, &job->report,
					      job->err, sizeof(job->err));
	atomic_store(&job->done, 1);
	return NULL;
}

static void
job_free(struct verify_job *job)
{
	if (job == NULL) {
		return;
	}
	pthread_join(job->thread, NULL);
	json_decref(job->report);
	free(job->path);
	free(job->cert);
	free(job);
}

/* The report of a job that is done, with what the daemon itself found while running. */
static int
job_result(struct juki_opcmds *oc, struct verify_job *job, json_t **result,
	   struct juki_ctl_error *err)
{
	const char *reason;
	int64_t seq;
	char why[200];
	json_t *fb;

	if (job->rc != 0) {
		return juki_ctl_fail(err, "internal", "%s", job->err);
	}
	*result = json_deep_copy(job->report);
	if (*result == NULL) {
		return JUKI_ENOMEM;
	}
	/*
	 * A change the daemon found against what it wrote names the entry
	 * where it started, which the file alone may not show.
	 */
	if (juki_audit_state(oc->audit, &seq, &reason, why, sizeof(why)) != JUKI_AUDIT_OK) {
		fb = json_object_get(*result, "first_broken");
		if (!json_is_integer(fb) || json_integer_value(fb) >= seq) {
			json_object_set_new(*result, "ok", json_false());
			json_object_set_new(*result, "first_broken", json_integer(seq));
			json_object_set_new(*result, "reason", json_string(reason));
			json_object_set_new(*result, "unsigned_tail", json_integer(0));
		}
		json_object_set_new(*result, "found", json_string(why));
	}
	json_object_set_new(*result, "job", json_integer(job->id));
	json_object_set_new(*result, "state", json_string("done"));
	return 0;
}

/*
 * audit.verify: {} starts a check of the whole file and answers at once
 * {"job": n, "state": "running"}; {"job": n} answers the same until it is
 * done, then the report with "state": "done".
 */
static int
cmd_audit_verify(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	const json_t *id = json_object_get(args, "job");
	struct verify_job *job;

	if (id != NULL) {
		if (!json_is_integer(id) || oc->job == NULL ||
		    oc->job->id != json_integer_value(id)) {
			return juki_ctl_fail(err, "not-found", "job: no such verification");
		}
		if (!atomic_load(&oc->job->done)) {
			*result = json_pack("{s:I,s:s}", "job", (json_int_t)oc->job->id, "state",
					    "running");
			return 0;
		}
		return job_result(oc, oc->job, result, err);
	}
	if (oc->job != NULL && !atomic_load(&oc->job->done)) {
		*result =
		    json_pack("{s:I,s:s}", "job", (json_int_t)oc->job->id, "state", "running");
		return 0;
	}
	/* Everything appended so far is signed first, so that all of it is checked. */
	juki_audit_checkpoint(oc->audit, now_ms(oc));
	job = calloc(1, sizeof(*job));
	if (job == NULL || (job->path = strdup(oc->audit_path)) == NULL ||
	    (job->cert = strdup(oc->conf.audit->certs != NULL ? oc->conf.audit->certs
							      : oc->conf.cert)) == NULL) {
		if (job != NULL) {
			free(job->path);
			free(job);
		}
		return JUKI_ENOMEM;
	}
	juki_audit_head(oc->audit, &job->head);
	job->id = ++oc->jobs;
	if (pthread_create(&job->thread, NULL, verify_main, job) != 0) {
		free(job->path);
		free(job->cert);
		free(job);
		return juki_ctl_fail(err, "internal", "cannot start the verification");
	}
	job_free(oc->job);
	oc->job = job;
	*result = json_pack("{s:I,s:s}", "job", (json_int_t)job->id, "state", "running");
	return 0;
}

/*
 * audit.adopt: an administrator takes the file now at the path as the
 * history.  The entry the hooks write for it is the first of the adopted
 * chain, and says what was found.
 */
static int
cmd_audit_adopt(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_opcmds *oc = ctx;
	char found[JUKI_AUDIT_FIELD_MAX];
	int rc;

	(void)args;
	rc = juki_audit_adopt(oc->audit, found, sizeof(found));
	if (rc == JUKI_EEXIST) {
		return juki_ctl_fail(err, "conflict",
				     "the operation history is the one this node recorded: "
				     "nothing to adopt");
	}
	if (rc != 0) {
		return juki_ctl_fail(err, "internal", "cannot open the operation history: %s",
				     juki_strerror(rc));
	}
	oc->audit_alerted = 0;
	snprintf(oc->audit_detail, sizeof(oc->audit_detail), "%s", found);
	log_warnx("audit: the administrator adopted the history as it is: %s", found);
	*result = json_pack("{s:b,s:s}", "adopted", 1, "found", found);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* Lookups (第4-4(7)). */

static const char *const *
purposes(const struct juki_opcmds *oc)
{
	return oc->conf.oper->npurposes > 0 ? (const char *const *)oc->conf.oper->purposes
					    : default_purposes;
}

static int
purpose_arg(struct juki_opcmds *oc, const json_t *args, const char **out,
	    struct juki_ctl_error *err)
{
	const char *const *list = purposes(oc);
	const char *p = json_string_value(json_object_get(args, "purpose"));
	char names[256];
	size_t off = 0;

	for (size_t i = 0; p != NULL && list[i] != NULL; i++) {
		if (strcmp(list[i], p) == 0) {
			*out = list[i];
			return 0;
		}
	}
	names[0] = '\0';
	for (size_t i = 0; list[i] != NULL && off < sizeof(names); i++) {
		off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", i ? ", " : "",
					list[i]);
	}
	return juki_ctl_fail(err, "usage", "purpose: every lookup states its purpose, one of: %s",
			     names);
}

static const char rate_put_sql[] = "INSERT INTO lookup_rate (op, slot, at_ms) VALUES (?1, ?2, ?3)"
				   " ON CONFLICT (op, slot) DO UPDATE SET at_ms = excluded.at_ms";
static const char rate_load_sql[] = "SELECT at_ms FROM lookup_rate WHERE op = ?1 AND slot >= 0"
				    " AND at_ms > ?2 ORDER BY at_ms DESC LIMIT ?3";
static const char rate_alerted_sql[] = "SELECT at_ms FROM lookup_rate WHERE op = ?1 AND slot = -1";
static const char rate_clear_sql[] = "DELETE FROM lookup_rate WHERE op = ?1 AND slot >= 0";

/* One slot of op's ring (slot -1: the last alert) into the store. */
static int
rate_put(struct juki_opcmds *oc, const char *op, int64_t slot, int64_t at_ms)
{
	sqlite3_stmt *st = juki_store_prepare(oc->env.store, rate_put_sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, slot);
	sqlite3_bind_int64(st, 3, at_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/*
 * Fill r's ring (cap slots, empty) from the store: the lookups of the last
 * 60 s, at most cap, oldest first from slot 0; the store's rows of the
 * operator are written again in that order, so that slot numbers agree.
 */
static int
rate_load(struct juki_opcmds *oc, struct juki_rate *r, int64_t now)
{
	struct juki_store *store = oc->env.store;
	sqlite3_stmt *st;
	size_t k = 0;
	int own = !juki_store_in_txn(store), rc = 0;

	if ((st = juki_store_prepare(store, rate_alerted_sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, r->op, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		r->alerted_ms = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, rate_load_sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, r->op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now - RATE_WINDOW_MS);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->cap);
	while (k < r->cap && sqlite3_step(st) == SQLITE_ROW) {
		r->times[k++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	/* Newest first from the query: reverse into the ring's order. */
	for (size_t i = 0; i < k / 2; i++) {
		int64_t t = r->times[i];

		r->times[i] = r->times[k - 1 - i];
		r->times[k - 1 - i] = t;
	}
	r->count = k;
	r->next = k % r->cap;
	if (own && (rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, rate_clear_sql)) == NULL) {
		rc = JUKI_ESTORE;
	} else {
		sqlite3_bind_text(st, 1, r->op, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
		sqlite3_reset(st);
	}
	for (size_t i = 0; rc == 0 && i < k; i++) {
		rc = rate_put(oc, r->op, (int64_t)i, r->times[i]);
	}
	if (own) {
		if (rc == 0) {
			rc = juki_store_commit(store);
		} else {
			juki_store_rollback(store);
		}
	}
	return rc;
}

/*
 * Count the caller's lookup, refused ones too; refuse it when the operator
 * made lookups_per_minute others in the 60 seconds before it (a sliding
 * minute: no burst across the turn of a clock minute).  The first refusal
 * of a window raises the alert rate-limited, naming the operator only.
 */
static int
rate_ok(struct juki_opcmds *oc, struct juki_ctl_error *err)
{
	const char *op = oc->caller->op;
	size_t cap = (size_t)oc->conf.oper->lookups_per_minute;
	int64_t now = now_ms(oc);
	struct juki_rate *r = NULL;
	size_t slot;
	int limited, rc;

	for (size_t i = 0; i < oc->nrates; i++) {
		if (strcmp(oc->rates[i].op, op) == 0) {
			r = &oc->rates[i];
		}
	}
	if (r == NULL) {
		struct juki_rate *grown = realloc(oc->rates, (oc->nrates + 1) * sizeof(*grown));

		if (grown == NULL) {
			return JUKI_ENOMEM;
		}
		oc->rates = grown;
		r = &oc->rates[oc->nrates++];
		memset(r, 0, sizeof(*r));
		r->alerted_ms = INT64_MIN;
		snprintf(r->op, sizeof(r->op), "%s", op);
	}
	if (r->cap != cap) {
		/* New, or a reload changed the allowance: counted again from the store. */
		int64_t *times = realloc(r->times, cap * sizeof(*times));

		if (times == NULL) {
			return JUKI_ENOMEM;
		}
		r->times = times;
		r->cap = cap;
		r->next = r->count = 0;
		if ((rc = rate_load(oc, r, now)) != 0) {
			/* Counted afresh by the next lookup, which loads again. */
			r->cap = 0;
			log_warnx("lookup: cannot read the lookup counts: %s",
				  juki_store_errmsg(oc->env.store));
			return juki_ctl_fail(err, "internal", "the lookup counts cannot be read");
		}
	}
	/* Full, the ring's next slot holds the oldest of the last cap lookups. */
	limited = r->count == cap && r->times[r->next] > now - RATE_WINDOW_MS;
	slot = r->next;
	r->times[slot] = now;
	r->next = (r->next + 1) % cap;
	if (r->count < cap) {
		r->count++;
	}
	if (rate_put(oc, op, (int64_t)slot, now) != 0) {
		log_warnx("lookup: cannot record the lookup count: %s",
			  juki_store_errmsg(oc->env.store));
	}
	if (limited) {
		if (r->alerted_ms == INT64_MIN || now - r->alerted_ms >= RATE_WINDOW_MS ||
		    now < r->alerted_ms) {
			r->alerted_ms = now;
			(void)rate_put(oc, op, -1, now);
			juki_alert(oc->env.alerts, "rate-limited", NULL, NULL,
				   "operator %s made more than %zu lookups in 60 s; further "
				   "ones are refused (第4-4(7))",
				   op, cap);
		}
		snprintf(oc->audit_detail, sizeof(oc->audit_detail),
			 "more than %zu lookups in 60 s", cap);
		return juki_ctl_fail(err, "rate-limited",
				     "%zu lookups a minute at most for one operator (第4-4(7))",
				     cap);
	}
	return 0;
}

static void
rates_free(struct juki_opcmds *oc)
{
	for (size_t i = 0; i < oc->nrates; i++) {
		free(oc->rates[i].times);
	}
	free(oc->rates);
	oc->rates = NULL;
	oc->nrates = 0;
}

/* Lookups older than the window count no more: their rows go at every start. */
static void
rates_prune(struct juki_opcmds *oc)
{
	static const char sql[] = "DELETE FROM lookup_rate WHERE at_ms <= ?1";
	sqlite3_stmt *st = juki_store_prepare(oc->env.store, sql);

	if (st == NULL) {
		return;
	}
	sqlite3_bind_int64(st, 1, now_ms(oc) - RATE_WINDOW_MS);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_warnx("lookup: cannot prune the lookup counts: %s",
			  juki_store_errmsg(oc->env.store));
	}
	sqlite3_reset(st);
}

static int
no_wildcard(const char *key, const char *text, struct juki_ctl_error *err)
{
	for (size_t i = 0; wildcards[i] != NULL; i++) {
		if (strstr(text, wildcards[i]) != NULL) {
			return juki_ctl_fail(err, "invalid",
					     "%s: holds \"%s\": lookups match exactly, without "
					     "wildcards (第4-4(7))",
					     key, wildcards[i]);
		}
	}
	return 0;
}

static int
text_arg(const json_t *args, const char *key, size_t max, const char **out,
	 struct juki_ctl_error *err)
{
	const char *s = json_string_value(json_object_get(args, key));
	char detail[128];

	if (s == NULL) {
		return juki_ctl_fail(err, "invalid", "%s: a string", key);
	}
	if (no_wildcard(key, s, err) != 0) {
		return JUKI_EINVAL;
	}
	if (juki_text_valid(s, max, detail, sizeof(detail)) != 0) {
		return juki_ctl_fail(err, "invalid", "%s: %s", key, detail);
	}
	*out = s;
	return 0;
}

/*
 * The prefectural server's own use of identity information (第6-8(5)ア
 * "利用"): each person an operator's lookup found there is a provision
 * record of kind "use", body the operator, purpose the lookup's, so that
 * the person's disclosure request shows it (docs/control.md, disclosure).
 */
static int
note_use(struct juki_opcmds *oc, const json_t *found, const char *purpose)
{
	const json_t *rec;
	size_t i;
	int rc;

	if (oc->env.self->kind != JUKI_KIND_PREF || json_array_size(found) == 0) {
		return 0;
	}
	json_array_foreach(found, i, rec)
	{
		struct juki_provision p = {
		    .kind = "use",
		    .code = json_string_value(json_object_get(rec, "code")),
		    .body = oc->caller->who,
		    .items = "code,name,birth,sex,address,change",
		    .purpose = purpose,
		    .time_ms = now_ms(oc),
		    .origin = oc->env.self->urn,
		};

		if ((rc = juki_provision_add(oc->env.store, &p)) != 0) {
			/* No use half recorded: the request's writes go, its history entry stays.
			 */
			juki_store_rollback(oc->env.store);
			return rc;
		}
	}
	return 0;
}

static int
cmd_lookup(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char *const attrs[] = {"name", "birth", "sex", "address", NULL};
	struct juki_opcmds *oc = ctx;
	struct juki_field_error fe;
	const char *purpose, *key, *name, *address;
	const json_t *v;
	char code[JUKI_JUMIN_CODE_LEN + 1], birth[11], missing[64];
	json_t *found;
	size_t nattrs = 0;
	int more = 0, rc;

	/* One commit for the count, the uses and the history's head, after the entry. */
	if (request_begin(oc) != 0) {
		return store_fail(oc, err);
	}
	/* Every attempt counts, refused ones too: probing is not free. */
	if ((rc = rate_ok(oc, err)) != 0) {
		return rc;
	}
	json_object_foreach((json_t *)args, key, v)
	{
		int known = strcmp(key, "purpose") == 0 || strcmp(key, "code") == 0;

		for (size_t i = 0; attrs[i] != NULL; i++) {
			if (strcmp(key, attrs[i]) == 0) {
				known = 1;
				nattrs++;
			}
		}
		if (!known) {
			return juki_ctl_fail(
			    err, "usage",
			    "%s: not a lookup key; a lookup takes a 住民票コード, or "
			    "name, birth, sex and address together (第4-4(7))",
			    key);
		}
	}
	if ((rc = purpose_arg(oc, args, &purpose, err)) != 0) {
		return rc;
	}
	if (json_object_get(args, "code") != NULL) {
		struct juki_change c;

		if (nattrs > 0) {
			return juki_ctl_fail(err, "usage",
					     "a lookup takes a 住民票コード or the attributes, not "
					     "both");
		}
		if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
			return juki_ctl_fail(err, "invalid",
					     "code: %s (a whole 住民票コード with its check digit; "
					     "no prefix or range)",
					     fe.detail);
		}
		snprintf(oc->audit_target, sizeof(oc->audit_target), "%s", code);
		snprintf(oc->audit_detail, sizeof(oc->audit_detail), "purpose=%s by=code", purpose);
		rc = juki_honnin_current(oc->env.store, code, &c);
		if (rc == JUKI_ENOTFOUND) {
			return juki_ctl_fail(err, "not-found", "no record of %s here", code);
		}
		if (rc != 0) {
			return store_fail(oc, err);
		}
		found = json_array();
		json_array_append_new(found, juki_change_to_json(&c));
	} else {
		int sex;

		missing[0] = '\0';
		for (size_t i = 0, off = 0; attrs[i] != NULL; i++) {
			if (json_object_get(args, attrs[i]) == NULL) {
				off += (size_t)snprintf(missing + off, sizeof(missing) - off, " %s",
							attrs[i]);
			}
		}
		if (missing[0] != '\0') {
			return juki_ctl_fail(err, "usage",
					     "a lookup by attributes needs all of name, birth, sex "
					     "and address (第4-4(7)); missing:%s",
					     missing);
		}
		if (text_arg(args, "name", JUKI_NAME_MAX, &name, err) != 0 ||
		    text_arg(args, "address", JUKI_ADDRESS_MAX, &address, err) != 0) {
			return JUKI_EINVAL;
		}
		if (json_is_string(json_object_get(args, "birth")) &&
		    no_wildcard("birth", json_string_value(json_object_get(args, "birth")), err)) {
			return JUKI_EINVAL;
		}
		if (juki_json_date(args, "birth", birth, &fe) != 0) {
			return juki_ctl_fail(err, "invalid",
					     "birth: a whole date YYYY-MM-DD (no year or month "
					     "alone, no range)");
		}
		v = json_object_get(args, "sex");
		if (!json_is_integer(v) ||
		    (json_integer_value(v) != 1 && json_integer_value(v) != 2)) {
			return juki_ctl_fail(err, "invalid", "sex: 1 (male) or 2 (female)");
		}
		sex = (int)json_integer_value(v);
		found = juki_honnin_find(oc->env.store, name, birth, sex, address,
					 (size_t)oc->conf.oper->lookup_max, &more);
		if (found == NULL) {
			return store_fail(oc, err);
		}
		if (json_array_size(found) > 0) {
			snprintf(
			    oc->audit_target, sizeof(oc->audit_target), "%s",
			    json_string_value(json_object_get(json_array_get(found, 0), "code")));
		}
		snprintf(oc->audit_detail, sizeof(oc->audit_detail),
			 "purpose=%s by=attributes found=%zu%s", purpose, json_array_size(found),
			 more ? "+" : "");
	}
	if ((rc = note_use(oc, found, purpose)) != 0) {
		json_decref(found);
		return store_fail(oc, err);
	}
	*result = json_pack("{s:s,s:o,s:b}", "purpose", purpose, "records", found, "capped", more);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

/* Bulk output (第4-8(2)). */

static int
cmd_export(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char count_sql[] =
	    "SELECT count(*) FROM honnin WHERE lgcode = ?1 AND kind != 1";
	static const char rows_sql[] =
	    "SELECT rec FROM honnin WHERE lgcode = ?1 AND kind != 1 ORDER BY code";
	struct juki_opcmds *oc = ctx;
	const struct juki_node_operator *rules = oc->conf.oper;
	struct juki_field_error fe;
	const char *purpose;
	char lgcode[JUKI_LGCODE_LEN + 1];
	json_t *approval = NULL, *records;
	sqlite3_stmt *st;
	int64_t n;
	int rc;

	if ((rc = purpose_arg(oc, args, &purpose, err)) != 0) {
		return rc;
	}
	if (json_object_get(args, "lgcode") == NULL && oc->env.self->kind == JUKI_KIND_CS) {
		/* A CS's id is its own local-government code. */
		snprintf(lgcode, sizeof(lgcode), "%.6s", oc->env.self->id);
	} else if (juki_json_code(args, "lgcode", 1, lgcode, sizeof(lgcode), &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "lgcode: %s", fe.detail);
	}
	snprintf(oc->audit_target, sizeof(oc->audit_target), "%s", lgcode);
	if ((st = juki_store_prepare(oc->env.store, count_sql)) == NULL) {
		return store_fail(oc, err);
	}
	sqlite3_bind_text(st, 1, lgcode, -1, SQLITE_STATIC);
	n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (n < 0) {
		return store_fail(oc, err);
	}
	snprintf(oc->audit_detail, sizeof(oc->audit_detail), "purpose=%s records=%lld", purpose,
		 (long long)n);
	if (n > rules->export_max) {
		return juki_ctl_fail(err, "too-large",
				     "%lld records: one export returns %lld at most", (long long)n,
				     (long long)rules->export_max);
	}
	if (n > rules->bulk_records && json_object_get(args, "approval") == NULL) {
		return juki_ctl_fail(
		    err, "approval-required",
		    "%lld records: output of more than %lld needs a supervisor's approval "
		    "given beforehand (第4-8(2)): approval of kind export on target %s",
		    (long long)n, (long long)rules->bulk_records, lgcode);
	}
	/* Read before the approval is used, so that a failed read does not spend it. */
	if ((st = juki_store_prepare(oc->env.store, rows_sql)) == NULL ||
	    (records = json_array()) == NULL) {
		return store_fail(oc, err);
	}
	sqlite3_bind_text(st, 1, lgcode, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_array_append_new(records,
				      json_loadb(sqlite3_column_blob(st, 0),
						 (size_t)sqlite3_column_bytes(st, 0), 0, NULL));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(records);
		return store_fail(oc, err);
	}
	if (n > rules->bulk_records) {
		if ((rc = juki_opcmds_approval_take(oc, args, "export", lgcode, &approval, err)) !=
		    0) {
			json_decref(records);
			return rc;
		}
		snprintf(oc->audit_detail, sizeof(oc->audit_detail),
			 "purpose=%s records=%lld approval=%lld", purpose, (long long)n,
			 (long long)json_integer_value(json_object_get(approval, "id")));
	}
	*result = json_pack("{s:s,s:s,s:I,s:o,s:o}", "lgcode", lgcode, "purpose", purpose, "count",
			    (json_int_t)n, "records", records, "approval",
			    approval != NULL ? approval : json_null());
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

#define CLERK JUKI_ROLE_CLERK
#define SUPER JUKI_ROLE_SUPERVISOR
#define AUDIT JUKI_ROLE_AUDITOR
#define ADMIN JUKI_ROLE_ADMIN

const struct juki_ctl_cmd juki_opcmds[] = {
    {"operator.add", cmd_operator_add, "a new operator (args: operator, roles, datasets, pin)",
     ADMIN, NULL},
    {"operator.list", cmd_operator_list, "operators, their roles, data sets and locks",
     SUPER | AUDIT | ADMIN, NULL},
    {"operator.set-roles", cmd_operator_set_roles,
     "an operator's roles and data sets (args: operator, roles, datasets)", ADMIN, NULL},
    {"operator.lock", cmd_operator_lock, "lock an operator (args: operator)", SUPER | ADMIN, NULL},
    {"operator.unlock", cmd_operator_unlock,
     "unlock an operator and clear the count of wrong PINs (args: operator)", SUPER | ADMIN, NULL},
    {"operator.set-pin", cmd_operator_set_pin,
     "a new PIN for an operator who lost theirs (args: operator, pin)", ADMIN, NULL},
    {"pin.change", cmd_pin_change, "change your own PIN (args: new_pin)",
     CLERK | SUPER | AUDIT | ADMIN, NULL},
    {"approval.issue", cmd_approval_issue,
     "approve beforehand, once (args: kind export|correct, operator, target)", SUPER, NULL},
    {"approval.confirm", cmd_approval_confirm,
     "approve input recorded without approval (args: approval)", SUPER, NULL},
    {"approval.refuse", cmd_approval_refuse,
     "refuse input recorded without approval: a correction must follow (args: approval)", SUPER,
     NULL},
    {"approval.list", cmd_approval_list, "approvals, newest first (args: state, limit)",
     CLERK | SUPER | AUDIT, NULL},
    {"audit.show", cmd_audit_show,
     "the operation history, oldest first (args: operator, since_ms, limit)", SUPER | AUDIT | ADMIN,
     NULL},
    {"audit.verify", cmd_audit_verify,
     "check the history's hash chain and signed checkpoints in the background; names the first "
     "broken entry (args: job, to ask for the report)",
     SUPER | AUDIT | ADMIN, NULL},
    {"audit.adopt", cmd_audit_adopt,
     "take the history file as it is after audit-missing or audit-rollback; recorded with what "
     "was found",
     ADMIN, NULL},
    {"lookup", cmd_lookup,
     "a person's current record by 住民票コード, or by name, birth, sex and address exactly "
     "(args: purpose, code | name, birth, sex, address)",
     CLERK | SUPER, "honnin"},
    {"export", cmd_export,
     "the current records of a municipality; over operator.bulk_records needs an approval "
     "(args: purpose, lgcode, approval)",
     CLERK, "honnin"},
    {NULL, NULL, NULL, 0, NULL},
};

int
juki_opcmds_new(const struct juki_opcmds_env *env, const struct juki_opcmds_conf *conf,
		const char *audit_path, struct juki_tls *signer, struct juki_opcmds **out,
		char *err, size_t errlen)
{
	struct juki_opcmds *oc = calloc(1, sizeof(*oc));
	int rc;

	*out = NULL;
	if (oc == NULL || (oc->audit_path = strdup(audit_path)) == NULL) {
		free(oc);
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	oc->env = *env;
	oc->conf = *conf;
	oc->hooks.gate = gate;
	oc->hooks.done = done;
	oc->hooks.ctx = oc;
	if ((rc = juki_audit_open(oc->audit_path, signer, conf->audit->checkpoint_every, &oc->audit,
				  err, errlen)) != 0) {
		free(oc->audit_path);
		free(oc);
		return rc;
	}
	if ((rc = juki_audit_bind(oc->audit, env->store)) != 0) {
		juki_seterr(err, errlen, "%s: cannot remember the history's head in the store",
			    oc->audit_path);
		juki_audit_close(oc->audit);
		free(oc->audit_path);
		free(oc);
		return rc;
	}
	audit_state_alert(oc);
	juki_opcmds_audit(oc, "-", "start", NULL, "ok", env->name);
	rates_prune(oc);
	*out = oc;
	return 0;
}

void
juki_opcmds_reloaded(struct juki_opcmds *oc, const struct juki_opcmds_conf *conf,
		     struct juki_tls *signer)
{
	oc->conf = *conf;
	juki_audit_set_signer(oc->audit, signer);
}

void
juki_opcmds_free(struct juki_opcmds *oc)
{
	if (oc == NULL) {
		return;
	}
	if (oc->approvals_due != NULL) {
		event_free(oc->approvals_due);
	}
	rates_free(oc);
	job_free(oc->job);
	juki_opcmds_audit(oc, "-", "stop", NULL, "ok", oc->env.name);
	juki_audit_checkpoint(oc->audit, now_ms(oc));
	juki_audit_close(oc->audit);
	free(oc->audit_path);
	free(oc);
}

struct juki_audit *
juki_opcmds_history(struct juki_opcmds *oc)
{
	return oc != NULL ? oc->audit : NULL;
}
