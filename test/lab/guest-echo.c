/* guest-echo — the echo responder inside the lab's QEMU guest (test/lab/qemuvm.py builds
 * it with musl-gcc -static into the guest's initramfs; it is not part of dist/kvnet).
 *
 *     guest-echo NAME
 *
 * UDP port 7, v4 and v6: a datagram that starts with "KVE1" (echo.py's stream) is answered
 * with its first 12 bytes (magic + sequence number) followed by NAME, so the stream knows
 * who answered; any other datagram is echoed as it is. TCP port 7, v4 and v6: every
 * connection gets back what it sends (up to MAXCONN connections at once, one poll loop,
 * no fork). Errors go to stderr (the guest's console) and end the program with status 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PORT = 7, MAXCONN = 64, NLISTEN = 4 };

static int die(const char *what)
{
	fprintf(stderr, "guest-echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A socket of family fam and type type bound to the wildcard address, port 7. */
static int bound(int fam, int type)
{
	int one = 1;
	int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6) {
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(PORT),
					  .sin6_addr = IN6ADDR_ANY_INIT};

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0)
			die("bind [::]:7");
	} else {
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(PORT),
					 .sin_addr.s_addr = htonl(INADDR_ANY)};

		if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0)
			die("bind 0.0.0.0:7");
	}
	if (type == SOCK_STREAM && listen(fd, 16) < 0)
		die("listen");
	return fd;
}

static void udp_answer(int fd, const char *name, size_t nlen)
{
	unsigned char buf[2048];
	struct sockaddr_storage peer;

	for (;;) {
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);

		if (n < 0)
			return;
		if (n >= 12 && memcmp(buf, "KVE1", 4) == 0 && 12 + nlen <= sizeof(buf)) {
			memcpy(buf + 12, name, nlen);
			n = (ssize_t)(12 + nlen);
		}
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
	}
}

int main(int argc, char **argv)
{
	struct pollfd p[NLISTEN + MAXCONN];
	int nconn = 0, one = 1;
	const char *name;
	size_t nlen;

	if (argc != 2) {
		fprintf(stderr, "usage: guest-echo NAME\n");
		return 2;
	}
	name = argv[1];
	nlen = strlen(name);
	p[0].fd = bound(AF_INET, SOCK_DGRAM);
	p[1].fd = bound(AF_INET6, SOCK_DGRAM);
	p[2].fd = bound(AF_INET, SOCK_STREAM);
	p[3].fd = bound(AF_INET6, SOCK_STREAM);
	for (int i = 0; i < NLISTEN; i++)
		p[i].events = POLLIN;
	fprintf(stderr, "guest-echo: %s: udp and tcp port %d, v4 and v6\n", name, PORT);
	for (;;) {
		if (poll(p, (nfds_t)(NLISTEN + nconn), -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < 2; i++)
			if (p[i].revents & POLLIN)
				udp_answer(p[i].fd, name, nlen);
		for (int i = 2; i < NLISTEN; i++) {
			int c;

			if (!(p[i].revents & POLLIN))
				continue;
			while ((c = accept4(p[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				if (nconn == MAXCONN) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				p[NLISTEN + nconn].fd = c;
				p[NLISTEN + nconn].events = POLLIN;
				p[NLISTEN + nconn].revents = 0;
				nconn++;
			}
		}
		for (int i = NLISTEN; i < NLISTEN + nconn; i++) {
			char buf[4096];
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			/* a short write (full send buffer) drops bytes: the client sees a gap in
			 * its sequence numbers and says so, it does not go unnoticed */
			if (n <= 0 || write(p[i].fd, buf, (size_t)n) < 0) {
				close(p[i].fd);
				p[i] = p[NLISTEN + nconn - 1];
				nconn--;
				i--;
			}
		}
	}
}
