#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ctl.h"
#include "juki/base/clock.h"

/* Raw bytes per upload request: 4 MiB of base64, well inside a control frame. */
#define CHUNK   (3 * 1024 * 1024)
#define POLL_MS 200

/* The job's name in the spool: the time, then the file's name in the spool's alphabet. */
static void
job_name(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	base = base ? base + 1 : path;
	gmtime_r(&now, &tm);
	n = strftime(out, len, "%Y%m%dT%H%M%SZ-", &tm);
	for (const char *p = base; *p != '\0' && n + 1 < len && n < 200; p++) {
		char c = *p;

		out[n++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
			       ? c
			       : '_';
	}
	out[n] = '\0';
}

static int
upload(struct ctl *ctl, const char *path, const char *name)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char *buf = malloc(CHUNK);
	char *b64 = malloc(CHUNK / 3 * 4 + 4);
	long long offset = 0;
	int rc = CTL_OK, last = 0;

	if (f == NULL || buf == NULL || b64 == NULL) {
		fprintf(stderr, "juki-ctl: import: %s: %s\n", path,
			f ? "out of memory" : strerror(errno));
		rc = CTL_FAILED;
		goto out;
	}
	while (!last && rc == CTL_OK) {
		size_t n = fread(buf, 1, CHUNK, f);
		json_t *result = NULL;

		if (ferror(f)) {
			fprintf(stderr, "juki-ctl: import: %s: %s\n", path, strerror(errno));
			rc = CTL_FAILED;
			break;
		}
		last = n < CHUNK;
		EVP_EncodeBlock((unsigned char *)b64, buf, (int)n);
		rc = ctl_call(ctl, "import.put",
			      json_pack("{s:s,s:I,s:s,s:b}", "name", name, "offset",
					(json_int_t)offset, "data", b64, "last", last),
			      &result);
		json_decref(result);
		offset += (long long)n;
	}
out:
	if (f != NULL && f != stdin) {
		fclose(f);
	}
	free(buf);
	free(b64);
	return rc;
}

static void
show_progress(const json_t *st, int tty)
{
	long long total = json_integer_value(json_object_get(st, "bytes_total"));
	long long done = json_integer_value(json_object_get(st, "bytes_read"));

	fprintf(stderr, "%simport: %s: %s %lld rows, %lld%%, %lld errors%s", tty ? "\r" : "",
		json_string_value(json_object_get(st, "job")),
		json_string_value(json_object_get(st, "state")),
		(long long)json_integer_value(json_object_get(st, "rows")),
		total > 0 ? done * 100 / total : 0,
		(long long)json_integer_value(json_object_get(st, "errors")), tty ? "  " : "\n");
	fflush(stderr);
}

static void
print_outcome(const json_t *st)
{
	const json_t *receipt = json_object_get(st, "receipt");
	const json_t *report = json_object_get(st, "report");
	const char *key;
	const json_t *v, *e;
	size_t i;

	if (receipt != NULL) {
		printf("accepted %s: %lld rows, %lld changes recorded\n",
		       json_string_value(json_object_get(st, "job")),
		       (long long)json_integer_value(json_object_get(receipt, "rows")),
		       (long long)json_integer_value(json_object_get(receipt, "changes")));
		json_object_foreach((json_t *)json_object_get(receipt, "by_reason"), key, v)
		{
			printf("  %-16s %lld\n", key, (long long)json_integer_value(v));
		}
		printf("  sha256 %s\n", json_string_value(json_object_get(receipt, "sha256")));
		return;
	}
	printf("rejected %s: %lld errors, nothing recorded\n",
	       json_string_value(json_object_get(st, "job")),
	       (long long)json_integer_value(json_object_get(report, "error_count")));
	if (json_object_get(report, "aborted") != NULL) {
		printf("  aborted: %s\n", json_string_value(json_object_get(report, "aborted")));
	}
	json_array_foreach(json_object_get(report, "errors"), i, e)
	{
		printf("  line %lld: %s: %s (%s)\n",
		       (long long)json_integer_value(json_object_get(e, "line")),
		       json_string_value(json_object_get(e, "field")),
		       json_string_value(json_object_get(e, "reason")),
		       json_string_value(json_object_get(e, "detail")));
	}
}

static int
cmd_import(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"no-wait", no_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("import");
	char name[256];
	int ch, wait = 1, rc, tty = isatty(2);
	json_t *st = NULL;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'n') {
			return ctl_usage(self);
		}
		wait = 0;
	}
	if (optind + 1 != argc) {
		return ctl_usage(self);
	}
	job_name(argv[optind], name, sizeof(name));
	if ((rc = upload(ctl, argv[optind], name)) != CTL_OK) {
		return rc;
	}
	if (!wait) {
		st = json_pack("{s:s,s:s}", "job", name, "state", "queued");
		ctl_print(ctl, st);
		json_decref(st);
		return CTL_OK;
	}
	/* Follow the job: other files may be ahead of it in the spool. */
	for (;;) {
		const char *state;
		struct timespec ts = {0, POLL_MS * 1000000L};

		json_decref(st);
		st = NULL;
		rc = ctl_call(ctl, "import.status", json_pack("{s:s}", "job", name), &st);
		if (rc != CTL_OK) {
			return rc;
		}
		state = json_string_value(json_object_get(st, "state"));
		if (strcmp(state, "accepted") == 0 || strcmp(state, "rejected") == 0) {
			break;
		}
		if (!ctl->json && strcmp(state, "validating") == 0) {
			show_progress(st, tty);
		}
		nanosleep(&ts, NULL);
	}
	if (!ctl->json && tty) {
		fputc('\n', stderr);
	}
	if (ctl->json) {
		ctl_print(ctl, st);
	} else {
		print_outcome(st);
	}
	rc = strcmp(json_string_value(json_object_get(st, "state")), "accepted") == 0 ? CTL_OK
										      : CTL_FAILED;
	json_decref(st);
	return rc;
}

static int
cmd_import_status(struct ctl *ctl, int argc, char **argv)
{
	json_t *result = NULL;
	int rc;

	if (argc > 2) {
		return ctl_usage(ctl_find("import status"));
	}
	rc = ctl_call(ctl, "import.status", argc == 2 ? json_pack("{s:s}", "job", argv[1]) : NULL,
		      &result);
	if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_import_cmds[] = {
    {"import status", cmd_import_status, "[JOB]",
     "the state of an import job (or of every recent one), with its receipt or report", 1},
    {"import", cmd_import, "[--no-wait] FILE|-",
     "send a file of identity changes (CSV or JSON Lines, docs/import.md) to the CS's import "
     "spool, follow its validation, and print the receipt or the report; exit 1 when it is "
     "refused",
     1},
    {NULL, NULL, NULL, NULL, 0},
};
