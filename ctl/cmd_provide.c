/*
 * juki-ctl provide: a receiving body's side of provision (第6-8(1)イ;
 * docs/body.md).  query and batch go to the providing server over the
 * body's link (link.c) with a staff member's card; approve is the
 * 責任者's signature over a bulk batch (records/approval.c); purge erases
 * answer files past their erase-by date.
 *
 * An answer file, <answers>/<batch id>.jsonl, mode 0600: a header line
 *   {"batch":..., "body":..., "server":..., "staff":..., "agreement":...,
 *    "jimu":..., "purpose":..., "count":N, "received":"<RFC 3339>",
 *    "erase_by":"YYYY-MM-DD"}
 * then one answer per query, in the order of the queries file.  It is
 * written under a temporary name and renamed only when every part was
 * answered: a refused part leaves no answers file (all or nothing).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/base/lines.h"
#include "juki/records/approval.h"
#include "juki/store/purge.h"
#include "juki/wire/msg.h"
#include "link.h"
#include "provide.h"

#define QUERY_LINE_MAX    4096               /* bytes of one line of a queries file */
#define APPROVAL_FILE_MAX (1024 * 1024)      /* bytes of an approval file */
#define APPROVE_FILE_MAX  (INT64_C(1) << 32) /* bytes of the queries file approve reads */
#define HEADER_MAX        4096               /* bytes of an answer file's header line */
#define TMP_SUFFIX        ".tmp"

static const char *const query_extra[] = {"agreement", "jimu", "purpose", "items", NULL};

/* What the provide commands share (provide.h) */

int
ctl_provide_exit(const char *code)
{
	if (strcmp(code, "unreachable") == 0) {
		return CTL_UNREACHABLE;
	}
	if (strcmp(code, "usage") == 0) {
		return CTL_USAGE;
	}
	if (strcmp(code, "wrong-pin") == 0) {
		return CTL_WRONG_PIN;
	}
	return CTL_FAILED;
}

int
ctl_provide_fail(const struct ctl *ctl, const char *cmd, const struct juki_ctl_error *err,
		 const char *more)
{
	if (ctl->json) {
		json_t *e = json_pack("{s:s,s:s}", "error", err->code, "message", err->message);

		json_dumpf(e, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(e);
	}
	fprintf(stderr, "juki-ctl: %s: %s: %s%s\n", cmd, err->code, err->message,
		more != NULL ? more : "");
	return ctl_provide_exit(err->code);
}

int
ctl_provide_load_body(const struct ctl_req *req, struct ctl_body *b)
{
	char err[1024];

	if (ctl_body_load(ctl_val(req, "body-conf"), b, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: body file: %s\n", err);
		return CTL_USAGE;
	}
	return CTL_OK;
}

int
ctl_provide_pin_fd(const struct ctl *ctl, const struct ctl_req *req)
{
	return (int)ctl_num(req, "card-pin-fd", ctl->term.card_pin_fd);
}

/* The queries file */

/*
 * Every query of path ("-": stdin), validated and in canonical form; blank
 * lines and lines starting with # are skipped.  Prints "FILE:LINE: why"
 * and returns NULL on the first bad line, an oversized line or file.
 */
static json_t *
read_queries(const char *path, int64_t file_max)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	struct juki_lines *lr = NULL;
	struct stat st;
	json_t *out = NULL;
	size_t lineno = 0;
	int64_t total = 0;
	char *line;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > file_max) {
		fprintf(stderr, "juki-ctl: %s: %lld bytes, over the limit of %lld (file_max)\n",
			path, (long long)st.st_size, (long long)file_max);
		goto out;
	}
	if ((lr = juki_lines_new(fd, QUERY_LINE_MAX)) == NULL || (out = json_array()) == NULL) {
		fprintf(stderr, "juki-ctl: out of memory\n");
		goto out;
	}
	while ((n = juki_lines_next(lr, &line)) >= 0) {
		struct juki_provide_query q;
		struct juki_field_error fe;
		json_error_t jerr;
		json_t *doc;
		char *p = line;

		lineno++;
		total += (int64_t)juki_lines_taken(lr);
		if (total > file_max) {
			fprintf(stderr,
				"juki-ctl: %s:%zu: the file is over the limit of %lld bytes "
				"(file_max)\n",
				path, lineno, (long long)file_max);
			goto bad;
		}
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p == '\r' || *p == '\0' || *p == '#') {
			continue;
		}
		doc = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
		if (doc == NULL) {
			fprintf(stderr, "juki-ctl: %s:%zu: not JSON: %s\n", path, lineno,
				jerr.text);
			goto bad;
		}
		if (juki_provide_query_from_json(doc, NULL, &q, &fe) != 0) {
			fprintf(stderr, "juki-ctl: %s:%zu: %s: %s\n", path, lineno, fe.field,
				fe.detail);
			json_decref(doc);
			goto bad;
		}
		json_decref(doc);
		json_array_append_new(out, juki_provide_query_to_json(&q));
	}
	if (n == JUKI_ETOOBIG) {
		fprintf(stderr, "juki-ctl: %s:%zu: line over %d bytes\n", path, lineno + 1,
			QUERY_LINE_MAX);
		goto bad;
	}
	if (n != -1) {
		fprintf(stderr, "juki-ctl: %s: %s\n", path, strerror(errno));
		goto bad;
	}
	if (json_array_size(out) == 0) {
		fprintf(stderr, "juki-ctl: %s: no queries\n", path);
		goto bad;
	}
	goto out;
bad:
	json_decref(out);
	out = NULL;
out:
	juki_lines_free(lr);
	if (fd != STDIN_FILENO) {
		close(fd);
	}
	return out;
}

/* The part of queries that starts at from, of at most size. */
static json_t *
part_of(const json_t *queries, size_t from, size_t size)
{
	json_t *part = json_array();

	for (size_t i = from; i < json_array_size(queries) && i < from + size; i++) {
		json_array_append(part, json_array_get(queries, i));
	}
	return part;
}

/* provide query */

static void
query_text(const json_t *result)
{
	const json_t *rec = json_object_get(result, "record");
	const char *key;
	const json_t *v;

	if (!json_is_true(json_object_get(result, "found"))) {
		printf("found: no\n");
		return;
	}
	printf("found: yes\n");
	json_object_foreach((json_t *)rec, key, v)
	{
		if (json_is_string(v)) {
			printf("%s: %s\n", key, json_string_value(v));
		} else {
			char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			printf("%s: %s\n", key, text != NULL ? text : "?");
			free(text);
		}
	}
}

static int
cmd_query(struct ctl *ctl, const struct ctl_req *req)
{
	struct juki_provide_query q;
	struct juki_field_error fe;
	struct juki_ctl_error err;
	struct ctl_link *link = NULL;
	struct ctl_body b;
	json_t *result = NULL;
	int rc;

	if (juki_provide_query_from_json(req->args, query_extra, &q, &fe) != 0) {
		fprintf(stderr,
			"juki-ctl: provide query: %s: %s (--code C, or --name, --birth, --sex, "
			"--address-code and --address together)\n",
			fe.field, fe.detail);
		return ctl_usage(req->cmd);
	}
	if ((rc = ctl_provide_load_body(req, &b)) != CTL_OK) {
		return rc;
	}
	rc = ctl_link_open(&b, ctl_provide_pin_fd(ctl, req), juki_clock_mono_ms() + b.deadline,
			   &link, &err);
	if (rc == 0) {
		rc = ctl_link_send(link, "provide.query", json_deep_copy(req->args), b.part_timeout,
				   &result, &err);
	}
	if (rc != 0) {
		rc = ctl_provide_fail(ctl, "provide query", &err, NULL);
	} else if (ctl->json) {
		/* Which server answered: the other national centre when the first was cut off. */
		json_object_set_new(result, "server", json_string(ctl_link_server(link)));
		ctl_print(ctl, result);
		rc = CTL_OK;
	} else {
		query_text(result);
		rc = CTL_OK;
	}
	json_decref(result);
	ctl_link_close(link);
	ctl_body_free(&b);
	return rc;
}

/* provide approve */

/*
 * An approval file: what approve writes and batch --approval reads.
 *   {"v":1, "body":..., "batch":"<id>", "count":N, "part_size":S, "parts":P,
 *    "approval":{"responsible", "cert", "parts", "sig"}}
 */
static int
cmd_approve(struct ctl *ctl, const struct ctl_req *req)
{
	const char *cert = ctl_val(req, "cert"), *card = ctl_val(req, "card"),
		   *keyfile = ctl_val(req, "key");
	size_t size = (size_t)ctl_num(req, "part-size", JUKI_PROVIDE_PART_MAX);
	struct juki_ctl_error err;
	struct juki_tls *tls = NULL;
	struct juki_ident body;
	struct juki_clock clock = {0};
	char batch[JUKI_UUID_LEN + 1], why[512];
	json_t *queries, *hashes = NULL, *approval = NULL, *doc = NULL;
	size_t nparts;
	int rc = CTL_FAILED;

	if ((card == NULL) == (keyfile == NULL)) {
		fprintf(stderr,
			"juki-ctl: provide approve: the card: --card URI or --key FILE, one "
			"of the two\n");
		return ctl_usage(req->cmd);
	}
	if (ctl_val(req, "batch-id") != NULL) {
		if (!juki_uuid_valid(ctl_val(req, "batch-id"))) {
			fprintf(stderr, "juki-ctl: provide approve: --batch-id: not a UUIDv7 in "
					"lower case\n");
			return ctl_usage(req->cmd);
		}
		snprintf(batch, sizeof(batch), "%s", ctl_val(req, "batch-id"));
	} else if (juki_uuid7(juki_clock_now_ms(&clock), batch) != 0) {
		fprintf(stderr, "juki-ctl: provide approve: no randomness for a batch id\n");
		return CTL_FAILED;
	}
	queries = read_queries(ctl_val(req, "QUERIES.jsonl"), APPROVE_FILE_MAX);
	if (queries == NULL) {
		return CTL_USAGE;
	}
	nparts = (json_array_size(queries) + size - 1) / size;
	if (nparts > JUKI_PROVIDE_PARTS_MAX) {
		fprintf(stderr, "juki-ctl: provide approve: %zu parts, over %d\n", nparts,
			JUKI_PROVIDE_PARTS_MAX);
		rc = CTL_USAGE;
		goto out;
	}
	hashes = json_array();
	for (size_t p = 0; p < nparts; p++) {
		json_t *part = part_of(queries, p * size, size);
		char hex[JUKI_PART_HASH_LEN + 1];
		struct juki_field_error fe;
		size_t bad;

		if (juki_approval_part_hash(part, hex, &bad, &fe) != 0) {
			json_decref(part);
			fprintf(stderr, "juki-ctl: provide approve: part %zu cannot be hashed\n",
				p);
			goto out;
		}
		json_decref(part);
		json_array_append_new(hashes, json_string(hex));
	}
	if (ctl_card_open(cert, card, keyfile, ctl_val(req, "ca"), ctl_val(req, "crl"),
			  ctl_provide_pin_fd(ctl, req), &tls, &err) != 0) {
		rc = ctl_provide_fail(ctl, "provide approve", &err, NULL);
		goto out;
	}
	if (juki_ident_node(juki_tls_self(tls)->node_kind, juki_tls_self(tls)->id, &body) != 0) {
		fprintf(stderr, "juki-ctl: provide approve: %s names no body\n",
			juki_tls_self(tls)->urn);
		goto out;
	}
	if (juki_approval_sign(tls, cert, body.urn, batch, (int64_t)json_array_size(queries),
			       hashes, &approval, why, sizeof(why)) != 0) {
		fprintf(stderr, "juki-ctl: provide approve: %s\n", why);
		goto out;
	}
	fprintf(stderr,
		"juki-ctl: provide approve: batch %s of %zu queries in %zu parts of %zu, approved "
		"by %s for %s\n",
		batch, json_array_size(queries), nparts, size, juki_tls_self(tls)->urn, body.urn);
	/*
	 * The approval is a document `provide batch --approval` reads, not a report to
	 * the operator: JSON whatever --json says, so `> approval.json` makes the file.
	 */
	doc = json_pack("{s:i,s:s,s:s,s:I,s:I,s:I,s:O}", "v", 1, "body", body.urn, "batch", batch,
			"count", (json_int_t)json_array_size(queries), "part_size",
			(json_int_t)size, "parts", (json_int_t)nparts, "approval", approval);
	if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "juki-ctl: provide approve: the approval could not be written "
				"to standard output\n");
		goto out;
	}
	rc = CTL_OK;
out:
	json_decref(doc);
	json_decref(approval);
	json_decref(hashes);
	json_decref(queries);
	juki_tls_free(tls);
	return rc;
}

/* provide batch */

static json_t *
load_approval(const char *path, const struct ctl_body *b)
{
	json_error_t jerr;
	struct stat st;
	json_t *doc;
	const json_t *size;

	if (stat(path, &st) == 0 && st.st_size > APPROVAL_FILE_MAX) {
		fprintf(stderr, "juki-ctl: %s: over %d bytes: not an approval file\n", path,
			APPROVAL_FILE_MAX);
		return NULL;
	}
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		fprintf(stderr, "juki-ctl: %s:%d: %s\n", path, jerr.line, jerr.text);
		return NULL;
	}
	size = json_object_get(doc, "part_size");
	if (!json_is_string(json_object_get(doc, "batch")) ||
	    !juki_uuid_valid(json_string_value(json_object_get(doc, "batch"))) ||
	    !json_is_object(json_object_get(doc, "approval")) || !json_is_integer(size) ||
	    json_integer_value(size) < 1 || json_integer_value(size) > JUKI_PROVIDE_PART_MAX ||
	    !json_is_string(json_object_get(doc, "body"))) {
		fprintf(stderr,
			"juki-ctl: %s: not an approval file of juki-ctl provide approve (body, "
			"batch, part_size, approval)\n",
			path);
		json_decref(doc);
		return NULL;
	}
	if (strcmp(json_string_value(json_object_get(doc, "body")), b->body) != 0) {
		fprintf(stderr, "juki-ctl: %s: the approval is for %s, not this body (%s)\n", path,
			json_string_value(json_object_get(doc, "body")), b->body);
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* The answer directory, made private when missing. */
static int
answer_dir(const struct ctl_body *b)
{
	char err[512];

	if (mkdir(b->answers, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "juki-ctl: answers %s: %s\n", b->answers, strerror(errno));
		return CTL_FAILED;
	}
	if (juki_dir_check_private(b->answers, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: answers: %s\n", err);
		return CTL_FAILED;
	}
	return CTL_OK;
}

static int
write_all(int fd, const char *text, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Lines of JSON gathered to be written at once (a part's answers: one write, not 1000). */
struct lines {
	char *buf;
	size_t len, cap;
};

static int
lines_add(struct lines *l, const json_t *doc)
{
	for (;;) {
		size_t n = json_dumpb(doc, l->buf + l->len, l->cap - l->len, JSON_COMPACT);

		if (n == 0) {
			return JUKI_ENOMEM;
		}
		if (l->len + n + 1 <= l->cap) {
			l->len += n;
			l->buf[l->len++] = '\n';
			return 0;
		}
		size_t cap = l->cap ? l->cap : 65536;
		char *bigger;

		while (cap < l->len + n + 1) {
			cap *= 2;
		}
		if ((bigger = realloc(l->buf, cap)) == NULL) {
			return JUKI_ENOMEM;
		}
		l->buf = bigger;
		l->cap = cap;
	}
}

static int
write_line(int fd, const json_t *doc)
{
	struct lines l = {0};
	int rc = lines_add(&l, doc);

	if (rc == 0) {
		rc = write_all(fd, l.buf, l.len);
	}
	free(l.buf);
	return rc;
}

/* The erase-by date: today + keep, or the server's, whichever is earlier. */
static void
erase_by(const struct ctl_body *b, int64_t now_ms, const json_t *result, char out[11])
{
	const char *server = json_string_value(json_object_get(result, "erase_by"));
	const json_t *days = json_object_get(result, "keep_days");
	int64_t keep = b->keep;
	char theirs[11] = "";

	if (json_is_integer(days) && json_integer_value(days) >= 0) {
		juki_clock_date(now_ms + json_integer_value(days) * JUKI_DAY_MS, theirs,
				sizeof(theirs));
	}
	if (server != NULL && juki_date_valid(server) &&
	    (theirs[0] == '\0' || strcmp(server, theirs) < 0)) {
		snprintf(theirs, sizeof(theirs), "%s", server);
	}
	if (keep <= 0 && theirs[0] == '\0') {
		keep = 30 * JUKI_DAY_MS; /* neither says: the default of docs/body.md */
	}
	out[0] = '\0';
	if (keep > 0) {
		juki_clock_date(now_ms + keep, out, 11);
	}
	if (theirs[0] != '\0' && (out[0] == '\0' || strcmp(theirs, out) < 0)) {
		snprintf(out, 11, "%s", theirs);
	}
}

struct batch {
	struct ctl_body b;
	json_t *queries;
	json_t *approval; /* the approval file, or NULL */
	char id[JUKI_UUID_LEN + 1];
	size_t size, parts;
	char tmp[4096], path[4096];
	int fd;
	int64_t now_ms;
	char erase_by[11];
	size_t found, not_found, refused;
};

static json_t *
part_body(const struct ctl_req *req, struct batch *bt, size_t p)
{
	json_t *body = json_pack(
	    "{s:O,s:O,s:O}", "agreement", json_object_get(req->args, "agreement"), "jimu",
	    json_object_get(req->args, "jimu"), "purpose", json_object_get(req->args, "purpose"));

	if (json_object_get(req->args, "items") != NULL) {
		json_object_set(body, "items", json_object_get(req->args, "items"));
	}
	json_object_set_new(body, "batch",
			    json_pack("{s:s,s:I,s:I,s:I}", "id", bt->id, "count",
				      (json_int_t)json_array_size(bt->queries), "part",
				      (json_int_t)p, "parts", (json_int_t)bt->parts));
	json_object_set_new(body, "queries", part_of(bt->queries, p * bt->size, bt->size));
	if (bt->approval != NULL) {
		json_object_set(body, "approval", json_object_get(bt->approval, "approval"));
	}
	return body;
}

/* The answers of part p into the file; the header first, once. */
static int
take_answers(const struct ctl_req *req, struct batch *bt, struct ctl_link *link, size_t p,
	     const json_t *result, struct juki_ctl_error *err)
{
	const json_t *answers = json_object_get(result, "answers");
	size_t want = json_array_size(bt->queries) - p * bt->size;
	const json_t *a;
	size_t i;

	want = want < bt->size ? want : bt->size;
	if (!json_is_array(answers) || json_array_size(answers) != want) {
		juki_ctl_fail(err, "bad-response",
			      "part %zu: %zu answers for %zu queries (the answers must match the "
			      "queries one for one)",
			      p + 1, json_array_size(answers), want);
		return JUKI_EPROTO;
	}
	if (p == 0) {
		char received[40];
		json_t *header;
		int rc;

		erase_by(&bt->b, bt->now_ms, result, bt->erase_by);
		juki_clock_format(bt->now_ms, received, sizeof(received));
		header =
		    json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O,s:I,s:s,s:s}", "batch", bt->id, "body",
			      bt->b.body, "server", bt->b.server, "staff", ctl_link_staff(link),
			      "agreement", json_object_get(req->args, "agreement"), "jimu",
			      json_object_get(req->args, "jimu"), "purpose",
			      json_object_get(req->args, "purpose"), "count",
			      (json_int_t)json_array_size(bt->queries), "received", received,
			      "erase_by", bt->erase_by);
		rc = header != NULL ? write_line(bt->fd, header) : JUKI_ENOMEM;
		json_decref(header);
		if (rc != 0) {
			juki_ctl_fail(err, "io", "%s: %s", bt->tmp, juki_strerror(rc));
			return rc;
		}
	}
	{
		struct lines l = {0};
		int rc = 0;

		json_array_foreach(answers, i, a)
		{
			if (json_is_true(json_object_get(a, "found"))) {
				bt->found++;
			} else if (json_is_string(json_object_get(a, "refused"))) {
				bt->refused++;
			} else {
				bt->not_found++;
			}
			if ((rc = lines_add(&l, a)) != 0) {
				break;
			}
		}
		if (rc == 0) {
			rc = write_all(bt->fd, l.buf, l.len);
		}
		free(l.buf);
		if (rc != 0) {
			juki_ctl_fail(err, "io", "%s: %s", bt->tmp, juki_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* Erase what was written of the answers: nothing of a failed batch stays. */
static void
drop_answers(struct batch *bt)
{
	int dfd;

	if (bt->fd < 0) {
		return;
	}
	close(bt->fd);
	bt->fd = -1;
	dfd = open(bt->b.answers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		juki_purge_erase_at(dfd, strrchr(bt->tmp, '/') + 1);
		fsync(dfd);
		close(dfd);
	} else {
		unlink(bt->tmp);
	}
}

static int
finish_answers(struct batch *bt, struct juki_ctl_error *err)
{
	int dfd;

	if (fsync(bt->fd) != 0 || close(bt->fd) != 0) {
		juki_ctl_fail(err, "io", "%s: %s", bt->tmp, strerror(errno));
		bt->fd = -1;
		unlink(bt->tmp);
		return JUKI_EIO;
	}
	bt->fd = -1;
	if (rename(bt->tmp, bt->path) != 0) {
		juki_ctl_fail(err, "io", "%s: %s", bt->path, strerror(errno));
		unlink(bt->tmp);
		return JUKI_EIO;
	}
	dfd = open(bt->b.answers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int
batch_setup(struct ctl *ctl, const struct ctl_req *req, struct batch *bt)
{
	struct juki_clock clock = {0};
	int rc;

	(void)ctl;
	if ((rc = ctl_provide_load_body(req, &bt->b)) != CTL_OK) {
		return rc;
	}
	clock.offset_ms = bt->b.clock_offset;
	bt->now_ms = juki_clock_now_ms(&clock);
	bt->size = (size_t)bt->b.part_size;
	if (ctl_val(req, "approval") != NULL) {
		bt->approval = load_approval(ctl_val(req, "approval"), &bt->b);
		if (bt->approval == NULL) {
			return CTL_USAGE;
		}
		snprintf(bt->id, sizeof(bt->id), "%s",
			 json_string_value(json_object_get(bt->approval, "batch")));
		bt->size = (size_t)json_integer_value(json_object_get(bt->approval, "part_size"));
	} else if (juki_uuid7(juki_clock_now_ms(&(struct juki_clock){0}), bt->id) != 0) {
		fprintf(stderr, "juki-ctl: provide batch: no randomness for a batch id\n");
		return CTL_FAILED;
	}
	bt->queries = read_queries(ctl_val(req, "QUERIES.jsonl"), bt->b.file_max);
	if (bt->queries == NULL) {
		return CTL_USAGE;
	}
	bt->parts = (json_array_size(bt->queries) + bt->size - 1) / bt->size;
	if (bt->parts > JUKI_PROVIDE_PARTS_MAX) {
		fprintf(stderr, "juki-ctl: provide batch: %zu parts, over %d\n", bt->parts,
			JUKI_PROVIDE_PARTS_MAX);
		return CTL_USAGE;
	}
	if ((rc = answer_dir(&bt->b)) != CTL_OK) {
		return rc;
	}
	snprintf(bt->path, sizeof(bt->path), "%s/%s.jsonl", bt->b.answers, bt->id);
	snprintf(bt->tmp, sizeof(bt->tmp), "%s/.%s.jsonl" TMP_SUFFIX, bt->b.answers, bt->id);
	if (access(bt->path, F_OK) == 0) {
		fprintf(stderr,
			"juki-ctl: provide batch: %s exists: batch %s was answered already (an "
			"approval is for one batch)\n",
			bt->path, bt->id);
		return CTL_FAILED;
	}
	bt->fd = open(bt->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (bt->fd < 0) {
		fprintf(stderr, "juki-ctl: provide batch: %s: %s\n", bt->tmp, strerror(errno));
		return CTL_FAILED;
	}
	return CTL_OK;
}

/*
 * Parts in flight: the next parts are sent before the answer to the first
 * is read, so that the server, the gateway and this process work at the
 * same time instead of in turn (the server answers a link's messages in
 * order).  Each part's answer is up to a few hundred KiB: the window stays
 * small.
 */
#define PARTS_IN_FLIGHT 4

static int
cmd_batch(struct ctl *ctl, const struct ctl_req *req)
{
	struct batch bt = {.fd = -1};
	struct juki_ctl_error err;
	struct ctl_link *link = NULL;
	char ids[PARTS_IN_FLIGHT][JUKI_UUID_LEN + 1];
	int64_t deadline;
	char where[128] = "";
	size_t p = 0, sent = 0;
	json_t *servers = json_array();
	int rc;

	memset(&err, 0, sizeof(err));
	rc = batch_setup(ctl, req, &bt);
	if (rc != CTL_OK) {
		goto out;
	}
	deadline = juki_clock_mono_ms() + bt.b.deadline;
	rc = ctl_link_open(&bt.b, ctl_provide_pin_fd(ctl, req), deadline, &link, &err);
	if (rc == 0) {
		json_array_append_new(servers, json_string(ctl_link_server(link)));
	}
	while (rc == 0 && p < bt.parts) {
		json_t *result = NULL;

		while (rc == 0 && sent < bt.parts && sent < p + PARTS_IN_FLIGHT) {
			rc = ctl_link_post(link, "provide.batch", part_body(req, &bt, sent),
					   bt.b.part_timeout, ids[sent % PARTS_IN_FLIGHT], &err);
			if (rc == 0) {
				sent++;
			} else {
				snprintf(where, sizeof(where), " (part %zu/%zu)", sent + 1,
					 bt.parts);
			}
		}
		if (rc == 0) {
			rc = ctl_link_wait(link, "provide.batch", ids[p % PARTS_IN_FLIGHT],
					   bt.b.part_timeout, &result, &err);
		}
		if (ctl_link_lost(link, rc) && bt.b.nfallback > 0) {
			fprintf(stderr, "juki-ctl: provide batch %s: %s lost at part %zu/%zu\n",
				bt.id, ctl_link_server(link), p + 1, bt.parts);
			if ((rc = ctl_link_move(link, &err)) == 0) {
				/*
				 * The rest at the next centre, from the first part without an
				 * answer: the parts that were in flight are sent again, and the
				 * answers file takes each part's answers once.
				 */
				json_array_append_new(servers, json_string(ctl_link_server(link)));
				where[0] = '\0';
				sent = p;
				continue;
			}
			snprintf(where, sizeof(where), " (part %zu/%zu)", p + 1, bt.parts);
			break;
		}
		if (rc == 0) {
			rc = take_answers(req, &bt, link, p, result, &err);
		}
		json_decref(result);
		if (rc == 0) {
			size_t done = (p + 1) * bt.size;

			fprintf(stderr, "juki-ctl: provide batch %s: part %zu/%zu done (%zu/%zu)\n",
				bt.id, p + 1, bt.parts,
				done < json_array_size(bt.queries) ? done
								   : json_array_size(bt.queries),
				json_array_size(bt.queries));
			p++;
		} else if (where[0] == '\0') {
			snprintf(where, sizeof(where), " (part %zu/%zu)", p + 1, bt.parts);
		}
	}
	if (rc == 0) {
		rc = finish_answers(&bt, &err);
	}
	if (rc != 0) {
		drop_answers(&bt);
		strncat(where,
			"; no answers file written (a batch is answered whole or not at all)",
			sizeof(where) - strlen(where) - 1);
		rc = ctl_provide_fail(ctl, "provide batch", &err, where);
		goto out;
	}
	/* servers: every centre that answered parts of it, in turn (more than one: moved). */
	ctl_print_new(
	    ctl, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:O}", "batch", bt.id, "file",
			   bt.path, "count", (json_int_t)json_array_size(bt.queries), "parts",
			   (json_int_t)bt.parts, "found", (json_int_t)bt.found, "not_found",
			   (json_int_t)bt.not_found, "refused", (json_int_t)bt.refused, "erase_by",
			   bt.erase_by, "gateway", ctl_link_gateway(link), "server",
			   ctl_link_server(link), "servers", servers));
	rc = CTL_OK;
out:
	drop_answers(&bt);
	ctl_link_close(link);
	json_decref(servers);
	json_decref(bt.queries);
	json_decref(bt.approval);
	ctl_body_free(&bt.b);
	return rc;
}

/* provide purge */

/* The header of the answer file name in dfd: its erase-by date and batch. */
static int
read_header(int dfd, const char *name, char erase[11], char *batch, size_t len)
{
	char buf[HEADER_MAX + 1];
	json_t *h;
	const char *e, *id;
	ssize_t n;
	char *nl;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		return -errno;
	}
	n = read(fd, buf, HEADER_MAX);
	close(fd);
	if (n <= 0) {
		return JUKI_EFORMAT;
	}
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (nl == NULL) {
		return JUKI_EFORMAT;
	}
	*nl = '\0';
	h = json_loads(buf, 0, NULL);
	e = json_string_value(json_object_get(h, "erase_by"));
	id = json_string_value(json_object_get(h, "batch"));
	if (e == NULL || !juki_date_valid(e) || id == NULL) {
		json_decref(h);
		return JUKI_EFORMAT;
	}
	snprintf(erase, 11, "%s", e);
	snprintf(batch, len, "%s", id);
	json_decref(h);
	return 0;
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

static void
purge_text(const json_t *r)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(r, "removed"), i, e)
	{
		printf("%s %s (erase by %s)\n",
		       json_is_true(json_object_get(r, "dry_run")) ? "would remove" : "removed",
		       ctl_str(e, "file"), ctl_str(e, "erase_by"));
	}
	json_array_foreach(json_object_get(r, "skipped"), i, e)
	{
		printf("skipped %s: %s\n", ctl_str(e, "file"), ctl_str(e, "why"));
	}
	printf("%lld removed, %lld kept (today %s)\n", ctl_int(r, "count"), ctl_int(r, "kept"),
	       ctl_str(r, "today"));
}

static int
cmd_purge(struct ctl *ctl, const struct ctl_req *req)
{
	int dry = ctl_val(req, "dry-run") != NULL;
	struct juki_clock clock = {0};
	json_t *removed = json_array(), *skipped = json_array(), *r;
	struct dirent *de;
	struct ctl_body b;
	char today[11];
	int64_t now, kept = 0;
	int dfd, rc = CTL_OK;
	DIR *d;

	if ((rc = ctl_provide_load_body(req, &b)) != CTL_OK) {
		json_decref(removed);
		json_decref(skipped);
		return rc;
	}
	clock.offset_ms = b.clock_offset;
	now = juki_clock_now_ms(&clock);
	juki_clock_date(now, today, sizeof(today));
	d = opendir(b.answers);
	if (d == NULL && errno != ENOENT) {
		fprintf(stderr, "juki-ctl: provide purge: %s: %s\n", b.answers, strerror(errno));
		rc = CTL_FAILED;
		goto out;
	}
	dfd = d != NULL ? dirfd(d) : -1;
	while (d != NULL && (de = readdir(d)) != NULL) {
		char erase[11] = "", batch[64] = "";
		const char *why = NULL;
		struct stat st;
		int due = 0, erc;

		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode)) {
			continue;
		}
		if (de->d_name[0] == '.' && ends_with(de->d_name, ".jsonl" TMP_SUFFIX)) {
			/* a batch that never finished: its part answers, kept no longer than a run
			 */
			due = (now - (int64_t)st.st_mtime * 1000) > b.deadline;
			snprintf(erase, sizeof(erase), "-");
			if (!due) {
				kept++;
				continue;
			}
		} else if (de->d_name[0] == '.' || !ends_with(de->d_name, ".jsonl")) {
			continue;
		} else if ((erc = read_header(dfd, de->d_name, erase, batch, sizeof(batch))) != 0) {
			why = "no answer-file header with erase_by: not erased, look at it";
		} else {
			due = strcmp(today, erase) > 0;
		}
		if (why != NULL) {
			json_array_append_new(
			    skipped, json_pack("{s:s,s:s}", "file", de->d_name, "why", why));
			continue;
		}
		if (!due) {
			kept++;
			continue;
		}
		if (!dry && (erc = juki_purge_erase_at(dfd, de->d_name)) != 0) {
			json_array_append_new(skipped, json_pack("{s:s,s:s}", "file", de->d_name,
								 "why", juki_strerror(erc)));
			rc = CTL_FAILED;
			continue;
		}
		json_array_append_new(removed,
				      json_pack("{s:s,s:s,s:s}", "file", de->d_name, "batch",
						batch[0] != '\0' ? batch : "-", "erase_by", erase));
	}
	if (d != NULL && !dry && json_array_size(removed) > 0 && fsync(dfd) != 0) {
		fprintf(stderr, "juki-ctl: provide purge: %s: fsync: %s\n", b.answers,
			strerror(errno));
		rc = CTL_FAILED;
	}
	if (d != NULL) {
		closedir(d);
	}
	r = json_pack("{s:s,s:s,s:b,s:I,s:O,s:I,s:O}", "dir", b.answers, "today", today, "dry_run",
		      dry, "count", (json_int_t)json_array_size(removed), "removed", removed,
		      "kept", (json_int_t)kept, "skipped", skipped);
	if (ctl->json) {
		ctl_print(ctl, r);
	} else {
		purge_text(r);
	}
	json_decref(r);
out:
	json_decref(removed);
	json_decref(skipped);
	ctl_body_free(&b);
	return rc;
}

/* The table */

#define BODY_ROW                                                                                   \
	{                                                                                          \
		"body-conf", 0, CTL_FILE, CTL_REQUIRED, NULL, "FILE", 0, 0, NULL                   \
	}
#define PIN_FD_ROW CTL_OPT_ROW("card-pin-fd", CTL_FD, NULL, "N")
#define WHY_ROWS                                                                                   \
	CTL_NEED_ROW("agreement", CTL_STRING, "agreement", "ID"),                                  \
	    CTL_NEED_ROW("jimu", CTL_STRING, "jimu", "T-R"),                                       \
	    CTL_NEED_ROW("purpose", CTL_STRING, "purpose", "TEXT")

const struct ctl_cmd ctl_provide_cmds[] = {
    {"provide query", cmd_query, NULL,
     "ask the providing server for one person's identity information under an agreement, "
     "by 住民票コード or by the exact four items, with the staff card of the body file "
     "(第6-8(1)イ)",
     .opts = {BODY_ROW, WHY_ROWS, CTL_OPT_ROW("code", CTL_STRING, "code", "C"),
	      CTL_OPT_ROW("name", CTL_STRING, "name", "N"),
	      CTL_OPT_ROW("birth", CTL_DATE, "birth", "D"), CTL_OPT_ROW("sex", CTL_SEX, "sex", "S"),
	      CTL_OPT_ROW("address-code", CTL_STRING, "lgcode", "L"),
	      CTL_OPT_ROW("address", CTL_STRING, "address", "TEXT"),
	      CTL_OPT_ROW("items", CTL_LIST, "items", "a,b"), PIN_FD_ROW},
     .synopsis = "--body-conf FILE --agreement ID --jimu T-R --purpose TEXT (--code C | --name N "
		 "--birth YYYY-MM-DD --sex 1|2 --address-code L --address TEXT) [--items a,b] "
		 "[--card-pin-fd N]",
     .offline = 1},
    {"provide batch", cmd_batch, NULL,
     "send a file of queries (JSON lines) in parts and write the answers file, with its "
     "erase-by date, into the answer directory; all or nothing; over the agreement's bulk "
     "threshold with the 責任者's --approval",
     .opts = {BODY_ROW,
	      WHY_ROWS,
	      {"approval", 0, CTL_FILE, 0, NULL, "FILE", 0, 0, NULL},
	      CTL_OPT_ROW("items", CTL_LIST, "items", "a,b"),
	      PIN_FD_ROW,
	      {"QUERIES.jsonl", 0, CTL_FILE, CTL_ARG, NULL, "QUERIES.jsonl", 0, 0, NULL}},
     .offline = 1},
    {"provide approve", cmd_approve, NULL,
     "the 責任者 approves a batch of queries with their own card: writes the approval file "
     "(batch id, part hashes, signature) that provide batch --approval sends",
     .opts = {{"cert", 0, CTL_FILE, CTL_REQUIRED, NULL, "FILE", 0, 0, NULL},
	      {"card", 0, CTL_CARD, 0, NULL, "URI", 0, 0, NULL},
	      {"key", 0, CTL_FILE, 0, NULL, "FILE", 0, 0, NULL},
	      {"ca", 0, CTL_FILE, CTL_REQUIRED, NULL, "FILE", 0, 0, NULL},
	      {"crl", 0, CTL_FILE, 0, NULL, "FILE", 0, 0, NULL},
	      {"batch-id", 0, CTL_STRING, 0, NULL, "UUID", 0, 0, NULL},
	      CTL_INT_ROW("part-size", NULL, 1, JUKI_PROVIDE_PART_MAX),
	      PIN_FD_ROW,
	      {"QUERIES.jsonl", 0, CTL_FILE, CTL_ARG, NULL, "QUERIES.jsonl", 0, 0, NULL}},
     .synopsis = "--cert FILE (--card URI | --key FILE) --ca FILE [--crl FILE] [--batch-id UUID] "
		 "[--part-size N] [--card-pin-fd N] QUERIES.jsonl",
     .offline = 1},
    {"provide purge", cmd_purge, NULL,
     "erase the answer files past their erase-by date (overwritten, then unlinked) and "
     "say which",
     .opts = {BODY_ROW, CTL_FLAG_ROW("dry-run", NULL)}, .offline = 1},
    {.name = NULL},
};
