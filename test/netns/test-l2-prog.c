/* Kernel tests of l2/prog's programs, run by the kernel itself (BPF_PROG_TEST_RUN): each
 * program is assembled, passes the verifier, and gives the verdict the port-security and
 * trunk rules say on hand-made frames (ARP, IPv4, IPv6 with and without a hop-by-hop
 * header, ICMPv6 RA / NA, DHCP and DHCPv6 server replies, tagged and double-tagged
 * frames, runts). The same programs carrying real traffic between namespaces, checked by
 * tcpdump and independent raw-socket peers, are test/netns/test-l2-path.c's. */
#include "l2/prog.h"
#include "lib/err.h"
#include "net/bpf.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t VM_MAC[6] = { 0x02, 0x00, 0xc6, 0x12, 0x64, 0x0a };
static const uint8_t OTHER_MAC[6] = { 0x02, 0x00, 0xc6, 0x12, 0x64, 0x0b };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct frame {
	uint8_t b[256];
	size_t n;
};

static void put(struct frame *f, const void *p, size_t n)
{
	memcpy(f->b + f->n, p, n);
	f->n += n;
}

static void put16(struct frame *f, uint16_t v)
{
	v = htons(v);
	put(f, &v, 2);
}

static void put8(struct frame *f, uint8_t v)
{
	put(f, &v, 1);
}

static void ip_bytes(const char *s, uint8_t *out, size_t n)
{
	struct ip_addr a;
	if (!ip_parse(s, &a) || ip_len(&a) != n)
		abort();
	memcpy(out, a.b, n);
}

static void eth(struct frame *f, const uint8_t *src, uint16_t type)
{
	f->n = 0;
	put(f, BCAST, 6);
	put(f, src, 6);
	put16(f, type);
}

static struct frame arp(const uint8_t *src, const uint8_t *sha, const char *spa)
{
	struct frame f;
	uint8_t a[4];
	eth(&f, src, 0x0806);
	put16(&f, 1), put16(&f, 0x0800), put8(&f, 6), put8(&f, 4), put16(&f, 1);
	put(&f, sha, 6);
	ip_bytes(spa, a, 4), put(&f, a, 4);
	put(&f, BCAST, 6);
	ip_bytes("198.18.100.1", a, 4), put(&f, a, 4);
	return f;
}

static struct frame udp4(const uint8_t *src, const char *saddr, uint16_t sport, uint16_t dport)
{
	struct frame f;
	uint8_t a[4];
	eth(&f, src, 0x0800);
	put8(&f, 0x45), put8(&f, 0), put16(&f, 28), put16(&f, 1), put16(&f, 0);
	put8(&f, 64), put8(&f, 17), put16(&f, 0);
	ip_bytes(saddr, a, 4), put(&f, a, 4);
	ip_bytes("198.18.100.1", a, 4), put(&f, a, 4);
	put16(&f, sport), put16(&f, dport), put16(&f, 8), put16(&f, 0);
	return f;
}

/* IPv6 with next header nh (after an optional hop-by-hop header) and payload p. */
static struct frame ip6(const char *saddr, bool hbh, uint8_t nh, const uint8_t *p, size_t n)
{
	struct frame f;
	uint8_t a[16];
	eth(&f, VM_MAC, 0x86dd);
	put16(&f, 0x6000), put16(&f, 0), put16(&f, (uint16_t)(n + (hbh ? 8 : 0)));
	put8(&f, hbh ? 0 : nh), put8(&f, 255);
	ip_bytes(saddr, a, 16), put(&f, a, 16);
	ip_bytes("ff02::1", a, 16), put(&f, a, 16);
	if (hbh) {
		static const uint8_t ra_opt[6] = { 5, 2, 0, 0, 1, 0 }; /* router alert, padding */
		put8(&f, nh), put8(&f, 0), put(&f, ra_opt, 6);
	}
	put(&f, p, n);
	return f;
}

static struct frame icmp6(const char *saddr, uint8_t type, const char *target, bool hbh)
{
	uint8_t p[24] = { type, 0, 0, 0, 0, 0, 0, 0 };
	if (target)
		ip_bytes(target, p + 8, 16);
	return ip6(saddr, hbh, 58, p, target ? 24 : 8);
}

static struct frame udp6(const char *saddr, uint16_t sport)
{
	uint8_t p[8] = { (uint8_t)(sport >> 8), (uint8_t)sport, 0x02, 0x22, 0, 8, 0, 0 };
	return ip6(saddr, false, 17, p, 8);
}

/* f with an 802.1Q tag (vid) inserted after the MACs. */
static struct frame tagged(struct frame f, uint16_t tpid, uint16_t vid)
{
	struct frame t = { .n = 0 };
	put(&t, f.b, 12);
	put16(&t, tpid);
	put16(&t, vid);
	put(&t, f.b + 12, f.n - 12);
	return t;
}

static int load(struct bpf_asm *a, const char *name)
{
	struct err e = { 0 };
	int fd = -1;
	if (bpf_prog_load_cls(a, name, &fd, &e) < 0) {
		t_note("%s", e.msg);
		return -1;
	}
	return fd;
}

static long run(int fd, const struct frame *f, struct bpf_test_out *out)
{
	struct err e = { 0 };
	if (bpf_prog_test_run(fd, f->b, f->n, out, &e) < 0) {
		t_note("%s", e.msg);
		return -1;
	}
	return (long)out->retval;
}

static long verdict(int fd, struct frame f)
{
	struct bpf_test_out o;
	return run(fd, &f, &o);
}

static void guard_with(bool with_ips)
{
	struct l2_guard g = { .n_ips = 0 };
	memcpy(g.mac, VM_MAC, 6);
	if (with_ips) {
		T_CHECK(ip_parse("198.18.100.10", &g.ips[0]));
		T_CHECK(ip_parse("2001:db8:100::10", &g.ips[1]));
		g.n_ips = 2;
	}
	static struct bpf_asm a;
	T_EQ(l2_prog_guard(&a, &g), 0);
	int fd = load(&a, "kvnet_guard");
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	int bad_ip = with_ips ? TC_ACT_SHOT : TC_ACT_OK;
	/* ARP */
	T_EQ(verdict(fd, arp(VM_MAC, VM_MAC, "198.18.100.10")), TC_ACT_OK);
	T_EQ(verdict(fd, arp(VM_MAC, VM_MAC, "0.0.0.0")), TC_ACT_OK);
	T_EQ(verdict(fd, arp(VM_MAC, VM_MAC, "198.18.100.11")), bad_ip);
	T_EQ(verdict(fd, arp(VM_MAC, OTHER_MAC, "198.18.100.10")), TC_ACT_SHOT);
	T_EQ(verdict(fd, arp(OTHER_MAC, OTHER_MAC, "198.18.100.10")), TC_ACT_SHOT);
	/* IPv4 */
	T_EQ(verdict(fd, udp4(VM_MAC, "198.18.100.10", 40000, 53)), TC_ACT_OK);
	T_EQ(verdict(fd, udp4(VM_MAC, "0.0.0.0", 68, 67)), TC_ACT_OK);
	T_EQ(verdict(fd, udp4(VM_MAC, "198.18.100.99", 40000, 53)), bad_ip);
	T_EQ(verdict(fd, udp4(VM_MAC, "198.18.100.10", 67, 68)), TC_ACT_SHOT);
	T_EQ(verdict(fd, udp4(OTHER_MAC, "198.18.100.10", 40000, 53)), TC_ACT_SHOT);
	/* IPv6 sources */
	T_EQ(verdict(fd, icmp6("2001:db8:100::10", 128, NULL, false)), TC_ACT_OK);
	T_EQ(verdict(fd, icmp6("fe80::1", 128, NULL, false)), TC_ACT_OK);
	T_EQ(verdict(fd, icmp6("::", 135, "2001:db8:100::10", false)), TC_ACT_OK);
	T_EQ(verdict(fd, icmp6("2001:db8:100::99", 128, NULL, false)), bad_ip);
	/* ND and RA */
	T_EQ(verdict(fd, icmp6("fe80::1", 134, NULL, false)), TC_ACT_SHOT);
	T_EQ(verdict(fd, icmp6("fe80::1", 137, "2001:db8:100::1", false)), TC_ACT_SHOT);
	T_EQ(verdict(fd, icmp6("fe80::1", 136, "2001:db8:100::10", false)), TC_ACT_OK);
	T_EQ(verdict(fd, icmp6("fe80::1", 136, "fe80::1", false)), TC_ACT_OK);
	T_EQ(verdict(fd, icmp6("fe80::1", 136, "2001:db8:100::1", false)), bad_ip);
	T_EQ(verdict(fd, icmp6("fe80::1", 134, NULL, true)), TC_ACT_SHOT); /* RA behind hop-by-hop */
	T_EQ(verdict(fd, icmp6("fe80::1", 143, NULL, true)), TC_ACT_OK);   /* MLDv2 report */
	/* DHCPv6 server, other upper layers */
	T_EQ(verdict(fd, udp6("2001:db8:100::10", 547)), TC_ACT_SHOT);
	T_EQ(verdict(fd, udp6("2001:db8:100::10", 546)), TC_ACT_OK);
	/* tags, other ethertypes, runts */
	T_EQ(verdict(fd, tagged(udp4(VM_MAC, "198.18.100.10", 40000, 53), 0x8100, 200)),
	     TC_ACT_SHOT);
	T_EQ(verdict(fd, tagged(arp(VM_MAC, VM_MAC, "198.18.100.10"), 0x88a8, 100)), TC_ACT_SHOT);
	struct frame lldp;
	eth(&lldp, VM_MAC, 0x88cc);
	put16(&lldp, 0);
	T_EQ(verdict(fd, lldp), TC_ACT_SHOT);
	struct frame runt = arp(VM_MAC, VM_MAC, "198.18.100.10");
	runt.n = 20;
	T_EQ(verdict(fd, runt), TC_ACT_SHOT);
	close(fd);
}

static void test_guard(void)
{
	guard_with(true);
}

static void test_guard_mac_only(void)
{
	guard_with(false);
}

static void test_trunk(void)
{
	static struct bpf_asm a;
	/* any existing interface index will do: test runs do not forward */
	struct l2_vlan_out v[2] = { { 100, 1 }, { 200, 1 } };
	T_EQ(l2_prog_trunk(&a, v, 2, 0), 0);
	int fd = load(&a, "kvnet_trunk");
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	struct frame plain = udp4(OTHER_MAC, "198.18.100.1", 40000, 53);
	struct bpf_test_out o;
	struct frame f = tagged(plain, 0x8100, 100);
	T_EQ(run(fd, &f, &o), TC_ACT_REDIRECT);
	/* the tag is gone: the frame as it would have been sent untagged */
	T_EQ(o.len, plain.n);
	T_MEMEQ(o.data, plain.b, plain.n);
	f = tagged(plain, 0x8100, 0x2000 | 200); /* priority bits set, vid 200 */
	T_EQ(run(fd, &f, &o), TC_ACT_REDIRECT);
	T_EQ(verdict(fd, tagged(plain, 0x8100, 300)), TC_ACT_SHOT);           /* not ours */
	T_EQ(verdict(fd, tagged(tagged(plain, 0x8100, 200), 0x8100, 100)), TC_ACT_SHOT); /* QinQ */
	T_EQ(verdict(fd, tagged(plain, 0x88a8, 100)), TC_ACT_SHOT);           /* S-tag */
	T_EQ(verdict(fd, plain), TC_ACT_OK);                                   /* the host's */
	close(fd);
	/* an untagged network takes the untagged frames */
	T_EQ(l2_prog_trunk(&a, v, 1, 1), 0);
	fd = load(&a, "kvnet_trunk");
	T_CHECK(fd >= 0);
	if (fd >= 0) {
		T_EQ(verdict(fd, plain), TC_ACT_REDIRECT);
		T_EQ(verdict(fd, tagged(plain, 0x8100, 200)), TC_ACT_SHOT);
		close(fd);
	}
	/* refused configurations */
	struct l2_vlan_out dup[2] = { { 100, 1 }, { 100, 2 } }, bad[1] = { { 4095, 1 } };
	T_EQ(l2_prog_trunk(&a, dup, 2, 0), -EEXIST);
	T_EQ(l2_prog_trunk(&a, bad, 1, 0), -EINVAL);
}

static void test_uplink(void)
{
	static struct bpf_asm a;
	T_EQ(l2_prog_uplink(&a, 100, 1), 0);
	int fd = load(&a, "kvnet_uplink");
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	struct frame plain = udp4(VM_MAC, "198.18.100.10", 40000, 53);
	T_EQ(verdict(fd, plain), TC_ACT_REDIRECT);
	T_EQ(verdict(fd, tagged(plain, 0x8100, 200)), TC_ACT_SHOT);
	close(fd);
	T_EQ(l2_prog_uplink(&a, 4095, 1), -EINVAL);
	T_EQ(l2_prog_uplink(&a, 100, 0), -EINVAL);
}

static void test_asm_errors(void)
{
	static struct bpf_asm a;
	struct err e = { 0 };
	bpf_asm_init(&a);
	bpf_ja(&a, 5);
	T_EQ(bpf_asm_finish(&a, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "label 5 jumped to but never placed"));
	bpf_asm_init(&a);
	bpf_label(&a, 1);
	bpf_label(&a, 1);
	T_EQ(bpf_asm_finish(&a, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "placed twice"));
	bpf_asm_init(&a);
	for (int i = 0; i < BPF_ASM_MAX + 1; i++)
		bpf_mov_imm(&a, BPF_REG_0, 0);
	T_EQ(bpf_asm_finish(&a, &e), -E2BIG);
	/* the verifier's refusal is reported with its reason: r0 never set */
	bpf_asm_init(&a);
	bpf_exit(&a);
	int fd = -1;
	T_EQ(bpf_prog_load_cls(&a, "kvnet_bad", &fd, &e), -EACCES);
	T_CHECK(strstr(e.msg, "verifier refused it"));
	T_CHECK(strstr(e.msg, "R0"));
}

int main(void)
{
	if (geteuid() != 0) {
		t_skip("needs root (bpf(2))");
		return t_done();
	}
	T_RUN(test_guard);
	T_RUN(test_guard_mac_only);
	T_RUN(test_trunk);
	T_RUN(test_uplink);
	T_RUN(test_asm_errors);
	return t_done();
}
