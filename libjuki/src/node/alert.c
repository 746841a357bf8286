#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/node/alert.h"
#include "juki/node/log.h"

#define CODE_MAX  32
#define MAX_CODES 64

struct alert_rec {
	uint64_t seq;
	int64_t time_ms;
	char code[CODE_MAX];
	char peer[128];
	char addr[64];
	char detail[256];
};

struct code_count {
	char code[CODE_MAX];
	uint64_t n;
};

struct juki_alerts {
	const struct juki_clock *clock;
	struct alert_rec *ring;
	size_t capacity;
	uint64_t total;
	struct code_count counts[MAX_CODES];
	size_t ncounts;
	uint64_t other; /* counted when the code table is full */
	juki_alert_cb on_raise;
	void *on_raise_ctx;
};

struct juki_alerts *
juki_alerts_new(size_t capacity, const struct juki_clock *clock)
{
	struct juki_alerts *a;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return NULL;
	}
	a->ring = calloc(capacity ? capacity : 1, sizeof(*a->ring));
	if (a->ring == NULL) {
		free(a);
		return NULL;
	}
	a->capacity = capacity ? capacity : 1;
	a->clock = clock;
	return a;
}

void
juki_alerts_free(struct juki_alerts *alerts)
{
	if (alerts == NULL) {
		return;
	}
	free(alerts->ring);
	free(alerts);
}

static void
count(struct juki_alerts *a, const char *code)
{
	for (size_t i = 0; i < a->ncounts; i++) {
		if (strcmp(a->counts[i].code, code) == 0) {
			a->counts[i].n++;
			return;
		}
	}
	if (a->ncounts == MAX_CODES) {
		a->other++;
		return;
	}
	snprintf(a->counts[a->ncounts].code, CODE_MAX, "%s", code);
	a->counts[a->ncounts++].n = 1;
}

static void raise_alert(struct juki_alerts *alerts, int logged, const char *code, const char *peer,
			const char *addr, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static void
raise_alert(struct juki_alerts *alerts, int logged, const char *code, const char *peer,
	    const char *addr, const char *fmt, va_list ap)
{
	struct alert_rec *r;

	r = &alerts->ring[alerts->total % alerts->capacity];
	memset(r, 0, sizeof(*r));
	r->seq = ++alerts->total;
	r->time_ms = juki_clock_now_ms(alerts->clock);
	snprintf(r->code, sizeof(r->code), "%s", code);
	snprintf(r->peer, sizeof(r->peer), "%s", peer ? peer : "");
	snprintf(r->addr, sizeof(r->addr), "%s", addr ? addr : "");
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	count(alerts, r->code);
	if (logged) {
		log_warnx("alert: %s peer=%s addr=%s: %s", r->code, peer ? peer : "-",
			  addr ? addr : "-", r->detail);
	}
	if (alerts->on_raise != NULL) {
		alerts->on_raise(alerts->on_raise_ctx, r->seq, r->time_ms, r->code, r->peer,
				 r->addr, r->detail);
	}
}

void
juki_alerts_on_raise(struct juki_alerts *alerts, juki_alert_cb cb, void *ctx)
{
	alerts->on_raise = cb;
	alerts->on_raise_ctx = ctx;
}

void
juki_alert(struct juki_alerts *alerts, const char *code, const char *peer, const char *addr,
	   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	raise_alert(alerts, 1, code, peer, addr, fmt, ap);
	va_end(ap);
}

void
juki_alert_quiet(struct juki_alerts *alerts, const char *code, const char *peer, const char *addr,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	raise_alert(alerts, 0, code, peer, addr, fmt, ap);
	va_end(ap);
}

const char *
juki_alert_code_tls(enum juki_tls_failure failure)
{
	switch (failure) {
	case JUKI_TLSF_NOT_TLS:
		return "not-tls";
	case JUKI_TLSF_UNKNOWN_CA:
	case JUKI_TLSF_NO_IDENTITY:
		return "unknown-certificate";
	case JUKI_TLSF_REVOKED:
		return "revoked-certificate";
	case JUKI_TLSF_EXPIRED:
		return "expired-certificate";
	case JUKI_TLSF_NO_CERT:
		return "no-certificate";
	case JUKI_TLSF_WRONG_PEER:
		return "identity-mismatch";
	case JUKI_TLSF_KEY:
		return "key-unavailable";
	default:
		return "handshake-failed";
	}
}

json_t *
juki_alert_key_check(struct juki_alerts *alerts, struct juki_tls *tls, int *down)
{
	int token = juki_tls_on_token(tls);
	int usable = !token || juki_tls_key_check(tls) == 0;

	if (!usable && !*down) {
		juki_alert(alerts, "key-unavailable", NULL, NULL,
			   "the key on the token does not sign: the token is gone, locked or "
			   "unreachable; handshakes that need it fail");
	} else if (usable && *down) {
		log_notice("the key on the token signs again");
	}
	*down = !usable;
	return json_pack("{s:b,s:b}", "on_token", token, "usable", usable);
}

uint64_t
juki_alerts_count(const struct juki_alerts *alerts, const char *code)
{
	if (code == NULL) {
		return alerts->total;
	}
	for (size_t i = 0; i < alerts->ncounts; i++) {
		if (strcmp(alerts->counts[i].code, code) == 0) {
			return alerts->counts[i].n;
		}
	}
	return 0;
}

json_t *
juki_alerts_json(const struct juki_alerts *alerts, size_t max)
{
	json_t *root, *counts, *recent;
	uint64_t first, kept;
	char when[32];

	root = json_object();
	counts = json_object();
	recent = json_array();
	if (root == NULL || counts == NULL || recent == NULL) {
		json_decref(root);
		json_decref(counts);
		json_decref(recent);
		return NULL;
	}
	json_object_set_new(root, "total", json_integer((json_int_t)alerts->total));
	for (size_t i = 0; i < alerts->ncounts; i++) {
		json_object_set_new(counts, alerts->counts[i].code,
				    json_integer((json_int_t)alerts->counts[i].n));
	}
	if (alerts->other > 0) {
		json_object_set_new(counts, "other", json_integer((json_int_t)alerts->other));
	}
	json_object_set_new(root, "counts", counts);
	kept = alerts->total < alerts->capacity ? alerts->total : alerts->capacity;
	if (max < kept) {
		kept = max;
	}
	first = alerts->total - kept;
	for (uint64_t s = first; s < alerts->total; s++) {
		const struct alert_rec *r = &alerts->ring[s % alerts->capacity];

		juki_clock_format(r->time_ms, when, sizeof(when));
		json_array_append_new(recent,
				      json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:s}", "seq",
						(json_int_t)r->seq, "time", when, "code", r->code,
						"peer", r->peer[0] ? r->peer : NULL, "addr",
						r->addr[0] ? r->addr : NULL, "detail", r->detail));
	}
	json_object_set_new(root, "recent", recent);
	return root;
}
