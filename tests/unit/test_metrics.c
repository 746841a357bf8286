#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/node/metrics.h"
#include "juki/wire/pki.h"

#include "helpers.h"

static int
count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
		n++;
	}
	return n;
}

/* HELP and TYPE once per metric, before its samples, in the table's order; none without. */
static void
test_exposition(void **state)
{
	struct juki_metrics_out *o = juki_metrics_out_new();
	char *text;

	(void)state;
	assert_non_null(o);
	juki_metrics_put(o, JUKI_M_OUTBOX_DEPTH, 3, "dest", "urn:juki:pref:13", "service", "honnin",
			 NULL);
	juki_metrics_put(o, JUKI_M_BUILD_INFO, 1, "daemon", "juki-csd", "version", "0.1.0", NULL);
	juki_metrics_put(o, JUKI_M_OUTBOX_DEPTH, 0, "dest", "urn:juki:jlis:0", "service", "honnin",
			 NULL);
	juki_metrics_put(o, JUKI_M_START_TIME, 1.5, NULL);
	text = juki_metrics_text(o);
	assert_non_null(text);
	assert_int_equal(count(text, "# TYPE juki_outbox_messages gauge\n"), 1);
	assert_int_equal(count(text, "# HELP juki_outbox_messages "), 1);
	assert_non_null(strstr(text, "juki_outbox_messages{dest=\"urn:juki:pref:13\","
				     "service=\"honnin\"} 3\n"));
	assert_non_null(strstr(text, "juki_uptime_seconds 1.5\n"));
	/* build_info is first in the table, so first in the text. */
	assert_ptr_equal(strstr(text, "# HELP juki_build_info"), text);
	assert_true(strstr(text, "# TYPE juki_outbox_messages") <
		    strstr(text, "juki_outbox_messages{"));
	assert_null(strstr(text, "juki_alerts_total"));
	free(text);
	juki_metrics_out_free(o);
}

/* Label values: backslash, quote and newline escaped; at most four pairs. */
static void
test_escaping(void **state)
{
	struct juki_metrics_out *o = juki_metrics_out_new();
	char *text;

	(void)state;
	juki_metrics_put(o, JUKI_M_ALERTS, 2, "code", "a\"b\\c\nd", NULL);
	juki_metrics_put(o, JUKI_M_REJECTED, 1, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5",
			 NULL);
	juki_metrics_put(o, (enum juki_metric)JUKI_METRICS_N, 1, NULL); /* ignored */
	text = juki_metrics_text(o);
	assert_non_null(strstr(text, "juki_alerts_total{code=\"a\\\"b\\\\c\\nd\"} 2\n"));
	assert_non_null(
	    strstr(text, "juki_messages_rejected_total{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n"));
	free(text);
	juki_metrics_out_free(o);
	assert_null(juki_metric_name(JUKI_METRICS_N));
	assert_string_equal(juki_metric_name(JUKI_M_GW_BYTES), "juki_gateway_bytes_total");
}

/* Every name is juki_*, and no name is used twice. */
static void
test_table(void **state)
{
	(void)state;
	for (int i = 0; i < JUKI_METRICS_N; i++) {
		const char *n = juki_metric_name((enum juki_metric)i);

		assert_non_null(n);
		assert_memory_equal(n, "juki_", 5);
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(n, juki_metric_name((enum juki_metric)j));
		}
	}
}

static int
check(const char *listen, bool remote, char *why, size_t len)
{
	struct juki_metrics_conf c = {(char *)listen, remote, 5000};
	const char *blame = NULL;

	why[0] = '\0';
	return juki_metrics_conf_check(&c, &blame, why, len);
}

/* Loopback only unless allow_remote; unset is fine. */
static void
test_conf_check(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(check(NULL, false, why, sizeof(why)), 0);
	assert_int_equal(check("127.0.0.1:9100", false, why, sizeof(why)), 0);
	assert_int_equal(check("127.1.2.3:9100", false, why, sizeof(why)), 0);
	assert_int_equal(check("[::1]:9100", false, why, sizeof(why)), 0);
	assert_int_equal(check("localhost:9100", false, why, sizeof(why)), 0);
	assert_int_equal(check("0.0.0.0:9100", false, why, sizeof(why)), JUKI_ECONFIG);
	assert_non_null(strstr(why, "not a loopback address"));
	assert_int_equal(check("[::]:9100", false, why, sizeof(why)), JUKI_ECONFIG);
	assert_int_equal(check("10.0.0.1:9100", false, why, sizeof(why)), JUKI_ECONFIG);
	assert_int_equal(check("metrics.example:9100", false, why, sizeof(why)), JUKI_ECONFIG);
	assert_int_equal(check("[::ffff:127.0.0.1]:9100", false, why, sizeof(why)), JUKI_ECONFIG);
	assert_int_equal(check("0.0.0.0:9100", true, why, sizeof(why)), 0);
}

/* The dates of a certificate and a CRL, and what is not one. */
static void
test_file_times(void **state)
{
	char dir[64], topo[128], path[160], err[256];
	long long ms = 0;
	FILE *f;

	(void)state;
	assert_non_null(test_mkdtemp(dir, sizeof(dir), "metrics"));
	snprintf(topo, sizeof(topo), "%s/pki", dir);
	assert_int_equal(juki_pki_init_ca(topo, "test CA", 10, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/ca.crt", topo);
	assert_int_equal(juki_pki_file_times(path, 0, &ms), 0);
	assert_true(ms > 0);
	snprintf(path, sizeof(path), "%s/nothing", topo);
	assert_int_equal(juki_pki_file_times(path, 0, &ms), JUKI_EIO);
	snprintf(path, sizeof(path), "%s/junk.pem", dir);
	f = fopen(path, "w");
	fputs("not PEM\n", f);
	fclose(f);
	assert_int_equal(juki_pki_file_times(path, 0, &ms), JUKI_EFORMAT);
	assert_int_equal(juki_pki_file_times(path, 1, &ms), JUKI_EFORMAT);
	test_rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exposition), cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_table),      cmocka_unit_test(test_conf_check),
	    cmocka_unit_test(test_file_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
