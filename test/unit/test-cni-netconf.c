/* Unit tests for cni/netconf (the CNI input parser) and cni/nodeconf (how a conflist
 * meets kvnet.conf). Pure: no namespace, no file. */
#include "cni/mode.h"
#include "cni/netconf.h"
#include "cni/nodeconf.h"
#include "conf/conf.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdlib.h>
#include <string.h>

/* Parse text as a full configuration into r (initialised here). */
static int parse(struct cni_req *r, const char *text, struct cni_fail *f)
{
	cni_req_init(r);
	r->log.fd = -1;
	r->text = strdup(text);
	r->len = strlen(text);
	memset(f, 0, sizeof(*f));
	return cni_conf_parse(r, true, f);
}

#define BASE "\"cniVersion\":\"1.1.0\",\"name\":\"net\",\"type\":\"kvnet\",\"ipv4_pools\":[\"198.18.0.0/24\"]"

static void test_minimal(void)
{
	struct cni_req r;
	struct cni_fail f;
	T_EQ(parse(&r, "{" BASE "}", &f), 0);
	T_STREQ(r.name, "net");
	T_CHECK(r.mode == &cni_mode_routed);
	T_EQ(r.n_pools, 1);
	T_STREQ(r.state_dir, CNI_DEFAULT_STATE);
	T_STREQ(r.agent_socket, CNI_DEFAULT_SOCKET);
	T_EQ(r.given, 0);
	T_EQ(r.vidx, 4);
	cni_req_fini(&r);
}

static void test_errors(void)
{
	static const struct {
		const char *text; /* the configuration */
		int code;	  /* expected CNI code */
		const char *det;  /* a substring of the details */
	} cases[] = {
		{ "{", CNI_E_DECODE, "stdin" },
		{ "[]", CNI_E_DECODE, "not a JSON object" },
		{ "{\"cniVersion\":\"9.9.9\"}", CNI_E_VERSION, "9.9.9" },
		{ "{" BASE ",\"bogus\":1,\"other\":2}", CNI_E_CONFIG, "bogus, other" },
		{ "{" BASE ",\"mode\":\"bridge-x\"}", CNI_E_CONFIG, "want routed" },
		{ "{" BASE ",\"state_dir\":\"rel\"}", CNI_E_CONFIG, "absolute" },
		{ "{" BASE ",\"kvnet_conf\":\"rel.conf\"}", CNI_E_CONFIG, "kvnet_conf" },
		{ "{" BASE ",\"mtu\":67}", CNI_E_CONFIG, "below 68" },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\"}", CNI_E_CONFIG, "no pools" },
		{ "{" BASE ",\"datastore\":\"etcd\"}", CNI_E_CONFIG, "neither file nor kubernetes" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cni_req r;
		struct cni_fail f;
		T_EQ(parse(&r, cases[i].text, &f), -1);
		T_EQ(f.code, cases[i].code);
		if (!strstr(f.det, cases[i].det))
			T_STREQ(f.det, cases[i].det);
		cni_req_fini(&r);
	}
}

static void test_args(void)
{
	struct cni_req r;
	struct cni_fail f;
	T_EQ(parse(&r, "{" BASE "}", &f), 0);
	T_EQ(cni_args_parse(&r, "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=4f1c2a3b-1111-4222-8333-444455556666", &f), 0);
	T_STREQ(r.pod_ns, "ns");
	T_STREQ(r.pod_name, "p");
	T_EQ(cni_args_parse(&r, "FOO=1", &f), -1);
	T_EQ(f.code, CNI_E_ENV);
	T_EQ(cni_args_parse(&r, "FOO=1;IgnoreUnknown=1", &f), 0);
	T_EQ(cni_args_parse(&r, "novalue", &f), -1);
	cni_req_fini(&r);
}

#define L2BASE "\"cniVersion\":\"1.1.0\",\"name\":\"nad\",\"type\":\"kvnet\""

/* "network": mode l2 implied, no pools needed; runtimeConfig.mac and CNI_ARGS MAC. */
static void test_l2(void)
{
	struct cni_req r;
	struct cni_fail f;
	T_EQ(parse(&r, "{" L2BASE ",\"network\":\"vlan100\",\"runtimeConfig\":"
		       "{\"mac\":\"02:00:C6:12:64:0A\"}}", &f), 0);
	T_CHECK(r.mode == &cni_mode_l2);
	T_STREQ(r.network, "vlan100");
	T_EQ(r.n_pools, 0);
	T_CHECK(r.has_mac && r.mac[0] == 0x02 && r.mac[5] == 0x0a);
	T_EQ(cni_args_parse(&r, "MAC=02:00:c6:12:64:0a", &f), 0); /* the same: fine */
	T_EQ(cni_args_parse(&r, "MAC=02:00:c6:12:64:0b", &f), -1);
	T_EQ(f.code, CNI_E_ENV);
	T_CHECK(strstr(f.det, "runtimeConfig.mac") != NULL);
	cni_req_fini(&r);
	T_EQ(parse(&r, "{" L2BASE ",\"network\":\"vlan100\",\"mode\":\"l2\"}", &f), 0);
	T_EQ(cni_args_parse(&r, "MAC=01:00:5e:00:00:01", &f), -1); /* multicast */
	T_EQ(f.code, CNI_E_ENV);
	cni_req_fini(&r);
	static const struct {
		const char *text; /* the configuration */
		const char *det;  /* a substring of the details (code 7) */
	} bad[] = {
		{ "{" L2BASE ",\"mode\":\"l2\"}", "mode l2 needs \"network\"" },
		{ "{" L2BASE ",\"network\":\"vlan100\",\"mode\":\"routed\"}", "not routed" },
		{ "{" L2BASE ",\"network\":\"Vlan_1\"}", "DNS-1123 label" },
		{ "{" L2BASE ",\"network\":\"v\",\"ipv4_pools\":[\"198.18.0.0/24\"]}",
		  "drop ipv4_pools" },
		{ "{" L2BASE ",\"network\":\"v\",\"runtimeConfig\":{\"mac\":\"zz\"}}",
		  "runtimeConfig.mac" },
		{ "{" L2BASE ",\"network\":\"v\",\"runtimeConfig\":{\"mac\":7}}",
		  "runtimeConfig.mac" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(parse(&r, bad[i].text, &f), -1);
		T_EQ(f.code, CNI_E_CONFIG);
		if (!strstr(f.det, bad[i].det))
			T_STREQ(f.det, bad[i].det);
		cni_req_fini(&r);
	}
}

/* A conf with the given INI text over the defaults. */
static void load(struct conf *c, const char *text)
{
	struct err e = { 0 };
	T_CHECK(conf_defaults(c, &e) == 0);
	T_CHECK(conf_parse(c, "kvnet.conf", text, strlen(text), &e) == 0);
}

static void test_node_precedence(void)
{
	struct cni_req r;
	struct cni_fail f;
	struct conf cf;
	/* nothing anywhere: defaults */
	load(&cf, "");
	T_EQ(parse(&r, "{" BASE "}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/k", "env-node", &f), 0);
	T_STREQ(r.node, "env-node");
	T_STREQ(r.state_dir, "/var/lib/kvnet/ipam");
	T_EQ(r.mtu, 0);
	cni_req_fini(&r);
	/* the conflist's old key applies when kvnet.conf does not set it */
	T_EQ(parse(&r, "{" BASE ",\"state_dir\":\"/a\",\"datastore\":\"kubernetes\"}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/k", NULL, &f), 0);
	T_STREQ(r.state_dir, "/a");
	T_CHECK(r.kube);
	cni_req_fini(&r);
	/* kvnet.conf wins where it speaks; same value in both is fine */
	load(&cf, "[datastore]\nstate_dir = /b\n[kubernetes]\nnode_name = n1\ncontext = c\n"
		  "[network]\nmtu = 1400\n[cni]\npolicy_setup_timeout_seconds = 7\n");
	T_EQ(parse(&r, "{" BASE ",\"state_dir\":\"/b\",\"log_level\":\"debug\"}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/k", "env-node", &f), 0);
	T_STREQ(r.state_dir, "/b");
	T_STREQ(r.node, "n1");
	T_STREQ(r.kube_context, "c");
	T_EQ(r.mtu, 1400);
	T_EQ(r.policy_timeout, 7);
	T_EQ(r.log.level, LOG_LVL_DEBUG);
	cni_req_fini(&r);
	/* the conflist's mtu is a network key: it beats kvnet.conf's */
	T_EQ(parse(&r, "{" BASE ",\"mtu\":9000}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/k", NULL, &f), 0);
	T_EQ(r.mtu, 9000);
	cni_req_fini(&r);
	/* a disagreement names both places */
	T_EQ(parse(&r, "{" BASE ",\"state_dir\":\"/a\"}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/etc/kvnet/kvnet.conf", NULL, &f), -1);
	T_EQ(f.code, CNI_E_CONFIG);
	T_CHECK(strstr(f.det, "'/a'") && strstr(f.det, "[datastore] state_dir = '/b'") &&
		strstr(f.det, "/etc/kvnet/kvnet.conf"));
	cni_req_fini(&r);
	T_EQ(parse(&r, "{" BASE ",\"policy_setup_timeout_seconds\":8}", &f), 0);
	T_EQ(cni_node_apply(&r, &cf, "/k", NULL, &f), -1);
	T_CHECK(strstr(f.det, "[cni] policy_setup_timeout_seconds = '7'") != NULL);
	cni_req_fini(&r);
}

int main(void)
{
	T_RUN(test_minimal);
	T_RUN(test_errors);
	T_RUN(test_args);
	T_RUN(test_l2);
	T_RUN(test_node_precedence);
	return t_done();
}
