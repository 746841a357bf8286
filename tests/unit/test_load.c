/*
 * The bulk load's reader and writer (records/honnin_load.c): both formats,
 * fresh and merge, history under the precedence rule, the first bad row
 * named, the origin rule, the update counts as the network would make them,
 * and the store's file swapped with juki_store_replace().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/text.h"
#include "juki/records/honnin.h"
#include "juki/records/honnin_load.h"

#include "helpers.h"

#define NOW_MS 1796000000000LL /* 2026-11-30 */

/* 住民票コード with their check digits, and a Tokyo and a Hokkaido municipality. */
#define C1     "24727059608"
#define C2     "10000000014"
#define C3     "10000000030"
#define HEADER "code,lgcode,version,reason,reason_date,recorded,name,kana,birth,sex,address\n"

struct fx {
	char dir[64];
	char path[128];
	struct juki_store *store;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "load"));
	snprintf(f->path, sizeof(f->path), "%s/s.db", f->dir);
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

static char *
write_file(struct fx *f, const char *name, const char *text)
{
	static char path[192];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	out = fopen(path, "w");
	assert_non_null(out);
	fputs(text, out);
	fclose(out);
	return path;
}

static int64_t
one(struct juki_store *store, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(juki_store_db(store), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

/* The person is found once by the four items (name, birth, sex, address). */
static void
found_once(struct juki_store *store, const char *name, const char *birth, int sex,
	   const char *address)
{
	int more = 0;
	json_t *found = juki_honnin_find(store, name, birth, sex, address, 10, &more);

	assert_non_null(found);
	assert_int_equal(json_array_size(found), 1);
	json_decref(found);
}

static int
load(struct fx *f, enum juki_kind kind, const char *self, const char *dest, int fresh,
     const char *path, struct juki_load_error *err, struct juki_load_progress *p)
{
	struct juki_load_conf conf = {.kind = kind,
				      .self_id = self,
				      .dests = &dest,
				      .ndests = dest != NULL,
				      .now_ms = NOW_MS,
				      .fresh = fresh};
	struct juki_loader *ld;
	int rc;

	assert_int_equal(juki_store_begin(f->store), 0);
	assert_int_equal(juki_loader_new(f->store, &conf, &ld), 0);
	rc = juki_loader_file(ld, path, err);
	if (rc == 0) {
		rc = juki_loader_finish(ld, err);
	}
	if (rc == 0) {
		rc = juki_loader_flush_counts(ld, f->store);
	}
	juki_loader_progress(ld, p);
	juki_loader_free(ld);
	if (rc == 0) {
		assert_int_equal(juki_store_commit(f->store), 0);
	} else {
		juki_store_rollback(f->store);
	}
	return rc;
}

static const char rows_csv[] =
    HEADER C1 ",131016,1,出生,2020-01-01,2020-01-02T00:00:00Z,山田 太郎,,1990-05-01,1,"
	      "東京都千代田区本町1丁目1番1号\n"
    /* a quoted address, a CRLF line: both as the import reads them */
    C2 ",131016,1,転入,2021-03-01,2021-03-01T01:00:00Z,\"佐藤, 花子\",,1985-02-03,2,"
	      "\"東京都千代田区\"\"中央\"\"2丁目\"\r\n"
	      "\n" C1 ",131016,2,転居,2022-04-01,2022-04-01T00:00:00Z,山田 太郎,,1990-05-01,1,"
	      "東京都千代田区栄町3丁目2番1号\n";

static void
test_fresh_csv_with_history(void **state)
{
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	struct juki_change c;
	int64_t held;

	assert_int_equal(juki_load_empty(f->store, &held), 1);
	assert_int_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "a.csv", rows_csv), &err, &p), 0);
	assert_int_equal(p.rows, 3);
	assert_int_equal(p.duplicates, 0);
	assert_int_equal(juki_load_empty(f->store, &held), 0);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin"), 2);
	/* The newer record is current, the older one history. */
	assert_int_equal(juki_honnin_current(f->store, C1, &c), 0);
	assert_int_equal(c.version, 2);
	assert_string_equal(c.person.address, "東京都千代田区栄町3丁目2番1号");
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin_history"), 1);
	assert_int_equal(juki_honnin_current(f->store, C2, &c), 0);
	assert_string_equal(c.person.name, "佐藤, 花子");
	assert_string_equal(c.person.address, "東京都千代田区\"中央\"2丁目");
	/* Received from the prefecture of the lgcode, on the day recorded. */
	assert_int_equal(one(f->store,
			     "SELECT sender = 'urn:juki:pref:13' FROM honnin WHERE code = "
			     "'" C1 "'"),
			 1);
	assert_int_equal(one(f->store, "SELECT sum(n) FROM honnin_counts WHERE side = 0"), 3);
	/* Every index dropped for the load is back, and the keys of lookups are made. */
	assert_int_equal(one(f->store, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
				       " AND name IN ('honnin_lgcode', 'honnin_recorded',"
				       " 'honnin_removed', 'honnin_history_recorded',"
				       " 'honnin_history_superseded', 'honnin_person_new_key')"),
			 6);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin_person"), 2);
	found_once(f->store, "佐藤, 花子", "1985-02-03", 2, "東京都千代田区\"中央\"2丁目");
}

static void
test_counts_match_the_network(void **state)
{
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	struct juki_counter *k = juki_counter_new();
	struct juki_change c;
	json_t *a, *b;

	/* A prefecture: received from the CS, sent to the nation. */
	assert_int_equal(load(f, JUKI_KIND_PREF, "13", "urn:juki:jlis:0", 1,
			      write_file(f, "a.csv", rows_csv), &err, &p),
			 0);
	/* The same counts as juki_counter would have made for the same records. */
	assert_int_equal(juki_honnin_current(f->store, C2, &c), 0);
	assert_int_equal(juki_counter_add(k, JUKI_COUNT_SENT, "x", &c), 0);
	juki_counter_free(k);
	a = juki_honnin_counts_json(f->store, JUKI_COUNT_SENT, "urn:juki:jlis:0", "2021-03-01");
	b = juki_honnin_counts_json(f->store, JUKI_COUNT_RECEIVED, "urn:juki:cs:131016",
				    "2021-03-01");
	assert_int_equal(json_integer_value(json_object_get(a, "total")), 1);
	assert_string_equal(json_string_value(json_object_get(a, "digest")),
			    json_string_value(json_object_get(b, "digest")));
	json_decref(a);
	json_decref(b);
}

static void
test_bad_row_named_and_nothing_kept(void **state)
{
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	int64_t held;
	char text[2048];

	/* Line 3: a wrong check digit. */
	snprintf(text, sizeof(text),
		 "%s" C1 ",131016,1,出生,2020-01-01,,山田 太郎,,1990-05-01,1,東京都千代田区本町\n"
		 "10000000019,131016,1,出生,2020-01-01,,佐藤 花子,,1985-02-03,2,東京都千代田区\n",
		 HEADER);
	assert_int_not_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "b.csv", text), &err, &p), 0);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.field, "code");
	assert_string_equal(err.reason, "check-digit");
	assert_non_null(strstr(err.file, "b.csv"));
	assert_int_equal(juki_load_empty(f->store, &held), 1);
	/* A date after today, in JSON Lines (the export's form). */
	assert_int_not_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 0,
		 write_file(f, "c.jsonl",
			    "{\"code\":\"" C1 "\",\"lgcode\":\"131016\",\"version\":1,"
			    "\"reason\":\"出生\",\"reason_date\":\"2099-01-01\","
			    "\"recorded\":\"2026-01-01T00:00:00.000Z\",\"person\":{\"name\":\"a\","
			    "\"birth\":\"1990-01-01\",\"sex\":1,\"address\":\"b\"}}\n"),
		 &err, &p),
	    0);
	assert_int_equal(err.line, 1);
	assert_string_equal(err.field, "reason_date");
	/* A FIFO where the file was: refused at once, not waited on. */
	snprintf(text, sizeof(text), "%s/fifo.csv", f->dir);
	assert_int_equal(mkfifo(text, 0600), 0);
	assert_int_not_equal(load(f, JUKI_KIND_JLIS, NULL, NULL, 1, text, &err, &p), 0);
	assert_string_equal(err.reason, "io");
	assert_string_equal(err.detail, "not a regular file");
	/* An unknown column in the header. */
	assert_int_not_equal(load(f, JUKI_KIND_JLIS, NULL, NULL, 1,
				  write_file(f, "d.csv", "code,lgcode,colour\n"), &err, &p),
			     0);
	assert_int_equal(err.line, 1);
	assert_int_equal(juki_load_empty(f->store, &held), 1);
}

/*
 * A line longer than any row is refused when its first bytes past the
 * limit are read, never gathered whole: a file without a newline, of any
 * size, costs the daemon no more memory than a short one.  A last row
 * without its newline is loaded.
 */
static void
test_long_lines(void **state)
{
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	struct rusage before, after;
	char path[256], *chunk = malloc(1 << 20), *text;
	size_t over = 64 * 1024 + 1;
	int64_t held;
	FILE *out;

	assert_non_null(chunk);
	memset(chunk, 'x', 1 << 20);
	snprintf(path, sizeof(path), "%s/long.csv", f->dir);
	assert_non_null(out = fopen(path, "w"));
	fputs(HEADER, out);
	for (int i = 0; i < 256; i++) {
		assert_int_equal(fwrite(chunk, 1, 1 << 20, out), 1 << 20);
	}
	assert_int_equal(fclose(out), 0);
	free(chunk);
	assert_int_equal(getrusage(RUSAGE_SELF, &before), 0);
	assert_int_not_equal(load(f, JUKI_KIND_JLIS, NULL, NULL, 1, path, &err, &p), 0);
	assert_int_equal(getrusage(RUSAGE_SELF, &after), 0);
	assert_int_equal(err.line, 2);
	assert_string_equal(err.reason, JUKI_R_BAD_FIELD);
	assert_string_equal(err.detail, "line longer than 65536 bytes");
	/* 256 MiB on one line; the peak grew by less than a quarter of it (KiB). */
	assert_true(after.ru_maxrss - before.ru_maxrss < 64 * 1024);
	assert_int_equal(juki_load_empty(f->store, &held), 1);
	unlink(path);

	/* One byte over the limit, then a good row: refused at that line. */
	assert_non_null(text = malloc(sizeof(HEADER) + over + 256));
	memcpy(text, HEADER, sizeof(HEADER) - 1);
	memset(text + sizeof(HEADER) - 1, 'y', over);
	snprintf(text + sizeof(HEADER) - 1 + over, 256,
		 "\n" C1 ",131016,1,出生,2020-01-01,,山田 太郎,,1990-05-01,1,東京都千代田区\n");
	assert_int_not_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "over.csv", text), &err, &p), 0);
	free(text);
	assert_int_equal(err.line, 2);
	assert_string_equal(err.reason, JUKI_R_BAD_FIELD);
	assert_int_equal(juki_load_empty(f->store, &held), 1);

	/* The last row without its newline. */
	assert_int_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1,
		 write_file(f, "last.csv",
			    HEADER C1 ",131016,1,出生,2020-01-01,,山田 太郎,,1990-05-01,1,"
				      "東京都千代田区"),
		 &err, &p),
	    0);
	assert_int_equal(p.current, 1);
}

static void
test_origin_and_merge(void **state)
{
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;

	/* A CS loads only its own municipality's records; its lgcode may be left out. */
	assert_int_not_equal(load(f, JUKI_KIND_CS, "131024", "urn:juki:pref:13", 1,
				  write_file(f, "a.csv", rows_csv), &err, &p),
			     0);
	assert_string_equal(err.reason, "origin");
	assert_int_equal(load(f, JUKI_KIND_CS, "131016", "urn:juki:pref:13", 1,
			      write_file(f, "a.csv", rows_csv), &err, &p),
			 0);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin WHERE sender IS NULL"), 2);
	assert_int_equal(one(f->store, "SELECT sum(n) FROM honnin_counts WHERE side = 1"), 3);
	/* The same again merged: every record already held, nothing counted twice. */
	assert_int_equal(load(f, JUKI_KIND_CS, "131016", "urn:juki:pref:13", 0,
			      write_file(f, "a.csv", rows_csv), &err, &p),
			 0);
	assert_int_equal(p.duplicates, 3);
	assert_int_equal(one(f->store, "SELECT sum(n) FROM honnin_counts WHERE side = 1"), 3);
}

static void
test_store_replace(void **state)
{
	struct fx *f = *state;
	struct juki_store *other;
	char path[192], err[256];
	int64_t held;

	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	assert_int_equal(juki_store_open(path, &juki_honnin_schema, 1, &other, err, sizeof(err)),
			 0);
	assert_int_equal(juki_store_exec(other, "INSERT INTO honnin (code, lgcode, version, reason,"
						" kind, reason_date, recorded_ms, received_ms, rec)"
						" VALUES ('" C3 "', '131016', 1, '出生', 0,"
						" '2020-01-01', 0, 0, '{}')"),
			 0);
	juki_store_close(other);
	assert_int_equal(juki_load_empty(f->store, &held), 1);
	assert_int_equal(juki_store_replace(f->store, path, err, sizeof(err)), 0);
	assert_int_equal(juki_load_empty(f->store, &held), 0);
	assert_int_equal(access(path, F_OK), -1);
	/* The store goes on in WAL mode, writable. */
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin"), 1);
	assert_int_equal(juki_store_exec(f->store, "DELETE FROM honnin"), 0);
	/* A file that is not there: the store goes on with its own. */
	assert_int_not_equal(juki_store_replace(f->store, path, err, sizeof(err)), 0);
	assert_int_equal(juki_load_empty(f->store, &held), 1);
}

/*
 * The CSV reader checks rows without a JSON tree; JSON Lines in the same flat
 * form go through juki_change_from_json().  Both must name the same field,
 * reason and rule for every kind of bad row.
 */
static void
test_csv_and_json_rules_agree(void **state)
{
	static const struct {
		const char *cols[6]; /* code, lgcode, version, reason, reason_date, sex */
		const char *field;
	} bad[] = {
	    {{"1234", "131016", "1", "出生", "2020-01-01", "1"}, "code"},
	    {{"10000000019", "131016", "1", "出生", "2020-01-01", "1"}, "code"},
	    {{C1, "131017", "1", "出生", "2020-01-01", "1"}, "lgcode"},
	    {{C1, "991016", "1", "出生", "2020-01-01", "1"}, "lgcode"},
	    {{C1, "131016", "0", "出生", "2020-01-01", "1"}, "version"},
	    {{C1, "131016", "x", "出生", "2020-01-01", "1"}, "version"},
	    {{C1, "131016", "1", "引越し", "2020-01-01", "1"}, "reason"},
	    {{C1, "131016", "1", "出生", "2020-02-30", "1"}, "reason_date"},
	    {{C1, "131016", "1", "出生", "2099-01-01", "1"}, "reason_date"},
	    {{C1, "131016", "1", "出生", "2020-01-01", "3"}, "person.sex"},
	    {{C1, "131016", "1", "住民票コード変更", "2020-01-01", "1"}, "old_code"},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct juki_load_error e1, e2;
		struct juki_load_progress p;
		char csv[1024], jsonl[1024];
		const char *const *c = bad[i].cols;
		int sex = atoi(c[5]);

		snprintf(csv, sizeof(csv),
			 "code,lgcode,version,reason,reason_date,name,birth,sex,address\n"
			 "%s,%s,%s,%s,%s,山田 太郎,1990-05-01,%s,東京都千代田区\n",
			 c[0], c[1], c[2], c[3], c[4], c[5]);
		snprintf(jsonl, sizeof(jsonl),
			 "{\"code\":\"%s\",\"lgcode\":\"%s\",\"version\":%s%s%s,\"reason\":\"%s\","
			 "\"reason_date\":\"%s\",\"name\":\"山田 太郎\",\"birth\":\"1990-05-01\","
			 "\"sex\":%d,\"address\":\"東京都千代田区\"}\n",
			 c[0], c[1], c[2][0] == 'x' ? "\"" : "", c[2], c[2][0] == 'x' ? "\"" : "",
			 c[3], c[4], sex);
		assert_int_not_equal(
		    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "e.csv", csv), &e1, &p),
		    0);
		assert_int_not_equal(load(f, JUKI_KIND_JLIS, NULL, NULL, 1,
					  write_file(f, "e.jsonl", jsonl), &e2, &p),
				     0);
		assert_string_equal(e1.field, bad[i].field);
		assert_string_equal(e1.field, e2.field);
		assert_string_equal(e1.reason, e2.reason);
		assert_string_equal(e1.detail, e2.detail);
		assert_int_equal(e1.line, 2);
		assert_int_equal(e2.line, 1);
	}
}

/*
 * What a fresh load stores is the record as the network would store it: each
 * row's text, written straight into the batch's buffer, is byte for byte
 * juki_change_text() of the record read back; a removal is found through
 * the partial index on removals, kept (not rebuilt) during the load; and the
 * keys of lookups, kept in memory and sorted during the load, are the table's.
 * (test_fresh_csv_with_history takes the other way: a person twice, keys
 * from the table.)
 */
static void
test_stored_text_is_the_networks(void **state)
{
	static const char csv[] = HEADER C1
	    ",131016,1,出生,2020-01-01,2020-01-02T03:04:05.678Z,山田 太郎,ヤマダ タロウ,"
	    "1990-05-01,1,\"東京都千代田区\"\"本町\"\"1丁目\\1番\"\n" C2
	    ",131016,1,死亡,2021-03-01,,佐藤 花子,,1985-02-03,2,東京都千代田区中央2丁目\n" C3
	    ",011002,3,転入,2022-04-01,1999-12-31T23:59:59.999Z,鈴木 一郎,,1970-07-07,1,"
	    "北海道札幌市中央区北1条西2丁目\n";
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	struct juki_text both = {0};
	sqlite3_stmt *st;
	size_t rows = 0, at = 0;

	assert_int_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "t.csv", csv), &err, &p), 0);
	assert_int_equal(p.rows, 3);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->store),
					    "SELECT rec FROM honnin ORDER BY code", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *rec = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0), tlen;
		json_t *obj = json_loadb(rec, len, 0, NULL);
		struct juki_change c;
		struct juki_field_error fe;
		char *text;

		assert_non_null(obj);
		assert_int_equal(juki_change_from_json(obj, &c, &fe), 0);
		json_decref(obj);
		text = juki_change_text(&c, &tlen);
		assert_non_null(text);
		assert_int_equal(tlen, len);
		assert_memory_equal(text, rec, len);
		/* Appended after other records, the same bytes. */
		assert_int_equal(juki_change_text_append(&c, &both), 0);
		assert_int_equal(both.len - at, len);
		assert_memory_equal(both.buf + at, rec, len);
		at = both.len;
		free(text);
		rows++;
	}
	sqlite3_finalize(st);
	juki_text_free(&both);
	assert_int_equal(rows, 3);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin INDEXED BY honnin_removed"
				       " WHERE kind = 1"),
			 1);
	assert_int_equal(one(f->store, "SELECT count(*) FROM pragma_integrity_check"
				       " WHERE integrity_check = 'ok'"),
			 1);
	/*
	 * No person twice: the keys of lookups were written from memory, sorted;
	 * the same as the table's, and a lookup by the four items finds the person.
	 */
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin_person"), 3);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin h JOIN honnin_person p"
				       " ON p.code = h.code AND p.pkey = h.pkey"),
			 3);
	found_once(f->store, "鈴木 一郎", "1970-07-07", 1, "北海道札幌市中央区北1条西2丁目");
}

/*
 * More people than one statement of keys takes (KEYS_AT_ONCE, 128): every
 * key written, in full statements and one at a time for the rest, and a
 * person of each part found by the four items.
 */
static void
test_many_keys_written(void **state)
{
	enum { N = 300 };
	struct fx *f = *state;
	struct juki_load_error err;
	struct juki_load_progress p;
	size_t cap = 64 * 1024, len;
	char *csv = malloc(cap);
	static const int probe[] = {0, 127, 128, 200, 256, N - 1};

	assert_non_null(csv);
	len = (size_t)snprintf(csv, cap, "%s", HEADER);
	for (int i = 0; i < N; i++) {
		char code[12];

		/* Codes in no order: the keys are sorted before they are written. */
		snprintf(code, sizeof(code), "%010d", (i * 7919 + 13) % 1000000 + 20000000);
		code[10] = (char)juki_jumin_check_digit(code);
		code[11] = '\0';
		len += (size_t)snprintf(csv + len, cap - len,
					"%s,131016,1,出生,2020-01-01,,住民 %d,,1990-05-01,%d,"
					"東京都千代田区本町%d番\n",
					code, i, 1 + i % 2, i);
	}
	assert_int_equal(
	    load(f, JUKI_KIND_JLIS, NULL, NULL, 1, write_file(f, "k.csv", csv), &err, &p), 0);
	free(csv);
	assert_int_equal(p.current, N);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin_person"), N);
	assert_int_equal(one(f->store, "SELECT count(*) FROM honnin h JOIN honnin_person p"
				       " ON p.code = h.code AND p.pkey = h.pkey"),
			 N);
	for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++) {
		char name[32], address[64];
		int i = probe[k];

		snprintf(name, sizeof(name), "住民 %d", i);
		snprintf(address, sizeof(address), "東京都千代田区本町%d番", i);
		found_once(f->store, name, "1990-05-01", 1 + i % 2, address);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_csv_with_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counts_match_the_network, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_row_named_and_nothing_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_origin_and_merge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_csv_and_json_rules_agree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stored_text_is_the_networks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_keys_written, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
