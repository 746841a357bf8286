/*
 * juki — what the unit tests share: a fresh scratch directory, its removal
 * and a copy of a file
 * (after Knot DNS's tests/tap/files.h).  Static inline, so that every test
 * executable takes it by including this header and links nothing more.
 */
#ifndef JUKI_TESTS_HELPERS_H
#define JUKI_TESTS_HELPERS_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/*
 * test_mkdtemp() - make a new directory /tmp/juki-<name>-XXXXXX, mode 0700,
 * and write its path into buf (size bytes).  The path stays short, so that
 * the UNIX sockets some tests make inside it fit sun_path.
 *
 * Return: buf, or NULL when the path does not fit or mkdtemp() failed.
 */
static inline char *
test_mkdtemp(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "/tmp/juki-%s-XXXXXX", name);

	if (n < 0 || (size_t)n >= size) {
		return NULL;
	}
	return mkdtemp(buf);
}

static inline int
test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * test_rm_rf() - remove path and everything under it, without following
 * symbolic links.  A path that does not exist (or NULL, or "") is no error.
 *
 * Return: 0, or -1 with errno set.
 */
static inline int
test_rm_rf(const char *path)
{
	struct stat st;

	if (path == NULL || path[0] == '\0' || (lstat(path, &st) != 0 && errno == ENOENT)) {
		return 0;
	}
	return nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * test_copy_file() - copy the file from to to (created or truncated).
 *
 * Return: 0, or -1 with errno set.
 */
static inline int
test_copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;
	int rc = in != NULL && out != NULL ? 0 : -1;

	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
		rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
	}
	if (in != NULL && ferror(in)) {
		rc = -1;
	}
	if (in != NULL) {
		fclose(in);
	}
	if (out != NULL && fclose(out) != 0) {
		rc = -1;
	}
	return rc;
}

#endif
