/*
 * Fuzz target: the body of copy.answer, and the resident record system's
 * answer file with the same keys, as a CS reads them
 * (csd_copy_answer_parse, cs/copymsg.c).  The first input byte chooses the
 * items the request asked for; the rest is JSON text.  Accepted, an answer
 * is a copy whose optional items were all asked for (checked again on its
 * own), or a refusal whose reason is one docs/protocol.md lists; refused,
 * the error names a field and a rule.
 */
#include <jansson.h>

#include "copymsg.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *id, *reason, *detail;
	const json_t *copy;
	struct csd_copy_error e;
	unsigned items;
	json_t *body;
	int refused;

	if (size < 1) {
		return 0;
	}
	items = data[0] & 0xfu;
	body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL) {
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (csd_copy_answer_parse(body, items, &id, &refused, &copy, &reason, &detail, &e) == 0) {
		FUZZ_ASSERT(id != NULL);
		if (refused) {
			FUZZ_ASSERT(copy == NULL && csd_copy_reason_valid(reason));
		} else {
			FUZZ_ASSERT(copy != NULL && reason == NULL);
			FUZZ_ASSERT(csd_copy_copy_check(copy, items, &e) == 0);
			FUZZ_ASSERT(items == 0xfu || csd_copy_copy_check(copy, 0xfu, &e) == 0);
		}
	} else {
		FUZZ_ASSERT(e.field[0] != '\0' && e.detail[0] != '\0');
	}
	json_decref(body);
	return 0;
}
