/* bgp — BIRD's fragment and its reload (see bgp.h). */
#include "agent/bgp.h"
#include "agent/blockobj.h"

#include "agent/agent.h"
#include "agent/birdconf.h"
#include "agent/birdctl.h"
#include "kube/informer.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/evloop.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum bgp_phase {
	BGP_IDLE,    /* no exchange */
	BGP_CONNECT, /* connect in progress */
	BGP_BANNER,  /* waiting for 0001 */
	BGP_REPLY,   /* `configure` sent, waiting for its reply */
};

struct agent_bgp {
	struct agent *a;	    /* the agent (not owned) */
	char *text;		    /* the fragment last written or found in place */
	size_t len;		    /* its length */
	char path[CONF_STR_MAX];    /* the file text belongs to ([bgp] config then) */
	bool reloaded;		    /* BIRD accepted that text (a configure succeeded) */
	bool again;		    /* another reload wanted after the one in flight */
	enum bgp_phase phase;	    /* the control socket exchange */
	int fd;			    /* its socket, -1 when idle */
	struct ev_io *io;	    /* watcher of fd */
	struct ev_timer *timeout;   /* end of the exchange */
	struct ev_timer *retry;	    /* next attempt after a failure */
	char buf[2 * AGENT_BIRDCTL_LINE_MAX]; /* bytes read, not parsed yet */
	size_t blen;		    /* their count */
	uint64_t started_ms;	    /* when the exchange began */
	bool none;		    /* the exchange in flight loads agent_bird_conf_none() */
	bool retired;		    /* cross_node is not bgp and the fragment is (or was
				     * found) empty: nothing more to do until it is bgp */
};

static void reload(struct agent_bgp *b);

/* ---- the world: this node's blocks and router id ------------------------------------ */

struct blocks {
	const char *self;	   /* this node */
	struct agent_block *v;	   /* its blocks */
	unsigned n, cap;	   /* used / allocated */
	bool oom;		   /* an allocation failed */
};

static void block_cb(void *user, const struct kube_obj *o)
{
	struct blocks *bs = user;
	struct ipam_state st;
	struct err e = { 0 };
	if (agent_block_load(o, &st, &e) == 0) {
		for (unsigned i = 0; i < st.n_blocks; i++) {
			const struct ipam_block *bl = &st.blocks[i];
			if (strcmp(bl->affinity, bs->self) != 0)
				continue;
			if (bs->n == bs->cap) {
				unsigned cap = bs->cap ? bs->cap * 2 : 8;
				struct agent_block *nv = realloc(bs->v, cap * sizeof(*nv));
				if (!nv) {
					bs->oom = true;
					break;
				}
				bs->v = nv;
				bs->cap = cap;
			}
			struct agent_block *ab = &bs->v[bs->n++];
			memset(ab, 0, sizeof(*ab));
			ab->net = bl->cidr.a;
			ab->len = bl->cidr.prefix;
			ab->node = "";
		}
	}
	ipam_state_free(&st);
}

/* This node's IPv4 InternalIP into *out (family 0 when unknown). */
static void node_v4(struct agent *a, struct ip_addr *out)
{
	struct kube_obj o;
	memset(out, 0, sizeof(*out));
	if (!agent_obj_get(a, AGENT_K_NODE, NULL, agent_node(a), &o))
		return;
	struct json_doc d;
	struct json_tok *tok;
	if (kube_obj_parse(&o, &d, &tok) < 0)
		return;
	char mem[4096];
	struct kube_arena ar;
	kube_arena_init(&ar, mem, sizeof(mem));
	struct kube_node n;
	struct err e = { 0 };
	if (kube_node_view(&d, 0, &n, &ar, &e) == 0) {
		for (unsigned i = 0; i < n.n_addrs && !out->family; i++) {
			struct ip_addr ip;
			if (n.addrs[i].type && strcmp(n.addrs[i].type, "InternalIP") == 0 &&
			    n.addrs[i].address && ip_parse(n.addrs[i].address, &ip) &&
			    ip.family == AF_INET)
				*out = ip;
		}
	}
	free(tok);
}

/* ---- the fragment file --------------------------------------------------------------- */

/* Write text to path atomically: path.tmp, fsync, rename. 0 or -errno with e. */
static int write_atomic(const char *path, const char *text, size_t len, struct err *e)
{
	char tmp[CONF_STR_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(e, errno, "bgp: %s: open", tmp);
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(e, errno, "bgp: %s: write", tmp);
			break;
		}
		off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = err_set(e, errno, "bgp: %s: fsync", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = err_set(e, errno, "bgp: %s: rename to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Compute the fragment; write it when it differs; reload when written or not yet
 * accepted. */
static void update(struct agent_bgp *b)
{
	struct agent *a = b->a;
	const struct conf *c = agent_conf(a);
	struct blocks bs = { .self = agent_node(a) };
	struct agent_bird_in in = { .c = c };
	struct err e = { 0 };
	char *text = NULL;
	size_t len = 0;
	if (c->bgp.router_id.set) {
		in.router_id.family = AF_INET;
		memcpy(in.router_id.b, c->bgp.router_id.addr, 4);
	} else {
		node_v4(a, &in.router_id);
	}
	agent_obj_each(a, AGENT_K_BLOCK, block_cb, &bs);
	in.blocks = bs.v;
	in.n_blocks = bs.n;
	int rc = bs.oom ? err_setx(&e, ENOMEM, "bgp: blocks: out of memory")
			: agent_bird_conf(&in, &text, &len, &e);
	free(bs.v);
	if (rc < 0) {
		log_msg(agent_log(a), LOG_LVL_WARN, "%s", e.msg);
		return;
	}
	if (strcmp(b->path, c->bgp.config) != 0) {
		/* [bgp] config changed by a reload: the new file is kvnet's from now on */
		if (b->path[0])
			log_msg(agent_log(a), LOG_LVL_WARN, "bgp: reload: config %s -> %s: kvnet "
				"writes the new file and leaves the old one as it is (BIRD's include "
				"must name the new one)", b->path, c->bgp.config);
		free(b->text);
		b->text = NULL;
		b->len = 0;
		b->reloaded = false;
		snprintf(b->path, sizeof(b->path), "%s", c->bgp.config);
	}
	if (!b->text) { /* first time: what is on disk already */
		char *old = NULL;
		size_t ol = 0;
		struct err e2 = { 0 };
		if (file_read(c->bgp.config, 1 << 20, &old, &ol, &e2) == 0) {
			b->text = old;
			b->len = ol;
		}
	}
	if (b->text && b->len == len && memcmp(b->text, text, len) == 0) {
		free(text);
		if (!b->reloaded)
			reload(b);
		return;
	}
	if (write_atomic(c->bgp.config, text, len, &e) < 0) {
		log_msg(agent_log(a), LOG_LVL_WARN, "%s", e.msg);
		free(text);
		ev_timer_arm(b->retry, AGENT_BGP_RETRY_MS, 0);
		return;
	}
	log_msg(agent_log(a), LOG_LVL_INFO, "bgp: wrote %s (%zu bytes, %u blocks)",
		c->bgp.config, len, in.n_blocks);
	free(b->text);
	b->text = text;
	b->len = len;
	b->reloaded = false;
	reload(b);
}

/* ---- the control socket -------------------------------------------------------------- */

static void close_conn(struct agent_bgp *b)
{
	if (b->io)
		ev_io_del(b->io);
	b->io = NULL;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->phase = BGP_IDLE;
	b->blen = 0;
	ev_timer_disarm(b->timeout);
}

/* End the exchange: ok or not (why, for the log line). */
static void finish(struct agent_bgp *b, bool ok, const char *why)
{
	const struct conf *c = agent_conf(b->a);
	bool none = b->none;
	close_conn(b);
	b->none = false;
	if (none) {
		/* one attempt: a BIRD that is down reads the empty fragment when it starts */
		log_msg(agent_log(b->a), ok ? LOG_LVL_INFO : LOG_LVL_WARN,
			"bgp: BIRD at %s %s the empty %s (cross_node is not bgp): %s",
			c->bgp.socket, ok ? "reloaded" : "did not reload", c->bgp.config, why);
	} else if (ok) {
		b->reloaded = true;
		log_msg(agent_log(b->a), LOG_LVL_INFO, "bgp: BIRD at %s reloaded %s (%llu ms): %s",
			c->bgp.socket, c->bgp.config,
			(unsigned long long)(ev_now_ms() - b->started_ms), why);
	} else {
		log_msg(agent_log(b->a), LOG_LVL_WARN,
			"bgp: BIRD at %s: reload of %s failed: %s (retry in %d ms)", c->bgp.socket,
			c->bgp.config, why, AGENT_BGP_RETRY_MS);
		ev_timer_arm(b->retry, AGENT_BGP_RETRY_MS, 0);
	}
	if (b->again) {
		b->again = false;
		reload(b);
	}
}

static void on_io(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents, void *arg)
{
	struct agent_bgp *b = arg;
	char why[AGENT_BIRDCTL_TEXT_MAX + 64];
	(void)loop;
	(void)io;
	if (b->phase == BGP_CONNECT) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			snprintf(why, sizeof(why), "connect: %s", strerror(soerr));
			return finish(b, false, why);
		}
		b->phase = BGP_BANNER;
		struct err e = { 0 };
		if (ev_io_modify(b->io, EPOLLIN, &e) < 0)
			return finish(b, false, e.msg);
		return;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t n = read(fd, b->buf + b->blen, sizeof(b->buf) - b->blen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		snprintf(why, sizeof(why), "read: %s", strerror(errno));
		return finish(b, false, why);
	}
	if (n == 0)
		return finish(b, false, b->phase == BGP_BANNER ? "closed before its banner"
							      : "closed before the reply ended");
	b->blen += (size_t)n;
	for (;;) {
		struct agent_birdctl_reply r;
		size_t used = 0;
		int rc = agent_birdctl_parse(b->buf, b->blen, &used, &r);
		if (rc == 0) {
			if (b->blen == sizeof(b->buf)) /* a reply of many lines: drop parsed ones */
				return finish(b, false, "reply too long");
			return;
		}
		if (rc < 0)
			return finish(b, false, rc == -EMSGSIZE ? "reply line too long"
								: "not a BIRD reply (garbage)");
		memmove(b->buf, b->buf + used, b->blen - used);
		b->blen -= used;
		if (b->phase == BGP_BANNER) {
			if (r.code != 1) {
				snprintf(why, sizeof(why), "banner %04d %s (want 0001)", r.code,
					 r.text);
				return finish(b, false, why);
			}
			static const char cmd[] = "configure\n";
			if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1)) {
				snprintf(why, sizeof(why), "write: %s", strerror(errno));
				return finish(b, false, why);
			}
			b->phase = BGP_REPLY;
			continue;
		}
		snprintf(why, sizeof(why), "%04d %s", r.err_code ? r.err_code : r.code, r.text);
		return finish(b, !r.err_code && agent_birdctl_configure_ok(r.code), why);
	}
}

static void on_timeout(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	struct agent_bgp *b = arg;
	(void)loop;
	(void)t;
	char why[64];
	snprintf(why, sizeof(why), "no answer within %d ms", AGENT_BGP_TIMEOUT_MS);
	finish(b, false, why);
}

/* cross_node is not bgp (a reload switched away, or a start after a bgp run): a
 * fragment of kvnet's with protocols in it is replaced by agent_bird_conf_none() and BIRD
 * reloaded once, so it drops kvnet's protocols: the routes it put into the kernel and the
 * BGP sessions (the peers withdraw what this node announced). A file that is absent or
 * not kvnet's is left alone. */
static void retire(struct agent_bgp *b)
{
	const struct conf *c = agent_conf(b->a);
	const char *none = agent_bird_conf_none();
	size_t nl = strlen(none);
	struct err e = { 0 };
	if (b->retired)
		return;
	ev_timer_disarm(b->retry);
	free(b->text);
	b->text = NULL;
	b->len = 0;
	b->reloaded = false;
	char *old = NULL;
	size_t ol = 0;
	if (file_read(c->bgp.config, 1 << 20, &old, &ol, &e) < 0 ||
	    ol < sizeof(AGENT_BIRD_HEADER) - 1 ||
	    memcmp(old, AGENT_BIRD_HEADER, sizeof(AGENT_BIRD_HEADER) - 1) != 0 ||
	    (ol == nl && memcmp(old, none, nl) == 0)) {
		free(old);
		b->retired = true; /* nothing of kvnet's for BIRD to drop */
		return;
	}
	free(old);
	if (write_atomic(c->bgp.config, none, nl, &e) < 0) {
		log_msg(agent_log(b->a), LOG_LVL_WARN, "%s", e.msg);
		b->retired = true;
		return;
	}
	log_msg(agent_log(b->a), LOG_LVL_WARN, "bgp: cross_node is not bgp: emptied %s "
		"(BIRD drops kvnet's kernel routes and BGP sessions)", c->bgp.config);
	b->retired = true;
	if (b->phase != BGP_IDLE) {
		b->again = true; /* the reload after the one in flight loads it */
		return;
	}
	b->none = true;
	reload(b);
}

/* After a reconcile or a retry: keep the fragment of the mode configured now. */
static void step(struct agent_bgp *b)
{
	if (agent_conf(b->a)->network.cross_node != CONF_CROSS_BGP)
		return retire(b);
	b->retired = false;
	update(b);
}

static void on_retry(struct ev_loop *loop, struct ev_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	step(arg);
}

/* Start a `configure` exchange (or ask for one after the one in flight). */
static void reload(struct agent_bgp *b)
{
	const struct conf *c = agent_conf(b->a);
	char why[CONF_STR_MAX + 64];
	struct err e = { 0 };
	if (b->phase != BGP_IDLE) {
		b->again = true;
		return;
	}
	ev_timer_disarm(b->retry);
	b->started_ms = ev_now_ms();
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(c->bgp.socket) >= sizeof(sa.sun_path))
		return finish(b, false, "socket path too long");
	memcpy(sa.sun_path, c->bgp.socket, strlen(c->bgp.socket));
	b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		return finish(b, false, why);
	}
	b->phase = BGP_BANNER;
	uint32_t ev = EPOLLIN;
	if (connect(b->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			snprintf(why, sizeof(why), "connect: %s", strerror(errno));
			return finish(b, false, why);
		}
		b->phase = BGP_CONNECT;
		ev = EPOLLOUT;
	}
	if (ev_io_add(agent_loop(b->a), b->fd, ev, on_io, b, NULL, &b->io, &e) < 0)
		return finish(b, false, e.msg);
	ev_timer_arm(b->timeout, AGENT_BGP_TIMEOUT_MS, 0);
}

/* ---- the module ------------------------------------------------------------------------ */

static void on_reconciled(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)a;
	(void)ev;
	step(arg);
}

void *agent_bgp_new(struct agent *a, struct err *e)
{
	struct agent_bgp *b = calloc(1, sizeof(*b));
	if (!b) {
		err_setx(e, ENOMEM, "bgp: out of memory");
		return NULL;
	}
	b->a = a;
	b->fd = -1;
	/* in every mode: a reload may switch cross_node to bgp or away from it */
	agent_want_kind(a, AGENT_K_BLOCK);
	agent_want_kind(a, AGENT_K_NODE);
	if (ev_timer_add(agent_loop(a), 0, 0, on_timeout, b, NULL, &b->timeout, e) < 0 ||
	    ev_timer_add(agent_loop(a), 0, 0, on_retry, b, NULL, &b->retry, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_RECONCILED, on_reconciled, b, e) < 0) {
		agent_bgp_free(b);
		return NULL;
	}
	ev_timer_disarm(b->timeout);
	ev_timer_disarm(b->retry);
	return b;
}

void agent_bgp_free(void *state)
{
	struct agent_bgp *b = state;
	if (!b)
		return;
	agent_hook_del(b->a, AGENT_HOOK_RECONCILED, on_reconciled, b);
	if (b->io)
		ev_io_del(b->io);
	if (b->fd >= 0)
		close(b->fd);
	if (b->timeout)
		ev_timer_del(b->timeout);
	if (b->retry)
		ev_timer_del(b->retry);
	free(b->text);
	free(b);
}
