/*
 * Fuzz target: the import file reader and validator of juki-csd
 * (cs/import.c), CSV and JSON Lines.  The first input byte picks the file
 * name (and so the format) and how the file is validated; the rest is the
 * file.  The lookup answers from the code's last digits, so every
 * consistency rule is reached.  Besides the sanitizers' reports, it checks
 * the validator's promises:
 *
 * - validating in small steps finds the same errors as in one go;
 * - every error names a reason and a rule, and a line of the file;
 * - an accepted file replays into exactly as many changes as its receipt
 *   counts, each a valid change record of this municipality, and the
 *   replay ends cleanly;
 * - a refused file gives no receipt and cannot be replayed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "import.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"

#define SELF "131016"
#define NOW  1795564800000LL /* 2026-11-25T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void __attribute__((noreturn)) broken(const char *what, int line)
{
	fprintf(stderr, "fuzz_import.c:%d: invariant broken: %s\n", line, what);
	abort();
}

#define CHECK(cond) ((cond) ? (void)0 : broken(#cond, __LINE__))

/* What the CS holds, decided by the code's last two digits. */
static int
lookup(void *ctx, const char *code, struct juki_change *cur, int64_t *own)
{
	int d = (code[9] - '0') * 10 + (code[10] - '0');

	(void)ctx;
	memset(cur, 0, sizeof(*cur));
	snprintf(cur->code, sizeof(cur->code), "%s", code);
	*own = 0;
	switch (d % 8) {
	case 0: /* resident here */
		snprintf(cur->lgcode, sizeof(cur->lgcode), "%s", SELF);
		cur->version = *own = 3;
		cur->reason = juki_reason_find("転入");
		return 0;
	case 1: /* removed here */
		snprintf(cur->lgcode, sizeof(cur->lgcode), "%s", SELF);
		cur->version = *own = 2;
		cur->reason = juki_reason_find("転出");
		return 0;
	case 2: /* resident elsewhere, once here */
		snprintf(cur->lgcode, sizeof(cur->lgcode), "271004");
		cur->version = 1;
		*own = 4;
		cur->reason = juki_reason_find("転入");
		return 0;
	default:
		return JUKI_ENOTFOUND;
	}
}

static size_t
count_lines(const uint8_t *data, size_t size)
{
	size_t n = 1;

	for (size_t i = 0; i < size; i++) {
		n += data[i] == '\n';
	}
	return n;
}

static struct csd_import *
open_mem(const char *name, const uint8_t *data, size_t size)
{
	struct csd_import_limits lim = {.max_bytes = 1 << 20, .max_line = 2048, .max_errors = 20};
	struct csd_import *imp = NULL;
	char err[128];

	CHECK(csd_import_open_mem(name, data, size, SELF, NOW, &lim, &imp, err, sizeof(err)) == 0);
	return imp;
}

static void
check_errors(const struct csd_import *imp, size_t lines)
{
	const struct csd_import_error *e;
	size_t n;

	e = csd_import_errors(imp, &n);
	CHECK(n <= 20 && n <= csd_import_error_count(imp));
	CHECK(n == csd_import_error_count(imp) || n == 20);
	for (size_t i = 0; i < n; i++) {
		CHECK(e[i].reason != NULL && e[i].reason[0] != '\0');
		CHECK(e[i].detail[0] != '\0');
		CHECK(e[i].line <= lines);
	}
}

static void
check_replay(struct csd_import *imp)
{
	struct csd_import_change c;
	json_t *receipt = csd_import_receipt_json(imp);
	size_t changes = 0;
	int rc;

	CHECK(receipt != NULL);
	CHECK(csd_import_rewind(imp, lookup, NULL) == 0);
	while ((rc = csd_import_next(imp, &c)) == 1) {
		struct juki_field_error fe;
		struct juki_change back;
		json_t *obj;

		changes++;
		CHECK(strcmp(c.change.lgcode, SELF) == 0);
		CHECK(juki_jumin_code_check(c.change.code) == 0);
		CHECK(c.change.version >= 1);
		if (c.ends_record) {
			CHECK(csd_import_change_kind(&c) == JUKI_CHANGE_REMOVAL);
			continue;
		}
		obj = juki_change_to_json(&c.change);
		CHECK(obj != NULL);
		CHECK(juki_change_from_json(obj, &back, &fe) == 0);
		json_decref(obj);
	}
	CHECK(rc == 0);
	CHECK(csd_import_next(imp, &c) == 0);
	CHECK(changes == (size_t)json_integer_value(json_object_get(receipt, "changes")));
	json_decref(receipt);
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
	static const char *const names[] = {"f.csv", "f.jsonl", "f"};
	struct csd_import *whole, *steps;
	const char *name;
	size_t step, lines;
	json_t *report;
	int rc;

	if (size == 0) {
		return 0;
	}
	name = names[data[0] % 3];
	step = 1 + (data[0] >> 2) % 8;
	data++;
	size--;
	lines = count_lines(data, size);

	whole = open_mem(name, data, size);
	CHECK(csd_import_validate(whole, 0, lookup, NULL) == 1);
	check_errors(whole, lines);

	steps = open_mem(name, data, size);
	while ((rc = csd_import_validate(steps, step, lookup, NULL)) == 0) {
	}
	CHECK(rc == 1);
	CHECK(csd_import_error_count(steps) == csd_import_error_count(whole));
	CHECK(csd_import_rows(steps) == csd_import_rows(whole));
	CHECK(csd_import_accepted(steps) == (csd_import_error_count(steps) == 0));

	report = csd_import_report_json(whole);
	CHECK(report != NULL);
	CHECK((size_t)json_integer_value(json_object_get(report, "error_count")) ==
	      csd_import_error_count(whole));
	json_decref(report);

	if (csd_import_accepted(whole)) {
		check_replay(whole);
	} else {
		struct csd_import_change c;

		CHECK(csd_import_receipt_json(whole) == NULL);
		CHECK(csd_import_rewind(whole, lookup, NULL) == JUKI_EINVAL);
		CHECK(csd_import_next(whole, &c) == JUKI_EINVAL);
	}
	csd_import_close(whole);
	csd_import_close(steps);
	return 0;
}
