/*
 * juki-ctl — the operator's and administrator's command line (端末機).
 *
 * Commands are entries in a table, one file per area (cmd_*.c).  Data goes
 * to stdout (text, or JSON with --json), diagnostics to stderr.  Exit codes:
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

struct ctl_cmd {
	const char *name; /* "status", "resident add" */
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *args; /* usage after the name */
	const char *help;
	int needs_daemon;
};

/*
 * ctl_call() - send cmd with args (stolen) to the daemon and hand back the
 * result; prints the daemon's error and returns the exit code otherwise.
 * With a terminal, the first call opens the session (card, TLS, login)
 * and later calls of the same run reuse it.
 */
int ctl_call(struct ctl *ctl, const char *cmd, json_t *args, json_t **result);

/* ctl_print() - result as JSON (--json), or as indented "key: value" text. */
void ctl_print(const struct ctl *ctl, const json_t *result);

/* ctl_usage() - "usage: juki-ctl <name> <args>" on stderr; returns CTL_USAGE. */
int ctl_usage(const struct ctl_cmd *cmd);

/* ctl_find() - the table entry named name ("resident add"), or NULL. */
const struct ctl_cmd *ctl_find(const char *name);

/*
 * ctl_read_jsonl() - read a file ("-" for stdin) of JSON objects, one per
 * line (blank lines and lines starting with # skipped), into an array.
 * Prints "FILE:LINE: what" and returns NULL on the first bad line.
 */
json_t *ctl_read_jsonl(const char *path);

extern const struct ctl_cmd ctl_status_cmds[];
extern const struct ctl_cmd ctl_pki_cmds[];
extern const struct ctl_cmd ctl_resident_cmds[];
extern const struct ctl_cmd ctl_movein_cmds[];
extern const struct ctl_cmd ctl_pref_cmds[];
extern const struct ctl_cmd ctl_honnin_cmds[];
extern const struct ctl_cmd ctl_import_cmds[];
extern const struct ctl_cmd ctl_maint_cmds[];
extern const struct ctl_cmd ctl_operator_cmds[];
extern const struct ctl_cmd ctl_audit_cmds[];

int ctl_main(int argc, char **argv);

#endif
