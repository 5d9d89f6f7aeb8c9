/* Unit tests for net/nl: builder bounds, attribute validation, reply parsing (seq/port
 * checks, ACK, DONE, DUMP_INTR, extended ack, truncation). Replies are built here by
 * hand with the kernel's own structs, independent of the builder under test. */
#include "lib/err.h"
#include "net/nl.h"
#include "test/lib/t.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

/* ---- a hand-made reply stream ---- */

struct rb {
	uint8_t b[4096] __attribute__((aligned(4)));
	size_t n;
};

static struct nlmsghdr *rb_msg(struct rb *r, uint16_t type, uint16_t flags, uint32_t seq,
			       uint32_t pid)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(r->b + r->n);
	memset(h, 0, sizeof(*h));
	h->nlmsg_len = sizeof(*h);
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_seq = seq;
	h->nlmsg_pid = pid;
	r->n += sizeof(*h);
	return h;
}

static void rb_add(struct rb *r, struct nlmsghdr *h, const void *p, size_t len)
{
	memcpy(r->b + r->n, p, len);
	memset(r->b + r->n + len, 0, NLMSG_ALIGN(len) - len);
	r->n += NLMSG_ALIGN(len);
	h->nlmsg_len += (uint32_t)NLMSG_ALIGN(len);
}

static void rb_attr(struct rb *r, struct nlmsghdr *h, uint16_t type, const void *p, size_t len)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
	rb_add(r, h, &a, sizeof(a));
	if (len)
		rb_add(r, h, p, len);
}

/* counts the data messages handed out and remembers the last ifi_index */
struct seen {
	int n;
	int last_index;
	int fail_at; /* return -EIO at this message (1-based), 0 = never */
};

static int count_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct seen *s = arg;
	struct ifinfomsg ifi;
	struct nl_attr tb[IFLA_MAX + 1];
	s->n++;
	if (nl_msg_parse(m, &ifi, sizeof(ifi), NULL, IFLA_MAX, tb, e) == 0)
		s->last_index = ifi.ifi_index;
	if (s->fail_at && s->n == s->fail_at)
		return err_setx(e, EIO, "callback: refused message %d", s->n);
	return 0;
}

static void add_link(struct rb *r, uint16_t flags, uint32_t seq, uint32_t pid, int index,
		     const char *name)
{
	struct nlmsghdr *h = rb_msg(r, RTM_NEWLINK, flags | NLM_F_MULTI, seq, pid);
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
	rb_add(r, h, &ifi, sizeof(ifi));
	rb_attr(r, h, IFLA_IFNAME, name, strlen(name) + 1);
}

static void add_done(struct rb *r, uint32_t seq, uint32_t pid, int32_t error)
{
	struct nlmsghdr *h = rb_msg(r, NLMSG_DONE, NLM_F_MULTI, seq, pid);
	rb_add(r, h, &error, sizeof(error));
}

/* An NLMSG_ERROR as a capped, ext-acked kernel sends it. */
static void add_error(struct rb *r, uint32_t seq, uint32_t pid, int32_t error, const char *text)
{
	struct nlmsghdr *h = rb_msg(
	    r, NLMSG_ERROR, (uint16_t)(NLM_F_CAPPED | (text ? NLM_F_ACK_TLVS : 0)), seq, pid);
	struct nlmsgerr me = {.error = error};
	me.msg.nlmsg_len = 44; /* our request was longer; capped, so its payload is absent */
	me.msg.nlmsg_type = RTM_NEWROUTE;
	me.msg.nlmsg_seq = seq;
	rb_add(r, h, &me, sizeof(me));
	if (text) {
		rb_attr(r, h, NLMSGERR_ATTR_MSG, text, strlen(text) + 1);
		uint32_t off = 32;
		rb_attr(r, h, NLMSGERR_ATTR_OFFS, &off, sizeof(off));
	}
}

/* ---- builder ---- */

static void test_builder_layout(void)
{
	uint8_t buf[128] __attribute__((aligned(4)));
	struct nl_msg m;
	size_t nest;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 7};
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE);
	T_EQ(nl_put_fam(&m, &ifi, sizeof(ifi)), 0);
	T_EQ(nl_put_str(&m, IFLA_IFNAME, "kv0"), 0); /* 4 + 4 */
	T_EQ(nl_put_u32(&m, IFLA_MTU, 1450), 0);     /* 4 + 4 */
	T_EQ(nl_nest_begin(&m, IFLA_LINKINFO, &nest), 0);
	T_EQ(nl_put_str(&m, IFLA_INFO_KIND, "veth"), 0); /* 4 + 5 + 3 pad */
	T_EQ(nl_nest_end(&m, nest), 0);
	T_EQ(nl_put_u8(&m, IFLA_OPERSTATE, 6), 0); /* 4 + 1 + 3 pad */
	T_EQ(nl_msg_check(&m, NULL), 0);
	T_EQ(nl_msg_len(&m), 16 + 16 + 8 + 8 + (4 + 12) + 8);

	const struct nlmsghdr *h = (const void *)buf;
	T_EQ(h->nlmsg_len, nl_msg_len(&m));
	T_EQ(h->nlmsg_type, RTM_NEWLINK);
	T_EQ(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE);
	const struct nlattr *a = (const void *)(buf + 32);
	T_EQ(a->nla_len, 8);
	T_EQ(a->nla_type, IFLA_IFNAME);
	T_STREQ((const char *)(a + 1), "kv0");
	const struct nlattr *li = (const void *)(buf + 48);
	T_EQ(li->nla_type, IFLA_LINKINFO | NLA_F_NESTED);
	T_EQ(li->nla_len, 4 + 12); /* the nest covers its last attribute's padding */
}

static void test_builder_overflow_is_error(void)
{
	uint8_t buf[40];
	struct nl_msg m;
	struct err e = {0};
	uint8_t big[64] = {0};
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWADDR, 0);
	T_EQ(nl_put_u32(&m, 1, 1), 0);		/* 24 */
	T_EQ(nl_put_u32(&m, 2, 2), 0);		/* 32 */
	T_EQ(nl_put(&m, 3, big, 5), -EMSGSIZE); /* needs 12, 8 left: no partial write */
	T_EQ(nl_msg_len(&m), 32);
	const struct nlmsghdr *h = (const void *)buf;
	T_EQ(h->nlmsg_len, 32);
	/* sticky: even what would fit now fails */
	T_EQ(nl_put_u8(&m, 4, 1), -EMSGSIZE);
	T_EQ(nl_msg_check(&m, &e), -EMSGSIZE);
	T_EQ(e.code, EMSGSIZE);
	T_CHECK(strstr(e.msg, "does not fit") != NULL);
}

static void test_builder_header_does_not_fit(void)
{
	uint8_t buf[8];
	struct nl_msg m;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0);
	T_EQ(nl_msg_check(&m, NULL), -EMSGSIZE);
	T_EQ(nl_put_u8(&m, 1, 1), -EMSGSIZE);
}

static void test_builder_attr_too_long(void)
{
	static uint8_t buf[80000];
	static uint8_t big[65532];
	struct nl_msg m;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0);
	T_EQ(nl_put(&m, 1, big, 65531), 0); /* exactly the largest payload */
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0);
	T_EQ(nl_put(&m, 1, big, 65532), -EMSGSIZE);
	/* a nest that outgrows 16 bits */
	size_t nest;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0);
	T_EQ(nl_nest_begin(&m, 1, &nest), 0);
	T_EQ(nl_put(&m, 2, big, 40000), 0);
	T_EQ(nl_put(&m, 3, big, 30000), 0);
	T_EQ(nl_nest_end(&m, nest), -EMSGSIZE);
	T_EQ(nl_msg_check(&m, NULL), -EMSGSIZE);
}

static void test_builder_unclosed_nest(void)
{
	uint8_t buf[64];
	struct nl_msg m;
	struct err e = {0};
	size_t nest;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0);
	T_EQ(nl_nest_begin(&m, 1, &nest), 0);
	T_EQ(nl_msg_check(&m, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "unclosed") != NULL);
}

/* ---- attributes ---- */

static void test_attr_table_and_policy(void)
{
	struct rb r = {.n = 0};
	struct nlmsghdr *h = rb_msg(&r, RTM_NEWLINK, 0, 1, 1);
	uint32_t mtu = 1500;
	uint8_t one = 1;
	rb_attr(&r, h, IFLA_IFNAME, "eth0", 5);
	rb_attr(&r, h, IFLA_MTU, &mtu, 4);
	rb_attr(&r, h, 0x3fff, "x", 1); /* unknown, above maxtype: skipped */
	rb_attr(&r, h, IFLA_CARRIER, &one, 1);
	const uint8_t *p = r.b + sizeof(*h);
	size_t len = r.n - sizeof(*h);

	struct nl_pol pol[IFLA_MAX + 1] = {0};
	pol[IFLA_IFNAME] = (struct nl_pol){NL_A_STR, 0};
	pol[IFLA_MTU] = (struct nl_pol){NL_A_U32, 0};
	pol[IFLA_CARRIER] = (struct nl_pol){NL_A_U8, 0};
	struct nl_attr tb[IFLA_MAX + 1];
	struct err e = {0};
	T_EQ(nl_attr_parse(p, len, pol, IFLA_MAX, tb, &e), 0);
	T_STREQ(nl_attr_str(&tb[IFLA_IFNAME]), "eth0");
	uint32_t v;
	T_CHECK(nl_attr_u32(&tb[IFLA_MTU], &v));
	T_EQ(v, 1500);
	uint8_t c;
	T_CHECK(nl_attr_u8(&tb[IFLA_CARRIER], &c) && c == 1);
	T_CHECK(!nl_attr_has(&tb[IFLA_ADDRESS]));
	T_CHECK(!nl_attr_u32(&tb[IFLA_LINK], &v));

	/* the same bytes against a policy that wants IFLA_CARRIER as a u32 */
	pol[IFLA_CARRIER] = (struct nl_pol){NL_A_U32, 0};
	T_EQ(nl_attr_parse(p, len, pol, IFLA_MAX, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "attribute 33") != NULL);
	/* and one that wants a string with at least 6 bytes for the name */
	pol[IFLA_CARRIER] = (struct nl_pol){NL_A_U8, 0};
	pol[IFLA_IFNAME] = (struct nl_pol){NL_A_STR, 6};
	T_EQ(nl_attr_parse(p, len, pol, IFLA_MAX, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "need at least 6") != NULL);
}

static void test_attr_string_without_nul(void)
{
	struct rb r = {.n = 0};
	struct nlmsghdr *h = rb_msg(&r, RTM_NEWLINK, 0, 1, 1);
	rb_attr(&r, h, IFLA_IFNAME, "eth0", 4);
	struct nl_pol pol[IFLA_MAX + 1] = {[IFLA_IFNAME] = {NL_A_STR, 0}};
	struct nl_attr tb[IFLA_MAX + 1];
	struct err e = {0};
	T_EQ(nl_attr_parse(r.b + 16, r.n - 16, pol, IFLA_MAX, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "without a NUL") != NULL);
	/* without a policy it is accepted, but the string getter still refuses it */
	T_EQ(nl_attr_parse(r.b + 16, r.n - 16, NULL, IFLA_MAX, tb, &e), 0);
	T_CHECK(nl_attr_str(&tb[IFLA_IFNAME]) == NULL);
}

static void test_attr_bad_lengths(void)
{
	struct err e = {0};
	struct nl_attr tb[8];
	/* nla_len 2 < header */
	const uint8_t short_len[] = {2, 0, 1, 0};
	T_EQ(nl_attr_parse(short_len, sizeof(short_len), NULL, 7, tb, &e), -EBADMSG);
	/* nla_len runs past the end */
	const uint8_t long_len[] = {12, 0, 1, 0, 1, 2, 3, 4};
	T_EQ(nl_attr_parse(long_len, sizeof(long_len), NULL, 7, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "does not fit") != NULL);
	/* a cut header after a good attribute */
	const uint8_t cut[] = {5, 0, 1, 0, 9, 0, 0, 0, 8, 0};
	T_EQ(nl_attr_parse(cut, sizeof(cut), NULL, 7, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "header cut") != NULL);
	/* the last attribute's padding may be absent */
	const uint8_t nopad[] = {5, 0, 1, 0, 9};
	T_EQ(nl_attr_parse(nopad, sizeof(nopad), NULL, 7, tb, &e), 0);
	uint8_t v;
	T_CHECK(nl_attr_u8(&tb[1], &v) && v == 9);
	/* a flag with payload */
	struct nl_pol pol[8] = {[2] = {NL_A_FLAG, 0}};
	const uint8_t flag[] = {5, 0, 2, 0, 1, 0, 0, 0};
	T_EQ(nl_attr_parse(flag, sizeof(flag), pol, 7, tb, &e), -EBADMSG);
}

static void test_msg_parse_short_family_header(void)
{
	const uint8_t payload[8] = {0};
	struct nl_msgv m = {.type = RTM_NEWLINK, .data = payload, .len = sizeof(payload)};
	struct ifinfomsg ifi;
	struct nl_attr tb[IFLA_MAX + 1];
	struct err e = {0};
	T_EQ(nl_msg_parse(&m, &ifi, sizeof(ifi), NULL, IFLA_MAX, tb, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "family header") != NULL);
}

/* ---- replies ---- */

static void test_dump_two_datagrams(void)
{
	struct rb a = {.n = 0}, b = {.n = 0};
	struct seen s = {0};
	struct nl_reply r;
	struct err e = {0};
	add_link(&a, 0, 9, 77, 1, "lo");
	add_link(&a, 0, 9, 77, 2, "eth0");
	add_link(&b, 0, 9, 77, 3, "eth1");
	add_done(&b, 9, 77, 0);
	nl_reply_init(&r, 9, 77, true, count_cb, &s);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), 1);
	T_EQ(nl_reply_feed(&r, b.b, b.n, &e), 0);
	T_EQ(s.n, 3);
	T_EQ(s.last_index, 3);
	T_CHECK(r.done);
}

static void test_ack(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_error(&a, 5, 42, 0, NULL);
	nl_reply_init(&r, 5, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), 0);
	T_CHECK(r.done);
	T_EQ(e.code, 0);
}

static void test_seq_mismatch_rejected(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_error(&a, 4, 42, 0, NULL); /* an ACK for an older request */
	nl_reply_init(&r, 5, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EPROTO);
	T_CHECK(strstr(e.msg, "sequence number 4") != NULL);
	T_CHECK(!r.done);
}

static void test_portid_mismatch_rejected(void)
{
	struct rb a = {.n = 0};
	struct seen s = {0};
	struct nl_reply r;
	struct err e = {0};
	add_link(&a, 0, 5, 43, 1, "lo");
	nl_reply_init(&r, 5, 42, true, count_cb, &s);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -ESRCH);
	T_CHECK(strstr(e.msg, "port id 43") != NULL);
	T_EQ(s.n, 0); /* nobody saw the foreign message */
}

static void test_dump_intr_reported(void)
{
	struct rb a = {.n = 0};
	struct seen s = {0};
	struct nl_reply r;
	struct err e = {0};
	add_link(&a, 0, 6, 42, 1, "lo");
	add_link(&a, NLM_F_DUMP_INTR, 6, 42, 2, "eth0");
	add_done(&a, 6, 42, 0);
	nl_reply_init(&r, 6, 42, true, count_cb, &s);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EINTR);
	T_EQ(e.code, EINTR);
	T_CHECK(strstr(e.msg, "dump interrupted") != NULL);
	T_CHECK(r.done); /* read to the end: the socket stays in step */
}

static void test_extack_text_extracted(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_error(&a, 3, 42, -EINVAL, "Nexthop has invalid gateway");
	nl_reply_init(&r, 3, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EINVAL);
	T_EQ(e.code, EINVAL);
	T_STREQ(e.msg, "Nexthop has invalid gateway");
	err_prefix(&e, "route 198.18.0.5/32: add");
	T_STREQ(e.msg, "route 198.18.0.5/32: add: Nexthop has invalid gateway");
}

static void test_error_without_extack_uses_strerror(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_error(&a, 3, 42, -ENODEV, NULL);
	nl_reply_init(&r, 3, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -ENODEV);
	T_STREQ(e.msg, strerror(ENODEV));
}

static void test_uncapped_error_skips_request(void)
{
	/* Without NLM_F_CAPPED the request's payload sits between header and TLVs. */
	struct rb a = {.n = 0};
	struct nlmsghdr *h = rb_msg(&a, NLMSG_ERROR, NLM_F_ACK_TLVS, 3, 42);
	struct nlmsgerr me = {.error = -EEXIST};
	uint8_t req_payload[12] = {1, 2, 3};
	me.msg.nlmsg_len = sizeof(struct nlmsghdr) + sizeof(req_payload);
	rb_add(&a, h, &me, sizeof(me));
	rb_add(&a, h, req_payload, sizeof(req_payload));
	rb_attr(&a, h, NLMSGERR_ATTR_MSG, "File exists here", 17);
	struct nl_reply r;
	struct err e = {0};
	nl_reply_init(&r, 3, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EEXIST);
	T_STREQ(e.msg, "File exists here");
}

static void test_done_with_error(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_done(&a, 2, 42, -EOPNOTSUPP);
	nl_reply_init(&r, 2, 42, true, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EOPNOTSUPP);
}

static void test_truncated_reply(void)
{
	struct rb a = {.n = 0};
	struct seen s = {0};
	struct nl_reply r;
	struct err e = {0};
	add_link(&a, 0, 6, 42, 1, "lo");
	add_link(&a, 0, 6, 42, 2, "eth0");
	for (size_t cut = 1; cut < a.n; cut++) {
		s.n = 0;
		nl_reply_init(&r, 6, 42, true, count_cb, &s);
		int rc = nl_reply_feed(&r, a.b, cut, &e);
		if (cut == 40 /* exactly the first message */)
			T_EQ(rc, 1);
		else
			T_EQ(rc, -EBADMSG);
	}
	nl_reply_init(&r, 6, 42, true, count_cb, &s);
	T_EQ(nl_reply_feed(&r, a.b, 20, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "truncated reply") != NULL);
}

static void test_callback_error_reads_to_end(void)
{
	struct rb a = {.n = 0};
	struct seen s = {.fail_at = 1};
	struct nl_reply r;
	struct err e = {0};
	add_link(&a, 0, 6, 42, 1, "lo");
	add_link(&a, 0, 6, 42, 2, "eth0");
	add_done(&a, 6, 42, 0);
	nl_reply_init(&r, 6, 42, true, count_cb, &s);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EIO);
	T_EQ(s.n, 1);	  /* no more calls after the failure */
	T_EQ(r.nmsgs, 2); /* but the reply was read to its end */
	T_CHECK(r.done);
	T_STREQ(e.msg, "callback: refused message 1");
}

static void test_bytes_after_end(void)
{
	struct rb a = {.n = 0};
	struct nl_reply r;
	struct err e = {0};
	add_error(&a, 5, 42, 0, NULL);
	add_error(&a, 5, 42, 0, NULL);
	nl_reply_init(&r, 5, 42, false, NULL, NULL);
	T_EQ(nl_reply_feed(&r, a.b, a.n, &e), -EBADMSG);
}

/* walks every message of a subscription datagram, stops where asked, and refuses a
 * length that runs past the datagram */
static int walk_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct seen *s = arg;
	s->n++;
	s->last_index = m->type;
	if (!s->fail_at || s->n != s->fail_at)
		return 0;
	return m->type == 99 ? 1 : err_setx(e, EIO, "boom");
}

static void test_datagram_walk(void)
{
	struct rb a = {.n = 0};
	struct err e = {0};
	struct seen s = {0};
	uint32_t v = 7;
	struct nlmsghdr *h = rb_msg(&a, 98, 0, 0, 0);
	rb_attr(&a, h, 1, &v, sizeof(v));
	rb_msg(&a, 99, 0, 0, 0);
	rb_msg(&a, 100, 0, 0, 0);
	T_EQ(nl_datagram_walk(a.b, a.n, "test", walk_cb, &s, &e), 0);
	T_EQ(s.n, 3);
	T_EQ(s.last_index, 100);
	s = (struct seen){.fail_at = 2}; /* message 2 (type 99) stops quietly */
	T_EQ(nl_datagram_walk(a.b, a.n, "test", walk_cb, &s, &e), 0);
	T_EQ(s.n, 2);
	s = (struct seen){.fail_at = 1}; /* message 1 fails: the error, prefixed */
	T_EQ(nl_datagram_walk(a.b, a.n, "test", walk_cb, &s, &e), -EIO);
	T_CHECK(strstr(e.msg, "test: message at 0") != NULL);
	s = (struct seen){0};
	T_EQ(nl_datagram_walk(a.b, h->nlmsg_len - 4, "test", walk_cb, &s, &e), -EBADMSG);
	T_EQ(s.n, 0);
	T_CHECK(strstr(e.msg, "length") != NULL);
}

int main(void)
{
	T_RUN(test_builder_layout);
	T_RUN(test_datagram_walk);
	T_RUN(test_builder_overflow_is_error);
	T_RUN(test_builder_header_does_not_fit);
	T_RUN(test_builder_attr_too_long);
	T_RUN(test_builder_unclosed_nest);
	T_RUN(test_attr_table_and_policy);
	T_RUN(test_attr_string_without_nul);
	T_RUN(test_attr_bad_lengths);
	T_RUN(test_msg_parse_short_family_header);
	T_RUN(test_dump_two_datagrams);
	T_RUN(test_ack);
	T_RUN(test_seq_mismatch_rejected);
	T_RUN(test_portid_mismatch_rejected);
	T_RUN(test_dump_intr_reported);
	T_RUN(test_extack_text_extracted);
	T_RUN(test_error_without_extack_uses_strerror);
	T_RUN(test_uncapped_error_skips_request);
	T_RUN(test_done_with_error);
	T_RUN(test_truncated_reply);
	T_RUN(test_callback_error_reads_to_end);
	T_RUN(test_bytes_after_end);
	return t_done();
}
