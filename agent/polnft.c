/* polnft — the nf_tables design of NetworkPolicy and its difference (see polnft.h). */
#include "agent/polnft.h"

#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NFPROTO_V4 2
#define NFPROTO_V6 10

/* ---- small helpers ------------------------------------------------------------------ */

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

static int grow(void **arr, unsigned *cap, unsigned need, size_t elem)
{
	if (need <= *cap)
		return 0;
	unsigned nc = *cap ? *cap * 2 : 8;
	while (nc < need)
		nc *= 2;
	void *p = realloc(*arr, (size_t)nc * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

void pnft_chain_name(char out[PNFT_NAME_MAX], bool egress, const char *ifname)
{
	snprintf(out, PNFT_NAME_MAX, "%c_%s", egress ? 'e' : 'i', ifname);
}

/* A table under construction: capacities beside the arrays. */
struct tb {
	struct pnft_table *t; /* the table */
	unsigned cap_chains;  /* allocated chains */
	unsigned cap_sets;    /* allocated sets */
	unsigned cap_e[2];    /* allocated map elements */
	unsigned cap_rules;   /* allocated rules of the last chain */
};

static struct pnft_chain *tb_chain(struct tb *b, const char *name, bool base, int prio)
{
	struct pnft_table *t = b->t;
	if (grow((void **)&t->chains, &b->cap_chains, t->n_chains + 1, sizeof(*t->chains)) < 0)
		return NULL;
	struct pnft_chain *c = &t->chains[t->n_chains++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->base = base;
	c->prio = prio;
	b->cap_rules = 0;
	return c;
}

/* Seal rule r: user data "HASH16 TEXT" from its whole content and the readable text. */
static void rule_seal(struct pnft_rule *r, const char *fmt, ...)
{
	char text[PNFT_UDATA_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	char canon[PNFT_UDATA_MAX * 2 + 128];
	int n = snprintf(canon, sizeof(canon), "%d|%u|%u|%d|%s|%u|%u|%u|%d|%s|%d|%d|%d|%s",
			 (int)r->not_prefix, r->ct_state, r->nfproto, r->saddr, r->set,
			 r->l4proto, r->dport_lo, r->dport_hi, (int)r->vmap, r->target,
			 r->counter, (int)r->verdict, r->tail, text);
	if (r->log || r->limit_rate) /* tables built before nflog keep their hashes */
		n += snprintf(canon + n, sizeof(canon) - (size_t)n, "|%u|%d|%u|%s",
			      r->limit_rate, r->log, r->log_group, r->log_prefix);
	if (r->l2_prefix != PNFT_IF_NONE) /* likewise for the rules before it */
		n += snprintf(canon + n, sizeof(canon) - (size_t)n, "|l2:%d", (int)r->l2_prefix);
	uint64_t h = fnv_add(FNV0, canon, n > 0 ? (size_t)n : 0);
	snprintf(r->udata, sizeof(r->udata), "%016llx %.*s", (unsigned long long)h,
		 PNFT_UDATA_MAX - 18, text);
}

static struct pnft_rule *tb_rule(struct tb *b, struct pnft_chain *c)
{
	if (grow((void **)&c->rules, &b->cap_rules, c->n + 1, sizeof(*c->rules)) < 0)
		return NULL;
	struct pnft_rule *r = &c->rules[c->n++];
	memset(r, 0, sizeof(*r));
	return r;
}

unsigned pnft_set_name(const struct pol_ranges *peers, uint8_t family,
		       char name[PNFT_NAME_MAX])
{
	uint64_t h = FNV0;
	unsigned n = 0;
	h = fnv_add(h, &family, 1);
	for (unsigned i = 0; i < peers->n; i++) {
		if (peers->r[i].family != family)
			continue;
		uint8_t buf[32];
		for (int k = 0; k < 16; k++) {
			buf[k] = (uint8_t)(peers->r[i].lo >> (8 * (15 - k)));
			buf[16 + k] = (uint8_t)(peers->r[i].hi >> (8 * (15 - k)));
		}
		h = fnv_add(h, buf, sizeof(buf));
		n++;
	}
	if (n)
		snprintf(name, PNFT_NAME_MAX, "p%c_%016llx", family == AF_INET ? '4' : '6',
			 (unsigned long long)h);
	return n;
}

/* The set of peers of one family (named by content), added once; its name in name. */
static int tb_set(struct tb *b, const struct pol_ranges *peers, uint8_t family,
		  char name[PNFT_NAME_MAX], bool *empty)
{
	unsigned n = pnft_set_name(peers, family, name);
	*empty = n == 0;
	if (!n)
		return 0;
	struct pnft_table *t = b->t;
	for (unsigned i = 0; i < t->n_sets; i++)
		if (strcmp(t->sets[i].name, name) == 0)
			return 0;
	if (grow((void **)&t->sets, &b->cap_sets, t->n_sets + 1, sizeof(*t->sets)) < 0)
		return -ENOMEM;
	struct pnft_set *s = &t->sets[t->n_sets];
	memset(s, 0, sizeof(*s));
	s->r = calloc(n, sizeof(*s->r));
	if (!s->r)
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
	struct pnft_map *map = &b->t->maps[m];
	if (grow((void **)&map->e, &b->cap_e[m], map->n + 1, sizeof(*map->e)) < 0)
		return -ENOMEM;
	struct pnft_elem *el = &map->e[map->n++];
	memset(el, 0, sizeof(*el));
	snprintf(el->ifname, sizeof(el->ifname), "%s", ifname);
	snprintf(el->chain, sizeof(el->chain), "%s", chain);
	return 0;
}

static int base_chain(struct tb *b, bool egress, const struct pnft_opts *o)
{
	const char *cn = egress ? PNFT_CHAIN_EGRESS : PNFT_CHAIN_INGRESS;
	enum pnft_if ifm = egress ? PNFT_IF_IIF : PNFT_IF_OIF;
	struct pnft_chain *c = tb_chain(b, cn, true, egress ? 0 : 1);
	struct pnft_rule *r;
	/* bridged frames of kvnet's L2 bridges (br_netfilter): not a routed endpoint's */
	if (!c || !(r = tb_rule(b, c)))
		return -ENOMEM;
	r->l2_prefix = ifm, r->verdict = PNFT_V_ACCEPT, r->tail = true;
	rule_seal(r, "%s: bridged by a kvnet L2 bridge", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->not_prefix = ifm, r->verdict = PNFT_V_ACCEPT, r->tail = true;
	rule_seal(r, "%s: not a kvnet veth", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->ct_state = PNFT_CT_ESTABLISHED | PNFT_CT_RELATED, r->verdict = PNFT_V_ACCEPT;
	r->tail = true;
	rule_seal(r, "%s: established,related", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->ct_state = PNFT_CT_INVALID, r->counter = true, r->verdict = PNFT_V_DROP;
	r->tail = true;
	rule_seal(r, "%s: invalid", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->vmap = ifm, r->tail = true;
	snprintf(r->target, sizeof(r->target), "%s", egress ? PNFT_MAP_EG : PNFT_MAP_IN);
	rule_seal(r, "%s: endpoint chains", cn);
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->counter = true, r->tail = true;
	r->verdict = o->fail_open ? PNFT_V_ACCEPT : PNFT_V_DROP;
	rule_seal(r, "%s: kvnet veth not programmed yet: %s", cn,
		  o->fail_open ? "open (policy_timeout_action continue)" : "closed");
	return 0;
}

static int ep_chain(struct tb *b, const struct pol_cep *ep, enum pol_dir d,
		    const struct pnft_opts *o)
{
	bool egress = d == POL_EGRESS;
	const char *dn = egress ? "egress" : "ingress";
	char cn[PNFT_NAME_MAX];
	pnft_chain_name(cn, egress, ep->ifname);
	struct pnft_chain *c = tb_chain(b, cn, false, 0);
	if (!c)
		return -ENOMEM;
	const struct pol_cdir *cd = &ep->dir[d];
	struct pnft_rule *r;
	if (!cd->isolated) {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->counter = true, r->verdict = PNFT_V_ACCEPT, r->tail = true;
		rule_seal(r, "%s/%s %s: not isolated", ep->ns, ep->name, dn);
		return 0;
	}
	for (unsigned i = 0; i < cd->n_rules; i++) {
		const struct pol_crule *cr = &cd->rules[i];
		static const uint8_t fams[2] = { AF_INET, AF_INET6 };
		for (int f = 0; f < (cr->any_peer ? 1 : 2); f++) {
			char set[PNFT_NAME_MAX] = "";
			if (!cr->any_peer) {
				bool empty;
				if (tb_set(b, &cr->peers, fams[f], set, &empty) < 0)
					return -ENOMEM;
				if (empty)
					continue;
			}
			unsigned np = cr->any_port ? 1 : cr->n_ports;
			for (unsigned p = 0; p < np; p++) {
				/* c->rules may move: take r after every tb_set */
				if (!(r = tb_rule(b, c)))
					return -ENOMEM;
				if (!cr->any_peer) {
					r->nfproto = fams[f] == AF_INET ? NFPROTO_V4 : NFPROTO_V6;
					r->saddr = !egress;
					snprintf(r->set, sizeof(r->set), "%s", set);
				}
				char port[32] = "any port";
				if (!cr->any_port) {
					const struct pol_cport *cp = &cr->ports[p];
					r->l4proto = cp->proto;
					r->dport_lo = cp->lo, r->dport_hi = cp->hi;
					if (cp->lo == 0 && cp->hi == 65535)
						r->dport_lo = r->dport_hi = 0;
					snprintf(port, sizeof(port), "%s:%u-%u",
						 pol_proto_name(cp->proto), cp->lo, cp->hi);
				}
				r->counter = true, r->verdict = PNFT_V_ACCEPT;
				rule_seal(r, "%s %s %s", cr->id,
					  cr->any_peer ? "any" : fams[f] == AF_INET ? "v4" : "v6",
					  port);
			}
		}
	}
	if (o->nflog) {
		if (!(r = tb_rule(b, c)))
			return -ENOMEM;
		r->limit_rate = o->nflog_rate ? o->nflog_rate : 1;
		r->log = true, r->log_group = o->nflog_group, r->tail = true;
		snprintf(r->log_prefix, sizeof(r->log_prefix), "%s%s", PNFT_LOG_PREFIX, cn);
		rule_seal(r, "%s/%s %s: deny log", ep->ns, ep->name, dn);
	}
	if (!(r = tb_rule(b, c)))
		return -ENOMEM;
	r->counter = true, r->verdict = PNFT_V_DROP, r->tail = true;
	rule_seal(r, "%s/%s %s: default deny", ep->ns, ep->name, dn);
	return 0;
}

static int cmp_chain(const void *a, const void *b)
{
	const struct pnft_chain *x = a, *y = b;
	if (x->base != y->base)
		return x->base ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_set(const void *a, const void *b)
{
	return strcmp(((const struct pnft_set *)a)->name, ((const struct pnft_set *)b)->name);
}

static int cmp_elem(const void *a, const void *b)
{
	return strcmp(((const struct pnft_elem *)a)->ifname,
		      ((const struct pnft_elem *)b)->ifname);
}

int pnft_build(const struct pol_ruleset *rs, const struct pnft_opts *o,
	       struct pnft_table *out, struct err *e)
{
	static const struct pnft_opts none = { 0 };
	memset(out, 0, sizeof(*out));
	out->present = true;
	out->has_map[0] = out->has_map[1] = true;
	snprintf(out->maps[0].name, sizeof(out->maps[0].name), "%s", PNFT_MAP_EG);
	snprintf(out->maps[1].name, sizeof(out->maps[1].name), "%s", PNFT_MAP_IN);
	struct tb b = { .t = out };
	if (!o)
		o = &none;
	int rc = -ENOMEM;
	if (base_chain(&b, true, o) < 0 || base_chain(&b, false, o) < 0)
		goto nomem;
	for (unsigned i = 0; i < rs->n; i++) {
		const struct pol_cep *ep = &rs->eps[i];
		if (!ep->ifname || !*ep->ifname)
			continue;
		if (strlen(ep->ifname) >= PNFT_IFNAME_MAX) {
			rc = err_setx(e, EINVAL, "policy: %s/%s: interface name %s is too long",
				      ep->ns, ep->name, ep->ifname);
			goto fail;
		}
		char cn[PNFT_NAME_MAX];
		for (int d = 0; d < POL_NDIR; d++)
			if (ep_chain(&b, ep, (enum pol_dir)d, o) < 0)
				goto nomem;
		pnft_chain_name(cn, true, ep->ifname);
		if (tb_elem(&b, 0, ep->ifname, cn) < 0)
			goto nomem;
		pnft_chain_name(cn, false, ep->ifname);
		if (tb_elem(&b, 1, ep->ifname, cn) < 0)
			goto nomem;
	}
	for (int m = 0; m < 2; m++) {
		if (out->maps[m].n)
			qsort(out->maps[m].e, out->maps[m].n, sizeof(struct pnft_elem),
			      cmp_elem);
		for (unsigned i = 1; i < out->maps[m].n; i++)
			if (strcmp(out->maps[m].e[i - 1].ifname, out->maps[m].e[i].ifname) == 0) {
				rc = err_setx(e, EINVAL, "policy: interface %s belongs to two "
						  "endpoints", out->maps[m].e[i].ifname);
				goto fail;
			}
	}
	qsort(out->chains, out->n_chains, sizeof(*out->chains), cmp_chain);
	if (out->n_sets)
		qsort(out->sets, out->n_sets, sizeof(*out->sets), cmp_set);
	return 0;
nomem:
	rc = err_setx(e, ENOMEM, "policy: nf_tables design: out of memory");
fail:
	pnft_table_free(out);
	return rc;
}

void pnft_table_free(struct pnft_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n_chains; i++) {
		free(t->chains[i].rules);
		free(t->chains[i].handles);
	}
	free(t->chains);
	for (unsigned i = 0; i < t->n_sets; i++)
		free(t->sets[i].r);
	free(t->sets);
	free(t->maps[0].e);
	free(t->maps[1].e);
	memset(t, 0, sizeof(*t));
}

const struct pnft_chain *pnft_chain_find(const struct pnft_table *t, const char *name)
{
	for (unsigned i = 0; i < t->n_chains; i++)
		if (strcmp(t->chains[i].name, name) == 0)
			return &t->chains[i];
	return NULL;
}

const struct pnft_set *pnft_set_find(const struct pnft_table *t, const char *name)
{
	for (unsigned i = 0; i < t->n_sets; i++)
		if (strcmp(t->sets[i].name, name) == 0)
			return &t->sets[i];
	return NULL;
}

static const struct pnft_elem *elem_find(const struct pnft_map *m, const char *ifname)
{
	for (unsigned i = 0; i < m->n; i++)
		if (strcmp(m->e[i].ifname, ifname) == 0)
			return &m->e[i];
	return NULL;
}

bool pnft_map_has(const struct pnft_table *t, int m, const char *ifname, const char *chain)
{
	if (m < 0 || m > 1)
		return false;
	const struct pnft_elem *el = elem_find(&t->maps[m], ifname);
	return el && strcmp(el->chain, chain) == 0;
}

/* ---- text ---------------------------------------------------------------------------- */

struct sb {
	char *p;      /* text (heap) */
	size_t n;     /* length */
	size_t cap;   /* allocated */
	bool failed;  /* out of memory */
};

static void sb_add(struct sb *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->failed = true;
			return;
		}
		if (s->p && s->n + (size_t)n < s->cap) {
			s->n += (size_t)n;
			return;
		}
		size_t nc = s->cap ? s->cap * 2 : 4096;
		while (nc < s->n + (size_t)n + 1)
			nc *= 2;
		char *q = realloc(s->p, nc);
		if (!q) {
			s->failed = true;
			return;
		}
		s->p = q;
		s->cap = nc;
	}
}

static void range_text(struct sb *s, const struct pol_range *r)
{
	struct ip_addr a = { .family = r->family }, b = { .family = r->family };
	size_t n = r->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < n; i++) {
		a.b[i] = (uint8_t)(r->lo >> (8 * (n - 1 - i)));
		b.b[i] = (uint8_t)(r->hi >> (8 * (n - 1 - i)));
	}
	char x[64], y[64];
	if (r->lo == r->hi)
		sb_add(s, "%s", ip_fmt(&a, x));
	else
		sb_add(s, "%s-%s", ip_fmt(&a, x), ip_fmt(&b, y));
}

static void rule_text(struct sb *s, const struct pnft_rule *r)
{
	sb_add(s, "\t\t");
	if (r->l2_prefix != PNFT_IF_NONE)
		sb_add(s, "%s \"%s*\" ", r->l2_prefix == PNFT_IF_IIF ? "iifname" : "oifname",
		       PNFT_L2_PREFIX);
	if (r->not_prefix != PNFT_IF_NONE)
		sb_add(s, "%s != \"%s*\" ", r->not_prefix == PNFT_IF_IIF ? "iifname" : "oifname",
		       PNFT_PREFIX);
	if (r->ct_state) {
		sb_add(s, "ct state ");
		const char *sep = "";
		if (r->ct_state & PNFT_CT_INVALID)
			sb_add(s, "%sinvalid", sep), sep = ",";
		if (r->ct_state & PNFT_CT_ESTABLISHED)
			sb_add(s, "%sestablished", sep), sep = ",";
		if (r->ct_state & PNFT_CT_RELATED)
			sb_add(s, "%srelated", sep);
		sb_add(s, " ");
	}
	if (r->set[0])
		sb_add(s, "%s %s @%s ", r->nfproto == NFPROTO_V4 ? "ip" : "ip6",
		       r->saddr ? "saddr" : "daddr", r->set);
	if (r->l4proto) {
		sb_add(s, "meta l4proto %u ", r->l4proto);
		if (r->dport_lo || r->dport_hi) {
			if (r->dport_lo == r->dport_hi)
				sb_add(s, "th dport %u ", r->dport_lo);
			else
				sb_add(s, "th dport %u-%u ", r->dport_lo, r->dport_hi);
		}
	}
	if (r->vmap != PNFT_IF_NONE)
		sb_add(s, "%s vmap @%s ", r->vmap == PNFT_IF_IIF ? "iifname" : "oifname",
		       r->target);
	if (r->limit_rate)
		sb_add(s, "limit rate %u/second burst %u packets ", r->limit_rate, r->limit_rate);
	if (r->log)
		sb_add(s, "log prefix \"%s\" group %u ", r->log_prefix, r->log_group);
	if (r->counter)
		sb_add(s, "counter ");
	switch (r->verdict) {
	case PNFT_V_NONE:
		break;
	case PNFT_V_ACCEPT:
		sb_add(s, "accept ");
		break;
	case PNFT_V_DROP:
		sb_add(s, "drop ");
		break;
	case PNFT_V_GOTO:
		sb_add(s, "goto %s ", r->target);
		break;
	}
	sb_add(s, "comment \"%s\"\n", r->udata);
}

char *pnft_text(const struct pnft_table *t)
{
	struct sb s = { 0 };
	sb_add(&s, "table inet %s {\n", PNFT_TABLE);
	for (unsigned i = 0; i < t->n_sets; i++) {
		const struct pnft_set *st = &t->sets[i];
		sb_add(&s, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = { ",
		       st->name, st->family == AF_INET ? "ipv4_addr" : "ipv6_addr");
		for (unsigned k = 0; k < st->n; k++) {
			sb_add(&s, k ? ", " : "");
			range_text(&s, &st->r[k]);
		}
		sb_add(&s, " }\n\t}\n");
	}
	for (int m = 0; m < 2; m++) {
		const struct pnft_map *mp = &t->maps[m];
		sb_add(&s, "\tmap %s {\n\t\ttype ifname : verdict\n", mp->name);
		if (mp->n) {
			sb_add(&s, "\t\telements = { ");
			for (unsigned k = 0; k < mp->n; k++)
				sb_add(&s, "%s\"%s\" : goto %s", k ? ", " : "", mp->e[k].ifname,
				       mp->e[k].chain);
			sb_add(&s, " }\n");
		}
		sb_add(&s, "\t}\n");
	}
	/* regular chains first: base chains' vmaps jump into them */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < t->n_chains; i++) {
			const struct pnft_chain *c = &t->chains[i];
			if (c->base != (pass == 1))
				continue;
			sb_add(&s, "\tchain %s {\n", c->name);
			if (c->base)
				sb_add(&s, "\t\ttype filter hook forward priority %d; policy accept;\n",
				       c->prio);
			for (unsigned k = 0; k < c->n; k++)
				rule_text(&s, &c->rules[k]);
			sb_add(&s, "\t}\n");
		}
	sb_add(&s, "}\n");
	if (s.failed) {
		free(s.p);
		return NULL;
	}
	return s.p;
}

/* ---- the difference ------------------------------------------------------------------ */

static struct pnft_op *op_add(struct pnft_plan *p, enum pnft_op_kind k, const char *name)
{
	if (grow((void **)&p->ops, &p->cap, p->n + 1, sizeof(*p->ops)) < 0)
		return NULL;
	struct pnft_op *o = &p->ops[p->n++];
	memset(o, 0, sizeof(*o));
	o->kind = k;
	snprintf(o->name, sizeof(o->name), "%s", name);
	return o;
}

void pnft_plan_free(struct pnft_plan *p)
{
	if (!p)
		return;
	free(p->ops);
	memset(p, 0, sizeof(*p));
}

static int rule_index(const struct pnft_chain *c, const char *udata)
{
	for (unsigned i = 0; i < c->n; i++)
		if (strcmp(c->rules[i].udata, udata) == 0)
			return (int)i;
	return -1;
}

/* Whether cur's chain can become want's by deleting stale rules, inserting missing
 * non-tail rules at the head and appending missing tail rules: kept rules must have
 * every tail rule after every non-tail one, kept tail rules in want's order, and no
 * missing tail rule may have to go before a kept one. keep[i]: cur rule i is kept. */
static bool chain_patchable(const struct pnft_chain *want, const struct pnft_chain *cur,
			    const bool *keep)
{
	bool seen_tail = false;
	int last_tail = -1;
	for (unsigned i = 0; i < cur->n; i++) {
		if (!keep[i])
			continue;
		int w = rule_index(want, cur->rules[i].udata);
		if (!want->rules[w].tail) {
			if (seen_tail)
				return false;
			continue;
		}
		if (w < last_tail)
			return false;
		seen_tail = true;
		last_tail = w;
	}
	/* a missing tail rule must come after every kept tail rule in want's order */
	for (unsigned w = 0; w < want->n; w++) {
		if (!want->rules[w].tail || rule_index(cur, want->rules[w].udata) >= 0)
			continue;
		if ((int)w < last_tail)
			return false;
	}
	return true;
}

static bool chain_equal(const struct pnft_chain *a, const struct pnft_chain *b);

static int diff_chain(const struct pnft_chain *want, const struct pnft_chain *cur,
		      struct pnft_plan *p, struct pnft_plan *dels)
{
	bool *keep = calloc(cur->n ? cur->n : 1, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (unsigned i = 0; i < cur->n; i++) {
		int w = rule_index(want, cur->rules[i].udata);
		keep[i] = w >= 0 && rule_index(cur, cur->rules[i].udata) == (int)i;
	}
	int rc = -ENOMEM;
	/* no kernel handles (a table kept in memory, not read back): a chain that differs
	 * is replaced whole (flush + add in the same batch) */
	if (!cur->handles && chain_equal(want, cur)) {
		rc = 0;
		goto out;
	}
	if (!cur->handles || !chain_patchable(want, cur, keep)) {
		if (!op_add(p, PNFT_OP_FLUSH_CHAIN, want->name))
			goto out;
		for (unsigned w = 0; w < want->n; w++) {
			struct pnft_op *o = op_add(p, PNFT_OP_ADD_RULE, want->name);
			if (!o)
				goto out;
			o->rule = &want->rules[w];
		}
		rc = 0;
		goto out;
	}
	/* missing non-tail rules: inserted at the head, last first (so they keep order) */
	for (unsigned w = want->n; w-- > 0;) {
		if (want->rules[w].tail || rule_index(cur, want->rules[w].udata) >= 0)
			continue;
		struct pnft_op *o = op_add(p, PNFT_OP_INSERT_RULE, want->name);
		if (!o)
			goto out;
		o->rule = &want->rules[w];
	}
	for (unsigned w = 0; w < want->n; w++) {
		if (!want->rules[w].tail || rule_index(cur, want->rules[w].udata) >= 0)
			continue;
		struct pnft_op *o = op_add(p, PNFT_OP_ADD_RULE, want->name);
		if (!o)
			goto out;
		o->rule = &want->rules[w];
	}
	for (unsigned i = 0; i < cur->n; i++) {
		if (keep[i])
			continue;
		struct pnft_op *o = op_add(dels, PNFT_OP_DEL_RULE, want->name);
		if (!o)
			goto out;
		o->handle = cur->handles ? cur->handles[i] : 0;
	}
	rc = 0;
out:
	free(keep);
	return rc;
}

static int append_plan(struct pnft_plan *p, const struct pnft_plan *q)
{
	if (grow((void **)&p->ops, &p->cap, p->n + q->n, sizeof(*p->ops)) < 0)
		return -ENOMEM;
	if (q->n)
		memcpy(p->ops + p->n, q->ops, (size_t)q->n * sizeof(*q->ops));
	p->n += q->n;
	return 0;
}

int pnft_diff(const struct pnft_table *want, const struct pnft_table *cur,
	      struct pnft_plan *p, struct err *e)
{
	static const struct pnft_table empty = { 0 };
	memset(p, 0, sizeof(*p));
	if (!cur || !cur->present)
		cur = &empty;
	struct pnft_plan dels = { 0 };
	struct pnft_op *o;
	if (!cur->present && !op_add(p, PNFT_OP_ADD_TABLE, PNFT_TABLE))
		goto nomem;
	for (unsigned i = 0; i < want->n_sets; i++)
		if (!pnft_set_find(cur, want->sets[i].name)) {
			if (!(o = op_add(p, PNFT_OP_ADD_SET, want->sets[i].name)))
				goto nomem;
			o->set = &want->sets[i];
		}
	for (int m = 0; m < 2; m++)
		if (!cur->has_map[m] && !op_add(p, PNFT_OP_ADD_MAP, want->maps[m].name))
			goto nomem;
	for (unsigned i = 0; i < want->n_chains; i++)
		if (!pnft_chain_find(cur, want->chains[i].name)) {
			if (!(o = op_add(p, PNFT_OP_ADD_CHAIN, want->chains[i].name)))
				goto nomem;
			o->chain = &want->chains[i];
		}
	for (unsigned i = 0; i < want->n_chains; i++) {
		const struct pnft_chain *w = &want->chains[i];
		const struct pnft_chain *c = pnft_chain_find(cur, w->name);
		if (c) {
			if (diff_chain(w, c, p, &dels) < 0)
				goto nomem;
			continue;
		}
		for (unsigned k = 0; k < w->n; k++) {
			if (!(o = op_add(p, PNFT_OP_ADD_RULE, w->name)))
				goto nomem;
			o->rule = &w->rules[k];
		}
	}
	for (int m = 0; m < 2; m++) {
		const struct pnft_map *wm = &want->maps[m], *cm = &cur->maps[m];
		/* a key that points elsewhere: deleted before it is added again */
		for (unsigned k = 0; k < wm->n; k++) {
			const struct pnft_elem *ce = elem_find(cm, wm->e[k].ifname);
			if (ce && strcmp(ce->chain, wm->e[k].chain) != 0) {
				if (!(o = op_add(p, PNFT_OP_DEL_ELEM, wm->name)))
					goto nomem;
				o->elem = *ce;
			}
		}
		for (unsigned k = 0; k < wm->n; k++)
			if (!pnft_map_has(cur, m, wm->e[k].ifname, wm->e[k].chain)) {
				if (!(o = op_add(p, PNFT_OP_ADD_ELEM, wm->name)))
					goto nomem;
				o->elem = wm->e[k];
			}
		for (unsigned k = 0; k < cm->n; k++)
			if (!elem_find(wm, cm->e[k].ifname)) {
				if (!(o = op_add(p, PNFT_OP_DEL_ELEM, wm->name)))
					goto nomem;
				o->elem = cm->e[k];
			}
	}
	if (append_plan(p, &dels) < 0)
		goto nomem;
	for (unsigned i = 0; i < cur->n_chains; i++)
		if (!pnft_chain_find(want, cur->chains[i].name)) {
			if (cur->chains[i].n &&
			    !op_add(p, PNFT_OP_FLUSH_CHAIN, cur->chains[i].name))
				goto nomem;
			if (!op_add(p, PNFT_OP_DEL_CHAIN, cur->chains[i].name))
				goto nomem;
		}
	for (unsigned i = 0; i < cur->n_sets; i++)
		if (!pnft_set_find(want, cur->sets[i].name) &&
		    !op_add(p, PNFT_OP_DEL_SET, cur->sets[i].name))
			goto nomem;
	pnft_plan_free(&dels);
	return 0;
nomem:
	pnft_plan_free(&dels);
	pnft_plan_free(p);
	return err_setx(e, ENOMEM, "policy: nf_tables difference: out of memory");
}

/* ---- applying a plan in memory ------------------------------------------------------- */

static struct pnft_chain *chain_mut(struct pnft_table *t, const char *name)
{
	return (struct pnft_chain *)pnft_chain_find(t, name);
}

static int chain_put_rule(struct pnft_chain *c, const struct pnft_rule *r, bool head,
			  uint64_t handle)
{
	struct pnft_rule *nr = realloc(c->rules, (size_t)(c->n + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	c->rules = nr;
	uint64_t *nh = realloc(c->handles, (size_t)(c->n + 1) * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	c->handles = nh;
	unsigned at = head ? 0 : c->n;
	memmove(c->rules + at + 1, c->rules + at, (size_t)(c->n - at) * sizeof(*nr));
	memmove(c->handles + at + 1, c->handles + at, (size_t)(c->n - at) * sizeof(*nh));
	c->rules[at] = *r;
	c->handles[at] = handle;
	c->n++;
	return 0;
}

static int apply_op(struct pnft_table *t, const struct pnft_op *o, uint64_t *next,
		    struct err *e)
{
	struct pnft_chain *c;
	switch (o->kind) {
	case PNFT_OP_ADD_TABLE:
		t->present = true;
		return 0;
	case PNFT_OP_ADD_SET: {
		struct pnft_set *ns = realloc(t->sets, (size_t)(t->n_sets + 1) * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		t->sets = ns;
		struct pnft_set *s = &t->sets[t->n_sets];
		*s = *o->set;
		s->r = calloc(o->set->n ? o->set->n : 1, sizeof(*s->r));
		if (!s->r)
			return -ENOMEM;
		if (o->set->n)
			memcpy(s->r, o->set->r, (size_t)o->set->n * sizeof(*s->r));
		t->n_sets++;
		return 0;
	}
	case PNFT_OP_ADD_MAP:
		for (int m = 0; m < 2; m++)
			if (strcmp(o->name, m ? PNFT_MAP_IN : PNFT_MAP_EG) == 0) {
				t->has_map[m] = true;
				snprintf(t->maps[m].name, sizeof(t->maps[m].name), "%s", o->name);
				return 0;
			}
		return err_setx(e, ENOENT, "policy: no map %s", o->name);
	case PNFT_OP_ADD_CHAIN: {
		struct pnft_chain *nc =
			realloc(t->chains, (size_t)(t->n_chains + 1) * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		t->chains = nc;
		c = &t->chains[t->n_chains++];
		memset(c, 0, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%s", o->chain->name);
		c->base = o->chain->base;
		c->prio = o->chain->prio;
		return 0;
	}
	case PNFT_OP_FLUSH_CHAIN:
		if (!(c = chain_mut(t, o->name)))
			break;
		c->n = 0;
		return 0;
	case PNFT_OP_ADD_RULE:
	case PNFT_OP_INSERT_RULE:
		if (!(c = chain_mut(t, o->name)))
			break;
		if (o->rule->set[0] && !pnft_set_find(t, o->rule->set))
			return err_setx(e, ENOENT, "policy: rule in %s: no set %s", o->name,
					o->rule->set);
		return chain_put_rule(c, o->rule, o->kind == PNFT_OP_INSERT_RULE, (*next)++);
	case PNFT_OP_ADD_ELEM:
	case PNFT_OP_DEL_ELEM:
		for (int m = 0; m < 2; m++) {
			if (!t->has_map[m] || strcmp(t->maps[m].name, o->name) != 0)
				continue;
			struct pnft_map *mp = &t->maps[m];
			const struct pnft_elem *el = elem_find(mp, o->elem.ifname);
			if (o->kind == PNFT_OP_DEL_ELEM) {
				if (!el)
					break;
				unsigned at = (unsigned)(el - mp->e);
				memmove(mp->e + at, mp->e + at + 1,
					(size_t)(mp->n - at - 1) * sizeof(*mp->e));
				mp->n--;
				return 0;
			}
			if (el)
				return err_setx(e, EEXIST, "policy: map %s: %s exists", o->name,
						o->elem.ifname);
			if (!pnft_chain_find(t, o->elem.chain))
				return err_setx(e, ENOENT, "policy: map %s: no chain %s",
						o->name, o->elem.chain);
			struct pnft_elem *ne = realloc(mp->e, (size_t)(mp->n + 1) * sizeof(*ne));
			if (!ne)
				return -ENOMEM;
			mp->e = ne;
			mp->e[mp->n++] = o->elem;
			qsort(mp->e, mp->n, sizeof(*mp->e), cmp_elem);
			return 0;
		}
		break;
	case PNFT_OP_DEL_RULE:
		if (!(c = chain_mut(t, o->name)))
			break;
		for (unsigned i = 0; i < c->n; i++)
			if (c->handles && c->handles[i] == o->handle) {
				memmove(c->rules + i, c->rules + i + 1,
					(size_t)(c->n - i - 1) * sizeof(*c->rules));
				memmove(c->handles + i, c->handles + i + 1,
					(size_t)(c->n - i - 1) * sizeof(*c->handles));
				c->n--;
				return 0;
			}
		break;
	case PNFT_OP_DEL_CHAIN:
		if (!(c = chain_mut(t, o->name)))
			break;
		if (c->n)
			return err_setx(e, EBUSY, "policy: chain %s is not empty", o->name);
		for (int m = 0; m < 2; m++)
			for (unsigned k = 0; k < t->maps[m].n; k++)
				if (strcmp(t->maps[m].e[k].chain, o->name) == 0)
					return err_setx(e, EBUSY, "policy: chain %s is in map %s",
							o->name, t->maps[m].name);
		free(c->rules);
		free(c->handles);
		memmove(c, c + 1, (size_t)(t->n_chains - (unsigned)(c - t->chains) - 1) *
					  sizeof(*c));
		t->n_chains--;
		return 0;
	case PNFT_OP_DEL_SET:
		for (unsigned i = 0; i < t->n_sets; i++) {
			if (strcmp(t->sets[i].name, o->name) != 0)
				continue;
			for (unsigned k = 0; k < t->n_chains; k++)
				for (unsigned r = 0; r < t->chains[k].n; r++)
					if (strcmp(t->chains[k].rules[r].set, o->name) == 0)
						return err_setx(e, EBUSY, "policy: set %s is used "
								"in %s", o->name,
								t->chains[k].name);
			free(t->sets[i].r);
			memmove(t->sets + i, t->sets + i + 1,
				(size_t)(t->n_sets - i - 1) * sizeof(*t->sets));
			t->n_sets--;
			return 0;
		}
		break;
	}
	return err_setx(e, ENOENT, "policy: op %d: %s does not exist", (int)o->kind, o->name);
}

int pnft_apply(struct pnft_table *cur, const struct pnft_plan *p, uint64_t *next_handle,
	       struct err *e)
{
	uint64_t h = 1000000;
	if (!next_handle)
		next_handle = &h;
	for (unsigned i = 0; i < p->n; i++) {
		int rc = apply_op(cur, &p->ops[i], next_handle, e);
		if (rc < 0)
			return rc == -ENOMEM ? err_setx(e, ENOMEM, "policy: out of memory") : rc;
	}
	return 0;
}

static bool chain_equal(const struct pnft_chain *a, const struct pnft_chain *b)
{
	if (a->n != b->n || a->base != b->base)
		return false;
	bool seen_tail = false;
	int last = -1;
	for (unsigned i = 0; i < b->n; i++) {
		int w = rule_index(a, b->rules[i].udata);
		if (w < 0 || rule_index(b, b->rules[i].udata) != (int)i)
			return false;
		if (a->rules[w].tail) {
			if (w < last)
				return false;
			last = w;
			seen_tail = true;
		} else if (seen_tail) {
			return false;
		}
	}
	return true;
}

bool pnft_equal(const struct pnft_table *a, const struct pnft_table *b)
{
	if (a->present != b->present || a->n_chains != b->n_chains || a->n_sets != b->n_sets)
		return false;
	for (unsigned i = 0; i < a->n_chains; i++) {
		const struct pnft_chain *c = pnft_chain_find(b, a->chains[i].name);
		if (!c || !chain_equal(&a->chains[i], c))
			return false;
	}
	for (unsigned i = 0; i < a->n_sets; i++)
		if (!pnft_set_find(b, a->sets[i].name))
			return false;
	for (int m = 0; m < 2; m++) {
		if (a->maps[m].n != b->maps[m].n)
			return false;
		for (unsigned k = 0; k < a->maps[m].n; k++)
			if (!pnft_map_has(b, m, a->maps[m].e[k].ifname, a->maps[m].e[k].chain))
				return false;
	}
	return true;
}

void pnft_range_addrs(const struct pol_range *r, struct ip_addr *lo, struct ip_addr *hi)
{
	size_t n = r->family == AF_INET ? 4 : 16;
	memset(lo, 0, sizeof(*lo));
	memset(hi, 0, sizeof(*hi));
	lo->family = hi->family = r->family;
	for (size_t i = 0; i < n; i++) {
		lo->b[i] = (uint8_t)(r->lo >> (8 * (n - 1 - i)));
		hi->b[i] = (uint8_t)(r->hi >> (8 * (n - 1 - i)));
	}
}

int pnft_batch_set(struct nft_batch *b, const char *name, uint8_t family,
		   const struct pol_range *r, unsigned n)
{
	struct nft_set_spec sp = { .name = name,
				   .key = family == AF_INET ? NFT_KEY_IPV4 : NFT_KEY_IPV6,
				   .interval = true };
	nft_set_add(b, &sp);
	if (!n)
		return b->rc;
	struct nft_elem *el = calloc(n, sizeof(*el));
	if (!el)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct ip_addr lo, hi;
		pnft_range_addrs(&r[i], &lo, &hi);
		nft_elem_addr(&el[i], &lo, &hi);
	}
	int rc = nft_elems(b, &sp, false, el, n);
	free(el);
	return rc;
}
