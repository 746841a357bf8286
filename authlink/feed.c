#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "feed.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/store/outbox.h"

const struct juki_migration feed_steps[FEED_NSTEPS] = {
    {1, "CREATE TABLE feed ("
	" seq INTEGER PRIMARY KEY,"
	" id TEXT NOT NULL UNIQUE,"
	" source TEXT NOT NULL,"
	" agreement TEXT NOT NULL,"
	" retention_days INTEGER NOT NULL,"
	" code TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" date TEXT NOT NULL,"
	" items TEXT,"
	" new_code TEXT,"
	" digest BLOB NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" acked_ms INTEGER);"
	"CREATE INDEX feed_unacked ON feed(seq) WHERE acked_ms IS NULL;"
	"CREATE INDEX feed_acked ON feed(acked_ms) WHERE acked_ms IS NOT NULL;"
	"CREATE TABLE feed_state ("
	" one INTEGER PRIMARY KEY CHECK (one = 1),"
	" next_seq INTEGER NOT NULL,"
	" last_digest BLOB NOT NULL,"
	" acked_seq INTEGER NOT NULL);"
	"INSERT INTO feed_state VALUES (1, 1, zeroblob(32), 0);"
	"CREATE TABLE feed_out ("
	" msg_id TEXT PRIMARY KEY,"
	" first_seq INTEGER NOT NULL,"
	" last_seq INTEGER NOT NULL) WITHOUT ROWID;"},
};

const char feed_purge_count[] =
    "SELECT count(*) FROM feed WHERE acked_ms IS NOT NULL AND acked_ms < ?1";
const char feed_purge_delete[] = "DELETE FROM feed WHERE seq IN (SELECT seq FROM feed"
				 " WHERE acked_ms IS NOT NULL AND acked_ms < ?1 LIMIT ?2)";

/* Refuse with detail "<field>: <rule>" (never the value). */
static int
refuse(struct juki_reject *rej, const char *reason, const char *field, const char *rule)
{
	juki_reject_set(rej, reason, "%s: %s", field, rule);
	return JUKI_REJECT;
}

int
feed_entry_from_json(const json_t *obj, struct feed_entry *e, struct juki_reject *rej)
{
	struct juki_field_error fe;
	struct juki_idou in;

	memset(e, 0, sizeof(*e));
	memset(&fe, 0, sizeof(fe));
	if (juki_idou_from_json(obj, &in, &fe) != 0) {
		juki_reject_set(rej, fe.reason != NULL ? fe.reason : JUKI_R_BAD_FIELD, "%s: %s",
				fe.field[0] ? fe.field : "entry", fe.detail);
		return JUKI_REJECT;
	}
	snprintf(e->id, sizeof(e->id), "%s", in.id);
	snprintf(e->code, sizeof(e->code), "%s", in.code);
	snprintf(e->kind, sizeof(e->kind), "%s", juki_idou_kind_name(in.kind));
	snprintf(e->date, sizeof(e->date), "%s", in.date);
	if (in.kind == JUKI_IDOU_CHANGE) {
		e->has_items = 1;
		e->items = in.items;
	}
	snprintf(e->new_code, sizeof(e->new_code), "%s", in.new_code);
	return 0;
}

int
feed_idou_read(const json_t *body, const char *ca, const char *source, struct feed_header *hdr,
	       struct feed_entry **out, size_t *n, struct juki_reject *rej)
{
	const json_t *entries = json_object_get(body, "entries");
	const json_t *days = json_object_get(body, "retention_days");
	const char *their_ca = json_string_value(json_object_get(body, "ca"));
	const char *agreement = json_string_value(json_object_get(body, "agreement"));
	struct feed_entry *e;
	const char *key;
	const json_t *v;
	size_t count;
	int rc;

	*out = NULL;
	*n = 0;
	json_object_foreach((json_t *)body, key, v)
	{
		if (strcmp(key, "ca") != 0 && strcmp(key, "agreement") != 0 &&
		    strcmp(key, "retention_days") != 0 && strcmp(key, "entries") != 0) {
			return refuse(rej, JUKI_R_BAD_FIELD, "body", "unknown key");
		}
	}
	if (their_ca == NULL) {
		return refuse(rej, JUKI_R_BAD_FIELD, "ca", "the authority's urn");
	}
	if (strcmp(their_ca, ca) != 0) {
		juki_reject_set(rej, JUKI_R_NINSHO_WRONG_CA, "this link server feeds %s", ca);
		return JUKI_REJECT;
	}
	if (agreement == NULL || agreement[0] == '\0' || strlen(agreement) > FEED_AGREEMENT_MAX) {
		return refuse(rej, JUKI_R_BAD_FIELD, "agreement", "an id of 1 to 64 bytes");
	}
	for (const char *p = agreement; *p; p++) {
		if (*p <= ' ' || *p > '~') {
			return refuse(rej, JUKI_R_BAD_FIELD, "agreement", "printable ASCII only");
		}
	}
	if (!json_is_integer(days) || json_integer_value(days) < 0 ||
	    json_integer_value(days) > 36500) {
		return refuse(rej, JUKI_R_BAD_FIELD, "retention_days", "0 to 36500");
	}
	count = json_array_size(entries);
	if (!json_is_array(entries) || count == 0 || count > FEED_MAX_ENTRIES) {
		return refuse(rej, JUKI_R_BAD_FIELD, "entries", "1 to 1000 entries");
	}
	if ((e = calloc(count, sizeof(*e))) == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		if ((rc = feed_entry_from_json(json_array_get(entries, i), &e[i], rej)) != 0) {
			char detail[sizeof(rej->detail)];

			snprintf(detail, sizeof(detail), "%s", rej->detail);
			snprintf(rej->detail, sizeof(rej->detail), "entries[%zu].%.200s", i,
				 detail);
			free(e);
			return rc;
		}
	}
	memset(hdr, 0, sizeof(*hdr));
	snprintf(hdr->ca, sizeof(hdr->ca), "%s", ca);
	snprintf(hdr->source, sizeof(hdr->source), "%s", source);
	snprintf(hdr->agreement, sizeof(hdr->agreement), "%s", agreement);
	hdr->retention_days = json_integer_value(days);
	*out = e;
	*n = count;
	return 0;
}

int
feed_resend_read(const json_t *body, int64_t *from, struct juki_reject *rej)
{
	const json_t *v = json_object_get(body, "from");

	if (!json_is_integer(v) || json_object_size(body) != 1) {
		return refuse(rej, JUKI_R_BAD_FIELD, "from", "the first seq to send again");
	}
	*from = json_integer_value(v);
	return 0;
}

size_t
feed_line(const struct feed_entry *e, char *buf, size_t len)
{
	char sex[4] = "";
	int n;

	if (e->has_items) {
		snprintf(sex, sizeof(sex), "%d", e->items.sex);
	}
	n = snprintf(buf, len,
		     FEED_LINE_TAG "\n%" PRId64 "\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n",
		     e->seq, e->id, e->code, e->kind, e->date, e->has_items ? e->items.name : "",
		     e->has_items ? e->items.birth : "", sex, e->has_items ? e->items.lgcode : "",
		     e->has_items ? e->items.address : "", e->new_code);
	return n < 0 ? 0 : (size_t)n;
}

int
feed_digest_next(const unsigned char prev[FEED_DIGEST_LEN], const struct feed_entry *e,
		 unsigned char out[FEED_DIGEST_LEN])
{
	char line[2048];
	size_t n = feed_line(e, line, sizeof(line));
	EVP_MD_CTX *ctx;
	int ok;

	if (n == 0 || n >= sizeof(line)) {
		return JUKI_EINVAL;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		return JUKI_ENOMEM;
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, prev, FEED_DIGEST_LEN) == 1 &&
	     EVP_DigestUpdate(ctx, line, n) == 1 && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : JUKI_ENOMEM;
}

static json_t *
items_json(const struct feed_entry *e)
{
	return json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", e->items.name, "birth", e->items.birth,
			 "sex", e->items.sex, "address", e->items.address, "lgcode",
			 e->items.lgcode);
}

json_t *
feed_entry_to_json(const struct feed_entry *e)
{
	char hex[FEED_DIGEST_HEX + 1];
	json_t *o;

	juki_hex_encode(e->digest, FEED_DIGEST_LEN, hex);
	o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)e->seq, "digest", hex, "id",
		      e->id, "code", e->code, "kind", e->kind, "date", e->date);
	if (o == NULL) {
		return NULL;
	}
	if (e->has_items && json_object_set_new(o, "items", items_json(e)) != 0) {
		json_decref(o);
		return NULL;
	}
	if (e->new_code[0] && json_object_set_new(o, "new_code", json_string(e->new_code)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? JUKI_EDUP : JUKI_ESTORE;
}

static int
state_read(struct juki_store *store, int64_t *next_seq, unsigned char last[FEED_DIGEST_LEN],
	   int64_t *acked_seq)
{
	static const char sql[] = "SELECT next_seq, last_digest, acked_seq FROM feed_state";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc = JUKI_ESTORE;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == FEED_DIGEST_LEN) {
		*next_seq = sqlite3_column_int64(st, 0);
		if (last != NULL) {
			memcpy(last, sqlite3_column_blob(st, 1), FEED_DIGEST_LEN);
		}
		if (acked_seq != NULL) {
			*acked_seq = sqlite3_column_int64(st, 2);
		}
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}

/* Queue one ninsho.feed message of entries (an array) and note its range. */
static int
queue_feed(struct juki_store *store, const struct juki_clock *clock, const char *self,
	   const struct feed_header *hdr, json_t *entries, int64_t first, int64_t last,
	   int64_t now_ms)
{
	static const char sql[] =
	    "INSERT INTO feed_out(msg_id, first_seq, last_seq) VALUES(?1,?2,?3)";
	struct juki_msg msg;
	sqlite3_stmt *st;
	json_t *body;
	int rc;

	body = json_pack("{s:{s:s,s:s,s:s,s:I},s:O}", "header", "ca", hdr->ca, "source",
			 hdr->source, "agreement", hdr->agreement, "retention_days",
			 (json_int_t)hdr->retention_days, "entries", entries);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	if (juki_msg_init(&msg, JUKI_MSG_NINSHO_FEED, self, hdr->ca, NULL, body, clock) != 0) {
		return JUKI_ENOMEM;
	}
	rc = juki_outbox_put(store, &msg, "ninsho", now_ms, NULL);
	if (rc == 0) {
		if ((st = juki_store_prepare(store, sql)) == NULL) {
			rc = JUKI_ESTORE;
		} else {
			sqlite3_bind_text(st, 1, msg.id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, first);
			sqlite3_bind_int64(st, 3, last);
			rc = step_done(st);
		}
	}
	juki_msg_clear(&msg);
	return rc;
}

int
feed_entry_held(struct juki_store *store, const struct feed_entry *e)
{
	static const char sql[] = "SELECT code, kind, date, items, coalesce(new_code, '')"
				  " FROM feed WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	char *items = NULL;
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return JUKI_ESTORE;
	}
	if (e->has_items) {
		json_t *it = items_json(e);

		items = it ? json_dumps(it, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(it);
		if (items == NULL) {
			sqlite3_reset(st);
			return JUKI_ENOMEM;
		}
	}
	/* Items are kept as written by feed_append(): the same text for the same items. */
	rc = strcmp((const char *)sqlite3_column_text(st, 0), e->code) == 0 &&
		     strcmp((const char *)sqlite3_column_text(st, 1), e->kind) == 0 &&
		     strcmp((const char *)sqlite3_column_text(st, 2), e->date) == 0 &&
		     strcmp((const char *)sqlite3_column_text(st, 4), e->new_code) == 0 &&
		     (sqlite3_column_type(st, 3) == SQLITE_NULL
			  ? items == NULL
			  : items != NULL &&
				strcmp((const char *)sqlite3_column_text(st, 3), items) == 0)
		 ? 1
		 : 2;
	free(items);
	sqlite3_reset(st);
	return rc;
}

int
feed_append(struct juki_store *store, const struct juki_clock *clock, const char *self,
	    const struct feed_header *hdr, struct feed_entry *e, size_t n, int64_t now_ms,
	    size_t *dup_index)
{
	static const char ins[] =
	    "INSERT INTO feed(seq, id, source, agreement, retention_days, code, kind, date, items,"
	    " new_code, digest, received_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)";
	static const char upd[] = "UPDATE feed_state SET next_seq = ?1, last_digest = ?2";
	unsigned char last[FEED_DIGEST_LEN];
	int64_t next;
	json_t *entries;
	sqlite3_stmt *st;
	int rc;

	if (n == 0 || n > FEED_MAX_ENTRIES) {
		return JUKI_EINVAL;
	}
	if ((rc = state_read(store, &next, last, NULL)) != 0) {
		return rc;
	}
	if ((entries = json_array()) == NULL) {
		return JUKI_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		char *items = NULL;

		e[i].seq = next + (int64_t)i;
		if ((rc = feed_digest_next(last, &e[i], e[i].digest)) != 0) {
			goto out;
		}
		memcpy(last, e[i].digest, FEED_DIGEST_LEN);
		if (e[i].has_items) {
			json_t *it = items_json(&e[i]);

			items = it ? json_dumps(it, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			json_decref(it);
			if (items == NULL) {
				rc = JUKI_ENOMEM;
				goto out;
			}
		}
		if ((st = juki_store_prepare(store, ins)) == NULL) {
			free(items);
			rc = JUKI_ESTORE;
			goto out;
		}
		sqlite3_bind_int64(st, 1, e[i].seq);
		sqlite3_bind_text(st, 2, e[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hdr->source, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, hdr->agreement, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, hdr->retention_days);
		sqlite3_bind_text(st, 6, e[i].code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, e[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, e[i].date, -1, SQLITE_STATIC);
		if (items != NULL) {
			sqlite3_bind_text(st, 9, items, -1, free);
		}
		if (e[i].new_code[0]) {
			sqlite3_bind_text(st, 10, e[i].new_code, -1, SQLITE_STATIC);
		}
		sqlite3_bind_blob(st, 11, e[i].digest, FEED_DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 12, now_ms);
		rc = step_done(st);
		if (rc == JUKI_EDUP && dup_index != NULL) {
			*dup_index = i;
		}
		if (rc != 0) {
			goto out;
		}
		if (json_array_append_new(entries, feed_entry_to_json(&e[i])) != 0) {
			rc = JUKI_ENOMEM;
			goto out;
		}
	}
	if ((st = juki_store_prepare(store, upd)) == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, next + (int64_t)n);
	sqlite3_bind_blob(st, 2, last, FEED_DIGEST_LEN, SQLITE_STATIC);
	if ((rc = step_done(st)) != 0) {
		goto out;
	}
	rc = queue_feed(store, clock, self, hdr, entries, next, next + (int64_t)n - 1, now_ms);
out:
	json_decref(entries);
	return rc;
}

static int64_t
scalar(struct juki_store *store, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int64_t v = dflt;

	if (st != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			v = sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
	}
	return v;
}

int
feed_counts(struct juki_store *store, struct feed_counts *c)
{
	static const char sql_unacked[] = "SELECT count(*) FROM feed WHERE acked_ms IS NULL";
	static const char sql_oldest[] =
	    "SELECT received_ms FROM feed WHERE acked_ms IS NULL ORDER BY seq LIMIT 1";
	static const char sql_first[] = "SELECT min(seq) FROM feed";
	int64_t next, first;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = state_read(store, &next, NULL, &c->acked_seq)) != 0) {
		return rc;
	}
	c->last_seq = next - 1;
	c->unacked = scalar(store, sql_unacked, 0);
	c->oldest_unacked_ms = scalar(store, sql_oldest, 0);
	first = scalar(store, sql_first, next);
	c->erased_to = first - 1;
	return 0;
}

int
feed_on_ack(struct juki_store *store, const char *msg_id, const json_t *result, int64_t now_ms,
	    char *why, size_t whylen)
{
	static const char sql_out[] = "SELECT first_seq, last_seq FROM feed_out WHERE msg_id = ?1";
	static const char sql_del[] = "DELETE FROM feed_out WHERE msg_id = ?1";
	static const char sql_digest[] = "SELECT digest FROM feed WHERE seq = ?1";
	static const char sql_ack[] = "UPDATE feed SET acked_ms = ?3 WHERE seq BETWEEN ?1 AND ?2"
				      " AND acked_ms IS NULL";
	static const char sql_state[] = "UPDATE feed_state SET acked_seq = max(acked_seq, ?1)";
	unsigned char theirs[FEED_DIGEST_LEN];
	int64_t first = 0, last = 0;
	const json_t *seq;
	sqlite3_stmt *st;
	int rc, found = 0, same = 0;

	if ((st = juki_store_prepare(store, sql_out)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		first = sqlite3_column_int64(st, 0);
		last = sqlite3_column_int64(st, 1);
		found = 1;
	}
	sqlite3_reset(st);
	if (!found) {
		return JUKI_ENOTFOUND;
	}
	seq = json_object_get(result, "seq");
	if (!json_is_integer(seq) ||
	    juki_hex_decode(json_string_value(json_object_get(result, "digest")), theirs,
			    FEED_DIGEST_LEN) != 0) {
		snprintf(why, whylen,
			 "ack of entries %" PRId64 "-%" PRId64 " without a result {seq, digest}",
			 first, last);
		return JUKI_EPROTO;
	}
	if (json_integer_value(seq) != last) {
		snprintf(why, whylen,
			 "ack of entries %" PRId64 "-%" PRId64 " names seq %" JSON_INTEGER_FORMAT,
			 first, last, json_integer_value(seq));
		return JUKI_EPROTO;
	}
	if ((st = juki_store_prepare(store, sql_digest)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, last);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == FEED_DIGEST_LEN) {
		same = memcmp(sqlite3_column_blob(st, 0), theirs, FEED_DIGEST_LEN) == 0;
	}
	sqlite3_reset(st);
	if (!same) {
		snprintf(why, whylen, "the authority's digest at seq %" PRId64 " is not ours",
			 last);
		return JUKI_EPROTO;
	}
	if ((st = juki_store_prepare(store, sql_ack)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_int64(st, 3, now_ms);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_state)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, last);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_del)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
	return step_done(st);
}

/* Read row seq's entry and header. 0, JUKI_ENOTFOUND, JUKI_ESTORE. */
static int
row_read(sqlite3_stmt *st, struct feed_entry *e, struct feed_header *h)
{
	const char *items = (const char *)sqlite3_column_text(st, 8);
	const char *nc = (const char *)sqlite3_column_text(st, 9);

	memset(e, 0, sizeof(*e));
	e->seq = sqlite3_column_int64(st, 0);
	snprintf(e->id, sizeof(e->id), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(h->source, sizeof(h->source), "%s", (const char *)sqlite3_column_text(st, 2));
	snprintf(h->agreement, sizeof(h->agreement), "%s",
		 (const char *)sqlite3_column_text(st, 3));
	h->retention_days = sqlite3_column_int64(st, 4);
	snprintf(e->code, sizeof(e->code), "%s", (const char *)sqlite3_column_text(st, 5));
	snprintf(e->kind, sizeof(e->kind), "%s", (const char *)sqlite3_column_text(st, 6));
	snprintf(e->date, sizeof(e->date), "%s", (const char *)sqlite3_column_text(st, 7));
	if (items != NULL) {
		json_t *it = json_loads(items, 0, NULL);
		struct juki_field_error fe;
		int rc;

		if (it == NULL || json_object_set_new(it, "code", json_string(e->code)) != 0) {
			json_decref(it);
			return JUKI_ESTORE;
		}
		rc = juki_person_from_json(it, 0, &e->items, &fe);
		json_decref(it);
		if (rc != 0) {
			return JUKI_ESTORE;
		}
		e->has_items = 1;
	}
	if (nc != NULL) {
		snprintf(e->new_code, sizeof(e->new_code), "%s", nc);
	}
	if (sqlite3_column_bytes(st, 10) != FEED_DIGEST_LEN) {
		return JUKI_ESTORE;
	}
	memcpy(e->digest, sqlite3_column_blob(st, 10), FEED_DIGEST_LEN);
	return 0;
}

int
feed_resend(struct juki_store *store, const struct juki_clock *clock, const char *self,
	    const char *ca, int64_t from, int64_t now_ms, int64_t *to, struct juki_reject *rej)
{
	static const char sql_has[] = "SELECT 1 FROM feed WHERE seq = ?1";
	static const char sql_drop[] = "DELETE FROM feed_out";
	static const char sql_unack[] = "UPDATE feed SET acked_ms = NULL WHERE seq >= ?1";
	static const char sql_state[] = "UPDATE feed_state SET acked_seq = min(acked_seq, ?1)";
	static const char sql_rows[] =
	    "SELECT seq, id, source, agreement, retention_days, code, kind, date, items, new_code,"
	    " digest FROM feed WHERE seq >= ?1 ORDER BY seq";
	struct feed_header cur = {0}, h;
	struct feed_entry e;
	int64_t next, first = 0, last = 0;
	json_t *entries = NULL;
	sqlite3_stmt *st;
	int rc, has;

	*to = from - 1;
	if ((rc = state_read(store, &next, NULL, NULL)) != 0) {
		return rc;
	}
	if (from < 1 || from > next) {
		juki_reject_set(rej, JUKI_R_RESEND_AHEAD, "from: 1 to %" PRId64, next);
		return JUKI_REJECT;
	}
	if (from < next) {
		if ((st = juki_store_prepare(store, sql_has)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_int64(st, 1, from);
		has = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
		if (!has) {
			juki_reject_set(rej, JUKI_R_RESEND_ERASED,
					"entry %" PRId64 " was erased after its period", from);
			return JUKI_REJECT;
		}
	}
	if ((rc = juki_outbox_drop(store, ca, "ninsho", JUKI_MSG_NINSHO_FEED, NULL)) != 0) {
		return rc;
	}
	if ((rc = juki_store_exec(store, sql_drop)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_unack)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, from);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_state)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, from - 1);
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	/*
	 * One message per run of rows with the same header, at most
	 * FEED_MAX_ENTRIES each.  The rows are read into a message before it
	 * is queued, and the statement is not reset meanwhile: sql_rows is not
	 * used by queue_feed().
	 */
	if ((st = juki_store_prepare(store, sql_rows)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, from);
	snprintf(cur.ca, sizeof(cur.ca), "%s", ca);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = row_read(st, &e, &h)) != 0) {
			break;
		}
		if (entries != NULL &&
		    (json_array_size(entries) == FEED_MAX_ENTRIES ||
		     strcmp(h.source, cur.source) != 0 || strcmp(h.agreement, cur.agreement) != 0 ||
		     h.retention_days != cur.retention_days)) {
			rc = queue_feed(store, clock, self, &cur, entries, first, last, now_ms);
			json_decref(entries);
			entries = NULL;
			if (rc != 0) {
				break;
			}
		}
		if (entries == NULL) {
			if ((entries = json_array()) == NULL) {
				rc = JUKI_ENOMEM;
				break;
			}
			snprintf(cur.source, sizeof(cur.source), "%s", h.source);
			snprintf(cur.agreement, sizeof(cur.agreement), "%s", h.agreement);
			cur.retention_days = h.retention_days;
			first = e.seq;
		}
		last = e.seq;
		if (json_array_append_new(entries, feed_entry_to_json(&e)) != 0) {
			rc = JUKI_ENOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		rc = entries != NULL
			 ? queue_feed(store, clock, self, &cur, entries, first, last, now_ms)
			 : 0;
	} else if (rc > 0) {
		rc = JUKI_ESTORE;
	}
	json_decref(entries);
	if (rc == 0) {
		*to = next - 1;
	}
	return rc;
}

json_t *
feed_show(struct juki_store *store, int64_t from, int64_t limit)
{
	static const char sql[] = "SELECT seq, kind, date, received_ms, acked_ms FROM feed"
				  " WHERE seq >= ?1 ORDER BY seq LIMIT ?2";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out = json_array();
	int rc;

	if (st == NULL || out == NULL) {
		json_decref(out);
		return NULL;
	}
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char received[40], acked[40] = "";

		juki_clock_format(sqlite3_column_int64(st, 3), received, sizeof(received));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			juki_clock_format(sqlite3_column_int64(st, 4), acked, sizeof(acked));
		}
		json_array_append_new(
		    out, json_pack("{s:I,s:s,s:s,s:s,s:s?}", "seq",
				   (json_int_t)sqlite3_column_int64(st, 0), "kind",
				   (const char *)sqlite3_column_text(st, 1), "date",
				   (const char *)sqlite3_column_text(st, 2), "received", received,
				   "acked", acked[0] ? acked : NULL));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(out);
		return NULL;
	}
	return out;
}
