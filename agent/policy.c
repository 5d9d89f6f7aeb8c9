/* policy — NetworkPolicy onto nf_tables (see policy.h). */
#include "agent/policy.h"

#include "agent/agent.h"
#include "agent/metrics.h"
#include "agent/polnft.h"
#include "agent/polstate.h"
#include "conf/conf.h"
#include "kube/informer.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/ip.h"
#include "lib/log.h"
#include "net/nft.h"
#include "net/nl.h"
#include "policy/policy.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define POLICY_RETRY_MS 1000	/* after a failed sync */
#define POLICY_COUNTERS_MS 5000 /* the deny counters are read back this often */
#define POLICY_DROP_SERIES 512	/* endpoint x direction series of the drop metrics */
#define POLICY_QUIET_S 1.0	/* the counter read-back and the periodic comparison wait
				 * for this long without a sync (changes come first)... */
#define POLICY_DEFER_MAX 3	/* ...but are put off at most this many times in a row */

/* One deny rule of the table whose counter is exported. */
struct drop_src {
	char chain[PNFT_NAME_MAX];  /* its chain */
	char udata[PNFT_UDATA_MAX]; /* its identity in the kernel */
	char lv[160];		    /* label values "NS\x1fPOD\x1fDIR", or "DIR" for the
				     * catch-all of a base chain */
	bool base;		    /* the fail-closed catch-all (no endpoint yet) */
};

struct agent_policy {
	struct agent *a;	   /* the hub (not owned) */
	struct log *log;	   /* its logger (not owned) */
	bool active;		   /* enabled with the kubernetes datastore */
	bool fail_open;		   /* [cni] policy_timeout_action continue */
	struct nl_sock *nf;	   /* NETLINK_NETFILTER (owned) */
	struct ev_timer *timer;	   /* the coalesced sync (owned) */
	bool hooked;		   /* hooks registered */
	bool waiting_logged;	   /* "waiting for the informers" said once */
	unsigned last_known;	   /* endpoints programmed by the last good sync */
	unsigned last_unknown;	   /* endpoints whose pod was unknown then */
	struct agent_metric *m_batches; /* kvnet_policy_batches_total{result} */
	struct agent_metric *m_lat;	/* kvnet_policy_batch_seconds */
	struct agent_metric *m_rules;	/* kvnet_policy_rules */
	struct agent_metric *m_sets;	/* kvnet_policy_sets */
	struct agent_metric *m_eps;	/* kvnet_policy_endpoints{state} */
	struct agent_metric *m_drop[2];	/* kvnet_policy_dropped_{packets,bytes}_total
					 * {namespace,pod,direction} */
	struct agent_metric *m_unprog[2]; /* kvnet_policy_unprogrammed_dropped_{packets,
					   * bytes}_total{direction} */
	struct agent_metric *m_reads;	/* kvnet_policy_counter_reads_total{result} */
	struct ev_timer *ctimer;	/* reads the deny counters (owned) */
	struct drop_src *drops;		/* deny rules of the last good sync (heap) */
	unsigned n_drops;		/* how many */
	struct pol_world *world;	/* the world, kept across changes from the informers'
					 * events (NULL until the first full sync) */
	struct pst *st;			/* the table as programmed, per endpoint (owned) */
	bool need_full;			/* rebuild world and state, compare with the kernel */
	bool need_check;		/* compare the state with the kernel (periodic) */
	struct ev_timer *rtimer;	/* the periodic comparison (owned) */
	char **dirty;			/* "NS\x1fNAME" of pods whose rules may have changed
					 * since the last sync (heap) */
	unsigned n_dirty;		/* how many */
	unsigned cap_dirty;		/* allocated */
	bool dirty_all;			/* out of memory noting them: recompile every endpoint */
	double last_sync;		/* monotonic seconds of the last sync that sent a batch */
	unsigned defer_c;		/* counter read-backs put off in a row */
	unsigned defer_r;		/* periodic comparisons put off in a row */
};

static double now_s(void);

/* Whether background work (a dump of the table) should wait: a sync sent a batch less
 * than POLICY_QUIET_S ago, and it waited fewer than POLICY_DEFER_MAX times already. */
static bool put_off(const struct agent_policy *p, unsigned *deferred)
{
	if (now_s() - p->last_sync < POLICY_QUIET_S && *deferred < POLICY_DEFER_MAX) {
		(*deferred)++;
		return true;
	}
	*deferred = 0;
	return false;
}

static void schedule(struct agent_policy *p, uint64_t ms)
{
	if (p->timer && (!ev_timer_armed(p->timer) || ms == 0))
		ev_timer_arm(p->timer, ms, 0);
}

/* ---- the world from the informers --------------------------------------------------- */

struct world_ctx {
	struct agent_policy *p; /* for logs */
	struct pol_world *w;	/* being filled */
	const char *kind;	/* the kind of the informer being read */
	unsigned bad;		/* objects refused */
};

static void world_add(void *user, const struct kube_obj *obj)
{
	struct world_ctx *c = user;
	struct err e = { 0 };
	/* by the informer's kind: objects from a LIST carry none of their own */
	if (pol_world_add_json_kind(c->w, obj->json, obj->len, c->kind, NULL, &e) < 0) {
		if (c->bad++ < 3)
			log_warnx(c->p->log, "policy: %s %s/%s skipped: %s", c->kind, obj->ns,
				  obj->name, e.msg);
	}
}

/* ---- the kernel's table as a pnft_table ---------------------------------------------- */

static void copy_name(char *dst, size_t cap, const char *src, bool *ok)
{
	if (strlen(src) >= cap)
		*ok = false;
	snprintf(dst, cap, "%s", src);
}

static int from_state(const struct nft_state *st, struct pnft_table *t, struct err *e)
{
	memset(t, 0, sizeof(*t));
	if (!st->exists)
		return 0;
	t->present = true;
	bool ok = true;
	t->chains = calloc(st->nchains ? st->nchains : 1, sizeof(*t->chains));
	t->sets = calloc(st->nsets ? st->nsets : 1, sizeof(*t->sets));
	if (!t->chains || !t->sets)
		goto nomem;
	for (size_t i = 0; i < st->nchains; i++) {
		const struct nft_chain_info *ci = &st->chains[i];
		struct pnft_chain *c = &t->chains[t->n_chains++];
		copy_name(c->name, sizeof(c->name), ci->name, &ok);
		c->base = ci->base;
		c->prio = ci->priority;
		size_t n = 0;
		for (size_t r = 0; r < st->nrules; r++)
			n += strcmp(st->rules[r].chain, ci->name) == 0;
		c->rules = calloc(n ? n : 1, sizeof(*c->rules));
		c->handles = calloc(n ? n : 1, sizeof(*c->handles));
		if (!c->rules || !c->handles)
			goto nomem;
		for (size_t r = 0; r < st->nrules; r++) {
			if (strcmp(st->rules[r].chain, ci->name) != 0)
				continue;
			snprintf(c->rules[c->n].udata, sizeof(c->rules[c->n].udata), "%s",
				 st->rules[r].id);
			c->handles[c->n++] = st->rules[r].handle;
		}
	}
	for (size_t i = 0; i < st->nsets; i++) {
		const struct nft_set_info *si = &st->sets[i];
		if (si->flags & NFT_SET_MAP) {
			int m = strcmp(si->name, PNFT_MAP_EG) == 0   ? 0
				: strcmp(si->name, PNFT_MAP_IN) == 0 ? 1
								     : -1;
			if (m < 0) { /* a map that is not ours: deleted like a stale set */
				struct pnft_set *s = &t->sets[t->n_sets++];
				copy_name(s->name, sizeof(s->name), si->name, &ok);
				continue;
			}
			struct pnft_map *mp = &t->maps[m];
			t->has_map[m] = true;
			snprintf(mp->name, sizeof(mp->name), "%s", si->name);
			mp->e = calloc(si->nelems ? si->nelems : 1, sizeof(*mp->e));
			if (!mp->e)
				goto nomem;
			for (size_t k = 0; k < si->nelems; k++) {
				const struct nft_elem_info *ei = &si->elems[k];
				struct pnft_elem *el = &mp->e[mp->n++];
				size_t l = ei->len < PNFT_IFNAME_MAX ? ei->len : PNFT_IFNAME_MAX - 1;
				memcpy(el->ifname, ei->key, l);
				el->ifname[l] = 0;
				/* a verdict that is not a goto: never desired, so replaced */
				if (ei->has_verdict && ei->verdict == NFT_GOTO)
					copy_name(el->chain, sizeof(el->chain), ei->chain, &ok);
				else
					snprintf(el->chain, sizeof(el->chain), "?");
			}
			continue;
		}
		struct pnft_set *s = &t->sets[t->n_sets++];
		copy_name(s->name, sizeof(s->name), si->name, &ok);
		s->family = si->key_len == 4 ? AF_INET : AF_INET6;
	}
	if (!ok) {
		pnft_table_free(t);
		return err_setx(e, ENAMETOOLONG, "policy: table %s holds a name longer than %d "
				"bytes that kvnet did not make: delete the table to start over",
				PNFT_TABLE, PNFT_NAME_MAX - 1);
	}
	return 0;
nomem:
	pnft_table_free(t);
	return err_setx(e, ENOMEM, "policy: reading table %s: out of memory", PNFT_TABLE);
}

/* ---- the plan as one batch ------------------------------------------------------------ */

static int put_rule(struct nft_batch *b, const struct pnft_op *o)
{
	const struct pnft_rule *r = o->rule;
	nft_rule_begin(b, o->kind == PNFT_OP_INSERT_RULE ? NFT_RULE_INSERT : NFT_RULE_APPEND,
		       o->name, 0, r->udata);
	if (r->l2_prefix != PNFT_IF_NONE) {
		nft_expr_meta(b, r->l2_prefix == PNFT_IF_IIF ? NFT_META_IIFNAME : NFT_META_OIFNAME,
			      NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, PNFT_L2_PREFIX, strlen(PNFT_L2_PREFIX));
	}
	if (r->not_prefix != PNFT_IF_NONE) {
		nft_expr_meta(b, r->not_prefix == PNFT_IF_IIF ? NFT_META_IIFNAME : NFT_META_OIFNAME,
			      NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, PNFT_PREFIX, strlen(PNFT_PREFIX));
	}
	if (r->ct_state)
		nft_match_ct_state(b, r->ct_state);
	if (r->set[0])
		nft_match_addr_set(b, r->saddr ? NFT_SRC : NFT_DST,
				   r->nfproto == 2 ? AF_INET : AF_INET6, r->set, false);
	if (r->l4proto) {
		nft_match_l4proto(b, r->l4proto);
		if (r->dport_lo || r->dport_hi)
			nft_match_port(b, NFT_DST, r->dport_lo, r->dport_hi);
	}
	if (r->vmap != PNFT_IF_NONE)
		nft_vmap(b, r->vmap == PNFT_IF_IIF ? NFT_IIFNAME : NFT_OIFNAME, r->target);
	if (r->limit_rate)
		nft_limit(b, r->limit_rate, r->limit_rate);
	if (r->log)
		nft_log(b, r->log_prefix, r->log_group);
	if (r->counter)
		nft_counter(b);
	switch (r->verdict) {
	case PNFT_V_NONE:
		break;
	case PNFT_V_ACCEPT:
		nft_verdict(b, NFT_V_ACCEPT, NULL);
		break;
	case PNFT_V_DROP:
		nft_verdict(b, NFT_V_DROP, NULL);
		break;
	case PNFT_V_GOTO:
		nft_verdict(b, NFT_V_GOTO, r->target);
		break;
	}
	return nft_rule_end(b);
}

static int put_set(struct nft_batch *b, const struct pnft_set *s)
{
	return pnft_batch_set(b, s->name, s->family, s->r, s->n);
}

static int put_op(struct nft_batch *b, const struct pnft_op *o)
{
	static const struct nft_set_spec mapspec[2] = {
		{ .name = PNFT_MAP_EG, .key = NFT_KEY_IFNAME, .vmap = true },
		{ .name = PNFT_MAP_IN, .key = NFT_KEY_IFNAME, .vmap = true },
	};
	struct nft_elem el;
	switch (o->kind) {
	case PNFT_OP_ADD_TABLE:
		return nft_table(b, NFT_TABLE_ADD);
	case PNFT_OP_ADD_SET:
		return put_set(b, o->set);
	case PNFT_OP_ADD_MAP:
		return nft_set_add(b, &mapspec[strcmp(o->name, PNFT_MAP_IN) == 0]);
	case PNFT_OP_ADD_CHAIN: {
		struct nft_chain_spec c = { .name = o->chain->name,
					    .hook = o->chain->base ? NFT_HOOK_FORWARD
								   : NFT_HOOK_NONE,
					    .priority = o->chain->prio };
		return nft_chain_add(b, &c);
	}
	case PNFT_OP_FLUSH_CHAIN:
		return nft_chain_flush(b, o->name);
	case PNFT_OP_ADD_RULE:
	case PNFT_OP_INSERT_RULE:
		return put_rule(b, o);
	case PNFT_OP_ADD_ELEM:
	case PNFT_OP_DEL_ELEM:
		memset(&el, 0, sizeof(el));
		if (nft_elem_ifname(&el, o->elem.ifname, NFT_V_GOTO,
				    o->kind == PNFT_OP_ADD_ELEM ? o->elem.chain : NULL) < 0)
			return -EINVAL;
		return nft_elems(b, &mapspec[strcmp(o->name, PNFT_MAP_IN) == 0],
				 o->kind == PNFT_OP_DEL_ELEM, &el, 1);
	case PNFT_OP_DEL_RULE:
		return nft_rule_del(b, o->name, o->handle);
	case PNFT_OP_DEL_CHAIN:
		return nft_chain_del(b, o->name);
	case PNFT_OP_DEL_SET:
		return nft_set_del(b, o->name);
	}
	return -EINVAL;
}

/* ---- one sync --------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The deny rules of table t (after pst_commit: its endpoints are programmed): each
 * endpoint chain's default deny, and the base chains' catch-all when it drops.
 * Replaces p->drops (merge: only the entries of t's chains and of endpoints no longer
 * programmed); on ENOMEM the old list stays. */
static void note_drops(struct agent_policy *p, const struct pnft_table *t, bool merge)
{
	unsigned cap = merge ? p->n_drops : 0;
	for (unsigned i = 0; i < t->n_chains; i++)
		for (unsigned r = 0; r < t->chains[i].n; r++)
			cap += t->chains[i].rules[r].verdict == PNFT_V_DROP;
	struct drop_src *d = calloc(cap ? cap : 1, sizeof(*d));
	if (!d)
		return;
	unsigned k = 0;
	/* merge: t holds the base chains and the changed endpoints' chains; the entries
	 * of the others stay while their endpoint is programmed */
	for (unsigned i = 0; merge && i < p->n_drops; i++) {
		const struct drop_src *x = &p->drops[i];
		if (x->base || pnft_chain_find(t, x->chain) || !pst_has(p->st, x->chain + 2))
			continue;
		d[k++] = *x;
	}
	for (unsigned i = 0; i < t->n_chains; i++) {
		const struct pnft_chain *c = &t->chains[i];
		for (unsigned r = 0; r < c->n; r++) {
			const struct pnft_rule *ru = &c->rules[r];
			if (ru->verdict != PNFT_V_DROP || !ru->counter || ru->ct_state)
				continue; /* ct state invalid: not an endpoint's verdict */
			struct drop_src *x = &d[k];
			snprintf(x->chain, sizeof(x->chain), "%s", c->name);
			snprintf(x->udata, sizeof(x->udata), "%s", ru->udata);
			if (c->base) {
				x->base = true;
				snprintf(x->lv, sizeof(x->lv), "%s", c->name);
				k++;
				continue;
			}
			/* "e_IFNAME" / "i_IFNAME": the endpoint as programmed */
			const struct pol_cep *ep = pst_find(p->st, c->name + 2);
			if (!ep)
				continue;
			snprintf(x->lv, sizeof(x->lv), "%s%c%s%c%s", ep->ns, AGENT_M_LV_SEP,
				 ep->name, AGENT_M_LV_SEP, c->name[0] == 'e' ? "egress" : "ingress");
			k++;
		}
	}
	free(p->drops);
	p->drops = d;
	p->n_drops = k;
}

/* Read the rules' counters back from the kernel and export those of the deny rules. */
static int read_counters(struct agent_policy *p, struct err *e)
{
	struct nft_state st;
	int rc = nft_state_init(&st, PNFT_TABLE);
	if (rc < 0)
		return err_setx(e, -rc, "policy: nft state");
	if ((rc = nft_rules_load(p->nf, &st, e)) < 0) {
		nft_state_free(&st);
		return rc;
	}
	for (int i = 0; i < 2; i++) {
		agent_metric_clear(p->m_drop[i]);
		agent_metric_clear(p->m_unprog[i]);
	}
	for (unsigned i = 0; i < p->n_drops; i++) {
		const struct drop_src *d = &p->drops[i];
		const struct nft_rule_info *ri = NULL;
		for (size_t r = 0; r < st.nrules && !ri; r++)
			if (strcmp(st.rules[r].chain, d->chain) == 0 &&
			    strcmp(st.rules[r].id, d->udata) == 0 && st.rules[r].has_counter)
				ri = &st.rules[r];
		if (!ri)
			continue; /* replaced meanwhile: the next sync notes the new one */
		struct agent_metric **m = d->base ? p->m_unprog : p->m_drop;
		agent_metric_set(m[0], d->lv, (double)ri->packets);
		agent_metric_set(m[1], d->lv, (double)ri->bytes);
	}
	nft_state_free(&st);
	return 0;
}

static void on_ctimer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	struct agent_policy *p = arg;
	struct err e = { 0 };
	if (p->n_drops && !put_off(p, &p->defer_c)) {
		int rc = read_counters(p, &e);
		agent_metric_add(p->m_reads, rc == 0 ? "ok" : "failed", 1);
		if (rc < 0)
			log_warnx(p->log, "%s", e.msg);
	}
}

static const char *kind_name(enum agent_kind k)
{
	switch (k) {
	case AGENT_K_NAMESPACE:
		return "Namespace";
	case AGENT_K_POD_ALL:
		return "Pod";
	case AGENT_K_VMI:
		return "VirtualMachineInstance";
	case AGENT_K_NETPOL:
		return "NetworkPolicy";
	case AGENT_K_POD:
	case AGENT_K_VMIM:
	case AGENT_K_BLOCK:
	case AGENT_K_HANDLE:
	case AGENT_K_NODE:
	case AGENT_K_L2NET:
		case AGENT_K_MNETPOL:
	case AGENT_K_COUNT:
		break;
	}
	return NULL;
}

/* The world from the informers, whole. NULL without memory. */
static struct pol_world *world_load(struct agent_policy *p)
{
	struct pol_world *w = pol_world_new();
	if (!w)
		return NULL;
	struct world_ctx wc = { .p = p, .w = w };
	static const enum agent_kind kinds[] = { AGENT_K_NAMESPACE, AGENT_K_POD_ALL,
						 AGENT_K_VMI, AGENT_K_NETPOL };
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		wc.kind = kind_name(kinds[k]);
		agent_obj_each(p->a, kinds[k], world_add, &wc);
	}
	pol_world_settle(w);
	return w;
}

/* Pod ns/name's rules may have changed: noted for the next sync. */
static void note_dirty(void *arg, const char *ns, const char *name)
{
	struct agent_policy *p = arg;
	char key[512];
	snprintf(key, sizeof(key), "%s%c%s", ns, AGENT_M_LV_SEP, name);
	for (unsigned i = 0; i < p->n_dirty; i++)
		if (strcmp(p->dirty[i], key) == 0)
			return;
	if (p->n_dirty == p->cap_dirty) {
		unsigned nc = p->cap_dirty ? p->cap_dirty * 2 : 16;
		char **n = realloc(p->dirty, nc * sizeof(*n));
		if (!n) {
			p->dirty_all = true;
			return;
		}
		p->dirty = n;
		p->cap_dirty = nc;
	}
	if (!(p->dirty[p->n_dirty] = strdup(key))) {
		p->dirty_all = true;
		return;
	}
	p->n_dirty++;
}

static bool is_dirty(const struct agent_policy *p, const char *ns, const char *name)
{
	if (p->dirty_all)
		return true;
	size_t nl = strlen(ns);
	for (unsigned i = 0; i < p->n_dirty; i++)
		if (strncmp(p->dirty[i], ns, nl) == 0 && p->dirty[i][nl] == AGENT_M_LV_SEP &&
		    strcmp(p->dirty[i] + nl + 1, name) == 0)
			return true;
	return false;
}

static void dirty_clear(struct agent_policy *p)
{
	for (unsigned i = 0; i < p->n_dirty; i++)
		free(p->dirty[i]);
	p->n_dirty = 0;
	p->dirty_all = false;
}

/* An informer's object changed: the kept world follows (the old version out, the new
 * in) and the pods whose rules may change are noted, seen with either version. */
static void world_event(struct agent_policy *p, const struct agent_event *ev)
{
	const char *kind = kind_name(ev->kind);
	if (!kind || !p->world)
		return; /* no world yet: the first full sync reads the informers */
	if (ev->old) {
		pol_world_dependents(p->world, kind, ev->old->ns, ev->old->name, note_dirty, p);
		pol_world_remove(p->world, kind, ev->old->ns, ev->old->name);
	}
	if (ev->obj) {
		/* an update's old version may have been refused: take the name out anyway */
		pol_world_remove(p->world, kind, ev->obj->ns, ev->obj->name);
		struct world_ctx wc = { .p = p, .w = p->world, .kind = kind };
		world_add(&wc, ev->obj);
		if (ev->kind == AGENT_K_NETPOL)
			pol_world_settle(p->world);
		pol_world_dependents(p->world, kind, ev->obj->ns, ev->obj->name, note_dirty, p);
	}
}

/* Send plan as one batch (genid 0: no generation check). */
static int send_plan(struct agent_policy *p, const struct pnft_plan *plan, uint32_t genid,
		     size_t *msgs, struct err *e)
{
	struct nft_batch b;
	int rc = nft_batch_init(&b, PNFT_TABLE, e);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < plan->n; i++)
		put_op(&b, &plan->ops[i]);
	double t0 = now_s();
	rc = nft_commit(p->nf, &b, genid, e);
	p->last_sync = now_s();
	agent_metric_observe(p->m_lat, p->last_sync - t0);
	agent_metric_add(p->m_batches, rc == 0 ? "ok" : "failed", 1);
	*msgs = nft_batch_count(&b);
	nft_batch_free(&b);
	return rc;
}

/* The gates and gauges after a good sync: every agent endpoint the state programmed
 * for its pod is "programmed". */
static void after_sync(struct agent_policy *p)
{
	struct agent *a = p->a;
	unsigned n_eps = agent_ep_count(a), n = 0;
	for (unsigned i = 0; i < n_eps; i++) {
		struct agent_ep *ep = agent_ep_at(a, i);
		if (!ep->veth[0] || !pst_has(p->st, ep->veth))
			continue;
		agent_ep_gate_clear(a, ep, AGENT_POLICY_GATE);
		n++;
	}
	agent_metric_set(p->m_rules, NULL, pst_rules(p->st));
	agent_metric_set(p->m_sets, NULL, pst_sets(p->st));
	agent_metric_set(p->m_eps, "programmed", n);
	agent_metric_set(p->m_eps, "dropped", n_eps - n);
	if (n_eps - n != p->last_unknown && n_eps > n)
		log_info(p->log, "policy: %u endpoints dropped until their pod is known to "
			 "the informers", n_eps - n);
	p->last_known = n;
	p->last_unknown = n_eps - n;
}

/* Stage every endpoint whose rules may have changed (all: every endpoint): those with
 * a veth and a pod the world knows, newly there, moved to another pod or noted dirty;
 * removals of the ones gone. */
/* An endpoint that gets rules: a pod's veth (one the route adoption made of a veth
 * with no registration has no pod, so no rules). */
static bool has_rules(const struct agent_ep *ep)
{
	return ep->veth[0] && ep->ns[0] && ep->pod[0];
}

static int stage_changes(struct agent_policy *p, bool all, struct err *e)
{
	struct agent *a = p->a;
	unsigned n_eps = agent_ep_count(a);
	for (unsigned i = 0; i < n_eps; i++) {
		struct agent_ep *ep = agent_ep_at(a, i);
		if (!has_rules(ep))
			continue;
		const struct pol_cep *c = pst_find(p->st, ep->veth);
		if (!pol_world_has_pod(p->world, ep->ns, ep->pod)) {
			if (c && pst_stage_remove(p->st, ep->veth) < 0)
				return err_setx(e, ENOMEM, "policy: out of memory");
			continue; /* not (yet) in the informers: stays dropped and gated */
		}
		if (!all && c && strcmp(c->ns, ep->ns) == 0 && strcmp(c->name, ep->pod) == 0 &&
		    !is_dirty(p, ep->ns, ep->pod))
			continue;
		struct pol_ep_in one = { ep->ns, ep->pod, ep->veth };
		int rc = pst_stage(p->st, p->world, &one, e);
		if (rc < 0)
			return rc;
	}
	/* programmed endpoints the agent no longer has as one with rules */
	for (unsigned i = 0; i < pst_count(p->st); i++) {
		const struct pol_cep *c = pst_at(p->st, i);
		bool have = false;
		for (unsigned k = 0; k < n_eps && !have; k++) {
			struct agent_ep *ep = agent_ep_at(a, k);
			have = has_rules(ep) && strcmp(ep->veth, c->ifname) == 0;
		}
		if (!have && pst_stage_remove(p->st, c->ifname) < 0)
			return err_setx(e, ENOMEM, "policy: out of memory");
	}
	return 0;
}

/* The full path: on start, after an error, and (check) periodically: the state (all:
 * rebuilt from a world read from the informers) against the table read back from the
 * kernel, the difference in one batch. */
static int sync_full(struct agent_policy *p, bool all, struct err *e)
{
	struct pnft_table want = { 0 }, cur = { 0 };
	struct pnft_plan plan = { 0 };
	struct nft_state st;
	bool st_init = false;
	int rc = -ENOMEM;
	if (all) {
		struct pol_world *w = world_load(p);
		if (!w) {
			err_setx(e, ENOMEM, "policy: out of memory");
			goto out;
		}
		pol_world_free(p->world);
		p->world = w;
		dirty_clear(p);
		pst_clear(p->st);
	}
	if ((rc = stage_changes(p, all, e)) < 0)
		goto out;
	if ((rc = pst_table(p->st, &want, e)) < 0)
		goto out;
	if ((rc = nft_state_init(&st, PNFT_TABLE)) < 0) {
		err_setx(e, -rc, "policy: nft state");
		goto out;
	}
	st_init = true;
	if ((rc = nft_state_load(p->nf, &st, e)) < 0)
		goto out;
	if ((rc = from_state(&st, &cur, e)) < 0)
		goto out;
	if ((rc = pnft_diff(&want, &cur, &plan, e)) < 0)
		goto out;
	size_t msgs = 0;
	if (plan.n && (rc = send_plan(p, &plan, st.genid, &msgs, e)) < 0)
		goto out;
	pst_commit(p->st);
	if (plan.n)
		log_info(p->log, "policy: table %s %s: %u changes in one batch (%zu messages); "
			 "%u endpoints programmed, %u rules, %u sets", PNFT_TABLE,
			 all ? "updated" : "repaired", plan.n, msgs, pst_count(p->st),
			 pst_rules(p->st), pst_sets(p->st));
	if (!all)
		dirty_clear(p);
	note_drops(p, &want, false);
	rc = 0;
out:
	if (rc < 0)
		pst_abort(p->st);
	if (st_init)
		nft_state_free(&st);
	pnft_plan_free(&plan);
	pnft_table_free(&cur);
	pnft_table_free(&want);
	return rc;
}

/* The incremental path: recompile the endpoints whose rules may have changed, plan
 * against the state kept in memory, send just the difference. */
static int sync_inc(struct agent_policy *p, struct err *e)
{
	struct pnft_table part = { 0 };
	struct pnft_plan plan = { 0 };
	int rc;
	double t0 = now_s();
	if ((rc = stage_changes(p, false, e)) < 0)
		goto out;
	dirty_clear(p);
	if (!pst_staged(p->st))
		goto out;
	double t1 = now_s();
	if ((rc = pst_plan(p->st, &plan, &part, e)) < 0)
		goto out;
	if (plan.n) {
		size_t msgs = 0;
		double t2 = now_s();
		if ((rc = send_plan(p, &plan, 0, &msgs, e)) < 0)
			goto out;
		log_debug(p->log, "policy: table %s: %u endpoints changed: %u changes in one "
			  "batch (%zu messages); compile %.2f ms, plan %.2f ms, kernel %.2f ms",
			  PNFT_TABLE, pst_staged(p->st), plan.n, msgs, (t1 - t0) * 1e3,
			  (t2 - t1) * 1e3, (p->last_sync - t2) * 1e3);
	}
	pst_commit(p->st);
	note_drops(p, &part, true);
	rc = 0;
out:
	if (rc < 0)
		pst_abort(p->st);
	pnft_plan_free(&plan);
	pnft_table_free(&part);
	return rc;
}

static int sync_once(struct agent_policy *p, struct err *e)
{
	int rc;
	if (!p->world || p->need_full)
		rc = sync_full(p, true, e);
	else if (p->need_check)
		rc = sync_full(p, false, e);
	else
		rc = sync_inc(p, e);
	/* an error: the next sync starts over from the informers and the kernel */
	p->need_full = rc < 0;
	if (rc == 0) {
		p->need_check = false;
		after_sync(p);
	}
	return rc;
}

static void on_rtimer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	struct agent_policy *p = arg;
	if (put_off(p, &p->defer_r))
		return;
	p->need_check = true; /* drift: the kernel read back and compared with the state */
	schedule(p, 0);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	struct agent_policy *p = arg;
	/* agent_ready: every informer created and synced once (before agent_start none
	 * exists and every kind would count as synced, empty) */
	if (!agent_ready(p->a) || !agent_obj_all_synced(p->a)) {
		/* adopt: whatever the kernel holds stays in force until the world is known */
		if (!p->waiting_logged)
			log_info(p->log, "policy: waiting for the informers before touching table "
				 "%s", PNFT_TABLE);
		p->waiting_logged = true;
		schedule(p, POLICY_RETRY_MS / 5);
		return;
	}
	struct err e = { 0 };
	int rc = sync_once(p, &e);
	if (rc == -ERESTART) { /* somebody changed the ruleset meanwhile: read again */
		schedule(p, 0);
		return;
	}
	if (rc < 0) {
		log_warnx(p->log, "%s (retrying)", e.msg);
		schedule(p, POLICY_RETRY_MS);
	}
}

/* ---- hooks ---------------------------------------------------------------------------- */

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	struct agent_policy *p = arg;
	switch (ev->hook) {
	case AGENT_HOOK_EP_ADDED:
		agent_ep_gate_set(a, ev->ep, AGENT_POLICY_GATE);
		schedule(p, 0);
		break;
	case AGENT_HOOK_EP_REMOVED:
		schedule(p, 0);
		break;
	case AGENT_HOOK_OBJECT:
		switch (ev->kind) {
		case AGENT_K_NETPOL:
		case AGENT_K_NAMESPACE:
		case AGENT_K_POD_ALL:
		case AGENT_K_VMI:
			world_event(p, ev);
			schedule(p, 0);
			break;
		case AGENT_K_POD:
		case AGENT_K_VMIM:
		case AGENT_K_BLOCK:
		case AGENT_K_HANDLE:
		case AGENT_K_NODE:
		case AGENT_K_L2NET:
		case AGENT_K_MNETPOL:
		case AGENT_K_COUNT:
			break;
		}
		break;
	case AGENT_HOOK_RECONCILED: /* endpoints may have changed: cheap when none did */
		schedule(p, 0);
		break;
	case AGENT_HOOK_COUNT:
		break;
	}
}

static const enum agent_hook hooks[] = { AGENT_HOOK_EP_ADDED, AGENT_HOOK_EP_REMOVED,
					 AGENT_HOOK_OBJECT, AGENT_HOOK_RECONCILED };

/* ---- life cycle -------------------------------------------------------------------------- */

struct agent_policy *agent_policy_new(struct agent *a, struct err *e)
{
	struct agent_policy *p = calloc(1, sizeof(*p));
	if (!p) {
		err_setx(e, ENOMEM, "policy: out of memory");
		return NULL;
	}
	p->a = a;
	p->log = agent_log(a);
	const struct conf *c = agent_conf(a);
	if (c->agent.network_policy != CONF_ENABLED)
		return p;
	if (c->datastore.type != CONF_DATASTORE_KUBERNETES) {
		log_warnx(p->log, "policy: [agent] network_policy needs the kubernetes datastore: "
			  "NOT enforced");
		return p;
	}
	p->active = true;
	p->fail_open = c->cni.policy_timeout_action == CONF_TIMEOUT_CONTINUE;
	if (nl_open(&p->nf, NETLINK_NETFILTER, e) < 0)
		goto fail;
	if (ev_timer_add(agent_loop(a), 0, 0, on_timer, p, NULL, &p->timer, e) < 0)
		goto fail;
	ev_timer_disarm(p->timer);
	if (ev_timer_add(agent_loop(a), POLICY_COUNTERS_MS, POLICY_COUNTERS_MS, on_ctimer, p, NULL, &p->ctimer,
			 e) < 0)
		goto fail;
	uint64_t rs_ms = (uint64_t)c->agent.resync_seconds * 1000;
	if (ev_timer_add(agent_loop(a), rs_ms, rs_ms, on_rtimer, p, NULL, &p->rtimer, e) < 0)
		goto fail;
	const struct conf *cf = c;
	struct pnft_opts o = { .fail_open = p->fail_open, .nflog = cf->flows.enabled,
			       .nflog_group = (uint16_t)cf->flows.nflog_group,
			       .nflog_rate = cf->flows.nflog_rate };
	if (!(p->st = pst_new(&o))) {
		err_setx(e, ENOMEM, "policy: out of memory");
		goto fail;
	}
	struct agent_metrics *reg = agent_metrics(a);
	p->m_batches = agent_metric_new(reg, "kvnet_policy_batches_total",
					"nf_tables batches sent for NetworkPolicy, by result",
					AGENT_M_COUNTER, "result");
	static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
					 0.025, 0.05,	0.1,	0.25,  1 };
	p->m_lat = agent_metric_histogram(reg, "kvnet_policy_batch_seconds",
					  "Time the kernel took to apply one policy batch", bounds,
					  sizeof(bounds) / sizeof(bounds[0]));
	p->m_rules = agent_metric_new(reg, "kvnet_policy_rules",
				      "Rules in table inet kvnet", AGENT_M_GAUGE, NULL);
	p->m_sets = agent_metric_new(reg, "kvnet_policy_sets",
				     "Peer address sets in table inet kvnet", AGENT_M_GAUGE, NULL);
	p->m_eps = agent_metric_new(reg, "kvnet_policy_endpoints",
				    "Endpoints with their policy in the kernel (programmed) or "
				    "dropped until it is", AGENT_M_GAUGE, "state");
	static const char *const drop_names[2][2] = {
		{ "kvnet_policy_dropped_packets_total",
		  "Packets the default deny of an isolated endpoint dropped (table inet kvnet "
		  "counters), by endpoint and direction" },
		{ "kvnet_policy_dropped_bytes_total",
		  "Bytes the default deny of an isolated endpoint dropped, by endpoint and "
		  "direction" },
	};
	static const char *const unprog_names[2][2] = {
		{ "kvnet_policy_unprogrammed_dropped_packets_total",
		  "Packets of kvnet veths without their policy in the kernel yet, dropped by "
		  "the fail-closed catch-all, by base chain" },
		{ "kvnet_policy_unprogrammed_dropped_bytes_total",
		  "Bytes dropped by the fail-closed catch-all, by base chain" },
	};
	for (int i = 0; i < 2; i++) {
		p->m_drop[i] = agent_metric_new_wide(reg, drop_names[i][0], drop_names[i][1],
						     AGENT_M_COUNTER, "namespace,pod,direction",
						     POLICY_DROP_SERIES);
		p->m_unprog[i] = agent_metric_new(reg, unprog_names[i][0], unprog_names[i][1],
						  AGENT_M_COUNTER, "direction");
	}
	p->m_reads = agent_metric_new(reg, "kvnet_policy_counter_reads_total",
				      "Read-backs of the deny counters from the kernel, by result",
				      AGENT_M_COUNTER, "result");
	if (!p->m_batches || !p->m_lat || !p->m_rules || !p->m_sets || !p->m_eps ||
	    !p->m_drop[0] || !p->m_drop[1] || !p->m_unprog[0] || !p->m_unprog[1] ||
	    !p->m_reads) {
		err_setx(e, ENOMEM, "policy: metrics");
		goto fail;
	}
	static const enum agent_kind kinds[] = { AGENT_K_NETPOL, AGENT_K_NAMESPACE,
						 AGENT_K_POD_ALL, AGENT_K_VMI };
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		agent_want_kind(a, kinds[k]);
	for (unsigned h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
		if (agent_hook_add(a, hooks[h], on_hook, p, e) < 0)
			goto fail;
	p->hooked = true;
	if (p->fail_open)
		log_warnx(p->log, "policy: [cni] policy_timeout_action is continue: FAIL OPEN: "
			  "a kvnet veth whose rules are not in the kernel yet is NOT filtered");
	log_info(p->log, "policy: enforcing NetworkPolicy in table inet %s (%s until an "
		 "endpoint's rules are in)", PNFT_TABLE, p->fail_open ? "open" : "closed");
	schedule(p, 0);
	return p;
fail:
	agent_policy_free(p);
	return NULL;
}

void agent_policy_free(struct agent_policy *p)
{
	if (!p)
		return;
	if (p->hooked)
		for (unsigned h = 0; h < sizeof(hooks) / sizeof(hooks[0]); h++)
			agent_hook_del(p->a, hooks[h], on_hook, p);
	if (p->timer)
		ev_timer_del(p->timer);
	if (p->ctimer)
		ev_timer_del(p->ctimer);
	if (p->rtimer)
		ev_timer_del(p->rtimer);
	pst_free(p->st);
	pol_world_free(p->world);
	dirty_clear(p);
	free(p->dirty);
	nl_close(p->nf);
	free(p->drops);
	free(p);
}
