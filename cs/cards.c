#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "cards.h"
#include "juki/base/error.h"

const struct juki_migration csd_cards_steps[1] = {
    /*
     * The cards issued here.  A serial is never used twice; the partial unique
     * index keeps at most one issued or suspended card per holder.
     */
    {1, "CREATE TABLE card ("
	" serial TEXT PRIMARY KEY,"
	" code TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN"
	" ('issued', 'suspended', 'collected', 'invalidated')),"
	" issued_ms INTEGER NOT NULL,"
	" changed_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE UNIQUE INDEX card_held ON card(code) WHERE state IN ('issued', 'suspended');"
	"CREATE TABLE card_event ("
	" serial TEXT NOT NULL REFERENCES card(serial),"
	" seq INTEGER NOT NULL,"
	" action TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" at_ms INTEGER NOT NULL,"
	" who TEXT NOT NULL,"
	" reason TEXT,"
	" PRIMARY KEY (serial, seq)"
	") WITHOUT ROWID;"},
};

const struct juki_schema csd_cards_schema = CSD_CARDS_SCHEMA;

static const char *const state_names[] = {"issued", "suspended", "collected", "invalidated"};
static const char *const action_names[] = {"suspend", "resume", "collect", "invalidate"};

int
csd_card_serial_valid(const char *s)
{
	size_t n;

	if (s == NULL) {
		return 0;
	}
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= CSD_CARD_SERIAL_MAX ||
		    !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z'))) {
			return 0;
		}
	}
	return n > 0;
}

const char *
csd_card_state_name(enum csd_card_state st)
{
	return st >= CSD_CARD_ISSUED && st <= CSD_CARD_INVALIDATED ? state_names[st] : "none";
}

enum csd_card_state
csd_card_state_parse(const char *s)
{
	for (int i = 0; s != NULL && i <= CSD_CARD_INVALIDATED; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			return (enum csd_card_state)i;
		}
	}
	return CSD_CARD_NONE;
}

const char *
csd_card_action_name(enum csd_card_action a)
{
	return a >= CSD_CARD_SUSPEND && a <= CSD_CARD_INVALIDATE ? action_names[a] : "none";
}

enum csd_card_state
csd_card_next(enum csd_card_state st, enum csd_card_action a)
{
	int live = st == CSD_CARD_ISSUED || st == CSD_CARD_SUSPENDED;

	switch (a) {
	case CSD_CARD_SUSPEND:
		return st == CSD_CARD_ISSUED ? CSD_CARD_SUSPENDED : CSD_CARD_NONE;
	case CSD_CARD_RESUME:
		return st == CSD_CARD_SUSPENDED ? CSD_CARD_ISSUED : CSD_CARD_NONE;
	case CSD_CARD_COLLECT:
		return live ? CSD_CARD_COLLECTED : CSD_CARD_NONE;
	case CSD_CARD_INVALIDATE:
		return live ? CSD_CARD_INVALIDATED : CSD_CARD_NONE;
	}
	return CSD_CARD_NONE;
}

static int
step_done(struct juki_store *store, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	(void)store;
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* The state and holder of serial: 0, JUKI_ENOTFOUND or a negative code. */
static int
card_get(struct juki_store *store, const char *serial, enum csd_card_state *state, char *code,
	 size_t len)
{
	sqlite3_stmt *st =
	    juki_store_prepare(store, "SELECT state, code FROM card WHERE serial = ?1");
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = csd_card_state_parse((const char *)sqlite3_column_text(st, 0));
		if (code != NULL) {
			snprintf(code, len, "%s", (const char *)sqlite3_column_text(st, 1));
		}
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
event_put(struct juki_store *store, const char *serial, const char *action,
	  enum csd_card_state state, int64_t now, const char *who, const char *reason)
{
	sqlite3_stmt *st = juki_store_prepare(
	    store, "INSERT INTO card_event (serial, seq, action, state, at_ms, who, reason)"
		   " VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM card_event"
		   " WHERE serial = ?1), ?2, ?3, ?4, ?5, ?6)");

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, csd_card_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_text(st, 5, who, -1, SQLITE_STATIC);
	if (reason != NULL) {
		sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
	}
	return step_done(store, st);
}

int
csd_card_of(struct juki_store *store, const char *code, char *buf, size_t len)
{
	sqlite3_stmt *st = juki_store_prepare(
	    store, "SELECT serial FROM card WHERE code = ?1 AND state IN ('issued', 'suspended')");
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
csd_card_issue(struct juki_store *store, const char *serial, const char *code, int64_t now,
	       const char *who, enum csd_card_refusal *why)
{
	enum csd_card_state state;
	char held[CSD_CARD_SERIAL_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	*why = CSD_CARD_OK;
	if (!csd_card_serial_valid(serial)) {
		*why = CSD_CARD_BAD_SERIAL;
		return 0;
	}
	if ((rc = card_get(store, serial, &state, NULL, 0)) != JUKI_ENOTFOUND) {
		if (rc == 0) {
			*why = CSD_CARD_SERIAL_USED;
		}
		return rc;
	}
	if ((rc = csd_card_of(store, code, held, sizeof(held))) != JUKI_ENOTFOUND) {
		if (rc == 0) {
			*why = CSD_CARD_HOLDER_HAS;
		}
		return rc;
	}
	st = juki_store_prepare(store,
				"INSERT INTO card (serial, code, state, issued_ms, changed_ms)"
				" VALUES (?1, ?2, 'issued', ?3, ?3)");
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if ((rc = step_done(store, st)) != 0) {
		return rc;
	}
	return event_put(store, serial, "issue", CSD_CARD_ISSUED, now, who, NULL);
}

int
csd_card_change(struct juki_store *store, const char *serial, enum csd_card_action a,
		const char *reason, int64_t now, const char *who, enum csd_card_state *from,
		enum csd_card_refusal *why)
{
	enum csd_card_state next;
	sqlite3_stmt *st;
	int rc;

	*why = CSD_CARD_OK;
	*from = CSD_CARD_NONE;
	if (!csd_card_serial_valid(serial)) {
		*why = CSD_CARD_BAD_SERIAL;
		return 0;
	}
	if ((rc = card_get(store, serial, from, NULL, 0)) != 0) {
		if (rc == JUKI_ENOTFOUND) {
			*why = CSD_CARD_UNKNOWN;
			return 0;
		}
		return rc;
	}
	if ((next = csd_card_next(*from, a)) == CSD_CARD_NONE) {
		*why = CSD_CARD_TRANSITION;
		return 0;
	}
	st = juki_store_prepare(store,
				"UPDATE card SET state = ?2, changed_ms = ?3 WHERE serial = ?1");
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, csd_card_state_name(next), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if ((rc = step_done(store, st)) != 0) {
		return rc;
	}
	return event_put(store, serial, csd_card_action_name(a), next, now, who, reason);
}

int
csd_card_valid_for(struct juki_store *store, const char *serial, const char *code)
{
	enum csd_card_state state;
	char holder[32];
	int rc;

	if (!csd_card_serial_valid(serial) || code == NULL) {
		return 0;
	}
	rc = card_get(store, serial, &state, holder, sizeof(holder));
	if (rc == JUKI_ENOTFOUND) {
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	return state == CSD_CARD_ISSUED && strcmp(holder, code) == 0;
}

static json_t *
row_json(sqlite3_stmt *st)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I}", "serial", sqlite3_column_text(st, 0), "code",
			 sqlite3_column_text(st, 1), "state", sqlite3_column_text(st, 2),
			 "issued_ms", (json_int_t)sqlite3_column_int64(st, 3), "changed_ms",
			 (json_int_t)sqlite3_column_int64(st, 4));
}

json_t *
csd_card_json(struct juki_store *store, const char *serial)
{
	sqlite3_stmt *st = juki_store_prepare(
	    store, "SELECT serial, code, state, issued_ms, changed_ms FROM card WHERE serial = ?1");
	json_t *out = NULL, *events;

	if (st == NULL) {
		return NULL;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		out = row_json(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (out == NULL) {
		return NULL;
	}
	st = juki_store_prepare(store, "SELECT seq, action, state, at_ms, who, reason"
				       " FROM card_event WHERE serial = ?1 ORDER BY seq");
	events = json_array();
	if (st == NULL || events == NULL) {
		json_decref(events);
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *ev = json_pack(
		    "{s:I,s:s,s:s,s:I,s:s}", "seq", (json_int_t)sqlite3_column_int64(st, 0),
		    "action", sqlite3_column_text(st, 1), "state", sqlite3_column_text(st, 2),
		    "at_ms", (json_int_t)sqlite3_column_int64(st, 3), "who",
		    sqlite3_column_text(st, 4));

		if (ev != NULL && sqlite3_column_type(st, 5) == SQLITE_TEXT) {
			json_object_set_new(ev, "reason",
					    json_string((const char *)sqlite3_column_text(st, 5)));
		}
		json_array_append_new(events, ev);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	json_object_set_new(out, "events", events);
	return out;
}

json_t *
csd_card_list(struct juki_store *store, const char *state)
{
	sqlite3_stmt *st =
	    juki_store_prepare(store, "SELECT serial, code, state, issued_ms, changed_ms FROM card"
				      " WHERE ?1 IS NULL OR state = ?1 ORDER BY serial");
	json_t *cards = json_array();

	if (st == NULL || cards == NULL) {
		json_decref(cards);
		return NULL;
	}
	if (state != NULL) {
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(cards, row_json(st));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return cards;
}
