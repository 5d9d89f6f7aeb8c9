/* mnpnft — the bridge-family table of MultiNetworkPolicy (mnpnft.h). */
#include "agent/mnpnft.h"

#include "agent/polnft.h"
#include "lib/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(MNFT_NAME_MAX == PNFT_NAME_MAX, "set names are made by pnft_set_name");

#define ETH_ARP 0x0806
#define ETH_IP6 0x86dd
#define ICMP6_RS 133
#define ICMP6_RA 134
#define ICMP6_NS 135
#define ICMP6_NA 136

static uint64_t fnv_add(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV0 0xcbf29ce484222325ull

/* A table under construction. */
struct tb {
	struct mnft_table *t; /* the table */
	unsigned cap_rules;   /* allocated rules of the last chain */
};

static void rule_seal(struct mnft_rule *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rule_seal(struct mnft_rule *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text) - 18, fmt, ap);
	va_end(ap);
	char own[64] = "";
	if (r->arp_own)
		ip_fmt(&r->own, own);
	char canon[NFT_ID_MAX * 2 + 160];
	int n = snprintf(canon, sizeof(canon), "%d|%s|%d|%d|%u|%d|%d|%s|%u|%s|%u|%d|%u|%d|%d|%u|%u|%d|"
			 "%d|%d|%s|%s", (int)r->ifwhich, r->ifname, r->if_neg, r->vmap,
			 r->ethertype, r->arp_own, r->arp_spa, own, r->icmp6, r->set,
			 r->set_family, r->saddr, r->l4proto, r->l4_not_tcp, r->sport, r->plo,
			 r->phi, r->tcp_not_open, r->counter, (int)r->verdict, r->target, r->text);
	uint64_t h = fnv_add(FNV0, canon, n > 0 ? (size_t)n : 0);
	snprintf(r->id, sizeof(r->id), "%016llx %s", (unsigned long long)h, r->text);
}

static struct mnft_chain *tb_chain(struct tb *b, const char *name, bool base, int prio)
{
	struct mnft_table *t = b->t;
	struct mnft_chain *c = realloc(t->chains, (t->n_chains + 1) * sizeof(*c));
	if (!c)
		return NULL;
	t->chains = c;
	c = &t->chains[t->n_chains++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->base = base;
	c->prio = prio;
	b->cap_rules = 0;
	return c;
}

static struct mnft_rule *tb_rule(struct tb *b, struct mnft_chain *c)
{
	if (c->n == b->cap_rules) {
		unsigned nc = b->cap_rules ? b->cap_rules * 2 : 8;
		struct mnft_rule *r = realloc(c->rules, nc * sizeof(*r));
		if (!r)
			return NULL;
		c->rules = r;
		b->cap_rules = nc;
	}
	struct mnft_rule *r = &c->rules[c->n++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* The set of peers of one family (named by content, as the routed table names its
 * sets), added once. */
static int tb_set(struct tb *b, const struct pol_ranges *peers, uint8_t family,
		  char name[MNFT_NAME_MAX], bool *empty)
{
	unsigned n = pnft_set_name(peers, family, name);
	*empty = n == 0;
	if (!n)
		return 0;
	struct mnft_table *t = b->t;
	for (unsigned i = 0; i < t->n_sets; i++)
		if (strcmp(t->sets[i].name, name) == 0)
			return 0;
	struct mnft_set *s = realloc(t->sets, (t->n_sets + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	t->sets = s;
	s = &t->sets[t->n_sets];
	memset(s, 0, sizeof(*s));
	if (!(s->r = calloc(n, sizeof(*s->r))))
		return -ENOMEM;
	t->n_sets++;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->family = family;
	for (unsigned i = 0; i < peers->n; i++)
		if (peers->r[i].family == family)
			s->r[s->n++] = peers->r[i];
	return 0;
}

static int tb_elem(struct tb *b, int m, const char *ifname, const char *chain)
{
	struct mnft_table *t = b->t;
	struct mnft_elem *el = realloc(t->map[m], (t->n_map[m] + 1) * sizeof(*el));
	if (!el)
		return -ENOMEM;
	t->map[m] = el;
	el = &el[t->n_map[m]++];
	memset(el, 0, sizeof(*el));
	snprintf(el->ifname, sizeof(el->ifname), "%s", ifname);
	snprintf(el->chain, sizeof(el->chain), "%s", chain);
	return 0;
}

static int base_chain(struct tb *b, bool egress)
{
	const char *cn = egress ? MNFT_CHAIN_EGRESS : MNFT_CHAIN_INGRESS;
	enum nft_meta w = egress ? NFT_IIFNAME : NFT_OIFNAME;
	const char *wn = egress ? "iifname" : "oifname";
	struct mnft_chain *c = tb_chain(b, cn, true, egress ? 0 : 1);
	struct mnft_rule *r;
	static const char *const pass[2] = { "kvt-*", "kvu-*" };
	if (!c)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->ifwhich = w, r->verdict = NFT_V_ACCEPT;
		snprintf(r->ifname, sizeof(r->ifname), "%s", pass[i]);
		rule_seal(r, "%s: %s %s accept (trunk side, uplink)", cn, wn, pass[i]);
	}
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->ifwhich = w, r->if_neg = true, r->verdict = NFT_V_ACCEPT;
	snprintf(r->ifname, sizeof(r->ifname), "kv*");
	rule_seal(r, "%s: not a kvnet port", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->ifwhich = w, r->vmap = true;
	snprintf(r->target, sizeof(r->target), "%s", egress ? MNFT_MAP_EG : MNFT_MAP_IN);
	rule_seal(r, "%s: %s vmap @%s", cn, wn, r->target);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->counter = true, r->verdict = NFT_V_DROP;
	rule_seal(r, "%s: kvnet port not programmed yet: closed", cn);
	return 0;
}

/* One allow rule per (family of its peers, port range); reply: the answers (sport, the
 * set matched against the other address, TCP not opening). */
static int allow_rules(struct tb *b, struct mnft_chain **cp, const struct pol_crule *cr,
		       bool egress, bool reply, const char *pfx)
{
	static const uint8_t fams[2] = { AF_INET, AF_INET6 };
	for (int f = 0; f < 2; f++) {
		char set[MNFT_NAME_MAX] = "";
		if (!cr->any_peer) {
			bool empty;
			if (tb_set(b, &cr->peers, fams[f], set, &empty) < 0)
				return -ENOMEM;
			if (empty)
				continue;
		} else if (f == 1) {
			break; /* any peer: one rule for both families */
		}
		/* any port: every protocol; a reply then is TCP not opening, or not TCP */
		unsigned np = cr->any_port ? (reply ? 2 : 1) : cr->n_ports;
		for (unsigned p = 0; p < np; p++) {
			struct mnft_rule *r = tb_rule(b, *cp);
			if (!r)
				return -ENOMEM;
			if (!cr->any_peer) {
				snprintf(r->set, sizeof(r->set), "%s", set);
				r->set_family = fams[f];
				/* the peer is the destination of what the VM sends; a reply to
				 * what it received goes to the sender too */
				r->saddr = !egress;
			}
			char port[48] = "any port";
			if (!cr->any_port) {
				const struct pol_cport *pc = &cr->ports[p];
				r->l4proto = pc->proto;
				r->sport = reply;
				if (!(pc->lo <= 1 && pc->hi == 65535))
					r->plo = pc->lo, r->phi = pc->hi;
				r->tcp_not_open = reply && pc->proto == POL_TCP;
				snprintf(port, sizeof(port), "%s %s:%u-%u", reply ? "sport" : "dport",
					 pol_proto_name(pc->proto), pc->lo, pc->hi);
			} else if (reply) {
				if (p == 0)
					r->l4proto = POL_TCP, r->tcp_not_open = true;
				else
					r->l4_not_tcp = true;
				snprintf(port, sizeof(port), "%s", p == 0 ? "tcp not opening" : "not tcp");
			}
			r->counter = true, r->verdict = NFT_V_ACCEPT;
			rule_seal(r, "%s%s %s %s", pfx, cr->id,
				  cr->any_peer ? "any" : fams[f] == AF_INET ? "v4" : "v6", port);
		}
	}
	return 0;
}

static int ep_chain(struct tb *b, const struct pol_cep *ep, enum pol_dir d)
{
	bool egress = d == POL_EGRESS;
	const char *dn = egress ? "egress" : "ingress";
	char cn[MNFT_NAME_MAX];
	snprintf(cn, sizeof(cn), "%c_%s", egress ? 'e' : 'i', ep->ifname);
	struct mnft_chain *c = tb_chain(b, cn, false, 0);
	struct mnft_rule *r;
	if (!c)
		return -ENOMEM;
	const struct pol_cdir *cd = &ep->dir[d], *other = &ep->dir[egress ? POL_INGRESS : POL_EGRESS];
	if (!cd->isolated) {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->counter = true, r->verdict = NFT_V_ACCEPT;
		rule_seal(r, "%s/%s %s: not isolated", ep->ns, ep->name, dn);
		return 0;
	}
	/* ARP of its own IPv4 addresses, neighbour discovery */
	for (unsigned i = 0; i < ep->n_ips; i++) {
		if (ep->ips[i].family != AF_INET)
			continue;
		char ab[IP_STRLEN];
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->ethertype = ETH_ARP, r->arp_own = true, r->arp_spa = egress, r->own = ep->ips[i];
		r->verdict = NFT_V_ACCEPT;
		rule_seal(r, "%s/%s %s: arp %s %s", ep->ns, ep->name, dn,
			  egress ? "saddr ip" : "daddr ip", ip_fmt(&ep->ips[i], ab));
	}
	static const uint8_t nd[2][3] = { { ICMP6_RA, ICMP6_NS, ICMP6_NA },
					   { ICMP6_RS, ICMP6_NS, ICMP6_NA } };
	for (int i = 0; i < 3; i++) {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->ethertype = ETH_IP6, r->icmp6 = nd[egress][i], r->verdict = NFT_V_ACCEPT;
		rule_seal(r, "%s/%s %s: icmpv6 type %u", ep->ns, ep->name, dn, nd[egress][i]);
	}
	for (unsigned i = 0; i < cd->n_rules; i++)
		if (allow_rules(b, &c, &cd->rules[i], egress, false, "") < 0)
			return -ENOMEM;
	/* answers to what the other direction allows */
	if (other->isolated) {
		for (unsigned i = 0; i < other->n_rules; i++)
			if (allow_rules(b, &c, &other->rules[i], egress, true, "reply ") < 0)
				return -ENOMEM;
	} else {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->l4proto = POL_TCP, r->tcp_not_open = true, r->counter = true;
		r->verdict = NFT_V_ACCEPT;
		rule_seal(r, "%s/%s %s: tcp not opening (answers; %s not isolated)", ep->ns,
			  ep->name, dn, egress ? "ingress" : "egress");
	}
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->counter = true, r->verdict = NFT_V_DROP;
	rule_seal(r, "%s/%s %s: default deny", ep->ns, ep->name, dn);
	return 0;
}

static int cmp_set(const void *a, const void *b)
{
	return strcmp(((const struct mnft_set *)a)->name, ((const struct mnft_set *)b)->name);
}

static int cmp_elem(const void *a, const void *b)
{
	return strcmp(((const struct mnft_elem *)a)->ifname,
		      ((const struct mnft_elem *)b)->ifname);
}

int mnft_build(const struct pol_ruleset *rss, unsigned n_rs, struct mnft_table *out,
	       struct err *e)
{
	memset(out, 0, sizeof(*out));
	struct tb b = { .t = out };
	int rc;
	if (base_chain(&b, true) < 0 || base_chain(&b, false) < 0)
		goto nomem;
	for (unsigned k = 0; k < n_rs; k++)
	for (unsigned i = 0; i < rss[k].n; i++) {
		const struct pol_cep *ep = &rss[k].eps[i];
		if (!ep->ifname || !*ep->ifname)
			continue;
		if (strlen(ep->ifname) >= 16 || strlen(ep->ifname) + 3 > MNFT_NAME_MAX) {
			rc = err_setx(e, EINVAL, "mnp: port name %s too long", ep->ifname);
			goto fail;
		}
		char cn[MNFT_NAME_MAX];
		if (ep_chain(&b, ep, POL_EGRESS) < 0 || ep_chain(&b, ep, POL_INGRESS) < 0)
			goto nomem;
		snprintf(cn, sizeof(cn), "e_%s", ep->ifname);
		if (tb_elem(&b, 0, ep->ifname, cn) < 0)
			goto nomem;
		snprintf(cn, sizeof(cn), "i_%s", ep->ifname);
		if (tb_elem(&b, 1, ep->ifname, cn) < 0)
			goto nomem;
	}
	for (int m = 0; m < 2; m++) {
		if (out->n_map[m])
			qsort(out->map[m], out->n_map[m], sizeof(struct mnft_elem), cmp_elem);
		for (unsigned i = 1; i < out->n_map[m]; i++)
			if (strcmp(out->map[m][i - 1].ifname, out->map[m][i].ifname) == 0) {
				rc = err_setx(e, EINVAL, "mnp: port %s belongs to two endpoints",
					      out->map[m][i].ifname);
				goto fail;
			}
	}
	if (out->n_sets)
		qsort(out->sets, out->n_sets, sizeof(*out->sets), cmp_set);
	return 0;
nomem:
	rc = err_setx(e, ENOMEM, "mnp: building table %s: out of memory", MNFT_TABLE);
fail:
	mnft_table_free(out);
	return rc;
}

void mnft_table_free(struct mnft_table *t)
{
	for (unsigned i = 0; i < t->n_chains; i++)
		free(t->chains[i].rules);
	for (unsigned i = 0; i < t->n_sets; i++)
		free(t->sets[i].r);
	free(t->chains);
	free(t->sets);
	free(t->map[0]);
	free(t->map[1]);
	memset(t, 0, sizeof(*t));
}

const struct mnft_chain *mnft_chain_find(const struct mnft_table *t, const char *name)
{
	for (unsigned i = 0; i < t->n_chains; i++)
		if (strcmp(t->chains[i].name, name) == 0)
			return &t->chains[i];
	return NULL;
}

/* Map m of st holds exactly the elements of t (names and goto chains). */
static bool map_matches(const struct mnft_table *t, int m, const struct nft_state *st)
{
	const struct nft_set_info *si = nft_state_set(st, m ? MNFT_MAP_IN : MNFT_MAP_EG);
	if (!si || si->nelems != t->n_map[m])
		return false;
	for (unsigned i = 0; i < t->n_map[m]; i++) {
		bool found = false;
		for (size_t j = 0; j < si->nelems && !found; j++) {
			const struct nft_elem_info *ei = &si->elems[j];
			found = strncmp((const char *)ei->key, t->map[m][i].ifname, ei->len) == 0 &&
				strlen(t->map[m][i].ifname) <= ei->len &&
				strcmp(ei->chain, t->map[m][i].chain) == 0;
		}
		if (!found)
			return false;
	}
	return true;
}

bool mnft_matches(const struct mnft_table *t, const struct nft_state *st)
{
	if (!st->exists || st->nchains != t->n_chains || st->nsets != t->n_sets + 2)
		return false;
	for (unsigned i = 0; i < t->n_sets; i++)
		if (!nft_state_set(st, t->sets[i].name))
			return false;
	if (!map_matches(t, 0, st) || !map_matches(t, 1, st))
		return false;
	size_t k = 0;
	for (unsigned i = 0; i < t->n_chains; i++) {
		const struct mnft_chain *c = &t->chains[i];
		if (!nft_state_chain(st, c->name))
			return false;
		/* the state's rules are grouped by chain, in chain order */
		unsigned n = 0;
		for (size_t j = 0; j < st->nrules; j++) {
			const struct nft_rule_info *ri = &st->rules[j];
			if (strcmp(ri->chain, c->name) != 0)
				continue;
			if (n >= c->n || strcmp(ri->id, c->rules[n].id) != 0)
				return false;
			n++;
			k++;
		}
		if (n != c->n)
			return false;
	}
	return k == st->nrules;
}

static int put_set(struct nft_batch *b, const struct mnft_set *s)
{
	return pnft_batch_set(b, s->name, s->family, s->r, s->n);
}

static int put_rule(struct nft_batch *b, const char *chain, const struct mnft_rule *r)
{
	nft_rule_begin(b, NFT_RULE_APPEND, chain, 0, r->id);
	if (r->ifname[0] && !r->if_neg) {
		nft_match_ifname(b, r->ifwhich, r->ifname);
	} else if (r->ifname[0]) {
		size_t n = strlen(r->ifname);
		bool prefix = n && r->ifname[n - 1] == '*';
		char key[16] = { 0 };
		memcpy(key, r->ifname, prefix ? n - 1 : n);
		nft_expr_meta(b, r->ifwhich == NFT_IIFNAME ? NFT_META_IIFNAME : NFT_META_OIFNAME,
			      NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, key, prefix ? n - 1 : sizeof(key));
	}
	if (r->ethertype) {
		uint16_t et = htons(r->ethertype);
		nft_expr_meta(b, NFT_META_PROTOCOL, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &et, 2);
	}
	if (r->arp_own) {
		/* Ethernet/IPv4 ARP: sender address at 14, target address at 24 */
		nft_expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, r->arp_spa ? 14 : 24, 4, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, r->own.b, 4);
	}
	if (r->icmp6) {
		uint8_t p = 58;
		nft_expr_meta(b, NFT_META_L4PROTO, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &p, 1);
		nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &r->icmp6, 1);
	}
	if (r->set[0])
		nft_match_addr_set(b, r->saddr ? NFT_SRC : NFT_DST, r->set_family, r->set, false);
	if (r->l4proto) {
		nft_match_l4proto(b, r->l4proto);
		if (r->plo || r->phi)
			nft_match_port(b, r->sport ? NFT_SRC : NFT_DST, r->plo, r->phi);
	}
	if (r->l4_not_tcp) {
		uint8_t p = POL_TCP;
		nft_expr_meta(b, NFT_META_L4PROTO, NFT_REG_1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, &p, 1);
	}
	if (r->tcp_not_open) {
		/* tcp flags & (syn | ack) != syn */
		uint8_t mask = 0x12, zero = 0, syn = 0x02;
		nft_expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
		nft_expr_bitwise(b, NFT_REG_1, NFT_REG_1, &mask, &zero, 1);
		nft_expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, &syn, 1);
	}
	if (r->vmap)
		nft_vmap(b, r->ifwhich, r->target);
	if (r->counter)
		nft_counter(b);
	if (!r->vmap)
		nft_verdict(b, r->verdict, NULL);
	return nft_rule_end(b);
}

int mnft_batch(const struct mnft_table *t, bool exists, struct nft_batch *b)
{
	static const struct nft_set_spec mapspec[2] = {
		{ .name = MNFT_MAP_EG, .key = NFT_KEY_IFNAME, .vmap = true },
		{ .name = MNFT_MAP_IN, .key = NFT_KEY_IFNAME, .vmap = true },
	};
	if (exists)
		nft_table(b, NFT_TABLE_DELETE);
	nft_table(b, NFT_TABLE_ADD);
	for (unsigned i = 0; i < t->n_sets; i++)
		put_set(b, &t->sets[i]);
	nft_set_add(b, &mapspec[0]);
	nft_set_add(b, &mapspec[1]);
	/* every chain before any rule or map element refers to one; base chains have no
	 * rules until the end of the batch, which the kernel applies as a whole */
	for (unsigned i = 0; i < t->n_chains; i++) {
			const struct mnft_chain *c = &t->chains[i];
			struct nft_chain_spec cs = { .name = c->name,
						     .hook = c->base ? NFT_HOOK_FORWARD : NFT_HOOK_NONE,
						     .priority = c->prio };
			nft_chain_add(b, &cs);
	}
	for (unsigned i = 0; i < t->n_chains; i++)
		if (!t->chains[i].base)
			for (unsigned j = 0; j < t->chains[i].n; j++)
				put_rule(b, t->chains[i].name, &t->chains[i].rules[j]);
	for (int m = 0; m < 2; m++)
		for (unsigned i = 0; i < t->n_map[m]; i++) {
			struct nft_elem el;
			memset(&el, 0, sizeof(el));
			if (nft_elem_ifname(&el, t->map[m][i].ifname, NFT_V_GOTO,
					    t->map[m][i].chain) < 0)
				return -EINVAL;
			nft_elems(b, &mapspec[m], false, &el, 1);
		}
	for (unsigned i = 0; i < t->n_chains; i++)
		if (t->chains[i].base)
			for (unsigned j = 0; j < t->chains[i].n; j++)
				put_rule(b, t->chains[i].name, &t->chains[i].rules[j]);
	return b->rc;
}
