/* fdb — VXLAN device and FDB entries; see fdb.h. */
#include "net/fdb.h"

#include "lib/err.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define FDB_MSG_BUF 256

static const struct nl_pol fdb_pol[NDA_MAX + 1] = {
	[NDA_DST] = { NL_A_UNSPEC, 4 },
	[NDA_LLADDR] = { NL_A_UNSPEC, 6 },
};

const char *fdb_mac_fmt(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}

void fdb_vxlan_mac(const struct ip_addr *node, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x4b;
	if (node->family == AF_INET6) {
		uint8_t f[4];
		memcpy(f, node->b + 12, 4);
		for (unsigned i = 0; i < 12; i++)
			f[i % 4] ^= node->b[i];
		memcpy(mac + 2, f, 4);
	} else {
		memcpy(mac + 2, node->b, 4);
	}
}

uint32_t fdb_vxlan_mtu(uint32_t underlay_mtu, int family)
{
	uint32_t o = family == AF_INET6 ? FDB_VXLAN_OVERHEAD_V6 : FDB_VXLAN_OVERHEAD_V4;
	if (underlay_mtu < 68 + o)
		return 0;
	return underlay_mtu - o;
}

int fdb_vxlan_add(struct nl_sock *s, const struct fdb_vxlan *v, struct err *e)
{
	uint8_t buf[FDB_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	size_t info, data;
	size_t n = strnlen(v->name, LINK_NAMESZ);
	if (n == 0 || n >= LINK_NAMESZ || strchr(v->name, '/'))
		return err_setx(e, EINVAL, "vxlan '%.*s': invalid name (1 to %d characters)",
				(int)n, v->name, LINK_NAMESZ - 1);
	if (v->vni == 0 || v->vni > 0xffffff)
		return err_setx(e, EINVAL, "vxlan %s: VNI %u out of 1..16777215", v->name, v->vni);
	if (v->local.family != AF_INET && v->local.family != AF_INET6)
		return err_setx(e, EAFNOSUPPORT, "vxlan %s: no local underlay address", v->name);
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, v->name);
	if (v->mtu)
		nl_put_u32(&m, IFLA_MTU, v->mtu);
	nl_put(&m, IFLA_ADDRESS, v->mac, 6);
	nl_nest_begin(&m, IFLA_LINKINFO, &info);
	nl_put_str(&m, IFLA_INFO_KIND, "vxlan");
	nl_nest_begin(&m, IFLA_INFO_DATA, &data);
	nl_put_u32(&m, IFLA_VXLAN_ID, v->vni);
	if (v->underlay > 0)
		nl_put_u32(&m, IFLA_VXLAN_LINK, (uint32_t)v->underlay);
	if (v->local.family == AF_INET)
		nl_put(&m, IFLA_VXLAN_LOCAL, v->local.b, 4);
	else
		nl_put(&m, IFLA_VXLAN_LOCAL6, v->local.b, 16);
	nl_put_u16(&m, IFLA_VXLAN_PORT, htons(v->port));
	nl_put_u8(&m, IFLA_VXLAN_LEARNING, 0);
	nl_nest_end(&m, data);
	nl_nest_end(&m, info);
	int rc = nl_request(s, &m, NULL, NULL, e);
	if (rc < 0)
		err_prefix(e, "vxlan %s: create", v->name);
	return rc;
}

static const struct nl_pol vx_link_pol[IFLA_MAX + 1] = {
	[IFLA_LINKINFO] = { NL_A_NESTED, 0 },
};

static const struct nl_pol vx_info_pol[IFLA_INFO_MAX + 1] = {
	[IFLA_INFO_KIND] = { NL_A_STR, 0 },
	[IFLA_INFO_DATA] = { NL_A_NESTED, 0 },
};

static const struct nl_pol vx_data_pol[IFLA_VXLAN_MAX + 1] = {
	[IFLA_VXLAN_ID] = { NL_A_U32, 0 },
	[IFLA_VXLAN_LINK] = { NL_A_U32, 0 },
	[IFLA_VXLAN_LOCAL] = { NL_A_UNSPEC, 4 },
	[IFLA_VXLAN_LOCAL6] = { NL_A_UNSPEC, 16 },
	[IFLA_VXLAN_PORT] = { NL_A_U16, 0 },
};

int fdb_vxlan_parse(const struct nl_msgv *m, struct fdb_vxlan *out, struct err *e)
{
	struct link_info li;
	struct nl_attr tb[IFLA_MAX + 1], info[IFLA_INFO_MAX + 1], d[IFLA_VXLAN_MAX + 1];
	memset(out, 0, sizeof(*out));
	int rc = link_parse(m, &li, e);
	if (rc < 0)
		return rc;
	if (strcmp(li.kind, "vxlan") != 0)
		return err_setx(e, ENOTSUP, "link %s is a %s link, not vxlan", li.name,
				li.kind[0] ? li.kind : "plain");
	/* link_parse validated the header and the top level; the nests are read here */
	if ((rc = nl_msg_parse(m, NULL, sizeof(struct ifinfomsg), vx_link_pol, IFLA_MAX, tb,
			       e)) < 0 ||
	    (rc = nl_attr_parse(tb[IFLA_LINKINFO].p, tb[IFLA_LINKINFO].len, vx_info_pol,
				IFLA_INFO_MAX, info, e)) < 0)
		return err_prefix(e, "vxlan %s", li.name), rc;
	if (!nl_attr_has(&info[IFLA_INFO_DATA]))
		return err_setx(e, EBADMSG, "vxlan %s: no IFLA_INFO_DATA", li.name);
	rc = nl_attr_parse(info[IFLA_INFO_DATA].p, info[IFLA_INFO_DATA].len, vx_data_pol,
			   IFLA_VXLAN_MAX, d, e);
	if (rc < 0)
		return err_prefix(e, "vxlan %s: IFLA_INFO_DATA", li.name), rc;
	if (!nl_attr_u32(&d[IFLA_VXLAN_ID], &out->vni))
		return err_setx(e, EBADMSG, "vxlan %s: no IFLA_VXLAN_ID", li.name);
	uint16_t port = 0;
	if (nl_attr_u16(&d[IFLA_VXLAN_PORT], &port))
		out->port = ntohs(port);
	uint32_t link = 0;
	if (nl_attr_u32(&d[IFLA_VXLAN_LINK], &link)) {
		if (link > INT32_MAX)
			return err_setx(e, EBADMSG, "vxlan %s: IFLA_VXLAN_LINK %u", li.name, link);
		out->underlay = (int)link;
	}
	if (nl_attr_has(&d[IFLA_VXLAN_LOCAL6])) {
		if (!nl_attr_bytes(&d[IFLA_VXLAN_LOCAL6], out->local.b, 16))
			return err_setx(e, EBADMSG, "vxlan %s: IFLA_VXLAN_LOCAL6 of %u bytes",
					li.name, d[IFLA_VXLAN_LOCAL6].len);
		out->local.family = AF_INET6;
	} else if (nl_attr_has(&d[IFLA_VXLAN_LOCAL])) {
		if (!nl_attr_bytes(&d[IFLA_VXLAN_LOCAL], out->local.b, 4))
			return err_setx(e, EBADMSG, "vxlan %s: IFLA_VXLAN_LOCAL of %u bytes",
					li.name, d[IFLA_VXLAN_LOCAL].len);
		out->local.family = AF_INET;
	}
	memcpy(out->name, li.name, sizeof(out->name));
	out->mtu = li.mtu;
	if (li.has_mac)
		memcpy(out->mac, li.mac, 6);
	return 0;
}

/* What fdb_vxlan_get's callback fills. */
struct vx_get {
	struct fdb_vxlan *out; /* the caller's */
	int index;	       /* the link's ifindex */
	bool found;	       /* a reply was parsed */
};

static int vx_get_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct vx_get *g = arg;
	struct link_info li;
	int rc = fdb_vxlan_parse(m, g->out, e);
	if (rc == 0 && (rc = link_parse(m, &li, e)) == 0)
		g->index = li.index, g->found = true;
	return rc;
}

int fdb_vxlan_get(struct nl_sock *s, const char *name, struct fdb_vxlan *out, int *ifindex,
		  struct err *e)
{
	uint8_t buf[FDB_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct vx_get g = { .out = out };
	size_t n = strnlen(name, LINK_NAMESZ);
	memset(out, 0, sizeof(*out));
	*ifindex = 0;
	if (n == 0 || n >= LINK_NAMESZ)
		return err_setx(e, EINVAL, "vxlan '%.*s': invalid name (1 to %d characters)",
				(int)n, name, LINK_NAMESZ - 1);
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, 0);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, name);
	nl_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	int rc = nl_request(s, &m, vx_get_cb, &g, e);
	if (rc == 0 && !g.found)
		rc = err_setx(e, ENODEV, "no reply");
	if (rc < 0)
		return err_prefix(e, "vxlan %s: get", name), rc;
	*ifindex = g.index;
	return 0;
}

static int fdb_msg(struct nl_sock *s, uint16_t type, uint16_t flags, int ifindex,
		   const uint8_t mac[6], const struct ip_addr *dst, struct err *e)
{
	uint8_t buf[FDB_MSG_BUF];
	struct nl_msg m;
	size_t alen = ip_len(dst);
	if (!alen)
		return err_setx(e, EAFNOSUPPORT, "not an IPv4 or IPv6 address");
	if (ifindex <= 0)
		return err_setx(e, EINVAL, "no interface index");
	struct ndmsg nd = {
		.ndm_family = AF_BRIDGE,
		.ndm_ifindex = ifindex,
		.ndm_state = NUD_PERMANENT,
		.ndm_flags = NTF_SELF,
	};
	nl_msg_init(&m, buf, sizeof(buf), type, flags);
	nl_put_fam(&m, &nd, sizeof(nd));
	nl_put(&m, NDA_LLADDR, mac, 6);
	nl_put(&m, NDA_DST, dst->b, alen);
	return nl_request(s, &m, NULL, NULL, e);
}

int fdb_replace(struct nl_sock *s, int ifindex, const uint8_t mac[6],
		const struct ip_addr *dst, struct err *e)
{
	char a[IP_STRLEN], mb[18];
	int rc = fdb_msg(s, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, mac, dst, e);
	if (rc < 0)
		err_prefix(e, "fdb %s dst %s dev %d: add", fdb_mac_fmt(mac, mb), ip_fmt(dst, a),
			   ifindex);
	return rc;
}

int fdb_del(struct nl_sock *s, int ifindex, const uint8_t mac[6], const struct ip_addr *dst,
	    struct err *e)
{
	char a[IP_STRLEN], mb[18];
	int rc = fdb_msg(s, RTM_DELNEIGH, 0, ifindex, mac, dst, e);
	if (rc < 0)
		err_prefix(e, "fdb %s dst %s dev %d: delete", fdb_mac_fmt(mac, mb),
			   ip_fmt(dst, a), ifindex);
	return rc;
}

int fdb_parse(const struct nl_msgv *m, struct fdb_entry *out, struct err *e)
{
	struct ndmsg nd;
	struct nl_attr tb[NDA_MAX + 1];
	memset(out, 0, sizeof(*out));
	if (m->type != RTM_NEWNEIGH)
		return err_setx(e, EBADMSG, "fdb: message type %u is not RTM_NEWNEIGH", m->type);
	int rc = nl_msg_parse(m, &nd, sizeof(nd), fdb_pol, NDA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "fdb"), rc;
	if (nd.ndm_family != AF_BRIDGE)
		return err_setx(e, EAFNOSUPPORT, "fdb: family %u", nd.ndm_family);
	if (!nl_attr_bytes(&tb[NDA_LLADDR], out->mac, 6))
		return err_setx(e, EBADMSG, "fdb: NDA_LLADDR missing or not 6 bytes");
	if (nl_attr_has(&tb[NDA_DST])) {
		if (tb[NDA_DST].len == 4)
			out->dst.family = AF_INET;
		else if (tb[NDA_DST].len == 16)
			out->dst.family = AF_INET6;
		else
			return err_setx(e, EBADMSG, "fdb: NDA_DST of %u bytes", tb[NDA_DST].len);
		memcpy(out->dst.b, tb[NDA_DST].p, tb[NDA_DST].len);
	}
	out->ifindex = nd.ndm_ifindex;
	out->state = nd.ndm_state;
	out->flags = nd.ndm_flags;
	return 0;
}

struct dump_ctx {
	int ifindex; /* filter; 0 = any */
	int (*fn)(const struct fdb_entry *f, void *arg, struct err *e); /* per entry */
	void *arg;   /* for fn */
};

static int dump_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct dump_ctx *d = arg;
	struct fdb_entry f;
	struct err pe = { 0 };
	if (fdb_parse(m, &f, &pe) < 0)
		return 0; /* not an FDB entry we can read (another family): skip */
	if (d->ifindex && f.ifindex != d->ifindex)
		return 0;
	return d->fn(&f, d->arg, e);
}

int fdb_dump(struct nl_sock *s, int ifindex,
	     int (*fn)(const struct fdb_entry *f, void *arg, struct err *e), void *arg,
	     struct err *e)
{
	uint8_t buf[FDB_MSG_BUF];
	struct nl_msg m;
	struct dump_ctx d = { .ifindex = ifindex, .fn = fn, .arg = arg };
	/* With strict checking ndm_ifindex selects the device (the kernel's brport filter). */
	struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = ifindex };
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETNEIGH, 0);
	nl_put_fam(&m, &nd, sizeof(nd));
	int rc = nl_dump(s, &m, dump_cb, &d, e);
	if (rc < 0)
		err_prefix(e, "fdb: dump dev %d", ifindex);
	return rc;
}

static const struct nl_pol addr_pol[IFA_MAX + 1] = {
	[IFA_ADDRESS] = { NL_A_UNSPEC, 4 },
	[IFA_LOCAL] = { NL_A_UNSPEC, 4 },
};

int fdb_addr_parse(const struct nl_msgv *m, int *ifindex, struct ip_addr *ip,
		   struct err *e)
{
	struct ifaddrmsg ifa;
	struct nl_attr tb[IFA_MAX + 1];
	memset(ip, 0, sizeof(*ip));
	*ifindex = 0;
	if (m->type != RTM_NEWADDR)
		return err_setx(e, EBADMSG, "address: message type %u is not RTM_NEWADDR",
				m->type);
	int rc = nl_msg_parse(m, &ifa, sizeof(ifa), addr_pol, IFA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "address"), rc;
	size_t want;
	if (ifa.ifa_family == AF_INET)
		want = 4;
	else if (ifa.ifa_family == AF_INET6)
		want = 16;
	else
		return err_setx(e, EAFNOSUPPORT, "address: family %u", ifa.ifa_family);
	const struct nl_attr *a = nl_attr_has(&tb[IFA_LOCAL]) ? &tb[IFA_LOCAL] : &tb[IFA_ADDRESS];
	if (!nl_attr_bytes(a, ip->b, want))
		return err_setx(e, EBADMSG, "address: no IFA_LOCAL / IFA_ADDRESS of %zu bytes",
				want);
	ip->family = ifa.ifa_family;
	*ifindex = (int)ifa.ifa_index;
	return 0;
}

struct addr_ctx {
	const struct ip_addr *ip; /* wanted */
	int ifindex;		  /* found; 0 = not yet */
};

static int addr_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	(void)e;
	struct addr_ctx *c = arg;
	struct ip_addr ip;
	int ifindex;
	struct err pe = { 0 };
	if (c->ifindex == 0 && fdb_addr_parse(m, &ifindex, &ip, &pe) == 0 &&
	    ip_eq(&ip, c->ip))
		c->ifindex = ifindex;
	return 0;
}

int fdb_addr_ifindex(struct nl_sock *s, const struct ip_addr *ip, int *ifindex,
		     struct err *e)
{
	uint8_t buf[FDB_MSG_BUF];
	struct nl_msg m;
	char a[IP_STRLEN];
	if (ip->family != AF_INET && ip->family != AF_INET6)
		return err_setx(e, EAFNOSUPPORT, "address: not an IPv4 or IPv6 address");
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)ip->family };
	struct addr_ctx c = { .ip = ip };
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETADDR, 0);
	nl_put_fam(&m, &ifa, sizeof(ifa));
	int rc = nl_dump(s, &m, addr_cb, &c, e);
	if (rc < 0)
		return err_prefix(e, "address %s: dump", ip_fmt(ip, a)), rc;
	if (!c.ifindex)
		return err_setx(e, ENODEV, "address %s: on no interface", ip_fmt(ip, a));
	*ifindex = c.ifindex;
	return 0;
}
