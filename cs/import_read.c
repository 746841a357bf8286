#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import_read.h"
#include "juki/base/error.h"

/*
 * libcsv's options: a quote where RFC 4180 allows none stops the parse
 * (CSV_STRICT), so that it is flagged on its cell; a quoted cell open at the
 * end of the file is an error of csv_fini() (CSV_STRICT_FINI).
 */
#define CSV_OPTS (CSV_STRICT | CSV_STRICT_FINI)

/* No byte is a space to trim: a cell is the bytes of the file. */
static int
no_space(unsigned char c)
{
	(void)c;
	return 0;
}

/* Only LF ends a record: a lone CR is data, a CR before an LF is dropped before libcsv. */
static int
lf_ends(unsigned char c)
{
	return c == '\n';
}

static int
csv_start(struct imp_reader *r)
{
	if (r->csv_ready) {
		csv_free(&r->csv);
		r->csv_ready = 0;
	}
	if (csv_init(&r->csv, CSV_OPTS) != 0) {
		return JUKI_ENOMEM;
	}
	csv_set_space_func(&r->csv, no_space);
	csv_set_term_func(&r->csv, lf_ends);
	/* Grown by 4 KiB at a time: a cell of the format is at most 1.5 KiB. */
	csv_set_blk_size(&r->csv, 4096);
	r->csv_ready = 1;
	return 0;
}

int
imp_reader_init(struct imp_reader *r, int fd, const void *mem, size_t mem_len, uint64_t max_bytes,
		size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->mem = mem;
	r->mem_len = mem_len;
	r->max_bytes = max_bytes;
	r->max_line = max_line;
	r->sha = EVP_MD_CTX_new();
	r->chunk = fd >= 0 ? malloc(IMP_CHUNK) : NULL;
	if (r->sha == NULL || (fd >= 0 && r->chunk == NULL) || csv_start(r) != 0) {
		return JUKI_ENOMEM;
	}
	return 0;
}

void
imp_reader_free(struct imp_reader *r)
{
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (r->csv_ready) {
		csv_free(&r->csv);
		r->csv_ready = 0;
	}
	EVP_MD_CTX_free(r->sha);
	r->sha = NULL;
	free(r->chunk);
	free(r->buf);
	free(r->cells);
	r->chunk = r->buf = NULL;
	r->cells = NULL;
}

size_t
imp_reader_mem(const struct imp_reader *r)
{
	return (r->chunk ? IMP_CHUNK : 0) + r->bcap + r->ccap * sizeof(struct imp_cell) +
	       csv_get_buffer_size((struct csv_parser *)&r->csv);
}

/* The next chunk; r->over set past max_bytes. */
static int
refill(struct imp_reader *r)
{
	ssize_t n;

	if (r->eof) {
		return 0;
	}
	if (r->fd < 0) {
		r->data = r->mem;
		r->len = r->mem_len;
		r->pos = 0;
		r->eof = 1;
		n = (ssize_t)r->mem_len;
	} else {
		do {
			n = read(r->fd, r->chunk, IMP_CHUNK);
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			return -errno;
		}
		r->data = r->chunk;
		r->len = (size_t)n;
		r->pos = 0;
		if (n == 0) {
			r->eof = 1;
		}
	}
	if (n > 0 && EVP_DigestUpdate(r->sha, r->data, (size_t)n) != 1) {
		return JUKI_EIO;
	}
	r->bytes += (uint64_t)n;
	if (r->bytes > r->max_bytes) {
		r->over = 1;
	}
	return 0;
}

/* More bytes at r->data + r->pos: 1, 0 at the end (or over), or a negative code. */
static int
more(struct imp_reader *r)
{
	int rc;

	while (r->pos == r->len) {
		if (r->eof || r->over) {
			return 0;
		}
		if ((rc = refill(r)) != 0) {
			return rc;
		}
	}
	return r->over ? 0 : 1;
}

int
imp_reader_start(struct imp_reader *r)
{
	int rc;

	r->pos = r->len = 0;
	r->eof = r->over = 0;
	r->bytes = 0;
	r->line = 1;
	r->cr = 0;
	if (r->fd >= 0 && lseek(r->fd, 0, SEEK_SET) != 0) {
		return -errno;
	}
	if (EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1) {
		return JUKI_EIO;
	}
	if ((rc = csv_start(r)) != 0 || (rc = refill(r)) != 0) {
		return rc;
	}
	if (r->len >= 3 && memcmp(r->data, "\xEF\xBB\xBF", 3) == 0) {
		r->pos = 3;
	}
	return 0;
}

int
imp_reader_sha256(struct imp_reader *r, unsigned char md[32])
{
	unsigned int n = 0;

	return EVP_DigestFinal_ex(r->sha, md, &n) == 1 && n == 32 ? 0 : JUKI_EIO;
}

static void
record_reset(struct imp_reader *r)
{
	r->blen = 0;
	r->ncells = 0;
	r->rec_cells = 0;
	r->rec_flags = 0;
	r->rec_line = r->line;
	r->in_rec = r->rec_end = 0;
	r->raw = 0;
	r->cell_flags = 0;
}

static int
buf_reserve(struct imp_reader *r, size_t n)
{
	if (r->blen + n > r->bcap) {
		size_t cap = r->bcap ? r->bcap : 1024;
		uint8_t *b;

		while (cap < r->blen + n) {
			cap *= 2;
		}
		if ((b = realloc(r->buf, cap)) == NULL) {
			return JUKI_ENOMEM;
		}
		r->buf = b;
		r->bcap = cap;
	}
	return 0;
}

/* libcsv: a cell of the record is complete. */
static void
on_cell(void *s, size_t len, void *arg)
{
	struct imp_reader *r = arg;
	unsigned char flags = r->cell_flags;
	struct imp_cell *c;

	r->cell_flags = 0;
	r->rec_cells++;
	if (r->err != 0 || (r->rec_flags & IMP_REC_SKIP)) {
		return;
	}
	if (r->ncells == IMP_CELLS_MAX) {
		r->rec_flags |= IMP_REC_TOO_MANY;
		return;
	}
	if (r->ncells == r->ccap) {
		size_t cap = r->ccap ? r->ccap * 2 : 16;

		if ((c = realloc(r->cells, cap * sizeof(*c))) == NULL) {
			r->err = JUKI_ENOMEM;
			return;
		}
		r->cells = c;
		r->ccap = cap;
	}
	if (buf_reserve(r, len + 1) != 0) {
		r->err = JUKI_ENOMEM;
		return;
	}
	if (len > 0) {
		memcpy(r->buf + r->blen, s, len);
		if (memchr(s, '\0', len) != NULL) {
			flags |= IMP_CELL_NUL;
		}
	}
	c = &r->cells[r->ncells++];
	c->off = r->blen;
	c->len = len;
	c->flags = flags;
	r->blen += len;
	r->buf[r->blen++] = '\0';
}

/* libcsv: the record is complete. */
static void
on_record(int c, void *arg)
{
	struct imp_reader *r = arg;

	(void)c;
	r->rec_end = 1;
}

/*
 * n bytes to libcsv.  A quote where RFC 4180 allows none stops its strict
 * parse: the cell is flagged, and the byte read without the strict rule,
 * as data; after a closing quote, the cell goes on unquoted.
 */
static int
feed(struct imp_reader *r, const uint8_t *s, size_t n)
{
	if (!r->in_rec) {
		r->in_rec = 1;
		r->rec_line = r->line;
	}
	while (n > 0) {
		size_t done = csv_parse(&r->csv, s, n, on_cell, on_record, r);
		int quoted;

		if (r->err != 0) {
			return r->err;
		}
		if (done == n) {
			break;
		}
		if (csv_error(&r->csv) != CSV_EPARSE) {
			return JUKI_ENOMEM;
		}
		quoted = r->csv.quoted;
		r->cell_flags |= IMP_CELL_BAD_QUOTE;
		csv_set_opts(&r->csv, CSV_OPTS & ~CSV_STRICT);
		done += csv_parse(&r->csv, s + done, 1, on_cell, on_record, r);
		csv_set_opts(&r->csv, CSV_OPTS);
		if (quoted) {
			r->csv.quoted = 0;
		}
		if (r->err != 0) {
			return r->err;
		}
		s += done;
		n -= done;
	}
	if (r->rec_flags & IMP_REC_TOO_LONG && r->csv.entry_pos > 1) {
		/*
		 * Bytes of a record no longer kept: libcsv's cell may not grow
		 * with them.  One byte is left, which the end of a quoted cell
		 * takes back (its closing quote).
		 */
		r->csv.entry_pos = 1;
	}
	return 0;
}

static void
count_raw(struct imp_reader *r, size_t n)
{
	r->raw += n;
	if (r->raw > r->max_line) {
		r->rec_flags |= IMP_REC_TOO_LONG;
	}
}

/* A quoted cell open at the end of the file: the cell and the record as they are. */
static int
unterminated(struct imp_reader *r)
{
	int rc;

	r->rec_flags |= IMP_REC_UNTERMINATED;
	csv_set_opts(&r->csv, CSV_OPTS & ~CSV_STRICT_FINI);
	rc = csv_fini(&r->csv, on_cell, on_record, r);
	csv_set_opts(&r->csv, CSV_OPTS);
	return rc != 0 ? JUKI_EIO : r->err;
}

int
imp_read_csv(struct imp_reader *r)
{
	int rc;

	record_reset(r);
	for (;;) {
		const uint8_t *p, *nl;
		size_t n;

		if ((rc = more(r)) < 0) {
			return rc;
		}
		if (rc == 0) {
			if (r->over) {
				return 0;
			}
			/* The end: a CR held back is data of a record, nothing alone. */
			if (r->cr) {
				r->cr = 0;
				if (r->in_rec && (rc = feed(r, (const uint8_t *)"\r", 1)) != 0) {
					return rc;
				}
			}
			if (!r->in_rec) {
				return 0;
			}
			if (csv_fini(&r->csv, on_cell, on_record, r) != 0) {
				rc = unterminated(r);
			}
			return rc != 0 ? rc : r->err != 0 ? r->err : 1;
		}
		p = r->data + r->pos;
		n = r->len - r->pos;
		if (r->cr) {
			r->cr = 0;
			if (p[0] != '\n') {
				count_raw(r, 1);
				if ((rc = feed(r, (const uint8_t *)"\r", 1)) != 0) {
					return rc;
				}
			} else if (r->in_rec) {
				count_raw(r, 1); /* dropped, but part of the record's bytes */
			}
		}
		if (p[0] == '\n') {
			r->pos++;
			r->line++;
			if (!r->in_rec) {
				r->rec_line = r->line; /* a blank line */
				continue;
			}
			if ((rc = feed(r, p, 1)) != 0) {
				return rc;
			}
			if (r->rec_end) {
				return 1;
			}
			count_raw(r, 1); /* a line feed in a quoted cell */
			continue;
		}
		/* Up to the next LF; a CR at the end waits for the byte after it. */
		nl = memchr(p, '\n', n);
		if (nl != NULL) {
			n = (size_t)(nl - p);
		}
		r->pos += n;
		if (p[n - 1] == '\r') {
			r->cr = 1;
			n--;
		}
		if (n > 0) {
			count_raw(r, n);
			if ((rc = feed(r, p, n)) != 0) {
				return rc;
			}
		}
	}
}

int
imp_read_line(struct imp_reader *r)
{
	int rc, blank;

again:
	record_reset(r);
	blank = 1;
	for (;;) {
		const uint8_t *p, *nl;
		size_t n, keep;

		if ((rc = more(r)) < 0) {
			return rc;
		}
		if (rc == 0) {
			if (blank) {
				return 0;
			}
			break;
		}
		p = r->data + r->pos;
		n = r->len - r->pos;
		nl = memchr(p, '\n', n);
		if (nl != NULL) {
			n = (size_t)(nl - p);
		}
		for (size_t i = 0; blank && i < n; i++) {
			blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
		}
		keep = r->raw >= r->max_line ? 0 : r->max_line - r->raw;
		if (keep > n) {
			keep = n;
		}
		count_raw(r, n);
		if (keep > 0) {
			if (buf_reserve(r, keep) != 0) {
				return JUKI_ENOMEM;
			}
			memcpy(r->buf + r->blen, p, keep);
			r->blen += keep;
		}
		r->pos += n;
		if (nl != NULL) {
			r->pos++;
			r->line++;
			if (blank) {
				goto again;
			}
			break;
		}
	}
	while (r->blen > 0 && r->buf[r->blen - 1] == '\r') {
		r->blen--;
	}
	if (buf_reserve(r, 1) != 0) {
		return JUKI_ENOMEM;
	}
	r->buf[r->blen++] = '\0';
	return 1;
}
