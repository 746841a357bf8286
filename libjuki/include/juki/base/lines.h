/*
 * juki — the lines of a file an operator names (a bulk load, a list of
 * residents or queries), each at most a given length.
 *
 * getline() takes the memory of a whole line before its length can be
 * checked, so a wrong file without newlines (an archive, an image) costs
 * its whole size.  A reader here reads blocks of 1 MiB and cuts lines in
 * place, and refuses a line as soon as more than its limit has been read.
 */
#ifndef JUKI_LINES_H
#define JUKI_LINES_H

#include <stddef.h>
#include <sys/types.h>

struct juki_lines;

/*
 * juki_lines_new() - a reader of the lines of fd (read from where it
 * stands, never closed by the reader), each at most max bytes without its
 * '\n'.  NULL when out of memory.
 */
struct juki_lines *juki_lines_new(int fd, size_t max);

/*
 * juki_lines_next() - the next line, without its '\n', NUL-terminated in
 * place at *s until the next call (a '\r' before the '\n' is kept; a last
 * line without '\n' is a line).  Returns its length; -1 at the end of the
 * file; JUKI_ETOOBIG for a line longer than max (the reader stops there);
 * JUKI_EIO when fd cannot be read (errno kept).
 */
ssize_t juki_lines_next(struct juki_lines *l, char **s);

/* juki_lines_taken() - the bytes of the last line read, its '\n' included. */
size_t juki_lines_taken(const struct juki_lines *l);

void juki_lines_free(struct juki_lines *l);

#endif
