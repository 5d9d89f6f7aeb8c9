/* conn — plain TCP (or any connected stream socket) behind the conn interface; see conn.h.
 *
 * The socket is non-blocking from the start; every wait is a poll() against a deadline
 * on CLOCK_MONOTONIC, so EINTR and partial writes never stretch a timeout.
 */
#include "kube/conn.h"

#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_CONNECT_DEFAULT_MS 10000
#define CONN_IO_DEFAULT_MS 30000

struct conn_plain {
	int fd;              /* the connected socket, owned */
	bool is_sock;        /* send(MSG_NOSIGNAL) works; false for a pipe-like fd */
	const char *peer;    /* the owning conn's peer text, for messages (not owned) */
};

int conn_timeout_ms(int v, int dflt)
{
	if (v == 0)
		return dflt;
	return v < 0 ? -1 : v;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a timeout in ms (-1: none). */
static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
}

/* Wait until fd has `ev` or the deadline passes: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int left = -1;
		if (deadline >= 0) {
			int64_t d = deadline - mono_ms();
			if (d <= 0)
				return 0;
			left = d > INT32_MAX ? INT32_MAX : (int)d;
		}
		struct pollfd p = { .fd = fd, .events = ev };
		int r = poll(&p, 1, left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static ssize_t plain_read(void *impl, void *buf, size_t n, int timeout_ms, struct err *e)
{
	struct conn_plain *p = impl;
	int64_t deadline = deadline_of(timeout_ms);
	if (n == 0)
		return err_setx(e, EINVAL, "conn %s: read: zero-length buffer", p->peer);
	for (;;) {
		ssize_t r = read(p->fd, buf, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return err_set(e, errno, "conn %s: read", p->peer);
		int w = wait_fd(p->fd, POLLIN, deadline);
		if (w == 0)
			return err_setx(e, ETIMEDOUT, "conn %s: read: timed out after %d ms",
					p->peer, timeout_ms);
		if (w < 0)
			return err_set(e, -w, "conn %s: read: poll", p->peer);
	}
}

static int plain_write(void *impl, const void *buf, size_t n, int timeout_ms, struct err *e)
{
	struct conn_plain *p = impl;
	int64_t deadline = deadline_of(timeout_ms);
	const uint8_t *b = buf;
	while (n > 0) {
		ssize_t r = p->is_sock ? send(p->fd, b, n, MSG_NOSIGNAL) : write(p->fd, b, n);
		if (r > 0) {
			b += r;
			n -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return err_set(e, errno, "conn %s: write", p->peer);
		int w = wait_fd(p->fd, POLLOUT, deadline);
		if (w == 0)
			return err_setx(e, ETIMEDOUT, "conn %s: write: timed out after %d ms",
					p->peer, timeout_ms);
		if (w < 0)
			return err_set(e, -w, "conn %s: write: poll", p->peer);
	}
	return 0;
}

static bool plain_pending(void *impl)
{
	(void)impl;
	return false;
}

static void plain_close(void *impl)
{
	struct conn_plain *p = impl;
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static const struct conn_ops plain_ops = {
	.read = plain_read,
	.write = plain_write,
	.pending = plain_pending,
	.close = plain_close,
};

/* Make a conn around fd (taken in every case). */
static int plain_new(struct conn **out, int fd, const char *peer, const struct conn_opts *o,
		     struct err *e)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct conn_plain *p = calloc(1, sizeof(*p));
	if (!c || !p) {
		free(c);
		free(p);
		close(fd);
		return err_set(e, ENOMEM, "conn %s: allocate", peer);
	}
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	int type = 0;
	socklen_t tl = sizeof(type);
	p->fd = fd;
	p->is_sock = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0;
	p->peer = c->peer;
	c->ops = &plain_ops;
	c->impl = p;
	c->fd = fd;
	c->opts.connect_timeout_ms =
		conn_timeout_ms(o ? o->connect_timeout_ms : 0, CONN_CONNECT_DEFAULT_MS);
	c->opts.io_timeout_ms = conn_timeout_ms(o ? o->io_timeout_ms : 0, CONN_IO_DEFAULT_MS);
	*out = c;
	return 0;
}

int conn_open_fd(struct conn **out, int fd, const struct conn_opts *o, struct err *e)
{
	char peer[32];
	*out = NULL;
	snprintf(peer, sizeof(peer), "fd %d", fd);
	if (fd < 0)
		return err_setx(e, EBADF, "conn %s: not a descriptor", peer);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int r = err_set(e, errno, "conn %s: set non-blocking", peer);
		close(fd);
		return r;
	}
	return plain_new(out, fd, peer, o, e);
}

/* Try one address: 0 and *fd_out, or -errno (ETIMEDOUT when the deadline passed). */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (r < 0 && errno != EINPROGRESS && errno != EINTR) {
		r = -errno;
		goto fail;
	}
	if (r < 0) {
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w <= 0) {
			r = w == 0 ? -ETIMEDOUT : w;
			goto fail;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
			r = -errno;
			goto fail;
		}
		if (soerr) {
			r = -soerr;
			goto fail;
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static int gai_errno(int g)
{
	switch (g) {
	case EAI_NONAME:
		return ENOENT;
	case EAI_AGAIN:
		return EAGAIN;
	case EAI_MEMORY:
		return ENOMEM;
	case EAI_SERVICE:
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
	case EAI_BADFLAGS:
		return EINVAL;
	case EAI_SYSTEM:
		return errno ? errno : EIO;
	}
	return EIO;
}

int conn_open_tcp(struct conn **out, const char *host, const char *port,
		  const struct conn_opts *o, struct err *e)
{
	char h[CONN_PEER_MAX], peer[CONN_PEER_MAX];
	*out = NULL;
	if (!host || !*host || !port || !*port)
		return err_setx(e, EINVAL, "conn: connect: empty host or port");
	size_t hl = strlen(host);
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(h) - 16 || strlen(port) > 5)
		return err_setx(e, EINVAL, "conn: connect: host or port too long or empty");
	memcpy(h, host, hl);
	h[hl] = '\0';
	if (memchr(h, ':', hl))
		snprintf(peer, sizeof(peer), "[%s]:%s", h, port);
	else
		snprintf(peer, sizeof(peer), "%s:%s", h, port);

	bool numeric = true;
	for (const char *q = port; *q; q++)
		numeric &= *q >= '0' && *q <= '9';
	if (!numeric)
		return err_setx(e, EINVAL, "conn %s: connect: port is not a number", peer);

	int timeout = conn_timeout_ms(o ? o->connect_timeout_ms : 0, CONN_CONNECT_DEFAULT_MS);
	int64_t deadline = deadline_of(timeout);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	}, *res = NULL;
	errno = 0;
	int g = getaddrinfo(h, port, &hints, &res);
	if (g != 0)
		return err_setx(e, gai_errno(g), "conn %s: resolve: %s", peer, gai_strerror(g));

	int r = -EHOSTUNREACH, fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai, deadline, &fd);
		if (r == 0 || r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (r == -ETIMEDOUT)
		return err_setx(e, ETIMEDOUT, "conn %s: connect: timed out after %d ms", peer,
				timeout);
	if (r < 0)
		return err_set(e, -r, "conn %s: connect", peer);
	return plain_new(out, fd, peer, o, e);
}

ssize_t conn_read_within(struct conn *c, void *buf, size_t n, int timeout_ms, struct err *e)
{
	return c->ops->read(c->impl, buf, n, timeout_ms, e);
}

int conn_write_within(struct conn *c, const void *buf, size_t n, int timeout_ms,
		      struct err *e)
{
	return c->ops->write(c->impl, buf, n, timeout_ms, e);
}

ssize_t conn_read(struct conn *c, void *buf, size_t n, struct err *e)
{
	return c->ops->read(c->impl, buf, n, c->opts.io_timeout_ms, e);
}

int conn_write(struct conn *c, const void *buf, size_t n, struct err *e)
{
	return c->ops->write(c->impl, buf, n, c->opts.io_timeout_ms, e);
}

bool conn_pending(struct conn *c)
{
	return c->ops->pending && c->ops->pending(c->impl);
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

void conn_close(struct conn *c)
{
	if (!c)
		return;
	c->ops->close(c->impl);
	free(c);
}
