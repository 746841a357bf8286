/* 二重登録: a person current in two municipalities (juki/node/conflict.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/conflict.h"
#include "juki/node/log.h"
#include "juki/records/honnin.h"

/* The most holders named (a code held by more municipalities is still one conflict). */
#define HOLDERS_MAX 8
#define HOLDERS_LEN (HOLDERS_MAX * (JUKI_LGCODE_LEN + 1))

const struct juki_migration juki_conflict_steps[JUKI_CONFLICT_NSTEPS] = {
    {1, "CREATE TABLE honnin_conflict ("
	" id INTEGER PRIMARY KEY,"
	" code TEXT NOT NULL UNIQUE,"
	" holders TEXT NOT NULL,"
	" opened_ms INTEGER NOT NULL,"
	" alerted_ms INTEGER"
	");"
	"CREATE INDEX honnin_conflict_due ON honnin_conflict(opened_ms) WHERE alerted_ms IS NULL;"},
};

struct juki_conflicts {
	struct juki_node *node;
	struct event *timer;
	int64_t grace_ms;
	/*
	 * Whether honnin_conflict may have rows: cleared only by a look that
	 * finds it empty between transactions, so that a batch of people with
	 * no conflict does not try to clear one each.
	 */
	int any;
};

static const char sql_open[] =
    "INSERT INTO honnin_conflict (code, holders, opened_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (code) DO UPDATE SET holders = ?2,"
    " alerted_ms = CASE WHEN holders = ?2 THEN alerted_ms END";
static const char sql_clear[] = "DELETE FROM honnin_conflict WHERE code = ?1";
static const char sql_any[] = "SELECT EXISTS (SELECT 1 FROM honnin_conflict)";
static const char sql_due[] = "SELECT id, holders FROM honnin_conflict"
			      " WHERE alerted_ms IS NULL AND opened_ms <= ?1 ORDER BY opened_ms";
static const char sql_alerted[] = "UPDATE honnin_conflict SET alerted_ms = ?2 WHERE id = ?1";

/* The holders of code here as "lgcode,lgcode,...", and how many there are. */
static int
holders_of(struct juki_store *store, const char *code, char holders[HOLDERS_LEN], size_t *n)
{
	char lg[HOLDERS_MAX][JUKI_LGCODE_LEN + 1];
	size_t i, used = 0;
	int rc;

	holders[0] = '\0';
	if ((rc = juki_honnin_holders(store, code, lg, HOLDERS_MAX, n)) != 0) {
		return rc;
	}
	for (i = 0; i < *n && i < HOLDERS_MAX; i++) {
		used += (size_t)snprintf(holders + used, HOLDERS_LEN - used, "%s%s", i ? "," : "",
					 lg[i]);
	}
	return 0;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
scan_code(struct juki_conflicts *cf, const char *code)
{
	struct juki_store *store = juki_node_store(cf->node);
	char holders[HOLDERS_LEN];
	sqlite3_stmt *st;
	size_t n;
	int rc, more;

	/* Someone new here (most records) is held once at most, and in no conflict. */
	if ((rc = juki_honnin_superseded(store, code, &more)) != 0 || !more) {
		return rc;
	}
	if ((rc = holders_of(store, code, holders, &n)) != 0) {
		return rc;
	}
	if (n < 2 && !cf->any) {
		return 0;
	}
	cf->any = 1;
	if ((st = juki_store_prepare(store, n >= 2 ? sql_open : sql_clear)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	if (n >= 2) {
		sqlite3_bind_text(st, 2, holders, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, juki_node_now_ms(cf->node));
	}
	return step_done(st);
}

static int
scan_one(void *arg, const char *code)
{
	return scan_code(arg, code);
}

int
juki_conflicts_scan(struct juki_conflicts *cf, const struct juki_msg *batch)
{
	int rc = juki_honnin_batch_codes(batch, scan_one, cf);

	if (rc != 0) {
		return rc;
	}
	if (cf->grace_ms == 0) {
		/* Due at once: raised when the batch is committed. */
		event_active(cf->timer, EV_TIMEOUT, 0);
	}
	return 0;
}

/* The most alerts raised per look; the rest at the next. */
#define DUE_MAX 64

/*
 * Raise the alert of every conflict open for the grace and not yet raised:
 * marked first, in one transaction, so that each is raised once.
 */
static void
conflicts_due(evutil_socket_t fd, short what, void *arg)
{
	struct juki_conflicts *cf = arg;
	struct juki_store *store = juki_node_store(cf->node);
	int64_t now = juki_node_now_ms(cf->node), ids[DUE_MAX];
	char holders[DUE_MAX][HOLDERS_LEN];
	sqlite3_stmt *st;
	size_t n = 0, i;
	int rc = 0;

	(void)fd;
	(void)what;
	if (juki_store_in_txn(store)) {
		return;
	}
	if (cf->any && (st = juki_store_prepare(store, sql_any)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0) {
			cf->any = 0;
		}
		sqlite3_reset(st);
	}
	if ((st = juki_store_prepare(store, sql_due)) == NULL) {
		return;
	}
	sqlite3_bind_int64(st, 1, now - cf->grace_ms);
	while (n < DUE_MAX && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 1);

		ids[n] = sqlite3_column_int64(st, 0);
		snprintf(holders[n], sizeof(holders[n]), "%s", h ? (const char *)h : "-");
		n++;
	}
	sqlite3_reset(st);
	if (n == 0) {
		return;
	}
	if ((st = juki_store_prepare(store, sql_alerted)) == NULL ||
	    (rc = juki_store_begin(store)) != 0) {
		log_warnx("conflicts: cannot mark conflicts alerted: %s",
			  juki_strerror(JUKI_ESTORE));
		return;
	}
	for (i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int64(st, 2, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		log_warnx("conflicts: cannot mark conflicts alerted: %s", juki_strerror(rc));
		return;
	}
	for (i = 0; i < n; i++) {
		juki_alert(juki_node_alerts(cf->node), "double-registration", NULL, NULL,
			   "conflict %lld: one person is current in municipalities %s "
			   "(juki-ctl conflicts)",
			   (long long)ids[i], holders[i]);
	}
}

static void
arm(struct juki_conflicts *cf)
{
	/* Looked at a few times per grace, at most once a minute, at least every 100 ms. */
	int64_t every = cf->grace_ms / 4;
	struct timeval tv;

	every = every < 100 ? 100 : every > 60000 ? 60000 : every;
	tv.tv_sec = every / 1000;
	tv.tv_usec = (every % 1000) * 1000;
	evtimer_add(cf->timer, &tv);
}

struct juki_conflicts *
juki_conflicts_start(struct juki_node *node, int64_t grace_ms)
{
	struct juki_conflicts *cf = calloc(1, sizeof(*cf));

	if (cf == NULL) {
		return NULL;
	}
	cf->node = node;
	cf->grace_ms = grace_ms;
	cf->any = 1; /* until the first look */
	cf->timer = event_new(juki_node_base(node), -1, EV_PERSIST, conflicts_due, cf);
	if (cf->timer == NULL || juki_node_module_set(node, JUKI_MODULE_CONFLICTS, cf) != 0) {
		if (cf->timer != NULL) {
			event_free(cf->timer);
		}
		free(cf);
		return NULL;
	}
	arm(cf);
	return cf;
}

void
juki_conflicts_set_grace(struct juki_conflicts *cf, int64_t grace_ms)
{
	if (cf != NULL && cf->grace_ms != grace_ms) {
		cf->grace_ms = grace_ms;
		arm(cf);
	}
}

void
juki_conflicts_stop(struct juki_conflicts *cf)
{
	if (cf == NULL) {
		return;
	}
	juki_node_module_clear(cf->node, JUKI_MODULE_CONFLICTS, cf);
	event_free(cf->timer);
	free(cf);
}

int
juki_conflicts_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] = "SELECT id, code, holders, opened_ms, alerted_ms"
				  " FROM honnin_conflict ORDER BY opened_ms, id LIMIT ?1";
	static const char sql_count[] = "SELECT count(*) FROM honnin_conflict";
	struct juki_store *store = juki_node_store(ctx);
	const json_t *limit = json_object_get(args, "limit");
	json_int_t total = 0;
	sqlite3_stmt *st;
	json_t *rows;

	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 0)) {
		return juki_ctl_fail(err, "usage", "limit: a count");
	}
	if ((st = juki_store_prepare(store, sql_count)) == NULL) {
		return JUKI_ESTORE;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		total = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql)) == NULL || (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, limit ? json_integer_value(limit) : 1000);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char since[32], alerted[32];
		json_t *holders = json_array();
		char list[HOLDERS_LEN], *p, *save = NULL;

		snprintf(list, sizeof(list), "%s", (const char *)sqlite3_column_text(st, 2));
		for (p = strtok_r(list, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
			json_array_append_new(holders, json_string(p));
		}
		juki_clock_format(sqlite3_column_int64(st, 3), since, sizeof(since));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			juki_clock_format(sqlite3_column_int64(st, 4), alerted, sizeof(alerted));
		}
		json_array_append_new(
		    rows, json_pack("{s:I,s:s,s:o,s:s,s:s?}", "id",
				    (json_int_t)sqlite3_column_int64(st, 0), "code",
				    sqlite3_column_text(st, 1), "holders", holders, "since", since,
				    "alerted",
				    sqlite3_column_type(st, 4) != SQLITE_NULL ? alerted : NULL));
	}
	sqlite3_reset(st);
	*result = json_pack("{s:I,s:o}", "total", total, "conflicts", rows);
	return *result ? 0 : JUKI_ENOMEM;
}
