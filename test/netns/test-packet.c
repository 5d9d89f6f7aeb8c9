/* netns tests for net/packet: the AF_PACKET capture of announcements and the sender.
 *
 * Two namespaces A and B joined by two veth pairs (a0-b0, a1-b1). Announcements come
 * from independent senders in A: Debian's arping (`arping -U [-P] -i a0 -S IP IP`) and
 * test/lib/frames.py (a python raw socket: RARP, NA, VLAN-tagged frames). Ordinary ARP,
 * pings and solicited NAs must produce nothing, and the userspace counters show the
 * kernel filter dropped them (nothing reached the parser). kvnet's own sender in B is
 * checked with tcpdump in A (`tcpdump -r -nn -e -vv`) and by A's neighbour cache taking
 * the announced MAC (`ip -j neigh`); tcpdump's capture file is read back by net/pcap. */
#include "lib/err.h"
#include "net/netns.h"
#include "net/packet.h"
#include "net/pcap.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *A, *B;
static int B0, B1;	/* ifindex of b0, b1 in B */
static char MAC_A0[18]; /* a0's MAC as ip prints it */

static int ip_index(const char *ns, const char *dev)
{
	char args[64];
	snprintf(args, sizeof(args), "link show dev %s", dev);
	char *s = tns_ipj(ns, args, "d[0]['ifindex']");
	int v = s ? atoi(s) : -1;
	free(s);
	return v;
}

/* Run a shell command in ns; true when it exits 0 (its output is noted otherwise). */
static bool sh_in(const char *ns, const char *cmd)
{
	int st;
	char *out = tns_sh(&st, ns, "%s 2>&1", cmd);
	if (st != 0)
		t_note("%s: exit %d: %s", cmd, st, out ? out : "");
	free(out);
	return st == 0;
}

static bool frames(const char *args)
{
	char cmd[512];
	/* the distribution's python3 starts far faster than a pyenv shim */
	snprintf(cmd, sizeof(cmd), "%s test/lib/frames.py %s",
		 access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3", args);
	return sh_in(A, cmd);
}

/* Open a capture socket inside B. */
static struct pkt_sock *open_in_b(int ifindex, unsigned flags, struct err *e)
{
	struct netns_saved saved;
	if (netns_enter_path(&saved, tns_path(B), e) < 0)
		return NULL;
	struct pkt_sock *s = pkt_open(ifindex, flags, e);
	struct err e2 = {0};
	if (netns_return(&saved, &e2) < 0) {
		t_note("%s", e2.msg);
		abort();
	}
	return s;
}

static int send_in_b(const struct pkt_announce *a, struct err *e)
{
	struct netns_saved saved;
	if (netns_enter_path(&saved, tns_path(B), e) < 0)
		return -1;
	int rc = pkt_announce_send(a, e);
	struct err e2 = {0};
	if (netns_return(&saved, &e2) < 0)
		abort();
	return rc;
}

/* Wait up to ms for the next event: 1, or 0 on timeout, or -errno. */
static int wait_event(struct pkt_sock *s, struct ann_event *ev, struct pkt_frame *f, int ms)
{
	struct err e = {0};
	for (int waited = 0; waited <= ms; waited += 50) {
		int rc = pkt_next(s, ev, f, &e);
		if (rc != 0) {
			if (rc < 0)
				t_note("pkt_next: %s", e.msg);
			return rc;
		}
		struct pollfd p = {.fd = pkt_fd(s), .events = POLLIN};
		poll(&p, 1, 50);
	}
	return 0;
}

static const char *ipstr(const struct ann_event *ev)
{
	static char buf[IP_STRLEN];
	return ip_fmt(&ev->ip, buf);
}

static const char *macstr(const uint8_t *m)
{
	static char buf[4][18];
	static int i;
	i = (i + 1) % 4;
	return ann_mac_fmt(m, buf[i]);
}

static void expect_none(struct pkt_sock *s)
{
	struct ann_event ev;
	int rc = wait_event(s, &ev, NULL, 0);
	if (!T_EQ(rc, 0))
		t_note("unexpected %s %s %s", ann_kind_name(ev.kind), ipstr(&ev), macstr(ev.mac));
}

static void test_arping_garp(void)
{
	struct err e = {0};
	struct pkt_sock *s = open_in_b(B0, 0, &e);
	if (!T_CHECK(s)) {
		t_note("%s", e.msg);
		return;
	}
	struct ann_event ev;
	struct pkt_frame f;
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	T_CHECK(sh_in(A, "arping -q -U -i a0 -S 198.18.1.1 -c 1 198.18.1.1; [ $? -le 1 ]"));
	clock_gettime(CLOCK_REALTIME, &after);
	T_EQ(wait_event(s, &ev, &f, 3000), 1);
	T_EQ(ev.kind, ANN_GARP);
	T_EQ(ev.op, 1);
	T_STREQ(ipstr(&ev), "198.18.1.1");
	T_STREQ(macstr(ev.mac), MAC_A0);
	T_STREQ(macstr(ev.src_mac), MAC_A0);
	T_EQ(ev.ifindex, B0);
	T_STREQ(ev.ifname, "b0");
	T_CHECK(!ev.has_vlan);
	/* the kernel's timestamp lies between the moments around the sender's run */
	T_CHECK(ev.ts.tv_sec > 0);
	T_CHECK(ev.ts.tv_sec > before.tv_sec ||
		(ev.ts.tv_sec == before.tv_sec && ev.ts.tv_nsec >= before.tv_nsec));
	T_CHECK(ev.ts.tv_sec < after.tv_sec ||
		(ev.ts.tv_sec == after.tv_sec && ev.ts.tv_nsec <= after.tv_nsec));
	T_EQ(f.ifindex, B0);
	T_CHECK(f.caplen >= 42 && f.caplen == f.len);
	T_EQ(f.data[12], 0x08);
	T_EQ(f.data[13], 0x06);

	/* the reply form */
	T_CHECK(sh_in(A, "arping -q -U -P -i a0 -S 198.18.1.1 -c 1 198.18.1.1; [ $? -le 1 ]"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_GARP);
	T_EQ(ev.op, 2);
	T_STREQ(ipstr(&ev), "198.18.1.1");
	expect_none(s);
	struct pkt_stats st;
	T_EQ(pkt_stats(s, &st, &e), 0);
	T_EQ(st.events, 2);
	T_EQ(st.ignored, 0);
	T_EQ(st.malformed, 0);
	pkt_close(s);
}

static void test_python_rarp_na_vlan(void)
{
	struct err e = {0};
	struct pkt_sock *s = open_in_b(B0, 0, &e);
	if (!T_CHECK(s)) {
		t_note("%s", e.msg);
		return;
	}
	struct ann_event ev;
	struct pkt_frame f;

	T_CHECK(frames("a0 rarp mac=52:54:00:12:34:56"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_RARP);
	T_EQ(ev.op, 3);
	T_EQ(ev.ip.family, 0);
	T_STREQ(macstr(ev.mac), "52:54:00:12:34:56");

	T_CHECK(frames("a0 na ip=2001:db8:1::a mac=02:00:00:00:00:0a"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_NA);
	T_STREQ(ipstr(&ev), "2001:db8:1::a");
	T_STREQ(macstr(ev.mac), "02:00:00:00:00:0a");
	T_EQ(ev.na_flags, ANN_NA_OVERRIDE);

	/* no target link-layer option: the Ethernet source */
	T_CHECK(frames("a0 na ip=2001:db8:1::7 mac=02:00:00:00:00:0b tlla=0 flags=0"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_STREQ(ipstr(&ev), "2001:db8:1::7");
	T_STREQ(macstr(ev.mac), "02:00:00:00:00:0b");

	/* VLAN-tagged: the kernel strips the tag into metadata; pkt_next puts it back */
	T_CHECK(frames("a0 garp ip=198.18.7.7 mac=02:00:00:00:00:0c vlan=100"));
	T_EQ(wait_event(s, &ev, &f, 3000), 1);
	T_EQ(ev.kind, ANN_GARP);
	T_STREQ(ipstr(&ev), "198.18.7.7");
	T_CHECK(ev.has_vlan);
	T_EQ(ev.vlan, 100);
	T_EQ(f.data[12], 0x81);
	T_EQ(f.data[13], 0x00);
	T_EQ(f.caplen, 64);
	T_CHECK(frames("a0 na ip=2001:db8:1::8 mac=02:00:00:00:00:0d vlan=5"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_NA);
	T_EQ(ev.vlan, 5);
	/* a tagged solicited NA and a tagged ordinary ARP stay out */
	T_CHECK(frames("a0 na ip=2001:db8:1::9 flags=0x60 vlan=5"));
	T_CHECK(frames("a0 arp ip=198.18.1.1 target=198.18.1.9 vlan=5"));
	expect_none(s);
	pkt_close(s);
}

static void test_noise_filtered_in_kernel(void)
{
	struct err e = {0};
	struct pkt_sock *s = open_in_b(B0, 0, &e);
	if (!T_CHECK(s)) {
		t_note("%s", e.msg);
		return;
	}
	/* ordinary ARP both ways, pings both ways (NS + solicited NA), hand-made ones */
	T_CHECK(sh_in(B, "ip neigh flush dev b0"));
	T_CHECK(sh_in(A, "ip neigh flush dev a0"));
	T_CHECK(sh_in(A, "arping -q -c 2 -i a0 198.18.1.2"));
	T_CHECK(sh_in(B, "ping -c 2 -i 0.2 -W 2 198.18.1.1"));
	T_CHECK(sh_in(B, "ping -6 -c 2 -i 0.2 -W 2 2001:db8:1::1"));
	T_CHECK(sh_in(A, "ping -6 -c 2 -i 0.2 -W 2 2001:db8:1::2"));
	/* hand-made ones carry a0's own MAC: B's neighbour cache must stay right */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "a0 arp ip=198.18.1.1 target=198.18.1.2 count=3 mac=%s", MAC_A0);
	T_CHECK(frames(cmd));
	snprintf(cmd, sizeof(cmd), "a0 na ip=2001:db8:1::1 flags=0x60 count=3 mac=%s", MAC_A0);
	T_CHECK(frames(cmd));
	snprintf(cmd, sizeof(cmd), "a0 ns ip=2001:db8:1::1 target=2001:db8:1::2 mac=%s", MAC_A0);
	T_CHECK(frames(cmd));
	/* a fence: the next announcement arrives after all of that */
	T_CHECK(frames("a0 rarp mac=52:54:00:00:00:99"));
	struct ann_event ev;
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_RARP);
	T_STREQ(macstr(ev.mac), "52:54:00:00:00:99");
	expect_none(s);
	struct pkt_stats st;
	T_EQ(pkt_stats(s, &st, &e), 0);
	T_EQ(st.events, 1);
	T_EQ(st.ignored, 0); /* nothing but the fence got past the kernel filter */
	T_EQ(st.malformed, 0);

	/* what the filter passes but the parser rejects is counted, never returned */
	T_CHECK(frames("a0 na ip=2001:db8:1::1 hops=64 mac=02:00:00:00:00:64"));
	T_CHECK(frames("a0 garp ip=198.18.1.1 op=9"));
	T_CHECK(frames("a0 rarp mac=52:54:00:00:00:98"));
	T_EQ(wait_event(s, &ev, NULL, 3000), 1);
	T_STREQ(macstr(ev.mac), "52:54:00:00:00:98");
	T_EQ(pkt_stats(s, &st, &e), 0);
	T_EQ(st.malformed, 1);
	T_EQ(st.ignored, 1);
	pkt_close(s);
}

static void test_all_interfaces(void)
{
	struct err e = {0};
	struct pkt_sock *all = open_in_b(0, 0, &e);
	struct pkt_sock *one = open_in_b(B1, 0, &e);
	if (!T_CHECK(all && one)) {
		t_note("%s", e.msg);
		pkt_close(all);
		pkt_close(one);
		return;
	}
	struct ann_event ev;
	T_CHECK(frames("a0 garp ip=198.18.1.50 mac=02:00:00:00:00:50"));
	T_CHECK(frames("a1 garp ip=198.18.2.51 mac=02:00:00:00:00:51"));
	T_EQ(wait_event(all, &ev, NULL, 3000), 1);
	T_EQ(ev.ifindex, B0);
	T_STREQ(ev.ifname, "b0");
	T_STREQ(ipstr(&ev), "198.18.1.50");
	T_EQ(wait_event(all, &ev, NULL, 3000), 1);
	T_EQ(ev.ifindex, B1);
	T_STREQ(ev.ifname, "b1");
	T_STREQ(ipstr(&ev), "198.18.2.51");
	T_EQ(wait_event(one, &ev, NULL, 3000), 1);
	T_EQ(ev.ifindex, B1);
	T_STREQ(ipstr(&ev), "198.18.2.51");
	expect_none(one);
	expect_none(all);

	/* an interface created after the socket was opened (a new pod's veth) is covered */
	T_CHECK(sh_in(B, "ip link add b9 type veth peer name a9"));
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "ip link set a9 netns %s && ip link set b9 up", A);
	T_CHECK(sh_in(B, cmd));
	T_CHECK(sh_in(A, "ip link set a9 up"));
	int b9 = ip_index(B, "b9");
	T_CHECK(frames("a9 garp ip=198.18.9.1 mac=02:00:00:00:00:91"));
	T_EQ(wait_event(all, &ev, NULL, 3000), 1);
	T_EQ(ev.ifindex, b9);
	T_STREQ(ev.ifname, "b9");
	T_STREQ(ipstr(&ev), "198.18.9.1");
	T_CHECK(sh_in(B, "ip link del b9"));
	pkt_close(all);
	pkt_close(one);
}

static void test_outgoing(void)
{
	struct err e = {0};
	struct pkt_sock *in = open_in_b(B0, 0, &e);
	struct pkt_sock *out = open_in_b(B0, PKT_F_OUTGOING, &e);
	if (!T_CHECK(in && out)) {
		t_note("%s", e.msg);
		pkt_close(in);
		pkt_close(out);
		return;
	}
	struct pkt_announce a = {.ifindex = B0, .kind = ANN_GARP};
	T_CHECK(ip_parse("198.18.1.2", &a.ip));
	T_EQ(send_in_b(&a, &e), 0);
	struct ann_event ev;
	T_EQ(wait_event(out, &ev, NULL, 3000), 1);
	T_STREQ(ipstr(&ev), "198.18.1.2");
	expect_none(in);

	/* frames B sends itself carry their VLAN tag in the data (nothing strips it on the
	 * way out): the filter's tagged path, seen by the PKT_F_OUTGOING socket */
	T_CHECK(sh_in(B, "/usr/bin/python3 test/lib/frames.py b0 garp ip=198.18.1.2 vlan=7 "
			 "mac=02:00:00:00:00:07 && "
			 "/usr/bin/python3 test/lib/frames.py b0 arp ip=198.18.1.2 target=198.18.1.1 "
			 "vlan=7 && "
			 "/usr/bin/python3 test/lib/frames.py b0 na ip=2001:db8:1::2 flags=0x60 vlan=7 && "
			 "/usr/bin/python3 test/lib/frames.py b0 na ip=2001:db8:1::2 vlan=8 "
			 "mac=02:00:00:00:00:08"));
	struct pkt_frame f;
	T_EQ(wait_event(out, &ev, &f, 3000), 1);
	T_STREQ(macstr(ev.mac), "02:00:00:00:00:07");
	T_CHECK(ev.has_vlan);
	T_EQ(ev.vlan, 7);
	T_EQ(f.data[12], 0x81);
	T_EQ(wait_event(out, &ev, NULL, 3000), 1);
	T_EQ(ev.kind, ANN_NA);
	T_EQ(ev.vlan, 8);
	expect_none(out);
	expect_none(in);
	struct pkt_stats st;
	T_EQ(pkt_stats(out, &st, &e), 0);
	T_EQ(st.events, 3);
	T_EQ(st.ignored, 0); /* the tagged ARP request and solicited NA stayed in the kernel */
	pkt_close(in);
	pkt_close(out);
}

/* A's neighbour entry for ip, as iproute2 shows it ("02:..", or "" when none). */
static char *neigh_mac(const char *ip)
{
	char args[96];
	snprintf(args, sizeof(args), "neigh show to %s dev a0", ip);
	return tns_ipj(A, args, "d[0].get('lladdr', '') if d else ''");
}

static void test_sender_seen_by_tcpdump_and_kernel(void)
{
	struct err e = {0};
	const uint8_t mac[6] = {0x02, 0x4b, 0x56, 0, 0, 0x99};
	struct pkt_announce a = {.ifindex = B0, .kind = ANN_GARP};
	int st;

	/* A knows B's addresses (pings), so announcements update existing entries */
	T_CHECK(sh_in(B, "ip neigh flush dev b0"));
	T_CHECK(sh_in(A, "ip neigh flush dev a0"));
	/* B never probes A (its own ARP/NS would put b0's real MAC back into A's cache) */
	char cmd[200];
	snprintf(cmd, sizeof(cmd),
		 "ip neigh replace 198.18.1.1 lladdr %s dev b0 nud permanent && "
		 "ip neigh replace 2001:db8:1::1 lladdr %s dev b0 nud permanent",
		 MAC_A0, MAC_A0);
	T_CHECK(sh_in(B, cmd));
	T_CHECK(sh_in(A, "ping -c 1 -W 2 198.18.1.2 && ping -6 -c 1 -W 2 2001:db8:1::2"));
	free(tns_sh(&st, A,
		    "rm -f /tmp/kvt-%d.pcap; (timeout 10 tcpdump -i a0 -nn -U -c 4 -w /tmp/kvt-%d.pcap "
		    "'arp or rarp or icmp6[0] == 136' >/dev/null 2>&1 &); sleep 1",
		    (int)getpid(), (int)getpid()));
	T_CHECK(ip_parse("198.18.1.2", &a.ip));
	a.mac = mac;
	T_EQ(send_in_b(&a, &e), 0);
	a.arp_reply = true;
	T_EQ(send_in_b(&a, &e), 0);
	a.kind = ANN_NA;
	T_CHECK(ip_parse("2001:db8:1::2", &a.ip));
	T_EQ(send_in_b(&a, &e), 0);
	a.kind = ANN_RARP;
	a.mac = NULL; /* b0's own MAC */
	T_EQ(send_in_b(&a, &e), 0);
	char *out = tns_sh(&st, A,
			   "for i in 1 2 3 4 5 6 7 8 9 10; do pgrep -f 'tcpdump -i a0' >/dev/null || break; sleep 0.5; done; "
			   "tcpdump -r /tmp/kvt-%d.pcap -nn -e -vv 2>/dev/null", (int)getpid());
	T_CHECK(out && strstr(out, "02:4b:56:00:00:99 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), "
				   "length 60: Ethernet (len 6), IPv4 (len 4), Request who-has "
				   "198.18.1.2 tell 198.18.1.2, length 46"));
	T_CHECK(out && strstr(out, "Reply 198.18.1.2 is-at 02:4b:56:00:00:99, length 46"));
	T_CHECK(out && strstr(out, "02:4b:56:00:00:99 > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), "
				   "length 86"));
	T_CHECK(out && strstr(out, "2001:db8:1::2 > ff02::1: [icmp6 sum ok] ICMP6, neighbor "
				   "advertisement, length 32, tgt is 2001:db8:1::2, Flags [override]"));
	T_CHECK(out && strstr(out, "destination link-address option (2), length 8 (1): "
				   "02:4b:56:00:00:99"));
	T_CHECK(out && strstr(out, "ethertype Reverse ARP (0x8035)"));
	if (out && !strstr(out, "Reverse ARP"))
		t_note("%s", out);
	free(out);
	/* tcpdump's file (microsecond magic) through net/pcap and net/announce */
	char path[64];
	size_t flen;
	snprintf(path, sizeof(path), "/tmp/kvt-%d.pcap", (int)getpid());
	uint8_t *file = (uint8_t *)t_slurp(path, &flen);
	unlink(path);
	struct pcap_rd rd;
	struct pcap_rec rec;
	struct ann_event ev;
	const enum ann_kind kinds[4] = {ANN_GARP, ANN_GARP, ANN_NA, ANN_RARP};
	T_CHECK(file && pcap_rd_init(&rd, file, flen, &e) == 0);
	T_CHECK(!rd.nsec);
	T_EQ(rd.linktype, PCAP_LINKTYPE_ETHERNET);
	for (int i = 0; file && i < 4; i++) {
		T_EQ(pcap_rd_next(&rd, &rec, &e), 1);
		T_EQ(ann_parse(rec.data, rec.caplen, &ev, &e), 0);
		T_EQ(ev.kind, kinds[i]);
		T_CHECK(rec.ts.tv_sec > 0 && rec.ts.tv_nsec % 1000 == 0);
	}
	T_CHECK(file && pcap_rd_next(&rd, &rec, &e) == 0);
	free(file);
	/* the kernel on A took both announcements: the neighbour entries have the new MAC */
	char *m4 = neigh_mac("198.18.1.2"), *m6 = neigh_mac("2001:db8:1::2");
	T_STREQ(m4 ? m4 : "", "02:4b:56:00:00:99");
	T_STREQ(m6 ? m6 : "", "02:4b:56:00:00:99");
	free(m4);
	free(m6);
}

static void test_errors(void)
{
	struct err e = {0};
	struct pkt_sock *s = open_in_b(99999, 0, &e);
	T_CHECK(!s);
	T_EQ(e.code, ENODEV);
	T_STREQ(e.msg, "capture dev 99999: bind: No such device");

	struct pkt_announce a = {.ifindex = 99999, .kind = ANN_GARP};
	T_CHECK(ip_parse("198.18.1.2", &a.ip));
	T_EQ(send_in_b(&a, &e), -ENODEV);
	T_STREQ(e.msg, "announce 198.18.1.2: dev 99999: name: No such device");
	a.ifindex = B0;
	a.kind = ANN_NA;
	T_EQ(send_in_b(&a, &e), -EINVAL);
	char want[96];
	snprintf(want, sizeof(want), "announce 198.18.1.2 dev %d: na needs an IPv6 address", B0);
	T_STREQ(e.msg, want);
	/* a down interface */
	T_CHECK(sh_in(B, "ip link add dn0 type veth peer name dn1"));
	a.ifindex = ip_index(B, "dn0");
	a.kind = ANN_GARP;
	int rc = send_in_b(&a, &e);
	T_EQ(rc, -ENETDOWN);
	t_note("%s", e.msg);
	uint8_t mac[6];
	T_EQ(pkt_ifmac(99999, mac, &e), -ENODEV);
}

int main(void)
{
	A = tns_new("ga");
	B = tns_new("gb");
	if (!A || !B)
		return 1;
	int st;
	char *out = t_sh(&st,
			 "ip link add a0 netns %s type veth peer name b0 netns %s && "
			 "ip link add a1 netns %s type veth peer name b1 netns %s 2>&1",
			 A, B, A, B);
	free(out);
	if (st != 0)
		return 1;
	sh_in(A, "ip addr add 198.18.1.1/24 dev a0 && ip addr add 2001:db8:1::1/64 dev a0 nodad && "
		 "ip addr add 198.18.2.1/24 dev a1 && ip link set a0 up && ip link set a1 up");
	sh_in(B, "ip addr add 198.18.1.2/24 dev b0 && ip addr add 2001:db8:1::2/64 dev b0 nodad && "
		 "ip addr add 198.18.2.2/24 dev b1 && ip link set b0 up && ip link set b1 up");
	B0 = ip_index(B, "b0");
	B1 = ip_index(B, "b1");
	char *m = tns_ipj(A, "link show dev a0", "d[0]['address']");
	snprintf(MAC_A0, sizeof(MAC_A0), "%s", m ? m : "?");
	free(m);

	T_RUN(test_arping_garp);
	T_RUN(test_python_rarp_na_vlan);
	T_RUN(test_noise_filtered_in_kernel);
	T_RUN(test_all_interfaces);
	T_RUN(test_outgoing);
	T_RUN(test_sender_seen_by_tcpdump_and_kernel);
	T_RUN(test_errors);
	return t_done();
}
