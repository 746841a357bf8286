#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/report.h"
#include "juki/store/store.h"
#include "juki/wire/msg.h"

#include "helpers.h"

#define ID     "01a24d9a-c2d4-7667-bc62-7de86c59790e"
#define CS     "urn:juki:cs:131016"
#define PREF   "urn:juki:pref:13"
#define JLIS   "urn:juki:jlis:0"
#define NENKIN "urn:juki:agency:nenkin"
#define KYOIKU "urn:juki:exec:13-kyoiku"
#define OSAKA  "urn:juki:exec:27-kyoiku"

/* ---- the state machine ---- */

static void
expect_step(const char *from, enum juki_report_event ev, const char *to)
{
	const char *next = NULL;

	assert_int_equal(juki_report_step(from, ev, &next), 0);
	assert_string_equal(next, to);
}

static void
expect_no_step(const char *from, enum juki_report_event ev)
{
	const char *next = NULL;

	assert_int_equal(juki_report_step(from, ev, &next), JUKI_EINVAL);
}

static void
test_step_forward(void **state)
{
	(void)state;
	expect_step("sent", JUKI_REPORT_EV_HELD, "received");
	expect_step("sent", JUKI_REPORT_EV_ANSWERED, "answered");
	expect_step("sent", JUKI_REPORT_EV_REFUSED, "refused");
	expect_step("sent", JUKI_REPORT_EV_DUE, "overdue");
	expect_step("received", JUKI_REPORT_EV_HELD, "received");
	expect_step("received", JUKI_REPORT_EV_ANSWERED, "answered");
	expect_step("received", JUKI_REPORT_EV_DUE, "overdue");
}

static void
test_step_overdue(void **state)
{
	(void)state;
	/* Overdue stays overdue when the holder is heard of; an answer still ends it. */
	expect_step("overdue", JUKI_REPORT_EV_HELD, "overdue");
	expect_step("overdue", JUKI_REPORT_EV_ANSWERED, "answered");
	expect_step("overdue", JUKI_REPORT_EV_DUE, "overdue");
	expect_step("overdue", JUKI_REPORT_EV_REFUSED, "refused");
}

static void
test_step_final(void **state)
{
	(void)state;
	/* The holder has it: nothing on the way can refuse it any more. */
	expect_no_step("received", JUKI_REPORT_EV_REFUSED);
	for (int ev = JUKI_REPORT_EV_HELD; ev <= JUKI_REPORT_EV_DUE; ev++) {
		expect_no_step("answered", (enum juki_report_event)ev);
		expect_no_step("refused", (enum juki_report_event)ev);
		expect_no_step("bogus", (enum juki_report_event)ev);
	}
}

/* ---- request bodies ---- */

static json_t *
good_request(void)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", ID, "kind", "report",
			 "requester", CS, "body", NENKIN, "provider", "national", "subject",
			 "管理状況の報告", "text", "報告してください。\n", "due", "2027-01-31");
}

static int
parse_request(json_t *obj, struct juki_reject *rej)
{
	struct juki_report r;
	int rc;

	memset(rej, 0, sizeof(*rej));
	rc = juki_report_from_json(obj, &r, rej);
	juki_report_clear(&r);
	json_decref(obj);
	return rc;
}

static void
test_request_good(void **state)
{
	struct juki_reject rej;
	struct juki_report r;
	json_t *obj = good_request(), *back;

	(void)state;
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_report_from_json(obj, &r, &rej), 0);
	assert_string_equal(r.body, NENKIN);
	assert_string_equal(r.provider, "national");
	assert_string_equal(r.due, "2027-01-31");
	back = juki_report_to_json(&r);
	assert_true(json_equal(back, obj));
	json_decref(back);
	json_decref(obj);
	juki_report_clear(&r);
}

static void
expect_bad_request(const char *key, json_t *value, const char *reason)
{
	struct juki_reject rej;
	json_t *obj = good_request();

	if (value == NULL) {
		json_object_del(obj, key);
	} else {
		json_object_set_new(obj, key, value);
	}
	assert_int_equal(parse_request(obj, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, reason);
}

static void
test_request_bad(void **state)
{
	char *big = malloc(JUKI_REPORT_TEXT_MAX + 2), subject[JUKI_REPORT_SUBJECT_MAX * 3 + 4] = "";

	(void)state;
	assert_non_null(big);
	memset(big, 'x', JUKI_REPORT_TEXT_MAX + 1);
	big[JUKI_REPORT_TEXT_MAX + 1] = '\0';
	for (int i = 0; i <= JUKI_REPORT_SUBJECT_MAX; i++) {
		strcat(subject, "報");
	}
	expect_bad_request("id", json_string("not-a-uuid"), JUKI_R_BAD_FIELD);
	expect_bad_request("id", NULL, JUKI_R_BAD_FIELD);
	expect_bad_request("kind", json_string("audit"), JUKI_R_BAD_FIELD);
	expect_bad_request("requester", json_string("urn:juki:op:cs:131016:boss"),
			   JUKI_R_BAD_FIELD);
	expect_bad_request("body", json_string("nenkin"), JUKI_R_BAD_FIELD);
	expect_bad_request("provider", json_string(JLIS), JUKI_R_BAD_FIELD);
	expect_bad_request("subject", json_string("two\nlines"), JUKI_R_BAD_FIELD);
	expect_bad_request("subject", json_string(subject), JUKI_R_BAD_FIELD);
	expect_bad_request("subject", json_integer(1), JUKI_R_BAD_FIELD);
	expect_bad_request("text", json_string(""), JUKI_R_BAD_FIELD);
	expect_bad_request("text", json_stringn("a\0b", 3), JUKI_R_BAD_FIELD);
	expect_bad_request("text", json_string(big), JUKI_R_BAD_FIELD);
	expect_bad_request("due", json_string("2027-02-30"), JUKI_R_BAD_FIELD);
	expect_bad_request("extra", json_true(), JUKI_R_BAD_FIELD);
	free(big);
}

/* ---- answers ---- */

static int
parse_answer(const char *media, const char *data, struct juki_report_answer *a,
	     struct juki_reject *rej)
{
	json_t *obj = json_pack("{s:s,s:s,s:s}", "id", ID, "media", media, "data", data);
	int rc;

	memset(rej, 0, sizeof(*rej));
	rc = juki_report_answer_from_json(obj, a, rej);
	json_decref(obj);
	return rc;
}

static void
expect_bad_answer(const char *media, const char *data, const char *reason)
{
	struct juki_report_answer a;
	struct juki_reject rej;

	assert_int_equal(parse_answer(media, data, &a, &rej), JUKI_REJECT);
	assert_string_equal(rej.reason, reason);
	juki_report_answer_clear(&a);
}

static void
test_answer_good(void **state)
{
	struct juki_report_answer a;
	struct juki_reject rej;
	json_t *back;

	(void)state;
	/* "適切\n" and "%PDF-1" */
	assert_int_equal(parse_answer("text/plain", "6YGp5YiHCg==", &a, &rej), 0);
	assert_int_equal(a.len, 7);
	assert_memory_equal(a.data, "適切\n", 7);
	back = juki_report_answer_to_json(&a);
	assert_string_equal(json_string_value(json_object_get(back, "data")), "6YGp5YiHCg==");
	json_decref(back);
	juki_report_answer_clear(&a);
	assert_int_equal(parse_answer("application/pdf", "JVBERi0x", &a, &rej), 0);
	assert_int_equal(a.len, 6);
	juki_report_answer_clear(&a);
}

static void
test_answer_bad(void **state)
{
	size_t n = ((JUKI_REPORT_ANSWER_MAX + 3) / 3) * 4;
	char *big = malloc(n + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'A', n);
	big[n] = '\0';
	expect_bad_answer("text/html", "YQ==", JUKI_R_BAD_FIELD);
	expect_bad_answer("text/plain", "YQ=", JUKI_R_BAD_FIELD);       /* not whole quanta */
	expect_bad_answer("text/plain", "Y=Q=", JUKI_R_BAD_FIELD);      /* padding inside */
	expect_bad_answer("text/plain", "!!!!", JUKI_R_BAD_FIELD);      /* not the alphabet */
	expect_bad_answer("text/plain", "", JUKI_R_BAD_FIELD);          /* empty */
	expect_bad_answer("text/plain", "//79", JUKI_R_BAD_FIELD);      /* ff fe fd: not UTF-8 */
	expect_bad_answer("text/plain", "AAAA", JUKI_R_BAD_FIELD);      /* NUL */
	expect_bad_answer("text/plain", "7aCA", JUKI_R_BAD_FIELD);      /* a surrogate */
	expect_bad_answer("text/plain", "wIA=", JUKI_R_BAD_FIELD);      /* overlong */
	expect_bad_answer("application/pdf", "YWJj", JUKI_R_BAD_FIELD); /* not a PDF */
	expect_bad_answer("text/plain", big, JUKI_R_ANSWER_TOO_BIG);
	free(big);
}

/* ---- routes ---- */

static int
route(const char *self_urn, const char *up, const char *sender_urn, const char *requester,
      const char *body, const char *provider, int *hold, char *reason)
{
	struct juki_ident self, sender;
	struct juki_reject rej;
	struct juki_report r;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_ident_parse(self_urn, &self), 0);
	if (sender_urn != NULL) {
		assert_int_equal(juki_ident_parse(sender_urn, &sender), 0);
	}
	snprintf(r.requester, sizeof(r.requester), "%s", requester);
	snprintf(r.body, sizeof(r.body), "%s", body);
	snprintf(r.provider, sizeof(r.provider), "%s", provider);
	rc = juki_report_route(&self, up, sender_urn ? &sender : NULL, &r, hold, &rej);
	snprintf(reason, JUKI_REASON_MAX, "%s", rej.reason);
	return rc;
}

static void
expect_route(const char *self, const char *up, const char *sender, const char *requester,
	     const char *body, const char *provider, int want_hold)
{
	char reason[JUKI_REASON_MAX];
	int hold = -1;

	assert_int_equal(route(self, up, sender, requester, body, provider, &hold, reason), 0);
	assert_int_equal(hold, want_hold);
}

static void
expect_refused(const char *self, const char *up, const char *sender, const char *requester,
	       const char *body, const char *provider)
{
	char reason[JUKI_REASON_MAX];
	int hold;

	assert_int_equal(route(self, up, sender, requester, body, provider, &hold, reason),
			 JUKI_REJECT);
	assert_string_equal(reason, JUKI_R_REPORT_ROUTE);
}

static void
test_route_allowed(void **state)
{
	(void)state;
	/* 第6-8(1)エ, (2)イ: a municipality through its prefecture (and the national server). */
	expect_route(CS, PREF, NULL, CS, NENKIN, "pref", 0);
	expect_route(CS, PREF, NULL, CS, OSAKA, "national", 0);
	expect_route(PREF, JLIS, CS, CS, NENKIN, "pref", 1);
	expect_route(PREF, JLIS, CS, CS, KYOIKU, "pref", 1);
	expect_route(PREF, JLIS, CS, CS, OSAKA, "national", 0);
	expect_route(JLIS, NULL, PREF, CS, OSAKA, "national", 1);
	/* 第6-8(4)イ: the prefecture's own use, answered by the prefecture. */
	expect_route(CS, PREF, NULL, CS, PREF, "pref", 0);
	expect_route(PREF, JLIS, CS, CS, PREF, "pref", 1);
	/* 第6-8(1)ウ, (2)ア, (4)ア: a prefecture directly, or through the national server. */
	expect_route(PREF, JLIS, NULL, PREF, KYOIKU, "pref", 1);
	expect_route(PREF, JLIS, NULL, PREF, NENKIN, "national", 0);
	expect_route(JLIS, NULL, PREF, PREF, NENKIN, "national", 1);
	/* The national server, about what it provided itself. */
	expect_route(JLIS, NULL, NULL, JLIS, NENKIN, "national", 1);
}

static void
test_route_refused(void **state)
{
	(void)state;
	/* Another prefecture's executive body is not the prefecture's to hold. */
	expect_refused(CS, PREF, NULL, CS, OSAKA, "pref");
	expect_refused(PREF, JLIS, CS, CS, OSAKA, "pref");
	expect_refused(PREF, JLIS, NULL, PREF, OSAKA, "pref");
	/* A CS asks for itself; another prefecture's CS is not this one's. */
	expect_refused(PREF, JLIS, CS, "urn:juki:cs:271004", NENKIN, "pref");
	expect_refused(PREF, JLIS, "urn:juki:cs:271004", "urn:juki:cs:271004", NENKIN, "pref");
	/* A body does not pass requests on; a municipality is not a body. */
	expect_refused(PREF, JLIS, NENKIN, NENKIN, KYOIKU, "pref");
	expect_refused(PREF, JLIS, NULL, PREF, CS, "pref");
	/* The national server takes from prefectures, about what it provided. */
	expect_refused(JLIS, NULL, CS, CS, NENKIN, "national");
	expect_refused(JLIS, NULL, PREF, PREF, NENKIN, "pref");
	expect_refused(JLIS, NULL, PREF, "urn:juki:cs:271004", NENKIN, "national");
	/* The prefecture's own use is the prefecture's: never through the national server. */
	expect_refused(CS, PREF, NULL, CS, PREF, "national");
	/* A municipal server is asked nothing. */
	expect_refused(CS, PREF, PREF, PREF, NENKIN, "pref");
}

/* ---- routes to the certification authority (第6-8(6)ウ・エ) ---- */

#define CA       "urn:juki:ca:jpki"
#define OTHER_CA "urn:juki:ca:other"
#define AL0      "urn:juki:authlink:0"
#define AL13     "urn:juki:authlink:13"
#define CS27     "urn:juki:cs:271004"
#define PREF27   "urn:juki:pref:27"

/*
 * Route r (requester, provider, to CA unless body) at self with links {up,
 * authlink, ca}; the node it goes on to in next ("" when held), the reason
 * of a refusal in reason.
 */
static int
route_via(const char *self_urn, const char *up, const char *authlink, const char *ca,
	  const char *sender_urn, const char *requester, const char *body, const char *provider,
	  int *hold, char *next, char *reason)
{
	struct juki_report_links links = {up, authlink, ca};
	struct juki_ident self, sender;
	struct juki_reject rej;
	struct juki_report r;
	const char *to = NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_ident_parse(self_urn, &self), 0);
	if (sender_urn != NULL) {
		assert_int_equal(juki_ident_parse(sender_urn, &sender), 0);
	}
	snprintf(r.requester, sizeof(r.requester), "%s", requester);
	snprintf(r.body, sizeof(r.body), "%s", body);
	snprintf(r.provider, sizeof(r.provider), "%s", provider);
	rc = juki_report_route_via(&self, &links, sender_urn ? &sender : NULL, &r, hold, &to, &rej);
	snprintf(next, JUKI_URN_MAX, "%s", to ? to : "");
	snprintf(reason, JUKI_REASON_MAX, "%s", rej.reason);
	return rc;
}

/* At self with links, r from sender goes on to want_next ("" and held when NULL). */
static void
expect_ca_route(const char *self, const char *up, const char *authlink, const char *sender,
		const char *requester, const char *provider, const char *want_next)
{
	char next[JUKI_URN_MAX], reason[JUKI_REASON_MAX];
	int hold = -1;

	assert_int_equal(
	    route_via(self, up, authlink, CA, sender, requester, CA, provider, &hold, next, reason),
	    0);
	assert_int_equal(hold, want_next == NULL);
	assert_string_equal(next, want_next ? want_next : "");
}

static void
expect_ca_refused(const char *self, const char *up, const char *authlink, const char *sender,
		  const char *requester, const char *body, const char *provider)
{
	char next[JUKI_URN_MAX], reason[JUKI_REASON_MAX];
	int hold;

	assert_int_equal(route_via(self, up, authlink, CA, sender, requester, body, provider, &hold,
				   next, reason),
			 JUKI_REJECT);
	assert_string_equal(reason, JUKI_R_REPORT_ROUTE);
}

static void
test_route_ca_allowed(void **state)
{
	(void)state;
	/* ウ: the national server asks about what it provided: held at its link server. */
	expect_ca_route(JLIS, NULL, AL0, NULL, JLIS, "national", AL0);
	expect_ca_route(AL0, NULL, NULL, JLIS, JLIS, "national", NULL);
	/* ウ: a prefecture that provides itself, at its own link server. */
	expect_ca_route(PREF, JLIS, AL13, NULL, PREF, "pref", AL13);
	expect_ca_route(AL13, NULL, NULL, PREF, PREF, "pref", NULL);
	/* ウ second paragraph: a 委任 prefecture through the national server. */
	expect_ca_route(PREF, JLIS, NULL, NULL, PREF, "national", JLIS);
	expect_ca_route(PREF, JLIS, AL13, NULL, PREF, "national", JLIS);
	expect_ca_route(JLIS, NULL, AL0, PREF, PREF, "national", AL0);
	expect_ca_route(AL0, NULL, NULL, JLIS, PREF, "national", NULL);
	/* エ: a municipality through its prefecture (and the national server). */
	expect_ca_route(CS, PREF, NULL, NULL, CS, "national", PREF);
	expect_ca_route(CS, PREF, NULL, NULL, CS, "pref", PREF);
	expect_ca_route(PREF, JLIS, NULL, CS, CS, "national", JLIS);
	expect_ca_route(PREF, JLIS, AL13, CS, CS, "pref", AL13);
	expect_ca_route(JLIS, NULL, AL0, PREF, CS, "national", AL0);
	expect_ca_route(AL0, NULL, NULL, JLIS, CS, "national", NULL);
	expect_ca_route(AL13, NULL, NULL, PREF, CS, "pref", NULL);
}

static void
test_route_ca_refused(void **state)
{
	(void)state;
	/* A prefecture that provides nothing itself has no link server of its own. */
	expect_ca_refused(PREF, JLIS, NULL, NULL, PREF, CA, "pref");
	expect_ca_refused(PREF, JLIS, "", CS, CS, CA, "pref");
	/* The national server passes on what it provided; it needs its link server. */
	expect_ca_refused(JLIS, NULL, AL0, PREF, PREF, CA, "pref");
	expect_ca_refused(JLIS, NULL, NULL, NULL, JLIS, CA, "national");
	expect_ca_refused(JLIS, NULL, AL0, CS, CS, CA, "national");
	expect_ca_refused(JLIS, NULL, AL0, PREF, CS27, CA, "national");
	/* Another authority than the one provided to. */
	expect_ca_refused(JLIS, NULL, AL0, NULL, JLIS, OTHER_CA, "national");
	expect_ca_refused(PREF, JLIS, AL13, NULL, PREF, OTHER_CA, "pref");
	expect_ca_refused(AL0, NULL, NULL, JLIS, JLIS, OTHER_CA, "national");
	/* A prefecture's and a municipality's own rules hold for the authority too. */
	expect_ca_refused(PREF, JLIS, AL13, CS27, CS27, CA, "pref");
	expect_ca_refused(PREF, JLIS, AL13, NULL, CS, CA, "pref");
	expect_ca_refused(CS, PREF, NULL, PREF, PREF, CA, "national");
	/* A link server: from jlis national only, from its own prefecture pref only. */
	expect_ca_refused(AL0, NULL, NULL, NULL, "urn:juki:authlink:0", CA, "national");
	expect_ca_refused(AL0, NULL, NULL, JLIS, JLIS, CA, "pref");
	expect_ca_refused(AL13, NULL, NULL, PREF, PREF, CA, "national");
	expect_ca_refused(AL13, NULL, NULL, PREF27, PREF27, CA, "pref");
	expect_ca_refused(AL13, NULL, NULL, PREF, CS27, CA, "pref");
	expect_ca_refused(AL0, NULL, NULL, CS, CS, CA, "national");
	expect_ca_refused(AL0, NULL, NULL, CA, CA, CA, "national");
	expect_ca_refused(AL0, NULL, NULL, "urn:juki:agency:nenkin", NENKIN, CA, "national");
	/* A link server holds requests to the authority only. */
	expect_ca_refused(AL0, NULL, NULL, JLIS, JLIS, NENKIN, "national");
	/* Without the link server known, the old route: nothing to the authority. */
	expect_refused(JLIS, NULL, NULL, JLIS, CA, "national");
	expect_refused(PREF, JLIS, NULL, PREF, CA, "pref");
}

static void
test_copies_event(void **state)
{
	enum juki_report_event ev = JUKI_REPORT_EV_DUE;

	(void)state;
	/* Nothing acknowledged yet, or one refused while another is on its way: nothing. */
	assert_int_equal(juki_report_copies_event(0, 2, 0, &ev), 1);
	assert_int_equal(juki_report_copies_event(0, 1, 1, &ev), 1);
	assert_int_equal(ev, JUKI_REPORT_EV_DUE);
	/* One centre holds it: held, whatever the other did. */
	assert_int_equal(juki_report_copies_event(1, 1, 0, &ev), 0);
	assert_int_equal(ev, JUKI_REPORT_EV_HELD);
	assert_int_equal(juki_report_copies_event(1, 0, 1, &ev), 0);
	assert_int_equal(ev, JUKI_REPORT_EV_HELD);
	/* Every centre refused it: refused. */
	assert_int_equal(juki_report_copies_event(0, 0, 2, &ev), 0);
	assert_int_equal(ev, JUKI_REPORT_EV_REFUSED);
}

/* The request of good_request() with key set to value. */
static void
same_but(const char *key, const char *value, struct juki_report *r)
{
	struct juki_reject rej;
	json_t *obj = good_request();

	json_object_set_new(obj, key, json_string(value));
	memset(&rej, 0, sizeof(rej));
	assert_int_equal(juki_report_from_json(obj, r, &rej), 0);
	json_decref(obj);
}

static void
test_same(void **state)
{
	/* A link server takes a copy through the other centre only when nothing differs. */
	static const char *const other[][2] = {
	    {"kind", "improvement"},
	    {"requester", "urn:juki:cs:131024"},
	    {"body", "urn:juki:agency:other"},
	    {"provider", "pref"},
	    {"subject", "管理状況の報告 "},
	    {"text", "報告してください。"},
	    {"due", "2027-01-30"},
	    {"id", "01a24d9a-c2d4-7667-bc62-7de86c59790f"},
	};
	struct juki_report a, b;

	(void)state;
	same_but("kind", "report", &a);
	same_but("kind", "report", &b);
	assert_true(juki_report_same(&a, &b));
	juki_report_clear(&b);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		same_but(other[i][0], other[i][1], &b);
		assert_false(juki_report_same(&a, &b));
		assert_false(juki_report_same(&b, &a));
		juki_report_clear(&b);
	}
	juki_report_clear(&a);
}

/* ---- the table ---- */

static void
test_schema(void **state)
{
	static const struct juki_schema schemas[] = {JUKI_REPORT_SCHEMA};
	char dir[64], path[128], err[256];
	struct juki_store *store;
	sqlite3_stmt *st;

	(void)state;
	assert_non_null(test_mkdtemp(dir, sizeof(dir), "report"));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(juki_store_open(path, schemas, 1, &store, err, sizeof(err)), 0);
	st = juki_store_prepare(store,
				"INSERT INTO report (id, kind, requester, body, provider, subject,"
				" text, due, state, created_ms, updated_ms)"
				" VALUES (?1, 'report', ?2, ?3, 'pref', 's', 't', '2027-01-01', ?4,"
				" 0, 0)");
	assert_non_null(st);
	sqlite3_bind_text(st, 1, ID, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, CS, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, NENKIN, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, "lost", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st) & 0xff, SQLITE_CONSTRAINT);
	sqlite3_reset(st);
	sqlite3_bind_text(st, 4, "sent", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_reset(st);
	/* A copy to a centre: sent, received or refused, once per centre. */
	st =
	    juki_store_prepare(store, "INSERT INTO report_centre (id, dest, request_msg, state,"
				      " updated_ms) VALUES (?1, 'urn:juki:jlis:east', 'm', ?2, 0)");
	assert_non_null(st);
	sqlite3_bind_text(st, 1, ID, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, "answered", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st) & 0xff, SQLITE_CONSTRAINT);
	sqlite3_reset(st);
	sqlite3_bind_text(st, 2, "sent", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_reset(st);
	assert_int_equal(sqlite3_step(st) & 0xff, SQLITE_CONSTRAINT);
	sqlite3_reset(st);
	juki_store_close(store);
	assert_int_equal(test_rm_rf(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_step_forward),
	    cmocka_unit_test(test_step_overdue),
	    cmocka_unit_test(test_step_final),
	    cmocka_unit_test(test_request_good),
	    cmocka_unit_test(test_request_bad),
	    cmocka_unit_test(test_answer_good),
	    cmocka_unit_test(test_answer_bad),
	    cmocka_unit_test(test_route_allowed),
	    cmocka_unit_test(test_route_refused),
	    cmocka_unit_test(test_route_ca_allowed),
	    cmocka_unit_test(test_route_ca_refused),
	    cmocka_unit_test(test_copies_event),
	    cmocka_unit_test(test_same),
	    cmocka_unit_test(test_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
