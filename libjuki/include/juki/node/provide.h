/*
 * juki — provision of identity information to agencies and executive
 * bodies (第6-8(1)–(5)) at a prefectural or the national server: the
 * agreements (協議) it provides under, the 事務 list it checks them against,
 * the handlers of provide.query and provide.batch, and the control commands
 * agreement.* (docs/protocol.md §11, docs/control.md, docs/operations.md).
 *
 * Every check of a request runs before any record is read: the sender is
 * an agency or executive body (not-a-body) speaking through a staff card
 * (no-staff-card); an executive body at a prefectural server belongs to
 * that prefecture (other-prefecture); the agreement names the body and is
 * active, holds the 事務 (still on the 事務 list), allows the items asked and
 * the method, and the queries of the Japan day stay within its cap; a bulk
 * batch carries the 責任者's valid approval.  Each person provided leaves a
 * provision record (records/provision.h).
 *
 * Shared by juki-prefd and juki-jlisd, as node/conflict.c is: the handlers
 * and commands find the state in the node's JUKI_MODULE_PROVIDE slot
 * (node.h), which juki_provide_start() fills (juki_provide_of()).
 */
#ifndef JUKI_NODE_PROVIDE_H
#define JUKI_NODE_PROVIDE_H

#include <stdint.h>

#include <jansson.h>

#include "juki/base/config.h"
#include "juki/node/control.h"
#include "juki/node/inbound.h"
#include "juki/node/node.h"
#include "juki/wire/msg.h"

/* The `provide:` section of a providing server's configuration. */
struct juki_provide_conf {
	char *jimu; /* the 事務 list file (CSV); NULL: none, so no agreement can be added */
};

/* The `provision:` section: provision records (第6-8(5)). */
struct juki_provision_conf {
	int64_t keep; /* years a provision record is kept (the purge date rule); 0: forever */
};

extern const struct juki_conf_key juki_provide_keys[];
extern const struct juki_conf_key juki_provision_keys[];

/* The two sections, for a daemon's key table: st its conf, fp and fv the fields. */
#define JUKI_PROVIDE_CONF_KEYS(st, fp, fv)                                                         \
	JUKI_CONF_SECTIONKEY(                                                                      \
	    st, fp, "provide", juki_provide_keys,                                                  \
	    "Provision to agencies and executive bodies (第6-8(1)): the 事務 list."),              \
	    JUKI_CONF_SECTIONKEY(                                                                  \
		st, fv, "provision", juki_provision_keys,                                          \
		"Provision records (提供状況, 第6-8(5)): how long they are kept.")

struct juki_provide;

/* juki_provide_of() - the node's provide state (its module slot); NULL when not started. */
struct juki_provide *juki_provide_of(struct juki_node *node);

/*
 * juki_provide_check() - whether conf's 事務 list file loads (at -n, start
 * and reload, from the daemon's check()).  0 or JUKI_ECONFIG with err.
 */
int juki_provide_check(const struct juki_provide_conf *conf, char *err, size_t errlen);

/*
 * juki_provide_start() - load the 事務 list, and take the node's
 * JUKI_MODULE_PROVIDE slot; NULL on failure with err (also when the node
 * runs it already).
 * juki_provide_reload() - load it again (check() passed it); the old list
 * stays on failure (logged).  juki_provide_stop() - free; NULL is fine.
 */
struct juki_provide *juki_provide_start(struct juki_node *node,
					const struct juki_provide_conf *conf, char *err,
					size_t errlen);
void juki_provide_reload(struct juki_provide *p, const struct juki_provide_conf *conf);
void juki_provide_stop(struct juki_provide *p);

/* juki_provide_purge_conf() - provision.keep into a purge's configuration. */
void juki_provide_purge_conf(const struct juki_provision_conf *conf, struct juki_purge_conf *purge);

/* The handlers (ctx: the node): provide.query (not bulk), provide.batch (bulk). */
int juki_provide_handle_query(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int juki_provide_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

#define JUKI_PROVIDE_HANDLERS                                                                      \
	{JUKI_MSG_PROVIDE_QUERY, JUKI_SVC_PROVIDE, juki_provide_handle_query, 0, 0, NULL},         \
	{                                                                                          \
		JUKI_MSG_PROVIDE_BATCH, JUKI_SVC_PROVIDE, juki_provide_handle_batch, 0, 1, NULL    \
	}

/*
 * The control commands (ctx: the node), for a daemon's command table
 * (JUKI_PROVIDE_CMDS): agreement.add, .show, .list, .approve, .suspend,
 * .resume, .end and jimu.list; data set "provide".
 */
int juki_provide_cmd_add(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_provide_cmd_show(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);
int juki_provide_cmd_list(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);
int juki_provide_cmd_approve(void *ctx, const json_t *args, json_t **result,
			     struct juki_ctl_error *err);
int juki_provide_cmd_suspend(void *ctx, const json_t *args, json_t **result,
			     struct juki_ctl_error *err);
int juki_provide_cmd_resume(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);
int juki_provide_cmd_end(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_provide_cmd_jimu(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);

#define JUKI_PROVIDE_LOOK (JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN)
#define JUKI_PROVIDE_CMDS                                                                          \
	{"agreement.add", juki_provide_cmd_add,                                                    \
	 "a new agreement (協議) with a body, pending approval (args: id, body, jimu, items, "   \
	 "methods, daily_cap, bulk_threshold, keep_days, responsible)",                            \
	 JUKI_ROLE_SUPERVISOR, "provide"},                                                         \
	    {"agreement.show", juki_provide_cmd_show, "an agreement and today's use (args: id)",   \
	     JUKI_PROVIDE_LOOK, "provide"},                                                        \
	    {"agreement.list", juki_provide_cmd_list, "agreements by id (args: state)",            \
	     JUKI_PROVIDE_LOOK, "provide"},                                                        \
	    {"agreement.approve", juki_provide_cmd_approve,                                        \
	     "approve a pending agreement: another supervisor than the one who added it (args: "   \
	     "id)",                                                                                \
	     JUKI_ROLE_SUPERVISOR, "provide"},                                                     \
	    {"agreement.suspend", juki_provide_cmd_suspend,                                        \
	     "suspend an active agreement (args: id)", JUKI_ROLE_SUPERVISOR, "provide"},           \
	    {"agreement.resume", juki_provide_cmd_resume,                                          \
	     "resume a suspended agreement (args: id)", JUKI_ROLE_SUPERVISOR, "provide"},          \
	    {"agreement.end", juki_provide_cmd_end, "end an agreement for good (args: id)",        \
	     JUKI_ROLE_SUPERVISOR, "provide"},                                                     \
	{                                                                                          \
		"jimu.list", juki_provide_cmd_jimu,                                                \
		    "the 事務 list agreements are checked against", JUKI_PROVIDE_LOOK, "provide"   \
	}

/*
 * juki_provide_record() - write the provision record of one person given
 * to a body, inside the caller's transaction (a hook for other parts:
 * juki_provision_add() with this server as origin).  0 or a negative code.
 */
int juki_provide_record(struct juki_node *node, const char *code, const char *body,
			const char *staff, const char *agreement, const char *jimu, unsigned items,
			const char *purpose, const char *request);

/* juki_provide_status() - {"agreements": {state: n}, "provisions": n, "jimu": n}; NULL on ENOMEM.
 */
json_t *juki_provide_status(struct juki_node *node);

#endif
