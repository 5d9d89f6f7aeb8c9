/* client — the CNI plugin's side of the agent socket. */
#include "agent/client.h"

#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_client_open(struct agent_client *c, const char *path, struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(c->path))
		return err_setx(e, ENAMETOOLONG, "agent %s: socket path too long", path);
	snprintf(c->path, sizeof(c->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "agent %s: socket", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int er = errno;
		close(fd);
		return err_set(e, er, "agent %s: connect", path);
	}
	c->fd = fd;
	return 0;
}

void agent_client_close(struct agent_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_all(struct agent_client *c, const char *buf, size_t len, struct err *e)
{
	while (len) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(e, errno, "agent %s: send", c->path);
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one answer line before deadline (monotonic ms). */
static int read_resp(struct agent_client *c, long long deadline, unsigned timeout_ms,
		     struct agent_resp *out, struct err *e)
{
	for (;;) {
		char *nl = memchr(c->rbuf, '\n', c->rlen);
		if (nl) {
			size_t l = (size_t)(nl - c->rbuf) + 1;
			int rc = agent_resp_parse(c->rbuf, l, out, e);
			memmove(c->rbuf, c->rbuf + l, c->rlen - l);
			c->rlen -= l;
			if (rc < 0)
				return (err_prefix(e, "agent %s", c->path), -EPROTO);
			return 0;
		}
		if (c->rlen == sizeof(c->rbuf))
			return err_setx(e, EPROTO, "agent %s: answer line too long", c->path);
		long long left = deadline - now_ms();
		if (left <= 0)
			return err_setx(e, ETIMEDOUT, "agent %s: no answer within %u ms", c->path,
					timeout_ms);
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return err_set(e, errno, "agent %s: poll", c->path);
		if (pr == 0)
			continue;
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(e, errno, "agent %s: recv", c->path);
		if (n == 0)
			return err_setx(e, ECONNRESET, "agent %s: closed the connection", c->path);
		c->rlen += (size_t)n;
	}
}

static int call(struct agent_client *c, const struct agent_req *req, enum agent_status want,
		long long deadline, unsigned timeout_ms, struct err *e)
{
	char line[AGENT_PROTO_LINE_MAX];
	long n = agent_req_format(req, line, sizeof(line));
	if (n < 0)
		return err_setx(e, (int)-n, "agent %s: request does not fit a line", c->path);
	int rc = send_all(c, line, (size_t)n, e);
	if (rc < 0)
		return rc;
	struct agent_resp r;
	if ((rc = read_resp(c, deadline, timeout_ms, &r, e)) < 0)
		return rc;
	if (r.status == AGENT_ST_ERROR)
		return err_setx(e, EREMOTEIO, "agent %s: refused: %s", c->path, r.error);
	if (r.status != want)
		return err_setx(e, EPROTO, "agent %s: unexpected answer", c->path);
	return 0;
}

int agent_client_register(struct agent_client *c, const struct agent_req *rq,
			  unsigned timeout_ms, struct err *e)
{
	if (rq->op != AGENT_OP_ADD)
		return err_setx(e, EINVAL, "agent %s: register: not an add", c->path);
	struct agent_req req = *rq;
	const struct agent_ep *ep = &req.ep;
	req.wait = rq->wait && timeout_ms > 0;
	unsigned t = req.wait ? timeout_ms : 2000;
	long long deadline = now_ms() + t;
	int rc = call(c, &req, AGENT_ST_REGISTERED, deadline, t, e);
	if (rc < 0 || !req.wait)
		return rc;
	struct agent_resp r;
	rc = read_resp(c, deadline, t, &r, e);
	if (rc == -ETIMEDOUT) {
		err_clear(e);
		return err_setx(e, ETIMEDOUT, "agent %s: endpoint %s/%s not programmed within %u ms",
				c->path, ep->ns[0] ? ep->ns : "-", ep->pod[0] ? ep->pod : ep->cid,
				timeout_ms);
	}
	if (rc < 0)
		return rc;
	if (r.status == AGENT_ST_ERROR)
		return err_setx(e, EREMOTEIO, "agent %s: refused: %s", c->path, r.error);
	if (r.status != AGENT_ST_PROGRAMMED)
		return err_setx(e, EPROTO, "agent %s: unexpected answer", c->path);
	return 0;
}

int agent_client_del(struct agent_client *c, const char *cid, const char *ifname,
		     unsigned timeout_ms, struct err *e)
{
	struct agent_req req;
	memset(&req, 0, sizeof(req));
	req.op = AGENT_OP_DEL;
	snprintf(req.ep.cid, sizeof(req.ep.cid), "%s", cid);
	snprintf(req.ep.ifname, sizeof(req.ep.ifname), "%s", ifname);
	return call(c, &req, AGENT_ST_DELETED, now_ms() + timeout_ms, timeout_ms, e);
}
