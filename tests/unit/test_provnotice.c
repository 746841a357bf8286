/*
 * Provision notices (node/provnotice.c), the prefecture's side and the
 * counts both sides compare: a notice from the national server is stored
 * once per record with the sender as origin; a notice from anyone else, or
 * with one bad record, stores nothing and names the field; the count and
 * digest of a JST day are the same whether counted as sent or as received.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/node/provnotice.h"
#include "juki/records/provision.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define JLIS "urn:juki:jlis:0"
#define CODE "24727059608"

static const char *const ids[] = {
    "019af5c2-6b1e-7c3a-9d1e-2f3a4b5c6d7e",
    "019af5c2-6b1f-7c3a-9d1e-2f3a4b5c6d7f",
    "019af5c2-6b20-7c3a-9d1e-2f3a4b5c6d80",
};

struct fx {
	char dir[64];
	struct juki_store *store;
};

static int
setup(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_PROVISION_SCHEMA, JUKI_PROVNOTICE_SCHEMA};
	struct fx *f = calloc(1, sizeof(*f));
	char path[128], err[256];

	assert_non_null(f);
	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "provnotice"));
	snprintf(path, sizeof(path), "%s/store.db", f->dir);
	assert_int_equal(juki_store_open(path, schemas, 2, &f->store, err, sizeof(err)), 0);
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

static int64_t
at(const char *text)
{
	int64_t ms = 0;

	assert_int_equal(juki_clock_parse(text, &ms), 0);
	return ms;
}

/* A record of a notice. */
static json_t *
record(const char *id, int64_t when)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "id", id, "kind",
			 "provide", "code", CODE, "body", "urn:juki:agency:nenkin", "staff",
			 "urn:juki:op:agency:nenkin:sato", "agreement", "ag-1", "jimu", "1-2",
			 "items", "code,name", "purpose", "年金給付の支給に関する事務", "time_ms",
			 (json_int_t)when, "request", "");
}

/* Hand a notice of records (stolen) from sender to the prefecture's side. */
static int
deliver(struct fx *f, const char *sender, json_t *records, struct juki_reject *rej)
{
	struct juki_msg msg;
	int rc;

	memset(&msg, 0, sizeof(msg));
	memset(rej, 0, sizeof(*rej));
	snprintf(msg.type, sizeof(msg.type), "%s", JUKI_MSG_PROVIDE_NOTICE);
	snprintf(msg.from, sizeof(msg.from), "%s", sender);
	snprintf(msg.to, sizeof(msg.to), "urn:juki:pref:13");
	msg.body = json_pack("{s:o}", "records", records);
	assert_int_equal(juki_store_begin(f->store), 0);
	rc = juki_provnotice_receive(f->store, &msg, rej);
	if (rc == 0) {
		assert_int_equal(juki_store_commit(f->store), 0);
	} else {
		juki_store_rollback(f->store);
	}
	json_decref(msg.body);
	return rc;
}

static int64_t
count(struct fx *f, const char *where)
{
	char sql[256];
	sqlite3_stmt *st;
	int64_t n;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM provisions WHERE %s", where);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store), sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
test_stored_once_with_origin(void **state)
{
	struct fx *f = *state;
	struct juki_reject rej;
	json_t *disclosed;

	assert_int_equal(deliver(f, JLIS,
				 json_pack("[o,o]", record(ids[0], at("2026-12-01T01:00:00Z")),
					   record(ids[1], at("2026-12-01T02:00:00Z"))),
				 &rej),
			 0);
	assert_int_equal(count(f, "origin = '" JLIS "' AND notified = 1"), 2);
	/* Sent again (reconciliation), with one more: each id held once. */
	assert_int_equal(deliver(f, JLIS,
				 json_pack("[o,o]", record(ids[1], at("2026-12-01T02:00:00Z")),
					   record(ids[2], at("2026-12-01T03:00:00Z"))),
				 &rej),
			 0);
	assert_int_equal(count(f, "1"), 3);
	disclosed = juki_provision_for_code(f->store, CODE);
	assert_int_equal(json_array_size(disclosed), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(disclosed, 0), "id")),
			    ids[0]);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(disclosed, 0), "origin")), JLIS);
	json_decref(disclosed);
}

/* A notice refused: the reason, a detail naming the field, nothing stored. */
static void
refused(struct fx *f, const char *sender, json_t *bad, const char *reason, const char *detail)
{
	struct juki_reject rej;
	json_t *records = json_array();

	/* A good record first: a bad one after it refuses the whole message. */
	json_array_append_new(records, record(ids[0], at("2026-12-01T01:00:00Z")));
	if (bad != NULL) {
		json_array_append_new(records, bad);
	}
	assert_int_equal(deliver(f, sender, records, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, reason);
	assert_non_null(strstr(rej.detail, detail));
	assert_int_equal(count(f, "1"), 0);
}

static json_t *
with(const char *key, json_t *value)
{
	json_t *r = record(ids[1], at("2026-12-01T02:00:00Z"));

	json_object_set_new(r, key, value);
	return r;
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct juki_reject rej;
	json_t *many = json_array();

	refused(f, "urn:juki:pref:27", NULL, JUKI_R_POLICY, "national server");
	refused(f, "urn:juki:cs:131016", NULL, JUKI_R_POLICY, "national server");
	refused(f, JLIS, with("id", json_string("not-a-uuid")), JUKI_R_BAD_FIELD, "records[1].id");
	refused(f, JLIS, with("kind", json_string("use")), JUKI_R_BAD_FIELD, "records[1].kind");
	refused(f, JLIS, with("code", json_string("24727059609")), JUKI_R_CHECK_DIGIT,
		"records[1].code");
	refused(f, JLIS, with("body", json_string("urn:juki:cs:131016")), JUKI_R_BAD_FIELD,
		"records[1].body");
	refused(f, JLIS, with("items", json_string("")), JUKI_R_BAD_FIELD, "records[1]");
	refused(f, JLIS, with("purpose", json_string("a\nb")), JUKI_R_BAD_FIELD, "records[1]");
	refused(f, JLIS, with("time_ms", json_string("now")), JUKI_R_BAD_FIELD,
		"records[1].time_ms");
	refused(f, JLIS, json_string("x"), JUKI_R_BAD_FIELD, "records[1]: an object");
	/* No records, and too many. */
	assert_int_equal(deliver(f, JLIS, json_array(), &rej), JUKI_REJECT);
	assert_non_null(strstr(rej.detail, "records: 1 to 500"));
	for (int i = 0; i <= JUKI_PROVNOTICE_MAX; i++) {
		json_array_append_new(many, record(ids[0], at("2026-12-01T01:00:00Z")));
	}
	assert_int_equal(deliver(f, JLIS, many, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_BAD_FIELD);
	assert_int_equal(count(f, "1"), 0);
}

/* The digest by hand: XOR of SHA-256 of each id. */
static void
digest_of(const char *const *list, size_t n, char hex[65])
{
	unsigned char acc[32] = {0}, md[EVP_MAX_MD_SIZE];
	unsigned int len;

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(EVP_Digest(list[i], strlen(list[i]), md, &len, EVP_sha256(), NULL),
				 1);
		for (size_t k = 0; k < 32; k++) {
			acc[k] ^= md[k];
		}
	}
	juki_hex_encode(acc, 32, hex);
}

static void
test_counts_by_jst_day(void **state)
{
	struct fx *f = *state;
	struct juki_reject rej;
	struct juki_msg msg;
	char want[65];
	json_t *got;

	/* 14:59 UTC is 23:59 on the 1st in Japan; 15:00 UTC is already the 2nd. */
	assert_int_equal(deliver(f, JLIS,
				 json_pack("[o,o,o]", record(ids[0], at("2026-11-30T15:00:00Z")),
					   record(ids[1], at("2026-12-01T14:59:59.999Z")),
					   record(ids[2], at("2026-12-01T15:00:00Z"))),
				 &rej),
			 0);
	got = juki_provnotice_counts(f->store, JLIS, "2026-12-01", 0);
	digest_of(ids, 2, want);
	assert_int_equal(json_integer_value(json_object_get(got, "total")), 2);
	assert_string_equal(json_string_value(json_object_get(got, "digest")), want);
	json_decref(got);
	/* Another sender's day is empty: 64 zeros. */
	got = juki_provnotice_counts(f->store, "urn:juki:jlis:1", "2026-12-01", 0);
	assert_int_equal(json_integer_value(json_object_get(got, "total")), 0);
	assert_string_equal(json_string_value(json_object_get(got, "digest")),
			    "0000000000000000000000000000000000000000000000000000000000000000");
	json_decref(got);

	/* The sender's side counts the same ids the same way. */
	assert_int_equal(
	    sqlite3_exec(
		juki_store_db(f->store),
		"INSERT INTO provnotice_sent (id, dest, day, sent_ms) VALUES"
		" ('019af5c2-6b1e-7c3a-9d1e-2f3a4b5c6d7e', 'urn:juki:pref:13', '2026-12-01', 1),"
		" ('019af5c2-6b1f-7c3a-9d1e-2f3a4b5c6d7f', 'urn:juki:pref:13', '2026-12-01', 1)",
		NULL, NULL, NULL),
	    SQLITE_OK);
	got = juki_provnotice_counts(f->store, "urn:juki:pref:13", "2026-12-01", 1);
	assert_int_equal(json_integer_value(json_object_get(got, "total")), 2);
	assert_string_equal(json_string_value(json_object_get(got, "digest")), want);
	json_decref(got);

	/* The query: the answer is the ack's result; a bad day is refused. */
	memset(&msg, 0, sizeof(msg));
	snprintf(msg.from, sizeof(msg.from), "%s", JLIS);
	msg.body = json_pack("{s:s}", "day", "2026-12-02");
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_provnotice_answer_counts(f->store, &msg, &rej), 0);
	assert_int_equal(json_integer_value(json_object_get(rej.result, "total")), 1);
	json_decref(rej.result);
	json_decref(msg.body);
	msg.body = json_pack("{s:s}", "day", "2026-02-30");
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_provnotice_answer_counts(f->store, &msg, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, JUKI_R_BAD_FIELD);
	json_decref(msg.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stored_once_with_origin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counts_by_jst_day, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
