/* ipam records as JSON (the CRD specs and the file datastore's files); see ipam.h. */
#include "ipam/ipam.h"

#include "lib/json.h"
#include "lib/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REC_MAX (4u << 20) /* largest record text accepted or written */

const char *ipam_kind_name(enum ipam_kind k)
{
	switch (k) {
	case IPAM_POOL:
		return "pool";
	case IPAM_BLOCK:
		return "block";
	case IPAM_HANDLE:
		return "handle";
	case IPAM_CONFIG:
		return "config";
	}
	return "?";
}

/* --- writing -------------------------------------------------------------------------- */

static void w_addr(struct json_w *w, const struct ip_addr *a)
{
	char s[INET6_ADDRSTRLEN];
	json_w_str(w, ipam_addr_str(a, s, sizeof(s)));
}

static void w_opt(struct json_w *w, const char *k, const char *v)
{
	if (v[0])
		json_w_kstr(w, k, v);
}

static void w_owner(struct json_w *w, const char *k, const struct ipam_owner *o)
{
	if (!o->uid[0])
		return;
	json_w_key(w, k);
	json_w_obj_begin(w);
	json_w_kstr(w, "namespace", o->ns);
	json_w_kstr(w, "name", o->name);
	json_w_kstr(w, "uid", o->uid);
	json_w_kstr(w, "node", o->node);
	w_opt(w, "containerID", o->cid);
	w_opt(w, "ifname", o->ifname);
	json_w_obj_end(w);
}

static void w_alloc(struct json_w *w, const struct ip_addr *ip, const struct ipam_attrs *a)
{
	json_w_obj_begin(w);
	json_w_key(w, "ip");
	w_addr(w, ip);
	json_w_kstr(w, "handle", a->handle);
	w_opt(w, "pod", a->pod);
	w_opt(w, "namespace", a->ns);
	w_opt(w, "node", a->node);
	w_opt(w, "ifname", a->ifname);
	w_opt(w, "containerID", a->container_id);
	w_opt(w, "vmiName", a->vmi_name);
	w_opt(w, "vmiUID", a->vmi_uid);
	w_opt(w, "vmUID", a->vm_uid);
	w_opt(w, "vmimUID", a->vmim_uid);
	w_opt(w, "mac", a->mac);
	w_owner(w, "activeOwner", &a->active);
	w_owner(w, "alternateOwner", &a->alternate);
	json_w_obj_end(w);
}

int ipam_rec_write(const struct ipam_state *st, enum ipam_kind kind, const char *name,
		   struct json_w *w, struct err *e)
{
	char s[64];
	switch (kind) {
	case IPAM_POOL:
		for (unsigned i = 0; i < st->n_pools; i++) {
			const struct ipam_pool *p = &st->pools[i];
			if (strcmp(p->name, name))
				continue;
			json_w_obj_begin(w);
			json_w_kstr(w, "cidr", ipam_cidr_str(&p->cidr, s, sizeof(s)));
			json_w_kint(w, "blockSize", p->block_prefix);
			json_w_key(w, "reserved");
			json_w_arr_begin(w);
			for (unsigned k = 0; k < p->n_reserved; k++)
				w_addr(w, &p->reserved[k]);
			json_w_arr_end(w);
			if (p->network[0])
				json_w_kstr(w, "network", p->network);
			json_w_obj_end(w);
			return json_w_finish(w, e);
		}
		break;
	case IPAM_BLOCK:
		for (unsigned i = 0; i < st->n_blocks; i++) {
			const struct ipam_block *b = &st->blocks[i];
			ipam_block_name(&b->cidr, s, sizeof(s));
			if (strcmp(s, name))
				continue;
			json_w_obj_begin(w);
			json_w_kstr(w, "cidr", ipam_cidr_str(&b->cidr, s, sizeof(s)));
			json_w_key(w, "affinity");
			if (b->affinity[0])
				json_w_str(w, b->affinity);
			else
				json_w_null(w);
			json_w_kint(w, "used", b->used);
			json_w_key(w, "allocations");
			json_w_arr_begin(w);
			for (unsigned o = 0; o < b->size; o++) {
				if (!b->slot[o])
					continue;
				struct ip_addr a = b->cidr.a;
				/* ordinal o after the base; blocks are at most 1024 long */
				unsigned carry = o;
				for (int k = a.family == AF_INET ? 3 : 15; k >= 0 && carry; k--) {
					unsigned v = a.b[k] + (carry & 0xff);
					a.b[k] = (uint8_t)v;
					carry = (carry >> 8) + (v >> 8);
				}
				w_alloc(w, &a, b->slot[o]);
			}
			json_w_arr_end(w);
			json_w_obj_end(w);
			return json_w_finish(w, e);
		}
		break;
	case IPAM_HANDLE:
		for (unsigned i = 0; i < st->n_handles; i++) {
			const struct ipam_handle *h = &st->handles[i];
			if (strcmp(h->id, name))
				continue;
			json_w_obj_begin(w);
			json_w_key(w, "ips");
			json_w_arr_begin(w);
			for (unsigned k = 0; k < h->n; k++)
				w_addr(w, &h->ip[k]);
			json_w_arr_end(w);
			json_w_obj_end(w);
			return json_w_finish(w, e);
		}
		break;
	case IPAM_CONFIG:
		if (!st->has_config || strcmp(name, IPAM_CONFIG_NAME))
			break;
		json_w_obj_begin(w);
		json_w_kstr(w, "kubeVirtVMAddressPersistence",
			    ipam_persist_name(st->config.vm_persistence));
		json_w_obj_end(w);
		return json_w_finish(w, e);
	}
	return err_setx(e, ENOENT, "%s %.64s: no such record", ipam_kind_name(kind), name);
}

/* --- reading -------------------------------------------------------------------------- */

/* Strict object walk: every member key must be in keys[] (at most 32) and appear once.
 * vals[k] gets the value token of keys[k] or -1. */
static int obj_fields(const struct json_doc *d, int obj, const char *const *keys, unsigned nkeys,
		      int *vals, const char *what, struct err *e)
{
	if (json_type(d, obj) != JSON_OBJECT)
		return err_setx(e, EINVAL, "%s: not a JSON object", what);
	for (unsigned k = 0; k < nkeys; k++)
		vals[k] = -1;
	struct json_iter it;
	int kt, vt;
	json_iter_init(&it, d, obj);
	while (json_iter_next(&it, &kt, &vt)) {
		unsigned k;
		for (k = 0; k < nkeys; k++)
			if (json_str_eq(d, kt, keys[k], strlen(keys[k])))
				break;
		if (k == nkeys) {
			char kb[64];
			if (json_str(d, kt, kb, sizeof(kb)))
				snprintf(kb, sizeof(kb), "(long key)");
			return err_setx(e, EINVAL, "%s: unknown field \"%s\"", what, kb);
		}
		if (vals[k] >= 0)
			return err_setx(e, EINVAL, "%s: field \"%s\" given twice", what, keys[k]);
		vals[k] = vt;
	}
	return 0;
}

/* String field into buf (cap bytes incl. NUL); absent (tok < 0) = "" unless required. */
static int get_str(const struct json_doc *d, int tok, const char *key, bool required, char *buf,
		   size_t cap, const char *what, struct err *e)
{
	buf[0] = 0;
	if (tok < 0) {
		if (required)
			return err_setx(e, EINVAL, "%s: field \"%s\" missing", what, key);
		return 0;
	}
	if (json_type(d, tok) != JSON_STRING)
		return err_setx(e, EINVAL, "%s: field \"%s\": not a string", what, key);
	int r = json_str(d, tok, buf, cap);
	if (r == -ENOSPC)
		return err_setx(e, EINVAL, "%s: field \"%s\": longer than %zu characters", what,
				key, cap - 1);
	if (r)
		return err_setx(e, EINVAL, "%s: field \"%s\": not a valid string", what, key);
	if (required && !buf[0])
		return err_setx(e, EINVAL, "%s: field \"%s\" empty", what, key);
	return 0;
}

static int get_addr(const struct json_doc *d, int tok, struct ip_addr *a, const char *what,
		    struct err *e)
{
	char s[64];
	if (json_type(d, tok) != JSON_STRING || json_str(d, tok, s, sizeof(s)))
		return err_setx(e, EINVAL, "%s: address: not an address string", what);
	if (ipam_addr_parse(a, s, e))
		return err_prefix(e, "%s", what), -EINVAL;
	return 0;
}

static int get_cidr(const struct json_doc *d, int tok, struct ipam_cidr *c, const char *what,
		    struct err *e)
{
	char s[80];
	if (tok < 0)
		return err_setx(e, EINVAL, "%s: field \"cidr\" missing", what);
	if (json_type(d, tok) != JSON_STRING || json_str(d, tok, s, sizeof(s)))
		return err_setx(e, EINVAL, "%s: field \"cidr\": not a CIDR string", what);
	if (ipam_cidr_parse(c, s, e))
		return err_prefix(e, "%s", what), -EINVAL;
	return 0;
}

static int get_owner(const struct json_doc *d, int tok, struct ipam_owner *o, const char *what,
		     struct err *e)
{
	static const char *const keys[] = {"namespace", "name", "uid", "node", "containerID",
					   "ifname"};
	int v[6];
	memset(o, 0, sizeof(*o));
	if (tok < 0)
		return 0;
	int r = obj_fields(d, tok, keys, 6, v, what, e);
	if (!r)
		r = get_str(d, v[0], keys[0], true, o->ns, sizeof(o->ns), what, e);
	if (!r)
		r = get_str(d, v[1], keys[1], true, o->name, sizeof(o->name), what, e);
	if (!r)
		r = get_str(d, v[2], keys[2], true, o->uid, sizeof(o->uid), what, e);
	if (!r)
		r = get_str(d, v[3], keys[3], false, o->node, sizeof(o->node), what, e);
	if (!r)
		r = get_str(d, v[4], keys[4], false, o->cid, sizeof(o->cid), what, e);
	if (!r)
		r = get_str(d, v[5], keys[5], false, o->ifname, sizeof(o->ifname), what, e);
	return r;
}

static int parse_pool(struct ipam_state *st, const char *name, const struct json_doc *d,
		      const char *what, struct err *e)
{
	static const char *const keys[] = {"cidr", "blockSize", "reserved", "network"};
	int v[4];
	struct ipam_cidr c;
	int r = obj_fields(d, 0, keys, 4, v, what, e);
	if (r || (r = get_cidr(d, v[0], &c, what, e)))
		return r;
	int64_t bs = 0;
	if (v[1] >= 0 && (json_int64(d, v[1], &bs) || bs < 1 || bs > 128))
		return err_setx(e, EINVAL, "%s: field \"blockSize\": not a prefix length", what);
	struct ip_addr res[IPAM_RESERVED_MAX];
	unsigned n = 0;
	if (v[2] >= 0) {
		if (json_type(d, v[2]) != JSON_ARRAY)
			return err_setx(e, EINVAL, "%s: field \"reserved\": not an array", what);
		struct json_iter it;
		int kt, vt;
		json_iter_init(&it, d, v[2]);
		while (json_iter_next(&it, &kt, &vt)) {
			if (n == IPAM_RESERVED_MAX)
				return err_setx(e, EINVAL, "%s: more than %d reserved addresses",
						what, IPAM_RESERVED_MAX);
			if ((r = get_addr(d, vt, &res[n++], what, e)))
				return r;
		}
	}
	char net[IPAM_NAME_MAX + 1] = "";
	if (v[3] >= 0 && (r = get_str(d, v[3], keys[3], false, net, sizeof(net), what, e)))
		return r;
	if (net[0] && !ipam_name_valid(net))
		return err_setx(e, EINVAL, "%s: field \"network\": not a network name", what);
	r = ipam_pool_add(st, name, &c, (unsigned)bs, res, n, e);
	if (r)
		return err_prefix(e, "%s", what);
	snprintf(st->pools[st->n_pools - 1].network, IPAM_NAME_MAX + 1, "%s", net);
	return 0;
}

static int parse_alloc(struct ipam_block *b, const struct json_doc *d, int tok, const char *what,
		       struct err *e)
{
	static const char *const keys[] = {
	    "ip",      "handle",      "pod",	       "namespace", "node",
	    "ifname",  "containerID", "vmiName",       "vmiUID",    "vmUID",
	    "vmimUID", "activeOwner", "alternateOwner", "mac"};
	int v[14];
	int r = obj_fields(d, tok, keys, 14, v, what, e);
	if (r)
		return r;
	if (v[0] < 0)
		return err_setx(e, EINVAL, "%s: allocation without \"ip\"", what);
	struct ip_addr a;
	if ((r = get_addr(d, v[0], &a, what, e)))
		return r;
	char as[INET6_ADDRSTRLEN];
	ipam_addr_str(&a, as, sizeof(as));
	if (!ipam_cidr_contains(&b->cidr, &a))
		return err_setx(e, EINVAL, "%s: allocation %s outside the block", what, as);
	/* offset inside the block: the low bits, at most 10 of them */
	unsigned ord = 0;
	unsigned bits = a.family == AF_INET ? 32 : 128;
	for (unsigned i = b->cidr.prefix; i < bits; i++)
		ord = (ord << 1) | ((a.b[i / 8] >> (7 - i % 8)) & 1u);
	if (b->slot[ord])
		return err_setx(e, EINVAL, "%s: allocation %s listed twice", what, as);
	struct ipam_attrs *at = calloc(1, sizeof(*at));
	if (!at)
		return err_set(e, ENOMEM, "%s", what);
	struct {
		char *buf;
		size_t cap;
		bool req;
	} f[] = {
	    {at->handle, sizeof(at->handle), true},
	    {at->pod, sizeof(at->pod), false},
	    {at->ns, sizeof(at->ns), false},
	    {at->node, sizeof(at->node), false},
	    {at->ifname, sizeof(at->ifname), false},
	    {at->container_id, sizeof(at->container_id), false},
	    {at->vmi_name, sizeof(at->vmi_name), false},
	    {at->vmi_uid, sizeof(at->vmi_uid), false},
	    {at->vm_uid, sizeof(at->vm_uid), false},
	    {at->vmim_uid, sizeof(at->vmim_uid), false},
	};
	for (unsigned i = 0; i < 10 && !r; i++)
		r = get_str(d, v[1 + i], keys[1 + i], f[i].req, f[i].buf, f[i].cap, what, e);
	if (!r && !ipam_name_valid(at->handle))
		r = err_setx(e, EINVAL, "%s: allocation %s: handle is not a valid object name",
			     what, as);
	if (!r)
		r = get_owner(d, v[11], &at->active, what, e);
	if (!r)
		r = get_owner(d, v[12], &at->alternate, what, e);
	if (!r)
		r = get_str(d, v[13], "mac", false, at->mac, sizeof(at->mac), what, e);
	uint8_t mb[6];
	if (!r && at->mac[0] && ipam_mac_parse(at->mac, mb, at->mac, e))
		r = err_prefix(e, "%s: allocation %s", what, as);
	if (r) {
		free(at);
		return r;
	}
	b->slot[ord] = at;
	return 0;
}

static int parse_block(struct ipam_state *st, const char *name, const struct json_doc *d,
		       const char *what, struct err *e)
{
	static const char *const keys[] = {"cidr", "affinity", "used", "allocations"};
	int v[4];
	struct ipam_cidr c;
	int r = obj_fields(d, 0, keys, 4, v, what, e);
	if (r || (r = get_cidr(d, v[0], &c, what, e)))
		return r;
	unsigned bits = c.a.family == AF_INET ? 32 : 128;
	if (bits - c.prefix > 10)
		return err_setx(e, EINVAL, "%s: block larger than %d addresses", what,
				IPAM_BLOCK_ADDRS_MAX);
	char expect[64];
	ipam_block_name(&c, expect, sizeof(expect));
	if (strcmp(expect, name))
		return err_setx(e, EINVAL, "%s: name does not match cidr (expected %s)", what,
				expect);
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_cidr *o = &st->blocks[i].cidr;
		if (ipam_cidr_contains(o, &c.a) || ipam_cidr_contains(&c, &o->a))
			return err_setx(e, EEXIST, "%s: overlaps another block", what);
	}
	struct ipam_block b = {.cidr = c, .size = 1u << (bits - c.prefix)};
	if (v[1] >= 0 && !json_is_null(d, v[1])) {
		if ((r = get_str(d, v[1], "affinity", true, b.affinity, sizeof(b.affinity), what,
				 e)))
			return r;
		if (!ipam_name_valid(b.affinity))
			return err_setx(e, EINVAL, "%s: affinity is not a valid node name", what);
	}
	uint64_t used = 0;
	if (v[2] < 0 || json_uint64(d, v[2], &used) || used > b.size)
		return err_setx(e, EINVAL, "%s: field \"used\": missing or not a count", what);
	b.used = (unsigned)used;
	if (v[3] < 0 || json_type(d, v[3]) != JSON_ARRAY)
		return err_setx(e, EINVAL, "%s: field \"allocations\": missing or not an array",
				what);
	b.slot = calloc(b.size, sizeof(*b.slot));
	if (!b.slot)
		return err_set(e, ENOMEM, "%s", what);
	struct json_iter it;
	int kt, vt;
	json_iter_init(&it, d, v[3]);
	while (json_iter_next(&it, &kt, &vt))
		if ((r = parse_alloc(&b, d, vt, what, e)))
			goto fail;
	struct ipam_block *nb = NULL;
	if (st->n_blocks < st->cap_blocks ||
	    (st->cap_blocks < (1u << 24) &&
	     (nb = realloc(st->blocks, (st->cap_blocks ? st->cap_blocks * 2 : 8) * sizeof(*nb))))) {
		if (nb) {
			st->blocks = nb;
			st->cap_blocks = st->cap_blocks ? st->cap_blocks * 2 : 8;
		}
		st->blocks[st->n_blocks++] = b;
		return 0;
	}
	r = err_set(e, ENOMEM, "%s", what);
fail:
	for (unsigned i = 0; i < b.size; i++)
		free(b.slot[i]);
	free(b.slot);
	return r;
}

static int parse_handle(struct ipam_state *st, const char *name, const struct json_doc *d,
			const char *what, struct err *e)
{
	static const char *const keys[] = {"ips"};
	int v[1];
	int r = obj_fields(d, 0, keys, 1, v, what, e);
	if (r)
		return r;
	if (v[0] < 0 || json_type(d, v[0]) != JSON_ARRAY)
		return err_setx(e, EINVAL, "%s: field \"ips\": missing or not an array", what);
	for (unsigned i = 0; i < st->n_handles; i++)
		if (!strcmp(st->handles[i].id, name))
			return err_setx(e, EEXIST, "%s: recorded twice", what);
	struct ipam_handle h;
	memset(&h, 0, sizeof(h));
	strcpy(h.id, name);
	struct json_iter it;
	int kt, vt;
	json_iter_init(&it, d, v[0]);
	while (json_iter_next(&it, &kt, &vt)) {
		if (h.n == IPAM_HANDLE_IPS_MAX)
			return err_setx(e, EINVAL, "%s: more than %d addresses", what,
					IPAM_HANDLE_IPS_MAX);
		if ((r = get_addr(d, vt, &h.ip[h.n++], what, e)))
			return r;
	}
	if (h.n == 0)
		return err_setx(e, EINVAL, "%s: holds no address", what);
	if (st->n_handles == st->cap_handles) {
		unsigned nc = st->cap_handles ? st->cap_handles * 2 : 8;
		struct ipam_handle *nh =
		    nc < (1u << 24) ? realloc(st->handles, nc * sizeof(*nh)) : NULL;
		if (!nh)
			return err_set(e, ENOMEM, "%s", what);
		st->handles = nh;
		st->cap_handles = nc;
	}
	st->handles[st->n_handles++] = h;
	return 0;
}

static int parse_config(struct ipam_state *st, const char *name, const struct json_doc *d,
			const char *what, struct err *e)
{
	static const char *const keys[] = {"kubeVirtVMAddressPersistence"};
	int v[1];
	if (strcmp(name, IPAM_CONFIG_NAME))
		return err_setx(e, EINVAL,
				"%s: the IPAMConfig is a singleton named \"" IPAM_CONFIG_NAME "\"",
				what);
	int r = obj_fields(d, 0, keys, 1, v, what, e);
	if (r)
		return r;
	if (st->has_config)
		return err_setx(e, EEXIST, "%s: recorded twice", what);
	struct ipam_config c = {.vm_persistence = IPAM_PERSIST_ENABLED};
	if (v[0] >= 0) {
		char s[16];
		if (json_type(d, v[0]) != JSON_STRING || json_str(d, v[0], s, sizeof(s)) ||
		    !ipam_persist_parse(s, &c.vm_persistence))
			return err_setx(e, EINVAL,
					"%s: field \"kubeVirtVMAddressPersistence\": not "
					"\"Enabled\" or \"Disabled\"",
					what);
	}
	return ipam_config_set(st, &c, e);
}

static int grow_loaded(struct ipam_state *st)
{
	if (st->n_loaded < st->cap_loaded)
		return 0;
	unsigned nc = st->cap_loaded ? st->cap_loaded * 2 : 16;
	struct ipam_loaded *n = nc < (1u << 24) ? realloc(st->loaded, nc * sizeof(*n)) : NULL;
	if (!n)
		return -ENOMEM;
	st->loaded = n;
	st->cap_loaded = nc;
	return 0;
}

int ipam_state_load(struct ipam_state *st, enum ipam_kind kind, const char *name,
		    const char *version, const char *json, size_t len, struct err *e)
{
	char what[IPAM_NAME_MAX + 32];
	snprintf(what, sizeof(what), "%s %.64s", ipam_kind_name(kind), name);
	if (!ipam_name_valid(name))
		return err_setx(e, EINVAL, "%s: not a valid object name", what);
	if (strlen(version) > IPAM_VERSION_MAX)
		return err_setx(e, EINVAL, "%s: version too long", what);
	if (len > REC_MAX)
		return err_setx(e, EFBIG, "%s: record larger than %u bytes", what, REC_MAX);
	for (unsigned i = 0; i < st->n_loaded; i++)
		if (st->loaded[i].kind == kind && !strcmp(st->loaded[i].name, name))
			return err_setx(e, EEXIST, "%s: loaded twice", what);
	struct json_doc d;
	int r = json_parse(&d, json, len, NULL, 0, 0, e);
	if (r != -ENOSPC && r != 0)
		return err_prefix(e, "%s", what), r;
	struct json_tok *tok = calloc(d.n ? d.n : 1, sizeof(*tok));
	if (!tok)
		return err_set(e, ENOMEM, "%s", what);
	r = json_parse(&d, json, len, tok, d.n, 0, e);
	if (r) {
		err_prefix(e, "%s", what);
		goto out;
	}
	switch (kind) {
	case IPAM_POOL:
		r = parse_pool(st, name, &d, what, e);
		break;
	case IPAM_BLOCK:
		r = parse_block(st, name, &d, what, e);
		break;
	case IPAM_HANDLE:
		r = parse_handle(st, name, &d, what, e);
		break;
	case IPAM_CONFIG:
		r = parse_config(st, name, &d, what, e);
		break;
	}
	if (r)
		goto out;
	r = -ENOMEM;
	char *copy = malloc(len + 1);
	if (!copy || grow_loaded(st)) {
		free(copy);
		err_set(e, ENOMEM, "%s", what);
		goto out;
	}
	memcpy(copy, json, len);
	copy[len] = 0;
	struct ipam_loaded *l = &st->loaded[st->n_loaded++];
	l->kind = kind;
	strcpy(l->name, name);
	strcpy(l->version, version);
	l->json = copy;
	l->len = len;
	r = 0;
out:
	free(tok);
	return r;
}

/* --- diff ----------------------------------------------------------------------------- */

void ipam_changes_free(struct ipam_change *c, unsigned n)
{
	for (unsigned i = 0; c && i < n; i++)
		free(c[i].json);
	free(c);
}

/* Append change (kind, name) with new json (taken; NULL = delete) unless it equals the
 * loaded text. name must live as long as st. */
static int diff_one(const struct ipam_state *st, struct ipam_change **out, unsigned *n,
		    unsigned *cap, enum ipam_kind kind, const char *name, char *json, size_t len)
{
	const struct ipam_loaded *l = NULL;
	for (unsigned i = 0; i < st->n_loaded && !l; i++)
		if (st->loaded[i].kind == kind && !strcmp(st->loaded[i].name, name))
			l = &st->loaded[i];
	if ((l && json && l->len == len && !memcmp(l->json, json, len)) || (!l && !json)) {
		free(json);
		return 0;
	}
	if (*n == *cap) {
		unsigned nc = *cap ? *cap * 2 : 16;
		struct ipam_change *c = nc < (1u << 24) ? realloc(*out, nc * sizeof(*c)) : NULL;
		if (!c) {
			free(json);
			return -ENOMEM;
		}
		*out = c;
		*cap = nc;
	}
	(*out)[(*n)++] = (struct ipam_change){.kind = kind,
					      .name = name,
					      .json = json,
					      .len = json ? len : 0,
					      .version = l ? l->version : ""};
	return 0;
}

static int diff_rec(const struct ipam_state *st, struct ipam_change **out, unsigned *n,
		    unsigned *cap, enum ipam_kind kind, const char *name, struct err *e)
{
	struct json_w w;
	json_w_init_grow(&w, REC_MAX);
	int r = ipam_rec_write(st, kind, name, &w, e);
	if (r) {
		json_w_free(&w);
		return r;
	}
	size_t len;
	char *j = json_w_take(&w, &len);
	if (!j)
		return err_set(e, ENOMEM, "%s %s", ipam_kind_name(kind), name);
	r = diff_one(st, out, n, cap, kind, name, j, len);
	return r ? err_set(e, ENOMEM, "%s %s", ipam_kind_name(kind), name) : 0;
}

/* Present in the current state? */
static bool rec_present(const struct ipam_state *st, enum ipam_kind kind, const char *name)
{
	char s[64];
	switch (kind) {
	case IPAM_POOL:
		for (unsigned i = 0; i < st->n_pools; i++)
			if (!strcmp(st->pools[i].name, name))
				return true;
		return false;
	case IPAM_BLOCK:
		for (unsigned i = 0; i < st->n_blocks; i++) {
			ipam_block_name(&st->blocks[i].cidr, s, sizeof(s));
			if (!strcmp(s, name))
				return true;
		}
		return false;
	case IPAM_HANDLE:
		return ipam_handle_find(st, name) != NULL;
	case IPAM_CONFIG:
		return st->has_config && !strcmp(name, IPAM_CONFIG_NAME);
	}
	return false;
}

int ipam_state_diff(const struct ipam_state *st, struct ipam_change **out, unsigned *n,
		    struct err *e)
{
	unsigned cap = 0;
	int r = 0;
	*out = NULL;
	*n = 0;
	/* Order for a datastore without multi-object transactions (kubernetes): blocks
	 * first (an allocation there is the truth), then handles, pools, the config,
	 * deletions. */
	for (unsigned i = 0; i < st->n_blocks && !r; i++) {
		char name[64];
		ipam_block_name(&st->blocks[i].cidr, name, sizeof(name));
		/* the name must outlive this call: use the loaded copy if any, else intern */
		const char *nm = NULL;
		for (unsigned k = 0; k < st->n_loaded && !nm; k++)
			if (st->loaded[k].kind == IPAM_BLOCK && !strcmp(st->loaded[k].name, name))
				nm = st->loaded[k].name;
		r = diff_rec(st, out, n, &cap, IPAM_BLOCK, nm ? nm : name, e);
		if (!r && !nm && *n && (*out)[*n - 1].name == name) {
			/* new block: keep its name in the change itself */
			char *json = (*out)[*n - 1].json;
			size_t len = (*out)[*n - 1].len;
			char *both = realloc(json, len + 1 + strlen(name) + 1);
			if (!both) {
				r = err_set(e, ENOMEM, "block %s", name);
				break;
			}
			both[len] = 0;
			strcpy(both + len + 1, name);
			(*out)[*n - 1].json = both;
			(*out)[*n - 1].name = both + len + 1;
		}
	}
	for (unsigned i = 0; i < st->n_handles && !r; i++)
		r = diff_rec(st, out, n, &cap, IPAM_HANDLE, st->handles[i].id, e);
	for (unsigned i = 0; i < st->n_pools && !r; i++)
		r = diff_rec(st, out, n, &cap, IPAM_POOL, st->pools[i].name, e);
	if (!r && st->has_config)
		r = diff_rec(st, out, n, &cap, IPAM_CONFIG, IPAM_CONFIG_NAME, e);
	for (unsigned i = 0; i < st->n_loaded && !r; i++) {
		const struct ipam_loaded *l = &st->loaded[i];
		if (!rec_present(st, l->kind, l->name) &&
		    diff_one(st, out, n, &cap, l->kind, l->name, NULL, 0))
			r = err_set(e, ENOMEM, "%s %s", ipam_kind_name(l->kind), l->name);
	}
	if (r) {
		ipam_changes_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}
