/* gateway — the gateway address on old endpoints, neighbour entries from announcements;
 * see gateway.h. */
#include "agent/gateway.h"

#include "agent/agent.h"
#include "lib/err.h"
#include "lib/log.h"
#include "net/addr.h"
#include "net/neigh.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The module's state. */
struct agent_gw {
	struct agent *a; /* the agent (not owned) */
};

int agent_gw_addr_ensure(struct nl_sock *s, const struct agent_ep *ep, struct err *e)
{
	bool v4 = false;
	for (unsigned i = 0; i < ep->n_ip; i++)
		v4 |= ep->ip[i].family == AF_INET;
	if (!v4 || ep->ifindex <= 0)
		return 0;
	struct ip_addr gw;
	if (!ip_parse(AGENT_GW4, &gw))
		return err_setx(e, EINVAL, "gateway %s: not an address", AGENT_GW4);
	int rc = addr_add_scope(s, ep->ifindex, &gw, 32, 0, RT_SCOPE_HOST, e);
	if (rc == -EEXIST || rc == -ENODEV) { /* there already; the veth went meanwhile */
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		err_prefix(e, "endpoint %s veth %s", ep->pod[0] ? ep->pod : ep->cid, ep->veth);
	return rc;
}

int agent_gw_neigh(struct nl_sock *s, const struct agent_ep *ep, const uint8_t mac[6],
		   struct err *e)
{
	int first = 0;
	if (ep->ifindex <= 0)
		return err_setx(e, ENODEV, "endpoint %s: veth %s not resolved",
				ep->pod[0] ? ep->pod : ep->cid, ep->veth);
	for (unsigned i = 0; i < ep->n_ip; i++) {
		struct err e1 = { 0 };
		int rc = neigh_set_reachable(s, ep->ifindex, &ep->ip[i], mac, &e1);
		if (rc < 0 && first == 0) {
			first = rc;
			if (e)
				*e = e1;
		}
	}
	return first;
}

void agent_gw_announced(struct agent *a, const struct agent_ep *ep, const uint8_t mac[6])
{
	struct err e = { 0 };
	if (!ep)
		return;
	if (agent_gw_neigh(agent_nl(a), ep, mac, &e) < 0)
		log_warnx(agent_log(a), "announcement: guest neighbour entries on %s: %s",
			  ep->veth, e.msg);
}

static void ensure_one(struct agent *a, const struct agent_ep *ep)
{
	struct err e = { 0 };
	if (agent_gw_addr_ensure(agent_nl(a), ep, &e) < 0)
		log_warnx(agent_log(a), "gateway address %s: %s", AGENT_GW4, e.msg);
}

static void on_hook(void *arg, struct agent *a, const struct agent_event *ev)
{
	(void)arg;
	switch (ev->hook) {
	case AGENT_HOOK_EP_ADDED:
		ensure_one(a, ev->ep);
		break;
	case AGENT_HOOK_RECONCILED:
		for (unsigned i = 0; i < agent_ep_count(a); i++)
			ensure_one(a, agent_ep_at(a, i));
		break;
	case AGENT_HOOK_EP_REMOVED:
	case AGENT_HOOK_OBJECT:
	case AGENT_HOOK_COUNT:
		break;
	}
}

void *agent_gw_new(struct agent *a, struct err *e)
{
	struct agent_gw *g = calloc(1, sizeof(*g));
	if (!g) {
		err_set(e, ENOMEM, "gateway module");
		return NULL;
	}
	g->a = a;
	if (agent_hook_add(a, AGENT_HOOK_EP_ADDED, on_hook, g, e) < 0 ||
	    agent_hook_add(a, AGENT_HOOK_RECONCILED, on_hook, g, e) < 0) {
		agent_gw_free(g);
		return NULL;
	}
	return g;
}

void agent_gw_free(void *state)
{
	struct agent_gw *g = state;
	if (!g)
		return;
	agent_hook_del(g->a, AGENT_HOOK_EP_ADDED, on_hook, g);
	agent_hook_del(g->a, AGENT_HOOK_RECONCILED, on_hook, g);
	free(g);
}
