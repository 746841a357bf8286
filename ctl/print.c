/*
 * The printed document in PDF: pango lays the text out (HarfBuzz shapes
 * it, fontconfig finds the fonts), cairo draws it and embeds the subset of
 * every font used.  See print.h for the model and the refusals.
 *
 * A document is laid out twice: once to count its pages ("1 / 3" on each
 * page needs the total), once to draw them.  It is drawn into memory and
 * written out only when whole, so that a refused or failed document leaves
 * nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <hb.h>
#include <pango/pangocairo.h>

#include "print.h"

/* A4 in points, and the frame of the text. */
#define A4_SHORT 595.276
#define A4_LONG  841.890
#define PAGE_W   (p->doc->landscape ? A4_LONG : A4_SHORT)
#define PAGE_H   (p->doc->landscape ? A4_SHORT : A4_LONG)
#define MARGIN   56.0
#define FOOT_H   28.0 /* below the body: the page number */
#define BODY_TOP MARGIN
#define BODY_BOT (PAGE_H - MARGIN - FOOT_H)
#define BODY_W   (PAGE_W - 2 * MARGIN)
#define CELL_PAD 4.0
#define GAP      10.0
#define LINE_W   0.6

#define FONT_FAMILY "Noto Serif CJK JP"
#define FONT_TITLE  FONT_FAMILY " Bold 16"
#define FONT_TEXT   FONT_FAMILY " 10.5"
#define FONT_TABLE  FONT_FAMILY " 9"
#define FONT_SMALL  FONT_FAMILY " 8"

#if defined(__SANITIZE_ADDRESS__)
/*
 * LeakSanitizer (the ASan build of scripts/test.sh): fontconfig keeps the
 * patterns of its font matches in caches it never frees, and cairo 1.16's
 * PDF surface leaks an array of its font subsets at finish; neither is
 * ours to free.  Their frames are left out of leak reports of juki-ctl
 * and of the tests that link this file.
 */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\nleak:libcairo.so\nleak:libpango-1.0.so\n"
	       "leak:libpangoft2-1.0.so\n";
}
#endif

static void __attribute__((format(printf, 2, 3)))
fail(struct ctl_print_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* A variation selector: VS1-16 or VS17-256 (the ideographic ones). */
static int
is_vs(gunichar c)
{
	return (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xE0100 && c <= 0xE01EF);
}

struct pr {
	cairo_t *cr;
	PangoContext *pc;
	PangoFontDescription *f_title, *f_text, *f_table, *f_small;
	const struct ctl_doc *doc;
	double col_x[CTL_PRINT_COLS_MAX + 1]; /* each column's left edge; [n] the right one */
	int draw;                             /* 0: count the pages only */
	int page, pages;
	double y;
};

static PangoLayout *
layout_new(struct pr *p, const PangoFontDescription *font, const char *text, double width)
{
	PangoLayout *l = pango_layout_new(p->pc);

	pango_layout_set_font_description(l, font);
	pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_width(l, (int)(width * PANGO_SCALE));
	pango_layout_set_text(l, text, -1);
	return l;
}

static double
layout_h(PangoLayout *l)
{
	int w, h;

	pango_layout_get_size(l, &w, &h);
	return (double)h / PANGO_SCALE;
}

/* The font that drew the character at byte offset at of l, or NULL. */
static PangoFont *
font_at(PangoLayout *l, int at)
{
	PangoLayoutIter *it = pango_layout_get_iter(l);
	PangoFont *font = NULL;

	do {
		PangoLayoutRun *run = pango_layout_iter_get_run_readonly(it);

		if (run != NULL && at >= run->item->offset &&
		    at < run->item->offset + run->item->length) {
			font = run->item->analysis.font;
			break;
		}
	} while (pango_layout_iter_next_run(it));
	pango_layout_iter_free(it);
	return font;
}

/*
 * Whether every character of text is drawn as itself: each in the font
 * pango chose for it, each variation sequence as the variant.  where names
 * the field for the message.
 */
static int
check_text(struct pr *p, const PangoFontDescription *font, const char *text, const char *where,
	   struct ctl_print_error *err)
{
	const char *bad;
	PangoLayout *l;
	long n = 0;
	int rc = 0;

	if (text == NULL) {
		return 0;
	}
	if (!g_utf8_validate(text, -1, &bad)) {
		fail(err, "%s, character %ld: not UTF-8", where,
		     g_utf8_strlen(text, bad - text) + 1);
		return -1;
	}
	for (const char *s = text; *s != '\0'; s = g_utf8_next_char(s)) {
		gunichar c = g_utf8_get_char(s);

		n++;
		if (g_unichar_iscntrl(c) || g_unichar_type(c) == G_UNICODE_UNASSIGNED ||
		    g_unichar_type(c) == G_UNICODE_SURROGATE ||
		    (is_vs(c) && (s == text || is_vs(g_utf8_get_char(g_utf8_prev_char(s)))))) {
			fail(err, "%s, character %ld: not a printable character", where, n);
			return -1;
		}
	}
	l = layout_new(p, font, text, BODY_W);
	if (pango_layout_get_unknown_glyphs_count(l) > 0) {
		/* Found again below, with its position. */
		rc = -1;
	}
	n = 0;
	for (const char *s = text; *s != '\0'; s = g_utf8_next_char(s)) {
		gunichar c = g_utf8_get_char(s), next;
		const char *after = g_utf8_next_char(s);
		PangoFont *f;
		hb_font_t *hb;
		hb_codepoint_t glyph;
		int ok;

		n++;
		if (is_vs(c) || c == ' ') {
			continue; /* a selector with the base before it; a space needs no glyph */
		}
		f = font_at(l, (int)(s - text));
		hb = f != NULL ? pango_font_get_hb_font(f) : NULL;
		next = *after != '\0' ? g_utf8_get_char(after) : 0;
		if (hb == NULL) {
			ok = 0;
		} else if (is_vs(next)) {
			ok = hb_font_get_variation_glyph(hb, c, next, &glyph) && glyph != 0;
		} else {
			ok = hb_font_get_nominal_glyph(hb, c, &glyph) && glyph != 0;
		}
		if (!ok) {
			fail(err, "%s, character %ld: %s", where, n,
			     is_vs(next) ? "no glyph for this variation in the font"
					 : "no glyph for this character in the font");
			g_object_unref(l);
			return -1;
		}
	}
	g_object_unref(l);
	if (rc != 0) {
		fail(err, "%s: a character the font cannot draw", where);
	}
	return rc;
}

static int
check_doc(struct pr *p, struct ctl_print_error *err)
{
	const struct ctl_doc *d = p->doc;
	char where[64];

	if (d->n_columns > CTL_PRINT_COLS_MAX) {
		fail(err, "a table of more than %d columns", CTL_PRINT_COLS_MAX);
		return -1;
	}
	if (check_text(p, p->f_title, d->title, "title", err) != 0 ||
	    check_text(p, p->f_table, d->empty, "the empty table's note", err) != 0 ||
	    check_text(p, p->f_text, d->date, "date", err) != 0 ||
	    check_text(p, p->f_text, d->issuer, "issuer", err) != 0 ||
	    check_text(p, p->f_small, d->serial, "serial", err) != 0) {
		return -1;
	}
	for (size_t i = 0; i < d->n_header; i++) {
		snprintf(where, sizeof(where), "header line %zu", i + 1);
		if (check_text(p, p->f_text, d->header[i], where, err) != 0) {
			return -1;
		}
	}
	for (size_t c = 0; c < d->n_columns; c++) {
		snprintf(where, sizeof(where), "column title %zu", c + 1);
		if (check_text(p, p->f_table, d->columns[c], where, err) != 0) {
			return -1;
		}
	}
	for (size_t r = 0; r < d->n_rows; r++) {
		for (size_t c = 0; c < d->n_columns; c++) {
			snprintf(where, sizeof(where), "row %zu, column %zu", r + 1, c + 1);
			if (check_text(p, p->f_table, d->cells[r * d->n_columns + c], where, err) !=
			    0) {
				return -1;
			}
		}
	}
	for (size_t i = 0; i < d->n_paragraphs; i++) {
		snprintf(where, sizeof(where), "paragraph %zu", i + 1);
		if (check_text(p, p->f_text, d->paragraphs[i], where, err) != 0) {
			return -1;
		}
	}
	return 0;
}

/* Draw l at (x, y) when drawing. */
static void
show(struct pr *p, PangoLayout *l, double x, double y)
{
	if (p->draw) {
		cairo_move_to(p->cr, x, y);
		pango_cairo_show_layout(p->cr, l);
	}
}

/* The page number, and the page ended. */
static void
end_page(struct pr *p)
{
	if (p->draw) {
		char num[32];
		PangoLayout *l;

		snprintf(num, sizeof(num), "%d / %d", p->page, p->pages);
		l = layout_new(p, p->f_small, num, BODY_W);
		pango_layout_set_alignment(l, PANGO_ALIGN_CENTER);
		show(p, l, MARGIN, PAGE_H - MARGIN - layout_h(l));
		g_object_unref(l);
		if (p->doc->serial != NULL) {
			/* The form's serial, in the top margin, right. */
			l = layout_new(p, p->f_small, p->doc->serial, BODY_W);
			pango_layout_set_alignment(l, PANGO_ALIGN_RIGHT);
			show(p, l, MARGIN, MARGIN / 2);
			g_object_unref(l);
		}
		cairo_show_page(p->cr);
	}
	p->page++;
	p->y = BODY_TOP;
}

/* A table row of texts (cells[0..n_columns)); header rows are shaded. */
static double
row_height(struct pr *p, const char *const *cells, PangoLayout **ls)
{
	double h = 0;

	for (size_t c = 0; c < p->doc->n_columns; c++) {
		double w = p->col_x[c + 1] - p->col_x[c] - 2 * CELL_PAD;

		ls[c] = layout_new(p, p->f_table, cells[c] != NULL ? cells[c] : "", w);
		if (layout_h(ls[c]) > h) {
			h = layout_h(ls[c]);
		}
	}
	return h + 2 * CELL_PAD;
}

static void
draw_row(struct pr *p, PangoLayout **ls, double h, int shaded)
{
	size_t n = p->doc->n_columns;

	if (p->draw) {
		if (shaded) {
			cairo_set_source_rgb(p->cr, 0.9, 0.9, 0.9);
			cairo_rectangle(p->cr, p->col_x[0], p->y, p->col_x[n] - p->col_x[0], h);
			cairo_fill(p->cr);
			cairo_set_source_rgb(p->cr, 0, 0, 0);
		}
		cairo_set_line_width(p->cr, LINE_W);
		for (size_t c = 0; c < n; c++) {
			cairo_rectangle(p->cr, p->col_x[c], p->y, p->col_x[c + 1] - p->col_x[c], h);
		}
		cairo_stroke(p->cr);
	}
	for (size_t c = 0; c < n; c++) {
		show(p, ls[c], p->col_x[c] + CELL_PAD, p->y + CELL_PAD);
		g_object_unref(ls[c]);
	}
	p->y += h;
}

/* The column titles: at the table's top and at the top of each page it runs on to. */
static void
table_head(struct pr *p)
{
	PangoLayout *ls[CTL_PRINT_COLS_MAX];
	double h = row_height(p, p->doc->columns, ls);

	draw_row(p, ls, h, 1);
}

/* A block of text across the body, a new page first when it does not fit. */
static int
block(struct pr *p, const PangoFontDescription *font, const char *text, PangoAlignment align,
      double after, struct ctl_print_error *err)
{
	PangoLayout *l = layout_new(p, font, text, BODY_W);
	double h = layout_h(l);

	if (h > BODY_BOT - BODY_TOP) {
		g_object_unref(l);
		fail(err, "a text too long for a page");
		return -1;
	}
	if (p->y + h > BODY_BOT) {
		end_page(p);
	}
	pango_layout_set_alignment(l, align);
	show(p, l, MARGIN, p->y);
	p->y += h + after;
	g_object_unref(l);
	return 0;
}

static int
flow(struct pr *p, struct ctl_print_error *err)
{
	const struct ctl_doc *d = p->doc;

	p->page = 1;
	p->y = BODY_TOP;
	if (d->title != NULL && block(p, p->f_title, d->title, PANGO_ALIGN_CENTER, 2 * GAP, err)) {
		return -1;
	}
	for (size_t i = 0; i < d->n_header; i++) {
		if (block(p, p->f_text, d->header[i], PANGO_ALIGN_LEFT, 2, err) != 0) {
			return -1;
		}
	}
	p->y += GAP;
	if (d->n_columns > 0) {
		PangoLayout *ls[CTL_PRINT_COLS_MAX];
		double head = row_height(p, d->columns, ls);

		for (size_t c = 0; c < d->n_columns; c++) {
			g_object_unref(ls[c]);
		}
		if (p->y + 2 * head > BODY_BOT) {
			end_page(p);
		}
		table_head(p);
		for (size_t r = 0; r < d->n_rows; r++) {
			double h = row_height(p, d->cells + r * d->n_columns, ls);

			if (h + head > BODY_BOT - BODY_TOP) {
				for (size_t c = 0; c < d->n_columns; c++) {
					g_object_unref(ls[c]);
				}
				fail(err, "row %zu: too long for a page", r + 1);
				return -1;
			}
			if (p->y + h > BODY_BOT) {
				end_page(p);
				table_head(p);
			}
			draw_row(p, ls, h, 0);
		}
		p->y += GAP;
		if (d->n_rows == 0 && d->empty != NULL &&
		    block(p, p->f_table, d->empty, PANGO_ALIGN_LEFT, GAP, err) != 0) {
			return -1;
		}
	}
	for (size_t i = 0; i < d->n_paragraphs; i++) {
		if (block(p, p->f_text, d->paragraphs[i], PANGO_ALIGN_LEFT, GAP, err) != 0) {
			return -1;
		}
	}
	p->y += 2 * GAP;
	/* The date and the issuer together, on one page. */
	if (d->date != NULL || d->issuer != NULL) {
		char *foot = g_strjoin("\n", d->date != NULL ? d->date : "",
				       d->issuer != NULL ? d->issuer : "", NULL);
		int rc = block(p, p->f_text, foot, PANGO_ALIGN_RIGHT, 0, err);

		g_free(foot);
		if (rc != 0) {
			return -1;
		}
	}
	end_page(p);
	return 0;
}

struct buf {
	unsigned char *data;
	size_t len, cap;
};

static cairo_status_t
buf_write(void *closure, const unsigned char *data, unsigned int len)
{
	struct buf *b = closure;

	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		unsigned char *n;

		while (cap < b->len + len) {
			cap *= 2;
		}
		n = realloc(b->data, cap);
		if (n == NULL) {
			return CAIRO_STATUS_NO_MEMORY;
		}
		b->data = n;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return CAIRO_STATUS_SUCCESS;
}

static void
pr_fini(struct pr *p)
{
	pango_font_description_free(p->f_title);
	pango_font_description_free(p->f_text);
	pango_font_description_free(p->f_table);
	pango_font_description_free(p->f_small);
	if (p->pc != NULL) {
		g_object_unref(p->pc);
	}
	if (p->cr != NULL) {
		cairo_destroy(p->cr);
	}
}

/*
 * Check doc and lay it out on surface (draw set: drawn).  The layout is
 * the one of the PDF surface, unhinted, so that the count and the drawing
 * agree.
 */
static int
pr_init(struct pr *p, const struct ctl_doc *doc, cairo_surface_t *surface,
	struct ctl_print_error *err)
{
	cairo_font_options_t *fo;
	double total = 0, x = MARGIN;

	memset(p, 0, sizeof(*p));
	p->doc = doc;
	p->cr = cairo_create(surface);
	p->pc = pango_cairo_create_context(p->cr);
	fo = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
	pango_cairo_context_set_font_options(p->pc, fo);
	cairo_font_options_destroy(fo);
	pango_context_set_language(p->pc, pango_language_from_string("ja"));
	p->f_title = pango_font_description_from_string(FONT_TITLE);
	p->f_text = pango_font_description_from_string(FONT_TEXT);
	p->f_table = pango_font_description_from_string(FONT_TABLE);
	p->f_small = pango_font_description_from_string(FONT_SMALL);
	if (cairo_status(p->cr) != CAIRO_STATUS_SUCCESS) {
		fail(err, "cairo: %s", cairo_status_to_string(cairo_status(p->cr)));
		return -1;
	}
	if (check_doc(p, err) != 0) {
		return -1;
	}
	for (size_t c = 0; c < doc->n_columns; c++) {
		total += doc->widths != NULL ? doc->widths[c] : 1.0;
	}
	for (size_t c = 0; c < doc->n_columns; c++) {
		p->col_x[c] = x;
		x += BODY_W * (doc->widths != NULL ? doc->widths[c] : 1.0) / total;
	}
	p->col_x[doc->n_columns] = MARGIN + BODY_W;
	return 0;
}

/* The whole PDF of doc, in b (free b->data). */
static int
render(const struct ctl_doc *doc, struct buf *b, int *pages, struct ctl_print_error *err)
{
	cairo_surface_t *s;
	struct pr p;
	int rc;

	memset(b, 0, sizeof(*b));
	s = cairo_pdf_surface_create_for_stream(buf_write, b, doc->landscape ? A4_LONG : A4_SHORT,
						doc->landscape ? A4_SHORT : A4_LONG);
	cairo_pdf_surface_restrict_to_version(s, CAIRO_PDF_VERSION_1_5);
	if (doc->title != NULL) {
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, doc->title);
	}
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "juki-ctl");
	rc = pr_init(&p, doc, s, err);
	if (rc == 0) {
		rc = flow(&p, err); /* counts */
	}
	if (rc == 0 && pages != NULL) {
		*pages = p.page - 1;
	}
	if (rc == 0 && b != NULL) {
		p.pages = p.page - 1;
		p.draw = 1;
		rc = flow(&p, err);
	}
	pr_fini(&p);
	cairo_surface_finish(s);
	if (rc == 0 && cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
		fail(err, "cairo: %s", cairo_status_to_string(cairo_surface_status(s)));
		rc = -1;
	}
	cairo_surface_destroy(s);
	if (rc != 0) {
		free(b->data);
		memset(b, 0, sizeof(*b));
	}
	return rc;
}

int
ctl_print_check(const struct ctl_doc *doc, struct ctl_print_error *err)
{
	cairo_surface_t *s = cairo_pdf_surface_create_for_stream(NULL, NULL, A4_SHORT, A4_LONG);
	struct pr p;
	int rc = pr_init(&p, doc, s, err);

	pr_fini(&p);
	cairo_surface_destroy(s);
	return rc;
}

int
ctl_print_pages(const struct ctl_doc *doc, struct ctl_print_error *err)
{
	struct buf b;
	int pages = 0;

	if (render(doc, &b, &pages, err) != 0) {
		return -1;
	}
	free(b.data);
	return pages;
}

static int
write_all(int fd, const unsigned char *data, size_t len, struct ctl_print_error *err)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			fail(err, "write: %s", n < 0 ? strerror(errno) : "nothing written");
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ctl_print_pdf_fd(const struct ctl_doc *doc, int fd, struct ctl_print_error *err)
{
	struct buf b;
	int rc;

	if (render(doc, &b, NULL, err) != 0) {
		return -1;
	}
	rc = write_all(fd, b.data, b.len, err);
	free(b.data);
	return rc;
}

int
ctl_print_pdf_path(const struct ctl_doc *doc, const char *path, struct ctl_print_error *err)
{
	struct buf b;
	int fd, rc;

	if (render(doc, &b, NULL, err) != 0) {
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fail(err, "%s: %s", path, errno == EEXIST ? "exists already" : strerror(errno));
		free(b.data);
		return -1;
	}
	rc = write_all(fd, b.data, b.len, err);
	if (rc == 0 && fsync(fd) != 0) {
		fail(err, "fsync: %s", strerror(errno));
		rc = -1;
	}
	if (close(fd) != 0 && rc == 0) {
		fail(err, "close: %s", strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		unlink(path);
	}
	free(b.data);
	return rc;
}
