/* Unit tests for lib/log and lib/err: logfmt lines, levels, escaping, error chaining. */
#include "lib/err.h"
#include "lib/log.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Log into a pipe and return what was written (static buffer per call site is fine in tests). */
static char *capture(void (*fn)(struct log *), enum log_level lvl)
{
	int p[2];
	static char buf[4096];
	struct log l;
	if (pipe(p) != 0)
		return NULL;
	log_init(&l, "agent", lvl);
	l.fd = p[1];
	fn(&l);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void emit_warn(struct log *l)
{
	errno = ENODEV;
	log_warn(l, "agent: route 198.18.0.5/32: replace");
}

static void emit_quoted(struct log *l)
{
	log_warnx(l, "pod \"a\\b\"\nnext");
}

static void emit_debug(struct log *l)
{
	log_debug(l, "hidden");
	log_info(l, "shown");
}

static void test_logfmt_line(void)
{
	char *out = capture(emit_warn, LOG_LVL_INFO);
	T_CHECK(strncmp(out, "ts=", 3) == 0);
	T_CHECK(strstr(out, " level=warn role=agent msg=\"agent: route 198.18.0.5/32: replace: "
			    "No such device\"\n") != NULL);
}

static void test_escaping(void)
{
	char *out = capture(emit_quoted, LOG_LVL_INFO);
	T_CHECK(strstr(out, "msg=\"pod \\\"a\\\\b\\\"\\nnext\"\n") != NULL);
	/* one line per message, even when the message had a newline */
	T_EQ(strchr(out, '\n') - out + 1, (long)strlen(out));
}

static void emit_fields(struct log *l)
{
	log_fields(l, LOG_LVL_INFO, "migration \"live\"", "vmi=%s latency_us=%d bad=\x01x", "default/vm-a", 87);
	log_fields(l, LOG_LVL_DEBUG, "dropped", "x=%d", 1);
}

static void test_fields(void)
{
	char *out = capture(emit_fields, LOG_LVL_INFO);
	T_CHECK(out && strstr(out, " level=info role=agent msg=\"migration \\\"live\\\"\" "
				   "vmi=default/vm-a latency_us=87 bad= x\n"));
	T_CHECK(out && !strstr(out, "dropped"));
}

static void test_levels(void)
{
	char *out = capture(emit_debug, LOG_LVL_INFO);
	T_CHECK(strstr(out, "hidden") == NULL);
	T_CHECK(strstr(out, "level=info") != NULL);
	enum log_level lv;
	T_CHECK(log_level_parse("DEBUG", &lv) && lv == LOG_LVL_DEBUG);
	T_CHECK(log_level_parse("warning", &lv) && lv == LOG_LVL_WARN);
	T_CHECK(!log_level_parse("loud", &lv));
	T_STREQ(log_level_name(LOG_LVL_ERROR), "error");
}

static void test_log_open_file(void)
{
	char path[] = "/tmp/kvnet-test-log-XXXXXX";
	int fd = mkstemp(path);
	T_CHECK(fd >= 0);
	close(fd);
	struct log l;
	log_init(&l, "cni", LOG_LVL_DEBUG);
	T_EQ(log_open(&l, path), 0);
	log_info(&l, "cni: add: ok");
	log_close(&l);
	T_EQ(l.fd, 2);
	char *s = t_slurp(path, NULL);
	T_CHECK(s && strstr(s, "role=cni msg=\"cni: add: ok\"") != NULL);
	free(s);
	unlink(path);
	T_EQ(log_open(&l, "/nonexistent-dir/x.log"), -ENOENT);
}

static int lower_layer(struct err *e)
{
	return err_set(e, EEXIST, "veth kv0123456789a: create");
}

static void test_err_chain(void)
{
	struct err e;
	err_clear(&e);
	T_EQ(lower_layer(&e), -EEXIST);
	T_EQ(err_prefix(&e, "cni: pod %s/%s", "ns", "virt-launcher-a"), -EEXIST);
	T_STREQ(e.msg, "cni: pod ns/virt-launcher-a: veth kv0123456789a: create: File exists");
	T_EQ(err_setx(&e, EINVAL, "conf: %s", "bad"), -EINVAL);
	T_STREQ(e.msg, "conf: bad");
	T_EQ(err_set(NULL, ENOENT, "x"), -ENOENT);
	T_EQ(err_prefix(NULL, "x"), 0);
	err_clear(&e);
	T_EQ(err_prefix(&e, "x"), 0);
	T_STREQ(e.msg, "");
}

static void test_err_long_message_is_cut_not_overflowed(void)
{
	struct err e;
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err_setx(&e, EIO, "%s", big);
	T_EQ(strlen(e.msg), ERR_MSG_MAX - 1);
	err_prefix(&e, "%s", big);
	T_EQ(strlen(e.msg), ERR_MSG_MAX - 1);
}

int main(void)
{
	T_RUN(test_logfmt_line);
	T_RUN(test_escaping);
	T_RUN(test_levels);
	T_RUN(test_fields);
	T_RUN(test_log_open_file);
	T_RUN(test_err_chain);
	T_RUN(test_err_long_message_is_cut_not_overflowed);
	return t_done();
}
