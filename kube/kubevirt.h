/* kubevirt — who may hold a VM's addresses: the rule, as pure functions over the typed
 * views of kube/types.h (no I/O; the CNI plugin and the agent feed it what they read).
 *
 * The ownerReference check (cni/vmid.h) only proves that a pod *claims* a VMI: anyone who
 * may create pods in the namespace can write that reference. Past it, a VM pod is
 *
 *   the migration target  when it carries the label kubevirt.io/migrationJobUID = U and
 *       a VirtualMachineInstanceMigration in the pod's namespace has metadata.uid U,
 *       spec.vmiName = the VMI, is not finished (status.phase not Succeeded/Failed, no
 *       deletionTimestamp, and the VMI's status.migrationState for U — migrationUid U —
 *       not completed/failed), and targets this node and this pod wherever KubeVirt
 *       already names a target: status.migrationState.targetNode / targetPod of the
 *       VMI (when its migrationUid is U) and of the VMIM;
 *   the active owner  when KubeVirt says so — the VMI's status.activePods has the pod's
 *       uid (unlabelled pods; a labelled one only once its VMIM Succeeded), or the VMI's
 *       status.migrationState names it (targetPod, migrationUid = its label) as the
 *       target of a completed (completed true, failed false) migration — or when no other
 *       owner is alive: the active slot is empty or held by this very pod, or the pod
 *       it names no longer exists (404, or its name now has another uid), is finished
 *       (status.phase Succeeded/Failed) or is being deleted (metadata.deletionTimestamp);
 *   refused  otherwise: never a silent takeover.
 *
 * Trusted fields, all written by KubeVirt's controllers (a pod's owner cannot write a
 * VMI's or a VMIM's status): VMI metadata.name/uid, status.activePods,
 * status.migrationState.{migrationUid, targetNode, targetPod, completed, failed}; VMIM
 * metadata.uid/deletionTimestamp, spec.vmiName, status.phase,
 * status.migrationState.{targetNode, targetPod}; the slot holder pod's metadata.uid,
 * deletionTimestamp and status.phase. The pod's own label only says which VMIM to look
 * for. status.activePods lists Running pods the VMI controls (by ownerReference), so it
 * vouches only for a pod that got past an earlier ADD: a refused pod never runs.
 */
#ifndef KVNET_KUBE_KUBEVIRT_H
#define KVNET_KUBE_KUBEVIRT_H

#include "kube/types.h"

#include <stdbool.h>
#include <stddef.h>

#define KUBE_KV_LBL_MIGRATION "kubevirt.io/migrationJobUID" /* target pod label: VMIM uid */
#define KUBE_KV_ANN_MIGRATION "kubevirt.io/migrationJobName" /* target pod: VMIM name */

/* What a VM pod may hold. */
enum kube_kv_role {
	KUBE_KV_REFUSE,	     /* nothing: the ADD fails, no slot changes */
	KUBE_KV_ACTIVE,	     /* the active owner slot (host route) */
	KUBE_KV_TARGET,	     /* the alternate owner slot (a migration target, dark) */
	KUBE_KV_NEED_HOLDER, /* active only if the active slot's holder is not alive: look
			      * at it (kube_kv_holder_of) and ask kube_kv_holder_rule */
};

/* The active slot's holder, as one GET of its pod showed it. */
enum kube_kv_holder {
	KUBE_KV_HOLDER_UNKNOWN,	 /* not looked at */
	KUBE_KV_HOLDER_NONE,	 /* the slot is empty or held by the asking pod itself */
	KUBE_KV_HOLDER_GONE,	 /* its pod does not exist (404, or the name has another uid) */
	KUBE_KV_HOLDER_FINISHED, /* its pod's phase is Succeeded or Failed */
	KUBE_KV_HOLDER_DELETING, /* its pod is being deleted */
	KUBE_KV_HOLDER_ALIVE,	 /* its pod exists, runs or waits to, and is not deleted */
};

/* The question: may pod (a VM pod of vmi, ownerReference and uid already verified) hold
 * the VM's addresses, and in which slot? */
struct kube_kv_ask {
	const struct kube_pod *pod;   /* the asking pod (required; metadata.uid needed) */
	const struct kube_vmi *vmi;   /* its VMI (required) */
	const char *mig_uid;	      /* its label kubevirt.io/migrationJobUID, or NULL */
	const struct kube_vmim *vmim; /* the VMIM of the pod's namespace whose metadata.uid
				       * is mig_uid (kube_kv_vmim_is), or NULL: none exists */
	const char *node;	      /* this node's name (required for a target) */
	enum kube_kv_holder holder;   /* the active slot's holder, or UNKNOWN */
	const char *holder_pod;	      /* the holder as "ns/name" for messages, or NULL */
};

/* Decide (see the top of this file). Writes why it decided into why[0..cap) (one
 * sentence naming the rule and the KubeVirt fields it read; pod and VM are named by
 * the caller). KUBE_KV_NEED_HOLDER only when q->holder is UNKNOWN and the answer
 * depends on it. Pure. */
enum kube_kv_role kube_kv_decide(const struct kube_kv_ask *q, char *why, size_t cap);

/* The "no other owner is alive" rule alone: ACTIVE unless holder is ALIVE (or UNKNOWN:
 * NEED_HOLDER); holder_pod names it in why. Pure. */
enum kube_kv_role kube_kv_holder_rule(enum kube_kv_holder holder, const char *holder_pod,
				      char *why, size_t cap);

/* Classify the active slot's holder: slot_uid is the uid the slot holds ("" or NULL:
 * empty), self_uid the asking pod's, p the slot's pod as a GET by its namespace/name
 * returned it (NULL: 404). Pure. */
enum kube_kv_holder kube_kv_holder_of(const char *slot_uid, const char *self_uid,
				      const struct kube_pod *p);

/* True when m is the VMIM with metadata.uid uid (NULL/empty uid: false). */
bool kube_kv_vmim_is(const struct kube_vmim *m, const char *uid);

/* True when m is over: status.phase Succeeded or Failed, or being deleted. */
bool kube_kv_vmim_finished(const struct kube_vmim *m);

/* "refuse", "active", "target", "need-holder". */
const char *kube_kv_role_name(enum kube_kv_role r);

#endif
