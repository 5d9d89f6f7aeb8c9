/* announce — what a host or a VM says on the wire when it appears somewhere: gratuitous
 * ARP, RARP and unsolicited IPv6 neighbour advertisements. A pure parser (one Ethernet
 * frame as an AF_PACKET SOCK_RAW socket delivers it -> one event) and pure frame builders
 * for the sender. No I/O here (net/packet.h does the sockets); fuzzed (fuzz-announce).
 *
 * What counts as an announcement (anything else is -ENOMSG):
 *
 *   Ethernet  dst(6) src(6) [0x8100|0x88a8 TCI(2)] type(2)
 *
 *   GARP   type 0x0806: htype 1, ptype 0x0800, hlen 6, plen 4, op 1 (request) or
 *          2 (reply), sender IP == target IP.            -> mac = sender hw, ip = sender IP
 *          +------+------+----+----+----+-----+-----+-----+-----+
 *          |htype |ptype |hlen|plen| op | sha | spa | tha | tpa |   (28 bytes)
 *          +------+------+----+----+----+-----+-----+-----+-----+
 *   RARP   type 0x8035, same layout, hlen 6, op 3 (request reverse, what QEMU's
 *          self-announce sends) or 4 (reply reverse). Keyed by MAC: no IP.
 *                                                          -> mac = target hw (tha)
 *   NA     type 0x86dd: IPv6 version 6, next header 58 directly (no extension headers),
 *          hop limit 255; ICMPv6 type 136 code 0, valid checksum, S flag clear.
 *          +------+------+--------+-----------+---------------+--------------------+
 *          | type | code | cksum  | R S O rsv | target (16)   | options (TLV, x8)  |
 *          +------+------+--------+-----------+---------------+--------------------+
 *          Options are walked; a zero-length option is malformed. Target link-layer
 *          address option (type 2, 6-byte MAC) when present, else the Ethernet source.
 *                                                          -> mac, ip = target
 *
 * At most one VLAN tag (802.1Q or 802.1ad) is accepted before the EtherType; trailing
 * bytes after the ARP body or after the IPv6 payload (Ethernet padding) are ignored.
 */
#ifndef KVNET_NET_ANNOUNCE_H
#define KVNET_NET_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/addr.h"

struct err;

#define ANN_ETH_P_ARP 0x0806
#define ANN_ETH_P_RARP 0x8035
#define ANN_ETH_P_IPV6 0x86dd
#define ANN_ETH_P_8021Q 0x8100
#define ANN_ETH_P_8021AD 0x88a8

/* NA flag bits (the first byte after the ICMPv6 checksum). */
#define ANN_NA_ROUTER 0x80
#define ANN_NA_SOLICITED 0x40
#define ANN_NA_OVERRIDE 0x20

/* Longest interface name plus its NUL (IFNAMSIZ). */
#define ANN_IFNAMSZ 16

/* Bytes a frame built by ann_build_* takes at most (NA with its option). */
#define ANN_FRAME_MAX 96

enum ann_kind {
	ANN_GARP, /* gratuitous ARP (request or reply: see op) */
	ANN_RARP, /* reverse ARP (keyed by MAC) */
	ANN_NA,	  /* unsolicited IPv6 neighbour advertisement */
};

/* One announcement seen on an interface (or read from a capture file). */
struct ann_event {
	int ifindex;		  /* interface it arrived on; 0 when not known (pcap) */
	char ifname[ANN_IFNAMSZ]; /* its name; "" when not known */
	enum ann_kind kind;	  /* what was announced */
	uint16_t op;		  /* ARP/RARP opcode (1, 2 / 3, 4); 0 for NA */
	uint8_t na_flags;	  /* NA: ANN_NA_* bits as sent; 0 otherwise */
	uint8_t mac[6];		  /* the announced hardware address (see above) */
	uint8_t src_mac[6];	  /* the Ethernet source address of the frame */
	struct ip_addr ip;	  /* announced IP; family 0 for RARP */
	bool has_vlan;		  /* the frame carried a VLAN tag */
	uint16_t vlan;		  /* its VLAN id (12 bits) when has_vlan */
	struct timespec ts;	  /* kernel receive time (CLOCK_REALTIME) or the pcap time */
};

/* "garp", "rarp" or "na". */
const char *ann_kind_name(enum ann_kind kind);

/* Parse one Ethernet frame (len bytes, starting at the destination MAC). On success
 * fills kind, op, na_flags, mac, src_mac, ip, has_vlan, vlan of *ev (the caller sets
 * ifindex, ifname, ts) and returns 0. A frame that is well-formed but no announcement
 * (other EtherType, ordinary ARP, solicited NA, ...) is -ENOMSG; a frame that claims to be
 * one of the three kinds but is truncated or inconsistent (short ARP body, bad hlen,
 * IPv6 payload past the end, bad checksum, zero-length option) is -EBADMSG. e (may be
 * NULL) says why: "frame: arp: truncated (40 bytes)". Never reads outside frame. */
int ann_parse(const uint8_t *frame, size_t len, struct ann_event *ev, struct err *e);

/* Build a gratuitous ARP for ip (AF_INET) from mac into buf (cap bytes): Ethernet
 * broadcast, sender IP == target IP; reply = false gives op 1 with target hw 0,
 * reply = true op 2 with target hw = mac. Padded to the 60-byte Ethernet minimum.
 * Returns the frame length, or -EINVAL (not IPv4) / -ENOSPC (cap too small). */
int ann_build_garp(uint8_t *buf, size_t cap, const uint8_t mac[6], const struct ip_addr *ip,
		   bool reply);

/* Build an unsolicited neighbour advertisement for ip (AF_INET6) from mac into buf:
 * Ethernet 33:33:00:00:00:01, IPv6 from ip to ff02::1, hop limit 255, flags Override
 * only, target ip, target link-layer address option = mac, checksum filled. Returns the
 * frame length (86), or -EINVAL (not IPv6) / -ENOSPC. */
int ann_build_na(uint8_t *buf, size_t cap, const uint8_t mac[6], const struct ip_addr *ip);

/* Build a RARP request-reverse (op 3) for mac (sender hw = target hw = mac, IPs 0.0.0.0,
 * Ethernet broadcast), like QEMU's self-announce. Padded to 60 bytes. Returns the frame
 * length or -ENOSPC. */
int ann_build_rarp(uint8_t *buf, size_t cap, const uint8_t mac[6]);

/* Format a MAC as "aa:bb:cc:dd:ee:ff" into buf (18 bytes) and return buf. */
const char *ann_mac_fmt(const uint8_t mac[6], char *buf);

/* Parse "aa:bb:cc:dd:ee:ff" (hex digits, either case, exactly six pairs). */
bool ann_mac_parse(const char *s, uint8_t mac[6]);

#endif
