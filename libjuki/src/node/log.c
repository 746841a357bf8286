#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "juki/node/log.h"

/*
 * The one process-wide state of libjuki: a process has one standard error
 * and one identity, and threading a logger through every call would buy
 * nothing.
 */
static struct {
	char ident[32];
	int level;
	int journal;
} logstate = {"juki", JUKI_LOG_INFO, 0};

static const char *const level_names[] = {
    [JUKI_LOG_ERR] = "error", [JUKI_LOG_WARNING] = "warning", [JUKI_LOG_NOTICE] = "notice",
    [JUKI_LOG_INFO] = "info", [JUKI_LOG_DEBUG] = "debug",
};

void
log_init(const char *ident, int level)
{
	snprintf(logstate.ident, sizeof(logstate.ident), "%s", ident);
	logstate.level = level;
	logstate.journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(int level)
{
	logstate.level = level;
}

int
log_getlevel(void)
{
	return logstate.level;
}

int
log_parse_level(const char *name)
{
	for (int l = JUKI_LOG_ERR; l <= JUKI_LOG_DEBUG; l++) {
		if (strcasecmp(name, level_names[l]) == 0) {
			return l;
		}
	}
	if (strcasecmp(name, "err") == 0) {
		return JUKI_LOG_ERR;
	}
	if (strcasecmp(name, "warn") == 0) {
		return JUKI_LOG_WARNING;
	}
	return -1;
}

static void __attribute__((format(printf, 3, 0)))
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (level > logstate.level) {
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (logstate.journal) {
		fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%s] %s\n", when, ts.tv_nsec / 1000000, logstate.ident,
			level_names[level], msg);
	}
	fflush(stderr);
	errno = saved;
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	vlog(level, 0, fmt, ap);
}

#define LOG_FN(name, level, with_errno)                                                            \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno, fmt, ap);                                                  \
		va_end(ap);                                                                        \
	}

LOG_FN(log_warn, JUKI_LOG_WARNING, 1)
LOG_FN(log_warnx, JUKI_LOG_WARNING, 0)
LOG_FN(log_error, JUKI_LOG_ERR, 0)
LOG_FN(log_notice, JUKI_LOG_NOTICE, 0)
LOG_FN(log_info, JUKI_LOG_INFO, 0)
LOG_FN(log_debug, JUKI_LOG_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(JUKI_LOG_ERR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(JUKI_LOG_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

const char *const juki_log_level_names[] = {"error", "warning", "notice", "info", "debug", NULL};

int
juki_log_level_of(int index)
{
	static const int levels[] = {JUKI_LOG_ERR, JUKI_LOG_WARNING, JUKI_LOG_NOTICE, JUKI_LOG_INFO,
				     JUKI_LOG_DEBUG};

	if (index < 0 || index >= (int)(sizeof(levels) / sizeof(levels[0]))) {
		return JUKI_LOG_INFO;
	}
	return levels[index];
}
