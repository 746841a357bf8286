/*
 * juki-ctl doctor — a node's health in one table of checks (第4-9(1); docs/control.md §6,
 * docs/operations.md "juki-ctl doctor").
 *
 * It reads the daemon's configuration (--config FILE, or the file the running daemon
 * names in status) and asks the daemon (its control socket: -s, or the configuration's
 * control) for status and outbox; the rest it looks at itself, read-only: the
 * certificates and CRL, the disk, each SQLite store (PRAGMA quick_check on a read-only
 * connection), folder and key modes, and every gateway and destination with a real
 * handshake (TLS 1.3 with the node's own certificate, CONNECT, the destination's inner
 * TLS 1.3).  Each check is a row of checks[]; each finding a line with its severity.
 * Exit: 0 every finding ok (or unknown), 1 a warning, 2 an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sqlite3.h>
#include <yaml.h>

#include "ctl.h"
#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/dir.h"
#include "juki/base/error.h"
#include "juki/base/ident.h"
#include "juki/node/control.h"
#include "juki/wire/net.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"
#include "sock.h"

#define DAY_MS        (86400LL * 1000)
#define CERT_WARN_MS  (30 * DAY_MS) /* a certificate expiring within: warning */
#define CRL_WARN_MS   (7 * DAY_MS)  /* a CRL due within (it is reissued often): warning */
#define SKEW_WARN_MS  1000          /* clock skew against a watcher */
#define SKEW_ERROR_MS 60000
#define DISK_WARN     10.0 /* percent free */
#define DISK_ERROR    2.0
#define STEP_MS       5000 /* each network step of a reachability check */
#define CHECK_NEED_MS 10000

enum sev { SEV_OK, SEV_UNKNOWN, SEV_WARNING, SEV_ERROR };
static const char *const sev_names[] = {"ok", "unknown", "warning", "error"};

struct doctor {
	struct ctl *ctl;
	const char *config; /* the file read */
	char basedir[PATH_MAX];
	json_t *conf;   /* the configuration as a tree (strings), or NULL */
	json_t *status; /* the daemon's status, or NULL */
	json_t *outbox; /* its outbox command's answer, or NULL */
	const char *socket;
	struct juki_ident self;
	json_t *rows;
	enum sev worst;
	int64_t now_ms;
};

static void add(struct doctor *d, const char *check, const char *subject, enum sev sev,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
add(struct doctor *d, const char *check, const char *subject, enum sev sev, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(d->rows, json_pack("{s:s,s:s,s:s,s:s}", "check", check, "subject",
						 subject != NULL ? subject : "-", "severity",
						 sev_names[sev], "detail", detail));
	if (sev > d->worst) {
		d->worst = sev;
	}
}

/* ---- the configuration, read as a tree of strings (libyaml) ---- */

static json_t *
yaml_tree(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	json_t *out;

	if (n == NULL || depth > 16) {
		return json_null();
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			json_array_append_new(
			    out, yaml_tree(doc, yaml_document_get_node(doc, *i), depth + 1));
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);

			if (k != NULL && k->type == YAML_SCALAR_NODE) {
				json_object_set_new(out, (const char *)k->data.scalar.value,
						    yaml_tree(doc,
							      yaml_document_get_node(doc, p->value),
							      depth + 1));
			}
		}
		return out;
	default:
		return json_null();
	}
}

static json_t *
read_yaml(const char *path, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	yaml_parser_t parser;
	yaml_document_t doc;
	json_t *out = NULL;

	if (f == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (yaml_parser_load(&parser, &doc)) {
		out = yaml_tree(&doc, yaml_document_get_root_node(&doc), 0);
		yaml_document_delete(&doc);
		if (!json_is_object(out)) {
			json_decref(out);
			out = NULL;
			snprintf(why, whylen, "%s: not a mapping", path);
		}
	} else {
		snprintf(why, whylen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
			 parser.problem != NULL ? parser.problem : "not YAML");
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return out;
}

/* The string at "a.b" of the configuration, or NULL. */
static const char *
conf_str(const struct doctor *d, const char *key)
{
	char k[128], *dot;
	const json_t *v = d->conf;

	snprintf(k, sizeof(k), "%s", key);
	dot = strchr(k, '.');
	if (dot != NULL) {
		*dot = '\0';
		v = json_object_get(v, k);
		return json_string_value(json_object_get(v, dot + 1));
	}
	return json_string_value(json_object_get(v, k));
}

/* A path of the configuration made absolute as the daemon makes it (from the file's folder). */
static const char *
conf_path(struct doctor *d, const char *key, char *buf, size_t len)
{
	const char *p = conf_str(d, key);

	if (p == NULL) {
		return NULL;
	}
	if (p[0] == '/' || strncmp(p, "pkcs11:", 7) == 0) {
		return p;
	}
	if (snprintf(buf, len, "%s/%s", d->basedir, p) >= (int)len) {
		return p;
	}
	return buf;
}

/* ---- the checks ---- */

static const char *
daemon_of(enum juki_kind kind, const char **dir)
{
	switch (kind) {
	case JUKI_KIND_CS:
		*dir = "cs";
		return "juki-csd";
	case JUKI_KIND_PREF:
		*dir = "prefserver";
		return "juki-prefd";
	case JUKI_KIND_JLIS:
		*dir = "jlisserver";
		return "juki-jlisd";
	case JUKI_KIND_AUTHLINK:
		*dir = "authlink";
		return "juki-authlinkd";
	case JUKI_KIND_FWGATE:
		*dir = "fwgate";
		return "juki-fwgated";
	default:
		return NULL;
	}
}

/* The daemon's program: beside juki-ctl, in the build tree, or in the system's sbin. */
static int
find_daemon(const char *name, const char *dir, char *out, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *env = getenv("JUKI_SBIN");

	if (env != NULL) {
		snprintf(out, len, "%s/%s", env, name);
		if (access(out, X_OK) == 0) {
			return 0;
		}
	}
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			if (snprintf(out, len, "%s/%s", exe, name) < (int)len &&
			    access(out, X_OK) == 0) {
				return 0;
			}
			if (snprintf(out, len, "%s/../%s/%s", exe, dir, name) < (int)len &&
			    access(out, X_OK) == 0) {
				return 0;
			}
		}
	}
	snprintf(out, len, "/usr/sbin/%s", name);
	if (access(out, X_OK) == 0) {
		return 0;
	}
	snprintf(out, len, "/usr/local/sbin/%s", name);
	return access(out, X_OK) == 0 ? 0 : JUKI_ENOENT;
}

/* `<daemon> -n -f FILE`: the daemon's own check of its configuration. */
static void
check_config(struct doctor *d)
{
	const char *dir = NULL, *name = daemon_of(d->self.kind, &dir);
	char prog[PATH_MAX], text[2048];
	size_t got = 0;
	int pipefd[2], status = 0;
	pid_t pid;

	if (name == NULL || find_daemon(name, dir, prog, sizeof(prog)) != 0) {
		add(d, "config", d->config, SEV_UNKNOWN, "%s not found to run -n",
		    name != NULL ? name : "the daemon");
		return;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		add(d, "config", d->config, SEV_UNKNOWN, "cannot run %s: %s", prog,
		    strerror(errno));
		return;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execl(prog, name, "-n", "-f", d->config, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	/* Read to the end (what does not fit is dropped), so that the child never blocks. */
	for (;;) {
		char sink[512];
		size_t room = sizeof(text) - 1 - got;
		ssize_t r = room > 0 ? read(pipefd[0], text + got, room)
				     : read(pipefd[0], sink, sizeof(sink));

		if (r > 0) {
			got += room > 0 ? (size_t)r : 0;
			continue;
		}
		if (r < 0 && errno == EINTR) {
			continue;
		}
		break;
	}
	close(pipefd[0]);
	text[got] = '\0';
	while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == ' ')) {
		text[--got] = '\0';
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		add(d, "config", d->config, SEV_OK, "valid (%s -n)", name);
	} else {
		/* The last line says why (file:line:col: key: what). */
		char *last = strrchr(text, '\n');

		add(d, "config", d->config, SEV_ERROR, "%s -n: %s", name,
		    last != NULL ? last + 1 : text);
	}
}

static void
check_validity(struct doctor *d, const char *what, const char *key, int crl)
{
	char buf[PATH_MAX], when[40];
	const char *path = conf_path(d, key, buf, sizeof(buf));
	long long ms;
	int64_t warn = crl ? CRL_WARN_MS : CERT_WARN_MS;
	int rc;

	if (path == NULL) {
		if (!crl) {
			add(d, "certificate", what, SEV_ERROR, "%s is not configured", key);
		}
		return;
	}
	if ((rc = juki_pki_file_times(path, crl, &ms)) != 0) {
		add(d, crl ? "crl" : "certificate", path, SEV_ERROR, "cannot read it: %s",
		    juki_strerror(rc));
		return;
	}
	if (ms == INT64_MIN) {
		add(d, "crl", path, SEV_OK, "no next update");
		return;
	}
	juki_clock_format(ms, when, sizeof(when));
	if (ms <= d->now_ms) {
		add(d, crl ? "crl" : "certificate", path, SEV_ERROR, "%s %s %s", what,
		    crl ? "was due for its next update at" : "expired at", when);
	} else if (ms - d->now_ms < warn) {
		add(d, crl ? "crl" : "certificate", path, SEV_WARNING,
		    "%s %s %s, in %lld days (within %lld)", what,
		    crl ? "is due for its next update at" : "expires at", when,
		    (long long)((ms - d->now_ms) / DAY_MS), (long long)(warn / DAY_MS));
	} else {
		add(d, crl ? "crl" : "certificate", path, SEV_OK, "%s valid until %s (%lld days)",
		    what, when, (long long)((ms - d->now_ms) / DAY_MS));
	}
}

static void
check_certs(struct doctor *d)
{
	check_validity(d, "the node's certificate", "tls.cert", 0);
	check_validity(d, "the CA", "tls.ca", 0);
	check_validity(d, "the CRL", "tls.crl", 1);
}

/* The skew each watcher measured for this node (status monitor.watchers[].skew_ms). */
static void
check_skew(struct doctor *d)
{
	const json_t *w = json_object_get(json_object_get(d->status, "monitor"), "watchers"), *e;
	size_t i;

	if (d->self.kind == JUKI_KIND_FWGATE) {
		return; /* a gateway sends no heartbeats */
	}
	if (d->status == NULL || json_array_size(w) == 0) {
		add(d, "clock", NULL, SEV_UNKNOWN, "unknown: %s",
		    d->status == NULL ? "the daemon did not answer"
				      : "no watcher has measured the skew yet");
		return;
	}
	json_array_foreach(w, i, e)
	{
		const char *node = json_string_value(json_object_get(e, "node"));
		const json_t *s = json_object_get(e, "skew_ms");
		long long ms, abs;

		if (!json_is_integer(s)) {
			add(d, "clock", node, SEV_UNKNOWN, "skew unknown (no answer measured yet)");
			continue;
		}
		ms = json_integer_value(s);
		abs = ms < 0 ? -ms : ms;
		add(d, "clock", node,
		    abs > SKEW_ERROR_MS  ? SEV_ERROR
		    : abs > SKEW_WARN_MS ? SEV_WARNING
					 : SEV_OK,
		    "skew %+lld ms (warning over %d ms, error over %d ms)", ms, SKEW_WARN_MS,
		    SKEW_ERROR_MS);
	}
}

static void
check_disk_of(struct doctor *d, const char *what, const char *path)
{
	struct statvfs v;
	double pct;

	if (path == NULL) {
		return;
	}
	if (statvfs(path, &v) != 0) {
		add(d, "disk", path, SEV_ERROR, "%s: %s", what, strerror(errno));
		return;
	}
	pct = v.f_blocks > 0 ? 100.0 * (double)v.f_bavail / (double)v.f_blocks : 0;
	add(d, "disk", path,
	    pct < DISK_ERROR  ? SEV_ERROR
	    : pct < DISK_WARN ? SEV_WARNING
			      : SEV_OK,
	    "%s: %.1f%% free (%llu MiB)", what, pct,
	    (unsigned long long)((double)v.f_bavail * (double)v.f_frsize / 1048576.0));
}

static void
check_disk(struct doctor *d)
{
	char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], folder[PATH_MAX], *slash;
	const char *store = conf_path(d, "store", a, sizeof(a));

	if (store != NULL) {
		snprintf(folder, sizeof(folder), "%s", store);
		if ((slash = strrchr(folder, '/')) != NULL) {
			*slash = slash == folder ? '/' : '\0';
			if (slash == folder) {
				folder[1] = '\0';
			}
		}
		check_disk_of(d, "store", folder);
	}
	check_disk_of(d, "spool", conf_path(d, "import.spool", b, sizeof(b)));
	check_disk_of(d, "backups", conf_path(d, "backup.dir", c, sizeof(c)));
}

/* PRAGMA quick_check on a read-only connection: the daemon may hold the store. */
static void
quick_check(struct doctor *d, const char *what, const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char uri[PATH_MAX + 32];
	const char *res = NULL;
	int rc;

	if (access(path, F_OK) != 0) {
		add(d, "store", path, SEV_ERROR, "%s: %s", what, strerror(errno));
		return;
	}
	snprintf(uri, sizeof(uri), "file:%s?mode=ro", path);
	rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
	}
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
	}
	if (res != NULL && strcmp(res, "ok") == 0) {
		add(d, "store", path, SEV_OK, "%s: quick_check ok", what);
	} else {
		add(d, "store", path, SEV_ERROR, "%s: quick_check: %s", what,
		    res != NULL ? res : sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
check_stores(struct doctor *d)
{
	char a[PATH_MAX], b[PATH_MAX], audit[PATH_MAX + 8];
	const char *store = conf_path(d, "store", a, sizeof(a));
	const char *ap = conf_path(d, "audit.path", b, sizeof(b));

	if (store == NULL) {
		return;
	}
	quick_check(d, "the store", store);
	if (ap == NULL) {
		snprintf(audit, sizeof(audit), "%s.audit", store);
		ap = audit;
	}
	quick_check(d, "the operation history", ap);
}

/* The folders as the daemon checks them (base/dir.h), and the key and PIN files: 0600/0400. */
static void
check_modes(struct doctor *d)
{
	static const char *const parents[] = {"store", "audit.path", "control", NULL};
	static const char *const secrets[] = {"tls.key", "tls.pin_file", NULL};
	char buf[PATH_MAX], why[PATH_MAX + 128];
	struct stat st;
	const char *p;

	for (size_t i = 0; parents[i] != NULL; i++) {
		if ((p = conf_path(d, parents[i], buf, sizeof(buf))) == NULL) {
			continue;
		}
		if (juki_dir_check_parent(p, why, sizeof(why)) != 0) {
			add(d, "mode", p, SEV_ERROR, "%s: %s", parents[i], why);
		} else {
			add(d, "mode", p, SEV_OK, "%s: its folder is the daemon's alone",
			    parents[i]);
		}
	}
	if ((p = conf_path(d, "backup.dir", buf, sizeof(buf))) != NULL) {
		if (juki_dir_check_private(p, why, sizeof(why)) != 0) {
			add(d, "mode", p, SEV_ERROR, "backup.dir: %s", why);
		} else {
			add(d, "mode", p, SEV_OK, "backup.dir: the daemon's alone");
		}
	}
	for (size_t i = 0; secrets[i] != NULL; i++) {
		if ((p = conf_path(d, secrets[i], buf, sizeof(buf))) == NULL ||
		    strncmp(p, "pkcs11:", 7) == 0) {
			continue;
		}
		if (stat(p, &st) != 0) {
			add(d, "mode", p, SEV_ERROR, "%s: %s", secrets[i], strerror(errno));
		} else if ((st.st_mode & 077) != 0) {
			add(d, "mode", p, SEV_ERROR,
			    "%s: mode %04o: must not be accessible by group or others (0600 or "
			    "0400)",
			    secrets[i], (unsigned)(st.st_mode & 07777));
		} else {
			add(d, "mode", p, SEV_OK, "%s: mode %04o", secrets[i],
			    (unsigned)(st.st_mode & 07777));
		}
	}
}

/* Queues whose oldest message was waiting before the operating day began (delivery.deadline). */
static void
check_queues(struct doctor *d)
{
	const char *deadline = conf_str(d, "delivery.deadline");
	const json_t *queues = json_object_get(d->outbox, "queues"), *q;
	int64_t start;
	size_t i;

	if (d->self.kind == JUKI_KIND_FWGATE) {
		return;
	}
	if (d->outbox == NULL) {
		add(d, "queue", NULL, SEV_UNKNOWN, "unknown: the daemon did not answer");
		return;
	}
	if (deadline == NULL) {
		deadline = "08:30";
	}
	if (juki_clock_day_begun(d->now_ms, deadline, &start) != 0) {
		add(d, "queue", NULL, SEV_UNKNOWN, "delivery.deadline %s is not HH:MM", deadline);
		return;
	}
	if (json_array_size(queues) == 0) {
		add(d, "queue", NULL, SEV_OK, "the outbox is empty");
		return;
	}
	json_array_foreach(queues, i, q)
	{
		long long age = ctl_int(q, "oldest_age_ms");
		char subject[JUKI_URN_MAX + 32];

		snprintf(subject, sizeof(subject), "%s %s", ctl_str(q, "dest"),
			 ctl_str(q, "service"));
		if (d->now_ms - age < start) {
			add(d, "queue", subject, SEV_ERROR,
			    "%lld waiting, the oldest queued before today's operating day began "
			    "(%s JST): past the deadline",
			    ctl_int(q, "count"), deadline);
		} else {
			add(d, "queue", subject, SEV_OK, "%lld waiting, the oldest %lld s old",
			    ctl_int(q, "count"), age / 1000);
		}
	}
}

/* ---- reachability: the real handshakes ---- */

struct probe {
	int fd;
	SSL *outer, *inner;
	int64_t step;
};

static BIO_METHOD *tunnel_method;

static int
tun_write(BIO *bio, const char *data, size_t len, size_t *written)
{
	struct probe *p = BIO_get_data(bio);

	*written = 0;
	if (ctl_sock_ssl_write(p->outer, p->fd, data, len, p->step) != 0) {
		return 0;
	}
	*written = len;
	return 1;
}

static int
tun_read(BIO *bio, char *data, size_t len, size_t *got)
{
	struct probe *p = BIO_get_data(bio);

	if (ctl_sock_ssl_read(p->outer, p->fd, data, len, got, p->step) != 0) {
		*got = 0;
		return 0;
	}
	return 1;
}

static long
tun_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void)bio;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
tun_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static void
probe_close(struct probe *p)
{
	SSL_free(p->inner);
	SSL_free(p->outer);
	if (p->fd >= 0) {
		close(p->fd);
	}
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

static const char *
tls_why(SSL *ssl, char *buf, size_t len)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_error();

	if (v != X509_V_OK) {
		snprintf(buf, len, "certificate refused: %s", X509_verify_cert_error_string(v));
	} else if (e != 0) {
		ERR_error_string_n(e, buf, len);
	} else {
		snprintf(buf, len, "closed or timed out");
	}
	ERR_clear_error();
	return buf;
}

/* TCP and the outer TLS 1.3 handshake with the node's certificate; the peer must be a gateway. */
static int
probe_gateway(struct probe *p, struct juki_tls *tls, const char *gw, char *why, size_t whylen)
{
	struct juki_ident peer;
	char text[256];
	int r, rc;

	p->fd = -1;
	p->step = juki_clock_mono_ms() + STEP_MS;
	if ((rc = ctl_sock_connect(gw, p->step, &p->fd, text, sizeof(text))) != 0) {
		snprintf(why, whylen, "connect: %s", text);
		return rc;
	}
	if ((p->outer = juki_tls_ssl_new(tls, JUKI_TLS_CLIENT)) == NULL ||
	    SSL_set_fd(p->outer, p->fd) != 1) {
		snprintf(why, whylen, "out of memory");
		return JUKI_ENOMEM;
	}
	ERR_clear_error();
	while ((r = SSL_do_handshake(p->outer)) != 1) {
		if ((rc = ctl_sock_ssl_wait(p->outer, p->fd, r, p->step)) != 1) {
			snprintf(why, whylen, "outer TLS handshake: %s",
				 rc == JUKI_ETIMEDOUT ? "timed out"
						      : tls_why(p->outer, text, sizeof(text)));
			return JUKI_ETLS;
		}
	}
	if (juki_tls_peer_ident(p->outer, &peer) != 0 || peer.kind != JUKI_KIND_FWGATE) {
		snprintf(why, whylen, "the peer is not a gateway");
		return JUKI_ECERT;
	}
	snprintf(why, whylen, "TLS 1.3 with %s", peer.urn);
	return 0;
}

/* CONNECT dest service over an open outer session, then the inner handshake with dest. */
static int
probe_dest(struct probe *p, struct juki_tls *tls, const char *dest, const char *svc, char *why,
	   size_t whylen)
{
	char line[JUKI_LINE_MAX + 2], text[256];
	struct juki_ident peer;
	size_t n = 0, got;
	BIO *bio;
	int rc;

	p->step = juki_clock_mono_ms() + STEP_MS;
	snprintf(line, sizeof(line), "CONNECT %s %s\n", dest, svc);
	rc = ctl_sock_ssl_write(p->outer, p->fd, line, strlen(line), p->step);
	while (rc == 0 && n < JUKI_LINE_MAX) {
		char c;

		if ((rc = ctl_sock_ssl_read(p->outer, p->fd, &c, 1, &got, p->step)) != 0 ||
		    c == '\n') {
			break;
		}
		line[n++] = (unsigned char)c < 0x20 ? '?' : c;
	}
	line[n] = '\0';
	if (rc != 0) {
		snprintf(why, whylen, "CONNECT: %s",
			 rc == JUKI_ETIMEDOUT ? "no answer in time" : juki_strerror(rc));
		return rc;
	}
	if (strcmp(line, "OK") != 0) {
		snprintf(why, whylen, "the gateway answered %s", line);
		return JUKI_EPERM;
	}
	if (tunnel_method == NULL) {
		tunnel_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "doctor");
		if (tunnel_method == NULL) {
			return JUKI_ENOMEM;
		}
		BIO_meth_set_write_ex(tunnel_method, tun_write);
		BIO_meth_set_read_ex(tunnel_method, tun_read);
		BIO_meth_set_ctrl(tunnel_method, tun_ctrl);
		BIO_meth_set_create(tunnel_method, tun_create);
	}
	if ((p->inner = juki_tls_ssl_new(tls, JUKI_TLS_CLIENT)) == NULL ||
	    (bio = BIO_new(tunnel_method)) == NULL) {
		return JUKI_ENOMEM;
	}
	BIO_set_data(bio, p);
	SSL_set_bio(p->inner, bio, bio);
	ERR_clear_error();
	if (SSL_connect(p->inner) != 1) {
		snprintf(why, whylen, "inner TLS handshake: %s",
			 tls_why(p->inner, text, sizeof(text)));
		return JUKI_ETLS;
	}
	if (juki_tls_peer_ident(p->inner, &peer) != 0 || strcmp(peer.urn, dest) != 0) {
		snprintf(why, whylen, "the inner certificate names %s", peer.urn);
		return JUKI_ECERT;
	}
	snprintf(why, whylen, "TLS 1.3 end to end (%s)", SSL_get_version(p->inner));
	/* A clean end: the destination sees the channel close, nothing sent on it. */
	SSL_shutdown(p->inner);
	return 0;
}

/* Every (dest, service) the node sends to: its links, its queues, its watchers; as pairs. */
static void
add_dest(json_t *out, const char *dest, const char *svc)
{
	char key[JUKI_URN_MAX + 64];

	if (strcmp(dest, "-") == 0 || strcmp(svc, "-") == 0) {
		return;
	}
	snprintf(key, sizeof(key), "%s %s", dest, svc);
	json_object_set_new(out, key, json_pack("[s,s]", dest, svc));
}

static json_t *
destinations(struct doctor *d)
{
	json_t *out = json_object(), *e;
	const json_t *links = json_object_get(json_object_get(d->status, "outbound"), "links");
	const json_t *queues = json_object_get(d->outbox, "queues");
	const json_t *watchers = json_object_get(json_object_get(d->status, "monitor"), "watchers");
	size_t i;

	json_array_foreach(links, i, e)
	{
		add_dest(out, ctl_str(e, "dest"), ctl_str(e, "service"));
	}
	json_array_foreach(queues, i, e)
	{
		add_dest(out, ctl_str(e, "dest"), ctl_str(e, "service"));
	}
	json_array_foreach(watchers, i, e)
	{
		add_dest(out, ctl_str(e, "node"), "monitor");
	}
	return out;
}

static void
check_reach(struct doctor *d)
{
	struct juki_tls_files files = {0};
	struct juki_tls_conf tc;
	struct juki_tls *tls = NULL;
	char why[512], buf[5][PATH_MAX];
	const json_t *gws = json_object_get(d->conf, "gateways"), *g;
	json_t *dests;
	const char *pair;
	json_t *dv;
	size_t i;
	int any = 0;

	if (d->self.kind == JUKI_KIND_FWGATE) {
		return;
	}
	files.cert = (char *)conf_path(d, "tls.cert", buf[0], sizeof(buf[0]));
	files.key = (char *)conf_path(d, "tls.key", buf[1], sizeof(buf[1]));
	files.ca = (char *)conf_path(d, "tls.ca", buf[2], sizeof(buf[2]));
	files.crl = (char *)conf_path(d, "tls.crl", buf[3], sizeof(buf[3]));
	files.pin_file = (char *)conf_path(d, "tls.pin_file", buf[4], sizeof(buf[4]));
	tc = juki_tls_files_conf(&files);
	if (json_array_size(gws) == 0) {
		add(d, "reach", NULL, SEV_WARNING, "no gateways configured");
		return;
	}
	if (juki_tls_new(&tc, &tls, why, sizeof(why)) != 0) {
		add(d, "reach", NULL, SEV_ERROR, "the node's TLS material: %s", why);
		return;
	}
	json_array_foreach(gws, i, g)
	{
		struct probe p = {.fd = -1};
		const char *gw = json_string_value(g);

		if (gw == NULL) {
			continue;
		}
		if (probe_gateway(&p, tls, gw, why, sizeof(why)) == 0) {
			add(d, "reach", gw, SEV_OK, "gateway: %s", why);
			any = 1;
		} else {
			/* A backup line down is a warning while another line works. */
			add(d, "reach", gw, i == 0 ? SEV_ERROR : SEV_WARNING, "gateway: %s", why);
		}
		probe_close(&p);
	}
	dests = destinations(d);
	if (json_object_size(dests) == 0) {
		add(d, "reach", NULL, SEV_OK,
		    "no destination known yet (none in the outbox, links or watchers)");
	}
	json_object_foreach(dests, pair, dv)
	{
		const char *dest = json_string_value(json_array_get(dv, 0));
		const char *svc = json_string_value(json_array_get(dv, 1));
		enum sev sev = SEV_ERROR;

		snprintf(why, sizeof(why), "no gateway answered");
		json_array_foreach(gws, i, g)
		{
			struct probe p = {.fd = -1};
			char gwhy[512];

			if (!any || json_string_value(g) == NULL ||
			    probe_gateway(&p, tls, json_string_value(g), gwhy, sizeof(gwhy)) != 0) {
				probe_close(&p);
				continue;
			}
			if (probe_dest(&p, tls, dest, svc, why, sizeof(why)) == 0) {
				sev = SEV_OK;
			}
			probe_close(&p);
			if (sev == SEV_OK) {
				size_t used = strlen(why);

				if (snprintf(why + used, sizeof(why) - used, " via %s",
					     json_string_value(g)) < 0) {
					why[used] = '\0';
				}
				break;
			}
		}
		add(d, "reach", dest, sev, "%s: %s", svc, why);
	}
	json_decref(dests);
	juki_tls_free(tls);
}

/* ---- the table ---- */

static const struct {
	const char *name;
	void (*fn)(struct doctor *d);
} checks[] = {
    {"config", check_config}, {"certificates", check_certs}, {"clock", check_skew},
    {"disk", check_disk},     {"stores", check_stores},      {"modes", check_modes},
    {"queues", check_queues}, {"reach", check_reach},
};

static json_t *
ask(struct doctor *d, const char *cmd)
{
	struct juki_ctl_error err;
	json_t *result = NULL;

	if (d->socket == NULL ||
	    juki_ctl_call(d->socket, cmd, json_object(),
			  d->ctl->timeout_ms < CHECK_NEED_MS ? CHECK_NEED_MS : d->ctl->timeout_ms,
			  &result, &err) != 0) {
		return NULL;
	}
	return result;
}

static void
print_text(const struct doctor *d)
{
	const json_t *r;
	size_t i;

	json_array_foreach(d->rows, i, r)
	{
		const char *subject = ctl_str(r, "subject");

		printf("%-8s %-12s %s%s%s\n", ctl_str(r, "severity"), ctl_str(r, "check"),
		       strcmp(subject, "-") != 0 ? subject : "",
		       strcmp(subject, "-") != 0 ? ": " : "", ctl_str(r, "detail"));
	}
	printf("%s\n", d->worst >= SEV_ERROR     ? "doctor: errors found"
		       : d->worst >= SEV_WARNING ? "doctor: warnings"
						 : "doctor: all checks passed");
}

static int
cmd_doctor(struct ctl *ctl, const struct ctl_req *req)
{
	struct doctor d = {.ctl = ctl, .socket = ctl->socket};
	char why[PATH_MAX + 128], *slash;
	const char *node, *off;
	int64_t offset = 0;
	int rc;

	d.rows = json_array();
	d.config = ctl_val(req, "config");
	if (d.socket != NULL) {
		d.status = ask(&d, "status");
	}
	if (d.config == NULL) {
		d.config = json_string_value(json_object_get(d.status, "config"));
	}
	if (d.config == NULL) {
		fprintf(stderr, "juki-ctl: doctor: %s\n",
			d.socket == NULL ? "give --config FILE or the daemon's socket (-s)"
					 : "the daemon did not answer: give --config FILE");
		json_decref(d.rows);
		json_decref(d.status);
		return CTL_USAGE;
	}
	if ((d.conf = read_yaml(d.config, why, sizeof(why))) == NULL) {
		add(&d, "config", d.config, SEV_ERROR, "%s", why);
		goto done;
	}
	snprintf(d.basedir, sizeof(d.basedir), "%s", d.config);
	if ((slash = strrchr(d.basedir, '/')) != NULL) {
		*slash = '\0';
	} else {
		snprintf(d.basedir, sizeof(d.basedir), ".");
	}
	node = conf_str(&d, "node");
	if (node == NULL || juki_ident_parse(node, &d.self) != 0) {
		add(&d, "config", d.config, SEV_ERROR, "node: not an identity");
		goto done;
	}
	if ((off = conf_str(&d, "clock_offset")) != NULL) {
		juki_conf_parse_duration(off, &offset);
	}
	d.now_ms = (int64_t)time(NULL) * 1000 + offset;
	if (d.socket == NULL) {
		d.socket = conf_str(&d, "control");
		d.status = ask(&d, "status");
	}
	if (d.status == NULL) {
		add(&d, "daemon", d.socket, SEV_ERROR, "does not answer on its control socket");
	} else {
		add(&d, "daemon", ctl_str(d.status, "node"), SEV_OK, "%s %s answers, up %lld s",
		    ctl_str(d.status, "daemon"), ctl_str(d.status, "version"),
		    ctl_int(d.status, "uptime_ms") / 1000);
		if (d.self.kind != JUKI_KIND_FWGATE) {
			d.outbox = ask(&d, "outbox");
		}
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		checks[i].fn(&d);
	}
done:
	if (ctl->json) {
		json_t *out = json_pack(
		    "{s:s,s:s,s:i,s:O}", "config", d.config, "worst", sev_names[d.worst], "exit",
		    d.worst >= SEV_ERROR ? 2 : d.worst >= SEV_WARNING, "checks", d.rows);

		ctl_print_new(ctl, out);
	} else {
		print_text(&d);
	}
	rc = d.worst >= SEV_ERROR ? 2 : d.worst >= SEV_WARNING ? 1 : 0;
	json_decref(d.rows);
	json_decref(d.conf);
	json_decref(d.status);
	json_decref(d.outbox);
	return rc;
}

const struct ctl_cmd ctl_doctor_cmds[] = {
    {"doctor", cmd_doctor, NULL,
     "check a node's health: configuration, certificates and CRL, clock skew, disk, stores "
     "(quick_check), folder and key modes, queues past the deadline, gateways and "
     "destinations with a real handshake; exit 0 ok, 1 warning, 2 error",
     .opts = {CTL_OPT_ROW("config", CTL_FILE, NULL, "FILE")}, .offline = 1},
    {.name = NULL},
};
