/*
 * juki — the bulk load of identity information (docs/architecture.md §26,
 * docs/operations.md §34): current records and history read from files
 * (the import formats, docs/import.md, or the server's own export: JSON
 * Lines of change records) straight into a store.
 *
 * Every row is checked as a record arriving over the network is (the field
 * rules, the check digits, the origin rule of the node, no date after
 * today) and applied under the precedence rule; the first bad row stops
 * the load, naming the file, the line and the field, and the caller throws
 * away what was written (the load runs in one transaction or into a
 * shadow file).  Each record not already held is counted as the network
 * would have counted it: received from its sender (a prefecture: the CS of
 * its lgcode; the national server: the prefecture of it) and, at a node
 * that sends identity information on, sent to its destination — so that
 * reconciliation between two stores loaded from the same files agrees.
 *
 * Fresh mode is for an empty store that nobody else writes (a shadow file):
 * the secondary indexes are dropped while the rows go in, one prepared
 * INSERT each, and built afterwards by sorting (juki_loader_finish()); the
 * keys of lookups by attributes are made in key order at the end.
 */
#ifndef JUKI_HONNIN_LOAD_H
#define JUKI_HONNIN_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "juki/base/ident.h"
#include "juki/records/honnin.h"
#include "juki/store/store.h"

#define JUKI_LOAD_DESTS JUKI_BATCHER_DESTS /* as many as a batcher sends to */

struct juki_load_conf {
	enum juki_kind kind; /* JUKI_KIND_CS, JUKI_KIND_PREF or JUKI_KIND_JLIS */
	const char *self_id; /* the node's id: a CS's lgcode, a prefecture's 2 digits */
	/* where the node sends identity information (URNs; two national centres at a prefecture) */
	const char *const *dests;
	size_t ndests;     /* at most JUKI_LOAD_DESTS; 0: it sends none on (the national server) */
	int64_t now_ms;    /* received_ms of every record, and "today" for the dates */
	int fresh;         /* the store is empty and private: build indexes after the rows */
	const int *cancel; /* when not NULL and set (another thread): stop with "stopped" */
};

/* Where the load is; read from another thread while the load runs. */
struct juki_load_progress {
	int64_t rows;        /* rows read and applied */
	int64_t current;     /* records that became current */
	int64_t history;     /* records kept as history */
	int64_t duplicates;  /* records already held */
	int64_t bytes;       /* bytes read of all files */
	int64_t bytes_total; /* the files' sizes, when known (juki_loader_expect()) */
	int64_t file;        /* the file being read, 1-based (0: none yet) */
	int64_t phase;       /* 0 reading rows, 1 building indexes, 2 done */
};

/* Why a load stopped: the file, line (0: not a row's fault) and field. */
struct juki_load_error {
	char file[512];
	int64_t line;
	char field[40];
	char reason[32]; /* invalid-field, check-digit, future-date, origin, io, store */
	char detail[200];
};

struct juki_loader;

/*
 * juki_loader_new() - a loader writing into store, which the caller keeps
 * in a transaction (fresh: journal off, see above) from before the first
 * file to after juki_loader_finish().  In fresh mode the secondary indexes
 * of the honnin tables are dropped here.  0, JUKI_EINVAL, JUKI_ENOMEM or
 * JUKI_ESTORE.
 */
int juki_loader_new(struct juki_store *store, const struct juki_load_conf *conf,
		    struct juki_loader **out);

/* juki_loader_expect() - add bytes to the total shown as progress. */
void juki_loader_expect(struct juki_loader *ld, int64_t bytes);

/*
 * juki_loader_file() - read every row of path (CSV with a header row, or
 * JSON Lines: by the name's ending .csv / .jsonl .ndjson .json, else by the
 * first byte) and apply it.  0, or an error code with err filled.
 */
int juki_loader_file(struct juki_loader *ld, const char *path, struct juki_load_error *err);

/*
 * juki_loader_finish() - fresh mode: build the dropped indexes and the
 * keys of lookups by attributes.  0 or JUKI_ESTORE with err filled.
 */
int juki_loader_finish(struct juki_loader *ld, struct juki_load_error *err);

/*
 * juki_loader_flush_counts() - add the update counts and digests of the
 * records loaded to store (the loader's own, or the store a shadow is
 * swapped with), inside the caller's transaction.  0 or JUKI_ESTORE.
 */
int juki_loader_flush_counts(struct juki_loader *ld, struct juki_store *store);

/* juki_loader_progress() - a copy of the progress (any thread). */
void juki_loader_progress(const struct juki_loader *ld, struct juki_load_progress *p);

/* juki_loader_days() - how many (side, peer, day) counts the load made. */
size_t juki_loader_days(const struct juki_loader *ld);

void juki_loader_free(struct juki_loader *ld);

/*
 * juki_load_empty() - does store hold no record (current or history)?  1 (*held 0), 0 (*held
 * 1), or JUKI_ESTORE.  Two index probes, whatever the store's size.
 */
int juki_load_empty(struct juki_store *store, int64_t *held);

#endif
