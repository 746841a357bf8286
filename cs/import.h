/*
 * juki-csd — input from the resident record system (住民記録システム): the
 * reader and validator of import files (docs/import.md).
 *
 * A file holds the changes this municipality made to its residents'
 * identity information, one row per change: CSV with a header row, or JSON
 * Lines.  The file is validated whole before anything is applied, and
 * applied all or nothing (第4-8(2)エ); the daemon drives this module:
 *
 *   csd_import_open()                       detect the format (reads the first chunk)
 *   csd_import_validate(imp, n, ...)        repeat: validate the next n rows
 *                                           (progress between calls)
 *   csd_import_report_json()                refused: errors with line, field, reason
 *   csd_import_rewind() + csd_import_next() accepted: replay the changes, with
 *                                           versions, inside one transaction
 *   csd_import_receipt_json()               accepted: counts and the file's SHA-256
 *   csd_import_close()
 *
 * What the CS already holds is read through a lookup callback; what earlier
 * rows of the same file produced is kept in a small map (code -> version and
 * kind, 16-byte slots at most 70% full: 23..46 bytes per distinct code),
 * never the records themselves; the current row is at most limits.max_line.
 *
 * Reports never contain personal data: an error names the line, the column
 * and a reason code, and its detail names the rule, never the value.
 */
#ifndef JUKI_CS_IMPORT_H
#define JUKI_CS_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/records/honnin.h"
#include "juki/records/person.h"

/*
 * Reason codes of an import report, besides those of juki/wire/msg.h that apply
 * to fields as they do to messages: JUKI_R_BAD_FIELD ("invalid-field"),
 * JUKI_R_CHECK_DIGIT ("check-digit"), JUKI_R_BAD_JSON ("bad-json"),
 * JUKI_R_UNKNOWN_PERSON ("unknown-person"), JUKI_R_NOT_RESIDENT
 * ("not-resident").
 */
#define CSD_IMPORT_R_EMPTY_FILE     "empty-file"     /* no header row / no row at all */
#define CSD_IMPORT_R_FILE_TOO_LARGE "file-too-large" /* over limits.max_bytes */
#define CSD_IMPORT_R_FILE_CHANGED   "file-changed"   /* differs at replay from what was validated */
#define CSD_IMPORT_R_LINE_TOO_LONG  "line-too-long"  /* a row over limits.max_line bytes */
#define CSD_IMPORT_R_NUL            "nul-byte"       /* a NUL byte */
#define CSD_IMPORT_R_UTF8           "invalid-utf8"   /* bytes that are not UTF-8 */
#define CSD_IMPORT_R_QUOTE          "unterminated-quote" /* a quoted CSV cell open at the end */
#define CSD_IMPORT_R_BAD_QUOTE      "bad-quote"          /* a quote where RFC 4180 allows none */
#define CSD_IMPORT_R_CELLS          "cell-count"         /* cells in a row != columns in header */
#define CSD_IMPORT_R_UNKNOWN_COLUMN "unknown-column"     /* header column or JSON key not known */
#define CSD_IMPORT_R_DUP_COLUMN     "duplicate-column"   /* header names a column twice */
#define CSD_IMPORT_R_MISSING_COLUMN "missing-column"     /* header lacks a required column */
#define CSD_IMPORT_R_OTHER_LG       "other-municipality" /* lgcode is not this CS's */
#define CSD_IMPORT_R_RESIDENT       "already-resident"   /* an entry for a current resident */
#define CSD_IMPORT_R_STALE          "stale-version"      /* version not above the one held */
#define CSD_IMPORT_R_CODE_IN_USE    "code-in-use" /* 住民票コード変更 to a code known here */
#define CSD_IMPORT_R_HELD_CHANGED   "register-changed" /* at replay, the CS holds other versions */

enum csd_import_format {
	CSD_IMPORT_CSV = 0,
	CSD_IMPORT_JSONL = 1,
};

/* Limits; a zero member takes the default. */
struct csd_import_limits {
	uint64_t max_bytes; /* size of the file; default 1 GiB */
	size_t max_line;   /* bytes of one row (CSV: one record, quotes included); default 64 KiB */
	size_t max_errors; /* errors kept with their details; default 100 (all are counted) */
};

#define CSD_IMPORT_MAX_BYTES  ((uint64_t)1 << 30)
#define CSD_IMPORT_MAX_LINE   ((size_t)64 * 1024)
#define CSD_IMPORT_MAX_ERRORS ((size_t)100)

/*
 * One error of a report.  line is the line of the file where the row
 * starts (the header is line 1), 0 for the file as a whole; field is the
 * column ("" for the row as a whole); reason a reason code above.
 */
struct csd_import_error {
	size_t line;
	char field[32];
	const char *reason;
	char detail[128];
};

/*
 * What the CS holds of a person, for the consistency rules.  Returns 0 with
 * *current the person's current record (whatever municipality's) and
 * *own_version the highest version of this municipality's records of the
 * person, current or history (0 when it has none); JUKI_ENOTFOUND when
 * nothing is held of code; any other negative code is an I/O failure that
 * aborts the import with that code.
 *
 * own_version is needed besides current because versions count one
 * municipality's records of a person: someone who lived here (versions
 * 1..3), moved away and comes back continues at 4, while the current record
 * is the other municipality's.
 */
typedef int (*csd_import_lookup_cb)(void *ctx, const char *code, struct juki_change *current,
				    int64_t *own_version);

/*
 * A change the file produces.  A row of 住民票コード変更 produces two: first
 * the old code's record (code = old code, version = held + 1, ends_record
 * set: it ends that record, its effective kind is removal, old_code empty),
 * then the new code's record (version 1, old_code set, effective kind
 * entry).  Every other row produces one change with ends_record 0 and the
 * kind of its reason.  change.lgcode and change.person.lgcode are this CS's
 * code; change.recorded_ms is the import time given to csd_import_open().
 */
struct csd_import_change {
	struct juki_change change;
	int ends_record;
	size_t line; /* the row it came from */
};

/*
 * csd_import_change_kind() - what the change does to the register:
 * removal for an ending record, entry for the new code of 住民票コード変更,
 * otherwise the kind of the reason.
 */
enum juki_change_kind csd_import_change_kind(const struct csd_import_change *c);

struct csd_import;

/*
 * csd_import_open() - open path for import by the CS of self_lgcode, at
 * now_ms (the import day is its JST date).  limits may be NULL.  The format
 * is detected from the extension (.csv; .jsonl or .ndjson; any case), else
 * from the first byte after a BOM ('{' is JSON Lines, anything else CSV).
 * Returns 0 with *imp, or -errno / JUKI_EINVAL (self_lgcode invalid, not a
 * regular file) / JUKI_ENOMEM with a message in err.  A file over
 * max_bytes opens: its validation reports file-too-large.
 */
int csd_import_open(const char *path, const char *self_lgcode, int64_t now_ms,
		    const struct csd_import_limits *limits, struct csd_import **imp, char *err,
		    size_t errlen);

/*
 * csd_import_open_mem() - the same for size bytes at data, which the caller
 * keeps unchanged until csd_import_close(); name stands for the path (its
 * extension decides the format as above).  For the fuzz target, tests, and
 * files received over the control socket.
 */
int csd_import_open_mem(const char *name, const void *data, size_t size, const char *self_lgcode,
			int64_t now_ms, const struct csd_import_limits *limits,
			struct csd_import **imp, char *err, size_t errlen);

/*
 * csd_import_validate() - validate up to max_rows further rows (a row of
 * 住民票コード変更 counts once; blank lines do not count).  Errors are
 * collected and validation goes on after them.  lookup is called for each
 * code of a row (code, and old_code for 住民票コード変更) that the file has
 * not produced yet.  max_rows 0 means the rest of the file.  Returns 1 when
 * the whole file has been read, 0 when rows remain, or a negative code when
 * the lookup or a read failed: the import is then aborted, and every later call
 * returns the same code.
 */
int csd_import_validate(struct csd_import *imp, size_t max_rows, csd_import_lookup_cb lookup,
			void *ctx);

/*
 * csd_import_on_change() - have validation hand each change it produces to
 * fn while the file has shown no error, so that a caller validating a small
 * file in one step inside a write transaction records it in the same pass
 * (and rolls back if an error turns up further on).  fn returning non-zero
 * aborts the import with that code.  Call before csd_import_validate().
 */
void csd_import_on_change(struct csd_import *imp,
			  int (*fn)(void *arg, const struct csd_import_change *c), void *arg);

/* csd_import_format() - the format detected. */
enum csd_import_format csd_import_format(const struct csd_import *imp);

/* Progress: data rows read so far, bytes read so far, and the file's size. */
size_t csd_import_rows(const struct csd_import *imp);
uint64_t csd_import_bytes_read(const struct csd_import *imp);
uint64_t csd_import_bytes_total(const struct csd_import *imp);

/* csd_import_mem_bytes() - memory the import holds now (buffers and the code map). */
size_t csd_import_mem_bytes(const struct csd_import *imp);

/*
 * csd_import_error_count() - every error found so far; csd_import_errors()
 * - the first of them (up to limits.max_errors), *n set to how many.
 */
size_t csd_import_error_count(const struct csd_import *imp);
const struct csd_import_error *csd_import_errors(const struct csd_import *imp, size_t *n);

/*
 * csd_import_accepted() - 1 when the whole file has been validated without
 * an error, else 0.
 */
int csd_import_accepted(const struct csd_import *imp);

/*
 * csd_import_report_json() - {"file": basename, "format": "csv"|"jsonl",
 * "rows": n, "complete": bool, "errors": [{"line", "field", "reason",
 * "detail"}], "error_count": n} and, when aborted, "aborted": the error
 * text.  NULL on ENOMEM.
 */
json_t *csd_import_report_json(const struct csd_import *imp);

/*
 * csd_import_receipt_json() - for an accepted file: {"file", "format",
 * "lgcode", "imported": RFC 3339 import time, "rows", "changes",
 * "by_reason": {reason: changes}, "bytes", "sha256": hex of the file,
 * "first_line", "last_line": lines of the first and last row (0 when
 * none)}.  NULL when the file is not accepted, or on ENOMEM.
 */
json_t *csd_import_receipt_json(const struct csd_import *imp);

/*
 * csd_import_rewind() - start the replay of an accepted file, reading the
 * CS through lookup/ctx (which may differ from validation's: typically
 * inside the transaction that applies the changes).  The caller may apply
 * each change before asking for the next one, or all at the end: the
 * replay does not read back what the file produced.  Returns 0, or
 * JUKI_EINVAL when the file has not been validated whole without errors.
 */
int csd_import_rewind(struct csd_import *imp, csd_import_lookup_cb lookup, void *ctx);

/*
 * csd_import_next() - the next change of the replay.  Every row is checked
 * again, against the CS as lookup sees it now.  Returns 1 with *c, 0 at the
 * end (the file's SHA-256 and the changes produced were the same as at
 * validation), JUKI_EAGAIN when the file or what the CS holds has changed
 * since validation (the reason is added to the report: validate again),
 * another negative code when lookup or a read failed, or JUKI_EINVAL
 * without csd_import_rewind().
 */
int csd_import_next(struct csd_import *imp, struct csd_import_change *c);

/* csd_import_close() - free everything; NULL is fine. */
void csd_import_close(struct csd_import *imp);

#endif
