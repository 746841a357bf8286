/*
 * Fuzz target: the body of tokurei.request as the 転出地 CS reads it
 * (csd_tokurei_request_parse, cs/tokureimsg.c).  Accepted, the request
 * written back (csd_tokurei_request_json) reads again to the same request;
 * refused, the error names a field and a rule.
 */
#include <jansson.h>

#include "fuzz.h"
#include "tokureimsg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csd_tokurei_request r, again;
	struct csd_tokurei_error e;
	json_t *body, *back;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL) {
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (csd_tokurei_request_parse(body, &r, &e) == 0) {
		back = csd_tokurei_request_json(&r);
		FUZZ_ASSERT(back != NULL);
		FUZZ_ASSERT(csd_tokurei_request_parse(back, &again, &e) == 0);
		FUZZ_ASSERT(memcmp(&r, &again, sizeof(r)) == 0);
		FUZZ_ASSERT(strcmp(r.from, r.to) != 0);
		json_decref(back);
	} else {
		FUZZ_ASSERT(e.field[0] != '\0' && e.detail[0] != '\0');
	}
	json_decref(body);
	return 0;
}
