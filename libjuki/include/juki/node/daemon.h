/*
 * juki — daemon life (docs/architecture.md §5; docs/style.md §2,
 * "Signals never do work").
 *
 * juki_daemon_main() is the whole of a daemon's main(): it reads argv
 *
 *   -f FILE        configuration (default: ops->default_config)
 *   -n             check the configuration and exit (0 valid, 1 not)
 *   -d             log at debug level
 *   -h, --help     usage;  -V, --version
 *   --help-config[=scdoc]  the configuration keys
 *
 * loads the configuration against ops->conf_table, then runs in the
 * foreground: SIGHUP reloads (load, check, then ops->reload builds the new
 * and swaps, keeping the old on any error), SIGTERM and SIGINT stop
 * gracefully (a second one exits at once), SIGPIPE is ignored.  Under
 * systemd (NOTIFY_SOCKET set) it reports READY=1, RELOADING=1, STOPPING=1,
 * STATUS= lines and, when WATCHDOG_USEC is set, pings the watchdog.
 */
#ifndef JUKI_DAEMON_H
#define JUKI_DAEMON_H

#include <stddef.h>

#include <event2/event.h>

#include "juki/base/config.h"

struct juki_daemon;

struct juki_daemon_ops {
	const char *name;           /* "juki-csd" */
	const char *summary;        /* one line for --help */
	const char *default_config; /* "/etc/juki/csd.yaml" */
	const struct juki_conf_key *conf_table;
	size_t conf_size; /* sizeof the config struct */
	/*
	 * check() - what the table cannot say: cross-key rules, files that must
	 * load (keys, certificates, policy).  No side effects.  -n runs it.
	 */
	int (*check)(const struct juki_daemon_ops *ops, void *conf, char *err, size_t errlen);
	/* start() - build the running node from conf (borrowed until stop). */
	int (*start)(struct juki_daemon *d, void *conf, void **node, char *err, size_t errlen);
	/*
	 * reload() - build what newconf needs, then swap it in; on failure leave
	 * the node as it was.  Returns 0 when the node now uses newconf.
	 */
	int (*reload)(struct juki_daemon *d, void *node, void *newconf, char *err, size_t errlen);
	/* stop() - stop accepting, close connections, free node. */
	void (*stop)(struct juki_daemon *d, void *node);
	/* What the callbacks share, read with juki_daemon_ops_of() (a node's spec). */
	const void *data;
};

/* juki_daemon_main() - run the daemon; returns the process exit status. */
int juki_daemon_main(int argc, char **argv, const struct juki_daemon_ops *ops);

/* juki_daemon_ops_of() - the operations the daemon runs with. */
const struct juki_daemon_ops *juki_daemon_ops_of(const struct juki_daemon *d);

/*
 * juki_daemon_alive() - ping the watchdog now if a ping is due: for work
 * that holds the event loop longer than the watchdog allows (a large
 * import applied in one transaction).
 */
void juki_daemon_alive(struct juki_daemon *d);

/*
 * juki_daemon_busy_begin() / juki_daemon_busy_end() - around one step that
 * holds the loop and cannot ping (the commit of a whole import file and
 * the WAL checkpoint after it, whose time grows with the file): a thread
 * pings the watchdog meanwhile, for max_ms at most, so that a step that
 * hangs is still killed.  Nothing without a watchdog; not nested.
 */
void juki_daemon_busy_begin(struct juki_daemon *d, int64_t max_ms);
void juki_daemon_busy_end(struct juki_daemon *d);

/* juki_daemon_base() - the one event base of the process. */
struct event_base *juki_daemon_base(struct juki_daemon *d);

/* juki_daemon_config_path() - the configuration file in use. */
const char *juki_daemon_config_path(const struct juki_daemon *d);

/* juki_daemon_started_ms() - when the daemon started (monotonic ms). */
int64_t juki_daemon_started_ms(const struct juki_daemon *d);

/* juki_daemon_stop() - begin a graceful stop, as SIGTERM would. */
void juki_daemon_stop(struct juki_daemon *d);

/*
 * juki_sd_notify() - send state ("READY=1\nSTATUS=...") to the service
 * manager when NOTIFY_SOCKET is set.  Returns 0 (also when not under
 * systemd) or -errno.
 */
int juki_sd_notify(const char *state);

#endif
