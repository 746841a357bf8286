/*
 * The command line, parsed once: every command's options and arguments are
 * rows of its table entry (ctl.h), checked here all the same way.
 *
 * Not getopt_long: it takes any unambiguous abbreviation ("--pin 1234"
 * becomes --pin-fd) and has no switch to stop that, it lets an option be
 * given twice with the last one winning, and its messages quote what was
 * given.  Here an option is named whole or not at all, is given once, and
 * a message names the option, never its value: a value may be a secret
 * typed in the wrong place.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"

#define NAME_SHOWN_MAX 32

static size_t
count_opts(const struct ctl_cmd *cmd)
{
	size_t n = 0;

	while (n < CTL_OPTS_MAX && cmd->opts[n].name != NULL) {
		n++;
	}
	return n;
}

static int
index_of(const struct ctl_cmd *cmd, const char *name)
{
	for (size_t i = 0; i < count_opts(cmd); i++) {
		if (strcmp(cmd->opts[i].name, name) == 0) {
			return (int)i;
		}
	}
	return -1;
}

const char *
ctl_val(const struct ctl_req *req, const char *name)
{
	int i = index_of(req->cmd, name);

	return i >= 0 ? req->val[i] : NULL;
}

long long
ctl_num(const struct ctl_req *req, const char *name, long long dflt)
{
	int i = index_of(req->cmd, name);

	return i >= 0 && req->val[i] != NULL ? req->num[i] : dflt;
}

void
ctl_req_free(struct ctl_req *req)
{
	json_decref(req->args);
	req->args = NULL;
}

static void
print_opt(FILE *out, const struct ctl_opt *o)
{
	if (o->flags & CTL_ARG) {
		fprintf(out, (o->flags & CTL_OPTIONAL) ? "[%s%s]" : "%s%s", o->meta,
			(o->flags & CTL_MANY) ? "..." : "");
	} else if (o->type == CTL_FLAG) {
		fprintf(out, "[--%s]", o->name);
	} else {
		fprintf(out, (o->flags & CTL_REQUIRED) ? "--%s %s" : "[--%s %s]", o->name, o->meta);
	}
}

void
ctl_synopsis(FILE *out, const struct ctl_cmd *cmd)
{
	if (cmd->synopsis != NULL) {
		fprintf(out, " %s", cmd->synopsis);
		return;
	}
	for (size_t i = 0; i < count_opts(cmd); i++) {
		fputc(' ', out);
		print_opt(out, &cmd->opts[i]);
	}
}

int
ctl_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: juki-ctl %s", cmd->name);
	ctl_synopsis(stderr, cmd);
	fputc('\n', stderr);
	return CTL_USAGE;
}

void
ctl_options_help(FILE *out, const struct ctl_opt *opts, size_t n)
{
	for (const struct ctl_opt *o = opts; o < opts + n && o->name != NULL; o++) {
		char left[64];
		int at = 0;

		if (o->short_name) {
			at = snprintf(left, sizeof(left), "-%c, ", o->short_name);
		}
		snprintf(left + at, sizeof(left) - (size_t)at, "--%s%s%s", o->name,
			 o->meta ? " " : "", o->meta ? o->meta : "");
		fprintf(out, "  %-20s %s\n", left, o->help);
	}
}

/* The option's name for a message, when it is a plain one: a value may stand there. */
static const char *
shown(const char *name, size_t len, char *buf, size_t buflen)
{
	if (len == 0 || len > NAME_SHOWN_MAX || len + 1 > buflen ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz-") < len) {
		return "(not an option name)";
	}
	memcpy(buf, name, len);
	buf[len] = '\0';
	return buf;
}

/* "juki-ctl: <command>: <what>" and the command's usage; CTL_USAGE. */
static int __attribute__((format(printf, 3, 4)))
refuse(const struct ctl_cmd *cmd, int global, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "juki-ctl: ");
	if (!global) {
		fprintf(stderr, "%s: ", cmd->name);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (global) {
		fprintf(stderr, " (see juki-ctl --help)\n");
		return CTL_USAGE;
	}
	fputc('\n', stderr);
	return ctl_usage(cmd);
}

/* The list "a,b" as ["a", "b"]; empty items are left out. */
static json_t *
split_list(const char *text)
{
	json_t *list = json_array();

	for (const char *p = text; list != NULL && *p != '\0';) {
		size_t n = strcspn(p, ",");

		if (n > 0 && json_array_append_new(list, json_stringn(p, n)) != 0) {
			json_decref(list);
			return NULL; /* not UTF-8 */
		}
		p += n + (p[n] == ',');
	}
	return list;
}

static int
parse_int(const char *text, long long min, long long max, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(text, &end, 10);
	return errno == 0 && end != text && *end == '\0' && *v >= min && *v <= max ? 0 : -1;
}

/* Check and convert text for o: 0 (*v, *json set), or -1 with why. */
static int
convert(const struct ctl_opt *o, const char *text, long long *v, json_t **json, char *why,
	size_t len)
{
	int64_t ms;

	*json = NULL;
	switch (o->type) {
	case CTL_INT:
		if (parse_int(text, o->min, o->max, v) != 0) {
			if (o->max == LLONG_MAX) {
				snprintf(why, len, "a number, %lld or more", o->min);
			} else {
				snprintf(why, len, "a number from %lld to %lld", o->min, o->max);
			}
			return -1;
		}
		*json = json_integer(*v);
		return 0;
	case CTL_FD:
		if (parse_int(text, 0, INT_MAX, v) != 0) {
			snprintf(why, len, "a file descriptor number");
			return -1;
		}
		*json = json_integer(*v);
		return 0;
	case CTL_SEX:
		if (parse_int(text, 1, 2, v) != 0 || strlen(text) != 1) {
			snprintf(why, len, "1 (male) or 2 (female)");
			return -1;
		}
		*json = json_integer(*v);
		return 0;
	case CTL_DATE:
		if (!juki_date_valid(text)) {
			snprintf(why, len, "a date, YYYY-MM-DD");
			return -1;
		}
		break;
	case CTL_DURATION:
		if (juki_conf_parse_duration(text, &ms) != 0 || ms <= 0) {
			snprintf(why, len, "a duration like 10s");
			return -1;
		}
		*v = ms;
		*json = json_integer(ms);
		return 0;
	case CTL_CARD:
		if (ctl_card_uri_has_pin(text)) {
			snprintf(why, len,
				 "a URI with a PIN in it (pin-value, pin-source) is refused: the "
				 "card PIN comes from --card-pin-fd N or is asked for");
			return -1;
		}
		break;
	case CTL_LIST:
		*json = split_list(text);
		return 0;
	case CTL_FLAG:
		*json = json_true();
		return 0;
	case CTL_STRING:
	case CTL_FILE:
		break;
	}
	*json = json_string(text);
	return 0;
}

/* Put v at key of args; "a.b" is b in the object a (made when missing). */
static void
set_key(json_t *args, const char *key, json_t *v)
{
	const char *dot = strchr(key, '.');
	json_t *sub;

	if (dot == NULL) {
		json_object_set_new(args, key, v);
		return;
	}
	sub = json_object_getn(args, key, (size_t)(dot - key));
	if (sub == NULL) {
		sub = json_object();
		json_object_setn_new(args, key, (size_t)(dot - key), sub);
	}
	json_object_set_new(sub, dot + 1, v);
}

/* Take opts[i] with its value text (the option itself for a flag). */
static int
take(const struct ctl_cmd *cmd, int global, struct ctl_req *req, size_t i, const char *text)
{
	const struct ctl_opt *o = &cmd->opts[i];
	char why[128];
	json_t *v;

	if (req->val[i] != NULL) {
		return refuse(cmd, global, "%s%s: given twice (each option once)",
			      (o->flags & CTL_ARG) ? "" : "--", o->name);
	}
	if (convert(o, text, &req->num[i], &v, why, sizeof(why)) != 0) {
		return refuse(cmd, global, "%s%s: %s", (o->flags & CTL_ARG) ? "" : "--", o->name,
			      why);
	}
	if (o->key != NULL && v == NULL) {
		/* what goes to the daemon is JSON text */
		return refuse(cmd, global, "%s%s: not UTF-8 text", (o->flags & CTL_ARG) ? "" : "--",
			      o->name);
	}
	req->val[i] = text;
	if (o->flags & CTL_MANY) {
		req->more[req->nmore++] = text;
	}
	if (o->key != NULL) {
		set_key(req->args, o->key, v);
	} else {
		json_decref(v);
	}
	return CTL_OK;
}

/*
 * The next positional argument of the table (a CTL_MANY one again once
 * given), or -1 when all are taken.
 */
static int
next_arg(const struct ctl_cmd *cmd, const struct ctl_req *req)
{
	for (size_t i = 0; i < count_opts(cmd); i++) {
		if ((cmd->opts[i].flags & CTL_ARG) &&
		    (req->val[i] == NULL || (cmd->opts[i].flags & CTL_MANY))) {
			return (int)i;
		}
	}
	return -1;
}

/* Take one more value of the CTL_MANY argument opts[i], given once already. */
static int
take_more(const struct ctl_cmd *cmd, int global, struct ctl_req *req, size_t i, const char *text)
{
	const struct ctl_opt *o = &cmd->opts[i];
	long long num;
	char why[128];
	json_t *v;

	if (req->nmore >= CTL_MANY_MAX) {
		return refuse(cmd, global, "%s: at most %d", o->name, CTL_MANY_MAX);
	}
	if (convert(o, text, &num, &v, why, sizeof(why)) != 0) {
		return refuse(cmd, global, "%s: %s", o->name, why);
	}
	json_decref(v);
	req->more[req->nmore++] = text;
	return CTL_OK;
}

static int
find_long(const struct ctl_cmd *cmd, const char *name, size_t len)
{
	for (size_t i = 0; i < count_opts(cmd); i++) {
		const struct ctl_opt *o = &cmd->opts[i];

		if (!(o->flags & CTL_ARG) && strlen(o->name) == len &&
		    strncmp(o->name, name, len) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static int
find_short(const struct ctl_cmd *cmd, char c)
{
	for (size_t i = 0; i < count_opts(cmd); i++) {
		if (!(cmd->opts[i].flags & CTL_ARG) && cmd->opts[i].short_name == c) {
			return (int)i;
		}
	}
	return -1;
}

/* --name, --name=value or --name value at argv[*k]. */
static int
long_option(const struct ctl_cmd *cmd, int global, int argc, char **argv, int *k,
	    struct ctl_req *req)
{
	const char *name = argv[*k] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	int i = find_long(cmd, name, len);
	char buf[NAME_SHOWN_MAX + 1];

	if (i < 0 && !global && len == 4 && strncmp(name, "json", 4) == 0 && eq == NULL) {
		/* --json after the command, where scripts put it: any command */
		if (req->json) {
			return refuse(cmd, global, "--json: given twice (each option once)");
		}
		req->json = 1;
		return CTL_OK;
	}
	if (i < 0) {
		return refuse(cmd, global, "unknown option --%s",
			      shown(name, len, buf, sizeof(buf)));
	}
	if (cmd->opts[i].type == CTL_FLAG) {
		if (eq != NULL) {
			return refuse(cmd, global, "--%s takes no value", cmd->opts[i].name);
		}
		return take(cmd, global, req, (size_t)i, argv[*k]);
	}
	if (eq != NULL) {
		return take(cmd, global, req, (size_t)i, eq + 1);
	}
	if (*k + 1 >= argc) {
		return refuse(cmd, global, "--%s needs a value", cmd->opts[i].name);
	}
	*k += 1;
	return take(cmd, global, req, (size_t)i, argv[*k]);
}

/* -x, -xVALUE, -x VALUE, or flags together (-nj is not: only a table's own). */
static int
short_options(const struct ctl_cmd *cmd, int global, int argc, char **argv, int *k,
	      struct ctl_req *req)
{
	for (const char *p = argv[*k] + 1; *p != '\0'; p++) {
		int i = find_short(cmd, *p);
		int rc;

		if (i < 0) {
			char buf[2];

			return refuse(cmd, global, "unknown option -%s",
				      shown(p, 1, buf, sizeof(buf)));
		}
		if (cmd->opts[i].type == CTL_FLAG) {
			rc = take(cmd, global, req, (size_t)i, argv[*k]);
		} else if (p[1] != '\0') {
			return take(cmd, global, req, (size_t)i, p + 1);
		} else if (*k + 1 >= argc) {
			return refuse(cmd, global, "-%c needs a value", *p);
		} else {
			*k += 1;
			return take(cmd, global, req, (size_t)i, argv[*k]);
		}
		if (rc != CTL_OK) {
			return rc;
		}
	}
	return CTL_OK;
}

/* Every required option and argument is there. */
static int
complete(const struct ctl_cmd *cmd, struct ctl_req *req)
{
	for (size_t i = 0; i < count_opts(cmd); i++) {
		const struct ctl_opt *o = &cmd->opts[i];

		if (req->val[i] != NULL) {
			continue;
		}
		if ((o->flags & CTL_ARG) && !(o->flags & CTL_OPTIONAL)) {
			return refuse(cmd, 0, "%s missing", o->name);
		}
		if (o->flags & CTL_REQUIRED) {
			return refuse(cmd, 0, "--%s missing", o->name);
		}
	}
	return CTL_OK;
}

int
ctl_parse(const struct ctl_cmd *cmd, int argc, char **argv, int global, struct ctl_req *req,
	  int *used)
{
	int k, rc = CTL_OK, options = 1;

	memset(req, 0, sizeof(*req));
	req->cmd = cmd;
	req->args = json_object();
	for (k = 0; k < argc && rc == CTL_OK; k++) {
		const char *a = argv[k];
		int i;

		if (options && strcmp(a, "--") == 0) {
			options = 0;
			if (global) {
				k++;
				break;
			}
		} else if (options && a[0] == '-' && a[1] == '-') {
			rc = long_option(cmd, global, argc, argv, &k, req);
		} else if (options && a[0] == '-' && a[1] != '\0') {
			rc = short_options(cmd, global, argc, argv, &k, req);
		} else if (global) {
			break;
		} else if ((i = next_arg(cmd, req)) < 0) {
			rc = refuse(cmd, global, "one argument too many");
		} else if (req->val[i] != NULL) {
			rc = take_more(cmd, global, req, (size_t)i, a);
		} else {
			rc = take(cmd, global, req, (size_t)i, a);
		}
	}
	if (rc == CTL_OK && !global) {
		rc = complete(cmd, req);
	}
	if (used != NULL) {
		*used = k;
	}
	if (rc != CTL_OK) {
		ctl_req_free(req);
	}
	return rc;
}
