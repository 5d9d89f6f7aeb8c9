/* fortify — glibc's _FORTIFY_SOURCE entry points, for the static musl build only.
 *
 * Debian compiles libbearssl.a and libyaml.a with _FORTIFY_SOURCE, so their objects call
 * __memcpy_chk and friends, which musl does not have. These versions do the real check:
 * `destlen` is the size of the destination the compiler could see; a copy that would
 * overflow it aborts, exactly as glibc's do. Never linked into the glibc test builds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__memcpy_chk(void *dest, const void *src, size_t len, size_t destlen);
void *__memmove_chk(void *dest, const void *src, size_t len, size_t destlen);
void *__memset_chk(void *dest, int c, size_t len, size_t destlen);
int __sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...);

static void chk_fail(const char *what)
{
	static const char pre[] = "kvnet: buffer overflow detected in ";
	ssize_t w = write(2, pre, sizeof(pre) - 1);
	w = write(2, what, strlen(what));
	w = write(2, "\n", 1);
	(void)w;
	abort();
}

void *__memcpy_chk(void *dest, const void *src, size_t len, size_t destlen)
{
	if (len > destlen)
		chk_fail("memcpy");
	return memcpy(dest, src, len);
}

void *__memmove_chk(void *dest, const void *src, size_t len, size_t destlen)
{
	if (len > destlen)
		chk_fail("memmove");
	return memmove(dest, src, len);
}

void *__memset_chk(void *dest, int c, size_t len, size_t destlen)
{
	if (len > destlen)
		chk_fail("memset");
	return memset(dest, c, len);
}

/* libyaml formats small numbers with sprintf; slen is the destination size. */
int __sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...)
{
	(void)flag;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, slen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= slen)
		chk_fail("sprintf");
	return n;
}
