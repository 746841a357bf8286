/*
 * Fuzz target: identities (juki_ident_parse).  The input is a URN as it
 * comes from a certificate, a message header or a config file.  Identities
 * are compared as text everywhere (sender checks, policy, file names), so
 * an accepted URN must already be the canonical spelling, re-parse to the
 * same struct, and agree with the other ways of building one.
 */
#include "fuzz.h"
#include "juki/base/codes.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"

static int
is_zero(const struct juki_ident *id)
{
	struct juki_ident zero;

	memset(&zero, 0, sizeof(zero));
	return memcmp(id, &zero, sizeof(zero)) == 0;
}

static void
check_accepted(const char *urn, const struct juki_ident *id)
{
	struct juki_ident again, built;
	char name[JUKI_URN_MAX], pref[3];
	int rc;

	FUZZ_ASSERT(strcmp(id->urn, urn) == 0);
	FUZZ_ASSERT(juki_ident_parse(id->urn, &again) == 0);
	FUZZ_ASSERT(memcmp(&again, id, sizeof(again)) == 0);
	FUZZ_ASSERT(id->kind != JUKI_KIND_NONE && id->id[0] != '\0');
	FUZZ_ASSERT(juki_kind_parse(juki_kind_name(id->kind)) == id->kind);
	FUZZ_ASSERT(juki_ident_filename(id, name, sizeof(name)) == 0 && strchr(name, '/') == NULL &&
		    strchr(name, ':') == NULL);
	if (id->kind == JUKI_KIND_OP) {
		FUZZ_ASSERT(id->node_kind != JUKI_KIND_NONE && id->node_kind != JUKI_KIND_OP);
		FUZZ_ASSERT(id->op[0] != '\0');
		/* The node an operator works on is itself a valid identity. */
		FUZZ_ASSERT(juki_ident_node(id->node_kind, id->id, &built) == 0);
		FUZZ_ASSERT(juki_ident_pref_of(id, pref) == JUKI_ENOENT);
		return;
	}
	FUZZ_ASSERT(id->node_kind == JUKI_KIND_NONE && id->op[0] == '\0');
	FUZZ_ASSERT(juki_ident_node(id->kind, id->id, &built) == 0);
	FUZZ_ASSERT(memcmp(&built, id, sizeof(built)) == 0);
	rc = juki_ident_pref_of(id, pref);
	if (id->kind == JUKI_KIND_CS || id->kind == JUKI_KIND_PREF || id->kind == JUKI_KIND_EXEC ||
	    (id->kind == JUKI_KIND_AUTHLINK && strcmp(id->id, "0") != 0)) {
		FUZZ_ASSERT(rc == 0 && juki_pref_code_check(pref) == 0);
		FUZZ_ASSERT(strncmp(pref, id->id, 2) == 0);
	} else {
		FUZZ_ASSERT(rc == JUKI_ENOENT);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct juki_ident id;
	char *urn = fuzz_cstr(data, size);
	int rc;

	/* Dirty the struct first: a refusal must leave it zeroed whatever it held. */
	memset(&id, 0xa5, sizeof(id));
	rc = juki_ident_parse(urn, &id);
	if (rc != 0) {
		FUZZ_ASSERT(rc == JUKI_EIDENT && is_zero(&id));
	} else {
		check_accepted(urn, &id);
	}
	free(urn);
	return 0;
}
