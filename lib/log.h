/* log — structured logs on stderr (or a file), one logfmt line per message.
 *
 *   ts=2026-11-22T14:30:00.123Z level=warn role=agent msg="agent: route 198.18.0.5/32: replace: No such device"
 *
 * The logger is an explicit object owned by the role in cmd/; library code does not
 * log, it returns errors (lib/err.h). log_warn() appends strerror(errno) like
 * OpenBSD's, log_warnx() does not.
 */
#ifndef KVNET_LIB_LOG_H
#define KVNET_LIB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct err;

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

struct log {
	const char *role;        /* role name printed in every line (not owned) */
	enum log_level level;    /* messages above this level are dropped */
	int fd;                  /* where lines go; 2 unless log_open() changed it */
	bool own_fd;             /* fd was opened by log_open() and is closed by log_close() */
};

/* Set up a logger writing to stderr at `level`. */
void log_init(struct log *l, const char *role, enum log_level level);

/* Append lines to `path` instead of stderr (created 0640). Returns 0 or -errno. */
int log_open(struct log *l, const char *path);
void log_close(struct log *l);

/* Parse "error", "warn"/"warning", "info", "debug" (case-insensitive). */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(const struct log *l, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(const struct log *l, enum log_level level, const char *fmt, va_list ap);

/* A message with logfmt fields after it, for lines other programs parse:
 *   ts=... level=info role=agent msg="migration live" vmi=default/vm-a latency_us=87
 * msg is quoted and escaped as usual; fmt gives the fields, written as they are after one
 * space (the caller quotes values that may hold spaces; control bytes become spaces). */
void log_fields(const struct log *l, enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A burst limit for one kind of warn line a remote or hostile party can cause (a rejected
 * peer message, a refused chunk): at most `burst` lines per `window_ms`, the others are
 * only counted (by the caller's metric). Zero-initialise t0 and n. */
struct log_limit {
	unsigned burst;
	uint64_t window_ms;
	uint64_t t0;	/* start of the current window */
	unsigned n;	/* lines in it */
};

/* A warn line `msg` with the fields reason=REASON from=FROM detail="..." (detail from fmt;
 * its quotes and backslashes become '), when r lets one more pass at now_ms. */
void log_limited(const struct log *l, struct log_limit *r, uint64_t now_ms, const char *msg,
		 const char *reason, const char *from, const char *fmt, va_list ap);

/* log_warn/log_error append ": strerror(errno)"; the x variants do not. */
void log_error(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_errorx(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warnx(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(const struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log the message a library left in e at `level`. */
void log_err(const struct log *l, enum log_level level, const struct err *e);

#endif
