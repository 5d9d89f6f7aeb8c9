/* config role: not built yet. Exits non-zero with a clear message, never a fake success. */
#include "cmd/cmd.h"

#include <stdio.h>

int cmd_config(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvnet config: not implemented yet\n");
	return 1;
}
