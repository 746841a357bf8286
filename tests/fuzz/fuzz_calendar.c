/*
 * Fuzz target: the operating calendar (base/calendar.h).  The input is a
 * holiday list as `juki-ctl calendar load` reads it (Shift_JIS or UTF-8):
 * every day handed out is a day of 1900..2099 with a name that passes
 * juki_calendar_name_ok(), each once; a refusal is JUKI_EFORMAT with a line
 * of the file, or JUKI_ETOOBIG, and hands out nothing.  The days of an
 * accepted list are loaded into a calendar with the input as a closure and
 * as hours too; its first eight bytes are a time at which the operating day
 * begun must be an instant at or before it, at 08:30 in Japan, of a day
 * the calendar calls open (or of any day when none of the last 400 is).
 */
#include "fuzz.h"
#include "juki/base/calendar.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"

struct seen {
	struct juki_calendar *cal;
	size_t n;
};

static int
take(void *ctx, int64_t day, const char *name)
{
	struct seen *s = ctx;
	int64_t y;
	int m, d;

	juki_clock_civil_from_days(day, &y, &m, &d);
	FUZZ_ASSERT(y >= 1900 && y <= 2099);
	FUZZ_ASSERT(juki_calendar_name_ok(name));
	FUZZ_ASSERT(juki_calendar_add_loaded(s->cal, day, name) == 0); /* each day once */
	s->n++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = {juki_calendar_new(), 0};
	char *text = fuzz_cstr(data, size), err[256];
	size_t line = 0, lines = 1;
	int rc, from, to, open, close;
	int64_t now, start;

	FUZZ_ASSERT(s.cal != NULL);
	rc = juki_calendar_parse_list((const char *)data, size, take, &s, &line, err, sizeof(err));
	for (size_t i = 0; i < size; i++) {
		lines += data[i] == '\n';
	}
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_EFORMAT || rc == JUKI_ETOOBIG);
		FUZZ_ASSERT(s.n == 0); /* all or nothing */
		FUZZ_ASSERT(line <= lines);
		FUZZ_ASSERT(strlen(err) > 0);
	} else {
		FUZZ_ASSERT(s.n > 0);
	}
	if (juki_calendar_closure_parse(text, &from, &to) == 0) {
		FUZZ_ASSERT(from >= 101 && from <= 1231 && to >= 101 && to <= 1231);
		FUZZ_ASSERT(juki_calendar_add_closure(s.cal, text) == 0);
	}
	if (juki_calendar_hours_parse(text, &open, &close) == 0) {
		FUZZ_ASSERT(open >= 0 && open < close && close < 24 * 60);
	}
	if (size >= sizeof(now)) {
		memcpy(&now, data, sizeof(now));
		/* Instants of the years the calendar knows, and around. */
		now = (int64_t)((uint64_t)now % (UINT64_C(300) * 366 * 86400000)) -
		      INT64_C(100) * 365 * 86400000;
		FUZZ_ASSERT(juki_calendar_day_begun(s.cal, now, "08:30", &start) == 0);
		FUZZ_ASSERT(start <= now && now - start <= INT64_C(401) * 86400000);
		FUZZ_ASSERT(start - juki_clock_midnight(start) == INT64_C(510) * 60000);
		FUZZ_ASSERT(juki_calendar_open(s.cal, juki_clock_today(start), NULL, 0) ||
			    now - start < 86400000);
		{
			int64_t day = juki_clock_today(now), y;
			int m, d;

			/* A year the list does not cover has the rules' holidays. */
			juki_clock_civil_from_days(day, &y, &m, &d);
			if (!juki_calendar_covered(s.cal, (int)y)) {
				FUZZ_ASSERT(juki_calendar_holiday(s.cal, day, NULL) ==
					    juki_holiday_law(day));
			}
		}
	}
	juki_calendar_free(s.cal);
	free(text);
	return 0;
}
