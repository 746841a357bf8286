/*
 * The bodies of copy.request and copy.answer, and the resident record
 * system's answer file (copymsg.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "copymsg.h"
#include "juki/base/codes.h"
#include "juki/wire/msg.h"

static const char *const item_names[] = {"householder", "relation", "honseki", "code"};
#define NITEMS (sizeof(item_names) / sizeof(item_names[0]))

static int __attribute__((format(printf, 3, 4)))
bad(struct csd_copy_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
csd_copy_item_name(enum csd_copy_item item)
{
	for (size_t i = 0; i < NITEMS; i++) {
		if ((unsigned)item == 1u << i) {
			return item_names[i];
		}
	}
	return "none";
}

unsigned
csd_copy_item_parse(const char *name)
{
	for (size_t i = 0; name != NULL && i < NITEMS; i++) {
		if (strcmp(name, item_names[i]) == 0) {
			return 1u << i;
		}
	}
	return 0;
}

json_t *
csd_copy_items_json(unsigned items)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < NITEMS; i++) {
		if (items & (1u << i)) {
			json_array_append_new(a, json_string(item_names[i]));
		}
	}
	return a;
}

/* Every key of obj is one of keys (NULL-ended); else the first other one in err. */
static int
keys_only(const json_t *obj, const char *where, const char *const *keys, struct csd_copy_error *err)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		(void)v;
		for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++) {
		}
		if (keys[i] == NULL) {
			return bad(err, where, "unknown key");
		}
	}
	return 0;
}

/* A required (or, with opt, optional) text of 1..max bytes: UTF-8, NFC, no control characters. */
static int
text_of(const json_t *obj, const char *key, const char *field, int opt, size_t max, char *out,
	size_t len, struct csd_copy_error *err)
{
	const json_t *v = json_object_get(obj, key);
	char why[96];

	if (v == NULL && opt) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v)) {
		return bad(err, field, v == NULL ? "required" : "not a string");
	}
	if (strlen(json_string_value(v)) >= len) {
		return bad(err, field, "longer than %zu bytes", max);
	}
	if (juki_text_valid(json_string_value(v), max, why, sizeof(why)) != 0) {
		return bad(err, field, "%s", why);
	}
	snprintf(out, len, "%s", json_string_value(v));
	return 0;
}

static int
code_of(const json_t *obj, const char *key, const char *field, int lgcode, char *out, size_t len,
	struct csd_copy_error *err)
{
	struct juki_field_error fe;

	if (juki_json_code(obj, key, lgcode, out, len, &fe) != 0) {
		return bad(err, field, "%s", fe.detail);
	}
	return 0;
}

static int
date_of(const json_t *obj, const char *key, const char *field, char out[11],
	struct csd_copy_error *err)
{
	struct juki_field_error fe;

	if (juki_json_date(obj, key, out, &fe) != 0) {
		return bad(err, field, "%s", fe.detail);
	}
	return 0;
}

static int
items_of(const json_t *a, unsigned *items, struct csd_copy_error *err)
{
	const json_t *v;
	size_t i;

	*items = 0;
	if (a == NULL) {
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > NITEMS) {
		return bad(err, "items", "a list of at most %zu item names", NITEMS);
	}
	json_array_foreach(a, i, v)
	{
		unsigned it = csd_copy_item_parse(json_string_value(v));

		if (it == 0) {
			return bad(err, "items", "householder, relation, honseki or code");
		}
		if (*items & it) {
			return bad(err, "items", "an item named twice");
		}
		*items |= it;
	}
	return 0;
}

int
csd_copy_request_parse(const json_t *body, struct csd_copy_request *r, struct csd_copy_error *err)
{
	static const char *const top[] = {"person", "requester", "home",      "issuer",
					  "items",  "copies",    "household", NULL};
	static const char *const pkeys[] = {"code", "name", "birth", NULL};
	static const char *const rkeys[] = {"name", "relation", "identity", "card",
					    "code", "document", NULL};
	const json_t *person, *req, *v;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(body)) {
		return bad(err, "body", "not an object");
	}
	if (keys_only(body, "body", top, err) != 0) {
		return -1;
	}
	person = json_object_get(body, "person");
	req = json_object_get(body, "requester");
	if (!json_is_object(person)) {
		return bad(err, "person", "an object required");
	}
	if (!json_is_object(req)) {
		return bad(err, "requester", "an object required");
	}
	if (keys_only(person, "person", pkeys, err) != 0 ||
	    keys_only(req, "requester", rkeys, err) != 0 ||
	    code_of(person, "code", "person.code", 0, r->code, sizeof(r->code), err) != 0 ||
	    text_of(person, "name", "person.name", 0, JUKI_NAME_MAX, r->name, sizeof(r->name),
		    err) != 0 ||
	    date_of(person, "birth", "person.birth", r->birth, err) != 0 ||
	    code_of(body, "home", "home", 1, r->home, sizeof(r->home), err) != 0 ||
	    code_of(body, "issuer", "issuer", 1, r->issuer, sizeof(r->issuer), err) != 0 ||
	    text_of(req, "name", "requester.name", 0, JUKI_NAME_MAX, r->req_name,
		    sizeof(r->req_name), err) != 0) {
		return -1;
	}
	if (strcmp(r->home, r->issuer) == 0) {
		return bad(err, "issuer", "the same municipality as home: not a wide-area copy");
	}
	s = json_string_value(json_object_get(req, "relation"));
	if (s == NULL || (strcmp(s, "self") != 0 && strcmp(s, "household") != 0)) {
		return bad(err, "requester.relation", "self or household");
	}
	r->household = strcmp(s, "household") == 0;
	s = json_string_value(json_object_get(req, "identity"));
	if (s == NULL || (strcmp(s, "card") != 0 && strcmp(s, "document") != 0)) {
		return bad(err, "requester.identity", "card or document");
	}
	r->by_card = strcmp(s, "card") == 0;
	if (r->by_card) {
		const char *serial = json_string_value(json_object_get(req, "card"));
		size_t n = serial != NULL ? strlen(serial) : 0;

		if (json_object_get(req, "document") != NULL) {
			return bad(err, "requester.document", "not with a card");
		}
		if (n == 0 || n > CSD_COPY_SERIAL_MAX ||
		    strspn(serial, "0123456789ABCDEFGHIJKLMN"
				   "OPQRSTUVWXYZ") != n) {
			return bad(err, "requester.card", "1 to 16 of 0-9 and A-Z");
		}
		snprintf(r->card, sizeof(r->card), "%s", serial);
		if (code_of(req, "code", "requester.code", 0, r->req_code, sizeof(r->req_code),
			    err) != 0) {
			return -1;
		}
		if (!r->household && strcmp(r->req_code, r->code) != 0) {
			return bad(err, "requester.code",
				   "not the person's own code (relation self)");
		}
	} else {
		if (json_object_get(req, "card") != NULL || json_object_get(req, "code") != NULL) {
			return bad(err, "requester.card", "only with identity card");
		}
		if (text_of(req, "document", "requester.document", 0, CSD_COPY_TEXT_MAX,
			    r->document, sizeof(r->document), err) != 0) {
			return -1;
		}
	}
	if (items_of(json_object_get(body, "items"), &r->items, err) != 0) {
		return -1;
	}
	v = json_object_get(body, "copies");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > CSD_COPY_COPIES_MAX) {
		return bad(err, "copies", "a whole number from 1 to %d", CSD_COPY_COPIES_MAX);
	}
	r->copies = (int)json_integer_value(v);
	v = json_object_get(body, "household");
	if (v != NULL && !json_is_boolean(v)) {
		return bad(err, "household", "true or false");
	}
	r->whole_household = json_is_true(v);
	return 0;
}

json_t *
csd_copy_request_json(const struct csd_copy_request *r)
{
	json_t *req = json_pack("{s:s,s:s,s:s}", "name", r->req_name, "relation",
				r->household ? "household" : "self", "identity",
				r->by_card ? "card" : "document");

	if (req == NULL) {
		return NULL;
	}
	if (r->by_card) {
		json_object_set_new(req, "card", json_string(r->card));
		json_object_set_new(req, "code", json_string(r->req_code));
	} else {
		json_object_set_new(req, "document", json_string(r->document));
	}
	return json_pack("{s:{s:s,s:s,s:s},s:o,s:s,s:s,s:o,s:i,s:b}", "person", "code", r->code,
			 "name", r->name, "birth", r->birth, "requester", req, "home", r->home,
			 "issuer", r->issuer, "items", csd_copy_items_json(r->items), "copies",
			 r->copies, "household", r->whole_household);
}

static int
person_check(const json_t *p, size_t i, unsigned items, struct csd_copy_error *err)
{
	static const char *const keys[] = {"name",           "kana",     "birth", "sex",
					   "resident_since", "relation", "code",  NULL};
	char field[64], buf[JUKI_NAME_MAX + 1], date[11], code[JUKI_JUMIN_CODE_LEN + 1];
	const json_t *sex;

	snprintf(field, sizeof(field), "copy.persons[%zu]", i);
	if (!json_is_object(p)) {
		return bad(err, field, "not an object");
	}
	if (keys_only(p, field, keys, err) != 0) {
		return -1;
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].name", i);
	if (text_of(p, "name", field, 0, JUKI_NAME_MAX, buf, sizeof(buf), err) != 0) {
		return -1;
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].kana", i);
	if (text_of(p, "kana", field, 1, JUKI_NAME_MAX, buf, sizeof(buf), err) != 0) {
		return -1;
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].birth", i);
	if (date_of(p, "birth", field, date, err) != 0) {
		return -1;
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].resident_since", i);
	if (date_of(p, "resident_since", field, date, err) != 0) {
		return -1;
	}
	sex = json_object_get(p, "sex");
	if (!json_is_integer(sex) ||
	    (json_integer_value(sex) != 1 && json_integer_value(sex) != 2)) {
		snprintf(field, sizeof(field), "copy.persons[%zu].sex", i);
		return bad(err, field, "1 (male) or 2 (female)");
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].relation", i);
	if (json_object_get(p, "relation") != NULL && !(items & CSD_COPY_RELATION)) {
		return bad(err, field, "an item not asked for");
	}
	if (text_of(p, "relation", field, 1, CSD_COPY_TEXT_MAX, buf, sizeof(buf), err) != 0) {
		return -1;
	}
	snprintf(field, sizeof(field), "copy.persons[%zu].code", i);
	if (json_object_get(p, "code") != NULL) {
		if (!(items & CSD_COPY_CODE)) {
			return bad(err, field, "an item not asked for");
		}
		if (code_of(p, "code", field, 0, code, sizeof(code), err) != 0) {
			return -1;
		}
	}
	return 0;
}

int
csd_copy_copy_check(const json_t *copy, unsigned items, struct csd_copy_error *err)
{
	static const char *const keys[] = {"address", "householder", "honseki", "persons", NULL};
	char buf[JUKI_ADDRESS_MAX + 1];
	const json_t *persons, *p;
	size_t i;

	if (!json_is_object(copy)) {
		return bad(err, "copy", "an object required");
	}
	if (keys_only(copy, "copy", keys, err) != 0 ||
	    text_of(copy, "address", "copy.address", 0, JUKI_ADDRESS_MAX, buf, sizeof(buf), err) !=
		0) {
		return -1;
	}
	if (json_object_get(copy, "householder") != NULL && !(items & CSD_COPY_HOUSEHOLDER)) {
		return bad(err, "copy.householder", "an item not asked for");
	}
	if (text_of(copy, "householder", "copy.householder", 1, JUKI_NAME_MAX, buf, sizeof(buf),
		    err) != 0) {
		return -1;
	}
	if (json_object_get(copy, "honseki") != NULL && !(items & CSD_COPY_HONSEKI)) {
		return bad(err, "copy.honseki", "an item not asked for");
	}
	if (text_of(copy, "honseki", "copy.honseki", 1, JUKI_ADDRESS_MAX, buf, sizeof(buf), err) !=
	    0) {
		return -1;
	}
	persons = json_object_get(copy, "persons");
	if (!json_is_array(persons) || json_array_size(persons) == 0 ||
	    json_array_size(persons) > CSD_COPY_PERSONS_MAX) {
		return bad(err, "copy.persons", "a list of 1 to %d persons", CSD_COPY_PERSONS_MAX);
	}
	json_array_foreach(persons, i, p)
	{
		if (person_check(p, i, items, err) != 0) {
			return -1;
		}
	}
	return 0;
}

int
csd_copy_reason_valid(const char *reason)
{
	static const char *const ok[] = {JUKI_R_NOT_RESIDENT, JUKI_R_PERSON_MISMATCH,
					 JUKI_R_CARD_INVALID, JUKI_R_RRS_REFUSED,
					 JUKI_R_REVIEW_REFUSED};

	for (size_t i = 0; reason != NULL && i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (strcmp(reason, ok[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

int
csd_copy_answer_parse(const json_t *body, unsigned items, const char **request_id, int *refused,
		      const json_t **copy, const char **reason, const char **detail,
		      struct csd_copy_error *err)
{
	static const char *const keys[] = {"request_id", "status", "copy",
					   "reason",     "detail", NULL};
	const char *status;
	char buf[CSD_COPY_TEXT_MAX + 1];

	*request_id = *reason = *detail = NULL;
	*copy = NULL;
	*refused = 0;
	if (!json_is_object(body)) {
		return bad(err, "body", "not an object");
	}
	if (keys_only(body, "body", keys, err) != 0) {
		return -1;
	}
	*request_id = json_string_value(json_object_get(body, "request_id"));
	if (*request_id == NULL || !juki_uuid_valid(*request_id)) {
		*request_id = NULL;
		return bad(err, "request_id", "the id of the request, a UUIDv7");
	}
	status = json_string_value(json_object_get(body, "status"));
	if (status != NULL && strcmp(status, "answered") == 0) {
		if (json_object_get(body, "reason") != NULL ||
		    json_object_get(body, "detail") != NULL) {
			return bad(err, "reason", "only with status refused");
		}
		*copy = json_object_get(body, "copy");
		return csd_copy_copy_check(*copy, items, err);
	}
	if (status == NULL || strcmp(status, "refused") != 0) {
		return bad(err, "status", "answered or refused");
	}
	*refused = 1;
	if (json_object_get(body, "copy") != NULL) {
		return bad(err, "copy", "not with status refused");
	}
	*reason = json_string_value(json_object_get(body, "reason"));
	if (!csd_copy_reason_valid(*reason)) {
		*reason = NULL;
		return bad(err, "reason", "a reason of docs/protocol.md §17");
	}
	if (text_of(body, "detail", "detail", 1, CSD_COPY_TEXT_MAX, buf, sizeof(buf), err) != 0) {
		return -1;
	}
	*detail = json_string_value(json_object_get(body, "detail"));
	return 0;
}
