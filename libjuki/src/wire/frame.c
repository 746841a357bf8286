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
juki_frame_pull_text(struct evbuffer *in, size_t max, json_t **doc, char **text, size_t *len)
{
	json_error_t err;
	char *payload = NULL;
	json_t *val = NULL;
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
	/* Without JSON_ALLOW_NUL jansson refuses \u0000, so every string is a C string. */
	val = json_loadb(payload, n, JSON_REJECT_DUPLICATES, &err);
	if (val == NULL || !json_is_object(val)) {
		rc = JUKI_EJSON;
		goto out;
	}
	*doc = val;
	val = NULL;
	if (text != NULL) {
		*text = payload;
		payload = NULL;
	}
	if (len != NULL) {
		*len = n;
	}
out:
	json_decref(val);
	free(payload);
	return rc;
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
