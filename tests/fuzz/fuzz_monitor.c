/*
 * Fuzz target: the bodies of the monitor service (juki/node/monitor.h), as
 * another node sends them to a board: a monitor.heartbeat body
 * (juki_monitor_heartbeat_check) and a monitor.alert body
 * (juki_monitor_alert_check), both tried on every input, JSON text.  A
 * refusal names the member and its rule; a body taken has the members a
 * board reads (the strings it stores, the counts it shows) of the types and
 * bounds the validator promises, and the class of its code is one of two.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/node/monitor.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	json_object_seed(1);
	return 0;
}

static void
refused_ok(int rc, const char *why)
{
	FUZZ_ASSERT(rc == JUKI_EINVAL);
	FUZZ_ASSERT(why[0] != '\0' && strstr(why, ": ") != NULL);
}

static void
heartbeat(const json_t *doc)
{
	char why[256] = "";
	int rc = juki_monitor_heartbeat_check(doc, why, sizeof(why));
	const char *state;

	if (rc != 0) {
		refused_ok(rc, why);
		return;
	}
	FUZZ_ASSERT(json_is_object(doc));
	FUZZ_ASSERT(json_is_integer(json_object_get(doc, "seq")) &&
		    json_integer_value(json_object_get(doc, "seq")) >= 0);
	FUZZ_ASSERT(json_string_length(json_object_get(doc, "daemon")) > 0 &&
		    json_string_length(json_object_get(doc, "daemon")) <= 32);
	FUZZ_ASSERT(strlen(json_string_value(json_object_get(doc, "daemon"))) ==
		    json_string_length(json_object_get(doc, "daemon")));
	FUZZ_ASSERT(json_string_length(json_object_get(doc, "version")) <= 32);
	state = json_string_value(json_object_get(doc, "state"));
	FUZZ_ASSERT(state != NULL && (strcmp(state, "ok") == 0 || strcmp(state, "degraded") == 0));
	FUZZ_ASSERT(json_is_object(json_object_get(doc, "queues")));
}

static void
alert(const json_t *doc)
{
	char why[256] = "";
	int rc = juki_monitor_alert_check(doc, why, sizeof(why));
	const char *code, *cls;

	if (rc != 0) {
		refused_ok(rc, why);
		return;
	}
	code = json_string_value(json_object_get(doc, "code"));
	cls = json_string_value(json_object_get(doc, "class"));
	FUZZ_ASSERT(code != NULL && strlen(code) >= 1 && strlen(code) <= 31);
	FUZZ_ASSERT(cls != NULL && (strcmp(cls, "fault") == 0 || strcmp(cls, "intrusion") == 0));
	cls = juki_monitor_alert_class(code);
	FUZZ_ASSERT(strcmp(cls, "fault") == 0 || strcmp(cls, "intrusion") == 0);
	FUZZ_ASSERT(json_string_length(json_object_get(doc, "detail")) < JUKI_MONITOR_DETAIL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (doc == NULL) {
		return 0;
	}
	heartbeat(doc);
	alert(doc);
	json_decref(doc);
	return 0;
}
