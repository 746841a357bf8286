/*
 * The printed document (ctl/print.c), checked as a reader checks a PDF:
 * poppler's pdftotext gives back the exact Japanese text (a kanji outside
 * the BMP and an ideographic variation sequence included), pdffonts shows
 * every font embedded, pdftoppm draws page 1; a character no font covers
 * is refused with its position and no file; a long table runs on to more
 * pages, its column titles repeated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "print.h"

#define OUT_MAX (256 * 1024)

#define YOSHI  "\xf0\xa0\xae\xb7"             /* 𠮷 U+20BB7 */
#define KATSU  "\xe8\x91\x9b\xf3\xa0\x84\x80" /* 葛󠄀 U+845B U+E0100 */
#define PUA    "\xee\x80\x80"                 /* U+E000, private use */
#define PLANE3 "\xf0\xbf\xbf\xbd"             /* U+3FFFD, unassigned */

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	return test_mkdtemp(dir, sizeof(dir), "print") == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return getenv("JUKI_KEEP") ? 0 : test_rm_rf(dir);
}

/* What a command printed on stdout (NUL-terminated, in a static buffer). */
static const char *
run(const char *fmt, ...)
{
	static char out[OUT_MAX];
	char cmd[1024];
	va_list ap;
	FILE *f;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	return out;
}

static const char *const columns[] = {"提供日", "提供先", "事務", "提供した情報"};
static const double widths[] = {0.2, 0.35, 0.15, 0.3};

static struct ctl_doc
doc_of(const char *const *cells, size_t n_rows)
{
	static const char *const header[] = {"住民票コード 12345678903"};
	static const char *const paras[] = {"上記のとおり開示します。"};
	struct ctl_doc d = {
	    .title = "本人確認情報の提供等の記録の開示",
	    .header = header,
	    .n_header = 1,
	    .columns = columns,
	    .widths = widths,
	    .n_columns = 4,
	    .cells = cells,
	    .n_rows = n_rows,
	    .paragraphs = paras,
	    .n_paragraphs = 1,
	    .date = "令和8年12月7日",
	    .issuer = "東京都知事",
	};
	return d;
}

static void
test_japanese_text_comes_back(void **state)
{
	const char *cells[] = {
	    "2026-12-01",
	    "urn:juki:agency:nenkin",
	    "1-2",
	    "氏名 " YOSHI "田 " KATSU "飾区",
	};
	struct ctl_doc d = doc_of(cells, 1);
	struct ctl_print_error err;
	char path[128], png[128];
	const char *out, *line;
	struct stat st;
	int fonts = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_int_equal(ctl_print_pdf_path(&d, path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	out = run("pdftotext -enc UTF-8 '%s' -", path);
	assert_non_null(strstr(out, "本人確認情報の提供等の記録の開示"));
	assert_non_null(strstr(out, "住民票コード 12345678903"));
	assert_non_null(strstr(out, "氏名 " YOSHI "田 " KATSU "飾区"));
	assert_non_null(strstr(out, "令和8年12月7日"));
	assert_non_null(strstr(out, "東京都知事"));
	assert_non_null(strstr(out, "提供した情報"));

	/* Every font embedded: the emb column of each row after the two title lines. */
	out = run("pdffonts '%s'", path);
	line = strchr(out, '\n');
	assert_non_null(line);
	line = strchr(line + 1, '\n');
	assert_non_null(line);
	for (line++; *line != '\0';) {
		const char *end = strchr(line, '\n');
		char row[256];
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		assert_true(len < sizeof(row));
		memcpy(row, line, len);
		row[len] = '\0';
		if (len > 0) {
			/* name type encoding emb sub uni object-id generation: emb is 5th from the
			 * end */
			char *tok[16], *save = NULL;
			int n = 0;

			for (char *t = strtok_r(row, " ", &save); t != NULL && n < 16;
			     t = strtok_r(NULL, " ", &save)) {
				tok[n++] = t;
			}
			assert_true(n >= 8);
			assert_string_equal(tok[n - 5], "yes");
			assert_non_null(strstr(tok[0], "NotoSerifCJKjp"));
			fonts++;
		}
		line = end != NULL ? end + 1 : line + len;
	}
	assert_true(fonts >= 1);

	snprintf(png, sizeof(png), "%s/page", dir);
	run("pdftoppm -r 40 -f 1 -l 1 -png '%s' '%s'", path, png);
	snprintf(png, sizeof(png), "%s/page-1.png", dir);
	assert_int_equal(stat(png, &st), 0);
	assert_true(st.st_size > 1000);
}

/* A refusal names the place, never the text; and leaves no file. */
static void
refused(const char *cell, const char *why)
{
	const char *cells[] = {"2026-12-01", "urn:juki:agency:nenkin", "1-2", cell};
	struct ctl_doc d = doc_of(cells, 1);
	struct ctl_print_error err;
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/refused.pdf", dir);
	memset(&err, 0, sizeof(err));
	assert_int_equal(ctl_print_check(&d, &err), -1);
	assert_int_equal(ctl_print_pdf_path(&d, path, &err), -1);
	assert_non_null(strstr(err.message, "row 1, column 4, character 3"));
	assert_non_null(strstr(err.message, why));
	assert_null(strstr(err.message, "氏"));
	assert_int_equal(stat(path, &st), -1);
}

static void
test_uncovered_character_refused(void **state)
{
	(void)state;
	refused("氏名" PUA "田", "no glyph for this character");
	refused("氏名" PLANE3 "田", "not a printable character");
	/* A variation the font has no glyph for: the base glyph would stand in for it. */
	refused("氏名\xe8\x91\x9b\xf3\xa0\x84\x8f", "no glyph for this variation");
	refused("氏名\t", "not a printable character");
	refused("氏名\xff", "not UTF-8");
}

static void
test_long_table_spans_pages(void **state)
{
	enum { ROWS = 150 };
	static char text[ROWS][4][32];
	const char *cells[ROWS * 4];
	struct ctl_doc d;
	struct ctl_print_error err;
	char path[128];
	const char *out;
	int pages;

	(void)state;
	for (int r = 0; r < ROWS; r++) {
		snprintf(text[r][0], sizeof(text[r][0]), "2026-11-%02d", r % 28 + 1);
		snprintf(text[r][1], sizeof(text[r][1]), "urn:juki:agency:a%d", r);
		snprintf(text[r][2], sizeof(text[r][2]), "%d-1", r);
		snprintf(text[r][3], sizeof(text[r][3]), "行%03d", r + 1);
		for (int c = 0; c < 4; c++) {
			cells[r * 4 + c] = text[r][c];
		}
	}
	d = doc_of(cells, ROWS);
	pages = ctl_print_pages(&d, &err);
	assert_true(pages >= 3);
	snprintf(path, sizeof(path), "%s/long.pdf", dir);
	assert_int_equal(ctl_print_pdf_path(&d, path, &err), 0);
	out = run("pdfinfo '%s' | grep '^Pages:'", path);
	assert_int_equal(atoi(out + strlen("Pages:")), pages);
	/* The page of the last row: the column titles again; the last page: the whole footer. */
	for (int i = 2; i <= pages; i++) {
		out = run("pdftotext -enc UTF-8 -f %d -l %d '%s' -", i, i, path);
		assert_null(strstr(out, "行001"));
		if (strstr(out, "行150") != NULL) {
			assert_non_null(strstr(out, "提供した情報"));
		}
	}
	assert_non_null(strstr(out, "令和8年12月7日\n東京都知事"));
	/* Every row printed once. */
	out = run("pdftotext -enc UTF-8 '%s' - | grep -c '^行[0-9][0-9][0-9]$'", path);
	assert_int_equal(atoi(out), ROWS);
}

static void
test_existing_file_refused(void **state)
{
	const char *cells[] = {"a", "b", "c", "d"};
	struct ctl_doc d = doc_of(cells, 1);
	struct ctl_print_error err;
	char path[128], buf[16];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/there.pdf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(ctl_print_pdf_path(&d, path, &err), -1);
	assert_non_null(strstr(err.message, "exists"));
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);

	/* To a descriptor: the whole PDF. */
	snprintf(path, sizeof(path), "%s/fd.pdf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(ctl_print_pdf_fd(&d, fd, &err), 0);
	close(fd);
	assert_non_null(strstr(run("pdfinfo '%s'", path), "Pages:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_japanese_text_comes_back),
	    cmocka_unit_test(test_uncovered_character_refused),
	    cmocka_unit_test(test_long_table_spans_pages),
	    cmocka_unit_test(test_existing_file_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
