/*
 * Fuzz target: the bodies of provide.query and provide.batch
 * (juki_provide_request_read, and each query of a batch with
 * juki_provide_query_from_json).  The input is JSON text as a message's body.
 * A body that is read holds what the handlers rely on without looking again
 * (an agreement id, a 事務, a purpose, a batch header in range, 1..1000
 * queries); a refusal names one of the reasons the protocol lists and a
 * detail; a query that is read has a canonical line of one line.
 */
#include <jansson.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/records/agreement.h"
#include "juki/records/approval.h"
#include "juki/wire/msg.h"

static void
check_refusal(int rc, const char *reason, const char *detail)
{
	FUZZ_ASSERT(rc == JUKI_EFORMAT);
	FUZZ_ASSERT(reason != NULL);
	FUZZ_ASSERT(
	    strcmp(reason, JUKI_R_BAD_FIELD) == 0 || strcmp(reason, JUKI_R_CHECK_DIGIT) == 0 ||
	    strcmp(reason, JUKI_R_FUTURE_DATE) == 0 || strcmp(reason, JUKI_R_BAD_BATCH) == 0);
	FUZZ_ASSERT(detail[0] != '\0');
}

static void
check_query(const struct juki_provide_query *q)
{
	char line[2048];
	int n = juki_provide_query_line(q, line, sizeof(line));

	FUZZ_ASSERT(n > 0 && line[n - 1] == '\n');
	FUZZ_ASSERT(memchr(line, '\n', (size_t)n - 1) == NULL);
}

static void
check_common(const struct juki_provide_request *r)
{
	FUZZ_ASSERT(r->agreement != NULL && r->agreement[0] != '\0' &&
		    strlen(r->agreement) < JUKI_ID_MAX);
	FUZZ_ASSERT(juki_jimu_valid(r->jimu));
	FUZZ_ASSERT(r->purpose != NULL && r->purpose[0] != '\0');
	FUZZ_ASSERT((r->items & ~JUKI_ITEMS_ALL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct juki_provide_request r;
	const char *reason = NULL;
	char detail[JUKI_DETAIL_MAX] = "";
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const json_t *v;
	size_t i;
	int rc;

	if (body == NULL) {
		return 0;
	}
	rc = juki_provide_request_read(body, 0, &r, &reason, detail, sizeof(detail));
	if (rc == 0) {
		check_common(&r);
		check_query(&r.query);
	} else {
		check_refusal(rc, reason, detail);
	}
	reason = NULL;
	detail[0] = '\0';
	rc = juki_provide_request_read(body, 1, &r, &reason, detail, sizeof(detail));
	if (rc == 0) {
		check_common(&r);
		FUZZ_ASSERT(juki_uuid_valid(r.batch.id));
		FUZZ_ASSERT(r.batch.parts >= 1 && r.batch.parts <= JUKI_PROVIDE_PARTS_MAX);
		FUZZ_ASSERT(r.batch.part >= 0 && r.batch.part < r.batch.parts);
		FUZZ_ASSERT(r.batch.count >= r.batch.parts &&
			    r.batch.count <= r.batch.parts * JUKI_PROVIDE_PART_MAX);
		FUZZ_ASSERT(r.batch.n >= 1 && r.batch.n <= JUKI_PROVIDE_PART_MAX);
		FUZZ_ASSERT((size_t)r.batch.n == json_array_size(r.queries));
		FUZZ_ASSERT(r.approval == NULL || json_is_object(r.approval));
		json_array_foreach(r.queries, i, v)
		{
			struct juki_provide_query q;
			struct juki_field_error fe;

			if (juki_provide_query_from_json(v, NULL, &q, &fe) == 0) {
				check_query(&q);
			} else {
				FUZZ_ASSERT(fe.reason != NULL && fe.field[0] != '\0');
			}
		}
	} else {
		check_refusal(rc, reason, detail);
	}
	json_decref(body);
	return 0;
}
