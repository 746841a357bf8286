/*
 * What the CS spends reading and validating an import file, apart from the
 * register: N synthetic rows (valid check digits, Japanese names and
 * addresses) as CSV and as JSON Lines in memory, validated whole with a
 * lookup that knows nobody (every row an entry).  Prints rows/s and MB/s,
 * the best of the rounds, and the import's memory.
 *
 *   bench_import [rows] [rounds]        default 200000 rows, 5 rounds
 *
 * Not a test: it prints figures, it does not pass or fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "import.h"
#include "juki/base/clock.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"

#define SELF "131016"

struct text {
	char *s;
	size_t n, cap;
};

static void
add(struct text *t, const char *s)
{
	size_t len = strlen(s);

	if (t->n + len + 1 > t->cap) {
		t->cap = (t->n + len + 1) * 2;
		t->s = realloc(t->s, t->cap);
		if (t->s == NULL) {
			abort();
		}
	}
	memcpy(t->s + t->n, s, len + 1);
	t->n += len;
}

static void
code_of(unsigned long n, char out[12])
{
	snprintf(out, 12, "%010lu", n % 10000000000UL);
	out[10] = (char)juki_jumin_check_digit(out);
	out[11] = '\0';
}

static int
nobody(void *ctx, const char *code, struct juki_change *current, int64_t *own_version)
{
	(void)ctx;
	(void)code;
	(void)current;
	*own_version = 0;
	return JUKI_ENOTFOUND;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
run(const char *name, const struct text *t, size_t rows, int rounds, int64_t now)
{
	double best = 0;
	size_t mem = 0;

	for (int r = 0; r < rounds; r++) {
		struct csd_import *imp;
		char err[128];
		double t0 = now_s(), dt;

		if (csd_import_open_mem(name, t->s, t->n, SELF, now, NULL, &imp, err,
					sizeof(err)) != 0 ||
		    csd_import_validate(imp, 0, nobody, NULL) != 1 || !csd_import_accepted(imp) ||
		    csd_import_rows(imp) != rows) {
			fprintf(stderr, "%s: not accepted (%s)\n", name, err);
			exit(1);
		}
		dt = now_s() - t0;
		mem = csd_import_mem_bytes(imp);
		csd_import_close(imp);
		if (best == 0 || dt < best) {
			best = dt;
		}
	}
	printf("%-6s %zu rows, %.1f MB: best of %d %.3f s, %.0f rows/s, %.1f MB/s, import memory "
	       "%.1f MiB\n",
	       name, rows, (double)t->n / 1e6, rounds, best, (double)rows / best,
	       (double)t->n / 1e6 / best, (double)mem / (1024.0 * 1024.0));
}

int
main(int argc, char **argv)
{
	size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	struct text csv = {0}, jsonl = {0};
	int64_t now;
	char line[1024], code[12];

	if (rows == 0 || rounds <= 0 || juki_clock_parse("2026-11-25T03:00:00Z", &now) != 0) {
		fprintf(stderr, "usage: bench_import [rows] [rounds]\n");
		return 2;
	}
	add(&csv, "\xEF\xBB\xBF"
		  "code,lgcode,reason,reason_date,name,kana,birth,sex,address\r\n");
	for (size_t i = 0; i < rows; i++) {
		code_of(1000000 + i * 7, code);
		snprintf(
		    line, sizeof(line),
		    "%s,%s,転入,2026-11-%02zu,\"山田 花子%zu\",ヤマダ ハナコ,19%02zu-04-%02zu,%zu,"
		    "東京都千代田区千代田%zu丁目%zu番%zu号\r\n",
		    code, SELF, 1 + i % 25, i % 1000, i % 100, 1 + i % 28, 1 + i % 2, i % 9, i % 30,
		    i % 50);
		add(&csv, line);
		snprintf(line, sizeof(line),
			 "{\"code\":\"%s\",\"lgcode\":\"%s\",\"reason\":\"転入\",\"reason_date\":"
			 "\"2026-11-%02zu\",\"name\":\"山田 花子%zu\",\"kana\":\"ヤマダ ハナコ\","
			 "\"birth\":\"19%02zu-04-%02zu\",\"sex\":%zu,\"address\":"
			 "\"東京都千代田区千代田%zu丁目%zu番%zu号\"}\n",
			 code, SELF, 1 + i % 25, i % 1000, i % 100, 1 + i % 28, 1 + i % 2, i % 9,
			 i % 30, i % 50);
		add(&jsonl, line);
	}
	run("csv", &csv, rows, rounds, now);
	run("jsonl", &jsonl, rows, rounds, now);
	free(csv.s);
	free(jsonl.s);
	return 0;
}
