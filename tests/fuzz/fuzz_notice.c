/*
 * Fuzz target: what another node sends on the monitor service for notices
 * and the witnessed history (juki/node/notice.h, witness.h): a
 * monitor.notice body (juki_notice_parse), a monitor.notice.ack body
 * (juki_notice_ack_parse) and a heartbeat's checkpoint member
 * (juki_witness_parse), all tried on every input, JSON text.  A refusal
 * names the member; a notice taken has a text the terminal may show as it
 * is (UTF-8, no control character, at most 1000 bytes); a checkpoint taken
 * has its bounds.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "juki/node/notice.h"
#include "juki/node/witness.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

static void
notice(const json_t *doc)
{
	struct juki_reject rej;
	struct juki_notice n;
	char why[128];

	memset(&rej, 0, sizeof(rej));
	if (juki_notice_parse(doc, &n, &rej) != 0) {
		FUZZ_ASSERT(strcmp(rej.reason, "invalid-field") == 0 && rej.detail[0] != '\0');
		return;
	}
	FUZZ_ASSERT(strlen(n.text) >= 1 && strlen(n.text) <= JUKI_NOTICE_TEXT_MAX);
	FUZZ_ASSERT(juki_notice_text_check(n.text, strlen(n.text), why, sizeof(why)) == 0);
	for (const unsigned char *p = (const unsigned char *)n.text; *p != '\0'; p++) {
		FUZZ_ASSERT(*p >= 0x20 && *p != 0x7f);
	}
	FUZZ_ASSERT(juki_notice_severity_valid(n.severity));
	FUZZ_ASSERT(strlen(n.id) == JUKI_UUID_LEN);
}

static void
ack(const json_t *doc)
{
	char id[JUKI_UUID_LEN + 1], by[JUKI_NOTICE_BY_MAX];
	struct juki_reject rej;
	int64_t t;

	memset(&rej, 0, sizeof(rej));
	if (juki_notice_ack_parse(doc, id, by, &t, &rej) != 0) {
		FUZZ_ASSERT(rej.detail[0] != '\0');
		return;
	}
	FUZZ_ASSERT(strlen(id) == JUKI_UUID_LEN && strlen(by) > 0);
}

static void
checkpoint(const json_t *doc)
{
	struct juki_audit_cp cp;
	const char *pem = NULL;
	char why[128] = "";

	if (juki_witness_parse(doc, &cp, &pem, why, sizeof(why)) != 0) {
		FUZZ_ASSERT(strstr(why, ": ") != NULL);
		return;
	}
	FUZZ_ASSERT(cp.seq >= 1 && cp.prev < cp.seq);
	FUZZ_ASSERT(cp.siglen >= 1 && cp.siglen <= JUKI_AUDIT_SIG_MAX);
	FUZZ_ASSERT(pem != NULL && strlen(pem) <= JUKI_WITNESS_CERT_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (doc == NULL) {
		return 0;
	}
	notice(doc);
	ack(doc);
	checkpoint(doc);
	json_decref(doc);
	return 0;
}
