/* Unit tests for agent/peermsg: the agent-to-agent datagram. The encoder is checked
 * byte for byte against a datagram built by python3 (struct + hmac + hashlib, an
 * independent HMAC-SHA256), the HMAC check against a wrong key and every single
 * changed byte, the decoder against hand-built malformed bodies, and the replay window
 * (time window, receiver start, boot ids, the 64-wide sequence window). */
#include "agent/peermsg.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t KEY[] = "0123456789abcdef0123456789abcdef";
#define KLEN 32

/* python3: boot 0x0102030405060708, seq 5, ts 1800000000123456789, node-b at
 * 198.18.100.12 and 2001:db8:ff::12, uid mig-uid-1, addresses 198.18.0.7 and
 * 2001:db8:4b76::7; hmac.new(KEY, body, hashlib.sha256). */
static const uint8_t WANT[131] = {
	0x4b, 0x56, 0x50, 0x4d, 0x01, 0x01, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
	0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x18, 0xfa, 0xe2, 0x76, 0x9b, 0x0f, 0xcd, 0x15, 0x01, 0x06, 0x6e, 0x6f,
	0x64, 0x65, 0x2d, 0x62, 0x02, 0x04, 0xc6, 0x12, 0x64, 0x0c, 0x02, 0x10,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x12, 0x03, 0x09, 0x6d, 0x69, 0x67, 0x2d, 0x75, 0x69,
	0x64, 0x2d, 0x31, 0x04, 0x04, 0xc6, 0x12, 0x00, 0x07, 0x04, 0x10, 0x20,
	0x01, 0x0d, 0xb8, 0x4b, 0x76, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x07, 0xf3, 0x6f, 0x3e, 0x92, 0xe6, 0x38, 0x3e, 0xe6, 0xfa,
	0x5e, 0x8d, 0x18, 0xc0, 0x58, 0xf5, 0xea, 0xf5, 0x73, 0x85, 0x1d, 0x87,
	0xc3, 0x6e, 0x8c, 0x27, 0x64, 0x24, 0xeb, 0x73, 0x09, 0x4f, 0x70,
};

static struct peermsg sample(void)
{
	struct peermsg m;
	memset(&m, 0, sizeof(m));
	m.type = PEERMSG_T_CLAIM;
	m.boot = 0x0102030405060708ull;
	m.seq = 5;
	m.ts_ns = 1800000000123456789ull;
	strcpy(m.node, "node-b");
	ip_parse("198.18.100.12", &m.node_addr[0]);
	ip_parse("2001:db8:ff::12", &m.node_addr[1]);
	m.n_node_addr = 2;
	strcpy(m.uid, "mig-uid-1");
	ip_parse("198.18.0.7", &m.addr[0]);
	ip_parse("2001:db8:4b76::7", &m.addr[1]);
	m.n_addr = 2;
	return m;
}

static void test_encode_matches_python(void)
{
	struct peermsg m = sample();
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	struct err e;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), 0);
	T_EQ(len, sizeof(WANT));
	T_MEMEQ(buf, WANT, sizeof(WANT));
}

static void test_auth_and_decode(void)
{
	struct err e;
	T_EQ(peermsg_auth(WANT, sizeof(WANT), KEY, KLEN, &e), 0);
	struct peermsg m, want = sample();
	T_EQ(peermsg_decode(WANT, sizeof(WANT), &m, &e), 0);
	T_EQ(m.type, PEERMSG_T_CLAIM);
	T_EQ(m.boot, want.boot);
	T_EQ(m.seq, want.seq);
	T_EQ(m.ts_ns, want.ts_ns);
	T_STREQ(m.node, "node-b");
	T_STREQ(m.uid, "mig-uid-1");
	T_EQ(m.n_node_addr, 2);
	T_CHECK(ip_eq(&m.node_addr[0], &want.node_addr[0]));
	T_CHECK(ip_eq(&m.node_addr[1], &want.node_addr[1]));
	T_EQ(m.n_addr, 2);
	T_CHECK(ip_eq(&m.addr[0], &want.addr[0]));
	T_CHECK(ip_eq(&m.addr[1], &want.addr[1]));
}

static void test_auth_rejects(void)
{
	struct err e;
	uint8_t key2[KLEN];
	memcpy(key2, KEY, KLEN);
	key2[31] ^= 1;
	T_EQ(peermsg_auth(WANT, sizeof(WANT), key2, KLEN, &e), -EPERM);
	T_CHECK(strstr(e.msg, "HMAC") != NULL);
	/* every single changed bit of every byte, the HMAC's own included */
	uint8_t b[sizeof(WANT)];
	unsigned caught = 0;
	for (unsigned i = 0; i < sizeof(WANT); i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(b, WANT, sizeof(b));
			b[i] ^= (uint8_t)(1u << bit);
			caught += peermsg_auth(b, sizeof(b), KEY, KLEN, &e) == -EPERM;
		}
	T_EQ(caught, sizeof(WANT) * 8);
	/* cut short, and sizes out of bounds */
	T_EQ(peermsg_auth(WANT, sizeof(WANT) - 1, KEY, KLEN, &e), -EPERM);
	T_EQ(peermsg_auth(WANT, PEERMSG_MIN - 1, KEY, KLEN, &e), -EMSGSIZE);
	uint8_t *big = calloc(1, PEERMSG_MAX + 1);
	T_EQ(peermsg_auth(big, PEERMSG_MAX + 1, KEY, KLEN, &e), -EMSGSIZE);
	T_EQ(peermsg_decode(big, PEERMSG_MAX + 1, &(struct peermsg){ 0 }, &e), -EMSGSIZE);
	free(big);
}

/* A datagram of header h (32 bytes) and tlvs, plus 32 bytes standing in for the HMAC. */
static size_t build(uint8_t *out, const uint8_t *tlvs, size_t n)
{
	memcpy(out, WANT, PEERMSG_HDR);
	memcpy(out + PEERMSG_HDR, tlvs, n);
	memset(out + PEERMSG_HDR + n, 0xaa, PEERMSG_MAC);
	return PEERMSG_HDR + n + PEERMSG_MAC;
}

#define NODE 1, 6, 'n', 'o', 'd', 'e', '-', 'b'
#define NADDR 2, 4, 198, 18, 100, 12
#define ADDR 4, 4, 198, 18, 0, 7

static int dec(const uint8_t *tlvs, size_t n, struct peermsg *m, struct err *e)
{
	uint8_t b[PEERMSG_MAX];
	return peermsg_decode(b, build(b, tlvs, n), m, e);
}

static void test_decode_malformed(void)
{
	struct peermsg m;
	struct err e;
	uint8_t b[PEERMSG_MAX];
	static const uint8_t good[] = { NODE, NADDR, ADDR };
	T_EQ(dec(good, sizeof(good), &m, &e), 0);
	T_EQ(m.n_addr, 1);
	T_STREQ(m.uid, "");
	/* header fields */
	size_t len = build(b, good, sizeof(good));
	b[0] = 'X';
	T_EQ(peermsg_decode(b, len, &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "magic") != NULL);
	len = build(b, good, sizeof(good));
	b[4] = 2;
	T_EQ(peermsg_decode(b, len, &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "version") != NULL);
	len = build(b, good, sizeof(good));
	b[5] = 9;
	T_EQ(peermsg_decode(b, len, &m, &e), -EBADMSG);
	len = build(b, good, sizeof(good));
	b[7] = 1;
	T_EQ(peermsg_decode(b, len, &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "reserved") != NULL);
	len = build(b, good, sizeof(good));
	memset(b + 16, 0, 8); /* sequence 0 */
	T_EQ(peermsg_decode(b, len, &m, &e), -EBADMSG);
	/* TLVs */
	static const uint8_t past[] = { NODE, NADDR, 4, 9, 1, 2 };
	T_EQ(dec(past, sizeof(past), &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "past the end") != NULL);
	static const uint8_t half[] = { NODE, NADDR, ADDR, 4 };
	T_EQ(dec(half, sizeof(half), &m, &e), -EBADMSG);
	static const uint8_t twice[] = { NODE, NODE, NADDR, ADDR };
	T_EQ(dec(twice, sizeof(twice), &m, &e), -EBADMSG);
	static const uint8_t upper[] = { 1, 2, 'N', 'b', NADDR, ADDR };
	T_EQ(dec(upper, sizeof(upper), &m, &e), -EBADMSG);
	static const uint8_t empty_node[] = { 1, 0, NADDR, ADDR };
	T_EQ(dec(empty_node, sizeof(empty_node), &m, &e), -EBADMSG);
	static const uint8_t five[] = { NODE, 2, 5, 1, 2, 3, 4, 5, ADDR };
	T_EQ(dec(five, sizeof(five), &m, &e), -EBADMSG);
	static const uint8_t three_na[] = { NODE, NADDR, NADDR, NADDR, ADDR };
	T_EQ(dec(three_na, sizeof(three_na), &m, &e), -EBADMSG);
	static const uint8_t no_node[] = { NADDR, ADDR };
	T_EQ(dec(no_node, sizeof(no_node), &m, &e), -EBADMSG);
	static const uint8_t no_naddr[] = { NODE, ADDR };
	T_EQ(dec(no_naddr, sizeof(no_naddr), &m, &e), -EBADMSG);
	static const uint8_t no_addr[] = { NODE, NADDR };
	T_EQ(dec(no_addr, sizeof(no_addr), &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "no address") != NULL);
	static const uint8_t nine[] = { NODE, NADDR, ADDR, ADDR, ADDR, ADDR, ADDR,
					ADDR, ADDR, ADDR, ADDR };
	T_EQ(dec(nine, sizeof(nine), &m, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "too many") != NULL);
	static const uint8_t eight[] = { NODE, NADDR, ADDR, ADDR, ADDR, ADDR, ADDR,
					 ADDR, ADDR, ADDR };
	T_EQ(dec(eight, sizeof(eight), &m, &e), 0);
	T_EQ(m.n_addr, 8);
	static const uint8_t bad_uid[] = { NODE, NADDR, 3, 2, 'a', 0x01, ADDR };
	T_EQ(dec(bad_uid, sizeof(bad_uid), &m, &e), -EBADMSG);
	static const uint8_t uid2[] = { NODE, NADDR, 3, 1, 'a', 3, 1, 'b', ADDR };
	T_EQ(dec(uid2, sizeof(uid2), &m, &e), -EBADMSG);
	/* an unknown TLV (a newer sender's) is skipped */
	static const uint8_t newer[] = { NODE, 200, 3, 1, 2, 3, NADDR, ADDR, 201, 0 };
	T_EQ(dec(newer, sizeof(newer), &m, &e), 0);
	T_STREQ(m.node, "node-b");
	T_EQ(m.n_addr, 1);
}

/* RETRACT: CLAIM's fields under type 3, signed alike; type 4 is nobody's */
static void test_retract(void)
{
	struct peermsg m = sample(), d;
	m.type = PEERMSG_T_RETRACT;
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	struct err e;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), 0);
	T_EQ(len, sizeof(WANT));
	T_EQ(buf[5], PEERMSG_T_RETRACT);
	T_MEMEQ(buf + 6, WANT + 6, sizeof(WANT) - 6 - PEERMSG_MAC); /* the claim's body */
	T_EQ(peermsg_auth(buf, len, KEY, KLEN, &e), 0);
	T_EQ(peermsg_decode(buf, len, &d, &e), 0);
	T_EQ(d.type, PEERMSG_T_RETRACT);
	T_STREQ(d.node, "node-b");
	T_STREQ(d.uid, "mig-uid-1");
	T_EQ(d.n_addr, 2);
	T_CHECK(ip_eq(&d.addr[1], &m.addr[1]));
	/* a claim's bytes under the retract type do not authenticate: the type is signed */
	uint8_t x[sizeof(WANT)];
	memcpy(x, WANT, sizeof(x));
	x[5] = PEERMSG_T_RETRACT;
	T_EQ(peermsg_auth(x, sizeof(x), KEY, KLEN, &e), -EPERM);
	/* without an address it is refused both ways */
	m.n_addr = 0;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample();
	m.type = 4;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "type 4") != NULL);
	x[5] = 4;
	T_EQ(peermsg_decode(x, sizeof(x), &d, &e), -EBADMSG);
	T_CHECK(strstr(e.msg, "type 4") != NULL);
}

static void test_encode_errors(void)
{
	uint8_t buf[PEERMSG_MAX];
	size_t len = 7;
	struct err e;
	struct peermsg m = sample();
	strcpy(m.node, "Node_B");
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	T_EQ(len, 0);
	m = sample();
	m.seq = 0;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample();
	m.n_addr = 0;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m.n_addr = PEERMSG_ADDRS_MAX + 1;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample();
	T_EQ(peermsg_encode(&m, KEY, PEERMSG_KEY_MIN - 1, buf, sizeof(buf), &len, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "key") != NULL);
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(WANT) - 1, &len, &e), -ENOSPC);
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(WANT), &len, &e), 0);
	/* the biggest message there is fits PEERMSG_MAX, and round-trips */
	m = sample();
	memset(m.node, 'a', PEERMSG_NODE_MAX);
	m.node[PEERMSG_NODE_MAX] = '\0';
	memset(m.uid, 'u', PEERMSG_UID_MAX);
	m.uid[PEERMSG_UID_MAX] = '\0';
	m.n_addr = PEERMSG_ADDRS_MAX;
	for (unsigned i = 0; i < PEERMSG_ADDRS_MAX; i++)
		ip_parse("2001:db8::99", &m.addr[i]);
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), 0);
	T_CHECK(len <= PEERMSG_MAX);
	struct peermsg d;
	T_EQ(peermsg_auth(buf, len, KEY, KLEN, &e), 0);
	T_EQ(peermsg_decode(buf, len, &d, &e), 0);
	T_STREQ(d.node, m.node);
	T_STREQ(d.uid, m.uid);
	T_EQ(d.n_addr, PEERMSG_ADDRS_MAX);
}

#define S 1000000000ull

static void test_replay_window(void)
{
	struct peermsg m = sample();
	struct peermsg_seen s;
	memset(&s, 0, sizeof(s));
	uint64_t start = 1000 * S, now = 2000 * S, win = 5 * S;
	m.boot = 1500 * S;
	m.ts_ns = now - S;
	m.seq = 10;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_REPLAY); /* the same again */
	m.seq = 12;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	m.seq = 11; /* reordered: still new once */
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_REPLAY);
	m.seq = 100;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	m.seq = 100 - 64; /* fell out of the window */
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_REPLAY);
	m.seq = 100 - 63;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	/* a jump of more than 64 forgets everything below */
	m.seq = 1000;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	m.seq = 999;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	m.seq = 100;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_REPLAY);
	/* the sender restarted: a new boot id starts over at 1; the old one is dead */
	struct peermsg old = m;
	m.boot = 1600 * S;
	m.seq = 1;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	old.seq = 1001;
	T_EQ(peermsg_fresh(&s, &old, now, start, win), PEERMSG_REPLAY);
	/* time: outside the window either way, or before the receiver started */
	m.seq = 2;
	m.ts_ns = now - win - 1;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_STALE);
	m.ts_ns = now + win + 1;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_STALE);
	m.ts_ns = now - win;
	T_EQ(peermsg_fresh(&s, &m, now, start, win), PEERMSG_FRESH);
	struct peermsg_seen s2;
	memset(&s2, 0, sizeof(s2));
	m.seq = 3;
	m.ts_ns = start - 1;
	T_EQ(peermsg_fresh(&s2, &m, start + 1, start, win), PEERMSG_STALE);
	T_CHECK(!s2.used);
	m.ts_ns = UINT64_MAX;
	T_EQ(peermsg_fresh(&s2, &m, now, start, win), PEERMSG_STALE);
	T_STREQ(peermsg_fresh_name(PEERMSG_REPLAY), "replay");
	T_STREQ(peermsg_fresh_name((enum peermsg_fresh)9), "?");
}

/* python3: a CT message: boot 0x0102030405060708, seq 6, ts 1800000000123456789, node-a at
 * 198.18.100.11, uid mig-uid-1, VMI uid vmi-uid-7, round 2, chunk 1 of 3, a payload of
 * 300 bytes ((i * 7 + 3) & 255) in two CT_DATA TLVs (255 + 45); hmac.new(KEY, ...). */
static const uint8_t WANT_CT[414] = {
	0x4b, 0x56, 0x50, 0x4d, 0x01, 0x02, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
	0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
	0x18, 0xfa, 0xe2, 0x76, 0x9b, 0x0f, 0xcd, 0x15, 0x01, 0x06, 0x6e, 0x6f,
	0x64, 0x65, 0x2d, 0x61, 0x02, 0x04, 0xc6, 0x12, 0x64, 0x0b, 0x03, 0x09,
	0x6d, 0x69, 0x67, 0x2d, 0x75, 0x69, 0x64, 0x2d, 0x31, 0x05, 0x09, 0x76,
	0x6d, 0x69, 0x2d, 0x75, 0x69, 0x64, 0x2d, 0x37, 0x06, 0x08, 0x00, 0x00,
	0x00, 0x02, 0x00, 0x01, 0x00, 0x03, 0x07, 0xff, 0x03, 0x0a, 0x11, 0x18,
	0x1f, 0x26, 0x2d, 0x34, 0x3b, 0x42, 0x49, 0x50, 0x57, 0x5e, 0x65, 0x6c,
	0x73, 0x7a, 0x81, 0x88, 0x8f, 0x96, 0x9d, 0xa4, 0xab, 0xb2, 0xb9, 0xc0,
	0xc7, 0xce, 0xd5, 0xdc, 0xe3, 0xea, 0xf1, 0xf8, 0xff, 0x06, 0x0d, 0x14,
	0x1b, 0x22, 0x29, 0x30, 0x37, 0x3e, 0x45, 0x4c, 0x53, 0x5a, 0x61, 0x68,
	0x6f, 0x76, 0x7d, 0x84, 0x8b, 0x92, 0x99, 0xa0, 0xa7, 0xae, 0xb5, 0xbc,
	0xc3, 0xca, 0xd1, 0xd8, 0xdf, 0xe6, 0xed, 0xf4, 0xfb, 0x02, 0x09, 0x10,
	0x17, 0x1e, 0x25, 0x2c, 0x33, 0x3a, 0x41, 0x48, 0x4f, 0x56, 0x5d, 0x64,
	0x6b, 0x72, 0x79, 0x80, 0x87, 0x8e, 0x95, 0x9c, 0xa3, 0xaa, 0xb1, 0xb8,
	0xbf, 0xc6, 0xcd, 0xd4, 0xdb, 0xe2, 0xe9, 0xf0, 0xf7, 0xfe, 0x05, 0x0c,
	0x13, 0x1a, 0x21, 0x28, 0x2f, 0x36, 0x3d, 0x44, 0x4b, 0x52, 0x59, 0x60,
	0x67, 0x6e, 0x75, 0x7c, 0x83, 0x8a, 0x91, 0x98, 0x9f, 0xa6, 0xad, 0xb4,
	0xbb, 0xc2, 0xc9, 0xd0, 0xd7, 0xde, 0xe5, 0xec, 0xf3, 0xfa, 0x01, 0x08,
	0x0f, 0x16, 0x1d, 0x24, 0x2b, 0x32, 0x39, 0x40, 0x47, 0x4e, 0x55, 0x5c,
	0x63, 0x6a, 0x71, 0x78, 0x7f, 0x86, 0x8d, 0x94, 0x9b, 0xa2, 0xa9, 0xb0,
	0xb7, 0xbe, 0xc5, 0xcc, 0xd3, 0xda, 0xe1, 0xe8, 0xef, 0xf6, 0xfd, 0x04,
	0x0b, 0x12, 0x19, 0x20, 0x27, 0x2e, 0x35, 0x3c, 0x43, 0x4a, 0x51, 0x58,
	0x5f, 0x66, 0x6d, 0x74, 0x7b, 0x82, 0x89, 0x90, 0x97, 0x9e, 0xa5, 0xac,
	0xb3, 0xba, 0xc1, 0xc8, 0xcf, 0xd6, 0xdd, 0xe4, 0xeb, 0xf2, 0xf9, 0x00,
	0x07, 0x0e, 0x15, 0x1c, 0x23, 0x2a, 0x31, 0x38, 0x3f, 0x46, 0x4d, 0x54,
	0x5b, 0x62, 0x69, 0x70, 0x77, 0x7e, 0x85, 0x8c, 0x93, 0x9a, 0xa1, 0xa8,
	0xaf, 0xb6, 0xbd, 0xc4, 0xcb, 0xd2, 0xd9, 0xe0, 0xe7, 0xee, 0xf5, 0x07,
	0x2d, 0xfc, 0x03, 0x0a, 0x11, 0x18, 0x1f, 0x26, 0x2d, 0x34, 0x3b, 0x42,
	0x49, 0x50, 0x57, 0x5e, 0x65, 0x6c, 0x73, 0x7a, 0x81, 0x88, 0x8f, 0x96,
	0x9d, 0xa4, 0xab, 0xb2, 0xb9, 0xc0, 0xc7, 0xce, 0xd5, 0xdc, 0xe3, 0xea,
	0xf1, 0xf8, 0xff, 0x06, 0x0d, 0x14, 0x1b, 0x22, 0x29, 0x30, 0x4c, 0xd8,
	0xa2, 0x35, 0xce, 0xc0, 0xee, 0x69, 0xc9, 0x43, 0x26, 0xaf, 0x54, 0x33,
	0x01, 0x1e, 0x6f, 0xc1, 0x7e, 0x6b, 0x7f, 0x45, 0xbd, 0xa7, 0xe6, 0xe5,
	0x64, 0x01, 0x51, 0xb6, 0x56, 0x4b,
};

static struct peermsg sample_ct(void)
{
	struct peermsg m;
	memset(&m, 0, sizeof(m));
	m.type = PEERMSG_T_CT;
	m.boot = 0x0102030405060708ull;
	m.seq = 6;
	m.ts_ns = 1800000000123456789ull;
	strcpy(m.node, "node-a");
	ip_parse("198.18.100.11", &m.node_addr[0]);
	m.n_node_addr = 1;
	strcpy(m.uid, "mig-uid-1");
	strcpy(m.vmi_uid, "vmi-uid-7");
	m.round = 2;
	m.chunk = 1;
	m.chunks = 3;
	m.ct_len = 300;
	for (unsigned i = 0; i < 300; i++)
		m.ct[i] = (uint8_t)((i * 7 + 3) & 255);
	return m;
}

static void test_ct_matches_python(void)
{
	struct peermsg m = sample_ct(), d;
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	struct err e;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), 0);
	T_EQ(len, sizeof(WANT_CT));
	T_MEMEQ(buf, WANT_CT, sizeof(WANT_CT));
	T_EQ(peermsg_auth(WANT_CT, sizeof(WANT_CT), KEY, KLEN, &e), 0);
	T_EQ(peermsg_decode(WANT_CT, sizeof(WANT_CT), &d, &e), 0);
	T_EQ(d.type, PEERMSG_T_CT);
	T_STREQ(d.uid, "mig-uid-1");
	T_STREQ(d.vmi_uid, "vmi-uid-7");
	T_EQ(d.round, 2);
	T_EQ(d.chunk, 1);
	T_EQ(d.chunks, 3);
	T_EQ(d.ct_len, 300);
	T_MEMEQ(d.ct, m.ct, 300);
	T_EQ(d.n_addr, 0);
}

/* peermsg_ct_room is exact: that many payload bytes fit PEERMSG_MAX, one more does not. */
static void test_ct_room(void)
{
	struct peermsg m = sample_ct();
	size_t room = peermsg_ct_room(&m);
	T_CHECK(room > 900 && room <= PEERMSG_CT_MAX);
	uint8_t buf[PEERMSG_MAX + 64];
	size_t len = 0;
	struct err e;
	m.ct_len = (uint16_t)room;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), 0);
	T_CHECK(len <= PEERMSG_MAX);
	m.ct_len = (uint16_t)(room + 1);
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -ENOSPC);
	/* a longer node name leaves less */
	struct peermsg l = sample_ct();
	memset(l.node, 'n', 200);
	l.node[200] = '\0';
	T_CHECK(peermsg_ct_room(&l) < room);
}

static void test_ct_refused(void)
{
	struct err e;
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	struct peermsg m = sample_ct();
	m.n_addr = 1;
	ip_parse("198.18.0.7", &m.addr[0]);
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample_ct();
	m.vmi_uid[0] = '\0';
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample_ct();
	m.chunk = 3;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample_ct();
	m.round = 0;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	m = sample_ct();
	m.ct_len = 0;
	T_EQ(peermsg_encode(&m, KEY, KLEN, buf, sizeof(buf), &len, &e), -EINVAL);
	/* decoding: change one byte of the python datagram at a time (the HMAC is not read
	 * by decode): type 1 with CT TLVs, a chunk index at its count, round 0 */
	uint8_t x[sizeof(WANT_CT)];
	struct peermsg d;
	memcpy(x, WANT_CT, sizeof(x));
	x[5] = PEERMSG_T_CLAIM;
	T_EQ(peermsg_decode(x, sizeof(x), &d, &e), -EBADMSG);
	size_t ch = 32 + 8 + 6 + 11 + 11; /* the CHUNK TLV */
	T_EQ(WANT_CT[ch], PEERMSG_TLV_CHUNK);
	memcpy(x, WANT_CT, sizeof(x));
	x[ch + 2 + 4 + 1] = 3; /* index 3 of 3 */
	T_EQ(peermsg_decode(x, sizeof(x), &d, &e), -EBADMSG);
	memcpy(x, WANT_CT, sizeof(x));
	x[ch + 2 + 3] = 0; /* round 0 */
	T_EQ(peermsg_decode(x, sizeof(x), &d, &e), -EBADMSG);
	/* a CT message cut before its data TLVs has no data: refused */
	T_EQ(peermsg_decode(WANT_CT, ch + 10 + PEERMSG_MAC, &d, &e), -EBADMSG);
}

static void test_node_names(void)
{
	T_CHECK(peermsg_node_name_ok("node-a"));
	T_CHECK(peermsg_node_name_ok("ip-10-0-0-1.ec2.internal"));
	T_CHECK(!peermsg_node_name_ok(""));
	T_CHECK(!peermsg_node_name_ok("Node"));
	T_CHECK(!peermsg_node_name_ok("a b"));
}

int main(void)
{
	T_RUN(test_encode_matches_python);
	T_RUN(test_retract);
	T_RUN(test_auth_and_decode);
	T_RUN(test_auth_rejects);
	T_RUN(test_decode_malformed);
	T_RUN(test_encode_errors);
	T_RUN(test_replay_window);
	T_RUN(test_node_names);
	T_RUN(test_ct_matches_python);
	T_RUN(test_ct_room);
	T_RUN(test_ct_refused);
	return t_done();
}
