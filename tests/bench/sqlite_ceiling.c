/*
 * The reference ceiling of the identity-information benchmark: the same
 * rows inserted by a plain C loop into a fresh SQLite table
 * (code TEXT PRIMARY KEY, rec BLOB), WAL, synchronous=FULL, 10,000 rows per
 * transaction, one prepared statement.  Reads "code<TAB>record" lines from
 * stdin, prints rows/s.
 *
 *   sqlite_ceiling DBFILE < rows.tsv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define PER_TXN 10000

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
	char *line = NULL, **lines = NULL;
	size_t cap = 0, n = 0, alloc = 0;
	ssize_t len;
	double t0, t1;

	if (argc != 2) {
		fprintf(stderr, "usage: sqlite_ceiling DBFILE < rows.tsv\n");
		return 2;
	}
	/* Read everything first: the ceiling measures SQLite, not the pipe. */
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 65536;
			lines = realloc(lines, alloc * sizeof(*lines));
		}
		line[len - 1] = '\0';
		lines[n++] = strdup(line);
	}
	free(line);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE t (code TEXT PRIMARY KEY, rec BLOB);",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO t (code, rec) VALUES (?1, ?2)", -1, &st, NULL) !=
		SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		char *tab = strchr(lines[i], '\t');

		if (i % PER_TXN == 0) {
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		}
		if (tab == NULL) {
			continue;
		}
		sqlite3_bind_text(st, 1, lines[i], (int)(tab - lines[i]), SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, tab + 1, (int)strlen(tab + 1), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(st);
		if (i % PER_TXN == PER_TXN - 1 || i == n - 1) {
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		}
	}
	t1 = now_s();
	printf("rows %zu seconds %.3f rows_per_s %.0f\n", n, t1 - t0, (double)n / (t1 - t0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (size_t i = 0; i < n; i++) {
		free(lines[i]);
	}
	free(lines);
	return 0;
}
