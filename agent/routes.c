/* routes — the base routing module (see routes.h). */
#include "agent/routes.h"
#include "agent/blockobj.h"

#include "agent/agent.h"
#include "agent/vxlan.h"
#include "kube/informer.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/nl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct agent_routes {
	struct agent *a; /* the agent */
};

/* Strings and arrays built for one desired-state computation. */
struct world_mem {
	char **strs;			/* strdup'd strings */
	unsigned n_strs, cap_strs;	/* used / allocated */
	struct agent_node *nodes;	/* nodes */
	unsigned n_nodes, cap_nodes;	/* used / allocated */
	struct agent_block *blocks;	/* blocks */
	unsigned n_blocks, cap_blocks;	/* used / allocated */
	struct agent_owner *owners;	/* owners */
	unsigned n_owners, cap_owners;	/* used / allocated */
	bool oom;			/* an allocation failed */
	struct agent *a;		/* for logs */
};

static const char *wm_str(struct world_mem *m, const char *s)
{
	if (m->oom)
		return "";
	if (m->n_strs == m->cap_strs) {
		unsigned cap = m->cap_strs ? m->cap_strs * 2 : 64;
		char **nv = realloc(m->strs, cap * sizeof(*nv));
		if (!nv) {
			m->oom = true;
			return "";
		}
		m->strs = nv;
		m->cap_strs = cap;
	}
	char *d = strdup(s ? s : "");
	if (!d) {
		m->oom = true;
		return "";
	}
	m->strs[m->n_strs++] = d;
	return d;
}

/* Grow array *v (element size sz) to hold one more; false when out of memory. */
static bool wm_grow(struct world_mem *m, void **v, unsigned n, unsigned *cap, size_t sz)
{
	if (m->oom)
		return false;
	if (n < *cap)
		return true;
	unsigned nc = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, nc * sz);
	if (!nv) {
		m->oom = true;
		return false;
	}
	*v = nv;
	*cap = nc;
	return true;
}

static void wm_free(struct world_mem *m)
{
	for (unsigned i = 0; i < m->n_strs; i++)
		free(m->strs[i]);
	free(m->strs);
	free(m->nodes);
	free(m->blocks);
	free(m->owners);
}

static void node_cb(void *user, const struct kube_obj *o)
{
	struct world_mem *m = user;
	struct json_doc d;
	struct json_tok *tok;
	if (kube_obj_parse(o, &d, &tok) < 0)
		return;
	char mem[4096];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_node n;
	struct err e = { 0 };
	if (kube_node_view(&d, 0, &n, &ar, &e) == 0 &&
	    wm_grow(m, (void **)&m->nodes, m->n_nodes, &m->cap_nodes, sizeof(*m->nodes))) {
		struct agent_node *an = &m->nodes[m->n_nodes];
		memset(an, 0, sizeof(*an));
		an->name = wm_str(m, n.meta.name);
		for (unsigned i = 0; i < n.n_addrs; i++) {
			struct ip_addr ip;
			if (!n.addrs[i].type || strcmp(n.addrs[i].type, "InternalIP") != 0 ||
			    !n.addrs[i].address || !ip_parse(n.addrs[i].address, &ip))
				continue;
			struct ip_addr *slot = ip.family == AF_INET6 ? &an->v6 : &an->v4;
			if (!slot->family)
				*slot = ip;
		}
		m->n_nodes++;
	}
	free(tok);
}

static void block_cb(void *user, const struct kube_obj *o)
{
	struct world_mem *m = user;
	struct ipam_state st;
	struct err e = { 0 };
	if (agent_block_load(o, &st, &e) < 0) {
		log_msg(agent_log(m->a), LOG_LVL_DEBUG, "agent: ignored: %s", e.msg);
		goto out;
	}
	for (unsigned b = 0; b < st.n_blocks; b++) {
		const struct ipam_block *bl = &st.blocks[b];
		if (!wm_grow(m, (void **)&m->blocks, m->n_blocks, &m->cap_blocks,
			     sizeof(*m->blocks)))
			break;
		struct agent_block *ab = &m->blocks[m->n_blocks++];
		memset(ab, 0, sizeof(*ab));
		ab->net = bl->cidr.a;
		ab->len = bl->cidr.prefix;
		ab->node = wm_str(m, bl->affinity);
		for (unsigned i = 0; i < bl->size; i++) {
			const struct ipam_attrs *at = bl->slot[i];
			if (!at)
				continue;
			if (!wm_grow(m, (void **)&m->owners, m->n_owners, &m->cap_owners,
				     sizeof(*m->owners)))
				break;
			struct agent_owner *ow = &m->owners[m->n_owners++];
			ow->ip = ipam_block_addr(bl, i);
			bool active = at->active.uid[0] != 0;
			ow->node = wm_str(m, active ? at->active.node : at->node);
			ow->uid = wm_str(m, active ? at->active.uid : "");
		}
	}
out:
	ipam_state_free(&st);
}

/* The contribution: desired.h over the endpoints, the overrides, the nodes and blocks. */
static int contribute(void *arg, struct agent *a, struct agent_want *want, struct err *e)
{
	(void)arg;
	const struct conf *c = agent_conf(a);
	struct world_mem m;
	memset(&m, 0, sizeof(m));
	m.a = a;
	agent_obj_each(a, AGENT_K_NODE, node_cb, &m);
	agent_obj_each(a, AGENT_K_BLOCK, block_cb, &m);
	unsigned n_eps = agent_ep_count(a);
	const struct agent_ep **eps = calloc(n_eps ? n_eps : 1, sizeof(*eps));
	if (!eps || m.oom) {
		free(eps);
		wm_free(&m);
		return err_setx(e, ENOMEM, "agent: reconcile: out of memory");
	}
	for (unsigned i = 0; i < n_eps; i++)
		eps[i] = agent_ep_at(a, i);
	unsigned n_ovr = 0;
	const struct agent_override *ovr = agent_overrides(a, &n_ovr);
	/* cross_node = vxlan: "via a node" through the overlay, once its device is up */
	int via_oif = c->network.cross_node == CONF_CROSS_VXLAN
			      ? agent_vxlan_ifindex(agent_module(a, "vxlan"))
			      : 0;
	struct agent_world w = {
		.self = agent_node(a),
		.direct = c->network.cross_node == CONF_CROSS_DIRECT || via_oif > 0,
		.via_oif = via_oif,
		.metric = c->network.route_metric,
		.protocol = (uint8_t)c->network.route_protocol,
		.nodes = m.nodes, .n_nodes = m.n_nodes,
		.blocks = m.blocks, .n_blocks = m.n_blocks,
		.owners = m.owners, .n_owners = m.n_owners,
		.eps = eps, .n_eps = n_eps,
		.ovr = ovr, .n_ovr = n_ovr,
	};
	struct rt_route *r = NULL;
	unsigned n = 0;
	int rc = agent_desired(&w, &r, &n, e);
	free(eps);
	wm_free(&m);
	if (rc < 0)
		return rc;
	rc = agent_want_routes(want, r, n, e);
	free(r);
	return rc;
}

int agent_routes_apply_override(struct agent *a, const struct agent_override *o,
				struct err *e)
{
	const struct conf *c = agent_conf(a);
	struct agent_world w = {
		.self = agent_node(a),
		.direct = true,
		.via_oif = c->network.cross_node == CONF_CROSS_VXLAN
				   ? agent_vxlan_ifindex(agent_module(a, "vxlan"))
				   : 0,
		.metric = c->network.route_metric,
		.protocol = (uint8_t)c->network.route_protocol,
		.ovr = o, .n_ovr = 1,
	};
	struct world_mem m;
	memset(&m, 0, sizeof(m));
	m.a = a;
	if (o->kind == AGENT_OVR_VIA) {
		agent_obj_each(a, AGENT_K_NODE, node_cb, &m);
		w.nodes = m.nodes;
		w.n_nodes = m.n_nodes;
	}
	struct rt_route *want = NULL;
	unsigned n = 0;
	int rc = agent_desired(&w, &want, &n, e);
	wm_free(&m);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = rt_replace(agent_nl(a), &want[i], e);
	if (rc == 0 && n == 0 && o->kind != AGENT_OVR_NONE)
		rc = err_setx(e, EHOSTUNREACH, "agent: override: no route (unknown node or "
					      "interface)");
	free(want);
	return rc;
}

static void on_object(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)arg;
	if ((ev->kind == AGENT_K_BLOCK || ev->kind == AGENT_K_NODE) && agent_obj_all_synced(a))
		agent_reconcile_soon(a);
}

struct agent_routes *agent_routes_new(struct agent *a, struct err *e)
{
	struct agent_routes *r = calloc(1, sizeof(*r));
	if (!r) {
		err_setx(e, ENOMEM, "agent: routes: out of memory");
		return NULL;
	}
	r->a = a;
	agent_want_kind(a, AGENT_K_BLOCK);
	agent_want_kind(a, AGENT_K_NODE);
	if (agent_hook_add(a, AGENT_HOOK_OBJECT, on_object, r, e) < 0 ||
	    agent_contrib_add(a, AGENT_KOBJ_ROUTE, contribute, r, e) < 0) {
		agent_routes_free(r);
		return NULL;
	}
	return r;
}

void agent_routes_free(struct agent_routes *r)
{
	if (!r)
		return;
	agent_hook_del(r->a, AGENT_HOOK_OBJECT, on_object, r);
	agent_contrib_del(r->a, AGENT_KOBJ_ROUTE, contribute, r);
	free(r);
}
