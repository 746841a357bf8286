/*
 * The bodies of tokurei.request, tokurei.answer and tokurei.collected
 * (tokureimsg.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cards.h"
#include "juki/base/codes.h"
#include "juki/wire/msg.h"
#include "tokureimsg.h"

static int __attribute__((format(printf, 3, 4)))
bad(struct csd_tokurei_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

static int
keys_only(const json_t *obj, const char *where, const char *const *keys,
	  struct csd_tokurei_error *err)
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

static int
text_of(const json_t *obj, const char *key, int opt, size_t max, char *out, size_t len,
	struct csd_tokurei_error *err)
{
	const json_t *v = json_object_get(obj, key);
	char why[96];

	out[0] = '\0';
	if (v == NULL && opt) {
		return 0;
	}
	if (!json_is_string(v)) {
		return bad(err, key, v == NULL ? "required" : "not a string");
	}
	if (strlen(json_string_value(v)) >= len) {
		return bad(err, key, "longer than %zu bytes", max);
	}
	if (juki_text_valid(json_string_value(v), max, why, sizeof(why)) != 0) {
		return bad(err, key, "%s", why);
	}
	snprintf(out, len, "%s", json_string_value(v));
	return 0;
}

static int
code_of(const json_t *obj, const char *key, int lgcode, char *out, size_t len,
	struct csd_tokurei_error *err)
{
	struct juki_field_error fe;

	if (juki_json_code(obj, key, lgcode, out, len, &fe) != 0) {
		return bad(err, key, "%s", fe.detail);
	}
	return 0;
}

static int
date_of(const json_t *obj, const char *key, char out[11], struct csd_tokurei_error *err)
{
	struct juki_field_error fe;

	if (juki_json_date(obj, key, out, &fe) != 0) {
		return bad(err, key, "%s", fe.detail);
	}
	return 0;
}

static int
card_of(const json_t *obj, char out[CSD_TOKUREI_SERIAL_MAX + 1], struct csd_tokurei_error *err)
{
	const char *s = json_string_value(json_object_get(obj, "card"));

	if (s == NULL || !csd_card_serial_valid(s)) {
		return bad(err, "card", "a card serial: 1 to 16 of 0-9 and A-Z");
	}
	snprintf(out, CSD_TOKUREI_SERIAL_MAX + 1, "%s", s);
	return 0;
}

int
csd_tokurei_request_parse(const json_t *body, struct csd_tokurei_request *r,
			  struct csd_tokurei_error *err)
{
	static const char *const keys[] = {"code", "name", "birth", "card", "from", "to", NULL};

	memset(r, 0, sizeof(*r));
	if (!json_is_object(body)) {
		return bad(err, "body", "not an object");
	}
	if (keys_only(body, "body", keys, err) != 0 ||
	    code_of(body, "code", 0, r->code, sizeof(r->code), err) != 0 ||
	    text_of(body, "name", 0, JUKI_NAME_MAX, r->name, sizeof(r->name), err) != 0 ||
	    date_of(body, "birth", r->birth, err) != 0 || card_of(body, r->card, err) != 0 ||
	    code_of(body, "from", 1, r->from, sizeof(r->from), err) != 0 ||
	    code_of(body, "to", 1, r->to, sizeof(r->to), err) != 0) {
		return -1;
	}
	if (strcmp(r->from, r->to) == 0) {
		return bad(err, "to", "the same municipality as from: not a move between two");
	}
	return 0;
}

json_t *
csd_tokurei_request_json(const struct csd_tokurei_request *r)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "code", r->code, "name", r->name, "birth",
			 r->birth, "card", r->card, "from", r->from, "to", r->to);
}

/* One household member: {code, name, kana?, birth, sex}; where: "members[i]". */
static int
member_of(const json_t *o, struct csd_tokurei_member *m, struct csd_tokurei_error *err)
{
	static const char *const keys[] = {"code", "name", "kana", "birth", "sex", NULL};
	const json_t *sex;

	if (!json_is_object(o)) {
		return bad(err, "members", "a list of objects");
	}
	if (keys_only(o, "members", keys, err) != 0 ||
	    code_of(o, "code", 0, m->code, sizeof(m->code), err) != 0 ||
	    text_of(o, "name", 0, JUKI_NAME_MAX, m->name, sizeof(m->name), err) != 0 ||
	    text_of(o, "kana", 1, JUKI_NAME_MAX, m->kana, sizeof(m->kana), err) != 0 ||
	    date_of(o, "birth", m->birth, err) != 0) {
		snprintf(err->field, sizeof(err->field), "members.%.50s",
			 strcmp(err->field, "members") == 0 ? "body" : err->field);
		return -1;
	}
	sex = json_object_get(o, "sex");
	if (!json_is_integer(sex) ||
	    (json_integer_value(sex) != 1 && json_integer_value(sex) != 2)) {
		return bad(err, "members.sex", "1 or 2");
	}
	m->sex = (int)json_integer_value(sex);
	return 0;
}

static int
members_of(const json_t *a, struct csd_tokurei_cert *c, struct csd_tokurei_error *err)
{
	const json_t *v;
	size_t i;

	c->nmembers = 0;
	if (a == NULL) {
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > CSD_TOKUREI_MEMBERS_MAX) {
		return bad(err, "members", "a list of at most %d members", CSD_TOKUREI_MEMBERS_MAX);
	}
	json_array_foreach(a, i, v)
	{
		if (member_of(v, &c->members[i], err) != 0) {
			return -1;
		}
		if (strcmp(c->members[i].code, c->code) == 0) {
			return bad(err, "members.code", "the holder is no member of their own");
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->members[j].code, c->members[i].code) == 0) {
				return bad(err, "members.code", "a member named twice");
			}
		}
		c->nmembers = i + 1;
	}
	return 0;
}

int
csd_tokurei_cert_parse(const json_t *body, struct csd_tokurei_cert *c,
		       struct csd_tokurei_error *err)
{
	static const char *const keys[] = {"code",        "name",    "kana", "birth", "sex",
					   "address",     "from",    "to",   "date",  "card",
					   "new_address", "members", NULL};
	const json_t *sex;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(body)) {
		return bad(err, "certificate", "not an object");
	}
	if (keys_only(body, "certificate", keys, err) != 0 ||
	    code_of(body, "code", 0, c->code, sizeof(c->code), err) != 0 ||
	    text_of(body, "name", 0, JUKI_NAME_MAX, c->name, sizeof(c->name), err) != 0 ||
	    text_of(body, "kana", 1, JUKI_NAME_MAX, c->kana, sizeof(c->kana), err) != 0 ||
	    date_of(body, "birth", c->birth, err) != 0) {
		return -1;
	}
	sex = json_object_get(body, "sex");
	if (!json_is_integer(sex) ||
	    (json_integer_value(sex) != 1 && json_integer_value(sex) != 2)) {
		return bad(err, "sex", "1 or 2");
	}
	c->sex = (int)json_integer_value(sex);
	if (text_of(body, "address", 0, JUKI_ADDRESS_MAX, c->address, sizeof(c->address), err) !=
		0 ||
	    text_of(body, "new_address", 0, JUKI_ADDRESS_MAX, c->new_address,
		    sizeof(c->new_address), err) != 0 ||
	    code_of(body, "from", 1, c->from, sizeof(c->from), err) != 0 ||
	    code_of(body, "to", 1, c->to, sizeof(c->to), err) != 0 ||
	    date_of(body, "date", c->date, err) != 0 || card_of(body, c->card, err) != 0 ||
	    members_of(json_object_get(body, "members"), c, err) != 0) {
		return -1;
	}
	if (strcmp(c->from, c->to) == 0) {
		return bad(err, "to", "the same municipality as from: not a move between two");
	}
	return 0;
}

json_t *
csd_tokurei_cert_json(const struct csd_tokurei_cert *c)
{
	json_t *o =
	    json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s}", "code", c->code, "name", c->name,
		      "birth", c->birth, "sex", c->sex, "address", c->address, "from", c->from,
		      "to", c->to, "new_address", c->new_address, "date", c->date, "card", c->card);

	if (o != NULL && c->kana[0] != '\0') {
		json_object_set_new(o, "kana", json_string(c->kana));
	}
	if (o != NULL && c->nmembers > 0) {
		json_t *a = json_array();

		for (size_t i = 0; a != NULL && i < c->nmembers; i++) {
			const struct csd_tokurei_member *m = &c->members[i];
			json_t *mo = json_pack("{s:s,s:s,s:s,s:i}", "code", m->code, "name",
					       m->name, "birth", m->birth, "sex", m->sex);

			if (mo != NULL && m->kana[0] != '\0') {
				json_object_set_new(mo, "kana", json_string(m->kana));
			}
			json_array_append_new(a, mo);
		}
		json_object_set_new(o, "members", a);
	}
	return o;
}

static int
request_id_of(const json_t *body, const char **request_id, struct csd_tokurei_error *err)
{
	*request_id = json_string_value(json_object_get(body, "request_id"));
	if (*request_id == NULL || !juki_uuid_valid(*request_id)) {
		return bad(err, "request_id", "the id of a tokurei.request, a UUIDv7");
	}
	return 0;
}

int
csd_tokurei_answer_parse(const json_t *body, const char **request_id, struct csd_tokurei_cert *c,
			 struct csd_tokurei_error *err)
{
	static const char *const keys[] = {"request_id", "certificate", NULL};

	*request_id = NULL;
	if (!json_is_object(body)) {
		return bad(err, "body", "not an object");
	}
	if (keys_only(body, "body", keys, err) != 0 || request_id_of(body, request_id, err) != 0) {
		return -1;
	}
	return csd_tokurei_cert_parse(json_object_get(body, "certificate"), c, err);
}

int
csd_tokurei_collected_parse(const json_t *body, const char **request_id,
			    char card[CSD_TOKUREI_SERIAL_MAX + 1], struct csd_tokurei_error *err)
{
	static const char *const keys[] = {"request_id", "card", NULL};

	*request_id = NULL;
	if (!json_is_object(body)) {
		return bad(err, "body", "not an object");
	}
	if (keys_only(body, "body", keys, err) != 0 || request_id_of(body, request_id, err) != 0 ||
	    card_of(body, card, err) != 0) {
		return -1;
	}
	return 0;
}
