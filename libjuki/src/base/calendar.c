/*
 * The operating calendar: the national holidays by 国民の祝日に関する法律
 * and a node's own calendar around them (base/calendar.h).
 */
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "juki/base/calendar.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"

/* How far back juki_calendar_day_begun() looks for an operating day. */
#define LOOKBACK_DAYS 400

struct loaded {
	int64_t day;
	char *name;
};

struct override {
	int64_t day;
	int open;
	char *reason;
};

struct closure {
	int from, to; /* month * 100 + day */
};

struct juki_calendar {
	unsigned weekdays; /* bit w set: weekday w (0 Sunday) is an operating day */
	int holidays;      /* holidays are closed */
	struct closure *closures;
	size_t nclosures;
	struct loaded *loaded; /* sorted by day */
	size_t nloaded;
	struct override *overrides; /* sorted by day */
	size_t noverrides;
};

int
juki_weekday(int64_t day)
{
	/* 1970-01-01 was a Thursday. */
	int64_t w = (day + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

/* The n-th (1..5) Monday of month m of year y, as a day of the month. */
static int
nth_monday(int y, int m, int n)
{
	int w = juki_weekday(juki_clock_days_from_civil(y, m, 1));
	int first = 1 + (8 - w) % 7; /* w 1 (Monday): 1; w 0 (Sunday): 2 */

	return first + 7 * (n - 1);
}

int
juki_equinox_day(int y, int spring)
{
	double base;
	int leap;

	if (y < 1900 || y > 2099) {
		return 0;
	}
	/* The leap-year correction counts from 1983 before 1980, from 1980 after. */
	if (y < 1980) {
		base = spring ? 20.8357 : 23.2588;
		leap = (y - 1983) / 4;
	} else {
		base = spring ? 20.8431 : 23.2488;
		leap = (y - 1980) / 4;
	}
	return (int)(base + 0.242194 * (y - 1980) - leap);
}

/*
 * The 国民の祝日 of article 2 on y-m-d, or NULL.  Each with the years it was
 * in force at that date (the law of 1948-07-20 and its amendments of 1966,
 * 1985, 1989, 1995, 1998, 2001, 2005, 2014 and 2018).
 */
static const char *
national(int y, int m, int d)
{
	if (y < 1948 || y > 2099 || (y == 1948 && (m < 7 || (m == 7 && d < 20)))) {
		return NULL;
	}
	switch (m) {
	case 1:
		if (d == 1) {
			return "元日";
		}
		if (y <= 1999 ? d == 15 : d == nth_monday(y, 1, 2)) {
			return "成人の日";
		}
		break;
	case 2:
		if (d == 11 && y >= 1967) {
			return "建国記念の日";
		}
		if (d == 23 && y >= 2020) {
			return "天皇誕生日";
		}
		break;
	case 3:
		if (d == juki_equinox_day(y, 1)) {
			return "春分の日";
		}
		break;
	case 4:
		if (d == 29) {
			return y <= 1988 ? "天皇誕生日" : y <= 2006 ? "みどりの日" : "昭和の日";
		}
		break;
	case 5:
		if (d == 3) {
			return "憲法記念日";
		}
		if (d == 4 && y >= 2007) {
			return "みどりの日";
		}
		if (d == 5) {
			return "こどもの日";
		}
		break;
	case 7:
		if (y >= 1996 && (y <= 2002 ? d == 20 : d == nth_monday(y, 7, 3))) {
			return "海の日";
		}
		break;
	case 8:
		if (d == 11 && y >= 2016) {
			return "山の日";
		}
		break;
	case 9:
		if (y >= 1966 && (y <= 2002 ? d == 15 : d == nth_monday(y, 9, 3))) {
			return "敬老の日";
		}
		if (d == juki_equinox_day(y, 0)) {
			return "秋分の日";
		}
		break;
	case 10:
		if (y >= 1966 && (y <= 1999 ? d == 10 : d == nth_monday(y, 10, 2))) {
			return y >= 2020 ? "スポーツの日" : "体育の日";
		}
		break;
	case 11:
		if (d == 3) {
			return "文化の日";
		}
		if (d == 23) {
			return "勤労感謝の日";
		}
		break;
	case 12:
		if (d == 23 && y >= 1989 && y <= 2018) {
			return "天皇誕生日";
		}
		break;
	default:
		break;
	}
	return NULL;
}

static const char *
national_day(int64_t day)
{
	int64_t y;
	int m, d;

	juki_clock_civil_from_days(day, &y, &m, &d);
	if (y < 1948 || y > 2099) {
		return NULL;
	}
	return national((int)y, m, d);
}

const char *
juki_holiday_law(int64_t day)
{
	static const int64_t rule1973 = 1197;  /* 1973-04-12 */
	static const int64_t rule2007 = 13514; /* 2007-01-01 */
	static const int64_t bridge = 5839;    /* 1985-12-27 */
	const char *name = national_day(day);

	if (name != NULL) {
		return name;
	}
	/* 振替休日, article 3(2). */
	if (day - 1 >= rule2007) {
		/* The first day that is no 国民の祝日 after one on a Sunday. */
		for (int64_t k = day - 1; k >= day - 7 && national_day(k) != NULL; k--) {
			if (juki_weekday(k) == 0 && k >= rule2007) {
				return "振替休日";
			}
		}
	} else if (day - 1 >= rule1973 && juki_weekday(day - 1) == 0 &&
		   national_day(day - 1) != NULL) {
		/* The Monday after a 国民の祝日 on a Sunday. */
		return "振替休日";
	}
	/*
	 * 国民の休日, article 3(3): a day between two 国民の祝日; until 2006 not
	 * a Sunday (nor a 振替休日, which was seen above).
	 */
	if (day >= bridge && national_day(day - 1) != NULL && national_day(day + 1) != NULL &&
	    (day >= rule2007 || juki_weekday(day) != 0)) {
		return "国民の休日";
	}
	return NULL;
}

struct juki_calendar *
juki_calendar_new(void)
{
	struct juki_calendar *cal = calloc(1, sizeof(*cal));

	if (cal != NULL) {
		cal->weekdays = 0x3e; /* Monday to Friday */
		cal->holidays = 1;
	}
	return cal;
}

void
juki_calendar_free(struct juki_calendar *cal)
{
	if (cal == NULL) {
		return;
	}
	for (size_t i = 0; i < cal->nloaded; i++) {
		free(cal->loaded[i].name);
	}
	for (size_t i = 0; i < cal->noverrides; i++) {
		free(cal->overrides[i].reason);
	}
	free(cal->loaded);
	free(cal->overrides);
	free(cal->closures);
	free(cal);
}

void
juki_calendar_set_weekdays(struct juki_calendar *cal, unsigned mask)
{
	cal->weekdays = mask & 0x7f;
}

void
juki_calendar_set_holidays(struct juki_calendar *cal, int closed)
{
	cal->holidays = closed != 0;
}

static const char *const weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const weekday_words[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
					    "Thursday", "Friday", "Saturday"};

int
juki_calendar_weekday_parse(const char *name, unsigned *bit)
{
	for (unsigned w = 0; w < 7; w++) {
		if (strcmp(name, weekday_names[w]) == 0) {
			*bit = 1u << w;
			return 0;
		}
	}
	return JUKI_EFORMAT;
}

/* "MM-DD" at s (5 characters) into month * 100 + day of a day that exists in a leap year. */
static int
mmdd(const char *s, int *out)
{
	int m, d;

	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != '-' || s[3] < '0' ||
	    s[3] > '9' || s[4] < '0' || s[4] > '9') {
		return JUKI_EFORMAT;
	}
	m = (s[0] - '0') * 10 + (s[1] - '0');
	d = (s[3] - '0') * 10 + (s[4] - '0');
	if (m < 1 || m > 12 || d < 1 || d > juki_clock_days_in_month(2000, m)) {
		return JUKI_EFORMAT;
	}
	*out = m * 100 + d;
	return 0;
}

int
juki_calendar_closure_parse(const char *text, int *from, int *to)
{
	size_t n = strlen(text);

	if (n == 5) {
		if (mmdd(text, from) != 0) {
			return JUKI_EFORMAT;
		}
		*to = *from;
		return 0;
	}
	if (n != 12 || text[5] != '.' || text[6] != '.' || mmdd(text, from) != 0 ||
	    mmdd(text + 7, to) != 0) {
		return JUKI_EFORMAT;
	}
	return 0;
}

int
juki_calendar_add_closure(struct juki_calendar *cal, const char *text)
{
	struct closure *c;
	int from, to;

	if (juki_calendar_closure_parse(text, &from, &to) != 0) {
		return JUKI_EFORMAT;
	}
	c = realloc(cal->closures, (cal->nclosures + 1) * sizeof(*c));
	if (c == NULL) {
		return JUKI_ENOMEM;
	}
	cal->closures = c;
	c[cal->nclosures++] = (struct closure){from, to};
	return 0;
}

/* The index of the first entry of a sorted array (stride bytes, day first) at or after day. */
static size_t
lower_bound(const void *base, size_t n, size_t stride, int64_t day)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t d = *(const int64_t *)(const void *)((const char *)base + mid * stride);

		if (d < day) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

int
juki_calendar_add_loaded(struct juki_calendar *cal, int64_t day, const char *name)
{
	size_t i = lower_bound(cal->loaded, cal->nloaded, sizeof(*cal->loaded), day);
	struct loaded *l;
	char *copy;

	if (i < cal->nloaded && cal->loaded[i].day == day) {
		return JUKI_EDUP;
	}
	if ((copy = strdup(name)) == NULL) {
		return JUKI_ENOMEM;
	}
	l = realloc(cal->loaded, (cal->nloaded + 1) * sizeof(*l));
	if (l == NULL) {
		free(copy);
		return JUKI_ENOMEM;
	}
	cal->loaded = l;
	memmove(l + i + 1, l + i, (cal->nloaded - i) * sizeof(*l));
	l[i] = (struct loaded){day, copy};
	cal->nloaded++;
	return 0;
}

int
juki_calendar_add_override(struct juki_calendar *cal, int64_t day, int open, const char *reason)
{
	size_t i = lower_bound(cal->overrides, cal->noverrides, sizeof(*cal->overrides), day);
	struct override *o;
	char *copy = strdup(reason != NULL ? reason : "");

	if (copy == NULL) {
		return JUKI_ENOMEM;
	}
	if (i < cal->noverrides && cal->overrides[i].day == day) {
		free(cal->overrides[i].reason);
		cal->overrides[i].open = open != 0;
		cal->overrides[i].reason = copy;
		return 0;
	}
	o = realloc(cal->overrides, (cal->noverrides + 1) * sizeof(*o));
	if (o == NULL) {
		free(copy);
		return JUKI_ENOMEM;
	}
	cal->overrides = o;
	memmove(o + i + 1, o + i, (cal->noverrides - i) * sizeof(*o));
	o[i] = (struct override){day, open != 0, copy};
	cal->noverrides++;
	return 0;
}

int
juki_calendar_covered(const struct juki_calendar *cal, int y)
{
	int64_t first = juki_clock_days_from_civil(y, 1, 1);
	size_t i = lower_bound(cal->loaded, cal->nloaded, sizeof(*cal->loaded), first);

	return i < cal->nloaded && cal->loaded[i].day < juki_clock_days_from_civil(y + 1, 1, 1);
}

const char *
juki_calendar_holiday(const struct juki_calendar *cal, int64_t day, int *loaded)
{
	int64_t y;
	int m, d;

	juki_clock_civil_from_days(day, &y, &m, &d);
	if (loaded != NULL) {
		*loaded = 0;
	}
	if (y >= 1800 && y <= 9999 && juki_calendar_covered(cal, (int)y)) {
		size_t i = lower_bound(cal->loaded, cal->nloaded, sizeof(*cal->loaded), day);

		if (loaded != NULL) {
			*loaded = 1;
		}
		return i < cal->nloaded && cal->loaded[i].day == day ? cal->loaded[i].name : NULL;
	}
	return juki_holiday_law(day);
}

static int
in_closure(const struct closure *c, int md)
{
	if (c->from <= c->to) {
		return md >= c->from && md <= c->to;
	}
	return md >= c->from || md <= c->to; /* over the new year */
}

int
juki_calendar_open(const struct juki_calendar *cal, int64_t day, char *why, size_t whylen)
{
	size_t i = lower_bound(cal->overrides, cal->noverrides, sizeof(*cal->overrides), day);
	const char *name;
	int64_t y;
	int m, d;

	if (i < cal->noverrides && cal->overrides[i].day == day) {
		juki_seterr(why, whylen, "override: %s", cal->overrides[i].reason);
		return cal->overrides[i].open;
	}
	if (cal->holidays && (name = juki_calendar_holiday(cal, day, NULL)) != NULL) {
		juki_seterr(why, whylen, "holiday: %s", name);
		return 0;
	}
	juki_clock_civil_from_days(day, &y, &m, &d);
	for (size_t c = 0; c < cal->nclosures; c++) {
		if (in_closure(&cal->closures[c], m * 100 + d)) {
			juki_seterr(why, whylen, "closure %02d-%02d..%02d-%02d",
				    cal->closures[c].from / 100, cal->closures[c].from % 100,
				    cal->closures[c].to / 100, cal->closures[c].to % 100);
			return 0;
		}
	}
	if (!(cal->weekdays & (1u << juki_weekday(day)))) {
		juki_seterr(why, whylen, "%s", weekday_words[juki_weekday(day)]);
		return 0;
	}
	juki_seterr(why, whylen, "operating day");
	return 1;
}

int
juki_calendar_day_begun(const struct juki_calendar *cal, int64_t now, const char *hhmm,
			int64_t *start)
{
	int64_t day = juki_clock_today(now);
	int minutes;

	if (juki_clock_hhmm(hhmm, &minutes) != 0) {
		return JUKI_EFORMAT;
	}
	for (int i = 0; i <= LOOKBACK_DAYS; i++, day--) {
		int64_t s = juki_clock_day_start(day) + minutes * INT64_C(60000);

		if (s <= now && juki_calendar_open(cal, day, NULL, 0)) {
			*start = s;
			return 0;
		}
	}
	return juki_clock_day_begun(now, hhmm, start);
}

int
juki_calendar_hours_parse(const char *text, int *open, int *close)
{
	char a[6], b[6];

	if (strlen(text) != 11 || text[5] != '-') {
		return JUKI_EFORMAT;
	}
	memcpy(a, text, 5);
	a[5] = '\0';
	memcpy(b, text + 6, 5);
	b[5] = '\0';
	if (juki_clock_hhmm(a, open) != 0 || juki_clock_hhmm(b, close) != 0 || *close <= *open) {
		return JUKI_EFORMAT;
	}
	return 0;
}

int
juki_calendar_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > JUKI_CALENDAR_NAME_MAX || u8_check((const uint8_t *)name, n) != NULL) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == ',') {
			return 0;
		}
	}
	return 1;
}

/* The text in UTF-8: as it is, or converted from Shift_JIS (CP932, as Windows writes it). */
static char *
to_utf8(const char *buf, size_t len, size_t *outlen, size_t *badline)
{
	iconv_t cd;
	char *out, *in, *o;
	size_t inleft, outsize, outleft;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	in = (char *)buf;
	inleft = len;
	outsize = outleft = len * 3 + 4; /* half-width ｶ: 1 byte, 3 in UTF-8 */
	if (u8_check((const uint8_t *)buf, len) == NULL) {
		if ((out = malloc(len + 1)) != NULL) {
			memcpy(out, buf, len);
			out[len] = '\0';
			*outlen = len;
		}
		return out;
	}
	if ((cd = iconv_open("UTF-8", "CP932")) == (iconv_t)-1 &&
	    (cd = iconv_open("UTF-8", "SHIFT_JIS")) == (iconv_t)-1) {
		return NULL;
	}
	if ((out = malloc(outsize + 1)) == NULL) {
		iconv_close(cd);
		return NULL;
	}
	o = out;
	if (iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
		/* The line of the first byte that is neither UTF-8 nor Shift_JIS. */
		*badline = 1;
		for (const char *p = buf; p < in; p++) {
			*badline += *p == '\n';
		}
		free(out);
		iconv_close(cd);
		return NULL;
	}
	iconv_close(cd);
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* Digits of s into *v: at least min, at most max of them, then the character end. */
static const char *
number(const char *s, int min, int max, char end, int *v)
{
	int n = 0;

	*v = 0;
	while (*s >= '0' && *s <= '9' && n < max) {
		*v = *v * 10 + (*s++ - '0');
		n++;
	}
	return n >= min && *s == end ? s + 1 : NULL;
}

struct entry {
	int64_t day;
	const char *name;
	size_t line;
};

static int
by_day(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->day < y->day ? -1 : x->day > y->day;
}

/* One line "YYYY/M/D,名称" (the \r and \n gone) into e. */
static int
parse_line(char *text, struct entry *e, char *err, size_t errlen)
{
	const char *p;
	int y, m, d;

	if ((p = number(text, 4, 4, '/', &y)) == NULL || (p = number(p, 1, 2, '/', &m)) == NULL ||
	    (p = number(p, 1, 2, ',', &d)) == NULL) {
		juki_seterr(err, errlen, "not YYYY/M/D,名称");
		return JUKI_EFORMAT;
	}
	if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 ||
	    d > juki_clock_days_in_month(y, m)) {
		juki_seterr(err, errlen, "no such day %d/%d/%d (years 1900..2099)", y, m, d);
		return JUKI_EFORMAT;
	}
	if (!juki_calendar_name_ok(p)) {
		juki_seterr(err, errlen,
			    "the name must be 1..%d bytes, without control characters or commas",
			    JUKI_CALENDAR_NAME_MAX);
		return JUKI_EFORMAT;
	}
	e->day = juki_clock_days_from_civil(y, m, d);
	e->name = p;
	return 0;
}

int
juki_calendar_parse_list(const char *buf, size_t len,
			 int (*fn)(void *ctx, int64_t day, const char *name), void *ctx,
			 size_t *line, char *err, size_t errlen)
{
	struct entry *entries = NULL;
	size_t n = 0, cap = 0, textlen = 0, bad = 0, lineno = 0;
	char *text, *p, *next;
	int rc = 0;

	*line = 0;
	if (len > JUKI_CALENDAR_LIST_MAX) {
		juki_seterr(err, errlen, "larger than %d bytes", JUKI_CALENDAR_LIST_MAX);
		return JUKI_ETOOBIG;
	}
	if (memchr(buf, '\0', len) != NULL) {
		juki_seterr(err, errlen, "a NUL byte: not a text file");
		return JUKI_EFORMAT;
	}
	if ((text = to_utf8(buf, len, &textlen, &bad)) == NULL) {
		if (bad == 0) {
			juki_seterr(err, errlen, "out of memory");
			return JUKI_ENOMEM;
		}
		*line = bad;
		juki_seterr(err, errlen, "neither UTF-8 nor Shift_JIS");
		return JUKI_EFORMAT;
	}
	for (p = text; p != NULL && *p != '\0'; p = next) {
		size_t l;

		lineno++;
		if ((next = strchr(p, '\n')) != NULL) {
			*next++ = '\0';
		}
		l = strlen(p);
		if (l > 0 && p[l - 1] == '\r') {
			p[--l] = '\0';
		}
		if (l == 0 || (lineno == 1 && (p[0] < '0' || p[0] > '9'))) {
			continue; /* a blank line, or the header */
		}
		if (n == cap) {
			struct entry *e = realloc(entries, (cap = cap ? cap * 2 : 64) * sizeof(*e));

			if (e == NULL) {
				rc = JUKI_ENOMEM;
				juki_seterr(err, errlen, "out of memory");
				goto out;
			}
			entries = e;
		}
		if ((rc = parse_line(p, &entries[n], err, errlen)) != 0) {
			*line = lineno;
			goto out;
		}
		entries[n++].line = lineno;
	}
	if (n == 0) {
		juki_seterr(err, errlen, "no days in the list");
		*line = lineno;
		rc = JUKI_EFORMAT;
		goto out;
	}
	{
		/* A day given twice is refused at its second line. */
		struct entry *sorted = malloc(n * sizeof(*sorted));

		if (sorted == NULL) {
			rc = JUKI_ENOMEM;
			juki_seterr(err, errlen, "out of memory");
			goto out;
		}
		memcpy(sorted, entries, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), by_day);
		for (size_t i = 1; i < n; i++) {
			if (sorted[i].day == sorted[i - 1].day) {
				size_t a = sorted[i - 1].line, b = sorted[i].line;

				*line = a > b ? a : b;
				juki_seterr(err, errlen, "the same day as line %zu", a > b ? b : a);
				rc = JUKI_EFORMAT;
				break;
			}
		}
		free(sorted);
		if (rc != 0) {
			goto out;
		}
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = fn(ctx, entries[i].day, entries[i].name);
	}
out:
	free(entries);
	free(text);
	return rc;
}
