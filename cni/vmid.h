/* vmid — VM identity: is the pod of a CNI call a KubeVirt virt-launcher pod of a real
 * VMI (design.md pillar 1), which slot of the VM's handle it may hold, and the IPAM
 * operations of VM pods (kubernetes datastore only; with the file datastore every pod is
 * ordinary).
 *
 * A pod with the kubevirt.io/domain annotation and a controller ownerReference to a
 * kubevirt.io/v1 VirtualMachineInstance is a VM pod: the VMI is fetched and its uid must
 * equal the reference's, and the annotation must name it, else ADD fails (a forged or
 * stale reference never gets a VM's IP).
 *
 * Who may hold the VM's IP. The ownerReference proves nothing (anyone who may create
 * pods in the namespace can write it), so ADD (and CHECK) then ask kube_kv_decide()
 * (kube/kubevirt.h, where the rule and every KubeVirt field it trusts are listed):
 *   active owner      KubeVirt names the pod: the VMI's status.activePods has its uid,
 *                     or status.migrationState names it the target (targetPod,
 *                     migrationUid = its label) of a completed migration; or no other
 *                     owner is alive: the active slot is empty or this pod's, or the pod
 *                     it names is gone (404 / another uid), finished (Succeeded/Failed)
 *                     or being deleted — one GET of that pod, made inside the IPAM update
 *                     that replaces the slot under a precondition on its uid;
 *   migration target  label kubevirt.io/migrationJobUID = U, and the VMIM with
 *                     metadata.uid U (GET by the pod's kubevirt.io/migrationJobName when
 *                     that one has the uid, else a LIST of the namespace's VMIMs) is for
 *                     this VMI (spec.vmiName), not finished (phase, deletionTimestamp,
 *                     the VMI's migrationState for U), and its / the VMI's migrationState
 *                     names this node (targetNode) and this pod (targetPod) once set;
 *   anything else     code 999 "VM pod rejected", naming the pod, the VM and the rule
 *                     that refused; nothing is created and no slot changes.
 * The agent must apply kube_kv_decide() the same way before an announcement makes a
 * target live (agent/mignode.c).
 *
 * A VM pod uses handle "<network>.vmi.<ns>.<vm>":
 *   ADD  same addresses as before (restart, eviction) and the pod takes the active owner
 *        slot; a migration target needs the addresses to exist, takes the alternate slot
 *        and gets no host route (dark)
 *   DEL  empties the slot this pod holds (precondition: its uid); releases the addresses
 *        only when both slots are empty and the VM is gone or being deleted (a standalone
 *        VMI: the VMI); a VM restart recreates the VMI, which keeps them
 * A pod that is not found is ordinary. IPAMConfig kubeVirtVMAddressPersistence Disabled
 * makes a VM pod ordinary and rejects the ADD of a migration target; read with one GET
 * once a pod looks like a VM pod, and checked again inside the IPAM update. With the
 * runtime's pod annotations (capability io.kubernetes.cri.pod-annotations) lacking
 * kubevirt.io/domain the pod is ordinary without any API call. */
#ifndef KVNET_CNI_VMID_H
#define KVNET_CNI_VMID_H

#include "cni/netconf.h"
#include "cni/store.h"
#include "kube/client.h"
#include "kube/types.h"
#include "lib/json.h"

#include <stdbool.h>

#define CNI_VM_TOKENS 4096 /* JSON tokens for one pod / VMI / VM object */
#define CNI_ANN_DOMAIN "kubevirt.io/domain"		    /* VM pod annotation */
#define CNI_LBL_MIGRATION "kubevirt.io/migrationJobUID" /* target pod label */

/* Who a pod is, as far as IPAM cares: a VM pod (verified against its VMI) or not. */
struct cni_vm {
	bool is_vm;			  /* a virt-launcher pod of a verified VMI */
	bool target;			  /* it is a migration target */
	bool release;			  /* DEL: the VM (or standalone VMI) is deleted or
					   * being deleted: free the IPs once unowned */
	char vm[IPAM_NAME_MAX + 1];	  /* VM / VMI name (kubevirt.io/domain) */
	char pod_uid[IPAM_UID_MAX + 1];	  /* the pod's uid */
	char vmi_uid[IPAM_UID_MAX + 1];	  /* the VMI's uid */
	char vm_uid[IPAM_UID_MAX + 1];	  /* the owning VM's uid ("" standalone VMI) */
	char vmim_uid[IPAM_UID_MAX + 1];  /* kubevirt.io/migrationJobUID of a target */
	bool persist_off;		  /* a VM pod treated as ordinary: the IPAMConfig
					   * says kubeVirtVMAddressPersistence Disabled */
	bool check_holder;		  /* ADD: active only if the active slot's holder
					   * is not alive (KubeVirt does not name this pod);
					   * cni_op_vm_alloc GETs the holder */
	struct kube_client *kc;		  /* the API client for that GET (not owned) */
	char why[384];			  /* why kube_kv_decide() gave this pod its slot */
};

/* A fetched object: the response, its tokens and an arena for its strings. */
struct cni_obj {
	struct kube_resp resp;		       /* the answer (body owned) */
	struct json_doc doc;		       /* parsed body */
	struct json_tok tok[CNI_VM_TOKENS];    /* its tokens */
	char mem[16384];		       /* arena memory */
	struct kube_arena a;		       /* arena over mem */
};

/* GET one object into o. 0, -ENOENT (404), or -1 with f filled (code 11: the API server
 * could not be asked or gave an unusable answer). */
int cni_get_obj(struct kube_client *kc, const struct kube_res *res, const char *ns,
		const char *name, struct cni_obj *o, struct cni_fail *f);

/* Decide who the pod of r is (see the top of this file) into vm. del: a mismatch is no
 * error, no slot is decided, and vm->release says whether the VM is going away. 0
 * (vm->is_vm false for an ordinary pod), or -1 with f (a refusal: code 999 "VM pod
 * rejected"). API calls: none when the runtime's pod annotations lack kubevirt.io/domain;
 * else GET pod, and for a VM pod GET IPAMConfig, GET VMI; a migration target adds GET
 * VMIM (or LIST VMIMs), DEL adds GET VM. */
int cni_vm_resolve(struct cni_store *cs, const struct cni_req *r, bool del,
		   struct cni_vm *vm, struct cni_fail *f);

/* ipam_ds_fn (arg = struct cni_ipam with vm set): ADD of a VM pod — allocate (or keep)
 * the VM's addresses and take the active slot; a migration target needs existing
 * addresses and takes the alternate slot. With vm->check_holder the active slot's pod is
 * looked at first (one GET): -EADDRINUSE when it is alive (cni_ipam_run: code 999 "VM
 * pod rejected"). The slot's previous holder is replaced under a precondition on its
 * uid, so two racing ADDs cannot both win. */
int cni_op_vm_alloc(struct ipam_state *st, void *arg, struct err *e);
/* ipam_ds_fn: DEL of a VM pod — empty the slot this pod holds, release the addresses
 * when the VM is going away and both slots are empty (c->released = 1 then). */
int cni_op_vm_release(struct ipam_state *st, void *arg, struct err *e);

#endif
