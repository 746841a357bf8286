#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authlinkd.h"
#include "feed.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/report.h"

static const struct juki_conf_key authlink_keys[] = {
    JUKI_CONF_SCALAR(struct authlink_section, ca, "ca", JUKI_CONF_IDENT, "urn:juki:ca:jpki",
		     JUKI_CONF_RESTART, 0, 0,
		     "The certification authority this server feeds (urn:juki:ca:<id>): "
		     "ninsho.idou naming another is refused ninsho-wrong-ca.  The queued feed is "
		     "addressed to it, so a change takes a restart."),
    JUKI_CONF_SCALARLIST(struct authlink_section, sources, nsources, "sources", JUKI_CONF_IDENT, 0,
			 0, 64,
			 "Servers allowed to send 異動等情報 (ninsho.idou); none listed: the "
			 "national server, urn:juki:jlis:0."),
    JUKI_CONF_SCALAR(struct authlink_section, keep, "keep", JUKI_CONF_DURATION, "7d", 0, 0,
		     INT64_C(3650) * 86400 * 1000,
		     "How long an entry is kept after the authority acknowledged it; juki-ctl "
		     "purge erases it then (0: never)."),
    JUKI_CONF_SCALAR(struct authlink_section, lag_alert, "lag_alert", JUKI_CONF_DURATION, "10m", 0,
		     1000, INT64_C(30) * 86400 * 1000,
		     "Alert authlink-lag when the oldest entry not acknowledged by the authority "
		     "is older than this."),
    JUKI_CONF_END,
};

const struct juki_conf_key authlinkd_conf_keys[] = {
    JUKI_NODE_CONF_KEYS(struct authlinkd_conf, node),
    JUKI_CONF_SECTIONKEY(struct authlinkd_conf, authlink, "authlink", authlink_keys,
			 "The feed of 異動等情報 to the certification authority (第6-8(6))."),
    JUKI_CONF_END,
};

static const struct juki_schema authlinkd_schemas[2] = {
    FEED_SCHEMA,
    JUKI_REPORT_SCHEMA,
};

static const struct authlinkd_conf *
conf_of(const struct juki_node *node)
{
	return juki_node_daemon_conf(node);
}

static struct authlinkd *
authlinkd_of(struct juki_node *node)
{
	return juki_node_priv(node);
}

/* The authority fed: authlink.ca as the daemon started (a change takes a restart). */
static const char *
ca_of(struct juki_node *node)
{
	return authlinkd_of(node)->ca;
}

static int
is_source(const struct authlink_section *a, const char *urn)
{
	if (a->nsources == 0) {
		return strcmp(urn, AUTHLINK_DEFAULT_SOURCE) == 0;
	}
	for (size_t i = 0; i < a->nsources; i++) {
		if (strcmp(a->sources[i], urn) == 0) {
			return 1;
		}
	}
	return 0;
}

/* ninsho.idou from a source: append its entries to the feed and queue them for the authority. */
static int
handle_idou(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	const struct authlink_section *a = &conf_of(node)->authlink;
	struct feed_header hdr;
	struct feed_entry *e = NULL;
	size_t n = 0, k = 0, dup = 0;
	int rc;

	if (!is_source(a, msg->from)) {
		return juki_reject_set(rej, FEED_R_NOT_SOURCE,
				       "%s is not a source of this link server", msg->from);
	}
	if ((rc = feed_idou_read(msg->body, ca_of(node), msg->from, &hdr, &e, &n, rej)) != 0) {
		return rc;
	}
	/*
	 * An entry already in the feed under its id, the same entry, is passed
	 * on once: the other national centre sent it first (the two derive it
	 * from the same record with the same id).  The same id for another
	 * entry is refused, as is the whole message.
	 */
	for (size_t i = 0; i < n; i++) {
		int held = feed_entry_held(juki_node_store(node), &e[i]);

		if (held < 0) {
			free(e);
			return held;
		}
		if (held == 2) {
			free(e);
			return juki_reject_set(rej, JUKI_R_BAD_FIELD,
					       "entries[%zu].id: received before", i);
		}
		if (held == 1) {
			authlinkd_of(node)->twice++;
			continue;
		}
		e[k++] = e[i];
	}
	n = k;
	rc = n == 0
		 ? 0
		 : feed_append(juki_node_store(node), juki_node_clock(node),
			       juki_node_self(node)->urn, &hdr, e, n, juki_node_now_ms(node), &dup);
	free(e);
	if (rc == JUKI_EDUP) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "entries[%zu].id: received before",
				       dup);
	}
	return rc;
}

static void history(struct juki_node *node, const char *who, const char *action,
		    const char *outcome, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
history(struct juki_node *node, const char *who, const char *action, const char *outcome,
	const char *fmt, ...)
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
	juki_opcmds_audit(oc, who, action, NULL, outcome, detail);
}

/* ninsho.resend from the authority: queue the feed again from seq "from". */
static int
handle_resend(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	const char *ca = ca_of(node);
	int64_t from = 0, to = 0;
	int rc;

	if (strcmp(msg->from, ca) != 0) {
		history(node, msg->from, "ninsho.resend", JUKI_R_POLICY, "not the authority fed");
		return juki_reject_set(rej, JUKI_R_POLICY, "this link server feeds %s", ca);
	}
	if ((rc = feed_resend_read(msg->body, &from, rej)) != 0) {
		history(node, msg->from, "ninsho.resend", rej->reason, "malformed");
		return rc;
	}
	rc = feed_resend(juki_node_store(node), juki_node_clock(node), juki_node_self(node)->urn,
			 ca, from, juki_node_now_ms(node), &to, rej);
	if (rc == JUKI_REJECT) {
		history(node, msg->from, "ninsho.resend", rej->reason, "from %" PRId64 ": %s", from,
			rej->detail);
		return rc;
	}
	if (rc != 0) {
		return rc;
	}
	history(node, msg->from, "ninsho.resend", "ok", "from %" PRId64 " to %" PRId64, from, to);
	log_notice("authlink: %s asked for the feed again from %" PRId64 "; entries up to %" PRId64
		   " queued again",
		   msg->from, from, to);
	/* What was in flight is gone from the queue: the link starts over. */
	juki_outbound_restart(juki_node_outbound(node), ca, "ninsho");
	rej->result = json_pack("{s:I,s:I}", "from", (json_int_t)from, "to", (json_int_t)to);
	return rej->result != NULL ? 0 : JUKI_ENOMEM;
}

/* Printable ASCII of what the authority said, for an alert (never a resident's data). */
static void
tame(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; in[i] != '\0' && j + 1 < len; i++) {
		out[j++] = in[i] >= ' ' && in[i] <= '~' ? in[i] : '?';
	}
	out[j] = '\0';
}

static int
authlinkd_on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct juki_node *node = ctx;
	struct authlinkd *al = authlinkd_of(node);
	char why[200], detail[80];
	int rc;

	if (strncmp(entry->type, "report.", 7) == 0) {
		return juki_reports_on_ack(ctx, entry, ack);
	}
	if (strcmp(entry->type, JUKI_MSG_NINSHO_FEED) != 0) {
		return 0;
	}
	if (ack->status == JUKI_ACK_REJECTED) {
		/*
		 * Never dropped: the entry stays queued (the runtime puts it back
		 * and the link starts over) until the authority takes it, or asks
		 * for a re-send from where it stands (ninsho.resend).
		 */
		if (!al->refused) {
			tame(ack->detail, detail, sizeof(detail));
			juki_alert(juki_node_alerts(node), "authlink-refused", entry->dest, NULL,
				   "the authority refused feed message %s: %s (%s); kept queued",
				   entry->msg_id, ack->reason, detail);
			al->refused = 1;
		}
		return JUKI_EAGAIN;
	}
	rc = feed_on_ack(juki_node_store(node), entry->msg_id, ack->result, juki_node_now_ms(node),
			 why, sizeof(why));
	if (rc == JUKI_EPROTO) {
		juki_alert(juki_node_alerts(node), "authlink-digest-mismatch", entry->dest, NULL,
			   "feed message %s: %s; kept queued", entry->msg_id, why);
		return JUKI_EAGAIN;
	}
	if (rc == JUKI_ENOTFOUND) {
		/* A message of a queue rewritten by a re-send: its rows are queued again. */
		return 0;
	}
	if (rc == 0) {
		al->refused = 0;
	}
	return rc;
}

static json_t *
feed_status(struct juki_node *node)
{
	struct feed_counts c;

	if (feed_counts(juki_node_store(node), &c) != 0) {
		return NULL;
	}
	return json_pack(
	    "{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "ca", ca_of(node), "last_seq", (json_int_t)c.last_seq,
	    "acked_seq", (json_int_t)c.acked_seq, "unacked", (json_int_t)c.unacked,
	    "oldest_unacked_age_ms",
	    (json_int_t)(c.oldest_unacked_ms ? juki_node_now_ms(node) - c.oldest_unacked_ms : 0),
	    "erased_to", (json_int_t)c.erased_to, "received_twice",
	    (json_int_t)authlinkd_of(node)->twice);
}

static json_t *
authlinkd_status(struct juki_node *node)
{
	return json_pack("{s:o*}", "feed", feed_status(node));
}

/* "feed.show": the feed from a seq, without codes or items (args: from, limit). */
static int
cmd_feed_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const json_t *from = json_object_get(args, "from");
	const json_t *limit = json_object_get(args, "limit");
	json_t *rows;

	if ((from != NULL && (!json_is_integer(from) || json_integer_value(from) < 0)) ||
	    (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
			       json_integer_value(limit) > 10000))) {
		return juki_ctl_fail(err, "usage", "from: a seq; limit: 1 to 10000");
	}
	rows = feed_show(juki_node_store(node), from ? json_integer_value(from) : 0,
			 limit ? json_integer_value(limit) : 100);
	if (rows == NULL) {
		return JUKI_ESTORE;
	}
	*result = json_pack("{s:o*,s:o}", "feed", feed_status(node), "entries", rows);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

static const struct juki_handler authlinkd_handlers[] = {
    {JUKI_MSG_NINSHO_IDOU, JUKI_SVC_NINSHO, handle_idou, 0, 0, NULL},
    {JUKI_MSG_NINSHO_RESEND, JUKI_SVC_NINSHO, handle_resend, 1, 0, NULL},
    JUKI_REPORT_HANDLERS_AUTHLINK,
    {NULL, JUKI_SVC_NONE, NULL, 0, 0, NULL},
};

static const struct juki_ctl_cmd authlinkd_cmds[] = {
    {"feed.show", cmd_feed_show,
     "the feed to the authority from a seq: seq, kind, date, received, acked; no codes "
     "(args: from, limit)",
     JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, "ninsho"},
    JUKI_REPORT_CMDS_HOLDER,
    {NULL, NULL, NULL, 0, NULL},
};

static const char *const authlinkd_datasets[] = {"ninsho", NULL};

/* Entries the authority acknowledged are erased authlink.keep later (第6-8(6)イ). */
static const struct juki_purge_rule authlinkd_purge_rules[] = {
    {"feed", "feed", feed_purge_count, feed_purge_delete, JUKI_PURGE_KEEP_MS},
    {NULL, NULL, NULL, NULL, JUKI_PURGE_YEARS},
};

static void
authlinkd_purge_conf(struct juki_node *node, struct juki_purge_conf *conf)
{
	conf->keep_ms = conf_of(node)->authlink.keep;
}

static int
authlinkd_check(const void *confp, char *err, size_t errlen)
{
	const struct authlinkd_conf *conf = confp;
	struct juki_ident id;

	if (juki_ident_parse(conf->authlink.ca, &id) != 0 || id.kind != JUKI_KIND_CA) {
		snprintf(err, errlen, "authlink.ca: %s is not a certification authority (ca)",
			 conf->authlink.ca);
		return JUKI_ECONFIG;
	}
	for (size_t i = 0; i < conf->authlink.nsources; i++) {
		if (juki_ident_parse(conf->authlink.sources[i], &id) != 0 ||
		    (id.kind != JUKI_KIND_JLIS && id.kind != JUKI_KIND_PREF)) {
			snprintf(err, errlen,
				 "authlink.sources: %s is neither the national server nor a "
				 "prefecture",
				 conf->authlink.sources[i]);
			return JUKI_ECONFIG;
		}
	}
	return 0;
}

static int64_t
lag_period(const struct juki_node *node)
{
	int64_t ms = conf_of(node)->authlink.lag_alert / 4;

	return ms < 100 ? 100 : ms > 10000 ? 10000 : ms;
}

static void
lag_arm(struct juki_node *node)
{
	int64_t ms = lag_period(node);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

	evtimer_add(authlinkd_of(node)->lag_timer, &tv);
}

/* authlink-lag once per episode: raised when the oldest entry waits too long, until it clears. */
static void
lag_check(evutil_socket_t fd, short what, void *arg)
{
	struct juki_node *node = arg;
	struct authlinkd *al = authlinkd_of(node);
	int64_t limit = conf_of(node)->authlink.lag_alert;
	struct feed_counts c;

	(void)fd;
	(void)what;
	if (feed_counts(juki_node_store(node), &c) == 0) {
		int64_t age =
		    c.oldest_unacked_ms ? juki_node_now_ms(node) - c.oldest_unacked_ms : 0;

		if (age > limit && !al->lagging) {
			al->lagging = 1;
			juki_alert(juki_node_alerts(node), "authlink-lag", ca_of(node), NULL,
				   "%" PRId64 " entries not acknowledged by the authority; the "
				   "oldest (seq %" PRId64 ") waits %" PRId64 " s",
				   c.unacked, c.acked_seq + 1, age / 1000);
		} else if (age <= limit && al->lagging) {
			al->lagging = 0;
			log_notice("authlink: the authority caught up (%" PRId64 " unacknowledged)",
				   c.unacked);
		}
	}
	lag_arm(node);
}

static int
authlinkd_started(struct juki_node *node, char *err, size_t errlen)
{
	struct authlinkd *al = authlinkd_of(node);

	snprintf(al->ca, sizeof(al->ca), "%s", conf_of(node)->authlink.ca);
	al->lag_timer = evtimer_new(juki_node_base(node), lag_check, node);
	if (al->lag_timer == NULL) {
		snprintf(err, errlen, "lag timer: out of memory");
		return JUKI_ENOMEM;
	}
	lag_arm(node);
	/* Management reports held for the authority (第6-8(6)ウ・エ; node/report.h). */
	if ((al->reports = juki_reports_start(node, NULL, 0)) == NULL) {
		snprintf(err, errlen, "reports: out of memory");
		return JUKI_ENOMEM;
	}
	juki_reports_set_ninsho(al->reports, NULL, al->ca);
	return 0;
}

static void
authlinkd_reloaded(struct juki_node *node)
{
	evtimer_del(authlinkd_of(node)->lag_timer);
	lag_arm(node);
	if (strcmp(conf_of(node)->authlink.ca, authlinkd_of(node)->ca) != 0) {
		log_warnx("authlink: authlink.ca changes on restart only; feeding %s still",
			  authlinkd_of(node)->ca);
	}
}

static void
authlinkd_stopping(struct juki_node *node)
{
	struct authlinkd *al = authlinkd_of(node);

	if (al->lag_timer != NULL) {
		event_free(al->lag_timer);
		al->lag_timer = NULL;
	}
	juki_reports_stop(al->reports);
	al->reports = NULL;
}

static const struct juki_node_spec authlinkd_spec = {
    .daemon = "juki-authlinkd",
    .kind = JUKI_KIND_AUTHLINK,
    .schemas = authlinkd_schemas,
    .nschemas = 2,
    .handlers = authlinkd_handlers,
    .on_ack = authlinkd_on_ack,
    .cmds = authlinkd_cmds,
    .status = authlinkd_status,
    .datasets = authlinkd_datasets,
    .purge = authlinkd_purge_rules,
    .purge_conf = authlinkd_purge_conf,
    .check = authlinkd_check,
    .size = sizeof(struct authlinkd),
    .conf_node = offsetof(struct authlinkd_conf, node),
    .started = authlinkd_started,
    .reloaded = authlinkd_reloaded,
    .stopping = authlinkd_stopping,
};

const struct juki_daemon_ops authlinkd_ops = {
    .name = "juki-authlinkd",
    .summary = "juki link server to the certification authority (連携サーバ, 第6-8(6))",
    .default_config = "/etc/juki/authlinkd.yaml",
    .conf_table = authlinkd_conf_keys,
    .conf_size = sizeof(struct authlinkd_conf),
    JUKI_NODE_DAEMON_OPS(authlinkd_spec),
};
