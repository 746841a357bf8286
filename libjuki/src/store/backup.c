#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/hex.h"
#include "juki/store/backup.h"
#include "juki/store/purge.h"

#define SHA256_HEX      64
#define COPY_CHUNK      (64 * 1024)
#define STEP_RETRIES    500
#define STEP_PAUSE_NS   (10 * 1000 * 1000)
#define FILE_NAME_MAX   255
#define DEFAULT_NAME    "store.db"
#define TMP_SUFFIX      ".tmp"
#define RESTORE_SUFFIX  ".restore-tmp"
#define INTEGRITY_LINES 8

/*
 * SQLite's lock bytes in a database file (the unix VFS, os_unix.c; fixed
 * by the file format, since every version of SQLite must lock the same
 * bytes as every other): PENDING, RESERVED and the 510-byte SHARED range.
 * A write lock on all of them is what an EXCLUSIVE holder has.
 */
#define SQLITE_PENDING_BYTE 0x40000000
#define SQLITE_LOCK_SPAN    512

static char *
join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0) {
		return NULL;
	}
	return p;
}

static char *
suffixed(const char *path, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s%s", path, suffix) < 0) {
		return NULL;
	}
	return p;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

/* The directory part of path, for fsync after a rename in it. */
static char *
parent_of(const char *path)
{
	char *copy = strdup(path), *p = NULL;

	if (copy != NULL) {
		p = strdup(dirname(copy));
	}
	free(copy);
	return p;
}

/* mkdir -p, each created directory 0700. */
static int
make_dirs(const char *dir)
{
	char *p = strdup(dir);
	struct stat sb;
	int rc = 0;

	if (p == NULL) {
		return JUKI_ENOMEM;
	}
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0') {
			continue;
		}
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0') {
			break;
		}
	}
	if (rc == 0 && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
		rc = stat(dir, &sb) != 0 ? -errno : -ENOTDIR;
	}
	free(p);
	return rc;
}

/*
 * Read fd to its end, hashing; when out_fd >= 0 write what is read there
 * too.  *size and hex (SHA256_HEX + 1) describe what was read.
 */
static int
hash_fd(int fd, int out_fd, int64_t *size, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *buf = malloc(COPY_CHUNK);
	ssize_t n;
	int rc = 0;

	*size = 0;
	if (ctx == NULL || buf == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = JUKI_EIO;
		goto out;
	}
	for (;;) {
		n = read(fd, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = JUKI_EIO;
			goto out;
		}
		for (ssize_t done = 0; out_fd >= 0 && done < n;) {
			ssize_t w = write(out_fd, buf + done, (size_t)(n - done));

			if (w < 0 && errno == EINTR) {
				continue;
			}
			if (w < 0) {
				rc = -errno;
				goto out;
			}
			done += w;
		}
		*size += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != SHA256_HEX / 2) {
		rc = JUKI_EIO;
		goto out;
	}
	juki_hex_encode(md, mdlen, hex);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int
hash_file(const char *path, int64_t *size, char *hex)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc;

	if (fd < 0) {
		return -errno;
	}
	rc = hash_fd(fd, -1, size, hex);
	close(fd);
	return rc;
}

/* A new empty file, 0600 whatever the umask, replacing a leftover. */
static int
create_private(const char *path, int *fdp)
{
	int fd;

	if (unlink(path) != 0 && errno != ENOENT) {
		return -errno;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		return -errno;
	}
	if (fchmod(fd, 0600) != 0) {
		int rc = -errno;

		close(fd);
		unlink(path);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			return -errno;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

/* The file name the copy gets: the store's own, unless it would clash. */
static const char *
copy_name(const char *store_path)
{
	const char *slash = strrchr(store_path, '/');
	const char *name = slash ? slash + 1 : store_path;

	if (name[0] == '\0' || name[0] == '.' || strlen(name) > FILE_NAME_MAX - 16 ||
	    strcmp(name, JUKI_BACKUP_MANIFEST) == 0) {
		return DEFAULT_NAME;
	}
	return name;
}

/* One integer from a single-row pragma or query; -1 on failure. */
static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

static json_t *
schema_versions(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	json_t *obj = json_object();
	int rc;

	if (obj == NULL || sqlite3_prepare_v2(db,
					      "SELECT component, version FROM schema_version"
					      " ORDER BY component",
					      -1, &st, NULL) != SQLITE_OK) {
		json_decref(obj);
		sqlite3_finalize(st);
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *c = sqlite3_column_text(st, 0);

		if (c == NULL ||
		    json_object_set_new(obj, (const char *)c,
					json_integer(sqlite3_column_int64(st, 1))) != 0) {
			rc = SQLITE_ERROR;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static int
journal_mode_delete(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int ok = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = DELETE", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *m = sqlite3_column_text(st, 0);

		ok = m != NULL && strcmp((const char *)m, "delete") == 0;
	}
	sqlite3_finalize(st);
	return ok;
}

/*
 * Copy the store into the file at path through the backup API.  Pages
 * change under the copy only through this same connection (a daemon is
 * single-threaded), and SQLite carries such changes into the copy, so it
 * is consistent; another process writing would make SQLite start over.
 */
static int
copy_store(struct juki_store *store, const char *path, const struct juki_backup_opts *opts,
	   json_t **facts, char *err, size_t errlen)
{
	struct timespec pause = {0, STEP_PAUSE_NS};
	sqlite3_backup *b = NULL;
	sqlite3 *dst = NULL;
	json_t *schemas = NULL;
	int64_t page_size, page_count;
	int src, busy = 0, rc = JUKI_ESTORE;

	*facts = NULL;
	if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path,
			    dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", juki_store_db(store), "main");
	if (b == NULL) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(dst));
		goto out;
	}
	for (;;) {
		src = sqlite3_backup_step(b, JUKI_BACKUP_PAGES_PER_STEP);
		if (opts->tick != NULL) {
			opts->tick(opts->tick_arg);
		}
		if (src == SQLITE_DONE) {
			break;
		}
		if (src == SQLITE_BUSY || src == SQLITE_LOCKED) {
			if (++busy > STEP_RETRIES) {
				juki_seterr(err, errlen, "the store stayed locked");
				goto out;
			}
			nanosleep(&pause, NULL);
		} else if (src != SQLITE_OK) {
			juki_seterr(err, errlen, "copy: %s", sqlite3_errstr(src));
			goto out;
		}
	}
	src = sqlite3_backup_finish(b);
	b = NULL;
	if (src != SQLITE_OK) {
		juki_seterr(err, errlen, "copy: %s", sqlite3_errstr(src));
		goto out;
	}
	/* the pages came with the store's WAL flag: make the copy one file */
	if (!journal_mode_delete(dst)) {
		juki_seterr(err, errlen, "%s: cannot leave WAL mode: %s", path,
			    sqlite3_errmsg(dst));
		goto out;
	}
	page_size = query_int(dst, "PRAGMA page_size");
	page_count = query_int(dst, "PRAGMA page_count");
	schemas = schema_versions(dst);
	if (page_size < 512 || page_count < 1 || schemas == NULL) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(dst));
		goto out;
	}
	*facts =
	    json_pack("{s:I,s:I,s:s,s:O}", "page_size", (json_int_t)page_size, "page_count",
		      (json_int_t)page_count, "sqlite", sqlite3_libversion(), "schemas", schemas);
	rc = *facts != NULL ? 0 : JUKI_ENOMEM;
out:
	sqlite3_backup_finish(b);
	if (sqlite3_close(dst) != SQLITE_OK && rc == 0) {
		juki_seterr(err, errlen, "%s: close failed", path);
		json_decref(*facts);
		*facts = NULL;
		rc = JUKI_ESTORE;
	}
	json_decref(schemas);
	return rc;
}

static int
write_manifest(const char *dir, const json_t *manifest, char *err, size_t errlen)
{
	char *tmp = join(dir, "." JUKI_BACKUP_MANIFEST TMP_SUFFIX);
	char *final = join(dir, JUKI_BACKUP_MANIFEST);
	char *text = json_dumps(manifest, JSON_INDENT(2));
	int fd = -1, rc;

	if (tmp == NULL || final == NULL || text == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if ((rc = create_private(tmp, &fd)) != 0) {
		juki_seterr(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	if ((rc = write_all(fd, text, strlen(text))) != 0 || (rc = write_all(fd, "\n", 1)) != 0 ||
	    (fsync(fd) != 0 && (rc = -errno) != 0)) {
		juki_seterr(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, final) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", final, strerror(errno));
		goto out;
	}
	if ((rc = fsync_dir(dir)) != 0) {
		juki_seterr(err, errlen, "%s: %s", dir, strerror(-rc));
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (rc != 0 && tmp != NULL) {
		unlink(tmp);
	}
	free(text);
	free(tmp);
	free(final);
	return rc;
}

int
juki_backup_take(struct juki_store *store, const char *dir, const struct juki_backup_opts *opts,
		 json_t **manifest, char *err, size_t errlen)
{
	char *tmp = NULL, *final = NULL, *mpath = NULL, *tmpname = NULL;
	char hex[SHA256_HEX + 1], when[32];
	json_t *man = NULL, *facts = NULL;
	const char *name;
	struct stat sb;
	int64_t size;
	int fd = -1, renamed = 0, rc;

	juki_seterr(err, errlen, "%s", "");
	if (store == NULL || dir == NULL || opts == NULL || opts->node == NULL ||
	    opts->node[0] == '\0' || manifest == NULL) {
		juki_seterr(err, errlen, "missing argument");
		return JUKI_EINVAL;
	}
	*manifest = NULL;
	if (dir[0] != '/') {
		juki_seterr(err, errlen, "%s: the backup directory must be an absolute path", dir);
		return JUKI_EINVAL;
	}
	name = copy_name(juki_store_path(store));
	mpath = join(dir, JUKI_BACKUP_MANIFEST);
	final = join(dir, name);
	if (asprintf(&tmpname, ".%s%s", name, TMP_SUFFIX) < 0) {
		tmpname = NULL;
	}
	tmp = tmpname ? join(dir, tmpname) : NULL;
	if (mpath == NULL || final == NULL || tmp == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	/* A folder someone else can write to: they could swap the copy or its manifest. */
	if ((rc = juki_dir_check_private(dir, err, errlen)) != 0) {
		goto out;
	}
	if ((rc = make_dirs(dir)) != 0) {
		juki_seterr(err, errlen, "%s: %s", dir, strerror(-rc));
		goto out;
	}
	if (lstat(mpath, &sb) == 0) {
		juki_seterr(err, errlen, "%s: holds a backup already", dir);
		rc = JUKI_EEXIST;
		goto out;
	}
	/* a failed take leaves nothing there: whatever is, is someone's (the store itself?) */
	if (lstat(final, &sb) == 0) {
		juki_seterr(err, errlen, "%s: exists already", final);
		rc = JUKI_EEXIST;
		goto out;
	}
	/* created here so that SQLite opens a file that is private from the start */
	if ((rc = create_private(tmp, &fd)) != 0) {
		juki_seterr(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	close(fd);
	fd = -1;
	if ((rc = copy_store(store, tmp, opts, &facts, err, errlen)) != 0) {
		goto out;
	}
	if ((rc = fsync_path(tmp)) != 0 || (rc = hash_file(tmp, &size, hex)) != 0) {
		juki_seterr(err, errlen, "%s: %s", tmp, juki_strerror(rc));
		goto out;
	}
	if (rename(tmp, final) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", final, strerror(errno));
		goto out;
	}
	renamed = 1;
	juki_clock_format(opts->now_ms, when, sizeof(when));
	man = json_pack("{s:i,s:s,s:s,s:s,s:s,s:I,s:s}", "manifest_version",
			JUKI_BACKUP_MANIFEST_VERSION, "node", opts->node, "time", when, "source",
			juki_store_path(store), "file", name, "size", (json_int_t)size, "sha256",
			hex);
	if (man == NULL || json_object_update(man, facts) != 0) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	/* the manifest goes last: with it, the directory holds a complete backup */
	if ((rc = write_manifest(dir, man, err, errlen)) != 0) {
		goto out;
	}
	*manifest = man;
	man = NULL;
out:
	if (fd >= 0) {
		close(fd);
	}
	if (rc != 0 && tmp != NULL) {
		unlink(tmp);
		if (renamed) {
			unlink(final);
		}
	}
	json_decref(man);
	json_decref(facts);
	free(tmp);
	free(tmpname);
	free(final);
	free(mpath);
	return rc;
}

static int
plain_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= FILE_NAME_MAX && s[0] != '.' && strchr(s, '/') == NULL &&
	       strcmp(s, JUKI_BACKUP_MANIFEST) != 0;
}

static int
is_hex64(const char *s)
{
	if (s == NULL || strlen(s) != SHA256_HEX) {
		return 0;
	}
	for (; *s != '\0'; s++) {
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

static int
nonneg_int(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int
manifest_valid(const json_t *m, const char **why)
{
	const json_t *schemas = json_object_get(m, "schemas"), *v;
	const char *key;
	int64_t t;

	*why = NULL;
	if (!json_is_object(m)) {
		*why = "not a JSON object";
	} else if (!json_is_integer(json_object_get(m, "manifest_version")) ||
		   json_integer_value(json_object_get(m, "manifest_version")) !=
		       JUKI_BACKUP_MANIFEST_VERSION) {
		*why = "manifest_version: not 1";
	} else if (!json_is_string(json_object_get(m, "node"))) {
		*why = "node: missing";
	} else if (juki_clock_parse(json_string_value(json_object_get(m, "time")), &t) != 0) {
		*why = "time: not an RFC 3339 UTC time";
	} else if (!plain_name(json_string_value(json_object_get(m, "file")))) {
		*why = "file: not a plain file name";
	} else if (!nonneg_int(json_object_get(m, "size"))) {
		*why = "size: not a byte count";
	} else if (!is_hex64(json_string_value(json_object_get(m, "sha256")))) {
		*why = "sha256: not 64 lower-case hex digits";
	} else if (!nonneg_int(json_object_get(m, "page_size")) ||
		   !nonneg_int(json_object_get(m, "page_count"))) {
		*why = "page_size, page_count: not counts";
	} else if (!json_is_object(schemas)) {
		*why = "schemas: not an object";
	}
	if (*why != NULL) {
		return 0;
	}
	json_object_foreach((json_t *)schemas, key, v)
	{
		if (!nonneg_int(v)) {
			*why = "schemas: versions must be counts";
			return 0;
		}
	}
	return 1;
}

static int
read_manifest(const char *dir, json_t **out, char *err, size_t errlen)
{
	char *path = join(dir, JUKI_BACKUP_MANIFEST), *buf = NULL;
	json_error_t jerr;
	struct stat sb;
	const char *why;
	ssize_t n;
	int fd = -1, rc = 0;

	*out = NULL;
	if (path == NULL) {
		return JUKI_ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > JUKI_BACKUP_MANIFEST_MAX) {
		juki_seterr(err, errlen, "%s: not a manifest (a regular file of at most %d bytes)",
			    path, JUKI_BACKUP_MANIFEST_MAX);
		rc = JUKI_EFORMAT;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	if (n != sb.st_size) {
		rc = n < 0 ? -errno : JUKI_EIO;
		juki_seterr(err, errlen, "%s: short read", path);
		goto out;
	}
	*out = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL) {
		juki_seterr(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		rc = JUKI_EFORMAT;
		goto out;
	}
	if (!manifest_valid(*out, &why)) {
		juki_seterr(err, errlen, "%s: %s", path, why);
		json_decref(*out);
		*out = NULL;
		rc = JUKI_EFORMAT;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	free(path);
	return rc;
}

static int
check_database(const char *path, const json_t *man, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	json_t *schemas = NULL;
	const unsigned char *line;
	int lines = 0, rc = JUKI_EIO;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		juki_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	while (sqlite3_step(st) == SQLITE_ROW && lines < INTEGRITY_LINES) {
		line = sqlite3_column_text(st, 0);
		if (lines++ == 0 && (line == NULL || strcmp((const char *)line, "ok") != 0)) {
			juki_seterr(err, errlen, "%s: integrity check: %s", path,
				    line ? (const char *)line : "no answer");
			goto out;
		}
	}
	if (lines != 1) {
		juki_seterr(err, errlen, "%s: integrity check: %s", path,
			    lines == 0 ? sqlite3_errmsg(db) : "more than ok");
		goto out;
	}
	if (query_int(db, "PRAGMA page_count") !=
		json_integer_value(json_object_get(man, "page_count")) ||
	    query_int(db, "PRAGMA page_size") !=
		json_integer_value(json_object_get(man, "page_size"))) {
		juki_seterr(err, errlen, "%s: page size or count differ from the manifest", path);
		goto out;
	}
	schemas = schema_versions(db);
	if (schemas == NULL || !json_equal(schemas, json_object_get(man, "schemas"))) {
		juki_seterr(err, errlen, "%s: schema versions differ from the manifest", path);
		goto out;
	}
	rc = 0;
out:
	json_decref(schemas);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int
juki_backup_verify(const char *dir, json_t **manifest, char *err, size_t errlen)
{
	char hex[SHA256_HEX + 1], *path = NULL;
	json_t *man = NULL;
	struct stat sb;
	int64_t size;
	int rc;

	juki_seterr(err, errlen, "%s", "");
	if (dir == NULL || dir[0] == '\0') {
		juki_seterr(err, errlen, "no backup directory");
		return JUKI_EINVAL;
	}
	if (manifest != NULL) {
		*manifest = NULL;
	}
	if ((rc = read_manifest(dir, &man, err, errlen)) != 0) {
		goto out;
	}
	path = join(dir, json_string_value(json_object_get(man, "file")));
	if (path == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	if (lstat(path, &sb) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		juki_seterr(err, errlen, "%s: not a regular file", path);
		rc = JUKI_EIO;
		goto out;
	}
	if ((rc = hash_file(path, &size, hex)) != 0) {
		juki_seterr(err, errlen, "%s: %s", path, juki_strerror(rc));
		goto out;
	}
	if (size != json_integer_value(json_object_get(man, "size"))) {
		juki_seterr(err, errlen, "%s: %lld bytes, the manifest says %lld", path,
			    (long long)size,
			    (long long)json_integer_value(json_object_get(man, "size")));
		rc = JUKI_EIO;
		goto out;
	}
	if (strcmp(hex, json_string_value(json_object_get(man, "sha256"))) != 0) {
		juki_seterr(err, errlen, "%s: SHA-256 %s, the manifest says %s", path, hex,
			    json_string_value(json_object_get(man, "sha256")));
		rc = JUKI_EIO;
		goto out;
	}
	if ((rc = check_database(path, man, err, errlen)) != 0) {
		goto out;
	}
	if (manifest != NULL) {
		*manifest = man;
		man = NULL;
	}
out:
	json_decref(man);
	free(path);
	return rc;
}

/*
 * Is the store in use?  Every connection to a WAL database holds a shared
 * lock on the file for as long as it is open, idle or not; asking for the
 * exclusive lock (locking_mode=EXCLUSIVE, then a read) with no busy timeout
 * fails at once if any other connection exists.  With it held, the WAL is
 * folded into the file, so that the file kept as .before-restore is
 * complete; closing then deletes the WAL.
 */
static int
claim_store(const char *path, const char *node, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 0, src;

	src = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src == SQLITE_OK) {
		sqlite3_busy_timeout(db, 0);
		src = sqlite3_exec(db,
				   "PRAGMA locking_mode = EXCLUSIVE;"
				   "SELECT count(*) FROM sqlite_master;",
				   NULL, NULL, NULL);
	}
	if (src == SQLITE_OK) {
		src = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	/* Another node's store is not replaced (a store of juki schema 1 names no node). */
	if (src == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT urn FROM node_identity", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), node) != 0) {
		juki_seterr(
		    err, errlen,
		    "%s belongs to %s; the backup is of %s: restore a backup of %s, or move "
		    "the store away first",
		    path, (const char *)sqlite3_column_text(st, 0), node,
		    (const char *)sqlite3_column_text(st, 0));
		rc = JUKI_EEXIST;
	}
	sqlite3_finalize(st);
	if (rc != 0) {
		sqlite3_close(db);
		return rc;
	}
	switch (src & 0xff) {
	case SQLITE_OK:
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		juki_seterr(err, errlen, "%s: the store is in use (is the daemon running?)", path);
		rc = -EBUSY;
		break;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		/* a broken store is what a restore is for: the file lock below still guards */
		break;
	default:
		juki_seterr(err, errlen, "%s: %s", path,
			    db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
		rc = JUKI_ESTORE;
		break;
	}
	if (sqlite3_close(db) != SQLITE_OK && rc == 0) {
		juki_seterr(err, errlen, "%s: close failed", path);
		rc = JUKI_ESTORE;
	}
	return rc;
}

/* Take, on fd, the locks an SQLite EXCLUSIVE holder has; -EBUSY if anyone holds one. */
static int
lock_store(int fd)
{
	struct flock fl = {
	    .l_type = F_WRLCK,
	    .l_whence = SEEK_SET,
	    .l_start = SQLITE_PENDING_BYTE,
	    .l_len = SQLITE_LOCK_SPAN,
	};

	if (fcntl(fd, F_SETLK, &fl) != 0) {
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	}
	return 0;
}

static int
remove_side_files(const char *store_path, char *err, size_t errlen)
{
	static const char *const sides[] = {"-wal", "-shm", "-journal"};
	char *p;

	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		if ((p = suffixed(store_path, sides[i])) == NULL) {
			return JUKI_ENOMEM;
		}
		if (unlink(p) != 0 && errno != ENOENT) {
			int rc = -errno;

			juki_seterr(err, errlen, "%s: %s", p, strerror(errno));
			free(p);
			return rc;
		}
		free(p);
	}
	return 0;
}

/* The owner the restored file gets: the replaced file's, else the directory's. */
static int
give_owner(int fd, const struct stat *old, const char *parent)
{
	struct stat sb;

	if (old != NULL) {
		sb = *old;
	} else if (geteuid() != 0 || stat(parent, &sb) != 0) {
		return 0;
	}
	if (sb.st_uid == geteuid() && sb.st_gid == getegid()) {
		return 0;
	}
	return fchown(fd, sb.st_uid, sb.st_gid) == 0 ? 0 : -errno;
}

static int
place_copy(const char *src, const char *tmp, const json_t *man, const struct stat *old,
	   const char *parent, char *err, size_t errlen)
{
	char hex[SHA256_HEX + 1];
	int64_t size;
	int in = -1, out = -1, rc;

	if ((rc = create_private(tmp, &out)) != 0) {
		juki_seterr(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	if ((rc = give_owner(out, old, parent)) != 0) {
		juki_seterr(err, errlen, "%s: cannot give it the store's owner: %s", tmp,
			    strerror(-rc));
		goto out;
	}
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", src, strerror(errno));
		goto out;
	}
	if ((rc = hash_fd(in, out, &size, hex)) != 0) {
		juki_seterr(err, errlen, "copy %s to %s: %s", src, tmp, juki_strerror(rc));
		goto out;
	}
	/* the backup could have changed since it was verified: what was copied counts */
	if (size != json_integer_value(json_object_get(man, "size")) ||
	    strcmp(hex, json_string_value(json_object_get(man, "sha256"))) != 0) {
		juki_seterr(err, errlen, "%s: changed while it was copied", src);
		rc = JUKI_EIO;
		goto out;
	}
	if (fsync(out) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
	}
out:
	if (in >= 0) {
		close(in);
	}
	if (out >= 0) {
		close(out);
	}
	return rc;
}

/* Keep the replaced file (a second name for it) as <store>.before-restore. */
static int
keep_previous(const char *store_path, char *err, size_t errlen)
{
	char *before = suffixed(store_path, JUKI_BACKUP_BEFORE_RESTORE);
	int rc = 0;

	if (before == NULL) {
		return JUKI_ENOMEM;
	}
	if ((unlink(before) != 0 && errno != ENOENT) || link(store_path, before) != 0 ||
	    chmod(before, 0600) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", before, strerror(errno));
	}
	free(before);
	return rc;
}

int
juki_backup_restore(const char *dir, const char *store_path, json_t **manifest, char *err,
		    size_t errlen)
{
	char *src = NULL, *tmp = NULL, *parent = NULL;
	json_t *man = NULL;
	struct stat old;
	int exists, lockfd = -1, placed = 0, rc;

	juki_seterr(err, errlen, "%s", "");
	if (dir == NULL || store_path == NULL || store_path[0] == '\0') {
		juki_seterr(err, errlen, "missing argument");
		return JUKI_EINVAL;
	}
	if (manifest != NULL) {
		*manifest = NULL;
	}
	/* A backup or a store folder someone else can write to: the copy or the store is theirs. */
	if ((rc = juki_dir_check_private(dir, err, errlen)) != 0 ||
	    (rc = juki_dir_check_parent(store_path, err, errlen)) != 0) {
		goto out;
	}
	if ((rc = juki_backup_verify(dir, &man, err, errlen)) != 0) {
		goto out;
	}
	src = join(dir, json_string_value(json_object_get(man, "file")));
	tmp = suffixed(store_path, RESTORE_SUFFIX);
	parent = parent_of(store_path);
	if (src == NULL || tmp == NULL || parent == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	exists = lstat(store_path, &old) == 0;
	if (!exists && errno != ENOENT) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", store_path, strerror(errno));
		goto out;
	}
	if (exists && !S_ISREG(old.st_mode)) {
		juki_seterr(err, errlen, "%s: not a regular file", store_path);
		rc = JUKI_EINVAL;
		goto out;
	}
	if (exists) {
		if ((rc = claim_store(store_path, json_string_value(json_object_get(man, "node")),
				      err, errlen)) != 0) {
			goto out;
		}
		/*
		 * SQLite is done with the old file in this process (a POSIX lock
		 * would go with the first close of any descriptor of it); from
		 * here the lock is ours, and a daemon starting now waits on it.
		 */
		lockfd = open(store_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (lockfd < 0 || (rc = lock_store(lockfd)) != 0) {
			rc = lockfd < 0 ? -errno : rc;
			juki_seterr(err, errlen, "%s: %s", store_path,
				    rc == -EBUSY ? "the store is in use (is the daemon running?)"
						 : strerror(-rc));
			goto out;
		}
	}
	if ((rc = remove_side_files(store_path, err, errlen)) != 0) {
		goto out;
	}
	placed = 1;
	if ((rc = place_copy(src, tmp, man, exists ? &old : NULL, parent, err, errlen)) != 0) {
		goto out;
	}
	if (exists && (rc = keep_previous(store_path, err, errlen)) != 0) {
		goto out;
	}
	if (rename(tmp, store_path) != 0) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", store_path, strerror(errno));
		goto out;
	}
	placed = 0;
	if ((rc = fsync_dir(parent)) != 0) {
		juki_seterr(err, errlen, "%s: %s", parent, strerror(-rc));
		goto out;
	}
	if (manifest != NULL) {
		*manifest = man;
		man = NULL;
	}
out:
	if (placed) {
		unlink(tmp);
	}
	if (lockfd >= 0) {
		close(lockfd);
	}
	json_decref(man);
	free(src);
	free(tmp);
	free(parent);
	return rc;
}

/* One backup of the node found by juki_backup_prune(). */
struct found {
	char name[256];
	int64_t time_ms;
};

/* Erase every regular file of backup dir name in parent, the manifest last, then the dir. */
static int
erase_backup(int parent, const char *name)
{
	DIR *d;
	struct dirent *e;
	int fd, rc = 0, erc;

	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if ((d = fdopendir(fd)) == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat sb;

		if (strcmp(e->d_name, JUKI_BACKUP_MANIFEST) == 0 ||
		    fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) {
			continue;
		}
		if ((erc = juki_purge_erase_at(fd, e->d_name)) != 0) {
			rc = erc;
		}
	}
	if (rc == 0) {
		rc = juki_purge_erase_at(fd, JUKI_BACKUP_MANIFEST);
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = -errno;
	}
	closedir(d);
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0) {
		rc = -errno;
	}
	return rc;
}

int
juki_backup_prune(const char *dir, const char *node, int64_t cutoff_ms, int dry_run,
		  struct juki_backup_prune_counts *n)
{
	struct found *list = NULL;
	size_t nlist = 0, newest = 0;
	DIR *d;
	struct dirent *e;
	int dfd, rc = 0, erc;

	if (dir == NULL || node == NULL || n == NULL) {
		return JUKI_EINVAL;
	}
	memset(n, 0, sizeof(*n));
	if ((d = opendir(dir)) == NULL) {
		return errno == ENOENT ? 0 : -errno;
	}
	dfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		struct stat sb;
		json_t *man = NULL;
		char *path, why[256];
		int64_t t;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(list->name) ||
		    fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISDIR(sb.st_mode) || (path = join(dir, e->d_name)) == NULL) {
			continue;
		}
		/* Only a complete backup of this node: anything else there is not ours. */
		erc = read_manifest(path, &man, why, sizeof(why));
		free(path);
		if (erc == 0 &&
		    strcmp(json_string_value(json_object_get(man, "node")), node) == 0 &&
		    juki_clock_parse(json_string_value(json_object_get(man, "time")), &t) == 0) {
			struct found *grown = realloc(list, (nlist + 1) * sizeof(*list));

			if (grown == NULL) {
				json_decref(man);
				rc = JUKI_ENOMEM;
				break;
			}
			list = grown;
			snprintf(list[nlist].name, sizeof(list[nlist].name), "%s", e->d_name);
			list[nlist].time_ms = t;
			if (nlist == 0 || t > list[newest].time_ms) {
				newest = nlist;
			}
			nlist++;
		}
		json_decref(man);
	}
	n->backups = (int64_t)nlist;
	/* The newest is kept whatever its age: a node is never left without a backup. */
	for (size_t i = 0; rc == 0 && i < nlist; i++) {
		if (i == newest || cutoff_ms == INT64_MIN || list[i].time_ms >= cutoff_ms) {
			continue;
		}
		n->due++;
		if (dry_run) {
			continue;
		}
		if ((erc = erase_backup(dfd, list[i].name)) == 0) {
			n->removed++;
		} else {
			n->failed++;
			rc = erc;
		}
	}
	if (!dry_run && n->removed > 0 && fsync(dfd) != 0 && rc == 0) {
		rc = -errno;
	}
	closedir(d);
	free(list);
	return rc;
}
