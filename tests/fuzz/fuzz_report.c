/*
 * Fuzz target: the bodies of the management-report messages (juki/node/report.h):
 * a request as report.request carries it (juki_report_from_json) and an
 * answer as report.answer carries it (juki_report_answer_from_json), both
 * tried on every input, JSON text.  A refusal carries a reason code and a
 * detail; a request read comes back the same through its JSON, and is
 * routed (juki_report_route) at a municipality, a prefecture and the
 * national server to a hold, a pass or a report-route refusal; an answer
 * read is within its bounds and comes back the same through its JSON.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/report.h"
#include "juki/wire/msg.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

static void
refusal_ok(const struct juki_reject *rej)
{
	FUZZ_ASSERT(rej->reason[0] != '\0' && rej->detail[0] != '\0');
	FUZZ_ASSERT(rej->result == NULL);
}

static void
try_routes(const struct juki_report *r)
{
	static const char *const selves[][3] = {
	    {"urn:juki:cs:131016", "urn:juki:pref:13", NULL},
	    {"urn:juki:pref:13", "urn:juki:jlis:0", "urn:juki:cs:131016"},
	    {"urn:juki:pref:13", "urn:juki:jlis:0", NULL},
	    {"urn:juki:jlis:0", NULL, "urn:juki:pref:13"},
	};

	for (size_t i = 0; i < sizeof(selves) / sizeof(selves[0]); i++) {
		struct juki_ident self, sender;
		struct juki_reject rej;
		int hold = -1, rc;

		memset(&rej, 0, sizeof(rej));
		FUZZ_ASSERT(juki_ident_parse(selves[i][0], &self) == 0);
		if (selves[i][2] != NULL) {
			FUZZ_ASSERT(juki_ident_parse(selves[i][2], &sender) == 0);
		}
		rc = juki_report_route(&self, selves[i][1], selves[i][2] ? &sender : NULL, r, &hold,
				       &rej);
		if (rc == 0) {
			FUZZ_ASSERT(hold == 0 || hold == 1);
			/* A municipal server never holds; a pass needs somewhere to go. */
			FUZZ_ASSERT(self.kind != JUKI_KIND_CS || hold == 0);
			FUZZ_ASSERT(hold == 1 || selves[i][1] != NULL);
		} else {
			FUZZ_ASSERT(rc == JUKI_REJECT);
			refusal_ok(&rej);
		}
	}
}

static void
try_request(const json_t *doc)
{
	struct juki_report r, back;
	struct juki_reject rej;
	json_t *tree;
	int rc;

	memset(&rej, 0, sizeof(rej));
	rc = juki_report_from_json(doc, &r, &rej);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_REJECT);
		refusal_ok(&rej);
		juki_report_clear(&r);
		return;
	}
	FUZZ_ASSERT(juki_uuid_valid(r.id) && r.text != NULL);
	FUZZ_ASSERT(strlen(r.text) <= JUKI_REPORT_TEXT_MAX);
	tree = juki_report_to_json(&r);
	FUZZ_ASSERT(tree != NULL && json_equal(tree, (json_t *)doc));
	FUZZ_ASSERT(juki_report_from_json(tree, &back, &rej) == 0);
	FUZZ_ASSERT(strcmp(back.text, r.text) == 0 && strcmp(back.subject, r.subject) == 0);
	try_routes(&r);
	juki_report_clear(&back);
	json_decref(tree);
	juki_report_clear(&r);
}

static void
try_answer(const json_t *doc)
{
	struct juki_report_answer a, back;
	struct juki_reject rej;
	json_t *tree;
	int rc;

	memset(&rej, 0, sizeof(rej));
	rc = juki_report_answer_from_json(doc, &a, &rej);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_REJECT);
		refusal_ok(&rej);
		juki_report_answer_clear(&a);
		return;
	}
	FUZZ_ASSERT(a.len > 0 && a.len <= JUKI_REPORT_ANSWER_MAX && a.data != NULL);
	tree = juki_report_answer_to_json(&a);
	FUZZ_ASSERT(tree != NULL);
	FUZZ_ASSERT(juki_report_answer_from_json(tree, &back, &rej) == 0);
	FUZZ_ASSERT(back.len == a.len && memcmp(back.data, a.data, a.len) == 0);
	FUZZ_ASSERT(strcmp(back.media, a.media) == 0 && strcmp(back.by, a.by) == 0);
	juki_report_answer_clear(&back);
	json_decref(tree);
	juki_report_answer_clear(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);

	if (doc == NULL) {
		return 0;
	}
	try_request(doc);
	try_answer(doc);
	json_decref(doc);
	return 0;
}
