/* l2/netdef — parsing and asking the L2Network resource; see netdef.h. */
#include "l2/netdef.h"

#include "lib/err.h"

#include <bearssl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct pctx {
	const struct json_doc *d;
	const char *name; /* the object's name, for messages ("?" before it is known) */
	struct err *e;
};

static int bad(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct pctx *c, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_setx(c->e, EINVAL, "L2Network %s: %s", c->name, msg);
}

/* A DNS-1123 label: 1..63 of [a-z0-9-], alphanumeric at both ends. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > L2_IFNAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* The string at key of obj (absent: *out = "" and 0 when !required). */
static int get_str(struct pctx *c, int obj, const char *key, const char *path, char *out,
		   size_t cap, bool required)
{
	int t = obj >= 0 ? json_get(c->d, obj, key) : -1;
	*out = 0;
	if (t < 0 || json_is_null(c->d, t))
		return required ? bad(c, "%s%s: required", path, key) : 0;
	if (json_type(c->d, t) != JSON_STRING)
		return bad(c, "%s%s: not a string", path, key);
	if (json_str(c->d, t, out, cap) < 0)
		return bad(c, "%s%s: longer than %zu bytes or not text", path, key, cap - 1);
	return 0;
}

/* The object at key of obj, or -1 when absent; -2 (e set) when not an object. */
static int get_obj(struct pctx *c, int obj, const char *key, const char *path)
{
	int t = obj >= 0 ? json_get(c->d, obj, key) : -1;
	if (t < 0 || json_is_null(c->d, t))
		return -1;
	if (json_type(c->d, t) != JSON_OBJECT) {
		bad(c, "%s%s: not an object", path, key);
		return -2;
	}
	return t;
}

static bool host_bits_zero(const struct ip_addr *a, uint8_t prefix)
{
	size_t n = ip_len(a);
	for (size_t bit = prefix; bit < n * 8; bit++)
		if (a->b[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

static bool in_subnet(const struct l2_subnet *s, const struct ip_addr *ip)
{
	if (!s->set || ip->family != s->net.family)
		return false;
	for (unsigned bit = 0; bit < s->prefix; bit++) {
		uint8_t m = (uint8_t)(0x80 >> (bit % 8));
		if ((ip->b[bit / 8] & m) != (s->net.b[bit / 8] & m))
			return false;
	}
	return true;
}

static int parse_subnet(struct pctx *c, int spec, const char *key, int family,
			struct l2_subnet *out)
{
	char path[32], buf[64], *sl, *end;
	*out = (struct l2_subnet){ 0 };
	int o = get_obj(c, spec, key, "spec.");
	if (o == -2)
		return -EINVAL;
	if (o < 0)
		return 0;
	snprintf(path, sizeof(path), "spec.%s.", key);
	int rc = get_str(c, o, "subnet", path, buf, sizeof(buf), true);
	if (rc < 0)
		return rc;
	unsigned maxp = family == AF_INET ? 32 : 128;
	sl = strchr(buf, '/');
	long p = sl ? strtol(sl + 1, &end, 10) : -1;
	if (sl)
		*sl = 0;
	if (!sl || !sl[1] || *end || p < 0 || (unsigned long)p > maxp ||
	    !ip_parse(buf, &out->net) || out->net.family != family)
		return bad(c, "%ssubnet: not an %s CIDR", path, family == AF_INET ? "IPv4" : "IPv6");
	out->prefix = (uint8_t)p;
	if (!host_bits_zero(&out->net, out->prefix))
		return bad(c, "%ssubnet: %s/%ld has host bits set", path, buf, p);
	if (out->prefix > maxp - 2 && family == AF_INET)
		return bad(c, "%ssubnet: /%ld leaves no address to hand out", path, p);
	out->set = true;
	if ((rc = get_str(c, o, "gateway", path, buf, sizeof(buf), false)) < 0)
		return rc;
	if (*buf) {
		if (!ip_parse(buf, &out->gw) || out->gw.family != family)
			return bad(c, "%sgateway: not an %s address", path,
				   family == AF_INET ? "IPv4" : "IPv6");
		if (!in_subnet(out, &out->gw))
			return bad(c, "%sgateway: %s is outside the subnet", path, buf);
	}
	return 0;
}

static int parse_labels(struct pctx *c, int sel, const char *path, struct l2_override *o)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, c->d, sel);
	while (json_iter_next(&it, &k, &v)) {
		if (o->n_labels == L2_LABELS_MAX)
			return bad(c, "%s: more than %d labels", path, L2_LABELS_MAX);
		struct l2_label *l = &o->labels[o->n_labels];
		if (json_str(c->d, k, l->k, sizeof(l->k)) < 0 || !*l->k)
			return bad(c, "%s: a key is not a label key", path);
		if (json_type(c->d, v) != JSON_STRING || json_str(c->d, v, l->v, sizeof(l->v)) < 0)
			return bad(c, "%s.%s: not a label value", path, l->k);
		o->n_labels++;
	}
	return 0;
}

static int parse_trunk(struct pctx *c, int spec, struct l2_netdef *out)
{
	int t = get_obj(c, spec, "trunk", "spec.");
	if (t == -2)
		return -EINVAL;
	if (t < 0)
		return bad(c, "spec.trunk: required");
	int rc = get_str(c, t, "interface", "spec.trunk.", out->trunk, sizeof(out->trunk), false);
	if (rc < 0)
		return rc;
	if (*out->trunk && !ifname_ok(out->trunk))
		return bad(c, "spec.trunk.interface: '%s' is not an interface name", out->trunk);
	int nodes = json_get(c->d, t, "nodes");
	if (nodes >= 0 && !json_is_null(c->d, nodes)) {
		if (json_type(c->d, nodes) != JSON_ARRAY)
			return bad(c, "spec.trunk.nodes: not a list");
		struct json_iter it;
		int k, v;
		json_iter_init(&it, c->d, nodes);
		while (json_iter_next(&it, &k, &v)) {
			char path[48];
			snprintf(path, sizeof(path), "spec.trunk.nodes[%u].", out->n_over);
			if (out->n_over == L2_OVERRIDES_MAX)
				return bad(c, "spec.trunk.nodes: more than %d overrides", L2_OVERRIDES_MAX);
			if (json_type(c->d, v) != JSON_OBJECT)
				return bad(c, "%.*s: not an object", (int)strlen(path) - 1, path);
			struct l2_override *o = &out->over[out->n_over];
			memset(o, 0, sizeof(*o));
			if ((rc = get_str(c, v, "name", path, o->node, sizeof(o->node), false)) < 0 ||
			    (rc = get_str(c, v, "interface", path, o->ifname, sizeof(o->ifname),
					  true)) < 0)
				return rc;
			if (!ifname_ok(o->ifname))
				return bad(c, "%sinterface: '%s' is not an interface name", path,
					   o->ifname);
			int sel = get_obj(c, v, "matchLabels", path);
			if (sel == -2)
				return -EINVAL;
			if (sel >= 0) {
				char lp[64];
				snprintf(lp, sizeof(lp), "%smatchLabels", path);
				if ((rc = parse_labels(c, sel, lp, o)) < 0)
					return rc;
			}
			if (!*o->node == !o->n_labels)
				return bad(c, "%.*s: give either name or matchLabels", (int)strlen(path) - 1,
					   path);
			out->n_over++;
		}
	}
	if (!*out->trunk && !out->n_over)
		return bad(c, "spec.trunk: names no interface (interface or nodes)");
	return 0;
}

static void make_id(const char *name, char id[9])
{
	static const char hex[] = "0123456789abcdef";
	br_sha256_context ctx;
	uint8_t h[32];
	br_sha256_init(&ctx);
	br_sha256_update(&ctx, name, strlen(name));
	br_sha256_out(&ctx, h);
	for (int i = 0; i < 4; i++) {
		id[2 * i] = hex[h[i] >> 4];
		id[2 * i + 1] = hex[h[i] & 15];
	}
	id[8] = 0;
}

int l2_netdef_parse(const struct json_doc *d, int obj, struct l2_netdef *out, struct err *e)
{
	struct pctx c = { .d = d, .name = "?", .e = e };
	char buf[64];
	int rc;
	memset(out, 0, sizeof(*out));
	if (obj < 0 || json_type(d, obj) != JSON_OBJECT)
		return bad(&c, "not a JSON object");
	if ((rc = get_str(&c, obj, "kind", "", buf, sizeof(buf), false)) < 0)
		return rc;
	if (*buf && strcmp(buf, "L2Network") != 0)
		return bad(&c, "kind: '%s' is not L2Network", buf);
	if ((rc = get_str(&c, obj, "apiVersion", "", buf, sizeof(buf), false)) < 0)
		return rc;
	if (*buf && strcmp(buf, "kvnet.io/v1") != 0)
		return bad(&c, "apiVersion: '%s' is not kvnet.io/v1", buf);
	int md = get_obj(&c, obj, "metadata", "");
	if (md == -2)
		return -EINVAL;
	if ((rc = get_str(&c, md, "name", "metadata.", out->name, sizeof(out->name), true)) < 0)
		return rc;
	if (!dns_label(out->name))
		return bad(&c, "metadata.name: '%s' is not a DNS label", out->name);
	c.name = out->name;
	make_id(out->name, out->id);
	int spec = get_obj(&c, obj, "spec", "");
	if (spec == -2)
		return -EINVAL;
	if (spec < 0)
		return bad(&c, "spec: required");
	int t = json_get(d, spec, "vlan");
	int64_t vid;
	if (t < 0)
		return bad(&c, "spec.vlan: required (0 for the untagged frames)");
	if (json_type(d, t) != JSON_NUMBER || json_int64(d, t, &vid) < 0)
		return bad(&c, "spec.vlan: not an integer");
	if (vid < 0 || vid > 4094)
		return bad(&c, "spec.vlan: %lld is not 0-4094", (long long)vid);
	out->vid = (uint16_t)vid;
	if ((rc = parse_trunk(&c, spec, out)) < 0)
		return rc;
	t = json_get(d, spec, "mtu");
	if (t >= 0 && !json_is_null(d, t)) {
		int64_t mtu;
		if (json_type(d, t) != JSON_NUMBER || json_int64(d, t, &mtu) < 0 || mtu < 576 ||
		    mtu > 65535)
			return bad(&c, "spec.mtu: not an MTU (576-65535)");
		out->mtu = (uint32_t)mtu;
	}
	if ((rc = parse_subnet(&c, spec, "ipv4", AF_INET, &out->v4)) < 0 ||
	    (rc = parse_subnet(&c, spec, "ipv6", AF_INET6, &out->v6)) < 0)
		return rc;
	return 0;
}

int l2_netdef_parse_text(const char *text, size_t len, struct l2_netdef *out, struct err *e)
{
	struct json_doc d;
	struct json_tok *tok;
	int rc = json_parse_alloc(&d, text, len, &tok, e);
	if (rc == 0)
		rc = l2_netdef_parse(&d, 0, out, e);
	else
		err_prefix(e, "L2Network");
	free(tok);
	return rc;
}

static bool labels_match(const struct l2_override *o, const struct l2_node *node)
{
	for (unsigned i = 0; i < o->n_labels; i++) {
		bool hit = false;
		for (unsigned j = 0; j < node->n_labels && !hit; j++)
			hit = strcmp(node->labels[j].k, o->labels[i].k) == 0 &&
			      strcmp(node->labels[j].v, o->labels[i].v) == 0;
		if (!hit)
			return false;
	}
	return true;
}

const char *l2_netdef_trunk(const struct l2_netdef *n, const struct l2_node *node)
{
	for (unsigned i = 0; i < n->n_over; i++) {
		const struct l2_override *o = &n->over[i];
		if (*o->node ? node->name && strcmp(o->node, node->name) == 0
			     : labels_match(o, node))
			return o->ifname;
	}
	return *n->trunk ? n->trunk : NULL;
}

bool l2_netdef_usable(const struct l2_netdef *n, const struct ip_addr *ip)
{
	const struct l2_subnet *s = ip->family == AF_INET ? &n->v4 : &n->v6;
	if (!in_subnet(s, ip) || ip_eq(ip, &s->net) || (s->gw.family && ip_eq(ip, &s->gw)))
		return false;
	if (ip->family == AF_INET && s->prefix < 31) {
		/* not the broadcast address: every host bit set */
		for (unsigned bit = s->prefix; bit < 32; bit++)
			if (!(ip->b[bit / 8] & (0x80 >> (bit % 8))))
				return true;
		return false;
	}
	return true;
}
