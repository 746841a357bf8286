#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/node/witness.h"
#include "juki/store/audit.h"

#define DEFAULT_SHOW_LIMIT 100
/*
 * How often, and how long at most, juki-ctl asks the daemon for a
 * verification's report: after 0.1 s, then twice as long each time up to
 * 2 s (each question is a request, recorded in the history like any).
 */
#define VERIFY_POLL_MS     100
#define VERIFY_POLL_MAX_MS 2000
#define VERIFY_WAIT_MS     (6LL * 3600 * 1000)

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

static void
print_entries(const json_t *result)
{
	const json_t *e;
	char when[40];
	size_t i;

	json_array_foreach(json_object_get(result, "entries"), i, e)
	{
		printf("%lld %s %s %s %s %s %s\n", ctl_int(e, "seq"),
		       jst_time(json_string_value(json_object_get(e, "time")), when, sizeof(when)),
		       ctl_str(e, "operator"), ctl_str(e, "action"), ctl_str(e, "target"),
		       ctl_str(e, "outcome"), ctl_str(e, "detail"));
	}
	if (json_is_true(json_object_get(result, "more"))) {
		fprintf(stderr, "juki-ctl: more entries follow: narrow with --since, or raise "
				"--limit\n");
	}
}

static int
cmd_audit_show(struct ctl *ctl, const struct ctl_req *req)
{
	const char *since_text = ctl_val(req, "since");
	int64_t since = 0;
	json_t *args;

	if (since_text != NULL && parse_since(since_text, &since) != 0) {
		fprintf(stderr,
			"juki-ctl: audit show: --since: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] "
			"(Japan time), or a duration like 2h, 30m, 7d\n");
		return ctl_usage(req->cmd);
	}
	args = json_deep_copy(req->args);
	json_object_set_new(args, "since_ms", json_integer(since));
	if (json_object_get(args, "limit") == NULL) {
		json_object_set_new(args, "limit", json_integer(DEFAULT_SHOW_LIMIT));
	}
	return ctl_send(ctl, req->cmd->call, req->cmd->text, args);
}

/* The report in words; exit 0 for an intact history, 1 for a broken one. */
static int
print_report(const struct ctl *ctl, const json_t *report)
{
	int ok = json_is_true(json_object_get(report, "ok"));
	long long tail = ctl_int(report, "unsigned_tail");
	const json_t *w;
	char broken[128];

	snprintf(broken, sizeof(broken), "audit: broken at entry %lld (%s)\n",
		 ctl_int(report, "first_broken"), ctl_str(report, "reason"));
	if (ctl->json) {
		ctl_print(ctl, report);
		if (!ok) {
			/* Scripts read stdout; a person running one still sees why it failed. */
			fprintf(stderr, "juki-ctl: %s", broken);
		}
	} else if (ok) {
		printf("audit: ok: %lld entries, %lld checkpoints, signed through entry %lld\n",
		       ctl_int(report, "entries"), ctl_int(report, "checkpoints"),
		       ctl_int(report, "signed_through"));
		if (tail > 0) {
			printf("audit: the last %lld entries are not signed yet (after the last "
			       "checkpoint: a cut there would not show)\n",
			       tail);
		}
	} else {
		fputs(broken, stdout);
		if (json_is_string(json_object_get(report, "found"))) {
			printf("audit: %s\n", ctl_str(report, "found"));
		}
		if (json_is_integer(json_object_get(report, "recorded")) &&
		    strcmp(ctl_str(report, "reason"), "missing") == 0) {
			printf("audit: the node recorded %lld entries; the file holds %lld\n",
			       ctl_int(report, "recorded"), ctl_int(report, "entries"));
		}
	}
	if (!ctl->json && (w = json_object_get(report, "witness")) != NULL) {
		if (json_is_true(json_object_get(w, "ok"))) {
			printf("audit: witnessed: %lld checkpoints through entry %lld, all on the "
			       "file's chain\n",
			       ctl_int(w, "checkpoints"), ctl_int(w, "through"));
		} else {
			printf("audit: witnessed checkpoint at entry %lld is not on the file (%s): "
			       "the file ends at entry %lld, the witness holds entry %lld\n",
			       ctl_int(w, "first_bad"), ctl_str(w, "reason"), ctl_int(w, "entries"),
			       ctl_int(w, "through"));
		}
	}
	fflush(stdout);
	return ok ? CTL_OK : CTL_FAILED;
}

/*
 * The daemon verifies in the background: it answers with a job, asked
 * again until the report is there (docs/control.md §5).
 */
static int
verify_in_daemon(struct ctl *ctl, json_t **report)
{
	json_t *job = NULL;
	long long id, step_ms = VERIFY_POLL_MS;
	int rc;

	rc = ctl_call(ctl, "audit.verify", json_object(), &job);
	for (long long waited = 0; rc == CTL_OK; waited += step_ms) {
		if (strcmp(ctl_str(job, "state"), "running") != 0) {
			*report = job;
			json_object_del(job, "job");
			json_object_del(job, "state");
			return CTL_OK;
		}
		if (waited >= VERIFY_WAIT_MS) {
			fprintf(stderr, "juki-ctl: audit verify: still running after %lld hours\n",
				VERIFY_WAIT_MS / 3600000);
			rc = CTL_FAILED;
			break;
		}
		id = ctl_int(job, "job");
		json_decref(job);
		job = NULL;
		if (waited > 0 && step_ms < VERIFY_POLL_MAX_MS) {
			step_ms =
			    step_ms * 2 < VERIFY_POLL_MAX_MS ? step_ms * 2 : VERIFY_POLL_MAX_MS;
		}
		usleep((useconds_t)step_ms * 1000);
		rc = ctl_call(ctl, "audit.verify", json_pack("{s:I}", "job", (json_int_t)id), &job);
	}
	json_decref(job);
	return rc;
}

/*
 * The file against what a witness holds (W.json from juki-ctl witness show
 * --node URN --json): every checkpoint it accepted must be on the file's
 * chain.  Added to report as "witness"; a failure there fails the whole.
 */
static int
check_witness(const char *file, const char *path, json_t *report, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *exp =
	    strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(path, 0, &jerr);
	json_t *w = NULL;
	struct juki_audit_cp *cps = NULL;
	size_t n = 0;
	int rc;

	if (exp == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return JUKI_EINVAL;
	}
	rc = juki_witness_export_cps(exp, &cps, &n, err, errlen);
	json_decref(exp);
	if (rc == 0) {
		rc = juki_audit_verify_witnessed(file, cps, n, &w, err, errlen);
	}
	free(cps);
	if (rc != 0) {
		return rc;
	}
	if (json_is_true(json_object_get(report, "ok")) &&
	    !json_is_true(json_object_get(w, "ok"))) {
		char reason[48];

		snprintf(reason, sizeof(reason), "witness-%s", ctl_str(w, "reason"));
		json_object_set_new(report, "ok", json_false());
		json_object_set(report, "first_broken", json_object_get(w, "first_bad"));
		json_object_set_new(report, "reason", json_string(reason));
	}
	json_object_set_new(report, "witness", w);
	return 0;
}

static int
cmd_audit_verify(struct ctl *ctl, const struct ctl_req *req)
{
	const char *file = ctl_val(req, "file"), *cert = ctl_val(req, "cert");
	const char *store = ctl_val(req, "store"), *witness = ctl_val(req, "witness");
	struct juki_audit_head head;
	json_t *report = NULL;
	char err[512];
	int rc;

	if ((file == NULL) != (cert == NULL) ||
	    ((store != NULL || witness != NULL) && file == NULL)) {
		fprintf(stderr, "juki-ctl: audit verify: --file and --cert go together, --store "
				"and --witness with them\n");
		return ctl_usage(req->cmd);
	}
	if (file != NULL) {
		if (store != NULL &&
		    (rc = juki_audit_head_read(store, &head, err, sizeof(err))) != 0) {
			fprintf(stderr, "juki-ctl: audit verify: %s\n", err);
			return CTL_FAILED;
		}
		rc = juki_audit_verify_file_head(file, cert, store != NULL ? &head : NULL, &report,
						 err, sizeof(err));
		if (rc == 0 && witness != NULL) {
			rc = check_witness(file, witness, report, err, sizeof(err));
		}
		if (rc != 0) {
			json_decref(report);
			fprintf(stderr, "juki-ctl: audit verify: %s\n", err);
			if (ctl->json) {
				/* What a script reads on stdout when the check could not run. */
				json_t *out = json_pack("{s:b,s:s}", "ok", 0, "error", err);

				ctl_print(ctl, out);
				json_decref(out);
			}
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
		rc = verify_in_daemon(ctl, &report);
		if (rc != CTL_OK) {
			return rc;
		}
	}
	rc = print_report(ctl, report);
	json_decref(report);
	return rc;
}

const struct ctl_cmd ctl_audit_cmds[] = {
    {"audit show", cmd_audit_show, "audit.show", .text = print_entries,
     .help = "the operation history, oldest first; T is YYYY-MM-DD[THH:MM[:SS]] in Japan time "
	     "or a duration like 2h (that long ago); at most N entries (default 100)",
     .opts = {CTL_OPT_ROW("operator", CTL_STRING, "operator", "URN"),
	      CTL_OPT_ROW("since", CTL_STRING, NULL, "T"),
	      CTL_INT_ROW("limit", "limit", 1, 100000)}},
    {"audit verify", cmd_audit_verify, NULL,
     "check the operation history's hash chain and signed checkpoints, in the daemon "
     "or in the file PATH against the node's certificate, and against the checkpoints a "
     "witness holds (W.json: juki-ctl witness show --node URN --json); exit 1 when it is "
     "broken",
     .synopsis = "[--file PATH --cert PEM [--store STORE] [--witness W.json]]",
     .opts = {CTL_OPT_ROW("file", CTL_FILE, NULL, "PATH"),
	      CTL_OPT_ROW("cert", CTL_FILE, NULL, "PEM"),
	      CTL_OPT_ROW("store", CTL_FILE, NULL, "STORE"),
	      CTL_OPT_ROW("witness", CTL_FILE, NULL, "W.json")},
     .offline = 1},
    {"audit adopt", ctl_run, "audit.adopt",
     .help = "after the alert audit-missing or audit-rollback: take the history file as it is "
	     "now and go on from it (administrator); the first entry after it says what was "
	     "found"},
    {.name = NULL},
};
