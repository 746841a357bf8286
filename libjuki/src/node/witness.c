/*
 * The witnessed operation history: witness.h says what it detects,
 * docs/architecture.md what it cannot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/ident.h"
#include "juki/node/log.h"
#include "juki/node/node.h"
#include "juki/node/witness.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#define HASH_HEX (2 * JUKI_AUDIT_HASH_LEN)

const struct juki_migration juki_witness_steps[JUKI_WITNESS_NSTEPS] = {
    {1, "CREATE TABLE witness_cps ("
	" node TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" hash BLOB NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" prev INTEGER,"
	" prev_hash BLOB,"
	" sig BLOB,"
	" cert TEXT,"
	" received_ms INTEGER NOT NULL,"
	" verdict TEXT NOT NULL,"
	" PRIMARY KEY (node, seq, hash)"
	") WITHOUT ROWID;"
	"CREATE TABLE witness_certs ("
	" fp TEXT PRIMARY KEY,"
	" node TEXT NOT NULL,"
	" pem TEXT NOT NULL,"
	" first_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"},
};

static const char *const verdict_names[] = {"ok",   "same",    "backwards",
					    "fork", "restart", "invalid"};

const char *
juki_witness_verdict_name(enum juki_witness_verdict v)
{
	return (unsigned)v < sizeof(verdict_names) / sizeof(verdict_names[0]) ? verdict_names[v]
									      : "unknown";
}

/* ---- the node's side ---------------------------------------------------------------- */

static char *
read_small_file(const char *path, size_t max)
{
	FILE *fp = fopen(path, "re");
	char *buf;
	size_t n;

	if (fp == NULL) {
		return NULL;
	}
	buf = malloc(max + 1);
	n = buf != NULL ? fread(buf, 1, max + 1, fp) : 0;
	fclose(fp);
	if (buf == NULL || n == 0 || n > max) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The first certificate of a PEM file, as PEM text (the node's own, not its chain). */
static char *
first_cert_pem(const char *path)
{
	char *all = read_small_file(path, 64 * 1024), *end;
	static const char tail[] = "-----END CERTIFICATE-----";

	if (all == NULL || (end = strstr(all, tail)) == NULL) {
		free(all);
		return NULL;
	}
	end[sizeof(tail) - 1] = '\n';
	end[sizeof(tail)] = '\0';
	if (strlen(all) > JUKI_WITNESS_CERT_MAX) {
		free(all);
		return NULL;
	}
	return all;
}

json_t *
juki_witness_member(struct juki_audit *audit, const char *cert_path)
{
	struct juki_audit_cp cp;
	char hash[HASH_HEX + 1], prev_hash[HASH_HEX + 1], when[32];
	char *sig, *pem;
	json_t *out;
	int rc = juki_audit_last_cp(audit, &cp);

	if (rc == JUKI_ENOTFOUND) {
		return json_pack("{s:i}", "seq", 0);
	}
	if (rc != 0 || juki_clock_format(cp.time_ms, when, sizeof(when)) != 0) {
		return NULL;
	}
	if ((pem = first_cert_pem(cert_path)) == NULL) {
		return NULL;
	}
	if ((sig = malloc(2 * cp.siglen + 1)) == NULL) {
		free(pem);
		return NULL;
	}
	juki_hex_encode(cp.hash, JUKI_AUDIT_HASH_LEN, hash);
	juki_hex_encode(cp.prev_hash, JUKI_AUDIT_HASH_LEN, prev_hash);
	juki_hex_encode(cp.sig, cp.siglen, sig);
	out = json_pack("{s:I,s:s,s:s,s:o,s:s,s:s,s:s}", "seq", (json_int_t)cp.seq, "time", when,
			"hash", hash, "prev",
			cp.prev < 0 ? json_null() : json_integer((json_int_t)cp.prev), "prev_hash",
			prev_hash, "sig", sig, "cert", pem);
	free(sig);
	free(pem);
	return out;
}

json_t *
juki_witness_heartbeat(struct juki_node *node)
{
	struct juki_audit *audit = juki_opcmds_history(juki_node_opcmds(node));

	if (audit == NULL) {
		return NULL;
	}
	/*
	 * Sign what is unsigned first, so that a witness holds the head as of
	 * this heartbeat.  A history that is not the recorded one (state not
	 * OK) signs nothing: the heartbeat then carries its file's last
	 * checkpoint, which is what the witnesses must see.
	 */
	(void)juki_audit_checkpoint(audit, juki_node_now_ms(node));
	return juki_witness_member(audit, juki_node_conf(node)->tls.cert);
}

/* ---- the witness's side ------------------------------------------------------------- */

static int
hex_member(const json_t *value, const char *key, unsigned char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(value, key));

	return s != NULL && strlen(s) == 2 * n && juki_hex_decode(s, out, n) == 0 ? 0 : -1;
}

int
juki_witness_parse(const json_t *value, struct juki_audit_cp *cp, const char **pem, char *why,
		   size_t whylen)
{
	const json_t *seq = json_object_get(value, "seq"), *prev = json_object_get(value, "prev");
	const char *time = json_string_value(json_object_get(value, "time"));
	const char *sig = json_string_value(json_object_get(value, "sig"));

	memset(cp, 0, sizeof(*cp));
	*pem = json_string_value(json_object_get(value, "cert"));
	if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
		juki_seterr(why, whylen, "seq: not a positive integer");
		return -1;
	}
	cp->seq = json_integer_value(seq);
	if (time == NULL || juki_clock_parse(time, &cp->time_ms) != 0) {
		juki_seterr(why, whylen, "time: not an RFC 3339 UTC time");
		return -1;
	}
	if (hex_member(value, "hash", cp->hash, JUKI_AUDIT_HASH_LEN) != 0) {
		juki_seterr(why, whylen, "hash: not %d hex digits", HASH_HEX);
		return -1;
	}
	if (json_is_null(prev)) {
		cp->prev = -1;
	} else if (json_is_integer(prev) && json_integer_value(prev) >= 0 &&
		   json_integer_value(prev) < cp->seq) {
		cp->prev = json_integer_value(prev);
		if (hex_member(value, "prev_hash", cp->prev_hash, JUKI_AUDIT_HASH_LEN) != 0) {
			juki_seterr(why, whylen, "prev_hash: not %d hex digits", HASH_HEX);
			return -1;
		}
	} else {
		juki_seterr(why, whylen, "prev: not null or an integer below seq");
		return -1;
	}
	if (sig == NULL || strlen(sig) < 2 || strlen(sig) % 2 != 0 ||
	    strlen(sig) > 2 * JUKI_AUDIT_SIG_MAX ||
	    juki_hex_decode(sig, cp->sig, strlen(sig) / 2) != 0) {
		juki_seterr(why, whylen, "sig: not hex of at most %d bytes", JUKI_AUDIT_SIG_MAX);
		return -1;
	}
	cp->siglen = strlen(sig) / 2;
	if (*pem == NULL || strlen(*pem) > JUKI_WITNESS_CERT_MAX) {
		juki_seterr(why, whylen, "cert: missing or longer than %d bytes",
			    JUKI_WITNESS_CERT_MAX);
		return -1;
	}
	return 0;
}

static int
cert_known(struct juki_store *store, const char *from, const char *fp)
{
	static const char sql[] = "SELECT 1 FROM witness_certs WHERE fp = ?1 AND node = ?2";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int known;

	if (st == NULL) {
		return 0;
	}
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
	known = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return known;
}

/* Is cert issued by the network's CA (dates aside) and naming from?  -1 with why when not. */
static int
cert_of_node(X509 *cert, const char *ca_file, const char *from, char *why, size_t whylen)
{
	struct juki_ident ident;

	/* A checkpoint stays valid after its certificate expires, as in audit verify. */
	if (juki_pki_chain_check(cert, NULL, ca_file, NULL, JUKI_PKI_ANY_TIME, why, whylen) != 0) {
		juki_seterr(why, whylen, "cert: not issued by the network's CA");
		return -1;
	}
	if (juki_tls_cert_ident(cert, &ident) != 0 || strcmp(ident.urn, from) != 0) {
		juki_seterr(why, whylen, "cert: does not name the sender");
		return -1;
	}
	return 0;
}

/* Check the certificate and the signature; the certificate's fingerprint into fp. */
static int
check_signed(struct juki_store *store, const char *ca_file, const char *from,
	     const struct juki_audit_cp *cp, const char *pem, int64_t now_ms, char fp[HASH_HEX + 1],
	     char *why, size_t whylen)
{
	static const char sql[] =
	    "INSERT OR IGNORE INTO witness_certs(fp, node, pem, first_ms) VALUES(?1, ?2, ?3, ?4)";
	BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
	X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_PKEY *key = NULL;
	sqlite3_stmt *st;
	int rc = -1;

	BIO_free(bio);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen != JUKI_AUDIT_HASH_LEN) {
		juki_seterr(why, whylen, "cert: not a PEM certificate");
		goto out;
	}
	juki_hex_encode(md, mdlen, fp);
	if (!cert_known(store, from, fp)) {
		if (cert_of_node(cert, ca_file, from, why, whylen) != 0) {
			goto out;
		}
	}
	if ((key = X509_get_pubkey(cert)) == NULL || juki_audit_cp_verify(cp, key) != 0) {
		juki_seterr(why, whylen, "checkpoint %lld: the signature does not verify",
			    (long long)cp->seq);
		goto out;
	}
	if ((st = juki_store_prepare(store, sql)) != NULL) {
		sqlite3_bind_text(st, 1, fp, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, pem, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, now_ms);
		sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	rc = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

/*
 * The hash of the witnessed (accepted) checkpoint of node at seq: 1 found,
 * 0 none, < 0 error.
 */
static int
ok_hash_at(struct juki_store *store, const char *node, int64_t seq,
	   unsigned char out[JUKI_AUDIT_HASH_LEN])
{
	static const char sql[] = "SELECT hash FROM witness_cps WHERE node = ?1 AND seq = ?2"
				  " AND verdict = 'ok' LIMIT 1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc = 0, step;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, seq);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == JUKI_AUDIT_HASH_LEN) {
		memcpy(out, sqlite3_column_blob(st, 0), JUKI_AUDIT_HASH_LEN);
		rc = 1;
	} else if (step != SQLITE_DONE && step != SQLITE_ROW) {
		rc = JUKI_ESTORE;
	}
	sqlite3_reset(st);
	return rc;
}

/* The highest accepted seq of node (0: none), and whether (seq, hash) is held at all. */
static int
witnessed(struct juki_store *store, const char *node, const struct juki_audit_cp *cp, int64_t *max,
	  int *held)
{
	static const char sql_max[] =
	    "SELECT coalesce(max(seq), 0) FROM witness_cps WHERE node = ?1 AND verdict = 'ok'";
	static const char sql_held[] =
	    "SELECT verdict FROM witness_cps WHERE node = ?1 AND seq = ?2"
	    " AND hash = ?3 AND verdict <> 'invalid'";
	sqlite3_stmt *st = juki_store_prepare(store, sql_max);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	*max = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	*held = -1;
	if (cp != NULL) {
		if ((st = juki_store_prepare(store, sql_held)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, cp->seq);
		sqlite3_bind_blob(st, 3, cp->hash, JUKI_AUDIT_HASH_LEN, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *v = (const char *)sqlite3_column_text(st, 0);

			for (int i = JUKI_WITNESS_OK; i < JUKI_WITNESS_INVALID; i++) {
				if (strcmp(v, verdict_names[i]) == 0) {
					*held = i;
				}
			}
		}
		sqlite3_reset(st);
	}
	return 0;
}

static int
keep(struct juki_store *store, const char *node, const struct juki_audit_cp *cp, const char *fp,
     int64_t now_ms, enum juki_witness_verdict v, int *fresh)
{
	static const char sql[] =
	    "INSERT OR IGNORE INTO witness_cps(node, seq, hash, time_ms, prev, prev_hash, sig, "
	    "cert,"
	    " received_ms, verdict) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	    /* a checkpoint once refused (its certificate, say) may be judged again */
	    " ON CONFLICT(node, seq, hash) DO UPDATE SET time_ms = excluded.time_ms,"
	    " prev = excluded.prev, prev_hash = excluded.prev_hash, sig = excluded.sig,"
	    " cert = excluded.cert, received_ms = excluded.received_ms,"
	    " verdict = excluded.verdict"
	    " WHERE verdict = 'invalid' AND excluded.verdict <> 'invalid'";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int step;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, cp->seq);
	sqlite3_bind_blob(st, 3, cp->hash, JUKI_AUDIT_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, cp->time_ms);
	if (cp->prev >= 0) {
		sqlite3_bind_int64(st, 5, cp->prev);
		sqlite3_bind_blob(st, 6, cp->prev_hash, JUKI_AUDIT_HASH_LEN, SQLITE_TRANSIENT);
	}
	if (cp->siglen > 0) {
		sqlite3_bind_blob(st, 7, cp->sig, (int)cp->siglen, SQLITE_TRANSIENT);
	}
	if (fp != NULL) {
		sqlite3_bind_text(st, 8, fp, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(st, 9, now_ms);
	sqlite3_bind_text(st, 10, juki_witness_verdict_name(v), -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (step != SQLITE_DONE) {
		return JUKI_ESTORE;
	}
	if (fresh != NULL) {
		*fresh = sqlite3_changes(sqlite3_db_handle(st)) > 0;
	}
	return 0;
}

/*
 * Of the accepted checkpoints of node received in the same hour as now_ms,
 * only the newest (seq) is kept: a witness needs the highest seq to see a
 * history go backwards, and one checkpoint an hour for audit verify
 * --witness; a busy node signs one every heartbeat.  Refused ones stay.
 */
static int
thin(struct juki_store *store, const char *node, int64_t seq, int64_t now_ms)
{
	static const char sql[] = "DELETE FROM witness_cps WHERE node = ?1 AND verdict = 'ok'"
				  " AND seq < ?2 AND received_ms >= ?3 AND received_ms < ?3 + ?4";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int step;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, seq);
	sqlite3_bind_int64(st, 3, now_ms - now_ms % JUKI_WITNESS_KEEP_EVERY);
	sqlite3_bind_int64(st, 4, JUKI_WITNESS_KEEP_EVERY);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return step == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

int
juki_witness_record(struct juki_store *store, const char *ca_file, const char *from,
		    const json_t *value, int64_t now_ms, enum juki_witness_verdict *verdict,
		    int *fresh, char *why, size_t whylen)
{
	struct juki_audit_cp cp;
	unsigned char h[JUKI_AUDIT_HASH_LEN];
	char fp[HASH_HEX + 1];
	const char *pem;
	int64_t max;
	int held, rc, dummy;

	if (fresh == NULL) {
		fresh = &dummy;
	}
	*fresh = 0;
	juki_seterr(why, whylen, "as witnessed");
	if (!json_is_object(value)) {
		*verdict = JUKI_WITNESS_INVALID;
		*fresh = 1;
		juki_seterr(why, whylen, "checkpoint: not an object");
		return 0;
	}
	if (json_is_integer(json_object_get(value, "seq")) &&
	    json_integer_value(json_object_get(value, "seq")) == 0) {
		/* No checkpoint: a history that starts again, if some were witnessed. */
		if ((rc = witnessed(store, from, NULL, &max, &held)) != 0) {
			return rc;
		}
		*verdict = JUKI_WITNESS_SAME;
		if (max > 0) {
			memset(&cp, 0, sizeof(cp));
			cp.prev = -1;
			*verdict = JUKI_WITNESS_RESTART;
			juki_seterr(why, whylen,
				    "no checkpoint in the history after seq %lld was witnessed",
				    (long long)max);
			return keep(store, from, &cp, NULL, now_ms, *verdict, fresh);
		}
		return 0;
	}
	if (juki_witness_parse(value, &cp, &pem, why, whylen) != 0) {
		*verdict = JUKI_WITNESS_INVALID;
		*fresh = 1;
		return 0;
	}
	if (check_signed(store, ca_file, from, &cp, pem, now_ms, fp, why, whylen) != 0) {
		*verdict = JUKI_WITNESS_INVALID;
		return keep(store, from, &cp, NULL, now_ms, *verdict, fresh);
	}
	if ((rc = witnessed(store, from, &cp, &max, &held)) != 0) {
		return rc;
	}
	if (held >= 0) {
		/* Judged before: the same verdict, not alerted again. */
		*verdict = held == JUKI_WITNESS_OK ? JUKI_WITNESS_SAME : held;
		juki_seterr(why, whylen, "checkpoint %lld: judged before", (long long)cp.seq);
		return 0;
	}
	if ((rc = ok_hash_at(store, from, cp.seq, h)) < 0) {
		return rc;
	}
	if (rc == 1) {
		*verdict = JUKI_WITNESS_FORK;
		juki_seterr(why, whylen, "checkpoint %lld: another hash than the one witnessed",
			    (long long)cp.seq);
	} else if (cp.seq < max) {
		*verdict = JUKI_WITNESS_BACKWARDS;
		juki_seterr(why, whylen, "checkpoint %lld after %lld was witnessed",
			    (long long)cp.seq, (long long)max);
	} else if (cp.prev > 0 && (rc = ok_hash_at(store, from, cp.prev, h)) == 1 &&
		   memcmp(h, cp.prev_hash, JUKI_AUDIT_HASH_LEN) != 0) {
		*verdict = JUKI_WITNESS_FORK;
		juki_seterr(why, whylen,
			    "checkpoint %lld follows %lld with another hash than the one witnessed",
			    (long long)cp.seq, (long long)cp.prev);
	} else if (rc < 0) {
		return rc;
	} else {
		*verdict = JUKI_WITNESS_OK;
		juki_seterr(why, whylen, "checkpoint %lld", (long long)cp.seq);
	}
	if ((rc = keep(store, from, &cp, fp, now_ms, *verdict, fresh)) != 0) {
		return rc;
	}
	return *verdict == JUKI_WITNESS_OK ? thin(store, from, cp.seq, now_ms) : 0;
}

void
juki_witness_observe(struct juki_node *node, const char *from, const json_t *value, int64_t now_ms)
{
	enum juki_witness_verdict v;
	char why[256];
	int fresh, rc;

	rc = juki_witness_record(juki_node_store(node), juki_node_conf(node)->tls.ca, from, value,
				 now_ms, &v, &fresh, why, sizeof(why));
	if (rc != 0) {
		log_warnx("witness: %s: cannot keep its checkpoint: %s", from, juki_strerror(rc));
		return;
	}
	if (!fresh || v == JUKI_WITNESS_OK || v == JUKI_WITNESS_SAME) {
		return;
	}
	juki_alert(juki_node_alerts(node),
		   v == JUKI_WITNESS_INVALID ? "checkpoint-invalid" : "audit-rollback", from, NULL,
		   "operation history %s: %s", juki_witness_verdict_name(v), why);
}

/* ---- export ------------------------------------------------------------------------- */

static json_t *
hex_or_null(sqlite3_stmt *st, int col)
{
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	char *buf;
	json_t *v;

	if (sqlite3_column_type(st, col) == SQLITE_NULL || (buf = malloc(2 * n + 1)) == NULL) {
		return json_null();
	}
	juki_hex_encode(sqlite3_column_blob(st, col), n, buf);
	v = json_string(buf);
	free(buf);
	return v;
}

static json_t *
time_json(int64_t ms)
{
	char buf[32];

	return juki_clock_format(ms, buf, sizeof(buf)) == 0 ? json_string(buf) : json_null();
}

static json_t *
export_summary(struct juki_store *store)
{
	static const char sql[] =
	    "SELECT node, count(*), coalesce(max(CASE WHEN verdict = 'ok' THEN seq END), 0),"
	    " max(received_ms), sum(verdict NOT IN ('ok')) FROM witness_cps GROUP BY node"
	    " ORDER BY node";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *nodes = json_array();

	if (st == NULL || nodes == NULL) {
		json_decref(nodes);
		return NULL;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    nodes, json_pack("{s:s,s:I,s:I,s:o,s:I}", "node", sqlite3_column_text(st, 0),
				     "checkpoints", (json_int_t)sqlite3_column_int64(st, 1),
				     "through", (json_int_t)sqlite3_column_int64(st, 2), "last",
				     time_json(sqlite3_column_int64(st, 3)), "problems",
				     (json_int_t)sqlite3_column_int64(st, 4)));
	}
	sqlite3_reset(st);
	return json_pack("{s:o}", "nodes", nodes);
}

json_t *
juki_witness_export(struct juki_store *store, const char *self, const char *node)
{
	static const char sql_cps[] =
	    "SELECT seq, time_ms, hash, prev, prev_hash, sig, cert, received_ms, verdict"
	    " FROM witness_cps WHERE node = ?1 ORDER BY seq, received_ms";
	static const char sql_certs[] = "SELECT fp, pem FROM witness_certs WHERE node = ?1"
					" ORDER BY first_ms";
	sqlite3_stmt *st;
	json_t *cps, *certs;

	if (node == NULL) {
		return export_summary(store);
	}
	if ((st = juki_store_prepare(store, sql_cps)) == NULL) {
		return NULL;
	}
	cps = json_array();
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	while (cps != NULL && sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(
		    cps,
		    json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s}", "seq",
			      (json_int_t)sqlite3_column_int64(st, 0), "time",
			      time_json(sqlite3_column_int64(st, 1)), "hash", hex_or_null(st, 2),
			      "prev",
			      sqlite3_column_type(st, 3) == SQLITE_NULL
				  ? json_null()
				  : json_integer(sqlite3_column_int64(st, 3)),
			      "prev_hash", hex_or_null(st, 4), "sig", hex_or_null(st, 5), "cert",
			      sqlite3_column_type(st, 6) == SQLITE_NULL
				  ? json_null()
				  : json_string((const char *)sqlite3_column_text(st, 6)),
			      "received", time_json(sqlite3_column_int64(st, 7)), "verdict",
			      sqlite3_column_text(st, 8)));
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_certs)) == NULL) {
		json_decref(cps);
		return NULL;
	}
	certs = json_array();
	sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
	while (certs != NULL && sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(certs,
				      json_pack("{s:s,s:s}", "fp", sqlite3_column_text(st, 0),
						"pem", sqlite3_column_text(st, 1)));
	}
	sqlite3_reset(st);
	return json_pack("{s:s,s:s,s:o*,s:o*}", "node", node, "witness", self, "checkpoints", cps,
			 "certs", certs);
}

int
juki_witness_export_cps(const json_t *export, struct juki_audit_cp **cps, size_t *n, char *err,
			size_t errlen)
{
	const json_t *arr = json_object_get(export, "checkpoints"), *v;
	size_t i;

	*cps = NULL;
	*n = 0;
	if (!json_is_array(arr)) {
		juki_seterr(err, errlen, "checkpoints: missing (not a witness's export?)");
		return JUKI_EINVAL;
	}
	if ((*cps = calloc(json_array_size(arr) + 1, sizeof(**cps))) == NULL) {
		return JUKI_ENOMEM;
	}
	json_array_foreach(arr, i, v)
	{
		const json_t *seq = json_object_get(v, "seq");
		const char *verdict = json_string_value(json_object_get(v, "verdict"));
		struct juki_audit_cp *cp = &(*cps)[*n];

		if (verdict == NULL || !json_is_integer(seq) || json_integer_value(seq) < 0) {
			juki_seterr(err, errlen, "checkpoints[%zu]: no seq or verdict", i);
			goto bad;
		}
		if (strcmp(verdict, "ok") != 0) {
			continue;
		}
		cp->seq = json_integer_value(seq);
		if (hex_member(v, "hash", cp->hash, JUKI_AUDIT_HASH_LEN) != 0) {
			juki_seterr(err, errlen, "checkpoints[%zu].hash: not %d hex digits", i,
				    HASH_HEX);
			goto bad;
		}
		(*n)++;
	}
	return 0;
bad:
	free(*cps);
	*cps = NULL;
	*n = 0;
	return JUKI_EINVAL;
}

int
juki_witness_cmd_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const json_t *v = json_object_get(args, "node");
	struct juki_ident ident;

	if (v != NULL &&
	    (!json_is_string(v) || juki_ident_parse(json_string_value(v), &ident) != 0 ||
	     ident.kind == JUKI_KIND_OP)) {
		return juki_ctl_fail(err, "usage", "node: a node's urn");
	}
	*result = juki_witness_export(juki_node_store(node), juki_node_self(node)->urn,
				      v != NULL ? ident.urn : NULL);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}
