#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "juki/base/error.h"
#include "juki/wire/frame.h"

/* The header has 32 bits: no limit can let a longer frame through. */
static size_t
effective_max(size_t max)
{
	return max > UINT32_MAX ? (size_t)UINT32_MAX : max;
}

static void
put_header(unsigned char *p, size_t len)
{
	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
}

int
juki_frame_pull_raw(struct evbuffer *in, size_t max, char **payload, size_t *len)
{
	unsigned char hdr[JUKI_FRAME_HEADER];
	struct evbuffer_ptr pos;
	size_t have, n;
	char *buf = NULL;
	int rc = 0;

	*payload = NULL;
	*len = 0;
	have = evbuffer_get_length(in);
	if (have < JUKI_FRAME_HEADER) {
		goto out;
	}
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr)) {
		rc = JUKI_EIO;
		goto out;
	}
	n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | (size_t)hdr[3];
	/* Refuse on the header alone, so a peer cannot make us buffer a huge payload first. */
	if (n == 0) {
		rc = JUKI_EFRAME;
		goto out;
	}
	if (n > effective_max(max)) {
		rc = JUKI_ETOOBIG;
		goto out;
	}
	if (have - JUKI_FRAME_HEADER < n) {
		goto out;
	}
	/* Allocate before draining: on ENOMEM the frame stays where it was. */
	buf = malloc(n + 1);
	if (buf == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (evbuffer_ptr_set(in, &pos, JUKI_FRAME_HEADER, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(in, &pos, buf, n) != (ev_ssize_t)n ||
	    evbuffer_drain(in, JUKI_FRAME_HEADER + n) != 0) {
		rc = JUKI_EIO;
		goto out;
	}
	buf[n] = '\0';
	*payload = buf;
	*len = n;
	buf = NULL;
	rc = 1;
out:
	free(buf);
	return rc;
}

int
juki_frame_parse(const char *payload, size_t len, json_t **doc)
{
	json_error_t err;
	/* Without JSON_ALLOW_NUL jansson refuses \u0000, so every string is a C string. */
	json_t *val = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);

	*doc = NULL;
	if (val == NULL || !json_is_object(val)) {
		json_decref(val);
		return JUKI_EJSON;
	}
	*doc = val;
	return 1;
}

int
juki_frame_pull_text(struct evbuffer *in, size_t max, json_t **doc, char **text, size_t *len)
{
	char *payload = NULL;
	size_t n = 0;
	int rc;

	*doc = NULL;
	if (text != NULL) {
		*text = NULL;
	}
	if (len != NULL) {
		*len = 0;
	}
	rc = juki_frame_pull_raw(in, max, &payload, &n);
	if (rc != 1) {
		goto out;
	}
	rc = juki_frame_parse(payload, n, doc);
	if (rc != 1) {
		goto out;
	}
	if (text != NULL) {
		*text = payload;
		payload = NULL;
	}
	if (len != NULL) {
		*len = n;
	}
out:
	free(payload);
	return rc;
}

/*
 * A reader that vouches for JSON text without building it: it accepts only
 * what jansson (as juki_frame_parse() calls it) accepts, and gives up on
 * what it need not handle (real numbers, integers of more than 18 digits,
 * escaped keys, more than JV_KEYS members or JV_DEPTH levels), leaving it
 * to jansson.  Strings: strict UTF-8 (no overlong form, no surrogate,
 * nothing past U+10FFFF), no control character, valid escapes, no \u0000,
 * no lone surrogate escape.
 */
#define JV_DEPTH 16
#define JV_KEYS  16

struct jv {
	const unsigned char *p, *end;
};

static void
jv_ws(struct jv *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
		s->p++;
	}
}

static int
jv_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* The length of the UTF-8 sequence of two to four bytes at p, 0 when invalid. */
static size_t
jv_utf8(const unsigned char *p, const unsigned char *end)
{
	size_t n = (size_t)(end - p);
	unsigned char c = p[0];

	if (c >= 0xc2 && c <= 0xdf) {
		return n >= 2 && jv_cont(p[1]) ? 2 : 0;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || !jv_cont(p[1]) || !jv_cont(p[2]) || (c == 0xe0 && p[1] < 0xa0) ||
		    (c == 0xed && p[1] > 0x9f)) {
			return 0;
		}
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || !jv_cont(p[1]) || !jv_cont(p[2]) || !jv_cont(p[3]) ||
		    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)) {
			return 0;
		}
		return 4;
	}
	return 0;
}

static int
jv_hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
	unsigned v = 0;

	if (end - p < 4) {
		return 0;
	}
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9') {
			v |= (unsigned)(c - '0');
		} else if (c >= 'a' && c <= 'f') {
			v |= (unsigned)(c - 'a' + 10);
		} else if (c >= 'A' && c <= 'F') {
			v |= (unsigned)(c - 'A' + 10);
		} else {
			return 0;
		}
	}
	*out = v;
	return 1;
}

/* A string at s->p: 1 with its bytes between the quotes (*esc: it holds an escape). */
static int
jv_string(struct jv *s, const unsigned char **start, size_t *n, int *esc)
{
	const unsigned char *p = s->p, *end = s->end;

	*esc = 0;
	if (p >= end || *p != '"') {
		return 0;
	}
	*start = ++p;
	while (p < end) {
		unsigned char c = *p;
		unsigned cp, lo;
		size_t k;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			p++;
			continue;
		}
		if (c == '"') {
			*n = (size_t)(p - *start);
			s->p = p + 1;
			return 1;
		}
		if (c == '\\') {
			*esc = 1;
			if (++p >= end) {
				return 0;
			}
			if (*p != 'u') {
				if (*p != '"' && *p != '\\' && *p != '/' && *p != 'b' &&
				    *p != 'f' && *p != 'n' && *p != 'r' && *p != 't') {
					return 0;
				}
				p++;
				continue;
			}
			if (!jv_hex4(p + 1, end, &cp) || cp == 0 ||
			    (cp >= 0xdc00 && cp <= 0xdfff)) {
				return 0;
			}
			p += 5;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    !jv_hex4(p + 2, end, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					return 0;
				}
				p += 6;
			}
			continue;
		}
		if (c < 0x20 || (k = jv_utf8(p, end)) == 0) {
			return 0;
		}
		p += k;
	}
	return 0;
}

static int
jv_digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* An integer of at most 18 digits (jansson reads it as json_int_t); reals are left to jansson. */
static int
jv_number(struct jv *s)
{
	const unsigned char *p = s->p, *end = s->end, *digits;

	if (p < end && *p == '-') {
		p++;
	}
	if (!jv_digit(p, end)) {
		return 0;
	}
	digits = p;
	if (*p == '0') {
		p++;
		if (jv_digit(p, end)) {
			return 0;
		}
	} else {
		while (jv_digit(p, end)) {
			p++;
		}
	}
	if (p - digits > 18 || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
		return 0;
	}
	s->p = p;
	return 1;
}

static int
jv_lit(struct jv *s, const char *lit, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
		return 0;
	}
	s->p += n;
	return 1;
}

static int jv_value(struct jv *s, int depth);

static int
jv_object(struct jv *s, int depth)
{
	const unsigned char *keys[JV_KEYS];
	size_t lens[JV_KEYS], nkeys = 0;

	if (depth > JV_DEPTH) {
		return 0;
	}
	s->p++;
	jv_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 1;
	}
	for (;;) {
		const unsigned char *key;
		size_t n;
		int esc;

		if (!jv_string(s, &key, &n, &esc) || esc || nkeys == JV_KEYS) {
			return 0;
		}
		for (size_t i = 0; i < nkeys; i++) {
			if (lens[i] == n && memcmp(keys[i], key, n) == 0) {
				return 0; /* a duplicate key */
			}
		}
		keys[nkeys] = key;
		lens[nkeys++] = n;
		jv_ws(s);
		if (s->p >= s->end || *s->p != ':') {
			return 0;
		}
		s->p++;
		jv_ws(s);
		if (!jv_value(s, depth)) {
			return 0;
		}
		jv_ws(s);
		if (s->p >= s->end) {
			return 0;
		}
		if (*s->p == '}') {
			s->p++;
			return 1;
		}
		if (*s->p != ',') {
			return 0;
		}
		s->p++;
		jv_ws(s);
	}
}

static int
jv_array(struct jv *s, int depth)
{
	if (depth > JV_DEPTH) {
		return 0;
	}
	s->p++;
	jv_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 1;
	}
	for (;;) {
		if (!jv_value(s, depth)) {
			return 0;
		}
		jv_ws(s);
		if (s->p >= s->end) {
			return 0;
		}
		if (*s->p == ']') {
			s->p++;
			return 1;
		}
		if (*s->p != ',') {
			return 0;
		}
		s->p++;
		jv_ws(s);
	}
}

static int
jv_value(struct jv *s, int depth)
{
	const unsigned char *str;
	size_t n;
	int esc;

	if (s->p >= s->end) {
		return 0;
	}
	switch (*s->p) {
	case '{':
		return jv_object(s, depth + 1);
	case '[':
		return jv_array(s, depth + 1);
	case '"':
		return jv_string(s, &str, &n, &esc);
	case 't':
		return jv_lit(s, "true", 4);
	case 'f':
		return jv_lit(s, "false", 5);
	case 'n':
		return jv_lit(s, "null", 4);
	default:
		return jv_number(s);
	}
}

int
juki_frame_split(const char *payload, size_t len, int (*want)(const char *type, void *arg),
		 void *arg, json_t **doc, size_t *body_off, size_t *body_len)
{
	struct jv s = {(const unsigned char *)payload, (const unsigned char *)payload + len};
	const unsigned char *body = NULL, *body_end = NULL;
	char type[64] = "";
	size_t head, tail;
	char *hdr;
	int rc;

	*doc = NULL;
	*body_off = *body_len = 0;
	jv_ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		return 0;
	}
	s.p++;
	jv_ws(&s);
	for (;;) {
		const unsigned char *key, *val;
		size_t n, vn;
		int esc;

		if (!jv_string(&s, &key, &n, &esc) || esc) {
			return 0;
		}
		jv_ws(&s);
		if (s.p >= s.end || *s.p != ':') {
			return 0;
		}
		s.p++;
		jv_ws(&s);
		if (n == 4 && memcmp(key, "type", 4) == 0 && type[0] == '\0') {
			if (!jv_string(&s, &val, &vn, &esc) || esc || vn == 0 ||
			    vn >= sizeof(type)) {
				return 0;
			}
			memcpy(type, val, vn);
			type[vn] = '\0';
		} else if (n == 4 && memcmp(key, "body", 4) == 0 && body == NULL) {
			/* The body comes after the type in every message a juki node writes. */
			if (type[0] == '\0' || !want(type, arg) || s.p >= s.end || *s.p != '{') {
				return 0;
			}
			body = s.p;
			if (!jv_value(&s, 0)) {
				return 0;
			}
			body_end = s.p;
		} else if (!jv_value(&s, 0)) {
			return 0;
		}
		jv_ws(&s);
		if (s.p >= s.end) {
			return 0;
		}
		if (*s.p == '}') {
			s.p++;
			break;
		}
		if (*s.p != ',') {
			return 0;
		}
		s.p++;
		jv_ws(&s);
	}
	jv_ws(&s);
	if (s.p != s.end || body == NULL) {
		return 0;
	}
	/* The rest, header and all, is jansson's: the frame with an empty body in its place. */
	head = (size_t)(body - (const unsigned char *)payload);
	tail = (size_t)(s.end - body_end);
	if ((hdr = malloc(head + 2 + tail)) == NULL) {
		return JUKI_ENOMEM;
	}
	memcpy(hdr, payload, head);
	memcpy(hdr + head, "{}", 2);
	memcpy(hdr + head + 2, body_end, tail);
	rc = juki_frame_parse(hdr, head + 2 + tail, doc);
	free(hdr);
	if (rc != 1) {
		return 0;
	}
	*body_off = head;
	*body_len = (size_t)(body_end - body);
	return 1;
}

int
juki_frame_pull(struct evbuffer *in, size_t max, json_t **doc)
{
	return juki_frame_pull_text(in, max, doc, NULL, NULL);
}

/*
 * Reserve header and payload as one contiguous extent and commit it only
 * when it is complete: the peer never sees a partial frame.
 */
static int
reserve_frame(struct evbuffer *out, size_t len, struct evbuffer_iovec *vec)
{
	if (evbuffer_reserve_space(out, (ev_ssize_t)(JUKI_FRAME_HEADER + len), vec, 1) != 1 ||
	    vec->iov_len < JUKI_FRAME_HEADER + len) {
		return JUKI_ENOMEM;
	}
	return 0;
}

static int
commit_frame(struct evbuffer *out, struct evbuffer_iovec *vec, size_t len)
{
	put_header(vec->iov_base, len);
	vec->iov_len = JUKI_FRAME_HEADER + len;
	return evbuffer_commit_space(out, vec, 1) == 0 ? 0 : JUKI_ENOMEM;
}

int
juki_frame_push(struct evbuffer *out, const json_t *doc, size_t max)
{
	const size_t flags = JSON_COMPACT;
	struct evbuffer_iovec vec;
	size_t len;
	int rc;

	if (doc == NULL || !json_is_object(doc)) {
		return JUKI_EINVAL;
	}
	/* Measure, then write straight into the reserved space: no intermediate copy. */
	len = json_dumpb(doc, NULL, 0, flags);
	if (len == 0) {
		return JUKI_ENOMEM;
	}
	if (len > effective_max(max)) {
		return JUKI_ETOOBIG;
	}
	rc = reserve_frame(out, len, &vec);
	if (rc != 0) {
		return rc;
	}
	if (json_dumpb(doc, (char *)vec.iov_base + JUKI_FRAME_HEADER, len, flags) != len) {
		return JUKI_ENOMEM;
	}
	return commit_frame(out, &vec, len);
}

int
juki_frame_push_raw(struct evbuffer *out, const char *payload, size_t len, size_t max)
{
	struct evbuffer_iovec vec;
	int rc;

	if (payload == NULL || len == 0) {
		return JUKI_EINVAL;
	}
	if (len > effective_max(max)) {
		return JUKI_ETOOBIG;
	}
	rc = reserve_frame(out, len, &vec);
	if (rc != 0) {
		return rc;
	}
	memcpy((char *)vec.iov_base + JUKI_FRAME_HEADER, payload, len);
	return commit_frame(out, &vec, len);
}
