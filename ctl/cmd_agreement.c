/*
 * juki-ctl agreement add|show|list|approve|suspend|resume|end and jimu: the
 * agreements (協議) under which a prefectural or the national server
 * provides identity information (第6-8(1)ア; libjuki/include/juki/node/provide.h),
 * and sends 異動等情報 to a certification authority (第6-8(6)ア; node/ninsho.h).
 */
#include <limits.h>
#include <stdio.h>

#include "ctl.h"

#define ID_ROW CTL_ARG_ROW("ID", "id")

static void
print_list(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("%lld agreements\n", ctl_int(result, "total"));
	printf("%-24s  %-10s  %-32s  %s\n", "ID", "STATE", "BODY", "DAILY CAP");
	json_array_foreach(json_object_get(result, "agreements"), i, row)
	{
		printf("%-24s  %-10s  %-32s  %lld\n", ctl_str(row, "id"), ctl_str(row, "state"),
		       ctl_str(row, "body"), ctl_int(row, "daily_cap"));
	}
}

static void
print_jimu(const json_t *result)
{
	const json_t *row;
	size_t i;

	printf("%lld 事務 on the list\n", ctl_int(result, "total"));
	json_array_foreach(json_object_get(result, "jimu"), i, row)
	{
		printf("%-8s  %s\n", ctl_str(row, "jimu"), ctl_str(row, "title"));
	}
}

const struct ctl_cmd ctl_agreement_cmds[] = {
    {"agreement add", ctl_run, "agreement.add",
     "a new agreement (協議) with an agency or executive body (--jimu, --daily-cap and "
     "--bulk-threshold required), or a feed of 異動等情報 to a certification authority "
     "(--methods feed), pending a second supervisor's approval",
     .opts = {ID_ROW,
	      CTL_NEED_ROW("body", CTL_STRING, "body", "URN"),
	      CTL_OPT_ROW("jimu", CTL_LIST, "jimu", "T-R,..."),
	      CTL_NEED_ROW("items", CTL_LIST, "items", "ITEM,..."),
	      CTL_NEED_ROW("methods", CTL_LIST, "methods", "online,batch|feed"),
	      CTL_INT_ROW("daily-cap", "daily_cap", 1, 100000000),
	      CTL_INT_ROW("bulk-threshold", "bulk_threshold", 0, 100000000),
	      {"keep-days", 0, CTL_INT, CTL_REQUIRED, "keep_days", "N", 1, 36500, NULL},
	      CTL_NEED_ROW("responsible", CTL_STRING, "responsible", "STAFF-URN")}},
    {"agreement show", ctl_run, "agreement.show", "an agreement, and the queries used today",
     .opts = {ID_ROW}},
    {"agreement list", ctl_run, "agreement.list", "agreements by id", .text = print_list,
     .opts = {CTL_OPT_ROW("state", CTL_STRING, "state", "STATE")}},
    {"agreement approve", ctl_run, "agreement.approve",
     "approve a pending agreement (a supervisor other than the one who added it)",
     .opts = {ID_ROW}},
    {"agreement suspend", ctl_run, "agreement.suspend", "suspend an active agreement",
     .opts = {ID_ROW}},
    {"agreement resume", ctl_run, "agreement.resume", "resume a suspended agreement",
     .opts = {ID_ROW}},
    {"agreement end", ctl_run, "agreement.end", "end an agreement for good", .opts = {ID_ROW}},
    {"jimu", ctl_run, "jimu.list", "the 事務 list agreements are checked against",
     .text = print_jimu},
    {.name = NULL},
};
