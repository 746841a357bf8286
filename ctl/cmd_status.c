#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

static int
simple(struct ctl *ctl, const char *cmd, json_t *args)
{
	json_t *result = NULL;
	int rc = ctl_call(ctl, cmd, args, &result);

	if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

static int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		return ctl_usage(ctl_find("status"));
	}
	return simple(ctl, "status", NULL);
}

static int
cmd_alerts(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"max", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	long max = 100;
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
		if (ch != 'm') {
			return ctl_usage(ctl_find("alerts"));
		}
		max = strtol(optarg, &end, 10);
		if (*end != '\0' || max < 0) {
			return ctl_usage(ctl_find("alerts"));
		}
	}
	if (optind != argc) {
		return ctl_usage(ctl_find("alerts"));
	}
	return simple(ctl, "alerts", json_pack("{s:i}", "max", (int)max));
}

static int
cmd_outbox(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		return ctl_usage(ctl_find("outbox"));
	}
	return simple(ctl, "outbox", NULL);
}

const struct ctl_cmd ctl_status_cmds[] = {
    {"status", cmd_status, "", "identity, uptime, queues, channels and counters of a daemon", 1},
    {"alerts", cmd_alerts, "[--max N]", "recent alerts of a daemon and counts per code", 1},
    {"outbox", cmd_outbox, "", "deliveries waiting per destination, and rejected messages", 1},
    {NULL, NULL, NULL, NULL, 0},
};
