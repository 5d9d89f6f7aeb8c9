/* t — the test harness every C test links: TAP-style lines the runner counts.
 *
 *   int main(void) { T_RUN(test_parse_empty); T_RUN(test_parse_nested); return t_done(); }
 *
 * Each T_RUN prints "ok - FILE: NAME" or "not ok - FILE: NAME", after "# file:line: ..."
 * lines for every failed check. t_skip() inside a test marks it skipped with a reason.
 */
#ifndef KVNET_TEST_T_H
#define KVNET_TEST_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void t_begin(const char *name);
void t_end(void);
int t_done(void);
bool t_check(bool ok, const char *expr, const char *file, int line);
bool t_check_int(long long a, long long b, const char *ea, const char *eb, const char *file,
		 int line);
bool t_check_str(const char *a, const char *b, const char *ea, const char *eb,
		 const char *file, int line);
bool t_check_mem(const void *a, const void *b, size_t n, const char *ea, const char *file,
		 int line);
void t_skip(const char *why);
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_RUN(fn)                                                                           \
	do {                                                                                \
		t_begin(#fn);                                                               \
		fn();                                                                       \
		t_end();                                                                    \
	} while (0)
#define T_CHECK(c) t_check(!!(c), #c, __FILE__, __LINE__)
#define T_EQ(a, b) t_check_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define T_STREQ(a, b) t_check_str((a), (b), #a, #b, __FILE__, __LINE__)
#define T_MEMEQ(a, b, n) t_check_mem((a), (b), (n), #a, __FILE__, __LINE__)

/* Read a whole file into a malloc'd NUL-terminated buffer; NULL on failure. */
char *t_slurp(const char *path, size_t *len);

/* Run a shell command, return its stdout (malloc'd, NUL-terminated) and exit status. */
char *t_sh(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
