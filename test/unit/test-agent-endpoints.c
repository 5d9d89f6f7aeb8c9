/* Unit tests for agent/endpoints: the endpoint table (no files written: the directory is
 * never created, and insert does not save). */
#include "agent/endpoints.h"
#include "lib/ip.h"
#include "lib/log.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <string.h>

static struct agent_ep ep_of(const char *cid, const char *ifname, const char *veth,
			     const char *ip, bool adopted)
{
	struct agent_ep ep;
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.cid, sizeof(ep.cid), "%s", cid);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", ifname);
	snprintf(ep.veth, sizeof(ep.veth), "%s", veth);
	ip_parse(ip, &ep.ip[0]);
	ep.n_ip = 1;
	ep.adopted = adopted;
	return ep;
}

/* A registration that arrives after the route adoption made an endpoint of its veth
 * replaces that endpoint: one endpoint per pod interface, not two. */
static void test_registration_supersedes_adoption(void)
{
	struct log lg;
	log_init(&lg, "test", LOG_LVL_ERROR);
	struct agent_eps *t = agent_eps_new("/nonexistent/kvt-eps", &lg, NULL, NULL);
	T_CHECK(t != NULL);
	struct agent_ep a = ep_of("adopted-kv0123456789a", "-", "kv0123456789a", "198.18.0.5",
				  true);
	struct agent_ep other = ep_of("adopted-kv0123456789b", "-", "kv0123456789b",
				      "198.18.0.6", true);
	T_CHECK(agent_eps_insert(t, &a, true) != NULL);
	T_CHECK(agent_eps_insert(t, &other, true) != NULL);
	T_EQ(agent_eps_count(t), 2);
	struct agent_ep r = ep_of("cid-1", "eth0", "kv0123456789a", "198.18.0.5", false);
	T_CHECK(agent_eps_insert(t, &r, false) != NULL);
	T_EQ(agent_eps_count(t), 2);
	T_CHECK(agent_eps_find(t, "adopted-kv0123456789a", "-") == NULL);
	T_CHECK(agent_eps_find(t, "cid-1", "eth0") != NULL);
	T_CHECK(agent_eps_find(t, "adopted-kv0123456789b", "-") != NULL); /* another veth */
	struct ip_addr ip;
	ip_parse("198.18.0.5", &ip);
	struct agent_ep *f = agent_eps_find_ip(t, &ip);
	T_CHECK(f && strcmp(f->cid, "cid-1") == 0);
	agent_eps_free(t);
}

int main(void)
{
	T_RUN(test_registration_supersedes_adoption);
	return t_done();
}
