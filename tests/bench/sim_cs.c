/*
 * sim_cs — many simulated municipalities (CS) in one process, for the
 * nation's peak day (scripts/sim-nation.sh, docs/benchmarks.md).
 *
 * Each municipality of the plan is a client with its own certificate
 * (pki/cs-<lgcode>.crt and .key, made before the clock starts) that speaks
 * the node protocol exactly as a juki CS does (docs/protocol.md §2-§8,
 * §10.4-§10.7): outer TLS 1.3 to the gateway, "CONNECT urn:juki:pref:NN
 * honnin", the inner TLS session with its prefectural server through the
 * tunnel, then honnin.batch messages of generated change records in frames,
 * a window of them in flight, every ack checked (its corr is the oldest
 * message in flight), and at the end a honnin.count.query for the JST day
 * whose answer must equal what was sent (total and digest).  A tunnel that
 * breaks is opened again and the unacknowledged messages are delivered
 * again byte for byte (§8.2).
 *
 * What a real CS also does and this one does not: keep its register and
 * outbox on disk.  Its records live in memory until acknowledged.
 *
 *   sim_cs --gateway HOST:PORT --pki DIR --plan FILE [--concurrency N]
 *          [--batch-records N] [--window N] [--seed N] [--ready-file PATH]
 *
 * With --ready-file every municipality's TLS identity is loaded first (as a
 * CS loads its own when it starts); then PATH is created and the program
 * waits for one byte on stdin before it connects: the caller's clock starts
 * then.
 *
 * The plan has one line per municipality: "lgcode<TAB>changes<TAB>first
 * index<TAB>address prefix".  Change i of the nation (first index + k) gets
 * the 住民票コード made from i and the seed, so codes are unique across the
 * processes of one run (given the same --seed).  One
 * JSON line per municipality is written to stdout when it is done:
 * {"lgcode", "changes", "digest", "status": "ok"|"mismatch"|"failed",
 *  "pref_total", "pref_digest", "attempts", "done_ms", "detail"}.
 * Exit status 0 when every municipality is "ok".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/wire/msg.h"
#include "juki/wire/net.h"
#include "juki/wire/tls.h"

#define FRAME_MAX       (4u << 20)
#define STEP_TIMEOUT_MS 30000
#define MAX_ATTEMPTS    8

static const char *const SURNAMES[] = {"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺",   "山本",
				       "中村", "小林", "加藤", "吉田", "山田", "佐々木", "山口",
				       "松本", "井上", "木村", "林",   "斎藤", "清水"};
static const char *const GIVEN[] = {"花子", "太郎", "陽菜", "蓮",   "結衣", "湊",     "葵",
				    "大翔", "凛",   "悠真", "美咲", "翔太", "さくら", "健一",
				    "由美", "直樹", "恵子", "誠",   "彩",   "翼"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct batch {
	char id[JUKI_UUID_LEN + 1];
	char *text;
	size_t len;
	long nrec;
	int query; /* the honnin.count.query at the end */
};

struct muni {
	char lgcode[8];
	char address[256];
	struct juki_ident self, pref;
	long n, base, made, acked;
	struct batch *q;               /* unacknowledged, in order: q[head..tail) */
	size_t qcap, head, tail, sent; /* sent: q[head..sent) are on the current tunnel */
	int query_queued;
	unsigned char digest[32];
	struct juki_tls *tls;
	struct juki_chan *chan;
	struct event *timer;
	int attempts;
	int finished;
};

static struct {
	struct event_base *base;
	struct juki_net_group *group;
	const char *gateway, *pki;
	long batch_records;
	size_t window;
	uint64_t seed;
	struct muni *munis;
	size_t nmunis, next, active, concurrency, failed;
	char today[11];
	int64_t t0;
	struct juki_clock clock;
} g = {.batch_records = 5000, .window = 64, .concurrency = 64};

static void start_next(void);
static void connect_muni(struct muni *m);

static char
jumin_check(const char *first10)
{
	static const int w[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
	int s = 0;

	for (int i = 0; i < 10; i++) {
		s += (first10[i] - '0') * w[i];
	}
	s %= 11;
	return s <= 1 ? '0' : (char)('0' + 11 - s);
}

/* The code of the nation's change i: a bijection of [0, 10^10) (the multiplier is odd and
 * not a multiple of 5), so distinct changes never share a code. */
static void
code_of(uint64_t i, char out[12])
{
	uint64_t v = (i * 2654435761ull + g.seed) % 10000000000ull;

	snprintf(out, 12, "%010" PRIu64, v);
	out[10] = jumin_check(out);
	out[11] = '\0';
}

static void
hex32(const unsigned char d[32], char out[65])
{
	for (int i = 0; i < 32; i++) {
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	}
}

static void
emit(struct muni *m, const char *status, const json_t *result, const char *detail)
{
	char mine[65];
	json_t *o;
	char *text;

	hex32(m->digest, mine);
	o = json_pack("{s:s,s:I,s:s,s:s,s:i,s:I}", "lgcode", m->lgcode, "changes", (json_int_t)m->n,
		      "digest", mine, "status", status, "attempts", m->attempts, "done_ms",
		      (json_int_t)(juki_clock_mono_ms() - g.t0));
	if (result != NULL) {
		json_object_set(o, "pref_total", json_object_get(result, "total"));
		json_object_set(o, "pref_digest", json_object_get(result, "digest"));
	}
	if (detail != NULL) {
		json_object_set_new(o, "detail", json_string(detail));
	}
	text = json_dumps(o, JSON_COMPACT);
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(o);
}

static void
finish(struct muni *m, const char *status, const json_t *result, const char *detail)
{
	if (m->finished) {
		return;
	}
	m->finished = 1;
	if (strcmp(status, "ok") != 0) {
		g.failed++;
	}
	emit(m, status, result, detail);
	/*
	 * Freed now, not closed after a flush: every frame sent was answered
	 * (or the municipality failed), and a channel left to flush after the
	 * loop has ended would never be freed.  net.c touches no channel after
	 * its readable and drained callbacks return.
	 */
	if (m->chan != NULL) {
		juki_chan_free(m->chan);
		m->chan = NULL;
	}
	if (m->timer != NULL) {
		event_free(m->timer);
		m->timer = NULL;
	}
	for (size_t i = m->head; i < m->tail; i++) {
		free(m->q[i].text);
	}
	free(m->q);
	m->q = NULL;
	juki_tls_free(m->tls);
	m->tls = NULL;
	g.active--;
	start_next();
}

static int
push(struct muni *m, struct batch *b)
{
	if (m->tail == m->qcap) {
		size_t cap = m->qcap ? m->qcap * 2 : 8;
		struct batch *q = realloc(m->q, cap * sizeof(*q));

		if (q == NULL) {
			return JUKI_ENOMEM;
		}
		m->q = q;
		m->qcap = cap;
	}
	m->q[m->tail++] = *b;
	return 0;
}

static int
envelope(struct muni *m, const char *type, struct batch *b, char **out, size_t *cap, size_t *len)
{
	char when[40];
	int64_t now = juki_clock_now_ms(&g.clock);
	int n;

	if (juki_uuid7(now, b->id) != 0 || juki_clock_format(now, when, sizeof(when)) != 0) {
		return JUKI_EIO;
	}
	n = snprintf(*out, *cap,
		     "{\"v\":1,\"id\":\"%s\",\"type\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
		     "\"time\":\"%s\",\"corr\":null,\"body\":",
		     b->id, type, m->self.urn, m->pref.urn, when);
	*len = (size_t)n;
	return 0;
}

static int
grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap) {
		return 0;
	}
	size_t c = *cap * 2 > need ? *cap * 2 : need + 4096;
	char *p = realloc(*buf, c);

	if (p == NULL) {
		return JUKI_ENOMEM;
	}
	*buf = p;
	*cap = c;
	return 0;
}

/* The next honnin.batch of m: up to batch_records change records, made now. */
static int
make_batch(struct muni *m)
{
	struct batch b = {0};
	size_t cap = 65536, len;
	char *buf = malloc(cap);
	char recorded[40];
	int64_t now = juki_clock_now_ms(&g.clock);

	if (buf == NULL) {
		return JUKI_ENOMEM;
	}
	if (envelope(m, "honnin.batch", &b, &buf, &cap, &len) != 0) {
		free(buf);
		return JUKI_EIO;
	}
	juki_clock_format(now, recorded, sizeof(recorded));
	len += (size_t)snprintf(buf + len, cap - len, "{\"records\":[");
	while (b.nrec < g.batch_records && m->made < m->n) {
		uint64_t i = (uint64_t)(m->base + m->made);
		char code[12], key[64];
		unsigned char d[32];
		int kn;

		code_of(i, code);
		if (grow(&buf, &cap, len + 1024) != 0) {
			free(buf);
			return JUKI_ENOMEM;
		}
		len += (size_t)snprintf(
		    buf + len, cap - len,
		    "%s{\"code\":\"%s\",\"lgcode\":\"%s\",\"version\":1,\"reason\":\"職権記載\","
		    "\"reason_date\":\"%s\",\"recorded\":\"%s\",\"person\":{\"name\":\"%s %s\","
		    "\"birth\":\"%04d-%02d-%02d\",\"sex\":%d,\"address\":\"%s%d丁目%d番%d号\"}}",
		    b.nrec ? "," : "", code, m->lgcode, g.today, recorded,
		    SURNAMES[i % NELEM(SURNAMES)], GIVEN[(i / NELEM(SURNAMES)) % NELEM(GIVEN)],
		    1930 + (int)(i % 90), 1 + (int)(i / 7 % 12), 1 + (int)(i / 3 % 28),
		    1 + (int)(i % 2), m->address, 1 + (int)(i % 9), 1 + (int)(i / 9 % 30),
		    1 + (int)(i / 11 % 20));
		kn = snprintf(key, sizeof(key), "%s|%s|1", code, m->lgcode);
		SHA256((const unsigned char *)key, (size_t)kn, d);
		for (int k = 0; k < 32; k++) {
			m->digest[k] ^= d[k];
		}
		b.nrec++;
		m->made++;
	}
	len += (size_t)snprintf(buf + len, cap - len, "]}}");
	b.text = buf;
	b.len = len;
	if (push(m, &b) != 0) {
		free(buf);
		return JUKI_ENOMEM;
	}
	return 0;
}

static int
make_query(struct muni *m)
{
	struct batch b = {.query = 1};
	size_t cap = 1024, len;
	char *buf = malloc(cap);
	char hex[65];

	if (buf == NULL) {
		return JUKI_ENOMEM;
	}
	if (envelope(m, "honnin.count.query", &b, &buf, &cap, &len) != 0) {
		free(buf);
		return JUKI_EIO;
	}
	hex32(m->digest, hex);
	len += (size_t)snprintf(buf + len, cap - len,
				"{\"day\":\"%s\",\"sent\":{\"total\":%ld,\"digest\":\"%s\"}}}",
				g.today, m->n, hex);
	b.text = buf;
	b.len = len;
	if (push(m, &b) != 0) {
		free(buf);
		return JUKI_ENOMEM;
	}
	m->query_queued = 1;
	return 0;
}

/* Send what the window allows; make batches as they are needed. */
static void
pump(struct muni *m)
{
	while (m->chan != NULL && m->sent - m->head < g.window &&
	       juki_chan_pending(m->chan) < 2 * FRAME_MAX) {
		if (m->sent == m->tail) {
			int rc = 0;

			if (m->made < m->n) {
				rc = make_batch(m);
			} else if (!m->query_queued && m->head == m->tail) {
				rc = make_query(m); /* after every record is acknowledged */
			} else {
				return;
			}
			if (rc != 0) {
				finish(m, "failed", NULL, juki_strerror(rc));
				return;
			}
		}
		if (juki_chan_send_raw(m->chan, m->q[m->sent].text, m->q[m->sent].len) != 0) {
			finish(m, "failed", NULL, "cannot queue a frame");
			return;
		}
		m->sent++;
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_muni(arg);
}

static void
broken(struct muni *m, const char *why)
{
	struct timeval tv;

	if (m->chan != NULL) {
		juki_chan_free(m->chan);
		m->chan = NULL;
	}
	m->sent = m->head; /* deliver the unacknowledged again, byte for byte */
	if (m->attempts >= MAX_ATTEMPTS) {
		finish(m, "failed", NULL, why);
		return;
	}
	fprintf(stderr, "sim_cs: %s: %s; again (attempt %d)\n", m->lgcode, why, m->attempts + 1);
	tv.tv_sec = 0;
	tv.tv_usec = 200000 * m->attempts;
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec = tv.tv_usec / 1000000;
		tv.tv_usec %= 1000000;
	}
	if (m->timer == NULL) {
		m->timer = evtimer_new(g.base, retry_cb, m);
	}
	if (m->timer == NULL) {
		finish(m, "failed", NULL, "out of memory");
		return;
	}
	evtimer_add(m->timer, &tv);
}

static void
readable(struct juki_chan *chan, void *arg)
{
	struct muni *m = arg;
	json_t *doc;
	int rc;

	while (!m->finished && m->chan == chan && (rc = juki_chan_recv(chan, &doc)) != 0) {
		struct juki_msg msg = {0};
		struct juki_ack ack;
		const char *reason = NULL;
		struct batch *b;

		if (rc < 0) {
			broken(m, "a frame that is not a message");
			return;
		}
		if (juki_msg_from_json(doc, &msg, &reason, NULL, 0) != 0 ||
		    strcmp(msg.type, JUKI_MSG_ACK) != 0 || juki_ack_parse(&msg, &ack) != 0 ||
		    strcmp(msg.from, m->pref.urn) != 0 || strcmp(msg.to, m->self.urn) != 0 ||
		    m->head == m->sent || strcmp(ack.corr, m->q[m->head].id) != 0) {
			juki_msg_clear(&msg);
			json_decref(doc);
			broken(m, "not an ack of the oldest message in flight");
			return;
		}
		b = &m->q[m->head];
		if (ack.status == JUKI_ACK_REJECTED) {
			char why[512];

			snprintf(why, sizeof(why), "rejected: %s: %s", ack.reason, ack.detail);
			juki_msg_clear(&msg);
			json_decref(doc);
			finish(m, "failed", NULL, why);
			return;
		}
		if (b->query) {
			const json_t *res = ack.result;
			char mine[65];
			const char *theirs = json_string_value(json_object_get(res, "digest"));
			json_int_t total = json_integer_value(json_object_get(res, "total"));

			hex32(m->digest, mine);
			if (res != NULL && theirs != NULL && strcmp(theirs, mine) == 0 &&
			    total == m->n) {
				finish(m, "ok", res, NULL);
			} else {
				finish(m, "mismatch", res, "the prefecture's count differs");
			}
			juki_msg_clear(&msg);
			json_decref(doc);
			return;
		}
		m->acked += b->nrec;
		free(b->text);
		m->head++;
		juki_msg_clear(&msg);
		json_decref(doc);
	}
	if (!m->finished && m->chan == chan) {
		pump(m);
	}
}

static void
closed(struct juki_chan *chan, int rc, const char *why, void *arg)
{
	struct muni *m = arg;

	(void)rc;
	if (m->chan == chan) {
		broken(m, why ? why : "closed");
	} else {
		juki_chan_free(chan);
	}
}

static void
drained(struct juki_chan *chan, void *arg)
{
	struct muni *m = arg;

	if (m->chan == chan && !m->finished) {
		pump(m);
	}
}

static void
inner_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	static const struct juki_chan_cbs cbs = {
	    .readable = readable, .closed = closed, .drained = drained};
	struct muni *m = arg;

	(void)f;
	if (bev == NULL) {
		broken(m, why);
		return;
	}
	m->chan = juki_chan_new(bev, peer, "honnin", FRAME_MAX, 0, &cbs, m);
	if (m->chan == NULL) {
		broken(m, "out of memory");
		return;
	}
	pump(m);
}

static void
answer_line(struct bufferevent *bev, const char *line, int rc, void *arg)
{
	struct muni *m = arg;

	if (rc != 0 || strcmp(line, "OK") != 0) {
		char why[300];

		snprintf(why, sizeof(why), "gateway: %s", rc != 0 ? juki_strerror(rc) : line);
		bufferevent_free(bev);
		broken(m, why);
		return;
	}
	if (juki_net_wrap_tls(g.group, m->tls, bev, JUKI_TLS_CLIENT, &m->pref, STEP_TIMEOUT_MS,
			      inner_done, m) != 0) {
		broken(m, "cannot start the inner session");
	}
}

static void
outer_done(struct bufferevent *bev, const struct juki_ident *peer, enum juki_tls_failure f,
	   const char *why, void *arg)
{
	struct muni *m = arg;
	char line[JUKI_LINE_MAX];

	(void)f;
	if (bev == NULL) {
		broken(m, why);
		return;
	}
	if (peer->kind != JUKI_KIND_FWGATE) {
		bufferevent_free(bev);
		broken(m, "the gateway's address answered with another certificate");
		return;
	}
	snprintf(line, sizeof(line), "CONNECT %s honnin", m->pref.urn);
	if (juki_net_write_line(bev, line) != 0) {
		bufferevent_free(bev);
		broken(m, "out of memory");
		return;
	}
	juki_net_read_line(g.group, bev, JUKI_LINE_MAX, STEP_TIMEOUT_MS, answer_line, m);
}

/* The municipality's TLS identity: its own certificate and key, the network's CA and CRL. */
static int
load_tls(struct muni *m, char *err, size_t errlen)
{
	char cert[4096], key[4096], ca[4096], crl[4096];
	struct juki_tls_conf conf = {.cert = cert, .key = key, .ca = ca, .crl = crl};

	snprintf(cert, sizeof(cert), "%s/cs-%s.crt", g.pki, m->lgcode);
	snprintf(key, sizeof(key), "%s/cs-%s.key", g.pki, m->lgcode);
	snprintf(ca, sizeof(ca), "%s/ca.crt", g.pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", g.pki);
	return juki_tls_new(&conf, &m->tls, err, errlen);
}

static void
connect_muni(struct muni *m)
{
	m->attempts++;
	if (m->tls == NULL) {
		char err[256];

		if (load_tls(m, err, sizeof(err)) != 0) {
			m->attempts = MAX_ATTEMPTS;
			finish(m, "failed", NULL, err);
			return;
		}
	}
	if (juki_net_connect_tls(g.group, m->tls, g.gateway, NULL, STEP_TIMEOUT_MS, outer_done,
				 m) != 0) {
		broken(m, "cannot connect to the gateway");
	}
}

static void
start_next(void)
{
	while (g.active < g.concurrency && g.next < g.nmunis) {
		struct muni *m = &g.munis[g.next++];

		g.active++;
		connect_muni(m);
	}
	if (g.active == 0 && g.next == g.nmunis) {
		event_base_loopbreak(g.base);
	}
}

static int
read_plan(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t cap = 0;

	if (f == NULL) {
		fprintf(stderr, "sim_cs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		struct muni *m;
		char *lg = strtok(line, "\t\n"), *n = strtok(NULL, "\t\n"),
		     *base = strtok(NULL, "\t\n"), *addr = strtok(NULL, "\t\n");
		char id[3];

		if (lg == NULL || n == NULL || base == NULL || addr == NULL) {
			fprintf(stderr, "sim_cs: %s: a line without four fields\n", path);
			fclose(f);
			return -1;
		}
		if (g.nmunis == cap) {
			cap = cap ? cap * 2 : 256;
			g.munis = realloc(g.munis, cap * sizeof(*g.munis));
			if (g.munis == NULL) {
				fclose(f);
				return -1;
			}
		}
		m = &g.munis[g.nmunis];
		memset(m, 0, sizeof(*m));
		snprintf(m->lgcode, sizeof(m->lgcode), "%s", lg);
		snprintf(m->address, sizeof(m->address), "%s", addr);
		m->n = strtol(n, NULL, 10);
		m->base = strtol(base, NULL, 10);
		memcpy(id, lg, 2);
		id[2] = '\0';
		if (juki_ident_node(JUKI_KIND_CS, m->lgcode, &m->self) != 0 ||
		    juki_ident_node(JUKI_KIND_PREF, id, &m->pref) != 0 || m->n < 1) {
			fprintf(stderr, "sim_cs: %s: bad line for %s\n", path, lg);
			fclose(f);
			return -1;
		}
		g.nmunis++;
	}
	fclose(f);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: sim_cs --gateway HOST:PORT --pki DIR --plan FILE [--concurrency N]"
			" [--batch-records N] [--window N] [--seed N] [--ready-file PATH]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"gateway", 1, NULL, 'g'},
					     {"pki", 1, NULL, 'p'},
					     {"plan", 1, NULL, 'l'},
					     {"concurrency", 1, NULL, 'c'},
					     {"batch-records", 1, NULL, 'b'},
					     {"window", 1, NULL, 'w'},
					     {"seed", 1, NULL, 's'},
					     {"ready-file", 1, NULL, 'r'},
					     {NULL, 0, NULL, 0}};
	const char *plan = NULL, *ready_file = NULL;
	int c;
	time_t jst;
	struct tm tm;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			g.gateway = optarg;
			break;
		case 'p':
			g.pki = optarg;
			break;
		case 'l':
			plan = optarg;
			break;
		case 'c':
			g.concurrency = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			g.batch_records = strtol(optarg, NULL, 10);
			break;
		case 'w':
			g.window = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			ready_file = optarg;
			break;
		case 's':
			g.seed = strtoull(optarg, NULL, 10) % 10000000000ull;
			break;
		default:
			usage();
		}
	}
	if (g.gateway == NULL || g.pki == NULL || plan == NULL || g.concurrency < 1 ||
	    g.batch_records < 1 || g.batch_records > 100000 || g.window < 1) {
		usage();
	}
	if (read_plan(plan) != 0) {
		return 1;
	}
	/* The JST day (UTC+9) of the records: their reason_date and recorded day. */
	jst = time(NULL) + 9 * 3600;
	gmtime_r(&jst, &tm);
	strftime(g.today, sizeof(g.today), "%Y-%m-%d", &tm);
	g.base = event_base_new();
	g.group = g.base ? juki_net_group_new(g.base) : NULL;
	if (g.group == NULL) {
		fprintf(stderr, "sim_cs: out of memory\n");
		return 1;
	}
	if (ready_file != NULL) {
		/* As a CS has its identity loaded when it starts: before the clock. */
		FILE *f;
		char go;

		for (size_t i = 0; i < g.nmunis; i++) {
			char err[256];

			if (load_tls(&g.munis[i], err, sizeof(err)) != 0) {
				fprintf(stderr, "sim_cs: %s: %s\n", g.munis[i].lgcode, err);
				return 1;
			}
		}
		f = fopen(ready_file, "w");
		if (f == NULL || fclose(f) != 0) {
			fprintf(stderr, "sim_cs: %s: %s\n", ready_file, strerror(errno));
			return 1;
		}
		if (fread(&go, 1, 1, stdin) != 1) {
			return 1; /* told to stop */
		}
	}
	g.t0 = juki_clock_mono_ms();
	start_next();
	if (g.nmunis > 0) {
		event_base_dispatch(g.base);
	}
	juki_net_group_free(g.group);
	event_base_free(g.base);
	free(g.munis);
	return g.failed ? 1 : 0;
}
