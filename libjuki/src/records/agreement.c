#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/records/agreement.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"

const struct juki_migration juki_agreement_steps[JUKI_AGREEMENT_NSTEPS] = {
    {1, "CREATE TABLE agreements ("
	" id TEXT PRIMARY KEY,"
	" body TEXT NOT NULL,"
	" jimu TEXT NOT NULL,"
	" items INTEGER NOT NULL,"
	" methods INTEGER NOT NULL,"
	" daily_cap INTEGER NOT NULL,"
	" bulk_threshold INTEGER NOT NULL,"
	" keep_days INTEGER NOT NULL,"
	" responsible TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" added_by TEXT NOT NULL,"
	" added_ms INTEGER NOT NULL,"
	" approved_by TEXT NOT NULL DEFAULT '',"
	" approved_ms INTEGER NOT NULL DEFAULT 0,"
	" changed_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE provide_daily ("
	" agreement TEXT NOT NULL,"
	" day INTEGER NOT NULL,"
	" n INTEGER NOT NULL,"
	" PRIMARY KEY (agreement, day)"
	") WITHOUT ROWID;"
	"CREATE TABLE provide_batches ("
	" id TEXT PRIMARY KEY,"
	" body TEXT NOT NULL,"
	" agreement TEXT NOT NULL,"
	" count INTEGER NOT NULL,"
	" parts INTEGER NOT NULL,"
	" answered INTEGER NOT NULL,"
	" first_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE provide_batch_parts ("
	" batch TEXT NOT NULL,"
	" part INTEGER NOT NULL,"
	" PRIMARY KEY (batch, part)"
	") WITHOUT ROWID;"},
};

static const char *const item_names[] = {"code", "name", "birth", "sex", "address", "change"};
#define NITEMS (sizeof(item_names) / sizeof(item_names[0]))

static const char *const state_names[] = {"pending", "active", "suspended", "ended"};

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

const char *
juki_item_name(unsigned item)
{
	for (size_t i = 0; i < NITEMS; i++) {
		if (item == (1u << i)) {
			return item_names[i];
		}
	}
	return NULL;
}

static unsigned
item_bit(const char *name)
{
	for (size_t i = 0; i < NITEMS; i++) {
		if (strcmp(name, item_names[i]) == 0) {
			return 1u << i;
		}
	}
	return 0;
}

int
juki_items_from_json(const json_t *array, unsigned *items, char *detail, size_t len)
{
	size_t i;
	const json_t *v;

	*items = 0;
	if (!json_is_array(array) || json_array_size(array) == 0) {
		say(detail, len,
		    "an array of one or more of code, name, birth, sex, address, change");
		return JUKI_EFORMAT;
	}
	json_array_foreach(array, i, v)
	{
		unsigned bit = json_is_string(v) ? item_bit(json_string_value(v)) : 0;

		if (bit == 0) {
			say(detail, len,
			    "[%zu]: not one of code, name, birth, sex, address, change", i);
			return JUKI_EFORMAT;
		}
		if (*items & bit) {
			say(detail, len, "[%zu]: named twice", i);
			return JUKI_EFORMAT;
		}
		*items |= bit;
	}
	return 0;
}

json_t *
juki_items_to_json(unsigned items)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < NITEMS; i++) {
		if (items & (1u << i)) {
			json_array_append_new(a, json_string(item_names[i]));
		}
	}
	return a;
}

void
juki_items_text(unsigned items, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0) {
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < NITEMS; i++) {
		if (items & (1u << i)) {
			int w =
			    snprintf(buf + off, len - off, "%s%s", off ? "," : "", item_names[i]);

			if (w < 0 || (size_t)w >= len - off) {
				return;
			}
			off += (size_t)w;
		}
	}
}

unsigned
juki_items_from_text(const char *text)
{
	unsigned items = 0;
	const char *p = text;

	while (p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		for (size_t i = 0; i < NITEMS; i++) {
			if (strlen(item_names[i]) == n && strncmp(p, item_names[i], n) == 0) {
				items |= 1u << i;
			}
		}
		p = comma ? comma + 1 : NULL;
	}
	return items;
}

static int
digits(const char *s, size_t min, size_t max, size_t *n)
{
	size_t k = 0;

	while (s[k] >= '0' && s[k] <= '9') {
		k++;
	}
	*n = k;
	return k >= min && k <= max && s[0] != '0';
}

int
juki_jimu_valid(const char *text)
{
	size_t n;

	if (text == NULL || strlen(text) >= JUKI_JIMU_LEN) {
		return 0;
	}
	if (text[0] < '1' || text[0] > '6' || text[1] != '-') {
		return 0;
	}
	text += 2;
	if (!digits(text, 1, 3, &n)) {
		return 0;
	}
	text += n;
	if (*text == '\0') {
		return 1;
	}
	if (*text != '.') {
		return 0;
	}
	text++;
	return digits(text, 1, 2, &n) && text[n] == '\0';
}

const char *
juki_agreement_state_name(enum juki_agreement_state state)
{
	return (size_t)state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state]
									    : "unknown";
}

int
juki_agreement_next(enum juki_agreement_state state, enum juki_agreement_action action,
		    enum juki_agreement_state *next)
{
	switch (action) {
	case JUKI_AGREEMENT_APPROVE:
		if (state != JUKI_AGREEMENT_PENDING) {
			return JUKI_EINVAL;
		}
		*next = JUKI_AGREEMENT_ACTIVE;
		return 0;
	case JUKI_AGREEMENT_SUSPEND:
		if (state != JUKI_AGREEMENT_ACTIVE) {
			return JUKI_EINVAL;
		}
		*next = JUKI_AGREEMENT_SUSPENDED;
		return 0;
	case JUKI_AGREEMENT_RESUME:
		if (state != JUKI_AGREEMENT_SUSPENDED) {
			return JUKI_EINVAL;
		}
		*next = JUKI_AGREEMENT_ACTIVE;
		return 0;
	case JUKI_AGREEMENT_END:
		if (state == JUKI_AGREEMENT_ENDED) {
			return JUKI_EINVAL;
		}
		*next = JUKI_AGREEMENT_ENDED;
		return 0;
	}
	return JUKI_EINVAL;
}

static int
get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

#define BAD(f, ...)                                                                                \
	do {                                                                                       \
		say(field, field_len, "%s", f);                                                    \
		say(detail, detail_len, __VA_ARGS__);                                              \
		return JUKI_EFORMAT;                                                               \
	} while (0)

int
juki_agreement_from_json(const json_t *obj, struct juki_agreement *a, char *field, size_t field_len,
			 char *detail, size_t detail_len)
{
	static const char *const keys[] = {
	    "id",        "body",           "jimu",      "items",       "methods",
	    "daily_cap", "bulk_threshold", "keep_days", "responsible", NULL};
	const char *key, *s;
	const json_t *v;
	struct juki_ident body, resp;
	size_t i;
	int ca;

	memset(a, 0, sizeof(*a));
	if (!json_is_object(obj)) {
		BAD("agreement", "an object");
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t k = 0;

		while (keys[k] != NULL && strcmp(keys[k], key) != 0) {
			k++;
		}
		if (keys[k] == NULL) {
			BAD("agreement", "unknown key (one of id, body, jimu, items, methods, "
					 "daily_cap, bulk_threshold, keep_days, responsible)");
		}
	}
	s = json_string_value(json_object_get(obj, "id"));
	if (s == NULL || !juki_ident_token_valid(s)) {
		BAD("id", "1..32 of [a-z0-9-], not starting with -");
	}
	snprintf(a->id, sizeof(a->id), "%s", s);
	s = json_string_value(json_object_get(obj, "body"));
	if (s == NULL || juki_ident_parse(s, &body) != 0 ||
	    (body.kind != JUKI_KIND_AGENCY && body.kind != JUKI_KIND_EXEC &&
	     body.kind != JUKI_KIND_CA)) {
		BAD("body", "an agency (urn:juki:agency:<id>), executive body "
			    "(urn:juki:exec:<lg>-<name>) or certification authority "
			    "(urn:juki:ca:<id>)");
	}
	ca = body.kind == JUKI_KIND_CA;
	snprintf(a->body, sizeof(a->body), "%s", body.urn);
	v = json_object_get(obj, "jimu");
	if (ca && v != NULL && (!json_is_array(v) || json_array_size(v) != 0)) {
		/* 異動等情報 goes to the authority by 第6-8(6), not for a 事務 of 別表. */
		BAD("jimu", "a certification authority's agreement names no 事務");
	}
	if (!ca && (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > JUKI_AGREEMENT_JIMU_MAX)) {
		BAD("jimu", "an array of 1..%d 事務 (<table>-<row>)", JUKI_AGREEMENT_JIMU_MAX);
	}
	for (i = 0; !ca && i < json_array_size(v); i++) {
		s = json_string_value(json_array_get(v, i));
		if (s == NULL || !juki_jimu_valid(s)) {
			BAD("jimu", "[%zu]: <table 1-6>-<row>[.<branch>] of 住民基本台帳法 別表",
			    i);
		}
		if (juki_agreement_has_jimu(a, s)) {
			BAD("jimu", "[%zu]: named twice", i);
		}
		snprintf(a->jimu[a->njimu++], JUKI_JIMU_LEN, "%s", s);
	}
	if (juki_items_from_json(json_object_get(obj, "items"), &a->items, detail, detail_len) !=
	    0) {
		say(field, field_len, "items");
		return JUKI_EFORMAT;
	}
	v = json_object_get(obj, "methods");
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 3) {
		BAD("methods", "an array of online and/or batch, or feed");
	}
	for (i = 0; i < json_array_size(v); i++) {
		s = json_string_value(json_array_get(v, i));
		unsigned m = s == NULL                  ? 0
			     : strcmp(s, "online") == 0 ? JUKI_METHOD_ONLINE
			     : strcmp(s, "batch") == 0  ? JUKI_METHOD_BATCH
			     : strcmp(s, "feed") == 0   ? JUKI_METHOD_FEED
							: 0;
		if (m == 0 || (a->methods & m)) {
			BAD("methods", "[%zu]: online, batch or feed, each once", i);
		}
		a->methods |= m;
	}
	if (ca ? a->methods != JUKI_METHOD_FEED : (a->methods & JUKI_METHOD_FEED) != 0) {
		BAD("methods", ca ? "a certification authority's agreement has the method feed "
				    "alone"
				  : "feed is for a certification authority (urn:juki:ca:<id>)");
	}
	if (ca && json_object_get(obj, "daily_cap") == NULL) {
		a->daily_cap = JUKI_CAP_MAX; /* unused: nothing is asked under a feed */
	} else if (get_int(obj, "daily_cap", 1, JUKI_CAP_MAX, &a->daily_cap) != 0) {
		BAD("daily_cap", "queries per Japan day, 1..%lld", (long long)JUKI_CAP_MAX);
	}
	if (ca && json_object_get(obj, "bulk_threshold") == NULL) {
		a->bulk_threshold = 0;
	} else if (get_int(obj, "bulk_threshold", 0, JUKI_CAP_MAX, &a->bulk_threshold) != 0) {
		BAD("bulk_threshold", "a batch of more queries needs approval: 0..%lld",
		    (long long)JUKI_CAP_MAX);
	}
	if (get_int(obj, "keep_days", 1, 36500, &a->keep_days) != 0) {
		BAD("keep_days", "days the body may keep what it receives, 1..36500");
	}
	s = json_string_value(json_object_get(obj, "responsible"));
	if (s == NULL || juki_ident_parse(s, &resp) != 0 || resp.kind != JUKI_KIND_OP ||
	    resp.node_kind != body.kind || strcmp(resp.id, body.id) != 0) {
		BAD("responsible",
		    "a staff card of the body (urn:juki:op:<body kind>:<body id>:<staff>)");
	}
	snprintf(a->responsible, sizeof(a->responsible), "%s", resp.urn);
	a->state = JUKI_AGREEMENT_PENDING;
	return 0;
}

static json_t *
methods_json(unsigned methods)
{
	json_t *m = json_array();

	if (m != NULL && (methods & JUKI_METHOD_ONLINE)) {
		json_array_append_new(m, json_string("online"));
	}
	if (m != NULL && (methods & JUKI_METHOD_BATCH)) {
		json_array_append_new(m, json_string("batch"));
	}
	if (m != NULL && (methods & JUKI_METHOD_FEED)) {
		json_array_append_new(m, json_string("feed"));
	}
	return m;
}

json_t *
juki_agreement_to_json(const struct juki_agreement *a)
{
	json_t *jimu = json_array(), *out;
	char added[40], approved[40] = "", changed[40];

	for (size_t i = 0; jimu != NULL && i < a->njimu; i++) {
		json_array_append_new(jimu, json_string(a->jimu[i]));
	}
	juki_clock_format(a->added_ms, added, sizeof(added));
	juki_clock_format(a->changed_ms, changed, sizeof(changed));
	if (a->approved_by[0] != '\0') {
		juki_clock_format(a->approved_ms, approved, sizeof(approved));
	}
	out = json_pack("{s:s,s:s,s:o*,s:o*,s:o*,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "id", a->id,
			"body", a->body, "jimu", jimu, "items", juki_items_to_json(a->items),
			"methods", methods_json(a->methods), "daily_cap", (json_int_t)a->daily_cap,
			"bulk_threshold", (json_int_t)a->bulk_threshold, "keep_days",
			(json_int_t)a->keep_days, "responsible", a->responsible, "state",
			juki_agreement_state_name(a->state), "added_by", a->added_by, "added",
			added, "changed", changed);
	if (out != NULL && a->approved_by[0] != '\0') {
		json_object_set_new(out, "approved_by", json_string(a->approved_by));
		json_object_set_new(out, "approved", json_string(approved));
	}
	return out;
}

int
juki_agreement_has_jimu(const struct juki_agreement *a, const char *jimu)
{
	for (size_t i = 0; i < a->njimu; i++) {
		if (strcmp(a->jimu[i], jimu) == 0) {
			return 1;
		}
	}
	return 0;
}

int
juki_agreement_check(const struct juki_agreement *a, const struct juki_provide_ask *ask,
		     const char **reason, char *detail, size_t len)
{
	unsigned extra;

	if (a == NULL || strcmp(a->body, ask->sender->urn) != 0) {
		/* Another body's agreement is none of this one's business. */
		*reason = JUKI_R_NO_AGREEMENT;
		say(detail, len, "agreement: no such agreement with %s", ask->sender->urn);
		return JUKI_EPERM;
	}
	if (a->state != JUKI_AGREEMENT_ACTIVE) {
		*reason = JUKI_R_AGREEMENT_INACTIVE;
		say(detail, len, "agreement: %s is %s", a->id, juki_agreement_state_name(a->state));
		return JUKI_EPERM;
	}
	if (ask->jimu == NULL || !juki_agreement_has_jimu(a, ask->jimu)) {
		*reason = JUKI_R_JIMU_NOT_AGREED;
		say(detail, len, "jimu: not a 事務 of agreement %s", a->id);
		return JUKI_EPERM;
	}
	extra = ask->items & ~a->items;
	if (extra != 0) {
		for (unsigned bit = 1; bit <= JUKI_ITEMS_ALL; bit <<= 1) {
			if (extra & bit) {
				*reason = JUKI_R_ITEM_NOT_AGREED;
				say(detail, len, "items: %s is not allowed by agreement %s",
				    juki_item_name(bit), a->id);
				return JUKI_EPERM;
			}
		}
	}
	if ((a->methods & ask->method) == 0) {
		*reason = JUKI_R_METHOD_NOT_AGREED;
		say(detail, len, "method: %s is not allowed by agreement %s",
		    ask->method == JUKI_METHOD_BATCH ? "batch" : "online", a->id);
		return JUKI_EPERM;
	}
	if (ask->n > a->daily_cap - ask->used) {
		*reason = JUKI_R_OVER_CAP;
		say(detail, len,
		    "agreement %s: %lld of %lld queries used today (Japan day), %lld asked", a->id,
		    (long long)ask->used, (long long)a->daily_cap, (long long)ask->n);
		return JUKI_EPERM;
	}
	return 0;
}

/* -- the 事務 list --------------------------------------------------------- */

struct jimu_entry {
	char id[JUKI_JIMU_LEN];
	char *title;
};

struct juki_jimu_list {
	struct jimu_entry *e;
	size_t n;
};

void
juki_jimu_list_free(struct juki_jimu_list *list)
{
	if (list == NULL) {
		return;
	}
	for (size_t i = 0; i < list->n; i++) {
		free(list->e[i].title);
	}
	free(list->e);
	free(list);
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t') {
		s++;
	}
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
		*--end = '\0';
	}
	return s;
}

int
juki_jimu_list_parse(const char *text, size_t len, struct juki_jimu_list **out, char *err,
		     size_t errlen)
{
	struct juki_jimu_list *list = calloc(1, sizeof(*list));
	char *copy = malloc(len + 1), *line, *next;
	size_t lineno = 0, cap = 0;
	int rc = 0, header_ok = 1;

	*out = NULL;
	if (list == NULL || copy == NULL) {
		free(copy);
		free(list);
		return JUKI_ENOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		say(err, errlen, "line 1: a NUL byte");
		rc = JUKI_EFORMAT;
		goto out;
	}
	for (line = copy; line != NULL && rc == 0; line = next) {
		char *table, *row, *title, *c1, *c2, id[32];

		next = strchr(line, '\n');
		if (next != NULL) {
			*next++ = '\0';
		}
		lineno++;
		line = trim(line);
		if (line[0] == '\0' || line[0] == '#') {
			continue;
		}
		if (header_ok && strcmp(line, "table,row,title") == 0) {
			header_ok = 0;
			continue;
		}
		header_ok = 0;
		c1 = strchr(line, ',');
		c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		if (c2 == NULL) {
			say(err, errlen, "line %zu: expected table,row,title", lineno);
			rc = JUKI_EFORMAT;
			break;
		}
		*c1 = '\0';
		*c2 = '\0';
		table = trim(line);
		row = trim(c1 + 1);
		title = trim(c2 + 1);
		snprintf(id, sizeof(id), "%.4s-%.12s", table, row);
		if (strlen(table) != 1 || !juki_jimu_valid(id) || title[0] == '\0' ||
		    strlen(title) > 1000) {
			say(err, errlen,
			    "line %zu: table 1-6, row 1-999[.branch] and a title of 1..1000 bytes",
			    lineno);
			rc = JUKI_EFORMAT;
			break;
		}
		if (juki_jimu_list_title(list, id) != NULL) {
			say(err, errlen, "line %zu: 事務 %s listed twice", lineno, id);
			rc = JUKI_EFORMAT;
			break;
		}
		if (list->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct jimu_entry *e = realloc(list->e, ncap * sizeof(*e));

			if (e == NULL) {
				rc = JUKI_ENOMEM;
				break;
			}
			list->e = e;
			cap = ncap;
		}
		memcpy(list->e[list->n].id, id, strlen(id) + 1); /* juki_jimu_valid(): it fits */
		list->e[list->n].title = strdup(title);
		if (list->e[list->n].title == NULL) {
			rc = JUKI_ENOMEM;
			break;
		}
		list->n++;
	}
out:
	free(copy);
	if (rc != 0) {
		juki_jimu_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

size_t
juki_jimu_list_count(const struct juki_jimu_list *list)
{
	return list != NULL ? list->n : 0;
}

const char *
juki_jimu_list_title(const struct juki_jimu_list *list, const char *jimu)
{
	for (size_t i = 0; list != NULL && i < list->n; i++) {
		if (strcmp(list->e[i].id, jimu) == 0) {
			return list->e[i].title;
		}
	}
	return NULL;
}

json_t *
juki_jimu_list_json(const struct juki_jimu_list *list)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && list != NULL && i < list->n; i++) {
		json_array_append_new(
		    a, json_pack("{s:s,s:s}", "jimu", list->e[i].id, "title", list->e[i].title));
	}
	return a;
}

/* -- the store ------------------------------------------------------------- */

static void
jimu_join(const struct juki_agreement *a, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->njimu && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? "," : "", a->jimu[i]);

		off += w > 0 ? (size_t)w : 0;
	}
}

static void
row_to(sqlite3_stmt *st, struct juki_agreement *a)
{
	const char *jimu = (const char *)sqlite3_column_text(st, 2);

	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", sqlite3_column_text(st, 0));
	snprintf(a->body, sizeof(a->body), "%s", sqlite3_column_text(st, 1));
	while (jimu != NULL && *jimu != '\0' && a->njimu < JUKI_AGREEMENT_JIMU_MAX) {
		const char *comma = strchr(jimu, ',');
		size_t n = comma ? (size_t)(comma - jimu) : strlen(jimu);

		snprintf(a->jimu[a->njimu++], JUKI_JIMU_LEN, "%.*s", (int)n, jimu);
		jimu = comma ? comma + 1 : NULL;
	}
	a->items = (unsigned)sqlite3_column_int(st, 3);
	a->methods = (unsigned)sqlite3_column_int(st, 4);
	a->daily_cap = sqlite3_column_int64(st, 5);
	a->bulk_threshold = sqlite3_column_int64(st, 6);
	a->keep_days = sqlite3_column_int64(st, 7);
	snprintf(a->responsible, sizeof(a->responsible), "%s", sqlite3_column_text(st, 8));
	a->state = (enum juki_agreement_state)sqlite3_column_int(st, 9);
	snprintf(a->added_by, sizeof(a->added_by), "%s", sqlite3_column_text(st, 10));
	a->added_ms = sqlite3_column_int64(st, 11);
	snprintf(a->approved_by, sizeof(a->approved_by), "%s", sqlite3_column_text(st, 12));
	a->approved_ms = sqlite3_column_int64(st, 13);
	a->changed_ms = sqlite3_column_int64(st, 14);
}

int
juki_agreement_get(struct juki_store *store, const char *id, struct juki_agreement *a)
{
	static const char sql[] =
	    "SELECT id, body, jimu, items, methods, daily_cap, bulk_threshold, keep_days,"
	    " responsible, state, added_by, added_ms, approved_by, approved_ms, changed_ms"
	    " FROM agreements WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to(st, a);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
}

int
juki_agreement_feed(struct juki_store *store, const char *body, struct juki_agreement *a)
{
	static const char sql[] =
	    "SELECT id, body, jimu, items, methods, daily_cap, bulk_threshold, keep_days,"
	    " responsible, state, added_by, added_ms, approved_by, approved_ms, changed_ms"
	    " FROM agreements WHERE body = ?1 AND state = ?2 AND (methods & ?3) != 0"
	    " ORDER BY id LIMIT 1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)JUKI_AGREEMENT_ACTIVE);
	sqlite3_bind_int(st, 3, (int)JUKI_METHOD_FEED);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to(st, a);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
}

int
juki_agreement_insert(struct juki_store *store, const struct juki_agreement *a)
{
	static const char sql[] =
	    "INSERT INTO agreements (id, body, jimu, items, methods, daily_cap, bulk_threshold,"
	    " keep_days, responsible, state, added_by, added_ms, approved_by, approved_ms,"
	    " changed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?15)";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	char jimu[JUKI_AGREEMENT_JIMU_MAX * JUKI_JIMU_LEN];
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	jimu_join(a, jimu, sizeof(jimu));
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, jimu, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, (int)a->items);
	sqlite3_bind_int(st, 5, (int)a->methods);
	sqlite3_bind_int64(st, 6, a->daily_cap);
	sqlite3_bind_int64(st, 7, a->bulk_threshold);
	sqlite3_bind_int64(st, 8, a->keep_days);
	sqlite3_bind_text(st, 9, a->responsible, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, (int)a->state);
	sqlite3_bind_text(st, 11, a->added_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, a->added_ms);
	sqlite3_bind_text(st, 13, a->approved_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, a->approved_ms);
	sqlite3_bind_int64(st, 15, a->changed_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		return JUKI_EDUP;
	}
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_agreement_update_state(struct juki_store *store, const struct juki_agreement *a)
{
	static const char sql[] = "UPDATE agreements SET state = ?2, approved_by = ?3,"
				  " approved_ms = ?4, changed_ms = ?5 WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)a->state);
	sqlite3_bind_text(st, 3, a->approved_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, a->approved_ms);
	sqlite3_bind_int64(st, 5, a->changed_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	return sqlite3_changes(juki_store_db(store)) == 1 ? 0 : JUKI_ENOTFOUND;
}

json_t *
juki_agreement_list_json(struct juki_store *store, const char *state)
{
	static const char sql[] =
	    "SELECT id, body, jimu, items, methods, daily_cap, bulk_threshold, keep_days,"
	    " responsible, state, added_by, added_ms, approved_by, approved_ms, changed_ms"
	    " FROM agreements ORDER BY id";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();
	struct juki_agreement a;
	int rc;

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to(st, &a);
		if (state == NULL || strcmp(state, juki_agreement_state_name(a.state)) == 0) {
			json_array_append_new(out, juki_agreement_to_json(&a));
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int
juki_agreement_used(struct juki_store *store, const char *agreement, int64_t day, int64_t *used)
{
	static const char sql[] = "SELECT n FROM provide_daily WHERE agreement = ?1 AND day = ?2";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	*used = 0;
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, agreement, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*used = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_agreement_count(struct juki_store *store, const char *agreement, int64_t day, int64_t n)
{
	static const char sql[] =
	    "INSERT INTO provide_daily (agreement, day, n) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (agreement, day) DO UPDATE SET n = n + ?3";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, agreement, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, day);
	sqlite3_bind_int64(st, 3, n);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_batch_take(struct juki_store *store, const struct juki_batch_part *p, int64_t now_ms,
		char *detail, size_t len)
{
	static const char sql_get[] =
	    "SELECT body, agreement, count, parts, answered FROM provide_batches WHERE id = ?1";
	static const char sql_new[] =
	    "INSERT INTO provide_batches (id, body, agreement, count,"
	    " parts, answered, first_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)";
	static const char sql_seen[] =
	    "SELECT 1 FROM provide_batch_parts WHERE batch = ?1 AND part = ?2";
	static const char sql_part[] =
	    "INSERT INTO provide_batch_parts (batch, part) VALUES (?1, ?2)";
	static const char sql_add[] = "UPDATE provide_batches SET answered = answered + ?2"
				      " WHERE id = ?1";
	sqlite3_stmt *st;
	int64_t answered = 0;
	int rc, same = 1;

	if ((st = juki_store_prepare(store, sql_get)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		same = strcmp((const char *)sqlite3_column_text(st, 0), p->body) == 0 &&
		       strcmp((const char *)sqlite3_column_text(st, 1), p->agreement) == 0 &&
		       sqlite3_column_int64(st, 2) == p->count &&
		       sqlite3_column_int64(st, 3) == p->parts;
		answered = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	if (!same) {
		say(detail, len, "batch: %s was begun with another body, agreement, count or parts",
		    p->id);
		return JUKI_EINVAL;
	}
	if (rc == SQLITE_DONE) {
		if ((st = juki_store_prepare(store, sql_new)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, p->body, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, p->agreement, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, p->count);
		sqlite3_bind_int64(st, 5, p->parts);
		sqlite3_bind_int64(st, 6, now_ms);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			return JUKI_ESTORE;
		}
	}
	if ((st = juki_store_prepare(store, sql_seen)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p->part);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		say(detail, len, "batch: part %lld was answered before", (long long)p->part);
		return JUKI_EINVAL;
	}
	if (rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	if (answered + p->n > p->count) {
		say(detail, len, "batch: its parts hold more queries than count (%lld)",
		    (long long)p->count);
		return JUKI_EINVAL;
	}
	if ((st = juki_store_prepare(store, sql_part)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p->part);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || (st = juki_store_prepare(store, sql_add)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p->n);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* -- requests -------------------------------------------------------------- */

static int refuse(const char **reason, const char *code, char *detail, size_t len, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));

static int
refuse(const char **reason, const char *code, char *detail, size_t len, const char *fmt, ...)
{
	va_list ap;

	*reason = code;
	if (detail != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(detail, len, fmt, ap);
		va_end(ap);
	}
	return JUKI_EFORMAT;
}

static int
listed(const char *key, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++) {
		if (strcmp(keys[i], key) == 0) {
			return 1;
		}
	}
	return 0;
}

static int
read_batch_header(const json_t *b, struct juki_batch_part *bp, const char **reason, char *detail,
		  size_t len)
{
	static const char *const keys[] = {"id", "count", "part", "parts", NULL};
	const char *key;
	const json_t *v;
	json_int_t count, part, parts;

	if (!json_is_object(b) || json_object_size(b) != 4) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len,
			      "batch: an object of exactly id, count, part, parts");
	}
	json_object_foreach((json_t *)b, key, v)
	{
		if (!listed(key, keys)) {
			return refuse(reason, JUKI_R_BAD_BATCH, detail, len,
				      "batch: an object of exactly id, count, part, parts");
		}
	}
	bp->id = json_string_value(json_object_get(b, "id"));
	if (bp->id == NULL || !juki_uuid_valid(bp->id)) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len, "batch.id: a UUIDv7");
	}
	if (!json_is_integer(json_object_get(b, "count")) ||
	    !json_is_integer(json_object_get(b, "part")) ||
	    !json_is_integer(json_object_get(b, "parts"))) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len,
			      "batch: count, part and parts are integers");
	}
	count = json_integer_value(json_object_get(b, "count"));
	part = json_integer_value(json_object_get(b, "part"));
	parts = json_integer_value(json_object_get(b, "parts"));
	if (parts < 1 || parts > JUKI_PROVIDE_PARTS_MAX) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len, "batch.parts: 1..%d",
			      JUKI_PROVIDE_PARTS_MAX);
	}
	if (part < 0 || part >= parts) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len, "batch.part: 0..parts-1");
	}
	if (count < parts || count > parts * (json_int_t)JUKI_PROVIDE_PART_MAX) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len,
			      "batch.count: parts..parts*%d (no part is empty)",
			      JUKI_PROVIDE_PART_MAX);
	}
	bp->count = count;
	bp->part = part;
	bp->parts = parts;
	return 0;
}

int
juki_provide_request_read(const json_t *body, int batch, struct juki_provide_request *r,
			  const char **reason, char *detail, size_t len)
{
	static const char *const query_keys[] = {"agreement", "jimu", "purpose", "items", NULL};
	static const char *const batch_keys[] = {"agreement", "jimu",    "purpose",  "items",
						 "batch",     "queries", "approval", NULL};
	const json_t *items, *v;
	const char *key;
	char why[160];
	size_t n;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(body)) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len, "body: an object");
	}
	if (batch) {
		json_object_foreach((json_t *)body, key, v)
		{
			if (!listed(key, batch_keys)) {
				return refuse(reason, JUKI_R_BAD_FIELD, detail, len,
					      "body: unknown key (agreement, jimu, purpose, "
					      "items, batch, queries, approval)");
			}
		}
	}
	r->agreement = json_string_value(json_object_get(body, "agreement"));
	r->jimu = json_string_value(json_object_get(body, "jimu"));
	r->purpose = json_string_value(json_object_get(body, "purpose"));
	if (r->agreement == NULL || !juki_ident_token_valid(r->agreement)) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len,
			      "agreement: the id of an agreement, 1..32 of [a-z0-9-]");
	}
	if (r->jimu == NULL || !juki_jimu_valid(r->jimu)) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len,
			      "jimu: a 事務 as <table 1-6>-<row>[.<branch>]");
	}
	if (r->purpose == NULL ||
	    juki_text_valid(r->purpose, JUKI_PURPOSE_CHARS * 4, why, sizeof(why)) != 0 ||
	    u8_mbsnlen((const uint8_t *)r->purpose, strlen(r->purpose)) > JUKI_PURPOSE_CHARS) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len,
			      "purpose: 1..200 characters of UTF-8 NFC without control "
			      "characters");
	}
	items = json_object_get(body, "items");
	if (items != NULL && juki_items_from_json(items, &r->items, why, sizeof(why)) != 0) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len, "items%s", why);
	}
	if (!batch) {
		struct juki_field_error fe;

		if (juki_provide_query_from_json(body, query_keys, &r->query, &fe) != 0) {
			return refuse(reason, fe.reason ? fe.reason : JUKI_R_BAD_FIELD, detail, len,
				      "%s: %s", fe.field, fe.detail);
		}
		return 0;
	}
	if (read_batch_header(json_object_get(body, "batch"), &r->batch, reason, detail, len) !=
	    0) {
		return JUKI_EFORMAT;
	}
	r->queries = json_object_get(body, "queries");
	n = json_array_size(r->queries);
	if (!json_is_array(r->queries) || n == 0 || n > JUKI_PROVIDE_PART_MAX) {
		return refuse(reason, JUKI_R_BAD_BATCH, detail, len,
			      "queries: an array of 1..%d queries", JUKI_PROVIDE_PART_MAX);
	}
	r->batch.n = (int64_t)n;
	r->approval = json_object_get(body, "approval");
	if (r->approval != NULL && !json_is_object(r->approval)) {
		return refuse(reason, JUKI_R_BAD_FIELD, detail, len,
			      "approval: an object (responsible, cert, parts, sig)");
	}
	return 0;
}
