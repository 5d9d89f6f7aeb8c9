/* ct — conntrack over ctnetlink. See ct.h for the message layout. */
#include "net/ct.h"

#include "lib/cursor.h"
#include "lib/err.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CT_MSG(t) ((uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | (t)))

/* Status bits a client may set on a new entry. The kernel marks the entry it is making
 * IPS_CONFIRMED before it applies CTA_STATUS and refuses (-EBUSY) a status that would
 * clear that bit, so a create always carries it; NAT bits come from CTA_NAT_*. */
#define CT_SETTABLE_STATUS (IPS_SEEN_REPLY | IPS_ASSURED)
#define CT_CREATE_STATUS IPS_CONFIRMED

struct nfgen {
	uint8_t family;	 /* AF_INET, AF_INET6, AF_UNSPEC */
	uint8_t version; /* NFNETLINK_V0 */
	uint16_t res_id; /* be16, 0 */
};

/* ---- parser --------------------------------------------------------------------- */

static const struct nl_pol top_pol[CTA_MAX + 1] = {
    [CTA_TUPLE_ORIG] = {NL_A_NESTED, 0},
    [CTA_TUPLE_REPLY] = {NL_A_NESTED, 0},
    [CTA_STATUS] = {NL_A_U32, 0},
    [CTA_PROTOINFO] = {NL_A_NESTED, 0},
    [CTA_TIMEOUT] = {NL_A_U32, 0},
    [CTA_MARK] = {NL_A_U32, 0},
    [CTA_ZONE] = {NL_A_U16, 0},
    [CTA_ID] = {NL_A_U32, 0},
    [CTA_COUNTERS_ORIG] = {NL_A_NESTED, 0},
    [CTA_COUNTERS_REPLY] = {NL_A_NESTED, 0},
    [CTA_TIMESTAMP] = {NL_A_NESTED, 0},
};

static const struct nl_pol counters_pol[CTA_COUNTERS_MAX + 1] = {
    [CTA_COUNTERS_PACKETS] = {NL_A_U64, 0},
    [CTA_COUNTERS_BYTES] = {NL_A_U64, 0},
};

static const struct nl_pol tstamp_pol[CTA_TIMESTAMP_MAX + 1] = {
    [CTA_TIMESTAMP_START] = {NL_A_U64, 0},
    [CTA_TIMESTAMP_STOP] = {NL_A_U64, 0},
};

static const struct nl_pol tuple_pol[CTA_TUPLE_MAX + 1] = {
    [CTA_TUPLE_IP] = {NL_A_NESTED, 0},
    [CTA_TUPLE_PROTO] = {NL_A_NESTED, 0},
    [CTA_TUPLE_ZONE] = {NL_A_U16, 0},
};

static const struct nl_pol ip_pol[CTA_IP_MAX + 1] = {
    [CTA_IP_V4_SRC] = {NL_A_UNSPEC, 4},
    [CTA_IP_V4_DST] = {NL_A_UNSPEC, 4},
    [CTA_IP_V6_SRC] = {NL_A_UNSPEC, 16},
    [CTA_IP_V6_DST] = {NL_A_UNSPEC, 16},
};

static const struct nl_pol proto_pol[CTA_PROTO_MAX + 1] = {
    [CTA_PROTO_NUM] = {NL_A_U8, 0},	     [CTA_PROTO_SRC_PORT] = {NL_A_U16, 0},
    [CTA_PROTO_DST_PORT] = {NL_A_U16, 0},    [CTA_PROTO_ICMP_ID] = {NL_A_U16, 0},
    [CTA_PROTO_ICMP_TYPE] = {NL_A_U8, 0},    [CTA_PROTO_ICMP_CODE] = {NL_A_U8, 0},
    [CTA_PROTO_ICMPV6_ID] = {NL_A_U16, 0},   [CTA_PROTO_ICMPV6_TYPE] = {NL_A_U8, 0},
    [CTA_PROTO_ICMPV6_CODE] = {NL_A_U8, 0},
};

static const struct nl_pol pinfo_pol[CTA_PROTOINFO_MAX + 1] = {
    [CTA_PROTOINFO_TCP] = {NL_A_NESTED, 0},
};

static const struct nl_pol tcp_pol[CTA_PROTOINFO_TCP_MAX + 1] = {
    [CTA_PROTOINFO_TCP_STATE] = {NL_A_U8, 0},
    [CTA_PROTOINFO_TCP_WSCALE_ORIGINAL] = {NL_A_U8, 0},
    [CTA_PROTOINFO_TCP_WSCALE_REPLY] = {NL_A_U8, 0},
    [CTA_PROTOINFO_TCP_FLAGS_ORIGINAL] = {NL_A_UNSPEC, 2},
    [CTA_PROTOINFO_TCP_FLAGS_REPLY] = {NL_A_UNSPEC, 2},
};

static bool be16_attr(const struct nl_attr *a, uint16_t *v)
{
	uint16_t x;
	if (!nl_attr_u16(a, &x))
		return false;
	*v = ntohs(x);
	return true;
}

static bool be32_attr(const struct nl_attr *a, uint32_t *v)
{
	uint32_t x;
	if (!nl_attr_u32(a, &x))
		return false;
	*v = ntohl(x);
	return true;
}

static bool be64_attr(const struct nl_attr *a, uint64_t *v)
{
	uint8_t b[8];
	if (!nl_attr_has(a) || a->len < 8)
		return false;
	memcpy(b, a->p, 8);
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v = *v << 8 | b[i];
	return true;
}

/* Accounting and timestamps: optional, so a malformed nest is refused like any other. */
static int parse_extras(const struct nl_attr *tb, struct ct_entry *ce, struct err *e)
{
	struct nl_attr c[CTA_COUNTERS_MAX + 1], ts[CTA_TIMESTAMP_MAX + 1];
	for (int i = 0; i < 2; i++) {
		const struct nl_attr *a = &tb[i ? CTA_COUNTERS_REPLY : CTA_COUNTERS_ORIG];
		if (!nl_attr_has(a))
			continue;
		if (nl_attr_parse(a->p, a->len, counters_pol, CTA_COUNTERS_MAX, c, e) < 0)
			return err_prefix(e, "conntrack entry: counters"), -EBADMSG;
		bool p = be64_attr(&c[CTA_COUNTERS_PACKETS], &ce->packets[i]);
		bool b = be64_attr(&c[CTA_COUNTERS_BYTES], &ce->bytes[i]);
		ce->has_counters = ce->has_counters || p || b;
	}
	const struct nl_attr *t = &tb[CTA_TIMESTAMP];
	if (nl_attr_has(t)) {
		if (nl_attr_parse(t->p, t->len, tstamp_pol, CTA_TIMESTAMP_MAX, ts, e) < 0)
			return err_prefix(e, "conntrack entry: timestamp"), -EBADMSG;
		(void)be64_attr(&ts[CTA_TIMESTAMP_START], &ce->start_ns);
		(void)be64_attr(&ts[CTA_TIMESTAMP_STOP], &ce->stop_ns);
	}
	return 0;
}

static int parse_tuple(const struct nl_attr *a, uint8_t l3, const char *dir, struct ct_tuple *t,
		       struct err *e)
{
	struct nl_attr tb[CTA_TUPLE_MAX + 1], ip[CTA_IP_MAX + 1], pr[CTA_PROTO_MAX + 1];
	if (!nl_attr_has(a))
		return err_setx(e, EBADMSG, "conntrack entry: no %s tuple", dir);
	if (nl_attr_parse(a->p, a->len, tuple_pol, CTA_TUPLE_MAX, tb, e) < 0 ||
	    !nl_attr_has(&tb[CTA_TUPLE_IP]) || !nl_attr_has(&tb[CTA_TUPLE_PROTO]) ||
	    nl_attr_parse(tb[CTA_TUPLE_IP].p, tb[CTA_TUPLE_IP].len, ip_pol, CTA_IP_MAX, ip, e) <
		0 ||
	    nl_attr_parse(tb[CTA_TUPLE_PROTO].p, tb[CTA_TUPLE_PROTO].len, proto_pol,
			  CTA_PROTO_MAX, pr, e) < 0)
		return err_prefix(e, "conntrack entry: %s tuple", dir), -EBADMSG;
	int s = l3 == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC;
	int d = l3 == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST;
	size_t n = l3 == AF_INET ? 4 : 16;
	t->src.family = t->dst.family = l3;
	if (!nl_attr_bytes(&ip[s], t->src.b, n) || !nl_attr_bytes(&ip[d], t->dst.b, n))
		return err_setx(e, EBADMSG, "conntrack entry: %s tuple: no %s addresses", dir,
				l3 == AF_INET ? "IPv4" : "IPv6");
	if (!nl_attr_u8(&pr[CTA_PROTO_NUM], &t->proto))
		return err_setx(e, EBADMSG, "conntrack entry: %s tuple: no protocol", dir);
	if (t->proto == IPPROTO_ICMP || t->proto == IPPROTO_ICMPV6) {
		bool v4 = t->proto == IPPROTO_ICMP;
		uint8_t ty = 0, co = 0;
		(void)be16_attr(&pr[v4 ? CTA_PROTO_ICMP_ID : CTA_PROTO_ICMPV6_ID], &t->sport);
		(void)nl_attr_u8(&pr[v4 ? CTA_PROTO_ICMP_TYPE : CTA_PROTO_ICMPV6_TYPE], &ty);
		(void)nl_attr_u8(&pr[v4 ? CTA_PROTO_ICMP_CODE : CTA_PROTO_ICMPV6_CODE], &co);
		t->dport = (uint16_t)(ty << 8 | co);
	} else {
		(void)be16_attr(&pr[CTA_PROTO_SRC_PORT], &t->sport);
		(void)be16_attr(&pr[CTA_PROTO_DST_PORT], &t->dport);
	}
	return 0;
}

static int parse_tcp(const struct nl_attr *a, struct ct_entry *ce, struct err *e)
{
	struct nl_attr pi[CTA_PROTOINFO_MAX + 1], tb[CTA_PROTOINFO_TCP_MAX + 1];
	if (nl_attr_parse(a->p, a->len, pinfo_pol, CTA_PROTOINFO_MAX, pi, e) < 0)
		return err_prefix(e, "conntrack entry: protocol info"), -EBADMSG;
	if (!nl_attr_has(&pi[CTA_PROTOINFO_TCP]))
		return 0;
	if (nl_attr_parse(pi[CTA_PROTOINFO_TCP].p, pi[CTA_PROTOINFO_TCP].len, tcp_pol,
			  CTA_PROTOINFO_TCP_MAX, tb, e) < 0)
		return err_prefix(e, "conntrack entry: TCP info"), -EBADMSG;
	struct ct_tcp *t = &ce->tcp;
	ce->has_tcp = nl_attr_u8(&tb[CTA_PROTOINFO_TCP_STATE], &t->state);
	(void)nl_attr_u8(&tb[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL], &t->wscale[0]);
	(void)nl_attr_u8(&tb[CTA_PROTOINFO_TCP_WSCALE_REPLY], &t->wscale[1]);
	for (int i = 0; i < 2; i++) {
		const struct nl_attr *f =
		    &tb[i ? CTA_PROTOINFO_TCP_FLAGS_REPLY : CTA_PROTOINFO_TCP_FLAGS_ORIGINAL];
		if (nl_attr_has(f)) {
			t->flags[i] = f->p[0];
			t->flags_mask[i] = f->p[1];
		}
	}
	return 0;
}

int ct_parse(const struct nl_msgv *m, struct ct_entry *out, struct err *e)
{
	struct nl_attr tb[CTA_MAX + 1];
	struct nfgen g;
	memset(out, 0, sizeof(*out));
	if (m->type != CT_MSG(IPCTNL_MSG_CT_NEW) && m->type != CT_MSG(IPCTNL_MSG_CT_DELETE))
		return err_setx(e, ENOMSG, "conntrack: message type 0x%x is not an entry",
				m->type);
	if (nl_msg_parse(m, &g, sizeof(g), top_pol, CTA_MAX, tb, e) < 0)
		return err_prefix(e, "conntrack entry"), -EBADMSG;
	if (g.family != AF_INET && g.family != AF_INET6)
		return err_setx(e, EBADMSG, "conntrack entry: family %u is not IPv4 or IPv6",
				g.family);
	out->l3 = g.family;
	int rc = parse_tuple(&tb[CTA_TUPLE_ORIG], g.family, "original", &out->orig, e);
	if (rc == 0)
		rc = parse_tuple(&tb[CTA_TUPLE_REPLY], g.family, "reply", &out->reply, e);
	if (rc < 0)
		return rc;
	if (out->orig.proto != out->reply.proto)
		return err_setx(e, EBADMSG, "conntrack entry: original protocol %u, reply %u",
				out->orig.proto, out->reply.proto);
	(void)be32_attr(&tb[CTA_STATUS], &out->status);
	(void)be32_attr(&tb[CTA_TIMEOUT], &out->timeout);
	(void)be32_attr(&tb[CTA_MARK], &out->mark);
	(void)be16_attr(&tb[CTA_ZONE], &out->zone);
	(void)be32_attr(&tb[CTA_ID], &out->id);
	rc = parse_extras(tb, out, e);
	if (rc < 0)
		return rc;
	if (nl_attr_has(&tb[CTA_PROTOINFO]) && out->orig.proto == IPPROTO_TCP)
		return parse_tcp(&tb[CTA_PROTOINFO], out, e);
	return 0;
}

static bool tuple_has(const struct ct_tuple *t, const struct ip_addr *a)
{
	return ip_eq(&t->src, a) || ip_eq(&t->dst, a);
}

bool ct_entry_has_addr(const struct ct_entry *ce, const struct ip_addr *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tuple_has(&ce->orig, &addrs[i]) || tuple_has(&ce->reply, &addrs[i]))
			return true;
	return false;
}

static bool tuple_eq(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return ip_eq(&a->src, &b->src) && ip_eq(&a->dst, &b->dst) && a->proto == b->proto &&
	       a->sport == b->sport && a->dport == b->dport;
}

bool ct_entry_eq(const struct ct_entry *a, const struct ct_entry *b)
{
	const struct ct_tcp *x = &a->tcp, *y = &b->tcp;
	return a->l3 == b->l3 && tuple_eq(&a->orig, &b->orig) &&
	       tuple_eq(&a->reply, &b->reply) && a->status == b->status &&
	       a->timeout == b->timeout && a->mark == b->mark && a->zone == b->zone &&
	       a->has_tcp == b->has_tcp && x->state == y->state &&
	       memcmp(x->wscale, y->wscale, 2) == 0 && memcmp(x->flags, y->flags, 2) == 0 &&
	       memcmp(x->flags_mask, y->flags_mask, 2) == 0;
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_SCTP:
		return "sctp";
	}
	return "proto";
}

const char *ct_entry_fmt(const struct ct_entry *ce, char *buf, size_t len)
{
	char a[4][IP_STRLEN];
	snprintf(buf, len,
		 "%s %s:%u -> %s:%u | reply %s:%u -> %s:%u%s%s state %d timeout %u mark %u "
		 "zone %u",
		 proto_name(ce->orig.proto), ip_fmt(&ce->orig.src, a[0]), ce->orig.sport,
		 ip_fmt(&ce->orig.dst, a[1]), ce->orig.dport, ip_fmt(&ce->reply.src, a[2]),
		 ce->reply.sport, ip_fmt(&ce->reply.dst, a[3]), ce->reply.dport,
		 ce->status & IPS_DST_NAT ? " dnat" : "", ce->status & IPS_SRC_NAT ? " snat" : "",
		 ce->has_tcp ? ce->tcp.state : -1, ce->timeout, ce->mark, ce->zone);
	return buf;
}

/* ---- list ----------------------------------------------------------------------- */

void ct_list_free(struct ct_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int ct_list_add(struct ct_list *l, const struct ct_entry *ce, struct err *e)
{
	size_t max = l->max ? l->max : CT_WIRE_MAX;
	if (l->n >= max)
		return err_setx(e, E2BIG, "conntrack list: more than %zu entries", max);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct ct_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return err_set(e, ENOMEM, "conntrack list: %zu entries", cap);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *ce;
	return 0;
}

/* ---- dump ----------------------------------------------------------------------- */

int ct_open(struct nl_sock **out, const char *nspath, struct err *e)
{
	int rc = nspath ? nl_open_in_netns(out, NETLINK_NETFILTER, nspath, e)
			: nl_open(out, NETLINK_NETFILTER, e);
	return rc < 0 ? (err_prefix(e, "conntrack"), rc) : 0;
}

struct dump_arg {
	const struct ip_addr *addrs; /* filter */
	size_t n;		     /* addresses in the filter; 0 = keep all */
	struct ct_list *out;	     /* where kept entries go */
};

static int dump_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct dump_arg *d = arg;
	struct ct_entry ce;
	int rc = ct_parse(m, &ce, e);
	if (rc == -ENOMSG)
		return 0;
	if (rc < 0)
		return rc;
	if (d->n && !ct_entry_has_addr(&ce, d->addrs, d->n))
		return 0;
	return ct_list_add(d->out, &ce, e);
}

int ct_dump(struct nl_sock *s, const struct ip_addr *addrs, size_t n, struct ct_list *out,
	    struct err *e)
{
	uint8_t buf[64];
	struct nfgen g = {.family = AF_UNSPEC, .version = NFNETLINK_V0};
	struct dump_arg d = {.addrs = addrs, .n = n, .out = out};
	size_t keep = out->n;
	int rc = -EINTR;
	for (int tries = 0; tries < 4 && rc == -EINTR; tries++) {
		struct nl_msg m;
		out->n = keep;
		nl_msg_init(&m, buf, sizeof(buf), CT_MSG(IPCTNL_MSG_CT_GET), 0);
		nl_put_fam(&m, &g, sizeof(g));
		rc = nl_dump(s, &m, dump_cb, &d, e);
	}
	if (rc < 0) {
		out->n = keep;
		return err_prefix(e, "conntrack: dump"), rc;
	}
	return 0;
}

/* ---- create --------------------------------------------------------------------- */

static void put_tuple(struct nl_msg *m, uint16_t type, uint8_t l3, const struct ct_tuple *t)
{
	size_t nt, ni, np;
	bool v4 = l3 == AF_INET;
	size_t alen = v4 ? 4 : 16;
	nl_nest_begin(m, type, &nt);
	nl_nest_begin(m, CTA_TUPLE_IP, &ni);
	nl_put(m, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, t->src.b, alen);
	nl_put(m, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, t->dst.b, alen);
	nl_nest_end(m, ni);
	nl_nest_begin(m, CTA_TUPLE_PROTO, &np);
	nl_put_u8(m, CTA_PROTO_NUM, t->proto);
	if (t->proto == IPPROTO_ICMP || t->proto == IPPROTO_ICMPV6) {
		bool i4 = t->proto == IPPROTO_ICMP;
		nl_put_u16(m, i4 ? CTA_PROTO_ICMP_ID : CTA_PROTO_ICMPV6_ID, htons(t->sport));
		nl_put_u8(m, i4 ? CTA_PROTO_ICMP_TYPE : CTA_PROTO_ICMPV6_TYPE,
			  (uint8_t)(t->dport >> 8));
		nl_put_u8(m, i4 ? CTA_PROTO_ICMP_CODE : CTA_PROTO_ICMPV6_CODE,
			  (uint8_t)t->dport);
	} else {
		nl_put_u16(m, CTA_PROTO_SRC_PORT, htons(t->sport));
		nl_put_u16(m, CTA_PROTO_DST_PORT, htons(t->dport));
	}
	nl_nest_end(m, np);
	nl_nest_end(m, nt);
}

static bool has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
	       proto == IPPROTO_UDPLITE || proto == IPPROTO_DCCP;
}

/* A NAT range of one address and (for protocols with ports) one port. */
static void put_nat(struct nl_msg *m, uint16_t type, uint8_t l3, const struct ip_addr *a,
		    uint8_t proto, uint16_t port)
{
	size_t nn, np;
	bool v4 = l3 == AF_INET;
	size_t alen = v4 ? 4 : 16;
	nl_nest_begin(m, type, &nn);
	nl_put(m, v4 ? CTA_NAT_V4_MINIP : CTA_NAT_V6_MINIP, a->b, alen);
	nl_put(m, v4 ? CTA_NAT_V4_MAXIP : CTA_NAT_V6_MAXIP, a->b, alen);
	if (has_ports(proto)) {
		nl_nest_begin(m, CTA_NAT_PROTO, &np);
		nl_put_u16(m, CTA_PROTONAT_PORT_MIN, htons(port));
		nl_put_u16(m, CTA_PROTONAT_PORT_MAX, htons(port));
		nl_nest_end(m, np);
	}
	nl_nest_end(m, nn);
}

/* The reply tuple the kernel expects with CTA_NAT_*: the plain inverse of the original
 * (as if nothing were NATed). nf_nat_setup_info() starts from that inverse and alters the
 * reply tuple itself, and only then marks the entry IPS_DST_NAT / IPS_SRC_NAT so packets
 * are rewritten; an already-translated reply tuple would look like "no NAT needed". ICMP
 * keeps the id and takes the reply's type and code. */
static struct ct_tuple unnat_reply(const struct ct_entry *ce)
{
	struct ct_tuple t = ce->reply;
	t.src = ce->orig.dst;
	t.dst = ce->orig.src;
	if (has_ports(ce->orig.proto)) {
		t.sport = ce->orig.dport;
		t.dport = ce->orig.sport;
	} else if (ce->orig.proto == IPPROTO_ICMP || ce->orig.proto == IPPROTO_ICMPV6) {
		t.sport = ce->orig.sport;
	}
	return t;
}

static int build_new(struct nl_msg *mp, const struct ct_entry *ce, bool create, void *buf,
		     size_t cap, struct err *e)
{
	struct nl_msg m;
	struct nfgen g = {.family = ce->l3, .version = NFNETLINK_V0};
	if (ce->l3 != AF_INET && ce->l3 != AF_INET6)
		return err_setx(e, EAFNOSUPPORT, "conntrack entry: family %u", ce->l3);
	nl_msg_init(&m, buf, cap, CT_MSG(IPCTNL_MSG_CT_NEW),
		    (uint16_t)(create ? NLM_F_CREATE | NLM_F_EXCL : 0));
	nl_put_fam(&m, &g, sizeof(g));
	put_tuple(&m, CTA_TUPLE_ORIG, ce->l3, &ce->orig);
	bool nat = create && (ce->status & (IPS_DST_NAT | IPS_SRC_NAT));
	struct ct_tuple rt = nat ? unnat_reply(ce) : ce->reply;
	put_tuple(&m, CTA_TUPLE_REPLY, ce->l3, &rt);
	if (create) {
		/* DNAT: the original destination was rewritten to where replies come from;
		 * SNAT: the original source was rewritten to where replies go to. */
		if (ce->status & IPS_DST_NAT)
			put_nat(&m, CTA_NAT_DST, ce->l3, &ce->reply.src, ce->orig.proto,
				ce->reply.sport);
		if (ce->status & IPS_SRC_NAT)
			put_nat(&m, CTA_NAT_SRC, ce->l3, &ce->reply.dst, ce->orig.proto,
				ce->reply.dport);
		nl_put_u32(&m, CTA_STATUS,
			   htonl((ce->status & CT_SETTABLE_STATUS) | CT_CREATE_STATUS));
	}
	nl_put_u32(&m, CTA_TIMEOUT, htonl(ce->timeout ? ce->timeout : 1));
	nl_put_u32(&m, CTA_MARK, htonl(ce->mark));
	if (ce->zone)
		nl_put_u16(&m, CTA_ZONE, htons(ce->zone));
	if (ce->has_tcp && ce->orig.proto == IPPROTO_TCP) {
		size_t np, nt;
		uint8_t fo[2] = {ce->tcp.flags[0], ce->tcp.flags_mask[0]};
		uint8_t fr[2] = {ce->tcp.flags[1], ce->tcp.flags_mask[1]};
		nl_nest_begin(&m, CTA_PROTOINFO, &np);
		nl_nest_begin(&m, CTA_PROTOINFO_TCP, &nt);
		nl_put_u8(&m, CTA_PROTOINFO_TCP_STATE, ce->tcp.state);
		if (create) {
			/* window scales can only be set when the entry is made */
			nl_put_u8(&m, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, ce->tcp.wscale[0]);
			nl_put_u8(&m, CTA_PROTOINFO_TCP_WSCALE_REPLY, ce->tcp.wscale[1]);
		}
		nl_put(&m, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, fo, sizeof(fo));
		nl_put(&m, CTA_PROTOINFO_TCP_FLAGS_REPLY, fr, sizeof(fr));
		nl_nest_end(&m, nt);
		nl_nest_end(&m, np);
	}
	*mp = m;
	int rc = nl_msg_check(&m, e);
	if (rc < 0)
		return err_prefix(e, "conntrack entry"), rc;
	return (int)nl_msg_len(&m);
}

int ct_build_new(const struct ct_entry *ce, bool create, void *buf, size_t cap, struct err *e)
{
	struct nl_msg m;
	return build_new(&m, ce, create, buf, cap, e);
}

int ct_create(struct nl_sock *s, const struct ct_entry *ce, struct err *e)
{
	uint8_t buf[512];
	char what[256];
	struct nl_msg m;
	int rc = -EEXIST;
	for (int create = 1; create >= 0 && rc == -EEXIST; create--) {
		int len = build_new(&m, ce, create, buf, sizeof(buf), e);
		if (len < 0)
			return len;
		rc = nl_request(s, &m, NULL, NULL, e);
	}
	if (rc < 0)
		return err_prefix(e, "conntrack entry %s: create",
				  ct_entry_fmt(ce, what, sizeof(what))),
		       rc;
	return 0;
}

/* ---- events --------------------------------------------------------------------- */

int ct_events_subscribe(struct nl_sock *s, bool new, bool update, bool destroy, struct err *e)
{
	const int groups[3] = {NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE,
			       NFNLGRP_CONNTRACK_DESTROY};
	const bool want[3] = {new, update, destroy};
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		if (setsockopt(nl_fd(s), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i],
			       sizeof(groups[i])) < 0)
			return err_set(e, errno, "conntrack events: join group %d", groups[i]);
	}
	return 0;
}

int ct_events_rcvbuf(struct nl_sock *s, int bytes, struct err *e)
{
	if (setsockopt(nl_fd(s), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == 0)
		return 0;
	if (setsockopt(nl_fd(s), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) < 0)
		return err_set(e, errno, "conntrack events: receive buffer of %d bytes", bytes);
	return 0;
}

/* ct_events_parse's walk: one message to its handler. */
struct ev_walk {
	ct_event_cb cb; /* the caller's handler */
	void *arg;	/* its argument */
	int count;	/* events handed over */
};

static int ev_one(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct ev_walk *w = arg;
	struct ct_entry ce;
	int rc = ct_parse(m, &ce, e);
	if (rc == -ENOMSG)
		return 0; /* NLMSG_NOOP, NLMSG_DONE and other types */
	if (rc < 0)
		return rc;
	enum ct_event ev = m->type == CT_MSG(IPCTNL_MSG_CT_DELETE) ? CT_EV_DESTROY
			   : m->flags & NLM_F_CREATE		    ? CT_EV_NEW
								    : CT_EV_UPDATE;
	w->count++;
	rc = w->cb(ev, &ce, w->arg);
	if (rc < 0)
		return err_setx(e, -rc, "handler stopped"), rc;
	return 0;
}

int ct_events_parse(const void *buf, size_t len, ct_event_cb cb, void *arg, struct err *e)
{
	struct ev_walk w = { .cb = cb, .arg = arg };
	int rc = nl_datagram_walk(buf, len, "conntrack events", ev_one, &w, e);
	return rc < 0 ? rc : w.count;
}

int ct_events_read(struct nl_sock *s, ct_event_cb cb, void *arg, struct err *e)
{
	uint8_t buf[NL_RECV_BUF];
	struct sockaddr_nl from;
	socklen_t fl = sizeof(from);
	ssize_t n;
	do
		n = recvfrom(nl_fd(s), buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0 && errno == ENOBUFS)
		return err_setx(e, ENOBUFS, "conntrack events: socket buffer overrun, events lost");
	if (n < 0)
		return err_set(e, errno, "conntrack events: receive");
	if (from.nl_pid != 0)
		return 0;
	return ct_events_parse(buf, (size_t)n, cb, arg, e);
}

/* ---- wire form ------------------------------------------------------------------ */

size_t ct_wire_size(size_t n)
{
	return CT_WIRE_HDR + n * CT_WIRE_ENTRY;
}

static void w_tuple(struct wcur *w, const struct ct_tuple *t)
{
	uint8_t z[16] = {0};
	memcpy(z, t->src.b, ip_len(&t->src));
	wcur_bytes(w, z, 16);
	memset(z, 0, sizeof(z));
	memcpy(z, t->dst.b, ip_len(&t->dst));
	wcur_bytes(w, z, 16);
	wcur_be16(w, t->sport);
	wcur_be16(w, t->dport);
}

long ct_wire_encode(const struct ct_entry *v, size_t n, void *buf, size_t cap, struct err *e)
{
	struct wcur w;
	if (n > CT_WIRE_MAX)
		return err_setx(e, E2BIG, "conntrack wire: %zu entries, at most %d", n,
				CT_WIRE_MAX);
	if (cap < ct_wire_size(n))
		return err_setx(e, EMSGSIZE, "conntrack wire: %zu entries need %zu bytes, have %zu",
				n, ct_wire_size(n), cap);
	wcur_init(&w, buf, cap);
	wcur_bytes(&w, "KVCT", 4);
	wcur_u8(&w, CT_WIRE_VERSION);
	wcur_u8(&w, 0);
	wcur_be16(&w, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct ct_entry *ce = &v[i];
		wcur_u8(&w, ce->l3);
		wcur_u8(&w, ce->orig.proto);
		wcur_u8(&w, ce->has_tcp);
		wcur_u8(&w, ce->tcp.state);
		w_tuple(&w, &ce->orig);
		w_tuple(&w, &ce->reply);
		wcur_be32(&w, ce->status);
		wcur_be32(&w, ce->timeout);
		wcur_be32(&w, ce->mark);
		wcur_be16(&w, ce->zone);
		wcur_bytes(&w, ce->tcp.wscale, 2);
		wcur_bytes(&w, ce->tcp.flags, 2);
		wcur_bytes(&w, ce->tcp.flags_mask, 2);
	}
	if (!wcur_ok(&w))
		return err_setx(e, EMSGSIZE, "conntrack wire: buffer of %zu bytes short", cap);
	return (long)w.off;
}

static bool r_addr(struct cur *c, uint8_t l3, struct ip_addr *a)
{
	uint8_t b[16];
	static const uint8_t zero[12];
	if (!cur_copy(c, b, 16))
		return false;
	a->family = l3;
	memcpy(a->b, b, 16);
	return l3 == AF_INET6 || memcmp(b + 4, zero, 12) == 0;
}

static bool r_tuple(struct cur *c, uint8_t l3, uint8_t proto, struct ct_tuple *t)
{
	t->proto = proto;
	bool ok = r_addr(c, l3, &t->src);
	ok = r_addr(c, l3, &t->dst) && ok;
	cur_be16(c, &t->sport);
	cur_be16(c, &t->dport);
	return ok && cur_ok(c);
}

int ct_wire_decode(const void *buf, size_t len, struct ct_list *out, struct err *e)
{
	struct cur c;
	uint8_t magic[4], ver, pad;
	uint16_t n;
	size_t keep = out->n;
	cur_init(&c, buf, len);
	cur_copy(&c, magic, 4);
	cur_u8(&c, &ver);
	cur_u8(&c, &pad);
	cur_be16(&c, &n);
	if (!cur_ok(&c) || memcmp(magic, "KVCT", 4) != 0)
		return err_setx(e, EBADMSG, "conntrack wire: not an entry list");
	if (ver != CT_WIRE_VERSION)
		return err_setx(e, EPROTONOSUPPORT, "conntrack wire: version %u, want %u", ver,
				CT_WIRE_VERSION);
	if (pad != 0)
		return err_setx(e, EBADMSG, "conntrack wire: reserved byte is %u, not 0", pad);
	if (n > CT_WIRE_MAX)
		return err_setx(e, E2BIG, "conntrack wire: %u entries, at most %d", n,
				CT_WIRE_MAX);
	if (cur_left(&c) != (size_t)n * CT_WIRE_ENTRY)
		return err_setx(e, EBADMSG, "conntrack wire: %u entries in %zu bytes", n,
				cur_left(&c));
	int rc = 0;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		struct ct_entry ce = {0};
		uint8_t proto, has_tcp;
		cur_u8(&c, &ce.l3);
		cur_u8(&c, &proto);
		cur_u8(&c, &has_tcp);
		cur_u8(&c, &ce.tcp.state);
		if (ce.l3 != AF_INET && ce.l3 != AF_INET6) {
			rc = err_setx(e, EBADMSG, "conntrack wire: entry %u: family %u", i, ce.l3);
			break;
		}
		if (has_tcp > 1 || (has_tcp && proto != IPPROTO_TCP)) {
			rc = err_setx(e, EBADMSG, "conntrack wire: entry %u: TCP info on proto %u",
				      i, proto);
			break;
		}
		ce.has_tcp = has_tcp;
		bool ok = r_tuple(&c, ce.l3, proto, &ce.orig);
		ok = r_tuple(&c, ce.l3, proto, &ce.reply) && ok;
		cur_be32(&c, &ce.status);
		cur_be32(&c, &ce.timeout);
		cur_be32(&c, &ce.mark);
		cur_be16(&c, &ce.zone);
		cur_copy(&c, ce.tcp.wscale, 2);
		cur_copy(&c, ce.tcp.flags, 2);
		cur_copy(&c, ce.tcp.flags_mask, 2);
		if (!ok || !cur_ok(&c)) {
			rc = err_setx(e, EBADMSG, "conntrack wire: entry %u: bad addresses", i);
			break;
		}
		rc = ct_list_add(out, &ce, e);
	}
	if (rc < 0)
		out->n = keep;
	return rc;
}
