/*
 * The resident card register (住民基本台帳カード) of a CS: the cards issued
 * here, whose holder, and their state (docs/control.md, card.*).  The first
 * piece of the special move-out/in (転入転出の特例, 第6-5): a 付記転出届 is
 * received only from a holder of a valid card (csd_card_valid_for()).
 *
 * A serial is 1..16 of [0-9A-Z], unique for ever.  States:
 *
 *   issued --suspend--> suspended --resume--> issued
 *   issued, suspended --collect--> collected      (final)
 *   issued, suspended --invalidate--> invalidated (final)
 *
 * At most one card per holder is issued or suspended.  Every change keeps
 * its date, who made it and why (table card_event).
 */
#ifndef JUKI_CS_CARDS_H
#define JUKI_CS_CARDS_H

#include <jansson.h>
#include <stdint.h>

#include "juki/store/store.h"

#define CSD_CARD_SERIAL_MAX 16

enum csd_card_state {
	CSD_CARD_NONE = -1,
	CSD_CARD_ISSUED = 0,
	CSD_CARD_SUSPENDED,
	CSD_CARD_COLLECTED,
	CSD_CARD_INVALIDATED,
};

enum csd_card_action {
	CSD_CARD_SUSPEND = 0,
	CSD_CARD_RESUME,
	CSD_CARD_COLLECT,
	CSD_CARD_INVALIDATE,
};

/* Why a change was refused. */
enum csd_card_refusal {
	CSD_CARD_OK = 0,
	CSD_CARD_BAD_SERIAL,  /* not 1..16 of [0-9A-Z] */
	CSD_CARD_SERIAL_USED, /* a serial recorded before (any state) */
	CSD_CARD_HOLDER_HAS,  /* the holder has an issued or suspended card */
	CSD_CARD_UNKNOWN,     /* no card of that serial */
	CSD_CARD_TRANSITION,  /* the state machine does not allow it */
};

/* The tables (component "cards" of the CS's store). */
extern const struct juki_migration csd_cards_steps[1];
#define CSD_CARDS_SCHEMA                                                                           \
	{                                                                                          \
		"cards", csd_cards_steps, 1                                                        \
	}
extern const struct juki_schema csd_cards_schema;

/* csd_card_serial_valid() - s is 1..16 of [0-9A-Z]. */
int csd_card_serial_valid(const char *s);

/* csd_card_state_name() / csd_card_state_parse(): "issued", ...; parse: CSD_CARD_NONE if unknown.
 */
const char *csd_card_state_name(enum csd_card_state st);
enum csd_card_state csd_card_state_parse(const char *s);
const char *csd_card_action_name(enum csd_card_action a);

/* csd_card_next() - the state action leads to from st, or CSD_CARD_NONE when not allowed. */
enum csd_card_state csd_card_next(enum csd_card_state st, enum csd_card_action a);

/*
 * csd_card_issue() - record a card issued to code (a resident here: the
 * caller checks) at now by who.  Inside the caller's transaction or its
 * own statement.  Returns 0 with *why, or a negative code.
 */
int csd_card_issue(struct juki_store *store, const char *serial, const char *code, int64_t now,
		   const char *who, enum csd_card_refusal *why);

/*
 * csd_card_change() - apply action to the card serial at now by who, with
 * reason (NULL: none).  *from is its state before (CSD_CARD_NONE if
 * unknown).  Returns 0 with *why, or a negative code.
 */
int csd_card_change(struct juki_store *store, const char *serial, enum csd_card_action a,
		    const char *reason, int64_t now, const char *who, enum csd_card_state *from,
		    enum csd_card_refusal *why);

/*
 * csd_card_valid_for() - is the card serial held and valid for code: issued
 * (not suspended, collected or invalidated) and its holder is code.
 * Returns 1, 0, or a negative code.  The check of a 付記転出届.
 */
int csd_card_valid_for(struct juki_store *store, const char *serial, const char *code);

/* csd_card_json() - the card serial with its changes, NULL when unknown (or on error). */
json_t *csd_card_json(struct juki_store *store, const char *serial);

/* csd_card_of() - the serial of code's issued or suspended card into buf; 0, JUKI_ENOTFOUND. */
int csd_card_of(struct juki_store *store, const char *code, char *buf, size_t len);

/* csd_card_list() - the cards (state NULL: all), by serial. */
json_t *csd_card_list(struct juki_store *store, const char *state);

#endif
