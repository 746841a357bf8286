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

#include "juki/wire/tls.h"

#define JUKI_AUDIT_FIELD_MAX 128

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
void juki_audit_close(struct juki_audit *audit);

/*
 * juki_audit_append() - append one entry, durably (its own transaction,
 * committed before this returns), and sign a checkpoint when one is due.
 * target and detail may be NULL.  Returns 0 or JUKI_ESTORE; JUKI_EINVAL,
 * recording nothing, for a field over JUKI_AUDIT_FIELD_MAX bytes, not
 * UTF-8 or holding a control character, an empty op/action/outcome, or a
 * time outside 1970..9999.  A checkpoint that cannot be signed (no signer)
 * does not fail the append; it is tried again with the next one.
 */
int juki_audit_append(struct juki_audit *audit, int64_t now_ms, const char *op, const char *action,
		      const char *target, const char *outcome, const char *detail);

/*
 * juki_audit_checkpoint() - sign the head now (no-op when nothing new).
 * JUKI_EINVAL when there is no signer, JUKI_ETLS, JUKI_ESTORE.
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
 * juki_audit_verify_file_tick() - the same, calling tick(tick_arg) every
 * 1,024 entries: a daemon that verifies on its event loop feeds its
 * watchdog there.
 */
int juki_audit_verify_file_tick(const char *path, const char *cert_pem, void (*tick)(void *arg),
				void *tick_arg, json_t **report, char *err, size_t errlen);

#endif
