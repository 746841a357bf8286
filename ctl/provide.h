/*
 * juki-ctl — what the `provide` commands share (cmd_provide.c, cmd_provide_report.c):
 * the body file from --body-conf, the staff card's PIN descriptor, and how a failure
 * over the body's link is printed and which exit code it means.  Defined in
 * cmd_provide.c.
 */
#ifndef JUKI_CTL_PROVIDE_H
#define JUKI_CTL_PROVIDE_H

#include "ctl.h"
#include "link.h"

/* The exit code of an error code, as ctl.c's report() maps them. */
int ctl_provide_exit(const char *code);

/*
 * The failure err of cmd: JSON on stdout with --json, "juki-ctl: CMD: CODE: MESSAGE"
 * (then more, if not NULL) on stderr; returns the exit code it means.
 */
int ctl_provide_fail(const struct ctl *ctl, const char *cmd, const struct juki_ctl_error *err,
		     const char *more);

/* Read the body file of --body-conf into b; CTL_OK, or CTL_USAGE after saying why. */
int ctl_provide_load_body(const struct ctl_req *req, struct ctl_body *b);

/* The descriptor the staff card's PIN is read from: --card-pin-fd, else the terminal's. */
int ctl_provide_pin_fd(const struct ctl *ctl, const struct ctl_req *req);

#endif
