/*
 * Fuzz target: YAML configuration (juki_conf_load_string) and the flow
 * policy (juki_policy_load_string).  Each input is loaded three ways: with
 * the gateway's real key table (fwgate_conf_keys), with a table here that
 * adds what the gateway's lacks (strings, booleans, a list default, an
 * "at least" bound, nested sections, check callbacks), and as a policy.
 * A load either fills every field within its table's rules, or fails with
 * a message naming the file and leaves the struct as zeroed as it was.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "gateway.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/policy.h"

#define NAME    "fuzz.yaml"
#define BASEDIR "/etc/juki"

struct extra_item {
	char *name;
	bool enabled;
	int64_t weight;
};

struct extra_inner {
	char *deep;
	int mode;
};

struct extra_outer {
	struct extra_inner inner;
	int64_t limit;
	bool strict;
};

struct extra_conf {
	char *label;
	bool verbose;
	int64_t retries;
	int64_t window;
	int64_t quota;
	char **tags;
	size_t ntags;
	char **peers;
	size_t npeers;
	char **files;
	size_t nfiles;
	struct extra_item *items;
	size_t nitems;
	struct extra_outer outer;
};

static const char *const modes[] = {"off", "read", "write", NULL};

static int
check_item(const void *section, const char **blame, char *why, size_t len)
{
	const struct extra_item *it = section;

	if (it->enabled && it->weight == 0) {
		*blame = "weight";
		snprintf(why, len, "an enabled item needs a weight");
		return -1;
	}
	if (strcmp(it->name, "nobody") == 0) {
		snprintf(why, len, "reserved name");
		return -1;
	}
	return 0;
}

static int
check_outer(const void *section, const char **blame, char *why, size_t len)
{
	const struct extra_outer *o = section;

	if (o->strict && o->inner.mode == 2 && o->limit > 100) {
		*blame = "limit";
		snprintf(why, len, "strict writers are limited to 100");
		return -1;
	}
	return 0;
}

static const struct juki_conf_key item_keys[] = {
    JUKI_CONF_SCALAR(struct extra_item, name, "name", JUKI_CONF_STRING, NULL, JUKI_CONF_REQUIRED, 0,
		     0, "Name."),
    JUKI_CONF_SCALAR(struct extra_item, enabled, "enabled", JUKI_CONF_BOOL, "yes", 0, 0, 0, "On."),
    JUKI_CONF_SCALAR(struct extra_item, weight, "weight", JUKI_CONF_INT, "1", 0, -100, 100,
		     "Weight."),
    JUKI_CONF_END,
};

static const struct juki_conf_key inner_keys[] = {
    JUKI_CONF_SCALAR(struct extra_inner, deep, "deep", JUKI_CONF_STRING, "", 0, 0, 0, "Text."),
    JUKI_CONF_ENUMKEY(struct extra_inner, mode, "mode", modes, "read", 0, "Mode."),
    JUKI_CONF_END,
};

static const struct juki_conf_key outer_keys[] = {
    JUKI_CONF_SECTIONKEY(struct extra_outer, inner, "inner", inner_keys, "Inner section."),
    JUKI_CONF_SCALAR(struct extra_outer, limit, "limit", JUKI_CONF_INT, "10", 0, 1, 0,
		     "At least 1."),
    JUKI_CONF_SCALAR(struct extra_outer, strict, "strict", JUKI_CONF_BOOL, "off", 0, 0, 0,
		     "Strict."),
    JUKI_CONF_END,
};

static const struct juki_conf_key extra_keys[] = {
    JUKI_CONF_SCALAR(struct extra_conf, label, "label", JUKI_CONF_STRING, "juki", 0, 0, 0,
		     "Label."),
    JUKI_CONF_SCALAR(struct extra_conf, verbose, "verbose", JUKI_CONF_BOOL, NULL, 0, 0, 0,
		     "Verbose."),
    JUKI_CONF_SCALAR(struct extra_conf, retries, "retries", JUKI_CONF_INT, "3", 0, -5, 5,
		     "Retries."),
    JUKI_CONF_SCALAR(struct extra_conf, window, "window", JUKI_CONF_DURATION, "250ms", 0, 0, 0,
		     "Window."),
    JUKI_CONF_SCALAR(struct extra_conf, quota, "quota", JUKI_CONF_SIZE, "64KiB", 0, 1024,
		     INT64_C(1) << 40, "Quota."),
    {
	.name = "tags",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct extra_conf, tags),
	.def = "[a, 'b c']",
	.max = 8,
	.elem_type = JUKI_CONF_STRING,
	.elem_size = sizeof(char *),
	.count_offset = offsetof(struct extra_conf, ntags),
	.help = "Tags.",
    },
    JUKI_CONF_SCALARLIST(struct extra_conf, peers, npeers, "peers", JUKI_CONF_IDENT, 0, 0, 4,
			 "Peers."),
    JUKI_CONF_SCALARLIST(struct extra_conf, files, nfiles, "files", JUKI_CONF_PATH, 0, 0, 0,
			 "Files."),
    {
	.name = "items",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct extra_conf, items),
	.sub = item_keys,
	.elem_size = sizeof(struct extra_item),
	.count_offset = offsetof(struct extra_conf, nitems),
	.help = "Items.",
	.check = check_item,
    },
    {
	.name = "outer",
	.type = JUKI_CONF_SECTION,
	.offset = offsetof(struct extra_conf, outer),
	.sub = outer_keys,
	.help = "Outer section.",
	.check = check_outer,
    },
    JUKI_CONF_END,
};

static int
zeroed(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		if (b[i] != 0) {
			return 0;
		}
	}
	return 1;
}

static int
ident_ok(const char *urn)
{
	struct juki_ident ident;

	return urn != NULL && juki_ident_parse(urn, &ident) == 0 && strcmp(ident.urn, urn) == 0;
}

static int
addr_ok(const char *addr)
{
	char host[256];
	int port = 0;

	return addr != NULL && juki_conf_split_addr(addr, host, sizeof(host), &port) == 0 &&
	       port >= 1 && port <= 65535;
}

/* Relative paths are resolved against BASEDIR: every path comes out absolute. */
static int
path_ok(const char *path)
{
	return path != NULL && path[0] == '/';
}

/* A failed load: a message that names the file, and nothing left to free. */
static void
check_failed(int rc, const char *err, const void *conf, size_t len)
{
	FUZZ_ASSERT(rc == JUKI_ECONFIG || rc == JUKI_ENOMEM);
	FUZZ_ASSERT(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
	FUZZ_ASSERT(zeroed(conf, len));
}

static void
check_fwgate(const struct fwgate_conf *c)
{
	FUZZ_ASSERT(ident_ok(c->node));
	FUZZ_ASSERT(path_ok(c->tls.cert) && path_ok(c->tls.key) && path_ok(c->tls.ca));
	FUZZ_ASSERT(c->tls.crl == NULL || path_ok(c->tls.crl));
	FUZZ_ASSERT(c->nlisten >= 1 && c->nlisten <= 16 && c->listen != NULL);
	for (size_t i = 0; i < c->nlisten; i++) {
		FUZZ_ASSERT(addr_ok(c->listen[i]));
	}
	FUZZ_ASSERT(path_ok(c->policy) && path_ok(c->control));
	FUZZ_ASSERT(c->log_level >= 0 && c->log_level <= 4);
	FUZZ_ASSERT(c->ndirectory <= 100000 && (c->ndirectory == 0) == (c->directory == NULL));
	for (size_t i = 0; i < c->ndirectory; i++) {
		FUZZ_ASSERT(ident_ok(c->directory[i].node) && addr_ok(c->directory[i].address));
	}
	FUZZ_ASSERT(c->limits.per_address >= 1 && c->limits.per_address <= 100000);
	FUZZ_ASSERT(c->limits.per_node >= 1 && c->limits.per_node <= 100000);
	FUZZ_ASSERT(c->limits.handshake_timeout >= 100 && c->limits.handshake_timeout <= 600000);
	FUZZ_ASSERT(c->limits.line_timeout >= 100 && c->limits.line_timeout <= 600000);
	FUZZ_ASSERT(c->limits.connect_timeout >= 100 && c->limits.connect_timeout <= 600000);
	FUZZ_ASSERT(c->limits.idle_timeout >= 1000 && c->limits.idle_timeout <= JUKI_DAY_MS);
	FUZZ_ASSERT(c->limits.buffer >= 16384 && c->limits.buffer <= 268435456);
}

static void
check_extra(const struct extra_conf *c)
{
	char why[128];
	const char *blame;

	FUZZ_ASSERT(c->label != NULL);
	FUZZ_ASSERT(c->retries >= -5 && c->retries <= 5);
	FUZZ_ASSERT(c->window >= 0);
	FUZZ_ASSERT(c->quota >= 1024 && c->quota <= (INT64_C(1) << 40));
	FUZZ_ASSERT(c->ntags <= 8 && (c->ntags == 0) == (c->tags == NULL));
	for (size_t i = 0; i < c->ntags; i++) {
		FUZZ_ASSERT(c->tags[i] != NULL);
	}
	FUZZ_ASSERT(c->npeers <= 4 && (c->npeers == 0) == (c->peers == NULL));
	for (size_t i = 0; i < c->npeers; i++) {
		FUZZ_ASSERT(ident_ok(c->peers[i]));
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		FUZZ_ASSERT(path_ok(c->files[i]));
	}
	for (size_t i = 0; i < c->nitems; i++) {
		FUZZ_ASSERT(c->items[i].name != NULL);
		FUZZ_ASSERT(c->items[i].weight >= -100 && c->items[i].weight <= 100);
		FUZZ_ASSERT(check_item(&c->items[i], &blame, why, sizeof(why)) == 0);
	}
	FUZZ_ASSERT(c->outer.inner.deep != NULL);
	FUZZ_ASSERT(c->outer.inner.mode >= 0 && c->outer.inner.mode <= 2);
	FUZZ_ASSERT(c->outer.limit >= 1);
	FUZZ_ASSERT(check_outer(&c->outer, &blame, why, sizeof(why)) == 0);
}

/*
 * Whatever the rules say, a policy that loads never lets muni leave a CS or
 * reach a pref or jlis node (第3-3(3)).
 */
static void
check_policy(const struct juki_policy *p)
{
	static const char *const urns[] = {
	    "urn:juki:cs:131016",   "urn:juki:cs:271004",   "urn:juki:pref:13",
	    "urn:juki:pref:27",     "urn:juki:jlis:0",      "urn:juki:authlink:0",
	    "urn:juki:authlink:13", "urn:juki:fwgate:east", "urn:juki:agency:nta",
	    "urn:juki:ca:root",
	};
	struct juki_ident ids[sizeof(urns) / sizeof(urns[0])];
	char why[256];

	for (size_t i = 0; i < sizeof(urns) / sizeof(urns[0]); i++) {
		FUZZ_ASSERT(juki_ident_parse(urns[i], &ids[i]) == 0);
	}
	for (size_t s = 0; s < sizeof(ids) / sizeof(ids[0]); s++) {
		for (size_t d = 0; d < sizeof(ids) / sizeof(ids[0]); d++) {
			for (int svc = JUKI_SVC_MUNI; svc <= JUKI_SVC_MONITOR; svc++) {
				int rc = juki_policy_check(
				    p, &ids[s], &ids[d], (enum juki_service)svc, why, sizeof(why));

				FUZZ_ASSERT(rc == 0 || (rc == JUKI_EPOLICY && why[0] != '\0'));
				if (rc == 0 && svc == JUKI_SVC_MUNI) {
					FUZZ_ASSERT(ids[s].kind == JUKI_KIND_CS);
					FUZZ_ASSERT(ids[d].kind != JUKI_KIND_PREF &&
						    ids[d].kind != JUKI_KIND_JLIS);
				}
			}
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fwgate_conf fc;
	struct extra_conf ec;
	struct juki_policy *policy = NULL;
	const char *text = (const char *)data;
	char err[1024];
	int rc;

	memset(&fc, 0, sizeof(fc));
	rc = juki_conf_load_string(NAME, BASEDIR, text, size, fwgate_conf_keys, &fc, err,
				   sizeof(err));
	if (rc == 0) {
		check_fwgate(&fc);
		juki_conf_free(fwgate_conf_keys, &fc);
		FUZZ_ASSERT(zeroed(&fc, sizeof(fc)));
	} else {
		check_failed(rc, err, &fc, sizeof(fc));
	}

	memset(&ec, 0, sizeof(ec));
	rc = juki_conf_load_string(NAME, BASEDIR, text, size, extra_keys, &ec, err, sizeof(err));
	if (rc == 0) {
		check_extra(&ec);
		juki_conf_free(extra_keys, &ec);
		FUZZ_ASSERT(zeroed(&ec, sizeof(ec)));
	} else {
		check_failed(rc, err, &ec, sizeof(ec));
	}

	rc = juki_policy_load_string(NAME, text, size, &policy, err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(policy != NULL);
		check_policy(policy);
	} else {
		FUZZ_ASSERT(policy == NULL);
		FUZZ_ASSERT(rc == JUKI_ECONFIG || rc == JUKI_ENOMEM);
		FUZZ_ASSERT(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
	}
	juki_policy_free(policy);
	return 0;
}
