/*
 * The wide-area copy of the residence record (住民票の写しの広域交付, 第6-4)
 * and the stock of the serial-numbered forms it is printed on (第4-8(3)),
 * at a CS.  Both ends live in every CS:
 *
 *   交付地 (the counter where the resident asks): copy.request enters the
 *   request (table copy_out) and sends copy.request to the 住所地 CS; the
 *   answer comes back as copy.answer (or a refusal in the ack); a request
 *   unanswered after copy.timeout is overdue and alerted (copy-overdue);
 *   copy.print takes the next serial of the forms stock and hands juki-ctl
 *   what it prints.
 *
 *   住所地 (the municipality of the record): a copy.request is checked
 *   (resident here, name and birth date those of the code, the requester's
 *   card valid) and kept (table copy_in); a timer writes it to the
 *   resident record system's spool (<spool>/outgoing/<id>.json), reads its
 *   answers (<spool>/answers/), refuses a malformed one into rejected/ with
 *   a report (copy-answer-rejected), and sends the answer back — after a
 *   clerk's copy.review when copy.review is on (docs/import.md, the copy spool).
 *
 * Every step is in the operation history, under the request's id, never
 * the person's data; requests are erased copy.keep years after their last
 * change (purge rules csd_copies_out, csd_copies_in).
 */
#ifndef JUKI_CS_COPIES_H
#define JUKI_CS_COPIES_H

#include <jansson.h>
#include <stdint.h>

#include "juki/node/control.h"
#include "juki/node/node.h"
#include "juki/store/purge.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

struct csd_copy_conf {
	char *spool;           /* outgoing/, answers/, done/, rejected/ (NULL: no requests taken) */
	int64_t scan_interval; /* ms between looks at answers/ and the requests' clocks */
	int64_t timeout;       /* ms: a request sent and not answered after this is overdue */
	int review;            /* an answer waits for a clerk's copy.review before it is sent */
	int64_t keep;          /* years the requests are kept (第6-4(4)); 0: never erased */
	char *mayor;           /* the issuing mayor's title printed on the copy (NULL: no print) */
};

extern const struct juki_conf_key csd_copy_keys[];

extern const struct juki_migration csd_copies_steps[1];
#define CSD_COPIES_SCHEMA                                                                          \
	{                                                                                          \
		"copies", csd_copies_steps, 1                                                      \
	}

/* The purge rules of the requests (period JUKI_PURGE_KEEP_YEARS). */
#define CSD_COPIES_PURGE_RULES                                                                     \
	{"csd_copies_out", "copy_out", csd_copies_out_count, csd_copies_out_delete,                \
	 JUKI_PURGE_KEEP_YEARS},                                                                   \
	{                                                                                          \
		"csd_copies_in", "copy_in", csd_copies_in_count, csd_copies_in_delete,             \
		    JUKI_PURGE_KEEP_YEARS                                                          \
	}
extern const char csd_copies_out_count[], csd_copies_out_delete[];
extern const char csd_copies_in_count[], csd_copies_in_delete[];

struct csd;
struct csd_copies;

/* csd_copies_check() - the spool's folders are private (as the import spool's); NULL is fine. */
int csd_copies_check(const struct csd_copy_conf *conf, char *err, size_t errlen);

/* csd_copies_start() - make the spool's folders and arm the timer. */
int csd_copies_start(struct csd *cs, struct csd_copies **out, char *err, size_t errlen);
void csd_copies_stop(struct csd_copies *c);
/* csd_copies_kick() - look at the spool and the clocks soon (after a request or answer). */
void csd_copies_kick(struct csd_copies *c);

/* purge_conf: the period of the requests. */
void csd_copies_purge_conf(struct juki_node *node, struct juki_purge_conf *conf);

/* The handlers (muni). */
int csd_handle_copy_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int csd_handle_copy_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

/* on_ack: 1 when the entry was a copy message (handled), 0 otherwise, or a negative code. */
int csd_copies_on_ack(struct csd *cs, const struct juki_outbox_entry *entry,
		      const struct juki_ack *ack);

/* Control commands. */
int csd_cmd_copy_request(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int csd_cmd_copy_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_copy_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_copy_review(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_copy_print(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_forms_receive(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);
int csd_cmd_forms_count(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_forms_spoil(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

/* The counts "status" adds. */
json_t *csd_copies_status(struct csd *cs);

#endif
