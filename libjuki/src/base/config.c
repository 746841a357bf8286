#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"

#define CONF_MAX_BYTES (1024 * 1024)
#define CONF_MAX_DEPTH 32
#define KEYPATH_MAX    512
/* How much of a rejected value a message repeats: enough to recognise it. */
#define ECHO_MAX 64

enum node_kind {
	NODE_SCALAR,
	NODE_SEQUENCE,
	NODE_MAPPING,
};

struct node;

struct pair {
	char *key;
	size_t keylen;
	int line, col;
	struct node *value;
};

/*
 * The document as a small tree, so that the table walk can look keys up in
 * any order and still point at the line and column a value came from.
 */
struct node {
	enum node_kind kind;
	int line, col;
	char *text; /* scalar: NUL-terminated, len bytes (may hold NULs) */
	size_t len;
	bool null;
	struct node **items; /* sequence */
	size_t nitems;
	struct pair *pairs; /* mapping */
	size_t npairs;
	size_t cap;
};

struct ctx {
	const char *name;
	char basedir[PATH_MAX];
	char *err;
	size_t errlen;
	/* Set while a default is applied: errors then name the table, not the file. */
	const char *def;
	const char *def_path;
};

struct unit {
	const char *suffix;
	int64_t mult;
};

static const struct unit duration_units[] = {
    {"ms", 1},          {"s", 1000},        {"m", 60 * 1000},
    {"h", 3600 * 1000}, {"d", JUKI_DAY_MS}, {"y", 365 * JUKI_DAY_MS},
    {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"k", INT64_C(1) << 10},
    {"K", INT64_C(1) << 10},
    {"kB", INT64_C(1) << 10},
    {"KB", INT64_C(1) << 10},
    {"KiB", INT64_C(1) << 10},
    {"M", INT64_C(1) << 20},
    {"MB", INT64_C(1) << 20},
    {"MiB", INT64_C(1) << 20},
    {"G", INT64_C(1) << 30},
    {"GB", INT64_C(1) << 30},
    {"GiB", INT64_C(1) << 30},
    {"T", INT64_C(1) << 40},
    {"TB", INT64_C(1) << 40},
    {"TiB", INT64_C(1) << 40},
    {NULL, 0},
};

static const char *const type_names[] = {
    [JUKI_CONF_STRING] = "string",     [JUKI_CONF_PATH] = "path", [JUKI_CONF_ADDR] = "address",
    [JUKI_CONF_IDENT] = "identity",    [JUKI_CONF_INT] = "int",   [JUKI_CONF_BOOL] = "bool",
    [JUKI_CONF_DURATION] = "duration", [JUKI_CONF_SIZE] = "size", [JUKI_CONF_ENUM] = "enum",
    [JUKI_CONF_SECTION] = "section",   [JUKI_CONF_LIST] = "list",
};

/* What a wrong-kind message says was expected, article included. */
static const char *const type_wanted[] = {
    [JUKI_CONF_STRING] = "a string",     [JUKI_CONF_PATH] = "a path",
    [JUKI_CONF_ADDR] = "an address",     [JUKI_CONF_IDENT] = "an identity",
    [JUKI_CONF_INT] = "an integer",      [JUKI_CONF_BOOL] = "a boolean",
    [JUKI_CONF_DURATION] = "a duration", [JUKI_CONF_SIZE] = "a size",
    [JUKI_CONF_ENUM] = "a name",         [JUKI_CONF_SECTION] = "a mapping",
    [JUKI_CONF_LIST] = "a sequence",
};

static const char *const kind_found[] = {
    [NODE_SCALAR] = "a scalar",
    [NODE_SEQUENCE] = "a sequence",
    [NODE_MAPPING] = "a mapping",
};

static int walk_map(struct ctx *c, const struct juki_conf_key *table, const struct node *map,
		    char *base, const char *prefix, int line, int col);
static void free_keys(const struct juki_conf_key *table, char *base);

static int __attribute__((format(printf, 5, 6)))
fail(struct ctx *c, int line, int col, const char *path, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->err == NULL || c->errlen == 0) {
		return JUKI_ECONFIG;
	}
	if (c->def != NULL) {
		snprintf(c->err, c->errlen, "%s: %s: invalid default \"%s\": %s", c->name,
			 path != NULL && path[0] != '\0' ? path : c->def_path, c->def, what);
	} else if (path != NULL && path[0] != '\0') {
		snprintf(c->err, c->errlen, "%s:%d:%d: %s: %s", c->name, line, col, path, what);
	} else {
		snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->name, line, col, what);
	}
	return JUKI_ECONFIG;
}

static int
fail_nomem(struct ctx *c)
{
	if (c->err != NULL && c->errlen > 0) {
		snprintf(c->err, c->errlen, "%s: out of memory", c->name);
	}
	return JUKI_ENOMEM;
}

static void
join_path(char *dst, size_t len, const char *prefix, const char *name, size_t namelen)
{
	if (prefix == NULL || prefix[0] == '\0') {
		snprintf(dst, len, "%.*s", (int)namelen, name);
	} else {
		snprintf(dst, len, "%s.%.*s", prefix, (int)namelen, name);
	}
}

static void
node_free(struct node *n)
{
	if (n == NULL) {
		return;
	}
	free(n->text);
	for (size_t i = 0; i < n->nitems; i++) {
		node_free(n->items[i]);
	}
	free(n->items);
	for (size_t i = 0; i < n->npairs; i++) {
		free(n->pairs[i].key);
		node_free(n->pairs[i].value);
	}
	free(n->pairs);
	free(n);
}

static bool
null_text(const char *s, size_t len)
{
	return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static bool
absent(const struct node *n)
{
	return n == NULL || (n->kind == NODE_SCALAR && n->null);
}

static char *
copy_bytes(const void *src, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, src, len);
		s[len] = '\0';
	}
	return s;
}

static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t ncap;

	if (n < *cap) {
		return 0;
	}
	ncap = *cap == 0 ? 8 : *cap * 2;
	p = realloc(*arr, ncap * elem);
	if (p == NULL) {
		return JUKI_ENOMEM;
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

struct reader {
	yaml_parser_t parser;
	struct ctx *c;
	const char *text;
	size_t len;
};

static int
syntax_error(struct reader *r)
{
	yaml_parser_t *p = &r->parser;
	int line = 1, col = 1;

	if (p->error == YAML_MEMORY_ERROR) {
		return fail_nomem(r->c);
	}
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark: count to it. */
		for (size_t i = 0; i < p->problem_offset && i < r->len; i++) {
			unsigned char ch = (unsigned char)r->text[i];

			if (ch == '\n') {
				line++;
				col = 1;
			} else if ((ch & 0xc0) != 0x80) {
				col++;
			}
		}
	} else {
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
	}
	if (p->context != NULL) {
		return fail(r->c, line, col, NULL, "%s (%s at %d:%d)",
			    p->problem != NULL ? p->problem : "syntax error", p->context,
			    (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	}
	return fail(r->c, line, col, NULL, "%s", p->problem != NULL ? p->problem : "syntax error");
}

static int
next_event(struct reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->parser, ev)) {
		return syntax_error(r);
	}
	return 0;
}

/*
 * Anchors and aliases make a small file expand into a huge tree (billion
 * laughs); tags would give a scalar a meaning other than its text.  A
 * configuration needs none of them.
 */
static int
refuse_extras(struct reader *r, const yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return fail(r->c, line, col, NULL, "aliases are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor != NULL) {
		return fail(r->c, line, col, NULL, "anchors are not allowed");
	}
	if (tag != NULL) {
		return fail(r->c, line, col, NULL, "tags are not allowed");
	}
	return 0;
}

static int parse_node(struct reader *r, const yaml_event_t *ev, int depth, struct node **out);

static int
parse_sequence(struct reader *r, struct node *n, int depth)
{
	yaml_event_t ev;
	struct node *child = NULL;
	int rc;

	for (;;) {
		rc = next_event(r, &ev);
		if (rc != 0) {
			return rc;
		}
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		rc = parse_node(r, &ev, depth + 1, &child);
		yaml_event_delete(&ev);
		if (rc != 0) {
			return rc;
		}
		if (grow((void **)&n->items, &n->cap, n->nitems, sizeof(*n->items)) != 0) {
			node_free(child);
			return fail_nomem(r->c);
		}
		n->items[n->nitems++] = child;
	}
}

static int
parse_mapping(struct reader *r, struct node *n, int depth)
{
	yaml_event_t ev;
	struct pair pair = {0};
	int rc = 0;

	for (;;) {
		rc = next_event(r, &ev);
		if (rc != 0) {
			goto out;
		}
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			goto out;
		}
		rc = refuse_extras(r, &ev);
		if (rc == 0 && ev.type != YAML_SCALAR_EVENT) {
			rc = fail(r->c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				  NULL, "mapping keys must be scalars");
		}
		if (rc != 0) {
			yaml_event_delete(&ev);
			goto out;
		}
		pair.line = (int)ev.start_mark.line + 1;
		pair.col = (int)ev.start_mark.column + 1;
		pair.keylen = ev.data.scalar.length;
		pair.key = copy_bytes(ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
		if (pair.key == NULL) {
			rc = fail_nomem(r->c);
			goto out;
		}
		rc = next_event(r, &ev);
		if (rc != 0) {
			goto out;
		}
		rc = parse_node(r, &ev, depth + 1, &pair.value);
		yaml_event_delete(&ev);
		if (rc != 0) {
			goto out;
		}
		if (grow((void **)&n->pairs, &n->cap, n->npairs, sizeof(*n->pairs)) != 0) {
			rc = fail_nomem(r->c);
			goto out;
		}
		n->pairs[n->npairs++] = pair;
		memset(&pair, 0, sizeof(pair));
	}
out:
	free(pair.key);
	node_free(pair.value);
	return rc;
}

static int
parse_node(struct reader *r, const yaml_event_t *ev, int depth, struct node **out)
{
	struct node *n = NULL;
	int rc;

	*out = NULL;
	rc = refuse_extras(r, ev);
	if (rc != 0) {
		return rc;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		return fail_nomem(r->c);
	}
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = NODE_SCALAR;
		n->len = ev->data.scalar.length;
		n->text = copy_bytes(ev->data.scalar.value, n->len);
		if (n->text == NULL) {
			rc = fail_nomem(r->c);
			goto out;
		}
		n->null =
		    ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && null_text(n->text, n->len);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (depth > CONF_MAX_DEPTH) {
			rc = fail(r->c, n->line, n->col, NULL, "nesting deeper than %d levels",
				  CONF_MAX_DEPTH);
			goto out;
		}
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			n->kind = NODE_SEQUENCE;
			rc = parse_sequence(r, n, depth);
		} else {
			n->kind = NODE_MAPPING;
			rc = parse_mapping(r, n, depth);
		}
		break;
	default:
		rc = fail(r->c, n->line, n->col, NULL, "unexpected YAML event");
		break;
	}
out:
	if (rc != 0) {
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

/*
 * One document, or none (an empty file: every key absent).  *root is NULL
 * for no document.
 */
static int
parse_text(struct ctx *c, const char *text, size_t len, struct node **root)
{
	struct reader r = {.c = c, .text = text, .len = len};
	yaml_event_t ev;
	bool have_event = false;
	int rc;

	*root = NULL;
	if (!yaml_parser_initialize(&r.parser)) {
		return fail_nomem(c);
	}
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&r.parser, YAML_UTF8_ENCODING);
	rc = next_event(&r, &ev); /* stream start */
	if (rc != 0) {
		goto out;
	}
	yaml_event_delete(&ev);
	rc = next_event(&r, &ev);
	if (rc != 0) {
		goto out;
	}
	have_event = true;
	if (ev.type == YAML_STREAM_END_EVENT) {
		goto out;
	}
	yaml_event_delete(&ev); /* document start */
	have_event = false;
	rc = next_event(&r, &ev);
	if (rc != 0) {
		goto out;
	}
	have_event = true;
	rc = parse_node(&r, &ev, 1, root);
	if (rc != 0) {
		goto out;
	}
	yaml_event_delete(&ev);
	have_event = false;
	rc = next_event(&r, &ev); /* document end */
	if (rc != 0) {
		goto out;
	}
	yaml_event_delete(&ev);
	rc = next_event(&r, &ev);
	if (rc != 0) {
		goto out;
	}
	have_event = true;
	if (ev.type != YAML_STREAM_END_EVENT) {
		rc = fail(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, NULL,
			  "only one YAML document is allowed");
	}
out:
	if (have_event) {
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&r.parser);
	if (rc != 0) {
		node_free(*root);
		*root = NULL;
	}
	return rc;
}

static int
parse_digits(const char **p, uint64_t limit, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9') {
		return JUKI_EFORMAT;
	}
	while (*s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');

		if (n > (limit - d) / 10) {
			return JUKI_EFORMAT;
		}
		n = n * 10 + d;
		s++;
	}
	*p = s;
	*v = n;
	return 0;
}

static int
parse_with_units(const char *text, const struct unit *units, int64_t bare, int64_t *out)
{
	const char *s = text;
	uint64_t n;

	if (text == NULL || parse_digits(&s, INT64_MAX, &n) != 0) {
		return JUKI_EFORMAT;
	}
	if (*s == '\0' && bare != 0) {
		if (n > (uint64_t)(INT64_MAX / bare)) {
			return JUKI_EFORMAT;
		}
		*out = (int64_t)n * bare;
		return 0;
	}
	for (const struct unit *u = units; u->suffix != NULL; u++) {
		if (strcmp(s, u->suffix) == 0) {
			if (n > (uint64_t)(INT64_MAX / u->mult)) {
				return JUKI_EFORMAT;
			}
			*out = (int64_t)n * u->mult;
			return 0;
		}
	}
	return JUKI_EFORMAT;
}

int
juki_conf_parse_duration(const char *text, int64_t *ms)
{
	return parse_with_units(text, duration_units, 1000, ms);
}

int
juki_conf_parse_size(const char *text, int64_t *bytes)
{
	return parse_with_units(text, size_units, 0, bytes);
}

static int
parse_int(const char *text, int64_t *out)
{
	const char *s = text;
	bool neg = false;
	uint64_t n;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (parse_digits(&s, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &n) != 0 ||
	    *s != '\0') {
		return JUKI_EFORMAT;
	}
	if (neg) {
		*out = n == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n;
	} else {
		*out = (int64_t)n;
	}
	return 0;
}

static int
parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return JUKI_EFORMAT;
}

static bool
host_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '-' || ch == '_';
}

static int
check_v6(const char *h, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 64];
	struct in6_addr a;
	char *zone;

	if (n == 0 || n >= sizeof(buf)) {
		return JUKI_EFORMAT;
	}
	memcpy(buf, h, n);
	buf[n] = '\0';
	zone = strchr(buf, '%');
	if (zone != NULL) {
		*zone++ = '\0';
		if (*zone == '\0') {
			return JUKI_EFORMAT;
		}
		for (const char *z = zone; *z != '\0'; z++) {
			if (!host_char(*z)) {
				return JUKI_EFORMAT;
			}
		}
	}
	return inet_pton(AF_INET6, buf, &a) == 1 ? 0 : JUKI_EFORMAT;
}

int
juki_conf_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
	const char *h, *hend, *p;
	uint64_t n;

	if (addr == NULL) {
		return JUKI_EFORMAT;
	}
	if (addr[0] == '[') {
		h = addr + 1;
		hend = strchr(h, ']');
		if (hend == NULL || hend[1] != ':' || check_v6(h, (size_t)(hend - h)) != 0) {
			return JUKI_EFORMAT;
		}
		p = hend + 2;
	} else {
		h = addr;
		hend = strchr(addr, ':');
		if (hend == NULL || hend == h) {
			return JUKI_EFORMAT;
		}
		for (const char *q = h; q < hend; q++) {
			if (!host_char(*q)) {
				return JUKI_EFORMAT;
			}
		}
		p = hend + 1;
	}
	if (strlen(p) > 5 || parse_digits(&p, 65535, &n) != 0 || *p != '\0' || n == 0) {
		return JUKI_EFORMAT;
	}
	if (host != NULL) {
		if ((size_t)(hend - h) >= hostlen) {
			return JUKI_EFORMAT;
		}
		memcpy(host, h, (size_t)(hend - h));
		host[hend - h] = '\0';
	}
	if (port != NULL) {
		*port = (int)n;
	}
	return 0;
}

static void
fmt_scaled(char *buf, size_t len, int64_t v, const struct unit *units, const char *zero)
{
	const struct unit *best = NULL;

	if (v == 0) {
		snprintf(buf, len, "%s", zero);
		return;
	}
	for (const struct unit *u = units; u->suffix != NULL; u++) {
		if (v % u->mult == 0 && (best == NULL || u->mult > best->mult)) {
			best = u;
		}
	}
	snprintf(buf, len, "%lld%s", (long long)(v / best->mult), best->suffix);
}

static void
fmt_value(char *buf, size_t len, enum juki_conf_type type, int64_t v)
{
	static const struct unit sizes[] = {
	    {"", 1},
	    {"KiB", INT64_C(1) << 10},
	    {"MiB", INT64_C(1) << 20},
	    {"GiB", INT64_C(1) << 30},
	    {"TiB", INT64_C(1) << 40},
	    {NULL, 0},
	};

	if (type == JUKI_CONF_DURATION) {
		fmt_scaled(buf, len, v, duration_units, "0s");
	} else if (type == JUKI_CONF_SIZE) {
		fmt_scaled(buf, len, v, sizes, "0");
	} else {
		snprintf(buf, len, "%lld", (long long)v);
	}
}

static bool
has_bounds(const struct juki_conf_key *key)
{
	return key->min != 0 || key->max != 0;
}

static bool
in_bounds(const struct juki_conf_key *key, int64_t v)
{
	if (!has_bounds(key)) {
		return true;
	}
	if (key->max < key->min) {
		return v >= key->min;
	}
	return v >= key->min && v <= key->max;
}

/* "1..64", ">= 1s", "1" (min == max); empty when unbounded. */
static void
fmt_bounds(char *buf, size_t len, enum juki_conf_type type, const struct juki_conf_key *key)
{
	char lo[32], hi[32];

	buf[0] = '\0';
	if (!has_bounds(key)) {
		return;
	}
	fmt_value(lo, sizeof(lo), type, key->min);
	fmt_value(hi, sizeof(hi), type, key->max);
	if (key->max < key->min) {
		snprintf(buf, len, ">= %s", lo);
	} else if (key->min == key->max) {
		snprintf(buf, len, "%s", lo);
	} else {
		snprintf(buf, len, "%s..%s", lo, hi);
	}
}

static int
fail_bounds(struct ctx *c, const struct node *n, const char *path, const struct juki_conf_key *key)
{
	char lo[32], hi[32];

	fmt_value(lo, sizeof(lo), key->type, key->min);
	fmt_value(hi, sizeof(hi), key->type, key->max);
	if (key->max < key->min) {
		return fail(c, n->line, n->col, path, "must be at least %s, not %.*s", lo, ECHO_MAX,
			    n->text);
	}
	if (key->min == key->max) {
		return fail(c, n->line, n->col, path, "must be %s, not %.*s", lo, ECHO_MAX,
			    n->text);
	}
	return fail(c, n->line, n->col, path, "must be between %s and %s, not %.*s", lo, hi,
		    ECHO_MAX, n->text);
}

/* Drops "." components and repeated slashes; ".." stays, since symlinks decide it. */
static void
clean_path(char *p)
{
	char *r = p, *w = p;

	while (*r != '\0') {
		size_t n;

		while (*r == '/') {
			r++;
		}
		if (*r == '\0') {
			break;
		}
		n = strcspn(r, "/");
		if (n == 1 && r[0] == '.') {
			r += n;
			continue;
		}
		*w++ = '/';
		memmove(w, r, n);
		w += n;
		r += n;
	}
	if (w == p) {
		*w++ = '/';
	}
	*w = '\0';
}

static int
make_basedir(const char *dir, char out[PATH_MAX])
{
	char cwd[PATH_MAX];
	int n;

	if (dir != NULL && dir[0] == '/') {
		n = snprintf(out, PATH_MAX, "%s", dir);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			return -errno;
		}
		n = snprintf(out, PATH_MAX, "%s/%s", cwd, dir != NULL ? dir : ".");
	}
	if (n < 0 || n >= PATH_MAX) {
		return JUKI_ENAMETOOLONG;
	}
	clean_path(out);
	return 0;
}

/*
 * The numeric types are one kind of value: an int64_t read by a parser and
 * held to the key's bounds; only the parser and what a value looks like in
 * the message differ.
 */
struct number_type {
	enum juki_conf_type type;
	int (*parse)(const char *text, int64_t *v);
	const char *like; /* "\"<text>\" is not <like>" */
};

static const struct number_type number_types[] = {
    {JUKI_CONF_INT, parse_int, "an integer"},
    {JUKI_CONF_DURATION, juki_conf_parse_duration, "a duration (like 250ms, 10s, 5m, 2h, 3d, 5y)"},
    {JUKI_CONF_SIZE, juki_conf_parse_size, "a size (like 512, 64KiB, 1MiB, 2GiB)"},
};

/* The number_types entry of type, or NULL when type is not numeric. */
static const struct number_type *
number_type(enum juki_conf_type type)
{
	for (size_t i = 0; i < sizeof(number_types) / sizeof(number_types[0]); i++) {
		if (number_types[i].type == type) {
			return &number_types[i];
		}
	}
	return NULL;
}

static int
convert_scalar(struct ctx *c, const struct juki_conf_key *key, enum juki_conf_type type,
	       const struct node *n, char *field, const char *path)
{
	const struct number_type *num = number_type(type);
	struct juki_ident ident;
	char host[256];
	char *s = NULL;
	int64_t v;
	bool b;
	size_t need;

	if (n->kind != NODE_SCALAR) {
		return fail(c, n->line, n->col, path, "expected %s, found %s", type_wanted[type],
			    kind_found[n->kind]);
	}
	if (memchr(n->text, '\0', n->len) != NULL) {
		return fail(c, n->line, n->col, path, "contains a NUL character");
	}
	if (num != NULL) {
		if (num->parse(n->text, &v) != 0) {
			return fail(c, n->line, n->col, path, "\"%.*s\" is not %s", ECHO_MAX,
				    n->text, num->like);
		}
		if (!in_bounds(key, v)) {
			return fail_bounds(c, n, path, key);
		}
		memcpy(field, &v, sizeof(v));
		return 0;
	}
	switch (type) {
	case JUKI_CONF_STRING:
		s = strdup(n->text);
		break;
	case JUKI_CONF_PATH:
		if (n->len == 0) {
			return fail(c, n->line, n->col, path, "empty path");
		}
		if (n->text[0] == '/' || (key != NULL && (key->flags & JUKI_CONF_PKCS11) != 0 &&
					  strncasecmp(n->text, "pkcs11:", 7) == 0)) {
			s = strdup(n->text);
			break;
		}
		need = strlen(c->basedir) + 1 + n->len + 1;
		if (need > PATH_MAX) {
			return fail(c, n->line, n->col, path, "path too long");
		}
		s = malloc(need);
		if (s != NULL) {
			size_t blen = strlen(c->basedir);

			memcpy(s, c->basedir, blen);
			s[blen] = '/';
			memcpy(s + blen + 1, n->text, n->len + 1);
			clean_path(s);
		}
		break;
	case JUKI_CONF_ADDR:
		if (juki_conf_split_addr(n->text, host, sizeof(host), NULL) != 0) {
			return fail(c, n->line, n->col, path,
				    "\"%.*s\" is not host:port or [v6]:port with port 1..65535",
				    ECHO_MAX, n->text);
		}
		s = strdup(n->text);
		break;
	case JUKI_CONF_IDENT:
		if (juki_ident_parse(n->text, &ident) != 0) {
			return fail(c, n->line, n->col, path,
				    "\"%.*s\" is not a valid urn:juki identity", ECHO_MAX, n->text);
		}
		s = strdup(ident.urn);
		break;
	case JUKI_CONF_BOOL:
		if (parse_bool(n->text, &b) != 0) {
			return fail(c, n->line, n->col, path,
				    "\"%.*s\" is not a boolean (true/false, yes/no, on/off)",
				    ECHO_MAX, n->text);
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	case JUKI_CONF_ENUM: {
		char names[512] = "";
		size_t off = 0;

		if (key->enums == NULL) {
			return fail(c, n->line, n->col, path, "table entry has no names");
		}
		for (int i = 0; key->enums[i] != NULL; i++) {
			if (strcmp(n->text, key->enums[i]) == 0) {
				memcpy(field, &i, sizeof(i));
				return 0;
			}
			if (off < sizeof(names)) {
				int w = snprintf(names + off, sizeof(names) - off, "%s%s",
						 i > 0 ? ", " : "", key->enums[i]);

				off += w > 0 ? (size_t)w : 0;
			}
		}
		return fail(c, n->line, n->col, path, "\"%.*s\" is not one of: %s", ECHO_MAX,
			    n->text, names);
	}
	default:
		return fail(c, n->line, n->col, path, "table entry of type %d is not a scalar",
			    (int)type);
	}
	if (s == NULL) {
		return fail_nomem(c);
	}
	memcpy(field, &s, sizeof(s));
	return 0;
}

static bool
string_type(enum juki_conf_type t)
{
	return t == JUKI_CONF_STRING || t == JUKI_CONF_PATH || t == JUKI_CONF_ADDR ||
	       t == JUKI_CONF_IDENT;
}

static const struct pair *
find_pair(const struct node *map, const char *name)
{
	size_t len = strlen(name);

	if (map == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < map->npairs; i++) {
		if (map->pairs[i].keylen == len && memcmp(map->pairs[i].key, name, len) == 0) {
			return &map->pairs[i];
		}
	}
	return NULL;
}

static int
run_check(struct ctx *c, const struct juki_conf_key *key, const void *section,
	  const struct node *map, const char *path, int line, int col)
{
	char why[512] = "";
	char sub[KEYPATH_MAX];
	const char *blame = NULL;
	const struct pair *p;

	if (key->check == NULL || key->check(section, &blame, why, sizeof(why)) == 0) {
		return 0;
	}
	if (why[0] == '\0') {
		snprintf(why, sizeof(why), "invalid");
	}
	if (blame == NULL) {
		return fail(c, line, col, path, "%s", why);
	}
	join_path(sub, sizeof(sub), path, blame, strlen(blame));
	p = find_pair(map, blame);
	if (p != NULL && !absent(p->value)) {
		return fail(c, p->value->line, p->value->col, sub, "%s", why);
	}
	if (p != NULL) {
		return fail(c, p->line, p->col, sub, "%s", why);
	}
	return fail(c, line, col, sub, "%s", why);
}

static int
check_count(struct ctx *c, const struct juki_conf_key *key, size_t n, const char *path, int line,
	    int col)
{
	char bounds[80];

	if (in_bounds(key, (int64_t)n)) {
		return 0;
	}
	fmt_bounds(bounds, sizeof(bounds), JUKI_CONF_INT, key);
	if (key->max < key->min) {
		return fail(c, line, col, path, "needs at least %lld element%s, found %zu",
			    (long long)key->min, key->min == 1 ? "" : "s", n);
	}
	if (key->min == key->max) {
		return fail(c, line, col, path, "needs exactly %s element%s, found %zu", bounds,
			    key->min == 1 ? "" : "s", n);
	}
	return fail(c, line, col, path, "needs %s elements, found %zu", bounds, n);
}

static int
apply_list(struct ctx *c, const struct juki_conf_key *key, const struct node *n, char *base,
	   const char *path)
{
	char elpath[KEYPATH_MAX];
	size_t *count = (size_t *)(base + key->count_offset);
	char *arr;
	int rc;

	if (n->kind != NODE_SEQUENCE) {
		return fail(c, n->line, n->col, path, "expected a sequence, found %s",
			    kind_found[n->kind]);
	}
	if (key->sub == NULL && !string_type(key->elem_type)) {
		return fail(c, n->line, n->col, path, "table entry: list of unsupported type");
	}
	rc = check_count(c, key, n->nitems, path, n->line, n->col);
	if (rc != 0 || n->nitems == 0) {
		return rc;
	}
	arr = calloc(n->nitems, key->sub != NULL ? key->elem_size : sizeof(char *));
	if (arr == NULL) {
		return fail_nomem(c);
	}
	/* Publish at once: a failure below frees through the count like any other. */
	memcpy(base + key->offset, &arr, sizeof(arr));
	*count = n->nitems;
	for (size_t i = 0; i < n->nitems; i++) {
		const struct node *el = n->items[i];

		snprintf(elpath, sizeof(elpath), "%s[%zu]", path, i);
		if (key->sub != NULL) {
			char *elem = arr + i * key->elem_size;

			if (el->kind != NODE_MAPPING) {
				return fail(c, el->line, el->col, elpath,
					    "expected a mapping, found %s",
					    absent(el) ? "nothing" : kind_found[el->kind]);
			}
			rc = walk_map(c, key->sub, el, elem, elpath, el->line, el->col);
			if (rc == 0) {
				rc = run_check(c, key, elem, el, elpath, el->line, el->col);
			}
		} else if (absent(el)) {
			rc = fail(c, el->line, el->col, elpath, "empty element");
		} else {
			rc = convert_scalar(c, key, key->elem_type, el, arr + i * sizeof(char *),
					    elpath);
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static int
apply(struct ctx *c, const struct juki_conf_key *key, const struct node *n, char *base,
      const char *path)
{
	char *field = base + key->offset;
	int rc;

	switch (key->type) {
	case JUKI_CONF_SECTION:
		if (n->kind != NODE_MAPPING) {
			return fail(c, n->line, n->col, path, "expected a mapping, found %s",
				    kind_found[n->kind]);
		}
		rc = walk_map(c, key->sub, n, field, path, n->line, n->col);
		if (rc == 0) {
			rc = run_check(c, key, field, n, path, n->line, n->col);
		}
		return rc;
	case JUKI_CONF_LIST:
		return apply_list(c, key, n, base, path);
	default:
		return convert_scalar(c, key, key->type, n, field, path);
	}
}

/* A key that the file leaves out: its default, an error if required, or nothing. */
static int
apply_absent(struct ctx *c, const struct juki_conf_key *key, char *base, const char *path, int line,
	     int col)
{
	struct ctx dc;
	struct node *tree = NULL;
	struct node scalar = {.kind = NODE_SCALAR, .line = line, .col = col};
	int rc;

	if (key->flags & JUKI_CONF_REQUIRED) {
		return fail(c, line, col, path, "missing required key");
	}
	if (key->type == JUKI_CONF_SECTION) {
		if (key->def != NULL) {
			return fail(c, line, col, path, "table entry: a section takes no default");
		}
		rc = walk_map(c, key->sub, NULL, base + key->offset, path, line, col);
		if (rc == 0) {
			rc = run_check(c, key, base + key->offset, NULL, path, line, col);
		}
		return rc;
	}
	if (key->def == NULL) {
		if (key->type == JUKI_CONF_LIST) {
			return check_count(c, key, 0, path, line, col);
		}
		return 0;
	}
	dc = *c;
	dc.def = key->def;
	dc.def_path = path;
	if (key->type == JUKI_CONF_LIST) {
		rc = parse_text(&dc, key->def, strlen(key->def), &tree);
		if (rc == 0 && tree == NULL) {
			rc = fail(&dc, line, col, path, "expected a sequence");
		}
		if (rc == 0) {
			rc = apply_list(&dc, key, tree, base, path);
		}
		node_free(tree);
		return rc;
	}
	/* Taken as written, so that "[::1]:80" or "*" need no YAML quoting. */
	scalar.text = (char *)key->def;
	scalar.len = strlen(key->def);
	return convert_scalar(&dc, key, key->type, &scalar, base + key->offset, path);
}

static int
walk_map(struct ctx *c, const struct juki_conf_key *table, const struct node *map, char *base,
	 const char *prefix, int line, int col)
{
	char path[KEYPATH_MAX];
	const struct pair **seen = NULL;
	size_t nkeys = 0;
	int rc = 0;

	if (table == NULL) {
		return fail(c, line, col, prefix, "table entry: section without keys");
	}
	while (table[nkeys].name != NULL) {
		/* A key listed twice would fill its field twice, the second time with defaults. */
		for (size_t j = 0; j < nkeys; j++) {
			if (strcmp(table[j].name, table[nkeys].name) == 0) {
				return fail(c, line, col, prefix,
					    "table entry: key %s listed twice", table[nkeys].name);
			}
		}
		nkeys++;
	}
	seen = calloc(nkeys + 1, sizeof(*seen));
	if (seen == NULL) {
		return fail_nomem(c);
	}
	for (size_t i = 0; map != NULL && i < map->npairs; i++) {
		const struct pair *p = &map->pairs[i];
		size_t k;

		join_path(path, sizeof(path), prefix, p->key, p->keylen);
		if (p->keylen == 0) {
			rc = fail(c, p->line, p->col, prefix, "empty key");
			goto out;
		}
		for (k = 0; k < nkeys; k++) {
			if (strlen(table[k].name) == p->keylen &&
			    memcmp(table[k].name, p->key, p->keylen) == 0) {
				break;
			}
		}
		if (k == nkeys) {
			rc = fail(c, p->line, p->col, path, "unknown key");
			goto out;
		}
		if (seen[k] != NULL) {
			rc = fail(c, p->line, p->col, path, "duplicate key (first at line %d)",
				  seen[k]->line);
			goto out;
		}
		seen[k] = p;
		if (!absent(p->value)) {
			rc = apply(c, &table[k], p->value, base, path);
			if (rc != 0) {
				goto out;
			}
		}
	}
	for (size_t k = 0; k < nkeys; k++) {
		if (seen[k] != NULL && !absent(seen[k]->value)) {
			continue;
		}
		join_path(path, sizeof(path), prefix, table[k].name, strlen(table[k].name));
		if (seen[k] != NULL && (table[k].flags & JUKI_CONF_REQUIRED)) {
			rc =
			    fail(c, seen[k]->line, seen[k]->col, path, "required key has no value");
			goto out;
		}
		rc = apply_absent(c, &table[k], base, path, line, col);
		if (rc != 0) {
			goto out;
		}
	}
out:
	free(seen);
	return rc;
}

int
juki_conf_load_string(const char *name, const char *basedir, const char *text, size_t len,
		      const struct juki_conf_key *table, void *conf, char *err, size_t errlen)
{
	struct ctx c = {.name = name != NULL ? name : "<string>", .err = err, .errlen = errlen};
	struct node *root = NULL;
	int rc;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (text == NULL || table == NULL || conf == NULL) {
		return JUKI_EINVAL;
	}
	if (len > CONF_MAX_BYTES) {
		if (err != NULL && errlen > 0) {
			snprintf(err, errlen, "%s: larger than 1 MiB (%zu bytes)", c.name, len);
		}
		return JUKI_ECONFIG;
	}
	rc = make_basedir(basedir, c.basedir);
	if (rc != 0) {
		if (err != NULL && errlen > 0) {
			snprintf(err, errlen, "%s: base directory: %s", c.name, juki_strerror(rc));
		}
		return rc;
	}
	rc = parse_text(&c, text, len, &root);
	if (rc != 0) {
		goto out;
	}
	if (absent(root)) {
		rc = walk_map(&c, table, NULL, conf, "", 1, 1);
	} else if (root->kind != NODE_MAPPING) {
		rc =
		    fail(&c, root->line, root->col, NULL,
			 "the top level must be a mapping of keys, not %s", kind_found[root->kind]);
	} else {
		rc = walk_map(&c, table, root, conf, "", root->line, root->col);
	}
out:
	node_free(root);
	if (rc != 0) {
		juki_conf_free(table, conf);
	}
	return rc;
}

static int
read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t n = 0;
	int fd, rc = 0;

	*text = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	/* One byte over the limit tells "too large" from "exactly the limit". */
	buf = malloc(CONF_MAX_BYTES + 1);
	if (buf == NULL) {
		rc = JUKI_ENOMEM;
		goto out;
	}
	while (n < CONF_MAX_BYTES + 1) {
		ssize_t r = read(fd, buf + n, CONF_MAX_BYTES + 1 - n);

		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0) {
			break;
		}
		n += (size_t)r;
	}
	if (n > CONF_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than 1 MiB", path);
		rc = JUKI_ECONFIG;
		goto out;
	}
	*text = buf;
	*len = n;
	buf = NULL;
out:
	if (rc != 0 && rc != JUKI_ECONFIG) {
		snprintf(err, errlen, "%s: %s", path, juki_strerror(rc));
	}
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	return rc;
}

int
juki_conf_load(const char *path, const struct juki_conf_key *table, void *conf, char *err,
	       size_t errlen)
{
	char dir[PATH_MAX];
	char scratch[1];
	char *text = NULL, *slash;
	size_t len = 0;
	int rc;

	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (path == NULL || table == NULL || conf == NULL) {
		return JUKI_EINVAL;
	}
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "%s: %s", path, juki_strerror(JUKI_ENAMETOOLONG));
		return JUKI_ENAMETOOLONG;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	rc = read_file(path, &text, &len, err, errlen);
	if (rc == 0) {
		rc = juki_conf_load_string(path, dir, text, len, table, conf, err, errlen);
	}
	free(text);
	return rc;
}

static void
free_keys(const struct juki_conf_key *table, char *base)
{
	for (const struct juki_conf_key *k = table; k != NULL && k->name != NULL; k++) {
		char *field = base + k->offset;

		switch (k->type) {
		case JUKI_CONF_STRING:
		case JUKI_CONF_PATH:
		case JUKI_CONF_ADDR:
		case JUKI_CONF_IDENT: {
			char *s;

			memcpy(&s, field, sizeof(s));
			free(s);
			s = NULL;
			memcpy(field, &s, sizeof(s));
			break;
		}
		case JUKI_CONF_INT:
		case JUKI_CONF_DURATION:
		case JUKI_CONF_SIZE:
			memset(field, 0, sizeof(int64_t));
			break;
		case JUKI_CONF_BOOL:
			memset(field, 0, sizeof(bool));
			break;
		case JUKI_CONF_ENUM:
			memset(field, 0, sizeof(int));
			break;
		case JUKI_CONF_SECTION:
			free_keys(k->sub, field);
			break;
		case JUKI_CONF_LIST: {
			char *arr;
			size_t n;

			memcpy(&arr, field, sizeof(arr));
			memcpy(&n, base + k->count_offset, sizeof(n));
			for (size_t i = 0; arr != NULL && i < n; i++) {
				if (k->sub != NULL) {
					free_keys(k->sub, arr + i * k->elem_size);
				} else {
					char *s;

					memcpy(&s, arr + i * sizeof(char *), sizeof(s));
					free(s);
				}
			}
			free(arr);
			memset(field, 0, sizeof(void *));
			memset(base + k->count_offset, 0, sizeof(size_t));
			break;
		}
		}
	}
}

void
juki_conf_free(const struct juki_conf_key *table, void *conf)
{
	if (table == NULL || conf == NULL) {
		return;
	}
	free_keys(table, conf);
}

static void
type_text(char *buf, size_t len, const struct juki_conf_key *k)
{
	char bounds[80];
	size_t off = 0;
	int w;

	if (k->type == JUKI_CONF_ENUM) {
		for (int i = 0; k->enums != NULL && k->enums[i] != NULL && off < len; i++) {
			w = snprintf(buf + off, len - off, "%s%s", i > 0 ? "|" : "", k->enums[i]);
			off += w > 0 ? (size_t)w : 0;
		}
		if (off == 0) {
			snprintf(buf, len, "enum");
		}
		return;
	}
	if (k->type == JUKI_CONF_LIST) {
		fmt_bounds(bounds, sizeof(bounds), JUKI_CONF_INT, k);
		snprintf(buf, len, "list of %s%s%s",
			 k->sub != NULL ? "sections" : type_names[k->elem_type],
			 bounds[0] != '\0' ? " " : "", bounds);
		return;
	}
	if (number_type(k->type) != NULL) {
		fmt_bounds(bounds, sizeof(bounds), k->type, k);
		snprintf(buf, len, "%s%s%s", type_names[k->type], bounds[0] != '\0' ? " " : "",
			 bounds);
		return;
	}
	snprintf(buf, len, "%s", type_names[k->type]);
}

static void
attr_text(char *buf, size_t len, const struct juki_conf_key *k)
{
	size_t off = 0;
	int w;

	buf[0] = '\0';
	if (k->flags & JUKI_CONF_REQUIRED) {
		w = snprintf(buf, len, "required");
		off = w > 0 ? (size_t)w : 0;
	} else if (k->def != NULL) {
		w = snprintf(buf, len, k->def[0] == '\0' ? "default \"%s\"" : "default %s", k->def);
		off = w > 0 ? (size_t)w : 0;
	}
	if ((k->flags & JUKI_CONF_RESTART) && off < len) {
		snprintf(buf + off, len - off, "%srestart", off > 0 ? ", " : "");
	}
}

static void
print_keys(FILE *out, const struct juki_conf_key *table, const char *prefix, bool scdoc)
{
	for (const struct juki_conf_key *k = table; k != NULL && k->name != NULL; k++) {
		char name[KEYPATH_MAX], sub[KEYPATH_MAX + 2], type[512], attrs[300];

		join_path(name, sizeof(name), prefix, k->name, strlen(k->name));
		type_text(type, sizeof(type), k);
		attr_text(attrs, sizeof(attrs), k);
		if (scdoc) {
			fprintf(out, "*%s* (%s%s%s)\n", name, type, attrs[0] != '\0' ? ", " : "",
				attrs);
			if (k->help != NULL && k->help[0] != '\0') {
				fprintf(out, "\t%s\n", k->help);
			}
			fprintf(out, "\n");
		} else {
			fprintf(out, "  %s  %s", name, type);
			if (attrs[0] != '\0') {
				fprintf(out, "  (%s)", attrs);
			}
			if (k->help != NULL && k->help[0] != '\0') {
				fprintf(out, "  %s", k->help);
			}
			fprintf(out, "\n");
		}
		if (k->type == JUKI_CONF_SECTION) {
			print_keys(out, k->sub, name, scdoc);
		} else if (k->type == JUKI_CONF_LIST && k->sub != NULL) {
			snprintf(sub, sizeof(sub), "%s[]", name);
			print_keys(out, k->sub, sub, scdoc);
		}
	}
}

int
juki_conf_print_help(FILE *out, const struct juki_conf_key *table, const char *format)
{
	bool scdoc;

	if (out == NULL || table == NULL || format == NULL) {
		return JUKI_EINVAL;
	}
	if (strcmp(format, "text") == 0) {
		scdoc = false;
	} else if (strcmp(format, "scdoc") == 0) {
		scdoc = true;
	} else {
		return JUKI_EINVAL;
	}
	print_keys(out, table, "", scdoc);
	return ferror(out) ? JUKI_EIO : 0;
}
