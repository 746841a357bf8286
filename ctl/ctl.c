#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/node/control.h"
#include "juki/node/log.h"

#define DEFAULT_TIMEOUT_MS 30000

static int cmd_login(struct ctl *ctl, int argc, char **argv);

static const struct ctl_cmd terminal_cmds[] = {
    {"login", cmd_login, "",
     "open a session on the daemon's operator port with the card and the PIN, and say who "
     "you are: operator, roles, data sets (checks a card)",
     0},
    {NULL, NULL, NULL, NULL, 0},
};

static const struct ctl_cmd *const tables[] = {
    terminal_cmds, ctl_status_cmds, ctl_resident_cmds, ctl_movein_cmds,
    ctl_pref_cmds, ctl_honnin_cmds, ctl_import_cmds,   ctl_maint_cmds,
    ctl_pki_cmds,  ctl_audit_cmds,  ctl_operator_cmds,
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
	fprintf(out,
		"usage: juki-ctl [-s socket | terminal options] [--json] [-t timeout] command "
		"[args]\n"
		"\n"
		"  -s, --socket PATH    the daemon's control socket (or $JUKI_CTL_SOCKET)\n"
		"  -j, --json           print results as JSON\n"
		"  -t, --timeout DUR    how long to wait for the daemon (default 30s)\n"
		"\n"
		"terminal options (an operator at a daemon's operator port; docs/terminal.md):\n"
		"  --terminal FILE      the terminal file (or $JUKI_TERMINAL): connect, cert,\n"
		"                       card or key, ca, crl; the options below win over it\n"
		"  --connect HOST:PORT  the daemon's operator port\n"
		"  --cert FILE          the operator's certificate\n"
		"  --card URI           pkcs11: URI of the operator's key on the token\n"
		"  --key FILE           the operator's encrypted key file (no token)\n"
		"  --ca FILE            the CA certificate(s)\n"
		"  --crl FILE           the CA's CRL\n"
		"  --pin-fd N           read the operator PIN from fd N (default: the terminal)\n"
		"  --card-pin-fd N      read the card PIN or key passphrase from fd N\n"
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
		     "  2  usage error (also a bad terminal file)\n"
		     "  3  daemon unreachable (also a TLS refusal or a wrong peer)\n"
		     "  4  wrong PIN (the operator's, or the card's PIN or key passphrase)\n"
		     "  5  operator locked\n");
}

int
ctl_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: juki-ctl %s %s\n", cmd->name, cmd->args);
	return CTL_USAGE;
}

/* Print err as the exit of cmd, and the exit code it means. */
static int
report(const struct ctl *ctl, const char *cmd, const struct juki_ctl_error *err)
{
	if (strcmp(err->code, "unreachable") == 0) {
		fprintf(stderr, "juki-ctl: daemon unreachable: %s\n", err->message);
		return CTL_UNREACHABLE;
	}
	if (ctl->json) {
		json_t *e = json_pack("{s:s,s:s}", "error", err->code, "message", err->message);

		json_dumpf(e, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(e);
	}
	fprintf(stderr, "juki-ctl: %s: %s: %s\n", cmd, err->code, err->message);
	if (strcmp(err->code, "usage") == 0) {
		return CTL_USAGE;
	}
	if (strcmp(err->code, "wrong-pin") == 0) {
		return CTL_WRONG_PIN;
	}
	if (strcmp(err->code, "locked") == 0) {
		return CTL_LOCKED;
	}
	return CTL_FAILED;
}

/*
 * The session of this run, opened on first use.  A failed open is not
 * tried again by later requests of the run: each try would ask for the
 * PINs again, and every wrong one brings the lockout nearer.
 */
static int
session_get(struct ctl *ctl)
{
	struct juki_ctl_error err;

	if (ctl->session != NULL || ctl->session_rc != CTL_OK) {
		return ctl->session_rc;
	}
	if (ctl_session_open(&ctl->term, ctl->timeout_ms, &ctl->session, &err) != 0) {
		ctl->session_rc = report(ctl, "login", &err);
	}
	return ctl->session_rc;
}

int
ctl_call(struct ctl *ctl, const char *cmd, json_t *args, json_t **result)
{
	struct juki_ctl_error err;
	int rc;

	*result = NULL;
	if (ctl->term.connect != NULL) {
		rc = session_get(ctl);
		if (rc != CTL_OK) {
			json_decref(args);
			return rc;
		}
		rc = ctl_session_call(ctl->session, cmd, args, result, &err);
	} else {
		rc = juki_ctl_call(ctl->socket, cmd, args, ctl->timeout_ms, result, &err);
	}
	return rc == 0 ? CTL_OK : report(ctl, cmd, &err);
}

static int
cmd_login(struct ctl *ctl, int argc, char **argv)
{
	int rc;

	(void)argv;
	if (argc != 1) {
		return ctl_usage(ctl_find("login"));
	}
	if (ctl->term.connect == NULL) {
		fprintf(stderr, "juki-ctl: login needs a terminal: --terminal FILE, $JUKI_TERMINAL "
				"or --connect HOST:PORT (see juki-ctl --help)\n");
		return CTL_USAGE;
	}
	rc = session_get(ctl);
	if (rc == CTL_OK) {
		ctl_print(ctl, ctl_session_login(ctl->session));
	}
	return rc;
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

static int
fd_arg(const char *opt, const char *text, int *fd)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 0 || v > INT_MAX) {
		fprintf(stderr, "juki-ctl: %s: a file descriptor number\n", opt);
		return -1;
	}
	*fd = (int)v;
	return 0;
}

enum {
	OPT_TERMINAL = 256,
	OPT_CONNECT,
	OPT_CERT,
	OPT_CARD,
	OPT_KEY,
	OPT_CA,
	OPT_CRL,
	OPT_PIN_FD,
	OPT_CARD_PIN_FD,
};

/*
 * Which daemon: a terminal on the command line (--terminal, --connect)
 * and -s exclude each other; -s alone sets $JUKI_TERMINAL aside.  Options
 * win over the terminal file.
 */
static int
terminal_setup(struct ctl *ctl, const char *file, int socket_opt, struct ctl_terminal_hold **hold)
{
	const struct ctl_terminal *t = &ctl->term;
	int term_opt = file != NULL || t->connect != NULL;
	char err[1024];

	if (socket_opt && term_opt) {
		fprintf(stderr, "juki-ctl: -s and a terminal (--terminal, --connect) exclude each "
				"other\n");
		return CTL_USAGE;
	}
	if (file == NULL && !socket_opt) {
		file = getenv("JUKI_TERMINAL");
		if (file != NULL && *file == '\0') {
			file = NULL;
		}
	}
	if (file != NULL && ctl_terminal_load(file, &ctl->term, hold, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: terminal: %s\n", err);
		return CTL_USAGE;
	}
	if (t->connect == NULL && (t->cert != NULL || t->card != NULL || t->key != NULL ||
				   t->ca != NULL || t->crl != NULL)) {
		fprintf(stderr, "juki-ctl: the card options need a daemon: --connect HOST:PORT or "
				"a terminal file with connect:\n");
		return CTL_USAGE;
	}
	return CTL_OK;
}

int
ctl_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"terminal", required_argument, NULL, OPT_TERMINAL},
	    {"connect", required_argument, NULL, OPT_CONNECT},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"card", required_argument, NULL, OPT_CARD},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"crl", required_argument, NULL, OPT_CRL},
	    {"pin-fd", required_argument, NULL, OPT_PIN_FD},
	    {"card-pin-fd", required_argument, NULL, OPT_CARD_PIN_FD},
	    {NULL, 0, NULL, 0},
	};
	struct ctl ctl = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	struct ctl_terminal_hold *hold = NULL;
	const struct ctl_cmd *cmd = NULL;
	const char *terminal = NULL;
	int socket_opt = 0;
	char name[64];
	int ch, used, rc;

	log_init("juki-ctl", JUKI_LOG_WARNING);
	/* A daemon that hangs up mid-session is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	ctl.socket = getenv("JUKI_CTL_SOCKET");
	ctl.term.pin_fd = -1;
	ctl.term.card_pin_fd = -1;
	/* Options come before the command; what follows belongs to the command. */
	while ((ch = getopt_long(argc, argv, "+s:jt:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			socket_opt = 1;
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
		case OPT_TERMINAL:
			terminal = optarg;
			break;
		case OPT_CONNECT:
			ctl.term.connect = optarg;
			break;
		case OPT_CERT:
			ctl.term.cert = optarg;
			break;
		case OPT_CARD:
			ctl.term.card = optarg;
			break;
		case OPT_KEY:
			ctl.term.key = optarg;
			break;
		case OPT_CA:
			ctl.term.ca = optarg;
			break;
		case OPT_CRL:
			ctl.term.crl = optarg;
			break;
		case OPT_PIN_FD:
			if (fd_arg("--pin-fd", optarg, &ctl.term.pin_fd) != 0) {
				return CTL_USAGE;
			}
			break;
		case OPT_CARD_PIN_FD:
			if (fd_arg("--card-pin-fd", optarg, &ctl.term.card_pin_fd) != 0) {
				return CTL_USAGE;
			}
			break;
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
	rc = terminal_setup(&ctl, terminal, socket_opt, &hold);
	if (rc != CTL_OK) {
		goto out;
	}
	if (cmd->needs_daemon && ctl.socket == NULL && ctl.term.connect == NULL) {
		fprintf(stderr,
			"juki-ctl: %s needs a daemon: its socket (-s PATH or $JUKI_CTL_SOCKET) or "
			"a terminal (--terminal FILE, $JUKI_TERMINAL or --connect HOST:PORT)\n",
			cmd->name);
		rc = CTL_USAGE;
		goto out;
	}
	/* The command sees its own argv, its name as argv[0]. */
	argv += optind + used - 1;
	argc -= optind + used - 1;
	optind = 0;
	rc = cmd->fn(&ctl, argc, argv);
out:
	ctl_session_close(ctl.session);
	ctl_terminal_hold_free(hold);
	return rc;
}
