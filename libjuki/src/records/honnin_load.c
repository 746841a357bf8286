/*
 * juki — the bulk load of identity information: honnin_load.h.
 */
#include "juki/records/honnin_load.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/lines.h"
#include "juki/base/text.h"
#include "juki/wire/msg.h"

#define LOAD_LINE_MAX (64 * 1024) /* longer than any valid row (docs/import.md) */
#define MAX_COLS      16
#define MAX_INDEXES   16
/*
 * A fresh load keeps the keys of lookups by attributes (pkey, code: 16
 * bytes a row) in memory, sorts them in the reading thread while the last
 * rows are stored, and writes honnin_person from them in key order: no
 * scan of the table and no sort by SQLite afterwards.  Beyond this many
 * rows (128 MiB of keys) it falls back to the scan and sort.
 */
#define KEYS_MAX (8 * 1024 * 1024)
/* The page cache while the indexes are built, and so each sorter's memory: 64 MiB. */
#define INDEX_CACHE_PRAGMA "PRAGMA cache_size = -65536"

struct person_key {
	int64_t pkey;
	int64_t code; /* the 11 digits as a number: the same order as the text */
};

/* One (side, peer, day) of the update counts, in an open-addressed table. */
struct day_count {
	int used;
	int side;
	char peer[JUKI_URN_MAX];
	char day[11];
	int64_t *n; /* per reason, juki_reasons() order */
	unsigned char digest[JUKI_DIGEST_LEN];
};

struct juki_loader {
	struct juki_store *store;
	struct juki_load_conf conf;
	char self_id[JUKI_ID_MAX];
	char dest[JUKI_LOAD_DESTS][JUKI_URN_MAX];
	size_t ndests;
	char recorded_now[40];
	struct juki_load_progress p;
	char *indexes[MAX_INDEXES]; /* fresh: the CREATE INDEX statements dropped */
	size_t nindexes;
	struct day_count *days;
	size_t ndays, cap;
	const struct juki_reason *reasons;
	size_t nreasons;
	EVP_MD *md;
	char last_sender[JUKI_URN_MAX];     /* the sender URN of last_lg (cached) */
	char pref_sender[48][JUKI_URN_MAX]; /* at the national server: by prefecture, "" unmade */
	char last_lg[JUKI_LGCODE_LEN + 1];
	char last_recorded[40]; /* the last recorded text read, and its time */
	int64_t last_recorded_ms;
	struct juki_change scratch; /* the reader's change being checked */
	struct person_key *keys;    /* fresh: every row's, NULL once keys_off */
	size_t nkeys, keycap;
	int keys_off;      /* the keys are made from the table instead (too many, or a history) */
	int64_t day_jst;   /* the JST day number of day_text (count()) */
	char day_text[11]; /* "" until the first count */
};

static const char *const flat_cols[] = {"code",     "reason", "reason_date", "name",    "kana",
					"birth",    "sex",    "address",     "version", "old_code",
					"new_code", "lgcode", "recorded",    NULL};

static void set_err(struct juki_load_error *err, const char *file, int64_t line, const char *field,
		    const char *reason, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
set_err(struct juki_load_error *err, const char *file, int64_t line, const char *field,
	const char *reason, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL) {
		return;
	}
	memset(err, 0, sizeof(*err));
	snprintf(err->file, sizeof(err->file), "%s", file != NULL ? file : "");
	err->line = line;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	snprintf(err->reason, sizeof(err->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

/* A field's fault, as person.c's field_fail() words it. */
static int
flat_fail(struct juki_field_error *fe, const char *field, int rc, const char *detail)
{
	snprintf(fe->field, sizeof(fe->field), "%s", field);
	fe->reason = rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD;
	snprintf(fe->detail, sizeof(fe->detail), "%s", detail);
	return rc;
}

static void
add(int64_t *v, int64_t d)
{
	__atomic_add_fetch(v, d, __ATOMIC_RELAXED);
}

static int
save_and_drop_indexes(struct juki_loader *ld)
{
	/*
	 * Partial indexes stay: they take only the few rows they name (removals),
	 * while building one afterwards is a scan of the whole table.
	 */
	static const char sql[] =
	    "SELECT m.name, m.sql FROM sqlite_master m WHERE m.type = 'index'"
	    " AND m.sql IS NOT NULL"
	    " AND m.tbl_name IN ('honnin', 'honnin_history', 'honnin_person_new')"
	    " AND m.name <> 'honnin_history_code' AND NOT EXISTS (SELECT 1 FROM"
	    " pragma_index_list(m.tbl_name) l WHERE l.name = m.name AND l.partial)"
	    " ORDER BY m.name";
	sqlite3 *db = juki_store_db(ld->store);
	sqlite3_stmt *st;
	char *names[MAX_INDEXES];
	size_t n = 0;
	int rc = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		return JUKI_ESTORE;
	}
	while (sqlite3_step(st) == SQLITE_ROW && n < MAX_INDEXES) {
		names[n] = strdup((const char *)sqlite3_column_text(st, 0));
		ld->indexes[n] = strdup((const char *)sqlite3_column_text(st, 1));
		if (names[n] == NULL || ld->indexes[n] == NULL) {
			free(names[n]);
			free(ld->indexes[n]);
			rc = JUKI_ENOMEM;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	ld->nindexes = n;
	for (size_t i = 0; i < n; i++) {
		char drop[160];

		snprintf(drop, sizeof(drop), "DROP INDEX \"%s\"", names[i]);
		if (rc == 0 && juki_store_exec(ld->store, drop) != 0) {
			rc = JUKI_ESTORE;
		}
		free(names[i]);
	}
	return rc;
}

int
juki_loader_new(struct juki_store *store, const struct juki_load_conf *conf,
		struct juki_loader **out)
{
	struct juki_loader *ld;
	int rc;

	*out = NULL;
	if (store == NULL || conf == NULL ||
	    (conf->kind != JUKI_KIND_CS && conf->kind != JUKI_KIND_PREF &&
	     conf->kind != JUKI_KIND_JLIS) ||
	    (conf->kind != JUKI_KIND_JLIS && conf->self_id == NULL)) {
		return JUKI_EINVAL;
	}
	if ((ld = calloc(1, sizeof(*ld))) == NULL) {
		return JUKI_ENOMEM;
	}
	ld->store = store;
	ld->conf = *conf;
	snprintf(ld->self_id, sizeof(ld->self_id), "%s", conf->self_id ? conf->self_id : "");
	for (size_t i = 0; i < conf->ndests && i < JUKI_LOAD_DESTS; i++) {
		snprintf(ld->dest[i], sizeof(ld->dest[i]), "%s", conf->dests[i]);
		ld->ndests++;
	}
	ld->conf.self_id = ld->self_id;
	ld->conf.dests = NULL;
	juki_clock_format(conf->now_ms, ld->recorded_now, sizeof(ld->recorded_now));
	ld->reasons = juki_reasons(&ld->nreasons);
	ld->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	ld->cap = 256;
	ld->days = calloc(ld->cap, sizeof(*ld->days));
	if (ld->md == NULL || ld->days == NULL) {
		juki_loader_free(ld);
		return JUKI_ENOMEM;
	}
	if (conf->fresh && (rc = save_and_drop_indexes(ld)) != 0) {
		juki_loader_free(ld);
		return rc;
	}
	*out = ld;
	return 0;
}

void
juki_loader_free(struct juki_loader *ld)
{
	if (ld == NULL) {
		return;
	}
	for (size_t i = 0; i < ld->nindexes; i++) {
		free(ld->indexes[i]);
	}
	for (size_t i = 0; i < ld->cap; i++) {
		free(ld->days[i].n);
	}
	free(ld->days);
	free(ld->keys);
	EVP_MD_free(ld->md);
	free(ld);
}

void
juki_loader_expect(struct juki_loader *ld, int64_t bytes)
{
	add(&ld->p.bytes_total, bytes);
}

void
juki_loader_progress(const struct juki_loader *ld, struct juki_load_progress *p)
{
	const int64_t *src = (const int64_t *)&ld->p;
	int64_t *dst = (int64_t *)p;

	for (size_t i = 0; i < sizeof(*p) / sizeof(int64_t); i++) {
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
}

size_t
juki_loader_days(const struct juki_loader *ld)
{
	return ld->ndays;
}

/* The counts: FNV-1a over (side, peer, day). */
static uint64_t
day_hash(int side, const char *peer, const char *day)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)side;

	for (const char *s = peer; *s; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	for (const char *s = day; *s; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	return h;
}

static struct day_count *
day_slot(struct day_count *tab, size_t cap, int side, const char *peer, const char *day)
{
	size_t i = (size_t)day_hash(side, peer, day) & (cap - 1);

	while (tab[i].used && (tab[i].side != side || strcmp(tab[i].peer, peer) != 0 ||
			       strcmp(tab[i].day, day) != 0)) {
		i = (i + 1) & (cap - 1);
	}
	return &tab[i];
}

static int
day_grow(struct juki_loader *ld)
{
	size_t cap = ld->cap * 2;
	struct day_count *tab = calloc(cap, sizeof(*tab));

	if (tab == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < ld->cap; i++) {
		if (ld->days[i].used) {
			*day_slot(tab, cap, ld->days[i].side, ld->days[i].peer, ld->days[i].day) =
			    ld->days[i];
		}
	}
	free(ld->days);
	ld->days = tab;
	ld->cap = cap;
	return 0;
}

static int
count(struct juki_loader *ld, int side, const char *peer, int64_t recorded_ms,
      const struct juki_reason *reason, const unsigned char *digest)
{
	struct day_count *e;
	const char *day = ld->day_text;
	int64_t jst = recorded_ms <= INT64_MAX - JUKI_JST_OFFSET_MS
			  ? (recorded_ms + JUKI_JST_OFFSET_MS) / JUKI_DAY_MS -
				((recorded_ms + JUKI_JST_OFFSET_MS) % JUKI_DAY_MS < 0)
			  : INT64_MAX;

	/* The day's text only when the JST day changes: a load's rows share a few days. */
	if (ld->day_text[0] == '\0' || jst != ld->day_jst || jst == INT64_MAX) {
		juki_honnin_day(recorded_ms, ld->day_text);
		ld->day_jst = jst;
	}
	e = day_slot(ld->days, ld->cap, side, peer, day);
	if (!e->used) {
		if (ld->ndays + 1 > ld->cap / 2) {
			if (day_grow(ld) != 0) {
				return JUKI_ENOMEM;
			}
			e = day_slot(ld->days, ld->cap, side, peer, day);
		}
		if ((e->n = calloc(ld->nreasons, sizeof(int64_t))) == NULL) {
			return JUKI_ENOMEM;
		}
		e->used = 1;
		e->side = side;
		snprintf(e->peer, sizeof(e->peer), "%s", peer);
		memcpy(e->day, day, sizeof(e->day));
		ld->ndays++;
	}
	for (size_t i = 0; i < JUKI_DIGEST_LEN; i++) {
		e->digest[i] ^= digest[i];
	}
	e->n[reason - ld->reasons]++;
	return 0;
}

int
juki_loader_flush_counts(struct juki_loader *ld, struct juki_store *store)
{
	int rc;

	for (size_t i = 0; i < ld->cap; i++) {
		const struct day_count *e = &ld->days[i];

		if (e->used && (rc = juki_counts_store(store, e->side, e->peer, e->day, e->n,
						       e->digest)) != 0) {
			return rc;
		}
	}
	return 0;
}

int
juki_load_empty(struct juki_store *store, int64_t *held)
{
	static const char sql[] = "SELECT EXISTS (SELECT 1 FROM honnin) OR"
				  " EXISTS (SELECT 1 FROM honnin_history)";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	rc = sqlite3_step(st);
	*held = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		return JUKI_ESTORE;
	}
	return *held == 0;
}

/* CSV: split line (modified in place) into at most MAX_COLS cells; -1 on a broken quote. */
static int
csv_split(char *line, char **cells, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *out = p;

		if (n == max) {
			return max + 1;
		}
		cells[n++] = out;
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0') {
					return -1;
				}
				if (*p == '"') {
					if (p[1] == '"') {
						*out++ = '"';
						p += 2;
						continue;
					}
					p++;
					break;
				}
				*out++ = *p++;
			}
			if (*p != ',' && *p != '\0') {
				return -1;
			}
		} else {
			while (*p != ',' && *p != '\0') {
				if (*p == '"') {
					return -1;
				}
				*out++ = *p++;
			}
		}
		if (*p == '\0') {
			*out = '\0';
			return n;
		}
		*out = '\0';
		p++;
	}
}

static int
col_index(const char *name)
{
	for (int i = 0; flat_cols[i] != NULL; i++) {
		if (strcmp(flat_cols[i], name) == 0) {
			return i;
		}
	}
	return -1;
}

/*
 * A row in the import form (flat columns, texts) as a change record object.
 * vals[i] is the value of flat_cols[i], NULL or "" when absent; ints set
 * when JSON gave a number for version or sex.
 */
static json_t *
flat_to_change(struct juki_loader *ld, const char *const *vals, const json_t *version_v,
	       const json_t *sex_v, struct juki_load_error *err, const char *file, int64_t line)
{
	json_t *rec = json_object(), *person = json_object();
	const char *lg = vals[11];

#define HAS(i) (vals[i] != NULL && vals[i][0] != '\0')
	if (rec == NULL || person == NULL) {
		json_decref(rec);
		json_decref(person);
		set_err(err, file, line, "", "internal", "out of memory");
		return NULL;
	}
	if (!HAS(11)) {
		if (ld->conf.kind != JUKI_KIND_CS) {
			json_decref(rec);
			json_decref(person);
			set_err(err, file, line, "lgcode", JUKI_R_BAD_FIELD,
				"required at a prefectural or national server");
			return NULL;
		}
		lg = ld->self_id;
	}
	json_object_set_new(rec, "code", json_string(HAS(0) ? vals[0] : ""));
	json_object_set_new(rec, "lgcode", json_string(lg));
	if (version_v != NULL) {
		json_object_set(rec, "version", (json_t *)version_v);
	} else if (HAS(8)) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(vals[8], &end, 10);
		json_object_set_new(rec, "version",
				    *end == '\0' && errno == 0 && vals[8][0] != '+' &&
					    vals[8][0] != '-'
					? json_integer(v)
					: json_string(vals[8]));
	} else {
		json_object_set_new(rec, "version", json_integer(1));
	}
	json_object_set_new(rec, "reason", json_string(HAS(1) ? vals[1] : ""));
	json_object_set_new(rec, "reason_date", json_string(HAS(2) ? vals[2] : ""));
	json_object_set_new(rec, "recorded", json_string(HAS(12) ? vals[12] : ld->recorded_now));
	if (HAS(9)) {
		json_object_set_new(rec, "old_code", json_string(vals[9]));
	}
	if (HAS(10)) {
		json_object_set_new(rec, "new_code", json_string(vals[10]));
	}
	json_object_set_new(person, "name", json_string(HAS(3) ? vals[3] : ""));
	if (HAS(4)) {
		json_object_set_new(person, "kana", json_string(vals[4]));
	}
	json_object_set_new(person, "birth", json_string(HAS(5) ? vals[5] : ""));
	if (sex_v != NULL) {
		json_object_set(person, "sex", (json_t *)sex_v);
	} else {
		json_object_set_new(person, "sex",
				    HAS(6) && strcmp(vals[6], "1") == 0   ? json_integer(1)
				    : HAS(6) && strcmp(vals[6], "2") == 0 ? json_integer(2)
									  : json_string(""));
	}
	json_object_set_new(person, "address", json_string(HAS(7) ? vals[7] : ""));
	json_object_set_new(rec, "person", person);
#undef HAS
	return rec;
}

/* A JSON Lines row: a change record (with "person") or the import's flat form. */
static json_t *
jsonl_to_change(struct juki_loader *ld, const char *line, size_t len, struct juki_load_error *err,
		const char *file, int64_t lineno)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *rec, *v;
	const char *vals[16] = {0};
	const char *key;

	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		set_err(err, file, lineno, "", JUKI_R_BAD_FIELD, "not a JSON object");
		return NULL;
	}
	if (json_object_get(obj, "person") != NULL) {
		return obj;
	}
	json_object_foreach(obj, key, v)
	{
		int i = col_index(key);

		if (i < 0) {
			json_decref(obj);
			set_err(err, file, lineno, "", JUKI_R_BAD_FIELD, "unknown column");
			return NULL;
		}
		if (json_is_string(v)) {
			vals[i] = json_string_value(v);
		} else if (!json_is_null(v) && i != 8 && i != 6) {
			json_decref(obj);
			set_err(err, file, lineno, flat_cols[i], JUKI_R_BAD_FIELD,
				"must be a string");
			return NULL;
		}
	}
	v = json_object_get(obj, "version");
	rec = flat_to_change(
	    ld, vals, json_is_integer(v) ? v : NULL,
	    json_is_integer(json_object_get(obj, "sex")) ? json_object_get(obj, "sex") : NULL, err,
	    file, lineno);
	json_decref(obj);
	return rec;
}

static const char *
sender_of(struct juki_loader *ld, const struct juki_change *c)
{
	struct juki_ident id;
	char pref[3];

	if (ld->conf.kind == JUKI_KIND_CS) {
		return NULL;
	}
	if (ld->conf.kind == JUKI_KIND_JLIS) {
		/* One sender per prefecture: rows of many municipalities mixed cost no lookup. */
		int n = (c->lgcode[0] - '0') * 10 + (c->lgcode[1] - '0');

		if (n < 1 || n > 47) {
			return NULL;
		}
		if (ld->pref_sender[n][0] == '\0') {
			memcpy(pref, c->lgcode, 2);
			pref[2] = '\0';
			if (juki_ident_node(JUKI_KIND_PREF, pref, &id) != 0) {
				return NULL;
			}
			memcpy(ld->pref_sender[n], id.urn, sizeof(id.urn));
		}
		return ld->pref_sender[n];
	}
	if (strcmp(ld->last_lg, c->lgcode) == 0) {
		return ld->last_sender;
	}
	if (juki_ident_node(JUKI_KIND_CS, c->lgcode, &id) != 0) {
		return NULL;
	}
	memcpy(ld->last_sender, id.urn, sizeof(id.urn));
	memcpy(ld->last_lg, c->lgcode, sizeof(ld->last_lg));
	return ld->last_sender;
}

static int
origin_ok(const struct juki_loader *ld, const struct juki_change *c)
{
	switch (ld->conf.kind) {
	case JUKI_KIND_CS:
		return strcmp(c->lgcode, ld->self_id) == 0;
	case JUKI_KIND_PREF:
		return strncmp(c->lgcode, ld->self_id, 2) == 0;
	default:
		return 1;
	}
}

/* A row checked and made ready to store: what the insert and the counts need. */
struct row {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char lgcode[JUKI_LGCODE_LEN + 1];
	char reason_date[11];
	int64_t version, recorded_ms, pkey, line;
	const struct juki_reason *reason;
	int kind;
	char *text; /* the canonical record (juki_change_text()) */
	size_t len;
	size_t off; /* in the pipe: text's offset in its batch's arena */
	int owned;  /* text is malloc'd (else it lies in a batch's arena) */
	unsigned char digest[JUKI_DIGEST_LEN];
	char sender[JUKI_URN_MAX]; /* "" for none */
};

static int
fast_insert(struct juki_loader *ld, const struct row *r, const char *sender, int *fresh)
{
	static const char sql[] =
	    "INSERT INTO honnin (code, lgcode, version, reason, kind, reason_date, recorded_ms,"
	    " received_ms, sender, rec, pkey) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
	    "?11)";
	sqlite3_stmt *st = juki_store_prepare(ld->store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, r->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->lgcode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->version);
	sqlite3_bind_text(st, 4, r->reason->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->kind);
	sqlite3_bind_text(st, 6, r->reason_date, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->recorded_ms);
	sqlite3_bind_int64(st, 8, ld->conf.now_ms);
	if (sender != NULL) {
		sqlite3_bind_text(st, 9, sender, -1, SQLITE_STATIC);
	}
	sqlite3_bind_blob(st, 10, r->text, (int)r->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, r->pkey);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	*fresh = rc == SQLITE_DONE;
	return rc == SQLITE_DONE || (rc & 0xff) == SQLITE_CONSTRAINT ? 0 : JUKI_ESTORE;
}

static void
keep_key(struct juki_loader *ld, int64_t pkey, const char *code)
{
	int64_t v = 0;

	if (ld->nkeys == ld->keycap) {
		size_t cap = ld->keycap ? ld->keycap * 2 : 65536;
		struct person_key *k = cap <= KEYS_MAX ? realloc(ld->keys, cap * sizeof(*k)) : NULL;

		if (k == NULL) {
			free(ld->keys);
			ld->keys = NULL;
			ld->nkeys = ld->keycap = 0;
			__atomic_store_n(&ld->keys_off, 1, __ATOMIC_RELAXED);
			return;
		}
		ld->keys = k;
		ld->keycap = cap;
	}
	for (size_t i = 0; i < JUKI_JUMIN_CODE_LEN; i++) {
		v = v * 10 + (code[i] - '0');
	}
	ld->keys[ld->nkeys].pkey = pkey;
	ld->keys[ld->nkeys].code = v;
	ld->nkeys++;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct person_key *x = a, *y = b;

	if (x->pkey != y->pkey) {
		return x->pkey < y->pkey ? -1 : 1;
	}
	return x->code < y->code ? -1 : x->code > y->code;
}

/*
 * honnin_person from the kept keys, in key order, KEYS_AT_ONCE a statement:
 * a row a statement spent more in the statement than in the B-tree.
 */
#define KEYS_AT_ONCE 128

static sqlite3_stmt *
keys_stmt(sqlite3 *db, size_t n)
{
	char sql[64 + KEYS_AT_ONCE * 8];
	size_t len =
	    (size_t)snprintf(sql, sizeof(sql), "INSERT INTO honnin_person (pkey, code) VALUES");
	sqlite3_stmt *st = NULL;

	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s(?,?)", i ? "," : " ");
	}
	return sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? st : NULL;
}

static int
write_keys(struct juki_loader *ld)
{
	sqlite3 *db = juki_store_db(ld->store);
	sqlite3_stmt *many = keys_stmt(db, KEYS_AT_ONCE), *one = keys_stmt(db, 1);
	char codes[KEYS_AT_ONCE][JUKI_JUMIN_CODE_LEN];
	int rc = many != NULL && one != NULL ? SQLITE_DONE : SQLITE_ERROR;

	for (size_t i = 0; i < ld->nkeys && rc == SQLITE_DONE;) {
		size_t n = ld->nkeys - i >= KEYS_AT_ONCE ? KEYS_AT_ONCE : 1;
		sqlite3_stmt *st = n == KEYS_AT_ONCE ? many : one;

		for (size_t k = 0; k < n; k++) {
			int64_t v = ld->keys[i + k].code;

			for (size_t d = JUKI_JUMIN_CODE_LEN; d-- > 0; v /= 10) {
				codes[k][d] = (char)('0' + v % 10);
			}
			sqlite3_bind_int64(st, (int)(2 * k + 1), ld->keys[i + k].pkey);
			sqlite3_bind_text(st, (int)(2 * k + 2), codes[k], JUKI_JUMIN_CODE_LEN,
					  SQLITE_STATIC);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		i += n;
	}
	sqlite3_finalize(many);
	sqlite3_finalize(one);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* A change read and checked (c->kind set): checked against the node and made a row. */
static int
prep_change(struct juki_loader *ld, const struct juki_change *c, const char *file, int64_t line,
	    struct juki_load_error *err, struct juki_text *arena, struct row *r)
{
	struct juki_field_error fe;
	const char *sender;
	const char *parts[2];
	int rc;

	rc = juki_change_dates_check(c, ld->conf.now_ms, &fe);
	if (rc != 0) {
		set_err(err, file, line, fe.field, fe.reason ? fe.reason : JUKI_R_BAD_FIELD, "%s",
			fe.detail);
		return rc;
	}
	if (!origin_ok(ld, c)) {
		set_err(err, file, line, "lgcode", "origin",
			ld->conf.kind == JUKI_KIND_CS ? "not this municipality's code"
						      : "not a municipality of this prefecture");
		return JUKI_EFORMAT;
	}
	sender = sender_of(ld, c);
	if (ld->conf.kind != JUKI_KIND_CS && sender == NULL) {
		set_err(err, file, line, "lgcode", "origin", "names no node");
		return JUKI_EFORMAT;
	}
	if (arena != NULL) {
		/* Straight into the batch's buffer: no buffer, copy and free per row. */
		r->off = arena->len;
		if (juki_change_text_append(c, arena) != 0) {
			set_err(err, file, line, "", "internal", "out of memory");
			return JUKI_ENOMEM;
		}
		r->len = arena->len - r->off;
		r->text = NULL;
		r->owned = 0;
	} else if ((r->text = juki_change_text(c, &r->len)) == NULL) {
		set_err(err, file, line, "", "internal", "out of memory");
		return JUKI_ENOMEM;
	} else {
		r->owned = 1;
	}
	memcpy(r->code, c->code, sizeof(r->code));
	memcpy(r->lgcode, c->lgcode, sizeof(r->lgcode));
	memcpy(r->reason_date, c->reason_date, sizeof(r->reason_date));
	r->version = c->version;
	r->recorded_ms = c->recorded_ms;
	r->reason = c->reason;
	r->kind = (int)juki_change_kind_of(c);
	r->line = line;
	parts[0] = c->person.name;
	parts[1] = c->person.birth;
	r->pkey = juki_hash64(parts, 2);
	if (arena != NULL && !__atomic_load_n(&ld->keys_off, __ATOMIC_RELAXED)) {
		keep_key(ld, r->pkey, c->code);
	}
	r->sender[0] = '\0';
	if (sender != NULL) {
		size_t sl = strlen(sender);

		if (sl >= sizeof(r->sender)) {
			sl = sizeof(r->sender) - 1;
		}
		memcpy(r->sender, sender, sl);
		r->sender[sl] = '\0';
	}
	if (sender != NULL || ld->ndests > 0) {
		char key[JUKI_COUNT_KEY_MAX];
		size_t n = juki_count_key(c->code, c->lgcode, c->version, key);

		if (EVP_Digest(key, n, r->digest, NULL, ld->md, NULL) != 1) {
			if (r->owned) {
				free(r->text);
			} else {
				arena->len = r->off;
			}
			r->text = NULL;
			set_err(err, file, line, "", "internal", "SHA-256 failed");
			return JUKI_EIO;
		}
	}
	return 0;
}

/* One change record object: read, checked and made a row.  Steals rec. */
static int
prep_row(struct juki_loader *ld, json_t *rec, const char *file, int64_t line,
	 struct juki_load_error *err, struct juki_text *arena, struct row *r)
{
	struct juki_change c;
	struct juki_field_error fe;
	int rc = juki_change_from_json(rec, &c, &fe);

	json_decref(rec);
	if (rc != 0) {
		set_err(err, file, line, fe.field, fe.reason ? fe.reason : JUKI_R_BAD_FIELD, "%s",
			fe.detail);
		return rc;
	}
	return prep_change(ld, &c, file, line, err, arena, r);
}

static int
flat_text(const char *v, size_t max, int required, char *out, const char *field,
	  struct juki_field_error *fe)
{
	char detail[96];

	if (v == NULL || v[0] == '\0') {
		if (required) {
			return flat_fail(fe, field, JUKI_EFORMAT, "required");
		}
		out[0] = '\0';
		return 0;
	}
	if (juki_text_valid(v, max, detail, sizeof(detail)) != 0) {
		return flat_fail(fe, field, JUKI_EFORMAT, detail);
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
flat_code(const char *v, int lgcode, char *out, size_t len, const char *field,
	  struct juki_field_error *fe)
{
	size_t n;
	int rc;

	if (v == NULL) {
		return flat_fail(fe, field, JUKI_EFORMAT, "required string");
	}
	rc = lgcode ? juki_lgcode_check(v) : juki_jumin_code_check(v);
	if (rc == JUKI_EFORMAT) {
		return flat_fail(fe, field, rc,
				 lgcode ? "must be 6 digits, the first two a prefecture (01..47)"
					: "must be 11 digits");
	}
	if (rc != 0) {
		return flat_fail(fe, field, rc, "check digit does not match");
	}
	/* Checked: exactly the code's digits (a printf per code was a tenth of the reader). */
	n = strlen(v);
	if (n >= len) {
		return flat_fail(fe, field, JUKI_EFORMAT, "too long");
	}
	memcpy(out, v, n + 1);
	return 0;
}

/*
 * A CSV row, vals[i] the cell of flat_cols[i] (NULL: no such column), read
 * straight into a change with the rules of juki_change_from_json() and
 * juki_person_fields_from_json() (the same field names, codes, details),
 * without a JSON tree.  test_load.c compares the two on every kind of error.
 */
static int
flat_change(struct juki_loader *ld, const char *const *vals, struct juki_change *c,
	    struct juki_field_error *fe)
{
#define HAS(i) (vals[i] != NULL && vals[i][0] != '\0')
	const char *lg = HAS(11) ? vals[11] : ld->conf.kind == JUKI_KIND_CS ? ld->self_id : NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	memset(fe, 0, sizeof(*fe));
	if (lg == NULL) {
		return flat_fail(fe, "lgcode", JUKI_EFORMAT,
				 "required at a prefectural or national server");
	}
	if ((rc = flat_code(HAS(0) ? vals[0] : NULL, 0, c->code, sizeof(c->code), "code", fe)) !=
		0 ||
	    (rc = flat_code(lg, 1, c->lgcode, sizeof(c->lgcode), "lgcode", fe)) != 0) {
		return rc;
	}
	if (!HAS(2) || !juki_date_valid(vals[2])) {
		return flat_fail(fe, "reason_date", JUKI_EFORMAT, "must be a real date YYYY-MM-DD");
	}
	memcpy(c->reason_date, vals[2], 11);
	c->version = 1;
	if (HAS(8)) {
		char *end;

		errno = 0;
		c->version = strtoll(vals[8], &end, 10);
		if (*end != '\0' || errno != 0 || c->version < 1 || vals[8][0] == '+' ||
		    vals[8][0] == ' ') {
			return flat_fail(fe, "version", JUKI_EFORMAT, "a positive integer");
		}
	}
	if ((c->reason = juki_reason_find(HAS(1) ? vals[1] : "")) == NULL) {
		return flat_fail(fe, "reason", JUKI_EFORMAT, "not a 異動事由 on the list");
	}
	if (!HAS(12)) {
		c->recorded_ms = ld->conf.now_ms;
	} else if (ld->last_recorded[0] != '\0' && strcmp(vals[12], ld->last_recorded) == 0) {
		c->recorded_ms = ld->last_recorded_ms;
	} else if (juki_clock_parse(vals[12], &c->recorded_ms) != 0) {
		return flat_fail(fe, "recorded", JUKI_EFORMAT, "an RFC 3339 UTC time");
	} else if (strlen(vals[12]) < sizeof(ld->last_recorded)) {
		memcpy(ld->last_recorded, vals[12], strlen(vals[12]) + 1);
		ld->last_recorded_ms = c->recorded_ms;
	}
	memcpy(c->person.code, c->code, sizeof(c->code));
	memcpy(c->person.lgcode, c->lgcode, sizeof(c->lgcode));
	if ((rc = flat_text(vals[3], JUKI_NAME_MAX, 1, c->person.name, "person.name", fe)) != 0 ||
	    (rc = flat_text(vals[4], JUKI_NAME_MAX, 0, c->person.kana, "person.kana", fe)) != 0 ||
	    (rc = flat_text(vals[7], JUKI_ADDRESS_MAX, 1, c->person.address, "person.address",
			    fe)) != 0) {
		return rc;
	}
	if (!HAS(5) || !juki_date_valid(vals[5])) {
		return flat_fail(fe, "person.birth", JUKI_EFORMAT,
				 "must be a real date YYYY-MM-DD");
	}
	memcpy(c->person.birth, vals[5], 11);
	if (!HAS(6) || (strcmp(vals[6], "1") != 0 && strcmp(vals[6], "2") != 0)) {
		return flat_fail(fe, "person.sex", JUKI_EFORMAT, "must be 1 (male) or 2 (female)");
	}
	c->person.sex = vals[6][0] - '0';
	if (strcmp(c->reason->name, "住民票コード変更") == 0) {
		const char *which = HAS(9) ? "old_code" : "new_code";
		char *dest = HAS(9) ? c->old_code : c->new_code;

		if (HAS(9) && HAS(10)) {
			return flat_fail(fe, "new_code", JUKI_EFORMAT, "not with old_code");
		}
		if (!HAS(9) && !HAS(10)) {
			return flat_fail(fe, "old_code", JUKI_EFORMAT,
					 "住民票コード変更 needs old_code (new record) or new_code "
					 "(old record)");
		}
		if ((rc = flat_code(HAS(9) ? vals[9] : vals[10], 0, dest, JUKI_JUMIN_CODE_LEN + 1,
				    which, fe)) != 0) {
			return rc;
		}
		if (strcmp(dest, c->code) == 0) {
			return flat_fail(fe, which, JUKI_EFORMAT, "the same as code");
		}
	} else if (HAS(9)) {
		return flat_fail(fe, "old_code", JUKI_EFORMAT, "only for 住民票コード変更");
	} else if (HAS(10)) {
		return flat_fail(fe, "new_code", JUKI_EFORMAT, "only for 住民票コード変更");
	}
	c->kind = juki_change_kind_of(c);
	return 0;
#undef HAS
}

static int
prep_flat(struct juki_loader *ld, const char *const *vals, const char *file, int64_t line,
	  struct juki_load_error *err, struct juki_text *arena, struct row *r)
{
	struct juki_field_error fe;
	int rc = flat_change(ld, vals, &ld->scratch, &fe);

	if (rc != 0) {
		set_err(err, file, line, fe.field, fe.reason, "%s", fe.detail);
		return rc;
	}
	return prep_change(ld, &ld->scratch, file, line, err, arena, r);
}

/* A row into the store, counted; frees its text. */
static int
put_row(struct juki_loader *ld, struct row *r, const char *file, struct juki_load_error *err)
{
	enum juki_apply_outcome outcome = JUKI_APPLIED_CURRENT;
	const char *sender = r->sender[0] ? r->sender : NULL;
	int rc = 0, fresh = 0;

	if (ld->conf.fresh) {
		rc = fast_insert(ld, r, sender, &fresh);
	}
	if (rc == 0 && !fresh) {
		/* The current records are no longer the rows read: keys from the table. */
		__atomic_store_n(&ld->keys_off, 1, __ATOMIC_RELAXED);
		/* A person held already: the precedence rule, on the record read again. */
		struct juki_change c;
		struct juki_field_error fe;
		json_t *obj = json_loadb(r->text, r->len, 0, NULL);

		rc = obj == NULL || juki_change_from_json(obj, &c, &fe) != 0 ? JUKI_EFORMAT : 0;
		json_decref(obj);
		if (rc == 0) {
			rc = juki_honnin_apply_text(ld->store, &c, r->text, r->len, sender,
						    ld->conf.now_ms, NULL, &outcome);
		}
	}
	if (r->owned) {
		free(r->text);
	}
	r->text = NULL;
	if (rc != 0) {
		set_err(err, file, r->line, "", "store", "%s", juki_store_errmsg(ld->store));
		return rc;
	}
	add(&ld->p.rows, 1);
	if (outcome == JUKI_APPLIED_DUPLICATE) {
		add(&ld->p.duplicates, 1);
		return 0;
	}
	add(outcome == JUKI_APPLIED_CURRENT ? &ld->p.current : &ld->p.history, 1);
	if (sender != NULL && (rc = count(ld, JUKI_COUNT_RECEIVED, sender, r->recorded_ms,
					  r->reason, r->digest)) != 0) {
		set_err(err, file, r->line, "", "internal", "out of memory");
		return rc;
	}
	/* Counted as sent to each destination, as the network would (each national centre). */
	for (size_t d = 0; d < ld->ndests; d++) {
		if ((rc = count(ld, JUKI_COUNT_SENT, ld->dest[d], r->recorded_ms, r->reason,
				r->digest)) != 0) {
			set_err(err, file, r->line, "", "internal", "out of memory");
			return rc;
		}
	}
	return 0;
}

/*
 * A fresh load runs in two threads: this one reads and checks the rows and
 * makes their text, a second one stores them (SQLite), PIPE_BATCHES batches
 * of PIPE_ROWS rows between them.  The reader sorts each batch by code
 * (then by line, so two rows of one code keep their order in the file)
 * before it hands it over: the unique index on code then takes each batch
 * as one ordered run, touching each of its pages once per batch instead of
 * once per row (docs/benchmarks.md "Bulk load").
 */
#define PIPE_ROWS    16384
#define PIPE_BATCHES 3
#define PIPE_AHEAD   8 /* rows fetched into cache ahead of the one stored */

struct pipe {
	struct juki_loader *ld;
	const char *file;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct row *rows[PIPE_BATCHES];
	struct row **order[PIPE_BATCHES];     /* the rows sorted by code, then line */
	struct juki_text arena[PIPE_BATCHES]; /* the rows' texts, one buffer per batch */
	size_t n[PIPE_BATCHES];
	int full[PIPE_BATCHES];
	size_t wr, rd; /* the batch being filled, the next to store */
	int done;      /* the reader is through (or stopped) */
	int failed;    /* the writer failed: the reader stops */
	int rc;
	struct juki_load_error err;
};

static void *
pipe_writer(void *arg)
{
	struct pipe *p = arg;

	for (;;) {
		size_t b, n;

		pthread_mutex_lock(&p->mu);
		while (!p->full[p->rd % PIPE_BATCHES] && !p->done) {
			pthread_cond_wait(&p->cv, &p->mu);
		}
		b = p->rd % PIPE_BATCHES;
		if (!p->full[b]) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		n = p->n[b];
		pthread_mutex_unlock(&p->mu);
		for (size_t i = 0; i < n && p->rc == 0; i++) {
			/*
			 * The rows go in code order, so row and text lie anywhere in the
			 * batch (megabytes): fetched ahead, they are in cache when stored
			 * (perf: most of put_row's own time was the miss on each row).
			 */
			if (i + PIPE_AHEAD < n) {
				const struct row *ahead = p->order[b][i + PIPE_AHEAD];

				__builtin_prefetch(ahead);
				__builtin_prefetch((const char *)ahead + 64);
				__builtin_prefetch((const char *)ahead + 128);
			}
			if (i + PIPE_AHEAD / 2 < n) {
				const struct row *ahead = p->order[b][i + PIPE_AHEAD / 2];

				for (size_t o = 0; o < ahead->len; o += 64) {
					__builtin_prefetch(ahead->text + o);
				}
			}
			p->rc = put_row(p->ld, p->order[b][i], p->file, &p->err);
		}
		pthread_mutex_lock(&p->mu);
		p->full[b] = 0;
		p->n[b] = 0;
		p->rd++;
		if (p->rc != 0) {
			p->failed = 1;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

static int
row_cmp(const void *a, const void *b)
{
	const struct row *x = *(struct row *const *)a, *y = *(struct row *const *)b;
	int c = memcmp(x->code, y->code, JUKI_JUMIN_CODE_LEN);

	if (c != 0) {
		return c;
	}
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The batch b filled: its texts pointed into its arena, its rows put in order. */
static void
pipe_seal(struct pipe *p, size_t b)
{
	for (size_t i = 0; i < p->n[b]; i++) {
		p->rows[b][i].text = p->arena[b].buf + p->rows[b][i].off;
		p->order[b][i] = &p->rows[b][i];
	}
	qsort(p->order[b], p->n[b], sizeof(struct row *), row_cmp);
	p->arena[b].len = 0; /* filled again only once the writer is through with it */
}

/* Hand the batch being filled to the writer and wait for a free one; -1 when it failed. */
static int
pipe_pass(struct pipe *p)
{
	int failed;

	pipe_seal(p, p->wr % PIPE_BATCHES);
	pthread_mutex_lock(&p->mu);
	p->full[p->wr % PIPE_BATCHES] = 1;
	p->wr++;
	pthread_cond_broadcast(&p->cv);
	while (p->full[p->wr % PIPE_BATCHES] && !p->failed) {
		pthread_cond_wait(&p->cv, &p->mu);
	}
	failed = p->failed;
	pthread_mutex_unlock(&p->mu);
	return failed ? -1 : 0;
}

static void
pipe_free(struct pipe *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t b = 0; b < PIPE_BATCHES; b++) {
		free(p->rows[b]);
		free(p->order[b]);
		juki_text_free(&p->arena[b]);
	}
	free(p);
}

/* Where a checked row goes: stored at once, or into the pipe. */
struct sink {
	struct juki_loader *ld;
	struct pipe *pipe;
};

static int
sink_row(struct sink *k, json_t *rec, const char *const *vals, const char *file, int64_t line,
	 struct juki_load_error *err)
{
	struct row one, *r;
	struct pipe *p = k->pipe;
	size_t b;
	int rc;

	if (p == NULL) {
		memset(&one, 0, sizeof(one));
		if ((rc = rec != NULL ? prep_row(k->ld, rec, file, line, err, NULL, &one)
				      : prep_flat(k->ld, vals, file, line, err, NULL, &one)) != 0) {
			return rc;
		}
		return put_row(k->ld, &one, file, err);
	}
	b = p->wr % PIPE_BATCHES;
	r = &p->rows[b][p->n[b]];
	if ((rc = rec != NULL ? prep_row(k->ld, rec, file, line, err, &p->arena[b], r)
			      : prep_flat(k->ld, vals, file, line, err, &p->arena[b], r)) != 0) {
		return rc;
	}
	if (++p->n[p->wr % PIPE_BATCHES] == PIPE_ROWS && pipe_pass(p) != 0) {
		*err = p->err;
		return p->rc;
	}
	return 0;
}

static int
is_jsonl_name(const char *path, int *known)
{
	const char *dot = strrchr(path, '.');

	*known = 1;
	if (dot != NULL && strcmp(dot, ".csv") == 0) {
		return 0;
	}
	if (dot != NULL && (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0 ||
			    strcmp(dot, ".json") == 0)) {
		return 1;
	}
	*known = 0;
	return 0;
}

/*
 * path opened if it is a regular file (juki_open_regular(): a FIFO put at the
 * path after the command checked it does not hang the load), with a reader
 * of its lines: a line over LOAD_LINE_MAX, a '\r' aside, is refused as read,
 * never gathered whole.  -1 with *why otherwise.
 */
static int
lines_open(const char *path, int *fd, struct juki_lines **lr, const char **why)
{
	struct stat sb;

	if ((*fd = juki_open_regular(path, &sb)) < 0) {
		*why = *fd == JUKI_EINVAL ? "not a regular file" : strerror(-*fd);
		return -1;
	}
	if ((*lr = juki_lines_new(*fd, LOAD_LINE_MAX + 1)) == NULL) {
		*why = "out of memory";
		close(*fd);
		return -1;
	}
	return 0;
}

int
juki_loader_file(struct juki_loader *ld, const char *path, struct juki_load_error *err)
{
	const char *why = NULL;
	struct juki_lines *lr = NULL;
	ssize_t got;
	int64_t lineno = 0;
	int fd = -1, known, jsonl = is_jsonl_name(path, &known), header = -1, ncols = 0, rc = 0;
	int colmap[MAX_COLS];
	struct sink sk = {ld, NULL};
	struct pipe *p = NULL;
	pthread_t writer;

	if (lines_open(path, &fd, &lr, &why) != 0) {
		set_err(err, path, 0, "", "io", "%s", why);
		return JUKI_EIO;
	}
	if (ld->conf.fresh) {
		p = calloc(1, sizeof(*p));
		for (size_t b = 0; p != NULL && b < PIPE_BATCHES; b++) {
			if ((p->rows[b] = calloc(PIPE_ROWS, sizeof(struct row))) == NULL ||
			    (p->order[b] = calloc(PIPE_ROWS, sizeof(struct row *))) == NULL ||
			    (p->arena[b].buf = malloc(PIPE_ROWS * 512)) == NULL) {
				break;
			}
			p->arena[b].cap = PIPE_ROWS * 512;
		}
		if (p == NULL || p->arena[PIPE_BATCHES - 1].buf == NULL) {
			pipe_free(p);
			juki_lines_free(lr);
			close(fd);
			set_err(err, path, 0, "", "internal", "out of memory");
			return JUKI_ENOMEM;
		}
		p->ld = ld;
		p->file = path;
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		if (pthread_create(&writer, NULL, pipe_writer, p) != 0) {
			pipe_free(p);
			juki_lines_free(lr);
			close(fd);
			set_err(err, path, 0, "", "internal", "cannot start a thread");
			return JUKI_ENOMEM;
		}
		sk.pipe = p;
	}
	add(&ld->p.file, 1);
	for (;;) {
		char *s;
		size_t len;

		if ((got = juki_lines_next(lr, &s)) < 0) {
			if (got == JUKI_ETOOBIG) {
				set_err(err, path, lineno + 1, "", JUKI_R_BAD_FIELD,
					"line longer than %d bytes", LOAD_LINE_MAX);
				rc = JUKI_ETOOBIG;
			} else if (got == JUKI_EIO) {
				set_err(err, path, lineno + 1, "", "io", "read failed");
				rc = JUKI_EIO;
			}
			break;
		}
		len = (size_t)got;
		lineno++;
		add(&ld->p.bytes, (int64_t)juki_lines_taken(lr));
		if (len > 0 && s[len - 1] == '\r') {
			s[--len] = '\0';
		}
		if (lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			len -= 3;
		}
		if (len == 0) {
			continue;
		}
		if (ld->conf.cancel != NULL && (lineno & 4095) == 0 &&
		    __atomic_load_n(ld->conf.cancel, __ATOMIC_RELAXED)) {
			set_err(err, path, lineno, "", "stopped", "the daemon stopped");
			rc = JUKI_EAGAIN;
			break;
		}
		if (strlen(s) != len) {
			set_err(err, path, lineno, "", JUKI_R_BAD_FIELD,
				"contains a NUL character");
			rc = JUKI_EFORMAT;
			break;
		}
		if (len > LOAD_LINE_MAX) {
			set_err(err, path, lineno, "", JUKI_R_BAD_FIELD,
				"line longer than %d bytes", LOAD_LINE_MAX);
			rc = JUKI_ETOOBIG;
			break;
		}
		if (!known) {
			jsonl = s[0] == '{';
			known = 1;
		}
		if (jsonl) {
			json_t *rec = jsonl_to_change(ld, s, len, err, path, lineno);

			if (rec == NULL) {
				rc = JUKI_EFORMAT;
				break;
			}
			if ((rc = sink_row(&sk, rec, NULL, path, lineno, err)) != 0) {
				break;
			}
			continue;
		}
		{
			char *cells[MAX_COLS + 1];
			int n = csv_split(s, cells, MAX_COLS);
			const char *vals[16] = {0};

			if (n < 0 || n > MAX_COLS) {
				set_err(err, path, lineno, "", JUKI_R_BAD_FIELD,
					n < 0 ? "a quote where CSV allows none"
					      : "more cells than columns");
				rc = JUKI_EFORMAT;
				break;
			}
			if (header < 0) {
				for (int i = 0; i < n; i++) {
					int k = col_index(cells[i]);

					for (int j = 0; k >= 0 && j < i; j++) {
						if (colmap[j] == k) {
							k = -2;
						}
					}
					if (k < 0) {
						set_err(err, path, lineno, "", JUKI_R_BAD_FIELD,
							k == -1 ? "header: unknown column %d"
								: "header: column %d named twice",
							i + 1);
						rc = JUKI_EFORMAT;
						break;
					}
					colmap[i] = k;
				}
				if (rc != 0) {
					break;
				}
				header = 1;
				ncols = n;
				continue;
			}
			if (n != ncols) {
				set_err(err, path, lineno, "", JUKI_R_BAD_FIELD,
					"%d cells where the header has %d", n, ncols);
				rc = JUKI_EFORMAT;
				break;
			}
			for (int i = 0; i < n; i++) {
				vals[colmap[i]] = cells[i];
			}
			if ((rc = sink_row(&sk, NULL, vals, path, lineno, err)) != 0) {
				break;
			}
		}
	}
	juki_lines_free(lr);
	close(fd);
	if (p != NULL) {
		size_t b = p->wr % PIPE_BATCHES;

		if (rc == 0 && p->n[b] > 0) {
			pipe_seal(p, b);
		}
		pthread_mutex_lock(&p->mu);
		if (rc == 0 && p->n[b] > 0) {
			p->full[b] = 1;
			p->wr++;
		} else {
			p->n[b] = 0; /* the texts lie in the arena */
			p->arena[b].len = 0;
		}
		p->done = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		/*
		 * The keys sorted while the writer stores the last rows (keys_off
		 * is the writer's too: read after the join).
		 */
		if (rc == 0 && ld->keys != NULL) {
			qsort(ld->keys, ld->nkeys, sizeof(*ld->keys), key_cmp);
		}
		pthread_join(writer, NULL);
		if (rc == 0 && p->rc != 0) {
			*err = p->err;
			rc = p->rc;
		}
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		pipe_free(p);
	}
	return rc;
}

int
juki_loader_finish(struct juki_loader *ld, struct juki_load_error *err)
{
	__atomic_store_n(&ld->p.phase, 1, __ATOMIC_RELAXED);
	if (ld->conf.fresh) {
		/*
		 * The keys of lookups by attributes, in key order: each page written
		 * once.  Measured against inserting each key with its row (random
		 * order into the big index): no slower, and it does not need that
		 * index to stay in the page cache.
		 */
		int keys = !ld->keys_off && ld->keys != NULL;

		/*
		 * The page cache shrinks for the sorts that follow, and with it each of
		 * SQLite's sorters (one keeps up to the cache's size in memory per
		 * thread): the load's peak no longer grows with the rows (1,084 MiB at
		 * 25 million before).  Less sorter memory was measured no slower
		 * (docs/benchmarks.md "Bulk load").
		 */
		if (juki_store_exec(ld->store, INDEX_CACHE_PRAGMA) != 0) {
			set_err(err, NULL, 0, "", "store", "%s", juki_store_errmsg(ld->store));
			return JUKI_ESTORE;
		}
		if (juki_store_exec(ld->store, "DELETE FROM honnin_person_new;"
					       "DELETE FROM honnin_person;") != 0 ||
		    (keys && write_keys(ld) != 0) ||
		    (!keys && juki_store_exec(ld->store, "INSERT INTO honnin_person (pkey, code)"
							 " SELECT pkey, code FROM honnin"
							 " ORDER BY pkey, code") != 0)) {
			set_err(err, NULL, 0, "", "store", "%s", juki_store_errmsg(ld->store));
			return JUKI_ESTORE;
		}
		/* Written: the keys' memory goes before the indexes' sorts. */
		free(ld->keys);
		ld->keys = NULL;
		for (size_t i = 0; i < ld->nindexes; i++) {
			if (juki_store_exec(ld->store, ld->indexes[i]) != 0) {
				set_err(err, NULL, 0, "", "store", "%s",
					juki_store_errmsg(ld->store));
				return JUKI_ESTORE;
			}
		}
	}
	__atomic_store_n(&ld->p.phase, 2, __ATOMIC_RELAXED);
	return 0;
}
