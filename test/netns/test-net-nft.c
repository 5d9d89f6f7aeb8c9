/* netns tests for net/nft against the real kernel: three namespaces (a client, a
 * forwarding firewall, a server); kvnet builds a table in the firewall's namespace over
 * its own netlink; every result is checked with `nft -j list ruleset` parsed by python3
 * (test/lib/nftj.py) and with real traffic (ncat, ping) through the firewall. */
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <netinet/in.h> /* before the linux headers, which then skip their copies */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *FW, *A, *B; /* namespaces: firewall, client, server */
static struct nl_sock *S;      /* NETLINK_NETFILTER socket in FW */
static int SERVER_PID;	       /* the ncat servers' process group in B */

#define T "kvnet"

/* nft -j list ruleset in FW, python expression over it (test/lib/nftj.py) */
static char *nftj(const char *py)
{
	int st = -1;
	char *out = tns_sh(&st, FW, "nft -j list ruleset | python3 test/lib/nftj.py '%s'", py);
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

/* A TCP connection from src to 198.18.2.2:port through the firewall answers "ok". */
static bool tcp_ok(const char *src, int port)
{
	int st = -1;
	char *out = tns_sh(&st, A, "ncat --recv-only -w 1 -s %s 198.18.2.2 %d </dev/null 2>/dev/null", src,
			   port);
	bool ok = st == 0 && out && strncmp(out, "ok", 2) == 0;
	free(out);
	return ok;
}

static bool ping_ok(const char *src)
{
	int st = -1;
	free(tns_sh(&st, A, "ping -c 1 -W 1 -I %s 198.18.2.2 >/dev/null 2>&1", src));
	return st == 0;
}

static bool ping_from_b(void)
{
	int st = -1;
	free(tns_sh(&st, B, "ping -c 1 -W 1 198.18.1.2 >/dev/null 2>&1"));
	return st == 0;
}

static void stop_servers(void)
{
	if (SERVER_PID > 0)
		kill(-SERVER_PID, SIGTERM);
	SERVER_PID = 0;
}

static const struct nft_set_spec PEERS = {.name = "peers", .key = NFT_KEY_IPV4, .interval = true};
static const struct nft_set_spec PEERS6 = {.name = "peers6", .key = NFT_KEY_IPV6, .interval = true};
static const struct nft_set_spec PORTS = {.name = "ports", .key = NFT_KEY_SERVICE, .interval = true};
static const struct nft_set_spec EPMAP = {.name = "epmap", .key = NFT_KEY_IFNAME, .vmap = true};

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	T_CHECK(ip_parse(s, &a));
	return a;
}

/* The table the tests start from: a forward base chain with ct state rules and a vmap
 * on oifname to the server side's endpoint chain, an interval set with a hole (ipBlock
 * 198.18.1.0/24 except 198.18.1.192/26), and a rule per expression kind. */
static int build_table(struct nft_batch *b)
{
	struct nft_chain_spec fwd = {"fwd", NFT_HOOK_FORWARD, 0, false};
	struct nft_chain_spec epb = {"ep-b-in", NFT_HOOK_NONE, 0, false};
	struct nft_elem el[3];
	struct ip_addr lo = ip("198.18.1.0"), hi = ip("198.18.1.191");
	struct ip_addr lo6 = ip("2001:db8:1::"), hi6 = ip("2001:db8:1::7fff");
	struct ip_addr net = ip("198.18.1.0"), dst = ip("198.18.2.2");

	nft_table(b, NFT_TABLE_ADD);
	nft_chain_add(b, &fwd);
	nft_chain_add(b, &epb);
	nft_set_add(b, &PEERS);
	nft_elem_addr(&el[0], &lo, &hi);
	nft_elems(b, &PEERS, false, el, 1);
	nft_set_add(b, &PEERS6);
	nft_elem_addr(&el[0], &lo6, &hi6);
	nft_elems(b, &PEERS6, false, el, 1);
	nft_set_add(b, &PORTS);
	nft_elem_port(&el[0], 5353, 5353);
	nft_elem_port(&el[1], 6000, 6010);
	nft_elems(b, &PORTS, false, el, 2);
	nft_set_add(b, &EPMAP);
	nft_elem_ifname(&el[0], "fb", NFT_V_JUMP, "ep-b-in");
	nft_elems(b, &EPMAP, false, el, 1);

	nft_rule_begin(b, NFT_RULE_APPEND, "fwd", 0, "ct-est");
	nft_match_ct_state(b, NFT_CTS_ESTABLISHED | NFT_CTS_RELATED);
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "fwd", 0, "ct-inv");
	nft_match_ct_state(b, NFT_CTS_INVALID);
	nft_counter(b);
	nft_verdict(b, NFT_V_DROP, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "fwd", 0, "dispatch");
	nft_vmap(b, NFT_OIFNAME, "epmap");
	nft_rule_end(b);

	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "tcp-8080");
	nft_match_addr_set(b, NFT_SRC, AF_INET, "peers", false);
	nft_match_l4proto(b, IPPROTO_TCP);
	nft_match_port(b, NFT_DST, 8080, 8080);
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "tcp-range");
	nft_match_addr_set(b, NFT_SRC, AF_INET, "peers", false);
	nft_match_l4proto(b, IPPROTO_TCP);
	nft_match_port(b, NFT_DST, 9000, 9010);
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "udp-set");
	nft_match_addr_set(b, NFT_SRC, AF_INET, "peers", false);
	nft_match_l4proto(b, IPPROTO_UDP);
	nft_match_port_set(b, NFT_DST, "ports");
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "icmp");
	nft_match_l4proto(b, IPPROTO_ICMP);
	nft_match_addr(b, NFT_SRC, &net, 25, false);
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "v6");
	nft_match_addr_set(b, NFT_SRC, AF_INET6, "peers6", false);
	nft_match_l4proto(b, IPPROTO_ICMPV6);
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "iif-log");
	nft_match_ifname(b, NFT_IIFNAME, "fa");
	nft_match_nfproto(b, NFPROTO_IPV4);
	nft_match_addr(b, NFT_DST, &dst, 32, false);
	nft_match_l4proto(b, IPPROTO_TCP);
	nft_match_port(b, NFT_DST, 7001, 7001);
	nft_log(b, "kvnet-deny ", -1);
	nft_counter(b);
	nft_verdict(b, NFT_V_DROP, NULL);
	nft_rule_end(b);
	nft_rule_begin(b, NFT_RULE_APPEND, "ep-b-in", 0, "default");
	nft_counter(b);
	nft_verdict(b, NFT_V_DROP, NULL);
	return nft_rule_end(b);
}

static void test_build_and_list(void)
{
	struct nft_batch b;
	struct err e = {0};
	T_EQ(nft_batch_init(&b, T, &e), 0);
	T_EQ(build_table(&b), 0);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	nft_batch_free(&b);

	/* the ruleset is exactly this table */
	T_CHECK(nftj_is("tables()", "['inet kvnet']"));
	T_CHECK(nftj_is("sorted(c[\"name\"] for c in chains(\"kvnet\"))", "['ep-b-in', 'fwd']"));
	T_CHECK(nftj_is("[(c.get(\"type\"), c.get(\"hook\"), c.get(\"prio\"), c.get(\"policy\")) "
			"for c in [chain(\"kvnet\", \"fwd\")]]",
			"[('filter', 'forward', 0, 'accept')]"));
	T_CHECK(nftj_is("\"hook\" in chain(\"kvnet\", \"ep-b-in\")", "False"));
	T_CHECK(nftj_is("sorted((s[\"name\"], s[\"type\"], s.get(\"flags\")) for s in "
			"sets(\"kvnet\"))",
			"[('epmap', 'ifname', None), ('peers', 'ipv4_addr', ['interval']), "
			"('peers6', 'ipv6_addr', ['interval']), ('ports', 'inet_service', "
			"['interval'])]"));
	T_CHECK(nftj_is("elems(\"kvnet\", \"peers\")", "['198.18.1.0-198.18.1.191']"));
	T_CHECK(nftj_is("elems(\"kvnet\", \"peers6\")", "['2001:db8:1::-2001:db8:1::7fff']"));
	T_CHECK(nftj_is("elems(\"kvnet\", \"ports\")", "['5353', '6000-6010']"));
	T_CHECK(nftj_is("elems(\"kvnet\", \"epmap\")", "['fb:jump ep-b-in']"));
	T_CHECK(nftj_is("comments(\"kvnet\", \"fwd\")", "['ct-est', 'ct-inv', 'dispatch']"));
	T_CHECK(nftj_is("comments(\"kvnet\", \"ep-b-in\")",
			"['tcp-8080', 'tcp-range', 'udp-set', 'icmp', 'v6', 'iif-log', "
			"'default']"));
	/* nft decodes our expressions back into the statements we meant */
	T_CHECK(nftj_is("rules(\"kvnet\", \"fwd\")[0][\"expr\"][0]",
			"{'match': {'op': 'in', 'left': {'ct': {'key': 'state'}}, 'right': "
			"['established', 'related']}}"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"fwd\")[1][\"expr\"][0][\"match\"][\"right\"]",
			"invalid"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"fwd\")[2][\"expr\"]",
			"[{'vmap': {'key': {'meta': {'key': 'oifname'}}, 'data': '@epmap'}}]"));
	/* (nft folds the l4proto match into "tcp dport") */
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[0][\"expr\"][:2]",
			"[{'match': {'op': '==', 'left': {'payload': {'protocol': 'ip', 'field': "
			"'saddr'}}, 'right': '@peers'}}, {'match': {'op': '==', 'left': {'payload': "
			"{'protocol': 'tcp', 'field': 'dport'}}, 'right': 8080}}]"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[1][\"expr\"][1][\"match\"][\"right\"]",
			"{'range': [9000, 9010]}"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[2][\"expr\"][1][\"match\"]",
			"{'op': '==', 'left': {'payload': {'protocol': 'udp', 'field': 'dport'}}, "
			"'right': '@ports'}"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[3][\"expr\"][1][\"match\"][\"right\"]",
			"{'prefix': {'addr': '198.18.1.0', 'len': 25}}"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[4][\"expr\"][0][\"match\"][\"left\"]",
			"{'payload': {'protocol': 'ip6', 'field': 'saddr'}}"));
	T_CHECK(nftj_is("stmts(\"kvnet\", \"ep-b-in\", \"iif-log\")",
			"['match', 'match', 'match', 'log', 'counter', 'drop']"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[5][\"expr\"][0][\"match\"]",
			"{'op': '==', 'left': {'meta': {'key': 'iifname'}}, 'right': 'fa'}"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[5][\"expr\"][3]",
			"{'log': {'prefix': 'kvnet-deny '}}"));
	T_CHECK(nftj_is("stmts(\"kvnet\", \"ep-b-in\", \"default\")", "['counter', 'drop']"));
}

static void test_traffic(void)
{
	/* allowed port, allowed range, denied port, ipBlock except hole, icmp prefix */
	T_CHECK(tcp_ok("198.18.1.2", 8080));
	T_CHECK(tcp_ok("198.18.1.2", 9005));
	T_CHECK(!tcp_ok("198.18.1.2", 7000));
	T_CHECK(!tcp_ok("198.18.1.200", 8080)); /* in 198.18.1.192/26: the except hole */
	T_CHECK(!tcp_ok("198.18.1.2", 7001));	/* the logged drop */
	T_CHECK(ping_ok("198.18.1.2"));
	T_CHECK(!ping_ok("198.18.1.150")); /* in the set but outside the icmp /25 */
	/* counters moved where the packets went (nft's view) */
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"tcp-8080\")[0] >= 1", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"tcp-range\")[0] >= 1", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"icmp\")[0] >= 1", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"iif-log\")[0] >= 1", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"default\")[0] >= 3", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"fwd\", \"ct-est\")[0] >= 4", "True"));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"udp-set\")", "(0, 0)"));
}

/* the read side sees what nft sees: chains, sets with elements, rules with ids, handles
 * and counters */
static void test_read_state(void)
{
	struct nft_state st;
	struct err e = {0};
	char py[256];
	T_EQ(nft_state_init(&st, T), 0);
	T_EQ(nft_state_load(S, &st, &e), 0);
	T_CHECK(st.exists);
	T_EQ(st.nchains, 2);
	T_EQ(st.nsets, 4);
	T_EQ(st.nrules, 10);
	const struct nft_chain_info *c = nft_state_chain(&st, "fwd");
	T_CHECK(c && c->base && c->hook == NFT_HOOK_FORWARD && c->priority == 0 && !c->drop &&
		strcmp(c->type, "filter") == 0);
	c = nft_state_chain(&st, "ep-b-in");
	T_CHECK(c && !c->base && c->use >= 1); /* the vmap element jumps to it */
	const struct nft_set_info *s = nft_state_set(&st, "peers");
	T_CHECK(s && (s->flags & NFT_SET_INTERVAL) && s->key_len == 4 && s->key_type == 7);
	if (s) {
		/* the kernel's interval encoding: start element, end element at hi + 1 */
		unsigned starts = 0, ends = 0;
		for (size_t i = 0; i < s->nelems; i++) {
			const uint8_t *k = s->elems[i].key;
			if (s->elems[i].end && k[0] == 198 && k[1] == 18 && k[2] == 1 && k[3] == 192)
				ends++;
			if (!s->elems[i].end && k[0] == 198 && k[1] == 18 && k[2] == 1 && k[3] == 0)
				starts++;
		}
		T_EQ(starts, 1);
		T_EQ(ends, 1);
	}
	s = nft_state_set(&st, "epmap");
	T_CHECK(s && (s->flags & NFT_SET_MAP) && s->nelems == 1 && s->elems[0].has_verdict &&
		s->elems[0].verdict == NFT_JUMP && strcmp(s->elems[0].chain, "ep-b-in") == 0 &&
		strcmp((const char *)s->elems[0].key, "fb") == 0);
	const struct nft_rule_info *r = nft_state_rule(&st, "tcp-8080");
	T_CHECK(r && strcmp(r->chain, "ep-b-in") == 0 && r->has_counter && r->packets >= 1);
	if (r) {
		T_STREQ(r->exprs, "meta,cmp,payload,lookup,meta,cmp,payload,cmp,counter,immediate");
		snprintf(py, sizeof(py), "[r[\"handle\"] for r in rules(\"kvnet\", \"ep-b-in\") if "
					 "r.get(\"comment\") == \"tcp-8080\"]");
		char want[64];
		snprintf(want, sizeof(want), "[%llu]", (unsigned long long)r->handle);
		T_CHECK(nftj_is(py, want));
	}
	r = nft_state_rule(&st, "default");
	T_CHECK(r && r->packets >= 3);
	/* rules in chain order, as nft lists them */
	char ids[256] = "";
	for (size_t i = 0; i < st.nrules; i++)
		if (strcmp(st.rules[i].chain, "ep-b-in") == 0)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s",
				 ids[0] ? "," : "", st.rules[i].id);
	T_STREQ(ids, "tcp-8080,tcp-range,udp-set,icmp,v6,iif-log,default");
	T_CHECK(st.genid != 0);
	nft_state_free(&st);

	struct nft_state none;
	T_EQ(nft_state_init(&none, "kvnet-absent"), 0);
	T_EQ(nft_state_load(S, &none, &e), 0);
	T_CHECK(!none.exists && none.nchains == 0 && none.nrules == 0);
	nft_state_free(&none);
}

/* one bad message fails the whole batch; the error names it; nothing changes */
static void test_atomic_failure(void)
{
	struct nft_batch b;
	struct err e = {0};
	char *before = nftj("json.dumps(d, sort_keys=True)") ;
	struct nft_elem el;
	struct ip_addr x = ip("198.18.3.0"), y = ip("198.18.3.255");
	nft_batch_init(&b, T, &e);
	nft_rule_begin(&b, NFT_RULE_APPEND, "ep-b-in", 0, "good");
	nft_counter(&b);
	nft_verdict(&b, NFT_V_ACCEPT, NULL);
	nft_rule_end(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "ep-b-in", 0, "bad");
	nft_match_addr_set(&b, NFT_SRC, AF_INET, "no-such-set", false);
	nft_verdict(&b, NFT_V_ACCEPT, NULL);
	nft_rule_end(&b);
	nft_elem_addr(&el, &x, &y);
	nft_elems(&b, &PEERS, false, &el, 1);
	T_EQ(nft_commit(S, &b, 0, &e), -ENOENT);
	t_note("%s", e.msg);
	T_EQ(b.failed, 1);
	T_CHECK(strstr(e.msg, "rule ep-b-in #2 (bad): add") != NULL);
	T_CHECK(strstr(e.msg, "expression 4 (lookup)") != NULL);
	char *after = nftj("json.dumps(d, sort_keys=True)");
	T_CHECK(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);

	/* a jump to a chain that does not exist */
	nft_batch_reset(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "fwd", 0, "j");
	nft_verdict(&b, NFT_V_JUMP, "nowhere");
	nft_rule_end(&b);
	T_EQ(nft_commit(S, &b, 0, &e), -ENOENT);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "rule fwd #1 (j): add") != NULL);
	/* a build error is reported without sending */
	nft_batch_reset(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "fwd", 0, NULL);
	nft_match_port(&b, NFT_DST, 80, 80);
	T_EQ(nft_commit(S, &b, 0, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "port match without a protocol match") != NULL);
	nft_batch_free(&b);
	T_CHECK(nftj_is("comments(\"kvnet\", \"fwd\")", "['ct-est', 'ct-inv', 'dispatch']"));
}

/* ipBlock 0.0.0.0/0 except 198.18.1.192/26: two ranges, the second ends at the largest
 * address (no end element); the set is rewritten in one batch (flush + add); elements
 * are deleted one by one */
static void test_set_rewrite_open_range(void)
{
	struct nft_batch b;
	struct err e = {0};
	struct nft_elem el[2];
	struct ip_addr a0 = ip("0.0.0.0"), a1 = ip("198.18.1.191"), a2 = ip("198.18.2.0"),
		       a3 = ip("255.255.255.255");
	nft_batch_init(&b, T, &e);
	nft_set_flush(&b, "peers");
	nft_elem_addr(&el[0], &a0, &a1);
	nft_elem_addr(&el[1], &a2, &a3);
	nft_elems(&b, &PEERS, false, el, 2);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	T_CHECK(nftj_is("elems(\"kvnet\", \"peers\")",
			"['0.0.0.0-198.18.1.191', '198.18.2.0-255.255.255.255']"));
	T_CHECK(tcp_ok("198.18.1.2", 9005));
	T_CHECK(!tcp_ok("198.18.1.200", 9005));
	/* delete one element of the port set */
	nft_batch_reset(&b);
	nft_elem_port(&el[0], 5353, 5353);
	nft_elems(&b, &PORTS, true, el, 1);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("elems(\"kvnet\", \"ports\")", "['6000-6010']"));
	/* deleting it again: the kernel names the element */
	T_EQ(nft_commit(S, &b, 0, &e), -ENOENT);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "set ports: delete elements 1-1") != NULL);
	nft_batch_free(&b);
}

/* a concatenation set (inet_proto . inet_service, with port ranges) matched by a rule
 * inserted at the head of the chain */
static void test_concat_set(void)
{
	struct nft_batch b;
	struct err e = {0};
	struct nft_set_spec svc = {.name = "svc", .key = NFT_KEY_PROTO_SERVICE, .interval = true};
	struct nft_elem el[2];
	struct ip_addr who = ip("198.18.1.200");
	nft_batch_init(&b, T, &e);
	nft_set_add(&b, &svc);
	nft_elem_proto_port(&el[0], IPPROTO_TCP, 9000, 9010);
	nft_elem_proto_port(&el[1], IPPROTO_UDP, 53, 53);
	nft_elems(&b, &svc, false, el, 2);
	nft_rule_begin(&b, NFT_RULE_INSERT, "ep-b-in", 0, "svc");
	nft_match_addr(&b, NFT_SRC, &who, 32, false);
	nft_match_proto_port_set(&b, NFT_DST, "svc");
	nft_counter(&b);
	nft_verdict(&b, NFT_V_ACCEPT, NULL);
	nft_rule_end(&b);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	T_CHECK(nftj_is("[(s[\"type\"], s.get(\"flags\")) for s in sets(\"kvnet\") if "
			"s[\"name\"] == \"svc\"]",
			"[(['inet_proto', 'inet_service'], ['interval'])]"));
	T_CHECK(nftj_is("sorted(str(e) for e in [s for s in sets(\"kvnet\") if s[\"name\"] == "
			"\"svc\"][0][\"elem\"])",
			"[\"{'concat': ['tcp', {'range': [9000, 9010]}]}\", \"{'concat': ['udp', "
			"53]}\"]"));
	T_CHECK(nftj_is("comments(\"kvnet\", \"ep-b-in\")[0]", "svc"));
	T_CHECK(nftj_is("rules(\"kvnet\", \"ep-b-in\")[0][\"expr\"][1][\"match\"][\"left\"]",
			"{'concat': [{'meta': {'key': 'l4proto'}}, {'payload': {'protocol': 'th', "
			"'field': 'dport'}}]}"));
	T_CHECK(tcp_ok("198.18.1.200", 9005)); /* in the hole of peers, but in svc */
	T_CHECK(!tcp_ok("198.18.1.200", 7000));
	T_CHECK(nftj_is("counter(\"kvnet\", \"ep-b-in\", \"svc\")[0] >= 1", "True"));
	/* read back: one element per range, with its key end */
	struct nft_state st;
	nft_state_init(&st, T);
	T_EQ(nft_state_load(S, &st, &e), 0);
	const struct nft_set_info *s = nft_state_set(&st, "svc");
	T_CHECK(s && s->key_len == 8 && (s->flags & NFT_SET_CONCAT) && s->nelems == 2);
	for (size_t i = 0; s && i < s->nelems; i++)
		if (s->elems[i].key[0] == IPPROTO_TCP)
			T_CHECK(s->elems[i].has_key_end && s->elems[i].key_end[4] == 9000 >> 8 &&
				s->elems[i].key_end[5] == (9010 & 0xff));
	nft_state_free(&st);
	nft_batch_free(&b);
}

/* 10,000 refused messages in one batch: every answer is read, the first is named */
static void test_many_refusals(void)
{
	struct nft_batch b;
	struct err e = {0};
	char *before = nftj("json.dumps(d, sort_keys=True)");
	nft_batch_init(&b, T, &e);
	for (int i = 0; i < 10000; i++) {
		nft_rule_begin(&b, NFT_RULE_APPEND, "no-such-chain", 0, NULL);
		nft_verdict(&b, NFT_V_ACCEPT, NULL);
		nft_rule_end(&b);
	}
	T_EQ(nft_commit(S, &b, 0, &e), -ENOENT);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "nft kvnet: rule no-such-chain #1: add: ") == e.msg);
	T_CHECK(strstr(e.msg, "(10000 of 10000 messages refused, nothing applied)") != NULL);
	T_EQ(b.failed, 0);
	char *after = nftj("json.dumps(d, sort_keys=True)");
	T_CHECK(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);
	nft_batch_free(&b);
}

/* replace a rule in place by handle; a stale generation is refused */
static void test_replace_and_genid(void)
{
	struct nft_state st;
	struct nft_batch b;
	struct err e = {0};
	nft_state_init(&st, T);
	T_EQ(nft_state_load(S, &st, &e), 0);
	const struct nft_rule_info *r = nft_state_rule(&st, "tcp-8080");
	uint64_t h = r ? r->handle : 0;
	nft_batch_init(&b, T, &e);
	nft_rule_begin(&b, NFT_RULE_REPLACE, "ep-b-in", h, "tcp-8080");
	nft_match_addr_set(&b, NFT_SRC, AF_INET, "peers", false);
	nft_match_l4proto(&b, IPPROTO_TCP);
	nft_match_port(&b, NFT_DST, 8081, 8081);
	nft_counter(&b);
	nft_verdict(&b, NFT_V_ACCEPT, NULL);
	nft_rule_end(&b);
	T_EQ(nft_commit(S, &b, st.genid, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	char py[200], want[80];
	snprintf(py, sizeof(py),
		 "[(r[\"handle\"], r[\"expr\"][1][\"match\"][\"right\"]) for r in rules(\"kvnet\", "
		 "\"ep-b-in\") if r.get(\"comment\") == \"tcp-8080\"]");
	snprintf(want, sizeof(want), "[(%llu, 8081)]", (unsigned long long)h);
	T_CHECK(nftj_is(py, want));
	T_CHECK(!tcp_ok("198.18.1.2", 8080));

	/* the same batch with the generation read before that change: refused */
	T_EQ(nft_commit(S, &b, st.genid, &e), -ERESTART);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "generation") != NULL);
	nft_batch_free(&b);
	nft_state_free(&st);

	/* delete the rule by handle */
	nft_batch_init(&b, T, &e);
	nft_rule_del(&b, "ep-b-in", h);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("\"tcp-8080\" in comments(\"kvnet\", \"ep-b-in\")", "False"));
	nft_batch_free(&b);
}

/* 10,000 set elements and 10,000 rules in one batch: one transaction */
static void test_large_batch(void)
{
	struct nft_batch b;
	struct err e = {0};
	struct nft_set_spec big = {.name = "big", .key = NFT_KEY_IPV4};
	struct nft_chain_spec bulk = {"bulk", NFT_HOOK_NONE, 0, false};
	enum { N = 10000 };
	struct nft_elem *el = calloc(N, sizeof(*el));
	char id[32];
	nft_batch_init(&b, T, &e);
	nft_set_add(&b, &big);
	nft_chain_add(&b, &bulk);
	for (int i = 0; i < N && el; i++) {
		struct ip_addr a = {.family = AF_INET, .b = {198, 19, (uint8_t)(i >> 8), (uint8_t)i}};
		nft_elem_addr(&el[i], &a, NULL);
	}
	if (el)
		nft_elems(&b, &big, false, el, N);
	for (int i = 0; i < N; i++) {
		struct ip_addr a = {.family = AF_INET, .b = {198, 19, (uint8_t)(i >> 8), (uint8_t)i}};
		snprintf(id, sizeof(id), "bulk-%d", i);
		nft_rule_begin(&b, NFT_RULE_APPEND, "bulk", 0, id);
		nft_match_addr(&b, NFT_SRC, &a, 32, false);
		nft_counter(&b);
		nft_verdict(&b, NFT_V_ACCEPT, NULL);
		nft_rule_end(&b);
	}
	t_note("batch: %zu messages, %zu bytes", nft_batch_count(&b), b.len);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	T_CHECK(nftj_is("len(elems(\"kvnet\", \"big\"))", "10000"));
	T_CHECK(nftj_is("len(rules(\"kvnet\", \"bulk\"))", "10000"));
	T_CHECK(nftj_is("comments(\"kvnet\", \"bulk\")[9999]", "bulk-9999"));
	struct nft_state st;
	nft_state_init(&st, T);
	T_EQ(nft_state_load(S, &st, &e), 0);
	const struct nft_set_info *s = nft_state_set(&st, "big");
	T_CHECK(s && s->nelems == N);
	size_t n = 0;
	for (size_t i = 0; i < st.nrules; i++)
		n += strcmp(st.rules[i].chain, "bulk") == 0 &&
		     strncmp(st.rules[i].id, "bulk-", 5) == 0;
	T_EQ(n, N);
	T_CHECK(nft_state_rule(&st, "bulk-4711") != NULL);
	nft_state_free(&st);

	/* and out again in one batch: flush + delete chain, delete set */
	nft_batch_reset(&b);
	nft_chain_flush(&b, "bulk");
	nft_chain_del(&b, "bulk");
	nft_set_del(&b, "big");
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("[s[\"name\"] for s in sets(\"kvnet\") if s[\"name\"] == \"big\"] + "
			"[c[\"name\"] for c in chains(\"kvnet\") if c[\"name\"] == \"bulk\"]",
			"[]"));
	nft_batch_free(&b);
	free(el);
}

/* updates in place: a base chain's policy, create of an existing table, flush */
static void test_updates(void)
{
	struct nft_batch b;
	struct err e = {0};
	struct nft_chain_spec fwd = {"fwd", NFT_HOOK_FORWARD, 0, true};
	nft_batch_init(&b, T, &e);
	nft_chain_add(&b, &fwd);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("chain(\"kvnet\", \"fwd\")[\"policy\"]", "drop"));
	/* b -> a leaves by fa, which the vmap does not know: the policy decides */
	T_CHECK(!ping_from_b());
	nft_batch_reset(&b);
	fwd.drop = false;
	nft_chain_add(&b, &fwd);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("chain(\"kvnet\", \"fwd\")[\"policy\"]", "accept"));
	T_CHECK(ping_from_b());
	nft_batch_reset(&b);
	nft_table(&b, NFT_TABLE_CREATE);
	T_EQ(nft_commit(S, &b, 0, &e), -EEXIST);
	t_note("%s", e.msg);
	nft_batch_reset(&b);
	nft_table(&b, NFT_TABLE_FLUSH);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("[len(rules(\"kvnet\", c)) for c in (\"fwd\", \"ep-b-in\")] + "
			"[len(chains(\"kvnet\")), len(sets(\"kvnet\"))]",
			"[0, 0, 2, 5]"));
	nft_batch_free(&b);
}

static void test_delete_table(void)
{
	struct nft_batch b;
	struct err e = {0};
	nft_batch_init(&b, T, &e);
	nft_table(&b, NFT_TABLE_DELETE);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	T_CHECK(nftj_is("d[1:]", "[]")); /* only the metainfo object is left */
	T_EQ(nft_commit(S, &b, 0, &e), -ENOENT);
	t_note("%s", e.msg);
	T_CHECK(strstr(e.msg, "table kvnet: delete") != NULL);
	nft_batch_free(&b);
	/* traffic flows again without the table */
	T_CHECK(tcp_ok("198.18.1.2", 7000));
}

static int setup(void)
{
	int st = -1;
	char *out;
	FW = tns_new("fw");
	A = tns_new("a");
	B = tns_new("b");
	if (!FW || !A || !B)
		return -1;
	char fw[64], a[64], b[64];
	snprintf(fw, sizeof(fw), "%s", FW);
	snprintf(a, sizeof(a), "%s", A);
	snprintf(b, sizeof(b), "%s", B);
	out = t_sh(&st,
		   "set -e; ip -n %s link add va type veth peer name fa netns %s; "
		   "ip -n %s link add vb type veth peer name fb netns %s; "
		   "ip -n %s addr add 198.18.1.2/24 dev va; "
		   "ip -n %s addr add 198.18.1.150/24 dev va; "
		   "ip -n %s addr add 198.18.1.200/24 dev va; "
		   "ip -n %s link set va up; ip -n %s route add default via 198.18.1.1; "
		   "ip -n %s addr add 198.18.2.2/24 dev vb; ip -n %s link set vb up; "
		   "ip -n %s route add default via 198.18.2.1; "
		   "ip -n %s addr add 198.18.1.1/24 dev fa; ip -n %s addr add 198.18.2.1/24 dev fb; "
		   "ip -n %s link set fa up; ip -n %s link set fb up; "
		   "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1",
		   a, fw, b, fw, a, a, a, a, a, b, b, b, fw, fw, fw, fw, fw);
	if (st != 0) {
		t_note("setup: links: %s", out ? out : "?");
		free(out);
		return -1;
	}
	free(out);
	/* servers on 7000, 7001, 8080, 8081, 9005 answering "ok", in their own group */
	out = tns_sh(&st, B,
		     "setsid sh -c 'for p in 7000 7001 8080 8081 9005; do "
		     "timeout --foreground 300 ncat -lk 198.18.2.2 $p --sh-exec \"echo ok\" & done; wait' "
		     ">/dev/null 2>&1 & echo $!");
	SERVER_PID = out ? atoi(out) : 0;
	free(out);
	atexit(stop_servers);
	out = tns_sh(&st, B,
		     "for i in $(seq 100); do [ $(ss -Htln | grep -c '198.18.2.2:') -ge 5 ] "
		     "&& exit 0; sleep 0.05; done; exit 1");
	free(out);
	if (st != 0) {
		t_note("setup: the servers did not start listening");
		return -1;
	}
	struct err e = {0};
	if (nl_open_in_netns(&S, NETLINK_NETFILTER, tns_path(FW), &e) < 0) {
		printf("# %s\n", e.msg);
		return -1;
	}
	/* the path before any rule: every port answers */
	if (!tcp_ok("198.18.1.2", 7000) || !tcp_ok("198.18.1.200", 8080)) {
		t_note("setup: no connection through the firewall without rules");
		return -1;
	}
	return 0;
}

int main(void)
{
	if (setup() < 0) {
		printf("not ok - test-net-nft: setup\n");
		return 1;
	}
	T_RUN(test_build_and_list);
	T_RUN(test_traffic);
	T_RUN(test_read_state);
	T_RUN(test_atomic_failure);
	T_RUN(test_replace_and_genid);
	T_RUN(test_set_rewrite_open_range);
	T_RUN(test_concat_set);
	T_RUN(test_many_refusals);
	T_RUN(test_large_batch);
	T_RUN(test_updates);
	T_RUN(test_delete_table);
	nl_close(S);
	stop_servers();
	return t_done();
}
