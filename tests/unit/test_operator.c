#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "juki/base/error.h"
#include "juki/records/operator.h"
#include "juki/store/store.h"

#include "helpers.h"

/* Cheap verifiers: the cost does not change what is tested. */
static const struct juki_pin_cost cost = {64, 1};
static const char *const known[] = {"honnin", "tennyu", NULL};

struct fixture {
	char dir[64];
	char path[128];
	struct juki_store *store;
	json_t *datasets;
	char why[256];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	if (test_mkdtemp(f->dir, sizeof(f->dir), "operator") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	if (juki_store_open(f->path, &juki_operator_schema, 1, &f->store, NULL, 0) != 0) {
		test_rm_rf(f->dir);
		free(f);
		return -1;
	}
	f->datasets = json_pack("[s]", "honnin");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	juki_store_close(f->store);
	json_decref(f->datasets);
	test_rm_rf(f->dir);
	free(f);
	return 0;
}

static int
add(struct fixture *f, const char *id, unsigned roles, const char *pin)
{
	return juki_operator_add(f->store, 1000, id, roles, f->datasets, known, pin, &cost, f->why,
				 sizeof(f->why));
}

static void
test_roles(void **state)
{
	char why[200];
	unsigned roles;
	json_t *list;

	(void)state;
	assert_int_equal(juki_role_parse("clerk"), JUKI_ROLE_CLERK);
	assert_int_equal(juki_role_parse("administrator"), JUKI_ROLE_ADMIN);
	assert_int_equal(juki_role_parse("admin"), 0);
	list = json_pack("[s,s]", "supervisor", "auditor");
	assert_int_equal(juki_roles_from_json(list, &roles, why, sizeof(why)), 0);
	assert_int_equal(roles, JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR);
	json_decref(list);
	/* 第2-3(1): administration and clerical work are different people. */
	list = json_pack("[s,s]", "clerk", "administrator");
	assert_int_equal(juki_roles_from_json(list, &roles, why, sizeof(why)), JUKI_EFORMAT);
	assert_non_null(strstr(why, "第2-3(1)"));
	json_decref(list);
	list = json_pack("[s]", "root");
	assert_int_equal(juki_roles_from_json(list, &roles, why, sizeof(why)), JUKI_EFORMAT);
	assert_non_null(strstr(why, "roles[0]"));
	json_decref(list);
	list = json_array();
	assert_int_equal(juki_roles_from_json(list, &roles, why, sizeof(why)), JUKI_EFORMAT);
	json_decref(list);
	assert_int_equal(juki_roles_from_json(NULL, &roles, why, sizeof(why)), JUKI_EFORMAT);
	list = juki_roles_json(JUKI_ROLE_CLERK | JUKI_ROLE_SUPERVISOR);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "clerk");
	json_decref(list);
}

static void
test_add_and_refusals(void **state)
{
	struct fixture *f = *state;
	struct juki_operator op;
	json_t *bad;

	assert_int_equal(add(f, "tanaka", JUKI_ROLE_CLERK, "246810"), 0);
	assert_int_equal(juki_operator_get(f->store, "tanaka", &op), 0);
	assert_string_equal(op.id, "tanaka");
	assert_int_equal(op.roles, JUKI_ROLE_CLERK);
	assert_int_equal(op.ndatasets, 1);
	assert_string_equal(op.datasets[0], "honnin");
	assert_int_equal(op.locked, 0);
	assert_int_equal(add(f, "tanaka", JUKI_ROLE_CLERK, "246810"), JUKI_EDUP);
	/* Ids as the card's URN allows them. */
	assert_int_equal(add(f, "Tanaka", JUKI_ROLE_CLERK, "246810"), JUKI_EFORMAT);
	assert_int_equal(add(f, "-x", JUKI_ROLE_CLERK, "246810"), JUKI_EFORMAT);
	assert_int_equal(add(f, "", JUKI_ROLE_CLERK, "246810"), JUKI_EFORMAT);
	assert_int_equal(add(f, "a23456789012345678901234567890123", JUKI_ROLE_CLERK, "246810"),
			 JUKI_EFORMAT);
	/* PINs: 4..64 printable, no spaces. */
	assert_int_equal(add(f, "sato", JUKI_ROLE_CLERK, "123"), JUKI_EFORMAT);
	assert_int_equal(add(f, "sato", JUKI_ROLE_CLERK, "12 34"), JUKI_EFORMAT);
	assert_int_equal(add(f, "sato", JUKI_ROLE_CLERK,
			     "12345678901234567890123456789012345678901234567890123456789012345"),
			 JUKI_EFORMAT);
	assert_int_equal(add(f, "sato", JUKI_ROLE_CLERK, "1234"), 0);
	/* Data sets of this daemon only, 1 to 8. */
	bad = json_pack("[s]", "kakutei");
	assert_int_equal(juki_operator_add(f->store, 1, "suzuki", JUKI_ROLE_CLERK, bad, known,
					   "1234", &cost, f->why, sizeof(f->why)),
			 JUKI_EFORMAT);
	assert_non_null(strstr(f->why, "not one of honnin tennyu"));
	json_decref(bad);
	bad = json_array();
	assert_int_equal(juki_operator_add(f->store, 1, "suzuki", JUKI_ROLE_CLERK, bad, known,
					   "1234", &cost, f->why, sizeof(f->why)),
			 JUKI_EFORMAT);
	json_decref(bad);
	assert_int_equal(juki_operator_get(f->store, "suzuki", &op), JUKI_ENOTFOUND);
}

static void
test_pin_and_lockout(void **state)
{
	struct fixture *f = *state;
	struct juki_operator op;
	int remaining;

	assert_int_equal(add(f, "tanaka", JUKI_ROLE_CLERK, "246810"), 0);
	assert_int_equal(
	    juki_operator_login(f->store, 2000, "tanaka", "246810", 3, &op, &remaining), 0);
	assert_int_equal(op.roles, JUKI_ROLE_CLERK);
	/* Two wrong, then the right one: the count starts again. */
	assert_int_equal(
	    juki_operator_login(f->store, 2000, "tanaka", "000000", 3, &op, &remaining),
	    JUKI_EAUTH);
	assert_int_equal(remaining, 2);
	assert_int_equal(
	    juki_operator_login(f->store, 2000, "tanaka", "000001", 3, &op, &remaining),
	    JUKI_EAUTH);
	assert_int_equal(remaining, 1);
	assert_int_equal(
	    juki_operator_login(f->store, 2000, "tanaka", "246810", 3, &op, &remaining), 0);
	assert_int_equal(juki_operator_get(f->store, "tanaka", &op), 0);
	assert_int_equal(op.failures, 0);
	/* Three in a row lock; the third says so (remaining 0). */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		    juki_operator_login(f->store, 3000, "tanaka", "999999", 3, &op, &remaining),
		    JUKI_EAUTH);
	}
	assert_int_equal(
	    juki_operator_login(f->store, 3000, "tanaka", "999999", 3, &op, &remaining),
	    JUKI_ELOCKED);
	assert_int_equal(remaining, 0);
	/* The right PIN no longer opens it, and says it was locked before (-1). */
	assert_int_equal(
	    juki_operator_login(f->store, 3000, "tanaka", "246810", 3, &op, &remaining),
	    JUKI_ELOCKED);
	assert_int_equal(remaining, -1);
	assert_int_equal(juki_operator_get(f->store, "tanaka", &op), 0);
	assert_int_equal(op.locked, 1);
	/* A supervisor unlocks: the count is cleared, the PIN works. */
	assert_int_equal(juki_operator_set_lock(f->store, 4000, "tanaka", 0, "urn:x"), 0);
	assert_int_equal(
	    juki_operator_login(f->store, 4000, "tanaka", "246810", 3, &op, &remaining), 0);
	assert_int_equal(op.failures, 0);
	/* Unknown operators. */
	assert_int_equal(juki_operator_login(f->store, 1, "nobody", "246810", 3, &op, &remaining),
			 JUKI_ENOTFOUND);
	assert_int_equal(juki_operator_set_lock(f->store, 1, "nobody", 1, "urn:x"), JUKI_ENOTFOUND);
	/* A new PIN replaces the old one. */
	assert_int_equal(
	    juki_operator_set_pin(f->store, 5000, "tanaka", "1357", &cost, f->why, sizeof(f->why)),
	    0);
	assert_int_equal(
	    juki_operator_login(f->store, 5000, "tanaka", "246810", 3, &op, &remaining),
	    JUKI_EAUTH);
	assert_int_equal(juki_operator_login(f->store, 5000, "tanaka", "1357", 3, &op, &remaining),
			 0);
	assert_int_equal(
	    juki_operator_set_pin(f->store, 5000, "tanaka", "12", &cost, f->why, sizeof(f->why)),
	    JUKI_EFORMAT);
	assert_int_equal(
	    juki_operator_set_pin(f->store, 5000, "nobody", "1234", &cost, f->why, sizeof(f->why)),
	    JUKI_ENOTFOUND);
}

static void
test_verifier_is_argon2id(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *st;

	assert_int_equal(add(f, "tanaka", JUKI_ROLE_CLERK, "246810"), 0);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store),
					    "SELECT pin FROM operators WHERE id = 'tanaka'", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	/* The PIN itself is nowhere; its verifier names its cost. */
	assert_non_null(strstr((const char *)sqlite3_column_text(st, 0), "$argon2id$"));
	assert_null(strstr((const char *)sqlite3_column_text(st, 0), "246810"));
	sqlite3_finalize(st);
}

static void
test_set_roles_and_list(void **state)
{
	struct fixture *f = *state;
	json_t *roles_ds = json_pack("[s,s]", "honnin", "tennyu"), *list;
	struct juki_operator op;

	assert_int_equal(add(f, "tanaka", JUKI_ROLE_CLERK, "246810"), 0);
	assert_int_equal(juki_operator_set_roles(f->store, 2, "tanaka", JUKI_ROLE_SUPERVISOR,
						 roles_ds, known, f->why, sizeof(f->why)),
			 0);
	assert_int_equal(juki_operator_get(f->store, "tanaka", &op), 0);
	assert_int_equal(op.roles, JUKI_ROLE_SUPERVISOR);
	assert_int_equal(op.ndatasets, 2);
	assert_string_equal(op.datasets[1], "tennyu");
	assert_int_equal(juki_operator_set_roles(f->store, 2, "nobody", JUKI_ROLE_SUPERVISOR,
						 roles_ds, known, f->why, sizeof(f->why)),
			 JUKI_ENOTFOUND);
	json_decref(roles_ds);
	list = juki_operator_list(f->store);
	assert_non_null(list);
	assert_int_equal(json_array_size(json_object_get(list, "operators")), 1);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(list, "operators"), 0), "id")),
			    "tanaka");
	/* No verifier in what is listed. */
	assert_null(json_object_get(json_array_get(json_object_get(list, "operators"), 0), "pin"));
	json_decref(list);
}

static void
test_approval_beforehand_used_once(void **state)
{
	struct fixture *f = *state;
	char why[200];
	int64_t id, other;

	assert_int_equal(juki_approval_issue(f->store, 1000, "export", "tanaka", "131016",
					     "urn:juki:op:cs:131016:boss", 5000, &id),
			 0);
	/* Another operator, kind or target cannot use it. */
	assert_int_equal(
	    juki_approval_use(f->store, 1500, id, "export", "sato", "131016", why, sizeof(why)),
	    JUKI_EPERM);
	assert_int_equal(
	    juki_approval_use(f->store, 1500, id, "correct", "tanaka", "131016", why, sizeof(why)),
	    JUKI_EPERM);
	assert_int_equal(
	    juki_approval_use(f->store, 1500, id, "export", "tanaka", "271004", why, sizeof(why)),
	    JUKI_EPERM);
	assert_int_equal(
	    juki_approval_use(f->store, 1500, id, "export", "tanaka", "131016", why, sizeof(why)),
	    0);
	assert_int_equal(
	    juki_approval_use(f->store, 1600, id, "export", "tanaka", "131016", why, sizeof(why)),
	    JUKI_EEXIST);
	assert_non_null(strstr(why, "used already"));
	assert_int_equal(
	    juki_approval_use(f->store, 1600, 999, "export", "tanaka", "131016", why, sizeof(why)),
	    JUKI_ENOTFOUND);
	/* Expired. */
	assert_int_equal(juki_approval_issue(f->store, 1000, "export", "tanaka", "131016",
					     "urn:juki:op:cs:131016:boss", 2000, &other),
			 0);
	assert_int_equal(juki_approval_use(f->store, 2000, other, "export", "tanaka", "131016", why,
					   sizeof(why)),
			 JUKI_ETIMEDOUT);
}

static int overdue_calls;

static void
on_overdue(void *arg, int64_t id, const char *kind, const char *op, const char *target,
	   int64_t deadline_ms)
{
	int64_t *want = arg;

	assert_int_equal(id, *want);
	assert_string_equal(kind, "correct");
	assert_string_equal(op, "tanaka");
	assert_string_equal(target, "24727059608");
	assert_int_equal(deadline_ms, 3000);
	overdue_calls++;
}

static void
test_approval_after_and_overdue(void **state)
{
	struct fixture *f = *state;
	int64_t late_id, ok_id;
	int late;
	json_t *list;

	assert_int_equal(
	    juki_approval_pend(f->store, 1000, "correct", "tanaka", "24727059608", 3000, &late_id),
	    0);
	assert_int_equal(
	    juki_approval_pend(f->store, 1000, "correct", "tanaka", "24727059608", 9000, &ok_id),
	    0);
	/* Approved in time: never overdue. */
	assert_int_equal(juki_approval_confirm(f->store, 2000, ok_id, "urn:boss", "boss", &late),
			 0);
	assert_int_equal(late, 0);
	assert_int_equal(juki_approval_confirm(f->store, 2000, ok_id, "urn:boss", "boss", &late),
			 JUKI_EEXIST);
	/* Before the deadline nothing is due; after it, once. */
	overdue_calls = 0;
	assert_int_equal(juki_approval_overdue(f->store, 3000, on_overdue, &late_id), 0);
	assert_int_equal(juki_approval_overdue(f->store, 3001, on_overdue, &late_id), 1);
	assert_int_equal(juki_approval_overdue(f->store, 99999, on_overdue, &late_id), 0);
	assert_int_equal(overdue_calls, 1);
	/* Approved late: still possible, and says so. */
	assert_int_equal(juki_approval_confirm(f->store, 4000, late_id, "urn:boss", "boss", &late),
			 0);
	assert_int_equal(late, 1);
	assert_int_equal(juki_approval_confirm(f->store, 4000, 777, "urn:boss", "boss", &late),
			 JUKI_ENOTFOUND);
	list = juki_approval_list(f->store, "approved", 10);
	assert_int_equal(json_array_size(json_object_get(list, "approvals")), 2);
	json_decref(list);
	list = juki_approval_list(f->store, NULL, 1);
	assert_int_equal(json_array_size(json_object_get(list, "approvals")), 1);
	/* Newest first. */
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(list, "approvals"), 0), "id")),
			 ok_id);
	json_decref(list);
	list = juki_approval_list(f->store, "approved", 10);
	/* The late one was reported overdue. */
	assert_true(json_is_true(
	    json_object_get(json_array_get(json_object_get(list, "approvals"), 1), "overdue")));
	json_decref(list);
	assert_null(juki_approval_list(f->store, "bogus", 10));
}

/* Pending input refused: decided once, never overdue, listed as refused. */
static void
test_approval_refused(void **state)
{
	struct fixture *f = *state;
	int64_t id;
	int late;
	json_t *list;

	assert_int_equal(
	    juki_approval_pend(f->store, 1000, "correct", "tanaka", "24727059608", 3000, &id), 0);
	/* Not by the operator who made the input. */
	assert_int_equal(juki_approval_refuse(f->store, 2000, id, "urn:tanaka", "tanaka", &late),
			 JUKI_EPERM);
	assert_int_equal(juki_approval_confirm(f->store, 2000, id, "urn:tanaka", "tanaka", &late),
			 JUKI_EPERM);
	assert_int_equal(juki_approval_refuse(f->store, 2000, id, "urn:boss", "boss", &late), 0);
	assert_int_equal(late, 0);
	assert_int_equal(juki_approval_refuse(f->store, 2000, id, "urn:boss", "boss", &late),
			 JUKI_EEXIST);
	assert_int_equal(juki_approval_confirm(f->store, 2000, id, "urn:boss", "boss", &late),
			 JUKI_EEXIST);
	assert_int_equal(juki_approval_refuse(f->store, 2000, 777, "urn:boss", "boss", &late),
			 JUKI_ENOTFOUND);
	overdue_calls = 0;
	assert_int_equal(juki_approval_overdue(f->store, 99999, on_overdue, &id), 0);
	assert_int_equal(overdue_calls, 0);
	list = juki_approval_list(f->store, "refused", 10);
	assert_int_equal(json_array_size(json_object_get(list, "approvals")), 1);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(list, "approvals"), 0), "by")),
			    "urn:boss");
	json_decref(list);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test_setup_teardown(test_add_and_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_and_lockout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verifier_is_argon2id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_roles_and_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_approval_beforehand_used_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_approval_after_and_overdue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_approval_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
