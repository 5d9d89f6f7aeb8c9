/* polstate — the programmed NetworkPolicy table per endpoint and the batch of what
 * changed (see polstate.h). */
#include "agent/polstate.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char pst_name[PNFT_NAME_MAX];

/* The rules of one endpoint and the peer sets its chains use. */
struct pst_rules {
	struct pol_ruleset rs; /* one endpoint compiled (rs.n == 1), or empty (rs.n == 0) */
	pst_name *sets;	       /* names of the sets its chains look up (heap) */
	unsigned n_sets;       /* how many */
};

struct pst_ep {
	char ifname[PNFT_IFNAME_MAX]; /* the key: its host interface */
	struct pst_rules cur;	      /* as programmed (empty: not programmed yet) */
	bool staged;		      /* a change waits for commit */
	struct pst_rules next;	      /* staged: the new rules (empty: removed) */
};

struct pst {
	struct pnft_opts o;  /* how tables are built */
	struct pst_ep *eps;  /* endpoints (heap) */
	unsigned n;	     /* how many */
	unsigned cap;	     /* allocated */
	unsigned n_staged;   /* of them staged */
	unsigned n_rules;    /* rules of the programmed table */
	unsigned n_sets;     /* peer sets of the programmed table */
	long d_rules;	     /* planned: rules after the staged changes minus n_rules */
	long d_sets;	     /* planned: the same for sets */
};

static void rules_free(struct pst_rules *r)
{
	pol_ruleset_free(&r->rs);
	free(r->sets);
	*r = (struct pst_rules){ 0 };
}

struct pst *pst_new(const struct pnft_opts *o)
{
	struct pst *s = calloc(1, sizeof(*s));
	if (s && o)
		s->o = *o;
	return s;
}

void pst_clear(struct pst *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		rules_free(&s->eps[i].cur);
		rules_free(&s->eps[i].next);
	}
	s->n = 0;
	s->n_staged = 0;
	s->n_rules = s->n_sets = 0;
	s->d_rules = s->d_sets = 0;
}

void pst_free(struct pst *s)
{
	if (!s)
		return;
	pst_clear(s);
	free(s->eps);
	free(s);
}

static struct pst_ep *find(const struct pst *s, const char *ifname)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->eps[i].ifname, ifname) == 0)
			return &s->eps[i];
	return NULL;
}

/* The entry of ifname, made (not programmed, not staged) when missing. */
static struct pst_ep *get(struct pst *s, const char *ifname)
{
	struct pst_ep *ep = find(s, ifname);
	if (ep)
		return ep;
	if (s->n == s->cap) {
		unsigned nc = s->cap ? s->cap * 2 : 16;
		struct pst_ep *n = realloc(s->eps, (size_t)nc * sizeof(*n));
		if (!n)
			return NULL;
		s->eps = n;
		s->cap = nc;
	}
	ep = &s->eps[s->n++];
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->ifname, sizeof(ep->ifname), "%s", ifname);
	return ep;
}

static unsigned count_rules(const struct pnft_table *t)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->n_chains; i++)
		n += t->chains[i].n;
	return n;
}

/* The table of the endpoints ceps[0..n) (shallow copies, not freed). */
static int build(const struct pst *s, struct pol_cep *ceps, unsigned n, struct pnft_table *out,
		 struct err *e)
{
	struct pol_ruleset rs = { .eps = ceps, .n = n };
	return pnft_build(&rs, &s->o, out, e);
}

int pst_stage(struct pst *s, const struct pol_world *w, const struct pol_ep_in *in,
	      struct err *e)
{
	struct pst_rules r = { 0 };
	struct pnft_table t = { 0 };
	int rc;
	if (strlen(in->ifname) >= PNFT_IFNAME_MAX)
		return err_setx(e, EINVAL, "policy: %s/%s: interface name %s is too long",
				in->ns, in->name, in->ifname);
	if ((rc = pol_compile(w, in, 1, &r.rs, e)) < 0)
		return rc;
	if ((rc = build(s, r.rs.eps, r.rs.n, &t, e)) < 0)
		goto fail;
	if (t.n_sets && !(r.sets = calloc(t.n_sets, sizeof(*r.sets)))) {
		rc = err_setx(e, ENOMEM, "policy: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < t.n_sets; i++)
		memcpy(r.sets[r.n_sets++], t.sets[i].name, sizeof(pst_name));
	pnft_table_free(&t);
	struct pst_ep *ep = get(s, in->ifname);
	if (!ep) {
		rc = err_setx(e, ENOMEM, "policy: out of memory");
		goto fail;
	}
	rules_free(&ep->next);
	ep->next = r;
	s->n_staged += !ep->staged;
	ep->staged = true;
	return 0;
fail:
	pnft_table_free(&t);
	rules_free(&r);
	return rc;
}

int pst_stage_remove(struct pst *s, const char *ifname)
{
	struct pst_ep *ep = find(s, ifname);
	if (!ep)
		return 0;
	rules_free(&ep->next);
	s->n_staged += !ep->staged;
	ep->staged = true;
	return 0;
}

unsigned pst_staged(const struct pst *s)
{
	return s->n_staged;
}

/* Does an endpoint that is not staged have set name programmed? */
static bool set_used_elsewhere(const struct pst *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++) {
		const struct pst_ep *ep = &s->eps[i];
		if (ep->staged)
			continue;
		for (unsigned k = 0; k < ep->cur.n_sets; k++)
			if (strcmp(ep->cur.sets[k], name) == 0)
				return true;
	}
	return false;
}

int pst_plan(struct pst *s, struct pnft_plan *plan, struct pnft_table *keep, struct err *e)
{
	struct pol_cep *want = calloc(s->n ? s->n : 1, sizeof(*want));
	struct pol_cep *was = calloc(s->n ? s->n : 1, sizeof(*was));
	struct pnft_table cur = { 0 };
	unsigned nw = 0, nc = 0;
	int rc;
	memset(plan, 0, sizeof(*plan));
	memset(keep, 0, sizeof(*keep));
	if (!want || !was) {
		rc = err_setx(e, ENOMEM, "policy: out of memory");
		goto out;
	}
	for (unsigned i = 0; i < s->n; i++) {
		const struct pst_ep *ep = &s->eps[i];
		if (!ep->staged)
			continue;
		if (ep->next.rs.n)
			want[nw++] = ep->next.rs.eps[0];
		if (ep->cur.rs.n)
			was[nc++] = ep->cur.rs.eps[0];
	}
	/* both fragments hold the base chains and maps: those compare equal */
	if ((rc = build(s, want, nw, keep, e)) < 0 || (rc = build(s, was, nc, &cur, e)) < 0 ||
	    (rc = pnft_diff(keep, &cur, plan, e)) < 0)
		goto out;
	/* a set other endpoints use stays; one they have is not added again */
	unsigned k = 0;
	s->d_rules = (long)count_rules(keep) - (long)count_rules(&cur);
	s->d_sets = 0;
	for (unsigned i = 0; i < plan->n; i++) {
		const struct pnft_op *o = &plan->ops[i];
		if ((o->kind == PNFT_OP_ADD_SET || o->kind == PNFT_OP_DEL_SET) &&
		    set_used_elsewhere(s, o->name))
			continue;
		s->d_sets += o->kind == PNFT_OP_ADD_SET ? 1 : o->kind == PNFT_OP_DEL_SET ? -1 : 0;
		plan->ops[k++] = *o;
	}
	plan->n = k;
out:
	if (rc < 0) {
		pnft_plan_free(plan);
		pnft_table_free(keep);
	}
	pnft_table_free(&cur);
	free(want);
	free(was);
	return rc;
}

int pst_table(struct pst *s, struct pnft_table *out, struct err *e)
{
	struct pol_cep *all = calloc(s->n ? s->n : 1, sizeof(*all));
	unsigned n = 0;
	memset(out, 0, sizeof(*out));
	if (!all)
		return err_setx(e, ENOMEM, "policy: out of memory");
	for (unsigned i = 0; i < s->n; i++) {
		const struct pst_ep *ep = &s->eps[i];
		const struct pst_rules *r = ep->staged ? &ep->next : &ep->cur;
		if (r->rs.n)
			all[n++] = r->rs.eps[0];
	}
	int rc = build(s, all, n, out, e);
	free(all);
	if (rc == 0) {
		s->d_rules = (long)count_rules(out) - (long)s->n_rules;
		s->d_sets = (long)out->n_sets - (long)s->n_sets;
	}
	return rc;
}

/* Drop the entries with nothing programmed and nothing staged. */
static void compact(struct pst *s)
{
	unsigned k = 0;
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->eps[i].cur.rs.n && !s->eps[i].staged) {
			rules_free(&s->eps[i].cur);
			continue;
		}
		s->eps[k++] = s->eps[i];
	}
	s->n = k;
}

void pst_commit(struct pst *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct pst_ep *ep = &s->eps[i];
		if (!ep->staged)
			continue;
		rules_free(&ep->cur);
		ep->cur = ep->next;
		ep->next = (struct pst_rules){ 0 };
		ep->staged = false;
	}
	s->n_staged = 0;
	s->n_rules = (unsigned)((long)s->n_rules + s->d_rules);
	s->n_sets = (unsigned)((long)s->n_sets + s->d_sets);
	s->d_rules = s->d_sets = 0;
	compact(s);
}

void pst_abort(struct pst *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		rules_free(&s->eps[i].next);
		s->eps[i].staged = false;
	}
	s->n_staged = 0;
	s->d_rules = s->d_sets = 0;
	compact(s);
}

unsigned pst_count(const struct pst *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->n; i++)
		n += s->eps[i].cur.rs.n;
	return n;
}

bool pst_has(const struct pst *s, const char *ifname)
{
	const struct pst_ep *ep = find(s, ifname);
	return ep && ep->cur.rs.n;
}

const struct pol_cep *pst_at(const struct pst *s, unsigned i)
{
	for (unsigned k = 0; k < s->n; k++)
		if (s->eps[k].cur.rs.n && i-- == 0)
			return &s->eps[k].cur.rs.eps[0];
	return NULL;
}

const struct pol_cep *pst_find(const struct pst *s, const char *ifname)
{
	const struct pst_ep *ep = find(s, ifname);
	return ep && ep->cur.rs.n ? &ep->cur.rs.eps[0] : NULL;
}

unsigned pst_rules(const struct pst *s)
{
	return s->n_rules;
}

unsigned pst_sets(const struct pst *s)
{
	return s->n_sets;
}
