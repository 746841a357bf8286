/*
 * juki — 異動等情報 for the certification authority (第6-8(6), 公的個人認証法
 * 第15条・第16条; docs/architecture.md "異動等情報"): what a server derives
 * from a record of 本人確認情報 that becomes current, so that the authority
 * revokes (or re-keys) the signing certificates the change affects.
 *
 * An entry, as it travels in ninsho.idou (docs/protocol.md, "ninsho"):
 *
 *   {"id":"<UUIDv7>", "code":"24727059608", "kind":"change",
 *    "date":"2026-11-20",
 *    "items":{"name":..., "birth":..., "sex":1, "address":..., "lgcode":"131016"}}
 *
 * kinds: "death" (reason 死亡), "removal" (any other removal: 転出,
 * 職権消除, 国籍喪失), "code-change" (住民票コード変更: one entry for the old
 * code, with "new_code"), "change" (the four basic items — name, birth,
 * sex, address with its lgcode — differ from the record replaced; "items"
 * are the new ones).  date is the record's reason_date.  "items" only for
 * change, "new_code" only for code-change; no other key.
 *
 * The rule (juki_idou_derive()) compares the record that becomes current
 * with the one it replaces: an entry with nothing replaced (出生, or a new
 * code's first record) derives nothing, nor does a change of none of the
 * four items (kana is not a basic item), nor a record that goes to history
 * (the caller never asks for those).  Pure: no store, no clock, no log.
 */
#ifndef JUKI_IDOU_H
#define JUKI_IDOU_H

#include <stddef.h>

#include <jansson.h>

#include "juki/base/codes.h"
#include "juki/records/honnin.h"
#include "juki/records/person.h"
#include "juki/wire/msg.h"

enum juki_idou_kind {
	JUKI_IDOU_DEATH = 0,       /* "death": 死亡 */
	JUKI_IDOU_REMOVAL = 1,     /* "removal": 転出, 職権消除, 国籍喪失 */
	JUKI_IDOU_CODE_CHANGE = 2, /* "code-change": 住民票コード変更, the old code */
	JUKI_IDOU_CHANGE = 3,      /* "change": a basic item changed */
};
#define JUKI_IDOU_KINDS 4

/* Entries in one ninsho.idou (and one ninsho.feed) at most. */
#define JUKI_IDOU_MAX 1000

/* One entry of 異動等情報. */
struct juki_idou {
	char id[JUKI_UUID_LEN + 1]; /* UUIDv7; "" from juki_idou_derive() */
	char code[JUKI_JUMIN_CODE_LEN + 1];
	enum juki_idou_kind kind;
	char date[11]; /* the record's reason_date, YYYY-MM-DD */
	/* change only: the four basic items after the change (code, kana unused) */
	struct juki_person items;
	char new_code[JUKI_JUMIN_CODE_LEN + 1]; /* code-change only */
};

/* juki_idou_kind_name() - "death", "removal", "code-change", "change"; NULL if out of range. */
const char *juki_idou_kind_name(enum juki_idou_kind kind);

/* juki_idou_kind_find() - the kind of a name above.  0, or JUKI_EINVAL when not one. */
int juki_idou_kind_find(const char *name, enum juki_idou_kind *kind);

/*
 * juki_idou_derive() - the entry that cur, a record that has just become
 * the current one of its code, derives, given prev, the current record it
 * replaced (NULL when the code had none here).  Returns 1 with *out filled
 * (id left empty: the caller gives it one), or 0 when it derives nothing.
 */
int juki_idou_derive(const struct juki_change *prev, const struct juki_change *cur,
		     struct juki_idou *out);

/*
 * juki_idou_from_json() - read and validate an entry: id a UUIDv7, code an
 * 11-digit code with its check digit, kind one of the names, date a real
 * day, items exactly for change (name, birth, sex, address, lgcode by the
 * rules of person.h, each required, no kana), new_code exactly for
 * code-change (a valid code other than code); no other key.  Returns 0, or
 * JUKI_EFORMAT / JUKI_ECHECKDIGIT with fe naming the field (never a value).
 */
int juki_idou_from_json(const json_t *obj, struct juki_idou *e, struct juki_field_error *fe);

/* juki_idou_to_json() - the object above; NULL on ENOMEM. */
json_t *juki_idou_to_json(const struct juki_idou *e);

#endif
