/*
 * juki — the integrity of a node's programs (第4-7(4)) and its part of the
 * inventory (第4-7(1)イ): at start, at every tick of the node and at every
 * heartbeat, the daemon digests the binary it runs (/proc/self/exe), every
 * shared library it has loaded (dl_iterate_phdr) and its configuration
 * files, and compares them with its signed manifest (wire/manifest.h,
 * config integrity.manifest).  A missing, unsigned or badly signed manifest,
 * a file whose digest differs and a loaded file the manifest does not list
 * each raise the alert "integrity-mismatch" once (naming the path, never
 * contents); with integrity.enforce the daemon refuses to start so.
 *
 * The node runs it for every server node (node.c); its state is in the
 * node's slot JUKI_MODULE_INTEGRITY.
 */
#ifndef JUKI_NODE_INTEGRITY_H
#define JUKI_NODE_INTEGRITY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "juki/base/config.h"
#include "juki/node/control.h"

struct juki_node;

/* The integrity: section of a node's configuration. */
struct juki_integrity_conf {
	char *manifest; /* the signed manifest; NULL: nothing is compared */
	bool enforce;   /* refuse to start unless everything matches it */
};

extern const struct juki_conf_key juki_integrity_keys[];

/* juki_integrity_conf_check() - the section's rule: enforce needs a manifest. */
int juki_integrity_conf_check(const void *section, const char **blame, char *why, size_t whylen);

/* The key-table entry of the section, at field f of st. */
#define JUKI_INTEGRITY_CONF_KEY(st, f)                                                             \
	{                                                                                          \
		.name = "integrity", .type = JUKI_CONF_SECTION, .offset = offsetof(st, f),         \
		.sub = juki_integrity_keys, .check = juki_integrity_conf_check,                    \
		.help = "The signed manifest of the programs and configuration this node "         \
			"runs, checked at start and every heartbeat (第4-7(4))."                  \
	}

/*
 * juki_integrity_start() - take the node's slot and check once.  With
 * integrity.enforce and anything that does not match: fails with
 * JUKI_EAUTH and the first problem in err (the daemon does not start).
 * Returns 0, JUKI_ENOMEM, JUKI_EEXIST or JUKI_EAUTH.
 */
int juki_integrity_start(struct juki_node *node, char *err, size_t errlen);
void juki_integrity_stop(struct juki_node *node);

/*
 * juki_integrity_check() - digest everything again and compare (a file whose
 * status - inode, size, mtime, ctime - is unchanged since it was last read keeps
 * that digest, but every file is read whole again at least once a minute, and
 * by the control command "integrity"); a problem
 * not seen at the last check raises "integrity-mismatch".  Returns whether
 * nothing was found wrong: 1 also when no manifest is configured (nothing
 * is compared then; the heartbeat's "manifest" is null).
 */
int juki_integrity_check(struct juki_node *node);

/*
 * juki_integrity_heartbeat() - check, then the heartbeat's member
 * "integrity": {"version", "binary": sha256, "config": sha256, "manifest":
 * sha256 of the manifest file or null, "ok": bool, "mismatches": [paths]}.
 * ok is false when something was found wrong; with "manifest": null nothing
 * was compared (none is configured).  NULL when the node runs no integrity
 * state.
 */
json_t *juki_integrity_heartbeat(struct juki_node *node);

/*
 * juki_integrity_member_check() - a heartbeat's "integrity" member as a
 * watcher receives it: the members above of their types (digests 64 hex
 * digits, at most 1024 mismatches of at most 4096 bytes each); unknown
 * members allowed.  Returns 0 or JUKI_EINVAL with the member at fault in
 * why.  (The heartbeat's validator and juki-ctl inventory use it.)
 */
int juki_integrity_member_check(const json_t *v, char *why, size_t whylen);

/*
 * juki_integrity_status() - the status part "integrity" (as of the last
 * check): {"state": "ok"|"mismatch"|"unchecked", "manifest": path or null,
 * "enforce", "ok", "checked": time, "binary", "config", "manifest_sha256",
 * "mismatches": [paths], "problems": ["<path>: <what>"]}.
 */
json_t *juki_integrity_status(struct juki_node *node);

/*
 * juki_integrity_cmd() - the control command "integrity": check now, and
 * answer the status part with "node", "daemon", "version", "files":
 * [{"path", "kind", "sha256", "state": "ok"|"differs"|"unlisted"|
 * "unreadable"|"unchecked"}] and "tls": the certificate, key, PIN file, CA
 * and CRL the node is configured with (paths), for juki-ctl manifest sign.
 */
int juki_integrity_cmd(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);

#endif
