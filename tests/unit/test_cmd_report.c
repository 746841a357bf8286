#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#include "helpers.h"

/*
 * The answer document of juki-ctl report answer and provide reply (ctl/cmd_report.c,
 * ctl_answer_document()): what is sent, and what is refused before anything is.
 */

#define MAX (256 * 1024)

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	return test_mkdtemp(dir, sizeof(dir), "cmd_report") == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_rm_rf(dir);
	return 0;
}

/* The document of len bytes of data, read back by ctl_answer_document(). */
static json_t *
doc(const void *data, size_t len, const char *media, size_t *size)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/doc", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return ctl_answer_document("test", path, media, size);
}

static const char *
media_of(const json_t *d)
{
	return json_string_value(json_object_get(d, "media"));
}

static void
test_text_and_pdf(void **state)
{
	static const char text[] = "管理措置は適切です。\n";
	static const char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
	size_t size = 0;
	json_t *d;

	(void)state;
	d = doc(text, strlen(text), NULL, &size);
	assert_non_null(d);
	assert_string_equal(media_of(d), "text/plain");
	assert_int_equal(size, strlen(text));
	assert_string_equal(json_string_value(json_object_get(d, "data")),
			    "566h55CG5o6q572u44Gv6YGp5YiH44Gn44GZ44CCCg==");
	json_decref(d);
	/* A PDF is known by its first bytes, whatever follows them. */
	d = doc(pdf, strlen(pdf), NULL, &size);
	assert_non_null(d);
	assert_string_equal(media_of(d), "application/pdf");
	json_decref(d);
	d = doc(pdf, strlen(pdf), "application/pdf", &size);
	assert_non_null(d);
	json_decref(d);
}

static void
test_size(void **state)
{
	char *big = malloc(MAX + 1);
	size_t size = 0;
	json_t *d;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', MAX + 1);
	d = doc(big, MAX, NULL, &size);
	assert_non_null(d);
	assert_int_equal(size, MAX);
	json_decref(d);
	assert_null(doc(big, MAX + 1, NULL, &size));
	assert_null(doc(big, 0, NULL, &size));
	free(big);
}

static void
test_refused(void **state)
{
	char path[128];
	size_t size = 0;

	(void)state;
	/* Not a PDF, though said to be one; a PDF said to be text is not UTF-8. */
	assert_null(doc("a text\n", 7, "application/pdf", &size));
	assert_null(doc("%PDF-1.4\n\xff\xfe", 11, "text/plain", &size));
	assert_null(doc("\xff\xfe", 2, NULL, &size));
	assert_null(doc("a\0b", 3, NULL, &size));
	assert_null(doc("a text\n", 7, "text/html", &size));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_null(ctl_answer_document("test", path, NULL, &size));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_and_pdf),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
