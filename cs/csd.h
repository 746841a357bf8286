/*
 * juki-csd — the municipal communication server (コミュニケーションサーバ).
 *
 * It keeps the identity information of the municipality's residents, records
 * move-ins (転入) entered by clerks and notifies the former municipality
 * (転入通知, 第6-2); on a 転入通知 from another municipality it marks the
 * person as moved out and notifies its prefecture (転出確定通知, 第6-3).
 */
#ifndef JUKI_CS_CSD_H
#define JUKI_CS_CSD_H

#include <jansson.h>

#include "juki/control.h"
#include "juki/daemon.h"
#include "juki/inbound.h"
#include "juki/msg.h"
#include "juki/node.h"

struct csd_conf {
	struct juki_node_conf node;
	char *prefecture; /* the prefectural server's identity; default from our code */
};

struct csd {
	struct juki_node node; /* first: handlers and commands receive it as ctx */
	const struct csd_conf *conf;
	struct juki_ident pref;
};

extern const struct juki_conf_key csd_conf_keys[];
extern const struct juki_daemon_ops csd_ops;
extern const struct juki_schema csd_schema;

/* Control commands of tennyu.c. */
int csd_cmd_resident_add(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_resident_show(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);
int csd_cmd_movein(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_movein_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

/* 転入通知 received from the municipality a resident moved to. */
int csd_handle_tennyu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* Outcome of a notice we sent, recorded with the ack. */
int csd_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack);

/* The counts "status" adds for a CS. */
json_t *csd_status(struct juki_node *node);

#endif
