/* nft — nf_tables over netlink: batch builder, atomic commit, table reader; see nft.h. */
#include "net/nft.h"

#include "lib/cursor.h"
#include "lib/err.h"
#include "lib/ip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define HDRLEN 16u   /* struct nlmsghdr */
#define GENLEN 4u    /* struct nfgenmsg */
#define IFNAMSZ 16u  /* IFNAMSIZ */
#define UDATA_COMMENT 0 /* NFTNL_UDATA_RULE_COMMENT: the user data TLV nft shows */
#define UDATA_SET_KEYBYTEORDER 0 /* NFTNL_UDATA_SET_KEYBYTEORDER: u32, 1 host, 2 big */

/* Userspace type numbers nft shows sets by (NFTA_SET_KEY_TYPE). */
#define TYPE_IPADDR 7
#define TYPE_IP6ADDR 8
#define TYPE_INET_PROTOCOL 12
#define TYPE_INET_SERVICE 13
#define TYPE_IFNAME 41
#define TYPE_BITS 6 /* a concatenation's type: the fields' types, 6 bits each */

static uint64_t be64(uint64_t v)
{
	return ((uint64_t)htonl((uint32_t)v) << 32) | htonl((uint32_t)(v >> 32));
}

/* ---- batch building ------------------------------------------------------------- */

/* Record the first build error; every later call returns it. */
static int bfail(struct nft_batch *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bfail(struct nft_batch *b, int code, const char *fmt, ...)
{
	if (b->rc)
		return b->rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->emsg, sizeof(b->emsg), fmt, ap);
	va_end(ap);
	b->rc = -code;
	return b->rc;
}

static int name_ok(struct nft_batch *b, const char *what, const char *name)
{
	if (!name || !*name || strlen(name) >= NFT_NAME_MAX)
		return bfail(b, EINVAL, "nft %s: %s name %s", b->table, what,
			     !name || !*name ? "is empty" : "is too long");
	return 0;
}

int nft_batch_init(struct nft_batch *b, const char *table, struct err *e)
{
	memset(b, 0, sizeof(*b));
	if (!table || !*table || strlen(table) >= NFT_NAME_MAX)
		return err_setx(e, EINVAL, "nft: table name %s",
				!table || !*table ? "is empty" : "is too long");
	snprintf(b->table, sizeof(b->table), "%s", table);
	b->next_set_id = 1;
	return 0;
}

int nft_batch_family(struct nft_batch *b, uint8_t family)
{
	if (family != NFPROTO_INET && family != NFPROTO_BRIDGE && family != NFPROTO_NETDEV)
		return err_setx(NULL, EAFNOSUPPORT, "nft: family %u", family);
	b->family = family;
	return 0;
}

void nft_batch_reset(struct nft_batch *b)
{
	b->len = 0;
	b->open = NFT_OPEN_NONE;
	b->nmsgs = 0;
	b->next_set_id = 1;
	b->elem_count = b->rule_count = 0;
	b->rc = 0;
	b->emsg[0] = 0;
	b->ktext[0] = 0;
	b->ktext_set = false;
	b->batch_rc = 0;
	b->failed = 0;
}

void nft_batch_free(struct nft_batch *b)
{
	free(b->buf);
	free(b->msgs);
	b->buf = NULL;
	b->msgs = NULL;
	b->cap = b->msgcap = 0;
	nft_batch_reset(b);
}

size_t nft_batch_count(const struct nft_batch *b)
{
	return b->nmsgs;
}

static int elems_close(struct nft_batch *b);

/* Open message `type` with `flags` (NLM_F_ACK added) in place at the end of the buffer,
 * with its nfgenmsg, and record what it is. */
static int msg_begin(struct nft_batch *b, uint8_t type, uint16_t flags, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int msg_begin(struct nft_batch *b, uint8_t type, uint16_t flags, const char *fmt, ...)
{
	if (b->rc)
		return b->rc;
	if (b->open == NFT_OPEN_RULE)
		return bfail(b, EINVAL, "nft %s: a rule is still open (nft_rule_end missing)",
			     b->table);
	if (b->open == NFT_OPEN_ELEMS && elems_close(b) < 0)
		return b->rc;
	if (b->cap - b->len < NFT_MSG_ROOM) {
		size_t ncap = b->cap ? b->cap : 4 * NFT_MSG_ROOM;
		while (ncap - b->len < NFT_MSG_ROOM)
			ncap *= 2;
		uint8_t *nb = realloc(b->buf, ncap);
		if (!nb)
			return bfail(b, ENOMEM, "nft %s: batch buffer of %zu bytes: out of memory",
				     b->table, ncap);
		b->buf = nb;
		b->cap = ncap;
	}
	if (b->nmsgs == b->msgcap) {
		size_t ncap = b->msgcap ? b->msgcap * 2 : 64;
		struct nft_bmsg *nm = realloc(b->msgs, ncap * sizeof(*nm));
		if (!nm)
			return bfail(b, ENOMEM, "nft %s: batch of %zu messages: out of memory",
				     b->table, ncap);
		b->msgs = nm;
		b->msgcap = ncap;
	}
	struct nft_bmsg *bm = &b->msgs[b->nmsgs];
	memset(bm, 0, sizeof(*bm));
	bm->off = b->len;
	bm->rc = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(bm->what, sizeof(bm->what), fmt, ap);
	va_end(ap);
	nl_msg_init(&b->m, b->buf + b->len, NFT_MSG_ROOM,
		    (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | type), (uint16_t)(flags | NLM_F_ACK));
	struct nfgenmsg g = {.nfgen_family = b->family ? b->family : NFPROTO_INET,
			     .version = NFNETLINK_V0, .res_id = 0};
	nl_put_fam(&b->m, &g, sizeof(g));
	return 0;
}

static int msg_end(struct nft_batch *b)
{
	struct err e = {0};
	if (b->rc)
		return b->rc;
	if (nl_msg_check(&b->m, &e) < 0)
		return bfail(b, e.code, "nft %s: %s: does not fit in one message (%zu bytes)",
			     b->table, b->msgs[b->nmsgs].what, (size_t)NFT_MSG_ROOM);
	b->len += nl_msg_len(&b->m);
	b->nmsgs++;
	b->open = NFT_OPEN_NONE;
	return 0;
}

/* Attribute writers on the open message that turn a full buffer into the batch error. */
static int put_be32(struct nft_batch *b, uint16_t type, uint32_t v)
{
	return nl_put_u32(&b->m, type, htonl(v));
}

static int put_be64(struct nft_batch *b, uint16_t type, uint64_t v)
{
	uint64_t x = be64(v);
	return nl_put(&b->m, type, &x, sizeof(x));
}

/* NFTA_DATA_VALUE inside a nest of `type`. */
static int put_value(struct nft_batch *b, uint16_t type, const void *data, size_t len)
{
	size_t n;
	nl_nest_begin(&b->m, type, &n);
	nl_put(&b->m, NFTA_DATA_VALUE, data, len);
	return nl_nest_end(&b->m, n);
}

static int32_t verdict_code(enum nft_verdict v)
{
	switch (v) {
	case NFT_V_ACCEPT:
		return NF_ACCEPT;
	case NFT_V_DROP:
		return NF_DROP;
	case NFT_V_JUMP:
		return NFT_JUMP;
	case NFT_V_GOTO:
		return NFT_GOTO;
	case NFT_V_RETURN:
		return NFT_RETURN;
	case NFT_V_CONTINUE:
		return NFT_CONTINUE;
	}
	return NF_DROP;
}

/* NFTA_DATA_VERDICT inside a nest of `type`. */
static int put_verdict(struct nft_batch *b, uint16_t type, enum nft_verdict v,
		       const char *chain)
{
	size_t n, vn;
	if ((v == NFT_V_JUMP || v == NFT_V_GOTO) && name_ok(b, "jump target chain", chain) < 0)
		return b->rc;
	nl_nest_begin(&b->m, type, &n);
	nl_nest_begin(&b->m, NFTA_DATA_VERDICT, &vn);
	put_be32(b, NFTA_VERDICT_CODE, (uint32_t)verdict_code(v));
	if (v == NFT_V_JUMP || v == NFT_V_GOTO)
		nl_put_str(&b->m, NFTA_VERDICT_CHAIN, chain);
	nl_nest_end(&b->m, vn);
	return nl_nest_end(&b->m, n);
}

int nft_table(struct nft_batch *b, enum nft_tableop op)
{
	uint8_t type = NFT_MSG_NEWTABLE;
	uint16_t flags = NLM_F_CREATE;
	const char *verb = "add";
	switch (op) {
	case NFT_TABLE_ADD:
		break;
	case NFT_TABLE_CREATE:
		flags |= NLM_F_EXCL;
		verb = "create";
		break;
	case NFT_TABLE_DELETE:
		type = NFT_MSG_DELTABLE;
		flags = 0;
		verb = "delete";
		break;
	case NFT_TABLE_FLUSH:
		type = NFT_MSG_DELRULE;
		flags = 0;
		verb = "flush";
		break;
	}
	if (msg_begin(b, type, flags, "table %s: %s", b->table, verb) < 0)
		return b->rc;
	nl_put_str(&b->m, type == NFT_MSG_DELRULE ? NFTA_RULE_TABLE : NFTA_TABLE_NAME, b->table);
	return msg_end(b);
}

static uint32_t hooknum(enum nft_hook h)
{
	switch (h) {
	case NFT_HOOK_NONE:
	case NFT_HOOK_PREROUTING:
		return NF_INET_PRE_ROUTING;
	case NFT_HOOK_INPUT:
		return NF_INET_LOCAL_IN;
	case NFT_HOOK_FORWARD:
		return NF_INET_FORWARD;
	case NFT_HOOK_OUTPUT:
		return NF_INET_LOCAL_OUT;
	case NFT_HOOK_POSTROUTING:
		return NF_INET_POST_ROUTING;
	}
	return NF_INET_FORWARD;
}

int nft_chain_add(struct nft_batch *b, const struct nft_chain_spec *c)
{
	if (name_ok(b, "chain", c->name) < 0)
		return b->rc;
	if (msg_begin(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, "chain %s: add", c->name) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_CHAIN_TABLE, b->table);
	nl_put_str(&b->m, NFTA_CHAIN_NAME, c->name);
	if (c->hook != NFT_HOOK_NONE) {
		size_t n;
		nl_nest_begin(&b->m, NFTA_CHAIN_HOOK, &n);
		put_be32(b, NFTA_HOOK_HOOKNUM, hooknum(c->hook));
		put_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)c->priority);
		nl_nest_end(&b->m, n);
		put_be32(b, NFTA_CHAIN_POLICY, c->drop ? NF_DROP : NF_ACCEPT);
		nl_put_str(&b->m, NFTA_CHAIN_TYPE, "filter");
	}
	return msg_end(b);
}

static int chain_op(struct nft_batch *b, const char *name, bool flush)
{
	if (name_ok(b, "chain", name) < 0)
		return b->rc;
	if (msg_begin(b, flush ? NFT_MSG_DELRULE : NFT_MSG_DELCHAIN, 0, "chain %s: %s", name,
		      flush ? "flush" : "delete") < 0)
		return b->rc;
	nl_put_str(&b->m, flush ? NFTA_RULE_TABLE : NFTA_CHAIN_TABLE, b->table);
	nl_put_str(&b->m, flush ? NFTA_RULE_CHAIN : NFTA_CHAIN_NAME, name);
	return msg_end(b);
}

int nft_chain_del(struct nft_batch *b, const char *name)
{
	return chain_op(b, name, false);
}

int nft_chain_flush(struct nft_batch *b, const char *name)
{
	return chain_op(b, name, true);
}

static void key_props(enum nft_keytype k, uint32_t *type, uint32_t *len)
{
	switch (k) {
	case NFT_KEY_IPV4:
		*type = TYPE_IPADDR;
		*len = 4;
		return;
	case NFT_KEY_IPV6:
		*type = TYPE_IP6ADDR;
		*len = 16;
		return;
	case NFT_KEY_SERVICE:
		*type = TYPE_INET_SERVICE;
		*len = 2;
		return;
	case NFT_KEY_IFNAME:
		*type = TYPE_IFNAME;
		*len = IFNAMSZ;
		return;
	case NFT_KEY_PROTO:
		*type = TYPE_INET_PROTOCOL;
		*len = 1;
		return;
	case NFT_KEY_PROTO_SERVICE:
		*type = TYPE_INET_PROTOCOL << TYPE_BITS | TYPE_INET_SERVICE;
		*len = 8;
		return;
	}
	*type = 0;
	*len = 0;
}

/* One field of a concatenated key: type number, bytes in the packet. */
static void field_props(enum nft_field f, uint32_t *type, uint32_t *len)
{
	switch (f) {
	case NFT_F_IIFNAME:
	case NFT_F_OIFNAME:
		*type = TYPE_IFNAME;
		*len = IFNAMSZ;
		return;
	case NFT_F_SADDR4:
	case NFT_F_DADDR4:
		*type = TYPE_IPADDR;
		*len = 4;
		return;
	case NFT_F_SADDR6:
	case NFT_F_DADDR6:
		*type = TYPE_IP6ADDR;
		*len = 16;
		return;
	case NFT_F_L4PROTO:
		*type = TYPE_INET_PROTOCOL;
		*len = 1;
		return;
	case NFT_F_SPORT:
	case NFT_F_DPORT:
		*type = TYPE_INET_SERVICE;
		*len = 2;
		return;
	}
	*type = 0;
	*len = 0;
}

unsigned nft_field_len(enum nft_field f)
{
	uint32_t type, len;
	field_props(f, &type, &len);
	return (len + 3u) & ~3u;
}

/* Type and length of a concatenated key; false when it has too many fields or bytes. */
static bool concat_props(const struct nft_set_spec *s, uint32_t *type, uint32_t *len)
{
	*type = 0;
	*len = 0;
	if (s->nfields > NFT_FIELDS_MAX || !s->fields)
		return false;
	for (uint8_t i = 0; i < s->nfields; i++) {
		uint32_t t, l;
		field_props(s->fields[i], &t, &l);
		*type = *type << TYPE_BITS | t;
		*len += nft_field_len(s->fields[i]);
	}
	return *len <= NFT_KEY_MAX;
}

/* A counter expression { NAME counter, DATA { BYTES 0, PACKETS 0 } } nested as `type`
 * (a set's element template, a dynset's per-element statement). */
static void put_counter_expr(struct nft_batch *b, uint16_t type)
{
	size_t n, d;
	nl_nest_begin(&b->m, type, &n);
	nl_put_str(&b->m, NFTA_EXPR_NAME, "counter");
	nl_nest_begin(&b->m, NFTA_EXPR_DATA, &d);
	put_be64(b, NFTA_COUNTER_BYTES, 0);
	put_be64(b, NFTA_COUNTER_PACKETS, 0);
	nl_nest_end(&b->m, d);
	nl_nest_end(&b->m, n);
}

int nft_set_add(struct nft_batch *b, const struct nft_set_spec *s)
{
	uint32_t ktype, klen, flags = 0;
	if (name_ok(b, "set", s->name) < 0)
		return b->rc;
	key_props(s->key, &ktype, &klen);
	if (s->nfields > 0 && !concat_props(s, &ktype, &klen))
		return bfail(b, EINVAL, "nft %s: set %s: key of %u fields does not fit %u bytes",
			     b->table, s->name, s->nfields, NFT_KEY_MAX);
	if (s->nfields > 0 && (s->interval || s->vmap))
		return bfail(b, EINVAL, "nft %s: set %s: concatenated keys take no ranges or "
			     "verdicts here", b->table, s->name);
	if (s->dynamic)
		flags |= NFT_SET_EVAL;
	if (s->timeout_ms)
		flags |= NFT_SET_TIMEOUT;
	if (s->interval)
		flags |= NFT_SET_INTERVAL;
	if (s->vmap)
		flags |= NFT_SET_MAP;
	bool concat = s->key == NFT_KEY_PROTO_SERVICE && s->nfields == 0;
	if (concat && s->interval)
		flags |= NFT_SET_CONCAT;
	if (msg_begin(b, NFT_MSG_NEWSET, NLM_F_CREATE, "set %s: add", s->name) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_SET_TABLE, b->table);
	nl_put_str(&b->m, NFTA_SET_NAME, s->name);
	put_be32(b, NFTA_SET_FLAGS, flags);
	put_be32(b, NFTA_SET_KEY_TYPE, ktype);
	put_be32(b, NFTA_SET_KEY_LEN, klen);
	if (s->vmap)
		put_be32(b, NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
	put_be32(b, NFTA_SET_ID, b->next_set_id++);
	if (s->timeout_ms)
		put_be64(b, NFTA_SET_TIMEOUT, s->timeout_ms);
	if (s->size && !concat) {
		size_t d;
		nl_nest_begin(&b->m, NFTA_SET_DESC, &d);
		put_be32(b, NFTA_SET_DESC_SIZE, s->size);
		nl_nest_end(&b->m, d);
	}
	if (s->counter)
		put_counter_expr(b, NFTA_SET_EXPR);
	if (concat) {
		/* the fields' lengths in bytes, for the kernel to pick a set type that
		 * matches ranges per field (pipapo) */
		size_t d, c, f;
		static const uint32_t fields[] = {1, 2};
		nl_nest_begin(&b->m, NFTA_SET_DESC, &d);
		nl_nest_begin(&b->m, NFTA_SET_DESC_CONCAT, &c);
		for (size_t i = 0; i < 2; i++) {
			nl_nest_begin(&b->m, NFTA_LIST_ELEM, &f);
			put_be32(b, NFTA_SET_FIELD_LEN, fields[i]);
			nl_nest_end(&b->m, f);
		}
		nl_nest_end(&b->m, c);
		nl_nest_end(&b->m, d);
	}
	/* libnftnl-style user data: the key's byte order, so `nft list` prints interface
	 * names (host order) right; the kernel ignores it */
	uint8_t ud[6] = {UDATA_SET_KEYBYTEORDER, 4};
	uint32_t order = s->key == NFT_KEY_IFNAME && s->nfields == 0 ? 1 /* host */
								      : 2 /* big endian */;
	memcpy(ud + 2, &order, 4);
	nl_put(&b->m, NFTA_SET_USERDATA, ud, sizeof(ud));
	return msg_end(b);
}

static int set_op(struct nft_batch *b, const char *name, bool flush)
{
	if (name_ok(b, "set", name) < 0)
		return b->rc;
	if (msg_begin(b, flush ? NFT_MSG_DELSETELEM : NFT_MSG_DELSET, 0, "set %s: %s", name,
		      flush ? "flush" : "delete") < 0)
		return b->rc;
	nl_put_str(&b->m, flush ? NFTA_SET_ELEM_LIST_TABLE : NFTA_SET_TABLE, b->table);
	nl_put_str(&b->m, flush ? NFTA_SET_ELEM_LIST_SET : NFTA_SET_NAME, name);
	return msg_end(b);
}

int nft_set_del(struct nft_batch *b, const char *name)
{
	return set_op(b, name, false);
}

int nft_set_flush(struct nft_batch *b, const char *name)
{
	return set_op(b, name, true);
}

/* ---- elements ------------------------------------------------------------------- */

static int elems_close(struct nft_batch *b)
{
	struct nft_bmsg *bm = &b->msgs[b->nmsgs];
	size_t l = strlen(bm->what);
	snprintf(bm->what + l, sizeof(bm->what) - l, "%u", b->open_first + b->nelems - 1);
	nl_nest_end(&b->m, b->nest[0]);
	return msg_end(b);
}

static int elems_open(struct nft_batch *b, const char *set, bool del)
{
	int op = del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM;
	if (b->open == NFT_OPEN_ELEMS && b->open_op == op && strcmp(b->open_set, set) == 0 &&
	    nl_msg_len(&b->m) < NFT_ELEMS_MAX)
		return 0;
	unsigned first = b->elem_count + 1;
	if (msg_begin(b, (uint8_t)op, del ? 0 : NLM_F_CREATE, "set %s: %s elements %u-", set,
		      del ? "delete" : "add", first) < 0)
		return b->rc;
	b->msgs[b->nmsgs].first = first;
	nl_put_str(&b->m, NFTA_SET_ELEM_LIST_TABLE, b->table);
	nl_put_str(&b->m, NFTA_SET_ELEM_LIST_SET, set);
	nl_nest_begin(&b->m, NFTA_SET_ELEM_LIST_ELEMENTS, &b->nest[0]);
	b->open = NFT_OPEN_ELEMS;
	b->open_op = op;
	snprintf(b->open_set, sizeof(b->open_set), "%s", set);
	b->open_first = first;
	b->nelems = 0;
	return b->rc;
}

/* One element of the open element message. */
static void elem_put(struct nft_batch *b, const uint8_t *key, const uint8_t *key_end,
		     size_t len, uint32_t flags, const struct nft_elem *el, bool map)
{
	size_t n;
	nl_nest_begin(&b->m, NFTA_LIST_ELEM, &n);
	put_value(b, NFTA_SET_ELEM_KEY, key, len);
	if (key_end)
		put_value(b, NFTA_SET_ELEM_KEY_END, key_end, len);
	if (flags)
		put_be32(b, NFTA_SET_ELEM_FLAGS, flags);
	if (map)
		put_verdict(b, NFTA_SET_ELEM_DATA, el->verdict, el->chain);
	nl_nest_end(&b->m, n);
}

/* key + 1 in place (big-endian); false when it wrapped (key was the largest value). */
static bool key_inc(uint8_t *k, size_t len)
{
	for (size_t i = len; i-- > 0;)
		if (++k[i] != 0)
			return true;
	return false;
}

int nft_elems(struct nft_batch *b, const struct nft_set_spec *s, bool del,
	      const struct nft_elem *el, size_t n)
{
	const char *set = s->name;
	bool interval = s->interval;
	if (name_ok(b, "set", set) < 0)
		return b->rc;
	for (size_t i = 0; i < n; i++) {
		if (el[i].len == 0 || el[i].len > NFT_KEY_MAX)
			return bfail(b, EINVAL, "nft %s: set %s: element %u: key of %u bytes",
				     b->table, set, b->elem_count + 1, el[i].len);
		if (interval && memcmp(el[i].key, el[i].key_end, el[i].len) > 0)
			return bfail(b, EINVAL,
				     "nft %s: set %s: element %u: range ends before it starts",
				     b->table, set, b->elem_count + 1);
		if (elems_open(b, set, del) < 0)
			return b->rc;
		if (interval && s->key == NFT_KEY_PROTO_SERVICE) {
			/* a concatenation range is one element with KEY and KEY_END */
			elem_put(b, el[i].key, el[i].key_end, el[i].len, 0, &el[i], false);
		} else {
			elem_put(b, el[i].key, NULL, el[i].len, 0, &el[i], s->vmap && !del);
		}
		if (interval && s->key != NFT_KEY_PROTO_SERVICE) {
			uint8_t end[NFT_KEY_MAX];
			memcpy(end, el[i].key_end, el[i].len);
			if (key_inc(end, el[i].len))
				elem_put(b, end, NULL, el[i].len, NFT_SET_ELEM_INTERVAL_END, &el[i],
					 false);
		}
		b->elem_count++;
		b->nelems++;
		if (b->rc)
			return b->rc;
	}
	return 0;
}

void nft_elem_addr(struct nft_elem *el, const struct ip_addr *lo, const struct ip_addr *hi)
{
	memset(el, 0, sizeof(*el));
	el->len = (uint8_t)ip_len(lo);
	memcpy(el->key, lo->b, el->len);
	memcpy(el->key_end, (hi ? hi : lo)->b, el->len);
}

void nft_elem_port(struct nft_elem *el, uint16_t lo, uint16_t hi)
{
	memset(el, 0, sizeof(*el));
	el->len = 2;
	el->key[0] = (uint8_t)(lo >> 8);
	el->key[1] = (uint8_t)lo;
	el->key_end[0] = (uint8_t)(hi >> 8);
	el->key_end[1] = (uint8_t)hi;
}

void nft_elem_proto_port(struct nft_elem *el, uint8_t proto, uint16_t lo, uint16_t hi)
{
	memset(el, 0, sizeof(*el));
	el->len = 8;
	el->key[0] = el->key_end[0] = proto;
	el->key[4] = (uint8_t)(lo >> 8);
	el->key[5] = (uint8_t)lo;
	el->key_end[4] = (uint8_t)(hi >> 8);
	el->key_end[5] = (uint8_t)hi;
}

int nft_elem_ifname(struct nft_elem *el, const char *ifname, enum nft_verdict v,
		    const char *chain)
{
	memset(el, 0, sizeof(*el));
	size_t l = strlen(ifname);
	if (l == 0 || l >= IFNAMSZ)
		return -EINVAL;
	memcpy(el->key, ifname, l);
	memcpy(el->key_end, ifname, l);
	el->len = IFNAMSZ;
	el->verdict = v;
	el->chain = chain;
	return 0;
}

/* ---- rules and expressions ------------------------------------------------------ */

int nft_rule_begin(struct nft_batch *b, enum nft_ruleop op, const char *chain,
		   uint64_t handle, const char *id)
{
	uint16_t flags = NLM_F_CREATE;
	const char *verb = "add";
	if (name_ok(b, "chain", chain) < 0)
		return b->rc;
	if (id && strlen(id) >= NFT_ID_MAX)
		return bfail(b, EINVAL, "nft %s: chain %s: rule id of %zu bytes (at most %d)",
			     b->table, chain, strlen(id), NFT_ID_MAX - 1);
	switch (op) {
	case NFT_RULE_APPEND:
		flags |= NLM_F_APPEND;
		break;
	case NFT_RULE_INSERT:
		verb = "insert";
		break;
	case NFT_RULE_REPLACE:
		flags = NLM_F_REPLACE;
		verb = "replace";
		break;
	}
	b->rule_count++;
	if (msg_begin(b, NFT_MSG_NEWRULE, flags, "rule %s #%u%s%s%s: %s", chain, b->rule_count,
		      id ? " (" : "", id ? id : "", id ? ")" : "", verb) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_RULE_TABLE, b->table);
	nl_put_str(&b->m, NFTA_RULE_CHAIN, chain);
	if (op == NFT_RULE_REPLACE)
		put_be64(b, NFTA_RULE_HANDLE, handle);
	if (id) {
		/* libnftnl's user data TLV: type, length (with the NUL), value */
		uint8_t ud[2 + NFT_ID_MAX];
		size_t l = strlen(id) + 1;
		ud[0] = UDATA_COMMENT;
		ud[1] = (uint8_t)l;
		memcpy(ud + 2, id, l);
		nl_put(&b->m, NFTA_RULE_USERDATA, ud, 2 + l);
	}
	nl_nest_begin(&b->m, NFTA_RULE_EXPRESSIONS, &b->nest[0]);
	b->open = NFT_OPEN_RULE;
	b->nexprs = 0;
	b->dep_nfproto = b->dep_l4proto = 0;
	return b->rc;
}

int nft_rule_end(struct nft_batch *b)
{
	if (b->rc)
		return b->rc;
	if (b->open != NFT_OPEN_RULE)
		return bfail(b, EINVAL, "nft %s: nft_rule_end without a rule open", b->table);
	nl_nest_end(&b->m, b->nest[0]);
	return msg_end(b);
}

int nft_rule_del(struct nft_batch *b, const char *chain, uint64_t handle)
{
	if (name_ok(b, "chain", chain) < 0)
		return b->rc;
	if (msg_begin(b, NFT_MSG_DELRULE, 0, "rule %s handle %llu: delete", chain,
		      (unsigned long long)handle) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_RULE_TABLE, b->table);
	nl_put_str(&b->m, NFTA_RULE_CHAIN, chain);
	put_be64(b, NFTA_RULE_HANDLE, handle);
	return msg_end(b);
}

/* Open expression `name` in the open rule: NFTA_LIST_ELEM { NAME, DATA { ... } }. */
static int expr_begin(struct nft_batch *b, const char *name, size_t *elem, size_t *data)
{
	if (b->rc)
		return b->rc;
	if (b->open != NFT_OPEN_RULE)
		return bfail(b, EINVAL, "nft %s: expression %s outside a rule", b->table, name);
	nl_nest_begin(&b->m, NFTA_LIST_ELEM, elem);
	nl_put_str(&b->m, NFTA_EXPR_NAME, name);
	nl_nest_begin(&b->m, NFTA_EXPR_DATA, data);
	b->nexprs++;
	return 0;
}

static int expr_end(struct nft_batch *b, size_t elem, size_t data)
{
	nl_nest_end(&b->m, data);
	nl_nest_end(&b->m, elem);
	return b->rc;
}

int nft_expr_meta(struct nft_batch *b, uint32_t key, uint32_t dreg)
{
	size_t el, d;
	if (expr_begin(b, "meta", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_META_KEY, key);
	put_be32(b, NFTA_META_DREG, dreg);
	return expr_end(b, el, d);
}

int nft_expr_payload(struct nft_batch *b, uint32_t base, uint32_t offset, uint32_t len,
		     uint32_t dreg)
{
	size_t el, d;
	if (expr_begin(b, "payload", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_PAYLOAD_DREG, dreg);
	put_be32(b, NFTA_PAYLOAD_BASE, base);
	put_be32(b, NFTA_PAYLOAD_OFFSET, offset);
	put_be32(b, NFTA_PAYLOAD_LEN, len);
	return expr_end(b, el, d);
}

int nft_expr_cmp(struct nft_batch *b, uint32_t sreg, uint32_t op, const void *data,
		 size_t len)
{
	size_t el, d;
	if (expr_begin(b, "cmp", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_CMP_SREG, sreg);
	put_be32(b, NFTA_CMP_OP, op);
	put_value(b, NFTA_CMP_DATA, data, len);
	return expr_end(b, el, d);
}

int nft_expr_range(struct nft_batch *b, uint32_t sreg, bool neg, const void *from,
		   const void *to, size_t len)
{
	size_t el, d;
	if (expr_begin(b, "range", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_RANGE_SREG, sreg);
	put_be32(b, NFTA_RANGE_OP, neg ? NFT_RANGE_NEQ : NFT_RANGE_EQ);
	put_value(b, NFTA_RANGE_FROM_DATA, from, len);
	put_value(b, NFTA_RANGE_TO_DATA, to, len);
	return expr_end(b, el, d);
}

int nft_expr_bitwise(struct nft_batch *b, uint32_t sreg, uint32_t dreg, const void *mask,
		     const void *xor, size_t len)
{
	size_t el, d;
	if (expr_begin(b, "bitwise", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_BITWISE_SREG, sreg);
	put_be32(b, NFTA_BITWISE_DREG, dreg);
	put_be32(b, NFTA_BITWISE_LEN, (uint32_t)len);
	put_value(b, NFTA_BITWISE_MASK, mask, len);
	put_value(b, NFTA_BITWISE_XOR, xor, len);
	return expr_end(b, el, d);
}

int nft_expr_lookup(struct nft_batch *b, const char *set, uint32_t sreg, bool map, bool neg)
{
	size_t el, d;
	if (name_ok(b, "set", set) < 0 || expr_begin(b, "lookup", &el, &d) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_LOOKUP_SET, set);
	put_be32(b, NFTA_LOOKUP_SREG, sreg);
	if (map)
		put_be32(b, NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
	if (neg)
		put_be32(b, NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	return expr_end(b, el, d);
}

int nft_expr_ct(struct nft_batch *b, uint32_t key, uint32_t dreg)
{
	size_t el, d;
	if (expr_begin(b, "ct", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_CT_KEY, key);
	put_be32(b, NFTA_CT_DREG, dreg);
	return expr_end(b, el, d);
}

/* Load one key field into the 32-bit register reg. */
static int field_load(struct nft_batch *b, enum nft_field f, uint32_t reg)
{
	switch (f) {
	case NFT_F_IIFNAME:
		return nft_expr_meta(b, NFT_META_IIFNAME, reg);
	case NFT_F_OIFNAME:
		return nft_expr_meta(b, NFT_META_OIFNAME, reg);
	case NFT_F_SADDR4:
		return nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, reg);
	case NFT_F_DADDR4:
		return nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, reg);
	case NFT_F_SADDR6:
		return nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, reg);
	case NFT_F_DADDR6:
		return nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, reg);
	case NFT_F_L4PROTO:
		return nft_expr_meta(b, NFT_META_L4PROTO, reg);
	case NFT_F_SPORT:
		return nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, reg);
	case NFT_F_DPORT:
		return nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg);
	}
	return bfail(b, EINVAL, "nft %s: key field %d unknown", b->table, (int)f);
}

int nft_update(struct nft_batch *b, const struct nft_set_spec *s)
{
	uint32_t type, len, off = 0;
	size_t el, d;
	if (name_ok(b, "set", s->name) < 0)
		return b->rc;
	if (s->nfields == 0 || !concat_props(s, &type, &len))
		return bfail(b, EINVAL, "nft %s: update @%s: the set needs a key of fields that "
			     "fit %u bytes", b->table, s->name, NFT_KEY_MAX);
	for (uint8_t i = 0; i < s->nfields; i++) {
		if (field_load(b, s->fields[i], NFT_REG32_00 + off / 4) < 0)
			return b->rc;
		off += nft_field_len(s->fields[i]);
	}
	if (expr_begin(b, "dynset", &el, &d) < 0)
		return b->rc;
	nl_put_str(&b->m, NFTA_DYNSET_SET_NAME, s->name);
	put_be32(b, NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	put_be32(b, NFTA_DYNSET_SREG_KEY, NFT_REG32_00);
	if (s->counter)
		put_counter_expr(b, NFTA_DYNSET_EXPR);
	return expr_end(b, el, d);
}

int nft_counter(struct nft_batch *b)
{
	size_t el, d;
	if (expr_begin(b, "counter", &el, &d) < 0)
		return b->rc;
	put_be64(b, NFTA_COUNTER_BYTES, 0);
	put_be64(b, NFTA_COUNTER_PACKETS, 0);
	return expr_end(b, el, d);
}

int nft_log(struct nft_batch *b, const char *prefix, int group)
{
	size_t el, d;
	if (prefix && strlen(prefix) >= 128)
		return bfail(b, EINVAL, "nft %s: log prefix of %zu bytes (at most 127)", b->table,
			     strlen(prefix));
	if (expr_begin(b, "log", &el, &d) < 0)
		return b->rc;
	if (prefix)
		nl_put_str(&b->m, NFTA_LOG_PREFIX, prefix);
	if (group >= 0)
		nl_put_u16(&b->m, NFTA_LOG_GROUP, htons((uint16_t)group));
	return expr_end(b, el, d);
}

int nft_limit(struct nft_batch *b, uint64_t per_second, uint32_t burst)
{
	size_t el, d;
	if (per_second == 0)
		return bfail(b, EINVAL, "nft %s: limit of 0 packets per second", b->table);
	if (expr_begin(b, "limit", &el, &d) < 0)
		return b->rc;
	put_be64(b, NFTA_LIMIT_RATE, per_second);
	put_be64(b, NFTA_LIMIT_UNIT, 1);
	put_be32(b, NFTA_LIMIT_BURST, burst);
	put_be32(b, NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
	put_be32(b, NFTA_LIMIT_FLAGS, 0);
	return expr_end(b, el, d);
}

int nft_verdict(struct nft_batch *b, enum nft_verdict v, const char *chain)
{
	size_t el, d;
	if (expr_begin(b, "immediate", &el, &d) < 0)
		return b->rc;
	put_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	put_verdict(b, NFTA_IMMEDIATE_DATA, v, chain);
	return expr_end(b, el, d);
}

int nft_match_ifname(struct nft_batch *b, enum nft_meta which, const char *name)
{
	size_t l = name ? strlen(name) : 0;
	bool prefix = l > 0 && name[l - 1] == '*';
	if (l == 0 || l >= IFNAMSZ || (prefix && l == 1))
		return bfail(b, EINVAL, "nft %s: interface name \"%s\" does not fit", b->table,
			     name ? name : "");
	nft_expr_meta(b, which == NFT_IIFNAME ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1);
	/* exact: the name and its NUL; prefix: the bytes before the '*' */
	return nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, name, prefix ? l - 1 : l + 1);
}

int nft_match_nfproto(struct nft_batch *b, uint8_t nfproto)
{
	if (b->open == NFT_OPEN_RULE && b->dep_nfproto == nfproto)
		return b->rc;
	if (b->family == NFPROTO_BRIDGE) {
		/* meta nfproto is NFPROTO_BRIDGE there: match the ethertype (meta protocol) */
		uint16_t et = htons(nfproto == NFPROTO_IPV4 ? 0x0800 : 0x86dd);
		nft_expr_meta(b, NFT_META_PROTOCOL, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &et, 2);
		b->dep_nfproto = nfproto;
		return b->rc;
	}
	nft_expr_meta(b, NFT_META_NFPROTO, NFT_REG_1);
	nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &nfproto, 1);
	b->dep_nfproto = nfproto;
	return b->rc;
}

int nft_match_l4proto(struct nft_batch *b, uint8_t proto)
{
	if (b->open == NFT_OPEN_RULE && b->dep_l4proto == proto)
		return b->rc;
	nft_expr_meta(b, NFT_META_L4PROTO, NFT_REG_1);
	nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
	b->dep_l4proto = proto;
	return b->rc;
}

/* ip saddr/daddr or ip6 saddr/daddr into reg1, after the nfproto dependency. */
static int load_addr(struct nft_batch *b, enum nft_dir dir, int family)
{
	if (family != AF_INET && family != AF_INET6)
		return bfail(b, EAFNOSUPPORT, "nft %s: address family %d", b->table, family);
	bool v4 = family == AF_INET;
	nft_match_nfproto(b, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
	uint32_t off = v4 ? (dir == NFT_SRC ? 12 : 16) : (dir == NFT_SRC ? 8 : 24);
	return nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, off, v4 ? 4 : 16, NFT_REG_1);
}

int nft_match_addr(struct nft_batch *b, enum nft_dir dir, const struct ip_addr *a,
		   uint8_t plen, bool neg)
{
	size_t len = ip_len(a);
	if (len == 0 || plen > len * 8)
		return bfail(b, EINVAL, "nft %s: address match: bad address or prefix /%u",
			     b->table, plen);
	if (load_addr(b, dir, a->family) < 0)
		return b->rc;
	uint8_t net[16], mask[16], zero[16] = {0};
	for (size_t i = 0; i < len; i++) {
		unsigned bits = plen > i * 8 ? plen - (unsigned)i * 8 : 0;
		mask[i] = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		net[i] = a->b[i] & mask[i];
	}
	if (plen < len * 8)
		nft_expr_bitwise(b, NFT_REG_1, NFT_REG_1, mask, zero, len);
	return nft_expr_cmp(b, NFT_REG_1, neg ? NFT_CMP_NEQ : NFT_CMP_EQ, net, len);
}

int nft_match_addr_set(struct nft_batch *b, enum nft_dir dir, int family, const char *set,
		       bool neg)
{
	if (load_addr(b, dir, family) < 0)
		return b->rc;
	return nft_expr_lookup(b, set, NFT_REG_1, false, neg);
}

/* th sport/dport into reg1 (the transport header: TCP, UDP and SCTP alike). */
static int load_port(struct nft_batch *b, enum nft_dir dir)
{
	if (b->open == NFT_OPEN_RULE && b->dep_l4proto == 0)
		return bfail(b, EINVAL, "nft %s: port match without a protocol match before it",
			     b->table);
	return nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, dir == NFT_SRC ? 0 : 2, 2,
				NFT_REG_1);
}

int nft_match_port(struct nft_batch *b, enum nft_dir dir, uint16_t lo, uint16_t hi)
{
	if (hi < lo)
		return bfail(b, EINVAL, "nft %s: port range %u-%u ends before it starts", b->table,
			     lo, hi);
	if (load_port(b, dir) < 0)
		return b->rc;
	uint16_t l = htons(lo), h = htons(hi);
	if (lo == hi)
		return nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &l, 2);
	return nft_expr_range(b, NFT_REG_1, false, &l, &h, 2);
}

int nft_match_port_set(struct nft_batch *b, enum nft_dir dir, const char *set)
{
	if (load_port(b, dir) < 0)
		return b->rc;
	return nft_expr_lookup(b, set, NFT_REG_1, false, false);
}

int nft_match_proto_port_set(struct nft_batch *b, enum nft_dir dir, const char *set)
{
	/* the concatenation in 32-bit registers: l4proto in the first, the port next */
	nft_expr_meta(b, NFT_META_L4PROTO, NFT_REG32_00);
	nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, dir == NFT_SRC ? 0 : 2, 2,
			 NFT_REG32_01);
	return nft_expr_lookup(b, set, NFT_REG32_00, false, false);
}

int nft_match_ct_state(struct nft_batch *b, uint32_t bits)
{
	uint32_t zero = 0;
	nft_expr_ct(b, NFT_CT_STATE, NFT_REG_1);
	/* ct state is a host-order u32 in the register */
	nft_expr_bitwise(b, NFT_REG_1, NFT_REG_1, &bits, &zero, 4);
	return nft_expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

int nft_vmap(struct nft_batch *b, enum nft_meta which, const char *map)
{
	nft_expr_meta(b, which == NFT_IIFNAME ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1);
	return nft_expr_lookup(b, map, NFT_REG_1, true, false);
}

/* ---- answers -------------------------------------------------------------------- */

static const struct nl_pol extack_pol[NLMSGERR_ATTR_OFFS + 1] = {
    [NLMSGERR_ATTR_MSG] = {NL_A_STR, 0},
    [NLMSGERR_ATTR_OFFS] = {NL_A_U32, 0},
};

/* The payload of one NLMSG_ERROR for message bm (NULL: BATCH_BEGIN). */
static void ack_one(struct nft_batch *b, struct nft_bmsg *bm, uint16_t flags, struct cur *c,
		    int32_t error)
{
	uint32_t olen = 0;
	uint32_t offs = 0;
	const char *text = NULL;
	struct nl_attr tb[NLMSGERR_ATTR_OFFS + 1];
	if (bm)
		bm->rc = error;
	else
		b->batch_rc = error;
	if (error == 0)
		return;
	/* our header, then our payload unless capped, then the ext-ack TLVs */
	if (!cur_h32(c, &olen) || !cur_skip(c, HDRLEN - 4))
		return;
	if (!(flags & NLM_F_CAPPED) && (olen < HDRLEN || !cur_skip(c, olen - HDRLEN)))
		return;
	cur_align(c, 4);
	if ((flags & NLM_F_ACK_TLVS) &&
	    nl_attr_parse(c->p + c->off, cur_left(c), extack_pol, NLMSGERR_ATTR_OFFS, tb, NULL) ==
		0) {
		text = nl_attr_str(&tb[NLMSGERR_ATTR_MSG]);
		nl_attr_u32(&tb[NLMSGERR_ATTR_OFFS], &offs);
	}
	if (bm)
		bm->bad_off = offs;
	/* answers come in message order: the first refusal's text is the one to keep */
	if (!b->ktext_set) {
		snprintf(b->ktext, sizeof(b->ktext), "%s", text ? text : "");
		b->ktext_set = true;
	}
}

int nft_acks_feed(struct nft_batch *b, uint32_t portid, const void *buf, size_t len,
		  struct err *e)
{
	struct cur c;
	cur_init(&c, buf, len);
	while (cur_left(&c) > 0) {
		uint32_t mlen, seq, pid, u;
		uint16_t type, flags;
		struct cur p;
		size_t at = c.off;
		if (cur_left(&c) < HDRLEN)
			return err_setx(e, EBADMSG,
					"nft %s: answer cut: header at offset %zu has %zu bytes",
					b->table, at, cur_left(&c));
		cur_h32(&c, &mlen);
		cur_h16(&c, &type);
		cur_h16(&c, &flags);
		cur_h32(&c, &seq);
		cur_h32(&c, &pid);
		if (mlen < HDRLEN || !cur_sub(&c, mlen - HDRLEN, &p))
			return err_setx(e, EBADMSG,
					"nft %s: answer cut: message at offset %zu says %u bytes, "
					"%zu present",
					b->table, at, mlen, len - at);
		cur_align(&c, 4);
		if (pid != portid)
			return err_setx(e, ESRCH, "nft %s: answer for port id %u, ours is %u",
					b->table, pid, portid);
		if (type != NLMSG_ERROR)
			continue; /* nothing else is expected; a notification is skipped */
		if (!cur_h32(&p, &u))
			return err_setx(e, EBADMSG, "nft %s: answer without an error code",
					b->table);
		int32_t error = (int32_t)u;
		if (error > 0 || error < -4095)
			return err_setx(e, EBADMSG, "nft %s: answer with impossible code %d",
					b->table, error);
		uint32_t idx = seq - b->seq_begin;
		if (idx == 0) {
			ack_one(b, NULL, flags, &p, error);
			continue;
		}
		if (idx > b->nmsgs + 1)
			return err_setx(e, EPROTO,
					"nft %s: answer with sequence number %u, not of this batch",
					b->table, seq);
		if (idx == b->nmsgs + 1)
			continue; /* BATCH_END: acked by kernels that ack it */
		ack_one(b, &b->msgs[idx - 1], flags, &p, error);
	}
	return 0;
}

/* "expression 3 (lookup)" / "element 17" / "attribute 4" for offset off of message i. */
static void blame(const struct nft_batch *b, size_t i, char *out, size_t cap)
{
	const struct nft_bmsg *bm = &b->msgs[i];
	const uint8_t *msg = b->buf + bm->off;
	uint32_t mlen;
	struct cur c;
	*out = 0;
	if (!bm->bad_off)
		return;
	memcpy(&mlen, msg, 4);
	if (bm->bad_off < HDRLEN + GENLEN || bm->bad_off >= mlen)
		return;
	cur_init(&c, msg + HDRLEN + GENLEN, mlen - HDRLEN - GENLEN);
	size_t want = bm->bad_off - HDRLEN - GENLEN;
	while (cur_left(&c) >= 4) {
		uint16_t alen, atype;
		size_t start = c.off;
		cur_h16(&c, &alen);
		cur_h16(&c, &atype);
		atype &= NLA_TYPE_MASK;
		if (alen < 4 || !cur_skip(&c, alen - 4u))
			return;
		cur_align(&c, 4);
		if (want >= c.off)
			continue;
		uint16_t mtype;
		memcpy(&mtype, msg + 4, 2);
		mtype &= 0xff;
		bool rule = mtype == NFT_MSG_NEWRULE && atype == NFTA_RULE_EXPRESSIONS;
		bool elems = (mtype == NFT_MSG_NEWSETELEM || mtype == NFT_MSG_DELSETELEM) &&
			     atype == NFTA_SET_ELEM_LIST_ELEMENTS;
		if ((!rule && !elems) || want < start + 4) {
			const uint8_t *v = msg + HDRLEN + GENLEN + start + 4;
			size_t vl = alen - 4u;
			bool str = vl > 1 && vl < 64 && v[vl - 1] == 0 && memchr(v, 0, vl) == v + vl - 1;
			if (str)
				snprintf(out, cap, "attribute %u (\"%s\"): ", atype, (const char *)v);
			else
				snprintf(out, cap, "attribute %u: ", atype);
			return;
		}
		/* walk the list to the element that holds the offset */
		struct cur l;
		cur_init(&l, msg + HDRLEN + GENLEN + start + 4, alen - 4u);
		unsigned k = 0;
		while (cur_left(&l) >= 4) {
			uint16_t elen, et;
			size_t es = l.off;
			cur_h16(&l, &elen);
			cur_h16(&l, &et);
			if (elen < 4 || !cur_skip(&l, elen - 4u))
				return;
			cur_align(&l, 4);
			k++;
			if (want < start + 4 + l.off) {
				if (elems) {
					snprintf(out, cap, "element #%u of the message: ", k);
					return;
				}
				/* the expression's name is its first attribute */
				const uint8_t *ex = msg + HDRLEN + GENLEN + start + 4 + es + 4;
				uint16_t nlen, nt;
				memcpy(&nlen, ex, 2);
				memcpy(&nt, ex + 2, 2);
				if (elen >= 8 && nt == NFTA_EXPR_NAME && nlen > 4 && nlen <= elen - 4 &&
				    memchr(ex + 4, 0, nlen - 4u))
					snprintf(out, cap, "expression %u (%s): ", k,
						 (const char *)(ex + 4));
				else
					snprintf(out, cap, "expression %u: ", k);
				return;
			}
		}
		return;
	}
}

int nft_acks_result(struct nft_batch *b, struct err *e)
{
	size_t unanswered = 0, refused = 0, first = b->nmsgs;
	b->failed = b->nmsgs;
	if (b->batch_rc < 0) {
		int code = -b->batch_rc;
		if (code == ERESTART)
			return err_setx(e, ERESTART,
					"nft %s: batch refused: the ruleset changed since it was "
					"read (generation mismatch); read it again",
					b->table);
		return err_setx(e, code, "nft %s: batch refused: %s", b->table,
				b->ktext[0] ? b->ktext : strerror(code));
	}
	for (size_t i = 0; i < b->nmsgs; i++) {
		if (b->msgs[i].rc == 1)
			unanswered++;
		else if (b->msgs[i].rc < 0 && refused++ == 0)
			first = i;
	}
	if (refused) {
		char where[96];
		int code = -b->msgs[first].rc;
		b->failed = first;
		blame(b, first, where, sizeof(where));
		char more[96] = "";
		if (refused > 1)
			snprintf(more, sizeof(more),
				 " (%zu of %zu messages refused, nothing applied)", refused,
				 b->nmsgs);
		err_setx(e, code, "nft %s: %s: %s%s%s", b->table, b->msgs[first].what, where,
			 b->ktext[0] ? b->ktext : strerror(code), more);
		return -code;
	}
	if (unanswered)
		return err_setx(e, EPROTO,
				"nft %s: the kernel answered %zu of %zu messages; whether the "
				"batch was applied is unknown",
				b->table, b->nmsgs - unanswered, b->nmsgs);
	return 0;
}

/* ---- commit --------------------------------------------------------------------- */

/* Make the socket's buffer `opt` (SO_SNDBUF / SO_RCVBUF) hold at least want bytes. */
static int sock_buf(int fd, int opt, int force, size_t want, struct err *e)
{
	int cur = 0;
	socklen_t sl = sizeof(cur);
	if (want > (size_t)(1u << 30))
		return err_setx(e, EMSGSIZE, "nft: batch of %zu bytes is too large", want);
	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &sl) == 0 && (size_t)cur >= want)
		return 0;
	int v = (int)want; /* the kernel doubles what it is given */
	if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)) == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return err_set(e, errno, "nft: socket buffer of %zu bytes", want);
	sl = sizeof(cur);
	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &sl) == 0 && (size_t)cur < want)
		return err_setx(e, EMSGSIZE,
				"nft: socket buffer of %zu bytes needed, the system allows %d "
				"(net.core.wmem_max / rmem_max)",
				want, cur);
	return 0;
}

/* A batch delimiter (BEGIN with the generation, END) in buf; returns its length. */
static size_t delim(uint8_t *buf, size_t cap, uint16_t type, uint32_t seq, uint32_t genid)
{
	struct nl_msg m;
	struct nfgenmsg g = {.nfgen_family = AF_UNSPEC,
			     .version = NFNETLINK_V0,
			     .res_id = htons(NFNL_SUBSYS_NFTABLES)};
	nl_msg_init(&m, buf, cap, type, 0);
	nl_put_fam(&m, &g, sizeof(g));
	if (genid)
		nl_put_u32(&m, NFNL_BATCH_GENID, htonl(genid));
	memcpy(buf + 8, &seq, 4);
	return nl_msg_len(&m);
}

int nft_commit(struct nl_sock *s, struct nft_batch *b, uint32_t genid, struct err *e)
{
	uint8_t begin[32], end[32];
	int fd = nl_fd(s);
	int rc;
	if (b->open == NFT_OPEN_ELEMS)
		elems_close(b);
	else if (b->open == NFT_OPEN_RULE)
		bfail(b, EINVAL, "nft %s: a rule is still open (nft_rule_end missing)", b->table);
	if (b->rc)
		return err_setx(e, -b->rc, "%s", b->emsg);
	if (b->nmsgs == 0)
		return 0;

	/* sequence numbers: BEGIN, each message, END */
	uint32_t base = (uint32_t)time(NULL);
	b->seq_begin = base;
	b->batch_rc = 0;
	b->ktext[0] = 0;
	b->ktext_set = false;
	for (size_t i = 0; i < b->nmsgs; i++) {
		uint32_t seq = base + 1 + (uint32_t)i;
		b->msgs[i].seq = seq;
		b->msgs[i].rc = 1;
		b->msgs[i].bad_off = 0;
		memcpy(b->buf + b->msgs[i].off + 8, &seq, 4);
	}
	size_t blen = delim(begin, sizeof(begin), NFNL_MSG_BATCH_BEGIN, base, genid);
	size_t elen =
	    delim(end, sizeof(end), NFNL_MSG_BATCH_END, base + 1 + (uint32_t)b->nmsgs, 0);
	size_t total = blen + b->len + elen;

	/* the whole batch in one datagram; room for one answer per message */
	rc = sock_buf(fd, SO_SNDBUF, SO_SNDBUFFORCE, total + 4096, e);
	if (rc == 0)
		rc = sock_buf(fd, SO_RCVBUF, SO_RCVBUFFORCE, 65536 + b->nmsgs * 1024, e);
	if (rc < 0)
		return err_prefix(e, "nft %s: commit", b->table), rc;

	uint8_t *rbuf = malloc(NL_RECV_BUF);
	if (!rbuf)
		return err_set(e, ENOMEM, "nft %s: commit", b->table);
	/* stale answers of an earlier exchange must not be read as ours */
	while (recv(fd, rbuf, NL_RECV_BUF, MSG_DONTWAIT) > 0 || errno == EINTR)
		;

	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct iovec iov[3] = {
	    {.iov_base = begin, .iov_len = blen},
	    {.iov_base = b->buf, .iov_len = b->len},
	    {.iov_base = end, .iov_len = elen},
	};
	struct msghdr mh = {
	    .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = iov, .msg_iovlen = 3};
	ssize_t n;
	do
		n = sendmsg(fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = err_set(e, errno, "nft %s: send batch of %zu messages, %zu bytes", b->table,
			     b->nmsgs, total);
		goto free_rbuf;
	}

	/* The kernel ran the batch inside sendmsg(): every answer is queued. Read until the
	 * queue is empty; wait (bounded) only if answers are still missing. */
	size_t answered = 0;
	int waits = 0;
	for (;;) {
		struct sockaddr_nl from;
		struct iovec riov = {.iov_base = rbuf, .iov_len = NL_RECV_BUF};
		struct msghdr rh = {
		    .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &riov, .msg_iovlen = 1};
		n = recvmsg(fd, &rh, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			answered = 0;
			for (size_t i = 0; i < b->nmsgs; i++)
				answered += b->msgs[i].rc != 1;
			if (answered == b->nmsgs || b->batch_rc || waits++ >= 1)
				break;
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			if (poll(&pf, 1, 1000) <= 0)
				break;
			continue;
		}
		if (n < 0) {
			rc = errno == ENOBUFS
				 ? err_setx(e, ENOBUFS,
					    "nft %s: answers to the batch were lost (receive "
					    "buffer overrun); whether it was applied is unknown",
					    b->table)
				 : err_set(e, errno, "nft %s: receive answers", b->table);
			goto free_rbuf;
		}
		if (rh.msg_flags & MSG_TRUNC) {
			rc = err_setx(e, EMSGSIZE, "nft %s: answer larger than %d bytes", b->table,
				      NL_RECV_BUF);
			goto free_rbuf;
		}
		if (from.nl_pid != 0)
			continue;
		rc = nft_acks_feed(b, nl_portid(s), rbuf, (size_t)n, e);
		if (rc < 0)
			goto free_rbuf;
	}
	rc = nft_acks_result(b, e);
free_rbuf:
	free(rbuf);
	return rc;
}

/* ---- generation ----------------------------------------------------------------- */

static const struct nl_pol gen_pol[NFTA_GEN_MAX + 1] = {
    [NFTA_GEN_ID] = {NL_A_U32, 0},
};

static int gen_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct nl_attr tb[NFTA_GEN_MAX + 1];
	uint32_t v;
	int rc = nl_msg_parse(m, NULL, GENLEN, gen_pol, NFTA_GEN_MAX, tb, e);
	if (rc < 0)
		return rc;
	if (!nl_attr_u32(&tb[NFTA_GEN_ID], &v))
		return err_setx(e, EBADMSG, "nft: generation answer without an id");
	*(uint32_t *)arg = ntohl(v);
	return 0;
}

int nft_genid(struct nl_sock *s, uint32_t *genid, struct err *e)
{
	uint8_t buf[64];
	struct nl_msg m;
	struct nfgenmsg g = {.nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0};
	*genid = 0;
	nl_msg_init(&m, buf, sizeof(buf), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, 0);
	nl_put_fam(&m, &g, sizeof(g));
	int rc = nl_request(s, &m, gen_cb, genid, e);
	if (rc < 0)
		err_prefix(e, "nft: ruleset generation");
	return rc;
}

/* ---- reading -------------------------------------------------------------------- */

int nft_state_init(struct nft_state *st, const char *table)
{
	memset(st, 0, sizeof(*st));
	if (!table || !*table || strlen(table) >= NFT_NAME_MAX)
		return -EINVAL;
	snprintf(st->table, sizeof(st->table), "%s", table);
	return 0;
}

int nft_state_family(struct nft_state *st, uint8_t family)
{
	if (family != NFPROTO_INET && family != NFPROTO_BRIDGE && family != NFPROTO_NETDEV)
		return -EAFNOSUPPORT;
	st->family = family;
	return 0;
}

static void state_clear(struct nft_state *st)
{
	for (size_t i = 0; i < st->nsets; i++)
		free(st->sets[i].elems);
	free(st->chains);
	free(st->sets);
	free(st->rules);
	st->chains = NULL;
	st->sets = NULL;
	st->rules = NULL;
	st->nchains = st->nsets = st->nrules = 0;
	st->chcap = st->setcap = st->rulecap = 0;
	st->exists = false;
	st->handle = 0;
}

void nft_state_free(struct nft_state *st)
{
	state_clear(st);
}

/* Make room for one more entry of size sz in *arr (count n, capacity *cap). */
static void *grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	if (n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *p = realloc(*arr, nc * sz);
		if (!p)
			return NULL;
		*arr = p;
		*cap = nc;
	}
	return (uint8_t *)*arr + n * sz;
}

static bool attr_be32(const struct nl_attr *a, uint32_t *v)
{
	uint32_t x;
	bool ok = nl_attr_u32(a, &x);
	*v = ok ? ntohl(x) : 0;
	return ok;
}

static bool attr_be64(const struct nl_attr *a, uint64_t *v)
{
	uint64_t x;
	bool ok = nl_attr_u64(a, &x);
	*v = ok ? be64(x) : 0;
	return ok;
}

/* Copy a string attribute into out (cap bytes); false when absent or too long. */
static bool attr_name(const struct nl_attr *a, char *out, size_t cap)
{
	const char *s = nl_attr_str(a);
	if (!s || strlen(s) >= cap)
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

static const struct nl_pol chain_pol[NFTA_CHAIN_MAX + 1] = {
    [NFTA_CHAIN_TABLE] = {NL_A_STR, 0}, [NFTA_CHAIN_HANDLE] = {NL_A_U64, 0},
    [NFTA_CHAIN_NAME] = {NL_A_STR, 0},	[NFTA_CHAIN_HOOK] = {NL_A_NESTED, 0},
    [NFTA_CHAIN_POLICY] = {NL_A_U32, 0}, [NFTA_CHAIN_USE] = {NL_A_U32, 0},
    [NFTA_CHAIN_TYPE] = {NL_A_STR, 0},
};
static const struct nl_pol hook_pol[NFTA_HOOK_MAX + 1] = {
    [NFTA_HOOK_HOOKNUM] = {NL_A_U32, 0},
    [NFTA_HOOK_PRIORITY] = {NL_A_U32, 0},
};

static enum nft_hook hook_of(uint32_t h)
{
	switch (h) {
	case NF_INET_PRE_ROUTING:
		return NFT_HOOK_PREROUTING;
	case NF_INET_LOCAL_IN:
		return NFT_HOOK_INPUT;
	case NF_INET_FORWARD:
		return NFT_HOOK_FORWARD;
	case NF_INET_LOCAL_OUT:
		return NFT_HOOK_OUTPUT;
	case NF_INET_POST_ROUTING:
		return NFT_HOOK_POSTROUTING;
	}
	return NFT_HOOK_NONE;
}

static int feed_chain(struct nft_state *st, const struct nl_attr *tb, struct err *e)
{
	struct nft_chain_info *c =
	    grow((void **)&st->chains, st->nchains, &st->chcap, sizeof(*st->chains));
	if (!c)
		return err_set(e, ENOMEM, "nft %s: chains", st->table);
	memset(c, 0, sizeof(*c));
	if (!attr_name(&tb[NFTA_CHAIN_NAME], c->name, sizeof(c->name)))
		return err_setx(e, EBADMSG, "nft %s: chain without a name", st->table);
	attr_be64(&tb[NFTA_CHAIN_HANDLE], &c->handle);
	attr_be32(&tb[NFTA_CHAIN_USE], &c->use);
	if (nl_attr_has(&tb[NFTA_CHAIN_HOOK])) {
		struct nl_attr hb[NFTA_HOOK_MAX + 1];
		uint32_t num, prio, pol;
		int rc = nl_attr_parse(tb[NFTA_CHAIN_HOOK].p, tb[NFTA_CHAIN_HOOK].len, hook_pol,
				       NFTA_HOOK_MAX, hb, e);
		if (rc < 0)
			return err_prefix(e, "nft %s: chain %s: hook", st->table, c->name), rc;
		c->base = attr_be32(&hb[NFTA_HOOK_HOOKNUM], &num);
		c->hook = c->base ? hook_of(num) : NFT_HOOK_NONE;
		attr_be32(&hb[NFTA_HOOK_PRIORITY], &prio);
		c->priority = (int32_t)prio;
		if (attr_be32(&tb[NFTA_CHAIN_POLICY], &pol))
			c->drop = pol == NF_DROP;
		attr_name(&tb[NFTA_CHAIN_TYPE], c->type, sizeof(c->type));
	}
	st->nchains++;
	return 0;
}

static const struct nl_pol set_pol[NFTA_SET_MAX + 1] = {
    [NFTA_SET_TABLE] = {NL_A_STR, 0},	   [NFTA_SET_NAME] = {NL_A_STR, 0},
    [NFTA_SET_FLAGS] = {NL_A_U32, 0},	   [NFTA_SET_KEY_TYPE] = {NL_A_U32, 0},
    [NFTA_SET_KEY_LEN] = {NL_A_U32, 0},	   [NFTA_SET_DATA_TYPE] = {NL_A_U32, 0},
    [NFTA_SET_DATA_LEN] = {NL_A_U32, 0},   [NFTA_SET_HANDLE] = {NL_A_U64, 0},
    [NFTA_SET_TIMEOUT] = {NL_A_U64, 0},	   [NFTA_SET_DESC] = {NL_A_NESTED, 0},
    [NFTA_SET_EXPR] = {NL_A_NESTED, 0},	   [NFTA_SET_EXPRESSIONS] = {NL_A_NESTED, 0},
};
static const struct nl_pol desc_pol[NFTA_SET_DESC_MAX + 1] = {
    [NFTA_SET_DESC_SIZE] = {NL_A_U32, 0},
    [NFTA_SET_DESC_CONCAT] = {NL_A_NESTED, 0},
};
static const struct nl_pol expr_pol[NFTA_EXPR_MAX + 1] = {
    [NFTA_EXPR_NAME] = {NL_A_STR, 0},
    [NFTA_EXPR_DATA] = {NL_A_NESTED, 0},
};
static const struct nl_pol counter_pol[NFTA_COUNTER_MAX + 1] = {
    [NFTA_COUNTER_BYTES] = {NL_A_U64, 0},
    [NFTA_COUNTER_PACKETS] = {NL_A_U64, 0},
};

/* What one expression (NFTA_EXPR_NAME, NFTA_EXPR_DATA) in p is: its name into name
 * (cap bytes, "" when too long), and for a counter its values (added to *packets and
 * *bytes, *counter set). 0 or -EBADMSG for a malformed one. */
struct expr_seen {
	char name[16];	 /* the expression's name, "" when longer */
	bool counter;	 /* a counter with values */
	uint64_t packets; /* its packets */
	uint64_t bytes;	  /* its bytes */
};
static int expr_parse(const uint8_t *p, size_t len, struct expr_seen *x, struct err *e)
{
	struct nl_attr tb[NFTA_EXPR_MAX + 1];
	memset(x, 0, sizeof(*x));
	int rc = nl_attr_parse(p, len, expr_pol, NFTA_EXPR_MAX, tb, e);
	if (rc < 0)
		return rc;
	const char *name = nl_attr_str(&tb[NFTA_EXPR_NAME]);
	if (!name)
		return err_setx(e, EBADMSG, "expression without a name");
	attr_name(&tb[NFTA_EXPR_NAME], x->name, sizeof(x->name));
	if (strcmp(name, "counter") != 0 || !nl_attr_has(&tb[NFTA_EXPR_DATA]))
		return 0;
	struct nl_attr cb[NFTA_COUNTER_MAX + 1];
	rc = nl_attr_parse(tb[NFTA_EXPR_DATA].p, tb[NFTA_EXPR_DATA].len, counter_pol,
			   NFTA_COUNTER_MAX, cb, e);
	if (rc < 0)
		return rc;
	x->counter = true;
	attr_be64(&cb[NFTA_COUNTER_PACKETS], &x->packets);
	attr_be64(&cb[NFTA_COUNTER_BYTES], &x->bytes);
	return 0;
}

static int feed_set(struct nft_state *st, const struct nl_attr *tb, struct err *e)
{
	struct nft_set_info *s = grow((void **)&st->sets, st->nsets, &st->setcap, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "nft %s: sets", st->table);
	memset(s, 0, sizeof(*s));
	if (!attr_name(&tb[NFTA_SET_NAME], s->name, sizeof(s->name)))
		return err_setx(e, EBADMSG, "nft %s: set without a name", st->table);
	attr_be64(&tb[NFTA_SET_HANDLE], &s->handle);
	attr_be32(&tb[NFTA_SET_FLAGS], &s->flags);
	attr_be32(&tb[NFTA_SET_KEY_TYPE], &s->key_type);
	attr_be32(&tb[NFTA_SET_KEY_LEN], &s->key_len);
	attr_be32(&tb[NFTA_SET_DATA_TYPE], &s->data_type);
	attr_be64(&tb[NFTA_SET_TIMEOUT], &s->timeout_ms);
	if (nl_attr_has(&tb[NFTA_SET_DESC])) {
		struct nl_attr db[NFTA_SET_DESC_MAX + 1];
		int rc = nl_attr_parse(tb[NFTA_SET_DESC].p, tb[NFTA_SET_DESC].len, desc_pol,
				       NFTA_SET_DESC_MAX, db, e);
		if (rc < 0)
			return err_prefix(e, "nft %s: set %s", st->table, s->name), rc;
		attr_be32(&db[NFTA_SET_DESC_SIZE], &s->size);
	}
	if (nl_attr_has(&tb[NFTA_SET_EXPR])) {
		struct expr_seen x;
		int rc = expr_parse(tb[NFTA_SET_EXPR].p, tb[NFTA_SET_EXPR].len, &x, e);
		if (rc < 0)
			return err_prefix(e, "nft %s: set %s", st->table, s->name), rc;
		memcpy(s->expr, x.name, sizeof(s->expr));
	}
	st->nsets++;
	return 0;
}

static const struct nl_pol elist_pol[NFTA_SET_ELEM_LIST_MAX + 1] = {
    [NFTA_SET_ELEM_LIST_TABLE] = {NL_A_STR, 0},
    [NFTA_SET_ELEM_LIST_SET] = {NL_A_STR, 0},
    [NFTA_SET_ELEM_LIST_ELEMENTS] = {NL_A_NESTED, 0},
};
static const struct nl_pol elem_pol[NFTA_SET_ELEM_MAX + 1] = {
    [NFTA_SET_ELEM_KEY] = {NL_A_NESTED, 0},
    [NFTA_SET_ELEM_KEY_END] = {NL_A_NESTED, 0},
    [NFTA_SET_ELEM_DATA] = {NL_A_NESTED, 0},
    [NFTA_SET_ELEM_FLAGS] = {NL_A_U32, 0},
    [NFTA_SET_ELEM_TIMEOUT] = {NL_A_U64, 0},
    [NFTA_SET_ELEM_EXPIRATION] = {NL_A_U64, 0},
    [NFTA_SET_ELEM_EXPR] = {NL_A_NESTED, 0},
    [NFTA_SET_ELEM_EXPRESSIONS] = {NL_A_NESTED, 0},
};
static const struct nl_pol data_pol[NFTA_DATA_MAX + 1] = {
    [NFTA_DATA_VALUE] = {NL_A_UNSPEC, 1},
    [NFTA_DATA_VERDICT] = {NL_A_NESTED, 0},
};
static const struct nl_pol verdict_pol[NFTA_VERDICT_MAX + 1] = {
    [NFTA_VERDICT_CODE] = {NL_A_U32, 0},
    [NFTA_VERDICT_CHAIN] = {NL_A_STR, 0},
};

/* A list of nested attributes (NFTA_LIST_ELEM each) in a; fn per element. */
static int each_elem(const struct nl_attr *a, int (*fn)(void *arg, const uint8_t *p, size_t len,
							 struct err *e),
		     void *arg, struct err *e)
{
	struct cur c;
	cur_init(&c, a->p, a->len);
	while (cur_left(&c) > 0) {
		uint16_t len, type;
		const uint8_t *p;
		if (!cur_h16(&c, &len) || !cur_h16(&c, &type) || len < 4 ||
		    !cur_ptr(&c, len - 4u, &p))
			return err_setx(e, EBADMSG, "list element cut");
		cur_align(&c, 4);
		if ((type & NLA_TYPE_MASK) != NFTA_LIST_ELEM)
			continue;
		int rc = fn(arg, p, len - 4u, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One expression of an element's NFTA_SET_ELEM_EXPRESSIONS list: its counter. */
static int elem_expr_fn(void *arg, const uint8_t *p, size_t len, struct err *e)
{
	struct nft_elem_info *el = arg;
	struct expr_seen x;
	int rc = expr_parse(p, len, &x, e);
	if (rc == 0 && x.counter) {
		el->has_counter = true;
		el->packets += x.packets;
		el->bytes += x.bytes;
	}
	return rc;
}

static int elem_fn(void *arg, const uint8_t *p, size_t len, struct err *e)
{
	struct nft_set_info *s = arg;
	struct nl_attr tb[NFTA_SET_ELEM_MAX + 1], kb[NFTA_DATA_MAX + 1];
	uint32_t flags;
	int rc = nl_attr_parse(p, len, elem_pol, NFTA_SET_ELEM_MAX, tb, e);
	if (rc < 0)
		return rc;
	if (!nl_attr_has(&tb[NFTA_SET_ELEM_KEY]))
		return 0; /* a catch-all element has no key */
	rc = nl_attr_parse(tb[NFTA_SET_ELEM_KEY].p, tb[NFTA_SET_ELEM_KEY].len, data_pol,
			   NFTA_DATA_MAX, kb, e);
	if (rc < 0)
		return rc;
	const struct nl_attr *k = &kb[NFTA_DATA_VALUE];
	if (!nl_attr_has(k) || k->len > NFT_KEY_MAX)
		return err_setx(e, EBADMSG, "element key absent or of %u bytes", k->len);
	struct nft_elem_info *el = grow((void **)&s->elems, s->nelems, &s->elcap, sizeof(*el));
	if (!el)
		return err_set(e, ENOMEM, "elements");
	memset(el, 0, sizeof(*el));
	memcpy(el->key, k->p, k->len);
	el->len = (uint8_t)k->len;
	if (attr_be32(&tb[NFTA_SET_ELEM_FLAGS], &flags))
		el->end = flags & NFT_SET_ELEM_INTERVAL_END;
	if (nl_attr_has(&tb[NFTA_SET_ELEM_KEY_END])) {
		rc = nl_attr_parse(tb[NFTA_SET_ELEM_KEY_END].p, tb[NFTA_SET_ELEM_KEY_END].len,
				   data_pol, NFTA_DATA_MAX, kb, e);
		if (rc < 0)
			return rc;
		k = &kb[NFTA_DATA_VALUE];
		if (!nl_attr_has(k) || k->len != el->len)
			return err_setx(e, EBADMSG, "element key end absent or of %u bytes", k->len);
		memcpy(el->key_end, k->p, k->len);
		el->has_key_end = true;
	}
	attr_be64(&tb[NFTA_SET_ELEM_EXPIRATION], &el->expires_ms);
	if (nl_attr_has(&tb[NFTA_SET_ELEM_EXPR])) {
		rc = elem_expr_fn(el, tb[NFTA_SET_ELEM_EXPR].p, tb[NFTA_SET_ELEM_EXPR].len, e);
		if (rc < 0)
			return rc;
	}
	if (nl_attr_has(&tb[NFTA_SET_ELEM_EXPRESSIONS])) {
		rc = each_elem(&tb[NFTA_SET_ELEM_EXPRESSIONS], elem_expr_fn, el, e);
		if (rc < 0)
			return rc;
	}
	if (nl_attr_has(&tb[NFTA_SET_ELEM_DATA])) {
		struct nl_attr db[NFTA_DATA_MAX + 1], vb[NFTA_VERDICT_MAX + 1];
		uint32_t code;
		rc = nl_attr_parse(tb[NFTA_SET_ELEM_DATA].p, tb[NFTA_SET_ELEM_DATA].len, data_pol,
				   NFTA_DATA_MAX, db, e);
		if (rc == 0 && nl_attr_has(&db[NFTA_DATA_VERDICT]))
			rc = nl_attr_parse(db[NFTA_DATA_VERDICT].p, db[NFTA_DATA_VERDICT].len,
					   verdict_pol, NFTA_VERDICT_MAX, vb, e);
		else
			memset(vb, 0, sizeof(vb));
		if (rc < 0)
			return rc;
		if (attr_be32(&vb[NFTA_VERDICT_CODE], &code)) {
			el->has_verdict = true;
			el->verdict = (int32_t)code;
			if (nl_attr_has(&vb[NFTA_VERDICT_CHAIN]) &&
			    !attr_name(&vb[NFTA_VERDICT_CHAIN], el->chain, sizeof(el->chain)))
				return err_setx(e, EBADMSG, "element verdict chain name too long");
		}
	}
	s->nelems++;
	return 0;
}

static const struct nl_pol rule_pol[NFTA_RULE_MAX + 1] = {
    [NFTA_RULE_TABLE] = {NL_A_STR, 0},	      [NFTA_RULE_CHAIN] = {NL_A_STR, 0},
    [NFTA_RULE_HANDLE] = {NL_A_U64, 0},	      [NFTA_RULE_EXPRESSIONS] = {NL_A_NESTED, 0},
    [NFTA_RULE_USERDATA] = {NL_A_UNSPEC, 0},
};
static int expr_fn(void *arg, const uint8_t *p, size_t len, struct err *e)
{
	struct nft_rule_info *r = arg;
	struct expr_seen x;
	int rc = expr_parse(p, len, &x, e);
	if (rc < 0)
		return rc;
	size_t l = strlen(r->exprs);
	if (l + strlen(x.name) + 2 < sizeof(r->exprs))
		snprintf(r->exprs + l, sizeof(r->exprs) - l, "%s%s", l ? "," : "", x.name);
	r->nexprs++;
	if (x.counter) {
		r->has_counter = true;
		r->packets += x.packets;
		r->bytes += x.bytes;
	}
	return 0;
}

/* The comment TLV of libnftnl-style user data, if any, into id. */
static void udata_id(const struct nl_attr *a, char *id, size_t cap)
{
	struct cur c;
	cur_init(&c, a->p, a->len);
	*id = 0;
	while (cur_left(&c) >= 2) {
		uint8_t type, len;
		const uint8_t *v;
		cur_u8(&c, &type);
		cur_u8(&c, &len);
		if (!cur_ptr(&c, len, &v))
			return;
		if (type == UDATA_COMMENT && len > 0 && len <= cap && v[len - 1] == 0 &&
		    memchr(v, 0, len) == v + len - 1) {
			memcpy(id, v, len);
			return;
		}
	}
}

static int feed_rule(struct nft_state *st, const struct nl_attr *tb, struct err *e)
{
	struct nft_rule_info *r = grow((void **)&st->rules, st->nrules, &st->rulecap, sizeof(*r));
	if (!r)
		return err_set(e, ENOMEM, "nft %s: rules", st->table);
	memset(r, 0, sizeof(*r));
	if (!attr_name(&tb[NFTA_RULE_CHAIN], r->chain, sizeof(r->chain)))
		return err_setx(e, EBADMSG, "nft %s: rule without a chain", st->table);
	attr_be64(&tb[NFTA_RULE_HANDLE], &r->handle);
	if (nl_attr_has(&tb[NFTA_RULE_USERDATA]))
		udata_id(&tb[NFTA_RULE_USERDATA], r->id, sizeof(r->id));
	if (nl_attr_has(&tb[NFTA_RULE_EXPRESSIONS])) {
		int rc = each_elem(&tb[NFTA_RULE_EXPRESSIONS], expr_fn, r, e);
		if (rc < 0)
			return err_prefix(e, "nft %s: rule %s handle %llu", st->table, r->chain,
					  (unsigned long long)r->handle),
			       rc;
	}
	st->nrules++;
	return 0;
}

_Static_assert(NFTA_SET_MAX < 32 && NFTA_CHAIN_MAX < 32 && NFTA_RULE_MAX < 32 &&
		   NFTA_TABLE_MAX < 32 && NFTA_SET_ELEM_LIST_MAX < 32,
	       "attribute table of nft_state_feed");

static const struct nl_pol table_pol[NFTA_TABLE_MAX + 1] = {
    [NFTA_TABLE_NAME] = {NL_A_STR, 0},
    [NFTA_TABLE_HANDLE] = {NL_A_U64, 0},
};

int nft_state_feed(struct nft_state *st, const struct nl_msgv *m, struct err *e)
{
	struct nfgenmsg g;
	struct nl_attr tb[32];
	int rc;
	if (m->type >> 8 != NFNL_SUBSYS_NFTABLES)
		return 0;
	if (m->len < GENLEN)
		return err_setx(e, EBADMSG, "nft: message type %u of %zu bytes", m->type, m->len);
	memcpy(&g, m->data, sizeof(g));
	if (g.nfgen_family != (st->family ? st->family : NFPROTO_INET))
		return 0;
	switch (m->type & 0xff) {
	case NFT_MSG_NEWTABLE:
		rc = nl_msg_parse(m, NULL, GENLEN, table_pol, NFTA_TABLE_MAX, tb, e);
		if (rc < 0)
			return rc;
		if (!nl_attr_str(&tb[NFTA_TABLE_NAME]) ||
		    strcmp(nl_attr_str(&tb[NFTA_TABLE_NAME]), st->table) != 0)
			return 0;
		st->exists = true;
		attr_be64(&tb[NFTA_TABLE_HANDLE], &st->handle);
		return 0;
	case NFT_MSG_NEWCHAIN:
		rc = nl_msg_parse(m, NULL, GENLEN, chain_pol, NFTA_CHAIN_MAX, tb, e);
		if (rc < 0 || !nl_attr_str(&tb[NFTA_CHAIN_TABLE]) ||
		    strcmp(nl_attr_str(&tb[NFTA_CHAIN_TABLE]), st->table) != 0)
			return rc;
		return feed_chain(st, tb, e);
	case NFT_MSG_NEWSET:
		rc = nl_msg_parse(m, NULL, GENLEN, set_pol, NFTA_SET_MAX, tb, e);
		if (rc < 0 || !nl_attr_str(&tb[NFTA_SET_TABLE]) ||
		    strcmp(nl_attr_str(&tb[NFTA_SET_TABLE]), st->table) != 0)
			return rc;
		return feed_set(st, tb, e);
	case NFT_MSG_NEWSETELEM: {
		rc = nl_msg_parse(m, NULL, GENLEN, elist_pol, NFTA_SET_ELEM_LIST_MAX, tb, e);
		const char *t = nl_attr_str(&tb[NFTA_SET_ELEM_LIST_TABLE]);
		const char *sn = nl_attr_str(&tb[NFTA_SET_ELEM_LIST_SET]);
		if (rc < 0 || !t || !sn || strcmp(t, st->table) != 0)
			return rc;
		struct nft_set_info *s = NULL;
		for (size_t i = 0; i < st->nsets && !s; i++)
			if (strcmp(st->sets[i].name, sn) == 0)
				s = &st->sets[i];
		if (!s || !nl_attr_has(&tb[NFTA_SET_ELEM_LIST_ELEMENTS]))
			return 0;
		rc = each_elem(&tb[NFTA_SET_ELEM_LIST_ELEMENTS], elem_fn, s, e);
		if (rc < 0)
			err_prefix(e, "nft %s: set %s", st->table, s->name);
		return rc;
	}
	case NFT_MSG_NEWRULE:
		rc = nl_msg_parse(m, NULL, GENLEN, rule_pol, NFTA_RULE_MAX, tb, e);
		if (rc < 0 || !nl_attr_str(&tb[NFTA_RULE_TABLE]) ||
		    strcmp(nl_attr_str(&tb[NFTA_RULE_TABLE]), st->table) != 0)
			return rc;
		return feed_rule(st, tb, e);
	default:
		return 0;
	}
}

static int state_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	return nft_state_feed(arg, m, e);
}

/* One GET (dump or not) of `type` with the table (and set) named by attributes. */
static int get(struct nl_sock *s, struct nft_state *st, uint8_t type, bool dump,
	       uint16_t tattr, uint16_t sattr, const char *set, struct err *e)
{
	uint8_t buf[640];
	struct nl_msg m;
	struct nfgenmsg g = {.nfgen_family = st->family ? st->family : NFPROTO_INET,
			     .version = NFNETLINK_V0};
	nl_msg_init(&m, buf, sizeof(buf), (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | type), 0);
	nl_put_fam(&m, &g, sizeof(g));
	if (tattr)
		nl_put_str(&m, tattr, st->table);
	if (set)
		nl_put_str(&m, sattr, set);
	return dump ? nl_dump(s, &m, state_cb, st, e) : nl_request(s, &m, state_cb, st, e);
}

static int load_once(struct nl_sock *s, struct nft_state *st, struct err *e)
{
	int rc = get(s, st, NFT_MSG_GETTABLE, false, NFTA_TABLE_NAME, 0, NULL, e);
	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		return err_prefix(e, "nft %s: read table", st->table), rc;
	rc = get(s, st, NFT_MSG_GETCHAIN, true, NFTA_CHAIN_TABLE, 0, NULL, e);
	if (rc == 0)
		rc = get(s, st, NFT_MSG_GETSET, true, NFTA_SET_TABLE, 0, NULL, e);
	for (size_t i = 0; rc == 0 && i < st->nsets; i++) {
		char name[NFT_NAME_MAX];
		memcpy(name, st->sets[i].name, sizeof(name));
		rc = get(s, st, NFT_MSG_GETSETELEM, true, NFTA_SET_ELEM_LIST_TABLE,
			 NFTA_SET_ELEM_LIST_SET, name, e);
	}
	if (rc == 0)
		rc = get(s, st, NFT_MSG_GETRULE, true, NFTA_RULE_TABLE, 0, NULL, e);
	if (rc < 0 && rc != -EINTR)
		err_prefix(e, "nft %s: read", st->table);
	return rc;
}

int nft_state_load(struct nl_sock *s, struct nft_state *st, struct err *e)
{
	int rc = -EINTR;
	for (int tries = 0; tries < 5; tries++) {
		uint32_t g0, g1;
		state_clear(st);
		rc = nft_genid(s, &g0, e);
		if (rc < 0)
			return rc;
		rc = load_once(s, st, e);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
		rc = nft_genid(s, &g1, e);
		if (rc < 0)
			return rc;
		if (g0 == g1) {
			st->genid = g0;
			return 0;
		}
		rc = err_setx(e, EINTR, "nft %s: the ruleset kept changing while it was read",
			      st->table);
	}
	return rc;
}

int nft_set_load(struct nl_sock *s, struct nft_state *st, const char *set, struct err *e)
{
	state_clear(st);
	if (!set || strlen(set) >= NFT_NAME_MAX)
		return err_setx(e, EINVAL, "nft %s: set name absent or too long", st->table);
	int rc = get(s, st, NFT_MSG_GETSET, false, NFTA_SET_TABLE, NFTA_SET_NAME, set, e);
	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc == 0 && st->nsets > 0) {
		st->exists = true;
		rc = get(s, st, NFT_MSG_GETSETELEM, true, NFTA_SET_ELEM_LIST_TABLE,
			 NFTA_SET_ELEM_LIST_SET, set, e);
	}
	if (rc < 0)
		err_prefix(e, "nft %s: read set %s", st->table, set);
	return rc;
}

int nft_rules_load(struct nl_sock *s, struct nft_state *st, struct err *e)
{
	state_clear(st);
	int rc = get(s, st, NFT_MSG_GETRULE, true, NFTA_RULE_TABLE, 0, NULL, e);
	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		return err_prefix(e, "nft %s: read rules", st->table), rc;
	st->exists = st->nrules > 0;
	return 0;
}

const struct nft_chain_info *nft_state_chain(const struct nft_state *st, const char *name)
{
	for (size_t i = 0; i < st->nchains; i++)
		if (strcmp(st->chains[i].name, name) == 0)
			return &st->chains[i];
	return NULL;
}

const struct nft_set_info *nft_state_set(const struct nft_state *st, const char *name)
{
	for (size_t i = 0; i < st->nsets; i++)
		if (strcmp(st->sets[i].name, name) == 0)
			return &st->sets[i];
	return NULL;
}

const struct nft_rule_info *nft_state_rule(const struct nft_state *st, const char *id)
{
	for (size_t i = 0; i < st->nrules; i++)
		if (strcmp(st->rules[i].id, id) == 0)
			return &st->rules[i];
	return NULL;
}
