/*
 * juki — notices (第4-7(3)): a watcher (the national server, a prefecture)
 * tells the nodes it watches something an operator must read — a planned
 * stop, a certificate to renew, a fault found on the network — and sees
 * who has read it (docs/protocol.md, the service monitor).
 *
 *   monitor.notice      watcher -> watched node  {"id", "time", "severity", "text"}
 *   monitor.notice.ack  node -> the notice's sender  {"id", "by", "time"}
 *
 * Both go through the outbox (durable, in order, acknowledged).  A node
 * takes a notice only from one of its watchers (monitor.watchers, or the
 * derived list) and refuses any other with "not-watcher"; the sender takes
 * an ack only for a notice it sent to that node ("unknown-notice").
 * The text is 1..JUKI_NOTICE_TEXT_MAX bytes of UTF-8 without control
 * characters (C0, DEL, C1): it is shown on an operator's terminal as it is.
 *
 * Tables (component "notice"):
 *   notice_sent(id PRIMARY KEY, time_ms, severity, text, by)
 *   notice_dest(id, node, state: queued|delivered|refused, reason,
 *               acked_ms, acked_by, msg_id; PRIMARY KEY(id, node)) -- at the sender
 *   notice_received(id PRIMARY KEY, sender, time_ms, received_ms, severity,
 *               text, acked_ms, acked_by)                    -- at the node
 *
 * Control commands (JUKI_NOTICE_CMDS, in the monitor's table): notice.send,
 * notice.list, notice.ack; each is recorded in the operation history with
 * the notice's id as target (never its text).
 */
#ifndef JUKI_NOTICE_H
#define JUKI_NOTICE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/inbound.h"
#include "juki/records/operator.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

#define JUKI_NOTICE_TEXT_MAX 1000 /* bytes of UTF-8 */
#define JUKI_NOTICE_BY_MAX   JUKI_URN_MAX
/* Recipients of one notice.send at most. */
#define JUKI_NOTICE_TO_MAX 2000
/* Received notices "status" shows. */
#define JUKI_NOTICE_RECENT 5

#define JUKI_NOTICE_NSTEPS 1
extern const struct juki_migration juki_notice_steps[JUKI_NOTICE_NSTEPS];
#define JUKI_NOTICE_SCHEMA                                                                         \
	{                                                                                          \
		"notice", juki_notice_steps, JUKI_NOTICE_NSTEPS                                    \
	}

struct juki_node;

/* A notice as the message carries it. */
struct juki_notice {
	char id[JUKI_UUID_LEN + 1];
	int64_t time_ms;
	char severity[16]; /* info, warning, critical */
	char text[JUKI_NOTICE_TEXT_MAX + 1];
};

/*
 * juki_notice_text_check() - 1..JUKI_NOTICE_TEXT_MAX bytes of valid UTF-8
 * (no overlong form, no surrogate) without a control character (C0, DEL,
 * C1).  0, or JUKI_EINVAL with why (a sentence naming the rule and the
 * byte offset).
 */
int juki_notice_text_check(const char *text, size_t len, char *why, size_t whylen);

/* juki_notice_severity_valid() - "info", "warning" or "critical". */
int juki_notice_severity_valid(const char *severity);

/*
 * juki_notice_parse() - the body of a monitor.notice: exactly its four
 * members, each checked.  0, or JUKI_REJECT with rej (invalid-field
 * "<member>: <rule>").
 */
int juki_notice_parse(const json_t *body, struct juki_notice *out, struct juki_reject *rej);

/*
 * juki_notice_ack_parse() - the body of a monitor.notice.ack: {"id", "by",
 * "time"}.  0, or JUKI_REJECT with rej.
 */
int juki_notice_ack_parse(const json_t *body, char id[JUKI_UUID_LEN + 1],
			  char by[JUKI_NOTICE_BY_MAX], int64_t *time_ms, struct juki_reject *rej);

/*
 * juki_notice_store_received() - at the node: keep a notice from sender,
 * once (a notice held already is left as it is).  In the caller's
 * transaction.  0 or JUKI_ESTORE.
 */
int juki_notice_store_received(struct juki_store *store, const char *sender,
			       const struct juki_notice *n, int64_t now_ms);

/*
 * juki_notice_store_acked() - at the sender: node read notice id (by, at
 * time_ms).  JUKI_ENOTFOUND when no such notice was sent to that node.
 */
int juki_notice_store_acked(struct juki_store *store, const char *id, const char *node,
			    const char *by, int64_t time_ms);

/* juki_notice_status() - {"unacked": n, "recent": [...]} of the received notices. */
json_t *juki_notice_status_of(struct juki_store *store);
json_t *juki_notice_status(struct juki_node *node);

/*
 * juki_notice_on_ack() - for the node's on_ack: the delivery of a notice
 * (accepted, or refused with its reason) noted per recipient.  0 or a
 * negative code; other messages are left alone.
 */
int juki_notice_on_ack(struct juki_node *node, const struct juki_outbox_entry *entry,
		       const struct juki_ack *ack);

/* Handlers (ctx: the node). */
int juki_notice_handle(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int juki_notice_handle_ack(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

#define JUKI_NOTICE_HANDLERS                                                                       \
	{JUKI_MSG_NOTICE, JUKI_SVC_MONITOR, juki_notice_handle, 0, 0, NULL},                       \
	{                                                                                          \
		JUKI_MSG_NOTICE_ACK, JUKI_SVC_MONITOR, juki_notice_handle_ack, 0, 0, NULL          \
	}

/* Control commands (ctx: the node). */
int juki_notice_cmd_send(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_notice_cmd_list(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_notice_cmd_ack(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

#define JUKI_NOTICE_CMDS                                                                           \
	{"notice.send", juki_notice_cmd_send,                                                      \
	 "send a notice to watched nodes (第4-7(3)) (args: to: [urn | \"all\" | \"pref:NN\"], "   \
	 "severity, text)",                                                                        \
	 JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, NULL},                                            \
	    {"notice.list", juki_notice_cmd_list,                                                  \
	     "notices sent (with each recipient's state) and received, newest first (args: "       \
	     "limit)",                                                                             \
	     JUKI_ROLE_ALL, NULL},                                                                 \
	{                                                                                          \
		"notice.ack", juki_notice_cmd_ack,                                                 \
		    "acknowledge a received notice: its sender sees who read it (args: id)",       \
		    JUKI_ROLE_ALL, NULL                                                            \
	}

#endif
