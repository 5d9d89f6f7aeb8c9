/* neigh — rtnetlink neighbour entries: permanent ARP/NDP entries and proxy entries.
 *
 * Every operation acts in the namespace of the socket and returns 0 or -errno with e
 * reading "neighbour 198.18.0.5 dev 4: add permanent: why".
 *
 *   RTM_NEWNEIGH / RTM_DELNEIGH:
 *   nlmsghdr | ndmsg {family, ifindex, state (NUD_PERMANENT, NUD_REACHABLE), flags
 *            (NTF_PROXY), type}
 *            | NDA_DST addr | NDA_LLADDR mac (not for proxy entries)
 *
 * A proxy entry (NTF_PROXY) makes the kernel answer ARP / neighbour solicitations for
 * the address on that interface (with proxy_arp / proxy_ndp on the way there).
 */
#ifndef KVNET_NET_NEIGH_H
#define KVNET_NET_NEIGH_H

#include <stdint.h>

#include "net/addr.h"

struct err;
struct nl_sock;

/* Add or replace a permanent entry ip -> mac (6 bytes) on interface ifindex. */
int neigh_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, const uint8_t mac[6],
	      struct err *e);

/* Create or replace a dynamic entry ip -> mac on ifindex in state NUD_REACHABLE: used
 * at once, without a solicitation, and then aged like a learned one (STALE after the
 * interface's reachable time, probed when used again), so a wrong MAC heals itself.
 * A permanent entry for ip is replaced too. */
int neigh_set_reachable(struct nl_sock *s, int ifindex, const struct ip_addr *ip,
			const uint8_t mac[6], struct err *e);

/* Delete the entry for ip on ifindex. Absent: -ENOENT. */
int neigh_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e);

/* Add (or keep) a proxy entry for ip on ifindex. */
int neigh_proxy_add(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e);

/* Delete the proxy entry for ip on ifindex. Absent: -ENOENT. */
int neigh_proxy_del(struct nl_sock *s, int ifindex, const struct ip_addr *ip, struct err *e);

#endif
