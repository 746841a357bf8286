/*
 * Fuzz target: the tunnel request line ("CONNECT <urn> <service>" to a
 * gateway, "FROM <urn> <service>" to a node).  The input is what arrives on
 * the connection: it is read with juki_net_read_line() as the gateway and
 * the node read it, delivered in pieces, and the line (and the raw input as
 * a string, for lines longer than the reader allows) goes through
 * juki_net_parse_request() with both verbs.  A request that is accepted
 * must be the canonical spelling of what was parsed, byte for byte: the
 * gateway logs and forwards that spelling, not the caller's.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/net.h"
#include "juki/wire/policy.h"

/* One base for the process: the reader needs one for its timeout. */
static struct event_base *base;
static struct juki_net_group *steps;

struct line_result {
	int calls;
	int rc;
	char line[JUKI_LINE_MAX + 1];
};

static void
on_line(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct line_result *r = arg;

	(void)bev;
	r->calls++;
	r->rc = rc;
	FUZZ_ASSERT((line != NULL) == (rc == 0));
	if (line != NULL) {
		FUZZ_ASSERT(strlen(line) <= JUKI_LINE_MAX);
		memcpy(r->line, line, strlen(line) + 1);
	}
}

static void
check_request(const char *line)
{
	static const char *const verbs[] = {"CONNECT", "FROM"};

	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		struct juki_ident ident;
		enum juki_service svc = JUKI_SVC_MONITOR;
		const char *why = NULL;
		char again[3 * JUKI_URN_MAX];
		int rc;

		rc = juki_net_parse_request(line, verbs[v], &ident, &svc, &why);
		if (rc != 0) {
			FUZZ_ASSERT(rc == JUKI_EFORMAT && why != NULL && why[0] != '\0');
			FUZZ_ASSERT(svc == JUKI_SVC_NONE);
			continue;
		}
		FUZZ_ASSERT(ident.kind != JUKI_KIND_NONE && ident.kind != JUKI_KIND_OP);
		FUZZ_ASSERT(svc != JUKI_SVC_NONE &&
			    juki_service_parse(juki_service_name(svc)) == svc);
		snprintf(again, sizeof(again), "%s %s %s", verbs[v], ident.urn,
			 juki_service_name(svc));
		FUZZ_ASSERT(strcmp(again, line) == 0);
	}
}

/* A pair always defers its callbacks: run what is due, without waiting. */
static void
pump(void)
{
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) != -1);
}

/* What juki_net_read_line() must make of the bytes, from the bytes alone. */
static void
expect_line(const uint8_t *data, size_t size, int *rc, char *line)
{
	const uint8_t *lf = memchr(data, '\n', size);
	size_t n;

	line[0] = '\0';
	if (lf == NULL) {
		*rc = size > JUKI_LINE_MAX ? JUKI_ETOOBIG : JUKI_ECLOSED;
		return;
	}
	n = (size_t)(lf - data);
	if (n > JUKI_LINE_MAX) {
		*rc = JUKI_ETOOBIG;
		return;
	}
	if (n > 0 && data[n - 1] == '\r') {
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		if (data[i] < 0x20 || data[i] == 0x7f) {
			*rc = JUKI_EFORMAT;
			return;
		}
	}
	memcpy(line, data, n);
	line[n] = '\0';
	*rc = 0;
}

static void
read_line(const uint8_t *data, size_t size)
{
	struct bufferevent *pair[2] = {NULL, NULL};
	struct line_result r = {0};
	char want[JUKI_LINE_MAX + 2];
	size_t pos = 0, piece = 0;
	int want_rc;

	FUZZ_ASSERT(bufferevent_pair_new(base, 0, pair) == 0);
	FUZZ_ASSERT(bufferevent_enable(pair[0], EV_WRITE) == 0);
	juki_net_read_line(steps, pair[1], 0, 10000, on_line, &r);
	pump();
	/* Pieces of varying size: the reader must wait for the end of the line. */
	while (r.calls == 0 && pos < size) {
		size_t n = 1 + (piece++ * 5) % 11;

		if (n > size - pos) {
			n = size - pos;
		}
		FUZZ_ASSERT(bufferevent_write(pair[0], data + pos, n) == 0);
		pos += n;
		pump();
	}
	if (r.calls == 0) {
		/* The caller hangs up. */
		bufferevent_flush(pair[0], EV_WRITE, BEV_FINISHED);
		pump();
	}
	FUZZ_ASSERT(r.calls == 1);
	expect_line(data, size, &want_rc, want);
	FUZZ_ASSERT(r.rc == want_rc);
	if (r.rc == 0) {
		FUZZ_ASSERT(strcmp(r.line, want) == 0);
		check_request(r.line);
	}
	bufferevent_free(pair[1]);
	bufferevent_free(pair[0]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	base = event_base_new();
	steps = juki_net_group_new(base);
	FUZZ_ASSERT(base != NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	read_line(data, size);
	check_request(s);
	free(s);
	return 0;
}
