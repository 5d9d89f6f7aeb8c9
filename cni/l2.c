/* l2 — the "l2" data-plane mode and the L2Network it reads (l2.h). */
#include "cni/l2.h"

#include "cni/mode.h"
#include "kube/client.h"
#include "lib/err.h"
#include "lib/file.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/netns.h"
#include "net/nl.h"
#include "net/route.h"
#include "net/tc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the L2Network from the datastore ------------------------------------------------- */

/* The file datastore's document of network name into out: 0, -ENOENT, or -errno (e). */
static int file_get(const struct cni_req *r, const char *name, struct l2_netdef *out,
		    struct err *e)
{
	char path[4200];
	char *text = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/%s/%s.json", r->state_dir, L2_DOC_DIR, name);
	int rc = file_read(path, L2_DOC_MAX, &text, &len, e);
	if (rc < 0)
		return rc;
	rc = l2_netdef_parse_text(text, len, out, e);
	free(text);
	if (rc < 0)
		return err_prefix(e, "%s", path), rc;
	if (strcmp(out->name, name) != 0)
		return err_setx(e, EINVAL, "%s: metadata.name is %s, not %s", path, out->name, name);
	return 0;
}

/* GET the custom resource name into out: 0, -ENOENT, -EINVAL (bad object) or -EIO. */
static int kube_get_def(struct cni_store *cs, const char *name, struct l2_netdef *out,
			struct err *e)
{
	struct kube_resp resp;
	memset(&resp, 0, sizeof(resp));
	int rc = kube_get(cs->c, &kube_res_l2networks, NULL, name, &resp, e);
	if (rc == 0 && (rc = l2_netdef_parse_text(resp.body, resp.len, out, e)) < 0)
		err_prefix(e, "GET l2networks/%s", name);
	kube_resp_free(&resp);
	if (rc < 0 && rc != -ENOENT && rc != -EINVAL)
		rc = -EIO;
	return rc;
}

/* One more network on trunk t (as this node sees it) into l->nets, when d is on it. */
static void add_sibling(struct cni_l2 *l, const struct cni_req *r, const struct l2_netdef *d)
{
	struct l2_node node = { .name = r->node };
	const char *t = l2_netdef_trunk(d, &node);
	if (!t || strcmp(t, l->trunk) != 0 || strcmp(d->name, l->def.name) == 0 ||
	    l->n_nets == L2_VLAN_MAX)
		return;
	struct l2_net *n = &l->nets[l->n_nets++];
	snprintf(n->id, sizeof(n->id), "%s", d->id);
	n->vid = d->vid;
	n->mtu = d->mtu;
}

/* Every other L2Network of the datastore that uses l->trunk on this node into l->nets.
 * Documents that do not parse are skipped (the agent reports them). */
static int siblings(struct cni_store *cs, const struct cni_req *r, struct cni_l2 *l,
		    struct err *e)
{
	struct l2_netdef *d = malloc(sizeof(*d));
	if (!d)
		return err_setx(e, ENOMEM, "L2Networks: out of memory");
	int rc = 0;
	if (!r->kube) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", r->state_dir, L2_DOC_DIR);
		DIR *dir = opendir(path);
		if (!dir) {
			free(d);
			return err_set(e, errno, "%s", path);
		}
		struct dirent *de;
		while ((de = readdir(dir))) {
			size_t n = strlen(de->d_name);
			char name[L2_NAME_MAX + 1];
			if (n < 6 || n - 5 > L2_NAME_MAX || strcmp(de->d_name + n - 5, ".json") != 0)
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)(n - 5), de->d_name);
			if (file_get(r, name, d, NULL) == 0)
				add_sibling(l, r, d);
		}
		closedir(dir);
		free(d);
		return 0;
	}
	struct kube_resp resp;
	memset(&resp, 0, sizeof(resp));
	struct json_doc doc;
	struct json_tok *tok = NULL;
	if ((rc = kube_list(cs->c, &kube_res_l2networks, NULL, NULL, &resp, e)) < 0 ||
	    (rc = json_parse_alloc(&doc, resp.body, resp.len, &tok, e)) < 0) {
		err_prefix(e, "LIST l2networks");
		goto out;
	}
	int items = json_get(&doc, 0, "items");
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &doc, items);
	while (items >= 0 && json_iter_next(&it, &k, &v))
		if (l2_netdef_parse(&doc, v, d, NULL) == 0)
			add_sibling(l, r, d);
out:
	free(tok);
	kube_resp_free(&resp);
	free(d);
	return rc;
}

int cni_l2_load(struct cni_store *cs, struct cni_req *r, struct cni_l2 *l, struct cni_fail *f)
{
	struct err e = { 0 };
	memset(l, 0, sizeof(*l));
	int rc = r->kube ? kube_get_def(cs, r->network, &l->def, &e)
			 : file_get(r, r->network, &l->def, &e);
	if (rc == -ENOENT)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"network: L2Network %s does not exist (%s)", r->network,
				r->kube ? "GET /apis/kvnet.io/v1/l2networks" : e.msg);
	if (rc == -EINVAL)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "network: %s",
				e.msg);
	if (rc < 0)
		return cni_fail(f, CNI_E_TRYLATER, "datastore unavailable", "L2Network %s: %s",
				r->network, e.msg);
	struct l2_node node = { .name = r->node };
	const char *t = l2_netdef_trunk(&l->def, &node);
	if (!t)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"L2Network %s: no trunk interface for node %s (no spec.trunk."
				"interface and no override for it)", r->network, r->node);
	snprintf(l->trunk, sizeof(l->trunk), "%s", t);
	char br[16];
	l2_bridge_name(l->def.id, br);
	l->bridge = if_nametoindex(br) != 0;
	l->n_nets = 1;
	snprintf(l->nets[0].id, sizeof(l->nets[0].id), "%s", l->def.id);
	l->nets[0].vid = l->def.vid;
	l->nets[0].mtu = l->def.mtu;
	if (!l->bridge && siblings(cs, r, l, &e) < 0)
		return cni_fail(f, CNI_E_TRYLATER, "datastore unavailable",
				"L2Network %s: the networks sharing trunk %s: %s", r->network,
				l->trunk, e.msg);
	r->n_pools = 0;
	r->families = 0;
	const struct l2_subnet *sn[2] = { &l->def.v4, &l->def.v6 };
	for (int i = 0; i < 2; i++) {
		if (!sn[i]->set)
			continue;
		r->pools[r->n_pools] = (struct ipam_cidr){ .a = sn[i]->net, .prefix = sn[i]->prefix };
		r->pool_gw[r->n_pools] = sn[i]->gw;
		r->n_pools++;
		r->families |= i == 0 ? IPAM_V4 : IPAM_V6;
	}
	if (!r->mtu)
		r->mtu = l->def.mtu;
	r->l2 = l;
	return 0;
}

/* --- the data plane ------------------------------------------------------------------- */

/* sysctl net.ipv6.conf.IF.KEY = v in the host namespace. */
static int v6_sysctl(const char *ifname, const char *key, const char *v, struct err *e)
{
	char name[128];
	snprintf(name, sizeof(name), "net.ipv6.conf.%s.%s", ifname, key);
	return netns_sysctl_write(-1, name, v, e);
}

/* The subnet prefix length of address a (the L2Network's; a host prefix without one). */
static uint8_t plen_of(const struct cni_req *r, const struct ip_addr *a)
{
	const struct l2_subnet *s = a->family == AF_INET ? &r->l2->def.v4 : &r->l2->def.v6;
	if (s->set)
		return s->prefix;
	return a->family == AF_INET ? 32 : 128;
}

/* The trunk and every network on it, when this network's bridge is not there yet; under
 * CNI_L2_LOCK so that two ADDs do not build the same links at once. */
static int trunk_up(const struct cni_req *r, struct nl_sock *hs, struct err *e)
{
	const struct cni_l2 *l = r->l2;
	char br[16];
	l2_bridge_name(l->def.id, br);
	if (mkdir(CNI_KUBE_LOCKDIR, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "%s", CNI_KUBE_LOCKDIR);
	int fd = open(CNI_L2_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "%s", CNI_L2_LOCK);
	int rc = flock(fd, LOCK_EX) < 0 ? err_set(e, errno, "%s: flock", CNI_L2_LOCK) : 0;
	if (rc == 0 && !if_nametoindex(br)) /* another ADD may have made it meanwhile */
		rc = l2_trunk_apply(hs, l->trunk, l->nets, l->n_nets, e);
	close(fd);
	return rc;
}

static int l2_add(const struct cni_req *r, const struct cni_ns *ns, const struct cni_ipam *c,
		  struct cni_plumb *p, struct err *e)
{
	struct nl_sock *hs = ns->host, *ps = ns->pod;
	struct link_info li;
	int rc;
	if (!r->l2)
		return err_setx(e, EINVAL, "mode l2: no L2Network loaded");
	if ((rc = trunk_up(r, hs, e)) < 0)
		return rc;
	if (link_get(hs, p->host, &li, NULL) == 0) /* left over by a crashed ADD: replace it */
		link_del(hs, li.index, NULL);
	struct link_veth v = {
		.name = p->host,
		.peer = r->ifname,
		.peer_netns_fd = ns->nsfd,
		.peer_mac = c->has_mac ? c->mac : NULL,
		.mtu = r->mtu,
	};
	if ((rc = link_add_veth(hs, &v, e)) < 0)
		return rc;
	p->created = true;
	/* the host port is a bridge port, not a host: no address of its own, ever (set
	 * before it goes up, so it never makes a link-local address or solicits routers) */
	if ((rc = v6_sysctl(p->host, "addr_gen_mode", "1", e)) < 0 ||
	    (rc = v6_sysctl(p->host, "accept_ra", "0", e)) < 0 ||
	    (rc = v6_sysctl(p->host, "accept_dad", "0", e)) < 0 ||
	    (rc = v6_sysctl(p->host, "disable_ipv6", "1", e)) < 0)
		return rc;
	if ((rc = link_get(hs, p->host, &li, e)) < 0)
		return rc;
	p->host_idx = li.index;
	memcpy(p->host_mac, li.mac, 6);

	/* pod side: the VM's MAC and addresses on the subnet, no default route */
	if ((rc = link_get(ps, r->ifname, &li, e)) < 0)
		return rc;
	p->pod_idx = li.index;
	memcpy(p->pod_mac, li.mac, 6);
	bool v6 = false;
	for (unsigned i = 0; i < c->n; i++)
		v6 |= c->ip[i].family == AF_INET6;
	if (v6) {
		char sc[128];
		snprintf(sc, sizeof(sc), "net.ipv6.conf.%s.accept_dad", r->ifname);
		if ((rc = netns_sysctl_write(ns->nsfd, sc, "0", e)) < 0)
			return rc;
	}
	for (unsigned i = 0; i < c->n; i++) {
		struct ip_addr a = c->ip[i];
		bool is6 = a.family == AF_INET6;
		if ((rc = addr_add(ps, p->pod_idx, &a, plen_of(r, &a), is6 ? IFA_F_NODAD : 0, e)) < 0)
			return rc;
	}
	if ((rc = link_set_up(ps, p->pod_idx, true, e)) < 0)
		return rc;

	/* host side: guard, bridge, up (l2_port_attach's order) */
	struct l2_guard g;
	memset(&g, 0, sizeof(g));
	memcpy(g.mac, p->pod_mac, 6);
	for (unsigned i = 0; i < c->n && g.n_ips < L2_PORT_IPS; i++)
		g.ips[g.n_ips++] = c->ip[i];
	/* who the port is, for the agent's live-migration hand-over (l2/net.h) */
	if (r->pod_uid[0]) {
		struct l2_port_id id;
		char alias[LINK_ALIASSZ];
		memset(&id, 0, sizeof(id));
		snprintf(id.uid, sizeof(id.uid), "%s", r->pod_uid);
		memcpy(id.mac, g.mac, 6);
		for (size_t i = 0; i < g.n_ips; i++)
			id.ips[id.n_ips++] = g.ips[i];
		if (l2_alias_fmt(&id, alias, sizeof(alias)) < 0)
			return err_setx(e, ENOSPC, "host port %s: alias: pod uid or addresses too long",
					p->host);
		if ((rc = link_set_alias(hs, p->host_idx, alias, e)) < 0)
			return rc;
	}
	/* a migration target's port stays closed until the agent sees the VM there */
	return l2_port_attach(hs, r->l2->def.id, p->host_idx, &g, p->dark, e);
}

static void l2_undo(const struct cni_req *r, const struct cni_ns *ns, const struct cni_plumb *p)
{
	(void)r;
	struct link_info li;
	if (p->created && link_get(ns->host, p->host, &li, NULL) == 0)
		link_del(ns->host, li.index, NULL);
}

static void l2_del(const struct cni_req *r, const struct cni_ns *ns)
{
	struct link_info li;
	if (ns->pod && link_get(ns->pod, r->ifname, &li, NULL) == 0 && strcmp(li.kind, "veth") == 0)
		link_del(ns->pod, li.index, NULL);
	char host[LINK_NAMESZ];
	cni_host_ifname(r, host);
	if (ns->host && link_get(ns->host, host, &li, NULL) == 0)
		link_del(ns->host, li.index, NULL);
}

/* What CHECK looks for among the pod's local routes. */
struct l2_find {
	struct ip_addr dst; /* a local address */
	bool found;	    /* seen */
	bool deflt;	    /* a default route was seen */
};

static int l2_find_cb(const struct rt_route *rt, void *arg, struct err *e)
{
	(void)e;
	struct l2_find *q = arg;
	if (rt->type == RTN_LOCAL && ip_eq(&rt->dst, &q->dst))
		q->found = true;
	if (rt->dst_len == 0 && rt->type == RTN_UNICAST)
		q->deflt = true;
	return 0;
}

/* Dump the routes of table on oif in family fam into q (an interrupted dump is retried). */
static int l2_routes(struct nl_sock *s, int fam, uint32_t table, int oif, struct l2_find *q,
		     struct err *e)
{
	struct rt_filter fl = { .family = fam, .table = table, .oif = oif };
	for (int t = 0; t < 3; t++) {
		q->found = q->deflt = false;
		int rc = rt_dump(s, &fl, l2_find_cb, q, e);
		if (rc != -EINTR)
			return rc;
	}
	return -EINTR;
}

static int l2_check(const struct cni_req *r, const struct cni_ns *ns, const struct cni_ipam *c,
		    bool dark, struct cni_fail *f)
{
	(void)dark;
	struct err e = { 0 };
	struct link_info pl, hl, bl;
	char host[LINK_NAMESZ], br[16];
	cni_host_ifname(r, host);
	l2_bridge_name(r->l2->def.id, br);
	if (link_get(ns->pod, r->ifname, &pl, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "interface %s missing in %s",
				r->ifname, r->netns);
	if (c->has_mac && memcmp(pl.mac, c->mac, 6) != 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed",
				"%s in %s does not have the VM's MAC", r->ifname, r->netns);
	if (link_get(ns->host, host, &hl, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "host port %s: %s", host, e.msg);
	if (link_get(ns->host, br, &bl, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "L2Network %s: bridge %s: %s",
				r->network, br, e.msg);
	if (hl.master != bl.index)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "host port %s is not in bridge %s",
				host, br);
	struct tc_bpf_info tb[4];
	size_t n = 0;
	bool guard = false;
	if (tc_bpf_list(ns->host, hl.index, TC_HOOK_INGRESS, tb, 4, &n, &e) == 0)
		for (size_t i = 0; i < n; i++)
			guard |= strcmp(tb[i].name, "kvnet_guard") == 0;
	if (!guard)
		return cni_fail(f, CNI_E_INTERNAL, "check failed",
				"host port %s has no port guard (tc ingress kvnet_guard)", host);
	int fams[2] = { AF_INET, AF_INET6 };
	for (int k = 0; k < 2; k++) {
		struct l2_find q;
		memset(&q, 0, sizeof(q));
		q.dst.family = fams[k];
		if (l2_routes(ns->pod, fams[k], RT_TABLE_MAIN, pl.index, &q, &e) < 0)
			return cni_fail(f, CNI_E_INTERNAL, "check failed", "routes: %s", e.msg);
		if (q.deflt)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"%s in %s has a default route (a secondary L2 interface "
					"has none)", r->ifname, r->netns);
	}
	for (unsigned i = 0; i < c->n; i++) {
		struct l2_find q;
		memset(&q, 0, sizeof(q));
		q.dst = c->ip[i];
		char s[64];
		ip_fmt(&c->ip[i], s);
		if (l2_routes(ns->pod, q.dst.family, RT_TABLE_LOCAL, pl.index, &q, &e) < 0 ||
		    !q.found)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
					"address %s missing on %s in %s", s, r->ifname, r->netns);
	}
	return 0;
}

const struct cni_mode cni_mode_l2 = {
	.name = "l2",
	.add = l2_add,
	.undo = l2_undo,
	.del = l2_del,
	.check = l2_check,
};
