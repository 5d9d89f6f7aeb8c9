/* peerct — the conntrack hand-over over the agent-to-agent path (see peerct.h). */
#include "agent/peerct.h"

#include "agent/agent.h"
#include "agent/cthand.h"
#include "agent/desired.h"
#include "agent/metrics.h"
#include "agent/peer.h"
#include "agent/peermsg.h"
#include "conf/conf.h"
#include "kube/informer.h"
#include "kube/kubevirt.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/ct.h"
#include "net/nl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define TICK_MS 100		/* the session timer */
#define REFUSE_LOG_BURST 20	/* refusal lines per REFUSE_LOG_MS, then counted only */
#define REFUSE_LOG_MS 10000
#define NAME_MAX_ 253		/* Kubernetes names */
#define UID_MAX_ PEERMSG_UID_MAX

/* What this node reads of one VMI. */
struct vmi_info {
	char ns[64], name[NAME_MAX_ + 1], uid[UID_MAX_ + 1]; /* identity */
	char node[NAME_MAX_ + 1];			     /* status.nodeName */
	bool mig;					     /* migrationState present */
	char mig_uid[UID_MAX_ + 1];			     /* its migrationUid */
	char src_node[NAME_MAX_ + 1], src_pod[NAME_MAX_ + 1]; /* source */
	char tgt_node[NAME_MAX_ + 1], tgt_pod[NAME_MAX_ + 1]; /* target */
	bool completed, failed;				     /* done, failed */
};

/* One migration this node is the source of. */
struct sess {
	char uid[UID_MAX_ + 1];		    /* migration uid */
	char vmi_uid[UID_MAX_ + 1];	    /* VMI uid */
	char ns[64], vmi[NAME_MAX_ + 1];    /* the VMI */
	char to[NAME_MAX_ + 1];		    /* target node */
	unsigned n_ip;			    /* addresses in ip[] */
	struct ip_addr ip[AGENT_EP_IPS_MAX]; /* the VM's addresses (the source endpoint's) */
	struct cthand_track *trk;	    /* the event tracker */
	struct ev_io *io;		    /* its watcher */
	bool resync;			    /* events were lost: a full dump is due */
	bool cut;			    /* the cut-over was seen */
	bool repeated;			    /* the full repeat after it went out */
	uint64_t cut_ev_ns;		    /* the cut-over's event time (claim), unix ns */
	uint64_t t_start, t_cut, t_topup;   /* ev_now_ms() of start, cut-over, last delta */
	uint32_t round;			    /* last round sent */
	unsigned entries;		    /* entries sent, all rounds */
	bool dead;			    /* to be freed by the sweep */
};

struct agent_peerct {
	struct agent *a;		/* the agent (not owned) */
	struct sess *s;			/* sessions */
	unsigned n_s;			/* in use */
	struct nl_sock *ct;		/* ctnetlink: dumps (source), creates (target) */
	struct ev_timer *tick;		/* session timer (armed while there are sessions) */
	struct log_limit ref_lim;	/* refusal lines: REFUSE_LOG_BURST per REFUSE_LOG_MS */
	struct agent_metric *m_ent, *m_chunk, *m_lat; /* metrics */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool enabled(struct agent_peerct *p)
{
	return agent_conf(p->a)->agent.conntrack_handover;
}

static void cpy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
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

/* ---- what the informers say ----------------------------------------------------------- */

static bool vmi_read(const struct kube_obj *o, struct vmi_info *v)
{
	memset(v, 0, sizeof(*v));
	struct json_doc d;
	struct json_tok *tok = NULL;
	char *mem = malloc(32768);
	bool ok = false;
	if (!mem)
		return false;
	struct kube_arena ar;
	kube_arena_init(&ar, mem, 32768);
	struct kube_vmi vmi;
	if (kube_obj_parse(o, &d, &tok) == 0 && kube_vmi_view(&d, 0, &vmi, &ar, NULL) == 0) {
		cpy(v->ns, sizeof(v->ns), o->ns);
		cpy(v->name, sizeof(v->name), o->name);
		cpy(v->uid, sizeof(v->uid), o->uid);
		cpy(v->node, sizeof(v->node), vmi.node_name);
		const struct kube_migration_state *ms = &vmi.mig;
		v->mig = ms->present && ms->migration_uid;
		if (v->mig) {
			cpy(v->mig_uid, sizeof(v->mig_uid), ms->migration_uid);
			cpy(v->src_node, sizeof(v->src_node), ms->source_node);
			cpy(v->src_pod, sizeof(v->src_pod), ms->source_pod);
			cpy(v->tgt_node, sizeof(v->tgt_node), ms->target_node);
			cpy(v->tgt_pod, sizeof(v->tgt_pod), ms->target_pod);
			v->completed = ms->completed;
			v->failed = ms->failed;
		}
		ok = true;
	}
	free(tok);
	free(mem);
	return ok;
}

struct vmim_find {
	const char *uid, *ns;	/* wanted */
	bool found;		/* a VMIM with that uid exists */
	char phase[32];		/* its status.phase */
	char vmi[NAME_MAX_ + 1]; /* its spec.vmiName */
	bool deleting;		/* deletionTimestamp set */
};

static void vmim_cb(void *user, const struct kube_obj *o)
{
	struct vmim_find *f = user;
	if (f->found || !o->uid || strcmp(o->uid, f->uid) != 0 || strcmp(o->ns, f->ns) != 0)
		return;
	struct json_doc d;
	struct json_tok *tok = NULL;
	char mem[8192];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_vmim vm;
	if (kube_obj_parse(o, &d, &tok) == 0 && kube_vmim_view(&d, 0, &vm, &ar, NULL) == 0) {
		f->found = true;
		cpy(f->phase, sizeof(f->phase), vm.phase);
		cpy(f->vmi, sizeof(f->vmi), vm.vmi_name);
		f->deleting = vm.meta.deletion_timestamp != NULL;
	}
	free(tok);
}

static bool vmim_get(struct agent_peerct *p, const char *ns, const char *uid,
		     struct vmim_find *f)
{
	memset(f, 0, sizeof(*f));
	f->uid = uid;
	f->ns = ns;
	agent_obj_each(p->a, AGENT_K_VMIM, vmim_cb, f);
	return f->found;
}

/* The local endpoint of pod ns/pod (a VM pod of vmi), or NULL. */
static struct agent_ep *ep_of_pod(struct agent_peerct *p, const char *ns, const char *pod,
				  const char *vmi)
{
	for (unsigned i = 0; i < agent_ep_count(p->a); i++) {
		struct agent_ep *ep = agent_ep_at(p->a, i);
		if (ep && ep->n_ip && strcmp(ep->ns, ns) == 0 && strcmp(ep->pod, pod) == 0 &&
		    strcmp(ep->vm, vmi) == 0)
			return ep;
	}
	return NULL;
}

/* ---- metrics and refusals --------------------------------------------------------------- */

static void refuse(struct agent_peerct *p, const char *reason, const char *from,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct agent_peerct *p, const char *reason, const char *from,
		   const char *fmt, ...)
{
	agent_metric_add(p->m_chunk, "refused", 1);
	va_list ap;
	va_start(ap, fmt);
	log_limited(agent_log(p->a), &p->ref_lim, ev_now_ms(), "conntrack hand-over refused",
		    reason, from, fmt, ap);
	va_end(ap);
}

static int ct_sock(struct agent_peerct *p, struct err *e)
{
	if (p->ct)
		return 0;
	return ct_open(&p->ct, NULL, e);
}

/* ---- source: sending ------------------------------------------------------------------- */

/* Send l to the session's target as one round (why: for the log; cutover: flag it and
 * use the cut-over's event time). Entries beyond a round's bound were cut by the caller
 * (truncated). */
static void send_round(struct agent_peerct *p, struct sess *s, const struct ct_list *l,
		       const char *why, bool cutover, bool truncated)
{
	if (!l->n)
		return;
	struct peermsg *m = calloc(1, sizeof(*m));
	struct err e;
	err_clear(&e);
	if (!m || agent_peer_prepare(p->a, m) < 0) {
		log_fields(agent_log(p->a), LOG_LVL_WARN, "conntrack hand-over not sent",
			   "uid=%s vmi=%s/%s why=%s error=\"%s\"", s->uid, s->ns, s->vmi, why,
			   m ? "the peer path is off or this node's address unknown"
			     : "out of memory");
		free(m);
		return;
	}
	m->type = PEERMSG_T_CT;
	cpy(m->uid, sizeof(m->uid), s->uid);
	cpy(m->vmi_uid, sizeof(m->vmi_uid), s->vmi_uid);
	size_t room = peermsg_ct_room(m);
	size_t per = room > CT_WIRE_HDR ? (room - CT_WIRE_HDR) / CT_WIRE_ENTRY : 0;
	if (!per) {
		free(m);
		return;
	}
	s->round++;
	uint32_t round = s->round | (cutover ? PEERMSG_CT_CUTOVER : 0);
	size_t chunks = (l->n + per - 1) / per, pos = 0;
	uint64_t ts = cutover && s->cut_ev_ns ? s->cut_ev_ns : now_ns();
	unsigned errors = 0, sent = 0;
	for (size_t i = 0; i < chunks; i++) {
		long len = cthand_encode(l, &pos, m->ct, room, &e);
		if (len <= 0)
			break;
		m->ct_len = (uint16_t)len;
		m->round = round;
		m->chunk = (uint16_t)i;
		m->chunks = (uint16_t)chunks;
		m->ts_ns = ts;
		err_clear(&e);
		if (agent_peer_send(p->a, s->to, m, &e) < 0) {
			if (!errors)
				log_err(agent_log(p->a), LOG_LVL_WARN, &e);
			errors++;
			agent_metric_add(p->m_chunk, "send_error", 1);
			continue;
		}
		sent++;
		agent_metric_add(p->m_chunk, "sent", 1);
	}
	size_t n_sent = pos; /* entries encoded */
	agent_metric_add(p->m_ent, "sent", (double)n_sent);
	s->entries += (unsigned)n_sent;
	log_fields(agent_log(p->a), LOG_LVL_INFO, "conntrack hand-over sent",
		   "uid=%s vmi=%s/%s to=%s round=%u why=%s entries=%zu chunks=%u errors=%u%s",
		   s->uid, s->ns, s->vmi, s->to, s->round, why, n_sent, sent, errors,
		   truncated ? " truncated=1" : "");
	free(m);
}

/* Every entry of the VM's addresses now, as one round. */
static void send_full(struct agent_peerct *p, struct sess *s, const char *why, bool cutover)
{
	struct err e;
	err_clear(&e);
	struct ct_list l = {0};
	bool trunc = false;
	if (ct_sock(p, &e) < 0) {
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
		return;
	}
	int rc = cthand_collect(p->ct, s->ip, s->n_ip, &l, &e);
	if (rc == -E2BIG) {
		trunc = true; /* what fits the bound still goes */
	} else if (rc < 0) {
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
		ct_list_free(&l);
		return;
	}
	send_round(p, s, &l, why, cutover, trunc);
	ct_list_free(&l);
}

/* Read the tracker; a loss marks the session for a full dump. */
static void drain(struct agent_peerct *p, struct sess *s)
{
	if (!s->trk)
		return;
	struct err e;
	err_clear(&e);
	int rc = cthand_track_read(s->trk, &e);
	if (rc == -ENOBUFS || rc == -E2BIG) {
		s->resync = true;
	} else if (rc < 0) {
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
		s->resync = true;
	}
}

/* The delta since the last round (or everything again when events were lost). */
static void send_delta(struct agent_peerct *p, struct sess *s, const char *why, bool cutover)
{
	drain(p, s);
	if (!s->trk)
		return;
	if (s->resync) {
		s->resync = false;
		send_full(p, s, cutover ? why : "resync", cutover);
		cthand_track_reset(s->trk);
		return;
	}
	send_round(p, s, cthand_track_list(s->trk), why, cutover, false);
	cthand_track_reset(s->trk);
}

static void on_track(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		     void *user);

static void sess_close(struct agent_peerct *p, struct sess *s, const char *why)
{
	if (s->dead)
		return;
	if (s->io)
		ev_io_del(s->io);
	s->io = NULL;
	cthand_track_free(s->trk);
	s->trk = NULL;
	s->dead = true;
	log_fields(agent_log(p->a), LOG_LVL_INFO, "conntrack hand-over ended",
		   "uid=%s vmi=%s/%s to=%s why=%s rounds=%u entries=%u", s->uid, s->ns, s->vmi,
		   s->to, why, s->round, s->entries);
}

static void sweep(struct agent_peerct *p)
{
	unsigned j = 0;
	for (unsigned i = 0; i < p->n_s; i++)
		if (!p->s[i].dead)
			p->s[j++] = p->s[i];
	p->n_s = j;
	if (!p->n_s && p->tick)
		ev_timer_disarm(p->tick);
}

static struct sess *sess_find(struct agent_peerct *p, const char *uid)
{
	for (unsigned i = 0; i < p->n_s; i++)
		if (!p->s[i].dead && strcmp(p->s[i].uid, uid) == 0)
			return &p->s[i];
	return NULL;
}

static void cutover(struct agent_peerct *p, struct sess *s, uint64_t ev_ns, const char *by)
{
	if (s->cut)
		return;
	s->cut = true;
	s->cut_ev_ns = ev_ns;
	s->t_cut = ev_now_ms();
	send_delta(p, s, strcmp(by, "claim") == 0 ? "cutover" : "cutover_api", true);
}

/* Start a session for migration v->mig_uid whose source endpoint is ep. */
static void sess_start(struct agent_peerct *p, const struct vmi_info *v,
		       const struct agent_ep *ep)
{
	if (p->n_s >= PEERCT_SESS_MAX) {
		log_fields(agent_log(p->a), LOG_LVL_WARN, "conntrack hand-over not started",
			   "uid=%s vmi=%s/%s why=\"%d migrations handed over already\"",
			   v->mig_uid, v->ns, v->name, PEERCT_SESS_MAX);
		return;
	}
	struct sess *s = &p->s[p->n_s];
	memset(s, 0, sizeof(*s));
	cpy(s->uid, sizeof(s->uid), v->mig_uid);
	cpy(s->vmi_uid, sizeof(s->vmi_uid), v->uid);
	cpy(s->ns, sizeof(s->ns), v->ns);
	cpy(s->vmi, sizeof(s->vmi), v->name);
	cpy(s->to, sizeof(s->to), v->tgt_node);
	for (unsigned i = 0; i < ep->n_ip && i < AGENT_EP_IPS_MAX; i++)
		s->ip[s->n_ip++] = ep->ip[i];
	struct err e;
	err_clear(&e);
	/* the tracker first: what changes during the dump is in its delta */
	s->trk = cthand_track_new(NULL, s->ip, s->n_ip, &e);
	if (!s->trk || ev_io_add(agent_loop(p->a), cthand_track_fd(s->trk), EPOLLIN, on_track,
				 p, NULL, &s->io, &e) < 0) {
		log_err(agent_log(p->a), LOG_LVL_WARN, &e);
		cthand_track_free(s->trk);
		return;
	}
	p->n_s++;
	s->t_start = s->t_topup = ev_now_ms();
	char ipb[AGENT_EP_IPS_MAX * IP_STRLEN];
	ips_fmt(s->ip, s->n_ip, ipb, sizeof(ipb));
	log_fields(agent_log(p->a), LOG_LVL_INFO, "conntrack hand-over started",
		   "uid=%s vmi=%s/%s to=%s ip=%s", s->uid, s->ns, s->vmi, s->to, ipb);
	if (p->tick && !ev_timer_armed(p->tick))
		ev_timer_arm(p->tick, TICK_MS, TICK_MS);
	send_full(p, s, "initial", false);
	if (v->completed || strcmp(v->node, v->tgt_node) == 0)
		cutover(p, s, 0, "api");
}

static bool phase_ready(const char *ph)
{
	return !strcmp(ph, "TargetReady") || !strcmp(ph, "Running") || !strcmp(ph, "Succeeded");
}

/* A VMI changed (or its VMIM): start, cut over or end its session as it says. */
static void on_vmi(struct agent_peerct *p, const struct kube_obj *o)
{
	struct vmi_info v;
	if (!vmi_read(o, &v))
		return;
	const char *me = agent_node(p->a);
	for (unsigned i = 0; i < p->n_s; i++) {
		struct sess *s = &p->s[i];
		if (s->dead || strcmp(s->vmi_uid, v.uid) != 0)
			continue;
		if (!v.mig || strcmp(v.mig_uid, s->uid) != 0)
			sess_close(p, s, "another migration");
		else if (v.failed)
			sess_close(p, s, "failed");
		else if (!s->cut && (v.completed || strcmp(v.node, s->to) == 0))
			cutover(p, s, 0, "api");
	}
	if (!v.mig || v.failed || v.completed || strcmp(v.src_node, me) != 0 || !v.tgt_node[0] ||
	    strcmp(v.tgt_node, me) == 0 || sess_find(p, v.mig_uid) || !enabled(p))
		return;
	struct vmim_find f;
	if (!vmim_get(p, v.ns, v.mig_uid, &f) || strcmp(f.vmi, v.name) != 0 || f.deleting ||
	    !phase_ready(f.phase))
		return;
	const struct agent_ep *ep = ep_of_pod(p, v.ns, v.src_pod, v.name);
	if (!ep)
		return;
	sess_start(p, &v, ep);
}

static void on_vmim(struct agent_peerct *p, const struct kube_obj *old,
		    const struct kube_obj *obj)
{
	const struct kube_obj *o = obj ? obj : old;
	if (!o || !o->uid)
		return;
	struct sess *s = sess_find(p, o->uid);
	if (s && !obj) {
		sess_close(p, s, "VMIM deleted");
		return;
	}
	struct vmim_find f;
	if (s && vmim_get(p, o->ns, o->uid, &f) && !strcmp(f.phase, "Failed")) {
		sess_close(p, s, "failed");
		return;
	}
	if (!obj)
		return;
	/* the VMIM reaching TargetReady may be what a waiting source needed */
	struct json_doc d;
	struct json_tok *tok = NULL;
	char mem[8192];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_vmim vm;
	char name[NAME_MAX_ + 1] = "";
	if (kube_obj_parse(obj, &d, &tok) == 0 && kube_vmim_view(&d, 0, &vm, &ar, NULL) == 0)
		cpy(name, sizeof(name), vm.vmi_name);
	free(tok);
	struct kube_obj vo;
	if (name[0] && agent_obj_get(p->a, AGENT_K_VMI, obj->ns, name, &vo))
		on_vmi(p, &vo);
}

static void on_track(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		     void *user)
{
	(void)loop;
	(void)fd;
	(void)revents;
	struct agent_peerct *p = user;
	for (unsigned i = 0; i < p->n_s; i++)
		if (p->s[i].io == io)
			drain(p, &p->s[i]);
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct agent_peerct *p = user;
	uint64_t now = ev_now_ms();
	for (unsigned i = 0; i < p->n_s; i++) {
		struct sess *s = &p->s[i];
		if (s->dead)
			continue;
		if (now - s->t_start >= PEERCT_MAX_MS) {
			sess_close(p, s, "timeout");
			continue;
		}
		if (!agent_ep_find_ip(p->a, &s->ip[0])) {
			sess_close(p, s, "source endpoint gone");
			continue;
		}
		if (!s->cut) {
			if (now - s->t_topup >= PEERCT_TOPUP_MS) {
				s->t_topup = now;
				send_delta(p, s, "topup", false);
			}
			continue;
		}
		if (!s->repeated && now - s->t_cut >= PEERCT_REPEAT_MS) {
			s->repeated = true;
			send_full(p, s, "repeat", false);
		}
		if (now - s->t_cut >= PEERCT_FINAL_MS) {
			send_delta(p, s, "final", false);
			sess_close(p, s, "done");
		}
	}
	sweep(p);
}

/* The target's claim: the cut-over of migration m->uid to m->node. */
static void on_claim(void *user, const struct peermsg *m)
{
	struct agent_peerct *p = user;
	if (!m->uid[0])
		return;
	struct sess *s = sess_find(p, m->uid);
	if (s && strcmp(s->to, m->node) == 0)
		cutover(p, s, m->ts_ns, "claim");
}

/* ---- target: applying ------------------------------------------------------------------ */

struct vmi_by_uid {
	const char *uid;     /* wanted */
	struct kube_obj o;   /* match */
	bool found;	     /* o is set */
};

static void vmi_uid_cb(void *user, const struct kube_obj *o)
{
	struct vmi_by_uid *f = user;
	if (!f->found && o->uid && strcmp(o->uid, f->uid) == 0) {
		f->o = *o;
		f->found = true;
	}
}

static void on_ct(void *user, const struct peermsg *m)
{
	struct agent_peerct *p = user;
	uint64_t t_in = now_ns();
	const char *from = m->node;
	unsigned round = m->round & ~PEERMSG_CT_CUTOVER;
	if (!enabled(p)) {
		refuse(p, "off", from, "uid %s: [agent] conntrack_handover is off here", m->uid);
		return;
	}
	struct vmi_by_uid f = { .uid = m->vmi_uid };
	agent_obj_each(p->a, AGENT_K_VMI, vmi_uid_cb, &f);
	struct vmi_info v;
	if (!f.found || !vmi_read(&f.o, &v)) {
		refuse(p, "unknown_vmi", from, "no VMI with uid %s in the informer", m->vmi_uid);
		return;
	}
	const char *me = agent_node(p->a);
	if (!v.mig || strcmp(v.mig_uid, m->uid) != 0 || strcmp(v.tgt_node, me) != 0 ||
	    strcmp(v.src_node, from) != 0 || v.failed) {
		refuse(p, "not_target", from, "VMI %s/%s: migrationState is not migration %s from "
					      "%s to this node (it says %s from %s to %s%s)",
		       v.ns, v.name, m->uid, from, v.mig ? v.mig_uid : "none", v.src_node,
		       v.tgt_node, v.failed ? ", failed" : "");
		return;
	}
	struct vmim_find mf;
	if (!vmim_get(p, v.ns, m->uid, &mf) || strcmp(mf.vmi, v.name) != 0 ||
	    !strcmp(mf.phase, "Failed")) {
		refuse(p, "not_target", from, "VMI %s/%s: no VMIM %s of it that has not failed",
		       v.ns, v.name, m->uid);
		return;
	}
	const struct agent_ep *ep = ep_of_pod(p, v.ns, v.tgt_pod, v.name);
	if (!ep) {
		refuse(p, "no_endpoint", from, "VMI %s/%s: its target pod %s is no endpoint here "
					       "(yet)", v.ns, v.name, v.tgt_pod);
		return;
	}
	struct err e;
	err_clear(&e);
	if (ct_sock(p, &e) < 0) {
		refuse(p, "garbage", from, "%s", e.msg);
		return;
	}
	struct cthand_result res;
	int rc = cthand_apply(p->ct, ep->ip, ep->n_ip, m->ct, m->ct_len, &res, &e);
	uint64_t done = now_ns();
	if (rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -E2BIG) {
		refuse(p, "garbage", from, "%s", e.msg);
		return;
	}
	agent_metric_add(p->m_chunk, "applied", 1);
	agent_metric_add(p->m_ent, "applied", res.applied);
	agent_metric_add(p->m_ent, "failed", res.failed);
	agent_metric_add(p->m_ent, "foreign", res.foreign);
	char extra[ERR_MSG_MAX + 64] = "";
	size_t off = 0;
	bool cut = (m->round & PEERMSG_CT_CUTOVER) != 0;
	if (cut && done > m->ts_ns) {
		agent_metric_observe(p->m_lat, (double)(done - m->ts_ns) / 1e9);
		off += (size_t)snprintf(extra, sizeof(extra), " cutover_to_applied_us=%llu",
					(unsigned long long)((done - m->ts_ns) / 1000u));
	}
	if (rc < 0) {
		for (char *c = e.msg; *c; c++)
			if (*c == '"' || *c == '\\')
				*c = '\'';
		snprintf(extra + off, sizeof(extra) - off, " error=\"%s\"", e.msg);
	}
	log_fields(agent_log(p->a), rc < 0 ? LOG_LVL_WARN : LOG_LVL_INFO,
		   "conntrack hand-over applied",
		   "uid=%s vmi=%s/%s from=%s round=%u cutover=%d chunk=%u of=%u entries=%u "
		   "applied=%u failed=%u foreign=%u apply_us=%llu%s",
		   m->uid, v.ns, v.name, from, round, cut ? 1 : 0, m->chunk, m->chunks,
		   res.entries, res.applied, res.failed, res.foreign,
		   (unsigned long long)((done - t_in) / 1000u), extra);
}

/* ---- hooks, life cycle ----------------------------------------------------------------- */

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)a;
	struct agent_peerct *p = arg;
	if (ev->hook != AGENT_HOOK_OBJECT)
		return;
	switch (ev->kind) {
	case AGENT_K_VMI:
		if (ev->obj)
			on_vmi(p, ev->obj);
		else
			for (unsigned i = 0; i < p->n_s; i++)
				if (ev->old && ev->old->uid &&
				    strcmp(p->s[i].vmi_uid, ev->old->uid) == 0)
					sess_close(p, &p->s[i], "VMI deleted");
		break;
	case AGENT_K_VMIM:
		on_vmim(p, ev->old, ev->obj);
		break;
	case AGENT_K_NODE:
	case AGENT_K_BLOCK:
	case AGENT_K_POD:
	case AGENT_K_HANDLE:
	case AGENT_K_L2NET:
	case AGENT_K_MNETPOL:
	case AGENT_K_NETPOL:
	case AGENT_K_NAMESPACE:
	case AGENT_K_POD_ALL:
	case AGENT_K_COUNT:
		break;
	}
	sweep(p);
}

void *agent_peerct_new(struct agent *a, struct err *e)
{
	struct agent_peerct *p = calloc(1, sizeof(*p));
	if (!p) {
		err_setx(e, ENOMEM, "peerct: out of memory");
		return NULL;
	}
	p->ref_lim.burst = REFUSE_LOG_BURST;
	p->ref_lim.window_ms = REFUSE_LOG_MS;
	p->a = a;
	p->s = calloc(PEERCT_SESS_MAX, sizeof(*p->s));
	if (!p->s) {
		err_setx(e, ENOMEM, "peerct: out of memory");
		goto fail;
	}
	struct agent_metrics *reg = agent_metrics(a);
	static const double bounds[] = { 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3,
					 10e-3,	 20e-3,	 50e-3,	 100e-3, 1.0 };
	if (reg) {
		p->m_ent = agent_metric_new(reg, "kvnet_ct_handover_entries_total",
					    "Conntrack entries of migrating VMs sent (source) and "
					    "applied, failed or foreign (target).",
					    AGENT_M_COUNTER, "result");
		p->m_chunk = agent_metric_new(reg, "kvnet_ct_handover_chunks_total",
					      "Conntrack hand-over datagrams, by result.",
					      AGENT_M_COUNTER, "result");
		p->m_lat = agent_metric_histogram(
			reg, "kvnet_ct_handover_cutover_to_applied_seconds",
			"The announcement (the cut-over round's event time) to its conntrack "
			"chunk applied on the target.",
			bounds, sizeof(bounds) / sizeof(bounds[0]));
		if (!p->m_ent || !p->m_chunk || !p->m_lat) {
			err_setx(e, EEXIST, "peerct: metrics: cannot register (taken?)");
			goto fail;
		}
		static const char *const er[] = { "sent", "applied", "failed", "foreign" };
		static const char *const cr[] = { "sent", "send_error", "applied", "refused" };
		for (unsigned i = 0; i < 4; i++) {
			agent_metric_add(p->m_ent, er[i], 0);
			agent_metric_add(p->m_chunk, cr[i], 0);
		}
	}
	if (!agent_peer_on(a) || agent_peer_listen(a, on_ct, on_claim, p) < 0) {
		log_fields(agent_log(a), LOG_LVL_INFO, "conntrack hand-over off",
			   "reason=\"the peer path is off\"");
		return p;
	}
	agent_want_kind(a, AGENT_K_VMI);
	agent_want_kind(a, AGENT_K_VMIM);
	if (ev_timer_add(agent_loop(a), TICK_MS, TICK_MS, on_tick, p, NULL, &p->tick, e) < 0)
		goto fail;
	ev_timer_disarm(p->tick);
	if (agent_hook_add(a, AGENT_HOOK_OBJECT, on_hook, p, e) < 0)
		goto fail;
	return p;
fail:
	agent_peerct_free(p);
	return NULL;
}

void agent_peerct_free(void *state)
{
	struct agent_peerct *p = state;
	if (!p)
		return;
	agent_hook_del(p->a, AGENT_HOOK_OBJECT, on_hook, p);
	(void)agent_peer_listen(p->a, NULL, NULL, NULL);
	for (unsigned i = 0; i < p->n_s; i++)
		if (!p->s[i].dead) {
			if (p->s[i].io)
				ev_io_del(p->s[i].io);
			cthand_track_free(p->s[i].trk);
		}
	if (p->tick)
		ev_timer_del(p->tick);
	if (p->ct)
		nl_close(p->ct);
	free(p->s);
	free(p);
}
