/*
 * juki — a growing buffer of JSON text, written straight from values (no
 * tree): strings escaped as jansson escapes them, so the text is byte for
 * byte what json_dumps(JSON_COMPACT) would write of the same values.
 */
#ifndef JUKI_TEXT_H
#define JUKI_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct juki_text {
	char *buf; /* '\0'-terminated once anything is written; malloc'd */
	size_t len, cap;
};

/* juki_text_put() - append n bytes of s as they are: 0 or JUKI_ENOMEM. */
int juki_text_put(struct juki_text *t, const char *s, size_t n);

/* juki_text_lit() - append the '\0'-terminated s as it is. */
int juki_text_lit(struct juki_text *t, const char *s);

/* juki_text_str() - append s as a JSON string (non-ASCII UTF-8 as is). */
int juki_text_str(struct juki_text *t, const char *s);

/* juki_text_int() - append v in decimal. */
int juki_text_int(struct juki_text *t, int64_t v);

/* juki_text_free() - release t's buffer; t is empty again. */
void juki_text_free(struct juki_text *t);

#endif
