/*
 * The operating calendar (第6-1): the days, the loaded list of holidays,
 * overrides, and whether a job runs today (node/opcal.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/calendar.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"

static void
print_days(const json_t *r)
{
	const json_t *day, *list = json_object_get(r, "list");
	size_t i;

	printf("today %s: %s (%s); hours %s, the operating day began %s\n", ctl_str(r, "today"),
	       json_is_true(json_object_get(r, "open_today")) ? "operating day" : "closed",
	       ctl_str(r, "why_today"), ctl_str(r, "hours"), ctl_str(r, "operating_day_began"));
	if (json_is_object(list)) {
		printf("loaded list: %lld days %s..%s from %s, loaded %s\n", ctl_int(list, "days"),
		       ctl_str(list, "first"), ctl_str(list, "last"), ctl_str(list, "source"),
		       ctl_str(list, "loaded"));
	} else {
		printf("loaded list: none (holidays by the law's rules only)\n");
	}
	json_array_foreach(json_object_get(r, "days"), i, day)
	{
		printf("%s %s %-6s %s\n", ctl_str(day, "date"), ctl_str(day, "weekday"),
		       json_is_true(json_object_get(day, "open")) ? "open" : "closed",
		       ctl_str(day, "why"));
	}
}

static int
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
	}
	return 1;
}

static int
cmd_calendar(struct ctl *ctl, const struct ctl_req *req)
{
	const char *month = ctl_val(req, "month"), *year = ctl_val(req, "year");
	char from[32], to[32];
	json_t *args = json_object();

	if (month != NULL && year != NULL) {
		fprintf(stderr, "juki-ctl: calendar: --month or --year, not both\n");
		json_decref(args);
		return ctl_usage(req->cmd);
	}
	if (month != NULL) {
		int y, m;

		if (strlen(month) != 7 || !digits(month, 4) || month[4] != '-' ||
		    !digits(month + 5, 2) || (y = atoi(month)) < 1900 || y > 2099 ||
		    (m = atoi(month + 5)) < 1 || m > 12) {
			fprintf(stderr, "juki-ctl: calendar: --month YYYY-MM (1900..2099)\n");
			json_decref(args);
			return ctl_usage(req->cmd);
		}
		snprintf(from, sizeof(from), "%04d-%02d-01", y, m);
		snprintf(to, sizeof(to), "%04d-%02d-%02d", y, m, juki_clock_days_in_month(y, m));
		json_object_set_new(args, "from", json_string(from));
		json_object_set_new(args, "to", json_string(to));
	} else if (year != NULL) {
		size_t n = strlen(year);
		int y, y2;

		/* YYYY, or YYYY..YYYY (with --holidays: the daemon bounds a range of days). */
		if ((n != 4 && n != 10) || !digits(year, 4) || (y = atoi(year)) < 1900 ||
		    y > 2099 ||
		    (n == 10 && (strncmp(year + 4, "..", 2) != 0 || !digits(year + 6, 4))) ||
		    (y2 = n == 10 ? atoi(year + 6) : y) < y || y2 > 2099) {
			fprintf(stderr, "juki-ctl: calendar: --year YYYY or YYYY..YYYY "
					"(1900..2099)\n");
			json_decref(args);
			return ctl_usage(req->cmd);
		}
		snprintf(from, sizeof(from), "%04d-01-01", y);
		snprintf(to, sizeof(to), "%04d-12-31", y2);
		json_object_set_new(args, "from", json_string(from));
		json_object_set_new(args, "to", json_string(to));
	}
	if (ctl_val(req, "holidays") != NULL) {
		json_object_set_new(args, "holidays", json_true());
	}
	return ctl_send(ctl, "calendar", print_days, args);
}

static int
add_day(void *ctx, int64_t day, const char *name)
{
	json_t *days = ctx;
	int64_t y;
	int m, d;
	char date[16];

	juki_clock_civil_from_days(day, &y, &m, &d);
	snprintf(date, sizeof(date), "%04lld-%02d-%02d", (long long)y, m, d);
	return json_array_append_new(days, json_pack("{s:s,s:s}", "date", date, "name", name)) == 0
		   ? 0
		   : JUKI_ENOMEM;
}

static int
cmd_calendar_load(struct ctl *ctl, const struct ctl_req *req)
{
	const char *path = ctl_val(req, "FILE"), *base;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf, err[256];
	size_t len, line = 0;
	json_t *days, *result = NULL;
	int rc;

	if (f == NULL) {
		fprintf(stderr, "juki-ctl: calendar load: %s: %s\n", path, strerror(errno));
		return CTL_FAILED;
	}
	buf = malloc(JUKI_CALENDAR_LIST_MAX + 1);
	len = buf != NULL ? fread(buf, 1, JUKI_CALENDAR_LIST_MAX + 1, f) : 0;
	if (f != stdin) {
		fclose(f);
	}
	if (buf == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
		return CTL_FAILED;
	}
	days = json_array();
	rc = juki_calendar_parse_list(buf, len, add_day, days, &line, err, sizeof(err));
	free(buf);
	if (rc != 0) {
		json_decref(days);
		if (line > 0) {
			fprintf(stderr, "juki-ctl: calendar load: %s:%zu: %s (nothing loaded)\n",
				path, line, err);
		} else {
			fprintf(stderr, "juki-ctl: calendar load: %s: %s (nothing loaded)\n", path,
				err);
		}
		if (ctl->json) {
			ctl_print_new(ctl, json_pack("{s:s,s:I,s:s}", "error", "invalid", "line",
						     (json_int_t)line, "message", err));
		}
		return CTL_FAILED;
	}
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	rc = ctl_call(ctl, "calendar-load", json_pack("{s:o,s:s}", "days", days, "source", base),
		      &result);
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			printf("loaded %lld days %s..%s from %s (replacing %lld)\n",
			       ctl_int(result, "days"), ctl_str(result, "first"),
			       ctl_str(result, "last"), ctl_str(result, "source"),
			       ctl_int(result, "replaced"));
		}
	}
	json_decref(result);
	return rc;
}

static void
print_set(const json_t *r)
{
	printf("%s: %s (%s)\n", ctl_str(r, "date"),
	       json_is_true(json_object_get(r, "open")) ? "operating day" : "closed",
	       ctl_str(r, "why"));
}

static int
cmd_calendar_check(struct ctl *ctl, const struct ctl_req *req)
{
	json_t *result = NULL;
	int rc = ctl_call(ctl, "calendar-check", json_incref(req->args), &result);

	if (rc != CTL_OK) {
		return rc;
	}
	if (ctl->json) {
		ctl_print(ctl, result);
	} else {
		const char *job = json_string_value(json_object_get(result, "job"));

		printf("%s %s on %s (%s)\n", job != NULL ? job : "the counters",
		       json_is_true(json_object_get(result, "runs"))
			   ? (job != NULL ? "runs" : "are open")
			   : (job != NULL ? "does not run" : "are closed"),
		       ctl_str(result, "date"), ctl_str(result, "why"));
	}
	rc = json_is_true(json_object_get(result, "runs")) ? CTL_OK : CTL_FAILED;
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_calendar_cmds[] = {
    {"calendar load", cmd_calendar_load, NULL,
     "replace the loaded list of holidays with FILE, the Cabinet Office's syukujitsu.csv "
     "(Shift_JIS or UTF-8, \"YYYY/M/D,名称\" lines): all or nothing",
     .opts = {CTL_ARG_ROW("FILE", NULL)}},
    {"calendar set", ctl_run, "calendar-set", .text = print_set,
     .help = "make DATE an operating day (open) or a closed day whatever the rules say, or "
	     "clear its override",
     .opts = {{"DATE", 0, CTL_DATE, CTL_ARG, "date", "DATE", 0, 0, NULL},
	      CTL_ARG_ROW("open|closed|clear", "state"),
	      CTL_OPT_ROW("reason", CTL_STRING, "reason", "TEXT")}},
    {"calendar check", cmd_calendar_check, NULL,
     "exit 0 when JOB runs today (a daily job on operating days, an immediate one always), "
     "or without JOB when the counters are open now; 1 when not (for ExecCondition= and cron)",
     .opts = {{"JOB", 0, CTL_STRING, CTL_ARG | CTL_OPTIONAL, "job", "JOB", 0, 0, NULL}}},
    {"calendar", cmd_calendar, NULL,
     "the operating days of this month, --month YYYY-MM or --year YYYY[..YYYY]: holidays (by "
     "the law or the loaded list), closures and overrides; --holidays: only the holidays",
     .opts = {CTL_OPT_ROW("month", CTL_STRING, NULL, "YYYY-MM"),
	      CTL_OPT_ROW("year", CTL_STRING, NULL, "YYYY[..YYYY]"),
	      CTL_FLAG_ROW("holidays", NULL)}},
    {.name = NULL},
};
