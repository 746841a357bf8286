#include "juki/base/lines.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "juki/base/error.h"

#define BLOCK (1024 * 1024)

struct juki_lines {
	int fd;
	size_t max;
	char *buf; /* BLOCK + max + 2 bytes: a block after the longest partial line, and a NUL */
	size_t start, end, taken;
	int eof, failed;
};

struct juki_lines *
juki_lines_new(int fd, size_t max)
{
	struct juki_lines *l = calloc(1, sizeof(*l));

	if (l == NULL || max > SIZE_MAX / 2 - BLOCK || (l->buf = malloc(BLOCK + max + 2)) == NULL) {
		free(l);
		return NULL;
	}
	l->fd = fd;
	l->max = max;
	return l;
}

ssize_t
juki_lines_next(struct juki_lines *l, char **s)
{
	if (l->failed) {
		return l->failed;
	}
	for (;;) {
		char *at = l->buf + l->start, *nl = memchr(at, '\n', l->end - l->start);
		size_t n = nl != NULL ? (size_t)(nl - at) : l->end - l->start;
		ssize_t got;

		if (n > l->max) {
			return l->failed = JUKI_ETOOBIG;
		}
		if (nl != NULL || (l->eof && n > 0)) {
			at[n] = '\0';
			l->taken = n + (nl != NULL);
			l->start += l->taken;
			*s = at;
			return (ssize_t)n;
		}
		if (l->eof) {
			return -1;
		}
		/* The partial line (at most max bytes) to the front, a block after it. */
		memmove(l->buf, at, n);
		l->start = 0;
		l->end = n;
		do {
			got = read(l->fd, l->buf + l->end, BLOCK);
		} while (got < 0 && errno == EINTR);
		if (got < 0) {
			return l->failed = JUKI_EIO;
		}
		l->eof = got == 0;
		l->end += (size_t)got;
	}
}

size_t
juki_lines_taken(const struct juki_lines *l)
{
	return l->taken;
}

void
juki_lines_free(struct juki_lines *l)
{
	if (l != NULL) {
		free(l->buf);
		free(l);
	}
}
