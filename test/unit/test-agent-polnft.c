/* Unit tests for agent/polnft: the nf_tables design of a compiled rule set (chains, maps,
 * content-named interval sets, user data, fail open/closed), its text form, and the
 * difference: a plan from nothing builds the table, a plan against itself is empty (an
 * agent restart adopts the table), a policy change touches only the endpoint it is
 * about, a removed endpoint loses its chains and elements, an isolation flip and a
 * table in the wrong order are repaired; every plan is replayed in memory with the
 * kernel's reference rules (pnft_apply) and must land on the desired table. */
#include "agent/polnft.h"
#include "l2/net.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Namespace x with pods a, b, c (pod=NAME, 198.18.0.N and 2001:db8::N, port 80 named
 * http); d in namespace y (198.18.1.4). */
static struct pol_world *world(const char *extra)
{
	static const char *const base[] = {
		"{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\",\"labels\":{\"ns\":\"x\"}}}",
		"{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"y\",\"labels\":{\"ns\":\"y\"}}}",
	};
	struct pol_world *w = pol_world_new();
	if (!w)
		abort();
	for (unsigned i = 0; i < 2; i++)
		if (pol_world_add_json(w, base[i], strlen(base[i]), NULL, NULL) < 0)
			abort();
	static const char *const pods[] = { "a", "b", "c", "d" };
	for (int p = 0; p < 4; p++) {
		char buf[1024];
		snprintf(buf, sizeof(buf),
			 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
			 "\"labels\":{\"pod\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
			 "\"ports\":[{\"name\":\"http\",\"containerPort\":80}]}]},"
			 "\"status\":{\"podIPs\":[{\"ip\":\"198.18.%d.%d\"},{\"ip\":\"2001:db8::%d\"}]}}",
			 pods[p], p == 3 ? "y" : "x", pods[p], p == 3 ? 1 : 0, p + 1, p + 1);
		if (pol_world_add_json(w, buf, strlen(buf), NULL, NULL) < 0)
			abort();
	}
	if (extra) {
		struct err e = { 0 };
		if (pol_world_add_json(w, extra, strlen(extra), NULL, &e) < 0) {
			fprintf(stderr, "# %s\n", e.msg);
			abort();
		}
	}
	return w;
}

/* Ingress of x/a: allow from pod=b (and c when with_c) on port 80/TCP. */
static const char *pol_ab(bool with_c)
{
	return with_c ?
	"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"a-in\",\"namespace\":\"x\"},"
	"\"spec\":{\"podSelector\":{\"matchLabels\":{\"pod\":\"a\"}},\"ingress\":[{\"from\":["
	"{\"podSelector\":{\"matchExpressions\":[{\"key\":\"pod\",\"operator\":\"In\","
	"\"values\":[\"b\",\"c\"]}]}}],\"ports\":[{\"port\":80}]}]}}" :
	"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"a-in\",\"namespace\":\"x\"},"
	"\"spec\":{\"podSelector\":{\"matchLabels\":{\"pod\":\"a\"}},\"ingress\":[{\"from\":["
	"{\"podSelector\":{\"matchLabels\":{\"pod\":\"b\"}}}],\"ports\":[{\"port\":80}]}]}}";
}

static const struct pol_ep_in EPS[] = {
	{ "x", "a", "kv00000000a" },
	{ "x", "b", "kv00000000b" },
};

/* Compile eps over w and build the table. */
static int design(struct pol_world *w, const struct pol_ep_in *eps, unsigned n,
		  bool fail_open, struct pnft_table *t)
{
	struct pol_ruleset rs;
	struct err e = { 0 };
	if (pol_compile(w, eps, n, &rs, &e) < 0) {
		fprintf(stderr, "# compile: %s\n", e.msg);
		return -1;
	}
	struct pnft_opts o = { .fail_open = fail_open };
	int rc = pnft_build(&rs, &o, t, &e);
	if (rc < 0)
		fprintf(stderr, "# build: %s\n", e.msg);
	pol_ruleset_free(&rs);
	return rc;
}

/* Replay plan(want, cur) on cur; true when cur then equals want and a second plan is
 * empty. */
static bool converge(const struct pnft_table *want, struct pnft_table *cur, unsigned *n_ops,
		     struct pnft_plan *keep)
{
	struct pnft_plan p;
	struct err e = { 0 };
	if (pnft_diff(want, cur, &p, &e) < 0)
		return false;
	if (n_ops)
		*n_ops = p.n;
	static uint64_t h = 100; /* unique, as the kernel's handles */
	if (pnft_apply(cur, &p, &h, &e) < 0) {
		fprintf(stderr, "# apply: %s\n", e.msg);
		pnft_plan_free(&p);
		return false;
	}
	if (keep)
		*keep = p;
	else
		pnft_plan_free(&p);
	if (!pnft_equal(want, cur)) {
		char *a = pnft_text(want), *b = pnft_text(cur);
		fprintf(stderr, "# not equal after apply\n%s\n----\n%s\n", a, b);
		free(a), free(b);
		return false;
	}
	struct pnft_plan again;
	if (pnft_diff(want, cur, &again, &e) < 0)
		return false;
	bool empty = again.n == 0;
	if (!empty)
		fprintf(stderr, "# second plan has %u ops (first %d)\n", again.n,
			(int)again.ops[0].kind);
	pnft_plan_free(&again);
	return empty;
}

static void test_build_shape(void)
{
	struct pol_world *w = world(pol_ab(false));
	struct pnft_table t;
	T_EQ(design(w, EPS, 2, false, &t), 0);
	T_EQ(t.n_chains, 6);
	T_STREQ(t.chains[0].name, "egress");
	T_STREQ(t.chains[1].name, "ingress");
	T_CHECK(t.chains[0].base && t.chains[0].prio == 0 && t.chains[1].prio == 1);
	const struct pnft_chain *eg = pnft_chain_find(&t, "egress");
	T_EQ(eg->n, 6);
	/* frames bridged by kvnet's L2 bridges (br_netfilter hands them to this hook with
	 * the bridge as iif and oif) are not a routed endpoint's: accepted first */
	T_EQ(eg->rules[0].l2_prefix, PNFT_IF_IIF);
	T_EQ(eg->rules[0].verdict, PNFT_V_ACCEPT);
	char br[16];
	l2_bridge_name("1dba2326", br);
	T_EQ(strncmp(br, PNFT_L2_PREFIX, strlen(PNFT_L2_PREFIX)), 0);
	T_EQ(eg->rules[1].not_prefix, PNFT_IF_IIF);
	T_EQ(eg->rules[2].ct_state, PNFT_CT_ESTABLISHED | PNFT_CT_RELATED);
	T_EQ(eg->rules[3].ct_state, PNFT_CT_INVALID);
	T_EQ(eg->rules[3].verdict, PNFT_V_DROP);
	T_EQ(eg->rules[4].vmap, PNFT_IF_IIF);
	T_STREQ(eg->rules[4].target, "eg");
	T_EQ(eg->rules[5].verdict, PNFT_V_DROP); /* closed */
	const struct pnft_chain *ing = pnft_chain_find(&t, "ingress");
	T_EQ(ing->rules[0].l2_prefix, PNFT_IF_OIF);
	T_EQ(ing->rules[4].vmap, PNFT_IF_OIF);
	T_EQ(ing->rules[1].not_prefix, PNFT_IF_OIF);
	/* x/a ingress: from x/b v4 and v6 on tcp 80, then drop */
	const struct pnft_chain *ia = pnft_chain_find(&t, "i_kv00000000a");
	T_CHECK(ia != NULL);
	T_EQ(ia->n, 3);
	T_EQ(ia->rules[0].nfproto, 2);
	T_EQ(ia->rules[1].nfproto, 10);
	T_CHECK(ia->rules[0].saddr);
	T_EQ(ia->rules[0].l4proto, 6);
	T_EQ(ia->rules[0].dport_lo, 80);
	T_EQ(ia->rules[0].dport_hi, 80);
	T_CHECK(ia->rules[0].counter && ia->rules[0].verdict == PNFT_V_ACCEPT);
	T_CHECK(strstr(ia->rules[0].udata, "x/a-in/ingress/0 v4 tcp:80-80") != NULL);
	T_EQ(strlen(ia->rules[0].udata) > 17 && ia->rules[0].udata[16] == ' ', 1);
	T_EQ(ia->rules[2].verdict, PNFT_V_DROP);
	T_CHECK(ia->rules[2].tail);
	const struct pnft_set *s4 = pnft_set_find(&t, ia->rules[0].set);
	T_CHECK(s4 != NULL);
	T_EQ(s4->family, AF_INET);
	T_EQ(s4->n, 1);
	T_CHECK(s4->r[0].lo == 0xc6120002u && s4->r[0].hi == 0xc6120002u);
	T_EQ(t.n_sets, 2);
	/* the others are open: one accept each */
	const char *open[] = { "e_kv00000000a", "e_kv00000000b", "i_kv00000000b" };
	for (int i = 0; i < 3; i++) {
		const struct pnft_chain *c = pnft_chain_find(&t, open[i]);
		T_CHECK(c && c->n == 1 && c->rules[0].verdict == PNFT_V_ACCEPT && c->rules[0].tail);
	}
	T_CHECK(pnft_map_has(&t, 0, "kv00000000a", "e_kv00000000a"));
	T_CHECK(pnft_map_has(&t, 1, "kv00000000b", "i_kv00000000b"));
	T_CHECK(!pnft_map_has(&t, 0, "kv00000000a", "i_kv00000000a"));
	pnft_table_free(&t);
	/* fail open: the catch-all accepts */
	T_EQ(design(w, EPS, 2, true, &t), 0);
	T_EQ(pnft_chain_find(&t, "egress")->rules[5].verdict, PNFT_V_ACCEPT);
	pnft_table_free(&t);
	pol_world_free(w);
}

static void test_text_deterministic(void)
{
	struct pol_world *w = world(pol_ab(false));
	struct pnft_table t1, t2;
	T_EQ(design(w, EPS, 2, false, &t1), 0);
	T_EQ(design(w, EPS, 2, false, &t2), 0);
	char *a = pnft_text(&t1), *b = pnft_text(&t2);
	T_CHECK(a && b && strcmp(a, b) == 0);
	const char *dump = getenv("KVT_PNFT_TEXT"); /* the netns lab loads it with nft -f */
	if (dump && a) {
		FILE *f = fopen(dump, "w");
		if (f)
			fputs(a, f), fclose(f);
	}
	T_CHECK(strstr(a, "table inet kvnet {") != NULL);
	T_CHECK(strstr(a, "type filter hook forward priority 0; policy accept;") != NULL);
	T_CHECK(strstr(a, "iifname != \"kv*\" accept") != NULL);
	T_CHECK(strstr(a, "ct state established,related accept") != NULL);
	T_CHECK(strstr(a, "ct state invalid counter drop") != NULL);
	T_CHECK(strstr(a, "oifname vmap @in") != NULL);
	T_CHECK(strstr(a, "\"kv00000000a\" : goto i_kv00000000a") != NULL);
	T_CHECK(strstr(a, "meta l4proto 6 th dport 80 counter accept") != NULL);
	T_CHECK(strstr(a, "elements = { 198.18.0.2 }") != NULL);
	T_CHECK(strstr(a, "elements = { 2001:db8::2 }") != NULL);
	free(a);
	free(b);
	pnft_table_free(&t1);
	pnft_table_free(&t2);
	pol_world_free(w);
}

static void test_diff_from_nothing_and_adopt(void)
{
	struct pol_world *w = world(pol_ab(false));
	struct pnft_table want, cur = { 0 };
	T_EQ(design(w, EPS, 2, false, &want), 0);
	struct pnft_plan p;
	T_EQ(pnft_diff(&want, &cur, &p, NULL), 0);
	T_EQ(p.ops[0].kind, PNFT_OP_ADD_TABLE);
	/* sets before maps before chains before rules before elements */
	int last = -1;
	static const int rank[] = { [PNFT_OP_ADD_TABLE] = 0, [PNFT_OP_ADD_SET] = 1,
				    [PNFT_OP_ADD_MAP] = 2, [PNFT_OP_ADD_CHAIN] = 3,
				    [PNFT_OP_ADD_RULE] = 4, [PNFT_OP_ADD_ELEM] = 5 };
	bool ordered = true;
	for (unsigned i = 0; i < p.n; i++) {
		int r = rank[p.ops[i].kind];
		ordered = ordered && r >= last;
		last = r;
	}
	T_CHECK(ordered);
	pnft_plan_free(&p);
	unsigned n;
	T_CHECK(converge(&want, &cur, &n, NULL));
	T_CHECK(n > 10);
	/* a restarted agent reading this table back plans nothing */
	struct pnft_table want2;
	T_EQ(design(w, EPS, 2, false, &want2), 0);
	T_EQ(pnft_diff(&want2, &cur, &p, NULL), 0);
	T_EQ(p.n, 0);
	pnft_plan_free(&p);
	pnft_table_free(&want2);
	pnft_table_free(&want);
	pnft_table_free(&cur);
	pol_world_free(w);
}

static void test_change_touches_one_endpoint(void)
{
	struct pol_world *w1 = world(pol_ab(false)), *w2 = world(pol_ab(true));
	struct pnft_table want1, want2, cur = { 0 };
	T_EQ(design(w1, EPS, 2, false, &want1), 0);
	T_CHECK(converge(&want1, &cur, NULL, NULL));
	T_EQ(design(w2, EPS, 2, false, &want2), 0);
	struct pnft_plan p;
	unsigned n;
	T_CHECK(converge(&want2, &cur, &n, &p));
	bool only_a = true, dels_set = false, flush = false;
	unsigned ins = 0, del = 0;
	for (unsigned i = 0; i < p.n; i++) {
		const struct pnft_op *o = &p.ops[i];
		if (o->kind == PNFT_OP_ADD_SET || o->kind == PNFT_OP_DEL_SET) {
			dels_set |= o->kind == PNFT_OP_DEL_SET;
			continue;
		}
		only_a = only_a && strcmp(o->name, "i_kv00000000a") == 0;
		flush |= o->kind == PNFT_OP_FLUSH_CHAIN;
		ins += o->kind == PNFT_OP_INSERT_RULE;
		del += o->kind == PNFT_OP_DEL_RULE;
	}
	T_CHECK(only_a);
	T_CHECK(dels_set);
	T_CHECK(!flush);
	T_EQ(ins, 2); /* v4 and v6 rules with the new sets */
	T_EQ(del, 2);
	/* the new v4 set holds b and c, adjacent: one interval */
	const struct pnft_chain *ia = pnft_chain_find(&cur, "i_kv00000000a");
	const struct pnft_set *s = NULL;
	for (unsigned i = 0; i < ia->n; i++)
		if (ia->rules[i].nfproto == 2)
			s = pnft_set_find(&cur, ia->rules[i].set);
	T_CHECK(s && s->n == 1 && s->r[0].lo == 0xc6120002u && s->r[0].hi == 0xc6120003u);
	T_EQ(cur.n_sets, 2);
	pnft_plan_free(&p);
	pnft_table_free(&want1);
	pnft_table_free(&want2);
	pnft_table_free(&cur);
	pol_world_free(w1);
	pol_world_free(w2);
}

static void test_endpoint_removed(void)
{
	struct pol_world *w = world(pol_ab(false));
	struct pnft_table want1, want2, cur = { 0 };
	T_EQ(design(w, EPS, 2, false, &want1), 0);
	T_CHECK(converge(&want1, &cur, NULL, NULL));
	T_EQ(design(w, EPS + 1, 1, false, &want2), 0); /* only x/b left */
	struct pnft_plan p;
	T_CHECK(converge(&want2, &cur, NULL, &p));
	unsigned del_elem = 0, del_chain = 0, other = 0;
	for (unsigned i = 0; i < p.n; i++) {
		const struct pnft_op *o = &p.ops[i];
		if (o->kind == PNFT_OP_DEL_ELEM && strcmp(o->elem.ifname, "kv00000000a") == 0)
			del_elem++;
		else if (o->kind == PNFT_OP_DEL_CHAIN && strstr(o->name, "kv00000000a"))
			del_chain++;
		else if (o->kind != PNFT_OP_FLUSH_CHAIN && o->kind != PNFT_OP_DEL_SET)
			other++;
	}
	T_EQ(del_elem, 2);
	T_EQ(del_chain, 2);
	T_EQ(other, 0);
	T_EQ(cur.n_sets, 0);
	T_CHECK(pnft_chain_find(&cur, "i_kv00000000a") == NULL);
	pnft_plan_free(&p);
	pnft_table_free(&want1);
	pnft_table_free(&want2);
	pnft_table_free(&cur);
	pol_world_free(w);
}

static void test_isolation_flip_and_repair(void)
{
	struct pol_world *w0 = world(NULL), *w1 = world(pol_ab(false));
	struct pnft_table want0, want1, cur = { 0 };
	T_EQ(design(w0, EPS, 2, false, &want0), 0);
	T_CHECK(converge(&want0, &cur, NULL, NULL));
	T_EQ(design(w1, EPS, 2, false, &want1), 0);
	T_CHECK(converge(&want1, &cur, NULL, NULL)); /* open → isolated */
	T_CHECK(converge(&want0, &cur, NULL, NULL)); /* and back */
	T_CHECK(converge(&want1, &cur, NULL, NULL));
	/* somebody moved the drop to the head of x/a's chain: rewritten, in one batch */
	struct pnft_chain *ia = (struct pnft_chain *)pnft_chain_find(&cur, "i_kv00000000a");
	T_EQ(ia->n, 3);
	struct pnft_rule r0 = ia->rules[0];
	ia->rules[0] = ia->rules[2];
	ia->rules[2] = r0;
	T_CHECK(!pnft_equal(&want1, &cur));
	struct pnft_plan p;
	T_CHECK(converge(&want1, &cur, NULL, &p));
	T_EQ(p.ops[0].kind, PNFT_OP_FLUSH_CHAIN);
	T_STREQ(p.ops[0].name, "i_kv00000000a");
	pnft_plan_free(&p);
	/* a foreign rule and a stale chain in our table go away */
	struct pnft_table junk = { 0 };
	T_EQ(design(w1, EPS, 2, false, &junk), 0);
	struct pnft_plan jp;
	T_EQ(pnft_diff(&junk, &(struct pnft_table){ 0 }, &jp, NULL), 0);
	pnft_plan_free(&jp);
	pnft_table_free(&junk);
	pnft_table_free(&want0);
	pnft_table_free(&want1);
	pnft_table_free(&cur);
	pol_world_free(w0);
	pol_world_free(w1);
}

static void test_egress_ipblock_ports(void)
{
	/* x/b egress: to 198.18.8.0/24 except 198.18.8.128/25 on udp 53 and tcp 1000-2000 */
	const char *pol =
		"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"b-out\",\"namespace\":\"x\"},"
		"\"spec\":{\"podSelector\":{\"matchLabels\":{\"pod\":\"b\"}},\"policyTypes\":[\"Egress\"],"
		"\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"198.18.8.0/24\",\"except\":"
		"[\"198.18.8.128/25\"]}}],\"ports\":[{\"protocol\":\"UDP\",\"port\":53},"
		"{\"port\":1000,\"endPort\":2000}]}]}}";
	struct pol_world *w = world(pol);
	struct pnft_table t;
	T_EQ(design(w, EPS, 2, false, &t), 0);
	const struct pnft_chain *eb = pnft_chain_find(&t, "e_kv00000000b");
	T_EQ(eb->n, 3); /* v4 only: 2 ports + drop */
	T_CHECK(!eb->rules[0].saddr && eb->rules[0].nfproto == 2);
	T_CHECK((eb->rules[0].l4proto == 17 && eb->rules[0].dport_lo == 53) ||
		(eb->rules[1].l4proto == 17 && eb->rules[1].dport_lo == 53));
	T_CHECK((eb->rules[0].dport_lo == 1000 && eb->rules[0].dport_hi == 2000) ||
		(eb->rules[1].dport_lo == 1000 && eb->rules[1].dport_hi == 2000));
	const struct pnft_set *s = pnft_set_find(&t, eb->rules[0].set);
	T_CHECK(s && s->n == 1 && s->r[0].lo == 0xc6120800u && s->r[0].hi == 0xc612087fu);
	T_STREQ(eb->rules[0].set, eb->rules[1].set); /* one set, shared */
	T_EQ(t.n_sets, 1);
	/* ingress of b is not isolated by an egress-only policy */
	T_EQ(pnft_chain_find(&t, "i_kv00000000b")->n, 1);
	pnft_table_free(&t);
	pol_world_free(w);
}

/* With nflog on, an isolated direction logs (rate-limited) before its default deny; a
 * table without the log rules converges to one with them, and back. */
static void test_nflog_rule(void)
{
	struct pol_world *w = world(pol_ab(false));
	struct pol_ruleset rs;
	struct err e = { 0 };
	T_EQ(pol_compile(w, EPS, 2, &rs, &e), 0);
	struct pnft_opts on = { .nflog = true, .nflog_group = 9746, .nflog_rate = 50 };
	struct pnft_opts off = { 0 };
	struct pnft_table t_on, t_off, cur = { 0 };
	T_EQ(pnft_build(&rs, &on, &t_on, &e), 0);
	T_EQ(pnft_build(&rs, &off, &t_off, &e), 0);
	const struct pnft_chain *ia = pnft_chain_find(&t_on, "i_kv00000000a");
	T_CHECK(ia && ia->n == 4);
	if (ia && ia->n == 4) {
		const struct pnft_rule *lg = &ia->rules[2], *dr = &ia->rules[3];
		T_CHECK(lg->log && lg->log_group == 9746 && lg->limit_rate == 50 && lg->tail);
		T_EQ(lg->verdict, PNFT_V_NONE);
		T_CHECK(!lg->counter);
		T_STREQ(lg->log_prefix, "kvnet deny i_kv00000000a");
		T_CHECK(strstr(lg->udata, "x/a ingress: deny log") != NULL);
		T_CHECK(dr->counter && dr->verdict == PNFT_V_DROP);
		T_CHECK(strstr(dr->udata, "default deny") != NULL);
	}
	/* the open chains carry no log rule; the deny rule's identity does not change */
	T_EQ(pnft_chain_find(&t_on, "e_kv00000000a")->n, 1);
	T_STREQ(pnft_chain_find(&t_off, "i_kv00000000a")->rules[2].udata,
		pnft_chain_find(&t_on, "i_kv00000000a")->rules[3].udata);
	char *txt = pnft_text(&t_on);
	T_CHECK(txt && strstr(txt, "limit rate 50/second burst 50 packets log prefix "
			      "\"kvnet deny i_kv00000000a\" group 9746 ") != NULL);
	free(txt);
	unsigned n_ops = 0;
	T_CHECK(converge(&t_off, &cur, NULL, NULL));
	T_CHECK(converge(&t_on, &cur, &n_ops, NULL));
	T_CHECK(n_ops >= 1);
	T_CHECK(converge(&t_off, &cur, NULL, NULL));
	pnft_table_free(&cur);
	pnft_table_free(&t_on);
	pnft_table_free(&t_off);
	pol_ruleset_free(&rs);
	pol_world_free(w);
}

static void test_bad_ifname(void)
{
	struct pol_world *w = world(NULL);
	struct pol_ep_in bad[] = { { "x", "a", "kv0123456789abcdef" } };
	struct pol_ruleset rs;
	T_EQ(pol_compile(w, bad, 1, &rs, NULL), 0);
	struct pnft_table t;
	struct err e = { 0 };
	T_EQ(pnft_build(&rs, NULL, &t, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "kv0123456789abcdef") != NULL);
	pol_ruleset_free(&rs);
	pol_world_free(w);
}

int main(void)
{
	T_RUN(test_build_shape);
	T_RUN(test_text_deterministic);
	T_RUN(test_diff_from_nothing_and_adopt);
	T_RUN(test_change_touches_one_endpoint);
	T_RUN(test_endpoint_removed);
	T_RUN(test_isolation_flip_and_repair);
	T_RUN(test_egress_ipblock_ports);
	T_RUN(test_nflog_rule);
	T_RUN(test_bad_ifname);
	return t_done();
}
