/*
 * juki-csd — the municipal communication server (コミュニケーションサーバ).
 *
 * It keeps the identity information (本人確認情報) of the municipality's
 * residents with its history, and sends every change to its prefecture
 * (第6-6(1)).  Changes come from the resident record system (import, 第6-6),
 * from clerks (move-ins, 第6-2) and from other municipalities (a 転入通知
 * ends a person's record here and is confirmed to the prefecture, 第6-3).
 */
#ifndef JUKI_CS_CSD_H
#define JUKI_CS_CSD_H

#include <jansson.h>

#include "copies.h"
#include "juki/node/control.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/node.h"
#include "juki/records/honnin.h"
#include "juki/wire/msg.h"
#include "tokurei.h"

struct csd_import_conf {
	char *spool;           /* directory of incoming/, done/, rejected/ (NULL: no spool) */
	int64_t scan_interval; /* ms between looks at incoming/ */
	int64_t max_bytes;     /* largest file accepted */
	int64_t step_rows;     /* rows validated between other work */
	int64_t single_pass;   /* files up to this size are validated and recorded at once */
	int64_t keep;          /* files in done/ and rejected/ are erased after this (0: never) */
};

/* 転入通知 received: how many refused ones a municipality may send. */
struct csd_tennyu_conf {
	int64_t refusal_limit;  /* refused notices from one municipality per window */
	int64_t refusal_window; /* ms */
};

struct csd_conf {
	struct juki_node_conf node;
	char *prefecture;    /* the prefectural server's identity; default from our code */
	int64_t report_poll; /* ms between questions about an open management-report request */
	struct csd_import_conf import;
	struct csd_tennyu_conf tennyu;
	struct csd_copy_conf copy;       /* wide-area copies and their forms (copies.h) */
	struct csd_tokurei_conf tokurei; /* the special move-out/in (tokurei.h) */
};

struct csd_spool;
struct juki_reports;

/* The municipal server's state, its node's private data (juki_node_priv()). */
struct csd {
	struct juki_node *node;
	struct juki_ident pref;
	struct csd_spool *spool;
	struct juki_reports *reports; /* management reports asked here (第6-8) */
	struct csd_copies *copies;    /* wide-area copies of the residence record (第6-4) */
	struct csd_tokurei *tokurei;  /* the special move-out/in with the card (第6-5) */
};

/* csd_conf() - the municipal server's configuration. */
static inline const struct csd_conf *
csd_conf(const struct juki_node *node)
{
	return juki_node_daemon_conf(node);
}

extern const struct juki_conf_key csd_conf_keys[];
extern const struct juki_daemon_ops csd_ops;
extern const struct juki_schema csd_schema;

/*
 * Recording changes (register.c).  Every change of the register goes
 * through an op inside one transaction: it becomes the person's current
 * record here, joins a honnin.batch for the prefecture, and is counted in
 * the update counts sent.
 */
struct csd_op {
	struct csd *cs;
	struct juki_batcher *batch;
	struct juki_counter *counter;
	int64_t now;
	size_t changes;
};

/* csd_op_init() - start an op; the caller opens the transaction. */
int csd_op_init(struct csd *cs, struct csd_op *op);

/*
 * csd_op_record() - record c (lgcode must be ours; recorded_ms is set to
 * now).  Returns 0, or a negative code (the caller rolls back).
 */
int csd_op_record(struct csd_op *op, struct juki_change *c);

/* csd_op_finish() - put the open batch and the counts in the store. */
int csd_op_finish(struct csd_op *op);

/* csd_op_free() - release the op (after finish, or to abandon it). */
void csd_op_free(struct csd_op *op);

/*
 * csd_held() - the current record of code here.  Returns 0, JUKI_ENOTFOUND
 * or a negative code.
 */
int csd_held(struct csd *cs, const char *code, struct juki_change *c);

/* csd_resident() - true when c is the record of a person living here. */
int csd_resident(const struct csd *cs, const struct juki_change *c);

/* Control commands (tennyu.c). */
int csd_cmd_resident_correct(void *ctx, const json_t *args, json_t **result,
			     struct juki_ctl_error *err);
int csd_cmd_resident_add(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_resident_show(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);
int csd_cmd_movein(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_movein_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
/*
 * "movein.resolve": a move-in whose 転入通知 was refused is a task until a
 * clerk resolves it (args: code, withdraw, note); withdraw also records the
 * removal (職権消除) of the move-in here.
 */
int csd_cmd_movein_resolve(void *ctx, const json_t *args, json_t **result,
			   struct juki_ctl_error *err);
/* "tennyu.refused": 転入通知 refused here, with the precise reason (args: limit). */
int csd_cmd_tennyu_refused(void *ctx, const json_t *args, json_t **result,
			   struct juki_ctl_error *err);

/* The resident card register's commands (cardcmd.c, cards.h). */
int csd_cmd_card_issue(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_card_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_card_suspend(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_card_resume(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_card_collect(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_card_invalidate(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);
int csd_cmd_card_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

/* 転入通知 received from the municipality a resident moved to. */
int csd_handle_tennyu(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
/*
 * A refused 転入通知: kept with its precise reason; the sender is told
 * no-match for "no such resident here / the details do not match"; a
 * burst of refusals from one municipality raises refusal-burst.
 */
int csd_tennyu_refused(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* Outcome of a message we sent, recorded with the ack. */
int csd_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack);

/* The counts "status" adds for a CS. */
json_t *csd_status(struct juki_node *node);

#endif
