/* mnpol — MultiNetworkPolicy on the L2 access ports (see mnpol.h). */
#include "agent/mnpol.h"

#include "agent/agent.h"
#include "agent/metrics.h"
#include "agent/mnpnft.h"
#include "conf/conf.h"
#include "kube/informer.h"
#include "kube/types.h"
#include "l2/net.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "net/link.h"
#include "net/nft.h"
#include "net/nl.h"
#include "policy/policy.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MNPOL_RETRY_MS 1000	/* after a failed sync */
#define MNPOL_PORT_POLL_MS 500	/* while a port waits for its pod / network-status */
#define MNPOL_PORTS_MAX 1024	/* L2 ports on one node */
#define MNPOL_BRIDGES_MAX 64	/* kvnet L2 bridges on one node */

/* One L2 access port found in the kernel. */
struct port {
	char ifname[16];		/* the port (bridge side of the VM's interface) */
	struct l2_port_id id;		/* its alias: pod uid, VM MAC, addresses */
	char pod_ns[64];		/* the pod's namespace ("" until found) */
	char pod[254];			/* its name */
	char net[KUBE_NET_NAME_MAX];	/* the NAD it is attached through, "NS/NAD" */
	bool known;			/* pod, entry and NAD known: compiled */
};

struct agent_mnpol {
	struct agent *a;		/* the hub (not owned) */
	struct log *log;		/* its logger (not owned) */
	bool active;			/* enabled with the kubernetes datastore */
	struct nl_sock *nf;		/* NETLINK_NETFILTER (owned) */
	struct ev_timer *timer;		/* the coalesced sync (owned) */
	bool hooked;			/* hooks registered */
	bool waiting_logged;		/* "waiting for the informers" said once */
	unsigned last_dropped;		/* ports dropped after the last sync (said on change) */
	struct port *ports;		/* the ports of the current sync (heap, MNPOL_PORTS_MAX) */
	unsigned n_ports;		/* how many */
	int bridges[MNPOL_BRIDGES_MAX]; /* ifindex of every kvl-* bridge (scratch) */
	unsigned n_bridges;		/* how many */
	struct agent_metric *m_batches; /* kvnet_mnpol_batches_total{result} */
	struct agent_metric *m_lat;	/* kvnet_mnpol_batch_seconds */
	struct agent_metric *m_rules;	/* kvnet_mnpol_rules */
	struct agent_metric *m_ports;	/* kvnet_mnpol_ports{state} */
};

static void schedule(struct agent_mnpol *p, uint64_t ms)
{
	if (p->timer && (!ev_timer_armed(p->timer) || ms == 0))
		ev_timer_arm(p->timer, ms, 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the ports in the kernel ----------------------------------------------------- */

static int bridge_one(const struct link_info *li, void *arg, struct err *e)
{
	struct agent_mnpol *p = arg;
	(void)e;
	if (strncmp(li->name, "kvl-", 4) == 0 && strcmp(li->kind, "bridge") == 0 &&
	    p->n_bridges < MNPOL_BRIDGES_MAX)
		p->bridges[p->n_bridges++] = li->index;
	return 0;
}

static int port_one(const struct link_info *li, void *arg, struct err *e)
{
	struct agent_mnpol *p = arg;
	struct l2_port_id id;
	(void)e;
	bool in_bridge = false;
	for (unsigned i = 0; i < p->n_bridges && li->master; i++)
		in_bridge |= p->bridges[i] == li->master;
	/* kvt-* / kvu-* are the trunk side; the table passes them */
	if (!in_bridge || strncmp(li->name, "kv", 2) != 0 || strncmp(li->name, "kvt-", 4) == 0 ||
	    strncmp(li->name, "kvu-", 4) == 0 || p->n_ports == MNPOL_PORTS_MAX)
		return 0;
	struct port *pt = &p->ports[p->n_ports++];
	memset(pt, 0, sizeof(*pt));
	snprintf(pt->ifname, sizeof(pt->ifname), "%s", li->name);
	/* a port without kvnet's alias has no pod: it stays dropped */
	if (l2_alias_parse(li->alias, &id) == 0)
		pt->id = id;
	return 0;
}

/* Every L2 port of this node into p->ports. 0 or -errno with e. */
static int find_ports(struct agent_mnpol *p, struct err *e)
{
	int rc = -EINTR;
	for (int t = 0; t < 3 && rc == -EINTR; t++) {
		p->n_bridges = p->n_ports = 0;
		if ((rc = link_dump(agent_nl(p->a), bridge_one, p, e)) == 0)
			rc = link_dump(agent_nl(p->a), port_one, p, e);
	}
	return rc < 0 ? err_prefix(e, "mnpol: L2 ports"), rc : 0;
}

/* A pod of this node: the ports it owns get its name and their NAD. */
static void pod_one(void *user, const struct kube_obj *o)
{
	struct agent_mnpol *p = user;
	struct json_doc d;
	struct json_tok *tok = NULL;
	bool parsed = false;
	for (unsigned i = 0; i < p->n_ports; i++) {
		struct port *pt = &p->ports[i];
		if (!pt->id.uid[0] || !o->uid || strcmp(pt->id.uid, o->uid) != 0)
			continue;
		snprintf(pt->pod_ns, sizeof(pt->pod_ns), "%s", o->ns);
		snprintf(pt->pod, sizeof(pt->pod), "%s", o->name);
		if (!parsed && kube_obj_parse(o, &d, &tok) < 0)
			break;
		parsed = true;
		char mem[16384];
		struct kube_arena ar;
		struct kube_meta m;
		kube_arena_init(&ar, mem, sizeof(mem));
		if (kube_meta_view(&d, 0, &m, &ar, NULL) < 0)
			break;
		const char *st = kube_annotation(&m, KUBE_NET_STATUS, &ar);
		struct kube_net_attach at;
		struct err e = { 0 };
		if (!st) /* Multus writes it after the CNI ADDs: wait */
			continue;
		int rc = kube_net_status_find(st, strlen(st), pt->id.mac, pt->id.ips,
					      (unsigned)pt->id.n_ips, &at, &e);
		if (rc == -EINVAL)
			log_warnx(p->log, "mnpol: pod %s/%s: %s", o->ns, o->name, e.msg);
		if (rc < 0)
			continue;
		/* "NAD" is in the pod's namespace */
		if (strchr(at.name, '/'))
			snprintf(pt->net, sizeof(pt->net), "%s", at.name);
		else
			snprintf(pt->net, sizeof(pt->net), "%s/%s", o->ns, at.name);
	}
	free(tok);
}

/* ---- one sync ------------------------------------------------------------------------ */

struct world_ctx {
	struct agent_mnpol *p; /* for logs */
	struct pol_world *w;   /* being filled */
	const char *kind;      /* the kind of the informer being read */
	unsigned bad;	       /* objects refused */
};

static void world_add(void *user, const struct kube_obj *obj)
{
	struct world_ctx *c = user;
	struct err e = { 0 };
	if (pol_world_add_json_kind(c->w, obj->json, obj->len, c->kind, NULL, &e) < 0 &&
	    c->bad++ < 3)
		log_warnx(c->p->log, "mnpol: %s %s/%s skipped: %s", c->kind, obj->ns, obj->name,
			  e.msg);
}

static struct pol_world *world_build(struct agent_mnpol *p)
{
	static const struct {
		enum agent_kind k; /* informer */
		const char *kind;  /* its objects' kind */
	} kinds[] = { { AGENT_K_NAMESPACE, "Namespace" },
		      { AGENT_K_POD_ALL, "Pod" },
		      { AGENT_K_VMI, "VirtualMachineInstance" },
		      { AGENT_K_MNETPOL, "MultiNetworkPolicy" } };
	struct pol_world *w = pol_world_new();
	struct world_ctx wc = { .p = p, .w = w };
	for (unsigned k = 0; w && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		wc.kind = kinds[k].kind;
		agent_obj_each(p->a, kinds[k].k, world_add, &wc);
	}
	return w;
}

/* Compile the known ports of NAD net (those with pt->net == net, from index first on)
 * into *rs; a port whose pod the view does not hold stays unknown. 0 or -ENOMEM. */
static int compile_net(struct agent_mnpol *p, const struct pol_world *w, unsigned first,
		       struct pol_ruleset *rs, struct err *e)
{
	const char *net = p->ports[first].net;
	struct pol_world *v = pol_world_net(w, net);
	struct pol_ep_in *in = calloc(p->n_ports, sizeof(*in));
	unsigned n = 0;
	int rc = -ENOMEM;
	memset(rs, 0, sizeof(*rs));
	if (!v || !in) {
		err_setx(e, ENOMEM, "mnpol: out of memory");
		goto out;
	}
	for (unsigned i = first; i < p->n_ports; i++) {
		struct port *pt = &p->ports[i];
		if (!pt->net[0] || strcmp(pt->net, net) != 0)
			continue;
		struct pol_ep_in one = { pt->pod_ns, pt->pod, pt->ifname };
		struct pol_ruleset t;
		if (pol_compile(v, &one, 1, &t, NULL) < 0)
			continue; /* the pod not (yet) in the cluster-wide informer */
		pol_ruleset_free(&t);
		in[n++] = one;
		pt->known = true;
	}
	rc = n ? pol_compile(v, in, n, rs, e) : 0;
out:
	free(in);
	pol_world_free(v);
	return rc;
}

static unsigned count_rules(const struct mnft_table *t)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->n_chains; i++)
		n += t->chains[i].n;
	return n;
}

static int sync_once(struct agent_mnpol *p, struct err *e)
{
	int rc;
	struct pol_world *w = NULL;
	struct pol_ruleset *rss = NULL;
	unsigned n_rs = 0;
	struct mnft_table want = { 0 };
	struct nft_state st;
	struct nft_batch b;
	bool st_init = false, b_init = false;
	if ((rc = find_ports(p, e)) < 0)
		return rc;
	agent_obj_each(p->a, AGENT_K_POD, pod_one, p);
	w = world_build(p);
	rss = calloc(p->n_ports ? p->n_ports : 1, sizeof(*rss));
	if (!w || !rss) {
		rc = err_setx(e, ENOMEM, "mnpol: out of memory");
		goto out;
	}
	/* one rule set per NAD, each compiled on that NAD's view of the world */
	for (unsigned i = 0; i < p->n_ports; i++) {
		bool seen = false;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = strcmp(p->ports[j].net, p->ports[i].net) == 0;
		if (!p->ports[i].net[0] || seen)
			continue;
		if ((rc = compile_net(p, w, i, &rss[n_rs], e)) < 0)
			goto out;
		n_rs++;
	}
	if ((rc = mnft_build(rss, n_rs, &want, e)) < 0)
		goto out;
	if ((rc = nft_state_init(&st, MNFT_TABLE)) < 0) {
		err_setx(e, -rc, "mnpol: nft state");
		goto out;
	}
	st_init = true;
	nft_state_family(&st, NFPROTO_BRIDGE);
	if ((rc = nft_state_load(p->nf, &st, e)) < 0)
		goto out;
	unsigned known = 0;
	for (unsigned i = 0; i < p->n_ports; i++)
		known += p->ports[i].known;
	if (!p->n_bridges) {
		/* no kvnet L2 bridge on this node: no table (the last network went, or there
		 * never was one: a node without L2 networks gets no bridge table) */
		if (st.exists) {
			if ((rc = nft_batch_init(&b, MNFT_TABLE, e)) < 0)
				goto out;
			b_init = true;
			nft_batch_family(&b, NFPROTO_BRIDGE);
			nft_table(&b, NFT_TABLE_DELETE);
			if ((rc = nft_commit(p->nf, &b, st.genid, e)) < 0)
				goto out;
			log_info(p->log, "mnpol: table bridge %s deleted: no L2 network on this node",
				 MNFT_TABLE);
		}
		agent_metric_set(p->m_rules, NULL, 0);
		agent_metric_set(p->m_ports, "programmed", 0);
		agent_metric_set(p->m_ports, "dropped", 0);
		rc = 0;
		goto out;
	}
	if (!mnft_matches(&want, &st)) {
		if ((rc = nft_batch_init(&b, MNFT_TABLE, e)) < 0)
			goto out;
		b_init = true;
		nft_batch_family(&b, NFPROTO_BRIDGE);
		if ((rc = mnft_batch(&want, st.exists, &b)) < 0) {
			err_setx(e, -rc, "mnpol: building the batch of table bridge %s", MNFT_TABLE);
			goto out;
		}
		double t0 = now_s();
		rc = nft_commit(p->nf, &b, st.genid, e);
		agent_metric_observe(p->m_lat, now_s() - t0);
		agent_metric_add(p->m_batches, rc == 0 ? "ok" : "failed", 1);
		if (rc < 0)
			goto out;
		log_info(p->log, "mnpol: table bridge %s written in one batch (%zu messages): %u "
			 "L2 ports programmed, %u dropped, %u rules, %u sets", MNFT_TABLE,
			 nft_batch_count(&b), known, p->n_ports - known, count_rules(&want),
			 want.n_sets);
	}
	agent_metric_set(p->m_rules, NULL, count_rules(&want));
	agent_metric_set(p->m_ports, "programmed", known);
	agent_metric_set(p->m_ports, "dropped", p->n_ports - known);
	if (p->n_ports - known != p->last_dropped && p->n_ports > known)
		log_info(p->log, "mnpol: %u L2 ports dropped until their pod and its "
			 "network-status entry are known", p->n_ports - known);
	p->last_dropped = p->n_ports - known;
	if (p->n_ports > known)
		schedule(p, MNPOL_PORT_POLL_MS);
	rc = 0;
out:
	if (b_init)
		nft_batch_free(&b);
	if (st_init)
		nft_state_free(&st);
	mnft_table_free(&want);
	for (unsigned i = 0; i < n_rs; i++)
		pol_ruleset_free(&rss[i]);
	free(rss);
	pol_world_free(w);
	return rc;
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	struct agent_mnpol *p = arg;
	if (!agent_ready(p->a) || !agent_obj_all_synced(p->a)) {
		/* adopt: whatever the kernel holds stays in force until the world is known */
		if (!p->waiting_logged)
			log_info(p->log, "mnpol: waiting for the informers before touching table "
				 "bridge %s", MNFT_TABLE);
		p->waiting_logged = true;
		schedule(p, MNPOL_RETRY_MS / 5);
		return;
	}
	struct err e = { 0 };
	int rc = sync_once(p, &e);
	if (rc == -ERESTART) { /* the ruleset changed meanwhile: read it again */
		schedule(p, 0);
		return;
	}
	if (rc < 0) {
		log_warnx(p->log, "%s (retrying)", e.msg);
		schedule(p, MNPOL_RETRY_MS);
	}
}

/* ---- hooks --------------------------------------------------------------------------- */

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	struct agent_mnpol *p = arg;
	(void)a;
	switch (ev->hook) {
	case AGENT_HOOK_OBJECT:
		switch (ev->kind) {
		case AGENT_K_MNETPOL:
		case AGENT_K_NAMESPACE:
		case AGENT_K_POD_ALL:
		case AGENT_K_POD:
		case AGENT_K_VMI:
		case AGENT_K_L2NET:
			schedule(p, 0);
			break;
		case AGENT_K_VMIM:
		case AGENT_K_BLOCK:
		case AGENT_K_HANDLE:
		case AGENT_K_NODE:
		case AGENT_K_NETPOL:
		case AGENT_K_COUNT:
			break;
		}
		break;
	case AGENT_HOOK_RECONCILED: /* the periodic resync: new ports, drift */
		schedule(p, 0);
		break;
	case AGENT_HOOK_EP_ADDED:
	case AGENT_HOOK_EP_REMOVED:
	case AGENT_HOOK_COUNT:
		break;
	}
}

static const enum agent_hook hooks[] = { AGENT_HOOK_OBJECT, AGENT_HOOK_RECONCILED };

/* ---- life cycle ---------------------------------------------------------------------- */

void *agent_mnpol_new(struct agent *a, struct err *e)
{
	struct agent_mnpol *p = calloc(1, sizeof(*p));
	if (!p) {
		err_setx(e, ENOMEM, "mnpol: out of memory");
		return NULL;
	}
	p->a = a;
	p->log = agent_log(a);
	const struct conf *c = agent_conf(a);
	if (c->agent.network_policy != CONF_ENABLED)
		return p;
	if (c->datastore.type != CONF_DATASTORE_KUBERNETES) {
		log_warnx(p->log, "mnpol: [agent] network_policy needs the kubernetes datastore: "
			  "MultiNetworkPolicy NOT enforced on L2 ports");
		return p;
	}
	p->active = true;
	if (!(p->ports = calloc(MNPOL_PORTS_MAX, sizeof(*p->ports)))) {
		err_setx(e, ENOMEM, "mnpol: out of memory");
		goto fail;
	}
	if (nl_open(&p->nf, NETLINK_NETFILTER, e) < 0)
		goto fail;
	if (ev_timer_add(agent_loop(a), 0, 0, on_timer, p, NULL, &p->timer, e) < 0)
		goto fail;
	ev_timer_disarm(p->timer);
	struct agent_metrics *reg = agent_metrics(a);
	static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
					 0.025, 0.05,	0.1,	0.25,  1 };
	p->m_batches = agent_metric_new(reg, "kvnet_mnpol_batches_total",
					"nf_tables batches sent for MultiNetworkPolicy on L2 ports, "
					"by result", AGENT_M_COUNTER, "result");
	p->m_lat = agent_metric_histogram(reg, "kvnet_mnpol_batch_seconds",
					  "Time the kernel took to apply one MultiNetworkPolicy "
					  "batch", bounds, sizeof(bounds) / sizeof(bounds[0]));
	p->m_rules = agent_metric_new(reg, "kvnet_mnpol_rules",
				      "Rules in table bridge kvnet-l2", AGENT_M_GAUGE, NULL);
	p->m_ports = agent_metric_new(reg, "kvnet_mnpol_ports",
				      "L2 ports with their MultiNetworkPolicy rules in the kernel "
				      "(programmed) or dropped until they are", AGENT_M_GAUGE,
				      "state");
	if (!p->m_batches || !p->m_lat || !p->m_rules || !p->m_ports) {
		err_setx(e, EEXIST, "mnpol: metrics kvnet_mnpol_* taken");
		goto fail;
	}
	static const enum agent_kind kinds[] = { AGENT_K_MNETPOL, AGENT_K_NAMESPACE,
						 AGENT_K_POD_ALL, AGENT_K_POD, AGENT_K_VMI };
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		agent_want_kind(a, kinds[k]);
	for (unsigned h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
		if (agent_hook_add(a, hooks[h], on_hook, p, e) < 0)
			goto fail;
	p->hooked = true;
	log_info(p->log, "mnpol: enforcing MultiNetworkPolicy on L2 ports in table bridge %s "
		 "(closed until a port's rules are in)", MNFT_TABLE);
	schedule(p, 0);
	return p;
fail:
	agent_mnpol_free(p);
	return NULL;
}

void agent_mnpol_free(void *state)
{
	struct agent_mnpol *p = state;
	if (!p)
		return;
	if (p->hooked)
		for (unsigned h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
			agent_hook_del(p->a, hooks[h], on_hook, p);
	if (p->timer)
		ev_timer_del(p->timer);
	nl_close(p->nf);
	free(p->ports);
	free(p);
}
