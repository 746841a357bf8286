/*
 * The records of a CS: residents registered and corrected, move-ins.  The
 * person options build the person object the daemon validates (the daemon
 * is the judge of validity; juki-ctl checks only what each option is).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* The person options, their values under the key prefix k ("" or "person."). */
#define PERSON_ROWS(k)                                                                             \
	CTL_OPT_ROW("name", CTL_STRING, k "name", "N"),                                            \
	    CTL_OPT_ROW("kana", CTL_STRING, k "kana", "K"),                                        \
	    CTL_OPT_ROW("birth", CTL_STRING, k "birth", "D"),                                      \
	    CTL_OPT_ROW("sex", CTL_SEX, k "sex", "1|2"),                                           \
	    CTL_OPT_ROW("address", CTL_STRING, k "address", "A")

/*
 * resident add and movein: one record from the options, or every line of
 * a file (FILE, "-" for standard input), all or nothing.
 */
static int
cmd_records(struct ctl *ctl, const struct ctl_req *req)
{
	const char *file = ctl_val(req, "file");
	int movein = strcmp(req->cmd->call, "movein") == 0;
	json_t *list;

	if ((file != NULL) == (json_object_size(req->args) > 0) ||
	    (movein && file == NULL &&
	     (ctl_val(req, "from") == NULL || ctl_val(req, "date") == NULL))) {
		return ctl_usage(req->cmd);
	}
	list = file != NULL ? ctl_read_jsonl(file) : json_pack("[O]", req->args);
	if (list == NULL) {
		return CTL_FAILED;
	}
	return ctl_send(ctl, req->cmd->call, req->cmd->text,
			json_pack("{s:o}", movein ? "moves" : "residents", list));
}

static int
cmd_resident_correct(struct ctl *ctl, const struct ctl_req *req)
{
	if (json_object_get(req->args, "person") == NULL) {
		fprintf(stderr, "juki-ctl: resident correct: at least one item to correct\n");
		return ctl_usage(req->cmd);
	}
	return ctl_run(ctl, req);
}

static void
print_movein(const json_t *result)
{
	printf("%lld move-ins recorded; 転入通知 queued\n", ctl_int(result, "queued"));
}

static void
print_moveins(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("%-36s  %-11s  %-6s  %-10s  %s\n", "NOTICE", "CODE", "FROM", "DATE", "STATUS");
	json_array_foreach(json_object_get(result, "moveins"), i, row)
	{
		const char *reason = json_string_value(json_object_get(row, "reason"));
		const char *task = json_string_value(json_object_get(row, "task"));

		printf("%-36s  %-11s  %-6s  %-10s  %s%s%s%s%s\n", ctl_str(row, "notice_id"),
		       ctl_str(row, "code"), ctl_str(row, "from"), ctl_str(row, "date"),
		       ctl_str(row, "status"), reason ? ": " : "", reason ? reason : "",
		       task ? " — " : "", task ? task : "");
	}
}

const struct ctl_cmd ctl_resident_cmds[] = {
    {"resident add", cmd_records, "resident.add",
     "register residents at a CS (one, or a JSON Lines file of person objects); all "
     "or nothing",
     .synopsis = "--code C --name N [--kana K] --birth YYYY-MM-DD --sex 1|2 --address A | "
		 "--file FILE.jsonl",
     .opts = {CTL_OPT_ROW("code", CTL_STRING, "code", "C"), PERSON_ROWS(""),
	      CTL_OPT_ROW("file", CTL_FILE, NULL, "FILE.jsonl")}},
    {"resident show", ctl_run, "resident.show",
     "a resident's record at a CS, with its move-in and move-out cases",
     .opts = {CTL_ARG_ROW("CODE", "code")}},
    {"resident correct", cmd_resident_correct, "resident.correct",
     "職権修正 of a resident's recorded items: with a supervisor's approval given "
     "beforehand, or pending one to be given within operator.approve_within",
     .opts = {CTL_ARG_ROW("CODE", "code"), PERSON_ROWS("person."),
	      CTL_OPT_ROW("date", CTL_DATE, "date", "D"),
	      CTL_INT_ROW("approval", "approval", 1, LLONG_MAX)}},
    {"movein", cmd_records, "movein", .text = print_movein,
     .synopsis = "--code C --name N [--kana K] --birth D --sex 1|2 --address A --from LGCODE "
		 "--date D | --file FILE.jsonl",
     .help = "record move-ins at this CS and send 転入通知 to the former municipality (a file "
	     "holds {person, from, date} objects); all or nothing",
     .opts = {CTL_OPT_ROW("code", CTL_STRING, "person.code", "C"), PERSON_ROWS("person."),
	      CTL_OPT_ROW("from", CTL_STRING, "from", "LGCODE"),
	      CTL_OPT_ROW("date", CTL_DATE, "date", "D"),
	      CTL_OPT_ROW("file", CTL_FILE, NULL, "FILE.jsonl")}},
    {"movein list", ctl_run, "movein.list", .text = print_moveins,
     .help = "move-ins recorded at this CS and the answer to each notice",
     .opts = {CTL_OPT_ROW("status", CTL_STRING, "status", "queued|accepted|rejected"),
	      CTL_INT_ROW("limit", "limit", 1, LLONG_MAX)}},
    {"movein resolve", ctl_run, "movein.resolve",
     .help = "resolve a move-in whose 転入通知 was refused (a task in movein list); "
	     "--withdraw also ends the move-in's record here (職権消除)",
     .opts = {CTL_ARG_ROW("CODE", "code"), CTL_FLAG_ROW("withdraw", "withdraw")}},
    {"tennyu refused", ctl_run, "tennyu.refused",
     .help = "転入通知 this CS refused, newest first, with the precise reason and what the "
	     "sender was told",
     .opts = {CTL_INT_ROW("limit", "limit", 1, LLONG_MAX)}},
    {.name = NULL},
};
