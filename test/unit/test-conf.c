/* Unit tests for conf/: every value type, ranges, the parser's syntax and errors,
 * environment overrides, cross-key checks, printing and the round trip. */
#include "conf/conf.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct conf defaults(void)
{
	struct conf c;
	struct err e = { 0 };
	if (conf_defaults(&c, &e) < 0)
		t_note("defaults: %s", e.msg);
	return c;
}

/* conf_set on a fresh default conf; returns the result and leaves the message in e. */
static int set1(struct conf *c, const char *sec, const char *key, const char *v, struct err *e)
{
	*c = defaults();
	err_clear(e);
	return conf_set(c, sec, key, v, e);
}

static int parse(struct conf *c, const char *text, struct err *e)
{
	*c = defaults();
	err_clear(e);
	return conf_parse(c, "t.conf", text, strlen(text), e);
}

static void test_defaults(void)
{
	struct conf c;
	struct err e = { 0 };
	T_EQ(conf_defaults(&c, &e), 0);
	T_EQ(c.log.level, LOG_LVL_INFO);
	T_STREQ(c.log.file, "");
	T_EQ(c.datastore.type, CONF_DATASTORE_FILE);
	T_STREQ(c.datastore.state_dir, "/var/lib/kvnet/ipam");
	T_STREQ(c.kubernetes.kubeconfig, "");
	T_EQ(c.ipam.ipv4_pools.n, 1);
	T_EQ(c.ipam.ipv4_pools.v[0].family, AF_INET);
	T_EQ(c.ipam.ipv4_pools.v[0].prefix, 16);
	const uint8_t v4[4] = { 198, 18, 0, 0 };
	T_MEMEQ(c.ipam.ipv4_pools.v[0].addr, v4, 4);
	T_EQ(c.ipam.ipv6_pools.n, 1);
	T_EQ(c.ipam.ipv6_pools.v[0].prefix, 48);
	T_EQ(c.ipam.block_size_v4, 26);
	T_EQ(c.ipam.block_size_v6, 122);
	T_EQ(c.ipam.kubevirt_ip_persistence, CONF_ENABLED);
	T_EQ(c.ipam.vm_grace_seconds, 300);
	T_EQ(c.network.mtu, 1500);
	T_EQ(c.network.route_protocol, 75);
	T_EQ(c.network.route_metric, 1024);
	T_EQ(c.network.migration_metric, 512);
	T_EQ(c.migration.convergence_seconds, 30);
	T_CHECK(c.migration.announce_detection);
	T_EQ(c.cni.policy_setup_timeout_seconds, 0);
	T_EQ(c.cni.policy_timeout_action, CONF_TIMEOUT_FAIL);
	T_EQ(c.agent.listen.family, AF_INET);
	T_EQ(c.agent.listen.port, 9746);
	const uint8_t lo[4] = { 127, 0, 0, 1 };
	T_MEMEQ(c.agent.listen.addr, lo, 4);
	T_STREQ(c.agent.socket, "/run/kvnet/agent.sock");
	T_EQ(conf_check(&c, &e), 0);
}

static void test_bool(void)
{
	struct conf c;
	struct err e;
	const char *yes[] = { "true", "TRUE", "yes", "Yes", "on", "1" };
	const char *no[] = { "false", "False", "no", "NO", "off", "0" };
	for (size_t i = 0; i < 6; i++) {
		T_EQ(set1(&c, "migration", "announce_detection", no[i], &e), 0);
		T_CHECK(!c.migration.announce_detection);
		T_EQ(set1(&c, "migration", "announce_detection", yes[i], &e), 0);
		T_CHECK(c.migration.announce_detection);
	}
	const char *bad[] = { "", "2", "tru", "yess", "enabled", " true" };
	for (size_t i = 0; i < 6; i++) {
		T_EQ(set1(&c, "migration", "announce_detection", bad[i], &e), -EINVAL);
		T_CHECK(c.migration.announce_detection); /* unchanged */
	}
	T_EQ(set1(&c, "migration", "announce_detection", "maybe", &e), -EINVAL);
	T_STREQ(e.msg, "[migration] announce_detection: \"maybe\" is not a boolean (want "
		       "true/false, yes/no, on/off or 1/0)");
}

static void test_int_ranges(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "ipam", "block_size_v4", "20", &e), 0);
	T_EQ(c.ipam.block_size_v4, 20);
	T_EQ(set1(&c, "ipam", "block_size_v4", "30", &e), 0);
	T_EQ(c.ipam.block_size_v4, 30);
	T_EQ(set1(&c, "ipam", "block_size_v4", "030", &e), 0);
	T_EQ(c.ipam.block_size_v4, 30);
	T_EQ(set1(&c, "ipam", "block_size_v4", "19", &e), -ERANGE);
	T_EQ(c.ipam.block_size_v4, 26);
	T_EQ(set1(&c, "ipam", "block_size_v4", "33", &e), -ERANGE);
	T_STREQ(e.msg, "[ipam] block_size_v4: \"33\" is out of range (want 20..30)");
	T_EQ(set1(&c, "ipam", "block_size_v6", "115", &e), -ERANGE);
	T_EQ(set1(&c, "ipam", "block_size_v6", "126", &e), 0);
	T_EQ(set1(&c, "ipam", "block_size_v6", "127", &e), -ERANGE);
	T_EQ(set1(&c, "network", "mtu", "67", &e), -ERANGE);
	T_EQ(set1(&c, "network", "mtu", "68", &e), 0);
	T_EQ(set1(&c, "network", "mtu", "65535", &e), 0);
	T_EQ(set1(&c, "network", "mtu", "65536", &e), -ERANGE);
	T_EQ(set1(&c, "network", "route_protocol", "0", &e), -ERANGE);
	T_EQ(set1(&c, "network", "route_protocol", "255", &e), 0);
	T_EQ(set1(&c, "network", "route_protocol", "256", &e), -ERANGE);
	T_EQ(set1(&c, "network", "route_metric", "4294967295", &e), 0);
	T_EQ(c.network.route_metric, 4294967295u);
	T_EQ(set1(&c, "network", "route_metric", "4294967296", &e), -ERANGE);
	T_EQ(set1(&c, "network", "route_metric", "99999999999999999999999", &e), -ERANGE);
	const char *bad[] = { "", "-1", "+5", "1e3", "0x10", "15OO", "1 000", "26.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(set1(&c, "network", "mtu", bad[i], &e), -EINVAL);
	T_STREQ(e.msg, "[network] mtu: \"26.0\" is not an integer (want 68..65535)");
}

static void test_duration(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "0", &e), 0);
	T_EQ(c.ipam.vm_grace_seconds, 0);
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "45s", &e), 0);
	T_EQ(c.ipam.vm_grace_seconds, 45);
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "5m", &e), 0);
	T_EQ(c.ipam.vm_grace_seconds, 300);
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "2h", &e), 0);
	T_EQ(c.ipam.vm_grace_seconds, 7200);
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "168h", &e), 0);
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "169h", &e), -ERANGE);
	/* multiplication must not wrap into range */
	T_EQ(set1(&c, "ipam", "vm_grace_seconds", "4294967295h", &e), -ERANGE);
	T_EQ(set1(&c, "migration", "convergence_seconds", "0", &e), -ERANGE);
	T_STREQ(e.msg, "[migration] convergence_seconds: \"0\" is out of range (want "
		       "1..3600 seconds)");
	const char *bad[] = { "", "s", "5ms", "5 m", "1d", "-5", "5M" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		T_EQ(set1(&c, "ipam", "vm_grace_seconds", bad[i], &e), -EINVAL);
}

static void test_enum_and_loglevel(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "datastore", "type", "kubernetes", &e), 0);
	T_EQ(c.datastore.type, CONF_DATASTORE_KUBERNETES);
	T_EQ(set1(&c, "datastore", "type", "FILE", &e), 0);
	T_EQ(c.datastore.type, CONF_DATASTORE_FILE);
	T_EQ(set1(&c, "datastore", "type", "etcd", &e), -EINVAL);
	T_STREQ(e.msg, "[datastore] type: \"etcd\" is not valid (want file or kubernetes)");
	T_EQ(set1(&c, "ipam", "kubevirt_ip_persistence", "disabled", &e), 0);
	T_EQ(c.ipam.kubevirt_ip_persistence, CONF_DISABLED);
	T_EQ(set1(&c, "ipam", "kubevirt_ip_persistence", "off", &e), -EINVAL);
	T_EQ(set1(&c, "cni", "policy_timeout_action", "continue", &e), 0);
	T_EQ(c.cni.policy_timeout_action, CONF_TIMEOUT_CONTINUE);
	T_EQ(set1(&c, "log", "level", "warning", &e), 0);
	T_EQ(c.log.level, LOG_LVL_WARN);
	T_EQ(set1(&c, "log", "level", "DEBUG", &e), 0);
	T_EQ(c.log.level, LOG_LVL_DEBUG);
	T_EQ(set1(&c, "log", "level", "trace", &e), -EINVAL);
	T_EQ(c.log.level, LOG_LVL_INFO);
}

static void test_strings_and_paths(void)
{
	struct conf c;
	struct err e;
	char big[400];
	T_EQ(set1(&c, "log", "file", "", &e), 0);
	T_EQ(set1(&c, "log", "file", "/var/log/kvnet.log", &e), 0);
	T_STREQ(c.log.file, "/var/log/kvnet.log");
	T_EQ(set1(&c, "log", "file", "kvnet.log", &e), -EINVAL);
	T_STREQ(e.msg, "[log] file: \"kvnet.log\" is not an absolute path (want /...)");
	T_EQ(set1(&c, "datastore", "state_dir", "", &e), -EINVAL);
	T_STREQ(e.msg, "[datastore] state_dir: empty value (want an absolute path)");
	T_EQ(set1(&c, "kubernetes", "context", "admin@edge-7", &e), 0);
	T_STREQ(c.kubernetes.context, "admin@edge-7");
	T_EQ(set1(&c, "kubernetes", "context", "a;b", &e), -EINVAL);
	T_EQ(set1(&c, "kubernetes", "node_name", "a\tb", &e), -EINVAL);
	T_STREQ(e.msg, "[kubernetes] node_name: \"a\\x09b\" contains a control character");
	/* storage bound: CONF_STR_MAX - 1 bytes */
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[256] = '\0';
	T_EQ(set1(&c, "kubernetes", "kubeconfig", big, &e), -EINVAL);
	T_STREQ(c.kubernetes.kubeconfig, "");
	T_CHECK(strstr(e.msg, "is too long (256 bytes, want at most 255)") != NULL);
	/* line bound: "kubeconfig = VALUE" must fit in CONF_LINE_MAX bytes */
	big[CONF_LINE_MAX - 13] = '\0';
	T_EQ(set1(&c, "kubernetes", "kubeconfig", big, &e), 0);
	T_EQ(strlen(c.kubernetes.kubeconfig), CONF_LINE_MAX - 13);
	big[CONF_LINE_MAX - 13] = 'a';
	big[CONF_LINE_MAX - 12] = '\0';
	T_EQ(set1(&c, "kubernetes", "kubeconfig", big, &e), -EINVAL);
	T_STREQ(e.msg, "[kubernetes] kubeconfig: value too long (185 bytes once printed; the "
		       "line \"kubeconfig = ...\" must fit in 197 bytes)");
	T_STREQ(c.kubernetes.kubeconfig, "");
	memset(big + 1, 'a', 299);
	big[300] = '\0';
	T_EQ(set1(&c, "kubernetes", "kubeconfig", big, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "aaa...\"") != NULL); /* the value is cut in the message */
}

static void test_cidr_lists(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "ipam", "ipv4_pools", "198.18.0.0/24 , 198.19.0.0/16,198.18.64.0/18", &e),
	     0);
	T_EQ(c.ipam.ipv4_pools.n, 3);
	T_EQ(c.ipam.ipv4_pools.v[1].prefix, 16);
	T_EQ(c.ipam.ipv4_pools.v[1].addr[1], 19);
	T_EQ(c.ipam.ipv4_pools.v[2].addr[2], 64);
	T_EQ(set1(&c, "ipam", "ipv4_pools", "", &e), 0);
	T_EQ(c.ipam.ipv4_pools.n, 0);
	T_EQ(set1(&c, "ipam", "ipv4_pools", "0.0.0.0/0", &e), 0);
	T_EQ(set1(&c, "ipam", "ipv4_pools", "198.18.0.5/32", &e), 0);
	T_EQ(set1(&c, "ipam", "ipv6_pools", "2001:DB8:0::/32", &e), 0);
	T_EQ(c.ipam.ipv6_pools.v[0].family, AF_INET6);
	T_EQ(c.ipam.ipv6_pools.v[0].addr[1], 0x01);
	T_EQ(c.ipam.ipv6_pools.v[0].addr[2], 0x0d);
	T_EQ(set1(&c, "ipam", "ipv6_pools", "2001:db8::1/128", &e), 0);

	struct {
		const char *key, *v, *msg;
	} bad[] = {
		{ "ipv4_pools", "198.18.0.0", "\"198.18.0.0\" is not an IPv4 CIDR (want ADDRESS/PREFIX)" },
		{ "ipv4_pools", "198.18.0.0/33", "\"198.18.0.0/33\" is not an IPv4 CIDR (want a prefix length 0..32)" },
		{ "ipv4_pools", "198.18.0.0/", "\"198.18.0.0/\" is not an IPv4 CIDR (want a prefix length 0..32)" },
		{ "ipv4_pools", "198.18.0.0/-1", "\"198.18.0.0/-1\" is not an IPv4 CIDR (want a prefix length 0..32)" },
		{ "ipv4_pools", "198.18.0/16", "\"198.18.0/16\" is not an IPv4 CIDR (bad address)" },
		{ "ipv4_pools", "198.18.0.256/24", "\"198.18.0.256/24\" is not an IPv4 CIDR (bad address)" },
		{ "ipv4_pools", "198.18.1.0/16", "\"198.18.1.0/16\" has host bits set (want 198.18.0.0/16)" },
		{ "ipv4_pools", "2001:db8::/32", "\"2001:db8::/32\" is not an IPv4 CIDR (wrong address family)" },
		{ "ipv4_pools", "198.18.0.0/16,", "empty item in the list (want CIDR, CIDR, ...)" },
		{ "ipv4_pools", ",198.18.0.0/16", "empty item in the list (want CIDR, CIDR, ...)" },
		{ "ipv6_pools", "198.18.0.0/16", "\"198.18.0.0/16\" is not an IPv6 CIDR (wrong address family)" },
		{ "ipv6_pools", "2001:db8::/129", "\"2001:db8::/129\" is not an IPv6 CIDR (want a prefix length 0..128)" },
		{ "ipv6_pools", "2001:db8::1/64", "\"2001:db8::1/64\" has host bits set (want 2001:db8::/64)" },
		{ "ipv6_pools", "2001:db8:::/64", "\"2001:db8:::/64\" is not an IPv6 CIDR (bad address)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];
		T_EQ(set1(&c, "ipam", bad[i].key, bad[i].v, &e), -EINVAL);
		snprintf(want, sizeof(want), "[ipam] %s: %s", bad[i].key, bad[i].msg);
		T_STREQ(e.msg, want);
		T_EQ(c.ipam.ipv4_pools.n, 1); /* unchanged */
	}

	/* at most CONF_POOLS_MAX entries (only reachable with short items) */
	char list[1024];
	size_t o = 0;
	for (int i = 0; i < CONF_POOLS_MAX; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d.0.0.0/8", i ? "," : "",
				      i + 1);
	T_EQ(set1(&c, "ipam", "ipv4_pools", list, &e), 0);
	T_EQ(c.ipam.ipv4_pools.n, CONF_POOLS_MAX);
	snprintf(list + o, sizeof(list) - o, ",99.0.0.0/8");
	T_EQ(set1(&c, "ipam", "ipv4_pools", list, &e), -EINVAL);
	T_STREQ(e.msg, "[ipam] ipv4_pools: too many CIDRs (want at most 16)");
	/* the printed form (", " separators, canonical addresses) must fit on one line,
	 * even when the input did: "::ffff:0:0/128" prints as "::ffff:0.0.0.0/128" */
	o = 0;
	for (int i = 0; i < 10; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s::ffff:%x:0/128", i ? "," : "",
				      i);
	T_CHECK(13 + o <= CONF_LINE_MAX);
	T_EQ(set1(&c, "ipam", "ipv6_pools", list, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "value too long") != NULL);
	T_EQ(c.ipam.ipv6_pools.n, 1);
}

static void test_hostport(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "agent", "listen", "0.0.0.0:1", &e), 0);
	T_EQ(c.agent.listen.port, 1);
	T_EQ(set1(&c, "agent", "listen", "[2001:db8::5]:65535", &e), 0);
	T_EQ(c.agent.listen.family, AF_INET6);
	T_EQ(c.agent.listen.port, 65535);
	T_EQ(c.agent.listen.addr[15], 5);
	const char *bad[] = { "", "9746", ":9746", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x",
			      "localhost:80", "::1:80", "[::1]80", "[::1]:", "[198.18.0.1]:80",
			      "[::1:80", "127.0.0.1:0", "127.0.0.1:65536" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(set1(&c, "agent", "listen", bad[i], &e), -EINVAL);
		T_EQ(c.agent.listen.port, 9746);
	}
}

static void test_unknown_names(void)
{
	struct conf c;
	struct err e;
	T_EQ(set1(&c, "ospf", "peer", "x", &e), -EINVAL);
	T_CHECK(strncmp(e.msg, "[ospf]: unknown section (want one of log, ", 40) == 0);
	T_EQ(set1(&c, "ipam", "block_size", "24", &e), -EINVAL);
	T_CHECK(strncmp(e.msg, "[ipam] block_size: unknown key (want one of ipv4_pools, ", 55) ==
		0);
	/* names are exact: no case folding of keys */
	T_EQ(set1(&c, "ipam", "Block_Size_V4", "24", &e), -EINVAL);
}

static void test_parse_syntax(void)
{
	struct conf c;
	struct err e;
	T_EQ(parse(&c, "", &e), 0);
	T_CHECK(conf_equal(&c, &(struct conf){ 0 }) == false);
	struct conf d = defaults();
	T_CHECK(conf_equal(&c, &d));
	/* comments, blank lines, indentation, CRLF, ':' separator, inline " ;" comment,
	 * a repeated section header, no final newline */
	T_EQ(parse(&c,
		   "# comment\n; comment\n\n  [network] \r\n\tmtu=9000\r\n"
		   "    route_metric : 2000 ; inline\n[ipam]\n[network]\nroute_protocol = 9",
		   &e),
	     0);
	T_EQ(c.network.mtu, 9000);
	T_EQ(c.network.route_metric, 2000);
	T_EQ(c.network.route_protocol, 9);
	/* an indented line is never a continuation of the previous value */
	T_EQ(parse(&c, "[network]\nmtu = 1400\n   route_protocol = 12\n", &e), 0);
	T_EQ(c.network.mtu, 1400);
	T_EQ(c.network.route_protocol, 12);
	/* '#' after a value is part of it */
	T_EQ(parse(&c, "[network]\nmtu = 1400 # jumbo later\n", &e), -EINVAL);
	T_STREQ(e.msg, "t.conf:2: [network] mtu: \"1400 # jumbo later\" is not an integer "
		       "(want 68..65535)");
	/* a UTF-8 BOM at the very start is skipped */
	T_EQ(parse(&c, "\xef\xbb\xbf[network]\nmtu = 1280\n", &e), 0);
	T_EQ(c.network.mtu, 1280);
}

static void test_parse_errors(void)
{
	struct conf c;
	struct err e;
	struct {
		const char *text, *msg;
	} cases[] = {
		{ "[log]\nlevel = info\n\n[ipam]\nblock_size_v4 = 33\n",
		  "t.conf:5: [ipam] block_size_v4: \"33\" is out of range (want 20..30)" },
		{ "[ipam]\nblock_size_v4 = 24\nblock_size_v4 = 25\n",
		  "t.conf:3: [ipam] block_size_v4: duplicate key (first set on line 2)" },
		{ "[ipam]\nblock_size_v4 = 24\n[ipam]\nblock_size_v4 = 24\n",
		  "t.conf:4: [ipam] block_size_v4: duplicate key (first set on line 2)" },
		{ "mtu = 1500\n",
		  "t.conf:1: \"mtu\": key outside of any section (want [section] first)" },
		{ "[network]\nmtu\n",
		  "t.conf:2: syntax error (want [section], key = value or a # comment)" },
		{ "[network\nmtu = 1\n",
		  "t.conf:1: syntax error (want [section], key = value or a # comment)" },
		/* the first error wins, whichever kind it is */
		{ "[network]\nmtu = 1\nbad line\n",
		  "t.conf:2: [network] mtu: \"1\" is out of range (want 68..65535)" },
		{ "[network]\nbad line\nmtu = 1\n",
		  "t.conf:2: syntax error (want [section], key = value or a # comment)" },
		{ "[empty]\n[network]\nmtu = 1\n",
		  "t.conf:1: [empty]: unknown section (want one of log, datastore, kubernetes, "
		  "ipam, network, migration, cni, agent, flows, bgp)" },
		{ "[ Network ]\nmtu = 1500\n",
		  "t.conf:1: [Network]: unknown section (want one of log, datastore, kubernetes, "
		  "ipam, network, migration, cni, agent, flows, bgp)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		T_CHECK(parse(&c, cases[i].text, &e) < 0);
		T_STREQ(e.msg, cases[i].msg);
	}
	/* all or nothing: a value before the error is not applied */
	T_CHECK(parse(&c, "[network]\nmtu = 9000\nroute_protocol = 0\n", &e) < 0);
	T_EQ(c.network.mtu, 1500);

	/* NUL bytes, over-long lines */
	const char nul[] = "[network]\nmtu = 9\0\n";
	c = defaults();
	T_EQ(conf_parse(&c, "t.conf", nul, sizeof(nul) - 1, &e), -EINVAL);
	T_STREQ(e.msg, "t.conf:2: NUL byte in line");
	char line[512];
	snprintf(line, sizeof(line), "[log]\nfile = /%0*d\n", CONF_LINE_MAX - 8, 0);
	T_EQ(parse(&c, line, &e), 0); /* exactly CONF_LINE_MAX bytes */
	snprintf(line, sizeof(line), "[log]\nfile = /%0*d\n", CONF_LINE_MAX - 7, 0);
	T_EQ(parse(&c, line, &e), -EINVAL);
	T_STREQ(e.msg, "t.conf:2: line too long (198 bytes, want at most 197)");
	/* the text need not be NUL-terminated: only len bytes are read */
	const char *t = "[network]\nmtu = 1400XXXX";
	c = defaults();
	T_EQ(conf_parse(&c, "t.conf", t, strlen(t) - 4, &e), 0);
	T_EQ(c.network.mtu, 1400);
}

static void test_env(void)
{
	struct conf c = defaults();
	struct err e = { 0 };
	char *env[] = { "PATH=/bin", "KVNET_IPAM_BLOCK_SIZE_V4=24", "KVNET_LOG_LEVEL= debug ",
			"KVNET_AGENT_LISTEN=[::1]:80", "KVNET_IPAM_IPV6_POOLS=", "KVNET", "kvnet_x=1",
			NULL };
	T_EQ(conf_apply_env(&c, env, &e), 0);
	T_EQ(c.ipam.block_size_v4, 24);
	T_EQ(c.log.level, LOG_LVL_DEBUG);
	T_EQ(c.agent.listen.family, AF_INET6);
	T_EQ(c.ipam.ipv6_pools.n, 0);
	T_EQ(conf_apply_env(&c, NULL, &e), 0);

	/* env overrides the file */
	c = defaults();
	const char *f28 = "[ipam]\nblock_size_v4 = 28\n";
	T_EQ(conf_parse(&c, "t.conf", f28, strlen(f28), &e), 0);
	char *env2[] = { "KVNET_IPAM_BLOCK_SIZE_V4=22", NULL };
	T_EQ(conf_apply_env(&c, env2, &e), 0);
	T_EQ(c.ipam.block_size_v4, 22);

	struct {
		const char *var, *msg;
	} bad[] = {
		{ "KVNET_IPAM_BLOCK_SIZE_V4=33", "environment KVNET_IPAM_BLOCK_SIZE_V4: [ipam] "
						 "block_size_v4: \"33\" is out of range (want 20..30)" },
		{ "KVNET_IPAM_BLOCKSIZE=24", "environment \"KVNET_IPAM_BLOCKSIZE\": names no "
					     "configuration key (want KVNET_<SECTION>_<KEY>, e.g. "
					     "KVNET_IPAM_BLOCK_SIZE_V4)" },
		{ "KVNET_ipam_block_size_v4=24", NULL },
		{ "KVNET_=1", NULL },
		{ "KVNET_BGP_PEER=198.18.0.1", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *one[] = { "KVNET_NETWORK_MTU=9000", (char *)bad[i].var, NULL };
		c = defaults();
		T_CHECK(conf_apply_env(&c, one, &e) < 0);
		if (bad[i].msg)
			T_STREQ(e.msg, bad[i].msg);
		T_EQ(c.network.mtu, 1500); /* all or nothing */
	}
	char *twice[] = { "KVNET_NETWORK_MTU=9000", "KVNET_NETWORK_MTU=1400", NULL };
	c = defaults();
	T_EQ(conf_apply_env(&c, twice, &e), -EINVAL);
	T_STREQ(e.msg, "environment KVNET_NETWORK_MTU: set twice");
}

static void test_check(void)
{
	struct conf c;
	struct err e;
	T_EQ(parse(&c, "[ipam]\nipv4_pools=\nipv6_pools=\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_EQ(parse(&c, "[ipam]\nipv4_pools=\n", &e), 0);
	T_EQ(conf_check(&c, &e), 0);
	T_EQ(parse(&c, "[ipam]\nipv4_pools=198.18.0.0/26\n", &e), 0);
	T_EQ(conf_check(&c, &e), 0);
	T_EQ(parse(&c, "[ipam]\nipv4_pools=198.18.0.0/27\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_STREQ(e.msg, "[ipam] ipv4_pools: 198.18.0.0/27 is smaller than one block "
		       "(block_size_v4 = 26)");
	T_EQ(parse(&c, "[ipam]\nipv6_pools=2001:db8::/123\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_EQ(parse(&c, "[ipam]\nipv4_pools=198.18.0.0/24, 198.18.1.0/24, 198.18.0.128/25\n", &e),
	     0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_STREQ(e.msg, "[ipam] ipv4_pools: 198.18.0.128/25 overlaps 198.18.0.0/24");
	T_EQ(parse(&c, "[ipam]\nipv4_pools=198.18.0.0/24, 198.18.1.0/24\n", &e), 0);
	T_EQ(conf_check(&c, &e), 0);
	T_EQ(parse(&c, "[network]\nmigration_metric = 1024\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_EQ(parse(&c, "[network]\nmigration_metric = 1023\n", &e), 0);
	T_EQ(conf_check(&c, &e), 0);
}

static void test_bgp(void)
{
	struct conf c;
	struct err e;
	char buf[8192];
	T_EQ(parse(&c, "", &e), 0);
	T_EQ(c.bgp.asn, 64512);
	T_CHECK(!c.bgp.router_id.set);
	T_EQ(c.bgp.peers.n, 0);
	T_STREQ(c.bgp.config, "/etc/bird/kvnet.conf");
	T_STREQ(c.bgp.socket, "/run/bird/bird.ctl");
	T_EQ(c.bgp.kernel_metric, 4096);
	T_CHECK(c.bgp.graceful_restart);
	T_EQ(parse(&c, "[network]\ncross_node=bgp\n[bgp]\nrouter_id = 198.18.0.9\n"
		       "peers = 198.18.255.1 64512 , 2001:db8::1\t65001\n", &e), 0);
	T_EQ(c.network.cross_node, CONF_CROSS_BGP);
	T_CHECK(c.bgp.router_id.set);
	T_EQ(c.bgp.router_id.addr[3], 9);
	T_EQ(c.bgp.peers.n, 2);
	T_EQ(c.bgp.peers.v[0].family, AF_INET);
	T_EQ(c.bgp.peers.v[0].asn, 64512);
	T_EQ(c.bgp.peers.v[1].family, AF_INET6);
	T_EQ(c.bgp.peers.v[1].asn, 65001);
	T_EQ(conf_check(&c, &e), 0);
	conf_format(&c, 0, buf, sizeof(buf));
	T_CHECK(strstr(buf, "peers = 198.18.255.1 64512, 2001:db8::1 65001\n") != NULL);
	T_CHECK(strstr(buf, "router_id = 198.18.0.9\n") != NULL);
	/* bad values */
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.255.1\n", &e), -EINVAL);
	T_STREQ(e.msg, "t.conf:2: [bgp] peers: \"198.18.255.1\" is not a peer (want ADDRESS ASN)");
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.255.1 0\n", &e), -EINVAL);
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.255.1 4294967296\n", &e), -EINVAL);
	T_EQ(parse(&c, "[bgp]\npeers = x.y 1\n", &e), -EINVAL);
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.255.1 1,\n", &e), -EINVAL);
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.255.1 1, 198.18.255.1 2\n", &e), -EINVAL);
	T_STREQ(e.msg, "t.conf:2: [bgp] peers: peer 198.18.255.1 2 given twice");
	T_EQ(parse(&c, "[bgp]\npeers = 198.18.0.1 1,198.18.0.2 1,198.18.0.3 1,198.18.0.4 1,"
		       "198.18.0.5 1,198.18.0.6 1,198.18.0.7 1,198.18.0.8 1,198.18.0.9 1\n", &e),
	     -EINVAL);
	T_EQ(parse(&c, "[bgp]\nrouter_id = 2001:db8::1\n", &e), -EINVAL);
	T_EQ(parse(&c, "[bgp]\nasn = 0\n", &e), -ERANGE);
	/* cross-key checks only with cross_node = bgp */
	T_EQ(parse(&c, "[bgp]\nmigration_local_pref = 100\n", &e), 0);
	T_EQ(conf_check(&c, &e), 0);
	T_EQ(parse(&c, "[network]\ncross_node=bgp\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_EQ(parse(&c, "[network]\ncross_node=bgp\n[bgp]\npeers=198.18.255.1 1\n"
		       "migration_local_pref = 100\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	T_STREQ(e.msg, "[bgp] migration_local_pref: 100 is not above local_pref 100 (the "
		       "migrated /32 must win)");
	T_EQ(parse(&c, "[network]\ncross_node=bgp\n[bgp]\npeers=198.18.255.1 1\n"
		       "kernel_metric = 1024\n", &e), 0);
	T_EQ(conf_check(&c, &e), -EINVAL);
	/* equality sees the new types */
	struct conf a, b;
	T_EQ(parse(&a, "[bgp]\npeers=198.18.255.1 1\nrouter_id=198.18.0.1\n", &e), 0);
	T_EQ(parse(&b, "[bgp]\npeers=198.18.255.1 2\nrouter_id=198.18.0.1\n", &e), 0);
	T_CHECK(!conf_equal(&a, &b));
	T_EQ(parse(&b, "[bgp]\npeers=198.18.255.1 1\nrouter_id=198.18.0.1\n", &e), 0);
	T_CHECK(conf_equal(&a, &b));
	T_EQ(parse(&b, "[bgp]\npeers=198.18.255.1 1\n", &e), 0);
	T_CHECK(!conf_equal(&a, &b));
}

static void test_format_round_trip(void)
{
	struct conf c, back;
	struct err e;
	const char *text =
		"[log]\nlevel=debug\nfile=/l\n[datastore]\ntype=kubernetes\n"
		"[kubernetes]\ncontext=x@y\nnode_name=n1\n"
		"[ipam]\nipv4_pools=198.18.0.0/24,198.19.0.0/16\nipv6_pools=2001:db8:0::/64\n"
		"block_size_v6=126\nkubevirt_ip_persistence=disabled\nvm_grace_seconds=1h\n"
		"[network]\nroute_metric=7\nmigration_metric=6\n[migration]\nannounce_detection=no\n"
		"[cni]\npolicy_timeout_action=continue\n[agent]\nlisten=[2001:db8::9]:1\n";
	T_EQ(parse(&c, text, &e), 0);
	for (unsigned flags = 0; flags <= CONF_FMT_DOC; flags += CONF_FMT_DOC) {
		size_t need = conf_format(&c, flags, NULL, 0);
		char *buf = malloc(need + 1);
		T_EQ(conf_format(&c, flags, buf, need + 1), need);
		T_EQ(strlen(buf), need);
		T_CHECK(strstr(buf, "ipv6_pools = 2001:db8::/64\n") != NULL);
		T_CHECK(strstr(buf, "vm_grace_seconds = 3600\n") != NULL);
		T_CHECK(strstr(buf, "listen = [2001:db8::9]:1\n") != NULL);
		T_CHECK(strstr(buf, "announce_detection = false\n") != NULL);
		T_CHECK(strstr(buf, "\nkubeconfig =\n") != NULL);
		T_EQ(parse(&back, buf, &e), 0);
		T_CHECK(conf_equal(&c, &back));
		/* truncation: a short buffer is still terminated, and the length is the same */
		char small[10];
		T_EQ(conf_format(&c, flags, small, sizeof(small)), need);
		T_EQ(strlen(small), 9);
		T_CHECK(memcmp(small, buf, 9) == 0);
		free(buf);
	}
	/* conf_equal notices a difference in every kind of field */
	struct conf d = defaults();
	T_CHECK(!conf_equal(&c, &d));
	back = d;
	T_EQ(conf_set(&back, "ipam", "ipv6_pools", "2001:db8:4b76::/48, 2001:db8:1::/48", &e), 0);
	T_CHECK(!conf_equal(&back, &d));
	back = d;
	T_EQ(conf_set(&back, "agent", "listen", "127.0.0.1:9747", &e), 0);
	T_CHECK(!conf_equal(&back, &d));
}

static void test_given(void)
{
	struct conf c;
	struct err e = { 0 };
	T_CHECK(conf_defaults(&c, &e) == 0);
	T_CHECK(!conf_given(&c, "datastore", "state_dir"));
	const char *text = "[datastore]\nstate_dir = /srv/x\n";
	T_CHECK(conf_parse(&c, "t", text, strlen(text), &e) == 0);
	T_CHECK(conf_given(&c, "datastore", "state_dir"));
	T_CHECK(!conf_given(&c, "datastore", "type"));
	char *envp[] = { "KVNET_AGENT_SOCKET=/run/x.sock", NULL };
	T_CHECK(conf_apply_env(&c, envp, &e) == 0);
	T_CHECK(conf_given(&c, "agent", "socket"));
	T_CHECK(!conf_given(&c, "nosuch", "socket"));
	T_CHECK(!conf_given(&c, "agent", "nosuch"));
	struct conf d;
	T_CHECK(conf_defaults(&d, &e) == 0);
	T_CHECK(conf_set(&d, "datastore", "state_dir", "/srv/x", &e) == 0);
	T_CHECK(conf_set(&d, "agent", "socket", "/run/x.sock", &e) == 0);
	T_CHECK(conf_equal(&c, &d));
}

static void test_node_and_ident(void)
{
	struct conf c;
	struct err e = { 0 };
	T_CHECK(conf_defaults(&c, &e) == 0);
	char n[64], h[256] = "";
	conf_node_name(&c, "from-env", n, sizeof(n));
	T_STREQ(n, "from-env");
	conf_node_name(&c, "", n, sizeof(n));
	if (gethostname(h, sizeof(h) - 1) < 0 || !h[0])
		snprintf(h, sizeof(h), "localhost");
	T_STREQ(n, h);
	conf_node_name(&c, NULL, n, sizeof(n));
	T_STREQ(n, h);
	T_CHECK(conf_set(&c, "kubernetes", "node_name", "node-a", &e) == 0);
	conf_node_name(&c, "from-env", n, sizeof(n));
	T_STREQ(n, "node-a");
	char small[4];
	conf_node_name(&c, NULL, small, sizeof(small));
	T_STREQ(small, "nod");

	char id[300];
	T_CHECK(conf_set(&c, "datastore", "state_dir", "/var/lib/x", &e) == 0);
	T_EQ(conf_datastore_ident(&c, "https://ignored", id, sizeof(id)), strlen("file:/var/lib/x"));
	T_STREQ(id, "file:/var/lib/x");
	T_CHECK(conf_set(&c, "datastore", "type", "kubernetes", &e) == 0);
	conf_datastore_ident(&c, "https://[2001:db8::1]:6443", id, sizeof(id));
	T_STREQ(id, "kubernetes:https://[2001:db8::1]:6443");
	conf_datastore_ident(&c, NULL, id, sizeof(id));
	T_STREQ(id, "kubernetes:");
}

static void test_load(void)
{
	struct conf c;
	struct err e = { 0 };
	char path[] = "/tmp/kvt-conf-XXXXXX";
	int fd = mkstemp(path);
	T_CHECK(fd >= 0);
	const char *text = "[network]\nmtu = 1400\n";
	T_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
	char *env[] = { "KVNET_NETWORK_ROUTE_PROTOCOL=99", NULL };
	T_EQ(conf_load(&c, path, false, env, &e), 0);
	T_EQ(c.network.mtu, 1400);
	T_EQ(c.network.route_protocol, 99);
	unlink(path);
	T_EQ(conf_load(&c, path, false, NULL, &e), -ENOENT);
	char want[128];
	snprintf(want, sizeof(want), "%s: open: No such file or directory", path);
	T_STREQ(e.msg, want);
	T_EQ(conf_load(&c, path, true, env, &e), 0);
	T_EQ(c.network.mtu, 1500);
	T_EQ(c.network.route_protocol, 99);
	/* a configuration that fails a cross-key check names the file */
	char *env2[] = { "KVNET_IPAM_IPV4_POOLS=", "KVNET_IPAM_IPV6_POOLS=", NULL };
	T_EQ(conf_load(&c, path, true, env2, &e), -EINVAL);
	T_CHECK(strncmp(e.msg, path, strlen(path)) == 0);
}

/* conf_cross_node_name gives back the value that selects the mode (the reload log). */
static void test_cross_node_name(void)
{
	static const char *const names[] = { "none", "direct", "bgp", "vxlan" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct conf c;
		struct err e = { 0 };
		char text[64];
		snprintf(text, sizeof(text), "[network]\ncross_node=%s\n", names[i]);
		T_EQ(parse(&c, text, &e), 0);
		T_STREQ(conf_cross_node_name(c.network.cross_node), names[i]);
	}
}

int main(void)
{
	T_RUN(test_defaults);
	T_RUN(test_bool);
	T_RUN(test_int_ranges);
	T_RUN(test_duration);
	T_RUN(test_enum_and_loglevel);
	T_RUN(test_strings_and_paths);
	T_RUN(test_cidr_lists);
	T_RUN(test_hostport);
	T_RUN(test_unknown_names);
	T_RUN(test_parse_syntax);
	T_RUN(test_parse_errors);
	T_RUN(test_env);
	T_RUN(test_check);
	T_RUN(test_bgp);
	T_RUN(test_format_round_trip);
	T_RUN(test_load);
	T_RUN(test_node_and_ident);
	T_RUN(test_given);
	T_RUN(test_cross_node_name);
	return t_done();
}
