#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/store/audit.h"

#define DEFAULT_SHOW_LIMIT 100

/* "--json" is also taken after the command, where scripts put it. */
#define JSON_OPTION                                                                                \
	{                                                                                          \
		"json", no_argument, NULL, 'j'                                                     \
	}

static int
two_digits(const char *s, int max)
{
	int v;

	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
		return -1;
	}
	v = (s[0] - '0') * 10 + (s[1] - '0');
	return v <= max ? v : -1;
}

/* HH:MM or HH:MM:SS after the date; anything else is refused. */
static int
parse_clock(const char *s, int64_t *ms)
{
	int h = two_digits(s, 23), m = -1, sec = 0;

	if (h >= 0 && s[2] == ':') {
		m = two_digits(s + 3, 59);
	}
	if (m < 0) {
		return -1;
	}
	if (s[5] == ':') {
		sec = two_digits(s + 6, 59);
		if (sec < 0 || s[8] != '\0') {
			return -1;
		}
	} else if (s[5] != '\0') {
		return -1;
	}
	*ms = ((int64_t)h * 3600 + m * 60 + sec) * 1000;
	return 0;
}

/*
 * --since: a day or a time of day in Japan (the clerk's clock), or a
 * duration meaning that long before now.
 */
static int
parse_since(const char *text, int64_t *ms)
{
	char day[11];
	int64_t base, tod = 0, ago;

	if (strlen(text) >= 10 && (text[10] == '\0' || text[10] == 'T')) {
		memcpy(day, text, 10);
		day[10] = '\0';
		if (!juki_date_valid(day) || juki_clock_parse_day(day, &base) != 0) {
			return -1;
		}
		if (text[10] == 'T' && parse_clock(text + 11, &tod) != 0) {
			return -1;
		}
		*ms = juki_clock_midnight(base) + tod;
		return 0;
	}
	if (juki_conf_parse_duration(text, &ago) != 0 || ago < 0) {
		return -1;
	}
	*ms = juki_clock_now_ms(NULL) - ago;
	return 0;
}

/* "2026-11-25T10:02:03+09:00" from the RFC 3339 UTC time the daemon gives. */
static const char *
jst_time(const char *utc, char *buf, size_t len)
{
	int64_t ms;
	time_t secs;
	struct tm tm;

	if (utc == NULL || juki_clock_parse(utc, &ms) != 0) {
		return utc != NULL ? utc : "-";
	}
	ms += JUKI_JST_OFFSET_MS;
	secs = (time_t)(ms / 1000 - (ms % 1000 < 0));
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%S+09:00", &tm) == 0) {
		return utc;
	}
	return buf;
}

static const char *
text_of(const json_t *entry, const char *key)
{
	const char *s = json_string_value(json_object_get(entry, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

static void
print_entries(const json_t *result)
{
	const json_t *entries = json_object_get(result, "entries");
	const json_t *e;
	char when[40];
	size_t i;

	json_array_foreach(entries, i, e)
	{
		printf("%lld %s %s %s %s %s %s\n",
		       (long long)json_integer_value(json_object_get(e, "seq")),
		       jst_time(json_string_value(json_object_get(e, "time")), when, sizeof(when)),
		       text_of(e, "operator"), text_of(e, "action"), text_of(e, "target"),
		       text_of(e, "outcome"), text_of(e, "detail"));
	}
	if (json_is_true(json_object_get(result, "more"))) {
		fprintf(stderr, "juki-ctl: more entries follow: narrow with --since, or raise "
				"--limit\n");
	}
	fflush(stdout);
}

static int
cmd_audit_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"operator", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    JSON_OPTION,
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("audit show");
	const char *op = NULL;
	int64_t since = 0;
	long long limit = DEFAULT_SHOW_LIMIT;
	json_t *args, *result = NULL;
	char *end;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			op = optarg;
			break;
		case 's':
			if (parse_since(optarg, &since) != 0) {
				fprintf(stderr,
					"juki-ctl: --since: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] "
					"(Japan time), or a duration like 2h, 30m, 7d\n");
				return CTL_USAGE;
			}
			break;
		case 'l':
			limit = strtoll(optarg, &end, 10);
			if (*end != '\0' || end == optarg || limit < 1 || limit > 100000) {
				fprintf(stderr, "juki-ctl: --limit: a number from 1 to 100000\n");
				return CTL_USAGE;
			}
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			return ctl_usage(self);
		}
	}
	if (optind != argc) {
		return ctl_usage(self);
	}
	args = json_pack("{s:I,s:I}", "since_ms", (json_int_t)since, "limit", (json_int_t)limit);
	if (args != NULL && op != NULL && json_object_set_new(args, "operator", json_string(op))) {
		json_decref(args);
		args = NULL;
	}
	if (args == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
		return CTL_FAILED;
	}
	rc = ctl_call(ctl, "audit.show", args, &result);
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			print_entries(result);
		}
	}
	json_decref(result);
	return rc;
}

/* The report in words; exit 0 for an intact history, 1 for a broken one. */
static int
print_report(const struct ctl *ctl, const json_t *report)
{
	int ok = json_is_true(json_object_get(report, "ok"));
	json_int_t tail = json_integer_value(json_object_get(report, "unsigned_tail"));

	if (ctl->json) {
		ctl_print(ctl, report);
		if (!ok) {
			/* Scripts read stdout; a person running one still sees why it failed. */
			fprintf(
			    stderr, "juki-ctl: audit: broken at entry %lld (%s)\n",
			    (long long)json_integer_value(json_object_get(report, "first_broken")),
			    json_string_value(json_object_get(report, "reason"))
				? json_string_value(json_object_get(report, "reason"))
				: "?");
		}
	} else if (ok) {
		printf("audit: ok: %lld entries, %lld checkpoints, signed through entry %lld\n",
		       (long long)json_integer_value(json_object_get(report, "entries")),
		       (long long)json_integer_value(json_object_get(report, "checkpoints")),
		       (long long)json_integer_value(json_object_get(report, "signed_through")));
		if (tail > 0) {
			printf("audit: the last %lld entries are not signed yet (after the last "
			       "checkpoint: a cut there would not show)\n",
			       (long long)tail);
		}
	} else {
		const char *reason = json_string_value(json_object_get(report, "reason"));

		printf("audit: broken at entry %lld (%s)\n",
		       (long long)json_integer_value(json_object_get(report, "first_broken")),
		       reason != NULL ? reason : "?");
	}
	fflush(stdout);
	return ok ? CTL_OK : CTL_FAILED;
}

static int
cmd_audit_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"cert", required_argument, NULL, 'c'},
	    JSON_OPTION,
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("audit verify");
	const char *file = NULL, *cert = NULL;
	json_t *report = NULL;
	char err[512];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			return ctl_usage(self);
		}
	}
	if (optind != argc || (file == NULL) != (cert == NULL)) {
		return ctl_usage(self);
	}
	if (file != NULL) {
		rc = juki_audit_verify_file(file, cert, &report, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "juki-ctl: audit verify: %s\n", err);
			return CTL_FAILED;
		}
	} else {
		if (ctl->socket == NULL && ctl->term.connect == NULL) {
			fprintf(
			    stderr,
			    "juki-ctl: audit verify needs a daemon (-s PATH, $JUKI_CTL_SOCKET or "
			    "a terminal), or --file and --cert\n");
			return CTL_USAGE;
		}
		rc = ctl_call(ctl, "audit.verify", json_object(), &report);
		if (rc != CTL_OK) {
			json_decref(report);
			return rc;
		}
	}
	rc = print_report(ctl, report);
	json_decref(report);
	return rc;
}

const struct ctl_cmd ctl_audit_cmds[] = {
    {"audit show", cmd_audit_show, "[--operator URN] [--since T] [--limit N] [--json]",
     "the operation history, oldest first; T is YYYY-MM-DD[THH:MM[:SS]] in Japan time or a "
     "duration like 2h (that long ago); at most N entries (default 100)",
     1},
    {"audit verify", cmd_audit_verify, "[--file PATH --cert PEM] [--json]",
     "check the operation history's hash chain and signed checkpoints, in the daemon or in "
     "the file PATH against the node's certificate; exit 1 when it is broken",
     0},
    {NULL, NULL, NULL, NULL, 0},
};
