/* informers — the agent's world model: one informer (kube/informer.h) per object kind
 * some module asked for, over one API client, with the kubernetes datastore.
 *
 *   agent_informers_new(loop, log, node, &notify, user)
 *   agent_informers_want(w, AGENT_K_VMIM)      every module, before start
 *   agent_informers_start(w, conf, e)          kubeconfig, API client, informers
 *
 * Kinds nobody wants are never watched and count as synced (empty). AGENT_K_POD is
 * this node's pods only (field selector spec.nodeName); AGENT_K_POD_ALL is every pod of
 * the cluster (NetworkPolicy peers), wanted only by the policy module. While the API server is down the
 * stores keep the last state; the informers relist by themselves. A kind the API server
 * does not serve (404: KubeVirt or kvnet's CRDs not installed) counts as synced, empty,
 * except pods, nodes and namespaces (built in: a 404 is a real error), so the node still gets its routes; the informer keeps retrying.
 * Events go to the owner (the hub) through struct agent_informers_notify, which fans
 * them out to its subscribers. Object views are valid only during the call.
 */
#ifndef KVNET_AGENT_INFORMERS_H
#define KVNET_AGENT_INFORMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct err;
struct ev_loop;
struct kube_client;
struct kube_obj;
struct log;
struct agent_informers;

/* Which informer an object event comes from. */
enum agent_kind {
	AGENT_K_POD,	/* pods on this node */
	AGENT_K_VMI,	/* kubevirt.io VirtualMachineInstances */
	AGENT_K_VMIM,	/* kubevirt.io VirtualMachineInstanceMigrations */
	AGENT_K_BLOCK,	/* kvnet.io IPAMBlocks */
	AGENT_K_HANDLE, /* kvnet.io IPAMHandles */
	AGENT_K_NODE,	/* nodes */
	AGENT_K_NETPOL,	/* networking.k8s.io NetworkPolicies, every namespace */
	AGENT_K_NAMESPACE, /* namespaces (their labels, for namespaceSelector) */
	AGENT_K_POD_ALL, /* pods of every node (peers for NetworkPolicy selectors) */
	AGENT_K_L2NET,	/* kvnet.io L2Networks */
	AGENT_K_MNETPOL, /* k8s.cni.cncf.io MultiNetworkPolicies, every namespace */
	AGENT_K_COUNT,	/* number of kinds */
};

/* The kind's plural resource name ("pods", "vmis", ...), for logs and metrics. */
const char *agent_kind_name(enum agent_kind k);

/* Told of every informer event; either may be NULL. */
struct agent_informers_notify {
	/* old is NULL for an add, obj is NULL for a delete */
	void (*object)(void *user, enum agent_kind kind, const struct kube_obj *old,
		       const struct kube_obj *obj);
	/* informer `kind` applied a LIST (the first time or again); all: every wanted
	 * informer has synced at least once */
	void (*synced)(void *user, enum agent_kind kind, bool all);
};

/* A world model watching nothing yet, for node `node` (copied). NULL when out of
 * memory. log is not owned. */
struct agent_informers *agent_informers_new(struct ev_loop *loop, struct log *log,
					    const char *node,
					    const struct agent_informers_notify *notify,
					    void *user);
/* Stop and free every informer, the API client and the kubeconfig. NULL is ignored. */
void agent_informers_free(struct agent_informers *w);

/* Ask for kind k to be watched (idempotent; before agent_informers_start). */
void agent_informers_want(struct agent_informers *w, enum agent_kind k);
/* Load the kubeconfig of c ([kubernetes] kubeconfig, context), make the API client and
 * start an informer per wanted kind. 0 or -errno with e. */
int agent_informers_start(struct agent_informers *w, const struct conf *c, struct err *e);

/* The API client (NULL before start), the API server URL of the kubeconfig loaded
 * (NULL before start), where the kubeconfig came from (NULL before start). */
struct kube_client *agent_informers_client(const struct agent_informers *w);
const char *agent_informers_server(const struct agent_informers *w);

/* Object `kind` by namespace ("" or NULL cluster-scoped) and name; a walk over all; the
 * count. Nothing for a kind not watched. Views valid until the loop runs the informer
 * again. */
bool agent_informers_get(const struct agent_informers *w, enum agent_kind kind,
			 const char *ns, const char *name, struct kube_obj *out);
void agent_informers_each(const struct agent_informers *w, enum agent_kind kind,
			  void (*fn)(void *user, const struct kube_obj *obj), void *user);
size_t agent_informers_count(const struct agent_informers *w, enum agent_kind kind);
/* True once informer `kind` synced, or when nobody wants it; all: every kind. */
bool agent_informers_synced(const struct agent_informers *w, enum agent_kind kind);
bool agent_informers_all_synced(const struct agent_informers *w);
/* True when kind is watched (wanted and started). */
bool agent_informers_watched(const struct agent_informers *w, enum agent_kind kind);
/* Retries after failed lists or watches, summed over the informers. */
uint64_t agent_informers_reconnects(const struct agent_informers *w);

#endif
