/* birdconf — BIRD 2's configuration fragment (see birdconf.h). */
#include "agent/birdconf.h"

#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A growing text buffer; sticky out-of-memory. */
struct text {
	char *buf;  /* the text (NUL-terminated once anything was written) */
	size_t len; /* bytes written */
	size_t cap; /* bytes allocated */
	bool oom;   /* an allocation failed: the text is incomplete */
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->oom)
		return;
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *nb = realloc(t->buf, cap);
		if (!nb) {
			t->oom = true;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

static int block_cmp(const void *pa, const void *pb)
{
	const struct agent_block *a = pa, *b = pb;
	if (a->net.family != b->net.family)
		return a->net.family < b->net.family ? -1 : 1;
	int c = memcmp(a->net.b, b->net.b, 16);
	if (c)
		return c < 0 ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

static struct ip_addr conf_ip(int family, const uint8_t *addr)
{
	struct ip_addr ip;
	memset(&ip, 0, sizeof(ip));
	ip.family = (uint8_t)family;
	memcpy(ip.b, addr, family == AF_INET ? 4 : 16);
	return ip;
}

/* One address family's static, kernel and export filter sections. */
static void family_part(struct text *t, const struct agent_bird_in *in, int family,
			const struct agent_block *bl, unsigned n_bl)
{
	const struct conf *c = in->c;
	const struct conf_cidr_list *pools =
		family == AF_INET ? &c->ipam.ipv4_pools : &c->ipam.ipv6_pools;
	const char v = family == AF_INET ? '4' : '6';
	const unsigned host = family == AF_INET ? 32 : 128;
	char a[IP_STRLEN];
	unsigned n_fam = 0;
	for (unsigned i = 0; i < n_bl; i++)
		n_fam += bl[i].net.family == family;

	put(t, "\n# This node's IPAM blocks (IPv%c): announced, never installed here.\n", v);
	put(t, "protocol static kvnet_blocks%c {\n\tipv%c;\n", v, v);
	for (unsigned i = 0; i < n_bl; i++)
		if (bl[i].net.family == family)
			put(t, "\troute %s unreachable;\n", ip_fmt_prefix(&bl[i].net, bl[i].len, a));
	put(t, "}\n");

	put(t, "\n# kvnet's routes (protocol %u) in; BGP routes inside the pools out, all at\n"
	       "# the one metric %u (never a metric from local preference). Preference %u,\n"
	       "# above BGP's 100: a /32 kvnet installed here (a migration target's) is this\n"
	       "# node's best route and announced at once, even while a peer still announces\n"
	       "# the same /32 (the source, until it learns of the move).\n",
	    c->network.route_protocol, c->bgp.kernel_metric, AGENT_BIRD_KERNEL_PREF);
	put(t, "protocol kernel kvnet_kernel%c {\n\tipv%c {\n\t\tpreference %u;\n", v, v,
	    AGENT_BIRD_KERNEL_PREF);
	put(t, "\t\timport where krt_source = %u;\n", c->network.route_protocol);
	if (pools->n) {
		put(t, "\t\texport where source = RTS_BGP && net ~ [ ");
		for (unsigned i = 0; i < pools->n; i++) {
			struct ip_addr p = conf_ip(pools->v[i].family, pools->v[i].addr);
			put(t, "%s%s+", i ? ", " : "", ip_fmt_prefix(&p, pools->v[i].prefix, a));
		}
		put(t, " ];\n");
	} else {
		put(t, "\t\texport none;\n");
	}
	put(t, "\t};\n\tlearn;\n\tmetric %u;\n%s}\n", c->bgp.kernel_metric,
	    c->bgp.graceful_restart ? "\tgraceful restart;\n" : "");

	put(t, "\n# What the peers learn (IPv%c).\nfilter kvnet_export%c {\n", v, v);
	put(t, "\tif proto = \"kvnet_blocks%c\" then {\n\t\tbgp_local_pref = %u;\n"
	       "\t\taccept;\n\t}\n", v, c->bgp.local_pref);
	put(t, "\tif proto = \"kvnet_kernel%c\" && net.len = %u && ifname ~ \"kv*\" then {\n",
	    v, host);
	put(t, "\t\tif krt_metric = %u then {\n\t\t\tbgp_local_pref = %u;\n\t\t\taccept;\n"
	       "\t\t}\n", c->network.migration_metric, c->bgp.migration_local_pref);
	if (n_fam) {
		put(t, "\t\tif net ~ [ ");
		unsigned k = 0;
		for (unsigned i = 0; i < n_bl; i++)
			if (bl[i].net.family == family)
				put(t, "%s%s+", k++ ? ", " : "",
				    ip_fmt_prefix(&bl[i].net, bl[i].len, a));
		put(t, " ] then reject;\n");
	}
	put(t, "\t\tbgp_local_pref = %u;\n\t\taccept;\n\t}\n\treject;\n}\n", c->bgp.local_pref);
}

int agent_bird_conf(const struct agent_bird_in *in, char **out, size_t *len, struct err *e)
{
	const struct conf *c = in->c;
	struct text t = { NULL, 0, 0, false };
	struct agent_block *bl = NULL;
	unsigned n_bl = 0;
	char a[IP_STRLEN];
	*out = NULL;
	*len = 0;
	if (in->router_id.family != AF_INET)
		return err_setx(e, EINVAL,
				"bgp: no IPv4 router id (set [bgp] router_id or give the node an "
				"IPv4 InternalIP)");
	if (in->n_blocks) {
		bl = calloc(in->n_blocks, sizeof(*bl));
		if (!bl)
			return err_setx(e, ENOMEM, "bgp: fragment: out of memory");
		for (unsigned i = 0; i < in->n_blocks; i++) {
			if (in->blocks[i].net.family != AF_INET &&
			    in->blocks[i].net.family != AF_INET6)
				continue;
			bl[n_bl] = in->blocks[i];
			bl[n_bl++].node = "";
		}
		qsort(bl, n_bl, sizeof(*bl), block_cmp);
		unsigned w = 0;
		for (unsigned i = 0; i < n_bl; i++)
			if (w == 0 || block_cmp(&bl[w - 1], &bl[i]) != 0)
				bl[w++] = bl[i];
		n_bl = w;
	}
	bool fam4 = c->ipam.ipv4_pools.n > 0, fam6 = c->ipam.ipv6_pools.n > 0;
	for (unsigned i = 0; i < c->bgp.peers.n; i++) {
		fam4 |= c->bgp.peers.v[i].family == AF_INET;
		fam6 |= c->bgp.peers.v[i].family == AF_INET6;
	}

	put(&t, AGENT_BIRD_HEADER ", written by the kvnet agent from\n"
		"# kvnet.conf ([bgp]) and this node's IPAM blocks. Do not edit: it is\n"
		"# rewritten when either changes. bird.conf includes it and holds no router id,\n"
		"# device or kernel protocol of its own.\n");
	put(&t, "router id %s;\n", ip_fmt(&in->router_id, a));
	put(&t, "\nprotocol device kvnet_device {\n}\n");
	if (fam4)
		family_part(&t, in, AF_INET, bl, n_bl);
	if (fam6)
		family_part(&t, in, AF_INET6, bl, n_bl);
	for (unsigned i = 0; i < c->bgp.peers.n; i++) {
		const struct conf_bgp_peer *p = &c->bgp.peers.v[i];
		struct ip_addr pa = conf_ip(p->family, p->addr);
		const char v = p->family == AF_INET ? '4' : '6';
		put(&t, "\n# Peer %u: %s, AS %u (%s).\n", i + 1, ip_fmt(&pa, a), p->asn,
		    p->asn == c->bgp.asn ? "iBGP" : "eBGP");
		put(&t, "protocol bgp kvnet_peer%u {\n\tlocal as %u;\n\tneighbor %s as %u;\n", i + 1,
		    c->bgp.asn, a, p->asn);
		put(&t, "\tdirect;\n%s", c->bgp.graceful_restart ? "\tgraceful restart;\n" : "");
		put(&t, "\tipv%c {\n\t\timport all;\n"
			"\t\texport filter kvnet_export%c;\n\t};\n}\n", v, v);
	}
	free(bl);
	if (t.oom) {
		free(t.buf);
		return err_setx(e, ENOMEM, "bgp: fragment: out of memory");
	}
	*out = t.buf;
	*len = t.len;
	return 0;
}

const char *agent_bird_conf_none(void)
{
	return AGENT_BIRD_HEADER ", written by the kvnet agent. [network]\n"
	       "# cross_node is not bgp on this node: nothing announced or learned (BIRD wants\n"
	       "# one protocol: the device protocol only). Rewritten when cross_node is bgp.\n"
	       "\nprotocol device kvnet_device {\n}\n";
}
