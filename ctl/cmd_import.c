#include <errno.h>
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
	long long total = ctl_int(st, "bytes_total");

	fprintf(stderr, "%simport: %s: %s %lld rows, %lld%%, %lld errors%s", tty ? "\r" : "",
		ctl_str(st, "job"), ctl_str(st, "state"), ctl_int(st, "rows"),
		total > 0 ? ctl_int(st, "bytes_read") * 100 / total : 0, ctl_int(st, "errors"),
		tty ? "  " : "\n");
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
		printf("accepted %s: %lld rows, %lld changes recorded\n", ctl_str(st, "job"),
		       ctl_int(receipt, "rows"), ctl_int(receipt, "changes"));
		json_object_foreach((json_t *)json_object_get(receipt, "by_reason"), key, v)
		{
			printf("  %-16s %lld\n", key, (long long)json_integer_value(v));
		}
		printf("  sha256 %s\n", ctl_str(receipt, "sha256"));
		return;
	}
	printf("rejected %s: %lld errors, nothing recorded\n", ctl_str(st, "job"),
	       ctl_int(report, "error_count"));
	if (json_object_get(report, "aborted") != NULL) {
		printf("  aborted: %s\n", ctl_str(report, "aborted"));
	}
	json_array_foreach(json_object_get(report, "errors"), i, e)
	{
		printf("  line %lld: %s: %s (%s)\n", ctl_int(e, "line"), ctl_str(e, "field"),
		       ctl_str(e, "reason"), ctl_str(e, "detail"));
	}
}

static int
cmd_import(struct ctl *ctl, const struct ctl_req *req)
{
	const char *path = ctl_val(req, "FILE|-");
	char name[256];
	int rc, tty = isatty(2);
	json_t *st = NULL;

	job_name(path, name, sizeof(name));
	if ((rc = upload(ctl, path, name)) != CTL_OK) {
		return rc;
	}
	if (ctl_val(req, "no-wait") != NULL) {
		ctl_print_new(ctl, json_pack("{s:s,s:s}", "job", name, "state", "queued"));
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
		state = ctl_str(st, "state");
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
	rc = strcmp(ctl_str(st, "state"), "accepted") == 0 ? CTL_OK : CTL_FAILED;
	json_decref(st);
	return rc;
}

const struct ctl_cmd ctl_import_cmds[] = {
    {"import status", ctl_run, "import.status",
     "the state of an import job (or of every recent one), with its receipt or report",
     .opts = {{"JOB", 0, CTL_STRING, CTL_ARG | CTL_OPTIONAL, "job", "JOB", 0, 0, NULL}}},
    {"import", cmd_import, NULL,
     "send a file of identity changes (CSV or JSON Lines, docs/import.md) to the CS's "
     "import spool, follow its validation, and print the receipt or the report; exit 1 "
     "when it is refused",
     .opts = {CTL_FLAG_ROW("no-wait", NULL),
	      {"FILE|-", 0, CTL_FILE, CTL_ARG, NULL, "FILE|-", 0, 0, NULL}}},
    {.name = NULL},
};
