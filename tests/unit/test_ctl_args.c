/*
 * juki-ctl's command line, over its own command table: every command and
 * every option declared there is tried with what a person gets wrong (an
 * unknown option, an abbreviation, a value missing, an option given twice,
 * a required one left out), so that a command added to the table is
 * covered here without a line of this file changing.  Nothing of it may
 * crash juki-ctl or print a value given on the command line; and the man
 * page names the options the table declares.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"

#define SECRET   "SECRET-4711"
#define WORDS    (CTL_MANY_MAX + 8)
#define ERR_SIZE 8192

/* One command line: words, then the program's exit code and what it said on stderr. */
struct line {
	char *argv[WORDS];
	int argc;
	int rc;
	char err[ERR_SIZE];
};

static void
add(struct line *l, const char *word)
{
	assert_true(l->argc < WORDS - 1);
	l->argv[l->argc++] = (char *)word;
	l->argv[l->argc] = NULL;
}

/* juki-ctl -s /nonexistent <the command's words> */
static void
start(struct line *l, const struct ctl_cmd *cmd, char *words, size_t len)
{
	memset(l, 0, sizeof(*l));
	add(l, "juki-ctl");
	add(l, "-s");
	add(l, "/nonexistent/juki.sock");
	snprintf(words, len, "%s", cmd->name);
	for (char *save = NULL, *w = strtok_r(words, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		add(l, w);
	}
}

/* Run the line through ctl_main with stderr caught. */
static void
run(struct line *l)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	l->rc = ctl_main(l->argc, l->argv);
	fflush(stderr);
	fflush(stdout);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(l->err, 1, sizeof(l->err) - 1, tmp);
	l->err[n] = '\0';
	fclose(tmp);
}

/* The usage error every case here must end in: exit 2, no value shown. */
static void
refused(struct line *l)
{
	run(l);
	if (l->rc != CTL_USAGE || strstr(l->err, SECRET) != NULL) {
		for (int i = 0; i < l->argc; i++) {
			fprintf(stderr, "%s ", l->argv[i]);
		}
		fprintf(stderr, "\n-> exit %d: %s\n", l->rc, l->err);
	}
	assert_int_equal(l->rc, CTL_USAGE);
	assert_null(strstr(l->err, SECRET));
	assert_non_null(strstr(l->err, "juki-ctl"));
}

/* A value each type takes. */
static const char *
good_value(const struct ctl_opt *o, char *buf, size_t len)
{
	switch (o->type) {
	case CTL_DATE:
		return "2026-11-25";
	case CTL_SEX:
		return "2";
	case CTL_INT:
		snprintf(buf, len, "%lld", o->min);
		return buf;
	case CTL_FD:
		return "9";
	case CTL_DURATION:
		return "1s";
	case CTL_CARD:
		return "pkcs11:token=a;object=b";
	default:
		return "x";
	}
}

static int
is_option(const struct ctl_opt *o)
{
	return !(o->flags & CTL_ARG);
}

static void
test_unknown_option(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		static const char *const unknown[] = {"--no-such-option", "--" SECRET,
						      "--bogus=" SECRET, "-Z", "-Z" SECRET};

		for (size_t u = 0; u < sizeof(unknown) / sizeof(unknown[0]); u++) {
			start(&l, cmd, words, sizeof(words));
			add(&l, unknown[u]);
			add(&l, SECRET);
			refused(&l);
		}
	}
}

/* Regression: these passed a NULL entry to the usage printer and crashed. */
static void
test_operator_unknown_option(void **state)
{
	static const char *const names[] = {"operator add", "operator list", "operator set-pin",
					    "operator set-roles"};
	char words[64];
	struct line l;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		start(&l, ctl_find(names[i]), words, sizeof(words));
		add(&l, "--bogus");
		add(&l, "x");
		refused(&l);
		assert_non_null(strstr(l.err, "unknown option --bogus"));
		assert_non_null(strstr(l.err, "usage: juki-ctl operator"));
	}
}

static void
test_repeated_option(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64], value[32], opt[64], want[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			if (!is_option(o)) {
				continue;
			}
			start(&l, cmd, words, sizeof(words));
			snprintf(opt, sizeof(opt), "--%s", o->name);
			for (int twice = 0; twice < 2; twice++) {
				add(&l, opt);
				if (o->type != CTL_FLAG) {
					add(&l, o->type == CTL_STRING
						    ? SECRET
						    : good_value(o, value, sizeof(value)));
				}
			}
			refused(&l);
			snprintf(want, sizeof(want), "--%s: given twice", o->name);
			assert_non_null(strstr(l.err, want));
		}
		/* --json after the command, twice */
		start(&l, cmd, words, sizeof(words));
		add(&l, "--json");
		add(&l, "--json");
		refused(&l);
	}
}

static void
test_missing_value(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64], opt[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			if (!is_option(o) || o->type == CTL_FLAG) {
				continue;
			}
			start(&l, cmd, words, sizeof(words));
			snprintf(opt, sizeof(opt), "--%s", o->name);
			add(&l, opt);
			refused(&l);
			assert_non_null(strstr(l.err, "needs a value"));
		}
	}
}

/* A value of the wrong kind is refused by name, and never shown. */
static void
test_bad_value(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64], opt[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			if (o->type == CTL_STRING || o->type == CTL_FILE || o->type == CTL_LIST) {
				continue;
			}
			start(&l, cmd, words, sizeof(words));
			if (o->type == CTL_FLAG) {
				snprintf(opt, sizeof(opt), "--%s=" SECRET, o->name);
				add(&l, opt);
			} else if (is_option(o)) {
				snprintf(opt, sizeof(opt), "--%s", o->name);
				add(&l, opt);
				add(&l, SECRET);
			} else {
				/* an argument of a type: fill those before it */
				for (const struct ctl_opt *a = cmd->opts; a < o; a++) {
					if (!is_option(a)) {
						add(&l, "pending");
					}
				}
				add(&l, SECRET);
			}
			refused(&l);
		}
	}
}

/* Options are named whole: no prefix of one is taken for it. */
static void
test_no_abbreviation(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64], opt[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			if (!is_option(o) || strlen(o->name) < 3) {
				continue;
			}
			start(&l, cmd, words, sizeof(words));
			snprintf(opt, sizeof(opt), "--%.*s", (int)strlen(o->name) - 1, o->name);
			add(&l, opt);
			add(&l, "1");
			refused(&l);
			assert_non_null(strstr(l.err, "unknown option"));
		}
	}
}

static void
test_required_missing(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64];
	struct line l;
	int tried = 0;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		int required = 0;

		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			required |= (o->flags & CTL_REQUIRED) ||
				    ((o->flags & CTL_ARG) && !(o->flags & CTL_OPTIONAL));
		}
		if (!required) {
			continue;
		}
		start(&l, cmd, words, sizeof(words));
		refused(&l);
		assert_non_null(strstr(l.err, "missing"));
		assert_non_null(strstr(l.err, "usage: juki-ctl"));
		tried++;
	}
	assert_true(tried > 10);
}

static void
test_too_many_arguments(void **state)
{
	const struct ctl_cmd *cmd;
	char words[64];
	struct line l;

	(void)state;
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		int many = 0;

		for (size_t k = 0; k < CTL_OPTS_MAX && cmd->opts[k].name != NULL; k++) {
			many |= (cmd->opts[k].flags & CTL_MANY) != 0;
		}
		start(&l, cmd, words, sizeof(words));
		/* a FILE... argument takes CTL_MANY_MAX values, and no more */
		for (int k = 0; k < (many ? CTL_MANY_MAX : CTL_OPTS_MAX) + 1; k++) {
			add(&l, SECRET);
		}
		refused(&l);
	}
}

/* The global options: whole names, and no PIN on the command line. */
static void
test_global_options(void **state)
{
	static const char *const lines[][4] = {
	    {"--pin", "1234" SECRET, "status", NULL},
	    {"--pin=1234" SECRET, "status", NULL, NULL},
	    {"--card-pin", "1234" SECRET, "status", NULL},
	    {"--sock", SECRET, "status", NULL},
	    {"--json", "--json", "status", NULL},
	    {"-s", "/a", "-s", "/b"},
	    {"--pin-fd", SECRET, "status", NULL},
	    {"--timeout", SECRET, "status", NULL},
	    {"--card", "pkcs11:token=a;pin-value=" SECRET, "login", NULL},
	    {"--card", "pkcs11:token=a?pin-value=" SECRET, "login", NULL},
	    {"--card=pkcs11:object=op;pin-source=file:/tmp/" SECRET, "login", NULL, NULL},
	    {"--card", "PKCS11:token=a?module-path=/x.so&pin-value=" SECRET, "login", NULL},
	    {"--connect", "127.0.0.1:1", "--card", "pkcs11:pin-value=" SECRET},
	    {"lookup", "--name", "\xff\xfe", NULL},
	    {"no-such-command", NULL, NULL, NULL},
	    {SECRET, NULL, NULL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct line l;

		memset(&l, 0, sizeof(l));
		add(&l, "juki-ctl");
		for (int w = 0; w < 4 && lines[i][w] != NULL; w++) {
			add(&l, lines[i][w]);
		}
		refused(&l);
	}
}

static json_t *
parsed(const char *first, ...)
{
	const struct ctl_cmd *cmd;
	struct ctl_req g, req;
	char *argv[WORDS] = {"juki-ctl", (char *)first};
	int argc = 2;
	json_t *args;
	va_list ap;

	va_start(ap, first);
	while (argc < WORDS - 1 && (argv[argc] = va_arg(ap, char *)) != NULL) {
		argc++;
	}
	va_end(ap);
	assert_int_equal(ctl_parse_argv(argc, argv, &g, &cmd, &req), CTL_OK);
	assert_non_null(cmd);
	args = json_incref(req.args);
	json_object_set_new(args, "(json)", json_boolean(req.json));
	ctl_req_free(&req);
	ctl_req_free(&g);
	return args;
}

static void
expect(json_t *got, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	char *text = json_dumps(got, JSON_SORT_KEYS);

	assert_non_null(w);
	if (!json_equal(got, w)) {
		fail_msg("got %s, want %s", text, want);
	}
	free(text);
	json_decref(w);
	json_decref(got);
}

/* What the table turns a line into: the request the daemon gets. */
static void
test_request(void **state)
{
	(void)state;
	expect(parsed("resident", "correct", "--sex", "2", "24727059608", "--name=山田 花子",
		      "--json", "--approval", "7", NULL),
	       "{\"code\": \"24727059608\", \"person\": {\"name\": \"山田 花子\", \"sex\": 2}, "
	       "\"approval\": 7, \"(json)\": true}");
	expect(parsed("lookup", "--purpose", "tax", "--sex", "1", "--", "--weird", NULL),
	       "{\"purpose\": \"tax\", \"sex\": 1, \"code\": \"--weird\", \"(json)\": false}");
	expect(parsed("alerts", "-m", "5", NULL), "{\"max\": 5, \"(json)\": false}");
	expect(parsed("alerts", "-m5", NULL), "{\"max\": 5, \"(json)\": false}");
	expect(parsed("confirmations", "--limit", "0", NULL), "{\"limit\": 0, \"(json)\": false}");
	expect(parsed("operator", "set-roles", "--roles", "clerk,,supervisor", "tanaka",
		      "--datasets", "honnin", NULL),
	       "{\"operator\": \"tanaka\", \"roles\": [\"clerk\", \"supervisor\"], "
	       "\"datasets\": [\"honnin\"], \"(json)\": false}");
	expect(parsed("movein", "--code", "1", "--from", "271004", "--date", "2026-02-28", NULL),
	       "{\"person\": {\"code\": \"1\"}, \"from\": \"271004\", \"date\": \"2026-02-28\", "
	       "\"(json)\": false}");
	expect(parsed("import", "-", NULL), "{\"(json)\": false}");
	expect(parsed("approve", "pending", "8", NULL), "{\"approval\": 8, \"(json)\": false}");
}

/* A FILE... argument: every argument left, options among them, in order. */
static void
test_many_argument(void **state)
{
	const struct ctl_cmd *cmd = ctl_find("load");
	char *argv[] = {"a.csv", "b.csv", "--merge", "c.csv", NULL};
	struct ctl_req req;
	int used = 0;

	(void)state;
	assert_non_null(cmd);
	assert_int_equal(ctl_parse(cmd, 4, argv, 0, &req, &used), CTL_OK);
	assert_string_equal(ctl_val(&req, "FILE"), "a.csv");
	assert_int_equal(req.nmore, 3);
	assert_string_equal(req.more[0], "a.csv");
	assert_string_equal(req.more[1], "b.csv");
	assert_string_equal(req.more[2], "c.csv");
	assert_non_null(ctl_val(&req, "merge"));
	ctl_req_free(&req);
	/* none: the first is required */
	assert_int_equal(ctl_parse(cmd, 1, argv + 2, 0, &req, &used), CTL_USAGE);
	ctl_req_free(&req);
}

/* A line of the man page that heads the description of cmd: "*<name>* ...". */
static int
heads(const char *line, const char *name)
{
	size_t n = strlen(name);

	return line[0] == '*' && strncmp(line + 1, name, n) == 0 && line[n + 1] == '*' &&
	       (line[n + 2] == ' ' || line[n + 2] == '\n' || line[n + 2] == '\0');
}

/* juki-ctl(1) names on each command's lines the options of its table entry, no others. */
static void
test_man_page(void **state)
{
	const char *src = getenv("JUKI_SOURCE_DIR");
	const struct ctl_cmd *cmd;
	char path[PATH_MAX], line[1024];
	FILE *f;

	(void)state;
	if (src == NULL) {
		skip();
	}
	snprintf(path, sizeof(path), "%s/docs/man/juki-ctl.1.scd", src);
	for (size_t i = 0; (cmd = ctl_each(i)) != NULL; i++) {
		char headings[4096] = "";

		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f) != NULL) {
			if (heads(line, cmd->name)) {
				strncat(headings, line, sizeof(headings) - strlen(headings) - 1);
			}
		}
		fclose(f);
		if (headings[0] == '\0') {
			fail_msg("juki-ctl(1) has no heading for %s", cmd->name);
		}
		for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
			char want[64];

			snprintf(want, sizeof(want), "*--%s*", o->name);
			if (is_option(o) && strstr(headings, want) == NULL) {
				fail_msg("juki-ctl(1): %s: no %s", cmd->name, want);
			}
		}
		for (const char *p = headings; (p = strstr(p, "*--")) != NULL; p += 3) {
			size_t n = strcspn(p + 3, "*");
			char name[64];
			int known = 0;

			snprintf(name, sizeof(name), "%.*s", (int)n, p + 3);
			for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
				known |= is_option(o) && strcmp(o->name, name) == 0;
			}
			if (!known && strcmp(name, "json") != 0) {
				fail_msg("juki-ctl(1): %s: --%s is not an option of it", cmd->name,
					 name);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_option),   cmocka_unit_test(test_operator_unknown_option),
	    cmocka_unit_test(test_repeated_option),  cmocka_unit_test(test_missing_value),
	    cmocka_unit_test(test_bad_value),        cmocka_unit_test(test_no_abbreviation),
	    cmocka_unit_test(test_required_missing), cmocka_unit_test(test_too_many_arguments),
	    cmocka_unit_test(test_global_options),   cmocka_unit_test(test_request),
	    cmocka_unit_test(test_man_page),         cmocka_unit_test(test_many_argument),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
