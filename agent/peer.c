/* peer — the agent-to-agent path of the migration cut-over (see peer.h). */
#include "agent/peer.h"
#include "agent/blockobj.h"

#include "agent/agent.h"
#include "agent/metrics.h"
#include "agent/peermsg.h"
#include "conf/conf.h"
#include "ipam/ipam.h"
#include "kube/informer.h"
#include "kube/kubevirt.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SENDERS_MAX 4096	/* replay states kept (one per known node) */
#define REJECT_LOG_BURST 20	/* reject lines per REJECT_LOG_MS, then counted only */
#define REJECT_LOG_MS 10000

/* A node as its Node object names it. */
struct pnode {
	char name[PEERMSG_NODE_MAX + 1]; /* object name */
	struct ip_addr v4, v6;		 /* InternalIPs (family 0: none) */
};

/* The replay state of one sender. */
struct psender {
	char node[PEERMSG_NODE_MAX + 1]; /* sender node */
	struct peermsg_seen seen;	 /* its window */
};

/* One override this module set. */
struct phold {
	struct ip_addr ip;		      /* the address */
	char node[PEERMSG_NODE_MAX + 1];      /* routed via this node */
	char own_node[IPAM_NAME_MAX + 1];     /* the datastore's owner node when set ... */
	char own_uid[IPAM_UID_MAX + 1];	      /* ... and owner uid */
	uint64_t deadline_ms;		      /* ev_now_ms() after which it is dropped */
};

/* The datastore's owner of one allocated address, from the IPAMBlock objects (kept
 * current from the informer's events, so a message reads it without parsing). */
struct powner {
	struct ip_addr ip;		  /* the address */
	unsigned blk;			  /* index of its block in blk_names */
	char node[IPAM_NAME_MAX + 1];	  /* active owner's node, else the allocating node */
	char uid[IPAM_UID_MAX + 1];	  /* active owner's uid, else "" */
};

/* One socket of one family. */
struct psock {
	int fd;			/* -1 when closed */
	struct ev_io *io;	/* its watcher */
	struct ip_addr bound;	/* the address it is bound to */
};

struct agent_peer {
	struct agent *a;		  /* the agent (not owned) */
	bool on;			  /* port, key and datastore allow the path */
	uint8_t key[PEERMSG_KEY_MAX];	  /* the shared key */
	size_t klen;			  /* its length */
	uint64_t boot;			  /* boot id and start time (unix ns) */
	uint64_t seq;			  /* last sequence number sent */
	uint16_t port;			  /* [agent] peer_port at start (a reload does not
					   * change it: the key and sockets stay too) */
	struct psock s4, s6;		  /* sockets */
	struct pnode *nodes;		  /* Node objects' names and InternalIPs */
	unsigned n_nodes, cap_nodes;	  /* used / allocated */
	struct psender *senders;	  /* replay states */
	unsigned n_senders, cap_senders;  /* used / allocated */
	struct phold *holds;		  /* overrides set from messages */
	unsigned n_holds, cap_holds;	  /* used / allocated */
	struct ev_timer *tick;		  /* expiry of holds (armed while there are some) */
	struct powner *owners;		  /* allocated addresses and their owners */
	unsigned n_owners, cap_owners;	  /* used / allocated */
	char (*blk_names)[IPAM_NAME_MAX + 1]; /* IPAMBlock object names (indices stay) */
	unsigned n_blks, cap_blks;	  /* used / allocated */
	agent_peer_ct_fn on_ct;		  /* subscriber of CT messages (agent_peer_listen) */
	agent_peer_claim_fn on_claim;	  /* ... and of accepted claims */
	void *listen_user;		  /* their argument */
	struct log_limit rej_lim;	  /* reject lines: REJECT_LOG_BURST per REJECT_LOG_MS */
	struct agent_metric *m_sent, *m_recv, *m_rej, *m_held, *m_drop, *m_lat; /* metrics */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *fmt_ts(uint64_t ns, char *buf, size_t cap)
{
	snprintf(buf, cap, "%llu.%06llu", (unsigned long long)(ns / 1000000000u),
		 (unsigned long long)(ns % 1000000000u / 1000u));
	return buf;
}

static void ips_fmt(const struct ip_addr *ips, unsigned n, char *buf, size_t cap)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n && off < cap; i++) {
		char a[IP_STRLEN];
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
					ip_fmt(&ips[i], a));
	}
	if (!buf[0])
		snprintf(buf, cap, "-");
}

/* ---- nodes ------------------------------------------------------------------------- */

static struct pnode *node_find(struct agent_peer *p, const char *name)
{
	for (unsigned i = 0; i < p->n_nodes; i++)
		if (strcmp(p->nodes[i].name, name) == 0)
			return &p->nodes[i];
	return NULL;
}

static void node_put(struct agent_peer *p, const struct kube_obj *old,
		     const struct kube_obj *obj)
{
	const char *name = obj ? obj->name : old ? old->name : NULL;
	if (!name)
		return;
	struct pnode *n = node_find(p, name);
	if (!obj) {
		if (n)
			*n = p->nodes[--p->n_nodes];
		return;
	}
	struct json_doc d;
	struct json_tok *tok;
	if (kube_obj_parse(obj, &d, &tok) < 0)
		return;
	char mem[4096];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_node kn;
	struct pnode nv;
	memset(&nv, 0, sizeof(nv));
	snprintf(nv.name, sizeof(nv.name), "%s", name);
	if (kube_node_view(&d, 0, &kn, &ar, NULL) == 0) {
		for (unsigned i = 0; i < kn.n_addrs; i++) {
			struct ip_addr ip;
			if (!kn.addrs[i].type || strcmp(kn.addrs[i].type, "InternalIP") != 0 ||
			    !kn.addrs[i].address || !ip_parse(kn.addrs[i].address, &ip))
				continue;
			struct ip_addr *slot = ip.family == AF_INET6 ? &nv.v6 : &nv.v4;
			if (!slot->family)
				*slot = ip;
		}
	}
	free(tok);
	if (!n) {
		if (p->n_nodes == p->cap_nodes) {
			unsigned nc = p->cap_nodes ? 2 * p->cap_nodes : 8;
			struct pnode *nn = realloc(p->nodes, nc * sizeof(*nn));
			if (!nn)
				return;
			p->nodes = nn;
			p->cap_nodes = nc;
		}
		n = &p->nodes[p->n_nodes++];
	}
	*n = nv;
}

/* ---- sockets ------------------------------------------------------------------------ */

static void on_readable(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			void *user);

static void sock_close(struct psock *s)
{
	if (s->io)
		ev_io_del(s->io);
	s->io = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	memset(&s->bound, 0, sizeof(s->bound));
}

static socklen_t sockaddr_of(const struct ip_addr *ip, uint16_t port,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip->b, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, ip->b, 16);
	return sizeof(*s6);
}

/* Bind s to ip:port (again, when the node's address changed). */
static int sock_bind(struct agent_peer *p, struct psock *s, const struct ip_addr *ip,
		     struct err *e)
{
	if (s->fd >= 0 && ip_eq(&s->bound, ip))
		return 0;
	sock_close(s);
	if (!ip->family)
		return 0;
	uint16_t port = p->port;
	char a[IP_STRLEN];
	int fd = socket(ip->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "peer: socket");
	int one = 1, big = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (ip->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(ip, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		int rc = err_set(e, errno, "peer: bind %s port %u", ip_fmt(ip, a), port);
		close(fd);
		return rc;
	}
	int rc = ev_io_add(agent_loop(p->a), fd, EPOLLIN, on_readable, p, NULL, &s->io, e);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	s->fd = fd;
	s->bound = *ip;
	log_fields(agent_log(p->a), LOG_LVL_INFO, "peer listening", "addr=%s port=%u",
		   ip_fmt(ip, a), port);
	return 0;
}

/* Bind to this node's InternalIPs once its Node object says them. */
static void sockets_update(struct agent_peer *p)
{
	if (!p->on)
		return;
	const struct pnode *self = node_find(p, agent_node(p->a));
	struct ip_addr none;
	memset(&none, 0, sizeof(none));
	struct err e;
	err_clear(&e);
	if (sock_bind(p, &p->s4, self ? &self->v4 : &none, &e) < 0)
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
	err_clear(&e);
	if (sock_bind(p, &p->s6, self ? &self->v6 : &none, &e) < 0)
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
}

/* ---- sending ------------------------------------------------------------------------ */

/* Sign one CLAIM or RETRACT (type) of ips[0..n) for uid at event_ns and send it to every
 * other node's agent; logs "peer <what> sent". 0, -ENOTCONN (path off), -EINVAL (does
 * not encode) or the first sendto's -errno. */
static int send_addrs(struct agent *a, uint8_t type, const char *what,
		      const struct ip_addr *ips, unsigned n, const char *uid, uint64_t event_ns)
{
	struct agent_peer *p = agent_module(a, "peer");
	if (!p || !p->on)
		return -ENOTCONN;
	sockets_update(p);
	const struct pnode *self = node_find(p, agent_node(a));
	if (!self || (p->s4.fd < 0 && p->s6.fd < 0) || !peermsg_node_name_ok(agent_node(a)))
		return -ENOTCONN;
	struct peermsg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.boot = p->boot;
	m.seq = ++p->seq;
	m.ts_ns = event_ns ? event_ns : now_ns();
	snprintf(m.node, sizeof(m.node), "%s", agent_node(a));
	if (p->s4.fd >= 0)
		m.node_addr[m.n_node_addr++] = p->s4.bound;
	if (p->s6.fd >= 0)
		m.node_addr[m.n_node_addr++] = p->s6.bound;
	if (uid && strlen(uid) <= PEERMSG_UID_MAX)
		snprintf(m.uid, sizeof(m.uid), "%s", uid);
	for (unsigned i = 0; i < n && m.n_addr < PEERMSG_ADDRS_MAX; i++)
		if (ips[i].family == AF_INET || ips[i].family == AF_INET6)
			m.addr[m.n_addr++] = ips[i];
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	struct err e;
	err_clear(&e);
	if (peermsg_encode(&m, p->key, p->klen, buf, sizeof(buf), &len, &e) < 0) {
		log_err(agent_log(a), LOG_LVL_WARN, &e);
		return -EINVAL;
	}
	uint16_t port = p->port;
	int first = 0;
	unsigned sent = 0;
	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct pnode *to = &p->nodes[i];
		if (to == self)
			continue;
		const struct psock *s = p->s4.fd >= 0 && to->v4.family ? &p->s4
				      : p->s6.fd >= 0 && to->v6.family ? &p->s6 : NULL;
		if (!s)
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sockaddr_of(s == &p->s4 ? &to->v4 : &to->v6, port, &ss);
		if (sendto(s->fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0) {
			int err = errno;
			if (!first)
				first = -err;
			agent_metric_add(p->m_sent, "error", 1);
			log_fields(agent_log(a), LOG_LVL_WARN, "peer send failed",
				   "node=%s error=\"%s\"", to->name, strerror(err));
			continue;
		}
		agent_metric_add(p->m_sent, "ok", 1);
		sent++;
	}
	char ipb[PEERMSG_ADDRS_MAX * IP_STRLEN], ts[32], msg[32];
	ips_fmt(m.addr, m.n_addr, ipb, sizeof(ipb));
	snprintf(msg, sizeof(msg), "peer %s sent", what);
	log_fields(agent_log(a), LOG_LVL_INFO, msg,
		   "seq=%llu peers=%u ip=%s uid=%s sent_ts=%s", (unsigned long long)m.seq, sent,
		   ipb, m.uid[0] ? m.uid : "-", fmt_ts(now_ns(), ts, sizeof(ts)));
	return first;
}

int agent_peer_tell(struct agent *a, const struct ip_addr *ips, unsigned n, const char *uid,
		    uint64_t event_ns)
{
	return send_addrs(a, PEERMSG_T_CLAIM, "claim", ips, n, uid, event_ns);
}

int agent_peer_retract(struct agent *a, const struct ip_addr *ips, unsigned n,
		       const char *uid)
{
	return send_addrs(a, PEERMSG_T_RETRACT, "retract", ips, n, uid, 0);
}

int agent_peer_listen(struct agent *a, agent_peer_ct_fn ct, agent_peer_claim_fn claim,
		      void *user)
{
	struct agent_peer *p = agent_module(a, "peer");
	if (!p)
		return -ENOTCONN;
	p->on_ct = ct;
	p->on_claim = claim;
	p->listen_user = user;
	return 0;
}

bool agent_peer_on(struct agent *a)
{
	const struct agent_peer *p = agent_module(a, "peer");
	return p && p->on;
}

int agent_peer_prepare(struct agent *a, struct peermsg *m)
{
	struct agent_peer *p = agent_module(a, "peer");
	if (!p || !p->on)
		return -ENOTCONN;
	sockets_update(p);
	if ((p->s4.fd < 0 && p->s6.fd < 0) || !peermsg_node_name_ok(agent_node(a)))
		return -ENOTCONN;
	snprintf(m->node, sizeof(m->node), "%s", agent_node(a));
	m->n_node_addr = 0;
	if (p->s4.fd >= 0)
		m->node_addr[m->n_node_addr++] = p->s4.bound;
	if (p->s6.fd >= 0)
		m->node_addr[m->n_node_addr++] = p->s6.bound;
	return 0;
}

int agent_peer_send(struct agent *a, const char *to, struct peermsg *m, struct err *e)
{
	struct agent_peer *p = agent_module(a, "peer");
	if (!p || !p->on)
		return err_setx(e, ENOTCONN, "peer: path off");
	const struct pnode *n = node_find(p, to);
	if (!n || strcmp(to, agent_node(a)) == 0)
		return err_setx(e, ENOTCONN, "peer: node %s unknown (or this node)", to);
	const struct psock *s = p->s4.fd >= 0 && n->v4.family ? &p->s4
			      : p->s6.fd >= 0 && n->v6.family ? &p->s6 : NULL;
	if (!s)
		return err_setx(e, ENOTCONN, "peer: node %s has no address of a family this "
					     "node speaks", to);
	m->boot = p->boot;
	m->seq = ++p->seq;
	if (!m->ts_ns)
		m->ts_ns = now_ns();
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	if (peermsg_encode(m, p->key, p->klen, buf, sizeof(buf), &len, e) < 0)
		return -EINVAL;
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(s == &p->s4 ? &n->v4 : &n->v6, p->port, &ss);
	if (sendto(s->fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0) {
		int rc = err_set(e, errno, "peer: send to %s", to);
		agent_metric_add(p->m_sent, "error", 1);
		return rc;
	}
	agent_metric_add(p->m_sent, "ok", 1);
	return 0;
}

/* ---- what the datastore says --------------------------------------------------------- */

static const struct powner *owner_find(const struct agent_peer *p, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < p->n_owners; i++)
		if (ip_eq(&p->owners[i].ip, ip))
			return &p->owners[i];
	return NULL;
}

static bool owner_push(struct agent_peer *p, const struct powner *o)
{
	if (p->n_owners == p->cap_owners) {
		unsigned nc = p->cap_owners ? 2 * p->cap_owners : 64;
		struct powner *no = realloc(p->owners, nc * sizeof(*no));
		if (!no)
			return false;
		p->owners = no;
		p->cap_owners = nc;
	}
	p->owners[p->n_owners++] = *o;
	return true;
}

/* A block object changed (obj NULL: deleted): its addresses' owners, as agent/routes.c
 * reads them (the active owner, else the allocating node). */
static void owners_update(struct agent_peer *p, const struct kube_obj *old,
			  const struct kube_obj *obj)
{
	const char *name = obj ? obj->name : old ? old->name : NULL;
	if (!name)
		return;
	unsigned blk = p->n_blks;
	for (unsigned i = 0; i < p->n_blks && blk == p->n_blks; i++)
		if (strcmp(p->blk_names[i], name) == 0)
			blk = i;
	if (blk == p->n_blks) {
		if (!obj)
			return;
		if (p->n_blks == p->cap_blks) {
			unsigned nc = p->cap_blks ? 2 * p->cap_blks : 16;
			char (*nb)[IPAM_NAME_MAX + 1] = realloc(p->blk_names, nc * sizeof(*nb));
			if (!nb)
				return;
			p->blk_names = nb;
			p->cap_blks = nc;
		}
		snprintf(p->blk_names[p->n_blks++], sizeof(p->blk_names[0]), "%s", name);
	}
	unsigned j = 0;
	for (unsigned i = 0; i < p->n_owners; i++)
		if (p->owners[i].blk != blk)
			p->owners[j++] = p->owners[i];
	p->n_owners = j;
	if (!obj)
		return;
	struct ipam_state st;
	if (agent_block_load(obj, &st, NULL) == 0) {
		for (unsigned b = 0; b < st.n_blocks; b++) {
			const struct ipam_block *bl = &st.blocks[b];
			for (unsigned i = 0; i < bl->size; i++) {
				const struct ipam_attrs *at = bl->slot[i];
				if (!at)
					continue;
				struct powner o;
				memset(&o, 0, sizeof(o));
				o.ip = ipam_block_addr(bl, i);
				o.blk = blk;
				bool active = at->active.uid[0] != 0;
				snprintf(o.node, sizeof(o.node), "%s",
					 active ? at->active.node : at->node);
				snprintf(o.uid, sizeof(o.uid), "%s", active ? at->active.uid : "");
				if (!owner_push(p, &o))
					break;
			}
		}
	}
	ipam_state_free(&st);
}

/* May the local endpoint ep (a VM pod) be routed to node `to` for migration uid? Only
 * as the source of that migration, which KubeVirt's controllers say: the VMI's
 * migrationState (uid, targetNode, not failed) and the VMIM (that uid, that VMI, not
 * failed). why: the reason for a refusal. */
struct vmim_find {
	const char *uid, *ns; /* wanted */
	struct kube_obj o;    /* match */
	bool found;	      /* o is set */
};

static void vmim_cb(void *user, const struct kube_obj *o)
{
	struct vmim_find *f = user;
	if (!f->found && o->uid && strcmp(o->uid, f->uid) == 0 && strcmp(o->ns, f->ns) == 0) {
		f->o = *o;
		f->found = true;
	}
}

static bool source_may_switch(struct agent_peer *p, const struct agent_ep *ep,
			      const char *uid, const char *to, char *why, size_t cap)
{
	if (!ep->vm[0]) {
		snprintf(why, cap, "a local pod that is not a VM");
		return false;
	}
	if (!uid[0]) {
		snprintf(why, cap, "local VM %s/%s and the message names no migration", ep->ns,
			 ep->vm);
		return false;
	}
	struct kube_obj vo;
	if (!agent_obj_get(p->a, AGENT_K_VMI, ep->ns, ep->vm, &vo)) {
		snprintf(why, cap, "local VM %s/%s: no VMI in the informer", ep->ns, ep->vm);
		return false;
	}
	struct vmim_find f = { .uid = uid, .ns = ep->ns };
	agent_obj_each(p->a, AGENT_K_VMIM, vmim_cb, &f);
	if (!f.found) {
		snprintf(why, cap, "local VM %s/%s: no VMIM with uid %s", ep->ns, ep->vm, uid);
		return false;
	}
	struct json_doc vd, md;
	struct json_tok *vt = NULL, *mt = NULL;
	struct {
		char v[32768], m[16384]; /* arena memory: VMI, VMIM */
	} *mem = malloc(sizeof(*mem));
	if (!mem) {
		snprintf(why, cap, "out of memory");
		return false;
	}
	struct kube_arena va, ma;
	kube_arena_init(&va, mem->v, sizeof(mem->v));
	kube_arena_init(&ma, mem->m, sizeof(mem->m));
	struct kube_vmi vmi;
	struct kube_vmim vmim;
	bool ok = false;
	if (kube_obj_parse(&vo, &vd, &vt) < 0 || kube_vmi_view(&vd, 0, &vmi, &va, NULL) < 0 ||
	    kube_obj_parse(&f.o, &md, &mt) < 0 || kube_vmim_view(&md, 0, &vmim, &ma, NULL) < 0) {
		snprintf(why, cap, "local VM %s/%s: its VMI or VMIM does not parse", ep->ns,
			 ep->vm);
		goto out;
	}
	const struct kube_migration_state *ms = &vmi.mig;
	if (!vmim.vmi_name || strcmp(vmim.vmi_name, ep->vm) != 0) {
		snprintf(why, cap, "VMIM %s is not for VM %s/%s", uid, ep->ns, ep->vm);
	} else if (vmim.meta.deletion_timestamp || (vmim.phase && !strcmp(vmim.phase, "Failed"))) {
		snprintf(why, cap, "VMIM %s failed or is being deleted", uid);
	} else if (!ms->present || !ms->migration_uid || strcmp(ms->migration_uid, uid) != 0) {
		snprintf(why, cap, "VMI %s/%s: status.migrationState is not migration %s", ep->ns,
			 ep->vm, uid);
	} else if (!ms->target_node || strcmp(ms->target_node, to) != 0) {
		snprintf(why, cap, "VMI %s/%s: migration %s targets node %s, not %s", ep->ns,
			 ep->vm, uid, ms->target_node ? ms->target_node : "(none)", to);
	} else if (ms->failed) {
		snprintf(why, cap, "VMI %s/%s: migration %s failed", ep->ns, ep->vm, uid);
	} else {
		ok = true;
	}
out:
	free(vt);
	free(mt);
	free(mem);
	return ok;
}

/* ---- holds ---------------------------------------------------------------------------- */

static struct phold *hold_find(struct agent_peer *p, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < p->n_holds; i++)
		if (ip_eq(&p->holds[i].ip, ip))
			return &p->holds[i];
	return NULL;
}

/* Is the agent's override for h->ip still the one this module set? */
static bool hold_current(struct agent_peer *p, const struct phold *h)
{
	const struct agent_override *o = agent_override_get(p->a, &h->ip);
	return o && o->kind == AGENT_OVR_VIA && strcmp(o->node, h->node) == 0;
}

/* Forget hold i; clear its override when it is still ours (why: metric label). */
static void hold_drop(struct agent_peer *p, unsigned i, const char *why)
{
	struct phold *h = &p->holds[i];
	bool ours = hold_current(p, h);
	if (ours)
		agent_override_clear(p->a, &h->ip);
	/* an owner change is the API's word even when the migration code (a source going
	 * SOURCE on the same event) already replaced the route */
	const char *label = ours || strcmp(why, "api") == 0 ? why : "replaced";
	char a[IP_STRLEN];
	log_fields(agent_log(p->a), LOG_LVL_INFO, "peer override dropped", "ip=%s node=%s why=%s",
		   ip_fmt(&h->ip, a), h->node, label);
	agent_metric_add(p->m_drop, label, 1);
	p->holds[i] = p->holds[--p->n_holds];
	agent_metric_set(p->m_held, NULL, p->n_holds);
	if (!p->n_holds && p->tick)
		ev_timer_disarm(p->tick);
}

static int hold_add(struct agent_peer *p, const struct phold *h)
{
	struct phold *have = hold_find(p, &h->ip);
	if (!have) {
		if (p->n_holds == p->cap_holds) {
			unsigned nc = p->cap_holds ? 2 * p->cap_holds : 8;
			struct phold *nh = realloc(p->holds, nc * sizeof(*nh));
			if (!nh)
				return -ENOMEM;
			p->holds = nh;
			p->cap_holds = nc;
		}
		have = &p->holds[p->n_holds++];
	}
	*have = *h;
	agent_metric_set(p->m_held, NULL, p->n_holds);
	if (p->tick && !ev_timer_armed(p->tick))
		ev_timer_arm(p->tick, 500, 500);
	return 0;
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct agent_peer *p = user;
	uint64_t now = ev_now_ms();
	for (unsigned i = p->n_holds; i-- > 0;)
		if (!hold_current(p, &p->holds[i]))
			hold_drop(p, i, "replaced");
		else if (now >= p->holds[i].deadline_ms)
			hold_drop(p, i, "expired");
}

/* A block changed (the table is updated): a held address whose owner is no longer the
 * one it had when the route was set (or that is no longer allocated) is the API's again. */
static void on_block(struct agent_peer *p)
{
	for (unsigned i = p->n_holds; i-- > 0;) {
		const struct phold *h = &p->holds[i];
		const struct powner *o = owner_find(p, &h->ip);
		if (!o || strcmp(o->node, h->own_node) != 0 || strcmp(o->uid, h->own_uid) != 0)
			hold_drop(p, i, "api");
	}
}

/* ---- receiving ---------------------------------------------------------------------- */

static void reject(struct agent_peer *p, const char *reason, const char *from,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void reject(struct agent_peer *p, const char *reason, const char *from,
		   const char *fmt, ...)
{
	agent_metric_add(p->m_rej, reason, 1);
	va_list ap;
	va_start(ap, fmt);
	log_limited(agent_log(p->a), &p->rej_lim, ev_now_ms(), "peer message rejected", reason,
		    from, fmt, ap);
	va_end(ap);
}

static struct psender *sender_get(struct agent_peer *p, const char *node)
{
	for (unsigned i = 0; i < p->n_senders; i++)
		if (strcmp(p->senders[i].node, node) == 0)
			return &p->senders[i];
	if (p->n_senders >= SENDERS_MAX)
		return NULL;
	if (p->n_senders == p->cap_senders) {
		unsigned nc = p->cap_senders ? 2 * p->cap_senders : 8;
		struct psender *ns = realloc(p->senders, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		p->senders = ns;
		p->cap_senders = nc;
	}
	struct psender *s = &p->senders[p->n_senders++];
	memset(s, 0, sizeof(*s));
	snprintf(s->node, sizeof(s->node), "%s", node);
	return s;
}

static bool node_has(const struct pnode *n, const struct ip_addr *ip)
{
	return (n->v4.family && ip_eq(&n->v4, ip)) || (n->v6.family && ip_eq(&n->v6, ip));
}

/* An authenticated, fresh RETRACT from m->node: every override this module set for one of
 * its addresses via that node goes (the reconcile that follows routes by the API); an
 * override via another node, or of the migration code, stays. */
static void retract(struct agent_peer *p, const struct peermsg *m, uint64_t recv_ns)
{
	unsigned dropped = 0;
	for (unsigned k = 0; k < m->n_addr; k++)
		for (unsigned i = p->n_holds; i-- > 0;)
			if (ip_eq(&p->holds[i].ip, &m->addr[k]) &&
			    strcmp(p->holds[i].node, m->node) == 0) {
				hold_drop(p, i, "retracted");
				dropped++;
			}
	char ipb[PEERMSG_ADDRS_MAX * IP_STRLEN];
	ips_fmt(m->addr, m->n_addr, ipb, sizeof(ipb));
	log_fields(agent_log(p->a), LOG_LVL_INFO, "peer retract accepted",
		   "node=%s seq=%llu uid=%s ip=%s dropped=%u handle_us=%llu", m->node,
		   (unsigned long long)m->seq, m->uid[0] ? m->uid : "-", ipb, dropped,
		   (unsigned long long)((now_ns() - recv_ns) / 1000u));
}

/* One datagram of len bytes (trunc: the real length, larger when cut) from src. */
static void handle(struct agent_peer *p, const uint8_t *buf, size_t len,
		   const struct ip_addr *src, const char *from)
{
	struct err e;
	err_clear(&e);
	uint64_t recv_ns = now_ns();
	agent_metric_add(p->m_recv, NULL, 1);
	int rc = peermsg_auth(buf, len, p->key, p->klen, &e);
	if (rc < 0) {
		reject(p, rc == -EMSGSIZE ? "size" : "auth", from, "%s", e.msg);
		return;
	}
	struct peermsg m;
	if (peermsg_decode(buf, len, &m, &e) < 0) {
		reject(p, "garbage", from, "%s", e.msg);
		return;
	}
	if (strcmp(m.node, agent_node(p->a)) == 0) {
		reject(p, "self", from, "message names this node %s", m.node);
		return;
	}
	const struct pnode *n = node_find(p, m.node);
	if (!n) {
		reject(p, "unknown_node", from, "node %s has no Node object here", m.node);
		return;
	}
	bool addrs_ok = node_has(n, src);
	for (unsigned i = 0; i < m.n_node_addr; i++)
		addrs_ok = addrs_ok && node_has(n, &m.node_addr[i]);
	if (!addrs_ok) {
		reject(p, "source", from, "node %s's InternalIPs are not the sender's or the "
					  "message's addresses", m.node);
		return;
	}
	struct psender *s = sender_get(p, m.node);
	if (!s) {
		reject(p, "garbage", from, "replay table full");
		return;
	}
	uint64_t now = now_ns();
	enum peermsg_fresh f = peermsg_fresh(&s->seen, &m, now, p->boot, PEER_WINDOW_NS);
	switch (f) {
	case PEERMSG_FRESH:
		break;
	case PEERMSG_STALE:
		reject(p, "stale", from, "node %s seq %llu: event time %lld ms from now (window "
					 "%llu ms, or before this agent started)", m.node,
		       (unsigned long long)m.seq,
		       (long long)((int64_t)(m.ts_ns - now) / 1000000),
		       (unsigned long long)(PEER_WINDOW_NS / 1000000u));
		return;
	case PEERMSG_REPLAY:
		reject(p, "replay", from, "node %s boot %llu seq %llu already seen or too old",
		       m.node, (unsigned long long)m.boot, (unsigned long long)m.seq);
		return;
	}
	if (m.type == PEERMSG_T_CT) {
		if (p->on_ct)
			p->on_ct(p->listen_user, &m);
		else
			reject(p, "garbage", from, "node %s seq %llu: a conntrack chunk, and "
						   "nobody here takes them", m.node,
			       (unsigned long long)m.seq);
		return;
	}
	if (m.type == PEERMSG_T_RETRACT) {
		retract(p, &m, recv_ns);
		return;
	}
	unsigned applied = 0;
	uint64_t route_ns = 0;
	const struct agent_ep *asked = NULL; /* the endpoint source_may_switch() judged */
	bool may = false;		     /* its verdict */
	char why[320] = "";		     /* and why not */
	for (unsigned i = 0; i < m.n_addr; i++) {
		const struct ip_addr *ip = &m.addr[i];
		char a[IP_STRLEN];
		const struct powner *of = owner_find(p, ip);
		if (!of) {
			reject(p, "unknown_addr", from, "node %s seq %llu: %s is no allocated IPAM "
							"address", m.node, (unsigned long long)m.seq,
			       ip_fmt(ip, a));
			continue;
		}
		if (strcmp(of->node, m.node) == 0)
			continue; /* the API says so already: the routes module has it */
		struct agent_ep *ep = agent_ep_find_ip(p->a, ip);
		if (ep && ep != asked) { /* once per endpoint: its v4 and v6 ask the same */
			asked = ep;
			may = source_may_switch(p, ep, m.uid, m.node, why, sizeof(why));
		}
		if (ep && !may) {
			reject(p, "local", from, "node %s seq %llu: %s is local here: %s", m.node,
			       (unsigned long long)m.seq, ip_fmt(ip, a), why);
			continue;
		}
		/* an override of the migration code is left alone, but for the source of
		 * this very migration (checked above): a VM that came here less than
		 * convergence_seconds ago still has its DEV route at migration_metric */
		struct phold *had = hold_find(p, ip);
		const struct agent_override *o = agent_override_get(p->a, ip);
		if (o && !ep && !(had && hold_current(p, had)))
			continue;
		struct agent_override ov;
		memset(&ov, 0, sizeof(ov));
		ov.ip = *ip;
		ov.kind = AGENT_OVR_VIA;
		snprintf(ov.node, sizeof(ov.node), "%s", m.node);
		if (agent_override_apply(p->a, &ov, &e) < 0) {
			log_fields(agent_log(p->a), LOG_LVL_WARN, "peer route failed",
				   "ip=%s node=%s error=\"%s\"", ip_fmt(ip, a), m.node, e.msg);
			err_clear(&e);
			continue;
		}
		if (!route_ns)
			route_ns = now_ns();
		struct phold h;
		memset(&h, 0, sizeof(h));
		h.ip = *ip;
		snprintf(h.node, sizeof(h.node), "%s", m.node);
		snprintf(h.own_node, sizeof(h.own_node), "%s", of->node);
		snprintf(h.own_uid, sizeof(h.own_uid), "%s", of->uid);
		h.deadline_ms = ev_now_ms() + PEER_HOLD_MS;
		if (hold_add(p, &h) < 0)
			agent_override_clear(p->a, ip); /* cannot drop it later: not at all */
		else
			applied++;
	}
	char ipb[PEERMSG_ADDRS_MAX * IP_STRLEN], t1[32], t2[32], extra[160] = "";
	ips_fmt(m.addr, m.n_addr, ipb, sizeof(ipb));
	if (route_ns) {
		uint64_t lat = route_ns > m.ts_ns ? route_ns - m.ts_ns : 0;
		agent_metric_observe(p->m_lat, (double)lat / 1e9);
		snprintf(extra, sizeof(extra),
			 " announce_ts=%s route_ts=%s latency_us=%llu handle_us=%llu",
			 fmt_ts(m.ts_ns, t1, sizeof(t1)), fmt_ts(route_ns, t2, sizeof(t2)),
			 (unsigned long long)(lat / 1000u),
			 (unsigned long long)((route_ns - recv_ns) / 1000u));
	}
	log_fields(agent_log(p->a), LOG_LVL_INFO, "peer claim accepted",
		   "node=%s seq=%llu uid=%s ip=%s applied=%u%s", m.node, (unsigned long long)m.seq,
		   m.uid[0] ? m.uid : "-", ipb, applied, extra);
	if (p->on_claim)
		p->on_claim(p->listen_user, &m);
}

static void on_readable(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
			void *user)
{
	(void)loop;
	(void)io;
	(void)revents;
	struct agent_peer *p = user;
	uint8_t buf[PEERMSG_MAX + 1];
	for (unsigned k = 0; k < 64; k++) { /* bounded: a flood cannot starve the loop */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&ss, &sl);
		if (r < 0)
			return;
		struct ip_addr src;
		memset(&src, 0, sizeof(src));
		char from[IP_STRLEN + 8] = "?";
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
			src.family = AF_INET;
			memcpy(src.b, &s4->sin_addr, 4);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
			src.family = AF_INET6;
			memcpy(src.b, &s6->sin6_addr, 16);
		}
		if (src.family)
			ip_fmt(&src, from);
		handle(p, buf, (size_t)r, &src, from);
	}
}

/* ---- hooks, life cycle ------------------------------------------------------------------ */

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)a;
	struct agent_peer *p = arg;
	if (ev->hook != AGENT_HOOK_OBJECT)
		return;
	switch (ev->kind) {
	case AGENT_K_NODE:
		node_put(p, ev->old, ev->obj);
		if (p->on && (ev->obj ? ev->obj : ev->old) &&
		    strcmp((ev->obj ? ev->obj : ev->old)->name, agent_node(p->a)) == 0)
			sockets_update(p);
		break;
	case AGENT_K_BLOCK:
		owners_update(p, ev->old, ev->obj);
		on_block(p);
		break;
	case AGENT_K_POD:
	case AGENT_K_VMI:
	case AGENT_K_VMIM:
	case AGENT_K_HANDLE:
	case AGENT_K_L2NET:
	case AGENT_K_MNETPOL:
	case AGENT_K_NETPOL:
	case AGENT_K_NAMESPACE:
	case AGENT_K_POD_ALL:
	case AGENT_K_COUNT:
		break;
	}
}

/* Read the key file into p (trailing newline dropped). Missing file: 0 with *have false. */
static int key_load(struct agent_peer *p, const char *path, bool *have, struct err *e)
{
	*have = false;
	char *text = NULL;
	size_t len = 0;
	int rc = file_read(path, PEERMSG_KEY_MAX + 2, &text, &len, e);
	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		return err_prefix(e, "peer: key");
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len < PEERMSG_KEY_MIN || len > PEERMSG_KEY_MAX) {
		free(text);
		return err_setx(e, EINVAL, "peer: key %s: %zu bytes (want %d..%d)", path, len,
				PEERMSG_KEY_MIN, PEERMSG_KEY_MAX);
	}
	memcpy(p->key, text, len);
	p->klen = len;
	memset(text, 0, len);
	free(text);
	*have = true;
	return 0;
}

struct agent_peer *agent_peer_new(struct agent *a, struct err *e)
{
	struct agent_peer *p = calloc(1, sizeof(*p));
	if (!p) {
		err_setx(e, ENOMEM, "peer: out of memory");
		return NULL;
	}
	p->rej_lim.burst = REJECT_LOG_BURST;
	p->rej_lim.window_ms = REJECT_LOG_MS;
	p->a = a;
	p->s4.fd = p->s6.fd = -1;
	p->boot = now_ns();
	const struct conf *c = agent_conf(a);
	p->port = (uint16_t)c->agent.peer_port;
	struct agent_metrics *reg = agent_metrics(a);
	static const double bounds[] = { 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3,
					 5e-3,	10e-3,	50e-3,	100e-3, 1.0 };
	if (reg) {
		p->m_sent = agent_metric_new(reg, "kvnet_peer_messages_sent_total",
					     "Agent-to-agent datagrams sent, by result.",
					     AGENT_M_COUNTER, "result");
		p->m_recv = agent_metric_new(reg, "kvnet_peer_messages_received_total",
					     "Agent-to-agent datagrams read.", AGENT_M_COUNTER,
					     NULL);
		p->m_rej = agent_metric_new(reg, "kvnet_peer_messages_rejected_total",
					    "Agent-to-agent messages (or addresses of one) "
					    "refused, by reason.",
					    AGENT_M_COUNTER, "reason");
		p->m_held = agent_metric_new(reg, "kvnet_peer_overrides",
					     "Routes held from agent-to-agent messages.",
					     AGENT_M_GAUGE, NULL);
		p->m_drop = agent_metric_new(reg, "kvnet_peer_overrides_dropped_total",
					     "Peer routes dropped: the API owner changed (api), "
					     "the hold ran out (expired), the sender withdrew its "
					     "claim (retracted), or replaced.",
					     AGENT_M_COUNTER, "why");
		p->m_lat = agent_metric_histogram(
			reg, "kvnet_peer_announce_to_route_seconds",
			"The message's event time (the target's announcement) to this node's "
			"route ack.",
			bounds, sizeof(bounds) / sizeof(bounds[0]));
		if (!p->m_sent || !p->m_recv || !p->m_rej || !p->m_held || !p->m_drop ||
		    !p->m_lat) {
			err_setx(e, EEXIST, "peer: metrics: cannot register (taken?)");
			goto fail;
		}
		static const char *const reasons[] = { "size", "auth", "garbage", "self",
						       "unknown_node", "source", "stale",
						       "replay", "local", "unknown_addr" };
		for (unsigned i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
			agent_metric_add(p->m_rej, reasons[i], 0);
		agent_metric_add(p->m_sent, "ok", 0);
		agent_metric_add(p->m_sent, "error", 0);
		agent_metric_add(p->m_recv, NULL, 0);
		agent_metric_set(p->m_held, NULL, 0);
		agent_metric_add(p->m_drop, "api", 0);
		agent_metric_add(p->m_drop, "expired", 0);
		agent_metric_add(p->m_drop, "retracted", 0);
	}
	const char *off = NULL;
	bool have = false;
	if (!c->agent.peer_port)
		off = "peer_port is 0";
	else if (c->datastore.type != CONF_DATASTORE_KUBERNETES)
		off = "the file datastore has no Node objects to find the other agents";
	else if (!c->agent.peer_key_file[0])
		off = "no peer_key_file";
	else if (key_load(p, c->agent.peer_key_file, &have, e) < 0)
		goto fail;
	else if (!have)
		off = "the key file does not exist";
	if (off) {
		log_fields(agent_log(a), LOG_LVL_WARN, "peer path off",
			   "reason=\"%s\" key_file=%s", off,
			   c->agent.peer_key_file[0] ? c->agent.peer_key_file : "-");
		return p;
	}
	p->on = true;
	agent_want_kind(a, AGENT_K_NODE);
	agent_want_kind(a, AGENT_K_BLOCK);
	agent_want_kind(a, AGENT_K_VMI);
	agent_want_kind(a, AGENT_K_VMIM);
	if (ev_timer_add(agent_loop(a), 500, 500, on_tick, p, NULL, &p->tick, e) < 0)
		goto fail;
	ev_timer_disarm(p->tick);
	if (agent_hook_add(a, AGENT_HOOK_OBJECT, on_hook, p, e) < 0)
		goto fail;
	return p;
fail:
	agent_peer_free(p);
	return NULL;
}

void agent_peer_free(struct agent_peer *p)
{
	if (!p)
		return;
	agent_hook_del(p->a, AGENT_HOOK_OBJECT, on_hook, p);
	if (p->tick)
		ev_timer_del(p->tick);
	sock_close(&p->s4);
	sock_close(&p->s6);
	memset(p->key, 0, sizeof(p->key));
	free(p->nodes);
	free(p->senders);
	free(p->holds);
	free(p->owners);
	free(p->blk_names);
	free(p);
}
