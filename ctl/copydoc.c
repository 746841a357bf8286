/*
 * The certified copy laid out for print (copydoc.h).
 */
#include <stdio.h>
#include <string.h>

#include "copydoc.h"
#include "ctl.h"

/* "2026-12-07" as "2026年12月7日"; anything else as it is. */
static void
jdate(const char *day, char *buf, size_t len)
{
	int y, m, d;

	if (day == NULL || sscanf(day, "%4d-%2d-%2d", &y, &m, &d) != 3) {
		snprintf(buf, len, "%s", day != NULL ? day : "");
		return;
	}
	snprintf(buf, len, "%d年%d月%d日", y, m, d);
}

/*
 * Lay out result (copy.show or copy.print) as a 住民票の写し; serial NULL
 * for the check before a serial is taken (a placeholder of the same width).
 */
void
ctl_copy_doc_build(const json_t *result, struct ctl_copy_doc *cd)
{
	const json_t *copy = json_object_get(result, "copy");
	const json_t *items = json_object_get(json_object_get(result, "request"), "items");
	const json_t *persons = json_object_get(copy, "persons"), *p, *it;
	int relation = 0, code = 0;
	size_t i, nh = 0, nc = 0, nr = 0;
	double total = 0;

	memset(cd, 0, sizeof(*cd));
	json_array_foreach(items, i, it)
	{
		relation |= strcmp(json_string_value(it), "relation") == 0;
		code |= strcmp(json_string_value(it), "code") == 0;
	}
	snprintf(cd->header[nh++], sizeof(cd->header[0]), "住所　%s", ctl_str(copy, "address"));
	if (json_object_get(copy, "householder") != NULL) {
		snprintf(cd->header[nh++], sizeof(cd->header[0]), "世帯主　%s",
			 ctl_str(copy, "householder"));
	}
	if (json_object_get(copy, "honseki") != NULL) {
		snprintf(cd->header[nh++], sizeof(cd->header[0]), "本籍　%s",
			 ctl_str(copy, "honseki"));
	}
	for (i = 0; i < nh; i++) {
		cd->header_p[i] = cd->header[i];
	}
	cd->cols[nc] = "氏名";
	cd->widths[nc++] = 3;
	cd->cols[nc] = "生年月日";
	cd->widths[nc++] = 2;
	cd->cols[nc] = "性別";
	cd->widths[nc++] = 1;
	if (relation) {
		cd->cols[nc] = "続柄";
		cd->widths[nc++] = 1.2;
	}
	cd->cols[nc] = "住民となった年月日";
	cd->widths[nc++] = 2;
	if (code) {
		cd->cols[nc] = "住民票コード";
		cd->widths[nc++] = 2;
	}
	for (i = 0; i < nc; i++) {
		total += cd->widths[i];
	}
	for (i = 0; i < nc; i++) {
		cd->widths[i] /= total;
	}
	json_array_foreach(persons, nr, p)
	{
		char(*row)[300] = &cd->cells[nr * nc];
		size_t c = 0;

		if (nr >= CTL_COPY_ROWS) {
			break;
		}
		snprintf(row[c++], 300, "%s", ctl_str(p, "name"));
		jdate(json_string_value(json_object_get(p, "birth")), row[c++], 300);
		snprintf(row[c++], 300, "%s", ctl_int(p, "sex") == 1 ? "男" : "女");
		if (relation) {
			snprintf(row[c++], 300, "%s",
				 json_object_get(p, "relation") ? ctl_str(p, "relation") : "");
		}
		jdate(json_string_value(json_object_get(p, "resident_since")), row[c++], 300);
		if (code) {
			snprintf(row[c++], 300, "%s",
				 json_object_get(p, "code") ? ctl_str(p, "code") : "");
		}
	}
	for (i = 0; i < nr * nc; i++) {
		cd->cell_p[i] = cd->cells[i];
	}
	snprintf(cd->paras[0], sizeof(cd->paras[0]), "%s", CTL_COPY_CERTIFY);
	snprintf(cd->paras[1], sizeof(cd->paras[1]), "住所地　%s　請求番号　%s",
		 ctl_str(json_object_get(result, "request"), "home"), ctl_str(result, "id"));
	cd->para_p[0] = cd->paras[0];
	cd->para_p[1] = cd->paras[1];
	jdate(json_string_value(json_object_get(result, "date")), cd->date, sizeof(cd->date));
	if (json_object_get(result, "serial") != NULL) {
		snprintf(cd->serial, sizeof(cd->serial), "用紙番号　%09lld",
			 ctl_int(result, "serial"));
	} else {
		snprintf(cd->serial, sizeof(cd->serial), "用紙番号　%09d", 0);
	}
	cd->doc = (struct ctl_doc){
	    .title = "住民票の写し",
	    .header = cd->header_p,
	    .n_header = nh,
	    .columns = cd->cols,
	    .widths = cd->widths,
	    .n_columns = nc,
	    .cells = cd->cell_p,
	    .n_rows = nr,
	    .paragraphs = cd->para_p,
	    .n_paragraphs = 2,
	    .date = cd->date[0] ? cd->date : NULL,
	    .issuer = json_string_value(json_object_get(result, "mayor")),
	    .serial = cd->serial,
	};
}
