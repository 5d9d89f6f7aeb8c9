/* nft-bench — load one policy-shaped ruleset through net/nft (kvnet's own netlink) and
 * through `nft -f` of the same ruleset written as text, in the same run, in the current
 * network namespace (bench-nft runs it in a throw-away one). Both replace the table
 * atomically (add, delete, create in one transaction). After each load the ruleset is
 * listed with `nft list ruleset`; the two listings must be identical, or the run fails.
 * Then the incremental case: one rule replaced in place (one message) through net/nft.
 *
 *   nft-bench ENDPOINTS RULES_PER_ENDPOINT RANGES_PER_SET ROUNDS
 * prints one line: rules elements kvnet_full_s nft_full_s kvnet_one_rule_s (medians)
 */
#include "lib/err.h"
#include "lib/ip.h"
#include "net/nft.h"
#include "net/nl.h"

#include <errno.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmpd);
	return v[n / 2];
}

/* The ruleset as nft text. */
static int write_text(const char *path, int eps, int rules, int ranges)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "table inet kvnet\ndelete table inet kvnet\ntable inet kvnet {\n");
	for (int i = 0; i < eps; i++) {
		fprintf(f, "\tset peers-%d {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { ",
			i);
		for (int k = 0; k < ranges; k++)
			fprintf(f, "%s198.19.%d.%d-198.19.%d.%d", k ? ", " : "", k, (i % 4) * 64, k,
				(i % 4) * 64 + 63);
		fprintf(f, " }\n\t}\n");
	}
	fprintf(f, "\tmap epmap {\n\t\ttype ifname : verdict\n\t\telements = { ");
	for (int i = 0; i < eps; i++)
		fprintf(f, "%s\"veth-%d\" : jump ep-%d", i ? ", " : "", i, i);
	fprintf(f, " }\n\t}\n");
	for (int i = 0; i < eps; i++) {
		fprintf(f, "\tchain ep-%d {\n", i);
		for (int j = 0; j < rules; j++)
			fprintf(f,
				"\t\tip saddr @peers-%d tcp dport %d counter accept comment \"ep-%d-r%d\"\n",
				i, 1000 + j, i, j);
		fprintf(f, "\t\tcounter drop comment \"ep-%d-default\"\n\t}\n", i);
	}
	fprintf(f, "\tchain base-fwd {\n\t\ttype filter hook forward priority 0; policy accept;\n"
		   "\t\tct state established,related counter accept comment \"ct-est\"\n"
		   "\t\tct state invalid counter drop comment \"ct-inv\"\n"
		   "\t\toifname vmap @epmap comment \"dispatch\"\n\t}\n}\n");
	return fclose(f) == 0 ? 0 : -errno;
}

/* One endpoint rule: ip saddr @peers-i tcp dport P counter accept. */
static void ep_rule(struct nft_batch *b, enum nft_ruleop op, uint64_t handle, int i, int j)
{
	char chain[32], set[32], id[48];
	snprintf(chain, sizeof(chain), "ep-%d", i);
	snprintf(set, sizeof(set), "peers-%d", i);
	snprintf(id, sizeof(id), "ep-%d-r%d", i, j);
	nft_rule_begin(b, op, chain, handle, id);
	nft_match_addr_set(b, NFT_SRC, AF_INET, set, false);
	nft_match_l4proto(b, IPPROTO_TCP);
	nft_match_port(b, NFT_DST, (uint16_t)(1000 + j), (uint16_t)(1000 + j));
	nft_counter(b);
	nft_verdict(b, NFT_V_ACCEPT, NULL);
	nft_rule_end(b);
}

/* The same ruleset through net/nft. */
static int load_kvnet(struct nl_sock *s, int eps, int rules, int ranges, struct err *e)
{
	struct nft_batch b;
	struct nft_elem el;
	char name[32], chain[32], id[48];
	int rc = nft_batch_init(&b, "kvnet", e);
	if (rc < 0)
		return rc;
	nft_table(&b, NFT_TABLE_ADD);
	nft_table(&b, NFT_TABLE_DELETE);
	nft_table(&b, NFT_TABLE_ADD);
	struct nft_chain_spec base = {"base-fwd", NFT_HOOK_FORWARD, 0, false};
	struct nft_set_spec map = {.name = "epmap", .key = NFT_KEY_IFNAME, .vmap = true};
	for (int i = 0; i < eps; i++) {
		snprintf(name, sizeof(name), "peers-%d", i);
		struct nft_set_spec set = {name, NFT_KEY_IPV4, true, false};
		nft_set_add(&b, &set);
		for (int k = 0; k < ranges; k++) {
			struct ip_addr lo = {.family = AF_INET,
					     .b = {198, 19, (uint8_t)k, (uint8_t)((i % 4) * 64)}};
			struct ip_addr hi = lo;
			hi.b[3] += 63;
			nft_elem_addr(&el, &lo, &hi);
			nft_elems(&b, &set, false, &el, 1);
		}
		snprintf(chain, sizeof(chain), "ep-%d", i);
		struct nft_chain_spec c = {chain, NFT_HOOK_NONE, 0, false};
		nft_chain_add(&b, &c);
		for (int j = 0; j < rules; j++)
			ep_rule(&b, NFT_RULE_APPEND, 0, i, j);
		snprintf(id, sizeof(id), "ep-%d-default", i);
		nft_rule_begin(&b, NFT_RULE_APPEND, chain, 0, id);
		nft_counter(&b);
		nft_verdict(&b, NFT_V_DROP, NULL);
		nft_rule_end(&b);
	}
	nft_set_add(&b, &map);
	for (int i = 0; i < eps; i++) {
		char ifn[16];
		snprintf(ifn, sizeof(ifn), "veth-%d", i);
		snprintf(chain, sizeof(chain), "ep-%d", i);
		nft_elem_ifname(&el, ifn, NFT_V_JUMP, chain);
		nft_elems(&b, &map, false, &el, 1);
	}
	nft_chain_add(&b, &base);
	nft_rule_begin(&b, NFT_RULE_APPEND, "base-fwd", 0, "ct-est");
	nft_match_ct_state(&b, NFT_CTS_ESTABLISHED | NFT_CTS_RELATED);
	nft_counter(&b);
	nft_verdict(&b, NFT_V_ACCEPT, NULL);
	nft_rule_end(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "base-fwd", 0, "ct-inv");
	nft_match_ct_state(&b, NFT_CTS_INVALID);
	nft_counter(&b);
	nft_verdict(&b, NFT_V_DROP, NULL);
	nft_rule_end(&b);
	nft_rule_begin(&b, NFT_RULE_APPEND, "base-fwd", 0, "dispatch");
	nft_vmap(&b, NFT_OIFNAME, "epmap");
	nft_rule_end(&b);
	rc = nft_commit(s, &b, 0, e);
	nft_batch_free(&b);
	return rc;
}

static char *listing(void)
{
	FILE *p = popen("nft list ruleset", "r");
	size_t cap = 1 << 20, n = 0, r;
	char *buf = malloc(cap);
	while (p && buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (n + 1 == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				break;
			buf = nb;
		}
	}
	if (p)
		pclose(p);
	if (buf)
		buf[n] = 0;
	return buf;
}

int main(int argc, char **argv)
{
	struct err e = {0};
	struct nl_sock *s;
	if (argc != 5) {
		fprintf(stderr, "usage: nft-bench ENDPOINTS RULES RANGES ROUNDS\n");
		return 2;
	}
	int eps = atoi(argv[1]), rules = atoi(argv[2]), ranges = atoi(argv[3]);
	int rounds = atoi(argv[4]);
	if (eps < 1 || rules < 1 || ranges < 1 || ranges > 256 || rounds < 1 || rounds > 50)
		return 2;
	const char *txt = "/tmp/nft-bench.nft";
	char path[64];
	snprintf(path, sizeof(path), "/tmp/nft-bench-%d.nft", (int)getpid());
	txt = path;
	if (write_text(txt, eps, rules, ranges) < 0 || nl_open(&s, NETLINK_NETFILTER, &e) < 0) {
		fprintf(stderr, "nft-bench: setup: %s\n", e.msg);
		return 1;
	}
	double kv[50], nf[50], one[50];
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "nft -f %s", txt);
	char *lk = NULL, *ln = NULL;
	int rc = 0;
	for (int r = 0; r < rounds && rc == 0; r++) {
		double t0 = now();
		rc = load_kvnet(s, eps, rules, ranges, &e);
		kv[r] = now() - t0;
		if (rc < 0) {
			fprintf(stderr, "nft-bench: kvnet load: %s\n", e.msg);
			break;
		}
		if (r == 0)
			lk = listing();
		/* the incremental case: one rule of one endpoint rewritten in place */
		struct nft_state st;
		nft_state_init(&st, "kvnet");
		rc = nft_state_load(s, &st, &e);
		const struct nft_rule_info *ri = rc == 0 ? nft_state_rule(&st, "ep-0-r0") : NULL;
		uint64_t h = ri ? ri->handle : 0;
		nft_state_free(&st);
		if (!h) {
			fprintf(stderr, "nft-bench: read back: %s\n", rc ? e.msg : "ep-0-r0 missing");
			rc = -1;
			break;
		}
		struct nft_batch b;
		t0 = now();
		nft_batch_init(&b, "kvnet", &e);
		ep_rule(&b, NFT_RULE_REPLACE, h, 0, 0);
		rc = nft_commit(s, &b, 0, &e);
		one[r] = now() - t0;
		nft_batch_free(&b);
		if (rc < 0) {
			fprintf(stderr, "nft-bench: replace: %s\n", e.msg);
			break;
		}
		t0 = now();
		int st2 = system(cmd);
		nf[r] = now() - t0;
		if (st2 != 0) {
			fprintf(stderr, "nft-bench: %s: status %d\n", cmd, st2);
			rc = -1;
			break;
		}
		if (r == 0)
			ln = listing();
	}
	if (rc == 0 && (!lk || !ln || strcmp(lk, ln) != 0)) {
		fprintf(stderr, "nft-bench: the two loads list differently\n");
		FILE *f = fopen("build/bench/nft-kvnet.txt", "w");
		if (f && lk)
			fputs(lk, f);
		if (f)
			fclose(f);
		f = fopen("build/bench/nft-nft.txt", "w");
		if (f && ln)
			fputs(ln, f);
		if (f)
			fclose(f);
		rc = -1;
	}
	free(lk);
	free(ln);
	/* leave nothing behind */
	struct nft_batch b;
	nft_batch_init(&b, "kvnet", &e);
	nft_table(&b, NFT_TABLE_ADD);
	nft_table(&b, NFT_TABLE_DELETE);
	nft_commit(s, &b, 0, &e);
	nft_batch_free(&b);
	nl_close(s);
	remove(txt);
	if (rc < 0)
		return 1;
	int nrules = eps * (rules + 1) + 3;
	int nelems = eps * ranges + eps;
	printf("%d %d %.6f %.6f %.6f\n", nrules, nelems, median(kv, rounds), median(nf, rounds),
	       median(one, rounds));
	return 0;
}
