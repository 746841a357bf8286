/*
 * The certified copy's layout (ctl/copydoc.c): which header lines and
 * columns the items asked give, the dates, the certification, the serial;
 * and that print.h accepts 𠮷 and a variation sequence and refuses a
 * character the font lacks, naming its place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copydoc.h"

static json_t *
result(const char *items, const char *name, int serial)
{
	char text[2048];
	json_t *r;

	snprintf(text, sizeof(text),
		 "{\"id\": \"01a24e39-e3da-7054-abca-b8eaa3389074\","
		 " \"request\": {\"home\": \"131016\", \"items\": %s},"
		 " \"copy\": {\"address\": \"東京都千代田区千代田1番\", \"householder\": \"%s\","
		 " \"honseki\": \"東京都千代田区\","
		 " \"persons\": [{\"name\": \"%s\", \"birth\": \"1980-04-01\", \"sex\": 1,"
		 " \"resident_since\": \"2020-12-31\", \"relation\": \"世帯主\","
		 " \"code\": \"24727059608\"},"
		 " {\"name\": \"葛\xf3\xa0\x84\x80西 花子\", \"birth\": \"1982-05-05\", \"sex\": 2,"
		 " \"resident_since\": \"2021-01-01\"}]},"
		 " \"date\": \"2026-12-07\", \"mayor\": \"大阪市長　大阪　一郎\"}",
		 items, name, name);
	r = json_loads(text, 0, NULL);
	assert_non_null(r);
	/* As the CS gives it: optional items only when asked. */
	if (strstr(items, "householder") == NULL) {
		json_object_del(json_object_get(r, "copy"), "householder");
	}
	if (strstr(items, "honseki") == NULL) {
		json_object_del(json_object_get(r, "copy"), "honseki");
	}
	if (serial > 0) {
		json_object_set_new(r, "serial", json_integer(serial));
	}
	return r;
}

static void
test_layout(void **state)
{
	struct ctl_copy_doc *cd = malloc(sizeof(*cd));
	json_t *r = result("[\"householder\", \"relation\"]", "\xf0\xa0\xae\xb7田 太郎", 1001);

	(void)state;
	ctl_copy_doc_build(r, cd);
	assert_string_equal(cd->doc.title, "住民票の写し");
	/* 世帯主 given, 本籍 not asked: the address and the householder only. */
	assert_int_equal(cd->doc.n_header, 2);
	assert_string_equal(cd->doc.header[0], "住所　東京都千代田区千代田1番");
	assert_string_equal(cd->doc.header[1], "世帯主　\xf0\xa0\xae\xb7田 太郎");
	assert_int_equal(cd->doc.n_columns, 5);
	assert_string_equal(cd->doc.columns[3], "続柄");
	assert_int_equal(cd->doc.n_rows, 2);
	assert_string_equal(cd->doc.cells[0], "\xf0\xa0\xae\xb7田 太郎");
	assert_string_equal(cd->doc.cells[1], "1980年4月1日");
	assert_string_equal(cd->doc.cells[2], "男");
	assert_string_equal(cd->doc.cells[3], "世帯主");
	assert_string_equal(cd->doc.cells[4], "2020年12月31日");
	assert_string_equal(cd->doc.cells[7], "女");
	assert_string_equal(cd->doc.cells[8], ""); /* no relation given for the second */
	assert_string_equal(cd->doc.paragraphs[0], CTL_COPY_CERTIFY);
	assert_string_equal(cd->doc.date, "2026年12月7日");
	assert_string_equal(cd->doc.issuer, "大阪市長　大阪　一郎");
	assert_string_equal(cd->doc.serial, "用紙番号　000001001");
	{
		double sum = 0;

		for (size_t i = 0; i < cd->doc.n_columns; i++) {
			sum += cd->doc.widths[i];
		}
		assert_true(sum > 0.999 && sum < 1.001);
	}
	json_decref(r);
	/* The basic items alone: four columns, the address alone; no serial yet. */
	r = result("[]", "a", 0);
	ctl_copy_doc_build(r, cd);
	assert_int_equal(cd->doc.n_header, 1);
	assert_int_equal(cd->doc.n_columns, 4);
	assert_string_equal(cd->doc.serial, "用紙番号　000000000");
	json_decref(r);
	/* 本籍 and the code asked: the code's column last. */
	r = result("[\"honseki\", \"code\"]", "a", 7);
	ctl_copy_doc_build(r, cd);
	assert_int_equal(cd->doc.n_header, 2);
	assert_string_equal(cd->doc.header[1], "本籍　東京都千代田区");
	assert_int_equal(cd->doc.n_columns, 5);
	assert_string_equal(cd->doc.columns[4], "住民票コード");
	assert_string_equal(cd->doc.cells[4], "24727059608");
	json_decref(r);
	free(cd);
}

static void
test_glyphs(void **state)
{
	struct ctl_copy_doc *cd = malloc(sizeof(*cd));
	struct ctl_print_error err;
	json_t *r = result("[\"relation\"]", "\xf0\xa0\xae\xb7田 太郎", 1);

	(void)state;
	ctl_copy_doc_build(r, cd);
	assert_int_equal(ctl_print_check(&cd->doc, &err), 0);
	assert_int_equal(ctl_print_pages(&cd->doc, &err), 1);
	json_decref(r);
	/* A 外字 of the private use area: refused, with its place and never the text. */
	r = result("[\"relation\", \"householder\"]", "山\xee\x80\x80 太郎", 1);
	ctl_copy_doc_build(r, cd);
	assert_int_equal(ctl_print_check(&cd->doc, &err), -1);
	assert_non_null(strstr(err.message, "header line 2, character 6"));
	assert_null(strstr(err.message, "山"));
	json_decref(r);
	free(cd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_glyphs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
