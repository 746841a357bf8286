/*
 * The inventory and the integrity of the programs (第4-7(1)イ, 第4-7(4)):
 * juki-ctl manifest sign / manifest verify / inventory.
 *
 * manifest sign asks the running daemon which files it runs from (its
 * binary, the libraries it has loaded, its configuration: the control
 * command "integrity"), digests those files on disk itself and signs the
 * manifest with the node's own key, read from the files the daemon's
 * configuration names (a key file, or a key on a PKCS#11 token with its PIN
 * file): run it as the daemon's user, after installing or upgrading.
 * inventory reads the board of a node that keeps one (the national or a
 * prefectural server): each node's daemon, version and digests from its
 * last heartbeat, and the nodes that drift from the declared inventory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/integrity.h"
#include "juki/wire/manifest.h"
#include "juki/wire/tls.h"

#define DELETED " (deleted)"

static int
entry_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;

	return strcmp(json_string_value(json_object_get(x, "path")),
		      json_string_value(json_object_get(y, "path")));
}

/* files as the manifest lists them: sorted by path. */
static json_t *
sorted(json_t *files)
{
	size_t n = json_array_size(files);
	json_t **v = calloc(n ? n : 1, sizeof(*v)), *out = json_array();

	if (v == NULL || out == NULL) {
		free(v);
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = json_array_get(files, i);
	}
	qsort(v, n, sizeof(*v), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		json_array_append(out, v[i]);
	}
	free(v);
	return out;
}

/* {"path", "sha256", "kind"} of the file at path as it is on disk now. */
static int
add_entry(json_t *files, json_t *seen, const char *path, const char *kind)
{
	char hex[65], clean[JUKI_MANIFEST_PATH_MAX + 1];
	size_t n = strlen(path);
	int rc;

	/* A binary replaced on disk since the daemon started: the file there now. */
	if (n > strlen(DELETED) && strcmp(path + n - strlen(DELETED), DELETED) == 0) {
		n -= strlen(DELETED);
	}
	if (n == 0 || n >= sizeof(clean) || path[0] != '/') {
		fprintf(stderr, "juki-ctl: manifest sign: %s: not an absolute path\n", path);
		return CTL_FAILED;
	}
	memcpy(clean, path, n);
	clean[n] = '\0';
	if (json_object_get(seen, clean) != NULL) {
		return CTL_OK;
	}
	if ((rc = juki_sha256_file(clean, hex)) != 0) {
		fprintf(stderr, "juki-ctl: manifest sign: %s: %s\n", clean, juki_strerror(rc));
		return CTL_FAILED;
	}
	json_object_set_new(seen, clean, json_true());
	json_array_append_new(
	    files, json_pack("{s:s,s:s,s:s}", "path", clean, "sha256", hex, "kind", kind));
	return CTL_OK;
}

/* Write text to path through a new file beside it, renamed over it: never half a manifest. */
static int
write_atomic(const char *path, const char *text)
{
	char tmp[JUKI_MANIFEST_PATH_MAX + 16];
	size_t len = strlen(text);
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return -errno;
	}
	ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	if (close(fd) != 0 || !ok || rename(tmp, path) != 0) {
		int e = errno != 0 ? -errno : JUKI_EIO;

		unlink(tmp);
		return e;
	}
	return 0;
}

static int
cmd_manifest_sign(struct ctl *ctl, const struct ctl_req *req)
{
	const char *out = ctl_val(req, "out");
	const json_t *add = json_object_get(req->args, "add"), *f, *tlsj;
	json_t *info = NULL, *files = NULL, *seen = NULL, *m = NULL, *list;
	struct juki_tls *tls = NULL;
	struct juki_tls_conf tc;
	char err[1024], made[32], hex[65];
	char *text = NULL;
	size_t i;
	int rc;

	rc = ctl_call(ctl, "integrity", json_object(), &info);
	if (rc != CTL_OK) {
		return rc;
	}
	if (out == NULL) {
		out = json_string_value(json_object_get(info, "manifest"));
	}
	if (out == NULL) {
		fprintf(stderr, "juki-ctl: manifest sign: the daemon has no integrity.manifest: "
				"name the file with --out\n");
		rc = CTL_USAGE;
		goto done;
	}
	files = json_array();
	seen = json_object();
	json_array_foreach(json_object_get(info, "files"), i, f)
	{
		rc = add_entry(files, seen, json_string_value(json_object_get(f, "path")),
			       json_string_value(json_object_get(f, "kind")));
		if (rc != CTL_OK) {
			goto done;
		}
	}
	json_array_foreach(add, i, f)
	{
		if ((rc = add_entry(files, seen, json_string_value(f), "library")) != CTL_OK) {
			goto done;
		}
	}
	tlsj = json_object_get(info, "tls");
	memset(&tc, 0, sizeof(tc));
	tc.cert = json_string_value(json_object_get(tlsj, "cert"));
	tc.key = json_string_value(json_object_get(tlsj, "key"));
	tc.pin_file = json_string_value(json_object_get(tlsj, "pin_file"));
	tc.ca = json_string_value(json_object_get(tlsj, "ca"));
	tc.crl = json_string_value(json_object_get(tlsj, "crl"));
	if ((rc = juki_tls_new(&tc, &tls, err, sizeof(err))) != 0) {
		fprintf(stderr, "juki-ctl: manifest sign: the node's key: %s\n", err);
		rc = CTL_FAILED;
		goto done;
	}
	if (strcmp(juki_tls_self(tls)->urn, json_string_value(json_object_get(info, "node"))) !=
	    0) {
		fprintf(stderr,
			"juki-ctl: manifest sign: the certificate names %s, not the node %s\n",
			juki_tls_self(tls)->urn, json_string_value(json_object_get(info, "node")));
		rc = CTL_FAILED;
		goto done;
	}
	juki_clock_format(juki_clock_now_ms(NULL), made, sizeof(made));
	list = sorted(files);
	m = json_pack("{s:i,s:O,s:O,s:O,s:s,s:o}", "format", 1, "node",
		      json_object_get(info, "node"), "daemon", json_object_get(info, "daemon"),
		      "version", json_object_get(info, "version"), "made", made, "files", list);
	if (m == NULL) {
		fprintf(stderr, "juki-ctl: manifest sign: out of memory\n");
		rc = CTL_FAILED;
		goto done;
	}
	if (juki_manifest_sign(m, tls, tc.cert, err, sizeof(err)) != 0 ||
	    juki_manifest_verify(m, tc.ca, tc.crl, juki_tls_self(tls)->urn, err, sizeof(err)) !=
		0) {
		fprintf(stderr, "juki-ctl: manifest sign: %s\n", err);
		rc = CTL_FAILED;
		goto done;
	}
	text = json_dumps(m, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	if (text == NULL || (rc = write_atomic(out, text)) != 0) {
		fprintf(stderr, "juki-ctl: manifest sign: %s: %s\n", out,
			text == NULL ? "out of memory" : juki_strerror(rc));
		rc = CTL_FAILED;
		goto done;
	}
	juki_sha256_hex(text, strlen(text), hex);
	ctl_print_new(ctl, json_pack("{s:s,s:O,s:I,s:s}", "manifest", out, "node",
				     json_object_get(m, "node"), "files",
				     (json_int_t)json_array_size(list), "made", made));
	rc = CTL_OK;
done:
	free(text);
	juki_tls_free(tls);
	json_decref(m);
	json_decref(seen);
	json_decref(files);
	json_decref(info);
	return rc;
}

static int
cmd_manifest_verify(struct ctl *ctl, const struct ctl_req *req)
{
	const char *path = ctl_val(req, "FILE");
	json_t *m = NULL, *differs = json_array(), *f;
	char err[1024], hex[65];
	size_t i;
	int rc;

	if ((rc = juki_manifest_load(path, &m, hex, err, sizeof(err))) != 0 ||
	    (rc = juki_manifest_verify(m, ctl_val(req, "ca"), ctl_val(req, "crl"),
				       ctl_val(req, "node"), err, sizeof(err))) != 0) {
		fprintf(stderr, "juki-ctl: manifest verify: %s: %s\n", path, err);
		json_decref(m);
		json_decref(differs);
		return CTL_FAILED;
	}
	if (ctl_val(req, "files") != NULL) {
		json_array_foreach(json_object_get(m, "files"), i, f)
		{
			const char *p = json_string_value(json_object_get(f, "path"));
			char now[65];

			if (juki_sha256_file(p, now) != 0 ||
			    strcmp(now, json_string_value(json_object_get(f, "sha256"))) != 0) {
				json_array_append_new(differs, json_string(p));
			}
		}
	}
	ctl_print_new(ctl,
		      json_pack("{s:s,s:O,s:O*,s:O*,s:O,s:I,s:s,s:s,s:O}", "manifest", path, "node",
				json_object_get(m, "node"), "daemon", json_object_get(m, "daemon"),
				"version", json_object_get(m, "version"), "made",
				json_object_get(m, "made"), "files",
				(json_int_t)json_array_size(json_object_get(m, "files")), "sha256",
				hex, "signature", "good", "differs", differs));
	rc = json_array_size(differs) > 0 ? CTL_FAILED : CTL_OK;
	if (rc != CTL_OK) {
		fprintf(stderr, "juki-ctl: manifest verify: %zu files differ on this host\n",
			json_array_size(differs));
	}
	json_decref(differs);
	json_decref(m);
	return rc;
}

/*
 * One row of the inventory from a node's integrity member (a heartbeat's,
 * or the board node's own answer to "integrity").
 */
static json_t *
row(const char *node, const char *daemon, const char *version, const json_t *integ)
{
	json_t *r;

	char why[128];

	/* A member that does not pass is no information: the node shows as unknown. */
	if (json_is_object(integ) && json_object_get(integ, "files") == NULL &&
	    juki_integrity_member_check(integ, why, sizeof(why)) != 0) {
		integ = NULL;
	}
	if (json_is_object(integ) && json_is_string(json_object_get(integ, "version"))) {
		version = json_string_value(json_object_get(integ, "version"));
	}
	r = json_pack("{s:s,s:s?,s:s?}", "node", node, "daemon", daemon, "version", version);
	if (r == NULL) {
		return NULL;
	}
	if (!json_is_object(integ)) {
		json_object_set_new(r, "binary", json_null());
		json_object_set_new(r, "config", json_null());
		json_object_set_new(r, "manifest", json_null());
		json_object_set_new(r, "ok", json_null());
		json_object_set_new(r, "mismatches", json_array());
		return r;
	}
	json_object_set(r, "binary", json_object_get(integ, "binary"));
	json_object_set(r, "config", json_object_get(integ, "config"));
	if (json_is_string(json_object_get(integ, "manifest"))) {
		json_object_set(r, "manifest", json_object_get(integ, "manifest"));
	} else if (json_is_string(json_object_get(integ, "manifest_sha256"))) {
		json_object_set(r, "manifest", json_object_get(integ, "manifest_sha256"));
	} else {
		json_object_set_new(r, "manifest", json_null());
	}
	json_object_set_new(r, "ok", json_boolean(json_is_true(json_object_get(integ, "ok"))));
	json_object_set(r, "mismatches",
			json_is_array(json_object_get(integ, "mismatches"))
			    ? json_object_get(integ, "mismatches")
			    : json_array());
	return r;
}

/* Whether value is v or one of the array v (a declared digest or version). */
static int
declared(const json_t *v, const char *value)
{
	const json_t *x;
	size_t i;

	if (value == NULL) {
		return 0;
	}
	if (json_is_string(v)) {
		return strcmp(json_string_value(v), value) == 0;
	}
	json_array_foreach(v, i, x)
	{
		if (json_is_string(x) && strcmp(json_string_value(x), value) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * Without a declared inventory: per daemon, the version and binary most
 * nodes run.  A tie has no majority: every node of that daemon drifts.
 */
static json_t *
majority(const json_t *rows)
{
	json_t *counts = json_object(), *expect = json_object(), *r, *per;
	const char *daemon;
	size_t i;

	json_array_foreach(rows, i, r)
	{
		const char *d = json_string_value(json_object_get(r, "daemon"));
		const char *b = json_string_value(json_object_get(r, "binary"));
		const char *v = json_string_value(json_object_get(r, "version"));
		char key[256];
		json_t *c;

		if (d == NULL || b == NULL || v == NULL) {
			continue;
		}
		if (json_object_get(counts, d) == NULL) {
			json_object_set_new(counts, d, json_object());
		}
		snprintf(key, sizeof(key), "%s %s", v, b);
		c = json_object_get(json_object_get(counts, d), key);
		json_object_set_new(json_object_get(counts, d), key,
				    json_integer(json_integer_value(c) + 1));
	}
	json_object_foreach(counts, daemon, per)
	{
		const char *key, *best = NULL;
		json_t *c;
		json_int_t top = 0;
		int tie = 0;

		json_object_foreach(per, key, c)
		{
			if (json_integer_value(c) > top) {
				top = json_integer_value(c);
				best = key;
				tie = 0;
			} else if (json_integer_value(c) == top) {
				tie = 1;
			}
		}
		if (best != NULL && !tie) {
			const char *sp = strchr(best, ' ');

			json_object_set_new(expect, daemon,
					    json_pack("{s:s%,s:s}", "version", best,
						      (size_t)(sp - best), "binary", sp + 1));
		} else {
			json_object_set_new(expect, daemon,
					    json_pack("{s:n,s:n}", "version", "binary"));
		}
	}
	json_decref(counts);
	return expect;
}

/* The reasons row drifts from expect (an object per daemon): [] when it does not. */
static json_t *
drift_of(const json_t *r, const json_t *expect)
{
	const char *d = json_string_value(json_object_get(r, "daemon"));
	const json_t *e = d != NULL ? json_object_get(expect, d) : NULL;
	json_t *why = json_array();

	if (json_is_null(json_object_get(r, "binary"))) {
		json_array_append_new(why, json_string("unknown"));
		return why;
	}
	if (e == NULL) {
		json_array_append_new(why, json_string("undeclared"));
		return why;
	}
	if (!declared(json_object_get(e, "version"),
		      json_string_value(json_object_get(r, "version")))) {
		json_array_append_new(why, json_string("version"));
	}
	if (!declared(json_object_get(e, "binary"),
		      json_string_value(json_object_get(r, "binary")))) {
		json_array_append_new(why, json_string("binary"));
	}
	return why;
}

static void
inventory_text(const json_t *inv)
{
	const json_t *r;
	size_t i;

	printf("%-24s %-16s %-8s %-12s %-9s %s\n", "NODE", "DAEMON", "VERSION", "BINARY",
	       "MANIFEST", "DRIFT");
	json_array_foreach(json_object_get(inv, "nodes"), i, r)
	{
		const char *b = json_string_value(json_object_get(r, "binary"));
		const json_t *drift = json_object_get(r, "drift"), *w;
		const char *man = json_is_null(json_object_get(r, "manifest")) ? "none"
				  : json_is_true(json_object_get(r, "ok"))     ? "ok"
									       : "mismatch";
		size_t j;

		printf("%-24s %-16s %-8s %-12.12s %-9s ", ctl_str(r, "node"), ctl_str(r, "daemon"),
		       ctl_str(r, "version"), b != NULL ? b : "-", man);
		if (json_array_size(drift) == 0) {
			printf("-");
		}
		json_array_foreach(drift, j, w)
		{
			printf("%s%s", j > 0 ? "," : "", json_string_value(w));
		}
		printf("\n");
	}
	printf("%zu nodes, %zu drifting, %zu not matching their manifest\n",
	       json_array_size(json_object_get(inv, "nodes")),
	       json_array_size(json_object_get(inv, "drifting")),
	       json_array_size(json_object_get(inv, "mismatched")));
}

static int
cmd_inventory(struct ctl *ctl, const struct ctl_req *req)
{
	const char *expect_path = ctl_val(req, "expect");
	json_t *board = NULL, *self = NULL, *rows = json_array(), *expect = NULL, *n, *r;
	json_t *drifting = json_array(), *mismatched = json_array(), *inv;
	json_error_t jerr;
	size_t i;
	int rc;

	if (expect_path != NULL) {
		expect = json_load_file(expect_path, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(expect)) {
			fprintf(stderr, "juki-ctl: inventory: %s: %s\n", expect_path,
				expect == NULL ? jerr.text : "an object of daemons");
			rc = CTL_USAGE;
			goto done;
		}
	}
	if ((rc = ctl_call(ctl, "board", json_object(), &board)) != CTL_OK ||
	    (rc = ctl_call(ctl, "integrity", json_object(), &self)) != CTL_OK) {
		goto done;
	}
	json_array_append_new(rows, row(json_string_value(json_object_get(self, "node")),
					json_string_value(json_object_get(self, "daemon")),
					json_string_value(json_object_get(self, "version")), self));
	json_array_foreach(json_object_get(board, "nodes"), i, n)
	{
		const json_t *hb = json_object_get(n, "heartbeat");
		const char *daemon = json_string_value(json_object_get(n, "daemon"));

		if (daemon == NULL) {
			daemon = json_string_value(json_object_get(hb, "daemon"));
		}
		json_array_append_new(rows,
				      row(json_string_value(json_object_get(n, "node")), daemon,
					  json_string_value(json_object_get(n, "version")),
					  json_object_get(hb, "integrity")));
	}
	if (expect == NULL) {
		expect = majority(rows);
	}
	json_array_foreach(rows, i, r)
	{
		json_t *why = drift_of(r, expect);

		if (json_array_size(why) > 0) {
			json_array_append(drifting, json_object_get(r, "node"));
		}
		json_object_set_new(r, "drift", why);
		if (!json_is_true(json_object_get(r, "ok")) &&
		    !json_is_null(json_object_get(r, "manifest"))) {
			json_array_append(mismatched, json_object_get(r, "node"));
		}
	}
	inv = json_pack("{s:s,s:O,s:s,s:O,s:O,s:O}", "board", ctl_str(board, "self"), "expected",
			expect, "by", expect_path != NULL ? "declared" : "majority", "nodes", rows,
			"drifting", drifting, "mismatched", mismatched);
	if (ctl->json) {
		ctl_print(ctl, inv);
	} else {
		inventory_text(inv);
	}
	json_decref(inv);
	rc = json_array_size(drifting) > 0 ? CTL_FAILED : CTL_OK;
done:
	json_decref(board);
	json_decref(self);
	json_decref(rows);
	json_decref(expect);
	json_decref(drifting);
	json_decref(mismatched);
	return rc;
}

const struct ctl_cmd ctl_integrity_cmds[] = {
    {"integrity", ctl_run, "integrity",
     .help = "check the daemon's binary, libraries and configuration against its manifest now: "
	     "each file, its digest and state"},
    {"manifest sign", cmd_manifest_sign, NULL,
     "make the node's signed manifest: the daemon names the files it runs from (binary, "
     "loaded libraries, configuration), juki-ctl digests them on disk and signs with the "
     "node's key (run as the daemon's user); --out: where (default: integrity.manifest); "
     "--add: more library files (a PKCS#11 module loaded later)",
     .opts = {CTL_OPT_ROW("out", CTL_FILE, NULL, "FILE"),
	      CTL_OPT_ROW("add", CTL_LIST, "add", "PATHS")}},
    {"manifest verify", cmd_manifest_verify, NULL,
     "check a manifest's form and signature against the network's CA (and CRL); --node: "
     "whose it must be; --files: also digest every file it lists on this host",
     .opts = {CTL_NEED_ROW("ca", CTL_FILE, NULL, "FILE"),
	      CTL_OPT_ROW("crl", CTL_FILE, NULL, "FILE"),
	      CTL_OPT_ROW("node", CTL_STRING, NULL, "URN"), CTL_FLAG_ROW("files", NULL),
	      CTL_ARG_ROW("FILE", NULL)},
     .offline = 1},
    {"inventory", cmd_inventory, NULL,
     "at a node that keeps the board: every node's daemon, version and digests from its "
     "last heartbeat, and the nodes that drift from the declared inventory (--expect "
     "FILE) or, without one, from what most nodes of their daemon run; exit 1 when one "
     "drifts",
     .opts = {CTL_OPT_ROW("expect", CTL_FILE, NULL, "FILE")}},
    {.name = NULL},
};
