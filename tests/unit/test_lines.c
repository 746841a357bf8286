/*
 * base/lines.c: the lines of a file, each at most a given length, read in
 * blocks and cut in place; a longer line refused as read.
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
#include <unistd.h>

#include "juki/base/error.h"
#include "juki/base/lines.h"

/* An unlinked scratch file, open for reading and writing. */
static int
scratch(void)
{
	char path[] = "/tmp/juki-lines-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	return fd;
}

/* A scratch file holding the n bytes of text, read from its start. */
static int
file_of(const char *text, size_t n)
{
	int fd = scratch();

	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Lines of every length from 0 to 300 across several 1 MiB blocks: each as written. */
static void
test_lines_across_blocks(void **state)
{
	size_t n = 0, cap = 4 << 20, count = 0, taken = 0, k = 0;
	char *text = malloc(cap), *s;
	struct juki_lines *l;
	ssize_t got;
	int fd;

	(void)state;
	assert_non_null(text);
	while (n + 302 < cap - 1) {
		size_t len = count % 301;

		memset(text + n, 'a' + (int)(count % 26), len);
		n += len;
		text[n++] = '\n';
		count++;
	}
	/* The last line without its newline. */
	memcpy(text + n, "last", 4);
	n += 4;
	fd = file_of(text, n);
	assert_non_null(l = juki_lines_new(fd, 300));
	for (size_t i = 0; i < count; i++) {
		size_t len = i % 301;

		got = juki_lines_next(l, &s);
		assert_int_equal(got, (ssize_t)len);
		assert_int_equal(s[len], '\0');
		assert_memory_equal(s, text + k, len);
		assert_int_equal(juki_lines_taken(l), len + 1);
		k += len + 1;
		taken += juki_lines_taken(l);
	}
	assert_int_equal(juki_lines_next(l, &s), 4);
	assert_string_equal(s, "last");
	taken += juki_lines_taken(l);
	assert_int_equal(taken, n);
	assert_int_equal(juki_lines_next(l, &s), -1);
	assert_int_equal(juki_lines_next(l, &s), -1);
	juki_lines_free(l);
	close(fd);
	free(text);
}

/* At most max bytes: max passes, max + 1 is refused, and the reader stays refused. */
static void
test_lines_limit(void **state)
{
	static const char text[] = "12345\n\r\n123456\nafter\n";
	struct juki_lines *l;
	char *s;
	int fd = file_of(text, sizeof(text) - 1);

	(void)state;
	assert_non_null(l = juki_lines_new(fd, 5));
	assert_int_equal(juki_lines_next(l, &s), 5);
	assert_string_equal(s, "12345");
	assert_int_equal(juki_lines_next(l, &s), 1); /* a '\r' is kept */
	assert_string_equal(s, "\r");
	assert_int_equal(juki_lines_next(l, &s), JUKI_ETOOBIG);
	assert_int_equal(juki_lines_next(l, &s), JUKI_ETOOBIG);
	juki_lines_free(l);
	close(fd);
}

/* 64 MiB without a newline: refused once the limit is passed, having read one block. */
static void
test_lines_no_newline(void **state)
{
	char *chunk = malloc(1 << 20), *s;
	struct juki_lines *l;
	int fd = scratch();

	(void)state;
	assert_non_null(chunk);
	memset(chunk, 'x', 1 << 20);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(write(fd, chunk, 1 << 20), 1 << 20);
	}
	free(chunk);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_non_null(l = juki_lines_new(fd, 64 * 1024));
	assert_int_equal(juki_lines_next(l, &s), JUKI_ETOOBIG);
	/* Read as far as the first block, not to the end. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 1 << 20);
	juki_lines_free(l);
	close(fd);
}

/* An empty file has no line; blank lines are lines; a folder cannot be read. */
static void
test_lines_empty_blank_and_unreadable(void **state)
{
	struct juki_lines *l;
	char *s;
	int fd = file_of("", 0);

	(void)state;
	assert_non_null(l = juki_lines_new(fd, 10));
	assert_int_equal(juki_lines_next(l, &s), -1);
	juki_lines_free(l);
	close(fd);

	fd = file_of("\n\nx", 3);
	assert_non_null(l = juki_lines_new(fd, 10));
	assert_int_equal(juki_lines_next(l, &s), 0);
	assert_int_equal(juki_lines_next(l, &s), 0);
	assert_int_equal(juki_lines_next(l, &s), 1);
	assert_int_equal(juki_lines_next(l, &s), -1);
	juki_lines_free(l);
	close(fd);

	assert_true((fd = open("/tmp", O_RDONLY | O_DIRECTORY)) >= 0);
	assert_non_null(l = juki_lines_new(fd, 10));
	assert_int_equal(juki_lines_next(l, &s), JUKI_EIO);
	juki_lines_free(l);
	close(fd);
	juki_lines_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_across_blocks),
	    cmocka_unit_test(test_lines_limit),
	    cmocka_unit_test(test_lines_no_newline),
	    cmocka_unit_test(test_lines_empty_blank_and_unreadable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
