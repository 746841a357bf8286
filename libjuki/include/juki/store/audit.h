/*
 * juki — the operation history (操作履歴, 第4-4(6)).
 *
 * Every request an operator or administrator makes — successful or not,
 * failed logins included — is appended to a SQLite database of its own (not
 * the node's store) as a hash chain:
 *
 *   hash(n) = SHA-256(hash(n-1) || canonical(entry n))
 *
 * where canonical() is a fixed, unambiguous encoding of seq, time, operator,
 * action, target, outcome and detail (see audit.c), and hash(0) is 32 zero
 * bytes.  Every `checkpoint_every` entries (and on juki_audit_checkpoint())
 * the head (seq, hash) is signed with the node's private key and the
 * signature kept: editing, deleting or inserting an entry breaks the chain
 * at that entry, and rewriting the whole chain after it cannot produce the
 * node's signatures.
 *
 * An entry holds who (operator URN, or "admin:uid=N" for the local socket),
 * what (the action, e.g. "resident.show"), when, the target (a 住民票コード or
 * another identifier, never a name or an address), the outcome ("ok", or
 * the error code: "wrong-pin", "forbidden", ...) and a short detail that
 * names rules, never personal data.
 */
#ifndef JUKI_AUDIT_H
#define JUKI_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "juki/store/store.h"
#include "juki/wire/tls.h"

#define JUKI_AUDIT_FIELD_MAX 128
#define JUKI_AUDIT_HASH_LEN  32
/* A verifier takes at most this many certificates, and refuses a file with more. */
#define JUKI_AUDIT_CERTS_MAX 16

/*
 * What the node's own store remembers of its history (the table audit_head
 * of the schema JUKI_AUDIT_SCHEMA): the last entry appended and its hash,
 * and the last checkpoint and the hash it signed.  seq 0: nothing yet.
 */
struct juki_audit_head {
	int64_t seq;
	unsigned char hash[JUKI_AUDIT_HASH_LEN];
	int64_t cp_seq;
	unsigned char cp_hash[JUKI_AUDIT_HASH_LEN];
};

/* The node store's schema of the remembered head; a node lists it with its own. */
extern const struct juki_migration juki_audit_steps[1];
#define JUKI_AUDIT_SCHEMA                                                                          \
	{                                                                                          \
		"audit", juki_audit_steps, 1                                                       \
	}

/*
 * Whether the file is the history the node recorded (juki_audit_state()):
 * GONE when the file is missing, empty or another file than the one opened;
 * ROLLBACK when it lacks entries or checkpoints the node recorded (cut,
 * rolled back) or holds other ones (rewritten, replaced, another node's).
 * Anything but OK refuses appends and checkpoints until juki_audit_adopt().
 */
enum juki_audit_state {
	JUKI_AUDIT_OK = 0,
	JUKI_AUDIT_GONE,
	JUKI_AUDIT_ROLLBACK,
};

struct juki_audit;

/*
 * juki_audit_open() - open (creating, mode 0600) the history at path.
 * signer (borrowed; may be replaced with juki_audit_set_signer()) signs
 * checkpoints with the node's key; checkpoint_every is the number of entries
 * between checkpoints (>= 1).  Returns 0 or a negative code with err.
 */
int juki_audit_open(const char *path, struct juki_tls *signer, int64_t checkpoint_every,
		    struct juki_audit **out, char *err, size_t errlen);
void juki_audit_set_signer(struct juki_audit *audit, struct juki_tls *signer);

/*
 * juki_audit_bind() - remember the head in store (borrowed, holding the
 * schema JUKI_AUDIT_SCHEMA) from now on, after every append and checkpoint,
 * and compare the file with what the store remembers: a file that does not
 * hold the remembered head entry and checkpoint puts the history in state
 * GONE or ROLLBACK.  A store that remembers nothing takes the file as it
 * is.  Returns 0 (whatever the state) or JUKI_ESTORE.
 */
int juki_audit_bind(struct juki_audit *audit, struct juki_store *store);

/*
 * juki_audit_check() - is the file still the one this process writes: the
 * same file at the path, ending at the entry and checkpoint last written?
 * When not, the state changes and the changed entry is found among those
 * since the last checkpoint.  Returns the state.
 */
enum juki_audit_state juki_audit_check(struct juki_audit *audit);

/*
 * juki_audit_state() - the state; *seq the first entry found missing or
 * changed, why a sentence without personal data (may be NULL).
 */
enum juki_audit_state juki_audit_state(const struct juki_audit *audit, int64_t *seq,
				       const char **reason, char *why, size_t whylen);

/*
 * juki_audit_adopt() - an administrator's decision: take the file now at the
 * path as the history (creating it when missing), continue its chain and
 * remember its head in the store.  found gets what was found (the state's
 * sentence).  JUKI_EEXIST when the state is OK; JUKI_ESTORE.
 */
int juki_audit_adopt(struct juki_audit *audit, char *found, size_t foundlen);

/*
 * juki_audit_head() - the head the node's store remembers (without a store:
 * the last one this process wrote or found at open).
 */
void juki_audit_head(const struct juki_audit *audit, struct juki_audit_head *head);

/*
 * juki_audit_head_read() - the head remembered in the node's store at
 * store_path, read-only.  JUKI_ENOTFOUND when it remembers none.
 */
int juki_audit_head_read(const char *store_path, struct juki_audit_head *head, char *err,
			 size_t errlen);
void juki_audit_close(struct juki_audit *audit);

/*
 * juki_audit_append() - append one entry, durably (its own transaction,
 * committed before this returns), and sign a checkpoint when one is due.
 * target and detail may be NULL.  Returns 0 or JUKI_ESTORE; JUKI_EINVAL,
 * recording nothing, for a field over JUKI_AUDIT_FIELD_MAX bytes, not
 * UTF-8 or holding a control character, an empty op/action/outcome, or a
 * time outside 1970..9999.  A checkpoint that cannot be signed (no signer)
 * does not fail the append; it is tried again with the next one.
 * JUKI_EPERM, recording nothing, when the state is not OK (checked first,
 * juki_audit_check()) or a due checkpoint would sign over entries that do
 * not link to the last one.
 */
int juki_audit_append(struct juki_audit *audit, int64_t now_ms, const char *op, const char *action,
		      const char *target, const char *outcome, const char *detail);

/*
 * juki_audit_checkpoint() - sign the head now (no-op when nothing new).
 * JUKI_EINVAL when there is no signer, JUKI_ETLS, JUKI_ESTORE; JUKI_EPERM
 * when the state is not OK or the entries since the last checkpoint are
 * not the ones this process wrote.
 */
int juki_audit_checkpoint(struct juki_audit *audit, int64_t now_ms);

/*
 * juki_audit_show() - entries, oldest first, with op (NULL: anyone) and at
 * or after since_ms, at most limit: {"entries": [{"seq", "time", "operator",
 * "action", "target", "outcome", "detail"}], "more": bool}.  NULL on failure.
 */
json_t *juki_audit_show(struct juki_audit *audit, const char *op, int64_t since_ms, size_t limit);

/*
 * juki_audit_verify_file() - check the history at path, read-only: the chain
 * from the first entry, and each checkpoint's signature against the public
 * keys of the certificates in cert_pem (the node's certificate file, or a
 * file of its current and earlier certificates, up to 16: a checkpoint
 * signed by any of them verifies).  *report:
 * {"ok": bool, "entries": n, "checkpoints": n, "first_broken": seq or null,
 *  "reason": "hash" | "signature" | "sequence" | ...}.  Returns 0 when the
 * check ran (whatever it found), a negative code when it could not run.
 * Also in the report: "signed_through" (seq of the last checkpoint that
 * verified, 0: none) and "unsigned_tail" (when ok, the entries after the
 * last checkpoint: a cut there cannot be seen); reason "checkpoint" is a
 * checkpoint whose hash is not the chain's.  docs/audit.md has the rules.
 */
int juki_audit_verify_file(const char *path, const char *cert_pem, json_t **report, char *err,
			   size_t errlen);

/*
 * juki_audit_verify_file_head() - the same, and the file must hold the head
 * the node remembers (expect; NULL: no such check): the entry expect->seq
 * with its hash and the checkpoint expect->cp_seq.  Entries or checkpoints
 * missing are the reason "missing" at the first missing seq (also when the
 * file itself is missing), another entry there is "rewritten"; the report
 * has "recorded": expect->seq.
 */
int juki_audit_verify_file_head(const char *path, const char *cert_pem,
				const struct juki_audit_head *expect, json_t **report, char *err,
				size_t errlen);

/*
 * A signed checkpoint as a witness keeps it (docs/audit.md, witnessed
 * history): the signed message is made again from these fields, so a
 * witness verifies the signature with the node's certificate alone.
 * prev < 0 marks a version 1 checkpoint (no checkpoint chain).
 */
#define JUKI_AUDIT_SIG_MAX 512
struct juki_audit_cp {
	int64_t seq;
	int64_t time_ms;
	unsigned char hash[JUKI_AUDIT_HASH_LEN];
	int64_t prev; /* the checkpoint before it; 0: none; < 0: version 1 */
	unsigned char prev_hash[JUKI_AUDIT_HASH_LEN];
	unsigned char sig[JUKI_AUDIT_SIG_MAX];
	size_t siglen;
};

/*
 * juki_audit_last_cp() - the last checkpoint in the file as it is now (not
 * what the store remembers: a file rolled back gives its old checkpoint).
 * JUKI_ENOTFOUND when the file holds none; JUKI_ESTORE.
 */
int juki_audit_last_cp(struct juki_audit *audit, struct juki_audit_cp *cp);

/*
 * juki_audit_cp_verify() - is cp's signature the one key (the public key of
 * the node's certificate) made?  0 when it is, JUKI_EAUTH when not,
 * JUKI_EINVAL for a malformed cp.
 */
int juki_audit_cp_verify(const struct juki_audit_cp *cp, EVP_PKEY *key);

/*
 * juki_audit_verify_witnessed() - does the history at path hold every
 * checkpoint a witness kept (cps, n of them): the entry at each seq with
 * that hash?  Read-only.  *report: {"ok": bool, "checkpoints": n,
 * "through": the highest witnessed seq, "entries": the file's last seq,
 * "first_bad": seq or null, "reason": null | "rollback" (the file ends
 * before a witnessed seq) | "fork" (another entry at a witnessed seq)}.
 * The chain itself is juki_audit_verify_file()'s: together they say the
 * witnessed checkpoints are on the file's chain.  0 when the check ran, a
 * negative code with err when it could not.
 */
int juki_audit_verify_witnessed(const char *path, const struct juki_audit_cp *cps, size_t n,
				json_t **report, char *err, size_t errlen);

#endif
