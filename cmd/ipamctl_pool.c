/* ipamctl pool list | pool add CIDR [--block-size N] | pool delete CIDR. */
#include "cmd/ipamctl.h"

#include "ipam/listing.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pool_arg {
	struct ipam_cidr cidr; /* the pool */
	unsigned block;	       /* block prefix (0 default) */
	bool existed;	       /* add: already there with the same CIDR */
	const char *l2;	       /* add: the L2Network whose subnet holds it, or NULL */
	bool claimed;	       /* add: it became that network's own */
};

static int op_pool_add(struct ipam_state *st, void *arg, struct err *e)
{
	struct pool_arg *pa = arg;
	int rc = ipam_pool_ensure(st, &pa->cidr, pa->block, &pa->existed, e);
	if (rc < 0 || !pa->l2)
		return rc;
	rc = ipam_pool_claim(st, &pa->cidr.a, pa->l2, e);
	pa->claimed = rc == 1;
	return rc < 0 ? rc : 0;
}

/* The L2Network (of l2, n of them) whose subnet holds c, or NULL. */
static const char *l2_of(const struct ipam_l2net *l2, unsigned n, const struct ipam_cidr *c)
{
	for (unsigned i = 0; i < n; i++)
		if ((l2[i].has_v4 && l2[i].v4.prefix <= c->prefix &&
		     ipam_cidr_contains(&l2[i].v4, &c->a)) ||
		    (l2[i].has_v6 && l2[i].v6.prefix <= c->prefix &&
		     ipam_cidr_contains(&l2[i].v6, &c->a)))
			return l2[i].name;
	return NULL;
}

static int op_pool_delete(struct ipam_state *st, void *arg, struct err *e)
{
	struct pool_arg *pa = arg;
	return ipam_pool_delete(st, &pa->cidr, e);
}

static int pool_list(struct ctl *x, const struct ipam_state *st)
{
	unsigned *idx = ipam_pools_sorted(st);
	if (!idx)
		return 1;
	char cs[64], bs[8], nr[16];
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPPoolList");
		json_w_key(&w, "items");
		json_w_arr_begin(&w);
		for (unsigned k = 0; k < st->n_pools; k++) {
			const struct ipam_pool *p = &st->pools[idx[k]];
			json_w_obj_begin(&w);
			ctl_w_kstr(&w, "name", p->name);
			ctl_w_kstr(&w, "cidr", ipam_cidr_str(&p->cidr, cs, sizeof(cs)));
			ctl_w_kuint(&w, "blockSize", p->block_prefix);
			if (p->network[0])
				ctl_w_kstr(&w, "network", p->network);
			json_w_key(&w, "reserved");
			json_w_arr_begin(&w);
			for (unsigned i = 0; i < p->n_reserved; i++)
				json_w_str(&w, ipam_addr_str(&p->reserved[i], cs, sizeof(cs)));
			json_w_arr_end(&w);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		free(idx);
		return ctl_emit_json(&w);
	}
	struct ctl_tbl t = {.ncols = 4};
	ctl_tbl_row(&t, "NAME", "CIDR", "BLOCK SIZE", "RESERVED");
	for (unsigned k = 0; k < st->n_pools; k++) {
		const struct ipam_pool *p = &st->pools[idx[k]];
		snprintf(bs, sizeof(bs), "/%u", p->block_prefix);
		snprintf(nr, sizeof(nr), "%u", p->n_reserved);
		ctl_tbl_row(&t, p->name, ipam_cidr_str(&p->cidr, cs, sizeof(cs)), bs, nr);
	}
	free(idx);
	if (!st->n_pools) {
		printf("No IP pools.\n");
		ctl_tbl_free(&t);
		return 0;
	}
	ctl_tbl_print(&t);
	return 0;
}

int ctl_pool(struct ctl *x, int argc, char **argv)
{
	if (argc < 1) {
		ctl_errx("pool: want list, add CIDR or delete CIDR");
		return 2;
	}
	const char *sub = argv[0];
	bool list = !strcmp(sub, "list"), add = !strcmp(sub, "add"), del = !strcmp(sub, "delete");
	if (!list && !add && !del) {
		ctl_errx("pool: unknown subcommand '%s' (list, add, delete)", sub);
		return 2;
	}
	if ((list && argc != 1) || (!list && argc != 2)) {
		ctl_errx("pool %s: %s", sub, list ? "takes no argument" : "takes one CIDR");
		return 2;
	}
	if (!add && x->block_size) {
		ctl_errx("pool %s: --block-size is for pool add", sub);
		return 2;
	}
	struct pool_arg pa = {.block = x->block_size};
	struct err e = {0};
	if (!list && ipam_cidr_parse(&pa.cidr, argv[1], &e) < 0) {
		ctl_errx("pool %s: %s", sub, e.msg);
		return 2;
	}
	if (ctl_open_store(x) < 0)
		return 1;
	if (list) {
		struct ipam_state st;
		int rc = ctl_read_state(x, &st) < 0 ? 1 : pool_list(x, &st);
		ipam_state_free(&st);
		return rc;
	}
	struct ipam_l2net *l2 = NULL;
	unsigned n_l2 = 0;
	if (add && ctl_load_l2nets(x, &l2, &n_l2) < 0)
		return 1;
	pa.l2 = add ? l2_of(l2, n_l2, &pa.cidr) : NULL;
	int r = ipam_ds_update(&x->ds, add ? op_pool_add : op_pool_delete, &pa, &e);
	if (!r && pa.claimed && x->out != OUT_JSON)
		printf("pool %s serves only L2Network %s (its subnet holds it; never the routed pod "
		       "network)\n", argv[1], pa.l2);
	free(l2);
	char name[IPAM_NAME_MAX + 1], cs[64];
	ipam_block_name(&pa.cidr, name, sizeof(name));
	ipam_cidr_str(&pa.cidr, cs, sizeof(cs));
	struct ctl_acts a = {0};
	if (r < 0) {
		ctl_errx("pool %s: %s", sub, e.msg);
		return 1;
	}
	if (add)
		ctl_act_add(&a, pa.existed ? "unchanged" : "added", NULL, NULL, "pool %s %s", name, cs);
	else
		ctl_act_add(&a, "deleted", NULL, NULL, "pool %s", cs);
	if (x->out == OUT_JSON)
		r = ctl_print_acts(x, add ? "pool add" : "pool delete", &a);
	else
		printf("%s pool %s\n", a.v[0].verb, cs);
	free(a.v);
	return r ? 1 : 0;
}
