/* err — an error code plus the text that explains it.
 *
 * Library code never prints and never exits: an action function returns 0 or -errno
 * and, when the caller passed a struct err, fills it with "object: what failed: why".
 * The command layer (cmd/) decides whether and how to log it.
 */
#ifndef KVNET_LIB_ERR_H
#define KVNET_LIB_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 512

struct err {
	int code;               /* positive errno value; 0 when no error is recorded */
	char msg[ERR_MSG_MAX];  /* "object: what failed: why", NUL-terminated, maybe cut */
};

/* Record errno value `code` with a message made from fmt, followed by ": strerror(code)".
 * e may be NULL. Returns -code, so callers can write `return err_set(e, ENOENT, ...)`. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As err_set, but the message is used as is (the why is already in it). */
int err_setx(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put "prefix: " in front of the recorded message (adds the object a lower layer did
 * not know about). Returns -e->code, or 0 when e is NULL or holds no error: so a caller
 * that may get e == NULL returns its own code, `return err_prefix(e, "..."), rc;`. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget any recorded error. */
void err_clear(struct err *e);

#endif
