#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"

/* Rows still waiting for the receiver's answer. */
static int
pending(const json_t *result)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		if (strcmp(json_string_value(json_object_get(row, "status")), "pending") == 0) {
			return 1;
		}
	}
	return 0;
}

static void
print_table(const json_t *result)
{
	size_t i;
	json_t *row;

	printf("update counts sent to %s\n", json_string_value(json_object_get(result, "dest")));
	printf("%-10s  %-8s  %10s  %10s  %6s  %s\n", "DAY", "STATUS", "SENT", "RECORDED", "RESENT",
	       "CHECKED");
	json_array_foreach(json_object_get(result, "days"), i, row)
	{
		const char *checked = json_string_value(json_object_get(row, "checked"));

		printf("%-10s  %-8s  %10lld  %10lld  %6lld  %s\n",
		       json_string_value(json_object_get(row, "day")),
		       json_string_value(json_object_get(row, "status")),
		       (long long)json_integer_value(json_object_get(row, "sent")),
		       (long long)json_integer_value(json_object_get(row, "received")),
		       (long long)json_integer_value(json_object_get(row, "resent")),
		       checked ? checked : "-");
	}
}

static int
cmd_reconcile(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"date", required_argument, NULL, 'd'},
	    {"no-check", no_argument, NULL, 'n'},
	    /* Also after the command, as juki-ctl(1) writes it: "reconcile --date D --json". */
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("reconcile");
	const char *date = NULL;
	int ch, check = 1, rc;
	int64_t deadline;
	json_t *result = NULL;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'd' && juki_date_valid(optarg)) {
			date = optarg;
		} else if (ch == 'n') {
			check = 0;
		} else if (ch == 'j') {
			ctl->json = 1;
		} else {
			return ctl_usage(self);
		}
	}
	if (optind != argc) {
		return ctl_usage(self);
	}
	rc = ctl_call(ctl, "reconcile", json_pack("{s:s*,s:b}", "date", date, "check", check),
		      &result);
	/* The answers travel behind the records: wait for them, within the timeout. */
	deadline = juki_clock_mono_ms() + ctl->timeout_ms;
	while (rc == CTL_OK && check && pending(result) && juki_clock_mono_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};

		nanosleep(&ts, NULL);
		json_decref(result);
		result = NULL;
		rc = ctl_call(ctl, "reconcile", json_pack("{s:s*}", "date", date), &result);
	}
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			print_table(result);
		}
		/* A difference is a failure a script must see. */
		{
			size_t i;
			json_t *row;

			json_array_foreach(json_object_get(result, "days"), i, row)
			{
				if (strcmp(json_string_value(json_object_get(row, "status")),
					   "ok") != 0) {
					rc = CTL_FAILED;
				}
			}
		}
	}
	json_decref(result);
	return rc;
}

static int
cmd_person_show(struct ctl *ctl, int argc, char **argv)
{
	json_t *result = NULL;
	int rc;

	if (argc != 2) {
		return ctl_usage(ctl_find("person show"));
	}
	rc = ctl_call(ctl, "person.show", json_pack("{s:s}", "code", argv[1]), &result);
	if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_honnin_cmds[] = {
    {"reconcile", cmd_reconcile, "[--date YYYY-MM-DD] [--no-check] [--json]",
     "ask the receiver for its update counts (更新件数リスト) of recent days, or of one, wait "
     "for the answers and print the comparison; exit 1 when a day differs",
     1},
    {"person show", cmd_person_show, "CODE",
     "a person's identity records at a prefectural or national server, newest first", 1},
    {NULL, NULL, NULL, NULL, 0},
};
