/*
 * Fuzz target: the body of tokurei.collected as the 転出地 CS reads it
 * (csd_tokurei_collected_parse, cs/tokureimsg.c): accepted, a UUIDv7 and a
 * well-formed card serial; refused, the error names a field and a rule.
 */
#include <jansson.h>

#include "cards.h"
#include "fuzz.h"
#include "juki/wire/msg.h"
#include "tokureimsg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char card[CSD_TOKUREI_SERIAL_MAX + 1];
	struct csd_tokurei_error e;
	const char *rid;
	json_t *body;

	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL) {
		return 0;
	}
	memset(&e, 0, sizeof(e));
	if (csd_tokurei_collected_parse(body, &rid, card, &e) == 0) {
		FUZZ_ASSERT(rid != NULL && juki_uuid_valid(rid));
		FUZZ_ASSERT(csd_card_serial_valid(card));
	} else {
		FUZZ_ASSERT(e.field[0] != '\0' && e.detail[0] != '\0');
	}
	json_decref(body);
	return 0;
}
