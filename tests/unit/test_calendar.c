#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <iconv.h>

#include "juki/base/calendar.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"

static int64_t
day(int y, int m, int d)
{
	return juki_clock_days_from_civil(y, m, d);
}

/* The name the law's rules give y-m-d, or "" for none. */
static const char *
law(int y, int m, int d)
{
	const char *name = juki_holiday_law(day(y, m, d));

	return name != NULL ? name : "";
}

/* 00:00 JST of y-m-d plus hh:mm, as Unix ms. */
static int64_t
at(int y, int m, int d, int hh, int mm)
{
	return juki_clock_day_start(day(y, m, d)) + (hh * 60 + mm) * INT64_C(60000);
}

/* The fixed days of article 2, with when each began, moved or was renamed. */
static void
test_fixed_days_history(void **state)
{
	(void)state;
	assert_string_equal(law(1948, 7, 19), "");
	assert_string_equal(law(1948, 11, 3), "文化の日");
	assert_string_equal(law(1955, 1, 1), "元日");
	/* 天皇誕生日: 4/29, then 12/23 (1989), none in 2019, then 2/23 (2020). */
	assert_string_equal(law(1988, 4, 29), "天皇誕生日");
	assert_string_equal(law(1989, 4, 29), "みどりの日");
	assert_string_equal(law(2006, 4, 29), "みどりの日");
	assert_string_equal(law(2007, 4, 29), "昭和の日");
	assert_string_equal(law(1988, 12, 23), "");
	assert_string_equal(law(1989, 12, 23), "天皇誕生日");
	assert_string_equal(law(2018, 12, 23), "天皇誕生日"); /* a Sunday: the Monday too */
	assert_string_equal(law(2018, 12, 24), "振替休日");
	assert_string_equal(law(2017, 12, 23), "天皇誕生日");
	assert_string_equal(law(2019, 12, 23), "");
	assert_string_equal(law(2019, 2, 23), "");
	assert_string_equal(law(2020, 2, 23), "天皇誕生日");
	assert_string_equal(law(2020, 2, 24), "振替休日");
	/* 建国記念の日 from 1967; みどりの日 on 5/4 from 2007. */
	assert_string_equal(law(1966, 2, 11), "");
	assert_string_equal(law(1967, 2, 11), "建国記念の日");
	assert_string_equal(law(2007, 5, 4), "みどりの日");
	/* 海の日 (1996), 山の日 (2016), 敬老の日 and 体育の日 (1966), スポーツの日 (2020). */
	assert_string_equal(law(1995, 7, 20), "");
	assert_string_equal(law(1996, 7, 20), "海の日");
	assert_string_equal(law(2015, 8, 11), "");
	assert_string_equal(law(2016, 8, 11), "山の日");
	assert_string_equal(law(1965, 9, 15), "");
	assert_string_equal(law(1966, 9, 15), "敬老の日");
	assert_string_equal(law(1966, 10, 10), "体育の日");
	assert_string_equal(law(2019, 10, 14), "体育の日");
	assert_string_equal(law(2022, 10, 10), "スポーツの日");
}

/* Happy Monday: 成人の日 and 体育の日 from 2000, 海の日 and 敬老の日 from 2003. */
static void
test_happy_monday(void **state)
{
	(void)state;
	assert_string_equal(law(1999, 1, 15), "成人の日");
	assert_string_equal(law(2000, 1, 15), "");
	assert_string_equal(law(2000, 1, 10), "成人の日");
	assert_string_equal(law(1999, 10, 10), "体育の日");
	assert_string_equal(law(2000, 10, 9), "体育の日");
	assert_string_equal(law(2002, 7, 20), "海の日");
	assert_string_equal(law(2003, 7, 20), "");
	assert_string_equal(law(2003, 7, 21), "海の日");
	assert_string_equal(law(2002, 9, 15), "敬老の日");
	assert_string_equal(law(2003, 9, 15), "敬老の日"); /* the third Monday */
	assert_string_equal(law(2004, 9, 20), "敬老の日");
	assert_string_equal(law(2004, 9, 15), "");
	assert_int_equal(juki_weekday(day(2027, 1, 11)), 1);
	assert_string_equal(law(2027, 1, 11), "成人の日");
}

/* 春分の日 and 秋分の日 by the standard formula (the Cabinet Office's days). */
static void
test_equinoxes(void **state)
{
	(void)state;
	assert_int_equal(juki_equinox_day(1978, 1), 21);
	assert_int_equal(juki_equinox_day(1979, 0), 24);
	assert_int_equal(juki_equinox_day(2012, 1), 20);
	assert_int_equal(juki_equinox_day(2012, 0), 22);
	assert_int_equal(juki_equinox_day(2026, 1), 20);
	assert_int_equal(juki_equinox_day(2026, 0), 23);
	assert_int_equal(juki_equinox_day(2092, 1), 19);
	assert_int_equal(juki_equinox_day(1899, 1), 0);
	assert_int_equal(juki_equinox_day(2100, 0), 0);
	assert_string_equal(law(2026, 3, 20), "春分の日");
	assert_string_equal(law(2026, 9, 23), "秋分の日");
}

/* 振替休日: the Monday after (1973-04-12 on), the first day that is no holiday (2007 on). */
static void
test_substitute_rules(void **state)
{
	(void)state;
	assert_int_equal(juki_weekday(day(1973, 2, 11)), 0);
	assert_string_equal(law(1973, 2, 12), ""); /* before the rule */
	assert_string_equal(law(1973, 4, 30), "振替休日");
	assert_string_equal(law(1974, 5, 6), "振替休日");
	assert_string_equal(law(1998, 5, 4), "振替休日"); /* 5/3 a Sunday, the 1973 rule */
	/* 2008: 5/4 (みどりの日) a Sunday: 5/5 is a holiday, so 5/6. */
	assert_string_equal(law(2008, 5, 5), "こどもの日");
	assert_string_equal(law(2008, 5, 6), "振替休日");
	/* 2009: 5/3 a Sunday; 5/4 and 5/5 holidays: 5/6 (the 1973 rule had given none). */
	assert_string_equal(law(2009, 5, 6), "振替休日");
	assert_string_equal(law(2019, 5, 6), "振替休日");
	assert_string_equal(law(2019, 5, 7), "");
}

/* 国民の休日: a day between two holidays, from 1985-12-27; until 2006 not a Sunday. */
static void
test_bridge_days(void **state)
{
	(void)state;
	assert_string_equal(law(1985, 5, 4), "");
	assert_string_equal(law(1986, 5, 4), ""); /* a Sunday */
	assert_string_equal(law(1987, 5, 4), "振替休日");
	assert_string_equal(law(1988, 5, 4), "国民の休日");
	assert_string_equal(law(2006, 5, 4), "国民の休日");
	/* The silver weeks: 敬老の日 on a Monday, 秋分の日 on the Wednesday. */
	assert_string_equal(law(2009, 9, 21), "敬老の日");
	assert_string_equal(law(2009, 9, 22), "国民の休日");
	assert_string_equal(law(2009, 9, 23), "秋分の日");
	assert_string_equal(law(2015, 9, 22), "国民の休日");
	assert_string_equal(law(2026, 9, 22), "国民の休日");
	assert_string_equal(law(2032, 9, 21), "国民の休日");
	assert_string_equal(law(2010, 9, 22), "");
}

struct collect {
	struct juki_calendar *cal;
	int n;
};

static int
collect(void *ctx, int64_t d, const char *name)
{
	struct collect *c = ctx;

	c->n++;
	return juki_calendar_add_loaded(c->cal, d, name);
}

/* text (UTF-8) in CP932, as the Cabinet Office writes it. */
static char *
to_sjis(const char *text, size_t *len)
{
	iconv_t cd = iconv_open("CP932", "UTF-8");
	size_t inleft = strlen(text), outleft = inleft * 2 + 1;
	char *in = (char *)text, *out = malloc(outleft), *o = out;

	assert_true(cd != (iconv_t)-1);
	assert_true(iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1);
	iconv_close(cd);
	*len = (size_t)(o - out);
	return out;
}

static const char list_2019[] = "国民の祝日・休日月日,国民の祝日・休日名称\r\n"
				"2019/1/1,元日\r\n"
				"2019/4/29,昭和の日\r\n"
				"2019/4/30,休日\r\n"
				"2019/5/1,休日（祝日扱い）\r\n"
				"2019/5/2,休日\r\n"
				"2019/10/22,休日（祝日扱い）\r\n"
				"2020/7/23,海の日\r\n"
				"2020/7/24,スポーツの日\r\n"
				"2020/8/10,山の日\r\n"
				"2021/7/22,海の日\r\n"
				"2021/7/23,スポーツの日\r\n"
				"2021/8/8,山の日\r\n"
				"2021/8/9,休日\r\n";

/* The one-off days of 2019-2021 come from the loaded list, and it alone says those years'. */
static void
test_loaded_list(void **state)
{
	struct collect c = {juki_calendar_new(), 0};
	size_t len, line;
	char *sjis = to_sjis(list_2019, &len), err[200];
	int loaded;

	(void)state;
	assert_int_equal(juki_calendar_parse_list(sjis, len, collect, &c, &line, err, sizeof(err)),
			 0);
	free(sjis);
	assert_int_equal(c.n, 13);
	assert_true(juki_calendar_covered(c.cal, 2019));
	assert_false(juki_calendar_covered(c.cal, 2018));
	assert_string_equal(juki_calendar_holiday(c.cal, day(2019, 5, 1), &loaded),
			    "休日（祝日扱い）");
	assert_true(loaded);
	assert_string_equal(juki_calendar_holiday(c.cal, day(2019, 4, 30), NULL), "休日");
	assert_non_null(juki_calendar_holiday(c.cal, day(2019, 10, 22), NULL));
	/* 2020: the Olympic moves; the days of the rules are none that year. */
	assert_string_equal(juki_calendar_holiday(c.cal, day(2020, 7, 24), NULL), "スポーツの日");
	assert_null(juki_calendar_holiday(c.cal, day(2020, 10, 12), NULL));
	assert_null(juki_calendar_holiday(c.cal, day(2020, 8, 11), NULL));
	assert_string_equal(juki_calendar_holiday(c.cal, day(2021, 8, 9), NULL), "休日");
	/* A year the list does not cover: the rules. */
	assert_string_equal(juki_calendar_holiday(c.cal, day(2018, 12, 24), &loaded), "振替休日");
	assert_false(loaded);
	assert_string_equal(juki_calendar_holiday(c.cal, day(2022, 7, 18), NULL), "海の日");
	/* Without the list, 2019's enthronement days are none. */
	assert_string_equal(law(2019, 5, 1), "");
	assert_int_equal(juki_calendar_add_loaded(c.cal, day(2019, 5, 1), "x"), JUKI_EDUP);
	juki_calendar_free(c.cal);
}

static void
expect_bad(const char *text, size_t want_line, const char *want)
{
	struct collect c = {juki_calendar_new(), 0};
	size_t line = 0;
	char err[200] = "";

	assert_int_equal(
	    juki_calendar_parse_list(text, strlen(text), collect, &c, &line, err, sizeof(err)),
	    JUKI_EFORMAT);
	assert_int_equal(line, want_line);
	assert_non_null(strstr(err, want));
	assert_int_equal(c.n, 0); /* all or nothing */
	juki_calendar_free(c.cal);
}

/* A bad line refuses the whole list, naming the line. */
static void
test_bad_lists(void **state)
{
	(void)state;
	expect_bad("h,h\n2019/1/1,元日\n2019/13/1,x\n", 3, "no such day");
	expect_bad("2019/1/1,元日\n2019/2/30,x\n", 2, "no such day");
	expect_bad("2019/1/1,元日\n2019-01-02,x\n", 2, "YYYY/M/D");
	expect_bad("2019/1/1,元日\n2019/1/2,\n", 2, "the name");
	expect_bad("2019/1/1,元日\n2019/1/2,a,b\n", 2, "the name");
	expect_bad("2019/1/1,元日\n\n2019/01/01,again\n", 3, "the same day as line 1");
	expect_bad("h\n", 1, "no days");
	expect_bad("2019/1/1,\xff\xfe\n", 1, "neither UTF-8 nor Shift_JIS");
	expect_bad("1899/1/1,x\n", 1, "years 1900..2099");
}

/* A BOM and CRLF are fine; a file over the limit is refused before it is read. */
static void
test_list_bom_and_size(void **state)
{
	struct collect c = {juki_calendar_new(), 0};
	size_t len = JUKI_CALENDAR_LIST_MAX + 1, line = 7;
	char *big = malloc(len), err[200];
	static const char bom[] = "\xef\xbb\xbf"
				  "2019/1/1,元日\r\n";

	(void)state;
	assert_int_equal(
	    juki_calendar_parse_list(bom, strlen(bom), collect, &c, &line, err, sizeof(err)), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(juki_calendar_holiday(c.cal, day(2019, 1, 1), NULL), "元日");
	/* Half-width katakana: one byte in Shift_JIS, three in UTF-8 (30 of them: 90 bytes). */
	{
		char sjis[64] = "2030/1/1,";

		memset(sjis + 9, 0xb6, 30);
		assert_int_equal(
		    juki_calendar_parse_list(sjis, 39, collect, &c, &line, err, sizeof(err)), 0);
		assert_int_equal(c.n, 2);
		assert_int_equal(strlen(juki_calendar_holiday(c.cal, day(2030, 1, 1), NULL)), 90);
		assert_memory_equal(juki_calendar_holiday(c.cal, day(2030, 1, 1), NULL), "ｶｶｶ", 9);
	}
	memset(big, 'x', len);
	assert_int_equal(juki_calendar_parse_list(big, len, collect, &c, &line, err, sizeof(err)),
			 JUKI_ETOOBIG);
	assert_int_equal(line, 0);
	assert_int_equal(c.n, 2);
	free(big);
	juki_calendar_free(c.cal);
}

static void
test_open_days(void **state)
{
	struct juki_calendar *cal = juki_calendar_new();
	unsigned bit;
	char why[100];
	int from, to;

	(void)state;
	assert_int_equal(juki_calendar_add_closure(cal, "12-29..01-03"), 0);
	assert_int_equal(juki_calendar_add_closure(cal, "13-01"), JUKI_EFORMAT);
	assert_int_equal(juki_calendar_closure_parse("02-30", &from, &to), JUKI_EFORMAT);
	assert_int_equal(juki_calendar_closure_parse("08-13..08-15", &from, &to), 0);
	assert_int_equal(from, 813);
	assert_int_equal(to, 815);
	assert_true(juki_calendar_open(cal, day(2026, 12, 28), why, sizeof(why)));
	assert_string_equal(why, "operating day");
	assert_false(juki_calendar_open(cal, day(2026, 12, 29), why, sizeof(why)));
	assert_string_equal(why, "closure 12-29..01-03");
	assert_false(juki_calendar_open(cal, day(2027, 1, 1), why, sizeof(why)));
	assert_string_equal(why, "holiday: 元日");
	assert_false(juki_calendar_open(cal, day(2027, 1, 3), NULL, 0));
	assert_true(juki_calendar_open(cal, day(2027, 1, 4), NULL, 0));
	assert_false(juki_calendar_open(cal, day(2026, 12, 12), why, sizeof(why)));
	assert_string_equal(why, "Saturday");
	/* Overrides win: a Saturday open for an election, a weekday closed. */
	assert_int_equal(juki_calendar_add_override(cal, day(2026, 12, 12), 1, "election"), 0);
	assert_true(juki_calendar_open(cal, day(2026, 12, 12), why, sizeof(why)));
	assert_string_equal(why, "override: election");
	assert_int_equal(juki_calendar_add_override(cal, day(2026, 12, 12), 0, "moved"), 0);
	assert_false(juki_calendar_open(cal, day(2026, 12, 12), NULL, 0));
	/* Holidays as ordinary days; every weekday open. */
	juki_calendar_set_holidays(cal, 0);
	assert_true(juki_calendar_open(cal, day(2027, 1, 11), NULL, 0));
	assert_int_equal(juki_calendar_weekday_parse("sat", &bit), 0);
	assert_int_equal(bit, 1u << 6);
	assert_int_equal(juki_calendar_weekday_parse("Sat", &bit), JUKI_EFORMAT);
	juki_calendar_set_weekdays(cal, 0x7f);
	assert_true(juki_calendar_open(cal, day(2026, 12, 13), NULL, 0));
	juki_calendar_free(cal);
}

/*
 * The deadline's rule: the operating day in progress began at 08:30 of the
 * last operating day; Friday's lasts over a holiday Monday and Friday
 * 2026-12-28's over the year-end closure.
 */
static void
test_day_begun(void **state)
{
	struct juki_calendar *cal = juki_calendar_new();
	int64_t start;

	(void)state;
	assert_int_equal(juki_calendar_add_closure(cal, "12-29..01-03"), 0);
	/* 2027-01-08 is a Friday, 01-11 成人の日. */
	assert_int_equal(juki_weekday(day(2027, 1, 8)), 5);
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 8, 19, 0), "08:30", &start), 0);
	assert_true(start == at(2027, 1, 8, 8, 30));
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 11, 12, 0), "08:30", &start), 0);
	assert_true(start == at(2027, 1, 8, 8, 30));
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 12, 8, 29), "08:30", &start), 0);
	assert_true(start == at(2027, 1, 8, 8, 30));
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 12, 8, 30), "08:30", &start), 0);
	assert_true(start == at(2027, 1, 12, 8, 30));
	/* The year end: Monday 12-28 is the last operating day until Monday 01-04. */
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 2, 10, 0), "08:30", &start), 0);
	assert_true(start == at(2026, 12, 28, 8, 30));
	assert_int_equal(juki_calendar_day_begun(cal, at(2027, 1, 4, 8, 31), "08:30", &start), 0);
	assert_true(start == at(2027, 1, 4, 8, 30));
	/* Before 08:30 on an operating day: the last one's. */
	assert_int_equal(juki_calendar_day_begun(cal, at(2026, 12, 8, 7, 0), "08:30", &start), 0);
	assert_true(start == at(2026, 12, 7, 8, 30));
	assert_int_equal(juki_calendar_day_begun(cal, at(2026, 12, 8, 7, 0), "8:30", &start),
			 JUKI_EFORMAT);
	/* No operating day at all: every day's start, as without a calendar. */
	juki_calendar_set_weekdays(cal, 0);
	assert_int_equal(juki_calendar_day_begun(cal, at(2026, 12, 12, 9, 0), "08:30", &start), 0);
	assert_true(start == at(2026, 12, 12, 8, 30));
	juki_calendar_free(cal);
}

static void
test_hours_and_names(void **state)
{
	int open, close;

	(void)state;
	assert_int_equal(juki_calendar_hours_parse("08:30-17:15", &open, &close), 0);
	assert_int_equal(open, 510);
	assert_int_equal(close, 1035);
	assert_int_equal(juki_calendar_hours_parse("17:15-08:30", &open, &close), JUKI_EFORMAT);
	assert_int_equal(juki_calendar_hours_parse("8:30-17:15", &open, &close), JUKI_EFORMAT);
	assert_true(juki_calendar_name_ok("休日（祝日扱い）"));
	assert_false(juki_calendar_name_ok(""));
	assert_false(juki_calendar_name_ok("a\tb"));
	assert_false(juki_calendar_name_ok("\xe4\xbc"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed_days_history), cmocka_unit_test(test_happy_monday),
	    cmocka_unit_test(test_equinoxes),          cmocka_unit_test(test_substitute_rules),
	    cmocka_unit_test(test_bridge_days),        cmocka_unit_test(test_loaded_list),
	    cmocka_unit_test(test_bad_lists),          cmocka_unit_test(test_list_bom_and_size),
	    cmocka_unit_test(test_open_days),          cmocka_unit_test(test_day_begun),
	    cmocka_unit_test(test_hours_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
