/*
 * Management reports between bodies (第6-8): a request for a report on a
 * receiving body's management measures, or for improvement, asked here and
 * routed through the servers the standard names; the requests asked, passed
 * on or held here; one with its answer; a prefecture's answer to a request
 * addressed to itself (docs/control.md §5, docs/protocol.md §10).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ctl.h"

/* The request text and answer documents the daemon takes (juki/node/report.h). */
#define TEXT_MAX   (16 * 1024)
#define ANSWER_MAX (256 * 1024)

/* Read all of path ("-": standard input), at most max bytes; NULL after saying why. */
static unsigned char *
slurp(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(max + 2)) == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
		if (f != stdin) {
			fclose(f);
		}
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		if (ferror(f)) {
			fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		} else {
			fprintf(stderr, "juki-ctl: %s: over %zu KiB, the most the server takes\n",
				path, max / 1024);
		}
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	if (f != stdin) {
		fclose(f);
	}
	return buf;
}

static int
cmd_request(struct ctl *ctl, const struct ctl_req *req)
{
	const char *path = ctl_val(req, "text-file");
	unsigned char *text;
	json_t *args, *s;
	size_t len;

	if ((text = slurp(path, TEXT_MAX, &len)) == NULL) {
		return CTL_FAILED;
	}
	if ((s = json_stringn((const char *)text, len)) == NULL) {
		fprintf(stderr, "juki-ctl: %s: not UTF-8 text\n", path);
		free(text);
		return CTL_FAILED;
	}
	free(text);
	args = json_deep_copy(req->args);
	json_object_set_new(args, "text", s);
	return ctl_send(ctl, req->cmd->call, req->cmd->text, args);
}

json_t *
ctl_answer_document(const char *cmd, const char *path, const char *media, size_t *size)
{
	unsigned char *doc;
	char *b64;
	json_t *out = NULL;
	size_t len;
	json_t *s;

	if (media != NULL && strcmp(media, "text/plain") != 0 &&
	    strcmp(media, "application/pdf") != 0) {
		fprintf(stderr, "juki-ctl: %s: --media: text/plain or application/pdf\n", cmd);
		return NULL;
	}
	if ((doc = slurp(path, ANSWER_MAX, &len)) == NULL) {
		return NULL;
	}
	if (media == NULL) {
		media = len >= 5 && memcmp(doc, "%PDF-", 5) == 0 ? "application/pdf" : "text/plain";
	}
	if (len == 0) {
		fprintf(stderr, "juki-ctl: %s: %s: empty: no document to answer with\n", cmd, path);
		goto out;
	}
	if (strcmp(media, "application/pdf") == 0 && (len < 5 || memcmp(doc, "%PDF-", 5) != 0)) {
		fprintf(stderr, "juki-ctl: %s: %s: not a PDF (no \"%%PDF-\" at its start)\n", cmd,
			path);
		goto out;
	}
	if (strcmp(media, "text/plain") == 0) {
		s = memchr(doc, '\0', len) == NULL ? json_stringn((const char *)doc, len) : NULL;
		if (s == NULL) {
			fprintf(stderr,
				"juki-ctl: %s: %s: not UTF-8 text (--media application/pdf for "
				"a PDF)\n",
				cmd, path);
			goto out;
		}
		json_decref(s);
	}
	if ((b64 = malloc((len + 2) / 3 * 4 + 1)) == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, doc, (int)len);
	out = json_pack("{s:s,s:s}", "media", media, "data", b64);
	free(b64);
	*size = len;
out:
	free(doc);
	return out;
}

static int
cmd_answer(struct ctl *ctl, const struct ctl_req *req)
{
	json_t *args, *doc;
	size_t size;

	doc = ctl_answer_document("report answer", ctl_val(req, "file"), ctl_val(req, "media"),
				  &size);
	if (doc == NULL) {
		return CTL_FAILED;
	}
	args = json_deep_copy(req->args);
	json_object_update(args, doc);
	json_decref(doc);
	return ctl_send(ctl, req->cmd->call, req->cmd->text, args);
}

/* report show: the request, and its answer saved to --save FILE when asked. */
static int
cmd_show(struct ctl *ctl, const struct ctl_req *req)
{
	const char *save = ctl_val(req, "save");
	json_t *args = json_deep_copy(req->args), *result = NULL;
	const json_t *ans;
	int rc;

	if ((rc = ctl_call(ctl, req->cmd->call, args, &result)) != CTL_OK) {
		return rc;
	}
	ans = json_object_get(result, "answer");
	if (save != NULL) {
		const char *b64 = json_string_value(json_object_get(ans, "data"));
		size_t blen = b64 ? strlen(b64) : 0;
		unsigned char *doc = malloc(blen / 4 * 3 + 1);
		FILE *f;
		int n;

		if (b64 == NULL || doc == NULL) {
			fprintf(stderr, "juki-ctl: report show: %s\n",
				b64 ? "out of memory" : "no answer to save yet");
			free(doc);
			json_decref(result);
			return CTL_FAILED;
		}
		n = EVP_DecodeBlock(doc, (const unsigned char *)b64, (int)blen);
		n -= (blen > 0 && b64[blen - 1] == '=') + (blen > 1 && b64[blen - 2] == '=');
		if (n < 0 || (f = fopen(save, "wbx")) == NULL ||
		    fwrite(doc, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) {
			fprintf(stderr, "juki-ctl: report show: %s: %s\n", save,
				n < 0 ? "the answer is not base64" : strerror(errno));
			free(doc);
			json_decref(result);
			return CTL_FAILED;
		}
		free(doc);
	}
	if (!ctl->json && json_is_object(ans)) {
		/* In words the document itself is not printed: its size and media are. */
		json_object_del((json_t *)ans, "data");
	}
	ctl_print(ctl, result);
	json_decref(result);
	return CTL_OK;
}

static void
print_list(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("%lld management-report requests\n", ctl_int(result, "total"));
	printf("%-36s  %-11s  %-9s  %-10s  %-9s  %-32s  %s\n", "ID", "KIND", "ROLE", "DUE", "STATE",
	       "TO", "SUBJECT");
	json_array_foreach(json_object_get(result, "reports"), i, row)
	{
		printf("%-36s  %-11s  %-9s  %-10s  %-9s  %-32s  %s\n", ctl_str(row, "id"),
		       ctl_str(row, "kind"), ctl_str(row, "role"), ctl_str(row, "due"),
		       ctl_str(row, "state"), ctl_str(row, "to"), ctl_str(row, "subject"));
	}
}

static void
print_request(const json_t *result)
{
	printf("request %s to %s: %s", ctl_str(result, "id"), ctl_str(result, "to"),
	       ctl_str(result, "state"));
	if (json_is_string(json_object_get(result, "next"))) {
		printf(" (passed to %s)", ctl_str(result, "next"));
	}
	printf("\n");
}

const struct ctl_cmd ctl_report_cmds[] = {
    {"report request", cmd_request, "report.request", .text = print_request,
     .help = "ask a body that received identity information for a report on its management "
	     "measures (--kind report) or for their improvement (--kind improvement), "
	     "through the servers 第6-8 names; --provider says who provided (pref: the "
	     "prefecture, national: the national server); --to urn:juki:ca:... asks the "
	     "certification authority about the 異動等情報 (第6-8(6)ウ・エ)",
     .opts = {CTL_NEED_ROW("to", CTL_STRING, "to", "URN"),
	      CTL_NEED_ROW("kind", CTL_STRING, "kind", "report|improvement"),
	      CTL_NEED_ROW("subject", CTL_STRING, "subject", "TEXT"),
	      CTL_NEED_ROW("text-file", CTL_FILE, NULL, "FILE"),
	      CTL_NEED_ROW("due", CTL_DATE, "due", "YYYY-MM-DD"),
	      CTL_OPT_ROW("provider", CTL_STRING, "provider", "pref|national")}},
    {"report list", ctl_run, "report.list", .text = print_list,
     .help = "management-report requests asked, passed on or held here, newest first, "
	     "with their state (sent, received, answered, overdue, refused)",
     .opts = {CTL_OPT_ROW("state", CTL_STRING, "state", "STATE"),
	      CTL_INT_ROW("limit", "limit", 0, LLONG_MAX)}},
    {"report show", cmd_show, "report.show",
     .help = "one request, its route and state, and its answer (--save FILE writes the "
	     "answer document to a new file)",
     .opts = {CTL_ARG_ROW("ID", "id"), CTL_OPT_ROW("save", CTL_FILE, NULL, "FILE")}},
    {"report answer", cmd_answer, "report.answer",
     .help = "answer, as this prefecture, a request addressed to it by a municipality "
	     "(第6-8(4)イ); the document is text or PDF, at most 256 KiB",
     .opts = {CTL_ARG_ROW("ID", "id"), CTL_NEED_ROW("file", CTL_FILE, NULL, "FILE"),
	      CTL_OPT_ROW("media", CTL_STRING, NULL, "text/plain|application/pdf")}},
    {.name = NULL},
};
