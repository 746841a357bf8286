/*
 * The control commands of the resident card register (cards.h): card.issue,
 * card.show, card.suspend, card.resume, card.collect, card.invalidate,
 * card.list (docs/control.md).  The operation history names the card
 * serial as the target, never the holder's code.
 */
#include <stdio.h>
#include <string.h>

#include "cards.h"
#include "csd.h"
#include "juki/base/error.h"
#include "juki/node/opcmds.h"
#include "juki/records/person.h"

#define CARD_REASON_MAX 200

static int
refuse(struct juki_ctl_error *err, enum csd_card_refusal why, const char *serial,
       enum csd_card_state from, const char *action)
{
	switch (why) {
	case CSD_CARD_BAD_SERIAL:
		return juki_ctl_fail(err, "invalid", "serial: 1 to 16 of 0-9 and A-Z");
	case CSD_CARD_SERIAL_USED:
		return juki_ctl_fail(err, "conflict", "card %s: serial used before", serial);
	case CSD_CARD_HOLDER_HAS:
		return juki_ctl_fail(err, "conflict",
				     "the holder already has a valid card (issued or suspended)");
	case CSD_CARD_UNKNOWN:
		return juki_ctl_fail(err, "not-found", "card %s: no such card here", serial);
	case CSD_CARD_TRANSITION:
		return juki_ctl_fail(err, "conflict", "card %s is %s: cannot %s it", serial,
				     csd_card_state_name(from), action);
	case CSD_CARD_OK:
		break;
	}
	return 0;
}

/* args.serial, checked, noted as the history's target. */
static int
serial_arg(struct csd *cs, const json_t *args, const char **serial, struct juki_ctl_error *err)
{
	*serial = json_string_value(json_object_get(args, "serial"));
	if (*serial == NULL) {
		return juki_ctl_fail(err, "usage", "serial: required");
	}
	if (!csd_card_serial_valid(*serial)) {
		return refuse(err, CSD_CARD_BAD_SERIAL, *serial, CSD_CARD_NONE, NULL);
	}
	juki_opcmds_note(juki_node_opcmds(cs->node), *serial, NULL);
	return 0;
}

static const char *
who_of(struct csd *cs)
{
	const struct juki_caller *c = juki_opcmds_caller(juki_node_opcmds(cs->node));

	return c != NULL ? c->who : "unknown";
}

int
csd_cmd_card_issue(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	struct juki_field_error fe;
	struct juki_change held;
	enum csd_card_refusal why;
	char code[JUKI_JUMIN_CODE_LEN + 1];
	const char *serial;
	int rc;

	if ((rc = serial_arg(cs, args, &serial, err)) != 0) {
		return rc;
	}
	if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
		return juki_ctl_fail(err, "invalid", "code: %s", fe.detail);
	}
	rc = csd_held(cs, code, &held);
	if (rc == JUKI_ENOTFOUND || (rc == 0 && !csd_resident(cs, &held))) {
		return juki_ctl_fail(err, "conflict", "%s is not a resident here", code);
	}
	if (rc != 0) {
		return rc;
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	rc = csd_card_issue(store, serial, code, juki_node_now_ms(cs->node), who_of(cs), &why);
	if (rc != 0 || why != CSD_CARD_OK) {
		juki_store_rollback(store);
		return rc != 0 ? rc : refuse(err, why, serial, CSD_CARD_NONE, "issue");
	}
	if ((rc = juki_store_commit(store)) != 0) {
		return rc;
	}
	*result = csd_card_json(store, serial);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

int
csd_cmd_card_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	char buf[CSD_CARD_SERIAL_MAX + 1];
	struct juki_field_error fe;
	char code[JUKI_JUMIN_CODE_LEN + 1];
	const char *serial;
	int rc;

	if ((json_object_get(args, "serial") != NULL) == (json_object_get(args, "code") != NULL)) {
		return juki_ctl_fail(err, "usage", "serial or code: one of them");
	}
	if (json_object_get(args, "serial") != NULL) {
		if ((rc = serial_arg(cs, args, &serial, err)) != 0) {
			return rc;
		}
	} else {
		if (juki_json_code(args, "code", 0, code, sizeof(code), &fe) != 0) {
			return juki_ctl_fail(err, "invalid", "code: %s", fe.detail);
		}
		rc = csd_card_of(store, code, buf, sizeof(buf));
		if (rc == JUKI_ENOTFOUND) {
			return juki_ctl_fail(err, "not-found", "%s holds no valid card here", code);
		}
		if (rc != 0) {
			return rc;
		}
		serial = buf;
		juki_opcmds_note(juki_node_opcmds(cs->node), serial, NULL);
	}
	*result = csd_card_json(store, serial);
	if (*result == NULL) {
		return juki_ctl_fail(err, "not-found", "card %s: no such card here", serial);
	}
	return 0;
}

static int
change(void *ctx, const json_t *args, enum csd_card_action a, int need_reason, json_t **result,
       struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	struct juki_store *store = juki_node_store(cs->node);
	const char *serial, *reason = json_string_value(json_object_get(args, "reason"));
	enum csd_card_refusal why;
	enum csd_card_state from;
	int rc;

	if ((rc = serial_arg(cs, args, &serial, err)) != 0) {
		return rc;
	}
	if (need_reason && (reason == NULL || reason[0] == '\0')) {
		return juki_ctl_fail(err, "usage", "reason: required");
	}
	if (reason != NULL && strlen(reason) > CARD_REASON_MAX) {
		return juki_ctl_fail(err, "invalid", "reason: at most %d bytes", CARD_REASON_MAX);
	}
	if ((rc = juki_store_begin(store)) != 0) {
		return rc;
	}
	rc = csd_card_change(store, serial, a, reason, juki_node_now_ms(cs->node), who_of(cs),
			     &from, &why);
	if (rc != 0 || why != CSD_CARD_OK) {
		juki_store_rollback(store);
		return rc != 0 ? rc : refuse(err, why, serial, from, csd_card_action_name(a));
	}
	if ((rc = juki_store_commit(store)) != 0) {
		return rc;
	}
	*result = csd_card_json(store, serial);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

int
csd_cmd_card_suspend(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change(ctx, args, CSD_CARD_SUSPEND, 1, result, err);
}

int
csd_cmd_card_resume(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change(ctx, args, CSD_CARD_RESUME, 0, result, err);
}

int
csd_cmd_card_collect(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change(ctx, args, CSD_CARD_COLLECT, 0, result, err);
}

int
csd_cmd_card_invalidate(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change(ctx, args, CSD_CARD_INVALIDATE, 1, result, err);
}

int
csd_cmd_card_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct csd *cs = juki_node_priv(ctx);
	const char *state = json_string_value(json_object_get(args, "state"));
	json_t *cards;

	if (json_object_get(args, "state") != NULL &&
	    csd_card_state_parse(state) == CSD_CARD_NONE) {
		return juki_ctl_fail(err, "usage",
				     "state: issued, suspended, collected or invalidated");
	}
	if ((cards = csd_card_list(juki_node_store(cs->node), state)) == NULL) {
		return JUKI_ENOMEM;
	}
	*result = json_pack("{s:o}", "cards", cards);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}
