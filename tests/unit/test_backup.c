#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/store/backup.h"
#include "juki/store/store.h"

#include "helpers.h"

#define NODE "urn:juki:pref:13"
#define WHEN "2026-11-25T01:02:03.456Z"

static const struct juki_migration t_steps[] = {
    {1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"},
    {2, "CREATE INDEX t_v ON t(v)"},
};
static const struct juki_schema t_schema = {"t", t_steps, 2};

struct fx {
	char dir[64];
	char path[128];  /* the store */
	char bdir[128];  /* a backup directory, not yet created */
	char other[128]; /* a second store path for restores */
	struct juki_store *store;
	int ticks;
};

static void
count_tick(void *arg)
{
	((struct fx *)arg)->ticks++;
}

static void
exec_ok(struct juki_store *s, const char *sql)
{
	assert_int_equal(juki_store_exec(s, sql), 0);
}

/* Rows with the values from..to-1, each with a long text so that pages fill. */
static void
fill(struct juki_store *s, int from, int to)
{
	char sql[160];

	assert_int_equal(juki_store_begin(s), 0);
	for (int i = from; i < to; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t (id, v) VALUES (%d, printf('%%0300d', %d))", i, i);
		exec_ok(s, sql);
	}
	assert_int_equal(juki_store_commit(s), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "backup"));
	snprintf(f->path, sizeof(f->path), "%s/node.db", f->dir);
	snprintf(f->bdir, sizeof(f->bdir), "%s/backups/one", f->dir);
	snprintf(f->other, sizeof(f->other), "%s/restored.db", f->dir);
	assert_int_equal(juki_store_open(f->path, &t_schema, 1, &f->store, err, sizeof(err)), 0);
	fill(f->store, 0, 500);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	juki_store_close(f->store);
	assert_int_equal(test_rm_rf(f->dir), 0);
	free(f);
	return 0;
}

static struct juki_backup_opts
opts_of(struct fx *f)
{
	struct juki_backup_opts o = {
	    .node = NODE,
	    .tick = count_tick,
	    .tick_arg = f,
	};

	assert_int_equal(juki_clock_parse(WHEN, &o.now_ms), 0);
	return o;
}

static json_t *
take_ok(struct fx *f, const char *dir)
{
	struct juki_backup_opts o = opts_of(f);
	json_t *m = NULL;
	char err[512];
	int rc = juki_backup_take(f->store, dir, &o, &m, err, sizeof(err));

	if (rc != 0) {
		print_error("take: %s: %s\n", juki_strerror(rc), err);
	}
	assert_int_equal(rc, 0);
	assert_non_null(m);
	return m;
}

static void
sha256_of(const char *path, char hex[65])
{
	unsigned char md[32], buf[4096];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		EVP_DigestUpdate(ctx, buf, n);
	}
	fclose(fp);
	assert_int_equal(EVP_DigestFinal_ex(ctx, md, &len), 1);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 32; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
}

static mode_t
mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_mode & 07777;
}

static int
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static int
entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	}
	closedir(d);
	return n;
}

/* Rows of t in the database file at path, read without changing it. */
static int64_t
rows_in(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void
path_in(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
rewrite_manifest(const char *dir, json_t *m)
{
	char path[256];

	path_in(path, sizeof(path), dir, JUKI_BACKUP_MANIFEST);
	assert_int_equal(json_dump_file(m, path, 0), 0);
}

/* Overwrite one byte of path at off. */
static void
poke(const char *path, long off, unsigned char byte)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &byte, 1, off), 1);
	close(fd);
}

static void
test_take(void **state)
{
	struct fx *f = *state;
	char copy[256], man[256], hex[65], parent[160];
	json_t *m;
	struct stat sb;

	/*
	 * Rows still in the WAL, not yet in the database file, are in the copy;
	 * enough of them (over 4 MiB) to need more than one step.
	 */
	fill(f->store, 500, 15000);
	m = take_ok(f, f->bdir);
	path_in(copy, sizeof(copy), f->bdir, "node.db");
	path_in(man, sizeof(man), f->bdir, JUKI_BACKUP_MANIFEST);
	assert_int_equal(json_integer_value(json_object_get(m, "manifest_version")), 1);
	assert_string_equal(json_string_value(json_object_get(m, "node")), NODE);
	assert_string_equal(json_string_value(json_object_get(m, "time")), WHEN);
	assert_string_equal(json_string_value(json_object_get(m, "file")), "node.db");
	assert_string_equal(json_string_value(json_object_get(m, "source")), f->path);
	assert_int_equal(stat(copy, &sb), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "size")), sb.st_size);
	sha256_of(copy, hex);
	assert_string_equal(json_string_value(json_object_get(m, "sha256")), hex);
	assert_int_equal(json_integer_value(json_object_get(m, "page_count")) *
			     json_integer_value(json_object_get(m, "page_size")),
			 sb.st_size);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "schemas"), "t")),
			 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "schemas"), "juki")),
			 3);
	assert_string_equal(json_string_value(json_object_get(m, "sqlite")), sqlite3_libversion());
	/* the manifest on disk says the same */
	{
		json_t *disk = json_load_file(man, 0, NULL);

		assert_true(json_equal(disk, m));
		json_decref(disk);
	}
	/* private: the directory and both files; nothing else left in it */
	assert_int_equal(mode_of(f->bdir), 0700);
	snprintf(parent, sizeof(parent), "%s/backups", f->dir);
	assert_int_equal(mode_of(parent), 0700);
	assert_int_equal(mode_of(copy), 0600);
	assert_int_equal(mode_of(man), 0600);
	assert_int_equal(entries(f->bdir), 2);
	/* a self-contained copy of everything */
	assert_int_equal(rows_in(copy), 15000);
	assert_int_equal(entries(f->bdir), 2);
	assert_true(json_integer_value(json_object_get(m, "page_count")) >
		    JUKI_BACKUP_PAGES_PER_STEP);
	assert_true(f->ticks >= 2);
	json_decref(m);

	/* A backup is never overwritten. */
	{
		struct juki_backup_opts o = opts_of(f);
		char err[256];

		m = NULL;
		fill(f->store, 15000, 15010);
		assert_int_equal(juki_backup_take(f->store, f->bdir, &o, &m, err, sizeof(err)),
				 JUKI_EEXIST);
		assert_null(m);
		assert_non_null(strstr(err, "holds a backup already"));
		assert_int_equal(rows_in(copy), 15000);
	}
}

static void
test_take_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct juki_backup_opts o = opts_of(f);
	char err[256], file[160], under[200];
	json_t *m = NULL;

	assert_int_equal(juki_backup_take(NULL, f->bdir, &o, &m, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_take(f->store, NULL, &o, &m, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_take(f->store, f->bdir, NULL, &m, err, sizeof(err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_backup_take(f->store, f->bdir, &o, NULL, err, sizeof(err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_backup_take(f->store, "backups/rel", &o, &m, err, sizeof(err)),
			 JUKI_EINVAL);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(juki_backup_take(f->store, "", &o, &m, err, sizeof(err)), JUKI_EINVAL);
	o.node = NULL;
	assert_int_equal(juki_backup_take(f->store, f->bdir, &o, &m, err, sizeof(err)),
			 JUKI_EINVAL);
	o.node = "";
	assert_int_equal(juki_backup_take(f->store, f->bdir, &o, &m, err, sizeof(err)),
			 JUKI_EINVAL);
	o = opts_of(f);
	/* a directory where a file is */
	path_in(file, sizeof(file), f->dir, "plain");
	write_file(file, "x");
	snprintf(under, sizeof(under), "%s/sub", file);
	assert_int_equal(juki_backup_take(f->store, under, &o, &m, err, sizeof(err)), -ENOTDIR);
	assert_int_equal(juki_backup_take(f->store, file, &o, &m, err, sizeof(err)), -ENOTDIR);
	assert_null(m);
	assert_false(exists(f->bdir));
	/* Into the store's own directory: the copy would replace the store itself. */
	fill(f->store, 500, 510);
	assert_int_equal(juki_backup_take(f->store, f->dir, &o, &m, err, sizeof(err)), JUKI_EEXIST);
	assert_non_null(strstr(err, "node.db"));
	assert_null(m);
	assert_int_equal(rows_in(f->path), 510);
	fill(f->store, 510, 520);
}

static void
test_verify(void **state)
{
	struct fx *f = *state;
	char copy[256], man[256], err[512];
	json_t *m = take_ok(f, f->bdir), *got = NULL;

	path_in(copy, sizeof(copy), f->bdir, "node.db");
	path_in(man, sizeof(man), f->bdir, JUKI_BACKUP_MANIFEST);
	assert_true(exists(man));
	assert_int_equal(juki_backup_verify(f->bdir, &got, err, sizeof(err)), 0);
	assert_true(json_equal(got, m));
	json_decref(got);
	assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), 0);
	/* verifying changes nothing: no side files appear */
	assert_int_equal(entries(f->bdir), 2);

	/* Bad arguments and missing things. */
	assert_int_equal(juki_backup_verify(NULL, NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_verify("", NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_verify(f->dir, NULL, err, sizeof(err)), JUKI_ENOENT);
	assert_non_null(strstr(err, JUKI_BACKUP_MANIFEST));

	/* One byte of the copy changed: the checksum says so. */
	poke(copy, 5000, 0x5a);
	got = m;
	assert_int_equal(juki_backup_verify(f->bdir, &got, err, sizeof(err)), JUKI_EIO);
	assert_null(got);
	assert_non_null(strstr(err, "SHA-256"));
	json_decref(m);
}

/* Manifests that are not as they must be, and copies that do not match them. */
static void
test_verify_manifest_rules(void **state)
{
	struct fx *f = *state;
	char copy[256], man[256], err[512], hex[65];
	json_t *m = take_ok(f, f->bdir), *bad;
	struct stat sb;

	path_in(copy, sizeof(copy), f->bdir, "node.db");
	path_in(man, sizeof(man), f->bdir, JUKI_BACKUP_MANIFEST);

#define REFUSED(mutate, code, text)                                                                \
	do {                                                                                       \
		bad = json_deep_copy(m);                                                           \
		mutate;                                                                            \
		rewrite_manifest(f->bdir, bad);                                                    \
		json_decref(bad);                                                                  \
		assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), code);       \
		assert_non_null(strstr(err, text));                                                \
	} while (0)
	REFUSED(json_object_set_new(bad, "manifest_version", json_integer(2)), JUKI_EFORMAT,
		"manifest_version");
	REFUSED(json_object_del(bad, "node"), JUKI_EFORMAT, "node");
	REFUSED(json_object_set_new(bad, "time", json_string("yesterday")), JUKI_EFORMAT, "time");
	REFUSED(json_object_set_new(bad, "file", json_string("../node.db")), JUKI_EFORMAT, "file");
	REFUSED(json_object_set_new(bad, "file", json_string(".hidden")), JUKI_EFORMAT, "file");
	REFUSED(json_object_set_new(bad, "file", json_string(JUKI_BACKUP_MANIFEST)), JUKI_EFORMAT,
		"file");
	REFUSED(json_object_set_new(bad, "file", json_integer(1)), JUKI_EFORMAT, "file");
	REFUSED(json_object_set_new(bad, "size", json_integer(-1)), JUKI_EFORMAT, "size");
	REFUSED(json_object_set_new(bad, "sha256", json_string("ABCD")), JUKI_EFORMAT, "sha256");
	REFUSED(json_object_set_new(bad, "page_count", json_string("3")), JUKI_EFORMAT,
		"page_count");
	REFUSED(json_object_set_new(bad, "schemas", json_array()), JUKI_EFORMAT, "schemas");
	REFUSED(json_object_set_new(json_object_get(bad, "schemas"), "t", json_string("2")),
		JUKI_EFORMAT, "schemas");
	/* well-formed, but not what the copy is */
	REFUSED(json_object_set_new(bad, "file", json_string("gone.db")), JUKI_ENOENT, "gone.db");
	REFUSED(json_object_set_new(bad, "size", json_integer(12)), JUKI_EIO, "bytes");
	REFUSED(json_object_set_new(bad, "page_count", json_integer(1)), JUKI_EIO, "page");
	REFUSED(json_object_set_new(json_object_get(bad, "schemas"), "t", json_integer(3)),
		JUKI_EIO, "schema versions");
	REFUSED(json_object_set_new(json_object_get(bad, "schemas"), "x", json_integer(1)),
		JUKI_EIO, "schema versions");
#undef REFUSED

	/* not JSON, JSON of the wrong kind, duplicate keys, too large */
	write_file(man, "{\"manifest_version\": 1,");
	assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), JUKI_EFORMAT);
	write_file(man, "[1, 2]");
	assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), JUKI_EFORMAT);
	write_file(man, "{\"manifest_version\": 1, \"manifest_version\": 1}");
	assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), JUKI_EFORMAT);
	{
		char *big = malloc(JUKI_BACKUP_MANIFEST_MAX + 2);

		memset(big, ' ', JUKI_BACKUP_MANIFEST_MAX + 1);
		big[JUKI_BACKUP_MANIFEST_MAX + 1] = '\0';
		write_file(man, big);
		free(big);
		assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), JUKI_EFORMAT);
	}

	/*
	 * A copy damaged inside (a b-tree page's type byte) with a manifest
	 * rewritten to its checksum: the integrity check still finds it.
	 */
	poke(copy, 4096 * 2, 0x77);
	bad = json_deep_copy(m);
	sha256_of(copy, hex);
	assert_int_equal(stat(copy, &sb), 0);
	json_object_set_new(bad, "sha256", json_string(hex));
	rewrite_manifest(f->bdir, bad);
	json_decref(bad);
	assert_int_equal(juki_backup_verify(f->bdir, NULL, err, sizeof(err)), JUKI_EIO);
	assert_non_null(strstr(err, "integrity check"));
	json_decref(m);
}

static void
test_restore(void **state)
{
	struct fx *f = *state;
	char err[512], before[200], side[200], hex[65];
	json_t *m = take_ok(f, f->bdir), *got = NULL;

	/* Later changes, then the daemon stops. */
	fill(f->store, 500, 700);
	juki_store_close(f->store);
	f->store = NULL;
	assert_int_equal(rows_in(f->path), 700);

	assert_int_equal(juki_backup_restore(f->bdir, f->path, &got, err, sizeof(err)), 0);
	assert_true(json_equal(got, m));
	json_decref(got);
	/* The store is the backup, byte for byte; alone, without a WAL of the old one. */
	sha256_of(f->path, hex);
	assert_string_equal(hex, json_string_value(json_object_get(m, "sha256")));
	assert_int_equal(mode_of(f->path), 0600);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	assert_false(exists(side));
	snprintf(side, sizeof(side), "%s-shm", f->path);
	assert_false(exists(side));
	snprintf(side, sizeof(side),
		 "%s"
		 ".restore-tmp",
		 f->path);
	assert_false(exists(side));
	assert_int_equal(rows_in(f->path), 500);
	/* The replaced store is kept, complete. */
	snprintf(before, sizeof(before), "%s" JUKI_BACKUP_BEFORE_RESTORE, f->path);
	assert_int_equal(mode_of(before), 0600);
	assert_int_equal(rows_in(before), 700);
	/* and the daemon opens the restored store */
	assert_int_equal(juki_store_open(f->path, &t_schema, 1, &f->store, err, sizeof(err)), 0);
	fill(f->store, 500, 501);
	json_decref(m);
}

/* A store of another node is not replaced by this node's backup, and stays as it was. */
static void
test_restore_refused_for_another_node(void **state)
{
	struct fx *f = *state;
	char err[512], before_hash[65], after_hash[65], side[200];
	json_t *got = NULL;

	json_decref(take_ok(f, f->bdir));
	assert_int_equal(juki_store_exec(f->store, "INSERT INTO node_identity (urn) VALUES "
						   "('urn:juki:pref:27')"),
			 0);
	assert_int_equal(juki_store_checkpoint(f->store, 10), 0);
	juki_store_close(f->store);
	f->store = NULL;
	sha256_of(f->path, before_hash);
	assert_int_equal(juki_backup_restore(f->bdir, f->path, &got, err, sizeof(err)),
			 JUKI_EEXIST);
	assert_null(got);
	assert_non_null(strstr(err, "belongs to urn:juki:pref:27; the backup is of " NODE));
	sha256_of(f->path, after_hash);
	assert_string_equal(before_hash, after_hash);
	snprintf(side, sizeof(side), "%s" JUKI_BACKUP_BEFORE_RESTORE, f->path);
	assert_false(exists(side));
	/* Its own node's store is replaced. */
	assert_int_equal(juki_store_open(f->path, &t_schema, 1, &f->store, err, sizeof(err)), 0);
	assert_int_equal(juki_store_exec(f->store, "UPDATE node_identity SET urn = '" NODE "'"), 0);
	juki_store_close(f->store);
	f->store = NULL;
	assert_int_equal(juki_backup_restore(f->bdir, f->path, &got, err, sizeof(err)), 0);
	json_decref(got);
	assert_int_equal(juki_store_open(f->path, &t_schema, 1, &f->store, err, sizeof(err)), 0);
}

static void
test_restore_refused_while_open(void **state)
{
	struct fx *f = *state;
	char err[512], before_hash[65], after_hash[65], side[200];
	json_t *got = NULL;

	json_decref(take_ok(f, f->bdir));
	fill(f->store, 500, 510);
	/* the store is open (idle): the daemon is running */
	assert_int_equal(juki_store_checkpoint(f->store, 10), 0);
	sha256_of(f->path, before_hash);
	assert_int_equal(juki_backup_restore(f->bdir, f->path, &got, err, sizeof(err)), -EBUSY);
	assert_null(got);
	assert_non_null(strstr(err, "in use"));
	sha256_of(f->path, after_hash);
	assert_string_equal(before_hash, after_hash);
	snprintf(side, sizeof(side), "%s" JUKI_BACKUP_BEFORE_RESTORE, f->path);
	assert_false(exists(side));
	snprintf(side, sizeof(side), "%s.restore-tmp", f->path);
	assert_false(exists(side));
	/* and it keeps working */
	fill(f->store, 510, 520);
}

static void
test_restore_edge_cases(void **state)
{
	struct fx *f = *state;
	char err[512], before[200], wal[200], saved[200], cmd[600];
	json_t *m = take_ok(f, f->bdir);

	/* Onto a path with no store yet: created, nothing kept. */
	assert_int_equal(juki_backup_restore(f->bdir, f->other, NULL, err, sizeof(err)), 0);
	assert_int_equal(rows_in(f->other), 500);
	snprintf(before, sizeof(before), "%s" JUKI_BACKUP_BEFORE_RESTORE, f->other);
	assert_false(exists(before));

	/* Over a file that is no database at all (what a restore is for). */
	write_file(f->other, "this is not a database, and it is long enough to be read as one");
	assert_int_equal(juki_backup_restore(f->bdir, f->other, NULL, err, sizeof(err)), 0);
	assert_int_equal(rows_in(f->other), 500);
	assert_int_equal(mode_of(before), 0600);

	/*
	 * After a crash: the old store's WAL still holds committed rows.  They
	 * go into the kept file, never into the restored one.
	 */
	fill(f->store, 500, 800);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	snprintf(saved, sizeof(saved), "%s/saved-wal", f->dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", wal, saved);
	assert_int_equal(system(cmd), 0);
	juki_store_close(f->store);
	f->store = NULL;
	snprintf(cmd, sizeof(cmd), "cp %s %s", saved, wal);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(juki_backup_restore(f->bdir, f->path, NULL, err, sizeof(err)), 0);
	assert_false(exists(wal));
	assert_int_equal(rows_in(f->path), 500);
	snprintf(before, sizeof(before), "%s" JUKI_BACKUP_BEFORE_RESTORE, f->path);
	assert_int_equal(rows_in(before), 800);
	/* a second restore replaces the kept file with the store it replaces */
	assert_int_equal(juki_backup_restore(f->bdir, f->path, NULL, err, sizeof(err)), 0);
	assert_int_equal(rows_in(before), 500);

	/* Bad arguments; a broken backup changes nothing. */
	assert_int_equal(juki_backup_restore(NULL, f->path, NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_restore(f->bdir, NULL, NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_backup_restore(f->bdir, "", NULL, err, sizeof(err)), JUKI_EINVAL);
	/* a folder where the store should be (f->dir itself sits in /tmp, refused as a store's
	 * folder) */
	{
		char adir[200];

		path_in(adir, sizeof(adir), f->dir, "adir");
		assert_int_equal(mkdir(adir, 0700), 0);
		assert_int_equal(juki_backup_restore(f->bdir, adir, NULL, err, sizeof(err)),
				 JUKI_EINVAL);
		assert_non_null(strstr(err, "not a regular file"));
	}
	{
		char copy[256];

		path_in(copy, sizeof(copy), f->bdir, "node.db");
		poke(copy, 100, 0x01);
		assert_int_equal(juki_backup_restore(f->bdir, f->other, NULL, err, sizeof(err)),
				 JUKI_EIO);
	}
	json_decref(m);
}

/* A backup of node taken at the time when, into backups/<name>. */
static void
take_at(struct fx *f, const char *name, const char *node, const char *when)
{
	struct juki_backup_opts o = opts_of(f);
	char dir[256], err[512];
	json_t *m = NULL;

	o.node = node;
	assert_int_equal(juki_clock_parse(when, &o.now_ms), 0);
	snprintf(dir, sizeof(dir), "%s/backups/%s", f->dir, name);
	assert_int_equal(juki_backup_take(f->store, dir, &o, &m, err, sizeof(err)), 0);
	json_decref(m);
}

static int
exists_in(struct fx *f, const char *name)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/backups/%s", f->dir, name);
	return lstat(path, &sb) == 0;
}

/*
 * The retention of backups: those of the node older than the cutoff go,
 * erased, but never the newest; another node's backups, directories
 * without a manifest and links are not the node's to remove.
 */
static void
test_prune(void **state)
{
	struct fx *f = *state;
	struct juki_backup_prune_counts n;
	char backups[160], path[256];
	int64_t cutoff;

	snprintf(backups, sizeof(backups), "%s/backups", f->dir);
	/* No directory yet: nothing to do. */
	assert_int_equal(juki_backup_prune(backups, NODE, 0, 0, &n), 0);
	assert_int_equal(n.backups, 0);
	take_at(f, "a", NODE, "2026-01-01T00:00:00.000Z");
	take_at(f, "b", NODE, "2026-02-01T00:00:00.000Z");
	take_at(f, "c", NODE, "2026-03-01T00:00:00.000Z");
	take_at(f, "d", NODE, "2026-04-01T00:00:00.000Z");
	take_at(f, "stranger", "urn:juki:pref:14", "2025-01-01T00:00:00.000Z");
	snprintf(path, sizeof(path), "%s/notes", backups);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/link", backups);
	assert_int_equal(symlink("a", path), 0);
	assert_int_equal(juki_clock_parse("2026-02-15T00:00:00.000Z", &cutoff), 0);

	assert_int_equal(juki_backup_prune(backups, NODE, cutoff, 1, &n), 0);
	assert_int_equal(n.backups, 4);
	assert_int_equal(n.due, 2);
	assert_int_equal(n.removed, 0);
	assert_true(exists_in(f, "a") && exists_in(f, "b"));

	assert_int_equal(juki_backup_prune(backups, NODE, cutoff, 0, &n), 0);
	assert_int_equal(n.due, 2);
	assert_int_equal(n.removed, 2);
	assert_int_equal(n.failed, 0);
	assert_false(exists_in(f, "a"));
	assert_false(exists_in(f, "b"));
	assert_true(exists_in(f, "c") && exists_in(f, "d"));
	assert_true(exists_in(f, "stranger") && exists_in(f, "notes") && exists_in(f, "link"));

	/* Every one past its period: the newest stays. */
	assert_int_equal(juki_clock_parse("2027-01-01T00:00:00.000Z", &cutoff), 0);
	assert_int_equal(juki_backup_prune(backups, NODE, cutoff, 0, &n), 0);
	assert_int_equal(n.backups, 2);
	assert_int_equal(n.removed, 1);
	assert_false(exists_in(f, "c"));
	assert_true(exists_in(f, "d"));
	assert_int_equal(juki_backup_prune(backups, NODE, cutoff, 0, &n), 0);
	assert_int_equal(n.removed, 0);
	assert_true(exists_in(f, "d"));
	/* INT64_MIN: kept forever. */
	take_at(f, "e", NODE, "2026-05-01T00:00:00.000Z");
	assert_int_equal(juki_backup_prune(backups, NODE, INT64_MIN, 0, &n), 0);
	assert_int_equal(n.due, 0);
	assert_true(exists_in(f, "d") && exists_in(f, "e"));
	assert_int_equal(juki_backup_prune(NULL, NODE, cutoff, 0, &n), JUKI_EINVAL);
}

/* A backup folder, or one above it, that others can write to: no backup there, no restore. */
static void
test_backup_folder_writable_by_others_refused(void **state)
{
	struct fx *f = *state;
	struct juki_backup_opts o = opts_of(f);
	json_t *m = NULL;
	char top[128], err[512], want[512];

	snprintf(top, sizeof(top), "%s/backups", f->dir);
	assert_int_equal(mkdir(top, 0700), 0);
	assert_int_equal(chmod(top, 0777), 0);
	snprintf(want, sizeof(want), "%s: mode 0777, writable by others (owner uid %u)", top,
		 (unsigned)geteuid());
	assert_int_equal(juki_backup_take(f->store, f->bdir, &o, &m, err, sizeof(err)), JUKI_EPERM);
	assert_string_equal(err, want);
	assert_null(m);
	assert_int_equal(access(f->bdir, F_OK), -1);
	/* taken while the folder was private, then opened to others: not restored */
	assert_int_equal(chmod(top, 0700), 0);
	json_decref(take_ok(f, f->bdir));
	assert_int_equal(chmod(top, 0777), 0);
	assert_int_equal(juki_backup_restore(f->bdir, f->other, NULL, err, sizeof(err)),
			 JUKI_EPERM);
	assert_string_equal(err, want);
	assert_int_equal(access(f->other, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_take, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_take_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_manifest_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_refused_for_another_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_refused_while_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_edge_cases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_folder_writable_by_others_refused, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
