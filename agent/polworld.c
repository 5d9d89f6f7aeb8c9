/* polworld — the NetworkPolicy world of the informers (agent/polworld.h). */
#include "agent/polworld.h"

#include "agent/agent.h"
#include "kube/informer.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <stddef.h>

/* The informers the world is read from, and their objects' kinds. */
static const struct {
	enum agent_kind k; /* informer */
	const char *kind;  /* its objects' kind */
} world_kinds[] = { { AGENT_K_NAMESPACE, "Namespace" },
		    { AGENT_K_POD_ALL, "Pod" },
		    { AGENT_K_VMI, "VirtualMachineInstance" },
		    { AGENT_K_NETPOL, "NetworkPolicy" } };

#define N_KINDS (sizeof(world_kinds) / sizeof(world_kinds[0]))

struct fill {
	struct pol_world *w; /* being filled */
	const char *kind;    /* the informer's kind */
	unsigned bad;	     /* objects refused */
};

static void fill_one(void *user, const struct kube_obj *obj)
{
	struct fill *f = user;
	if (pol_world_add_json_kind(f->w, obj->json, obj->len, f->kind, NULL, NULL) < 0)
		f->bad++;
}

void agent_polworld_want(struct agent *a)
{
	for (size_t i = 0; i < N_KINDS; i++)
		agent_want_kind(a, world_kinds[i].k);
}

bool agent_polworld_kind(enum agent_kind kind)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (world_kinds[i].k == kind)
			return true;
	return false;
}

struct pol_world *agent_polworld_build(struct agent *a, unsigned *bad)
{
	struct fill f = { .w = pol_world_new() };
	if (!f.w)
		return NULL;
	for (size_t i = 0; i < N_KINDS; i++) {
		f.kind = world_kinds[i].kind;
		agent_obj_each(a, world_kinds[i].k, fill_one, &f);
	}
	if (bad)
		*bad = f.bad;
	return f.w;
}
