/* routed — the routed data-plane mode (design.md "Data-plane model"): a veth pair per
 * pod interface; the pod gets /32 and /128 addresses, a default route via 169.254.1.1
 * (a permanent neighbour entry for ee:ee:ee:ee:ee:ee) and via fe80::ecee:eeff:feee:eeee;
 * the host end has MAC ee:ee:ee:ee:ee:ee, that link-local address, proxy ARP and
 * forwarding, and a host route per address (proto RT_PROTO_KVNET, metric 1024) unless
 * the pod is a dark migration target. Host sysctls: net.ipv4.conf.kvX.{proxy_arp,
 * forwarding}=1, accept_dad=0, and with IPv6 net.ipv6.conf.all.forwarding=1 (IPv6 has no
 * per-interface forwarding for routing decisions).
 *
 * The gateway answers for itself. 169.254.1.1/32 (scope host) is also an address of every
 * host veth, so the node answers ARP for it as for any local address. Proxy ARP alone is
 * not enough: it answers only when the node has a route to 169.254.1.1 through another
 * interface, and a node without a default route (the lab's, an air-gapped edge node) has
 * none. A pod never notices (its permanent neighbour entry answers for it), but a guest
 * behind KubeVirt's bridge binding ARPs for 169.254.1.1 itself, from behind the pod's
 * k6t-eth0 bridge. An address rather than a route: a route to 169.254.1.1 would need a
 * second interface to point at and would be one more proto-75 route for the agent's
 * route reconcile to own; the address's local route is proto kernel, goes with the veth,
 * and the same /32 on many interfaces is ordinary for the kernel (one local route per
 * device). Scope host: local, so ARP for it is answered, but never picked as the source
 * of what the node sends into its pods. Endpoints made before this address existed get it from the agent
 * (agent/gateway.c, at every endpoint reconcile), and CHECK reports it missing. The v6
 * gateway needs nothing more: fe80::ecee:eeff:feee:eeee/64 is already an address of the
 * host veth, and the node answers a guest's own neighbour solicitation for it with no
 * route at all. */
#include "cni/mode.h"

#include "cni/store.h"
#include "lib/err.h"
#include "net/addr.h"
#include "net/neigh.h"
#include "net/netns.h"
#include "net/nl.h"
#include "net/route.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t cni_host_mac[6] = { 0xee, 0xee, 0xee, 0xee, 0xee, 0xee };

static int host_sysctl(const char *host, const char *what, const char *v, struct err *e)
{
	char name[128];
	snprintf(name, sizeof(name), "%s.%s.%s", what[0] == '4' ? "net.ipv4.conf" : "net.ipv6.conf",
		 host, what + 2);
	return netns_sysctl_write(-1, name, v, e);
}

/* 169.254.1.1/32 scope host on the host veth ifindex (see the header comment); already
 * there is fine. */
static int gw4_host_addr(struct nl_sock *hs, int ifindex, struct err *e)
{
	struct ip_addr gw4;
	ip_parse(CNI_GW4, &gw4);
	int rc = addr_add_scope(hs, ifindex, &gw4, 32, 0, RT_SCOPE_HOST, e);
	if (rc == -EEXIST) {
		err_clear(e);
		return 0;
	}
	return rc;
}

static int routed_add(const struct cni_req *r, const struct cni_ns *ns, const struct cni_ipam *c,
		      struct cni_plumb *p, struct err *e)
{
	struct nl_sock *hs = ns->host, *ps = ns->pod;
	int nsfd = ns->nsfd;
	struct link_info li;
	int rc = link_get(hs, p->host, &li, e);
	if (rc == 0) /* left over by a crashed ADD of the same pod: replace it */
		link_del(hs, li.index, NULL);
	err_clear(e);
	struct link_veth v = {
		.name = p->host,
		.peer = r->ifname,
		.peer_netns_fd = nsfd,
		.mac = cni_host_mac,
		.peer_mac = c->has_mac ? c->mac : NULL,
		.mtu = r->mtu,
	};
	if ((rc = link_add_veth(hs, &v, e)) < 0)
		return rc;
	p->created = true;
	memcpy(p->host_mac, cni_host_mac, 6);
	if ((rc = link_index(hs, p->host, &p->host_idx, e)) < 0)
		return rc;
	if ((rc = host_sysctl(p->host, "4.proxy_arp", "1", e)) < 0 ||
	    (rc = host_sysctl(p->host, "4.forwarding", "1", e)) < 0 ||
	    (rc = host_sysctl(p->host, "6.accept_dad", "0", e)) < 0)
		return rc;
	bool v6 = false, v4 = false;
	for (unsigned i = 0; i < c->n; i++) {
		v6 |= c->ip[i].family == AF_INET6;
		v4 |= c->ip[i].family == AF_INET;
	}
	struct ip_addr gw6, gw4;
	ip_parse(CNI_GW6, &gw6);
	ip_parse(CNI_GW4, &gw4);
	if (v6) {
		char cur[16];
		if (netns_sysctl_read(-1, "net.ipv6.conf.all.forwarding", cur, sizeof(cur), e) < 0)
			return -EIO;
		if (strcmp(cur, "1") != 0 &&
		    (rc = netns_sysctl_write(-1, "net.ipv6.conf.all.forwarding", "1", e)) < 0)
			return rc;
		rc = addr_add(hs, p->host_idx, &gw6, 64, IFA_F_NODAD, e);
		if (rc < 0 && rc != -EEXIST)
			return rc;
		err_clear(e);
	}
	if (v4 && (rc = gw4_host_addr(hs, p->host_idx, e)) < 0)
		return rc;
	if ((rc = link_set_up(hs, p->host_idx, true, e)) < 0)
		return rc;

	/* pod side */
	if ((rc = link_get(ps, r->ifname, &li, e)) < 0)
		return rc;
	p->pod_idx = li.index;
	memcpy(p->pod_mac, li.mac, 6);
	char sc[128];
	snprintf(sc, sizeof(sc), "net.ipv6.conf.%s.accept_dad", r->ifname);
	if (v6 && (rc = netns_sysctl_write(nsfd, sc, "0", e)) < 0)
		return rc;
	if ((rc = link_set_up(ps, p->pod_idx, true, e)) < 0)
		return rc;
	for (unsigned i = 0; i < c->n; i++) {
		struct ip_addr a = c->ip[i];
		bool is6 = a.family == AF_INET6;
		if ((rc = addr_add(ps, p->pod_idx, &a, is6 ? 128 : 32, is6 ? IFA_F_NODAD : 0, e)) < 0)
			return rc;
	}
	for (unsigned i = 0; i < c->n; i++) {
		bool is6 = c->ip[i].family == AF_INET6;
		struct rt_route d;
		memset(&d, 0, sizeof(d));
		d.dst.family = is6 ? AF_INET6 : AF_INET;
		d.gw = is6 ? gw6 : gw4;
		d.oif = p->pod_idx;
		d.onlink = true;
		if (!is6 && (rc = neigh_add(ps, p->pod_idx, &gw4, cni_host_mac, e)) < 0)
			return rc;
		if ((rc = rt_add(ps, &d, e)) < 0 && rc != -EEXIST)
			return rc;
		err_clear(e);
		if (p->dark)
			continue;
		/* host route */
		struct rt_route h;
		memset(&h, 0, sizeof(h));
		h.dst = c->ip[i];
		h.dst_len = is6 ? 128 : 32;
		h.oif = p->host_idx;
		h.metric = 1024;
		h.protocol = RT_PROTO_KVNET;
		h.scope = RT_SCOPE_LINK;
		if (is6)
			h.scope = RT_SCOPE_UNIVERSE;
		if ((rc = rt_replace(hs, &h, e)) < 0)
			return rc;
	}
	return 0;
}

/* What CHECK looks for in a route dump. */
struct find_rt {
	struct ip_addr dst; /* destination */
	uint8_t len;	    /* prefix length */
	struct ip_addr gw;  /* gateway (family 0 = any) */
	int type;	    /* route type; -1 = any */
	bool found;	    /* seen */
};

static int find_rt_cb(const struct rt_route *rt, void *arg, struct err *e)
{
	(void)e;
	struct find_rt *q = arg;
	if (rt->dst_len == q->len && (q->len == 0 || ip_eq(&rt->dst, &q->dst)) &&
	    (q->gw.family == 0 || ip_eq(&rt->gw, &q->gw)) && (q->type < 0 || rt->type == q->type))
		q->found = true;
	return 0;
}

static int has_route(struct nl_sock *s, uint32_t table, uint8_t proto, int oif,
		     struct find_rt *q, struct err *e)
{
	struct rt_filter fl = { .family = q->dst.family, .protocol = proto, .table = table,
				.oif = oif };
	for (int t = 0; t < 3; t++) {
		q->found = false;
		int rc = rt_dump(s, &fl, find_rt_cb, q, e);
		if (rc != -EINTR)
			return rc;
	}
	return -EINTR;
}

static void routed_undo(const struct cni_req *r, const struct cni_ns *ns,
			const struct cni_plumb *p)
{
	(void)r;
	struct link_info li;
	if (p->created && link_get(ns->host, p->host, &li, NULL) == 0)
		link_del(ns->host, li.index, NULL);
}

static void routed_del(const struct cni_req *r, const struct cni_ns *ns)
{
	struct link_info li;
	/* the pod end takes the host end with it */
	if (ns->pod && link_get(ns->pod, r->ifname, &li, NULL) == 0 && li.kind[0] &&
	    strcmp(li.kind, "veth") == 0)
		link_del(ns->pod, li.index, NULL);
	char host[LINK_NAMESZ];
	cni_host_ifname(r, host);
	if (ns->host && link_get(ns->host, host, &li, NULL) == 0)
		link_del(ns->host, li.index, NULL);
}

static int routed_check(const struct cni_req *r, const struct cni_ns *ns,
			const struct cni_ipam *c, bool dark, struct cni_fail *f)
{
	struct err e = { 0 };
	struct link_info li;
	char host[LINK_NAMESZ];
	cni_host_ifname(r, host);
	int host_idx = 0;
	if (link_get(ns->pod, r->ifname, &li, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "interface %s missing in %s",
				r->ifname, r->netns);
	int pod_idx = li.index;
	if (link_index(ns->host, host, &host_idx, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "host interface %s: %s", host,
				e.msg);
	bool v4 = false;
	for (unsigned i = 0; i < c->n; i++)
		v4 |= c->ip[i].family == AF_INET;
	if (v4) { /* the gateway's address on the host veth: its local route */
		struct find_rt q;
		memset(&q, 0, sizeof(q));
		ip_parse(CNI_GW4, &q.dst);
		q.len = 32;
		q.type = RTN_LOCAL;
		if (has_route(ns->host, RT_TABLE_LOCAL, 0, host_idx, &q, &e) < 0 || !q.found)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"gateway address %s/32 missing on %s (the agent adds it "
					"to endpoints of earlier releases)", CNI_GW4, host);
	}
	for (unsigned i = 0; i < c->n; i++) {
		char s[64];
		ip_fmt(&c->ip[i], s);
		bool is6 = c->ip[i].family == AF_INET6;
		struct find_rt q;
		memset(&q, 0, sizeof(q));
		q.dst = c->ip[i];
		q.len = is6 ? 128 : 32;
		q.type = RTN_LOCAL;
		if (has_route(ns->pod, RT_TABLE_LOCAL, 0, pod_idx, &q, &e) < 0 || !q.found)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"address %s missing on %s in %s", s, r->ifname, r->netns);
		memset(&q, 0, sizeof(q));
		q.dst.family = is6 ? AF_INET6 : AF_INET;
		q.len = 0;
		ip_parse(is6 ? CNI_GW6 : CNI_GW4, &q.gw);
		q.type = -1;
		if (has_route(ns->pod, RT_TABLE_MAIN, 0, pod_idx, &q, &e) < 0 || !q.found)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"default route via %s missing on %s in %s",
					is6 ? CNI_GW6 : CNI_GW4, r->ifname, r->netns);
		memset(&q, 0, sizeof(q));
		q.dst = c->ip[i];
		q.len = is6 ? 128 : 32;
		q.type = -1;
		if (has_route(ns->host, RT_TABLE_MAIN, RT_PROTO_KVNET, host_idx, &q, &e) < 0)
			return cni_fail(f, CNI_E_INTERNAL, "check failed", "host routes: %s", e.msg);
		if (!q.found && !dark)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"host route %s/%d dev %s proto 75 is missing", s,
					is6 ? 128 : 32, host);
		if (q.found && dark)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"host route %s/%d dev %s exists, but a migration target "
					"stays dark", s, is6 ? 128 : 32, host);
	}
	return 0;
}

const struct cni_mode cni_mode_routed = {
	.name = "routed",
	.add = routed_add,
	.undo = routed_undo,
	.del = routed_del,
	.check = routed_check,
};
