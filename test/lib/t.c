/* t — TAP-style test harness; see t.h. */
#include "test/lib/t.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct t_state {
	const char *name;   /* current test */
	int failed_checks;  /* in the current test */
	bool skipped;
	int passed, failed, skips;
};

static struct t_state T;

void t_begin(const char *name)
{
	T.name = name;
	T.failed_checks = 0;
	T.skipped = false;
}

void t_end(void)
{
	if (T.failed_checks) {
		printf("not ok - %s\n", T.name);
		T.failed++;
	} else if (T.skipped) {
		T.skips++;
	} else {
		printf("ok - %s\n", T.name);
		T.passed++;
	}
	fflush(stdout);
}

int t_done(void)
{
	printf("# %d passed, %d failed, %d skipped\n", T.passed, T.failed, T.skips);
	return T.failed ? 1 : 0;
}

bool t_check(bool ok, const char *expr, const char *file, int line)
{
	if (!ok) {
		printf("# %s:%d: %s: check failed: %s\n", file, line, T.name, expr);
		T.failed_checks++;
	}
	return ok;
}

bool t_check_int(long long a, long long b, const char *ea, const char *eb, const char *file,
		 int line)
{
	if (a != b) {
		printf("# %s:%d: %s: %s == %s: %lld != %lld\n", file, line, T.name, ea, eb, a, b);
		T.failed_checks++;
	}
	return a == b;
}

bool t_check_str(const char *a, const char *b, const char *ea, const char *eb,
		 const char *file, int line)
{
	bool ok = (a && b) ? strcmp(a, b) == 0 : a == b;
	if (!ok) {
		printf("# %s:%d: %s: %s == %s: \"%s\" != \"%s\"\n", file, line, T.name, ea, eb,
		       a ? a : "(null)", b ? b : "(null)");
		T.failed_checks++;
	}
	return ok;
}

bool t_check_mem(const void *a, const void *b, size_t n, const char *ea, const char *file,
		 int line)
{
	bool ok = memcmp(a, b, n) == 0;
	if (!ok) {
		printf("# %s:%d: %s: %s: %zu bytes differ\n", file, line, T.name, ea, n);
		T.failed_checks++;
	}
	return ok;
}

void t_skip(const char *why)
{
	printf("ok - %s # SKIP %s\n", T.name, why);
	T.skipped = true;
}

void t_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

char *t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
		if (n + 1 == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

char *t_sh(int *status, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	if (!p) {
		if (status)
			*status = -1;
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (n + 1 == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	int st = pclose(p);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (buf)
		buf[n] = '\0';
	return buf;
}
