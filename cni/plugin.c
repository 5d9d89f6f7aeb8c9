/* plugin — the CNI commands over a parsed request (plugin.h). */
#include "cni/plugin.h"

#include "agent/client.h"
#include "cni/l2.h"
#include "cni/mode.h"
#include "conf/conf.h"
#include "kube/kubeconfig.h"
#include "cni/result.h"
#include "cni/store.h"
#include "cni/vmid.h"
#include "lib/err.h"
#include "net/link.h"
#include "net/netns.h"
#include "net/nl.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Finish r->out (a document written by fn-specific code); code 999 when it does not fit. */
static int finish_out(struct cni_req *r, struct cni_fail *f)
{
	struct err e = { 0 };
	r->has_out = true;
	if (json_w_finish(&r->out, &e) < 0)
		return cni_fail(f, CNI_E_INTERNAL, "result too large", "result: %s", e.msg);
	return 0;
}

/* The ADD result into r->out. */
static int put_out(struct cni_req *r, const struct cni_result *res, struct cni_fail *f)
{
	json_w_init_grow(&r->out, 65536);
	cni_result_write(&r->out, r, res);
	return finish_out(r, f);
}

/* Undo open_pod() and close the host socket (whatever of them is open). */
static void close_ns(struct cni_ns *ns)
{
	if (ns->host)
		nl_close(ns->host);
	if (ns->pod)
		nl_close(ns->pod);
	if (ns->nsfd >= 0)
		close(ns->nsfd);
	ns->host = ns->pod = NULL;
	ns->nsfd = -1;
}

/* netns_run() job: a netlink socket opened inside the namespace it runs in. */
static int open_sock_fn(void *arg, struct err *e)
{
	return nl_open(arg, NETLINK_ROUTE, e);
}

/* A netlink socket in namespace nsfd. The plugin is single-threaded, so it enters the
 * namespace itself and comes back (no helper thread to create). A failed return leaves
 * this thread in the pod's namespace: the caller must stop (it gets the error). */
static int open_sock_in(int nsfd, struct nl_sock **out, struct err *e)
{
	*out = NULL;
	return netns_run(nsfd, open_sock_fn, out, e);
}

/* True when nsfd is the network namespace this process runs in or init's (PID 1): the
 * host's own, never a pod's (same st_dev and st_ino as /proc/self/ns/net or
 * /proc/1/ns/net). *which names it. */
static bool host_netns(int nsfd, const char **which)
{
	static const char *const host[] = { "/proc/self/ns/net", "/proc/1/ns/net" };
	struct stat a, b;
	if (fstat(nsfd, &a) < 0)
		return false;
	for (unsigned i = 0; i < 2; i++)
		if (stat(host[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*which = host[i];
			return true;
		}
	return false;
}

/* Enter r's pod namespace: ns->nsfd and ns->pod (code 4 when CNI_NETNS is unusable or
 * is the host's own namespace). */
static int open_pod(const struct cni_req *r, struct cni_ns *ns, struct cni_fail *f)
{
	struct err e = { 0 };
	const char *which = NULL;
	ns->nsfd = netns_open(r->netns, &e);
	if (ns->nsfd < 0)
		return cni_fail(f, CNI_E_ENV, "invalid network namespace", "CNI_NETNS %s: %s",
				r->netns, e.msg);
	if (host_netns(ns->nsfd, &which)) {
		close_ns(ns);
		return cni_fail(f, CNI_E_ENV, "invalid network namespace",
				"CNI_NETNS %s is the host's own network namespace (the same as "
				"%s), not a pod's", r->netns, which);
	}
	if (open_sock_in(ns->nsfd, &ns->pod, &e) < 0) {
		close_ns(ns);
		return cni_fail(f, CNI_E_ENV, "invalid network namespace", "CNI_NETNS %s: %s",
				r->netns, e.msg);
	}
	return 0;
}

/* Register the endpoint with the node agent; with policy_setup_timeout_seconds > 0 wait
 * that long for "programmed", then fail or (policy_timeout_action continue) warn. No
 * timeout: an absent agent is fine (the plugin works alone). */
static int agent_register(const struct cni_req *r, const struct cni_ipam *c,
			  const struct cni_plumb *p, const struct cni_vm *vm, const char *server,
			  struct cni_fail *f)
{
	struct agent_req req;
	memset(&req, 0, sizeof(req));
	req.op = AGENT_OP_ADD;
	snprintf(req.node, sizeof(req.node), "%s", r->node);
	conf_datastore_ident_of(r->kube ? CONF_DATASTORE_KUBERNETES : CONF_DATASTORE_FILE,
				r->state_dir, server, req.datastore, sizeof(req.datastore));
	struct agent_ep *ep = &req.ep;
	snprintf(ep->cid, sizeof(ep->cid), "%s", r->cid);
	snprintf(ep->ifname, sizeof(ep->ifname), "%s", r->ifname);
	snprintf(ep->ns, sizeof(ep->ns), "%s", r->pod_ns);
	snprintf(ep->pod, sizeof(ep->pod), "%s", r->pod_name);
	snprintf(ep->uid, sizeof(ep->uid), "%s", vm->is_vm ? vm->pod_uid : r->pod_uid);
	snprintf(ep->veth, sizeof(ep->veth), "%s", p->host);
	snprintf(ep->handle, sizeof(ep->handle), "%s", c->handle);
	if (vm->is_vm)
		snprintf(ep->vm, sizeof(ep->vm), "%s", vm->vm);
	ep->target = p->dark;
	for (unsigned i = 0; i < c->n && ep->n_ip < AGENT_EP_IPS_MAX; i++)
		ep->ip[ep->n_ip++] = c->ip[i];
	unsigned ms = r->policy_timeout * 1000u;
	req.wait = ms > 0;
	struct agent_client ac;
	struct err e = { 0 };
	int rc = agent_client_open(&ac, r->agent_socket, &e);
	bool reached = rc == 0;
	if (rc == 0) {
		rc = agent_client_register(&ac, &req, ms, &e);
		agent_client_close(&ac);
	}
	if (rc == 0)
		return 0;
	if (rc == -EREMOTEIO) /* the agent refused: another node's or datastore's call */
		return cni_fail(f, CNI_E_CONFIG, "registration refused by the kvnet agent",
				"%s (node %s, datastore %s, agent socket %s)", e.msg, req.node,
				req.datastore, r->agent_socket);
	if (ms == 0) {
		if (rc != -ENOENT && rc != -ECONNREFUSED)
			log_msg(&r->log, LOG_LVL_WARN, "ADD %s %s: %s (not waiting: "
				"policy_setup_timeout_seconds is 0)", r->cid, r->ifname, e.msg);
		return 0;
	}
	if (r->policy_continue) {
		log_msg(&r->log, LOG_LVL_WARN, "ADD %s %s: %s; continuing without the agent's "
			"confirmation (policy_timeout_action continue)", r->cid, r->ifname, e.msg);
		return 0;
	}
	if (reached && agent_client_open(&ac, r->agent_socket, NULL) == 0) {
		agent_client_del(&ac, r->cid, r->ifname, 1000, NULL); /* the ADD is undone */
		agent_client_close(&ac);
	}
	return cni_fail(f, CNI_E_TRYLATER, "endpoint not programmed by the kvnet agent",
		    "%s (policy_setup_timeout_seconds %u, policy_timeout_action fail)", e.msg,
		    r->policy_timeout);
}

int cni_add(struct cni_req *r, struct cni_fail *f)
{
	if (cni_env_check(r, true, f) < 0)
		return -1;
	struct cni_ipam c;
	if (cni_ipam_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	struct cni_ns ns = { .nsfd = -1 };
	if (open_pod(r, &ns, f) < 0)
		return -1;
	int ret = -1;
	struct cni_store cs;
	bool cs_open = false;
	struct cni_vm vm;
	memset(&vm, 0, sizeof(vm));
	struct cni_l2 *l2 = NULL;
	if (r->kube || r->network[0]) {
		if (cni_store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
			goto out;
		cs_open = true;
	}
	if (r->network[0] && (!(l2 = malloc(sizeof(*l2))) || cni_l2_load(&cs, r, l2, f) < 0)) {
		if (!l2)
			cni_fail(f, CNI_E_INTERNAL, "out of memory", "L2Network %s", r->network);
		goto out;
	}
	if (r->kube) {
		if (cni_vm_resolve(&cs, r, false, &vm, f) < 0)
			goto out;
		c.persist_off = vm.persist_off;
		if (vm.is_vm) {
			if (ipam_handle_vm(c.handle, cni_ipam_net(r), r->pod_ns, vm.vm, &e) < 0) {
				cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "%s",
				     e.msg);
				goto out;
			}
			c.vm = &vm;
		}
	}
	struct link_info li;
	if (link_get(ns.pod, r->ifname, &li, &e) == 0) {
		cni_fail(f, CNI_E_ENV, "interface already exists",
		     "interface %s already exists in %s", r->ifname, r->netns);
		goto out;
	}
	if (nl_open(&ns.host, NETLINK_ROUTE, &e) < 0) {
		cni_fail(f, CNI_E_INTERNAL, "netlink unavailable", "%s", e.msg);
		goto out;
	}
	if (r->n_pools == 0) /* an L2Network without subnets: no IPAM, the runtime's MAC */
		cni_mac_pick(&c, NULL);
	else if (cni_ipam_run(r, cs_open ? &cs : NULL, c.vm ? cni_op_vm_alloc : cni_op_alloc,
			      true, &c, f) < 0)
		goto out;
	struct cni_plumb p;
	memset(&p, 0, sizeof(p));
	p.dark = vm.is_vm && vm.target;
	cni_host_ifname(r, p.host);
	err_clear(&e);
	bool plumbed = r->mode->add(r, &ns, &c, &p, &e) == 0;
	if (!plumbed)
		cni_fail(f, CNI_E_INTERNAL, "cannot set up the pod interface", "%s", e.msg);
	/* an L2 port is no routed endpoint: the agent's L2 module finds it in its bridge */
	if (!plumbed || (!r->l2 && agent_register(r, &c, &p, &vm, cs_open && cs.kc ? cs.kc->server
										  : NULL, f) < 0)) {
undo:
		r->mode->undo(r, &ns, &p);
		struct cni_fail f2;
		if (!c.existed && r->n_pools &&
		    cni_ipam_run(r, cs_open ? &cs : NULL, cni_op_release, true, &c, &f2) < 0)
			log_errorx(&r->log, "undo: %s", f2.det);
		goto out;
	}
	struct cni_result res = { .host_ifname = p.host, .host_mac = p.host_mac,
				  .ip = c.ip, .n_ip = c.n };
	memcpy(res.pod_mac, p.pod_mac, 6);
	uint8_t plen[IPAM_HANDLE_IPS_MAX];
	if (r->l2) { /* a secondary interface on the L2Network's subnets */
		for (unsigned i = 0; i < c.n; i++) {
			const struct l2_subnet *sn = c.ip[i].family == AF_INET ? &r->l2->def.v4
									 : &r->l2->def.v6;
			plen[i] = sn->set ? sn->prefix : c.ip[i].family == AF_INET ? 32 : 128;
		}
		res.plen = plen;
		res.secondary = true;
		res.gw4 = &r->l2->def.v4.gw;
		res.gw6 = &r->l2->def.v6.gw;
	}
	if (put_out(r, &res, f) < 0)
		goto undo;
	ret = 0;
	log_msg(&r->log, LOG_LVL_INFO, "ADD %s %s: %s handle %s%s", r->cid, r->ifname, p.host,
		c.handle, p.dark ? " (migration target, dark)" : "");
out:
	if (ret == 0 && r->done)
		r->done(r);
	if (cs_open)
		cni_store_close(&cs);
	free(l2);
	r->l2 = NULL;
	close_ns(&ns);
	return ret;
}

int cni_del(struct cni_req *r, struct cni_fail *f)
{
	if (cni_env_check(r, false, f) < 0)
		return -1;
	struct cni_ipam c;
	if (cni_ipam_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	/* the interface (the netns may be gone) */
	struct cni_ns ns = { .nsfd = -1 };
	const char *which = NULL;
	if (r->netns) {
		ns.nsfd = netns_open(r->netns, &e);
		if (ns.nsfd >= 0 && host_netns(ns.nsfd, &which)) {
			/* never remove CNI_IFNAME from the host: only the host side and IPAM */
			log_msg(&r->log, LOG_LVL_WARN, "DEL %s %s: CNI_NETNS %s is the host's own "
				"network namespace (%s): not touched", r->cid, r->ifname, r->netns,
				which);
			close(ns.nsfd);
			ns.nsfd = -1;
		}
		int rc = ns.nsfd >= 0 ? open_sock_in(ns.nsfd, &ns.pod, &e) : ns.nsfd;
		if (rc < 0 && ns.pod) { /* opened, but could not come back: stranded, stop */
			close_ns(&ns);
			return cni_fail(f, CNI_E_INTERNAL, "network namespace", "%s", e.msg);
		}
		err_clear(&e);
	}
	if (nl_open(&ns.host, NETLINK_ROUTE, &e) < 0)
		ns.host = NULL;
	err_clear(&e);
	r->mode->del(r, &ns);
	close_ns(&ns);
	struct agent_client ac; /* unregister from the agent, best effort */
	if (agent_client_open(&ac, r->agent_socket, NULL) == 0) {
		if (agent_client_del(&ac, r->cid, r->ifname, 2000, &e) < 0)
			log_msg(&r->log, LOG_LVL_WARN, "DEL %s %s: %s", r->cid, r->ifname, e.msg);
		agent_client_close(&ac);
	}
	if (!r->kube) {
		if (cni_ipam_run(r, NULL, cni_op_release, true, &c, f) < 0)
			return -1;
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: released %s", r->cid, r->ifname,
			c.handle);
		if (r->done)
			r->done(r);
		return 0;
	}
	struct cni_store cs;
	if (cni_store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct cni_vm vm;
	int ret = -1;
	if (cni_vm_resolve(&cs, r, true, &vm, f) < 0)
		goto out;
	if (vm.is_vm) {
		if (ipam_handle_vm(c.handle, cni_ipam_net(r), r->pod_ns, vm.vm, &e) < 0) {
			cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
			goto out;
		}
		c.vm = &vm;
	}
	if (cni_ipam_run(r, &cs, c.vm ? cni_op_vm_release : cni_op_release, true, &c,
			 f) < 0)
		goto out;
	if (c.vm)
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: VM pod left %s%s", r->cid, r->ifname,
			c.handle, c.released ? ", released" : "");
	else
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: released %s", r->cid, r->ifname,
			c.handle);
	ret = 0;
out:
	if (ret == 0 && r->done)
		r->done(r);
	cni_store_close(&cs);
	return ret;
}

/* CHECK once the L2Network (mode l2) is loaded. */
static int check_loaded(struct cni_req *r, struct cni_fail *f)
{
	if (cni_env_check(r, true, f) < 0)
		return -1;
	if (r->vidx < 2)
		return cni_fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "CHECK needs cniVersion 0.4.0 or later, got %s", r->version);
	if (r->prev < 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "CHECK needs prevResult");
	struct cni_ipam c;
	if (cni_ipam_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	struct cni_store cs;
	if (cni_store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct cni_vm vm;
	memset(&vm, 0, sizeof(vm));
	if (r->kube && cni_vm_resolve(&cs, r, false, &vm, f) < 0) {
		cni_store_close(&cs);
		return -1;
	}
	if (vm.is_vm && ipam_handle_vm(c.handle, cni_ipam_net(r), r->pod_ns, vm.vm, &e) < 0) {
		cni_store_close(&cs);
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
	}
	struct ipam_state st;
	int rc = ipam_ds_read(&cs.ds, &st, &e);
	cni_store_close(&cs);
	if (rc < 0) {
		ipam_state_free(&st);
		return cni_fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	const struct ipam_handle *h = ipam_handle_find(&st, c.handle);
	if (h) {
		c.n = h->n;
		memcpy(c.ip, h->ip, sizeof(c.ip));
		const struct ipam_attrs *ra = h->n ? ipam_lookup_ip(&st, &h->ip[0]) : NULL;
		c.has_mac = ra && ra->mac[0] && ipam_mac_parse(ra->mac, c.mac, NULL, NULL) == 0;
	}
	ipam_state_free(&st);
	if (!h && r->l2 && r->n_pools == 0) /* an L2Network without IPAM: the MAC only */
		cni_mac_pick(&c, NULL);
	else if (!h)
		return cni_fail(f, CNI_E_INTERNAL, "check failed", "ipam: no addresses held by %s",
			    c.handle);

	/* prevResult ips must be exactly what IPAM holds */
	int ips = json_get(&r->doc, r->prev, "ips");
	unsigned seen = 0;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &r->doc, ips);
	while (json_iter_next(&it, &k, &v)) {
		char s[80];
		int at = json_get(&r->doc, v, "address");
		struct ip_addr a;
		uint8_t plen;
		if (at < 0 || json_str(&r->doc, at, s, sizeof(s)) < 0 ||
		    !ip_parse_prefix(s, &a, &plen))
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "prevResult.ips: an entry has no valid address");
		bool held = false;
		for (unsigned i = 0; i < c.n; i++) {
			struct ip_addr b = c.ip[i];
			held |= ip_eq(&a, &b);
		}
		if (!held)
			return cni_fail(f, CNI_E_INTERNAL, "check failed",
				    "prevResult address %s is not held by %s", s, c.handle);
		seen++;
	}
	if (seen != c.n)
		return cni_fail(f, CNI_E_INTERNAL, "check failed",
			    "prevResult lists %u addresses, IPAM holds %u for %s", seen, c.n,
			    c.handle);

	struct cni_ns ns = { .nsfd = -1 };
	if (open_pod(r, &ns, f) < 0)
		return -1;
	int ret;
	if (nl_open(&ns.host, NETLINK_ROUTE, &e) < 0)
		ret = cni_fail(f, CNI_E_INTERNAL, "netlink unavailable", "%s", e.msg);
	else
		ret = r->mode->check(r, &ns, &c, vm.target, f);
	close_ns(&ns);
	return ret;
}

int cni_check(struct cni_req *r, struct cni_fail *f)
{
	if (!r->network[0])
		return check_loaded(r, f);
	struct cni_store cs;
	if (cni_store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct cni_l2 *l2 = malloc(sizeof(*l2));
	int rc = l2 ? cni_l2_load(&cs, r, l2, f)
		    : cni_fail(f, CNI_E_INTERNAL, "out of memory", "L2Network %s", r->network);
	cni_store_close(&cs);
	if (rc == 0)
		rc = check_loaded(r, f);
	free(l2);
	r->l2 = NULL;
	return rc;
}

int cni_status(struct cni_req *r, struct cni_fail *f)
{
	if (r->vidx < 4)
		return cni_fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "STATUS needs cniVersion 1.1.0, got %s", r->version);
	struct cni_store cs;
	struct err e = { 0 };
	if (cni_store_open(&cs, r, CNI_E_UNAVAILABLE, f) < 0)
		return -1;
	struct ipam_state st;
	int rc = ipam_ds_read(&cs.ds, &st, &e);
	ipam_state_free(&st);
	cni_store_close(&cs);
	if (rc < 0)
		return cni_fail(f, CNI_E_UNAVAILABLE, "datastore unavailable", "%s datastore: %s",
			    r->kube ? "kubernetes" : "file", e.msg);
	return 0;
}

int cni_version(struct cni_req *r, struct cni_fail *f)
{
	json_w_init_grow(&r->out, 4096);
	cni_version_write(&r->out, r);
	return finish_out(r, f);
}

