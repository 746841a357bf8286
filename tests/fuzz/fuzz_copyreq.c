/*
 * Fuzz target: the body of copy.request as the 住所地 CS reads it
 * (csd_copy_request_parse, cs/copymsg.c).  The input is JSON text as a
 * message's body.  Accepted, the request written back as a body
 * (csd_copy_request_json) reads again to the same request and the same
 * document; refused, the error names a field and a rule, and never holds a
 * byte of the input's values past the field names the parser knows.
 */
#include <jansson.h>

#include "copymsg.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csd_copy_request r, again;
	struct csd_copy_error e;
	json_t *body, *back;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL) {
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (csd_copy_request_parse(body, &r, &e) == 0) {
		back = csd_copy_request_json(&r);
		FUZZ_ASSERT(back != NULL);
		FUZZ_ASSERT(csd_copy_request_parse(back, &again, &e) == 0);
		FUZZ_ASSERT(memcmp(&r, &again, sizeof(r)) == 0);
		FUZZ_ASSERT(r.copies >= 1 && r.copies <= CSD_COPY_COPIES_MAX);
		FUZZ_ASSERT(strcmp(r.home, r.issuer) != 0);
		json_decref(back);
	} else {
		FUZZ_ASSERT(e.field[0] != '\0' && e.detail[0] != '\0');
	}
	json_decref(body);
	return 0;
}
