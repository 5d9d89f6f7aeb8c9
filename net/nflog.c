/* nflog — NFULNL packets (see nflog.h). */
#include "net/nflog.h"

#include "lib/cursor.h"
#include "lib/err.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define GENLEN 4 /* struct nfgenmsg */

/* ---- bind ------------------------------------------------------------------------ */

static int config(struct nl_sock *s, uint16_t group, uint8_t cmd, const void *mode,
		  uint32_t qthresh, struct err *e)
{
	uint8_t buf[128];
	struct nl_msg m;
	struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0,
			      .res_id = htons(group) };
	nl_msg_init(&m, buf, sizeof(buf), (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, 0);
	nl_put_fam(&m, &g, sizeof(g));
	if (cmd) {
		struct nfulnl_msg_config_cmd c = { .command = cmd };
		nl_put(&m, NFULA_CFG_CMD, &c, sizeof(c));
	}
	if (mode)
		nl_put(&m, NFULA_CFG_MODE, mode, sizeof(struct nfulnl_msg_config_mode));
	if (qthresh)
		nl_put_u32(&m, NFULA_CFG_QTHRESH, htonl(qthresh));
	return nl_request(s, &m, NULL, NULL, e);
}

int nflog_bind(struct nl_sock *s, uint16_t group, uint32_t copy_range, struct err *e)
{
	int rc = config(s, group, NFULNL_CFG_CMD_BIND, NULL, 0, e);
	if (rc < 0)
		return err_prefix(e, "nflog: bind group %u%s", group,
				  rc == -EBUSY ? " (another listener has it)" : ""),
		       rc;
	struct nfulnl_msg_config_mode md = { .copy_range = htonl(copy_range),
					     .copy_mode = NFULNL_COPY_PACKET };
	/* one packet per message, sent at once: the kernel's default batches up to 100
	 * and holds the last ones back for up to a second */
	rc = config(s, group, 0, &md, 1, e);
	if (rc < 0)
		return err_prefix(e, "nflog: group %u: copy mode", group), rc;
	return 0;
}

/* ---- parser ---------------------------------------------------------------------- */

static const struct nl_pol pkt_pol[NFULA_MAX + 1] = {
	[NFULA_PACKET_HDR] = { NL_A_UNSPEC, 4 },
	[NFULA_PREFIX] = { NL_A_STR, 0 },
	[NFULA_IFINDEX_INDEV] = { NL_A_U32, 0 },
	[NFULA_IFINDEX_OUTDEV] = { NL_A_U32, 0 },
	[NFULA_PAYLOAD] = { NL_A_UNSPEC, 0 },
};

/* Ports of a TCP/UDP/SCTP/UDP-Lite header at c (0 without). */
static void l4(struct cur *c, struct nflog_pkt *p)
{
	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_UDPLITE:
		p->has_ports = cur_be16(c, &p->sport) && cur_be16(c, &p->dport);
		if (!p->has_ports)
			p->sport = p->dport = 0;
		break;
	default:
		break;
	}
}

static int ipv4(struct cur *c, struct nflog_pkt *p, struct err *e)
{
	uint8_t vihl, tos, ttl, proto;
	uint16_t tot, id, frag, sum;
	if (!cur_u8(c, &vihl) || !cur_u8(c, &tos) || !cur_be16(c, &tot) || !cur_be16(c, &id) ||
	    !cur_be16(c, &frag) || !cur_u8(c, &ttl) || !cur_u8(c, &proto) || !cur_be16(c, &sum))
		return err_setx(e, EBADMSG, "nflog: IPv4 header cut short");
	size_t ihl = (size_t)(vihl & 0xf) * 4;
	if (ihl < 20)
		return err_setx(e, EBADMSG, "nflog: IPv4 header length %zu", ihl);
	p->src.family = p->dst.family = AF_INET;
	if (!cur_copy(c, p->src.b, 4) || !cur_copy(c, p->dst.b, 4) || !cur_skip(c, ihl - 20))
		return err_setx(e, EBADMSG, "nflog: IPv4 header cut short");
	p->proto = proto;
	p->len = tot;
	if ((frag & 0x1fff) == 0) /* a later fragment carries no transport header */
		l4(c, p);
	return 0;
}

static int ipv6(struct cur *c, struct nflog_pkt *p, struct err *e)
{
	uint32_t vtf;
	uint16_t plen;
	uint8_t nh, hop;
	if (!cur_be32(c, &vtf) || !cur_be16(c, &plen) || !cur_u8(c, &nh) || !cur_u8(c, &hop))
		return err_setx(e, EBADMSG, "nflog: IPv6 header cut short");
	p->src.family = p->dst.family = AF_INET6;
	if (!cur_copy(c, p->src.b, 16) || !cur_copy(c, p->dst.b, 16))
		return err_setx(e, EBADMSG, "nflog: IPv6 header cut short");
	p->len = 40u + plen;
	/* extension headers: hop-by-hop, routing, fragment, destination options (at most
	 * a few; each is read within the copy or the ports stay unknown) */
	for (int k = 0; k < 8; k++) {
		uint8_t next, hl;
		uint16_t off;
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (!cur_u8(c, &next) || !cur_u8(c, &hl) || !cur_skip(c, (size_t)hl * 8 + 6)) {
				p->proto = nh;
				return 0;
			}
			nh = next;
			continue;
		case IPPROTO_FRAGMENT:
			if (!cur_u8(c, &next) || !cur_skip(c, 1) || !cur_be16(c, &off) ||
			    !cur_skip(c, 4)) {
				p->proto = nh;
				return 0;
			}
			p->proto = next;
			if ((off & 0xfff8) != 0)
				return 0; /* a later fragment */
			nh = next;
			continue;
		default:
			break;
		}
		break;
	}
	p->proto = nh;
	l4(c, p);
	return 0;
}

int nflog_parse(const struct nl_msgv *m, struct nflog_pkt *p, struct err *e)
{
	struct nfgenmsg g;
	struct nl_attr tb[NFULA_MAX + 1];
	memset(p, 0, sizeof(*p));
	if (m->type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return -ENOMSG;
	if (m->len < GENLEN)
		return err_setx(e, EBADMSG, "nflog: packet message of %zu bytes", m->len);
	int rc = nl_msg_parse(m, &g, sizeof(g), pkt_pol, NFULA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "nflog"), rc;
	p->group = ntohs(g.res_id);
	if (nl_attr_has(&tb[NFULA_PACKET_HDR]))
		p->hook = tb[NFULA_PACKET_HDR].p[2];
	const char *pfx = nl_attr_str(&tb[NFULA_PREFIX]);
	if (pfx) {
		size_t l = strlen(pfx);
		if (l >= sizeof(p->prefix))
			return err_setx(e, EBADMSG, "nflog: prefix of %zu bytes", l);
		memcpy(p->prefix, pfx, l + 1);
	}
	uint32_t v;
	if (nl_attr_u32(&tb[NFULA_IFINDEX_INDEV], &v))
		p->indev = ntohl(v);
	if (nl_attr_u32(&tb[NFULA_IFINDEX_OUTDEV], &v))
		p->outdev = ntohl(v);
	if (!nl_attr_has(&tb[NFULA_PAYLOAD]))
		return err_setx(e, EBADMSG, "nflog: packet without payload");
	struct cur c;
	cur_init(&c, tb[NFULA_PAYLOAD].p, tb[NFULA_PAYLOAD].len);
	uint8_t ver = tb[NFULA_PAYLOAD].len ? tb[NFULA_PAYLOAD].p[0] >> 4 : 0;
	if (ver == 4)
		return ipv4(&c, p, e);
	if (ver == 6)
		return ipv6(&c, p, e);
	return err_setx(e, EBADMSG, "nflog: payload is neither IPv4 nor IPv6 (version %u)", ver);
}

/* nflog_parse_buf's walk: one packet message to the callback. */
struct buf_walk {
	nflog_cb cb; /* the caller's callback */
	void *arg;   /* its argument */
	int count;   /* packets handed over */
};

static int buf_one(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct buf_walk *w = arg;
	struct nflog_pkt p;
	int rc = nflog_parse(m, &p, e);
	if (rc == -ENOMSG)
		return 0;
	if (rc < 0)
		return rc;
	w->count++;
	return w->cb(&p, w->arg) != 0 ? 1 : 0;
}

int nflog_parse_buf(const void *buf, size_t len, nflog_cb cb, void *arg, struct err *e)
{
	struct buf_walk w = { .cb = cb, .arg = arg };
	int rc = nl_datagram_walk(buf, len, "nflog", buf_one, &w, e);
	return rc < 0 ? rc : w.count;
}
