/*
 * juki — identities: urn:juki:<kind>:<id> for nodes and
 * urn:juki:op:<node-kind>:<node-id>:<operator> for operators.
 *
 * Node ids by kind:
 *   cs        6-digit local-government code with a valid check digit (cs:131016)
 *   pref      2-digit prefecture code 01..47                              (pref:13)
 *   jlis, authlink, fwgate, agency, ca
 *             1..32 of [a-z0-9-], starting with a letter or digit         (jlis:0, fwgate:east)
 *   exec      an executive body (執行機関): <lg>-<name>, lg a prefecture code
 *             (exec:13-kyoiku) or a 6-digit local-government code with a valid
 *             check digit (exec:131016-zeimu), name 1..20 of [a-z0-9-]
 *             starting with a letter or digit, the whole at most 32
 * authlink ids are a prefecture code or "0" for the national one.
 * An agency's or executive body's staff cards are operator identities of
 * the body: urn:juki:op:agency:nenkin:sato, urn:juki:op:exec:13-kyoiku:ito.
 */
#ifndef JUKI_IDENT_H
#define JUKI_IDENT_H

#include <stddef.h>

enum juki_kind {
	JUKI_KIND_NONE = 0,
	JUKI_KIND_CS,
	JUKI_KIND_PREF,
	JUKI_KIND_JLIS,
	JUKI_KIND_AUTHLINK,
	JUKI_KIND_FWGATE,
	JUKI_KIND_AGENCY,
	JUKI_KIND_CA,
	JUKI_KIND_OP,
	JUKI_KIND_EXEC, /* after OP: the kinds' numbers before it stay as they were */
};

#define JUKI_KIND_LAST JUKI_KIND_EXEC

#define JUKI_URN_MAX 128
#define JUKI_ID_MAX  33

struct juki_ident {
	enum juki_kind kind;
	char id[JUKI_ID_MAX];     /* node id; for operators, the node's id */
	enum juki_kind node_kind; /* operators only: kind of the node they work on */
	char op[JUKI_ID_MAX];     /* operators only: operator id */
	char urn[JUKI_URN_MAX];   /* the canonical text */
};

/*
 * juki_ident_parse() - parse and validate an identity URN.
 * Returns 0, or JUKI_EIDENT for anything malformed (out is then zeroed).
 */
int juki_ident_parse(const char *urn, struct juki_ident *out);

/*
 * juki_ident_node() - build a node identity of kind and id, validated as
 * juki_ident_parse() would.  Returns 0 or JUKI_EIDENT.
 */
int juki_ident_node(enum juki_kind kind, const char *id, struct juki_ident *out);

/*
 * juki_ident_token_valid() - true for 1..JUKI_ID_MAX-1 of [a-z0-9-] not
 * starting with '-': the rule of node ids like jlis:0 and of operator ids,
 * also taken by other ids that name things in URNs and files (agreements).
 */
int juki_ident_token_valid(const char *s);

/* juki_kind_name() - "cs", "pref", ...; "none" for JUKI_KIND_NONE. */
const char *juki_kind_name(enum juki_kind kind);

/* juki_kind_parse() - the kind named, or JUKI_KIND_NONE. */
enum juki_kind juki_kind_parse(const char *name);

/*
 * juki_ident_pref_of() - the prefecture code ("13") a node belongs to:
 * the first two digits of a CS's code, a pref's, authlink's or executive
 * body's own id.
 * Returns 0, or JUKI_ENOENT for national nodes.
 */
int juki_ident_pref_of(const struct juki_ident *ident, char pref[3]);

/*
 * juki_ident_filename() - a file-name-safe form: "cs-131016",
 * "op-cs-131016-tanaka".  Returns 0 or JUKI_ERANGE.
 */
int juki_ident_filename(const struct juki_ident *ident, char *buf, size_t len);

#endif
