#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/text.h"
#include "juki/records/honnin.h"
#include "juki/store/outbox.h"
#include "juki/wire/msg.h"

/*
 * The list of 異動事由 (住民基本台帳法 and its enforcement order): what enters a
 * person in the register, removes them, or corrects an item of their record.
 */
static const struct juki_reason reasons[] = {
    {"転入", "tennyu", JUKI_CHANGE_ENTRY},
    {"出生", "shussei", JUKI_CHANGE_ENTRY},
    {"職権記載", "shokken-kisai", JUKI_CHANGE_ENTRY},
    {"帰化", "kika", JUKI_CHANGE_ENTRY},
    {"国籍取得", "kokuseki-shutoku", JUKI_CHANGE_ENTRY},
    {"転出", "tenshutsu", JUKI_CHANGE_REMOVAL},
    {"死亡", "shibou", JUKI_CHANGE_REMOVAL},
    {"職権消除", "shokken-shojo", JUKI_CHANGE_REMOVAL},
    {"国籍喪失", "kokuseki-soshitsu", JUKI_CHANGE_REMOVAL},
    {"転居", "tenkyo", JUKI_CHANGE_CORRECTION},
    {"職権修正", "shokken-shusei", JUKI_CHANGE_CORRECTION},
    {"氏名変更", "shimei-henkou", JUKI_CHANGE_CORRECTION},
    {"住民票コード変更", "code-henkou", JUKI_CHANGE_CORRECTION},
};

#define NREASONS    (sizeof(reasons) / sizeof(reasons[0]))
#define CODE_CHANGE "住民票コード変更"

const struct juki_reason *
juki_reason_find(const char *name)
{
	if (name == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < NREASONS; i++) {
		if (strcmp(reasons[i].name, name) == 0 || strcmp(reasons[i].romaji, name) == 0) {
			return &reasons[i];
		}
	}
	return NULL;
}

const struct juki_reason *
juki_reasons(size_t *n)
{
	*n = NREASONS;
	return reasons;
}

const char *
juki_change_kind_name(enum juki_change_kind kind)
{
	switch (kind) {
	case JUKI_CHANGE_ENTRY:
		return "entry";
	case JUKI_CHANGE_REMOVAL:
		return "removal";
	default:
		return "correction";
	}
}

static int
fail(struct juki_field_error *fe, const char *field, int rc, const char *detail)
{
	snprintf(fe->field, sizeof(fe->field), "%s", field);
	fe->reason = rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD;
	snprintf(fe->detail, sizeof(fe->detail), "%s", detail);
	return rc;
}

int
juki_change_from_json(const json_t *obj, struct juki_change *c, struct juki_field_error *fe)
{
	static const char *const known[] = {"code",        "lgcode",   "version", "reason",
					    "reason_date", "recorded", "person",  "old_code",
					    "new_code",    NULL};
	const json_t *v, *person;
	const char *key;
	int rc;

	memset(c, 0, sizeof(*c));
	memset(fe, 0, sizeof(*fe));
	if (!json_is_object(obj)) {
		return fail(fe, "record", JUKI_EFORMAT, "must be an object");
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++) {
		}
		if (known[i] == NULL) {
			return fail(fe, "record", JUKI_EFORMAT, "unknown field");
		}
	}
	if ((rc = juki_json_code(obj, "code", 0, c->code, sizeof(c->code), fe)) != 0 ||
	    (rc = juki_json_code(obj, "lgcode", 1, c->lgcode, sizeof(c->lgcode), fe)) != 0 ||
	    (rc = juki_json_date(obj, "reason_date", c->reason_date, fe)) != 0) {
		return rc;
	}
	v = json_object_get(obj, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		return fail(fe, "version", JUKI_EFORMAT, "a positive integer");
	}
	c->version = json_integer_value(v);
	c->reason = juki_reason_find(json_string_value(json_object_get(obj, "reason")));
	if (c->reason == NULL) {
		return fail(fe, "reason", JUKI_EFORMAT, "not a 異動事由 on the list");
	}
	if (juki_clock_parse(json_string_value(json_object_get(obj, "recorded")),
			     &c->recorded_ms) != 0) {
		return fail(fe, "recorded", JUKI_EFORMAT, "an RFC 3339 UTC time");
	}
	person = json_object_get(obj, "person");
	if (!json_is_object(person) || json_object_get(person, "code") != NULL ||
	    json_object_get(person, "lgcode") != NULL) {
		return fail(fe, "person", JUKI_EFORMAT, "an object without code or lgcode");
	}
	/* The person rules apply as they do everywhere, with the record's codes. */
	rc = juki_person_fields_from_json(person, c->code, c->lgcode, &c->person, fe);
	if (rc != 0) {
		/* "person" itself (an unknown member) or one of its fields, prefixed: they fit. */
		if (strcmp(fe->field, "person") != 0) {
			memmove(fe->field + 7, fe->field, sizeof(fe->field) - 8);
			memcpy(fe->field, "person.", 7);
			fe->field[sizeof(fe->field) - 1] = '\0';
		}
		return rc;
	}
	if (strcmp(c->reason->name, CODE_CHANGE) == 0) {
		const char *which =
		    json_object_get(obj, "old_code") != NULL ? "old_code" : "new_code";
		char *dest = which[0] == 'o' ? c->old_code : c->new_code;

		if (json_object_get(obj, "old_code") != NULL &&
		    json_object_get(obj, "new_code") != NULL) {
			return fail(fe, "new_code", JUKI_EFORMAT, "not with old_code");
		}
		if (json_object_get(obj, "old_code") == NULL &&
		    json_object_get(obj, "new_code") == NULL) {
			return fail(fe, "old_code", JUKI_EFORMAT,
				    "住民票コード変更 needs old_code (new record) or new_code (old "
				    "record)");
		}
		if ((rc = juki_json_code(obj, which, 0, dest, JUKI_JUMIN_CODE_LEN + 1, fe)) != 0) {
			return rc;
		}
		if (strcmp(dest, c->code) == 0) {
			return fail(fe, which, JUKI_EFORMAT, "the same as code");
		}
	} else if (json_object_get(obj, "old_code") != NULL) {
		return fail(fe, "old_code", JUKI_EFORMAT, "only for 住民票コード変更");
	} else if (json_object_get(obj, "new_code") != NULL) {
		return fail(fe, "new_code", JUKI_EFORMAT, "only for 住民票コード変更");
	}
	c->kind = juki_change_kind_of(c);
	return 0;
}

int
juki_change_dates_check(const struct juki_change *c, int64_t now_ms, struct juki_field_error *fe)
{
	int rc;

	if ((rc = juki_date_not_future(c->reason_date, now_ms, "reason_date", fe)) != 0) {
		return rc;
	}
	return juki_date_not_future(c->person.birth, now_ms, "person.birth", fe);
}

json_t *
juki_change_to_json(const struct juki_change *c)
{
	json_t *obj, *person;
	char when[32];

	juki_clock_format(c->recorded_ms, when, sizeof(when));
	person = json_pack("{s:s,s:s?,s:s,s:i,s:s}", "name", c->person.name, "kana",
			   c->person.kana[0] ? c->person.kana : NULL, "birth", c->person.birth,
			   "sex", c->person.sex, "address", c->person.address);
	if (person == NULL) {
		return NULL;
	}
	if (c->person.kana[0] == '\0') {
		json_object_del(person, "kana");
	}
	obj = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "code", c->code, "lgcode", c->lgcode,
			"version", (json_int_t)c->version, "reason", c->reason->name, "reason_date",
			c->reason_date, "recorded", when, "person", person);
	if (obj != NULL && c->old_code[0] != '\0') {
		json_object_set_new(obj, "old_code", json_string(c->old_code));
	}
	if (obj != NULL && c->new_code[0] != '\0') {
		json_object_set_new(obj, "new_code", json_string(c->new_code));
	}
	return obj;
}

/* What precedence needs of a record, whether parsed or read from columns. */
struct order_key {
	const char *lgcode;
	int64_t version;
	int kind;
	const char *reason_date;
	int64_t recorded_ms;
};

static int
kind_rank(int kind)
{
	switch (kind) {
	case JUKI_CHANGE_REMOVAL:
		return 0;
	case JUKI_CHANGE_ENTRY:
		return 1;
	default:
		return 2;
	}
}

/* 1 when a supersedes b. */
static int
key_newer(const struct order_key *a, const struct order_key *b)
{
	int d;

	if (strcmp(a->lgcode, b->lgcode) == 0) {
		return a->version > b->version;
	}
	if ((d = strcmp(a->reason_date, b->reason_date)) != 0) {
		return d > 0;
	}
	if (kind_rank(a->kind) != kind_rank(b->kind)) {
		return kind_rank(a->kind) > kind_rank(b->kind);
	}
	if (a->recorded_ms != b->recorded_ms) {
		return a->recorded_ms > b->recorded_ms;
	}
	return strcmp(a->lgcode, b->lgcode) > 0;
}

enum juki_change_kind
juki_change_kind_of(const struct juki_change *c)
{
	if (c->new_code[0] != '\0') {
		return JUKI_CHANGE_REMOVAL;
	}
	if (c->old_code[0] != '\0') {
		return JUKI_CHANGE_ENTRY;
	}
	return c->reason->kind;
}

static struct order_key
key_of(const struct juki_change *c)
{
	struct order_key k = {c->lgcode, c->version, (int)juki_change_kind_of(c), c->reason_date,
			      c->recorded_ms};

	return k;
}

int
juki_change_newer(const struct juki_change *a, const struct juki_change *b)
{
	struct order_key ka = key_of(a), kb = key_of(b);

	return key_newer(&ka, &kb);
}

const struct juki_migration juki_honnin_steps[JUKI_HONNIN_NSTEPS] = {
    {1,
     /*
      * The current record of each person: one row per code, rewritten in
      * place.  A rowid table with a unique index rather than a table keyed by
      * code: random codes then scatter only the small index entries, not the
      * whole records (measured: 5x the insert rate at a million rows).
      */
     "CREATE TABLE honnin ("
     " id INTEGER PRIMARY KEY,"
     " code TEXT NOT NULL UNIQUE,"
     " lgcode TEXT NOT NULL,"
     " version INTEGER NOT NULL,"
     " reason TEXT NOT NULL,"
     " kind INTEGER NOT NULL,"
     " reason_date TEXT NOT NULL,"
     " recorded_ms INTEGER NOT NULL,"
     " received_ms INTEGER NOT NULL,"
     " sender TEXT,"
     " rec BLOB NOT NULL"
     ");"
     /* Removals are purged by age: only they are indexed by time. */
     "CREATE INDEX honnin_removed ON honnin(recorded_ms) WHERE kind = 1;"
     /* Older records, appended when superseded: rowid order is superseded order. */
     "CREATE TABLE honnin_history ("
     " id INTEGER PRIMARY KEY,"
     " code TEXT NOT NULL,"
     " lgcode TEXT NOT NULL,"
     " version INTEGER NOT NULL,"
     " reason TEXT NOT NULL,"
     " kind INTEGER NOT NULL,"
     " reason_date TEXT NOT NULL,"
     " recorded_ms INTEGER NOT NULL,"
     " received_ms INTEGER NOT NULL,"
     " sender TEXT,"
     " superseded_ms INTEGER NOT NULL,"
     " rec BLOB NOT NULL"
     ");"
     "CREATE INDEX honnin_history_code ON honnin_history(code);"
     "CREATE INDEX honnin_history_superseded ON honnin_history(superseded_ms);"
     /* 更新件数リスト: side 0 received (per sender), 1 sent (per destination). */
     "CREATE TABLE honnin_counts ("
     " side INTEGER NOT NULL,"
     " peer TEXT NOT NULL,"
     " day TEXT NOT NULL,"
     " reason TEXT NOT NULL,"
     " n INTEGER NOT NULL,"
     " PRIMARY KEY (side, peer, day, reason)"
     ") WITHOUT ROWID;"
     "CREATE TABLE honnin_digest ("
     " side INTEGER NOT NULL,"
     " peer TEXT NOT NULL,"
     " day TEXT NOT NULL,"
     " digest BLOB NOT NULL,"
     " PRIMARY KEY (side, peer, day)"
     ") WITHOUT ROWID;"},
    {2,
     /*
      * Lookups by the person's attributes (第4-4(7)) go through pkey,
      * juki_hash64(name, birth): the texts, sex and address are then
      * compared exactly on the current record.  The keys are kept like a
      * small log-structured index: each new key is appended to
      * honnin_person_new (small, so its index stays in cache), and every
      * JUKI_HONNIN_MERGE_AT keys are merged into honnin_person in key
      * order, touching each page of the big index once.  An index on
      * honnin(pkey) instead costs a random page per record per hop
      * (measured: a third of the end-to-end rate at a million records).
      * A key leaves both when its record is purged or its name or birth
      * date change.
      */
     "ALTER TABLE honnin ADD COLUMN pkey INTEGER;"
     "UPDATE honnin SET pkey = juki_hash64(json_extract(CAST(rec AS TEXT), '$.person.name'),"
     " json_extract(CAST(rec AS TEXT), '$.person.birth'));"
     "CREATE TABLE honnin_person ("
     " pkey INTEGER NOT NULL,"
     " code TEXT NOT NULL,"
     " PRIMARY KEY (pkey, code)"
     ") WITHOUT ROWID;"
     "INSERT INTO honnin_person SELECT pkey, code FROM honnin;"
     "CREATE TABLE honnin_person_new ("
     " id INTEGER PRIMARY KEY,"
     " pkey INTEGER NOT NULL,"
     " code TEXT NOT NULL"
     ");"
     "CREATE INDEX honnin_person_new_key ON honnin_person_new(pkey);"
     "CREATE TRIGGER honnin_person_gone AFTER DELETE ON honnin BEGIN"
     " DELETE FROM honnin_person WHERE pkey = old.pkey AND code = old.code;"
     " DELETE FROM honnin_person_new WHERE pkey = old.pkey AND code = old.code;"
     " END;"},
    {3,
     /*
      * A municipality's records (export, 第4-8(2)) without a scan of the
      * prefecture or the nation.  New rows sort last within their code, so
      * the index grows at a few hot pages, not at random.
      */
     "CREATE INDEX honnin_lgcode ON honnin(lgcode);"},
    {4,
     /*
      * The records of one day (recorded_ms), for the digests over ranges
      * of codes that narrow down a difference in the update counts, and
      * for re-sending what they find: a day is read through the index, not
      * by a scan of the whole table.  Records arrive roughly in recorded
      * order, so both indexes grow at their end.
      */
     "CREATE INDEX honnin_recorded ON honnin(recorded_ms);"
     "CREATE INDEX honnin_history_recorded ON honnin_history(recorded_ms);"},
};

const struct juki_schema juki_honnin_schema = JUKI_HONNIN_SCHEMA;

void
juki_honnin_day(int64_t recorded_ms, char day[11])
{
	juki_clock_date(recorded_ms, day, 11);
}

/* Counters: a short list of (side, peer, day) with counts per reason and a digest. */
struct count_entry {
	int side;
	char peer[JUKI_URN_MAX];
	char day[11];
	int64_t n[NREASONS];
	unsigned char digest[JUKI_DIGEST_LEN];
	struct count_entry *next;
};

struct juki_counter {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
	struct count_entry *entries;
	/* The Japan day of the last record counted: [day_from, day_to) in ms. */
	int64_t day_from, day_to;
	char day[11];
};

struct juki_counter *
juki_counter_new(void)
{
	struct juki_counter *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		return NULL;
	}
	k->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->ctx = EVP_MD_CTX_new();
	if (k->md == NULL || k->ctx == NULL) {
		juki_counter_free(k);
		return NULL;
	}
	return k;
}

void
juki_counter_reset(struct juki_counter *counter)
{
	struct count_entry *e;

	while ((e = counter->entries) != NULL) {
		counter->entries = e->next;
		free(e);
	}
}

void
juki_counter_free(struct juki_counter *counter)
{
	if (counter == NULL) {
		return;
	}
	juki_counter_reset(counter);
	EVP_MD_free(counter->md);
	EVP_MD_CTX_free(counter->ctx);
	free(counter);
}

size_t
juki_count_key(const char *code, const char *lgcode, int64_t version, char out[JUKI_COUNT_KEY_MAX])
{
	char num[24];
	size_t nc = strnlen(code, 20), nl = strnlen(lgcode, 20), nn = 0;
	uint64_t u = version < 0 ? 0 - (uint64_t)version : (uint64_t)version;

	/* "code|lgcode|version", as snprintf("%s|%s|%lld") wrote it, without its cost. */
	do {
		num[sizeof(num) - 1 - nn++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (version < 0) {
		num[sizeof(num) - 1 - nn++] = '-';
	}
	memcpy(out, code, nc);
	out[nc] = '|';
	memcpy(out + nc + 1, lgcode, nl);
	out[nc + 1 + nl] = '|';
	memcpy(out + nc + nl + 2, num + sizeof(num) - nn, nn);
	return nc + nl + 2 + nn;
}

static int
key_digest(struct juki_counter *k, const char *code, const char *lgcode, int64_t version,
	   unsigned char out[JUKI_DIGEST_LEN])
{
	char text[JUKI_COUNT_KEY_MAX];
	unsigned int len = 0;
	size_t n = juki_count_key(code, lgcode, version, text);

	if (EVP_DigestInit_ex2(k->ctx, k->md, NULL) != 1 ||
	    EVP_DigestUpdate(k->ctx, text, n) != 1 || EVP_DigestFinal_ex(k->ctx, out, &len) != 1 ||
	    len != JUKI_DIGEST_LEN) {
		return JUKI_EIO;
	}
	return 0;
}

static int
record_digest(struct juki_counter *k, const struct juki_change *c,
	      unsigned char out[JUKI_DIGEST_LEN])
{
	return key_digest(k, c->code, c->lgcode, c->version, out);
}

int
juki_counter_add(struct juki_counter *counter, enum juki_count_side side, const char *peer,
		 const struct juki_change *c)
{
	unsigned char d[JUKI_DIGEST_LEN];
	struct count_entry *e;
	char day[11];
	int rc;

	/* Records come in runs of one day: the day's text is formatted once per run. */
	if (counter->day[0] == '\0' || c->recorded_ms < counter->day_from ||
	    c->recorded_ms >= counter->day_to) {
		int64_t dn = juki_clock_today(c->recorded_ms);

		juki_honnin_day(c->recorded_ms, counter->day);
		counter->day_from = juki_clock_day_start(dn);
		counter->day_to = counter->day_from + JUKI_DAY_MS;
	}
	memcpy(day, counter->day, sizeof(day));
	for (e = counter->entries; e != NULL; e = e->next) {
		if (e->side == (int)side && strcmp(e->peer, peer) == 0 &&
		    strcmp(e->day, day) == 0) {
			break;
		}
	}
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			return JUKI_ENOMEM;
		}
		e->side = (int)side;
		snprintf(e->peer, sizeof(e->peer), "%s", peer);
		memcpy(e->day, day, sizeof(e->day));
		e->next = counter->entries;
		counter->entries = e;
	}
	if ((rc = record_digest(counter, c, d)) != 0) {
		return rc;
	}
	for (size_t i = 0; i < JUKI_DIGEST_LEN; i++) {
		e->digest[i] ^= d[i];
	}
	e->n[c->reason - reasons]++;
	return 0;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : JUKI_ESTORE;
}

int
juki_counts_store(struct juki_store *store, int side, const char *peer, const char *day,
		  const int64_t *n, const unsigned char digest[JUKI_DIGEST_LEN])
{
	static const char sql_count[] =
	    "INSERT INTO honnin_counts (side, peer, day, reason, n) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (side, peer, day, reason) DO UPDATE SET n = n + ?5";
	static const char sql_get[] =
	    "SELECT digest FROM honnin_digest WHERE side = ?1 AND peer = ?2 AND day = ?3";
	static const char sql_put[] =
	    "INSERT INTO honnin_digest (side, peer, day, digest) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (side, peer, day) DO UPDATE SET digest = ?4";
	unsigned char sum[JUKI_DIGEST_LEN];
	sqlite3_stmt *st;
	int rc;

	for (size_t r = 0; r < NREASONS; r++) {
		if (n[r] == 0) {
			continue;
		}
		if ((st = juki_store_prepare(store, sql_count)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_int(st, 1, side);
		sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, reasons[r].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, n[r]);
		if ((rc = step_done(st)) != 0) {
			return rc;
		}
	}
	memcpy(sum, digest, sizeof(sum));
	if ((st = juki_store_prepare(store, sql_get)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int(st, 1, side);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == JUKI_DIGEST_LEN) {
		const unsigned char *old = sqlite3_column_blob(st, 0);

		for (size_t i = 0; i < JUKI_DIGEST_LEN; i++) {
			sum[i] ^= old[i];
		}
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_put)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int(st, 1, side);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, sum, sizeof(sum), SQLITE_STATIC);
	return step_done(st);
}

int
juki_counter_flush(struct juki_counter *counter, struct juki_store *store)
{
	int rc;

	for (struct count_entry *e = counter->entries; e != NULL; e = e->next) {
		if ((rc = juki_counts_store(store, e->side, e->peer, e->day, e->n, e->digest)) !=
		    0) {
			return rc;
		}
	}
	juki_counter_reset(counter);
	return 0;
}

json_t *
juki_honnin_counts_json(struct juki_store *store, enum juki_count_side side, const char *peer,
			const char *day)
{
	static const char sql_n[] =
	    "SELECT reason, n FROM honnin_counts WHERE side = ?1 AND peer = ?2 AND day = ?3"
	    " ORDER BY reason";
	static const char sql_d[] =
	    "SELECT digest FROM honnin_digest WHERE side = ?1 AND peer = ?2 AND day = ?3";
	json_t *by = json_object();
	json_int_t total = 0;
	char hex[2 * JUKI_DIGEST_LEN + 1];
	sqlite3_stmt *st;

	memset(hex, '0', 2 * JUKI_DIGEST_LEN);
	hex[2 * JUKI_DIGEST_LEN] = '\0';
	if (by == NULL || (st = juki_store_prepare(store, sql_n)) == NULL) {
		json_decref(by);
		return NULL;
	}
	sqlite3_bind_int(st, 1, (int)side);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object_set_new(by, (const char *)sqlite3_column_text(st, 0),
				    json_integer(sqlite3_column_int64(st, 1)));
		total += sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_d)) == NULL) {
		json_decref(by);
		return NULL;
	}
	sqlite3_bind_int(st, 1, (int)side);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == JUKI_DIGEST_LEN) {
		const unsigned char *d = sqlite3_column_blob(st, 0);

		juki_hex_encode(d, JUKI_DIGEST_LEN, hex);
	}
	sqlite3_reset(st);
	return json_pack("{s:s,s:s,s:I,s:o,s:s}", "day", day, "peer", peer, "total", total,
			 "by_reason", by, "digest", hex);
}

/* The current row of code as an order key; strings live in buf. */
struct held {
	int found;
	char lgcode[JUKI_LGCODE_LEN + 1];
	int64_t version;
	int kind;
	char reason[32];
	char reason_date[11];
	int64_t recorded_ms, received_ms;
	char sender[JUKI_URN_MAX];
	void *rec;
	int rec_len;
	int64_t pkey; /* juki_hash64(name, birth) */
};

static void
copy_text(sqlite3_stmt *st, int col, char *out, size_t len)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(out, len, "%s", v ? (const char *)v : "");
}

static int
held_get(struct juki_store *store, const char *code, struct held *h)
{
	static const char sql[] = "SELECT lgcode, version, kind, reason, reason_date, recorded_ms, "
				  "received_ms, sender, rec, pkey"
				  " FROM honnin WHERE code = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	memset(h, 0, sizeof(*h));
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		h->found = 1;
		copy_text(st, 0, h->lgcode, sizeof(h->lgcode));
		h->version = sqlite3_column_int64(st, 1);
		h->kind = sqlite3_column_int(st, 2);
		copy_text(st, 3, h->reason, sizeof(h->reason));
		copy_text(st, 4, h->reason_date, sizeof(h->reason_date));
		h->recorded_ms = sqlite3_column_int64(st, 5);
		h->received_ms = sqlite3_column_int64(st, 6);
		copy_text(st, 7, h->sender, sizeof(h->sender));
		h->rec_len = sqlite3_column_bytes(st, 8);
		h->rec = malloc((size_t)h->rec_len + 1);
		if (h->rec == NULL) {
			sqlite3_reset(st);
			return JUKI_ENOMEM;
		}
		memcpy(h->rec, sqlite3_column_blob(st, 8), (size_t)h->rec_len);
		h->pkey = sqlite3_column_int64(st, 9);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
in_history(struct juki_store *store, const struct juki_change *c, int *found)
{
	static const char sql[] = "SELECT 1 FROM honnin_history WHERE code = ?1 AND lgcode = ?2"
				  " AND version = ?3 LIMIT 1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, c->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->lgcode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, c->version);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* ?1 to ?9 of the record tables' columns: code, lgcode, ... sender (NULL: the node's own). */
static void
bind_held(sqlite3_stmt *st, const char *code, const struct held *h)
{
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, h->lgcode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, h->version);
	sqlite3_bind_text(st, 4, h->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, h->kind);
	sqlite3_bind_text(st, 6, h->reason_date, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, h->recorded_ms);
	sqlite3_bind_int64(st, 8, h->received_ms);
	if (h->sender[0] != '\0') {
		sqlite3_bind_text(st, 9, h->sender, -1, SQLITE_STATIC);
	}
}

static int
history_put_held(struct juki_store *store, const char *code, const struct held *h,
		 int64_t superseded_ms)
{
	static const char sql[] =
	    "INSERT INTO honnin_history (code, lgcode, version, reason, kind, reason_date,"
	    " recorded_ms, received_ms, sender, superseded_ms, rec)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	bind_held(st, code, h);
	sqlite3_bind_int64(st, 10, superseded_ms);
	sqlite3_bind_blob(st, 11, h->rec, h->rec_len, SQLITE_STATIC);
	return step_done(st);
}

/*
 * juki_hash64(name, birth): the first 8 bytes of SHA-256 over each text and
 * its NUL, with a digest context kept per thread instead of one made and
 * fetched per call (measured: 4% of a receiver's CPU per record).  The
 * context is a thread's key, freed when the thread ends (the bulk load's
 * writer thread ends; a thread-local pointer would leak it).
 */
struct key_digest_ctx {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

static pthread_key_t key_ctx_key;
static pthread_once_t key_ctx_once = PTHREAD_ONCE_INIT;
static int key_ctx_ok;

static void
key_ctx_free(void *p)
{
	struct key_digest_ctx *k = p;

	EVP_MD_CTX_free(k->ctx);
	EVP_MD_free(k->md);
	free(k);
}

static void
key_ctx_init(void)
{
	key_ctx_ok = pthread_key_create(&key_ctx_key, key_ctx_free) == 0;
}

static struct key_digest_ctx *
key_ctx(void)
{
	struct key_digest_ctx *k;

	if (pthread_once(&key_ctx_once, key_ctx_init) != 0 || !key_ctx_ok) {
		return NULL;
	}
	if ((k = pthread_getspecific(key_ctx_key)) != NULL) {
		return k;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		return NULL;
	}
	if ((k->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (k->ctx = EVP_MD_CTX_new()) == NULL || pthread_setspecific(key_ctx_key, k) != 0) {
		key_ctx_free(k);
		return NULL;
	}
	return k;
}

static int64_t
person_key(const char *name, const char *birth)
{
	struct key_digest_ctx *k = key_ctx();
	EVP_MD_CTX *ctx = k != NULL ? k->ctx : NULL;
	EVP_MD *md = k != NULL ? k->md : NULL;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t v = 0;

	if (k == NULL) {
		goto slow;
	}
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, name, strlen(name) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, birth, strlen(birth) + 1) != 1 ||
	    EVP_DigestFinal_ex(ctx, d, &len) != 1 || len < 8) {
		goto slow;
	}
	for (int i = 0; i < 8; i++) {
		v = v << 8 | d[i];
	}
	return (int64_t)v;
slow : {
	const char *parts[] = {name, birth};

	return juki_hash64(parts, 2);
}
}

static int
person_exec(struct juki_store *store, const char *sql, int64_t pkey, const char *code)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, pkey);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	return step_done(st);
}

int
juki_honnin_merge_keys(struct juki_store *store)
{
	/*
	 * Row by row through one prepared statement: a single INSERT ... SELECT
	 * inside the caller's transaction may keep a statement journal of every
	 * page it changes, in memory (temp_store), until it ends.
	 */
	static const char keys_sql[] =
	    "SELECT pkey, code FROM honnin_person_new ORDER BY pkey, code";
	sqlite3_stmt *keys = juki_store_prepare(store, keys_sql);
	int rc;

	if (keys == NULL) {
		return JUKI_ESTORE;
	}
	while ((rc = sqlite3_step(keys)) == SQLITE_ROW) {
		if (person_exec(store,
				"INSERT OR IGNORE INTO honnin_person (pkey, code) VALUES (?1, ?2)",
				sqlite3_column_int64(keys, 0),
				(const char *)sqlite3_column_text(keys, 1)) != 0) {
			break;
		}
	}
	sqlite3_reset(keys);
	if (rc != SQLITE_DONE || juki_store_exec(store, "DELETE FROM honnin_person_new") != 0) {
		return JUKI_ESTORE;
	}
	return 0;
}

/* A record's key, new or changed: appended, and merged every JUKI_HONNIN_MERGE_AT. */
static int
person_note(struct juki_store *store, int64_t pkey, const char *code)
{
	if (person_exec(store, "INSERT INTO honnin_person_new (pkey, code) VALUES (?1, ?2)", pkey,
			code) != 0) {
		return JUKI_ESTORE;
	}
	/* The table is emptied at each merge, so its rowid counts the keys since. */
	if (sqlite3_last_insert_rowid(juki_store_db(store)) >= JUKI_HONNIN_MERGE_AT) {
		return juki_honnin_merge_keys(store);
	}
	return 0;
}

/* A key that no longer leads to code's current record. */
static int
person_forget(struct juki_store *store, int64_t pkey, const char *code)
{
	if (person_exec(store, "DELETE FROM honnin_person WHERE pkey = ?1 AND code = ?2", pkey,
			code) != 0 ||
	    person_exec(store, "DELETE FROM honnin_person_new WHERE pkey = ?1 AND code = ?2", pkey,
			code) != 0) {
		return JUKI_ESTORE;
	}
	return 0;
}

/* A string of at most size - 1 bytes into out (sizes of struct held: they fit). */
static void
copy_str(char *out, const char *s, size_t size)
{
	size_t n = strnlen(s, size - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

/*
 * c as a held row, its serialised form text (len bytes) as rec, borrowed:
 * held_of() rows are only bound, never freed.
 */
static int
held_of(const struct juki_change *c, const char *text, size_t len, const char *sender,
	int64_t now_ms, struct held *h)
{
	h->found = 1;
	copy_str(h->lgcode, c->lgcode, sizeof(h->lgcode));
	h->version = c->version;
	h->kind = (int)juki_change_kind_of(c);
	copy_str(h->reason, c->reason->name, sizeof(h->reason));
	copy_str(h->reason_date, c->reason_date, sizeof(h->reason_date));
	h->recorded_ms = c->recorded_ms;
	h->received_ms = now_ms;
	copy_str(h->sender, sender ? sender : "", sizeof(h->sender));
	h->rec = (void *)(uintptr_t)text;
	h->rec_len = (int)len;
	h->pkey = person_key(c->person.name, c->person.birth);
	return 0;
}

/* Insert h as the current record of a code held nowhere yet; *fresh 0 when it was held. */
static int
current_insert(struct juki_store *store, const char *code, const struct held *h, int *fresh)
{
	static const char sql[] =
	    "INSERT INTO honnin (code, lgcode, version, reason, kind, reason_date, recorded_ms,"
	    " received_ms, sender, rec, pkey) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	    " ON CONFLICT (code) DO NOTHING";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	bind_held(st, code, h);
	sqlite3_bind_blob(st, 10, h->rec, h->rec_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, h->pkey);
	rc = sqlite3_step(st);
	*fresh = rc == SQLITE_DONE && sqlite3_changes(sqlite3_db_handle(st)) == 1;
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
current_put(struct juki_store *store, const char *code, const struct held *h)
{
	static const char sql[] =
	    "INSERT INTO honnin (code, lgcode, version, reason, kind, reason_date, recorded_ms,"
	    " received_ms, sender, rec, pkey) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	    " ON CONFLICT (code) DO UPDATE SET lgcode = ?2, version = ?3, reason = ?4, kind = ?5,"
	    " reason_date = ?6, recorded_ms = ?7, received_ms = ?8, sender = ?9, rec = ?10,"
	    " pkey = ?11";
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	bind_held(st, code, h);
	sqlite3_bind_blob(st, 10, h->rec, h->rec_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, h->pkey);
	return step_done(st);
}

int
juki_honnin_apply(struct juki_store *store, const struct juki_change *c, const char *sender,
		  int64_t now_ms, struct juki_counter *counter, enum juki_apply_outcome *outcome)
{
	size_t len;
	char *text = juki_change_text(c, &len);
	int rc = text == NULL ? JUKI_ENOMEM
			      : juki_honnin_apply_text(store, c, text, len, sender, now_ms, counter,
						       outcome);

	free(text);
	return rc;
}

/*
 * As juki_honnin_apply_text(); when replaced is not NULL and c becomes
 * current in place of a record held, *replaced takes that record's text
 * (malloc'd, NUL-terminated; else NULL).
 */
static int
apply_text(struct juki_store *store, const struct juki_change *c, const char *rec, size_t len,
	   const char *sender, int64_t now_ms, struct juki_counter *counter,
	   enum juki_apply_outcome *outcome, char **replaced)
{
	struct held cur, in;
	int rc, dup = 0, fresh;

	memset(&in, 0, sizeof(in));
	memset(&cur, 0, sizeof(cur));
	if (replaced != NULL) {
		*replaced = NULL;
	}
	if ((rc = held_of(c, rec, len, sender, now_ms, &in)) != 0) {
		goto out;
	}
	/* Most records are of someone new here: try that first, one index probe. */
	if ((rc = current_insert(store, c->code, &in, &fresh)) != 0) {
		goto out;
	}
	if (fresh) {
		rc = person_note(store, in.pkey, c->code);
		*outcome = JUKI_APPLIED_CURRENT;
		goto counted;
	}
	if ((rc = held_get(store, c->code, &cur)) != 0) {
		goto out;
	}
	if (cur.found && strcmp(cur.lgcode, c->lgcode) == 0 && cur.version == c->version) {
		*outcome = JUKI_APPLIED_DUPLICATE;
		goto out;
	}
	if (cur.found && (rc = in_history(store, c, &dup)) != 0) {
		goto out;
	}
	if (dup) {
		*outcome = JUKI_APPLIED_DUPLICATE;
		goto out;
	}
	if (cur.found) {
		struct order_key kc = key_of(c);
		struct order_key kh = {cur.lgcode, cur.version, cur.kind, cur.reason_date,
				       cur.recorded_ms};

		if (!key_newer(&kc, &kh)) {
			/* A late or repeated record never overwrites a newer one. */
			rc = history_put_held(store, c->code, &in, now_ms);
			*outcome = JUKI_APPLIED_HISTORY;
			goto counted;
		}
		if ((rc = history_put_held(store, c->code, &cur, now_ms)) != 0) {
			goto out;
		}
	}
	rc = current_put(store, c->code, &in);
	if (rc == 0 && cur.found && cur.pkey != in.pkey) {
		rc = person_forget(store, cur.pkey, c->code);
	}
	if (rc == 0 && (!cur.found || cur.pkey != in.pkey)) {
		rc = person_note(store, in.pkey, c->code);
	}
	*outcome = JUKI_APPLIED_CURRENT;
	if (rc == 0 && replaced != NULL && cur.found) {
		((char *)cur.rec)[cur.rec_len] = '\0';
		*replaced = cur.rec;
		cur.rec = NULL;
	}
counted:
	if (rc == 0 && counter != NULL && sender != NULL) {
		rc = juki_counter_add(counter, JUKI_COUNT_RECEIVED, sender, c);
	}
out:
	free(cur.rec);
	return rc;
}

int
juki_honnin_apply_text(struct juki_store *store, const struct juki_change *c, const char *rec,
		       size_t len, const char *sender, int64_t now_ms, struct juki_counter *counter,
		       enum juki_apply_outcome *outcome)
{
	return apply_text(store, c, rec, len, sender, now_ms, counter, outcome, NULL);
}

int
juki_honnin_holders(struct juki_store *store, const char *code,
		    char (*lgcodes)[JUKI_LGCODE_LEN + 1], size_t max, size_t *n)
{
	static const char sql[] =
	    "SELECT lgcode, kind, max(version) FROM ("
	    " SELECT lgcode, version, kind FROM honnin WHERE code = ?1"
	    " UNION ALL"
	    " SELECT lgcode, version, kind FROM honnin_history WHERE code = ?1)"
	    " GROUP BY lgcode ORDER BY lgcode";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	*n = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int(st, 1) == JUKI_CHANGE_REMOVAL) {
			continue;
		}
		if (*n < max) {
			copy_text(st, 0, lgcodes[*n], JUKI_LGCODE_LEN + 1);
		}
		(*n)++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_honnin_superseded(struct juki_store *store, const char *code, int *any)
{
	static const char sql[] = "SELECT 1 FROM honnin_history WHERE code = ?1 LIMIT 1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	*any = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*any = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_honnin_current(struct juki_store *store, const char *code, struct juki_change *c)
{
	struct juki_field_error fe;
	struct held h;
	json_t *obj;
	int rc;

	if ((rc = held_get(store, code, &h)) != 0) {
		return rc;
	}
	if (!h.found) {
		return JUKI_ENOTFOUND;
	}
	obj = json_loadb(h.rec, (size_t)h.rec_len, 0, NULL);
	free(h.rec);
	rc = juki_change_from_json(obj, c, &fe);
	json_decref(obj);
	return rc == 0 ? 0 : JUKI_EFORMAT;
}

static int
append_rows(sqlite3_stmt *st, json_t *out, int current)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *rec = json_loadb(sqlite3_column_blob(st, 0),
					 (size_t)sqlite3_column_bytes(st, 0), 0, NULL);
		char when[32];

		if (rec == NULL) {
			continue;
		}
		json_object_set_new(rec, "current", json_boolean(current));
		juki_clock_format(sqlite3_column_int64(st, 1), when, sizeof(when));
		json_object_set_new(rec, "received", json_string(when));
		if (sqlite3_column_type(st, 2) == SQLITE_TEXT) {
			json_object_set_new(rec, "sender",
					    json_string((const char *)sqlite3_column_text(st, 2)));
		}
		json_array_append_new(out, rec);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

json_t *
juki_honnin_find(struct juki_store *store, const char *name, const char *birth, int sex,
		 const char *address, size_t max, int *more)
{
	static const char sql[] = "SELECT rec, received_ms, sender FROM honnin WHERE code IN"
				  " (SELECT code FROM honnin_person WHERE pkey = ?6"
				  " UNION ALL SELECT code FROM honnin_person_new WHERE pkey = ?6)"
				  " AND json_extract(CAST(rec AS TEXT), '$.person.name') = ?1"
				  " AND json_extract(CAST(rec AS TEXT), '$.person.birth') = ?2"
				  " AND json_extract(CAST(rec AS TEXT), '$.person.sex') = ?3"
				  " AND json_extract(CAST(rec AS TEXT), '$.person.address') = ?4"
				  " ORDER BY code LIMIT ?5";
	json_t *out = json_array();
	sqlite3_stmt *st;

	*more = 0;
	if (out == NULL || (st = juki_store_prepare(store, sql)) == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, birth, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, sex);
	sqlite3_bind_text(st, 4, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)max + 1);
	sqlite3_bind_int64(st, 6, person_key(name, birth));
	if (append_rows(st, out, 1) != 0) {
		json_decref(out);
		return NULL;
	}
	if (json_array_size(out) > max) {
		*more = 1;
		json_array_remove(out, max);
	}
	return out;
}

json_t *
juki_honnin_history_json(struct juki_store *store, const char *code)
{
	static const char sql_cur[] = "SELECT rec, received_ms, sender FROM honnin WHERE code = ?1";
	static const char sql_hist[] =
	    "SELECT rec, received_ms, sender FROM honnin_history WHERE code = ?1 ORDER BY id DESC";
	json_t *out = json_array();
	sqlite3_stmt *st;

	if (out == NULL || (st = juki_store_prepare(store, sql_cur)) == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	if (append_rows(st, out, 1) != 0 || (st = juki_store_prepare(store, sql_hist)) == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	if (append_rows(st, out, 0) != 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int
juki_change_text_append(const struct juki_change *c, struct juki_text *out)
{
	struct juki_text t = *out;
	char when[32];
	int rc;

	juki_clock_format(c->recorded_ms, when, sizeof(when));
	rc = juki_text_lit(&t, "{\"code\":");
	rc = rc ? rc : juki_text_str(&t, c->code);
	rc = rc ? rc : juki_text_lit(&t, ",\"lgcode\":");
	rc = rc ? rc : juki_text_str(&t, c->lgcode);
	rc = rc ? rc : juki_text_lit(&t, ",\"version\":");
	rc = rc ? rc : juki_text_int(&t, c->version);
	rc = rc ? rc : juki_text_lit(&t, ",\"reason\":");
	rc = rc ? rc : juki_text_str(&t, c->reason->name);
	rc = rc ? rc : juki_text_lit(&t, ",\"reason_date\":");
	rc = rc ? rc : juki_text_str(&t, c->reason_date);
	rc = rc ? rc : juki_text_lit(&t, ",\"recorded\":");
	rc = rc ? rc : juki_text_str(&t, when);
	rc = rc ? rc : juki_text_lit(&t, ",\"person\":{\"name\":");
	rc = rc ? rc : juki_text_str(&t, c->person.name);
	if (c->person.kana[0] != '\0') {
		rc = rc ? rc : juki_text_lit(&t, ",\"kana\":");
		rc = rc ? rc : juki_text_str(&t, c->person.kana);
	}
	rc = rc ? rc : juki_text_lit(&t, ",\"birth\":");
	rc = rc ? rc : juki_text_str(&t, c->person.birth);
	rc = rc ? rc : juki_text_lit(&t, ",\"sex\":");
	rc = rc ? rc : juki_text_int(&t, c->person.sex);
	rc = rc ? rc : juki_text_lit(&t, ",\"address\":");
	rc = rc ? rc : juki_text_str(&t, c->person.address);
	rc = rc ? rc : juki_text_lit(&t, "}");
	if (c->old_code[0] != '\0') {
		rc = rc ? rc : juki_text_lit(&t, ",\"old_code\":");
		rc = rc ? rc : juki_text_str(&t, c->old_code);
	}
	if (c->new_code[0] != '\0') {
		rc = rc ? rc : juki_text_lit(&t, ",\"new_code\":");
		rc = rc ? rc : juki_text_str(&t, c->new_code);
	}
	rc = rc ? rc : juki_text_lit(&t, "}");
	/* The buffer may have moved; on a failure the text is cut back to where it was. */
	out->buf = t.buf;
	out->cap = t.cap;
	if (rc == 0) {
		out->len = t.len;
	} else if (out->buf != NULL) {
		out->buf[out->len] = '\0';
	}
	return rc;
}

char *
juki_change_text(const struct juki_change *c, size_t *len)
{
	struct juki_text t = {0};

	if (juki_change_text_append(c, &t) != 0) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

/*
 * The batcher keeps the open message's body as text, {"records":[...]}:
 * records come as text already (the form kept in the store), so a batch of
 * thousands is never built as a JSON tree nor serialised again.
 */
struct juki_batcher {
	struct juki_store *store;
	char self[JUKI_URN_MAX];
	char dest[JUKI_BATCHER_DESTS][JUKI_URN_MAX];
	size_t ndests;
	size_t max_records, max_bytes;
	const struct juki_clock *clock;
	struct juki_text body;
	size_t count;
	size_t messages;
};

struct juki_batcher *
juki_batcher_new(struct juki_store *store, const char *self, const char *dest, size_t max_records,
		 size_t max_bytes, const struct juki_clock *clock)
{
	struct juki_batcher *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		return NULL;
	}
	b->store = store;
	snprintf(b->self, sizeof(b->self), "%s", self);
	snprintf(b->dest[0], sizeof(b->dest[0]), "%s", dest);
	b->ndests = 1;
	b->max_records = max_records ? max_records : 1;
	b->max_bytes = max_bytes;
	b->clock = clock;
	return b;
}

int
juki_batcher_add_dest(struct juki_batcher *b, const char *dest)
{
	for (size_t i = 0; i < b->ndests; i++) {
		if (strcmp(b->dest[i], dest) == 0) {
			return 0;
		}
	}
	if (b->ndests == JUKI_BATCHER_DESTS) {
		return JUKI_EINVAL;
	}
	snprintf(b->dest[b->ndests], sizeof(b->dest[0]), "%s", dest);
	b->ndests++;
	return 0;
}

size_t
juki_batcher_ndests(const struct juki_batcher *b)
{
	return b->ndests;
}

const char *
juki_batcher_dest(const struct juki_batcher *b, size_t i)
{
	return i < b->ndests ? b->dest[i] : NULL;
}

int
juki_batcher_flush(struct juki_batcher *b)
{
	struct juki_msg msg;
	int rc = 0;

	if (b->count == 0) {
		return 0;
	}
	if ((rc = juki_text_lit(&b->body, "]}")) != 0) {
		return rc;
	}
	/* One message per destination, each with its own id: each acknowledges on its own. */
	for (size_t i = 0; i < b->ndests && rc == 0; i++) {
		rc = juki_msg_init(&msg, JUKI_MSG_HONNIN_BATCH, b->self, b->dest[i], NULL,
				   json_object(), b->clock);
		if (rc != 0) {
			break;
		}
		rc = juki_outbox_put_body(b->store, &msg, b->body.buf, b->body.len, "honnin",
					  juki_clock_now_ms(b->clock), NULL);
		juki_msg_clear(&msg);
	}
	b->body.len = 0;
	b->count = 0;
	if (rc == 0) {
		b->messages++;
	}
	return rc;
}

int
juki_batcher_add_text(struct juki_batcher *b, const char *record, size_t len)
{
	int rc;

	/*
	 * The body's room at once, from the first record's size, instead of a
	 * buffer doubled (and copied) a dozen times up to 1.5 MB per batch.
	 */
	if (b->body.cap == 0 && b->max_records > 1) {
		size_t want = len < (SIZE_MAX - 1024) / b->max_records ? len * b->max_records + 1024
								       : b->max_bytes;

		if (b->max_bytes > 0 && want > b->max_bytes) {
			want = b->max_bytes;
		}
		if (want > 1024 && (b->body.buf = malloc(want)) != NULL) {
			b->body.cap = want;
		}
	}
	/* Room for the envelope: the header and the brackets, well under 1 KiB. */
	if (b->count > 0 &&
	    (b->count >= b->max_records || b->body.len + len + 1024 > b->max_bytes)) {
		if ((rc = juki_batcher_flush(b)) != 0) {
			return rc;
		}
	}
	rc = juki_text_lit(&b->body, b->count == 0 ? "{\"records\":[" : ",");
	if (rc == 0) {
		rc = juki_text_put(&b->body, record, len);
	}
	if (rc == 0) {
		b->count++;
	}
	return rc;
}

int
juki_batcher_add_json(struct juki_batcher *b, json_t *record)
{
	char *text = json_dumps(record, JSON_COMPACT);
	int rc;

	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_batcher_add_text(b, text, strlen(text));
	free(text);
	return rc;
}

int
juki_batcher_add(struct juki_batcher *b, const struct juki_change *c)
{
	size_t len;
	char *text = juki_change_text(c, &len);
	int rc;

	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_batcher_add_text(b, text, len);
	free(text);
	return rc;
}

size_t
juki_batcher_messages(const struct juki_batcher *b)
{
	return b->messages;
}

void
juki_batcher_free(struct juki_batcher *b)
{
	if (b == NULL) {
		return;
	}
	free(b->body.buf);
	free(b);
}

int
juki_honnin_receive(struct juki_store *store, const struct juki_msg *msg, int64_t now_ms,
		    int (*origin)(const struct juki_ident *sender, const struct juki_change *c),
		    struct juki_batcher *forward, const char *forward_dest, struct juki_reject *rej)
{
	return juki_honnin_receive_hooked(store, msg, now_ms, origin, forward, forward_dest, NULL,
					  rej);
}

/* Show c, now current in place of the record whose text is replaced (NULL: none), to hook. */
static int
hook_current(const struct juki_honnin_hook *hook, const char *replaced, const struct juki_change *c)
{
	struct juki_field_error fe;
	struct juki_change prev;
	json_t *obj;
	int rc;

	if (replaced == NULL) {
		return hook->current(hook->arg, NULL, c);
	}
	obj = json_loads(replaced, 0, NULL);
	rc = obj == NULL ? JUKI_EFORMAT : juki_change_from_json(obj, &prev, &fe);
	json_decref(obj);
	if (rc != 0) {
		/* A record held that no longer reads: compare with nothing rather than fail. */
		return hook->current(hook->arg, NULL, c);
	}
	return hook->current(hook->arg, &prev, c);
}

/*
 * A honnin.batch body read from its text (msg->body_text), without a JSON
 * tree: the frame reader vouched for it as strict JSON (juki_frame_split()),
 * so here it is only cut into its records.  Each record in the canonical
 * form juki_change_text() writes (the form every juki node sends) is read
 * in place, checked by the same rules as juki_change_from_json(), and kept
 * and forwarded as the very bytes that came.  Anything else (another key
 * order, whitespace, escapes, a reason in romaji) goes the way of a tree,
 * record by record, or for the whole body when it is not {"records":[...]}
 * as written by a batcher: the same checks, the same refusals.
 */
struct span {
	size_t off, len;
};

/* The closing quote of the string whose contents start at p. */
static const char *
string_end(const char *p, const char *end)
{
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		size_t bs = 0;

		if (q == NULL) {
			return NULL;
		}
		while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\') {
			bs++;
		}
		if (bs % 2 == 0) {
			return q;
		}
		p = q + 1;
	}
}

/* The end of the object or array at p (valid JSON), or NULL. */
static const char *
value_end(const char *p, const char *end)
{
	int depth = 0;

	for (; p < end; p++) {
		switch (*p) {
		case '"':
			if ((p = string_end(p + 1, end)) == NULL) {
				return NULL;
			}
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0) {
				return p + 1;
			}
			break;
		default:
			break;
		}
	}
	return NULL;
}

/*
 * The records of a body written as {"records":[{...},...]} (no whitespace):
 * malloc'd spans, *n > 0 of them; NULL for any other form (or no memory:
 * the tree's way then decides).
 */
static struct span *
body_records(const char *body, size_t len, size_t *n)
{
	static const char head[] = "{\"records\":[";
	const char *p = body + sizeof(head) - 1, *end = body + len - 2;
	struct span *out = NULL, *grown;
	size_t cap = 0;

	*n = 0;
	if (len < sizeof(head) - 1 + 2 || memcmp(body, head, sizeof(head) - 1) != 0 ||
	    memcmp(end, "]}", 2) != 0) {
		return NULL;
	}
	while (p < end) {
		const char *q = *p == '{' ? value_end(p, end) : NULL;

		if (q == NULL) {
			goto fail;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 1024;
			if ((grown = realloc(out, cap * sizeof(*out))) == NULL) {
				goto fail;
			}
			out = grown;
		}
		out[*n].off = (size_t)(p - body);
		out[(*n)++].len = (size_t)(q - p);
		p = q;
		if (p < end && (*p != ',' || ++p == end)) {
			goto fail;
		}
	}
	if (*n > 0) {
		return out;
	}
fail:
	free(out);
	*n = 0;
	return NULL;
}

struct canon {
	const char *p, *end;
};

static int
canon_lit(struct canon *k, const char *lit, size_t n)
{
	if ((size_t)(k->end - k->p) < n || memcmp(k->p, lit, n) != 0) {
		return 0;
	}
	k->p += n;
	return 1;
}

#define LIT(k, s) canon_lit(k, s, sizeof(s) - 1)

/* A string without escapes into out (size bytes with its NUL). */
static int
canon_str(struct canon *k, char *out, size_t size)
{
	const char *q;
	size_t n;

	if (k->p >= k->end || *k->p != '"' ||
	    (q = memchr(k->p + 1, '"', (size_t)(k->end - k->p - 1))) == NULL) {
		return 0;
	}
	n = (size_t)(q - k->p - 1);
	if (n >= size) {
		return 0;
	}
	/* No escape (left to the tree's way) and no control character (not JSON). */
	for (size_t i = 1; i <= n; i++) {
		if ((unsigned char)k->p[i] < 0x20 || k->p[i] == '\\') {
			return 0;
		}
	}
	memcpy(out, k->p + 1, n);
	out[n] = '\0';
	k->p = q + 1;
	return 1;
}

/* A positive integer as %lld writes it, of at most 18 digits. */
static int
canon_int(struct canon *k, int64_t *v)
{
	int64_t x = 0;
	int n = 0;

	if (k->p >= k->end || *k->p < '1' || *k->p > '9') {
		return 0;
	}
	while (k->p < k->end && *k->p >= '0' && *k->p <= '9') {
		if (n == 18) {
			return 0; /* a 19th digit could overflow */
		}
		x = x * 10 + (*k->p++ - '0');
		n++;
	}
	*v = x;
	return 1;
}

static int
text_ok(const char *s, size_t max)
{
	char detail[96];

	return juki_text_valid(s, max, detail, sizeof(detail)) == 0;
}

/*
 * Whether recorded (which juki_clock_parse() read as c->recorded_ms) is as
 * juki_clock_format() writes it: YYYY-MM-DDTHH:MM:SS.mmmZ, no leap second
 * (read as :59.999).  Without formatting it again when it is plainly so.
 */
static int
recorded_canon(const char *recorded, const struct juki_change *c)
{
	char when[32];

	if (strlen(recorded) == 24 && recorded[19] == '.' && recorded[23] == 'Z' &&
	    recorded[20] >= '0' && recorded[20] <= '9' && recorded[21] >= '0' &&
	    recorded[21] <= '9' && recorded[22] >= '0' && recorded[22] <= '9' &&
	    memcmp(recorded + 17, "60", 2) != 0 && strncmp(recorded, "1970", 4) >= 0) {
		return 1;
	}
	return juki_clock_format(c->recorded_ms, when, sizeof(when)) == 0 &&
	       strcmp(when, recorded) == 0;
}

/*
 * juki_change_from_text() (records/honnin.h): c from rec in place when rec
 * is exactly juki_change_text(c) and c passes every rule of
 * juki_change_from_json().
 */
int
juki_change_from_text(const char *rec, size_t len, struct juki_change *c)
{
	struct canon k = {rec, rec + len};
	char reason[64], recorded[32];
	int kana, old_code, new_code;

	memset(c, 0, sizeof(*c));
	if (!LIT(&k, "{\"code\":") || !canon_str(&k, c->code, sizeof(c->code)) ||
	    !LIT(&k, ",\"lgcode\":") || !canon_str(&k, c->lgcode, sizeof(c->lgcode)) ||
	    !LIT(&k, ",\"version\":") || !canon_int(&k, &c->version) || !LIT(&k, ",\"reason\":") ||
	    !canon_str(&k, reason, sizeof(reason)) || !LIT(&k, ",\"reason_date\":") ||
	    !canon_str(&k, c->reason_date, sizeof(c->reason_date)) || !LIT(&k, ",\"recorded\":") ||
	    !canon_str(&k, recorded, sizeof(recorded)) || !LIT(&k, ",\"person\":{\"name\":") ||
	    !canon_str(&k, c->person.name, sizeof(c->person.name))) {
		return JUKI_EFORMAT;
	}
	if ((kana = LIT(&k, ",\"kana\":")) &&
	    !canon_str(&k, c->person.kana, sizeof(c->person.kana))) {
		return JUKI_EFORMAT;
	}
	if (!LIT(&k, ",\"birth\":") || !canon_str(&k, c->person.birth, sizeof(c->person.birth)) ||
	    !LIT(&k, ",\"sex\":") || k.p >= k.end || (*k.p != '1' && *k.p != '2')) {
		return JUKI_EFORMAT;
	}
	c->person.sex = *k.p++ - '0';
	if (!LIT(&k, ",\"address\":") ||
	    !canon_str(&k, c->person.address, sizeof(c->person.address)) || !LIT(&k, "}")) {
		return JUKI_EFORMAT;
	}
	if ((old_code = LIT(&k, ",\"old_code\":")) &&
	    !canon_str(&k, c->old_code, sizeof(c->old_code))) {
		return JUKI_EFORMAT;
	}
	if ((new_code = LIT(&k, ",\"new_code\":")) &&
	    !canon_str(&k, c->new_code, sizeof(c->new_code))) {
		return JUKI_EFORMAT;
	}
	if (!LIT(&k, "}") || k.p != k.end) {
		return JUKI_EFORMAT;
	}
	/* The rules of juki_change_from_json() and juki_person_fields_from_json(). */
	c->reason = juki_reason_find(reason);
	if (juki_jumin_code_check(c->code) != 0 || juki_lgcode_check(c->lgcode) != 0 ||
	    !juki_date_valid(c->reason_date) || c->reason == NULL ||
	    strcmp(c->reason->name, reason) != 0 ||
	    juki_clock_parse(recorded, &c->recorded_ms) != 0 || !recorded_canon(recorded, c) ||
	    !text_ok(c->person.name, JUKI_NAME_MAX) ||
	    (kana && !text_ok(c->person.kana, JUKI_NAME_MAX)) ||
	    !text_ok(c->person.address, JUKI_ADDRESS_MAX) || !juki_date_valid(c->person.birth)) {
		return JUKI_EFORMAT;
	}
	memcpy(c->person.code, c->code, sizeof(c->code));
	memcpy(c->person.lgcode, c->lgcode, sizeof(c->lgcode));
	if (strcmp(c->reason->name, CODE_CHANGE) == 0) {
		const char *dest = old_code ? c->old_code : c->new_code;

		if (old_code == new_code || juki_jumin_code_check(dest) != 0 ||
		    strcmp(dest, c->code) == 0) {
			return JUKI_EFORMAT;
		}
	} else if (old_code || new_code) {
		return JUKI_EFORMAT;
	}
	c->kind = juki_change_kind_of(c);
	return 0;
}

#undef LIT

/* What receiving a batch needs for each of its records. */
struct receiving {
	struct juki_store *store;
	const struct juki_msg *msg;
	int64_t now_ms;
	int (*origin)(const struct juki_ident *sender, const struct juki_change *c);
	struct juki_ident sender;
	struct juki_batcher *forward;
	const char *forward_dest;
	const struct juki_honnin_hook *hook;
	struct juki_counter *counter;
	struct juki_reject *rej;
	char today[11]; /* the Japan day of now_ms */
};

/* Record i of the batch, read as c, its canonical text len bytes at text. */
static int
receive_one(struct receiving *r, size_t i, const struct juki_change *c, const char *text,
	    size_t len)
{
	struct juki_field_error fe;
	enum juki_apply_outcome outcome;
	char *replaced = NULL;
	int rc;

	if (!r->origin(&r->sender, c)) {
		return juki_reject_set(r->rej, JUKI_R_BAD_FIELD,
				       "records[%zu].lgcode: not a record the sender may send", i);
	}
	/*
	 * A date after today would keep the record current for good
	 * (precedence).  Both YYYY-MM-DD (checked as read): their order is the
	 * text's; juki_change_dates_check() words a refusal.
	 */
	if ((strcmp(c->reason_date, r->today) > 0 || strcmp(c->person.birth, r->today) > 0) &&
	    juki_change_dates_check(c, r->now_ms, &fe) != 0) {
		return juki_reject_set(r->rej, fe.reason, "records[%zu].%s: %s", i, fe.field,
				       fe.detail);
	}
	rc = apply_text(r->store, c, text, len, r->msg->from, r->now_ms, r->counter, &outcome,
			r->hook != NULL ? &replaced : NULL);
	if (rc == 0 && r->hook != NULL && outcome == JUKI_APPLIED_CURRENT) {
		rc = hook_current(r->hook, replaced, c);
	}
	free(replaced);
	if (rc == 0 && r->forward != NULL && outcome != JUKI_APPLIED_DUPLICATE) {
		rc = juki_batcher_add_text(r->forward, text, len);
		/* Counted as sent to each destination (each national centre). */
		for (size_t d = 0; rc == 0 && d < juki_batcher_ndests(r->forward); d++) {
			rc = juki_counter_add(r->counter, JUKI_COUNT_SENT,
					      r->forward_dest != NULL && d == 0
						  ? r->forward_dest
						  : juki_batcher_dest(r->forward, d),
					      c);
		}
	}
	return rc;
}

/*
 * Record i from its tree: kept and passed on in the canonical form, written
 * once (for a record a juki CS made, byte for byte what came).
 */
static int
receive_tree(struct receiving *r, size_t i, const json_t *record)
{
	struct juki_field_error fe;
	struct juki_change c;
	size_t len;
	char *text;
	int rc;

	if (juki_change_from_json(record, &c, &fe) != 0) {
		return juki_reject_set(r->rej, fe.reason, "records[%zu].%s: %s", i, fe.field,
				       fe.detail);
	}
	if ((text = juki_change_text(&c, &len)) == NULL) {
		return JUKI_ENOMEM;
	}
	rc = receive_one(r, i, &c, text, len);
	free(text);
	return rc;
}

static int
receive_records(struct receiving *r, const json_t *records)
{
	const json_t *record;
	size_t i;
	int rc = 0;

	if (!json_is_array(records) || json_array_size(records) == 0) {
		return juki_reject_set(r->rej, JUKI_R_BAD_FIELD, "records: a non-empty list");
	}
	json_array_foreach(records, i, record)
	{
		if ((rc = receive_tree(r, i, record)) != 0) {
			break;
		}
	}
	return rc;
}

/* The body's text: record by record in place; a record not in canonical form as a tree. */
static int
receive_text(struct receiving *r)
{
	const char *body = r->msg->body_text;
	struct span *spans;
	json_t *tree;
	size_t n;
	int rc = 0;

	if ((spans = body_records(body, r->msg->body_len, &n)) == NULL) {
		tree = json_loadb(body, r->msg->body_len, JSON_REJECT_DUPLICATES, NULL);
		rc = tree == NULL ? JUKI_EJSON
				  : receive_records(r, json_object_get(tree, "records"));
		json_decref(tree);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *rec = body + spans[i].off;
		struct juki_change c;

		if (juki_change_from_text(rec, spans[i].len, &c) == 0) {
			rc = receive_one(r, i, &c, rec, spans[i].len);
			continue;
		}
		tree = json_loadb(rec, spans[i].len, JSON_REJECT_DUPLICATES, NULL);
		rc = tree == NULL ? JUKI_EJSON : receive_tree(r, i, tree);
		json_decref(tree);
	}
	free(spans);
	return rc;
}

int
juki_honnin_receive_hooked(struct juki_store *store, const struct juki_msg *msg, int64_t now_ms,
			   int (*origin)(const struct juki_ident *sender,
					 const struct juki_change *c),
			   struct juki_batcher *forward, const char *forward_dest,
			   const struct juki_honnin_hook *hook, struct juki_reject *rej)
{
	struct receiving r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.store = store;
	r.msg = msg;
	r.now_ms = now_ms;
	r.origin = origin;
	r.forward = forward;
	r.forward_dest = forward_dest;
	r.hook = hook;
	r.rej = rej;

	if (msg->body_text == NULL) {
		const json_t *records = json_object_get(msg->body, "records");

		if (!json_is_array(records) || json_array_size(records) == 0) {
			return juki_reject_set(rej, JUKI_R_BAD_FIELD, "records: a non-empty list");
		}
	}
	if (juki_ident_parse(msg->from, &r.sender) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_HEADER, "from: not an identity");
	}
	if (juki_clock_date(now_ms, r.today, sizeof(r.today)) != 0) {
		/* No day to compare with: every record takes the full check. */
		r.today[0] = '\0';
	}
	if ((r.counter = juki_counter_new()) == NULL) {
		return JUKI_ENOMEM;
	}
	rc = msg->body_text != NULL ? receive_text(&r)
				    : receive_records(&r, json_object_get(msg->body, "records"));
	if (rc == 0 && forward != NULL) {
		rc = juki_batcher_flush(forward);
	}
	if (rc == 0) {
		rc = juki_counter_flush(r.counter, store);
	}
	juki_counter_free(r.counter);
	return rc;
}

int
juki_honnin_batch_codes(const struct juki_msg *msg, int (*fn)(void *arg, const char *code),
			void *arg)
{
	static const char lead[] = "{\"code\":\"";
	const json_t *records = json_object_get(msg->body, "records"), *record;
	json_t *tree = NULL;
	struct span *spans;
	size_t n, i;
	int rc = 0;

	if (msg->body_text != NULL &&
	    (spans = body_records(msg->body_text, msg->body_len, &n)) != NULL) {
		for (i = 0; i < n && rc == 0; i++) {
			const char *rec = msg->body_text + spans[i].off;
			char code[JUKI_JUMIN_CODE_LEN + 1];
			const char *s;

			if (spans[i].len > sizeof(lead) + JUKI_JUMIN_CODE_LEN &&
			    memcmp(rec, lead, sizeof(lead) - 1) == 0 &&
			    rec[sizeof(lead) - 1 + JUKI_JUMIN_CODE_LEN] == '"') {
				memcpy(code, rec + sizeof(lead) - 1, JUKI_JUMIN_CODE_LEN);
				code[JUKI_JUMIN_CODE_LEN] = '\0';
				rc = fn(arg, code);
				continue;
			}
			tree = json_loadb(rec, spans[i].len, JSON_REJECT_DUPLICATES, NULL);
			s = json_string_value(json_object_get(tree, "code"));
			rc = s != NULL ? fn(arg, s) : 0;
			json_decref(tree);
			tree = NULL;
		}
		free(spans);
		return rc;
	}
	if (msg->body_text != NULL) {
		tree = json_loadb(msg->body_text, msg->body_len, JSON_REJECT_DUPLICATES, NULL);
		records = json_object_get(tree, "records");
	}
	json_array_foreach(records, i, record)
	{
		const char *s = json_string_value(json_object_get(record, "code"));

		if (s != NULL && (rc = fn(arg, s)) != 0) {
			break;
		}
	}
	json_decref(tree);
	return rc;
}

/* One range of codes being digested: its bounds, and the count and XOR digest so far. */
struct range {
	char from[JUKI_JUMIN_CODE_LEN + 1], to[JUKI_JUMIN_CODE_LEN + 1];
	json_int_t count;
	unsigned char digest[JUKI_DIGEST_LEN];
};

static int
code_text(const json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != JUKI_JUMIN_CODE_LEN) {
		return 0;
	}
	for (size_t i = 0; i < JUKI_JUMIN_CODE_LEN; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
	}
	return 1;
}

int
juki_honnin_ranges_check(const json_t *ranges, char *why, size_t len)
{
	const char *prev = NULL;
	size_t i;
	json_t *r;

	if (!json_is_array(ranges) || json_array_size(ranges) == 0 ||
	    json_array_size(ranges) > JUKI_HONNIN_RANGES_MAX) {
		snprintf(why, len, "ranges: a list of 1 to %d ranges", JUKI_HONNIN_RANGES_MAX);
		return JUKI_EINVAL;
	}
	json_array_foreach(ranges, i, r)
	{
		const json_t *from = json_object_get(r, "from"), *to = json_object_get(r, "to");

		if (!code_text(from) || !code_text(to)) {
			snprintf(why, len, "ranges[%zu]: from and to, 11 digits each", i);
			return JUKI_EINVAL;
		}
		if (strcmp(json_string_value(from), json_string_value(to)) > 0 ||
		    (prev != NULL && strcmp(prev, json_string_value(from)) >= 0)) {
			snprintf(
			    why, len,
			    "ranges[%zu]: from <= to, after the range before it without overlap",
			    i);
			return JUKI_EINVAL;
		}
		prev = json_string_value(to);
	}
	return 0;
}

/* ranges (checked) as an array of struct range, counts and digests zero. */
static struct range *
ranges_of(const json_t *ranges, size_t *n)
{
	struct range *out;
	size_t i;
	json_t *r;

	*n = json_array_size(ranges);
	if ((out = calloc(*n, sizeof(*out))) == NULL) {
		return NULL;
	}
	json_array_foreach(ranges, i, r)
	{
		snprintf(out[i].from, sizeof(out[i].from), "%s",
			 json_string_value(json_object_get(r, "from")));
		snprintf(out[i].to, sizeof(out[i].to), "%s",
			 json_string_value(json_object_get(r, "to")));
	}
	return out;
}

/* The range that holds code, or NULL: a binary search of the sorted, disjoint ranges. */
static struct range *
range_find(struct range *rs, size_t n, const char *code)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(rs[mid].from, code) <= 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	/* lo: the first range starting after code; the one before may hold it. */
	if (lo == 0 || strcmp(code, rs[lo - 1].to) > 0) {
		return NULL;
	}
	return &rs[lo - 1];
}

/*
 * Every record (current and history) recorded on day whose code falls in
 * one of rs, from sender (NULL: from anyone, the node's own included),
 * through the day indexes: fn(arg, range, code, lgcode, version, rec, len)
 * for each; rec only when with_rec.
 */
static int
day_scan(struct juki_store *store, const char *day, const char *sender, struct range *rs, size_t n,
	 int with_rec,
	 int (*fn)(void *arg, struct range *r, const char *code, const char *lgcode,
		   int64_t version, const void *rec, size_t len),
	 void *arg)
{
#define DAY_SCAN_SQL(REC)                                                                          \
	"SELECT code, lgcode, version, " REC " FROM honnin INDEXED BY honnin_recorded"             \
	" WHERE recorded_ms >= ?1 AND recorded_ms < ?2 AND code >= ?3 AND code <= ?4"              \
	" AND (?5 IS NULL OR sender = ?5)"                                                         \
	" UNION ALL SELECT code, lgcode, version, " REC " FROM honnin_history"                     \
	" INDEXED BY honnin_history_recorded"                                                      \
	" WHERE recorded_ms >= ?1 AND recorded_ms < ?2 AND code >= ?3 AND code <= ?4"              \
	" AND (?5 IS NULL OR sender = ?5)"
	static const char sql_keys[] = DAY_SCAN_SQL("NULL");
	static const char sql_recs[] = DAY_SCAN_SQL("rec");
#undef DAY_SCAN_SQL
	sqlite3_stmt *st;
	int64_t start;
	int rc = 0, step;

	if (n == 0) {
		return 0;
	}
	if (juki_clock_parse_day(day, &start) != 0) {
		return JUKI_EINVAL;
	}
	start = juki_clock_midnight(start); /* 00:00 UTC is 09:00 in Japan, the same day */
	if ((st = juki_store_prepare(store, with_rec ? sql_recs : sql_keys)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, start);
	sqlite3_bind_int64(st, 2, start + JUKI_DAY_MS);
	sqlite3_bind_text(st, 3, rs[0].from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rs[n - 1].to, -1, SQLITE_STATIC);
	if (sender != NULL) {
		sqlite3_bind_text(st, 5, sender, -1, SQLITE_STATIC);
	}
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *code = (const char *)sqlite3_column_text(st, 0);
		struct range *r = range_find(rs, n, code);

		if (r == NULL) {
			continue;
		}
		rc = fn(arg, r, code, (const char *)sqlite3_column_text(st, 1),
			sqlite3_column_int64(st, 2), with_rec ? sqlite3_column_blob(st, 3) : NULL,
			with_rec ? (size_t)sqlite3_column_bytes(st, 3) : 0);
	}
	if (rc == 0 && step != SQLITE_DONE) {
		rc = JUKI_ESTORE;
	}
	sqlite3_reset(st);
	return rc;
}

static int
digest_one(void *arg, struct range *r, const char *code, const char *lgcode, int64_t version,
	   const void *rec, size_t len)
{
	unsigned char d[JUKI_DIGEST_LEN];
	int rc;

	(void)rec;
	(void)len;
	if ((rc = key_digest(arg, code, lgcode, version, d)) != 0) {
		return rc;
	}
	for (size_t i = 0; i < JUKI_DIGEST_LEN; i++) {
		r->digest[i] ^= d[i];
	}
	r->count++;
	return 0;
}

json_t *
juki_honnin_range_digests(struct juki_store *store, const char *sender, const char *day,
			  const json_t *ranges)
{
	struct juki_counter *k = NULL;
	struct range *rs = NULL;
	json_t *out = NULL;
	char why[128];
	size_t n;

	if (juki_honnin_ranges_check(ranges, why, sizeof(why)) != 0 ||
	    (rs = ranges_of(ranges, &n)) == NULL || (k = juki_counter_new()) == NULL ||
	    day_scan(store, day, sender, rs, n, 0, digest_one, k) != 0 ||
	    (out = json_array()) == NULL) {
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char hex[2 * JUKI_DIGEST_LEN + 1];

		for (size_t j = 0; j < JUKI_DIGEST_LEN; j++) {
			snprintf(hex + 2 * j, 3, "%02x", rs[i].digest[j]);
		}
		if (json_array_append_new(out, json_pack("{s:s,s:s,s:I,s:s}", "from", rs[i].from,
							 "to", rs[i].to, "count", rs[i].count,
							 "digest", hex)) != 0) {
			json_decref(out);
			out = NULL;
			break;
		}
	}
out:
	juki_counter_free(k);
	free(rs);
	return out;
}

struct resend {
	struct juki_batcher *b;
	size_t count;
};

static int
resend_one(void *arg, struct range *r, const char *code, const char *lgcode, int64_t version,
	   const void *rec, size_t len)
{
	struct resend *s = arg;

	(void)r;
	(void)code;
	(void)lgcode;
	(void)version;
	s->count++;
	return juki_batcher_add_text(s->b, rec, len);
}

int
juki_honnin_resend_ranges(struct juki_store *store, const char *day, const json_t *ranges,
			  struct juki_batcher *b, size_t *count)
{
	struct resend s = {b, 0};
	struct range *rs;
	char why[128];
	size_t n;
	int rc;

	*count = 0;
	if (juki_honnin_ranges_check(ranges, why, sizeof(why)) != 0) {
		return JUKI_EINVAL;
	}
	if ((rs = ranges_of(ranges, &n)) == NULL) {
		return JUKI_ENOMEM;
	}
	rc = day_scan(store, day, NULL, rs, n, 1, resend_one, &s);
	free(rs);
	*count = s.count;
	return rc;
}

int
juki_honnin_answer_counts(struct juki_store *store, const struct juki_msg *msg,
			  struct juki_reject *rej)
{
	const char *day = json_string_value(json_object_get(msg->body, "day"));
	const json_t *ranges;
	char why[128];

	if (day == NULL || !juki_date_valid(day)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "day: a date YYYY-MM-DD");
	}
	ranges = json_object_get(msg->body, "ranges");
	if (ranges != NULL && juki_honnin_ranges_check(ranges, why, sizeof(why)) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s", why);
	}
	rej->result = juki_honnin_counts_json(store, JUKI_COUNT_RECEIVED, msg->from, day);
	if (rej->result != NULL && ranges != NULL) {
		json_t *digests = juki_honnin_range_digests(store, msg->from, day, ranges);

		if (digests == NULL || json_object_set_new(rej->result, "ranges", digests) != 0) {
			json_decref(rej->result);
			rej->result = NULL;
		}
	}
	return rej->result != NULL ? 0 : JUKI_ESTORE;
}
