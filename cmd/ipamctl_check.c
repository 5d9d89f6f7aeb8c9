/* ipamctl check [-o report.json]: cross-check the state (and the API view) and print the
 * problems; the report file feeds `release --from-report`. Exit 1 when problems are found. */
#include "cmd/ipamctl.h"

#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctl_run_check(struct ctl *x, const struct ipam_state *st, struct ipam_report *r,
		     struct ipam_htimes *ht)
{
	struct err e = {0};
	struct ipam_l2net *nets;
	unsigned nn;
	if (ctl_load_l2nets(x, &nets, &nn) < 0)
		return -1;
	struct ipam_check_opts o = {.live = &x->live, .now = (int64_t)time(NULL),
				    .vm_grace = x->vm_grace, .handle_time = ipam_htimes_get, .user = ht,
				    .l2nets = nets, .n_l2nets = nn};
	int rc = ipam_report_check(st, &o, r, &e);
	free(nets);
	if (rc < 0) {
		ctl_errx("check: %s", e.msg);
		return -1;
	}
	return 0;
}

int ctl_check(struct ctl *x, int argc, char **argv)
{
	(void)argc; /* no operands (the table says so) */
	(void)argv;
	bool quiet = x->out == OUT_JSON;
	if (ctl_open_store(x) < 0)
		return 1;
	if (!quiet)
		printf("Checking IPAM for inconsistencies (%s datastore)...\n",
		       x->kube ? "kubernetes" : "file");
	struct ipam_state st;
	if (ctl_read_state(x, &st) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	if (!quiet)
		printf("Loaded IPAM state: %u pools, %u blocks, %u handles\n", st.n_pools,
		       st.n_blocks, st.n_handles);
	if (ctl_load_live(x) < 0) {
		ipam_state_free(&st);
		return 1;
	}
	if (!quiet) {
		if (x->live.known)
			printf("Loaded from the API: %u pods, %u VMIs, %u VMs\n", x->live.n_pods,
			       x->live.n_vmis, x->live.n_vms);
		else
			printf("No API server (%s): leaks and duplicates are not checked\n",
			       x->api_note);
		printf("Checking allocations, handles and block counts...\n");
		if (x->live.known)
			printf("Checking owners (VM grace period %us) and addresses used by two "
			       "pods...\n", x->vm_grace);
	}
	struct ipam_htimes ht;
	struct ipam_report r;
	ipam_report_init(&r);
	int rc = 1;
	if (ctl_load_htimes(x, &ht) < 0 || ctl_run_check(x, &st, &r, &ht) < 0)
		goto out;
	if (!quiet) {
		printf("Checked %u allocations (%u reserved for VMs, %u of gone VMs within the "
		       "grace period)\n", r.allocations, r.reservations, r.within_grace);
		struct ctl_tbl t = {.ncols = 5};
		ctl_tbl_row(&t, "PROBLEM", "IP", "HANDLE", "REPAIR", "DETAIL");
		for (unsigned i = 0; i < r.n; i++) {
			char as[64] = "";
			if (r.p[i].has_ip)
				ipam_addr_str(&r.p[i].ip, as, sizeof(as));
			ctl_tbl_row(&t, ipam_problem_name(r.p[i].kind), as, r.p[i].handle,
				ipam_repair_name(r.p[i].repair), r.p[i].detail);
		}
		if (r.n)
			ctl_tbl_print(&t);
		else
			ctl_tbl_free(&t);
		printf("found %u problem%s\n", r.n, r.n == 1 ? "" : "s");
	}
	struct json_w w;
	struct err e = {0};
	json_w_init_grow(&w, CTL_FILE_MAX);
	if (ipam_report_write(&r, &w, &e) < 0) {
		ctl_errx("check: report: %s", e.msg);
		json_w_free(&w);
		goto out;
	}
	if (x->report_file) {
		FILE *f = fopen(x->report_file, "w");
		if (!f || fwrite(w.buf, 1, w.len, f) != w.len || fputc('\n', f) == EOF ||
		    fclose(f) != 0) {
			ctl_errx("check: report %s: write: %s", x->report_file, strerror(errno));
			json_w_free(&w);
			goto out;
		}
		if (!quiet)
			printf("Report written to %s\n", x->report_file);
	}
	if (quiet) {
		if (ctl_print_pretty(w.buf, w.len) < 0) {
			json_w_free(&w);
			goto out;
		}
	}
	json_w_free(&w);
	rc = r.n ? 1 : 0;
out:
	ipam_htimes_free(&ht);
	ipam_report_free(&r);
	ipam_state_free(&st);
	return rc;
}
