#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/policy.h"

static const char *const service_names[] = {
    [JUKI_SVC_NONE] = "none",       [JUKI_SVC_MUNI] = "muni",     [JUKI_SVC_HONNIN] = "honnin",
    [JUKI_SVC_PROVIDE] = "provide", [JUKI_SVC_NINSHO] = "ninsho", [JUKI_SVC_MONITOR] = "monitor",
};

/* The ENUM index of a service in the file is its enum value minus one. */
static const char *const rule_services[] = {"muni", "honnin", "provide", "ninsho", "monitor", NULL};

#define SECTION_3_3_3                                                                              \
	"notices between municipalities never pass a prefectural or national server "              \
	"(第3-3(3))"

struct rule_conf {
	int service;
	char *from;
	char *to;
	bool same_prefecture;
};

struct policy_conf {
	int64_t version;
	struct rule_conf *rules;
	size_t nrules;
};

struct rule {
	enum juki_service service;
	enum juki_kind from;
	enum juki_kind to;
	bool same_prefecture;
};

struct juki_policy {
	struct rule *rules;
	size_t nrules;
};

static bool
node_kind(enum juki_kind k)
{
	return k != JUKI_KIND_NONE && k != JUKI_KIND_OP;
}

static bool
has_prefecture(enum juki_kind k)
{
	return k == JUKI_KIND_CS || k == JUKI_KIND_PREF || k == JUKI_KIND_AUTHLINK ||
	       k == JUKI_KIND_EXEC;
}

static void
kind_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int k = JUKI_KIND_CS; k <= JUKI_KIND_LAST && off < len; k++) {
		int w;

		if (!node_kind((enum juki_kind)k)) {
			continue;
		}
		w = snprintf(buf + off, len - off, "%s%s", off > 0 ? ", " : "",
			     juki_kind_name((enum juki_kind)k));
		off += w > 0 ? (size_t)w : 0;
	}
}

static int
check_rule(const void *section, const char **blame, char *why, size_t len)
{
	const struct rule_conf *r = section;
	enum juki_kind from = juki_kind_parse(r->from), to = juki_kind_parse(r->to);
	char kinds[128];

	kind_list(kinds, sizeof(kinds));
	if (!node_kind(from)) {
		*blame = "from";
		snprintf(why, len, "\"%s\" is not a node kind (one of: %s)", r->from, kinds);
		return -1;
	}
	if (!node_kind(to)) {
		*blame = "to";
		snprintf(why, len, "\"%s\" is not a node kind (one of: %s)", r->to, kinds);
		return -1;
	}
	if (r->service + 1 == JUKI_SVC_MUNI && (to == JUKI_KIND_PREF || to == JUKI_KIND_JLIS)) {
		*blame = "to";
		snprintf(why, len, "muni must not reach %s: " SECTION_3_3_3, r->to);
		return -1;
	}
	if (r->service + 1 == JUKI_SVC_MUNI && from != JUKI_KIND_CS) {
		*blame = "from";
		snprintf(why, len, "muni must come from cs, not %s: " SECTION_3_3_3, r->from);
		return -1;
	}
	if (r->same_prefecture && (!has_prefecture(from) || !has_prefecture(to))) {
		*blame = "same_prefecture";
		snprintf(why, len,
			 "a %s node belongs to no prefecture, so the rule could never match",
			 has_prefecture(from) ? r->to : r->from);
		return -1;
	}
	return 0;
}

static const struct juki_conf_key rule_keys[] = {
    JUKI_CONF_ENUMKEY(struct rule_conf, service, "service", rule_services, NULL, JUKI_CONF_REQUIRED,
		      "Service the rule opens."),
    JUKI_CONF_SCALAR(struct rule_conf, from, "from", JUKI_CONF_STRING, NULL, JUKI_CONF_REQUIRED, 0,
		     0, "Kind of node that opens the connection (cs, pref, jlis, authlink, ...)."),
    JUKI_CONF_SCALAR(struct rule_conf, to, "to", JUKI_CONF_STRING, NULL, JUKI_CONF_REQUIRED, 0, 0,
		     "Kind of node it reaches."),
    JUKI_CONF_SCALAR(struct rule_conf, same_prefecture, "same_prefecture", JUKI_CONF_BOOL, "false",
		     0, 0, 0, "Both ends must belong to the same prefecture."),
    JUKI_CONF_END,
};

static const struct juki_conf_key policy_keys[] = {
    JUKI_CONF_SCALAR(struct policy_conf, version, "version", JUKI_CONF_INT, NULL,
		     JUKI_CONF_REQUIRED, 1, 1, "Policy format version; 1."),
    {
	.name = "rules",
	.type = JUKI_CONF_LIST,
	.offset = offsetof(struct policy_conf, rules),
	.flags = JUKI_CONF_REQUIRED,
	.sub = rule_keys,
	.elem_size = sizeof(struct rule_conf),
	.count_offset = offsetof(struct policy_conf, nrules),
	.help = "Flows allowed; everything else is denied.",
	.check = check_rule,
    },
    JUKI_CONF_END,
};

const char *
juki_service_name(enum juki_service svc)
{
	if ((size_t)svc >= sizeof(service_names) / sizeof(service_names[0])) {
		return "none";
	}
	return service_names[svc];
}

enum juki_service
juki_service_parse(const char *name)
{
	if (name == NULL) {
		return JUKI_SVC_NONE;
	}
	for (size_t s = JUKI_SVC_MUNI; s < sizeof(service_names) / sizeof(service_names[0]); s++) {
		if (strcmp(name, service_names[s]) == 0) {
			return (enum juki_service)s;
		}
	}
	return JUKI_SVC_NONE;
}

static int
build(struct policy_conf *pc, struct juki_policy **out)
{
	struct juki_policy *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		return JUKI_ENOMEM;
	}
	if (pc->nrules > 0) {
		p->rules = calloc(pc->nrules, sizeof(*p->rules));
		if (p->rules == NULL) {
			free(p);
			return JUKI_ENOMEM;
		}
	}
	for (size_t i = 0; i < pc->nrules; i++) {
		p->rules[i].service = (enum juki_service)(pc->rules[i].service + 1);
		p->rules[i].from = juki_kind_parse(pc->rules[i].from);
		p->rules[i].to = juki_kind_parse(pc->rules[i].to);
		p->rules[i].same_prefecture = pc->rules[i].same_prefecture;
	}
	p->nrules = pc->nrules;
	*out = p;
	return 0;
}

static int
finish(int rc, struct policy_conf *pc, struct juki_policy **out, char *err, size_t errlen)
{
	if (rc == 0) {
		rc = build(pc, out);
		if (rc != 0 && err != NULL && errlen > 0) {
			snprintf(err, errlen, "policy: %s", juki_strerror(rc));
		}
	}
	juki_conf_free(policy_keys, pc);
	return rc;
}

int
juki_policy_load(const char *path, struct juki_policy **out, char *err, size_t errlen)
{
	struct policy_conf pc = {0};

	if (out == NULL) {
		return JUKI_EINVAL;
	}
	*out = NULL;
	return finish(juki_conf_load(path, policy_keys, &pc, err, errlen), &pc, out, err, errlen);
}

int
juki_policy_load_string(const char *name, const char *text, size_t len, struct juki_policy **out,
			char *err, size_t errlen)
{
	struct policy_conf pc = {0};

	if (out == NULL) {
		return JUKI_EINVAL;
	}
	*out = NULL;
	return finish(juki_conf_load_string(name, NULL, text, len, policy_keys, &pc, err, errlen),
		      &pc, out, err, errlen);
}

void
juki_policy_free(struct juki_policy *policy)
{
	if (policy == NULL) {
		return;
	}
	free(policy->rules);
	free(policy);
}

size_t
juki_policy_rule_count(const struct juki_policy *policy)
{
	return policy != NULL ? policy->nrules : 0;
}

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

int
juki_policy_check(const struct juki_policy *policy, const struct juki_ident *src,
		  const struct juki_ident *dst, enum juki_service svc, char *why, size_t len)
{
	char src_pref[3], dst_pref[3];
	bool kinds_matched = false;

	if (why != NULL && len > 0) {
		why[0] = '\0';
	}
	if (policy == NULL || src == NULL || dst == NULL) {
		say(why, len, "no policy or identity to check");
		return JUKI_EINVAL;
	}
	for (size_t i = 0; i < policy->nrules; i++) {
		const struct rule *r = &policy->rules[i];

		if (r->service != svc || r->from != src->kind || r->to != dst->kind) {
			continue;
		}
		if (!r->same_prefecture) {
			return 0;
		}
		kinds_matched = true;
		if (juki_ident_pref_of(src, src_pref) == 0 &&
		    juki_ident_pref_of(dst, dst_pref) == 0 && strcmp(src_pref, dst_pref) == 0) {
			return 0;
		}
	}
	if (kinds_matched) {
		say(why, len, "%s:%s and %s:%s are not in the same prefecture",
		    juki_kind_name(src->kind), src->id, juki_kind_name(dst->kind), dst->id);
	} else {
		say(why, len, "no rule allows %s -> %s over %s", juki_kind_name(src->kind),
		    juki_kind_name(dst->kind), juki_service_name(svc));
	}
	return JUKI_EPOLICY;
}
