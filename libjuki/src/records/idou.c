#include <stdio.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/records/idou.h"

static const char *const kind_names[JUKI_IDOU_KINDS] = {
    [JUKI_IDOU_DEATH] = "death",
    [JUKI_IDOU_REMOVAL] = "removal",
    [JUKI_IDOU_CODE_CHANGE] = "code-change",
    [JUKI_IDOU_CHANGE] = "change",
};

const char *
juki_idou_kind_name(enum juki_idou_kind kind)
{
	return (unsigned)kind < JUKI_IDOU_KINDS ? kind_names[kind] : NULL;
}

int
juki_idou_kind_find(const char *name, enum juki_idou_kind *kind)
{
	for (unsigned i = 0; name != NULL && i < JUKI_IDOU_KINDS; i++) {
		if (strcmp(kind_names[i], name) == 0) {
			*kind = (enum juki_idou_kind)i;
			return 0;
		}
	}
	return JUKI_EINVAL;
}

/* The four basic items (公的個人認証法 第15条): name, birth, sex, address with its lgcode. */
static int
basic_items_differ(const struct juki_change *a, const struct juki_change *b)
{
	return strcmp(a->person.name, b->person.name) != 0 ||
	       strcmp(a->person.birth, b->person.birth) != 0 || a->person.sex != b->person.sex ||
	       strcmp(a->person.address, b->person.address) != 0 ||
	       strcmp(a->lgcode, b->lgcode) != 0;
}

int
juki_idou_derive(const struct juki_change *prev, const struct juki_change *cur,
		 struct juki_idou *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->code, sizeof(out->code), "%s", cur->code);
	snprintf(out->date, sizeof(out->date), "%s", cur->reason_date);
	if (juki_change_kind_of(cur) == JUKI_CHANGE_REMOVAL) {
		/*
		 * Whatever was held before (even nothing here): a removal ends the
		 * person's register, and with it the certificates of the code.
		 */
		if (cur->new_code[0] != '\0') {
			out->kind = JUKI_IDOU_CODE_CHANGE;
			snprintf(out->new_code, sizeof(out->new_code), "%s", cur->new_code);
		} else if (strcmp(cur->reason->romaji, "shibou") == 0) {
			out->kind = JUKI_IDOU_DEATH;
		} else {
			out->kind = JUKI_IDOU_REMOVAL;
		}
		return 1;
	}
	/* An entry or a correction: only a change of a basic item of a record held. */
	if (prev == NULL || !basic_items_differ(prev, cur)) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	out->kind = JUKI_IDOU_CHANGE;
	out->items = cur->person;
	out->items.kana[0] = '\0';
	snprintf(out->items.code, sizeof(out->items.code), "%s", cur->code);
	snprintf(out->items.lgcode, sizeof(out->items.lgcode), "%s", cur->lgcode);
	return 1;
}

static int
fail(struct juki_field_error *fe, const char *field, int rc, const char *detail)
{
	snprintf(fe->field, sizeof(fe->field), "%s", field);
	fe->reason = rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD;
	snprintf(fe->detail, sizeof(fe->detail), "%s", detail);
	return rc;
}

static int
only_keys(const json_t *obj, const char *const *known)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++) {
		}
		if (known[i] == NULL) {
			return 0;
		}
	}
	return 1;
}

/* The items of a change: the person fields of person.h but kana, and the lgcode. */
static int
items_read(const json_t *items, struct juki_idou *e, struct juki_field_error *fe)
{
	static const char *const known[] = {"name", "birth", "sex", "address", "lgcode", NULL};
	char lgcode[JUKI_LGCODE_LEN + 1];
	json_t *fields;
	int rc;

	if (!json_is_object(items)) {
		return fail(fe, "items", JUKI_EFORMAT, "must be an object");
	}
	if (!only_keys(items, known)) {
		return fail(fe, "items", JUKI_EFORMAT, "unknown field");
	}
	if ((rc = juki_json_code(items, "lgcode", 1, lgcode, sizeof(lgcode), fe)) != 0) {
		snprintf(fe->field, sizeof(fe->field), "items.lgcode");
		return rc;
	}
	if ((fields = json_copy((json_t *)items)) == NULL) {
		return fail(fe, "items", JUKI_ENOMEM, "out of memory");
	}
	json_object_del(fields, "lgcode");
	rc = juki_person_fields_from_json(fields, e->code, lgcode, &e->items, fe);
	json_decref(fields);
	if (rc != 0) {
		char field[sizeof(fe->field)];

		snprintf(field, sizeof(field), "%s", fe->field);
		snprintf(fe->field, sizeof(fe->field), "items.%.24s", field);
	}
	return rc;
}

int
juki_idou_from_json(const json_t *obj, struct juki_idou *e, struct juki_field_error *fe)
{
	static const char *const known[] = {"id",    "code",     "kind", "date",
					    "items", "new_code", NULL};
	const char *id;
	const json_t *items, *new_code;
	int rc;

	memset(e, 0, sizeof(*e));
	memset(fe, 0, sizeof(*fe));
	if (!json_is_object(obj)) {
		return fail(fe, "entry", JUKI_EFORMAT, "must be an object");
	}
	if (!only_keys(obj, known)) {
		return fail(fe, "entry", JUKI_EFORMAT, "unknown field");
	}
	id = json_string_value(json_object_get(obj, "id"));
	if (id == NULL || !juki_uuid_valid(id)) {
		return fail(fe, "id", JUKI_EFORMAT, "must be a UUIDv7");
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	if ((rc = juki_json_code(obj, "code", 0, e->code, sizeof(e->code), fe)) != 0) {
		return rc;
	}
	if (juki_idou_kind_find(json_string_value(json_object_get(obj, "kind")), &e->kind) != 0) {
		return fail(fe, "kind", JUKI_EFORMAT,
			    "must be death, removal, code-change or change");
	}
	if ((rc = juki_json_date(obj, "date", e->date, fe)) != 0) {
		return rc;
	}
	items = json_object_get(obj, "items");
	if ((items != NULL) != (e->kind == JUKI_IDOU_CHANGE)) {
		return fail(fe, "items", JUKI_EFORMAT, "required for change, and only for it");
	}
	if (items != NULL && (rc = items_read(items, e, fe)) != 0) {
		return rc;
	}
	new_code = json_object_get(obj, "new_code");
	if ((new_code != NULL) != (e->kind == JUKI_IDOU_CODE_CHANGE)) {
		return fail(fe, "new_code", JUKI_EFORMAT,
			    "required for code-change, and only for it");
	}
	if (new_code != NULL) {
		if ((rc = juki_json_code(obj, "new_code", 0, e->new_code, sizeof(e->new_code),
					 fe)) != 0) {
			return rc;
		}
		if (strcmp(e->new_code, e->code) == 0) {
			return fail(fe, "new_code", JUKI_EFORMAT, "must differ from code");
		}
	}
	return 0;
}

json_t *
juki_idou_to_json(const struct juki_idou *e)
{
	json_t *obj = json_pack("{s:s,s:s,s:s,s:s}", "id", e->id, "code", e->code, "kind",
				juki_idou_kind_name(e->kind), "date", e->date);

	if (obj == NULL) {
		return NULL;
	}
	if (e->kind == JUKI_IDOU_CHANGE &&
	    json_object_set_new(obj, "items",
				json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", e->items.name, "birth",
					  e->items.birth, "sex", e->items.sex, "address",
					  e->items.address, "lgcode", e->items.lgcode)) != 0) {
		json_decref(obj);
		return NULL;
	}
	if (e->kind == JUKI_IDOU_CODE_CHANGE &&
	    json_object_set_new(obj, "new_code", json_string(e->new_code)) != 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}
