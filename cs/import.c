#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <unistr.h>

#include "import.h"
#include "import_read.h"
#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/wire/msg.h"

#define CODE_CHANGE "住民票コード変更"
#define SHA_LEN     32

/* The columns of the format, in the order the rules check them. */
enum col {
	C_CODE,
	C_LGCODE,
	C_REASON,
	C_REASON_DATE,
	C_NAME,
	C_KANA,
	C_BIRTH,
	C_SEX,
	C_ADDRESS,
	C_VERSION,
	C_OLD_CODE,
	NCOLS
};

static const struct {
	const char *name;
	int required; /* as a CSV header column; a value is required in every row too */
	int integer;  /* JSON Lines: an integer, not a string */
} columns[NCOLS] = {
    [C_CODE] = {"code", 1, 0},         [C_LGCODE] = {"lgcode", 0, 0},
    [C_REASON] = {"reason", 1, 0},     [C_REASON_DATE] = {"reason_date", 1, 0},
    [C_NAME] = {"name", 1, 0},         [C_KANA] = {"kana", 0, 0},
    [C_BIRTH] = {"birth", 1, 0},       [C_SEX] = {"sex", 1, 1},
    [C_ADDRESS] = {"address", 1, 0},   [C_VERSION] = {"version", 0, 1},
    [C_OLD_CODE] = {"old_code", 0, 0},
};

enum phase {
	PH_VALIDATE,
	PH_VALIDATED,
	PH_REPLAY,
	PH_REPLAYED,
	PH_FAILED, /* replay found a difference; validate a new import */
};

/*
 * What the file has produced so far for one code: 16 bytes a slot, a table
 * kept under 70% full, so 23..46 bytes per distinct code.  key is
 * (code + 1) << 2 | kind, 0 for an empty slot: 11 digits fit in 37 bits.
 */
struct slot {
	uint64_t key;
	int64_t version;
};

struct code_map {
	struct slot *slots;
	size_t cap, n;
};

/* A data row as values by column; NULL is absent. */
struct row {
	size_t line;
	const char *v[NCOLS];
	unsigned char bad[NCOLS]; /* already reported: no further rule applies */
	int skip;                 /* the row could not be read into cells: reported */
	size_t errors_at;         /* the error count before the row was read */
	char num[NCOLS][24];      /* JSON Lines integers as text */
	json_t *json;
};

struct csd_import {
	char *name;
	int (*on_change)(void *arg, const struct csd_import_change *c);
	void *on_change_arg;
	char self[JUKI_LGCODE_LEN + 1];
	int64_t now_ms;
	char recorded[32];
	struct csd_import_limits lim;
	enum csd_import_format format;

	/* The file and its current record. */
	struct imp_reader rd;
	int reader_ready;
	uint64_t total;
	int stopped;

	/* CSV: the column of each header cell. */
	int header_done;
	int *hcol;
	size_t nhcol;

	enum phase phase;
	int abort_rc;
	csd_import_lookup_cb lookup;
	void *ctx;
	struct code_map map;
	size_t rows;
	EVP_MD_CTX *dig;
	size_t errors_at_rewind;

	/* What validation found, for the receipt and the replay's comparison. */
	size_t val_rows, changes, first_line, last_line;
	uint64_t val_bytes;
	size_t *by_reason;
	size_t nreasons;
	unsigned char val_sha[SHA_LEN], val_dig[SHA_LEN];

	/* Replay: the changes of the current row not yet handed out. */
	struct csd_import_change out[2];
	size_t nout, outpos;

	struct csd_import_error *errors;
	size_t nerr, errcap, error_count;
};

enum juki_change_kind
csd_import_change_kind(const struct csd_import_change *c)
{
	if (c->ends_record) {
		return JUKI_CHANGE_REMOVAL;
	}
	return juki_change_kind_of(&c->change);
}

/* Errors. */

static int __attribute__((format(printf, 5, 6)))
add_error(struct csd_import *imp, size_t line, const char *field, const char *reason,
	  const char *fmt, ...)
{
	struct csd_import_error *e;
	va_list ap;

	imp->error_count++;
	if (imp->nerr >= imp->lim.max_errors) {
		return 0;
	}
	if (imp->nerr == imp->errcap) {
		size_t cap = imp->errcap ? imp->errcap * 2 : 16;

		if (cap > imp->lim.max_errors) {
			cap = imp->lim.max_errors;
		}
		e = realloc(imp->errors, cap * sizeof(*e));
		if (e == NULL) {
			return JUKI_ENOMEM;
		}
		imp->errors = e;
		imp->errcap = cap;
	}
	e = &imp->errors[imp->nerr++];
	e->line = line;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return 0;
}

/*
 * A name from the file (a header cell, a JSON key) goes into a report only
 * when it looks like a column name: anything else might be personal data.
 */
static const char *
safe_name(const char *s, size_t len)
{
	if (len == 0 || len > 31) {
		return "";
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-')) {
			return "";
		}
	}
	return s;
}

static int
find_column(const char *name)
{
	for (int i = 0; i < NCOLS; i++) {
		if (strcmp(columns[i].name, name) == 0) {
			return i;
		}
	}
	return -1;
}

/* The code map. */

static uint64_t
code_num(const char *code)
{
	uint64_t n = 0;

	for (int i = 0; i < JUKI_JUMIN_CODE_LEN; i++) {
		n = n * 10 + (uint64_t)(code[i] - '0');
	}
	return n;
}

static size_t
map_index(const struct code_map *m, uint64_t num)
{
	return (size_t)((num * 0x9E3779B97F4A7C15ULL) >> 20) & (m->cap - 1);
}

static struct slot *
map_find(const struct code_map *m, uint64_t num)
{
	if (m->cap == 0) {
		return NULL;
	}
	for (size_t i = map_index(m, num);; i = (i + 1) & (m->cap - 1)) {
		struct slot *s = &m->slots[i];

		if (s->key == 0) {
			return NULL;
		}
		if ((s->key >> 2) == num + 1) {
			return s;
		}
	}
}

static int
map_grow(struct code_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct code_map bigger = {calloc(cap, sizeof(struct slot)), cap, m->n};

	if (bigger.slots == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		struct slot *s = &m->slots[i];
		size_t j;

		if (s->key == 0) {
			continue;
		}
		for (j = map_index(&bigger, (s->key >> 2) - 1); bigger.slots[j].key != 0;
		     j = (j + 1) & (cap - 1)) {
		}
		bigger.slots[j] = *s;
	}
	free(m->slots);
	*m = bigger;
	return 0;
}

static int
map_put(struct code_map *m, const char *code, int64_t version, enum juki_change_kind kind)
{
	uint64_t num = code_num(code);
	struct slot *s = map_find(m, num);
	size_t i;
	int rc;

	if (s == NULL) {
		if ((m->n + 1) * 10 > m->cap * 7 && (rc = map_grow(m)) != 0) {
			return rc;
		}
		i = map_index(m, num);
		while (m->slots[i].key != 0) {
			i = (i + 1) & (m->cap - 1);
		}
		s = &m->slots[i];
		m->n++;
	}
	s->key = (num + 1) << 2 | (uint64_t)kind;
	s->version = version;
	return 0;
}

static void
map_clear(struct code_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Reading. */

/* Over the size limit: one error, and the file is read no further. */
static int
too_large(struct csd_import *imp)
{
	imp->stopped = 1;
	return add_error(imp, 0, "", CSD_IMPORT_R_FILE_TOO_LARGE, "the file is over %llu bytes",
			 (unsigned long long)imp->lim.max_bytes);
}

/* The next record of the file's format: 1, 0 at the end, or a negative code. */
static int
read_record(struct csd_import *imp)
{
	int rc = imp->format == CSD_IMPORT_CSV ? imp_read_csv(&imp->rd) : imp_read_line(&imp->rd);

	if (rc == 0 && imp->rd.over) {
		return too_large(imp);
	}
	return rc;
}

/* Rows. */

static const char *
header_field(const struct csd_import *imp, size_t cell)
{
	if (imp->header_done && cell < imp->nhcol) {
		return columns[imp->hcol[cell]].name;
	}
	return "";
}

/*
 * What reading found wrong with a CSV record, cell by cell.  Returns 1 when
 * the record cannot be read into cells at all (reported), 0 otherwise.
 */
static int
csv_record_errors(struct csd_import *imp, int *rcp)
{
	size_t line = imp->rd.rec_line;
	int rc = 0, whole = 0;

	if (imp->rd.rec_flags & IMP_REC_UNTERMINATED) {
		rc = add_error(imp, line, header_field(imp, imp->rd.ncells - 1), CSD_IMPORT_R_QUOTE,
			       "a quoted cell is not closed before the end of the file");
		whole = 1;
	} else if (imp->rd.rec_flags & IMP_REC_TOO_LONG) {
		rc = add_error(imp, line, "", CSD_IMPORT_R_LINE_TOO_LONG,
			       "the row is over %zu bytes", imp->lim.max_line);
		whole = 1;
	} else if (!imp->header_done && (imp->rd.rec_flags & IMP_REC_TOO_MANY)) {
		rc = add_error(imp, line, "", CSD_IMPORT_R_CELLS, "more than %d columns",
			       IMP_CELLS_MAX);
		whole = 1;
	} else if (imp->header_done && imp->rd.rec_cells != imp->nhcol) {
		rc = add_error(imp, line, "", CSD_IMPORT_R_CELLS,
			       "%zu cells where the header names %zu columns", imp->rd.rec_cells,
			       imp->nhcol);
		whole = 1;
	}
	*rcp = rc;
	return whole;
}

/* Per-cell errors of a CSV record; sets bad[] for the columns reported. */
static int
csv_cell_errors(struct csd_import *imp, struct row *row, int *any)
{
	int rc;

	*any = 0;
	for (size_t i = 0; i < imp->rd.ncells; i++) {
		const struct imp_cell *cell = &imp->rd.cells[i];
		const char *field = header_field(imp, i);
		const char *reason = NULL, *detail = NULL;

		if (cell->flags & IMP_CELL_NUL) {
			reason = CSD_IMPORT_R_NUL;
			detail = "contains a NUL byte";
		} else if (u8_check(imp->rd.buf + cell->off, cell->len) != NULL) {
			reason = CSD_IMPORT_R_UTF8;
			detail = "not valid UTF-8";
		} else if (cell->flags & IMP_CELL_BAD_QUOTE) {
			reason = CSD_IMPORT_R_BAD_QUOTE;
			detail = "a quote inside an unquoted cell or after a closing quote";
		}
		if (reason == NULL) {
			continue;
		}
		*any = 1;
		if (row != NULL && imp->header_done) {
			row->bad[imp->hcol[i]] = 1;
		}
		if ((rc = add_error(imp, imp->rd.rec_line, field, reason, "%s", detail)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* The header row: the column of each cell.  Any error ends the reading. */
static int
read_header(struct csd_import *imp)
{
	int seen[NCOLS] = {0};
	int rc, any, whole;

	rc = read_record(imp);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		if (!imp->stopped) {
			imp->stopped = 1;
			return add_error(imp, 0, "", CSD_IMPORT_R_EMPTY_FILE,
					 "no header row: the file is empty");
		}
		return 0;
	}
	imp->stopped = 1;
	whole = csv_record_errors(imp, &rc);
	if (whole || rc != 0) {
		return rc;
	}
	if ((rc = csv_cell_errors(imp, NULL, &any)) != 0 || any) {
		return rc;
	}
	free(imp->hcol);
	imp->nhcol = 0;
	imp->hcol = calloc(imp->rd.ncells, sizeof(*imp->hcol));
	if (imp->hcol == NULL) {
		return JUKI_ENOMEM;
	}
	any = 0;
	for (size_t i = 0; i < imp->rd.ncells; i++) {
		const char *name = (const char *)imp->rd.buf + imp->rd.cells[i].off;
		int col = find_column(name);

		if (col < 0) {
			rc = add_error(imp, imp->rd.rec_line, safe_name(name, imp->rd.cells[i].len),
				       CSD_IMPORT_R_UNKNOWN_COLUMN,
				       "column %zu is not a column of the format", i + 1);
		} else if (seen[col]) {
			rc = add_error(imp, imp->rd.rec_line, columns[col].name,
				       CSD_IMPORT_R_DUP_COLUMN, "column %zu names it again", i + 1);
		} else {
			seen[col] = 1;
			imp->hcol[i] = col;
			continue;
		}
		any = 1;
		if (rc != 0) {
			return rc;
		}
	}
	for (int col = 0; col < NCOLS; col++) {
		if (columns[col].required && !seen[col]) {
			any = 1;
			if ((rc = add_error(imp, imp->rd.rec_line, columns[col].name,
					    CSD_IMPORT_R_MISSING_COLUMN,
					    "the header lacks this required column")) != 0) {
				return rc;
			}
		}
	}
	if (any) {
		return 0;
	}
	imp->nhcol = imp->rd.ncells;
	imp->header_done = 1;
	imp->stopped = 0;
	return 0;
}

static int
csv_row(struct csd_import *imp, struct row *row)
{
	int rc, any;

	if (csv_record_errors(imp, &rc)) {
		row->skip = 1;
		return rc;
	}
	if ((rc = csv_cell_errors(imp, row, &any)) != 0) {
		return rc;
	}
	for (size_t i = 0; i < imp->rd.ncells; i++) {
		int col = imp->hcol[i];

		if (!row->bad[col] && imp->rd.cells[i].len > 0) {
			row->v[col] = (const char *)imp->rd.buf + imp->rd.cells[i].off;
		}
	}
	return 0;
}

static int
json_row(struct csd_import *imp, struct row *row)
{
	const char *key;
	json_error_t jerr;
	json_t *val;
	size_t len = imp->rd.blen - 1;
	int rc;

	if (imp->rd.rec_flags & IMP_REC_TOO_LONG) {
		row->skip = 1;
		return add_error(imp, row->line, "", CSD_IMPORT_R_LINE_TOO_LONG,
				 "the row is over %zu bytes", imp->lim.max_line);
	}
	if (memchr(imp->rd.buf, '\0', len) != NULL) {
		row->skip = 1;
		return add_error(imp, row->line, "", CSD_IMPORT_R_NUL, "contains a NUL byte");
	}
	if (u8_check(imp->rd.buf, len) != NULL) {
		row->skip = 1;
		return add_error(imp, row->line, "", CSD_IMPORT_R_UTF8, "not valid UTF-8");
	}
	row->json = json_loadb((const char *)imp->rd.buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (row->json == NULL || !json_is_object(row->json)) {
		row->skip = 1;
		if (row->json == NULL) {
			/* jansson's own text may quote the input: only the position. */
			return add_error(imp, row->line, "", JUKI_R_BAD_JSON,
					 "not valid JSON (column %d)", jerr.column);
		}
		return add_error(imp, row->line, "", JUKI_R_BAD_JSON, "not a JSON object");
	}
	json_object_foreach(row->json, key, val)
	{
		int col = find_column(key);

		if (col < 0) {
			if ((rc = add_error(imp, row->line, safe_name(key, strlen(key)),
					    CSD_IMPORT_R_UNKNOWN_COLUMN,
					    "a key that is not a column of the format")) != 0) {
				return rc;
			}
			continue;
		}
		if (json_is_null(val)) {
			continue;
		}
		if (columns[col].integer) {
			if (!json_is_integer(val)) {
				row->bad[col] = 1;
				rc = add_error(imp, row->line, columns[col].name, JUKI_R_BAD_FIELD,
					       "must be an integer");
				if (rc != 0) {
					return rc;
				}
				continue;
			}
			snprintf(row->num[col], sizeof(row->num[col]), "%lld",
				 (long long)json_integer_value(val));
			row->v[col] = row->num[col];
			continue;
		}
		if (!json_is_string(val)) {
			row->bad[col] = 1;
			if ((rc = add_error(imp, row->line, columns[col].name, JUKI_R_BAD_FIELD,
					    "must be a string")) != 0) {
				return rc;
			}
			continue;
		}
		if (json_string_length(val) > 0) {
			row->v[col] = json_string_value(val);
		}
	}
	return 0;
}

/* The next data row: 1 with *row, 0 at the end, or a negative code. */
static int
next_row(struct csd_import *imp, struct row *row)
{
	int rc;

	memset(row, 0, offsetof(struct row, num));
	row->json = NULL;
	row->errors_at = imp->error_count;
	while (imp->format == CSD_IMPORT_CSV && !imp->header_done) {
		if (imp->stopped) {
			return 0;
		}
		if ((rc = read_header(imp)) != 0) {
			return rc;
		}
	}
	if (imp->stopped) {
		return 0;
	}
	rc = read_record(imp);
	if (rc == 0 && !imp->stopped && imp->format == CSD_IMPORT_JSONL && imp->rows == 0) {
		imp->stopped = 1;
		return add_error(imp, 0, "", CSD_IMPORT_R_EMPTY_FILE, "no row: the file is empty");
	}
	if (rc <= 0) {
		if (rc == 0) {
			imp->stopped = 1;
		}
		return rc;
	}
	imp->rows++;
	row->line = imp->rd.rec_line;
	rc = imp->format == CSD_IMPORT_CSV ? csv_row(imp, row) : json_row(imp, row);
	return rc == 0 ? 1 : rc;
}

/* The rules. */

struct form {
	const struct juki_reason *reason;
	int code_change;
	int has_version;
	int64_t version;
	int sex;
	int consistent; /* what the consistency rules need is valid */
};

static int
field_error(struct csd_import *imp, struct row *row, int col, const char *reason,
	    const char *detail)
{
	row->bad[col] = 1;
	return add_error(imp, row->line, columns[col].name, reason, "%s", detail);
}

static int
check_code(struct csd_import *imp, struct row *row, int col, int lgcode)
{
	int rc = lgcode ? juki_lgcode_check(row->v[col]) : juki_jumin_code_check(row->v[col]);

	if (rc == JUKI_ECHECKDIGIT) {
		return field_error(imp, row, col, JUKI_R_CHECK_DIGIT, "check digit does not match");
	}
	if (rc != 0) {
		return field_error(imp, row, col, JUKI_R_BAD_FIELD,
				   lgcode ? "must be 6 digits" : "must be 11 digits");
	}
	return 0;
}

/*
 * A real day, not after the import day: the rule every way in keeps
 * (juki_date_not_future()), reported as the import reports a bad value.
 */
static int
check_date(struct csd_import *imp, struct row *row, int col)
{
	struct juki_field_error fe;

	if (juki_date_not_future(row->v[col], imp->now_ms, columns[col].name, &fe) != 0) {
		return field_error(imp, row, col, JUKI_R_BAD_FIELD, fe.detail);
	}
	return 0;
}

static int
check_text(struct csd_import *imp, struct row *row, int col, size_t max)
{
	char detail[96];

	/*
	 * The replay reads what validation accepted: the file's SHA-256 is
	 * compared at its end, and the transaction goes back on any difference,
	 * so the text's form (UTF-8, NFC) need not be checked a second time.
	 */
	if (imp->phase == PH_REPLAY) {
		return strlen(row->v[col]) <= max
			   ? 0
			   : field_error(imp, row, col, JUKI_R_BAD_FIELD, "too long");
	}
	if (juki_text_valid(row->v[col], max, detail, sizeof(detail)) != 0) {
		return field_error(imp, row, col, JUKI_R_BAD_FIELD, detail);
	}
	return 0;
}

/* A positive decimal integer, without sign or leading zero, that fits. */
static int
parse_version(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18 || s[0] == '0') {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
check_form(struct csd_import *imp, struct row *row, struct form *f)
{
	int rc = 0;

	memset(f, 0, sizeof(*f));
	for (int col = 0; col < NCOLS; col++) {
		if (row->v[col] == NULL && !row->bad[col] && columns[col].required &&
		    (rc = field_error(imp, row, col, JUKI_R_BAD_FIELD, "required")) != 0) {
			return rc;
		}
	}
	if (row->v[C_CODE] != NULL && (rc = check_code(imp, row, C_CODE, 0)) != 0) {
		return rc;
	}
	if (row->v[C_LGCODE] != NULL) {
		if ((rc = check_code(imp, row, C_LGCODE, 1)) != 0) {
			return rc;
		}
		if (!row->bad[C_LGCODE] && strcmp(row->v[C_LGCODE], imp->self) != 0 &&
		    (rc = field_error(imp, row, C_LGCODE, CSD_IMPORT_R_OTHER_LG,
				      "not this municipality's code")) != 0) {
			return rc;
		}
	}
	if (row->v[C_REASON] != NULL) {
		f->reason = juki_reason_find(row->v[C_REASON]);
		if (f->reason == NULL && (rc = field_error(imp, row, C_REASON, JUKI_R_BAD_FIELD,
							   "not a 異動事由 on the list")) != 0) {
			return rc;
		}
		f->code_change = f->reason != NULL && strcmp(f->reason->name, CODE_CHANGE) == 0;
	}
	if (row->v[C_REASON_DATE] != NULL && (rc = check_date(imp, row, C_REASON_DATE)) != 0) {
		return rc;
	}
	if (row->v[C_NAME] != NULL && (rc = check_text(imp, row, C_NAME, JUKI_NAME_MAX)) != 0) {
		return rc;
	}
	if (row->v[C_KANA] != NULL && (rc = check_text(imp, row, C_KANA, JUKI_NAME_MAX)) != 0) {
		return rc;
	}
	if (row->v[C_BIRTH] != NULL && (rc = check_date(imp, row, C_BIRTH)) != 0) {
		return rc;
	}
	if (row->v[C_SEX] != NULL) {
		if (strcmp(row->v[C_SEX], "1") == 0 || strcmp(row->v[C_SEX], "2") == 0) {
			f->sex = row->v[C_SEX][0] - '0';
		} else if ((rc = field_error(imp, row, C_SEX, JUKI_R_BAD_FIELD,
					     "must be 1 (male) or 2 (female)")) != 0) {
			return rc;
		}
	}
	if (row->v[C_ADDRESS] != NULL &&
	    (rc = check_text(imp, row, C_ADDRESS, JUKI_ADDRESS_MAX)) != 0) {
		return rc;
	}
	if (row->v[C_VERSION] != NULL) {
		if (parse_version(row->v[C_VERSION], &f->version) != 0) {
			rc = field_error(imp, row, C_VERSION, JUKI_R_BAD_FIELD,
					 "must be a positive integer");
		} else if (f->code_change && f->version != 1) {
			rc = field_error(
			    imp, row, C_VERSION, JUKI_R_BAD_FIELD,
			    "must be 1 for 住民票コード変更: the new code's first record");
		} else {
			f->has_version = 1;
		}
		if (rc != 0) {
			return rc;
		}
	}
	if (row->v[C_OLD_CODE] != NULL) {
		if ((rc = check_code(imp, row, C_OLD_CODE, 0)) != 0) {
			return rc;
		}
		if (!row->bad[C_OLD_CODE] && f->reason != NULL && !f->code_change) {
			rc = field_error(imp, row, C_OLD_CODE, JUKI_R_BAD_FIELD,
					 "only for 住民票コード変更");
		} else if (!row->bad[C_OLD_CODE] && row->v[C_CODE] != NULL &&
			   strcmp(row->v[C_OLD_CODE], row->v[C_CODE]) == 0) {
			rc =
			    field_error(imp, row, C_OLD_CODE, JUKI_R_BAD_FIELD, "the same as code");
		}
		if (rc != 0) {
			return rc;
		}
	} else if (f->code_change && !row->bad[C_OLD_CODE] &&
		   (rc = field_error(imp, row, C_OLD_CODE, JUKI_R_BAD_FIELD,
				     "required for 住民票コード変更")) != 0) {
		return rc;
	}
	f->consistent = f->reason != NULL && row->v[C_CODE] != NULL && !row->bad[C_CODE] &&
			!row->bad[C_VERSION] &&
			(!f->code_change || (row->v[C_OLD_CODE] != NULL && !row->bad[C_OLD_CODE]));
	return 0;
}

/* What is held of a person: what the file produced, else what the CS holds. */
struct held {
	int known;    /* any record of the code here */
	int found;    /* a current record */
	int resident; /* its current record is this municipality's and not a removal */
	int64_t own;  /* the highest version of this municipality's records */
};

static int
held_get(struct csd_import *imp, const char *code, struct held *h)
{
	struct slot *s = map_find(&imp->map, code_num(code));
	struct juki_change cur;
	int64_t own = 0;
	int rc;

	memset(h, 0, sizeof(*h));
	if (s != NULL) {
		h->known = h->found = 1;
		h->resident = (s->key & 3) != JUKI_CHANGE_REMOVAL;
		h->own = s->version;
		return 0;
	}
	memset(&cur, 0, sizeof(cur));
	rc = imp->lookup(imp->ctx, code, &cur, &own);
	if (rc == JUKI_ENOTFOUND) {
		h->own = own > 0 ? own : 0;
		h->known = h->own > 0;
		return 0;
	}
	if (rc != 0) {
		return rc < 0 ? rc : JUKI_EIO;
	}
	h->known = h->found = 1;
	h->own = own > 0 ? own : 0;
	if (strcmp(cur.lgcode, imp->self) == 0) {
		h->resident =
		    cur.reason != NULL && juki_change_kind_of(&cur) != JUKI_CHANGE_REMOVAL;
		if (cur.version > h->own) {
			h->own = cur.version;
		}
	}
	return 0;
}

static int
not_resident(struct csd_import *imp, struct row *row, int col, const struct held *h)
{
	if (!h->known) {
		return field_error(imp, row, col, JUKI_R_UNKNOWN_PERSON,
				   "no record of this 住民票コード here");
	}
	return field_error(imp, row, col, JUKI_R_NOT_RESIDENT,
			   "not resident here: removed, or resident elsewhere");
}

/*
 * The consistency rules.  On success *version is the version of the row's
 * code and *old_version that of the old code's ending record.
 */
static int
check_held(struct csd_import *imp, struct row *row, const struct form *f, int64_t *version,
	   int64_t *old_version)
{
	struct held h, old;
	int rc;

	if ((rc = held_get(imp, row->v[C_CODE], &h)) != 0) {
		return rc;
	}
	if (f->code_change) {
		if ((rc = held_get(imp, row->v[C_OLD_CODE], &old)) != 0) {
			return rc;
		}
		if (!old.resident && (rc = not_resident(imp, row, C_OLD_CODE, &old)) != 0) {
			return rc;
		}
		if (h.known &&
		    (rc = field_error(imp, row, C_CODE, CSD_IMPORT_R_CODE_IN_USE,
				      "the new 住民票コード is already known here")) != 0) {
			return rc;
		}
		*version = 1;
		*old_version = old.own + 1;
		return 0;
	}
	if (f->reason->kind == JUKI_CHANGE_ENTRY) {
		if (h.resident) {
			return field_error(imp, row, C_CODE, CSD_IMPORT_R_RESIDENT,
					   "an entry (記載) for a person resident here");
		}
	} else if (!h.resident) {
		return not_resident(imp, row, C_CODE, &h);
	}
	if (f->has_version && f->version <= h.own) {
		return field_error(imp, row, C_VERSION, CSD_IMPORT_R_STALE,
				   "not greater than the version held or given before");
	}
	*version = f->has_version ? f->version : h.own + 1;
	return 0;
}

/*
 * The row as a change record, read back through juki_change_from_json() so
 * that a change from a file obeys exactly the rules of one from the network.
 */
static int
build_change(struct csd_import *imp, struct row *row, const struct form *f, int64_t version,
	     struct juki_change *c)
{
	/*
	 * Every field was checked by check_form() by the rules of person.h and
	 * honnin.h: fill the record directly, without a JSON round trip.
	 */
	(void)imp;
	memset(c, 0, sizeof(*c));
	snprintf(c->code, sizeof(c->code), "%s", row->v[C_CODE]);
	snprintf(c->lgcode, sizeof(c->lgcode), "%s", imp->self);
	c->version = version;
	c->reason = f->reason;
	snprintf(c->reason_date, sizeof(c->reason_date), "%s", row->v[C_REASON_DATE]);
	c->recorded_ms = imp->now_ms;
	memcpy(c->person.code, c->code, sizeof(c->code));
	memcpy(c->person.lgcode, c->lgcode, sizeof(c->lgcode));
	snprintf(c->person.name, sizeof(c->person.name), "%s", row->v[C_NAME]);
	if (row->v[C_KANA] != NULL) {
		snprintf(c->person.kana, sizeof(c->person.kana), "%s", row->v[C_KANA]);
	}
	snprintf(c->person.birth, sizeof(c->person.birth), "%s", row->v[C_BIRTH]);
	c->person.sex = f->sex;
	snprintf(c->person.address, sizeof(c->person.address), "%s", row->v[C_ADDRESS]);
	if (f->code_change) {
		snprintf(c->old_code, sizeof(c->old_code), "%s", row->v[C_OLD_CODE]);
	}
	c->kind = juki_change_kind_of(c);
	return 0;
}

static int
digest_change(struct csd_import *imp, const struct juki_change *c, int ends)
{
	char text[96];
	int n = snprintf(text, sizeof(text), "%s|%lld|%s|%d\n", c->code, (long long)c->version,
			 c->reason->name, ends);

	return EVP_DigestUpdate(imp->dig, text, (size_t)n) == 1 ? 0 : JUKI_EIO;
}

static int
produce(struct csd_import *imp, const struct csd_import_change *c)
{
	int rc = digest_change(imp, &c->change, c->ends_record);

	if (rc == 0) {
		rc = map_put(&imp->map, c->change.code, c->change.version,
			     csd_import_change_kind(c));
	}
	if (rc != 0) {
		return rc;
	}
	if (imp->phase == PH_VALIDATE) {
		const struct juki_reason *base;
		size_t n;

		if (imp->on_change != NULL && imp->error_count == 0 &&
		    (rc = imp->on_change(imp->on_change_arg, c)) != 0) {
			return rc;
		}
		base = juki_reasons(&n);
		imp->by_reason[c->change.reason - base]++;
		imp->changes++;
		if (imp->first_line == 0) {
			imp->first_line = c->line;
		}
		imp->last_line = c->line;
	} else {
		imp->out[imp->nout++] = *c;
	}
	return 0;
}

/* Every rule on one row, and what it produces when it passes them all. */
static int
process_row(struct csd_import *imp, struct row *row)
{
	struct csd_import_change nc, oc;
	int64_t version = 0, old_version = 0;
	size_t before = row->errors_at;
	struct form f;
	int rc;

	if (row->skip) {
		return 0;
	}
	if ((rc = check_form(imp, row, &f)) != 0) {
		return rc;
	}
	if (f.consistent && (rc = check_held(imp, row, &f, &version, &old_version)) != 0) {
		return rc;
	}
	if (imp->error_count != before) {
		return 0;
	}
	memset(&nc, 0, sizeof(nc));
	nc.line = row->line;
	if ((rc = build_change(imp, row, &f, version, &nc.change)) != 0 ||
	    imp->error_count != before) {
		return rc;
	}
	if (f.code_change) {
		oc = nc;
		oc.ends_record = 1;
		snprintf(oc.change.code, sizeof(oc.change.code), "%s", row->v[C_OLD_CODE]);
		memcpy(oc.change.person.code, oc.change.code, sizeof(oc.change.code));
		oc.change.version = old_version;
		oc.change.old_code[0] = '\0';
		/* The ending record names its successor, which makes it a removal. */
		memcpy(oc.change.new_code, nc.change.code, sizeof(oc.change.new_code));
		oc.change.kind = JUKI_CHANGE_REMOVAL;
		if ((rc = produce(imp, &oc)) != 0) {
			return rc;
		}
	}
	return produce(imp, &nc);
}

static void
row_done(struct row *row)
{
	json_decref(row->json);
	row->json = NULL;
}

static int
finish_digests(struct csd_import *imp, unsigned char sha[SHA_LEN], unsigned char dig[SHA_LEN])
{
	unsigned int b = 0;

	if (imp_reader_sha256(&imp->rd, sha) != 0 || EVP_DigestFinal_ex(imp->dig, dig, &b) != 1 ||
	    b != SHA_LEN) {
		return JUKI_EIO;
	}
	return 0;
}

/* Opening. */

static enum csd_import_format
format_of(const char *name, const uint8_t *data, size_t len)
{
	const char *dot = strrchr(name, '.');

	if (dot != NULL && strchr(dot, '/') == NULL) {
		if (strcasecmp(dot, ".csv") == 0) {
			return CSD_IMPORT_CSV;
		}
		if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0) {
			return CSD_IMPORT_JSONL;
		}
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n') {
			return data[i] == '{' ? CSD_IMPORT_JSONL : CSD_IMPORT_CSV;
		}
	}
	return CSD_IMPORT_CSV;
}

static int
fail_open(char *err, size_t errlen, int rc, const char *what)
{
	if (err != NULL && errlen > 0) {
		snprintf(err, errlen, "%s: %s", what, juki_strerror(rc));
	}
	return rc;
}

static int
import_new(const char *name, int fd, const void *mem, size_t mem_len, uint64_t total,
	   const char *self_lgcode, int64_t now_ms, const struct csd_import_limits *limits,
	   struct csd_import **out, char *err, size_t errlen)
{
	struct csd_import *imp;
	const char *base = strrchr(name, '/');
	int rc;

	*out = NULL;
	if (juki_lgcode_check(self_lgcode) != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return fail_open(err, errlen, JUKI_EINVAL, "import: not a local-government code");
	}
	imp = calloc(1, sizeof(*imp));
	if (imp == NULL) {
		if (fd >= 0) {
			close(fd);
		}
		return fail_open(err, errlen, JUKI_ENOMEM, "import");
	}
	imp->total = total;
	imp->now_ms = now_ms;
	snprintf(imp->self, sizeof(imp->self), "%s", self_lgcode);
	juki_clock_format(now_ms, imp->recorded, sizeof(imp->recorded));
	if (limits != NULL) {
		imp->lim = *limits;
	}
	if (imp->lim.max_bytes == 0) {
		imp->lim.max_bytes = CSD_IMPORT_MAX_BYTES;
	}
	if (imp->lim.max_line == 0) {
		imp->lim.max_line = CSD_IMPORT_MAX_LINE;
	}
	if (imp->lim.max_errors == 0) {
		imp->lim.max_errors = CSD_IMPORT_MAX_ERRORS;
	}
	juki_reasons(&imp->nreasons);
	imp->name = strdup(base != NULL ? base + 1 : name);
	imp->by_reason = calloc(imp->nreasons, sizeof(*imp->by_reason));
	imp->dig = EVP_MD_CTX_new();
	imp->reader_ready = 1;
	if (imp_reader_init(&imp->rd, fd, mem, mem_len, imp->lim.max_bytes, imp->lim.max_line) !=
		0 ||
	    imp->name == NULL || imp->by_reason == NULL || imp->dig == NULL ||
	    EVP_DigestInit_ex(imp->dig, EVP_sha256(), NULL) != 1) {
		rc = fail_open(err, errlen, JUKI_ENOMEM, "import");
		goto out;
	}
	if ((rc = imp_reader_start(&imp->rd)) != 0) {
		fail_open(err, errlen, rc, "import: read");
		goto out;
	}
	imp->format = format_of(imp->name, imp->rd.data + imp->rd.pos, imp->rd.len - imp->rd.pos);
	imp->phase = PH_VALIDATE;
	if (total > imp->lim.max_bytes && (rc = too_large(imp)) != 0) {
		fail_open(err, errlen, rc, "import");
		goto out;
	}
	*out = imp;
	imp = NULL;
out:
	csd_import_close(imp);
	return rc;
}

int
csd_import_open(const char *path, const char *self_lgcode, int64_t now_ms,
		const struct csd_import_limits *limits, struct csd_import **imp, char *err,
		size_t errlen)
{
	struct stat st;
	int fd;

	*imp = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return fail_open(err, errlen, -errno, "import: open");
	}
	if (fstat(fd, &st) != 0) {
		int rc = -errno;

		close(fd);
		return fail_open(err, errlen, rc, "import: stat");
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail_open(err, errlen, JUKI_EINVAL, "import: not a regular file");
	}
	return import_new(path, fd, NULL, 0, (uint64_t)st.st_size, self_lgcode, now_ms, limits, imp,
			  err, errlen);
}

int
csd_import_open_mem(const char *name, const void *data, size_t size, const char *self_lgcode,
		    int64_t now_ms, const struct csd_import_limits *limits, struct csd_import **imp,
		    char *err, size_t errlen)
{
	return import_new(name, -1, data, size, size, self_lgcode, now_ms, limits, imp, err,
			  errlen);
}

void
csd_import_close(struct csd_import *imp)
{
	if (imp == NULL) {
		return;
	}
	if (imp->reader_ready) {
		imp_reader_free(&imp->rd);
	}
	EVP_MD_CTX_free(imp->dig);
	map_clear(&imp->map);
	free(imp->hcol);
	free(imp->by_reason);
	free(imp->errors);
	free(imp->name);
	free(imp);
}

/* Validation. */

static int
abort_import(struct csd_import *imp, int rc)
{
	imp->abort_rc = rc;
	return rc;
}

int
csd_import_validate(struct csd_import *imp, size_t max_rows, csd_import_lookup_cb lookup, void *ctx)
{
	struct row row;
	int rc;

	if (imp->abort_rc != 0) {
		return imp->abort_rc;
	}
	if (imp->phase != PH_VALIDATE) {
		return 1;
	}
	imp->lookup = lookup;
	imp->ctx = ctx;
	for (size_t n = 0; max_rows == 0 || n < max_rows; n++) {
		rc = next_row(imp, &row);
		if (rc == 0) {
			if ((rc = finish_digests(imp, imp->val_sha, imp->val_dig)) != 0) {
				return abort_import(imp, rc);
			}
			imp->val_rows = imp->rows;
			imp->val_bytes = imp->rd.bytes;
			imp->phase = PH_VALIDATED;
			return 1;
		}
		if (rc > 0) {
			rc = process_row(imp, &row);
		}
		row_done(&row);
		if (rc < 0) {
			return abort_import(imp, rc);
		}
	}
	return 0;
}

void
csd_import_on_change(struct csd_import *imp,
		     int (*fn)(void *arg, const struct csd_import_change *c), void *arg)
{
	imp->on_change = fn;
	imp->on_change_arg = arg;
}

enum csd_import_format
csd_import_format(const struct csd_import *imp)
{
	return imp->format;
}

size_t
csd_import_rows(const struct csd_import *imp)
{
	return imp->rows;
}

uint64_t
csd_import_bytes_read(const struct csd_import *imp)
{
	return imp->rd.bytes;
}

uint64_t
csd_import_bytes_total(const struct csd_import *imp)
{
	return imp->total;
}

size_t
csd_import_mem_bytes(const struct csd_import *imp)
{
	return sizeof(*imp) + imp_reader_mem(&imp->rd) + imp->nhcol * sizeof(int) +
	       imp->map.cap * sizeof(struct slot) + imp->errcap * sizeof(struct csd_import_error) +
	       imp->nreasons * sizeof(size_t);
}

size_t
csd_import_error_count(const struct csd_import *imp)
{
	return imp->error_count;
}

const struct csd_import_error *
csd_import_errors(const struct csd_import *imp, size_t *n)
{
	*n = imp->nerr;
	return imp->errors;
}

int
csd_import_accepted(const struct csd_import *imp)
{
	return imp->abort_rc == 0 && imp->error_count == 0 &&
	       (imp->phase == PH_VALIDATED || imp->phase == PH_REPLAY || imp->phase == PH_REPLAYED);
}

static const char *
format_name(enum csd_import_format format)
{
	return format == CSD_IMPORT_JSONL ? "jsonl" : "csv";
}

json_t *
csd_import_report_json(const struct csd_import *imp)
{
	json_t *errors = json_array(), *r;

	if (errors == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < imp->nerr; i++) {
		const struct csd_import_error *e = &imp->errors[i];

		if (json_array_append_new(
			errors, json_pack("{s:I,s:s,s:s,s:s}", "line", (json_int_t)e->line, "field",
					  e->field, "reason", e->reason, "detail", e->detail)) !=
		    0) {
			json_decref(errors);
			return NULL;
		}
	}
	r = json_pack("{s:s,s:s,s:I,s:b,s:o,s:I}", "file", imp->name, "format",
		      format_name(imp->format), "rows", (json_int_t)imp->rows, "complete",
		      imp->phase != PH_VALIDATE && imp->abort_rc == 0, "errors", errors,
		      "error_count", (json_int_t)imp->error_count);
	if (r != NULL && imp->abort_rc != 0 &&
	    json_object_set_new(r, "aborted", json_string(juki_strerror(imp->abort_rc))) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

json_t *
csd_import_receipt_json(const struct csd_import *imp)
{
	const struct juki_reason *reasons;
	char hex[2 * SHA_LEN + 1];
	json_t *by;
	size_t n;

	if (!csd_import_accepted(imp) || (by = json_object()) == NULL) {
		return NULL;
	}
	reasons = juki_reasons(&n);
	for (size_t i = 0; i < n; i++) {
		if (imp->by_reason[i] > 0 &&
		    json_object_set_new(by, reasons[i].name,
					json_integer((json_int_t)imp->by_reason[i])) != 0) {
			json_decref(by);
			return NULL;
		}
	}
	juki_hex_encode(imp->val_sha, SHA_LEN, hex);
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:I,s:s,s:I,s:I}", "file", imp->name,
			 "format", format_name(imp->format), "lgcode", imp->self, "imported",
			 imp->recorded, "rows", (json_int_t)imp->val_rows, "changes",
			 (json_int_t)imp->changes, "by_reason", by, "bytes",
			 (json_int_t)imp->val_bytes, "sha256", hex, "first_line",
			 (json_int_t)imp->first_line, "last_line", (json_int_t)imp->last_line);
}

/* Replay. */

int
csd_import_rewind(struct csd_import *imp, csd_import_lookup_cb lookup, void *ctx)
{
	int rc;

	if (!csd_import_accepted(imp)) {
		return JUKI_EINVAL;
	}
	map_clear(&imp->map);
	imp->header_done = 0;
	imp->stopped = 0;
	imp->rows = 0;
	imp->nout = imp->outpos = 0;
	imp->lookup = lookup;
	imp->ctx = ctx;
	imp->errors_at_rewind = imp->error_count;
	if ((rc = imp_reader_start(&imp->rd)) == 0 &&
	    EVP_DigestInit_ex(imp->dig, EVP_sha256(), NULL) != 1) {
		rc = JUKI_EIO;
	}
	if (rc != 0) {
		imp->phase = PH_FAILED;
		return rc;
	}
	imp->phase = PH_REPLAY;
	return 0;
}

/* The replay differs from validation: say so, and refuse to go on. */
static int
replay_failed(struct csd_import *imp)
{
	imp->phase = PH_FAILED;
	return JUKI_EAGAIN;
}

int
csd_import_next(struct csd_import *imp, struct csd_import_change *c)
{
	unsigned char sha[SHA_LEN], dig[SHA_LEN];
	struct row row;
	int rc;

	switch (imp->phase) {
	case PH_REPLAY:
		break;
	case PH_REPLAYED:
		return 0;
	case PH_FAILED:
		return JUKI_EAGAIN;
	default:
		return JUKI_EINVAL;
	}
	while (imp->outpos == imp->nout) {
		imp->nout = imp->outpos = 0;
		rc = next_row(imp, &row);
		if (rc > 0) {
			rc = process_row(imp, &row);
			row_done(&row);
			if (rc < 0) {
				imp->phase = PH_FAILED;
				return rc;
			}
			if (imp->error_count != imp->errors_at_rewind) {
				return replay_failed(imp);
			}
			continue;
		}
		row_done(&row);
		if (rc < 0) {
			imp->phase = PH_FAILED;
			return rc;
		}
		if ((rc = finish_digests(imp, sha, dig)) != 0) {
			imp->phase = PH_FAILED;
			return rc;
		}
		if (imp->error_count != imp->errors_at_rewind) {
			return replay_failed(imp);
		}
		if (memcmp(sha, imp->val_sha, SHA_LEN) != 0 ||
		    memcmp(dig, imp->val_dig, SHA_LEN) != 0) {
			rc = memcmp(sha, imp->val_sha, SHA_LEN) != 0
				 ? add_error(imp, 0, "", CSD_IMPORT_R_FILE_CHANGED,
					     "the file is not the one validated")
				 : add_error(imp, 0, "", CSD_IMPORT_R_HELD_CHANGED,
					     "the register changed: versions differ from those "
					     "validated");
			return rc != 0 ? rc : replay_failed(imp);
		}
		imp->phase = PH_REPLAYED;
		return 0;
	}
	*c = imp->out[imp->outpos++];
	return 1;
}
