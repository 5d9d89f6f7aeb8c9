/* endpoints — the endpoint table and its files (see endpoints.h). */
#include "agent/endpoints.h"

#include "agent/proto.h"
#include "agent/reconcile.h"
#include "lib/err.h"
#include "lib/log.h"
#include "net/nl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* An endpoint and what the agent tracks about it (ep first: agent_ep* <-> slot*). */
struct ep_slot {
	struct agent_ep ep; /* the endpoint */
	unsigned gates;	    /* "programmed" gate bits (agent_eps_gate_set) */
	bool routes_ok;	    /* a full reconcile succeeded while it existed */
};

struct agent_eps {
	char dir[4096];			     /* endpoints directory */
	struct log *log;		     /* logger (not owned) */
	struct agent_eps_notify notify;	     /* the owner's callbacks */
	void *user;			     /* their argument */
	char node[IPAM_NAME_MAX + 1];	     /* identity written into files */
	char datastore[AGENT_DATASTORE_MAX]; /* ditto */
	struct ep_slot **v;		     /* endpoints (owned) */
	unsigned n, cap;		     /* used / allocated */
};

static struct ep_slot *slot_of(struct agent_ep *ep)
{
	return (struct ep_slot *)ep;
}

struct agent_eps *agent_eps_new(const char *dir, struct log *log,
				const struct agent_eps_notify *notify, void *user)
{
	struct agent_eps *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	t->log = log;
	if (notify)
		t->notify = *notify;
	t->user = user;
	return t;
}

void agent_eps_free(struct agent_eps *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	free(t);
}

void agent_eps_set_identity(struct agent_eps *t, const char *node, const char *datastore)
{
	snprintf(t->node, sizeof(t->node), "%s", node);
	snprintf(t->datastore, sizeof(t->datastore), "%s", datastore);
}

struct agent_ep *agent_eps_find(const struct agent_eps *t, const char *cid,
				const char *ifname)
{
	for (unsigned i = 0; i < t->n; i++)
		if (strcmp(t->v[i]->ep.cid, cid) == 0 && strcmp(t->v[i]->ep.ifname, ifname) == 0)
			return &t->v[i]->ep;
	return NULL;
}

struct agent_ep *agent_eps_find_ip(const struct agent_eps *t, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < t->n; i++)
		for (unsigned k = 0; k < t->v[i]->ep.n_ip; k++)
			if (ip_eq(&t->v[i]->ep.ip[k], ip))
				return &t->v[i]->ep;
	return NULL;
}

unsigned agent_eps_count(const struct agent_eps *t) { return t->n; }

struct agent_ep *agent_eps_at(const struct agent_eps *t, unsigned i)
{
	return i < t->n ? &t->v[i]->ep : NULL;
}

void agent_eps_gate_set(struct agent_ep *ep, unsigned bits)
{
	slot_of(ep)->gates |= bits;
}

void agent_eps_gate_clear(struct agent_ep *ep, unsigned bits)
{
	slot_of(ep)->gates &= ~bits;
}

void agent_eps_routes_ok(struct agent_eps *t)
{
	for (unsigned i = 0; i < t->n; i++)
		t->v[i]->routes_ok = true;
}

bool agent_eps_programmed(const struct agent_ep *ep)
{
	const struct ep_slot *s = (const struct ep_slot *)ep;
	return s->routes_ok && s->gates == 0 && (s->ep.target || s->ep.ifindex > 0);
}

/* File name of an endpoint in the directory. */
static int ep_path(const struct agent_eps *t, const struct agent_ep *ep, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s_%s.json", t->dir, ep->cid, ep->ifname);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int agent_eps_save(struct agent_eps *t, const struct agent_ep *ep, struct err *e)
{
	struct agent_req r;
	memset(&r, 0, sizeof(r));
	r.op = AGENT_OP_ADD;
	r.ep = *ep;
	r.ep.ifindex = 0;
	snprintf(r.node, sizeof(r.node), "%s", t->node);
	snprintf(r.datastore, sizeof(r.datastore), "%s", t->datastore);
	char line[AGENT_PROTO_LINE_MAX];
	long n = agent_req_format(&r, line, sizeof(line));
	if (n < 0)
		return err_setx(e, (int)-n, "agent: endpoint %s/%s: does not fit a line", ep->cid,
				ep->ifname);
	char path[4096], tmp[4200];
	if (ep_path(t, ep, path, sizeof(path)) < 0)
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

static void ep_unlink(struct agent_eps *t, const struct agent_ep *ep)
{
	char path[4096];
	if (ep_path(t, ep, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn(t->log, "agent: %s: unlink", path);
}

struct agent_ep *agent_eps_insert(struct agent_eps *t, const struct agent_ep *ep,
				  bool from_disk)
{
	/* a registration supersedes what the route adoption made of its veth (a reconcile
	 * that ran between the plugin's route and its registration adopted it) */
	for (unsigned i = 0; !ep->adopted && ep->veth[0] && i < t->n; i++) {
		struct agent_ep *a = &t->v[i]->ep;
		if (a->adopted && strcmp(a->veth, ep->veth) == 0) {
			agent_eps_remove(t, a);
			i = (unsigned)-1; /* the table moved: look again from the start */
		}
	}
	struct agent_ep *old = agent_eps_find(t, ep->cid, ep->ifname);
	struct ep_slot *s;
	if (old) {
		if (t->notify.removed)
			t->notify.removed(t->user, old);
		s = slot_of(old);
		memset(s, 0, sizeof(*s));
	} else {
		if (t->n == t->cap) {
			unsigned cap = t->cap ? t->cap * 2 : 16;
			struct ep_slot **nv = realloc(t->v, cap * sizeof(*nv));
			if (!nv)
				return NULL;
			t->v = nv;
			t->cap = cap;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		t->v[t->n++] = s;
	}
	s->ep = *ep;
	s->ep.ifindex = 0;
	if (t->notify.added)
		t->notify.added(t->user, &s->ep, from_disk);
	return &s->ep;
}

void agent_eps_remove(struct agent_eps *t, struct agent_ep *ep)
{
	for (unsigned i = 0; i < t->n; i++) {
		if (&t->v[i]->ep != ep)
			continue;
		if (t->notify.removed)
			t->notify.removed(t->user, ep);
		if (!ep->adopted)
			ep_unlink(t, ep);
		free(t->v[i]);
		t->v[i] = t->v[--t->n];
		return;
	}
}

int agent_eps_mkdir(struct agent_eps *t, struct err *e)
{
	if (mkdir(t->dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "agent: endpoints_dir %s: mkdir", t->dir);
	return 0;
}

unsigned agent_eps_load(struct agent_eps *t)
{
	DIR *d = opendir(t->dir);
	if (!d) {
		if (errno != ENOENT)
			log_warn(t->log, "agent: %s: opendir", t->dir);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		char path[4096 + 256], line[AGENT_PROTO_LINE_MAX + 1];
		snprintf(path, sizeof(path), "%s/%s", t->dir, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_warn(t->log, "agent: %s: open", path);
			continue;
		}
		ssize_t n = read(fd, line, sizeof(line));
		close(fd);
		struct agent_req r;
		struct err e = { 0 };
		if (n < 0 || agent_req_parse_stored(line, (size_t)(n < 0 ? 0 : n), &r, &e) < 0 ||
		    r.op != AGENT_OP_ADD) {
			log_warnx(t->log, "agent: %s: unusable endpoint file, ignored: %s", path,
				  n < 0 ? "read error" : e.msg[0] ? e.msg : "not an add");
			continue;
		}
		if ((r.node[0] && strcmp(r.node, t->node) != 0) ||
		    (r.datastore[0] && strcmp(r.datastore, t->datastore) != 0))
			log_warnx(t->log, "agent: %s: registered for node \"%s\" (datastore %s); "
					  "this agent serves node \"%s\" with datastore %s: kept, "
					  "its veth is checked like any other", path, r.node,
				  r.datastore, t->node, t->datastore);
		if (!agent_eps_insert(t, &r.ep, true))
			log_errorx(t->log, "agent: %s: out of memory", path);
	}
	closedir(d);
	log_info(t->log, "agent: %u endpoints loaded from %s", t->n, t->dir);
	return t->n;
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

/* At start these are pods set up while no agent ran; later, pods whose CNI ADD could
 * not register (an agent restart in between, a plugin configured with another
 * agent_socket): a live kv* veth with a route is a pod, and deleting its route would
 * cut it off. */
void agent_eps_adopt_routes(struct agent_eps *t, struct nl_sock *nl, uint8_t protocol,
			    uint32_t metric, bool warn)
{
	struct rt_route *cur = NULL;
	unsigned n = 0;
	struct err e = { 0 };
	if (agent_routes_dump(nl, protocol, &cur, &n, &e) < 0) {
		log_err(t->log, LOG_LVL_WARN, &e);
		return;
	}
	struct linkmap *m = calloc(1, sizeof(*m));
	if (!m || link_dump(nl, linkmap_cb, m, &e) < 0) {
		if (m)
			log_err(t->log, LOG_LVL_WARN, &e);
		free(m);
		free(cur);
		return;
	}
	unsigned adopted = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct rt_route *r = &cur[i];
		unsigned full = r->dst.family == AF_INET6 ? 128 : 32;
		if (!r->oif || r->gw.family || r->dst_len != full || r->metric != metric ||
		    agent_eps_find_ip(t, &r->dst))
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
		struct agent_ep *have = agent_eps_find(t, ep.cid, ep.ifname);
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
		if (agent_eps_insert(t, &ep, true))
			adopted++;
	}
	if (adopted)
		log_msg(t->log, warn ? LOG_LVL_WARN : LOG_LVL_INFO,
			"agent: adopted %u unregistered pod addresses from existing routes%s", adopted,
			warn ? " (their CNI ADD did not reach this agent: check agent_socket)" : "");
	free(m);
	free(cur);
}

void agent_eps_resolve(struct agent_eps *t, struct nl_sock *nl)
{
	for (unsigned i = 0; i < t->n;) {
		struct agent_ep *ep = &t->v[i]->ep;
		int idx = 0;
		if (link_index(nl, ep->veth, &idx, NULL) < 0 || idx <= 0) {
			/* the veth is gone: so is the pod */
			log_info(t->log, "agent: endpoint %s %s (%s/%s): veth %s gone, forgotten",
				 ep->cid, ep->ifname, ep->ns[0] ? ep->ns : "-",
				 ep->pod[0] ? ep->pod : "-", ep->veth);
			agent_eps_remove(t, ep);
			continue;
		}
		ep->ifindex = idx;
		i++;
	}
}
