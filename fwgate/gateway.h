/*
 * juki-fwgated — the gateway (ファイアウォール; docs/architecture.md §2, §3).
 *
 * Nodes connect to it with outer TLS 1.3 and ask for one tunnel each:
 *
 *   CONNECT <destination-urn> <service>\n
 *
 * It checks the flow policy for (the caller's certificate identity,
 * destination, service), looks the destination up in its directory,
 * connects to that node's port with its own certificate (verifying the
 * destination's), names the caller there ("FROM <urn> <service>\n"), and
 * when the destination answers OK, answers OK and relays bytes both ways
 * without reading them.  Every refusal is answered "DENY <code> <text>\n",
 * logged, counted and raised as an alert.
 */
#ifndef JUKI_FWGATE_GATEWAY_H
#define JUKI_FWGATE_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "juki/base/config.h"
#include "juki/node/daemon.h"
#include "juki/node/log.h"
#include "juki/node/metrics.h"
#include "juki/wire/tls.h"

struct fwgate_route {
	char *node;    /* urn:juki:... */
	char *address; /* its node port, host:port */
};

struct fwgate_limits {
	int64_t per_address;       /* concurrent connections from one address */
	int64_t per_node;          /* concurrent tunnels from one identity */
	int64_t handshake_timeout; /* ms */
	int64_t line_timeout;      /* ms */
	int64_t connect_timeout;   /* ms, to the destination including its answer */
	int64_t idle_timeout;      /* ms, a tunnel with no traffic */
	int64_t buffer;            /* bytes buffered per direction before reading pauses */
};

struct fwgate_conf {
	char *node;
	struct juki_tls_files tls;
	char **listen;
	size_t nlisten;
	char *policy;
	char *control;
	int log_level;
	struct fwgate_route *directory;
	size_t ndirectory;
	struct fwgate_limits limits;
	struct juki_metrics_conf metrics;
};

extern const struct juki_conf_key fwgate_conf_keys[];
extern const struct juki_daemon_ops fwgate_ops;

#endif
