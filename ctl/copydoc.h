/*
 * juki-ctl — the certified copy of a residence record (住民票の写し, 第6-4(3))
 * laid out for print.h: the title, the address (and the householder and
 * 本籍 when asked) as header lines, a table of the persons (氏名, 生年月日,
 * 性別, 続柄 when asked, 住民となった年月日, 住民票コード when asked), the
 * certification sentence, the request, the date of issue (YYYY年M月D日),
 * the issuing mayor's title and the form's serial (用紙番号, nine digits).
 */
#ifndef JUKI_CTL_COPYDOC_H
#define JUKI_CTL_COPYDOC_H

#include <jansson.h>

#include "print.h"

/* The certification sentence printed under the table. */
#define CTL_COPY_CERTIFY                                                                                                     \
	"この写しは、住民基本台帳法第12条の2の規定により住所地市町村長から通知を受けた" \
	"住民票の記載事項と相違ないことを証明する。"

/* The document of a copy: strings kept in the struct until it is printed. */
#define CTL_COPY_COLS 6
#define CTL_COPY_ROWS 20

struct ctl_copy_doc {
	struct ctl_doc doc;
	char header[4][700];
	const char *header_p[4];
	const char *cols[CTL_COPY_COLS];
	double widths[CTL_COPY_COLS];
	char cells[CTL_COPY_ROWS * CTL_COPY_COLS][300];
	const char *cell_p[CTL_COPY_ROWS * CTL_COPY_COLS];
	char paras[2][800];
	const char *para_p[2];
	char date[64], serial[64];
};

/*
 * ctl_copy_doc_build() - lay out result (the object of copy.show or
 * copy.print: "request", "copy", "id", and "date", "mayor", "serial" when
 * printed) into cd, whose strings it holds.  Without "serial" the serial
 * is 000000000: the same width, for the check before a form is taken.
 */
void ctl_copy_doc_build(const json_t *result, struct ctl_copy_doc *cd);

#endif
