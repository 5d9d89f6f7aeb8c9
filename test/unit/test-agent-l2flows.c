/* test-agent-l2flows — the pure part of agent/l2flows: set elements (as nft_set_load
 * reads them) of a VM port's traffic become observations with the right direction,
 * peer, service port and counter growth between windows. */
#include "agent/l2flows.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAXO 8

struct seen {
	struct l2f_obs o[MAXO]; /* observations */
	unsigned n;		/* how many */
};

static void on_obs(void *arg, const struct l2f_obs *o)
{
	struct seen *s = arg;
	if (s->n < MAXO)
		s->o[s->n++] = *o;
}

/* An IPv4 element: iif . src . dst . sport . dport with a counter. */
static void elem4(struct nft_elem_info *el, const char *iif, const char *src, const char *dst,
		  uint16_t sport, uint16_t dport, uint64_t pkts, uint64_t bytes)
{
	struct ip_addr a, b;
	memset(el, 0, sizeof(*el));
	ip_parse(src, &a);
	ip_parse(dst, &b);
	strncpy((char *)el->key, iif, 16);
	memcpy(el->key + 16, a.b, 4);
	memcpy(el->key + 20, b.b, 4);
	el->key[24] = (uint8_t)(sport >> 8), el->key[25] = (uint8_t)sport;
	el->key[28] = (uint8_t)(dport >> 8), el->key[29] = (uint8_t)dport;
	el->len = 32;
	el->has_counter = pkts || bytes;
	el->packets = pkts;
	el->bytes = bytes;
}

static void port(struct l2f_port *p, const char *name, const char *uid, const char *ip)
{
	memset(p, 0, sizeof(*p));
	strcpy(p->name, name);
	strcpy(p->id.uid, uid);
	ip_parse(ip, &p->id.ips[0]);
	p->id.n_ips = 1;
}

/* A legacy host 198.18.100.5 (behind the trunk kvu-1) opens TCP to the VM's 22; the VM
 * answers from its port kvp-a. Then a second window with more bytes one way. */
static void test_tcp_ingress_and_growth(void)
{
	struct err e = {0};
	struct l2flows *lf = l2flows_new(100, 60, &e);
	T_CHECK(lf != NULL);
	struct l2f_port p;
	port(&p, "kvp-a", "uid-a", "198.18.100.10");
	struct nft_elem_info els[2], syn[1];
	elem4(&els[0], "kvu-1", "198.18.100.5", "198.18.100.10", 40000, 22, 5, 400);
	elem4(&els[1], "kvp-a", "198.18.100.10", "198.18.100.5", 22, 40000, 4, 3000);
	elem4(&syn[0], "kvu-1", "198.18.100.5", "198.18.100.10", 40000, 22, 0, 0);
	struct nft_set_info set = {.elems = els, .nelems = 2}, ss = {.elems = syn, .nelems = 1};
	struct seen s = {.n = 0};
	l2flows_begin(lf);
	l2flows_feed(lf, &set, &ss, AF_INET, IPPROTO_TCP, &p, 1, on_obs, &s);
	l2flows_end(lf);
	T_EQ(s.n, 2);
	for (unsigned i = 0; i < s.n; i++) {
		const struct l2f_obs *o = &s.o[i];
		char a[IP_STRLEN];
		T_CHECK(!o->vm_opened && o->port == &p);
		T_STREQ(ip_fmt(&o->t.src, a), "198.18.100.5");
		T_EQ(o->t.dport, 22);
		T_EQ(o->t.proto, IPPROTO_TCP);
	}
	/* the SYN's way is original (started), the answer is the reply */
	T_CHECK(s.o[0].started && s.o[0].orig_bytes == 400 && s.o[0].orig_pkts == 5 &&
		s.o[0].reply_bytes == 0);
	T_CHECK(!s.o[1].started && s.o[1].reply_bytes == 3000 && s.o[1].orig_bytes == 0);
	/* next window: the answer grew, the request did not */
	els[1].packets = 6, els[1].bytes = 4500;
	s.n = 0;
	l2flows_begin(lf);
	l2flows_feed(lf, &set, &ss, AF_INET, IPPROTO_TCP, &p, 1, on_obs, &s);
	l2flows_end(lf);
	T_EQ(s.n, 1);
	T_CHECK(s.n == 1 && s.o[0].reply_bytes == 1500 && s.o[0].reply_pkts == 2 &&
		!s.o[0].started);
	/* a window without the element forgets it: it counts from 0 when it comes back */
	s.n = 0;
	l2flows_begin(lf);
	l2flows_end(lf);
	l2flows_begin(lf);
	l2flows_feed(lf, &set, &ss, AF_INET, IPPROTO_TCP, &p, 1, on_obs, &s);
	l2flows_end(lf);
	T_EQ(s.n, 2);
	l2flows_free(lf);
}

/* UDP without SYNs: the higher port is the client's; the VM sending to 53 opened it. A
 * flow of another port's addresses is not this port's. */
static void test_udp_egress_and_others(void)
{
	struct err e = {0};
	struct l2flows *lf = l2flows_new(100, 60, &e);
	struct l2f_port p;
	port(&p, "kvp-a", "uid-a", "198.18.100.10");
	struct nft_elem_info els[3];
	elem4(&els[0], "kvp-a", "198.18.100.10", "198.18.100.53", 50000, 53, 1, 60);
	elem4(&els[1], "kvu-1", "198.18.100.53", "198.18.100.10", 53, 50000, 1, 120);
	elem4(&els[2], "kvu-1", "198.18.100.53", "198.18.100.99", 53, 50001, 1, 120);
	struct nft_set_info set = {.elems = els, .nelems = 3};
	struct seen s = {.n = 0};
	l2flows_begin(lf);
	l2flows_feed(lf, &set, NULL, AF_INET, IPPROTO_UDP, &p, 1, on_obs, &s);
	l2flows_end(lf);
	T_EQ(s.n, 2);
	for (unsigned i = 0; i < s.n; i++) {
		char a[IP_STRLEN];
		T_CHECK(s.o[i].vm_opened);
		T_STREQ(ip_fmt(&s.o[i].t.dst, a), "198.18.100.53");
		T_EQ(s.o[i].t.dport, 53);
	}
	T_CHECK(s.o[0].orig_bytes == 60 && s.o[0].started);
	T_CHECK(s.o[1].reply_bytes == 120 && !s.o[1].started);
	/* a key of the wrong length (another family's) is skipped */
	s.n = 0;
	l2flows_begin(lf);
	l2flows_feed(lf, &set, NULL, AF_INET6, IPPROTO_UDP, &p, 1, on_obs, &s);
	l2flows_end(lf);
	T_EQ(s.n, 0);
	T_CHECK(l2flows_new(0, 60, &e) == NULL);
	l2flows_free(lf);
}

int main(void)
{
	T_RUN(test_tcp_ingress_and_growth);
	T_RUN(test_udp_egress_and_others);
	return t_done();
}
