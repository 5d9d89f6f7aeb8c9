/* l2 — the node side of the L2Networks: plan, apply per trunk, status; see l2.h. */
#include "agent/l2.h"

#include "agent/agent.h"
#include "agent/metrics.h"
#include "agent/servers.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "lib/err.h"
#include "lib/file.h"
#include "lib/log.h"
#include "net/announce.h"
#include "net/link.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define L2_NODE_LABELS_MAX 64	   /* node labels matched against overrides */
#define L2_PATCH_MAX (16 * 1024)   /* one status patch */

/* The module's state. */
struct agent_l2 {
	struct agent *a;				/* the agent (not owned) */
	struct agent_l2_state have[AGENT_L2_MAX];	/* as applied at the last step */
	size_t n_have;					/* how many */
	struct agent_l2_state want[AGENT_L2_MAX];	/* being planned (scratch) */
	struct l2_netdef defs[AGENT_L2_MAX];		/* the networks read (scratch) */
	size_t n_defs;					/* how many */
	struct l2_label labels[L2_NODE_LABELS_MAX];	/* this node's labels (scratch) */
	bool dirty;					/* an L2Network or the node changed */
	bool swept;					/* stale links removed once after sync */
	bool ports_stale;				/* a pod or endpoint of this node came
							 * or went since the last port count */
	uint64_t counted_ms;				/* monotonic ms of that count (0: none) */
	char last_warn[256];				/* the last warning (said once) */
	struct agent_metric *m_nets, *m_ports;		/* kvnet_l2_networks{state}, _ports */
	struct agent_metric *m_mig;			/* kvnet_l2_migration_ports_total{op} */
};

/* ---- plan (pure) ------------------------------------------------------------------- */

static int by_name(const void *x, const void *y)
{
	return strcmp(((const struct agent_l2_state *)x)->name,
		      ((const struct agent_l2_state *)y)->name);
}

size_t agent_l2_plan(const struct l2_netdef *defs, size_t n, const struct l2_node *node,
		     struct agent_l2_state *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < cap; i++) {
		struct agent_l2_state *s = &out[k++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", defs[i].name);
		snprintf(s->net.id, sizeof(s->net.id), "%s", defs[i].id);
		s->net.vid = defs[i].vid;
		s->net.mtu = defs[i].mtu;
		const char *t = l2_netdef_trunk(&defs[i], node);
		snprintf(s->trunk, sizeof(s->trunk), "%s", t ? t : "");
	}
	qsort(out, k, sizeof(*out), by_name);
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < i && out[i].trunk[0]; j++)
			if (!out[j].clash && strcmp(out[j].trunk, out[i].trunk) == 0 &&
			    out[j].net.vid == out[i].net.vid) {
				out[i].clash = true;
				snprintf(out[i].message, sizeof(out[i].message),
					 "VLAN %u on trunk %s is taken by L2Network %s",
					 out[i].net.vid, out[i].trunk, out[j].name);
				break;
			}
	return k;
}

/* ---- status patch (pure) ----------------------------------------------------------- */

static bool str_is(const struct json_doc *d, int i, const char *s)
{
	return i >= 0 && json_type(d, i) == JSON_STRING && json_str_eq(d, i, s, strlen(s));
}

static bool bool_is(const struct json_doc *d, int i, bool v)
{
	bool b;
	return i >= 0 && json_bool(d, i, &b) == 0 && b == v;
}

/* Entry e (an object token) says what st says. */
static bool entry_same(const struct json_doc *d, int e, const struct agent_l2_state *st)
{
	int64_t ports;
	int p = json_get(d, e, "ports"), m = json_get(d, e, "message");
	return str_is(d, json_get(d, e, "trunk"), st->trunk) &&
	       bool_is(d, json_get(d, e, "trunkFound"), st->trunk_found) &&
	       bool_is(d, json_get(d, e, "bridgeReady"), st->bridge_ready) && p >= 0 &&
	       json_int64(d, p, &ports) == 0 && ports == (int64_t)st->ports &&
	       (st->message[0] ? str_is(d, m, st->message) : m < 0);
}

static void entry_write(struct json_w *w, const char *node, const struct agent_l2_state *st)
{
	json_w_obj_begin(w);
	json_w_key(w, "node");
	json_w_str(w, node);
	json_w_key(w, "trunk");
	json_w_str(w, st->trunk);
	json_w_key(w, "trunkFound");
	json_w_bool(w, st->trunk_found);
	json_w_key(w, "bridgeReady");
	json_w_bool(w, st->bridge_ready);
	json_w_key(w, "ports");
	json_w_uint(w, st->ports);
	if (st->message[0]) {
		json_w_key(w, "message");
		json_w_str(w, st->message);
	}
	json_w_obj_end(w);
}

static void op_begin(struct json_w *w, const char *op, const char *path)
{
	json_w_obj_begin(w);
	json_w_key(w, "op");
	json_w_str(w, op);
	json_w_key(w, "path");
	json_w_str(w, path);
}

int agent_l2_status_patch(const struct json_doc *d, int obj, const char *node,
			  const struct agent_l2_state *st, struct json_w *w)
{
	int rv = json_path(d, obj, "metadata.resourceVersion");
	int status = json_get(d, obj, "status");
	int nodes = status >= 0 ? json_get(d, status, "nodes") : -1;
	if (rv < 0 || json_type(d, rv) != JSON_STRING)
		return -EINVAL;
	if (nodes >= 0 && json_type(d, nodes) != JSON_ARRAY && !json_is_null(d, nodes))
		return -EINVAL;
	if (nodes >= 0 && json_is_null(d, nodes))
		nodes = -1;
	int at = -1, e = -1;
	for (unsigned i = 0; nodes >= 0 && (e = json_index(d, nodes, i)) >= 0; i++)
		if (str_is(d, json_get(d, e, "node"), node)) {
			at = (int)i;
			break;
		}
	if (at >= 0 ? st && entry_same(d, e, st) : !st)
		return 0;
	char path[48];
	json_w_arr_begin(w);
	op_begin(w, "test", "/metadata/resourceVersion");
	json_w_key(w, "value");
	json_w_tok(w, d, rv);
	json_w_obj_end(w);
	if (!st) {
		snprintf(path, sizeof(path), "/status/nodes/%d", at);
		op_begin(w, "remove", path);
	} else if (at >= 0) {
		snprintf(path, sizeof(path), "/status/nodes/%d", at);
		op_begin(w, "replace", path);
		json_w_key(w, "value");
		entry_write(w, node, st);
	} else if (nodes >= 0) {
		op_begin(w, "add", "/status/nodes/-");
		json_w_key(w, "value");
		entry_write(w, node, st);
	} else if (status >= 0 && json_type(d, status) == JSON_OBJECT) {
		op_begin(w, "add", "/status/nodes");
		json_w_key(w, "value");
		json_w_arr_begin(w);
		entry_write(w, node, st);
		json_w_arr_end(w);
	} else {
		op_begin(w, "add", "/status");
		json_w_key(w, "value");
		json_w_obj_begin(w);
		json_w_key(w, "nodes");
		json_w_arr_begin(w);
		entry_write(w, node, st);
		json_w_arr_end(w);
		json_w_obj_end(w);
	}
	json_w_obj_end(w);
	json_w_arr_end(w);
	return w->err ? w->err : 1;
}

/* ---- reading the networks ---------------------------------------------------------- */

/* Say msg once (until another warning replaces it). */
static void warn_once(struct agent_l2 *m, const char *msg)
{
	if (strcmp(m->last_warn, msg) == 0)
		return;
	snprintf(m->last_warn, sizeof(m->last_warn), "%s", msg);
	log_warnx(agent_log(m->a), "l2: %s", msg);
}

static void add_def(struct agent_l2 *m, const char *text, size_t len, const char *from)
{
	struct err e = { 0 };
	if (m->n_defs >= AGENT_L2_MAX) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s: more than %d L2Networks: ignored", from,
			 AGENT_L2_MAX);
		warn_once(m, msg);
		return;
	}
	if (l2_netdef_parse_text(text, len, &m->defs[m->n_defs], &e) < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: %s", from, e.msg);
		warn_once(m, msg);
		return;
	}
	m->n_defs++;
}

static void def_obj(void *user, const struct kube_obj *o)
{
	struct agent_l2 *m = user;
	char from[96];
	snprintf(from, sizeof(from), "L2Network %s", o->name);
	add_def(m, o->json, o->len, from);
}

/* The file datastore's state_dir/l2networks/\*.json. */
static void read_files(struct agent_l2 *m)
{
	char dir[CONF_STR_MAX + 16], path[CONF_STR_MAX + 300];
	snprintf(dir, sizeof(dir), "%s/%s", agent_conf(m->a)->datastore.state_dir, L2_DOC_DIR);
	DIR *dp = opendir(dir);
	if (!dp)
		return; /* none: no L2Networks on this node */
	struct dirent *de;
	while ((de = readdir(dp))) {
		size_t nl = strlen(de->d_name), len;
		if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		char *text;
		struct err e = { 0 };
		if (file_read(path, L2_DOC_MAX, &text, &len, &e) < 0) {
			warn_once(m, e.msg);
			continue;
		}
		add_def(m, text, len, path);
		free(text);
	}
	closedir(dp);
}

/* This node's labels into m->labels; their count. */
static unsigned node_labels(struct agent_l2 *m)
{
	struct kube_obj o;
	struct json_doc d;
	struct json_tok *tok = NULL;
	unsigned n = 0;
	if (!agent_obj_get(m->a, AGENT_K_NODE, NULL, agent_node(m->a), &o) ||
	    kube_obj_parse(&o, &d, &tok) < 0)
		return 0;
	int labels = json_path(&d, 0, "metadata.labels");
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &d, labels);
	while (labels >= 0 && n < L2_NODE_LABELS_MAX && json_iter_next(&it, &k, &v))
		if (json_str(&d, k, m->labels[n].k, sizeof(m->labels[n].k)) == 0 &&
		    json_str(&d, v, m->labels[n].v, sizeof(m->labels[n].v)) == 0)
			n++;
	free(tok);
	return n;
}

/* ---- applying ---------------------------------------------------------------------- */

static const struct agent_l2_state *find(const struct agent_l2_state *v, size_t n,
					 const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].net.id, id) == 0)
			return &v[i];
	return NULL;
}

/* The links of network s are all there. */
static bool links_there(struct nl_sock *nl, const struct agent_l2_state *s)
{
	char names[3][16];
	struct link_info li;
	l2_bridge_name(s->net.id, names[0]);
	l2_uplink_name(s->net.id, names[1]);
	l2_trunk_side_name(s->net.id, names[2]);
	for (int i = 0; i < 3; i++)
		if (link_get(nl, names[i], &li, NULL) < 0)
			return false;
	return true;
}

/* Does trunk t need applying: its set of networks changed, or one is not whole. */
static bool trunk_stale(struct agent_l2 *m, const char *t, size_t nw)
{
	if (m->dirty)
		return true;
	size_t nh = 0, nn = 0;
	for (size_t i = 0; i < m->n_have; i++)
		if (strcmp(m->have[i].trunk, t) == 0 && !m->have[i].clash)
			nh++;
	for (size_t i = 0; i < nw; i++) {
		const struct agent_l2_state *w = &m->want[i];
		if (strcmp(w->trunk, t) != 0 || w->clash)
			continue;
		nn++;
		const struct agent_l2_state *h = find(m->have, m->n_have, w->net.id);
		if (!h || !h->bridge_ready || strcmp(h->trunk, t) != 0 || h->clash ||
		    h->net.vid != w->net.vid || h->net.mtu != w->net.mtu ||
		    !links_there(agent_nl(m->a), w))
			return true;
	}
	return nh != nn;
}

/* Apply trunk t with the networks of want on it. True when it was applied now. */
static bool apply_trunk(struct agent_l2 *m, const char *t, size_t nw)
{
	struct nl_sock *nl = agent_nl(m->a);
	struct link_info tl;
	struct l2_net nets[AGENT_L2_MAX];
	size_t n = 0;
	bool found = link_get(nl, t, &tl, NULL) == 0;
	for (size_t i = 0; i < nw; i++)
		if (strcmp(m->want[i].trunk, t) == 0) {
			m->want[i].trunk_found = found;
			if (!found && !m->want[i].clash)
				snprintf(m->want[i].message, sizeof(m->want[i].message),
					 "trunk %s not found on this node", t);
			if (found && !m->want[i].clash)
				nets[n++] = m->want[i].net;
		}
	if (!found)
		return false;
	struct err e = { 0 };
	int rc = 0;
	bool stale = trunk_stale(m, t, nw);
	if (stale) {
		rc = n ? l2_trunk_apply(nl, t, nets, n, &e) : 0;
		if (rc < 0)
			log_warnx(agent_log(m->a), "l2: %s", e.msg);
		else if (n)
			log_info(agent_log(m->a), "l2: trunk %s carries %zu L2Network(s)", t, n);
	}
	for (size_t i = 0; i < nw; i++) {
		struct agent_l2_state *w = &m->want[i];
		if (strcmp(w->trunk, t) != 0 || w->clash)
			continue;
		w->bridge_ready = rc == 0;
		if (rc < 0)
			snprintf(w->message, sizeof(w->message), "%s", e.msg);
	}
	return stale;
}

/* Remove the links of a network no longer carried (gone, moved to another trunk, or
 * clashing now), after its trunk was applied without it; a trunk left with nothing loses
 * kvnet's program. */
static void remove_gone(struct agent_l2 *m, size_t nw)
{
	struct nl_sock *nl = agent_nl(m->a);
	for (size_t i = 0; i < m->n_have; i++) {
		const struct agent_l2_state *h = &m->have[i];
		if (!h->trunk[0] || h->clash || !h->trunk_found)
			continue;
		const struct agent_l2_state *w = find(m->want, nw, h->net.id);
		if (w && !w->clash && strcmp(w->trunk, h->trunk) == 0)
			continue;
		bool used = false;
		for (size_t j = 0; j < nw; j++)
			used |= !m->want[j].clash && strcmp(m->want[j].trunk, h->trunk) == 0;
		struct err e = { 0 };
		if (!used && l2_trunk_release(nl, h->trunk, &e) < 0)
			log_warnx(agent_log(m->a), "l2: %s", e.msg);
		if (w && !w->clash && w->trunk_found)
			continue; /* moved to another trunk: apply_trunk rebuilt its links there */
		if (l2_net_remove(nl, h->net.id, &e) < 0)
			log_warnx(agent_log(m->a), "l2: %s", e.msg);
		else
			log_info(agent_log(m->a), "l2: L2Network %s (VLAN %u) removed from trunk %s",
				 h->name, h->net.vid, h->trunk);
	}
}

/* Links kvl-ID of no network at all (deleted while the agent was down). */
struct sweep {
	struct agent_l2 *m;	 /* the module */
	size_t nw;		 /* networks planned */
	char ids[AGENT_L2_MAX][L2_ID_MAX + 1]; /* stale ids found */
	size_t n;		 /* how many */
};

static int sweep_one(const struct link_info *li, void *arg, struct err *e)
{
	struct sweep *s = arg;
	(void)e;
	if (strncmp(li->name, "kvl-", 4) != 0 || strcmp(li->kind, "bridge") != 0 ||
	    strlen(li->name + 4) > L2_ID_MAX || find(s->m->want, s->nw, li->name + 4) ||
	    s->n >= AGENT_L2_MAX)
		return 0;
	snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", li->name + 4);
	return 0;
}

static void sweep(struct agent_l2 *m, size_t nw)
{
	struct sweep *s = calloc(1, sizeof(*s));
	struct err e = { 0 };
	if (!s)
		return;
	s->m = m;
	s->nw = nw;
	if (link_dump(agent_nl(m->a), sweep_one, s, &e) < 0) {
		free(s);
		return; /* changed meanwhile: the next reconcile sweeps */
	}
	for (size_t i = 0; i < s->n; i++) {
		if (l2_net_remove(agent_nl(m->a), s->ids[i], &e) < 0)
			log_warnx(agent_log(m->a), "l2: stale network %s: %s", s->ids[i], e.msg);
		else
			log_info(agent_log(m->a), "l2: removed kvl-%s: no L2Network has it",
				 s->ids[i]);
	}
	m->swept = true;
	free(s);
}

/* Ports: links enslaved to a ready network's bridge, its uplink veth not counted. */
struct ports {
	struct agent_l2_state *v;  /* want */
	size_t n;		   /* how many */
	int br[AGENT_L2_MAX];	   /* bridge ifindex per network (0: none) */
};

static int count_one(const struct link_info *li, void *arg, struct err *e)
{
	struct ports *p = arg;
	(void)e;
	for (size_t i = 0; i < p->n && li->master; i++)
		if (p->br[i] == li->master && strncmp(li->name, "kvu-", 4) != 0)
			p->v[i].ports++;
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The networks planned keep the port counts they had at the last step. */
static void keep_counts(struct agent_l2 *m, size_t nw)
{
	for (size_t i = 0; i < nw; i++) {
		const struct agent_l2_state *h = find(m->have, m->n_have, m->want[i].net.id);
		m->want[i].ports = h && h->bridge_ready && m->want[i].bridge_ready ? h->ports : 0;
	}
}

/* Count the ports (one dump of every link) only when they may have changed: the networks
 * or the node changed (m->dirty), a pod or endpoint of this node came or went, a network
 * was (re)applied, or a resync period passed since the last count; else keep it. */
static void count_ports(struct agent_l2 *m, size_t nw, bool applied)
{
	uint64_t period = (uint64_t)agent_conf(m->a)->agent.resync_seconds * 1000u;
	if (!m->dirty && !m->ports_stale && !applied && m->counted_ms &&
	    mono_ms() - m->counted_ms < period) {
		keep_counts(m, nw);
		return;
	}
	struct ports p = { .v = m->want, .n = nw };
	char br[16];
	for (size_t i = 0; i < nw; i++) {
		struct link_info li;
		l2_bridge_name(m->want[i].net.id, br);
		m->want[i].ports = 0;
		if (m->want[i].bridge_ready && link_get(agent_nl(m->a), br, &li, NULL) == 0)
			p.br[i] = li.index;
	}
	if (link_dump(agent_nl(m->a), count_one, &p, NULL) < 0) {
		keep_counts(m, nw); /* changed meanwhile: keep the last count */
		return;
	}
	m->ports_stale = false;
	m->counted_ms = mono_ms();
}

/* ---- status ------------------------------------------------------------------------ */

static void status_one(void *user, const struct kube_obj *o)
{
	struct agent_l2 *m = user;
	struct json_doc d;
	struct json_tok *tok = NULL;
	const struct agent_l2_state *st = NULL;
	for (size_t i = 0; i < m->n_have && !st; i++)
		if (strcmp(m->have[i].name, o->name) == 0 && m->have[i].trunk[0])
			st = &m->have[i];
	if (kube_obj_parse(o, &d, &tok) < 0)
		return;
	struct json_w w;
	json_w_init_grow(&w, L2_PATCH_MAX);
	int rc = agent_l2_status_patch(&d, 0, agent_node(m->a), st, &w);
	free(tok);
	if (rc == 1) {
		struct kube_resp resp = { 0 };
		struct err e = { 0 };
		if (kube_patch(agent_kube(m->a), &kube_res_l2networks, NULL, o->name, "status",
			       KUBE_PATCH_JSON, w.buf, w.len, &resp, &e) < 0) {
			/* a lost race (another node wrote first): the next reconcile retries */
			if (resp.status == 409 || resp.status == 422)
				log_msg(agent_log(m->a), LOG_LVL_DEBUG,
					"l2: status of %s: %s (retried)", o->name, e.msg);
			else
				log_warnx(agent_log(m->a), "l2: status of %s: %s", o->name, e.msg);
		}
		kube_resp_free(&resp);
	}
	json_w_free(&w);
}

/* ---- live migration ---------------------------------------------------------------- */

static const char *ts_fmt(uint64_t ns, char *buf, size_t cap)
{
	snprintf(buf, cap, "%llu.%06llu", (unsigned long long)(ns / 1000000000u),
		 (unsigned long long)(ns % 1000000000u / 1000u));
	return buf;
}

static uint64_t real_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The L2 ports of one pod: links in one of this node's bridges whose alias names it. */
struct pod_ports {
	struct agent_l2 *m;			/* the module */
	const char *uid;			/* the pod */
	int br[AGENT_L2_MAX];			/* bridge ifindex per have[] entry (0: none) */
	struct {
		int ifindex;			/* the port */
		char name[16];			/* its name */
		struct l2_port_id id;		/* its alias */
		const struct agent_l2_state *net; /* its network */
	} p[8];
	size_t n;				/* ports found */
};

static int pod_port_one(const struct link_info *li, void *arg, struct err *e)
{
	struct pod_ports *q = arg;
	struct l2_port_id id;
	(void)e;
	if (!li->master || !li->alias[0] || q->n == 8 || l2_alias_parse(li->alias, &id) < 0 ||
	    strcmp(id.uid, q->uid) != 0)
		return 0;
	for (size_t i = 0; i < q->m->n_have; i++)
		if (q->br[i] && q->br[i] == li->master) {
			q->p[q->n].ifindex = li->index;
			snprintf(q->p[q->n].name, sizeof(q->p[q->n].name), "%s", li->name);
			q->p[q->n].id = id;
			q->p[q->n].net = &q->m->have[i];
			q->n++;
			break;
		}
	return 0;
}

/* Open one port and announce the VM there. */
static void port_open(struct agent_l2 *m, const struct mig_ep *me, const struct pod_ports *q,
		      size_t k)
{
	struct err e = { 0 };
	char t1[32], t2[32], macs[18];
	const struct l2_port_id *id = &q->p[k].id;
	if (l2_port_open(agent_nl(m->a), q->p[k].ifindex, &e) < 0) {
		log_warnx(agent_log(m->a), "l2: migration of %s/%s: %s", me->ns, me->vmi, e.msg);
		return;
	}
	uint64_t opened = real_ns();
	if (l2_port_learn(agent_nl(m->a), q->p[k].ifindex, id->mac, &e) < 0)
		log_warnx(agent_log(m->a), "l2: migration of %s/%s: %s", me->ns, me->vmi, e.msg);
	struct l2_relearn_sent sent = { 0 };
	if (l2_relearn(q->p[k].net->net.id, id->mac, id->ips, id->n_ips, &sent, &e) < 0)
		log_warnx(agent_log(m->a), "l2: migration of %s/%s: %s", me->ns, me->vmi, e.msg);
	log_fields(agent_log(m->a), LOG_LVL_INFO, "l2 port open",
		   "vmi=%s/%s pod=%s port=%s network=%s vlan=%u mac=%s event_ts=%s ts=%s garp=%u "
		   "na=%u rarp=%u", me->ns, me->vmi, me->pod, q->p[k].name, q->p[k].net->name,
		   q->p[k].net->net.vid, ann_mac_fmt(id->mac, macs),
		   ts_fmt(me->since_ns, t1, sizeof(t1)), ts_fmt(opened, t2, sizeof(t2)), sent.garp,
		   sent.na, sent.rarp);
	agent_metric_add(m->m_mig, "open", 1);
}

/* Announce the VM again from an open port (the claim was confirmed: a source port that
 * is still open may have made the switch learn the VM's MAC there meanwhile). */
static void port_announce(struct agent_l2 *m, const struct mig_ep *me,
			  const struct pod_ports *q, size_t k)
{
	struct err e = { 0 };
	char t1[32], t2[32], macs[18];
	const struct l2_port_id *id = &q->p[k].id;
	struct l2_relearn_sent sent = { 0 };
	if (l2_relearn(q->p[k].net->net.id, id->mac, id->ips, id->n_ips, &sent, &e) < 0)
		log_warnx(agent_log(m->a), "l2: migration of %s/%s: %s", me->ns, me->vmi, e.msg);
	log_fields(agent_log(m->a), LOG_LVL_INFO, "l2 port announced",
		   "vmi=%s/%s pod=%s port=%s network=%s vlan=%u mac=%s event_ts=%s ts=%s garp=%u "
		   "na=%u rarp=%u", me->ns, me->vmi, me->pod, q->p[k].name, q->p[k].net->name,
		   q->p[k].net->net.vid, ann_mac_fmt(id->mac, macs),
		   ts_fmt(me->since_ns, t1, sizeof(t1)), ts_fmt(real_ns(), t2, sizeof(t2)),
		   sent.garp, sent.na, sent.rarp);
}

static void port_close(struct agent_l2 *m, const struct mig_ep *me, const struct pod_ports *q,
		       size_t k)
{
	struct err e = { 0 };
	char t1[32], t2[32], macs[18];
	if (l2_port_close(agent_nl(m->a), q->p[k].ifindex, &e) < 0) {
		log_warnx(agent_log(m->a), "l2: migration of %s/%s: %s", me->ns, me->vmi, e.msg);
		return;
	}
	log_fields(agent_log(m->a), LOG_LVL_INFO, "l2 port closed",
		   "vmi=%s/%s pod=%s port=%s network=%s vlan=%u mac=%s event_ts=%s ts=%s", me->ns,
		   me->vmi, me->pod, q->p[k].name, q->p[k].net->name, q->p[k].net->net.vid,
		   ann_mac_fmt(q->p[k].id.mac, macs), ts_fmt(me->since_ns, t1, sizeof(t1)),
		   ts_fmt(real_ns(), t2, sizeof(t2)));
	agent_metric_add(m->m_mig, "close", 1);
}

/* Do act (agent_l2_port_step: 1 open, -1 close, 2 announce again) to every L2 port of
 * pod uid on this node; me names the VM for the logs. */
static void pod_ports_set(struct agent_l2 *m, const char *uid, const struct mig_ep *me,
			  int act)
{
	struct agent *a = m->a;
	struct pod_ports *q = calloc(1, sizeof(*q));
	if (!q) {
		log_warnx(agent_log(a), "l2: migration of %s/%s: out of memory", me->ns, me->vmi);
		return;
	}
	q->m = m;
	q->uid = uid;
	char br[16];
	struct link_info bl;
	for (size_t i = 0; i < m->n_have; i++) {
		l2_bridge_name(m->have[i].net.id, br);
		if (m->have[i].trunk[0] && m->have[i].bridge_ready &&
		    link_get(agent_nl(a), br, &bl, NULL) == 0)
			q->br[i] = bl.index;
	}
	struct err e = { 0 };
	int rc = -EINTR;
	for (int t = 0; t < 3 && rc == -EINTR; t++) {
		q->n = 0;
		rc = link_dump(agent_nl(a), pod_port_one, q, &e);
	}
	if (rc < 0)
		log_warnx(agent_log(a), "l2: migration of %s/%s: its L2 ports: %s", me->ns, me->vmi,
			  e.msg);
	for (size_t k = 0; k < q->n; k++) {
		if (act == 1)
			port_open(m, me, q, k);
		else if (act == 2)
			port_announce(m, me, q, k);
		else
			port_close(m, me, q, k);
	}
	free(q);
}

void agent_l2_migrated(struct agent *a, const struct agent_ep *ep, const struct mig_ep *me,
		       enum mig_state from, enum mig_state to)
{
	struct agent_l2 *m = agent_module(a, "l2");
	if (!m || !ep || !ep->uid[0] || from == to)
		return;
	int act = agent_l2_port_step(from, to);
	if (act)
		pod_ports_set(m, ep->uid, me, act);
}

int agent_l2_port_step(enum mig_state from, enum mig_state to)
{
	if (from == to)
		return 0;
	/* open as soon as the VM is routed here: at the claim (the owner CAS through the API
	 * follows; a refused claim goes back to MIG_TARGET and closes), or straight to live
	 * or time-wait (the VMIM succeeded before any announcement or annotation) */
	if (to == MIG_CLAIMING || (to == MIG_LIVE && from != MIG_CLAIMING) ||
	    (to == MIG_TIMEWAIT && from == MIG_TARGET) || (to == MIG_BASE && from == MIG_SOURCE))
		return 1;
	if (to == MIG_TARGET || to == MIG_SOURCE || to == MIG_RETIRED)
		return -1;
	if (to == MIG_LIVE && from == MIG_CLAIMING)
		return 2; /* confirmed: announce again (the source may still have been open) */
	return 0;
}

/* ---- VMs with only L2 interfaces ----------------------------------------------------
 * A VM pod with no interface on kvnet's pod network has no endpoint here, so no hand-over
 * machine tells this module anything. Its L2 ports follow KubeVirt's objects instead:
 *   the target pod (label kubevirt.io/migrationJobUID) on this node gets the annotation
 *     kubevirt.io/migration-target-ready-timestamp (the domain runs here): its ports open
 *     and the VM is announced on the trunk (port_open);
 *   the VMI's status.nodeName turns to another node: the ports of its pods here close.
 * A pod that has an endpoint is left to agent_l2_migrated. */

#define L2_TARGET_READY "kubevirt.io/migration-target-ready-timestamp"

/* True when an endpoint of this node belongs to pod uid. */
static bool has_endpoint(struct agent *a, const char *uid)
{
	for (unsigned i = 0; i < agent_ep_count(a); i++)
		if (strcmp(agent_ep_at(a, i)->uid, uid) == 0)
			return true;
	return false;
}

/* What the L2-only path reads of a pod or VMI. */
struct kv_facts {
	char ns[MIG_NAME_MAX + 1];	/* namespace */
	char name[MIG_NAME_MAX + 1];	/* name */
	char uid[MIG_UID_MAX + 1];	/* metadata.uid */
	char vmi[MIG_NAME_MAX + 1];	/* pod: annotation kubevirt.io/domain */
	char vmi_uid[MIG_UID_MAX + 1];	/* pod: label kubevirt.io/created-by */
	bool target;			/* pod: label kubevirt.io/migrationJobUID */
	bool ready;			/* pod: the target-ready annotation */
	char node[MIG_NAME_MAX + 1];	/* VMI: status.nodeName */
};

static void str_at(const struct json_doc *d, int obj, const char *k, char *out, size_t cap)
{
	int i = obj >= 0 ? json_get(d, obj, k) : -1;
	if (i < 0 || json_type(d, i) != JSON_STRING || json_str(d, i, out, cap) < 0)
		out[0] = 0;
}

/* The facts of o (a pod or a VMI). 0, or -1 when it does not parse. */
static int kv_read(const struct kube_obj *o, struct kv_facts *f)
{
	struct json_doc d;
	struct json_tok *tok = NULL;
	memset(f, 0, sizeof(*f));
	if (kube_obj_parse(o, &d, &tok) < 0)
		return -1;
	int md = json_get(&d, 0, "metadata");
	int ann = md >= 0 ? json_get(&d, md, "annotations") : -1;
	int lab = md >= 0 ? json_get(&d, md, "labels") : -1;
	int status = json_get(&d, 0, "status");
	str_at(&d, md, "namespace", f->ns, sizeof(f->ns));
	str_at(&d, md, "name", f->name, sizeof(f->name));
	str_at(&d, md, "uid", f->uid, sizeof(f->uid));
	str_at(&d, ann, "kubevirt.io/domain", f->vmi, sizeof(f->vmi));
	str_at(&d, lab, "kubevirt.io/created-by", f->vmi_uid, sizeof(f->vmi_uid));
	str_at(&d, status, "nodeName", f->node, sizeof(f->node));
	f->target = lab >= 0 && json_get(&d, lab, "kubevirt.io/migrationJobUID") >= 0;
	f->ready = ann >= 0 && json_get(&d, ann, L2_TARGET_READY) >= 0;
	free(tok);
	return 0;
}

static void l2only_set(struct agent_l2 *m, const struct kv_facts *pod, bool open)
{
	struct mig_ep me;
	memset(&me, 0, sizeof(me));
	snprintf(me.ns, sizeof(me.ns), "%s", pod->ns);
	snprintf(me.pod, sizeof(me.pod), "%s", pod->name);
	snprintf(me.vmi, sizeof(me.vmi), "%s", pod->vmi);
	me.since_ns = real_ns();
	pod_ports_set(m, pod->uid, &me, open ? 1 : -1);
}

/* A pod of this node changed: a target of an L2-only VM became ready. */
static void l2only_pod(struct agent_l2 *m, const struct kube_obj *old, const struct kube_obj *o)
{
	struct kv_facts now, was;
	if (!o || kv_read(o, &now) < 0 || !now.vmi[0] || !now.target || !now.ready ||
	    (old && kv_read(old, &was) == 0 && was.ready) || has_endpoint(m->a, now.uid))
		return;
	l2only_set(m, &now, true);
}

/* Pods of this node that run VMI vmi_uid (and have no endpoint): closed. */
struct l2only_close {
	struct agent_l2 *m;	/* the module */
	const char *vmi_uid;	/* the VMI */
};

static void l2only_close_one(void *user, const struct kube_obj *o)
{
	struct l2only_close *c = user;
	struct kv_facts p;
	if (kv_read(o, &p) == 0 && p.vmi[0] && strcmp(p.vmi_uid, c->vmi_uid) == 0 &&
	    !has_endpoint(c->m->a, p.uid))
		l2only_set(c->m, &p, false);
}

/* A VMI changed: when it moved to another node, its pods here close their L2 ports. */
static void l2only_vmi(struct agent_l2 *m, const struct kube_obj *old, const struct kube_obj *o)
{
	struct kv_facts now, was;
	if (!o || kv_read(o, &now) < 0 || !now.node[0] || !now.uid[0] ||
	    strcmp(now.node, agent_node(m->a)) == 0 ||
	    (old && kv_read(old, &was) == 0 && strcmp(was.node, now.node) == 0))
		return;
	struct l2only_close c = { .m = m, .vmi_uid = now.uid };
	agent_obj_each(m->a, AGENT_K_POD, l2only_close_one, &c);
}

/* ---- the step at every reconcile --------------------------------------------------- */

static void step(struct agent_l2 *m)
{
	bool kube = agent_kube(m->a) != NULL;
	if (kube && (!agent_obj_synced(m->a, AGENT_K_L2NET) ||
		     !agent_obj_synced(m->a, AGENT_K_NODE)))
		return; /* never remove what a LIST has not shown yet */
	m->n_defs = 0;
	if (kube)
		agent_obj_each(m->a, AGENT_K_L2NET, def_obj, m);
	else
		read_files(m);
	struct l2_node node = { .name = agent_node(m->a), .labels = m->labels,
				.n_labels = kube ? node_labels(m) : 0 };
	size_t nw = agent_l2_plan(m->defs, m->n_defs, &node, m->want, AGENT_L2_MAX);
	bool applied = false;
	for (size_t i = 0; i < nw; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			seen |= strcmp(m->want[j].trunk, m->want[i].trunk) == 0;
		if (m->want[i].trunk[0] && !seen)
			applied |= apply_trunk(m, m->want[i].trunk, nw);
	}
	remove_gone(m, nw);
	if (!m->swept)
		sweep(m, nw);
	count_ports(m, nw, applied);
	memcpy(m->have, m->want, nw * sizeof(m->want[0]));
	m->n_have = nw;
	m->dirty = false;
	unsigned ready = 0, failed = 0, absent = 0, ports = 0;
	for (size_t i = 0; i < nw; i++) {
		const struct agent_l2_state *s = &m->have[i];
		ready += s->trunk[0] && s->bridge_ready;
		failed += s->trunk[0] && !s->bridge_ready;
		absent += !s->trunk[0];
		ports += s->ports;
	}
	agent_metric_set(m->m_nets, "ready", ready);
	agent_metric_set(m->m_nets, "failed", failed);
	agent_metric_set(m->m_nets, "absent", absent);
	agent_metric_set(m->m_ports, NULL, ports);
	if (kube)
		agent_obj_each(m->a, AGENT_K_L2NET, status_one, m);
}

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	struct agent_l2 *m = arg;
	switch (ev->hook) {
	case AGENT_HOOK_OBJECT:
		if (ev->kind == AGENT_K_L2NET ||
		    (ev->kind == AGENT_K_NODE && strcmp((ev->obj ? ev->obj : ev->old)->name,
							agent_node(a)) == 0)) {
			m->dirty = true;
			agent_reconcile_soon(a);
		} else if (ev->kind == AGENT_K_POD) { /* a pod of this node: its L2 ports */
			m->ports_stale = true;
			l2only_pod(m, ev->old, ev->obj);
			agent_reconcile_soon(a);
		} else if (ev->kind == AGENT_K_VMI) {
			l2only_vmi(m, ev->old, ev->obj);
		}
		break;
	case AGENT_HOOK_RECONCILED:
		step(m);
		break;
	case AGENT_HOOK_EP_ADDED:
	case AGENT_HOOK_EP_REMOVED:
		m->ports_stale = true;
		break;
	case AGENT_HOOK_COUNT:
		break;
	}
}

static void http_l2(void *arg, struct agent *a, const char *query,
		    struct agent_http_answer *ans)
{
	struct agent_l2 *m = arg;
	struct json_w w;
	(void)query;
	json_w_init_grow(&w, 256 * 1024);
	json_w_obj_begin(&w);
	json_w_key(&w, "node");
	json_w_str(&w, agent_node(a));
	json_w_key(&w, "networks");
	json_w_arr_begin(&w);
	for (size_t i = 0; i < m->n_have; i++) {
		const struct agent_l2_state *s = &m->have[i];
		json_w_obj_begin(&w);
		json_w_key(&w, "name");
		json_w_str(&w, s->name);
		json_w_key(&w, "vlan");
		json_w_uint(&w, s->net.vid);
		json_w_key(&w, "bridge");
		char br[16];
		l2_bridge_name(s->net.id, br);
		json_w_str(&w, br);
		json_w_key(&w, "status");
		entry_write(&w, agent_node(a), s);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	if (w.err) {
		ans->status = 500;
		snprintf(ans->text, sizeof(ans->text), "l2: %s\n", w.why ? w.why : "write");
		json_w_free(&w);
		return;
	}
	ans->body = json_w_take(&w, &ans->blen);
	ans->ctype = "application/json";
}

void *agent_l2_new(struct agent *a, struct err *e)
{
	struct agent_l2 *m = calloc(1, sizeof(*m));
	if (!m) {
		err_set(e, ENOMEM, "l2 module");
		return NULL;
	}
	m->a = a;
	m->dirty = true;
	struct agent_metrics *r = agent_metrics(a);
	m->m_nets = agent_metric_new(r, "kvnet_l2_networks",
				     "L2Networks by state on this node: ready, failed (its trunk "
				     "is missing or could not be set up), absent (no trunk here).",
				     AGENT_M_GAUGE, "state");
	m->m_ports = agent_metric_new(r, "kvnet_l2_ports", "VM ports in kvnet's L2 bridges.",
				      AGENT_M_GAUGE, NULL);
	m->m_mig = agent_metric_new(r, "kvnet_l2_migration_ports_total",
				    "L2 VM ports opened (a migration target the VM announced "
				    "itself on, a rolled-back source) and closed (a source after "
				    "the hand-over, a target before it).", AGENT_M_COUNTER, "op");
	if (!m->m_nets || !m->m_ports || !m->m_mig) {
		err_setx(e, EEXIST, "l2 module: metrics kvnet_l2_* taken");
		free(m);
		return NULL;
	}
	if (agent_hook_add(a, AGENT_HOOK_OBJECT, on_hook, m, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_RECONCILED, on_hook, m, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_EP_ADDED, on_hook, m, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_EP_REMOVED, on_hook, m, e) < 0 ||
	    agent_http_add(a, "/l2networks", http_l2, m, e) < 0) {
		agent_l2_free(m);
		return NULL;
	}
	agent_want_kind(a, AGENT_K_L2NET);
	agent_want_kind(a, AGENT_K_NODE);
	agent_want_kind(a, AGENT_K_POD);
	agent_want_kind(a, AGENT_K_VMI);
	return m;
}

void agent_l2_free(void *state)
{
	struct agent_l2 *m = state;
	if (!m)
		return;
	agent_hook_del(m->a, AGENT_HOOK_OBJECT, on_hook, m);
	agent_hook_del(m->a, AGENT_HOOK_RECONCILED, on_hook, m);
	agent_hook_del(m->a, AGENT_HOOK_EP_ADDED, on_hook, m);
	agent_hook_del(m->a, AGENT_HOOK_EP_REMOVED, on_hook, m);
	agent_http_del(m->a, "/l2networks");
	free(m);
}
