/* Unit tests for ipam/inventory: the CSV parser (quotes, CRLF, BOM, header), every
 * problem reported by line, validation against the state, idempotent apply, MAC parsing. */
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

int main(void)
{
	T_RUN(test_mac);
	T_RUN(test_parse_forms);
	T_RUN(test_every_problem_by_line);
	T_RUN(test_header_and_limits);
	T_RUN(test_validate_apply_idempotent);
	return t_done();
}
