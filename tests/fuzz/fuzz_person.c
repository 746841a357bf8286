/*
 * Fuzz target: identity information (juki_person_from_json), as a 転入通知
 * body or a control request carries it.  The input is JSON text.  A person
 * that is read fully must come back the same through juki_person_to_json();
 * one read partially holds only validated fields; a refusal names a field
 * and a reason code that matches the error.
 */
#include <jansson.h>

#include "fuzz.h"
#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"

static void
check_refused(int rc, const struct juki_field_error *fe)
{
	FUZZ_ASSERT(rc == JUKI_EFORMAT || rc == JUKI_ECHECKDIGIT);
	FUZZ_ASSERT(fe->field[0] != '\0' && fe->detail[0] != '\0' && fe->reason != NULL);
	FUZZ_ASSERT((rc == JUKI_ECHECKDIGIT) == (strcmp(fe->reason, JUKI_R_CHECK_DIGIT) == 0));
	FUZZ_ASSERT(rc == JUKI_ECHECKDIGIT || strcmp(fe->reason, JUKI_R_BAD_FIELD) == 0);
}

static int
text_ok(const char *text, size_t max)
{
	char detail[128];

	return juki_text_valid(text, max, detail, sizeof(detail)) == 0;
}

/* Every field that is set is valid; a full read sets them all. */
static void
check_read(const struct juki_person *p, int partial)
{
	FUZZ_ASSERT(juki_jumin_code_check(p->code) == 0);
	FUZZ_ASSERT(p->kana[0] == '\0' || text_ok(p->kana, JUKI_NAME_MAX));
	if (!partial || p->name[0] != '\0') {
		FUZZ_ASSERT(text_ok(p->name, JUKI_NAME_MAX));
	}
	if (!partial || p->address[0] != '\0') {
		FUZZ_ASSERT(text_ok(p->address, JUKI_ADDRESS_MAX));
	}
	if (!partial || p->birth[0] != '\0') {
		FUZZ_ASSERT(juki_date_valid(p->birth));
	}
	if (!partial || p->sex != 0) {
		FUZZ_ASSERT(p->sex == 1 || p->sex == 2);
	}
	if (!partial || p->lgcode[0] != '\0') {
		FUZZ_ASSERT(juki_lgcode_check(p->lgcode) == 0);
	}
}

static void
round_trip(const struct juki_person *p)
{
	struct juki_field_error fe;
	struct juki_person back;
	json_t *obj = juki_person_to_json(p);
	char *text = NULL;
	json_t *reread = NULL;

	FUZZ_ASSERT(obj != NULL);
	FUZZ_ASSERT(juki_person_from_json(obj, 0, &back, &fe) == 0);
	FUZZ_ASSERT(memcmp(p, &back, sizeof(back)) == 0);
	/* And through text, as it travels. */
	text = json_dumps(obj, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL);
	reread = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(reread != NULL && json_equal(obj, reread));
	free(text);
	json_decref(reread);
	json_decref(obj);
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
	struct juki_person full, part;
	struct juki_field_error fe;
	json_t *doc;
	int rc_full, rc_part;

	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (doc == NULL) {
		return 0;
	}
	rc_full = juki_person_from_json(doc, 0, &full, &fe);
	if (rc_full != 0) {
		check_refused(rc_full, &fe);
	} else {
		check_read(&full, 0);
		round_trip(&full);
	}
	rc_part = juki_person_from_json(doc, 1, &part, &fe);
	if (rc_part != 0) {
		check_refused(rc_part, &fe);
	} else {
		check_read(&part, 1);
	}
	/* Partial asks less: whatever reads fully reads partially, to the same person. */
	if (rc_full == 0) {
		FUZZ_ASSERT(rc_part == 0 && memcmp(&full, &part, sizeof(part)) == 0);
	}
	json_decref(doc);
	return 0;
}
