/*
 * Fuzz target: a change record of 本人確認情報 (juki_change_from_json), as a
 * honnin.batch carries it to the prefecture and the nation.  The input is
 * JSON text.  A refusal names a field and a reason code that matches the
 * error; a record that is read comes back the same through its canonical
 * text (juki_change_text), which must also be what jansson writes of it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/records/honnin.h"
#include "juki/wire/msg.h"

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
	struct juki_change c, back;
	struct juki_field_error fe;
	json_t *doc, *reread, *tree;
	char *text, *dumped;
	size_t len;
	int rc;

	/*
	 * The receivers' reading in place (juki_change_from_text): what it takes
	 * is exactly the canonical text of a record juki_change_from_json takes.
	 */
	if (juki_change_from_text((const char *)data, size, &c) == 0) {
		text = juki_change_text(&c, &len);
		FUZZ_ASSERT(text != NULL && len == size && memcmp(text, data, size) == 0);
		free(text);
		reread = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
		FUZZ_ASSERT(reread != NULL && juki_change_from_json(reread, &back, &fe) == 0);
		FUZZ_ASSERT(memcmp(&c, &back, sizeof(c)) == 0);
		json_decref(reread);
	}
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (doc == NULL) {
		return 0;
	}
	rc = juki_change_from_json(doc, &c, &fe);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_EFORMAT || rc == JUKI_ECHECKDIGIT);
		FUZZ_ASSERT(fe.field[0] != '\0' && fe.detail[0] != '\0' && fe.reason != NULL);
		/* Never the doubled prefix of a nested refusal. */
		FUZZ_ASSERT(strncmp(fe.field, "person.person", 13) != 0);
		json_decref(doc);
		return 0;
	}
	FUZZ_ASSERT(juki_jumin_code_check(c.code) == 0 && juki_lgcode_check(c.lgcode) == 0);
	FUZZ_ASSERT(strcmp(c.person.code, c.code) == 0 && strcmp(c.person.lgcode, c.lgcode) == 0);
	FUZZ_ASSERT(c.version > 0 && c.reason != NULL);
	/* The canonical text reads back to the same record... */
	text = juki_change_text(&c, &len);
	FUZZ_ASSERT(text != NULL && strlen(text) == len);
	reread = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(reread != NULL);
	FUZZ_ASSERT(juki_change_from_json(reread, &back, &fe) == 0);
	FUZZ_ASSERT(memcmp(&c, &back, sizeof(c)) == 0);
	/* ...and is byte for byte jansson's text of the same record. */
	tree = juki_change_to_json(&c);
	FUZZ_ASSERT(tree != NULL);
	dumped = json_dumps(tree, JSON_COMPACT);
	FUZZ_ASSERT(dumped != NULL && strcmp(dumped, text) == 0);
	/*
	 * ...which the receivers read in place to the same record; a text with
	 * an escape in it they leave to the tree's way (still the same record).
	 */
	if (juki_change_from_text(text, len, &back) == 0) {
		FUZZ_ASSERT(memcmp(&c, &back, sizeof(c)) == 0);
	} else {
		FUZZ_ASSERT(memchr(text, '\\', len) != NULL);
	}
	free(dumped);
	json_decref(tree);
	json_decref(reread);
	free(text);
	json_decref(doc);
	return 0;
}
