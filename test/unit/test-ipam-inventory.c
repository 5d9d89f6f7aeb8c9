/* Unit tests for ipam/inventory: the CSV parser (quotes, CRLF, BOM, header), every
 * problem reported by line, validation against the state, idempotent apply, MAC parsing,
 * one MAC per VM and network (in the file, against the state, and rechecked after a write
 * that raced another, with the undo). */
#include "ipam/inventory.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void pools(struct ipam_state *st)
{
	struct ipam_cidr c4, c6;
	ipam_state_init(st);
	ipam_cidr_parse(&c4, "198.18.0.0/24", NULL);
	ipam_cidr_parse(&c6, "2001:db8::/120", NULL);
	T_EQ(ipam_pool_add(st, "p4", &c4, 0, NULL, 0, NULL), 0);
	T_EQ(ipam_pool_add(st, "p6", &c6, 0, NULL, 0, NULL), 0);
}

static void test_mac(void)
{
	uint8_t m[6];
	char c[IPAM_MAC_STR];
	T_EQ(ipam_mac_parse("02:AB:cd:00:00:01", m, c, NULL), 0);
	T_STREQ(c, "02:ab:cd:00:00:01");
	T_EQ(m[1], 0xab);
	struct err e = {0};
	T_EQ(ipam_mac_parse("01:00:5e:00:00:01", m, c, &e), -EINVAL);
	T_CHECK(strstr(e.msg, "multicast") != NULL);
	T_EQ(ipam_mac_parse("00:00:00:00:00:00", m, c, NULL), -EINVAL);
	T_EQ(ipam_mac_parse("02:00:00:00:00", m, c, NULL), -EINVAL);
	T_EQ(ipam_mac_parse("02-00-00-00-00-01", m, c, NULL), -EINVAL);
	T_EQ(ipam_mac_parse("02:00:00:00:00:0g", m, c, NULL), -EINVAL);
	T_EQ(ipam_mac_parse("", m, c, NULL), -EINVAL);
}

static void test_parse_forms(void)
{
	const char csv[] = "\xef\xbb\xbf Namespace ,VM,ip,MAC,network\r\n"
			   "\r\n"
			   "\"default\",\"vm-a\",198.18.0.10,02:00:00:00:00:0A,\r\n"
			   "default, vm-b ,\"2001:db8::5\",,\"other\"\n"
			   "default,vm-c,198.18.0.11,,";
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs_total, 0);
	T_EQ(v.n, 3);
	T_EQ(v.n_seen, 3);
	if (v.n == 3) {
		T_EQ(v.rows[0].line, 3);
		T_STREQ(v.rows[0].mac, "02:00:00:00:00:0a");
		T_STREQ(v.rows[0].handle, "kvnet.vmi.default.vm-a");
		T_STREQ(v.rows[1].vm, "vm-b");
		T_STREQ(v.rows[1].handle, "other.vmi.default.vm-b");
		T_EQ(v.rows[1].ip.family, AF_INET6);
		T_EQ(v.rows[2].line, 5);
	}
	ipam_inv_free(&v);
}

static void test_every_problem_by_line(void)
{
	const char csv[] = "namespace,vm,ip,mac,network\n"
			   "default,vm-a,198.18.0.10,,\n"		   /* 2 ok */
			   "Default,vm-b,198.18.0.11,,\n"		   /* 3 ns */
			   "default,VM_C,198.18.0.12,,\n"		   /* 4 vm */
			   "default,vm-d,198.18.0.300,,\n"		   /* 5 ip */
			   "default,vm-e,198.18.0.13,zz,\n"		   /* 6 mac */
			   "default,vm-f,198.18.0.10,,\n"		   /* 7 dup ip */
			   "default,vm-a,198.18.0.14,,\n"		   /* 8 2nd v4 */
			   "default,vm-g,198.18.0.15\n"		   /* 9 fields */
			   "default,\"vm-h,198.18.0.16,,\n"		   /* 10 quote */
			   "default,vm-i,198.18.0.17,,,x\n"		   /* 11 six */
			   "default,vm-j,198.18.0.18,,bad_net\n";	   /* 12 net */
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
	unsigned want[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	T_EQ(v.n_errs, 10);
	for (unsigned i = 0; i < v.n_errs && i < 10; i++) {
		if (!T_EQ(v.errs[i].line, want[i]))
			t_note("%u: %s", v.errs[i].line, v.errs[i].msg);
	}
	T_EQ(v.n, 1);
	T_EQ(v.n_seen, 11);
	ipam_inv_free(&v);
}

static void test_header_and_limits(void)
{
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, "", 0, "kvnet", NULL), 0);
	T_EQ(v.n_errs, 1);
	T_EQ(v.errs[0].line, 0);
	ipam_inv_free(&v);
	const char wrong[] = "ns,vm,ip,mac,network\ndefault,vm-a,198.18.0.1,,\n";
	T_EQ(ipam_inv_parse(&v, wrong, sizeof(wrong) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs, 1);
	T_EQ(v.errs[0].line, 1);
	T_EQ(v.n, 0);
	ipam_inv_free(&v);
	char big[IPAM_INV_LINE_MAX + 100];
	int n = snprintf(big, sizeof(big), "namespace,vm,ip,mac,network\n");
	memset(big + n, 'a', sizeof(big) - (size_t)n - 1);
	big[sizeof(big) - 1] = 0;
	T_EQ(ipam_inv_parse(&v, big, strlen(big), "kvnet", NULL), 0);
	T_EQ(v.n_errs, 1);
	T_CHECK(strstr(v.errs[0].msg, "longer") != NULL);
	ipam_inv_free(&v);
	const char nul[] = "namespace,vm,ip,mac,network\nde\0fault,vm-a,198.18.0.1,,\n";
	T_EQ(ipam_inv_parse(&v, nul, sizeof(nul) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs, 1);
	ipam_inv_free(&v);
}

static void test_validate_apply_idempotent(void)
{
	struct ipam_state st;
	pools(&st);
	struct ip_addr held;
	ipam_addr_parse(&held, "198.18.0.20", NULL);
	struct ipam_attrs pa;
	memset(&pa, 0, sizeof(pa));
	snprintf(pa.pod, sizeof(pa.pod), "p1");
	snprintf(pa.ns, sizeof(pa.ns), "default");
	T_EQ(ipam_reserve_ip(&st, "kvnet.c1", &held, &pa, NULL), 0);
	const char csv[] = "namespace,vm,ip,mac,network\n"
			   "default,vm-a,198.18.0.10,02:00:00:00:00:0a,\n"
			   "default,vm-a,2001:db8::10,,\n"
			   "default,vm-b,198.18.0.20,,\n"    /* held by pod p1 */
			   "default,vm-c,198.19.0.1,,\n"     /* outside */
			   "default,vm-d,198.18.0.0,,\n"     /* reserved by the pool */
			   "default,vm-e,198.18.0.30,,\n";
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs, 3);
	if (v.n_errs == 3) {
		T_EQ(v.errs[0].line, 4);
		T_CHECK(strstr(v.errs[0].msg, "kvnet.c1 (pod default/p1)") != NULL);
		T_EQ(v.errs[1].line, 5);
		T_EQ(v.errs[2].line, 6);
	}
	unsigned applied = 0;
	T_EQ(ipam_inv_apply(&st, &v, &applied, NULL), 0);
	T_EQ(applied, 3);
	T_EQ(ipam_check(&st, NULL), 0);
	struct ip_addr a;
	ipam_addr_parse(&a, "198.18.0.10", NULL);
	const struct ipam_attrs *at = ipam_lookup_ip(&st, &a);
	T_CHECK(at && !strcmp(at->mac, "02:00:00:00:00:0a") && !strcmp(at->vmi_name, "vm-a") &&
		!strcmp(at->handle, "kvnet.vmi.default.vm-a") && !at->pod[0]);
	const struct ipam_handle *h = ipam_handle_find(&st, "kvnet.vmi.default.vm-a");
	T_CHECK(h && h->n == 2);
	ipam_inv_free(&v);

	/* the same good rows again: all in place, nothing applied */
	const char again[] = "namespace,vm,ip,mac,network\n"
			     "default,vm-a,198.18.0.10,02:00:00:00:00:0A,\n"
			     "default,vm-a,2001:db8::10,,\n"
			     "default,vm-e,198.18.0.30,,\n";
	T_EQ(ipam_inv_parse(&v, again, sizeof(again) - 1, "kvnet", NULL), 0);
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs_total, 0);
	T_EQ(ipam_inv_apply(&st, &v, &applied, NULL), 0);
	T_EQ(applied, 0);
	ipam_inv_free(&v);

	/* another MAC for a reserved address, another v4 for vm-a: refused */
	const char clash[] = "namespace,vm,ip,mac,network\n"
			     "default,vm-a,198.18.0.10,02:00:00:00:00:0b,\n"
			     "default,vm-a,198.18.0.11,,\n";
	T_EQ(ipam_inv_parse(&v, clash, sizeof(clash) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs_total, 1); /* a second v4 for vm-a in the file */
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs_total, 2);
	T_CHECK(v.n_errs == 2 && strstr(v.errs[0].msg, "with mac 02:00:00:00:00:0a"));
	ipam_inv_free(&v);
	ipam_state_free(&st);
}

/* One MAC belongs to one VM per network: a second VM with it on another line is refused
 * (line of the first named, case-insensitive); the same VM's v4 and v6 rows may share it,
 * and another network may reuse it. */
static void test_duplicate_mac_in_file(void)
{
	const char csv[] = "namespace,vm,ip,mac,network\n"
			   "default,vm-a,198.18.0.10,02:00:00:00:00:aa,\n"  /* 2 ok */
			   "default,vm-a,2001:db8::10,02:00:00:00:00:AA,\n" /* 3 same VM: ok */
			   "default,vm-b,198.18.0.11,02:00:00:00:00:Aa,\n"  /* 4 dup of 2 */
			   "other,vm-a,198.18.0.12,02:00:00:00:00:aa,\n"    /* 5 other ns: dup */
			   "default,vm-c,198.18.0.13,02:00:00:00:00:aa,net2\n" /* 6 other net: ok */
			   "default,vm-d,198.18.0.14,02:00:00:00:00:ab,\n";  /* 7 ok */
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs_total, 2);
	T_EQ(v.n, 4);
	if (v.n_errs == 2) {
		T_EQ(v.errs[0].line, 4);
		T_STREQ(v.errs[0].msg, "mac 02:00:00:00:00:aa: also on line 2 for VM default/vm-a "
				       "(this row: VM default/vm-b; network kvnet)");
		T_EQ(v.errs[1].line, 5);
		T_CHECK(strstr(v.errs[1].msg, "VM other/vm-a") != NULL);
	}
	ipam_inv_free(&v);

	/* reserve builds its one row with ipam_inv_add: the same check */
	ipam_inv_init(&v);
	T_EQ(ipam_inv_add(&v, 1, "default", "vm-a", "198.18.0.10", "02:00:00:00:00:01", "kvnet",
			  NULL), 0);
	T_EQ(ipam_inv_add(&v, 2, "default", "vm-b", "198.18.0.11", "02:00:00:00:00:01", "kvnet",
			  NULL), 0);
	T_EQ(v.n_errs_total, 1);
	T_EQ(v.n, 1);
	ipam_inv_free(&v);
}

/* A MAC already held in the state by another VM (or pod) of the network is refused,
 * naming that VM, its address and handle; whatever the case the state stores it in. The
 * VM holding it may be imported again (in place), another network may use it, and
 * nothing is applied from a refused row. */
static void test_duplicate_mac_in_state(void)
{
	struct ipam_state st;
	pools(&st);
	struct ip_addr a;
	struct ipam_attrs at;
	memset(&at, 0, sizeof(at));
	snprintf(at.ns, sizeof(at.ns), "default");
	snprintf(at.vmi_name, sizeof(at.vmi_name), "vm-a");
	snprintf(at.mac, sizeof(at.mac), "02:00:00:00:00:AA"); /* as another writer stored it */
	ipam_addr_parse(&a, "198.18.0.10", NULL);
	T_EQ(ipam_reserve_ip(&st, "kvnet.vmi.default.vm-a", &a, &at, NULL), 0);
	/* an ordinary pod that somehow carries a MAC, on network kvnet */
	memset(&at, 0, sizeof(at));
	snprintf(at.ns, sizeof(at.ns), "default");
	snprintf(at.pod, sizeof(at.pod), "p1");
	snprintf(at.container_id, sizeof(at.container_id), "c1");
	snprintf(at.mac, sizeof(at.mac), "02:00:00:00:00:bb");
	ipam_addr_parse(&a, "198.18.0.20", NULL);
	T_EQ(ipam_reserve_ip(&st, "kvnet.c1", &a, &at, NULL), 0);

	const char csv[] = "namespace,vm,ip,mac,network\n"
			   "default,vm-a,198.18.0.10,02:00:00:00:00:aa,\n"   /* 2 in place */
			   "default,vm-a,2001:db8::10,02:00:00:00:00:aa,\n"  /* 3 same VM: ok */
			   "default,vm-c,198.18.0.12,02:00:00:00:00:BB,\n"   /* 4 held by p1 */
			   "default,vm-d,198.18.0.13,02:00:00:00:00:aa,net2\n" /* 5 other net */
			   "default,vm-e,198.18.0.14,02:00:00:00:00:cc,\n";  /* 6 ok */
	struct ipam_inv v;
	T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
	T_EQ(v.n_errs_total, 0);
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs_total, 1);
	if (v.n_errs == 1) {
		T_EQ(v.errs[0].line, 4);
		T_STREQ(v.errs[0].msg, "mac 02:00:00:00:00:bb: already held by pod default/p1 (ip "
				       "198.18.0.20, handle kvnet.c1; this row: VM default/vm-c)");
	}
	T_CHECK(v.n && v.rows[0].in_place);
	unsigned applied = 0;
	T_EQ(ipam_inv_apply(&st, &v, &applied, NULL), 0);
	T_EQ(applied, 3); /* vm-a's v6, vm-d (net2), vm-e */
	ipam_addr_parse(&a, "198.18.0.12", NULL);
	T_CHECK(ipam_lookup_ip(&st, &a) == NULL);
	T_CHECK(ipam_handle_find(&st, "kvnet.vmi.default.vm-c") == NULL);
	ipam_addr_parse(&a, "198.18.0.13", NULL);
	T_CHECK(ipam_lookup_ip(&st, &a) != NULL);
	ipam_inv_free(&v);

	/* another VM of kvnet with vm-a's MAC (stored upper-case) */
	const char dup[] = "namespace,vm,ip,mac,network\n"
			   "default,vm-b,198.18.0.11,02:00:00:00:00:aA,\n";
	T_EQ(ipam_inv_parse(&v, dup, sizeof(dup) - 1, "kvnet", NULL), 0);
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs_total, 1);
	if (v.n_errs == 1) {
		T_EQ(v.errs[0].line, 2);
		T_STREQ(v.errs[0].msg, "mac 02:00:00:00:00:aa: already held by VM default/vm-a "
				       "(ip 198.18.0.10, handle kvnet.vmi.default.vm-a; this row: "
				       "VM default/vm-b)");
	}
	T_EQ(ipam_inv_apply(&st, &v, &applied, NULL), 0);
	T_EQ(applied, 0);
	ipam_inv_free(&v);

	/* the MAC now held by vm-d on net2 is refused for another VM of net2 */
	T_EQ(ipam_inv_parse(&v, "namespace,vm,ip,mac,network\n"
				"default,vm-f,198.18.0.15,02:00:00:00:00:aa,net2\n",
			    strlen("namespace,vm,ip,mac,network\n"
				   "default,vm-f,198.18.0.15,02:00:00:00:00:aa,net2\n"),
			    "kvnet", NULL), 0);
	T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
	T_EQ(v.n_errs_total, 1);
	T_CHECK(v.n_errs == 1 && strstr(v.errs[0].msg, "VM default/vm-d") &&
		strstr(v.errs[0].msg, "handle net2.vmi.default.vm-d"));
	ipam_inv_free(&v);
	ipam_state_free(&st);
}

/* A writer racing the import gave vm-a's MAC to vm-x after both validated: the recheck on
 * the state read afterwards finds the row (naming vm-x) and undo takes back what the import
 * applied (every applied row, or only the raced ones), never the other writer's. */
static void test_mac_recheck_and_undo(void)
{
	for (int raced_only = 0; raced_only < 2; raced_only++) {
		struct ipam_state st;
		pools(&st);
		const char csv[] = "namespace,vm,ip,mac,network\n"
				   "default,vm-a,198.18.0.10,02:00:00:00:00:aa,\n"
				   "default,vm-b,198.18.0.11,,\n"
				   "default,vm-c,198.18.0.12,02:00:00:00:00:cc,\n";
		struct ipam_inv v;
		T_EQ(ipam_inv_parse(&v, csv, sizeof(csv) - 1, "kvnet", NULL), 0);
		T_EQ(ipam_inv_validate(&v, &st, NULL), 0);
		unsigned applied = 0, undone = 0;
		T_EQ(ipam_inv_apply(&st, &v, &applied, NULL), 0);
		T_EQ(applied, 3);
		T_EQ(ipam_inv_mac_recheck(&v, &st, NULL), 0); /* alone: nothing raced */
		/* the other writer */
		struct ipam_attrs at;
		struct ip_addr a;
		memset(&at, 0, sizeof(at));
		snprintf(at.ns, sizeof(at.ns), "default");
		snprintf(at.vmi_name, sizeof(at.vmi_name), "vm-x");
		snprintf(at.mac, sizeof(at.mac), "02:00:00:00:00:AA");
		ipam_addr_parse(&a, "198.18.0.30", NULL);
		T_EQ(ipam_reserve_ip(&st, "kvnet.vmi.default.vm-x", &a, &at, NULL), 0);
		T_EQ(ipam_inv_mac_recheck(&v, &st, NULL), 1);
		T_CHECK(v.rows[0].raced && !v.rows[1].raced && !v.rows[2].raced);
		T_EQ(v.n_errs, 1);
		if (v.n_errs == 1) {
			T_EQ(v.errs[0].line, 2);
			T_STREQ(v.errs[0].msg, "mac 02:00:00:00:00:aa: VM default/vm-x (ip 198.18.0.30, "
					       "handle kvnet.vmi.default.vm-x) got it at the same time; "
					       "VM default/vm-a's reservation taken back");
		}
		T_EQ(ipam_inv_undo(&st, &v, raced_only, &undone, NULL), 0);
		T_EQ(undone, raced_only ? 1 : 3);
		ipam_addr_parse(&a, "198.18.0.10", NULL);
		T_CHECK(ipam_lookup_ip(&st, &a) == NULL);
		ipam_addr_parse(&a, "198.18.0.11", NULL);
		T_CHECK((ipam_lookup_ip(&st, &a) != NULL) == (raced_only == 1));
		ipam_addr_parse(&a, "198.18.0.30", NULL);
		T_CHECK(ipam_lookup_ip(&st, &a) != NULL); /* the other writer's stays */
		T_CHECK(ipam_handle_find(&st, "kvnet.vmi.default.vm-a") == NULL);
		T_EQ(ipam_check(&st, NULL), 0);
		/* again: nothing left to take back */
		T_EQ(ipam_inv_undo(&st, &v, raced_only, &undone, NULL), 0);
		T_EQ(undone, 0);
		ipam_inv_free(&v);
		ipam_state_free(&st);
	}
}

int main(void)
{
	T_RUN(test_mac);
	T_RUN(test_parse_forms);
	T_RUN(test_every_problem_by_line);
	T_RUN(test_header_and_limits);
	T_RUN(test_validate_apply_idempotent);
	T_RUN(test_duplicate_mac_in_file);
	T_RUN(test_duplicate_mac_in_state);
	T_RUN(test_mac_recheck_and_undo);
	return t_done();
}
