/*
 * juki — the integrity of a node's programs against its signed manifest
 * (integrity.h, wire/manifest.h).
 */
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/daemon.h"
#include "juki/node/integrity.h"
#include "juki/node/log.h"
#include "juki/node/node.h"
#include "juki/records/operator.h"
#include "juki/wire/manifest.h"

#define SELF_EXE       "/proc/self/exe"
#define ALERT_TEXT_MAX 200                /* bytes of a problem's text in its alert */
#define SHOWN_MAX      (4 * PATH_MAX + 1) /* a path with every byte as \xNN */
#define FULL_EVERY_MS  60000              /* every file read whole at least this often */

struct juki_integrity {
	struct juki_node *node;
	char exe[PATH_MAX]; /* the binary's path, as the kernel names it */
	char binary[65];    /* its digest ("" when unreadable) */
	char config[65];    /* the main configuration file's */
	char manifest[65];  /* the manifest file's ("" when none could be read) */
	int checked;        /* a manifest is configured */
	int ok;             /* everything matched a good manifest at the last check */
	int64_t checked_ms; /* when */
	json_t *files;      /* [{"path", "kind", "sha256", "state"}] of the last check */
	json_t *problems;   /* ["<path>: <what>"] of the last check */
	json_t *mismatches; /* [paths] of the last check */
	json_t *alerted;    /* the problems of the last check already alerted */
	json_t *digests;    /* path -> {"stat": "<dev:ino:size:mtime:ctime>", "sha256"} */
	int64_t full_ms;    /* when every file was last read whole */
};

const struct juki_conf_key juki_integrity_keys[] = {
    JUKI_CONF_SCALAR(struct juki_integrity_conf, manifest, "manifest", JUKI_CONF_PATH, NULL, 0, 0,
		     0,
		     "The node's signed manifest (juki-ctl manifest sign): the digests of its "
		     "binary, libraries and configuration. Unset: nothing is compared."),
    JUKI_CONF_SCALAR(struct juki_integrity_conf, enforce, "enforce", JUKI_CONF_BOOL, "false",
		     JUKI_CONF_RESTART, 0, 0,
		     "Refuse to start unless the manifest is good and everything matches it."),
    JUKI_CONF_END,
};

int
juki_integrity_conf_check(const void *section, const char **blame, char *why, size_t whylen)
{
	const struct juki_integrity_conf *c = section;

	if (c->enforce && c->manifest == NULL) {
		*blame = "enforce";
		snprintf(why, whylen, "enforce needs a manifest");
		return JUKI_ECONFIG;
	}
	return 0;
}

/* What of a file's status changes when its contents do (ctime: even when mtime is set back). */
static int
stat_key(const char *path, char *key, size_t len)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		return -errno;
	}
	snprintf(key, len, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return 0;
}

/*
 * The digest of the file at path: read whole when full, or when its status
 * changed since it was last read; otherwise the digest of that reading.
 */
static int
digest(json_t *digests, const char *path, int full, char hex[65])
{
	char key[160];
	const json_t *d = json_object_get(digests, path);
	int rc;

	if (stat_key(path, key, sizeof(key)) != 0) {
		key[0] = '\0';
	}
	if (!full && key[0] != '\0' && d != NULL &&
	    strcmp(json_string_value(json_object_get(d, "stat")), key) == 0) {
		snprintf(hex, 65, "%s", json_string_value(json_object_get(d, "sha256")));
		return 0;
	}
	rc = juki_sha256_file(path, hex);
	if (rc == 0 && key[0] != '\0') {
		json_object_set_new(digests, path,
				    json_pack("{s:s,s:s}", "stat", key, "sha256", hex));
	} else {
		json_object_del(digests, path);
	}
	return rc;
}

/* path as text: control characters, and every byte of 0x80 up when it is not UTF-8, as \xNN. */
static void
path_shown(const char *path, char *out, size_t len)
{
	json_t *probe;
	int all;

	for (all = 0; all < 2; all++) {
		size_t n = 0;

		for (const unsigned char *c = (const unsigned char *)path; *c != '\0'; c++) {
			if (*c < 0x20 || *c == 0x7f || (all && *c >= 0x80)) {
				if (n + 5 > len) {
					break;
				}
				n += (size_t)snprintf(out + n, len - n, "\\x%02x", *c);
			} else {
				if (n + 2 > len) {
					break;
				}
				out[n++] = (char)*c;
			}
		}
		out[n] = '\0';
		if ((probe = json_string(out)) != NULL) {
			json_decref(probe);
			return;
		}
	}
}

struct gathering {
	json_t *files;
	json_t *seen;
	json_t *digests;
	int full;
};

/* One file to compare: appended to files as {"path", "kind", "sha256", "state"}. */
static void
add_file(struct gathering *g, const char *path, const char *kind, const char *readfrom)
{
	char hex[65], shown[SHOWN_MAX];
	int rc;

	/*
	 * A path with control characters or that is not UTF-8 (a library preloaded from
	 * "/tmp/\xff.so") is shown with those bytes as \xNN: never left out, and never
	 * listed by a manifest, so a mismatch whose alert is text.
	 */
	path_shown(path, shown, sizeof(shown));
	if (json_object_get(g->seen, shown) != NULL) {
		return;
	}
	json_object_set_new(g->seen, shown, json_true());
	rc = digest(g->digests, readfrom != NULL ? readfrom : path, g->full, hex);
	json_array_append_new(g->files, json_pack("{s:s,s:s,s:s?,s:s}", "path", shown, "kind", kind,
						  "sha256", rc == 0 ? hex : NULL, "state",
						  rc == 0 ? "unchecked" : "unreadable"));
}

static int
each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct gathering *g = arg;

	(void)size;
	/* The program itself and the vDSO have no path; only files on disk are compared. */
	if (info->dlpi_name != NULL && info->dlpi_name[0] == '/') {
		add_file(g, info->dlpi_name, "library", NULL);
	}
	return 0;
}

/* What the daemon runs from now: its binary, its configuration and its libraries. */
static json_t *
gather(struct juki_integrity *in, int full)
{
	const struct juki_node_conf *conf = juki_node_conf(in->node);
	const char *cpath = juki_daemon_config_path(juki_node_daemon(in->node));
	char config[PATH_MAX];
	struct gathering l = {json_array(), json_object(), in->digests, full};
	ssize_t n;

	if (l.files == NULL || l.seen == NULL) {
		json_decref(l.files);
		json_decref(l.seen);
		return NULL;
	}
	n = readlink(SELF_EXE, in->exe, sizeof(in->exe) - 1);
	in->exe[n > 0 ? n : 0] = '\0';
	if (n <= 0) {
		snprintf(in->exe, sizeof(in->exe), "%s", SELF_EXE);
	}
	/* The image running, even when its file was replaced or removed since. */
	add_file(&l, in->exe, "binary", SELF_EXE);
	if (cpath != NULL) {
		if (realpath(cpath, config) == NULL) {
			snprintf(config, sizeof(config), "%s", cpath);
		}
		add_file(&l, config, "config", NULL);
	}
	if (conf->policy != NULL) {
		if (realpath(conf->policy, config) == NULL) {
			snprintf(config, sizeof(config), "%s", conf->policy);
		}
		add_file(&l, config, "config", NULL);
	}
	dl_iterate_phdr(each_object, &l);
	json_decref(l.seen);
	return l.files;
}

static void
problem(json_t *problems, json_t *mismatches, const char *path, const char *what)
{
	char text[PATH_MAX + 128];

	snprintf(text, sizeof(text), "%s: %s", path, what);
	json_array_append_new(problems, json_string(text));
	json_array_append_new(mismatches, json_string(path));
}

/* Whether problems holds text. */
static int
has_problem(const json_t *problems, const char *text)
{
	const json_t *p;
	size_t i;

	json_array_foreach(problems, i, p)
	{
		if (strcmp(json_string_value(p), text) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Compare files with the manifest m, marking each; problems and mismatches filled. */
static void
compare(json_t *files, const json_t *m, json_t *problems, json_t *mismatches)
{
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *kind = json_string_value(json_object_get(f, "kind"));
		const char *hex = json_string_value(json_object_get(f, "sha256"));
		const json_t *e = juki_manifest_entry(m, path);
		const char *state = "ok";
		char what[64];

		if (hex == NULL) {
			state = "unreadable";
			snprintf(what, sizeof(what), "%s cannot be read", kind);
		} else if (e == NULL) {
			state = "unlisted";
			snprintf(what, sizeof(what), "%s not in the manifest", kind);
		} else if (strcmp(json_string_value(json_object_get(e, "kind")), kind) != 0) {
			state = "differs";
			snprintf(what, sizeof(what), "listed as a %s, loaded as a %s",
				 json_string_value(json_object_get(e, "kind")), kind);
		} else if (strcmp(json_string_value(json_object_get(e, "sha256")), hex) != 0) {
			state = "differs";
			snprintf(what, sizeof(what), "%s digest differs from the manifest", kind);
		}
		json_object_set_new(f, "state", json_string(state));
		if (strcmp(state, "ok") != 0) {
			problem(problems, mismatches, path, what);
		}
	}
}

/*
 * Check; with raise, alert each problem not alerted at an earlier check.  The
 * start checks without: its alerts would come before the monitor listens for
 * alerts to forward, and the node's first tick, after it, raises them.
 */
static int
check(struct juki_node *node, int raise, int full)
{
	struct juki_integrity *in = juki_node_module(node, JUKI_MODULE_INTEGRITY);
	const struct juki_node_conf *conf;
	const char *mpath;
	json_t *files, *problems, *mismatches, *alerted, *m = NULL, *p;
	char hex[65] = "", why[512];
	size_t i;
	int rc;

	if (in == NULL) {
		return 0;
	}
	conf = juki_node_conf(node);
	mpath = conf->integrity.manifest;
	/* At most a minute between two readings of every file whole. */
	if (juki_clock_mono_ms() - in->full_ms >= FULL_EVERY_MS) {
		full = 1;
	}
	files = gather(in, full);
	if (full) {
		in->full_ms = juki_clock_mono_ms();
	}
	problems = json_array();
	mismatches = json_array();
	if (files == NULL || problems == NULL || mismatches == NULL) {
		json_decref(files);
		json_decref(problems);
		json_decref(mismatches);
		return in->ok;
	}
	in->binary[0] = in->config[0] = '\0';
	json_array_foreach(files, i, p)
	{
		const char *kind = json_string_value(json_object_get(p, "kind"));
		const char *h = json_string_value(json_object_get(p, "sha256"));

		if (h == NULL) {
			continue;
		}
		if (strcmp(kind, "binary") == 0) {
			snprintf(in->binary, sizeof(in->binary), "%s", h);
		} else if (strcmp(kind, "config") == 0 && in->config[0] == '\0') {
			snprintf(in->config, sizeof(in->config), "%s", h);
		}
	}
	in->checked = mpath != NULL;
	if (mpath != NULL) {
		rc = juki_manifest_load(mpath, &m, hex, why, sizeof(why));
		if (rc == 0) {
			rc = juki_manifest_verify(m, conf->tls.ca, conf->tls.crl,
						  juki_node_self(node)->urn, why, sizeof(why));
		}
		if (rc != 0) {
			char what[600];

			snprintf(what, sizeof(what), "manifest %s",
				 rc == -ENOENT      ? "missing"
				 : rc == JUKI_EAUTH ? "badly signed: the signature does not match"
						    : why);
			problem(problems, mismatches, mpath, what);
		} else {
			compare(files, m, problems, mismatches);
		}
	}
	alerted = json_array();
	json_array_foreach(problems, i, p)
	{
		const char *text = json_string_value(p);
		size_t n = strlen(text);

		if (has_problem(in->alerted, text)) {
			json_array_append(alerted, p);
		} else if (raise) {
			/* Forwarded alerts keep 255 bytes: a long path keeps its end, the name. */
			juki_alert(juki_node_alerts(node), "integrity-mismatch", NULL, NULL, "%s%s",
				   n > ALERT_TEXT_MAX ? "..." : "",
				   n > ALERT_TEXT_MAX ? text + n - ALERT_TEXT_MAX : text);
			json_array_append(alerted, p);
		}
	}
	json_decref(in->alerted);
	in->alerted = alerted;
	if (mpath != NULL && json_array_size(problems) == 0 && (!in->ok || in->checked_ms == 0)) {
		log_notice("integrity: %zu files (the binary, its libraries, the configuration) "
			   "match %s",
			   json_array_size(files), mpath);
	}
	/* Without a manifest nothing is compared, and nothing found wrong: ok, manifest null. */
	in->ok = json_array_size(problems) == 0;
	snprintf(in->manifest, sizeof(in->manifest), "%s", hex);
	in->checked_ms = juki_node_now_ms(node);
	json_decref(in->files);
	json_decref(in->problems);
	json_decref(in->mismatches);
	in->files = files;
	in->problems = problems;
	in->mismatches = mismatches;
	json_decref(m);
	return in->ok;
}

int
juki_integrity_check(struct juki_node *node)
{
	return check(node, 1, 0);
}

static json_t *
hex_or_null(const char *hex)
{
	return hex[0] != '\0' ? json_string(hex) : json_null();
}

json_t *
juki_integrity_heartbeat(struct juki_node *node)
{
	struct juki_integrity *in = juki_node_module(node, JUKI_MODULE_INTEGRITY);

	if (in == NULL) {
		return NULL;
	}
	juki_integrity_check(node);
	return json_pack("{s:s,s:o,s:o,s:o,s:b,s:O}", "version", JUKI_VERSION, "binary",
			 hex_or_null(in->binary), "config", hex_or_null(in->config), "manifest",
			 hex_or_null(in->manifest), "ok", in->ok, "mismatches", in->mismatches);
}

static int
hex_or_null_valid(const json_t *v)
{
	const char *s = json_string_value(v);

	if (json_is_null(v)) {
		return 1;
	}
	if (s == NULL || json_string_length(v) != 64) {
		return 0;
	}
	for (size_t i = 0; i < 64; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int
juki_integrity_member_check(const json_t *v, char *why, size_t whylen)
{
	static const char *const digests[] = {"binary", "config", "manifest"};
	const json_t *x, *list;
	size_t i;

	if (!json_is_object(v)) {
		snprintf(why, whylen, "integrity: an object");
		return JUKI_EINVAL;
	}
	x = json_object_get(v, "version");
	if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 32) {
		snprintf(why, whylen, "integrity.version: 1..32 bytes");
		return JUKI_EINVAL;
	}
	for (i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		if (!hex_or_null_valid(json_object_get(v, digests[i]))) {
			snprintf(why, whylen, "integrity.%s: 64 hex digits or null", digests[i]);
			return JUKI_EINVAL;
		}
	}
	if (!json_is_boolean(json_object_get(v, "ok"))) {
		snprintf(why, whylen, "integrity.ok: true or false");
		return JUKI_EINVAL;
	}
	list = json_object_get(v, "mismatches");
	if (!json_is_array(list) || json_array_size(list) > 1024) {
		snprintf(why, whylen, "integrity.mismatches: an array of at most 1024 paths");
		return JUKI_EINVAL;
	}
	json_array_foreach(list, i, x)
	{
		if (!json_is_string(x) || json_string_length(x) == 0 ||
		    json_string_length(x) > 4096 ||
		    strlen(json_string_value(x)) != json_string_length(x)) {
			snprintf(why, whylen, "integrity.mismatches[%zu]: a path", i);
			return JUKI_EINVAL;
		}
	}
	return 0;
}

json_t *
juki_integrity_status(struct juki_node *node)
{
	struct juki_integrity *in = juki_node_module(node, JUKI_MODULE_INTEGRITY);
	const struct juki_integrity_conf *c;
	char when[32] = "";

	if (in == NULL) {
		return NULL;
	}
	c = &juki_node_conf(node)->integrity;
	juki_clock_format(in->checked_ms, when, sizeof(when));
	return json_pack("{s:s,s:s?,s:b,s:b,s:s,s:o,s:o,s:o,s:O,s:O}", "state",
			 !in->checked ? "unchecked"
			 : in->ok     ? "ok"
				      : "mismatch",
			 "manifest", c->manifest, "enforce", c->enforce, "ok", in->ok, "checked",
			 when, "binary", hex_or_null(in->binary), "config", hex_or_null(in->config),
			 "manifest_sha256", hex_or_null(in->manifest), "mismatches", in->mismatches,
			 "problems", in->problems);
}

int
juki_integrity_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_integrity *in = juki_node_module(node, JUKI_MODULE_INTEGRITY);
	const struct juki_node_conf *conf = juki_node_conf(node);
	json_t *st;

	(void)args;
	if (in == NULL) {
		return juki_ctl_fail(err, "internal", "integrity is not running");
	}
	check(node, 1, 1);
	st = juki_integrity_status(node);
	if (st == NULL) {
		return JUKI_ENOMEM;
	}
	json_object_set_new(st, "node", json_string(juki_node_self(node)->urn));
	json_object_set_new(st, "daemon",
			    json_string(juki_daemon_ops_of(juki_node_daemon(node))->name));
	json_object_set_new(st, "version", json_string(JUKI_VERSION));
	json_object_set(st, "files", in->files);
	json_object_set_new(st, "tls",
			    json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?}", "cert", conf->tls.cert, "key",
				      conf->tls.key, "pin_file", conf->tls.pin_file, "ca",
				      conf->tls.ca, "crl", conf->tls.crl));
	*result = st;
	return 0;
}

int
juki_integrity_start(struct juki_node *node, char *err, size_t errlen)
{
	struct juki_integrity *in = calloc(1, sizeof(*in));
	int rc;

	if (in == NULL || (in->problems = json_array()) == NULL ||
	    (in->digests = json_object()) == NULL || (in->mismatches = json_array()) == NULL ||
	    (in->files = json_array()) == NULL) {
		rc = JUKI_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	in->node = node;
	if ((rc = juki_node_module_set(node, JUKI_MODULE_INTEGRITY, in)) != 0) {
		snprintf(err, errlen, "integrity: %s", juki_strerror(rc));
		goto fail;
	}
	check(node, 0, 1);
	if (juki_node_conf(node)->integrity.enforce && !in->ok) {
		size_t n = json_array_size(in->problems);

		snprintf(err, errlen, "integrity.enforce: %s%s",
			 n > 0 ? json_string_value(json_array_get(in->problems, 0))
			       : "nothing was checked",
			 n > 1 ? " (and more: see the alerts)" : "");
		juki_integrity_stop(node);
		return JUKI_EAUTH;
	}
	return 0;
fail:
	if (in != NULL) {
		json_decref(in->digests);
		json_decref(in->alerted);
		json_decref(in->problems);
		json_decref(in->mismatches);
		json_decref(in->files);
	}
	free(in);
	return rc;
}

void
juki_integrity_stop(struct juki_node *node)
{
	struct juki_integrity *in = juki_node_module(node, JUKI_MODULE_INTEGRITY);

	if (in == NULL) {
		return;
	}
	juki_node_module_clear(node, JUKI_MODULE_INTEGRITY, in);
	json_decref(in->files);
	json_decref(in->problems);
	json_decref(in->mismatches);
	json_decref(in->alerted);
	json_decref(in->digests);
	free(in);
}
