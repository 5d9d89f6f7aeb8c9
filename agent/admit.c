/* admit — registration checks (see admit.h). */
#include "agent/admit.h"

#include "conf/conf.h"
#include "ipam/ipam.h"
#include "net/link.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

bool agent_admit_veth_name(const char *name)
{
	if (strlen(name) != 13 || name[0] != 'k' || name[1] != 'v')
		return false;
	for (int i = 2; i < 13; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

/* Is ip inside net/prefix? */
static bool in_cidr(const struct ip_addr *ip, const struct conf_cidr *c)
{
	if (ip->family != c->family)
		return false;
	unsigned bits = c->prefix;
	for (unsigned i = 0; i < 16 && bits; i++) {
		unsigned take = bits >= 8 ? 8 : bits;
		uint8_t mask = (uint8_t)(0xff << (8 - take));
		if ((ip->b[i] & mask) != (c->addr[i] & mask))
			return false;
		bits -= take;
	}
	return true;
}

static bool in_pools(const struct conf *c, const struct ip_addr *ip)
{
	const struct conf_cidr_list *l =
		ip->family == AF_INET6 ? &c->ipam.ipv6_pools : &c->ipam.ipv4_pools;
	for (unsigned i = 0; i < l->n && i < CONF_POOLS_MAX; i++)
		if (in_cidr(ip, &l->v[i]))
			return true;
	return false;
}

bool agent_admit(const struct conf *c, const struct agent_ep *ep, const struct link_info *li,
		 const struct ipam_state *st, char *why, size_t cap)
{
	if (!li) {
		snprintf(why, cap, "veth %s does not exist on this node", ep->veth);
		return false;
	}
	if (strcmp(li->kind, "veth") != 0 || !agent_admit_veth_name(li->name)) {
		snprintf(why, cap, "veth %s: not a kvnet host veth (kind \"%s\", name %s)", ep->veth,
			 li->kind, agent_admit_veth_name(li->name) ? "kvnet's"
								   : "not kv + 11 hex digits");
		return false;
	}
	for (unsigned i = 0; i < ep->n_ip && i < AGENT_EP_IPS_MAX; i++) {
		char s[IP_STRLEN];
		const struct ip_addr *ip = &ep->ip[i];
		if (!in_pools(c, ip)) {
			snprintf(why, cap, "%s: outside every configured pool ([ipam] %s)",
				 ip_fmt(ip, s), ip->family == AF_INET6 ? "ipv6_pools" : "ipv4_pools");
			return false;
		}
		if (!st)
			continue;
		const struct ipam_attrs *at = ipam_lookup_ip(st, ip);
		if (!at) {
			snprintf(why, cap, "%s: not allocated in IPAM", ip_fmt(ip, s));
			return false;
		}
		if (ep->handle[0] && strcmp(at->handle, ep->handle) != 0) {
			snprintf(why, cap, "%s: IPAM gave it to handle %s, not %s", ip_fmt(ip, s),
				 at->handle, ep->handle);
			return false;
		}
	}
	return true;
}
