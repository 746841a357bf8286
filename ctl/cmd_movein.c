#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

json_t *ctl_person_args(int argc, char **argv, const char **file, const char **from,
			const char **date, int *bad);

static int
cmd_movein(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *self = ctl_find("movein");
	const char *file = NULL, *from = NULL, *date = NULL;
	json_t *person, *moves, *result = NULL;
	int bad, rc;

	person = ctl_person_args(argc, argv, &file, &from, &date, &bad);
	if (bad || (file != NULL && (json_object_size(person) > 0 || from || date)) ||
	    (file == NULL && (from == NULL || date == NULL))) {
		json_decref(person);
		return ctl_usage(self);
	}
	if (file != NULL) {
		json_decref(person);
		moves = ctl_read_jsonl(file);
		if (moves == NULL) {
			return CTL_FAILED;
		}
	} else {
		moves = json_pack("[{s:o,s:s,s:s}]", "person", person, "from", from, "date", date);
	}
	rc = ctl_call(ctl, "movein", json_pack("{s:o}", "moves", moves), &result);
	if (rc == CTL_OK) {
		if (ctl->json) {
			ctl_print(ctl, result);
		} else {
			printf("%lld move-ins recorded; 転入通知 queued\n",
			       (long long)json_integer_value(json_object_get(result, "queued")));
		}
	}
	json_decref(result);
	return rc;
}

static int
cmd_movein_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"status", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("movein list");
	json_t *args = json_object(), *result = NULL, *row;
	char *end;
	size_t i;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's') {
			json_object_set_new(args, "status", json_string(optarg));
		} else if (ch == 'l' && strtol(optarg, &end, 10) > 0 && *end == '\0') {
			json_object_set_new(args, "limit", json_integer(strtol(optarg, NULL, 10)));
		} else {
			json_decref(args);
			return ctl_usage(self);
		}
	}
	if (optind != argc) {
		json_decref(args);
		return ctl_usage(self);
	}
	rc = ctl_call(ctl, "movein.list", args, &result);
	if (rc == CTL_OK && ctl->json) {
		ctl_print(ctl, result);
	} else if (rc == CTL_OK) {
		printf("%-36s  %-11s  %-6s  %-10s  %s\n", "NOTICE", "CODE", "FROM", "DATE",
		       "STATUS");
		json_array_foreach(json_object_get(result, "moveins"), i, row)
		{
			const char *reason = json_string_value(json_object_get(row, "reason"));

			printf("%-36s  %-11s  %-6s  %-10s  %s%s%s\n",
			       json_string_value(json_object_get(row, "notice_id")),
			       json_string_value(json_object_get(row, "code")),
			       json_string_value(json_object_get(row, "from")),
			       json_string_value(json_object_get(row, "date")),
			       json_string_value(json_object_get(row, "status")),
			       reason ? ": " : "", reason ? reason : "");
		}
	}
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_movein_cmds[] = {
    {"movein", cmd_movein,
     "--code C --name N [--kana K] --birth D --sex 1|2 --address A --from LGCODE "
     "--date D | --file FILE.jsonl",
     "record move-ins at this CS and send 転入通知 to the former municipality (a file holds "
     "{person, from, date} objects); all or nothing",
     1},
    {"movein list", cmd_movein_list, "[--status queued|accepted|rejected] [--limit N]",
     "move-ins recorded at this CS and the answer to each notice", 1},
    {NULL, NULL, NULL, NULL, 0},
};
