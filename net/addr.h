/* addr — rtnetlink address operations.
 *
 * addr_add/addr_del put an address (lib/ip.h) on an interface (RTM_NEWADDR / RTM_DELADDR) in the namespace of the socket.
 *
 *   RTM_NEWADDR:  nlmsghdr | ifaddrmsg {family, prefixlen, flags, scope, index}
 *                 | IFA_LOCAL addr | IFA_ADDRESS addr | IFA_FLAGS u32 (IFA_F_NODAD ...)
 */
#ifndef KVNET_NET_ADDR_H
#define KVNET_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ip.h"

struct err;
struct nl_sock;

/* Add ip/plen to interface ifindex. flags are IFA_F_* (IFA_F_NODAD for an IPv6 address
 * that must be usable at once, IFA_F_NOPREFIXROUTE ...). An address already there is
 * -EEXIST. Returns 0 or -errno; e reads "address 198.18.0.1/24 dev 5: add: why". */
int addr_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen, uint32_t flags,
	     struct err *e);

/* addr_add with an IPv4 scope (RT_SCOPE_HOST, RT_SCOPE_LINK, ...) instead of universe:
 * a scope host address is local (answered, ARP included) but never picked as a source
 * for traffic leaving the node. The kernel sets IPv6 scopes from the address itself.
 * Same returns and message as addr_add, with "scope N". */
int addr_add_scope(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen,
		   uint32_t flags, uint8_t scope, struct err *e);

/* Remove ip/plen from interface ifindex. Absent: -EADDRNOTAVAIL. */
int addr_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, uint8_t plen, struct err *e);

#endif
