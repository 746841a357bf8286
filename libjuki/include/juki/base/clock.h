/*
 * juki — the injectable clock.
 *
 * Every decision that depends on the date (purge, deadlines, message time)
 * reads a struct juki_clock, so tests can move time without waiting.  A
 * clock with neither offset nor fixed time is the real wall clock.
 */
#ifndef JUKI_CLOCK_H
#define JUKI_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/*
 * The Japan day.  The law counts in Japan Standard Time, UTC+9 all year
 * (no daylight saving), so a day in Japan begins at 15:00 UTC the day
 * before.
 */
#define JUKI_DAY_MS        INT64_C(86400000)
#define JUKI_JST_OFFSET_MS INT64_C(32400000) /* 9 hours */

struct juki_clock {
	int64_t offset_ms; /* added to the real time */
	int64_t fixed_ms;  /* when non-zero, the time is this, always */
};

/* juki_clock_now_ms() - Unix time in milliseconds as the clock sees it. */
int64_t juki_clock_now_ms(const struct juki_clock *clock);

/* juki_clock_mono_ms() - monotonic milliseconds, for timeouts and latency. */
int64_t juki_clock_mono_ms(void);

/*
 * juki_clock_format() - write ms as RFC 3339 UTC with milliseconds,
 * "2026-11-25T01:02:03.456Z", into buf (at least 25 bytes).
 * Returns 0, or JUKI_ERANGE when buf is too small.
 */
int juki_clock_format(int64_t ms, char *buf, size_t len);

/*
 * juki_clock_parse() - read an RFC 3339 UTC time as written by
 * juki_clock_format() (the fraction is optional, digits past the third
 * ignored).  A leap second, second 60, reads as 59.999 of its minute: Unix
 * time has none.  Returns 0 or JUKI_EFORMAT.
 */
int juki_clock_parse(const char *text, int64_t *ms);

/*
 * juki_clock_date() - the calendar date "YYYY-MM-DD" of ms in Japan
 * Standard Time (UTC+9, no daylight saving), the day the law counts in.
 */
int juki_clock_date(int64_t ms, char *buf, size_t len);

/*
 * juki_clock_parse_day() - the time of 00:00 UTC on day "YYYY-MM-DD"
 * (subtract 9 hours for the start of that day in Japan).  Returns 0 or
 * JUKI_EFORMAT.
 */
int juki_clock_parse_day(const char *day, int64_t *ms);

/*
 * juki_clock_today() - the Japan day of ms, counted in days from 1970-01-01
 * (day 0 began at 1970-01-01T00:00+09:00).  Any ms, no overflow.
 */
int64_t juki_clock_today(int64_t ms);

/*
 * juki_clock_day_start() - 00:00 in Japan of day (as juki_clock_today()
 * counts), as Unix ms.  Valid for |day| below 10^8 (beyond any calendar
 * year 9999 is in).
 */
int64_t juki_clock_day_start(int64_t day);

/*
 * juki_clock_midnight() - 00:00 in Japan of the Japan day of ms, as Unix
 * ms: juki_clock_day_start(juki_clock_today(ms)).
 */
int64_t juki_clock_midnight(int64_t ms);

/*
 * juki_clock_hhmm() - read a time of day "HH:MM" (00:00..23:59, five
 * characters) into minutes after midnight.  Returns 0 or JUKI_EFORMAT.
 */
int juki_clock_hhmm(const char *text, int *minutes);

/*
 * juki_clock_day_begun() - the start of the day now in progress for a day
 * that begins at hhmm in Japan (an operating day, 第6-6(1)): the latest
 * moment at or before now when the clock in Japan read hhmm, as Unix ms.
 * Returns 0 or JUKI_EFORMAT (hhmm is not HH:MM).
 */
int juki_clock_day_begun(int64_t now, const char *hhmm, int64_t *start);

/*
 * The proleptic Gregorian calendar, days counted from 1970-01-01 as
 * juki_clock_today() counts them.  juki_clock_days_in_month(): 28..31 for
 * month m (1..12) of year y, leap years included.
 * juki_clock_days_from_civil(): the day of y-m-d (m 1..12, d 1..31);
 * juki_clock_civil_from_days(): the reverse.
 */
int juki_clock_days_in_month(int64_t y, int m);
int64_t juki_clock_days_from_civil(int64_t y, int m, int d);
void juki_clock_civil_from_days(int64_t day, int64_t *y, int *m, int *d);

/*
 * juki_date_valid() - true when text is "YYYY-MM-DD" naming a day that
 * exists in the Gregorian calendar (leap years included), years 1800..9999.
 */
int juki_date_valid(const char *text);

#endif
