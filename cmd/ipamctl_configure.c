/* ipamctl configure --kubevirt-ip-persistence=Enabled|Disabled: the cluster-wide IPAMConfig
 * record. */
#include "cmd/ipamctl.h"

#include "lib/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfg_arg {
	enum ipam_persist want; /* the value asked */
	bool changed;		/* the record changed */
	bool had;		/* a record existed */
	enum ipam_persist was;	/* its (or the default) value before */
};

static int op_configure(struct ipam_state *st, void *arg, struct err *e)
{
	struct cfg_arg *ca = arg;
	struct ipam_config c;
	ca->had = ipam_config_get(st, &c);
	ca->was = c.vm_persistence;
	ca->changed = !ca->had || c.vm_persistence != ca->want;
	if (!ca->changed)
		return 0;
	c.vm_persistence = ca->want;
	return ipam_config_set(st, &c, e);
}

int ctl_configure(struct ctl *x, int argc, char **argv)
{
	(void)argc; /* no operands (the table says so) */
	(void)argv;
	struct cfg_arg ca = {0};
	if (!x->persistence) {
		ctl_errx("configure: --kubevirt-ip-persistence=Enabled|Disabled is required");
		return 2;
	}
	if (!ipam_persist_parse(x->persistence, &ca.want)) {
		ctl_errx("configure: --kubevirt-ip-persistence: '%s' is neither Enabled nor Disabled",
		      x->persistence);
		return 2;
	}
	if (ctl_open_store(x) < 0)
		return 1;
	struct err e = {0};
	if (ipam_ds_update(&x->ds, op_configure, &ca, &e) < 0) {
		ctl_errx("configure: %s", e.msg);
		return 1;
	}
	struct ctl_acts a = {0};
	ctl_act_add(&a, ca.changed ? "configured" : "unchanged", NULL, NULL,
		"kubeVirtVMAddressPersistence %s%s%s", ipam_persist_name(ca.want),
		ca.changed ? " (was " : "",
		ca.changed ? (ca.had ? ipam_persist_name(ca.was) : "Enabled by default)") : "");
	if (ca.changed && ca.had)
		strncat(a.v[0].detail, ")", sizeof(a.v[0].detail) - strlen(a.v[0].detail) - 1);
	int rc = ctl_print_acts(x, "configure", &a);
	free(a.v);
	return rc ? 1 : 0;
}
