/* modules — the module table (see modules.h). One line per module. */
#include "agent/modules.h"

#include "agent/bgp.h"
#include "agent/gateway.h"
#include "agent/flows.h"
#include "agent/l2.h"
#include "agent/mignode.h"
#include "agent/mnpol.h"
#include "agent/peer.h"
#include "agent/peerct.h"
#include "agent/policy.h"
#include "agent/routes.h"
#include "agent/vxlan.h"

#include <stddef.h>

static void *routes_create(struct agent *a, struct err *e)
{
	return agent_routes_new(a, e);
}

static void routes_destroy(void *s)
{
	agent_routes_free(s);
}

/* The migration hand-over; owners swapped over the agent's API client. */
static void *migration_create(struct agent *a, struct err *e)
{
	return mignode_new(a, NULL, e);
}

static void migration_destroy(void *s)
{
	mignode_free(s);
}

/* NetworkPolicy onto nf_tables ([agent] network_policy). */
static void *policy_create(struct agent *a, struct err *e)
{
	return agent_policy_new(a, e);
}

static void policy_destroy(void *s)
{
	agent_policy_free(s);
}

/* The agent-to-agent path of the cut-over (agent/peer.h). */
static void *peer_create(struct agent *a, struct err *e)
{
	return agent_peer_new(a, e);
}

static void peer_destroy(void *s)
{
	agent_peer_free(s);
}

/* Flow records, the flow log, GET /flows and the per-VM metrics ([flows] enabled). */
static void *flows_create(struct agent *a, struct err *e)
{
	return agent_flows_new(a, e);
}

static void flows_destroy(void *s)
{
	agent_flows_free(s);
}

static const struct agent_module table[] = {
	{ "routes", routes_create, routes_destroy },
	{ "migration", migration_create, migration_destroy },
	{ "policy", policy_create, policy_destroy },
	{ "peer", peer_create, peer_destroy },
	{ "peerct", agent_peerct_new, agent_peerct_free },
	{ "gateway", agent_gw_new, agent_gw_free },
	{ "flows", flows_create, flows_destroy },
	{ "l2", agent_l2_new, agent_l2_free },
	{ "mnpol", agent_mnpol_new, agent_mnpol_free },
	{ "bgp", agent_bgp_new, agent_bgp_free },
	{ "vxlan", agent_vxlan_new, agent_vxlan_free },
};

const struct agent_module *agent_modules(unsigned *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}
