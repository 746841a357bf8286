/*
 * wire/token.c and a node's TLS key on a token (wire/tls.c): PIN files,
 * key pairs made on a SoftHSM2 token, a juki_tls whose key is on the token,
 * and what happens when the token goes away.
 *
 * The token is made by tests/fixtures/softhsm-card.sh in the test's own
 * directory (SOFTHSM2_CONF points there); without softhsm2-util the tests
 * that need it are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/wire/pki.h"
#include "juki/wire/tls.h"
#include "juki/wire/token.h"

#include "helpers.h"

#define TOKEN_PIN "node-8642"
#define URI       "pkcs11:token=node1;object=node-key;type=private"
#define NODE      "urn:juki:cs:131016"

struct fix {
	char tmp[64];
	char pki[128];
	char hsm[128];
	char pin_file[160];
	char err[512];
	int softhsm;
};

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* An empty token "node1" behind TOKEN_PIN; SOFTHSM2_CONF taken into our environment. */
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
	snprintf(cmd, sizeof(cmd), "sh %s/tests/fixtures/softhsm-card.sh %s node1 %s -", src,
		 f->hsm, TOKEN_PIN);
	p = popen(cmd, "r");
	if (p == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "SOFTHSM2_CONF=", 14) == 0) {
			setenv("SOFTHSM2_CONF", line + 14, 1);
			got++;
		}
	}
	return pclose(p) == 0 && got == 1 ? 0 : -1;
}

static int
group_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL || test_mkdtemp(f->tmp, sizeof(f->tmp), "token") == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	snprintf(f->pki, sizeof(f->pki), "%s/pki", f->tmp);
	snprintf(f->hsm, sizeof(f->hsm), "%s/hsm", f->tmp);
	snprintf(f->pin_file, sizeof(f->pin_file), "%s/pin", f->tmp);
	if (juki_pki_init_ca(f->pki, "juki test CA", 365, f->err, sizeof(f->err)) != 0 ||
	    juki_pki_issue(f->pki, "urn:juki:fwgate:east", 30, NULL, f->err, sizeof(f->err)) != 0) {
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
	int rc = test_rm_rf(f->tmp);

	free(f);
	return rc;
}

static void
need_softhsm(const struct fix *f)
{
	if (!f->softhsm) {
		skip();
	}
}

static void
test_pin_file_rules(void **state)
{
	struct fix *f = *state;
	char pin[JUKI_TOKEN_PIN_MAX];
	char path[200], big[400];

	snprintf(path, sizeof(path), "%s/pin-rules", f->tmp);
	write_file(path, "1234\nsecond line\n", 0600);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 0);
	assert_string_equal(pin, "1234");
	write_file(path, "5678\r\n", 0400);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 0);
	assert_string_equal(pin, "5678");
	write_file(path, "no newline", 0600);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 0);
	assert_string_equal(pin, "no newline");
	/* open to the group or others: refused, the PIN not read */
	write_file(path, "1234\n", 0640);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	assert_non_null(strstr(f->err, "mode 0640"));
	assert_string_equal(pin, "");
	write_file(path, "1234\n", 0604);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	/* empty, an empty first line, too long */
	write_file(path, "", 0600);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	write_file(path, "\n1234\n", 0600);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file(path, big, 0600);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EINVAL);
	assert_non_null(strstr(f->err, "longer than"));
	/* not a regular file; not there */
	assert_int_equal(juki_token_read_pin_file(f->tmp, pin, sizeof(pin), f->err, sizeof(f->err)),
			 JUKI_EKEYPERM);
	unlink(path);
	assert_int_equal(juki_token_read_pin_file(path, pin, sizeof(pin), f->err, sizeof(f->err)),
			 -ENOENT);
}

/* tls.key keeps a pkcs11: URI as written; a relative key file is still resolved. */
static void
test_config_key_uri(void **state)
{
	struct fix *f = *state;
	struct juki_tls_files files;
	const char *text = "cert: a.crt\nkey: '" URI "'\nca: ca.crt\npin_file: p\n";

	memset(&files, 0, sizeof(files));
	assert_int_equal(juki_conf_load_string("t.yaml", "/etc/juki", text, strlen(text),
					       juki_tls_files_keys, &files, f->err, sizeof(f->err)),
			 0);
	assert_string_equal(files.key, URI);
	assert_string_equal(files.pin_file, "/etc/juki/p");
	assert_string_equal(files.cert, "/etc/juki/a.crt");
	juki_conf_free(juki_tls_files_keys, &files);
	text = "cert: a.crt\nkey: n.key\nca: ca.crt\n";
	memset(&files, 0, sizeof(files));
	assert_int_equal(juki_conf_load_string("t.yaml", "/etc/juki", text, strlen(text),
					       juki_tls_files_keys, &files, f->err, sizeof(f->err)),
			 0);
	assert_string_equal(files.key, "/etc/juki/n.key");
	assert_null(files.pin_file);
	juki_conf_free(juki_tls_files_keys, &files);
}

static int
verifies(EVP_PKEY *signer, EVP_PKEY *pub)
{
	static const unsigned char msg[] = "checkpoint 42";
	unsigned char sig[256];
	size_t n = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer) == 1 &&
		 EVP_DigestSign(md, sig, &n, msg, sizeof(msg)) == 1;

	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	ok = ok && md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
	     EVP_DigestVerify(md, sig, n, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

static void
test_keygen_and_sign(void **state)
{
	struct fix *f = *state;
	EVP_PKEY *pub = NULL, *key = NULL, *again = NULL;

	need_softhsm(f);
	/* a wrong PIN makes nothing */
	assert_int_equal(juki_token_keygen(URI, "0000-wrong", &pub, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	assert_null(pub);
	assert_int_equal(juki_token_keygen("pkcs11:token=nosuch;object=k", TOKEN_PIN, &pub, f->err,
					   sizeof(f->err)),
			 JUKI_ENOENT);
	assert_non_null(strstr(f->err, "no token labelled nosuch"));
	assert_int_equal(
	    juki_token_keygen("pkcs11:token=node1", TOKEN_PIN, &pub, f->err, sizeof(f->err)),
	    JUKI_EINVAL);
	assert_int_equal(
	    juki_token_keygen(URI ";pin-value=1", TOKEN_PIN, &pub, f->err, sizeof(f->err)),
	    JUKI_EINVAL);
	/* the key pair: a P-256 public key out, the private key on the token */
	assert_int_equal(juki_token_keygen(URI, TOKEN_PIN, &pub, f->err, sizeof(f->err)), 0);
	assert_non_null(pub);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);
	assert_int_equal(juki_token_keygen(URI, TOKEN_PIN, &again, f->err, sizeof(f->err)),
			 JUKI_EEXIST);
	assert_null(again);
	/* the engine finds it, and what it signs verifies with the public key */
	assert_int_equal(juki_token_key(URI, "0000-wrong", NULL, &key, f->err, sizeof(f->err)),
			 JUKI_EAUTH);
	assert_non_null(strstr(f->err, "the token refused the token PIN"));
	assert_int_equal(juki_token_key(URI, TOKEN_PIN, NULL, &key, f->err, sizeof(f->err)), 0);
	assert_true(verifies(key, pub));
	EVP_PKEY_free(key);
	/* the certificate for it, and no key file */
	{
		char path[256];

		assert_int_equal(
		    juki_pki_issue_key(f->pki, NODE, 30, pub, NULL, f->err, sizeof(f->err)), 0);
		snprintf(path, sizeof(path), "%s/cs-131016.crt", f->pki);
		assert_int_equal(access(path, F_OK), 0);
		snprintf(path, sizeof(path), "%s/cs-131016.key", f->pki);
		assert_int_equal(access(path, F_OK), -1);
	}
	EVP_PKEY_free(pub);
}

static void
conf_of(struct fix *f, struct juki_tls_conf *c, char *cert, char *ca, const char *key,
	const char *pin_file)
{
	sprintf(cert, "%s/cs-131016.crt", f->pki);
	sprintf(ca, "%s/ca.crt", f->pki);
	memset(c, 0, sizeof(*c));
	c->cert = cert;
	c->ca = ca;
	c->key = key;
	c->pin_file = pin_file;
}

/* A handshake over a socketpair, both ends driven here; returns the server's failure. */
static enum juki_tls_failure
handshake(struct juki_tls *client, struct juki_tls *server, int *client_ok)
{
	SSL *c = juki_tls_ssl_new(client, JUKI_TLS_CLIENT);
	SSL *s = juki_tls_ssl_new(server, JUKI_TLS_SERVER);
	unsigned long serr = 0;
	int fds[2], cdone = 0, sdone = 0, sfail = 0, cfail = 0;
	enum juki_tls_failure f = JUKI_TLSF_NONE;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	SSL_set_fd(c, fds[0]);
	SSL_set_fd(s, fds[1]);
	for (int i = 0; i < 200 && !(sdone && cdone) && !sfail && !cfail; i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1) {
				cdone = 1;
			} else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ) {
				cfail = 1;
			}
			ERR_clear_error();
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1) {
				sdone = 1;
			} else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) {
				sfail = 1;
				serr = ERR_peek_error();
			}
			ERR_clear_error();
		}
	}
	if (!sdone) {
		f = juki_tls_failure_of(s, serr);
	}
	*client_ok = cdone && !cfail;
	SSL_free(c);
	SSL_free(s);
	close(fds[0]);
	close(fds[1]);
	return f;
}

static struct juki_tls *
gateway_tls(struct fix *f)
{
	char cert[256], key[256], ca[256];
	struct juki_tls_conf c = {.cert = cert, .key = key, .ca = ca};
	struct juki_tls *tls = NULL;

	snprintf(cert, sizeof(cert), "%s/fwgate-east.crt", f->pki);
	snprintf(key, sizeof(key), "%s/fwgate-east.key", f->pki);
	snprintf(ca, sizeof(ca), "%s/ca.crt", f->pki);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), 0);
	return tls;
}

static void
test_tls_on_token(void **state)
{
	struct fix *f = *state;
	char cert[256], ca[256], other[256];
	struct juki_tls_conf c;
	struct juki_tls *tls = NULL, *gw;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int client_ok = 0;

	need_softhsm(f);
	write_file(f->pin_file, TOKEN_PIN "\n", 0600);
	/* after test_keygen_and_sign: the key on the token, its certificate in the PKI */
	conf_of(f, &c, cert, ca, URI, f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), 0);
	assert_true(juki_tls_on_token(tls));
	assert_string_equal(juki_tls_self(tls)->urn, NODE);
	assert_int_equal(juki_tls_key_check(tls), 0);
	/* handshakes both ways with a node whose key is in a file */
	gw = gateway_tls(f);
	assert_false(juki_tls_on_token(gw));
	assert_int_equal(handshake(gw, tls, &client_ok), JUKI_TLSF_NONE);
	assert_true(client_ok);
	assert_int_equal(handshake(tls, gw, &client_ok), JUKI_TLSF_NONE);
	assert_true(client_ok);
	/* a checkpoint's signature, checked against the certificate */
	assert_int_equal(juki_tls_sign(tls, "head", 4, &sig, &siglen), 0);
	assert_int_equal(juki_tls_verify_cert(cert, "head", 4, sig, siglen), 0);
	free(sig);
	juki_tls_free(tls);
	juki_tls_free(gw);

	/* refusals, each with its reason */
	conf_of(f, &c, cert, ca, URI, NULL);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_non_null(strstr(f->err, "tls.pin_file"));
	conf_of(f, &c, cert, ca, URI ";pin-value=" TOKEN_PIN, f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_non_null(strstr(f->err, "carries a PIN"));
	assert_null(strstr(f->err, TOKEN_PIN));
	snprintf(other, sizeof(other), "%s/fwgate-east.key", f->pki);
	conf_of(f, &c, cert, ca, other, f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_non_null(strstr(f->err, "goes with a key on a token"));
	chmod(f->pin_file, 0644);
	conf_of(f, &c, cert, ca, URI, f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_EKEYPERM);
	chmod(f->pin_file, 0600);
	write_file(f->pin_file, "0000-wrong\n", 0600);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_EAUTH);
	assert_non_null(strstr(f->err, "the token refused the token PIN"));
	write_file(f->pin_file, TOKEN_PIN "\n", 0600);
	conf_of(f, &c, cert, ca, "pkcs11:token=node1;object=nosuch;type=private", f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_ENOENT);
	/* the token's key with another node's certificate */
	conf_of(f, &c, cert, ca, URI, f->pin_file);
	snprintf(cert, sizeof(cert), "%s/fwgate-east.crt", f->pki);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), JUKI_ECERT);
	assert_null(tls);
}

/* Last: the token goes away under a running juki_tls, and comes back. */
static void
test_token_gone_fails_handshake(void **state)
{
	struct fix *f = *state;
	char cert[256], ca[256], tokens[256], away[256];
	struct juki_tls_conf c;
	struct juki_tls *tls = NULL, *again = NULL, *gw;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int client_ok = 1;

	need_softhsm(f);
	write_file(f->pin_file, TOKEN_PIN "\n", 0600);
	conf_of(f, &c, cert, ca, URI, f->pin_file);
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), 0);
	gw = gateway_tls(f);
	snprintf(tokens, sizeof(tokens), "%s/tokens", f->hsm);
	snprintf(away, sizeof(away), "%s/away", f->hsm);
	assert_int_equal(rename(tokens, away), 0);
	/* as a server and as a client, our side fails, classified: the key */
	assert_int_equal(handshake(gw, tls, &client_ok), JUKI_TLSF_KEY);
	assert_false(client_ok);
	assert_string_equal(juki_tls_failure_name(JUKI_TLSF_KEY), "key-unavailable");
	assert_int_equal(juki_tls_key_check(tls), JUKI_ETLS);
	assert_int_equal(juki_tls_sign(tls, "head", 4, &sig, &siglen), JUKI_ETLS);
	assert_null(sig);
	/* a peer's failure is not taken for ours: the file-key end says protocol, not key */
	assert_int_not_equal(handshake(tls, gw, &client_ok), JUKI_TLSF_KEY);
	/* a new load (a reload) is refused with the reason */
	assert_int_not_equal(juki_tls_new(&c, &again, f->err, sizeof(f->err)), 0);
	assert_null(again);
	assert_int_equal(rename(away, tokens), 0);
	juki_tls_free(tls);
	/* every key of the token freed, the next load starts afresh */
	assert_int_equal(juki_tls_new(&c, &tls, f->err, sizeof(f->err)), 0);
	assert_int_equal(handshake(gw, tls, &client_ok), JUKI_TLSF_NONE);
	juki_tls_free(tls);
	juki_tls_free(gw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pin_file_rules),
	    cmocka_unit_test(test_config_key_uri),
	    cmocka_unit_test(test_keygen_and_sign),
	    cmocka_unit_test(test_tls_on_token),
	    cmocka_unit_test(test_token_gone_fails_handshake),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
