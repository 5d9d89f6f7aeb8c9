/* addr — IP addresses as kvnet passes them around, and rtnetlink address operations.
 *
 * struct addr_ip holds an IPv4 or IPv6 address in network order. addr_add/addr_del put
 * an address on an interface (RTM_NEWADDR / RTM_DELADDR) in the namespace of the socket.
 *
 *   RTM_NEWADDR:  nlmsghdr | ifaddrmsg {family, prefixlen, flags, scope, index}
 *                 | IFA_LOCAL addr | IFA_ADDRESS addr | IFA_FLAGS u32 (IFA_F_NODAD ...)
 */
#ifndef KVNET_NET_ADDR_H
#define KVNET_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct nl_sock;

/* Big enough for any formatted address with "/128". */
#define ADDR_STRLEN 52

struct addr_ip {
	uint8_t family; /* AF_INET or AF_INET6; 0 = no address */
	uint8_t b[16];	/* network order; only the first 4 bytes count for AF_INET */
};

/* 4 for AF_INET, 16 for AF_INET6, 0 otherwise. */
size_t addr_len(const struct addr_ip *ip);

/* Parse "198.18.0.1" or "2001:db8::1". False (and *out zeroed) when s is neither. */
bool addr_parse(const char *s, struct addr_ip *out);

/* Parse "ADDR/LEN", or a bare ADDR meaning the full length. False on a bad address or
 * a length over 32/128. */
bool addr_parse_prefix(const char *s, struct addr_ip *out, uint8_t *plen);

/* Format ip into buf (ADDR_STRLEN bytes) and return buf; "?" for no address. */
const char *addr_fmt(const struct addr_ip *ip, char *buf);

/* Same, with "/plen" appended. */
const char *addr_fmt_prefix(const struct addr_ip *ip, uint8_t plen, char *buf);

/* True when both hold the same family and address. */
bool addr_eq(const struct addr_ip *a, const struct addr_ip *b);

/* Add ip/plen to interface ifindex. flags are IFA_F_* (IFA_F_NODAD for an IPv6 address
 * that must be usable at once, IFA_F_NOPREFIXROUTE ...). An address already there is
 * -EEXIST. Returns 0 or -errno; e reads "address 198.18.0.1/24 dev 5: add: why". */
int addr_add(struct nl_sock *s, int ifindex, const struct addr_ip *ip, uint8_t plen, uint32_t flags,
	     struct err *e);

/* Remove ip/plen from interface ifindex. Absent: -EADDRNOTAVAIL. */
int addr_del(struct nl_sock *s, int ifindex, const struct addr_ip *ip, uint8_t plen, struct err *e);

#endif
