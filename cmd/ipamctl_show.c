/* ipamctl show [--blocks | --ip IP | --vm NS/NAME | --network NET | --borrowed |
 * --configuration]: pool usage (default), blocks, one address, one VM's addresses, one L2
 * network (ipamctl_l2.c), borrowed addresses, the IPAMConfig record. Read only. */
#include "cmd/ipamctl.h"

#include "ipam/listing.h"
#include "lib/err.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void pct(char *buf, size_t cap, unsigned __int128 part, unsigned __int128 whole)
{
	char n[48];
	snprintf(buf, cap, "%s (%u%%)", ipam_u128_str(part, n, sizeof(n)), ipam_percent(part, whole));
}

static int show_pools(struct ctl *x, const struct ipam_state *st)
{
	unsigned *idx = ipam_pools_sorted(st);
	if (!idx)
		return 1;
	char cs[64], tot[48], used[64], fr[64], blk[8], nb[16], nbr[16], nres[16];
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPPoolUsageList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < st->n_pools; k++) {
			const struct ipam_pool *p = &st->pools[idx[k]];
			struct ipam_pool_usage u;
			ipam_pool_usage(st, idx[k], &u);
			json_w_obj_begin(&w);
			ctl_w_kstr(&w, "name", p->name);
			ctl_w_kstr(&w, "cidr", ipam_cidr_str(&p->cidr, cs, sizeof(cs)));
			ctl_w_kuint(&w, "blockSize", p->block_prefix);
			ctl_w_k128(&w, "total", u.total);
			ctl_w_k128(&w, "inUse", u.used);
			ctl_w_k128(&w, "free", u.total - u.used);
			ctl_w_kuint(&w, "inUsePercent", ipam_percent(u.used, u.total));
			ctl_w_kuint(&w, "blocks", u.blocks);
			ctl_w_kuint(&w, "borrowed", u.borrowed);
			ctl_w_kuint(&w, "reservedAddresses", u.n_reserved_addrs);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		free(idx);
		return ctl_emit_json(&w);
	}
	bool wide = x->out == OUT_WIDE;
	struct ctl_tbl t = {.ncols = wide ? 9 : 5};
	if (wide)
		ctl_tbl_row(&t, "POOL", "CIDR", "TOTAL", "IN USE", "FREE", "BLOCK SIZE", "BLOCKS",
			"BORROWED", "RESERVED");
	else
		ctl_tbl_row(&t, "POOL", "CIDR", "TOTAL", "IN USE", "FREE");
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		struct ipam_pool_usage u;
		ipam_pool_usage(st, idx[k], &u);
		pct(used, sizeof(used), u.used, u.total);
		pct(fr, sizeof(fr), u.total - u.used, u.total);
		ipam_u128_str(u.total, tot, sizeof(tot));
		ipam_cidr_str(&p->cidr, cs, sizeof(cs));
		snprintf(blk, sizeof(blk), "/%u", p->block_prefix);
		snprintf(nb, sizeof(nb), "%u", u.blocks);
		snprintf(nbr, sizeof(nbr), "%u", u.borrowed);
		snprintf(nres, sizeof(nres), "%u", u.n_reserved_addrs);
		ctl_tbl_row(&t, p->name, cs, tot, used, fr, blk, nb, nbr, nres);
	}
	if (!st->n_pools) {
		printf("No IP pools.\n");
		ctl_tbl_free(&t);
	} else {
		ctl_tbl_print(&t);
	}
	free(idx);
	return 0;
}

static int show_blocks(struct ctl *x, const struct ipam_state *st)
{
	const struct ipam_block **bs = ipam_blocks_sorted(st);
	if (!bs)
		return 1;
	char cs[64], used[64], fr[32], borrowed[16];
	struct json_w w;
	struct ctl_tbl t = {.ncols = x->out == OUT_WIDE ? 6 : 5};
	if (x->out == OUT_JSON) {
		ctl_json_head(&w, "IPAMBlockUsageList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else if (x->out == OUT_WIDE) {
		ctl_tbl_row(&t, "BLOCK", "POOL", "AFFINITY", "IN USE", "FREE", "BORROWED");
	} else {
		ctl_tbl_row(&t, "BLOCK", "POOL", "AFFINITY", "IN USE", "FREE");
	}
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		const struct ipam_pool *p = ipam_pool_of(st, &b->cidr.a);
		struct ipam_block_usage u;
		ipam_block_usage(st, b, &u);
		/* free = allocatable: size minus allocations minus pool-reserved addresses */
		unsigned n = u.in_use, nb = u.borrowed, cap = u.capacity;
		ipam_cidr_str(&b->cidr, cs, sizeof(cs));
		if (x->out == OUT_JSON) {
			json_w_obj_begin(&w);
			ctl_w_kstr(&w, "cidr", cs);
			ctl_w_kstr(&w, "pool", p ? p->name : "");
			json_w_key(&w, "affinity");
			if (b->affinity[0])
				json_w_str(&w, b->affinity);
			else
				json_w_null(&w);
			ctl_w_kuint(&w, "size", b->size);
			ctl_w_kuint(&w, "inUse", n);
			ctl_w_kuint(&w, "free", cap - n);
			ctl_w_kuint(&w, "storedCount", b->used);
			ctl_w_kuint(&w, "borrowed", nb);
			json_w_obj_end(&w);
			continue;
		}
		pct(used, sizeof(used), n, cap);
		snprintf(fr, sizeof(fr), "%u", cap - n);
		snprintf(borrowed, sizeof(borrowed), "%u", nb);
		ctl_tbl_row(&t, cs, p ? p->name : "(no pool)", b->affinity, used, fr, borrowed);
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return ctl_emit_json(&w);
	}
	if (!st->n_blocks) {
		printf("No blocks claimed.\n");
		ctl_tbl_free(&t);
	} else {
		ctl_tbl_print(&t);
	}
	return 0;
}

static void owner_text(char *buf, size_t cap, const struct ipam_owner *o)
{
	if (!o->uid[0])
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%s/%s%s%s", o->ns, o->name, o->node[0] ? "@" : "",
			 o->node);
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

static void w_attrs(struct json_w *w, const struct ipam_attrs *a)
{
	json_w_key(w, "attributes");
	json_w_obj_begin(w);
	const struct {
		const char *k, *v;
	} f[] = {{"pod", a->pod},	     {"namespace", a->ns},	  {"node", a->node},
		 {"ifname", a->ifname},	     {"containerID", a->container_id},
		 {"vmiName", a->vmi_name},   {"vmiUID", a->vmi_uid},	  {"vmUID", a->vm_uid},
		 {"vmimUID", a->vmim_uid},   {"mac", a->mac}};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v[0])
			ctl_w_kstr(w, f[i].k, f[i].v);
	json_w_obj_end(w);
}

static int show_ip(struct ctl *x, const struct ipam_state *st)
{
	struct ip_addr a;
	struct err e = {0};
	if (ipam_addr_parse(&a, x->ip, &e) < 0) {
		ctl_errx("show --ip: %s", e.msg);
		return 2;
	}
	char as[64], cs[64], why[256], o1[600], o2[600];
	ipam_addr_str(&a, as, sizeof(as));
	const struct ipam_pool *p = ipam_pool_of(st, &a);
	const struct ipam_block *b = ipam_block_of(st, &a);
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	enum ipam_owner_state os = IPAM_OWNER_UNKNOWN;
	if (at) {
		if (ctl_load_live(x) < 0)
			return 1;
		os = ipam_owner_judge(&x->live, at, why, sizeof(why));
	}
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPAMAddress");
		ctl_w_kstr(&w, "ip", as);
		json_w_key(&w, "inUse");
		json_w_bool(&w, at != NULL);
		json_w_key(&w, "pool");
		if (p)
			json_w_str(&w, p->name);
		else
			json_w_null(&w);
		json_w_key(&w, "reservedByPool");
		json_w_bool(&w, p && ipam_pool_reserves(p, &a));
		json_w_key(&w, "block");
		if (b)
			json_w_str(&w, ipam_cidr_str(&b->cidr, cs, sizeof(cs)));
		else
			json_w_null(&w);
		json_w_key(&w, "blockAffinity");
		if (b && b->affinity[0])
			json_w_str(&w, b->affinity);
		else
			json_w_null(&w);
		if (at) {
			ctl_w_kstr(&w, "handle", at->handle);
			w_owner(&w, "activeOwner", &at->active);
			w_owner(&w, "alternateOwner", &at->alternate);
			w_attrs(&w, at);
			ctl_w_kstr(&w, "owner", ipam_owner_state_name(os));
			ctl_w_kstr(&w, "ownerDetail", why);
		}
		json_w_obj_end(&w);
		int rc = ctl_emit_json(&w);
		return rc ? rc : (p ? 0 : 1);
	}
	if (!p) {
		printf("IP %s is not in any pool\n", as);
		return 1;
	}
	if (!at) {
		printf("IP %s is not in use (pool %s%s)\n", as, p->name,
		       ipam_pool_reserves(p, &a) ? ", reserved by the pool: never handed out" : "");
		return 0;
	}
	printf("IP %s is in use\n", as);
	printf("  Pool:       %s\n", p->name);
	printf("  Block:      %s (affinity %s)\n", ipam_cidr_str(&b->cidr, cs, sizeof(cs)),
	       b->affinity[0] ? b->affinity : "none");
	printf("  Handle:     %s\n", at->handle);
	if (at->vmi_name[0])
		printf("  VM:         %s/%s%s%s\n", at->ns, at->vmi_name, at->mac[0] ? " mac " : "",
		       at->mac);
	owner_text(o1, sizeof(o1), &at->active);
	owner_text(o2, sizeof(o2), &at->alternate);
	printf("  Active:     %s%s%s%s\n", o1, at->active.uid[0] ? " (uid " : "",
	       at->active.uid, at->active.uid[0] ? ")" : "");
	printf("  Alternate:  %s%s%s%s\n", o2, at->alternate.uid[0] ? " (uid " : "",
	       at->alternate.uid, at->alternate.uid[0] ? ")" : "");
	printf("  Attributes:");
	const struct {
		const char *k, *v;
	} f[] = {{"pod", at->pod},	       {"namespace", at->ns},	     {"node", at->node},
		 {"ifname", at->ifname},       {"containerID", at->container_id},
		 {"vmiName", at->vmi_name},    {"vmiUID", at->vmi_uid},	     {"vmUID", at->vm_uid},
		 {"vmimUID", at->vmim_uid},    {"mac", at->mac}};
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v[0])
			printf(" %s=%s", f[i].k, f[i].v);
	printf("\n  Owner:      %s (%s)\n", ipam_owner_state_name(os), why);
	return 0;
}

static int show_vm(struct ctl *x, const struct ipam_state *st)
{
	char ns[IPAM_NS_MAX + 1], name[IPAM_NAME_MAX + 1];
	if (!ctl_slash_split(x->vm, ns, sizeof(ns), name, sizeof(name))) {
		ctl_errx("show --vm: '%s': want NAMESPACE/NAME", x->vm);
		return 2;
	}
	if (ctl_load_live(x) < 0)
		return 1;
	const struct ipam_block **bs = ipam_blocks_sorted(st);
	if (!bs)
		return 1;
	struct json_w w;
	struct ctl_tbl t = {.ncols = x->out == OUT_WIDE ? 7 : 6};
	if (x->out == OUT_JSON) {
		ctl_json_head(&w, "IPAMVMAddressList");
		ctl_w_kstr(&w, "namespace", ns);
		ctl_w_kstr(&w, "vm", name);
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else if (x->out == OUT_WIDE) {
		ctl_tbl_row(&t, "IP", "MAC", "STATE", "ACTIVE", "ALTERNATE", "HANDLE", "OWNER");
	} else {
		ctl_tbl_row(&t, "IP", "MAC", "STATE", "ACTIVE", "ALTERNATE", "HANDLE");
	}
	unsigned found = 0;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		for (unsigned k = 0; k < b->size; k++) {
			const struct ipam_attrs *a = b->slot[k];
			if (!a || strcmp(a->ns, ns) || strcmp(a->vmi_name, name))
				continue;
			found++;
			char as[64], o1[600], o2[600], why[256];
			struct ip_addr ad = ipam_block_addr(b, k);
			ipam_addr_str(&ad, as, sizeof(as));
			enum ipam_owner_state os = ipam_owner_judge(&x->live, a, why, sizeof(why));
			const char *state = os == IPAM_OWNER_RESERVED ? "reserved" : "in use";
			if (x->out == OUT_JSON) {
				json_w_obj_begin(&w);
				ctl_w_kstr(&w, "ip", as);
				ctl_w_kstr(&w, "handle", a->handle);
				ctl_w_kstr(&w, "state", state);
				json_w_key(&w, "mac");
				if (a->mac[0])
					json_w_str(&w, a->mac);
				else
					json_w_null(&w);
				w_owner(&w, "activeOwner", &a->active);
				w_owner(&w, "alternateOwner", &a->alternate);
				ctl_w_kstr(&w, "owner", ipam_owner_state_name(os));
				ctl_w_kstr(&w, "ownerDetail", why);
				json_w_obj_end(&w);
				continue;
			}
			owner_text(o1, sizeof(o1), &a->active);
			owner_text(o2, sizeof(o2), &a->alternate);
			ctl_tbl_row(&t, as, a->mac, state, o1, o2, a->handle,
				ipam_owner_state_name(os));
		}
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		int rc = ctl_emit_json(&w);
		return rc ? rc : (found ? 0 : 1);
	}
	if (!found) {
		printf("VM %s/%s holds no address\n", ns, name);
		ctl_tbl_free(&t);
		return 1;
	}
	ctl_tbl_print(&t);
	return 0;
}

static int show_borrowed(struct ctl *x, const struct ipam_state *st)
{
	const struct ipam_block **bs = ipam_blocks_sorted(st);
	if (!bs)
		return 1;
	struct json_w w;
	struct ctl_tbl t = {.ncols = 5};
	if (x->out == OUT_JSON) {
		ctl_json_head(&w, "IPAMBorrowedList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
	} else {
		ctl_tbl_row(&t, "IP", "BLOCK", "BLOCK NODE", "USED ON", "HANDLE");
	}
	unsigned n = 0;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		for (unsigned k = 0; k < b->size; k++) {
			const struct ipam_attrs *a = b->slot[k];
			if (!a || !ipam_alloc_borrowed(b, a))
				continue;
			const char *node = ipam_alloc_node(a);
			n++;
			char as[64], cs[64];
			struct ip_addr ad = ipam_block_addr(b, k);
			ipam_addr_str(&ad, as, sizeof(as));
			ipam_cidr_str(&b->cidr, cs, sizeof(cs));
			if (x->out == OUT_JSON) {
				json_w_obj_begin(&w);
				ctl_w_kstr(&w, "ip", as);
				ctl_w_kstr(&w, "block", cs);
				ctl_w_kstr(&w, "blockNode", b->affinity);
				ctl_w_kstr(&w, "usedOn", node);
				ctl_w_kstr(&w, "handle", a->handle);
				json_w_obj_end(&w);
				continue;
			}
			ctl_tbl_row(&t, as, cs, b->affinity, node, a->handle);
		}
	}
	free(bs);
	if (x->out == OUT_JSON) {
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return ctl_emit_json(&w);
	}
	if (!n) {
		printf("No borrowed addresses.\n");
		ctl_tbl_free(&t);
		return 0;
	}
	ctl_tbl_print(&t);
	return 0;
}

/* The IPAMConfig record (cluster-wide; absent = Enabled) and the grace period in use. */
static int show_configuration(struct ctl *x)
{
	if (ctl_open_store(x) < 0)
		return 1;
	struct ipam_state st;
	if (ctl_read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	struct ipam_config c;
	bool rec = ipam_config_get(&st, &c);
	ipam_state_free(&st);
	const char *pers = ipam_persist_name(c.vm_persistence);
	char g[16];
	snprintf(g, sizeof(g), "%u", x->vm_grace);
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPAMConfiguration");
		ctl_w_kstr(&w, "kubeVirtVMAddressPersistence", pers);
		json_w_key(&w, "ipamConfigRecord");
		json_w_bool(&w, rec);
		ctl_w_kuint(&w, "vmGraceSeconds", x->vm_grace);
		ctl_w_kstr(&w, "datastore", x->kube ? "kubernetes" : "file");
		json_w_obj_end(&w);
		return ctl_emit_json(&w);
	}
	struct ctl_tbl t = {.ncols = 2};
	ctl_tbl_row(&t, "PROPERTY", "VALUE");
	ctl_tbl_row(&t, "KubeVirtVMAddressPersistence", rec ? pers : "Enabled (default: no IPAMConfig)");
	ctl_tbl_row(&t, "VMGraceSeconds", g);
	ctl_tbl_row(&t, "Datastore", x->kube ? "kubernetes" : "file");
	ctl_tbl_print(&t);
	return 0;
}

int ctl_show(struct ctl *x, int argc, char **argv)
{
	(void)argc; /* no operands (the table says so) */
	(void)argv;
	unsigned modes = (x->blocks ? 1 : 0) + (x->ip ? 1 : 0) + (x->vm ? 1 : 0) +
			 (x->borrowed ? 1 : 0) + (x->configuration ? 1 : 0) +
			 (x->network_set ? 1 : 0);
	if (modes > 1) {
		ctl_errx("show: --blocks, --ip, --vm, --network, --borrowed and --configuration "
		      "exclude each other");
		return 2;
	}
	if (x->configuration)
		return show_configuration(x);
	if (ctl_open_store(x) < 0)
		return 1;
	struct ipam_state st;
	if (ctl_read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	int rc;
	if (x->blocks)
		rc = show_blocks(x, &st);
	else if (x->ip)
		rc = show_ip(x, &st);
	else if (x->vm)
		rc = show_vm(x, &st);
	else if (x->borrowed)
		rc = show_borrowed(x, &st);
	else if (x->network_set)
		rc = ctl_show_network(x, &st);
	else
		rc = show_pools(x, &st);
	ipam_state_free(&st);
	return rc;
}
