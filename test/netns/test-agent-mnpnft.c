/* netns test of MultiNetworkPolicy on L2 bridge ports (agent/mnpnft.h over policy/ and
 * net/nft.h) against the real kernel: a node namespace with two bridges (kvl-a: VLAN a,
 * kvl-b: VLAN b), VM stand-ins server, client, other on kvl-a and x on kvl-b, each
 * attached through a veth whose host side is a bridge port named as cni/l2.c names it.
 * A MultiNetworkPolicy for vms/l2a allows only TCP 443 from client into server. The
 * table is compiled and committed by kvnet; it is checked with `nft -j list ruleset`
 * (test/lib/nftj.py: exactly the designed table) and with real TCP connections (ncat)
 * against the expected matrix; then a restart (adopted: nothing written), a policy change,
 * and fail closed for a port without rules. */
#include "agent/mnpnft.h"
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"
#include "net/nl.h"
#include "policy/policy.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *NODE, *VM[5];   /* node, and server, client, other, x, late */
static const char *const NAMES[5] = { "server", "client", "other", "x", "late" };
static const char *const PORTS[5] = { "kv00000000a01", "kv00000000a02", "kv00000000a03",
				       "kv00000000b04", "kv00000000a05" };
static struct nl_sock *S;	   /* NETLINK_NETFILTER socket in NODE */
static int SERVERS;		   /* process group of the ncat servers */

static void stop_servers(void)
{
	if (SERVERS > 0)
		kill(-SERVERS, SIGTERM);
	SERVERS = 0;
}

static char *nftj(const char *py)
{
	int st = -1;
	char *out = tns_sh(&st, NODE, "nft -j list ruleset | python3 test/lib/nftj.py '%s'", py);
	if (st != 0) {
		t_note("nftj %s: status %d", py, st);
		free(out);
		return NULL;
	}
	size_t l = strlen(out);
	while (l && out[l - 1] == '\n')
		out[--l] = 0;
	return out;
}

static bool nftj_is(const char *py, const char *want)
{
	char *got = nftj(py);
	bool ok = got && strcmp(got, want) == 0;
	if (!ok)
		t_note("%s:\n#   got  %s\n#   want %s", py, got ? got : "(failed)", want);
	free(got);
	return ok;
}

/* A TCP connection from VM i to VM j's address on port answers "ok". */
static bool tcp_ok(int i, int j, int port)
{
	int st = -1;
	char *out = tns_sh(&st, VM[i], "ncat --recv-only -w 1 198.18.10.%d %d </dev/null 2>/dev/null",
			   j + 1, port);
	bool ok = st == 0 && out && strncmp(out, "ok", 2) == 0;
	free(out);
	return ok;
}

static int setup(void)
{
	int st = -1;
	if (!(NODE = tns_new("node")))
		return -1;
	free(tns_sh(&st, NODE, "ip link add kvl-a type bridge && ip link set kvl-a up && "
			       "ip link add kvl-b type bridge && ip link set kvl-b up"));
	if (st != 0)
		return -1;
	for (int i = 0; i < 5; i++) {
		char n[16];
		snprintf(n, sizeof(n), "vm%d", i);
		if (!(VM[i] = tns_new(n)))
			return -1;
		free(tns_sh(&st, NODE,
			    "ip link add %s type veth peer name net1 netns %s && "
			    "ip link set %s master %s && ip link set %s up && "
			    "ip -n %s addr add 198.18.10.%d/24 dev net1 && ip -n %s link set net1 up",
			    PORTS[i], VM[i], PORTS[i], i == 3 ? "kvl-b" : "kvl-a", PORTS[i], VM[i],
			    i + 1, VM[i]));
		if (st != 0)
			return -1;
	}
	/* every VM serves 80 and 443 */
	char *out = tns_sh(&st, NODE, "setsid sh -c 'for v in %s %s %s %s %s; do for p in 80 443; do "
				      "ip netns exec $v timeout --foreground 300 ncat -lk $p --sh-exec "
				      "\"echo ok\" & done; done; wait' >/dev/null 2>&1 & echo $!",
			   VM[0], VM[1], VM[2], VM[3], VM[4]);
	SERVERS = out ? atoi(out) : 0;
	free(out);
	atexit(stop_servers);
	for (int i = 0; i < 5; i++) {
		free(tns_sh(&st, VM[i], "for i in $(seq 100); do [ $(ss -Htln | grep -c ':\\(80\\|443\\) ') "
					 "-ge 2 ] && exit 0; sleep 0.05; done; exit 1"));
		if (st != 0) {
			t_note("setup: servers in %s did not start", VM[i]);
			return -1;
		}
	}
	struct err e = { 0 };
	if (nl_open_in_netns(&S, NETLINK_NETFILTER, tns_path(NODE), &e) < 0) {
		t_note("%s", e.msg);
		return -1;
	}
	if (!tcp_ok(2, 0, 80) || !tcp_ok(0, 1, 443)) {
		t_note("setup: no connection across the bridge without rules");
		return -1;
	}
	return 0;
}

/* The world: the five pods with their network-status (x on vms/l2b), and the policy
 * allowing client → server TCP 443 (and 80 too when wide). */
static struct pol_world *world(bool wide)
{
	struct pol_world *w = pol_world_new();
	char buf[2048];
	struct err e = { 0 };
	for (int i = 0; i < 5; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"vms\","
			 "\"labels\":{\"app\":\"%s\"},\"annotations\":{\"k8s.v1.cni.cncf.io/"
			 "network-status\":\"[{\\\"name\\\":\\\"vms/%s\\\",\\\"interface\\\":"
			 "\\\"net1\\\",\\\"ips\\\":[\\\"198.18.10.%d\\\"]}]\"}}}",
			 NAMES[i], NAMES[i], i == 3 ? "l2b" : "l2a", i + 1);
		T_EQ(pol_world_add_json(w, buf, strlen(buf), NULL, &e), 0);
	}
	snprintf(buf, sizeof(buf),
		 "{\"kind\":\"MultiNetworkPolicy\",\"metadata\":{\"name\":\"https\",\"namespace\":"
		 "\"vms\",\"annotations\":{\"k8s.v1.cni.cncf.io/policy-for\":\"l2a\"}},\"spec\":"
		 "{\"podSelector\":{\"matchLabels\":{\"app\":\"server\"}},\"ingress\":[{\"from\":"
		 "[{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}}}],\"ports\":[{\"port\":443}"
		 "%s]}]}}",
		 wide ? ",{\"port\":80}" : "");
	T_EQ(pol_world_add_json(w, buf, strlen(buf), NULL, &e), 0);
	return w;
}

/* Compile both networks for the first n_eps VMs (late, the fifth, is left out when 4)
 * and build the table. */
static int design(bool wide, unsigned n_eps, struct mnft_table *t)
{
	struct pol_world *w = world(wide);
	struct pol_world *a = pol_world_net(w, "vms/l2a"), *b = pol_world_net(w, "vms/l2b");
	struct pol_ep_in in_a[4], in_b[1];
	unsigned na = 0;
	for (unsigned i = 0; i < n_eps; i++)
		if (i != 3)
			in_a[na++] = (struct pol_ep_in){ "vms", NAMES[i], PORTS[i] };
	in_b[0] = (struct pol_ep_in){ "vms", NAMES[3], PORTS[3] };
	struct pol_ruleset rs[2];
	struct err e = { 0 };
	int rc = pol_compile(a, in_a, na, &rs[0], &e);
	if (rc == 0 && (rc = pol_compile(b, in_b, 1, &rs[1], &e)) < 0)
		pol_ruleset_free(&rs[0]);
	if (rc == 0) {
		rc = mnft_build(rs, 2, t, &e);
		pol_ruleset_free(&rs[0]);
		pol_ruleset_free(&rs[1]);
	}
	if (rc < 0)
		t_note("design: %s", e.msg);
	pol_world_free(a);
	pol_world_free(b);
	pol_world_free(w);
	return rc;
}

/* Load the kernel's table; commit t unless it is already there. *wrote says which. */
static int sync_table(const struct mnft_table *t, bool *wrote)
{
	struct nft_state st;
	struct nft_batch b;
	struct err e = { 0 };
	int rc;
	*wrote = false;
	nft_state_init(&st, MNFT_TABLE);
	nft_state_family(&st, NFPROTO_BRIDGE);
	if ((rc = nft_state_load(S, &st, &e)) < 0) {
		t_note("load: %s", e.msg);
		nft_state_free(&st);
		return rc;
	}
	if (mnft_matches(t, &st)) {
		nft_state_free(&st);
		return 0;
	}
	nft_batch_init(&b, MNFT_TABLE, &e);
	nft_batch_family(&b, NFPROTO_BRIDGE);
	rc = mnft_batch(t, st.exists, &b);
	if (rc == 0)
		rc = nft_commit(S, &b, st.genid, &e);
	if (rc < 0)
		t_note("commit: %s", e.msg);
	*wrote = rc == 0;
	nft_batch_free(&b);
	nft_state_free(&st);
	return rc;
}

/* The matrix: wide or not; late (VM 4) programmed or not. */
static bool matrix(bool wide, bool late_in)
{
	struct {
		int from, to, port;
		bool want;
	} cells[] = {
		{ 1, 0, 443, true },	/* client → server https: the rule */
		{ 1, 0, 80, wide },	/* client → server http: only when wide */
		{ 2, 0, 443, false },	/* other → server: not the peer */
		{ 2, 0, 80, false },
		{ 0, 1, 80, true },	/* server's own connections (answers: not opening) */
		{ 0, 2, 443, true },
		{ 2, 1, 80, true },	/* other ↔ client: no policy selects either */
		{ 1, 2, 443, true },
		{ 0, 3, 443, false },	/* VLAN b: no L2 path, policy or not */
		{ 1, 3, 80, false },
		{ 2, 4, 80, late_in },	/* late: fail closed until programmed */
	};
	bool ok = true;
	for (size_t i = 0; i < sizeof(cells) / sizeof(cells[0]); i++) {
		bool got = tcp_ok(cells[i].from, cells[i].to, cells[i].port);
		if (got != cells[i].want) {
			t_note("%s -> %s:%d: got %s, want %s", NAMES[cells[i].from], NAMES[cells[i].to],
			       cells[i].port, got ? "open" : "closed", cells[i].want ? "open" : "closed");
			ok = false;
		}
	}
	return ok;
}

/* The kernel's table is exactly t: one table, its chains, map elements, rule comments. */
static bool table_is(const struct mnft_table *t)
{
	char want[8192];
	size_t o = 0;
	bool ok = nftj_is("tables()", "['bridge kvnet-l2']");
	o += (size_t)snprintf(want + o, sizeof(want) - o, "[");
	for (unsigned i = 0; i < t->n_chains; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s'%s'", i ? ", " : "",
				      t->chains[i].name);
	snprintf(want + o, sizeof(want) - o, "]");
	ok &= nftj_is("[c[\"name\"] for c in chains(\"kvnet-l2\")]", want);
	for (unsigned i = 0; i < t->n_chains; i++) {
		char py[128];
		o = 0;
		o += (size_t)snprintf(want + o, sizeof(want) - o, "[");
		for (unsigned j = 0; j < t->chains[i].n; j++)
			o += (size_t)snprintf(want + o, sizeof(want) - o, "%s'%s'", j ? ", " : "",
					      t->chains[i].rules[j].id);
		snprintf(want + o, sizeof(want) - o, "]");
		snprintf(py, sizeof(py), "comments(\"kvnet-l2\", \"%s\")", t->chains[i].name);
		ok &= nftj_is(py, want);
	}
	for (int m = 0; m < 2; m++) {
		char py[128];
		o = 0;
		o += (size_t)snprintf(want + o, sizeof(want) - o, "[");
		for (unsigned j = 0; j < t->n_map[m]; j++)
			o += (size_t)snprintf(want + o, sizeof(want) - o, "%s'%s:goto %s'", j ? ", " : "",
					      t->map[m][j].ifname, t->map[m][j].chain);
		snprintf(want + o, sizeof(want) - o, "]");
		snprintf(py, sizeof(py), "elems(\"kvnet-l2\", \"%s\")", m ? "in" : "eg");
		ok &= nftj_is(py, want);
	}
	return ok;
}

static void test_enforce(void)
{
	struct mnft_table t;
	bool wrote;
	T_EQ(design(false, 4, &t), 0);
	T_EQ(sync_table(&t, &wrote), 0);
	T_CHECK(wrote);
	T_CHECK(table_is(&t));
	/* the server's ingress chain: arp, three ND types, the rule, the answers, deny */
	const struct mnft_chain *c = mnft_chain_find(&t, "i_kv00000000a01");
	T_CHECK(c && c->n == 7);
	T_CHECK(nftj_is("elems(\"kvnet-l2\", sets(\"kvnet-l2\")[0][\"name\"])", "['198.18.10.2']"));
	T_CHECK(matrix(false, false));
	int st = -1;
	char *out = tns_sh(&st, NODE, "nft list chain bridge kvnet-l2 i_kv00000000a01");
	for (char *l = out ? strtok(out, "\n") : NULL; l; l = strtok(NULL, "\n"))
		printf("#   %s\n", l);
	free(out);
	mnft_table_free(&t);
}

/* A restarted agent builds the same table and finds it in the kernel: nothing written
 * (the kernel's generation is unchanged), the matrix the same. */
static void test_adopt(void)
{
	struct mnft_table t;
	uint32_t g0 = 0, g1 = 0;
	bool wrote = true;
	T_EQ(nft_genid(S, &g0, NULL), 0);
	T_EQ(design(false, 4, &t), 0);
	T_EQ(sync_table(&t, &wrote), 0);
	T_CHECK(!wrote);
	T_EQ(nft_genid(S, &g1, NULL), 0);
	T_EQ(g0, g1);
	T_CHECK(matrix(false, false));
	mnft_table_free(&t);
}

/* The policy widens to 80 and the late VM is programmed: one transaction, the matrix
 * follows. */
static void test_change(void)
{
	struct mnft_table t;
	bool wrote;
	T_EQ(design(true, 5, &t), 0);
	T_EQ(sync_table(&t, &wrote), 0);
	T_CHECK(wrote);
	T_CHECK(table_is(&t));
	T_CHECK(matrix(true, true));
	mnft_table_free(&t);
}

/* ARP of the server's own address answers (the neighbour entry resolves) even while
 * its ingress is isolated; and the kernel refuses `ct state` in a bridge table here
 * (why the design is stateless). */
static void test_arp_and_why(void)
{
	int st = -1;
	char *out = tns_sh(&st, VM[2], "ip neigh flush dev net1; ping -c 1 -W 1 198.18.10.1 "
					"2>&1; ip -j neigh show 198.18.10.1 dev net1 | python3 -c "
					"'import json,sys; d=json.load(sys.stdin); print(d); "
					"sys.exit(0 if d and \"lladdr\" in d[0] else 1)'");
	if (st != 0)
		t_note("neighbour of 198.18.10.1 from other: %s", out ? out : "");
	free(out);
	T_EQ(st, 0);
	free(tns_sh(&st, NODE, "printf 'table bridge kvt-ctprobe { chain f { type filter hook "
				"forward priority 0; ct state established accept; }; }' | nft -f - "
				">/dev/null 2>&1"));
	if (st == 0) {
		free(tns_sh(&st, NODE, "nft delete table bridge kvt-ctprobe"));
		t_note("this kernel has bridge conntrack: the design stays stateless anyway");
	}
	T_CHECK(true);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("# SKIP not root\n");
		return 0;
	}
	if (setup() < 0) {
		printf("not ok - setup\n");
		return 1;
	}
	T_RUN(test_enforce);
	T_RUN(test_adopt);
	T_RUN(test_arp_and_why);
	T_RUN(test_change);
	nl_close(S);
	stop_servers();
	return t_done();
}
