#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "juki/base/text.h"

/* Every string is written byte for byte as jansson writes it (JSON_COMPACT). */
static void
test_str_as_jansson(void **state)
{
	static const char *const cases[] = {
	    "",
	    "plain",
	    "山田 太郎",
	    "東京都千代田区霞が関二丁目1番2号",
	    "quote \" and backslash \\ and slash /",
	    "\b\f\n\r\t",
	    "\001\002\037 ctl",
	    "del \177 kept",
	    "tail\\",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct juki_text t = {0};
		json_t *s = json_string(cases[i]);
		char *want = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);

		assert_non_null(want);
		assert_int_equal(juki_text_str(&t, cases[i]), 0);
		assert_string_equal(t.buf, want);
		assert_int_equal(t.len, strlen(want));
		free(want);
		json_decref(s);
		juki_text_free(&t);
	}
}

/* Pieces append; the buffer grows past its first size and stays terminated. */
static void
test_grows(void **state)
{
	struct juki_text t = {0};
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(juki_text_lit(&t, i ? ",x" : "x"), 0);
	}
	assert_int_equal(juki_text_int(&t, -42), 0);
	assert_int_equal(t.len, 1999 + 3);
	assert_int_equal(strlen(t.buf), t.len);
	assert_string_equal(t.buf + t.len - 5, ",x-42");
	juki_text_free(&t);
	assert_null(t.buf);
	assert_int_equal(t.len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_str_as_jansson),
	    cmocka_unit_test(test_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
