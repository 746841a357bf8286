/*
 * juki-ctl — the operator's and administrator's command line (端末機).
 *
 * Commands are entries in a table, one file per area (cmd_*.c).  Each
 * entry declares its options and arguments (struct ctl_opt): one parser
 * (args.c) checks every command line the same way, builds the request
 * from the declared keys and hands it to the entry's handler; one handler
 * (ctl_run) serves every entry that only sends its request and prints the
 * result.  The usage lines and juki-ctl --help come from the same table.
 *
 * Data goes to stdout (text, or JSON with --json), diagnostics to stderr.
 * Exit codes:
 *   0  done
 *   1  refused or failed (the daemon said why)
 *   2  usage error
 *   3  daemon unreachable
 *   4  wrong PIN: the operator's (the daemon said so) or the card's
 *   5  operator locked
 *
 * With a terminal (--terminal FILE, $JUKI_TERMINAL or --connect; see
 * terminal.h and docs/terminal.md) requests go to a daemon's operator port
 * over TLS with the operator's card, in one session per run; otherwise to
 * the local control socket.
 */
#ifndef JUKI_CTL_CTL_H
#define JUKI_CTL_CTL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "terminal.h"

#define CTL_OK          0
#define CTL_FAILED      1
#define CTL_USAGE       2
#define CTL_UNREACHABLE 3
#define CTL_WRONG_PIN   4
#define CTL_LOCKED      5

struct ctl {
	const char *socket; /* control socket of the daemon addressed */
	int json;           /* print results as JSON */
	int64_t timeout_ms;
	struct ctl_terminal term;    /* term.connect set: requests go to the operator port */
	struct ctl_session *session; /* opened by the first request, closed at exit */
	int session_rc;              /* exit code of a failed open: never retried in a run */
};

/* What an option's value must be, and what it becomes in the request. */
enum ctl_type {
	CTL_STRING,   /* the text as given (the daemon judges it) */
	CTL_FILE,     /* a path; "-" is standard input */
	CTL_LIST,     /* "a,b": the array ["a", "b"] */
	CTL_DATE,     /* YYYY-MM-DD, a day of the calendar */
	CTL_SEX,      /* 1 (male) or 2 (female): an integer */
	CTL_INT,      /* a whole number from min to max */
	CTL_FD,       /* a file descriptor number */
	CTL_FLAG,     /* no value: true */
	CTL_DURATION, /* 250ms, 10s, 2m: milliseconds, more than 0 */
	CTL_CARD,     /* a pkcs11: URI; one that carries a PIN is refused */
};

#define CTL_REQUIRED 1u /* an option that must be given */
#define CTL_ARG      2u /* a positional argument; name is what usage calls it ("ID") */
#define CTL_OPTIONAL 4u /* a positional argument that may be left out */
/* the last positional argument, repeated: it takes every argument left ("FILE...") */
#define CTL_MANY     8u
#define CTL_MANY_MAX 64 /* the values a CTL_MANY argument takes at most */

struct ctl_opt {
	const char *name;   /* "limit" for --limit; a positional's "ID" */
	char short_name;    /* 'm' for -m, or 0 */
	enum ctl_type type; /* how the value is checked and converted */
	unsigned flags;     /* CTL_REQUIRED, CTL_ARG, CTL_OPTIONAL, CTL_MANY */
	const char *key;    /* the request's key: "limit", "person.name"; NULL: the handler's */
	const char *meta;   /* the value in usage ("N"); NULL for a flag */
	long long min, max; /* CTL_INT: the range */
	const char *help;   /* one line for juki-ctl --help (the global options) */
};

#define CTL_OPTS_MAX 16

struct ctl_req;

struct ctl_cmd {
	const char *name; /* "status", "resident add" */
	/* The handler: ctl_run, or the entry's own. */
	int (*fn)(struct ctl *ctl, const struct ctl_req *req);
	const char *call; /* the control command ctl_run sends */
	const char *help;
	struct ctl_opt opts[CTL_OPTS_MAX];  /* in the order of the usage; ends at name NULL */
	void (*text)(const json_t *result); /* the result in words; NULL: ctl_print */
	const char *synopsis;               /* usage after the name; NULL: from opts */
	int offline;                        /* runs without a daemon */
};

/* One parsed command line. */
struct ctl_req {
	const struct ctl_cmd *cmd;
	const char *val[CTL_OPTS_MAX];  /* the text of each option and argument given, or NULL */
	const char *more[CTL_MANY_MAX]; /* every value of the CTL_MANY argument, in order */
	size_t nmore;
	long long num[CTL_OPTS_MAX]; /* the value of each number, fd and duration given */
	json_t *args;                /* the request: what was given under each key */
	int json;                    /* --json stood after the command */
};

/* Table rows: an argument, an option, a required option, a number, a flag. */
#define CTL_ARG_ROW(meta, key)                                                                     \
	{                                                                                          \
		meta, 0, CTL_STRING, CTL_ARG, key, meta, 0, 0, NULL                                \
	}
#define CTL_OPT_ROW(name, type, key, meta)                                                         \
	{                                                                                          \
		name, 0, type, 0, key, meta, 0, 0, NULL                                            \
	}
#define CTL_NEED_ROW(name, type, key, meta)                                                        \
	{                                                                                          \
		name, 0, type, CTL_REQUIRED, key, meta, 0, 0, NULL                                 \
	}
#define CTL_INT_ROW(name, key, min, max)                                                           \
	{                                                                                          \
		name, 0, CTL_INT, 0, key, "N", min, max, NULL                                      \
	}
#define CTL_FLAG_ROW(name, key)                                                                    \
	{                                                                                          \
		name, 0, CTL_FLAG, 0, key, NULL, 0, 0, NULL                                        \
	}

/*
 * ctl_parse() - argv[0..argc) against cmd's options and arguments, into
 * req (free with ctl_req_free()).  Every option is named whole (no
 * abbreviations) and given at most once; options and arguments may be
 * mixed, "--" ends the options.  With global set, parsing stops at the
 * first argument (the command) and *used says how many words were taken.
 * Returns CTL_OK, or CTL_USAGE with the reason and the usage on stderr;
 * no value given to an option is ever printed.
 */
int ctl_parse(const struct ctl_cmd *cmd, int argc, char **argv, int global, struct ctl_req *req,
	      int *used);
void ctl_req_free(struct ctl_req *req);

/* ctl_val()/ctl_num() - what was given for the option or argument name, or NULL/dflt. */
const char *ctl_val(const struct ctl_req *req, const char *name);
long long ctl_num(const struct ctl_req *req, const char *name, long long dflt);

/* ctl_synopsis() - what follows the command's name in its usage, a space first. */
void ctl_synopsis(FILE *out, const struct ctl_cmd *cmd);

/* ctl_usage() - "usage: juki-ctl <name> <synopsis>" on stderr; returns CTL_USAGE. */
int ctl_usage(const struct ctl_cmd *cmd);

/* ctl_options_help() - one line per option of opts[0..n), for --help. */
void ctl_options_help(FILE *out, const struct ctl_opt *opts, size_t n);

/*
 * ctl_call() - send cmd with args (stolen) to the daemon and hand back the
 * result; prints the daemon's error and returns the exit code otherwise.
 * With a terminal, the first call opens the session (card, TLS, login)
 * and later calls of the same run reuse it.
 */
int ctl_call(struct ctl *ctl, const char *cmd, json_t *args, json_t **result);

/*
 * ctl_send() - ctl_call() of call with args (stolen), then the result
 * printed: as JSON (--json), in words by text, or as ctl_print() text.
 */
int ctl_send(struct ctl *ctl, const char *call, void (*text)(const json_t *result), json_t *args);

/* ctl_run() - the handler of every entry that sends its request as parsed. */
int ctl_run(struct ctl *ctl, const struct ctl_req *req);

/* ctl_print() - result as JSON (--json), or as indented "key: value" text. */
void ctl_print(const struct ctl *ctl, const json_t *result);

/* ctl_print_new() - ctl_print(), then the result released. */
void ctl_print_new(const struct ctl *ctl, json_t *result);

/* ctl_str() - the string at key of obj, or "-" when there is none. */
const char *ctl_str(const json_t *obj, const char *key);

/* ctl_int() - the integer at key of obj (0 when there is none). */
long long ctl_int(const json_t *obj, const char *key);

/* ctl_find() - the table entry named name ("resident add"), or NULL. */
const struct ctl_cmd *ctl_find(const char *name);

/* ctl_each() - the i-th entry of every table, or NULL past the last. */
const struct ctl_cmd *ctl_each(size_t i);

/*
 * ctl_read_jsonl() - read a file ("-" for stdin) of JSON objects, one per
 * line (blank lines and lines starting with # skipped), into an array.
 * Prints "FILE:LINE: what" and returns NULL on the first bad line or a line
 * over 64 KiB (refused as read, not gathered whole: juki_lines_new()).
 */
json_t *ctl_read_jsonl(const char *path);

/*
 * ctl_new_secret() - a new PIN or passphrase: from fd, or asked twice on
 * the terminal (prompt, then again).  what names it in the messages.
 * Returns 0 with the secret in buf, or CTL_USAGE after saying why.
 */
int ctl_new_secret(int fd, const char *what, const char *prompt, char *buf, size_t len);

/*
 * ctl_answer_document() - an answer to a management-report request (report.answer,
 * docs/protocol.md §15.3) read from path ("-": standard input) and checked before anything
 * is sent: 1 byte to 256 KiB; media as given (text/plain or application/pdf) or, when NULL,
 * application/pdf for a file that starts "%PDF-" and text/plain otherwise; a PDF must start
 * "%PDF-", a text must be UTF-8 without NUL.  Returns {"media", "data" (base64)} with the
 * document's size in *size, or NULL after saying why on stderr ("juki-ctl: cmd: ...").
 */
json_t *ctl_answer_document(const char *cmd, const char *path, const char *media, size_t *size);

extern const struct ctl_cmd ctl_status_cmds[];
extern const struct ctl_cmd ctl_calendar_cmds[];
extern const struct ctl_cmd ctl_pki_cmds[];
extern const struct ctl_cmd ctl_resident_cmds[];
extern const struct ctl_cmd ctl_cardreg_cmds[];
extern const struct ctl_cmd ctl_copy_cmds[];
extern const struct ctl_cmd ctl_tokurei_cmds[];
extern const struct ctl_cmd ctl_integrity_cmds[];
extern const struct ctl_cmd ctl_monitor_cmds[];
extern const struct ctl_cmd ctl_doctor_cmds[];
extern const struct ctl_cmd ctl_honnin_cmds[];
extern const struct ctl_cmd ctl_import_cmds[];
extern const struct ctl_cmd ctl_maint_cmds[];
extern const struct ctl_cmd ctl_operator_cmds[];
extern const struct ctl_cmd ctl_audit_cmds[];
extern const struct ctl_cmd ctl_load_cmds[];
extern const struct ctl_cmd ctl_agreement_cmds[];
extern const struct ctl_cmd ctl_provide_cmds[];
extern const struct ctl_cmd ctl_disclosure_cmds[];
extern const struct ctl_cmd ctl_report_cmds[];
extern const struct ctl_cmd ctl_provide_report_cmds[];
extern const struct ctl_cmd ctl_notice_cmds[];

/*
 * ctl_parse_argv() - a whole command line (argv[0] the program): the
 * options before the command into g, the command's entry into *cmd and
 * its own line into req.  Returns CTL_OK with g and req to free
 * (ctl_req_free()), *cmd NULL when g asks for --help or --version; or
 * CTL_USAGE, with the reason on stderr and nothing to free.  Runs nothing.
 */
int ctl_parse_argv(int argc, char **argv, struct ctl_req *g, const struct ctl_cmd **cmd,
		   struct ctl_req *req);

int ctl_main(int argc, char **argv);

#endif
