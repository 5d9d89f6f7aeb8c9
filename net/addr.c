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

size_t addr_len(const struct addr_ip *ip)
{
	return ip->family == AF_INET ? 4 : ip->family == AF_INET6 ? 16 : 0;
}

bool addr_parse(const char *s, struct addr_ip *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->b) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, out->b) == 1) {
		out->family = AF_INET6;
		return true;
	}
	memset(out, 0, sizeof(*out));
	return false;
}

bool addr_parse_prefix(const char *s, struct addr_ip *out, uint8_t *plen)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	*plen = 0;
	if (n >= sizeof(buf)) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!addr_parse(buf, out))
		return false;
	unsigned max = (unsigned)addr_len(out) * 8;
	if (!slash) {
		*plen = (uint8_t)max;
		return true;
	}
	const char *d = slash + 1;
	unsigned v = 0;
	if (!*d || strlen(d) > 3)
		goto bad;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			goto bad;
		v = v * 10 + (unsigned)(*d - '0');
	}
	if (v > max)
		goto bad;
	*plen = (uint8_t)v;
	return true;
bad:
	memset(out, 0, sizeof(*out));
	return false;
}

const char *addr_fmt(const struct addr_ip *ip, char *buf)
{
	if (!addr_len(ip) || !inet_ntop(ip->family, ip->b, buf, ADDR_STRLEN))
		snprintf(buf, ADDR_STRLEN, "?");
	return buf;
}

const char *addr_fmt_prefix(const struct addr_ip *ip, uint8_t plen, char *buf)
{
	addr_fmt(ip, buf);
	size_t n = strlen(buf);
	snprintf(buf + n, ADDR_STRLEN - n, "/%u", plen);
	return buf;
}

bool addr_eq(const struct addr_ip *a, const struct addr_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, addr_len(a)) == 0;
}

static int addr_msg(struct nl_sock *s, uint16_t type, uint16_t flags, int ifindex,
		    const struct addr_ip *ip, uint8_t plen, uint32_t ifa_flags, struct err *e)
{
	uint8_t buf[256];
	struct nl_msg m;
	size_t alen = addr_len(ip);
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
	    .ifa_scope = RT_SCOPE_UNIVERSE,
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

int addr_add(struct nl_sock *s, int ifindex, const struct addr_ip *ip, uint8_t plen, uint32_t flags,
	     struct err *e)
{
	char a[ADDR_STRLEN];
	int rc = addr_msg(s, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, ip, plen, flags, e);
	if (rc < 0)
		err_prefix(e, "address %s dev %d: add", addr_fmt_prefix(ip, plen, a), ifindex);
	return rc;
}

int addr_del(struct nl_sock *s, int ifindex, const struct addr_ip *ip, uint8_t plen, struct err *e)
{
	char a[ADDR_STRLEN];
	int rc = addr_msg(s, RTM_DELADDR, 0, ifindex, ip, plen, 0, e);
	if (rc < 0)
		err_prefix(e, "address %s dev %d: delete", addr_fmt_prefix(ip, plen, a), ifindex);
	return rc;
}
