/*
 * The resident card register of a CS (住民基本台帳カード): cards issued,
 * suspended when reported lost, resumed, collected and invalidated.
 */
#include <stdio.h>

#include "ctl.h"

static int
cmd_card_show(struct ctl *ctl, const struct ctl_req *req)
{
	if ((ctl_val(req, "serial") != NULL) == (ctl_val(req, "code") != NULL)) {
		return ctl_usage(req->cmd);
	}
	return ctl_run(ctl, req);
}

static void
print_cards(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("%-16s  %-11s  %s\n", "SERIAL", "CODE", "STATE");
	json_array_foreach(json_object_get(result, "cards"), i, row)
	{
		printf("%-16s  %-11s  %s\n", ctl_str(row, "serial"), ctl_str(row, "code"),
		       ctl_str(row, "state"));
	}
}

#define SERIAL_ROW CTL_NEED_ROW("serial", CTL_STRING, "serial", "S")
#define REASON_ROW CTL_NEED_ROW("reason", CTL_STRING, "reason", "TEXT")

const struct ctl_cmd ctl_cardreg_cmds[] = {
    {"card issue", ctl_run, "card.issue",
     .help = "record a 住民基本台帳カード issued to a resident of this CS (serial: 1 to 16 of "
	     "0-9 and A-Z, never used before; one valid card per holder)",
     .opts = {CTL_NEED_ROW("code", CTL_STRING, "code", "C"), SERIAL_ROW}},
    {"card show", cmd_card_show, "card.show",
     .help = "a card and its changes, by serial or by its holder's valid card",
     .synopsis = "--serial S | --code C",
     .opts = {CTL_OPT_ROW("serial", CTL_STRING, "serial", "S"),
	      CTL_OPT_ROW("code", CTL_STRING, "code", "C")}},
    {"card suspend", ctl_run, "card.suspend", .help = "suspend a card reported lost",
     .opts = {SERIAL_ROW, REASON_ROW}},
    {"card resume", ctl_run, "card.resume", .help = "a suspended card found again: issued",
     .opts = {SERIAL_ROW}},
    {"card collect", ctl_run, "card.collect", .help = "a card handed back (final)",
     .opts = {SERIAL_ROW}},
    {"card invalidate", ctl_run, "card.invalidate",
     .help = "invalidate a card (final; a supervisor's)", .opts = {SERIAL_ROW, REASON_ROW}},
    {"card list", ctl_run, "card.list", .text = print_cards,
     .help = "the cards recorded at this CS, by serial",
     .opts = {CTL_OPT_ROW("state", CTL_STRING, "state", "issued|suspended|collected|invalidated")}},
    {.name = NULL},
};
