/*
 * The integrity member of a heartbeat as a watcher checks it
 * (juki_integrity_member_check(), node/integrity.h), and the section rule of
 * integrity: (enforce needs a manifest).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "juki/base/error.h"
#include "juki/node/integrity.h"

#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static json_t *
member(void)
{
	json_t *v = json_pack("{s:s,s:s,s:s,s:n,s:b,s:[]}", "version", "0.1.0", "binary", HEX,
			      "config", HEX, "manifest", "ok", 1, "mismatches");

	assert_non_null(v);
	return v;
}

static void
test_member_good(void **state)
{
	json_t *v = member();
	char why[128];

	(void)state;
	assert_int_equal(juki_integrity_member_check(v, why, sizeof(why)), 0);
	json_object_set_new(v, "manifest", json_string(HEX));
	json_object_set_new(v, "ok", json_false());
	json_object_set_new(v, "mismatches", json_pack("[s]", "/etc/juki/csd.yaml"));
	json_object_set_new(v, "future", json_true()); /* forward compatible */
	assert_int_equal(juki_integrity_member_check(v, why, sizeof(why)), 0);
	json_decref(v);
}

static void
test_member_bad(void **state)
{
	static const struct {
		const char *key;
		const char *json; /* the member's value; NULL: left out */
		const char *why;
	} bad[] = {
	    {"version", NULL, "integrity.version"},
	    {"version", "\"\"", "integrity.version"},
	    {"version", "\"0123456789012345678901234567890123\"", "integrity.version"},
	    {"binary", "\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"",
	     "integrity.binary"},
	    {"config", "\"abc\"", "integrity.config"},
	    {"manifest", "1", "integrity.manifest"},
	    {"ok", "null", "integrity.ok"},
	    {"ok", NULL, "integrity.ok"},
	    {"mismatches", "\"/etc\"", "integrity.mismatches"},
	    {"mismatches", "[1]", "integrity.mismatches[0]"},
	    {"mismatches", "[\"\"]", "integrity.mismatches[0]"},
	};
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = member();

		if (bad[i].json == NULL) {
			json_object_del(v, bad[i].key);
		} else {
			json_object_set_new(v, bad[i].key,
					    json_loads(bad[i].json, JSON_DECODE_ANY, NULL));
		}
		assert_int_equal(juki_integrity_member_check(v, why, sizeof(why)), JUKI_EINVAL);
		assert_non_null(strstr(why, bad[i].why));
		json_decref(v);
	}
	/* too many mismatches */
	{
		json_t *v = member(), *list = json_object_get(v, "mismatches");

		for (int i = 0; i < 1025; i++) {
			json_array_append_new(list, json_string("/x"));
		}
		assert_int_equal(juki_integrity_member_check(v, why, sizeof(why)), JUKI_EINVAL);
		json_decref(v);
	}
	assert_int_equal(juki_integrity_member_check(json_null(), why, sizeof(why)), JUKI_EINVAL);
}

static void
test_conf_rule(void **state)
{
	struct juki_integrity_conf c = {NULL, true};
	const char *blame = NULL;
	char why[128];

	(void)state;
	assert_int_equal(juki_integrity_conf_check(&c, &blame, why, sizeof(why)), JUKI_ECONFIG);
	assert_string_equal(blame, "enforce");
	c.manifest = (char *)"/etc/juki/csd.manifest.json";
	assert_int_equal(juki_integrity_conf_check(&c, &blame, why, sizeof(why)), 0);
	c.manifest = NULL;
	c.enforce = false;
	assert_int_equal(juki_integrity_conf_check(&c, &blame, why, sizeof(why)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_member_good),
	    cmocka_unit_test(test_member_bad),
	    cmocka_unit_test(test_conf_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
