#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/base/ident.h"
#include "juki/records/approval.h"
#include "juki/wire/pki.h"

#define CERT_PEM_MAX (64 * 1024)

static int
field_fail(struct juki_field_error *fe, const char *field, const char *reason, const char *detail)
{
	snprintf(fe->field, sizeof(fe->field), "%s", field);
	fe->reason = reason;
	snprintf(fe->detail, sizeof(fe->detail), "%s", detail);
	return JUKI_EFORMAT;
}

static int
text_field(const json_t *obj, const char *key, size_t max, char *out, size_t outlen,
	   struct juki_field_error *fe)
{
	const json_t *v = json_object_get(obj, key);
	char detail[96];

	if (!json_is_string(v)) {
		return field_fail(fe, key, JUKI_R_BAD_FIELD, "missing or not a string");
	}
	if (juki_text_valid(json_string_value(v), max, detail, sizeof(detail)) != 0) {
		return field_fail(fe, key, JUKI_R_BAD_FIELD, detail);
	}
	snprintf(out, outlen, "%s", json_string_value(v));
	return 0;
}

static int
listed(const char *key, const char *const *list)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
		if (strcmp(key, list[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

int
juki_provide_query_from_json(const json_t *obj, const char *const *extra,
			     struct juki_provide_query *q, struct juki_field_error *fe)
{
	static const char *const four[] = {"name", "birth", "sex", "address", "lgcode", NULL};
	const char *key;
	const json_t *v;
	size_t nfour = 0;
	int rc;

	memset(q, 0, sizeof(*q));
	memset(fe, 0, sizeof(*fe));
	if (!json_is_object(obj)) {
		return field_fail(fe, "query", JUKI_R_BAD_FIELD, "not an object");
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		(void)v;
		if (listed(key, four)) {
			nfour++;
		} else if (strcmp(key, "code") != 0 && !listed(key, extra)) {
			return field_fail(fe, "query", JUKI_R_BAD_FIELD,
					  "unknown key (a query is a code, or name, birth, sex, "
					  "address and lgcode)");
		}
	}
	if (json_object_get(obj, "code") != NULL) {
		if (nfour > 0) {
			return field_fail(fe, "query", JUKI_R_BAD_FIELD,
					  "a code or the four items, not both");
		}
		return juki_json_code(obj, "code", 0, q->code, sizeof(q->code), fe);
	}
	if (nfour != 5) {
		return field_fail(fe, "query", JUKI_R_BAD_FIELD,
				  "a code, or all of name, birth, sex, address and lgcode "
				  "(no partial match)");
	}
	if ((rc = text_field(obj, "name", JUKI_NAME_MAX, q->name, sizeof(q->name), fe)) != 0 ||
	    (rc = juki_json_date(obj, "birth", q->birth, fe)) != 0 ||
	    (rc = text_field(obj, "address", JUKI_ADDRESS_MAX, q->address, sizeof(q->address),
			     fe)) != 0 ||
	    (rc = juki_json_code(obj, "lgcode", 1, q->lgcode, sizeof(q->lgcode), fe)) != 0) {
		return rc;
	}
	v = json_object_get(obj, "sex");
	if (!json_is_integer(v) || (json_integer_value(v) != 1 && json_integer_value(v) != 2)) {
		return field_fail(fe, "sex", JUKI_R_BAD_FIELD, "1 (male) or 2 (female)");
	}
	q->sex = (int)json_integer_value(v);
	return 0;
}

json_t *
juki_provide_query_to_json(const struct juki_provide_query *q)
{
	if (q->code[0] != '\0') {
		return json_pack("{s:s}", "code", q->code);
	}
	return json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", q->name, "birth", q->birth, "sex", q->sex,
			 "address", q->address, "lgcode", q->lgcode);
}

int
juki_provide_query_line(const struct juki_provide_query *q, char *buf, size_t len)
{
	int n;

	if (q->code[0] != '\0') {
		n = snprintf(buf, len, "code:%s\n", q->code);
	} else {
		n = snprintf(buf, len, "four:%s\t%s\t%d\t%s\t%s\n", q->name, q->birth, q->sex,
			     q->lgcode, q->address);
	}
	return n < 0 || (size_t)n >= len ? JUKI_ERANGE : n;
}

int
juki_approval_part_hash(const json_t *queries, char hex[JUKI_PART_HASH_LEN + 1], size_t *bad,
			struct juki_field_error *fe)
{
	struct juki_provide_query q;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	char line[2048];
	int rc = 0;

	hex[0] = '\0';
	*bad = 0;
	memset(fe, 0, sizeof(*fe));
	if (!json_is_array(queries) || json_array_size(queries) == 0 ||
	    json_array_size(queries) > JUKI_PROVIDE_PART_MAX) {
		return JUKI_ERANGE;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = JUKI_ETLS;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(queries); i++) {
		int n;

		rc = juki_provide_query_from_json(json_array_get(queries, i), NULL, &q, fe);
		if (rc != 0) {
			*bad = i;
			goto out;
		}
		n = juki_provide_query_line(&q, line, sizeof(line));
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, line, (size_t)n) != 1) {
			rc = JUKI_ETLS;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		rc = JUKI_ETLS;
		goto out;
	}
	juki_hex_encode(md, mdlen, hex);
out:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int
hex_hash(const json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != JUKI_PART_HASH_LEN) {
		return 0;
	}
	for (size_t i = 0; i < JUKI_PART_HASH_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int
juki_approval_text(const char *body, const char *batch_id, int64_t count, const json_t *parts,
		   char **text, size_t *len)
{
	size_t n = json_array_size(parts);
	size_t cap, off;
	char *buf;
	int w;

	*text = NULL;
	*len = 0;
	if (body == NULL || batch_id == NULL || n == 0 || count < 0) {
		return JUKI_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!hex_hash(json_array_get(parts, i))) {
			return JUKI_EINVAL;
		}
	}
	cap = sizeof(JUKI_APPROVAL_MAGIC) + strlen(body) + strlen(batch_id) + 32 +
	      n * (JUKI_PART_HASH_LEN + 1) + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		return JUKI_ENOMEM;
	}
	w = snprintf(buf, cap, "%s\n%s\n%s\n%lld\n", JUKI_APPROVAL_MAGIC, body, batch_id,
		     (long long)count);
	if (w < 0 || (size_t)w >= cap) {
		free(buf);
		return JUKI_EINVAL;
	}
	off = (size_t)w;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf + off, json_string_value(json_array_get(parts, i)), JUKI_PART_HASH_LEN);
		off += JUKI_PART_HASH_LEN;
		buf[off++] = '\n';
	}
	buf[off] = '\0';
	*text = buf;
	*len = off;
	return 0;
}

static int
read_small_file(const char *path, size_t max, char **out)
{
	FILE *fp = fopen(path, "re");
	char *buf;
	size_t n;

	*out = NULL;
	if (fp == NULL) {
		return -errno;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(fp);
		return JUKI_ENOMEM;
	}
	n = fread(buf, 1, max + 1, fp);
	if (ferror(fp) || n > max) {
		fclose(fp);
		free(buf);
		return n > max ? JUKI_ETOOBIG : JUKI_EIO;
	}
	fclose(fp);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

int
juki_approval_sign(struct juki_tls *card, const char *cert_path, const char *body,
		   const char *batch_id, int64_t count, const json_t *parts, json_t **out,
		   char *err, size_t errlen)
{
	unsigned char *sig = NULL;
	char *text = NULL, *pem = NULL, *b64 = NULL;
	size_t textlen = 0, siglen = 0;
	int rc;

	*out = NULL;
	rc = juki_approval_text(body, batch_id, count, parts, &text, &textlen);
	if (rc != 0) {
		juki_seterr(err, errlen, "approval: %s", juki_strerror(rc));
		goto out;
	}
	rc = read_small_file(cert_path, CERT_PEM_MAX, &pem);
	if (rc != 0) {
		juki_seterr(err, errlen, "%s: %s", cert_path, juki_strerror(rc));
		goto out;
	}
	rc = juki_tls_sign(card, text, textlen, &sig, &siglen);
	if (rc != 0) {
		juki_seterr(err, errlen, "signing the approval: %s", juki_strerror(rc));
		goto out;
	}
	b64 = malloc(4 * ((siglen + 2) / 3) + 1);
	if (b64 == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
	*out = json_pack("{s:s,s:s,s:O,s:s}", "responsible", juki_tls_self(card)->urn, "cert", pem,
			 "parts", parts, "sig", b64);
	if (*out == NULL) {
		rc = JUKI_ENOMEM;
		juki_seterr(err, errlen, "approval: out of memory");
	}
out:
	free(text);
	free(pem);
	free(sig);
	free(b64);
	return rc;
}

static int
invalid(char *detail, size_t len, const char *why)
{
	juki_seterr(detail, len, "%s", why);
	return JUKI_EAUTH;
}

/* The certificates of pem (leaf first); NULL when there is none or it is not PEM. */
static STACK_OF(X509) * pem_certs(const char *pem)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *cert;

	if (certs == NULL || bio == NULL) {
		goto fail;
	}
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, cert)) {
			X509_free(cert);
			goto fail;
		}
	}
	ERR_clear_error();
	BIO_free(bio);
	if (sk_X509_num(certs) == 0) {
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
fail:
	ERR_clear_error();
	BIO_free(bio);
	sk_X509_pop_free(certs, X509_free);
	return NULL;
}

int
juki_approval_check_part(const json_t *approval, const struct juki_approval_part *p, char *detail,
			 size_t len)
{
	const json_t *parts = json_object_get(approval, "parts");
	const char *want;
	struct juki_field_error fe;
	char hex[JUKI_PART_HASH_LEN + 1];
	size_t bad = 0;
	int rc;

	if (!json_is_array(parts) || json_array_size(parts) != p->parts || p->part >= p->parts) {
		return invalid(detail, len,
			       "wrong batch: the approval's parts list does not have this batch's "
			       "number of parts");
	}
	rc = juki_approval_part_hash(p->queries, hex, &bad, &fe);
	if (rc == JUKI_ERANGE) {
		juki_seterr(detail, len, "queries: 1..%d per part", JUKI_PROVIDE_PART_MAX);
		return JUKI_EFORMAT;
	}
	if (rc != 0) {
		juki_seterr(detail, len, "queries[%zu].%s: %s", bad, fe.field, fe.detail);
		return rc;
	}
	want = json_string_value(json_array_get(parts, p->part));
	if (strcmp(want != NULL ? want : "", hex) != 0) {
		return invalid(detail, len,
			       "part hash mismatch: this part's queries are not the ones approved");
	}
	return 0;
}

int
juki_approval_verify(const json_t *approval, const struct juki_approval_part *p,
		     const char *expected, const char *ca, const char *crl, int64_t now_ms,
		     char *detail, size_t len)
{
	const json_t *responsible = json_object_get(approval, "responsible");
	const json_t *cert = json_object_get(approval, "cert");
	const json_t *parts = json_object_get(approval, "parts");
	const json_t *sig = json_object_get(approval, "sig");
	STACK_OF(X509) *certs = NULL;
	struct juki_ident signer;
	char *text = NULL;
	size_t textlen = 0;
	int rc;

	juki_seterr(detail, len, "%s", "");
	if (!json_is_object(approval) || json_object_size(approval) != 4 ||
	    !json_is_string(responsible) || !json_is_string(cert) || !json_is_array(parts) ||
	    !json_is_string(sig)) {
		return invalid(detail, len,
			       "not an approval object (responsible, cert, parts, sig)");
	}
	if (expected == NULL || strcmp(json_string_value(responsible), expected) != 0) {
		return invalid(detail, len,
			       "wrong signer: not the agreement's responsible officer");
	}
	if (json_string_length(cert) > CERT_PEM_MAX ||
	    (certs = pem_certs(json_string_value(cert))) == NULL) {
		return invalid(detail, len, "cert: no PEM certificate");
	}
	if (juki_tls_cert_ident(sk_X509_value(certs, 0), &signer) != 0 ||
	    strcmp(signer.urn, expected) != 0) {
		rc = invalid(detail, len,
			     "wrong signer: the certificate does not name the responsible officer");
		goto out;
	}
	rc = juki_pki_chain_check(sk_X509_value(certs, 0), certs, ca, crl, now_ms, detail, len);
	if (rc != 0) {
		goto out;
	}
	rc = juki_approval_check_part(approval, p, detail, len);
	if (rc != 0) {
		goto out;
	}
	rc = juki_approval_text(p->body, p->batch_id, p->count, parts, &text, &textlen);
	if (rc != 0) {
		rc = invalid(detail, len, "parts: not a list of hex SHA-256 hashes");
		goto out;
	}
	if (!juki_pki_sig_b64_ok(sk_X509_value(certs, 0), text, textlen, json_string_value(sig))) {
		rc = invalid(detail, len,
			     "bad signature: not signed over this body, batch id and count "
			     "(another batch's approval, or altered)");
		goto out;
	}
	rc = 0;
out:
	free(text);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}
