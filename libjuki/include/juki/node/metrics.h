/*
 * Metrics: a daemon's counters and gauges in the Prometheus text exposition
 * format (version 0.0.4), served over plain HTTP by libevent's evhttp on
 * metrics.listen — GET /metrics only, loopback only unless the configuration
 * says metrics.allow_remote (docs/operations.md, docs/architecture.md).
 *
 * Every metric's name, type and help is a row of ONE table (enum
 * juki_metric, metrics.c); a collector puts samples of those rows, and the
 * writer emits HELP and TYPE once per metric that has samples.  A request
 * costs counters kept in memory and a few cheap queries (the outbox's
 * GROUP BY over its index, the store's page count), never a scan of the
 * register.
 */
#ifndef JUKI_NODE_METRICS_H
#define JUKI_NODE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "juki/base/config.h"

struct juki_alerts;
struct juki_node;

/* The metrics: section of a daemon's configuration. */
struct juki_metrics_conf {
	char *listen;      /* host:port; NULL: no metrics */
	bool allow_remote; /* listen may be a non-loopback address */
	int64_t timeout;   /* ms a request may take, from accept to the last byte */
};

extern const struct juki_conf_key juki_metrics_keys[];

/* juki_metrics_conf_check() - the section's rule: listen on loopback unless allow_remote. */
int juki_metrics_conf_check(const void *section, const char **blame, char *why, size_t whylen);

/* The key-table entry of the metrics: section, at field f of st. */
#define JUKI_METRICS_CONF_KEY(st, f)                                                               \
	{                                                                                          \
		.name = "metrics", .type = JUKI_CONF_SECTION, .offset = offsetof(st, f),           \
		.sub = juki_metrics_keys, .check = juki_metrics_conf_check,                        \
		.help = "Prometheus metrics over plain HTTP, GET /metrics (第4-9(1))."            \
	}

/* Every metric, in the order they are written (the table in metrics.c). */
enum juki_metric {
	JUKI_M_BUILD_INFO,
	JUKI_M_START_TIME,
	JUKI_M_RSS,
	JUKI_M_PEAK_RSS,
	JUKI_M_ALERTS,
	JUKI_M_HANDSHAKE_FAILURES,
	JUKI_M_RECEIVED,
	JUKI_M_ACCEPTED,
	JUKI_M_DUPLICATE,
	JUKI_M_REJECTED,
	JUKI_M_REJECTED_BY_REASON,
	JUKI_M_COMMITS,
	JUKI_M_CHANNELS,
	JUKI_M_OUTBOX_DEPTH,
	JUKI_M_OUTBOX_OLDEST,
	JUKI_M_OUTBOX_REJECTED,
	JUKI_M_SENT,
	JUKI_M_ACKED,
	JUKI_M_RECONCILE_DAYS,
	JUKI_M_PURGE_RUNS,
	JUKI_M_PURGE_REMOVED,
	JUKI_M_PURGE_FILES,
	JUKI_M_STORE_BYTES,
	JUKI_M_STORE_FREE,
	JUKI_M_CERT_NOT_AFTER,
	JUKI_M_GW_CONNECTIONS,
	JUKI_M_GW_TUNNELS_OPEN,
	JUKI_M_GW_CONNECTS_ALLOWED,
	JUKI_M_GW_CONNECTS_DENIED,
	JUKI_M_GW_BYTES,
	JUKI_M_SCRAPE_SECONDS,
	JUKI_METRICS_N
};

/* juki_metric_name() - the name of m ("juki_..."), NULL if out of range. */
const char *juki_metric_name(enum juki_metric m);

/* A response being written; opaque. */
struct juki_metrics_out;

/*
 * juki_metrics_put() - one sample of m: value, then label pairs (name,
 * value) ended by NULL.  Label values are escaped; at most 4 pairs.
 */
void juki_metrics_put(struct juki_metrics_out *o, enum juki_metric m, double value, ...);

/* juki_metrics_text() - the exposition text of o so far (for tests); malloc'd. */
char *juki_metrics_text(struct juki_metrics_out *o);

struct juki_metrics_out *juki_metrics_out_new(void);
void juki_metrics_out_free(struct juki_metrics_out *o);

/* The samples every daemon has: build info, start time, memory, alerts by code. */
void juki_metrics_put_process(struct juki_metrics_out *o, const char *daemon,
			      const struct juki_alerts *alerts, int64_t started_ms);

/* juki_metrics_put_cert() - the not-after of the certificate file path (PEM), as a gauge. */
void juki_metrics_put_cert(struct juki_metrics_out *o, const char *which, const char *path);

/* A collector: puts its samples into o for one request. */
typedef void (*juki_metrics_collect_cb)(void *ctx, struct juki_metrics_out *o);

struct juki_metrics;

/*
 * juki_metrics_new() - serve conf on base (conf->listen NULL: nothing is
 * served, *out is NULL and 0 is returned).  collect is called per request.
 * Returns 0, or a failure with err filled (cannot bind).
 */
int juki_metrics_new(struct event_base *base, const struct juki_metrics_conf *conf,
		     juki_metrics_collect_cb collect, void *ctx, struct juki_metrics **out,
		     char *err, size_t errlen);

/* juki_metrics_addr() - the address bound ("127.0.0.1:9100"), NULL when m is NULL. */
const char *juki_metrics_addr(const struct juki_metrics *m);

/*
 * juki_metrics_reconfigure() - after a reload: a new listen address or
 * timeout binds anew (the old server stays if the new one cannot bind).
 */
int juki_metrics_reconfigure(struct juki_metrics **m, struct event_base *base,
			     const struct juki_metrics_conf *conf, juki_metrics_collect_cb collect,
			     void *ctx, char *err, size_t errlen);

void juki_metrics_free(struct juki_metrics *m);

/*
 * The server node's metrics (node.c calls these): juki_node_metrics_start()
 * at start, _reload() when the configuration was reloaded, _stop() at stop;
 * juki_node_metrics_purged() counts a purge run for the purge metrics.
 */
int juki_node_metrics_start(struct juki_node *node, char *err, size_t errlen);
int juki_node_metrics_reload(struct juki_node *node, const struct juki_metrics_conf *conf,
			     char *err, size_t errlen);
void juki_node_metrics_stop(struct juki_node *node);
void juki_node_metrics_purged(struct juki_node *node, const json_t *report);

#endif
