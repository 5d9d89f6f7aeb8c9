/* announce — parser and builders of GARP / RARP / unsolicited NA frames; see announce.h. */
#include "net/announce.h"

#include "lib/cursor.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define ETH_HLEN_ 14
#define ARP_BODY 28
#define IP6_HLEN 40
#define NA_MIN 24 /* ICMPv6 header (4) + flags/reserved (4) + target (16) */
#define ICMP6_NA 136
#define NH_ICMP6 58
#define OPT_TLLA 2

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

const char *ann_kind_name(enum ann_kind kind)
{
	switch (kind) {
	case ANN_GARP:
		return "garp";
	case ANN_RARP:
		return "rarp";
	case ANN_NA:
		return "na";
	}
	return "?";
}

/* The ARP/RARP body after the EtherType (both share the layout). */
static int parse_arp(struct cur *c, bool rarp, struct ann_event *ev, struct err *e)
{
	const char *what = rarp ? "rarp" : "arp";
	uint16_t htype, ptype, op;
	uint8_t hlen, plen;
	const uint8_t *sha, *spa, *tha, *tpa;

	if (cur_left(c) < 8)
		return err_setx(e, EBADMSG, "frame: %s: truncated (%zu bytes of body)", what,
				cur_left(c));
	cur_be16(c, &htype);
	cur_be16(c, &ptype);
	cur_u8(c, &hlen);
	cur_u8(c, &plen);
	cur_be16(c, &op);
	if (htype != 1 || ptype != 0x0800)
		return err_setx(e, ENOMSG, "frame: %s: not Ethernet/IPv4 (htype %u ptype 0x%04x)",
				what, htype, ptype);
	if (hlen != 6 || plen != 4)
		return err_setx(e, EBADMSG, "frame: %s: bad address lengths (hlen %u plen %u)",
				what, hlen, plen);
	if (!cur_ptr(c, 6, &sha) || !cur_ptr(c, 4, &spa) || !cur_ptr(c, 6, &tha) ||
	    !cur_ptr(c, 4, &tpa))
		return err_setx(e, EBADMSG, "frame: %s: truncated (addresses)", what);
	ev->op = op;
	if (rarp) {
		if (op != 3 && op != 4)
			return err_setx(e, ENOMSG, "frame: rarp: op %u is not 3 or 4", op);
		ev->kind = ANN_RARP;
		memcpy(ev->mac, tha, 6);
		return 0;
	}
	if (op != 1 && op != 2)
		return err_setx(e, ENOMSG, "frame: arp: op %u is not 1 or 2", op);
	if (memcmp(spa, tpa, 4) != 0)
		return err_setx(e, ENOMSG, "frame: arp: sender IP differs from target IP");
	ev->kind = ANN_GARP;
	memcpy(ev->mac, sha, 6);
	ev->ip.family = AF_INET;
	memcpy(ev->ip.b, spa, 4);
	return 0;
}

/* One's complement sum of n bytes added to sum (not folded). */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;
	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < n)
		sum += (uint32_t)p[i] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* ICMPv6 checksum sum over the pseudo header and the message (checksum field as is). */
static uint16_t icmp6_sum(const uint8_t *src, const uint8_t *dst, const uint8_t *msg, size_t n)
{
	uint32_t sum = 0;
	sum = csum_add(sum, src, 16);
	sum = csum_add(sum, dst, 16);
	sum += (uint32_t)(n >> 16) + (uint32_t)(n & 0xffff);
	sum += NH_ICMP6;
	sum = csum_add(sum, msg, n);
	return csum_fold(sum);
}

static int parse_ipv6(struct cur *c, const uint8_t *eth_src, struct ann_event *ev,
		      struct err *e)
{
	uint32_t vtcfl;
	uint16_t plen;
	uint8_t nh, hops;
	const uint8_t *src, *dst;

	cur_be32(c, &vtcfl);
	cur_be16(c, &plen);
	cur_u8(c, &nh);
	cur_u8(c, &hops);
	cur_ptr(c, 16, &src);
	cur_ptr(c, 16, &dst);
	if (!cur_ok(c))
		return err_setx(e, ENOMSG, "frame: ipv6: truncated header");
	if (vtcfl >> 28 != 6)
		return err_setx(e, ENOMSG, "frame: ipv6: version %u", vtcfl >> 28);
	if (nh != NH_ICMP6)
		return err_setx(e, ENOMSG, "frame: ipv6: next header %u is not ICMPv6", nh);
	if (plen > cur_left(c)) {
		/* a cut NA is malformed; anything else cut is simply not ours */
		bool na = cur_left(c) > 0 && c->p[c->off] == ICMP6_NA;
		return err_setx(e, na ? EBADMSG : ENOMSG,
				"frame: ipv6: payload length %u past the end (%zu left)", plen,
				cur_left(c));
	}
	struct cur m;
	cur_sub(c, plen, &m);
	const uint8_t *msg = m.p + m.off;
	uint8_t type, code, flags;
	uint16_t sum;
	cur_u8(&m, &type);
	cur_u8(&m, &code);
	cur_be16(&m, &sum);
	if (!cur_ok(&m) || type != ICMP6_NA)
		return err_setx(e, ENOMSG, "frame: icmpv6: not a neighbour advertisement");
	/* from here on it claims to be an NA */
	if (plen < NA_MIN)
		return err_setx(e, EBADMSG, "frame: na: truncated (%u bytes)", plen);
	if (code != 0)
		return err_setx(e, EBADMSG, "frame: na: code %u", code);
	if (hops != 255)
		return err_setx(e, EBADMSG, "frame: na: hop limit %u is not 255", hops);
	if (icmp6_sum(src, dst, msg, plen) != 0xffff)
		return err_setx(e, EBADMSG, "frame: na: bad checksum 0x%04x", sum);
	cur_u8(&m, &flags);
	cur_skip(&m, 3);
	const uint8_t *target;
	cur_ptr(&m, 16, &target);
	if (flags & ANN_NA_SOLICITED)
		return err_setx(e, ENOMSG, "frame: na: solicited");
	bool have_tlla = false;
	while (cur_left(&m) > 0) {
		uint8_t otype, olen;
		cur_u8(&m, &otype);
		cur_u8(&m, &olen);
		if (!cur_ok(&m) || olen == 0)
			return err_setx(e, EBADMSG, "frame: na: option %u: bad length", otype);
		const uint8_t *val;
		if (!cur_ptr(&m, (size_t)olen * 8 - 2, &val))
			return err_setx(e, EBADMSG, "frame: na: option %u: truncated", otype);
		if (otype == OPT_TLLA && olen == 1 && !have_tlla) {
			memcpy(ev->mac, val, 6);
			have_tlla = true;
		}
	}
	if (!have_tlla)
		memcpy(ev->mac, eth_src, 6);
	ev->kind = ANN_NA;
	ev->op = 0;
	ev->na_flags = flags;
	ev->ip.family = AF_INET6;
	memcpy(ev->ip.b, target, 16);
	return 0;
}

int ann_parse(const uint8_t *frame, size_t len, struct ann_event *ev, struct err *e)
{
	struct cur c;
	const uint8_t *src;
	uint16_t type;

	ev->kind = ANN_GARP;
	ev->op = 0;
	ev->na_flags = 0;
	memset(ev->mac, 0, sizeof(ev->mac));
	memset(ev->src_mac, 0, sizeof(ev->src_mac));
	memset(&ev->ip, 0, sizeof(ev->ip));
	ev->has_vlan = false;
	ev->vlan = 0;

	cur_init(&c, frame, len);
	cur_skip(&c, 6);
	cur_ptr(&c, 6, &src);
	cur_be16(&c, &type);
	if (!cur_ok(&c))
		return err_setx(e, ENOMSG, "frame: shorter than an Ethernet header (%zu bytes)",
				len);
	memcpy(ev->src_mac, src, 6);
	if (type == ANN_ETH_P_8021Q || type == ANN_ETH_P_8021AD) {
		uint16_t tci;
		cur_be16(&c, &tci);
		cur_be16(&c, &type);
		if (!cur_ok(&c))
			return err_setx(e, ENOMSG, "frame: truncated VLAN tag");
		ev->has_vlan = true;
		ev->vlan = tci & 0x0fff;
	}
	switch (type) {
	case ANN_ETH_P_ARP:
		return parse_arp(&c, false, ev, e);
	case ANN_ETH_P_RARP:
		return parse_arp(&c, true, ev, e);
	case ANN_ETH_P_IPV6:
		return parse_ipv6(&c, src, ev, e);
	}
	return err_setx(e, ENOMSG, "frame: EtherType 0x%04x is no announcement", type);
}

/* Ethernet header + ARP body shared by the GARP and RARP builders. */
static int build_arp(uint8_t *buf, size_t cap, uint16_t ethertype, uint16_t op,
		     const uint8_t sha[6], const uint8_t spa[4], const uint8_t tha[6],
		     const uint8_t tpa[4])
{
	struct wcur w;
	wcur_init(&w, buf, cap);
	wcur_bytes(&w, bcast, 6);
	wcur_bytes(&w, sha, 6);
	wcur_be16(&w, ethertype);
	wcur_be16(&w, 1);
	wcur_be16(&w, 0x0800);
	wcur_u8(&w, 6);
	wcur_u8(&w, 4);
	wcur_be16(&w, op);
	wcur_bytes(&w, sha, 6);
	wcur_bytes(&w, spa, 4);
	wcur_bytes(&w, tha, 6);
	wcur_bytes(&w, tpa, 4);
	wcur_zero(&w, 60 - (ETH_HLEN_ + ARP_BODY));
	return wcur_ok(&w) ? (int)w.off : -ENOSPC;
}

int ann_build_garp(uint8_t *buf, size_t cap, const uint8_t mac[6], const struct ip_addr *ip,
		   bool reply)
{
	static const uint8_t zero[6];
	if (ip->family != AF_INET)
		return -EINVAL;
	return build_arp(buf, cap, ANN_ETH_P_ARP, reply ? 2 : 1, mac, ip->b, reply ? mac : zero,
			 ip->b);
}

int ann_build_rarp(uint8_t *buf, size_t cap, const uint8_t mac[6])
{
	static const uint8_t zero[4];
	return build_arp(buf, cap, ANN_ETH_P_RARP, 3, mac, zero, mac, zero);
}

int ann_build_na(uint8_t *buf, size_t cap, const uint8_t mac[6], const struct ip_addr *ip)
{
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	const uint16_t plen = NA_MIN + 8;
	struct wcur w;
	uint8_t *msg, *sum;

	if (ip->family != AF_INET6)
		return -EINVAL;
	wcur_init(&w, buf, cap);
	wcur_bytes(&w, all_nodes_mac, 6);
	wcur_bytes(&w, mac, 6);
	wcur_be16(&w, ANN_ETH_P_IPV6);
	wcur_be32(&w, 0x60000000);
	wcur_be16(&w, plen);
	wcur_u8(&w, NH_ICMP6);
	wcur_u8(&w, 255);
	wcur_bytes(&w, ip->b, 16);
	wcur_bytes(&w, all_nodes, 16);
	if (!wcur_reserve(&w, plen, &msg))
		return -ENOSPC;
	struct wcur m;
	wcur_init(&m, msg, plen);
	wcur_u8(&m, ICMP6_NA);
	wcur_u8(&m, 0);
	wcur_reserve(&m, 2, &sum);
	wcur_u8(&m, ANN_NA_OVERRIDE);
	wcur_zero(&m, 3);
	wcur_bytes(&m, ip->b, 16);
	wcur_u8(&m, OPT_TLLA);
	wcur_u8(&m, 1);
	wcur_bytes(&m, mac, 6);
	if (!wcur_ok(&m))
		return -ENOSPC;
	sum[0] = sum[1] = 0;
	uint16_t s = (uint16_t)~icmp6_sum(ip->b, all_nodes, msg, plen);
	sum[0] = (uint8_t)(s >> 8);
	sum[1] = (uint8_t)s;
	return (int)w.off;
}

const char *ann_mac_fmt(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

bool ann_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t out[6];
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (i < 5 && *s++ != ':')
			return false;
	}
	if (*s != '\0')
		return false;
	memcpy(mac, out, 6);
	return true;
}
