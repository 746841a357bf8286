#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/wire/pki.h"
#include "juki/wire/token.h"
#include "terminal.h"

#include <openssl/crypto.h>

#define DEFAULT_DAYS 825
#define CRL_DAYS     30
/*
 * Whoever copies an encrypted key file can guess offline, and scrypt only
 * slows each guess: a passphrase is longer than a card PIN needs to be.
 */
#define PASS_MIN 8
#define PASS_BUF 257

/* A topology file: the CA's name and every identity that needs a certificate. */
struct topology {
	char *ca;
	int64_t days;
	char **nodes;
	size_t nnodes;
};

static const struct juki_conf_key topology_keys[] = {
    JUKI_CONF_SCALAR(struct topology, ca, "ca", JUKI_CONF_STRING, "juki development CA", 0, 0, 0,
		     "Common name of the CA."),
    JUKI_CONF_SCALAR(struct topology, days, "days", JUKI_CONF_INT, "825", 0, 1, 36500,
		     "Validity of every certificate, in days."),
    JUKI_CONF_SCALARLIST(struct topology, nodes, nnodes, "nodes", JUKI_CONF_IDENT,
			 JUKI_CONF_REQUIRED, 1, 100000, "Identities to issue certificates for."),
    JUKI_CONF_END,
};

static int
cmd_pki_init(struct ctl *ctl, const struct ctl_req *req)
{
	const char *out = ctl_val(req, "out");
	struct topology topo;
	char err[512], name[64];
	json_t *issued;
	int rc;

	memset(&topo, 0, sizeof(topo));
	if (juki_conf_load(ctl_val(req, "TOPOLOGY.yaml"), topology_keys, &topo, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "juki-ctl: %s\n", err);
		return CTL_FAILED;
	}
	rc = juki_pki_init_ca(out, topo.ca, (int)topo.days, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "juki-ctl: pki init: %s\n", err);
		juki_conf_free(topology_keys, &topo);
		return CTL_FAILED;
	}
	issued = json_array();
	for (size_t i = 0; i < topo.nnodes; i++) {
		rc = juki_pki_issue(out, topo.nodes[i], (int)topo.days, name, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "juki-ctl: pki init: %s: %s\n", topo.nodes[i], err);
			break;
		}
		json_array_append_new(issued,
				      json_pack("{s:s,s:s}", "urn", topo.nodes[i], "name", name));
	}
	juki_conf_free(topology_keys, &topo);
	if (rc != 0) {
		json_decref(issued);
		return CTL_FAILED;
	}
	ctl_print_new(ctl, json_pack("{s:s,s:o}", "dir", out, "issued", issued));
	return CTL_OK;
}

/*
 * The passphrase of a new key file: from fd, or typed twice on the
 * terminal.  Read before anything is issued, so that a refusal here leaves
 * no key behind unencrypted.
 */
static int
new_passphrase(int fd, char *pass, size_t len)
{
	int rc = ctl_new_secret(fd, "new passphrase", "Passphrase for the key file: ", pass, len);

	if (rc == CTL_OK && strlen(pass) < PASS_MIN) {
		fprintf(stderr, "juki-ctl: pki issue: the passphrase needs at least %d bytes\n",
			PASS_MIN);
		OPENSSL_cleanse(pass, len);
		rc = CTL_USAGE;
	}
	return rc;
}

/*
 * --token URI: a new key pair made on the token (never out of it), and a
 * certificate for its public key; no key file is written.
 */
static int
issue_on_token(struct ctl *ctl, const struct ctl_req *req, const char *uri)
{
	const char *dir = ctl_val(req, "DIR"), *urn = ctl_val(req, "URN");
	char err[512], name[64], pin[JUKI_TOKEN_PIN_MAX];
	EVP_PKEY *pub = NULL;
	int rc;

	if (ctl_read_pin((int)ctl_num(req, "pin-fd", -1), "Token PIN: ", pin, sizeof(pin), err,
			 sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: token PIN: %s\n", err);
		return CTL_USAGE;
	}
	rc = juki_token_keygen(uri, pin, &pub, err, sizeof(err));
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc != 0) {
		fprintf(stderr, "juki-ctl: pki issue: %s\n", err);
		return rc == JUKI_EAUTH     ? CTL_WRONG_PIN
		       : rc == JUKI_ELOCKED ? CTL_LOCKED
					    : CTL_FAILED;
	}
	rc = juki_pki_issue_key(dir, urn, (int)ctl_num(req, "days", DEFAULT_DAYS), pub, name, err,
				sizeof(err));
	EVP_PKEY_free(pub);
	if (rc != 0) {
		fprintf(stderr,
			"juki-ctl: pki issue: the key was made on the token, but no certificate "
			"was issued: %s\n",
			err);
		return CTL_FAILED;
	}
	ctl_print_new(ctl, json_pack("{s:s,s:s,s:s}", "urn", urn, "name", name, "token", uri));
	return CTL_OK;
}

static int
cmd_pki_issue(struct ctl *ctl, const struct ctl_req *req)
{
	const char *dir = ctl_val(req, "DIR"), *urn = ctl_val(req, "URN");
	const char *token = ctl_val(req, "token");
	int encrypt = ctl_val(req, "encrypt") != NULL;
	char err[512], name[64], pass[PASS_BUF], key[PATH_MAX];
	json_t *result;
	int rc;

	if (token != NULL && encrypt) {
		fprintf(stderr, "juki-ctl: pki issue: --token or --encrypt, not both\n");
		return ctl_usage(req->cmd);
	}
	if (token != NULL) {
		return issue_on_token(ctl, req, token);
	}
	if (ctl_val(req, "pin-fd") != NULL && !encrypt) {
		fprintf(stderr, "juki-ctl: pki issue: --pin-fd goes with --encrypt or --token\n");
		return ctl_usage(req->cmd);
	}
	if (encrypt &&
	    (rc = new_passphrase((int)ctl_num(req, "pin-fd", -1), pass, sizeof(pass))) != CTL_OK) {
		return rc;
	}
	rc = CTL_FAILED;
	if (juki_pki_issue(dir, urn, (int)ctl_num(req, "days", DEFAULT_DAYS), name, err,
			   sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: %s\n", err);
		goto out;
	}
	result = json_pack("{s:s,s:s}", "urn", urn, "name", name);
	if (encrypt) {
		snprintf(key, sizeof(key), "%s/%s.key", dir, name);
		if (juki_pki_encrypt_key(key, pass, err, sizeof(err)) != 0) {
			fprintf(stderr,
				"juki-ctl: pki issue: %s was issued, but its key is NOT encrypted: "
				"%s\n",
				name, err);
			json_decref(result);
			goto out;
		}
		json_object_set_new(result, "encrypted", json_true());
	}
	ctl_print_new(ctl, result);
	rc = CTL_OK;
out:
	if (encrypt) {
		OPENSSL_cleanse(pass, sizeof(pass));
	}
	return rc;
}

static int
cmd_pki_revoke(struct ctl *ctl, const struct ctl_req *req)
{
	const char *which = ctl_val(req, "NAME|URN");
	char err[512];

	if (juki_pki_revoke(ctl_val(req, "DIR"), which, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki revoke: %s\n", err);
		return CTL_FAILED;
	}
	ctl_print_new(ctl, json_pack("{s:s,s:s}", "revoked", which, "crl", "crl.pem rewritten"));
	return CTL_OK;
}

static int
cmd_pki_crl(struct ctl *ctl, const struct ctl_req *req)
{
	int days = (int)ctl_num(req, "days", CRL_DAYS);
	char err[512];

	if (juki_pki_write_crl(ctl_val(req, "DIR"), days, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki crl: %s\n", err);
		return CTL_FAILED;
	}
	ctl_print_new(ctl, json_pack("{s:s,s:i}", "crl", "crl.pem rewritten", "days", days));
	return CTL_OK;
}

/* --days N (-d N) of a certificate or a CRL. */
#define DAYS_ROW                                                                                   \
	{                                                                                          \
		"days", 'd', CTL_INT, 0, NULL, "N", 1, 36500, NULL                                 \
	}

const struct ctl_cmd ctl_pki_cmds[] = {
    {"pki init", cmd_pki_init, NULL,
     "make a development CA, a certificate and key for every identity of the topology, "
     "and a CRL",
     .opts = {{"out", 'o', CTL_FILE, CTL_REQUIRED, NULL, "DIR", 0, 0, NULL},
	      {"TOPOLOGY.yaml", 0, CTL_FILE, CTL_ARG, NULL, "TOPOLOGY.yaml", 0, 0, NULL}},
     .offline = 1},
    {"pki issue", cmd_pki_issue, NULL,
     "issue one more certificate from the CA in DIR; --encrypt: its key as an "
     "encrypted PKCS#8 file (an operator's card without a token), the passphrase from "
     "fd N (--pin-fd) or asked twice on the terminal; --token URI: its key made on "
     "that PKCS#11 token (a node's key in an HSM), no key file, the token PIN from fd "
     "N (--pin-fd) or asked",
     .opts = {DAYS_ROW, CTL_FLAG_ROW("encrypt", NULL), CTL_OPT_ROW("token", CTL_CARD, NULL, "URI"),
	      CTL_OPT_ROW("pin-fd", CTL_FD, NULL, "N"), CTL_ARG_ROW("DIR", NULL),
	      CTL_ARG_ROW("URN", NULL)},
     .offline = 1},
    {"pki revoke", cmd_pki_revoke, NULL, "revoke a certificate and rewrite the CRL",
     .opts = {CTL_ARG_ROW("DIR", NULL), CTL_ARG_ROW("NAME|URN", NULL)}, .offline = 1},
    {"pki crl", cmd_pki_crl, NULL, "rewrite the CRL with a new next-update time",
     .opts = {DAYS_ROW, CTL_ARG_ROW("DIR", NULL)}, .offline = 1},
    {.name = NULL},
};
