#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/records/honnin.h"
#include "juki/store/purge.h"

#include "helpers.h"

/* The names whose bytes the proof of erasure looks for. */
#define ERASED    "消去太郎"
#define KEPT      "保存花子"
#define OLD_NAME  "旧姓次郎"
#define NEW_NAME  "新姓次郎"
#define REJECTED  "拒否三郎"
#define CODE_E    "1234567890"
#define CODE_K    "2234567890"
#define CODE_C    "3234567890"
#define MUNI      "131016"
#define ADDRESS   "東京都千代田区千代田1番1号"
#define BIRTHDATE "1980-01-02"

/* Unix ms of a Japan Standard Time wall clock "YYYY-MM-DDTHH:MM:SS.mmm". */
static int64_t
jst(const char *local)
{
	char text[40];
	int64_t ms;

	snprintf(text, sizeof(text), "%sZ", local);
	assert_int_equal(juki_clock_parse(text, &ms), 0);
	return ms - JUKI_JST_OFFSET_MS;
}

static int64_t
utc(const char *text)
{
	int64_t ms;

	assert_int_equal(juki_clock_parse(text, &ms), 0);
	return ms;
}

static void
test_due_day_of_recording(void **state)
{
	(void)state;
	/* Any time on the day counts as that day: the period starts on it. */
	assert_int_equal(juki_purge_due_ms(jst("2024-04-01T00:00:00.000"), 5),
			 jst("2029-04-01T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(jst("2024-04-01T23:59:59.999"), 5),
			 jst("2029-04-01T00:00:00.000"));
	/* One minute before midnight is the day before, and due a day earlier. */
	assert_int_equal(juki_purge_due_ms(jst("2024-03-31T23:59:00.000"), 5),
			 jst("2029-03-31T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(jst("2024-04-01T12:00:00.000"), 1),
			 jst("2025-04-01T00:00:00.000"));
}

static void
test_due_jst_not_utc(void **state)
{
	char text[32];

	(void)state;
	/* 15:00 UTC is midnight in Japan: the UTC date is not the day that counts. */
	assert_int_equal(juki_purge_due_ms(utc("2024-03-31T14:59:59.999Z"), 5),
			 jst("2029-03-31T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(utc("2024-03-31T15:00:00.000Z"), 5),
			 jst("2029-04-01T00:00:00.000"));
	/* and the moment it is due is midnight JST, 15:00 UTC the day before */
	juki_clock_format(juki_purge_due_ms(utc("2024-03-31T15:00:00.000Z"), 5), text,
			  sizeof(text));
	assert_string_equal(text, "2029-03-31T15:00:00.000Z");
	/* before 1970 as well */
	assert_int_equal(juki_purge_due_ms(jst("1969-12-31T12:00:00.000"), 5),
			 jst("1974-12-31T00:00:00.000"));
}

static void
test_due_leap_day(void **state)
{
	int64_t feb29 = jst("2024-02-29T10:00:00.000");

	(void)state;
	/* No 29 February in 2029: the period ends on the 28th, purge is due on 1 March. */
	assert_int_equal(juki_purge_due_ms(feb29, 5), jst("2029-03-01T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(feb29, 1), jst("2025-03-01T00:00:00.000"));
	/* Four years on there is one: due on it. */
	assert_int_equal(juki_purge_due_ms(feb29, 4), jst("2028-02-29T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(feb29, 8), jst("2032-02-29T00:00:00.000"));
	/* 2100 is not a leap year. */
	assert_int_equal(juki_purge_due_ms(jst("2096-02-29T00:00:00.000"), 4),
			 jst("2100-03-01T00:00:00.000"));
	/* The days around it are plain. */
	assert_int_equal(juki_purge_due_ms(jst("2024-02-28T23:59:59.999"), 5),
			 jst("2029-02-28T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(jst("2024-03-01T00:00:00.000"), 5),
			 jst("2029-03-01T00:00:00.000"));
	/* Into a leap year from a common one: 28 February stays 28 February. */
	assert_int_equal(juki_purge_due_ms(jst("2023-02-28T08:00:00.000"), 5),
			 jst("2028-02-28T00:00:00.000"));
}

static void
test_due_year_end(void **state)
{
	(void)state;
	assert_int_equal(juki_purge_due_ms(jst("2024-12-31T23:30:00.000"), 5),
			 jst("2029-12-31T00:00:00.000"));
	/* 2024-12-31T15:00Z is New Year's Day in Japan. */
	assert_int_equal(juki_purge_due_ms(utc("2024-12-31T15:00:00.000Z"), 5),
			 jst("2030-01-01T00:00:00.000"));
	assert_int_equal(juki_purge_due_ms(jst("2025-01-01T00:00:00.000"), 5),
			 jst("2030-01-01T00:00:00.000"));
}

static void
test_due_never(void **state)
{
	int64_t t = jst("2024-04-01T00:00:00.000");

	(void)state;
	assert_int_equal(juki_purge_due_ms(t, 0), INT64_MAX);
	assert_int_equal(juki_purge_due_ms(t, -1), INT64_MAX);
	assert_int_equal(juki_purge_due_ms(t, 10000), INT64_MAX);
	assert_int_equal(juki_purge_due_ms(jst("9998-06-01T00:00:00.000"), 5), INT64_MAX);
	assert_int_equal(juki_purge_due_ms(INT64_MAX, 5), INT64_MAX);
	assert_int_equal(juki_purge_cutoff_ms(t, 0), INT64_MIN);
	assert_int_equal(juki_purge_cutoff_ms(t, -3), INT64_MIN);
	assert_int_equal(juki_purge_cutoff_ms(INT64_MIN, 5), INT64_MIN);
	/* extreme inputs give answers, not overflows */
	assert_true(juki_purge_due_ms(INT64_MIN, 5) < jst("1970-01-01T00:00:00.000"));
	assert_true(juki_purge_cutoff_ms(INT64_MAX, 5) > jst("9990-01-01T00:00:00.000"));
}

/*
 * The cutoff is the date rule seen from the other side: at every moment
 * checked, the record just before the cutoff is due and the one at it is
 * not.  Due dates never go back as records get later.
 */
static void
test_cutoff_agrees_with_due(void **state)
{
	static const int years[] = {1, 4, 5, 7};
	static const int64_t offsets[] = {0, JUKI_JST_OFFSET_MS - 1, JUKI_JST_OFFSET_MS,
					  JUKI_DAY_MS - 1};
	int64_t first = jst("2027-01-01T00:00:00.000"), prev, due;

	(void)state;
	for (size_t y = 0; y < sizeof(years) / sizeof(years[0]); y++) {
		for (int64_t day = 0; day < 5 * 366; day++) {
			for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
				int64_t now = first + day * JUKI_DAY_MS + offsets[o];
				int64_t cut = juki_purge_cutoff_ms(now, years[y]);

				assert_true(juki_purge_due_ms(cut - 1, years[y]) <= now);
				assert_true(juki_purge_due_ms(cut, years[y]) > now);
				/* the cutoff is a JST midnight */
				assert_int_equal((cut + JUKI_JST_OFFSET_MS) % JUKI_DAY_MS, 0);
			}
		}
		prev = INT64_MIN;
		for (int64_t t = jst("2019-01-01T00:00:00.000"); t < jst("2026-01-01T00:00:00.000");
		     t += JUKI_DAY_MS / 3) {
			due = juki_purge_due_ms(t, years[y]);
			assert_true(due >= prev);
			assert_true(due > t);
			prev = due;
		}
	}
}

/* -- purge runs ---------------------------------------------------------- */

struct fx {
	char dir[64];
	char path[128];
	struct juki_store *store;
	int ticks;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "purge"));
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	assert_int_equal(
	    juki_store_open(f->path, &juki_honnin_schema, 1, &f->store, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->store);
	assert_int_equal(test_rm_rf(f->dir), 0);
	free(f);
	return 0;
}

static void
count_tick(void *arg)
{
	((struct fx *)arg)->ticks++;
}

static struct juki_purge_conf
conf_of(struct fx *f)
{
	struct juki_purge_conf c = {
	    .years = 5,
	    .rejected_years = 5,
	    .inbox_days = 400,
	    .tick = count_tick,
	    .tick_arg = f,
	};

	return c;
}

static const char *
code_of(const char *first10, char *out)
{
	snprintf(out, 12, "%s%c", first10, juki_jumin_check_digit(first10));
	assert_int_equal(juki_jumin_code_check(out), 0);
	return out;
}

/* Record a change of person first10 as this node would: at recorded, applied a minute later. */
static void
record(struct fx *f, const char *first10, int version, const char *reason, const char *name,
       int64_t recorded)
{
	struct juki_field_error fe;
	enum juki_apply_outcome out;
	struct juki_change c;
	char code[12], when[32], day[11];
	json_t *r;

	juki_clock_format(recorded, when, sizeof(when));
	juki_clock_date(recorded, day, sizeof(day));
	r = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s,s:i,s:s}}", "code",
		      code_of(first10, code), "lgcode", MUNI, "version", version, "reason", reason,
		      "reason_date", day, "recorded", when, "person", "name", name, "birth",
		      BIRTHDATE, "sex", 1, "address", ADDRESS);
	assert_non_null(r);
	assert_int_equal(juki_change_from_json(r, &c, &fe), 0);
	json_decref(r);
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_honnin_apply(f->store, &c, NULL, recorded + 60000, NULL, &out), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
	assert_int_not_equal(out, JUKI_APPLIED_DUPLICATE);
}

static int64_t
count_rows(struct fx *f, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store), sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
exec_ok(struct fx *f, const char *sql)
{
	assert_int_equal(juki_store_exec(f->store, sql), 0);
}

/* Does needle occur in the file at path (a missing file holds nothing)? */
static int
file_holds(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 0, len = 0, n;
	char *buf = NULL;
	int found;

	if (fp == NULL) {
		return 0;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	found = memmem(buf, len, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

/* Anywhere in the store's files: the database, its WAL, a rollback journal. */
static int
store_holds(struct fx *f, const char *needle)
{
	static const char *const suffixes[] = {"", "-wal", "-journal", "-shm"};
	char path[160];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", f->path, suffixes[i]);
		if (file_holds(path, needle)) {
			return 1;
		}
	}
	return 0;
}

static int64_t
wal_size(struct fx *f)
{
	char path[160];
	struct stat sb;

	snprintf(path, sizeof(path), "%s-wal", f->path);
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static const json_t *
rule_in(const json_t *report, const char *name)
{
	const json_t *r;
	size_t i;

	json_array_foreach(json_object_get(report, "rules"), i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0) {
			return r;
		}
	}
	fail_msg("no rule %s in the report", name);
	return NULL;
}

static json_int_t
rule_n(const json_t *report, const char *name, const char *what)
{
	return json_integer_value(json_object_get(rule_in(report, name), what));
}

static json_int_t
total(const json_t *report, const char *what)
{
	return json_integer_value(json_object_get(report, what));
}

static json_t *
run_ok(struct fx *f, const struct juki_purge_conf *conf, const struct juki_purge_rule *rules,
       int64_t now, int dry)
{
	json_t *report = NULL;
	int rc = juki_purge_run(f->store, conf, rules, now, dry, &report);

	if (rc != 0) {
		print_error("purge: %s: %s\n", juki_strerror(rc), juki_store_errmsg(f->store));
	}
	assert_int_equal(rc, 0);
	assert_non_null(report);
	assert_true(json_is_true(json_object_get(report, "dry_run")) == (dry != 0));
	if (!dry) {
		assert_true(json_is_true(json_object_get(report, "verified")));
		assert_true(json_is_true(
		    json_object_get(json_object_get(report, "checkpoint"), "complete")));
		assert_int_equal(json_integer_value(json_object_get(
				     json_object_get(report, "checkpoint"), "wal_bytes")),
				 0);
		assert_int_equal(wal_size(f), 0);
	}
	return report;
}

/*
 * The people of the proof:
 *   E  消去太郎  entered 2020-06-10, moved within the town 2020-07-10, left
 *              2021-03-15 (a removal: current), so two history rows;
 *   K  保存花子  entered 2020-06-10 and still resident;
 *   C  旧姓次郎 entered 2020-06-10, renamed 新姓次郎 2021-03-15.
 */
static void
record_people(struct fx *f)
{
	record(f, CODE_E, 1, "転入", ERASED, jst("2020-06-10T10:00:00.000"));
	record(f, CODE_E, 2, "転居", ERASED, jst("2020-07-10T10:00:00.000"));
	record(f, CODE_E, 3, "転出", ERASED, jst("2021-03-15T09:00:00.000"));
	record(f, CODE_K, 1, "転入", KEPT, jst("2020-06-10T10:00:00.000"));
	record(f, CODE_C, 1, "転入", OLD_NAME, jst("2020-06-10T10:00:00.000"));
	record(f, CODE_C, 2, "氏名変更", NEW_NAME, jst("2021-03-15T12:00:00.000"));
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin"), 3);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_history"), 3);
}

static void
test_proof_of_erasure(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	json_t *report;
	char cutoff[32];

	record_people(f);
	/* The scan finds the names while they are held, or it proves nothing. */
	assert_true(store_holds(f, ERASED));
	assert_true(store_holds(f, OLD_NAME));

	/* Before the first due day (E's move of 2020-07-10): nothing is due, nothing goes. */
	report = run_ok(f, &conf, NULL, jst("2025-07-09T23:59:59.999"), 1);
	assert_int_equal(total(report, "due"), 0);
	json_decref(report);
	report = run_ok(f, &conf, NULL, jst("2025-07-09T23:59:59.999"), 0);
	assert_int_equal(total(report, "removed"), 0);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_history"), 3);

	/* From midnight JST, E's first record (superseded 2020-07-10) is due, and only it. */
	report = run_ok(f, &conf, NULL, jst("2025-07-10T00:00:00.000"), 1);
	assert_int_equal(total(report, "due"), 1);
	assert_int_equal(rule_n(report, "honnin_history", "due"), 1);
	assert_int_equal(rule_n(report, "honnin_history", "removed"), 0);
	assert_null(json_object_get(report, "checkpoint"));
	assert_null(json_object_get(report, "verified"));
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_history"), 3);
	report = run_ok(f, &conf, NULL, jst("2025-07-10T00:00:00.000"), 0);
	assert_int_equal(rule_n(report, "honnin_history", "removed"), 1);
	assert_int_equal(rule_n(report, "honnin_history", "remaining"), 0);
	assert_int_equal(total(report, "removed"), 1);
	juki_clock_format(jst("2020-07-11T00:00:00.000"), cutoff, sizeof(cutoff));
	assert_string_equal(
	    json_string_value(json_object_get(rule_in(report, "honnin_history"), "cutoff")),
	    cutoff);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_history WHERE version = 1 AND"
				       " code LIKE '1234567890_'"),
			 0);

	/* The last moment of 2026-03-14: E's removal and C's old name are not due yet. */
	report = run_ok(f, &conf, NULL, jst("2026-03-14T23:59:59.999"), 0);
	assert_int_equal(total(report, "removed"), 0);
	json_decref(report);
	assert_true(store_holds(f, ERASED));

	/* Five years and a day after E left: E entirely, and C's old record. */
	report = run_ok(f, &conf, NULL, jst("2026-03-16T09:00:00.000"), 0);
	assert_int_equal(rule_n(report, "honnin_removed_history", "removed"), 1);
	assert_int_equal(rule_n(report, "honnin_removed", "removed"), 1);
	assert_int_equal(rule_n(report, "honnin_history", "removed"), 1);
	assert_int_equal(total(report, "removed"), 3);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin"), 2);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_history"), 0);

	/* Not a byte of the erased names anywhere; what is kept is still there. */
	assert_false(store_holds(f, ERASED));
	assert_false(store_holds(f, OLD_NAME));
	assert_true(store_holds(f, KEPT));
	assert_true(store_holds(f, NEW_NAME));

	/* Again: nothing more to do. */
	report = run_ok(f, &conf, NULL, jst("2026-03-16T09:00:00.000"), 0);
	assert_int_equal(total(report, "removed"), 0);
	assert_int_equal(total(report, "due"), 0);
	json_decref(report);
	/* Residents are never due, however late. */
	report = run_ok(f, &conf, NULL, jst("2090-01-01T00:00:00.000"), 0);
	assert_int_equal(total(report, "removed"), 0);
	json_decref(report);
	assert_true(store_holds(f, KEPT));
	assert_true(f->ticks > 0);
}

/* The update counts go by their JST day, with the records of that day. */
static void
test_counts_rules(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	int64_t now = jst("2025-12-31T12:00:00.000");
	json_t *report;

	exec_ok(
	    f,
	    "INSERT INTO honnin_counts VALUES (0, 'urn:juki:cs:131016', '2020-12-31', '転入', 3),"
	    " (0, 'urn:juki:cs:131016', '2020-12-31', '死亡', 1),"
	    " (0, 'urn:juki:cs:131016', '2021-01-01', '転入', 2);"
	    "INSERT INTO honnin_digest VALUES (0, 'urn:juki:cs:131016', '2020-12-31', x'00'),"
	    " (0, 'urn:juki:cs:131016', '2021-01-01', x'01');");
	/* The last moment of 2025-12-30: 2020-12-30 and before only, so nothing. */
	report = run_ok(f, &conf, NULL, jst("2025-12-30T23:59:59.999"), 1);
	assert_int_equal(rule_n(report, "honnin_counts", "due"), 0);
	assert_int_equal(rule_n(report, "honnin_digest", "due"), 0);
	json_decref(report);
	report = run_ok(f, &conf, NULL, now, 0);
	assert_int_equal(rule_n(report, "honnin_counts", "removed"), 2);
	assert_int_equal(rule_n(report, "honnin_digest", "removed"), 1);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM honnin_counts"), 1);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM honnin_digest WHERE day = '2021-01-01'"), 1);
	/* A period of 0 keeps them for ever. */
	conf.years = 0;
	report = run_ok(f, &conf, NULL, jst("2099-01-01T00:00:00.000"), 0);
	assert_int_equal(rule_n(report, "honnin_counts", "removed"), 0);
	json_decref(report);
}

static void
test_store_rules(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	int64_t now = jst("2025-12-31T12:00:00.000");
	char sql[512];
	json_t *report;

	/* A refused message of 2020-12-31 and one of 2021-01-01 (JST); their payloads name people.
	 */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO outbox_rejected VALUES (1, 'urn:juki:pref:13', 'honnin', 'a', 't',"
		 " '{\"name\":\"" REJECTED "\"}', 0, %lld, 'bad-field', '');"
		 "INSERT INTO outbox_rejected VALUES (2, 'urn:juki:pref:13', 'honnin', 'b', 't',"
		 " '{\"name\":\"" KEPT "\"}', 0, %lld, 'bad-field', '');",
		 (long long)jst("2020-12-31T23:59:59.999"),
		 (long long)jst("2021-01-01T00:00:00.000"));
	exec_ok(f, sql);
	/* Message ids received 401 and 400 days ago, and just now. */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO inbox VALUES ('m1', 's', 't', 0, NULL, %lld, NULL);"
		 "INSERT INTO inbox VALUES ('m2', 's', 't', 0, NULL, %lld, NULL);"
		 "INSERT INTO inbox VALUES ('m3', 's', 't', 0, NULL, %lld, NULL);",
		 (long long)(now - 401 * JUKI_DAY_MS), (long long)(now - 400 * JUKI_DAY_MS),
		 (long long)now);
	exec_ok(f, sql);
	/* A refused replay of as long ago, and one of just now: kept as long as the inbox's ids. */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO inbox_mismatch(msg_id, sender, digest, received_ms, text) VALUES"
		 " ('m1', 's', x'01', %lld, '{}'), ('m3', 's', x'02', %lld, '{}');",
		 (long long)(now - 401 * JUKI_DAY_MS), (long long)now);
	exec_ok(f, sql);

	report = run_ok(f, &conf, NULL, now, 1);
	assert_int_equal(rule_n(report, "outbox_rejected", "due"), 1);
	assert_int_equal(rule_n(report, "inbox", "due"), 1);
	assert_string_equal(json_string_value(json_object_get(rule_in(report, "inbox"), "period")),
			    "inbox_days");
	assert_string_equal(
	    json_string_value(json_object_get(rule_in(report, "outbox_rejected"), "period")),
	    "rejected_years");
	json_decref(report);

	report = run_ok(f, &conf, NULL, now, 0);
	assert_int_equal(rule_n(report, "outbox_rejected", "removed"), 1);
	assert_int_equal(rule_n(report, "inbox", "removed"), 1);
	assert_int_equal(rule_n(report, "inbox_mismatch", "removed"), 1);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM outbox_rejected WHERE seq = 2"), 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox"), 2);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox_mismatch WHERE msg_id = 'm3'"),
			 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox_mismatch"), 1);
	assert_false(store_holds(f, REJECTED));
	assert_true(store_holds(f, KEPT));

	/* Periods of 0: nothing of that rule is ever due; the cutoff says so. */
	conf.rejected_years = 0;
	conf.inbox_days = 0;
	report = run_ok(f, &conf, NULL, jst("2099-01-01T00:00:00.000"), 0);
	assert_int_equal(rule_n(report, "outbox_rejected", "removed"), 0);
	assert_int_equal(rule_n(report, "inbox", "removed"), 0);
	assert_true(json_is_null(json_object_get(rule_in(report, "inbox"), "cutoff")));
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox"), 2);
}

static void
test_batches(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	char sql[256];
	json_t *report;

	for (int i = 0; i < 7; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO inbox VALUES ('m%d', 's', 't', 0, NULL, %d, NULL)", i,
			 1000 + i);
		exec_ok(f, sql);
	}
	conf.batch = 2;
	report = run_ok(f, &conf, NULL, jst("2026-01-01T00:00:00.000"), 0);
	assert_int_equal(rule_n(report, "inbox", "removed"), 7);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM inbox"), 0);
	/* one tick per transaction (4 of at most 2 rows) and one before the checkpoint */
	assert_int_equal(f->ticks, 5);
}

/* A daemon's own table and rule, run after libjuki's. */
static const struct juki_migration case_steps[] = {
    {1, "CREATE TABLE cases (id INTEGER PRIMARY KEY, closed_ms INTEGER NOT NULL, note TEXT)"},
};
static const struct juki_schema case_schema = {"cases", case_steps, 1};

static const char cases_count[] = "SELECT count(*) FROM cases WHERE closed_ms < ?1";
static const char cases_delete[] =
    "DELETE FROM cases WHERE id IN (SELECT id FROM cases WHERE closed_ms < ?1 LIMIT ?2)";
static const char cases_delete_none[] = "DELETE FROM cases WHERE 0 AND ?1 AND ?2";
static const char bad_sql[] = "SELECT count(*) FROM no_such_table WHERE x < ?1";
static const char text_count[] = "SELECT 'many' WHERE ?1 IS NOT NULL";

static const struct juki_purge_rule case_rules[] = {
    {"cases", "cases", cases_count, cases_delete, JUKI_PURGE_YEARS},
    {NULL, NULL, NULL, NULL, 0},
};

static void
test_daemon_rules(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	struct juki_schema schemas[2] = {juki_honnin_schema, case_schema};
	char err[256], sql[256];
	const json_t *r;
	json_t *report;

	juki_store_close(f->store);
	assert_int_equal(juki_store_open(f->path, schemas, 2, &f->store, err, sizeof(err)), 0);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO cases VALUES (1, %lld, '" ERASED "'), (2, %lld, '" KEPT "')",
		 (long long)jst("2020-05-01T00:00:00.000"),
		 (long long)jst("2021-05-01T00:00:00.000"));
	exec_ok(f, sql);
	report = run_ok(f, &conf, case_rules, jst("2025-05-01T00:00:00.000"), 0);
	r = json_array_get(json_object_get(report, "rules"), 8);
	assert_string_equal(json_string_value(json_object_get(r, "name")), "cases");
	assert_int_equal(json_integer_value(json_object_get(r, "removed")), 1);
	assert_int_equal(json_array_size(json_object_get(report, "rules")), 9);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM cases"), 1);
	assert_false(store_holds(f, ERASED));
	assert_true(store_holds(f, KEPT));
	/* A daemon's own period (keep_years): the same date rule; 0 keeps for ever. */
	{
		struct juki_purge_rule keep[2] = {
		    {"cases", "cases", cases_count, cases_delete, JUKI_PURGE_KEEP_YEARS},
		    {NULL, NULL, NULL, NULL, 0},
		};

		conf.keep_years = 0;
		report = run_ok(f, &conf, keep, jst("2030-01-01T00:00:00.000"), 0);
		json_decref(report);
		assert_int_equal(count_rows(f, "SELECT count(*) FROM cases"), 1);
		conf.keep_years = 4;
		report = run_ok(f, &conf, keep, jst("2025-04-30T23:59:59.000"), 0);
		r = json_array_get(json_object_get(report, "rules"), 8);
		assert_string_equal(json_string_value(json_object_get(r, "period")), "keep_years");
		json_decref(report);
		assert_int_equal(count_rows(f, "SELECT count(*) FROM cases"), 1);
		report = run_ok(f, &conf, keep, jst("2025-05-01T00:00:00.000"), 0);
		json_decref(report);
		assert_int_equal(count_rows(f, "SELECT count(*) FROM cases"), 0);
	}
}

/* A period in milliseconds (JUKI_PURGE_KEEP_MS, the link server's authlink.keep). */
static const struct juki_purge_rule keep_rules[] = {
    {"cases", "cases", cases_count, cases_delete, JUKI_PURGE_KEEP_MS},
    {NULL, NULL, NULL, NULL, 0},
};

static void
test_keep_ms(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	struct juki_schema schemas[2] = {juki_honnin_schema, case_schema};
	int64_t now = jst("2026-05-08T12:00:00.000");
	char err[256], sql[256];
	const json_t *r;
	json_t *report;

	juki_store_close(f->store);
	assert_int_equal(juki_store_open(f->path, schemas, 2, &f->store, err, sizeof(err)), 0);
	/* one closed a week and a millisecond before the run, one exactly a week before */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO cases VALUES (1, %lld, '" ERASED "'), (2, %lld, '" KEPT "')",
		 (long long)(now - 7 * JUKI_DAY_MS - 1), (long long)(now - 7 * JUKI_DAY_MS));
	exec_ok(f, sql);
	/* 0: never */
	conf.keep_ms = 0;
	report = run_ok(f, &conf, keep_rules, now, 0);
	json_decref(report);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM cases"), 2);
	conf.keep_ms = 7 * JUKI_DAY_MS;
	report = run_ok(f, &conf, keep_rules, now, 0);
	r = json_array_get(json_object_get(report, "rules"), 8);
	assert_string_equal(json_string_value(json_object_get(r, "period")), "keep");
	assert_int_equal(json_integer_value(json_object_get(r, "removed")), 1);
	json_decref(report);
	assert_false(store_holds(f, ERASED));
	assert_true(store_holds(f, KEPT));
	conf.keep_ms = -1;
	assert_int_equal(juki_purge_run(f->store, &conf, keep_rules, now, 0, &report), JUKI_EINVAL);
}

static void
test_without_honnin(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	char err[256], path[160];
	json_t *report;
	const json_t *rules;

	juki_store_close(f->store);
	snprintf(path, sizeof(path), "%s/plain.db", f->dir);
	assert_int_equal(juki_store_open(path, NULL, 0, &f->store, err, sizeof(err)), 0);
	assert_int_equal(
	    juki_purge_run(f->store, &conf, NULL, jst("2026-01-01T00:00:00.000"), 0, &report), 0);
	rules = json_object_get(report, "rules");
	assert_int_equal(json_array_size(rules), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "name")),
			    "outbox_rejected");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 1), "name")),
			    "inbox");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 2), "name")),
			    "inbox_mismatch");
	json_decref(report);
}

static void
test_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f), bad;
	struct juki_purge_rule rules[2] = {
	    {"cases", "cases", cases_count, cases_delete, JUKI_PURGE_YEARS},
	    {NULL, NULL, NULL, NULL, 0},
	};
	int64_t now = jst("2026-01-01T00:00:00.000");
	json_t *report = NULL;

	assert_int_equal(juki_purge_run(NULL, &conf, NULL, now, 0, &report), JUKI_EINVAL);
	assert_int_equal(juki_purge_run(f->store, NULL, NULL, now, 0, &report), JUKI_EINVAL);
	assert_int_equal(juki_purge_run(f->store, &conf, NULL, now, 0, NULL), JUKI_EINVAL);
	bad = conf;
	bad.years = -1;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.inbox_days = -1;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.years = 10000;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.rejected_years = -1;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.inbox_days = 3650001;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.checkpoint_tries = -1;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.keep_years = -1;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	bad = conf;
	bad.batch = -5;
	assert_int_equal(juki_purge_run(f->store, &bad, NULL, now, 0, &report), JUKI_EINVAL);
	/* rules missing a part, or with a period that does not exist */
	rules[0].delete_sql = NULL;
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 1, &report), JUKI_EINVAL);
	rules[0].delete_sql = cases_delete;
	rules[0].table = NULL;
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 1, &report), JUKI_EINVAL);
	rules[0].table = "cases";
	rules[0].period = (enum juki_purge_period)(JUKI_PURGE_KEEP_YEARS + 1);
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 1, &report), JUKI_EINVAL);
	/* inside the caller's transaction */
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_purge_run(f->store, &conf, NULL, now, 0, &report), JUKI_EINVAL);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_null(report);
}

static void
test_failing_rules(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	struct juki_schema schemas[2] = {juki_honnin_schema, case_schema};
	struct juki_purge_rule rules[2] = {
	    {"broken", "cases", bad_sql, cases_delete, JUKI_PURGE_YEARS},
	    {NULL, NULL, NULL, NULL, 0},
	};
	int64_t now = jst("2026-01-01T00:00:00.000");
	json_t *report = NULL;
	char err[256], sql[128];

	juki_store_close(f->store);
	assert_int_equal(juki_store_open(f->path, schemas, 2, &f->store, err, sizeof(err)), 0);
	/* a statement that does not prepare */
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 1, &report), JUKI_ESTORE);
	assert_null(report);
	/* a count that is not a number */
	rules[0].count_sql = text_count;
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 1, &report), JUKI_ESTORE);
	assert_null(report);

	/* A delete that misses what the count sees: the verification says so. */
	snprintf(sql, sizeof(sql), "INSERT INTO cases VALUES (1, %lld, 'x')",
		 (long long)jst("2019-01-01T00:00:00.000"));
	exec_ok(f, sql);
	rules[0].count_sql = cases_count;
	rules[0].delete_sql = cases_delete_none;
	assert_int_equal(juki_purge_run(f->store, &conf, rules, now, 0, &report), JUKI_EIO);
	assert_non_null(report);
	assert_false(json_is_true(json_object_get(report, "verified")));
	assert_int_equal(rule_n(report, "broken", "due"), 1);
	assert_int_equal(rule_n(report, "broken", "remaining"), 1);
	json_decref(report);
	assert_false(juki_store_in_txn(f->store));
}

static void
test_checkpoint_blocked(void **state)
{
	struct fx *f = *state;
	struct juki_purge_conf conf = conf_of(f);
	sqlite3 *reader = NULL;
	sqlite3_stmt *st = NULL;
	json_t *report = NULL;
	int64_t now = jst("2026-03-16T09:00:00.000");

	record_people(f);
	/* Another connection reading keeps the WAL from being emptied. */
	assert_int_equal(sqlite3_open_v2(f->path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(reader, "SELECT count(*) FROM honnin", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	conf.checkpoint_tries = 3;
	assert_int_equal(juki_purge_run(f->store, &conf, NULL, now, 0, &report), JUKI_EAGAIN);
	assert_non_null(report);
	assert_false(json_is_true(json_object_get(report, "verified")));
	assert_false(
	    json_is_true(json_object_get(json_object_get(report, "checkpoint"), "complete")));
	/* E's two history rows and removal, C's old record */
	assert_int_equal(total(report, "removed"), 4);
	json_decref(report);
	assert_true(wal_size(f) > 0);
	sqlite3_finalize(st);
	sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(reader);

	/* With the reader gone the next run completes what the last began. */
	report = run_ok(f, &conf, NULL, now, 0);
	assert_int_equal(total(report, "removed"), 0);
	json_decref(report);
	assert_false(store_holds(f, ERASED));
}

/* A file of text in dir, last modified at mtime (s since 1970). */
static void
file_at(const char *dir, const char *name, const char *text, time_t mtime)
{
	char path[256];
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int
present(const char *dir, const char *name)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &sb) == 0;
}

/*
 * Files past their period are erased: overwritten before they are unlinked
 * (a second link to the file sees zeros), the newer ones kept; links and
 * subdirectories are not followed.
 */
static void
test_files(void **state)
{
	char top[64], dir[128], keep[128], path[256], seen[64];
	struct juki_purge_file_counts n;
	const time_t old = 1000000000, cut = 1500000000, recent = 1700000000;
	FILE *fp;
	size_t len;

	(void)state;
	assert_non_null(test_mkdtemp(top, sizeof(top), "purge-files"));
	snprintf(dir, sizeof(dir), "%s/done", top);
	snprintf(keep, sizeof(keep), "%s/elsewhere", top);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(keep, 0700), 0);
	/* Missing: nothing due, no error. */
	assert_int_equal(juki_purge_files(keep, (int64_t)cut * 1000, 0, &n), 0);
	snprintf(path, sizeof(path), "%s/missing", top);
	assert_int_equal(juki_purge_files(path, (int64_t)cut * 1000, 0, &n), 0);
	assert_int_equal(n.due, 0);

	file_at(dir, "old.csv", "山田 太郎,1980-01-01", old);
	file_at(dir, "old.csv.receipt.json", "{}", old);
	file_at(dir, "new.csv", "new", recent);
	file_at(keep, "target", "not ours", old);
	/* A second name of old.csv: what the erasure leaves in the file. */
	snprintf(path, sizeof(path), "%s/old.csv", dir);
	{
		char other[256];

		snprintf(other, sizeof(other), "%s/second-link", keep);
		assert_int_equal(link(path, other), 0);
	}
	snprintf(path, sizeof(path), "%s/link", dir);
	assert_int_equal(symlink("../elsewhere/target", path), 0);
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);

	assert_int_equal(juki_purge_files(dir, (int64_t)cut * 1000, 1, &n), 0);
	assert_int_equal(n.due, 2);
	assert_int_equal(n.removed, 0);
	assert_true(present(dir, "old.csv"));

	assert_int_equal(juki_purge_files(dir, (int64_t)cut * 1000, 0, &n), 0);
	assert_int_equal(n.due, 2);
	assert_int_equal(n.removed, 2);
	assert_int_equal(n.failed, 0);
	assert_false(present(dir, "old.csv"));
	assert_false(present(dir, "old.csv.receipt.json"));
	assert_true(present(dir, "new.csv") && present(dir, "link") && present(dir, "sub"));
	assert_true(present(keep, "target"));
	/* The content was overwritten with zeros before the name went. */
	snprintf(path, sizeof(path), "%s/second-link", keep);
	assert_non_null(fp = fopen(path, "rb"));
	len = fread(seen, 1, sizeof(seen), fp);
	fclose(fp);
	assert_int_equal(len, strlen("山田 太郎,1980-01-01"));
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(seen[i], 0);
	}
	/* Again: nothing left; INT64_MIN: nothing ever due. */
	assert_int_equal(juki_purge_files(dir, (int64_t)cut * 1000, 0, &n), 0);
	assert_int_equal(n.due, 0);
	assert_int_equal(juki_purge_files(dir, INT64_MIN, 0, &n), 0);
	assert_int_equal(n.due, 0);
	assert_int_equal(juki_purge_files(NULL, 0, 0, &n), JUKI_EINVAL);
	assert_int_equal(test_rm_rf(top), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_due_day_of_recording),
	    cmocka_unit_test(test_due_jst_not_utc),
	    cmocka_unit_test(test_due_leap_day),
	    cmocka_unit_test(test_due_year_end),
	    cmocka_unit_test(test_due_never),
	    cmocka_unit_test(test_cutoff_agrees_with_due),
	    cmocka_unit_test(test_files),
	    cmocka_unit_test_setup_teardown(test_proof_of_erasure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counts_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_ms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_without_honnin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failing_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoint_blocked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
