/* netns test for net/ct: the conntrack hand-over of a VM's connections between two nodes.
 *
 *                  +---------- node A ----------+
 *   VM      ua ----+ vm0   nft: dnat svc, ct    +-- up0 ---- pa  peer
 *   198.18.1.2     |       state filter          |            198.18.6.1
 *   2001:db8:1::2  |                             |            2001:db8:6::1
 *           ub ----+ vm0   node B, same rules    +-- up0 ---- pb
 *                  +-----------------------------+
 *
 * The VM opens three TCP connections while routed through A: one to the Service-like
 * address 198.18.7.7:80, DNAT-ed by A to the peer's 198.18.6.1:8080, one straight to the
 * peer's :9090, one over IPv6 to [2001:db8:6::1]:9191. Both nodes forward only `ct state established,related` (and new SYNs from
 * the VM). "Migrating" moves the VM's default routes to ub and the peer's routes to B.
 * Without the entries on B the connections die (B's drop counter grows, nothing arrives);
 * with ct_dump on A + ct_create on B before the switch (carried through the wire form),
 * data flows both ways on both. Checked with `conntrack -L` and `nft -j`. */
#include "lib/err.h"
#include "net/ct.h"
#include "net/nl.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *VM, *A, *B, *P;

static int sh_ok(const char *ns, const char *cmd)
{
	int st = -1;
	free(tns_sh(&st, ns, "%s", cmd));
	if (st != 0)
		t_note("command failed in %s (%d): %s", ns, st, cmd);
	return st == 0;
}

/* A number printed by a shell command in ns, or -1. A pipeline ending in `grep -c` that
 * counts nothing exits 1 but still prints 0; that 0 is a number too. */
static long sh_num(const char *ns, const char *cmd)
{
	int st = -1;
	char *out = tns_sh(&st, ns, "%s", cmd);
	char *end = NULL;
	long v = out && (st == 0 || st == 1) ? strtol(out, &end, 10) : -1;
	if (end == out)
		v = -1;
	free(out);
	return v;
}

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static const char *NODE_RULES =
    "nft -f - <<'EOF'\n"
    "table inet kvt {\n"
    " chain vmnat { type nat hook prerouting priority dstnat;\n"
    "  ip daddr 198.18.7.7 tcp dport 80 dnat ip to 198.18.6.1:8080; }\n"
    " chain vmfwd { type filter hook forward priority filter; policy accept;\n"
    "  ct state established,related accept;\n"
    "  iifname \"vm0\" tcp flags & (syn|ack) == syn ct state new accept;\n"
    "  counter drop; }\n"
    "}\n"
    "EOF";

/* conntrack(8) lists one family at a time: both, for a pipeline. */
#define CT_LIST "{ conntrack -L -f ipv4 2>/dev/null; conntrack -L -f ipv6 2>/dev/null; }"
#define VM_RE "'src=(198\\.18\\.1\\.2|2001:db8:1::2) '"

/* Packets B's forward chain dropped so far. */
static long drops(const char *ns)
{
	return sh_num(ns, "nft -j list chain inet kvt vmfwd | python3 -c \"import json,sys; "
			  "d=json.load(sys.stdin); print(sum(x['counter']['packets'] for r in "
			  "d['nftables'] if 'rule' in r for x in r['rule']['expr'] if 'counter' "
			  "in x))\"");
}

static int setup(void)
{
	char cmd[1024];
	const char *all[4] = {VM, A, B, P};
	for (int i = 0; i < 4; i++)
		if (!sh_ok(all[i], "sysctl -qw net.ipv4.conf.all.rp_filter=0 "
				   "net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_forward=1 "
				   "net.ipv6.conf.all.forwarding=1"))
			return 0;
	snprintf(cmd, sizeof(cmd),
		 "ip link add ua type veth peer name vm0 netns %s && "
		 "ip link add ub type veth peer name vm0 netns %s && "
		 "ip addr add 198.18.1.2/32 dev lo && "
		 "ip addr add 198.18.2.2/30 dev ua && ip addr add 198.18.3.2/30 dev ub && "
		 "ip link set ua up && ip link set ub up && "
		 "ip route add default via 198.18.2.1 dev ua src 198.18.1.2 && "
		 "ip addr add 2001:db8:1::2/128 dev lo nodad && "
		 "ip addr add 2001:db8:2::2/64 dev ua nodad && "
		 "ip addr add 2001:db8:3::2/64 dev ub nodad && "
		 "ip -6 route add default via 2001:db8:2::1 dev ua src 2001:db8:1::2",
		 A, B);
	if (!sh_ok(VM, cmd))
		return 0;
	snprintf(cmd, sizeof(cmd),
		 "ip link add pa type veth peer name up0 netns %s && "
		 "ip link add pb type veth peer name up0 netns %s && "
		 "ip addr add 198.18.6.1/32 dev lo && "
		 "ip addr add 198.18.4.2/30 dev pa && ip addr add 198.18.5.2/30 dev pb && "
		 "ip link set pa up && ip link set pb up && "
		 "ip route add 198.18.1.2/32 via 198.18.4.1 dev pa src 198.18.6.1 && "
		 "ip addr add 2001:db8:6::1/128 dev lo nodad && "
		 "ip addr add 2001:db8:4::2/64 dev pa nodad && "
		 "ip addr add 2001:db8:5::2/64 dev pb nodad && "
		 "ip -6 route add 2001:db8:1::2/128 via 2001:db8:4::1 dev pa src 2001:db8:6::1",
		 A, B);
	if (!sh_ok(P, cmd))
		return 0;
	if (!sh_ok(A, "ip addr add 198.18.2.1/30 dev vm0 && ip addr add 198.18.4.1/30 dev up0 && "
		      "ip link set vm0 up && ip link set up0 up && "
		      "ip route add 198.18.1.2/32 via 198.18.2.2 dev vm0 && "
		      "ip route add 198.18.6.1/32 via 198.18.4.2 dev up0 && "
		      "ip addr add 2001:db8:2::1/64 dev vm0 nodad && "
		      "ip addr add 2001:db8:4::1/64 dev up0 nodad && "
		      "ip -6 route add 2001:db8:1::2/128 via 2001:db8:2::2 dev vm0 && "
		      "ip -6 route add 2001:db8:6::1/128 via 2001:db8:4::2 dev up0") ||
	    !sh_ok(B, "ip addr add 198.18.3.1/30 dev vm0 && ip addr add 198.18.5.1/30 dev up0 && "
		      "ip link set vm0 up && ip link set up0 up && "
		      "ip route add 198.18.1.2/32 via 198.18.3.2 dev vm0 && "
		      "ip route add 198.18.6.1/32 via 198.18.5.2 dev up0 && "
		      "ip addr add 2001:db8:3::1/64 dev vm0 nodad && "
		      "ip addr add 2001:db8:5::1/64 dev up0 nodad && "
		      "ip -6 route add 2001:db8:1::2/128 via 2001:db8:3::2 dev vm0 && "
		      "ip -6 route add 2001:db8:6::1/128 via 2001:db8:5::2 dev up0"))
		return 0;
	return sh_ok(A, NODE_RULES) && sh_ok(B, NODE_RULES);
}

/* Route the VM and the peer through node A (to_b false) or node B. */
static int switch_to(bool to_b)
{
	return sh_ok(VM, to_b ? "ip route replace default via 198.18.3.1 dev ub src 198.18.1.2 && "
				"ip -6 route replace default via 2001:db8:3::1 dev ub "
				"src 2001:db8:1::2"
			      : "ip route replace default via 198.18.2.1 dev ua src 198.18.1.2 && "
				"ip -6 route replace default via 2001:db8:2::1 dev ua "
				"src 2001:db8:1::2") &&
	       sh_ok(P, to_b ? "ip route replace 198.18.1.2/32 via 198.18.5.1 dev pb src 198.18.6.1 "
			       "&& ip -6 route replace 2001:db8:1::2/128 via 2001:db8:5::1 dev pb "
			       "src 2001:db8:6::1"
			     : "ip route replace 198.18.1.2/32 via 198.18.4.1 dev pa src 198.18.6.1 "
			       "&& ip -6 route replace 2001:db8:1::2/128 via 2001:db8:4::1 dev pa "
			       "src 2001:db8:6::1");
}

/* A socket created in namespace ns (the calling thread goes there and back). */
static int ns_socket(const char *ns, int family, int type)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(tns_path(ns), O_RDONLY | O_CLOEXEC);
	int s = -1;
	if (self >= 0 && fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
		s = socket(family, type | SOCK_CLOEXEC, 0);
		if (setns(self, CLONE_NEWNET) < 0)
			abort();
	}
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return s;
}

/* ip:port as a socket address of its family; *len its size. */
static struct sockaddr_storage sa_of(const char *ip, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		*len = sizeof(*a);
	} else {
		inet_pton(AF_INET6, ip, &a6->sin6_addr);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
	}
	return ss;
}

static int listener(const char *ip, uint16_t port)
{
	socklen_t alen;
	struct sockaddr_storage a = sa_of(ip, port, &alen);
	int s = ns_socket(P, a.ss_family, SOCK_STREAM);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&a, alen) < 0 || listen(s, 4) < 0) {
		t_note("listener :%u: %s", port, strerror(errno));
		return -1;
	}
	return s;
}

/* A connection: the VM's end and the peer's end. */
struct conn {
	int vm;	  /* socket in the VM */
	int peer; /* accepted socket in the peer */
};

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static int dial(int lst, const char *ip, uint16_t port, struct conn *c)
{
	socklen_t alen;
	struct sockaddr_storage a = sa_of(ip, port, &alen);
	c->vm = ns_socket(VM, a.ss_family, SOCK_STREAM);
	c->peer = -1;
	if (c->vm < 0 || connect(c->vm, (struct sockaddr *)&a, alen) < 0) {
		t_note("connect %s:%u: %s", ip, port, strerror(errno));
		return -1;
	}
	if (!readable(lst, 5000))
		return -1;
	c->peer = accept(lst, NULL, NULL);
	return c->peer < 0 ? -1 : 0;
}

static void hang_up(struct conn *c)
{
	struct linger l = {1, 0}; /* reset: no FIN retransmits through the wrong node */
	for (int i = 0; i < 2; i++) {
		int fd = i ? c->peer : c->vm;
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(fd);
		}
	}
	c->vm = c->peer = -1;
}

/* Send one byte from `from`; true when `to` receives it within ms. */
static bool carries(int from, int to, char ch, int ms)
{
	char got = 0;
	if (send(from, &ch, 1, MSG_NOSIGNAL) != 1)
		return false;
	return readable(to, ms) && recv(to, &got, 1, MSG_DONTWAIT) == 1 && got == ch;
}

static bool both_ways(struct conn *c, char ch)
{
	return carries(c->vm, c->peer, ch, 5000) && carries(c->peer, c->vm, (char)(ch + 1), 5000);
}

static const struct ip_addr *vm_addrs(size_t *n)
{
	static struct ip_addr a[2];
	ip_parse("198.18.1.2", &a[0]);
	ip_parse("2001:db8:1::2", &a[1]);
	*n = 2;
	return a;
}

/* The story without the hand-over: the connections die on node B. */
static void test_without_handover(void)
{
	struct conn svc = {-1, -1}, dir = {-1, -1}, v6 = {-1, -1};
	int l1 = listener("198.18.6.1", 8080), l2 = listener("198.18.6.1", 9090);
	int l3 = listener("2001:db8:6::1", 9191);
	T_CHECK(l1 >= 0 && l2 >= 0 && l3 >= 0);
	T_EQ(dial(l1, "198.18.7.7", 80, &svc), 0);
	T_EQ(dial(l2, "198.18.6.1", 9090, &dir), 0);
	T_EQ(dial(l3, "2001:db8:6::1", 9191, &v6), 0);
	T_CHECK(both_ways(&svc, 'a'));
	T_CHECK(both_ways(&dir, 'c'));
	T_CHECK(both_ways(&v6, 'k'));
	T_EQ(sh_num(A, "conntrack -L --dst-nat 2>/dev/null | grep -c 'ESTABLISHED .*dport=80 '"),
	     1);
	long before = drops(B);
	T_CHECK(switch_to(true));
	/* one byte each way on each connection: all six are dropped by B's filter */
	char ch = 'x';
	struct conn *all[3] = {&svc, &dir, &v6};
	for (int i = 0; i < 3; i++) {
		T_EQ(send(all[i]->vm, &ch, 1, MSG_NOSIGNAL), 1);
		T_EQ(send(all[i]->peer, &ch, 1, MSG_NOSIGNAL), 1);
	}
	long now = before;
	for (int i = 0; i < 100 && now < before + 6; i++) {
		nap_ms(50);
		now = drops(B);
	}
	t_note("node B dropped %ld packets of the VM's connections", now - before);
	T_CHECK(now >= before + 6);
	T_CHECK(!readable(svc.vm, 200) && !readable(svc.peer, 0));
	T_CHECK(!readable(dir.vm, 0) && !readable(dir.peer, 0));
	T_CHECK(!readable(v6.vm, 0) && !readable(v6.peer, 0));
	T_EQ(sh_num(B, CT_LIST " | grep -cE " VM_RE), 0);
	T_CHECK(switch_to(false));
	hang_up(&svc);
	hang_up(&dir);
	hang_up(&v6);
	close(l1);
	close(l2);
	close(l3);
}

/* The same with ct_dump on A and ct_create on B before the switch. */
static void test_with_handover(void)
{
	struct err e = {0};
	struct conn svc = {-1, -1}, dir = {-1, -1}, v6 = {-1, -1};
	struct ct_list got = {0}, carried = {0};
	struct nl_sock *sa = NULL, *sb = NULL;
	size_t naddr;
	const struct ip_addr *addrs = vm_addrs(&naddr);
	int l1 = listener("198.18.6.1", 8080), l2 = listener("198.18.6.1", 9090);
	int l3 = listener("2001:db8:6::1", 9191);
	T_CHECK(l1 >= 0 && l2 >= 0 && l3 >= 0);
	/* the first half's reset connections linger in CLOSE state: start clean */
	T_CHECK(sh_ok(A, "conntrack -F 2>/dev/null"));
	T_CHECK(sh_ok(B, "conntrack -F 2>/dev/null"));
	T_EQ(dial(l1, "198.18.7.7", 80, &svc), 0);
	T_EQ(dial(l2, "198.18.6.1", 9090, &dir), 0);
	T_EQ(dial(l3, "2001:db8:6::1", 9191, &v6), 0);
	T_CHECK(both_ways(&svc, 'a'));
	T_CHECK(both_ways(&dir, 'c'));
	T_CHECK(both_ways(&v6, 'k'));

	T_EQ(ct_open(&sa, tns_path(A), &e), 0);
	T_EQ(ct_open(&sb, tns_path(B), &e), 0);
	if (!sa || !sb)
		goto out;
	T_EQ(ct_dump(sa, addrs, naddr, &got, &e), 0);
	/* what kvnet's dump found = what conntrack(8) lists for the VM's address */
	T_EQ((long)got.n, sh_num(A, CT_LIST " | grep -cE " VM_RE));
	T_EQ(got.n, 3);
	int nat = 0, est = 0;
	for (size_t i = 0; i < got.n; i++) {
		char line[256];
		t_note("A: %s", ct_entry_fmt(&got.v[i], line, sizeof(line)));
		if (got.v[i].orig.dport == 80 && got.v[i].status & IPS_DST_NAT &&
		    got.v[i].reply.sport == 8080)
			nat++;
		if (got.v[i].has_tcp && got.v[i].tcp.state == 3)
			est++;
	}
	T_EQ(nat, 1);
	T_EQ(est, 3);

	/* carried node to node in the wire form */
	size_t cap = ct_wire_size(got.n);
	uint8_t *wire = malloc(cap);
	long wlen = wire ? ct_wire_encode(got.v, got.n, wire, cap, &e) : -ENOMEM;
	T_EQ(wlen, (long)cap);
	T_EQ(ct_wire_decode(wire, (size_t)wlen, &carried, &e), 0);
	free(wire);
	T_EQ(carried.n, got.n);
	for (size_t i = 0; i < carried.n; i++) {
		int rc = ct_create(sb, &carried.v[i], &e);
		if (rc < 0)
			t_note("%s", e.msg);
		T_EQ(rc, 0);
	}
	/* B lists them with conntrack(8): the DNAT entry with its NAT, established */
	T_EQ(sh_num(B, "conntrack -L --dst-nat 2>/dev/null | "
		       "grep -c 'ESTABLISHED src=198.18.1.2 dst=198.18.7.7 .* dport=80 "
		       "src=198.18.6.1 dst=198.18.1.2 sport=8080 .*ASSURED'"),
	     1);
	T_EQ(sh_num(B, "conntrack -L 2>/dev/null | grep -c 'ESTABLISHED src=198.18.1.2 "
		       "dst=198.18.6.1 .* dport=9090 .*ASSURED'"),
	     1);
	T_EQ(sh_num(B, CT_LIST " | grep -c 'ESTABLISHED src=2001:db8:1::2 "
		       "dst=2001:db8:6::1 .* dport=9191 .*ASSURED'"),
	     1);
	long nb = sh_num(B, CT_LIST " | grep -cE " VM_RE);
	T_EQ(nb, (long)got.n);
	/* topped up again (at the cut-over): updated, not duplicated */
	for (size_t i = 0; i < carried.n; i++)
		T_EQ(ct_create(sb, &carried.v[i], &e), 0);
	T_EQ(sh_num(B, CT_LIST " | grep -cE " VM_RE), nb);

	long before = drops(B);
	T_CHECK(switch_to(true));
	T_CHECK(both_ways(&svc, 'e'));
	T_CHECK(both_ways(&dir, 'g'));
	T_CHECK(both_ways(&v6, 'm'));
	T_CHECK(both_ways(&svc, 'i'));
	T_EQ(drops(B), before);
	/* the source keeps its entries (the VM could come back) */
	T_EQ(sh_num(A, CT_LIST " | grep -cE " VM_RE), (long)got.n);
out:
	if (sa)
		nl_close(sa);
	if (sb)
		nl_close(sb);
	ct_list_free(&got);
	ct_list_free(&carried);
	switch_to(false);
	hang_up(&svc);
	hang_up(&dir);
	hang_up(&v6);
	close(l1);
	close(l2);
	close(l3);
}

struct evcount {
	int new, destroy; /* events about 198.18.9.9 */
};

static int on_event(enum ct_event ev, const struct ct_entry *ce, void *arg)
{
	struct evcount *c = arg;
	struct ip_addr a;
	ip_parse("198.18.9.9", &a);
	if (!ct_entry_has_addr(ce, &a, 1))
		return 0;
	if (ev == CT_EV_NEW)
		c->new ++;
	if (ev == CT_EV_DESTROY)
		c->destroy++;
	return 0;
}

/* Events: an entry made and deleted with conntrack(8) is seen as new and destroy. */
static void test_events(void)
{
	struct err e = {0};
	struct nl_sock *s = NULL;
	struct evcount c = {0};
	T_EQ(ct_open(&s, tns_path(A), &e), 0);
	if (!s)
		return;
	T_EQ(ct_events_subscribe(s, true, true, true, &e), 0);
	int rb = 0;
	socklen_t rl = sizeof(rb);
	T_EQ(ct_events_rcvbuf(s, 1 << 20, &e), 0);
	T_EQ(getsockopt(nl_fd(s), SOL_SOCKET, SO_RCVBUF, &rb, &rl), 0);
	T_CHECK(rb >= 1 << 20); /* the kernel reports twice what was set */
	T_CHECK(sh_ok(A, "conntrack -I -p udp -s 198.18.9.9 -d 198.18.9.10 --sport 5000 "
			 "--dport 53 -t 30 2>/dev/null && conntrack -D -s 198.18.9.9 2>/dev/null"));
	for (int i = 0; i < 50 && c.destroy == 0; i++) {
		if (!readable(nl_fd(s), 100))
			continue;
		int rc = ct_events_read(s, on_event, &c, &e);
		if (rc < 0)
			t_note("%s", e.msg);
		T_CHECK(rc >= 0);
	}
	T_EQ(c.new, 1);
	T_EQ(c.destroy, 1);
	nl_close(s);
}

int main(void)
{
	VM = tns_new("vm");
	A = tns_new("a");
	B = tns_new("b");
	P = tns_new("peer");
	if (!VM || !A || !B || !P || !setup()) {
		printf("not ok - test-net-ct: setup\n");
		return 1;
	}
	T_RUN(test_without_handover);
	T_RUN(test_with_handover);
	T_RUN(test_events);
	return t_done();
}
