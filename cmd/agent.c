/* agent role: not built yet. Exits non-zero with a clear message, never a fake success. */
#include "cmd/cmd.h"

#include <stdio.h>

int cmd_agent(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvnet agent: not implemented yet\n");
	return 1;
}
