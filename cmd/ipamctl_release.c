/* ipamctl release --ip IP | --handle H | --from-report FILE [--network NET] [--force]: free
 * addresses whose owner is gone (or, with --force, anyway), or apply the repairs of a check
 * report that are still current. With --network, only addresses of that L2Network's pools
 * are touched (--ip/--handle elsewhere are refused, report problems elsewhere skipped). */
#include "cmd/ipamctl.h"

#include "lib/err.h"
#include "lib/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rel_arg {
	struct ctl *x;			/* the process */
	const struct ipam_report *old;	/* --from-report */
	struct ipam_htimes *ht;		/* handle times */
	struct ctl_acts acts;		/* what happened (reset per try) */
};

static void acts_reset(struct ctl_acts *a)
{
	a->n = 0;
	a->refused = 0;
}

/* Can the owner of allocation a be released? Fills why. */
static bool may_release(struct ctl *x, const struct ipam_attrs *a, char *why, size_t cap)
{
	enum ipam_owner_state os = ipam_owner_judge(&x->live, a, why, cap);
	if (x->force)
		return true;
	return os == IPAM_OWNER_GONE;
}

static int op_release_ip(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	struct ip_addr a;
	if (ipam_addr_parse(&a, x->ip, e) < 0)
		return -EINVAL;
	char as[64], why[256];
	ipam_addr_str(&a, as, sizeof(as));
	if (x->network_set && !ctl_l2_holds(st, x->network, &a))
		return err_setx(e, ENOENT, "release %s: not in a pool of L2Network %s", as,
				x->network);
	const struct ipam_attrs *at = ipam_lookup_ip(st, &a);
	if (!at)
		return err_setx(e, ENOENT, "release %s: not allocated", as);
	char handle[IPAM_NAME_MAX + 1];
	snprintf(handle, sizeof(handle), "%s", at->handle);
	if (!may_release(x, at, why, sizeof(why))) {
		ctl_act_add(&ra->acts, "refused", as, handle, "owner %s: %s (use --force to release it anyway)",
			ipam_owner_state_name(ipam_owner_judge(&x->live, at, why, sizeof(why))),
			why);
		return -EBUSY;
	}
	ipam_owner_judge(&x->live, at, why, sizeof(why));
	int rc = ipam_release_ip(st, &a, e);
	if (rc)
		return rc;
	ctl_act_add(&ra->acts, "released", as, handle, "%s%s", x->force ? "forced; " : "", why);
	return 0;
}

static int op_release_handle(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	const struct ipam_handle *h = ipam_handle_find(st, x->handle);
	if (!h)
		return err_setx(e, ENOENT, "release handle %s: no such handle", x->handle);
	for (unsigned i = 0; x->network_set && i < h->n; i++)
		if (!ctl_l2_holds(st, x->network, &h->ip[i])) {
			char hs[64];
			return err_setx(e, ENOENT, "release handle %s: %s is not in a pool of "
					"L2Network %s", x->handle,
					ipam_addr_str(&h->ip[i], hs, sizeof(hs)), x->network);
		}
	struct ip_addr ips[IPAM_HANDLE_IPS_MAX];
	unsigned n = h->n;
	memcpy(ips, h->ip, n * sizeof(*ips));
	char why[256], as[64];
	for (unsigned i = 0; i < n; i++) {
		const struct ipam_attrs *at = ipam_lookup_ip(st, &ips[i]);
		if (at && !may_release(x, at, why, sizeof(why))) {
			ctl_act_add(&ra->acts, "refused", ipam_addr_str(&ips[i], as, sizeof(as)),
				x->handle, "owner %s: %s (use --force to release it anyway)",
				ipam_owner_state_name(ipam_owner_judge(&x->live, at, why, sizeof(why))),
				why);
			return -EBUSY;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		const struct ipam_attrs *at = ipam_lookup_ip(st, &ips[i]);
		if (at)
			ipam_owner_judge(&x->live, at, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "listed by the handle, not allocated");
		ctl_act_add(&ra->acts, "released", ipam_addr_str(&ips[i], as, sizeof(as)), x->handle,
			"%s%s", x->force ? "forced; " : "", why);
	}
	return ipam_release_handle(st, x->handle, true, e);
}

static const char *repair_verb(enum ipam_repair r)
{
	switch (r) {
	case IPAM_R_NONE:
		return "left";
	case IPAM_R_RELEASE:
		return "released";
	case IPAM_R_UNLINK:
		return "unlinked";
	case IPAM_R_RELINK:
		return "relinked";
	case IPAM_R_RECOUNT:
		return "recounted";
	}
	return "?";
}

static int op_release_report(struct ipam_state *st, void *arg, struct err *e)
{
	struct rel_arg *ra = arg;
	struct ctl *x = ra->x;
	acts_reset(&ra->acts);
	struct ipam_report now;
	if (ctl_run_check(x, st, &now, ra->ht) < 0)
		return err_setx(e, ENOMEM, "release: check");
	for (unsigned i = 0; i < ra->old->n; i++) {
		const struct ipam_problem *p = &ra->old->p[i];
		char as[64] = "";
		if (p->has_ip)
			ipam_addr_str(&p->ip, as, sizeof(as));
		if (x->network_set && !(p->has_ip ? ctl_l2_holds(st, x->network, &p->ip)
						  : ctl_l2_holds(st, x->network, &p->block.a))) {
			ctl_act_add(&ra->acts, "skipped", as, p->handle,
				"%s: not in a pool of L2Network %s", ipam_problem_name(p->kind),
				x->network);
			continue;
		}
		if (!ipam_problem_repairable(&now, st, p, x->force)) {
			ctl_act_add(&ra->acts, "skipped", as, p->handle,
				"%s: no longer found (owner alive again or already repaired)",
				ipam_problem_name(p->kind));
			continue;
		}
		if (p->repair == IPAM_R_NONE) {
			ctl_act_add(&ra->acts, "left", as, p->handle, "%s needs a person: %s",
				ipam_problem_name(p->kind), p->detail);
			continue;
		}
		struct err re = {0};
		if (ipam_report_repair(st, p, &re) < 0) {
			ctl_act_add(&ra->acts, "failed", as, p->handle, "%s: %s",
				ipam_problem_name(p->kind), re.msg);
			continue;
		}
		if (p->kind == IPAM_P_BLOCK_COUNT) {
			char cs[64];
			ctl_act_add(&ra->acts, "recounted", NULL, NULL, "block %s: count %u -> %u",
				ipam_cidr_str(&p->block, cs, sizeof(cs)), p->stored, p->actual);
			continue;
		}
		ctl_act_add(&ra->acts, repair_verb(p->repair), as, p->handle, "%s: %s",
			ipam_problem_name(p->kind), p->detail);
	}
	ipam_report_free(&now);
	return 0;
}

int ctl_release(struct ctl *x, int argc, char **argv)
{
	(void)argc; /* no operands (the table says so) */
	(void)argv;
	unsigned modes = (x->ip ? 1 : 0) + (x->handle ? 1 : 0) + (x->from_report ? 1 : 0);
	if (modes != 1) {
		ctl_errx("release: give exactly one of --ip, --handle, --from-report");
		return 2;
	}
	struct ipam_report old;
	ipam_report_init(&old);
	struct err e = {0};
	if (x->ip) {
		struct ip_addr a;
		if (ipam_addr_parse(&a, x->ip, &e) < 0) {
			ctl_errx("release --ip: %s", e.msg);
			return 2;
		}
	}
	if (x->from_report) {
		char *text = NULL;
		size_t len = 0;
		if (file_read(x->from_report, CTL_FILE_MAX, &text, &len, &e) < 0 ||
		    ipam_report_parse(&old, text, len, &e) < 0) {
			ctl_errx("release --from-report: %s", e.msg);
			free(text);
			ipam_report_free(&old);
			return 1;
		}
		free(text);
	}
	int rc = 1;
	struct ipam_htimes ht = {0};
	struct rel_arg ra = {.x = x, .old = &old, .ht = &ht};
	if (ctl_open_store(x) < 0 || ctl_load_live(x) < 0)
		goto out;
	if (x->from_report && ctl_load_htimes(x, &ht) < 0)
		goto out;
	int r = ipam_ds_update(&x->ds,
			       x->ip ? op_release_ip
				     : x->handle ? op_release_handle : op_release_report,
			       &ra, &e);
	if (r < 0 && r != -EBUSY) {
		ctl_print_acts(x, "release", &ra.acts);
		ctl_errx("release: %s", e.msg);
		goto out;
	}
	ctl_print_acts(x, "release", &ra.acts);
	if (x->from_report && x->out != OUT_JSON) {
		unsigned done = 0;
		for (unsigned i = 0; i < ra.acts.n; i++)
			done += strcmp(ra.acts.v[i].verb, "skipped") && strcmp(ra.acts.v[i].verb, "left") &&
				strcmp(ra.acts.v[i].verb, "failed");
		printf("repaired %u of %u problems in the report\n", done, old.n);
	}
	rc = r < 0 || ra.acts.refused ? 1 : 0;
out:
	free(ra.acts.v);
	ipam_htimes_free(&ht);
	ipam_report_free(&old);
	return rc;
}
