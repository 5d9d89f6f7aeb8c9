/* ipamctl reserve --vm NS/NAME --ip IP [--mac MAC]: register one VM address before the
 * VM has a pod (an inventory of one row). */
#include "cmd/ipamctl.h"

#include "lib/err.h"

#include <stdio.h>

int ctl_reserve(struct ctl *x, int argc, char **argv)
{
	(void)argc; /* no operands (the table says so) */
	(void)argv;
	char ns[IPAM_NS_MAX + 1], name[IPAM_NAME_MAX + 1];
	if (!x->vm || !x->ip) {
		ctl_errx("reserve: --vm NAMESPACE/NAME and --ip IP are required");
		return 2;
	}
	if (!ctl_slash_split(x->vm, ns, sizeof(ns), name, sizeof(name))) {
		ctl_errx("reserve: --vm '%s': want NAMESPACE/NAME", x->vm);
		return 2;
	}
	struct ipam_inv v;
	struct err e = {0};
	ipam_inv_init(&v);
	int rc = 1;
	if (ipam_inv_add(&v, 1, ns, name, x->ip, x->mac ? x->mac : "", x->network, &e) < 0) {
		ctl_errx("reserve: %s", e.msg);
		goto out;
	}
	if (v.n_errs_total) {
		for (unsigned i = 0; i < v.n_errs; i++)
			ctl_errx("reserve: %s", v.errs[i].msg);
		rc = 2;
		goto out;
	}
	rc = ctl_inventory_run(x, "reserve", "reserve", &v);
out:
	ipam_inv_free(&v);
	return rc;
}
