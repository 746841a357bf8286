/*
 * juki — the queries of provision (第6-8(1)イ) and the 責任者's approval of
 * a bulk batch (docs/protocol.md, "provide.batch": the approval).
 *
 * A query, as provide.query and each entry of provide.batch carry it, is
 * either a 住民票コード alone or the exact four items (no partial match):
 *
 *   {"code":"24727059608"}
 *   {"name":"山田 花子", "birth":"1990-04-01", "sex":2,
 *    "address":"東京都千代田区…", "lgcode":"131016"}
 *
 * (in provide.query the same keys sit beside agreement, jimu, purpose and
 * items).  Its canonical line, what a part's hash is taken over, is
 *
 *   code:<code>\n
 *   four:<name>\t<birth>\t<sex>\t<lgcode>\t<address>\n
 *
 * with sex as the digit 1 or 2 and name and address exactly as sent (UTF-8
 * NFC without control characters, so neither holds a tab or a newline).
 *
 * A part's hash is the lower-case hex SHA-256 of the concatenation of its
 * queries' lines, in order.  The approval of a batch of count queries in P
 * parts, by the agreement's 責任者 with their own card:
 *
 *   {"responsible":"urn:juki:op:agency:nenkin:boss", "cert":"<PEM>",
 *    "parts":["<hex of part 0>", ..., "<hex of part P-1>"], "sig":"<base64>"}
 *
 * sig is ECDSA-SHA256 (DER, base64) by the card's key over the text
 *
 *   "juki-provide-approval/1\n" body "\n" batch-id "\n" count "\n"
 *   parts[0] "\n" ... parts[P-1] "\n"
 *
 * with count in decimal.  Nothing else is signed: the agreement and the
 * purpose are checked by the server apart.
 */
#ifndef JUKI_APPROVAL_H
#define JUKI_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/codes.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"
#include "juki/wire/tls.h"

#define JUKI_APPROVAL_MAGIC    "juki-provide-approval/1"
#define JUKI_PROVIDE_PART_MAX  1000  /* queries in one provide.batch part */
#define JUKI_PROVIDE_PARTS_MAX 10000 /* parts in one batch */
#define JUKI_PART_HASH_LEN     64    /* hex characters of a part's hash */

/* One query: code set, or the four items (code ""). */
struct juki_provide_query {
	char code[JUKI_JUMIN_CODE_LEN + 1];
	char name[JUKI_NAME_MAX + 1];
	char birth[11];
	int sex;
	char address[JUKI_ADDRESS_MAX + 1];
	char lgcode[JUKI_LGCODE_LEN + 1];
};

/*
 * juki_provide_query_from_json() - read and validate one query object:
 * "code" alone (11 digits, check digit), or all of name, birth (a real
 * day), sex (1 or 2), address and lgcode (6 digits, check digit).  When
 * extra is not NULL, the keys listed in it (NULL-terminated: "agreement",
 * "jimu", ...) are skipped rather than refused; any other key is refused.
 * Returns 0, or JUKI_EFORMAT / JUKI_ECHECKDIGIT with fe naming the field
 * and the rule, never the value.
 */
int juki_provide_query_from_json(const json_t *obj, const char *const *extra,
				 struct juki_provide_query *q, struct juki_field_error *fe);

/* juki_provide_query_to_json() - the object above; NULL on ENOMEM. */
json_t *juki_provide_query_to_json(const struct juki_provide_query *q);

/*
 * juki_provide_query_line() - the canonical line of q, with its newline,
 * into buf (len bytes, NUL-terminated).  Returns its length (without the
 * NUL), or JUKI_ERANGE when it does not fit (2048 bytes always do).
 */
int juki_provide_query_line(const struct juki_provide_query *q, char *buf, size_t len);

/*
 * juki_approval_part_hash() - validate every query of the array queries
 * (1..JUKI_PROVIDE_PART_MAX of them) and hash their lines into hex.
 * Returns 0; JUKI_ERANGE for an empty or oversized array; JUKI_EFORMAT /
 * JUKI_ECHECKDIGIT for a bad query, with *bad its index and fe its field;
 * JUKI_ETLS when hashing fails.
 */
int juki_approval_part_hash(const json_t *queries, char hex[JUKI_PART_HASH_LEN + 1], size_t *bad,
			    struct juki_field_error *fe);

/*
 * juki_approval_text() - the signed text for body, batch_id, count and the
 * array parts of hex hashes.  *text is malloc'd (NUL-terminated; *len
 * without it).  Returns 0, JUKI_EINVAL (a part not a 64-hex string, no
 * parts), JUKI_ENOMEM.
 */
int juki_approval_text(const char *body, const char *batch_id, int64_t count, const json_t *parts,
		       char **text, size_t *len);

/*
 * juki_approval_sign() - the approval object of the batch (body, batch_id,
 * count, parts as hex hashes), signed with card (the 責任者's card:
 * juki_tls_new_key() over their key) whose certificate file is cert_path
 * (copied into "cert"; "responsible" is the card's own identity).
 * Returns 0 with *out a new object, or a negative code with err.
 */
int juki_approval_sign(struct juki_tls *card, const char *cert_path, const char *body,
		       const char *batch_id, int64_t count, const json_t *parts, json_t **out,
		       char *err, size_t errlen);

/* What one part of a batch claims, for juki_approval_verify(). */
struct juki_approval_part {
	const char *body;      /* the sending body's urn (the message's "from") */
	const char *batch_id;  /* batch.id */
	int64_t count;         /* batch.count */
	size_t part;           /* batch.part: this part's index, 0-based */
	size_t parts;          /* batch.parts */
	const json_t *queries; /* this part's queries */
};

/*
 * juki_approval_check_part() - the checks of juki_approval_verify() that
 * differ from one part of a batch to the next: approval's parts has
 * p->parts entries and parts[p->part] is the hash of p->queries.  For a
 * server that has verified the same approval (byte for byte) for an
 * earlier part of the same batch.  Returns as juki_approval_verify().
 */
int juki_approval_check_part(const json_t *approval, const struct juki_approval_part *p,
			     char *detail, size_t len);

/*
 * juki_approval_verify() - check approval for the part p: it is an object
 * of exactly responsible, cert, parts and sig; responsible is the
 * expected 責任者 (expected, the agreement's) and the certificate's SAN
 * names them; the certificate chains to the CA file ca, is not on the CRL
 * file crl (NULL: none) and is valid at now_ms (0: the system's clock);
 * parts has p->parts entries and parts[p->part] is the hash of
 * p->queries; sig verifies over the text for p->body, p->batch_id,
 * p->count and parts.
 *
 * Returns 0; JUKI_EAUTH when the approval is not valid for this part
 * (reason approval-invalid) with detail saying why (wrong signer, wrong
 * batch, part hash mismatch, bad signature, untrusted certificate: never a
 * person's data); JUKI_EFORMAT / JUKI_ECHECKDIGIT when a query of the part
 * is malformed (detail names its index and field); another negative code
 * when ca or crl cannot be loaded (the server's fault: internal-error).
 */
int juki_approval_verify(const json_t *approval, const struct juki_approval_part *p,
			 const char *expected, const char *ca, const char *crl, int64_t now_ms,
			 char *detail, size_t len);

#endif
