/*
 * juki-ctl provide reports|reply: a receiving body's side of management reports
 * (第6-8(1)ウ・エ, (2); docs/body.md §7, docs/protocol.md §15.2-§15.3).  A prefecture, the
 * national server or a municipality asks the body for a report on its management measures;
 * the request is held for it at the server that provided.  The body's staff member sees the
 * requests held there (report.fetch) and answers one (report.answer) over the body's link
 * (link.c) with their staff card, as provide query does.
 *
 * The names: the servers' side is `report request|list|show|answer`; the body's commands
 * go over the body's link with --body-conf like every `provide` command, so they are in
 * that family.  "reports" are the requests held for the body; "reply" answers one, with
 * the arguments of `report answer` (ID --file F [--media M]) — not "answer", which in the
 * body's family means the answers of provision (the answer directory, the answer files
 * provide purge erases).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "link.h"
#include "provide.h"

/*
 * One message of type with body (stolen) to the body file's server, over a link opened
 * with the staff card (its PIN from --card-pin-fd, else the terminal's, else asked).
 * Returns CTL_OK with *result and the server reached in server, or the exit code after
 * saying why.
 */
static int
send_one(struct ctl *ctl, const struct ctl_req *req, const char *cmd, struct ctl_body *b,
	 const char *type, json_t *body, json_t **result, char *staff, size_t stafflen,
	 char server[JUKI_URN_MAX])
{
	struct juki_ctl_error err;
	struct ctl_link *link = NULL;
	int rc;

	if ((rc = ctl_provide_load_body(req, b)) != CTL_OK) {
		json_decref(body);
		return rc;
	}
	memset(&err, 0, sizeof(err));
	rc = ctl_link_open(b, ctl_provide_pin_fd(ctl, req), juki_clock_mono_ms() + b->deadline,
			   &link, &err);
	if (rc == 0) {
		snprintf(staff, stafflen, "%s", ctl_link_staff(link));
		/* The centre reached: server, or one of fallback. */
		snprintf(server, JUKI_URN_MAX, "%s", ctl_link_server(link));
		rc = ctl_link_send(link, type, body, b->part_timeout, result, &err);
	} else {
		json_decref(body);
	}
	ctl_link_close(link);
	return rc == 0 ? CTL_OK : ctl_provide_fail(ctl, cmd, &err, NULL);
}

/* provide reports */

static void
reports_text(const json_t *r)
{
	const json_t *row;
	size_t i;

	printf("%lld management-report requests held for %s at %s\n", ctl_int(r, "total"),
	       ctl_str(r, "body"), ctl_str(r, "server"));
	printf("%-36s  %-11s  %-10s  %-24s  %s\n", "ID", "KIND", "DUE", "REQUESTER", "SUBJECT");
	json_array_foreach(json_object_get(r, "reports"), i, row)
	{
		printf("%-36s  %-11s  %-10s  %-24s  %s\n", ctl_str(row, "id"), ctl_str(row, "kind"),
		       ctl_str(row, "due"), ctl_str(row, "requester"), ctl_str(row, "subject"));
	}
}

static int
cmd_reports(struct ctl *ctl, const struct ctl_req *req)
{
	json_t *result = NULL, *reports, *out;
	struct ctl_body b = {0};
	char staff[256] = "", server[JUKI_URN_MAX] = "";
	int rc;

	rc = send_one(ctl, req, "provide reports", &b, "report.fetch", json_object(), &result,
		      staff, sizeof(staff), server);
	if (rc != CTL_OK) {
		ctl_body_free(&b);
		return rc;
	}
	reports = json_object_get(result, "reports");
	if (!json_is_array(reports)) {
		fprintf(stderr, "juki-ctl: provide reports: bad-response: no reports in the "
				"server's answer\n");
		json_decref(result);
		ctl_body_free(&b);
		return CTL_FAILED;
	}
	out = json_pack("{s:s,s:s,s:s,s:I,s:O}", "body", b.body, "server", server, "staff", staff,
			"total", (json_int_t)json_array_size(reports), "reports", reports);
	if (ctl->json) {
		ctl_print(ctl, out);
	} else {
		reports_text(out);
	}
	json_decref(out);
	json_decref(result);
	ctl_body_free(&b);
	return CTL_OK;
}

/* provide reply */

static int
cmd_reply(struct ctl *ctl, const struct ctl_req *req)
{
	const char *id = ctl_val(req, "ID");
	json_t *doc, *result = NULL, *out;
	struct ctl_body b = {0};
	char staff[256] = "", server[JUKI_URN_MAX] = "";
	size_t size;
	int rc;

	/* The document is checked before the card is asked for or anything is sent. */
	doc = ctl_answer_document("provide reply", ctl_val(req, "file"), ctl_val(req, "media"),
				  &size);
	if (doc == NULL) {
		return CTL_USAGE;
	}
	out = json_pack("{s:s,s:O}", "id", id, "media", json_object_get(doc, "media"));
	json_object_set_new(doc, "id", json_string(id));
	rc = send_one(ctl, req, "provide reply", &b, "report.answer", doc, &result, staff,
		      sizeof(staff), server);
	if (rc == CTL_OK) {
		json_object_set_new(out, "size", json_integer((json_int_t)size));
		json_object_set_new(out, "state", json_string("answered"));
		json_object_set_new(out, "server", json_string(server));
		json_object_set_new(out, "staff", json_string(staff));
		if (ctl->json) {
			ctl_print(ctl, out);
		} else {
			printf("answered %s at %s: %s, %zu bytes, by %s\n", id, server,
			       ctl_str(out, "media"), size, staff);
		}
	}
	json_decref(out);
	json_decref(result);
	ctl_body_free(&b);
	return rc;
}

/* The table */

#define BODY_ROW                                                                                   \
	{                                                                                          \
		"body-conf", 0, CTL_FILE, CTL_REQUIRED, NULL, "FILE", 0, 0, NULL                   \
	}
#define PIN_FD_ROW CTL_OPT_ROW("card-pin-fd", CTL_FD, NULL, "N")

const struct ctl_cmd ctl_provide_report_cmds[] = {
    {"provide reports", cmd_reports, NULL,
     "the management-report requests held for the body at its providing server, open ones "
     "oldest first: id, kind, due date, requester, subject (--json: with their text); with "
     "the staff card of the body file (第6-8(1)ウ・エ)",
     .opts = {BODY_ROW, PIN_FD_ROW}, .offline = 1},
    {"provide reply", cmd_reply, NULL,
     "answer, as the body, a management-report request held for it: the document is text or "
     "PDF, at most 256 KiB, checked before it is sent; with the staff card of the body file",
     .opts = {BODY_ROW, CTL_ARG_ROW("ID", NULL), CTL_NEED_ROW("file", CTL_FILE, NULL, "FILE"),
	      CTL_OPT_ROW("media", CTL_STRING, NULL, "text/plain|application/pdf"), PIN_FD_ROW},
     .offline = 1},
    {.name = NULL},
};
