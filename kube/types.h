/* types — small typed views of the Kubernetes and KubeVirt objects kvnet reads.
 *
 * No object models: a view picks the few fields kvnet uses out of a parsed document
 * (kube/json) and decodes their strings into a caller arena, NUL-terminated. An absent
 * (or JSON null) optional field is NULL / false; a field of the wrong JSON type is an
 * error naming its path. Label and annotation maps stay as tokens, looked up on demand,
 * as do owner references (so any number of them is handled).
 *
 *   char mem[8192]; struct kube_arena a; struct kube_pod pod;
 *   kube_arena_init(&a, mem, sizeof(mem));
 *   if (kube_pod_view(&doc, obj, &pod, &a, &e) == 0)
 *       domain = kube_annotation(&pod.meta, "kubevirt.io/domain", &a);
 *
 * A view is valid as long as the document text, its tokens and the arena are.
 */
#ifndef KVNET_KUBE_TYPES_H
#define KVNET_KUBE_TYPES_H

#include "lib/ip.h"
#include "lib/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

struct kube_arena {
	char *buf;    /* the caller's memory (not owned) */
	size_t cap;   /* its size */
	size_t used;  /* bytes handed out */
};

/* Object names as the API validates them (so that nothing else ever reaches a URL
 * path): a DNS-1123 label (namespaces; 1..63 of [a-z0-9-], alphanumeric at both ends),
 * a DNS-1123 subdomain (pods and most objects; 1..253 bytes, dot-separated parts of
 * [a-z0-9-], alphanumeric at both ends of each), and a uid as the API assigns them (1..64
 * of hex digits and '-', starting with a hex digit). */
bool kube_name_is_label(const char *s);
bool kube_name_is_subdomain(const char *s);
bool kube_uid_valid(const char *s);

void kube_arena_init(struct kube_arena *a, char *buf, size_t cap);
/* Decode string token i into the arena: the string, or NULL when it does not fit
 * (-ENOSPC), is no string or holds a NUL byte. */
const char *kube_arena_str(struct kube_arena *a, const struct json_doc *d, int i);

/* metadata: name, namespace, uid, resourceVersion, ... (every object has one). */
struct kube_meta {
	const struct json_doc *doc;      /* the document (not owned) */
	int obj;                         /* token of the object */
	const char *name;                /* metadata.name (required) */
	const char *generate_name;       /* metadata.generateName or NULL */
	const char *namespace_;          /* metadata.namespace or NULL (cluster-scoped) */
	const char *uid;                 /* metadata.uid or NULL */
	const char *resource_version;    /* metadata.resourceVersion or NULL */
	const char *deletion_timestamp;  /* metadata.deletionTimestamp or NULL */
	const char *api_version;         /* apiVersion or NULL (list items omit it) */
	const char *kind;                /* kind or NULL (list items omit it) */
	int labels;                      /* token of metadata.labels, or -1 */
	int annotations;                 /* token of metadata.annotations, or -1 */
	int owner_refs;                  /* token of metadata.ownerReferences, or -1 */
	unsigned n_owner_refs;           /* its element count */
};

struct kube_owner_ref {
	const char *api_version;    /* e.g. "kubevirt.io/v1" */
	const char *kind;           /* e.g. "VirtualMachineInstance" */
	const char *name;           /* owner name */
	const char *uid;            /* owner UID */
	bool controller;            /* controller: true */
	bool block_owner_deletion;  /* blockOwnerDeletion: true */
};

/* Fill m from object token obj; name is required (an error without it). */
int kube_meta_view(const struct json_doc *d, int obj, struct kube_meta *m,
		   struct kube_arena *a, struct err *e);
/* Value of label / annotation `key`, decoded into the arena; NULL when absent. */
const char *kube_label(const struct kube_meta *m, const char *key, struct kube_arena *a);
const char *kube_annotation(const struct kube_meta *m, const char *key, struct kube_arena *a);
/* Presence of an annotation (the value may be "", which is what counts for some). */
bool kube_has_annotation(const struct kube_meta *m, const char *key);
/* Owner reference number idx: 0, -ENOENT past the end, -EINVAL if malformed (e). */
int kube_owner_ref(const struct kube_meta *m, unsigned idx, struct kube_owner_ref *o,
		   struct kube_arena *a, struct err *e);
/* The owner reference with controller: true: 0, or -ENOENT when there is none,
 * -EINVAL when there are two or a malformed one. */
int kube_controller_ref(const struct kube_meta *m, struct kube_owner_ref *o,
			struct kube_arena *a, struct err *e);

struct kube_pod {
	struct kube_meta meta;  /* metadata */
	const char *node_name;  /* spec.nodeName or NULL (not yet scheduled) */
	const char *phase;      /* status.phase or NULL */
	const char *pod_ip;     /* status.podIP or NULL */
};

int kube_pod_view(const struct json_doc *d, int obj, struct kube_pod *p, struct kube_arena *a,
		  struct err *e);

/* status.migrationState of a VMI, or a VMIM's copy. */
struct kube_migration_state {
	bool present;                             /* the object has a migrationState */
	const char *migration_uid;                /* migrationUid */
	const char *source_node;                  /* sourceNode */
	const char *source_pod;                   /* sourcePod */
	const char *target_node;                  /* targetNode */
	const char *target_pod;                   /* targetPod */
	const char *target_node_address;          /* targetNodeAddress */
	const char *target_node_domain_ready_ts;  /* targetNodeDomainReadyTimestamp */
	bool target_node_domain_detected;         /* targetNodeDomainDetected */
	const char *start_ts;                     /* startTimestamp */
	const char *end_ts;                       /* endTimestamp */
	const char *mode;                         /* mode: PreCopy | PostCopy */
	bool completed;                           /* completed */
	bool failed;                              /* failed */
};

#define KUBE_VMI_IFACES_MAX 8
#define KUBE_IFACE_IPS_MAX 4

struct kube_vmi_iface {
	const char *name;              /* name (the VM network) */
	const char *interface_name;    /* interfaceName (in the guest) or NULL */
	const char *mac;               /* mac or NULL */
	const char *ip;                /* ipAddress or NULL */
	const char *ips[KUBE_IFACE_IPS_MAX]; /* ipAddresses (first ones) */
	unsigned n_ips;                /* how many of ips[] are set */
};

struct kube_vmi {
	struct kube_meta meta;                            /* metadata */
	const char *node_name;                            /* status.nodeName or NULL */
	const char *phase;                                /* status.phase or NULL */
	struct kube_migration_state mig;                  /* status.migrationState */
	int active_pods;                                  /* token of status.activePods (pod
							   * uid -> node name), or -1 */
	struct kube_vmi_iface ifaces[KUBE_VMI_IFACES_MAX]; /* status.interfaces (first ones) */
	unsigned n_ifaces;                                /* how many of ifaces[] are set */
};

int kube_vmi_view(const struct json_doc *d, int obj, struct kube_vmi *v, struct kube_arena *a,
		  struct err *e);
/* True when the VMI's status.activePods has the key pod_uid (virt-controller lists there
 * the Running pods it counts as the VMI's; a migration target is among them while the
 * migration runs). False for a NULL or empty uid. */
bool kube_vmi_active_pod(const struct kube_vmi *v, const char *pod_uid);

struct kube_vm {
	struct kube_meta meta;     /* metadata (deletion_timestamp: being deleted) */
	int running;               /* spec.running: 1 true, 0 false, -1 absent */
	const char *run_strategy;  /* spec.runStrategy or NULL */
};

int kube_vm_view(const struct json_doc *d, int obj, struct kube_vm *v, struct kube_arena *a,
		 struct err *e);

struct kube_vmim {
	struct kube_meta meta;            /* metadata */
	const char *vmi_name;             /* spec.vmiName (required) */
	const char *phase;                /* status.phase or NULL */
	struct kube_migration_state mig;  /* status.migrationState (may lag the VMI's) */
};

int kube_vmim_view(const struct json_doc *d, int obj, struct kube_vmim *v,
		   struct kube_arena *a, struct err *e);

#define KUBE_NODE_ADDRS_MAX 8

struct kube_node_addr {
	const char *type;     /* InternalIP, ExternalIP, Hostname, ... */
	const char *address;  /* the address */
};

struct kube_node {
	struct kube_meta meta;                          /* metadata */
	struct kube_node_addr addrs[KUBE_NODE_ADDRS_MAX]; /* status.addresses (first ones) */
	unsigned n_addrs;                               /* how many of addrs[] are set */
};

int kube_node_view(const struct json_doc *d, int obj, struct kube_node *n,
		   struct kube_arena *a, struct err *e);
/* First address of the given type, or NULL. */
const char *kube_node_address(const struct kube_node *n, const char *type);

/* ---- Multus network-status (k8s.v1.cni.cncf.io/network-status) --------------------- */

#define KUBE_NET_STATUS "k8s.v1.cni.cncf.io/network-status" /* the pod annotation */
#define KUBE_NET_IPS_MAX 8  /* addresses kept per attachment */
#define KUBE_NET_NAME_MAX 320 /* "NS/NAD" with the NUL */

/* One secondary attachment of a pod, as Multus reports it. */
struct kube_net_attach {
	char name[KUBE_NET_NAME_MAX];	      /* "name": the NAD, "NS/NAD" or "NAD" */
	char iface[16];			      /* "interface" in the pod ("net1"), or "" */
	uint8_t mac[6];			      /* "mac", when has_mac */
	bool has_mac;			      /* a valid "mac" was given */
	struct ip_addr ips[KUBE_NET_IPS_MAX]; /* "ips" (a prefix length is dropped) */
	unsigned n_ips;			      /* how many */
};

/* Find in network-status annotation text[0..len) (a JSON list of {name, interface, ips,
 * mac, default}; untrusted, fuzzed) the secondary attachment (not "default": true) that is
 * the port of a VM with MAC mac and addresses ips[0..n_ips): the entry whose mac is mac,
 * else (an entry without a mac) one holding one of ips. 0 with *out, -ENOENT when no
 * entry is that port, -EINVAL with e when the text is not a list of objects with a
 * string "name". Entries with a malformed address or mac are not that port. Pure. */
int kube_net_status_find(const char *text, size_t len, const uint8_t mac[6],
			 const struct ip_addr *ips, unsigned n_ips, struct kube_net_attach *out,
			 struct err *e);

#endif
