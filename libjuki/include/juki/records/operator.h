/*
 * juki — operators of a server node and the approvals of their supervisors
 * (第4-4(5),(7),(8), 第4-8(2), 第2-3(1); docs/architecture.md §13).
 *
 * Operators live in the node's store (component "operator"): an id (the
 * last part of the card certificate's urn:juki:op:<kind>:<node>:<id>),
 * roles, the data sets they may touch, an Argon2id verifier of their PIN,
 * a count of consecutive wrong PINs and whether they are locked.  The PIN
 * is checked here, by the daemon, whatever the card did: the card proves
 * the certificate, the PIN proves the person (第4-4(8)).
 *
 * Approvals are decisions of a supervisor (責任者) about one operation:
 * issued beforehand for one operator, one kind and one target and used
 * once; or, for online important input recorded without one, pending
 * until a supervisor approves it, and overdue — alerted — when the
 * deadline passes first.
 */
#ifndef JUKI_OPERATOR_H
#define JUKI_OPERATOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/ident.h"
#include "juki/store/store.h"

/*
 * Roles (第4-3(1), 第4-4(5)).  The local socket speaks for the host's
 * administrator; operators log in on the operator port (opport.h) with the
 * roles the operators table gives them.  Administration and clerical work
 * are kept apart (第2-3(1)): no command is open to both JUKI_ROLE_ADMIN
 * and JUKI_ROLE_CLERK only because one person holds both.
 */
#define JUKI_ROLE_CLERK      0x1u /* 事務担当者: records, lookups, input */
#define JUKI_ROLE_SUPERVISOR 0x2u /* 責任者: approvals, unlocking operators */
#define JUKI_ROLE_AUDITOR    0x4u /* 監査: reads the operation history */
#define JUKI_ROLE_ADMIN      0x8u /* システム管理者: operators, backups, purge */
#define JUKI_ROLE_ALL        0xfu

/* The data sets an operator may hold at most. */
#define JUKI_CALLER_DATASETS 8

#define JUKI_PIN_MIN 4
#define JUKI_PIN_MAX 64

/* The tables, for the daemons' schema lists. */
extern const struct juki_schema juki_operator_schema;

/* Argon2id cost of new verifiers (existing ones keep theirs). */
struct juki_pin_cost {
	uint32_t memory_kib;
	uint32_t passes;
};

/* juki_role_parse() - "clerk" ... "administrator" to its bit; 0 if unknown. */
unsigned juki_role_parse(const char *name);

/* juki_roles_json() - the role names of bits, as an array. */
json_t *juki_roles_json(unsigned roles);

/*
 * juki_roles_from_json() - an array of role names to bits.  Refuses an
 * unknown role, an empty list, and administrator together with clerk
 * (第2-3(1)), with the reason in why.
 */
int juki_roles_from_json(const json_t *list, unsigned *roles, char *why, size_t whylen);

struct juki_operator {
	char id[JUKI_ID_MAX];
	unsigned roles;
	char datasets[JUKI_CALLER_DATASETS][JUKI_ID_MAX];
	size_t ndatasets;
	int failures; /* consecutive wrong PINs */
	int locked;
};

/*
 * juki_operator_add() - a new operator with roles, data sets (array of
 * names, each one of known, a NULL-terminated list) and PIN.  Returns 0,
 * JUKI_EDUP, JUKI_EFORMAT (why says which field) or JUKI_ESTORE.
 */
int juki_operator_add(struct juki_store *store, int64_t now_ms, const char *id, unsigned roles,
		      const json_t *datasets, const char *const *known, const char *pin,
		      const struct juki_pin_cost *cost, char *why, size_t whylen);

/* juki_operator_get() - the operator id.  Returns 0, JUKI_ENOTFOUND, JUKI_ESTORE. */
int juki_operator_get(struct juki_store *store, const char *id, struct juki_operator *out);

/*
 * juki_operator_login() - check pin for id.  On a wrong PIN the failure
 * count goes up and, when it reaches max_failures, the operator is locked.
 * Returns 0 (count reset, *out filled), JUKI_EAUTH (*remaining attempts
 * left, > 0), JUKI_ELOCKED (*remaining 0: this attempt locked it; -1: it
 * was locked before, and a right PIN does not unlock it), JUKI_ENOTFOUND,
 * JUKI_ESTORE.
 */
int juki_operator_login(struct juki_store *store, int64_t now_ms, const char *id, const char *pin,
			int max_failures, struct juki_operator *out, int *remaining);

/* juki_operator_set_roles() - new roles and data sets (as for add). */
int juki_operator_set_roles(struct juki_store *store, int64_t now_ms, const char *id,
			    unsigned roles, const json_t *datasets, const char *const *known,
			    char *why, size_t whylen);

/*
 * juki_operator_set_lock() - lock (1) or unlock (0) id; unlocking also
 * clears the failure count.  by names who did it (kept with the row).
 * Returns 0, JUKI_ENOTFOUND, JUKI_ESTORE.
 */
int juki_operator_set_lock(struct juki_store *store, int64_t now_ms, const char *id, int locked,
			   const char *by);

/* juki_operator_set_pin() - a new PIN (and failure count 0). */
int juki_operator_set_pin(struct juki_store *store, int64_t now_ms, const char *id, const char *pin,
			  const struct juki_pin_cost *cost, char *why, size_t whylen);

/* juki_operator_list() - {"operators": [{id, roles, datasets, locked, failures, ...}]}. */
json_t *juki_operator_list(struct juki_store *store);

/* juki_pin_valid() - JUKI_PIN_MIN..JUKI_PIN_MAX bytes, printable ASCII. */
int juki_pin_valid(const char *pin, char *why, size_t whylen);

/* Approvals. */

enum juki_approval_state {
	JUKI_APPROVAL_ISSUED,   /* beforehand, not used yet */
	JUKI_APPROVAL_USED,     /* beforehand, used once */
	JUKI_APPROVAL_PENDING,  /* input recorded, waiting for approval */
	JUKI_APPROVAL_APPROVED, /* input approved afterwards */
	JUKI_APPROVAL_REFUSED,  /* input refused afterwards: a correction must follow */
};

/*
 * juki_approval_issue() - a supervisor (by) approves kind ("export",
 * "correct") on target for operator, valid until expires_ms.  *id is the
 * approval's number.  Returns 0 or JUKI_ESTORE.
 */
int juki_approval_issue(struct juki_store *store, int64_t now_ms, const char *kind, const char *op,
			const char *target, const char *by, int64_t expires_ms, int64_t *id);

/*
 * juki_approval_use() - use approval id for kind on target by operator,
 * once.  Returns 0; JUKI_ENOTFOUND (no such approval), JUKI_EPERM (for
 * another operator, kind or target), JUKI_EEXIST (already used),
 * JUKI_ETIMEDOUT (expired); why says which.
 */
int juki_approval_use(struct juki_store *store, int64_t now_ms, int64_t id, const char *kind,
		      const char *op, const char *target, char *why, size_t whylen);

/*
 * juki_approval_pend() - input of kind on target by op was recorded
 * without approval: it must be approved by deadline_ms.  *id its number.
 */
int juki_approval_pend(struct juki_store *store, int64_t now_ms, const char *kind, const char *op,
		       const char *target, int64_t deadline_ms, int64_t *id);

/*
 * juki_approval_confirm() - a supervisor (by; their operator id by_op, or
 * NULL) approves pending input id afterwards.  Returns 0, JUKI_ENOTFOUND,
 * JUKI_EEXIST (not pending), JUKI_EPERM (by_op made the input: nobody
 * decides on their own), and *late = 1 when the deadline had passed.
 */
int juki_approval_confirm(struct juki_store *store, int64_t now_ms, int64_t id, const char *by,
			  const char *by_op, int *late);

/*
 * juki_approval_refuse() - a supervisor refuses pending input id: it is no
 * longer waited for (no overdue alert), and the record it made must be put
 * right by another input.  Returns as juki_approval_confirm().
 */
int juki_approval_refuse(struct juki_store *store, int64_t now_ms, int64_t id, const char *by,
			 const char *by_op, int *late);

/*
 * juki_approval_overdue() - pending input past its deadline not reported
 * yet: calls cb for each and marks it reported.  Returns how many, or a
 * negative code.
 */
int juki_approval_overdue(struct juki_store *store, int64_t now_ms,
			  void (*cb)(void *arg, int64_t id, const char *kind, const char *op,
				     const char *target, int64_t deadline_ms),
			  void *arg);

/* juki_approval_list() - {"approvals": [...]}, newest first, at most limit; state filter or NULL.
 */
json_t *juki_approval_list(struct juki_store *store, const char *state, size_t limit);

#endif
