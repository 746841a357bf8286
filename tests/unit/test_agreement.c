#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/records/agreement.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define TERMS                                                                                      \
	"{\"id\":\"nenkin-1\",\"body\":\"urn:juki:agency:nenkin\",\"jimu\":[\"1-3\",\"1-91.2\"],"  \
	"\"items\":[\"code\",\"name\",\"address\"],\"methods\":[\"online\"],\"daily_cap\":10,"     \
	"\"bulk_threshold\":5,\"keep_days\":30,"                                                   \
	"\"responsible\":\"urn:juki:op:agency:nenkin:boss\"}"

static json_t *
terms(void)
{
	json_t *t = json_loads(TERMS, 0, NULL);

	assert_non_null(t);
	return t;
}

static void
test_items(void **state)
{
	json_t *a = json_pack("[s,s,s]", "address", "code", "change");
	unsigned items = 0;
	char detail[128], text[64];

	(void)state;
	assert_int_equal(juki_items_from_json(a, &items, detail, sizeof(detail)), 0);
	assert_int_equal(items, JUKI_ITEM_CODE | JUKI_ITEM_ADDRESS | JUKI_ITEM_CHANGE);
	juki_items_text(items, text, sizeof(text));
	assert_string_equal(text, "code,address,change");
	assert_int_equal(juki_items_from_text(text), items);
	json_decref(a);
	a = juki_items_to_json(JUKI_ITEMS_ALL);
	assert_int_equal(json_array_size(a), 6);
	json_decref(a);
	a = json_pack("[s,s]", "code", "code");
	assert_int_equal(juki_items_from_json(a, &items, detail, sizeof(detail)), JUKI_EFORMAT);
	assert_string_equal(detail, "[1]: named twice");
	json_decref(a);
	a = json_pack("[s]", "kana");
	assert_int_equal(juki_items_from_json(a, &items, detail, sizeof(detail)), JUKI_EFORMAT);
	json_decref(a);
	a = json_array();
	assert_int_equal(juki_items_from_json(a, &items, detail, sizeof(detail)), JUKI_EFORMAT);
	json_decref(a);
	assert_null(juki_item_name(3));
	assert_string_equal(juki_item_name(JUKI_ITEM_SEX), "sex");
}

static void
test_jimu_ids(void **state)
{
	(void)state;
	assert_true(juki_jimu_valid("1-3"));
	assert_true(juki_jimu_valid("6-999"));
	assert_true(juki_jimu_valid("1-91.2"));
	assert_true(juki_jimu_valid("2-10.99"));
	assert_false(juki_jimu_valid("7-1"));
	assert_false(juki_jimu_valid("0-1"));
	assert_false(juki_jimu_valid("1-0"));
	assert_false(juki_jimu_valid("1-03"));
	assert_false(juki_jimu_valid("1-1000"));
	assert_false(juki_jimu_valid("1-"));
	assert_false(juki_jimu_valid("1-2."));
	assert_false(juki_jimu_valid("1-2.100"));
	assert_false(juki_jimu_valid("1-2-3"));
	assert_false(juki_jimu_valid("1"));
	assert_false(juki_jimu_valid(""));
	assert_false(juki_jimu_valid(NULL));
}

/* pending -> active -> suspended <-> active; anything but ended -> ended; nothing after. */
static void
test_states(void **state)
{
	enum juki_agreement_state next;

	(void)state;
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_PENDING, JUKI_AGREEMENT_APPROVE, &next),
			 0);
	assert_int_equal(next, JUKI_AGREEMENT_ACTIVE);
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_ACTIVE, JUKI_AGREEMENT_SUSPEND, &next),
			 0);
	assert_int_equal(next, JUKI_AGREEMENT_SUSPENDED);
	assert_int_equal(
	    juki_agreement_next(JUKI_AGREEMENT_SUSPENDED, JUKI_AGREEMENT_RESUME, &next), 0);
	assert_int_equal(next, JUKI_AGREEMENT_ACTIVE);
	for (int s = JUKI_AGREEMENT_PENDING; s <= JUKI_AGREEMENT_SUSPENDED; s++) {
		assert_int_equal(
		    juki_agreement_next((enum juki_agreement_state)s, JUKI_AGREEMENT_END, &next),
		    0);
		assert_int_equal(next, JUKI_AGREEMENT_ENDED);
	}
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_PENDING, JUKI_AGREEMENT_SUSPEND, &next),
			 JUKI_EINVAL);
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_PENDING, JUKI_AGREEMENT_RESUME, &next),
			 JUKI_EINVAL);
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_ACTIVE, JUKI_AGREEMENT_APPROVE, &next),
			 JUKI_EINVAL);
	assert_int_equal(juki_agreement_next(JUKI_AGREEMENT_ACTIVE, JUKI_AGREEMENT_RESUME, &next),
			 JUKI_EINVAL);
	for (int a = JUKI_AGREEMENT_APPROVE; a <= JUKI_AGREEMENT_END; a++) {
		assert_int_equal(
		    juki_agreement_next(JUKI_AGREEMENT_ENDED, (enum juki_agreement_action)a, &next),
		    JUKI_EINVAL);
	}
}

static void
expect_bad(const char *key, json_t *value, const char *field)
{
	struct juki_agreement a;
	char f[32], detail[200];
	json_t *t = terms();

	if (value == NULL) {
		json_object_del(t, key);
	} else {
		json_object_set_new(t, key, value);
	}
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)),
			 JUKI_EFORMAT);
	assert_string_equal(f, field);
	json_decref(t);
}

static void
test_terms(void **state)
{
	struct juki_agreement a;
	char f[32], detail[200];
	json_t *t = terms(), *back;

	(void)state;
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)), 0);
	assert_string_equal(a.id, "nenkin-1");
	assert_int_equal(a.njimu, 2);
	assert_true(juki_agreement_has_jimu(&a, "1-91.2"));
	assert_false(juki_agreement_has_jimu(&a, "1-9"));
	assert_int_equal(a.methods, JUKI_METHOD_ONLINE);
	assert_int_equal(a.state, JUKI_AGREEMENT_PENDING);
	back = juki_agreement_to_json(&a);
	assert_string_equal(json_string_value(json_object_get(back, "state")), "pending");
	assert_true(json_equal(json_object_get(back, "items"), json_object_get(t, "items")));
	json_decref(back);
	json_decref(t);
	/* an executive body, and its staff card */
	t = terms();
	json_object_set_new(t, "body", json_string("urn:juki:exec:131016-zeimu"));
	json_object_set_new(t, "responsible", json_string("urn:juki:op:exec:131016-zeimu:ito"));
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)), 0);
	json_decref(t);

	expect_bad("id", json_string("Nenkin"), "id");
	expect_bad("id", NULL, "id");
	expect_bad("body", json_string("urn:juki:cs:131016"), "body");
	expect_bad("body", json_string("urn:juki:op:agency:nenkin:sato"), "body");
	expect_bad("jimu", json_pack("[]"), "jimu");
	expect_bad("jimu", json_pack("[s]", "1-x"), "jimu");
	expect_bad("jimu", json_pack("[s,s]", "1-3", "1-3"), "jimu");
	expect_bad("items", json_pack("[s]", "kana"), "items");
	expect_bad("methods", json_pack("[s]", "mail"), "methods");
	expect_bad("methods", json_pack("[s,s]", "online", "online"), "methods");
	expect_bad("daily_cap", json_integer(0), "daily_cap");
	expect_bad("bulk_threshold", json_integer(-1), "bulk_threshold");
	expect_bad("keep_days", json_integer(0), "keep_days");
	expect_bad("keep_days", json_string("30"), "keep_days");
	/* the 責任者 is a staff card of that very body */
	expect_bad("responsible", json_string("urn:juki:op:agency:kokuzei:boss"), "responsible");
	expect_bad("responsible", json_string("urn:juki:agency:nenkin"), "responsible");
	expect_bad("responsible", json_string("urn:juki:op:pref:13:boss"), "responsible");
	expect_bad("purpose", json_string("x"), "agreement");
}

#define CA_TERMS                                                                                   \
	"{\"id\":\"jpki-feed\",\"body\":\"urn:juki:ca:jpki\",\"items\":[\"code\",\"name\","        \
	"\"birth\",\"sex\",\"address\",\"change\"],\"methods\":[\"feed\"],\"keep_days\":3650,"     \
	"\"responsible\":\"urn:juki:op:ca:jpki:boss\"}"

static json_t *
ca_terms(void)
{
	json_t *t = json_loads(CA_TERMS, 0, NULL);

	assert_non_null(t);
	return t;
}

/* The terms of a CA's agreement with one key changed (value NULL: removed) are refused at field. */
static void
expect_ca_bad(const char *key, json_t *value, const char *field)
{
	struct juki_agreement a;
	char f[32], detail[200];
	json_t *t = ca_terms();

	if (value == NULL) {
		json_object_del(t, key);
	} else {
		json_object_set_new(t, key, value);
	}
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)),
			 JUKI_EFORMAT);
	assert_string_equal(f, field);
	json_decref(t);
}

/*
 * A certification authority's agreement (第6-8(6)ア): method feed alone, no
 * 事務, no cap; feed is for an authority only.
 */
static void
test_ca_terms(void **state)
{
	struct juki_agreement a;
	char f[32], detail[200];
	json_t *t = ca_terms(), *back;

	(void)state;
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)), 0);
	assert_string_equal(a.body, "urn:juki:ca:jpki");
	assert_int_equal(a.methods, JUKI_METHOD_FEED);
	assert_int_equal(a.njimu, 0);
	assert_int_equal(a.items, JUKI_ITEMS_ALL);
	assert_int_equal(a.keep_days, 3650);
	back = juki_agreement_to_json(&a);
	assert_string_equal(json_string_value(json_array_get(json_object_get(back, "methods"), 0)),
			    "feed");
	assert_int_equal(json_array_size(json_object_get(back, "jimu")), 0);
	json_decref(back);
	json_decref(t);
	/* an empty 事務 list is the same as none */
	t = ca_terms();
	json_object_set_new(t, "jimu", json_array());
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)), 0);
	json_decref(t);

	expect_ca_bad("jimu", json_pack("[s]", "1-3"), "jimu");
	expect_ca_bad("methods", json_pack("[s]", "online"), "methods");
	expect_ca_bad("methods", json_pack("[s,s]", "feed", "batch"), "methods");
	expect_ca_bad("methods", json_pack("[s,s]", "feed", "feed"), "methods");
	expect_ca_bad("responsible", json_string("urn:juki:op:agency:nenkin:boss"), "responsible");
	expect_ca_bad("keep_days", NULL, "keep_days");
	expect_ca_bad("daily_cap", json_integer(0), "daily_cap");
	/* feed is for an authority only */
	expect_bad("methods", json_pack("[s]", "feed"), "methods");
	expect_bad("methods", json_pack("[s,s]", "online", "feed"), "methods");
}

static void
check(const struct juki_agreement *a, const struct juki_provide_ask *ask, const char *want)
{
	const char *reason = NULL;
	char detail[200];
	int rc = juki_agreement_check(a, ask, &reason, detail, sizeof(detail));

	if (want == NULL) {
		assert_int_equal(rc, 0);
	} else {
		assert_int_equal(rc, JUKI_EPERM);
		assert_string_equal(reason, want);
	}
}

/* Each rule, and the order: the first that fails is the reason. */
static void
test_check(void **state)
{
	struct juki_agreement a;
	struct juki_ident nenkin, kokuzei;
	struct juki_provide_ask ask;
	char f[32], detail[200];
	json_t *t = terms();

	(void)state;
	assert_int_equal(juki_agreement_from_json(t, &a, f, sizeof(f), detail, sizeof(detail)), 0);
	json_decref(t);
	assert_int_equal(juki_ident_parse("urn:juki:agency:nenkin", &nenkin), 0);
	assert_int_equal(juki_ident_parse("urn:juki:agency:kokuzei", &kokuzei), 0);
	memset(&ask, 0, sizeof(ask));
	ask.sender = &nenkin;
	ask.jimu = "1-3";
	ask.items = JUKI_ITEM_CODE | JUKI_ITEM_NAME;
	ask.method = JUKI_METHOD_ONLINE;
	ask.n = 1;
	check(NULL, &ask, JUKI_R_NO_AGREEMENT);
	check(&a, &ask, JUKI_R_AGREEMENT_INACTIVE);
	a.state = JUKI_AGREEMENT_ACTIVE;
	check(&a, &ask, NULL);
	ask.sender = &kokuzei;
	check(&a, &ask, JUKI_R_NO_AGREEMENT);
	ask.sender = &nenkin;
	a.state = JUKI_AGREEMENT_SUSPENDED;
	check(&a, &ask, JUKI_R_AGREEMENT_INACTIVE);
	a.state = JUKI_AGREEMENT_ENDED;
	check(&a, &ask, JUKI_R_AGREEMENT_INACTIVE);
	a.state = JUKI_AGREEMENT_ACTIVE;
	ask.jimu = "1-4";
	ask.items = JUKI_ITEM_BIRTH;
	check(&a, &ask, JUKI_R_JIMU_NOT_AGREED);
	ask.jimu = "1-91.2";
	check(&a, &ask, JUKI_R_ITEM_NOT_AGREED);
	ask.items = JUKI_ITEM_ADDRESS;
	ask.method = JUKI_METHOD_BATCH;
	check(&a, &ask, JUKI_R_METHOD_NOT_AGREED);
	ask.method = JUKI_METHOD_ONLINE;
	ask.used = 9;
	check(&a, &ask, NULL);
	ask.n = 2;
	check(&a, &ask, JUKI_R_OVER_CAP);
	ask.used = 10;
	ask.n = 1;
	check(&a, &ask, JUKI_R_OVER_CAP);
}

static void
test_jimu_list(void **state)
{
	static const char text[] = "# an example\n"
				   "table,row,title\n"
				   "\n"
				   "1,3,旅券の発給に関する事務\r\n"
				   " 1 , 91.2 , 枝番号の事務 \n";
	struct juki_jimu_list *list = NULL;
	char err[200];
	json_t *j;

	(void)state;
	assert_int_equal(juki_jimu_list_parse(text, strlen(text), &list, err, sizeof(err)), 0);
	assert_int_equal(juki_jimu_list_count(list), 2);
	assert_string_equal(juki_jimu_list_title(list, "1-3"), "旅券の発給に関する事務");
	assert_string_equal(juki_jimu_list_title(list, "1-91.2"), "枝番号の事務");
	assert_null(juki_jimu_list_title(list, "1-4"));
	j = juki_jimu_list_json(list);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
	juki_jimu_list_free(list);

	assert_int_equal(juki_jimu_list_parse("1,3,a\n1,3,b\n", 12, &list, err, sizeof(err)),
			 JUKI_EFORMAT);
	assert_string_equal(err, "line 2: 事務 1-3 listed twice");
	assert_int_equal(juki_jimu_list_parse("7,1,a\n", 6, &list, err, sizeof(err)), JUKI_EFORMAT);
	assert_int_equal(juki_jimu_list_parse("1,1\n", 4, &list, err, sizeof(err)), JUKI_EFORMAT);
	assert_string_equal(err, "line 1: expected table,row,title");
	assert_int_equal(juki_jimu_list_parse("1,1,\n", 5, &list, err, sizeof(err)), JUKI_EFORMAT);
	assert_int_equal(juki_jimu_list_parse("1,1,a\0b\n", 8, &list, err, sizeof(err)),
			 JUKI_EFORMAT);
	/* the header only as the first line */
	assert_int_equal(
	    juki_jimu_list_parse("1,1,a\ntable,row,title\n", 22, &list, err, sizeof(err)),
	    JUKI_EFORMAT);
	assert_null(list);
	/* empty: a list of none */
	assert_int_equal(juki_jimu_list_parse("", 0, &list, err, sizeof(err)), 0);
	assert_int_equal(juki_jimu_list_count(list), 0);
	juki_jimu_list_free(list);
}

struct fx {
	char dir[64];
	struct juki_store *store;
};

static int
setup(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_AGREEMENT_SCHEMA};
	struct fx *f = calloc(1, sizeof(*f));
	char path[128], err[200];

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "agreement"));
	snprintf(path, sizeof(path), "%s/s.db", f->dir);
	assert_int_equal(juki_store_open(path, schemas, 1, &f->store, err, sizeof(err)), 0);
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
test_store(void **state)
{
	struct fx *f = *state;
	struct juki_agreement a, b;
	char fl[32], detail[200];
	json_t *t = terms(), *list;
	int64_t used;

	assert_int_equal(juki_agreement_from_json(t, &a, fl, sizeof(fl), detail, sizeof(detail)),
			 0);
	json_decref(t);
	snprintf(a.added_by, sizeof(a.added_by), "urn:juki:op:pref:13:s1");
	a.added_ms = a.changed_ms = 1000;
	assert_int_equal(juki_agreement_insert(f->store, &a), 0);
	assert_int_equal(juki_agreement_insert(f->store, &a), JUKI_EDUP);
	assert_int_equal(juki_agreement_get(f->store, "nenkin-1", &b), 0);
	assert_string_equal(b.body, a.body);
	assert_int_equal(b.njimu, 2);
	assert_string_equal(b.jimu[1], "1-91.2");
	assert_int_equal(b.items, a.items);
	assert_int_equal(b.keep_days, 30);
	assert_string_equal(b.responsible, a.responsible);
	assert_int_equal(juki_agreement_get(f->store, "nenkin-2", &b), JUKI_ENOTFOUND);
	b.state = JUKI_AGREEMENT_ACTIVE;
	snprintf(b.approved_by, sizeof(b.approved_by), "urn:juki:op:pref:13:s2");
	assert_int_equal(juki_agreement_update_state(f->store, &b), 0);
	list = juki_agreement_list_json(f->store, "active");
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	list = juki_agreement_list_json(f->store, "pending");
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	/* the day's use, per agreement and Japan day */
	assert_int_equal(juki_agreement_used(f->store, "nenkin-1", 20000, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(juki_agreement_count(f->store, "nenkin-1", 20000, 3), 0);
	assert_int_equal(juki_agreement_count(f->store, "nenkin-1", 20000, 4), 0);
	assert_int_equal(juki_agreement_count(f->store, "nenkin-1", 20001, 1), 0);
	assert_int_equal(juki_agreement_used(f->store, "nenkin-1", 20000, &used), 0);
	assert_int_equal(used, 7);
}

/* juki_agreement_feed() finds the active feed agreement of an authority, and only that. */
static void
test_store_feed(void **state)
{
	struct fx *f = *state;
	struct juki_agreement a, b;
	char fl[32], detail[200];
	json_t *t = ca_terms();

	assert_int_equal(juki_agreement_from_json(t, &a, fl, sizeof(fl), detail, sizeof(detail)),
			 0);
	json_decref(t);
	a.added_ms = a.changed_ms = 1000;
	assert_int_equal(juki_agreement_insert(f->store, &a), 0);
	assert_int_equal(juki_agreement_get(f->store, "jpki-feed", &b), 0);
	assert_int_equal(b.njimu, 0);
	assert_int_equal(b.methods, JUKI_METHOD_FEED);
	/* pending: not used */
	assert_int_equal(juki_agreement_feed(f->store, "urn:juki:ca:jpki", &b), JUKI_ENOTFOUND);
	a.state = JUKI_AGREEMENT_ACTIVE;
	assert_int_equal(juki_agreement_update_state(f->store, &a), 0);
	assert_int_equal(juki_agreement_feed(f->store, "urn:juki:ca:jpki", &b), 0);
	assert_string_equal(b.id, "jpki-feed");
	assert_int_equal(b.keep_days, 3650);
	assert_int_equal(juki_agreement_feed(f->store, "urn:juki:ca:other", &b), JUKI_ENOTFOUND);
	a.state = JUKI_AGREEMENT_SUSPENDED;
	assert_int_equal(juki_agreement_update_state(f->store, &a), 0);
	assert_int_equal(juki_agreement_feed(f->store, "urn:juki:ca:jpki", &b), JUKI_ENOTFOUND);
}

static void
test_batches(void **state)
{
	struct fx *f = *state;
	struct juki_batch_part p = {.body = "urn:juki:agency:nenkin",
				    .agreement = "nenkin-1",
				    .id = "0190f1a4-0000-7000-8000-000000000001",
				    .count = 5,
				    .part = 0,
				    .parts = 2,
				    .n = 3};
	char detail[200];

	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), 0);
	/* the same part again */
	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), JUKI_EINVAL);
	assert_string_equal(detail, "batch: part 0 was answered before");
	/* another count, body or agreement for the same batch */
	p.part = 1;
	p.n = 2;
	p.count = 6;
	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), JUKI_EINVAL);
	p.count = 5;
	p.agreement = "other";
	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), JUKI_EINVAL);
	p.agreement = "nenkin-1";
	/* more queries than count */
	p.n = 3;
	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), JUKI_EINVAL);
	p.n = 2;
	assert_int_equal(juki_batch_take(f->store, &p, 1, detail, sizeof(detail)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_items),
	    cmocka_unit_test(test_jimu_ids),
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_terms),
	    cmocka_unit_test(test_ca_terms),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_jimu_list),
	    cmocka_unit_test_setup_teardown(test_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_feed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
