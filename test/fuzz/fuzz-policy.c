/* libFuzzer target for policy/: the input is parsed as JSON objects (one, or a List), and
 * again as YAML documents, into a world — NetworkPolicies, MultiNetworkPolicies, Pods (with
 * their network-status annotation), VMIs, Namespaces — which is then compiled for every
 * pod, written as JSON (which must be complete) and asked one verdict; then the same on
 * the view of the secondary network vms/l2a (pol_world_net); then the incremental use:
 * dependents of every pod, pods and namespaces taken out, compiled again. */
#include "policy/policy.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const struct pol_world *w)
{
	struct pol_ruleset rs;
	if (pol_compile(w, NULL, 0, &rs, NULL) != 0)
		return;
	struct json_w jw;
	json_w_init_grow(&jw, 1 << 26);
	pol_ruleset_json(&rs, &jw);
	if (json_w_finish(&jw, NULL) == -EINVAL)
		abort();
	json_w_free(&jw);
	if (rs.n) {
		struct pol_end s = { .ns = rs.eps[0].ns, .name = rs.eps[0].name };
		struct pol_end d = { .ns = rs.eps[rs.n - 1].ns, .name = rs.eps[rs.n - 1].name };
		struct pol_verdict v;
		if (pol_verdict(w, &s, &d, POL_TCP, 80, &v, NULL) == 0)
			pol_verdict_free(&v);
	}
	pol_ruleset_free(&rs);
}

static void count(void *arg, const char *ns, const char *name)
{
	(void)ns, (void)name;
	(*(unsigned *)arg)++;
}

/* The incremental use: dependents of every pod and its namespace, then each pod taken
 * out (with its namespace every other time) and the rest compiled again. */
static void shrink(struct pol_world *w)
{
	struct pol_ruleset rs;
	if (pol_compile(w, NULL, 0, &rs, NULL) != 0)
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < rs.n; i++) {
		const char *kind = rs.eps[i].vm ? "VirtualMachineInstance" : "Pod";
		pol_world_dependents(w, kind, rs.eps[i].ns, rs.eps[i].name, count, &n);
		pol_world_dependents(w, "Namespace", "", rs.eps[i].ns, count, &n);
		pol_world_dependents(w, "NetworkPolicy", rs.eps[i].ns, rs.eps[i].name, count, &n);
		/* held, so taken out (a pod and a VMI of one name: the other stays) */
		if (!pol_world_remove(w, kind, rs.eps[i].ns, rs.eps[i].name))
			abort();
		if (i % 2)
			pol_world_remove(w, "Namespace", "", rs.eps[i].ns);
	}
	pol_ruleset_free(&rs);
	run(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct pol_world *w = pol_world_new();
	if (!w) {
		free(buf);
		return 0;
	}
	(void)pol_world_add_json(w, buf, size, NULL, NULL);
	(void)pol_world_add_yaml(w, buf, size, NULL, NULL);
	run(w);
	struct pol_world *net = pol_world_net(w, "vms/l2a");
	if (net)
		run(net);
	pol_world_free(net);
	shrink(w);
	pol_world_free(w);
	free(buf);
	return 0;
}
