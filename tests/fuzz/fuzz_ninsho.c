/*
 * Fuzz target: the bodies of the service ninsho at the link server
 * (authlink/feed.h), into a real store.  The input is JSON text:
 *
 *   {"idou": <a ninsho.idou body>}     read as from urn:juki:jlis:0: refused
 *       with a reason the protocol lists and a detail, nothing stored; or
 *       accepted and appended: the seqs follow on without a gap, one
 *       ninsho.feed message carries them, and its entries read back as idou
 *       entries whose digests chain from the last one held;
 *   {"resend": <a ninsho.resend body>} on a feed of three entries: refused
 *       resend-ahead, resend-erased or invalid-field, or the queue holds the
 *       entries from "from" on, in order, and none before;
 *   {"ack": <a result>}                the authority's ack of the first
 *       message: the entries are acknowledged only when it names the last
 *       seq and its digest.
 *
 * Each input runs in a transaction rolled back after it.
 */
#include <jansson.h>
#include <unistd.h>

#include "feed.h"
#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/store/outbox.h"

#define SELF "urn:juki:authlink:0"
#define CA   "urn:juki:ca:jpki"
#define JLIS "urn:juki:jlis:0"

static struct juki_store *store;
static struct juki_clock clock_ = {0, INT64_C(1780000000000)};
static char dir[] = "/tmp/juki-fuzz-ninsho-XXXXXX";

static void
cleanup(void)
{
	static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm",
					    "store.db-journal"};
	char path[96];

	juki_store_close(store);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct juki_schema schemas[] = {FEED_SCHEMA};
	char path[96], err[256];

	(void)argc;
	(void)argv;
	FUZZ_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	FUZZ_ASSERT(juki_store_open(path, schemas, 1, &store, err, sizeof(err)) == 0);
	atexit(cleanup);
	return 0;
}

static long long
count(const char *sql)
{
	sqlite3_stmt *st;
	long long n;

	FUZZ_ASSERT(sqlite3_prepare_v2(juki_store_db(store), sql, -1, &st, NULL) == SQLITE_OK);
	FUZZ_ASSERT(sqlite3_step(st) == SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The queued ninsho.feed messages' bodies, oldest first (a new array). */
static json_t *
queued(void)
{
	struct juki_outbox_entry *e = NULL;
	json_t *out = json_array();
	size_t n = 0;

	FUZZ_ASSERT(juki_outbox_next(store, CA, "ninsho", 0, 100, &e, &n) == 0);
	for (size_t i = 0; i < n; i++) {
		json_t *doc = json_loadb(e[i].payload, e[i].len, 0, NULL);

		FUZZ_ASSERT(doc != NULL);
		json_array_append(out, json_object_get(doc, "body"));
		json_decref(doc);
	}
	juki_outbox_entries_free(e, n);
	return out;
}

static int
listed(const char *reason, const char *const *ok)
{
	for (; *ok != NULL; ok++) {
		if (strcmp(reason, *ok) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Three entries of the feed, for resend and ack; returns the first message's id in id. */
static void
three(char id[JUKI_UUID_LEN + 1])
{
	static const struct feed_header hdr = {CA, JLIS, "ag-1", 30};
	static const char *const texts[] = {
	    "{\"id\":\"0190a5d0-0000-7000-8000-000000000001\",\"code\":\"24727059608\","
	    "\"kind\":\"death\",\"date\":\"2026-04-01\"}",
	    "{\"id\":\"0190a5d0-0000-7000-8000-000000000002\",\"code\":\"10000000014\","
	    "\"kind\":\"removal\",\"date\":\"2026-04-01\"}",
	    "{\"id\":\"0190a5d0-0000-7000-8000-000000000003\",\"code\":\"10000000022\","
	    "\"kind\":\"code-change\",\"date\":\"2026-04-01\",\"new_code\":\"10000000030\"}",
	};
	struct feed_entry e[3];
	struct juki_outbox_entry *q = NULL;
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		struct juki_reject rej;
		json_t *j = json_loads(texts[i], 0, NULL);

		FUZZ_ASSERT(j != NULL && feed_entry_from_json(j, &e[i], &rej) == 0);
		json_decref(j);
	}
	FUZZ_ASSERT(feed_append(store, &clock_, SELF, &hdr, e, 2, 1000, NULL) == 0);
	FUZZ_ASSERT(feed_append(store, &clock_, SELF, &hdr, e + 2, 1, 2000, NULL) == 0);
	FUZZ_ASSERT(juki_outbox_next(store, CA, "ninsho", 0, 1, &q, &n) == 0 && n == 1);
	snprintf(id, JUKI_UUID_LEN + 1, "%s", q[0].msg_id);
	juki_outbox_entries_free(q, n);
}

static void
idou(const json_t *body)
{
	static const char *const ok[] = {JUKI_R_BAD_FIELD, JUKI_R_CHECK_DIGIT, JUKI_R_FUTURE_DATE,
					 JUKI_R_NINSHO_WRONG_CA, NULL};
	struct feed_entry *e = NULL;
	struct feed_header hdr;
	struct juki_reject rej;
	unsigned char d[FEED_DIGEST_LEN];
	size_t n = 0, i;
	json_t *msgs, *x;
	int rc;

	memset(&rej, 0, sizeof(rej));
	rc = feed_idou_read(body, CA, JLIS, &hdr, &e, &n, &rej);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_REJECT && e == NULL);
		FUZZ_ASSERT(listed(rej.reason, ok) && rej.detail[0] != '\0');
		return;
	}
	FUZZ_ASSERT(n >= 1 && n <= FEED_MAX_ENTRIES);
	rc = feed_append(store, &clock_, SELF, &hdr, e, n, 1000, NULL);
	free(e);
	if (rc == JUKI_EDUP) {
		return; /* an entry id twice in the message: refused whole by the handler */
	}
	FUZZ_ASSERT(rc == 0);
	FUZZ_ASSERT(count("SELECT count(*) FROM feed") == (long long)n);
	FUZZ_ASSERT(count("SELECT max(seq) FROM feed") == (long long)n);
	msgs = queued();
	FUZZ_ASSERT(json_array_size(msgs) == 1);
	memset(d, 0, sizeof(d));
	json_array_foreach(json_object_get(json_array_get(msgs, 0), "entries"), i, x)
	{
		struct feed_entry back;
		char hex[FEED_DIGEST_HEX + 1];
		json_t *copy = json_deep_copy(x);

		json_object_del(copy, "seq");
		json_object_del(copy, "digest");
		FUZZ_ASSERT(feed_entry_from_json(copy, &back, &rej) == 0);
		json_decref(copy);
		back.seq = (int64_t)i + 1;
		FUZZ_ASSERT(json_integer_value(json_object_get(x, "seq")) == back.seq);
		FUZZ_ASSERT(feed_digest_next(d, &back, d) == 0);
		juki_hex_encode(d, FEED_DIGEST_LEN, hex);
		FUZZ_ASSERT(strcmp(json_string_value(json_object_get(x, "digest")), hex) == 0);
	}
	json_decref(msgs);
}

static void
resend(const json_t *body)
{
	static const char *const ok[] = {JUKI_R_BAD_FIELD, JUKI_R_RESEND_AHEAD, NULL};
	char id[JUKI_UUID_LEN + 1];
	struct juki_reject rej;
	int64_t from = 0, to = -1;
	json_t *msgs, *first;
	int rc;

	three(id);
	memset(&rej, 0, sizeof(rej));
	rc = feed_resend_read(body, &from, &rej);
	if (rc == 0) {
		rc = feed_resend(store, &clock_, SELF, CA, from, 3000, &to, &rej);
	}
	msgs = queued();
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_REJECT && listed(rej.reason, ok));
		FUZZ_ASSERT(json_array_size(msgs) == 2); /* untouched */
	} else {
		FUZZ_ASSERT(from >= 1 && from <= 4 && to == 3);
		FUZZ_ASSERT(json_array_size(msgs) == (from == 4 ? 0 : 1));
		if (from < 4) {
			first =
			    json_array_get(json_object_get(json_array_get(msgs, 0), "entries"), 0);
			FUZZ_ASSERT(json_integer_value(json_object_get(first, "seq")) == from);
		}
		FUZZ_ASSERT(count("SELECT count(*) FROM feed WHERE acked_ms IS NOT NULL") == 0);
	}
	json_decref(msgs);
}

static void
ack(const json_t *result)
{
	char id[JUKI_UUID_LEN + 1], why[200];
	int rc;

	three(id);
	rc = feed_on_ack(store, id, result, 5000, why, sizeof(why));
	if (rc == 0) {
		sqlite3_stmt *st;
		char hex[FEED_DIGEST_HEX + 1];

		/* only the right seq and digest acknowledge */
		FUZZ_ASSERT(json_integer_value(json_object_get(result, "seq")) == 2);
		FUZZ_ASSERT(sqlite3_prepare_v2(juki_store_db(store),
					       "SELECT digest FROM feed WHERE seq = 2", -1, &st,
					       NULL) == SQLITE_OK);
		FUZZ_ASSERT(sqlite3_step(st) == SQLITE_ROW);
		juki_hex_encode(sqlite3_column_blob(st, 0), FEED_DIGEST_LEN, hex);
		sqlite3_finalize(st);
		FUZZ_ASSERT(strcmp(hex, json_string_value(json_object_get(result, "digest"))) == 0);
		FUZZ_ASSERT(count("SELECT count(*) FROM feed WHERE acked_ms IS NOT NULL") == 2);
	} else {
		FUZZ_ASSERT(rc == JUKI_EPROTO && why[0] != '\0');
		FUZZ_ASSERT(count("SELECT count(*) FROM feed WHERE acked_ms IS NOT NULL") == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const json_t *v;

	if (!json_is_object(doc) || json_object_size(doc) != 1) {
		json_decref(doc);
		return 0;
	}
	FUZZ_ASSERT(juki_store_begin(store) == 0);
	if ((v = json_object_get(doc, "idou")) != NULL && json_is_object(v)) {
		idou(v);
	} else if ((v = json_object_get(doc, "resend")) != NULL && json_is_object(v)) {
		resend(v);
	} else if ((v = json_object_get(doc, "ack")) != NULL) {
		ack(v);
	}
	FUZZ_ASSERT(juki_store_rollback(store) == 0);
	json_decref(doc);
	return 0;
}
