/* version and help: the two roles that only print. */
#include "cmd/cmd.h"

#include <stdio.h>

#ifndef KVNET_VERSION
#define KVNET_VERSION "0.0.0"
#endif
#ifndef KVNET_GITREV
#define KVNET_GITREV "unknown"
#endif

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kvnet %s (%s)\n", KVNET_VERSION, KVNET_GITREV);
	return 0;
}

void cmd_usage(int fd)
{
	FILE *f = fd == 1 ? stdout : stderr;
	fprintf(f, "usage: kvnet ROLE [ARGS...]\n"
		   "       (or call the binary as ROLE or kvnet-ROLE; as /opt/cni/bin/kvnet with\n"
		   "        CNI_COMMAND set it is the CNI plugin)\n\nroles:\n");
	for (unsigned i = 0; i < kvnet_nroles; i++)
		fprintf(f, "  %-11s %s\n", kvnet_roles[i].name, kvnet_roles[i].help);
}

int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cmd_usage(1);
	return 0;
}
