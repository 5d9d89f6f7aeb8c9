/* Unit tests for net/announce: the frame parser on hand-built frames of every kind
 * (byte literals written from the RFCs, the NA's checksum computed by python3), many
 * malformed and truncated ones, and the builders checked against the same literals. */
#include "lib/err.h"
#include "net/announce.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t MAC1[6] = {0x02, 0, 0, 0, 0, 0x01};

/* GARP request: 02:00:00:00:00:01 announces 198.18.0.1 (sender IP == target IP). */
static const uint8_t GARP_REQ[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,		/* htype ptype hlen plen op */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 198,  18,	0,    1, /* sha spa */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198,  18,	0,    1, /* tha tpa */
};

/* RARP request reverse as QEMU sends it: sha = tha = the VM's MAC, IPs zero. */
static const uint8_t RARP_REQ[60] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x80, 0x35,
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x03, 0x52, 0x54, 0x00, 0x12,
	0x34, 0x56, 0x00, 0x00, 0x00, 0x00, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
	0x00, 0x00, 0x00, 0x00,
};

/* Unsolicited NA: 2001:db8::1 at 02:00:00:00:00:01, flags O, to ff02::1, TLLA option. */
static const uint8_t NA[86] = {
	0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00,
	0xf9, 0x2a, 0x20, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x01,
};
#define NA_ICMP 54 /* offset of the ICMPv6 message in NA */

/* Parse a copy of exactly len bytes on the heap, so ASan sees any read past the end. */
static int parse(const uint8_t *f, size_t len, struct ann_event *ev, struct err *e)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, f, len);
	int rc = ann_parse(copy, len, ev, e);
	free(copy);
	return rc;
}

/* The test's own ICMPv6 checksum (RFC 4443 2.3) for frames it edits. */
static void fix_na_csum(uint8_t *f, size_t icmp_len)
{
	uint32_t s = 0;
	uint8_t *m = f + NA_ICMP;
	m[2] = m[3] = 0;
	for (int i = 22; i < 54; i += 2)
		s += (uint32_t)(f[i] << 8 | f[i + 1]);
	s += (uint32_t)icmp_len + 58;
	for (size_t i = 0; i < icmp_len; i += 2)
		s += (uint32_t)(m[i] << 8 | (i + 1 < icmp_len ? m[i + 1] : 0));
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	m[2] = (uint8_t)(~s >> 8);
	m[3] = (uint8_t)~s;
}

static void set_plen(uint8_t *f, uint16_t plen)
{
	f[18] = (uint8_t)(plen >> 8);
	f[19] = (uint8_t)plen;
}

static void test_garp_request(void)
{
	struct ann_event ev;
	struct err e = {0};
	char buf[IP_STRLEN], mb[18];
	T_EQ(parse(GARP_REQ, sizeof(GARP_REQ), &ev, &e), 0);
	T_EQ(ev.kind, ANN_GARP);
	T_STREQ(ann_kind_name(ev.kind), "garp");
	T_EQ(ev.op, 1);
	T_STREQ(ip_fmt(&ev.ip, buf), "198.18.0.1");
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:00:00:00:00:01");
	T_MEMEQ(ev.src_mac, MAC1, 6);
	T_CHECK(!ev.has_vlan);
	/* without the Ethernet padding too */
	T_EQ(parse(GARP_REQ, 42, &ev, &e), 0);
}

static void test_garp_reply_other_sender(void)
{
	uint8_t f[60];
	struct ann_event ev;
	char mb[18];
	memcpy(f, GARP_REQ, sizeof(f));
	f[21] = 2;			       /* op reply */
	memcpy(f + 22, "\x02\x11\x22\x33\x44\x55", 6); /* sha differs from the Ethernet source */
	T_EQ(parse(f, sizeof(f), &ev, NULL), 0);
	T_EQ(ev.op, 2);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:11:22:33:44:55");
	T_STREQ(ann_mac_fmt(ev.src_mac, mb), "02:00:00:00:00:01");
}

static void test_arp_not_announcements(void)
{
	uint8_t f[60];
	struct ann_event ev;
	struct err e = {0};

	memcpy(f, GARP_REQ, sizeof(f));
	f[41] = 2; /* ordinary request for 198.18.0.2 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: arp: sender IP differs from target IP");

	memcpy(f, GARP_REQ, sizeof(f));
	memset(f + 28, 0, 4); /* RFC 5227 probe: sender 0.0.0.0 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);

	memcpy(f, GARP_REQ, sizeof(f));
	f[21] = 3; /* RARP op inside ARP */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: arp: op 3 is not 1 or 2");

	memcpy(f, GARP_REQ, sizeof(f));
	f[15] = 6; /* htype IEEE 802 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);

	memcpy(f, GARP_REQ, sizeof(f));
	f[16] = 0x86, f[17] = 0xdd; /* ptype IPv6 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);

	memcpy(f, GARP_REQ, sizeof(f));
	f[12] = 0x08, f[13] = 0x00; /* IPv4 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: EtherType 0x0800 is no announcement");
}

static void test_arp_malformed(void)
{
	uint8_t f[60];
	struct ann_event ev;
	struct err e = {0};

	memcpy(f, GARP_REQ, sizeof(f));
	f[18] = 8; /* hlen 8 */
	T_EQ(parse(f, sizeof(f), &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: arp: bad address lengths (hlen 8 plen 4)");
	memcpy(f, GARP_REQ, sizeof(f));
	f[19] = 16;
	T_EQ(parse(f, sizeof(f), &ev, &e), -EBADMSG);

	/* every cut inside the body */
	for (size_t n = 14; n < 42; n++) {
		int rc = parse(GARP_REQ, n, &ev, &e);
		if (!T_EQ(rc, -EBADMSG))
			t_note("cut at %zu", n);
	}
	T_EQ(parse(GARP_REQ, 41, &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: arp: truncated (addresses)");
	T_EQ(parse(GARP_REQ, 20, &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: arp: truncated (6 bytes of body)");
	/* shorter than an Ethernet header */
	for (size_t n = 0; n < 14; n++)
		T_EQ(parse(GARP_REQ, n, &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: shorter than an Ethernet header (13 bytes)");
	T_EQ(ann_parse(NULL, 0, &ev, NULL), -ENOMSG);
}

static void test_vlan_tagged(void)
{
	uint8_t f[64];
	struct ann_event ev;
	char buf[IP_STRLEN];
	memcpy(f, GARP_REQ, 12);
	f[12] = 0x81, f[13] = 0x00, f[14] = 0x20, f[15] = 0x64; /* PCP 1, VID 100 */
	memcpy(f + 16, GARP_REQ + 12, 48);
	T_EQ(parse(f, sizeof(f), &ev, NULL), 0);
	T_CHECK(ev.has_vlan);
	T_EQ(ev.vlan, 100);
	T_STREQ(ip_fmt(&ev.ip, buf), "198.18.0.1");
	f[12] = 0x88, f[13] = 0xa8; /* 802.1ad */
	T_EQ(parse(f, sizeof(f), &ev, NULL), 0);
	T_EQ(ev.vlan, 100);
	T_EQ(parse(f, 15, &ev, NULL), -ENOMSG); /* cut inside the tag */
	T_EQ(parse(f, 17, &ev, NULL), -ENOMSG); /* cut inside the inner type */
	T_EQ(parse(f, 18, &ev, NULL), -EBADMSG); /* a tagged ARP with no body */

	/* an NA behind a tag */
	uint8_t g[90];
	memcpy(g, NA, 12);
	g[12] = 0x81, g[13] = 0x00, g[14] = 0x0f, g[15] = 0xff;
	memcpy(g + 16, NA + 12, sizeof(NA) - 12);
	T_EQ(parse(g, sizeof(g), &ev, NULL), 0);
	T_EQ(ev.kind, ANN_NA);
	T_EQ(ev.vlan, 4095);
}

static void test_rarp(void)
{
	struct ann_event ev;
	struct err e = {0};
	char mb[18];
	uint8_t f[60];
	T_EQ(parse(RARP_REQ, sizeof(RARP_REQ), &ev, &e), 0);
	T_EQ(ev.kind, ANN_RARP);
	T_STREQ(ann_kind_name(ev.kind), "rarp");
	T_EQ(ev.op, 3);
	T_EQ(ev.ip.family, 0);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "52:54:00:12:34:56");

	/* reply reverse: keyed by the target hardware address */
	memcpy(f, RARP_REQ, sizeof(f));
	f[21] = 4;
	memcpy(f + 32, "\x52\x54\x00\xaa\xbb\xcc", 6);
	T_EQ(parse(f, sizeof(f), &ev, &e), 0);
	T_EQ(ev.op, 4);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "52:54:00:aa:bb:cc");

	memcpy(f, RARP_REQ, sizeof(f));
	f[21] = 1;
	T_EQ(parse(f, sizeof(f), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: rarp: op 1 is not 3 or 4");
	T_EQ(parse(RARP_REQ, 30, &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: rarp: truncated (addresses)");
}

static void test_na(void)
{
	struct ann_event ev;
	struct err e = {0};
	char buf[IP_STRLEN], mb[18];
	T_EQ(parse(NA, sizeof(NA), &ev, &e), 0);
	T_EQ(ev.kind, ANN_NA);
	T_STREQ(ann_kind_name(ev.kind), "na");
	T_EQ(ev.na_flags, ANN_NA_OVERRIDE);
	T_STREQ(ip_fmt(&ev.ip, buf), "2001:db8::1");
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:00:00:00:00:01");

	/* TLLA differs from the Ethernet source: the option wins */
	uint8_t f[128];
	memcpy(f, NA, sizeof(NA));
	memcpy(f + 80, "\x02\xaa\xbb\xcc\xdd\xee", 6);
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), 0);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:aa:bb:cc:dd:ee");

	/* no option: the Ethernet source */
	memcpy(f, NA, sizeof(NA));
	set_plen(f, 24);
	fix_na_csum(f, 24);
	T_EQ(parse(f, 78, &ev, &e), 0);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:00:00:00:00:01");
	/* Ethernet padding after the payload is ignored */
	memset(f + 78, 0xee, 8);
	T_EQ(parse(f, 86, &ev, &e), 0);

	/* a source LL option (type 1) and a nonce (type 14, 8 bytes) before the TLLA */
	memcpy(f, NA, NA_ICMP + 24);
	memcpy(f + NA_ICMP + 24, "\x01\x01\x02\x00\x00\x00\x00\x09", 8);
	memcpy(f + NA_ICMP + 32, "\x0e\x01\x01\x02\x03\x04\x05\x06", 8);
	memcpy(f + NA_ICMP + 40, "\x02\x01\x02\x00\x00\x00\x00\x07", 8);
	set_plen(f, 48);
	fix_na_csum(f, 48);
	T_EQ(parse(f, NA_ICMP + 48, &ev, &e), 0);
	T_STREQ(ann_mac_fmt(ev.mac, mb), "02:00:00:00:00:07");
	/* R flag too: still unsolicited */
	f[NA_ICMP + 4] = ANN_NA_ROUTER | ANN_NA_OVERRIDE;
	fix_na_csum(f, 48);
	T_EQ(parse(f, NA_ICMP + 48, &ev, &e), 0);
	T_EQ(ev.na_flags, ANN_NA_ROUTER | ANN_NA_OVERRIDE);
}

static void test_na_not_announcements(void)
{
	uint8_t f[128];
	struct ann_event ev;
	struct err e = {0};

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP + 4] = ANN_NA_SOLICITED | ANN_NA_OVERRIDE;
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: na: solicited");

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP] = 135; /* neighbour solicitation */
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);
	f[NA_ICMP] = 128; /* echo request */
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);

	memcpy(f, NA, sizeof(NA));
	f[20] = 17; /* UDP */
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: ipv6: next header 17 is not ICMPv6");
	memcpy(f, NA, sizeof(NA));
	f[20] = 0; /* hop-by-hop options first: not accepted */
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);
	memcpy(f, NA, sizeof(NA));
	f[14] = 0x40; /* version 4 */
	T_EQ(parse(f, sizeof(NA), &ev, &e), -ENOMSG);
	T_STREQ(e.msg, "frame: ipv6: version 4");
}

static void test_na_malformed(void)
{
	uint8_t f[128];
	struct ann_event ev;
	struct err e = {0};

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP + 2] ^= 1;
	T_EQ(parse(f, sizeof(NA), &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: na: bad checksum 0xf82a");

	memcpy(f, NA, sizeof(NA));
	f[21] = 64; /* hop limit: RFC 4861 says drop */
	T_EQ(parse(f, sizeof(NA), &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: na: hop limit 64 is not 255");

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP + 1] = 1;
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -EBADMSG);

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP + 25] = 0; /* option length 0 */
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: na: option 2: bad length");

	memcpy(f, NA, sizeof(NA));
	f[NA_ICMP + 25] = 2; /* option runs past the payload */
	fix_na_csum(f, 32);
	T_EQ(parse(f, sizeof(NA), &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: na: option 2: truncated");

	memcpy(f, NA, sizeof(NA));
	set_plen(f, 20); /* shorter than an NA */
	fix_na_csum(f, 20);
	T_EQ(parse(f, NA_ICMP + 20, &ev, &e), -EBADMSG);
	T_STREQ(e.msg, "frame: na: truncated (20 bytes)");

	memcpy(f, NA, sizeof(NA));
	set_plen(f, 25); /* a lone option type byte */
	f[NA_ICMP + 24] = 0;
	fix_na_csum(f, 25);
	T_EQ(parse(f, NA_ICMP + 25, &ev, &e), -EBADMSG);

	/* every cut of the frame: a cut NA is malformed, never an event, never a crash */
	for (size_t n = 0; n < sizeof(NA); n++) {
		int rc = parse(NA, n, &ev, &e);
		if (!T_CHECK(rc == -EBADMSG || rc == -ENOMSG))
			t_note("cut at %zu: %d", n, rc);
		if (n > NA_ICMP && !T_EQ(rc, -EBADMSG))
			t_note("cut at %zu: %s", n, e.msg);
	}
}

static void test_builders(void)
{
	uint8_t f[ANN_FRAME_MAX];
	struct ip_addr ip4, ip6;
	struct ann_event ev;
	T_CHECK(ip_parse("198.18.0.1", &ip4));
	T_CHECK(ip_parse("2001:db8::1", &ip6));

	T_EQ(ann_build_garp(f, sizeof(f), MAC1, &ip4, false), 60);
	T_MEMEQ(f, GARP_REQ, 60);
	T_EQ(ann_build_garp(f, sizeof(f), MAC1, &ip4, true), 60);
	T_EQ(f[21], 2);
	T_MEMEQ(f + 32, MAC1, 6);
	T_EQ(parse(f, 60, &ev, NULL), 0);
	T_EQ(ev.op, 2);

	T_EQ(ann_build_na(f, sizeof(f), MAC1, &ip6), 86);
	T_MEMEQ(f, NA, 86);

	const uint8_t vm[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	T_EQ(ann_build_rarp(f, sizeof(f), vm), 60);
	T_MEMEQ(f, RARP_REQ, 60);

	/* wrong family, no room */
	T_EQ(ann_build_garp(f, sizeof(f), MAC1, &ip6, false), -EINVAL);
	T_EQ(ann_build_na(f, sizeof(f), MAC1, &ip4), -EINVAL);
	T_EQ(ann_build_garp(f, 59, MAC1, &ip4, false), -ENOSPC);
	T_EQ(ann_build_na(f, 85, MAC1, &ip6), -ENOSPC);
	T_EQ(ann_build_na(f, 40, MAC1, &ip6), -ENOSPC);
	T_EQ(ann_build_rarp(f, 10, vm), -ENOSPC);
}

static void test_mac_text(void)
{
	uint8_t m[6];
	char b[18];
	T_CHECK(ann_mac_parse("02:AB:cd:00:ff:9e", m));
	T_STREQ(ann_mac_fmt(m, b), "02:ab:cd:00:ff:9e");
	T_CHECK(!ann_mac_parse("02:ab:cd:00:ff", m));
	T_CHECK(!ann_mac_parse("02:ab:cd:00:ff:9e:", m));
	T_CHECK(!ann_mac_parse("02:ab:cd:00:ff:9", m));
	T_CHECK(!ann_mac_parse("02-ab-cd-00-ff-9e", m));
	T_CHECK(!ann_mac_parse("02:ab:cd:00:ff:9g", m));
	T_CHECK(!ann_mac_parse("", m));
}

int main(void)
{
	T_RUN(test_garp_request);
	T_RUN(test_garp_reply_other_sender);
	T_RUN(test_arp_not_announcements);
	T_RUN(test_arp_malformed);
	T_RUN(test_vlan_tagged);
	T_RUN(test_rarp);
	T_RUN(test_na);
	T_RUN(test_na_not_announcements);
	T_RUN(test_na_malformed);
	T_RUN(test_builders);
	T_RUN(test_mac_text);
	return t_done();
}
