/* What every daemon answers: its state, its alerts, its outbox. */
#include <limits.h>

#include "ctl.h"

const struct ctl_cmd ctl_status_cmds[] = {
    {"status", ctl_run, "status",
     .help = "identity, uptime, queues, channels and counters of a daemon"},
    {"alerts", ctl_run, "alerts", "recent alerts of a daemon and counts per code",
     .opts = {{"max", 'm', CTL_INT, 0, "max", "N", 0, LLONG_MAX, NULL}}},
    {"outbox", ctl_run, "outbox",
     .help = "deliveries waiting per destination, and rejected messages"},
    {.name = NULL},
};
