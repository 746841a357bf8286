/*
 * juki — frames (docs/protocol.md §5): a 4-byte big-endian length, then that many
 * bytes of one JSON document (UTF-8, an object).  A length of 0 or over the
 * configured limit is a protocol error that closes the connection.
 */
#ifndef JUKI_FRAME_H
#define JUKI_FRAME_H

#include <stddef.h>

#include <event2/buffer.h>
#include <jansson.h>

#define JUKI_FRAME_MAX_DEFAULT (1024 * 1024)
#define JUKI_FRAME_HEADER      4

/*
 * juki_frame_pull_raw() - take one complete frame out of in.
 * Returns 1 with *payload (malloc'd, NUL-terminated, owned by the caller)
 * and *len set; 0 when no complete frame is buffered yet (nothing taken);
 * JUKI_ETOOBIG when the announced length exceeds max; JUKI_EFRAME for a
 * zero length (both decided from the header alone); JUKI_ENOMEM; JUKI_EIO
 * when in refuses to be read or drained (frozen).  On error
 * nothing is taken and the connection must close.
 */
int juki_frame_pull_raw(struct evbuffer *in, size_t max, char **payload, size_t *len);

/*
 * juki_frame_pull() - as juki_frame_pull_raw(), then parse the payload:
 * returns 1 with *doc (a JSON object, new reference); JUKI_EJSON (the frame
 * is consumed) when it is not valid JSON or not an object.
 */
int juki_frame_pull(struct evbuffer *in, size_t max, json_t **doc);

/*
 * juki_frame_pull_text() - as juki_frame_pull(), and on success also the
 * payload's bytes as received: *text (malloc'd, NUL-terminated, the
 * caller's to free) of *len bytes.  text and len may be NULL.
 */
int juki_frame_pull_text(struct evbuffer *in, size_t max, json_t **doc, char **text, size_t *len);

/*
 * juki_frame_parse() - a payload (len bytes) as juki_frame_pull() reads it:
 * 1 with *doc (a JSON object, new reference), JUKI_EJSON when it is not
 * valid JSON (strict UTF-8, no duplicate keys, no \u0000) or not an object.
 */
int juki_frame_parse(const char *payload, size_t len, json_t **doc);

/*
 * juki_frame_split() - a payload read as its header and its body's bytes,
 * the body left unparsed: for a message whose receiver reads the body
 * itself (a honnin.batch of thousands of records), so that no JSON tree of
 * it is built and freed.  want(type, arg) says whether the message's
 * "type" is such a one.
 *
 * Returns 1 when the payload is a JSON object whose "type" want() takes
 * and whose "body" is an object this reader vouches for as strict JSON by
 * the rules of juki_frame_parse(): *doc is the payload with "body":{} in
 * the body's place, parsed by juki_frame_parse(), and the body is
 * payload[*body_off, *body_off + *body_len).  Returns 0 when it does not
 * split the payload (another type, "body" before "type", a body it cannot
 * vouch for: real numbers, escaped keys, deep nesting, invalid JSON); the
 * caller then parses the whole payload, which decides.  JUKI_ENOMEM.
 */
int juki_frame_split(const char *payload, size_t len, int (*want)(const char *type, void *arg),
		     void *arg, json_t **doc, size_t *body_off, size_t *body_len);

/*
 * juki_frame_push() - serialise doc compactly and append it as one frame to
 * out.  Returns 0, JUKI_ETOOBIG when it would exceed max, JUKI_ENOMEM,
 * JUKI_EINVAL when doc is not an object.  On error out is unchanged.
 */
int juki_frame_push(struct evbuffer *out, const json_t *doc, size_t max);

/*
 * juki_frame_push_raw() - append len bytes of payload as one frame.
 * Returns 0, JUKI_ETOOBIG, JUKI_ENOMEM, JUKI_EINVAL for an empty payload.
 * On error out is unchanged.
 */
int juki_frame_push_raw(struct evbuffer *out, const char *payload, size_t len, size_t max);

#endif
