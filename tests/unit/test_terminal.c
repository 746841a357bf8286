#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "juki/base/error.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"

#include "helpers.h"
#include "terminal.h"

#define CARD_PIN   "1234"
#define OP_PIN     "4321"
#define PASSPHRASE "correct horse battery"
#define OP_URN     "urn:juki:op:cs:131016:tanaka"

/*
 * One temp dir for the whole run: a PKI (cs:131016, the daemon; pref:13,
 * another node; the operator tanaka; a revoked earlier certificate of
 * cs:131016 kept as revoked.crt/.key), tanaka's key encrypted in tanaka.p8,
 * and, when SoftHSM is installed, a token made by the fixture script.
 */
struct fix {
	char tmp[64];
	char pki[128];
	char ca[192];
	char crl[192];
	char op_cert[192];
	char op_key[192];
	char enc_key[192];
	char uri[256];
	int softhsm;
	char err[1024];
};

static int
copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[8192];
	FILE *in = fopen(from, "r");
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t n;
	int rc = in != NULL && out >= 0 ? 0 : -1;

	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (write(out, buf, n) != (ssize_t)n) {
			rc = -1;
		}
	}
	if (in != NULL) {
		fclose(in);
	}
	if (out >= 0) {
		close(out);
	}
	return rc == 0 ? chmod(to, mode) : rc;
}

/* Run the fixture script; take SOFTHSM2_CONF into our environment and the URI. */
static int
make_token(struct fix *f)
{
	const char *src = getenv("JUKI_SOURCE_DIR");
	char cmd[1024], line[512];
	FILE *p;
	int got = 0;

	if (src == NULL) {
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "sh %s/tests/fixtures/softhsm-card.sh %s/hsm card1 %s %s", src,
		 f->tmp, CARD_PIN, f->op_key);
	p = popen(cmd, "r");
	if (p == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "SOFTHSM2_CONF=", 14) == 0) {
			setenv("SOFTHSM2_CONF", line + 14, 1);
			got++;
		} else if (strncmp(line, "URI=", 4) == 0) {
			snprintf(f->uri, sizeof(f->uri), "%.200s", line + 4);
			got++;
		}
	}
	return pclose(p) == 0 && got == 2 ? 0 : -1;
}

static int
group_setup(void **state)
{
	static const char *const urns[] = {"urn:juki:pref:13", OP_URN};
	struct fix *f = calloc(1, sizeof(*f));
	char from[256], to[256];

	if (f == NULL) {
		return -1;
	}
	*state = f;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "terminal") == NULL) {
		return -1;
	}
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->pki);
	snprintf(f->crl, sizeof(f->crl), "%s/crl.pem", f->pki);
	snprintf(f->op_cert, sizeof(f->op_cert), "%s/op-cs-131016-tanaka.crt", f->pki);
	snprintf(f->op_key, sizeof(f->op_key), "%s/op-cs-131016-tanaka.key", f->pki);
	snprintf(f->enc_key, sizeof(f->enc_key), "%s/tanaka.p8", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:cs:131016", 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	/* the daemon's first certificate, revoked and then issued afresh */
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/cs-131016.%s", f->pki, i == 0 ? "crt" : "key");
		snprintf(to, sizeof(to), "%s/revoked.%s", f->tmp, i == 0 ? "crt" : "key");
		if (copy_file(from, to, i == 0 ? 0644 : 0600) != 0) {
			return -1;
		}
	}
	if (juki_pki_revoke(f->pki, "cs-131016", f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:cs:131016", 30, NULL, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	for (size_t i = 0; i < sizeof(urns) / sizeof(urns[0]); i++) {
		if (juki_pki_issue(f->pki, urns[i], 30, NULL, f->err, sizeof(f->err)) != 0) {
			return -1;
		}
	}
	if (copy_file(f->op_key, f->enc_key, 0600) != 0 ||
	    juki_pki_encrypt_key(f->enc_key, PASSPHRASE, f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	/* sato's card, whose certificate is revoked */
	snprintf(from, sizeof(from), "%s/op-cs-131016-sato.key", f->pki);
	snprintf(to, sizeof(to), "%s/sato.p8", f->tmp);
	if (juki_pki_issue(f->pki, "urn:juki:op:cs:131016:sato", 30, NULL, f->err,
			   sizeof(f->err)) != 0 ||
	    copy_file(from, to, 0600) != 0 ||
	    juki_pki_encrypt_key(to, PASSPHRASE, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_revoke(f->pki, "urn:juki:op:cs:131016:sato", f->err, sizeof(f->err)) != 0) {
		return -1;
	}
	f->softhsm = system("command -v softhsm2-util >/dev/null 2>&1") == 0;
	if (f->softhsm && make_token(f) != 0) {
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	struct fix *f = *state;
	int rc = 0;

	if (f != NULL && f->tmp[0] != '\0') {
		rc = test_rm_rf(f->tmp);
	}
	free(f);
	ERR_clear_error();
	return rc;
}

static void
need_softhsm(const struct fix *f)
{
	if (!f->softhsm) {
		skip();
	}
}

static X509 *
read_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

/* What a user checks of a card: it is the certificate's key, and it signs. */
static void
assert_card_of(EVP_PKEY *key, const char *cert_path)
{
	static const unsigned char data[] = "juki operator card";
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	X509 *cert = read_cert(cert_path);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_non_null(key);
	assert_int_equal(X509_check_private_key(cert, key), 1);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, data, sizeof(data)), 1);
	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)),
			 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, data, sizeof(data)), 1);
	EVP_MD_CTX_free(md);
	X509_free(cert);
}

static void
uri_with(const struct fix *f, const char *extra, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", f->uri, extra);
}

/* The card on a token */

static void
test_card_token_right_pin(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	need_softhsm(f);
	assert_int_equal(ctl_card_key(f->uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)), 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
}

static void
test_card_token_wrong_pin(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	need_softhsm(f);
	assert_int_equal(ctl_card_key(f->uri, NULL, "9999", &key, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	assert_null(key);
	assert_non_null(strstr(f->err, "refused the card PIN"));
	/* the right PIN after a wrong one */
	assert_int_equal(ctl_card_key(f->uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)), 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
	/* once that key is gone the token is logged out: a wrong PIN is refused again */
	key = NULL;
	assert_int_equal(ctl_card_key(f->uri, NULL, "0000", &key, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	assert_null(key);
	/* a PIN of a length SoftHSM refuses outright is a wrong PIN too */
	assert_int_equal(ctl_card_key(f->uri, NULL, "12", &key, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
}

static void
test_card_token_pin_in_uri(void **state)
{
	struct fix *f = *state;
	char uri[512], pinfile[128];
	EVP_PKEY *key = NULL;
	FILE *fp;

	need_softhsm(f);
	uri_with(f, ";pin-value=" CARD_PIN, uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, NULL, &key, f->err, sizeof(f->err)), 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
	key = NULL;

	uri_with(f, ";pin-value=0000", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, NULL, &key, f->err, sizeof(f->err)), JUKI_EAUTH);
	assert_null(strstr(f->err, "0000"));

	/* libp11 0.4.12 reads a pin-source file whole: no newline after the PIN */
	snprintf(pinfile, sizeof(pinfile), "%.100s/card.pin", f->tmp);
	fp = fopen(pinfile, "w");
	assert_non_null(fp);
	fputs(CARD_PIN, fp);
	fclose(fp);
	snprintf(uri, sizeof(uri), "%.256s;pin-source=file:%s", f->uri, pinfile);
	assert_int_equal(ctl_card_key(uri, NULL, NULL, &key, f->err, sizeof(f->err)), 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
}

static void
test_card_token_no_pin(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	need_softhsm(f);
	assert_int_equal(ctl_card_key(f->uri, NULL, NULL, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_null(key);
	assert_non_null(strstr(f->err, "no card PIN"));
}

static void
test_card_token_module_path(void **state)
{
	struct fix *f = *state;
	char uri[512];
	EVP_PKEY *key = NULL;

	need_softhsm(f);
	uri_with(f, "?module-path=/usr/lib/softhsm/libsofthsm2.so", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)), 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
	key = NULL;

	/* percent-encoded, and with a pin-value after it in the query */
	uri_with(f, "?module-path=%2Fusr%2Flib%2Fsofthsm%2Flibsofthsm2.so&pin-value=" CARD_PIN, uri,
		 sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, NULL, &key, f->err, sizeof(f->err)), 0);
	EVP_PKEY_free(key);
	key = NULL;

	uri_with(f, "?module-path=/nonexistent/libpkcs11.so", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_ENOENT);
	assert_null(key);

	uri_with(f, "?module-path=", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	uri_with(f, "?module-path=%2", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	uri_with(f, "?module-path=%00x", uri, sizeof(uri));
	assert_int_equal(ctl_card_key(uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);

	/* and the default module is back for the next card */
	assert_int_equal(ctl_card_key(f->uri, NULL, CARD_PIN, &key, f->err, sizeof(f->err)), 0);
	EVP_PKEY_free(key);
}

static void
test_card_token_not_there(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	need_softhsm(f);
	assert_int_equal(ctl_card_key("pkcs11:token=nosuch;object=op;type=private", NULL, CARD_PIN,
				      &key, f->err, sizeof(f->err)),
			 JUKI_ENOENT);
	assert_non_null(strstr(f->err, "token=nosuch"));
	assert_int_equal(ctl_card_key("pkcs11:token=card1;object=other;type=private", NULL,
				      CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_ENOENT);
	assert_null(key);
}

/* What libp11 would choke on is refused before it sees it, with a reason. */
static void
test_card_token_bad_uri(void **state)
{
	static const char *const bad[][2] = {
	    {"pkcs11:token=card1;colour=blue", "colour is not supported"},
	    {"pkcs11:token=card1;;object=op", "no attribute=value"},
	    {"pkcs11:token=card1;object", "no attribute=value"},
	    {"pkcs11:token=card1;object=", "object is empty or malformed"},
	    {"pkcs11:token=card1;object=o%zz", "object is empty or malformed"},
	    {"pkcs11:token=card1;object=op;type=cert", "type=private"},
	    {"pkcs11:token=card1?pin-source=file:/nonexistent/pin", "cannot be read"},
	    {"pkcs11:token=card1?pin-source=|cat /etc/pin", "no commands"},
	    {"pkcs11:token=card1;pin-value=", "pin-value is empty"},
	};
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    ctl_card_key(bad[i][0], NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
		    JUKI_EINVAL);
		if (strstr(f->err, bad[i][1]) == NULL) {
			fail_msg("%s: %s", bad[i][0], f->err);
		}
		assert_null(key);
	}
}

static void
test_card_bad_args(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *key = NULL;

	assert_int_equal(ctl_card_key("file:/tmp/x", NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(ctl_card_key(f->uri, f->enc_key, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(ctl_card_key(NULL, NULL, CARD_PIN, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_null(key);
}

static void
test_uri_has_pin(void **state)
{
	(void)state;
	assert_false(ctl_card_uri_has_pin(NULL));
	assert_false(ctl_card_uri_has_pin("pkcs11:token=a;object=b"));
	assert_false(ctl_card_uri_has_pin("pkcs11:object=pin-value"));
	assert_false(ctl_card_uri_has_pin("pkcs11:token=a;pin-valueX=1"));
	assert_false(ctl_card_uri_has_pin("file:/x;pin-value=1"));
	assert_true(ctl_card_uri_has_pin("pkcs11:token=a;pin-value=1234"));
	assert_true(ctl_card_uri_has_pin("PKCS11:pin-value=1234"));
	assert_true(ctl_card_uri_has_pin("pkcs11:token=a?pin-source=file:/etc/pin"));
	assert_true(ctl_card_uri_has_pin("pkcs11:token=a?module-path=/x.so&pin-value=1"));
}

/* The card as an encrypted key file */

static void
test_card_file(void **state)
{
	struct fix *f = *state;
	char path[256];
	EVP_PKEY *key = NULL;

	assert_int_equal(ctl_card_key(NULL, f->enc_key, PASSPHRASE, &key, f->err, sizeof(f->err)),
			 0);
	assert_card_of(key, f->op_cert);
	EVP_PKEY_free(key);
	key = NULL;

	assert_int_equal(
	    ctl_card_key(NULL, f->enc_key, "wrong horse", &key, f->err, sizeof(f->err)),
	    JUKI_EAUTH);
	assert_non_null(strstr(f->err, "wrong passphrase"));
	assert_int_equal(ctl_card_key(NULL, f->enc_key, NULL, &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_int_equal(ctl_card_key(NULL, f->enc_key, "", &key, f->err, sizeof(f->err)),
			 JUKI_EINVAL);

	/* readable by others: refused before any passphrase is tried */
	snprintf(path, sizeof(path), "%s/open.p8", f->tmp);
	assert_int_equal(copy_file(f->enc_key, path, 0644), 0);
	assert_int_equal(ctl_card_key(NULL, path, PASSPHRASE, &key, f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	assert_non_null(strstr(f->err, "0644"));

	/* a plain key file is no card */
	assert_int_equal(ctl_card_key(NULL, f->op_key, PASSPHRASE, &key, f->err, sizeof(f->err)),
			 JUKI_ECERT);
	assert_non_null(strstr(f->err, "not an encrypted PKCS#8 key"));

	snprintf(path, sizeof(path), "%s/nosuch.p8", f->tmp);
	assert_int_equal(ctl_card_key(NULL, path, PASSPHRASE, &key, f->err, sizeof(f->err)),
			 -ENOENT);
	assert_null(key);
}

/* PINs */

/* A pipe holding text, its writing end closed: what --pin-fd gets. */
static int
pipe_with(const char *text, size_t len)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], text, len), (ssize_t)len);
	close(fds[1]);
	return fds[0];
}

static int
read_from(const char *text, size_t len, char *buf, size_t buflen, char *err)
{
	int fd = pipe_with(text, len);
	int rc = ctl_read_pin(fd, NULL, buf, buflen, err, 256);

	close(fd);
	return rc;
}

static void
test_read_pin_fd(void **state)
{
	char buf[257], big[400], err[256];
	int fd;

	(void)state;
	assert_int_equal(read_from("1234\n", 5, buf, sizeof(buf), err), 0);
	assert_string_equal(buf, "1234");
	/* the last line may lack its newline; a CR before the newline goes */
	assert_int_equal(read_from("abcd", 4, buf, sizeof(buf), err), 0);
	assert_string_equal(buf, "abcd");
	assert_int_equal(read_from("pass word\r\n", 11, buf, sizeof(buf), err), 0);
	assert_string_equal(buf, "pass word");

	/* one line per call: two secrets on one fd */
	fd = pipe_with("1234\n4321\n", 10);
	assert_int_equal(ctl_read_pin(fd, NULL, buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "1234");
	assert_int_equal(ctl_read_pin(fd, NULL, buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "4321");
	assert_int_equal(ctl_read_pin(fd, NULL, buf, sizeof(buf), err, sizeof(err)), JUKI_EINVAL);
	assert_non_null(strstr(err, "empty"));
	close(fd);

	assert_int_equal(read_from("\n1234\n", 6, buf, sizeof(buf), err), JUKI_EINVAL);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(read_from("", 0, buf, sizeof(buf), err), JUKI_EINVAL);
	assert_int_equal(read_from("12\0"
				   "34\n",
				   6, buf, sizeof(buf), err),
			 JUKI_EINVAL);
	assert_non_null(strstr(err, "NUL"));

	/* 256 bytes is the most; 257 and 300 are refused, and nothing is left in buf */
	memset(big, 'x', sizeof(big));
	big[256] = '\n';
	assert_int_equal(read_from(big, 257, buf, sizeof(buf), err), 0);
	assert_int_equal(strlen(buf), 256);
	big[256] = 'x';
	big[257] = '\n';
	assert_int_equal(read_from(big, 258, buf, sizeof(buf), err), JUKI_EINVAL);
	assert_non_null(strstr(err, "longer than 256"));
	big[257] = 'x';
	big[300] = '\n';
	assert_int_equal(read_from(big, 301, buf, sizeof(buf), err), JUKI_EINVAL);
	assert_int_equal(buf[0], '\0');
	/* a smaller buffer is the limit */
	assert_int_equal(read_from("12345\n", 6, buf, 5, err), JUKI_EINVAL);
	assert_int_equal(read_from("1234\n", 5, buf, 5, err), 0);
	assert_int_equal(ctl_read_pin(0, NULL, buf, 1, err, sizeof(err)), JUKI_EINVAL);

	/* a closed descriptor */
	fd = pipe_with("1234\n", 5);
	close(fd);
	assert_int_equal(ctl_read_pin(fd, NULL, buf, sizeof(buf), err, sizeof(err)), -EBADF);
}

static int
wait_for(int fd, const char *want, char *seen, size_t len)
{
	size_t n = 0;

	seen[0] = '\0';
	while (strstr(seen, want) == NULL && n + 1 < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0) {
			return -1;
		}
		r = read(fd, seen + n, len - 1 - n);
		if (r <= 0) {
			return -1;
		}
		n += (size_t)r;
		seen[n] = '\0';
	}
	return strstr(seen, want) != NULL ? 0 : -1;
}

/*
 * ctl_read_pin(-1) in a child whose terminal is a pty we hold: what it
 * read comes back on a pipe as "<rc>:<pin>".
 */
static pid_t
tty_child(int *master, int *result)
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = forkpty(master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[257], err[256], out[600];
		int rc;

		close(fds[0]);
		rc = ctl_read_pin(-1, "PIN: ", buf, sizeof(buf), err, sizeof(err));
		snprintf(out, sizeof(out), "%d:%s", rc, rc == 0 ? buf : err);
		if (write(fds[1], out, strlen(out)) < 0) {
			_exit(2);
		}
		_exit(0);
	}
	close(fds[1]);
	*result = fds[0];
	return pid;
}

static void
test_read_pin_tty(void **state)
{
	struct termios tio;
	char seen[512], result[600] = "";
	int master, res, status;
	ssize_t n;
	pid_t pid;

	(void)state;
	pid = tty_child(&master, &res);
	assert_int_equal(wait_for(master, "PIN: ", seen, sizeof(seen)), 0);
	/* the line discipline of the pty: echo off while the PIN is typed */
	assert_int_equal(tcgetattr(master, &tio), 0);
	assert_int_equal(tio.c_lflag & ECHO, 0);
	assert_int_equal(write(master, "s3cret\n", 7), 7);
	n = read(res, result, sizeof(result) - 1);
	assert_true(n > 0);
	result[n] = '\0';
	assert_string_equal(result, "0:s3cret");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* nothing of the PIN was echoed, and echo is back */
	n = read(master, seen, sizeof(seen) - 1);
	seen[n > 0 ? n : 0] = '\0';
	assert_null(strstr(seen, "s3cret"));
	assert_int_equal(tcgetattr(master, &tio), 0);
	assert_int_not_equal(tio.c_lflag & ECHO, 0);
	close(res);
	close(master);
}

static void
test_read_pin_tty_signal(void **state)
{
	struct termios tio;
	char seen[512];
	int master, res, status;
	pid_t pid;

	(void)state;
	pid = tty_child(&master, &res);
	assert_int_equal(wait_for(master, "PIN: ", seen, sizeof(seen)), 0);
	assert_int_equal(tcgetattr(master, &tio), 0);
	assert_int_equal(tio.c_lflag & ECHO, 0);
	/* the operator gives up half way: the program dies of the signal, echo comes back */
	assert_int_equal(write(master, "12", 2), 2);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_int_equal(tcgetattr(master, &tio), 0);
	assert_int_not_equal(tio.c_lflag & ECHO, 0);
	close(res);
	close(master);
}

static void
test_read_pin_no_tty(void **state)
{
	int fds[2], status;
	char out[300] = "";
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[257], err[256];
		int rc;

		/* a new session has no controlling terminal: /dev/tty cannot open */
		setsid();
		rc = ctl_read_pin(-1, "PIN: ", buf, sizeof(buf), err, sizeof(err));
		snprintf(buf, sizeof(buf), "%d:%.200s", rc, err);
		_exit(write(fds[1], buf, strlen(buf)) > 0 ? 0 : 2);
	}
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(atoi(out), JUKI_EINVAL);
	assert_non_null(strstr(out, "no terminal"));
	close(fds[0]);
}

/* The terminal file */

static void
write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
test_terminal_load(void **state)
{
	struct fix *f = *state;
	struct ctl_terminal t = {.pin_fd = -1, .card_pin_fd = -1};
	struct ctl_terminal_hold *hold = NULL;
	char path[256], want[256];

	snprintf(path, sizeof(path), "%s/terminal.yaml", f->tmp);
	write_text(path, "connect: 127.0.0.1:7443\n"
			 "cert: pki/op-cs-131016-tanaka.crt\n"
			 "card: \"pkcs11:token=card1;object=op;type=private\"\n"
			 "ca: /etc/juki/ca.crt\n"
			 "crl: pki/crl.pem\n");
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), 0);
	assert_non_null(hold);
	assert_string_equal(t.connect, "127.0.0.1:7443");
	/* relative paths are the file's directory's */
	snprintf(want, sizeof(want), "%s/pki/op-cs-131016-tanaka.crt", f->tmp);
	assert_string_equal(t.cert, want);
	assert_string_equal(t.card, "pkcs11:token=card1;object=op;type=private");
	assert_null(t.key);
	assert_string_equal(t.ca, "/etc/juki/ca.crt");
	snprintf(want, sizeof(want), "%s/pki/crl.pem", f->tmp);
	assert_string_equal(t.crl, want);
	assert_int_equal(t.pin_fd, -1);
	ctl_terminal_hold_free(hold);

	/* options win: what is set stays; a --key set aside the file's card */
	memset(&t, 0, sizeof(t));
	t.connect = "[::1]:9000";
	t.key = "/home/op/tanaka.p8";
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), 0);
	assert_string_equal(t.connect, "[::1]:9000");
	assert_string_equal(t.key, "/home/op/tanaka.p8");
	assert_null(t.card);
	assert_string_equal(t.ca, "/etc/juki/ca.crt");
	ctl_terminal_hold_free(hold);
}

/* The example in conf/ stays a valid terminal file. */
static void
test_terminal_example(void **state)
{
	struct fix *f = *state;
	struct ctl_terminal t = {.pin_fd = -1, .card_pin_fd = -1};
	struct ctl_terminal_hold *hold = NULL;
	const char *src = getenv("JUKI_SOURCE_DIR");
	char path[512];

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/conf/terminal.yaml", src);
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), 0);
	assert_non_null(t.connect);
	assert_non_null(t.cert);
	assert_non_null(t.card);
	assert_null(t.key);
	assert_non_null(t.ca);
	assert_false(ctl_card_uri_has_pin(t.card));
	ctl_terminal_hold_free(hold);
}

static void
test_terminal_load_bad(void **state)
{
	struct fix *f = *state;
	struct ctl_terminal t;
	struct ctl_terminal_hold *hold = NULL;
	char path[256], where[300];

	snprintf(path, sizeof(path), "%s/bad.yaml", f->tmp);
	write_text(path, "connect: 127.0.0.1:7443\n"
			 "cert: a.crt\n"
			 "pin: 1234\n");
	memset(&t, 0, sizeof(t));
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), JUKI_ECONFIG);
	assert_null(hold);
	snprintf(where, sizeof(where), "%s:3:", path);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, "pin"));
	assert_null(t.connect);

	write_text(path, "connect: nowhere\n");
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), JUKI_ECONFIG);
	snprintf(where, sizeof(where), "%s:1:", path);
	assert_non_null(strstr(f->err, where));

	write_text(path, "card: /home/op/key.pem\n");
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), JUKI_ECONFIG);
	assert_non_null(strstr(f->err, "pkcs11:"));

	write_text(path, "card: pkcs11:token=a\nkey: k.p8\n");
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), JUKI_ECONFIG);
	assert_non_null(strstr(f->err, "one or the other"));

	write_text(path, "- connect\n");
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), JUKI_ECONFIG);

	snprintf(path, sizeof(path), "%s/nosuch.yaml", f->tmp);
	assert_int_equal(ctl_terminal_load(path, &t, &hold, f->err, sizeof(f->err)), -ENOENT);
	assert_null(hold);
	assert_null(t.connect);
}

/* Sessions against a daemon played by a thread */

enum server_mode {
	SERVE_OK,        /* login ok, then echo every request */
	SERVE_WRONG_PIN, /* wrong-pin, the session stays */
	SERVE_LOCKED,    /* locked, then the connection closes */
	SERVE_UNKNOWN,   /* unknown-operator */
	SERVE_SILENT,    /* never answers */
	SERVE_GARBAGE,   /* answers with a frame that is not JSON */
	SERVE_HANG_UP,   /* login ok, then the connection closes */
};

struct server {
	enum server_mode mode;
	struct juki_tls *tls;
	int lfd;
	int port;
	pthread_t thread;
	/* what the daemon saw */
	int handshakes;
	int requests;
	char pin[300];
};

static int
ssl_read_all(SSL *ssl, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		size_t n = 0;

		if (SSL_read_ex(ssl, p, len, &n) != 1) {
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static json_t *
server_recv(SSL *ssl)
{
	unsigned char hdr[4];
	char *payload;
	uint32_t len;
	json_t *doc = NULL;

	if (ssl_read_all(ssl, hdr, 4) != 0) {
		return NULL;
	}
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > 65536) {
		return NULL;
	}
	payload = malloc(len);
	if (payload != NULL && ssl_read_all(ssl, payload, len) == 0) {
		doc = json_loadb(payload, len, 0, NULL);
	}
	free(payload);
	return doc;
}

static void
server_send_raw(SSL *ssl, const char *text)
{
	size_t len = strlen(text);
	unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
				(unsigned char)(len >> 8), (unsigned char)len};
	size_t n;

	SSL_write_ex(ssl, hdr, 4, &n);
	SSL_write_ex(ssl, text, len, &n);
}

static void
server_send(SSL *ssl, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	server_send_raw(ssl, text);
	free(text);
	json_decref(doc);
}

static json_t *
error_response(const char *code, const char *message)
{
	return json_pack("{s:i,s:b,s:{s:s,s:s}}", "v", 1, "ok", 0, "error", "code", code, "message",
			 message);
}

static void
serve(struct server *srv, SSL *ssl)
{
	json_t *req;

	while ((req = server_recv(ssl)) != NULL) {
		const char *cmd = json_string_value(json_object_get(req, "cmd"));
		const char *pin =
		    json_string_value(json_object_get(json_object_get(req, "args"), "pin"));

		srv->requests++;
		if (cmd != NULL && strcmp(cmd, "login") == 0 && pin != NULL) {
			snprintf(srv->pin, sizeof(srv->pin), "%s", pin);
		}
		switch (srv->mode) {
		case SERVE_OK:
			if (strcmp(cmd, "login") == 0) {
				server_send(ssl, json_pack("{s:i,s:b,s:{s:s,s:[s],s:[s]}}", "v", 1,
							   "ok", 1, "result", "operator", OP_URN,
							   "roles", "clerk", "datasets", "131016"));
			} else {
				server_send(ssl, json_pack("{s:i,s:b,s:{s:s,s:O}}", "v", 1, "ok", 1,
							   "result", "cmd", cmd, "args",
							   json_object_get(req, "args")));
			}
			break;
		case SERVE_WRONG_PIN:
			server_send(ssl, error_response("wrong-pin", "wrong PIN; 2 attempts left"));
			break;
		case SERVE_LOCKED:
			server_send(ssl, error_response("locked", "the operator is locked"));
			json_decref(req);
			return;
		case SERVE_UNKNOWN:
			server_send(ssl, error_response("unknown-operator", "no such operator"));
			break;
		case SERVE_SILENT:
			break;
		case SERVE_GARBAGE:
			server_send_raw(ssl, "this is not json");
			break;
		case SERVE_HANG_UP:
			server_send(ssl, json_pack("{s:i,s:b,s:{s:s}}", "v", 1, "ok", 1, "result",
						   "operator", OP_URN));
			json_decref(req);
			return;
		}
		json_decref(req);
	}
}

static void *
server_main(void *arg)
{
	struct server *srv = arg;
	struct pollfd p = {.fd = srv->lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 10};
	SSL *ssl;
	int fd;

	if (poll(&p, 1, 10000) != 1) {
		return NULL;
	}
	fd = accept(srv->lfd, NULL, NULL);
	if (fd < 0) {
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssl = juki_tls_ssl_new(srv->tls, JUKI_TLS_SERVER);
	if (ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
		srv->handshakes++;
		serve(srv, ssl);
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return NULL;
}

/* A daemon at 127.0.0.1:<port> with the certificate name (in pki, or path prefix). */
static void
server_start(struct server *srv, struct fix *f, const char *cert_prefix, enum server_mode mode)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	char cert[256], key[256];
	struct juki_tls_conf conf = {.cert = cert, .key = key, .ca = f->ca, .crl = f->crl};

	memset(srv, 0, sizeof(*srv));
	srv->mode = mode;
	snprintf(cert, sizeof(cert), "%s.crt", cert_prefix);
	snprintf(key, sizeof(key), "%s.key", cert_prefix);
	if (juki_tls_new(&conf, &srv->tls, f->err, sizeof(f->err)) != 0) {
		fail_msg("server TLS: %s", f->err);
	}
	srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(srv->lfd >= 0);
	assert_int_equal(bind(srv->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(srv->lfd, 4), 0);
	assert_int_equal(getsockname(srv->lfd, (struct sockaddr *)&sin, &sl), 0);
	srv->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void
server_stop(struct server *srv)
{
	pthread_join(srv->thread, NULL);
	close(srv->lfd);
	juki_tls_free(srv->tls);
}

/* The terminal of tanaka at srv, the card on the token or in the file. */
struct term {
	struct ctl_terminal t;
	char connect[64];
};

static void
term_of(struct term *tm, struct fix *f, int port, int use_file, const char *card_pin,
	const char *op_pin)
{
	char text[600];

	memset(tm, 0, sizeof(*tm));
	snprintf(tm->connect, sizeof(tm->connect), "127.0.0.1:%d", port);
	tm->t.connect = tm->connect;
	tm->t.cert = f->op_cert;
	tm->t.ca = f->ca;
	tm->t.crl = f->crl;
	if (use_file) {
		tm->t.key = f->enc_key;
	} else {
		tm->t.card = f->uri;
	}
	snprintf(text, sizeof(text), "%s\n", card_pin);
	tm->t.card_pin_fd = pipe_with(text, strlen(text));
	snprintf(text, sizeof(text), "%s\n", op_pin);
	tm->t.pin_fd = pipe_with(text, strlen(text));
}

static void
term_done(struct term *tm)
{
	close(tm->t.pin_fd);
	close(tm->t.card_pin_fd);
}

static void
server_path(const struct fix *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->pki, name);
}

static void
session_ok(struct fix *f, int use_file)
{
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];
	const json_t *who;
	json_t *result = NULL;

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, use_file, use_file ? PASSPHRASE : CARD_PIN, OP_PIN);
	if (ctl_session_open(&tm.t, 10000, &s, &err) != 0) {
		fail_msg("session: %s: %s", err.code, err.message);
	}
	who = ctl_session_login(s);
	assert_string_equal(json_string_value(json_object_get(who, "operator")), OP_URN);
	assert_string_equal(json_string_value(json_array_get(json_object_get(who, "roles"), 0)),
			    "clerk");
	/* the daemon got the operator PIN as typed, and the session carries requests */
	assert_string_equal(srv.pin, OP_PIN);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ctl_session_call(s, "resident.show",
						  json_pack("{s:s}", "code", "24727059608"),
						  &result, &err),
				 0);
		assert_string_equal(json_string_value(json_object_get(result, "cmd")),
				    "resident.show");
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(result, "args"), "code")),
		    "24727059608");
		json_decref(result);
	}
	assert_int_equal(ctl_session_call(s, "status", NULL, &result, &err), 0);
	json_decref(result);
	ctl_session_close(s);
	server_stop(&srv);
	assert_int_equal(srv.handshakes, 1);
	assert_int_equal(srv.requests, 4);
	term_done(&tm);
}

static void
test_session_token(void **state)
{
	struct fix *f = *state;

	need_softhsm(f);
	session_ok(f, 0);
}

static void
test_session_key_file(void **state)
{
	session_ok(*state, 1);
}

/* One fd for both secrets: the card PIN is read first, then the operator PIN. */
static void
test_session_one_fd(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256], text[128];
	int fd;

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	snprintf(text, sizeof(text), "%s\n%s\n", PASSPHRASE, OP_PIN);
	fd = pipe_with(text, strlen(text));
	tm.t.pin_fd = tm.t.card_pin_fd = fd;
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), 0);
	ctl_session_close(s);
	server_stop(&srv);
	assert_string_equal(srv.pin, OP_PIN);
	close(fd);
}

/* The daemon refuses the login: the code comes back and the right return value. */
static void
login_refused(struct fix *f, enum server_mode mode, int want_rc, const char *want_code)
{
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, mode);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, "9999");
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), want_rc);
	assert_null(s);
	assert_string_equal(err.code, want_code);
	server_stop(&srv);
	assert_string_equal(srv.pin, "9999");
	term_done(&tm);
}

static void
test_session_wrong_pin(void **state)
{
	struct fix *f = *state;

	login_refused(f, SERVE_WRONG_PIN, JUKI_EAUTH, "wrong-pin");
	login_refused(f, SERVE_LOCKED, JUKI_ELOCKED, "locked");
	login_refused(f, SERVE_UNKNOWN, JUKI_EINVAL, "unknown-operator");
}

/* A card that will not open: the daemon never hears of us. */
static void
test_session_card_refused(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256], cert[256], node_key[256];

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, "wrong horse", OP_PIN);
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), JUKI_EAUTH);
	assert_string_equal(err.code, "wrong-pin");
	assert_non_null(strstr(err.message, "passphrase"));
	term_done(&tm);

	if (f->softhsm) {
		term_of(&tm, f, srv.port, 0, "9999", OP_PIN);
		assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), JUKI_EAUTH);
		assert_string_equal(err.code, "wrong-pin");
		assert_non_null(strstr(err.message, "card PIN"));
		term_done(&tm);
	}

	/* a certificate that is not the card's key */
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	server_path(f, "pref-13.crt", cert, sizeof(cert));
	tm.t.cert = cert;
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), JUKI_ECERT);
	assert_string_equal(err.code, "card");
	assert_non_null(strstr(err.message, "does not match"));
	term_done(&tm);

	/* a node's certificate and key: not an operator's card */
	server_path(f, "cs-131016.key", cert, sizeof(cert));
	snprintf(node_key, sizeof(node_key), "%s/node.p8", f->tmp);
	assert_int_equal(copy_file(cert, node_key, 0600), 0);
	assert_int_equal(juki_pki_encrypt_key(node_key, PASSPHRASE, f->err, sizeof(f->err)), 0);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	server_path(f, "cs-131016.crt", cert, sizeof(cert));
	tm.t.cert = cert;
	tm.t.key = node_key;
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), JUKI_ECERT);
	assert_string_equal(err.code, "card");
	assert_non_null(strstr(err.message, "not an operator"));
	term_done(&tm);

	/* the card PIN cannot be read */
	term_of(&tm, f, srv.port, 1, "", OP_PIN);
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "usage");
	assert_non_null(strstr(err.message, "key passphrase: "));
	term_done(&tm);

	/* let the daemon's thread go: a client that says nothing */
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_port = htons((uint16_t)srv.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		close(fd);
	}
	server_stop(&srv);
	assert_int_equal(srv.handshakes, 0);
	assert_int_equal(srv.requests, 0);
	assert_null(s);
}

/* The daemon's certificate is valid but for another node: no PIN goes to it. */
static void
test_session_wrong_peer(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];

	server_path(f, "pref-13", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	assert_int_not_equal(ctl_session_open(&tm.t, 10000, &s, &err), 0);
	assert_null(s);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, "wrong peer"));
	assert_non_null(strstr(err.message, "urn:juki:pref:13"));
	assert_non_null(strstr(err.message, "urn:juki:cs:131016"));
	server_stop(&srv);
	assert_int_equal(srv.requests, 0);
	assert_string_equal(srv.pin, "");
	term_done(&tm);
}

static void
test_session_revoked_daemon(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s/revoked", f->tmp);
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	assert_int_not_equal(ctl_session_open(&tm.t, 10000, &s, &err), 0);
	assert_null(s);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, "revoked"));
	server_stop(&srv);
	assert_int_equal(srv.requests, 0);
	term_done(&tm);

	/* without the CRL the same certificate passes: it is the CRL that refuses it */
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	tm.t.crl = NULL;
	assert_int_equal(ctl_session_open(&tm.t, 10000, &s, &err), 0);
	ctl_session_close(s);
	server_stop(&srv);
	term_done(&tm);
}

/* The daemon refuses a revoked card in the handshake: no login is processed. */
static void
test_session_revoked_card(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256], cert[256], key[256];

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_OK);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	server_path(f, "op-cs-131016-sato.crt", cert, sizeof(cert));
	snprintf(key, sizeof(key), "%s/sato.p8", f->tmp);
	tm.t.cert = cert;
	tm.t.key = key;
	assert_int_not_equal(ctl_session_open(&tm.t, 10000, &s, &err), 0);
	assert_null(s);
	assert_string_equal(err.code, "unreachable");
	if (strstr(err.message, "refused the card's certificate (revoked)") == NULL) {
		fail_msg("%s", err.message);
	}
	server_stop(&srv);
	assert_int_equal(srv.handshakes, 0);
	assert_int_equal(srv.requests, 0);
	term_done(&tm);
}

static void
test_session_unreachable(void **state)
{
	struct fix *f = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct term tm;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port nobody listens on */
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	term_of(&tm, f, ntohs(sin.sin_port), 1, PASSPHRASE, OP_PIN);
	assert_int_not_equal(ctl_session_open(&tm.t, 2000, &s, &err), 0);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, "refused"));
	term_done(&tm);

	term_of(&tm, f, 1, 1, PASSPHRASE, OP_PIN);
	tm.t.connect = "no-such-host.invalid:7443";
	assert_int_not_equal(ctl_session_open(&tm.t, 2000, &s, &err), 0);
	assert_string_equal(err.code, "unreachable");
	term_done(&tm);
	assert_null(s);
}

static void
test_session_usage(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct term tm;

	term_of(&tm, f, 1, 1, PASSPHRASE, OP_PIN);
	tm.t.connect = NULL;
	assert_int_equal(ctl_session_open(&tm.t, 1000, &s, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "usage");
	tm.t.connect = "127.0.0.1";
	assert_int_equal(ctl_session_open(&tm.t, 1000, &s, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "usage");
	tm.t.connect = "127.0.0.1:1";
	tm.t.card = f->uri;
	assert_int_equal(ctl_session_open(&tm.t, 1000, &s, &err), JUKI_EINVAL);
	assert_non_null(strstr(err.message, "one of the two"));
	tm.t.card = NULL;
	tm.t.ca = NULL;
	assert_int_equal(ctl_session_open(&tm.t, 1000, &s, &err), JUKI_EINVAL);
	assert_string_equal(err.code, "usage");
	tm.t.ca = f->ca;
	assert_int_equal(ctl_session_open(&tm.t, 0, &s, &err), JUKI_EINVAL);
	assert_int_equal(ctl_session_open(NULL, 1000, &s, &err), JUKI_EINVAL);
	assert_null(s);
	term_done(&tm);
}

/* A daemon that does not answer, or answers nonsense: the session ends. */
static void
test_session_bad_daemon(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_SILENT);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	assert_int_not_equal(ctl_session_open(&tm.t, 500, &s, &err), 0);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, "no response"));
	server_stop(&srv);
	term_done(&tm);

	server_start(&srv, f, prefix, SERVE_GARBAGE);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	assert_int_equal(ctl_session_open(&tm.t, 5000, &s, &err), JUKI_EPROTO);
	assert_string_equal(err.code, "bad-response");
	server_stop(&srv);
	term_done(&tm);
	assert_null(s);
}

/* The daemon goes away mid-session: the next request says so, and so do later ones. */
static void
test_session_daemon_gone(void **state)
{
	struct fix *f = *state;
	struct juki_ctl_error err;
	struct ctl_session *s = NULL;
	struct server srv;
	struct term tm;
	char prefix[256];
	json_t *result = NULL;

	server_path(f, "cs-131016", prefix, sizeof(prefix));
	server_start(&srv, f, prefix, SERVE_HANG_UP);
	term_of(&tm, f, srv.port, 1, PASSPHRASE, OP_PIN);
	assert_int_equal(ctl_session_open(&tm.t, 5000, &s, &err), 0);
	server_stop(&srv);
	assert_int_not_equal(ctl_session_call(s, "status", NULL, &result, &err), 0);
	assert_null(result);
	assert_string_equal(err.code, "unreachable");
	assert_non_null(strstr(err.message, "closed the connection"));
	assert_int_equal(ctl_session_call(s, "status", json_object(), &result, &err), JUKI_ECLOSED);
	assert_string_equal(err.code, "unreachable");
	ctl_session_close(s);
	term_done(&tm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_card_token_right_pin),
	    cmocka_unit_test(test_card_token_wrong_pin),
	    cmocka_unit_test(test_card_token_pin_in_uri),
	    cmocka_unit_test(test_card_token_no_pin),
	    cmocka_unit_test(test_card_token_module_path),
	    cmocka_unit_test(test_card_token_not_there),
	    cmocka_unit_test(test_card_token_bad_uri),
	    cmocka_unit_test(test_card_bad_args),
	    cmocka_unit_test(test_uri_has_pin),
	    cmocka_unit_test(test_card_file),
	    cmocka_unit_test(test_read_pin_fd),
	    cmocka_unit_test(test_read_pin_tty),
	    cmocka_unit_test(test_read_pin_tty_signal),
	    cmocka_unit_test(test_read_pin_no_tty),
	    cmocka_unit_test(test_terminal_load),
	    cmocka_unit_test(test_terminal_load_bad),
	    cmocka_unit_test(test_terminal_example),
	    cmocka_unit_test(test_session_token),
	    cmocka_unit_test(test_session_key_file),
	    cmocka_unit_test(test_session_one_fd),
	    cmocka_unit_test(test_session_wrong_pin),
	    cmocka_unit_test(test_session_card_refused),
	    cmocka_unit_test(test_session_wrong_peer),
	    cmocka_unit_test(test_session_revoked_daemon),
	    cmocka_unit_test(test_session_revoked_card),
	    cmocka_unit_test(test_session_unreachable),
	    cmocka_unit_test(test_session_usage),
	    cmocka_unit_test(test_session_bad_daemon),
	    cmocka_unit_test(test_session_daemon_gone),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
