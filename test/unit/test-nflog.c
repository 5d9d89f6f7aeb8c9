/* Unit tests for net/nflog without a kernel: datagrams the kernel sent an nflog listener,
 * recorded by test/data/nflog/record.py, are parsed back; malformed packets are refused
 * with a reason. */
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nflog.h"
#include "net/nl.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DIR "test/data/nflog/"

static size_t slurp(const char *name, uint8_t *buf, size_t cap)
{
	char path[256];
	snprintf(path, sizeof(path), DIR "%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

struct got {
	struct nflog_pkt p[4]; /* the first packets */
	int n;		       /* packets handed out */
};

static int keep(const struct nflog_pkt *p, void *arg)
{
	struct got *g = arg;
	if (g->n < 4)
		g->p[g->n] = *p;
	g->n++;
	return 0;
}

static const struct nflog_pkt *first(const char *file, struct got *g)
{
	uint8_t buf[4096];
	struct err e = { 0 };
	size_t n = slurp(file, buf, sizeof(buf));
	memset(g, 0, sizeof(*g));
	T_CHECK(n > 16);
	int rc = nflog_parse_buf(buf, n, keep, g, &e);
	T_CHECK(rc >= 1);
	if (rc < 1) {
		t_note("%s: %d %s", file, rc, e.msg);
		return NULL;
	}
	return &g->p[0];
}

static void addr4(struct ip_addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	inet_pton(AF_INET, s, a->b);
}

static void addr6(struct ip_addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET6;
	inet_pton(AF_INET6, s, a->b);
}

static void test_udp4(void)
{
	struct got g;
	const struct nflog_pkt *p = first("nflog-udp4.bin", &g);
	if (!p)
		return;
	struct ip_addr a;
	addr4(&a, "198.18.0.1");
	T_EQ(p->group, 7);
	T_STREQ(p->prefix, "kvnet deny i_kvtest");
	T_CHECK(ip_eq(&p->src, &a) && ip_eq(&p->dst, &a));
	T_EQ(p->proto, IPPROTO_UDP);
	T_CHECK(p->has_ports);
	T_EQ(p->sport, 5353);
	T_EQ(p->dport, 9999);
	T_EQ(p->len, 20 + 8 + 100);
	T_EQ(p->outdev, 1); /* lo */
	T_EQ(p->indev, 0);
}

static void test_tcp4(void)
{
	struct got g;
	const struct nflog_pkt *p = first("nflog-tcp4.bin", &g);
	if (!p)
		return;
	T_EQ(p->proto, IPPROTO_TCP);
	T_CHECK(p->has_ports);
	T_EQ(p->dport, 8080);
	T_CHECK(p->sport != 0);
}

static void test_icmp4(void)
{
	struct got g;
	const struct nflog_pkt *p = first("nflog-icmp4.bin", &g);
	if (!p)
		return;
	T_EQ(p->proto, IPPROTO_ICMP);
	T_CHECK(!p->has_ports);
	T_EQ(p->sport, 0);
	T_EQ(p->dport, 0);
}

static void test_udp6(void)
{
	struct got g;
	const struct nflog_pkt *p = first("nflog-udp6.bin", &g);
	if (!p)
		return;
	struct ip_addr a;
	addr6(&a, "2001:db8::1");
	T_STREQ(p->prefix, "kvnet deny e_kvtest");
	T_CHECK(ip_eq(&p->src, &a) && ip_eq(&p->dst, &a));
	T_EQ(p->proto, IPPROTO_UDP);
	T_EQ(p->sport, 5354);
	T_EQ(p->dport, 9998);
	T_EQ(p->len, 40 + 8 + 10);
}

/* A packet message built here: nfgenmsg, a prefix, the payload given. */
static size_t build(uint8_t *buf, uint16_t type, const uint8_t *pl, size_t plen)
{
	struct nl_msg m;
	struct nfgenmsg g = { .nfgen_family = 2, .version = 0, .res_id = htons(3) };
	nl_msg_init(&m, buf, 512, type, 0);
	nl_put_fam(&m, &g, sizeof(g));
	nl_put_str(&m, NFULA_PREFIX, "p");
	nl_put(&m, NFULA_PAYLOAD, pl, plen);
	return nl_msg_len(&m);
}

static void test_refused(void)
{
	uint8_t buf[512], pl[64];
	struct err e = { 0 };
	struct got g = { 0 };
	struct nflog_pkt p;
	memset(pl, 0, sizeof(pl));
	pl[0] = 0x45;
	size_t n = build(buf, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET, pl, 10);
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), -EBADMSG); /* IPv4 header cut short */
	T_CHECK(strstr(e.msg, "IPv4 header cut short") != NULL);
	pl[0] = 0x55;
	n = build(buf, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET, pl, 40);
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "version 5") != NULL);
	pl[0] = 0x41; /* IHL 4: 16 bytes */
	n = build(buf, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET, pl, 40);
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), -EBADMSG);
	/* another subsystem's message is skipped, not refused */
	n = build(buf, (NFNL_SUBSYS_CTNETLINK << 8) | 0, pl, 40);
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), 0);
	struct nl_msgv m = { .type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, .data = pl,
			     .len = 8 };
	T_EQ(nflog_parse(&m, &p, &e), -ENOMSG);
	/* a whole IPv4 header and a transport header cut short: no ports, not an error */
	pl[0] = 0x45;
	pl[9] = IPPROTO_TCP;
	n = build(buf, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET, pl, 22);
	memset(&g, 0, sizeof(g));
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), 1);
	T_CHECK(!g.p[0].has_ports && g.p[0].proto == IPPROTO_TCP && g.p[0].group == 3);
	/* a datagram whose length field overruns */
	buf[0] = 0xff;
	T_EQ(nflog_parse_buf(buf, n, keep, &g, &e), -EBADMSG);
}

int main(void)
{
	T_RUN(test_udp4);
	T_RUN(test_tcp4);
	T_RUN(test_icmp4);
	T_RUN(test_udp6);
	T_RUN(test_refused);
	return t_done();
}
