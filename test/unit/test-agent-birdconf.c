/* test-agent-birdconf — BIRD's configuration fragment (agent/birdconf.h): byte for byte
 * against the files in test/data/bird/ (KVNET_GOLDEN_UPDATE=1 rewrites them), and parsed by
 * BIRD itself (`bird -p -c`, an independent parser) when bird is installed. */
#include "agent/birdconf.h"
#include "conf/conf.h"
#include "lib/err.h"
#include "lib/file.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct conf conf_of(const char *text)
{
	struct conf c;
	struct err e = { 0 };
	if (conf_defaults(&c, &e) < 0 || conf_parse(&c, "t.conf", text, strlen(text), &e) < 0 ||
	    conf_check(&c, &e) < 0)
		fprintf(stderr, "# conf: %s\n", e.msg);
	return c;
}

static struct agent_block blk(const char *cidr)
{
	struct agent_block b;
	memset(&b, 0, sizeof(b));
	ip_parse_prefix(cidr, &b.net, &b.len);
	b.node = "n1";
	return b;
}

/* Compare text with test/data/bird/NAME (or write it). */
static void golden(const char *name, const char *text, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "test/data/bird/%s", name);
	const char *up = getenv("KVNET_GOLDEN_UPDATE");
	if (up && strcmp(up, "1") == 0) {
		FILE *f = fopen(path, "w");
		T_CHECK(f != NULL);
		if (f) {
			fwrite(text, 1, len, f);
			fclose(f);
		}
		return;
	}
	char *want = NULL;
	size_t wl = 0;
	struct err e = { 0 };
	T_EQ(file_read(path, 1 << 20, &want, &wl, &e), 0);
	T_CHECK(want && wl == len && memcmp(want, text, len) == 0);
	if (want && (wl != len || memcmp(want, text, len) != 0))
		fprintf(stderr, "# %s differs; got:\n%s", path, text);
	free(want);
}

static bool have_bird(void)
{
	return system("command -v bird >/dev/null 2>&1") == 0;
}

/* bird -p -c on a bird.conf that includes text: 0 when BIRD accepts it. */
static int bird_parse(const char *text, size_t len)
{
	char dir[] = "/tmp/kvt-birdconf-XXXXXX";
	char frag[128], main_conf[128], cmd[512];
	if (!mkdtemp(dir))
		return -errno;
	snprintf(frag, sizeof(frag), "%s/kvnet.conf", dir);
	snprintf(main_conf, sizeof(main_conf), "%s/bird.conf", dir);
	FILE *f = fopen(frag, "w");
	if (f) {
		fwrite(text, 1, len, f);
		fclose(f);
	}
	f = fopen(main_conf, "w");
	if (f) {
		fprintf(f, "log stderr all;\ninclude \"%s\";\n", frag);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "bird -p -c %s", main_conf);
	int rc = system(cmd);
	unlink(frag);
	unlink(main_conf);
	rmdir(dir);
	return rc == 0 ? 0 : -1;
}

static void check_case(const char *name, const struct agent_bird_in *in)
{
	char *text = NULL;
	size_t len = 0;
	struct err e = { 0 };
	T_EQ(agent_bird_conf(in, &text, &len, &e), 0);
	T_CHECK(text && strlen(text) == len);
	if (!text)
		return;
	golden(name, text, len);
	if (have_bird())
		T_EQ(bird_parse(text, len), 0);
	else
		printf("# SKIP bird -p: bird not installed\n");
	free(text);
}

static void test_dual_stack(void)
{
	struct conf c = conf_of("[network]\ncross_node=bgp\n[bgp]\n"
				"peers = 198.18.255.1 64512, 2001:db8:ff::1 65001\n");
	struct agent_block b[] = { blk("198.18.0.64/26"), blk("2001:db8:4b76::40/122"),
				   blk("198.18.0.0/26"), blk("198.18.0.64/26") };
	struct agent_bird_in in = { .c = &c, .blocks = b, .n_blocks = 4 };
	ip_parse("198.18.255.2", &in.router_id);
	check_case("dual-stack.conf", &in);
	/* order and duplicates of blocks do not matter */
	struct agent_block r[] = { b[2], b[1], b[0] };
	struct agent_bird_in in2 = in;
	in2.blocks = r;
	in2.n_blocks = 3;
	char *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;
	T_EQ(agent_bird_conf(&in, &t1, &l1, NULL), 0);
	T_EQ(agent_bird_conf(&in2, &t2, &l2, NULL), 0);
	T_CHECK(t1 && t2 && l1 == l2 && memcmp(t1, t2, l1) == 0);
	/* the trap: krt_metric is only ever compared (a migration route), never set */
	for (const char *p = t1; p && (p = strstr(p, "krt_metric")) != NULL; p++)
		T_CHECK(strncmp(p, "krt_metric = 512 then", 21) == 0);
	T_CHECK(t1 && strstr(t1, "metric 4096;") != NULL);
	free(t1);
	free(t2);
}

static void test_v4_no_blocks_no_gr(void)
{
	struct conf c = conf_of("[ipam]\nipv6_pools=\n[network]\ncross_node=bgp\n"
				"migration_metric=100\n[bgp]\nasn=65010\n"
				"peers = 198.18.255.1 65000, 198.18.255.9 65000\n"
				"graceful_restart=false\nlocal_pref=50\nmigration_local_pref=60\n"
				"kernel_metric=3000\n");
	struct agent_bird_in in = { .c = &c };
	ip_parse("198.18.255.3", &in.router_id);
	check_case("v4-no-blocks.conf", &in);
}

static void test_errors(void)
{
	struct conf c = conf_of("[network]\ncross_node=bgp\n[bgp]\npeers=198.18.255.1 1\n");
	struct agent_bird_in in = { .c = &c };
	char *t = (char *)1;
	size_t l = 1;
	struct err e = { 0 };
	T_EQ(agent_bird_conf(&in, &t, &l, &e), -EINVAL);
	T_CHECK(t == NULL && l == 0);
	T_CHECK(strstr(e.msg, "router id") != NULL);
	ip_parse("2001:db8::1", &in.router_id);
	T_EQ(agent_bird_conf(&in, &t, &l, &e), -EINVAL);
}

/* The fragment of a node in another mode: the device protocol only, the same header as
 * the full one (how the agent knows the file is its own), and BIRD takes it. */
static void test_none(void)
{
	const char *none = agent_bird_conf_none();
	T_CHECK(strncmp(none, AGENT_BIRD_HEADER, strlen(AGENT_BIRD_HEADER)) == 0);
	T_CHECK(strstr(none, "protocol device kvnet_device") != NULL);
	T_CHECK(strstr(none, "protocol kernel") == NULL && strstr(none, "protocol bgp") == NULL &&
		strstr(none, "protocol static") == NULL);
	struct conf c = conf_of("[network]\ncross_node=bgp\n[bgp]\npeers=198.18.255.1 1\n");
	struct agent_bird_in in = { .c = &c };
	ip_parse("198.18.255.2", &in.router_id);
	char *t = NULL;
	size_t l = 0;
	T_EQ(agent_bird_conf(&in, &t, &l, NULL), 0);
	T_CHECK(t && strncmp(t, AGENT_BIRD_HEADER, strlen(AGENT_BIRD_HEADER)) == 0);
	free(t);
	if (have_bird())
		T_EQ(bird_parse(none, strlen(none)), 0);
	else
		printf("# SKIP bird -p: bird not installed\n");
}

/* BIRD refuses a broken fragment, so the parse check above means something. */
static void test_bird_refuses(void)
{
	if (!have_bird()) {
		printf("ok - test_bird_refuses # SKIP bird not installed\n");
		return;
	}
	const char *bad = "router id 198.18.0.1;\nprotocol kernel x { ipv4 { import where; }; }\n";
	T_CHECK(bird_parse(bad, strlen(bad)) != 0);
}

int main(void)
{
	T_RUN(test_dual_stack);
	T_RUN(test_v4_no_blocks_no_gr);
	T_RUN(test_errors);
	T_RUN(test_none);
	T_RUN(test_bird_refuses);
	return t_done();
}
