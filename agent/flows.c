/* flows — the agent's flow module (agent/flows.h). */
#include "agent/flows.h"
#include "agent/blockobj.h"

#include "agent/agent.h"
#include "agent/http.h"
#include "agent/l2flows.h"
#include "agent/metrics.h"
#include "agent/polnft.h"
#include "agent/polworld.h"
#include "agent/servers.h"
#include "flows/flows.h"
#include "ipam/ipam.h"
#include "kube/informer.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/ct.h"
#include "net/nflog.h"
#include "net/nl.h"
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FL_RCVBUF (8 << 20)	/* event socket buffer */
#define FL_READS_PER_WAKE 256	/* datagrams read per wake-up before yielding */
#define FL_REC_MAX 4096		/* one JSON record line */
#define FL_BATCH 65536		/* log bytes written per write() */
#define FL_NFLOG_COPY 128	/* bytes of a denied packet copied (IP + ports) */
#define FL_NFLOG_RCVBUF (1 << 20) /* nflog socket buffer */
#define FL_CONN_EMPTY 0		/* slot state: never used */
#define FL_CONN_USED 1		/* slot state: a connection */
#define FL_CONN_GONE 2		/* slot state: its connection ended (a tombstone) */

/* Counters last accounted for one connection. */
struct fl_conn {
	uint32_t id;	   /* conntrack id */
	uint8_t state;	   /* FL_CONN_* */
	bool seen;	   /* in the dump being read */
	uint8_t missed;	   /* dumps in a row it was not in */
	uint64_t bytes[2]; /* original, reply */
	uint64_t pkts[2];  /* original, reply */
};

/* Open-addressing table of connections by id (slots = a power of two >= 2 x max). */
struct fl_conns {
	struct fl_conn *v; /* slots */
	uint32_t mask;	   /* slots - 1 */
	unsigned n, max;   /* used / bound */
};

/* One named address of the peer directory. */
struct fl_peer {
	struct ip_addr ip;   /* the address */
	uint8_t kind;	     /* enum flow_kind */
	uint8_t prio;	     /* source: lower wins (endpoints, blocks, VMIs, nodes) */
	uint32_t ns, name;   /* offsets into the directory's strings */
};

struct fl_dir {
	struct fl_peer *v;   /* sorted by address after a build */
	unsigned n, cap;     /* used / allocated */
	char *str;	     /* NUL-separated strings */
	size_t slen, scap;   /* used / allocated */
	bool oom;	     /* a build ran out of memory */
};

/* One local endpoint's compiled rules, for naming the policies behind its flows. */
struct fl_pol {
	struct flow_who who;   /* the endpoint's identity (its VM, else its pod) */
	struct pol_ruleset rs; /* its rules: one endpoint */
};

struct agent_flows {
	struct agent *a;		/* the agent */
	struct log *log;		/* its log */
	struct nl_sock *ev;		/* conntrack events */
	struct nl_sock *req;		/* conntrack dumps */
	struct ev_io *io;		/* on ev */
	struct nl_sock *nflog;		/* denied packets ([flows] nflog_group), or NULL */
	struct ev_io *nflog_io;		/* on nflog */
	struct ev_timer *timer;		/* window end */
	struct flow_table *tab;		/* the window's records */
	struct fl_conns conns[2];	/* counters accounted: [cur] and the next dump's */
	unsigned cur;			/* which of conns[] is current */
	struct fl_dir dir;		/* peer names */
	bool dir_dirty;			/* rebuild dir before naming */
	bool enforce;			/* [agent] network_policy: verdicts have policies */
	struct fl_pol *pols;		/* the local endpoints' rules (heap), n_pols */
	unsigned n_pols;		/* how many */
	bool pols_dirty;		/* recompile pols before attributing */
	char path[CONF_STR_MAX + 16];	/* log_dir/flows.log */
	int fd;				/* flows.log, O_APPEND, or -1 */
	uint64_t log_size;		/* its size */
	uint32_t max_bytes, max_files;	/* [flows] limits */
	uint64_t win_start_ms;		/* the window's start (unix ms) */
	char out[FL_BATCH];		/* records being written */
	size_t out_len;			/* bytes in out */
	char vms[AGENT_FLOWS_VM_SERIES][2 * FLOW_NAME_MAX + 2]; /* VMs with series */
	unsigned n_vms;			/* used entries of vms */
	struct agent_metric *m_vm[5];	/* bytes in, out, packets in, out, denied {vm} */
	struct agent_metric *m_overflow, *m_observed, *m_dropped, *m_records, *m_in_use,
		*m_max, *m_bytes, *m_lost, *m_untracked, *m_log_bytes, *m_rotations,
		*m_log_errors, *m_dumps, *m_denied, *m_nflog_lost; /* see flows.h */
	struct l2flows *l2;		/* L2 ports' counters (agent/l2flows.h), or NULL */
	struct nl_sock *l2nf;		/* NETLINK_NETFILTER for its table */
	struct nl_sock *l2rt;		/* NETLINK_ROUTE for its ports */
	bool l2_programmed;		/* its table is in place */
	struct agent_metric *m_l2_full;	/* kvnet_flows_l2_untracked_packets_total */
	uint64_t last_dropped;		/* table drops already in m_dropped */
	uint64_t last_observed;		/* observations already in m_observed */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- connection counters --------------------------------------------------------- */

static int conns_init(struct fl_conns *c, unsigned max)
{
	uint32_t n = 2;
	while (n < 2u * max)
		n <<= 1;
	c->v = calloc(n, sizeof(*c->v));
	c->mask = n - 1;
	c->n = 0;
	c->max = max;
	return c->v ? 0 : -ENOMEM;
}

static void conns_clear(struct fl_conns *c)
{
	memset(c->v, 0, ((size_t)c->mask + 1) * sizeof(*c->v));
	c->n = 0;
}

/* The slot of id, or (want_free) the first free slot on its probe path; NULL if neither. */
static struct fl_conn *conns_find(struct fl_conns *c, uint32_t id, bool want_free)
{
	uint32_t i = (id * 2654435761u) & c->mask;
	for (uint32_t k = 0; k <= c->mask; k++, i = (i + 1) & c->mask) {
		struct fl_conn *s = &c->v[i];
		if (s->state == FL_CONN_EMPTY)
			return want_free ? s : NULL;
		if (s->state == FL_CONN_USED && s->id == id)
			return s;
	}
	return NULL;
}

/* ---- peer directory -------------------------------------------------------------- */

static uint32_t dir_str(struct fl_dir *d, const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	if (d->slen + n > d->scap) {
		size_t cap = d->scap ? d->scap * 2 : 4096;
		while (cap < d->slen + n)
			cap *= 2;
		char *ns = cap <= UINT32_MAX ? realloc(d->str, cap) : NULL;
		if (!ns) {
			d->oom = true;
			return 0;
		}
		d->str = ns, d->scap = cap;
	}
	memcpy(d->str + d->slen, s ? s : "", n);
	d->slen += n;
	return (uint32_t)(d->slen - n);
}

static void dir_add(struct fl_dir *d, const struct ip_addr *ip, enum flow_kind kind,
		    unsigned prio, const char *ns, const char *name)
{
	if (d->oom || !ip->family)
		return;
	if (d->n == d->cap) {
		unsigned cap = d->cap ? d->cap * 2 : 256;
		struct fl_peer *nv = realloc(d->v, cap * sizeof(*nv));
		if (!nv) {
			d->oom = true;
			return;
		}
		d->v = nv, d->cap = cap;
	}
	struct fl_peer *p = &d->v[d->n];
	p->ip = *ip;
	p->kind = (uint8_t)kind;
	p->prio = (uint8_t)prio;
	p->ns = dir_str(d, ns);
	p->name = dir_str(d, name);
	if (!d->oom)
		d->n++;
}

static int ipcmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->b, b->b, sizeof(a->b));
}

static int peer_cmp(const void *x, const void *y)
{
	const struct fl_peer *a = x, *b = y;
	int c = ipcmp(&a->ip, &b->ip);
	return c ? c : (int)a->prio - (int)b->prio;
}

static void dir_block(void *user, const struct kube_obj *o)
{
	struct fl_dir *d = user;
	struct ipam_state st;
	if (agent_block_load(o, &st, NULL) == 0)
		for (unsigned b = 0; b < st.n_blocks; b++)
			for (unsigned i = 0; i < st.blocks[b].size; i++) {
				const struct ipam_attrs *at = st.blocks[b].slot[i];
				if (!at || (!at->pod[0] && !at->vmi_name[0]))
					continue;
				struct ip_addr ip = ipam_block_addr(&st.blocks[b], i);
				bool vm = at->vmi_name[0] != 0;
				dir_add(d, &ip, vm ? FLOW_KIND_VM : FLOW_KIND_POD, 1, at->ns,
					vm ? at->vmi_name : at->pod);
			}
	ipam_state_free(&st);
}

static void dir_vmi(void *user, const struct kube_obj *o)
{
	struct fl_dir *d = user;
	struct json_doc doc;
	struct json_tok *tok;
	if (kube_obj_parse(o, &doc, &tok) < 0)
		return;
	char mem[8192];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_vmi v;
	if (kube_vmi_view(&doc, 0, &v, &ar, NULL) == 0)
		for (unsigned i = 0; i < v.n_ifaces; i++) {
			struct ip_addr ip;
			if (v.ifaces[i].ip && ip_parse(v.ifaces[i].ip, &ip))
				dir_add(d, &ip, FLOW_KIND_VM, 2, o->ns, o->name);
			for (unsigned k = 0; k < v.ifaces[i].n_ips; k++)
				if (ip_parse(v.ifaces[i].ips[k], &ip))
					dir_add(d, &ip, FLOW_KIND_VM, 2, o->ns, o->name);
		}
	free(tok);
}

static void dir_node(void *user, const struct kube_obj *o)
{
	struct fl_dir *d = user;
	struct json_doc doc;
	struct json_tok *tok;
	if (kube_obj_parse(o, &doc, &tok) < 0)
		return;
	char mem[4096];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_node n;
	if (kube_node_view(&doc, 0, &n, &ar, NULL) == 0)
		for (unsigned i = 0; i < n.n_addrs; i++) {
			struct ip_addr ip;
			if (n.addrs[i].type && strcmp(n.addrs[i].type, "InternalIP") == 0 &&
			    n.addrs[i].address && ip_parse(n.addrs[i].address, &ip))
				dir_add(d, &ip, FLOW_KIND_NODE, 3, "", o->name);
		}
	free(tok);
}

/* The endpoint's identity: its VM when it is a VM's pod, else its pod. */
static void ep_who(const struct agent_ep *ep, struct flow_who *w)
{
	memset(w, 0, sizeof(*w));
	w->kind = ep->vm[0] ? FLOW_KIND_VM : FLOW_KIND_POD;
	snprintf(w->ns, sizeof(w->ns), "%s", ep->ns);
	snprintf(w->name, sizeof(w->name), "%s", ep->vm[0] ? ep->vm : ep->pod);
}

static void dir_build(struct agent_flows *f)
{
	struct fl_dir *d = &f->dir;
	d->n = 0, d->slen = 0, d->oom = false;
	for (unsigned i = 0; i < agent_ep_count(f->a); i++) {
		const struct agent_ep *ep = agent_ep_at(f->a, i);
		struct flow_who w;
		ep_who(ep, &w);
		for (unsigned k = 0; k < ep->n_ip; k++)
			dir_add(d, &ep->ip[k], w.kind, 0, w.ns, w.name);
	}
	agent_obj_each(f->a, AGENT_K_BLOCK, dir_block, d);
	agent_obj_each(f->a, AGENT_K_VMI, dir_vmi, d);
	agent_obj_each(f->a, AGENT_K_NODE, dir_node, d);
	if (d->oom) {
		log_warnx(f->log, "agent: flows: peer names: out of memory (%u named)", d->n);
		d->oom = false;
	}
	qsort(d->v, d->n, sizeof(*d->v), peer_cmp);
	unsigned o = 0;
	for (unsigned i = 0; i < d->n; i++)
		if (o == 0 || ipcmp(&d->v[o - 1].ip, &d->v[i].ip) != 0)
			d->v[o++] = d->v[i];
	d->n = o;
	f->dir_dirty = false;
}

static void dir_name(const struct fl_dir *d, const struct ip_addr *ip, struct flow_who *w)
{
	unsigned lo = 0, hi = d->n;
	memset(w, 0, sizeof(*w));
	w->kind = FLOW_KIND_EXTERNAL;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = ipcmp(&d->v[mid].ip, ip);
		if (c == 0) {
			w->kind = (enum flow_kind)d->v[mid].kind;
			snprintf(w->ns, sizeof(w->ns), "%s", d->str + d->v[mid].ns);
			snprintf(w->name, sizeof(w->name), "%s", d->str + d->v[mid].name);
			return;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
}

/* ---- policies behind a verdict ------------------------------------------------------ */

static void pols_clear(struct agent_flows *f)
{
	for (unsigned i = 0; i < f->n_pols; i++)
		pol_ruleset_free(&f->pols[i].rs);
	free(f->pols);
	f->pols = NULL;
	f->n_pols = 0;
}

/* Compile every local endpoint with the agent's compiler over the informers' world
 * (the rules agent/policy.c programs). An endpoint whose pod the world does not know yet
 * is left out (its flows say "unknown"). */
static void pols_build(struct agent_flows *f)
{
	unsigned n = agent_ep_count(f->a), bad = 0;
	pols_clear(f);
	f->pols_dirty = false;
	struct pol_world *w = agent_polworld_build(f->a, &bad);
	f->pols = calloc(n ? n : 1, sizeof(*f->pols));
	if (!w || !f->pols) {
		log_warnx(f->log, "agent: flows: policies of flows: out of memory");
		pol_world_free(w);
		f->pols_dirty = true;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct agent_ep *ep = agent_ep_at(f->a, i);
		struct fl_pol *fp = &f->pols[f->n_pols];
		struct pol_ep_in in = { ep->ns, ep->pod, ep->veth[0] ? ep->veth : NULL };
		if (!ep->ns[0] || !ep->pod[0] || pol_compile(w, &in, 1, &fp->rs, NULL) < 0)
			continue;
		ep_who(ep, &fp->who);
		f->n_pols++;
	}
	if (bad)
		log_debug(f->log, "agent: flows: policies of flows: %u objects refused", bad);
	pol_world_free(w);
}

/* Why record r was let through or dropped on its endpoint's side: the policies of the
 * endpoint's direction whose rules admit the peer, protocol and port (allowed), or the
 * policies isolating the direction whose default deny dropped it (denied). Computed at
 * the window's end with the rules in force then. */
static void attribute(struct agent_flows *f, struct flow_rec *r)
{
	memset(&r->pols, 0, sizeof(r->pols));
	if (!f->enforce) {
		r->pols.reason = FLOW_R_UNENFORCED;
		return;
	}
	const struct pol_cep *cep = NULL;
	for (unsigned i = 0; i < f->n_pols && !cep; i++) {
		const struct flow_who *w = &f->pols[i].who;
		if (w->kind == r->key.ep.kind && strcmp(w->ns, r->key.ep.ns) == 0 &&
		    strcmp(w->name, r->key.ep.name) == 0 && f->pols[i].rs.n == 1)
			cep = &f->pols[i].rs.eps[0];
	}
	if (!cep)
		return; /* unknown */
	const struct pol_cdir *d = &cep->dir[r->key.dir == FLOW_EGRESS ? POL_EGRESS : POL_INGRESS];
	if (!d->isolated) {
		r->pols.reason = r->key.verdict == FLOW_ALLOW ? FLOW_R_NO_POLICY : FLOW_R_UNKNOWN;
		return;
	}
	if (r->key.verdict == FLOW_DENY) {
		r->pols.reason = FLOW_R_DEFAULT_DENY;
		for (unsigned i = 0; i < d->n_policies; i++)
			flow_pols_add(&r->pols, d->policies[i]);
		return;
	}
	for (unsigned i = 0; i < d->n_rules; i++)
		if (pol_crule_match(&d->rules[i], &r->key.peer, r->key.proto, r->key.port))
			flow_pols_add(&r->pols, d->rules[i].policy);
	/* no rule admits it now: a connection from before the rules changed */
	r->pols.reason = r->pols.n || r->pols.cut ? FLOW_R_POLICY : FLOW_R_UNKNOWN;
}

/* ---- metrics --------------------------------------------------------------------- */

/* The series label of VM w: its "NS/NAME" while there is room, else "other". */
static const char *vm_label(struct agent_flows *f, const struct flow_who *w, char *buf,
			    size_t cap)
{
	snprintf(buf, cap, "%s/%s", w->ns, w->name);
	for (unsigned i = 0; i < f->n_vms; i++)
		if (strcmp(f->vms[i], buf) == 0)
			return buf;
	if (f->n_vms < AGENT_FLOWS_VM_SERIES) {
		snprintf(f->vms[f->n_vms++], sizeof(f->vms[0]), "%s", buf);
		return buf;
	}
	agent_metric_add(f->m_overflow, NULL, 1);
	return "other";
}

static void vm_metrics(struct agent_flows *f, const struct flow_obs *o)
{
	if (o->key.ep.kind != FLOW_KIND_VM ||
	    !(o->bytes_in || o->bytes_out || o->pkts_in || o->pkts_out ||
	      (o->started && o->key.verdict == FLOW_DENY)))
		return;
	char buf[sizeof(f->vms[0])];
	const char *lv = vm_label(f, &o->key.ep, buf, sizeof(buf));
	agent_metric_add(f->m_vm[0], lv, (double)o->bytes_in);
	agent_metric_add(f->m_vm[1], lv, (double)o->bytes_out);
	agent_metric_add(f->m_vm[2], lv, (double)o->pkts_in);
	agent_metric_add(f->m_vm[3], lv, (double)o->pkts_out);
	if (o->started && o->key.verdict == FLOW_DENY)
		agent_metric_add(f->m_vm[4], lv, 1);
}

static void table_metrics(struct agent_flows *f)
{
	struct flow_stats s = flow_table_stats(f->tab);
	agent_metric_add(f->m_dropped, NULL, (double)(s.dropped - f->last_dropped));
	agent_metric_add(f->m_observed, NULL, (double)(s.observed - f->last_observed));
	f->last_dropped = s.dropped;
	f->last_observed = s.observed;
	agent_metric_set(f->m_in_use, NULL, s.in_use);
}

/* ---- observations ---------------------------------------------------------------- */

/* Account one conntrack entry for every local endpoint on its sides. Counter deltas
 * are d_bytes / d_pkts (original, reply). */
static void observe(struct agent_flows *f, const struct ct_entry *ce, const uint64_t *d_bytes,
		    const uint64_t *d_pkts, bool started, bool ended, uint64_t now)
{
	const struct ip_addr *cand[3] = { &ce->orig.src, &ce->orig.dst, &ce->reply.src };
	const struct agent_ep *seen[3] = { NULL, NULL, NULL };
	struct flow_tuple t = { .src = ce->orig.src, .dst = ce->orig.dst,
				.reply_src = ce->reply.src, .sport = ce->orig.sport,
				.dport = ce->orig.dport, .proto = ce->orig.proto };
	if (ip_eq(&t.reply_src, &t.dst))
		t.reply_src.family = 0;
	if (t.proto == IPPROTO_ICMP || t.proto == IPPROTO_ICMPV6)
		t.sport = t.dport = 0; /* id and type/code are no service port */
	for (int i = 0; i < 3; i++) {
		const struct agent_ep *ep = agent_ep_find_ip(f->a, cand[i]);
		if (!ep || ep == seen[0] || ep == seen[1])
			continue;
		seen[i] = ep;
		struct flow_obs o;
		memset(&o, 0, sizeof(o));
		if (!flow_classify(&t, ep->ip, ep->n_ip, &o.key, &o.ep_ip))
			continue;
		ep_who(ep, &o.key.ep);
		o.key.verdict = FLOW_ALLOW;
		flow_counters(o.key.dir, d_bytes[0], d_pkts[0], d_bytes[1], d_pkts[1], &o);
		o.ts_ms = now;
		o.started = started;
		o.ended = ended;
		vm_metrics(f, &o);
		flow_observe(f->tab, &o);
	}
}

/* One packet a deny rule logged ("kvnet deny e_VETH" / "i_VETH"): a denied flow of
 * that endpoint and direction, one packet of its length. Packets of other prefixes, of
 * an interface without an endpoint, or whose addresses do not put the endpoint on the
 * rule's side are skipped. */
static int on_denied(const struct nflog_pkt *pk, void *arg)
{
	struct agent_flows *f = arg;
	size_t pl = strlen(PNFT_LOG_PREFIX);
	if (strncmp(pk->prefix, PNFT_LOG_PREFIX, pl) != 0)
		return 0;
	const char *chain = pk->prefix + pl;
	if ((chain[0] != 'e' && chain[0] != 'i') || chain[1] != '_' || !chain[2])
		return 0;
	enum flow_dir want = chain[0] == 'e' ? FLOW_EGRESS : FLOW_INGRESS;
	const struct agent_ep *ep = NULL;
	for (unsigned i = 0; i < agent_ep_count(f->a) && !ep; i++) {
		const struct agent_ep *x = agent_ep_at(f->a, i);
		if (strcmp(x->veth, chain + 2) == 0)
			ep = x;
	}
	if (!ep)
		return 0;
	struct flow_tuple t = { .src = pk->src, .dst = pk->dst, .sport = pk->sport,
				.dport = pk->dport, .proto = pk->proto };
	struct flow_obs o;
	memset(&o, 0, sizeof(o));
	if (!flow_classify(&t, ep->ip, ep->n_ip, &o.key, &o.ep_ip) || o.key.dir != want)
		return 0;
	ep_who(ep, &o.key.ep);
	o.key.verdict = FLOW_DENY;
	flow_counters(o.key.dir, pk->len, 1, 0, 0, &o);
	o.ts_ms = wall_ms();
	o.started = true; /* one denied attempt (packets beyond [flows] nflog_rate a
			   * second are counted by kvnet_policy_dropped_*, not here) */
	o.ended = true;
	vm_metrics(f, &o);
	agent_metric_add(f->m_denied, NULL, 1);
	flow_observe(f->tab, &o);
	return 0;
}

static bool touches_ep(struct agent_flows *f, const struct ct_entry *ce)
{
	return agent_ep_find_ip(f->a, &ce->orig.src) || agent_ep_find_ip(f->a, &ce->orig.dst) ||
	       agent_ep_find_ip(f->a, &ce->reply.src);
}

static int on_event(enum ct_event ev, const struct ct_entry *ce, void *arg)
{
	struct agent_flows *f = arg;
	static const uint64_t zero[2] = { 0, 0 };
	uint64_t now = wall_ms();
	switch (ev) {
	case CT_EV_NEW:
		if (touches_ep(f, ce))
			observe(f, ce, zero, zero, true, false, now);
		break;
	case CT_EV_UPDATE:
		break;
	case CT_EV_DESTROY: {
		if (!touches_ep(f, ce))
			break;
		uint64_t db[2] = { ce->bytes[0], ce->bytes[1] };
		uint64_t dp[2] = { ce->packets[0], ce->packets[1] };
		struct fl_conn *c = ce->id ? conns_find(&f->conns[f->cur], ce->id, false)
					       : NULL;
		if (c) {
			for (int k = 0; k < 2; k++) {
				db[k] = db[k] >= c->bytes[k] ? db[k] - c->bytes[k] : 0;
				dp[k] = dp[k] >= c->pkts[k] ? dp[k] - c->pkts[k] : 0;
			}
			c->state = FL_CONN_GONE;
		}
		observe(f, ce, db, dp, false, true, now);
		break;
	}
	}
	return 0;
}

/* One entry of the dump: account what grew since the last dump, remember it. */
static int on_dump(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct agent_flows *f = arg;
	struct ct_entry ce;
	(void)e;
	if (ct_parse(m, &ce, NULL) < 0 || !ce.id || !ce.has_counters || !touches_ep(f, &ce))
		return 0;
	struct fl_conns *nxt = &f->conns[!f->cur];
	/* the connections tracked before were copied in first: they keep their slots */
	struct fl_conn *slot = conns_find(nxt, ce.id, false);
	if (!slot && nxt->n < nxt->max) {
		slot = conns_find(nxt, ce.id, true);
		if (slot) {
			*slot = (struct fl_conn){ .id = ce.id, .state = FL_CONN_USED };
			nxt->n++;
		}
	}
	if (!slot) {
		/* not remembered: its bytes are accounted once, when it ends */
		agent_metric_add(f->m_untracked, NULL, 1);
		return 0;
	}
	uint64_t db[2], dp[2];
	for (int k = 0; k < 2; k++) {
		db[k] = ce.bytes[k] >= slot->bytes[k] ? ce.bytes[k] - slot->bytes[k] : 0;
		dp[k] = ce.packets[k] >= slot->pkts[k] ? ce.packets[k] - slot->pkts[k] : 0;
		slot->bytes[k] = ce.bytes[k];
		slot->pkts[k] = ce.packets[k];
	}
	slot->seen = true;
	slot->missed = 0;
	if (db[0] || db[1] || dp[0] || dp[1])
		observe(f, &ce, db, dp, false, false, wall_ms());
	return 0;
}

/* Dump the table and swap the connection counters. The connections tracked so far are
 * copied into the next table first (so new ones never push them out); one missing from
 * two dumps in a row is forgotten (its DESTROY event was lost in an overrun). */
static void dump(struct agent_flows *f)
{
	struct fl_conns *old = &f->conns[f->cur], *nxt = &f->conns[!f->cur];
	uint8_t buf[64];
	struct nl_msg m;
	struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 };
	struct err e = { 0 };
	nl_msg_init(&m, buf, sizeof(buf), (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, 0);
	nl_put_fam(&m, &g, sizeof(g));
	conns_clear(nxt);
	for (uint32_t i = 0; i <= old->mask; i++)
		if (old->v[i].state == FL_CONN_USED) {
			struct fl_conn *s = conns_find(nxt, old->v[i].id, true);
			*s = old->v[i];
			s->seen = false;
			nxt->n++;
		}
	int rc = nl_dump(f->req, &m, on_dump, f, &e);
	if (rc < 0 && rc != -EINTR) {
		log_warnx(f->log, "agent: flows: conntrack dump: %s", e.msg);
		return; /* keep the counters we had */
	}
	for (uint32_t i = 0; i <= nxt->mask; i++) {
		struct fl_conn *s = &nxt->v[i];
		if (s->state != FL_CONN_USED || s->seen)
			continue;
		if (s->missed++ >= 1) {
			s->state = FL_CONN_GONE;
			nxt->n--;
		}
	}
	f->cur = !f->cur;
	agent_metric_add(f->m_dumps, NULL, 1);
}

/* ---- L2 ports ------------------------------------------------------------------- */

/* The endpoint (its pod network side) of the pod with uid, NULL when not here. */
static const struct agent_ep *ep_by_uid(struct agent_flows *f, const char *uid)
{
	for (unsigned i = 0; i < agent_ep_count(f->a); i++) {
		const struct agent_ep *ep = agent_ep_at(f->a, i);
		if (ep->uid[0] && strcmp(ep->uid, uid) == 0)
			return ep;
	}
	return NULL;
}

/* One L2 port's flow growth: an observation of the VM (or pod) the port belongs to. */
static void l2_obs(void *arg, const struct l2f_obs *lo)
{
	struct agent_flows *f = arg;
	const struct agent_ep *ep = ep_by_uid(f, lo->port->id.uid);
	if (!ep)
		return; /* a port of a pod this agent does not know (yet) */
	struct flow_obs o;
	memset(&o, 0, sizeof(o));
	ep_who(ep, &o.key.ep);
	o.key.dir = lo->vm_opened ? FLOW_EGRESS : FLOW_INGRESS;
	o.key.peer = lo->vm_opened ? lo->t.dst : lo->t.src;
	o.ep_ip = lo->vm_opened ? lo->t.src : lo->t.dst;
	o.key.port = lo->t.dport;
	o.key.proto = lo->t.proto;
	o.key.verdict = FLOW_ALLOW;
	flow_counters(o.key.dir, lo->orig_bytes, lo->orig_pkts, lo->reply_bytes, lo->reply_pkts,
		      &o);
	o.ts_ms = wall_ms();
	o.started = lo->started;
	vm_metrics(f, &o);
	flow_observe(f->tab, &o);
}

/* Read the L2 ports' counters into the window (the table is made again when gone). */
static void l2_collect(struct agent_flows *f)
{
	struct l2f_port ports[L2F_PORTS_MAX];
	unsigned n = 0;
	uint64_t full = 0;
	struct err e = { 0 };
	if (!f->l2)
		return;
	if (!f->l2_programmed) {
		if (l2flows_program(f->l2, f->l2nf, &e) < 0) {
			log_warnx(f->log, "agent: flows: l2 ports: %s", e.msg);
			return;
		}
		f->l2_programmed = true;
	}
	if (l2flows_ports(f->l2rt, ports, &n, &e) < 0 ||
	    l2flows_collect(f->l2, f->l2nf, ports, n, l2_obs, f, &full, &e) < 0) {
		log_warnx(f->log, "agent: flows: l2 ports: %s", e.msg);
		f->l2_programmed = e.code != ENOENT;
		return;
	}
	agent_metric_add(f->m_l2_full, NULL, (double)full);
}

/* ---- the flow log ---------------------------------------------------------------- */

static int flog_open(struct agent_flows *f, struct err *e)
{
	f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (f->fd < 0)
		return err_set(e, errno, "agent: flows: %s: open", f->path);
	struct stat st;
	f->log_size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

static void flog_rotate(struct agent_flows *f)
{
	char from[sizeof(f->path) + 8], to[sizeof(f->path) + 8];
	struct err e = { 0 };
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->max_files == 0) {
		unlink(f->path);
	} else {
		snprintf(to, sizeof(to), "%s.%u", f->path, f->max_files);
		unlink(to);
		for (unsigned k = f->max_files; k > 1; k--) {
			snprintf(from, sizeof(from), "%s.%u", f->path, k - 1);
			snprintf(to, sizeof(to), "%s.%u", f->path, k);
			rename(from, to);
		}
		snprintf(to, sizeof(to), "%s.1", f->path);
		if (rename(f->path, to) < 0 && errno != ENOENT)
			log_warn(f->log, "agent: flows: %s: rotate", f->path);
	}
	agent_metric_add(f->m_rotations, NULL, 1);
	if (flog_open(f, &e) < 0) {
		log_warnx(f->log, "%s", e.msg);
		agent_metric_add(f->m_log_errors, NULL, 1);
	}
}

/* Write the batch, rotating first when it would take the file past the bound. */
static void flog_write(struct agent_flows *f)
{
	if (!f->out_len)
		return;
	if (f->log_size && f->log_size + f->out_len > f->max_bytes)
		flog_rotate(f);
	ssize_t n = f->fd >= 0 ? write(f->fd, f->out, f->out_len) : -1;
	if (n != (ssize_t)f->out_len) {
		if (n < 0)
			log_warn(f->log, "agent: flows: %s: write", f->path);
		agent_metric_add(f->m_log_errors, NULL, 1);
	}
	if (n > 0) {
		f->log_size += (uint64_t)n;
		agent_metric_add(f->m_log_bytes, NULL, (double)n);
	}
	f->out_len = 0;
}

struct flush_ctx {
	struct agent_flows *f; /* the module */
	uint64_t t0, t1;       /* the window */
};

static void flush_rec(void *user, const struct flow_rec *r)
{
	struct flush_ctx *x = user;
	struct agent_flows *f = x->f;
	struct flow_rec rec = *r;
	char line[FL_REC_MAX];
	struct json_w w;
	dir_name(&f->dir, &rec.key.peer, &rec.peer_who);
	attribute(f, &rec);
	snprintf(rec.node, sizeof(rec.node), "%s", agent_node(f->a));
	json_w_init(&w, line, sizeof(line) - 1);
	flow_json(&w, &rec, x->t0, x->t1);
	if (json_w_finish(&w, NULL) < 0) {
		agent_metric_add(f->m_log_errors, NULL, 1);
		return;
	}
	line[w.len++] = '\n';
	if (f->out_len + w.len > sizeof(f->out))
		flog_write(f);
	memcpy(f->out + f->out_len, line, w.len);
	f->out_len += w.len;
}

/* End the window: counter deltas from a dump, then every record to the log. */
static void flush(struct agent_flows *f)
{
	dump(f);
	l2_collect(f);
	if (f->dir_dirty)
		dir_build(f);
	if (f->enforce && f->pols_dirty)
		pols_build(f);
	struct flush_ctx x = { .f = f, .t0 = f->win_start_ms, .t1 = wall_ms() };
	table_metrics(f);
	unsigned n = flow_table_flush(f->tab, flush_rec, &x);
	flog_write(f);
	agent_metric_add(f->m_records, NULL, n);
	agent_metric_set(f->m_in_use, NULL, 0);
	f->win_start_ms = x.t1;
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	flush(arg);
}

/* Read what fd holds, up to FL_READS_PER_WAKE datagrams, each through parse: one loop for
 * the conntrack events and the nflog group. An overrun (ENOBUFS) counts in lost. */
static void recv_datagrams(struct agent_flows *f, int fd, struct agent_metric *lost,
			   int (*parse)(struct agent_flows *f, const uint8_t *buf, size_t n,
					struct err *e))
{
	uint8_t buf[NL_RECV_BUF];
	for (int i = 0; i < FL_READS_PER_WAKE; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			agent_metric_add(lost, NULL, 1);
			continue; /* lost: the next dump (or the deny counters) account them */
		}
		if (n <= 0)
			break;
		struct err e = { 0 };
		if (parse(f, buf, (size_t)n, &e) < 0)
			log_debug(f->log, "agent: flows: %s", e.msg);
	}
	table_metrics(f);
}

static int parse_ct(struct agent_flows *f, const uint8_t *buf, size_t n, struct err *e)
{
	return ct_events_parse(buf, n, on_event, f, e);
}

static int parse_nflog(struct agent_flows *f, const uint8_t *buf, size_t n, struct err *e)
{
	return nflog_parse_buf(buf, n, on_denied, f, e);
}

static void on_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *arg)
{
	struct agent_flows *f = arg;
	(void)loop, (void)io, (void)revents;
	recv_datagrams(f, fd, f->m_lost, parse_ct);
}

static void on_nflog(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		     void *arg)
{
	struct agent_flows *f = arg;
	(void)loop, (void)io, (void)revents;
	recv_datagrams(f, fd, f->m_nflog_lost, parse_nflog);
}

/* Listen to the deny rules' nflog group. A failure is logged and leaves denied flows
 * out of the records (allowed flows are recorded as before). */
static void nflog_start(struct agent_flows *f, const struct conf *c)
{
	struct err e = { 0 };
	int rcv = FL_NFLOG_RCVBUF;
	if (nl_open(&f->nflog, NETLINK_NETFILTER, &e) < 0 ||
	    nflog_bind(f->nflog, (uint16_t)c->flows.nflog_group, FL_NFLOG_COPY, &e) < 0 ||
	    ev_io_add(agent_loop(f->a), nl_fd(f->nflog), EPOLLIN, on_nflog, f, NULL,
		      &f->nflog_io, &e) < 0) {
		log_warnx(f->log, "agent: flows: denied flows NOT recorded: %s", e.msg);
		nl_close(f->nflog);
		f->nflog = NULL;
		return;
	}
	if (setsockopt(nl_fd(f->nflog), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(nl_fd(f->nflog), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	log_info(f->log, "agent: flows: denied packets from nflog group %u (at most %u a "
		 "second per endpoint direction)", c->flows.nflog_group, c->flows.nflog_rate);
}

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	struct agent_flows *f = arg;
	(void)a;
	/* an endpoint going (a migration's source, a deleted pod) is still in the table:
	 * read its connections' counters now, or what it sent since the last window's dump
	 * would be lost with it (its entries no longer touch an endpoint afterwards) */
	if (ev->hook == AGENT_HOOK_EP_REMOVED)
		dump(f);
	if (ev->hook != AGENT_HOOK_OBJECT || ev->kind == AGENT_K_BLOCK ||
	    ev->kind == AGENT_K_VMI || ev->kind == AGENT_K_NODE)
		f->dir_dirty = true;
	if (ev->hook != AGENT_HOOK_OBJECT || agent_polworld_kind(ev->kind))
		f->pols_dirty = true;
}

/* ---- GET /flows ------------------------------------------------------------------ */

static int duration_ms(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > 100000000ULL)
			return -EINVAL;
	}
	if (p == s || p[0] == 0 || p[1] != 0)
		return -EINVAL;
	switch (*p) {
	case 's': *out = v * 1000ULL; return 0;
	case 'm': *out = v * 60000ULL; return 0;
	case 'h': *out = v * 3600000ULL; return 0;
	case 'd': *out = v * 86400000ULL; return 0;
	}
	return -EINVAL;
}

int agent_flows_query_parse(const char *query, uint64_t now_ms, struct flow_query *q,
			    struct err *e)
{
	char vm[2 * FLOW_NAME_MAX + 2], ip[64], since[32];
	memset(q, 0, sizeof(*q));
	int hv = agent_http_query_get(query, "vm", vm, sizeof(vm), e);
	if (hv < 0)
		return -EINVAL;
	int hi = agent_http_query_get(query, "ip", ip, sizeof(ip), e);
	if (hi < 0)
		return -EINVAL;
	int hs = agent_http_query_get(query, "since", since, sizeof(since), e);
	if (hs < 0)
		return -EINVAL;
	if (hv == hi)
		return err_setx(e, EINVAL, "query: want exactly one of vm=NS/NAME and ip=ADDR");
	if (hv) {
		const char *sl = strchr(vm, '/');
		if (!sl || sl == vm || !sl[1] || (size_t)(sl - vm) > FLOW_NAME_MAX ||
		    strlen(sl + 1) > FLOW_NAME_MAX || strchr(sl + 1, '/'))
			return err_setx(e, EINVAL, "query vm: want NAMESPACE/NAME");
		memcpy(q->ns, vm, (size_t)(sl - vm));
		memcpy(q->name, sl + 1, strlen(sl + 1) + 1);
	} else if (!ip_parse(ip, &q->ip)) {
		return err_setx(e, EINVAL, "query ip: not an IPv4 or IPv6 address");
	}
	if (hs) {
		uint64_t d;
		if (duration_ms(since, &d) < 0)
			return err_setx(e, EINVAL, "query since: want N followed by s, m, h or d");
		q->since_ms = d < now_ms ? now_ms - d : 0;
	}
	return 0;
}

/* Merge every record line of one log file into rep. */
static void merge_file(struct flow_report *rep, const char *path, uint32_t max)
{
	char *text;
	size_t n;
	if (file_read(path, (size_t)max + FL_BATCH, &text, &n, NULL) < 0)
		return;
	for (char *p = text, *end = text + n; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct flow_rec r;
		uint64_t t0, t1;
		if (len && flow_line_parse(p, len, &r, &t0, &t1, NULL) == 0)
			flow_report_add(rep, &r);
		p += len + 1;
	}
	free(text);
}

static void http_flows(void *arg, struct agent *a, const char *query,
		       struct agent_http_answer *ans)
{
	struct agent_flows *f = arg;
	struct flow_query q;
	struct err e = { 0 };
	(void)a;
	if (agent_flows_query_parse(query, wall_ms(), &q, &e) < 0) {
		ans->status = 400;
		snprintf(ans->text, sizeof(ans->text), "%s\n", e.msg);
		return;
	}
	struct flow_report rep;
	flow_report_init(&rep, &q, AGENT_FLOWS_REPORT_ROWS);
	char p[sizeof(f->path) + 8];
	for (unsigned k = f->max_files; k >= 1; k--) {
		snprintf(p, sizeof(p), "%s.%u", f->path, k);
		merge_file(&rep, p, f->max_bytes);
	}
	merge_file(&rep, f->path, f->max_bytes);
	flow_report_sort(&rep);
	ans->body = flow_report_text(&rep, FLOW_FMT_JSON, &ans->blen, &e);
	flow_report_free(&rep);
	if (!ans->body) {
		ans->status = 503;
		snprintf(ans->text, sizeof(ans->text), "%s\n", e.msg);
		return;
	}
	ans->ctype = "application/json";
}

/* ---- life cycle ------------------------------------------------------------------ */

static int set_acct(struct agent_flows *f, struct err *e)
{
	static const char path[] = "/proc/sys/net/netfilter/nf_conntrack_acct";
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "agent: flows: %s: open", path);
	ssize_t n = write(fd, "1\n", 2);
	int err = errno;
	close(fd);
	if (n != 2)
		return err_set(e, err, "agent: flows: %s: write", path);
	log_info(f->log, "agent: flows: net.netfilter.nf_conntrack_acct set to 1 in this "
			 "namespace (bytes and packets per connection)");
	return 0;
}

static int metrics_new(struct agent_flows *f, struct err *e)
{
	struct agent_metrics *r = agent_metrics(f->a);
	static const char *const vm_names[5][2] = {
		{ "kvnet_flows_vm_bytes_in_total", "Bytes a VM received, by VM." },
		{ "kvnet_flows_vm_bytes_out_total", "Bytes a VM sent, by VM." },
		{ "kvnet_flows_vm_packets_in_total", "Packets a VM received, by VM." },
		{ "kvnet_flows_vm_packets_out_total", "Packets a VM sent, by VM." },
		{ "kvnet_flows_vm_denied_total", "Connections of a VM denied by policy, by VM." },
	};
	for (int i = 0; i < 5; i++)
		f->m_vm[i] = agent_metric_new(r, vm_names[i][0], vm_names[i][1], AGENT_M_COUNTER,
					      "vm");
#define C(field, name, help) f->field = agent_metric_new(r, name, help, AGENT_M_COUNTER, NULL)
#define G(field, name, help) f->field = agent_metric_new(r, name, help, AGENT_M_GAUGE, NULL)
	C(m_overflow, "kvnet_flows_vm_series_overflow_total",
	  "Observations of VMs beyond the series bound, counted as vm=\"other\".");
	C(m_observed, "kvnet_flows_observed_total", "Flow observations taken.");
	C(m_dropped, "kvnet_flows_dropped_total",
	  "Observations of new flows dropped: the window's table was full.");
	C(m_records, "kvnet_flows_records_total", "Flow records written to the flow log.");
	G(m_in_use, "kvnet_flows_table_in_use", "Records in the current window.");
	G(m_max, "kvnet_flows_table_max", "Records a window holds ([flows] max_flows).");
	G(m_bytes, "kvnet_flows_table_bytes", "Memory of the flow tables (fixed).");
	C(m_lost, "kvnet_flows_events_lost_total",
	  "Times the conntrack event socket overran (events lost).");
	C(m_untracked, "kvnet_flows_conns_untracked_total",
	  "Connections whose counters did not fit the table: accounted when they end.");
	C(m_dumps, "kvnet_flows_ct_dumps_total",
	  "Conntrack table dumps read (one per flush interval).");
	C(m_log_bytes, "kvnet_flows_log_bytes_total", "Bytes written to the flow log.");
	C(m_rotations, "kvnet_flows_log_rotations_total", "Flow log rotations.");
	C(m_log_errors, "kvnet_flows_log_errors_total",
	  "Flow log records that could not be written.");
	C(m_denied, "kvnet_flows_denied_packets_logged_total",
	  "Denied packets read from the policy's nflog group (rate-limited in the kernel).");
	C(m_nflog_lost, "kvnet_flows_nflog_lost_total",
	  "Times the nflog socket overran (denied packets not recorded).");
	C(m_l2_full, "kvnet_flows_l2_untracked_packets_total",
	  "L2 port packets not counted per flow: the table kvnet-l2flows was full.");
#undef C
#undef G
	for (int i = 0; i < 5; i++)
		if (!f->m_vm[i])
			return err_setx(e, EEXIST, "agent: flows: metrics: cannot register");
	if (!f->m_overflow || !f->m_observed || !f->m_dropped || !f->m_records || !f->m_in_use ||
	    !f->m_max || !f->m_bytes || !f->m_lost || !f->m_untracked || !f->m_log_bytes ||
	    !f->m_rotations || !f->m_log_errors || !f->m_denied || !f->m_nflog_lost ||
	    !f->m_l2_full)
		return err_setx(e, EEXIST, "agent: flows: metrics: cannot register");
	return 0;
}

struct agent_flows *agent_flows_new(struct agent *a, struct err *e)
{
	const struct conf *c = agent_conf(a);
	struct agent_flows *f = calloc(1, sizeof(*f));
	if (!f) {
		err_setx(e, ENOMEM, "agent: flows: out of memory");
		return NULL;
	}
	f->a = a;
	f->log = agent_log(a);
	f->fd = -1;
	if (!c->flows.enabled)
		return f;
	f->max_bytes = c->flows.max_log_bytes;
	f->max_files = c->flows.max_log_files;
	snprintf(f->path, sizeof(f->path), "%s/flows.log", c->flows.log_dir);
	f->dir_dirty = true;
	f->tab = flow_table_new(c->flows.max_flows, e);
	if (!f->tab)
		goto fail;
	if (conns_init(&f->conns[0], c->flows.max_flows) < 0 ||
	    conns_init(&f->conns[1], c->flows.max_flows) < 0) {
		err_setx(e, ENOMEM, "agent: flows: no memory for %u connections",
			 c->flows.max_flows);
		goto fail;
	}
	if (metrics_new(f, e) < 0)
		goto fail;
	if (mkdir(c->flows.log_dir, 0750) < 0 && errno != EEXIST) {
		err_set(e, errno, "agent: flows: %s: mkdir", c->flows.log_dir);
		goto fail;
	}
	if (flog_open(f, e) < 0)
		goto fail;
	if (ct_open(&f->ev, NULL, e) < 0 || ct_open(&f->req, NULL, e) < 0 ||
	    ct_events_subscribe(f->ev, true, false, true, e) < 0)
		goto fail;
	int rcv = FL_RCVBUF;
	if (setsockopt(nl_fd(f->ev), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(nl_fd(f->ev), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (set_acct(f, e) < 0)
		goto fail;
	if (ev_io_add(agent_loop(a), nl_fd(f->ev), EPOLLIN, on_io, f, NULL, &f->io, e) < 0 ||
	    ev_timer_add(agent_loop(a), (uint64_t)c->flows.flush_interval * 1000,
			 (uint64_t)c->flows.flush_interval * 1000, on_timer, f, NULL, &f->timer,
			 e) < 0)
		goto fail;
	if (agent_hook_add(a, AGENT_HOOK_OBJECT, on_hook, f, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_EP_ADDED, on_hook, f, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_EP_REMOVED, on_hook, f, e) < 0 ||
	    agent_http_add(a, "/flows", http_flows, f, e) < 0)
		goto fail;
	if (c->agent.network_policy == CONF_ENABLED)
		nflog_start(f, c);
	/* L2 ports: counted in kvnet's own bridge table; elements outlive two windows */
	f->l2 = l2flows_new(c->flows.max_flows, 2 * c->flows.flush_interval, e);
	if (!f->l2 || nl_open(&f->l2nf, NETLINK_NETFILTER, e) < 0 ||
	    nl_open(&f->l2rt, NETLINK_ROUTE, e) < 0)
		goto fail;
	l2_collect(f); /* programs the table */
	/* what agent/policy.c enforces: the kubernetes datastore only */
	if (c->agent.network_policy == CONF_ENABLED &&
	    c->datastore.type == CONF_DATASTORE_KUBERNETES) {
		f->enforce = true;
		f->pols_dirty = true;
		agent_polworld_want(a);
	}
	agent_want_kind(a, AGENT_K_BLOCK);
	agent_want_kind(a, AGENT_K_VMI);
	agent_want_kind(a, AGENT_K_NODE);
	size_t bytes = flow_table_bytes(f->tab) +
		       2 * ((size_t)f->conns[0].mask + 1) * sizeof(struct fl_conn);
	agent_metric_set(f->m_max, NULL, c->flows.max_flows);
	agent_metric_set(f->m_bytes, NULL, (double)bytes);
	f->win_start_ms = wall_ms();
	log_info(f->log,
		 "agent: flows: recording into %s every %us (%u flows per window, %zu KiB; "
		 "log rotated at %u bytes, %u kept); conntrack must be active in this "
		 "namespace",
		 f->path, c->flows.flush_interval, c->flows.max_flows, bytes / 1024,
		 f->max_bytes, f->max_files);
	return f;
fail:
	agent_flows_free(f);
	return NULL;
}

void agent_flows_free(struct agent_flows *f)
{
	if (!f)
		return;
	if (f->tab && f->req && f->fd >= 0 && f->timer)
		flush(f);
	agent_http_del(f->a, "/flows");
	agent_hook_del(f->a, AGENT_HOOK_OBJECT, on_hook, f);
	agent_hook_del(f->a, AGENT_HOOK_EP_ADDED, on_hook, f);
	agent_hook_del(f->a, AGENT_HOOK_EP_REMOVED, on_hook, f);
	if (f->io)
		ev_io_del(f->io);
	if (f->nflog_io)
		ev_io_del(f->nflog_io);
	nl_close(f->nflog);
	if (f->timer)
		ev_timer_del(f->timer);
	nl_close(f->ev);
	nl_close(f->req);
	nl_close(f->l2nf);
	nl_close(f->l2rt);
	l2flows_free(f->l2);
	if (f->fd >= 0)
		close(f->fd);
	flow_table_free(f->tab);
	free(f->conns[0].v);
	free(f->conns[1].v);
	free(f->dir.v);
	free(f->dir.str);
	pols_clear(f);
	free(f);
}
