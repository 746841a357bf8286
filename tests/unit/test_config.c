#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"

#include "helpers.h"

/* ---- the table the tests load against ---- */

enum { LVL_DEBUG, LVL_INFO, LVL_WARN, LVL_ERROR };
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

struct tls_conf {
	char *cert;
	char *key;
	int64_t handshake;
	bool verify;
};

struct inner_conf {
	int64_t depth;
	char *label;
};

struct outer_conf {
	struct inner_conf inner;
	bool on;
};

struct gw_conf {
	char *address;
	char *peer;
	int64_t weight;
};

struct tconf {
	char *name;
	char *self;
	char *listen;
	int64_t workers;
	int64_t offset;
	bool debug;
	int64_t timeout;
	int64_t frame_max;
	int level;
	char *state_dir;
	struct tls_conf tls;
	struct outer_conf outer;
	char **peers;
	size_t npeers;
	char **tags;
	size_t ntags;
	struct gw_conf *gateways;
	size_t ngateways;
};

static const struct juki_conf_key tls_keys[] = {
    JUKI_CONF_SCALAR(struct tls_conf, cert, "cert", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "Certificate chain, PEM."),
    JUKI_CONF_SCALAR(struct tls_conf, key, "key", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "Private key, PEM."),
    JUKI_CONF_SCALAR(struct tls_conf, handshake, "handshake", JUKI_CONF_DURATION, "5s", 0, 0, 0,
		     "Handshake timeout."),
    JUKI_CONF_SCALAR(struct tls_conf, verify, "verify", JUKI_CONF_BOOL, "true", 0, 0, 0,
		     "Verify the peer."),
    JUKI_CONF_END,
};

static const struct juki_conf_key inner_keys[] = {
    JUKI_CONF_SCALAR(struct inner_conf, depth, "depth", JUKI_CONF_INT, "3", 0, 0, 0, "Depth."),
    JUKI_CONF_SCALAR(struct inner_conf, label, "label", JUKI_CONF_STRING, NULL, 0, 0, 0, "Label."),
    JUKI_CONF_END,
};

static const struct juki_conf_key outer_keys[] = {
    JUKI_CONF_SECTIONKEY(struct outer_conf, inner, "inner", inner_keys, "Inner section."),
    JUKI_CONF_SCALAR(struct outer_conf, on, "on", JUKI_CONF_BOOL, "yes", 0, 0, 0, "Switch."),
    JUKI_CONF_END,
};

static const struct juki_conf_key gw_keys[] = {
    JUKI_CONF_SCALAR(struct gw_conf, address, "address", JUKI_CONF_ADDR, NULL, JUKI_CONF_REQUIRED,
		     0, 0, "Gateway endpoint."),
    JUKI_CONF_SCALAR(struct gw_conf, peer, "peer", JUKI_CONF_IDENT, NULL, 0, 0, 0,
		     "Gateway identity."),
    JUKI_CONF_SCALAR(struct gw_conf, weight, "weight", JUKI_CONF_INT, "1", 0, 1, 100,
		     "Preference."),
    JUKI_CONF_END,
};

static const struct juki_conf_key keys[] = {
    JUKI_CONF_SCALAR(struct tconf, name, "name", JUKI_CONF_STRING, NULL, 0, 0, 0, "Name."),
    JUKI_CONF_SCALAR(struct tconf, self, "self", JUKI_CONF_IDENT, NULL, 0, 0, 0, "Identity."),
    JUKI_CONF_SCALAR(struct tconf, listen, "listen", JUKI_CONF_ADDR, "[::1]:7000", 0, 0, 0,
		     "Listen address."),
    JUKI_CONF_SCALAR(struct tconf, workers, "workers", JUKI_CONF_INT, "4", JUKI_CONF_RESTART, 1, 64,
		     "Workers."),
    JUKI_CONF_SCALAR(struct tconf, offset, "offset", JUKI_CONF_INT, "0", 0, -10, 10, "Offset."),
    JUKI_CONF_SCALAR(struct tconf, debug, "debug", JUKI_CONF_BOOL, "no", 0, 0, 0, "Debug."),
    JUKI_CONF_SCALAR(struct tconf, timeout, "timeout", JUKI_CONF_DURATION, "10s", 0, 1000,
		     3600 * 1000, "Timeout."),
    JUKI_CONF_SCALAR(struct tconf, frame_max, "frame_max", JUKI_CONF_SIZE, "1MiB", 0, 1024,
		     64 << 20, "Frame limit."),
    JUKI_CONF_ENUMKEY(struct tconf, level, "level", levels, "info", 0, "Log level."),
    JUKI_CONF_SCALAR(struct tconf, state_dir, "state_dir", JUKI_CONF_PATH, "state", 0, 0, 0,
		     "State directory."),
    JUKI_CONF_SECTIONKEY(struct tconf, tls, "tls", tls_keys, "TLS."),
    JUKI_CONF_SECTIONKEY(struct tconf, outer, "outer", outer_keys, "Outer section."),
    JUKI_CONF_SCALARLIST(struct tconf, peers, npeers, "peers", JUKI_CONF_IDENT, 0, 0, 4, "Peers."),
    {
	.name = "tags",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct tconf, tags),
	.def = "[a, b]",
	.elem_type = JUKI_CONF_STRING,
	.elem_size = sizeof(char *),
	.count_offset = offsetof(struct tconf, ntags),
	.help = "Tags.",
    },
    JUKI_CONF_SECTIONLIST(struct tconf, gateways, ngateways, "gateways", struct gw_conf, gw_keys, 0,
			  0, 3, "Gateways."),
    JUKI_CONF_END,
};

#define BASE "tls:\n  cert: c.pem\n  key: k.pem\n"

static char err[1024];

static int
load(const char *text, struct tconf *c)
{
	memset(c, 0, sizeof(*c));
	return juki_conf_load_string("t.yaml", "/etc/juki", text, strlen(text), keys, c, err,
				     sizeof(err));
}

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0) {
			return false;
		}
	}
	return true;
}

/* A failed load reports exactly `want` and leaves nothing behind. */
static void
expect_error(const char *text, const char *want)
{
	struct tconf c;
	int rc = load(text, &c);

	if (rc != JUKI_ECONFIG || strcmp(err, want) != 0) {
		print_error("document:\n%s\nwant: %s\ngot:  %s (rc %d)\n", text, want, err, rc);
		fail();
	}
	assert_true(all_zero(&c, sizeof(c)));
}

/* ---- loading ---- */

static void
test_defaults(void **state)
{
	struct tconf c;

	(void)state;
	assert_int_equal(load(BASE, &c), 0);
	assert_string_equal(err, "");
	assert_null(c.name);
	assert_null(c.self);
	assert_string_equal(c.listen, "[::1]:7000");
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.offset, 0);
	assert_false(c.debug);
	assert_int_equal(c.timeout, 10000);
	assert_int_equal(c.frame_max, 1 << 20);
	assert_int_equal(c.level, LVL_INFO);
	assert_string_equal(c.state_dir, "/etc/juki/state");
	assert_string_equal(c.tls.cert, "/etc/juki/c.pem");
	assert_string_equal(c.tls.key, "/etc/juki/k.pem");
	assert_int_equal(c.tls.handshake, 5000);
	assert_true(c.tls.verify);
	/* an absent section still gets its sub-keys' defaults, nested too */
	assert_int_equal(c.outer.inner.depth, 3);
	assert_null(c.outer.inner.label);
	assert_true(c.outer.on);
	assert_null(c.peers);
	assert_int_equal(c.npeers, 0);
	/* a list default is a YAML flow sequence */
	assert_int_equal(c.ntags, 2);
	assert_string_equal(c.tags[0], "a");
	assert_string_equal(c.tags[1], "b");
	assert_null(c.gateways);
	assert_int_equal(c.ngateways, 0);
	juki_conf_free(keys, &c);
	assert_true(all_zero(&c, sizeof(c)));
	/* free is safe twice and on a zeroed struct */
	juki_conf_free(keys, &c);
}

static void
test_all_values(void **state)
{
	struct tconf c;
	const char *doc = "name: \"千代田区 役所 \\\"本庁\\\"\"\n"
			  "self: urn:juki:cs:131016\n"
			  "listen: gw1.pref13.juki:7443\n"
			  "workers: 64\n"
			  "offset: -10\n"
			  "debug: On\n"
			  "timeout: 1h\n"
			  "frame_max: 64MiB\n"
			  "level: error\n"
			  "state_dir: /var/lib/juki\n"
			  "tls:\n"
			  "  cert: certs/./node.pem\n"
			  "  key: ../keys//node.key\n"
			  "  handshake: 250ms\n"
			  "  verify: off\n"
			  "outer:\n"
			  "  inner:\n"
			  "    depth: -7\n"
			  "    label: deep\n"
			  "  on: false\n"
			  "peers:\n"
			  "  - urn:juki:pref:13\n"
			  "  - urn:juki:jlis:0\n"
			  "tags: []\n"
			  "gateways:\n"
			  "  - address: \"[2001:db8::1]:7000\"\n"
			  "    peer: urn:juki:fwgate:east\n"
			  "    weight: 100\n"
			  "  - address: 10.0.0.2:7000\n";

	(void)state;
	assert_int_equal(load(doc, &c), 0);
	assert_string_equal(c.name, "千代田区 役所 \"本庁\"");
	assert_string_equal(c.self, "urn:juki:cs:131016");
	assert_string_equal(c.listen, "gw1.pref13.juki:7443");
	assert_int_equal(c.workers, 64);
	assert_int_equal(c.offset, -10);
	assert_true(c.debug);
	assert_int_equal(c.timeout, 3600 * 1000);
	assert_int_equal(c.frame_max, 64 << 20);
	assert_int_equal(c.level, LVL_ERROR);
	assert_string_equal(c.state_dir, "/var/lib/juki");
	assert_string_equal(c.tls.cert, "/etc/juki/certs/node.pem");
	/* ".." is kept: only the file system knows where it leads through symlinks */
	assert_string_equal(c.tls.key, "/etc/juki/../keys/node.key");
	assert_int_equal(c.tls.handshake, 250);
	assert_false(c.tls.verify);
	assert_int_equal(c.outer.inner.depth, -7);
	assert_string_equal(c.outer.inner.label, "deep");
	assert_false(c.outer.on);
	assert_int_equal(c.npeers, 2);
	assert_string_equal(c.peers[0], "urn:juki:pref:13");
	assert_string_equal(c.peers[1], "urn:juki:jlis:0");
	/* an empty list is present: the default does not apply */
	assert_int_equal(c.ntags, 0);
	assert_null(c.tags);
	assert_int_equal(c.ngateways, 2);
	assert_string_equal(c.gateways[0].address, "[2001:db8::1]:7000");
	assert_string_equal(c.gateways[0].peer, "urn:juki:fwgate:east");
	assert_int_equal(c.gateways[0].weight, 100);
	assert_string_equal(c.gateways[1].address, "10.0.0.2:7000");
	assert_null(c.gateways[1].peer);
	/* defaults apply inside each element of a list of sections */
	assert_int_equal(c.gateways[1].weight, 1);
	juki_conf_free(keys, &c);
	assert_true(all_zero(&c, sizeof(c)));
}

static void
test_null_and_strings(void **state)
{
	struct tconf c;

	(void)state;
	/* empty, ~ and null mean absent: the default applies */
	assert_int_equal(load(BASE "workers:\nlevel: ~\ntimeout: null\nname:\n", &c), 0);
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.level, LVL_INFO);
	assert_int_equal(c.timeout, 10000);
	assert_null(c.name);
	juki_conf_free(keys, &c);
	/* a null section is an absent one */
	assert_int_equal(load(BASE "outer:\n", &c), 0);
	assert_int_equal(c.outer.inner.depth, 3);
	juki_conf_free(keys, &c);
	/* quoted empty is an empty string, quoted "null" is text */
	assert_int_equal(load(BASE "name: ''\nouter: {inner: {label: \"null\"}}\n", &c), 0);
	assert_string_equal(c.name, "");
	assert_string_equal(c.outer.inner.label, "null");
	juki_conf_free(keys, &c);
	/* strings are stored exactly, spaces and all */
	assert_int_equal(load(BASE "name: \"  two  spaces \\t\"\n", &c), 0);
	assert_string_equal(c.name, "  two  spaces \t");
	juki_conf_free(keys, &c);
	/* booleans */
	assert_int_equal(load(BASE "debug: YES\n", &c), 0);
	assert_true(c.debug);
	juki_conf_free(keys, &c);
	assert_int_equal(load(BASE "debug: True\n", &c), 0);
	assert_true(c.debug);
	juki_conf_free(keys, &c);
	/* bounds are inclusive */
	assert_int_equal(load(BASE "workers: 1\ntimeout: 1s\nframe_max: 1KiB\noffset: 10\n", &c),
			 0);
	assert_int_equal(c.workers, 1);
	assert_int_equal(c.timeout, 1000);
	assert_int_equal(c.frame_max, 1024);
	assert_int_equal(c.offset, 10);
	juki_conf_free(keys, &c);
	/* a bare number of seconds */
	assert_int_equal(load(BASE "timeout: 90\n", &c), 0);
	assert_int_equal(c.timeout, 90000);
	juki_conf_free(keys, &c);
}

static void
test_value_errors(void **state)
{
	(void)state;
	expect_error(BASE "workers: abc\n", "t.yaml:4:10: workers: \"abc\" is not an integer");
	expect_error(BASE "workers: 1.5\n", "t.yaml:4:10: workers: \"1.5\" is not an integer");
	expect_error(BASE "workers: 0x10\n", "t.yaml:4:10: workers: \"0x10\" is not an integer");
	expect_error(BASE "workers: +3\n", "t.yaml:4:10: workers: \"+3\" is not an integer");
	expect_error(BASE "workers: 99999999999999999999\n",
		     "t.yaml:4:10: workers: \"99999999999999999999\" is not an integer");
	expect_error(BASE "workers: 0\n", "t.yaml:4:10: workers: must be between 1 and 64, not 0");
	expect_error(BASE "workers: 65\n",
		     "t.yaml:4:10: workers: must be between 1 and 64, not 65");
	expect_error(BASE "offset: -11\n",
		     "t.yaml:4:9: offset: must be between -10 and 10, not -11");
	expect_error(BASE "debug: maybe\n",
		     "t.yaml:4:8: debug: \"maybe\" is not a boolean (true/false, yes/no, on/off)");
	expect_error(BASE "debug: 1\n",
		     "t.yaml:4:8: debug: \"1\" is not a boolean (true/false, yes/no, on/off)");
	expect_error(
	    BASE "timeout: 10x\n",
	    "t.yaml:4:10: timeout: \"10x\" is not a duration (like 250ms, 10s, 5m, 2h, 3d, 5y)");
	expect_error(
	    BASE "timeout: -5s\n",
	    "t.yaml:4:10: timeout: \"-5s\" is not a duration (like 250ms, 10s, 5m, 2h, 3d, 5y)");
	expect_error(BASE "timeout: 2h\n",
		     "t.yaml:4:10: timeout: must be between 1s and 1h, not 2h");
	expect_error(BASE "timeout: 999ms\n",
		     "t.yaml:4:10: timeout: must be between 1s and 1h, not 999ms");
	expect_error(BASE "frame_max: 1q\n",
		     "t.yaml:4:12: frame_max: \"1q\" is not a size (like 512, 64KiB, 1MiB, 2GiB)");
	expect_error(BASE "frame_max: 65MiB\n",
		     "t.yaml:4:12: frame_max: must be between 1KiB and 64MiB, not 65MiB");
	expect_error(BASE "frame_max: 1023\n",
		     "t.yaml:4:12: frame_max: must be between 1KiB and 64MiB, not 1023");
	expect_error(BASE "level: verbose\n",
		     "t.yaml:4:8: level: \"verbose\" is not one of: debug, info, warn, error");
	expect_error(BASE "level: INFO\n",
		     "t.yaml:4:8: level: \"INFO\" is not one of: debug, info, warn, error");
	expect_error(
	    BASE "listen: nohost\n",
	    "t.yaml:4:9: listen: \"nohost\" is not host:port or [v6]:port with port 1..65535");
	expect_error(
	    BASE "listen: h:0\n",
	    "t.yaml:4:9: listen: \"h:0\" is not host:port or [v6]:port with port 1..65535");
	expect_error(
	    BASE "listen: '::1:80'\n",
	    "t.yaml:4:9: listen: \"::1:80\" is not host:port or [v6]:port with port 1..65535");
	expect_error(BASE "self: urn:juki:cs:131017\n",
		     "t.yaml:4:7: self: \"urn:juki:cs:131017\" is not a valid urn:juki identity");
	expect_error(BASE "self: cs:131016\n",
		     "t.yaml:4:7: self: \"cs:131016\" is not a valid urn:juki identity");
	expect_error(BASE "name: \"a\\0b\"\n", "t.yaml:4:7: name: contains a NUL character");
	expect_error(BASE "timeout: \"10s\\0junk\"\n",
		     "t.yaml:4:10: timeout: contains a NUL character");
	expect_error(BASE "state_dir: ''\n", "t.yaml:4:12: state_dir: empty path");
	/* a long bad value is quoted only in part */
	expect_error(
	    BASE "level: "
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaa\n",
	    "t.yaml:4:8: level: "
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not one of: "
	    "debug, info, warn, error");
}

static void
test_kind_errors(void **state)
{
	(void)state;
	expect_error(BASE "name: {a: 1}\n", "t.yaml:4:7: name: expected a string, found a mapping");
	expect_error(BASE "name: [a]\n", "t.yaml:4:7: name: expected a string, found a sequence");
	expect_error(BASE "workers:\n  - 1\n",
		     "t.yaml:5:3: workers: expected an integer, found a sequence");
	expect_error("tls: x\n", "t.yaml:1:6: tls: expected a mapping, found a scalar");
	expect_error("tls: [a]\n", "t.yaml:1:6: tls: expected a mapping, found a sequence");
	expect_error(BASE "peers: urn:juki:jlis:0\n",
		     "t.yaml:4:8: peers: expected a sequence, found a scalar");
	expect_error(BASE "peers:\n  - {a: b}\n",
		     "t.yaml:5:5: peers[0]: expected an identity, found a mapping");
	expect_error(BASE "gateways:\n  - x\n",
		     "t.yaml:5:5: gateways[0]: expected a mapping, found a scalar");
	expect_error(BASE "gateways:\n  -\n",
		     "t.yaml:5:4: gateways[0]: expected a mapping, found nothing");
	expect_error(BASE "outer:\n  inner: 5\n",
		     "t.yaml:5:10: outer.inner: expected a mapping, found a scalar");
}

static void
test_lists(void **state)
{
	(void)state;
	expect_error(BASE "peers: [urn:juki:jlis:0, bad]\n",
		     "t.yaml:4:26: peers[1]: \"bad\" is not a valid urn:juki identity");
	expect_error(BASE "peers: [~]\n", "t.yaml:4:9: peers[0]: empty element");
	expect_error(BASE "peers: [urn:juki:jlis:0, urn:juki:jlis:0, urn:juki:jlis:0, "
			  "urn:juki:jlis:0, urn:juki:jlis:0]\n",
		     "t.yaml:4:8: peers: needs 0..4 elements, found 5");
	expect_error(
	    BASE "gateways:\n  - address: gw1:7000\n  - address: gw2\n",
	    "t.yaml:6:14: gateways[1].address: \"gw2\" is not host:port or [v6]:port with port "
	    "1..65535");
	expect_error(BASE "gateways:\n  - weight: 2\n",
		     "t.yaml:5:5: gateways[0].address: missing required key");
	expect_error(BASE "gateways:\n  - address: gw1:7000\n    weight: 101\n",
		     "t.yaml:6:13: gateways[0].weight: must be between 1 and 100, not 101");
	expect_error(BASE "gateways:\n  - address: gw1:7000\n    port: 1\n",
		     "t.yaml:6:5: gateways[0].port: unknown key");
	expect_error(BASE "gateways: [{address: a:1}, {address: b:1}, {address: c:1}, "
			  "{address: d:1}]\n",
		     "t.yaml:4:11: gateways: needs 0..3 elements, found 4");
}

struct counted {
	char **v;
	size_t n;
};

static const struct juki_conf_key count_range[] = {
    JUKI_CONF_SCALARLIST(struct counted, v, n, "v", JUKI_CONF_STRING, 0, 1, 2, "Values."),
    JUKI_CONF_END,
};
static const struct juki_conf_key count_atleast[] = {
    JUKI_CONF_SCALARLIST(struct counted, v, n, "v", JUKI_CONF_STRING, 0, 2, 0, "Values."),
    JUKI_CONF_END,
};
static const struct juki_conf_key count_exact[] = {
    JUKI_CONF_SCALARLIST(struct counted, v, n, "v", JUKI_CONF_ADDR, 0, 1, 1, "Values."),
    JUKI_CONF_END,
};

static int
load_counted(const struct juki_conf_key *table, const char *text, struct counted *c)
{
	memset(c, 0, sizeof(*c));
	return juki_conf_load_string("c.yaml", NULL, text, strlen(text), table, c, err,
				     sizeof(err));
}

static void
test_list_counts(void **state)
{
	struct counted c;

	(void)state;
	assert_int_equal(load_counted(count_range, "v: [a]\n", &c), 0);
	assert_int_equal(c.n, 1);
	juki_conf_free(count_range, &c);
	assert_int_equal(load_counted(count_range, "v: [a, b]\n", &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[1], "b");
	juki_conf_free(count_range, &c);
	assert_int_equal(load_counted(count_range, "v: [a, b, c]\n", &c), JUKI_ECONFIG);
	assert_string_equal(err, "c.yaml:1:4: v: needs 1..2 elements, found 3");
	assert_true(all_zero(&c, sizeof(c)));
	assert_int_equal(load_counted(count_range, "v: []\n", &c), JUKI_ECONFIG);
	assert_string_equal(err, "c.yaml:1:4: v: needs 1..2 elements, found 0");
	/* absent counts as none: the position is the enclosing mapping */
	assert_int_equal(load_counted(count_range, "", &c), JUKI_ECONFIG);
	assert_string_equal(err, "c.yaml:1:1: v: needs 1..2 elements, found 0");
	assert_int_equal(load_counted(count_atleast, "v: [a]\n", &c), JUKI_ECONFIG);
	assert_string_equal(err, "c.yaml:1:4: v: needs at least 2 elements, found 1");
	assert_int_equal(load_counted(count_atleast, "v: [a, b, c, d, e, f]\n", &c), 0);
	assert_int_equal(c.n, 6);
	juki_conf_free(count_atleast, &c);
	assert_int_equal(load_counted(count_exact, "v: [\"a:1\", \"b:2\"]\n", &c), JUKI_ECONFIG);
	assert_string_equal(err, "c.yaml:1:4: v: needs exactly 1 element, found 2");
	assert_int_equal(load_counted(count_exact, "v:\n  - '[::1]:53'\n", &c), 0);
	assert_string_equal(c.v[0], "[::1]:53");
	juki_conf_free(count_exact, &c);
}

static void
test_keys(void **state)
{
	(void)state;
	expect_error(BASE "bogus: 1\n", "t.yaml:4:1: bogus: unknown key");
	expect_error("tls:\n  cert: c.pem\n  certt: x\n  key: k\n",
		     "t.yaml:3:3: tls.certt: unknown key");
	expect_error(BASE "outer:\n  inner:\n    deep: 1\n",
		     "t.yaml:6:5: outer.inner.deep: unknown key");
	expect_error(BASE "workers: 2\nworkers: 3\n",
		     "t.yaml:5:1: workers: duplicate key (first at line 4)");
	expect_error("tls:\n  cert: a\n  key: b\n  cert: c\n",
		     "t.yaml:4:3: tls.cert: duplicate key (first at line 2)");
	/* a duplicate is an error even when the first one was empty */
	expect_error(BASE "name:\nname: x\n", "t.yaml:5:1: name: duplicate key (first at line 4)");
	expect_error("tls:\n  key: k.pem\n", "t.yaml:2:3: tls.cert: missing required key");
	/* an absent section's required keys are missing at the enclosing mapping */
	expect_error("workers: 2\n", "t.yaml:1:1: tls.cert: missing required key");
	expect_error("\n\n  workers: 2\n", "t.yaml:3:3: tls.cert: missing required key");
	expect_error("tls:\n  cert:\n  key: k\n",
		     "t.yaml:2:3: tls.cert: required key has no value");
	expect_error(BASE "'': 1\n", "t.yaml:4:1: empty key");
	expect_error(BASE "[a]: 1\n", "t.yaml:4:1: mapping keys must be scalars");
	expect_error(BASE "? {a: b}\n: 1\n", "t.yaml:4:3: mapping keys must be scalars");
	/* an empty document has every key absent */
	expect_error("", "t.yaml:1:1: tls.cert: missing required key");
	expect_error("# only a comment\n", "t.yaml:1:1: tls.cert: missing required key");
}

static void
test_yaml_errors(void **state)
{
	(void)state;
	expect_error(BASE "name: &a foo\nlabel: *a\n", "t.yaml:4:7: anchors are not allowed");
	expect_error(BASE "name: *a\n", "t.yaml:4:7: aliases are not allowed");
	expect_error(BASE "outer: &o\n  on: yes\n", "t.yaml:4:8: anchors are not allowed");
	expect_error(BASE "*a : 1\n", "t.yaml:4:1: aliases are not allowed");
	expect_error(BASE "<<: *a\n", "t.yaml:4:5: aliases are not allowed");
	expect_error(BASE "name: !!str x\n", "t.yaml:4:7: tags are not allowed");
	expect_error(BASE "outer: !foo {}\n", "t.yaml:4:8: tags are not allowed");
	expect_error("- a\n- b\n",
		     "t.yaml:1:1: the top level must be a mapping of keys, not a sequence");
	expect_error("just text\n",
		     "t.yaml:1:1: the top level must be a mapping of keys, not a scalar");
	expect_error(BASE "---\nname: x\n", "t.yaml:4:1: only one YAML document is allowed");
	expect_error(
	    BASE "name: [a, b\n",
	    "t.yaml:5:1: did not find expected ',' or ']' (while parsing a flow sequence at 4:7)");
	expect_error(BASE "name: x\n  bad: y\n",
		     "t.yaml:5:6: mapping values are not allowed in this context");
	expect_error(
	    BASE "name: \"open\n",
	    "t.yaml:5:1: found unexpected end of stream (while scanning a quoted scalar at "
	    "4:7)");
	expect_error(BASE "name: a\tb: c\n",
		     "t.yaml:4:10: mapping values are not allowed in this context");
	/* bytes that are not UTF-8: the reader gives an offset, turned into a position */
	expect_error(BASE "name: ab\xff\n", "t.yaml:4:9: invalid leading UTF-8 octet");
}

static void
nest(char *buf, size_t len, int levels_)
{
	size_t off = (size_t)snprintf(buf, len, "a: ");

	for (int i = 0; i < levels_; i++) {
		buf[off++] = '[';
	}
	for (int i = 0; i < levels_; i++) {
		buf[off++] = ']';
	}
	buf[off++] = '\n';
	buf[off] = '\0';
}

static void
test_limits(void **state)
{
	struct tconf c;
	char deep[128];
	char *big;
	size_t blen = 1024 * 1024;

	(void)state;
	/* the root mapping is level 1: 31 sequences inside it reach 32 */
	nest(deep, sizeof(deep), 31);
	expect_error(deep, "t.yaml:1:1: a: unknown key");
	nest(deep, sizeof(deep), 32);
	expect_error(deep, "t.yaml:1:35: nesting deeper than 32 levels");

	/* exactly 1 MiB loads; one byte more does not */
	big = malloc(blen + 2);
	assert_non_null(big);
	memset(big, '#', blen + 1);
	memcpy(big, BASE, strlen(BASE));
	big[blen - 1] = '\n';
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    juki_conf_load_string("t.yaml", "/", big, blen, keys, &c, err, sizeof(err)), 0);
	assert_string_equal(c.tls.cert, "/c.pem");
	juki_conf_free(keys, &c);
	big[blen] = '\n';
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    juki_conf_load_string("t.yaml", "/", big, blen + 1, keys, &c, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_string_equal(err, "t.yaml: larger than 1 MiB (1048577 bytes)");
	assert_true(all_zero(&c, sizeof(c)));
	free(big);
}

/* A failure after many values were stored leaves the struct empty (ASan checks the leaks). */
static void
test_free_on_failure(void **state)
{
	(void)state;
	expect_error("name: x\nself: urn:juki:cs:131016\nlisten: a:1\nstate_dir: s\n"
		     "tls:\n  cert: c\n  key: k\n"
		     "outer:\n  inner:\n    label: l\n"
		     "peers: [urn:juki:pref:13, urn:juki:pref:27]\n"
		     "tags: [x, y, z]\n"
		     "gateways:\n  - address: a:1\n    peer: urn:juki:fwgate:east\n"
		     "  - address: b:1\n    peer: urn:juki:fwgate:west\n    weight: 0\n",
		     "t.yaml:18:13: gateways[1].weight: must be between 1 and 100, not 0");
	/* also when the error is a missing key found after the values */
	expect_error("name: x\ngateways:\n  - address: a:1\ntags: [q]\n",
		     "t.yaml:1:1: tls.cert: missing required key");
}

static void
test_paths(void **state)
{
	struct tconf c;
	char cwd[PATH_MAX], want[PATH_MAX + 16];
	const char *doc = BASE "state_dir: ./run/../state/\n";

	(void)state;
	assert_int_equal(load(doc, &c), 0);
	assert_string_equal(c.state_dir, "/etc/juki/run/../state");
	juki_conf_free(keys, &c);

	/* no basedir: the current directory; a relative basedir is taken from it */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    juki_conf_load_string("t.yaml", NULL, BASE, strlen(BASE), keys, &c, err, sizeof(err)),
	    0);
	snprintf(want, sizeof(want), "%s/c.pem", strcmp(cwd, "/") == 0 ? "" : cwd);
	assert_string_equal(c.tls.cert, want);
	juki_conf_free(keys, &c);
	assert_int_equal(
	    juki_conf_load_string("t.yaml", "conf", BASE, strlen(BASE), keys, &c, err, sizeof(err)),
	    0);
	snprintf(want, sizeof(want), "%s/conf/c.pem", strcmp(cwd, "/") == 0 ? "" : cwd);
	assert_string_equal(c.tls.cert, want);
	juki_conf_free(keys, &c);
}

static void
test_load_file(void **state)
{
	struct tconf c;
	char dir[64];
	char path[256], want[512];
	FILE *f;

	(void)state;
	assert_non_null(test_mkdtemp(dir, sizeof(dir), "conf"));
	snprintf(path, sizeof(path), "%s/csd.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(BASE "gateways:\n  - address: gw:1\n", f);
	fclose(f);
	memset(&c, 0, sizeof(c));
	assert_int_equal(juki_conf_load(path, keys, &c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/c.pem", dir);
	assert_string_equal(c.tls.cert, want);
	snprintf(want, sizeof(want), "%s/state", dir);
	assert_string_equal(c.state_dir, want);
	juki_conf_free(keys, &c);

	/* errors name the file as given */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(BASE "tls:\n", f);
	fclose(f);
	assert_int_equal(juki_conf_load(path, keys, &c, err, sizeof(err)), JUKI_ECONFIG);
	snprintf(want, sizeof(want), "%s:4:1: tls: duplicate key (first at line 1)", path);
	assert_string_equal(err, want);
	assert_true(all_zero(&c, sizeof(c)));

	/* over 1 MiB on disk */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(BASE, f);
	for (int i = 0; i < 1024 * 1024; i++) {
		fputc('#', f);
	}
	fclose(f);
	assert_int_equal(juki_conf_load(path, keys, &c, err, sizeof(err)), JUKI_ECONFIG);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", path);
	assert_string_equal(err, want);
	assert_int_equal(unlink(path), 0);

	/* a file that cannot be read is -errno */
	assert_int_equal(juki_conf_load(path, keys, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);
	assert_int_equal(juki_conf_load(dir, keys, &c, err, sizeof(err)), -EISDIR);
	assert_true(all_zero(&c, sizeof(c)));
	assert_int_equal(test_rm_rf(dir), 0);
}

/* ---- defaults that do not parse, and other table mistakes ---- */

struct bad {
	int64_t n;
	char **list;
	size_t nlist;
};

static const struct juki_conf_key bad_duration[] = {
    JUKI_CONF_SCALAR(struct bad, n, "wait", JUKI_CONF_DURATION, "soon", 0, 0, 0, "Wait."),
    JUKI_CONF_END,
};
static const struct juki_conf_key bad_bounds[] = {
    JUKI_CONF_SCALAR(struct bad, n, "n", JUKI_CONF_INT, "0", 0, 1, 5, "N."),
    JUKI_CONF_END,
};
static const struct juki_conf_key bad_list[] = {
    {
	.name = "list",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct bad, list),
	.def = "[a, b",
	.elem_type = JUKI_CONF_STRING,
	.elem_size = sizeof(char *),
	.count_offset = offsetof(struct bad, nlist),
    },
    JUKI_CONF_END,
};
static const struct juki_conf_key bad_list_elem[] = {
    {
	.name = "list",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct bad, list),
	.def = "[\"a:1\", nope]",
	.elem_type = JUKI_CONF_ADDR,
	.elem_size = sizeof(char *),
	.count_offset = offsetof(struct bad, nlist),
    },
    JUKI_CONF_END,
};

static void
test_bad_defaults(void **state)
{
	struct bad b;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(
	    juki_conf_load_string("d.yaml", NULL, "", 0, bad_duration, &b, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_string_equal(err,
			    "d.yaml: wait: invalid default \"soon\": \"soon\" is not a duration "
			    "(like 250ms, 10s, 5m, 2h, 3d, 5y)");
	/* a file value replaces the default before it is ever parsed */
	assert_int_equal(juki_conf_load_string("d.yaml", NULL, "wait: 3s", 8, bad_duration, &b, err,
					       sizeof(err)),
			 0);
	assert_int_equal(b.n, 3000);
	assert_int_equal(
	    juki_conf_load_string("d.yaml", NULL, "", 0, bad_bounds, &b, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_string_equal(err,
			    "d.yaml: n: invalid default \"0\": must be between 1 and 5, not 0");
	assert_int_equal(
	    juki_conf_load_string("d.yaml", NULL, "", 0, bad_list, &b, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_string_equal(err,
			    "d.yaml: list: invalid default \"[a, b\": did not find expected ',' "
			    "or ']' (while parsing a flow sequence at 1:1)");
	assert_int_equal(
	    juki_conf_load_string("d.yaml", NULL, "", 0, bad_list_elem, &b, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_string_equal(err,
			    "d.yaml: list[1]: invalid default \"[\"a:1\", nope]\": \"nope\" is "
			    "not host:port or [v6]:port with port 1..65535");
	assert_true(all_zero(&b, sizeof(b)));
}

/* ---- cross-key checks ---- */

struct range {
	int64_t lo;
	int64_t hi;
};

struct ranges {
	struct range r;
	struct range *list;
	size_t n;
};

static int
check_range(const void *section, const char **blame, char *why, size_t len)
{
	const struct range *r = section;

	if (r->lo > r->hi) {
		*blame = "hi";
		snprintf(why, len, "hi (%lld) is below lo (%lld)", (long long)r->hi,
			 (long long)r->lo);
		return -1;
	}
	if (r->hi - r->lo > 100) {
		snprintf(why, len, "range wider than 100");
		return -1;
	}
	return 0;
}

static const struct juki_conf_key range_keys[] = {
    JUKI_CONF_SCALAR(struct range, lo, "lo", JUKI_CONF_INT, "0", 0, 0, 0, "Low."),
    JUKI_CONF_SCALAR(struct range, hi, "hi", JUKI_CONF_INT, "10", 0, 0, 0, "High."),
    JUKI_CONF_END,
};

static const struct juki_conf_key ranges_keys[] = {
    {
	.name = "r",
	.type = JUKI_CONF_SECTION,
	.offset = offsetof(struct ranges, r),
	.sub = range_keys,
	.check = check_range,
    },
    {
	.name = "list",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct ranges, list),
	.sub = range_keys,
	.elem_size = sizeof(struct range),
	.count_offset = offsetof(struct ranges, n),
	.check = check_range,
    },
    JUKI_CONF_END,
};

static int
load_ranges(const char *text, struct ranges *r)
{
	memset(r, 0, sizeof(*r));
	return juki_conf_load_string("r.yaml", NULL, text, strlen(text), ranges_keys, r, err,
				     sizeof(err));
}

static void
test_check_hook(void **state)
{
	struct ranges r;

	(void)state;
	assert_int_equal(load_ranges("", &r), 0);
	assert_int_equal(r.r.hi, 10);
	juki_conf_free(ranges_keys, &r);
	assert_int_equal(load_ranges("r:\n  lo: 5\n  hi: 2\n", &r), JUKI_ECONFIG);
	assert_string_equal(err, "r.yaml:3:7: r.hi: hi (2) is below lo (5)");
	assert_true(all_zero(&r, sizeof(r)));
	/* the blamed key was defaulted: the section's position */
	assert_int_equal(load_ranges("r:\n  lo: 50\n", &r), JUKI_ECONFIG);
	assert_string_equal(err, "r.yaml:2:3: r.hi: hi (10) is below lo (50)");
	assert_int_equal(load_ranges("r: {hi: 500}\n", &r), JUKI_ECONFIG);
	assert_string_equal(err, "r.yaml:1:4: r: range wider than 100");
	assert_int_equal(load_ranges("list:\n  - {lo: 1, hi: 2}\n  - {lo: 3, hi: 1}\n", &r),
			 JUKI_ECONFIG);
	assert_string_equal(err, "r.yaml:3:17: list[1].hi: hi (1) is below lo (3)");
	assert_true(all_zero(&r, sizeof(r)));
}

/* ---- help ---- */

struct hgw {
	char *address;
	int64_t weight;
};

struct htls {
	char *cert;
	int64_t handshake;
};

struct hconf {
	int level;
	int64_t workers;
	struct htls tls;
	struct hgw *gateways;
	size_t ngateways;
	char **peers;
	size_t npeers;
	char *name;
};

static const struct juki_conf_key help_gw[] = {
    JUKI_CONF_SCALAR(struct hgw, address, "address", JUKI_CONF_ADDR, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "Gateway endpoint."),
    JUKI_CONF_SCALAR(struct hgw, weight, "weight", JUKI_CONF_INT, "1", 0, 1, 100, "Preference."),
    JUKI_CONF_END,
};

static const struct juki_conf_key help_tls[] = {
    JUKI_CONF_SCALAR(struct htls, cert, "cert", JUKI_CONF_PATH, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "Certificate chain, PEM."),
    JUKI_CONF_SCALAR(struct htls, handshake, "handshake", JUKI_CONF_DURATION, "5s", 0, 1000, 60000,
		     "Handshake timeout."),
    JUKI_CONF_END,
};

static const struct juki_conf_key help_keys[] = {
    JUKI_CONF_ENUMKEY(struct hconf, level, "level", levels, "info", 0, "Log level."),
    JUKI_CONF_SCALAR(struct hconf, workers, "workers", JUKI_CONF_INT, "4", JUKI_CONF_RESTART, 1, 64,
		     "Worker threads."),
    JUKI_CONF_SECTIONKEY(struct hconf, tls, "tls", help_tls, "TLS settings."),
    JUKI_CONF_SECTIONLIST(struct hconf, gateways, ngateways, "gateways", struct hgw, help_gw,
			  JUKI_CONF_REQUIRED, 1, 4, "Gateways, in order of preference."),
    JUKI_CONF_SCALARLIST(struct hconf, peers, npeers, "peers", JUKI_CONF_IDENT, 0, 0, 0, NULL),
    JUKI_CONF_SCALAR(struct hconf, name, "name", JUKI_CONF_STRING, "", 0, 0, 0, "Name."),
    JUKI_CONF_END,
};

static void
expect_help(const char *format, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(juki_conf_print_help(f, help_keys, format), 0);
	fclose(f);
	assert_string_equal(buf, want);
	free(buf);
}

static void
test_help(void **state)
{
	FILE *f;

	(void)state;
	expect_help(
	    "text",
	    "  level  debug|info|warn|error  (default info)  Log level.\n"
	    "  workers  int 1..64  (default 4, restart)  Worker threads.\n"
	    "  tls  section  TLS settings.\n"
	    "  tls.cert  path  (required)  Certificate chain, PEM.\n"
	    "  tls.handshake  duration 1s..1m  (default 5s)  Handshake timeout.\n"
	    "  gateways  list of sections 1..4  (required)  Gateways, in order of preference.\n"
	    "  gateways[].address  address  (required)  Gateway endpoint.\n"
	    "  gateways[].weight  int 1..100  (default 1)  Preference.\n"
	    "  peers  list of identity\n"
	    "  name  string  (default \"\")  Name.\n");
	expect_help("scdoc", "*level* (debug|info|warn|error, default info)\n"
			     "\tLog level.\n"
			     "\n"
			     "*workers* (int 1..64, default 4, restart)\n"
			     "\tWorker threads.\n"
			     "\n"
			     "*tls* (section)\n"
			     "\tTLS settings.\n"
			     "\n"
			     "*tls.cert* (path, required)\n"
			     "\tCertificate chain, PEM.\n"
			     "\n"
			     "*tls.handshake* (duration 1s..1m, default 5s)\n"
			     "\tHandshake timeout.\n"
			     "\n"
			     "*gateways* (list of sections 1..4, required)\n"
			     "\tGateways, in order of preference.\n"
			     "\n"
			     "*gateways[].address* (address, required)\n"
			     "\tGateway endpoint.\n"
			     "\n"
			     "*gateways[].weight* (int 1..100, default 1)\n"
			     "\tPreference.\n"
			     "\n"
			     "*peers* (list of identity)\n"
			     "\n"
			     "*name* (string, default \"\")\n"
			     "\tName.\n"
			     "\n");
	f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(juki_conf_print_help(f, help_keys, "html"), JUKI_EINVAL);
	assert_int_equal(juki_conf_print_help(f, help_keys, NULL), JUKI_EINVAL);
	fclose(f);
}

/* ---- the value parsers on their own ---- */

static void
test_parse_duration(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(juki_conf_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(juki_conf_parse_duration("10s", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(juki_conf_parse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(juki_conf_parse_duration("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(juki_conf_parse_duration("3d", &ms), 0);
	assert_int_equal(ms, 3 * JUKI_DAY_MS);
	assert_int_equal(juki_conf_parse_duration("5y", &ms), 0);
	assert_int_equal(ms, 5 * 365 * JUKI_DAY_MS);
	assert_int_equal(juki_conf_parse_duration("7", &ms), 0);
	assert_int_equal(ms, 7000);
	assert_int_equal(juki_conf_parse_duration("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(juki_conf_parse_duration("9223372036854775807ms", &ms), 0);
	assert_int_equal(ms, INT64_MAX);
	ms = 42;
	const char *bad[] = {"",
			     "-1s",
			     "1.5s",
			     "10 s",
			     " 10s",
			     "10S",
			     "s",
			     "1h30m",
			     "10sec",
			     "9223372036854775807s",
			     "9223372036854775808ms",
			     "9223372036854776",
			     "+5s",
			     "0x10s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (juki_conf_parse_duration(bad[i], &ms) != JUKI_EFORMAT) {
			fail_msg("duration \"%s\" accepted", bad[i]);
		}
	}
	assert_int_equal(ms, 42);
	assert_int_equal(juki_conf_parse_duration(NULL, &ms), JUKI_EFORMAT);
}

static void
test_parse_size(void **state)
{
	int64_t b = -1;

	(void)state;
	assert_int_equal(juki_conf_parse_size("512", &b), 0);
	assert_int_equal(b, 512);
	assert_int_equal(juki_conf_parse_size("64KiB", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(juki_conf_parse_size("1MiB", &b), 0);
	assert_int_equal(b, 1 << 20);
	assert_int_equal(juki_conf_parse_size("2GiB", &b), 0);
	assert_int_equal(b, INT64_C(2) << 30);
	assert_int_equal(juki_conf_parse_size("3k", &b), 0);
	assert_int_equal(b, 3072);
	assert_int_equal(juki_conf_parse_size("3KB", &b), 0);
	assert_int_equal(b, 3072);
	assert_int_equal(juki_conf_parse_size("5M", &b), 0);
	assert_int_equal(b, 5 << 20);
	assert_int_equal(juki_conf_parse_size("5MB", &b), 0);
	assert_int_equal(b, 5 << 20);
	assert_int_equal(juki_conf_parse_size("8388607TiB", &b), 0);
	assert_int_equal(b, INT64_C(8388607) << 40);
	assert_int_equal(juki_conf_parse_size("0", &b), 0);
	assert_int_equal(b, 0);
	b = 42;
	const char *bad[] = {"",      "-1",         "1.5MiB",
			     "1 MiB", "1Mi",        "1mb",
			     "MiB",   "8388608TiB", "9223372036854775808",
			     "1KiBx", "+1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (juki_conf_parse_size(bad[i], &b) != JUKI_EFORMAT) {
			fail_msg("size \"%s\" accepted", bad[i]);
		}
	}
	assert_int_equal(b, 42);
	assert_int_equal(juki_conf_parse_size(NULL, &b), JUKI_EFORMAT);
}

static void
test_split_addr(void **state)
{
	char host[64];
	int port = 0;

	(void)state;
	assert_int_equal(juki_conf_split_addr("gw1.pref13.juki:7000", host, sizeof(host), &port),
			 0);
	assert_string_equal(host, "gw1.pref13.juki");
	assert_int_equal(port, 7000);
	assert_int_equal(juki_conf_split_addr("[::1]:443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(juki_conf_split_addr("[fe80::1%eth0]:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::1%eth0");
	assert_int_equal(juki_conf_split_addr("127.0.0.1:1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 1);
	assert_int_equal(juki_conf_split_addr("h:65535", host, sizeof(host), &port), 0);
	assert_int_equal(port, 65535);
	/* host fits exactly: three characters and the NUL */
	assert_int_equal(juki_conf_split_addr("abc:80", host, 4, &port), 0);
	assert_int_equal(juki_conf_split_addr("abcd:80", host, 4, &port), JUKI_EFORMAT);
	port = 42;
	const char *bad[] = {"h:0",           "h:65536",     "h:99999", "h:000080",
			     ":80",           "h:",          "h",       "::1:80",
			     "[::1]",         "[::1]:",      "[::1]80", "[]:80",
			     "[zz]:80",       "[::1:80",     "h:80x",   "h:-1",
			     "h: 80",         "bad host:80", "h:+80",   "",
			     "[fe80::1%]:80", "ho/st:80",    "a:b:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (juki_conf_split_addr(bad[i], host, sizeof(host), &port) != JUKI_EFORMAT) {
			fail_msg("address \"%s\" accepted", bad[i]);
		}
	}
	assert_int_equal(port, 42);
	assert_int_equal(juki_conf_split_addr(NULL, host, sizeof(host), &port), JUKI_EFORMAT);
}

struct ints {
	int64_t any;
	int64_t atleast;
	int64_t exact;
};

static const struct juki_conf_key int_keys[] = {
    JUKI_CONF_SCALAR(struct ints, any, "any", JUKI_CONF_INT, "0", 0, 0, 0, "Any."),
    JUKI_CONF_SCALAR(struct ints, atleast, "atleast", JUKI_CONF_DURATION, "5s", 0, 5000, 0,
		     "At least."),
    JUKI_CONF_SCALAR(struct ints, exact, "exact", JUKI_CONF_INT, "7", 0, 7, 7, "Exact."),
    JUKI_CONF_END,
};

static int
load_ints(const char *text, struct ints *v)
{
	memset(v, 0, sizeof(*v));
	return juki_conf_load_string("i.yaml", NULL, text, strlen(text), int_keys, v, err,
				     sizeof(err));
}

static void
test_int_bounds(void **state)
{
	struct ints v;

	(void)state;
	assert_int_equal(load_ints("any: -9223372036854775808\natleast: 3y\n", &v), 0);
	assert_true(v.any == INT64_MIN);
	assert_int_equal(v.atleast, 3 * 365 * JUKI_DAY_MS);
	assert_int_equal(v.exact, 7);
	assert_int_equal(load_ints("any: 9223372036854775807\n", &v), 0);
	assert_true(v.any == INT64_MAX);
	assert_int_equal(load_ints("any: 9223372036854775808\n", &v), JUKI_ECONFIG);
	assert_string_equal(err, "i.yaml:1:6: any: \"9223372036854775808\" is not an integer");
	assert_int_equal(load_ints("any: -9223372036854775809\n", &v), JUKI_ECONFIG);
	assert_int_equal(load_ints("atleast: 4999ms\n", &v), JUKI_ECONFIG);
	assert_string_equal(err, "i.yaml:1:10: atleast: must be at least 5s, not 4999ms");
	assert_int_equal(load_ints("exact: 8\n", &v), JUKI_ECONFIG);
	assert_string_equal(err, "i.yaml:1:8: exact: must be 7, not 8");
	assert_true(all_zero(&v, sizeof(v)));
}

static void
test_bad_arguments(void **state)
{
	struct tconf c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(juki_conf_load_string("t", NULL, NULL, 0, keys, &c, err, sizeof(err)),
			 JUKI_EINVAL);
	assert_int_equal(juki_conf_load(NULL, keys, &c, err, sizeof(err)), JUKI_EINVAL);
	/* no error buffer: still the right code */
	assert_int_equal(juki_conf_load_string("t", NULL, "x: 1", 4, keys, &c, NULL, 0),
			 JUKI_ECONFIG);
	/* a small buffer truncates the message safely */
	assert_int_equal(juki_conf_load_string("t", NULL, "x: 1", 4, keys, &c, err, 6),
			 JUKI_ECONFIG);
	assert_string_equal(err, "t:1:1");
	juki_conf_free(NULL, &c);
	juki_conf_free(keys, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),         cmocka_unit_test(test_all_values),
	    cmocka_unit_test(test_null_and_strings), cmocka_unit_test(test_value_errors),
	    cmocka_unit_test(test_kind_errors),      cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_list_counts),      cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_yaml_errors),      cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_free_on_failure),  cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_load_file),        cmocka_unit_test(test_bad_defaults),
	    cmocka_unit_test(test_check_hook),       cmocka_unit_test(test_help),
	    cmocka_unit_test(test_parse_duration),   cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_split_addr),       cmocka_unit_test(test_int_bounds),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
