/*
 * Notices (第4-7(3)) and the witnessed operation history: a watcher's
 * notices to the nodes it watches, the notices a node received and their
 * acknowledgement, and the checkpoints a witness holds (docs/control.md).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void
print_sent(const json_t *r)
{
	printf("notice %s (%s) queued for %zu nodes\n", ctl_str(r, "id"), ctl_str(r, "severity"),
	       json_array_size(json_object_get(r, "to")));
}

static void
print_list(const json_t *r)
{
	const json_t *n, *d;
	size_t i, j;

	json_array_foreach(json_object_get(r, "received"), i, n)
	{
		printf("received %s  %s  %-8s from %s  %s\n", ctl_str(n, "id"), ctl_str(n, "time"),
		       ctl_str(n, "severity"), ctl_str(n, "from"),
		       json_is_string(json_object_get(n, "acked")) ? "acked" : "NOT ACKED");
		printf("  %s\n", ctl_str(n, "text"));
	}
	json_array_foreach(json_object_get(r, "sent"), i, n)
	{
		printf("sent     %s  %s  %-8s by %s\n", ctl_str(n, "id"), ctl_str(n, "time"),
		       ctl_str(n, "severity"), ctl_str(n, "by"));
		printf("  %s\n", ctl_str(n, "text"));
		json_array_foreach(json_object_get(n, "to"), j, d)
		{
			printf("  -> %-28s %-9s %s%s%s\n", ctl_str(d, "node"), ctl_str(d, "state"),
			       json_is_string(json_object_get(d, "acked")) ? "acked by " : "",
			       json_is_string(json_object_get(d, "acked")) ? ctl_str(d, "by") : "",
			       json_is_string(json_object_get(d, "reason")) ? ctl_str(d, "reason")
									    : "");
		}
	}
}

static void
print_acked(const json_t *r)
{
	printf("notice %s acknowledged; %s is told\n", ctl_str(r, "id"), ctl_str(r, "to"));
}

static void
print_witness(const json_t *r)
{
	const json_t *n;
	size_t i;

	if (json_object_get(r, "nodes") != NULL) {
		json_array_foreach(json_object_get(r, "nodes"), i, n)
		{
			printf("%-28s %6lld checkpoints, through entry %lld, last %s, %lld "
			       "problems\n",
			       ctl_str(n, "node"), ctl_int(n, "checkpoints"), ctl_int(n, "through"),
			       ctl_str(n, "last"), ctl_int(n, "problems"));
		}
		return;
	}
	printf("%s witnessed by %s\n", ctl_str(r, "node"), ctl_str(r, "witness"));
	json_array_foreach(json_object_get(r, "checkpoints"), i, n)
	{
		printf("  entry %-8lld %s  %.16s...  %s\n", ctl_int(n, "seq"), ctl_str(n, "time"),
		       ctl_str(n, "hash"), ctl_str(n, "verdict"));
	}
}

const struct ctl_cmd ctl_notice_cmds[] = {
    {"notice send", ctl_run, "notice.send", .text = print_sent,
     .help = "send a notice to nodes this node watches (第4-7(3)): urns, all (every node on the "
	     "board) or pref:NN (the board's nodes of prefecture NN); severity info (default), "
	     "warning or critical; at most 1000 bytes of text, no control characters",
     .opts = {CTL_NEED_ROW("to", CTL_LIST, "to", "URN,...|all|pref:NN"),
	      CTL_OPT_ROW("severity", CTL_STRING, "severity", "S"),
	      CTL_NEED_ROW("text", CTL_STRING, "text", "TEXT")}},
    {"notice list", ctl_run, "notice.list", .text = print_list,
     .help = "notices received here (acknowledged or not) and sent from here, with each "
	     "recipient's state, newest first",
     .opts = {CTL_INT_ROW("limit", "limit", 1, 10000)}},
    {"notice ack", ctl_run, "notice.ack", .text = print_acked,
     .help = "acknowledge a received notice: its sender sees who read it and when",
     .opts = {CTL_ARG_ROW("ID", "id")}},
    {"witness show", ctl_run, "witness.show", .text = print_witness,
     .help = "the signed checkpoints of a node's operation history this node witnessed "
	     "(--json: the file juki-ctl audit verify --witness reads); without --node, a "
	     "summary per node",
     .opts = {CTL_OPT_ROW("node", CTL_STRING, "node", "URN")}},
    {.name = NULL},
};
