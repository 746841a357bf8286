/*
 * Fuzz target: times and dates (juki_clock_parse, juki_date_valid, and
 * juki_clock_format / juki_clock_date as their inverse).  The input is a
 * "time" header or a "birth" field as text; its first eight bytes are also
 * taken as a time in milliseconds, as a store or a clock offset may hold.
 * An accepted time must format back to the same instant in the one
 * spelling juki_clock_format() writes, and that spelling must parse again.
 * Any instant lies in its Japan day (juki_clock_today / juki_clock_midnight),
 * which bears the instant's Japan date.
 */
#include "fuzz.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"

#define TIME_LEN 24 /* "2026-11-25T01:02:03.456Z" */

/*
 * The one spelling of text: its fraction cut or padded to three digits; a
 * leap second, :60, is 59.999 of its minute.
 */
static void
canonical(const char *text, char out[TIME_LEN + 1])
{
	const char *frac = text[19] == '.' ? text + 20 : "";

	memcpy(out, text, 19);
	if (text[17] == '6') {
		memcpy(out + 17, "59", 2);
		frac = "999";
	}
	out[19] = '.';
	for (int i = 0; i < 3; i++) {
		out[20 + i] = frac[0] >= '0' && frac[0] <= '9' ? *frac++ : '0';
	}
	out[23] = 'Z';
	out[24] = '\0';
}

static void
check_time(const char *text)
{
	char buf[64], want[TIME_LEN + 1], date[11];
	int64_t ms = 0, again = 0;
	int rc;

	rc = juki_clock_parse(text, &ms);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_EFORMAT);
		return;
	}
	memcpy(date, text, 10);
	date[10] = '\0';
	FUZZ_ASSERT(juki_date_valid(date));
	FUZZ_ASSERT(juki_clock_format(ms, buf, sizeof(buf)) == 0);
	canonical(text, want);
	FUZZ_ASSERT(strcmp(buf, want) == 0);
	FUZZ_ASSERT(juki_clock_parse(buf, &again) == 0 && again == ms);
	/* The documented minimum buffer, and one byte less. */
	FUZZ_ASSERT(juki_clock_format(ms, buf, TIME_LEN + 1) == 0);
	FUZZ_ASSERT(juki_clock_format(ms, buf, TIME_LEN) == JUKI_ERANGE);
}

static void
check_date(const char *text)
{
	char t[32], buf[64];
	int64_t ms;

	if (!juki_date_valid(text)) {
		return;
	}
	FUZZ_ASSERT(strlen(text) == 10);
	snprintf(t, sizeof(t), "%sT00:00:00Z", text);
	FUZZ_ASSERT(juki_clock_parse(t, &ms) == 0);
	FUZZ_ASSERT(juki_clock_format(ms, buf, sizeof(buf)) == 0);
	FUZZ_ASSERT(strncmp(buf, text, 10) == 0 && strcmp(buf + 10, "T00:00:00.000Z") == 0);
	/* Midnight in Japan is 15:00 the day before in UTC. */
	FUZZ_ASSERT(juki_clock_date(ms - JUKI_JST_OFFSET_MS, buf, sizeof(buf)) == 0 &&
		    strcmp(buf, text) == 0);
	FUZZ_ASSERT(juki_clock_midnight(ms) == ms - JUKI_JST_OFFSET_MS);
}

/* The Japan day of any instant, as far as a calendar day can be written. */
static void
check_day(int64_t ms)
{
	char date[64], again[64];
	int64_t day = juki_clock_today(ms), start;

	if (day <= -100000000 || day >= 100000000) {
		return;
	}
	start = juki_clock_day_start(day);
	FUZZ_ASSERT(start <= ms && ms - start < JUKI_DAY_MS);
	FUZZ_ASSERT(juki_clock_midnight(ms) == start);
	FUZZ_ASSERT(juki_clock_today(start) == day && juki_clock_today(start - 1) == day - 1);
	if (juki_clock_date(ms, date, sizeof(date)) == 0) {
		FUZZ_ASSERT(juki_clock_date(start, again, sizeof(again)) == 0 &&
			    strcmp(date, again) == 0);
	}
}

/* Any instant: formatting fails cleanly or writes a time that parses back when in range. */
static void
check_instant(int64_t ms)
{
	char buf[64], date[64];
	int64_t again = 0;
	int y;

	if (juki_clock_format(ms, buf, sizeof(buf)) == 0 && strlen(buf) == TIME_LEN &&
	    sscanf(buf, "%4d", &y) == 1 && y >= 1800) {
		FUZZ_ASSERT(juki_clock_parse(buf, &again) == 0 && again == ms);
	}
	if (juki_clock_date(ms, date, sizeof(date)) == 0 && strlen(date) == 10 &&
	    sscanf(date, "%4d", &y) == 1 && y >= 1800) {
		FUZZ_ASSERT(juki_date_valid(date));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	int64_t ms;

	check_time(text);
	check_date(text);
	if (size >= sizeof(ms)) {
		memcpy(&ms, data, sizeof(ms));
		check_instant(ms);
		check_day(ms);
	}
	free(text);
	return 0;
}
