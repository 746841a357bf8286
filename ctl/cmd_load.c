/*
 * juki-ctl load FILE... — the bulk load at juki-csd, juki-prefd and
 * juki-jlisd (docs/control.md §11, docs/operations.md §34): the files'
 * absolute paths go to the daemon, which reads them itself; the load is
 * then followed with load.status until it is done, its progress on stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define LOAD_POLL_MS   50 /* the load's end seen soon: a status call is cheap */
#define LOAD_REPORT_MS 2000

static void
print_load(const json_t *r)
{
	const json_t *e = json_object_get(r, "error");

	if (e != NULL) {
		printf("load %lld refused, nothing loaded\n", ctl_int(r, "job"));
		printf("%s:%lld: %s%s%s (%s)\n", ctl_str(e, "file"), ctl_int(e, "line"),
		       ctl_str(e, "field"), ctl_str(e, "field")[0] ? ": " : "",
		       ctl_str(e, "detail"), ctl_str(e, "reason"));
		return;
	}
	printf("load %lld %s: %lld rows from %zu file(s) in %.1f s (%.0f rows/s)\n",
	       ctl_int(r, "job"), ctl_str(r, "state"), ctl_int(r, "rows"),
	       json_array_size(json_object_get(r, "files")),
	       json_real_value(json_object_get(r, "seconds")),
	       json_real_value(json_object_get(r, "rows_per_s")));
	printf("  current %lld, history %lld, already held %lld\n", ctl_int(r, "current"),
	       ctl_int(r, "history"), ctl_int(r, "duplicates"));
}

static void
progress(const json_t *r)
{
	long long total = ctl_int(r, "bytes_total"), bytes = ctl_int(r, "bytes");

	fprintf(stderr, "juki-ctl: load %lld: %s, %lld rows", ctl_int(r, "job"),
		strcmp(ctl_str(r, "phase"), "indexes") == 0 ? "building indexes" : "reading rows",
		ctl_int(r, "rows"));
	if (total > 0) {
		fprintf(stderr, ", %lld%% of %lld MB", bytes * 100 / total, total / 1000000);
	}
	fprintf(stderr, ", %.0f rows/s\n", json_real_value(json_object_get(r, "rows_per_s")));
}

static int
cmd_load(struct ctl *ctl, const struct ctl_req *req)
{
	json_t *files = json_array(), *args, *r = NULL;
	long long waited = 0, reported = 0;
	int rc;

	for (size_t i = 0; i < req->nmore; i++) {
		const char *file = req->more[i];
		char abs[PATH_MAX];

		if (realpath(file, abs) == NULL) {
			fprintf(stderr, "juki-ctl: load: %s: %s\n", file, strerror(errno));
			json_decref(files);
			return CTL_FAILED;
		}
		json_array_append_new(files, json_string(abs));
	}
	args = json_pack("{s:o,s:b}", "files", files, "merge", ctl_val(req, "merge") != NULL);
	rc = ctl_call(ctl, "load", args, &r);
	while (rc == CTL_OK && strcmp(ctl_str(r, "state"), "running") == 0) {
		long long id = ctl_int(r, "job");

		if (waited - reported >= LOAD_REPORT_MS) {
			progress(r);
			reported = waited;
		}
		json_decref(r);
		r = NULL;
		usleep(LOAD_POLL_MS * 1000);
		waited += LOAD_POLL_MS;
		rc = ctl_call(ctl, "load.status", json_pack("{s:I}", "job", (json_int_t)id), &r);
	}
	if (rc != CTL_OK) {
		return rc;
	}
	if (ctl->json || req->json) {
		ctl_print(ctl, r);
	} else {
		print_load(r);
	}
	rc = strcmp(ctl_str(r, "state"), "done") == 0 ? CTL_OK : CTL_FAILED;
	json_decref(r);
	return rc;
}

const struct ctl_cmd ctl_load_cmds[] = {
    {"load", cmd_load, NULL,
     "bulk load of current records and history from files on the daemon's host (CSV or JSON "
     "Lines as docs/import.md, or the server's export): all or nothing; a store that holds "
     "records needs --merge; progress on stderr; exit 1 when refused",
     .opts = {CTL_FLAG_ROW("merge", NULL),
	      {"FILE", 0, CTL_FILE, CTL_ARG | CTL_MANY, NULL, "FILE", 0, 0, NULL}}},
    {"load status", ctl_run, "load.status",
     "the bulk load under way or the last one: rows, bytes read of the total, the phase",
     .opts = {CTL_INT_ROW("job", "job", 1, 1000000000)}},
    {.name = NULL},
};
