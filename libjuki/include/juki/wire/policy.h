/*
 * juki — the flow policy (docs/architecture.md §3): which kind of node may open which
 * service toward which kind of node.  Default deny.  The gateway checks it
 * on every CONNECT; the receiving node checks it again.
 *
 * File format (YAML):
 *
 *   version: 1
 *   rules:
 *     - service: muni        # muni | honnin | provide | ninsho | monitor
 *       from: cs             # a node kind (juki_kind_name())
 *       to: cs
 *     - service: honnin
 *       from: cs
 *       to: pref
 *       same_prefecture: true   # optional: both ends in one prefecture
 *
 * A policy that would let `muni` reach a pref or jlis node is refused at
 * load time: the network structure rule of 第3-3(3) holds by construction.
 */
#ifndef JUKI_POLICY_H
#define JUKI_POLICY_H

#include <stddef.h>

#include "juki/base/ident.h"

enum juki_service {
	JUKI_SVC_NONE = 0,
	JUKI_SVC_MUNI,
	JUKI_SVC_HONNIN,
	JUKI_SVC_PROVIDE,
	JUKI_SVC_NINSHO,
	JUKI_SVC_MONITOR,
};

struct juki_policy;

/* juki_service_name() / juki_service_parse(): "muni" <-> JUKI_SVC_MUNI. */
const char *juki_service_name(enum juki_service svc);
enum juki_service juki_service_parse(const char *name);

/*
 * juki_policy_load() - read a policy file.  Returns 0, or JUKI_ECONFIG with
 * "file:line:col: what" in err, or -errno.
 */
int juki_policy_load(const char *path, struct juki_policy **out, char *err, size_t errlen);
int juki_policy_load_string(const char *name, const char *text, size_t len,
			    struct juki_policy **out, char *err, size_t errlen);
void juki_policy_free(struct juki_policy *policy);

/*
 * juki_policy_check() - may src open svc toward dst?  Returns 0 when a rule
 * allows it, JUKI_EPOLICY otherwise, with a one-line reason in why
 * ("no rule allows cs -> pref over muni").
 */
int juki_policy_check(const struct juki_policy *policy, const struct juki_ident *src,
		      const struct juki_ident *dst, enum juki_service svc, char *why, size_t len);

/* juki_policy_rule_count() - number of rules loaded. */
size_t juki_policy_rule_count(const struct juki_policy *policy);

#endif
