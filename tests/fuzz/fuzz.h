/*
 * juki — what the libFuzzer targets in tests/fuzz share (docs/design.md §9).
 *
 * Each target is one fuzz_<parser>.c defining LLVMFuzzerTestOneInput().
 * Besides the sanitizers' own reports, a target checks the parser's
 * promises (round trips, what an error leaves behind) with FUZZ_ASSERT(),
 * which aborts so that libFuzzer keeps the input as a crash.
 */
#ifndef JUKI_FUZZ_H
#define JUKI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline void __attribute__((noreturn)) fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

#define FUZZ_ASSERT(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__))

/*
 * fuzz_cstr() - the input as a C string, malloc'd.  A NUL in the input ends
 * the string there, as it would for any C caller.
 */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_ASSERT(s != NULL);
	if (size > 0) {
		memcpy(s, data, size);
	}
	s[size] = '\0';
	return s;
}

#endif
