#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/records/provision.h"
#include "juki/store/purge.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define BODY  "urn:juki:agency:nenkin"
#define STAFF "urn:juki:op:agency:nenkin:sato"
#define PREF  "urn:juki:pref:13"
/* A purpose whose bytes the proof of erasure looks for. */
#define PURPOSE "年金給付の現況確認消去証明"

struct fx {
	char dir[64];
	char path[128];
	struct juki_store *store;
};

static int64_t
at(const char *text)
{
	int64_t ms = 0;

	assert_int_equal(juki_clock_parse(text, &ms), 0);
	return ms;
}

static int
setup(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_PROVISION_SCHEMA};
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "provision"));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(juki_store_open(f->path, schemas, 1, &f->store, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->store);
	test_rm_rf(f->dir);
	free(f);
	return 0;
}

static void
add(struct fx *f, const char *code, int64_t when, const char *purpose)
{
	struct juki_provision p = {
	    .kind = "provide",
	    .code = code,
	    .body = BODY,
	    .staff = STAFF,
	    .agreement = "nenkin-1",
	    .jimu = "1-3",
	    .items = "code,name,address",
	    .purpose = purpose,
	    .time_ms = when,
	    .request = "0190f1a4-0000-7000-8000-000000000001",
	    .origin = PREF,
	};

	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_provision_add(f->store, &p), 0);
	assert_int_equal(juki_store_commit(f->store), 0);
}

/* Records of a code come back oldest first, with every field; none of another code. */
static void
test_add_and_read(void **state)
{
	struct fx *f = *state;
	json_t *list, *first;

	add(f, "24727059608", at("2026-05-02T00:00:00Z"), "second");
	add(f, "24727059608", at("2026-05-01T00:00:00Z"), "first");
	add(f, "11111111119", at("2026-05-01T00:00:00Z"), "other");
	assert_int_equal(juki_provision_count(f->store), 3);
	list = juki_provision_for_code(f->store, "24727059608");
	assert_non_null(list);
	assert_int_equal(json_array_size(list), 2);
	first = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(first, "purpose")), "first");
	assert_string_equal(json_string_value(json_object_get(first, "kind")), "provide");
	assert_string_equal(json_string_value(json_object_get(first, "body")), BODY);
	assert_string_equal(json_string_value(json_object_get(first, "staff")), STAFF);
	assert_string_equal(json_string_value(json_object_get(first, "jimu")), "1-3");
	assert_string_equal(json_string_value(json_object_get(first, "origin")), PREF);
	assert_string_equal(json_string_value(json_object_get(first, "time")),
			    "2026-05-01T00:00:00.000Z");
	assert_int_equal(json_array_size(json_object_get(first, "items")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(first, "items"), 2)),
			    "address");
	assert_true(juki_uuid_valid(json_string_value(json_object_get(first, "id"))));
	json_decref(list);
	list = juki_provision_for_code(f->store, "99999999999");
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

static void
test_refused(void **state)
{
	struct fx *f = *state;
	struct juki_provision p = {.kind = "lend",
				   .code = "24727059608",
				   .body = BODY,
				   .items = "code",
				   .time_ms = 1,
				   .origin = PREF};

	assert_int_equal(juki_provision_add(f->store, &p), JUKI_EINVAL);
	p.kind = "use";
	p.origin = NULL;
	assert_int_equal(juki_provision_add(f->store, &p), JUKI_EINVAL);
	p.origin = PREF;
	p.code = "";
	assert_int_equal(juki_provision_add(f->store, &p), JUKI_EINVAL);
	p.code = "24727059608";
	p.id = "0190f1a4-0000-7000-8000-000000000009";
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_provision_add(f->store, &p), 0);
	/* one id, once */
	assert_int_equal(juki_provision_add(f->store, &p), JUKI_ESTORE);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_provision_count(f->store), 0);
}

static int
file_has(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	size_t n = strlen(needle), got;
	static char buf[1 << 20];
	int found = 0;

	if (fp == NULL) {
		return 0;
	}
	got = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	for (size_t i = 0; i + n <= got && !found; i++) {
		found = memcmp(buf + i, needle, n) == 0;
	}
	return found;
}

/*
 * provision.keep by the purge date rule: a record of 2021-04-01 (JST) with
 * five years is due from 2026-04-01T00:00 JST, not a moment before; the
 * purge leaves none of its bytes in the store file or its WAL.
 */
static void
test_purge_rule(void **state)
{
	static const struct juki_purge_rule rules[] = {
	    JUKI_PROVISION_PURGE_RULE,
	    {NULL, NULL, NULL, NULL, JUKI_PURGE_YEARS},
	};
	struct fx *f = *state;
	struct juki_purge_conf conf = {.years = 5, .inbox_days = 400, .provision_years = 5};
	char wal[160];
	json_t *report = NULL;

	add(f, "24727059608", at("2021-04-01T01:00:00Z"), PURPOSE);
	add(f, "11111111119", at("2021-04-01T15:00:00Z"), "kept");
	assert_true(file_has(f->path, PURPOSE) ||
		    (snprintf(wal, sizeof(wal), "%s-wal", f->path), file_has(wal, PURPOSE)));
	/* the day before: nothing due */
	assert_int_equal(
	    juki_purge_run(f->store, &conf, rules, at("2026-03-31T14:59:59Z"), 1, &report), 0);
	assert_int_equal(json_integer_value(json_object_get(report, "due")), 0);
	json_decref(report);
	/* never with provision_years 0 */
	conf.provision_years = 0;
	assert_int_equal(
	    juki_purge_run(f->store, &conf, rules, at("2040-01-01T00:00:00Z"), 1, &report), 0);
	assert_int_equal(json_integer_value(json_object_get(report, "due")), 0);
	json_decref(report);
	conf.provision_years = 5;
	assert_int_equal(
	    juki_purge_run(f->store, &conf, rules, at("2026-03-31T15:00:00Z"), 0, &report), 0);
	assert_int_equal(json_integer_value(json_object_get(report, "removed")), 1);
	assert_true(json_is_true(json_object_get(report, "verified")));
	json_decref(report);
	assert_int_equal(juki_provision_count(f->store), 1);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_false(file_has(f->path, PURPOSE));
	assert_false(file_has(wal, PURPOSE));
}

static void
test_erase_before(void **state)
{
	struct fx *f = *state;
	int64_t removed = -1;

	add(f, "24727059608", 1000, PURPOSE);
	add(f, "24727059608", 3000, "kept");
	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_provision_erase_before(f->store, 2000, &removed), JUKI_EINVAL);
	assert_int_equal(juki_store_rollback(f->store), 0);
	assert_int_equal(juki_provision_erase_before(f->store, 2000, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(juki_provision_count(f->store), 1);
	assert_false(file_has(f->path, PURPOSE));
}

/*
 * At the national server the notices' sender finds the records not yet
 * notified by an index of them alone, not by walking every record kept
 * (years of them), and the index by code is gone.
 */
static void
test_national_indexes(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_PROVISION_SCHEMA,
						     JUKI_PROVISION_NATIONAL_SCHEMA};
	static const char plan[] =
	    "EXPLAIN QUERY PLAN SELECT id FROM provisions WHERE notified = 0 AND origin = ?1"
	    " AND (time_ms, id) > (?2, ?3) ORDER BY time_ms, id LIMIT 500";
	struct fx *f = *state;
	struct juki_store *store;
	sqlite3_stmt *st;
	char path[sizeof(f->path) + 16], err[256];
	int unnotified = 0, by_code = 0;

	snprintf(path, sizeof(path), "%s/national.db", f->dir);
	assert_int_equal(juki_store_open(path, schemas, 2, &store, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(store), plan, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		unnotified |= strstr((const char *)sqlite3_column_text(st, 3),
				     "provisions_unnotified") != NULL;
	}
	sqlite3_finalize(st);
	assert_int_equal(
	    sqlite3_prepare_v2(juki_store_db(store),
			       "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
			       " AND name = 'provisions_code'",
			       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	by_code = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	juki_store_close(store);
	assert_true(unnotified);
	assert_int_equal(by_code, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_add_and_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_purge_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_erase_before, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_national_indexes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
