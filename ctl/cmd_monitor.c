/* Watching the network: the board of a prefecture's or the national server (第4-7(3)). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* "2026-12-07T04:27:49.818Z" as "04:27:49" (the board is read the same day), "-" if none. */
static void
clock_of(const json_t *obj, const char *key, char *buf, size_t len)
{
	const char *t = json_string_value(json_object_get(obj, key));

	if (t == NULL || strlen(t) < 19) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%.8s", t + 11);
}

/* One line a node: its state first, then what an operator looks at. */
static void
board_text(const json_t *result)
{
	const json_t *nodes = json_object_get(result, "nodes");
	const json_t *alerts = json_object_get(result, "alerts");
	const json_t *n, *a;
	size_t i, counts[4] = {0, 0, 0, 0};
	static const char *const states[] = {"up", "degraded", "intrusion", "down"};
	char seen[16], skew[24];

	printf("board of %s at %s\n", ctl_str(result, "self"), ctl_str(result, "time"));
	printf("%-24s %-10s %-14s %-8s %-9s %8s %7s %9s %6s\n", "NODE", "STATE", "DAEMON",
	       "VERSION", "LAST", "SKEW_MS", "OUTBOX", "OLDEST_MS", "ALERTS");
	json_array_foreach(nodes, i, n)
	{
		const json_t *q = json_object_get(n, "queues");
		const json_t *sk = json_object_get(n, "skew_ms");

		clock_of(n, "last_seen", seen, sizeof(seen));
		if (json_is_integer(sk)) {
			snprintf(skew, sizeof(skew), "%lld", (long long)json_integer_value(sk));
		} else {
			snprintf(skew, sizeof(skew), "-");
		}
		printf("%-24s %-10s %-14s %-8s %-9s %8s %7lld %9lld %6lld\n", ctl_str(n, "node"),
		       ctl_str(n, "state"), ctl_str(n, "daemon"), ctl_str(n, "version"), seen, skew,
		       ctl_int(q, "outbox"), ctl_int(q, "oldest_ms"), ctl_int(n, "alerts_open"));
		for (size_t s = 0; s < 4; s++) {
			if (strcmp(ctl_str(n, "state"), states[s]) == 0) {
				counts[s]++;
			}
		}
	}
	printf("%zu nodes: %zu up, %zu degraded, %zu intrusion, %zu down\n", json_array_size(nodes),
	       counts[0], counts[1], counts[2], counts[3]);
	if (json_array_size(alerts) == 0) {
		printf("no forwarded alerts\n");
		return;
	}
	printf("\n%-24s %-9s %-9s %-22s %s\n", "FROM", "CLASS", "TIME", "CODE", "DETAIL");
	json_array_foreach(alerts, i, a)
	{
		clock_of(a, "time", seen, sizeof(seen));
		printf("%-24s %-9s %-9s %-22s %s\n", ctl_str(a, "node"), ctl_str(a, "class"), seen,
		       ctl_str(a, "code"), ctl_str(a, "detail"));
	}
}

const struct ctl_cmd ctl_monitor_cmds[] = {
    {"board", ctl_run, "board",
     "the monitoring board of a prefecture or the national server: every node that sends "
     "heartbeats there, its state (up, degraded, intrusion, down), clock skew, queues and "
     "the alerts it forwarded, newest first",
     .opts = {{"pref", 0, CTL_STRING, 0, "pref", "NN", 0, 0,
	       "only the nodes of prefecture NN (01..47)"}},
     .text = board_text},
    {.name = NULL},
};
