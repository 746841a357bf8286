#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>

#include "gateway.h"
#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/node/alert.h"
#include "juki/node/daemon.h"
#include "juki/node/inbound.h"
#include "juki/node/log.h"
#include "juki/node/outbound.h"
#include "juki/store/outbox.h"
#include "juki/store/store.h"
#include "juki/wire/frame.h"
#include "juki/wire/msg.h"
#include "juki/wire/pki.h"
#include "juki/wire/policy.h"
#include "juki/wire/tls.h"

#include "helpers.h"

/*
 * A mini network in one process: node A (cs:271004) delivers its outbox
 * through a real gateway (fwgate:east, the daemon's own code) to node B
 * (cs:131016), whose inbound applies messages with the handlers below.
 *
 * The gateway runs juki_daemon_main() in a thread of its own with its own
 * event base; A and B share the test's base, driven by run_until().  The
 * two threads share nothing but sockets and two pipes (ready, stop).
 */

#define A_URN  "urn:juki:cs:271004"
#define B_URN  "urn:juki:cs:131016"
#define GW_URN "urn:juki:fwgate:east"

#define WAIT_MS 10000

/* Receiver B: what its handlers did. */
struct receiver {
	struct juki_store *store;
	int calls;
	int fail_left;     /* "fail" messages fail this many times, then apply */
	int calls_of[100]; /* handler calls by n */
	int committed;
};

/* One ack as the sender saw it. */
struct ack_seen {
	int64_t seq;
	char msg_id[JUKI_UUID_LEN + 1];
	char type[JUKI_TYPE_MAX];
	enum juki_ack_status status;
	char reason[JUKI_REASON_MAX];
	char detail[JUKI_DETAIL_MAX];
	int in_txn;
	int64_t in_flight; /* as juki_outbound_status() showed it during the ack */
};

/* Sender A: the acks it was given. */
struct sender {
	struct juki_store *store;
	struct juki_outbound *ob;
	struct ack_seen acks[200];
	int nacks;
	int fail_acks; /* the next this many on_ack calls fail */
	int64_t max_in_flight;
};

/* The gateway thread. */
struct gateway {
	char conf[160];
	char sock[160];
	pthread_t thread;
	int ready[2]; /* gateway -> test: 'R' started, 'E' juki_daemon_main() returned */
	int stop[2];  /* test -> gateway */
	int status;
	int running;
};

struct fix {
	char tmp[64];
	char pki[128];
	char policy_path[160];
	char err[512];
	struct juki_clock clock;
	struct juki_tls *tls_a, *tls_b;
	struct juki_policy *policy;
	struct juki_alerts *alerts_a, *alerts_b;
	struct event_base *base;
	struct juki_inbound *in;
	struct receiver recv;
	struct sender send;
	struct gateway gw;
	char gw_addr[64];
	int closed_fd; /* holds closed_addr: bound, never listening */
	char closed_addr[64];
	int closed2_fd;
	char closed2_addr[64];
	int case_no;
};

/* The gateway's start op has no argument of its own: the running one is named here. */
static struct gateway *gw_current;

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static struct juki_tls *
load_tls(struct fix *f, const char *name)
{
	char cert[256], key[256], ca[256], crl[256];
	struct juki_tls_conf conf = {.cert = cert, .key = key, .ca = ca, .crl = crl};
	struct juki_tls *tls = NULL;

	snprintf(cert, sizeof(cert), "%s/%s.crt", f->pki, name);
	snprintf(key, sizeof(key), "%s/%s.key", f->pki, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", f->pki);
	if (juki_tls_new(&conf, &tls, f->err, sizeof(f->err)) != 0) {
		return NULL;
	}
	return tls;
}

static const char policy_text[] =
    "version: 1\n"
    "rules:\n"
    "  - { service: muni, from: cs, to: cs }\n"
    "  - { service: honnin, from: cs, to: pref, same_prefecture: true }\n";

static int
group_setup(void **state)
{
	static const char *const urns[] = {A_URN, B_URN, GW_URN};
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	*state = f;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "io") == NULL) {
		return -1;
	}
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 30, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	for (size_t i = 0; i < sizeof(urns) / sizeof(urns[0]); i++) {
		if (juki_pki_issue(f->pki, urns[i], 30, NULL, f->err, sizeof(f->err)) != 0) {
			return -1;
		}
	}
	snprintf(f->policy_path, sizeof(f->policy_path), "%s/policy.yaml", f->tmp);
	write_file(f->policy_path, policy_text);
	f->tls_a = load_tls(f, "cs-271004");
	f->tls_b = load_tls(f, "cs-131016");
	if (f->tls_a == NULL || f->tls_b == NULL ||
	    juki_policy_load(f->policy_path, &f->policy, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	struct fix *f = *state;
	int rc = 0;

	if (f == NULL) {
		return 0;
	}
	juki_tls_free(f->tls_a);
	juki_tls_free(f->tls_b);
	juki_policy_free(f->policy);
	if (f->tmp[0] != '\0') {
		rc = test_rm_rf(f->tmp);
	}
	free(f);
	ERR_clear_error();
	return rc;
}

/* A 127.0.0.1 port held by a bound socket that never listens: connecting is refused. */
static int
hold_port(char *addr, size_t len, int reuse)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (reuse) {
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

/* The gateway thread. */

static void
gw_stop_requested(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	juki_daemon_stop(arg);
}

static int
gw_start(struct juki_daemon *d, void *conf, void **node, char *err, size_t errlen)
{
	struct gateway *g = gw_current;
	int rc = fwgate_ops.start(d, conf, node, err, errlen);

	if (rc != 0) {
		return rc;
	}
	if (event_base_once(juki_daemon_base(d), g->stop[0], EV_READ, gw_stop_requested, d, NULL) !=
	    0) {
		snprintf(err, errlen, "cannot watch the stop pipe");
		fwgate_ops.stop(d, *node);
		*node = NULL;
		return JUKI_ENOMEM;
	}
	(void)!write(g->ready[1], "R", 1);
	return 0;
}

static void *
gw_main(void *arg)
{
	struct gateway *g = arg;
	struct juki_daemon_ops ops = fwgate_ops;
	char name[] = "juki-fwgated", flag[] = "-f";
	char *argv[] = {name, flag, g->conf, NULL};

	ops.start = gw_start;
	/* getopt's state is the process's: start its scan afresh for each gateway. */
	optind = 0;
	g->status = juki_daemon_main(3, argv, &ops);
	(void)!write(g->ready[1], "E", 1);
	return NULL;
}

static char
wait_byte(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b = 0;

	if (poll(&p, 1, WAIT_MS) != 1 || read(fd, &b, 1) != 1) {
		return 0;
	}
	return b;
}

static void
gateway_start(struct fix *f, const char *inbound_addr)
{
	struct gateway *g = &f->gw;
	char text[2048];
	int hold;

	/*
	 * The config takes no port 0: hold a free port with SO_REUSEADDR while
	 * the gateway binds it (it may, as nothing listens there yet).
	 */
	hold = hold_port(f->gw_addr, sizeof(f->gw_addr), 1);
	snprintf(g->conf, sizeof(g->conf), "%s/fwgated-%d.yaml", f->tmp, f->case_no);
	snprintf(g->sock, sizeof(g->sock), "%s/fwgated-%d.sock", f->tmp, f->case_no);
	snprintf(text, sizeof(text),
		 "node: %s\n"
		 "tls:\n"
		 "  cert: %s/fwgate-east.crt\n"
		 "  key: %s/fwgate-east.key\n"
		 "  ca: %s/ca.crt\n"
		 "  crl: %s/crl.pem\n"
		 "listen: ['%s']\n"
		 "policy: %s\n"
		 "control: %s\n"
		 "log_level: warning\n"
		 "directory:\n"
		 "  - { node: '%s', address: '%s' }\n"
		 "limits:\n"
		 "  handshake_timeout: 5s\n"
		 "  line_timeout: 5s\n"
		 "  connect_timeout: 5s\n",
		 GW_URN, f->pki, f->pki, f->pki, f->pki, f->gw_addr, f->policy_path, g->sock, B_URN,
		 inbound_addr);
	write_file(g->conf, text);
	assert_int_equal(pipe(g->ready), 0);
	assert_int_equal(pipe(g->stop), 0);
	gw_current = g;
	assert_int_equal(pthread_create(&g->thread, NULL, gw_main, g), 0);
	g->running = 1;
	if (wait_byte(g->ready[0]) != 'R') {
		close(hold);
		fail_msg("the gateway did not start (status %d)", g->status);
	}
	close(hold);
}

static void
gateway_stop(struct fix *f)
{
	struct gateway *g = &f->gw;

	if (!g->running) {
		return;
	}
	(void)!write(g->stop[1], "x", 1);
	pthread_join(g->thread, NULL);
	g->running = 0;
	gw_current = NULL;
	close(g->ready[0]);
	close(g->ready[1]);
	close(g->stop[0]);
	close(g->stop[1]);
}

/* B's handlers. */

static int
insert_note(struct juki_store *store, int64_t n, const char *msg_id)
{
	sqlite3_stmt *st =
	    juki_store_prepare(store, "INSERT INTO notes(n, msg_id) VALUES (?1, ?2)");

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_text(st, 2, msg_id, -1, SQLITE_STATIC);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : JUKI_ESTORE;
}

/*
 * body {"n": k, "action": "apply" | "reject" | "fail"}: apply records n;
 * reject records it and then refuses (the savepoint must undo the record);
 * fail records it and fails while fail_left lasts (the turn must be undone).
 */
static int
handle_note(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct receiver *r = ctx;
	json_int_t n = json_integer_value(json_object_get(msg->body, "n"));
	const char *action = json_string_value(json_object_get(msg->body, "action"));
	int rc;

	r->calls++;
	if (n >= 0 && n < 100) {
		r->calls_of[n]++;
	}
	rc = insert_note(r->store, n, msg->id);
	if (rc != 0) {
		return rc;
	}
	if (action != NULL && strcmp(action, "reject") == 0) {
		return juki_reject_set(rej, JUKI_R_BAD_FIELD, "n=%lld refused", (long long)n);
	}
	if (action != NULL && strcmp(action, "fail") == 0 && r->fail_left > 0) {
		r->fail_left--;
		return JUKI_ESTORE;
	}
	return 0;
}

/*
 * The refused hook of test.secret: records n + 100 (kept: the handler's own
 * changes are undone before it runs) and tells the sender less.
 */
static int
refused_note(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct receiver *r = ctx;
	json_int_t n = json_integer_value(json_object_get(msg->body, "n"));
	int rc = insert_note(r->store, n + 100, msg->id);

	if (rc == 0) {
		snprintf(rej->detail, sizeof(rej->detail), "was %s", rej->reason);
		snprintf(rej->reason, sizeof(rej->reason), "%s", JUKI_R_NO_MATCH);
	}
	return rc;
}

static const struct juki_handler handlers[] = {
    {"test.note", JUKI_SVC_MUNI, handle_note, 0, 0, NULL},
    {"test.report", JUKI_SVC_HONNIN, handle_note, 0, 0, NULL},
    {"test.bulk", JUKI_SVC_MUNI, handle_note, 0, 1, NULL},
    {"test.secret", JUKI_SVC_MUNI, handle_note, 0, 0, refused_note},
    {"test.secretbulk", JUKI_SVC_MUNI, handle_note, 0, 1, refused_note},
    /* One type on two services: the handler the connection's service carries is taken. */
    {"test.both", JUKI_SVC_HONNIN, handle_note, 0, 0, NULL},
    {"test.both", JUKI_SVC_MUNI, handle_note, 0, 0, NULL},
    {NULL, JUKI_SVC_NONE, NULL, 0, 0, NULL},
};

static void
on_committed(void *ctx)
{
	((struct receiver *)ctx)->committed++;
}

/* A's ack callback. */

static int
on_ack(void *ctx, const struct juki_outbox_entry *entry, const struct juki_ack *ack)
{
	struct sender *s = ctx;
	struct ack_seen *a;
	json_t *st;

	assert_true(s->nacks < (int)(sizeof(s->acks) / sizeof(s->acks[0])));
	a = &s->acks[s->nacks++];
	a->seq = entry->seq;
	snprintf(a->msg_id, sizeof(a->msg_id), "%s", entry->msg_id);
	snprintf(a->type, sizeof(a->type), "%s", entry->type);
	a->status = ack->status;
	snprintf(a->reason, sizeof(a->reason), "%s", ack->reason);
	snprintf(a->detail, sizeof(a->detail), "%s", ack->detail);
	a->in_txn = juki_store_in_txn(s->store);
	/* The ack being applied is still counted in flight here. */
	st = juki_outbound_status(s->ob);
	a->in_flight = json_integer_value(
	    json_object_get(json_array_get(json_object_get(st, "links"), 0), "in_flight"));
	if (a->in_flight > s->max_in_flight) {
		s->max_in_flight = a->in_flight;
	}
	json_decref(st);
	if (s->fail_acks > 0) {
		s->fail_acks--;
		return JUKI_ESTORE;
	}
	return 0;
}

static const struct juki_migration notes_steps[] = {
    {1, "CREATE TABLE notes(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, msg_id TEXT NOT NULL)"},
};
static const struct juki_schema notes_schema = {"test", notes_steps, 1};

static int
setup(void **state)
{
	struct fix *f = *state;
	struct juki_inbound_conf ic;
	char path[200];
	char *listen[] = {"127.0.0.1:0"};

	f->case_no++;
	memset(&f->recv, 0, sizeof(f->recv));
	memset(&f->send, 0, sizeof(f->send));
	memset(&f->gw, 0, sizeof(f->gw));
	f->closed_fd = f->closed2_fd = -1;
	f->base = event_base_new();
	f->alerts_a = juki_alerts_new(64, &f->clock);
	f->alerts_b = juki_alerts_new(64, &f->clock);
	if (f->base == NULL || f->alerts_a == NULL || f->alerts_b == NULL) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/a-%d.db", f->tmp, f->case_no);
	if (juki_store_open(path, NULL, 0, &f->send.store, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/b-%d.db", f->tmp, f->case_no);
	if (juki_store_open(path, &notes_schema, 1, &f->recv.store, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	memset(&ic, 0, sizeof(ic));
	ic.base = f->base;
	ic.store = f->recv.store;
	ic.alerts = f->alerts_b;
	ic.clock = &f->clock;
	ic.handlers = handlers;
	ic.ctx = &f->recv;
	ic.committed = on_committed;
	ic.handshake_timeout_ms = 5000;
	ic.line_timeout_ms = 5000;
	ic.idle_timeout_ms = 0;
	ic.frame_max = JUKI_FRAME_MAX_DEFAULT;
	if (juki_inbound_new(&ic, f->tls_b, f->policy, listen, 1, &f->in, f->err, sizeof(f->err)) !=
	    0) {
		return -1;
	}
	gateway_start(f, juki_inbound_addr(f->in, 0));
	f->closed_fd = hold_port(f->closed_addr, sizeof(f->closed_addr), 0);
	f->closed2_fd = hold_port(f->closed2_addr, sizeof(f->closed2_addr), 0);
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	/* The gateway first: it frees its tunnels whole, then A and B free their ends. */
	gateway_stop(f);
	juki_outbound_free(f->send.ob);
	f->send.ob = NULL;
	juki_inbound_free(f->in);
	f->in = NULL;
	if (f->base != NULL) {
		event_base_free(f->base);
		f->base = NULL;
	}
	juki_store_close(f->send.store);
	juki_store_close(f->recv.store);
	juki_alerts_free(f->alerts_a);
	juki_alerts_free(f->alerts_b);
	f->alerts_a = f->alerts_b = NULL;
	if (f->closed_fd >= 0) {
		close(f->closed_fd);
	}
	if (f->closed2_fd >= 0) {
		close(f->closed2_fd);
	}
	ERR_clear_error();
	return 0;
}

/* Event-driven waiting. */

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

typedef int (*cond_fn)(struct fix *f, const void *arg);

static int
run_until(struct fix *f, cond_fn done, const void *arg, int64_t timeout_ms)
{
	int64_t deadline = juki_clock_mono_ms() + timeout_ms;
	struct event *t = evtimer_new(f->base, tick, NULL);
	struct timeval tv = {0, 20000};
	int ok;

	assert_non_null(t);
	while (!(ok = done(f, arg)) && juki_clock_mono_ms() < deadline) {
		evtimer_add(t, &tv);
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	event_free(t);
	/* On a timeout, show where delivery stood. */
	if (!ok && f->send.ob != NULL) {
		json_t *st = juki_outbound_status(f->send.ob), *in = juki_inbound_status(f->in);
		char *a = json_dumps(st, 0), *b = json_dumps(in, 0);

		fprintf(stderr, "timed out: outbound %s\ninbound %s\nacks seen %d\n", a, b,
			f->send.nacks);
		free(a);
		free(b);
		json_decref(st);
		json_decref(in);
	}
	return ok;
}

static int
acks_reached(struct fix *f, const void *arg)
{
	return f->send.nacks >= *(const int *)arg;
}

/* The link to dest (over muni) in the outbound status, in state. */
static int
link_in_state(struct fix *f, const void *arg)
{
	const char *const *want = arg; /* {dest, state} */
	json_t *st = juki_outbound_status(f->send.ob), *l;
	size_t i;
	int found = 0;

	json_array_foreach(json_object_get(st, "links"), i, l)
	{
		if (strcmp(json_string_value(json_object_get(l, "dest")), want[0]) == 0 &&
		    strcmp(json_string_value(json_object_get(l, "state")), want[1]) == 0) {
			found = 1;
		}
	}
	json_decref(st);
	return found;
}

/* Sending. */

static void
start_outbound(struct fix *f, size_t window, const char *gw1, const char *gw2,
	       int64_t backoff_min_ms)
{
	char *gws[2] = {(char *)gw1, (char *)gw2};
	struct juki_outbound_conf oc = {
	    .gateways = gws,
	    .ngateways = gw2 != NULL ? 2 : 1,
	    .window = window,
	    .connect_timeout_ms = 5000,
	    .backoff_min_ms = backoff_min_ms,
	    .backoff_max_ms = backoff_min_ms * 4,
	    .failback_ms = 0,
	    .idle_timeout_ms = 0,
	    .frame_max = JUKI_FRAME_MAX_DEFAULT,
	};

	assert_int_equal(juki_outbound_new(f->base, f->send.store, f->tls_a, &oc, &f->clock,
					   f->alerts_a, on_ack, &f->send, &f->send.ob),
			 0);
}

/* Queue test messages n = first..last to dest in one transaction; ids[n] gets each id. */
static void
queue_notes(struct fix *f, const char *dest, const char *type, int first, int last,
	    const char *(*action_of)(int n), char ids[][JUKI_UUID_LEN + 1])
{
	struct juki_store *s = f->send.store;

	assert_int_equal(juki_store_begin(s), 0);
	for (int n = first; n <= last; n++) {
		struct juki_msg msg;
		const char *action = action_of != NULL ? action_of(n) : "apply";
		json_t *body = json_pack("{s:i,s:s}", "n", n, "action", action);

		assert_int_equal(juki_msg_init(&msg, type, A_URN, dest, NULL, body, &f->clock), 0);
		assert_int_equal(
		    juki_outbox_put(s, &msg, "muni", juki_clock_now_ms(&f->clock), NULL), 0);
		if (ids != NULL) {
			memcpy(ids[n], msg.id, sizeof(ids[n]));
		}
		juki_msg_clear(&msg);
	}
	assert_int_equal(juki_store_commit(s), 0);
}

static int64_t
sql_int(struct juki_store *store, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(juki_store_db(store), sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* B's notes in the order they were recorded, as "1,2,3". */
static void
notes_text(struct fix *f, char *buf, size_t len)
{
	sqlite3_stmt *st;
	size_t used = 0;

	buf[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->recv.store),
					    "SELECT n FROM notes ORDER BY id", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		used += (size_t)snprintf(buf + used, len - used, "%s%lld", used ? "," : "",
					 (long long)sqlite3_column_int64(st, 0));
		assert_true(used < len);
	}
	sqlite3_finalize(st);
}

static void
range_text(char *buf, size_t len, int first, int last)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int n = first; n <= last; n++) {
		used += (size_t)snprintf(buf + used, len - used, "%s%d", used ? "," : "", n);
	}
}

static json_int_t
num(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v)) {
		fail_msg("%s is not an integer", key);
	}
	return json_integer_value(v);
}

static void
test_in_order(void **state)
{
	struct fix *f = *state;
	char ids[40][JUKI_UUID_LEN + 1];
	char got[400], want[400];
	json_t *st, *link, *in;
	int n = 20;

	start_outbound(f, 1, f->gw_addr, NULL, 20);
	queue_notes(f, B_URN, "test.note", 1, 20, NULL, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));

	/* B applied each once, in the order A queued them. */
	notes_text(f, got, sizeof(got));
	range_text(want, sizeof(want), 1, 20);
	assert_string_equal(got, want);
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox"), 20);
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox WHERE sender = '" A_URN
						"' AND type = 'test.note' AND status = 0"),
			 20);
	assert_true(f->recv.committed >= 1);

	/* A saw every ack in order, inside its transaction, and deleted the entries. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(f->send.acks[i].status, JUKI_ACK_ACCEPTED);
		assert_string_equal(f->send.acks[i].msg_id, ids[i + 1]);
		assert_string_equal(f->send.acks[i].type, "test.note");
		assert_true(f->send.acks[i].in_txn);
		if (i > 0) {
			assert_true(f->send.acks[i].seq > f->send.acks[i - 1].seq);
		}
	}
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(f->send.max_in_flight, 1);

	/* What juki-ctl status shows. */
	st = juki_outbound_status(f->send.ob);
	assert_int_equal(num(st, "queued"), 0);
	assert_int_equal(num(st, "oldest_age_ms"), 0);
	assert_int_equal(num(st, "rejected"), 0);
	assert_int_equal(num(st, "sent"), 20);
	assert_int_equal(num(st, "acked"), 20);
	assert_int_equal(json_array_size(json_object_get(st, "links")), 1);
	link = json_array_get(json_object_get(st, "links"), 0);
	assert_string_equal(json_string_value(json_object_get(link, "dest")), B_URN);
	assert_string_equal(json_string_value(json_object_get(link, "service")), "muni");
	assert_string_equal(json_string_value(json_object_get(link, "state")), "up");
	assert_string_equal(json_string_value(json_object_get(link, "gateway")), f->gw_addr);
	assert_int_equal(num(link, "in_flight"), 0);
	assert_int_equal(num(link, "failures"), 0);
	assert_true(json_is_null(json_object_get(link, "last_error")));
	json_decref(st);

	in = juki_inbound_status(f->in);
	assert_string_equal(json_string_value(json_array_get(json_object_get(in, "listen"), 0)),
			    juki_inbound_addr(f->in, 0));
	assert_null(juki_inbound_addr(f->in, 1));
	assert_int_equal(num(in, "channels"), 1);
	assert_int_equal(num(in, "received"), 20);
	assert_int_equal(num(in, "accepted"), 20);
	assert_int_equal(num(in, "duplicate"), 0);
	assert_int_equal(json_object_size(json_object_get(in, "rejected")), 0);
	json_decref(in);
	assert_int_equal(juki_alerts_count(f->alerts_a, NULL), 0);
	assert_int_equal(juki_alerts_count(f->alerts_b, NULL), 0);

	/* More work for a link that is up goes over it. */
	queue_notes(f, B_URN, "test.note", 21, 25, NULL, ids);
	juki_outbound_kick(f->send.ob);
	n = 25;
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	notes_text(f, got, sizeof(got));
	range_text(want, sizeof(want), 1, 25);
	assert_string_equal(got, want);
	in = juki_inbound_status(f->in);
	assert_int_equal(num(in, "channels"), 1);
	json_decref(in);
	st = juki_outbound_status(f->send.ob);
	assert_int_equal(num(st, "sent"), 25);
	json_decref(st);
}

static void
test_pipelined(void **state)
{
	struct fix *f = *state;
	char got[400], want[400];
	char ids[40][JUKI_UUID_LEN + 1];
	int n = 30;

	start_outbound(f, 8, f->gw_addr, NULL, 20);
	queue_notes(f, B_URN, "test.note", 1, 30, NULL, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	/* The window was filled before the first ack came back. */
	assert_int_equal(f->send.max_in_flight, 8);
	assert_int_equal(f->send.acks[0].in_flight, 8);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(f->send.acks[i].status, JUKI_ACK_ACCEPTED);
		assert_string_equal(f->send.acks[i].msg_id, ids[i + 1]);
		assert_true(f->send.acks[i].in_flight <= 8);
	}
	notes_text(f, got, sizeof(got));
	range_text(want, sizeof(want), 1, 30);
	assert_string_equal(got, want);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox"), 30);
}

static const char *
reject_three(int n)
{
	return n == 3 ? "reject" : "apply";
}

static const char *
reject_four(int n)
{
	return n == 4 ? "reject" : "apply";
}

/* A type with a handler on each of two services arrives on the second one's: taken. */
static void
test_type_on_two_services(void **state)
{
	struct fix *f = *state;
	char ids[10][JUKI_UUID_LEN + 1];
	int n = 2;

	start_outbound(f, 4, f->gw_addr, NULL, 20);
	queue_notes(f, B_URN, "test.both", 1, 2, NULL, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	assert_int_equal(f->send.acks[0].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[1].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->recv.calls, 2);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox_rejected"), 0);
}

static void
test_rejected(void **state)
{
	struct fix *f = *state;
	char ids[10][JUKI_UUID_LEN + 1];
	char got[100];
	sqlite3_stmt *q;
	json_t *st, *in, *rej;
	int n = 6;

	start_outbound(f, 4, f->gw_addr, NULL, 20);
	/* 3 is refused by its handler, 5 is a type B does not know, 6 one for another service. */
	queue_notes(f, B_URN, "test.note", 1, 4, reject_three, ids);
	queue_notes(f, B_URN, "test.unknown", 5, 5, NULL, ids);
	queue_notes(f, B_URN, "test.report", 6, 6, NULL, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));

	/* Acks in order; the refusals carry their reason and detail. */
	for (int i = 0; i < 6; i++) {
		assert_string_equal(f->send.acks[i].msg_id, ids[i + 1]);
	}
	assert_int_equal(f->send.acks[0].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[1].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[2].status, JUKI_ACK_REJECTED);
	assert_string_equal(f->send.acks[2].reason, JUKI_R_BAD_FIELD);
	assert_string_equal(f->send.acks[2].detail, "n=3 refused");
	assert_int_equal(f->send.acks[3].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[4].status, JUKI_ACK_REJECTED);
	assert_string_equal(f->send.acks[4].reason, JUKI_R_UNKNOWN_TYPE);
	assert_int_equal(f->send.acks[5].status, JUKI_ACK_REJECTED);
	assert_string_equal(f->send.acks[5].reason, JUKI_R_POLICY);

	/* Nothing vanished: the refused entries moved to outbox_rejected. */
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox_rejected"), 3);
	assert_int_equal(sqlite3_prepare_v2(juki_store_db(f->send.store),
					    "SELECT msg_id, reason, detail, dest, service, type "
					    "FROM outbox_rejected ORDER BY seq",
					    -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), ids[3]);
	assert_string_equal((const char *)sqlite3_column_text(q, 1), JUKI_R_BAD_FIELD);
	assert_string_equal((const char *)sqlite3_column_text(q, 2), "n=3 refused");
	assert_string_equal((const char *)sqlite3_column_text(q, 3), B_URN);
	assert_string_equal((const char *)sqlite3_column_text(q, 4), "muni");
	assert_string_equal((const char *)sqlite3_column_text(q, 5), "test.note");
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), ids[5]);
	assert_string_equal((const char *)sqlite3_column_text(q, 1), JUKI_R_UNKNOWN_TYPE);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), ids[6]);
	assert_string_equal((const char *)sqlite3_column_text(q, 1), JUKI_R_POLICY);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);

	/* B kept nothing of the refused ones, not even what the handler wrote first. */
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1,2,4");
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox"), 3);
	assert_int_equal(f->recv.calls_of[3], 1);

	st = juki_outbound_status(f->send.ob);
	assert_int_equal(num(st, "rejected"), 3);
	assert_int_equal(num(st, "acked"), 3);
	assert_int_equal(num(st, "sent"), 6);
	assert_int_equal(num(st, "queued"), 0);
	json_decref(st);
	in = juki_inbound_status(f->in);
	assert_int_equal(num(in, "received"), 6);
	assert_int_equal(num(in, "accepted"), 3);
	rej = json_object_get(in, "rejected");
	assert_int_equal(json_object_size(rej), 3);
	assert_int_equal(num(rej, JUKI_R_BAD_FIELD), 1);
	assert_int_equal(num(rej, JUKI_R_UNKNOWN_TYPE), 1);
	assert_int_equal(num(rej, JUKI_R_POLICY), 1);
	json_decref(in);
}

/*
 * A handler's refused hook runs after the refusal is undone, keeps what it
 * writes, and rewrites what the sender is told; for an ordinary message
 * (savepoint) and a bulk one (a transaction of its own) alike.
 */
static void
test_refused_hook(void **state)
{
	struct fix *f = *state;
	char ids[10][JUKI_UUID_LEN + 1];
	char got[100];
	json_t *in;
	int n = 4;

	start_outbound(f, 8, f->gw_addr, NULL, 20);
	queue_notes(f, B_URN, "test.secret", 1, 3, reject_three, ids);
	queue_notes(f, B_URN, "test.secretbulk", 4, 4, reject_four, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	assert_int_equal(f->send.acks[0].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[1].status, JUKI_ACK_ACCEPTED);
	for (int i = 2; i < 4; i++) {
		assert_int_equal(f->send.acks[i].status, JUKI_ACK_REJECTED);
		assert_string_equal(f->send.acks[i].reason, JUKI_R_NO_MATCH);
		assert_string_equal(f->send.acks[i].detail, "was " JUKI_R_BAD_FIELD);
	}
	/* The handler's notes of 3 and 4 were undone, the hook's kept. */
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1,2,103,104");
	in = juki_inbound_status(f->in);
	assert_int_equal(num(json_object_get(in, "rejected"), JUKI_R_NO_MATCH), 2);
	json_decref(in);
}

/*
 * Bulk messages between ordinary ones, pipelined into one turn: each is
 * handled in a transaction of its own; a refused one leaves nothing of
 * itself and takes nothing of the others with it.
 */
static void
test_bulk(void **state)
{
	struct fix *f = *state;
	char ids[10][JUKI_UUID_LEN + 1];
	char got[100];
	int n = 6;

	start_outbound(f, 8, f->gw_addr, NULL, 20);
	queue_notes(f, B_URN, "test.note", 1, 2, NULL, ids);
	queue_notes(f, B_URN, "test.bulk", 3, 4, reject_three, ids);
	queue_notes(f, B_URN, "test.note", 5, 6, NULL, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	for (int i = 0; i < 6; i++) {
		assert_string_equal(f->send.acks[i].msg_id, ids[i + 1]);
		assert_int_equal(f->send.acks[i].status,
				 i == 2 ? JUKI_ACK_REJECTED : JUKI_ACK_ACCEPTED);
	}
	assert_string_equal(f->send.acks[2].detail, "n=3 refused");
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1,2,4,5,6");
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox"), 5);
	assert_int_equal(f->recv.calls_of[3], 1);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
}

static const char *
fail_three(int n)
{
	return n == 3 ? "fail" : "apply";
}

static void
test_redelivered_after_failure(void **state)
{
	struct fix *f = *state;
	char ids[10][JUKI_UUID_LEN + 1];
	char got[100];
	json_t *st, *in;
	int n = 5;

	start_outbound(f, 4, f->gw_addr, NULL, 20);
	f->recv.fail_left = 1;
	queue_notes(f, B_URN, "test.note", 1, 5, fail_three, ids);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));

	/* The failed turn was undone and delivered again: each applied exactly once. */
	assert_int_equal(f->recv.fail_left, 0);
	assert_int_equal(f->recv.calls_of[3], 2);
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1,2,3,4,5");
	assert_int_equal(sql_int(f->recv.store, "SELECT count(*) FROM inbox"), 5);
	assert_int_equal(sql_int(f->recv.store, "SELECT count(DISTINCT msg_id) FROM notes"), 5);

	/* One ack per entry; an ack lost with the channel comes back as a duplicate. */
	assert_int_equal(f->send.nacks, 5);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(f->send.acks[i].msg_id, ids[i + 1]);
		assert_true(f->send.acks[i].status == JUKI_ACK_ACCEPTED ||
			    f->send.acks[i].status == JUKI_ACK_DUPLICATE);
	}
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox_rejected"), 0);

	/* The link came back; the first channel is gone. */
	st = juki_outbound_status(f->send.ob);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(st, "links"), 0), "state")),
			    "up");
	assert_true(num(st, "sent") > 5);
	json_decref(st);
	in = juki_inbound_status(f->in);
	assert_int_equal(num(in, "channels"), 1);
	assert_true(num(in, "received") > 5);
	json_decref(in);
}

static void
test_duplicate(void **state)
{
	struct fix *f = *state;
	struct juki_msg msg;
	json_t *in;
	char got[100];
	int n = 1;

	start_outbound(f, 1, f->gw_addr, NULL, 20);
	assert_int_equal(juki_msg_init(&msg, "test.note", A_URN, B_URN, NULL,
				       json_pack("{s:i,s:s}", "n", 7, "action", "apply"),
				       &f->clock),
			 0);
	assert_int_equal(juki_store_begin(f->send.store), 0);
	assert_int_equal(juki_outbox_put(f->send.store, &msg, "muni", 1, NULL), 0);
	assert_int_equal(juki_store_commit(f->send.store), 0);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	assert_int_equal(f->send.acks[0].status, JUKI_ACK_ACCEPTED);

	/* The same message again (as after a restore): B has it, says so, applies nothing. */
	assert_int_equal(juki_store_begin(f->send.store), 0);
	assert_int_equal(juki_outbox_put(f->send.store, &msg, "muni", 2, NULL), 0);
	assert_int_equal(juki_store_commit(f->send.store), 0);
	juki_outbound_kick(f->send.ob);
	n = 2;
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	assert_int_equal(f->send.acks[1].status, JUKI_ACK_DUPLICATE);
	assert_string_equal(f->send.acks[1].msg_id, msg.id);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "7");
	assert_int_equal(f->recv.calls, 1);
	in = juki_inbound_status(f->in);
	assert_int_equal(num(in, "duplicate"), 1);
	assert_int_equal(num(in, "accepted"), 1);
	assert_int_equal(num(in, "received"), 2);
	json_decref(in);
	juki_msg_clear(&msg);
}

static void
test_ack_callback_fails(void **state)
{
	struct fix *f = *state;
	char got[100];
	int n = 2;

	/* The daemon cannot record the first outcome: the entry must stay queued... */
	start_outbound(f, 1, f->gw_addr, NULL, 20);
	f->send.fail_acks = 1;
	queue_notes(f, B_URN, "test.note", 1, 1, NULL, NULL);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	/* ...and is delivered again, which B answers as a duplicate. */
	assert_int_equal(f->send.acks[0].status, JUKI_ACK_ACCEPTED);
	assert_int_equal(f->send.acks[1].status, JUKI_ACK_DUPLICATE);
	assert_string_equal(f->send.acks[0].msg_id, f->send.acks[1].msg_id);
	assert_int_equal(f->send.acks[0].seq, f->send.acks[1].seq);
	assert_int_equal(sql_int(f->send.store, "SELECT count(*) FROM outbox"), 0);
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1");
	assert_int_equal(juki_alerts_count(f->alerts_a, "protocol-error"), 1);
}

static void
test_failover(void **state)
{
	struct fix *f = *state;
	char got[100];
	json_t *st, *link;
	int n = 3;

	/* The primary gateway's port refuses connections: the second carries the traffic. */
	start_outbound(f, 2, f->closed_addr, f->gw_addr, 20);
	queue_notes(f, B_URN, "test.note", 1, 3, NULL, NULL);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, acks_reached, &n, WAIT_MS));
	notes_text(f, got, sizeof(got));
	assert_string_equal(got, "1,2,3");
	st = juki_outbound_status(f->send.ob);
	link = json_array_get(json_object_get(st, "links"), 0);
	assert_string_equal(json_string_value(json_object_get(link, "state")), "up");
	assert_string_equal(json_string_value(json_object_get(link, "gateway")), f->gw_addr);
	assert_int_equal(num(link, "failures"), 0);
	assert_int_equal(num(st, "queued"), 0);
	json_decref(st);
}

static void
test_all_gateways_down(void **state)
{
	struct fix *f = *state;
	const char *want[] = {B_URN, "backoff"};
	json_t *st, *link;
	const char *err;

	/* Both refuse: one round fails, and the link waits (long enough to be seen here). */
	start_outbound(f, 1, f->closed_addr, f->closed2_addr, 60000);
	queue_notes(f, B_URN, "test.note", 1, 2, NULL, NULL);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, link_in_state, want, WAIT_MS));
	st = juki_outbound_status(f->send.ob);
	link = json_array_get(json_object_get(st, "links"), 0);
	assert_int_equal(num(link, "failures"), 1);
	assert_int_equal(num(link, "in_flight"), 0);
	err = json_string_value(json_object_get(link, "last_error"));
	assert_non_null(err);
	/* The last one tried, and why. */
	assert_non_null(strstr(err, f->closed2_addr));
	assert_non_null(strcasestr(err, "refused"));
	assert_int_equal(num(st, "queued"), 2);
	assert_int_equal(num(st, "sent"), 0);
	assert_true(num(st, "oldest_age_ms") >= 0);
	json_decref(st);
	assert_int_equal(f->send.nacks, 0);
}

static void
test_denied_at_gateway(void **state)
{
	struct fix *f = *state;
	const char *pref[] = {"urn:juki:pref:13", "backoff"};
	const char *unknown[] = {"urn:juki:cs:011002", "backoff"};
	json_t *st, *l;
	size_t i;

	/* muni never reaches a prefecture; a CS the gateway has no route to is unknown. */
	start_outbound(f, 1, f->gw_addr, NULL, 60000);
	queue_notes(f, "urn:juki:pref:13", "test.note", 1, 1, NULL, NULL);
	queue_notes(f, "urn:juki:cs:011002", "test.note", 2, 2, NULL, NULL);
	juki_outbound_kick(f->send.ob);
	assert_true(run_until(f, link_in_state, pref, WAIT_MS));
	assert_true(run_until(f, link_in_state, unknown, WAIT_MS));
	st = juki_outbound_status(f->send.ob);
	json_array_foreach(json_object_get(st, "links"), i, l)
	{
		const char *dest = json_string_value(json_object_get(l, "dest"));
		const char *err = json_string_value(json_object_get(l, "last_error"));

		assert_non_null(err);
		if (strcmp(dest, "urn:juki:pref:13") == 0) {
			assert_non_null(strstr(err, "DENY policy"));
		} else {
			assert_non_null(strstr(err, "DENY unknown-node"));
		}
	}
	/* Refusals on principle are alerts; the entries wait. */
	assert_int_equal(num(st, "queued"), 2);
	json_decref(st);
	assert_int_equal(juki_alerts_count(f->alerts_a, "connect-denied"), 2);
	assert_int_equal(f->recv.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_type_on_two_services, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_hook, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redelivered_after_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_callback_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_all_gateways_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_denied_at_gateway, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	/* The gateway must not talk to a service manager that started the test run. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
