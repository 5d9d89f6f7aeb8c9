/* test-agent-birdctl — BIRD control socket replies (agent/birdctl.h), with replies
 * recorded from BIRD 2.0.12. */
#include "agent/birdctl.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>

static int parse(const char *s, size_t *used, struct agent_birdctl_reply *r)
{
	return agent_birdctl_parse(s, strlen(s), used, r);
}

static void test_banner_and_configure(void)
{
	struct agent_birdctl_reply r;
	size_t used = 0;
	const char *s = "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from bird.conf\n"
			"0003 Reconfigured\n";
	T_EQ(parse(s, &used, &r), 1);
	T_EQ(r.code, 1);
	T_STREQ(r.text, "BIRD 2.0.12 ready.");
	T_EQ(used, strlen("0001 BIRD 2.0.12 ready.\n"));
	s += used;
	T_EQ(parse(s, &used, &r), 1);
	T_EQ(r.code, 3);
	T_EQ(r.err_code, 0);
	T_EQ(r.lines, 2);
	T_STREQ(r.text, "Reconfigured");
	T_EQ(used, strlen(s));
	T_CHECK(agent_birdctl_configure_ok(r.code));
}

static void test_errors(void)
{
	struct agent_birdctl_reply r;
	size_t used = 0;
	T_EQ(parse("0002-Reading configuration from bird.conf\n"
		   "8002 /etc/bird/kvnet.conf:36:1 syntax error, unexpected GARBAGE\n", &used, &r),
	     1);
	T_EQ(r.code, 8002);
	T_EQ(r.err_code, 8002);
	T_STREQ(r.text, "/etc/bird/kvnet.conf:36:1 syntax error, unexpected GARBAGE");
	T_CHECK(!agent_birdctl_configure_ok(r.code));
	T_EQ(parse("9001 syntax error\n", &used, &r), 1);
	T_EQ(r.err_code, 9001);
}

static void test_incomplete_and_continuation(void)
{
	struct agent_birdctl_reply r;
	size_t used = 7;
	T_EQ(parse("", &used, &r), 0);
	T_EQ(used, 0);
	T_EQ(parse("0002-Reading configuration", &used, &r), 0);
	T_EQ(parse("0002-Reading\n", &used, &r), 0);
	T_EQ(parse("1002-a\n b\n c\n0000 \n", &used, &r), 1);
	T_EQ(r.code, 0);
	T_EQ(r.lines, 4);
	T_EQ(parse("0003 Recon", &used, &r), 0);
}

static void test_garbage(void)
{
	struct agent_birdctl_reply r;
	size_t used = 0;
	T_EQ(parse("HTTP/1.1 400 Bad Request\r\n", &used, &r), -EBADMSG);
	T_EQ(parse(" continuation first\n", &used, &r), -EBADMSG);
	T_EQ(parse("000\n", &used, &r), -EBADMSG);
	T_EQ(parse("00a1 x\n", &used, &r), -EBADMSG);
	T_EQ(parse("0001x\n", &used, &r), -EBADMSG);
	T_EQ(agent_birdctl_parse("0001 a\0b\n", 9, &used, &r), -EBADMSG);
	static char big[AGENT_BIRDCTL_LINE_MAX + 10];
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "0002-", 5);
	T_EQ(parse(big, &used, &r), -EMSGSIZE);
	/* text is kept printable and bounded */
	static char longl[600];
	memset(longl, 'y', sizeof(longl) - 2);
	memcpy(longl, "0003 ", 5);
	longl[sizeof(longl) - 2] = '\n';
	T_EQ(parse(longl, &used, &r), 1);
	T_EQ(strlen(r.text), AGENT_BIRDCTL_TEXT_MAX);
	T_EQ(parse("0003 a\tb\n", &used, &r), 1);
	T_STREQ(r.text, "a?b");
}

int main(void)
{
	T_RUN(test_banner_and_configure);
	T_RUN(test_errors);
	T_RUN(test_incomplete_and_continuation);
	T_RUN(test_garbage);
	return t_done();
}
