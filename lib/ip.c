/* ip — the one IP address type and its text forms; see ip.h. */
#include "lib/ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

size_t ip_len(const struct ip_addr *ip)
{
	return ip->family == AF_INET ? 4 : ip->family == AF_INET6 ? 16 : 0;
}

bool ip_parse(const char *s, struct ip_addr *out)
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

bool ip_parse_prefix(const char *s, struct ip_addr *out, uint8_t *plen)
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
	if (!ip_parse(buf, out))
		return false;
	unsigned max = (unsigned)ip_len(out) * 8;
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

const char *ip_fmt(const struct ip_addr *ip, char *buf)
{
	if (!ip_len(ip) || !inet_ntop(ip->family, ip->b, buf, IP_STRLEN))
		snprintf(buf, IP_STRLEN, "?");
	return buf;
}

const char *ip_fmt_prefix(const struct ip_addr *ip, uint8_t plen, char *buf)
{
	ip_fmt(ip, buf);
	size_t n = strlen(buf);
	snprintf(buf + n, IP_STRLEN - n, "/%u", plen);
	return buf;
}

bool ip_eq(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->family == b->family && memcmp(a->b, b->b, ip_len(a)) == 0;
}

