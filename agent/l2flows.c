/* l2flows — flow observations for L2 ports (agent/l2flows.h). */
#include "agent/l2flows.h"

#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"

#include <errno.h>
#include <netinet/in.h> /* before the linux headers, which then skip their copies */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2F_SETS 4 /* tcp4 udp4 tcp6 udp6 */

/* The counters of one element at the last window, by a hash of its key. */
struct l2f_last {
	uint64_t h;	  /* hash of (set, key); 0: empty slot */
	uint64_t pkts;	  /* its counter */
	uint64_t bytes;	  /* its counter */
};

/* Open-addressing table of l2f_last (slots a power of two, at most half used). */
struct l2f_tab {
	struct l2f_last *v; /* slots */
	uint32_t mask;	    /* slots - 1 */
	unsigned n, max;    /* used / bound */
};

struct l2flows {
	uint32_t max;		/* elements per set ([flows] max_flows) */
	uint32_t timeout_s;	/* element timeout */
	struct l2f_tab tab[2];	/* [cur]: last window's counters, the other: being filled */
	unsigned cur;		/* which */
	uint64_t full_last;	/* frames of the full-* rules already reported */
	uint64_t *syn;		/* sorted tuple hashes of the syn set being fed (heap) */
	size_t n_syn, syn_cap;	/* used / allocated */
};

static const char *const SET_NAME[L2F_SETS] = {"tcp4", "udp4", "tcp6", "udp6"};
static const uint8_t SET_PROTO[L2F_SETS] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_TCP, IPPROTO_UDP};
static const enum nft_field F4[] = {NFT_F_IIFNAME, NFT_F_SADDR4, NFT_F_DADDR4, NFT_F_SPORT,
				    NFT_F_DPORT};
static const enum nft_field F6[] = {NFT_F_IIFNAME, NFT_F_SADDR6, NFT_F_DADDR6, NFT_F_SPORT,
				    NFT_F_DPORT};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static int tab_init(struct l2f_tab *t, unsigned max)
{
	uint32_t slots = 16;
	while (slots < 2u * max && slots < (1u << 30))
		slots <<= 1;
	t->v = calloc(slots, sizeof(*t->v));
	t->mask = slots - 1;
	t->n = 0;
	t->max = max;
	return t->v ? 0 : -ENOMEM;
}

static struct l2f_last *tab_find(struct l2f_tab *t, uint64_t h, bool add)
{
	for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
		if (t->v[i].h == h)
			return &t->v[i];
		if (t->v[i].h == 0) {
			if (!add || t->n >= t->max)
				return NULL;
			t->v[i].h = h;
			t->n++;
			return &t->v[i];
		}
	}
}

struct l2flows *l2flows_new(uint32_t max, uint32_t timeout_s, struct err *e)
{
	if (max == 0 || timeout_s == 0) {
		err_setx(e, EINVAL, "l2flows: a bound and a timeout are needed");
		return NULL;
	}
	struct l2flows *lf = calloc(1, sizeof(*lf));
	if (!lf || tab_init(&lf->tab[0], 4 * max) < 0 || tab_init(&lf->tab[1], 4 * max) < 0) {
		err_set(e, ENOMEM, "l2flows: counters of %u elements", 4 * max);
		l2flows_free(lf);
		return NULL;
	}
	lf->max = max;
	lf->timeout_s = timeout_s;
	return lf;
}

void l2flows_free(struct l2flows *lf)
{
	if (!lf)
		return;
	free(lf->tab[0].v);
	free(lf->tab[1].v);
	free(lf->syn);
	free(lf);
}

/* ---- the table ------------------------------------------------------------------- */

static void spec(const struct l2flows *lf, const char *name, bool v6, bool counter,
		 struct nft_set_spec *s)
{
	*s = (struct nft_set_spec){.name = name, .fields = v6 ? F6 : F4, .nfields = 5,
				   .dynamic = true, .timeout_ms = lf->timeout_s * 1000ull,
				   .size = lf->max, .counter = counter};
}

int l2flows_program(struct l2flows *lf, struct nl_sock *s, struct err *e)
{
	struct nft_batch b;
	struct nft_chain_spec fwd = {"fwd", NFT_HOOK_FORWARD, 100, false};
	int rc = nft_batch_init(&b, L2F_TABLE, e);
	if (rc < 0)
		return rc;
	nft_batch_family(&b, NFPROTO_BRIDGE);
	nft_table(&b, NFT_TABLE_ADD);
	nft_table(&b, NFT_TABLE_DELETE);
	nft_table(&b, NFT_TABLE_ADD);
	nft_chain_add(&b, &fwd);
	for (int v6 = 0; v6 < 2; v6++) {
		struct nft_set_spec syn;
		uint8_t fam = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
		static const uint8_t mask = 0x12, want = 0x02; /* SYN|ACK, SYN */
		static const uint8_t zero = 0;
		spec(lf, v6 ? "syn6" : "syn4", v6, false, &syn);
		nft_set_add(&b, &syn);
		nft_rule_begin(&b, NFT_RULE_APPEND, "fwd", 0, syn.name);
		nft_match_nfproto(&b, fam);
		nft_match_l4proto(&b, IPPROTO_TCP);
		nft_expr_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
		nft_expr_bitwise(&b, NFT_REG_1, NFT_REG_1, &mask, &zero, 1);
		nft_expr_cmp(&b, NFT_REG_1, NFT_CMP_EQ, &want, 1);
		nft_update(&b, &syn);
		nft_rule_end(&b);
		for (int k = 2 * v6; k < 2 * v6 + 2; k++) {
			struct nft_set_spec cs;
			char full[16];
			spec(lf, SET_NAME[k], v6, true, &cs);
			nft_set_add(&b, &cs);
			nft_rule_begin(&b, NFT_RULE_APPEND, "fwd", 0, cs.name);
			nft_match_nfproto(&b, fam);
			nft_match_l4proto(&b, SET_PROTO[k]);
			nft_update(&b, &cs);
			nft_verdict(&b, NFT_V_ACCEPT, NULL);
			nft_rule_end(&b);
			snprintf(full, sizeof(full), "full-%s", cs.name);
			nft_rule_begin(&b, NFT_RULE_APPEND, "fwd", 0, full);
			nft_match_nfproto(&b, fam);
			nft_match_l4proto(&b, SET_PROTO[k]);
			nft_counter(&b);
			nft_rule_end(&b);
		}
	}
	rc = nft_commit(s, &b, 0, e);
	nft_batch_free(&b);
	return rc;
}

/* ---- ports ----------------------------------------------------------------------- */

struct port_dump {
	struct l2f_port *v; /* out */
	unsigned n;	    /* found */
};

static int port_one(const struct link_info *li, void *arg, struct err *e)
{
	struct port_dump *d = arg;
	(void)e;
	if (!li->master || !li->alias[0] || d->n >= L2F_PORTS_MAX ||
	    strlen(li->name) >= sizeof(d->v[0].name))
		return 0;
	struct l2f_port *p = &d->v[d->n];
	if (l2_alias_parse(li->alias, &p->id) < 0)
		return 0;
	memcpy(p->name, li->name, strlen(li->name) + 1);
	d->n++;
	return 0;
}

int l2flows_ports(struct nl_sock *rt, struct l2f_port *ports, unsigned *n, struct err *e)
{
	struct port_dump d = {.v = ports};
	int rc = -EINTR;
	for (int i = 0; i < 3 && rc == -EINTR; i++) {
		d.n = 0;
		rc = link_dump(rt, port_one, &d, e);
	}
	*n = rc == 0 ? d.n : 0;
	return rc < 0 ? err_prefix(e, "l2flows: ports"), rc : 0;
}

/* ---- reading --------------------------------------------------------------------- */

/* The key's parts: ifname at 0, addresses at 16 and 16 + alen, ports after them. */
struct l2f_key {
	char iif[17];		  /* ingress port */
	struct ip_addr src, dst;  /* addresses */
	uint16_t sport, dport;	  /* ports */
};

static bool key_decode(const struct nft_elem_info *el, int family, struct l2f_key *k)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	if (el->len != 16 + 2 * alen + 8)
		return false;
	memset(k, 0, sizeof(*k));
	memcpy(k->iif, el->key, 16);
	k->src.family = k->dst.family = (uint8_t)family;
	memcpy(k->src.b, el->key + 16, alen);
	memcpy(k->dst.b, el->key + 16 + alen, alen);
	const uint8_t *p = el->key + 16 + 2 * alen;
	k->sport = (uint16_t)(p[0] << 8 | p[1]);
	k->dport = (uint16_t)(p[4] << 8 | p[5]);
	return true;
}

/* Hash of the tuple without the ingress port, src/dst swapped when rev. */
static uint64_t tuple_hash(const struct l2f_key *k, bool rev)
{
	uint8_t buf[36];
	size_t alen = k->src.family == AF_INET6 ? 16 : 4;
	const struct l2f_key *x = k;
	memcpy(buf, (rev ? x->dst : x->src).b, alen);
	memcpy(buf + alen, (rev ? x->src : x->dst).b, alen);
	uint16_t a = rev ? x->dport : x->sport, b = rev ? x->sport : x->dport;
	memcpy(buf + 2 * alen, &a, 2);
	memcpy(buf + 2 * alen + 2, &b, 2);
	return fnv(0xcbf29ce484222325ull, buf, 2 * alen + 4);
}

static int u64cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void syn_load(struct l2flows *lf, const struct nft_set_info *syn, int family)
{
	lf->n_syn = 0;
	if (!syn || syn->nelems == 0)
		return;
	if (syn->nelems > lf->syn_cap) {
		uint64_t *p = realloc(lf->syn, syn->nelems * sizeof(*p));
		if (!p)
			return; /* no SYNs known: directions by port */
		lf->syn = p;
		lf->syn_cap = syn->nelems;
	}
	for (size_t i = 0; i < syn->nelems; i++) {
		struct l2f_key k;
		if (key_decode(&syn->elems[i], family, &k))
			lf->syn[lf->n_syn++] = tuple_hash(&k, false);
	}
	qsort(lf->syn, lf->n_syn, sizeof(*lf->syn), u64cmp);
}

static bool syn_has(const struct l2flows *lf, uint64_t h)
{
	return lf->n_syn && bsearch(&h, lf->syn, lf->n_syn, sizeof(h), u64cmp) != NULL;
}

static bool port_has_ip(const struct l2f_port *p, const struct ip_addr *a)
{
	for (size_t i = 0; i < p->id.n_ips; i++)
		if (ip_eq(&p->id.ips[i], a))
			return true;
	return false;
}

void l2flows_begin(struct l2flows *lf)
{
	struct l2f_tab *nxt = &lf->tab[!lf->cur];
	if (nxt->n) /* an empty table is all zeros already: a node without L2 ports (or
		     * without their flows) never touches the table's pages */
		memset(nxt->v, 0, (nxt->mask + 1u) * sizeof(*nxt->v));
	nxt->n = 0;
}

void l2flows_end(struct l2flows *lf)
{
	lf->cur = !lf->cur;
}

void l2flows_feed(struct l2flows *lf, const struct nft_set_info *set,
		  const struct nft_set_info *syn, int family, uint8_t proto,
		  const struct l2f_port *ports, unsigned n,
		  void (*fn)(void *arg, const struct l2f_obs *o), void *arg)
{
	struct l2f_tab *old = &lf->tab[lf->cur], *nxt = &lf->tab[!lf->cur];
	syn_load(lf, proto == IPPROTO_TCP ? syn : NULL, family);
	for (size_t i = 0; set && i < set->nelems; i++) {
		const struct nft_elem_info *el = &set->elems[i];
		struct l2f_key k;
		if (!el->has_counter || !key_decode(el, family, &k))
			continue;
		uint64_t h = fnv(fnv(0xcbf29ce484222325ull, &proto, 1), el->key, el->len);
		const struct l2f_last *was = tab_find(old, h, false);
		uint64_t dp = was && el->packets >= was->pkts ? el->packets - was->pkts : el->packets;
		uint64_t db = was && el->bytes >= was->bytes ? el->bytes - was->bytes : el->bytes;
		struct l2f_last *now = tab_find(nxt, h, true);
		if (now)
			now->pkts = el->packets, now->bytes = el->bytes;
		if (dp == 0 && db == 0)
			continue;
		/* which way this element goes: the SYN's way is the original one */
		bool orig, syn_seen = syn_has(lf, tuple_hash(&k, false));
		if (syn_seen)
			orig = true;
		else if (syn_has(lf, tuple_hash(&k, true)))
			orig = false;
		else
			orig = k.sport >= k.dport; /* the client's port is the higher one */
		/* new: the original direction seen for the first time (TCP: with its SYN) */
		struct l2f_obs o = {.started = !was && orig && (proto != IPPROTO_TCP || syn_seen)};
		o.t.proto = proto;
		o.t.src = orig ? k.src : k.dst;
		o.t.dst = orig ? k.dst : k.src;
		o.t.sport = orig ? k.sport : k.dport;
		o.t.dport = orig ? k.dport : k.sport;
		if (orig)
			o.orig_bytes = db, o.orig_pkts = dp;
		else
			o.reply_bytes = db, o.reply_pkts = dp;
		for (unsigned p = 0; p < n; p++) {
			bool sent = strncmp(k.iif, ports[p].name, 16) == 0;
			bool got = !sent && port_has_ip(&ports[p], &k.dst);
			if (!sent && !got)
				continue;
			o.port = &ports[p];
			/* the VM opened it: it sent the original direction or got the reply */
			o.vm_opened = sent == orig;
			fn(arg, &o);
		}
	}
}

int l2flows_collect(struct l2flows *lf, struct nl_sock *s, const struct l2f_port *ports,
		    unsigned n, void (*fn)(void *arg, const struct l2f_obs *o), void *arg,
		    uint64_t *full, struct err *e)
{
	struct nft_state st[2]; /* the counting set, its syn set */
	int rc = 0;
	*full = 0;
	nft_state_init(&st[0], L2F_TABLE);
	nft_state_init(&st[1], L2F_TABLE);
	nft_state_family(&st[0], NFPROTO_BRIDGE);
	nft_state_family(&st[1], NFPROTO_BRIDGE);
	l2flows_begin(lf);
	for (int k = 0; k < L2F_SETS && rc == 0; k++) {
		int family = k < 2 ? AF_INET : AF_INET6;
		rc = nft_set_load(s, &st[0], SET_NAME[k], e);
		if (rc == 0 && SET_PROTO[k] == IPPROTO_TCP)
			rc = nft_set_load(s, &st[1], k < 2 ? "syn4" : "syn6", e);
		if (rc == 0 && !st[0].exists)
			rc = err_setx(e, ENOENT, "l2flows: set %s is gone", SET_NAME[k]);
		if (rc == 0)
			l2flows_feed(lf, nft_state_set(&st[0], SET_NAME[k]),
				     SET_PROTO[k] == IPPROTO_TCP
					 ? nft_state_set(&st[1], k < 2 ? "syn4" : "syn6")
					 : NULL,
				     family, SET_PROTO[k], ports, n, fn, arg);
	}
	if (rc == 0)
		rc = nft_rules_load(s, &st[0], e);
	if (rc == 0) {
		uint64_t sum = 0;
		for (size_t i = 0; i < st[0].nrules; i++)
			if (strncmp(st[0].rules[i].id, "full-", 5) == 0)
				sum += st[0].rules[i].packets;
		*full = sum >= lf->full_last ? sum - lf->full_last : sum;
		lf->full_last = sum;
		l2flows_end(lf);
	}
	nft_state_free(&st[0]);
	nft_state_free(&st[1]);
	return rc;
}
