#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/daemon.h"
#include "juki/node/log.h"

struct juki_daemon {
	const struct juki_daemon_ops *ops;
	struct event_base *base;
	const char *config_path;
	void *conf;
	void *node;
	int stopping;
	int debug; /* -d: debug level whatever the configuration says */
	int64_t started_ms;
	struct event *sigterm, *sigint, *sighup, *watchdog;
	int64_t watchdog_ms;
	int64_t watchdog_last; /* monotonic ms of the last ping */
	/* A step that cannot ping (juki_daemon_busy_begin): a thread pings for it. */
	pthread_t busy_thread;
	pthread_mutex_t busy_lock;
	pthread_cond_t busy_cond;
	int busy, busy_stop;
	int64_t busy_max_ms;
};

int
juki_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd, rc = 0;

	if (path == NULL || path[0] == '\0') {
		return 0;
	}
	if ((path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path)) {
		return JUKI_EINVAL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@') {
		sun.sun_path[0] = '\0'; /* abstract namespace */
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

struct event_base *
juki_daemon_base(struct juki_daemon *d)
{
	return d->base;
}

const char *
juki_daemon_config_path(const struct juki_daemon *d)
{
	return d->config_path;
}

int64_t
juki_daemon_started_ms(const struct juki_daemon *d)
{
	return d->started_ms;
}

static void *
load_conf(const struct juki_daemon_ops *ops, const char *path, char *err, size_t errlen)
{
	void *conf = calloc(1, ops->conf_size);
	int rc;

	if (conf == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc = juki_conf_load(path, ops->conf_table, conf, err, errlen);
	if (rc == 0 && ops->check != NULL) {
		rc = ops->check(ops, conf, err, errlen);
		if (rc != 0) {
			juki_conf_free(ops->conf_table, conf);
		}
	}
	if (rc != 0) {
		free(conf);
		return NULL;
	}
	return conf;
}

static void
free_conf(const struct juki_daemon_ops *ops, void *conf)
{
	if (conf != NULL) {
		juki_conf_free(ops->conf_table, conf);
		free(conf);
	}
}

void
juki_daemon_stop(struct juki_daemon *d)
{
	if (d->stopping) {
		return;
	}
	d->stopping = 1;
	juki_sd_notify("STOPPING=1");
	log_notice("%s: stopping", d->ops->name);
	if (d->node != NULL) {
		d->ops->stop(d, d->node);
		d->node = NULL;
	}
	event_base_loopexit(d->base, NULL);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct juki_daemon *d = arg;

	(void)what;
	if (d->stopping) {
		log_warnx("%s: signal %d again; exiting at once", d->ops->name, (int)sig);
		_exit(1);
	}
	log_info("%s: signal %d", d->ops->name, (int)sig);
	juki_daemon_stop(d);
}

static void
on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct juki_daemon *d = arg;
	char err[512] = "";
	void *conf;

	(void)sig;
	(void)what;
	juki_sd_notify("RELOADING=1");
	log_notice("%s: reloading %s", d->ops->name, d->config_path);
	conf = load_conf(d->ops, d->config_path, err, sizeof(err));
	if (conf == NULL) {
		log_error("%s: reload refused, keeping the running configuration: %s", d->ops->name,
			  err);
	} else {
		int rc = d->ops->reload(d, d->node, conf, err, sizeof(err));

		/* The node applies the configured log level on reload; -d outranks it. */
		if (d->debug) {
			log_setlevel(JUKI_LOG_DEBUG);
		}
		if (rc != 0) {
			log_error("%s: reload failed, keeping the running configuration: %s",
				  d->ops->name, err);
			free_conf(d->ops, conf);
		} else {
			free_conf(d->ops, d->conf);
			d->conf = conf;
			log_notice("%s: reloaded", d->ops->name);
		}
	}
	juki_sd_notify("READY=1\nSTATUS=running");
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct juki_daemon *d = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	juki_sd_notify("WATCHDOG=1");
	d->watchdog_last = juki_clock_mono_ms();
	tv.tv_sec = (time_t)(d->watchdog_ms / 2000);
	tv.tv_usec = (suseconds_t)((d->watchdog_ms / 2 % 1000) * 1000);
	evtimer_add(d->watchdog, &tv);
}

void
juki_daemon_alive(struct juki_daemon *d)
{
	if (d->watchdog != NULL && juki_clock_mono_ms() - d->watchdog_last >= d->watchdog_ms / 4) {
		juki_sd_notify("WATCHDOG=1");
		d->watchdog_last = juki_clock_mono_ms();
	}
}

/*
 * The pinger of a step that cannot ping: every quarter of the watchdog
 * period, until the step ends or has taken busy_max_ms, after which the
 * watchdog is left to judge a step that may be hung.
 */
static void *
busy_pinger(void *arg)
{
	struct juki_daemon *d = arg;
	int64_t until = juki_clock_mono_ms() + d->busy_max_ms;

	pthread_mutex_lock(&d->busy_lock);
	while (!d->busy_stop && juki_clock_mono_ms() < until) {
		struct timespec ts;
		int64_t at;

		clock_gettime(CLOCK_REALTIME, &ts);
		at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + d->watchdog_ms / 4;
		ts.tv_sec = (time_t)(at / 1000);
		ts.tv_nsec = (long)(at % 1000) * 1000000;
		if (pthread_cond_timedwait(&d->busy_cond, &d->busy_lock, &ts) != 0 &&
		    !d->busy_stop) {
			juki_sd_notify("WATCHDOG=1");
		}
	}
	pthread_mutex_unlock(&d->busy_lock);
	return NULL;
}

void
juki_daemon_busy_begin(struct juki_daemon *d, int64_t max_ms)
{
	if (d == NULL || d->watchdog == NULL || d->busy) {
		return;
	}
	juki_daemon_alive(d);
	d->busy_stop = 0;
	d->busy_max_ms = max_ms;
	if (pthread_mutex_init(&d->busy_lock, NULL) != 0) {
		return;
	}
	if (pthread_cond_init(&d->busy_cond, NULL) != 0) {
		pthread_mutex_destroy(&d->busy_lock);
		return;
	}
	if (pthread_create(&d->busy_thread, NULL, busy_pinger, d) != 0) {
		pthread_cond_destroy(&d->busy_cond);
		pthread_mutex_destroy(&d->busy_lock);
		return;
	}
	d->busy = 1;
}

void
juki_daemon_busy_end(struct juki_daemon *d)
{
	if (d == NULL || !d->busy) {
		return;
	}
	pthread_mutex_lock(&d->busy_lock);
	d->busy_stop = 1;
	pthread_cond_signal(&d->busy_cond);
	pthread_mutex_unlock(&d->busy_lock);
	pthread_join(d->busy_thread, NULL);
	pthread_cond_destroy(&d->busy_cond);
	pthread_mutex_destroy(&d->busy_lock);
	d->busy = 0;
	d->watchdog_last = juki_clock_mono_ms();
}

static void
usage(const struct juki_daemon_ops *ops, FILE *out)
{
	fprintf(out,
		"usage: %s [-dn] [-f config]\n"
		"%s\n\n"
		"  -f FILE   configuration file (default %s)\n"
		"  -n        check the configuration and exit\n"
		"  -d        log at debug level\n"
		"  -V        print the version and exit\n"
		"  --help-config[=scdoc]  describe every configuration key\n",
		ops->name, ops->summary, ops->default_config);
}

static int
setup_signals(struct juki_daemon *d)
{
	d->sigterm = evsignal_new(d->base, SIGTERM, on_stop_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_stop_signal, d);
	d->sighup = evsignal_new(d->base, SIGHUP, on_reload_signal, d);
	if (d->sigterm == NULL || d->sigint == NULL || d->sighup == NULL ||
	    evsignal_add(d->sigterm, NULL) != 0 || evsignal_add(d->sigint, NULL) != 0 ||
	    evsignal_add(d->sighup, NULL) != 0) {
		return JUKI_ENOMEM;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
setup_watchdog(struct juki_daemon *d)
{
	const char *usec = getenv("WATCHDOG_USEC");
	long long v;

	if (usec == NULL || (v = atoll(usec)) <= 0) {
		return;
	}
	d->watchdog_ms = v / 1000;
	d->watchdog = evtimer_new(d->base, on_watchdog, d);
	if (d->watchdog != NULL) {
		on_watchdog(-1, 0, d);
	}
}

const struct juki_daemon_ops *
juki_daemon_ops_of(const struct juki_daemon *d)
{
	return d->ops;
}

int
juki_daemon_main(int argc, char **argv, const struct juki_daemon_ops *ops)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"help-config", optional_argument, NULL, 'K'},
	    {NULL, 0, NULL, 0},
	};
	struct juki_daemon d;
	char err[512] = "";
	int ch, check_only = 0, level = JUKI_LOG_INFO, status = 1;

	memset(&d, 0, sizeof(d));
	d.ops = ops;
	d.config_path = ops->default_config;
	log_init(ops->name, level);
	while ((ch = getopt_long(argc, argv, "f:ndhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			d.config_path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'd':
			level = JUKI_LOG_DEBUG;
			d.debug = 1;
			break;
		case 'V':
			printf("%s %s\n", ops->name, JUKI_VERSION);
			return 0;
		case 'K':
			return juki_conf_print_help(stdout, ops->conf_table,
						    optarg ? optarg : "text") == 0
				   ? 0
				   : 2;
		case 'h':
			usage(ops, stdout);
			return 0;
		default:
			usage(ops, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(ops, stderr);
		return 2;
	}
	log_init(ops->name, level);
	d.conf = load_conf(ops, d.config_path, err, sizeof(err));
	if (d.conf == NULL) {
		log_error("%s", err);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration %s is valid\n", ops->name, d.config_path);
		free_conf(ops, d.conf);
		return 0;
	}
	/*
	 * A batch's frames, bodies and outbox entries are megabytes each,
	 * allocated and freed at every batch: glibc would map and unmap them
	 * (or trim the heap under them), and every page be faulted in again
	 * at the next (perf: a tenth of a CS's CPU, docs/benchmarks.md).
	 * Kept in the heap instead; what is freed is reused, not returned.
	 * One arena for every thread: a helper thread's arena (the bulk load's,
	 * the history's verify) is never trimmed under that threshold, and
	 * would keep its peak (64 MiB each) for the daemon's life; in the one
	 * heap, malloc_trim() gives it back when the work ends (node/load.c).
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_ARENA_MAX, 1);
	d.started_ms = juki_clock_mono_ms();
	d.base = event_base_new();
	if (d.base == NULL || setup_signals(&d) != 0) {
		log_error("%s: cannot set up the event loop", ops->name);
		goto out;
	}
	if (ops->start(&d, d.conf, &d.node, err, sizeof(err)) != 0) {
		log_error("%s: cannot start: %s", ops->name, err);
		goto out;
	}
	/* The node applies the configured log level on start; -d outranks it. */
	if (d.debug) {
		log_setlevel(JUKI_LOG_DEBUG);
	}
	setup_watchdog(&d);
	juki_sd_notify("READY=1\nSTATUS=running");
	log_notice("%s %s: running with %s", ops->name, JUKI_VERSION, d.config_path);
	event_base_dispatch(d.base);
	status = 0;
out:
	if (d.node != NULL) {
		ops->stop(&d, d.node);
	}
	if (d.watchdog != NULL) {
		event_free(d.watchdog);
	}
	if (d.sigterm != NULL) {
		event_free(d.sigterm);
	}
	if (d.sigint != NULL) {
		event_free(d.sigint);
	}
	if (d.sighup != NULL) {
		event_free(d.sighup);
	}
	if (d.base != NULL) {
		event_base_free(d.base);
	}
	free_conf(ops, d.conf);
	log_notice("%s: stopped", ops->name);
	return status;
}
