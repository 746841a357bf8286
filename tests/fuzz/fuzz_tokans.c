/*
 * Fuzz target: the body of tokurei.answer as the 転入地 CS reads it
 * (csd_tokurei_answer_parse, cs/tokureimsg.c).  Accepted, the 転出証明書情報
 * written back (csd_tokurei_cert_json) reads again to the same one; refused,
 * the error names a field and a rule.
 */
#include <jansson.h>

#include "fuzz.h"
#include "juki/wire/msg.h"
#include "tokureimsg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csd_tokurei_cert c, again;
	struct csd_tokurei_error e;
	const char *rid;
	json_t *body, *back;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL) {
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (csd_tokurei_answer_parse(body, &rid, &c, &e) == 0) {
		FUZZ_ASSERT(rid != NULL && juki_uuid_valid(rid));
		back = csd_tokurei_cert_json(&c);
		FUZZ_ASSERT(back != NULL);
		FUZZ_ASSERT(csd_tokurei_cert_parse(back, &again, &e) == 0);
		FUZZ_ASSERT(memcmp(&c, &again, sizeof(c)) == 0);
		FUZZ_ASSERT(c.sex == 1 || c.sex == 2);
		json_decref(back);
	} else {
		FUZZ_ASSERT(e.field[0] != '\0' && e.detail[0] != '\0');
	}
	json_decref(body);
	return 0;
}
