/* addr — IP addresses and rtnetlink address operations; see addr.h. */
#include "net/addr.h"

#include "lib/err.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int addr_msg(struct nl_sock *s, uint16_t type, uint16_t flags, int ifindex,
		    const struct ip_addr *ip, uint8_t plen, uint32_t ifa_flags, uint8_t scope,
		    struct err *e)
{
	uint8_t buf[256];
	struct nl_msg m;
	size_t alen = ip_len(ip);
	if (!alen)
		return err_setx(e, EAFNOSUPPORT, "not an IPv4 or IPv6 address");
	if (plen > alen * 8)
		return err_setx(e, EINVAL, "prefix length %u too long", plen);
	if (ifindex <= 0)
		return err_setx(e, EINVAL, "no interface index");
	struct ifaddrmsg ifa = {
	    .ifa_family = ip->family,
	    .ifa_prefixlen = plen,
	    .ifa_flags = (uint8_t)ifa_flags,
	    .ifa_scope = scope,
	    .ifa_index = (uint32_t)ifindex,
	};
	nl_msg_init(&m, buf, sizeof(buf), type, flags);
	nl_put_fam(&m, &ifa, sizeof(ifa));
	nl_put(&m, IFA_LOCAL, ip->b, alen);
	nl_put(&m, IFA_ADDRESS, ip->b, alen);
	if (type == RTM_NEWADDR && ifa_flags)
		nl_put_u32(&m, IFA_FLAGS, ifa_flags);
	return nl_request(s, &m, NULL, NULL, e);
}

int addr_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen, uint32_t flags,
	     struct err *e)
{
	char a[IP_STRLEN];
	int rc = addr_msg(s, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, ip, plen, flags,
			  RT_SCOPE_UNIVERSE, e);
	if (rc < 0)
		err_prefix(e, "address %s dev %d: add", ip_fmt_prefix(ip, plen, a), ifindex);
	return rc;
}

int addr_add_scope(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen,
		   uint32_t flags, uint8_t scope, struct err *e)
{
	char a[IP_STRLEN];
	int rc = addr_msg(s, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, ip, plen, flags,
			  scope, e);
	if (rc < 0)
		err_prefix(e, "address %s dev %d scope %u: add", ip_fmt_prefix(ip, plen, a),
			   ifindex, scope);
	return rc;
}

int addr_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen, struct err *e)
{
	char a[IP_STRLEN];
	int rc = addr_msg(s, RTM_DELADDR, 0, ifindex, ip, plen, 0, RT_SCOPE_UNIVERSE, e);
	if (rc < 0)
		err_prefix(e, "address %s dev %d: delete", ip_fmt_prefix(ip, plen, a), ifindex);
	return rc;
}
