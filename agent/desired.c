/* desired — the routes the agent wants (rules in desired.h). */
#include "agent/desired.h"

#include "lib/err.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A growing route array. */
struct rtv {
	struct rt_route *v; /* routes */
	unsigned n, cap;    /* used / allocated */
	int err;	    /* sticky -ENOMEM */
};

static unsigned full_len(const struct ip_addr *ip)
{
	return ip->family == AF_INET6 ? 128 : 32;
}

/* Does prefix net/len contain ip? */
static bool contains(const struct ip_addr *net, unsigned len, const struct ip_addr *ip)
{
	if (net->family != ip->family || len > full_len(ip))
		return false;
	unsigned full = len / 8, rest = len % 8;
	if (memcmp(net->b, ip->b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (net->b[full] & mask) == (ip->b[full] & mask);
}

int agent_route_cmp(const struct rt_route *a, const struct rt_route *b)
{
	if (a->dst.family != b->dst.family)
		return a->dst.family < b->dst.family ? -1 : 1;
	int c = memcmp(a->dst.b, b->dst.b, 16);
	if (c)
		return c < 0 ? -1 : 1;
	if (a->dst_len != b->dst_len)
		return a->dst_len < b->dst_len ? -1 : 1;
	if (a->metric != b->metric)
		return a->metric < b->metric ? -1 : 1;
	return 0;
}

static int cmp_qsort(const void *a, const void *b)
{
	return agent_route_cmp(a, b);
}

static uint32_t table_of(const struct rt_route *r)
{
	return r->table ? r->table : RT_TABLE_MAIN;
}

bool agent_route_same(const struct rt_route *want, const struct rt_route *have)
{
	if (agent_route_cmp(want, have) != 0 || table_of(want) != table_of(have))
		return false;
	if (want->scope != have->scope || (want->type ? want->type : RTN_UNICAST) !=
	    (have->type ? have->type : RTN_UNICAST))
		return false;
	if (want->gw.family != have->gw.family ||
	    (want->gw.family && !ip_eq(&want->gw, &have->gw)))
		return false;
	if (want->oif && want->oif != have->oif)
		return false;
	return true;
}

/* Already a route with this identity? */
static bool have(const struct rtv *v, const struct rt_route *r)
{
	for (unsigned i = 0; i < v->n; i++)
		if (agent_route_cmp(&v->v[i], r) == 0)
			return true;
	return false;
}

static void push(struct rtv *v, const struct rt_route *r)
{
	if (v->err || have(v, r))
		return;
	if (v->n == v->cap) {
		unsigned cap = v->cap ? v->cap * 2 : 16;
		struct rt_route *nv = realloc(v->v, (size_t)cap * sizeof(*nv));
		if (!nv) {
			v->err = -ENOMEM;
			return;
		}
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = *r;
}

static const struct agent_node *node_find(const struct agent_world *w, const char *name)
{
	if (!name || !name[0])
		return NULL;
	for (unsigned i = 0; i < w->n_nodes; i++)
		if (w->nodes[i].name && strcmp(w->nodes[i].name, name) == 0)
			return &w->nodes[i];
	return NULL;
}

static bool is_self(const struct agent_world *w, const char *node)
{
	return node && w->self && strcmp(node, w->self) == 0;
}

/* The route dst/len via node `name` (family of dst); false when there is none. */
static bool via_node(const struct agent_world *w, const char *name, const struct ip_addr *dst,
		     uint8_t len, struct rt_route *r)
{
	if (is_self(w, name))
		return false;
	const struct agent_node *n = node_find(w, name);
	if (!n)
		return false;
	const struct ip_addr *gw = dst->family == AF_INET6 ? &n->v6 : &n->v4;
	if (gw->family != dst->family)
		return false;
	memset(r, 0, sizeof(*r));
	r->dst = *dst;
	r->dst_len = len;
	r->gw = *gw;
	if (w->via_oif > 0) { /* the overlay: the gateway is on the VXLAN device */
		r->oif = w->via_oif;
		r->onlink = true;
	}
	r->metric = w->metric;
	r->protocol = w->protocol;
	r->scope = RT_SCOPE_UNIVERSE;
	return true;
}

static void dev_route(const struct agent_world *w, const struct ip_addr *ip, int ifindex,
		      uint32_t metric, struct rt_route *r)
{
	memset(r, 0, sizeof(*r));
	r->dst = *ip;
	r->dst_len = (uint8_t)full_len(ip);
	r->oif = ifindex;
	r->metric = metric ? metric : w->metric;
	r->protocol = w->protocol;
	/* what the CNI plugin installs: scope link for IPv4, universe for IPv6 */
	r->scope = ip->family == AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
}

static const struct agent_override *ovr_find(const struct agent_world *w,
					     const struct ip_addr *ip)
{
	for (unsigned i = 0; i < w->n_ovr; i++)
		if (ip_eq(&w->ovr[i].ip, ip))
			return &w->ovr[i];
	return NULL;
}

static const struct agent_owner *owner_find(const struct agent_world *w,
					    const struct ip_addr *ip)
{
	for (unsigned i = 0; i < w->n_owners; i++)
		if (ip_eq(&w->owners[i].ip, ip))
			return &w->owners[i];
	return NULL;
}

/* The most specific block holding ip, or NULL. */
static const struct agent_block *block_of(const struct agent_world *w, const struct ip_addr *ip)
{
	const struct agent_block *best = NULL;
	for (unsigned i = 0; i < w->n_blocks; i++) {
		const struct agent_block *b = &w->blocks[i];
		if (contains(&b->net, b->len, ip) && (!best || b->len > best->len))
			best = b;
	}
	return best;
}

int agent_desired(const struct agent_world *w, struct rt_route **out, unsigned *n,
		  struct err *e)
{
	struct rtv v = { 0 };
	struct rt_route r;

	/* 1. overrides */
	for (unsigned i = 0; i < w->n_ovr; i++) {
		const struct agent_override *o = &w->ovr[i];
		if (o->ip.family != AF_INET && o->ip.family != AF_INET6)
			continue;
		switch (o->kind) {
		case AGENT_OVR_DEV:
			if (o->ifindex <= 0)
				break;
			dev_route(w, &o->ip, o->ifindex, o->metric, &r);
			push(&v, &r);
			break;
		case AGENT_OVR_VIA:
			if (via_node(w, o->node, &o->ip, (uint8_t)full_len(&o->ip), &r))
				push(&v, &r);
			break;
		case AGENT_OVR_NONE:
			break;
		}
	}

	/* 2. local endpoints */
	for (unsigned i = 0; i < w->n_eps; i++) {
		const struct agent_ep *ep = w->eps[i];
		if (ep->target || ep->ifindex <= 0)
			continue;
		for (unsigned k = 0; k < ep->n_ip && k < AGENT_EP_IPS_MAX; k++) {
			const struct ip_addr *ip = &ep->ip[k];
			if ((ip->family != AF_INET && ip->family != AF_INET6) || ovr_find(w, ip))
				continue;
			const struct agent_owner *ow = owner_find(w, ip);
			if (ow && ow->uid && ow->uid[0] && strcmp(ow->uid, ep->uid) != 0 &&
			    ow->node && ow->node[0] && !is_self(w, ow->node))
				continue; /* the VM runs elsewhere now */
			dev_route(w, ip, ep->ifindex, 0, &r);
			push(&v, &r);
		}
	}

	if (w->direct) {
		/* 3. addresses living away from their block's node */
		for (unsigned i = 0; i < w->n_owners; i++) {
			const struct agent_owner *ow = &w->owners[i];
			if (!ow->node || !ow->node[0] || is_self(w, ow->node) ||
			    ovr_find(w, &ow->ip))
				continue;
			const struct agent_block *b = block_of(w, &ow->ip);
			if (b && b->node && strcmp(b->node, ow->node) == 0)
				continue; /* the block route covers it */
			if (via_node(w, ow->node, &ow->ip, (uint8_t)full_len(&ow->ip), &r))
				push(&v, &r);
		}
		/* 4. remote blocks */
		for (unsigned i = 0; i < w->n_blocks; i++) {
			const struct agent_block *b = &w->blocks[i];
			if (!b->node || !b->node[0] || is_self(w, b->node))
				continue;
			if (via_node(w, b->node, &b->net, b->len, &r))
				push(&v, &r);
		}
	}

	if (v.err) {
		free(v.v);
		return err_setx(e, ENOMEM, "agent: desired routes: out of memory");
	}
	if (v.n > 1)
		qsort(v.v, v.n, sizeof(v.v[0]), cmp_qsort);
	*out = v.v;
	*n = v.n;
	return 0;
}
