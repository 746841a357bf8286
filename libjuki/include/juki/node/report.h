/*
 * juki — management reports between bodies (第6-8(1)ウ・エ, (2), (4); docs/protocol.md §15).
 *
 * A prefecture, the national server or a municipality asks a body that
 * received identity information (an agency, an executive body) for a report
 * on its management measures (報告, kind "report") or asks it to carry them
 * out (要請, kind "improvement").  The request is addressed to the body and
 * held for it by the server that provided the information (the provider: a
 * prefectural server, or the national server); it travels there through the
 * servers the standard names, each hop through the outbox over `provide`:
 *
 *   pref asks, pref provided        held at the pref
 *   pref asks, national provided    pref -> jlis (第6-8(1)ウ, (2)ア second sentences)
 *   jlis asks                       held at jlis
 *   cs asks, pref provided          cs -> pref (第6-8(1)エ, (2)イ, (4)イ)
 *   cs asks, national provided      cs -> pref -> jlis
 *   cs asks its prefecture itself   cs -> pref, answered by the pref (第6-8(4)イ first sentence)
 *
 * A request to the certification authority (a body of kind ca, 第6-8(6)ウ・エ)
 * is held at the link server (authlink) through which the provider sends it
 * 異動等情報; the hop to the link server and back is on `ninsho`:
 *
 *   jlis asks (national)            jlis -> authlink:0 (its ninsho.authlink)
 *   pref asks, pref provides itself pref -> authlink:<pref> (its ninsho.authlink)
 *   pref asks, national provided    pref -> jlis -> authlink:0 (第6-8(6)ウ second paragraph)
 *   cs asks                         cs -> pref -> (jlis ->) authlink (第6-8(6)エ)
 *
 * The authority fetches and answers with its node certificate (ca ->
 * authlink on ninsho); the answer goes back authlink -> jlis or the pref
 * (ninsho), jlis -> pref (provide), and a municipality asks its prefecture.
 *
 * The body fetches what is held for it (report.fetch, a query) and answers
 * (report.answer) with its staff card; the answer goes back hop by hop
 * toward the requester: jlis -> pref over the outbox, and a municipality
 * asks its prefecture (report.status, a query through the outbox) until it
 * has the answer, so that no server ever opens `provide` toward a CS.
 *
 * Each server keeps one row per request it asked, passed on or holds
 * (table report, component "report"), with the same id (a UUIDv7 given by
 * the requester) everywhere.  States (juki_report_step()):
 *
 *   sent      asked or passed on; the holder has not acknowledged it yet
 *   received  the holder has it for the body
 *   answered  the body (or the prefecture asked) answered
 *   overdue   the due date (a Japan day) passed without an answer; the
 *             requester raises the alert "report-overdue" once
 *   refused   a server on the way refused it (the reason is kept)
 *
 * Every step is written to the operation history (action "report.*").
 */
#ifndef JUKI_NODE_REPORT_H
#define JUKI_NODE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/inbound.h"
#include "juki/node/node.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

/* Message types (service provide). */
#define JUKI_MSG_REPORT_REQUEST "report.request" /* cs -> pref -> jlis: a request passed on */
#define JUKI_MSG_REPORT_FETCH   "report.fetch"   /* body -> holder: what is held for it (query) */
#define JUKI_MSG_REPORT_ANSWER  "report.answer"  /* body -> holder; jlis -> pref */
#define JUKI_MSG_REPORT_STATUS  "report.status"  /* cs -> pref: a request's state (query) */

/* Reason codes of refused report messages (docs/protocol.md §9). */
#define JUKI_R_REPORT_ROUTE    "report-route"     /* not routed as 第6-8 says; detail says why */
#define JUKI_R_REPORT_UNKNOWN  "report-unknown"   /* no such request held here for the sender */
#define JUKI_R_REPORT_ANSWERED "report-answered"  /* the request was answered before */
#define JUKI_R_REPORT_EXISTS   "report-exists"    /* another request with this id is kept here */
#define JUKI_R_ANSWER_TOO_BIG  "answer-too-large" /* the answer document is over the limit */

/* Bounds of a request and its answer. */
#define JUKI_REPORT_SUBJECT_MAX 200          /* characters */
#define JUKI_REPORT_TEXT_MAX    (16 * 1024)  /* bytes of UTF-8 */
#define JUKI_REPORT_ANSWER_MAX  (256 * 1024) /* bytes of the document, before base64 */
#define JUKI_REPORT_FETCH_MAX   100          /* requests per report.fetch answer */

#define JUKI_REPORT_NSTEPS 2
extern const struct juki_migration juki_report_steps[JUKI_REPORT_NSTEPS];
#define JUKI_REPORT_SCHEMA                                                                         \
	{                                                                                          \
		"report", juki_report_steps, JUKI_REPORT_NSTEPS                                    \
	}

/* What happens to a request (juki_report_step()). */
enum juki_report_event {
	JUKI_REPORT_EV_HELD,     /* the holder acknowledged it (or it is held here) */
	JUKI_REPORT_EV_ANSWERED, /* the answer arrived */
	JUKI_REPORT_EV_REFUSED,  /* a server on the way refused it */
	JUKI_REPORT_EV_DUE,      /* its due date passed */
};

/*
 * juki_report_step() - the state a request in state moves to on ev, in
 * *next (a static string).  An event that changes nothing (held when
 * received or overdue) leaves the state as it is.  Returns 0, or
 * JUKI_EINVAL when ev cannot happen in state (anything after answered or
 * refused; due after received is overdue, after answered nothing).
 */
int juki_report_step(const char *state, enum juki_report_event ev, const char **next);

/*
 * juki_report_copies_event() - what the copies of one request passed on to
 * several national centres make of it, from how many are held, still sent
 * (no ack yet) and refused: JUKI_REPORT_EV_HELD once any centre holds it,
 * JUKI_REPORT_EV_REFUSED once every centre refused it (0, *ev set); 1 while
 * neither (a refusal with another copy still on its way).
 */
int juki_report_copies_event(size_t held, size_t sent, size_t refused, enum juki_report_event *ev);

/* A request as it travels (the body of report.request). */
struct juki_report {
	char id[JUKI_UUID_LEN + 1];
	char kind[16];                /* "report" (報告) or "improvement" (要請) */
	char requester[JUKI_URN_MAX]; /* the node whose head asks: cs, pref or jlis */
	char body[JUKI_URN_MAX]; /* the body asked: agency or exec (or the pref, 第6-8(4)イ) */
	char provider[JUKI_URN_MAX]; /* the server that provided, which holds it for the body */
	char subject[JUKI_REPORT_SUBJECT_MAX * 4 + 1];
	char *text; /* malloc'd, UTF-8 */
	char due[11];
};

/* juki_report_clear() - free what r holds. */
void juki_report_clear(struct juki_report *r);

/*
 * juki_report_from_json() - read and check a request: {"id", "kind",
 * "requester", "body", "provider", "subject", "text", "due"}.  Returns 0, or
 * JUKI_REJECT with rej filled (invalid-field naming the field; never the
 * value).  r is cleared first and must be cleared after, on failure too.
 */
int juki_report_from_json(const json_t *obj, struct juki_report *r, struct juki_reject *rej);

/* juki_report_to_json() - the body of report.request (new reference) or NULL on ENOMEM. */
json_t *juki_report_to_json(const struct juki_report *r);

/*
 * juki_report_same() - whether a and b are the same request: the same id,
 * kind, requester, body, provider, subject, text and due.  A link server
 * takes a second copy of a request through another national centre only
 * when it is the same (docs/protocol.md §15.5); 1 or 0.
 */
int juki_report_same(const struct juki_report *a, const struct juki_report *b);

/*
 * juki_report_route() - may self (a pref or jlis) take r from sender
 * (sender kind and urn: the node that passed it on; for a pref, upstream is
 * its national server)?  Returns 0 with *hold 1 when self holds it for the
 * body, 0 when self passes it on to upstream; or JUKI_REJECT with rej
 * (report-route).  The rules of the top of this file.
 */
int juki_report_route(const struct juki_ident *self, const char *upstream,
		      const struct juki_ident *sender, const struct juki_report *r, int *hold,
		      struct juki_reject *rej);

/*
 * Where a node sends requests on.  up: a CS's prefecture, a prefecture's
 * national server, NULL at the national server and at a link server.
 * authlink: at a prefecture or the national server, the link server it
 * provides 異動等情報 through (ninsho.authlink; NULL or "": it provides none).
 * ca: the certification authority provided to (ninsho.ca; at a link server
 * authlink.ca); NULL or "": not checked.
 */
struct juki_report_links {
	const char *up;
	const char *authlink;
	const char *ca;
};

/*
 * juki_report_route_via() - juki_report_route() with the link server and
 * the authority known: requests to a body of kind ca too.  *next is the
 * node the request goes on to (NULL when held here; points into links).
 */
int juki_report_route_via(const struct juki_ident *self, const struct juki_report_links *links,
			  const struct juki_ident *sender, const struct juki_report *r, int *hold,
			  const char **next, struct juki_reject *rej);

/* An answer (the body of report.answer). */
struct juki_report_answer {
	char id[JUKI_UUID_LEN + 1];
	char media[32];      /* "text/plain" (UTF-8) or "application/pdf" */
	unsigned char *data; /* malloc'd, len bytes */
	size_t len;
	char by[JUKI_URN_MAX]; /* who answered (staff card, or operator); "" when not given */
};

void juki_report_answer_clear(struct juki_report_answer *a);

/*
 * juki_report_answer_from_json() - {"id", "media", "data": base64, "by"?}:
 * at most JUKI_REPORT_ANSWER_MAX bytes (answer-too-large), text/plain
 * valid UTF-8 without NUL, application/pdf starting "%PDF-".  0 or
 * JUKI_REJECT with rej.  a is cleared first and must be cleared after.
 */
int juki_report_answer_from_json(const json_t *obj, struct juki_report_answer *a,
				 struct juki_reject *rej);

/* juki_report_answer_to_json() - the body of report.answer (new reference) or NULL. */
json_t *juki_report_answer_to_json(const struct juki_report_answer *a);

/*
 * The module at a node.  up is where requests go on: a CS's prefecture, a
 * prefecture's national server; NULL at the national server.  poll_ms: how
 * often a CS asks its prefecture about an open request (0: never; a
 * prefecture and the national server never poll).  juki_reports_start()
 * takes the node's JUKI_MODULE_REPORTS slot (node.h), where the handlers
 * and commands find it; NULL on ENOMEM or when the node runs it already.
 */
struct juki_reports;

struct juki_reports *juki_reports_start(struct juki_node *node, const char *up, int64_t poll_ms);
void juki_reports_set(struct juki_reports *rp, const char *up, int64_t poll_ms);

/*
 * juki_reports_set_ninsho() - the link server this node provides 異動等情報
 * through (jlis, pref: ninsho.authlink; NULL at a link server) and the
 * authority (ninsho.ca; at a link server authlink.ca).  Until it is called
 * a node holds and passes on no request to a certification authority.
 */
void juki_reports_set_ninsho(struct juki_reports *rp, const char *authlink, const char *ca);

/*
 * juki_reports_set_centres() - at a prefecture, the national centres (at
 * most JUKI_REPORT_CENTRES_MAX; n 0: up alone).  A request passed on to up
 * (the centre named `national`) about what the national server provided
 * then goes to every centre instead, a copy each (table report_centre: id,
 * dest, request_msg, state sent/received/refused, reason), each held or
 * refused on its own: the request is received once any centre holds it,
 * refused once every centre refused it, and an answer is taken back from
 * any of them (the first kept).  A request to the certification authority
 * still goes through up alone.
 */
#define JUKI_REPORT_CENTRES_MAX 8
void juki_reports_set_centres(struct juki_reports *rp, char *const *centres, size_t n);
void juki_reports_stop(struct juki_reports *rp);

/*
 * juki_reports_tick() - mark overdue requests (alert once each) and queue
 * the polls due; run by the module's timer, and by tests.
 */
void juki_reports_tick(struct juki_reports *rp);

/* juki_reports_on_ack() - the outbox's ack of a report message (a spec's on_ack calls it). */
int juki_reports_on_ack(void *ctx, const struct juki_outbox_entry *entry,
			const struct juki_ack *ack);

/* Handlers (ctx: the node), for the daemons' tables. */
int juki_report_handle_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int juki_report_handle_fetch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int juki_report_handle_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);
int juki_report_handle_status(void *ctx, const struct juki_msg *msg, struct juki_reject *rej);

#define JUKI_REPORT_HANDLERS_PREF                                                                  \
	{JUKI_MSG_REPORT_REQUEST, JUKI_SVC_PROVIDE, juki_report_handle_request, 0, 0, NULL},       \
	    {JUKI_MSG_REPORT_FETCH, JUKI_SVC_PROVIDE, juki_report_handle_fetch, 1, 0, NULL},       \
	    {JUKI_MSG_REPORT_ANSWER, JUKI_SVC_PROVIDE, juki_report_handle_answer, 0, 0, NULL},     \
	    {JUKI_MSG_REPORT_ANSWER, JUKI_SVC_NINSHO, juki_report_handle_answer, 0, 0, NULL},      \
	{                                                                                          \
		JUKI_MSG_REPORT_STATUS, JUKI_SVC_PROVIDE, juki_report_handle_status, 1, 0, NULL    \
	}
#define JUKI_REPORT_HANDLERS_JLIS                                                                  \
	{JUKI_MSG_REPORT_REQUEST, JUKI_SVC_PROVIDE, juki_report_handle_request, 0, 0, NULL},       \
	    {JUKI_MSG_REPORT_FETCH, JUKI_SVC_PROVIDE, juki_report_handle_fetch, 1, 0, NULL},       \
	    {JUKI_MSG_REPORT_ANSWER, JUKI_SVC_NINSHO, juki_report_handle_answer, 0, 0, NULL},      \
	{                                                                                          \
		JUKI_MSG_REPORT_ANSWER, JUKI_SVC_PROVIDE, juki_report_handle_answer, 0, 0, NULL    \
	}

/*
 * At a link server (juki-authlinkd): requests from jlis or a prefecture of its
 * own, held for the authority; its fetch and answer.  The daemon starts the
 * module with juki_reports_start(node, NULL, 0), calls
 * juki_reports_set_ninsho(rp, NULL, authlink.ca) (at start and reload), has
 * its on_ack call juki_reports_on_ack() for report.* entries, and lists
 * JUKI_REPORT_SCHEMA and JUKI_REPORT_CMDS_HOLDER.
 */
#define JUKI_REPORT_HANDLERS_AUTHLINK                                                              \
	{JUKI_MSG_REPORT_REQUEST, JUKI_SVC_NINSHO, juki_report_handle_request, 0, 0, NULL},        \
	    {JUKI_MSG_REPORT_FETCH, JUKI_SVC_NINSHO, juki_report_handle_fetch, 1, 0, NULL},        \
	{                                                                                          \
		JUKI_MSG_REPORT_ANSWER, JUKI_SVC_NINSHO, juki_report_handle_answer, 0, 0, NULL     \
	}

/*
 * Control commands (ctx: the node): report.request {to, kind, subject,
 * text, due, provider?: "pref"|"national"} -> {"id", "state"};
 * report.list {state?, limit?} -> {"total", "reports"}; report.show {id};
 * report.answer {id, media, data} (a prefecture answering a request to
 * itself, 第6-8(4)イ).
 */
int juki_report_cmd_request(void *ctx, const json_t *args, json_t **result,
			    struct juki_ctl_error *err);
int juki_report_cmd_list(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_report_cmd_show(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);
int juki_report_cmd_answer(void *ctx, const json_t *args, json_t **result,
			   struct juki_ctl_error *err);

#define JUKI_REPORT_CMDS                                                                           \
	{"report.request", juki_report_cmd_request,                                                \
	 "ask a body for a report on its management measures or for improvement (第6-8) "         \
	 "(args: to, kind, subject, text, due, provider)",                                         \
	 JUKI_ROLE_SUPERVISOR, NULL},                                                              \
	    {"report.list", juki_report_cmd_list,                                                  \
	     "management-report requests asked, passed on or held here, newest first "             \
	     "(args: state, limit)",                                                               \
	     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},                    \
	    {"report.show", juki_report_cmd_show, "one request with its answer (args: id)",        \
	     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},                    \
	{                                                                                          \
		"report.answer", juki_report_cmd_answer,                                           \
		    "answer a request addressed to this prefecture (第6-8(4)イ) (args: id, "     \
		    "media, data)",                                                                \
		    JUKI_ROLE_SUPERVISOR, NULL                                                     \
	}

/* A holder that asks nothing (a link server): list and show only. */
#define JUKI_REPORT_CMDS_HOLDER                                                                    \
	{"report.list", juki_report_cmd_list,                                                      \
	 "management-report requests held here for the certification authority, newest first "     \
	 "(args: state, limit)",                                                                   \
	 JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL},                        \
	{                                                                                          \
		"report.show", juki_report_cmd_show, "one request with its answer (args: id)",     \
		    JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL               \
	}

#endif
