/* Unit tests for agent/polstate: the programmed table kept per endpoint and the batch of
 * what changed. Every plan is replayed in memory on a model of the kernel's table
 * (pnft_apply: a set added twice, a set deleted while used, a rule on a missing set are
 * errors there) and the result must equal the table pnft_build makes from scratch from
 * the same world: after a policy change (only the selected endpoint's chain replaced,
 * a peer set shared with another endpoint kept), after an endpoint leaves, and along
 * seeded random sequences of policy, pod, namespace and endpoint events where only the
 * endpoints pol_world_dependents names are recompiled. */
#include "agent/polstate.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPODS 8

static void add(struct pol_world *w, const char *json)
{
	struct err e = { 0 };
	if (pol_world_add_json(w, json, strlen(json), NULL, &e) < 0) {
		fprintf(stderr, "# %s: %s\n", e.msg, json);
		abort();
	}
}

static void pod_json(char *buf, size_t cap, int i, const char *app)
{
	snprintf(buf, cap,
		 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%d\",\"namespace\":\"%s\","
		 "\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
		 "\"ports\":[{\"name\":\"web\",\"containerPort\":%d}]}]},"
		 "\"status\":{\"podIPs\":[{\"ip\":\"198.18.0.%d\"},{\"ip\":\"2001:db8::%d\"}]}}",
		 i, i % 2 ? "y" : "x", app, 8000 + i % 3, i + 1, i + 1);
}

static void ns_json(char *buf, size_t cap, const char *name, const char *team)
{
	snprintf(buf, cap, "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\","
		 "\"labels\":{\"team\":\"%s\"}}}", name, team);
}

/* Policy template t (0..5) named NAME in ns. */
static void pol_json(char *buf, size_t cap, const char *ns, const char *name, int t)
{
	static const char *const spec[] = {
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}},\"ingress\":[{\"from\":["
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"b\"}}}],\"ports\":[{\"port\":80}]}]}",
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}},\"ingress\":[{\"from\":["
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"c\"}}}],\"ports\":[{\"port\":81}]}]}",
		"{\"podSelector\":{},\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":["
		"{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"red\"}}}],"
		"\"ports\":[{\"port\":\"web\"}]}]}",
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"b\"}},\"ingress\":[{\"from\":["
		"{\"ipBlock\":{\"cidr\":\"198.18.0.0/29\",\"except\":[\"198.18.0.4/30\"]}}]}]}",
		"{\"podSelector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\","
		"\"values\":[\"a\"]}]},\"policyTypes\":[\"Ingress\",\"Egress\"],\"ingress\":[{}]}",
		"{\"podSelector\":{\"matchLabels\":{\"app\":\"c\"}},\"ingress\":[{\"from\":["
		"{\"namespaceSelector\":{},\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}}}],"
		"\"ports\":[{\"port\":\"web\"},{\"protocol\":\"UDP\",\"port\":53,\"endPort\":60}]}]}",
	};
	snprintf(buf, cap, "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"%s\"},\"spec\":%s}", name, ns, spec[t]);
}

/* The model of the world the tests edit. */
struct model {
	struct pol_world *w;	      /* the kept world */
	char app[NPODS][2];	      /* each pod's app label */
	bool pod_in[NPODS];	      /* the pod exists */
	bool ep[NPODS];		      /* it is an endpoint */
	int pol[4];		      /* template of policy k (-1: none) */
	char team[2][8];	      /* x's and y's team */
	char ifname[NPODS][16];	      /* endpoint interfaces */
	char dirty[64][32];	      /* "NS/NAME" noted */
	unsigned n_dirty;	      /* how many */
};

static void note(void *arg, const char *ns, const char *name)
{
	struct model *m = arg;
	char k[32];
	snprintf(k, sizeof(k), "%s/%s", ns, name);
	for (unsigned d = 0; d < m->n_dirty; d++)
		if (strcmp(m->dirty[d], k) == 0)
			return;
	if (m->n_dirty < 64)
		snprintf(m->dirty[m->n_dirty++], 32, "%s/%s", ns, name);
}

static bool is_dirty(const struct model *m, int i)
{
	char k[32];
	snprintf(k, sizeof(k), "%s/p%d", i % 2 ? "y" : "x", i);
	for (unsigned d = 0; d < m->n_dirty; d++)
		if (strcmp(m->dirty[d], k) == 0)
			return true;
	return false;
}

/* Replace object KIND ns/name with json (NULL: delete), noting dependents both ways. */
static void change(struct model *m, const char *kind, const char *ns, const char *name,
		   const char *json)
{
	pol_world_dependents(m->w, kind, ns, name, note, m);
	pol_world_remove(m->w, kind, ns, name);
	if (json) {
		add(m->w, json);
		pol_world_dependents(m->w, kind, ns, name, note, m);
	}
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->w = pol_world_new();
	char buf[1024];
	snprintf(m->team[0], 8, "red");
	snprintf(m->team[1], 8, "blue");
	ns_json(buf, sizeof(buf), "x", "red");
	add(m->w, buf);
	ns_json(buf, sizeof(buf), "y", "blue");
	add(m->w, buf);
	for (int i = 0; i < NPODS; i++) {
		m->app[i][0] = (char)('a' + i % 3);
		pod_json(buf, sizeof(buf), i, m->app[i]);
		add(m->w, buf);
		m->pod_in[i] = m->ep[i] = true;
		snprintf(m->ifname[i], 16, "kv0000000%02d", i);
	}
	for (int k = 0; k < 4; k++)
		m->pol[k] = -1;
}

/* The table from scratch: every endpoint whose pod exists, compiled together. */
static int scratch(const struct model *m, struct pnft_table *t)
{
	struct pol_ep_in in[NPODS];
	char ns[NPODS][2], name[NPODS][8];
	unsigned n = 0;
	for (int i = 0; i < NPODS; i++) {
		if (!m->ep[i] || !m->pod_in[i])
			continue;
		snprintf(ns[n], 2, "%s", i % 2 ? "y" : "x");
		snprintf(name[n], 8, "p%d", i);
		in[n] = (struct pol_ep_in){ ns[n], name[n], m->ifname[i] };
		n++;
	}
	struct pol_ruleset rs;
	struct err e = { 0 };
	if (pol_compile(m->w, in, n, &rs, &e) < 0)
		return -1;
	int rc = pnft_build(&rs, NULL, t, &e);
	pol_ruleset_free(&rs);
	return rc;
}

/* Stage what changed (as agent/policy.c does: new endpoints, dirty ones, gone ones),
 * plan, replay on kernel, commit. The number of endpoints staged in *staged. */
static int stage(struct model *m, struct pst *s)
{
	struct err e = { 0 };
	for (int i = 0; i < NPODS; i++) {
		char ns[2], name[8];
		snprintf(ns, 2, "%s", i % 2 ? "y" : "x");
		snprintf(name, 8, "p%d", i);
		bool want = m->ep[i] && m->pod_in[i];
		if (!want) {
			if (pst_has(s, m->ifname[i]) && pst_stage_remove(s, m->ifname[i]) < 0)
				return -1;
			continue;
		}
		if (pst_has(s, m->ifname[i]) && !is_dirty(m, i))
			continue;
		struct pol_ep_in in = { ns, name, m->ifname[i] };
		if (pst_stage(s, m->w, &in, &e) < 0) {
			fprintf(stderr, "# stage: %s\n", e.msg);
			return -1;
		}
	}
	m->n_dirty = 0;
	return 0;
}

static int sync_inc(struct model *m, struct pst *s, struct pnft_table *kernel,
		    unsigned *staged, unsigned *ops)
{
	struct err e = { 0 };
	if (stage(m, s) < 0)
		return -1;
	*staged = pst_staged(s);
	struct pnft_plan plan;
	struct pnft_table part;
	if (pst_plan(s, &plan, &part, &e) < 0)
		return -1;
	*ops = plan.n;
	static uint64_t h = 1;
	int rc = pnft_apply(kernel, &plan, &h, &e);
	if (rc < 0)
		fprintf(stderr, "# apply: %s\n", e.msg);
	pnft_plan_free(&plan);
	pnft_table_free(&part);
	if (rc < 0) {
		pst_abort(s);
		return -1;
	}
	pst_commit(s);
	return 0;
}

/* kernel equals the table from scratch, and the text of both is the same. */
static bool same(const struct model *m, const struct pnft_table *kernel)
{
	struct pnft_table t;
	if (scratch(m, &t) < 0)
		return false;
	bool eq = pnft_equal(&t, kernel);
	if (!eq) {
		char *a = pnft_text(&t), *b = pnft_text(kernel);
		fprintf(stderr, "# from scratch:\n%s# incremental:\n%s", a, b);
		free(a), free(b);
	}
	pnft_table_free(&t);
	return eq;
}

/* The first sync: everything staged, the whole table against an empty kernel. */
static bool first_sync(struct model *m, struct pst *s, struct pnft_table *kernel)
{
	memset(kernel, 0, sizeof(*kernel));
	struct pnft_table want;
	struct pnft_plan plan;
	if (stage(m, s) < 0)
		return false;
	unsigned staged = pst_staged(s);
	if (pst_table(s, &want, NULL) < 0 || pnft_diff(&want, kernel, &plan, NULL) < 0)
		return false;
	int rc = pnft_apply(kernel, &plan, NULL, NULL);
	pnft_plan_free(&plan);
	pnft_table_free(&want);
	pst_commit(s);
	return rc == 0 && staged == NPODS && pst_sets(s) == kernel->n_sets;
}

static void test_policy_change_replaces_one_chain(void)
{
	struct model m;
	model_init(&m);
	char buf[1024];
	pol_json(buf, sizeof(buf), "x", "k0", 0);
	add(m.w, buf);
	struct pst *s = pst_new(NULL);
	struct pnft_table kernel;
	T_CHECK(first_sync(&m, s, &kernel));
	T_CHECK(same(&m, &kernel));
	T_EQ(pst_count(s), NPODS);
	/* k0 now allows from app=c on 81: only x's app=a pods (p0, p6) are recompiled */
	pol_json(buf, sizeof(buf), "x", "k0", 1);
	change(&m, "NetworkPolicy", "x", "k0", buf);
	T_EQ(m.n_dirty, 2);
	T_CHECK(is_dirty(&m, 0) && is_dirty(&m, 6));
	struct err e = { 0 };
	for (int i = 0; i < NPODS; i += 6) {
		char name[8];
		snprintf(name, 8, "p%d", i);
		struct pol_ep_in in = { "x", name, m.ifname[i] };
		T_EQ(pst_stage(s, m.w, &in, &e), 0);
	}
	m.n_dirty = 0;
	struct pnft_plan plan;
	struct pnft_table part;
	T_EQ(pst_plan(s, &plan, &part, &e), 0);
	unsigned flush = 0, addset = 0, delset = 0, other = 0;
	for (unsigned i = 0; i < plan.n; i++) {
		const struct pnft_op *o = &plan.ops[i];
		flush += o->kind == PNFT_OP_FLUSH_CHAIN;
		addset += o->kind == PNFT_OP_ADD_SET;
		delset += o->kind == PNFT_OP_DEL_SET;
		/* nothing but the two ingress chains is touched */
		if (o->kind == PNFT_OP_FLUSH_CHAIN || o->kind == PNFT_OP_ADD_RULE)
			other += strcmp(o->name, "i_kv000000000") != 0 &&
				 strcmp(o->name, "i_kv000000006") != 0;
		else if (o->kind != PNFT_OP_ADD_SET && o->kind != PNFT_OP_DEL_SET)
			other++;
	}
	/* both chains replaced; the new peer set (app=c of x: p6... shared by both) added
	 * once per family, the old one deleted once */
	T_EQ(flush, 2);
	T_EQ(other, 0);
	T_EQ(addset, 2);
	T_EQ(delset, 2);
	T_EQ(pnft_apply(&kernel, &plan, NULL, &e), 0);
	pnft_plan_free(&plan);
	pnft_table_free(&part);
	pst_commit(s);
	T_CHECK(same(&m, &kernel));
	/* nothing staged: an empty plan */
	T_EQ(pst_plan(s, &plan, &part, &e), 0);
	T_EQ(plan.n, 0);
	pnft_plan_free(&plan);
	pnft_table_free(&part);
	pnft_table_free(&kernel);
	pst_free(s);
	pol_world_free(m.w);
}

static void test_shared_set_kept_and_endpoint_leaves(void)
{
	struct model m;
	model_init(&m);
	char buf[1024];
	pol_json(buf, sizeof(buf), "x", "k0", 0); /* p0 and p6 share the peer set */
	add(m.w, buf);
	struct pst *s = pst_new(NULL);
	struct pnft_table kernel;
	T_CHECK(first_sync(&m, s, &kernel));
	unsigned sets = kernel.n_sets, staged, ops;
	/* p0 leaves: its chains and elements go, the set p6 still uses stays */
	m.ep[0] = false;
	T_EQ(sync_inc(&m, s, &kernel, &staged, &ops), 0);
	T_EQ(staged, 1);
	T_EQ(kernel.n_sets, sets);
	T_CHECK(!pnft_chain_find(&kernel, "i_kv000000000"));
	T_CHECK(same(&m, &kernel));
	T_EQ(pst_sets(s), kernel.n_sets);
	/* p6 is relabelled: nobody uses the set now, it is deleted */
	snprintf(m.app[6], 2, "b");
	pod_json(buf, sizeof(buf), 6, m.app[6]);
	change(&m, "Pod", "x", "p6", buf);
	T_EQ(sync_inc(&m, s, &kernel, &staged, &ops), 0);
	T_CHECK(kernel.n_sets < sets);
	T_CHECK(same(&m, &kernel));
	T_EQ(pst_sets(s), kernel.n_sets);
	/* back: the endpoint returns */
	m.ep[0] = true;
	T_EQ(sync_inc(&m, s, &kernel, &staged, &ops), 0);
	T_CHECK(same(&m, &kernel));
	unsigned rules = 0;
	for (unsigned i = 0; i < kernel.n_chains; i++)
		rules += kernel.chains[i].n;
	T_EQ(pst_rules(s), rules);
	pnft_table_free(&kernel);
	pst_free(s);
	pol_world_free(m.w);
}

/* Seeded random events; after each, the incremental table equals the from-scratch one
 * and fewer endpoints than all are recompiled on average. */
static void test_random_sequences(void)
{
	unsigned steps = 0, staged_sum = 0, bad = 0;
	for (unsigned seed = 1; seed <= 40; seed++) {
		srand(seed);
		struct model m;
		model_init(&m);
		struct pst *s = pst_new(NULL);
		struct pnft_table kernel;
		if (!first_sync(&m, s, &kernel)) {
			bad++;
			continue;
		}
		char buf[1024], name[8];
		for (int step = 0; step < 40; step++) {
			int c = rand() % 10, i = rand() % NPODS, k = rand() % 4;
			snprintf(name, 8, "k%d", k);
			const char *ns = k % 2 ? "y" : "x";
			if (c < 4) { /* a policy created, changed or deleted */
				int t = rand() % 7;
				m.pol[k] = t == 6 ? -1 : t;
				if (t == 6) {
					change(&m, "NetworkPolicy", ns, name, NULL);
				} else {
					pol_json(buf, sizeof(buf), ns, name, t);
					change(&m, "NetworkPolicy", ns, name, buf);
				}
			} else if (c < 6) { /* a pod relabelled, deleted or back */
				char pn[8];
				snprintf(pn, 8, "p%d", i);
				if (m.pod_in[i] && rand() % 3 == 0) {
					m.pod_in[i] = false;
					change(&m, "Pod", i % 2 ? "y" : "x", pn, NULL);
				} else {
					m.pod_in[i] = true;
					m.app[i][0] = (char)('a' + rand() % 3);
					pod_json(buf, sizeof(buf), i, m.app[i]);
					change(&m, "Pod", i % 2 ? "y" : "x", pn, buf);
				}
			} else if (c < 7) { /* a namespace's team */
				int x = rand() % 2;
				snprintf(m.team[x], 8, "%s", rand() % 2 ? "red" : "blue");
				ns_json(buf, sizeof(buf), x ? "y" : "x", m.team[x]);
				change(&m, "Namespace", "", x ? "y" : "x", buf);
			} else { /* an endpoint leaves or comes */
				m.ep[i] = !m.ep[i];
			}
			unsigned st, ops;
			if (sync_inc(&m, s, &kernel, &st, &ops) < 0 || !same(&m, &kernel) ||
			    pst_sets(s) != kernel.n_sets) {
				fprintf(stderr, "# seed %u step %d differs\n", seed, step);
				bad++;
				break;
			}
			steps++;
			staged_sum += st;
		}
		pnft_table_free(&kernel);
		pst_free(s);
		pol_world_free(m.w);
	}
	t_note("%u random steps, %.2f of %d endpoints recompiled per step on average", steps,
	       steps ? (double)staged_sum / steps : 0.0, NPODS);
	T_EQ(bad, 0);
	T_CHECK(steps == 40 * 40);
	T_CHECK(staged_sum < steps * NPODS / 2);
}

int main(void)
{
	T_RUN(test_policy_change_replaces_one_chain);
	T_RUN(test_shared_set_kept_and_endpoint_leaves);
	T_RUN(test_random_sequences);
	return t_done();
}
