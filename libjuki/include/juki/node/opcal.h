/*
 * juki — the node's operating calendar (運用計画, 第6-1): its configuration
 * (section `calendar:`), the loaded list of holidays and the local
 * overrides in its store, and the control commands "calendar",
 * "calendar-load", "calendar-set" and "calendar-check".
 *
 * The days themselves are base/calendar.h's: the national holidays by the
 * law's rules, or by the loaded list for the years it covers; the yearly
 * closures (calendar.closures, "12-29..01-03" by default); the weekdays
 * that are operating days (calendar.weekdays); an override of a single
 * day wins over all of them.
 *
 * The kinds of processing (第6-1(1)), calendar.processing:
 *   immediate  message flows and what the operators do: processed when they
 *              come, any day, any hour (the daemons never hold them back);
 *   daily      the jobs run once a day from cron or a systemd timer (purge,
 *              backup, audit-verify): on operating days only, which their
 *              units ask with `juki-ctl calendar check JOB` (exit 0: it runs
 *              today).
 * The operating hours (calendar.hours) are when the counters are open:
 * `juki-ctl calendar check` without a job answers whether now is within
 * them on an operating day.  The deadline of delivery (delivery.deadline,
 * 第6-6(1)) is the start of an operating day: juki_opcal_day_begun().
 *
 * Tables (component "calendar"):
 *   calendar_loaded(day PRIMARY KEY, name)          the loaded list, replaced whole
 *   calendar_list(id = 1, source, loaded_ms, days)  where it came from
 *   calendar_override(day PRIMARY KEY, open, reason, set_ms)
 */
#ifndef JUKI_OPCAL_H
#define JUKI_OPCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/calendar.h"
#include "juki/base/config.h"
#include "juki/node/control.h"
#include "juki/store/store.h"

struct juki_node;

struct juki_calendar_processing {
	char **immediate; /* processed when they come, any day */
	size_t nimmediate;
	char **daily; /* daily jobs: operating days only */
	size_t ndaily;
};

struct juki_calendar_conf {
	char **closures; /* "MM-DD..MM-DD" or "MM-DD", every year */
	size_t nclosures;
	char **weekdays; /* the operating weekdays: "mon".."sun" */
	size_t nweekdays;
	bool holidays; /* national holidays are closed days */
	char *hours;   /* "HH:MM-HH:MM" JST: when the counters are open */
	struct juki_calendar_processing processing;
};

extern const struct juki_conf_key juki_calendar_conf_keys[];
extern const struct juki_conf_key juki_calendar_processing_keys[];

/* juki_calendar_conf_check() - the section's rules (closures, weekdays, hours, jobs). */
int juki_calendar_conf_check(const void *section, const char **blame, char *why, size_t whylen);

#define JUKI_CALENDAR_CONF_KEY(st, f)                                                              \
	{                                                                                          \
		.name = "calendar", .type = JUKI_CONF_SECTION, .offset = offsetof(st, f),          \
		.sub = juki_calendar_conf_keys, .check = juki_calendar_conf_check,                 \
		.help = "The operating calendar (第6-1): operating days, hours, closures and "    \
			"which processing is immediate or daily."                                  \
	}

#define JUKI_OPCAL_NSTEPS 1
extern const struct juki_migration juki_opcal_steps[JUKI_OPCAL_NSTEPS];
#define JUKI_OPCAL_SCHEMA                                                                          \
	{                                                                                          \
		"calendar", juki_opcal_steps, JUKI_OPCAL_NSTEPS                                    \
	}

/*
 * juki_opcal_build() - the node's calendar: its configuration, the loaded
 * list and the overrides of its store.  NULL: out of memory or a store
 * failure.
 */
struct juki_calendar *juki_opcal_build(struct juki_node *node);

/*
 * juki_opcal_day_begun() - the start of the operating day in progress at
 * now, operating days beginning at hhmm (juki_calendar_day_begun()).  When
 * the calendar cannot be read, every day counts.  0 or JUKI_EFORMAT.
 */
int juki_opcal_day_begun(struct juki_node *node, int64_t now, const char *hhmm, int64_t *start);

int juki_opcal_cmd_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int juki_opcal_cmd_load(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int juki_opcal_cmd_set(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int juki_opcal_cmd_check(void *ctx, const json_t *args, json_t **result,
			 struct juki_ctl_error *err);

/* The calendar's rows of a node's command table (ctx: the node). */
#define JUKI_OPCAL_CMDS                                                                            \
	{"calendar", juki_opcal_cmd_show,                                                          \
	 "the operating days from..to, with holidays, closures and overrides (args: from, to, "    \
	 "holidays: only those)",                                                                  \
	 JUKI_ROLE_ALL, NULL},                                                                     \
	    {"calendar-load", juki_opcal_cmd_load,                                                 \
	     "replace the loaded list of holidays (args: days [{date, name}], source)",            \
	     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, NULL},                                        \
	    {"calendar-set", juki_opcal_cmd_set,                                                   \
	     "open or close one day, or clear its override (args: date, state, reason)",           \
	     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_ADMIN, NULL},                                        \
	{                                                                                          \
		"calendar-check", juki_opcal_cmd_check,                                            \
		    "whether a job runs today, or the counters are open now (args: job)",          \
		    JUKI_ROLE_ALL, NULL                                                            \
	}

#endif
