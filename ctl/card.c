/*
 * The operator's card: a private key on a PKCS#11 token, reached through
 * the libp11 engine, or a passphrase-encrypted PKCS#8 key file.
 *
 * This is the only file that uses OpenSSL's ENGINE API, deprecated in 3.0
 * (DESIGN §7): the move to a PKCS#11 provider replaces this file alone.
 */
#define OPENSSL_API_COMPAT 0x10100000L
#define OPENSSL_SUPPRESS_DEPRECATED

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "juki/error.h"
#include "juki/tls.h"
#include "terminal.h"

#ifndef JUKI_PKCS11_ENGINE
#define JUKI_PKCS11_ENGINE "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
#endif
#ifndef JUKI_PKCS11_MODULE
#define JUKI_PKCS11_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define ENGINE_ID "pkcs11"

/*
 * libp11 reports a PKCS#11 return value as the reason of an error in a
 * library it registers as "PKCS#11 module"; these are the CKR_ codes of
 * PKCS#11 v2.40 that mean the PIN, not the card, is at fault.
 */
#define P11_LIB_NAME         "PKCS#11 module"
#define CKR_PIN_INCORRECT    0xa0
#define CKR_PIN_INVALID      0xa1
#define CKR_PIN_LEN_RANGE    0xa2
#define CKR_PIN_LOCKED       0xa4
#define URI_SCHEME           "pkcs11:"
#define URI_SCHEME_LEN       7
#define ATTR_MODULE_PATH     "module-path="
#define ATTR_MODULE_PATH_LEN 12
#define MESSAGE_URI_MAX      256

/* "<what>: <first OpenSSL error>", and the queue emptied. */
static int
fail_ssl(char *err, size_t errlen, int code, const char *what)
{
	unsigned long e = ERR_peek_error();
	char text[256];

	if (e != 0) {
		ERR_error_string_n(e, text, sizeof(text));
		ctl_set_err(err, errlen, "%s: %s", what, text);
	} else {
		ctl_set_err(err, errlen, "%s", what);
	}
	ERR_clear_error();
	return code;
}

static int
has_scheme(const char *uri)
{
	return uri != NULL && strncasecmp(uri, URI_SCHEME, URI_SCHEME_LEN) == 0;
}

/* Whether the attribute at a (ending at the next ;?& or NUL) is named name=. */
static int
attr_is(const char *a, const char *name)
{
	size_t n = strlen(name);

	return strncmp(a, name, n) == 0 && a[n] == '=';
}

int
ctl_card_uri_has_pin(const char *uri)
{
	const char *a;

	if (!has_scheme(uri)) {
		return 0;
	}
	/* Path attributes are split by ';', query attributes by '&' (RFC 7512). */
	for (a = uri + URI_SCHEME_LEN; *a != '\0'; a += strcspn(a, ";?&")) {
		if (*a == ';' || *a == '?' || *a == '&') {
			a++;
		}
		if (attr_is(a, "pin-value") || attr_is(a, "pin-source")) {
			return 1;
		}
	}
	return 0;
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode len bytes of in into a new string; NULL when malformed. */
static char *
pct_decode(const char *in, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 >= len || hex_digit((unsigned char)in[i + 1]) < 0 ||
		    hex_digit((unsigned char)in[i + 2]) < 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(hex_digit((unsigned char)in[i + 1]) * 16 +
				  hex_digit((unsigned char)in[i + 2]));
		i += 2;
	}
	out[o] = '\0';
	if (o == 0 || memchr(out, '\0', o) != NULL) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * libp11 0.4.12 refuses any URI attribute it does not know, module-path
 * among them; we honour it ourselves (RFC 7512 §2.3) and hand libp11 the
 * URI without it.  *p11 may hold a pin-value: the caller wipes it.
 */
static int
uri_split(const char *uri, char **p11, char **module, char *err, size_t errlen)
{
	const char *q = strchr(uri, '?');
	size_t len = strlen(uri);
	char *out;
	size_t o;

	*p11 = NULL;
	*module = NULL;
	out = malloc(len + 1);
	if (out == NULL) {
		ctl_set_err(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	if (q == NULL) {
		memcpy(out, uri, len + 1);
		*p11 = out;
		return 0;
	}
	o = (size_t)(q - uri);
	memcpy(out, uri, o);
	for (const char *a = q + 1; *a != '\0';) {
		size_t n = strcspn(a, "&");

		if (strncmp(a, ATTR_MODULE_PATH, ATTR_MODULE_PATH_LEN) == 0) {
			free(*module);
			*module = pct_decode(a + ATTR_MODULE_PATH_LEN, n - ATTR_MODULE_PATH_LEN);
			if (*module == NULL) {
				OPENSSL_cleanse(out, len);
				free(out);
				ctl_set_err(err, errlen,
					    "card URI: module-path is empty or malformed");
				return JUKI_EINVAL;
			}
		} else if (n > 0) {
			char sep = o == (size_t)(q - uri) ? '?' : '&';

			out[o++] = sep;
			memcpy(out + o, a, n);
			o += n;
		}
		a += n;
		if (*a == '&') {
			a++;
		}
	}
	out[o] = '\0';
	*p11 = out;
	return 0;
}

/*
 * What libp11 0.4.12 parses, checked before it sees the URI: its parser
 * leaks what it had parsed when it gives up (an unknown attribute, a bad
 * escape, an unreadable pin-source), and our message can say which.
 */
static int
uri_check(const char *p11, char *err, size_t errlen)
{
	static const char *const known[] = {"token",  "manufacturer", "serial",    "model",
					    "object", "id",           "pin-value", "pin-source",
					    "type",   "object-type"};
	const char *a = p11 + URI_SCHEME_LEN;

	while (*a != '\0') {
		size_t n = strcspn(a, ";?&");
		const char *eq = memchr(a, '=', n);
		size_t i;
		char *value;

		if (eq == NULL) {
			ctl_set_err(err, errlen, "card URI: \"%.*s\" is no attribute=value", (int)n,
				    a);
			return JUKI_EINVAL;
		}
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strlen(known[i]) == (size_t)(eq - a) &&
			    strncmp(a, known[i], (size_t)(eq - a)) == 0) {
				break;
			}
		}
		if (i == sizeof(known) / sizeof(known[0])) {
			ctl_set_err(err, errlen, "card URI: attribute %.*s is not supported",
				    (int)(eq - a), a);
			return JUKI_EINVAL;
		}
		value = eq + 1 < a + n ? pct_decode(eq + 1, (size_t)(a + n - eq - 1)) : NULL;
		if (value == NULL) {
			ctl_set_err(err, errlen, "card URI: %.*s is empty or malformed",
				    (int)(eq - a), a);
			return JUKI_EINVAL;
		}
		if (attr_is(a, "type") || attr_is(a, "object-type")) {
			int ok = strcmp(value, "private") == 0;

			free(value);
			if (!ok) {
				ctl_set_err(err, errlen,
					    "card URI: the card's object is type=private");
				return JUKI_EINVAL;
			}
		} else if (attr_is(a, "pin-source")) {
			const char *path = strncasecmp(value, "file:", 5) == 0 ? value + 5 : value;
			FILE *fp = *path == '|' ? NULL : fopen(path, "re");

			if (fp == NULL) {
				ctl_set_err(err, errlen,
					    "card URI: pin-source %s cannot be read%s%s", value,
					    *path == '|' ? "" : ": ",
					    *path == '|' ? " (no commands)" : strerror(errno));
				free(value);
				return JUKI_EINVAL;
			}
			fclose(fp);
			free(value);
		} else {
			OPENSSL_cleanse(value, strlen(value));
			free(value);
		}
		a += n;
		if (*a != '\0') {
			a++;
		}
	}
	return 0;
}

/* The URI for a message: a pin-value in it never reaches a terminal or a log. */
static void
uri_shown(const char *uri, char *buf, size_t len)
{
	snprintf(buf, len, "%s",
		 strstr(uri, "pin-value=") != NULL ? "the card URI (with its pin-value)" : uri);
}

/*
 * The engine comes from OpenSSL's engine list, where the first load put it:
 * the "dynamic" loader refuses to load the same shared object a second
 * time while the first engine lives, and libp11's context (which outlives
 * ENGINE_finish) belongs to that engine.  The shared object is pinned
 * with RTLD_NODELETE: libp11 keeps its key methods in statics of its own
 * and never frees them, so unloading it would leak them and leave the
 * error strings it registered with OpenSSL pointing at unmapped memory.
 */
static ENGINE *
engine_get(int *rc, char *err, size_t errlen)
{
	void *so;
	ENGINE *e;

	so = dlopen(JUKI_PKCS11_ENGINE, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (so == NULL) {
		*rc = JUKI_ENOENT;
		ctl_set_err(err, errlen,
			    "the PKCS#11 engine %s cannot be loaded (is libengine-pkcs11-openssl "
			    "installed?): %s",
			    JUKI_PKCS11_ENGINE, dlerror());
		return NULL;
	}
	dlclose(so);
	for (e = ENGINE_get_first(); e != NULL; e = ENGINE_get_next(e)) {
		if (strcmp(ENGINE_get_id(e), ENGINE_ID) == 0) {
			return e;
		}
	}
	e = ENGINE_by_id("dynamic");
	if (e == NULL || !ENGINE_ctrl_cmd_string(e, "SO_PATH", JUKI_PKCS11_ENGINE, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "ID", ENGINE_ID, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0)) {
		*rc = fail_ssl(err, errlen, JUKI_ETLS, "the PKCS#11 engine cannot be loaded");
		ENGINE_free(e);
		return NULL;
	}
	return e;
}

/* libp11 must never ask on the terminal itself: the PIN comes from us or the URI. */
static int
no_prompt(UI *ui, UI_STRING *uis)
{
	(void)ui;
	(void)uis;
	return 0;
}

/* Why the token refused: the PIN (JUKI_EAUTH), a locked PIN, or anything else. */
static int
token_failure(const char *shown, char *err, size_t errlen)
{
	unsigned long first = ERR_peek_error();
	unsigned long e;
	char text[256] = "";
	int rc = JUKI_ENOENT;

	if (first != 0) {
		ERR_error_string_n(first, text, sizeof(text));
	}
	while ((e = ERR_get_error()) != 0) {
		const char *lib = ERR_lib_error_string(e);

		if (lib == NULL || strcmp(lib, P11_LIB_NAME) != 0) {
			continue;
		}
		switch (ERR_GET_REASON(e)) {
		case CKR_PIN_INCORRECT:
		case CKR_PIN_INVALID:
		case CKR_PIN_LEN_RANGE:
			rc = JUKI_EAUTH;
			break;
		case CKR_PIN_LOCKED:
			rc = JUKI_ELOCKED;
			break;
		default:
			break;
		}
	}
	if (rc == JUKI_EAUTH) {
		ctl_set_err(err, errlen, "the card refused the card PIN");
	} else if (rc == JUKI_ELOCKED) {
		ctl_set_err(
		    err, errlen,
		    "the card's PIN is locked (too many wrong card PINs); its security officer "
		    "must reset it");
	} else {
		ctl_set_err(err, errlen, "no private key at %s%s%s", shown, *text ? ": " : "",
			    text);
	}
	ERR_clear_error();
	return rc;
}

/*
 * libp11 caches the key it hands out in its slot list and ties that very
 * EVP_PKEY to the engine with a functional reference; the engine's context
 * holds the slot list, so the engine could never finish: the token would
 * stay logged in (later loads would skip the PIN) and the PKCS#11 module
 * would never be finalised.  Cut that reference, and hand out a new
 * EVP_PKEY on the same RSA/EC_KEY whose reference to the engine is the only
 * one left: freeing it finishes the engine, which logs out, drops the cache
 * and unloads the module.  (The EC_KEY/RSA calls are what is deprecated.)
 */
static int
token_key_wrap(ENGINE *e, EVP_PKEY *k, EVP_PKEY **out, char *err, size_t errlen)
{
	EVP_PKEY *w = NULL;
	int ok = 0;

	*out = NULL;
	if (!EVP_PKEY_set1_engine(k, NULL)) {
		return fail_ssl(err, errlen, JUKI_ETLS, "the card's key");
	}
	w = EVP_PKEY_new();
	if (w == NULL) {
		return fail_ssl(err, errlen, JUKI_ENOMEM, "EVP_PKEY_new");
	}
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC: {
		EC_KEY *ec = EVP_PKEY_get1_EC_KEY(k);

		ok = ec != NULL && EVP_PKEY_assign_EC_KEY(w, ec);
		if (!ok) {
			EC_KEY_free(ec);
		}
		break;
	}
	case EVP_PKEY_RSA: {
		RSA *rsa = EVP_PKEY_get1_RSA(k);

		ok = rsa != NULL && EVP_PKEY_assign_RSA(w, rsa);
		if (!ok) {
			RSA_free(rsa);
		}
		break;
	}
	default:
		EVP_PKEY_free(w);
		ctl_set_err(err, errlen,
			    "the card's key is of type %s; only EC and RSA keys are used",
			    OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		return JUKI_ECERT;
	}
	if (!ok || !EVP_PKEY_set1_engine(w, e)) {
		EVP_PKEY_free(w);
		return fail_ssl(err, errlen, JUKI_ETLS, "the card's key");
	}
	*out = w;
	return 0;
}

static int
token_key(const char *uri, const char *pin, EVP_PKEY **out, char *err, size_t errlen)
{
	char shown[MESSAGE_URI_MAX];
	char *p11 = NULL;
	char *module = NULL;
	UI_METHOD *ui = NULL;
	EVP_PKEY *k = NULL;
	ENGINE *e = NULL;
	int inited = 0;
	int rc;

	uri_shown(uri, shown, sizeof(shown));
	if (pin == NULL && !ctl_card_uri_has_pin(uri)) {
		ctl_set_err(err, errlen, "no card PIN: the card URI has none and none was given");
		return JUKI_EINVAL;
	}
	rc = uri_split(uri, &p11, &module, err, errlen);
	if (rc == 0) {
		rc = uri_check(p11, err, errlen);
	}
	if (rc != 0) {
		goto out;
	}
	ERR_clear_error();
	e = engine_get(&rc, err, errlen);
	if (e == NULL) {
		goto out;
	}
	/*
	 * QUIET keeps libp11 off stderr.  MODULE_PATH and the PIN take effect
	 * at the next login; the module only while no other card key of this
	 * process is alive (one module per process at a time).
	 */
	if (!ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module != NULL ? module : JUKI_PKCS11_MODULE,
				    0) ||
	    (pin != NULL && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0))) {
		rc = fail_ssl(err, errlen, JUKI_ETLS, "the PKCS#11 engine refused its settings");
		goto out;
	}
	if (!ENGINE_init(e)) {
		rc = fail_ssl(err, errlen, JUKI_ETLS, "the PKCS#11 engine did not start");
		goto out;
	}
	inited = 1;
	ui = UI_create_method("juki-ctl: no prompt");
	if (ui == NULL || UI_method_set_reader(ui, no_prompt) != 0) {
		rc = fail_ssl(err, errlen, JUKI_ENOMEM, "UI_create_method");
		goto out;
	}
	k = ENGINE_load_private_key(e, p11, ui, NULL);
	if (k == NULL) {
		rc = token_failure(shown, err, errlen);
		goto out;
	}
	rc = token_key_wrap(e, k, out, err, errlen);
out:
	if (inited) {
		/* libp11 keeps the last PIN until told another; leave it none */
		ENGINE_ctrl_cmd_string(e, "PIN", "", 0);
	}
	EVP_PKEY_free(k);
	UI_destroy_method(ui);
	if (inited) {
		ENGINE_finish(e);
	}
	ENGINE_free(e);
	if (p11 != NULL) {
		OPENSSL_cleanse(p11, strlen(p11));
	}
	free(p11);
	free(module);
	ERR_clear_error();
	return rc;
}

/*
 * Only an encrypted PKCS#8 file ("ENCRYPTED PRIVATE KEY") is a card: a
 * plain key file would be a card without a PIN.  PKCS8_decrypt fails both
 * on a bad padding and on a structure that does not parse, which is what a
 * wrong passphrase gives.
 */
static int
file_key(const char *path, const char *pass, EVP_PKEY **out, char *err, size_t errlen)
{
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_SIG *p8 = NULL;
	char what[512];
	FILE *fp;
	int rc;

	if (pass == NULL || *pass == '\0') {
		ctl_set_err(err, errlen, "no passphrase for key file %s", path);
		return JUKI_EINVAL;
	}
	rc = juki_tls_check_key_file(path, err, errlen);
	if (rc != 0) {
		return rc;
	}
	ERR_clear_error();
	fp = fopen(path, "re");
	if (fp == NULL) {
		rc = -errno;
		ctl_set_err(err, errlen, "key file %s: %s", path, strerror(errno));
		return rc;
	}
	p8 = PEM_read_PKCS8(fp, NULL, NULL, NULL);
	fclose(fp);
	if (p8 == NULL) {
		snprintf(what, sizeof(what),
			 "key file %s is not an encrypted PKCS#8 key (ENCRYPTED PRIVATE KEY)",
			 path);
		rc = fail_ssl(err, errlen, JUKI_ECERT, what);
		goto out;
	}
	p8inf = PKCS8_decrypt(p8, pass, (int)strlen(pass));
	if (p8inf == NULL) {
		ERR_clear_error();
		ctl_set_err(err, errlen, "wrong passphrase for key file %s", path);
		rc = JUKI_EAUTH;
		goto out;
	}
	*out = EVP_PKCS82PKEY(p8inf);
	if (*out == NULL) {
		snprintf(what, sizeof(what), "key file %s: no usable private key", path);
		rc = fail_ssl(err, errlen, JUKI_ECERT, what);
		goto out;
	}
	rc = 0;
out:
	/* freeing a PKCS8_PRIV_KEY_INFO wipes the key bytes in it */
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	X509_SIG_free(p8);
	ERR_clear_error();
	return rc;
}

int
ctl_card_key(const char *uri, const char *keyfile, const char *pin, EVP_PKEY **out, char *err,
	     size_t errlen)
{
	*out = NULL;
	if (uri != NULL && keyfile != NULL) {
		ctl_set_err(err, errlen, "a card URI or a key file, not both");
		return JUKI_EINVAL;
	}
	if (uri != NULL) {
		if (!has_scheme(uri)) {
			ctl_set_err(err, errlen, "the card must be a pkcs11: URI");
			return JUKI_EINVAL;
		}
		return token_key(uri, pin, out, err, errlen);
	}
	if (keyfile != NULL) {
		return file_key(keyfile, pin, out, err, errlen);
	}
	ctl_set_err(err, errlen, "no card: neither a pkcs11: URI nor a key file");
	return JUKI_EINVAL;
}
