#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/ninsho.h"
#include "juki/records/agreement.h"
#include "juki/store/outbox.h"

const struct juki_conf_key juki_ninsho_keys[] = {
    JUKI_CONF_SCALAR(struct juki_ninsho_conf, authlink, "authlink", JUKI_CONF_IDENT, NULL, 0, 0, 0,
		     "The link server (urn:juki:authlink:<id>) 異動等情報 goes to (第6-8(6)); "
		     "unset: this server sends none and derives none."),
    JUKI_CONF_SCALAR(struct juki_ninsho_conf, ca, "ca", JUKI_CONF_IDENT, "urn:juki:ca:jpki", 0, 0,
		     0,
		     "The certification authority (urn:juki:ca:<id>) the 異動等情報 is for: an "
		     "active agreement with it, method feed, must exist for anything to be sent."),
    JUKI_CONF_END,
};

struct juki_ninsho {
	struct juki_node *node;
	char authlink[JUKI_URN_MAX]; /* "" when off */
	char ca[JUKI_URN_MAX];
	struct juki_honnin_hook hook;
	json_t *pending;      /* the entries of the batch being applied */
	int64_t sent_entries; /* queued since start */
	int64_t withheld;     /* derived but not queued for want of an agreement, since start */
	int64_t alerted_day;  /* the Japan day ninsho-no-agreement was last raised */
};

int
juki_ninsho_check(const struct juki_ninsho_conf *conf, char *err, size_t errlen)
{
	struct juki_ident id;

	if (conf->authlink != NULL && conf->authlink[0] != '\0' &&
	    (juki_ident_parse(conf->authlink, &id) != 0 || id.kind != JUKI_KIND_AUTHLINK)) {
		snprintf(err, errlen, "ninsho.authlink: a link server, urn:juki:authlink:<id>");
		return JUKI_ECONFIG;
	}
	if (conf->ca == NULL || juki_ident_parse(conf->ca, &id) != 0 || id.kind != JUKI_KIND_CA) {
		snprintf(err, errlen, "ninsho.ca: a certification authority, urn:juki:ca:<id>");
		return JUKI_ECONFIG;
	}
	return 0;
}

static void
take_conf(struct juki_ninsho *n, const struct juki_ninsho_conf *conf)
{
	snprintf(n->authlink, sizeof(n->authlink), "%s", conf->authlink ? conf->authlink : "");
	snprintf(n->ca, sizeof(n->ca), "%s", conf->ca ? conf->ca : "");
}

/*
 * The entry's id, the same wherever it is derived from the same record: a
 * UUIDv7 whose time is the record's `recorded` and whose other 74 bits are
 * of SHA-256("idou" code lgcode version kind).  The two national centres
 * derive each entry from the same record, so the link server knows the
 * second copy for what it is and passes the entry on once
 * (docs/architecture.md §27).
 */
static int
idou_id(const struct juki_change *c, const struct juki_idou *e, char out[JUKI_UUID_LEN + 1])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	char text[128];
	int n;

	n = snprintf(text, sizeof(text), "idou|%s|%s|%lld|%s", c->code, c->lgcode,
		     (long long)c->version, juki_idou_kind_name(e->kind));
	SHA256((const unsigned char *)text, (size_t)n, h);
	return juki_uuid7_from(c->recorded_ms, h, out);
}

/* The hook: derive from each record that became current. */
static int
on_current(void *arg, const struct juki_change *prev, const struct juki_change *cur)
{
	struct juki_ninsho *n = arg;
	struct juki_idou e;
	json_t *obj;

	if (!juki_idou_derive(prev, cur, &e)) {
		return 0;
	}
	if (idou_id(cur, &e, e.id) != 0 || (obj = juki_idou_to_json(&e)) == NULL ||
	    json_array_append_new(n->pending, obj) != 0) {
		return JUKI_ENOMEM;
	}
	return 0;
}

struct juki_ninsho *
juki_ninsho_start(struct juki_node *node, const struct juki_ninsho_conf *conf)
{
	struct juki_ninsho *n = calloc(1, sizeof(*n));

	if (n == NULL || (n->pending = json_array()) == NULL) {
		free(n);
		return NULL;
	}
	n->node = node;
	n->hook.current = on_current;
	n->hook.arg = n;
	n->alerted_day = -1;
	take_conf(n, conf);
	if (juki_node_module_set(node, JUKI_MODULE_NINSHO, n) != 0) {
		json_decref(n->pending);
		free(n);
		return NULL;
	}
	if (n->authlink[0] != '\0') {
		log_info("ninsho: 異動等情報 to %s for %s", n->authlink, n->ca);
	}
	return n;
}

int
juki_ninsho_reload(struct juki_ninsho *n, const struct juki_ninsho_conf *conf)
{
	if (n == NULL) {
		return 0;
	}
	take_conf(n, conf);
	return 0;
}

void
juki_ninsho_stop(struct juki_ninsho *n)
{
	if (n == NULL) {
		return;
	}
	juki_node_module_clear(n->node, JUKI_MODULE_NINSHO, n);
	json_decref(n->pending);
	free(n);
}

struct juki_ninsho *
juki_ninsho_of(struct juki_node *node)
{
	return juki_node_module(node, JUKI_MODULE_NINSHO);
}

const struct juki_honnin_hook *
juki_ninsho_hook(struct juki_ninsho *n)
{
	if (n == NULL || n->authlink[0] == '\0') {
		return NULL;
	}
	json_array_clear(n->pending);
	return &n->hook;
}

void
juki_ninsho_reset(struct juki_ninsho *n)
{
	if (n != NULL) {
		json_array_clear(n->pending);
	}
}

/* Put entries [from, to) of the pending list in one ninsho.idou under a. */
static int
put_message(struct juki_ninsho *n, const struct juki_agreement *a, size_t from, size_t to)
{
	struct juki_node *node = n->node;
	struct juki_msg msg;
	json_t *entries = json_array(), *body;
	int rc;

	for (size_t i = from; entries != NULL && i < to; i++) {
		if (json_array_append(entries, json_array_get(n->pending, i)) != 0) {
			json_decref(entries);
			return JUKI_ENOMEM;
		}
	}
	body = json_pack("{s:s,s:s,s:I,s:o*}", "ca", n->ca, "agreement", a->id, "retention_days",
			 (json_int_t)a->keep_days, "entries", entries);
	if (body == NULL) {
		return JUKI_ENOMEM;
	}
	rc = juki_msg_init(&msg, JUKI_MSG_NINSHO_IDOU, juki_node_self(node)->urn, n->authlink, NULL,
			   body, juki_node_clock(node));
	if (rc != 0) {
		return rc;
	}
	rc = juki_outbox_put(juki_node_store(node), &msg, "ninsho", juki_node_now_ms(node), NULL);
	juki_msg_clear(&msg);
	return rc;
}

int
juki_ninsho_flush(struct juki_ninsho *n)
{
	struct juki_agreement a;
	size_t count, room;
	int64_t today;
	int rc;

	if (n == NULL || (count = json_array_size(n->pending)) == 0) {
		return 0;
	}
	rc = juki_agreement_feed(juki_node_store(n->node), n->ca, &a);
	if (rc == JUKI_ENOTFOUND) {
		n->withheld += (int64_t)count;
		today = juki_clock_today(juki_node_now_ms(n->node));
		if (n->alerted_day != today) {
			n->alerted_day = today;
			/* Counts only: the entries are of persons. */
			juki_alert(
			    juki_node_alerts(n->node), JUKI_ALERT_NINSHO_NO_AGREEMENT, n->ca, NULL,
			    "no active agreement with method feed: %zu entries of 異動等情報 "
			    "withheld (first today; %lld since start)",
			    count, (long long)n->withheld);
		}
		json_array_clear(n->pending);
		return 0;
	}
	/*
	 * At most JUKI_IDOU_MAX entries a message, and no more than three
	 * quarters of limits.frame_max of them (the rest is room for the
	 * envelope), as a batcher closes honnin.batch.
	 */
	room = (size_t)juki_node_conf(n->node)->limits.frame_max * 3 / 4;
	for (size_t from = 0, i = 0, bytes = 0; rc == 0 && i <= count; i++) {
		size_t len =
		    i < count ? json_dumpb(json_array_get(n->pending, i), NULL, 0, JSON_COMPACT) + 1
			      : 0;

		if (i == count ||
		    (i > from && (i - from == JUKI_IDOU_MAX || bytes + len + 1024 > room))) {
			rc = put_message(n, &a, from, i);
			from = i;
			bytes = 0;
		}
		bytes += len;
	}
	if (rc == 0) {
		n->sent_entries += (int64_t)count;
	}
	json_array_clear(n->pending);
	return rc;
}

json_t *
juki_ninsho_status(struct juki_node *node)
{
	struct juki_ninsho *n = juki_ninsho_of(node);
	struct juki_agreement a;
	int active;

	if (n == NULL) {
		return NULL;
	}
	active = juki_agreement_feed(juki_node_store(node), n->ca, &a) == 0;
	return json_pack("{s:o,s:s,s:o,s:I,s:I}", "authlink",
			 n->authlink[0] != '\0' ? json_string(n->authlink) : json_null(), "ca",
			 n->ca, "agreement", active ? json_string(a.id) : json_null(),
			 "sent_entries", (json_int_t)n->sent_entries, "withheld",
			 (json_int_t)n->withheld);
}
