/* policy/deps — taking objects out of a world, and which pods an object's change can
 * touch (see policy.h: "Incremental use"). */
#include "policy/internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum dep_kind { DEP_NONE, DEP_POLICY, DEP_POD, DEP_VMI, DEP_NS };

static enum dep_kind dep_kind(const char *kind)
{
	if (strcmp(kind, "NetworkPolicy") == 0)
		return DEP_POLICY;
	if (strcmp(kind, "Pod") == 0)
		return DEP_POD;
	if (strcmp(kind, "VirtualMachineInstance") == 0)
		return DEP_VMI;
	if (strcmp(kind, "Namespace") == 0)
		return DEP_NS;
	return DEP_NONE;
}

static int find_policy(const struct pol_world *w, const char *ns, const char *name)
{
	for (unsigned i = 0; i < w->n_pol; i++)
		if (strcmp(w->pol[i].ns, ns) == 0 && strcmp(w->pol[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_pod(const struct pol_world *w, bool vm, const char *ns, const char *name)
{
	for (unsigned i = 0; i < w->n_pods; i++)
		if (w->pods[i].vm == vm && strcmp(w->pods[i].ns, ns) == 0 &&
		    strcmp(w->pods[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_ns(const struct pol_world *w, const char *name)
{
	for (unsigned i = 0; i < w->n_ns; i++)
		if (strcmp(w->ns[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The inactive line "NS/NAME\tWHY" of ns/name, or -1. */
static int find_inactive(const struct pol_world *w, const char *ns, const char *name)
{
	size_t nl = strlen(ns), ml = strlen(name);
	for (unsigned i = 0; i < w->n_inactive; i++) {
		const char *l = w->inactive[i];
		if (strncmp(l, ns, nl) == 0 && l[nl] == '/' && strncmp(l + nl + 1, name, ml) == 0 &&
		    l[nl + 1 + ml] == '\t')
			return (int)i;
	}
	return -1;
}

bool pol_world_remove(struct pol_world *w, const char *kind, const char *ns,
		      const char *name)
{
	int i;
	bool hit = false;
	if (w->view)
		return false;
	switch (dep_kind(kind)) {
	case DEP_POLICY:
		if ((i = find_policy(w, ns, name)) < 0)
			break;
		pol_policy_free(&w->pol[i]);
		memmove(w->pol + i, w->pol + i + 1, (w->n_pol - (unsigned)i - 1) * sizeof(*w->pol));
		w->n_pol--;
		hit = true;
		break;
	case DEP_POD:
	case DEP_VMI:
		if ((i = find_pod(w, dep_kind(kind) == DEP_VMI, ns, name)) >= 0) {
			pol_pod_free(&w->pods[i]);
			memmove(w->pods + i, w->pods + i + 1,
				(w->n_pods - (unsigned)i - 1) * sizeof(*w->pods));
			w->n_pods--;
			hit = true;
		}
		/* an inactive one left a line only (pods and VMIs share the list) */
		if (!hit && (i = find_inactive(w, ns, name)) >= 0) {
			free(w->inactive[i]);
			memmove(w->inactive + i, w->inactive + i + 1,
				(w->n_inactive - (unsigned)i - 1) * sizeof(*w->inactive));
			w->n_inactive--;
			hit = true;
		}
		break;
	case DEP_NS:
		if ((i = find_ns(w, name)) < 0)
			break;
		free(w->ns[i].name);
		pol_labels_free(&w->ns[i].labels);
		memmove(w->ns + i, w->ns + i + 1, (w->n_ns - (unsigned)i - 1) * sizeof(*w->ns));
		w->n_ns--;
		hit = true;
		break;
	case DEP_NONE:
		break;
	}
	return hit;
}

bool pol_world_has_pod(const struct pol_world *w, const char *ns, const char *name)
{
	return find_pod(w, false, ns, name) >= 0 || find_pod(w, true, ns, name) >= 0;
}

static bool selects(const struct pol_policy *p, const struct pol_pod *pod)
{
	return strcmp(p->ns, pod->ns) == 0 && pol_sel_match(&p->pod_sel, &pod->labels);
}

/* Every pod policy p selects, to fn. */
static void each_selected(const struct pol_world *w, const struct pol_policy *p,
			  pol_dep_fn fn, void *arg)
{
	for (unsigned k = 0; k < w->n_pods; k++)
		if (selects(p, &w->pods[k]))
			fn(arg, w->pods[k].ns, w->pods[k].name);
}

/* Could a rule of p take pod into its peers (selector, ipBlock holding one of its
 * addresses, or any peer: a named egress port is resolved on every pod)? Which
 * namespaces exist and their labels are not looked at: true when a namespace selector
 * could match. */
static bool policy_sees_pod(const struct pol_policy *p, const struct pol_pod *pod)
{
	for (int d = 0; d < POL_NDIR; d++)
		for (unsigned r = 0; r < p->n_rules[d]; r++) {
			const struct pol_rule *ru = &p->rules[d][r];
			if (ru->all_peers)
				return true;
			for (unsigned i = 0; i < ru->n_peers; i++) {
				const struct pol_peer *pe = &ru->peers[i];
				if (pe->ipblock) {
					for (unsigned a = 0; a < pod->n_ips; a++)
						if (pol_ranges_has(&pe->block, &pod->ips[a]))
							return true;
					continue;
				}
				if (!pe->ns_sel.present && strcmp(pod->ns, p->ns) != 0)
					continue;
				if (!pe->pod_sel.present || pol_sel_match(&pe->pod_sel, &pod->labels))
					return true;
			}
		}
	return false;
}

/* Does a rule of p have a namespace selector? */
static bool policy_has_ns_sel(const struct pol_policy *p)
{
	for (int d = 0; d < POL_NDIR; d++)
		for (unsigned r = 0; r < p->n_rules[d]; r++)
			for (unsigned i = 0; i < p->rules[d][r].n_peers; i++)
				if (!p->rules[d][r].peers[i].ipblock &&
				    p->rules[d][r].peers[i].ns_sel.present)
					return true;
	return false;
}

void pol_world_dependents(const struct pol_world *w, const char *kind, const char *ns,
			  const char *name, pol_dep_fn fn, void *arg)
{
	int i;
	switch (dep_kind(kind)) {
	case DEP_POLICY:
		if ((i = find_policy(w, ns, name)) >= 0)
			each_selected(w, &w->pol[i], fn, arg);
		break;
	case DEP_POD:
	case DEP_VMI: {
		if ((i = find_pod(w, dep_kind(kind) == DEP_VMI, ns, name)) < 0)
			break; /* not in the world (or inactive): nobody sees it */
		const struct pol_pod *pod = &w->pods[i];
		fn(arg, pod->ns, pod->name);
		for (unsigned k = 0; k < w->n_pol; k++)
			if (policy_sees_pod(&w->pol[k], pod))
				each_selected(w, &w->pol[k], fn, arg);
		break;
	}
	case DEP_NS:
		for (unsigned k = 0; k < w->n_pol; k++)
			if (policy_has_ns_sel(&w->pol[k]))
				each_selected(w, &w->pol[k], fn, arg);
		break;
	case DEP_NONE:
		break;
	}
}

static bool pol_after(const struct pol_policy *a, const struct pol_policy *b)
{
	int c = strcmp(a->ns, b->ns);
	return c > 0 || (c == 0 && strcmp(a->name, b->name) > 0);
}

void pol_world_settle(struct pol_world *w)
{
	if (w->view)
		return;
	/* insertion sort: one pass over a sorted array with a few newcomers */
	for (unsigned i = 1; i < w->n_pol; i++) {
		if (!pol_after(&w->pol[i - 1], &w->pol[i]))
			continue;
		struct pol_policy v = w->pol[i];
		unsigned j = i;
		while (j > 0 && pol_after(&w->pol[j - 1], &v)) {
			w->pol[j] = w->pol[j - 1];
			j--;
		}
		w->pol[j] = v;
	}
}
