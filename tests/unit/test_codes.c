#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/ident.h"

static void
test_jumin_vectors(void **state)
{
	(void)state;
	assert_int_equal(juki_jumin_code_check("24727059608"), 0);
	assert_int_equal(juki_jumin_code_check("24727059607"), JUKI_ECHECKDIGIT);
	assert_int_equal(juki_jumin_code_check("2472705960"), JUKI_EFORMAT);
	assert_int_equal(juki_jumin_code_check("247270596080"), JUKI_EFORMAT);
	assert_int_equal(juki_jumin_code_check("2472705960A"), JUKI_EFORMAT);
	assert_int_equal(juki_jumin_code_check(""), JUKI_EFORMAT);
	assert_int_equal(juki_jumin_code_check(NULL), JUKI_EFORMAT);
	assert_int_equal(juki_jumin_check_digit("2472705960"), '8');
}

static void
test_jumin_remainders(void **state)
{
	/* remainder 0 and 1 both give check digit 0 */
	(void)state;
	assert_int_equal(juki_jumin_check_digit("0000000000"), '0');
	/* 1*5 = 5, 5 mod 11 = 5 -> 6 */
	assert_int_equal(juki_jumin_check_digit("1000000000"), '6');
	/* 2*2 + 1*7 = 11 -> remainder 0 -> 0; weights 5,4,3,2,7,... */
	assert_int_equal(juki_jumin_check_digit("0000100002"), '0');
	/* 3*5 = 15 -> remainder 4 -> 7 */
	assert_int_equal(juki_jumin_check_digit("3000000000"), '7');
	/* 2*5+1*2 = 12 -> remainder 1 -> 0 */
	assert_int_equal(juki_jumin_check_digit("2000000001"), '0');
}

static void
test_lgcode_vectors(void **state)
{
	(void)state;
	assert_int_equal(juki_lgcode_check("131016"), 0);
	assert_int_equal(juki_lgcode_check("271004"), 0);
	assert_int_equal(juki_lgcode_check("011002"), 0);
	assert_int_equal(juki_lgcode_check("472018"), 0);
	assert_int_equal(juki_lgcode_check("131017"), JUKI_ECHECKDIGIT);
	assert_int_equal(juki_lgcode_check("13101"), JUKI_EFORMAT);
	assert_int_equal(juki_lgcode_check("13101x"), JUKI_EFORMAT);
	/* Check digits that match, but no prefecture 00, 82 or 48. */
	assert_int_equal(juki_lgcode_check("000001"), JUKI_EFORMAT);
	assert_int_equal(juki_lgcode_check("824658"), JUKI_EFORMAT);
	assert_int_equal(juki_lgcode_check("482013"), JUKI_EFORMAT);
	assert_int_equal(juki_pref_code_check("13"), 0);
	assert_int_equal(juki_pref_code_check("00"), JUKI_EFORMAT);
	assert_int_equal(juki_pref_code_check("48"), JUKI_EFORMAT);
}

static void
test_ident(void **state)
{
	struct juki_ident id;
	char pref[3], name[64];

	(void)state;
	assert_int_equal(juki_ident_parse("urn:juki:cs:131016", &id), 0);
	assert_int_equal(id.kind, JUKI_KIND_CS);
	assert_string_equal(id.id, "131016");
	assert_int_equal(juki_ident_pref_of(&id, pref), 0);
	assert_string_equal(pref, "13");
	assert_int_equal(juki_ident_filename(&id, name, sizeof(name)), 0);
	assert_string_equal(name, "cs-131016");
	assert_int_equal(juki_ident_parse("urn:juki:cs:131017", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:cs:824658", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:pref:13", &id), 0);
	assert_int_equal(juki_ident_parse("urn:juki:pref:48", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:jlis:0", &id), 0);
	assert_int_equal(juki_ident_pref_of(&id, pref), JUKI_ENOENT);
	assert_int_equal(juki_ident_parse("urn:juki:fwgate:east", &id), 0);
	assert_int_equal(juki_ident_parse("urn:juki:fwgate:East", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:fwgate:", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:cs:131016:x", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:nope:1", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:other:cs:131016", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse(NULL, &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:op:cs:131016:tanaka", &id), 0);
	assert_int_equal(id.kind, JUKI_KIND_OP);
	assert_int_equal(id.node_kind, JUKI_KIND_CS);
	assert_string_equal(id.op, "tanaka");
	assert_int_equal(juki_ident_filename(&id, name, sizeof(name)), 0);
	assert_string_equal(name, "op-cs-131016-tanaka");
	assert_int_equal(juki_ident_parse("urn:juki:op:cs:131016", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:op:op:131016:x", &id), JUKI_EIDENT);
}

/* Executive bodies (執行機関) and the staff cards of bodies. */
static void
test_ident_exec(void **state)
{
	struct juki_ident id;
	char pref[3], name[64];

	(void)state;
	assert_int_equal(juki_ident_parse("urn:juki:exec:13-kyoiku", &id), 0);
	assert_int_equal(id.kind, JUKI_KIND_EXEC);
	assert_string_equal(id.id, "13-kyoiku");
	assert_string_equal(juki_kind_name(JUKI_KIND_EXEC), "exec");
	assert_int_equal(juki_kind_parse("exec"), JUKI_KIND_EXEC);
	assert_int_equal(juki_ident_pref_of(&id, pref), 0);
	assert_string_equal(pref, "13");
	assert_int_equal(juki_ident_filename(&id, name, sizeof(name)), 0);
	assert_string_equal(name, "exec-13-kyoiku");
	/* A municipality's executive body: the code's check digit counts. */
	assert_int_equal(juki_ident_parse("urn:juki:exec:131016-zeimu", &id), 0);
	assert_int_equal(juki_ident_pref_of(&id, pref), 0);
	assert_string_equal(pref, "13");
	assert_int_equal(juki_ident_parse("urn:juki:exec:131017-zeimu", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:48-kyoiku", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:00-kyoiku", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:13", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:13-", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:13--x", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:kyoiku", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:1310-zeimu", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:13-Kyoiku", &id), JUKI_EIDENT);
	/* name at most 20, the whole at most 32 */
	assert_int_equal(juki_ident_parse("urn:juki:exec:13-abcdefghijklmnopqrst", &id), 0);
	assert_int_equal(juki_ident_parse("urn:juki:exec:13-abcdefghijklmnopqrstu", &id),
			 JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:exec:131016-abcdefghijklmnopqrst", &id), 0);
	assert_int_equal(juki_ident_parse("urn:juki:exec:131016-abcdefghijklmnopqrstu", &id),
			 JUKI_EIDENT);
	assert_int_equal(juki_ident_node(JUKI_KIND_EXEC, "27-kenko", &id), 0);
	assert_string_equal(id.urn, "urn:juki:exec:27-kenko");
	/* Staff cards of an agency and of an executive body */
	assert_int_equal(juki_ident_parse("urn:juki:op:exec:13-kyoiku:ito", &id), 0);
	assert_int_equal(id.kind, JUKI_KIND_OP);
	assert_int_equal(id.node_kind, JUKI_KIND_EXEC);
	assert_string_equal(id.id, "13-kyoiku");
	assert_string_equal(id.op, "ito");
	assert_int_equal(juki_ident_filename(&id, name, sizeof(name)), 0);
	assert_string_equal(name, "op-exec-13-kyoiku-ito");
	assert_int_equal(juki_ident_parse("urn:juki:op:agency:nenkin:sato", &id), 0);
	assert_int_equal(id.node_kind, JUKI_KIND_AGENCY);
	assert_int_equal(juki_ident_parse("urn:juki:op:exec:13-x", &id), JUKI_EIDENT);
	assert_int_equal(juki_ident_parse("urn:juki:op:exec:99-x:ito", &id), JUKI_EIDENT);
}

static void
test_dates(void **state)
{
	char buf[32];
	int64_t ms;

	(void)state;
	assert_true(juki_date_valid("2024-02-29"));
	assert_false(juki_date_valid("2023-02-29"));
	assert_true(juki_date_valid("2000-02-29"));
	assert_false(juki_date_valid("1900-02-29"));
	assert_false(juki_date_valid("2024-13-01"));
	assert_false(juki_date_valid("2024-04-31"));
	assert_false(juki_date_valid("2024-4-01"));
	assert_false(juki_date_valid("2024-04-01x"));
	assert_int_equal(juki_clock_parse("2026-11-25T01:02:03.456Z", &ms), 0);
	assert_int_equal(juki_clock_format(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-25T01:02:03.456Z");
	assert_int_equal(juki_clock_parse("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(juki_clock_parse("2026-11-25 01:02:03Z", &ms), JUKI_EFORMAT);
	assert_int_equal(juki_clock_parse("2026-11-25T01:02:03+09:00", &ms), JUKI_EFORMAT);
	/* A leap second is the last millisecond of its minute, whatever its fraction. */
	assert_int_equal(juki_clock_parse("2016-12-31T23:59:60Z", &ms), 0);
	assert_int_equal(juki_clock_format(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2016-12-31T23:59:59.999Z");
	assert_int_equal(juki_clock_parse("2024-02-29T12:00:60.5Z", &ms), 0);
	assert_int_equal(juki_clock_format(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2024-02-29T12:00:59.999Z");
	assert_int_equal(juki_clock_parse("2024-02-29T12:00:61Z", &ms), JUKI_EFORMAT);
	assert_int_equal(juki_clock_parse("9999-12-31T23:59:60Z", &ms), 0);
	assert_int_equal(juki_clock_format(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
	assert_int_equal(juki_clock_parse("9999-12-31T23:59:59.999Z", &ms), 0);
	assert_int_equal(juki_clock_format(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
	/* 2026-11-25T15:00:00Z is already the 26th in Japan */
	assert_int_equal(juki_clock_parse("2026-11-25T15:00:00Z", &ms), 0);
	assert_int_equal(juki_clock_date(ms, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-26");
	/* Before 1970 the millisecond still counts forward within its second. */
	assert_int_equal(juki_clock_format(-1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	/* The ends of int64: refused or written, never overflowed (UBSan watches). */
	assert_int_equal(juki_clock_date(INT64_MAX, buf, sizeof(buf)), JUKI_ERANGE);
	assert_int_equal(juki_clock_date(INT64_MAX - JUKI_JST_OFFSET_MS, buf, sizeof(buf)), 0);
	assert_true(juki_clock_format(INT64_MIN, buf, sizeof(buf)) <= 0);
	assert_true(juki_clock_format(INT64_MAX, buf, sizeof(buf)) <= 0);
}

/* The Japan day: its number, its midnight, and a day that begins at HH:MM. */
/* juki_clock_format() and juki_clock_date() write what gmtime_r() and snprintf() write. */
static void
test_format_as_gmtime(void **state)
{
	static const int64_t edges[] = {0,
					INT64_C(-1),
					INT64_C(-62167219200000),
					INT64_C(-62167219200001),
					INT64_C(253402300799999),
					INT64_C(253402300800000),
					INT64_C(951782400000), /* 2000-02-29 */
					INT64_C(4107542400000) /* 2100-03-01 */};
	uint64_t x = 88172645463325252u;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		char a[64], b[64], c[16], e[48];
		struct tm tm;
		int64_t ms;
		time_t secs;
		int frac;

		if (i < (int)(sizeof(edges) / sizeof(edges[0]))) {
			ms = edges[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Years -300 to 10300 or so, every millisecond as likely. */
			ms = (int64_t)(x % UINT64_C(334000000000000)) - INT64_C(71600000000000);
		}
		secs = (time_t)(ms / 1000 - (ms % 1000 < 0));
		frac = (int)(ms % 1000 < 0 ? ms % 1000 + 1000 : ms % 1000);
		assert_non_null(gmtime_r(&secs, &tm));
		snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
		if (strlen(b) >= 32) {
			continue;
		}
		assert_int_equal(juki_clock_format(ms, a, 32), 0);
		assert_string_equal(a, b);
		snprintf(e, sizeof(e), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday);
		if (strlen(e) < 11 && ms <= INT64_MAX - 9 * 3600 * 1000 && ms >= 0) {
			secs = (time_t)((ms + 9 * 3600 * 1000) / 1000);
			assert_non_null(gmtime_r(&secs, &tm));
			snprintf(e, sizeof(e), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
				 tm.tm_mday);
			assert_int_equal(juki_clock_date(ms, c, sizeof(c)), 0);
			assert_string_equal(c, e);
		}
	}
}

static void
test_japan_day(void **state)
{
	int64_t ms, t, start;
	int minutes;

	(void)state;
	/* 14:59:59.999 UTC is still the 25th in Japan; 15:00 UTC is the 26th. */
	assert_int_equal(juki_clock_parse("2026-11-25T15:00:00Z", &ms), 0);
	assert_int_equal(juki_clock_today(ms - 1) + 1, juki_clock_today(ms));
	assert_int_equal(juki_clock_midnight(ms), ms);
	assert_int_equal(juki_clock_midnight(ms - 1), ms - JUKI_DAY_MS);
	assert_int_equal(juki_clock_midnight(ms + JUKI_DAY_MS - 1), ms);
	assert_int_equal(juki_clock_parse_day("2026-11-26", &t), 0);
	assert_int_equal(juki_clock_today(ms), t / JUKI_DAY_MS);
	assert_int_equal(juki_clock_day_start(t / JUKI_DAY_MS), ms);
	assert_int_equal(juki_clock_midnight(t), ms);
	/* Day 0 began at 1970-01-01T00:00+09:00; before 1970 the days go on down. */
	assert_int_equal(juki_clock_today(0), 0);
	assert_int_equal(juki_clock_today(-JUKI_JST_OFFSET_MS), 0);
	assert_int_equal(juki_clock_today(-JUKI_JST_OFFSET_MS - 1), -1);
	assert_int_equal(juki_clock_midnight(-JUKI_JST_OFFSET_MS - 1),
			 -JUKI_JST_OFFSET_MS - JUKI_DAY_MS);
	/* The ends of int64: a day, never an overflow. */
	assert_int_equal(juki_clock_today(INT64_MAX), INT64_MAX / JUKI_DAY_MS);
	assert_int_equal(juki_clock_today(INT64_MIN), INT64_MIN / JUKI_DAY_MS);
	/* A leap year: 29 February is a day of its own, and 1 March follows it. */
	assert_int_equal(juki_clock_parse("2024-02-28T15:00:00Z", &ms), 0);
	assert_int_equal(juki_clock_parse_day("2024-02-29", &t), 0);
	assert_int_equal(juki_clock_midnight(t), ms);
	assert_int_equal(juki_clock_parse_day("2024-03-01", &t), 0);
	assert_int_equal(juki_clock_midnight(t), ms + JUKI_DAY_MS);
	assert_int_equal(juki_clock_parse_day("2023-03-01", &t), 0);
	assert_int_equal(juki_clock_midnight(t) - juki_clock_day_start(juki_clock_today(t) - 365),
			 365 * JUKI_DAY_MS);

	/* The calendar under the day count. */
	assert_int_equal(juki_clock_days_in_month(2024, 2), 29);
	assert_int_equal(juki_clock_days_in_month(2023, 2), 28);
	assert_int_equal(juki_clock_days_in_month(2000, 2), 29);
	assert_int_equal(juki_clock_days_in_month(1900, 2), 28);
	assert_int_equal(juki_clock_days_in_month(2024, 4), 30);
	assert_int_equal(juki_clock_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(
	    juki_clock_days_from_civil(2024, 3, 1) - juki_clock_days_from_civil(2024, 2, 28), 2);
	assert_int_equal(juki_clock_parse_day("2024-02-29", &t), 0);
	assert_int_equal(juki_clock_days_from_civil(2024, 2, 29), t / JUKI_DAY_MS);
	{
		int64_t y;
		int m, d;

		juki_clock_civil_from_days(juki_clock_today(juki_clock_midnight(t)), &y, &m, &d);
		assert_true(y == 2024 && m == 2 && d == 29);
		juki_clock_civil_from_days(-1, &y, &m, &d);
		assert_true(y == 1969 && m == 12 && d == 31);
	}

	assert_int_equal(juki_clock_hhmm("08:30", &minutes), 0);
	assert_int_equal(minutes, 8 * 60 + 30);
	assert_int_equal(juki_clock_hhmm("00:00", &minutes), 0);
	assert_int_equal(minutes, 0);
	assert_int_equal(juki_clock_hhmm("23:59", &minutes), 0);
	assert_int_equal(minutes, 23 * 60 + 59);
	assert_int_equal(juki_clock_hhmm("24:00", &minutes), JUKI_EFORMAT);
	assert_int_equal(juki_clock_hhmm("08:60", &minutes), JUKI_EFORMAT);
	assert_int_equal(juki_clock_hhmm("8:30", &minutes), JUKI_EFORMAT);
	assert_int_equal(juki_clock_hhmm("08:30x", &minutes), JUKI_EFORMAT);
	assert_int_equal(juki_clock_hhmm("0830", &minutes), JUKI_EFORMAT);
	assert_int_equal(juki_clock_hhmm(NULL, &minutes), JUKI_EFORMAT);

	/* An operating day from 08:30 in Japan (23:30 UTC the day before). */
	assert_int_equal(juki_clock_parse("2026-11-25T23:30:00Z", &ms), 0);
	assert_int_equal(juki_clock_day_begun(ms, "08:30", &start), 0);
	assert_int_equal(start, ms);
	assert_int_equal(juki_clock_day_begun(ms - 1, "08:30", &start), 0);
	assert_int_equal(start, ms - JUKI_DAY_MS);
	/* Across 15:00 UTC the Japan date turns, but the operating day does not. */
	assert_int_equal(juki_clock_parse("2026-11-25T15:00:00Z", &t), 0);
	assert_int_equal(juki_clock_day_begun(t, "08:30", &start), 0);
	assert_int_equal(start, ms - JUKI_DAY_MS);
	assert_int_equal(juki_clock_day_begun(t - 1, "08:30", &start), 0);
	assert_int_equal(start, ms - JUKI_DAY_MS);
	/* A day that begins at midnight in Japan begins at 15:00 UTC. */
	assert_int_equal(juki_clock_day_begun(t, "00:00", &start), 0);
	assert_int_equal(start, t);
	assert_int_equal(juki_clock_day_begun(t - 1, "00:00", &start), 0);
	assert_int_equal(start, t - JUKI_DAY_MS);
	/* Into 1 March of a leap year, the day before is 29 February. */
	assert_int_equal(juki_clock_parse("2024-02-29T23:29:59.999Z", &ms), 0);
	assert_int_equal(juki_clock_day_begun(ms, "08:30", &start), 0);
	assert_int_equal(juki_clock_parse("2024-02-28T23:30:00Z", &t), 0);
	assert_int_equal(start, t);
	assert_int_equal(juki_clock_day_begun(ms, "8:30", &start), JUKI_EFORMAT);
}

static void
test_clock_injection(void **state)
{
	struct juki_clock fixed = {.fixed_ms = 1234};
	struct juki_clock later = {.offset_ms = JUKI_DAY_MS};

	(void)state;
	assert_int_equal(juki_clock_now_ms(&fixed), 1234);
	assert_true(juki_clock_now_ms(&later) - juki_clock_now_ms(NULL) >= JUKI_DAY_MS - 1000);
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(juki_strerror(0), "success");
	assert_string_equal(juki_strerror(JUKI_ECHECKDIGIT), "check digit does not match");
	assert_string_equal(juki_strerror(JUKI_ENOENT), "No such file or directory");
	assert_string_equal(juki_strerror(-5000), "unknown error");
}

static void
test_seterr(void **state)
{
	char err[8];

	(void)state;
	juki_seterr(err, sizeof(err), "%s %d", "code", 42);
	assert_string_equal(err, "code 42");
	/* Truncated and terminated; a NULL or empty buffer is left alone. */
	juki_seterr(err, sizeof(err), "%s", "a longer message");
	assert_string_equal(err, "a longe");
	juki_seterr(NULL, 10, "%s", "ignored");
	juki_seterr(err, 0, "%s", "ignored");
	assert_string_equal(err, "a longe");
}

static void
test_hex(void **state)
{
	static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof(bytes) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	juki_hex_encode(bytes, sizeof(bytes), out);
	assert_string_equal(out, "00017f80abff");
	juki_hex_encode(bytes, 0, out);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jumin_vectors),
	    cmocka_unit_test(test_jumin_remainders),
	    cmocka_unit_test(test_lgcode_vectors),
	    cmocka_unit_test(test_ident),
	    cmocka_unit_test(test_ident_exec),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_japan_day),
	    cmocka_unit_test(test_clock_injection),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_seterr),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_format_as_gmtime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
