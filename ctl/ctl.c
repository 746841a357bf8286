#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/lines.h"
#include "juki/node/control.h"
#include "juki/node/log.h"

#define DEFAULT_TIMEOUT_MS 30000
#define TERMINAL_OPTS      5 /* the options from "terminal" on are the terminal's */
#define SECRET_BUF         257
/* A line of a residents file: one record, far under it. */
#define JSONL_LINE_MAX (64 * 1024)

static int cmd_login(struct ctl *ctl, const struct ctl_req *req);

/* The options before the command; a terminal's files, FILE. */
#define FILE_ROW(name, text)                                                                       \
	{                                                                                          \
		name, 0, CTL_FILE, .meta = "FILE", .help = text                                    \
	}
static const struct ctl_cmd global = {
    .name = "juki-ctl",
    .opts =
	{
	    {"socket", 's', CTL_FILE, .meta = "PATH",
	     .help = "the daemon's control socket (or $JUKI_CTL_SOCKET)"},
	    {"json", 'j', CTL_FLAG, .help = "print results as JSON"},
	    {"timeout", 't', CTL_DURATION, .meta = "DUR",
	     .help = "how long to wait for the daemon (default 30s)"},
	    {"help", 'h', CTL_FLAG, .help = "this help"},
	    {"version", 'V', CTL_FLAG, .help = "the version"},
	    FILE_ROW("terminal", "the terminal file (or $JUKI_TERMINAL): connect, cert,\n"
				 "                       card or key, ca, crl; the options below "
				 "win over it"),
	    {"connect", .meta = "HOST:PORT", .help = "the daemon's operator port"},
	    FILE_ROW("cert", "the operator's certificate"),
	    {"card", .type = CTL_CARD, .meta = "URI",
	     .help = "pkcs11: URI of the operator's key on the token (no PIN in it)"},
	    FILE_ROW("key", "the operator's encrypted key file (no token)"),
	    FILE_ROW("ca", "the CA certificate(s)"),
	    FILE_ROW("crl", "the CA's CRL"),
	    {"pin-fd", .type = CTL_FD, .meta = "N",
	     .help = "read the operator PIN from fd N (default: the terminal)"},
	    {"card-pin-fd", .type = CTL_FD, .meta = "N",
	     .help = "read the card PIN or key passphrase from fd N"},
	},
};

static const struct ctl_cmd terminal_cmds[] = {
    {"login", cmd_login, NULL,
     "open a session on the daemon's operator port with the card and the PIN, and say "
     "who you are: operator, roles, data sets (checks a card)",
     .offline = 1},
    {.name = NULL},
};

static const struct ctl_cmd *const tables[] = {
    terminal_cmds,       ctl_status_cmds,    ctl_resident_cmds, ctl_honnin_cmds,
    ctl_import_cmds,     ctl_maint_cmds,     ctl_pki_cmds,      ctl_audit_cmds,
    ctl_operator_cmds,   ctl_agreement_cmds, ctl_provide_cmds,  ctl_provide_report_cmds,
    ctl_disclosure_cmds, ctl_report_cmds,    ctl_cardreg_cmds,  ctl_copy_cmds,
    ctl_tokurei_cmds,    ctl_calendar_cmds,  ctl_monitor_cmds,  ctl_doctor_cmds,
    ctl_integrity_cmds,  ctl_notice_cmds,    ctl_load_cmds,
};

const struct ctl_cmd *
ctl_each(size_t i)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct ctl_cmd *c = tables[t]; c->name != NULL; c++) {
			if (i-- == 0) {
				return c;
			}
		}
	}
	return NULL;
}

const struct ctl_cmd *
ctl_find(const char *name)
{
	const struct ctl_cmd *c;

	for (size_t i = 0; (c = ctl_each(i)) != NULL; i++) {
		if (strcmp(c->name, name) == 0) {
			return c;
		}
	}
	return NULL;
}

static void
usage(FILE *out)
{
	const struct ctl_cmd *c;

	fprintf(out, "usage: juki-ctl [-s socket | terminal options] [--json] [-t timeout] command "
		     "[args]\n\n");
	ctl_options_help(out, global.opts, TERMINAL_OPTS);
	fprintf(out, "\nterminal options (an operator at a daemon's operator port; "
		     "docs/terminal.md):\n");
	ctl_options_help(out, global.opts + TERMINAL_OPTS, CTL_OPTS_MAX - TERMINAL_OPTS);
	fprintf(out, "\ncommands (each option once; --json may also follow the command):\n");
	for (size_t i = 0; (c = ctl_each(i)) != NULL; i++) {
		fprintf(out, "  %s", c->name);
		ctl_synopsis(out, c);
		fprintf(out, "\n      %s\n", c->help);
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

int
ctl_send(struct ctl *ctl, const char *call, void (*text)(const json_t *result), json_t *args)
{
	json_t *result = NULL;
	int rc = ctl_call(ctl, call, args, &result);

	if (rc == CTL_OK && !ctl->json && text != NULL) {
		text(result);
		fflush(stdout);
	} else if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

int
ctl_run(struct ctl *ctl, const struct ctl_req *req)
{
	return ctl_send(ctl, req->cmd->call, req->cmd->text, json_incref(req->args));
}

static int
cmd_login(struct ctl *ctl, const struct ctl_req *req)
{
	int rc;

	(void)req;
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

int
ctl_new_secret(int fd, const char *what, const char *prompt, char *buf, size_t len)
{
	char again[SECRET_BUF], err[256], ask[64];
	int same;

	if (ctl_read_pin(fd, prompt, buf, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: %s: %s\n", what, err);
		return CTL_USAGE;
	}
	if (fd >= 0) {
		return CTL_OK;
	}
	snprintf(ask, sizeof(ask), "%s again: ", what);
	if (ctl_read_pin(-1, ask, again, sizeof(again), err, sizeof(err)) != 0) {
		OPENSSL_cleanse(buf, len);
		fprintf(stderr, "juki-ctl: %s: %s\n", what, err);
		return CTL_USAGE;
	}
	same = strcmp(buf, again) == 0;
	OPENSSL_cleanse(again, sizeof(again));
	if (!same) {
		OPENSSL_cleanse(buf, len);
		fprintf(stderr, "juki-ctl: the two %ss differ\n", what);
		return CTL_USAGE;
	}
	return CTL_OK;
}

const char *
ctl_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

long long
ctl_int(const json_t *obj, const char *key)
{
	return (long long)json_integer_value(json_object_get(obj, key));
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

void
ctl_print_new(const struct ctl *ctl, json_t *result)
{
	ctl_print(ctl, result);
	json_decref(result);
}

json_t *
ctl_read_jsonl(const char *path)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	struct juki_lines *lr;
	json_t *items;
	size_t lineno = 0;
	char *line;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	lr = juki_lines_new(fd, JSONL_LINE_MAX);
	items = lr != NULL ? json_array() : NULL;
	while (items != NULL && (n = juki_lines_next(lr, &line)) >= 0) {
		json_error_t jerr;
		json_t *doc;
		char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p == '\r' || *p == '\0' || *p == '#') {
			continue;
		}
		doc = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(doc)) {
			fprintf(stderr, "juki-ctl: %s:%zu: %s\n", path, lineno,
				doc == NULL ? jerr.text : "not a JSON object");
			json_decref(doc);
			json_decref(items);
			items = NULL;
		} else {
			json_array_append_new(items, doc);
		}
	}
	if (items != NULL && n != -1) {
		if (n == JUKI_ETOOBIG) {
			fprintf(stderr, "juki-ctl: %s:%zu: line over %d bytes\n", path, lineno + 1,
				JSONL_LINE_MAX);
		} else {
			fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		}
		json_decref(items);
		items = NULL;
	} else if (lr == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
	}
	juki_lines_free(lr);
	if (fd != STDIN_FILENO) {
		close(fd);
	}
	return items;
}

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

/* The entry named by the words at argv: two words ("resident add"), else one. */
static const struct ctl_cmd *
command(int argc, char **argv, int *words)
{
	const struct ctl_cmd *cmd = NULL;
	char name[64];

	if (argc >= 2 &&
	    snprintf(name, sizeof(name), "%s %s", argv[0], argv[1]) < (int)sizeof(name)) {
		cmd = ctl_find(name);
	}
	*words = cmd != NULL ? 2 : 1;
	if (cmd == NULL) {
		cmd = ctl_find(argv[0]);
	}
	if (cmd == NULL) {
		/* only a word that could be a command's is shown: not a secret typed here */
		int plain = strlen(argv[0]) < 32 &&
			    strspn(argv[0], "abcdefghijklmnopqrstuvwxyz-") == strlen(argv[0]);

		fprintf(stderr, "juki-ctl: unknown command%s%s (see juki-ctl --help)\n",
			plain ? " " : "", plain ? argv[0] : "");
	}
	return cmd;
}

int
ctl_parse_argv(int argc, char **argv, struct ctl_req *g, const struct ctl_cmd **cmd,
	       struct ctl_req *req)
{
	int used, words;

	*cmd = NULL;
	memset(req, 0, sizeof(*req));
	/* Options come before the command; what follows belongs to the command. */
	if (argc < 1 || ctl_parse(&global, argc - 1, argv + 1, 1, g, &used) != CTL_OK) {
		return CTL_USAGE;
	}
	if (ctl_val(g, "help") != NULL || ctl_val(g, "version") != NULL) {
		return CTL_OK;
	}
	argc -= 1 + used;
	argv += 1 + used;
	if (argc < 1) {
		usage(stderr);
	} else if ((*cmd = command(argc, argv, &words)) != NULL &&
		   ctl_parse(*cmd, argc - words, argv + words, 0, req, NULL) == CTL_OK) {
		return CTL_OK;
	}
	*cmd = NULL;
	ctl_req_free(g);
	return CTL_USAGE;
}

/* The options before the command into ctl. */
static void
setup(struct ctl *ctl, const struct ctl_req *g, const struct ctl_req *req)
{
	if (ctl_val(g, "socket") != NULL) {
		ctl->socket = ctl_val(g, "socket");
	}
	ctl->json = ctl_val(g, "json") != NULL || req->json;
	ctl->timeout_ms = ctl_num(g, "timeout", DEFAULT_TIMEOUT_MS);
	ctl->term.connect = ctl_val(g, "connect");
	ctl->term.cert = ctl_val(g, "cert");
	ctl->term.card = ctl_val(g, "card");
	ctl->term.key = ctl_val(g, "key");
	ctl->term.ca = ctl_val(g, "ca");
	ctl->term.crl = ctl_val(g, "crl");
	ctl->term.pin_fd = (int)ctl_num(g, "pin-fd", -1);
	ctl->term.card_pin_fd = (int)ctl_num(g, "card-pin-fd", -1);
}

int
ctl_main(int argc, char **argv)
{
	struct ctl ctl = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	struct ctl_terminal_hold *hold = NULL;
	const struct ctl_cmd *cmd;
	struct ctl_req g, req;
	int rc;

	log_init("juki-ctl", JUKI_LOG_WARNING);
	/* A daemon that hangs up mid-session is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	ctl.socket = getenv("JUKI_CTL_SOCKET");
	if (ctl_parse_argv(argc, argv, &g, &cmd, &req) != CTL_OK) {
		return CTL_USAGE;
	}
	if (cmd == NULL) {
		if (ctl_val(&g, "help") != NULL) {
			usage(stdout);
		} else {
			printf("juki-ctl %s\n", JUKI_VERSION);
		}
		ctl_req_free(&g);
		return CTL_OK;
	}
	setup(&ctl, &g, &req);
	rc = terminal_setup(&ctl, ctl_val(&g, "terminal"), ctl_val(&g, "socket") != NULL, &hold);
	if (rc == CTL_OK && !cmd->offline && ctl.socket == NULL && ctl.term.connect == NULL) {
		fprintf(stderr,
			"juki-ctl: %s needs a daemon: its socket (-s PATH or $JUKI_CTL_SOCKET) or "
			"a terminal (--terminal FILE, $JUKI_TERMINAL or --connect HOST:PORT)\n",
			cmd->name);
		rc = CTL_USAGE;
	}
	if (rc == CTL_OK) {
		rc = cmd->fn(&ctl, &req);
	}
	ctl_req_free(&req);
	ctl_req_free(&g);
	ctl_session_close(ctl.session);
	ctl_terminal_hold_free(hold);
	return rc;
}
