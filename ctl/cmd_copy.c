/*
 * Wide-area copies of the residence record (住民票の写しの広域交付, 第6-4) and
 * the forms they are printed on (第4-8(3)): copy request|list|show|review|
 * print, forms receive|count|spoil.
 *
 * copy print lays the copy out as a 住民票の写し (print.h), checks every
 * character before a form's serial is taken, renders the PDF into memory
 * (a memfd: never a file on disk) and sends it through libcups to the
 * terminal's own CUPS queue, the `printer` of its terminal file; no option
 * names another printer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cups/cups.h>

#include "copydoc.h"
#include "ctl.h"
#include "print.h"

/* Send the PDF in fd (len bytes) to printer; the job's id, or 0 with err. */
static int
cups_send(const char *printer, const char *title, int fd, char *err, size_t errlen)
{
	char buf[16384];
	ssize_t n;
	int job;

	job = cupsCreateJob(CUPS_HTTP_DEFAULT, printer, title, 0, NULL);
	if (job == 0) {
		snprintf(err, errlen, "%s", cupsLastErrorString());
		return 0;
	}
	if (cupsStartDocument(CUPS_HTTP_DEFAULT, printer, job, title, CUPS_FORMAT_PDF, 1) !=
	    HTTP_STATUS_CONTINUE) {
		snprintf(err, errlen, "%s", cupsLastErrorString());
		cupsCancelJob2(CUPS_HTTP_DEFAULT, printer, job, 0);
		return 0;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		cupsFinishDocument(CUPS_HTTP_DEFAULT, printer);
		cupsCancelJob2(CUPS_HTTP_DEFAULT, printer, job, 0);
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (cupsWriteRequestData(CUPS_HTTP_DEFAULT, buf, (size_t)n) !=
		    HTTP_STATUS_CONTINUE) {
			snprintf(err, errlen, "%s", cupsLastErrorString());
			cupsFinishDocument(CUPS_HTTP_DEFAULT, printer);
			cupsCancelJob2(CUPS_HTTP_DEFAULT, printer, job, 0);
			return 0;
		}
	}
	if (cupsFinishDocument(CUPS_HTTP_DEFAULT, printer) != IPP_STATUS_OK) {
		snprintf(err, errlen, "%s", cupsLastErrorString());
		return 0;
	}
	return job;
}

static int
cmd_copy_print(struct ctl *ctl, const struct ctl_req *req)
{
	const char *id = ctl_val(req, "id"), *printer = ctl->term.printer;
	struct ctl_print_error perr;
	struct ctl_copy_doc *cd = NULL;
	json_t *shown = NULL, *result = NULL, *out;
	cups_dest_t *dest;
	char err[256];
	int rc, fd = -1, job;

	/* Only the terminal's own printer (第4-8(3)イ): the terminal file names it. */
	if (ctl->term.connect == NULL || printer == NULL) {
		fprintf(stderr,
			"juki-ctl: copy print: prints only from a terminal whose file names "
			"its printer (printer: in --terminal FILE)\n");
		return CTL_USAGE;
	}
	if ((cd = malloc(sizeof(*cd))) == NULL) {
		return CTL_FAILED;
	}
	/* Every character checked before a form's serial is taken. */
	rc = ctl_call(ctl, "copy.show", json_pack("{s:s}", "id", id), &shown);
	if (rc != CTL_OK) {
		free(cd);
		return rc;
	}
	if (strcmp(ctl_str(shown, "state"), "answered") != 0 ||
	    strcmp(ctl_str(shown, "side"), "issued") != 0) {
		fprintf(stderr, "juki-ctl: copy print: request %s is %s here: nothing to print\n",
			id, ctl_str(shown, "state"));
		json_decref(shown);
		free(cd);
		return CTL_FAILED;
	}
	json_object_set_new(shown, "mayor", json_string("市町村長"));
	ctl_copy_doc_build(shown, cd);
	if (ctl_print_check(&cd->doc, &perr) != 0) {
		/* Where the character stands, never the text: it is a resident's record. */
		fprintf(stderr, "juki-ctl: copy print: refused, nothing printed: %s\n",
			perr.message);
		json_decref(shown);
		free(cd);
		return CTL_FAILED;
	}
	json_decref(shown);
	/* The printer is there before a form is taken. */
	if ((dest = cupsGetNamedDest(CUPS_HTTP_DEFAULT, printer, NULL)) == NULL) {
		fprintf(stderr, "juki-ctl: copy print: the terminal's printer %s: %s\n", printer,
			cupsLastErrorString());
		free(cd);
		return CTL_FAILED;
	}
	cupsFreeDests(1, dest);
	rc = ctl_call(ctl, "copy.print", json_pack("{s:s,s:s}", "id", id, "printer", printer),
		      &result);
	if (rc != CTL_OK) {
		free(cd);
		return rc;
	}
	ctl_copy_doc_build(result, cd);
	fd = memfd_create("juki-copy", MFD_CLOEXEC);
	if (fd < 0 || ctl_print_pdf_fd(&cd->doc, fd, &perr) != 0) {
		fprintf(stderr,
			"juki-ctl: copy print: form %09lld taken but not printed (%s); spoil it "
			"with juki-ctl forms spoil if it was used\n",
			ctl_int(result, "serial"), fd < 0 ? strerror(errno) : perr.message);
		rc = CTL_FAILED;
		goto out;
	}
	job = cups_send(printer, "住民票の写し", fd, err, sizeof(err));
	if (job == 0) {
		fprintf(stderr,
			"juki-ctl: copy print: printer %s refused the job (%s); form %09lld was "
			"taken: spoil it with juki-ctl forms spoil if the sheet was used\n",
			printer, err, ctl_int(result, "serial"));
		rc = CTL_FAILED;
		goto out;
	}
	out = json_pack("{s:s,s:I,s:s,s:i}", "id", id, "serial",
			(json_int_t)ctl_int(result, "serial"), "printer", printer, "job", job);
	if (ctl->json) {
		ctl_print_new(ctl, out);
	} else {
		printf("request %s printed on form %09lld at %s (job %d)\n", id,
		       ctl_int(result, "serial"), printer, job);
		json_decref(out);
	}
	rc = CTL_OK;
out:
	if (fd >= 0) {
		close(fd);
	}
	json_decref(result);
	free(cd);
	return rc;
}

static int
cmd_copy_review(struct ctl *ctl, const struct ctl_req *req)
{
	int approve = ctl_val(req, "approve") != NULL, refuse = ctl_val(req, "refuse") != NULL;
	json_t *args;

	if (approve == refuse || (refuse && ctl_val(req, "reason") == NULL)) {
		return ctl_usage(req->cmd);
	}
	args = json_pack("{s:s,s:s}", "id", ctl_val(req, "id"), "decision",
			 approve ? "approve" : "refuse");
	if (ctl_val(req, "reason") != NULL) {
		json_object_set_new(args, "reason", json_string(ctl_val(req, "reason")));
	}
	return ctl_send(ctl, "copy.review", NULL, args);
}

static void
print_list(const json_t *result)
{
	const char *const sides[] = {"issued", "home"};

	printf("%-36s  %-6s  %-11s  %-20s  %-9s  %s\n", "ID", "SIDE", "CODE", "PEER", "STATE",
	       "REASON");
	for (int t = 0; t < 2; t++) {
		const json_t *row;
		size_t i;

		json_array_foreach(json_object_get(result, sides[t]), i, row)
		{
			printf(
			    "%-36s  %-6s  %-11s  %-20s  %-9s  %s%s\n", ctl_str(row, "id"), sides[t],
			    ctl_str(row, "code"), ctl_str(row, "peer"), ctl_str(row, "state"),
			    json_is_string(json_object_get(row, "reason")) ? ctl_str(row, "reason")
									   : "",
			    json_is_true(json_object_get(row, "overdue")) ? " OVERDUE" : "");
		}
	}
}

/* copy show: the request, and the copy as the clerk reviews it on screen (第6-4(3)). */
static void
print_show(const json_t *r)
{
	const json_t *req = json_object_get(r, "request"), *copy = json_object_get(r, "copy"), *p;
	size_t i;

	printf("request   %s (%s)\n", ctl_str(r, "id"), ctl_str(r, "side"));
	printf("state     %s%s\n", ctl_str(r, "state"),
	       json_is_true(json_object_get(r, "overdue")) ? " (overdue)" : "");
	if (json_is_string(json_object_get(r, "reason"))) {
		printf("reason    %s: %s\n", ctl_str(r, "reason"),
		       json_is_string(json_object_get(r, "detail")) ? ctl_str(r, "detail") : "");
	}
	printf("person    %s %s %s\n", ctl_str(json_object_get(req, "person"), "code"),
	       ctl_str(json_object_get(req, "person"), "name"),
	       ctl_str(json_object_get(req, "person"), "birth"));
	printf("requester %s (%s, %s)\n", ctl_str(json_object_get(req, "requester"), "name"),
	       ctl_str(json_object_get(req, "requester"), "relation"),
	       ctl_str(json_object_get(req, "requester"), "identity"));
	printf("home      %s  issuer %s  copies %lld\n", ctl_str(req, "home"),
	       ctl_str(req, "issuer"), ctl_int(req, "copies"));
	if (copy != NULL) {
		printf("address   %s\n", ctl_str(copy, "address"));
		if (json_object_get(copy, "householder") != NULL) {
			printf("世帯主    %s\n", ctl_str(copy, "householder"));
		}
		if (json_object_get(copy, "honseki") != NULL) {
			printf("本籍      %s\n", ctl_str(copy, "honseki"));
		}
		json_array_foreach(json_object_get(copy, "persons"), i, p)
		{
			printf("  %s  %s  %s  %s  %s\n", ctl_str(p, "name"), ctl_str(p, "birth"),
			       ctl_int(p, "sex") == 1 ? "男" : "女",
			       json_object_get(p, "relation") ? ctl_str(p, "relation") : "-",
			       ctl_str(p, "resident_since"));
		}
	}
	json_array_foreach(json_object_get(r, "prints"), i, p)
	{
		printf("printed   form %09lld at %s by %s on %s\n", ctl_int(p, "serial"),
		       ctl_str(p, "at"), ctl_str(p, "who"), ctl_str(p, "printer"));
	}
}

static void
print_forms(const json_t *r)
{
	printf("received %lld  printed %lld  spoiled %lld  unused %lld", ctl_int(r, "received"),
	       ctl_int(r, "printed"), ctl_int(r, "spoiled"), ctl_int(r, "unused"));
	if (json_object_get(r, "on_hand") != NULL) {
		printf("  on hand %lld: %s", ctl_int(r, "on_hand"),
		       json_is_true(json_object_get(r, "reconciled")) ? "reconciled" : "MISMATCH");
	}
	printf("\n");
}

static int
cmd_forms_count(struct ctl *ctl, const struct ctl_req *req)
{
	json_t *result = NULL;
	int rc = ctl_call(ctl, "forms.count", json_deep_copy(req->args), &result);

	if (rc != CTL_OK) {
		return rc;
	}
	if (ctl->json) {
		ctl_print(ctl, result);
	} else {
		print_forms(result);
	}
	/* A count that does not reconcile is a failure the operator must see. */
	rc = json_object_get(result, "reconciled") != NULL &&
		     !json_is_true(json_object_get(result, "reconciled"))
		 ? CTL_FAILED
		 : CTL_OK;
	json_decref(result);
	return rc;
}

#define ID_ROW CTL_NEED_ROW("id", CTL_STRING, "id", "ID")
#define NEED_INT(name, key)                                                                        \
	{                                                                                          \
		name, 0, CTL_INT, CTL_REQUIRED, key, "N", 1, 999999999, NULL                       \
	}

const struct ctl_cmd ctl_copy_cmds[] = {
    {"copy request", ctl_run, "copy.request",
     .help = "at the 交付地: send a request for a copy of the residence record of a person "
	     "living in another municipality (home) to its CS (第6-4(1)); the requester's identity "
	     "checked with a resident card (--card, --requester-code) or a document (--document)",
     .opts = {CTL_NEED_ROW("code", CTL_STRING, "person.code", "C"),
	      CTL_NEED_ROW("name", CTL_STRING, "person.name", "NAME"),
	      CTL_NEED_ROW("birth", CTL_DATE, "person.birth", "YYYY-MM-DD"),
	      CTL_NEED_ROW("home", CTL_STRING, "home", "LGCODE"),
	      CTL_NEED_ROW("requester", CTL_STRING, "requester.name", "NAME"),
	      CTL_NEED_ROW("relation", CTL_STRING, "requester.relation", "self|household"),
	      CTL_NEED_ROW("identity", CTL_STRING, "requester.identity", "card|document"),
	      CTL_OPT_ROW("card", CTL_STRING, "requester.card", "SERIAL"),
	      CTL_OPT_ROW("requester-code", CTL_STRING, "requester.code", "C"),
	      CTL_OPT_ROW("document", CTL_STRING, "requester.document", "KIND"),
	      CTL_OPT_ROW("items", CTL_LIST, "items", "householder,relation,honseki,code"),
	      CTL_INT_ROW("copies", "copies", 1, 10), CTL_FLAG_ROW("household", "household")}},
    {"copy list", ctl_run, "copy.list", .text = print_list,
     .help = "the copy requests issued here (issued) and received here (home), oldest first; "
	     "OVERDUE when unanswered past copy.timeout",
     .opts = {CTL_OPT_ROW("state", CTL_STRING, "state", "STATE")}},
    {"copy show", ctl_run, "copy.show", .text = print_show,
     .help = "a copy request, its answer on screen for review (第6-4(3)) and its prints",
     .opts = {ID_ROW}},
    {"copy review", cmd_copy_review, "copy.review",
     .help = "at the 住所地: send the resident record system's answer (--approve) or refuse it "
	     "(--refuse --reason TEXT) when copy.review holds answers for review",
     .synopsis = "--id ID (--approve | --refuse --reason TEXT)",
     .opts = {ID_ROW, CTL_FLAG_ROW("approve", NULL), CTL_FLAG_ROW("refuse", NULL),
	      CTL_OPT_ROW("reason", CTL_STRING, NULL, "TEXT")}},
    {"copy print", cmd_copy_print, "copy.print",
     .help = "at the 交付地: print the certified copy on the next form of the stock to the "
	     "terminal's own printer (its file's printer:); refused when a character cannot be "
	     "printed as it is",
     .opts = {ID_ROW}},
    {"forms receive", ctl_run, "forms.receive",
     .help = "record serial-numbered forms received, first to last (a supervisor's)",
     .opts = {NEED_INT("first", "first"), NEED_INT("last", "last"),
	      CTL_OPT_ROW("note", CTL_STRING, "note", "TEXT")}},
    {"forms count", cmd_forms_count, "forms.count", .text = print_forms,
     .help = "the forms stock: received, printed, spoiled, unused; with --on-hand the sheets "
	     "counted, reconciled (exit 1 and forms-mismatch when they differ)",
     .opts = {CTL_INT_ROW("on-hand", "on_hand", 0, 999999999)}},
    {"forms spoil", ctl_run, "forms.spoil", .text = print_forms,
     .help = "record a form spoiled (misprinted, damaged) with its reason",
     .opts = {NEED_INT("serial", "serial"), CTL_NEED_ROW("reason", CTL_STRING, "reason", "TEXT")}},
    {.name = NULL},
};
