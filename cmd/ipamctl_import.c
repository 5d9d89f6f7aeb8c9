/* ipamctl import FILE.csv [--partial]: register VM addresses from an inventory (see
 * ipam/inventory.h), all or nothing unless --partial; the machinery reserve shares. */
#include "cmd/ipamctl.h"

#include "lib/err.h"
#include "lib/file.h"
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inv_arg {
	struct ipam_inv *inv;	/* rows (validated again on every try) */
	bool partial;		/* apply the good rows even if some are bad */
	unsigned applied;	/* rows that changed the state */
	unsigned bad;		/* rows found bad on the fresh state */
	const struct ipam_l2net *l2; /* the L2Networks that exist */
	unsigned n_l2;		/* how many */
	unsigned claimed;	/* pools that became an L2Network's own */
};

/* True when net names one of the L2Networks l2 (n of them). */
static bool is_l2net(const struct ipam_l2net *l2, unsigned n, const char *net)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(l2[i].name, net))
			return true;
	return false;
}

/* The pool of every good row registered on an L2Network serves that network alone from
 * now on (ipam_pool_claim), so the routed allocator never hands out its addresses, also
 * before the network's first CNI ADD. */
static int claim_pools(struct ipam_state *st, struct inv_arg *ia, struct err *e)
{
	ia->claimed = 0;
	for (unsigned i = 0; i < ia->inv->n; i++) {
		const struct ipam_inv_row *r = &ia->inv->rows[i];
		if (r->bad || !is_l2net(ia->l2, ia->n_l2, r->network))
			continue;
		int rc = ipam_pool_claim(st, &r->ip, r->network, e);
		if (rc < 0 && rc != -ENOENT)
			return err_prefix(e, "line %u", r->line), rc;
		ia->claimed += rc == 1;
	}
	return 0;
}

static int op_inventory(struct ipam_state *st, void *arg, struct err *e)
{
	struct inv_arg *ia = arg;
	/* validate on this (fresh) state: someone may have taken an address meanwhile */
	for (unsigned i = 0; i < ia->inv->n; i++)
		ia->inv->rows[i].in_place = false;
	unsigned before = ia->inv->n_errs_total;
	if (ipam_inv_validate(ia->inv, st, e) < 0)
		return -ENOMEM;
	ia->bad = 0;
	for (unsigned i = 0; i < ia->inv->n; i++)
		ia->bad += ia->inv->rows[i].bad;
	if (ia->inv->n_errs_total != before && !ia->partial)
		return err_setx(e, EEXIST, "the state changed while importing; nothing applied");
	int rc = ipam_inv_apply(st, ia->inv, &ia->applied, e);
	return rc < 0 ? rc : claim_pools(st, ia, e);
}

struct undo_arg {
	const struct ipam_inv *inv; /* rows applied */
	bool raced_only;	    /* take back only the raced rows (--partial) */
	unsigned undone;	    /* addresses released */
};

static int op_undo(struct ipam_state *st, void *arg, struct err *e)
{
	struct undo_arg *ua = arg;
	return ipam_inv_undo(st, ua->inv, ua->raced_only, &ua->undone, e);
}

/* After the write, read the state again: a writer racing us may have given one of our MACs
 * to another VM of the network (ipam_inv_mac_recheck). Then take back what we applied (with
 * --partial only those rows). Returns the number of raced rows, or -1 (reported). */
static int mac_recheck(struct ctl *x, const char *cmd, struct ipam_inv *v, unsigned *undone)
{
	bool any = false;
	for (unsigned i = 0; i < v->n; i++)
		any |= v->rows[i].applied && v->rows[i].mac[0];
	if (!any)
		return 0;
	struct ipam_state st;
	struct err e = {0};
	if (ctl_read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return -1;
	}
	int n = ipam_inv_mac_recheck(v, &st, &e);
	ipam_state_free(&st);
	if (n < 0) {
		ctl_errx("%s: %s", cmd, e.msg);
		return -1;
	}
	if (n == 0)
		return 0;
	struct undo_arg ua = {.inv = v, .raced_only = x->partial};
	if (ipam_ds_update(&x->ds, op_undo, &ua, &e) < 0) {
		ctl_errx("%s: taking back rows whose MAC another VM got at the same time: %s", cmd,
			 e.msg);
		return -1;
	}
	*undone = ua.undone;
	return n;
}

static void print_inv_errs(const char *what, const struct ipam_inv *v)
{
	bool one = !strcmp(what, "reserve");
	for (unsigned i = 0; i < v->n_errs; i++)
		if (one)
			ctl_errx("reserve: %s", v->errs[i].msg);
		else if (v->errs[i].line)
			fprintf(stderr, "%s:%u: %s\n", what, v->errs[i].line, v->errs[i].msg);
		else
			fprintf(stderr, "%s: %s\n", what, v->errs[i].msg);
	if (v->n_errs_total > v->n_errs)
		fprintf(stderr, "%s: ... and %u more problems\n", what,
			v->n_errs_total - v->n_errs);
}

static int inv_json(const char *cmd, const struct ipam_inv *v, unsigned applied,
		    unsigned in_place, bool done)
{
	struct json_w w;
	ctl_json_head(&w, "IPAMCtlResult");
	ctl_w_kstr(&w, "command", cmd);
	ctl_w_kuint(&w, "rows", v->n_seen);
	ctl_w_kuint(&w, "applied", applied);
	ctl_w_kuint(&w, "alreadyInPlace", in_place);
	json_w_key(&w, "changed");
	json_w_bool(&w, done && applied > 0);
	json_w_key(&w, "problems");
	json_w_arr_begin(&w);
	for (unsigned i = 0; i < v->n_errs; i++) {
		json_w_obj_begin(&w);
		ctl_w_kuint(&w, "line", v->errs[i].line);
		ctl_w_kstr(&w, "message", v->errs[i].msg);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	return ctl_emit_json(&w);
}

static int inventory_run(struct ctl *x, const char *cmd, const char *what, struct ipam_inv *v,
			 const struct ipam_l2net *l2, unsigned n_l2);

static void claimed_say(const struct inv_arg *ia)
{
	if (ia->claimed)
		printf("%u pool%s now serve%s only the L2Network%s of %s rows (never the routed "
		       "pod network)\n", ia->claimed, ia->claimed == 1 ? "" : "s",
		       ia->claimed == 1 ? "s" : "", ia->claimed == 1 ? "" : "s",
		       ia->claimed == 1 ? "its" : "their");
}

/* Validate v against the current state, then apply it in one update. */
int ctl_inventory_run(struct ctl *x, const char *cmd, const char *what, struct ipam_inv *v)
{
	if (ctl_open_store(x) < 0)
		return 1;
	struct ipam_l2net *l2 = NULL;
	unsigned n_l2 = 0;
	if (ctl_load_l2nets(x, &l2, &n_l2) < 0)
		return 1;
	int rc = inventory_run(x, cmd, what, v, l2, n_l2);
	free(l2);
	return rc;
}

static int inventory_run(struct ctl *x, const char *cmd, const char *what, struct ipam_inv *v,
			 const struct ipam_l2net *l2, unsigned n_l2)
{
	struct err e = {0};
	struct ipam_state st;
	if (ctl_read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	int r = ipam_inv_validate(v, &st, &e);
	ipam_state_free(&st);
	if (r < 0) {
		ctl_errx("%s: %s", cmd, e.msg);
		return 1;
	}
	unsigned bad = 0, in_place = 0;
	for (unsigned i = 0; i < v->n; i++) {
		bad += v->rows[i].bad;
		in_place += v->rows[i].in_place;
	}
	bool problems = v->n_errs_total > 0;
	if (problems && !x->partial) {
		if (x->out == OUT_JSON)
			inv_json(cmd, v, 0, in_place, false);
		print_inv_errs(what, v);
		if (strcmp(cmd, "reserve"))
			ctl_errx("%s: %u problem%s found; nothing applied", cmd, v->n_errs_total,
			      v->n_errs_total == 1 ? "" : "s");
		return 1;
	}
	struct inv_arg ia = {.inv = v, .partial = x->partial, .l2 = l2, .n_l2 = n_l2};
	r = ipam_ds_update(&x->ds, op_inventory, &ia, &e);
	if (r < 0) {
		print_inv_errs(what, v);
		ctl_errx("%s: %s", cmd, e.msg);
		return 1;
	}
	in_place = 0;
	for (unsigned i = 0; i < v->n; i++)
		in_place += v->rows[i].in_place;
	unsigned undone = 0;
	int raced = mac_recheck(x, cmd, v, &undone);
	if (raced < 0)
		return 1;
	if (raced > 0) {
		if (x->out == OUT_JSON)
			inv_json(cmd, v, ia.applied - undone, in_place, true);
		print_inv_errs(what, v);
		if (strcmp(cmd, "reserve"))
			ctl_errx("%s: %d row%s gave a MAC to a VM while another VM got it; %s", cmd,
				 raced, raced == 1 ? "" : "s",
				 x->partial ? "those rows taken back" : "nothing kept");
		return 1;
	}
	if (x->out == OUT_JSON) {
		inv_json(cmd, v, ia.applied, in_place, true);
		print_inv_errs(what, v);
		return v->n_errs_total ? 1 : 0;
	}
	if (!strcmp(cmd, "reserve") && v->n == 1) {
		const struct ipam_inv_row *row = &v->rows[0];
		char as[64];
		ipam_addr_str(&row->ip, as, sizeof(as));
		printf("%s %s for VM %s/%s (handle %s%s%s)\n",
		       ia.applied ? "reserved" : "already reserved:", as, row->ns, row->vm,
		       row->handle, row->mac[0] ? ", mac " : "", row->mac);
		claimed_say(&ia);
		return 0;
	}
	print_inv_errs(what, v);
	bad = 0;
	for (unsigned i = 0; i < v->n; i++)
		bad += v->rows[i].bad;
	printf("imported %u row%s: %u reserved, %u already in place, %u with problems (not "
	       "applied)\n", v->n_seen, v->n_seen == 1 ? "" : "s", ia.applied, in_place,
	       v->n_seen - v->n + bad);
	claimed_say(&ia);
	return v->n_errs_total ? 1 : 0;
}

int ctl_import(struct ctl *x, int argc, char **argv)
{
	if (argc != 1) {
		ctl_errx("import: want one FILE.csv");
		return 2;
	}
	const char *path = argv[0];
	char *text = NULL;
	size_t len = 0;
	struct err e = {0};
	if (file_read(path, CTL_FILE_MAX, &text, &len, &e) < 0) {
		ctl_errx("import: %s", e.msg);
		return 1;
	}
	struct ipam_inv v;
	int rc = 1;
	if (ipam_inv_parse(&v, text, len, x->network, &e) < 0) {
		ctl_errx("import: %s: %s", path, e.msg);
		goto out;
	}
	rc = ctl_inventory_run(x, "import", path, &v);
out:
	ipam_inv_free(&v);
	free(text);
	return rc;
}
