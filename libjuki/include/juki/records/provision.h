/*
 * juki — provision records (提供状況, 第6-8(5)): one row for each person whose
 * identity information a prefectural or the national server provided to a
 * body (kind "provide") or that the prefecture used itself (kind "use"),
 * kept so that the person's request for disclosure of them (開示請求) can be
 * answered, and erased securely after provision.keep (第6-8(5)ウ).
 *
 * A row holds the person's 住民票コード and who received what, never the
 * information provided itself:
 *
 *   id        UUIDv7 of the record
 *   kind      "provide" | "use"
 *   code      the person's 住民票コード
 *   body      urn of the receiving body (or of the operator who used it)
 *   staff     urn of the body's staff card that asked ("" when none)
 *   agreement id of the agreement (協議) it was provided under ("" for use)
 *   jimu      the 事務 ("<table>-<row>" of 住民基本台帳法 別表)
 *   items     the items provided, a comma list in the order of
 *             juki_provide_items (code,name,birth,sex,address,change)
 *   purpose   the purpose the body gave
 *   time_ms   when it was provided
 *   request   id of the message that asked
 *   origin    urn of the server that provided it: this server, or the
 *             national server for records it notified (provide.notice)
 *   notified  at the national server: 0 until sent to the prefecture
 *
 * The table is the schema component "provision" (JUKI_PROVISION_SCHEMA).
 *
 * The index by code serves juki_provision_for_code(), the disclosure to the
 * person (第6-8(5)), which only the prefectural server answers.  The
 * national server adds the component "provision_national"
 * (JUKI_PROVISION_NATIONAL_SCHEMA), which drops it: the codes of a batch
 * are random, so that index cost a page written at random per provision
 * record (measured: two thirds of the national server's time in a batch).
 */
#ifndef JUKI_PROVISION_H
#define JUKI_PROVISION_H

#include <stdint.h>

#include <jansson.h>

#include "juki/store/purge.h"
#include "juki/store/store.h"

#define JUKI_PROVISION_NSTEPS 1
extern const struct juki_migration juki_provision_steps[JUKI_PROVISION_NSTEPS];
#define JUKI_PROVISION_SCHEMA                                                                      \
	{                                                                                          \
		"provision", juki_provision_steps, JUKI_PROVISION_NSTEPS                           \
	}

#define JUKI_PROVISION_NATIONAL_NSTEPS 1
extern const struct juki_migration juki_provision_national_steps[JUKI_PROVISION_NATIONAL_NSTEPS];
#define JUKI_PROVISION_NATIONAL_SCHEMA                                                             \
	{                                                                                          \
		"provision_national", juki_provision_national_steps,                               \
		    JUKI_PROVISION_NATIONAL_NSTEPS                                                 \
	}

#define JUKI_PROVISION_PURPOSE_MAX 200 /* characters */

struct juki_provision {
	const char *id; /* NULL or "": a new UUIDv7 for time_ms */
	const char *kind;
	const char *code;
	const char *body;
	const char *staff;     /* NULL: "" */
	const char *agreement; /* NULL: "" */
	const char *jimu;      /* NULL: "" */
	const char *items;
	const char *purpose; /* NULL: "" */
	int64_t time_ms;
	const char *request; /* NULL: "" */
	const char *origin;
	int notified;
};

/*
 * juki_provision_add() - record p inside the caller's transaction.
 * Returns 0, JUKI_EINVAL (kind not "provide"/"use", a missing code, body,
 * items or origin), JUKI_EIO (no randomness for the id) or JUKI_ESTORE
 * (JUKI_ESTORE also for an id recorded before).
 */
int juki_provision_add(struct juki_store *store, const struct juki_provision *p);

/*
 * juki_provision_for_code() - the records of code, oldest first, as a JSON
 * array of {"id", "kind", "code", "body", "staff", "agreement", "jimu",
 * "items": [..], "purpose", "time" (RFC 3339 UTC), "request", "origin"};
 * a new reference, or NULL on a store failure.
 */
json_t *juki_provision_for_code(struct juki_store *store, const char *code);

/* juki_provision_count() - the number of records (0 on a store failure). */
int64_t juki_provision_count(struct juki_store *store);

/*
 * The purge rule of the table (period JUKI_PURGE_PROVISION_YEARS, by the
 * date rule of purge.h from time_ms), for a daemon's purge rules: `juki-ctl
 * purge` erases them with secure_delete and a TRUNCATE checkpoint.
 */
#define JUKI_PROVISION_PURGE_RULE                                                                  \
	{                                                                                          \
		"provisions", "provisions", juki_provision_purge_count,                            \
		    juki_provision_purge_delete, JUKI_PURGE_PROVISION_YEARS                        \
	}
extern const char juki_provision_purge_count[];
extern const char juki_provision_purge_delete[];

/*
 * juki_provision_erase_before() - erase every record provided before
 * cutoff_ms, securely (the store's secure_delete, then a TRUNCATE
 * checkpoint), outside any transaction; *removed (may be NULL) the count.
 * Returns 0, JUKI_EINVAL inside a transaction, JUKI_ESTORE, or JUKI_EAGAIN
 * when the checkpoint could not complete (the rows are gone; run it again).
 */
int juki_provision_erase_before(struct juki_store *store, int64_t cutoff_ms, int64_t *removed);

#endif
