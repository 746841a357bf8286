#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/config.h"
#include "juki/control.h"
#include "juki/error.h"
#include "juki/log.h"

#define DEFAULT_TIMEOUT_MS 30000

static const struct ctl_cmd *const tables[] = {
    ctl_status_cmds, ctl_resident_cmds, ctl_movein_cmds, ctl_pref_cmds,
    ctl_honnin_cmds, ctl_import_cmds,   ctl_maint_cmds,  ctl_pki_cmds,
    ctl_audit_cmds,
};

const struct ctl_cmd *
ctl_find(const char *name)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct ctl_cmd *c = tables[t]; c->name != NULL; c++) {
			if (strcmp(c->name, name) == 0) {
				return c;
			}
		}
	}
	return NULL;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: juki-ctl [-s socket] [--json] [-t timeout] command [args]\n"
		     "\n"
		     "  -s, --socket PATH   the daemon's control socket (or $JUKI_CTL_SOCKET)\n"
		     "  -j, --json          print results as JSON\n"
		     "  -t, --timeout DUR   how long to wait for the daemon (default 30s)\n"
		     "\n"
		     "commands:\n");
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct ctl_cmd *c = tables[t]; c->name != NULL; c++) {
			fprintf(out, "  %s %s\n      %s\n", c->name, c->args, c->help);
		}
	}
	fprintf(out, "\n"
		     "exit status:\n"
		     "  0  done\n"
		     "  1  refused or failed (the reason is printed)\n"
		     "  2  usage error\n"
		     "  3  daemon unreachable\n");
}

int
ctl_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: juki-ctl %s %s\n", cmd->name, cmd->args);
	return CTL_USAGE;
}

int
ctl_call(struct ctl *ctl, const char *cmd, json_t *args, json_t **result)
{
	struct juki_ctl_error err;
	int rc;

	rc = juki_ctl_call(ctl->socket, cmd, args, ctl->timeout_ms, result, &err);
	if (rc == 0) {
		return CTL_OK;
	}
	if (strcmp(err.code, "unreachable") == 0) {
		fprintf(stderr, "juki-ctl: daemon unreachable: %s\n", err.message);
		return CTL_UNREACHABLE;
	}
	if (ctl->json) {
		json_t *e = json_pack("{s:s,s:s}", "error", err.code, "message", err.message);

		json_dumpf(e, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(e);
	}
	fprintf(stderr, "juki-ctl: %s: %s: %s\n", cmd, err.code, err.message);
	return strcmp(err.code, "usage") == 0 ? CTL_USAGE : CTL_FAILED;
}

static void print_value(const json_t *v, int depth);

static void
print_object(const json_t *obj, int depth)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		printf("%*s%s:", depth * 2, "", key);
		if (json_is_object(v) || json_is_array(v)) {
			if ((json_is_object(v) && json_object_size(v) == 0) ||
			    (json_is_array(v) && json_array_size(v) == 0)) {
				printf(" -\n");
				continue;
			}
			printf("\n");
			print_value(v, depth + 1);
		} else {
			printf(" ");
			print_value(v, 0);
		}
	}
}

static void
print_value(const json_t *v, int depth)
{
	size_t i;
	const json_t *e;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		print_object(v, depth);
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, e)
		{
			if (json_is_object(e)) {
				printf("%*s- [%zu]\n", depth * 2, "", i);
				print_object(e, depth + 1);
			} else {
				printf("%*s- ", depth * 2, "");
				print_value(e, 0);
			}
		}
		break;
	case JSON_STRING:
		printf("%s\n", json_string_value(v));
		break;
	case JSON_INTEGER:
		printf("%lld\n", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		printf("%g\n", json_real_value(v));
		break;
	case JSON_TRUE:
		printf("yes\n");
		break;
	case JSON_FALSE:
		printf("no\n");
		break;
	case JSON_NULL:
		printf("-\n");
		break;
	}
}

void
ctl_print(const struct ctl *ctl, const json_t *result)
{
	if (ctl->json) {
		json_dumpf(result, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		print_value(result, 0);
	}
	fflush(stdout);
}

json_t *
ctl_read_jsonl(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	json_t *items;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;

	if (f == NULL) {
		fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	items = json_array();
	while (items != NULL && (n = getline(&line, &cap, f)) >= 0) {
		json_error_t jerr;
		json_t *doc;
		char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p == '\n' || *p == '\0' || *p == '#') {
			continue;
		}
		doc = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(doc)) {
			fprintf(stderr, "juki-ctl: %s:%zu: %s\n", path, lineno,
				doc == NULL ? jerr.text : "not a JSON object");
			json_decref(doc);
			json_decref(items);
			items = NULL;
			break;
		}
		json_array_append_new(items, doc);
	}
	free(line);
	if (f != stdin) {
		fclose(f);
	}
	return items;
}

int
ctl_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
	struct ctl ctl = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	const struct ctl_cmd *cmd = NULL;
	char name[64];
	int ch, used;

	log_init("juki-ctl", JUKI_LOG_WARNING);
	ctl.socket = getenv("JUKI_CTL_SOCKET");
	/* Options come before the command; what follows belongs to the command. */
	while ((ch = getopt_long(argc, argv, "+s:jt:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 't':
			if (juki_conf_parse_duration(optarg, &ctl.timeout_ms) != 0 ||
			    ctl.timeout_ms <= 0) {
				fprintf(stderr, "juki-ctl: --timeout: a duration like 10s\n");
				return CTL_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		case 'V':
			printf("juki-ctl %s\n", JUKI_VERSION);
			return CTL_OK;
		default:
			usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	/* Two-word commands first ("resident add"), then one word ("status"). */
	if (optind + 1 < argc) {
		snprintf(name, sizeof(name), "%s %s", argv[optind], argv[optind + 1]);
		cmd = ctl_find(name);
	}
	used = cmd != NULL ? 2 : 1;
	if (cmd == NULL) {
		cmd = ctl_find(argv[optind]);
	}
	if (cmd == NULL) {
		fprintf(stderr, "juki-ctl: unknown command %s (see juki-ctl --help)\n",
			argv[optind]);
		return CTL_USAGE;
	}
	if (cmd->needs_daemon && ctl.socket == NULL) {
		fprintf(stderr,
			"juki-ctl: %s needs the daemon's socket: -s PATH or "
			"$JUKI_CTL_SOCKET\n",
			cmd->name);
		return CTL_USAGE;
	}
	/* The command sees its own argv, its name as argv[0]. */
	argv += optind + used - 1;
	argc -= optind + used - 1;
	optind = 0;
	return cmd->fn(&ctl, argc, argv);
}
