/* Unit tests for ipam/report: owner judgement, pool usage (128-bit counts), pool delete,
 * each problem kind of check with an API view, the VM grace period, the report JSON round
 * trip, and repairs after which check finds nothing; pool ensure (pool add); which
 * problems of an older report may still be repaired; DuplicateMAC; the L2 problems. */
#include "ipam/report.h"
#include "lib/json.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	ipam_addr_parse(&a, s, NULL);
	return a;
}

static void pool(struct ipam_state *st, const char *cidr, unsigned bp)
{
	struct ipam_cidr c;
	char name[64];
	T_EQ(ipam_cidr_parse(&c, cidr, NULL), 0);
	ipam_block_name(&c, name, sizeof(name));
	T_EQ(ipam_pool_add(st, name, &c, bp, NULL, 0, NULL), 0);
}

static void pod_alloc(struct ipam_state *st, const char *a, const char *handle, const char *pod)
{
	struct ipam_attrs at;
	memset(&at, 0, sizeof(at));
	snprintf(at.pod, sizeof(at.pod), "%s", pod);
	snprintf(at.ns, sizeof(at.ns), "default");
	snprintf(at.node, sizeof(at.node), "node-a");
	snprintf(at.container_id, sizeof(at.container_id), "c-%s", pod);
	struct ip_addr x = ip(a);
	T_EQ(ipam_reserve_ip(st, handle, &x, &at, NULL), 0);
}

static void vm_alloc(struct ipam_state *st, const char *a, const char *vm, const char *owner_uid)
{
	struct ipam_attrs at;
	char h[IPAM_NAME_MAX + 1];
	memset(&at, 0, sizeof(at));
	snprintf(at.ns, sizeof(at.ns), "default");
	snprintf(at.vmi_name, sizeof(at.vmi_name), "%s", vm);
	if (owner_uid) {
		snprintf(at.pod, sizeof(at.pod), "launcher-%s", vm);
		snprintf(at.active.ns, sizeof(at.active.ns), "default");
		snprintf(at.active.name, sizeof(at.active.name), "launcher-%s", vm);
		snprintf(at.active.uid, sizeof(at.active.uid), "%s", owner_uid);
		snprintf(at.active.node, sizeof(at.active.node), "node-b");
	}
	ipam_handle_vm(h, "kvnet", "default", vm, NULL);
	struct ip_addr x = ip(a);
	T_EQ(ipam_reserve_ip(st, h, &x, &at, NULL), 0);
}

static void live_pod(struct ipam_live *l, const char *name, const char *uid, const char *a)
{
	struct ipam_live_pod p;
	memset(&p, 0, sizeof(p));
	snprintf(p.ns, sizeof(p.ns), "default");
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.uid, sizeof(p.uid), "%s", uid);
	if (a) {
		p.ips[0] = ip(a);
		p.n_ips = 1;
	}
	T_EQ(ipam_live_add_pod(l, &p), 0);
}

static void test_usage_and_u128(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "198.18.0.0/24", 26);
	pool(&st, "2001:db8:4b76::/72", 118);
	pod_alloc(&st, "198.18.0.2", "kvnet.a", "a");
	pod_alloc(&st, "198.18.0.70", "kvnet.b", "b");
	struct ipam_pool_usage u;
	ipam_pool_usage(&st, 0, &u);
	char s[48];
	T_STREQ(ipam_u128_str(u.total, s, sizeof(s)), "254");
	T_STREQ(ipam_u128_str(u.used, s, sizeof(s)), "2");
	T_EQ(u.blocks, 2);
	T_EQ(ipam_percent(u.used, u.total), 0);
	T_EQ(ipam_percent(127, 254), 50);
	ipam_pool_usage(&st, 1, &u);
	T_EQ(st.n_pools, 2);
	/* 2^56 - 1 (the first address is never handed out) */
	T_STREQ(ipam_u128_str(u.total, s, sizeof(s)), "72057594037927935");
	T_STREQ(ipam_u128_str((unsigned __int128)1 << 80, s, sizeof(s)),
		"1208925819614629174706176");
	T_EQ(ipam_percent(u.total, u.total), 100);
	T_STREQ(ipam_u128_str(0, s, sizeof(s)), "0");
	ipam_state_free(&st);
}

static void test_pool_delete(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "198.18.0.0/24", 26);
	pool(&st, "198.18.1.0/24", 26);
	pod_alloc(&st, "198.18.0.2", "kvnet.a", "a");
	pod_alloc(&st, "198.18.1.2", "kvnet.b", "b");
	T_EQ(ipam_release_handle(&st, "kvnet.b", true, NULL), 0);
	struct ipam_cidr c;
	struct err e = {0};
	ipam_cidr_parse(&c, "198.18.0.0/24", NULL);
	T_EQ(ipam_pool_delete(&st, &c, &e), -EBUSY);
	T_CHECK(strstr(e.msg, "198.18.0.2 held by kvnet.a") != NULL);
	ipam_cidr_parse(&c, "198.18.1.0/24", NULL);
	T_EQ(st.n_blocks, 2);
	T_EQ(ipam_pool_delete(&st, &c, NULL), 0);
	T_EQ(st.n_pools, 1);
	T_EQ(st.n_blocks, 1); /* its empty block went with it */
	T_EQ(ipam_pool_delete(&st, &c, NULL), -ENOENT);
	ipam_state_free(&st);
}

static void test_pool_ensure(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	struct ipam_cidr c;
	bool existed = true;
	ipam_cidr_parse(&c, "198.18.8.0/24", NULL);
	T_EQ(ipam_pool_ensure(&st, &c, 28, &existed, NULL), 0);
	T_CHECK(!existed);
	T_EQ(st.n_pools, 1);
	T_STREQ(st.pools[0].name, "v4-198-18-8-0-24");
	T_EQ(st.pools[0].block_prefix, 28);
	/* again: the same pool, with no block size or the same one */
	T_EQ(ipam_pool_ensure(&st, &c, 0, &existed, NULL), 0);
	T_CHECK(existed);
	T_EQ(ipam_pool_ensure(&st, &c, 28, &existed, NULL), 0);
	T_EQ(st.n_pools, 1);
	/* another block size for it: refused, naming the one it has */
	struct err e = {0};
	T_EQ(ipam_pool_ensure(&st, &c, 26, &existed, &e), -EEXIST);
	T_CHECK(strstr(e.msg, "exists with block size /28") != NULL);
	/* an overlapping pool is ipam_pool_add's refusal */
	ipam_cidr_parse(&c, "198.18.0.0/16", NULL);
	T_CHECK(ipam_pool_ensure(&st, &c, 0, &existed, NULL) < 0);
	T_CHECK(!existed);
	T_EQ(st.n_pools, 1);
	ipam_state_free(&st);
}

static void test_judge(void)
{
	struct ipam_live l;
	ipam_live_init(&l);
	struct ipam_attrs a;
	char why[256];
	memset(&a, 0, sizeof(a));
	snprintf(a.ns, sizeof(a.ns), "default");
	snprintf(a.vmi_name, sizeof(a.vmi_name), "vm-a");
	T_EQ(ipam_owner_judge(&l, &a, why, sizeof(why)), IPAM_OWNER_RESERVED);
	snprintf(a.pod, sizeof(a.pod), "launcher");
	T_EQ(ipam_owner_judge(&l, &a, why, sizeof(why)), IPAM_OWNER_UNKNOWN);
	l.known = true;
	T_EQ(ipam_owner_judge(&l, &a, why, sizeof(why)), IPAM_OWNER_GONE);
	struct ipam_live_obj vm = {.ns = "default", .name = "vm-a", .uid = "u"};
	T_EQ(ipam_live_add_vm(&l, &vm), 0);
	T_EQ(ipam_owner_judge(&l, &a, why, sizeof(why)), IPAM_OWNER_ALIVE);
	T_STREQ(why, "VM default/vm-a exists");
	/* an owner pod counts only with its uid (a new pod of the same name is not it) */
	struct ipam_attrs b;
	memset(&b, 0, sizeof(b));
	snprintf(b.ns, sizeof(b.ns), "default");
	snprintf(b.vmi_name, sizeof(b.vmi_name), "vm-b");
	snprintf(b.pod, sizeof(b.pod), "launcher-b");
	snprintf(b.active.ns, sizeof(b.active.ns), "default");
	snprintf(b.active.name, sizeof(b.active.name), "launcher-b");
	snprintf(b.active.uid, sizeof(b.active.uid), "uid-old");
	live_pod(&l, "launcher-b", "uid-new", NULL);
	T_EQ(ipam_owner_judge(&l, &b, why, sizeof(why)), IPAM_OWNER_GONE);
	snprintf(b.active.uid, sizeof(b.active.uid), "uid-new");
	T_EQ(ipam_owner_judge(&l, &b, why, sizeof(why)), IPAM_OWNER_ALIVE);
	l.pods[0].done = true; /* Succeeded/Failed pods are not alive */
	T_EQ(ipam_owner_judge(&l, &b, why, sizeof(why)), IPAM_OWNER_GONE);
	ipam_live_free(&l);
}

static int64_t fixed_time(void *user, const char *id)
{
	(void)id;
	return *(const int64_t *)user;
}

/* One state with every kind of problem; the live view knows pods a, c and dup. */
static void planted(struct ipam_state *st, struct ipam_live *l)
{
	ipam_state_init(st);
	ipam_live_init(l);
	l->known = true;
	pool(st, "198.18.0.0/24", 26);
	pod_alloc(st, "198.18.0.2", "kvnet.a", "a");	    /* healthy */
	pod_alloc(st, "198.18.0.3", "kvnet.gone", "gone");  /* leaked */
	vm_alloc(st, "198.18.0.4", "vm-x", "uid-x");	    /* VM gone: leaked */
	vm_alloc(st, "198.18.0.5", "vm-r", NULL);	    /* reservation */
	pod_alloc(st, "198.18.0.6", "kvnet.c", "c");	    /* handle lost, pod alive */
	pod_alloc(st, "198.18.0.7", "kvnet.d", "d");	    /* handle lost, pod gone */
	T_EQ(ipam_handle_unlink(st, "kvnet.c", NULL), 0);
	T_EQ(ipam_handle_unlink(st, "kvnet.d", NULL), 0);
	struct ip_addr stale = ip("198.18.0.50");
	T_EQ(ipam_handle_link(st, "kvnet.stale", &stale), 0);
	st->blocks[0].used += 3;
	live_pod(l, "a", "uid-a", "198.18.0.2");
	live_pod(l, "c", "uid-c", "198.18.0.6");
	live_pod(l, "dup", "uid-dup", "198.18.0.2");
}

static void test_check_finds_each_kind_and_repairs(void)
{
	struct ipam_state st;
	struct ipam_live l;
	planted(&st, &l);
	int64_t created = 1000;
	struct ipam_check_opts o = {.live = &l, .now = 1000 + 299, .vm_grace = 300,
				    .handle_time = fixed_time, .user = &created};
	struct ipam_report r;
	T_EQ(ipam_report_check(&st, &o, &r, NULL), 0);
	/* within the grace period the gone VM is not reported */
	T_EQ(r.within_grace, 1);
	T_EQ(r.reservations, 1);
	T_EQ(r.n, 6);
	ipam_report_free(&r);
	o.now = 1000 + 300;
	T_EQ(ipam_report_check(&st, &o, &r, NULL), 0);
	static const struct {
		enum ipam_problem_kind k;
		const char *ip;
		enum ipam_repair rep;
	} want[] = {
	    {IPAM_P_LEAKED, "198.18.0.3", IPAM_R_RELEASE},
	    {IPAM_P_LEAKED, "198.18.0.4", IPAM_R_RELEASE},
	    {IPAM_P_NO_HANDLE, "198.18.0.6", IPAM_R_RELINK},
	    {IPAM_P_NO_HANDLE, "198.18.0.7", IPAM_R_RELEASE},
	    {IPAM_P_BLOCK_COUNT, NULL, IPAM_R_RECOUNT},
	    {IPAM_P_HANDLE_STALE, "198.18.0.50", IPAM_R_UNLINK},
	    {IPAM_P_DUPLICATE, "198.18.0.2", IPAM_R_NONE},
	};
	T_EQ(r.n, 7);
	for (unsigned i = 0; i < r.n && i < 7; i++) {
		char as[64] = "";
		if (r.p[i].has_ip)
			ipam_addr_str(&r.p[i].ip, as, sizeof(as));
		if (!T_EQ(r.p[i].kind, want[i].k) || !T_EQ(r.p[i].repair, want[i].rep) ||
		    !T_STREQ(as, want[i].ip ? want[i].ip : ""))
			t_note("problem %u: %s", i, r.p[i].detail);
	}
	T_EQ(r.p[4].stored, 9);
	T_EQ(r.p[4].actual, 6);

	/* report JSON round trip */
	struct json_w w;
	json_w_init_grow(&w, 1 << 20);
	T_EQ(ipam_report_write(&r, &w, NULL), 0);
	struct ipam_report back;
	T_EQ(ipam_report_parse(&back, w.buf, w.len, NULL), 0);
	T_EQ(back.n, r.n);
	T_EQ(back.vm_grace, 300);
	for (unsigned i = 0; i < r.n; i++)
		T_CHECK(ipam_problem_current(&back, &r.p[i]));
	json_w_free(&w);

	/* repairs: everything but the duplicate; then only the duplicate is left */
	for (unsigned i = 0; i < back.n; i++) {
		int rc = ipam_report_repair(&st, &back.p[i], NULL);
		T_EQ(rc, back.p[i].repair == IPAM_R_NONE ? -EPERM : 0);
	}
	T_EQ(ipam_check(&st, NULL), 0);
	struct ipam_report after;
	T_EQ(ipam_report_check(&st, &o, &after, NULL), 0);
	T_EQ(after.n, 1);
	T_EQ(after.p[0].kind, IPAM_P_DUPLICATE);
	/* the pod alive again keeps its address; the lost handle came back */
	const struct ipam_handle *h = ipam_handle_find(&st, "kvnet.c");
	T_CHECK(h && h->n == 1);
	struct ip_addr a3 = ip("198.18.0.3");
	T_CHECK(ipam_lookup_ip(&st, &a3) == NULL);
	/* a second repair of the same problem finds nothing to do */
	T_EQ(ipam_report_repair(&st, &back.p[0], NULL), -ENOENT);
	ipam_report_free(&after);
	ipam_report_free(&back);
	ipam_report_free(&r);
	ipam_live_free(&l);
	ipam_state_free(&st);
}

/* A problem of an older report may be repaired while it is current; a leak whose owner
 * came back only with force, and only while its address is still the handle's. */
static void test_problem_repairable(void)
{
	struct ipam_state st;
	struct ipam_live l;
	planted(&st, &l);
	struct ipam_check_opts o = {.live = &l, .now = 0, .vm_grace = 0};
	struct ipam_report old, now;
	T_EQ(ipam_report_check(&st, &o, &old, NULL), 0);
	T_CHECK(old.n == 7 && old.p[0].kind == IPAM_P_LEAKED && old.p[5].kind == IPAM_P_HANDLE_STALE);
	if (old.n != 7)
		goto out;
	T_CHECK(ipam_problem_repairable(&old, &st, &old.p[0], false));
	/* pod "gone" is back: its leak is no longer current */
	live_pod(&l, "gone", "uid-gone", "198.18.0.3");
	T_EQ(ipam_report_check(&st, &o, &now, NULL), 0);
	T_CHECK(!ipam_problem_current(&now, &old.p[0]));
	T_CHECK(!ipam_problem_repairable(&now, &st, &old.p[0], false));
	T_CHECK(ipam_problem_repairable(&now, &st, &old.p[0], true));
	/* force does not revive other kinds: the stale handle entry, once unlinked */
	T_EQ(ipam_report_repair(&st, &old.p[5], NULL), 0);
	ipam_report_free(&now);
	T_EQ(ipam_report_check(&st, &o, &now, NULL), 0);
	T_CHECK(!ipam_problem_repairable(&now, &st, &old.p[5], true));
	/* nor a leak whose address went meanwhile */
	struct ip_addr a3 = ip("198.18.0.3");
	T_EQ(ipam_release_ip(&st, &a3, NULL), 0);
	T_CHECK(!ipam_problem_repairable(&now, &st, &old.p[0], true));
	ipam_report_free(&now);
out:
	ipam_report_free(&old);
	ipam_live_free(&l);
	ipam_state_free(&st);
}

/* A reserved VM address with mac, on network net. */
static void mac_alloc(struct ipam_state *st, const char *a, const char *net, const char *vm,
		      const char *mac)
{
	struct ipam_attrs at;
	char h[IPAM_NAME_MAX + 1];
	memset(&at, 0, sizeof(at));
	snprintf(at.ns, sizeof(at.ns), "default");
	snprintf(at.vmi_name, sizeof(at.vmi_name), "%s", vm);
	snprintf(at.mac, sizeof(at.mac), "%s", mac);
	ipam_handle_vm(h, net, "default", vm, NULL);
	struct ip_addr x = ip(a);
	T_EQ(ipam_reserve_ip(st, h, &x, &at, NULL), 0);
}

/* Two VMs of one network with one MAC (what two racing reserves can leave): reported once,
 * at the later address, naming the other VM; not for one VM's two addresses nor across
 * networks; no automatic repair; the kind survives the report round trip. */
static void test_duplicate_mac(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "198.18.0.0/24", 26);
	pool(&st, "2001:db8::/120", 122);
	mac_alloc(&st, "198.18.0.30", "kvnet", "vm-b", "02:00:00:00:00:AA");
	mac_alloc(&st, "198.18.0.10", "kvnet", "vm-a", "02:00:00:00:00:aa");
	mac_alloc(&st, "2001:db8::10", "kvnet", "vm-a", "02:00:00:00:00:aa");
	mac_alloc(&st, "198.18.0.20", "net2", "vm-c", "02:00:00:00:00:aa");
	mac_alloc(&st, "198.18.0.40", "kvnet", "vm-d", "02:00:00:00:00:dd");
	mac_alloc(&st, "2001:db8::40", "kvnet", "vm-d", "02:00:00:00:00:dd");
	struct ipam_report r;
	T_EQ(ipam_report_check(&st, NULL, &r, NULL), 0);
	T_EQ(r.n, 1);
	if (r.n == 1) {
		char as[64];
		T_EQ(r.p[0].kind, IPAM_P_DUP_MAC);
		T_EQ(r.p[0].repair, IPAM_R_NONE);
		T_STREQ(ipam_addr_str(&r.p[0].ip, as, sizeof(as)), "198.18.0.30");
		T_STREQ(r.p[0].handle, "kvnet.vmi.default.vm-b");
		T_STREQ(r.p[0].detail, "mac 02:00:00:00:00:AA of 198.18.0.30 "
				       "(kvnet.vmi.default.vm-b) is also held by VM default/vm-a "
				       "(198.18.0.10, handle kvnet.vmi.default.vm-a) on network kvnet");
		T_STREQ(ipam_problem_name(r.p[0].kind), "DuplicateMAC");
		T_EQ(ipam_report_repair(&st, &r.p[0], NULL), -EPERM);
		struct json_w w;
		json_w_init_grow(&w, 1 << 16);
		T_EQ(ipam_report_write(&r, &w, NULL), 0);
		struct ipam_report back;
		T_EQ(ipam_report_parse(&back, w.buf, w.len, NULL), 0);
		T_CHECK(back.n == 1 && back.p[0].kind == IPAM_P_DUP_MAC &&
			ipam_problem_current(&r, &back.p[0]));
		ipam_report_free(&back);
		json_w_free(&w);
	}
	ipam_report_free(&r);
	/* a third VM with it: reported too */
	mac_alloc(&st, "198.18.0.50", "kvnet", "vm-e", "02:00:00:00:00:aa");
	T_EQ(ipam_report_check(&st, NULL, &r, NULL), 0);
	T_CHECK(r.n == 2 && !strcmp(r.p[1].handle, "kvnet.vmi.default.vm-e"));
	ipam_report_free(&r);
	ipam_state_free(&st);
}

/* The L2 problems: each kind once, in address order, none without the L2Networks but the
 * handle-in-the-wrong-pool one, no repair; the kinds survive the report round trip. */
static void test_l2_problems(void)
{
	struct ipam_state st;
	ipam_state_init(&st);
	pool(&st, "198.18.0.0/24", 26);
	pool(&st, "198.18.100.0/24", 26);
	pool(&st, "198.18.101.0/24", 26);
	for (unsigned i = 1; i < st.n_pools; i++)
		ipam_pool_set_network(&st, &st.pools[i], "vlan100");
	mac_alloc(&st, "198.18.0.5", "vlan100", "vm-s", "");	  /* ordinary pool */
	mac_alloc(&st, "198.18.100.1", "vlan100", "vm-g", "");  /* the gateway */
	mac_alloc(&st, "198.18.100.9", "kvnet", "vm-m", "");	  /* another network's */
	mac_alloc(&st, "198.18.100.10", "vlan100", "vm-a", ""); /* healthy */
	mac_alloc(&st, "198.18.101.5", "vlan100", "vm-o", "");  /* outside the subnet */
	struct ipam_l2net n;
	memset(&n, 0, sizeof(n));
	snprintf(n.name, sizeof(n.name), "vlan100");
	n.has_v4 = true;
	T_EQ(ipam_cidr_parse(&n.v4, "198.18.100.0/24", NULL), 0);
	n.gw4 = ip("198.18.100.1");
	struct ipam_check_opts o = {.l2nets = &n, .n_l2nets = 1};
	struct ipam_report r;
	T_EQ(ipam_report_check(&st, &o, &r, NULL), 0);
	const enum ipam_problem_kind want[] = {IPAM_P_L2_NETWORK, IPAM_P_L2_GATEWAY,
					       IPAM_P_L2_NETWORK, IPAM_P_L2_SUBNET};
	const char *wip[] = {"198.18.0.5", "198.18.100.1", "198.18.100.9", "198.18.101.5"};
	T_EQ(r.n, 4);
	for (unsigned i = 0; i < r.n && i < 4; i++) {
		char as[64];
		T_EQ(r.p[i].kind, want[i]);
		T_EQ(r.p[i].repair, IPAM_R_NONE);
		T_STREQ(ipam_addr_str(&r.p[i].ip, as, sizeof(as)), wip[i]);
	}
	if (r.n == 4) {
		T_STREQ(r.p[3].detail, "198.18.101.5 (handle vlan100.vmi.default.vm-o) is outside "
				       "L2Network vlan100's subnet 198.18.100.0/24");
		T_STREQ(ipam_problem_name(r.p[1].kind), "L2GatewayAllocated");
		struct json_w w;
		json_w_init_grow(&w, 1 << 16);
		T_EQ(ipam_report_write(&r, &w, NULL), 0);
		struct ipam_report back;
		T_EQ(ipam_report_parse(&back, w.buf, w.len, NULL), 0);
		T_CHECK(back.n == 4 && back.p[3].kind == IPAM_P_L2_SUBNET &&
			ipam_problem_current(&r, &back.p[3]));
		ipam_report_free(&back);
		json_w_free(&w);
	}
	ipam_report_free(&r);
	/* without the L2Networks: only the other network's handle in vlan100's pool */
	T_EQ(ipam_report_check(&st, NULL, &r, NULL), 0);
	T_CHECK(r.n == 1 && r.p[0].kind == IPAM_P_L2_NETWORK &&
		!strcmp(r.p[0].handle, "kvnet.vmi.default.vm-m"));
	ipam_report_free(&r);
	ipam_state_free(&st);
}

static void test_no_api_no_leaks(void)
{
	struct ipam_state st;
	struct ipam_live l;
	planted(&st, &l);
	struct ipam_check_opts o = {.live = NULL, .now = 0, .vm_grace = 0};
	struct ipam_report r;
	T_EQ(ipam_report_check(&st, &o, &r, NULL), 0);
	T_CHECK(!r.api_checked);
	for (unsigned i = 0; i < r.n; i++) {
		T_CHECK(r.p[i].kind != IPAM_P_LEAKED && r.p[i].kind != IPAM_P_DUPLICATE);
		if (r.p[i].kind == IPAM_P_NO_HANDLE) /* owner unknown: keep it, relink */
			T_EQ(r.p[i].repair, IPAM_R_RELINK);
	}
	ipam_report_free(&r);
	ipam_live_free(&l);
	ipam_state_free(&st);
}

static void test_report_parse_refuses(void)
{
	static const char *const bad[] = {
	    "", "[]", "{\"kind\":\"Other\",\"problems\":[]}",
	    "{\"kind\":\"IPAMCheckReport\"}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"Nope\",\"repair\":\"none\"}]}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"LeakedAllocation\","
	    "\"repair\":\"release\"}]}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"LeakedAllocation\","
	    "\"ip\":\"198.18.0.300\",\"repair\":\"release\"}]}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"BlockCountMismatch\","
	    "\"block\":\"198.18.0/26\",\"repair\":\"recount\"}]}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"LeakedAllocation\","
	    "\"ip\":\"198.18.0.3\",\"repair\":\"release\",\"extra\":1}]}",
	    "{\"kind\":\"IPAMCheckReport\",\"problems\":[{\"kind\":\"HandleWithoutAllocation\","
	    "\"handle\":\"Bad_Handle\",\"repair\":\"unlink\"}]}",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ipam_report r;
		struct err e = {0};
		if (!T_CHECK(ipam_report_parse(&r, bad[i], strlen(bad[i]), &e) < 0))
			t_note("accepted: %s", bad[i]);
		T_CHECK(e.msg[0] != 0);
		ipam_report_free(&r);
	}
}

int main(void)
{
	T_RUN(test_usage_and_u128);
	T_RUN(test_pool_delete);
	T_RUN(test_pool_ensure);
	T_RUN(test_problem_repairable);
	T_RUN(test_duplicate_mac);
	T_RUN(test_l2_problems);
	T_RUN(test_judge);
	T_RUN(test_check_finds_each_kind_and_repairs);
	T_RUN(test_no_api_no_leaks);
	T_RUN(test_report_parse_refuses);
	return t_done();
}
