/* The resident card register of a CS (cs/cards.c): serials, the state machine, the store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"

#include "cards.h"
#include "helpers.h"

#define CODE  "24727059608"
#define CODE2 "11111111111"

struct fx {
	char dir[64];
	char path[128];
	struct juki_store *store;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "cards"));
	snprintf(f->path, sizeof(f->path), "%s/c.db", f->dir);
	assert_int_equal(
	    juki_store_open(f->path, &csd_cards_schema, 1, &f->store, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->store);
	assert_int_equal(test_rm_rf(f->dir), 0);
	free(f);
	return 0;
}

static void
test_serials(void **state)
{
	(void)state;
	assert_true(csd_card_serial_valid("A"));
	assert_true(csd_card_serial_valid("0123456789ABCDEF"));
	assert_false(csd_card_serial_valid("0123456789ABCDEFG")); /* 17 */
	assert_false(csd_card_serial_valid(""));
	assert_false(csd_card_serial_valid(NULL));
	assert_false(csd_card_serial_valid("abc"));
	assert_false(csd_card_serial_valid("A-1"));
	assert_false(csd_card_serial_valid("A 1"));
}

/* Every state and action: only the documented transitions. */
static void
test_state_machine(void **state)
{
	(void)state;
	assert_int_equal(csd_card_next(CSD_CARD_ISSUED, CSD_CARD_SUSPEND), CSD_CARD_SUSPENDED);
	assert_int_equal(csd_card_next(CSD_CARD_ISSUED, CSD_CARD_RESUME), CSD_CARD_NONE);
	assert_int_equal(csd_card_next(CSD_CARD_ISSUED, CSD_CARD_COLLECT), CSD_CARD_COLLECTED);
	assert_int_equal(csd_card_next(CSD_CARD_ISSUED, CSD_CARD_INVALIDATE), CSD_CARD_INVALIDATED);
	assert_int_equal(csd_card_next(CSD_CARD_SUSPENDED, CSD_CARD_SUSPEND), CSD_CARD_NONE);
	assert_int_equal(csd_card_next(CSD_CARD_SUSPENDED, CSD_CARD_RESUME), CSD_CARD_ISSUED);
	assert_int_equal(csd_card_next(CSD_CARD_SUSPENDED, CSD_CARD_COLLECT), CSD_CARD_COLLECTED);
	assert_int_equal(csd_card_next(CSD_CARD_SUSPENDED, CSD_CARD_INVALIDATE),
			 CSD_CARD_INVALIDATED);
	for (int a = CSD_CARD_SUSPEND; a <= CSD_CARD_INVALIDATE; a++) {
		assert_int_equal(csd_card_next(CSD_CARD_COLLECTED, a), CSD_CARD_NONE);
		assert_int_equal(csd_card_next(CSD_CARD_INVALIDATED, a), CSD_CARD_NONE);
		assert_int_equal(csd_card_next(CSD_CARD_NONE, a), CSD_CARD_NONE);
	}
	for (int s = CSD_CARD_ISSUED; s <= CSD_CARD_INVALIDATED; s++) {
		assert_int_equal(csd_card_state_parse(csd_card_state_name(s)), s);
	}
	assert_int_equal(csd_card_state_parse("lost"), CSD_CARD_NONE);
	assert_int_equal(csd_card_state_parse(NULL), CSD_CARD_NONE);
}

static void
test_issue_refusals(void **state)
{
	struct fx *f = *state;
	enum csd_card_refusal why;
	char serial[32];

	assert_int_equal(csd_card_issue(f->store, "bad", CODE, 1, "op", &why), 0);
	assert_int_equal(why, CSD_CARD_BAD_SERIAL);
	assert_int_equal(csd_card_issue(f->store, "C1", CODE, 1, "op", &why), 0);
	assert_int_equal(why, CSD_CARD_OK);
	/* The holder has a valid card. */
	assert_int_equal(csd_card_issue(f->store, "C2", CODE, 2, "op", &why), 0);
	assert_int_equal(why, CSD_CARD_HOLDER_HAS);
	/* A serial used before, for anyone. */
	assert_int_equal(csd_card_issue(f->store, "C1", CODE2, 2, "op", &why), 0);
	assert_int_equal(why, CSD_CARD_SERIAL_USED);
	assert_int_equal(csd_card_of(f->store, CODE, serial, sizeof(serial)), 0);
	assert_string_equal(serial, "C1");
	assert_int_equal(csd_card_of(f->store, CODE2, serial, sizeof(serial)), JUKI_ENOTFOUND);
}

static void
test_transitions_and_history(void **state)
{
	struct fx *f = *state;
	enum csd_card_refusal why;
	enum csd_card_state from;
	json_t *card, *events;

	assert_int_equal(csd_card_issue(f->store, "C1", CODE, 10, "clerk", &why), 0);
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_SUSPEND, "lost", 20, "clerk", &from, &why), 0);
	assert_int_equal(why, CSD_CARD_OK);
	assert_int_equal(from, CSD_CARD_ISSUED);
	/* Suspended still counts as held: no second card. */
	assert_int_equal(csd_card_issue(f->store, "C2", CODE, 21, "clerk", &why), 0);
	assert_int_equal(why, CSD_CARD_HOLDER_HAS);
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_RESUME, NULL, 30, "clerk", &from, &why), 0);
	assert_int_equal(why, CSD_CARD_OK);
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_RESUME, NULL, 31, "clerk", &from, &why), 0);
	assert_int_equal(why, CSD_CARD_TRANSITION);
	assert_int_equal(from, CSD_CARD_ISSUED);
	assert_int_equal(csd_card_change(f->store, "C1", CSD_CARD_INVALIDATE, "damaged", 40,
					 "super", &from, &why),
			 0);
	assert_int_equal(why, CSD_CARD_OK);
	/* Final: collect an invalidated card is refused. */
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_COLLECT, NULL, 50, "clerk", &from, &why), 0);
	assert_int_equal(why, CSD_CARD_TRANSITION);
	assert_int_equal(from, CSD_CARD_INVALIDATED);
	assert_int_equal(
	    csd_card_change(f->store, "NOPE", CSD_CARD_COLLECT, NULL, 50, "clerk", &from, &why), 0);
	assert_int_equal(why, CSD_CARD_UNKNOWN);

	card = csd_card_json(f->store, "C1");
	assert_non_null(card);
	assert_string_equal(json_string_value(json_object_get(card, "state")), "invalidated");
	assert_int_equal(json_integer_value(json_object_get(card, "issued_ms")), 10);
	assert_int_equal(json_integer_value(json_object_get(card, "changed_ms")), 40);
	events = json_object_get(card, "events");
	assert_int_equal(json_array_size(events), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, 0), "action")),
			    "issue");
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, 1), "reason")),
			    "lost");
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, 3), "who")),
			    "super");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 3), "at_ms")),
			 40);
	json_decref(card);
	assert_null(csd_card_json(f->store, "NOPE"));

	/* A new card once the old one is final; the list by state. */
	assert_int_equal(csd_card_issue(f->store, "C2", CODE, 60, "clerk", &why), 0);
	assert_int_equal(why, CSD_CARD_OK);
	card = csd_card_list(f->store, "issued");
	assert_int_equal(json_array_size(card), 1);
	json_decref(card);
	card = csd_card_list(f->store, NULL);
	assert_int_equal(json_array_size(card), 2);
	json_decref(card);
}

/* The check of a 付記転出届: held, issued, the holder's. */
static void
test_valid_for(void **state)
{
	struct fx *f = *state;
	enum csd_card_refusal why;
	enum csd_card_state from;

	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 0); /* unknown */
	assert_int_equal(csd_card_issue(f->store, "C1", CODE, 1, "clerk", &why), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 1);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE2), 0); /* not the holder */
	assert_int_equal(csd_card_valid_for(f->store, "c1", CODE), 0);  /* malformed */
	assert_int_equal(csd_card_valid_for(f->store, "C1", NULL), 0);
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_SUSPEND, "lost", 2, "clerk", &from, &why), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 0); /* suspended */
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_RESUME, NULL, 3, "clerk", &from, &why), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 1);
	assert_int_equal(
	    csd_card_change(f->store, "C1", CSD_CARD_COLLECT, NULL, 4, "clerk", &from, &why), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 0); /* collected */
	assert_int_equal(csd_card_issue(f->store, "C2", CODE, 5, "clerk", &why), 0);
	assert_int_equal(
	    csd_card_change(f->store, "C2", CSD_CARD_INVALIDATE, "x", 6, "super", &from, &why), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C2", CODE), 0); /* invalidated */
}

/* Reopened, the register is the same. */
static void
test_reopen(void **state)
{
	struct fx *f = *state;
	enum csd_card_refusal why;
	char err[256];

	assert_int_equal(csd_card_issue(f->store, "C1", CODE, 1, "clerk", &why), 0);
	juki_store_close(f->store);
	assert_int_equal(
	    juki_store_open(f->path, &csd_cards_schema, 1, &f->store, err, sizeof(err)), 0);
	assert_int_equal(csd_card_valid_for(f->store, "C1", CODE), 1);
	assert_int_equal(csd_card_issue(f->store, "C1", CODE2, 2, "clerk", &why), 0);
	assert_int_equal(why, CSD_CARD_SERIAL_USED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serials),
	    cmocka_unit_test(test_state_machine),
	    cmocka_unit_test_setup_teardown(test_issue_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transitions_and_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_valid_for, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
