/*
 * The special move-out/move-in with the resident card (転入転出の特例,
 * 第6-5) at a CS.  Both ends live in every CS:
 *
 *   転出地: the resident record system enters the 転出証明書情報 (令第24条の4)
 *   of a 付記転出届 through <spool>/certificates/ (checked against the
 *   register and the card register, csd_card_valid_for()); or the clerk's
 *   tokurei.moveout builds it from the register here and the entries (where
 *   to, when), and a timer writes it to <spool>/moveout/<id>.json for the
 *   system.  Either way it is kept in table tokurei_out.  A tokurei.request from the 転入地 is
 *   checked (付記転出 on record to that municipality, the card valid, the
 *   person the same) and answered with tokurei.answer, or refused in the
 *   ack; tokurei.collected marks the card collected in the card register.
 *
 *   転入地: tokurei.movein records the 最初の転入届 (table tokurei_in) and
 *   sends tokurei.request; the answer is shown to the clerk (tokurei.show);
 *   tokurei.collect records the card collected here, tells the 転出地 and
 *   hands the 転出証明書情報 to the resident record system
 *   (<spool>/movein/<id>.json).  A request unanswered after tokurei.timeout
 *   is overdue and alerted (tokurei-overdue).
 *
 * Every step is in the operation history under the record's id, never the
 * person's data; records are erased tokurei.keep years after their last
 * change (第6-5(6)).
 */
#ifndef JUKI_CS_TOKUREI_H
#define JUKI_CS_TOKUREI_H

#include <jansson.h>
#include <stdint.h>

#include "juki/node/control.h"
#include "juki/node/node.h"
#include "juki/store/purge.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

struct csd_tokurei_conf {
	char *spool;           /* moveout/ and movein/ (NULL: no special moves here) */
	int64_t scan_interval; /* ms between looks at the spool and the clocks */
	int64_t timeout;       /* ms: a request not answered after this is overdue */
	int64_t keep;          /* years the records are kept (第6-5(6)); 0: never erased */
};

extern const struct juki_conf_key csd_tokurei_keys[];

extern const struct juki_migration csd_tokurei_steps[1];
#define CSD_TOKUREI_SCHEMA                                                                         \
	{                                                                                          \
		"tokurei", csd_tokurei_steps, 1                                                    \
	}

/* Purge rules (period JUKI_PURGE_KEEP_MS: tokurei.keep in 366-day years). */
#define CSD_TOKUREI_PURGE_RULES                                                                    \
	{"csd_tokurei_out", "tokurei_out", csd_tokurei_out_count, csd_tokurei_out_delete,          \
	 JUKI_PURGE_KEEP_MS},                                                                      \
	{                                                                                          \
		"csd_tokurei_in", "tokurei_in", csd_tokurei_in_count, csd_tokurei_in_delete,       \
		    JUKI_PURGE_KEEP_MS                                                             \
	}
extern const char csd_tokurei_out_count[], csd_tokurei_out_delete[];
extern const char csd_tokurei_in_count[], csd_tokurei_in_delete[];

struct csd;
struct csd_tokurei;

int csd_tokurei_check(const struct csd_tokurei_conf *conf, char *err, size_t errlen);
int csd_tokurei_start(struct csd *cs, struct csd_tokurei **out, char *err, size_t errlen);
void csd_tokurei_stop(struct csd_tokurei *t);
void csd_tokurei_kick(struct csd_tokurei *t);
void csd_tokurei_purge_conf(struct juki_node *node, struct juki_purge_conf *conf);

int csd_handle_tokurei_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int csd_tokurei_request_refused(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int csd_handle_tokurei_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int csd_handle_tokurei_collected(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* on_ack: 1 when the entry was a tokurei message (handled), 0 otherwise, or a negative code. */
int csd_tokurei_on_ack(struct csd *cs, const struct juki_outbox_entry *entry,
		       const struct juki_ack *ack);

int csd_cmd_tokurei_moveout(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);
int csd_cmd_tokurei_movein(void *ctx, const json_t *args, json_t **result,
			   struct juki_ctl_error *err);
int csd_cmd_tokurei_collect(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);
int csd_cmd_tokurei_show(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_tokurei_list(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);

#endif
