/* Replay tests for net/nl: real kernel replies recorded by test/data/netlink/record.py
 * (see the README there) are fed through the reply parser and attribute tables. */
#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"
#include "net/route.h"
#include "net/tc.h"
#include "test/lib/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DIR "test/data/netlink/"
#define PORTID 0x4b560001u

/* what the link callback saw */
struct links {
	int n;
	char names[8][16];
	uint32_t mtu[8];
	uint8_t mac[8][6];
	bool has_mac[8];
};

static const struct nl_pol link_pol[IFLA_MAX + 1] = {
    [IFLA_IFNAME] = {NL_A_STR, 0},
    [IFLA_MTU] = {NL_A_U32, 0},
    [IFLA_ADDRESS] = {NL_A_UNSPEC, 6},
    [IFLA_LINKINFO] = {NL_A_NESTED, 0},
};

static int link_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct links *l = arg;
	struct ifinfomsg ifi;
	struct nl_attr tb[IFLA_MAX + 1];
	int rc = nl_msg_parse(m, &ifi, sizeof(ifi), link_pol, IFLA_MAX, tb, e);
	if (rc < 0)
		return rc;
	if (m->type != RTM_NEWLINK || l->n >= 8)
		return err_setx(e, EBADMSG, "unexpected message %u", m->type);
	const char *name = nl_attr_str(&tb[IFLA_IFNAME]);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name ? name : "?");
	nl_attr_u32(&tb[IFLA_MTU], &l->mtu[l->n]);
	l->has_mac[l->n] = nl_attr_bytes(&tb[IFLA_ADDRESS], l->mac[l->n], 6);
	l->n++;
	return 0;
}

static uint8_t *load(const char *name, size_t *len)
{
	uint8_t *p = (uint8_t *)t_slurp(name, len);
	T_CHECK(p != NULL);
	return p;
}

static void test_link_dump(void)
{
	size_t len;
	uint8_t *p = load(DIR "link-dump.bin", &len);
	if (!p)
		return;
	struct links l = {0};
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 101, PORTID, true, link_cb, &l);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	T_CHECK(r.done);
	T_EQ(l.n, 3);
	T_STREQ(l.names[0], "lo");
	T_STREQ(l.names[1], "v1"); /* the peer is created first */
	T_STREQ(l.names[2], "v0");
	T_EQ(l.mtu[0], 65536);
	T_EQ(l.mtu[1], 1500);
	T_EQ(l.mtu[2], 1400);
	const uint8_t mac1[6] = {0x02, 0x4b, 0x56, 0, 0, 2};
	const uint8_t mac0[6] = {0x02, 0x4b, 0x56, 0, 0, 1};
	T_CHECK(l.has_mac[1] && l.has_mac[2]);
	T_MEMEQ(l.mac[1], mac1, 6);
	T_MEMEQ(l.mac[2], mac0, 6);
	/* the same bytes for another request are refused */
	nl_reply_init(&r, 102, PORTID, true, NULL, NULL);
	T_EQ(nl_reply_feed(&r, p, len, &e), -EPROTO);
	nl_reply_init(&r, 101, PORTID + 1, true, NULL, NULL);
	T_EQ(nl_reply_feed(&r, p, len, &e), -ESRCH);
	free(p);
}

/* what the route callback saw */
struct routes {
	int n;
	int proto75;	 /* routes with protocol 75 */
	bool found_gw;	 /* 198.18.6.0/24 via 198.18.0.2 metric 512 proto 75, main */
	bool found_host; /* 198.18.7.7/32 scope link metric 1024 proto 75, main */
};

static const struct nl_pol rt_pol[RTA_MAX + 1] = {
    [RTA_DST] = {NL_A_UNSPEC, 4},   [RTA_GATEWAY] = {NL_A_UNSPEC, 4}, [RTA_OIF] = {NL_A_U32, 0},
    [RTA_PRIORITY] = {NL_A_U32, 0}, [RTA_TABLE] = {NL_A_U32, 0},
};

static int route_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct routes *s = arg;
	struct rtmsg rtm;
	struct nl_attr tb[RTA_MAX + 1];
	int rc = nl_msg_parse(m, &rtm, sizeof(rtm), rt_pol, RTA_MAX, tb, e);
	if (rc < 0)
		return rc;
	s->n++;
	if (rtm.rtm_protocol != 75)
		return 0;
	s->proto75++;
	uint32_t dst = 0, gw = 0, metric = 0, table = 0;
	nl_attr_bytes(&tb[RTA_DST], &dst, 4);
	nl_attr_bytes(&tb[RTA_GATEWAY], &gw, 4);
	nl_attr_u32(&tb[RTA_PRIORITY], &metric);
	nl_attr_u32(&tb[RTA_TABLE], &table);
	if (dst == inet_addr("198.18.6.0") && rtm.rtm_dst_len == 24 &&
	    gw == inet_addr("198.18.0.2") && metric == 512 && table == RT_TABLE_MAIN)
		s->found_gw = true;
	if (dst == inet_addr("198.18.7.7") && rtm.rtm_dst_len == 32 && gw == 0 && metric == 1024 &&
	    rtm.rtm_scope == RT_SCOPE_LINK && table == RT_TABLE_MAIN)
		s->found_host = true;
	return 0;
}

static void test_route_dump(void)
{
	size_t len;
	uint8_t *p = load(DIR "route-dump.bin", &len);
	if (!p)
		return;
	struct routes s = {0};
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 102, PORTID, true, route_cb, &s);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	T_EQ(s.n, 8);
	T_EQ(r.nmsgs, 8);
	T_EQ(s.proto75, 2);
	T_CHECK(s.found_gw);
	T_CHECK(s.found_host);
	free(p);
}

static void test_ack(void)
{
	size_t len;
	uint8_t *p = load(DIR "ack.bin", &len);
	if (!p)
		return;
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 103, PORTID, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	T_CHECK(r.done);
	/* an ACK where a dump's DONE was expected is an error, not success */
	nl_reply_init(&r, 103, PORTID, true, NULL, NULL);
	T_EQ(nl_reply_feed(&r, p, len, &e), -EBADMSG);
	free(p);
}

static void test_error_with_extack(void)
{
	size_t len;
	uint8_t *p = load(DIR "err-extack.bin", &len);
	if (!p)
		return;
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 104, PORTID, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, p, len, &e), -ENETUNREACH);
	T_EQ(e.code, ENETUNREACH);
	T_STREQ(e.msg, "Nexthop has invalid gateway");
	err_prefix(&e, "route 198.18.0.5/32: add");
	T_STREQ(e.msg, "route 198.18.0.5/32: add: Nexthop has invalid gateway");
	free(p);
}

static void test_truncated(void)
{
	size_t len;
	uint8_t *p = load(DIR "truncated.bin", &len);
	if (!p)
		return;
	struct links l = {0};
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 101, PORTID, true, link_cb, &l);
	T_EQ(nl_reply_feed(&r, p, len, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "truncated reply") != NULL);
	T_EQ(l.n, 1); /* the whole first message was good */
	T_STREQ(l.names[0], "lo");
	/* every shorter cut fails cleanly too, or waits for more at a message boundary */
	for (size_t cut = 0; cut < len; cut++) {
		nl_reply_init(&r, 101, PORTID, true, NULL, NULL);
		int rc = nl_reply_feed(&r, p, cut, &e);
		T_CHECK(rc == 1 || rc == -EBADMSG);
	}
	free(p);
}

/* the typed parsers over the same recorded bytes */
struct typed {
	int nlinks, nroutes;
	struct link_info v0;	  /* the link named v0 */
	struct rt_route gw_route; /* 198.18.6.0/24 */
	struct rt_route host;	  /* 198.18.7.7/32 */
};

static int typed_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct typed *t = arg;
	char a[IP_STRLEN];
	if (m->type == RTM_NEWLINK) {
		struct link_info li;
		int rc = link_parse(m, &li, e);
		if (rc < 0)
			return rc;
		t->nlinks++;
		if (strcmp(li.name, "v0") == 0)
			t->v0 = li;
		return 0;
	}
	struct rt_route r;
	int rc = rt_parse(m, &r, e);
	if (rc < 0)
		return rc;
	t->nroutes++;
	rt_fmt(&r, a);
	if (strcmp(a, "198.18.6.0/24") == 0)
		t->gw_route = r;
	if (strcmp(a, "198.18.7.7/32") == 0)
		t->host = r;
	return 0;
}

/* what the tc callback saw */
struct filters {
	int n, heads;
	struct tc_bpf_info f[4];
};

static int tc_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct filters *s = arg;
	struct tc_bpf_info fi;
	int rc = tc_bpf_parse(m, &fi, e);
	if (rc == -ENOENT) {
		s->heads++; /* the chain's head: no options */
		return 0;
	}
	if (rc < 0 || s->n >= 4)
		return rc < 0 ? rc : err_setx(e, E2BIG, "too many filters");
	s->f[s->n++] = fi;
	return 0;
}

/* tc filter dumps: an eBPF direct-action filter (ingress, prio 7) and a classic BPF one
 * (egress), as tc attached them. */
static void test_tc_dump(void)
{
	size_t len;
	struct nl_reply r;
	struct err e = {0};
	struct filters s = {0};
	uint8_t *p = load(DIR "tc-dump-ingress.bin", &len);
	if (!p)
		return;
	nl_reply_init(&r, 105, PORTID, true, tc_cb, &s);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	free(p);
	T_EQ(s.n, 1);
	T_EQ(s.heads, 1);
	T_EQ(s.f[0].prio, 7);
	T_EQ(s.f[0].handle, 1);
	T_CHECK(s.f[0].direct_action);
	T_CHECK(s.f[0].prog_id > 0);
	T_STREQ(s.f[0].name, ".rec-cls.o:[classifier]");
	memset(&s, 0, sizeof(s));
	p = load(DIR "tc-dump-egress.bin", &len);
	if (!p)
		return;
	nl_reply_init(&r, 106, PORTID, true, tc_cb, &s);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	free(p);
	T_EQ(s.n, 1);
	T_CHECK(!s.f[0].direct_action);
	T_EQ(s.f[0].prog_id, 0);
	T_STREQ(s.f[0].name, "");
}

static void test_typed_parsers(void)
{
	size_t len;
	struct typed t;
	struct nl_reply r;
	struct err e = {0};
	char a[IP_STRLEN];
	memset(&t, 0, sizeof(t));
	uint8_t *p = load(DIR "link-dump.bin", &len);
	if (!p)
		return;
	nl_reply_init(&r, 101, PORTID, true, typed_cb, &t);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	free(p);
	T_EQ(t.nlinks, 3);
	T_STREQ(t.v0.name, "v0");
	T_STREQ(t.v0.kind, "veth");
	T_EQ(t.v0.mtu, 1400);
	T_CHECK(t.v0.has_mac && t.v0.mac[5] == 1);
	T_CHECK(t.v0.flags & 1 /* IFF_UP */);

	p = load(DIR "route-dump.bin", &len);
	if (!p)
		return;
	nl_reply_init(&r, 102, PORTID, true, typed_cb, &t);
	T_EQ(nl_reply_feed(&r, p, len, &e), 0);
	free(p);
	T_EQ(t.nroutes, 8);
	T_STREQ(ip_fmt(&t.gw_route.gw, a), "198.18.0.2");
	T_EQ(t.gw_route.protocol, RT_PROTO_KVNET);
	T_EQ(t.gw_route.metric, 512);
	T_EQ(t.gw_route.table, RT_TABLE_MAIN);
	T_EQ(t.gw_route.oif, t.v0.index);
	T_EQ(t.host.scope, RT_SCOPE_LINK);
	T_EQ(t.host.metric, 1024);
	T_EQ(t.host.gw.family, 0);
}

/* A message built by hand: family header then attributes. */
struct hm {
	uint8_t b[256] __attribute__((aligned(4)));
	size_t n;
};

static void hm_put(struct hm *h, const void *p, size_t len)
{
	memcpy(h->b + h->n, p, len);
	memset(h->b + h->n + len, 0, NLMSG_ALIGN(len) - len);
	h->n += NLMSG_ALIGN(len);
}

static void hm_attr(struct hm *h, uint16_t type, const void *p, size_t len)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
	hm_put(h, &a, sizeof(a));
	hm_put(h, p, len);
}

static void test_typed_parsers_reject_bad(void)
{
	struct err e = {0};
	struct link_info li;
	struct rt_route rt;
	struct hm h = {.n = 0};
	struct ifinfomsg ifi = {.ifi_index = 3};
	uint32_t mtu = 1500;
	hm_put(&h, &ifi, sizeof(ifi));
	hm_attr(&h, IFLA_MTU, &mtu, 4);
	struct nl_msgv m = {.type = RTM_NEWLINK, .data = h.b, .len = h.n};
	T_EQ(link_parse(&m, &li, &e), -EBADMSG);
	T_STREQ(e.msg, "link 3: missing or overlong IFLA_IFNAME");
	hm_attr(&h, IFLA_IFNAME, "abcdefghijklmnopq", 18); /* 17 characters */
	m.len = h.n;
	T_EQ(link_parse(&m, &li, &e), -EBADMSG);
	m.type = RTM_NEWROUTE;
	T_EQ(link_parse(&m, &li, &e), -EBADMSG);

	struct rtmsg rtm = {.rtm_family = AF_BRIDGE};
	h.n = 0;
	hm_put(&h, &rtm, sizeof(rtm));
	m = (struct nl_msgv){.type = RTM_NEWROUTE, .data = h.b, .len = h.n};
	T_EQ(rt_parse(&m, &rt, &e), -EAFNOSUPPORT);
	rtm.rtm_family = AF_INET;
	rtm.rtm_dst_len = 33;
	h.n = 0;
	hm_put(&h, &rtm, sizeof(rtm));
	m.len = h.n;
	T_EQ(rt_parse(&m, &rt, &e), -EBADMSG);
	T_STREQ(e.msg, "route: prefix length 33");
	rtm.rtm_dst_len = 32;
	h.n = 0;
	hm_put(&h, &rtm, sizeof(rtm));
	hm_attr(&h, RTA_DST, "\x01\x02\x03\x04\x05", 5); /* an IPv4 route with 5 address bytes */
	m.len = h.n;
	T_EQ(rt_parse(&m, &rt, &e), -EBADMSG);
	T_STREQ(e.msg, "route: RTA_DST of 5 bytes");
	m.len = 8; /* shorter than an rtmsg */
	T_EQ(rt_parse(&m, &rt, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "family header") != NULL);
}

int main(void)
{
	T_RUN(test_link_dump);
	T_RUN(test_route_dump);
	T_RUN(test_ack);
	T_RUN(test_error_with_extack);
	T_RUN(test_truncated);
	T_RUN(test_typed_parsers);
	T_RUN(test_tc_dump);
	T_RUN(test_typed_parsers_reject_bad);
	return t_done();
}
