#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

static int
cmd_confirmations(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"code", required_argument, NULL, 'c'},
	    {"limit", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("confirmations");
	json_t *args = json_object(), *result = NULL;
	char *end;
	long v;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c') {
			json_object_set_new(args, "code", json_string(optarg));
		} else if (ch == 'l' && (v = strtol(optarg, &end, 10)) >= 0 && *end == '\0') {
			json_object_set_new(args, "limit", json_integer(v));
		} else {
			json_decref(args);
			return ctl_usage(self);
		}
	}
	if (optind != argc) {
		json_decref(args);
		return ctl_usage(self);
	}
	rc = ctl_call(ctl, "confirmations", args, &result);
	if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

const struct ctl_cmd ctl_pref_cmds[] = {
    {"confirmations", cmd_confirmations, "[--code CODE] [--limit N]",
     "転出確定通知 recorded at a prefectural server (total, and the records)", 1},
    {NULL, NULL, NULL, NULL, 0},
};
