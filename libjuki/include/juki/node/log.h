/*
 * juki — logging (after OpenBSD log.h).
 *
 * One sink per process: standard error.  When the process runs under
 * systemd (JOURNAL_STREAM is set) each line carries a <N> priority prefix
 * that journald understands; otherwise a timestamp and level.  A message
 * starts with its subsystem ("gateway: deny ...").  Personal data — names,
 * addresses, birth dates — never goes into a log line; 住民票コード only
 * where an operation needs it traced, and then masked (see log_code()).
 */
#ifndef JUKI_LOG_H
#define JUKI_LOG_H

#include <stdarg.h>

enum juki_log_level {
	JUKI_LOG_ERR = 3,
	JUKI_LOG_WARNING = 4,
	JUKI_LOG_NOTICE = 5,
	JUKI_LOG_INFO = 6,
	JUKI_LOG_DEBUG = 7,
};

/* log_init() - name the process and pick the level; may be called again. */
void log_init(const char *ident, int level);
/* log_setlevel() - change the level (SIGHUP reload). */
void log_setlevel(int level);
int log_getlevel(void);
/*
 * log_parse_level() - "error", "warning", "notice", "info", "debug".
 * Returns the level, or -1 for an unknown name.
 */
int log_parse_level(const char *name);

/* log_warn() appends strerror(errno); log_warnx() does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* fatal() and fatalx(): start-up failures and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * The names of the log levels in a configuration's log_level key, lowest
 * first, and the level of a name's index.
 */
extern const char *const juki_log_level_names[];
int juki_log_level_of(int index);

#endif
