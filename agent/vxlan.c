/* vxlan — the overlay device and its FDB / neighbour entries (see vxlan.h). */
#include "agent/vxlan.h"

#include "agent/agent.h"
#include "kube/informer.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/ip.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/fdb.h"
#include "net/link.h"
#include "net/neigh.h"

#include <errno.h>
#include <linux/neighbour.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define VX_NODE_NAMESZ 254 /* a Node name (DNS subdomain, 253) and the NUL */

/* One node of the world model: its name and InternalIPs. */
struct vx_node {
	char name[VX_NODE_NAMESZ]; /* metadata.name */
	struct ip_addr v4, v6;	   /* its first IPv4 / IPv6 InternalIP (family 0: none) */
};

/* The Node objects of the world model, collected by node_cb. */
struct vx_nodes {
	struct vx_node *v; /* the nodes */
	unsigned n, cap;   /* used / allocated */
	bool oom;	   /* an allocation failed: the list is incomplete */
};

/* A permanent neighbour this agent installed on the device. */
struct vx_nb {
	struct ip_addr ip; /* another node's InternalIP */
	uint8_t mac[6];	   /* the VTEP MAC it resolves to */
};

struct agent_vxlan {
	struct agent *a;	  /* the agent (not owned) */
	int ifindex;		  /* the device, once created and up; 0 before */
	struct fdb_vxlan dev;	  /* what it was made (or adopted) as, while ifindex != 0 */
	char underlay_conf[CONF_STR_MAX]; /* [network] vxlan_underlay it was made for */
	struct vx_nb *nb;	  /* the neighbours this agent installed on it (the device is
				   * kvnet's: nobody else writes them, and they go with it) */
	unsigned n_nb, cap_nb;	  /* used / allocated entries of nb */
	bool cleaned;		  /* another cross_node: a leftover device was looked for */
};

/* The entry of nb for ip, or NULL. */
static struct vx_nb *nb_find(struct agent_vxlan *x, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < x->n_nb; i++)
		if (ip_eq(&x->nb[i].ip, ip))
			return &x->nb[i];
	return NULL;
}

/* Remember neighbour ip -> mac as installed (replacing what was noted for ip). 0 or
 * -ENOMEM with e. */
static int nb_note(struct agent_vxlan *x, const struct ip_addr *ip, const uint8_t mac[6],
		   struct err *e)
{
	struct vx_nb *n = nb_find(x, ip);
	if (!n) {
		if (x->n_nb == x->cap_nb) {
			if (x->cap_nb > UINT32_MAX / 2 / sizeof(*x->nb))
				return err_setx(e, ENOMEM, "vxlan: neighbours: too many");
			unsigned cap = x->cap_nb ? x->cap_nb * 2 : 8;
			struct vx_nb *v = realloc(x->nb, (size_t)cap * sizeof(*v));
			if (!v)
				return err_setx(e, ENOMEM, "vxlan: neighbours: out of memory");
			x->nb = v;
			x->cap_nb = cap;
		}
		n = &x->nb[x->n_nb++];
		n->ip = *ip;
	}
	memcpy(n->mac, mac, 6);
	return 0;
}

static void node_cb(void *user, const struct kube_obj *o)
{
	struct vx_nodes *ns = user;
	struct json_doc d;
	struct json_tok *tok;
	if (ns->oom || kube_obj_parse(o, &d, &tok) < 0)
		return;
	char mem[4096];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_node n;
	struct err e = { 0 };
	if (kube_node_view(&d, 0, &n, &ar, &e) == 0 && n.meta.name) {
		if (ns->n == ns->cap) {
			unsigned cap = ns->cap ? ns->cap * 2 : 8;
			struct vx_node *v = realloc(ns->v, cap * sizeof(*v));
			if (!v) {
				ns->oom = true;
				free(tok);
				return;
			}
			ns->v = v;
			ns->cap = cap;
		}
		struct vx_node *vn = &ns->v[ns->n];
		memset(vn, 0, sizeof(*vn));
		snprintf(vn->name, sizeof(vn->name), "%s", n.meta.name);
		for (unsigned i = 0; i < n.n_addrs; i++) {
			struct ip_addr ip;
			if (!n.addrs[i].type || strcmp(n.addrs[i].type, "InternalIP") != 0 ||
			    !n.addrs[i].address || !ip_parse(n.addrs[i].address, &ip))
				continue;
			struct ip_addr *slot = ip.family == AF_INET6 ? &vn->v6 : &vn->v4;
			if (!slot->family)
				*slot = ip;
		}
		ns->n++;
	}
	free(tok);
}

/* The VTEP (underlay) address of node n: its InternalIP of the underlay family. */
static const struct ip_addr *vtep(const struct conf *c, const struct vx_node *n)
{
	const struct ip_addr *ip = c->network.vxlan_family == CONF_FAMILY_IPV6 ? &n->v6 : &n->v4;
	return ip->family ? ip : NULL;
}

/* The MTU of link index (a link_dump callback). */
struct mtu_find {
	int index;
	uint32_t mtu;
};

static int mtu_cb(const struct link_info *li, void *arg, struct err *e)
{
	(void)e;
	struct mtu_find *m = arg;
	if (li->index == m->index)
		m->mtu = li->mtu;
	return 0;
}

/* The device as kvnet.conf and this node's address me want it: name, VNI, port, local
 * address, underlay (vxlan_underlay, else the interface holding me), MTU and MAC. 0 or
 * -errno with e. */
static int device_want(struct agent_vxlan *x, const struct ip_addr *me, struct fdb_vxlan *v,
		       struct err *e)
{
	const struct conf *c = agent_conf(x->a);
	struct nl_sock *s = agent_nl(x->a);
	int rc;
	memset(v, 0, sizeof(*v));
	v->vni = (uint32_t)c->network.vxlan_vni;
	v->port = (uint16_t)c->network.vxlan_port;
	v->local = *me;
	snprintf(v->name, sizeof(v->name), "%s", c->network.vxlan_device);
	fdb_vxlan_mac(me, v->mac);
	if (c->network.vxlan_underlay[0])
		rc = link_index(s, c->network.vxlan_underlay, &v->underlay, e);
	else
		rc = fdb_addr_ifindex(s, me, &v->underlay, e);
	if (rc < 0)
		return err_prefix(e, "vxlan: %s: underlay", v->name), rc;
	struct mtu_find mf = { .index = v->underlay };
	if ((rc = link_dump(s, mtu_cb, &mf, e)) < 0)
		return rc;
	v->mtu = fdb_vxlan_mtu(mf.mtu, me->family);
	if (!v->mtu)
		return err_setx(e, EMSGSIZE, "vxlan: underlay ifindex %d: MTU %u is too "
			       "small for the overlay", v->underlay, mf.mtu);
	return 0;
}

/* "vni 4096 port 4789 local 198.19.0.1 underlay 2" of v into buf. */
static const char *dev_fmt(const struct fdb_vxlan *v, char *buf, size_t len)
{
	char b[IP_STRLEN];
	snprintf(buf, len, "vni %u port %u local %s underlay %d", v->vni, v->port,
		 v->local.family ? ip_fmt(&v->local, b) : "none", v->underlay);
	return buf;
}

/* What of have differs from want in the attributes the overlay depends on (VNI, port,
 * local address, underlay): a list of names into buf, "" when none. */
static const char *dev_diff(const struct fdb_vxlan *have, const struct fdb_vxlan *want,
			    char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", have->vni != want->vni ? " vni" : "",
		 have->port != want->port ? " port" : "",
		 !ip_eq(&have->local, &want->local) ? " local" : "",
		 have->underlay != want->underlay ? " underlay" : "");
	return buf;
}

/* Create the device want, or adopt the existing link of its name: a vxlan link with the
 * VNI, port, local address and underlay wanted is kept (its MAC and MTU set when they
 * differ); one with other attributes is deleted and created again, with a warning naming
 * them; a link of another kind is refused. Sets it up. 0 or -errno with e. */
static int device_ensure(struct agent_vxlan *x, const struct ip_addr *me, struct err *e)
{
	struct nl_sock *s = agent_nl(x->a);
	struct fdb_vxlan want, have;
	char hb[96], wb[96], db[48];
	int idx = 0;
	int rc = device_want(x, me, &want, e);
	if (rc < 0)
		return rc;
	rc = fdb_vxlan_get(s, want.name, &have, &idx, e);
	if (rc == -ENOTSUP)
		return err_prefix(e, "vxlan: refusing to use or replace %s", want.name), -EEXIST;
	if (rc == 0 && dev_diff(&have, &want, db, sizeof(db))[0]) {
		log_msg(agent_log(x->a), LOG_LVL_WARN,
			"vxlan: %s exists with%s not as configured (%s; want %s): replacing it",
			want.name, db, dev_fmt(&have, hb, sizeof(hb)), dev_fmt(&want, wb, sizeof(wb)));
		if ((rc = link_del(s, idx, e)) < 0 && rc != -ENODEV)
			return err_prefix(e, "vxlan: %s: delete", want.name), rc;
		rc = -ENODEV;
	}
	if (rc == 0) {
		if (memcmp(have.mac, want.mac, 6) != 0 &&
		    (rc = link_set_mac(s, idx, want.mac, e)) < 0)
			return rc;
		if (have.mtu != want.mtu && (rc = link_set_mtu(s, idx, want.mtu, e)) < 0)
			return rc;
		log_msg(agent_log(x->a), LOG_LVL_INFO, "vxlan: adopted %s (ifindex %d) %s mtu %u",
			want.name, idx, dev_fmt(&want, wb, sizeof(wb)), want.mtu);
	} else if (rc == -ENODEV) {
		rc = fdb_vxlan_add(s, &want, e);
		if (rc < 0 && rc != -EEXIST)
			return rc;
		if ((rc = link_index(s, want.name, &idx, e)) < 0)
			return rc;
		log_msg(agent_log(x->a), LOG_LVL_INFO, "vxlan: created %s (ifindex %d) %s mtu %u",
			want.name, idx, dev_fmt(&want, wb, sizeof(wb)), want.mtu);
	} else {
		return rc;
	}
	if ((rc = link_set_up(s, idx, true, e)) < 0)
		return rc;
	x->ifindex = idx;
	x->dev = want;
	snprintf(x->underlay_conf, sizeof(x->underlay_conf), "%s",
		 agent_conf(x->a)->network.vxlan_underlay);
	agent_reconcile_soon(x->a); /* the routes module now routes through it */
	return 0;
}

/* The device in use when kvnet.conf (a reload) or this node's address no longer
 * describes it: a list of what changed into buf ("" = nothing). */
static const char *conf_changed(const struct agent_vxlan *x, const struct ip_addr *me,
				char *buf, size_t len)
{
	const struct conf *c = agent_conf(x->a);
	snprintf(buf, len, "%s%s%s%s%s",
		 strcmp(x->dev.name, c->network.vxlan_device) != 0 ? " vxlan_device" : "",
		 x->dev.vni != (uint32_t)c->network.vxlan_vni ? " vxlan_vni" : "",
		 x->dev.port != (uint16_t)c->network.vxlan_port ? " vxlan_port" : "",
		 strcmp(x->underlay_conf, c->network.vxlan_underlay) != 0 ? " vxlan_underlay" : "",
		 !ip_eq(&x->dev.local, me) ? " vxlan_family/local address" : "");
	return buf;
}

/* Delete the device in use (a reload changed what it should be): its FDB entries,
 * neighbours and routes go with it; device_ensure makes the new one. 0 or -errno. */
static int device_retire(struct agent_vxlan *x, const char *why, struct err *e)
{
	char b[96];
	log_msg(agent_log(x->a), LOG_LVL_WARN, "vxlan: configuration changed (%s): deleting %s "
		"(ifindex %d, %s) to create it again", why + 1, x->dev.name, x->ifindex,
		dev_fmt(&x->dev, b, sizeof(b)));
	int rc = link_del(agent_nl(x->a), x->ifindex, e);
	if (rc < 0 && rc != -ENODEV)
		return err_prefix(e, "vxlan: %s", x->dev.name), rc;
	x->ifindex = 0;
	x->n_nb = 0;
	return 0;
}

/* The FDB entries on the device, as the dump found them. */
struct vx_fdb {
	struct fdb_entry *v;
	unsigned n, cap;
};

static int fdb_cb(const struct fdb_entry *f, void *arg, struct err *e)
{
	struct vx_fdb *l = arg;
	if (!(f->state & NUD_PERMANENT) || !f->dst.family)
		return 0;
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 8;
		struct fdb_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return err_setx(e, ENOMEM, "vxlan: fdb dump: out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *f;
	return 0;
}

/* Program node n's entries (its VTEP vt): FDB and the neighbours of its InternalIPs. */
static int peer_apply(struct agent_vxlan *x, const struct vx_node *n, const struct ip_addr *vt,
		      bool have_fdb, struct err *e)
{
	struct nl_sock *s = agent_nl(x->a);
	uint8_t mac[6];
	fdb_vxlan_mac(vt, mac);
	int rc = 0;
	if (!have_fdb && (rc = fdb_replace(s, x->ifindex, mac, vt, e)) < 0)
		return rc;
	const struct ip_addr *ips[2] = { &n->v4, &n->v6 };
	for (unsigned i = 0; i < 2; i++) {
		if (!ips[i]->family)
			continue;
		const struct vx_nb *had = nb_find(x, ips[i]);
		if (had && memcmp(had->mac, mac, 6) == 0)
			continue; /* in place: written only when new or changed */
		if ((rc = neigh_add(s, x->ifindex, ips[i], mac, e)) < 0 ||
		    (rc = nb_note(x, ips[i], mac, e)) < 0)
			return rc;
	}
	return 0;
}

/* Bring the device and the entries to what the Node objects say. 0 or -errno with e. */
static int sync_all(struct agent_vxlan *x, struct err *e)
{
	const struct conf *c = agent_conf(x->a);
	struct vx_nodes ns = { 0 };
	agent_obj_each(x->a, AGENT_K_NODE, node_cb, &ns);
	int rc = 0;
	if (ns.oom) {
		rc = err_setx(e, ENOMEM, "vxlan: nodes: out of memory");
		goto out;
	}
	const struct vx_node *self = NULL;
	for (unsigned i = 0; i < ns.n && !self; i++)
		if (strcmp(ns.v[i].name, agent_node(x->a)) == 0)
			self = &ns.v[i];
	const struct ip_addr *me = self ? vtep(c, self) : NULL;
	if (!me)
		goto out; /* not known yet: nothing to build on */
	char why[96];
	if (x->ifindex && conf_changed(x, me, why, sizeof(why))[0] &&
	    (rc = device_retire(x, why, e)) < 0)
		goto out;
	if (!x->ifindex && (rc = device_ensure(x, me, e)) < 0)
		goto out;
	struct vx_fdb have = { 0 };
	rc = fdb_dump(agent_nl(x->a), x->ifindex, fdb_cb, &have, e);
	if (rc == -ENODEV || rc == -ENOENT) {
		x->ifindex = 0; /* the device went away (its neighbours with it): build it
				 * again next time */
		x->n_nb = 0;
		free(have.v);
		goto out;
	}
	if (rc < 0) {
		free(have.v);
		goto out;
	}
	/* stale: an entry no node's VTEP explains */
	for (unsigned j = 0; j < have.n && rc == 0; j++) {
		bool keep = false;
		for (unsigned i = 0; i < ns.n && !keep; i++) {
			const struct ip_addr *vt = vtep(c, &ns.v[i]);
			uint8_t mac[6];
			if (!vt || &ns.v[i] == self)
				continue;
			fdb_vxlan_mac(vt, mac);
			keep = ip_eq(vt, &have.v[j].dst) && memcmp(mac, have.v[j].mac, 6) == 0;
		}
		if (!keep) {
			rc = fdb_del(agent_nl(x->a), x->ifindex, have.v[j].mac, &have.v[j].dst, e);
			if (rc == -ENOENT)
				rc = 0;
		}
	}
	for (unsigned i = 0; i < ns.n && rc == 0; i++) {
		const struct ip_addr *vt = vtep(c, &ns.v[i]);
		if (!vt || &ns.v[i] == self)
			continue;
		uint8_t mac[6];
		fdb_vxlan_mac(vt, mac);
		bool found = false;
		for (unsigned j = 0; j < have.n && !found; j++)
			found = ip_eq(vt, &have.v[j].dst) && memcmp(mac, have.v[j].mac, 6) == 0;
		rc = peer_apply(x, &ns.v[i], vt, found, e);
	}
	free(have.v);
	/* stale neighbours: installed for an InternalIP no other node has now */
	for (unsigned j = 0; j < x->n_nb && rc == 0;) {
		bool keep = false;
		for (unsigned i = 0; i < ns.n && !keep; i++)
			keep = &ns.v[i] != self && vtep(c, &ns.v[i]) &&
			       (ip_eq(&ns.v[i].v4, &x->nb[j].ip) || ip_eq(&ns.v[i].v6, &x->nb[j].ip));
		if (keep) {
			j++;
			continue;
		}
		rc = neigh_del(agent_nl(x->a), x->ifindex, &x->nb[j].ip, e);
		if (rc == -ENOENT)
			rc = 0;
		if (rc == 0)
			x->nb[j] = x->nb[--x->n_nb];
	}
out:
	free(ns.v);
	return rc;
}

/* cross_node is not vxlan (a reload switched it, or a start found the device of a vxlan
 * run before): delete the device, its FDB entries, neighbours and the routes through it
 * go with it. A link of that name that is not a VXLAN device is not kvnet's: left alone.
 * 0 or -errno with e. */
static int teardown(struct agent_vxlan *x, struct err *e)
{
	const struct conf *c = agent_conf(x->a);
	struct nl_sock *s = agent_nl(x->a);
	struct fdb_vxlan have;
	char b[96];
	int idx = x->ifindex, rc;
	const char *name = x->ifindex ? x->dev.name : c->network.vxlan_device;
	if (!idx) {
		if (x->cleaned)
			return 0;
		rc = fdb_vxlan_get(s, name, &have, &idx, e);
		if (rc == -ENODEV || rc == -ENOTSUP) {
			err_clear(e);
			x->cleaned = true;
			return 0;
		}
		if (rc < 0)
			return rc;
	} else {
		have = x->dev;
	}
	log_msg(agent_log(x->a), LOG_LVL_WARN, "vxlan: cross_node is %s: deleting %s "
		"(ifindex %d, %s) with its FDB entries, neighbours and routes",
		conf_cross_node_name(c->network.cross_node), name, idx, dev_fmt(&have, b, sizeof(b)));
	rc = link_del(s, idx, e);
	if (rc < 0 && rc != -ENODEV)
		return err_prefix(e, "vxlan: %s: delete", name), rc;
	err_clear(e);
	x->ifindex = 0;
	x->n_nb = 0;
	x->cleaned = true;
	return 0;
}

static void on_reconciled(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)ev;
	struct agent_vxlan *x = arg;
	struct err e = { 0 };
	int rc;
	if (agent_conf(a)->network.cross_node == CONF_CROSS_VXLAN) {
		x->cleaned = false;
		rc = sync_all(x, &e);
	} else {
		rc = teardown(x, &e);
	}
	if (rc < 0)
		log_msg(agent_log(a), LOG_LVL_WARN, "%s", e.msg);
}

void *agent_vxlan_new(struct agent *a, struct err *e)
{
	struct agent_vxlan *x = calloc(1, sizeof(*x));
	if (!x) {
		err_setx(e, ENOMEM, "vxlan: out of memory");
		return NULL;
	}
	x->a = a;
	/* in every mode: a reload may switch cross_node to vxlan or away from it */
	agent_want_kind(a, AGENT_K_NODE);
	if (agent_hook_add(a, AGENT_HOOK_RECONCILED, on_reconciled, x, e) < 0) {
		free(x);
		return NULL;
	}
	return x;
}

void agent_vxlan_free(void *state)
{
	struct agent_vxlan *x = state;
	if (!x)
		return;
	agent_hook_del(x->a, AGENT_HOOK_RECONCILED, on_reconciled, x);
	free(x->nb);
	free(x);
}

int agent_vxlan_ifindex(const void *state)
{
	const struct agent_vxlan *x = state;
	return x ? x->ifindex : 0;
}
