#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/policy.h"

/* The policy of docs/architecture.md §3, written out independently of conf/policy.yaml. */
static const char standard[] =
    "version: 1\n"
    "rules:\n"
    "  - {service: muni, from: cs, to: cs}\n"
    "  - {service: honnin, from: cs, to: pref, same_prefecture: true}\n"
    "  - {service: honnin, from: pref, to: jlis}\n"
    "  - {service: provide, from: agency, to: pref}\n"
    "  - {service: provide, from: agency, to: jlis}\n"
    "  - {service: provide, from: cs, to: pref, same_prefecture: yes}\n"
    "  - {service: provide, from: exec, to: pref, same_prefecture: true}\n"
    "  - {service: provide, from: exec, to: jlis}\n"
    "  - {service: provide, from: pref, to: jlis}\n"
    "  - {service: provide, from: jlis, to: pref}\n"
    "  - {service: ninsho, from: pref, to: authlink, same_prefecture: true}\n"
    "  - {service: ninsho, from: jlis, to: authlink}\n"
    "  - {service: ninsho, from: authlink, to: ca}\n"
    "  - {service: ninsho, from: ca, to: authlink}\n"
    "  - {service: ninsho, from: authlink, to: jlis}\n"
    "  - {service: ninsho, from: authlink, to: pref, same_prefecture: true}\n"
    "  - {service: monitor, from: cs, to: pref, same_prefecture: true}\n"
    "  - {service: monitor, from: pref, to: cs, same_prefecture: true}\n"
    "  - {service: monitor, from: authlink, to: pref, same_prefecture: true}\n"
    "  - {service: monitor, from: pref, to: authlink, same_prefecture: true}\n"
    "  - service: monitor\n"
    "    from: cs\n"
    "    to: jlis\n"
    "  - {service: monitor, from: pref, to: jlis}\n"
    "  - {service: monitor, from: authlink, to: jlis}\n"
    "  - {service: monitor, from: fwgate, to: jlis}\n"
    "  - {service: monitor, from: jlis, to: cs}\n"
    "  - {service: monitor, from: jlis, to: pref}\n"
    "  - {service: monitor, from: jlis, to: authlink}\n"
    "  - {service: monitor, from: jlis, to: fwgate}\n"
    "  - {service: monitor, from: jlis, to: jlis}\n";

static char err[1024];

static struct juki_policy *
load_standard(void)
{
	struct juki_policy *p = NULL;

	assert_int_equal(
	    juki_policy_load_string("std.yaml", standard, strlen(standard), &p, err, sizeof(err)),
	    0);
	assert_non_null(p);
	return p;
}

static int
check(const struct juki_policy *p, const char *src, const char *dst, enum juki_service svc,
      char *why, size_t len)
{
	struct juki_ident s, d;

	assert_int_equal(juki_ident_parse(src, &s), 0);
	assert_int_equal(juki_ident_parse(dst, &d), 0);
	return juki_policy_check(p, &s, &d, svc, why, len);
}

static void
allows(const struct juki_policy *p, const char *src, const char *dst, enum juki_service svc)
{
	char why[256];

	if (check(p, src, dst, svc, why, sizeof(why)) != 0) {
		fail_msg("%s -> %s over %s denied: %s", src, dst, juki_service_name(svc), why);
	}
}

static void
denies(const struct juki_policy *p, const char *src, const char *dst, enum juki_service svc,
       const char *reason)
{
	char why[256];
	int rc = check(p, src, dst, svc, why, sizeof(why));

	if (rc != JUKI_EPOLICY || strcmp(why, reason) != 0) {
		fail_msg("%s -> %s over %s: rc %d why \"%s\", wanted \"%s\"", src, dst,
			 juki_service_name(svc), rc, why, reason);
	}
}

#define CS_TOKYO "urn:juki:cs:131016"
#define CS_OSAKA "urn:juki:cs:271004"
#define PREF13   "urn:juki:pref:13"
#define PREF27   "urn:juki:pref:27"
#define JLIS     "urn:juki:jlis:0"
#define AL13     "urn:juki:authlink:13"
#define AL0      "urn:juki:authlink:0"
#define AGENCY   "urn:juki:agency:nenkin"
#define CA       "urn:juki:ca:jpki"
#define FWGATE   "urn:juki:fwgate:east"
#define EXEC13   "urn:juki:exec:13-kyoiku"
#define EXEC27   "urn:juki:exec:272001-zeimu"

static void
check_standard(const struct juki_policy *p)
{
	assert_int_equal(juki_policy_rule_count(p), 29);

	allows(p, CS_TOKYO, CS_OSAKA, JUKI_SVC_MUNI);
	allows(p, CS_OSAKA, CS_TOKYO, JUKI_SVC_MUNI);
	allows(p, CS_TOKYO, PREF13, JUKI_SVC_HONNIN);
	allows(p, CS_OSAKA, PREF27, JUKI_SVC_HONNIN);
	allows(p, PREF13, JLIS, JUKI_SVC_HONNIN);
	allows(p, AGENCY, PREF13, JUKI_SVC_PROVIDE);
	allows(p, AGENCY, JLIS, JUKI_SVC_PROVIDE);
	allows(p, CS_TOKYO, PREF13, JUKI_SVC_PROVIDE);
	allows(p, EXEC13, PREF13, JUKI_SVC_PROVIDE);
	allows(p, EXEC13, JLIS, JUKI_SVC_PROVIDE);
	allows(p, EXEC27, JLIS, JUKI_SVC_PROVIDE);
	allows(p, PREF13, JLIS, JUKI_SVC_PROVIDE);
	allows(p, JLIS, PREF27, JUKI_SVC_PROVIDE);
	allows(p, PREF13, AL13, JUKI_SVC_NINSHO);
	allows(p, JLIS, AL0, JUKI_SVC_NINSHO);
	allows(p, AL13, CA, JUKI_SVC_NINSHO);
	allows(p, CA, AL0, JUKI_SVC_NINSHO);
	allows(p, AL0, JLIS, JUKI_SVC_NINSHO);
	allows(p, AL13, PREF13, JUKI_SVC_NINSHO);
	allows(p, CS_TOKYO, JLIS, JUKI_SVC_MONITOR);
	allows(p, PREF27, JLIS, JUKI_SVC_MONITOR);
	allows(p, AL0, JLIS, JUKI_SVC_MONITOR);
	allows(p, FWGATE, JLIS, JUKI_SVC_MONITOR);
	allows(p, JLIS, CS_OSAKA, JUKI_SVC_MONITOR);
	allows(p, JLIS, PREF13, JUKI_SVC_MONITOR);
	allows(p, JLIS, AL13, JUKI_SVC_MONITOR);
	allows(p, JLIS, FWGATE, JUKI_SVC_MONITOR);
	/* the national centres watch each other (docs/architecture.md §27) */
	allows(p, JLIS, "urn:juki:jlis:west", JUKI_SVC_MONITOR);
	/* heartbeats and alerts to the own prefecture, its notices back (monitor.h) */
	allows(p, CS_TOKYO, PREF13, JUKI_SVC_MONITOR);
	allows(p, PREF13, CS_TOKYO, JUKI_SVC_MONITOR);
	allows(p, AL13, PREF13, JUKI_SVC_MONITOR);
	allows(p, PREF13, AL13, JUKI_SVC_MONITOR);
	denies(p, CS_OSAKA, PREF13, JUKI_SVC_MONITOR,
	       "cs:271004 and pref:13 are not in the same prefecture");
	denies(p, PREF27, CS_TOKYO, JUKI_SVC_MONITOR,
	       "pref:27 and cs:131016 are not in the same prefecture");

	/* 第3-3(3): muni never reaches a pref or jlis server */
	denies(p, CS_TOKYO, PREF13, JUKI_SVC_MUNI, "no rule allows cs -> pref over muni");
	denies(p, CS_TOKYO, JLIS, JUKI_SVC_MUNI, "no rule allows cs -> jlis over muni");
	denies(p, PREF13, CS_TOKYO, JUKI_SVC_MUNI, "no rule allows pref -> cs over muni");
	denies(p, JLIS, CS_TOKYO, JUKI_SVC_MUNI, "no rule allows jlis -> cs over muni");
	denies(p, CS_TOKYO, CS_OSAKA, JUKI_SVC_HONNIN, "no rule allows cs -> cs over honnin");
	denies(p, JLIS, PREF13, JUKI_SVC_HONNIN, "no rule allows jlis -> pref over honnin");
	denies(p, PREF13, CS_TOKYO, JUKI_SVC_HONNIN, "no rule allows pref -> cs over honnin");
	denies(p, CS_TOKYO, JLIS, JUKI_SVC_HONNIN, "no rule allows cs -> jlis over honnin");
	denies(p, CS_TOKYO, PREF27, JUKI_SVC_HONNIN,
	       "cs:131016 and pref:27 are not in the same prefecture");
	denies(p, CS_OSAKA, PREF13, JUKI_SVC_PROVIDE,
	       "cs:271004 and pref:13 are not in the same prefecture");
	denies(p, PREF13, AL0, JUKI_SVC_NINSHO,
	       "pref:13 and authlink:0 are not in the same prefecture");
	denies(p, AGENCY, CS_TOKYO, JUKI_SVC_PROVIDE, "no rule allows agency -> cs over provide");
	/* an executive body asks its own prefecture, or the nation */
	denies(p, EXEC27, PREF13, JUKI_SVC_PROVIDE,
	       "exec:272001-zeimu and pref:13 are not in the same prefecture");
	denies(p, EXEC13, CS_TOKYO, JUKI_SVC_PROVIDE, "no rule allows exec -> cs over provide");
	denies(p, EXEC13, PREF13, JUKI_SVC_HONNIN, "no rule allows exec -> pref over honnin");
	denies(p, CS_TOKYO, CA, JUKI_SVC_NINSHO, "no rule allows cs -> ca over ninsho");
	denies(p, AL0, PREF13, JUKI_SVC_NINSHO,
	       "authlink:0 and pref:13 are not in the same prefecture");
	denies(p, CA, JLIS, JUKI_SVC_NINSHO, "no rule allows ca -> jlis over ninsho");
	denies(p, AGENCY, JLIS, JUKI_SVC_MONITOR, "no rule allows agency -> jlis over monitor");
	denies(p, JLIS, AGENCY, JUKI_SVC_MONITOR, "no rule allows jlis -> agency over monitor");
	denies(p, CS_TOKYO, CS_OSAKA, JUKI_SVC_MONITOR, "no rule allows cs -> cs over monitor");
	denies(p, CS_TOKYO, CS_OSAKA, JUKI_SVC_NONE, "no rule allows cs -> cs over none");
	/* operators are not nodes: no rule names them */
	denies(p, "urn:juki:op:cs:131016:tanaka", CS_OSAKA, JUKI_SVC_MUNI,
	       "no rule allows op -> cs over muni");
}

static void
test_standard(void **state)
{
	struct juki_policy *p = load_standard();

	(void)state;
	check_standard(p);
	juki_policy_free(p);
}

/* The shipped conf/policy.yaml is the standard policy, decision for decision. */
static void
test_shipped_file(void **state)
{
	const char *src = getenv("JUKI_SOURCE_DIR");
	char path[4096];
	struct juki_policy *file = NULL, *std = load_standard();
	const char *nodes[] = {CS_TOKYO, CS_OSAKA, PREF13, PREF27, JLIS,
			       AL13,     AL0,      AGENCY, CA,     FWGATE};
	const size_t n = sizeof(nodes) / sizeof(nodes[0]);

	(void)state;
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/conf/policy.yaml", src);
	if (juki_policy_load(path, &file, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	check_standard(file);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			for (int svc = JUKI_SVC_NONE; svc <= JUKI_SVC_MONITOR; svc++) {
				char w1[256], w2[256];
				int a = check(file, nodes[i], nodes[j], svc, w1, sizeof(w1));
				int b = check(std, nodes[i], nodes[j], svc, w2, sizeof(w2));

				if (a != b || strcmp(w1, w2) != 0) {
					fail_msg("%s -> %s over %s: file %d \"%s\", standard %d "
						 "\"%s\"",
						 nodes[i], nodes[j], juki_service_name(svc), a, w1,
						 b, w2);
				}
			}
		}
	}
	juki_policy_free(file);
	juki_policy_free(std);
}

static void
expect_refused(const char *text, const char *want)
{
	struct juki_policy *p = (struct juki_policy *)&p; /* must come back NULL */
	int rc = juki_policy_load_string("p.yaml", text, strlen(text), &p, err, sizeof(err));

	if (rc != JUKI_ECONFIG || strcmp(err, want) != 0) {
		fail_msg("policy:\n%s\nwant: %s\ngot:  %s (rc %d)", text, want, err, rc);
	}
	assert_null(p);
}

#define RULE(s, f, t) "  - {service: " s ", from: " f ", to: " t "}\n"
#define NOTICES                                                                                    \
	"notices between municipalities never pass a prefectural or national server "              \
	"(第3-3(3))"

static void
test_refused(void **state)
{
	(void)state;
	/* the network structure rule holds by construction */
	expect_refused("version: 1\nrules:\n" RULE("muni", "cs", "pref"),
		       "p.yaml:3:35: rules[0].to: muni must not reach pref: " NOTICES);
	expect_refused("version: 1\nrules:\n" RULE("monitor", "cs", "jlis")
			   RULE("muni", "cs", "jlis"),
		       "p.yaml:4:35: rules[1].to: muni must not reach jlis: " NOTICES);
	expect_refused("version: 1\nrules:\n" RULE("muni", "pref", "cs"),
		       "p.yaml:3:27: rules[0].from: muni must come from cs, not pref: " NOTICES);
	expect_refused("version: 1\nrules:\n" RULE("muni", "agency", "cs"),
		       "p.yaml:3:27: rules[0].from: muni must come from cs, not agency: " NOTICES);
	expect_refused("version: 1\nrules:\n  - service: muni\n    from: jlis\n    to: jlis\n",
		       "p.yaml:5:9: rules[0].to: muni must not reach jlis: " NOTICES);

	/* kinds */
	expect_refused(
	    "version: 1\nrules:\n" RULE("honnin", "town", "pref"),
	    "p.yaml:3:29: rules[0].from: \"town\" is not a node kind (one of: cs, pref, jlis, "
	    "authlink, fwgate, agency, ca, exec)");
	expect_refused(
	    "version: 1\nrules:\n" RULE("honnin", "cs", "op"),
	    "p.yaml:3:37: rules[0].to: \"op\" is not a node kind (one of: cs, pref, jlis, "
	    "authlink, fwgate, agency, ca, exec)");
	expect_refused(
	    "version: 1\nrules:\n" RULE("honnin", "none", "pref"),
	    "p.yaml:3:29: rules[0].from: \"none\" is not a node kind (one of: cs, pref, jlis, "
	    "authlink, fwgate, agency, ca, exec)");
	expect_refused(
	    "version: 1\nrules:\n" RULE("honnin", "CS", "pref"),
	    "p.yaml:3:29: rules[0].from: \"CS\" is not a node kind (one of: cs, pref, jlis, "
	    "authlink, fwgate, agency, ca, exec)");
	expect_refused(
	    "version: 1\nrules:\n" RULE("mail", "cs", "cs"),
	    "p.yaml:3:15: rules[0].service: \"mail\" is not one of: muni, honnin, provide, "
	    "ninsho, monitor");
	expect_refused(
	    "version: 1\nrules:\n"
	    "  - {service: honnin, from: pref, to: jlis, same_prefecture: true}\n",
	    "p.yaml:3:62: rules[0].same_prefecture: a jlis node belongs to no prefecture, so "
	    "the rule could never match");
	expect_refused(
	    "version: 1\nrules:\n"
	    "  - {service: honnin, from: cs, to: pref, same_prefecture: maybe}\n",
	    "p.yaml:3:60: rules[0].same_prefecture: \"maybe\" is not a boolean (true/false, "
	    "yes/no, on/off)");

	/* shape */
	expect_refused("version: 2\nrules: []\n", "p.yaml:1:10: version: must be 1, not 2");
	expect_refused("rules: []\n", "p.yaml:1:1: version: missing required key");
	expect_refused("version: 1\n", "p.yaml:1:1: rules: missing required key");
	expect_refused("version: 1\nrules:\n  - {service: muni, from: cs}\n",
		       "p.yaml:3:5: rules[0].to: missing required key");
	expect_refused("version: 1\nrules:\n  - {service: muni, from: cs, to: cs, form: x}\n",
		       "p.yaml:3:39: rules[0].form: unknown key");
	expect_refused("version: 1\nrules:\n  - {service: muni, from: cs, to: cs, to: pref}\n",
		       "p.yaml:3:39: rules[0].to: duplicate key (first at line 3)");
	expect_refused("version: 1\nrules: {service: muni}\n",
		       "p.yaml:2:8: rules: expected a sequence, found a mapping");
	expect_refused("version: 1\nrules:\n  - &r {service: muni, from: cs, to: cs}\n  - *r\n",
		       "p.yaml:3:5: anchors are not allowed");
}

static void
test_empty_policy(void **state)
{
	struct juki_policy *p = NULL;
	const char text[] = "version: 1\nrules: []\n";

	(void)state;
	assert_int_equal(
	    juki_policy_load_string("p.yaml", text, strlen(text), &p, err, sizeof(err)), 0);
	assert_int_equal(juki_policy_rule_count(p), 0);
	/* default deny */
	denies(p, CS_TOKYO, CS_OSAKA, JUKI_SVC_MUNI, "no rule allows cs -> cs over muni");
	juki_policy_free(p);
}

static void
test_same_prefecture_alternatives(void **state)
{
	/* a second, unconditional rule allows what the first one alone would not */
	const char text[] = "version: 1\nrules:\n"
			    "  - {service: provide, from: cs, to: pref, same_prefecture: true}\n"
			    "  - {service: provide, from: cs, to: pref}\n";
	struct juki_policy *p = NULL;

	(void)state;
	assert_int_equal(
	    juki_policy_load_string("p.yaml", text, strlen(text), &p, err, sizeof(err)), 0);
	allows(p, CS_TOKYO, PREF27, JUKI_SVC_PROVIDE);
	allows(p, CS_TOKYO, PREF13, JUKI_SVC_PROVIDE);
	juki_policy_free(p);
}

static void
test_load_errors(void **state)
{
	struct juki_policy *p = NULL;
	struct juki_ident a;
	char why[64];

	(void)state;
	assert_int_equal(juki_policy_load("/nonexistent/policy.yaml", &p, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/policy.yaml: No such file or directory");
	assert_null(p);
	assert_int_equal(juki_policy_load("x", NULL, err, sizeof(err)), JUKI_EINVAL);
	assert_int_equal(juki_ident_parse(CS_TOKYO, &a), 0);
	assert_int_equal(juki_policy_check(NULL, &a, &a, JUKI_SVC_MUNI, why, sizeof(why)),
			 JUKI_EINVAL);
	p = load_standard();
	assert_int_equal(juki_policy_check(p, NULL, &a, JUKI_SVC_MUNI, why, sizeof(why)),
			 JUKI_EINVAL);
	/* a short reason buffer is truncated, never overrun */
	assert_int_equal(juki_policy_check(p, &a, &a, JUKI_SVC_HONNIN, why, 8), JUKI_EPOLICY);
	assert_string_equal(why, "no rule");
	assert_int_equal(juki_policy_check(p, &a, &a, JUKI_SVC_HONNIN, NULL, 0), JUKI_EPOLICY);
	juki_policy_free(p);
	juki_policy_free(NULL);
	assert_int_equal(juki_policy_rule_count(NULL), 0);
}

static void
test_service_names(void **state)
{
	(void)state;
	assert_string_equal(juki_service_name(JUKI_SVC_MUNI), "muni");
	assert_string_equal(juki_service_name(JUKI_SVC_HONNIN), "honnin");
	assert_string_equal(juki_service_name(JUKI_SVC_PROVIDE), "provide");
	assert_string_equal(juki_service_name(JUKI_SVC_NINSHO), "ninsho");
	assert_string_equal(juki_service_name(JUKI_SVC_MONITOR), "monitor");
	assert_string_equal(juki_service_name(JUKI_SVC_NONE), "none");
	assert_string_equal(juki_service_name((enum juki_service)99), "none");
	for (int s = JUKI_SVC_MUNI; s <= JUKI_SVC_MONITOR; s++) {
		assert_int_equal(juki_service_parse(juki_service_name(s)), s);
	}
	assert_int_equal(juki_service_parse("none"), JUKI_SVC_NONE);
	assert_int_equal(juki_service_parse("MUNI"), JUKI_SVC_NONE);
	assert_int_equal(juki_service_parse(""), JUKI_SVC_NONE);
	assert_int_equal(juki_service_parse(NULL), JUKI_SVC_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_standard),
	    cmocka_unit_test(test_shipped_file),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_empty_policy),
	    cmocka_unit_test(test_same_prefecture_alternatives),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_service_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
