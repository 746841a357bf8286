#include <stdio.h>
#include <string.h>

#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"

static const char *const kind_names[] = {
    [JUKI_KIND_NONE] = "none",
    [JUKI_KIND_CS] = "cs",
    [JUKI_KIND_PREF] = "pref",
    [JUKI_KIND_JLIS] = "jlis",
    [JUKI_KIND_AUTHLINK] = "authlink",
    [JUKI_KIND_FWGATE] = "fwgate",
    [JUKI_KIND_AGENCY] = "agency",
    [JUKI_KIND_CA] = "ca",
    [JUKI_KIND_OP] = "op",
    [JUKI_KIND_EXEC] = "exec",
};

#define URN_PREFIX "urn:juki:"

const char *
juki_kind_name(enum juki_kind kind)
{
	if ((size_t)kind >= sizeof(kind_names) / sizeof(kind_names[0])) {
		return "none";
	}
	return kind_names[kind];
}

enum juki_kind
juki_kind_parse(const char *name)
{
	for (size_t k = JUKI_KIND_CS; k < sizeof(kind_names) / sizeof(kind_names[0]); k++) {
		if (strcmp(name, kind_names[k]) == 0) {
			return (enum juki_kind)k;
		}
	}
	return JUKI_KIND_NONE;
}

int
juki_ident_token_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= JUKI_ID_MAX || s[0] == '-') {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			return 0;
		}
	}
	return 1;
}

/*
 * An executive body (執行機関): "<lg>-<name>", lg a prefecture code or a
 * local-government code with its check digit, name 1..20 of [a-z0-9-]
 * starting with a letter or digit; the whole at most 32 bytes.
 */
static int
exec_id_valid(const char *id)
{
	char lg[7];
	size_t n = strlen(id), lglen;
	const char *name;

	if (n >= JUKI_ID_MAX || !juki_ident_token_valid(id)) {
		return 0;
	}
	if (n > 2 && id[2] == '-') {
		lglen = 2;
	} else if (n > 6 && id[6] == '-') {
		lglen = 6;
	} else {
		return 0;
	}
	memcpy(lg, id, lglen);
	lg[lglen] = '\0';
	if ((lglen == 2 ? juki_pref_code_check(lg) : juki_lgcode_check(lg)) != 0) {
		return 0;
	}
	name = id + lglen + 1;
	n = strlen(name);
	return n >= 1 && n <= 20 && name[0] != '-';
}

static int
node_id_valid(enum juki_kind kind, const char *id)
{
	switch (kind) {
	case JUKI_KIND_CS:
		return juki_lgcode_check(id) == 0;
	case JUKI_KIND_PREF:
		return juki_pref_code_check(id) == 0;
	case JUKI_KIND_AUTHLINK:
		return strcmp(id, "0") == 0 || juki_pref_code_check(id) == 0;
	case JUKI_KIND_JLIS:
	case JUKI_KIND_FWGATE:
	case JUKI_KIND_AGENCY:
	case JUKI_KIND_CA:
		return juki_ident_token_valid(id);
	case JUKI_KIND_EXEC:
		return exec_id_valid(id);
	default:
		return 0;
	}
}

int
juki_ident_node(enum juki_kind kind, const char *id, struct juki_ident *out)
{
	memset(out, 0, sizeof(*out));
	if (kind == JUKI_KIND_OP || !node_id_valid(kind, id)) {
		return JUKI_EIDENT;
	}
	out->kind = kind;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->urn, sizeof(out->urn), URN_PREFIX "%s:%s", juki_kind_name(kind), id);
	return 0;
}

int
juki_ident_parse(const char *urn, struct juki_ident *out)
{
	char buf[JUKI_URN_MAX];
	char *parts[5];
	size_t nparts = 0;
	char *p;
	enum juki_kind kind;

	memset(out, 0, sizeof(*out));
	if (urn == NULL || strncmp(urn, URN_PREFIX, strlen(URN_PREFIX)) != 0 ||
	    strlen(urn) >= sizeof(buf)) {
		return JUKI_EIDENT;
	}
	snprintf(buf, sizeof(buf), "%s", urn + strlen(URN_PREFIX));
	p = buf;
	parts[nparts++] = p;
	while ((p = strchr(p, ':')) != NULL) {
		if (nparts == 5) {
			return JUKI_EIDENT;
		}
		*p++ = '\0';
		parts[nparts++] = p;
	}
	kind = juki_kind_parse(parts[0]);
	if (kind == JUKI_KIND_NONE) {
		return JUKI_EIDENT;
	}
	if (kind != JUKI_KIND_OP) {
		if (nparts != 2) {
			return JUKI_EIDENT;
		}
		return juki_ident_node(kind, parts[1], out);
	}
	if (nparts != 4) {
		return JUKI_EIDENT;
	}
	out->node_kind = juki_kind_parse(parts[1]);
	if (out->node_kind == JUKI_KIND_NONE || out->node_kind == JUKI_KIND_OP ||
	    !node_id_valid(out->node_kind, parts[2]) || !juki_ident_token_valid(parts[3])) {
		memset(out, 0, sizeof(*out));
		return JUKI_EIDENT;
	}
	out->kind = JUKI_KIND_OP;
	snprintf(out->id, sizeof(out->id), "%s", parts[2]);
	snprintf(out->op, sizeof(out->op), "%s", parts[3]);
	snprintf(out->urn, sizeof(out->urn), URN_PREFIX "op:%s:%s:%s",
		 juki_kind_name(out->node_kind), out->id, out->op);
	return 0;
}

int
juki_ident_pref_of(const struct juki_ident *ident, char pref[3])
{
	switch (ident->kind) {
	case JUKI_KIND_CS:
	case JUKI_KIND_PREF:
	case JUKI_KIND_EXEC:
		memcpy(pref, ident->id, 2);
		pref[2] = '\0';
		return 0;
	case JUKI_KIND_AUTHLINK:
		if (strcmp(ident->id, "0") == 0) {
			return JUKI_ENOENT;
		}
		memcpy(pref, ident->id, 2);
		pref[2] = '\0';
		return 0;
	default:
		return JUKI_ENOENT;
	}
}

int
juki_ident_filename(const struct juki_ident *ident, char *buf, size_t len)
{
	int n;

	if (ident->kind == JUKI_KIND_OP) {
		n = snprintf(buf, len, "op-%s-%s-%s", juki_kind_name(ident->node_kind), ident->id,
			     ident->op);
	} else {
		n = snprintf(buf, len, "%s-%s", juki_kind_name(ident->kind), ident->id);
	}
	return (n < 0 || (size_t)n >= len) ? JUKI_ERANGE : 0;
}
