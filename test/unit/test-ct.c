/* Unit tests for net/ct over real kernel bytes: the dump reply, the event datagrams and
 * the wire form recorded by test/data/netlink/record-ct.py (see the README there). The wire
 * file was encoded by that script's own parser, so the C encoder is checked against an
 * independent one. Also the request builder against the parser, and the wire decoder's
 * refusals. */
#include "lib/err.h"
#include "net/ct.h"
#include "net/nl.h"
#include "test/lib/t.h"

#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DIR "test/data/netlink/"
#define PORTID 0x4b560002u

static int add_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct ct_entry ce;
	int rc = ct_parse(m, &ce, e);
	return rc < 0 ? rc : ct_list_add(arg, &ce, e);
}

/* The recorded dump, parsed as ct_dump does (reply parser + ct_parse). */
static int load_dump(struct ct_list *l)
{
	size_t len;
	struct err e = {0};
	struct nl_reply r;
	uint8_t *p = (uint8_t *)t_slurp(DIR "ct-dump.bin", &len);
	if (!p)
		return -ENOENT;
	nl_reply_init(&r, 201, PORTID, true, add_cb, l);
	int rc = nl_reply_feed(&r, p, len, &e);
	if (rc != 0)
		t_note("dump: %d %s", rc, e.msg);
	free(p);
	return rc;
}

static const struct ct_entry *find(const struct ct_list *l, uint8_t l3, uint8_t proto,
				   uint16_t dport)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].l3 == l3 && l->v[i].orig.proto == proto &&
		    (dport == 0 || l->v[i].orig.dport == dport))
			return &l->v[i];
	return NULL;
}

static void test_dump_replay(void)
{
	struct ct_list l = {0};
	char line[256];
	struct ip_addr a;
	T_EQ(load_dump(&l), 0);
	for (size_t i = 0; i < l.n; i++)
		t_note("%s", ct_entry_fmt(&l.v[i], line, sizeof(line)));
	/* the DNAT-ed TCP connection: 198.18.1.2 -> 198.18.7.7:80, replies from :8080 */
	const struct ct_entry *d = find(&l, AF_INET, IPPROTO_TCP, 80);
	T_CHECK(d != NULL);
	if (d) {
		T_STREQ(ip_fmt(&d->orig.src, line), "198.18.1.2");
		T_STREQ(ip_fmt(&d->orig.dst, line), "198.18.7.7");
		T_STREQ(ip_fmt(&d->reply.src, line), "198.18.6.1");
		T_EQ(d->reply.sport, 8080);
		T_EQ(d->reply.dport, d->orig.sport);
		T_CHECK(d->status & IPS_DST_NAT);
		T_CHECK(!(d->status & IPS_SRC_NAT));
		T_CHECK(d->has_tcp);
		T_EQ(d->tcp.state, TCP_CONNTRACK_TIME_WAIT); /* closed before the dump */
		T_CHECK(d->timeout > 0 && d->timeout <= 120);
	}
	const struct ct_entry *v6 = find(&l, AF_INET6, IPPROTO_TCP, 8080);
	T_CHECK(v6 != NULL && v6->has_tcp);
	if (v6)
		T_STREQ(ip_fmt(&v6->orig.dst, line), "2001:db8:6::1");
	const struct ct_entry *u = find(&l, AF_INET, IPPROTO_UDP, 53);
	T_CHECK(u != NULL && !u->has_tcp);
	if (u) {
		T_EQ(u->orig.sport, 5353);
		/* accounting: one datagram of one byte (20 + 8 + 1), no answer */
		T_CHECK(u->has_counters);
		T_EQ(u->packets[0], 1);
		T_EQ(u->bytes[0], 29);
		T_EQ(u->packets[1], 0);
		T_CHECK(u->id != 0 && u->start_ns != 0 && u->stop_ns == 0);
	}
	const struct ct_entry *ic = find(&l, AF_INET, IPPROTO_ICMP, 0);
	T_CHECK(ic != NULL);
	if (ic) {
		T_EQ(ic->orig.dport, 8 << 8);  /* echo request, code 0 */
		T_EQ(ic->reply.dport, 0 << 8); /* echo reply */
		T_EQ(ic->reply.sport, ic->orig.sport);
		/* ping -c 1: one echo request and one reply of 84 bytes */
		T_EQ(ic->packets[0], 1);
		T_EQ(ic->packets[1], 1);
		T_EQ(ic->bytes[0], 84);
		T_EQ(ic->bytes[1], 84);
	}
	if (d) {
		T_CHECK(d->has_counters && d->packets[0] >= 4 && d->packets[1] >= 4);
		T_CHECK(d->bytes[0] > d->packets[0] * 40);
	}
	/* the address filter: either tuple, either direction */
	ip_parse("198.18.6.1", &a);
	size_t hits = 0;
	for (size_t i = 0; i < l.n; i++)
		hits += ct_entry_has_addr(&l.v[i], &a, 1);
	T_EQ(hits, 3); /* DNAT-ed TCP (reply src), UDP, ICMP; not the v6 one */
	ip_parse("2001:db8:6::2", &a);
	T_CHECK(v6 && !ct_entry_has_addr(v6, &a, 1));
	ct_list_free(&l);
}

/* Our encoder = the recorder's independent one, byte for byte; and back. */
static void test_wire_matches_recorder(void)
{
	struct ct_list l = {0}, back = {0};
	struct err e = {0};
	size_t len;
	uint8_t *want = (uint8_t *)t_slurp(DIR "ct-wire.bin", &len);
	T_CHECK(want != NULL);
	T_EQ(load_dump(&l), 0);
	if (!want)
		return;
	T_EQ(len, ct_wire_size(l.n));
	uint8_t *got = malloc(len);
	T_EQ(ct_wire_encode(l.v, l.n, got, len, &e), (long)len);
	T_MEMEQ(got, want, len);
	T_EQ(ct_wire_decode(want, len, &back, &e), 0);
	T_EQ(back.n, l.n);
	for (size_t i = 0; i < l.n && i < back.n; i++)
		T_CHECK(ct_entry_eq(&back.v[i], &l.v[i]));
	/* a short buffer is refused, not truncated */
	T_EQ(ct_wire_encode(l.v, l.n, got, len - 1, &e), -EMSGSIZE);
	free(got);
	free(want);
	ct_list_free(&l);
	ct_list_free(&back);
}

struct evs {
	int n[3];	  /* by enum ct_event */
	int tcp_dnat_new; /* NEW events of the DNAT-ed connection */
};

static int ev_cb(enum ct_event ev, const struct ct_entry *ce, void *arg)
{
	struct evs *s = arg;
	s->n[ev]++;
	if (ev == CT_EV_NEW && ce->orig.proto == IPPROTO_TCP && ce->orig.dport == 80)
		s->tcp_dnat_new++;
	return 0;
}

static void test_events_replay(void)
{
	size_t len;
	struct err e = {0};
	struct evs s = {{0}, 0};
	uint8_t *p = (uint8_t *)t_slurp(DIR "ct-events.bin", &len);
	T_CHECK(p != NULL);
	if (!p)
		return;
	int n = ct_events_parse(p, len, ev_cb, &s, &e);
	t_note("events: %d (new %d, update %d, destroy %d)", n, s.n[CT_EV_NEW],
	       s.n[CT_EV_UPDATE], s.n[CT_EV_DESTROY]);
	T_EQ(n, s.n[0] + s.n[1] + s.n[2]);
	T_EQ(s.n[CT_EV_NEW], 4); /* TCP v4, TCP v6, UDP, ICMP */
	T_EQ(s.tcp_dnat_new, 1);
	T_CHECK(s.n[CT_EV_UPDATE] >= 2); /* TCP state changes */
	/* cut in the middle of a message: refused */
	T_EQ(ct_events_parse(p, len - 3, ev_cb, &s, &e), -EBADMSG);
	free(p);
}

static bool tuple_eq(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return ip_eq(&a->src, &b->src) && ip_eq(&a->dst, &b->dst) && a->proto == b->proto &&
	       a->sport == b->sport && a->dport == b->dport;
}

/* An update request parses back to the same tuples, timeout, mark, TCP state; a create of
 * a DNAT entry carries the un-NATed reply (the kernel applies CTA_NAT_DST to it). */
static void test_build_round_trip(void)
{
	struct ct_list l = {0};
	struct err e = {0};
	uint8_t buf[512];
	T_EQ(load_dump(&l), 0);
	for (size_t i = 0; i < l.n; i++) {
		const struct ct_entry *ce = &l.v[i];
		for (int create = 0; create < 2; create++) {
			struct ct_entry back;
			int len = ct_build_new(ce, create, buf, sizeof(buf), &e);
			T_CHECK(len > 16);
			if (len <= 16)
				continue;
			struct nl_msgv m = {.type = (uint16_t)(buf[4] | buf[5] << 8),
					    .flags = (uint16_t)(buf[6] | buf[7] << 8),
					    .data = buf + 16,
					    .len = (size_t)len - 16};
			T_EQ(ct_parse(&m, &back, &e), 0);
			T_CHECK(tuple_eq(&back.orig, &ce->orig));
			T_EQ(back.timeout, ce->timeout ? ce->timeout : 1);
			T_EQ(back.has_tcp, ce->has_tcp);
			T_EQ(back.tcp.state, ce->tcp.state);
			if (!create || !(ce->status & IPS_DST_NAT)) {
				T_CHECK(tuple_eq(&back.reply, &ce->reply));
			} else {
				T_CHECK(!tuple_eq(&back.reply, &ce->reply));
				T_CHECK(ip_eq(&back.reply.src, &ce->orig.dst));
				T_EQ(back.reply.sport, ce->orig.dport);
				T_CHECK(back.status & IPS_CONFIRMED);
			}
		}
	}
	T_EQ(ct_build_new(&l.v[0], true, buf, 40, &e), -EMSGSIZE);
	ct_list_free(&l);
}

static void test_wire_refusals(void)
{
	struct ct_list l = {0}, out = {0};
	struct err e = {0};
	size_t len;
	uint8_t *w = (uint8_t *)t_slurp(DIR "ct-wire.bin", &len);
	T_CHECK(w != NULL && len > CT_WIRE_HDR + CT_WIRE_ENTRY);
	if (!w)
		return;
	struct ct_entry keep = {.l3 = AF_INET};
	T_EQ(ct_list_add(&out, &keep, &e), 0);
	uint8_t *c = malloc(len);
#define TRY(edit, want)                                                                     \
	do {                                                                                \
		memcpy(c, w, len);                                                          \
		edit;                                                                       \
		T_EQ(ct_wire_decode(c, len, &out, &e), want);                               \
		T_EQ(out.n, 1);                                                             \
	} while (0)
	TRY(c[0] = 'X', -EBADMSG);
	TRY(c[4] = 2, -EPROTONOSUPPORT);
	TRY(c[5] = 1, -EBADMSG); /* reserved */
	TRY(c[7]++, -EBADMSG);				      /* count and length disagree */
	TRY(c[CT_WIRE_HDR] = 7, -EBADMSG);		      /* family */
	TRY(c[CT_WIRE_HDR + 2] = 2, -EBADMSG);		      /* has_tcp not a bool */
	TRY((c[CT_WIRE_HDR] = AF_INET, c[CT_WIRE_HDR + 4 + 5] = 1), -EBADMSG); /* v4 tail */
	T_EQ(ct_wire_decode(w, len - 1, &out, &e), -EBADMSG);
	T_EQ(ct_wire_decode(w, 3, &out, &e), -EBADMSG);
	/* a list bound applies while decoding */
	out.max = 2;
	T_EQ(ct_wire_decode(w, len, &out, &e), -E2BIG);
	T_EQ(out.n, 1);
	free(c);
	free(w);
	ct_list_free(&l);
	ct_list_free(&out);
}

int main(void)
{
	T_RUN(test_dump_replay);
	T_RUN(test_wire_matches_recorder);
	T_RUN(test_events_replay);
	T_RUN(test_build_round_trip);
	T_RUN(test_wire_refusals);
	return t_done();
}
