/* agent — the node daemon (see agent.h). */
#include "agent/agent.h"

#include "agent/http.h"
#include "agent/metrics.h"
#include "agent/proto.h"
#include "agent/reconcile.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "lib/json.h"
#include "kube/kubeconfig.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define AGENT_KUBE_TIMEOUT_MS 10000 /* API server I/O timeout */
#define AGENT_CONN_RBUF 8192	    /* read buffer per connection */
#define AGENT_CONNS_MAX 256	    /* open HTTP + socket connections */
#define AGENT_CONN_WMAX 65536	    /* pending output above which a connection is not read */
#define AGENT_IDENTITY_REQUIRED 0   /* 1: refuse an add without node and datastore */

/* An endpoint and what the agent tracks about it (ep first: agent_ep* <-> slot*). */
struct ep_slot {
	struct agent_ep ep; /* the endpoint */
	unsigned gates;	    /* "programmed" gate bits (agent_ep_gate_set) */
	bool routes_ok;	    /* a full reconcile succeeded while it existed */
	bool programmed;    /* last evaluation said programmed */
};

/* One accepted connection: HTTP or the CNI socket. */
struct aconn {
	struct agent *a;		/* the agent */
	struct aconn *next;		/* list */
	int fd;				/* socket */
	struct ev_io *io;		/* watcher */
	bool http;			/* HTTP (else the CNI protocol) */
	bool close_after;		/* close once wbuf is written */
	bool dead;			/* closed: fd and watcher gone, freed by the reaper */
	bool waiting;			/* owes a "programmed" answer for (wcid, wifname) */
	char wcid[IPAM_CID_MAX + 1];	/* waited endpoint: container id */
	char wifname[IPAM_IFNAME_MAX + 1]; /* waited endpoint: ifname */
	size_t rlen;			/* bytes in rbuf */
	char rbuf[AGENT_CONN_RBUF];	/* unparsed input */
	char *wbuf;			/* pending output (owned) */
	size_t wlen, woff;		/* its length / bytes written */
};

/* Per-informer context. */
struct inf_ctx {
	struct agent *a;	    /* the agent */
	enum agent_kind kind;	    /* which */
	struct kube_informer *inf;  /* the informer (owned) */
	bool synced;		    /* first LIST applied */
};

struct agent {
	struct conf conf;		   /* configuration in force */
	char node[IPAM_NAME_MAX + 1];	   /* this node */
	char ident[AGENT_DATASTORE_MAX];   /* its datastore (conf_datastore_ident) */
	struct log *log;		   /* logger (not owned) */
	struct ev_loop *loop;		   /* the loop (owned) */
	struct nl_sock *nl;		   /* rtnetlink socket (owned) */
	struct agent_metrics *metrics;	   /* registry (owned) */
	struct agent_metric *m_ready;	   /* gauge */
	struct agent_metric *m_eps;	   /* gauge: endpoints */
	struct agent_metric *m_routes;	   /* gauge: routes owned after the last reconcile */
	struct agent_metric *m_changes;	   /* counter{op}: route changes */
	struct agent_metric *m_recs;	   /* counter{result}: reconciles */
	struct agent_metric *m_reconn;	   /* counter: API reconnects */
	struct agent_metric *m_objects;	   /* gauge{kind}: objects in the informer stores */
	struct agent_metric *m_cni;	   /* counter{op}: CNI socket requests */
	struct ep_slot **eps;		   /* endpoints (owned) */
	unsigned n_eps, cap_eps;	   /* used / allocated */
	struct agent_override *ovr;	   /* overrides (owned) */
	unsigned n_ovr, cap_ovr;	   /* used / allocated */
	struct kcfg *kc;		   /* kubeconfig (owned; kubernetes datastore) */
	struct kube_client *kube;	   /* API client (owned) */
	struct inf_ctx inf[AGENT_K_COUNT]; /* informers */
	bool kube_mode;			   /* datastore kubernetes: informers run */
	int http_fd;			   /* HTTP listener, -1 */
	struct ev_io *http_io;		   /* its watcher */
	int sock_fd;			   /* unix listener, -1 */
	struct ev_io *sock_io;		   /* its watcher */
	bool sock_bound;		   /* we created the socket file (unlink on free) */
	struct aconn *conns;		   /* open connections */
	unsigned n_conns;		   /* their count */
	struct aconn *dead_conns;	   /* closed, to be freed by `reap` (owned) */
	struct ev_timer *reap;		   /* one-shot: frees dead_conns after the dispatch */
	struct ev_timer *soon;		   /* one-shot: reconcile on the next iteration */
	struct ev_timer *resync;	   /* periodic reconcile */
	bool reconciled;		   /* a reconcile after the initial sync succeeded */
	bool synced_all;		   /* every informer synced once */
	const struct agent_hooks *hooks;   /* migration code's hooks or NULL */
	struct agent_hooks hooks_copy;	   /* their storage */
	void *hooks_user;		   /* their user pointer */
};

static const char *const kind_names[AGENT_K_COUNT] = { "pods", "vmis", "vmims",
						       "ipamblocks", "ipamhandles", "nodes" };

/* ---- small helpers ------------------------------------------------------------------ */

struct ev_loop *agent_loop(struct agent *a) { return a->loop; }
struct log *agent_log(struct agent *a) { return a->log; }
const struct conf *agent_conf(const struct agent *a) { return &a->conf; }
const char *agent_node(const struct agent *a) { return a->node; }
struct kube_client *agent_kube(struct agent *a) { return a->kube; }
struct agent_metrics *agent_metrics(struct agent *a) { return a->metrics; }
bool agent_ready(const struct agent *a) { return a->synced_all && a->reconciled; }

bool agent_obj_get(const struct agent *a, enum agent_kind kind, const char *ns,
		   const char *name, struct kube_obj *out)
{
	if ((unsigned)kind >= AGENT_K_COUNT || !a->inf[kind].inf)
		return false;
	return kube_informer_get(a->inf[kind].inf, ns, name, out);
}

void agent_obj_each(const struct agent *a, enum agent_kind kind,
		    void (*fn)(void *user, const struct kube_obj *obj), void *user)
{
	if ((unsigned)kind < AGENT_K_COUNT && a->inf[kind].inf)
		kube_informer_each(a->inf[kind].inf, fn, user);
}

bool agent_obj_synced(const struct agent *a, enum agent_kind kind)
{
	return (unsigned)kind < AGENT_K_COUNT && a->inf[kind].synced;
}

void agent_set_hooks(struct agent *a, const struct agent_hooks *h, void *user)
{
	if (h) {
		a->hooks_copy = *h;
		a->hooks = &a->hooks_copy;
	} else {
		a->hooks = NULL;
	}
	a->hooks_user = user;
}

static void conn_close(struct aconn *c);
static void answer_waiters(struct agent *a);

/* ---- endpoints ---------------------------------------------------------------------- */

static struct ep_slot *slot_of(struct agent_ep *ep)
{
	return (struct ep_slot *)ep;
}

struct agent_ep *agent_ep_find(struct agent *a, const char *cid, const char *ifname)
{
	for (unsigned i = 0; i < a->n_eps; i++)
		if (strcmp(a->eps[i]->ep.cid, cid) == 0 && strcmp(a->eps[i]->ep.ifname, ifname) == 0)
			return &a->eps[i]->ep;
	return NULL;
}

struct agent_ep *agent_ep_find_ip(struct agent *a, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < a->n_eps; i++)
		for (unsigned k = 0; k < a->eps[i]->ep.n_ip; k++)
			if (ip_eq(&a->eps[i]->ep.ip[k], ip))
				return &a->eps[i]->ep;
	return NULL;
}

unsigned agent_ep_count(const struct agent *a) { return a->n_eps; }

struct agent_ep *agent_ep_at(struct agent *a, unsigned i)
{
	return i < a->n_eps ? &a->eps[i]->ep : NULL;
}

void agent_ep_gate_set(struct agent *a, struct agent_ep *ep, unsigned bits)
{
	(void)a;
	slot_of(ep)->gates |= bits;
}

void agent_ep_gate_clear(struct agent *a, struct agent_ep *ep, unsigned bits)
{
	slot_of(ep)->gates &= ~bits;
	answer_waiters(a);
}

static bool ep_programmed(const struct ep_slot *s)
{
	return s->routes_ok && s->gates == 0 && (s->ep.target || s->ep.ifindex > 0);
}

/* File name of an endpoint in endpoints_dir. */
static int ep_path(const struct agent *a, const struct agent_ep *ep, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s_%s.json", a->conf.agent.endpoints_dir, ep->cid,
			 ep->ifname);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Keep the endpoint's add line on disk (write temp + rename). */
static int ep_save(struct agent *a, const struct agent_ep *ep, struct err *e)
{
	struct agent_req r;
	memset(&r, 0, sizeof(r));
	r.op = AGENT_OP_ADD;
	r.ep = *ep;
	r.ep.ifindex = 0;
	snprintf(r.node, sizeof(r.node), "%s", a->node);
	snprintf(r.datastore, sizeof(r.datastore), "%s", a->ident);
	char line[AGENT_PROTO_LINE_MAX];
	long n = agent_req_format(&r, line, sizeof(line));
	if (n < 0)
		return err_setx(e, (int)-n, "agent: endpoint %s/%s: does not fit a line", ep->cid,
				ep->ifname);
	char path[4096], tmp[4200];
	if (ep_path(a, ep, path, sizeof(path)) < 0)
		return err_setx(e, ENAMETOOLONG, "agent: endpoint %s/%s: path too long", ep->cid,
				ep->ifname);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "agent: %s: open", tmp);
	ssize_t w = write(fd, line, (size_t)n);
	int er = errno;
	if (close(fd) < 0 && w == n) {
		w = -1;
		er = errno;
	}
	if (w != n) {
		unlink(tmp);
		return err_set(e, w < 0 ? er : EIO, "agent: %s: write", tmp);
	}
	if (rename(tmp, path) < 0) {
		er = errno;
		unlink(tmp);
		return err_set(e, er, "agent: %s: rename", path);
	}
	return 0;
}

static void ep_unlink(struct agent *a, const struct agent_ep *ep)
{
	char path[4096];
	if (ep_path(a, ep, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn(a->log, "agent: %s: unlink", path);
}

/* Insert (or replace) an endpoint; returns it or NULL when out of memory. */
static struct agent_ep *ep_insert(struct agent *a, const struct agent_ep *ep, bool from_disk)
{
	struct agent_ep *old = agent_ep_find(a, ep->cid, ep->ifname);
	struct ep_slot *s;
	if (old) {
		if (a->hooks && a->hooks->ep_removed)
			a->hooks->ep_removed(a->hooks_user, a, old);
		s = slot_of(old);
		memset(s, 0, sizeof(*s));
	} else {
		if (a->n_eps == a->cap_eps) {
			unsigned cap = a->cap_eps ? a->cap_eps * 2 : 16;
			struct ep_slot **nv = realloc(a->eps, cap * sizeof(*nv));
			if (!nv)
				return NULL;
			a->eps = nv;
			a->cap_eps = cap;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		a->eps[a->n_eps++] = s;
	}
	s->ep = *ep;
	s->ep.ifindex = 0;
	if (a->hooks && a->hooks->ep_added)
		a->hooks->ep_added(a->hooks_user, a, &s->ep, from_disk);
	return &s->ep;
}

static void ep_remove(struct agent *a, struct agent_ep *ep)
{
	for (unsigned i = 0; i < a->n_eps; i++) {
		if (&a->eps[i]->ep != ep)
			continue;
		if (a->hooks && a->hooks->ep_removed)
			a->hooks->ep_removed(a->hooks_user, a, ep);
		if (!ep->adopted)
			ep_unlink(a, ep);
		free(a->eps[i]);
		a->eps[i] = a->eps[--a->n_eps];
		return;
	}
}

int agent_ep_set_target(struct agent *a, struct agent_ep *ep, bool target, struct err *e)
{
	if (ep->target == target)
		return 0;
	ep->target = target;
	agent_reconcile_soon(a);
	return ep->adopted ? 0 : ep_save(a, ep, e);
}

/* Load every endpoint file of endpoints_dir. */
static void eps_load(struct agent *a)
{
	DIR *d = opendir(a->conf.agent.endpoints_dir);
	if (!d) {
		if (errno != ENOENT)
			log_warn(a->log, "agent: %s: opendir", a->conf.agent.endpoints_dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		char path[4096], line[AGENT_PROTO_LINE_MAX + 1];
		snprintf(path, sizeof(path), "%s/%s", a->conf.agent.endpoints_dir, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_warn(a->log, "agent: %s: open", path);
			continue;
		}
		ssize_t n = read(fd, line, sizeof(line));
		close(fd);
		struct agent_req r;
		struct err e = { 0 };
		if (n < 0 || agent_req_parse_stored(line, (size_t)(n < 0 ? 0 : n), &r, &e) < 0 ||
		    r.op != AGENT_OP_ADD) {
			log_warnx(a->log, "agent: %s: unusable endpoint file, ignored: %s", path,
				  n < 0 ? "read error" : e.msg[0] ? e.msg : "not an add");
			continue;
		}
		if ((r.node[0] && strcmp(r.node, a->node) != 0) ||
		    (r.datastore[0] && strcmp(r.datastore, a->ident) != 0))
			log_warnx(a->log, "agent: %s: registered for node \"%s\" (datastore %s); "
					  "this agent serves node \"%s\" with datastore %s: kept, "
					  "its veth is checked like any other", path, r.node,
				  r.datastore, a->node, a->ident);
		if (!ep_insert(a, &r.ep, true))
			log_errorx(a->log, "agent: %s: out of memory", path);
	}
	closedir(d);
	log_info(a->log, "agent: %u endpoints loaded from %s", a->n_eps,
		 a->conf.agent.endpoints_dir);
}

/* Link index -> name, for adoption. */
struct linkmap {
	int idx[4096];			/* ifindex */
	char name[4096][LINK_NAMESZ];	/* name */
	unsigned n;			/* entries */
};

static int linkmap_cb(const struct link_info *li, void *arg, struct err *e)
{
	(void)e;
	struct linkmap *m = arg;
	if (m->n < 4096) {
		m->idx[m->n] = li->index;
		snprintf(m->name[m->n], LINK_NAMESZ, "%s", li->name);
		m->n++;
	}
	return 0;
}

/* Adopt kvnet /32 (/128) routes at the normal metric on a kv* veth no endpoint names:
 * they become endpoints (adopted), so a reconcile keeps them. At start these are pods
 * set up while no agent ran; later, pods whose CNI ADD could not register (an agent
 * restart in between, a plugin configured with another agent_socket): a live kv* veth
 * with a route is a pod, and deleting its route would cut it off. */
static void eps_adopt_routes(struct agent *a, bool warn)
{
	struct rt_route *cur = NULL;
	unsigned n = 0;
	struct err e = { 0 };
	if (agent_routes_dump(a->nl, (uint8_t)a->conf.network.route_protocol, &cur, &n, &e) < 0) {
		log_err(a->log, LOG_LVL_WARN, &e);
		return;
	}
	struct linkmap *m = calloc(1, sizeof(*m));
	if (!m || link_dump(a->nl, linkmap_cb, m, &e) < 0) {
		if (m)
			log_err(a->log, LOG_LVL_WARN, &e);
		free(m);
		free(cur);
		return;
	}
	unsigned adopted = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct rt_route *r = &cur[i];
		unsigned full = r->dst.family == AF_INET6 ? 128 : 32;
		if (!r->oif || r->gw.family || r->dst_len != full ||
		    r->metric != a->conf.network.route_metric || agent_ep_find_ip(a, &r->dst))
			continue;
		const char *name = NULL;
		for (unsigned k = 0; k < m->n; k++)
			if (m->idx[k] == r->oif)
				name = m->name[k];
		if (!name || strncmp(name, "kv", 2) != 0)
			continue;
		struct agent_ep ep;
		memset(&ep, 0, sizeof(ep));
		snprintf(ep.cid, sizeof(ep.cid), "adopted-%s", name);
		snprintf(ep.ifname, sizeof(ep.ifname), "-");
		struct agent_ep *have = agent_ep_find(a, ep.cid, ep.ifname);
		if (have) {
			if (have->n_ip < AGENT_EP_IPS_MAX) {
				have->ip[have->n_ip++] = r->dst;
				adopted++;
			}
			continue;
		}
		snprintf(ep.veth, sizeof(ep.veth), "%s", name);
		ep.adopted = true;
		ep.ip[0] = r->dst;
		ep.n_ip = 1;
		if (ep_insert(a, &ep, true))
			adopted++;
	}
	if (adopted)
		log_msg(a->log, warn ? LOG_LVL_WARN : LOG_LVL_INFO,
			"agent: adopted %u unregistered pod addresses from existing routes%s", adopted,
			warn ? " (their CNI ADD did not reach this agent: check agent_socket)" : "");
	free(m);
	free(cur);
}

/* ---- the world: informer stores -> desired.h input ----------------------------------- */

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

/* Parse an object's JSON into d (tokens malloc'd into *tok). */
static int obj_parse(const struct kube_obj *o, struct json_doc *d, struct json_tok **tok)
{
	*tok = NULL;
	int rc = json_parse(d, o->json, o->len, NULL, 0, 0, NULL);
	if (rc != 0 && rc != -ENOSPC)
		return rc;
	*tok = calloc(d->n ? d->n : 1, sizeof(**tok));
	if (!*tok)
		return -ENOMEM;
	rc = json_parse(d, o->json, o->len, *tok, d->n, 0, NULL);
	if (rc < 0) {
		free(*tok);
		*tok = NULL;
	}
	return rc;
}

static void node_cb(void *user, const struct kube_obj *o)
{
	struct world_mem *m = user;
	struct json_doc d;
	struct json_tok *tok;
	if (obj_parse(o, &d, &tok) < 0)
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

/* The i-th address of block c. */
static struct ip_addr nth_addr(const struct ipam_cidr *c, unsigned i)
{
	struct ip_addr a = c->a;
	int last = a.family == AF_INET6 ? 15 : 3;
	unsigned carry = i;
	for (int k = last; k >= 0 && carry; k--) {
		unsigned s = a.b[k] + (carry & 0xff);
		a.b[k] = (uint8_t)s;
		carry = (carry >> 8) + (s >> 8);
	}
	return a;
}

static void block_cb(void *user, const struct kube_obj *o)
{
	struct world_mem *m = user;
	struct json_doc d;
	struct json_tok *tok;
	if (obj_parse(o, &d, &tok) < 0)
		return;
	int spec = json_get(&d, 0, "spec");
	size_t sl = 0;
	const char *raw = spec >= 0 ? json_raw(&d, spec, &sl) : NULL;
	struct ipam_state st;
	ipam_state_init(&st);
	struct err e = { 0 };
	if (!raw || ipam_state_load(&st, IPAM_BLOCK, o->name, o->rv ? o->rv : "", raw, sl, &e) < 0) {
		log_msg(m->a->log, LOG_LVL_DEBUG, "agent: ipamblock %s: ignored: %s", o->name,
			raw ? e.msg : "no spec");
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
			ow->ip = nth_addr(&bl->cidr, i);
			bool active = at->active.uid[0] != 0;
			ow->node = wm_str(m, active ? at->active.node : at->node);
			ow->uid = wm_str(m, active ? at->active.uid : "");
		}
	}
out:
	ipam_state_free(&st);
	free(tok);
}

/* ---- reconcile ---------------------------------------------------------------------- */

static void resolve_ifindex(struct agent *a)
{
	for (unsigned i = 0; i < a->n_eps;) {
		struct agent_ep *ep = &a->eps[i]->ep;
		int idx = 0;
		if (link_index(a->nl, ep->veth, &idx, NULL) < 0 || idx <= 0) {
			/* the veth is gone: so is the pod */
			log_info(a->log, "agent: endpoint %s %s (%s/%s): veth %s gone, forgotten",
				 ep->cid, ep->ifname, ep->ns[0] ? ep->ns : "-",
				 ep->pod[0] ? ep->pod : "-", ep->veth);
			ep_remove(a, ep);
			continue;
		}
		ep->ifindex = idx;
		i++;
	}
}

int agent_reconcile_now(struct agent *a, struct err *e)
{
	if (a->kube_mode && !a->synced_all)
		return err_setx(e, EAGAIN, "agent: reconcile: informers not synced yet");
	eps_adopt_routes(a, true);
	resolve_ifindex(a);
	struct world_mem m;
	memset(&m, 0, sizeof(m));
	m.a = a;
	if (a->kube_mode) {
		if (a->inf[AGENT_K_NODE].inf)
			kube_informer_each(a->inf[AGENT_K_NODE].inf, node_cb, &m);
		if (a->inf[AGENT_K_BLOCK].inf)
			kube_informer_each(a->inf[AGENT_K_BLOCK].inf, block_cb, &m);
	}
	const struct agent_ep **eps = calloc(a->n_eps ? a->n_eps : 1, sizeof(*eps));
	if (!eps || m.oom) {
		free(eps);
		wm_free(&m);
		return err_setx(e, ENOMEM, "agent: reconcile: out of memory");
	}
	for (unsigned i = 0; i < a->n_eps; i++)
		eps[i] = &a->eps[i]->ep;
	struct agent_world w = {
		.self = a->node,
		.direct = a->conf.network.cross_node == CONF_CROSS_DIRECT,
		.metric = a->conf.network.route_metric,
		.protocol = (uint8_t)a->conf.network.route_protocol,
		.nodes = m.nodes, .n_nodes = m.n_nodes,
		.blocks = m.blocks, .n_blocks = m.n_blocks,
		.owners = m.owners, .n_owners = m.n_owners,
		.eps = eps, .n_eps = a->n_eps,
		.ovr = a->ovr, .n_ovr = a->n_ovr,
	};
	struct rt_route *want = NULL;
	unsigned n = 0;
	int rc = agent_desired(&w, &want, &n, e);
	free(eps);
	wm_free(&m);
	if (rc < 0)
		return rc;
	struct agent_rec_stats st;
	rc = agent_reconcile(a->nl, w.protocol, want, n, &st, e);
	free(want);
	agent_metric_add(a->m_changes, "added", st.added);
	agent_metric_add(a->m_changes, "fixed", st.fixed);
	agent_metric_add(a->m_changes, "removed", st.removed);
	agent_metric_add(a->m_changes, "failed", st.failed);
	agent_metric_add(a->m_recs, rc == 0 ? "ok" : "failed", 1);
	agent_metric_set(a->m_routes, NULL, st.adopted + st.added + st.fixed);
	if (st.added || st.fixed || st.removed || st.failed)
		log_info(a->log,
			 "agent: reconcile: %u routes: %u in place, %u added, %u fixed, %u stale "
			 "removed, %u failed",
			 n, st.adopted, st.added, st.fixed, st.removed, st.failed);
	else
		log_debug(a->log, "agent: reconcile: %u routes in place", n);
	if (rc == 0) {
		if (!a->reconciled)
			log_info(a->log, "agent: routes adopted (%u in place, %u added, %u fixed, "
					 "%u stale removed): ready", st.adopted, st.added, st.fixed,
				 st.removed);
		a->reconciled = true;
		for (unsigned i = 0; i < a->n_eps; i++)
			a->eps[i]->routes_ok = true;
	}
	agent_metric_set(a->m_ready, NULL, agent_ready(a) ? 1 : 0);
	if (a->hooks && a->hooks->reconciled)
		a->hooks->reconciled(a->hooks_user, a, rc == 0);
	answer_waiters(a);
	return rc;
}

static void soon_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct agent *a = user;
	struct err e = { 0 };
	if (agent_reconcile_now(a, &e) < 0 && e.code != EAGAIN)
		log_err(a->log, LOG_LVL_WARN, &e);
}

void agent_reconcile_soon(struct agent *a)
{
	if (a->soon && !ev_timer_armed(a->soon))
		ev_timer_arm(a->soon, 0, 0);
}

/* ---- overrides ---------------------------------------------------------------------- */

const struct agent_override *agent_override_get(const struct agent *a,
						const struct ip_addr *ip)
{
	for (unsigned i = 0; i < a->n_ovr; i++)
		if (ip_eq(&a->ovr[i].ip, ip))
			return &a->ovr[i];
	return NULL;
}

int agent_override_set(struct agent *a, const struct agent_override *o, struct err *e)
{
	if (o->ip.family != AF_INET && o->ip.family != AF_INET6)
		return err_setx(e, EINVAL, "agent: override: no address");
	struct agent_override *have = (struct agent_override *)agent_override_get(a, &o->ip);
	if (!have) {
		if (a->n_ovr == a->cap_ovr) {
			unsigned cap = a->cap_ovr ? a->cap_ovr * 2 : 8;
			struct agent_override *nv = realloc(a->ovr, cap * sizeof(*nv));
			if (!nv)
				return err_setx(e, ENOMEM, "agent: override: out of memory");
			a->ovr = nv;
			a->cap_ovr = cap;
		}
		have = &a->ovr[a->n_ovr++];
	}
	*have = *o;
	agent_reconcile_soon(a);
	return 0;
}

int agent_override_apply(struct agent *a, const struct agent_override *o, struct err *e)
{
	int rc = agent_override_set(a, o, e);
	if (rc < 0)
		return rc;
	struct agent_world w = {
		.self = a->node,
		.direct = true,
		.metric = a->conf.network.route_metric,
		.protocol = (uint8_t)a->conf.network.route_protocol,
		.ovr = o, .n_ovr = 1,
	};
	struct world_mem m;
	memset(&m, 0, sizeof(m));
	m.a = a;
	if (o->kind == AGENT_OVR_VIA && a->inf[AGENT_K_NODE].inf) {
		kube_informer_each(a->inf[AGENT_K_NODE].inf, node_cb, &m);
		w.nodes = m.nodes;
		w.n_nodes = m.n_nodes;
	}
	struct rt_route *want = NULL;
	unsigned n = 0;
	rc = agent_desired(&w, &want, &n, e);
	wm_free(&m);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = rt_replace(a->nl, &want[i], e);
	if (rc == 0 && n == 0 && o->kind != AGENT_OVR_NONE)
		rc = err_setx(e, EHOSTUNREACH, "agent: override: no route (unknown node or "
					      "interface)");
	free(want);
	return rc;
}

void agent_override_clear(struct agent *a, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < a->n_ovr; i++) {
		if (!ip_eq(&a->ovr[i].ip, ip))
			continue;
		a->ovr[i] = a->ovr[--a->n_ovr];
		agent_reconcile_soon(a);
		return;
	}
}

/* ---- informers ---------------------------------------------------------------------- */

static bool routes_depend(enum agent_kind k)
{
	switch (k) {
	case AGENT_K_BLOCK:
	case AGENT_K_NODE:
		return true;
	case AGENT_K_POD:
	case AGENT_K_VMI:
	case AGENT_K_VMIM:
	case AGENT_K_HANDLE:
	case AGENT_K_COUNT:
		return false;
	}
	return false;
}

static void inf_event(struct inf_ctx *c, const struct kube_obj *old, const struct kube_obj *obj)
{
	struct agent *a = c->a;
	if (a->hooks && a->hooks->object)
		a->hooks->object(a->hooks_user, a, c->kind, old, obj);
	if (routes_depend(c->kind) && a->synced_all)
		agent_reconcile_soon(a);
}

static void inf_add(void *user, const struct kube_obj *obj)
{
	inf_event(user, NULL, obj);
}

static void inf_update(void *user, const struct kube_obj *old, const struct kube_obj *obj)
{
	inf_event(user, old, obj);
}

static void inf_del(void *user, const struct kube_obj *obj)
{
	inf_event(user, obj, NULL);
}

static void inf_synced(void *user)
{
	struct inf_ctx *c = user;
	struct agent *a = c->a;
	if (!c->synced)
		log_info(a->log, "agent: informer %s synced (%zu objects)", kind_names[c->kind],
			 kube_informer_count(c->inf));
	c->synced = true;
	bool all = true;
	for (int k = 0; k < AGENT_K_COUNT; k++)
		all &= a->inf[k].synced;
	if (all && !a->synced_all) {
		a->synced_all = true;
		log_info(a->log, "agent: all informers synced");
	}
	if (a->synced_all)
		agent_reconcile_soon(a);
}

static void inf_error(void *user, const struct err *e)
{
	struct inf_ctx *c = user;
	struct agent *a = c->a;
	log_msg(a->log, LOG_LVL_WARN, "agent: informer %s: %s (retrying)", kind_names[c->kind],
		e->msg);
	/* A resource the API server does not serve (404: KubeVirt or kvnet's CRDs not
	 * installed) has no objects: count it as synced, empty, so the node still gets
	 * its routes; the informer keeps retrying and fills the store once it is served. */
	bool optional = c->kind != AGENT_K_POD && c->kind != AGENT_K_NODE;
	if (!c->synced && optional && e->code == ENOENT) {
		log_warnx(a->log, "agent: informer %s: the API server does not serve it: "
				  "treated as empty until it does", kind_names[c->kind]);
		inf_synced(c);
	}
}

static const struct kube_informer_ops inf_ops = {
	.add = inf_add,
	.update = inf_update,
	.del = inf_del,
	.synced = inf_synced,
	.error = inf_error,
};

static int informers_start(struct agent *a, struct err *e)
{
	struct kcfg_opts ko = {
		.kubeconfig = a->conf.kubernetes.kubeconfig,
		.context = a->conf.kubernetes.context,
		.envp = environ,
	};
	int rc = kcfg_load(&a->kc, &ko, e);
	if (rc < 0)
		return err_prefix(e, "agent: kubernetes"), rc;
	conf_datastore_ident(&a->conf, a->kc->server, a->ident, sizeof(a->ident));
	if (a->kc->insecure)
		log_warnx(a->log, "agent: %s: insecure-skip-tls-verify is set: the API server's "
				  "certificate is NOT verified", a->kc->source);
	a->kube = kube_client_from_kcfg(a->kc, AGENT_KUBE_TIMEOUT_MS, e);
	if (!a->kube)
		return err_prefix(e, "agent: kubernetes"), -EINVAL;
	static const struct kube_res *const res[AGENT_K_COUNT] = {
		&kube_res_pods, &kube_res_vmis, &kube_res_vmims,
		&kube_res_ipamblocks, &kube_res_ipamhandles, &kube_res_nodes,
	};
	char fs[IPAM_NAME_MAX + 32];
	snprintf(fs, sizeof(fs), "spec.nodeName=%s", a->node);
	for (int k = 0; k < AGENT_K_COUNT; k++) {
		struct kube_informer_opts o = { 0 };
		if (k == AGENT_K_POD)
			o.field_selector = fs;
		a->inf[k].a = a;
		a->inf[k].kind = (enum agent_kind)k;
		a->inf[k].inf = kube_informer_new(a->loop, a->kube, res[k], &o, &inf_ops,
						  &a->inf[k], e);
		if (!a->inf[k].inf)
			return err_prefix(e, "agent: informer %s", kind_names[k]), -EINVAL;
	}
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if ((rc = kube_informer_start(a->inf[k].inf, e)) < 0)
			return err_prefix(e, "agent: informer %s", kind_names[k]), rc;
	log_info(a->log, "agent: watching the API server (%s) for node %s", a->kc->source,
		 a->node);
	return 0;
}

/* ---- connections -------------------------------------------------------------------- */

static void conn_destroy(void *user)
{
	(void)user;
}

/* Close a connection: unlink it, stop its watcher, close its fd. Its memory is freed
 * only by the reaper (a zero timer, after the current dispatch), so a caller up the
 * stack that still holds c may look at c->dead but never at freed memory. Idempotent. */
static void conn_close(struct aconn *c)
{
	if (c->dead)
		return;
	struct agent *a = c->a;
	for (struct aconn **p = &a->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	a->n_conns--;
	if (c->io)
		ev_io_del(c->io);
	c->io = NULL;
	close(c->fd);
	c->fd = -1;
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	c->waiting = false;
	c->dead = true;
	c->next = a->dead_conns;
	a->dead_conns = c;
	if (a->reap && !ev_timer_armed(a->reap))
		ev_timer_arm(a->reap, 0, 0);
}

static void conns_reap(struct agent *a)
{
	while (a->dead_conns) {
		struct aconn *c = a->dead_conns;
		a->dead_conns = c->next;
		free(c);
	}
}

static void reap_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	conns_reap(user);
}

static void cni_lines(struct aconn *c);

/* The events to watch: input only while nothing much is owed (a peer that sends
 * without reading is not read until it reads), output while something is pending. */
static void conn_watch(struct aconn *c)
{
	if (c->dead)
		return;
	size_t pend = c->wlen - c->woff;
	uint32_t ev = 0;
	if (!c->close_after && pend < AGENT_CONN_WMAX)
		ev |= EPOLLIN;
	if (pend)
		ev |= EPOLLOUT;
	ev_io_modify(c->io, ev, NULL);
}

/* Flush what can be written; close when done and asked to. False when c is closed. */
static bool conn_flush(struct aconn *c)
{
	if (c->dead)
		return false;
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(c);
			return true;
		}
		if (n <= 0) {
			conn_close(c); /* the peer went away mid-answer */
			return false;
		}
		c->woff += (size_t)n;
	}
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	if (c->close_after) {
		conn_close(c);
		return false;
	}
	conn_watch(c);
	return true;
}

/* Queue bytes (copied) and try to send them. False when c is (now) closed. */
static bool conn_send(struct aconn *c, const char *buf, size_t len)
{
	if (c->dead)
		return false;
	if (c->woff) { /* drop what was written already */
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	char *nb = realloc(c->wbuf, c->wlen + len);
	if (!nb) {
		conn_close(c);
		return false;
	}
	memcpy(nb + c->wlen, buf, len);
	c->wbuf = nb;
	c->wlen += len;
	return conn_flush(c);
}

/* Send one answer line. False when c is (now) closed. */
static bool send_resp(struct aconn *c, enum agent_status st, const char *error)
{
	struct agent_resp r;
	memset(&r, 0, sizeof(r));
	r.status = st;
	if (error)
		snprintf(r.error, sizeof(r.error), "%s", error);
	char line[sizeof(r.error) + 64];
	long n = agent_resp_format(&r, line, sizeof(line));
	if (n < 0) {
		r.status = AGENT_ST_ERROR;
		snprintf(r.error, sizeof(r.error), "answer does not fit");
		n = agent_resp_format(&r, line, sizeof(line));
	}
	if (n <= 0)
		return !c->dead;
	return conn_send(c, line, (size_t)n);
}

/* Answer every connection waiting for an endpoint that is now programmed. */
static void answer_waiters(struct agent *a)
{
	for (unsigned i = 0; i < a->n_eps; i++)
		a->eps[i]->programmed = ep_programmed(a->eps[i]);
	struct aconn *next;
	for (struct aconn *c = a->conns; c; c = next) {
		next = c->next;
		if (!c->waiting)
			continue;
		struct agent_ep *ep = agent_ep_find(a, c->wcid, c->wifname);
		if (!ep) {
			c->waiting = false;
			send_resp(c, AGENT_ST_ERROR, "endpoint unregistered while waiting");
			continue;
		}
		if (!slot_of(ep)->programmed)
			continue;
		c->waiting = false;
		log_debug(a->log, "agent: endpoint %s %s programmed", ep->cid, ep->ifname);
		send_resp(c, AGENT_ST_PROGRAMMED, NULL);
	}
}

static void cni_request(struct aconn *c, const char *line, size_t len)
{
	struct agent *a = c->a;
	struct agent_req r;
	struct err e = { 0 };
	/* Transitional: an add without the registration identity (a plugin older than
	 * this agent; cmd/cni.c until it fills node and datastore) is accepted with a
	 * warning; a mismatch is always refused. AGENT_IDENTITY_REQUIRED makes it strict. */
	int prc = AGENT_IDENTITY_REQUIRED ? agent_req_parse(line, len, &r, &e)
					  : agent_req_parse_stored(line, len, &r, &e);
	if (prc < 0) {
		agent_metric_add(a->m_cni, "invalid", 1);
		log_warnx(a->log, "agent: socket: %s", e.msg);
		send_resp(c, AGENT_ST_ERROR, e.msg);
		return;
	}
	switch (r.op) {
	case AGENT_OP_PING:
		agent_metric_add(a->m_cni, "ping", 1);
		send_resp(c, AGENT_ST_PONG, NULL);
		return;
	case AGENT_OP_DEL: {
		agent_metric_add(a->m_cni, "del", 1);
		struct agent_ep *ep = agent_ep_find(a, r.ep.cid, r.ep.ifname);
		if (ep) {
			log_info(a->log, "agent: DEL endpoint %s %s (%s/%s)", ep->cid, ep->ifname,
				 ep->ns[0] ? ep->ns : "-", ep->pod[0] ? ep->pod : "-");
			ep_remove(a, ep);
			agent_reconcile_soon(a);
		}
		send_resp(c, AGENT_ST_DELETED, NULL);
		answer_waiters(a);
		return;
	}
	case AGENT_OP_ADD:
		break;
	}
	agent_metric_add(a->m_cni, "add", 1);
	if (!r.node[0] || !r.datastore[0]) {
		agent_metric_add(a->m_cni, "unidentified", 1);
		log_warnx(a->log, "agent: ADD endpoint %s %s: no registration identity (node, "
				  "datastore): a plugin older than this agent; accepted",
			  r.ep.cid, r.ep.ifname);
	}
	if ((r.node[0] && strcmp(r.node, a->node) != 0) ||
	    (r.datastore[0] && strcmp(r.datastore, a->ident) != 0)) {
		char why[sizeof(r.node) + sizeof(r.datastore) + sizeof(a->node) +
			 sizeof(a->ident) + 128];
		snprintf(why, sizeof(why), "registration for node \"%s\" (datastore %s) refused: "
			 "this agent serves node \"%s\" with datastore %s", r.node, r.datastore,
			 a->node, a->ident);
		agent_metric_add(a->m_cni, "refused", 1);
		log_warnx(a->log, "agent: ADD endpoint %s %s: %s", r.ep.cid, r.ep.ifname, why);
		send_resp(c, AGENT_ST_ERROR, why);
		return;
	}
	int idx = 0;
	if (link_index(a->nl, r.ep.veth, &idx, NULL) < 0) {
		char why[128];
		snprintf(why, sizeof(why), "veth %s does not exist on this node", r.ep.veth);
		log_warnx(a->log, "agent: ADD endpoint %s %s: %s", r.ep.cid, r.ep.ifname, why);
		send_resp(c, AGENT_ST_ERROR, why);
		return;
	}
	if (ep_save(a, &r.ep, &e) < 0) {
		log_err(a->log, LOG_LVL_ERROR, &e);
		send_resp(c, AGENT_ST_ERROR, e.msg);
		return;
	}
	struct agent_ep *ep = ep_insert(a, &r.ep, false);
	if (!ep) {
		send_resp(c, AGENT_ST_ERROR, "out of memory");
		return;
	}
	char ips[128] = "";
	for (unsigned i = 0; i < ep->n_ip; i++) {
		char s[IP_STRLEN];
		size_t l = strlen(ips);
		snprintf(ips + l, sizeof(ips) - l, "%s%s", i ? "," : "", ip_fmt(&ep->ip[i], s));
	}
	log_info(a->log, "agent: ADD endpoint %s %s (%s/%s) veth %s ips %s%s", ep->cid,
		 ep->ifname, ep->ns[0] ? ep->ns : "-", ep->pod[0] ? ep->pod : "-", ep->veth, ips,
		 ep->target ? " (migration target, dark)" : "");
	if (send_resp(c, AGENT_ST_REGISTERED, NULL) && r.wait) {
		c->waiting = true;
		snprintf(c->wcid, sizeof(c->wcid), "%s", r.ep.cid);
		snprintf(c->wifname, sizeof(c->wifname), "%s", r.ep.ifname);
	}
	agent_reconcile_soon(a);
}

static void http_request(struct aconn *c)
{
	struct agent *a = c->a;
	struct agent_http_req req;
	struct err e = { 0 };
	long n = agent_http_parse(c->rbuf, c->rlen, &req, &e);
	if (n == 0 && c->rlen < sizeof(c->rbuf))
		return; /* more to come */
	int status = 200;
	const char *ctype = "text/plain; charset=utf-8";
	char *body = NULL;
	size_t blen = 0;
	char small[512];
	bool head = false;
	if (n <= 0) {
		status = 400;
		snprintf(small, sizeof(small), "%s\n", n == 0 ? "request head too large" : e.msg);
	} else if (strcmp(req.method, "GET") != 0 && !(head = strcmp(req.method, "HEAD") == 0)) {
		status = 405;
		snprintf(small, sizeof(small), "method not allowed\n");
	} else if (strcmp(req.path, "/healthz") == 0) {
		snprintf(small, sizeof(small), "ok\n");
	} else if (strcmp(req.path, "/readyz") == 0) {
		if (agent_ready(a)) {
			snprintf(small, sizeof(small), "ready\n");
		} else {
			status = 503;
			size_t l = (size_t)snprintf(small, sizeof(small), "not ready:");
			for (int k = 0; a->kube_mode && k < AGENT_K_COUNT; k++)
				if (!a->inf[k].synced && l < sizeof(small))
					l += (size_t)snprintf(small + l, sizeof(small) - l,
							      " informer %s not synced;",
							      kind_names[k]);
			if (!a->reconciled && l < sizeof(small))
				snprintf(small + l, sizeof(small) - l, " routes not adopted yet");
			l = strlen(small);
			if (l + 1 < sizeof(small))
				memcpy(small + l, "\n", 2);
		}
	} else if (strcmp(req.path, "/metrics") == 0) {
		agent_metric_set(a->m_eps, NULL, a->n_eps);
		agent_metric_set(a->m_ready, NULL, agent_ready(a) ? 1 : 0);
		uint64_t rec = 0;
		for (int k = 0; a->kube_mode && k < AGENT_K_COUNT; k++) {
			struct kube_informer_stats s;
			kube_informer_stats(a->inf[k].inf, &s);
			rec += s.reconnects;
			agent_metric_set(a->m_objects, kind_names[k],
					 (double)kube_informer_count(a->inf[k].inf));
		}
		agent_metric_set(a->m_reconn, NULL, (double)rec);
		body = agent_metrics_format(a->metrics, &blen);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (!body) {
			status = 503;
			snprintf(small, sizeof(small), "out of memory\n");
		}
	} else {
		status = 404;
		snprintf(small, sizeof(small), "not found\n");
	}
	size_t rl = 0;
	char *resp = agent_http_response(status, ctype, body ? body : small,
					 body ? blen : strlen(small), head, &rl);
	free(body);
	c->close_after = true;
	if (!resp) {
		conn_close(c);
		return;
	}
	free(c->wbuf);
	c->wbuf = resp;
	c->wlen = rl;
	c->woff = 0;
	conn_flush(c);
}

/* Serve every complete line in rbuf, as long as c lives and is not owed too much. */
static void cni_lines(struct aconn *c)
{
	while (!c->dead && !c->close_after && c->wlen - c->woff < AGENT_CONN_WMAX) {
		char *nl = memchr(c->rbuf, '\n', c->rlen);
		if (!nl) {
			if (c->rlen >= AGENT_PROTO_LINE_MAX) {
				/* answer, then close once the answer is out: the rest of
				 * that line cannot be told from a next request */
				agent_metric_add(c->a->m_cni, "invalid", 1);
				c->rlen = 0;
				if (send_resp(c, AGENT_ST_ERROR, "request line too long")) {
					c->close_after = true;
					conn_flush(c);
				}
			}
			return;
		}
		size_t l = (size_t)(nl - c->rbuf) + 1;
		char line[AGENT_PROTO_LINE_MAX + 1];
		size_t cl = l < sizeof(line) ? l : sizeof(line) - 1;
		memcpy(line, c->rbuf, cl);
		memmove(c->rbuf, c->rbuf + l, c->rlen - l);
		c->rlen -= l;
		cni_request(c, line, cl);
	}
}

static void conn_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *user)
{
	(void)loop;
	(void)io;
	struct aconn *c = user;
	if (c->dead)
		return;
	if (revents & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (revents & EPOLLOUT) {
		bool had = c->wlen > c->woff;
		if (!conn_flush(c))
			return;
		if (had && c->wlen == 0 && !c->http)
			cni_lines(c); /* input held back while the answers were pending */
		if (c->dead || !(revents & EPOLLIN))
			return;
	}
	if (c->close_after) { /* only the answer is left to write */
		if (revents & (EPOLLHUP | EPOLLRDHUP))
			conn_close(c);
		return;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP)))
		return;
	if (c->rlen == sizeof(c->rbuf))
		return; /* full until the pending answers are read */
	ssize_t n = recv(fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->rlen += (size_t)n;
	if (c->http)
		http_request(c);
	else
		cni_lines(c);
}

static void accept_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		      void *user)
{
	(void)io;
	(void)revents;
	struct agent *a = user;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (a->n_conns >= AGENT_CONNS_MAX) {
		log_warnx(a->log, "agent: more than %d connections: refused", AGENT_CONNS_MAX);
		close(cfd);
		return;
	}
	struct aconn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->a = a;
	c->fd = cfd;
	c->http = fd == a->http_fd;
	struct err e = { 0 };
	if (ev_io_add(loop, cfd, EPOLLIN, conn_io, c, conn_destroy, &c->io, &e) < 0) {
		log_err(a->log, LOG_LVL_WARN, &e);
		close(cfd);
		free(c);
		return;
	}
	c->next = a->conns;
	a->conns = c;
	a->n_conns++;
}

static int http_listen(struct agent *a, struct err *e)
{
	const struct conf_hostport *hp = &a->conf.agent.listen;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	if (hp->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, hp->addr, 16);
		s6->sin6_port = htons(hp->port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, hp->addr, 4);
		s4->sin_port = htons(hp->port);
		sl = sizeof(*s4);
	}
	char as[IP_STRLEN];
	struct ip_addr ip = { .family = (uint8_t)hp->family };
	memcpy(ip.b, hp->addr, 16);
	ip_fmt(&ip, as);
	int fd = socket(hp->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "agent: listen %s port %u: socket", as, hp->port);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent: listen %s port %u", as, hp->port);
	}
	a->http_fd = fd;
	int rc = ev_io_add(a->loop, fd, EPOLLIN, accept_io, a, NULL, &a->http_io, e);
	if (rc < 0)
		return rc;
	log_info(a->log, "agent: http on %s%s%s:%u (/healthz /readyz /metrics)",
		 hp->family == AF_INET6 ? "[" : "", as, hp->family == AF_INET6 ? "]" : "",
		 hp->port);
	return 0;
}

static int sock_listen(struct agent *a, struct err *e)
{
	const char *path = a->conf.agent.socket;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_setx(e, ENAMETOOLONG, "agent: socket %s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* parent directory (one level) */
	char dir[CONF_STR_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return err_set(e, errno, "agent: socket %s: mkdir %s", path, dir);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "agent: socket %s: socket", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int er = errno;
		if (er != EADDRINUSE) {
			close(fd);
			return err_set(e, er, "agent: socket %s: bind", path);
		}
		/* a socket file is there: another agent, or a stale one */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			close(fd);
			return err_setx(e, EADDRINUSE, "agent: socket %s: another agent is "
							"listening there", path);
		}
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			er = errno;
			close(fd);
			return err_set(e, er, "agent: socket %s: bind", path);
		}
	}
	a->sock_bound = true;
	chmod(path, 0660);
	if (listen(fd, 64) < 0) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent: socket %s: listen", path);
	}
	a->sock_fd = fd;
	int rc = ev_io_add(a->loop, fd, EPOLLIN, accept_io, a, NULL, &a->sock_io, e);
	if (rc < 0)
		return rc;
	log_info(a->log, "agent: CNI socket %s", path);
	return 0;
}

/* ---- life cycle --------------------------------------------------------------------- */

struct agent *agent_new(const struct conf *c, const char *node, struct log *log, struct err *e)
{
	struct agent *a = calloc(1, sizeof(*a));
	if (!a) {
		err_setx(e, ENOMEM, "agent: out of memory");
		return NULL;
	}
	a->conf = *c;
	snprintf(a->node, sizeof(a->node), "%s", node);
	a->log = log;
	a->http_fd = a->sock_fd = -1;
	a->kube_mode = c->datastore.type == CONF_DATASTORE_KUBERNETES;
	conf_datastore_ident(c, NULL, a->ident, sizeof(a->ident));
	a->loop = ev_loop_new(e);
	a->metrics = agent_metrics_new();
	if (!a->loop || !a->metrics)
		goto fail;
	struct agent_metrics *r = a->metrics;
	a->m_ready = agent_metric_new(r, "kvnet_agent_ready",
				      "1 once informers synced and routes were adopted.",
				      AGENT_M_GAUGE, NULL);
	a->m_eps = agent_metric_new(r, "kvnet_agent_endpoints", "Local endpoints known.",
				    AGENT_M_GAUGE, NULL);
	a->m_routes = agent_metric_new(r, "kvnet_agent_routes",
				       "Routes programmed (owned and in place) after the last "
				       "reconcile.", AGENT_M_GAUGE, NULL);
	a->m_changes = agent_metric_new(r, "kvnet_agent_route_changes_total",
					"Route operations by reconciles, by op "
					"(added, fixed, removed, failed).", AGENT_M_COUNTER, "op");
	a->m_recs = agent_metric_new(r, "kvnet_agent_reconciles_total",
				     "Reconciles, by result.", AGENT_M_COUNTER, "result");
	a->m_reconn = agent_metric_new(r, "kvnet_agent_api_reconnects_total",
				       "Informer retries after a failed list or watch.",
				       AGENT_M_COUNTER, NULL);
	a->m_objects = agent_metric_new(r, "kvnet_agent_informer_objects",
					"Objects in each informer's store.", AGENT_M_GAUGE, "kind");
	a->m_cni = agent_metric_new(r, "kvnet_agent_cni_requests_total",
				    "CNI socket requests, by op.", AGENT_M_COUNTER, "op");
	if (!a->m_ready || !a->m_eps || !a->m_routes || !a->m_changes || !a->m_recs ||
	    !a->m_reconn || !a->m_objects || !a->m_cni) {
		err_setx(e, ENOMEM, "agent: metrics: out of memory");
		goto fail;
	}
	for (const char *const *op = (const char *const[]){ "added", "fixed", "removed",
							    "failed", NULL }; *op; op++)
		agent_metric_add(a->m_changes, *op, 0);
	if (nl_open(&a->nl, NETLINK_ROUTE, e) < 0)
		goto fail;
	if (ev_timer_add(a->loop, 0, 0, soon_cb, a, NULL, &a->soon, e) < 0)
		goto fail;
	ev_timer_disarm(a->soon);
	if (ev_timer_add(a->loop, 0, 0, reap_cb, a, NULL, &a->reap, e) < 0)
		goto fail;
	ev_timer_disarm(a->reap);
	uint64_t p = (uint64_t)c->agent.resync_seconds * 1000;
	if (ev_timer_add(a->loop, p, p, soon_cb, a, NULL, &a->resync, e) < 0)
		goto fail;
	return a;
fail:
	agent_free(a);
	return NULL;
}

int agent_start(struct agent *a, struct err *e)
{
	int rc;
	if (mkdir(a->conf.agent.endpoints_dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "agent: endpoints_dir %s: mkdir",
			       a->conf.agent.endpoints_dir);
	if ((rc = http_listen(a, e)) < 0 || (rc = sock_listen(a, e)) < 0)
		return rc;
	eps_load(a);
	eps_adopt_routes(a, false);
	if (a->kube_mode) {
		if ((rc = informers_start(a, e)) < 0)
			return rc;
	} else {
		a->synced_all = true;
		for (int k = 0; k < AGENT_K_COUNT; k++)
			a->inf[k].synced = true;
	}
	agent_reconcile_soon(a);
	return 0;
}

int agent_reload(struct agent *a, const struct conf *c, struct err *e)
{
	(void)e;
	if (memcmp(&c->agent.listen, &a->conf.agent.listen, sizeof(c->agent.listen)) != 0 ||
	    strcmp(c->agent.socket, a->conf.agent.socket) != 0 ||
	    strcmp(c->agent.endpoints_dir, a->conf.agent.endpoints_dir) != 0 ||
	    c->datastore.type != a->conf.datastore.type ||
	    strcmp(c->kubernetes.kubeconfig, a->conf.kubernetes.kubeconfig) != 0 ||
	    c->network.route_protocol != a->conf.network.route_protocol)
		log_warnx(a->log, "agent: reload: listen, socket, endpoints_dir, datastore, "
				  "kubeconfig and route_protocol take effect at the next start only");
	struct conf keep = a->conf;
	a->conf = *c;
	a->conf.agent.listen = keep.agent.listen;
	memcpy(a->conf.agent.socket, keep.agent.socket, sizeof(keep.agent.socket));
	memcpy(a->conf.agent.endpoints_dir, keep.agent.endpoints_dir,
	       sizeof(keep.agent.endpoints_dir));
	a->conf.datastore = keep.datastore;
	a->conf.kubernetes = keep.kubernetes;
	a->conf.network.route_protocol = keep.network.route_protocol;
	uint64_t p = (uint64_t)c->agent.resync_seconds * 1000;
	ev_timer_arm(a->resync, p, p);
	agent_reconcile_soon(a);
	return 0;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	while (a->conns)
		conn_close(a->conns);
	conns_reap(a);
	if (a->reap)
		ev_timer_del(a->reap);
	if (a->http_io)
		ev_io_del(a->http_io);
	if (a->http_fd >= 0)
		close(a->http_fd);
	if (a->sock_io)
		ev_io_del(a->sock_io);
	if (a->sock_fd >= 0)
		close(a->sock_fd);
	if (a->sock_bound)
		unlink(a->conf.agent.socket);
	for (int k = 0; k < AGENT_K_COUNT; k++)
		if (a->inf[k].inf) {
			kube_informer_stop(a->inf[k].inf);
			kube_informer_free(a->inf[k].inf);
		}
	kube_client_free(a->kube);
	kcfg_free(a->kc);
	if (a->soon)
		ev_timer_del(a->soon);
	if (a->resync)
		ev_timer_del(a->resync);
	ev_loop_free(a->loop);
	if (a->nl)
		nl_close(a->nl);
	for (unsigned i = 0; i < a->n_eps; i++)
		free(a->eps[i]);
	free(a->eps);
	free(a->ovr);
	agent_metrics_free(a->metrics);
	free(a);
}
