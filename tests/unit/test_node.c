#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "juki/base/error.h"
#include "juki/node/node.h"

/*
 * The slots in which the runtime's shared modules (conflicts, provide,
 * provision notices, reports) find their state from the node alone
 * (node.h, juki_node_module()).
 */

/* Empty at first: every module reads NULL until it is started. */
static void
test_modules_empty(void **state)
{
	struct juki_node_modules m;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (int id = 0; id < JUKI_MODULES; id++) {
		assert_null(juki_node_modules_get(&m, (enum juki_module)id));
	}
}

/* Each module finds its own state, whatever the others hold. */
static void
test_modules_each_its_own(void **state)
{
	struct juki_node_modules m;
	int a, b, c, d;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_CONFLICTS, &a), 0);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_PROVIDE, &b), 0);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_PROVNOTICE, &c), 0);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_REPORTS, &d), 0);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_CONFLICTS), &a);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_PROVIDE), &b);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_PROVNOTICE), &c);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_REPORTS), &d);
}

/* A module runs once at a node: a second start is refused and the first keeps its slot. */
static void
test_modules_second_start_refused(void **state)
{
	struct juki_node_modules m;
	int first, second;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_PROVIDE, &first), 0);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_PROVIDE, &second), JUKI_EEXIST);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_PROVIDE), &first);
	/* the same state again is no second start */
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_PROVIDE, &first), 0);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_PROVIDE), &first);
}

/*
 * A stop empties its own slot only: the refused second start's stop
 * leaves the first one's state, and the first's stop empties it, so the
 * module can start again (a reload that restarts it).
 */
static void
test_modules_stop_clears_its_own(void **state)
{
	struct juki_node_modules m;
	int first, second, other;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_REPORTS, &first), 0);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_CONFLICTS, &other), 0);
	juki_node_modules_clear(&m, JUKI_MODULE_REPORTS, &second);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_REPORTS), &first);
	juki_node_modules_clear(&m, JUKI_MODULE_REPORTS, NULL);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_REPORTS), &first);
	juki_node_modules_clear(&m, JUKI_MODULE_REPORTS, &first);
	assert_null(juki_node_modules_get(&m, JUKI_MODULE_REPORTS));
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_CONFLICTS), &other);
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_REPORTS, &second), 0);
	assert_ptr_equal(juki_node_modules_get(&m, JUKI_MODULE_REPORTS), &second);
	/* set with NULL empties whatever the slot holds */
	assert_int_equal(juki_node_modules_set(&m, JUKI_MODULE_REPORTS, NULL), 0);
	assert_null(juki_node_modules_get(&m, JUKI_MODULE_REPORTS));
}

/* An id out of range (a cast integer) is refused and reads NULL, never past the table. */
static void
test_modules_out_of_range(void **state)
{
	struct {
		struct juki_node_modules m;
		void *after; /* what a write past the table would hit */
	} s;
	int x;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(juki_node_modules_set(&s.m, JUKI_MODULES, &x), JUKI_EINVAL);
	assert_int_equal(juki_node_modules_set(&s.m, (enum juki_module) - 1, &x), JUKI_EINVAL);
	assert_null(s.after);
	assert_null(juki_node_modules_get(&s.m, JUKI_MODULES));
	assert_null(juki_node_modules_get(&s.m, (enum juki_module) - 1));
	juki_node_modules_clear(&s.m, JUKI_MODULES, &x);
	for (int id = 0; id < JUKI_MODULES; id++) {
		assert_null(juki_node_modules_get(&s.m, (enum juki_module)id));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_modules_empty),
	    cmocka_unit_test(test_modules_each_its_own),
	    cmocka_unit_test(test_modules_second_start_refused),
	    cmocka_unit_test(test_modules_stop_clears_its_own),
	    cmocka_unit_test(test_modules_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
