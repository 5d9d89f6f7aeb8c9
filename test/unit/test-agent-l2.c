/* Unit tests for agent/l2's pure parts: the plan (which trunk a node uses for each
 * L2Network, sorted, one VLAN twice on one trunk reported as a clash) and the status
 * patch (this node's entry of status.nodes added, replaced, removed or left alone, always
 * behind a test of the resourceVersion). */
#include "agent/l2.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <string.h>

static void def(struct l2_netdef *d, const char *json)
{
	struct err e = { 0 };
	int rc = l2_netdef_parse_text(json, strlen(json), d, &e);
	if (rc < 0)
		fprintf(stderr, "# %s\n", e.msg);
	T_EQ(rc, 0);
}

#define NET(name, vlan, trunk)                                                              \
	"{\"metadata\":{\"name\":\"" name "\"},\"spec\":{\"vlan\":" #vlan ",\"trunk\":{"      \
	"\"interface\":\"" trunk "\",\"nodes\":[{\"matchLabels\":{\"hw\":\"gen2\"},"          \
	"\"interface\":\"ens5\"}]}}}"

static void test_plan(void)
{
	static struct l2_netdef d[4];
	static struct agent_l2_state out[4];
	def(&d[0], NET("vlan200", 200, "eno2"));
	def(&d[1], NET("vlan100", 100, "eno2"));
	def(&d[2], NET("vlan100-dup", 100, "eno2"));
	def(&d[3], "{\"metadata\":{\"name\":\"edge3-only\"},\"spec\":{\"vlan\":300,\"trunk\":"
		   "{\"nodes\":[{\"name\":\"edge-3\",\"interface\":\"enp3s0\"}]}}}");
	struct l2_node n = { .name = "edge-1" };
	T_EQ(agent_l2_plan(d, 4, &n, out, 4), 4);
	T_STREQ(out[0].name, "edge3-only");
	T_STREQ(out[0].trunk, ""); /* not on edge-1 */
	T_STREQ(out[1].name, "vlan100");
	T_STREQ(out[1].trunk, "eno2");
	T_CHECK(!out[1].clash);
	T_STREQ(out[2].name, "vlan100-dup");
	T_CHECK(out[2].clash);
	T_STREQ(out[2].message, "VLAN 100 on trunk eno2 is taken by L2Network vlan100");
	T_STREQ(out[3].name, "vlan200");
	T_EQ(out[3].net.vid, 200);
	T_STREQ(out[3].net.id, d[0].id);
	/* labels pick the override; a cap shorter than the list */
	static const struct l2_label gen2[1] = { { "hw", "gen2" } };
	struct l2_node g = { .name = "edge-2", .labels = gen2, .n_labels = 1 };
	T_EQ(agent_l2_plan(d, 4, &g, out, 2), 2);
	T_STREQ(out[0].trunk, "ens5");
	T_STREQ(out[1].trunk, "ens5");
}

/* The patch for obj (JSON text) or "" when none: rc into *rc. */
static const char *patch(const char *obj, const struct agent_l2_state *st, int *rc)
{
	static char buf[4096];
	static struct json_tok tok[256];
	struct json_doc d;
	struct json_w w;
	buf[0] = 0;
	T_EQ(json_parse(&d, obj, strlen(obj), tok, 256, 0, NULL), 0);
	json_w_init(&w, buf, sizeof(buf));
	*rc = agent_l2_status_patch(&d, 0, "node-a", st, &w);
	if (*rc != 1)
		buf[0] = 0;
	return buf;
}

#define OBJ(status) "{\"metadata\":{\"name\":\"v\",\"resourceVersion\":\"42\"}" status "}"
#define TEST_RV "{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"42\"}"
#define MINE "{\"node\":\"node-a\",\"trunk\":\"eno2\",\"trunkFound\":true,"                    \
	     "\"bridgeReady\":true,\"ports\":2}"
#define OTHER "{\"node\":\"node-b\",\"trunk\":\"eno2\",\"trunkFound\":false," \
	      "\"bridgeReady\":false,\"ports\":0,\"message\":\"trunk eno2 not found\"}"

static void test_status_patch(void)
{
	struct agent_l2_state st = { .trunk = "eno2", .trunk_found = true,
				     .bridge_ready = true, .ports = 2 };
	int rc;
	T_STREQ(patch(OBJ(""), &st, &rc),
		"[" TEST_RV ",{\"op\":\"add\",\"path\":\"/status\",\"value\":{\"nodes\":[" MINE
		"]}}]");
	T_EQ(rc, 1);
	T_STREQ(patch(OBJ(",\"status\":{}"), &st, &rc),
		"[" TEST_RV ",{\"op\":\"add\",\"path\":\"/status/nodes\",\"value\":[" MINE "]}]");
	T_STREQ(patch(OBJ(",\"status\":{\"nodes\":[" OTHER "]}"), &st, &rc),
		"[" TEST_RV ",{\"op\":\"add\",\"path\":\"/status/nodes/-\",\"value\":" MINE "}]");
	/* the same already: nothing */
	T_STREQ(patch(OBJ(",\"status\":{\"nodes\":[" OTHER "," MINE "]}"), &st, &rc), "");
	T_EQ(rc, 0);
	/* one field differs: that entry replaced */
	st.ports = 3;
	T_STREQ(patch(OBJ(",\"status\":{\"nodes\":[" OTHER "," MINE "]}"), &st, &rc),
		"[" TEST_RV ",{\"op\":\"replace\",\"path\":\"/status/nodes/1\",\"value\":"
		"{\"node\":\"node-a\",\"trunk\":\"eno2\",\"trunkFound\":true,"
		"\"bridgeReady\":true,\"ports\":3}}]");
	/* a message appears */
	st.ports = 2;
	st.bridge_ready = false;
	snprintf(st.message, sizeof(st.message), "l2: trunk eno2: program: x");
	T_CHECK(strstr(patch(OBJ(",\"status\":{\"nodes\":[" MINE "]}"), &st, &rc),
		       "\"message\":\"l2: trunk eno2: program: x\"") != NULL);
	/* no entry wanted */
	T_STREQ(patch(OBJ(",\"status\":{\"nodes\":[" OTHER "," MINE "]}"), NULL, &rc),
		"[" TEST_RV ",{\"op\":\"remove\",\"path\":\"/status/nodes/1\"}]");
	T_STREQ(patch(OBJ(",\"status\":{\"nodes\":[" OTHER "]}"), NULL, &rc), "");
	T_EQ(rc, 0);
	T_STREQ(patch(OBJ(""), NULL, &rc), "");
	/* garbage in the object */
	patch("{\"metadata\":{\"name\":\"v\"}}", &st, &rc);
	T_EQ(rc, -22);
	patch(OBJ(",\"status\":{\"nodes\":7}"), &st, &rc);
	T_EQ(rc, -22);
}

/* The L2 ports follow the VM pod's machine: open once the VM is routed on the target (at
 * the claim, announced once more when the owner CAS confirms it), also when the VMIM succeeded
 * first; closed on a refused claim, on the source, on a failed target. */
static void test_port_step(void)
{
	T_EQ(agent_l2_port_step(MIG_BASE, MIG_TARGET), -1);
	T_EQ(agent_l2_port_step(MIG_TARGET, MIG_CLAIMING), 1);
	T_EQ(agent_l2_port_step(MIG_CLAIMING, MIG_LIVE), 2); /* announced once more */
	T_EQ(agent_l2_port_step(MIG_CLAIMING, MIG_TIMEWAIT), 0);
	T_EQ(agent_l2_port_step(MIG_LIVE, MIG_TIMEWAIT), 0);
	T_EQ(agent_l2_port_step(MIG_TIMEWAIT, MIG_BASE), 0);
	T_EQ(agent_l2_port_step(MIG_TARGET, MIG_LIVE), 1);
	T_EQ(agent_l2_port_step(MIG_TARGET, MIG_TIMEWAIT), 1);
	T_EQ(agent_l2_port_step(MIG_CLAIMING, MIG_TARGET), -1);
	T_EQ(agent_l2_port_step(MIG_TARGET, MIG_RETIRED), -1);
	T_EQ(agent_l2_port_step(MIG_LIVE, MIG_SOURCE), -1);
	T_EQ(agent_l2_port_step(MIG_BASE, MIG_SOURCE), -1);
	T_EQ(agent_l2_port_step(MIG_SOURCE, MIG_BASE), 1);
	T_EQ(agent_l2_port_step(MIG_SOURCE, MIG_RETIRED), -1);
	T_EQ(agent_l2_port_step(MIG_LIVE, MIG_LIVE), 0);
}

int main(void)
{
	T_RUN(test_plan);
	T_RUN(test_port_step);
	T_RUN(test_status_patch);
	return t_done();
}
