/* packet — AF_PACKET capture of announcements and their sender; see packet.h. */
#include "net/packet.h"

#include "lib/err.h"

#include <errno.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct pkt_sock {
	int fd;			      /* the AF_PACKET socket */
	int ifindex;		      /* bound interface; 0 = all */
	bool want_outgoing;	      /* PKT_F_OUTGOING given */
	bool filter_outgoing;	      /* kernel lacks PACKET_IGNORE_OUTGOING: drop them here */
	struct pkt_stats st;	      /* counters (dropped: summed from PACKET_STATISTICS) */
	uint8_t buf[PKT_SNAPLEN + 4]; /* the last frame, with room to put a VLAN tag back */
};

/* The classic-BPF program (see packet.h). X holds the offset a VLAN tag adds. Each label
 * names the slot of the instruction it stands for; a jump offset counts from the next
 * instruction, hence OFF(to, from). A load past the end of the frame drops it. */
enum {
	L_LDX0,
	L_LD_TYPE0,
	L_IS_8021Q,
	L_IS_8021AD,
	L_SETX4,
	L_LD_TYPE,
	L_IS_RARP,
	L_IS_ARP,
	L_LD_HWPROTO,
	L_IS_ETH_IP4,
	L_LD_TPA,
	L_ST_TPA,
	L_LD_SPA,
	L_LDX_TPA,
	L_SPA_IS_TPA,
	L_IS_IP6,
	L_LD_NH,
	L_IS_ICMP6,
	L_LD_ICMP6_TYPE,
	L_IS_NA,
	L_LD_NA_FLAGS,
	L_S_SET,
	L_ACCEPT,
	L_DROP,
	L_LEN,
};
#define OFF(to, from) ((to) - (from)-1)
#define JEQ(k, t, f, at) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), OFF(t, at), OFF(f, at))
#define LD_IND(size, off) BPF_STMT(BPF_LD | (size) | BPF_IND, (off))

static void filter_fill(struct sock_filter *f)
{
	const struct sock_filter prog[L_LEN] = {
		[L_LDX0] = BPF_STMT(BPF_LDX | BPF_IMM, 0),
		[L_LD_TYPE0] = BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		[L_IS_8021Q] = JEQ(ANN_ETH_P_8021Q, L_SETX4, L_IS_8021AD, L_IS_8021Q),
		[L_IS_8021AD] = JEQ(ANN_ETH_P_8021AD, L_SETX4, L_LD_TYPE, L_IS_8021AD),
		[L_SETX4] = BPF_STMT(BPF_LDX | BPF_IMM, 4),
		[L_LD_TYPE] = LD_IND(BPF_H, 12),
		[L_IS_RARP] = JEQ(ANN_ETH_P_RARP, L_ACCEPT, L_IS_ARP, L_IS_RARP),
		[L_IS_ARP] = JEQ(ANN_ETH_P_ARP, L_LD_HWPROTO, L_IS_IP6, L_IS_ARP),
		/* ARP body at 14: htype 1 + ptype 0x0800 as one word; spa at +14, tpa at +24 */
		[L_LD_HWPROTO] = LD_IND(BPF_W, 14),
		[L_IS_ETH_IP4] = JEQ(0x00010800, L_LD_TPA, L_DROP, L_IS_ETH_IP4),
		[L_LD_TPA] = LD_IND(BPF_W, 14 + 24),
		[L_ST_TPA] = BPF_STMT(BPF_ST, 0),
		[L_LD_SPA] = LD_IND(BPF_W, 14 + 14),
		[L_LDX_TPA] = BPF_STMT(BPF_LDX | BPF_MEM, 0),
		[L_SPA_IS_TPA] = BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, OFF(L_ACCEPT, L_SPA_IS_TPA),
					  OFF(L_DROP, L_SPA_IS_TPA)),
		/* IPv6 header at 14: next header at +6; ICMPv6 at +40: type, flags at +4 */
		[L_IS_IP6] = JEQ(ANN_ETH_P_IPV6, L_LD_NH, L_DROP, L_IS_IP6),
		[L_LD_NH] = LD_IND(BPF_B, 14 + 6),
		[L_IS_ICMP6] = JEQ(58, L_LD_ICMP6_TYPE, L_DROP, L_IS_ICMP6),
		[L_LD_ICMP6_TYPE] = LD_IND(BPF_B, 14 + 40),
		[L_IS_NA] = JEQ(136, L_LD_NA_FLAGS, L_DROP, L_IS_NA),
		[L_LD_NA_FLAGS] = LD_IND(BPF_B, 14 + 40 + 4),
		[L_S_SET] = BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, ANN_NA_SOLICITED,
				     OFF(L_DROP, L_S_SET), OFF(L_ACCEPT, L_S_SET)),
		[L_ACCEPT] = BPF_STMT(BPF_RET | BPF_K, 0x40000),
		[L_DROP] = BPF_STMT(BPF_RET | BPF_K, 0),
	};
	memcpy(f, prog, sizeof(prog));
}

struct pkt_sock *pkt_open(int ifindex, unsigned flags, struct err *e)
{
	struct pkt_sock *s = calloc(1, sizeof(*s));
	struct sock_filter insns[L_LEN];
	struct sock_fprog prog = {.len = L_LEN, .filter = insns};
	const int one = 1;

	if (!s) {
		err_set(e, ENOMEM, "capture: alloc");
		return NULL;
	}
	s->ifindex = ifindex;
	s->want_outgoing = flags & PKT_F_OUTGOING;
	/* protocol 0: no frame is queued before bind, i.e. before the filter is on */
	s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		err_set(e, errno, "capture dev %d: socket", ifindex);
		goto fail_alloc;
	}
	filter_fill(insns);
	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		err_set(e, errno, "capture dev %d: attach filter", ifindex);
		goto fail_sock;
	}
	if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0 ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0) {
		err_set(e, errno, "capture dev %d: setsockopt", ifindex);
		goto fail_sock;
	}
	if (!s->want_outgoing &&
	    setsockopt(s->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
		if (errno != ENOPROTOOPT) {
			err_set(e, errno, "capture dev %d: ignore outgoing", ifindex);
			goto fail_sock;
		}
		s->filter_outgoing = true;
	}
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	if (bind(s->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err_set(e, errno, "capture dev %d: bind", ifindex);
		goto fail_sock;
	}
	return s;
fail_sock:
	close(s->fd);
fail_alloc:
	free(s);
	return NULL;
}

int pkt_fd(const struct pkt_sock *s)
{
	return s->fd;
}

void pkt_close(struct pkt_sock *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

/* Name of ifindex in the socket's namespace (SIOCGIFNAME on the socket itself, not on
 * a new one that could live in the caller's namespace); "" when it is gone. */
static void ifname_of(int fd, int ifindex, char out[ANN_IFNAMSZ])
{
	struct ifreq ifr = {.ifr_ifindex = ifindex};
	out[0] = '\0';
	if (ioctl(fd, SIOCGIFNAME, &ifr) == 0) {
		memcpy(out, ifr.ifr_name, ANN_IFNAMSZ);
		out[ANN_IFNAMSZ - 1] = '\0';
	}
}

int pkt_next(struct pkt_sock *s, struct ann_event *ev, struct pkt_frame *frame, struct err *e)
{
	for (;;) {
		union {
			struct cmsghdr align;
			uint8_t b[CMSG_SPACE(sizeof(struct timespec)) +
				  CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} ctl;
		struct sockaddr_ll sll;
		/* leave 4 bytes in front: a VLAN tag put back moves the MACs there */
		struct iovec iov = {.iov_base = s->buf + 4, .iov_len = PKT_SNAPLEN};
		struct msghdr mh = {
			.msg_name = &sll,
			.msg_namelen = sizeof(sll),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.b,
			.msg_controllen = sizeof(ctl.b),
		};
		ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return err_set(e, errno, "capture dev %d: receive", s->ifindex);
		}
		if (s->filter_outgoing && sll.sll_pkttype == PACKET_OUTGOING)
			continue;
		struct timespec ts = {0, 0};
		bool vlan = false;
		uint16_t tci = 0, tpid = ANN_ETH_P_8021Q;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(ts))) {
				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			} else if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
				   c->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata))) {
				struct tpacket_auxdata aux;
				memcpy(&aux, CMSG_DATA(c), sizeof(aux));
				if (aux.tp_status & TP_STATUS_VLAN_VALID) {
					vlan = true;
					tci = aux.tp_vlan_tci;
					if (aux.tp_status & TP_STATUS_VLAN_TPID_VALID)
						tpid = aux.tp_vlan_tpid;
				}
			}
		}
		size_t len = (size_t)n;
		size_t cap = len < PKT_SNAPLEN ? len : PKT_SNAPLEN;
		uint8_t *data = s->buf + 4;
		if (vlan && cap >= 12) {
			/* dst+src move 4 bytes forward; the tag goes where they were */
			memmove(s->buf, s->buf + 4, 12);
			data = s->buf;
			data[12] = (uint8_t)(tpid >> 8);
			data[13] = (uint8_t)tpid;
			data[14] = (uint8_t)(tci >> 8);
			data[15] = (uint8_t)tci;
			cap += 4;
			len += 4;
		}
		int rc = ann_parse(data, cap, ev, NULL);
		if (rc == -EBADMSG) {
			s->st.malformed++;
			continue;
		}
		if (rc < 0) {
			s->st.ignored++;
			continue;
		}
		s->st.events++;
		ev->ifindex = sll.sll_ifindex;
		ifname_of(s->fd, sll.sll_ifindex, ev->ifname);
		ev->ts = ts;
		if (frame) {
			frame->data = data;
			frame->caplen = cap;
			frame->len = len;
			frame->ts = ts;
			frame->ifindex = sll.sll_ifindex;
		}
		return 1;
	}
}

int pkt_stats(struct pkt_sock *s, struct pkt_stats *out, struct err *e)
{
	struct tpacket_stats ks;
	socklen_t len = sizeof(ks);
	/* reading the kernel counters resets them: keep the sum */
	if (getsockopt(s->fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len) < 0)
		return err_set(e, errno, "capture dev %d: statistics", s->ifindex);
	s->st.dropped += ks.tp_drops;
	*out = s->st;
	return 0;
}

/* SIOCGIFNAME + SIOCGIFHWADDR on fd (whose namespace counts). */
static int ifmac_on(int fd, int ifindex, uint8_t mac[6], struct err *e)
{
	struct ifreq ifr = {.ifr_ifindex = ifindex};
	if (ioctl(fd, SIOCGIFNAME, &ifr) < 0)
		return err_set(e, errno == ENXIO ? ENODEV : errno, "dev %d: name", ifindex);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return err_set(e, errno, "dev %s: hardware address", ifr.ifr_name);
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return err_setx(e, EOPNOTSUPP, "dev %s: no Ethernet address (type %u)",
				ifr.ifr_name, ifr.ifr_hwaddr.sa_family);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

int pkt_ifmac(int ifindex, uint8_t mac[6], struct err *e)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "dev %d: socket", ifindex);
	int rc = ifmac_on(fd, ifindex, mac, e);
	close(fd);
	return rc;
}

int pkt_announce_send(const struct pkt_announce *a, struct err *e)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t all_nodes[6] = {0x33, 0x33, 0, 0, 0, 1};
	uint8_t frame[ANN_FRAME_MAX], mac[6];
	char what[IP_STRLEN + 8];
	int len = -EINVAL, rc;

	if (a->kind == ANN_RARP)
		snprintf(what, sizeof(what), "rarp");
	else
		ip_fmt(&a->ip, what);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "announce %s dev %d: socket", what, a->ifindex);
	if (a->mac) {
		memcpy(mac, a->mac, 6);
	} else if ((rc = ifmac_on(fd, a->ifindex, mac, e)) < 0) {
		err_prefix(e, "announce %s", what);
		goto out;
	}
	switch (a->kind) {
	case ANN_GARP:
		len = ann_build_garp(frame, sizeof(frame), mac, &a->ip, a->arp_reply);
		break;
	case ANN_NA:
		len = ann_build_na(frame, sizeof(frame), mac, &a->ip);
		break;
	case ANN_RARP:
		len = ann_build_rarp(frame, sizeof(frame), mac);
		break;
	}
	if (len < 0) {
		rc = err_setx(e, -len, "announce %s dev %d: %s needs an %s address", what,
			      a->ifindex, ann_kind_name(a->kind),
			      a->kind == ANN_NA ? "IPv6" : "IPv4");
		goto out;
	}
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = a->ifindex,
		.sll_halen = 6,
		.sll_protocol = htons((uint16_t)(frame[12] << 8 | frame[13])),
	};
	memcpy(sll.sll_addr, a->kind == ANN_NA ? all_nodes : bcast, 6);
	if (sendto(fd, frame, (size_t)len, 0, (struct sockaddr *)&sll, sizeof(sll)) != len) {
		rc = err_set(e, errno, "announce %s dev %d: send", what, a->ifindex);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}
