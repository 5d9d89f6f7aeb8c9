/* file — small whole-file helpers shared by the config, kubeconfig and TLS readers. */
#ifndef KVNET_LIB_FILE_H
#define KVNET_LIB_FILE_H

#include <stddef.h>

struct err;

/* Read the regular file at path, of at most max bytes, into a malloc'd buffer that is
 * NUL-terminated (the NUL is not counted in *len). Returns 0, or -errno with e saying
 * "PATH: open: ...", "PATH: not a regular file of at most MAX bytes" (-EINVAL/-EFBIG),
 * "PATH: read: ...". *out is NULL on failure. */
int file_read(const char *path, size_t max, char **out, size_t *len, struct err *e);

#endif
