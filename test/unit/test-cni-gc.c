/* Unit tests for cni/gc's decision (cni_gc_op) over an IPAM state built in memory: which
 * handles GC releases, which owner slots it empties, and what it must leave alone. */
#include "cni/gc.h"
#include "cni/netconf.h"
#include "cni/store.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A GC request of network "net" on node "n1" listing the attachments in json. */
static void gc_req(struct cni_req *r, const char *attachments)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"net\",\"type\":\"kvnet\","
		 "\"ipv4_pools\":[\"198.18.0.0/24\"],\"cni.dev/valid-attachments\":%s}",
		 attachments);
	cni_req_init(r);
	r->log.fd = -1;
	r->text = strdup(text);
	r->len = strlen(text);
	struct cni_fail f;
	T_EQ(cni_conf_parse(r, true, &f), 0);
	snprintf(r->node, sizeof(r->node), "n1");
}

/* Allocate an ordinary pod's address: handle net.CID (or another network's). */
static void pod(struct ipam_state *st, const char *network, const char *cid, const char *node)
{
	char h[IPAM_NAME_MAX + 1];
	struct ipam_attrs a;
	memset(&a, 0, sizeof(a));
	snprintf(a.node, sizeof(a.node), "%s", node);
	snprintf(a.ifname, sizeof(a.ifname), "eth0");
	snprintf(a.container_id, sizeof(a.container_id), "%s", cid);
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n;
	struct err e = { 0 };
	T_EQ(ipam_handle_pod(h, network, cid, &e), 0);
	T_EQ(ipam_alloc(st, h, node, IPAM_V4, &a, out, &n, &e), 0);
}

/* A VM's handle with its launcher pod (cid, node) in the active slot ("" = empty). */
static void vm(struct ipam_state *st, const char *name, const char *cid, const char *node,
	       bool standalone)
{
	char h[IPAM_NAME_MAX + 1];
	struct err e = { 0 };
	T_EQ(ipam_handle_vm(h, "net", "default", name, &e), 0);
	struct ipam_attrs a;
	memset(&a, 0, sizeof(a));
	snprintf(a.ns, sizeof(a.ns), "default");
	snprintf(a.node, sizeof(a.node), "%s", node);
	snprintf(a.vmi_name, sizeof(a.vmi_name), "%s", name);
	snprintf(a.vmi_uid, sizeof(a.vmi_uid), "vmi-uid-%s", name);
	if (!standalone)
		snprintf(a.vm_uid, sizeof(a.vm_uid), "vm-uid-%s", name);
	struct ip_addr out[IPAM_HANDLE_IPS_MAX];
	unsigned n;
	T_EQ(ipam_alloc(st, h, node, IPAM_V4, &a, out, &n, &e), 0);
	if (!cid[0])
		return;
	struct ipam_owner o;
	memset(&o, 0, sizeof(o));
	snprintf(o.ns, sizeof(o.ns), "default");
	snprintf(o.name, sizeof(o.name), "virt-launcher-%s", name);
	snprintf(o.uid, sizeof(o.uid), "pod-uid-%s", cid);
	snprintf(o.node, sizeof(o.node), "%s", node);
	snprintf(o.cid, sizeof(o.cid), "%s", cid);
	snprintf(o.ifname, sizeof(o.ifname), "eth0");
	T_EQ(ipam_owner_set(st, h, IPAM_ACTIVE, &o, NULL, &e), 0);
}

static bool has(const struct ipam_state *st, const char *handle)
{
	return ipam_handle_find(st, handle) != NULL;
}

static void setup(struct ipam_state *st)
{
	struct err e = { 0 };
	struct ipam_cidr c;
	ipam_state_init(st);
	T_EQ(ipam_cidr_parse(&c, "198.18.0.0/24", &e), 0);
	T_EQ(ipam_pool_add(st, "p4", &c, 0, NULL, 0, &e), 0);
}

static void test_ordinary(void)
{
	struct ipam_state st;
	setup(&st);
	pod(&st, "net", "live", "n1");	  /* listed: kept */
	pod(&st, "net", "lost", "n1");	  /* not listed, this node: released */
	pod(&st, "net", "remote", "n2");  /* another node's runtime decides: kept */
	pod(&st, "other", "lost2", "n1"); /* another network: kept */
	struct cni_req r;
	gc_req(&r, "[{\"containerID\":\"live\",\"ifname\":\"eth0\"}]");
	struct cni_gc g;
	memset(&g, 0, sizeof(g));
	struct cni_ipam c;
	memset(&c, 0, sizeof(c));
	c.r = &r;
	c.gc = &g;
	struct err e = { 0 };
	T_EQ(cni_gc_op(&st, &c, &e), 0);
	T_EQ(c.released, 1);
	T_CHECK(has(&st, "net.live"));
	T_CHECK(!has(&st, "net.lost"));
	T_CHECK(has(&st, "net.remote"));
	T_CHECK(has(&st, "other.lost2"));
	/* the same pod listed with another ifname is not the same attachment */
	cni_req_fini(&r);
	gc_req(&r, "[{\"containerID\":\"live\",\"ifname\":\"net1\"}]");
	T_EQ(cni_gc_op(&st, &c, &e), 0);
	T_CHECK(!has(&st, "net.live"));
	cni_req_fini(&r);
	ipam_state_free(&st);
}

static void test_vm(void)
{
	struct ipam_state st;
	setup(&st);
	vm(&st, "vm-run", "cur", "n1", false);	   /* its pod listed: untouched */
	vm(&st, "vm-stopped", "old", "n1", false); /* pod gone, VM exists: slot emptied, IPs kept */
	vm(&st, "vm-gone", "old2", "n1", false);   /* pod gone and the VM gone: released */
	vm(&st, "vm-away", "rem", "n2", true);	   /* another node's pod: its slot is not ours */
	struct cni_req r;
	gc_req(&r, "[{\"containerID\":\"cur\",\"ifname\":\"eth0\"}]");
	struct cni_gc g;
	memset(&g, 0, sizeof(g));
	g.gone = calloc(1, sizeof(*g.gone));
	g.n_gone = g.cap_gone = 1;
	snprintf(g.gone[0], sizeof(*g.gone), "net.vmi.default.vm-gone");
	struct cni_ipam c;
	memset(&c, 0, sizeof(c));
	c.r = &r;
	c.gc = &g;
	struct err e = { 0 };
	T_EQ(cni_gc_op(&st, &c, &e), 0);
	T_EQ(g.cleared, 2);
	T_EQ(c.released, 1);
	T_CHECK(has(&st, "net.vmi.default.vm-run"));
	T_CHECK(has(&st, "net.vmi.default.vm-stopped"));
	T_CHECK(!has(&st, "net.vmi.default.vm-gone"));
	T_CHECK(has(&st, "net.vmi.default.vm-away"));
	const struct ipam_handle *h = ipam_handle_find(&st, "net.vmi.default.vm-stopped");
	const struct ipam_attrs *a = h ? ipam_lookup_ip(&st, &h->ip[0]) : NULL;
	T_CHECK(a && !a->active.uid[0]);
	h = ipam_handle_find(&st, "net.vmi.default.vm-run");
	a = h ? ipam_lookup_ip(&st, &h->ip[0]) : NULL;
	T_CHECK(a && strcmp(a->active.uid, "pod-uid-cur") == 0);
	/* a VM never loses its IPs for a missing attachment while it exists: GC again */
	T_EQ(cni_gc_op(&st, &c, &e), 0);
	T_CHECK(has(&st, "net.vmi.default.vm-stopped"));
	free(g.gone);
	cni_req_fini(&r);
	ipam_state_free(&st);
}

int main(void)
{
	T_RUN(test_ordinary);
	T_RUN(test_vm);
	return t_done();
}
