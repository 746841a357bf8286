/*
 * juki-prefd — the prefectural server (都道府県サーバ).
 *
 * It records the identity information (本人確認情報) the municipalities of
 * its prefecture send (第6-6(2)), with its history, and passes every new
 * record on to the national server (第6-6(3)); it records the 転出確定通知
 * of those municipalities against the person (第6-3(2)); and it answers the
 * municipalities' update-count queries (更新件数リスト).  It keeps the
 * records of what it and the national server provided of its residents'
 * identity information, and of its own use of it, and discloses them to
 * the person (第6-8(5); "disclosure").
 */
#ifndef JUKI_PREFSERVER_PREFD_H
#define JUKI_PREFSERVER_PREFD_H

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/ninsho.h"
#include "juki/node/node.h"
#include "juki/node/provide.h"

struct prefd_conf {
	struct juki_node_conf node;
	char *national; /* the national server (指定情報処理機関), urn:juki:jlis:0 */
	char **centres; /* the national centres identity information goes to (none: national) */
	size_t ncentres;
	int64_t conflict_grace;           /* ms a double registration may stand before its alert */
	struct juki_provide_conf provide; /* provide: the 事務 list */
	struct juki_provision_conf provision; /* provision: keep */
	char *issuer; /* the title a disclosure answer is issued under (東京都知事) */
	struct juki_ninsho_conf ninsho; /* ninsho: 異動等情報 to the authority (第6-8(6)) */
};

struct juki_conflicts;
struct juki_reports;

/* The prefectural server's state, its node's private data (juki_node_priv()). */
struct prefd {
	struct juki_conflicts *conflicts; /* 二重登録 (conflict.h) */
	struct juki_provide *provide;     /* provision to agencies and bodies (provide.h) */
	struct juki_reports *reports;     /* management reports (第6-8) */
	struct juki_ninsho *ninsho;       /* 異動等情報 to the authority (node/ninsho.h) */
};

/* prefd_of() - the prefectural server's state. */
static inline struct prefd *
prefd_of(struct juki_node *node)
{
	return juki_node_priv(node);
}

/*
 * prefd_centre() - the i-th national centre the identity information goes to
 * (from 0; NULL after the last): each of `centres`, or `national` alone.
 */
const char *prefd_centre(const struct juki_node *node, size_t i);

/* prefd_conf() - the prefectural server's configuration. */
static inline const struct prefd_conf *
prefd_conf(const struct juki_node *node)
{
	return juki_node_daemon_conf(node);
}

extern const struct juki_conf_key prefd_conf_keys[];
extern const struct juki_daemon_ops prefd_ops;
extern const struct juki_schema prefd_schema;

/* 転出確定通知 from a municipality of the prefecture. */
int prefd_handle_tenshutsu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* 本人確認情報 from a municipality of the prefecture: record, pass on. */
int prefd_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* "person.show": a person's records, newest first, with any 転出確定通知 (args: code). */
int prefd_cmd_person_show(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);

/* "confirmations": the 転出確定通知 recorded (args: code, limit). */
int prefd_cmd_confirmations(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);

/* "disclosure": every provision and use of a person's identity information (args: code). */
int prefd_cmd_disclosure(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);

#endif
