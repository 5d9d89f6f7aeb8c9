/* fuzz-kubeconfig — the YAML walk (kcfg_check_text) and the whole resolution (kcfg_load:
 * merge, context, server URL, base64 data fields, PEM, token checks) on one file. */
#include "kube/kubeconfig.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct err e = { 0 };

	kcfg_check_text((const char *)data, size, "fuzz", &e);

	/* the file lives in memory (a memfd): a disk file costs milliseconds per run */
	static int fd = -1;
	if (fd < 0) {
		fd = memfd_create("kubeconfig", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	char *envp[] = { "HOME=/nonexistent", NULL };
	struct kcfg_opts o = { .kubeconfig = path, .envp = envp,
			       .system_ca = "/nonexistent/ca.crt", .sa_dir = "/nonexistent" };
	struct kcfg *k = NULL;
	if (kcfg_load(&k, &o, &e) == 0) {
		const char *tok;
		kcfg_token(k, 0, false, &tok, &e);
		kcfg_free(k);
	}
	return 0;
}
