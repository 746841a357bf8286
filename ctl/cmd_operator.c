/*
 * Operators, approvals, lookups and exports (第4-4, 第4-8(2)): thin
 * wrappers; the daemon checks roles, data sets and every rule.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "juki/records/operator.h"

/*
 * operator add, operator set-pin, pin change: the request with a new PIN,
 * from --new-pin-fd or asked twice.  Never argv or the environment.
 */
static int
cmd_new_pin(struct ctl *ctl, const struct ctl_req *req)
{
	char pin[JUKI_PIN_MAX + 2];
	json_t *args;
	int rc;

	rc = ctl_new_secret((int)ctl_num(req, "new-pin-fd", -1), "new PIN", "new PIN: ", pin,
			    sizeof(pin));
	if (rc != CTL_OK) {
		return rc;
	}
	args = json_deep_copy(req->args);
	json_object_set_new(args, strcmp(req->cmd->call, "pin.change") == 0 ? "new_pin" : "pin",
			    json_string(pin));
	OPENSSL_cleanse(pin, sizeof(pin));
	return ctl_send(ctl, req->cmd->call, NULL, args);
}

/* approve export|correct --operator X --target T   /   approve pending N */
static int
cmd_approve(struct ctl *ctl, const struct ctl_req *req)
{
	const char *kind = ctl_val(req, "KIND");
	int pending = strcmp(kind, "pending") == 0;
	json_t *args;

	if (pending != (ctl_val(req, "N") != NULL) ||
	    pending == (ctl_val(req, "operator") != NULL || ctl_val(req, "target") != NULL) ||
	    (!pending && (ctl_val(req, "operator") == NULL || ctl_val(req, "target") == NULL))) {
		return ctl_usage(req->cmd);
	}
	if (pending) {
		return ctl_send(ctl, "approval.confirm", NULL, json_incref(req->args));
	}
	args = json_deep_copy(req->args);
	json_object_set_new(args, "kind", json_string(kind));
	return ctl_send(ctl, "approval.issue", NULL, args);
}

/* refuse pending N */
static int
cmd_refuse(struct ctl *ctl, const struct ctl_req *req)
{
	if (strcmp(ctl_val(req, "pending"), "pending") != 0) {
		return ctl_usage(req->cmd);
	}
	return ctl_run(ctl, req);
}

#define ID_ROW      CTL_ARG_ROW("ID", "operator")
#define NEW_PIN_ROW CTL_OPT_ROW("new-pin-fd", CTL_FD, NULL, "N")
#define ROLES_ROWS                                                                                 \
	CTL_NEED_ROW("roles", CTL_LIST, "roles", "R[,R]"),                                         \
	    CTL_NEED_ROW("datasets", CTL_LIST, "datasets", "D[,D]")

const struct ctl_cmd ctl_operator_cmds[] = {
    {"operator add", cmd_new_pin, "operator.add",
     "a new operator (roles: clerk, supervisor, auditor, administrator); their first "
     "PIN is asked twice, or read from fd N",
     .opts = {ID_ROW, ROLES_ROWS, NEW_PIN_ROW}},
    {"operator list", ctl_run, "operator.list",
     .help = "operators, their roles, data sets and locks"},
    {"operator lock", ctl_run, "operator.lock", "lock an operator", .opts = {ID_ROW}},
    {"operator unlock", ctl_run, "operator.unlock",
     "unlock an operator and clear the count of wrong PINs (a supervisor)", .opts = {ID_ROW}},
    {"operator set-roles", ctl_run, "operator.set-roles", "an operator's roles and data sets",
     .opts = {ID_ROW, ROLES_ROWS}},
    {"operator set-pin", cmd_new_pin, "operator.set-pin",
     "a new PIN for an operator who lost theirs", .opts = {ID_ROW, NEW_PIN_ROW}},
    {"pin change", cmd_new_pin, "pin.change", "change your own PIN (an operator)",
     .opts = {NEW_PIN_ROW}},
    {"approve", cmd_approve, NULL,
     "a supervisor approves beforehand (used once), or approves input recorded pending",
     .synopsis = "export|correct --operator X --target T | pending N",
     .opts = {CTL_ARG_ROW("KIND", NULL),
	      {"N", 0, CTL_INT, CTL_ARG | CTL_OPTIONAL, "approval", "N", 1, LLONG_MAX, NULL},
	      CTL_OPT_ROW("operator", CTL_STRING, "operator", "X"),
	      CTL_OPT_ROW("target", CTL_STRING, "target", "T")}},
    {"refuse", cmd_refuse, "approval.refuse",
     "a supervisor refuses input recorded pending: a correction must follow",
     .opts = {CTL_ARG_ROW("pending", NULL),
	      {"N", 0, CTL_INT, CTL_ARG, "approval", "N", 1, LLONG_MAX, NULL}}},
    {"approvals", ctl_run, "approval.list", "approvals, newest first",
     .opts = {CTL_OPT_ROW("state", CTL_STRING, "state", "issued|used|pending|approved|refused"),
	      CTL_INT_ROW("limit", "limit", 1, LLONG_MAX)}},
    {"lookup", ctl_run, "lookup",
     "a person's current record: by 住民票コード, or by all four attributes matched "
     "exactly",
     .synopsis = "--purpose P (CODE | --name N --birth YYYY-MM-DD --sex 1|2 --address A)",
     .opts = {CTL_OPT_ROW("purpose", CTL_STRING, "purpose", "P"),
	      {"CODE", 0, CTL_STRING, CTL_ARG | CTL_OPTIONAL, "code", "CODE", 0, 0, NULL},
	      CTL_OPT_ROW("name", CTL_STRING, "name", "N"),
	      CTL_OPT_ROW("birth", CTL_STRING, "birth", "YYYY-MM-DD"),
	      CTL_OPT_ROW("sex", CTL_SEX, "sex", "1|2"),
	      CTL_OPT_ROW("address", CTL_STRING, "address", "A")}},
    {"export", ctl_run, "export",
     "the current records of a municipality; more than operator.bulk_records need an "
     "approval",
     .opts = {CTL_NEED_ROW("purpose", CTL_STRING, "purpose", "P"),
	      CTL_OPT_ROW("lgcode", CTL_STRING, "lgcode", "C"),
	      CTL_INT_ROW("approval", "approval", 1, LLONG_MAX)}},
    {.name = NULL},
};
