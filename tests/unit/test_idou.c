#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/records/honnin.h"
#include "juki/records/idou.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define CODE     "24727059608"
#define NEW_CODE "05783086273"
#define ID       "01890a5d-ac96-774b-bcce-b302099a8057"

/* A person's record with the fields a case varies (kana NULL: none). */
struct rec {
	const char *lgcode;
	int version;
	const char *reason;
	const char *date;
	const char *name, *kana, *birth;
	int sex;
	const char *address;
	const char *old_code, *new_code;
};

static const struct rec base = {"131016",     1,           "転入",
				"2026-10-01", "山田 花子", "ヤマダ ハナコ",
				"1990-04-01", 2,           "東京都千代田区本町1丁目1番1号",
				NULL,         NULL};

static json_t *
rec_json(const struct rec *r)
{
	json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s*,s:s,s:i,s:s},s:s*,s:s*}",
			      "code", r->old_code != NULL ? NEW_CODE : CODE, "lgcode", r->lgcode,
			      "version", r->version, "reason", r->reason, "reason_date", r->date,
			      "recorded", "2026-11-25T01:02:03.456Z", "person", "name", r->name,
			      "kana", r->kana, "birth", r->birth, "sex", r->sex, "address",
			      r->address, "old_code", r->old_code, "new_code", r->new_code);

	assert_non_null(j);
	return j;
}

static void
change_of(const struct rec *r, struct juki_change *c)
{
	struct juki_field_error fe;
	json_t *j = rec_json(r);

	assert_int_equal(juki_change_from_json(j, c, &fe), 0);
	json_decref(j);
}

/* What derive(prev, cur) gives: 1 with *e, or 0. */
static int
derive(const struct rec *prev, const struct rec *cur, struct juki_idou *e)
{
	struct juki_change p, c;

	if (prev != NULL) {
		change_of(prev, &p);
	}
	change_of(cur, &c);
	return juki_idou_derive(prev != NULL ? &p : NULL, &c, e);
}

static void
test_kind_names(void **state)
{
	enum juki_idou_kind k;

	(void)state;
	assert_string_equal(juki_idou_kind_name(JUKI_IDOU_DEATH), "death");
	assert_string_equal(juki_idou_kind_name(JUKI_IDOU_REMOVAL), "removal");
	assert_string_equal(juki_idou_kind_name(JUKI_IDOU_CODE_CHANGE), "code-change");
	assert_string_equal(juki_idou_kind_name(JUKI_IDOU_CHANGE), "change");
	assert_null(juki_idou_kind_name((enum juki_idou_kind)JUKI_IDOU_KINDS));
	for (int i = 0; i < JUKI_IDOU_KINDS; i++) {
		assert_int_equal(juki_idou_kind_find(juki_idou_kind_name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(juki_idou_kind_find("birth", &k), JUKI_EINVAL);
	assert_int_equal(juki_idou_kind_find(NULL, &k), JUKI_EINVAL);
}

/* 死亡: death, whatever was held before, dated by the reason date. */
static void
test_death(void **state)
{
	struct rec cur = base;
	struct juki_idou e;

	(void)state;
	cur.version = 2;
	cur.reason = "死亡";
	cur.date = "2026-11-20";
	assert_int_equal(derive(&base, &cur, &e), 1);
	assert_int_equal(e.kind, JUKI_IDOU_DEATH);
	assert_string_equal(e.code, CODE);
	assert_string_equal(e.date, "2026-11-20");
	assert_string_equal(e.id, "");
	assert_string_equal(e.new_code, "");
	assert_string_equal(e.items.name, "");
	/* Even with nothing held here before. */
	assert_int_equal(derive(NULL, &cur, &e), 1);
	assert_int_equal(e.kind, JUKI_IDOU_DEATH);
}

/* Every other removal of the reason list (転出, 職権消除, 国籍喪失): removal. */
static void
test_removals(void **state)
{
	size_t n;
	const struct juki_reason *all = juki_reasons(&n);
	size_t seen = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct rec cur = base;
		struct juki_idou e;

		if (all[i].kind != JUKI_CHANGE_REMOVAL || strcmp(all[i].name, "死亡") == 0) {
			continue;
		}
		cur.version = 2;
		cur.reason = all[i].name;
		assert_int_equal(derive(&base, &cur, &e), 1);
		assert_int_equal(e.kind, JUKI_IDOU_REMOVAL);
		assert_string_equal(e.new_code, "");
		seen++;
	}
	assert_int_equal(seen, 3); /* 転出, 職権消除, 国籍喪失 */
}

/* 住民票コード変更: one code-change for the old code; the new code's record gives nothing. */
static void
test_code_change(void **state)
{
	struct rec old_end = base, new_begin = base;
	struct juki_idou e;

	(void)state;
	old_end.version = 2;
	old_end.reason = "住民票コード変更";
	old_end.new_code = NEW_CODE;
	assert_int_equal(derive(&base, &old_end, &e), 1);
	assert_int_equal(e.kind, JUKI_IDOU_CODE_CHANGE);
	assert_string_equal(e.code, CODE);
	assert_string_equal(e.new_code, NEW_CODE);

	new_begin.version = 1;
	new_begin.reason = "住民票コード変更";
	new_begin.old_code = CODE;
	assert_int_equal(derive(NULL, &new_begin, &e), 0);
}

static void
expect_change(const struct rec *prev, const struct rec *cur)
{
	struct juki_idou e;

	assert_int_equal(derive(prev, cur, &e), 1);
	assert_int_equal(e.kind, JUKI_IDOU_CHANGE);
	assert_string_equal(e.code, CODE);
	assert_string_equal(e.date, cur->date);
	assert_string_equal(e.items.name, cur->name);
	assert_string_equal(e.items.birth, cur->birth);
	assert_int_equal(e.items.sex, cur->sex);
	assert_string_equal(e.items.address, cur->address);
	assert_string_equal(e.items.lgcode, cur->lgcode);
	assert_string_equal(e.items.kana, ""); /* not a basic item: never sent */
}

/* A change of each of the four basic items: change, carrying the new items. */
static void
test_change_each_item(void **state)
{
	struct rec cur;

	(void)state;
	cur = base;
	cur.version = 2;
	cur.reason = "氏名変更";
	cur.date = "2026-11-02";
	cur.name = "佐藤 花子";
	expect_change(&base, &cur);

	cur = base;
	cur.version = 2;
	cur.reason = "職権修正";
	cur.birth = "1990-04-02";
	expect_change(&base, &cur);

	cur = base;
	cur.version = 2;
	cur.reason = "職権修正";
	cur.sex = 1;
	expect_change(&base, &cur);

	cur = base;
	cur.version = 2;
	cur.reason = "転居";
	cur.address = "東京都千代田区本町2丁目2番2号";
	expect_change(&base, &cur);

	/* The address's municipality (lgcode) is part of the address. */
	cur = base;
	cur.lgcode = "131024";
	cur.version = 1;
	cur.reason = "転入";
	expect_change(&base, &cur);
}

/* 転入 elsewhere after a 転出: the new address is a change. */
static void
test_entry_after_removal(void **state)
{
	struct rec out = base, in = base;

	(void)state;
	out.version = 2;
	out.reason = "転出";
	in.lgcode = "131024";
	in.version = 1;
	in.reason = "転入";
	in.date = "2026-11-03";
	in.address = "東京都中央区1丁目";
	expect_change(&out, &in);
}

/* Kana only, or nothing of the four: nothing; an entry without a previous record: nothing. */
static void
test_nothing(void **state)
{
	struct rec cur = base;
	struct juki_idou e;

	(void)state;
	cur.version = 2;
	cur.reason = "職権修正";
	cur.kana = "ヤマダ ハナ";
	assert_int_equal(derive(&base, &cur, &e), 0);
	cur.kana = NULL;
	assert_int_equal(derive(&base, &cur, &e), 0);

	cur = base;
	cur.reason = "出生";
	assert_int_equal(derive(NULL, &cur, &e), 0);
	cur.reason = "転入";
	assert_int_equal(derive(NULL, &cur, &e), 0);
	cur.reason = "職権記載";
	assert_int_equal(derive(NULL, &cur, &e), 0);
	/* A correction of a code held nowhere here: nothing to compare, nothing sent. */
	cur.reason = "転居";
	assert_int_equal(derive(NULL, &cur, &e), 0);
}

/* What the hook of a batch sees, and the entries derived from it. */
struct seen {
	int calls;
	int entries;
	struct juki_idou last;
};

static int
on_current(void *arg, const struct juki_change *prev, const struct juki_change *cur)
{
	struct seen *s = arg;
	struct juki_idou e;

	s->calls++;
	if (juki_idou_derive(prev, cur, &e)) {
		s->entries++;
		s->last = e;
	}
	return 0;
}

static int
any_origin(const struct juki_ident *sender, const struct juki_change *c)
{
	(void)sender;
	(void)c;
	return 1;
}

static void
receive(struct juki_store *store, const struct rec *r, struct seen *s)
{
	struct juki_honnin_hook hook = {on_current, s};
	struct juki_reject rej;
	struct juki_msg msg;

	memset(&msg, 0, sizeof(msg));
	memset(&rej, 0, sizeof(rej));
	snprintf(msg.from, sizeof(msg.from), "urn:juki:pref:13");
	msg.body = json_pack("{s:[o]}", "records", rec_json(r));
	assert_int_equal(juki_store_begin(store), 0);
	assert_int_equal(juki_honnin_receive_hooked(store, &msg, INT64_C(1796000000000), any_origin,
						    NULL, NULL, &hook, &rej),
			 0);
	assert_int_equal(juki_store_commit(store), 0);
	json_decref(msg.body);
}

/*
 * Through the receiving path: the hook sees only records that become
 * current, with the record they replace; a late record (history) and a
 * duplicate are never shown, so derive nothing.
 */
static void
test_receive_hook(void **state)
{
	char dir[64], path[128], err[256];
	struct juki_store *store;
	struct seen s = {0};
	struct rec v1 = base, v2 = base, v3 = base;

	(void)state;
	assert_non_null(test_mkdtemp(dir, sizeof(dir), "idou"));
	snprintf(path, sizeof(path), "%s/h.db", dir);
	assert_int_equal(juki_store_open(path, &juki_honnin_schema, 1, &store, err, sizeof(err)),
			 0);
	v1.reason = "出生";
	receive(store, &v1, &s);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.entries, 0);

	v3.version = 3;
	v3.reason = "転居";
	v3.date = "2026-11-10";
	v3.address = "東京都千代田区本町3丁目3番3号";
	receive(store, &v3, &s);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.entries, 1);
	assert_int_equal(s.last.kind, JUKI_IDOU_CHANGE);
	assert_string_equal(s.last.items.address, v3.address);

	/* Version 2 arrives late: history, not shown. */
	v2.version = 2;
	v2.reason = "転居";
	v2.date = "2026-11-05";
	v2.address = "東京都千代田区本町2丁目2番2号";
	receive(store, &v2, &s);
	assert_int_equal(s.calls, 2);
	/* The same record again: a duplicate, not shown. */
	receive(store, &v3, &s);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.entries, 1);

	juki_store_close(store);
	assert_int_equal(test_rm_rf(dir), 0);
}

static json_t *
entry_json(const char *kind)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "id", ID, "code", CODE, "kind", kind, "date",
			      "2026-11-20");

	assert_non_null(j);
	if (strcmp(kind, "change") == 0) {
		json_object_set_new(j, "items",
				    json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", "山田 花子", "birth",
					      "1990-04-01", "sex", 2, "address", "東京都千代田区",
					      "lgcode", "131016"));
	}
	if (strcmp(kind, "code-change") == 0) {
		json_object_set_new(j, "new_code", json_string(NEW_CODE));
	}
	return j;
}

static void
test_json_round_trip(void **state)
{
	static const char *const kinds[] = {"death", "removal", "code-change", "change"};
	struct juki_field_error fe;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		json_t *j = entry_json(kinds[i]), *back;
		struct juki_idou e;

		assert_int_equal(juki_idou_from_json(j, &e, &fe), 0);
		assert_string_equal(e.id, ID);
		assert_string_equal(juki_idou_kind_name(e.kind), kinds[i]);
		back = juki_idou_to_json(&e);
		assert_true(json_equal(back, j));
		json_decref(back);
		json_decref(j);
	}
}

/* Bad entries: refused with the field named and the value never shown. */
static void
expect_refused(json_t *j, int rc, const char *field)
{
	struct juki_field_error fe;
	struct juki_idou e;

	assert_int_equal(juki_idou_from_json(j, &e, &fe), rc);
	assert_string_equal(fe.field, field);
	assert_null(strstr(fe.detail, "山田"));
	json_decref(j);
}

static void
test_json_refused(void **state)
{
	json_t *j, *other;

	(void)state;
	expect_refused(json_string("x"), JUKI_EFORMAT, "entry");
	j = entry_json("death");
	json_object_set_new(j, "name", json_string("山田 花子"));
	expect_refused(j, JUKI_EFORMAT, "entry");
	j = entry_json("death");
	json_object_set_new(j, "id", json_string("not-a-uuid"));
	expect_refused(j, JUKI_EFORMAT, "id");
	j = entry_json("death");
	json_object_del(j, "id");
	expect_refused(j, JUKI_EFORMAT, "id");
	j = entry_json("death");
	json_object_set_new(j, "code", json_string("24727059607"));
	expect_refused(j, JUKI_ECHECKDIGIT, "code");
	j = entry_json("death");
	json_object_set_new(j, "kind", json_string("birth"));
	expect_refused(j, JUKI_EFORMAT, "kind");
	j = entry_json("death");
	json_object_set_new(j, "date", json_string("2026-02-30"));
	expect_refused(j, JUKI_EFORMAT, "date");
	/* items only with change, and always with it */
	j = entry_json("death");
	other = entry_json("change");
	json_object_set(j, "items", json_object_get(other, "items"));
	json_decref(other);
	expect_refused(j, JUKI_EFORMAT, "items");
	j = entry_json("change");
	json_object_del(j, "items");
	expect_refused(j, JUKI_EFORMAT, "items");
	j = entry_json("change");
	json_object_set_new(json_object_get(j, "items"), "kana", json_string("ヤマダ"));
	expect_refused(j, JUKI_EFORMAT, "items");
	j = entry_json("change");
	json_object_set_new(json_object_get(j, "items"), "sex", json_integer(3));
	expect_refused(j, JUKI_EFORMAT, "items.sex");
	j = entry_json("change");
	json_object_set_new(json_object_get(j, "items"), "lgcode", json_string("131017"));
	expect_refused(j, JUKI_ECHECKDIGIT, "items.lgcode");
	j = entry_json("change");
	json_object_del(json_object_get(j, "items"), "address");
	expect_refused(j, JUKI_EFORMAT, "items.address");
	/* new_code only with code-change, always with it, never the code itself */
	j = entry_json("code-change");
	json_object_del(j, "new_code");
	expect_refused(j, JUKI_EFORMAT, "new_code");
	j = entry_json("removal");
	json_object_set_new(j, "new_code", json_string(NEW_CODE));
	expect_refused(j, JUKI_EFORMAT, "new_code");
	j = entry_json("code-change");
	json_object_set_new(j, "new_code", json_string(CODE));
	expect_refused(j, JUKI_EFORMAT, "new_code");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_names),       cmocka_unit_test(test_death),
	    cmocka_unit_test(test_removals),         cmocka_unit_test(test_code_change),
	    cmocka_unit_test(test_change_each_item), cmocka_unit_test(test_entry_after_removal),
	    cmocka_unit_test(test_nothing),          cmocka_unit_test(test_receive_hook),
	    cmocka_unit_test(test_json_round_trip),  cmocka_unit_test(test_json_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
