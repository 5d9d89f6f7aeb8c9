/* garp-latency — the figure "frame arrival (kernel timestamp) -> event delivered to
 * userspace" for net/packet, run by test/bench/bench-garp.
 *
 *   garp-latency NS_A NS_B N [send-only]   (built and run by test/bench/bench-garp)
 *
 * Two namespaces (made by the script) joined by a veth pair a0 (NS_A) - b0 (NS_B). A sender thread in A sends N gratuitous ARPs
 * (plus one ordinary ARP request after each, which the kernel filter must drop), one
 * per millisecond, from a plain AF_PACKET socket; the main thread in B waits in
 * epoll_wait on a pkt_open socket and, for each event, takes CLOCK_REALTIME right after
 * pkt_next returned and subtracts the event's kernel receive timestamp. Prints p50,
 * p99 and max in microseconds. Asserts nothing about time. With send-only it only sends
 * (for the peer, measured alone on the same traffic). */
#include "lib/err.h"
#include "net/announce.h"
#include "net/netns.h"
#include "net/packet.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sender {
	const char *ns; /* namespace of the sending end */
	int n;		/* frames to send */
	int rc;		/* 0 or -errno */
};

static void *send_main(void *arg)
{
	struct sender *s = arg;
	struct netns_saved saved;
	struct err e = {0};
	if (netns_enter_path(&saved, s->ns, &e) < 0) {
		s->rc = -1;
		return NULL;
	}
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	int ifindex = (int)if_nametoindex("a0");
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x42};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6,
				  .sll_protocol = htons(0x0806)};
	memset(sll.sll_addr, 0xff, 6);
	for (int i = 0; i < s->n && fd >= 0; i++) {
		uint8_t f[ANN_FRAME_MAX];
		struct ip_addr ip = {.family = AF_INET, .b = {198, 18, 3, (uint8_t)(i % 250 + 1)}};
		int len = ann_build_garp(f, sizeof(f), mac, &ip, false);
		sendto(fd, f, (size_t)len, 0, (struct sockaddr *)&sll, sizeof(sll));
		f[41] ^= 0x80; /* an ordinary request: target differs */
		sendto(fd, f, (size_t)len, 0, (struct sockaddr *)&sll, sizeof(sll));
		struct timespec d = {0, 1000000};
		nanosleep(&d, NULL);
	}
	if (fd >= 0)
		close(fd);
	netns_return(&saved, &e);
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5 || atoi(argv[3]) <= 0 ||
	    (argc == 5 && strcmp(argv[4], "send-only") != 0)) {
		fprintf(stderr, "usage: garp-latency NS_A NS_B N [send-only]\n");
		return 2;
	}
	const char *A = argv[1], *B = argv[2];
	int n = atoi(argv[3]);
	struct err e = {0};
	if (argc == 5) {
		struct sender only = {.ns = A, .n = n};
		send_main(&only);
		return only.rc == 0 ? 0 : 1;
	}
	struct netns_saved saved;
	if (netns_enter_path(&saved, B, &e) < 0)
		return 1;
	struct pkt_sock *s = pkt_open((int)if_nametoindex("b0"), 0, &e);
	netns_return(&saved, &e);
	if (!s) {
		fprintf(stderr, "garp-latency: %s\n", e.msg);
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ee = {.events = EPOLLIN};
	epoll_ctl(ep, EPOLL_CTL_ADD, pkt_fd(s), &ee);
	long long *lat = calloc((size_t)n, sizeof(*lat));
	struct sender snd = {.ns = A, .n = n};
	pthread_t th;
	pthread_create(&th, NULL, send_main, &snd);
	int got = 0;
	while (got < n) {
		if (epoll_wait(ep, &ee, 1, 2000) <= 0)
			break;
		struct ann_event ev;
		while (got < n && pkt_next(s, &ev, NULL, &e) == 1) {
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			lat[got++] = (now.tv_sec - ev.ts.tv_sec) * 1000000000LL +
				     (now.tv_nsec - ev.ts.tv_nsec);
		}
	}
	pthread_join(th, NULL);
	struct pkt_stats ps;
	pkt_stats(s, &ps, &e);
	qsort(lat, (size_t)got, sizeof(*lat), cmp_ll);
	if (got > 0)
		printf("garp-capture-latency: kernel timestamp -> event in userspace: p50 %.1f us, "
		       "p99 %.1f us, max %.1f us (%d of %d events; %llu other frames reached "
		       "userspace, %llu dropped)\n",
		       lat[got / 2] / 1000.0, lat[(got * 99) / 100] / 1000.0, lat[got - 1] / 1000.0,
		       got, n, (unsigned long long)ps.ignored, (unsigned long long)ps.dropped);
	free(lat);
	pkt_close(s);
	close(ep);
	return got == n ? 0 : 1;
}
