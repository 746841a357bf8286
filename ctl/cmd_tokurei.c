/*
 * The special move-out/move-in with the resident card (転入転出の特例,
 * 第6-5): 付記転出届 at the 転出地, 最初の転入届 at the 転入地, the review of
 * the 転出証明書情報 and the card's collection.
 */
#include <stdio.h>

#include "ctl.h"

static void
print_cert(const json_t *c)
{
	printf("転出証明書情報 (令第24条の4)\n");
	printf("  住民票コード  %s\n", ctl_str(c, "code"));
	printf("  氏名          %s\n", ctl_str(c, "name"));
	if (json_object_get(c, "kana") != NULL) {
		printf("  ふりがな      %s\n", ctl_str(c, "kana"));
	}
	printf("  生年月日      %s\n", ctl_str(c, "birth"));
	printf("  性別          %s\n",
	       json_integer_value(json_object_get(c, "sex")) == 1 ? "男" : "女");
	printf("  住所          %s\n", ctl_str(c, "address"));
	printf("  転出先        %s (%s)\n", ctl_str(c, "new_address"), ctl_str(c, "to"));
	printf("  転出の予定日  %s\n", ctl_str(c, "date"));
	printf("  カード        %s\n", ctl_str(c, "card"));
	{
		const json_t *m;
		size_t i;

		json_array_foreach(json_object_get(c, "members"), i, m)
		{
			printf("  世帯員 %zu      %s  %s  %s  %s\n", i + 1, ctl_str(m, "code"),
			       ctl_str(m, "name"), ctl_str(m, "birth"),
			       json_integer_value(json_object_get(m, "sex")) == 1 ? "男" : "女");
		}
	}
}

static void
print_show(const json_t *r)
{
	printf("%s  %s  %s  %s\n", ctl_str(r, "id"), ctl_str(r, "side"), ctl_str(r, "state"),
	       ctl_str(r, "peer"));
	if (json_object_get(r, "reason") != NULL) {
		printf("refused: %s  %s\n", ctl_str(r, "reason"), ctl_str(r, "detail"));
	}
	if (json_is_true(json_object_get(r, "overdue"))) {
		printf("OVERDUE: not answered within tokurei.timeout\n");
	}
	if (json_object_get(r, "certificate") != NULL) {
		print_cert(json_object_get(r, "certificate"));
	}
}

static void
print_list(const json_t *result)
{
	const char *const sides[] = {"moveout", "movein"};

	printf("%-36s  %-7s  %-10s  %-6s  %s\n", "ID", "SIDE", "STATE", "PEER", "REASON");
	for (int k = 0; k < 2; k++) {
		const json_t *row;
		size_t i;

		json_array_foreach(json_object_get(result, sides[k]), i, row)
		{
			printf("%-36s  %-7s  %-10s  %-6s  %s%s\n", ctl_str(row, "id"), sides[k],
			       ctl_str(row, "state"), ctl_str(row, "peer"), ctl_str(row, "reason"),
			       json_is_true(json_object_get(row, "overdue")) ? " OVERDUE" : "");
		}
	}
}

#define ID_ROW CTL_NEED_ROW("id", CTL_STRING, "id", "ID")

const struct ctl_cmd ctl_tokurei_cmds[] = {
    {"tokurei moveout", ctl_run, "tokurei.moveout", .text = print_show,
     .help = "at the 転出地: record a 付記転出届 (第6-5(1)) of a resident who holds a valid "
	     "card of the register here, with the household members moving along (--members: "
	     "世帯員に関する付記転出届, residents at the holder's address); the 転出証明書情報 is "
	     "built "
	     "from the register and handed to the resident record system",
     .opts = {CTL_NEED_ROW("code", CTL_STRING, "code", "C"),
	      CTL_NEED_ROW("card", CTL_STRING, "card", "SERIAL"),
	      CTL_NEED_ROW("to", CTL_STRING, "to", "LGCODE"),
	      CTL_NEED_ROW("new-address", CTL_STRING, "new_address", "ADDRESS"),
	      CTL_NEED_ROW("date", CTL_DATE, "date", "YYYY-MM-DD"),
	      CTL_OPT_ROW("members", CTL_LIST, "members", "C,C,...")}},
    {"tokurei movein", ctl_run, "tokurei.movein",
     .help = "at the 転入地: record a 最初の転入届 of a card holder and ask the 転出地 (from) "
	     "for the 転出証明書情報 (第6-5(2))",
     .opts = {CTL_NEED_ROW("code", CTL_STRING, "code", "C"),
	      CTL_NEED_ROW("name", CTL_STRING, "name", "NAME"),
	      CTL_NEED_ROW("birth", CTL_DATE, "birth", "YYYY-MM-DD"),
	      CTL_NEED_ROW("card", CTL_STRING, "card", "SERIAL"),
	      CTL_NEED_ROW("from", CTL_STRING, "from", "LGCODE")}},
    {"tokurei show", ctl_run, "tokurei.show", .text = print_show,
     .help = "a special move: its state, a refusal's reason, and the 転出証明書情報 for the "
	     "clerk's review against the 転入届 (第6-5(3))",
     .opts = {ID_ROW}},
    {"tokurei collect", ctl_run, "tokurei.collect",
     .help = "at the 転入地, after review: the card collected; the 転出地 is told and marks "
	     "it collected, the 転出証明書情報 goes to the resident record system (第6-5(4))",
     .opts = {ID_ROW}},
    {"tokurei list", ctl_run, "tokurei.list", .text = print_list,
     .help = "the special moves recorded here: moveout (転出地) and movein (転入地); OVERDUE "
	     "when unanswered past tokurei.timeout"},
    {.name = NULL},
};
