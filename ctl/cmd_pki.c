#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "juki/config.h"
#include "juki/error.h"
#include "juki/pki.h"

#define DEFAULT_DAYS 825
#define CRL_DAYS     30

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

static int
cmd_pki_issue(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"days", required_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *self = ctl_find("pki issue");
	int ch, days = DEFAULT_DAYS;
	char err[512], name[64];

	while ((ch = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		if (ch != 'd' || days_arg(optarg, &days) != 0) {
			return ctl_usage(self);
		}
	}
	if (optind + 2 != argc) {
		return ctl_usage(self);
	}
	if (juki_pki_issue(argv[optind], argv[optind + 1], days, name, err, sizeof(err)) != 0) {
		fprintf(stderr, "juki-ctl: pki issue: %s\n", err);
		return CTL_FAILED;
	}
	say(ctl, json_pack("{s:s,s:s}", "urn", argv[optind + 1], "name", name));
	return CTL_OK;
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
    {"pki issue", cmd_pki_issue, "[--days N] DIR URN",
     "issue one more certificate from the CA in DIR", 0},
    {"pki revoke", cmd_pki_revoke, "DIR NAME|URN", "revoke a certificate and rewrite the CRL", 0},
    {"pki crl", cmd_pki_crl, "[--days N] DIR", "rewrite the CRL with a new next-update time", 0},
    {NULL, NULL, NULL, NULL, 0},
};
