/* Management reports between bodies (juki/node/report.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include <unistr.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/report.h"
#include "juki/records/person.h"

#define TICK_MS  1000
#define POLL_MAX 16 /* report.status queued per tick */
#define DUE_MAX  64 /* overdue alerts per tick */
#define B64_MAX  (((JUKI_REPORT_ANSWER_MAX + 2) / 3) * 4)

const struct juki_migration juki_report_steps[JUKI_REPORT_NSTEPS] = {
    {1, "CREATE TABLE report ("
	" id TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL CHECK (kind IN ('report', 'improvement')),"
	" requester TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" provider TEXT NOT NULL CHECK (provider IN ('pref', 'national')),"
	" subject TEXT NOT NULL,"
	" text TEXT NOT NULL,"
	" due TEXT NOT NULL,"
	" prev TEXT,"
	" next TEXT,"
	" state TEXT NOT NULL"
	"  CHECK (state IN ('sent', 'received', 'answered', 'overdue', 'refused')),"
	" held INTEGER NOT NULL DEFAULT 0,"
	" reason TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" request_msg TEXT,"
	" fetched_ms INTEGER,"
	" answered_ms INTEGER,"
	" answered_by TEXT,"
	" media TEXT,"
	" answer BLOB,"
	" alerted_ms INTEGER,"
	" polled_ms INTEGER,"
	" poll_msg TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX report_open ON report(due) WHERE state IN ('sent', 'received');"
	"CREATE INDEX report_held ON report(body, created_ms) WHERE next IS NULL;"
	"CREATE INDEX report_request_msg ON report(request_msg);"
	"CREATE INDEX report_poll_msg ON report(poll_msg);"},
    /*
     * At a prefecture with several national centres: the copy of a request
     * passed on to each centre, acknowledged (held or refused) by each on its
     * own (docs/architecture.md §27).
     */
    {2, "CREATE TABLE report_centre ("
	" id TEXT NOT NULL,"
	" dest TEXT NOT NULL,"
	" request_msg TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('sent', 'received', 'refused')),"
	" reason TEXT,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY (id, dest)"
	") WITHOUT ROWID;"
	"CREATE INDEX report_centre_msg ON report_centre(request_msg);"},
};

/* ---- the state machine ---------------------------------------------------- */

int
juki_report_step(const char *state, enum juki_report_event ev, const char **next)
{
	int sent = strcmp(state, "sent") == 0, received = strcmp(state, "received") == 0;
	int overdue = strcmp(state, "overdue") == 0;

	if (!sent && !received && !overdue) {
		return JUKI_EINVAL; /* answered and refused are final; anything else unknown */
	}
	switch (ev) {
	case JUKI_REPORT_EV_HELD:
		*next = sent ? "received" : received ? "received" : "overdue";
		return 0;
	case JUKI_REPORT_EV_ANSWERED:
		*next = "answered";
		return 0;
	case JUKI_REPORT_EV_REFUSED:
		if (received) {
			return JUKI_EINVAL; /* the holder has it: nothing on the way can refuse it
					     */
		}
		*next = "refused";
		return 0;
	case JUKI_REPORT_EV_DUE:
		*next = "overdue";
		return 0;
	}
	return JUKI_EINVAL;
}

int
juki_report_copies_event(size_t held, size_t sent, size_t refused, enum juki_report_event *ev)
{
	if (held > 0) {
		*ev = JUKI_REPORT_EV_HELD;
		return 0;
	}
	if (sent == 0 && refused > 0) {
		*ev = JUKI_REPORT_EV_REFUSED;
		return 0;
	}
	return 1;
}

/* ---- bodies --------------------------------------------------------------- */

void
juki_report_clear(struct juki_report *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static int
body_kind(const struct juki_ident *id)
{
	return id->kind == JUKI_KIND_AGENCY || id->kind == JUKI_KIND_EXEC;
}

static int
copy_field(const json_t *obj, const char *key, char *out, size_t len, struct juki_reject *rej)
{
	const json_t *j = json_object_get(obj, key);
	const char *v = json_string_value(j);

	if (v == NULL || v[0] == '\0' || json_string_length(j) != strlen(v)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "%s: a non-empty string without NUL is required", key);
	}
	if (strlen(v) >= len) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: too long", key);
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
urn_field(const json_t *obj, const char *key, char *out, struct juki_reject *rej)
{
	struct juki_ident id;

	if (copy_field(obj, key, out, JUKI_URN_MAX, rej) != 0) {
		return JUKI_REJECT;
	}
	if (juki_ident_parse(out, &id) != 0 || id.kind == JUKI_KIND_OP) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "%s: not a node identity", key);
	}
	return 0;
}

static const char *const request_keys[] = {"id",      "kind", "requester", "body", "provider",
					   "subject", "text", "due",       NULL};

static int
only_keys(const json_t *obj, const char *const *keys, struct juki_reject *rej)
{
	const char *key;
	const json_t *v;

	if (!json_is_object(obj)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: an object is required");
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++) {
		}
		if (keys[i] == NULL) {
			return juki_reject_set(rej, JUKI_R_BAD_FIELD, "an unknown field");
		}
	}
	return 0;
}

int
juki_report_from_json(const json_t *obj, struct juki_report *r, struct juki_reject *rej)
{
	const char *text;
	char why[128];

	memset(r, 0, sizeof(*r));
	if (only_keys(obj, request_keys, rej) != 0 ||
	    copy_field(obj, "id", r->id, sizeof(r->id), rej) != 0) {
		return JUKI_REJECT;
	}
	if (!juki_uuid_valid(r->id)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "id: a UUIDv7 is required");
	}
	if (copy_field(obj, "kind", r->kind, sizeof(r->kind), rej) != 0) {
		return JUKI_REJECT;
	}
	if (strcmp(r->kind, "report") != 0 && strcmp(r->kind, "improvement") != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "kind: report or improvement");
	}
	if (urn_field(obj, "requester", r->requester, rej) != 0 ||
	    urn_field(obj, "body", r->body, rej) != 0 ||
	    copy_field(obj, "provider", r->provider, sizeof(r->provider), rej) != 0) {
		return JUKI_REJECT;
	}
	if (strcmp(r->provider, "pref") != 0 && strcmp(r->provider, "national") != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "provider: pref or national");
	}
	if (copy_field(obj, "subject", r->subject, sizeof(r->subject), rej) != 0) {
		return JUKI_REJECT;
	}
	if (juki_text_valid(r->subject, sizeof(r->subject) - 1, why, sizeof(why)) != 0 ||
	    u8_mbsnlen((const uint8_t *)r->subject, strlen(r->subject)) > JUKI_REPORT_SUBJECT_MAX) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "subject: 1..%d characters of one line, NFC",
				       JUKI_REPORT_SUBJECT_MAX);
	}
	text = json_string_value(json_object_get(obj, "text"));
	if (text == NULL || text[0] == '\0' ||
	    json_string_length(json_object_get(obj, "text")) != strlen(text)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "text: non-empty text without NUL");
	}
	if (strlen(text) > JUKI_REPORT_TEXT_MAX) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "text: at most %d bytes",
				       JUKI_REPORT_TEXT_MAX);
	}
	if ((r->text = strdup(text)) == NULL) {
		return JUKI_ENOMEM;
	}
	text = json_string_value(json_object_get(obj, "due"));
	if (text == NULL || !juki_date_valid(text)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "due: YYYY-MM-DD, a real day");
	}
	memcpy(r->due, text, 11);
	return 0;
}

json_t *
juki_report_to_json(const struct juki_report *r)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", r->id, "kind", r->kind,
			 "requester", r->requester, "body", r->body, "provider", r->provider,
			 "subject", r->subject, "text", r->text ? r->text : "", "due", r->due);
}

int
juki_report_same(const struct juki_report *a, const struct juki_report *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->kind, b->kind) == 0 &&
	       strcmp(a->requester, b->requester) == 0 && strcmp(a->body, b->body) == 0 &&
	       strcmp(a->provider, b->provider) == 0 && strcmp(a->subject, b->subject) == 0 &&
	       strcmp(a->text ? a->text : "", b->text ? b->text : "") == 0 &&
	       strcmp(a->due, b->due) == 0;
}

void
juki_report_answer_clear(struct juki_report_answer *a)
{
	free(a->data);
	memset(a, 0, sizeof(*a));
}

static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp, min;

		if (c == 0) {
			return 0;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + k >= n) {
			return 0;
		}
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80) {
				return 0;
			}
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			return 0;
		}
		i += k + 1;
	}
	return 1;
}

static const char *const answer_keys[] = {"id", "media", "data", "by", NULL};

int
juki_report_answer_from_json(const json_t *obj, struct juki_report_answer *a,
			     struct juki_reject *rej)
{
	const json_t *data = json_object_get(obj, "data");
	const char *b64 = json_string_value(data);
	struct juki_ident by;
	size_t blen, pad = 0;
	int n;

	memset(a, 0, sizeof(*a));
	if (only_keys(obj, answer_keys, rej) != 0 ||
	    copy_field(obj, "id", a->id, sizeof(a->id), rej) != 0) {
		return JUKI_REJECT;
	}
	if (!juki_uuid_valid(a->id)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "id: a UUIDv7 is required");
	}
	if (copy_field(obj, "media", a->media, sizeof(a->media), rej) != 0) {
		return JUKI_REJECT;
	}
	if (strcmp(a->media, "text/plain") != 0 && strcmp(a->media, "application/pdf") != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD,
				       "media: text/plain or application/pdf");
	}
	if (json_object_get(obj, "by") != NULL &&
	    copy_field(obj, "by", a->by, sizeof(a->by), rej) != 0) {
		return JUKI_REJECT;
	}
	if (a->by[0] != '\0' && juki_ident_parse(a->by, &by) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "by: not an identity");
	}
	if (b64 == NULL) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: base64 is required");
	}
	blen = json_string_length(data);
	if (blen > B64_MAX) {
		return juki_reject_set(rej, JUKI_R_ANSWER_TOO_BIG, "data: at most %d bytes",
				       JUKI_REPORT_ANSWER_MAX);
	}
	if (blen == 0 || blen % 4 != 0 || strlen(b64) != blen) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: base64 in whole quanta");
	}
	for (size_t i = 0; i < blen; i++) {
		char c = b64[i];

		if (c == '=' && i + 2 >= blen) {
			pad++;
			continue;
		}
		if (pad != 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				  (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: not base64");
		}
	}
	if ((a->data = malloc(blen / 4 * 3 + 1)) == NULL) {
		return JUKI_ENOMEM;
	}
	n = EVP_DecodeBlock(a->data, (const unsigned char *)b64, (int)blen);
	if (n < 0 || (size_t)n < pad) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: not base64");
	}
	a->len = (size_t)n - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	if (a->len == 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: an empty document");
	}
	if (a->len > JUKI_REPORT_ANSWER_MAX) {
		return juki_reject_set(rej, JUKI_R_ANSWER_TOO_BIG, "data: at most %d bytes",
				       JUKI_REPORT_ANSWER_MAX);
	}
	if (strcmp(a->media, "text/plain") == 0 && !utf8_valid(a->data, a->len)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: text/plain must be UTF-8");
	}
	if (strcmp(a->media, "application/pdf") == 0 &&
	    (a->len < 5 || memcmp(a->data, "%PDF-", 5) != 0)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "data: not a PDF document");
	}
	return 0;
}

json_t *
juki_report_answer_to_json(const struct juki_report_answer *a)
{
	char *b64 = malloc((a->len + 2) / 3 * 4 + 1);
	json_t *obj;

	if (b64 == NULL) {
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)b64, a->data, (int)a->len);
	obj = json_pack("{s:s,s:s,s:s}", "id", a->id, "media", a->media, "data", b64);
	free(b64);
	if (obj != NULL && a->by[0] != '\0') {
		json_object_set_new(obj, "by", json_string(a->by));
	}
	return obj;
}

/* ---- routing (the top of report.h) ----------------------------------------- */

static int
route_fail(struct juki_reject *rej, const char *why)
{
	return juki_reject_set(rej, JUKI_R_REPORT_ROUTE, "%s", why);
}

/* Whether a body may be held at self (a pref): agencies, and executive bodies of its prefecture. */
static int
held_at_pref(const struct juki_ident *self, const struct juki_ident *body, struct juki_reject *rej)
{
	char pref[3];

	if (body->kind == JUKI_KIND_EXEC &&
	    (juki_ident_pref_of(body, pref) != 0 || strcmp(pref, self->id) != 0)) {
		return route_fail(rej, "an executive body of another prefecture receives identity "
				       "information from the national server: provider national");
	}
	return 0;
}

static int route_other(const struct juki_ident *self, const char *upstream,
		       const struct juki_ident *sender, const struct juki_report *r, int *hold,
		       struct juki_reject *rej, const struct juki_report_links *links,
		       const char **next);

/* A prefecture's requester: itself, or (sent by it) a CS of the prefecture for itself. */
static int
pref_requester(const struct juki_ident *self, const struct juki_ident *sender,
	       const struct juki_ident *requester, struct juki_reject *rej)
{
	char pref[3];

	if (sender == NULL) {
		return strcmp(requester->urn, self->urn) == 0
			   ? 0
			   : route_fail(rej, "requester: this prefecture");
	}
	if (sender->kind != JUKI_KIND_CS || strcmp(requester->urn, sender->urn) != 0 ||
	    juki_ident_pref_of(sender, pref) != 0 || strcmp(pref, self->id) != 0) {
		return route_fail(rej, "a prefectural server takes requests from the "
				       "municipalities of its prefecture, for themselves");
	}
	return 0;
}

/* The national server's requester: itself, or (sent by a pref) the pref or one of its CSs. */
static int
jlis_requester(const struct juki_ident *self, const struct juki_ident *sender,
	       const struct juki_ident *requester, struct juki_reject *rej)
{
	char pref[3];

	if (sender == NULL) {
		return strcmp(requester->urn, self->urn) == 0
			   ? 0
			   : route_fail(rej, "requester: this server");
	}
	if (sender->kind != JUKI_KIND_PREF) {
		return route_fail(rej, "the national server takes requests from prefectures "
				       "only (a municipality asks through its prefecture)");
	}
	if (strcmp(requester->urn, sender->urn) != 0 &&
	    (requester->kind != JUKI_KIND_CS || juki_ident_pref_of(requester, pref) != 0 ||
	     strcmp(pref, sender->id) != 0)) {
		return route_fail(rej, "requester: the prefecture or one of its municipalities");
	}
	return 0;
}

static int
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* The authority asked is the one this server provides to (when known). */
static int
ca_check(const struct juki_report_links *links, const struct juki_ident *body,
	 struct juki_reject *rej)
{
	if (!empty(links->ca) && strcmp(links->ca, body->urn) != 0) {
		return juki_reject_set(rej, JUKI_R_REPORT_ROUTE,
				       "body: this server provides 異動等情報 to %s only",
				       links->ca);
	}
	return 0;
}

/*
 * A request to the certification authority (第6-8(6)ウ・エ): held at the link
 * server the provider sends 異動等情報 through; provider national: the
 * national server's (jlis -> authlink), pref: the prefecture's own.
 */
static int
route_ca(const struct juki_ident *self, const struct juki_report_links *links,
	 const struct juki_ident *sender, const struct juki_ident *requester,
	 const struct juki_ident *body, int national, int *hold, const char **next,
	 struct juki_reject *rej)
{
	char pref[3];

	switch (self->kind) {
	case JUKI_KIND_CS:
		if (sender != NULL || strcmp(requester->urn, self->urn) != 0) {
			return route_fail(rej, "a municipal server takes no requests");
		}
		if (empty(links->up)) {
			return route_fail(rej, "no prefecture");
		}
		*next = links->up; /* 第6-8(6)エ: through the prefecture */
		return 0;
	case JUKI_KIND_PREF:
		if (pref_requester(self, sender, requester, rej) != 0) {
			return JUKI_REJECT;
		}
		if (national) {
			if (empty(links->up)) {
				return route_fail(rej, "no national server");
			}
			*next = links->up; /* 第6-8(6)ウ second paragraph, エ: through jlis */
			return 0;
		}
		if (empty(links->authlink)) {
			return route_fail(rej, "this prefecture provides no 異動等情報 itself "
					       "(ninsho.authlink): provider national");
		}
		if (ca_check(links, body, rej) != 0) {
			return JUKI_REJECT;
		}
		*next = links->authlink;
		return 0;
	case JUKI_KIND_JLIS:
		if (!national) {
			return route_fail(rej,
					  "the national server passes on requests about what it "
					  "provided: provider national");
		}
		if (jlis_requester(self, sender, requester, rej) != 0) {
			return JUKI_REJECT;
		}
		if (empty(links->authlink)) {
			return route_fail(rej,
					  "this server provides no 異動等情報 (ninsho.authlink)");
		}
		if (ca_check(links, body, rej) != 0) {
			return JUKI_REJECT;
		}
		*next = links->authlink;
		return 0;
	case JUKI_KIND_AUTHLINK:
		if (sender == NULL) {
			return route_fail(rej, "a link server asks nothing");
		}
		if (sender->kind == JUKI_KIND_JLIS) {
			if (!national) {
				return route_fail(rej,
						  "from the national server: provider national");
			}
			if (requester->kind != JUKI_KIND_JLIS &&
			    requester->kind != JUKI_KIND_PREF && requester->kind != JUKI_KIND_CS) {
				return route_fail(rej, "requester: a cs, pref or jlis");
			}
		} else if (sender->kind == JUKI_KIND_PREF) {
			if (national) {
				return route_fail(rej,
						  "from a prefecture: provider pref (what the "
						  "national server provided comes through it)");
			}
			if (strcmp(sender->id, self->id) != 0) {
				return route_fail(rej,
						  "a link server takes a prefecture's requests "
						  "only for the prefecture it serves");
			}
			if (strcmp(requester->urn, sender->urn) != 0 &&
			    (requester->kind != JUKI_KIND_CS ||
			     juki_ident_pref_of(requester, pref) != 0 ||
			     strcmp(pref, sender->id) != 0)) {
				return route_fail(
				    rej, "requester: the prefecture or one of its municipalities");
			}
		} else {
			return route_fail(rej, "a link server takes requests from the national "
					       "server or its prefecture only");
		}
		if (ca_check(links, body, rej) != 0) {
			return JUKI_REJECT;
		}
		*hold = 1;
		return 0;
	default:
		return route_fail(rej, "this server takes no requests");
	}
}

int
juki_report_route(const struct juki_ident *self, const char *upstream,
		  const struct juki_ident *sender, const struct juki_report *r, int *hold,
		  struct juki_reject *rej)
{
	struct juki_report_links links = {upstream, NULL, NULL};
	const char *next;

	return juki_report_route_via(self, &links, sender, r, hold, &next, rej);
}

int
juki_report_route_via(const struct juki_ident *self, const struct juki_report_links *links,
		      const struct juki_ident *sender, const struct juki_report *r, int *hold,
		      const char **next, struct juki_reject *rej)
{
	const char *upstream = links->up;
	int rc;

	*next = NULL;
	rc = route_other(self, upstream, sender, r, hold, rej, links, next);
	if (rc == 0 && !*hold && *next == NULL) {
		*next = upstream;
	}
	return rc;
}

static int
route_other(const struct juki_ident *self, const char *upstream, const struct juki_ident *sender,
	    const struct juki_report *r, int *hold, struct juki_reject *rej,
	    const struct juki_report_links *links, const char **next)
{
	struct juki_ident body, requester;
	int national = strcmp(r->provider, "national") == 0;
	char pref[3];

	*hold = 0;
	if (juki_ident_parse(r->body, &body) != 0 ||
	    juki_ident_parse(r->requester, &requester) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body, requester: identities");
	}
	if (body.kind == JUKI_KIND_CA) {
		return route_ca(self, links, sender, &requester, &body, national, hold, next, rej);
	}
	switch (self->kind) {
	case JUKI_KIND_CS:
		/* Asked here: it goes to our prefecture, which holds it or passes it on. */
		if (sender != NULL || strcmp(requester.urn, self->urn) != 0) {
			return route_fail(rej, "a municipal server takes no requests");
		}
		if (upstream != NULL && strcmp(body.urn, upstream) == 0) {
			if (national) {
				return route_fail(rej, "the prefecture's own use is asked of it: "
						       "provider pref");
			}
			return 0; /* 第6-8(4)イ: the prefecture's own use */
		}
		if (!body_kind(&body)) {
			return route_fail(rej,
					  "to: an agency, an executive body or our prefecture");
		}
		if (!national && body.kind == JUKI_KIND_EXEC) {
			struct juki_ident up;

			if (upstream == NULL || juki_ident_parse(upstream, &up) != 0) {
				return route_fail(rej, "no prefecture");
			}
			return held_at_pref(&up, &body, rej);
		}
		return 0;
	case JUKI_KIND_PREF:
		if (sender == NULL) {
			if (strcmp(requester.urn, self->urn) != 0) {
				return route_fail(rej, "requester: this prefecture");
			}
		} else if (sender->kind != JUKI_KIND_CS ||
			   strcmp(requester.urn, sender->urn) != 0 ||
			   juki_ident_pref_of(sender, pref) != 0 || strcmp(pref, self->id) != 0) {
			return route_fail(rej, "a prefectural server takes requests from the "
					       "municipalities of its prefecture, for themselves");
		}
		if (sender != NULL && strcmp(body.urn, self->urn) == 0) {
			if (national) {
				return route_fail(rej, "the prefecture's own use: provider pref");
			}
			*hold = 1; /* 第6-8(4)イ: answered here by the prefecture */
			return 0;
		}
		if (!body_kind(&body)) {
			return route_fail(rej, "body: an agency or an executive body");
		}
		if (national) {
			if (upstream == NULL) {
				return route_fail(rej, "no national server");
			}
			return 0; /* passed on to the national server */
		}
		*hold = 1;
		return held_at_pref(self, &body, rej);
	case JUKI_KIND_JLIS:
		if (!national) {
			return route_fail(rej, "the national server holds requests about what it "
					       "provided: provider national");
		}
		if (sender == NULL) {
			if (strcmp(requester.urn, self->urn) != 0) {
				return route_fail(rej, "requester: this server");
			}
		} else if (sender->kind != JUKI_KIND_PREF) {
			return route_fail(rej,
					  "the national server takes requests from prefectures "
					  "only (a municipality asks through its prefecture)");
		} else if (strcmp(requester.urn, sender->urn) != 0 &&
			   (requester.kind != JUKI_KIND_CS ||
			    juki_ident_pref_of(&requester, pref) != 0 ||
			    strcmp(pref, sender->id) != 0)) {
			return route_fail(rej,
					  "requester: the prefecture or one of its municipalities");
		}
		if (!body_kind(&body)) {
			return route_fail(rej, "body: an agency or an executive body");
		}
		*hold = 1;
		return 0;
	case JUKI_KIND_AUTHLINK:
		return route_fail(rej, "body: a link server holds requests to the certification "
				       "authority only");
	default:
		return route_fail(rej, "this server takes no requests");
	}
}

/* ---- the module at a node ------------------------------------------------------ */

struct juki_reports {
	struct juki_node *node;
	struct event *timer;
	char up[JUKI_URN_MAX]; /* "" at the national server */
	int64_t poll_ms;
	char authlink[JUKI_URN_MAX]; /* ninsho.authlink; "" when none */
	char ca[JUKI_URN_MAX];       /* ninsho.ca (authlink.ca at a link server); "" when not set */
	char centres[JUKI_REPORT_CENTRES_MAX][JUKI_URN_MAX]; /* a prefecture's national centres */
	size_t ncentres;
};

/* The handlers and commands are given the node; they find the module in its slot. */
static struct juki_reports *
reports_of(const struct juki_node *node)
{
	return juki_node_module(node, JUKI_MODULE_REPORTS);
}

static const char *
up_of(const struct juki_node *node)
{
	struct juki_reports *rp = reports_of(node);

	return rp != NULL && rp->up[0] != '\0' ? rp->up : NULL;
}

static struct juki_report_links
links_of(const struct juki_node *node)
{
	struct juki_reports *rp = reports_of(node);
	struct juki_report_links links = {up_of(node), NULL, NULL};

	if (rp != NULL) {
		links.authlink = rp->authlink;
		links.ca = rp->ca;
	}
	return links;
}

/*
 * The service a report message to dest travels on: ninsho to and from a link
 * server (第6-8(6)), provide otherwise.
 */
static const char *
service_to(const struct juki_node *node, const char *dest)
{
	struct juki_ident d;

	if (juki_node_self(node)->kind == JUKI_KIND_AUTHLINK ||
	    (juki_ident_parse(dest, &d) == 0 && d.kind == JUKI_KIND_AUTHLINK)) {
		return "ninsho";
	}
	return "provide";
}

static void history(struct juki_node *node, const char *who, const char *action, const char *id,
		    const char *outcome, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
history(struct juki_node *node, const char *who, const char *action, const char *id,
	const char *outcome, const char *fmt, ...)
{
	struct juki_opcmds *oc = juki_node_opcmds(node);
	char detail[JUKI_AUDIT_FIELD_MAX];
	va_list ap;

	if (oc == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	juki_opcmds_audit(oc, who, action, id, outcome, detail);
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL && v[0] != '\0') {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static const char sql_insert[] =
    "INSERT INTO report (id, kind, requester, body, provider, subject, text, due, prev, next,"
    " state, held, created_ms, updated_ms, request_msg)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14)";

static int
insert(struct juki_store *store, const struct juki_report *r, const char *prev, const char *next,
       int hold, int64_t now, const char *request_msg)
{
	sqlite3_stmt *st = juki_store_prepare(store, sql_insert);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->due, -1, SQLITE_STATIC);
	bind_opt(st, 9, prev);
	bind_opt(st, 10, next);
	sqlite3_bind_text(st, 11, hold ? "received" : "sent", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 12, hold);
	sqlite3_bind_int64(st, 13, now);
	bind_opt(st, 14, request_msg);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		return JUKI_EDUP;
	}
	return rc == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/* Queue type with body (stolen) to dest over provide; the message id in msg_id. */
static int
queue(struct juki_node *node, const char *type, const char *dest, json_t *body,
      char msg_id[JUKI_UUID_LEN + 1])
{
	struct juki_msg msg;
	int rc;

	memset(&msg, 0, sizeof(msg));
	if ((rc = juki_msg_init(&msg, type, juki_node_self(node)->urn, dest, NULL, body,
				juki_node_clock(node))) != 0) {
		return rc;
	}
	rc = juki_outbox_put(juki_node_store(node), &msg, service_to(node, dest),
			     juki_node_now_ms(node), NULL);
	if (rc == 0 && msg_id != NULL) {
		memcpy(msg_id, msg.id, JUKI_UUID_LEN + 1);
	}
	juki_msg_clear(&msg);
	return rc;
}

/*
 * A copy of request id in report_centre: passed on to the centre dest
 * (state sent, at a prefecture), or come to this link server through the
 * centre dest (received; once per centre, a second time ignored).
 */
static int
copy_put(struct juki_node *node, const char *id, const char *dest, const char *msg_id, int received)
{
	static const char sent_sql[] = "INSERT INTO report_centre (id, dest, request_msg, state,"
				       " updated_ms) VALUES (?1, ?2, ?3, 'sent', ?4)";
	static const char received_sql[] = "INSERT OR IGNORE INTO report_centre (id, dest,"
					   " request_msg, state, updated_ms)"
					   " VALUES (?1, ?2, ?3, 'received', ?4)";
	sqlite3_stmt *st =
	    juki_store_prepare(juki_node_store(node), received ? received_sql : sent_sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, msg_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, juki_node_now_ms(node));
	return step_done(st);
}

/*
 * Whether a request passed on to up goes to every national centre: at a
 * prefecture with centres, a request about what the national server
 * provided, to an agency, an executive body or the certification authority
 * (the link server takes the same request from each centre once, §15.5).
 */
static int
to_every_centre(const struct juki_node *node, const char *up)
{
	struct juki_reports *rp = reports_of(node);

	return rp != NULL && rp->ncentres > 0 && juki_node_self(node)->kind == JUKI_KIND_PREF &&
	       strcmp(up, rp->up) == 0;
}

/* Take a request: hold it, or pass it on to up.  Inside the caller's transaction. */
static int
take(struct juki_node *node, const struct juki_report *r, const char *prev, int hold,
     const char *up)
{
	char msg_id[JUKI_UUID_LEN + 1] = "";
	int rc;

	if (!hold) {
		json_t *body = juki_report_to_json(r);

		if (body == NULL || up == NULL) {
			json_decref(body);
			return up == NULL ? JUKI_EINVAL : JUKI_ENOMEM;
		}
		if (to_every_centre(node, up)) {
			struct juki_reports *rp = reports_of(node);

			/* A copy to each centre, each acknowledged on its own (report_centre). */
			for (size_t i = 0; i < rp->ncentres; i++) {
				char copy_id[JUKI_UUID_LEN + 1];
				json_t *copy = json_deep_copy(body);

				if (copy == NULL) {
					json_decref(body);
					return JUKI_ENOMEM;
				}
				if ((rc = queue(node, JUKI_MSG_REPORT_REQUEST, rp->centres[i], copy,
						copy_id)) != 0 ||
				    (rc = copy_put(node, r->id, rp->centres[i], copy_id, 0)) != 0) {
					json_decref(body);
					return rc;
				}
				if (strcmp(rp->centres[i], up) == 0) {
					memcpy(msg_id, copy_id, sizeof(msg_id));
				}
			}
			json_decref(body);
		} else if ((rc = queue(node, JUKI_MSG_REPORT_REQUEST, up, body, msg_id)) != 0) {
			return rc;
		}
	}
	return insert(juki_node_store(node), r, prev, hold ? NULL : up, hold,
		      juki_node_now_ms(node), msg_id);
}

/* Whether id was passed on to centre (a copy of report_centre). */
static int
is_copy_to(struct juki_store *store, const char *id, const char *centre)
{
	static const char sql[] = "SELECT 1 FROM report_centre WHERE id = ?1 AND dest = ?2";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	if (st == NULL) {
		return 0;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, centre, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW;
}

/* The staff member a body's message came with ("" when none). */
static const char *
staff_of(const struct juki_msg *msg)
{
	return msg->staff;
}

/* Who a body's message is from in the history: the staff card, else the node (an authority). */
static const char *
who_of(const struct juki_msg *msg)
{
	return msg->staff[0] != '\0' ? msg->staff : msg->from;
}

/*
 * At a link server, r arrived from a national centre with an id held here
 * already.  A prefecture with several centres passes the same request to
 * each (docs/architecture.md §27): the same request (juki_report_same())
 * first passed on by another centre is taken as that copy, without a second
 * row; each centre it came through is noted (report_centre), and an answer
 * given already goes back this way too, so that centre's row is closed.
 * Anything else under a held id stays refused.  Returns 0 when taken, 1
 * when r is no such copy, or an error.  Inside the caller's transaction.
 */
static int
copy_through(struct juki_node *node, const struct juki_msg *msg, const struct juki_report *r)
{
	static const char sql[] =
	    "SELECT kind, requester, body, provider, subject, text, due, prev, next, state,"
	    " media, answer, answered_by FROM report WHERE id = ?1";
	struct juki_store *store = juki_node_store(node);
	struct juki_ident sender, prev;
	struct juki_report held;
	json_t *answer = NULL;
	sqlite3_stmt *st;
	int rc = 1, same;

	if (juki_node_self(node)->kind != JUKI_KIND_AUTHLINK ||
	    juki_ident_parse(msg->from, &sender) != 0 || sender.kind != JUKI_KIND_JLIS ||
	    is_copy_to(store, r->id, msg->from)) {
		return 1;
	}
	if ((st = juki_store_prepare(store, sql)) == NULL) {
		return JUKI_ESTORE;
	}
	memset(&held, 0, sizeof(held));
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 1;
	}
	snprintf(held.id, sizeof(held.id), "%s", r->id);
	snprintf(held.kind, sizeof(held.kind), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(held.requester, sizeof(held.requester), "%s",
		 (const char *)sqlite3_column_text(st, 1));
	snprintf(held.body, sizeof(held.body), "%s", (const char *)sqlite3_column_text(st, 2));
	snprintf(held.provider, sizeof(held.provider), "%s",
		 (const char *)sqlite3_column_text(st, 3));
	snprintf(held.subject, sizeof(held.subject), "%s",
		 (const char *)sqlite3_column_text(st, 4));
	held.text = (char *)sqlite3_column_text(st, 5); /* read while st is not reset */
	snprintf(held.due, sizeof(held.due), "%s", (const char *)sqlite3_column_text(st, 6));
	same = held.text != NULL && juki_report_same(&held, r) &&
	       sqlite3_column_type(st, 7) != SQLITE_NULL &&
	       sqlite3_column_type(st, 8) == SQLITE_NULL &&
	       juki_ident_parse((const char *)sqlite3_column_text(st, 7), &prev) == 0 &&
	       prev.kind == JUKI_KIND_JLIS && strcmp(prev.urn, msg->from) != 0;
	if (same && strcmp((const char *)sqlite3_column_text(st, 9), "answered") == 0 &&
	    sqlite3_column_type(st, 10) != SQLITE_NULL) {
		struct juki_report_answer a;

		memset(&a, 0, sizeof(a));
		snprintf(a.id, sizeof(a.id), "%s", r->id);
		snprintf(a.media, sizeof(a.media), "%s", (const char *)sqlite3_column_text(st, 10));
		a.data = (unsigned char *)sqlite3_column_blob(st, 11);
		a.len = (size_t)sqlite3_column_bytes(st, 11);
		if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
			snprintf(a.by, sizeof(a.by), "%s",
				 (const char *)sqlite3_column_text(st, 12));
		}
		if ((answer = juki_report_answer_to_json(&a)) == NULL) {
			sqlite3_reset(st);
			return JUKI_ENOMEM;
		}
	}
	held.text = NULL;
	sqlite3_reset(st);
	if (!same) {
		return 1;
	}
	if ((rc = copy_put(node, r->id, prev.urn, "", 1)) != 0 ||
	    (rc = copy_put(node, r->id, msg->from, msg->id, 1)) != 0) {
		json_decref(answer);
		return rc;
	}
	if (answer != NULL &&
	    (rc = queue(node, JUKI_MSG_REPORT_ANSWER, msg->from, answer, NULL)) != 0) {
		return rc;
	}
	history(node, msg->from, "report.request", r->id, "ok",
		"the same request through %s too: held here once (first through %s)%s", msg->from,
		prev.urn, answer != NULL ? ", answered: the answer sent back" : "");
	return 0;
}

int
juki_report_handle_request(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	struct juki_report_links links = links_of(node);
	struct juki_ident sender;
	struct juki_report r;
	const char *next;
	int rc, hold;

	if ((rc = juki_report_from_json(msg->body, &r, rej)) != 0) {
		juki_report_clear(&r);
		return rc;
	}
	juki_ident_parse(msg->from, &sender);
	if ((rc = juki_report_route_via(juki_node_self(node), &links, &sender, &r, &hold, &next,
					rej)) == 0) {
		rc = take(node, &r, msg->from, hold, next);
		if (rc == JUKI_EDUP && (rc = copy_through(node, msg, &r)) == 0) {
			juki_report_clear(&r);
			return 0; /* in the history as a copy */
		}
		if (rc == 1) {
			rc = juki_reject_set(rej, JUKI_R_REPORT_EXISTS,
					     "id: another request with this id is kept here");
		}
	}
	if (rc == 0) {
		history(node, msg->from, "report.request", r.id, "ok", "%s %s for %s",
			hold ? "held" : "passed on to", hold ? "here" : next, r.body);
	} else if (rc == JUKI_REJECT) {
		history(node, msg->from, "report.request", r.id, rej->reason, "refused");
	}
	juki_report_clear(&r);
	return rc;
}

/*
 * A body's message: from an agency or an executive body, with a staff card;
 * at a link server from the certification authority it provides to, with
 * its node certificate (the authority's staff are its own to manage).
 */
static int
from_body(const struct juki_node *node, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_reports *rp = reports_of(node);
	struct juki_ident sender;

	if (juki_node_self(node)->kind == JUKI_KIND_AUTHLINK) {
		if (juki_ident_parse(msg->from, &sender) != 0 || sender.kind != JUKI_KIND_CA) {
			return juki_reject_set(rej, JUKI_R_NOT_A_BODY,
					       "only the certification authority fetches and "
					       "answers requests here");
		}
		if (rp != NULL && rp->ca[0] != '\0' && strcmp(rp->ca, msg->from) != 0) {
			return juki_reject_set(rej, JUKI_R_NOT_A_BODY,
					       "this link server provides to another authority");
		}
		return 0;
	}
	if (juki_ident_parse(msg->from, &sender) != 0 || !body_kind(&sender)) {
		return juki_reject_set(rej, JUKI_R_NOT_A_BODY,
				       "only an agency or an executive body "
				       "fetches and answers requests");
	}
	if (staff_of(msg)[0] == '\0') {
		return juki_reject_set(rej, JUKI_R_NO_STAFF_CARD,
				       "a body's staff member answers, with a staff card");
	}
	return 0;
}

int
juki_report_handle_fetch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] =
	    "SELECT id, kind, requester, subject, text, due, created_ms, fetched_ms FROM report"
	    " WHERE next IS NULL AND body = ?1 AND state IN ('received', 'overdue')"
	    " ORDER BY created_ms, id LIMIT ?2";
	static const char sql_fetched[] =
	    "UPDATE report SET fetched_ms = ?2 WHERE next IS NULL AND body = ?1"
	    " AND fetched_ms IS NULL AND state IN ('received', 'overdue')";
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	json_t *rows;
	sqlite3_stmt *st;
	int rc;

	if ((rc = from_body(node, msg, rej)) != 0) {
		history(node, who_of(msg), "report.fetch", NULL, rej->reason, "refused");
		return rc;
	}
	if (json_object_size(msg->body) != 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: an empty object");
	}
	if ((st = juki_store_prepare(store, sql)) == NULL || (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, JUKI_REPORT_FETCH_MAX);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char when[32];

		juki_clock_format(sqlite3_column_int64(st, 6), when, sizeof(when));
		json_array_append_new(
		    rows, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id",
				    sqlite3_column_text(st, 0), "kind", sqlite3_column_text(st, 1),
				    "requester", sqlite3_column_text(st, 2), "subject",
				    sqlite3_column_text(st, 3), "text", sqlite3_column_text(st, 4),
				    "due", sqlite3_column_text(st, 5), "asked", when));
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql_fetched)) == NULL) {
		json_decref(rows);
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg->from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, juki_node_now_ms(node));
	if ((rc = step_done(st)) != 0) {
		json_decref(rows);
		return rc;
	}
	history(node, who_of(msg), "report.fetch", NULL, "ok", "%zu requests held for %s",
		json_array_size(rows), msg->from);
	rej->result = json_pack("{s:o}", "reports", rows);
	return rej->result ? 0 : JUKI_ENOMEM;
}

/* A row's routing and state, read for an answer or a status. */
struct row {
	char state[16];
	char body[JUKI_URN_MAX];
	char prev[JUKI_URN_MAX];
	char next[JUKI_URN_MAX];
	char reason[JUKI_REASON_MAX];
	int held;
};

static int
row_get(struct juki_store *store, const char *id, struct row *row)
{
	static const char sql[] =
	    "SELECT state, body, prev, next, reason, held FROM report WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	int rc;

	memset(row, 0, sizeof(*row));
	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *cols[5];

		for (int i = 0; i < 5; i++) {
			cols[i] = (const char *)sqlite3_column_text(st, i);
		}
		snprintf(row->state, sizeof(row->state), "%s", cols[0]);
		snprintf(row->body, sizeof(row->body), "%s", cols[1]);
		snprintf(row->prev, sizeof(row->prev), "%s", cols[2] ? cols[2] : "");
		snprintf(row->next, sizeof(row->next), "%s", cols[3] ? cols[3] : "");
		snprintf(row->reason, sizeof(row->reason), "%s", cols[4] ? cols[4] : "");
		row->held = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
}

static int
set_state(struct juki_store *store, const char *id, const char *state, int held, const char *reason,
	  int64_t now)
{
	static const char sql[] = "UPDATE report SET state = ?2, held = max(held, ?3),"
				  " reason = coalesce(?4, reason), updated_ms = ?5 WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, held);
	bind_opt(st, 4, reason);
	sqlite3_bind_int64(st, 5, now);
	return step_done(st);
}

static int
record_answer(struct juki_store *store, const struct juki_report_answer *a, int64_t now)
{
	static const char sql[] =
	    "UPDATE report SET state = 'answered', held = 1, answered_ms = ?2, answered_by = ?3,"
	    " media = ?4, answer = ?5, updated_ms = ?2 WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(store, sql);

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	bind_opt(st, 3, a->by);
	sqlite3_bind_text(st, 4, a->media, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, a->data, (int)a->len, SQLITE_STATIC);
	return step_done(st);
}

/*
 * At a link server: the answer back through every other centre the request
 * came through as well (copy_through()), so that each centre's row is
 * closed; the prefecture keeps the first answer (juki_report_handle_answer()).
 */
static int
answer_routes(struct juki_node *node, const struct juki_report_answer *a, const char *first)
{
	static const char sql[] = "SELECT dest FROM report_centre WHERE id = ?1 AND dest != ?2"
				  " ORDER BY dest";
	char dest[JUKI_REPORT_CENTRES_MAX][JUKI_URN_MAX];
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(node), sql);
	size_t n = 0;
	int rc = 0;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, first, -1, SQLITE_STATIC);
	while (n < JUKI_REPORT_CENTRES_MAX && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(dest[n++], JUKI_URN_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < n && rc == 0; i++) {
		json_t *body = juki_report_answer_to_json(a);

		rc = body == NULL ? JUKI_ENOMEM
				  : queue(node, JUKI_MSG_REPORT_ANSWER, dest[i], body, NULL);
	}
	return rc;
}

/*
 * The answer arrived here (from the body, from the national server or from
 * this prefecture's operator): record it, and send it on toward the
 * requester when it came through a prefecture (the national server's
 * requests from prefectures and their municipalities).
 */
static int
answered(struct juki_node *node, const struct juki_report_answer *a, const struct row *row)
{
	struct juki_ident prev;
	int rc;

	enum juki_kind self = juki_node_self(node)->kind;

	if ((rc = record_answer(juki_node_store(node), a, juki_node_now_ms(node))) != 0) {
		return rc;
	}
	/* Back the way it came: jlis -> pref (provide), authlink -> jlis or pref (ninsho). */
	if ((self == JUKI_KIND_JLIS || self == JUKI_KIND_AUTHLINK) && row->prev[0] != '\0' &&
	    juki_ident_parse(row->prev, &prev) == 0 &&
	    (prev.kind == JUKI_KIND_PREF ||
	     (self == JUKI_KIND_AUTHLINK && prev.kind == JUKI_KIND_JLIS))) {
		json_t *body = juki_report_answer_to_json(a);

		if (body == NULL) {
			return JUKI_ENOMEM;
		}
		if ((rc = queue(node, JUKI_MSG_REPORT_ANSWER, row->prev, body, NULL)) != 0) {
			return rc;
		}
		if (self == JUKI_KIND_AUTHLINK) {
			return answer_routes(node, a, row->prev);
		}
	}
	return 0;
}

int
juki_report_handle_answer(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	struct juki_ident sender;
	struct juki_report_answer a;
	struct row row;
	const char *who = msg->from;
	int rc;

	enum juki_kind self = juki_node_self(node)->kind;
	int back, centre;

	juki_ident_parse(msg->from, &sender);
	/* An answer coming back from the national server, or from a link server. */
	back = (sender.kind == JUKI_KIND_JLIS && self == JUKI_KIND_PREF) ||
	       (sender.kind == JUKI_KIND_AUTHLINK &&
		(self == JUKI_KIND_PREF || self == JUKI_KIND_JLIS));
	if (back) {
		rc = 0;
	} else if ((rc = from_body(node, msg, rej)) != 0) {
		history(node, who_of(msg), "report.answer", NULL, rej->reason, "refused");
		return rc;
	} else {
		who = who_of(msg);
	}
	if ((rc = juki_report_answer_from_json(msg->body, &a, rej)) != 0) {
		juki_report_answer_clear(&a);
		history(node, who, "report.answer", NULL, rej->reason, "refused");
		return rc;
	}
	if (!back) {
		/*
		 * The staff member who answered, as the card says (a body's own "by" is not
		 * taken); an authority answers as itself.
		 */
		snprintf(a.by, sizeof(a.by), "%s", who_of(msg));
	}
	rc = row_get(juki_node_store(node), a.id, &row);
	/* Back from a national centre: the one it was passed on to, or any that has a copy. */
	centre = back && rc == 0 && strcmp(row.next, msg->from) != 0 &&
		 is_copy_to(juki_node_store(node), a.id, msg->from);
	if (rc == JUKI_ENOTFOUND ||
	    (rc == 0 && !centre &&
	     (back ? strcmp(row.next, msg->from) != 0
		   : row.next[0] != '\0' || strcmp(row.body, msg->from) != 0))) {
		/* Another body's request is refused as one unknown: its existence is not told. */
		rc = juki_reject_set(rej, JUKI_R_REPORT_UNKNOWN,
				     "id: no such request held here "
				     "for the sender");
	} else if (rc == 0 && strcmp(row.state, "answered") == 0 && back &&
		   juki_ident_parse(msg->from, &sender) == 0 && sender.kind == JUKI_KIND_JLIS &&
		   (centre || is_copy_to(juki_node_store(node), a.id, msg->from))) {
		/*
		 * The body answered the copy at the other centre too: the first answer is
		 * kept, this one taken so that the centre's outbox lets it go.
		 */
		history(node, who, "report.answer", a.id, "ok",
			"answered before through another centre: the first answer kept");
		juki_report_answer_clear(&a);
		return 0;
	} else if (rc == 0 && strcmp(row.state, "answered") == 0) {
		rc = juki_reject_set(rej, JUKI_R_REPORT_ANSWERED, "id: answered before");
	} else if (rc == 0 && strcmp(row.state, "refused") == 0) {
		rc = juki_reject_set(rej, JUKI_R_REPORT_UNKNOWN, "id: the request was refused");
	} else if (rc == 0) {
		rc = answered(node, &a, &row);
	}
	if (rc == 0) {
		history(node, who, "report.answer", a.id, "ok", "%s, %zu bytes", a.media, a.len);
	} else if (rc == JUKI_REJECT) {
		history(node, who, "report.answer", a.id, rej->reason, "refused");
	}
	juki_report_answer_clear(&a);
	return rc;
}

static json_t *
answer_json(sqlite3_stmt *st, int col_media, int col_answer)
{
	const void *blob = sqlite3_column_blob(st, col_answer);
	int n = sqlite3_column_bytes(st, col_answer);
	char *b64;
	json_t *obj;

	if (sqlite3_column_type(st, col_media) == SQLITE_NULL || blob == NULL) {
		return NULL;
	}
	if ((b64 = malloc((size_t)(n + 2) / 3 * 4 + 1)) == NULL) {
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)b64, blob, n);
	obj = json_pack("{s:s,s:i,s:s}", "media", sqlite3_column_text(st, col_media), "size", n,
			"data", b64);
	free(b64);
	return obj;
}

int
juki_report_handle_status(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	static const char sql[] = "SELECT state, held, reason, answered_ms, answered_by, media,"
				  " answer FROM report WHERE id = ?1 AND prev = ?2";
	struct juki_node *node = ctx;
	const char *id = json_string_value(json_object_get(msg->body, "id"));
	sqlite3_stmt *st;
	json_t *res;

	if (json_object_size(msg->body) != 1 || id == NULL || !juki_uuid_valid(id)) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "body: {\"id\": a request's id}");
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, msg->from, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return juki_reject_set(rej, JUKI_R_REPORT_UNKNOWN,
				       "id: no request passed here by the sender");
	}
	res = json_pack("{s:s,s:s,s:b}", "id", id, "state", sqlite3_column_text(st, 0), "held",
			sqlite3_column_int(st, 1));
	if (res != NULL && sqlite3_column_type(st, 2) != SQLITE_NULL) {
		json_object_set_new(res, "reason",
				    json_string((const char *)sqlite3_column_text(st, 2)));
	}
	if (res != NULL && sqlite3_column_type(st, 3) != SQLITE_NULL) {
		char when[32];
		json_t *ans = answer_json(st, 5, 6);

		juki_clock_format(sqlite3_column_int64(st, 3), when, sizeof(when));
		json_object_set_new(res, "answered", json_string(when));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			json_object_set_new(res, "by",
					    json_string((const char *)sqlite3_column_text(st, 4)));
		}
		if (ans != NULL) {
			json_object_set_new(res, "answer", ans);
		}
	}
	sqlite3_reset(st);
	rej->result = res;
	return res ? 0 : JUKI_ENOMEM;
}

/* ---- what comes back through the outbox ----------------------------------------- */

static int
find_by_msg(struct juki_store *store, const char *col_sql, const char *msg_id,
	    char id[JUKI_UUID_LEN + 1])
{
	sqlite3_stmt *st = juki_store_prepare(store, col_sql);
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(id, JUKI_UUID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
}

/* Move request id on by ev; reason kept for a refusal.  A step that cannot happen changes nothing.
 */
static int
step(struct juki_node *node, const char *id, enum juki_report_event ev, const char *reason)
{
	struct juki_store *store = juki_node_store(node);
	const char *next;
	struct row row;
	int rc;

	if ((rc = row_get(store, id, &row)) != 0) {
		return rc == JUKI_ENOTFOUND ? 0 : rc;
	}
	if (juki_report_step(row.state, ev, &next) != 0) {
		return 0;
	}
	if ((rc = set_state(store, id, next, ev == JUKI_REPORT_EV_HELD, reason,
			    juki_node_now_ms(node))) != 0) {
		return rc;
	}
	if (ev == JUKI_REPORT_EV_REFUSED) {
		history(node, "-", "report.refused", id, reason ? reason : "refused",
			"on the way to %s", row.body);
		/*
		 * At the requester; and at the national server, whose refusals (by the link
		 * server) the prefecture before it never learns.
		 */
		if (row.prev[0] == '\0' || juki_node_self(node)->kind == JUKI_KIND_JLIS) {
			juki_alert(juki_node_alerts(node), "report-refused", row.next, NULL,
				   "report request %s to %s was refused on the way: %s "
				   "(juki-ctl report show %s)",
				   id, row.body, reason ? reason : "-", id);
		}
	} else if (ev == JUKI_REPORT_EV_HELD && strcmp(row.state, next) != 0) {
		history(node, "-", "report.received", id, "ok", "held for %s", row.body);
	}
	return 0;
}

static int
on_status(struct juki_node *node, const char *id, const json_t *result)
{
	const char *state = json_string_value(json_object_get(result, "state"));
	const json_t *ans = json_object_get(result, "answer");

	if (state == NULL) {
		return 0;
	}
	if (strcmp(state, "answered") == 0 && json_is_object(ans)) {
		struct juki_report_answer a;
		struct juki_reject rej;
		json_t *obj =
		    json_pack("{s:s,s:O?,s:O?}", "id", id, "media", json_object_get(ans, "media"),
			      "data", json_object_get(ans, "data"));
		struct row row;
		int rc;

		if (obj == NULL) {
			return JUKI_ENOMEM;
		}
		if (json_is_string(json_object_get(result, "by"))) {
			json_object_set(obj, "by", json_object_get(result, "by"));
		}
		memset(&rej, 0, sizeof(rej));
		rc = juki_report_answer_from_json(obj, &a, &rej);
		json_decref(obj);
		if (rc == 0 && (rc = row_get(juki_node_store(node), id, &row)) == 0 &&
		    strcmp(row.state, "answered") != 0 && strcmp(row.state, "refused") != 0) {
			rc = record_answer(juki_node_store(node), &a, juki_node_now_ms(node));
			if (rc == 0) {
				history(node, "-", "report.answered", id, "ok",
					"%s, %zu bytes, by %s", a.media, a.len,
					a.by[0] ? a.by : "-");
			}
		}
		juki_report_answer_clear(&a);
		if (rc == JUKI_REJECT) {
			log_warnx("report: the answer to %s from %s is not readable: %s", id,
				  "pref", rej.reason);
			rc = 0;
		}
		return rc == JUKI_ENOTFOUND ? 0 : rc;
	}
	if (strcmp(state, "refused") == 0) {
		return step(node, id, JUKI_REPORT_EV_REFUSED,
			    json_string_value(json_object_get(result, "reason")));
	}
	if (json_is_true(json_object_get(result, "held"))) {
		return step(node, id, JUKI_REPORT_EV_HELD, NULL);
	}
	return 0;
}

/*
 * Whether an ack of request id from dest means the request is held there: a
 * CS's prefecture holds it unless the national server provides; a request to
 * the certification authority is held by a link server only, a centre or a
 * prefecture passing it on.  1 or 0, JUKI_ENOTFOUND, JUKI_ESTORE.
 */
static int
held_by(struct juki_node *node, const char *id, const char *dest)
{
	static const char sql[] = "SELECT provider, body FROM report WHERE id = ?1";
	sqlite3_stmt *st = juki_store_prepare(juki_node_store(node), sql);
	struct juki_ident body, to;
	int held = JUKI_ENOTFOUND;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		held = 1;
		if (juki_ident_parse((const char *)sqlite3_column_text(st, 1), &body) == 0 &&
		    body.kind == JUKI_KIND_CA) {
			held = juki_ident_parse(dest, &to) == 0 && to.kind == JUKI_KIND_AUTHLINK;
		} else if (juki_node_self(node)->kind == JUKI_KIND_CS) {
			held = strcmp((const char *)sqlite3_column_text(st, 0), "pref") == 0;
		}
	}
	sqlite3_reset(st);
	return held;
}

/*
 * The ack of a copy of a request passed on to one of several national
 * centres: that copy held or refused.  The request is held once any centre
 * holds it, refused only when every centre refused it.  A centre passes a
 * request to the certification authority on to the link server: its ack
 * marks the copy taken, and the request stays sent until the answer comes
 * back, as with one centre (docs/protocol.md §15.5).  JUKI_ENOTFOUND when
 * entry is no such copy.
 */
static int
centre_ack(struct juki_node *node, const struct juki_outbox_entry *entry,
	   const struct juki_ack *ack)
{
	static const char by_msg[] = "SELECT id FROM report_centre WHERE request_msg = ?1";
	static const char sql_set[] = "UPDATE report_centre SET state = ?3, reason = ?4,"
				      " updated_ms = ?5 WHERE id = ?1 AND dest = ?2";
	static const char sql_count[] = "SELECT count(*) FILTER (WHERE state = 'received'),"
					" count(*) FILTER (WHERE state = 'sent'),"
					" count(*) FILTER (WHERE state = 'refused')"
					" FROM report_centre WHERE id = ?1";
	struct juki_store *store = juki_node_store(node);
	int refused = ack->status == JUKI_ACK_REJECTED;
	enum juki_report_event ev;
	char id[JUKI_UUID_LEN + 1];
	size_t held = 0, sent = 0, refusals = 0;
	sqlite3_stmt *st;
	int rc, held_here;

	if ((rc = find_by_msg(store, by_msg, entry->msg_id, id)) != 0) {
		return rc;
	}
	if ((st = juki_store_prepare(store, sql_set)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, entry->dest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, refused ? "refused" : "received", -1, SQLITE_STATIC);
	bind_opt(st, 4, refused ? ack->reason : NULL);
	sqlite3_bind_int64(st, 5, juki_node_now_ms(node));
	if ((rc = step_done(st)) != 0) {
		return rc;
	}
	if ((held_here = held_by(node, id, entry->dest)) < 0) {
		return held_here == JUKI_ENOTFOUND ? 0 : held_here;
	}
	history(node, "-", "report.centre", id, refused ? ack->reason : "ok", "%s %s",
		refused     ? "refused by"
		: held_here ? "held at"
			    : "passed on to the link server by",
		entry->dest);
	if ((st = juki_store_prepare(store, sql_count)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		held = (size_t)sqlite3_column_int64(st, 0);
		sent = (size_t)sqlite3_column_int64(st, 1);
		refusals = (size_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (juki_report_copies_event(held, sent, refusals, &ev) != 0) {
		return 0; /* refused here, still open at another centre */
	}
	if (ev == JUKI_REPORT_EV_HELD && !held_here) {
		return 0; /* held at the link server, not at the centre */
	}
	return step(node, id, ev, ev == JUKI_REPORT_EV_REFUSED ? ack->reason : NULL);
}

int
juki_reports_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct juki_node *node = ctx;
	static const char by_request[] = "SELECT id FROM report WHERE request_msg = ?1";
	static const char by_poll[] = "SELECT id FROM report WHERE poll_msg = ?1";
	static const char sql_polled[] = "UPDATE report SET poll_msg = NULL WHERE id = ?1";
	struct juki_store *store = juki_node_store(node);
	char id[JUKI_UUID_LEN + 1];
	sqlite3_stmt *st;
	int rc;

	if (strcmp(entry->type, JUKI_MSG_REPORT_REQUEST) == 0) {
		if ((rc = centre_ack(node, entry, ack)) != JUKI_ENOTFOUND) {
			return rc;
		}
		if ((rc = find_by_msg(store, by_request, entry->msg_id, id)) != 0) {
			return rc == JUKI_ENOTFOUND ? 0 : rc;
		}
		if (ack->status == JUKI_ACK_REJECTED) {
			return step(node, id, JUKI_REPORT_EV_REFUSED, ack->reason);
		}
		if ((rc = held_by(node, id, entry->dest)) <= 0) {
			return rc == JUKI_ENOTFOUND ? 0 : rc;
		}
		return step(node, id, JUKI_REPORT_EV_HELD, NULL);
	}
	if (strcmp(entry->type, JUKI_MSG_REPORT_STATUS) == 0) {
		if ((rc = find_by_msg(store, by_poll, entry->msg_id, id)) != 0) {
			return rc == JUKI_ENOTFOUND ? 0 : rc;
		}
		if ((st = juki_store_prepare(store, sql_polled)) == NULL) {
			return JUKI_ESTORE;
		}
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if ((rc = step_done(st)) != 0) {
			return rc;
		}
		if (ack->status == JUKI_ACK_REJECTED) {
			log_warnx("report: %s refused the status query of %s: %s", entry->dest, id,
				  ack->reason);
			return 0;
		}
		return ack->result != NULL ? on_status(node, id, ack->result) : 0;
	}
	return 0;
}

/* ---- the timer: overdue requests, polls ------------------------------------------ */

static void
mark_overdue(struct juki_reports *rp)
{
	static const char sql_due[] =
	    "SELECT id, body, due, next FROM report WHERE prev IS NULL"
	    " AND state IN ('sent', 'received') AND due < ?1 ORDER BY due, id LIMIT ?2";
	static const char sql_mark[] = "UPDATE report SET state = 'overdue', alerted_ms = ?2,"
				       " updated_ms = ?2 WHERE id = ?1 AND alerted_ms IS NULL";
	struct juki_store *store = juki_node_store(rp->node);
	int64_t now = juki_node_now_ms(rp->node);
	char today[16], ids[DUE_MAX][JUKI_UUID_LEN + 1], bodies[DUE_MAX][JUKI_URN_MAX],
	    due[DUE_MAX][11];
	sqlite3_stmt *st;
	size_t n = 0, i;
	int rc = 0;

	juki_clock_date(now, today, sizeof(today));
	if ((st = juki_store_prepare(store, sql_due)) == NULL) {
		return;
	}
	sqlite3_bind_text(st, 1, today, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, DUE_MAX);
	while (n < DUE_MAX && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(ids[n], sizeof(ids[n]), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(bodies[n], sizeof(bodies[n]), "%s",
			 (const char *)sqlite3_column_text(st, 1));
		snprintf(due[n], sizeof(due[n]), "%s", (const char *)sqlite3_column_text(st, 2));
		n++;
	}
	sqlite3_reset(st);
	if (n == 0) {
		return;
	}
	if ((st = juki_store_prepare(store, sql_mark)) == NULL || juki_store_begin(store) != 0) {
		log_warnx("report: cannot mark requests overdue: %s", juki_strerror(JUKI_ESTORE));
		return;
	}
	for (i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		log_warnx("report: cannot mark requests overdue: %s", juki_strerror(rc));
		return;
	}
	for (i = 0; i < n; i++) {
		juki_alert(juki_node_alerts(rp->node), "report-overdue", NULL, NULL,
			   "report request %s to %s was due %s and is not answered "
			   "(juki-ctl report show %s)",
			   ids[i], bodies[i], due[i], ids[i]);
		history(rp->node, "-", "report.overdue", ids[i], "ok", "due %s, %s", due[i],
			bodies[i]);
	}
}

static void
queue_polls(struct juki_reports *rp)
{
	static const char sql_due[] =
	    "SELECT id, next FROM report WHERE prev IS NULL AND next IS NOT NULL"
	    " AND state IN ('sent', 'received', 'overdue') AND poll_msg IS NULL"
	    " AND (polled_ms IS NULL OR polled_ms <= ?1) ORDER BY polled_ms, id LIMIT ?2";
	static const char sql_mark[] =
	    "UPDATE report SET poll_msg = ?2, polled_ms = ?3 WHERE id = ?1";
	struct juki_store *store = juki_node_store(rp->node);
	int64_t now = juki_node_now_ms(rp->node);
	char ids[POLL_MAX][JUKI_UUID_LEN + 1], dest[POLL_MAX][JUKI_URN_MAX];
	sqlite3_stmt *st;
	size_t n = 0, i;
	int rc = 0;

	if (rp->poll_ms <= 0 || (st = juki_store_prepare(store, sql_due)) == NULL) {
		return;
	}
	sqlite3_bind_int64(st, 1, now - rp->poll_ms);
	sqlite3_bind_int(st, 2, POLL_MAX);
	while (n < POLL_MAX && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(ids[n], sizeof(ids[n]), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(dest[n], sizeof(dest[n]), "%s", (const char *)sqlite3_column_text(st, 1));
		n++;
	}
	sqlite3_reset(st);
	if (n == 0 || juki_store_begin(store) != 0) {
		return;
	}
	for (i = 0; i < n && rc == 0; i++) {
		char msg_id[JUKI_UUID_LEN + 1];
		json_t *body = json_pack("{s:s}", "id", ids[i]);

		if (body == NULL) {
			rc = JUKI_ENOMEM;
			break;
		}
		if ((rc = queue(rp->node, JUKI_MSG_REPORT_STATUS, dest[i], body, msg_id)) != 0) {
			break;
		}
		if ((st = juki_store_prepare(store, sql_mark)) == NULL) {
			rc = JUKI_ESTORE;
			break;
		}
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, msg_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, now);
		rc = step_done(st);
	}
	if (rc != 0 || (rc = juki_store_commit(store)) != 0) {
		juki_store_rollback(store);
		log_warnx("report: cannot ask about open requests: %s", juki_strerror(rc));
		return;
	}
	juki_node_kick(rp->node);
}

void
juki_reports_tick(struct juki_reports *rp)
{
	if (rp == NULL || juki_store_in_txn(juki_node_store(rp->node))) {
		return;
	}
	mark_overdue(rp);
	queue_polls(rp);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	juki_reports_tick(arg);
}

struct juki_reports *
juki_reports_start(struct juki_node *node, const char *up, int64_t poll_ms)
{
	struct juki_reports *rp = calloc(1, sizeof(*rp));
	struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};

	if (rp == NULL) {
		return NULL;
	}
	rp->node = node;
	rp->timer = event_new(juki_node_base(node), -1, EV_PERSIST, on_timer, rp);
	if (rp->timer == NULL || juki_node_module_set(node, JUKI_MODULE_REPORTS, rp) != 0) {
		if (rp->timer != NULL) {
			event_free(rp->timer);
		}
		free(rp);
		return NULL;
	}
	juki_reports_set(rp, up, poll_ms);
	evtimer_add(rp->timer, &tv);
	return rp;
}

void
juki_reports_set(struct juki_reports *rp, const char *up, int64_t poll_ms)
{
	if (rp != NULL) {
		snprintf(rp->up, sizeof(rp->up), "%s", up ? up : "");
		rp->poll_ms = poll_ms;
	}
}

void
juki_reports_set_centres(struct juki_reports *rp, char *const *centres, size_t n)
{
	if (rp == NULL) {
		return;
	}
	rp->ncentres = 0;
	for (size_t i = 0; centres != NULL && i < n && i < JUKI_REPORT_CENTRES_MAX; i++) {
		snprintf(rp->centres[rp->ncentres++], JUKI_URN_MAX, "%s", centres[i]);
	}
}

void
juki_reports_set_ninsho(struct juki_reports *rp, const char *authlink, const char *ca)
{
	if (rp != NULL) {
		snprintf(rp->authlink, sizeof(rp->authlink), "%s", authlink ? authlink : "");
		snprintf(rp->ca, sizeof(rp->ca), "%s", ca ? ca : "");
	}
}

void
juki_reports_stop(struct juki_reports *rp)
{
	if (rp == NULL) {
		return;
	}
	juki_node_module_clear(rp->node, JUKI_MODULE_REPORTS, rp);
	event_free(rp->timer);
	free(rp);
}

/* ---- control commands ----------------------------------------------------------- */

static int
rej_to_ctl(struct juki_ctl_error *err, const struct juki_reject *rej)
{
	return juki_ctl_fail(err, "invalid", "%s: %s", rej->reason, rej->detail);
}

int
juki_report_cmd_request(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	const struct juki_ident *self = juki_node_self(node);
	const char *provider = json_string_value(json_object_get(args, "provider"));
	int64_t now = juki_node_now_ms(node);
	char id[JUKI_UUID_LEN + 1], today[16];
	struct juki_report_links links = links_of(node);
	struct juki_reports *rp = reports_of(node);
	const char *to = json_string_value(json_object_get(args, "to"));
	struct juki_ident to_id;
	struct juki_reject rej;
	struct juki_report r;
	const char *next;
	json_t *obj;
	int rc, hold;

	if (provider == NULL) {
		provider = self->kind == JUKI_KIND_JLIS ? "national" : "pref";
		/*
		 * The authority: a prefecture that provides 異動等情報 itself holds it at
		 * its own link server; a CS's and a 委任 prefecture's go through jlis.
		 */
		if (to != NULL && juki_ident_parse(to, &to_id) == 0 && to_id.kind == JUKI_KIND_CA &&
		    (self->kind == JUKI_KIND_CS || rp == NULL || rp->authlink[0] == '\0')) {
			provider = "national";
		}
	}
	if ((rc = juki_uuid7(now, id)) != 0) {
		return rc;
	}
	obj = json_pack("{s:s,s:O?,s:s,s:O?,s:s,s:O?,s:O?,s:O?}", "id", id, "kind",
			json_object_get(args, "kind"), "requester", self->urn, "body",
			json_object_get(args, "to"), "provider", provider, "subject",
			json_object_get(args, "subject"), "text", json_object_get(args, "text"),
			"due", json_object_get(args, "due"));
	if (obj == NULL) {
		return JUKI_ENOMEM;
	}
	/* An argument left out is null here: the reader refuses it and names it. */
	memset(&rej, 0, sizeof(rej));
	rc = juki_report_from_json(obj, &r, &rej);
	json_decref(obj);
	if (rc == JUKI_REJECT) {
		juki_report_clear(&r);
		return rej_to_ctl(err, &rej);
	}
	juki_clock_date(now, today, sizeof(today));
	if (rc == 0 && strcmp(r.due, today) < 0) {
		juki_report_clear(&r);
		return juki_ctl_fail(err, "invalid", "due: %s is past (today is %s in Japan)",
				     r.due, today);
	}
	if (rc == 0 && juki_report_route_via(self, &links, NULL, &r, &hold, &next, &rej) != 0) {
		juki_report_clear(&r);
		return rej_to_ctl(err, &rej);
	}
	if (rc == 0 && (rc = juki_store_begin(store)) == 0) {
		rc = take(node, &r, NULL, hold, next);
		rc = rc == 0 ? juki_store_commit(store) : (juki_store_rollback(store), rc);
	}
	if (rc == 0) {
		char note[JUKI_URN_MAX + 8];

		snprintf(note, sizeof(note), "to %s", r.body);
		juki_opcmds_note(juki_node_opcmds(node), r.id, note);
		juki_node_kick(node);
		*result =
		    json_pack("{s:s,s:s,s:s,s:s?}", "id", r.id, "state", hold ? "received" : "sent",
			      "to", r.body, "next", hold ? NULL : next);
		rc = *result ? 0 : JUKI_ENOMEM;
	}
	juki_report_clear(&r);
	return rc;
}

static const char *
role_of(sqlite3_stmt *st, int col_prev, int col_next)
{
	if (sqlite3_column_type(st, col_prev) == SQLITE_NULL) {
		return "asked";
	}
	return sqlite3_column_type(st, col_next) == SQLITE_NULL ? "held" : "passed-on";
}

static json_t *
row_json(sqlite3_stmt *st)
{
	/* Columns: the SELECT of sql_rows. */
	char created[32], when[32];
	json_t *obj;

	juki_clock_format(sqlite3_column_int64(st, 12), created, sizeof(created));
	obj = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "id",
			sqlite3_column_text(st, 0), "kind", sqlite3_column_text(st, 1), "requester",
			sqlite3_column_text(st, 2), "to", sqlite3_column_text(st, 3), "provider",
			sqlite3_column_text(st, 4), "subject", sqlite3_column_text(st, 5), "due",
			sqlite3_column_text(st, 6), "state", sqlite3_column_text(st, 7), "held",
			sqlite3_column_int(st, 8), "role", role_of(st, 9, 10), "created", created);
	if (obj == NULL) {
		return NULL;
	}
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		json_object_set_new(obj, "from",
				    json_string((const char *)sqlite3_column_text(st, 9)));
	}
	if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
		json_object_set_new(obj, "next",
				    json_string((const char *)sqlite3_column_text(st, 10)));
	}
	if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
		json_object_set_new(obj, "reason",
				    json_string((const char *)sqlite3_column_text(st, 11)));
	}
	if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
		juki_clock_format(sqlite3_column_int64(st, 13), when, sizeof(when));
		json_object_set_new(obj, "answered", json_string(when));
	}
	if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
		json_object_set_new(obj, "by",
				    json_string((const char *)sqlite3_column_text(st, 14)));
	}
	if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
		juki_clock_format(sqlite3_column_int64(st, 15), when, sizeof(when));
		json_object_set_new(obj, "alerted", json_string(when));
	}
	if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
		juki_clock_format(sqlite3_column_int64(st, 16), when, sizeof(when));
		json_object_set_new(obj, "fetched", json_string(when));
	}
	return obj;
}

#define ROW_COLS                                                                                   \
	"id, kind, requester, body, provider, subject, due, state, held, prev, next, reason,"      \
	" created_ms, answered_ms, answered_by, alerted_ms, fetched_ms"

int
juki_report_cmd_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] = "SELECT " ROW_COLS " FROM report WHERE ?1 IS NULL OR state = ?1"
				  " ORDER BY created_ms DESC, id DESC LIMIT ?2";
	static const char sql_count[] =
	    "SELECT count(*) FROM report WHERE ?1 IS NULL OR state = ?1";
	struct juki_store *store = juki_node_store(ctx);
	const json_t *limit = json_object_get(args, "limit");
	const char *state = json_string_value(json_object_get(args, "state"));
	const char *next;
	json_int_t total = 0;
	sqlite3_stmt *st;
	json_t *rows;

	if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 0)) {
		return juki_ctl_fail(err, "usage", "limit: a count");
	}
	if (state != NULL && strcmp(state, "answered") != 0 && strcmp(state, "refused") != 0 &&
	    juki_report_step(state, JUKI_REPORT_EV_HELD, &next) != 0) {
		return juki_ctl_fail(err, "usage",
				     "state: sent, received, answered, overdue or refused");
	}
	if ((st = juki_store_prepare(store, sql_count)) == NULL) {
		return JUKI_ESTORE;
	}
	bind_opt(st, 1, state);
	if (sqlite3_step(st) == SQLITE_ROW) {
		total = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if ((st = juki_store_prepare(store, sql)) == NULL || (rows = json_array()) == NULL) {
		return JUKI_ESTORE;
	}
	bind_opt(st, 1, state);
	sqlite3_bind_int64(st, 2, limit ? json_integer_value(limit) : 1000);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_array_append_new(rows, row_json(st));
	}
	sqlite3_reset(st);
	*result = json_pack("{s:I,s:o}", "total", total, "reports", rows);
	return *result ? 0 : JUKI_ENOMEM;
}

/* The copies of id passed on to each national centre, or NULL when there are none. */
static json_t *
centre_copies(struct juki_store *store, const char *id)
{
	static const char sql[] = "SELECT dest, state, reason FROM report_centre WHERE id = ?1"
				  " ORDER BY dest";
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *out;

	if (st == NULL || (out = json_array()) == NULL) {
		return NULL;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *c = json_pack("{s:s,s:s}", "centre", sqlite3_column_text(st, 0), "state",
				      sqlite3_column_text(st, 1));

		if (c != NULL && sqlite3_column_type(st, 2) != SQLITE_NULL) {
			json_object_set_new(c, "reason",
					    json_string((const char *)sqlite3_column_text(st, 2)));
		}
		json_array_append_new(out, c);
	}
	sqlite3_reset(st);
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int
juki_report_cmd_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	static const char sql[] =
	    "SELECT " ROW_COLS ", text, media, answer FROM report WHERE id = ?1";
	struct juki_node *node = ctx;
	const char *id = json_string_value(json_object_get(args, "id"));
	sqlite3_stmt *st;
	json_t *obj, *ans, *copies;

	if (id == NULL || !juki_uuid_valid(id)) {
		return juki_ctl_fail(err, "usage", "id: a request's id");
	}
	if ((st = juki_store_prepare(juki_node_store(node), sql)) == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return juki_ctl_fail(err, "not-found", "no request %s here", id);
	}
	obj = row_json(st);
	if (obj != NULL) {
		json_object_set_new(obj, "text",
				    json_string((const char *)sqlite3_column_text(st, 17)));
		if ((ans = answer_json(st, 18, 19)) != NULL) {
			json_object_set_new(obj, "answer", ans);
		}
	}
	sqlite3_reset(st);
	if (obj != NULL && (copies = centre_copies(juki_node_store(node), id)) != NULL) {
		json_object_set_new(obj, "centres", copies);
	}
	juki_opcmds_note(juki_node_opcmds(node), id, NULL);
	*result = obj;
	return obj ? 0 : JUKI_ENOMEM;
}

int
juki_report_cmd_answer(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_store *store = juki_node_store(node);
	struct juki_report_answer a;
	struct juki_reject rej;
	struct row row;
	json_t *obj;
	int rc;

	obj = json_pack("{s:O?,s:O?,s:O?}", "id", json_object_get(args, "id"), "media",
			json_object_get(args, "media"), "data", json_object_get(args, "data"));
	if (obj == NULL) {
		return JUKI_ENOMEM;
	}
	memset(&rej, 0, sizeof(rej));
	rc = juki_report_answer_from_json(obj, &a, &rej);
	json_decref(obj);
	if (rc == JUKI_REJECT) {
		juki_report_answer_clear(&a);
		return rej_to_ctl(err, &rej);
	}
	if (rc == 0 && (rc = row_get(store, a.id, &row)) == JUKI_ENOTFOUND) {
		juki_report_answer_clear(&a);
		return juki_ctl_fail(err, "not-found", "no request %s here", a.id);
	}
	if (rc == 0 && (row.next[0] != '\0' || strcmp(row.body, juki_node_self(node)->urn) != 0)) {
		juki_report_answer_clear(&a);
		return juki_ctl_fail(err, "conflict",
				     "%s is not addressed to this server: its body answers it",
				     a.id);
	}
	if (rc == 0 && strcmp(row.state, "answered") == 0) {
		juki_report_answer_clear(&a);
		return juki_ctl_fail(err, "conflict", "%s was answered before", a.id);
	}
	snprintf(a.by, sizeof(a.by), "%s", juki_node_self(node)->urn);
	if (rc == 0 && (rc = juki_store_begin(store)) == 0) {
		rc = answered(node, &a, &row);
		rc = rc == 0 ? juki_store_commit(store) : (juki_store_rollback(store), rc);
	}
	if (rc == 0) {
		char note[64];

		snprintf(note, sizeof(note), "%s, %zu bytes", a.media, a.len);
		juki_opcmds_note(juki_node_opcmds(node), a.id, note);
		*result = json_pack("{s:s,s:s,s:I}", "id", a.id, "state", "answered", "size",
				    (json_int_t)a.len);
		rc = *result ? 0 : JUKI_ENOMEM;
	}
	juki_report_answer_clear(&a);
	return rc;
}
