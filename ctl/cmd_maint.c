#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "juki/base/error.h"
#include "juki/store/backup.h"

/* A purge or a backup of a large store takes a while: wait at least this long for it. */
#define MAINT_TIMEOUT_MS (60LL * 60 * 1000)

static void
bump_timeout(struct ctl *ctl)
{
	if (ctl->timeout_ms < MAINT_TIMEOUT_MS) {
		ctl->timeout_ms = MAINT_TIMEOUT_MS;
	}
}

/* The daemon runs elsewhere in the file system: hand it an absolute path. */
static char *
absolute(const char *path)
{
	char cwd[PATH_MAX], *out = NULL;

	if (path[0] == '/') {
		return strdup(path);
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		fprintf(stderr, "juki-ctl: cannot tell the current directory: %s\n",
			strerror(errno));
		return NULL;
	}
	if (asprintf(&out, "%s/%s", cwd, path) < 0) {
		return NULL;
	}
	return out;
}

static void
print_manifest(const json_t *m)
{
	printf("  node:      %s\n", ctl_str(m, "node"));
	printf("  taken:     %s\n", ctl_str(m, "time"));
	printf("  file:      %s (%lld bytes, %lld pages)\n", ctl_str(m, "file"), ctl_int(m, "size"),
	       ctl_int(m, "page_count"));
	printf("  sha256:    %s\n", ctl_str(m, "sha256"));
	printf("  source:    %s\n", ctl_str(m, "source"));
}

/*
 * The outcome out (released) of a command: printed as JSON with --json
 * (else the caller has said it in words), and err, when the command
 * failed, on stderr.  Returns its exit code.
 */
static int
local_done(const struct ctl *ctl, const char *cmd, json_t *out, const char *err)
{
	if (ctl->json) {
		ctl_print(ctl, out);
	}
	json_decref(out);
	if (err != NULL) {
		fprintf(stderr, "juki-ctl: %s: %s\n", cmd, err);
		return CTL_FAILED;
	}
	return CTL_OK;
}

static int
cmd_backup(struct ctl *ctl, const struct ctl_req *req)
{
	char *dir = absolute(ctl_val(req, "DIR"));
	json_t *result = NULL;
	int rc;

	if (dir == NULL) {
		return CTL_FAILED;
	}
	bump_timeout(ctl);
	rc = ctl_call(ctl, "backup", json_pack("{s:s}", "dir", dir), &result);
	if (rc == CTL_OK && !ctl->json) {
		printf("backup in %s\n", dir);
		print_manifest(result);
	}
	if (rc == CTL_OK) {
		local_done(ctl, "backup", json_incref(result), NULL);
	}
	json_decref(result);
	free(dir);
	return rc;
}

static int
cmd_backup_verify(struct ctl *ctl, const struct ctl_req *req)
{
	const char *dir = ctl_val(req, "DIR");
	json_t *manifest = NULL;
	char err[512];

	if (juki_backup_verify(dir, &manifest, err, sizeof(err)) != 0) {
		return local_done(
		    ctl, "backup verify",
		    json_pack("{s:s,s:b,s:s}", "dir", dir, "verified", 0, "error", err), err);
	}
	if (!ctl->json) {
		printf("verified %s: checksum and integrity check pass\n", dir);
		print_manifest(manifest);
	}
	return local_done(
	    ctl, "backup verify",
	    json_pack("{s:s,s:b,s:o}", "dir", dir, "verified", 1, "manifest", manifest), NULL);
}

static void
print_purge(const json_t *r)
{
	int dry = json_is_true(json_object_get(r, "dry_run"));
	const json_t *rule, *ck = json_object_get(r, "checkpoint");
	size_t i;

	printf("purge at %s%s\n", ctl_str(r, "now"), dry ? " (dry run: nothing removed)" : "");
	printf("  %-24s %-18s %-26s %9s %9s\n", "rule", "table", "due before", "due",
	       dry ? "" : "removed");
	json_array_foreach(json_object_get(r, "rules"), i, rule)
	{
		const json_t *cut = json_object_get(rule, "cutoff");

		printf("  %-24s %-18s %-26s %9lld", ctl_str(rule, "name"), ctl_str(rule, "table"),
		       json_is_string(cut) ? json_string_value(cut) : "never",
		       ctl_int(rule, "due"));
		if (!dry) {
			printf(" %9lld", ctl_int(rule, "removed"));
		}
		printf("\n");
	}
	printf("  %-70s %9lld", "total", ctl_int(r, "due"));
	if (!dry) {
		printf(" %9lld", ctl_int(r, "removed"));
	}
	printf("\n");
	if (json_array_size(json_object_get(r, "files")) > 0) {
		const json_t *f;

		printf("  %-24s %-18s %-26s %9s %9s\n", "files", "kept (days)", "due before", "due",
		       dry ? "" : "erased");
		json_array_foreach(json_object_get(r, "files"), i, f)
		{
			const json_t *cut = json_object_get(f, "cutoff");

			printf("  %-24s %-18lld %-26s %9lld", ctl_str(f, "name"),
			       ctl_int(f, "keep_days"),
			       json_is_string(cut) ? json_string_value(cut) : "never",
			       ctl_int(f, "due"));
			if (!dry) {
				printf(" %9lld", ctl_int(f, "removed"));
			}
			printf("\n");
		}
	}
	if (!dry) {
		printf("checkpoint: %s, WAL %lld bytes\n",
		       json_is_true(json_object_get(ck, "complete")) ? "complete" : "INCOMPLETE",
		       ctl_int(ck, "wal_bytes"));
		printf("verified: %s\n",
		       json_is_true(json_object_get(r, "verified")) ? "yes" : "NO");
	}
}

static int
cmd_purge(struct ctl *ctl, const struct ctl_req *req)
{
	bump_timeout(ctl);
	return ctl_send(ctl, req->cmd->call, req->cmd->text,
			json_pack("{s:b}", "dry_run", ctl_val(req, "dry-run") != NULL));
}

/* A refused restore in the words of the control protocol, as the daemon's refusals print. */
static const char *
restore_error(int rc)
{
	switch (rc) {
	case -EBUSY:
	case JUKI_EEXIST:
	case JUKI_EPERM:
		return "conflict";
	case JUKI_EIO:
	case JUKI_EFORMAT:
		return "invalid";
	case JUKI_ENOENT:
		return "not-found";
	default:
		return "internal";
	}
}

static int
cmd_restore(struct ctl *ctl, const struct ctl_req *req)
{
	const char *store = ctl_val(req, "store"), *dir = ctl_val(req, "DIR");
	json_t *manifest = NULL;
	char err[512], kept[PATH_MAX];
	struct stat sb;
	int had, rc;

	had = lstat(store, &sb) == 0;
	snprintf(kept, sizeof(kept), "%s%s", store, JUKI_BACKUP_BEFORE_RESTORE);
	rc = juki_backup_restore(dir, store, &manifest, err, sizeof(err));
	if (rc != 0) {
		return local_done(
		    ctl, "restore",
		    json_pack("{s:s,s:s}", "error", restore_error(rc), "message", err), err);
	}
	if (!ctl->json) {
		printf("restored %s from %s\n", store, dir);
		print_manifest(manifest);
		if (had) {
			printf("the replaced store is kept as %s\n", kept);
		}
	}
	return local_done(ctl, "restore",
			  json_pack("{s:s,s:s,s:s?,s:o}", "store", store, "from", dir, "kept",
				    had ? kept : NULL, "manifest", manifest),
			  NULL);
}

const struct ctl_cmd ctl_maint_cmds[] = {
    {"backup verify", cmd_backup_verify, NULL,
     "check a backup (offline): the copy's size and SHA-256 against its manifest, and "
     "SQLite's integrity check",
     .opts = {CTL_ARG_ROW("DIR", NULL)}, .offline = 1},
    {"backup", cmd_backup, NULL,
     "a consistent copy of the daemon's store, taken online, with a manifest, into DIR "
     "(created 0700; must not hold a backup)",
     .opts = {CTL_ARG_ROW("DIR", NULL)}},
    {"purge", cmd_purge, "purge", .text = print_purge,
     .help = "erase what is past its period (第6-7), securely, and show per rule what was (or, "
	     "with --dry-run, would be) removed",
     .opts = {{"dry-run", 'n', CTL_FLAG, 0, NULL, NULL, 0, 0, NULL}}},
    {"restore", cmd_restore, NULL,
     "replace a stopped daemon's store with the backup in DIR after verifying it; the "
     "old store is kept as PATH.before-restore; refused while the daemon runs",
     .opts = {CTL_NEED_ROW("store", CTL_FILE, NULL, "PATH"), CTL_ARG_ROW("DIR", NULL)},
     .offline = 1},
    {.name = NULL},
};
