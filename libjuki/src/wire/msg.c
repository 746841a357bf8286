#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/msg.h"

#define UUID7_MS_MAX  ((INT64_C(1) << 48) - 1)
#define TIME_TEXT_MAX 32

static const char *const status_names[] = {
    [JUKI_ACK_ACCEPTED] = "accepted",
    [JUKI_ACK_DUPLICATE] = "duplicate",
    [JUKI_ACK_REJECTED] = "rejected",
};

static const char *const header_keys[] = {"v", "id", "type", "from", "to", "time", "corr", "body"};

/*
 * The 74 random bits of each id come from a pool that the OpenSSL DRBG
 * refills 4 KiB at a time: one RAND_bytes() call per 409 ids rather than one
 * each, which cost as much as inserting the row an id names (a provision
 * record, measured).  A pool per thread; bits handed out are wiped from it.
 */
static _Thread_local unsigned char pool[4090];
static _Thread_local size_t pool_left;

int
juki_uuid7_from(int64_t ms, const unsigned char tail[10], char out[JUKI_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t o = 0;

	out[0] = '\0';
	if (ms < 0 || ms > UUID7_MS_MAX) {
		return JUKI_ERANGE;
	}
	for (int i = 0; i < 6; i++) {
		b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
	}
	memcpy(b + 6, tail, 10);
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			out[o++] = '-';
		}
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return 0;
}

int
juki_uuid7(int64_t now_ms, char out[JUKI_UUID_LEN + 1])
{
	int rc;

	out[0] = '\0';
	if (now_ms < 0 || now_ms > UUID7_MS_MAX) {
		return JUKI_ERANGE;
	}
	if (pool_left < 10) {
		if (RAND_bytes(pool, (int)sizeof(pool)) != 1) {
			return JUKI_EIO;
		}
		pool_left = sizeof(pool);
	}
	rc = juki_uuid7_from(now_ms, pool + sizeof(pool) - pool_left, out);
	OPENSSL_cleanse(pool + sizeof(pool) - pool_left, 10);
	pool_left -= 10;
	return rc;
}

int
juki_uuid_valid(const char *text)
{
	if (text == NULL || strlen(text) != JUKI_UUID_LEN) {
		return 0;
	}
	for (size_t i = 0; i < JUKI_UUID_LEN; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-') {
				return 0;
			}
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return text[14] == '7' &&
	       (text[19] == '8' || text[19] == '9' || text[19] == 'a' || text[19] == 'b');
}

/* Message types are dotted lower-case names; anything else cannot be a handler's key. */
static int
type_valid(const char *s, size_t n)
{
	if (n == 0 || n >= JUKI_TYPE_MAX || strlen(s) != n) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-')) {
			return 0;
		}
	}
	return 1;
}

static int
reason_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= JUKI_REASON_MAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			return 0;
		}
	}
	return 1;
}

static int
ident_valid(const char *s)
{
	struct juki_ident ident;

	return s != NULL && juki_ident_parse(s, &ident) == 0;
}

/* The longest prefix of s that fits in max - 1 bytes without splitting a UTF-8 sequence. */
static size_t
utf8_fit(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n < max) {
		return n;
	}
	n = max - 1;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
		n--;
	}
	return n;
}

int
juki_msg_init(struct juki_msg *msg, const char *type, const char *from, const char *to,
	      const char *corr, json_t *body, const struct juki_clock *clock)
{
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (body == NULL) {
		body = json_object();
		if (body == NULL) {
			return JUKI_ENOMEM;
		}
	}
	if (type == NULL || !type_valid(type, strlen(type)) || !ident_valid(from) ||
	    !ident_valid(to) || !json_is_object(body) ||
	    (corr != NULL && corr[0] != '\0' && !juki_uuid_valid(corr))) {
		rc = JUKI_EINVAL;
		goto out;
	}
	msg->version = JUKI_PROTO_VERSION;
	msg->time_ms = juki_clock_now_ms(clock);
	rc = juki_uuid7(msg->time_ms, msg->id);
	if (rc != 0) {
		goto out;
	}
	snprintf(msg->type, sizeof(msg->type), "%s", type);
	snprintf(msg->from, sizeof(msg->from), "%s", from);
	snprintf(msg->to, sizeof(msg->to), "%s", to);
	if (corr != NULL) {
		snprintf(msg->corr, sizeof(msg->corr), "%s", corr);
	}
	msg->body = body;
	body = NULL;
out:
	/* The body is stolen on every path, so the caller never has to tell which one freed it. */
	json_decref(body);
	if (rc != 0) {
		memset(msg, 0, sizeof(*msg));
	}
	return rc;
}

void
juki_msg_clear(struct juki_msg *msg)
{
	if (msg == NULL) {
		return;
	}
	json_decref(msg->body);
	memset(msg, 0, sizeof(*msg));
}

json_t *
juki_msg_to_json(const struct juki_msg *msg)
{
	char time_text[TIME_TEXT_MAX];
	json_t *doc = NULL;

	if (juki_clock_format(msg->time_ms, time_text, sizeof(time_text)) != 0) {
		goto out;
	}
	doc = json_object();
	/* Insertion order is the wire order; json_object_set_new() frees the value on failure. */
	if (doc == NULL || json_object_set_new(doc, "v", json_integer(msg->version)) != 0 ||
	    json_object_set_new(doc, "id", json_string(msg->id)) != 0 ||
	    json_object_set_new(doc, "type", json_string(msg->type)) != 0 ||
	    json_object_set_new(doc, "from", json_string(msg->from)) != 0 ||
	    json_object_set_new(doc, "to", json_string(msg->to)) != 0 ||
	    json_object_set_new(doc, "time", json_string(time_text)) != 0 ||
	    json_object_set_new(doc, "corr",
				msg->corr[0] != '\0' ? json_string(msg->corr) : json_null()) != 0 ||
	    json_object_set_new(doc, "body",
				msg->body != NULL ? json_incref(msg->body) : json_object()) != 0) {
		json_decref(doc);
		doc = NULL;
	}
out:
	return doc;
}

/* A string member that holds no NUL and fits in max bytes with its terminator. */
static const char *
member_string(const json_t *doc, const char *key, size_t max)
{
	const json_t *v = json_object_get(doc, key);
	const char *s;

	if (!json_is_string(v)) {
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || json_string_length(v) >= max) {
		return NULL;
	}
	return s;
}

/* The first top-level member that is not a header member, or NULL. */
static const char *
unknown_key(const json_t *doc)
{
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)doc, key, val)
	{
		size_t i;

		(void)val;
		for (i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
			if (strcmp(key, header_keys[i]) == 0) {
				break;
			}
		}
		if (i == sizeof(header_keys) / sizeof(header_keys[0])) {
			return key;
		}
	}
	return NULL;
}

/*
 * The detail of a header refusal: the field and the rule it breaks, or that
 * it is missing (docs/protocol.md §7).  Only on the refusal path.
 */
static void
header_detail(char *detail, size_t len, const json_t *doc, const char *field, const char *rule)
{
	if (detail == NULL || len == 0) {
		return;
	}
	snprintf(detail, len, "%s: %s", field,
		 json_object_get(doc, field) == NULL ? "missing" : rule);
}

/* A member name fit to quote: short printable ASCII, so the detail stays valid UTF-8. */
static int
key_quotable(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 32) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (key[i] < 0x20 || key[i] > 0x7e) {
			return 0;
		}
	}
	return 1;
}

int
juki_msg_from_json(const json_t *doc, struct juki_msg *msg, const char **reason, char *detail,
		   size_t detail_len)
{
	const char *why = JUKI_R_BAD_HEADER;
	const char *id, *type, *from, *to, *time_text, *corr = NULL, *extra;
	const json_t *v, *jcorr, *body;
	int rc = JUKI_EPROTO;

	memset(msg, 0, sizeof(*msg));
	if (detail != NULL && detail_len > 0) {
		detail[0] = '\0';
	}
	if (!json_is_object(doc)) {
		why = JUKI_R_BAD_JSON;
		if (detail != NULL && detail_len > 0) {
			snprintf(detail, detail_len, "frame: not a JSON object");
		}
		goto out;
	}
	/* The id comes first whatever else is wrong: the receiver needs it to reject by name. */
	id = member_string(doc, "id", sizeof(msg->id));
	if (id != NULL && juki_uuid_valid(id)) {
		snprintf(msg->id, sizeof(msg->id), "%s", id);
	}
	v = json_object_get(doc, "v");
	if (!json_is_integer(v)) {
		header_detail(detail, detail_len, doc, "v", "not an integer, the protocol version");
		goto out;
	}
	if (json_integer_value(v) != JUKI_PROTO_VERSION) {
		why = JUKI_R_BAD_VERSION;
		if (detail != NULL && detail_len > 0) {
			snprintf(detail, detail_len,
				 "v: version %" JSON_INTEGER_FORMAT
				 " not supported (this node speaks %d)",
				 json_integer_value(v), JUKI_PROTO_VERSION);
		}
		goto out;
	}
	if (msg->id[0] == '\0') {
		header_detail(detail, detail_len, doc, "id",
			      "not a UUIDv7 in canonical lower-case form");
		goto out;
	}
	type = member_string(doc, "type", sizeof(msg->type));
	if (type == NULL || !type_valid(type, strlen(type))) {
		header_detail(detail, detail_len, doc, "type",
			      "not 1..47 characters of a-z 0-9 . _ -");
		goto out;
	}
	from = member_string(doc, "from", sizeof(msg->from));
	if (!ident_valid(from)) {
		header_detail(detail, detail_len, doc, "from", "not a juki identity");
		goto out;
	}
	to = member_string(doc, "to", sizeof(msg->to));
	if (!ident_valid(to)) {
		header_detail(detail, detail_len, doc, "to", "not a juki identity");
		goto out;
	}
	time_text = member_string(doc, "time", TIME_TEXT_MAX);
	if (time_text == NULL || juki_clock_parse(time_text, &msg->time_ms) != 0) {
		header_detail(detail, detail_len, doc, "time",
			      "not RFC 3339 UTC, YYYY-MM-DDTHH:MM:SS[.fraction]Z");
		goto out;
	}
	jcorr = json_object_get(doc, "corr");
	if (jcorr != NULL && !json_is_null(jcorr)) {
		corr = member_string(doc, "corr", sizeof(msg->corr));
		if (corr == NULL || !juki_uuid_valid(corr)) {
			header_detail(detail, detail_len, doc, "corr", "neither null nor a UUIDv7");
			goto out;
		}
	}
	body = json_object_get(doc, "body");
	if (!json_is_object(body)) {
		header_detail(detail, detail_len, doc, "body", "not an object");
		goto out;
	}
	extra = unknown_key(doc);
	if (extra != NULL) {
		if (detail != NULL && detail_len > 0) {
			snprintf(detail, detail_len, "%s: not a header member (%s)",
				 key_quotable(extra) ? extra : "a top-level member",
				 "v id type from to time corr body");
		}
		goto out;
	}
	msg->version = JUKI_PROTO_VERSION;
	snprintf(msg->type, sizeof(msg->type), "%s", type);
	snprintf(msg->from, sizeof(msg->from), "%s", from);
	snprintf(msg->to, sizeof(msg->to), "%s", to);
	if (corr != NULL) {
		snprintf(msg->corr, sizeof(msg->corr), "%s", corr);
	}
	msg->body = json_incref((json_t *)body);
	why = NULL;
	rc = 0;
out:
	if (rc != 0) {
		/* Keep only the id, so a half-read message is never mistaken for a whole one. */
		char keep[sizeof(msg->id)];

		memcpy(keep, msg->id, sizeof(keep));
		memset(msg, 0, sizeof(*msg));
		memcpy(msg->id, keep, sizeof(keep));
	}
	if (reason != NULL) {
		*reason = why;
	}
	return rc;
}

json_t *
juki_ack_new(const char *corr, const char *self, const char *peer, enum juki_ack_status status,
	     const char *reason, const char *detail, const struct juki_clock *clock)
{
	struct juki_msg msg = {0};
	json_t *body = NULL, *doc = NULL;

	if ((size_t)status >= sizeof(status_names) / sizeof(status_names[0])) {
		goto out;
	}
	body = json_pack("{s:s}", "status", status_names[status]);
	if (body == NULL) {
		goto out;
	}
	if (status == JUKI_ACK_REJECTED) {
		if (reason == NULL || !reason_valid(reason) ||
		    json_object_set_new(body, "reason", json_string(reason)) != 0) {
			goto out;
		}
		/* Bounded here as on receipt, at a character boundary so the text stays UTF-8. */
		if (detail != NULL && detail[0] != '\0' &&
		    json_object_set_new(body, "detail",
					json_stringn(detail, utf8_fit(detail, JUKI_DETAIL_MAX))) !=
			0) {
			goto out;
		}
	}
	if (juki_msg_init(&msg, JUKI_MSG_ACK, self, peer, corr, body, clock) != 0) {
		body = NULL;
		goto out;
	}
	body = NULL;
	doc = juki_msg_to_json(&msg);
out:
	json_decref(body);
	juki_msg_clear(&msg);
	return doc;
}

int
juki_ack_parse(const struct juki_msg *msg, struct juki_ack *ack)
{
	const char *status, *reason, *detail;
	const json_t *jdetail;
	size_t i, n;

	memset(ack, 0, sizeof(*ack));
	if (strcmp(msg->type, JUKI_MSG_ACK) != 0 || !json_is_object(msg->body)) {
		return JUKI_EPROTO;
	}
	status = member_string(msg->body, "status", JUKI_REASON_MAX);
	if (status == NULL) {
		return JUKI_EPROTO;
	}
	for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(status, status_names[i]) == 0) {
			break;
		}
	}
	if (i == sizeof(status_names) / sizeof(status_names[0])) {
		return JUKI_EPROTO;
	}
	/* Only a rejection may name no message: the sender deletes its outbox entry by corr. */
	if (i != JUKI_ACK_REJECTED && msg->corr[0] == '\0') {
		return JUKI_EPROTO;
	}
	ack->status = (enum juki_ack_status)i;
	if (ack->status == JUKI_ACK_REJECTED) {
		reason = member_string(msg->body, "reason", JUKI_REASON_MAX);
		if (reason == NULL || !reason_valid(reason)) {
			memset(ack, 0, sizeof(*ack));
			return JUKI_EPROTO;
		}
		snprintf(ack->reason, sizeof(ack->reason), "%s", reason);
		jdetail = json_object_get(msg->body, "detail");
		if (jdetail != NULL && !json_is_null(jdetail)) {
			if (!json_is_string(jdetail)) {
				memset(ack, 0, sizeof(*ack));
				return JUKI_EPROTO;
			}
			detail = json_string_value(jdetail);
			n = utf8_fit(detail, sizeof(ack->detail));
			memcpy(ack->detail, detail, n);
			ack->detail[n] = '\0';
		}
	}
	if (ack->status == JUKI_ACK_ACCEPTED &&
	    json_is_object(json_object_get(msg->body, "result"))) {
		ack->result = json_object_get(msg->body, "result");
	}
	snprintf(ack->id, sizeof(ack->id), "%s", msg->id);
	snprintf(ack->corr, sizeof(ack->corr), "%s", msg->corr);
	return 0;
}

const char *
juki_ack_status_name(enum juki_ack_status status)
{
	if ((size_t)status >= sizeof(status_names) / sizeof(status_names[0])) {
		return "unknown";
	}
	return status_names[status];
}

int
juki_reject_set(struct juki_reject *rej, const char *reason, const char *fmt, ...)
{
	va_list ap;

	snprintf(rej->reason, sizeof(rej->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(rej->detail, sizeof(rej->detail), fmt, ap);
	va_end(ap);
	return JUKI_REJECT;
}
