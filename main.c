/* kvnet — one static multicall binary. The role is chosen like BusyBox does:
 *
 *   1. basename of argv[0] is a role, with or without a "kvnet-" prefix
 *      (/usr/local/bin/kvnet-agent, ipamctl, garp-watch ...);
 *   2. basename "kvnet" and CNI_COMMAND set (non-empty, or empty with no further
 *      argument): the container runtime calling /opt/cni/bin/kvnet, so the role is cni
 *      (an empty CNI_COMMAND then gets a CNI error object, code 4);
 *   3. otherwise `kvnet ROLE ARGS...`.
 *
 * An unknown role prints the usage on stderr and exits 2.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct role kvnet_roles[] = {
	{ "cni", cmd_cni, "CNI plugin (spec 1.1); run by the container runtime" },
	{ "agent", cmd_agent, "node daemon: routes, live-migration hand-over" },
	{ "ipamctl", cmd_ipamctl, "operator CLI over the IPAM state" },
	{ "garp-watch", cmd_garpwatch, "watch or send gratuitous ARP / RARP / unsolicited NA" },
	{ "config", cmd_config, "parse the configuration and print it (-n [-c FILE])" },
	{ "install", cmd_install, "put kvnet into a node's tree (--root DIR [--dry-run])" },
	{ "uninstall", cmd_uninstall, "take out what install put there (--root DIR)" },
	{ "flows", cmd_flows, "who talks to a VM: report and picture from flow logs" },
	{ "policy", cmd_policy, "NetworkPolicy tools: explain --from --to --port [--dir]" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "print this list" },
};
const unsigned kvnet_nroles = sizeof(kvnet_roles) / sizeof(kvnet_roles[0]);

static const struct role *role_find(const char *name)
{
	if (strncmp(name, "kvnet-", 6) == 0)
		name += 6;
	for (unsigned i = 0; i < kvnet_nroles; i++)
		if (strcmp(kvnet_roles[i].name, name) == 0)
			return &kvnet_roles[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	base = base ? base + 1 : (argc > 0 && argv[0] ? argv[0] : "kvnet");

	const struct role *r = role_find(base);
	if (r)
		return r->fn(argc, argv);

	if (strcmp(base, "kvnet") == 0) {
		/* set, even empty, with no role argument: a runtime's call (libcni sets every
		 * CNI_* variable, empty where unused), answered with a CNI error object */
		const char *cni = getenv("CNI_COMMAND");
		if (cni && (*cni || argc < 2))
			return cmd_cni(argc, argv);
	}
	if (argc < 2) {
		cmd_usage(2);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	r = role_find(argv[1]);
	if (!r) {
		fprintf(stderr, "kvnet: unknown role '%s'\n", argv[1]);
		cmd_usage(2);
		return 2;
	}
	return r->fn(argc - 1, argv + 1);
}
