/* ipamctl role — the operator CLI over the IPAM state (conventions of `calicoctl ipam` and
 * `kubectl`): see, check, repair and pre-register VM addresses.
 *
 *   show [--blocks | --ip IP | --vm NS/NAME | --network NET | --borrowed | --configuration]
 *   check [-o report.json]
 *   release --ip IP | --handle H | --from-report FILE [--network NET] [--force]
 *   reserve --vm NS/NAME --ip IP [--mac MAC] [--network NET]
 *   import FILE.csv [--partial] [--network NET]
 *   configure --kubevirt-ip-persistence=Enabled|Disabled
 *   pool list | pool add CIDR [--block-size N] | pool delete CIDR
 *
 * Global flags (anywhere on the line): --datastore kubernetes|file, --kubeconfig FILE,
 * --context NAME (KUBECONFIG is honoured), --state-dir DIR, -c FILE (kvnet.conf: its
 * [datastore], [kubernetes] and [ipam] sections are the defaults of these flags;
 * KVNET_<SECTION>_<KEY> variables override the file), -o table|json|wide, --network NET
 * (default "kvnet", the CNI network name of VM handles <network>.vmi.<ns>.<vm>).
 * For `check`, -o with anything but table/json/wide is the report file.
 *
 * ipamctl talks to the datastore directly (the agent is optional). The API server (the
 * kubernetes datastore's, or with the file datastore the kubeconfig's when one is found)
 * tells which pods, VMIs and VMs exist: check judges leaks and duplicates with it, release
 * refuses an address whose owner is alive (or cannot be verified) unless --force.
 *
 * Exit status: 0 done; 1 problems found or the operation failed; 2 usage error.
 *
 * This file holds the options, the {name, fn, help} command table (usage is printed from
 * it) and the dispatch; each subcommand is cmd/ipamctl_NAME.c, what they share is in
 * cmd/ipamctl.h, and the logic they print lives in ipam/ (inventory, report, listing,
 * live).
 */
#include "cmd/cmd.h"
#include "cmd/ipamctl.h"

#include "conf/conf.h"
#include "lib/err.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* ---- options ------------------------------------------------------------------------- */

const char *ctl_slash_split(const char *s, char *ns, size_t nscap, char *name, size_t ncap)
{
	const char *sl = s ? strchr(s, '/') : NULL;
	if (!sl || sl == s || !sl[1] || strchr(sl + 1, '/') || (size_t)(sl - s) >= nscap ||
	    strlen(sl + 1) >= ncap)
		return NULL;
	memcpy(ns, s, (size_t)(sl - s));
	ns[sl - s] = 0;
	snprintf(name, ncap, "%s", sl + 1);
	return name;
}

/* The subcommands, in the order usage lists them. */
static const struct ctl_cmd cmds[] = {
	{"show", ctl_show,
	 "[--blocks | --ip IP | --vm NS/NAME | --network NET | --borrowed | --configuration]",
	 false},
	{"check", ctl_check, "[-o report.json] [--vm-grace-seconds N]", false},
	{"release", ctl_release,
	 "--ip IP | --handle H | --from-report FILE [--network NET] [--force]", false},
	{"reserve", ctl_reserve, "--vm NS/NAME --ip IP [--mac MAC] [--network NET]", false},
	{"import", ctl_import, "FILE.csv [--partial] [--network NET]   (namespace,vm,ip,mac,network)",
	 true},
	{"configure", ctl_configure, "--kubevirt-ip-persistence=Enabled|Disabled", false},
	{"pool", ctl_pool, "list | pool add CIDR [--block-size N] | pool delete CIDR", true},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: kvnet ipamctl [GLOBAL FLAGS] COMMAND [FLAGS]\ncommands:\n");
	for (unsigned i = 0; i < NCMDS; i++)
		fprintf(f, "  %s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f,
		"global flags:\n"
		"  --datastore kubernetes|file   --state-dir DIR   -c FILE (kvnet.conf)\n"
		"  --kubeconfig FILE   --context NAME   (KUBECONFIG is honoured)\n"
		"  -o table|json|wide   --network NET (default " CTL_DEFAULT_NETWORK ")\n"
		"exit status: 0 ok, 1 problems found or failed, 2 usage error\n");
}

enum {
	O_DATASTORE = 256, O_KUBECONFIG, O_CONTEXT, O_STATE_DIR, O_NETWORK, O_BLOCKS, O_IP, O_VM,
	O_BORROWED, O_CONFIGURATION, O_HANDLE, O_FROM_REPORT, O_FORCE, O_MAC, O_PARTIAL,
	O_BLOCK_SIZE, O_PERSISTENCE, O_GRACE,
};

static const struct option opts[] = {
	{"datastore", required_argument, NULL, O_DATASTORE},
	{"kubeconfig", required_argument, NULL, O_KUBECONFIG},
	{"context", required_argument, NULL, O_CONTEXT},
	{"state-dir", required_argument, NULL, O_STATE_DIR},
	{"config", required_argument, NULL, 'c'},
	{"output", required_argument, NULL, 'o'},
	{"network", required_argument, NULL, O_NETWORK},
	{"blocks", no_argument, NULL, O_BLOCKS},
	{"ip", required_argument, NULL, O_IP},
	{"vm", required_argument, NULL, O_VM},
	{"borrowed", no_argument, NULL, O_BORROWED},
	{"configuration", no_argument, NULL, O_CONFIGURATION},
	{"handle", required_argument, NULL, O_HANDLE},
	{"from-report", required_argument, NULL, O_FROM_REPORT},
	{"force", no_argument, NULL, O_FORCE},
	{"mac", required_argument, NULL, O_MAC},
	{"partial", no_argument, NULL, O_PARTIAL},
	{"block-size", required_argument, NULL, O_BLOCK_SIZE},
	{"kubevirt-ip-persistence", required_argument, NULL, O_PERSISTENCE},
	{"vm-grace-seconds", required_argument, NULL, O_GRACE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Which command-specific flags each command takes (the globals go everywhere). */
static bool flag_ok(const char *cmd, int o)
{
	switch (o) {
	case O_BLOCKS:
	case O_BORROWED:
	case O_CONFIGURATION:
		return !strcmp(cmd, "show");
	case O_IP:
		return !strcmp(cmd, "show") || !strcmp(cmd, "release") || !strcmp(cmd, "reserve");
	case O_VM:
		return !strcmp(cmd, "show") || !strcmp(cmd, "reserve");
	case O_HANDLE:
	case O_FROM_REPORT:
	case O_FORCE:
		return !strcmp(cmd, "release");
	case O_MAC:
		return !strcmp(cmd, "reserve");
	case O_PARTIAL:
		return !strcmp(cmd, "import");
	case O_BLOCK_SIZE:
		return !strcmp(cmd, "pool");
	case O_PERSISTENCE:
		return !strcmp(cmd, "configure");
	case O_GRACE:
		return !strcmp(cmd, "check") || !strcmp(cmd, "release") || !strcmp(cmd, "show");
	}
	return true;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

int cmd_ipamctl(int argc, char **argv)
{
	struct ctl x;
	memset(&x, 0, sizeof(x));
	x.out = OUT_TABLE;
	x.network = CTL_DEFAULT_NETWORK;
	const char *out_flag = NULL;
	int seen[64];
	unsigned nseen = 0;
	int opt;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
		unsigned long v;
		switch (opt) {
		case O_DATASTORE:
			x.ds_flag = optarg;
			break;
		case O_KUBECONFIG:
			x.kubeconfig_flag = optarg;
			break;
		case O_CONTEXT:
			x.context_flag = optarg;
			break;
		case O_STATE_DIR:
			x.state_dir_flag = optarg;
			break;
		case 'c':
			x.conf_path = optarg;
			break;
		case 'o':
			out_flag = optarg;
			break;
		case O_NETWORK:
			x.network = optarg;
			x.network_set = true;
			break;
		case O_BLOCKS:
			x.blocks = true;
			break;
		case O_IP:
			x.ip = optarg;
			break;
		case O_VM:
			x.vm = optarg;
			break;
		case O_BORROWED:
			x.borrowed = true;
			break;
		case O_CONFIGURATION:
			x.configuration = true;
			break;
		case O_HANDLE:
			x.handle = optarg;
			break;
		case O_FROM_REPORT:
			x.from_report = optarg;
			break;
		case O_FORCE:
			x.force = true;
			break;
		case O_MAC:
			x.mac = optarg;
			break;
		case O_PARTIAL:
			x.partial = true;
			break;
		case O_BLOCK_SIZE:
			if (!parse_uint(optarg, 128, &v) || v == 0) {
				ctl_errx("--block-size: '%s' is not a prefix length", optarg);
				return 2;
			}
			x.block_size = (unsigned)v;
			break;
		case O_PERSISTENCE:
			x.persistence = optarg;
			break;
		case O_GRACE:
			x.grace_flag = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			ctl_errx("option '%s' needs a value", argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			ctl_errx("unknown option '%s'", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (opt >= 256 && nseen < 64)
			seen[nseen++] = opt;
	}
	if (optind >= argc) {
		ctl_errx("no command given");
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	const struct ctl_cmd *c = NULL;
	for (unsigned i = 0; i < NCMDS && !c; i++)
		if (!strcmp(cmd, cmds[i].name))
			c = &cmds[i];
	if (!c) {
		ctl_errx("unknown command '%s'", cmd);
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < nseen; i++)
		if (!flag_ok(cmd, seen[i])) {
			const char *name = "?";
			for (unsigned k = 0; opts[k].name; k++)
				if (opts[k].val == seen[i])
					name = opts[k].name;
			ctl_errx("%s: --%s does not apply to this command", cmd, name);
			return 2;
		}
	if (out_flag) {
		if (!strcmp(out_flag, "table"))
			x.out = OUT_TABLE;
		else if (!strcmp(out_flag, "json"))
			x.out = OUT_JSON;
		else if (!strcmp(out_flag, "wide"))
			x.out = OUT_WIDE;
		else if (!strcmp(cmd, "check"))
			x.report_file = out_flag;
		else {
			ctl_errx("-o: '%s' is not table, json or wide", out_flag);
			return 2;
		}
	}
	struct err e = {0};
	if (conf_load(&x.conf, x.conf_path ? x.conf_path : CONF_DEFAULT_PATH, !x.conf_path,
		      environ, &e) < 0) {
		ctl_errx("configuration: %s", e.msg);
		return 1;
	}
	x.kube = x.conf.datastore.type == CONF_DATASTORE_KUBERNETES;
	if (x.ds_flag) {
		if (!strcmp(x.ds_flag, "kubernetes"))
			x.kube = true;
		else if (!strcmp(x.ds_flag, "file"))
			x.kube = false;
		else {
			ctl_errx("--datastore: '%s' is neither kubernetes nor file", x.ds_flag);
			return 2;
		}
	}
	snprintf(x.state_dir, sizeof(x.state_dir), "%s",
		 x.state_dir_flag ? x.state_dir_flag : x.conf.datastore.state_dir);
	x.vm_grace = x.conf.ipam.vm_grace_seconds;
	if (x.grace_flag) {
		unsigned long v;
		if (!parse_uint(x.grace_flag, 86400 * 365, &v)) {
			ctl_errx("--vm-grace-seconds: '%s' is not a number of seconds", x.grace_flag);
			return 2;
		}
		x.vm_grace = (uint32_t)v;
	}
	if (!ipam_name_valid(x.network)) {
		ctl_errx("--network: '%s' is not a valid object name", x.network);
		return 2;
	}
	int rest = argc - optind - 1;
	char **rargv = argv + optind + 1;
	if (!c->operands && rest > 0) {
		ctl_errx("%s: unexpected argument '%s'", cmd, rargv[0]);
		return 2;
	}
	int rc = c->fn(&x, rest, rargv);
	ctl_close(&x);
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	return rc;
}
