/* packet — capture of announcements (GARP / RARP / unsolicited NA) with one AF_PACKET
 * socket, and the sender of announcements. The frame parser is net/announce.h.
 *
 *   struct pkt_sock *s = pkt_open(0, 0, &e);       // every interface of this netns
 *   ev_io_add(loop, pkt_fd(s), EPOLLIN, on_readable, ...);
 *   ...in on_readable:
 *   struct ann_event ev;
 *   while ((rc = pkt_next(s, &ev, NULL, &e)) == 1)
 *           handle(&ev);                            // ev.ifindex says where it came from
 *   pkt_close(s);
 *
 * The socket is SOCK_RAW (frames from the Ethernet header on), non-blocking and CLOEXEC.
 * It lives in the network namespace of the thread that calls pkt_open (use netns_run
 * to open it elsewhere); bound to one interface (ifindex > 0) or to all of them (0).
 * A classic-BPF filter in the kernel passes only the candidates (the socket is bound
 * only after the filter is attached, so nothing unfiltered is ever queued):
 *
 *   [802.1Q/802.1ad tag]  ARP with sender IP == target IP and htype/ptype Ethernet/IPv4
 *                         any RARP (0x8035)
 *                         IPv6, next header 58, ICMPv6 type 136, S flag clear
 *
 * and every frame that passes is checked by ann_parse in userspace. The kernel usually
 * strips the VLAN tag of a received frame into metadata before AF_PACKET sees it;
 * PACKET_AUXDATA brings it back and pkt_next puts the tag back into the frame, so
 * frames look as they did on the wire (libpcap does the same). Receive timestamps are
 * the kernel's (SO_TIMESTAMPNS, CLOCK_REALTIME). Frames the host itself sends are
 * ignored (PACKET_IGNORE_OUTGOING, or by packet type on kernels without it) unless
 * PKT_F_OUTGOING is given.
 */
#ifndef KVNET_NET_PACKET_H
#define KVNET_NET_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/addr.h"
#include "net/announce.h"

struct err;
struct pkt_sock;

/* pkt_open flags. */
#define PKT_F_OUTGOING 0x1u /* also see frames this host sends */

/* Largest frame kept whole; longer frames are cut (caplen < len). */
#define PKT_SNAPLEN 2048

/* A received frame as it was matched (valid until the next pkt_next or pkt_close). */
struct pkt_frame {
	const uint8_t *data; /* the frame from the destination MAC, VLAN tag put back */
	size_t caplen;	     /* bytes at data */
	size_t len;	     /* length on the wire (caplen unless cut at PKT_SNAPLEN) */
	struct timespec ts;  /* kernel receive time (CLOCK_REALTIME) */
	int ifindex;	     /* interface it arrived on */
};

/* Counters since pkt_open. */
struct pkt_stats {
	uint64_t events;    /* announcements returned by pkt_next */
	uint64_t ignored;   /* frames the filter passed that ann_parse called no announcement */
	uint64_t malformed; /* frames ann_parse rejected as malformed (-EBADMSG) */
	uint64_t dropped;   /* frames the kernel dropped for a full receive queue */
};

/* Open the capture socket on interface ifindex (0 = every interface of the calling
 * thread's network namespace). flags: PKT_F_*. Returns the socket, or NULL with e =
 * "capture dev 7: bind: No such device" (needs CAP_NET_RAW: EPERM otherwise). */
struct pkt_sock *pkt_open(int ifindex, unsigned flags, struct err *e);

/* The socket's fd, for epoll (EPOLLIN). Do not read it directly, do not close it. */
int pkt_fd(const struct pkt_sock *s);

/* Read queued frames until one is an announcement: fill *ev (ifindex, ifname, ts too)
 * and, when frame is not NULL, *frame; return 1. Frames that are no announcement are
 * counted (pkt_stats) and skipped. Returns 0 when nothing is queued (EAGAIN), or -errno
 * with e on a socket error (e.g. -ENETDOWN after the bound interface went away). */
int pkt_next(struct pkt_sock *s, struct ann_event *ev, struct pkt_frame *frame, struct err *e);

/* Counters, with the kernel's drop count (PACKET_STATISTICS) added in. Returns 0 or
 * -errno with e. */
int pkt_stats(struct pkt_sock *s, struct pkt_stats *out, struct err *e);

/* Close the socket and free s. NULL is ignored. */
void pkt_close(struct pkt_sock *s);

/* One announcement to send. */
struct pkt_announce {
	int ifindex;	    /* interface to send on (in the calling thread's namespace) */
	enum ann_kind kind; /* ANN_GARP (ip must be IPv4), ANN_NA (IPv6) or ANN_RARP */
	struct ip_addr ip;  /* the address announced; ignored for ANN_RARP */
	const uint8_t *mac; /* 6 bytes to announce; NULL = the interface's own MAC */
	bool arp_reply;	    /* ANN_GARP: send the reply form (op 2) instead of a request */
};

/* Send one announcement frame (ann_build_garp / _na / _rarp) on a->ifindex, to the
 * broadcast (ARP, RARP) or all-nodes (NA: 33:33:00:00:00:01, ff02::1) address. Returns
 * 0, or -errno with e = "announce 198.18.0.5 dev 7: send: Network is down" (-EINVAL
 * for an address of the wrong family, -EOPNOTSUPP for an interface without a MAC). */
int pkt_announce_send(const struct pkt_announce *a, struct err *e);

/* The MAC of interface ifindex in the calling thread's namespace. -ENODEV when there
 * is no such interface, -EOPNOTSUPP when it is not an Ethernet-like one. */
int pkt_ifmac(int ifindex, uint8_t mac[6], struct err *e);

#endif
