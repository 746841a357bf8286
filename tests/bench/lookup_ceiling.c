/*
 * The reference of the provision benchmark (docs/benchmarks.md): point
 * lookups of the same people by 住民票コード, by a plain C loop over the
 * national server's own store file, one prepared statement, each row's
 * record read out.  Reads one code per line from stdin, prints lookups/s.
 *
 *   lookup_ceiling DBFILE < codes.txt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *line = NULL, **codes = NULL;
	size_t cap = 0, n = 0, alloc = 0, found = 0, bytes = 0;
	ssize_t len;
	double t0, t1;

	if (argc != 2) {
		fprintf(stderr, "usage: lookup_ceiling DBFILE < codes.txt\n");
		return 2;
	}
	/* Read everything first: the reference measures SQLite, not the pipe. */
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 65536;
			codes = realloc(codes, alloc * sizeof(*codes));
			if (codes == NULL) {
				return 1;
			}
		}
		line[strcspn(line, "\r\n")] = '\0';
		codes[n++] = strdup(line);
	}
	free(line);
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT rec FROM honnin WHERE code = ?1", -1, &st, NULL) !=
		SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	t0 = now_s();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, codes[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			found++;
			bytes += (size_t)sqlite3_column_bytes(st, 0);
		}
		sqlite3_reset(st);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	t1 = now_s();
	printf("lookups %zu found %zu bytes %zu seconds %.3f lookups_per_s %.0f\n", n, found, bytes,
	       t1 - t0, (double)n / (t1 - t0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (size_t i = 0; i < n; i++) {
		free(codes[i]);
	}
	free(codes);
	return found == n ? 0 : 1;
}
