/*
 * A growing buffer of JSON text (text.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/base/error.h"
#include "juki/base/text.h"

int
juki_text_put(struct juki_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 1024;
		char *grown;

		while (cap < t->len + n + 1) {
			cap *= 2;
		}
		if ((grown = realloc(t->buf, cap)) == NULL) {
			return JUKI_ENOMEM;
		}
		t->buf = grown;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return 0;
}

int
juki_text_lit(struct juki_text *t, const char *s)
{
	return juki_text_put(t, s, strlen(s));
}

int
juki_text_str(struct juki_text *t, const char *s)
{
	const char *run = s;
	int rc = juki_text_put(t, "\"", 1);

	for (; rc == 0 && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];

		if (ch != '"' && ch != '\\' && ch >= 0x20) {
			continue;
		}
		if ((rc = juki_text_put(t, run, (size_t)(s - run))) != 0) {
			break;
		}
		esc[0] = '\\';
		esc[2] = '\0';
		switch (ch) {
		case '"':
		case '\\':
			esc[1] = (char)ch;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", ch);
		}
		rc = juki_text_lit(t, esc);
		run = s + 1;
	}
	if (rc == 0) {
		rc = juki_text_put(t, run, (size_t)(s - run));
	}
	return rc == 0 ? juki_text_put(t, "\"", 1) : rc;
}

int
juki_text_int(struct juki_text *t, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	return juki_text_lit(t, num);
}

void
juki_text_free(struct juki_text *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}
