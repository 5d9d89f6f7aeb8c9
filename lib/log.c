/* log — logfmt lines; see log.h. */
#include "lib/log.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void log_init(struct log *l, const char *role, enum log_level level)
{
	l->role = role;
	l->level = level;
	l->fd = 2;
	l->own_fd = false;
}

int log_open(struct log *l, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	log_close(l);
	l->fd = fd;
	l->own_fd = true;
	return 0;
}

void log_close(struct log *l)
{
	if (l->own_fd)
		close(l->fd);
	l->fd = 2;
	l->own_fd = false;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return true;
	}
	return false;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "unknown";
	return level_names[level];
}

/* Append s to buf as a logfmt quoted value body: escape '"', '\\' and control bytes. */
static size_t put_escaped(char *buf, size_t off, size_t cap, const char *s)
{
	for (; *s && off + 6 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[off++] = '\\';
			buf[off++] = (char)c;
		} else if (c == '\n') {
			buf[off++] = '\\';
			buf[off++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			off += (size_t)snprintf(buf + off, cap - off, "\\x%02x", c);
		} else {
			buf[off++] = (char)c;
		}
	}
	return off;
}

static void log_write_fields(const struct log *l, enum log_level level, const char *text,
			     const char *fields);

static void log_write(const struct log *l, enum log_level level, const char *text)
{
	log_write_fields(l, level, text, NULL);
}

static void log_write_fields(const struct log *l, enum log_level level, const char *text,
			     const char *fields)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t off = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	off += (size_t)snprintf(line + off, sizeof(line) - off, ".%03ldZ level=%s role=%s msg=\"",
				ts.tv_nsec / 1000000, log_level_name(level), l->role ? l->role : "kvnet");
	if (off >= sizeof(line))
		off = sizeof(line) - 1;
	off = put_escaped(line, off, sizeof(line) - 2, text);
	line[off++] = '"';
	for (const char *f = fields; f && *f && off + 2 < sizeof(line); f++) {
		unsigned char c = (unsigned char)*f;
		line[off++] = c < 0x20 || c == 0x7f ? ' ' : (char)c; /* one line, always */
	}
	line[off++] = '\n';
	/* One write(2) per line so concurrent writers do not interleave mid-line. */
	ssize_t w = write(l->fd, line, off);
	(void)w;
}

void log_vmsg(const struct log *l, enum log_level level, const char *fmt, va_list ap)
{
	if (level > l->level)
		return;
	char text[1536];
	vsnprintf(text, sizeof(text), fmt, ap);
	log_write(l, level, text);
}

void log_msg(const struct log *l, enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, level, fmt, ap);
	va_end(ap);
}

static void log_with_errno(const struct log *l, enum log_level level, int saved,
			   const char *fmt, va_list ap)
{
	if (level > l->level)
		return;
	char text[1536];
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n >= 0 && (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n, ": %s", strerror(saved));
	log_write(l, level, text);
}

void log_error(const struct log *l, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_with_errno(l, LOG_LVL_ERROR, saved, fmt, ap);
	va_end(ap);
}

void log_errorx(const struct log *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
}

void log_warn(const struct log *l, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_with_errno(l, LOG_LVL_WARN, saved, fmt, ap);
	va_end(ap);
}

void log_warnx(const struct log *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, LOG_LVL_WARN, fmt, ap);
	va_end(ap);
}

void log_info(const struct log *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, LOG_LVL_INFO, fmt, ap);
	va_end(ap);
}

void log_debug(const struct log *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, LOG_LVL_DEBUG, fmt, ap);
	va_end(ap);
}

void log_err(const struct log *l, enum log_level level, const struct err *e)
{
	if (!e || !e->code)
		return;
	log_msg(l, level, "%s", e->msg);
}

void log_fields(const struct log *l, enum log_level level, const char *msg, const char *fmt, ...)
{
	if (level > l->level)
		return;
	char fields[1024];
	fields[0] = ' ';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fields + 1, sizeof(fields) - 1, fmt, ap);
	va_end(ap);
	log_write_fields(l, level, msg, fields);
}

void log_limited(const struct log *l, struct log_limit *r, uint64_t now_ms, const char *msg,
		 const char *reason, const char *from, const char *fmt, va_list ap)
{
	if (now_ms - r->t0 >= r->window_ms) {
		r->t0 = now_ms;
		r->n = 0;
	}
	if (r->n >= r->burst)
		return;
	r->n++;
	char detail[512];
	vsnprintf(detail, sizeof(detail), fmt, ap);
	for (char *c = detail; *c; c++)
		if (*c == '"' || *c == '\\')
			*c = '\'';
	log_fields(l, LOG_LVL_WARN, msg, "reason=%s from=%s detail=\"%s\"", reason, from, detail);
}
