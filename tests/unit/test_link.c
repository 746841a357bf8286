#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "link.h"

#include "helpers.h"

/* The body file of juki-ctl provide (ctl/link.c): what it takes and what it refuses. */

static const char base[] = "tls: {cert: b.crt, key: b.key, ca: ca.crt}\n"
			   "gateways: ['127.0.0.1:7000', '127.0.0.1:7001']\n"
			   "server: urn:juki:pref:13\n"
			   "answers: answers\n";

static int
load(const char *text, struct ctl_body *b, char *err, size_t errlen)
{
	char dir[64], path[128];
	FILE *f;
	int rc;

	assert_non_null(test_mkdtemp(dir, sizeof(dir), "link"));
	snprintf(path, sizeof(path), "%s/body.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	rc = ctl_body_load(path, b, err, errlen);
	test_rm_rf(dir);
	return rc;
}

static void
test_body_file(void **state)
{
	char text[1024], err[512];
	struct ctl_body b;

	(void)state;
	snprintf(text, sizeof(text),
		 "%sbody: urn:juki:agency:nenkin\nstaff: {cert: s.crt, key: s.key}\n", base);
	assert_int_equal(load(text, &b, err, sizeof(err)), 0);
	assert_string_equal(b.body, "urn:juki:agency:nenkin");
	assert_int_equal(b.ngateways, 2);
	assert_int_equal(b.part_size, 1000);
	assert_int_equal(b.connect_timeout, 5000);
	assert_int_equal(b.part_timeout, 60000);
	assert_int_equal(b.keep, 0);
	assert_non_null(strstr(b.staff.key, "/s.key"));
	ctl_body_free(&b);

	/* an executive body, its card on a token */
	snprintf(text, sizeof(text),
		 "%sbody: urn:juki:exec:131016-zeimu\nstaff: {cert: s.crt, card: "
		 "'pkcs11:token=t;object=op;type=private'}\nkeep: 90d\n",
		 base);
	assert_int_equal(load(text, &b, err, sizeof(err)), 0);
	assert_int_equal(b.keep, 90 * 86400000LL);
	ctl_body_free(&b);
}

static void
test_body_refusals(void **state)
{
	static const struct {
		const char *extra;
		const char *want;
	} bad[] = {
	    {"body: urn:juki:cs:131016\nstaff: {cert: s.crt, key: s.key}\n",
	     "not a receiving body"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt}\n", "one of the two"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt, key: s.key, card: 'pkcs11:x'}\n",
	     "one of the two"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt, card: 'file:x'}\n",
	     "not a pkcs11: URI"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt, card: "
	     "'pkcs11:token=t?pin-value=1234'}\n",
	     "carries a PIN"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt, key: s.key}\npart_size: 1001\n",
	     "part_size"},
	    {"body: urn:juki:agency:nenkin\nstaff: {cert: s.crt, key: s.key}\npin: 1234\n", "pin"},
	};
	char text[1024], err[512];
	struct ctl_body b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base, bad[i].extra);
		err[0] = '\0';
		assert_int_not_equal(load(text, &b, err, sizeof(err)), 0);
		if (strstr(err, bad[i].want) == NULL) {
			fail_msg("case %zu: %s", i, err);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_file),
	    cmocka_unit_test(test_body_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
