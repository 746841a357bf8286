/*
 * Fuzz target: messages and acks (juki_msg_from_json, juki_ack_parse).  The
 * input is JSON text as a frame's payload would carry it.  A message that is
 * read must survive the trip back to the wire (to_json, a frame, from_json)
 * unchanged; one that is refused must still leave what the receiver needs
 * to reject it by name; an ack that is read must be one juki_ack_new() can
 * build again.
 */
#include <event2/buffer.h>
#include <jansson.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/frame.h"
#include "juki/wire/msg.h"

#define SELF "urn:juki:cs:131016"
#define PEER "urn:juki:cs:271004"

/* 2026-11-18: any time a UUIDv7 can carry will do, fixed for reproducibility. */
static const struct juki_clock fixed_clock = {.fixed_ms = INT64_C(1795000000000)};

static int
same_json(const json_t *a, const json_t *b)
{
	return a == NULL ? b == NULL : b != NULL && json_equal(a, b);
}

static int
same_msg(const struct juki_msg *a, const struct juki_msg *b)
{
	return a->version == b->version && strcmp(a->id, b->id) == 0 &&
	       strcmp(a->type, b->type) == 0 && strcmp(a->from, b->from) == 0 &&
	       strcmp(a->to, b->to) == 0 && a->time_ms == b->time_ms &&
	       strcmp(a->corr, b->corr) == 0 && same_json(a->body, b->body);
}

/* What a message that was read must look like. */
static void
check_read(const struct juki_msg *m)
{
	struct juki_ident ident;

	FUZZ_ASSERT(m->version == JUKI_PROTO_VERSION);
	FUZZ_ASSERT(juki_uuid_valid(m->id));
	FUZZ_ASSERT(m->corr[0] == '\0' || juki_uuid_valid(m->corr));
	FUZZ_ASSERT(m->type[0] != '\0');
	/* Identities are compared as text: only the canonical form may pass. */
	FUZZ_ASSERT(juki_ident_parse(m->from, &ident) == 0 && strcmp(ident.urn, m->from) == 0);
	FUZZ_ASSERT(juki_ident_parse(m->to, &ident) == 0 && strcmp(ident.urn, m->to) == 0);
	FUZZ_ASSERT(json_is_object(m->body));
}

/* to_json, then through a frame, then from_json: the same message. */
static void
wire_round_trip(const json_t *doc, const struct juki_msg *m)
{
	static const char *const kept[] = {"v", "id", "type", "from", "to", "body"};
	struct juki_msg m2 = {0};
	struct evbuffer *buf = evbuffer_new();
	json_t *doc2 = juki_msg_to_json(m), *pulled = NULL, *doc3 = NULL;
	const char *reason = "unset";

	FUZZ_ASSERT(buf != NULL && doc2 != NULL);
	/* What the sender wrote is what goes out again; time and corr may be respelt. */
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		FUZZ_ASSERT(
		    same_json(json_object_get(doc, kept[i]), json_object_get(doc2, kept[i])));
	}
	FUZZ_ASSERT(juki_frame_push(buf, doc2, JUKI_FRAME_MAX_DEFAULT) == 0);
	FUZZ_ASSERT(juki_frame_pull(buf, JUKI_FRAME_MAX_DEFAULT, &pulled) == 1);
	FUZZ_ASSERT(juki_msg_from_json(pulled, &m2, &reason, NULL, 0) == 0 && reason == NULL);
	FUZZ_ASSERT(same_msg(m, &m2));
	doc3 = juki_msg_to_json(&m2);
	FUZZ_ASSERT(doc3 != NULL && json_equal(doc2, doc3));
	juki_msg_clear(&m2);
	json_decref(doc3);
	json_decref(pulled);
	json_decref(doc2);
	evbuffer_free(buf);
}

/* An ack read here, built again by juki_ack_new() and read back: the same ack. */
static void
ack_round_trip(const struct juki_msg *m, const struct juki_ack *ack)
{
	struct juki_msg m2 = {0};
	struct juki_ack ack2;
	const char *reason;
	json_t *doc;

	doc = juki_ack_new(ack->corr, m->from, m->to, ack->status,
			   ack->status == JUKI_ACK_REJECTED ? ack->reason : NULL, ack->detail,
			   &fixed_clock);
	FUZZ_ASSERT(doc != NULL);
	FUZZ_ASSERT(juki_msg_from_json(doc, &m2, &reason, NULL, 0) == 0);
	FUZZ_ASSERT(juki_ack_parse(&m2, &ack2) == 0);
	FUZZ_ASSERT(ack2.status == ack->status);
	FUZZ_ASSERT(strcmp(ack2.corr, ack->corr) == 0);
	FUZZ_ASSERT(strcmp(ack2.reason, ack->reason) == 0);
	FUZZ_ASSERT(strcmp(ack2.detail, ack->detail) == 0);
	FUZZ_ASSERT(strcmp(ack2.id, m2.id) == 0);
	juki_msg_clear(&m2);
	json_decref(doc);
}

static void
check_ack(const struct juki_msg *m)
{
	struct juki_ack ack;
	json_t *detail;
	int rc;

	rc = juki_ack_parse(m, &ack);
	if (strcmp(m->type, JUKI_MSG_ACK) != 0) {
		FUZZ_ASSERT(rc == JUKI_EPROTO);
		return;
	}
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_EPROTO);
		return;
	}
	FUZZ_ASSERT(ack.status == JUKI_ACK_ACCEPTED || ack.status == JUKI_ACK_DUPLICATE ||
		    ack.status == JUKI_ACK_REJECTED);
	FUZZ_ASSERT(strcmp(ack.id, m->id) == 0 && strcmp(ack.corr, m->corr) == 0);
	if (ack.status == JUKI_ACK_REJECTED) {
		FUZZ_ASSERT(ack.reason[0] != '\0');
	} else {
		/* The sender deletes its outbox entry by corr: it must name one. */
		FUZZ_ASSERT(juki_uuid_valid(ack.corr));
		FUZZ_ASSERT(ack.reason[0] == '\0' && ack.detail[0] == '\0');
	}
	/* Cut to fit, but still UTF-8: jansson takes only valid UTF-8. */
	detail = json_string(ack.detail);
	FUZZ_ASSERT(detail != NULL);
	json_decref(detail);
	ack_round_trip(m, &ack);
}

/* The receiver rejects a message it cannot read by the id it could read. */
static void
check_refused(const json_t *doc, const struct juki_msg *m, int rc, const char *reason,
	      const char *detail)
{
	json_t *ack;

	FUZZ_ASSERT(rc == JUKI_EPROTO && reason != NULL);
	FUZZ_ASSERT(strcmp(reason, JUKI_R_BAD_JSON) == 0 ||
		    strcmp(reason, JUKI_R_BAD_VERSION) == 0 ||
		    strcmp(reason, JUKI_R_BAD_HEADER) == 0);
	FUZZ_ASSERT(json_is_object(doc) == (strcmp(reason, JUKI_R_BAD_JSON) != 0));
	FUZZ_ASSERT(m->body == NULL && m->type[0] == '\0' && m->from[0] == '\0');
	FUZZ_ASSERT(m->id[0] == '\0' || juki_uuid_valid(m->id));
	/* The detail names a field, and an ack can always carry it (valid UTF-8). */
	FUZZ_ASSERT(detail[0] != '\0');
	ack = juki_ack_new(m->id, SELF, PEER, JUKI_ACK_REJECTED, reason, detail, &fixed_clock);
	FUZZ_ASSERT(ack != NULL);
	json_decref(ack);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct juki_msg m;
	const char *reason = "unset";
	char detail[JUKI_DETAIL_MAX];
	json_t *doc;
	int rc;

	/* As a frame reads it, but any value, so non-objects reach from_json too. */
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (doc == NULL) {
		return 0;
	}
	rc = juki_msg_from_json(doc, &m, &reason, detail, sizeof(detail));
	if (rc != 0) {
		check_refused(doc, &m, rc, reason, detail);
	} else {
		FUZZ_ASSERT(reason == NULL);
		check_read(&m);
		wire_round_trip(doc, &m);
		check_ack(&m);
	}
	juki_msg_clear(&m);
	json_decref(doc);
	return 0;
}
