/* netns tests for net/nft's dynamic sets against the real kernel: a bridge-family table
 * in a namespace holding a Linux bridge with two ports (namespaces A and B behind
 * veths), a forward chain whose rules `update @set { iifname . saddr . daddr . l4proto .
 * sport . dport counter }`, and real TCP/UDP traffic (ncat) over IPv4 and IPv6 across
 * the bridge. Every result is checked with `nft -j list ruleset` (nftables parses the
 * kernel's answer itself) and kvnet's reader (nft_set_load) is compared with it. */
#include "lib/err.h"
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

static const char *BR, *A, *B; /* namespaces: the bridge, two hosts on it */
static struct nl_sock *S;      /* NETLINK_NETFILTER socket in BR */
static int SERVER_PID;	       /* the ncat servers' process group in B */

#define T "kvnet-l2flows"

static const enum nft_field F4[] = {NFT_F_IIFNAME, NFT_F_SADDR4, NFT_F_DADDR4, NFT_F_SPORT,
				    NFT_F_DPORT};
static const enum nft_field F6[] = {NFT_F_IIFNAME, NFT_F_SADDR6, NFT_F_DADDR6, NFT_F_SPORT,
				    NFT_F_DPORT};

/* python3 over `nft -j list ruleset` in BR, with the helpers of test/lib/nftj.py */
static bool nftj_is(const char *py, const char *want)
{
	int st = -1;
	char *got = tns_sh(&st, BR, "nft -j list ruleset | python3 test/lib/nftj.py '%s'", py);
	size_t l = got ? strlen(got) : 0;
	while (l && got[l - 1] == '\n')
		got[--l] = 0;
	bool ok = st == 0 && got && strcmp(got, want) == 0;
	if (!ok)
		t_note("%s:\n#   got  %s\n#   want %s", py, got ? got : "(failed)", want);
	free(got);
	return ok;
}

static void stop_servers(void)
{
	if (SERVER_PID > 0)
		kill(-SERVER_PID, SIGTERM);
	SERVER_PID = 0;
}

/* A gets "ok" from B's server at dst:port over TCP (udp false) or UDP. */
static bool talk(const char *dst, int port, bool udp)
{
	int st = -1;
	char *out = tns_sh(&st, A,
			   udp ? "python3 -c \"import socket; s = socket.socket(2, 2); "
				 "s.settimeout(2); s.sendto(b'hi', ('%s', %d)); "
				 "print(s.recv(9).decode())\" 2>/dev/null"
			       : "ncat --recv-only -w 1 %s %d </dev/null 2>/dev/null",
			   dst, port);
	bool ok = st == 0 && out && strncmp(out, "ok", 2) == 0;
	if (!ok)
		t_note("talk %s %d %s: status %d, %s", dst, port, udp ? "udp" : "tcp", st,
		       out ? out : "");
	free(out);
	return ok;
}

/* The table: sets tcp4, udp4, tcp6 (dynamic, timeout, size, counter), a forward chain
 * after the filter priority with, per set, a rule `update @set ... accept` and after
 * them a rule counting the IPv4 TCP packets the full set did not take (comment "full"). */
static int build(struct nft_batch *b, uint32_t size, struct err *e)
{
	struct nft_set_spec sets[3] = {
	    {.name = "tcp4",
	     .fields = F4,
	     .nfields = 5,
	     .dynamic = true,
	     .timeout_ms = 60000,
	     .size = size,
	     .counter = true},
	};
	sets[1] = sets[0];
	sets[1].name = "udp4";
	sets[2] = sets[0];
	sets[2].name = "tcp6";
	sets[2].fields = F6;
	static const uint8_t proto[3] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_TCP};
	static const uint8_t fam[3] = {NFPROTO_IPV4, NFPROTO_IPV4, NFPROTO_IPV6};
	struct nft_chain_spec fwd = {"fwd", NFT_HOOK_FORWARD, 10, false};
	nft_batch_init(b, T, e);
	nft_batch_family(b, NFPROTO_BRIDGE);
	nft_table(b, NFT_TABLE_ADD);
	nft_table(b, NFT_TABLE_DELETE);
	nft_table(b, NFT_TABLE_ADD);
	nft_chain_add(b, &fwd);
	for (size_t i = 0; i < 3; i++) {
		nft_set_add(b, &sets[i]);
		nft_rule_begin(b, NFT_RULE_APPEND, "fwd", 0, sets[i].name);
		nft_match_nfproto(b, fam[i]);
		nft_match_l4proto(b, proto[i]);
		nft_update(b, &sets[i]);
		nft_verdict(b, NFT_V_ACCEPT, NULL);
		nft_rule_end(b);
	}
	nft_rule_begin(b, NFT_RULE_APPEND, "fwd", 0, "full");
	nft_match_nfproto(b, NFPROTO_IPV4);
	nft_match_l4proto(b, IPPROTO_TCP);
	nft_counter(b);
	nft_rule_end(b);
	return nft_commit(S, b, 0, e);
}

/* The element of s whose key has source port `sport` and destination port `dport` (-1:
 * any) at byte off (where the ports start), NULL when none. */
static const struct nft_elem_info *find(const struct nft_set_info *s, int sport, int dport,
					unsigned off)
{
	for (size_t i = 0; s && i < s->nelems; i++) {
		const uint8_t *k = s->elems[i].key + off;
		int sp = k[0] << 8 | k[1], dp = k[4] << 8 | k[5];
		if ((sport < 0 || sp == sport) && (dport < 0 || dp == dport))
			return &s->elems[i];
	}
	return NULL;
}

static void test_dynset_v4_v6(void)
{
	struct nft_batch b;
	struct err e = {0};
	T_EQ(build(&b, 1000, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	int rc = -1;
	free(tns_sh(&rc, BR, "nft list set bridge " T " tcp4 | grep -q 'flags dynamic,timeout'"));
	T_EQ(rc, 0);
	T_CHECK(nftj_is("[(s[\"type\"], sorted(s.get(\"flags\", [])), s.get(\"size\"), "
			"s.get(\"timeout\"), \"counter\" in str(s.get(\"stmt\"))) for s in "
			"sets(\"kvnet-l2flows\") if s[\"name\"] == \"tcp4\"]",
			"[(['ifname', 'ipv4_addr', 'ipv4_addr', 'inet_service', 'inet_service'], "
			"['timeout'], 1000, 60, True)]")); /* nft -j omits "dynamic" */
	T_CHECK(nftj_is("[x for x in rules(\"kvnet-l2flows\", \"fwd\")[0][\"expr\"] if \"set\" "
			"in x][0][\"set\"][\"op\"]",
			"update"));
	T_CHECK(talk("198.18.5.2", 7000, false));
	T_CHECK(talk("198.18.5.2", 7001, true));
	T_CHECK(talk("2001:db8:5::2", 7000, false));
	/* nft's view: A -> B (iif pa) TCP to 7000 and UDP to 7001, v4 and TCP v6 */
	T_CHECK(nftj_is("sorted((s[\"name\"], e[\"elem\"][\"val\"][\"concat\"][1:3], "
			"e[\"elem\"][\"val\"][\"concat\"][4], "
			"e[\"elem\"][\"counter\"][\"packets\"] > 0) for s in "
			"sets(\"kvnet-l2flows\") if s[\"name\"][-1] == \"4\" for e in s[\"elem\"] "
			"if e[\"elem\"][\"val\"][\"concat\"][0] == \"pa\")",
			"[('tcp4', ['198.18.5.1', '198.18.5.2'], 7000, True), ('udp4', "
			"['198.18.5.1', '198.18.5.2'], 7001, True)]"));
	/* kvnet's view equals nft's for the TCP element from A */
	struct nft_state st;
	nft_state_init(&st, T);
	nft_state_family(&st, NFPROTO_BRIDGE);
	T_EQ(nft_set_load(S, &st, "tcp4", &e), 0);
	const struct nft_set_info *s = nft_state_set(&st, "tcp4");
	T_CHECK(s && s->key_len == 32 && (s->flags & NFT_SET_EVAL) && s->size == 1000 &&
		s->timeout_ms == 60000 && strcmp(s->expr, "counter") == 0);
	const struct nft_elem_info *el = find(s, -1, 7000, 24);
	T_CHECK(el && el->has_counter && el->packets > 0 && el->bytes > el->packets * 40 &&
		el->expires_ms > 0 && el->expires_ms <= 60000);
	if (el) {
		char want[64];
		T_CHECK(memcmp(el->key, "pa\0", 3) == 0);
		T_CHECK(el->key[16] == 198 && el->key[19] == 1 && el->key[23] == 2);
		T_CHECK(el->key[28] == 7000 >> 8 && el->key[29] == (7000 & 0xff) &&
			el->key[30] == 0);
		snprintf(want, sizeof(want), "(%llu, %llu)", (unsigned long long)el->packets,
			 (unsigned long long)el->bytes);
		/* the same numbers as nft shows (no traffic meanwhile on this 5-tuple) */
		T_CHECK(nftj_is("[(e[\"elem\"][\"counter\"][\"packets\"], "
				"e[\"elem\"][\"counter\"][\"bytes\"]) for s in "
				"sets(\"kvnet-l2flows\") if s[\"name\"] == \"tcp4\" for e in "
				"s[\"elem\"] if e[\"elem\"][\"val\"][\"concat\"][0] == \"pa\" and "
				"e[\"elem\"][\"val\"][\"concat\"][4] == 7000][0]",
				want));
	}
	T_CHECK(nftj_is("counter(\"kvnet-l2flows\", \"fwd\", \"full\")[0]", "0"));
	/* the answer from B (iif pb) has B's port 7000 as its source */
	T_CHECK(find(s, 7000, -1, 24) != NULL);
	/* IPv6: a 60-byte key */
	T_EQ(nft_set_load(S, &st, "tcp6", &e), 0);
	s = nft_state_set(&st, "tcp6");
	T_CHECK(s && s->key_len == 56);
	el = find(s, -1, 7000, 48);
	T_CHECK(el && el->has_counter && el->packets > 0 && el->key[16] == 0x20 &&
		el->key[47] == 2);
	T_CHECK(nftj_is("sorted(e[\"elem\"][\"val\"][\"concat\"][1] for s in "
			"sets(\"kvnet-l2flows\") if s[\"name\"] == \"tcp6\" for e in s[\"elem\"])",
			"['2001:db8:5::1', '2001:db8:5::2']"));
	/* an absent set reads as absent */
	T_EQ(nft_set_load(S, &st, "nosuch", &e), 0);
	T_CHECK(!st.exists && st.nsets == 0);
	nft_state_free(&st);
	nft_batch_free(&b);
}

/* A set of 2 elements: later 5-tuples are not recorded, and fall to the "full" rule. */
static void test_dynset_full(void)
{
	struct nft_batch b;
	struct err e = {0};
	T_EQ(build(&b, 2, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	for (int i = 0; i < 3; i++)
		T_CHECK(talk("198.18.5.2", 7000, false)); /* a new source port each time */
	struct nft_state st;
	nft_state_init(&st, T);
	nft_state_family(&st, NFPROTO_BRIDGE);
	T_EQ(nft_set_load(S, &st, "tcp4", &e), 0);
	const struct nft_set_info *s = nft_state_set(&st, "tcp4");
	T_CHECK(s && s->nelems == 2);
	T_EQ(nft_rules_load(S, &st, &e), 0);
	const struct nft_rule_info *r = nft_state_rule(&st, "full");
	T_CHECK(r && r->has_counter && r->packets > 0);
	T_CHECK(nftj_is("counter(\"kvnet-l2flows\", \"fwd\", \"full\")[0] > 0", "True"));
	T_CHECK(nftj_is("len([s for s in sets(\"kvnet-l2flows\") if s[\"name\"] == "
			"\"tcp4\"][0][\"elem\"])",
			"2"));
	nft_state_free(&st);
	/* a key of more than 64 bytes is refused before anything is sent */
	static const enum nft_field big[] = {NFT_F_IIFNAME, NFT_F_OIFNAME, NFT_F_SADDR6,
					     NFT_F_DADDR6, NFT_F_SPORT};
	struct nft_set_spec bad = {.name = "bad", .fields = big, .nfields = 5};
	nft_batch_reset(&b);
	nft_set_add(&b, &bad);
	T_EQ(nft_commit(S, &b, 0, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "does not fit") != NULL);
	nft_batch_reset(&b);
	nft_table(&b, NFT_TABLE_DELETE);
	T_EQ(nft_commit(S, &b, 0, &e), 0);
	nft_batch_free(&b);
}

static int setup(void)
{
	int st = -1;
	char *out;
	BR = tns_new("br");
	A = tns_new("a");
	B = tns_new("b");
	if (!BR || !A || !B)
		return -1;
	char br[64], a[64], b[64];
	snprintf(br, sizeof(br), "%s", BR);
	snprintf(a, sizeof(a), "%s", A);
	snprintf(b, sizeof(b), "%s", B);
	out = t_sh(&st,
		   "set -e; ip -n %s link add br0 type bridge; ip -n %s link set br0 up; "
		   "ip -n %s link add va type veth peer name pa netns %s; "
		   "ip -n %s link add vb type veth peer name pb netns %s; "
		   "ip -n %s link set pa master br0 up; ip -n %s link set pb master br0 up; "
		   "ip -n %s addr add 198.18.5.1/24 dev va; ip -n %s addr add 2001:db8:5::1/64 "
		   "dev va nodad; ip -n %s link set va up; "
		   "ip -n %s addr add 198.18.5.2/24 dev vb; ip -n %s addr add 2001:db8:5::2/64 "
		   "dev vb nodad; ip -n %s link set vb up",
		   br, br, a, br, b, br, br, br, a, a, a, b, b, b);
	if (st != 0) {
		t_note("setup: links: %s", out ? out : "?");
		free(out);
		return -1;
	}
	free(out);
	out = tns_sh(&st, B,
		     "setsid sh -c 'timeout --foreground 300 ncat -lk 198.18.5.2 7000 --sh-exec "
		     "\"echo ok\" & timeout --foreground 300 ncat -lk 2001:db8:5::2 7000 --sh-exec "
		     "\"echo ok\" & timeout --foreground 300 python3 -c \"import socket; "
		     "s = socket.socket(2, 2); s.bind((\\\"198.18.5.2\\\", 7001))\n"
		     "while True: d, a = s.recvfrom(99); s.sendto(b\\\"ok\\\", a)\" & wait' "
		     ">/dev/null 2>&1 & echo $!");
	SERVER_PID = out ? atoi(out) : 0;
	free(out);
	atexit(stop_servers);
	out = tns_sh(&st, B,
		     "for i in $(seq 100); do [ $(ss -Htln | grep -c ':7000') -ge 2 ] && "
		     "[ $(ss -Huln | grep -c ':7001') -ge 1 ] && exit 0; sleep 0.05; done; exit 1");
	free(out);
	if (st != 0) {
		t_note("setup: the servers did not start listening");
		return -1;
	}
	struct err e = {0};
	if (nl_open_in_netns(&S, NETLINK_NETFILTER, tns_path(BR), &e) < 0) {
		printf("# %s\n", e.msg);
		return -1;
	}
	/* wait for the bridge ports to forward (no STP: at once, but poll) */
	for (int i = 0; i < 100; i++) {
		int ps = -1;
		free(tns_sh(&ps, A, "ping -c 1 -W 1 198.18.5.2 >/dev/null 2>&1"));
		if (ps == 0)
			return 0;
	}
	t_note("setup: no path across the bridge");
	return -1;
}

int main(void)
{
	if (setup() < 0) {
		printf("not ok - test-net-nft-dynset: setup\n");
		return 1;
	}
	T_RUN(test_dynset_v4_v6);
	T_RUN(test_dynset_full);
	nl_close(S);
	stop_servers();
	return t_done();
}
