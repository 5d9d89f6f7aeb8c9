/* ip — the one IP address type kvnet passes around, and its text forms.
 *
 * struct ip_addr holds an IPv4 or IPv6 address in network order; the IPAM records, the
 * netlink operations, the agent and the CNI all use it, so nothing is converted between
 * layers. Pure: no I/O, no allocation.
 */
#ifndef KVNET_LIB_IP_H
#define KVNET_LIB_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Big enough for any formatted address with "/128". */
#define IP_STRLEN 52

struct ip_addr {
	uint8_t family; /* AF_INET or AF_INET6; 0 = no address */
	uint8_t b[16];	/* network order; only the first 4 bytes count for AF_INET (rest zero) */
};

/* 4 for AF_INET, 16 for AF_INET6, 0 otherwise. */
size_t ip_len(const struct ip_addr *ip);

/* Parse "198.18.0.1" or "2001:db8::1". False (and *out zeroed) when s is neither. */
bool ip_parse(const char *s, struct ip_addr *out);

/* Parse "ADDR/LEN", or a bare ADDR meaning the full length. False on a bad address or
 * a length over 32/128. */
bool ip_parse_prefix(const char *s, struct ip_addr *out, uint8_t *plen);

/* Format ip into buf (IP_STRLEN bytes) and return buf; "?" for no address. */
const char *ip_fmt(const struct ip_addr *ip, char *buf);

/* Same, with "/plen" appended. */
const char *ip_fmt_prefix(const struct ip_addr *ip, uint8_t plen, char *buf);

/* True when both hold the same family and address. */
bool ip_eq(const struct ip_addr *a, const struct ip_addr *b);

#endif
