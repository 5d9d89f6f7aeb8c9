/* route — rtnetlink route operations; see route.h. */
#include "net/route.h"

#include "lib/err.h"
#include "net/nl.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#define RT_MSG_BUF 256

static const struct nl_pol rt_pol[RTA_MAX + 1] = {
    [RTA_DST] = {NL_A_UNSPEC, 4},   [RTA_GATEWAY] = {NL_A_UNSPEC, 4}, [RTA_OIF] = {NL_A_U32, 0},
    [RTA_PRIORITY] = {NL_A_U32, 0}, [RTA_TABLE] = {NL_A_U32, 0},
};

const char *rt_fmt(const struct rt_route *r, char *buf)
{
	return ip_fmt_prefix(&r->dst, r->dst_len, buf);
}

/* Copy an address attribute of the route's family; false if absent or the wrong size. */
static bool get_addr(const struct nl_attr *a, uint8_t family, struct ip_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = family;
	if (!nl_attr_bytes(a, out->b, ip_len(out))) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	return true;
}

int rt_parse(const struct nl_msgv *m, struct rt_route *out, struct err *e)
{
	struct rtmsg rtm;
	struct nl_attr tb[RTA_MAX + 1];
	memset(out, 0, sizeof(*out));
	if (m->type != RTM_NEWROUTE)
		return err_setx(e, EBADMSG, "route: message type %u is not RTM_NEWROUTE", m->type);
	int rc = nl_msg_parse(m, &rtm, sizeof(rtm), rt_pol, RTA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "route"), rc;
	if (rtm.rtm_family != AF_INET && rtm.rtm_family != AF_INET6)
		return err_setx(e, EAFNOSUPPORT, "route: family %u", rtm.rtm_family);
	unsigned max = rtm.rtm_family == AF_INET ? 32 : 128;
	if (rtm.rtm_dst_len > max)
		return err_setx(e, EBADMSG, "route: prefix length %u", rtm.rtm_dst_len);
	out->dst.family = rtm.rtm_family;
	out->dst_len = rtm.rtm_dst_len;
	if (nl_attr_has(&tb[RTA_DST]) && !get_addr(&tb[RTA_DST], rtm.rtm_family, &out->dst))
		return err_setx(e, EBADMSG, "route: RTA_DST of %u bytes", tb[RTA_DST].len);
	out->dst.family = rtm.rtm_family;
	if (nl_attr_has(&tb[RTA_GATEWAY]) && !get_addr(&tb[RTA_GATEWAY], rtm.rtm_family, &out->gw))
		return err_setx(e, EBADMSG, "route: RTA_GATEWAY of %u bytes", tb[RTA_GATEWAY].len);
	uint32_t u;
	if (nl_attr_u32(&tb[RTA_OIF], &u))
		out->oif = (int)u;
	nl_attr_u32(&tb[RTA_PRIORITY], &out->metric);
	if (!nl_attr_u32(&tb[RTA_TABLE], &out->table))
		out->table = rtm.rtm_table;
	out->protocol = rtm.rtm_protocol;
	out->scope = rtm.rtm_scope;
	out->type = rtm.rtm_type;
	out->onlink = (rtm.rtm_flags & RTNH_F_ONLINK) != 0;
	return 0;
}

static int rt_msg(struct nl_sock *s, uint16_t type, uint16_t flags, const struct rt_route *r,
		  struct err *e)
{
	uint8_t buf[RT_MSG_BUF];
	struct nl_msg m;
	size_t alen = ip_len(&r->dst);
	if (!alen)
		return err_setx(e, EAFNOSUPPORT, "destination is not IPv4 or IPv6");
	if (r->dst_len > alen * 8)
		return err_setx(e, EINVAL, "prefix length %u too long", r->dst_len);
	if (r->gw.family && r->gw.family != r->dst.family)
		return err_setx(e, EINVAL, "gateway family differs from destination family");
	uint32_t table = r->table ? r->table : RT_TABLE_MAIN;
	bool del = type == RTM_DELROUTE;
	struct rtmsg rtm = {
	    .rtm_family = r->dst.family,
	    .rtm_dst_len = r->dst_len,
	    .rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC,
	    .rtm_protocol = r->protocol,
	    .rtm_scope = del ? RT_SCOPE_NOWHERE : r->scope,
	    .rtm_type = del ? RTN_UNSPEC : (r->type ? r->type : RTN_UNICAST),
	    .rtm_flags = r->onlink ? RTNH_F_ONLINK : 0,
	};
	nl_msg_init(&m, buf, sizeof(buf), type, flags);
	nl_put_fam(&m, &rtm, sizeof(rtm));
	nl_put(&m, RTA_DST, r->dst.b, alen);
	if (r->gw.family)
		nl_put(&m, RTA_GATEWAY, r->gw.b, alen);
	if (r->oif)
		nl_put_u32(&m, RTA_OIF, (uint32_t)r->oif);
	if (r->metric)
		nl_put_u32(&m, RTA_PRIORITY, r->metric);
	nl_put_u32(&m, RTA_TABLE, table);
	return nl_request(s, &m, NULL, NULL, e);
}

int rt_add(struct nl_sock *s, const struct rt_route *r, struct err *e)
{
	char a[IP_STRLEN];
	int rc = rt_msg(s, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r, e);
	if (rc < 0)
		err_prefix(e, "route %s: add", rt_fmt(r, a));
	return rc;
}

int rt_replace(struct nl_sock *s, const struct rt_route *r, struct err *e)
{
	char a[IP_STRLEN];
	int rc = rt_msg(s, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r, e);
	if (rc < 0)
		err_prefix(e, "route %s: replace", rt_fmt(r, a));
	return rc;
}

int rt_del(struct nl_sock *s, const struct rt_route *r, struct err *e)
{
	char a[IP_STRLEN];
	int rc = rt_msg(s, RTM_DELROUTE, 0, r, e);
	if (rc == -ESRCH) /* the kernel's "No such process" says less than this */
		err_setx(e, ESRCH, "no such route");
	if (rc < 0)
		err_prefix(e, "route %s: delete", rt_fmt(r, a));
	return rc;
}

/* What rt_dump's callback needs. */
struct dump_ctx {
	const struct rt_filter *f;				       /* what to keep */
	int (*fn)(const struct rt_route *r, void *arg, struct err *e); /* the caller's */
	void *arg;						       /* its argument */
};

static int dump_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct dump_ctx *d = arg;
	struct rt_route r;
	int rc = rt_parse(m, &r, e);
	if (rc == -EAFNOSUPPORT)
		return 0;
	if (rc < 0)
		return rc;
	if (m->len >= sizeof(struct rtmsg)) {
		struct rtmsg rtm;
		memcpy(&rtm, m->data, sizeof(rtm));
		if (rtm.rtm_flags & RTM_F_CLONED)
			return 0;
	}
	if (r.dst.family != d->f->family || (d->f->protocol && r.protocol != d->f->protocol) ||
	    (d->f->table && r.table != d->f->table) || (d->f->oif && r.oif != d->f->oif))
		return 0;
	return d->fn(&r, d->arg, e);
}

int rt_dump(struct nl_sock *s, const struct rt_filter *f,
	    int (*fn)(const struct rt_route *r, void *arg, struct err *e), void *arg, struct err *e)
{
	uint8_t buf[RT_MSG_BUF];
	struct nl_msg m;
	struct dump_ctx d = {.f = f, .fn = fn, .arg = arg};
	if (f->family != AF_INET && f->family != AF_INET6)
		return err_setx(e, EAFNOSUPPORT, "routes: dump: family %u", f->family);
	/* With strict checking the kernel filters on these itself; dump_cb checks again. */
	struct rtmsg rtm = {
	    .rtm_family = f->family,
	    .rtm_protocol = f->protocol,
	    .rtm_table = f->table && f->table < 256 ? (uint8_t)f->table : 0,
	};
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETROUTE, 0);
	nl_put_fam(&m, &rtm, sizeof(rtm));
	if (f->table)
		nl_put_u32(&m, RTA_TABLE, f->table);
	if (f->oif)
		nl_put_u32(&m, RTA_OIF, (uint32_t)f->oif);
	int rc = nl_dump(s, &m, dump_cb, &d, e);
	if (rc < 0)
		err_prefix(e, "routes: dump");
	return rc;
}
