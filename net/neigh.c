/* neigh — rtnetlink neighbour entries; see neigh.h. */
#include "net/neigh.h"

#include "lib/err.h"
#include "net/nl.h"

#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#define NEIGH_MSG_BUF 128

static int neigh_msg(struct nl_sock *s, uint16_t type, uint16_t flags, int ifindex,
		     const struct ip_addr *ip, const uint8_t *mac, bool proxy, uint16_t state,
		     struct err *e)
{
	uint8_t buf[NEIGH_MSG_BUF];
	struct nl_msg m;
	size_t alen = ip_len(ip);
	if (!alen)
		return err_setx(e, EAFNOSUPPORT, "not an IPv4 or IPv6 address");
	if (ifindex <= 0)
		return err_setx(e, EINVAL, "no interface index");
	struct ndmsg nd = {
	    .ndm_family = ip->family,
	    .ndm_ifindex = ifindex,
	    .ndm_state = state,
	    .ndm_flags = proxy ? NTF_PROXY : 0,
	};
	nl_msg_init(&m, buf, sizeof(buf), type, flags);
	nl_put_fam(&m, &nd, sizeof(nd));
	nl_put(&m, NDA_DST, ip->b, alen);
	if (mac)
		nl_put(&m, NDA_LLADDR, mac, 6);
	return nl_request(s, &m, NULL, NULL, e);
}

int neigh_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, const uint8_t mac[6],
	      struct err *e)
{
	char a[IP_STRLEN];
	int rc =
	    neigh_msg(s, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ip, mac, false, NUD_PERMANENT, e);
	if (rc < 0)
		err_prefix(e, "neighbour %s dev %d: add permanent", ip_fmt(ip, a), ifindex);
	return rc;
}

int neigh_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e)
{
	char a[IP_STRLEN];
	int rc = neigh_msg(s, RTM_DELNEIGH, 0, ifindex, ip, NULL, false, NUD_PERMANENT, e);
	if (rc < 0)
		err_prefix(e, "neighbour %s dev %d: delete", ip_fmt(ip, a), ifindex);
	return rc;
}

int neigh_proxy_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e)
{
	char a[IP_STRLEN];
	int rc =
	    neigh_msg(s, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ip, NULL, true, NUD_PERMANENT, e);
	if (rc < 0)
		err_prefix(e, "proxy neighbour %s dev %d: add", ip_fmt(ip, a), ifindex);
	return rc;
}

int neigh_proxy_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e)
{
	char a[IP_STRLEN];
	int rc = neigh_msg(s, RTM_DELNEIGH, 0, ifindex, ip, NULL, true, NUD_PERMANENT, e);
	if (rc < 0)
		err_prefix(e, "proxy neighbour %s dev %d: delete", ip_fmt(ip, a), ifindex);
	return rc;
}

int neigh_set_reachable(struct nl_sock *s, int ifindex, const struct ip_addr *ip,
			const uint8_t mac[6], struct err *e)
{
	char a[IP_STRLEN];
	int rc = neigh_msg(s, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ip, mac, false,
			   NUD_REACHABLE, e);
	if (rc < 0)
		err_prefix(e, "neighbour %s dev %d: set reachable", ip_fmt(ip, a), ifindex);
	return rc;
}
