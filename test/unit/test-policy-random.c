/* Property check for policy/: random worlds (namespaces and pods with labels from a small
 * space, named container ports, random NetworkPolicies with every selector form, ipBlocks
 * with except, numeric/endPort/named ports, policyTypes) are written as JSON, loaded, and
 * every (pod or outside address) x (pod or outside address) x port x protocol answer of
 * pol_verdict() is compared with a brute-force evaluator written straight from the
 * Kubernetes semantics over the generator's own model (it shares no code with policy/). */
#include "policy/policy.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NNS 3
#define NPOD 6
#define NKEY 2

static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* label value per key: -1 absent, else 0/1 */
struct mlabels { int v[NKEY]; };
struct mpod { int ns; struct mlabels l; int pa_port, pa_proto; int pb_port, pb_proto; };
struct mreq { int key, op, vals; }; /* op 0 In 1 NotIn 2 Exists 3 DNE; vals bitmask of 0/1 */
struct msel { bool present; int n; struct mreq r[2]; };
struct mpeer { int kind; struct msel ps, nss; int block_ns; int except_pod; }; /* kind 0 sel, 1 ipBlock */
struct mport { int named; int port, end, proto; int name; }; /* named: 0 numeric, 1 named; port 0 = any */
struct mrule { bool all_peers; int np; struct mpeer p[2]; bool all_ports; int nq; struct mport q[2]; };
struct mpol { int ns; struct msel sel; bool types[2]; int nr[2]; struct mrule r[2][2]; };

struct model {
	struct mlabels nsl[NNS];
	struct mpod pod[NPOD];
	int npol;
	struct mpol pol[3];
};

static const char *PROTO[] = { "TCP", "UDP" };
static const int PROTONUM[] = { POL_TCP, POL_UDP };

static bool labels_match(const struct msel *s, const struct mlabels *l)
{
	for (int i = 0; i < s->n; i++) {
		int v = l->v[s->r[i].key];
		bool in = v >= 0 && (s->r[i].vals >> v & 1);
		switch (s->r[i].op) {
		case 0: if (!in) return false; break;
		case 1: if (in) return false; break;
		case 2: if (v < 0) return false; break;
		default: if (v >= 0) return false; break;
		}
	}
	return true;
}

/* end: 0..NPOD-1 pods, NPOD = the outside address 198.19.0.1 */
static bool ip_in_block(const struct model *m, const struct mpeer *p, int end)
{
	if (end == NPOD)
		return p->block_ns < 0; /* block_ns -1: 198.16.0.0/14 covers 198.19.0.1 */
	if (p->except_pod == end)
		return false;
	return p->block_ns < 0 || m->pod[end].ns == p->block_ns;
}

static bool peer_match(const struct model *m, const struct mpol *pol, const struct mpeer *p, int end)
{
	if (p->kind == 1)
		return ip_in_block(m, p, end);
	if (end == NPOD)
		return false;
	const struct mpod *pod = &m->pod[end];
	if (p->nss.present ? !labels_match(&p->nss, &m->nsl[pod->ns]) : pod->ns != pol->ns)
		return false;
	return !p->ps.present || labels_match(&p->ps, &pod->l);
}

static bool port_match(const struct model *m, const struct mport *q, int target, int port, int proto)
{
	if (q->proto != proto)
		return false;
	if (q->named) {
		if (target == NPOD)
			return false;
		const struct mpod *t = &m->pod[target];
		int np = q->name ? t->pb_port : t->pa_port, pr = q->name ? t->pb_proto : t->pa_proto;
		return pr == proto && np == port;
	}
	if (!q->port)
		return true;
	return port >= q->port && port <= (q->end ? q->end : q->port);
}

/* dir 0: is traffic from `peer` into `self` allowed; dir 1: from `self` to `peer`. */
static bool dir_ok(const struct model *m, int dir, int self, int peer, int port, int proto)
{
	if (self == NPOD)
		return true;
	bool isolated = false;
	for (int i = 0; i < m->npol; i++) {
		const struct mpol *pol = &m->pol[i];
		if (pol->ns != m->pod[self].ns || !pol->types[dir] || !labels_match(&pol->sel, &m->pod[self].l))
			continue;
		isolated = true;
		for (int r = 0; r < pol->nr[dir]; r++) {
			const struct mrule *ru = &pol->r[dir][r];
			bool pm = ru->all_peers, qm = ru->all_ports;
			for (int k = 0; !pm && k < ru->np; k++)
				pm = peer_match(m, pol, &ru->p[k], peer);
			int target = dir == 0 ? self : peer;
			for (int k = 0; !qm && k < ru->nq; k++)
				qm = port_match(m, &ru->q[k], target, port, proto);
			if (pm && qm)
				return true;
		}
	}
	return !isolated;
}

static void gen_labels(struct mlabels *l)
{
	for (int k = 0; k < NKEY; k++)
		l->v[k] = (int)rnd(3) - 1;
}

static void gen_sel(struct msel *s, bool may_absent)
{
	s->present = !may_absent || rnd(3) != 0;
	s->n = s->present ? (int)rnd(3) : 0;
	for (int i = 0; i < s->n; i++) {
		s->r[i].key = (int)rnd(NKEY);
		s->r[i].op = (int)rnd(4);
		s->r[i].vals = 1 + (int)rnd(3);
	}
}

static void w_labels(FILE *f, const struct mlabels *l)
{
	fprintf(f, "\"labels\":{");
	bool first = true;
	for (int k = 0; k < NKEY; k++)
		if (l->v[k] >= 0) {
			fprintf(f, "%s\"k%d\":\"v%d\"", first ? "" : ",", k, l->v[k]);
			first = false;
		}
	fprintf(f, "}");
}

static void w_sel(FILE *f, const char *key, const struct msel *s)
{
	static const char *OPS[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	if (!s->present)
		return;
	fprintf(f, "\"%s\":{\"matchExpressions\":[", key);
	for (int i = 0; i < s->n; i++) {
		fprintf(f, "%s{\"key\":\"k%d\",\"operator\":\"%s\"", i ? "," : "", s->r[i].key, OPS[s->r[i].op]);
		if (s->r[i].op < 2)
			fprintf(f, ",\"values\":[%s%s%s]", s->r[i].vals & 1 ? "\"v0\"" : "",
				s->r[i].vals == 3 ? "," : "", s->r[i].vals & 2 ? "\"v1\"" : "");
		fprintf(f, "}");
	}
	fprintf(f, "]}");
}

static void w_pol(FILE *f, int idx, const struct mpol *p, const struct model *m)
{
	fprintf(f, "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"p%d\",\"namespace\":\"n%d\"},"
		   "\"spec\":{", idx, p->ns);
	w_sel(f, "podSelector", &p->sel);
	fprintf(f, ",\"policyTypes\":[%s%s%s]", p->types[0] ? "\"Ingress\"" : "",
		p->types[0] && p->types[1] ? "," : "", p->types[1] ? "\"Egress\"" : "");
	for (int d = 0; d < 2; d++) {
		fprintf(f, ",\"%s\":[", d ? "egress" : "ingress");
		for (int r = 0; r < p->nr[d]; r++) {
			const struct mrule *ru = &p->r[d][r];
			fprintf(f, "%s{", r ? "," : "");
			bool comma = false;
			if (!ru->all_peers) {
				fprintf(f, "\"%s\":[", d ? "to" : "from");
				for (int k = 0; k < ru->np; k++) {
					const struct mpeer *pe = &ru->p[k];
					fprintf(f, "%s{", k ? "," : "");
					if (pe->kind == 1) {
						if (pe->block_ns < 0)
							fprintf(f, "\"ipBlock\":{\"cidr\":\"198.16.0.0/14\"");
						else
							fprintf(f, "\"ipBlock\":{\"cidr\":\"198.18.%d.0/24\"", pe->block_ns);
						if (pe->except_pod >= 0)
							fprintf(f, ",\"except\":[\"198.18.%d.%d/32\"]",
								m->pod[pe->except_pod].ns, pe->except_pod + 1);
						fprintf(f, "}");
					} else {
						w_sel(f, "podSelector", &pe->ps);
						if (pe->ps.present && pe->nss.present)
							fprintf(f, ",");
						w_sel(f, "namespaceSelector", &pe->nss);
					}
					fprintf(f, "}");
				}
				fprintf(f, "]");
				comma = true;
			}
			if (!ru->all_ports) {
				fprintf(f, "%s\"ports\":[", comma ? "," : "");
				for (int k = 0; k < ru->nq; k++) {
					const struct mport *q = &ru->q[k];
					fprintf(f, "%s{\"protocol\":\"%s\"", k ? "," : "", PROTO[q->proto]);
					if (q->named)
						fprintf(f, ",\"port\":\"p%c\"", q->name ? 'b' : 'a');
					else if (q->port)
						fprintf(f, ",\"port\":%d", q->port);
					if (!q->named && q->port && q->end)
						fprintf(f, ",\"endPort\":%d", q->end);
					fprintf(f, "}");
				}
				fprintf(f, "]");
			}
			fprintf(f, "}");
		}
		fprintf(f, "]");
	}
	fprintf(f, "}}");
}

static void gen(struct model *m)
{
	memset(m, 0, sizeof(*m));
	for (int n = 0; n < NNS; n++)
		gen_labels(&m->nsl[n]);
	for (int i = 0; i < NPOD; i++) {
		struct mpod *p = &m->pod[i];
		p->ns = (int)rnd(NNS);
		gen_labels(&p->l);
		p->pa_port = 80 + (int)rnd(3);
		p->pa_proto = (int)rnd(2);
		p->pb_port = 80 + (int)rnd(3);
		p->pb_proto = (int)rnd(2);
		if (p->pb_port == p->pa_port && p->pb_proto == p->pa_proto)
			p->pb_proto ^= 1; /* the API refuses a duplicate port/protocol */
	}
	m->npol = (int)rnd(4);
	for (int i = 0; i < m->npol; i++) {
		struct mpol *p = &m->pol[i];
		p->ns = (int)rnd(NNS);
		gen_sel(&p->sel, false);
		int t = 1 + (int)rnd(3);
		p->types[0] = t & 1;
		p->types[1] = t & 2;
		for (int d = 0; d < 2; d++) {
			p->nr[d] = (int)rnd(3);
			for (int r = 0; r < p->nr[d]; r++) {
				struct mrule *ru = &p->r[d][r];
				ru->all_peers = rnd(4) == 0;
				ru->np = ru->all_peers ? 0 : 1 + (int)rnd(2);
				for (int k = 0; k < ru->np; k++) {
					struct mpeer *pe = &ru->p[k];
					pe->kind = rnd(3) == 0;
					if (pe->kind) {
						pe->block_ns = (int)rnd(NNS + 1) - 1;
						pe->except_pod = rnd(2) ? (int)rnd(NPOD) : -1;
						if (pe->except_pod >= 0 && pe->block_ns >= 0 &&
						    m->pod[pe->except_pod].ns != pe->block_ns)
							pe->except_pod = -1;
					} else {
						gen_sel(&pe->ps, true);
						gen_sel(&pe->nss, true);
						if (!pe->ps.present && !pe->nss.present)
							pe->ps.present = true;
					}
				}
				ru->all_ports = rnd(3) == 0;
				ru->nq = ru->all_ports ? 0 : 1 + (int)rnd(2);
				for (int k = 0; k < ru->nq; k++) {
					struct mport *q = &ru->q[k];
					q->proto = (int)rnd(2);
					q->named = rnd(3) == 0;
					q->name = (int)rnd(2);
					q->port = q->named ? 0 : (rnd(4) ? 80 + (int)rnd(3) : 0);
					q->end = q->port && rnd(2) ? q->port + (int)rnd(2) : 0;
				}
			}
		}
	}
}

static char *world_json(const struct model *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "{\"kind\":\"List\",\"items\":[");
	for (int n = 0; n < NNS; n++) {
		fprintf(f, "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"n%d\",", n);
		w_labels(f, &m->nsl[n]);
		fprintf(f, "}},");
	}
	for (int i = 0; i < NPOD; i++) {
		const struct mpod *p = &m->pod[i];
		fprintf(f, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"q%d\",\"namespace\":\"n%d\",", i, p->ns);
		w_labels(f, &p->l);
		fprintf(f, "},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":["
			   "{\"name\":\"pa\",\"containerPort\":%d,\"protocol\":\"%s\"},"
			   "{\"name\":\"pb\",\"containerPort\":%d,\"protocol\":\"%s\"}]}]},"
			   "\"status\":{\"podIP\":\"198.18.%d.%d\"}}%s",
			p->pa_port, PROTO[p->pa_proto], p->pb_port, PROTO[p->pb_proto], p->ns, i + 1,
			i + 1 < NPOD || m->npol ? "," : "");
	}
	for (int i = 0; i < m->npol; i++) {
		w_pol(f, i, &m->pol[i], m);
		fprintf(f, "%s", i + 1 < m->npol ? "," : "");
	}
	fprintf(f, "]}");
	fclose(f);
	return buf;
}

static void test_random_worlds(void)
{
	int bad = 0, checked = 0;
	for (int iter = 0; iter < 400 && bad < 5; iter++) {
		rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(iter + 1) * 0x2545f4914f6cdd1dull;
		struct model m;
		gen(&m);
		char *json = world_json(&m);
		struct pol_world *w = pol_world_new();
		struct err e = { 0 };
		if (pol_world_add_json(w, json, strlen(json), NULL, &e) < 0) {
			fprintf(stderr, "# iter %d: %s\n# %s\n", iter, e.msg, json);
			bad++;
			goto next;
		}
		for (int s = 0; s <= NPOD; s++)
			for (int d = 0; d <= NPOD; d++) {
				if (s == d)
					continue;
				for (int port = 79; port <= 83; port++)
					for (int pr = 0; pr < 2; pr++) {
						char sn[8], dn[8], sns[8], dns[8];
						struct pol_end se = { 0 }, de = { 0 };
						if (s == NPOD) {
							ip_parse("198.19.0.1", &se.ip);
						} else {
							snprintf(sns, sizeof(sns), "n%d", m.pod[s].ns);
							snprintf(sn, sizeof(sn), "q%d", s);
							se.ns = sns, se.name = sn;
						}
						if (d == NPOD) {
							ip_parse("198.19.0.1", &de.ip);
						} else {
							snprintf(dns, sizeof(dns), "n%d", m.pod[d].ns);
							snprintf(dn, sizeof(dn), "q%d", d);
							de.ns = dns, de.name = dn;
						}
						struct pol_verdict v;
						if (pol_verdict(w, &se, &de, (uint8_t)PROTONUM[pr], (uint16_t)port, &v, &e) < 0) {
							fprintf(stderr, "# iter %d: verdict: %s\n", iter, e.msg);
							bad++;
							continue;
						}
						bool want = dir_ok(&m, 1, s, d, port, pr) && dir_ok(&m, 0, d, s, port, pr);
						checked++;
						if (v.allowed != want && bad++ < 5)
							fprintf(stderr, "# iter %d: q%d -> q%d %d/%s: compiler %d, brute force %d\n# %s\n",
								iter, s, d, port, PROTO[pr], v.allowed, want, json);
						pol_verdict_free(&v);
					}
			}
next:
		pol_world_free(w);
		free(json);
	}
	fprintf(stderr, "# %d answers compared\n", checked);
	T_EQ(bad, 0);
	T_CHECK(checked > 100000);
}

int main(void)
{
	T_RUN(test_random_worlds);
	return t_done();
}
