/* libFuzzer target: the netlink reply parser and attribute walker (net/nl) and the
 * message parsers built on them (link_parse, rt_parse, tc_bpf_parse), over any bytes. Seeds are the recorded
 * kernel replies in test/data/netlink/. The expected seq/port id are taken from the first message
 * so the fuzzer gets past those checks. */
#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"
#include "net/route.h"
#include "net/tc.h"

#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <string.h>

static const struct nl_pol any_pol[64] = {
    [1] = {NL_A_STR, 0}, [2] = {NL_A_U32, 0},	 [3] = {NL_A_U8, 0},   [4] = {NL_A_U16, 0},
    [5] = {NL_A_U64, 0}, [6] = {NL_A_UNSPEC, 6}, [7] = {NL_A_FLAG, 0}, [18] = {NL_A_NESTED, 0},
};

/* Walk nests a few levels deep, reading every getter on the way. */
static void walk(const uint8_t *p, size_t len, int depth)
{
	struct nl_attr tb[64];
	struct err e;
	if (depth > 3 || nl_attr_parse(p, len, any_pol, 63, tb, &e) < 0)
		return;
	for (int i = 0; i < 64; i++) {
		uint8_t u8;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		uint8_t mac[6];
		(void)nl_attr_u8(&tb[i], &u8);
		(void)nl_attr_u16(&tb[i], &u16);
		(void)nl_attr_u32(&tb[i], &u32);
		(void)nl_attr_u64(&tb[i], &u64);
		(void)nl_attr_bytes(&tb[i], mac, sizeof(mac));
		const char *s = nl_attr_str(&tb[i]);
		if (s)
			(void)strlen(s);
		if (nl_attr_has(&tb[i]))
			walk(tb[i].p, tb[i].len, depth + 1);
	}
}

static int cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct nl_attr tb[64];
	uint8_t hdr[16];
	size_t hlen = m->type == RTM_NEWADDR ? 8 : m->type == RTM_NEWLINK ? 16 : 12;
	(void)arg;
	if (nl_msg_parse(m, hdr, hlen, NULL, 63, tb, e) == 0)
		walk(m->data + (hlen + 3) / 4 * 4, m->len - (hlen + 3) / 4 * 4, 0);
	/* every message through every typed parser, whatever its type says */
	struct nl_msgv as = *m;
	struct link_info li;
	struct rt_route rt;
	char buf[IP_STRLEN];
	as.type = RTM_NEWLINK;
	if (link_parse(&as, &li, e) == 0 && strlen(li.name) >= LINK_NAMESZ)
		__builtin_trap();
	struct tc_bpf_info fi;
	as.type = RTM_NEWTFILTER;
	if (tc_bpf_parse(&as, &fi, e) == 0 && strlen(fi.name) >= sizeof(fi.name))
		__builtin_trap();
	as.type = RTM_NEWROUTE;
	if (rt_parse(&as, &rt, e) == 0) {
		rt_fmt(&rt, buf);
		ip_fmt(&rt.gw, buf);
	}
	return m->flags & 0x8000 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nl_reply r;
	struct err e;
	uint32_t seq = 0, pid = 0;
	if (size >= 16) {
		memcpy(&seq, data + 8, 4);
		memcpy(&pid, data + 12, 4);
	}
	for (int dump = 0; dump < 2; dump++) {
		nl_reply_init(&r, seq, pid, dump, cb, NULL);
		/* feed in two datagrams split where the first byte says */
		size_t cut = size ? data[0] % (size + 1) : 0;
		if (cut % 4)
			cut = size;
		int rc = nl_reply_feed(&r, data, cut, &e);
		if (rc == 1 && cut < size)
			(void)nl_reply_feed(&r, data + cut, size - cut, &e);
	}
	return 0;
}
