#include <stdio.h>
#include <string.h>
#include <time.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"

int64_t
juki_clock_now_ms(const struct juki_clock *clock)
{
	struct timespec ts;

	if (clock != NULL && clock->fixed_ms != 0) {
		return clock->fixed_ms;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (clock ? clock->offset_ms : 0);
}

int64_t
juki_clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
put_digits(char *p, int64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * Years 0 to 9999 (every time a record can hold) by arithmetic: what
 * gmtime_r() and snprintf() below write, without their cost (glibc's
 * gmtime_r() takes the time zone lock), which was paid for every record at
 * every hop.  1 when written, 0 for the slow way.
 */
static int
format_fast(int64_t ms, char *buf, size_t len, int with_time)
{
	int64_t day, y, in_day;
	int m, d;

	if (len < (with_time ? 25u : 11u) || ms < INT64_C(-62167219200000) ||
	    ms >= INT64_C(253402300800000)) {
		return 0;
	}
	day = ms / 86400000 - (ms % 86400000 < 0);
	in_day = ms - day * 86400000;
	juki_clock_civil_from_days(day, &y, &m, &d);
	put_digits(buf, y, 4);
	buf[4] = '-';
	put_digits(buf + 5, m, 2);
	buf[7] = '-';
	put_digits(buf + 8, d, 2);
	if (!with_time) {
		buf[10] = '\0';
		return 1;
	}
	buf[10] = 'T';
	put_digits(buf + 11, in_day / 3600000, 2);
	buf[13] = ':';
	put_digits(buf + 14, in_day / 60000 % 60, 2);
	buf[16] = ':';
	put_digits(buf + 17, in_day / 1000 % 60, 2);
	buf[19] = '.';
	put_digits(buf + 20, in_day % 1000, 3);
	buf[23] = 'Z';
	buf[24] = '\0';
	return 1;
}

static int
format_tm(int64_t ms, char *buf, size_t len, int with_time)
{
	/* Floor division that never forms ms - 999 or secs * 1000: both overflow at the ends. */
	time_t secs = (time_t)(ms / 1000 - (ms % 1000 < 0));
	int frac = (int)(ms % 1000 < 0 ? ms % 1000 + 1000 : ms % 1000);
	struct tm tm;
	int n;

	if (format_fast(ms, buf, len, with_time)) {
		return 0;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		return JUKI_ERANGE;
	}
	if (with_time) {
		n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	} else {
		n = snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday);
	}
	return (n < 0 || (size_t)n >= len) ? JUKI_ERANGE : 0;
}

int
juki_clock_format(int64_t ms, char *buf, size_t len)
{
	return format_tm(ms, buf, len, 1);
}

int
juki_clock_date(int64_t ms, char *buf, size_t len)
{
	if (ms > INT64_MAX - JUKI_JST_OFFSET_MS) {
		return JUKI_ERANGE;
	}
	return format_tm(ms + JUKI_JST_OFFSET_MS, buf, len, 0);
}

int64_t
juki_clock_today(int64_t ms)
{
	/* Split before adding the offset: ms + 9 hours may not fit. */
	int64_t q = ms / JUKI_DAY_MS, r = ms % JUKI_DAY_MS;

	if (r < 0) {
		q--;
		r += JUKI_DAY_MS;
	}
	return r + JUKI_JST_OFFSET_MS >= JUKI_DAY_MS ? q + 1 : q;
}

int64_t
juki_clock_day_start(int64_t day)
{
	return day * JUKI_DAY_MS - JUKI_JST_OFFSET_MS;
}

int64_t
juki_clock_midnight(int64_t ms)
{
	return juki_clock_day_start(juki_clock_today(ms));
}

int
juki_clock_hhmm(const char *text, int *minutes)
{
	int h, m;
	char end;

	if (text == NULL || sscanf(text, "%2d:%2d%c", &h, &m, &end) != 2 || strlen(text) != 5 ||
	    h < 0 || h > 23 || m < 0 || m > 59) {
		return JUKI_EFORMAT;
	}
	*minutes = h * 60 + m;
	return 0;
}

int
juki_clock_day_begun(int64_t now, const char *hhmm, int64_t *start)
{
	int minutes;

	if (juki_clock_hhmm(hhmm, &minutes) != 0) {
		return JUKI_EFORMAT;
	}
	*start = juki_clock_midnight(now) + minutes * INT64_C(60000);
	if (*start > now) {
		*start -= JUKI_DAY_MS;
	}
	return 0;
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
juki_clock_days_in_month(int64_t y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
juki_date_valid(const char *text)
{
	int y, m, d;

	if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-') {
		return 0;
	}
	if (digits(text, 4, &y) || digits(text + 5, 2, &m) || digits(text + 8, 2, &d)) {
		return 0;
	}
	if (y < 1800 || m < 1 || m > 12 || d < 1) {
		return 0;
	}
	return d <= juki_clock_days_in_month(y, m);
}

/* After Howard Hinnant's days_from_civil and civil_from_days. */
int64_t
juki_clock_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
juki_clock_civil_from_days(int64_t day, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	day += 719468;
	era = (day >= 0 ? day : day - 146096) / 146097;
	doe = day - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

int
juki_clock_parse_day(const char *day, int64_t *ms)
{
	char text[32];

	if (!juki_date_valid(day)) {
		return JUKI_EFORMAT;
	}
	snprintf(text, sizeof(text), "%sT00:00:00Z", day);
	return juki_clock_parse(text, ms);
}

int
juki_clock_parse(const char *text, int64_t *ms)
{
	int hh, mi, ss, frac = 0;
	int y = 0, m = 0, d = 0;
	const char *p;
	char date[11];

	if (text == NULL || strlen(text) < 20) {
		return JUKI_EFORMAT;
	}
	memcpy(date, text, 10);
	date[10] = '\0';
	if (!juki_date_valid(date) || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
		return JUKI_EFORMAT;
	}
	digits(text, 4, &y);
	digits(text + 5, 2, &m);
	digits(text + 8, 2, &d);
	/* Second 60 is a leap second (RFC 3339 §5.6): read below, not refused. */
	if (digits(text + 11, 2, &hh) || digits(text + 14, 2, &mi) || digits(text + 17, 2, &ss) ||
	    hh > 23 || mi > 59 || ss > 60) {
		return JUKI_EFORMAT;
	}
	p = text + 19;
	if (*p == '.') {
		int n = 0, scale = 1000;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 3) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
			n++;
			p++;
		}
		if (n == 0) {
			return JUKI_EFORMAT;
		}
	}
	if (strcmp(p, "Z") != 0) {
		return JUKI_EFORMAT;
	}
	/*
	 * Unix time has no leap second: :60 is held as the last millisecond of
	 * its minute, 59.999, whatever its fraction.  It stays in its minute and
	 * its day (the next second would be a second spelling of :00, and past
	 * 9999-12-31 no time can be written back), and still sorts after every
	 * earlier second.
	 */
	if (ss == 60) {
		ss = 59;
		frac = 999;
	}
	*ms = ((juki_clock_days_from_civil(y, m, d) * 86400) + hh * 3600 + mi * 60 + ss) * 1000 +
	      frac;
	return 0;
}
