/* test-ct-acct — conntrack event datagrams recorded from the kernel
 * (test/data/netlink/ct-event-*.bin) through ct_events_parse: every message has its
 * id, DESTROY events carry both directions' counters, NEW events none; a cut datagram
 * is refused. */
#include "net/ct.h"
#include "lib/err.h"
#include "lib/file.h"
#include "test/lib/t.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seen {
	unsigned n, news, destroys, with_acct, ids;
	uint64_t tcp_bytes_orig; /* bytes of the TCP connection's original direction */
};

static int cb(enum ct_event ev, const struct ct_entry *fc, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->ids += (fc->id != 0);
	if (ev == CT_EV_NEW) {
		s->news++;
		T_CHECK(!fc->has_counters);
	}
	if (ev == CT_EV_DESTROY) {
		s->destroys++;
		s->with_acct += fc->has_counters;
		if (fc->orig.proto == IPPROTO_TCP && fc->orig.dport == 8080)
			s->tcp_bytes_orig = fc->bytes[0];
		T_CHECK(fc->packets[0] > 0 && fc->bytes[0] >= fc->packets[0]);
	}
	return 0;
}

static void test_recorded(void)
{
	struct seen s = { 0 };
	for (int i = 0; i < 6; i++) {
		char path[64], *buf;
		size_t len;
		struct err e = { 0 };
		snprintf(path, sizeof(path), "test/data/netlink/ct-event-%d.bin", i);
		T_EQ(file_read(path, 1 << 20, &buf, &len, &e), 0);
		T_CHECK(ct_events_parse(buf, len, cb, &s, &e) >= 1);
		/* cut anywhere inside the first message: refused, never read past */
		struct err e2 = { 0 };
		T_EQ(ct_events_parse(buf, len - 3, cb, &(struct seen){ 0 }, &e2), -EBADMSG);
		free(buf);
	}
	T_EQ(s.n, 6);
	T_EQ(s.ids, 6);
	T_EQ(s.news, 3);
	T_EQ(s.destroys, 3);
	T_EQ(s.with_acct, 3);
	/* "hello\n" plus the handshake and FIN: 6 bytes of payload in 5 or more packets */
	T_CHECK(s.tcp_bytes_orig >= 6 + 5 * 52);
}

int main(void)
{
	T_RUN(test_recorded);
	return t_done();
}
