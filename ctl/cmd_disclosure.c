/*
 * Disclosure (開示請求, 第6-8(5)ア): every provision and use of a person's
 * identity information that a prefectural server recorded, as text, JSON,
 * or the printed answer handed to the person (print.h).  The provision
 * notices of the national server (provide.notice) and their counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "print.h"

#define COLS 7

/* "2026-12-01T03:04:05.000Z" as the Japan time "2026-12-01 12:04". */
static void
jst(const char *rfc3339, char *buf, size_t len)
{
	int64_t ms, s;
	char day[11];

	if (rfc3339 == NULL || juki_clock_parse(rfc3339, &ms) != 0) {
		snprintf(buf, len, "-");
		return;
	}
	juki_clock_date(ms, day, sizeof(day));
	s = ((ms / 1000) + 9 * 3600) % 86400;
	if (s < 0) {
		s += 86400;
	}
	snprintf(buf, len, "%s %02d:%02d", day, (int)(s / 3600), (int)(s / 60 % 60));
}

static const char *
kind_ja(const char *kind)
{
	return strcmp(kind, "use") == 0 ? "利用" : "提供";
}

/* The items provided, in Japanese, a list of the row's "items". */
static void
items_ja(const json_t *items, char *buf, size_t len)
{
	static const char *const names[][2] = {
	    {"code", "住民票コード"}, {"name", "氏名"},    {"birth", "生年月日"},
	    {"sex", "性別"},          {"address", "住所"}, {"change", "異動事由・年月日"},
	};
	const json_t *it;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(items, i, it)
	{
		const char *name = json_string_value(it);

		if (name == NULL) {
			continue;
		}
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			if (strcmp(names[k][0], name) == 0) {
				name = names[k][1];
				break;
			}
		}
		if (off < len) {
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "、" : "", name);
		}
	}
}

static void
items_text(const json_t *items, char *buf, size_t len)
{
	const json_t *it;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(items, i, it)
	{
		if (off < len) {
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
						json_string_value(it) ? json_string_value(it) : "");
		}
	}
}

static void
print_disclosure(const json_t *result)
{
	const json_t *rows = json_object_get(result, "provisions"), *row;
	size_t i;

	printf("provisions and uses of %s recorded at %s: %lld\n", ctl_str(result, "code"),
	       ctl_str(result, "prefecture"), ctl_int(result, "total"));
	if (json_array_size(rows) == 0) {
		return;
	}
	printf("%-16s  %-7s  %-28s  %-8s  %-28s  %-20s  %s\n", "TIME (JST)", "KIND", "BODY", "JIMU",
	       "ITEMS", "ORIGIN", "PURPOSE");
	json_array_foreach(rows, i, row)
	{
		char when[32], items[128];

		jst(json_string_value(json_object_get(row, "time")), when, sizeof(when));
		items_text(json_object_get(row, "items"), items, sizeof(items));
		printf("%-16s  %-7s  %-28s  %-8s  %-28s  %-20s  %s\n", when, ctl_str(row, "kind"),
		       ctl_str(row, "body"), ctl_str(row, "jimu"), items, ctl_str(row, "origin"),
		       ctl_str(row, "purpose"));
	}
}

/* "2026-12-07" as "2026年12月7日". */
static void
date_ja(const char *day, char *buf, size_t len)
{
	int y, m, d;

	if (day == NULL || sscanf(day, "%4d-%2d-%2d", &y, &m, &d) != 3) {
		snprintf(buf, len, "%s", day != NULL ? day : "");
		return;
	}
	snprintf(buf, len, "%d年%d月%d日", y, m, d);
}

/* Who provided it: the prefecture itself, or the national server (notified). */
static const char *
origin_ja(const char *origin, const char *prefecture)
{
	if (origin != NULL && prefecture != NULL && strcmp(origin, prefecture) == 0) {
		return "都道府県";
	}
	if (origin != NULL && strncmp(origin, "urn:juki:jlis:", 14) == 0) {
		return "指定情報処理機関";
	}
	return origin != NULL ? origin : "-";
}

/* The printed answer of result into path (a new file, mode 0600; "-": standard output). */
static int
print_pdf(const json_t *result, const char *path)
{
	static const char *const columns[COLS] = {
	    "日時", "区分", "提供元", "提供先・利用者", "事務", "提供した情報", "目的"};
	static const double widths[COLS] = {0.12, 0.05, 0.1, 0.22, 0.06, 0.2, 0.25};
	const json_t *rows = json_object_get(result, "provisions"), *row;
	size_t n = json_array_size(rows), i;
	char header[2][160], date[64];
	const char *heads[2] = {header[0], header[1]};
	const char *paras[1] = {"上記のとおり、あなたの本人確認情報の提供及び利用の状況を開示します"
				"。日時は日本時間です。"};
	char(*text)[3][256] = calloc(n ? n : 1, sizeof(*text));
	const char **cells = calloc(n ? n * COLS : 1, sizeof(*cells));
	struct ctl_print_error err;
	int rc;

	if (text == NULL || cells == NULL) {
		free(text);
		free(cells);
		fprintf(stderr, "juki-ctl: disclosure: out of memory\n");
		return CTL_FAILED;
	}
	snprintf(header[0], sizeof(header[0]), "住民票コード　%s", ctl_str(result, "code"));
	snprintf(header[1], sizeof(header[1]), "提供及び利用の記録　%zu件", n);
	json_array_foreach(rows, i, row)
	{
		jst(json_string_value(json_object_get(row, "time")), text[i][0],
		    sizeof(text[i][0]));
		items_ja(json_object_get(row, "items"), text[i][1], sizeof(text[i][1]));
		snprintf(text[i][2], sizeof(text[i][2]), "%s", ctl_str(row, "body"));
		cells[i * COLS + 0] = text[i][0];
		cells[i * COLS + 1] = kind_ja(ctl_str(row, "kind"));
		cells[i * COLS + 2] =
		    origin_ja(json_string_value(json_object_get(row, "origin")),
			      json_string_value(json_object_get(result, "prefecture")));
		cells[i * COLS + 3] = text[i][2];
		cells[i * COLS + 4] =
		    json_string_value(json_object_get(row, "jimu")) ? ctl_str(row, "jimu") : "";
		cells[i * COLS + 5] = text[i][1];
		cells[i * COLS + 6] = json_string_value(json_object_get(row, "purpose"))
					  ? ctl_str(row, "purpose")
					  : "";
	}
	date_ja(json_string_value(json_object_get(result, "date")), date, sizeof(date));
	{
		struct ctl_doc doc = {
		    .title = "本人確認情報の提供状況の開示",
		    .header = heads,
		    .n_header = 2,
		    .columns = columns,
		    .widths = widths,
		    .n_columns = COLS,
		    .cells = cells,
		    .n_rows = n,
		    .empty = "本人確認情報の提供又は利用の記録はありません。",
		    .paragraphs = paras,
		    .n_paragraphs = 1,
		    .date = date,
		    .issuer = ctl_str(result, "issuer"),
		    .landscape = 1,
		};

		rc = strcmp(path, "-") == 0 ? ctl_print_pdf_fd(&doc, STDOUT_FILENO, &err)
					    : ctl_print_pdf_path(&doc, path, &err);
	}
	free(text);
	free(cells);
	if (rc != 0) {
		/* The position of a character that cannot be printed, never the text. */
		fprintf(stderr, "juki-ctl: disclosure: cannot print the answer: %s\n", err.message);
		return CTL_FAILED;
	}
	return CTL_OK;
}

static int
cmd_disclosure(struct ctl *ctl, const struct ctl_req *req)
{
	const char *pdf = ctl_val(req, "pdf");
	json_t *result = NULL;
	struct stat st;
	int rc;

	/* Refused before the daemon is asked: nothing is overwritten. */
	if (pdf != NULL && strcmp(pdf, "-") != 0 && lstat(pdf, &st) == 0) {
		fprintf(stderr, "juki-ctl: disclosure: %s exists already; not overwritten\n", pdf);
		return CTL_FAILED;
	}
	rc = ctl_call(ctl, "disclosure", json_deep_copy(req->args), &result);
	if (rc != CTL_OK) {
		return rc;
	}
	if (pdf != NULL) {
		rc = print_pdf(result, pdf);
	} else if (ctl->json) {
		ctl_print(ctl, result);
	} else {
		print_disclosure(result);
	}
	json_decref(result);
	return rc;
}

static int
any_differs(const json_t *result)
{
	const json_t *row;
	size_t i;

	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		if (strcmp(ctl_str(row, "status"), "ok") != 0) {
			return 1;
		}
	}
	return 0;
}

static int
any_pending(const json_t *result)
{
	const json_t *row;
	size_t i;

	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		if (strcmp(ctl_str(row, "status"), "pending") == 0) {
			return 1;
		}
	}
	return 0;
}

static void
print_notice_days(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("provision notices sent to the prefectures\n");
	printf("%-10s  %-20s  %-8s  %8s  %8s  %6s  %s\n", "DAY", "PREFECTURE", "STATUS", "SENT",
	       "RECORDED", "RESENT", "CHECKED");
	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		printf("%-10s  %-20s  %-8s  %8lld  %8lld  %6lld  %s\n", ctl_str(row, "day"),
		       ctl_str(row, "dest"), ctl_str(row, "status"), ctl_int(row, "sent"),
		       ctl_int(row, "received"), ctl_int(row, "resent"), ctl_str(row, "checked"));
	}
}

/* As "reconcile": ask, wait for the answers within the timeout, exit 1 on a difference. */
static int
cmd_notices_reconcile(struct ctl *ctl, const struct ctl_req *req)
{
	int check = ctl_val(req, "no-check") == NULL;
	int64_t deadline = juki_clock_mono_ms() + ctl->timeout_ms;
	json_t *result = NULL, *args = json_deep_copy(req->args);
	int rc;

	json_object_set_new(args, "check", json_boolean(check));
	rc = ctl_call(ctl, "notices.reconcile", args, &result);
	while (rc == CTL_OK && check && any_pending(result) && juki_clock_mono_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};

		nanosleep(&ts, NULL);
		json_decref(result);
		result = NULL;
		args = json_deep_copy(req->args);
		json_object_set_new(args, "check", json_false());
		rc = ctl_call(ctl, "notices.reconcile", args, &result);
	}
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			print_notice_days(result);
		}
		rc = any_differs(result) ? CTL_FAILED : CTL_OK;
	}
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_disclosure_cmds[] = {
    {"disclosure", cmd_disclosure, NULL,
     "every provision and use of a person's identity information recorded at a prefectural "
     "server, oldest first (開示, 第6-8(5)ア); --pdf writes the printed answer to a new file",
     .opts = {CTL_ARG_ROW("CODE", "code"), CTL_OPT_ROW("pdf", CTL_FILE, NULL, "FILE")}},
    {"notices send", ctl_run, "notices.send",
     .help = "at the national server: send the provision records not yet notified to each "
	     "person's prefecture now (第6-8(5)イ)"},
    {"notices reconcile", cmd_notices_reconcile, NULL,
     "at the national server: compare the provision notices sent with what each prefecture "
     "holds, per day; wait for the answers; exit 1 when a day differs",
     .opts = {CTL_OPT_ROW("date", CTL_DATE, "date", "YYYY-MM-DD"), CTL_FLAG_ROW("no-check", NULL)}},
    {.name = NULL},
};
