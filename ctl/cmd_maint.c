#include <getopt.h>
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

/*
 * "--json" is also taken after the command, where scripts put it
 * ("juki-ctl purge --dry-run --json").
 */
#define JSON_OPTION                                                                                \
	{                                                                                          \
		"json", no_argument, NULL, 'j'                                                     \
	}

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

/* Options: only --json (and the positional arguments, counted by the caller). */
static int
only_json(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {JSON_OPTION, {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j') {
			return -1;
		}
		ctl->json = 1;
	}
	return 0;
}

static void
print_manifest(const json_t *m)
{
	printf("  node:      %s\n", json_string_value(json_object_get(m, "node")));
	printf("  taken:     %s\n", json_string_value(json_object_get(m, "time")));
	printf("  file:      %s (%lld bytes, %lld pages)\n",
	       json_string_value(json_object_get(m, "file")),
	       (long long)json_integer_value(json_object_get(m, "size")),
	       (long long)json_integer_value(json_object_get(m, "page_count")));
	printf("  sha256:    %s\n", json_string_value(json_object_get(m, "sha256")));
	printf("  source:    %s\n", json_string_value(json_object_get(m, "source")));
}

static int
cmd_backup(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *self = ctl_find("backup");
	json_t *result = NULL;
	char *dir;
	int rc;

	if (only_json(ctl, argc, argv) != 0 || optind != argc - 1) {
		return ctl_usage(self);
	}
	if ((dir = absolute(argv[optind])) == NULL) {
		return CTL_FAILED;
	}
	bump_timeout(ctl);
	rc = ctl_call(ctl, "backup", json_pack("{s:s}", "dir", dir), &result);
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			printf("backup in %s\n", dir);
			print_manifest(result);
		}
	}
	json_decref(result);
	free(dir);
	return rc;
}

static int
cmd_backup_verify(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *self = ctl_find("backup verify");
	json_t *manifest = NULL, *out;
	char err[512];
	int rc;

	if (only_json(ctl, argc, argv) != 0 || optind != argc - 1) {
		return ctl_usage(self);
	}
	rc = juki_backup_verify(argv[optind], &manifest, err, sizeof(err));
	if (rc != 0) {
		if (ctl->json) {
			out = json_pack("{s:s,s:b,s:s}", "dir", argv[optind], "verified", 0,
					"error", err);
			ctl_print(ctl, out);
			json_decref(out);
		}
		fprintf(stderr, "juki-ctl: backup verify: %s\n", err);
		return CTL_FAILED;
	}
	if (ctl->json) {
		out = json_pack("{s:s,s:b,s:O}", "dir", argv[optind], "verified", 1, "manifest",
				manifest);
		ctl_print(ctl, out);
		json_decref(out);
	} else {
		printf("verified %s: checksum and integrity check pass\n", argv[optind]);
		print_manifest(manifest);
	}
	json_decref(manifest);
	return CTL_OK;
}

static void
print_purge(const json_t *r)
{
	int dry = json_is_true(json_object_get(r, "dry_run"));
	const json_t *rule, *ck = json_object_get(r, "checkpoint");
	size_t i;

	printf("purge at %s%s\n", json_string_value(json_object_get(r, "now")),
	       dry ? " (dry run: nothing removed)" : "");
	printf("  %-24s %-18s %-26s %9s %9s\n", "rule", "table", "due before", "due",
	       dry ? "" : "removed");
	json_array_foreach(json_object_get(r, "rules"), i, rule)
	{
		const json_t *cut = json_object_get(rule, "cutoff");

		printf("  %-24s %-18s %-26s %9lld",
		       json_string_value(json_object_get(rule, "name")),
		       json_string_value(json_object_get(rule, "table")),
		       json_is_string(cut) ? json_string_value(cut) : "never",
		       (long long)json_integer_value(json_object_get(rule, "due")));
		if (!dry) {
			printf(" %9lld",
			       (long long)json_integer_value(json_object_get(rule, "removed")));
		}
		printf("\n");
	}
	printf("  %-70s %9lld", "total", (long long)json_integer_value(json_object_get(r, "due")));
	if (!dry) {
		printf(" %9lld", (long long)json_integer_value(json_object_get(r, "removed")));
	}
	printf("\n");
	if (!dry) {
		printf("checkpoint: %s, WAL %lld bytes\n",
		       json_is_true(json_object_get(ck, "complete")) ? "complete" : "INCOMPLETE",
		       (long long)json_integer_value(json_object_get(ck, "wal_bytes")));
		printf("verified: %s\n",
		       json_is_true(json_object_get(r, "verified")) ? "yes" : "NO");
	}
}

static int
cmd_purge(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    JSON_OPTION,
	    {NULL, 0, NULL, 0},
	};
	json_t *result = NULL;
	int ch, dry = 0, rc;

	while ((ch = getopt_long(argc, argv, "n", opts, NULL)) != -1) {
		if (ch == 'n') {
			dry = 1;
		} else if (ch == 'j') {
			ctl->json = 1;
		} else {
			return ctl_usage(ctl_find("purge"));
		}
	}
	if (optind != argc) {
		return ctl_usage(ctl_find("purge"));
	}
	bump_timeout(ctl);
	rc = ctl_call(ctl, "purge", json_pack("{s:b}", "dry_run", dry), &result);
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			print_purge(result);
		}
	}
	json_decref(result);
	return rc;
}

/* A refused restore in the words of the control protocol, as the daemon's refusals print. */
static const char *
restore_error(int rc)
{
	switch (rc) {
	case -EBUSY:
	case JUKI_EEXIST:
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
cmd_restore(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"store", required_argument, NULL, 's'},
	    JSON_OPTION,
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("restore");
	const char *store = NULL, *dir;
	json_t *manifest = NULL, *out;
	char err[512], kept[PATH_MAX];
	struct stat sb;
	int ch, had, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's') {
			store = optarg;
		} else if (ch == 'j') {
			ctl->json = 1;
		} else {
			return ctl_usage(self);
		}
	}
	if (store == NULL || optind != argc - 1) {
		return ctl_usage(self);
	}
	dir = argv[optind];
	had = lstat(store, &sb) == 0;
	snprintf(kept, sizeof(kept), "%s%s", store, JUKI_BACKUP_BEFORE_RESTORE);
	rc = juki_backup_restore(dir, store, &manifest, err, sizeof(err));
	if (rc != 0) {
		if (ctl->json) {
			out = json_pack("{s:s,s:s}", "error", restore_error(rc), "message", err);
			ctl_print(ctl, out);
			json_decref(out);
		}
		fprintf(stderr, "juki-ctl: restore: %s\n", err);
		return CTL_FAILED;
	}
	if (ctl->json) {
		out = json_pack("{s:s,s:s,s:s?,s:O}", "store", store, "from", dir, "kept",
				had ? kept : NULL, "manifest", manifest);
		ctl_print(ctl, out);
		json_decref(out);
	} else {
		printf("restored %s from %s\n", store, dir);
		print_manifest(manifest);
		if (had) {
			printf("the replaced store is kept as %s\n", kept);
		}
	}
	json_decref(manifest);
	return CTL_OK;
}

const struct ctl_cmd ctl_maint_cmds[] = {
    {"backup verify", cmd_backup_verify, "DIR",
     "check a backup (offline): the copy's size and SHA-256 against its manifest, and "
     "SQLite's integrity check",
     0},
    {"backup", cmd_backup, "DIR",
     "a consistent copy of the daemon's store, taken online, with a manifest, into DIR "
     "(created 0700; must not hold a backup)",
     1},
    {"purge", cmd_purge, "[--dry-run]",
     "erase what is past its period (第6-7), securely, and show per rule what was (or, with "
     "--dry-run, would be) removed",
     1},
    {"restore", cmd_restore, "--store PATH DIR",
     "replace a stopped daemon's store with the backup in DIR after verifying it; the old "
     "store is kept as PATH.before-restore; refused while the daemon runs",
     0},
    {NULL, NULL, NULL, NULL, 0},
};
