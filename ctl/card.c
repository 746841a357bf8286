/*
 * The operator's card: a private key on a PKCS#11 token (wire/token.h, the
 * same code a daemon's key on a token uses), or a passphrase-encrypted
 * PKCS#8 key file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "juki/base/error.h"
#include "juki/wire/tls.h"
#include "juki/wire/token.h"
#include "terminal.h"

int
ctl_card_uri_has_pin(const char *uri)
{
	return juki_token_uri_has_pin(uri);
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
		juki_seterr(err, errlen, "no passphrase for key file %s", path);
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
		juki_seterr(err, errlen, "key file %s: %s", path, strerror(errno));
		return rc;
	}
	p8 = PEM_read_PKCS8(fp, NULL, NULL, NULL);
	fclose(fp);
	if (p8 == NULL) {
		snprintf(what, sizeof(what),
			 "key file %s is not an encrypted PKCS#8 key (ENCRYPTED PRIVATE KEY)",
			 path);
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
		goto out;
	}
	p8inf = PKCS8_decrypt(p8, pass, (int)strlen(pass));
	if (p8inf == NULL) {
		ERR_clear_error();
		juki_seterr(err, errlen, "wrong passphrase for key file %s", path);
		rc = JUKI_EAUTH;
		goto out;
	}
	*out = EVP_PKCS82PKEY(p8inf);
	if (*out == NULL) {
		snprintf(what, sizeof(what), "key file %s: no usable private key", path);
		rc = juki_seterr_ssl(err, errlen, JUKI_ECERT, what);
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
		juki_seterr(err, errlen, "a card URI or a key file, not both");
		return JUKI_EINVAL;
	}
	if (uri != NULL) {
		return juki_token_key(uri, pin, "card", out, err, errlen);
	}
	if (keyfile != NULL) {
		return file_key(keyfile, pin, out, err, errlen);
	}
	juki_seterr(err, errlen, "no card: neither a pkcs11: URI nor a key file");
	return JUKI_EINVAL;
}
