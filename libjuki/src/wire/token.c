/*
 * Private keys on PKCS#11 tokens: through the libp11 engine for use, and
 * through the module's own PKCS#11 interface to make a key pair on a token.
 *
 * This is the only file that uses OpenSSL's ENGINE API, deprecated in 3.0
 * (docs/style.md §1): the move to a PKCS#11 provider replaces this file alone.
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
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "juki/base/error.h"
#include "juki/wire/tls.h"
#include "juki/wire/token.h"

#ifndef JUKI_PKCS11_ENGINE
#define JUKI_PKCS11_ENGINE "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
#endif
#ifndef JUKI_PKCS11_MODULE
#define JUKI_PKCS11_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define ENGINE_ID "pkcs11"

/*
 * libp11 reports a PKCS#11 return value as the reason of an error in a
 * library it registers as "PKCS#11 module": CKR_PIN_INCORRECT and the like
 * (pkcs11.h) mean the PIN, not the token, is at fault.
 */
#define P11_LIB_NAME         "PKCS#11 module"
#define URI_SCHEME           "pkcs11:"
#define URI_SCHEME_LEN       7
#define ATTR_MODULE_PATH     "module-path="
#define ATTR_MODULE_PATH_LEN 12
#define MESSAGE_URI_MAX      256

int
juki_token_is_uri(const char *s)
{
	return s != NULL && strncasecmp(s, URI_SCHEME, URI_SCHEME_LEN) == 0;
}

/* Whether the attribute at a (ending at the next ;?& or NUL) is named name=. */
static int
attr_is(const char *a, const char *name)
{
	size_t n = strlen(name);

	return strncmp(a, name, n) == 0 && a[n] == '=';
}

int
juki_token_uri_has_pin(const char *uri)
{
	const char *a;

	if (!juki_token_is_uri(uri)) {
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
uri_split(const char *uri, const char *noun, char **p11, char **module, char *err, size_t errlen)
{
	const char *q = strchr(uri, '?');
	size_t len = strlen(uri);
	char *out;
	size_t o;

	*p11 = NULL;
	*module = NULL;
	out = malloc(len + 1);
	if (out == NULL) {
		juki_seterr(err, errlen, "out of memory");
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
				juki_seterr(err, errlen,
					    "%s URI: module-path is empty or malformed", noun);
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
uri_check(const char *p11, const char *noun, char *err, size_t errlen)
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
			juki_seterr(err, errlen, "%s URI: \"%.*s\" is no attribute=value", noun,
				    (int)n, a);
			return JUKI_EINVAL;
		}
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strlen(known[i]) == (size_t)(eq - a) &&
			    strncmp(a, known[i], (size_t)(eq - a)) == 0) {
				break;
			}
		}
		if (i == sizeof(known) / sizeof(known[0])) {
			juki_seterr(err, errlen, "%s URI: attribute %.*s is not supported", noun,
				    (int)(eq - a), a);
			return JUKI_EINVAL;
		}
		value = eq + 1 < a + n ? pct_decode(eq + 1, (size_t)(a + n - eq - 1)) : NULL;
		if (value == NULL) {
			juki_seterr(err, errlen, "%s URI: %.*s is empty or malformed", noun,
				    (int)(eq - a), a);
			return JUKI_EINVAL;
		}
		if (attr_is(a, "type") || attr_is(a, "object-type")) {
			int ok = strcmp(value, "private") == 0;

			free(value);
			if (!ok) {
				juki_seterr(err, errlen, "%s URI: the %s's object is type=private",
					    noun, noun);
				return JUKI_EINVAL;
			}
		} else if (attr_is(a, "pin-source")) {
			const char *path = strncasecmp(value, "file:", 5) == 0 ? value + 5 : value;
			FILE *fp = *path == '|' ? NULL : fopen(path, "re");

			if (fp == NULL) {
				juki_seterr(err, errlen, "%s URI: pin-source %s cannot be read%s%s",
					    noun, value, *path == '|' ? "" : ": ",
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
uri_shown(const char *uri, const char *noun, char *buf, size_t len)
{
	if (strstr(uri, "pin-value=") != NULL) {
		snprintf(buf, len, "the %s URI (with its pin-value)", noun);
	} else {
		snprintf(buf, len, "%s", uri);
	}
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
		juki_seterr(err, errlen,
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
		*rc =
		    juki_seterr_ssl(err, errlen, JUKI_ETLS, "the PKCS#11 engine cannot be loaded");
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
token_failure(const char *shown, const char *noun, char *err, size_t errlen)
{
	/* the last error is the one nearest the cause (the first may be the engine loader's) */
	unsigned long first = ERR_peek_last_error();
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
		juki_seterr(err, errlen, "the %s refused the %s PIN", noun, noun);
	} else if (rc == JUKI_ELOCKED) {
		juki_seterr(err, errlen,
			    "the %s's PIN is locked (too many wrong %s PINs); its security officer "
			    "must reset it",
			    noun, noun);
	} else {
		juki_seterr(err, errlen, "no private key at %s%s%s", shown, *text ? ": " : "",
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
token_key_wrap(ENGINE *e, EVP_PKEY *k, const char *noun, EVP_PKEY **out, char *err, size_t errlen)
{
	EVP_PKEY *w = NULL;
	int ok = 0;

	*out = NULL;
	if (!EVP_PKEY_set1_engine(k, NULL)) {
		return juki_seterr_ssl(err, errlen, JUKI_ETLS, "the token's key");
	}
	w = EVP_PKEY_new();
	if (w == NULL) {
		return juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "EVP_PKEY_new");
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
		juki_seterr(err, errlen,
			    "the %s's key is of type %s; only EC and RSA keys are used", noun,
			    OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		return JUKI_ECERT;
	}
	if (!ok || !EVP_PKEY_set1_engine(w, e)) {
		EVP_PKEY_free(w);
		return juki_seterr_ssl(err, errlen, JUKI_ETLS, "the token's key");
	}
	*out = w;
	return 0;
}

static void token_absent(const char *p11, const char *module, const char *shown, char *err,
			 size_t errlen);

int
juki_token_key(const char *uri, const char *pin, const char *noun, EVP_PKEY **out, char *err,
	       size_t errlen)
{
	char shown[MESSAGE_URI_MAX];
	char *p11 = NULL;
	char *module = NULL;
	UI_METHOD *ui = NULL;
	EVP_PKEY *k = NULL;
	ENGINE *e = NULL;
	int inited = 0;
	int rc;

	*out = NULL;
	if (noun == NULL) {
		noun = "token";
	}
	if (!juki_token_is_uri(uri)) {
		juki_seterr(err, errlen, "the %s must be a pkcs11: URI", noun);
		return JUKI_EINVAL;
	}
	uri_shown(uri, noun, shown, sizeof(shown));
	if (pin == NULL && !juki_token_uri_has_pin(uri)) {
		juki_seterr(err, errlen, "no %s PIN: the %s URI has none and none was given", noun,
			    noun);
		return JUKI_EINVAL;
	}
	rc = uri_split(uri, noun, &p11, &module, err, errlen);
	if (rc == 0) {
		rc = uri_check(p11, noun, err, errlen);
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
		rc = juki_seterr_ssl(err, errlen, JUKI_ETLS,
				     "the PKCS#11 engine refused its settings");
		goto out;
	}
	if (!ENGINE_init(e)) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ETLS, "the PKCS#11 engine did not start");
		goto out;
	}
	inited = 1;
	ui = UI_create_method("juki: no prompt");
	if (ui == NULL || UI_method_set_reader(ui, no_prompt) != 0) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ENOMEM, "UI_create_method");
		goto out;
	}
	k = ENGINE_load_private_key(e, p11, ui, NULL);
	if (k == NULL) {
		rc = token_failure(shown, noun, err, errlen);
		if (rc == JUKI_ENOENT) {
			token_absent(p11, module, shown, err, errlen);
		}
		goto out;
	}
	rc = token_key_wrap(e, k, noun, out, err, errlen);
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

int
juki_token_read_pin_file(const char *path, char *pin, size_t len, char *err, size_t errlen)
{
	ssize_t n;
	size_t end;
	int fd;
	int rc;

	if (path == NULL || pin == NULL || len < 2) {
		juki_seterr(err, errlen, "no PIN file given");
		return JUKI_EINVAL;
	}
	pin[0] = '\0';
	/* The rule of a key file (tls.h), checked on the opened file itself. */
	if ((rc = juki_tls_open_private("PIN file", path, &fd, err, errlen)) != 0) {
		return rc;
	}
	n = read(fd, pin, len);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0) {
		OPENSSL_cleanse(pin, len);
		juki_seterr(err, errlen, "PIN file %s: %s", path, strerror(-rc));
		return rc;
	}
	if ((size_t)n == len) {
		/* the buffer is full: its first line must end in it */
		const char *nl = memchr(pin, '\n', len);

		if (nl == NULL) {
			OPENSSL_cleanse(pin, len);
			juki_seterr(err, errlen, "PIN file %s: the PIN is longer than %zu bytes",
				    path, len - 1);
			return JUKI_EINVAL;
		}
		n = nl - pin;
	}
	pin[n] = '\0';
	end = strcspn(pin, "\r\n");
	OPENSSL_cleanse(pin + end, len - end);
	if (end == 0 || memchr(pin, '\0', end) != NULL) {
		juki_seterr(err, errlen, "PIN file %s: no PIN on its first line", path);
		return JUKI_EINVAL;
	}
	return 0;
}

/* Key generation on the token, through the module's own PKCS#11 interface. */

/* DER of the OID of prime256v1 (P-256), CKA_EC_PARAMS of a new key pair */
static const unsigned char P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
					    0xce, 0x3d, 0x03, 0x01, 0x07};

struct p11 {
	void *so;
	CK_FUNCTION_LIST *f;
	int initialized; /* we called C_Initialize and owe C_Finalize */
	CK_SESSION_HANDLE session;
	int open, logged_in;
};

/* The decoded value of the attribute name= of a pkcs11: URI's path; NULL if none. */
static char *
uri_attr(const char *p11, const char *name, size_t *lenp)
{
	for (const char *a = p11 + URI_SCHEME_LEN; *a != '\0' && *a != '?';) {
		size_t n = strcspn(a, ";?");

		if (attr_is(a, name)) {
			size_t vlen = n - strlen(name) - 1;
			char *v = pct_decode(a + strlen(name) + 1, vlen);

			if (v != NULL && lenp != NULL) {
				*lenp = strlen(v);
			}
			return v;
		}
		a += n;
		if (*a == ';') {
			a++;
		}
	}
	return NULL;
}

static int
p11_fail(CK_RV rv, const char *what, char *err, size_t errlen)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		juki_seterr(err, errlen, "the token refused the token PIN");
		return JUKI_EAUTH;
	case CKR_PIN_LOCKED:
		juki_seterr(err, errlen,
			    "the token's PIN is locked (too many wrong token PINs); its security "
			    "officer must reset it");
		return JUKI_ELOCKED;
	default:
		juki_seterr(err, errlen, "%s: PKCS#11 error 0x%lx", what, (unsigned long)rv);
		return JUKI_ETLS;
	}
}

static int
p11_open(struct p11 *p, const char *module, const char *label, char *err, size_t errlen)
{
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_C_GetFunctionList get;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG nslots = 0;
	size_t llen = strlen(label);
	CK_RV rv;
	int rc = JUKI_ENOENT;

	p->so = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (p->so == NULL) {
		juki_seterr(err, errlen, "the PKCS#11 module %s cannot be loaded: %s", module,
			    dlerror());
		return JUKI_ENOENT;
	}
	*(void **)&get = dlsym(p->so, "C_GetFunctionList");
	if (get == NULL || get(&p->f) != CKR_OK || p->f == NULL) {
		juki_seterr(err, errlen, "%s is no PKCS#11 module", module);
		return JUKI_ENOENT;
	}
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return p11_fail(rv, "C_Initialize", err, errlen);
	}
	p->initialized = rv == CKR_OK;
	if ((rv = p->f->C_GetSlotList(CK_TRUE, NULL, &nslots)) != CKR_OK) {
		return p11_fail(rv, "C_GetSlotList", err, errlen);
	}
	slots = calloc(nslots + 1, sizeof(*slots));
	if (slots == NULL) {
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	if ((rv = p->f->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK) {
		free(slots);
		return p11_fail(rv, "C_GetSlotList", err, errlen);
	}
	juki_seterr(err, errlen, "no token labelled %s", label);
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;
		size_t tl = sizeof(ti.label);

		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
			continue;
		}
		/* the label is blank-padded to 32 bytes */
		while (tl > 0 && ti.label[tl - 1] == ' ') {
			tl--;
		}
		if (tl != llen || memcmp(ti.label, label, llen) != 0) {
			continue;
		}
		rv = p->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					 &p->session);
		rc = rv == CKR_OK ? 0 : p11_fail(rv, "C_OpenSession", err, errlen);
		p->open = rv == CKR_OK;
		break;
	}
	free(slots);
	return rc;
}

static void
p11_close(struct p11 *p)
{
	if (p->logged_in) {
		p->f->C_Logout(p->session);
	}
	if (p->open) {
		p->f->C_CloseSession(p->session);
	}
	if (p->initialized) {
		p->f->C_Finalize(NULL);
	}
	if (p->so != NULL) {
		dlclose(p->so);
	}
}

/* Whether the token holds a private key labelled label. */
static int
p11_has_key(struct p11 *p, const char *label, int *has, char *err, size_t errlen)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0;
	CK_RV rv;

	if ((rv = p->f->C_FindObjectsInit(p->session, t, 2)) != CKR_OK) {
		return p11_fail(rv, "C_FindObjectsInit", err, errlen);
	}
	rv = p->f->C_FindObjects(p->session, &h, 1, &n);
	p->f->C_FindObjectsFinal(p->session);
	if (rv != CKR_OK) {
		return p11_fail(rv, "C_FindObjects", err, errlen);
	}
	*has = n > 0;
	return 0;
}

/* The EVP_PKEY of a P-256 public key object: its CKA_EC_POINT, a DER OCTET STRING. */
static int
p11_public(struct p11 *p, CK_OBJECT_HANDLE h, EVP_PKEY **out, char *err, size_t errlen)
{
	CK_ATTRIBUTE a = {CKA_EC_POINT, NULL, 0};
	const unsigned char *q;
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char *der = NULL;
	CK_RV rv;
	int rc = JUKI_ETLS;

	if ((rv = p->f->C_GetAttributeValue(p->session, h, &a, 1)) != CKR_OK) {
		return p11_fail(rv, "the new public key", err, errlen);
	}
	der = malloc(a.ulValueLen);
	if (der == NULL) {
		juki_seterr(err, errlen, "out of memory");
		return JUKI_ENOMEM;
	}
	a.pValue = der;
	if ((rv = p->f->C_GetAttributeValue(p->session, h, &a, 1)) != CKR_OK) {
		free(der);
		return p11_fail(rv, "the new public key", err, errlen);
	}
	q = der;
	os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)a.ulValueLen);
	bld = OSSL_PARAM_BLD_new();
	if (os == NULL || bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					      ASN1_STRING_get0_data(os),
					      (size_t)ASN1_STRING_length(os)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		rc = juki_seterr_ssl(err, errlen, JUKI_ETLS, "the new public key");
	} else {
		rc = 0;
	}
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ASN1_OCTET_STRING_free(os);
	free(der);
	return rc;
}

int
juki_token_keygen(const char *uri, const char *pin, EVP_PKEY **pub, char *err, size_t errlen)
{
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	struct p11 p = {0};
	CK_OBJECT_HANDLE hpub, hpriv;
	char *p11 = NULL, *module = NULL, *token = NULL, *label = NULL, *id = NULL;
	size_t idlen = 0;
	int has = 0;
	CK_RV rv;
	int rc;

	*pub = NULL;
	if (!juki_token_is_uri(uri) || pin == NULL) {
		juki_seterr(err, errlen, "a pkcs11: URI and a token PIN are needed");
		return JUKI_EINVAL;
	}
	if (juki_token_uri_has_pin(uri)) {
		juki_seterr(err, errlen, "the token URI carries a PIN: give it apart");
		return JUKI_EINVAL;
	}
	if ((rc = uri_split(uri, "token", &p11, &module, err, errlen)) != 0 ||
	    (rc = uri_check(p11, "token", err, errlen)) != 0) {
		goto out;
	}
	token = uri_attr(p11, "token", NULL);
	label = uri_attr(p11, "object", NULL);
	id = uri_attr(p11, "id", &idlen);
	if (token == NULL || label == NULL) {
		juki_seterr(err, errlen, "the token URI needs token= and object=");
		rc = JUKI_EINVAL;
		goto out;
	}
	if (id == NULL) {
		/* libp11 pairs a private key with its public key by CKA_ID */
		id = strdup(label);
		idlen = id != NULL ? strlen(id) : 0;
		if (id == NULL) {
			rc = JUKI_ENOMEM;
			juki_seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	if ((rc = p11_open(&p, module != NULL ? module : JUKI_PKCS11_MODULE, token, err, errlen)) !=
	    0) {
		goto out;
	}
	rv = p.f->C_Login(p.session, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		rc = p11_fail(rv, "C_Login", err, errlen);
		goto out;
	}
	p.logged_in = rv == CKR_OK;
	if ((rc = p11_has_key(&p, label, &has, err, errlen)) != 0) {
		goto out;
	}
	if (has) {
		juki_seterr(err, errlen, "token %s already holds a private key labelled %s", token,
			    label);
		rc = JUKI_EEXIST;
		goto out;
	}
	{
		CK_ATTRIBUTE tpub[] = {
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_VERIFY, &yes, sizeof(yes)},
		    {CKA_EC_PARAMS, (void *)P256_PARAMS, sizeof(P256_PARAMS)},
		    {CKA_LABEL, label, strlen(label)},
		    {CKA_ID, id, idlen},
		};
		CK_ATTRIBUTE tpriv[] = {
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &yes, sizeof(yes)},
		    {CKA_SENSITIVE, &yes, sizeof(yes)},
		    {CKA_EXTRACTABLE, &no, sizeof(no)},
		    {CKA_SIGN, &yes, sizeof(yes)},
		    {CKA_LABEL, label, strlen(label)},
		    {CKA_ID, id, idlen},
		};

		rv = p.f->C_GenerateKeyPair(p.session, &mech, tpub, sizeof(tpub) / sizeof(tpub[0]),
					    tpriv, sizeof(tpriv) / sizeof(tpriv[0]), &hpub, &hpriv);
	}
	if (rv != CKR_OK) {
		rc = p11_fail(rv, "generating the key pair on the token", err, errlen);
		goto out;
	}
	rc = p11_public(&p, hpub, pub, err, errlen);
out:
	p11_close(&p);
	free(p11);
	free(module);
	free(token);
	free(label);
	free(id);
	return rc;
}

/*
 * libp11 says only that it found no key: when the token itself is not
 * there (removed, another SOFTHSM2_CONF, the wrong module), say so instead.
 */
static void
token_absent(const char *p11, const char *module, const char *shown, char *err, size_t errlen)
{
	char *label = uri_attr(p11, "token", NULL);
	struct p11 p = {0};
	char why[256];
	int rc = 0;

	if (label != NULL) {
		rc = p11_open(&p, module != NULL ? module : JUKI_PKCS11_MODULE, label, why,
			      sizeof(why));
	}
	if (rc == JUKI_ENOENT) {
		juki_seterr(err, errlen, "no private key at %s: %s", shown, why);
	} else if (rc != 0) {
		juki_seterr(err, errlen,
			    "no private key at %s: no token labelled %s is present (%s)", shown,
			    label, why);
	}
	p11_close(&p);
	free(label);
}
