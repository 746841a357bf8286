#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "juki/wire/pki.h"
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
days_arg(const char *text, int *days)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (*end != '\0' || v < 1 || v > 36500) {
		fprintf(stderr, "juki-ctl: --days: 1..36500\n");
		return -1;
	}
	*days = (int)v;
	return 0;
}

static void
say(const struct ctl *ctl, json_t *result)
{
	ctl_print(ctl, result);
	json_decref(result);
}

static int
cmd_pki_init(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("pki init");
	struct topology topo;
	const char *out = NULL;
	char err[512], name[64];
	json_t *issued;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (ch != 'o') {
			return ctl_usage(self);
		}
		out = optarg;
	}
	if (out == NULL || optind + 1 != argc) {
		return ctl_usage(self);
	}
	memset(&topo, 0, sizeof(topo));
	if (juki_conf_load(argv[optind], topology_keys, &topo, err, sizeof(err)) != 0) {
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
	say(ctl, json_pack("{s:s,s:o}", "dir", out, "issued", issued));
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
	char again[PASS_BUF];
	char err[256];
	int rc = -1;

	if (ctl_read_pin(fd, "Passphrase for the key file: ", pass, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: passphrase: %s%s\n", err,
			fd < 0 ? " (or --pin-fd N)" : "");
		return -1;
	}
	if (strlen(pass) < PASS_MIN) {
		fprintf(stderr, "juki-ctl: pki issue: the passphrase needs at least %d bytes\n",
			PASS_MIN);
		goto out;
	}
	if (fd >= 0) {
		return 0;
	}
	if (ctl_read_pin(fd, "Again: ", again, sizeof(again), err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: passphrase: %s\n", err);
		goto out;
	}
	if (strcmp(pass, again) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: the passphrases differ\n");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(again, sizeof(again));
	if (rc != 0) {
		OPENSSL_cleanse(pass, len);
	}
	return rc;
}

static int
cmd_pki_issue(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"days", required_argument, NULL, 'd'},
	    {"encrypt", no_argument, NULL, 'e'},
	    {"pin-fd", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("pki issue");
	int ch, days = DEFAULT_DAYS, encrypt = 0, pin_fd = -1;
	char err[512], name[64], pass[PASS_BUF], key[PATH_MAX];
	json_t *result;
	char *end;
	long v;
	int rc = CTL_FAILED;

	while ((ch = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (days_arg(optarg, &days) != 0) {
				return ctl_usage(self);
			}
			break;
		case 'e':
			encrypt = 1;
			break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 0 || v > INT_MAX) {
				fprintf(stderr, "juki-ctl: --pin-fd: a file descriptor number\n");
				return ctl_usage(self);
			}
			pin_fd = (int)v;
			break;
		default:
			return ctl_usage(self);
		}
	}
	if (optind + 2 != argc || (pin_fd >= 0 && !encrypt)) {
		return ctl_usage(self);
	}
	if (encrypt && new_passphrase(pin_fd, pass, sizeof(pass)) != 0) {
		return CTL_FAILED;
	}
	if (juki_pki_issue(argv[optind], argv[optind + 1], days, name, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: %s\n", err);
		goto out;
	}
	result = json_pack("{s:s,s:s}", "urn", argv[optind + 1], "name", name);
	if (encrypt) {
		snprintf(key, sizeof(key), "%s/%s.key", argv[optind], name);
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
	say(ctl, result);
	rc = CTL_OK;
out:
	if (encrypt) {
		OPENSSL_cleanse(pass, sizeof(pass));
	}
	return rc;
}

static int
cmd_pki_revoke(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *self = ctl_find("pki revoke");
	char err[512];

	if (argc != 3) {
		return ctl_usage(self);
	}
	if (juki_pki_revoke(argv[1], argv[2], err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki revoke: %s\n", err);
		return CTL_FAILED;
	}
	say(ctl, json_pack("{s:s,s:s}", "revoked", argv[2], "crl", "crl.pem rewritten"));
	return CTL_OK;
}

static int
cmd_pki_crl(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"days", required_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("pki crl");
	int ch, days = CRL_DAYS;
	char err[512];

	while ((ch = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		if (ch != 'd' || days_arg(optarg, &days) != 0) {
			return ctl_usage(self);
		}
	}
	if (optind + 1 != argc) {
		return ctl_usage(self);
	}
	if (juki_pki_write_crl(argv[optind], days, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki crl: %s\n", err);
		return CTL_FAILED;
	}
	say(ctl, json_pack("{s:s,s:i}", "crl", "crl.pem rewritten", "days", days));
	return CTL_OK;
}

const struct ctl_cmd ctl_pki_cmds[] = {
    {"pki init", cmd_pki_init, "--out DIR TOPOLOGY.yaml",
     "make a development CA, a certificate and key for every identity of the topology, and a "
     "CRL",
     0},
    {"pki issue", cmd_pki_issue, "[--days N] [--encrypt [--pin-fd N]] DIR URN",
     "issue one more certificate from the CA in DIR; --encrypt: its key as an encrypted "
     "PKCS#8 file (an operator's card without a token), the passphrase from fd N or asked "
     "twice on the terminal",
     0},
    {"pki revoke", cmd_pki_revoke, "DIR NAME|URN", "revoke a certificate and rewrite the CRL", 0},
    {"pki crl", cmd_pki_crl, "[--days N] DIR", "rewrite the CRL with a new next-update time", 0},
    {NULL, NULL, NULL, NULL, 0},
};
