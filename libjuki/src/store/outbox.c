#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "juki/base/error.h"
#include "juki/store/outbox.h"

#define SERVICE_MAX sizeof(((struct juki_outbox_entry *)NULL)->service)

/* non-empty and NUL-terminated within its array */
static int
field_ok(const char *s, size_t cap)
{
	return s != NULL && s[0] != '\0' && strnlen(s, cap) < cap;
}

static int
msg_ok(const struct juki_msg *msg)
{
	return msg != NULL && strnlen(msg->id, sizeof(msg->id)) == JUKI_UUID_LEN &&
	       field_ok(msg->type, sizeof(msg->type)) && field_ok(msg->from, sizeof(msg->from)) &&
	       field_ok(msg->to, sizeof(msg->to));
}

/*
 * Reset at once rather than at the next use: a statement left after its
 * last row keeps a read snapshot that stops a WAL checkpoint, and a
 * SQLITE_STATIC binding must not outlive the caller's buffer.
 */
static void
done(sqlite3_stmt *stmt)
{
	if (stmt != NULL) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	}
}

static int
is_dup(sqlite3 *db)
{
	int ext = sqlite3_extended_errcode(db);

	return ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY;
}

static int
copy_text(char *dst, size_t cap, sqlite3_stmt *stmt, int col)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);
	size_t len = (size_t)sqlite3_column_bytes(stmt, col);

	if (s == NULL) {
		return sqlite3_column_type(stmt, col) == SQLITE_NULL ? JUKI_ESTORE : JUKI_ENOMEM;
	}
	if (len >= cap) {
		return JUKI_ERANGE;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

int
juki_outbox_put(struct juki_store *store, const struct juki_msg *msg, const char *service,
		int64_t now_ms, int64_t *seq)
{
	return juki_outbox_put_body(store, msg, NULL, 0, service, now_ms, seq);
}

int
juki_outbox_put_body(struct juki_store *store, const struct juki_msg *msg, const char *body,
		     size_t body_len, const char *service, int64_t now_ms, int64_t *seq)
{
	static const char sql[] = "INSERT INTO outbox(dest, service, msg_id, type, payload, "
				  "created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *stmt = NULL;
	json_t *doc = NULL;
	char *text = NULL;
	size_t len;
	int rc;

	if (store == NULL || !msg_ok(msg) || !field_ok(service, SERVICE_MAX)) {
		return JUKI_EINVAL;
	}
	/* the entry must commit or vanish together with the change it announces */
	if (!juki_store_in_txn(store)) {
		return JUKI_EINVAL;
	}
	doc = juki_msg_to_json(msg);
	if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	len = strlen(text);
	if (body != NULL) {
		/*
		 * The header serialised with an empty body, which comes last
		 * ("...,\"body\":{}}"), and the body text put in its place.
		 */
		size_t hlen = strlen(text);
		char *whole;

		if (hlen < 3 || strcmp(text + hlen - 3, "{}}") != 0 ||
		    (whole = malloc(hlen - 3 + body_len + 2)) == NULL) {
			rc = JUKI_ENOMEM;
			goto out;
		}
		memcpy(whole, text, hlen - 3);
		memcpy(whole + hlen - 3, body, body_len);
		memcpy(whole + hlen - 3 + body_len, "}", 2);
		free(text);
		text = whole;
		len = hlen - 3 + body_len + 1;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_text(stmt, 1, msg->to, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, service, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, msg->type, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(stmt, 5, text, len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, now_ms);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = is_dup(juki_store_db(store)) ? JUKI_EDUP : JUKI_ESTORE;
		goto out;
	}
	if (seq != NULL) {
		*seq = sqlite3_last_insert_rowid(juki_store_db(store));
	}
	rc = 0;
out:
	done(stmt);
	free(text);
	json_decref(doc);
	return rc;
}

/* The queues sql reads: dest, service, count and (with_oldest) oldest_ms. */
static int
read_queues(struct juki_store *store, const char *sql, int with_oldest,
	    struct juki_outbox_queue **out, size_t *n)
{
	struct juki_outbox_queue *queues = NULL, *grown, *q;
	sqlite3_stmt *stmt = NULL;
	size_t count = 0, cap = 0;
	int rc, src;

	if (out != NULL) {
		*out = NULL;
	}
	if (n != NULL) {
		*n = 0;
	}
	if (store == NULL || out == NULL || n == NULL) {
		return JUKI_EINVAL;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	while ((src = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			grown = realloc(queues, cap * sizeof(*queues));
			if (grown == NULL) {
				rc = JUKI_ENOMEM;
				goto out;
			}
			queues = grown;
		}
		q = &queues[count];
		memset(q, 0, sizeof(*q));
		if ((rc = copy_text(q->dest, sizeof(q->dest), stmt, 0)) != 0 ||
		    (rc = copy_text(q->service, sizeof(q->service), stmt, 1)) != 0) {
			goto out;
		}
		q->count = sqlite3_column_int64(stmt, 2);
		q->oldest_ms = with_oldest ? sqlite3_column_int64(stmt, 3) : 0;
		count++;
	}
	if (src != SQLITE_DONE) {
		rc = JUKI_ESTORE;
		goto out;
	}
	*out = queues;
	*n = count;
	queues = NULL;
	rc = 0;
out:
	done(stmt);
	free(queues);
	return rc;
}

int
juki_outbox_queues(struct juki_store *store, struct juki_outbox_queue **out, size_t *n)
{
	static const char sql[] = "SELECT dest, service, count(*), min(created_ms) FROM outbox "
				  "GROUP BY dest, service ORDER BY min(created_ms), min(seq)";

	return read_queues(store, sql, 1, out, n);
}

int
juki_outbox_dests(struct juki_store *store, struct juki_outbox_queue **out, size_t *n)
{
	/*
	 * From the index alone: created_ms comes after the payload in a row,
	 * so reading it walks the payload's overflow pages (1.5 MB for a batch
	 * of 5,000 records) of every entry (measured: 6% of a CS's CPU with a
	 * backlog, when every kick read it; docs/benchmarks.md).
	 */
	static const char sql[] =
	    "SELECT dest, service, count(*) FROM outbox INDEXED BY outbox_queue"
	    " GROUP BY dest, service ORDER BY min(seq)";

	return read_queues(store, sql, 0, out, n);
}

void
juki_outbox_entries_free(struct juki_outbox_entry *entries, size_t n)
{
	size_t i;

	if (entries == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		free(entries[i].payload);
	}
	free(entries);
}

static int
read_entry(sqlite3_stmt *stmt, struct juki_outbox_entry *e)
{
	const void *blob;
	int rc;

	memset(e, 0, sizeof(*e));
	e->seq = sqlite3_column_int64(stmt, 0);
	if ((rc = copy_text(e->dest, sizeof(e->dest), stmt, 1)) != 0 ||
	    (rc = copy_text(e->service, sizeof(e->service), stmt, 2)) != 0 ||
	    (rc = copy_text(e->msg_id, sizeof(e->msg_id), stmt, 3)) != 0 ||
	    (rc = copy_text(e->type, sizeof(e->type), stmt, 4)) != 0) {
		return rc;
	}
	blob = sqlite3_column_blob(stmt, 5);
	e->len = (size_t)sqlite3_column_bytes(stmt, 5);
	if (blob == NULL && e->len > 0) {
		return JUKI_ENOMEM;
	}
	/* NUL-terminated as well, so that the JSON text can be used as a string */
	e->payload = malloc(e->len + 1);
	if (e->payload == NULL) {
		return JUKI_ENOMEM;
	}
	if (e->len > 0) {
		memcpy(e->payload, blob, e->len);
	}
	e->payload[e->len] = '\0';
	e->created_ms = sqlite3_column_int64(stmt, 6);
	e->attempts = sqlite3_column_int(stmt, 7);
	return 0;
}

int
juki_outbox_next(struct juki_store *store, const char *dest, const char *service, int64_t after_seq,
		 size_t max, struct juki_outbox_entry **out, size_t *n)
{
	/* INDEXED BY: a full scan of a long outbox after an outage must fail loudly */
	static const char sql[] = "SELECT seq, dest, service, msg_id, type, payload, created_ms, "
				  "attempts FROM outbox INDEXED BY outbox_queue "
				  "WHERE dest = ?1 AND service = ?2 AND seq > ?3 "
				  "ORDER BY seq LIMIT ?4";
	struct juki_outbox_entry *entries = NULL, *grown;
	sqlite3_stmt *stmt = NULL;
	size_t count = 0, cap = 0;
	int rc, src;

	if (out != NULL) {
		*out = NULL;
	}
	if (n != NULL) {
		*n = 0;
	}
	if (store == NULL || dest == NULL || service == NULL || out == NULL || n == NULL) {
		return JUKI_EINVAL;
	}
	if (max == 0) {
		return 0;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_text(stmt, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, after_seq);
	sqlite3_bind_int64(stmt, 4, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	while ((src = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			/* grow as rows come: max may be far above what is queued */
			cap = cap ? cap * 2 : 16;
			grown = realloc(entries, cap * sizeof(*entries));
			if (grown == NULL) {
				rc = JUKI_ENOMEM;
				goto out;
			}
			entries = grown;
		}
		rc = read_entry(stmt, &entries[count]);
		count++;
		if (rc != 0) {
			goto out;
		}
	}
	if (src != SQLITE_DONE) {
		rc = JUKI_ESTORE;
		goto out;
	}
	*out = entries;
	*n = count;
	entries = NULL;
	rc = 0;
out:
	done(stmt);
	juki_outbox_entries_free(entries, count);
	return rc;
}

/* one statement changing the row seq: 0, JUKI_ENOTFOUND or JUKI_ESTORE */
static int
change_one(struct juki_store *store, const char *sql, int64_t seq)
{
	sqlite3_stmt *stmt;
	int rc;

	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(stmt, 1, seq);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = JUKI_ESTORE;
	} else {
		rc = sqlite3_changes(juki_store_db(store)) == 0 ? JUKI_ENOTFOUND : 0;
	}
	done(stmt);
	return rc;
}

int
juki_outbox_attempted(struct juki_store *store, int64_t seq)
{
	static const char sql[] = "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1";

	if (store == NULL) {
		return JUKI_EINVAL;
	}
	return change_one(store, sql, seq);
}

int
juki_outbox_ack(struct juki_store *store, int64_t seq)
{
	static const char sql[] = "DELETE FROM outbox WHERE seq = ?1";

	if (store == NULL) {
		return JUKI_EINVAL;
	}
	/*
	 * One statement: outside a caller's transaction SQLite runs it in
	 * its own, so there is nothing to wrap.
	 */
	return change_one(store, sql, seq);
}

int
juki_outbox_drop(struct juki_store *store, const char *dest, const char *service, const char *type,
		 int64_t *dropped)
{
	static const char sql[] =
	    "DELETE FROM outbox WHERE dest = ?1 AND service = ?2 AND type = ?3";
	sqlite3_stmt *st;
	int rc;

	if (dropped != NULL) {
		*dropped = 0;
	}
	if (store == NULL || dest == NULL || service == NULL || type == NULL) {
		return JUKI_EINVAL;
	}
	if (sqlite3_get_autocommit(juki_store_db(store))) {
		return JUKI_EINVAL;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	if (dropped != NULL) {
		*dropped = sqlite3_changes64(juki_store_db(store));
	}
	return 0;
}

int
juki_outbox_reject(struct juki_store *store, int64_t seq, const char *reason, const char *detail,
		   int64_t now_ms)
{
	static const char copy_sql[] =
	    "INSERT INTO outbox_rejected(seq, dest, service, msg_id, type, payload, created_ms, "
	    "rejected_ms, reason, detail) SELECT seq, dest, service, msg_id, type, payload, "
	    "created_ms, ?2, ?3, ?4 FROM outbox WHERE seq = ?1";
	static const char delete_sql[] = "DELETE FROM outbox WHERE seq = ?1";
	sqlite3_stmt *stmt = NULL;
	int own = 0, rc;

	if (store == NULL || reason == NULL || reason[0] == '\0') {
		return JUKI_EINVAL;
	}
	/* the copy and the delete are one move: never both rows, never neither */
	if (!juki_store_in_txn(store)) {
		rc = juki_store_begin(store);
		if (rc != 0) {
			return rc;
		}
		own = 1;
	}
	stmt = juki_store_prepare(store, copy_sql);
	if (stmt == NULL) {
		rc = JUKI_ESTORE;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, seq);
	sqlite3_bind_int64(stmt, 2, now_ms);
	sqlite3_bind_text(stmt, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, detail ? detail : "", -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = JUKI_ESTORE;
		goto out;
	}
	if (sqlite3_changes(juki_store_db(store)) == 0) {
		rc = JUKI_ENOTFOUND;
		goto out;
	}
	done(stmt);
	stmt = NULL;
	rc = change_one(store, delete_sql, seq);
	if (rc == JUKI_ENOTFOUND) {
		/* copied a row that is not there: the store changed under us */
		rc = JUKI_ESTORE;
	}
out:
	done(stmt);
	if (own) {
		if (rc == 0) {
			rc = juki_store_commit(store);
		} else {
			juki_store_rollback(store);
		}
	}
	return rc;
}

static int
one_int64(struct juki_store *store, const char *sql, int64_t *a, int64_t *b)
{
	sqlite3_stmt *stmt;
	int rc = JUKI_ESTORE;

	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*a = sqlite3_column_int64(stmt, 0);
		if (b != NULL) {
			*b = sqlite3_column_int64(stmt, 1);
		}
		rc = 0;
	}
	done(stmt);
	return rc;
}

int
juki_outbox_stats(struct juki_store *store, int64_t *count, int64_t *oldest_ms)
{
	static const char sql[] = "SELECT count(*), coalesce(min(created_ms), 0) FROM outbox";

	if (store == NULL || count == NULL || oldest_ms == NULL) {
		return JUKI_EINVAL;
	}
	return one_int64(store, sql, count, oldest_ms);
}

int
juki_outbox_rejected_count(struct juki_store *store, int64_t *count)
{
	static const char sql[] = "SELECT count(*) FROM outbox_rejected";

	if (store == NULL || count == NULL) {
		return JUKI_EINVAL;
	}
	return one_int64(store, sql, count, NULL);
}

int
juki_inbox_lookup(struct juki_store *store, const char *msg_id, int *status)
{
	static const char sql[] = "SELECT status FROM inbox WHERE msg_id = ?1";
	sqlite3_stmt *stmt;
	int rc, src;

	if (store == NULL || msg_id == NULL || status == NULL) {
		return JUKI_EINVAL;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(stmt, 1, msg_id, -1, SQLITE_STATIC);
	src = sqlite3_step(stmt);
	if (src == SQLITE_ROW) {
		*status = sqlite3_column_int(stmt, 0);
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	done(stmt);
	return rc;
}

int
juki_inbox_digest(const char *text, size_t len, unsigned char out[JUKI_INBOX_DIGEST_LEN])
{
	unsigned int n = 0;

	if (text == NULL || out == NULL) {
		return JUKI_EINVAL;
	}
	if (EVP_Digest(text, len, out, &n, EVP_sha256(), NULL) != 1 || n != JUKI_INBOX_DIGEST_LEN) {
		return JUKI_ENOMEM;
	}
	return 0;
}

int
juki_inbox_check(struct juki_store *store, const char *msg_id,
		 const unsigned char digest[JUKI_INBOX_DIGEST_LEN], int *status, int *same)
{
	static const char sql[] = "SELECT status, digest FROM inbox WHERE msg_id = ?1";
	sqlite3_stmt *stmt;
	const void *have;
	int rc, src;

	if (store == NULL || msg_id == NULL || status == NULL || same == NULL) {
		return JUKI_EINVAL;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(stmt, 1, msg_id, -1, SQLITE_STATIC);
	src = sqlite3_step(stmt);
	if (src == SQLITE_ROW) {
		*status = sqlite3_column_int(stmt, 0);
		/* a row from before digests were kept, or no digest to compare: unknown */
		*same = 1;
		if (digest != NULL && sqlite3_column_type(stmt, 1) != SQLITE_NULL) {
			have = sqlite3_column_blob(stmt, 1);
			*same = have != NULL &&
				sqlite3_column_bytes(stmt, 1) == JUKI_INBOX_DIGEST_LEN &&
				memcmp(have, digest, JUKI_INBOX_DIGEST_LEN) == 0;
		}
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	done(stmt);
	return rc;
}

int
juki_inbox_record(struct juki_store *store, const struct juki_msg *msg, int status,
		  const char *reason, int64_t now_ms)
{
	return juki_inbox_record_digest(store, msg, status, reason, NULL, now_ms);
}

int
juki_inbox_record_digest(struct juki_store *store, const struct juki_msg *msg, int status,
			 const char *reason, const unsigned char digest[JUKI_INBOX_DIGEST_LEN],
			 int64_t now_ms)
{
	static const char sql[] = "INSERT INTO inbox(msg_id, sender, type, status, reason, "
				  "received_ms, digest) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	sqlite3_stmt *stmt;
	int rc;

	if (store == NULL || !msg_ok(msg)) {
		return JUKI_EINVAL;
	}
	/* a duplicate is answered from the record, never recorded itself */
	if (status == JUKI_ACK_ACCEPTED) {
		if (reason != NULL) {
			return JUKI_EINVAL;
		}
	} else if (status == JUKI_ACK_REJECTED) {
		if (reason == NULL || reason[0] == '\0') {
			return JUKI_EINVAL;
		}
	} else {
		return JUKI_EINVAL;
	}
	/* recorded with the change the message makes, so that both or neither survive */
	if (!juki_store_in_txn(store)) {
		return JUKI_EINVAL;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(stmt, 1, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, msg->type, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, status);
	if (reason != NULL) {
		sqlite3_bind_text(stmt, 5, reason, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(stmt, 6, now_ms);
	if (digest != NULL) {
		sqlite3_bind_blob(stmt, 7, digest, JUKI_INBOX_DIGEST_LEN, SQLITE_STATIC);
	}
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = is_dup(juki_store_db(store)) ? JUKI_EDUP : JUKI_ESTORE;
	} else {
		rc = 0;
	}
	done(stmt);
	return rc;
}

int
juki_inbox_keep_mismatch(struct juki_store *store, const struct juki_msg *msg,
			 const unsigned char digest[JUKI_INBOX_DIGEST_LEN], const char *text,
			 size_t len, int64_t now_ms, int *kept)
{
	/*
	 * Bounded: one row per (id, digest), and none once the table holds
	 * JUKI_INBOX_MISMATCH_MAX rows; purge empties it with the inbox.
	 */
	static const char sql[] =
	    "INSERT OR IGNORE INTO inbox_mismatch(msg_id, sender, digest, received_ms, text) "
	    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT count(*) FROM inbox_mismatch) < ?6";
	sqlite3_stmt *stmt;
	int rc;

	if (kept != NULL) {
		*kept = 0;
	}
	if (store == NULL || !msg_ok(msg) || digest == NULL || text == NULL) {
		return JUKI_EINVAL;
	}
	/* kept with the turn's other changes: what the sender was told matches the store */
	if (!juki_store_in_txn(store)) {
		return JUKI_EINVAL;
	}
	stmt = juki_store_prepare(store, sql);
	if (stmt == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(stmt, 1, msg->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, digest, JUKI_INBOX_DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, now_ms);
	sqlite3_bind_blob64(stmt, 5, text, len, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 6, JUKI_INBOX_MISMATCH_MAX);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		rc = JUKI_ESTORE;
	} else {
		if (kept != NULL) {
			*kept = sqlite3_changes(juki_store_db(store)) > 0;
		}
		rc = 0;
	}
	done(stmt);
	return rc;
}
