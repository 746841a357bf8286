#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/monitor.h"

/* 2026-11-25T01:02:03.456Z */
#define T0 1795568523456LL

/* A heartbeat as juki-csd sends it. */
static const char good_beat[] =
    "{\"seq\": 7, \"interval_ms\": 30000, \"started\": \"2026-11-25T01:00:00.000Z\","
    " \"daemon\": \"juki-csd\", \"version\": \"0.1.0\", \"state\": \"ok\","
    " \"queues\": {\"outbox\": 0, \"oldest_ms\": 0, \"rejected\": 2, \"inbox\": 10},"
    " \"reconcile\": null, \"disk\": {\"store_free_bytes\": 1000000, \"store_bytes\": 4096},"
    " \"certs\": {\"node_not_after\": \"2029-01-01T00:00:00.000Z\", \"crl_next_update\": null},"
    " \"alerts\": {\"total\": 3}, \"skew_ms\": -12}";

static const char good_alert[] =
    "{\"seq\": 4, \"time\": \"2026-11-25T01:02:03.456Z\", \"code\": \"unknown-certificate\","
    " \"peer\": null, \"addr\": \"192.0.2.1:4433\", \"detail\": \"another CA\","
    " \"class\": \"fault\"}";

static json_t *
parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

	if (v == NULL) {
		fail_msg("%s: %s", text, e.text);
	}
	return v;
}

/* body with member set to the JSON value (NULL: removed); checked by check. */
static int
with(const char *base, const char *member, const char *value,
     int (*check)(const json_t *, char *, size_t), char *why, size_t whylen)
{
	json_t *b = parse(base);
	int rc;

	if (value == NULL) {
		json_object_del(b, member);
	} else {
		json_object_set_new(b, member, parse(value));
	}
	rc = check(b, why, whylen);
	json_decref(b);
	return rc;
}

static void
test_heartbeat_valid(void **state)
{
	json_t *b = parse(good_beat);
	char why[256] = "";

	(void)state;
	assert_int_equal(juki_monitor_heartbeat_check(b, why, sizeof(why)), 0);
	/* unknown members are ignored: a newer node's heartbeat reaches an older board */
	json_object_set_new(b, "future", json_pack("{s:i}", "x", 1));
	assert_int_equal(juki_monitor_heartbeat_check(b, why, sizeof(why)), 0);
	/* the optional members may be left out */
	json_object_del(b, "disk");
	json_object_del(b, "certs");
	json_object_del(b, "alerts");
	json_object_del(b, "skew_ms");
	json_object_del(b, "reconcile");
	assert_int_equal(juki_monitor_heartbeat_check(b, why, sizeof(why)), 0);
	json_decref(b);
}

static void
test_heartbeat_refused(void **state)
{
	static const struct {
		const char *member, *value, *why;
	} cases[] = {
	    {"seq", NULL, "seq: a count"},
	    {"seq", "-1", "seq: a count"},
	    {"seq", "\"7\"", "seq: a count"},
	    {"interval_ms", "0", "interval_ms: 1 to 86400000"},
	    {"interval_ms", "86400001", "interval_ms: 1 to 86400000"},
	    {"started", "\"yesterday\"", "started: an RFC 3339 UTC time"},
	    {"started", "12", "started: an RFC 3339 UTC time"},
	    {"daemon", "\"\"", "daemon: a name of 1..32 [A-Za-z0-9._+-]"},
	    {"daemon", "\"juki csd\"", "daemon: a name of 1..32 [A-Za-z0-9._+-]"},
	    {"daemon", "\"juki-csd\\u0000x\"", "daemon: a name of 1..32 [A-Za-z0-9._+-]"},
	    {"daemon", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
	     "daemon: a name of 1..32 [A-Za-z0-9._+-]"},
	    {"version", "\"0.1.0\\n\"", "version: a version of 1..32 [A-Za-z0-9._+-]"},
	    {"state", "\"fine\"", "state: \"ok\" or \"degraded\""},
	    {"state", NULL, "state: \"ok\" or \"degraded\""},
	    {"queues", "[]", "queues: an object"},
	    {"queues", "{\"outbox\": -1}", "queues.outbox: a count"},
	    {"queues", "{\"inbox\": 1.5}", "queues.inbox: a count"},
	    {"reconcile", "7", "reconcile: an object or null"},
	    {"disk", "{\"store_bytes\": \"big\"}", "disk.store_bytes: a count"},
	    {"certs", "{\"node_not_after\": \"soon\"}", "certs.node_not_after: a time or null"},
	    {"alerts", "{\"total\": -3}", "alerts: an object with total, a count"},
	    {"skew_ms", "99999999999999", "skew_ms: milliseconds within a year, or null"},
	    {"skew_ms", "\"3\"", "skew_ms: milliseconds within a year, or null"},
	};
	char why[256];
	json_t *arr;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		if (with(good_beat, cases[i].member, cases[i].value, juki_monitor_heartbeat_check,
			 why, sizeof(why)) != JUKI_EINVAL) {
			fail_msg("%s = %s was taken", cases[i].member,
				 cases[i].value ? cases[i].value : "(absent)");
		}
		assert_string_equal(why, cases[i].why);
	}
	arr = json_array();
	assert_int_equal(juki_monitor_heartbeat_check(arr, why, sizeof(why)), JUKI_EINVAL);
	assert_string_equal(why, "body: an object");
	json_decref(arr);
	assert_int_equal(juki_monitor_heartbeat_check(NULL, why, sizeof(why)), JUKI_EINVAL);
}

static void
test_alert_body(void **state)
{
	static const struct {
		const char *member, *value, *why;
	} cases[] = {
	    {"seq", "-4", "seq: a count"},
	    {"time", "\"now\"", "time: an RFC 3339 UTC time"},
	    {"code", "\"Unknown Certificate\"", "code: a code of 1..31 [A-Za-z0-9._+-]"},
	    {"code", NULL, "code: a code of 1..31 [A-Za-z0-9._+-]"},
	    {"peer", "\"urn:juki:cs:131016\\u001b[31m\"", "peer: an identity or null"},
	    {"addr", "5", "addr: an address or null"},
	    {"detail", "\"line\\nbreak\"",
	     "detail: text below 256 bytes without control characters"},
	    {"detail", NULL, "detail: text below 256 bytes without control characters"},
	    {"class", "\"attack\"", "class: \"fault\" or \"intrusion\""},
	};
	char why[256], big[400];
	json_t *b = parse(good_alert);

	(void)state;
	assert_int_equal(juki_monitor_alert_check(b, why, sizeof(why)), 0);
	/* a detail of 255 bytes is taken, of 256 not */
	memset(big, 'x', 255);
	big[255] = '\0';
	json_object_set_new(b, "detail", json_string(big));
	assert_int_equal(juki_monitor_alert_check(b, why, sizeof(why)), 0);
	memset(big, 'x', 256);
	big[256] = '\0';
	json_object_set_new(b, "detail", json_string(big));
	assert_int_equal(juki_monitor_alert_check(b, why, sizeof(why)), JUKI_EINVAL);
	json_decref(b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		if (with(good_alert, cases[i].member, cases[i].value, juki_monitor_alert_check, why,
			 sizeof(why)) != JUKI_EINVAL) {
			fail_msg("%s = %s was taken", cases[i].member,
				 cases[i].value ? cases[i].value : "(absent)");
		}
		assert_string_equal(why, cases[i].why);
	}
}

static void
test_alert_class(void **state)
{
	(void)state;
	assert_string_equal(juki_monitor_alert_class("intrusion-suspected"), "intrusion");
	assert_string_equal(juki_monitor_alert_class("audit-rollback"), "intrusion");
	assert_string_equal(juki_monitor_alert_class("audit-missing"), "intrusion");
	assert_string_equal(juki_monitor_alert_class("integrity-mismatch"), "intrusion");
	assert_string_equal(juki_monitor_alert_class("replay-mismatch"), "intrusion");
	assert_string_equal(juki_monitor_alert_class("node-down"), "fault");
	assert_string_equal(juki_monitor_alert_class("unknown-certificate"), "fault");
}

/* At most rate a minute; the rest counted, and told when the minute is over. */
static void
test_rate(void **state)
{
	struct juki_monitor_rate r = {.window_ms = T0};

	(void)state;
	assert_int_equal(juki_monitor_rate_roll(&r, T0), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(juki_monitor_rate_take(&r, 3), 1);
	}
	assert_int_equal(juki_monitor_rate_take(&r, 3), 0);
	assert_int_equal(juki_monitor_rate_take(&r, 3), 0);
	assert_int_equal(r.suppressed, 2);
	/* the same minute: nothing to tell yet, still full */
	assert_int_equal(juki_monitor_rate_roll(&r, T0 + 59999), 0);
	assert_int_equal(juki_monitor_rate_take(&r, 3), 0);
	/* the minute over: three suppressed, a new minute from now */
	assert_int_equal(juki_monitor_rate_roll(&r, T0 + 60000), 3);
	assert_int_equal(r.window_ms, T0 + 60000);
	assert_int_equal(juki_monitor_rate_take(&r, 3), 1);
	assert_int_equal(juki_monitor_rate_roll(&r, T0 + 200000), 0);
	/* a higher rate at a reload applies at once */
	for (int i = 0; i < 60; i++) {
		assert_int_equal(juki_monitor_rate_take(&r, 60), 1);
	}
	assert_int_equal(juki_monitor_rate_take(&r, 60), 0);
}

struct heard {
	int n;
	uint64_t seq;
	char code[32], peer[128], detail[256];
};

static void
listener(void *ctx, uint64_t seq, int64_t time_ms, const char *code, const char *peer,
	 const char *addr, const char *detail)
{
	struct heard *h = ctx;

	(void)addr;
	assert_int_equal(time_ms, T0);
	h->n++;
	h->seq = seq;
	snprintf(h->code, sizeof(h->code), "%s", code);
	snprintf(h->peer, sizeof(h->peer), "%s", peer);
	snprintf(h->detail, sizeof(h->detail), "%s", detail);
}

/* Every alert raised reaches the listener, the quiet ones too; none after it is removed. */
static void
test_alert_listener(void **state)
{
	struct juki_clock clock = {.fixed_ms = T0};
	struct juki_alerts *a = juki_alerts_new(4, &clock);
	struct heard h = {0};

	(void)state;
	juki_alert(a, "before", NULL, NULL, "not heard");
	juki_alerts_on_raise(a, listener, &h);
	juki_alert(a, "node-down", "urn:juki:cs:131016", NULL, "no heartbeat for %ds", 90);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.seq, 2);
	assert_string_equal(h.code, "node-down");
	assert_string_equal(h.peer, "urn:juki:cs:131016");
	assert_string_equal(h.detail, "no heartbeat for 90s");
	juki_alert_quiet(a, "policy-denied", NULL, "192.0.2.1:1", "quiet");
	assert_int_equal(h.n, 2);
	assert_string_equal(h.peer, "");
	juki_alerts_on_raise(a, NULL, NULL);
	juki_alert(a, "after", NULL, NULL, "not heard");
	assert_int_equal(h.n, 2);
	juki_alerts_free(a);
}

struct conf {
	struct juki_monitor_conf monitor;
};

static const struct juki_conf_key keys[] = {
    JUKI_MONITOR_CONF_KEY(struct conf, monitor),
    JUKI_CONF_END,
};

static int
load(const char *text, struct conf *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	return juki_conf_load_string("m.yaml", "/tmp", text, strlen(text), keys, c, err, errlen);
}

static void
test_conf(void **state)
{
	struct conf c;
	char err[512];

	(void)state;
	/* the defaults: watchers derived, a board where the kind keeps one */
	assert_int_equal(load("{}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.monitor.interval, 30000);
	assert_int_equal(c.monitor.down_after, 90000);
	assert_int_equal(c.monitor.nwatchers, 1);
	assert_string_equal(c.monitor.watchers[0], "auto");
	assert_int_equal(c.monitor.board, JUKI_MONITOR_BOARD_AUTO);
	assert_int_equal(c.monitor.alert_rate, 60);
	assert_int_equal(c.monitor.intrusion_refusals, 10);
	juki_conf_free(keys, &c);
	/* an empty list: none */
	assert_int_equal(load("monitor: {watchers: [], board: true}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.monitor.nwatchers, 0);
	assert_int_equal(c.monitor.board, JUKI_MONITOR_BOARD_YES);
	juki_conf_free(keys, &c);
	assert_int_equal(
	    load("monitor: {watchers: [auto, urn:juki:pref:27]}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.monitor.nwatchers, 2);
	juki_conf_free(keys, &c);
	/* refused: a watcher that is no server node, down_after not above interval */
	assert_int_equal(
	    load("monitor: {watchers: [urn:juki:agency:nenkin]}", &c, err, sizeof(err)),
	    JUKI_ECONFIG);
	assert_non_null(strstr(err, "watchers"));
	assert_int_equal(load("monitor: {watchers: [jlis]}", &c, err, sizeof(err)), JUKI_ECONFIG);
	assert_int_equal(load("monitor: {interval: 10s, down_after: 10s}", &c, err, sizeof(err)),
			 JUKI_ECONFIG);
	assert_non_null(strstr(err, "down_after"));
	assert_int_equal(load("monitor: {board: maybe}", &c, err, sizeof(err)), JUKI_ECONFIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heartbeat_valid),
	    cmocka_unit_test(test_heartbeat_refused),
	    cmocka_unit_test(test_alert_body),
	    cmocka_unit_test(test_alert_class),
	    cmocka_unit_test(test_alert_listener),
	    cmocka_unit_test(test_conf),
	    cmocka_unit_test(test_rate),
	};

	log_init("test_monitor", JUKI_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
