/* policy/ranges — address interval sets (see policy.h). */
#include "policy/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static unsigned fam_bits(uint8_t family)
{
	return family == AF_INET ? 32 : 128;
}

static pol_u128 to_int(const struct ip_addr *a)
{
	pol_u128 v = 0;
	size_t n = ip_len(a);
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | a->b[i];
	return v;
}

static void from_int(uint8_t family, pol_u128 v, struct ip_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	size_t n = family == AF_INET ? 4 : 16;
	for (size_t i = n; i-- > 0;) {
		a->b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

/* lo..hi of a CIDR (host bits of a are ignored). */
static void cidr_bounds(const struct ip_addr *a, uint8_t plen, pol_u128 *lo, pol_u128 *hi)
{
	unsigned bits = fam_bits(a->family);
	pol_u128 v = to_int(a);
	unsigned host = bits - plen;
	pol_u128 mask = host >= 128 ? ~(pol_u128)0 : (((pol_u128)1 << host) - 1);
	*lo = v & ~mask;
	*hi = *lo | mask;
}

int pol_ranges_add(struct pol_ranges *s, uint8_t family, pol_u128 lo, pol_u128 hi)
{
	if (s->n == s->cap) {
		unsigned nc = s->cap ? s->cap * 2 : 4;
		struct pol_range *r = realloc(s->r, (size_t)nc * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = nc;
	}
	s->r[s->n++] = (struct pol_range){ .family = family, .lo = lo, .hi = hi };
	return 0;
}

int pol_ranges_add_cidr(struct pol_ranges *s, const struct ip_addr *a, uint8_t plen)
{
	pol_u128 lo, hi;
	cidr_bounds(a, plen, &lo, &hi);
	return pol_ranges_add(s, a->family, lo, hi);
}

static int cmp_range(const void *pa, const void *pb)
{
	const struct pol_range *a = pa, *b = pb;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	return 0;
}

int pol_ranges_normalize(struct pol_ranges *s)
{
	if (s->n < 2)
		return 0;
	qsort(s->r, s->n, sizeof(*s->r), cmp_range);
	unsigned o = 0;
	for (unsigned i = 1; i < s->n; i++) {
		struct pol_range *c = &s->r[o];
		const struct pol_range *x = &s->r[i];
		if (x->family == c->family && (x->lo <= c->hi || x->lo - 1 == c->hi)) {
			if (x->hi > c->hi)
				c->hi = x->hi;
		} else {
			s->r[++o] = *x;
		}
	}
	s->n = o + 1;
	return 0;
}

int pol_ranges_sub_cidr(struct pol_ranges *s, const struct ip_addr *a, uint8_t plen)
{
	pol_u128 lo, hi;
	cidr_bounds(a, plen, &lo, &hi);
	unsigned n = s->n;
	for (unsigned i = 0; i < n; i++) {
		struct pol_range *r = &s->r[i];
		if (r->family != a->family || r->hi < lo || r->lo > hi)
			continue;
		bool left = r->lo < lo, right = r->hi > hi;
		pol_u128 rlo = r->lo, rhi = r->hi;
		if (left && right) {
			r->hi = lo - 1;
			if (pol_ranges_add(s, a->family, hi + 1, rhi) < 0)
				return -ENOMEM;
		} else if (left) {
			r->hi = lo - 1;
		} else if (right) {
			r->lo = hi + 1;
		} else {
			r->lo = 1;
			r->hi = 0; /* emptied; dropped below */
		}
		(void)rlo;
	}
	unsigned o = 0;
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].lo <= s->r[i].hi)
			s->r[o++] = s->r[i];
	s->n = o;
	return pol_ranges_normalize(s);
}

bool pol_ranges_has(const struct pol_ranges *s, const struct ip_addr *ip)
{
	if (!ip->family)
		return false;
	pol_u128 v = to_int(ip);
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].family == ip->family && s->r[i].lo <= v && v <= s->r[i].hi)
			return true;
	return false;
}

void pol_ranges_free(struct pol_ranges *s)
{
	free(s->r);
	*s = (struct pol_ranges){ 0 };
}

/* Call fn for each CIDR of the minimal cover of lo..hi. */
static void range_cidrs(const struct pol_range *r, void (*fn)(void *, const char *), void *arg)
{
	unsigned bits = fam_bits(r->family);
	pol_u128 lo = r->lo;
	for (;;) {
		unsigned host = 0;
		/* largest block aligned at lo that stays within hi */
		while (host < bits) {
			pol_u128 size_m1 = host + 1 >= 128 ? ~(pol_u128)0 : (((pol_u128)1 << (host + 1)) - 1);
			if ((lo & size_m1) != 0 || lo + size_m1 > r->hi || lo + size_m1 < lo)
				break;
			host++;
		}
		struct ip_addr a;
		char buf[IP_STRLEN];
		from_int(r->family, lo, &a);
		fn(arg, ip_fmt_prefix(&a, (uint8_t)(bits - host), buf));
		pol_u128 m = host >= 128 ? ~(pol_u128)0 : (((pol_u128)1 << host) - 1);
		if (lo + m >= r->hi)
			break;
		lo = lo + m + 1;
	}
}

static void put_json(void *arg, const char *s)
{
	json_w_str(arg, s);
}

void pol_ranges_json(const struct pol_ranges *s, struct json_w *w)
{
	json_w_arr_begin(w);
	for (unsigned i = 0; i < s->n; i++)
		range_cidrs(&s->r[i], put_json, w);
	json_w_arr_end(w);
}

struct fmt_ctx {
	char *buf;   /* output */
	size_t cap;  /* its size */
	size_t len;  /* used */
	bool cut;    /* ran out of room */
};

static void put_fmt(void *arg, const char *s)
{
	struct fmt_ctx *c = arg;
	size_t n = strlen(s) + (c->len ? 1 : 0);
	if (c->cut || c->len + n + 4 >= c->cap) {
		if (!c->cut && c->len + 4 < c->cap) {
			memcpy(c->buf + c->len, "...", 4);
			c->len += 3;
		}
		c->cut = true;
		return;
	}
	snprintf(c->buf + c->len, c->cap - c->len, "%s%s", c->len ? "," : "", s);
	c->len += n;
}

const char *pol_ranges_fmt(const struct pol_ranges *s, char *buf, size_t cap)
{
	struct fmt_ctx c = { .buf = buf, .cap = cap };
	if (cap)
		buf[0] = 0;
	for (unsigned i = 0; i < s->n; i++)
		range_cidrs(&s->r[i], put_fmt, &c);
	return buf;
}
