/*
 * The printed document: a small model (title, header lines, a table,
 * paragraphs, a footer with the date and the issuer's title) rendered to
 * PDF with cairo and pango in a Japanese serif font (Noto Serif CJK JP),
 * every glyph embedded (docs/architecture.md §16).
 *
 * A document is checked whole before a byte is written: a character that
 * the font chosen for it does not cover (a box or a hex box would stand in
 * its place), a variation sequence the font has no glyph for (the base
 * glyph would stand in for the variant), a control character or text that
 * is not UTF-8 refuses the document with the position of the character
 * (field, row, column, character), never the text itself: the text is a
 * resident's record.
 *
 * Linked into juki-ctl only (library juki_print): the daemons never link
 * cairo or pango.
 */
#ifndef JUKI_CTL_PRINT_H
#define JUKI_CTL_PRINT_H

#include <stddef.h>

#define CTL_PRINT_COLS_MAX 8

struct ctl_doc {
	const char *title;         /* centred at the top of the first page */
	const char *const *header; /* lines under the title */
	size_t n_header;
	const char *const *columns; /* the table's column titles, repeated on each page */
	const double *widths;       /* each column's share of the width (sum 1), or NULL: equal */
	size_t n_columns;           /* 0: no table */
	const char *const *cells;   /* n_rows * n_columns strings, row by row */
	size_t n_rows;
	const char *empty;             /* printed in place of a table of no rows, or NULL */
	const char *const *paragraphs; /* after the table */
	size_t n_paragraphs;
	const char *date;   /* footer of the last page, right: the date of issue */
	const char *issuer; /* footer of the last page, right, under the date */
	int landscape;      /* A4 landscape (default: portrait) */
	/*
	 * The number of the sheet a certified document is printed on (a form
	 * of the controlled stock, 第4-8(3)), top right of every page; NULL:
	 * none.
	 */
	const char *serial;
};

/* Where a refused character stands: never the text. */
struct ctl_print_error {
	char message[160];
};

/*
 * ctl_print_check() - whether every string of doc can be printed as it is.
 * Returns 0, or -1 with the position of the first character that cannot
 * in err ("row 3, column 2, character 5: no glyph in the font").
 */
int ctl_print_check(const struct ctl_doc *doc, struct ctl_print_error *err);

/*
 * ctl_print_pdf_fd() - check doc and render it as PDF (A4) to fd.  Nothing
 * is written to fd when the document is refused.  Returns 0, or -1 with
 * err set.
 */
int ctl_print_pdf_fd(const struct ctl_doc *doc, int fd, struct ctl_print_error *err);

/*
 * ctl_print_pdf_path() - ctl_print_pdf_fd() into a new file path, mode
 * 0600; a path that exists (a symbolic link too) is refused.  A refused or
 * failed document leaves no file.
 */
int ctl_print_pdf_path(const struct ctl_doc *doc, const char *path, struct ctl_print_error *err);

/* ctl_print_pages() - how many pages doc takes (after a check); -1 with err. */
int ctl_print_pages(const struct ctl_doc *doc, struct ctl_print_error *err);

#endif
