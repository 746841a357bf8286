/*
 * 本人確認情報 beyond the CS: the update counts compared with the receiver,
 * the records of a prefectural or national server, 転出確定通知.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "juki/base/clock.h"

/* Whether any day of the result is in status (or, with not set, in another). */
static int
any_day(const json_t *result, const char *status, int not )
{
	const json_t *row;
	size_t i;

	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		if ((strcmp(ctl_str(row, "status"), status) != 0) == not ) {
			return 1;
		}
	}
	return 0;
}

static void
print_days(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("update counts sent to %s\n", ctl_str(result, "dest"));
	printf("%-10s  %-8s  %10s  %10s  %6s  %-19s  %s\n", "DAY", "STATUS", "SENT", "RECORDED",
	       "RESENT", "CHECKED", "LAST RE-SEND");
	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		const json_t *last = json_object_get(row, "last_resend");
		char what[64] = "-";

		if (last != NULL) {
			snprintf(what, sizeof(what), "%lld records in %lld ranges, %lld rounds",
				 ctl_int(last, "records"), ctl_int(last, "ranges"),
				 ctl_int(last, "rounds"));
		}
		printf("%-10s  %-8s  %10lld  %10lld  %6lld  %-19s  %s\n", ctl_str(row, "day"),
		       ctl_str(row, "status"), ctl_int(row, "sent"), ctl_int(row, "received"),
		       ctl_int(row, "resent"), ctl_str(row, "checked"), what);
	}
}

/* Whether a day of the comparison across the centres does not agree. */
static int
any_disagree(const json_t *result)
{
	const json_t *row;
	size_t i;

	json_array_foreach(json_object_get(result, "centres"), i, row)
	{
		if (!json_is_true(json_object_get(row, "agree"))) {
			return 1;
		}
	}
	return 0;
}

static void
print_centres(const json_t *result)
{
	const json_t *row, *c;
	size_t i, k;

	printf("update counts sent to the national centres, compared across them\n");
	printf("%-10s  %-5s  %-24s  %-8s  %10s  %10s  %s\n", "DAY", "AGREE", "CENTRE", "STATUS",
	       "SENT", "RECORDED", "DIGEST RECORDED");
	json_array_foreach(json_object_get(result, "centres"), i, row)
	{
		json_array_foreach(json_object_get(row, "centres"), k, c)
		{
			const char *digest = ctl_str(c, "received_digest");

			printf("%-10s  %-5s  %-24s  %-8s  %10lld  %10lld  %.16s\n",
			       k == 0 ? ctl_str(row, "day") : "",
			       k > 0                                         ? ""
			       : json_is_true(json_object_get(row, "agree")) ? "yes"
									     : "NO",
			       ctl_str(c, "dest"), ctl_str(c, "status"), ctl_int(c, "sent"),
			       ctl_int(c, "received"), digest[0] ? digest : "-");
		}
	}
}

static int
cmd_reconcile(struct ctl *ctl, const struct ctl_req *req)
{
	int check = ctl_val(req, "no-check") == NULL;
	int64_t deadline;
	json_t *result = NULL, *args = json_deep_copy(req->args);
	int rc;

	json_object_set_new(args, "check", json_boolean(check));
	rc = ctl_call(ctl, "reconcile", args, &result);
	/* The answers travel behind the records: wait for them, within the timeout. */
	deadline = juki_clock_mono_ms() + ctl->timeout_ms;
	while (rc == CTL_OK && check && any_day(result, "pending", 0) &&
	       juki_clock_mono_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};

		nanosleep(&ts, NULL);
		json_decref(result);
		result = NULL;
		rc = ctl_call(ctl, "reconcile", json_deep_copy(req->args), &result);
	}
	if (rc == CTL_OK) {
		int centres = json_object_get(result, "centres") != NULL;

		if (ctl->json) {
			ctl_print(ctl, result);
		} else if (centres) {
			print_centres(result);
		} else {
			print_days(result);
		}
		/* A difference is a failure a script must see. */
		rc = any_day(result, "ok", 1) || (centres && any_disagree(result)) ? CTL_FAILED
										   : CTL_OK;
	}
	json_decref(result);
	return rc;
}

static void
print_conflicts(const json_t *result)
{
	const json_t *row, *h;
	size_t i, j;

	printf("%lld people current in two municipalities (二重登録)\n", ctl_int(result, "total"));
	printf("%-6s  %-11s  %-24s  %-24s  %s\n", "ID", "CODE", "SINCE", "ALERTED", "HOLDERS");
	json_array_foreach(json_object_get(result, "conflicts"), i, row)
	{
		printf("%-6lld  %-11s  %-24s  %-24s ", ctl_int(row, "id"), ctl_str(row, "code"),
		       ctl_str(row, "since"), ctl_str(row, "alerted"));
		json_array_foreach(json_object_get(row, "holders"), j, h)
		{
			printf(" %s", json_string_value(h));
		}
		printf("\n");
	}
}

static void
print_received(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("update counts received at %s\n", ctl_str(result, "node"));
	printf("%-10s  %-20s  %10s  %s\n", "DAY", "FROM", "RECORDED", "DIGEST");
	json_array_foreach(json_object_get(result, "received"), i, row)
	{
		printf("%-10s  %-20s  %10lld  %s\n", ctl_str(row, "day"), ctl_str(row, "peer"),
		       ctl_int(row, "total"), ctl_str(row, "digest"));
	}
}

const struct ctl_cmd ctl_honnin_cmds[] = {
    {"reconcile", cmd_reconcile, NULL,
     "ask the receiver for its update counts (更新件数リスト) of recent days, or of one, "
     "wait for the answers and print the comparison; exit 1 when a day differs; with "
     "--centres (a prefectural server), compare the national centres with each other",
     .opts = {CTL_OPT_ROW("date", CTL_DATE, "date", "YYYY-MM-DD"), CTL_FLAG_ROW("no-check", NULL),
	      CTL_FLAG_ROW("centres", "centres")}},
    {"received", ctl_run, "received", .text = print_received,
     .help = "the update counts a national server received from each prefecture per day, "
	     "with digests: equal at both national centres when they hold the same records",
     .opts = {CTL_OPT_ROW("date", CTL_DATE, "date", "YYYY-MM-DD")}},
    {"person show", ctl_run, "person.show",
     "a person's identity records at a prefectural or national server, newest first",
     .opts = {CTL_ARG_ROW("CODE", "code")}},
    {"confirmations", ctl_run, "confirmations",
     "転出確定通知 recorded at a prefectural server (total, and the records)",
     .opts = {CTL_OPT_ROW("code", CTL_STRING, "code", "CODE"),
	      CTL_INT_ROW("limit", "limit", 0, LLONG_MAX)}},
    {"conflicts", ctl_run, "conflicts", .text = print_conflicts,
     .help = "people a prefectural or national server holds as current in two "
	     "municipalities (二重登録), oldest first, with the municipalities",
     .opts = {CTL_INT_ROW("limit", "limit", 0, LLONG_MAX)}},
    {"feed show", ctl_run, "feed.show",
     "the link server's feed of 異動等情報 to the certification authority from a seq: seq, "
     "kind, date, when received and acknowledged (no codes), and the feed's counters",
     .opts = {CTL_INT_ROW("from", "from", 0, LLONG_MAX), CTL_INT_ROW("limit", "limit", 1, 10000)}},
    {.name = NULL},
};
