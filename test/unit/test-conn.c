/* test-conn — the plain transport over a socketpair and loopback TCP listeners. */
#include "kube/conn.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* A listening socket on loopback (v4 or v6) with an ephemeral port. */
static int listener(int family, int backlog, char *port, size_t portlen)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		close(fd);
		return -1;
	}
	unsigned p = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snprintf(port, portlen, "%u", p);
	return fd;
}

static void test_socketpair_roundtrip_and_eof(void)
{
	int sv[2];
	struct err e = { 0 };
	struct conn *c = NULL;
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_EQ(conn_open_fd(&c, sv[0], NULL, &e), 0);
	if (!c)
		return;
	T_CHECK(strncmp(c->peer, "fd ", 3) == 0);
	T_EQ(c->opts.io_timeout_ms, 30000);
	T_EQ(c->opts.connect_timeout_ms, 10000);
	T_CHECK(fcntl(conn_fd(c), F_GETFD) & FD_CLOEXEC);
	T_CHECK(fcntl(conn_fd(c), F_GETFL) & O_NONBLOCK);
	T_CHECK(!conn_pending(c));

	T_EQ(conn_write(c, "hello", 5, &e), 0);
	char buf[16] = { 0 };
	T_EQ(read(sv[1], buf, sizeof(buf)), 5);
	T_MEMEQ(buf, "hello", 5);

	T_EQ(write(sv[1], "world!", 6), 6);
	T_EQ(conn_read(c, buf, sizeof(buf), &e), 6);
	T_MEMEQ(buf, "world!", 6);

	close(sv[1]);
	T_EQ(conn_read(c, buf, sizeof(buf), &e), 0);
	conn_close(c);
}

static void test_read_timeout(void)
{
	int sv[2];
	struct err e = { 0 };
	struct conn *c = NULL;
	struct conn_opts o = { .io_timeout_ms = 50 };
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	char buf[8];
	T_EQ(conn_read(c, buf, sizeof(buf), &e), -ETIMEDOUT);
	T_EQ(e.code, ETIMEDOUT);
	T_CHECK(strstr(e.msg, "read: timed out after 50 ms") != NULL);
	T_CHECK(strstr(e.msg, c->peer) != NULL);
	conn_close(c);
	close(sv[1]);
}

static void test_write_timeout_when_peer_does_not_read(void)
{
	int sv[2];
	struct err e = { 0 };
	struct conn *c = NULL;
	struct conn_opts o = { .io_timeout_ms = 50 };
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	size_t big = 16 << 20;
	char *buf = calloc(1, big);
	T_EQ(conn_write(c, buf, big, &e), -ETIMEDOUT);
	T_CHECK(strstr(e.msg, "write: timed out after 50 ms") != NULL);
	free(buf);
	conn_close(c);
	close(sv[1]);
}

static void test_write_to_closed_peer_is_epipe_not_signal(void)
{
	int sv[2];
	struct err e = { 0 };
	struct conn *c = NULL;
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_EQ(conn_open_fd(&c, sv[0], NULL, &e), 0);
	close(sv[1]);
	/* SIGPIPE is at its default (terminate) here: surviving this proves MSG_NOSIGNAL. */
	T_EQ(conn_write(c, "x", 1, &e), -EPIPE);
	T_CHECK(strstr(e.msg, ": write: ") != NULL);
	conn_close(c);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A timer interrupts the poll every few ms; the read must keep waiting and get the data. */
static void test_eintr_is_retried(void)
{
	int sv[2];
	struct err e = { 0 };
	struct conn *c = NULL;
	struct conn_opts o = { .io_timeout_ms = 10000 };
	T_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(150 * 1000);
		ssize_t w = write(sv[1], "late", 4);
		_exit(w == 4 ? 0 : 1);
	}
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 5000 }, { 0, 5000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	char buf[8];
	ssize_t n = conn_read(c, buf, sizeof(buf), &e);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	T_EQ(n, 4);
	T_MEMEQ(buf, "late", 4);
	int st;
	waitpid(pid, &st, 0);
	conn_close(c);
	close(sv[1]);
}

static void tcp_roundtrip(int family, const char *host, const char *want_peer_prefix)
{
	char port[16], want[64];
	struct err e = { 0 };
	struct conn *c = NULL;
	int lfd = listener(family, 8, port, sizeof(port));
	T_CHECK(lfd >= 0);
	T_EQ(conn_open_tcp(&c, host, port, NULL, &e), 0);
	if (!c) {
		t_note("%s", e.msg);
		close(lfd);
		return;
	}
	snprintf(want, sizeof(want), "%s:%s", want_peer_prefix, port);
	T_STREQ(c->peer, want);
	T_CHECK(fcntl(conn_fd(c), F_GETFD) & FD_CLOEXEC);
	int nd = 0;
	socklen_t sl = sizeof(nd);
	T_CHECK(getsockopt(conn_fd(c), IPPROTO_TCP, TCP_NODELAY, &nd, &sl) == 0 && nd);
	int s = accept(lfd, NULL, NULL);
	T_CHECK(s >= 0);
	T_EQ(conn_write(c, "ping", 4, &e), 0);
	char buf[8];
	T_EQ(read(s, buf, sizeof(buf)), 4);
	T_EQ(write(s, "pong", 4), 4);
	T_EQ(conn_read(c, buf, sizeof(buf), &e), 4);
	T_MEMEQ(buf, "pong", 4);
	close(s);
	T_EQ(conn_read(c, buf, sizeof(buf), &e), 0);
	conn_close(c);
	close(lfd);
}

static void test_tcp_ipv4(void)
{
	tcp_roundtrip(AF_INET, "127.0.0.1", "127.0.0.1");
}

static void test_tcp_ipv6_bare(void)
{
	tcp_roundtrip(AF_INET6, "::1", "[::1]");
}

static void test_tcp_ipv6_bracketed(void)
{
	tcp_roundtrip(AF_INET6, "[::1]", "[::1]");
}

static void test_tcp_name(void)
{
	/* "localhost" resolves from /etc/hosts; it may list ::1 first, so listen on v4
	 * only and let the v6 attempt be refused: the loop must try the next address. */
	char port[16];
	struct err e = { 0 };
	struct conn *c = NULL;
	int lfd = listener(AF_INET, 8, port, sizeof(port));
	int r = conn_open_tcp(&c, "localhost", port, NULL, &e);
	if (r < 0)
		t_note("%s", e.msg);
	T_EQ(r, 0);
	conn_close(c);
	close(lfd);
}

static void test_connect_refused(void)
{
	char port[16], want[96];
	struct err e = { 0 };
	struct conn *c = NULL;
	int lfd = listener(AF_INET, 1, port, sizeof(port));
	close(lfd); /* nothing listens on that port now */
	T_EQ(conn_open_tcp(&c, "127.0.0.1", port, NULL, &e), -ECONNREFUSED);
	T_CHECK(c == NULL);
	snprintf(want, sizeof(want), "conn 127.0.0.1:%s: connect: %s", port,
		 strerror(ECONNREFUSED));
	T_STREQ(e.msg, want);
}

/* A listener whose accept queue is full drops further SYNs, so connect never completes. */
static void test_connect_timeout(void)
{
	char port[16];
	struct err e = { 0 };
	struct conn_opts o = { .connect_timeout_ms = 100 };
	struct conn *fill[4] = { 0 }, *c = NULL;
	int lfd = listener(AF_INET, 0, port, sizeof(port));
	int r = 0;
	for (unsigned i = 0; i < 4 && r == 0; i++)
		r = conn_open_tcp(&fill[i], "127.0.0.1", port, &o, &e);
	if (r == 0)
		r = conn_open_tcp(&c, "127.0.0.1", port, &o, &e);
	T_EQ(r, -ETIMEDOUT);
	T_CHECK(strstr(e.msg, "connect: timed out after 100 ms") != NULL);
	for (unsigned i = 0; i < 4; i++)
		conn_close(fill[i]);
	conn_close(c);
	close(lfd);
}

static void test_bad_arguments(void)
{
	struct err e = { 0 };
	struct conn *c = NULL;
	T_EQ(conn_open_tcp(&c, "", "443", NULL, &e), -EINVAL);
	T_EQ(conn_open_tcp(&c, "127.0.0.1", "https", NULL, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "port is not a number") != NULL);
	T_EQ(conn_open_tcp(&c, "[]", "443", NULL, &e), -EINVAL);
	T_EQ(conn_open_fd(&c, -1, NULL, &e), -EBADF);
	conn_close(NULL);
}

int main(void)
{
	T_RUN(test_socketpair_roundtrip_and_eof);
	T_RUN(test_read_timeout);
	T_RUN(test_write_timeout_when_peer_does_not_read);
	T_RUN(test_write_to_closed_peer_is_epipe_not_signal);
	T_RUN(test_eintr_is_retried);
	T_RUN(test_tcp_ipv4);
	T_RUN(test_tcp_ipv6_bare);
	T_RUN(test_tcp_ipv6_bracketed);
	T_RUN(test_tcp_name);
	T_RUN(test_connect_refused);
	T_RUN(test_connect_timeout);
	T_RUN(test_bad_arguments);
	return t_done();
}
