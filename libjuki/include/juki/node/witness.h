/*
 * juki — the witnessed operation history (第4-4(6), 第4-9(4);
 * docs/architecture.md, witnessed history; docs/audit.md).
 *
 * A node's history (audit.h) is a hash chain with signed checkpoints, and
 * the node's own store remembers its head: a file cut, rolled back or
 * replaced is seen at the node.  A node whose store goes back with its
 * history (both restored from an old copy), or whose administrator rewrites
 * both, is not.  So each heartbeat carries the node's latest signed
 * checkpoint (member "checkpoint", juki_witness_heartbeat()), and each
 * watcher — its prefecture and the national server — keeps every one it
 * receives (juki_witness_observe()), as the witnesses of a transparency log
 * do.  At the witness:
 *
 *   - a checkpoint whose signature does not verify with the certificate it
 *     comes with, or whose certificate is not one of the network's CA naming
 *     the sender: alert "checkpoint-invalid", kept as evidence, not believed;
 *   - a seq lower than the highest one witnessed: "backwards";
 *   - another hash at a seq witnessed before, or a checkpoint whose previous
 *     checkpoint is one witnessed with another hash: "fork";
 *   - no checkpoint at all (seq 0) after some were witnessed: "restart";
 *   each raises "audit-rollback" (peer: the node) once per checkpoint seen.
 *   Of the accepted checkpoints one an hour is kept, and the newest.
 *
 * "juki-ctl witness show --node URN --json" exports what a witness holds
 * and "juki-ctl audit verify --file F --cert C --witness W.json" checks the
 * node's file against it (juki_audit_verify_witnessed(), audit.h).
 *
 * The heartbeat member:
 *   {"seq": n, "time", "hash": hex, "prev": n | null (a version 1
 *    checkpoint), "prev_hash": hex, "sig": hex (DER), "cert": PEM}
 * or {"seq": 0} when the history holds no checkpoint yet.
 *
 * Tables (component "witness"):
 *   witness_cps(node, seq, hash, time_ms, prev, prev_hash, sig, cert,
 *               received_ms, verdict; PRIMARY KEY(node, seq, hash))
 *   witness_certs(fp PRIMARY KEY, node, pem, first_ms)  -- fp: SHA-256 hex
 */
#ifndef JUKI_WITNESS_H
#define JUKI_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/records/operator.h"
#include "juki/store/audit.h"
#include "juki/store/store.h"

/*
 * Of the accepted checkpoints of a node received within one such period
 * (aligned to the clock), only the newest is kept: the highest seq for the
 * comparisons, one an hour for audit verify --witness.
 */
#define JUKI_WITNESS_KEEP_EVERY (3600 * 1000LL)

/* Bytes of a certificate's PEM in a heartbeat at most. */
#define JUKI_WITNESS_CERT_MAX 8192

#define JUKI_WITNESS_NSTEPS 1
extern const struct juki_migration juki_witness_steps[JUKI_WITNESS_NSTEPS];
#define JUKI_WITNESS_SCHEMA                                                                        \
	{                                                                                          \
		"witness", juki_witness_steps, JUKI_WITNESS_NSTEPS                                 \
	}

struct juki_node;

enum juki_witness_verdict {
	JUKI_WITNESS_OK = 0,    /* a new checkpoint, on from those witnessed */
	JUKI_WITNESS_SAME,      /* witnessed before (or nothing yet to witness) */
	JUKI_WITNESS_BACKWARDS, /* a lower seq than the highest witnessed */
	JUKI_WITNESS_FORK,      /* another hash at a witnessed seq */
	JUKI_WITNESS_RESTART,   /* no checkpoint, after some were witnessed */
	JUKI_WITNESS_INVALID,   /* malformed, a certificate not the node's, a bad signature */
};

/* juki_witness_verdict_name() - "ok", "same", "backwards", "fork", "restart", "invalid". */
const char *juki_witness_verdict_name(enum juki_witness_verdict v);

/*
 * juki_witness_member() - the heartbeat member of the history audit (its
 * last checkpoint, as the file holds it now) with the certificate file
 * cert_path.  NULL on failure.
 */
json_t *juki_witness_member(struct juki_audit *audit, const char *cert_path);

/*
 * juki_witness_parse() - the checkpoint of a member with seq >= 1: every
 * member's type and bound (hash and prev_hash 64 hex digits, prev null or
 * below seq, sig hex of at most JUKI_AUDIT_SIG_MAX bytes, cert a string of
 * at most JUKI_WITNESS_CERT_MAX bytes, into *pem, borrowed).  0, or -1 with
 * why naming the member and its rule.  Nothing is verified here.
 */
int juki_witness_parse(const json_t *value, struct juki_audit_cp *cp, const char **pem, char *why,
		       size_t whylen);

/*
 * juki_witness_record() - at a witness: judge the member value that node
 * from sent at now_ms, with ca_file the network's CA certificates, and keep
 * it (store, in the caller's transaction if one is open).  *verdict; why a
 * sentence without personal data; *fresh (may be NULL) whether the
 * checkpoint was not held before (an alert is due when it is a problem).
 * 0, or a negative code when it could not be judged (store, memory).
 */
int juki_witness_record(struct juki_store *store, const char *ca_file, const char *from,
			const json_t *value, int64_t now_ms, enum juki_witness_verdict *verdict,
			int *fresh, char *why, size_t whylen);

/*
 * juki_witness_export() - what the witness holds of node: {"node", "witness",
 * "checkpoints": [{"seq", "time", "hash", "prev", "prev_hash", "sig",
 * "cert", "received", "verdict"}], "certs": [{"fp", "pem"}]}, oldest first;
 * node NULL: {"nodes": [{"node", "checkpoints", "through", "last",
 * "problems"}]}.  NULL on failure.
 */
json_t *juki_witness_export(struct juki_store *store, const char *self, const char *node);

/*
 * juki_witness_export_cps() - the checkpoints of an export a witness
 * accepted (verdict "ok"), for juki_audit_verify_witnessed(): *cps is
 * malloc'd (free() it), *n of them.  0 or JUKI_EINVAL with err naming what
 * is malformed.
 */
int juki_witness_export_cps(const json_t *export, struct juki_audit_cp **cps, size_t *n, char *err,
			    size_t errlen);

/* The monitor's part (monitor.h): the heartbeat member, and its judge at a watcher. */
json_t *juki_witness_heartbeat(struct juki_node *node);
void juki_witness_observe(struct juki_node *node, const char *from, const json_t *value,
			  int64_t now_ms);

int juki_witness_cmd_show(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);

#define JUKI_WITNESS_CMDS                                                                          \
	{                                                                                          \
		"witness.show", juki_witness_cmd_show,                                             \
		    "the signed checkpoints of the nodes' operation histories this node "          \
		    "witnessed (args: node; without: a summary per node)",                         \
		    JUKI_ROLE_SUPERVISOR | JUKI_ROLE_AUDITOR | JUKI_ROLE_ADMIN, NULL               \
	}

#endif
