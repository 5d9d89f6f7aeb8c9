/* mode — the data-plane mode interface: how a pod's interface is wired on the node.
 *
 * The network configuration's "mode" names one (default "routed", cni/routed.c: a veth
 * pair, /32 and /128 host routes, proxy ARP, the gateway 169.254.1.1 and
 * fe80::ecee:eeff:feee:eeee on the host end). A second mode (the L2 bridge) implements
 * the same four operations in its own file and adds one line to the table in mode.c;
 * nothing else in the plugin changes. The plugin (cni/plugin.c) does IPAM, identity and
 * the agent registration around a mode; a mode only touches the kernel.
 *
 * Host interfaces are named by cni_host_ifname() in every mode: "kv" + 11 hex digits of
 * SHA-256(namespace \n pod \n ifname), or of the container ID when the pod is unknown,
 * so the agent and `ip link` can tell kvnet's interfaces by name. */
#ifndef KVNET_CNI_MODE_H
#define KVNET_CNI_MODE_H

#include "cni/netconf.h"
#include "net/link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cni_ipam;
struct err;
struct nl_sock;

/* The namespaces and sockets of one invocation. */
struct cni_ns {
	int nsfd;	      /* the pod's network namespace (CNI_NETNS), or -1 */
	struct nl_sock *pod;  /* rtnetlink socket inside it, or NULL */
	struct nl_sock *host; /* rtnetlink socket in the host namespace */
};

/* What ADD built, so that the result can report it and a failure can undo it. */
struct cni_plumb {
	char host[LINK_NAMESZ]; /* host interface name (cni_host_ifname), set by the caller */
	int host_idx;		/* its ifindex */
	uint8_t host_mac[6];	/* its MAC */
	int pod_idx;		/* pod interface ifindex */
	uint8_t pod_mac[6];	/* pod interface MAC */
	bool created;		/* the host interface exists */
	bool dark;		/* set by the caller: no host route (a VM's migration target) */
};

struct cni_mode {
	const char *name; /* the configuration's "mode" value */
	/* ADD: create r->ifname in the pod with c's addresses (c->mac when c->has_mac),
	 * its gateway and default routes, and the host side; fill p. 0 or -errno with e;
	 * on failure p says what exists (undo removes it). */
	int (*add)(const struct cni_req *r, const struct cni_ns *ns, const struct cni_ipam *c,
		   struct cni_plumb *p, struct err *e);
	/* Remove what a failed or abandoned add created. Never fails. */
	void (*undo)(const struct cni_req *r, const struct cni_ns *ns, const struct cni_plumb *p);
	/* DEL: remove r->ifname from the pod (ns->pod may be NULL: the namespace is gone)
	 * and the host side. Idempotent: what is gone already is no error. */
	void (*del)(const struct cni_req *r, const struct cni_ns *ns);
	/* CHECK: the kernel holds exactly what ADD made for c's addresses (dark: no host
	 * route). 0, or -1 with f (code 999, naming what is missing or extra). */
	int (*check)(const struct cni_req *r, const struct cni_ns *ns, const struct cni_ipam *c,
		     bool dark, struct cni_fail *f);
};

extern const struct cni_mode cni_mode_routed;
extern const struct cni_mode cni_mode_l2; /* cni/l2.h */

/* The mode called name, or NULL. */
const struct cni_mode *cni_mode_find(const char *name);
/* The known modes' names, comma-separated, into buf (for messages). */
void cni_mode_names(char *buf, size_t cap);
/* The host interface name of r's pod interface (LINK_NAMESZ bytes). */
void cni_host_ifname(const struct cni_req *r, char *out);

#endif
