/* libFuzzer target for net/netns's sysctl name parser (netns_sysctl_path): whatever
 * the name, an accepted one maps to a path under /proc/sys/net/ with no empty, "." or
 * ".." component, and a refused one explains itself. No I/O happens. */
#include "lib/err.h"
#include "net/netns.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[512], path[NETNS_SYSCTL_PATH_MAX];
	struct err e = { 0 };
	if (size >= sizeof(name))
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	if (netns_sysctl_path(name, path, sizeof(path), &e) < 0) {
		if (!e.msg[0])
			abort();
		return 0;
	}
	if (strncmp(path, "/proc/sys/net/", 14) != 0 || strstr(path, "//") ||
	    strstr(path, "/./") || strstr(path, "/../")) {
		fprintf(stderr, "bad path for '%s': %s\n", name, path);
		abort();
	}
	size_t n = strlen(path);
	if (path[n - 1] == '/' || (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(path + n - 3, "/..") == 0)) {
		fprintf(stderr, "bad path end for '%s': %s\n", name, path);
		abort();
	}
	return 0;
}
