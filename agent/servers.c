/* servers — listeners and connections (see servers.h). */
#include "agent/servers.h"

#include "agent/http.h"
#include "agent/metrics.h"
#include "conf/conf.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/ip.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define AGENT_CONN_RBUF 8192 /* read buffer per connection */
#define SWEEP_MS 1000	     /* how often idle connections are looked for */
#define ACCEPT_BATCH 64	     /* connections accepted per wake-up of a listener */

/* One listener and its limits. */
struct listener {
	const char *name;	/* "cni" or "http" (metric label) */
	int fd;			/* listening socket, -1 */
	struct ev_io *io;	/* its watcher */
	unsigned n_conns;	/* its open connections */
	unsigned max;		/* at most this many open */
	bool evict;		/* at max: close the oldest (HTTP) rather than refuse the new */
	uint64_t idle_ms;	/* close a connection idle this long (nothing owed) */
	uint64_t life_ms;	/* close a connection open this long (0: no limit) */
};

/* One accepted connection: HTTP or the CNI socket. */
struct agent_conn {
	struct agent_servers *s;	/* the servers */
	struct listener *l;		/* the listener it came from */
	struct agent_conn *next;	/* list (open, or dead; newest first) */
	uint64_t born_ms;		/* accepted at (ev_now_ms) */
	uint64_t active_ms;		/* last byte read or written */
	int fd;				/* socket, -1 once closed */
	struct ev_io *io;		/* watcher */
	bool http;			/* HTTP (else the CNI protocol) */
	bool close_after;		/* close once wbuf is written */
	bool dead;			/* closed: fd and watcher gone, freed by the reaper */
	bool waiting;			/* owes an answer about (wcid, wifname) */
	char wcid[IPAM_CID_MAX + 1];	/* waited endpoint: container id */
	char wifname[IPAM_IFNAME_MAX + 1]; /* waited endpoint: ifname */
	size_t rlen;			/* bytes in rbuf */
	char rbuf[AGENT_CONN_RBUF];	/* unparsed input */
	char *wbuf;			/* pending output (owned) */
	size_t wlen, woff;		/* its length / bytes written */
};

struct agent_servers {
	struct ev_loop *loop;		 /* the loop (not owned) */
	struct log *log;		 /* logger (not owned) */
	struct agent_metric *requests;	 /* counter{op} or NULL */
	struct agent_servers_ops ops;	 /* the owner's callbacks */
	void *user;			 /* their argument */
	struct listener http;		 /* the HTTP port */
	struct listener cni;		 /* the CNI socket */
	char sock_path[CONF_STR_MAX];	 /* the socket file we created ("" none) */
	bool group_set;			 /* a group may use the socket besides root */
	gid_t group;			 /* that group */
	char group_name[CONF_STR_MAX];	 /* its name (messages) */
	struct agent_conn *conns;	 /* open connections, newest first */
	struct agent_conn *dead;	 /* closed, to be freed by `reap` (owned) */
	struct ev_timer *reap;		 /* one-shot: frees `dead` after the dispatch */
	struct ev_timer *sweep;		 /* periodic: closes idle connections */
	struct agent_metric *m_open;	 /* gauge{listener} */
	struct agent_metric *m_rejected; /* counter{listener}: refused or evicted at the limit */
	struct agent_metric *m_timeout;	 /* counter{listener}: closed idle or too old */
	struct agent_metric *m_peer;	 /* counter: CNI peers refused by SO_PEERCRED */
};

static void conn_destroy(void *user)
{
	(void)user;
}

/* Close a connection: unlink it, stop its watcher, close its fd. Its memory is freed
 * only by the reaper (a zero timer, after the current dispatch), so a caller up the
 * stack that still holds c may look at c->dead but never at freed memory. Idempotent. */
static void conn_close(struct agent_conn *c)
{
	if (c->dead)
		return;
	struct agent_servers *s = c->s;
	for (struct agent_conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->l->n_conns--;
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
	c->next = s->dead;
	s->dead = c;
	if (s->reap && !ev_timer_armed(s->reap))
		ev_timer_arm(s->reap, 0, 0);
}

static void conns_reap(struct agent_servers *s)
{
	while (s->dead) {
		struct agent_conn *c = s->dead;
		s->dead = c->next;
		free(c);
	}
}

static void reap_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	conns_reap(user);
}

/* The events to watch: input only while nothing much is owed (a peer that sends
 * without reading is not read until it reads), output while something is pending. */
static void conn_watch(struct agent_conn *c)
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
static bool conn_flush(struct agent_conn *c)
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
		c->active_ms = ev_now_ms();
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
static bool conn_send(struct agent_conn *c, const char *buf, size_t len)
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

bool agent_conn_answer(struct agent_conn *c, enum agent_status st, const char *error)
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

bool agent_conn_open(const struct agent_conn *c)
{
	return !c->dead;
}

void agent_conn_wait(struct agent_conn *c, const char *cid, const char *ifname)
{
	if (c->dead)
		return;
	c->waiting = true;
	snprintf(c->wcid, sizeof(c->wcid), "%s", cid);
	snprintf(c->wifname, sizeof(c->wifname), "%s", ifname);
}

void agent_conn_wait_done(struct agent_conn *c)
{
	c->waiting = false;
}

void agent_servers_each_waiting(struct agent_servers *s,
				void (*fn)(void *user, struct agent_conn *c, const char *cid,
					   const char *ifname),
				void *user)
{
	struct agent_conn *next;
	for (struct agent_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->waiting)
			fn(user, c, c->wcid, c->wifname);
	}
}

static void http_request(struct agent_conn *c)
{
	struct agent_servers *s = c->s;
	struct agent_http_req req;
	struct err e = { 0 };
	long n = agent_http_parse(c->rbuf, c->rlen, &req, &e);
	if (n == 0 && c->rlen < sizeof(c->rbuf))
		return; /* more to come */
	struct agent_http_answer ans = { .status = 200, .ctype = "text/plain; charset=utf-8" };
	bool head = false;
	if (n <= 0) {
		ans.status = 400;
		snprintf(ans.text, sizeof(ans.text), "%s\n",
			 n == 0 ? "request head too large" : e.msg);
	} else if (strcmp(req.method, "GET") != 0 && !(head = strcmp(req.method, "HEAD") == 0)) {
		ans.status = 405;
		snprintf(ans.text, sizeof(ans.text), "method not allowed\n");
	} else if (s->ops.http_get) {
		s->ops.http_get(s->user, req.path, req.query, &ans);
	} else {
		ans.status = 404;
		snprintf(ans.text, sizeof(ans.text), "not found\n");
	}
	size_t rl = 0;
	char *resp = agent_http_response(ans.status, ans.ctype, ans.body ? ans.body : ans.text,
					 ans.body ? ans.blen : strlen(ans.text), head, &rl);
	free(ans.body);
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
static void cni_lines(struct agent_conn *c)
{
	struct agent_servers *s = c->s;
	while (!c->dead && !c->close_after && c->wlen - c->woff < AGENT_CONN_WMAX) {
		char *nl = memchr(c->rbuf, '\n', c->rlen);
		if (!nl) {
			if (c->rlen >= AGENT_PROTO_LINE_MAX) {
				/* answer, then close once the answer is out: the rest of
				 * that line cannot be told from a next request */
				if (s->requests)
					agent_metric_add(s->requests, "invalid", 1);
				log_warnx(s->log, "agent: socket: request line too long");
				c->rlen = 0;
				if (agent_conn_answer(c, AGENT_ST_ERROR, "request line too long")) {
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
		s->ops.cni_line(s->user, c, line, cl);
	}
}

static void conn_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *user)
{
	(void)loop;
	(void)io;
	struct agent_conn *c = user;
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
		if (revents & EPOLLHUP)
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
	c->active_ms = ev_now_ms();
	if (c->http)
		http_request(c);
	else
		cni_lines(c);
}

/* May this CNI-socket peer talk to the agent? Root, or a member (primary or
 * supplementary group) of [agent] socket_group. why gets the reason when not. */
static bool peer_allowed(const struct agent_servers *s, int fd, char *why, size_t cap)
{
	struct ucred uc;
	socklen_t ul = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0) {
		snprintf(why, cap, "peer credentials unknown: %s", strerror(errno));
		return false;
	}
	if (uc.uid == 0)
		return true;
	if (s->group_set) {
		if (uc.gid == s->group)
			return true;
		gid_t groups[256];
		socklen_t gl = sizeof(groups);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
			for (size_t i = 0; i < gl / sizeof(groups[0]); i++)
				if (groups[i] == s->group)
					return true;
	}
	snprintf(why, cap, "peer pid %d uid %u gid %u: not root%s%s%s: refused", (int)uc.pid,
		 (unsigned)uc.uid, (unsigned)uc.gid, s->group_set ? " nor in group " : "",
		 s->group_set ? s->group_name : "", s->group_set ? "" : " ([agent] socket_group "
								       "is empty)");
	return false;
}

/* Make room on listener l at its limit: evict its oldest connection (true) or not. */
static bool make_room(struct agent_servers *s, struct listener *l)
{
	if (!l->evict)
		return false;
	struct agent_conn *oldest = NULL;
	for (struct agent_conn *c = s->conns; c; c = c->next)
		if (c->l == l)
			oldest = c; /* newest first: the last one is the oldest */
	if (!oldest)
		return false;
	conn_close(oldest);
	return true;
}

static void accept_one(struct agent_servers *s, struct listener *l, int cfd)
{
	if (l == &s->cni) {
		char why[256];
		if (!peer_allowed(s, cfd, why, sizeof(why))) {
			if (s->m_peer)
				agent_metric_add(s->m_peer, NULL, 1);
			log_warnx(s->log, "agent: socket: %s", why);
			struct agent_resp r = { .status = AGENT_ST_ERROR };
			snprintf(r.error, sizeof(r.error), "%s", why);
			char line[sizeof(r.error) + 64];
			long n = agent_resp_format(&r, line, sizeof(line));
			if (n > 0 && send(cfd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				(void)0; /* best effort: the peer learns why if it listens */
			close(cfd);
			return;
		}
	}
	if (l->n_conns >= l->max) {
		if (s->m_rejected)
			agent_metric_add(s->m_rejected, l->name, 1);
		if (!make_room(s, l)) {
			log_warnx(s->log, "agent: %s: %u connections open: new one refused", l->name,
				  l->max);
			close(cfd);
			return;
		}
	}
	struct agent_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->s = s;
	c->l = l;
	c->fd = cfd;
	c->http = l == &s->http;
	c->born_ms = c->active_ms = ev_now_ms();
	struct err e = { 0 };
	if (ev_io_add(s->loop, cfd, EPOLLIN, conn_io, c, conn_destroy, &c->io, &e) < 0) {
		log_err(s->log, LOG_LVL_WARN, &e);
		close(cfd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	l->n_conns++;
}

static void accept_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		      void *user)
{
	(void)loop;
	(void)io;
	(void)revents;
	struct agent_servers *s = user;
	struct listener *l = fd == s->http.fd ? &s->http : &s->cni;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* out of descriptors: shed the oldest HTTP connection so the
				 * listener does not stay readable for nothing */
				log_warn(s->log, "agent: %s: accept", l->name);
				make_room(s, &s->http);
			}
			return;
		}
		accept_one(s, l, cfd);
	}
}

/* Close connections idle too long (nothing owed: a connection waiting for its
 * "programmed" answer is never closed) or open too long (HTTP). */
static void sweep_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	(void)loop;
	(void)t;
	struct agent_servers *s = user;
	uint64_t now = ev_now_ms();
	struct agent_conn *next;
	for (struct agent_conn *c = s->conns; c; c = next) {
		next = c->next;
		const struct listener *l = c->l;
		bool old = l->life_ms && now - c->born_ms >= l->life_ms;
		bool idle = !c->waiting && now - c->active_ms >= l->idle_ms;
		if (!old && !idle)
			continue;
		if (s->m_timeout)
			agent_metric_add(s->m_timeout, l->name, 1);
		log_debug(s->log, "agent: %s: connection %s after %llu ms: closed", l->name,
			  old ? "open too long" : "idle", (unsigned long long)(now - c->born_ms));
		conn_close(c);
	}
	if (s->m_open) {
		agent_metric_set(s->m_open, "cni", s->cni.n_conns);
		agent_metric_set(s->m_open, "http", s->http.n_conns);
	}
}

struct agent_servers *agent_servers_new(struct ev_loop *loop, struct log *log,
					struct agent_metrics *reg, struct agent_metric *requests,
					const struct agent_servers_ops *ops, void *user,
					struct err *e)
{
	struct agent_servers *s = calloc(1, sizeof(*s));
	if (!s) {
		err_setx(e, ENOMEM, "agent: servers: out of memory");
		return NULL;
	}
	s->loop = loop;
	s->log = log;
	s->requests = requests;
	s->ops = *ops;
	s->user = user;
	s->http = (struct listener){ .name = "http", .fd = -1, .max = AGENT_HTTP_CONNS_MAX,
				     .evict = true, .idle_ms = AGENT_HTTP_TIMEOUT_MS,
				     .life_ms = AGENT_HTTP_TIMEOUT_MS };
	s->cni = (struct listener){ .name = "cni", .fd = -1, .max = AGENT_CNI_CONNS_MAX,
				    .idle_ms = AGENT_CNI_IDLE_MS };
	if (reg) {
		s->m_open = agent_metric_new(reg, "kvnet_agent_connections",
					     "Open connections, by listener (cni, http).",
					     AGENT_M_GAUGE, "listener");
		s->m_rejected = agent_metric_new(reg, "kvnet_agent_connections_rejected_total",
						 "Connections refused, or evicted to make room, at a "
						 "listener's limit, by listener.",
						 AGENT_M_COUNTER, "listener");
		s->m_timeout = agent_metric_new(reg, "kvnet_agent_connections_timed_out_total",
						"Connections closed idle or open too long, by "
						"listener.", AGENT_M_COUNTER, "listener");
		s->m_peer = agent_metric_new(reg, "kvnet_agent_socket_peers_refused_total",
					     "CNI socket peers refused: not root nor in "
					     "[agent] socket_group.", AGENT_M_COUNTER, NULL);
		if (!s->m_open || !s->m_rejected || !s->m_timeout || !s->m_peer) {
			err_setx(e, EEXIST, "agent: servers: metrics: cannot register");
			free(s);
			return NULL;
		}
		for (const char *const *l = (const char *const[]){ "cni", "http", NULL }; *l; l++) {
			agent_metric_set(s->m_open, *l, 0);
			agent_metric_add(s->m_rejected, *l, 0);
			agent_metric_add(s->m_timeout, *l, 0);
		}
		agent_metric_add(s->m_peer, NULL, 0);
	}
	if (ev_timer_add(loop, 0, 0, reap_cb, s, NULL, &s->reap, e) < 0) {
		free(s);
		return NULL;
	}
	ev_timer_disarm(s->reap);
	if (ev_timer_add(loop, SWEEP_MS, SWEEP_MS, sweep_cb, s, NULL, &s->sweep, e) < 0) {
		ev_timer_del(s->reap);
		free(s);
		return NULL;
	}
	return s;
}

void agent_servers_free(struct agent_servers *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	conns_reap(s);
	if (s->reap)
		ev_timer_del(s->reap);
	if (s->sweep)
		ev_timer_del(s->sweep);
	if (s->http.io)
		ev_io_del(s->http.io);
	if (s->http.fd >= 0)
		close(s->http.fd);
	if (s->cni.io)
		ev_io_del(s->cni.io);
	if (s->cni.fd >= 0)
		close(s->cni.fd);
	if (s->sock_path[0])
		unlink(s->sock_path);
	free(s);
}

int agent_servers_listen_http(struct agent_servers *s, const struct conf_hostport *hp,
			      struct err *e)
{
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
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent: listen %s port %u", as, hp->port);
	}
	s->http.fd = fd;
	int rc = ev_io_add(s->loop, fd, EPOLLIN, accept_io, s, NULL, &s->http.io, e);
	if (rc < 0)
		return rc;
	log_info(s->log, "agent: http on %s%s%s:%u (/healthz /readyz /metrics)",
		 hp->family == AF_INET6 ? "[" : "", as, hp->family == AF_INET6 ? "]" : "",
		 hp->port);
	return 0;
}

/* Bind fd to sa: the file is created mode 0600 (the socket inode's mode is set before
 * bind, and bind applies it), so nobody but root can connect before it is widened. */
static int bind_private(int fd, const struct sockaddr_un *sa)
{
	if (fchmod(fd, 0600) < 0)
		return -errno;
	return bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 0;
}

int agent_servers_listen_cni(struct agent_servers *s, const char *path, const char *group,
			     struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_setx(e, ENAMETOOLONG, "agent: socket %s: path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (group && group[0]) {
		struct group gr, *res = NULL;
		char buf[4096];
		int rc = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
		if (rc != 0 || !res)
			return err_setx(e, rc ? rc : ENOENT, "agent: socket %s: socket_group %s: %s",
					path, group, rc ? strerror(rc) : "no such group");
		s->group_set = true;
		s->group = gr.gr_gid;
		snprintf(s->group_name, sizeof(s->group_name), "%s", group);
	}
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
	int brc = bind_private(fd, &sa);
	if (brc < 0) {
		if (brc != -EADDRINUSE) {
			close(fd);
			return err_set(e, -brc, "agent: socket %s: bind", path);
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
		if ((brc = bind_private(fd, &sa)) < 0) {
			close(fd);
			return err_set(e, -brc, "agent: socket %s: bind", path);
		}
	}
	snprintf(s->sock_path, sizeof(s->sock_path), "%s", path);
	/* widen to the group only once the file is the group's */
	if (s->group_set && (chown(path, 0, s->group) < 0 || chmod(path, 0660) < 0)) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent: socket %s: group %s", path, s->group_name);
	}
	if (listen(fd, 512) < 0) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent: socket %s: listen", path);
	}
	s->cni.fd = fd;
	int rc = ev_io_add(s->loop, fd, EPOLLIN, accept_io, s, NULL, &s->cni.io, e);
	if (rc < 0)
		return rc;
	log_info(s->log, "agent: CNI socket %s (%s)", path,
		 s->group_set ? "root and group" : "root only");
	return 0;
}
