/*
 * juki — the operating calendar (運用計画, 第6-1): which days are operating
 * days, and when the operating day in progress began.
 *
 * The national holidays are computed by the rules of 国民の祝日に関する法律
 * (昭和23年法律第178号) as amended up to 2018 (docs/architecture.md, "The
 * operating calendar"): the holidays of its article 2 with the years each
 * was in force and the dates each moved to, 春分の日 and 秋分の日 by the
 * standard formula for 1900-2099, 振替休日 (article 3(2)) by the rule of
 * 1973 (the Monday after a holiday on a Sunday, from 1973-04-12) and of 2007
 * (the first day after it that is no holiday), and 国民の休日 (article 3(3),
 * from 1985-12-27: a day between two holidays).  One-off changes made by
 * special laws (the royal events of 1959, 1989, 1990 and 1993, the
 * enthronement days of 2019, the Olympic moves of 2020 and 2021) are NOT
 * rules: they come from a loaded list, the Cabinet Office's syukujitsu.csv.
 * A year the loaded list has any day of takes its holidays from the list
 * alone; other years from the rules.
 *
 * Days are counted from 1970-01-01 in Japan as juki_clock_today() counts
 * them.  Pure: no I/O, no logging.
 */
#ifndef JUKI_CALENDAR_H
#define JUKI_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

/* The longest holiday name a list may give, in bytes of UTF-8. */
#define JUKI_CALENDAR_NAME_MAX 90

/* The largest list juki_calendar_parse_list() reads (the Cabinet Office's is about 20 KiB). */
#define JUKI_CALENDAR_LIST_MAX (1024 * 1024)

/*
 * juki_holiday_law() - the name of day as a holiday by the law's rules
 * alone ("元日", ..., "振替休日", "国民の休日"), or NULL for a day that is
 * none (and for any day before 1948-07-20 or after 2099).  A static string.
 */
const char *juki_holiday_law(int64_t day);

/*
 * juki_equinox_day() - the day of March (spring) or of September (!spring)
 * of the equinox of year y in Japan by the standard formula, valid
 * 1900..2099; 0 outside those years.
 */
int juki_equinox_day(int y, int spring);

/* juki_weekday() - 0 Sunday, 1 Monday, ... 6 Saturday, of day. */
int juki_weekday(int64_t day);

struct juki_calendar;

/*
 * juki_calendar_new() - a calendar with Monday to Friday open, holidays
 * closed, no closures, nothing loaded, no overrides.  NULL: out of memory.
 * juki_calendar_free() - NULL is fine.
 */
struct juki_calendar *juki_calendar_new(void);
void juki_calendar_free(struct juki_calendar *cal);

/*
 * juki_calendar_set_weekdays() - which days of the week are operating days:
 * bit w (0 Sunday .. 6 Saturday).  juki_calendar_set_holidays() - whether
 * holidays are closed days (the default) or ordinary ones.
 */
void juki_calendar_set_weekdays(struct juki_calendar *cal, unsigned mask);
void juki_calendar_set_holidays(struct juki_calendar *cal, int closed);

/*
 * juki_calendar_weekdays_parse() - "mon", "tue", ... "sun" into its bit of
 * the weekday mask.  0, or JUKI_EFORMAT.
 */
int juki_calendar_weekday_parse(const char *name, unsigned *bit);

/*
 * juki_calendar_closure_parse() - a yearly closure "MM-DD..MM-DD" (a range
 * that may wrap over the new year, "12-29..01-03") or one day "MM-DD", as
 * month * 100 + day of its first and last day.  0, or JUKI_EFORMAT.
 */
int juki_calendar_closure_parse(const char *text, int *from, int *to);

/* juki_calendar_add_closure() - add a closure (juki_calendar_closure_parse()). */
int juki_calendar_add_closure(struct juki_calendar *cal, const char *text);

/*
 * juki_calendar_add_loaded() - a day of the loaded list, with its name
 * (copied).  0; JUKI_EDUP for a day given before; JUKI_ENOMEM.
 */
int juki_calendar_add_loaded(struct juki_calendar *cal, int64_t day, const char *name);

/*
 * juki_calendar_add_override() - day is open (open != 0) or closed whatever
 * the rules say, for reason (copied).  A later override of the same day
 * replaces the earlier.  0 or JUKI_ENOMEM.
 */
int juki_calendar_add_override(struct juki_calendar *cal, int64_t day, int open,
			       const char *reason);

/*
 * juki_calendar_covered() - true when the loaded list has a day of year y
 * (then the list alone says that year's holidays).
 */
int juki_calendar_covered(const struct juki_calendar *cal, int y);

/*
 * juki_calendar_holiday() - the name of day as a holiday: from the loaded
 * list in a year it covers, else by the law's rules; NULL for none.
 * *loaded (may be NULL) tells which.  Points into cal or is static.
 */
const char *juki_calendar_holiday(const struct juki_calendar *cal, int64_t day, int *loaded);

/*
 * juki_calendar_open() - 1 when day is an operating day, 0 when not, and
 * why in why (may be NULL): "override: REASON", "holiday: NAME", "closure
 * 12-29..01-03", "Saturday", ..., or "operating day".  An override wins
 * over everything, then holidays (when closed), closures, the weekday.
 */
int juki_calendar_open(const struct juki_calendar *cal, int64_t day, char *why, size_t whylen);

/*
 * juki_calendar_day_begun() - the start of the operating day in progress
 * for operating days that begin at hhmm in Japan: the latest moment at or
 * before now when the clock in Japan read hhmm on an operating day, as
 * Unix ms.  A message queued on Friday evening is thus late only when the
 * next operating day begins.  When no day of the last 400 is an operating
 * day, that of juki_clock_day_begun() (every day).  0, or JUKI_EFORMAT.
 */
int juki_calendar_day_begun(const struct juki_calendar *cal, int64_t now, const char *hhmm,
			    int64_t *start);

/*
 * juki_calendar_hours_parse() - operating hours "HH:MM-HH:MM" (the end
 * after the start) into minutes after midnight.  0, or JUKI_EFORMAT.
 */
int juki_calendar_hours_parse(const char *text, int *open, int *close);

/*
 * juki_calendar_name_ok() - true when name is 1..JUKI_CALENDAR_NAME_MAX
 * bytes of valid UTF-8 without control characters or commas.
 */
int juki_calendar_name_ok(const char *name);

/*
 * juki_calendar_parse_list() - read a list of holidays as the Cabinet
 * Office publishes it (syukujitsu.csv: Shift_JIS, a header line, then
 * "YYYY/M/D,名称" lines, CRLF), or the same in UTF-8 (with or without a
 * BOM; the header line is optional): fn(ctx, day, name) for each day, in
 * the order of the file.  All or nothing: the whole file is checked before
 * fn is called at all.  Returns 0; JUKI_EFORMAT with the line number
 * (1-based) in *line and what is wrong in err; JUKI_ETOOBIG past
 * JUKI_CALENDAR_LIST_MAX; or what fn returned (non-zero stops).
 */
int juki_calendar_parse_list(const char *buf, size_t len,
			     int (*fn)(void *ctx, int64_t day, const char *name), void *ctx,
			     size_t *line, char *err, size_t errlen);

#endif
