/*
 * juki-prefd — the prefectural server (都道府県サーバ).
 *
 * So far it receives 転出確定通知 from the municipalities of its prefecture
 * and records each against the person (第6-3(2)); identity information and
 * its propagation to the national server come with the identity issue.
 */
#ifndef JUKI_PREFSERVER_PREFD_H
#define JUKI_PREFSERVER_PREFD_H

#include <jansson.h>

#include "juki/control.h"
#include "juki/daemon.h"
#include "juki/inbound.h"
#include "juki/node.h"

struct prefd_conf {
	struct juki_node_conf node;
};

struct prefd {
	struct juki_node node; /* first: handlers and commands receive it as ctx */
	const struct prefd_conf *conf;
};

extern const struct juki_conf_key prefd_conf_keys[];
extern const struct juki_daemon_ops prefd_ops;
extern const struct juki_schema prefd_schema;

/* 転出確定通知 from a municipality of the prefecture. */
int prefd_handle_tenshutsu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* "confirmations": the 転出確定通知 recorded (args: code, limit). */
int prefd_cmd_confirmations(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);

#endif
