/*
 * juki-jlisd — the national server of the designated information-processing
 * agency (指定情報処理機関サーバ).
 *
 * It records the identity information (本人確認情報) every prefecture passes
 * on (第6-6(4)), keeps the current record of each person with its history,
 * and answers the prefectures' update-count queries (更新件数リスト).  It
 * tells each prefecture what it provided of its residents' identity
 * information (provide.notice, 第6-8(5)イ; node/provnotice.h).
 */
#ifndef JUKI_JLISSERVER_JLISD_H
#define JUKI_JLISSERVER_JLISD_H

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/ninsho.h"
#include "juki/node/node.h"
#include "juki/node/provide.h"

struct jlisd_conf {
	struct juki_node_conf node;
	int64_t conflict_grace;           /* ms a double registration may stand before its alert */
	struct juki_provide_conf provide; /* provide: the 事務 list */
	struct juki_provision_conf provision; /* provision: keep */
	int64_t notice_interval;        /* ms between rounds of provision notices (0: when asked) */
	struct juki_ninsho_conf ninsho; /* ninsho: 異動等情報 to the authority (第6-8(6)) */
};

struct juki_conflicts;
struct juki_provnotice;
struct juki_reports;

/* The national server's state, its node's private data (juki_node_priv()). */
struct jlisd {
	struct juki_conflicts *conflicts; /* 二重登録 (conflict.h) */
	struct juki_provide *provide;     /* provision to agencies and bodies (provide.h) */
	struct juki_provnotice *notices;  /* provision notices to the prefectures (第6-8(5)イ) */
	struct juki_reports *reports;     /* management reports (第6-8) */
	struct juki_ninsho *ninsho;       /* 異動等情報 to the authority (node/ninsho.h) */
};

extern const struct juki_conf_key jlisd_conf_keys[];
extern const struct juki_daemon_ops jlisd_ops;

/* 本人確認情報 passed on by a prefecture: record it. */
int jlisd_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

#endif
