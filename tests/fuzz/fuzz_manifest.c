/*
 * Fuzz target: a manifest file as a daemon or juki-ctl reads it
 * (wire/manifest.h): parsed with duplicate keys refused, its form checked
 * (juki_manifest_check), its signed bytes made (juki_manifest_canonical) and
 * its heartbeat member checked (juki_integrity_member_check).  Accepted, the
 * canonical bytes are ASCII JSON without a signature that reads back to the
 * same object; refused, the error says why.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "juki/node/integrity.h"
#include "juki/wire/manifest.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "", *text = NULL;
	size_t len = 0;
	json_t *m, *back, *copy;

	m = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (m == NULL) {
		return 0;
	}
	(void)juki_integrity_member_check(m, err, sizeof(err));
	err[0] = '\0';
	if (juki_manifest_check(m, 1, err, sizeof(err)) != 0) {
		FUZZ_ASSERT(err[0] != '\0');
		json_decref(m);
		return 0;
	}
	FUZZ_ASSERT(juki_manifest_canonical(m, &text, &len) == 0);
	for (size_t i = 0; i < len; i++) {
		FUZZ_ASSERT((unsigned char)text[i] < 0x80);
	}
	back = json_loads(text, 0, NULL);
	copy = json_copy(m);
	json_object_del(copy, "signature");
	FUZZ_ASSERT(back != NULL && json_equal(back, copy));
	json_decref(back);
	json_decref(copy);
	free(text);
	json_decref(m);
	return 0;
}
