/*
 * Operators, approvals, lookups and exports (第4-4, 第4-8(2)): thin
 * wrappers; the daemon checks roles, data sets and every rule.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "juki/base/error.h"
#include "juki/records/operator.h"
#include "terminal.h"

/* "--json" is also taken after the command, where scripts put it. */
#define JSON_OPT                                                                                   \
	{                                                                                          \
		"json", no_argument, NULL, 'j'                                                     \
	}

/* A comma-separated list as a JSON array of its items. */
static json_t *
split_list(const char *text)
{
	json_t *list = json_array();
	char *copy = strdup(text), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); list != NULL && t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		json_array_append_new(list, json_string(t));
	}
	free(copy);
	return list;
}

/*
 * A new PIN: from fd, or asked twice on the terminal.  Never argv or the
 * environment.  Returns 0 with the PIN in buf.
 */
static int
new_pin(int fd, char *buf, size_t len)
{
	char again[JUKI_PIN_MAX + 2], err[256];
	int same;

	if (ctl_read_pin(fd, "new PIN: ", buf, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: %s\n", err);
		return CTL_USAGE;
	}
	if (fd >= 0) {
		return 0;
	}
	if (ctl_read_pin(-1, "new PIN again: ", again, sizeof(again), err, sizeof(err)) != 0) {
		OPENSSL_cleanse(buf, len);
		fprintf(stderr, "juki-ctl: %s\n", err);
		return CTL_USAGE;
	}
	same = strcmp(buf, again) == 0;
	OPENSSL_cleanse(again, sizeof(again));
	if (!same) {
		OPENSSL_cleanse(buf, len);
		fprintf(stderr, "juki-ctl: the two PINs differ\n");
		return CTL_USAGE;
	}
	return 0;
}

static int
fd_arg(const char *text, int *fd)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < 0 || v > 65535) {
		fprintf(stderr, "juki-ctl: a file descriptor number: %s\n", text);
		return CTL_USAGE;
	}
	*fd = (int)v;
	return 0;
}

/* Call cmd with args and print the result. */
static int
call_print(struct ctl *ctl, const char *cmd, json_t *args)
{
	json_t *result;
	int rc = ctl_call(ctl, cmd, args, &result);

	if (rc == CTL_OK) {
		ctl_print(ctl, result);
		json_decref(result);
	}
	return rc;
}

/* operator add ID --roles R,R --datasets D,D [--new-pin-fd N] */
static int
operator_write(struct ctl *ctl, int argc, char **argv, const char *cmd, int with_pin)
{
	static const struct option opts[] = {
	    {"roles", required_argument, NULL, 'r'},
	    {"datasets", required_argument, NULL, 'd'},
	    {"new-pin-fd", required_argument, NULL, 'p'},
	    JSON_OPT,
	    {NULL, 0, NULL, 0},
	};
	const char *roles = NULL, *datasets = NULL;
	char pin[JUKI_PIN_MAX + 2];
	json_t *args;
	int fd = -1, ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			roles = optarg;
			break;
		case 'd':
			datasets = optarg;
			break;
		case 'p':
			if (!with_pin || fd_arg(optarg, &fd) != 0) {
				return ctl_usage(ctl_find(argv[0]));
			}
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			return ctl_usage(ctl_find(argv[0]));
		}
	}
	if (optind + 1 != argc || roles == NULL || datasets == NULL) {
		return ctl_usage(ctl_find(argv[0]));
	}
	args = json_pack("{s:s,s:o,s:o}", "operator", argv[optind], "roles", split_list(roles),
			 "datasets", split_list(datasets));
	if (with_pin) {
		if ((rc = new_pin(fd, pin, sizeof(pin))) != 0) {
			json_decref(args);
			return rc;
		}
		json_object_set_new(args, "pin", json_string(pin));
		OPENSSL_cleanse(pin, sizeof(pin));
	}
	rc = call_print(ctl, cmd, args);
	return rc;
}

static int
cmd_operator_add(struct ctl *ctl, int argc, char **argv)
{
	return operator_write(ctl, argc, argv, "operator.add", 1);
}

static int
cmd_operator_set_roles(struct ctl *ctl, int argc, char **argv)
{
	return operator_write(ctl, argc, argv, "operator.set-roles", 0);
}

/* Commands whose only argument is an operator id (or none). */
static int
one_operator(struct ctl *ctl, int argc, char **argv, const char *cmd)
{
	static const struct option opts[] = {JSON_OPT, {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j') {
			return ctl_usage(ctl_find(argv[0]));
		}
		ctl->json = 1;
	}
	if (strcmp(cmd, "operator.list") == 0) {
		if (optind != argc) {
			return ctl_usage(ctl_find(argv[0]));
		}
		return call_print(ctl, cmd, NULL);
	}
	if (optind + 1 != argc) {
		return ctl_usage(ctl_find(argv[0]));
	}
	return call_print(ctl, cmd, json_pack("{s:s}", "operator", argv[optind]));
}

static int
cmd_operator_list(struct ctl *ctl, int argc, char **argv)
{
	return one_operator(ctl, argc, argv, "operator.list");
}

static int
cmd_operator_lock(struct ctl *ctl, int argc, char **argv)
{
	return one_operator(ctl, argc, argv, "operator.lock");
}

static int
cmd_operator_unlock(struct ctl *ctl, int argc, char **argv)
{
	return one_operator(ctl, argc, argv, "operator.unlock");
}

/* operator set-pin ID [--new-pin-fd N] / pin change [--new-pin-fd N] */
static int
pin_write(struct ctl *ctl, int argc, char **argv, int own)
{
	static const struct option opts[] = {
	    {"new-pin-fd", required_argument, NULL, 'p'}, JSON_OPT, {NULL, 0, NULL, 0}};
	char pin[JUKI_PIN_MAX + 2];
	json_t *args;
	int fd = -1, ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'p' && fd_arg(optarg, &fd) == 0) {
			continue;
		}
		if (ch != 'j') {
			return ctl_usage(ctl_find(argv[0]));
		}
		ctl->json = 1;
	}
	if (optind + (own ? 0 : 1) != argc) {
		return ctl_usage(ctl_find(argv[0]));
	}
	if ((rc = new_pin(fd, pin, sizeof(pin))) != 0) {
		return rc;
	}
	args = own ? json_pack("{s:s}", "new_pin", pin)
		   : json_pack("{s:s,s:s}", "operator", argv[optind], "pin", pin);
	OPENSSL_cleanse(pin, sizeof(pin));
	return call_print(ctl, own ? "pin.change" : "operator.set-pin", args);
}

static int
cmd_operator_set_pin(struct ctl *ctl, int argc, char **argv)
{
	return pin_write(ctl, argc, argv, 0);
}

static int
cmd_pin_change(struct ctl *ctl, int argc, char **argv)
{
	return pin_write(ctl, argc, argv, 1);
}

/* approve pending N / refuse pending N: the pending input numbered text. */
static int
decide_pending(struct ctl *ctl, const char *name, const char *cmd, const char *text)
{
	char *end;
	long long id = strtoll(text, &end, 10);

	if (*end != '\0' || id < 1) {
		fprintf(stderr, "juki-ctl: %s pending: an approval number\n", name);
		return CTL_USAGE;
	}
	return call_print(ctl, cmd, json_pack("{s:I}", "approval", (json_int_t)id));
}

/* approve export|correct --operator X --target T   /   approve pending N */
static int
cmd_approve(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"operator", required_argument, NULL, 'o'},
	    {"target", required_argument, NULL, 't'},
	    JSON_OPT,
	    {NULL, 0, NULL, 0},
	};
	const char *op = NULL, *target = NULL, *kind;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			op = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			return ctl_usage(ctl_find("approve"));
		}
	}
	if (optind >= argc) {
		return ctl_usage(ctl_find("approve"));
	}
	kind = argv[optind];
	if (strcmp(kind, "pending") == 0) {
		if (optind + 2 != argc || op != NULL || target != NULL) {
			return ctl_usage(ctl_find("approve"));
		}
		return decide_pending(ctl, "approve", "approval.confirm", argv[optind + 1]);
	}
	if (optind + 1 != argc || op == NULL || target == NULL) {
		return ctl_usage(ctl_find("approve"));
	}
	return call_print(
	    ctl, "approval.issue",
	    json_pack("{s:s,s:s,s:s}", "kind", kind, "operator", op, "target", target));
}

/* refuse pending N */
static int
cmd_refuse(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {JSON_OPT, {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j') {
			return ctl_usage(ctl_find("refuse"));
		}
		ctl->json = 1;
	}
	if (optind + 2 != argc || strcmp(argv[optind], "pending") != 0) {
		return ctl_usage(ctl_find("refuse"));
	}
	return decide_pending(ctl, "refuse", "approval.refuse", argv[optind + 1]);
}

static int
cmd_approvals(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    JSON_OPT,
	    {NULL, 0, NULL, 0},
	};
	json_t *args = json_object();
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			json_object_set_new(args, "state", json_string(optarg));
			break;
		case 'l':
			json_object_set_new(args, "limit", json_integer(strtoll(optarg, &end, 10)));
			if (*end != '\0') {
				json_decref(args);
				return ctl_usage(ctl_find("approvals"));
			}
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			json_decref(args);
			return ctl_usage(ctl_find("approvals"));
		}
	}
	if (optind != argc) {
		json_decref(args);
		return ctl_usage(ctl_find("approvals"));
	}
	return call_print(ctl, "approval.list", args);
}

/*
 * lookup --purpose P CODE
 * lookup --purpose P --name N --birth D --sex S --address A
 * The daemon refuses partial sets and wildcards, with the reason.
 */
static int
cmd_lookup(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"purpose", required_argument, NULL, 'p'},
	    {"name", required_argument, NULL, 'n'},
	    {"birth", required_argument, NULL, 'b'},
	    {"sex", required_argument, NULL, 'x'},
	    {"address", required_argument, NULL, 'a'},
	    JSON_OPT,
	    {NULL, 0, NULL, 0},
	};
	json_t *args = json_object();
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(args, "purpose", json_string(optarg));
			break;
		case 'n':
			json_object_set_new(args, "name", json_string(optarg));
			break;
		case 'b':
			json_object_set_new(args, "birth", json_string(optarg));
			break;
		case 'x':
			/* A number when it is one; the daemon says what it must be. */
			if (strcmp(optarg, "1") == 0 || strcmp(optarg, "2") == 0) {
				json_object_set_new(args, "sex", json_integer(optarg[0] - '0'));
			} else {
				json_object_set_new(args, "sex", json_string(optarg));
			}
			break;
		case 'a':
			json_object_set_new(args, "address", json_string(optarg));
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			json_decref(args);
			return ctl_usage(ctl_find("lookup"));
		}
	}
	if (optind + 1 == argc) {
		json_object_set_new(args, "code", json_string(argv[optind]));
	} else if (optind != argc) {
		json_decref(args);
		return ctl_usage(ctl_find("lookup"));
	}
	return call_print(ctl, "lookup", args);
}

/* export --purpose P [--lgcode C] [--approval N] */
static int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"purpose", required_argument, NULL, 'p'},
	    {"lgcode", required_argument, NULL, 'l'},
	    {"approval", required_argument, NULL, 'a'},
	    JSON_OPT,
	    {NULL, 0, NULL, 0},
	};
	json_t *args = json_object();
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(args, "purpose", json_string(optarg));
			break;
		case 'l':
			json_object_set_new(args, "lgcode", json_string(optarg));
			break;
		case 'a':
			json_object_set_new(args, "approval",
					    json_integer(strtoll(optarg, &end, 10)));
			if (*end != '\0') {
				json_decref(args);
				return ctl_usage(ctl_find("export"));
			}
			break;
		case 'j':
			ctl->json = 1;
			break;
		default:
			json_decref(args);
			return ctl_usage(ctl_find("export"));
		}
	}
	if (optind != argc) {
		json_decref(args);
		return ctl_usage(ctl_find("export"));
	}
	return call_print(ctl, "export", args);
}

const struct ctl_cmd ctl_operator_cmds[] = {
    {"operator add", cmd_operator_add, "ID --roles R[,R] --datasets D[,D] [--new-pin-fd N]",
     "a new operator (roles: clerk, supervisor, auditor, administrator); their first PIN is "
     "asked twice, or read from fd N",
     1},
    {"operator list", cmd_operator_list, "", "operators, their roles, data sets and locks", 1},
    {"operator lock", cmd_operator_lock, "ID", "lock an operator", 1},
    {"operator unlock", cmd_operator_unlock, "ID",
     "unlock an operator and clear the count of wrong PINs (a supervisor)", 1},
    {"operator set-roles", cmd_operator_set_roles, "ID --roles R[,R] --datasets D[,D]",
     "an operator's roles and data sets", 1},
    {"operator set-pin", cmd_operator_set_pin, "ID [--new-pin-fd N]",
     "a new PIN for an operator who lost theirs", 1},
    {"pin change", cmd_pin_change, "[--new-pin-fd N]", "change your own PIN (an operator)", 1},
    {"approve", cmd_approve, "export|correct --operator X --target T | pending N",
     "a supervisor approves beforehand (used once), or approves input recorded pending", 1},
    {"refuse", cmd_refuse, "pending N",
     "a supervisor refuses input recorded pending: a correction must follow", 1},
    {"approvals", cmd_approvals, "[--state issued|used|pending|approved|refused] [--limit N]",
     "approvals, newest first", 1},
    {"lookup", cmd_lookup, "--purpose P (CODE | --name N --birth YYYY-MM-DD --sex 1|2 --address A)",
     "a person's current record: by 住民票コード, or by all four attributes matched exactly", 1},
    {"export", cmd_export, "--purpose P [--lgcode C] [--approval N]",
     "the current records of a municipality; more than operator.bulk_records need an approval", 1},
    {NULL, NULL, NULL, NULL, 0},
};
