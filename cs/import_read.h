/*
 * juki-csd — the reader of import files (docs/import.md): the bytes of a
 * file or of memory, read in chunks with their SHA-256, as records.  CSV
 * records are cut into cells by libcsv (RFC 4180); JSON Lines records are
 * lines.  The reader knows nothing of the format's columns and rules:
 * import.c applies those.
 *
 * Kept from the file: a UTF-8 BOM at the start is skipped; a CR right
 * before an LF is dropped (CR LF ends a record as LF does); blank lines are
 * skipped; each record knows the line where it starts.  A record over
 * max_line bytes is flagged, its bytes no longer kept, but a CSV record's
 * quotes are still followed so that the next record starts where it does.
 */
#ifndef JUKI_CS_IMPORT_READ_H
#define JUKI_CS_IMPORT_READ_H

#include <stddef.h>
#include <stdint.h>

#include <csv.h>
#include <openssl/evp.h>

/* Cell flags, reported per column. */
#define IMP_CELL_NUL       0x01 /* a NUL byte */
#define IMP_CELL_BAD_QUOTE 0x02 /* a quote inside an unquoted cell or after a closing quote */

/* Record flags. */
#define IMP_REC_TOO_LONG     0x01 /* over max_line bytes: its cells are not kept */
#define IMP_REC_UNTERMINATED 0x02 /* a quoted cell open at the end of the file */
#define IMP_REC_TOO_MANY     0x04 /* more cells than IMP_CELLS_MAX: no more are kept */
#define IMP_REC_SKIP         (IMP_REC_TOO_LONG | IMP_REC_TOO_MANY)

/* Cells kept of one CSV record: more than the format has columns is refused anyway. */
#define IMP_CELLS_MAX 64

/* The size of a read; memory for one chunk when reading a file. */
#define IMP_CHUNK ((size_t)64 * 1024)

/* A cell of the record: len bytes at buf + off, followed by a NUL. */
struct imp_cell {
	size_t off, len;
	unsigned char flags;
};

struct imp_reader {
	/* The source: a file descriptor read in chunks, or memory. */
	int fd;
	const uint8_t *mem;
	size_t mem_len;
	uint8_t *chunk;
	const uint8_t *data;
	size_t pos, len;
	int eof;
	uint64_t bytes, max_bytes;
	size_t max_line;
	int over; /* more than max_bytes read: the reading stopped */
	size_t line;
	EVP_MD_CTX *sha;

	/*
	 * The record: CSV cells, each followed by a NUL, or a line.  rec_cells
	 * counts the cells of the record, kept or not.
	 */
	uint8_t *buf;
	size_t blen, bcap;
	struct imp_cell *cells;
	size_t ncells, ccap, rec_cells;
	size_t rec_line;
	int rec_flags;

	/* CSV: the parser, a CR not yet known to end a line, the record's state. */
	struct csv_parser csv;
	int csv_ready;
	int cr;
	int in_rec, rec_end, err;
	size_t raw;
	unsigned char cell_flags;
};

/*
 * imp_reader_init() - read from fd (which the reader then owns) or, when fd
 * is negative, the mem_len bytes at mem.  Returns 0 or JUKI_ENOMEM.
 */
int imp_reader_init(struct imp_reader *r, int fd, const void *mem, size_t mem_len,
		    uint64_t max_bytes, size_t max_line);

/*
 * imp_reader_start() - (again) from the first byte: the first chunk read,
 * a BOM skipped, the SHA-256 started.  0 or a negative code.
 */
int imp_reader_start(struct imp_reader *r);

/*
 * imp_read_csv() / imp_read_line() - the next record: 1, 0 at the end (or
 * when r->over is set: more than max_bytes), or a negative code.
 */
int imp_read_csv(struct imp_reader *r);
int imp_read_line(struct imp_reader *r);

/* imp_reader_sha256() - the SHA-256 of the bytes read since imp_reader_start(). */
int imp_reader_sha256(struct imp_reader *r, unsigned char md[32]);

/* imp_reader_mem() - memory the reader holds. */
size_t imp_reader_mem(const struct imp_reader *r);

void imp_reader_free(struct imp_reader *r);

#endif
