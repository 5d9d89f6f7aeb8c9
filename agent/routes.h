/* routes — the agent's base routing module: the routes of agent/desired.h (local
 * endpoints, overrides, and in direct mode the other nodes' blocks and moved addresses),
 * contributed to the desired state from the endpoint table and the world model.
 *
 * It asks for the IPAMBlock and Node informers, contributes AGENT_KOBJ_ROUTE entries on
 * every reconcile, and schedules a reconcile when a block or node changes (once every
 * informer synced). Listed in the module table (agent/modules.h) like any other.
 */
#ifndef KVNET_AGENT_ROUTES_H
#define KVNET_AGENT_ROUTES_H

struct agent;
struct agent_override;
struct err;
struct agent_routes;

/* The module for agent a (registers itself). NULL with e on failure. */
struct agent_routes *agent_routes_new(struct agent *a, struct err *e);
void agent_routes_free(struct agent_routes *r);

/* Install the route override o asks for now, with one RTM_NEWROUTE replace per route
 * (the override fast path; agent_override_apply). 0 or -errno with e (-EHOSTUNREACH:
 * an unknown node or interface gives no route). */
int agent_routes_apply_override(struct agent *a, const struct agent_override *o,
				struct err *e);

#endif
