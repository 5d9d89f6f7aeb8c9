/* ipam — addresses, names, state and allocator; see ipam.h. Pure: no I/O. */
#include "ipam/ipam.h"

#include "lib/err.h"

#include <arpa/inet.h>
#include <bearssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* --- addresses ------------------------------------------------------------------------ */

static unsigned addr_bits(const struct ip_addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

int ipam_addr_parse(struct ip_addr *a, const char *s, struct err *e)
{
	memset(a, 0, sizeof(*a));
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, a->b) == 1) {
			a->family = AF_INET6;
			return 0;
		}
	} else if (inet_pton(AF_INET, s, a->b) == 1) {
		a->family = AF_INET;
		return 0;
	}
	return err_setx(e, EINVAL, "address \"%.64s\": not an IPv4 or IPv6 address", s);
}

const char *ipam_addr_str(const struct ip_addr *a, char *buf, size_t cap)
{
	if (!inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->b, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

int ipam_mac_parse(const char *s, uint8_t out[6], char *canon, struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t m[6];
	if (strlen(s) != 17)
		goto bad;
	for (unsigned i = 0; i < 6; i++) {
		unsigned v = 0;
		for (unsigned k = 0; k < 2; k++) {
			char c = s[3 * i + k];
			const char *p = c ? strchr(hex, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c)
					  : NULL;
			if (!p)
				goto bad;
			v = v * 16 + (unsigned)(p - hex);
		}
		if (i < 5 && s[3 * i + 2] != ':')
			goto bad;
		m[i] = (uint8_t)v;
	}
	if (m[0] & 1)
		return err_setx(e, EINVAL, "MAC \"%s\": a multicast address (group bit set)", s);
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return err_setx(e, EINVAL, "MAC \"%s\": all zeros", s);
	memcpy(out, m, 6);
	if (canon)
		snprintf(canon, IPAM_MAC_STR, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
			 m[3], m[4], m[5]);
	return 0;
bad:
	return err_setx(e, EINVAL, "MAC \"%.32s\": not six hex pairs separated by ':'", s);
}

static bool bit(const struct ip_addr *a, unsigned i)
{
	return (a->b[i / 8] >> (7 - i % 8)) & 1;
}

int ipam_cidr_parse(struct ipam_cidr *c, const char *s, struct err *e)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return err_setx(e, EINVAL, "cidr \"%.64s\": expected ADDRESS/PREFIX", s);
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	int r = ipam_addr_parse(&c->a, buf, e);
	if (r) {
		err_prefix(e, "cidr \"%.64s\"", s);
		return r; /* not err_prefix's value: that is 0 when e is NULL */
	}
	const char *p = slash + 1;
	unsigned v = 0;
	if (!*p || strlen(p) > 3 || (p[0] == '0' && p[1]))
		return err_setx(e, EINVAL, "cidr \"%.64s\": bad prefix length", s);
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return err_setx(e, EINVAL, "cidr \"%.64s\": bad prefix length", s);
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > addr_bits(&c->a))
		return err_setx(e, EINVAL, "cidr \"%.64s\": prefix length too long", s);
	c->prefix = (uint8_t)v;
	for (unsigned i = v; i < addr_bits(&c->a); i++)
		if (bit(&c->a, i))
			return err_setx(e, EINVAL, "cidr \"%.64s\": host bits set", s);
	return 0;
}

const char *ipam_cidr_str(const struct ipam_cidr *c, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	snprintf(buf, cap, "%s/%u", ipam_addr_str(&c->a, a, sizeof(a)), c->prefix);
	return buf;
}

bool ipam_cidr_contains(const struct ipam_cidr *c, const struct ip_addr *a)
{
	if (a->family != c->a.family)
		return false;
	for (unsigned i = 0; i < c->prefix; i++)
		if (bit(a, i) != bit(&c->a, i))
			return false;
	return true;
}

/* Address `off` places after base (no wrap beyond the address width is asked for). */
static struct ip_addr addr_add(const struct ip_addr *base, uint64_t off)
{
	struct ip_addr r = *base;
	int last = r.family == AF_INET ? 3 : 15;
	for (int i = last; i >= 0 && off; i--) {
		uint64_t s = r.b[i] + (off & 0xff);
		r.b[i] = (uint8_t)s;
		off = (off >> 8) + (s >> 8);
	}
	return r;
}

/* Offset of a from base (a >= base, difference below 2^64). */
static uint64_t addr_off(const struct ip_addr *base, const struct ip_addr *a)
{
	uint64_t d = 0;
	int last = a->family == AF_INET ? 3 : 15;
	int borrow = 0;
	for (int i = last, sh = 0; i >= 0 && sh < 64; i--, sh += 8) {
		int v = a->b[i] - base->b[i] - borrow;
		borrow = v < 0;
		d |= (uint64_t)(uint8_t)(v + (borrow ? 256 : 0)) << sh;
	}
	return d;
}

/* Last address of c. */
static struct ip_addr cidr_last(const struct ipam_cidr *c)
{
	struct ip_addr r = c->a;
	for (unsigned i = c->prefix; i < addr_bits(&r); i++)
		r.b[i / 8] |= (uint8_t)(1u << (7 - i % 8));
	return r;
}

/* --- names ---------------------------------------------------------------------------- */

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool ipam_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > IPAM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (alnum(c))
			continue;
		if (c != '-' && c != '.')
			return false;
		if (i == 0 || i == n - 1)
			return false;
		if (c == '.' && (!alnum(s[i - 1]) || !alnum(s[i + 1])))
			return false;
	}
	return true;
}

void ipam_name_map(const char *s, char *out)
{
	if (ipam_name_valid(s)) {
		strcpy(out, s);
		return;
	}
	const size_t keep = IPAM_NAME_MAX - 1 - IPAM_HASH_HEX;
	size_t n = 0;
	for (const char *p = s; *p && n < keep; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (alnum(c))
			out[n++] = c;
		else if ((c == '-' || c == '.') && n > 0 && alnum(out[n - 1]))
			out[n++] = c;
		else if (n > 0 && alnum(out[n - 1]))
			out[n++] = '-';
	}
	while (n > 0 && !alnum(out[n - 1]))
		n--;
	unsigned char h[32];
	br_sha256_context ctx;
	br_sha256_init(&ctx);
	br_sha256_update(&ctx, s, strlen(s));
	br_sha256_out(&ctx, h);
	if (n > 0)
		out[n++] = '-';
	for (unsigned i = 0; i < IPAM_HASH_HEX; i++)
		out[n++] = "0123456789abcdef"[(h[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[n] = 0;
}

static int handle_join(char *out, struct err *e, const char *const *parts, unsigned n)
{
	char buf[4 * (IPAM_NAME_MAX + 1) + 8];
	size_t len = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);
		if (l == 0)
			return err_setx(e, EINVAL, "handle: empty name part %u", i);
		if (l > IPAM_NAME_MAX || len + l + 2 > sizeof(buf))
			return err_setx(e, EINVAL, "handle: name part %u too long", i);
		if (i)
			buf[len++] = '.';
		memcpy(buf + len, parts[i], l);
		len += l;
	}
	buf[len] = 0;
	ipam_name_map(buf, out);
	return 0;
}

int ipam_handle_pod(char *out, const char *network, const char *container_id, struct err *e)
{
	const char *p[] = {network, container_id};
	return handle_join(out, e, p, 2);
}

int ipam_handle_vm(char *out, const char *network, const char *ns, const char *vm, struct err *e)
{
	const char *p[] = {network, "vmi", ns, vm};
	return handle_join(out, e, p, 4);
}

void ipam_block_name(const struct ipam_cidr *c, char *out, size_t cap)
{
	const uint8_t *b = c->a.b;
	if (c->a.family == AF_INET) {
		snprintf(out, cap, "v4-%u-%u-%u-%u-%u", b[0], b[1], b[2], b[3], c->prefix);
		return;
	}
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	snprintf(out, cap, "v6-%s-%u", hex, c->prefix);
}

/* --- state ---------------------------------------------------------------------------- */

void ipam_state_init(struct ipam_state *st)
{
	memset(st, 0, sizeof(*st));
}

static void block_free(struct ipam_block *b)
{
	if (b->slot)
		for (unsigned i = 0; i < b->size; i++)
			free(b->slot[i]);
	free(b->slot);
	b->slot = NULL;
}

void ipam_state_free(struct ipam_state *st)
{
	for (unsigned i = 0; i < st->n_blocks; i++)
		block_free(&st->blocks[i]);
	for (unsigned i = 0; i < st->n_loaded; i++)
		free(st->loaded[i].json);
	free(st->pools);
	free(st->blocks);
	free(st->handles);
	free(st->loaded);
	memset(st, 0, sizeof(*st));
}

bool ipam_config_get(const struct ipam_state *st, struct ipam_config *out)
{
	if (st->has_config) {
		*out = st->config;
		return true;
	}
	out->vm_persistence = IPAM_PERSIST_ENABLED;
	return false;
}

int ipam_config_set(struct ipam_state *st, const struct ipam_config *c, struct err *e)
{
	switch (c->vm_persistence) {
	case IPAM_PERSIST_ENABLED:
	case IPAM_PERSIST_DISABLED:
		st->config = *c;
		st->has_config = true;
		return 0;
	}
	return err_setx(e, EINVAL, "config: kubeVirtVMAddressPersistence: invalid value %d",
			(int)c->vm_persistence);
}

void ipam_config_clear(struct ipam_state *st)
{
	st->has_config = false;
	memset(&st->config, 0, sizeof(st->config));
}

const char *ipam_persist_name(enum ipam_persist p)
{
	switch (p) {
	case IPAM_PERSIST_ENABLED:
		return "Enabled";
	case IPAM_PERSIST_DISABLED:
		return "Disabled";
	}
	return "?";
}

bool ipam_persist_parse(const char *s, enum ipam_persist *out)
{
	if (!strcmp(s, "Enabled"))
		*out = IPAM_PERSIST_ENABLED;
	else if (!strcmp(s, "Disabled"))
		*out = IPAM_PERSIST_DISABLED;
	else
		return false;
	return true;
}

/* Make room for one more element of size sz in *arr (n used, *cap allocated). */
static int grow(void **arr, unsigned n, unsigned *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	unsigned nc = *cap ? *cap * 2 : 8;
	if (nc > (1u << 24))
		return -ENOMEM;
	void *p = realloc(*arr, (size_t)nc * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static bool cidr_overlap(const struct ipam_cidr *a, const struct ipam_cidr *b)
{
	return ipam_cidr_contains(a, &b->a) || ipam_cidr_contains(b, &a->a);
}

void ipam_pool_set_network(struct ipam_state *st, struct ipam_pool *p, const char *net)
{
	(void)st;
	snprintf(p->network, sizeof(p->network), "%s", net);
}

bool ipam_pool_adoptable(const struct ipam_state *st, const struct ipam_pool *p,
			 const char *net)
{
	size_t nl = strlen(net);
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = &st->blocks[i];
		if (!ipam_cidr_contains(&p->cidr, &b->cidr.a))
			continue;
		for (unsigned k = 0; k < b->size; k++)
			if (b->slot[k] && (strncmp(b->slot[k]->handle, net, nl) != 0 ||
					   b->slot[k]->handle[nl] != '.'))
				return false;
	}
	return true;
}

int ipam_pool_claim(struct ipam_state *st, const struct ip_addr *a, const char *net,
		    struct err *e)
{
	struct ipam_pool *p = NULL;
	for (unsigned i = 0; i < st->n_pools && !p; i++)
		if (ipam_cidr_contains(&st->pools[i].cidr, a))
			p = &st->pools[i];
	if (!p)
		return -ENOENT;
	if (strcmp(p->network, net) == 0)
		return 0;
	if (p->network[0])
		return err_setx(e, EEXIST, "pool %s serves L2Network %s, not %s", p->name,
				p->network, net);
	if (!ipam_pool_adoptable(st, p, net))
		return err_setx(e, EEXIST, "pool %s: addresses of other networks are allocated "
				"in it; it cannot serve L2Network %s alone", p->name, net);
	ipam_pool_set_network(st, p, net);
	return 1;
}

int ipam_pool_reserve(struct ipam_state *st, struct ipam_pool *p, const struct ip_addr *a,
		      struct err *e)
{
	if (!a->family || ipam_pool_reserves(p, a))
		return 0;
	char s[INET6_ADDRSTRLEN];
	ipam_addr_str(a, s, sizeof(s));
	const struct ipam_attrs *at = ipam_lookup_ip(st, a);
	if (at)
		return err_setx(e, EADDRINUSE, "pool %s: gateway %s is held by handle %s; "
				"release it first", p->name, s, at->handle);
	if (p->n_reserved == IPAM_RESERVED_MAX)
		return err_setx(e, ENOSPC, "pool %s: no room to reserve gateway %s", p->name, s);
	p->reserved[p->n_reserved++] = *a;
	return 0;
}

int ipam_pool_add(struct ipam_state *st, const char *name, const struct ipam_cidr *cidr,
		  unsigned block_prefix, const struct ip_addr *reserved, unsigned n_reserved,
		  struct err *e)
{
	char cs[64];
	ipam_cidr_str(cidr, cs, sizeof(cs));
	if (!ipam_name_valid(name))
		return err_setx(e, EINVAL, "pool \"%.64s\": not a valid object name", name);
	if (block_prefix == 0)
		block_prefix = cidr->a.family == AF_INET ? 26 : 122;
	unsigned bits = addr_bits(&cidr->a);
	if (block_prefix < cidr->prefix || block_prefix > bits || (bits - block_prefix) > 10)
		return err_setx(e, EINVAL,
				"pool %s: block size /%u does not fit pool %s (want /%u../%u: "
				"at most %u addresses per block)",
				name, block_prefix, cs, cidr->prefix > bits - 10 ? cidr->prefix : bits - 10,
				bits, IPAM_BLOCK_ADDRS_MAX);
	if (n_reserved > IPAM_RESERVED_MAX)
		return err_setx(e, EINVAL, "pool %s: more than %d reserved addresses", name,
				IPAM_RESERVED_MAX);
	for (unsigned i = 0; i < n_reserved; i++)
		if (!ipam_cidr_contains(cidr, &reserved[i])) {
			char as[INET6_ADDRSTRLEN];
			return err_setx(e, EINVAL, "pool %s: reserved address %s not in %s", name,
					ipam_addr_str(&reserved[i], as, sizeof(as)), cs);
		}
	for (unsigned i = 0; i < st->n_pools; i++) {
		if (!strcmp(st->pools[i].name, name))
			return err_setx(e, EEXIST, "pool %s: already defined", name);
		if (cidr_overlap(&st->pools[i].cidr, cidr))
			return err_setx(e, EEXIST, "pool %s: %s overlaps pool %s", name, cs,
					st->pools[i].name);
	}
	if (grow((void **)&st->pools, st->n_pools, &st->cap_pools, sizeof(*st->pools)))
		return err_set(e, ENOMEM, "pool %s", name);
	struct ipam_pool *p = &st->pools[st->n_pools++];
	memset(p, 0, sizeof(*p));
	strcpy(p->name, name);
	p->cidr = *cidr;
	p->block_prefix = (uint8_t)block_prefix;
	p->n_reserved = n_reserved;
	if (n_reserved)
		memcpy(p->reserved, reserved, n_reserved * sizeof(*reserved));
	return 0;
}

bool ipam_pool_reserves(const struct ipam_pool *p, const struct ip_addr *a)
{
	if (ip_eq(a, &p->cidr.a))
		return true;
	if (a->family == AF_INET) {
		struct ip_addr last = cidr_last(&p->cidr);
		if (ip_eq(a, &last))
			return true;
	}
	for (unsigned i = 0; i < p->n_reserved; i++)
		if (ip_eq(a, &p->reserved[i]))
			return true;
	return false;
}

static struct ipam_pool *pool_of(const struct ipam_state *st, const struct ip_addr *a)
{
	for (unsigned i = 0; i < st->n_pools; i++)
		if (ipam_cidr_contains(&st->pools[i].cidr, a))
			return &st->pools[i];
	return NULL;
}

static struct ipam_block *block_of(const struct ipam_state *st, const struct ip_addr *a)
{
	for (unsigned i = 0; i < st->n_blocks; i++)
		if (ipam_cidr_contains(&st->blocks[i].cidr, a))
			return &st->blocks[i];
	return NULL;
}

const struct ipam_pool *ipam_pool_of(const struct ipam_state *st, const struct ip_addr *a)
{
	return pool_of(st, a);
}

const struct ipam_block *ipam_block_of(const struct ipam_state *st, const struct ip_addr *a)
{
	return block_of(st, a);
}

struct ip_addr ipam_block_addr(const struct ipam_block *b, unsigned ord)
{
	return addr_add(&b->cidr.a, ord);
}

/* Append a new empty block c with affinity node; returns it or NULL (ENOMEM). */
static struct ipam_block *block_new(struct ipam_state *st, const struct ipam_cidr *c,
				    const char *node)
{
	if (grow((void **)&st->blocks, st->n_blocks, &st->cap_blocks, sizeof(*st->blocks)))
		return NULL;
	unsigned size = 1u << (addr_bits(&c->a) - c->prefix);
	struct ipam_attrs **slot = calloc(size, sizeof(*slot));
	if (!slot)
		return NULL;
	struct ipam_block *b = &st->blocks[st->n_blocks++];
	memset(b, 0, sizeof(*b));
	b->cidr = *c;
	snprintf(b->affinity, sizeof(b->affinity), "%s", node ? node : "");
	b->size = size;
	b->slot = slot;
	return b;
}

static struct ipam_handle *handle_get(const struct ipam_state *st, const char *id)
{
	for (unsigned i = 0; i < st->n_handles; i++)
		if (!strcmp(st->handles[i].id, id))
			return &st->handles[i];
	return NULL;
}

const struct ipam_handle *ipam_handle_find(const struct ipam_state *st, const char *id)
{
	return handle_get(st, id);
}

const struct ipam_attrs *ipam_lookup_ip(const struct ipam_state *st, const struct ip_addr *a)
{
	struct ipam_block *b = block_of(st, a);
	if (!b)
		return NULL;
	return b->slot[addr_off(&b->cidr.a, a)];
}

int ipam_owner_put(struct ipam_state *st, const struct ip_addr *a, enum ipam_slot which,
		   const struct ipam_owner *o, struct err *e)
{
	struct ipam_block *b = block_of(st, a);
	struct ipam_attrs *at = b ? b->slot[addr_off(&b->cidr.a, a)] : NULL;
	char buf[64];
	if (!at)
		return err_setx(e, ENOENT, "address %s: not allocated",
				ipam_addr_str(a, buf, sizeof(buf)));
	struct ipam_owner *slot = which == IPAM_ACTIVE ? &at->active : &at->alternate;
	if (o && (!o->uid[0] || !o->ns[0] || !o->name[0]))
		return err_setx(e, EINVAL, "address %s: owner needs a pod namespace, name and uid",
				ipam_addr_str(a, buf, sizeof(buf)));
	if (o)
		*slot = *o;
	else
		memset(slot, 0, sizeof(*slot));
	return 0;
}

/* Pool that holds block b. */
static const struct ipam_pool *block_pool(const struct ipam_state *st, const struct ipam_block *b)
{
	return pool_of(st, &b->cidr.a);
}

/* First free, unreserved ordinal of b, or -1. */
static long block_free_ord(const struct ipam_state *st, const struct ipam_block *b)
{
	const struct ipam_pool *p = block_pool(st, b);
	if (!p)
		return -1;
	for (unsigned i = 0; i < b->size; i++) {
		if (b->slot[i])
			continue;
		struct ip_addr a = addr_add(&b->cidr.a, i);
		if (!ipam_pool_reserves(p, &a))
			return i;
	}
	return -1;
}

/* Claim the lowest block of pool p that no block record covers yet; NULL when the pool
 * has none left (or on ENOMEM, *nomem set). */
static struct ipam_block *claim_block(struct ipam_state *st, const struct ipam_pool *p,
				      const char *node, bool *nomem)
{
	unsigned bits = addr_bits(&p->cidr.a);
	/* An IPv6 /48 in /122 blocks has 2^74 of them: saturate, the loop below stops long
	 * before (blocks are claimed one by one). */
	unsigned span = p->block_prefix - p->cidr.prefix;
	uint64_t nblocks = span >= 64 ? UINT64_MAX : (uint64_t)1 << span;
	uint64_t step = (uint64_t)1 << (bits - p->block_prefix);
	/* Existing blocks of this pool are at most n_blocks, so one of the first
	 * n_blocks + 1 candidates is free if any is. */
	for (uint64_t i = 0; i < nblocks && i <= st->n_blocks; i++) {
		struct ipam_cidr c = {.a = addr_add(&p->cidr.a, i * step),
				      .prefix = p->block_prefix};
		bool taken = false;
		for (unsigned k = 0; k < st->n_blocks && !taken; k++)
			taken = cidr_overlap(&st->blocks[k].cidr, &c);
		if (taken)
			continue;
		struct ipam_block *b = block_new(st, &c, node);
		if (!b)
			*nomem = true;
		return b;
	}
	return NULL;
}

static int handle_add_ip(struct ipam_state *st, const char *id, const struct ip_addr *a)
{
	struct ipam_handle *h = handle_get(st, id);
	if (!h) {
		if (grow((void **)&st->handles, st->n_handles, &st->cap_handles,
			 sizeof(*st->handles)))
			return -ENOMEM;
		h = &st->handles[st->n_handles++];
		memset(h, 0, sizeof(*h));
		strcpy(h->id, id);
	}
	if (h->n >= IPAM_HANDLE_IPS_MAX)
		return -E2BIG;
	h->ip[h->n++] = *a;
	return 0;
}

static void handle_del_ip(struct ipam_state *st, struct ipam_handle *h, const struct ip_addr *a)
{
	for (unsigned i = 0; i < h->n; i++)
		if (ip_eq(&h->ip[i], a)) {
			h->ip[i] = h->ip[--h->n];
			break;
		}
	if (h->n == 0) {
		unsigned idx = (unsigned)(h - st->handles);
		st->handles[idx] = st->handles[--st->n_handles];
	}
}

/* Take ordinal ord of block b for handle. */
static int slot_take(struct ipam_state *st, struct ipam_block *b, unsigned ord, const char *handle,
		     const char *node, const struct ipam_attrs *attrs, struct ip_addr *out)
{
	struct ipam_attrs *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (attrs)
		*a = *attrs;
	snprintf(a->handle, sizeof(a->handle), "%s", handle);
	if (node && !a->node[0])
		snprintf(a->node, sizeof(a->node), "%s", node);
	*out = addr_add(&b->cidr.a, ord);
	int r = handle_add_ip(st, handle, out);
	if (r) {
		free(a);
		return r;
	}
	b->slot[ord] = a;
	b->used++;
	return 0;
}

/* Allocate one address of family fam (AF_*) for handle. */
/* True when pool p serves network net ("" = the ordinary networks). */
static bool pool_serves(const struct ipam_pool *p, const char *net)
{
	return strcmp(p->network, net) == 0;
}

/* True when block b lies in a pool of family fam serving net. */
static bool block_serves(const struct ipam_state *st, const struct ipam_block *b, int fam,
			 const char *net)
{
	if (b->cidr.a.family != fam)
		return false;
	const struct ipam_pool *p = pool_of(st, &b->cidr.a);
	return p && pool_serves(p, net);
}

static int alloc_one(struct ipam_state *st, int fam, const char *handle, const char *node,
		     const char *net, const struct ipam_attrs *attrs, struct ip_addr *out,
		     struct err *e)
{
	const char *fs = fam == AF_INET ? "IPv4" : "IPv6";
	bool any_pool = false;
	for (unsigned i = 0; i < st->n_pools; i++)
		any_pool |= st->pools[i].cidr.a.family == fam && pool_serves(&st->pools[i], net);
	if (!any_pool)
		return err_setx(e, ENOENT, "handle %s: allocate: no %s pool%s%s", handle, fs,
				*net ? " of network " : "", net);
	/* 1. blocks affine to this node */
	for (unsigned i = 0; i < st->n_blocks; i++) {
		struct ipam_block *b = &st->blocks[i];
		if (!block_serves(st, b, fam, net) || strcmp(b->affinity, node))
			continue;
		long o = block_free_ord(st, b);
		if (o >= 0)
			return slot_take(st, b, (unsigned)o, handle, node, attrs, out);
	}
	/* 2. claim a free block (one with nothing allocatable is skipped, stays claimed) */
	for (unsigned i = 0; i < st->n_pools; i++) {
		const struct ipam_pool *p = &st->pools[i];
		if (p->cidr.a.family != fam || !pool_serves(p, net))
			continue;
		for (;;) {
			bool nomem = false;
			struct ipam_block *b = claim_block(st, p, node, &nomem);
			if (nomem)
				return err_set(e, ENOMEM, "handle %s: allocate", handle);
			if (!b)
				break;
			long o = block_free_ord(st, b);
			if (o >= 0)
				return slot_take(st, b, (unsigned)o, handle, node, attrs, out);
		}
	}
	/* 3. borrow from any block */
	for (unsigned i = 0; i < st->n_blocks; i++) {
		struct ipam_block *b = &st->blocks[i];
		if (!block_serves(st, b, fam, net))
			continue;
		long o = block_free_ord(st, b);
		if (o >= 0)
			return slot_take(st, b, (unsigned)o, handle, node, attrs, out);
	}
	return err_setx(e, ENOSPC, "handle %s: allocate: every %s pool is exhausted", handle, fs);
}

int ipam_alloc(struct ipam_state *st, const char *handle, const char *node, unsigned families,
	       const struct ipam_attrs *attrs, struct ip_addr *out, unsigned *n_out,
	       struct err *e)
{
	return ipam_alloc_net(st, handle, node, families, NULL, attrs, out, n_out, e);
}

int ipam_alloc_net(struct ipam_state *st, const char *handle, const char *node,
		   unsigned families, const char *net, const struct ipam_attrs *attrs,
		   struct ip_addr *out, unsigned *n_out, struct err *e)
{
	*n_out = 0;
	if (!net)
		net = "";
	if (!ipam_name_valid(handle))
		return err_setx(e, EINVAL, "handle \"%.64s\": not a valid object name", handle);
	if (!node || !*node || strlen(node) > IPAM_NAME_MAX)
		return err_setx(e, EINVAL, "handle %s: allocate: bad node name", handle);
	if (!(families & (IPAM_V4 | IPAM_V6)))
		return err_setx(e, EINVAL, "handle %s: allocate: no address family asked", handle);
	const struct ipam_handle *h = handle_get(st, handle);
	for (unsigned i = 0; h && i < h->n; i++) /* the families it holds are done */
		families &= ~(unsigned)(h->ip[i].family == AF_INET ? IPAM_V4 : IPAM_V6);
	if (h && !families) {
		memcpy(out, h->ip, h->n * sizeof(*out));
		*n_out = h->n;
		return 0;
	}
	struct ip_addr got[2];
	unsigned n = 0;
	int r = 0;
	if (families & IPAM_V4) {
		r = alloc_one(st, AF_INET, handle, node, net, attrs, &got[n], e);
		if (r == 0)
			n++;
	}
	if (r == 0 && (families & IPAM_V6)) {
		r = alloc_one(st, AF_INET6, handle, node, net, attrs, &got[n], e);
		if (r == 0)
			n++;
	}
	if (r) {
		for (unsigned i = 0; i < n; i++)
			ipam_release_ip(st, &got[i], NULL);
		return r;
	}
	h = handle_get(st, handle); /* the handle's addresses: kept ones and the new */
	if (!h)
		return err_setx(e, EUCLEAN, "handle %s: allocate: handle missing", handle);
	memcpy(out, h->ip, h->n * sizeof(*out));
	*n_out = h->n;
	return 0;
}

int ipam_reserve_ip(struct ipam_state *st, const char *handle, const struct ip_addr *a,
		    const struct ipam_attrs *attrs, struct err *e)
{
	char as[INET6_ADDRSTRLEN];
	ipam_addr_str(a, as, sizeof(as));
	if (!ipam_name_valid(handle))
		return err_setx(e, EINVAL, "handle \"%.64s\": not a valid object name", handle);
	const struct ipam_pool *p = pool_of(st, a);
	if (!p)
		return err_setx(e, EADDRNOTAVAIL, "address %s: reserve: not inside any pool", as);
	if (ipam_pool_reserves(p, a))
		return err_setx(e, EADDRNOTAVAIL,
				"address %s: reserve: reserved by pool %s, never handed out", as,
				p->name);
	struct ipam_block *b = block_of(st, a);
	if (!b) {
		struct ipam_cidr c = {.a = *a, .prefix = p->block_prefix};
		for (unsigned i = c.prefix; i < addr_bits(a); i++)
			c.a.b[i / 8] &= (uint8_t) ~(1u << (7 - i % 8));
		b = block_new(st, &c, NULL);
		if (!b)
			return err_set(e, ENOMEM, "address %s: reserve", as);
	}
	unsigned ord = (unsigned)addr_off(&b->cidr.a, a);
	if (b->slot[ord]) {
		if (!strcmp(b->slot[ord]->handle, handle))
			return 0;
		return err_setx(e, EEXIST, "address %s: reserve: already held by handle %s", as,
				b->slot[ord]->handle);
	}
	const struct ipam_handle *h = handle_get(st, handle);
	if (h && h->n >= IPAM_HANDLE_IPS_MAX)
		return err_setx(e, E2BIG, "handle %s: reserve %s: already holds %d addresses",
				handle, as, IPAM_HANDLE_IPS_MAX);
	struct ip_addr out;
	int r = slot_take(st, b, ord, handle, attrs ? attrs->node : NULL, attrs, &out);
	if (r)
		return err_set(e, -r, "address %s: reserve", as);
	return 0;
}

static struct ipam_owner *slot_owner(struct ipam_attrs *a, enum ipam_slot which)
{
	switch (which) {
	case IPAM_ACTIVE:
		return &a->active;
	case IPAM_ALTERNATE:
		return &a->alternate;
	}
	return NULL;
}

static const char *slot_name(enum ipam_slot which)
{
	switch (which) {
	case IPAM_ACTIVE:
		return "active owner";
	case IPAM_ALTERNATE:
		return "alternate owner";
	}
	return "?";
}

/* Owner slot `which` of each address of handle h into o[] (h->n entries). */
static int handle_owners(const struct ipam_state *st, const struct ipam_handle *h,
			 enum ipam_slot which, struct ipam_owner **o, struct err *e)
{
	for (unsigned i = 0; i < h->n; i++) {
		struct ipam_block *b = block_of(st, &h->ip[i]);
		struct ipam_attrs *a = b ? b->slot[addr_off(&b->cidr.a, &h->ip[i])] : NULL;
		if (!a || strcmp(a->handle, h->id))
			return err_setx(e, EUCLEAN, "handle %s: address %u not allocated to it",
					h->id, i);
		o[i] = slot_owner(a, which);
		if (!o[i])
			return err_setx(e, EINVAL, "handle %s: bad owner slot", h->id);
	}
	return 0;
}

int ipam_owner_set(struct ipam_state *st, const char *handle, enum ipam_slot which,
		   const struct ipam_owner *o, const char *expect_uid, struct err *e)
{
	struct ipam_handle *h = handle_get(st, handle);
	if (!h)
		return err_setx(e, ENOENT, "handle %.64s: set %s: no such handle", handle,
				slot_name(which));
	if (!o->uid[0] || !o->ns[0] || !o->name[0])
		return err_setx(e, EINVAL,
				"handle %s: set %s: owner needs a pod namespace, name and uid",
				handle, slot_name(which));
	struct ipam_owner *cur[IPAM_HANDLE_IPS_MAX];
	int r = handle_owners(st, h, which, cur, e);
	if (r)
		return r;
	for (unsigned i = 0; i < h->n; i++) {
		if (!cur[i]->uid[0])
			continue;
		if (expect_uid && !strcmp(cur[i]->uid, expect_uid))
			continue;
		return err_setx(e, EBUSY,
				"handle %s: set %s: held by pod %s/%s (uid %s), expected %s",
				handle, slot_name(which), cur[i]->ns, cur[i]->name, cur[i]->uid,
				expect_uid ? expect_uid : "an empty slot");
	}
	for (unsigned i = 0; i < h->n; i++)
		*cur[i] = *o;
	return 0;
}

int ipam_owner_clear(struct ipam_state *st, const char *handle, enum ipam_slot which,
		     const char *expect_uid, struct err *e)
{
	struct ipam_handle *h = handle_get(st, handle);
	if (!h)
		return err_setx(e, ENOENT, "handle %.64s: clear %s: no such handle", handle,
				slot_name(which));
	struct ipam_owner *cur[IPAM_HANDLE_IPS_MAX];
	int r = handle_owners(st, h, which, cur, e);
	if (r)
		return r;
	for (unsigned i = 0; i < h->n; i++)
		if (cur[i]->uid[0] && (!expect_uid || strcmp(cur[i]->uid, expect_uid)))
			return err_setx(e, EBUSY,
					"handle %s: clear %s: held by pod %s/%s (uid %s), not %s",
					handle, slot_name(which), cur[i]->ns, cur[i]->name,
					cur[i]->uid, expect_uid ? expect_uid : "(none)");
	for (unsigned i = 0; i < h->n; i++)
		memset(cur[i], 0, sizeof(*cur[i]));
	return 0;
}

int ipam_release_ip(struct ipam_state *st, const struct ip_addr *a, struct err *e)
{
	char as[INET6_ADDRSTRLEN];
	struct ipam_block *b = block_of(st, a);
	unsigned ord = b ? (unsigned)addr_off(&b->cidr.a, a) : 0;
	if (!b || !b->slot[ord])
		return err_setx(e, ENOENT, "address %s: release: not allocated",
				ipam_addr_str(a, as, sizeof(as)));
	struct ipam_handle *h = handle_get(st, b->slot[ord]->handle);
	free(b->slot[ord]);
	b->slot[ord] = NULL;
	if (b->used)
		b->used--;
	if (h)
		handle_del_ip(st, h, a);
	return 0;
}

int ipam_release_handle(struct ipam_state *st, const char *handle, bool force, struct err *e)
{
	struct ipam_handle *h = handle_get(st, handle);
	if (!h)
		return err_setx(e, ENOENT, "handle %.64s: release: no such handle", handle);
	if (!force) {
		struct ipam_owner *o[IPAM_HANDLE_IPS_MAX];
		for (enum ipam_slot s = IPAM_ACTIVE; s <= IPAM_ALTERNATE; s++) {
			int r = handle_owners(st, h, s, o, e);
			if (r)
				return r;
			for (unsigned i = 0; i < h->n; i++)
				if (o[i]->uid[0])
					return err_setx(e, EBUSY,
							"handle %s: release refused: %s pod "
							"%s/%s (uid %s) still set",
							handle, slot_name(s), o[i]->ns, o[i]->name,
							o[i]->uid);
		}
	}
	struct ip_addr ips[IPAM_HANDLE_IPS_MAX];
	unsigned n = h->n;
	memcpy(ips, h->ip, n * sizeof(*ips));
	for (unsigned i = 0; i < n; i++) {
		/* only what is allocated to this handle: never another handle's address */
		const struct ipam_attrs *a = ipam_lookup_ip(st, &ips[i]);
		if (a && !strcmp(a->handle, handle))
			ipam_release_ip(st, &ips[i], NULL);
	}
	/* a handle whose addresses were not all in blocks (inconsistent) goes too */
	h = handle_get(st, handle);
	if (h)
		st->handles[h - st->handles] = st->handles[--st->n_handles];
	return 0;
}

int ipam_handle_mend(struct ipam_state *st, const char *handle, struct err *e)
{
	int fixes = 0;
	struct ipam_handle *h = handle_get(st, handle);
	/* 1. listed addresses that no block allocates to this handle */
	for (unsigned i = 0; h && i < h->n;) {
		const struct ipam_attrs *a = ipam_lookup_ip(st, &h->ip[i]);
		if (a && !strcmp(a->handle, handle)) {
			i++;
			continue;
		}
		h->ip[i] = h->ip[--h->n];
		fixes++;
	}
	if (h && h->n == 0) {
		st->handles[h - st->handles] = st->handles[--st->n_handles];
		h = NULL;
	}
	/* 2. allocations naming this handle that it does not list */
	for (unsigned b = 0; b < st->n_blocks; b++) {
		struct ipam_block *bl = &st->blocks[b];
		for (unsigned o = 0; o < bl->size; o++) {
			if (!bl->slot[o] || strcmp(bl->slot[o]->handle, handle))
				continue;
			struct ip_addr ip = addr_add(&bl->cidr.a, o);
			bool listed = false, fam = false;
			for (unsigned i = 0; h && i < h->n; i++) {
				listed |= ip_eq(&h->ip[i], &ip);
				fam |= h->ip[i].family == ip.family;
			}
			if (listed)
				continue;
			fixes++;
			if (!fam && (!h || h->n < IPAM_HANDLE_IPS_MAX)) {
				if (handle_add_ip(st, handle, &ip))
					return err_set(e, ENOMEM, "handle %.64s: mend", handle);
				h = handle_get(st, handle);
				continue;
			}
			free(bl->slot[o]);
			bl->slot[o] = NULL;
			if (bl->used)
				bl->used--;
		}
	}
	/* 3. owner slots that differ between the handle's addresses */
	h = handle_get(st, handle);
	for (enum ipam_slot s = IPAM_ACTIVE; h && h->n > 1 && s <= IPAM_ALTERNATE; s++) {
		struct ipam_owner *o[IPAM_HANDLE_IPS_MAX];
		int r = handle_owners(st, h, s, o, e);
		if (r)
			return r;
		for (unsigned i = 1; i < h->n; i++) {
			if (!strcmp(o[i]->uid, o[0]->uid))
				continue;
			*o[i] = *o[0];
			fixes++;
		}
	}
	return fixes;
}

int ipam_check(const struct ipam_state *st, struct err *e)
{
	char bs[64], as[INET6_ADDRSTRLEN];
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = &st->blocks[i];
		ipam_cidr_str(&b->cidr, bs, sizeof(bs));
		const struct ipam_pool *p = block_pool(st, b);
		if (!p)
			return err_setx(e, EUCLEAN, "block %s: not inside any pool", bs);
		if (b->cidr.prefix != p->block_prefix)
			return err_setx(e, EUCLEAN, "block %s: size differs from pool %s (/%u)", bs,
					p->name, p->block_prefix);
		for (unsigned k = i + 1; k < st->n_blocks; k++)
			if (cidr_overlap(&b->cidr, &st->blocks[k].cidr))
				return err_setx(e, EUCLEAN, "block %s: overlaps another block", bs);
		unsigned used = 0;
		for (unsigned o = 0; o < b->size; o++) {
			const struct ipam_attrs *a = b->slot[o];
			if (!a)
				continue;
			used++;
			struct ip_addr ad = addr_add(&b->cidr.a, o);
			ipam_addr_str(&ad, as, sizeof(as));
			if (ipam_pool_reserves(p, &ad))
				return err_setx(e, EUCLEAN, "address %s: reserved but allocated",
						as);
			const struct ipam_handle *h = handle_get(st, a->handle);
			bool listed = false;
			for (unsigned j = 0; h && j < h->n; j++)
				listed |= ip_eq(&h->ip[j], &ad);
			if (!listed)
				return err_setx(
				    e, EUCLEAN,
				    "address %s: allocated to handle %s, which does not "
				    "list it",
				    as, a->handle);
		}
		if (used != b->used)
			return err_setx(e, EUCLEAN, "block %s: count says %u used, table holds %u",
					bs, b->used, used);
	}
	for (unsigned i = 0; i < st->n_handles; i++) {
		const struct ipam_handle *h = &st->handles[i];
		for (unsigned k = i + 1; k < st->n_handles; k++)
			if (!strcmp(h->id, st->handles[k].id))
				return err_setx(e, EUCLEAN, "handle %s: recorded twice", h->id);
		if (h->n == 0)
			return err_setx(e, EUCLEAN, "handle %s: holds no address", h->id);
		for (unsigned j = 0; j < h->n; j++) {
			ipam_addr_str(&h->ip[j], as, sizeof(as));
			const struct ipam_attrs *a = ipam_lookup_ip(st, &h->ip[j]);
			if (!a || strcmp(a->handle, h->id))
				return err_setx(e, EUCLEAN,
						"handle %s: lists %s, which is allocated to %s",
						h->id, as, a ? a->handle : "nobody");
			for (unsigned k = j + 1; k < h->n; k++)
				if (ip_eq(&h->ip[j], &h->ip[k]))
					return err_setx(e, EUCLEAN, "handle %s: lists %s twice",
							h->id, as);
		}
	}
	return 0;
}
