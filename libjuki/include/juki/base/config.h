/*
 * juki — YAML configuration read against a table of keys.
 *
 * A daemon describes its configuration once, as a table of struct
 * juki_conf_key: name, type, where the value goes in the daemon's config
 * struct, default, bounds and help.  The same table drives parsing, defaults,
 * validation, `--help-config` and the man page.  Errors name the place:
 * "file:line:col: key.path: what is wrong".
 *
 * Storage, by type (at `offset` in the struct being filled):
 *   STRING, PATH, ADDR, IDENT   char *  (heap; NULL when absent without default)
 *   INT                         int64_t
 *   BOOL                        bool
 *   DURATION                    int64_t milliseconds
 *   SIZE                        int64_t bytes
 *   ENUM                        int     (index into .enums)
 *   SECTION                     an embedded struct described by .sub
 *   LIST                        a pointer to an array (void *) at offset and its
 *                               element count (size_t) at count_offset; elements
 *                               are char * (list of scalars, .elem_type) or
 *                               structs of .elem_size described by .sub
 *
 * Value syntax:
 *   DURATION  "250ms", "10s", "5m", "2h", "3d", "5y" (365 days); a bare number
 *             is seconds.
 *   SIZE      "512", "64KiB", "1MiB", "2GiB" (also "k", "KB", "M", "MB": powers
 *             of 1024 all the same).
 *   BOOL      true/false, yes/no, on/off.
 *   PATH      relative paths are resolved against the directory of the
 *             config file; with JUKI_CONF_PKCS11, a pkcs11: URI stays as is.
 *   ADDR      "host:port" or "[v6addr]:port", port 1..65535.
 *   IDENT     a urn:juki identity (juki_ident_parse()).
 *
 * A plain empty scalar, "~" or "null" means the key is absent (its default
 * applies); a quoted "" is an empty string.  Anchors, aliases and tags are
 * refused; a file is at most 1 MiB and nests at most 32 levels.  List
 * elements are named from 0 in messages: "gateways[1].address".
 *
 * Bounds (min, max): 0,0 means none; max < min means "at least min".
 * A scalar default is the value's text as is, checked like a value in the
 * file (no YAML quoting needed: "[::1]:7000"); a LIST default is a YAML flow
 * sequence ("[a, b]").  A default that does not pass is a table error,
 * reported as "file: key: invalid default ...".
 */
#ifndef JUKI_CONFIG_H
#define JUKI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum juki_conf_type {
	JUKI_CONF_STRING,
	JUKI_CONF_PATH,
	JUKI_CONF_ADDR,
	JUKI_CONF_IDENT,
	JUKI_CONF_INT,
	JUKI_CONF_BOOL,
	JUKI_CONF_DURATION,
	JUKI_CONF_SIZE,
	JUKI_CONF_ENUM,
	JUKI_CONF_SECTION,
	JUKI_CONF_LIST,
};

/* Key flags. */
#define JUKI_CONF_REQUIRED 0x1 /* absent is an error (no default applies) */
#define JUKI_CONF_RESTART  0x2 /* a change takes effect only on restart */
#define JUKI_CONF_PKCS11   0x4 /* PATH: a pkcs11: URI (a key on a token) is kept as written */

struct juki_conf_key {
	const char *name;
	enum juki_conf_type type;
	size_t offset;
	const char *def; /* default, written as in YAML; NULL for none */
	int flags;
	int64_t min, max; /* INT/DURATION/SIZE bounds; LIST element count bounds; 0,0 = none */
	const char *const *enums;        /* ENUM: NULL-terminated names */
	const struct juki_conf_key *sub; /* SECTION, LIST of sections: NULL-name-terminated */
	enum juki_conf_type elem_type;   /* LIST of scalars: STRING, PATH, ADDR or IDENT */
	size_t elem_size;                /* LIST of sections: sizeof one element */
	size_t count_offset;             /* LIST: where the size_t count goes */
	const char *help;
	/*
	 * SECTION, LIST of sections (optional): called after a section (or
	 * each element) is filled and its defaults applied, for rules that tie
	 * its keys together.  Returns 0, or non-zero with a one-line reason in
	 * why and in *blame the name of the sub-key at fault (NULL: the section
	 * itself); the load then fails at that key's position.
	 */
	int (*check)(const void *section, const char **blame, char *why, size_t whylen);
};

/* Table-building helpers: st = the struct type, f = its field. */
#define JUKI_CONF_SCALAR(st, f, n, t, d, fl, lo, hi, h)                                            \
	{                                                                                          \
		.name = (n), .type = (t), .offset = offsetof(st, f), .def = (d), .flags = (fl),    \
		.min = (lo), .max = (hi), .help = (h)                                              \
	}
#define JUKI_CONF_ENUMKEY(st, f, n, names, d, fl, h)                                               \
	{                                                                                          \
		.name = (n), .type = JUKI_CONF_ENUM, .offset = offsetof(st, f), .def = (d),        \
		.flags = (fl), .enums = (names), .help = (h)                                       \
	}
#define JUKI_CONF_SECTIONKEY(st, f, n, table, h)                                                   \
	{                                                                                          \
		.name = (n), .type = JUKI_CONF_SECTION, .offset = offsetof(st, f), .sub = (table), \
		.help = (h)                                                                        \
	}
#define JUKI_CONF_SCALARLIST(st, f, cnt, n, et, fl, lo, hi, h)                                     \
	{                                                                                          \
		.name = (n), .type = JUKI_CONF_LIST, .offset = offsetof(st, f), .flags = (fl),     \
		.min = (lo), .max = (hi), .elem_type = (et), .elem_size = sizeof(char *),          \
		.count_offset = offsetof(st, cnt), .help = (h)                                     \
	}
#define JUKI_CONF_SECTIONLIST(st, f, cnt, n, et, table, fl, lo, hi, h)                             \
	{                                                                                          \
		.name = (n), .type = JUKI_CONF_LIST, .offset = offsetof(st, f), .flags = (fl),     \
		.min = (lo), .max = (hi), .sub = (table), .elem_size = sizeof(et),                 \
		.count_offset = offsetof(st, cnt), .help = (h)                                     \
	}
#define JUKI_CONF_END                                                                              \
	{                                                                                          \
		.name = NULL                                                                       \
	}

/*
 * juki_conf_load() - read the YAML file at path into conf (zeroed by the
 * caller) following table; apply defaults; check types, bounds, required
 * keys and unknown keys.
 * Returns 0, or JUKI_ECONFIG with a "file:line:col: key: what" message in
 * err, or -errno when the file cannot be read.  On failure conf holds
 * nothing that needs freeing (partial results are freed).
 */
int juki_conf_load(const char *path, const struct juki_conf_key *table, void *conf, char *err,
		   size_t errlen);

/*
 * juki_conf_load_string() - as juki_conf_load() from text in memory; name is
 * used in messages and basedir resolves relative PATH values (NULL: ".").
 */
int juki_conf_load_string(const char *name, const char *basedir, const char *text, size_t len,
			  const struct juki_conf_key *table, void *conf, char *err, size_t errlen);

/* juki_conf_free() - free what a load allocated in conf; safe on a zeroed conf. */
void juki_conf_free(const struct juki_conf_key *table, void *conf);

/*
 * juki_conf_print_help() - one line per key (dotted name, type, default,
 * help), keys of sections as "tls.cert" and of lists of sections as
 * "gateways[].address"; format "text" or "scdoc" (a man page section body).
 * Returns 0, JUKI_EINVAL for an unknown format, JUKI_EIO on a write error.
 */
int juki_conf_print_help(FILE *out, const struct juki_conf_key *table, const char *format);

/*
 * juki_conf_parse_duration() / _size() - the value syntax above, for callers
 * that read such values elsewhere (command-line flags).  Return 0 or
 * JUKI_EFORMAT.
 */
int juki_conf_parse_duration(const char *text, int64_t *ms);
int juki_conf_parse_size(const char *text, int64_t *bytes);

/*
 * juki_conf_split_addr() - split "host:port" / "[v6]:port" into host
 * (without brackets) and port.  Returns 0 or JUKI_EFORMAT.
 */
int juki_conf_split_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
