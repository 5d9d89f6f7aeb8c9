/* polworld — the NetworkPolicy world (policy/policy.h) of the agent's informers, for a
 * module that asks the policy compiler a question about this node's endpoints (the flow
 * module's "which policies admitted this flow").
 *
 * The world holds what agent/policy.c compiles the node's rules from: the informers
 * Namespace, Pod (every node's), VirtualMachineInstance and NetworkPolicy, each object
 * added by its informer's kind (items of a LIST carry none of their own). A module using
 * it wants those informers itself (agent_polworld_want) so they are watched whether or
 * not the policy module runs.
 */
#ifndef KVNET_AGENT_POLWORLD_H
#define KVNET_AGENT_POLWORLD_H

#include "agent/informers.h"

#include <stdbool.h>

struct agent;
struct pol_world;

/* Ask for the informers the world is built from (before agent_start). */
void agent_polworld_want(struct agent *a);

/* True when the event's informer kind is one the world is built from. */
bool agent_polworld_kind(enum agent_kind kind);

/* A new world of every object the informers hold now; *bad (may be NULL) is set to the
 * number of objects the policy reader refused (they are left out). NULL without
 * memory. Free it with pol_world_free(). */
struct pol_world *agent_polworld_build(struct agent *a, unsigned *bad);

#endif
