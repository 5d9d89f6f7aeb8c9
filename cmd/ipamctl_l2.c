/* ipamctl and L2 networks: the L2Network objects read from the datastore in use (the
 * file datastore's state_dir/l2networks/NAME.json, the kubernetes datastore's kvnet.io
 * l2networks), `show --network NAME` (the network's pools and every allocation in them) and
 * what check and release ask of them. Read only. */
#include "cmd/ipamctl.h"

#include "ipam/listing.h"
#include "kube/client.h"
#include "l2/netdef.h"
#include "lib/err.h"
#include "lib/file.h"
#include "lib/json.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int defs_add(struct l2_netdef **v, unsigned *n, unsigned *cap, const struct l2_netdef *d)
{
	if (*n == *cap) {
		unsigned nc = *cap ? *cap * 2 : 8;
		struct l2_netdef *nv = realloc(*v, (size_t)nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *d;
	return 0;
}

/* The file datastore's L2Network documents; one that does not parse is reported and
 * skipped. 0 or -1 (reported). */
static int file_defs(struct ctl *x, struct l2_netdef **v, unsigned *n, unsigned *cap)
{
	char dir[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/%s", x->state_dir, L2_DOC_DIR);
	DIR *dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 : (ctl_errx("%s: %s", dir, strerror(errno)), -1);
	struct dirent *de;
	struct l2_netdef d;
	int rc = 0;
	while (!rc && (de = readdir(dp))) {
		size_t len = strlen(de->d_name), tl = 0;
		if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		char path[PATH_MAX + 300];
		char *text = NULL;
		struct err e = {0};
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (file_read(path, L2_DOC_MAX, &text, &tl, &e) < 0 ||
		    l2_netdef_parse_text(text, tl, &d, &e) < 0)
			ctl_errx("warning: L2Network %s: %s", path, e.msg);
		else if (defs_add(v, n, cap, &d) < 0)
			rc = (ctl_errx("L2Networks: out of memory"), -1);
		free(text);
	}
	closedir(dp);
	return rc;
}

static int kube_defs(struct ctl *x, struct l2_netdef **v, unsigned *n, unsigned *cap)
{
	struct kube_resp resp;
	memset(&resp, 0, sizeof(resp));
	struct json_doc doc;
	struct json_tok *tok = NULL;
	struct err e = {0};
	int rc = kube_list(x->c, &kube_res_l2networks, NULL, NULL, &resp, &e);
	if (rc == -ENOENT) { /* the CRD is not installed: no L2Network */
		kube_resp_free(&resp);
		return 0;
	}
	if (rc < 0 || json_parse_alloc(&doc, resp.body, resp.len, &tok, &e) < 0) {
		ctl_errx("kubernetes: LIST l2networks: %s", e.msg);
		kube_resp_free(&resp);
		return -1;
	}
	int items = json_get(&doc, 0, "items");
	struct json_iter it;
	int k, val;
	struct l2_netdef d;
	rc = 0;
	json_iter_init(&it, &doc, items);
	while (!rc && items >= 0 && json_iter_next(&it, &k, &val)) {
		if (l2_netdef_parse(&doc, val, &d, &e) < 0)
			ctl_errx("warning: %s", e.msg);
		else if (defs_add(v, n, cap, &d) < 0)
			rc = (ctl_errx("L2Networks: out of memory"), -1);
	}
	free(tok);
	kube_resp_free(&resp);
	return rc;
}

/* Every L2Network of the datastore in use (opened) into *v (free it), *n of them. 0 or -1
 * (reported). */
static int load_defs(struct ctl *x, struct l2_netdef **v, unsigned *n)
{
	unsigned cap = 0;
	*v = NULL;
	*n = 0;
	int rc = x->kube ? kube_defs(x, v, n, &cap) : file_defs(x, v, n, &cap);
	if (rc < 0) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

static void subnet_to(const struct l2_subnet *s, bool *has, struct ipam_cidr *c,
		      struct ip_addr *gw)
{
	*has = s->set;
	if (s->set) {
		c->a = s->net;
		c->prefix = s->prefix;
		*gw = s->gw;
	}
}

int ctl_load_l2nets(struct ctl *x, struct ipam_l2net **out, unsigned *n)
{
	struct l2_netdef *d;
	*out = NULL;
	*n = 0;
	if (load_defs(x, &d, n) < 0)
		return -1;
	if (!*n) {
		free(d);
		return 0;
	}
	*out = calloc(*n, sizeof(**out));
	if (!*out) {
		free(d);
		*n = 0;
		ctl_errx("L2Networks: out of memory");
		return -1;
	}
	for (unsigned i = 0; i < *n; i++) {
		struct ipam_l2net *l = &(*out)[i];
		snprintf(l->name, sizeof(l->name), "%s", d[i].name);
		subnet_to(&d[i].v4, &l->has_v4, &l->v4, &l->gw4);
		subnet_to(&d[i].v6, &l->has_v6, &l->v6, &l->gw6);
	}
	free(d);
	return 0;
}

bool ctl_l2_holds(const struct ipam_state *st, const char *net, const struct ip_addr *a)
{
	const struct ipam_pool *p = ipam_pool_of(st, a);
	return p && !strcmp(p->network, net);
}

/* ---- show --network -------------------------------------------------------------------- */

static void subnet_text(char *buf, size_t cap, const struct l2_subnet *s, const char *fam)
{
	char n[64], g[64];
	struct ipam_cidr c = {.a = s->net, .prefix = s->prefix};
	if (!s->set) {
		snprintf(buf, cap, "%s -", fam);
		return;
	}
	ipam_cidr_str(&c, n, sizeof(n));
	if (s->gw.family)
		snprintf(buf, cap, "%s %s gateway %s", fam, n, ipam_addr_str(&s->gw, g, sizeof(g)));
	else
		snprintf(buf, cap, "%s %s (no gateway)", fam, n);
}

static void w_subnet(struct json_w *w, const char *k, const struct l2_subnet *s)
{
	char n[64], g[64];
	struct ipam_cidr c = {.a = s->net, .prefix = s->prefix};
	json_w_key(w, k);
	if (!s->set) {
		json_w_null(w);
		return;
	}
	json_w_obj_begin(w);
	ctl_w_kstr(w, "subnet", ipam_cidr_str(&c, n, sizeof(n)));
	json_w_key(w, "gateway");
	if (s->gw.family)
		json_w_str(w, ipam_addr_str(&s->gw, g, sizeof(g)));
	else
		json_w_null(w);
	json_w_obj_end(w);
}

static void owner_text(char *buf, size_t cap, const struct ipam_owner *o)
{
	if (!o->uid[0])
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%s/%s%s%s", o->ns, o->name, o->node[0] ? "@" : "", o->node);
}

/* Who holds allocation a, for a person: NS/VM for a VM, NS/POD for a pod, else the
 * handle. */
static void holder_text(char *buf, size_t cap, const struct ipam_attrs *a)
{
	if (a->vmi_name[0])
		snprintf(buf, cap, "%s/%s", a->ns, a->vmi_name);
	else if (a->pod[0])
		snprintf(buf, cap, "%s/%s (pod)", a->ns, a->pod);
	else
		snprintf(buf, cap, "%s", a->handle);
}

static void pools_json(struct json_w *w, const struct ipam_state *st, const unsigned *idx,
		       const char *net)
{
	char cs[64];
	json_w_key(w, "pools");
	json_w_arr_begin(w);
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		if (strcmp(p->network, net))
			continue;
		struct ipam_pool_usage u;
		ipam_pool_usage(st, idx[k], &u);
		json_w_obj_begin(w);
		ctl_w_kstr(w, "name", p->name);
		ctl_w_kstr(w, "cidr", ipam_cidr_str(&p->cidr, cs, sizeof(cs)));
		ctl_w_k128(w, "total", u.total);
		ctl_w_k128(w, "inUse", u.used);
		ctl_w_k128(w, "free", u.total - u.used);
		ctl_w_kuint(w, "reservedAddresses", u.n_reserved_addrs);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
}

static void pools_table(const struct ipam_state *st, const unsigned *idx, const char *net)
{
	char cs[64], tot[48], used[48], fr[48];
	struct ctl_tbl t = {.ncols = 5};
	ctl_tbl_row(&t, "POOL", "CIDR", "TOTAL", "IN USE", "FREE");
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		if (strcmp(p->network, net))
			continue;
		struct ipam_pool_usage u;
		ipam_pool_usage(st, idx[k], &u);
		ctl_tbl_row(&t, p->name, ipam_cidr_str(&p->cidr, cs, sizeof(cs)),
			ipam_u128_str(u.total, tot, sizeof(tot)), ipam_u128_str(u.used, used, sizeof(used)),
			ipam_u128_str(u.total - u.used, fr, sizeof(fr)));
	}
	ctl_tbl_print(&t);
}

static void w_owner(struct json_w *w, const char *k, const struct ipam_owner *o)
{
	json_w_key(w, k);
	if (!o->uid[0]) {
		json_w_null(w);
		return;
	}
	json_w_obj_begin(w);
	ctl_w_kstr(w, "namespace", o->ns);
	ctl_w_kstr(w, "name", o->name);
	ctl_w_kstr(w, "uid", o->uid);
	ctl_w_kstr(w, "node", o->node);
	json_w_obj_end(w);
}

static void alloc_json(struct json_w *w, const struct ipam_attrs *a, const char *as,
		       enum ipam_owner_state os, const char *why)
{
	json_w_obj_begin(w);
	ctl_w_kstr(w, "ip", as);
	json_w_key(w, "mac");
	if (a->mac[0])
		json_w_str(w, a->mac);
	else
		json_w_null(w);
	ctl_w_kstr(w, "namespace", a->ns);
	json_w_key(w, "vm");
	if (a->vmi_name[0])
		json_w_str(w, a->vmi_name);
	else
		json_w_null(w);
	json_w_key(w, "pod");
	if (a->pod[0])
		json_w_str(w, a->pod);
	else
		json_w_null(w);
	ctl_w_kstr(w, "handle", a->handle);
	ctl_w_kstr(w, "node", ipam_alloc_node(a));
	ctl_w_kstr(w, "state", os == IPAM_OWNER_RESERVED ? "reserved" : "in use");
	w_owner(w, "activeOwner", &a->active);
	w_owner(w, "alternateOwner", &a->alternate);
	ctl_w_kstr(w, "owner", ipam_owner_state_name(os));
	ctl_w_kstr(w, "ownerDetail", why);
	json_w_obj_end(w);
}

/* The allocations of net's pools, by address, into w (JSON) or t; their count. */
static unsigned allocs(struct ctl *x, const struct ipam_state *st, const char *net,
		       const struct ipam_block **bs, struct json_w *w, struct ctl_tbl *t)
{
	unsigned found = 0;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		const struct ipam_pool *p = ipam_pool_of(st, &b->cidr.a);
		if (!p || strcmp(p->network, net))
			continue;
		for (unsigned k = 0; k < b->size; k++) {
			const struct ipam_attrs *a = b->slot[k];
			if (!a)
				continue;
			found++;
			char as[64], who[600], o1[600], o2[600], why[256];
			struct ip_addr ad = ipam_block_addr(b, k);
			ipam_addr_str(&ad, as, sizeof(as));
			enum ipam_owner_state os = ipam_owner_judge(&x->live, a, why, sizeof(why));
			if (w) {
				alloc_json(w, a, as, os, why);
				continue;
			}
			holder_text(who, sizeof(who), a);
			owner_text(o1, sizeof(o1), &a->active);
			owner_text(o2, sizeof(o2), &a->alternate);
			ctl_tbl_row(t, as, a->mac, who, ipam_alloc_node(a), ipam_owner_state_name(os),
				a->handle, o1, o2);
		}
	}
	return found;
}

int ctl_show_network(struct ctl *x, const struct ipam_state *st)
{
	const char *net = x->network;
	struct l2_netdef *defs;
	unsigned nd, npools = 0;
	if (load_defs(x, &defs, &nd) < 0)
		return 1;
	const struct l2_netdef *d = NULL;
	for (unsigned i = 0; i < nd && !d; i++)
		if (!strcmp(defs[i].name, net))
			d = &defs[i];
	for (unsigned i = 0; i < st->n_pools; i++)
		npools += !strcmp(st->pools[i].network, net);
	int rc = 1;
	unsigned *idx = ipam_pools_sorted(st);
	const struct ipam_block **bs = ipam_blocks_sorted(st);
	if (!idx || !bs || ctl_load_live(x) < 0)
		goto out;
	bool known = d || npools;
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPAML2NetworkUsage");
		ctl_w_kstr(&w, "network", net);
		json_w_key(&w, "l2Network");
		if (d) {
			json_w_obj_begin(&w);
			ctl_w_kuint(&w, "vlan", d->vid);
			w_subnet(&w, "ipv4", &d->v4);
			w_subnet(&w, "ipv6", &d->v6);
			json_w_obj_end(&w);
		} else {
			json_w_null(&w);
		}
		pools_json(&w, st, idx, net);
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
		allocs(x, st, net, bs, &w, NULL);
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		rc = ctl_emit_json(&w);
		if (!rc && !known)
			rc = 1;
		goto out;
	}
	if (!known) {
		printf("L2Network %s is not known: no L2Network object and no pool serves it\n", net);
		goto out;
	}
	char s4[200], s6[200], vl[16];
	if (d) {
		subnet_text(s4, sizeof(s4), &d->v4, "IPv4");
		subnet_text(s6, sizeof(s6), &d->v6, "IPv6");
		if (d->vid)
			snprintf(vl, sizeof(vl), "VLAN %u", d->vid);
		else
			snprintf(vl, sizeof(vl), "untagged");
		printf("L2Network %s: %s, %s, %s\n", net, vl, s4, s6);
	} else {
		printf("L2Network %s: no L2Network object (only pools name it)\n", net);
	}
	if (!npools) {
		printf("No pool serves it yet (the first VM on it makes its pools).\n");
		rc = 0;
		goto out;
	}
	pools_table(st, idx, net);
	bool wide = x->out == OUT_WIDE;
	struct ctl_tbl t = {.ncols = wide ? 8 : 5};
	ctl_tbl_row(&t, "IP", "MAC", "VM", "NODE", "OWNER", "HANDLE", "ACTIVE", "ALTERNATE");
	printf("\n");
	if (!allocs(x, st, net, bs, NULL, &t)) {
		printf("No address allocated.\n");
		ctl_tbl_free(&t);
	} else {
		ctl_tbl_print(&t);
	}
	rc = 0;
out:
	free(idx);
	free(bs);
	free(defs);
	return rc;
}
