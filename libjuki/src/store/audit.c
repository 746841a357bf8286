/*
 * The operation history: a hash chain of entries in a SQLite file of its
 * own, with signed checkpoints.  docs/audit.md is the full description, for
 * anyone writing an independent verifier; in short:
 *
 * Canonical form of entry n (all integers big-endian):
 *
 *   seq       8 bytes, unsigned
 *   time_ms   8 bytes, two's complement
 *   operator  field
 *   action    field
 *   target    field
 *   outcome   field
 *   detail    field
 *
 *   field = 4-byte length, then that many bytes of UTF-8 text (no NUL);
 *           an absent (SQL NULL) field is the length 0xFFFFFFFF alone,
 *           so an empty text and no text differ.
 *
 *   hash(0) = 32 zero bytes
 *   hash(n) = SHA-256(hash(n-1) || canonical(entry n))
 *
 * A checkpoint signs, with the node's key (ECDSA over SHA-256, DER):
 *
 *   "juki-audit-checkpoint-v2" (24 ASCII bytes) || seq (8) || time_ms (8) || hash(seq) (32)
 *   || prev (8) || hash(prev) (32)
 *
 * where prev is the seq of the checkpoint before it (0 and 32 zero bytes for
 * the first): the checkpoints form a chain of their own, and a missing one
 * is a break.  (Checkpoints of version 1 files, prev NULL, signed the first
 * 72 bytes with "-v1"; they are still verified, before the first v2 one.)
 * The prefix keeps a checkpoint signature from meaning anything else the
 * node's key might sign.
 *
 * The node's own store remembers the head (audit_head: last entry and its
 * hash, last checkpoint and its hash), so that a history file cut back,
 * rolled back to an older copy, replaced or deleted is seen at start and at
 * the next write; the running process also keeps the hashes it wrote since
 * the last checkpoint and will not sign over entries it cannot link to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/store/audit.h"
#include "juki/store/store.h"

#define HASH_LEN        32
#define FIELD_ABSENT    0xFFFFFFFFu
#define NFIELDS         5
#define CANON_MAX       (8 + 8 + NFIELDS * (4 + JUKI_AUDIT_FIELD_MAX))
#define CP_PREFIX       "juki-audit-checkpoint-v2"
#define CP_PREFIX_V1    "juki-audit-checkpoint-v1"
#define CP_PREFIX_LEN   (sizeof(CP_PREFIX) - 1)
#define CP_MSG_V1_LEN   (CP_PREFIX_LEN + 8 + 8 + HASH_LEN)
#define CP_MSG_LEN      (CP_MSG_V1_LEN + 8 + HASH_LEN)
#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION  2
/* 0x6a756b69, "juki" in ASCII: tells an operation history from any other SQLite file. */
#define APPLICATION_ID 1786080105
#define STR(x)         #x
#define XSTR(x)        STR(x)
/* 9999-12-31T23:59:59.999Z: the last time juki_clock_format() writes in four digits. */
#define TIME_MAX_MS 253402300799999LL

/*
 * seq is the rowid, so entries are stored in chain order and looked up by
 * it directly.  The operator index serves "show --operator", the time index
 * "show --since" (see show_sql).
 */
static const char schema_sql[] = "CREATE TABLE entries("
				 "seq INTEGER PRIMARY KEY,"
				 "time_ms INTEGER NOT NULL,"
				 "operator TEXT NOT NULL,"
				 "action TEXT NOT NULL,"
				 "target TEXT,"
				 "outcome TEXT NOT NULL,"
				 "detail TEXT,"
				 "hash BLOB NOT NULL);"
				 "CREATE INDEX entries_operator ON entries(operator);"
				 "CREATE INDEX entries_time ON entries(time_ms);"
				 "CREATE TABLE checkpoints("
				 "seq INTEGER PRIMARY KEY,"
				 "time_ms INTEGER NOT NULL,"
				 "hash BLOB NOT NULL,"
				 "sig BLOB NOT NULL,"
				 "prev INTEGER);";

/* Version 1 had no checkpoint chain: its checkpoints keep prev NULL. */
static const char upgrade_v1_sql[] = "ALTER TABLE checkpoints ADD COLUMN prev INTEGER;"
				     "PRAGMA user_version = 2";

/* In the node's store: the head of its history, one row. */
const struct juki_migration juki_audit_steps[1] = {
    {1, "CREATE TABLE audit_head("
	"id INTEGER PRIMARY KEY CHECK (id = 1),"
	"seq INTEGER NOT NULL,"
	"hash BLOB NOT NULL,"
	"cp_seq INTEGER NOT NULL,"
	"cp_hash BLOB NOT NULL)"},
};

static const char head_get_sql[] = "SELECT seq, hash, cp_seq, cp_hash FROM audit_head WHERE id = 1";
static const char head_put_sql[] =
    "INSERT INTO audit_head(id, seq, hash, cp_seq, cp_hash) VALUES(1, ?1, ?2, ?3, ?4) "
    "ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2, cp_seq = ?3, cp_hash = ?4";

static const char insert_entry_sql[] =
    "INSERT INTO entries(seq, time_ms, operator, action, target, outcome, detail, hash) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
/*
 * What juki_audit_check() compares with the head it remembers, in one
 * statement (one read transaction): the last entry, the last checkpoint,
 * the hash stored at the head.  Checked before every append, so kept
 * prepared.
 */
static const char head_check_sql[] = "SELECT (SELECT coalesce(max(seq), 0) FROM entries),"
				     " (SELECT coalesce(max(seq), 0) FROM checkpoints),"
				     " (SELECT hash FROM entries WHERE seq = ?1)";
static const char insert_cp_sql[] =
    "INSERT INTO checkpoints(seq, time_ms, hash, sig, prev) VALUES(?1, ?2, ?3, ?4, ?5)";

/*
 * Queries of show, by filter.  With a time, the lower bound on seq lets
 * SQLite walk the rowid (or the operator's index) from the first entry that
 * can match instead of from entry 1; it changes nothing in the result, since
 * every matching entry has a seq at least that, and finding it through the
 * time index is right even when the clock once went backwards.  Without a
 * time (since_ms <= 0, no entry is older) that search would read the whole
 * index for nothing.
 */
#define SHOW_COLUMNS "SELECT seq, time_ms, operator, action, target, outcome, detail FROM entries "
#define SHOW_SINCE                                                                                 \
	"time_ms >= ?2 AND seq >= (SELECT min(seq) FROM entries INDEXED BY entries_time "          \
	"WHERE time_ms >= ?2) "
static const char *const show_sql[2][2] = {
    {SHOW_COLUMNS "ORDER BY seq LIMIT ?3",
     SHOW_COLUMNS "WHERE " SHOW_SINCE "ORDER BY seq LIMIT ?3"},
    {SHOW_COLUMNS "WHERE operator = ?1 ORDER BY seq LIMIT ?3",
     SHOW_COLUMNS "WHERE operator = ?1 AND " SHOW_SINCE "ORDER BY seq LIMIT ?3"},
};

struct juki_audit {
	sqlite3 *db;
	char *path;
	struct juki_tls *signer;
	struct juki_store *store;          /* remembers the head; NULL: nothing remembered */
	struct juki_audit_head remembered; /* what the store holds */
	int64_t every;
	int64_t seq;                         /* the head: last entry appended */
	unsigned char hash[HASH_LEN];        /* hash(seq) */
	int64_t signed_seq;                  /* seq of the last checkpoint */
	unsigned char signed_hash[HASH_LEN]; /* hash(signed_seq) */
	/* hash(signed_seq + 1 + i), as written: where a rewrite started */
	unsigned char (*recent)[HASH_LEN];
	size_t nrecent, caprecent;
	dev_t dev; /* the file opened, to tell it from another at the path */
	ino_t ino;
	int created; /* this open created the file */
	enum juki_audit_state state;
	int64_t state_seq;
	const char *state_reason; /* "missing", "rewritten", "hash" */
	char why[200];
	sqlite3_stmt *insert_entry;
	sqlite3_stmt *insert_cp;
	sqlite3_stmt *head_check;
};

/* One entry as the chain sees it; text fields are NULL when absent. */
struct entry {
	int64_t seq;
	int64_t time_ms;
	const char *text[NFIELDS];
	size_t len[NFIELDS];
};

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/*
 * hash(n) from hash(n-1).  Fields longer than JUKI_AUDIT_FIELD_MAX never
 * reach the file through juki_audit_append(), but the verifier hashes what
 * it finds, whatever its length, so the encoding is streamed rather than
 * built in a bounded buffer.
 */
static int
chain_hash(const unsigned char prev[HASH_LEN], const struct entry *e, unsigned char out[HASH_LEN])
{
	unsigned char head[16], len[4];
	EVP_MD_CTX *md;
	int ok;

	md = EVP_MD_CTX_new();
	if (md == NULL) {
		return JUKI_ENOMEM;
	}
	put_be64(head, (uint64_t)e->seq);
	put_be64(head + 8, (uint64_t)e->time_ms);
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, prev, HASH_LEN) &&
	     EVP_DigestUpdate(md, head, sizeof(head));
	for (int i = 0; ok && i < NFIELDS; i++) {
		if (e->text[i] == NULL) {
			put_be32(len, FIELD_ABSENT);
			ok = EVP_DigestUpdate(md, len, sizeof(len));
			continue;
		}
		if (e->len[i] >= FIELD_ABSENT) {
			ok = 0;
			break;
		}
		put_be32(len, (uint32_t)e->len[i]);
		ok = EVP_DigestUpdate(md, len, sizeof(len)) &&
		     EVP_DigestUpdate(md, e->text[i], e->len[i]);
	}
	ok = ok && EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	if (!ok) {
		ERR_clear_error();
		return JUKI_ETLS;
	}
	return 0;
}

/*
 * The signed message; prev < 0 gives the 72 bytes of version 1.  Returns
 * its length.
 */
static size_t
checkpoint_msg(int64_t seq, int64_t time_ms, const unsigned char hash[HASH_LEN], int64_t prev,
	       const unsigned char prev_hash[HASH_LEN], unsigned char out[CP_MSG_LEN])
{
	memcpy(out, prev < 0 ? CP_PREFIX_V1 : CP_PREFIX, CP_PREFIX_LEN);
	put_be64(out + CP_PREFIX_LEN, (uint64_t)seq);
	put_be64(out + CP_PREFIX_LEN + 8, (uint64_t)time_ms);
	memcpy(out + CP_PREFIX_LEN + 16, hash, HASH_LEN);
	if (prev < 0) {
		return CP_MSG_V1_LEN;
	}
	put_be64(out + CP_MSG_V1_LEN, (uint64_t)prev);
	memcpy(out + CP_MSG_V1_LEN + 8, prev_hash, HASH_LEN);
	return CP_MSG_LEN;
}

/*
 * A field is short, valid UTF-8, and free of control characters (C0, DEL
 * and C1): an entry is one line of a report, and a newline or an escape
 * sequence in it could forge another line on an auditor's terminal.
 */
static int
field_ok(const char *s, int required)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	if (s == NULL) {
		return !required;
	}
	n = strlen(s);
	if (n > JUKI_AUDIT_FIELD_MAX || (required && n == 0)) {
		return 0;
	}
	while (*p != '\0') {
		uint32_t cp;
		int extra;

		if (*p < 0x80) {
			if (*p < 0x20 || *p == 0x7f) {
				return 0;
			}
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			extra = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			extra = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			extra = 3;
		} else {
			return 0;
		}
		p++;
		for (int i = 0; i < extra; i++, p++) {
			if ((*p & 0xc0) != 0x80) {
				return 0;
			}
			cp = (cp << 6) | (*p & 0x3f);
		}
		/* overlong forms, surrogates, beyond Unicode, C1 controls */
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f)) {
			return 0;
		}
	}
	return 1;
}

/* The file is made here, mode 0600 from the start; SQLite gives -wal and -shm its mode. */
static int
create_file(const char *path, int *created, char *err, size_t errlen)
{
	int fd;
	int rc;

	*created = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			return 0;
		}
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fchmod(fd, 0600) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	close(fd);
	*created = 1;
	return 0;
}

static int
pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = JUKI_ESTORE;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* WAL, and nothing else: a mode SQLite cannot set (a read-only medium) is refused. */
static int
set_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int rc = JUKI_ESTORE;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		mode = sqlite3_column_text(st, 0);
		if (mode != NULL && strcmp((const char *)mode, "wal") == 0) {
			rc = 0;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * A new file gets the tables; an existing one must be an operation history
 * of a version this program knows.  Another SQLite file at the path (the
 * node's store, by a slip in the configuration) is refused untouched.
 */
static int
prepare_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int64_t version, app, tables;
	char *msg = NULL;
	int rc = JUKI_ESTORE;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		goto out;
	}
	if (pragma_int(db, "PRAGMA user_version", &version) != 0 ||
	    pragma_int(db, "PRAGMA application_id", &app) != 0 ||
	    pragma_int(db, "SELECT count(*) FROM sqlite_schema", &tables) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	if (version == 0 && app == 0 && tables == 0) {
		if (sqlite3_exec(db, schema_sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db,
				 "PRAGMA application_id = " XSTR(
				     APPLICATION_ID) ";"
						     "PRAGMA user_version = " XSTR(SCHEMA_VERSION),
				 NULL, NULL, &msg) != SQLITE_OK) {
			juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
			goto out;
		}
	} else if (app != APPLICATION_ID) {
		juki_seterr(err, errlen, "%s: not an operation history", path);
		rc = JUKI_ESCHEMA;
		goto out;
	} else if (version == 1) {
		if (sqlite3_exec(db, upgrade_v1_sql, NULL, NULL, &msg) != SQLITE_OK) {
			juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
			goto out;
		}
	} else if (version != SCHEMA_VERSION) {
		juki_seterr(err, errlen,
			    "%s: operation history of version %lld, this program knows version %d",
			    path, (long long)version, SCHEMA_VERSION);
		rc = JUKI_ESCHEMA;
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	if (!sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_free(msg);
	return rc;
}

/* Remember one more hash written since the last checkpoint. */
static int
recent_push(struct juki_audit *a, const unsigned char hash[HASH_LEN])
{
	if (a->nrecent == a->caprecent) {
		size_t cap = a->caprecent ? a->caprecent * 2 : 64;
		unsigned char(*grown)[HASH_LEN] = realloc(a->recent, cap * HASH_LEN);

		if (grown == NULL) {
			return JUKI_ENOMEM;
		}
		a->recent = grown;
		a->caprecent = cap;
	}
	memcpy(a->recent[a->nrecent++], hash, HASH_LEN);
	return 0;
}

/*
 * Continue the chain from the last entry.  A checkpoint beyond it means
 * signed entries are gone: appending would reuse their numbers, so the
 * history is refused until someone has looked at it.  The hashes since the
 * last checkpoint are kept to tell, later, where a rewrite started.
 */
static int
load_head(struct juki_audit *a, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = JUKI_ESTORE;
	int step;

	a->seq = 0;
	memset(a->hash, 0, HASH_LEN);
	a->signed_seq = 0;
	memset(a->signed_hash, 0, HASH_LEN);
	a->nrecent = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		if (sqlite3_column_type(st, 1) != SQLITE_BLOB ||
		    sqlite3_column_bytes(st, 1) != HASH_LEN || sqlite3_column_int64(st, 0) < 1) {
			juki_seterr(err, errlen, "%s: the last entry (%lld) has no readable hash",
				    path, (long long)sqlite3_column_int64(st, 0));
			goto out;
		}
		a->seq = sqlite3_column_int64(st, 0);
		memcpy(a->hash, sqlite3_column_blob(st, 1), HASH_LEN);
	} else if (step != SQLITE_DONE) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(a->db, "SELECT seq, hash FROM checkpoints ORDER BY seq DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		a->signed_seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) == SQLITE_BLOB &&
		    sqlite3_column_bytes(st, 1) == HASH_LEN) {
			memcpy(a->signed_hash, sqlite3_column_blob(st, 1), HASH_LEN);
		}
	} else if (step != SQLITE_DONE) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (a->signed_seq > a->seq) {
		juki_seterr(err, errlen,
			    "%s: a checkpoint signs entry %lld but the history ends at entry %lld: "
			    "signed entries are missing (juki-ctl audit verify)",
			    path, (long long)a->signed_seq, (long long)a->seq);
		goto out;
	}
	if (sqlite3_prepare_v2(a->db, "SELECT hash FROM entries WHERE seq > ?1 ORDER BY seq", -1,
			       &st, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, a->signed_seq);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != HASH_LEN) {
			break;
		}
		if (recent_push(a, sqlite3_column_blob(st, 0)) != 0) {
			juki_seterr(err, errlen, "out of memory");
			rc = JUKI_ENOMEM;
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static void
close_db(struct juki_audit *a)
{
	sqlite3_finalize(a->insert_entry);
	sqlite3_finalize(a->insert_cp);
	sqlite3_finalize(a->head_check);
	sqlite3_close(a->db);
	a->insert_entry = a->insert_cp = a->head_check = NULL;
	a->db = NULL;
}

/* Open (creating) the file at a->path and continue its chain. */
static int
open_db(struct juki_audit *a, char *err, size_t errlen)
{
	const char *path = a->path;
	struct stat sb;
	char *msg = NULL;
	int rc;

	rc = create_file(path, &a->created, err, errlen);
	if (rc != 0) {
		goto out;
	}
	rc = JUKI_ESTORE;
	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path,
			    a->db ? sqlite3_errmsg(a->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(a->db, BUSY_TIMEOUT_MS);
	/*
	 * secure_delete is off on purpose: nothing is ever deleted from a
	 * history, and a file that was not one is refused before any write.
	 */
	if (set_wal(a->db) != 0) {
		juki_seterr(err, errlen, "%s: cannot use WAL: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	if (sqlite3_exec(a->db, "PRAGMA synchronous = FULL", NULL, NULL, &msg) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(a->db));
		goto out;
	}
	rc = prepare_schema(a->db, path, err, errlen);
	if (rc != 0) {
		goto out;
	}
	juki_wal_setup(a->db, path);
	rc = load_head(a, path, err, errlen);
	if (rc != 0) {
		goto out;
	}
	rc = JUKI_ESTORE;
	if (stat(path, &sb) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	if (sqlite3_prepare_v3(a->db, insert_entry_sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &a->insert_entry, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(a->db, insert_cp_sql, -1, SQLITE_PREPARE_PERSISTENT, &a->insert_cp,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(a->db, head_check_sql, -1, SQLITE_PREPARE_PERSISTENT, &a->head_check,
			       NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_free(msg);
	if (rc != 0) {
		close_db(a);
	}
	return rc;
}

int
juki_audit_open(const char *path, struct juki_tls *signer, int64_t checkpoint_every,
		struct juki_audit **out, char *err, size_t errlen)
{
	struct juki_audit *a = NULL;
	int rc;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (out == NULL) {
		return JUKI_EINVAL;
	}
	*out = NULL;
	if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0) {
		juki_seterr(err, errlen, "the operation history needs a file path");
		return JUKI_EINVAL;
	}
	if (checkpoint_every < 1) {
		juki_seterr(err, errlen, "checkpoint interval %lld: must be 1 or more",
			    (long long)checkpoint_every);
		return JUKI_EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->path = strdup(path)) == NULL) {
		free(a);
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	a->signer = signer;
	a->every = checkpoint_every;
	rc = open_db(a, err, errlen);
	if (rc != 0) {
		juki_audit_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

void
juki_audit_set_signer(struct juki_audit *audit, struct juki_tls *signer)
{
	if (audit != NULL) {
		audit->signer = signer;
	}
}

void
juki_audit_close(struct juki_audit *audit)
{
	if (audit == NULL) {
		return;
	}
	close_db(audit);
	free(audit->recent);
	free(audit->path);
	free(audit);
}

static void
head_now(const struct juki_audit *a, struct juki_audit_head *head)
{
	head->seq = a->seq;
	memcpy(head->hash, a->hash, HASH_LEN);
	head->cp_seq = a->signed_seq;
	memcpy(head->cp_hash, a->signed_hash, HASH_LEN);
}

/* The head, in the node's store: in the same discipline as the entry (synchronous). */
static int
remember(struct juki_audit *a)
{
	sqlite3_stmt *st;
	int step;

	head_now(a, &a->remembered);
	if (a->store == NULL) {
		return 0;
	}
	if ((st = juki_store_prepare(a->store, head_put_sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, a->seq);
	sqlite3_bind_blob(st, 2, a->hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->signed_seq);
	sqlite3_bind_blob(st, 4, a->signed_hash, HASH_LEN, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return step == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static void set_state(struct juki_audit *a, enum juki_audit_state state, int64_t seq,
		      const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
set_state(struct juki_audit *a, enum juki_audit_state state, int64_t seq, const char *reason,
	  const char *fmt, ...)
{
	va_list ap;

	if (a->state != JUKI_AUDIT_OK) {
		return; /* the first finding stands until an administrator acts */
	}
	a->state = state;
	a->state_seq = seq;
	a->state_reason = reason;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

/* hash of the entry or checkpoint at seq: 1 found (into out), 0 none, <0 error. */
static int
hash_at(sqlite3 *db, const char *sql, int64_t seq, unsigned char out[HASH_LEN])
{
	sqlite3_stmt *st = NULL;
	int rc = JUKI_ESTORE, step;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		memset(out, 0, HASH_LEN);
		if (sqlite3_column_bytes(st, 0) == HASH_LEN) {
			memcpy(out, sqlite3_column_blob(st, 0), HASH_LEN);
		}
		rc = 1;
	} else if (step == SQLITE_DONE) {
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

#define ENTRY_HASH_SQL "SELECT hash FROM entries WHERE seq = ?1"
#define CP_HASH_SQL    "SELECT hash FROM checkpoints WHERE seq = ?1"

int
juki_audit_bind(struct juki_audit *a, struct juki_store *store)
{
	struct juki_audit_head r;
	unsigned char h[HASH_LEN];
	sqlite3_stmt *st;
	int step, found;

	if (a == NULL || store == NULL) {
		return JUKI_EINVAL;
	}
	a->store = store;
	if ((st = juki_store_prepare(store, head_get_sql)) == NULL) {
		return JUKI_ESTORE;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		sqlite3_reset(st);
		/* Nothing remembered (a new store, or one from before): the file as it is. */
		return remember(a);
	}
	if (step != SQLITE_ROW || sqlite3_column_bytes(st, 1) != HASH_LEN ||
	    sqlite3_column_bytes(st, 3) != HASH_LEN) {
		sqlite3_reset(st);
		return JUKI_ESTORE;
	}
	r.seq = sqlite3_column_int64(st, 0);
	memcpy(r.hash, sqlite3_column_blob(st, 1), HASH_LEN);
	r.cp_seq = sqlite3_column_int64(st, 2);
	memcpy(r.cp_hash, sqlite3_column_blob(st, 3), HASH_LEN);
	sqlite3_reset(st);
	a->remembered = r;
	if (r.seq > 0 && a->seq == 0) {
		set_state(a, JUKI_AUDIT_GONE, 1, "missing",
			  "the history file %s: the node had recorded %lld entries",
			  a->created ? "was missing" : "is empty", (long long)r.seq);
		return 0;
	}
	if (a->seq < r.seq) {
		set_state(a, JUKI_AUDIT_ROLLBACK, a->seq + 1, "missing",
			  "the history ends at entry %lld, the node had recorded %lld: cut or "
			  "rolled back",
			  (long long)a->seq, (long long)r.seq);
		return 0;
	}
	if (r.seq > 0) {
		found = hash_at(a->db, ENTRY_HASH_SQL, r.seq, h);
		if (found < 0) {
			return JUKI_ESTORE;
		}
		if (found == 0 || CRYPTO_memcmp(h, r.hash, HASH_LEN) != 0) {
			set_state(
			    a, JUKI_AUDIT_ROLLBACK, r.seq, "rewritten",
			    "entry %lld is not the one the node recorded: rewritten, replaced "
			    "or another node's history",
			    (long long)r.seq);
			return 0;
		}
	}
	/*
	 * A file ahead of the store is taken: the store is written right after
	 * the file (a crash between leaves it one entry behind), and a store
	 * restored from a backup remembers an older head of the same chain.
	 */
	if (r.cp_seq > 0) {
		found = hash_at(a->db, CP_HASH_SQL, r.cp_seq, h);
		if (found < 0) {
			return JUKI_ESTORE;
		}
		if (found == 0 || CRYPTO_memcmp(h, r.cp_hash, HASH_LEN) != 0) {
			set_state(a, JUKI_AUDIT_ROLLBACK, r.cp_seq, "missing",
				  "the checkpoint at entry %lld that the node signed is missing",
				  (long long)r.cp_seq);
			return 0;
		}
	}
	return remember(a);
}

static int read_entry(sqlite3_stmt *st, struct entry *e, const unsigned char **hash);

/*
 * The entries since the last checkpoint must be the ones this process
 * wrote: in sequence, each reproducing its hash from the one before (from
 * the checkpoint's), each the hash remembered.  Returns 0, or 1 with the
 * state set at the first one that is not.
 */
static int
link_check(struct juki_audit *a)
{
	sqlite3_stmt *st = NULL;
	unsigned char prev[HASH_LEN], h[HASH_LEN];
	const unsigned char *stored;
	int64_t expected = a->signed_seq + 1;
	struct entry e;
	int step, bad = 0;

	memcpy(prev, a->signed_hash, HASH_LEN);
	if (sqlite3_prepare_v2(a->db,
			       "SELECT seq, time_ms, operator, action, target, outcome, detail, "
			       "hash FROM entries WHERE seq > ?1 ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK) {
		return 0; /* not a finding: an append will fail and say so */
	}
	sqlite3_bind_int64(st, 1, a->signed_seq);
	while (!bad && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		size_t i = (size_t)(seq - a->signed_seq - 1);

		if (seq != expected) {
			set_state(a, JUKI_AUDIT_ROLLBACK, expected, "missing",
				  "entry %lld of the history is missing", (long long)expected);
			bad = 1;
		} else if (read_entry(st, &e, &stored) != 0 || chain_hash(prev, &e, h) != 0 ||
			   CRYPTO_memcmp(h, stored, HASH_LEN) != 0) {
			set_state(a, JUKI_AUDIT_ROLLBACK, seq, "hash",
				  "entry %lld of the history was changed", (long long)seq);
			bad = 1;
		} else if (i < a->nrecent && CRYPTO_memcmp(stored, a->recent[i], HASH_LEN) != 0) {
			set_state(a, JUKI_AUDIT_ROLLBACK, seq, "rewritten",
				  "entry %lld of the history is not the one the node wrote: "
				  "rewritten from there",
				  (long long)seq);
			bad = 1;
		} else {
			memcpy(prev, stored, HASH_LEN);
			expected++;
		}
	}
	sqlite3_finalize(st);
	if (!bad && expected - 1 < a->seq) {
		set_state(a, JUKI_AUDIT_ROLLBACK, expected, "missing",
			  "the history ends at entry %lld, the node wrote up to %lld",
			  (long long)(expected - 1), (long long)a->seq);
		bad = 1;
	} else if (!bad && expected - 1 > a->seq) {
		set_state(a, JUKI_AUDIT_ROLLBACK, a->seq + 1, "rewritten",
			  "the history holds entries after entry %lld that the node did not write",
			  (long long)a->seq);
		bad = 1;
	}
	return bad;
}

enum juki_audit_state
juki_audit_check(struct juki_audit *a)
{
	unsigned char h[HASH_LEN];
	sqlite3_stmt *st;
	struct stat sb;
	int64_t last, cps;
	int same;

	if (a == NULL || a->state != JUKI_AUDIT_OK) {
		return a != NULL ? a->state : JUKI_AUDIT_GONE;
	}
	st = a->head_check;
	if (stat(a->path, &sb) != 0 || sb.st_dev != a->dev || sb.st_ino != a->ino) {
		set_state(a, JUKI_AUDIT_GONE, a->seq + 1, "missing",
			  "the history file %s: the node had recorded %lld entries",
			  errno == ENOENT ? "is gone" : "was replaced by another file",
			  (long long)a->seq);
		return a->state;
	}
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, a->seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return a->state; /* not a finding: the append fails and says so */
	}
	last = sqlite3_column_int64(st, 0);
	cps = sqlite3_column_int64(st, 1);
	same = a->seq == 0 || (sqlite3_column_bytes(st, 2) == HASH_LEN &&
			       CRYPTO_memcmp(sqlite3_column_blob(st, 2), a->hash, HASH_LEN) == 0);
	sqlite3_reset(st);
	if (last == a->seq && cps == a->signed_seq && same) {
		return a->state;
	}
	if (cps < a->signed_seq ||
	    (a->signed_seq > 0 && (hash_at(a->db, CP_HASH_SQL, a->signed_seq, h) != 1 ||
				   CRYPTO_memcmp(h, a->signed_hash, HASH_LEN) != 0))) {
		set_state(a, JUKI_AUDIT_ROLLBACK, a->signed_seq, "missing",
			  "the checkpoint at entry %lld is missing or changed",
			  (long long)a->signed_seq);
		return a->state;
	}
	if (!link_check(a)) {
		set_state(a, JUKI_AUDIT_ROLLBACK, a->seq + 1, "rewritten",
			  "the history holds entries or checkpoints after entry %lld that the node "
			  "did not write",
			  (long long)a->seq);
	}
	return a->state;
}

enum juki_audit_state
juki_audit_state(const struct juki_audit *a, int64_t *seq, const char **reason, char *why,
		 size_t whylen)
{
	if (seq != NULL) {
		*seq = a->state != JUKI_AUDIT_OK ? a->state_seq : 0;
	}
	if (reason != NULL) {
		*reason = a->state != JUKI_AUDIT_OK ? a->state_reason : NULL;
	}
	if (why != NULL && whylen > 0) {
		snprintf(why, whylen, "%s", a->state != JUKI_AUDIT_OK ? a->why : "");
	}
	return a->state;
}

int
juki_audit_adopt(struct juki_audit *a, char *found, size_t foundlen)
{
	char err[256];
	int rc;

	if (a == NULL) {
		return JUKI_EINVAL;
	}
	if (a->state == JUKI_AUDIT_OK) {
		return JUKI_EEXIST;
	}
	snprintf(found, foundlen, "%s", a->why);
	close_db(a);
	rc = open_db(a, err, sizeof(err));
	if (rc != 0) {
		set_state(a, JUKI_AUDIT_GONE, 1, "missing", "%s", err);
		return rc;
	}
	a->state = JUKI_AUDIT_OK;
	a->state_seq = 0;
	a->state_reason = NULL;
	a->why[0] = '\0';
	return remember(a);
}

void
juki_audit_head(const struct juki_audit *a, struct juki_audit_head *head)
{
	*head = a->remembered;
}

static int
sign_checkpoint(struct juki_audit *a, int64_t seq, int64_t time_ms,
		const unsigned char hash[HASH_LEN], unsigned char **sig, size_t *siglen)
{
	unsigned char msg[CP_MSG_LEN];
	size_t len = checkpoint_msg(seq, time_ms, hash, a->signed_seq, a->signed_hash, msg);

	return juki_tls_sign(a->signer, msg, len, sig, siglen);
}

static int
insert_checkpoint(struct juki_audit *a, int64_t seq, int64_t time_ms,
		  const unsigned char hash[HASH_LEN], const unsigned char *sig, size_t siglen)
{
	sqlite3_stmt *st = a->insert_cp;
	int step;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, time_ms);
	sqlite3_bind_blob(st, 3, hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, sig, (int)siglen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, a->signed_seq);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return step == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
insert_entry(struct juki_audit *a, const struct entry *e, const unsigned char hash[HASH_LEN])
{
	sqlite3_stmt *st = a->insert_entry;
	int step;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, e->seq);
	sqlite3_bind_int64(st, 2, e->time_ms);
	for (int i = 0; i < NFIELDS; i++) {
		if (e->text[i] == NULL) {
			sqlite3_bind_null(st, 3 + i);
		} else {
			sqlite3_bind_text(st, 3 + i, e->text[i], (int)e->len[i], SQLITE_STATIC);
		}
	}
	sqlite3_bind_blob(st, 8, hash, HASH_LEN, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return step == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static int
commit_or_rollback(sqlite3 *db, int rc)
{
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = JUKI_ESTORE;
	}
	if (!sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

/* The head is signed: the chain of checkpoints continues from it. */
static void
signed_now(struct juki_audit *a)
{
	a->signed_seq = a->seq;
	memcpy(a->signed_hash, a->hash, HASH_LEN);
	a->nrecent = 0;
}

int
juki_audit_append(struct juki_audit *audit, int64_t now_ms, const char *op, const char *action,
		  const char *target, const char *outcome, const char *detail)
{
	const char *fields[NFIELDS] = {op, action, target, outcome, detail};
	unsigned char hash[HASH_LEN];
	unsigned char *sig = NULL;
	struct entry e = {0};
	size_t siglen = 0;
	int rc;

	if (audit == NULL || now_ms < 0 || now_ms > TIME_MAX_MS || audit->seq == INT64_MAX) {
		return JUKI_EINVAL;
	}
	if (juki_audit_check(audit) != JUKI_AUDIT_OK) {
		return JUKI_EPERM;
	}
	for (int i = 0; i < NFIELDS; i++) {
		/* target (2) and detail (4) may be absent */
		if (!field_ok(fields[i], i != 2 && i != 4)) {
			return JUKI_EINVAL;
		}
		e.text[i] = fields[i];
		e.len[i] = fields[i] != NULL ? strlen(fields[i]) : 0;
	}
	e.seq = audit->seq + 1;
	e.time_ms = now_ms;
	rc = chain_hash(audit->hash, &e, hash);
	if (rc != 0) {
		return rc;
	}
	/*
	 * A checkpoint that cannot be signed now is not a reason to lose the
	 * entry: it is tried again on the next append, and
	 * juki_audit_checkpoint() reports the failure.
	 */
	if (audit->signer != NULL && e.seq - audit->signed_seq >= audit->every) {
		/* Never sign over entries that do not link to the last checkpoint. */
		if (link_check(audit)) {
			return JUKI_EPERM;
		}
		if (sign_checkpoint(audit, e.seq, now_ms, hash, &sig, &siglen) != 0) {
			sig = NULL;
		}
	}
	if (sqlite3_exec(audit->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = JUKI_ESTORE;
		goto out;
	}
	rc = insert_entry(audit, &e, hash);
	if (rc == 0 && sig != NULL) {
		rc = insert_checkpoint(audit, e.seq, now_ms, hash, sig, siglen);
	}
	rc = commit_or_rollback(audit->db, rc);
	if (rc != 0) {
		goto out;
	}
	audit->seq = e.seq;
	memcpy(audit->hash, hash, HASH_LEN);
	if (sig != NULL) {
		signed_now(audit);
	} else if (recent_push(audit, hash) != 0) {
		/* without it, a rewrite of this entry is still seen, at the head */
		audit->nrecent = 0;
	}
	rc = remember(audit);
out:
	free(sig);
	return rc;
}

int
juki_audit_checkpoint(struct juki_audit *audit, int64_t now_ms)
{
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc;

	if (audit == NULL) {
		return JUKI_EINVAL;
	}
	if (audit->state != JUKI_AUDIT_OK) {
		return JUKI_EPERM;
	}
	if (audit->signed_seq == audit->seq) {
		return 0;
	}
	if (audit->signer == NULL || now_ms < 0 || now_ms > TIME_MAX_MS) {
		return JUKI_EINVAL;
	}
	if (juki_audit_check(audit) != JUKI_AUDIT_OK || link_check(audit)) {
		return JUKI_EPERM;
	}
	rc = sign_checkpoint(audit, audit->seq, now_ms, audit->hash, &sig, &siglen);
	if (rc != 0) {
		goto out;
	}
	if (sqlite3_exec(audit->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = JUKI_ESTORE;
		goto out;
	}
	rc = insert_checkpoint(audit, audit->seq, now_ms, audit->hash, sig, siglen);
	rc = commit_or_rollback(audit->db, rc);
	if (rc == 0) {
		signed_now(audit);
		rc = remember(audit);
	}
out:
	free(sig);
	return rc;
}

/* A text column as a JSON string, or null when absent. */
static json_t *
text_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		return json_null();
	}
	return json_stringn((const char *)sqlite3_column_text(st, col),
			    (size_t)sqlite3_column_bytes(st, col));
}

static json_t *
entry_json(sqlite3_stmt *st)
{
	static const char *const keys[NFIELDS] = {"operator", "action", "target", "outcome",
						  "detail"};
	char when[32];
	json_t *obj;

	if (juki_clock_format(sqlite3_column_int64(st, 1), when, sizeof(when)) != 0) {
		return NULL;
	}
	obj = json_pack("{s:I,s:s}", "seq", (json_int_t)sqlite3_column_int64(st, 0), "time", when);
	for (int i = 0; obj != NULL && i < NFIELDS; i++) {
		json_t *v = text_or_null(st, 2 + i);

		if (v == NULL || json_object_set_new(obj, keys[i], v) != 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

json_t *
juki_audit_show(struct juki_audit *audit, const char *op, int64_t since_ms, size_t limit)
{
	sqlite3_stmt *st = NULL;
	json_t *entries = NULL, *result = NULL;
	/* one row more than asked tells whether there are more */
	int64_t want = limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
	int64_t n = 0;
	int more = 0;
	int step;

	if (audit == NULL) {
		return NULL;
	}
	if (sqlite3_prepare_v2(audit->db, show_sql[op != NULL][since_ms > 0], -1, &st, NULL) !=
	    SQLITE_OK) {
		goto out;
	}
	if (op != NULL) {
		sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
	}
	if (since_ms > 0) {
		sqlite3_bind_int64(st, 2, since_ms);
	}
	sqlite3_bind_int64(st, 3, want);
	entries = json_array();
	if (entries == NULL) {
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *e;

		if ((size_t)n == limit) {
			more = 1;
			break;
		}
		e = entry_json(st);
		if (e == NULL || json_array_append_new(entries, e) != 0) {
			goto out;
		}
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		goto out;
	}
	result = json_pack("{s:O,s:b}", "entries", entries, "more", more);
out:
	json_decref(entries);
	sqlite3_finalize(st);
	return result;
}

/*
 * The verifier loads the certificates' keys once: juki_tls_verify_cert()
 * reads the file on every call, and a long history has many checkpoints.
 * Every certificate in the file counts: the node's current one and those
 * its key had before, so that checkpoints signed before a change of key
 * still verify.
 */
#define MAX_KEYS JUKI_AUDIT_CERTS_MAX

static int
load_public_keys(const char *cert_pem, EVP_PKEY **keys, size_t *nkeys, char *err, size_t errlen)
{
	X509 *cert;
	FILE *fp;
	int rc;

	*nkeys = 0;
	fp = fopen(cert_pem, "re");
	if (fp == NULL) {
		rc = -errno;
		juki_seterr(err, errlen, "certificate %s: %s", cert_pem, strerror(errno));
		return rc;
	}
	while ((cert = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
		EVP_PKEY *key;

		if (*nkeys == MAX_KEYS) {
			/* Ignoring the rest could fail a history its owner expects to pass. */
			X509_free(cert);
			fclose(fp);
			ERR_clear_error();
			for (size_t i = 0; i < *nkeys; i++) {
				EVP_PKEY_free(keys[i]);
			}
			*nkeys = 0;
			juki_seterr(err, errlen, "certificate %s: more than %d certificates",
				    cert_pem, MAX_KEYS);
			return JUKI_ECERT;
		}
		key = X509_get_pubkey(cert);
		X509_free(cert);
		if (key == NULL) {
			break;
		}
		keys[(*nkeys)++] = key;
	}
	fclose(fp);
	ERR_clear_error();
	if (*nkeys == 0) {
		juki_seterr(err, errlen, "certificate %s: no PEM certificate with a usable key",
			    cert_pem);
		return JUKI_ECERT;
	}
	return 0;
}

static int
signature_ok(EVP_PKEY *key, const unsigned char *msg, size_t len, const unsigned char *sig,
	     size_t siglen)
{
	/* Ed25519 and Ed448 hash internally and take no digest. */
	const EVP_MD *md =
	    EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448") ? NULL : EVP_sha256();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
	     EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* Where the walk stands: what is known so far and the first break found. */

struct walk {
	EVP_PKEY *keys[MAX_KEYS]; /* the node's certificates' keys, current and earlier */
	size_t nkeys;
	int64_t expected; /* the seq the next entry must have */
	unsigned char hash[HASH_LEN];
	int64_t entries;
	int64_t checkpoints;
	int64_t last_cp;                      /* seq of the last checkpoint row seen */
	int64_t signed_through;               /* seq of the last checkpoint that verified */
	unsigned char cp_hash[HASH_LEN];      /* hash(signed_through): the chain of checkpoints */
	int v2_seen;                          /* a checkpoint with prev: no v1 one may follow */
	const struct juki_audit_head *expect; /* what the node's store remembers */
	int saw_expected_cp;
	int broken;
	int64_t first_broken;
	const char *reason;
};

static void
broken(struct walk *w, int64_t seq, const char *reason)
{
	if (!w->broken) {
		w->broken = 1;
		w->first_broken = seq;
		w->reason = reason;
	}
}

/*
 * Read entry columns as the chain needs them.  A column of another type
 * than append writes (someone stored a text time, a blob name) cannot give
 * back the hash: the row counts as edited.
 */
static int
read_entry(sqlite3_stmt *st, struct entry *e, const unsigned char **hash)
{
	e->seq = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 1) != SQLITE_INTEGER) {
		return -1;
	}
	e->time_ms = sqlite3_column_int64(st, 1);
	for (int i = 0; i < NFIELDS; i++) {
		int type = sqlite3_column_type(st, 2 + i);

		if (type == SQLITE_NULL && (i == 2 || i == 4)) {
			e->text[i] = NULL;
			e->len[i] = 0;
			continue;
		}
		if (type != SQLITE_TEXT) {
			return -1;
		}
		e->text[i] = (const char *)sqlite3_column_text(st, 2 + i);
		e->len[i] = (size_t)sqlite3_column_bytes(st, 2 + i);
		if (e->text[i] == NULL) {
			return -1;
		}
	}
	if (sqlite3_column_type(st, 7) != SQLITE_BLOB || sqlite3_column_bytes(st, 7) != HASH_LEN) {
		return -1;
	}
	*hash = sqlite3_column_blob(st, 7);
	return 0;
}

/* A signature by any of the node's keys. */
static int
signed_by_node(const struct walk *w, const unsigned char *msg, size_t len, const unsigned char *sig,
	       size_t siglen)
{
	for (size_t i = 0; i < w->nkeys; i++) {
		if (signature_ok(w->keys[i], msg, len, sig, siglen)) {
			return 1;
		}
	}
	return 0;
}

/* One checkpoint against the chain hash at its seq, then its signature. */
static void
check_checkpoint(struct walk *w, sqlite3_stmt *cp)
{
	unsigned char msg[CP_MSG_LEN];
	int64_t seq = sqlite3_column_int64(cp, 0);
	int64_t prev = -1;
	const unsigned char *sig;
	size_t len;
	int siglen;

	if (sqlite3_column_type(cp, 4) == SQLITE_INTEGER) {
		prev = sqlite3_column_int64(cp, 4);
		w->v2_seen = 1;
		/* The checkpoint before it is gone: a break at that one. */
		if (prev != w->signed_through) {
			broken(w, prev > w->signed_through ? prev : seq, "checkpoint");
			return;
		}
	} else if (sqlite3_column_type(cp, 4) != SQLITE_NULL || w->v2_seen) {
		broken(w, seq, "checkpoint");
		return;
	}
	if (sqlite3_column_type(cp, 1) != SQLITE_INTEGER ||
	    sqlite3_column_type(cp, 2) != SQLITE_BLOB || sqlite3_column_bytes(cp, 2) != HASH_LEN ||
	    CRYPTO_memcmp(sqlite3_column_blob(cp, 2), w->hash, HASH_LEN) != 0) {
		broken(w, seq, "checkpoint");
		return;
	}
	len = checkpoint_msg(seq, sqlite3_column_int64(cp, 1), w->hash, prev, w->cp_hash, msg);
	sig = sqlite3_column_blob(cp, 3);
	siglen = sqlite3_column_bytes(cp, 3);
	if (sqlite3_column_type(cp, 3) != SQLITE_BLOB || sig == NULL ||
	    !signed_by_node(w, msg, len, sig, (size_t)siglen)) {
		broken(w, seq, "signature");
		return;
	}
	w->signed_through = seq;
	memcpy(w->cp_hash, w->hash, HASH_LEN);
	if (w->expect != NULL && seq == w->expect->cp_seq) {
		w->saw_expected_cp = 1;
	}
}

/*
 * Advance the checkpoint cursor past every checkpoint up to seq.  With
 * check, seq is the entry just hashed and a checkpoint there is checked;
 * any other one matches no entry (a seq below 1).  Returns the cursor's
 * step result (SQLITE_ROW: it stands on a later checkpoint).
 */
static int
checkpoints_upto(struct walk *w, sqlite3_stmt *cp, int step, int64_t seq, int check)
{
	while (step == SQLITE_ROW && sqlite3_column_int64(cp, 0) <= seq) {
		int64_t cseq = sqlite3_column_int64(cp, 0);

		w->checkpoints++;
		w->last_cp = cseq;
		if (check && cseq == seq) {
			check_checkpoint(w, cp);
		} else {
			broken(w, cseq, "checkpoint");
		}
		step = sqlite3_step(cp);
	}
	return step;
}

/* The rules of docs/audit.md §1, which juki_audit_append() enforces. */
static int
entry_rules_ok(const struct entry *e)
{
	if (e->time_ms < 0 || e->time_ms > TIME_MAX_MS) {
		return 0;
	}
	for (int i = 0; i < NFIELDS; i++) {
		if (e->text[i] != NULL &&
		    (strlen(e->text[i]) != e->len[i] || !field_ok(e->text[i], i != 2 && i != 4))) {
			return 0;
		}
	}
	return 1;
}

static int
walk_entries(sqlite3 *db, int64_t version, struct walk *w, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL, *cp = NULL;
	const unsigned char *stored;
	unsigned char hash[HASH_LEN];
	int step, cstep, hrc, rc = JUKI_ESTORE;
	struct entry e;

	if (sqlite3_prepare_v2(db,
			       "SELECT seq, time_ms, operator, action, target, outcome, detail, "
			       "hash FROM entries ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       version == 1 ? "SELECT seq, time_ms, hash, sig, NULL FROM "
					      "checkpoints ORDER BY seq"
					    : "SELECT seq, time_ms, hash, sig, prev FROM "
					      "checkpoints ORDER BY seq",
			       -1, &cp, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	cstep = sqlite3_step(cp);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);

		w->entries++;
		if (w->broken) {
			continue;
		}
		/* checkpoints that no entry before this one matched */
		cstep = checkpoints_upto(w, cp, cstep, w->expected - 1, 0);
		if (w->broken) {
			continue;
		}
		if (seq != w->expected) {
			broken(w, seq > w->expected ? w->expected : seq, "sequence");
			continue;
		}
		if (read_entry(st, &e, &stored) != 0) {
			broken(w, seq, "hash");
			continue;
		}
		hrc = chain_hash(w->hash, &e, hash);
		if (hrc != 0) {
			juki_seterr(err, errlen, "cannot hash: %s", juki_strerror(hrc));
			rc = hrc;
			goto out;
		}
		if (CRYPTO_memcmp(hash, stored, HASH_LEN) != 0) {
			broken(w, seq, "hash");
			continue;
		}
		/* A row that chains but that juki_audit_append() would never have written. */
		if (!entry_rules_ok(&e)) {
			broken(w, seq, "field");
			continue;
		}
		if (w->expect != NULL && seq == w->expect->seq &&
		    CRYPTO_memcmp(hash, w->expect->hash, HASH_LEN) != 0) {
			broken(w, seq, "rewritten");
			continue;
		}
		memcpy(w->hash, hash, HASH_LEN);
		w->expected++;
		cstep = checkpoints_upto(w, cp, cstep, seq, 1);
	}
	if (step != SQLITE_DONE) {
		juki_seterr(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	/* Checkpoints past the last entry sign entries that are gone. */
	while (cstep == SQLITE_ROW) {
		int64_t cseq = sqlite3_column_int64(cp, 0);

		w->checkpoints++;
		w->last_cp = cseq;
		broken(w, cseq < w->expected ? cseq : w->expected,
		       cseq < w->expected ? "checkpoint" : "sequence");
		cstep = sqlite3_step(cp);
	}
	if (cstep != SQLITE_DONE) {
		juki_seterr(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	/* What the node recorded and the file no longer holds. */
	if (w->expect != NULL && w->expected - 1 < w->expect->seq) {
		broken(w, w->expected, "missing");
	}
	if (w->expect != NULL && w->expect->cp_seq > 0 && !w->saw_expected_cp) {
		broken(w, w->expect->cp_seq, "missing");
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(cp);
	return rc;
}

static int
check_history(sqlite3 *db, const char *path, int64_t *version, char *err, size_t errlen)
{
	int64_t app = 0;

	if (pragma_int(db, "PRAGMA application_id", &app) != 0 ||
	    pragma_int(db, "PRAGMA user_version", version) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		return JUKI_ESTORE;
	}
	if (app != APPLICATION_ID) {
		juki_seterr(err, errlen, "%s: not an operation history", path);
		return JUKI_ESCHEMA;
	}
	if (*version != SCHEMA_VERSION && *version != 1) {
		juki_seterr(err, errlen,
			    "%s: operation history of version %lld, this program knows %d", path,
			    (long long)*version, SCHEMA_VERSION);
		return JUKI_ESCHEMA;
	}
	return 0;
}

static json_t *
report_json(const struct walk *w)
{
	int64_t tail = w->broken ? 0 : w->expected - 1 - w->last_cp;

	return json_pack(
	    "{s:b,s:I,s:I,s:o,s:o,s:I,s:I,s:o}", "ok", !w->broken, "entries",
	    (json_int_t)w->entries, "checkpoints", (json_int_t)w->checkpoints, "first_broken",
	    w->broken ? json_integer((json_int_t)w->first_broken) : json_null(), "reason",
	    w->broken ? json_string(w->reason) : json_null(), "signed_through",
	    (json_int_t)w->signed_through, "unsigned_tail", (json_int_t)tail, "recorded",
	    w->expect != NULL ? json_integer((json_int_t)w->expect->seq) : json_null());
}

int
juki_audit_verify_file(const char *path, const char *cert_pem, json_t **report, char *err,
		       size_t errlen)
{
	return juki_audit_verify_file_head(path, cert_pem, NULL, report, err, errlen);
}

/*
 * A URI that opens path read-only and immutable: SQLite then writes
 * nothing beside it (no -wal, no -shm), as a folder that is not ours
 * requires.  Everything but unreserved characters and '/' is escaped.
 */
static char *
immutable_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *uri = malloc(n * 3 + sizeof("file:?mode=ro&immutable=1"));
	char *p = uri;

	if (uri == NULL) {
		return NULL;
	}
	p += sprintf(p, "file:");
	for (const unsigned char *s = (const unsigned char *)path; *s != '\0'; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("/-._~", *s) != NULL) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	strcpy(p, "?mode=ro&immutable=1");
	return uri;
}

/* A folder we cannot write to: a copy kept for the auditor, on read-only media. */
static int
folder_read_only(const char *path)
{
	char *copy = strdup(path);
	int ro;

	if (copy == NULL) {
		return 0;
	}
	ro = access(dirname(copy), W_OK) != 0;
	free(copy);
	return ro;
}

/*
 * A read-only connection to the SQLite file at path: plain where its folder
 * is writable (the daemon may be writing, and a reader must see its WAL),
 * immutable where it is not (nothing is written beside a copy).  0,
 * JUKI_ENOMEM, or JUKI_ESTORE with err; *db is closed by the caller either way.
 */
static int
open_read_only(const char *path, sqlite3 **db, char *err, size_t errlen)
{
	char *uri = NULL;
	int rc = 0;

	*db = NULL;
	if (folder_read_only(path) && (uri = immutable_uri(path)) == NULL) {
		return JUKI_ENOMEM;
	}
	if (sqlite3_open_v2(uri != NULL ? uri : path, db,
			    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX |
				(uri != NULL ? SQLITE_OPEN_URI : 0),
			    NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path,
			    *db ? sqlite3_errmsg(*db) : "out of memory");
		rc = JUKI_ESTORE;
	} else {
		sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
	}
	free(uri);
	return rc;
}

int
juki_audit_verify_file_head(const char *path, const char *cert_pem,
			    const struct juki_audit_head *expect, json_t **report, char *err,
			    size_t errlen)
{
	struct walk w = {.expected = 1, .expect = expect};
	struct stat sb;
	sqlite3 *db = NULL;
	int64_t version = 0;
	int rc;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (report == NULL) {
		return JUKI_EINVAL;
	}
	*report = NULL;
	if (path == NULL || cert_pem == NULL) {
		juki_seterr(err, errlen,
			    "verifying needs the history file and the node's certificate");
		return JUKI_EINVAL;
	}
	rc = load_public_keys(cert_pem, w.keys, &w.nkeys, err, errlen);
	if (rc != 0) {
		return rc;
	}
	/* SQLite would say "unable to open"; the missing file deserves its own words. */
	if (stat(path, &sb) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		if (rc == -ENOENT && expect != NULL && expect->seq > 0) {
			/* The node recorded entries: their file being gone is a finding. */
			broken(&w, 1, "missing");
			rc = (*report = report_json(&w)) != NULL ? 0 : JUKI_ENOMEM;
		}
		goto out;
	}
	/* One read transaction gives entries and checkpoints from the same moment. */
	if ((rc = open_read_only(path, &db, err, errlen)) != 0) {
		goto out;
	}
	rc = JUKI_ESTORE;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	rc = check_history(db, path, &version, err, errlen);
	if (rc != 0) {
		goto out;
	}
	rc = walk_entries(db, version, &w, err, errlen);
	if (rc != 0) {
		goto out;
	}
	*report = report_json(&w);
	if (*report == NULL) {
		juki_seterr(err, errlen, "out of memory");
		rc = JUKI_ENOMEM;
		goto out;
	}
	rc = 0;
out:
	if (db != NULL && !sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	for (size_t i = 0; i < w.nkeys; i++) {
		EVP_PKEY_free(w.keys[i]);
	}
	return rc;
}

int
juki_audit_head_read(const char *store_path, struct juki_audit_head *head, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = JUKI_ESTORE, step;

	memset(head, 0, sizeof(*head));
	if ((rc = open_read_only(store_path, &db, err, errlen)) != 0) {
		goto out;
	}
	rc = JUKI_ESTORE;
	if (sqlite3_prepare_v2(db, head_get_sql, -1, &st, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", store_path,
			    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		juki_seterr(err, errlen, "%s: remembers no operation history", store_path);
		rc = JUKI_ENOTFOUND;
	} else if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == HASH_LEN &&
		   sqlite3_column_bytes(st, 3) == HASH_LEN) {
		head->seq = sqlite3_column_int64(st, 0);
		memcpy(head->hash, sqlite3_column_blob(st, 1), HASH_LEN);
		head->cp_seq = sqlite3_column_int64(st, 2);
		memcpy(head->cp_hash, sqlite3_column_blob(st, 3), HASH_LEN);
		rc = 0;
	} else {
		juki_seterr(err, errlen, "%s: %s", store_path, sqlite3_errmsg(db));
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
juki_audit_last_cp(struct juki_audit *audit, struct juki_audit_cp *cp)
{
	static const char sql[] = "SELECT seq, time_ms, hash, sig, prev FROM checkpoints"
				  " ORDER BY seq DESC LIMIT 1";
	sqlite3_stmt *st = NULL;
	int rc = JUKI_ESTORE, step;

	if (audit == NULL || cp == NULL) {
		return JUKI_EINVAL;
	}
	memset(cp, 0, sizeof(*cp));
	if (sqlite3_prepare_v2(audit->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return JUKI_ESTORE;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = JUKI_ENOTFOUND;
	} else if (step == SQLITE_ROW && sqlite3_column_bytes(st, 2) == HASH_LEN &&
		   sqlite3_column_bytes(st, 3) > 0 &&
		   sqlite3_column_bytes(st, 3) <= JUKI_AUDIT_SIG_MAX) {
		cp->seq = sqlite3_column_int64(st, 0);
		cp->time_ms = sqlite3_column_int64(st, 1);
		memcpy(cp->hash, sqlite3_column_blob(st, 2), HASH_LEN);
		cp->siglen = (size_t)sqlite3_column_bytes(st, 3);
		memcpy(cp->sig, sqlite3_column_blob(st, 3), cp->siglen);
		cp->prev =
		    sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
		rc = 0;
	}
	sqlite3_finalize(st);
	if (rc == 0 && cp->prev > 0 &&
	    hash_at(audit->db, CP_HASH_SQL, cp->prev, cp->prev_hash) != 1) {
		rc = JUKI_ESTORE;
	}
	return rc;
}

int
juki_audit_cp_verify(const struct juki_audit_cp *cp, EVP_PKEY *key)
{
	unsigned char msg[CP_MSG_LEN];
	size_t len;

	if (cp == NULL || key == NULL || cp->seq < 1 || cp->siglen == 0 ||
	    cp->siglen > JUKI_AUDIT_SIG_MAX || cp->prev >= cp->seq) {
		return JUKI_EINVAL;
	}
	len = checkpoint_msg(cp->seq, cp->time_ms, cp->hash, cp->prev, cp->prev_hash, msg);
	return signature_ok(key, msg, len, cp->sig, cp->siglen) ? 0 : JUKI_EAUTH;
}

int
juki_audit_verify_witnessed(const char *path, const struct juki_audit_cp *cps, size_t n,
			    json_t **report, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int64_t last = 0, through = 0, bad = 0;
	const char *reason = NULL;
	int rc = JUKI_ESTORE;

	if (report == NULL || path == NULL || (cps == NULL && n > 0)) {
		return JUKI_EINVAL;
	}
	*report = NULL;
	if ((rc = open_read_only(path, &db, err, errlen)) != 0) {
		goto out;
	}
	rc = JUKI_ESTORE;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    pragma_int(db, "SELECT coalesce(max(seq), 0) FROM entries", &last) != 0) {
		juki_seterr(err, errlen, "%s: not an operation history (%s)", path,
			    sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char h[HASH_LEN];
		int found;

		if (cps[i].seq > through) {
			through = cps[i].seq;
		}
		if (cps[i].seq < 1) {
			continue;
		}
		found = hash_at(db, ENTRY_HASH_SQL, cps[i].seq, h);
		if (found < 0) {
			juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
			goto out;
		}
		if (found == 0 || memcmp(h, cps[i].hash, HASH_LEN) != 0) {
			const char *why = found == 0 && cps[i].seq > last ? "rollback" : "fork";

			/* The first witnessed seq that the file does not hold decides. */
			if (bad == 0 || cps[i].seq < bad) {
				bad = cps[i].seq;
				reason = why;
			}
		}
	}
	*report =
	    json_pack("{s:b,s:I,s:I,s:I,s:o,s:o}", "ok", bad == 0, "checkpoints", (json_int_t)n,
		      "through", (json_int_t)through, "entries", (json_int_t)last, "first_bad",
		      bad != 0 ? json_integer((json_int_t)bad) : json_null(), "reason",
		      reason != NULL ? json_string(reason) : json_null());
	rc = *report != NULL ? 0 : JUKI_ENOMEM;
out:
	if (db != NULL && !sqlite3_get_autocommit(db)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	return rc;
}
