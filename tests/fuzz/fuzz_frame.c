/*
 * Fuzz target: frames (juki_frame_pull_raw, juki_frame_pull, and the push
 * side as the round trip).  The input is a byte stream as a peer would send
 * it.  A reference reading of the same bytes, done here by hand, says what
 * every pull must give; the stream is read whole and again delivered in
 * small pieces, as a socket would deliver it, under two frame limits.
 */
#include <event2/buffer.h>
#include <jansson.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/wire/frame.h"

#define SMALL_MAX 64

/* What the reference reading expects of one pull. */
struct expect {
	int rc; /* 1: a frame; 0: more bytes needed; else the error */
	const uint8_t *payload;
	size_t len;
};

/*
 * Walks the stream: a frame per complete header and payload; the first
 * header with a length of 0 or over max ends it with that error; a partial
 * header or payload ends it with 0.  Returns the number of entries in ex;
 * the last one is never a frame.
 */
static size_t
reference(const uint8_t *data, size_t size, size_t max, struct expect *ex)
{
	size_t pos = 0, n = 0;

	for (;;) {
		uint32_t len;

		if (size - pos < JUKI_FRAME_HEADER) {
			ex[n++] = (struct expect){.rc = 0};
			return n;
		}
		len = (uint32_t)data[pos] << 24 | (uint32_t)data[pos + 1] << 16 |
		      (uint32_t)data[pos + 2] << 8 | (uint32_t)data[pos + 3];
		if (len == 0) {
			ex[n++] = (struct expect){.rc = JUKI_EFRAME};
			return n;
		}
		if (len > max) {
			ex[n++] = (struct expect){.rc = JUKI_ETOOBIG};
			return n;
		}
		if (size - pos - JUKI_FRAME_HEADER < len) {
			ex[n++] = (struct expect){.rc = 0};
			return n;
		}
		ex[n++] =
		    (struct expect){.rc = 1, .payload = data + pos + JUKI_FRAME_HEADER, .len = len};
		pos += JUKI_FRAME_HEADER + len;
	}
}

/* A payload pushed raw comes back byte for byte, and alone. */
static void
raw_round_trip(const char *payload, size_t len, size_t max)
{
	struct evbuffer *out = evbuffer_new();
	char *back = NULL;
	size_t blen = 0;

	FUZZ_ASSERT(out != NULL);
	FUZZ_ASSERT(juki_frame_push_raw(out, payload, len, max) == 0);
	FUZZ_ASSERT(evbuffer_get_length(out) == JUKI_FRAME_HEADER + len);
	FUZZ_ASSERT(juki_frame_pull_raw(out, max, &back, &blen) == 1);
	FUZZ_ASSERT(blen == len && memcmp(back, payload, len) == 0 && back[len] == '\0');
	FUZZ_ASSERT(evbuffer_get_length(out) == 0);
	free(back);
	evbuffer_free(out);
}

static int
want_any(const char *type, void *arg)
{
	(void)type;
	(void)arg;
	return 1;
}

/*
 * A payload split without parsing its body (juki_frame_split, how the
 * receivers read honnin.batch): whatever it vouches for, jansson takes
 * too, and the header with the body parsed apart is the whole document.
 */
static void
split_agrees(const char *payload, size_t len)
{
	json_t *head = NULL, *whole = NULL, *body;
	size_t off = 0, blen = 0;
	int rc = juki_frame_split(payload, len, want_any, NULL, &head, &off, &blen);

	FUZZ_ASSERT(rc == 0 || rc == 1 || rc == JUKI_ENOMEM);
	if (rc != 1) {
		return;
	}
	FUZZ_ASSERT(off + blen <= len);
	FUZZ_ASSERT(juki_frame_parse(payload, len, &whole) == 1);
	body = json_loadb(payload + off, blen, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(json_is_object(body));
	FUZZ_ASSERT(json_object_set_new(head, "body", body) == 0);
	FUZZ_ASSERT(json_equal(head, whole));
	json_decref(head);
	json_decref(whole);
}

/*
 * A document pushed comes back equal, unless its compact form is over max,
 * which push must refuse without writing anything.
 */
static void
json_round_trip(const json_t *doc, size_t max)
{
	struct evbuffer *out = evbuffer_new();
	size_t need = json_dumpb(doc, NULL, 0, JSON_COMPACT);
	json_t *back = NULL;
	int rc;

	FUZZ_ASSERT(out != NULL && need > 0);
	rc = juki_frame_push(out, doc, max);
	if (!json_is_object(doc)) {
		FUZZ_ASSERT(rc == JUKI_EINVAL && evbuffer_get_length(out) == 0);
		goto out;
	}
	if (need > max) {
		FUZZ_ASSERT(rc == JUKI_ETOOBIG && evbuffer_get_length(out) == 0);
		goto out;
	}
	FUZZ_ASSERT(rc == 0);
	FUZZ_ASSERT(evbuffer_get_length(out) == JUKI_FRAME_HEADER + need);
	FUZZ_ASSERT(juki_frame_pull(out, max, &back) == 1);
	FUZZ_ASSERT(json_equal(doc, back));
	FUZZ_ASSERT(evbuffer_get_length(out) == 0);
out:
	json_decref(back);
	evbuffer_free(out);
}

/* The whole stream at once, frames taken raw. */
static void
pull_raw_whole(const uint8_t *data, size_t size, size_t max, const struct expect *ex, size_t nex)
{
	struct evbuffer *in = evbuffer_new();

	FUZZ_ASSERT(in != NULL);
	FUZZ_ASSERT(evbuffer_add(in, data, size) == 0);
	for (size_t i = 0; i < nex; i++) {
		size_t before = evbuffer_get_length(in), len = 7;
		char *payload = (char *)&len;
		int rc = juki_frame_pull_raw(in, max, &payload, &len);

		FUZZ_ASSERT(rc == ex[i].rc);
		if (rc != 1) {
			/* Nothing taken, nothing handed out. */
			FUZZ_ASSERT(payload == NULL && len == 0);
			FUZZ_ASSERT(evbuffer_get_length(in) == before);
			break;
		}
		FUZZ_ASSERT(len == ex[i].len && memcmp(payload, ex[i].payload, len) == 0);
		FUZZ_ASSERT(payload[len] == '\0');
		FUZZ_ASSERT(evbuffer_get_length(in) == before - JUKI_FRAME_HEADER - len);
		raw_round_trip(payload, len, max);
		split_agrees(payload, len);
		free(payload);
	}
	evbuffer_free(in);
}

/*
 * The stream in pieces of varying size, each followed by as many parsed
 * pulls as it allows, as a connection's read callback does.
 */
static void
pull_json_pieces(const uint8_t *data, size_t size, size_t max, const struct expect *ex, size_t nex)
{
	struct evbuffer *in = evbuffer_new();
	size_t pos = 0, next = 0, piece = 0;
	int done = 0;

	FUZZ_ASSERT(in != NULL);
	while (!done) {
		size_t n = 1 + (piece++ * 7) % 13;

		if (n > size - pos) {
			n = size - pos;
		}
		FUZZ_ASSERT(evbuffer_add(in, data + pos, n) == 0);
		pos += n;
		for (;;) {
			json_t *doc = NULL, *want;
			int rc = juki_frame_pull(in, max, &doc);

			if (rc == 0) {
				FUZZ_ASSERT(doc == NULL);
				/* Only the end of the stream may settle a 0. */
				if (pos == size) {
					FUZZ_ASSERT(next == nex - 1 && ex[next].rc == 0);
					done = 1;
				}
				break;
			}
			FUZZ_ASSERT(next < nex);
			if (rc != 1 && rc != JUKI_EJSON) {
				FUZZ_ASSERT(doc == NULL && rc == ex[next].rc);
				done = 1;
				break;
			}
			FUZZ_ASSERT(ex[next].rc == 1);
			want = json_loadb((const char *)ex[next].payload, ex[next].len,
					  JSON_REJECT_DUPLICATES, NULL);
			if (rc == JUKI_EJSON) {
				FUZZ_ASSERT(doc == NULL && !json_is_object(want));
			} else {
				FUZZ_ASSERT(json_is_object(doc) && json_equal(doc, want));
				json_round_trip(doc, max);
			}
			if (want != NULL) {
				json_round_trip(want, max);
			}
			json_decref(want);
			json_decref(doc);
			next++;
		}
	}
	evbuffer_free(in);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A fixed hash seed keeps runs reproducible. */
	json_object_seed(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = {JUKI_FRAME_MAX_DEFAULT, SMALL_MAX};
	/* A frame takes at least five bytes, plus the entry that ends the walk. */
	size_t cap = size / (JUKI_FRAME_HEADER + 1) + 1;
	struct expect *ex = calloc(cap, sizeof(*ex));

	FUZZ_ASSERT(ex != NULL);
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		size_t nex = reference(data, size, maxes[m], ex);

		FUZZ_ASSERT(nex <= cap);
		pull_raw_whole(data, size, maxes[m], ex, nex);
		pull_json_pieces(data, size, maxes[m], ex, nex);
	}
	free(ex);
	return 0;
}
