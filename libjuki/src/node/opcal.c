/*
 * The node's operating calendar: configuration, store and control commands
 * around base/calendar.h (node/opcal.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "juki/base/calendar.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/log.h"
#include "juki/node/node.h"
#include "juki/node/opcal.h"

/* The longest range "calendar" shows, and the most days a loaded list may hold. */
#define SHOW_MAX_DAYS     366
#define HOLIDAYS_MAX_DAYS (200 * 366) /* only the holidays: years 1900..2099 at once */
#define LOAD_MAX_DAYS     20000
#define REASON_MAX        200

/* A list of strings with a default (a YAML flow sequence); [] in the file is an empty list. */
#define LIST_KEY(st, f, cnt, n, hi, d, h)                                                          \
	{                                                                                          \
		.name = (n), .type = JUKI_CONF_LIST, .offset = offsetof(st, f), .def = (d),        \
		.max = (hi), .elem_type = JUKI_CONF_STRING, .elem_size = sizeof(char *),           \
		.count_offset = offsetof(st, cnt), .help = (h)                                     \
	}

const struct juki_conf_key juki_calendar_processing_keys[] = {
    LIST_KEY(struct juki_calendar_processing, immediate, nimmediate, "immediate", 64,
	     "[messages, lookups, reconcile]",
	     "Processing done when it comes, any day and hour (第6-1(1) 即時処理): "
	     "`juki-ctl calendar check` says yes for these at any time."),
    LIST_KEY(struct juki_calendar_processing, daily, ndaily, "daily", 64,
	     "[purge, backup, audit-verify]",
	     "Daily jobs (第6-1(1) 日々処理), run on operating days only: their "
	     "timers and cron lines ask `juki-ctl calendar check JOB`."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_calendar_conf_keys[] = {
    LIST_KEY(struct juki_calendar_conf, closures, nclosures, "closures", 32, "[12-29..01-03]",
	     "Yearly closed days, \"MM-DD..MM-DD\" (may span the new year) or "
	     "\"MM-DD\"."),
    LIST_KEY(struct juki_calendar_conf, weekdays, nweekdays, "weekdays", 7,
	     "[mon, tue, wed, thu, fri]",
	     "The days of the week that are operating days: mon, tue, wed, thu, fri, "
	     "sat, sun."),
    JUKI_CONF_SCALAR(struct juki_calendar_conf, holidays, "holidays", JUKI_CONF_BOOL, "true", 0, 0,
		     0, "National holidays (by the law, or the loaded list) are closed days."),
    JUKI_CONF_SCALAR(struct juki_calendar_conf, hours, "hours", JUKI_CONF_STRING, "08:30-17:15", 0,
		     0, 0, "Operating hours of an operating day, HH:MM-HH:MM JST (第6-1(2))."),
    JUKI_CONF_SECTIONKEY(struct juki_calendar_conf, processing, "processing",
			 juki_calendar_processing_keys,
			 "Which kinds of processing are immediate and which daily (第6-1(1))."),
    JUKI_CONF_END,
};

int
juki_calendar_conf_check(const void *section, const char **blame, char *why, size_t whylen)
{
	const struct juki_calendar_conf *c = section;
	int a, b;

	for (size_t i = 0; i < c->nclosures; i++) {
		if (juki_calendar_closure_parse(c->closures[i], &a, &b) != 0) {
			*blame = "closures";
			snprintf(why, whylen, "\"%.20s\" is not MM-DD..MM-DD or MM-DD",
				 c->closures[i]);
			return JUKI_ECONFIG;
		}
	}
	for (size_t i = 0; i < c->nweekdays; i++) {
		unsigned bit;

		if (juki_calendar_weekday_parse(c->weekdays[i], &bit) != 0) {
			*blame = "weekdays";
			snprintf(why, whylen,
				 "\"%.20s\" is not mon, tue, wed, thu, fri, sat or sun",
				 c->weekdays[i]);
			return JUKI_ECONFIG;
		}
	}
	if (juki_calendar_hours_parse(c->hours, &a, &b) != 0) {
		*blame = "hours";
		snprintf(why, whylen, "HH:MM-HH:MM (JST), the end after the start");
		return JUKI_ECONFIG;
	}
	for (size_t i = 0; i < c->processing.nimmediate; i++) {
		for (size_t j = 0; j < c->processing.ndaily; j++) {
			if (strcmp(c->processing.immediate[i], c->processing.daily[j]) == 0) {
				*blame = "processing";
				snprintf(why, whylen, "\"%.40s\" is both immediate and daily",
					 c->processing.daily[j]);
				return JUKI_ECONFIG;
			}
		}
	}
	return 0;
}

const struct juki_migration juki_opcal_steps[JUKI_OPCAL_NSTEPS] = {
    {1, "CREATE TABLE calendar_loaded ("
	" day TEXT PRIMARY KEY,"
	" name TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE calendar_list ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" source TEXT NOT NULL,"
	" loaded_ms INTEGER NOT NULL,"
	" days INTEGER NOT NULL"
	");"
	"CREATE TABLE calendar_override ("
	" day TEXT PRIMARY KEY,"
	" open INTEGER NOT NULL,"
	" reason TEXT NOT NULL,"
	" set_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"},
};

static const struct juki_calendar_conf *
conf_of(struct juki_node *node)
{
	return &juki_node_conf(node)->calendar;
}

/* "YYYY-MM-DD" into a day as juki_clock_today() counts. */
static int
day_of(const char *text, int64_t *day)
{
	int64_t ms;

	if (!juki_date_valid(text) || juki_clock_parse_day(text, &ms) != 0) {
		return JUKI_EFORMAT;
	}
	*day = ms / JUKI_DAY_MS;
	return 0;
}

static void
date_of(int64_t day, char *buf, size_t len)
{
	int64_t y;
	int m, d;

	juki_clock_civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04lld-%02d-%02d", (long long)y, m, d);
}

static int
fill_conf(struct juki_calendar *cal, const struct juki_calendar_conf *c)
{
	const char *const *list;
	unsigned mask = 0;
	size_t n;

	list = (n = c->nweekdays, (const char *const *)c->weekdays);
	for (size_t i = 0; i < n; i++) {
		unsigned bit;

		if (juki_calendar_weekday_parse(list[i], &bit) == 0) {
			mask |= bit;
		}
	}
	juki_calendar_set_weekdays(cal, mask);
	juki_calendar_set_holidays(cal, c->holidays);
	list = (n = c->nclosures, (const char *const *)c->closures);
	for (size_t i = 0; i < n; i++) {
		int rc = juki_calendar_add_closure(cal, list[i]);

		if (rc != 0 && rc != JUKI_EFORMAT) {
			return rc;
		}
	}
	return 0;
}

static int
fill_store(struct juki_calendar *cal, struct juki_store *store)
{
	static const char loaded[] = "SELECT day, name FROM calendar_loaded";
	static const char over[] = "SELECT day, open, reason FROM calendar_override";
	sqlite3_stmt *st;
	int rc = 0;
	int64_t day;

	if ((st = juki_store_prepare(store, loaded)) == NULL) {
		return JUKI_ESTORE;
	}
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (day_of((const char *)sqlite3_column_text(st, 0), &day) == 0) {
			rc = juki_calendar_add_loaded(cal, day,
						      (const char *)sqlite3_column_text(st, 1));
		}
	}
	sqlite3_reset(st);
	if (rc != 0 || (st = juki_store_prepare(store, over)) == NULL) {
		return rc != 0 ? rc : JUKI_ESTORE;
	}
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (day_of((const char *)sqlite3_column_text(st, 0), &day) == 0) {
			rc = juki_calendar_add_override(cal, day, sqlite3_column_int(st, 1),
							(const char *)sqlite3_column_text(st, 2));
		}
	}
	sqlite3_reset(st);
	return rc;
}

struct juki_calendar *
juki_opcal_build(struct juki_node *node)
{
	struct juki_calendar *cal = juki_calendar_new();

	if (cal == NULL || fill_conf(cal, conf_of(node)) != 0 ||
	    fill_store(cal, juki_node_store(node)) != 0) {
		juki_calendar_free(cal);
		return NULL;
	}
	return cal;
}

int
juki_opcal_day_begun(struct juki_node *node, int64_t now, const char *hhmm, int64_t *start)
{
	struct juki_calendar *cal = juki_opcal_build(node);
	int rc;

	if (cal == NULL) {
		log_warnx("calendar: cannot read the calendar (%s): every day counts for the "
			  "deadline",
			  juki_store_errmsg(juki_node_store(node)));
		return juki_clock_day_begun(now, hhmm, start);
	}
	rc = juki_calendar_day_begun(cal, now, hhmm, start);
	juki_calendar_free(cal);
	return rc;
}

static json_t *
strings(const char *const *list, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(a, json_string(list[i]));
	}
	return a;
}

static json_t *
day_json(const struct juki_calendar *cal, int64_t day)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	char date[16], why[300];
	int loaded, open = juki_calendar_open(cal, day, why, sizeof(why));
	const char *name = juki_calendar_holiday(cal, day, &loaded);

	date_of(day, date, sizeof(date));
	return json_pack("{s:s,s:s,s:b,s:s,s:s?,s:s?}", "date", date, "weekday",
			 wd[juki_weekday(day)], "open", open, "why", why, "holiday", name, "source",
			 name == NULL ? NULL
			 : loaded     ? "list"
				      : "law");
}

/* The list's provenance, {"source", "loaded", "days", "first", "last"} or null. */
static json_t *
list_json(struct juki_store *store)
{
	static const char sql[] =
	    "SELECT source, loaded_ms, days, (SELECT min(day) FROM calendar_loaded),"
	    " (SELECT max(day) FROM calendar_loaded) FROM calendar_list WHERE id = 1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_null();
	char when[32];

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
		juki_clock_format(sqlite3_column_int64(st, 1), when, sizeof(when));
		out = json_pack("{s:s,s:s,s:I,s:s?,s:s?}", "source", sqlite3_column_text(st, 0),
				"loaded", when, "days", (json_int_t)sqlite3_column_int64(st, 2),
				"first", sqlite3_column_text(st, 3), "last",
				sqlite3_column_text(st, 4));
	}
	if (st != NULL) {
		sqlite3_reset(st);
	}
	return out;
}

static int
in_hours(const struct juki_calendar_conf *c, int64_t now)
{
	int open, close, minute = (int)((now - juki_clock_midnight(now)) / 60000);

	return juki_calendar_hours_parse(c->hours, &open, &close) == 0 && minute >= open &&
	       minute < close;
}

int
juki_opcal_cmd_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const struct juki_calendar_conf *c = conf_of(node);
	const char *from = json_string_value(json_object_get(args, "from"));
	const char *to = json_string_value(json_object_get(args, "to"));
	int only = json_is_true(json_object_get(args, "holidays"));
	int64_t now = juki_node_now_ms(node), today = juki_clock_today(now), first, last, begun;
	const char *const *list;
	struct juki_calendar *cal;
	json_t *days, *proc;
	char date[16], why[300], when[32];
	size_t n;
	int open;

	if (from == NULL) {
		int64_t y;
		int m, d;

		juki_clock_civil_from_days(today, &y, &m, &d);
		first = juki_clock_days_from_civil(y, m, 1);
	} else if (day_of(from, &first) != 0) {
		return juki_ctl_fail(err, "invalid", "from: not a day YYYY-MM-DD");
	}
	if (to == NULL) {
		int64_t y;
		int m, d;

		juki_clock_civil_from_days(first, &y, &m, &d);
		last = first + juki_clock_days_in_month(y, m) - d;
	} else if (day_of(to, &last) != 0) {
		return juki_ctl_fail(err, "invalid", "to: not a day YYYY-MM-DD");
	}
	if (last < first || last - first >= (only ? HOLIDAYS_MAX_DAYS : SHOW_MAX_DAYS)) {
		return juki_ctl_fail(err, "invalid", "from..to: 1 to %d days, from first",
				     only ? HOLIDAYS_MAX_DAYS : SHOW_MAX_DAYS);
	}
	if ((cal = juki_opcal_build(node)) == NULL) {
		return juki_ctl_fail(err, "internal", "cannot read the calendar: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	days = json_array();
	for (int64_t day = first; day <= last; day++) {
		if (!only || juki_calendar_holiday(cal, day, NULL) != NULL) {
			json_array_append_new(days, day_json(cal, day));
		}
	}
	open = juki_calendar_open(cal, today, why, sizeof(why));
	date_of(today, date, sizeof(date));
	if (juki_calendar_day_begun(cal, now, juki_node_conf(node)->delivery.deadline, &begun) !=
	    0) {
		begun = 0;
	}
	juki_clock_format(begun, when, sizeof(when));
	proc = json_object();
	list = (n = c->processing.nimmediate, (const char *const *)c->processing.immediate);
	json_object_set_new(proc, "immediate", strings(list, n));
	list = (n = c->processing.ndaily, (const char *const *)c->processing.daily);
	json_object_set_new(proc, "daily", strings(list, n));
	{
		const char *const *cl, *const *wd;
		size_t ncl, nwd;

		cl = (ncl = c->nclosures, (const char *const *)c->closures);
		wd = (nwd = c->nweekdays, (const char *const *)c->weekdays);
		*result = json_pack("{s:s,s:b,s:s,s:b,s:s,s:s,s:s,s:o,s:o,s:b,s:o,s:o,s:o}",
				    "today", date, "open_today", open, "why_today", why, "open_now",
				    open && in_hours(c, now), "hours", c->hours, "deadline",
				    juki_node_conf(node)->delivery.deadline, "operating_day_began",
				    when, "weekdays", strings(wd, nwd), "closures",
				    strings(cl, ncl), "holidays_closed", c->holidays, "processing",
				    proc, "list", list_json(juki_node_store(node)), "days", days);
	}
	juki_calendar_free(cal);
	return 0;
}

struct load {
	struct juki_calendar *cal;
	int64_t first, last;
	size_t n;
};

int
juki_opcal_cmd_load(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char del[] = "DELETE FROM calendar_loaded";
	static const char ins[] = "INSERT INTO calendar_loaded (day, name) VALUES (?1, ?2)";
	static const char meta[] = "INSERT OR REPLACE INTO calendar_list (id, source, loaded_ms, "
				   "days) VALUES (1, ?1, ?2, ?3)";
	static const char count[] = "SELECT count(*) FROM calendar_loaded";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const json_t *list = json_object_get(args, "days"), *e;
	const char *source = json_string_value(json_object_get(args, "source"));
	struct juki_calendar *cal;
	sqlite3_stmt *st;
	int64_t first = INT64_MAX, last = INT64_MIN, replaced = 0;
	char a[16], b[16];
	size_t i;
	int rc = 0;

	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > LOAD_MAX_DAYS) {
		return juki_ctl_fail(err, "invalid", "days: an array of 1 to %d {date, name}",
				     LOAD_MAX_DAYS);
	}
	if (source == NULL || !juki_calendar_name_ok(source)) {
		source = "(unnamed)";
	}
	if ((cal = juki_calendar_new()) == NULL) {
		return juki_ctl_fail(err, "internal", "out of memory");
	}
	/* Every day checked before anything is written: all or nothing. */
	json_array_foreach(list, i, e)
	{
		const char *date = json_string_value(json_object_get(e, "date"));
		const char *name = json_string_value(json_object_get(e, "name"));
		int64_t day, y;
		int m, d;

		if (date == NULL || day_of(date, &day) != 0) {
			rc = juki_ctl_fail(err, "invalid", "days[%zu].date: not a day YYYY-MM-DD",
					   i);
			break;
		}
		juki_clock_civil_from_days(day, &y, &m, &d);
		if (y < 1900 || y > 2099) {
			rc = juki_ctl_fail(err, "invalid", "days[%zu].date: years 1900..2099", i);
			break;
		}
		if (name == NULL || !juki_calendar_name_ok(name)) {
			rc = juki_ctl_fail(err, "invalid",
					   "days[%zu].name: 1..%d bytes of UTF-8, no control "
					   "characters or commas",
					   i, JUKI_CALENDAR_NAME_MAX);
			break;
		}
		if ((rc = juki_calendar_add_loaded(cal, day, name)) != 0) {
			rc = juki_ctl_fail(err, rc == JUKI_EDUP ? "invalid" : "internal",
					   "days[%zu].date: %s", i,
					   rc == JUKI_EDUP ? "given twice" : juki_strerror(rc));
			break;
		}
		first = day < first ? day : first;
		last = day > last ? day : last;
	}
	if (rc != 0) {
		juki_calendar_free(cal);
		return rc;
	}
	if (juki_store_begin(store) != 0) {
		juki_calendar_free(cal);
		return juki_ctl_fail(err, "internal", "%s", juki_store_errmsg(store));
	}
	if ((st = juki_store_prepare(store, count)) != NULL && sqlite3_step(st) == SQLITE_ROW) {
		replaced = sqlite3_column_int64(st, 0);
	}
	if (st != NULL) {
		sqlite3_reset(st);
	}
	rc = juki_store_exec(store, del);
	json_array_foreach(list, i, e)
	{
		if (rc != 0 || (st = juki_store_prepare(store, ins)) == NULL) {
			rc = JUKI_ESTORE;
			break;
		}
		sqlite3_bind_text(st, 1, json_string_value(json_object_get(e, "date")), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 2, json_string_value(json_object_get(e, "name")), -1,
				  SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
		sqlite3_reset(st);
	}
	if (rc == 0 && (st = juki_store_prepare(store, meta)) != NULL) {
		sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, juki_node_now_ms(node));
		sqlite3_bind_int64(st, 3, (sqlite3_int64)json_array_size(list));
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
		sqlite3_reset(st);
	} else if (rc == 0) {
		rc = JUKI_ESTORE;
	}
	if (rc != 0 || juki_store_commit(store) != 0) {
		const char *why = juki_store_errmsg(store);

		juki_store_rollback(store);
		juki_calendar_free(cal);
		return juki_ctl_fail(err, "internal", "the list is not loaded: %s", why);
	}
	juki_calendar_free(cal);
	date_of(first, a, sizeof(a));
	date_of(last, b, sizeof(b));
	log_notice("calendar: %zu days loaded from %s (%s..%s), replacing %lld",
		   json_array_size(list), source, a, b, (long long)replaced);
	{
		char note[128];

		snprintf(note, sizeof(note), "%zu days %s..%s, replacing %lld",
			 json_array_size(list), a, b, (long long)replaced);
		juki_opcmds_note(juki_node_opcmds(node), source, note);
	}
	*result =
	    json_pack("{s:I,s:s,s:s,s:s,s:I}", "days", (json_int_t)json_array_size(list), "first",
		      a, "last", b, "source", source, "replaced", (json_int_t)replaced);
	return 0;
}

static int
reason_ok(const char *r)
{
	size_t n = r != NULL ? strlen(r) : 0;

	if (n == 0 || n > REASON_MAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f) {
			return 0;
		}
	}
	return 1;
}

int
juki_opcal_cmd_set(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char put[] = "INSERT OR REPLACE INTO calendar_override (day, open, reason,"
				  " set_ms) VALUES (?1, ?2, ?3, ?4)";
	static const char clear[] = "DELETE FROM calendar_override WHERE day = ?1";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const char *date = json_string_value(json_object_get(args, "date"));
	const char *state = json_string_value(json_object_get(args, "state"));
	const char *reason = json_string_value(json_object_get(args, "reason"));
	struct juki_calendar *cal;
	sqlite3_stmt *st;
	char why[300];
	int64_t day;
	int rc, is_clear;

	if (date == NULL || day_of(date, &day) != 0) {
		return juki_ctl_fail(err, "invalid", "date: a day YYYY-MM-DD");
	}
	if (state == NULL || (strcmp(state, "open") != 0 && strcmp(state, "closed") != 0 &&
			      strcmp(state, "clear") != 0)) {
		return juki_ctl_fail(err, "invalid", "state: open, closed or clear");
	}
	is_clear = strcmp(state, "clear") == 0;
	if (!is_clear && !reason_ok(reason)) {
		return juki_ctl_fail(err, "invalid",
				     "reason: 1..%d bytes without control characters", REASON_MAX);
	}
	if ((st = juki_store_prepare(store, is_clear ? clear : put)) == NULL) {
		return juki_ctl_fail(err, "internal", "%s", juki_store_errmsg(store));
	}
	sqlite3_bind_text(st, 1, date, -1, SQLITE_STATIC);
	if (!is_clear) {
		sqlite3_bind_int(st, 2, strcmp(state, "open") == 0);
		sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, juki_node_now_ms(node));
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return juki_ctl_fail(err, "internal", "%s", juki_store_errmsg(store));
	}
	if ((cal = juki_opcal_build(node)) == NULL) {
		return juki_ctl_fail(err, "internal", "cannot read the calendar");
	}
	*result = json_pack("{s:s,s:s,s:b,s:s}", "date", date, "state", state, "open",
			    juki_calendar_open(cal, day, why, sizeof(why)), "why", why);
	juki_calendar_free(cal);
	log_notice("calendar: %s set %s", date, state);
	{
		char note[REASON_MAX + 16];

		snprintf(note, sizeof(note), "%s%s%s", state, is_clear ? "" : ": ",
			 is_clear ? "" : reason);
		juki_opcmds_note(juki_node_opcmds(node), date, note);
	}
	return 0;
}

static int
listed(const char *const *list, size_t n, const char *job)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i], job) == 0) {
			return 1;
		}
	}
	return 0;
}

int
juki_opcal_cmd_check(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const struct juki_calendar_conf *c = conf_of(node);
	const char *job = json_string_value(json_object_get(args, "job"));
	const char *const *imm, *const *daily;
	size_t nimm, ndaily;
	int64_t now = juki_node_now_ms(node);
	struct juki_calendar *cal;
	const char *kind;
	char date[16], why[300];
	int open, runs;

	imm = (nimm = c->processing.nimmediate, (const char *const *)c->processing.immediate);
	daily = (ndaily = c->processing.ndaily, (const char *const *)c->processing.daily);
	if (job != NULL && listed(imm, nimm, job)) {
		kind = "immediate";
	} else if (job != NULL && listed(daily, ndaily, job)) {
		kind = "daily";
	} else if (job != NULL) {
		return juki_ctl_fail(err, "not-found",
				     "%.64s is neither immediate nor daily in calendar.processing",
				     job);
	} else {
		kind = "hours";
	}
	if ((cal = juki_opcal_build(node)) == NULL) {
		return juki_ctl_fail(err, "internal", "cannot read the calendar");
	}
	open = juki_calendar_open(cal, juki_clock_today(now), why, sizeof(why));
	juki_calendar_free(cal);
	date_of(juki_clock_today(now), date, sizeof(date));
	if (strcmp(kind, "immediate") == 0) {
		runs = 1;
		snprintf(why, sizeof(why), "immediate: runs any day");
	} else if (strcmp(kind, "daily") == 0) {
		runs = open;
	} else {
		runs = open && in_hours(c, now);
		if (open && !runs) {
			snprintf(why, sizeof(why), "outside the operating hours %s", c->hours);
		}
	}
	*result = json_pack("{s:s,s:s?,s:s,s:b,s:s}", "date", date, "job", job, "kind", kind,
			    "runs", runs, "why", why);
	return 0;
}
