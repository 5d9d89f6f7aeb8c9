/* vmid — VM identity and VM pods' IPAM operations (vmid.h). */
#include "cni/vmid.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET one object into o. 0, -ENOENT (404), or -1 with f filled (code 11: the API server
 * could not be asked or gave an unusable answer). */
int cni_get_obj(struct kube_client *kc, const struct kube_res *res, const char *ns,
		   const char *name, struct cni_obj *o, struct cni_fail *f)
{
	struct err e = { 0 };
	memset(&o->resp, 0, sizeof(o->resp));
	int rc = kube_get(kc, res, ns, name, &o->resp, &e);
	if (rc == -ENOENT) {
		kube_resp_free(&o->resp);
		return -ENOENT;
	}
	if (rc < 0) {
		kube_resp_free(&o->resp);
		return cni_fail(f, CNI_E_TRYLATER, "API server unavailable", "%s", e.msg);
	}
	if (json_parse(&o->doc, o->resp.body, o->resp.len, o->tok, CNI_VM_TOKENS, 0, &e) < 0) {
		cni_fail(f, CNI_E_TRYLATER, "bad API answer", "GET %s %s/%s: %s", res->plural, ns,
		     name, e.msg);
		kube_resp_free(&o->resp);
		return -1;
	}
	kube_arena_init(&o->a, o->mem, sizeof(o->mem));
	return 0;
}

/* Copy s into a uid/name field; false when it does not fit. */
static bool cpy(char *dst, size_t cap, const char *s)
{
	return s && (size_t)snprintf(dst, cap, "%s", s) < cap;
}

/* True when the runtime passed the pod's annotations (capability
 * io.kubernetes.cri.pod-annotations) and kubevirt.io/domain is not among them: the pod
 * is certainly no VM pod, no API call needed. */
static bool annots_say_ordinary(const struct cni_req *r)
{
	return r->annots >= 0 && json_get(&r->doc, r->annots, CNI_ANN_DOMAIN) < 0;
}

/* The IPAMConfig's persistence setting, for a pod that looks like a VM pod: *off set
 * when Disabled. -1 with f filled when it cannot be read. API calls: one GET. */
static int persist_disabled(struct cni_store *cs, const struct cni_req *r, bool *off,
			    struct cni_fail *f)
{
	struct err e = { 0 };
	struct ipam_config cfg;
	int rc = ipam_ds_kube_config(&cs->dk, &cfg, &e);
	if (rc == -EAGAIN)
		return cni_fail(f, CNI_E_TRYLATER, "API server unavailable", "pod %s/%s: %s",
			    r->pod_ns, r->pod_name, e.msg);
	if (rc < 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid IPAMConfig", "pod %s/%s: %s", r->pod_ns,
			    r->pod_name, e.msg);
	*off = cfg.vm_persistence == IPAM_PERSIST_DISABLED;
	return 0;
}

/* Decide whether the pod of r is a VM pod (design.md pillar 1): it carries the
 * kubevirt.io/domain annotation and a controller ownerReference to a kubevirt.io/v1
 * VirtualMachineInstance. Then the VMI is fetched and its uid must equal the reference's;
 * anything else fails ADD (a forged or stale reference never gets the VM's IP). A pod
 * that does not exist or is no VM pod is ordinary (vm->is_vm false). For DEL (del true)
 * a mismatch is not an error, and vm->release says whether the VM is gone or being
 * deleted (standalone VMI: the VMI). When the IPAMConfig says
 * kubeVirtVMAddressPersistence Disabled, a VM pod is ordinary (vm->persist_off) and the
 * ADD of a migration target fails. API calls: none when the runtime's pod annotations
 * lack kubevirt.io/domain; else GET pod, and for a VM pod GET IPAMConfig, GET VMI; DEL
 * adds GET VM. */
int cni_vm_resolve(struct cni_store *cs, const struct cni_req *r, bool del,
		      struct cni_vm *vm, struct cni_fail *f)
{
	memset(vm, 0, sizeof(*vm));
	if (!r->pod_ns[0] || !r->pod_name[0] || annots_say_ordinary(r))
		return 0;
	struct kube_client *kc = cs->c;
	struct err e = { 0 };
	struct cni_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "pod %s/%s", r->pod_ns,
			    r->pod_name);
	int ret = -1;
	int rc = cni_get_obj(kc, &kube_res_pods, r->pod_ns, r->pod_name, o, f);
	if (rc == -ENOENT) {
		free(o);
		return 0;
	}
	if (rc < 0) {
		free(o);
		return -1;
	}
	struct kube_pod pod;
	struct kube_owner_ref ref;
	if (kube_pod_view(&o->doc, 0, &pod, &o->a, &e) < 0) {
		cni_fail(f, CNI_E_TRYLATER, "bad API answer", "pod %s/%s: %s", r->pod_ns,
		     r->pod_name, e.msg);
		goto out;
	}
	const char *dom = kube_annotation(&pod.meta, CNI_ANN_DOMAIN, &o->a);
	rc = kube_controller_ref(&pod.meta, &ref, &o->a, &e);
	if (rc == -EINVAL) {
		cni_fail(f, CNI_E_INTERNAL, "invalid pod", "pod %s/%s: %s", r->pod_ns, r->pod_name,
		     e.msg);
		goto out;
	}
	if (!dom || rc < 0 || !ref.kind || strcmp(ref.kind, "VirtualMachineInstance") != 0 ||
	    !ref.api_version || strcmp(ref.api_version, "kubevirt.io/v1") != 0) {
		ret = 0; /* an ordinary pod */
		goto out;
	}
	const char *mig = kube_label(&pod.meta, CNI_LBL_MIGRATION, &o->a);
	bool off = false;
	if (persist_disabled(cs, r, &off, f) < 0)
		goto out;
	if (off) {
		if (mig && !del) {
			cni_fail(f, CNI_E_INTERNAL, "migration target rejected",
			     "pod %s/%s: migration target (label " CNI_LBL_MIGRATION
			     ") of VM %s, but IPAMConfig " IPAM_CONFIG_NAME
			     " sets kubeVirtVMAddressPersistence: Disabled, so the VM has no "
			     "address to move (enable it or migrate without kvnet)",
			     r->pod_ns, r->pod_name, dom);
			goto out;
		}
		vm->persist_off = true; /* an ordinary pod: handle by container ID */
		ret = 0;
		goto out;
	}
	if (!ref.name || strcmp(dom, ref.name) != 0) {
		cni_fail(f, CNI_E_INTERNAL, "VM pod rejected",
		     "pod %s/%s: annotation kubevirt.io/domain '%s' does not name its controller "
		     "VirtualMachineInstance '%s'", r->pod_ns, r->pod_name, dom,
		     ref.name ? ref.name : "");
		goto out;
	}

	if (!cpy(vm->vm, sizeof(vm->vm), dom) || !cpy(vm->pod_uid, sizeof(vm->pod_uid),
						       pod.meta.uid) ||
	    !cpy(vm->vmi_uid, sizeof(vm->vmi_uid), ref.uid) ||
	    (mig && !cpy(vm->vmim_uid, sizeof(vm->vmim_uid), mig)) || !vm->pod_uid[0] ||
	    !vm->vmi_uid[0]) {
		cni_fail(f, CNI_E_INTERNAL, "VM pod rejected",
		     "pod %s/%s: missing or oversized uid, VMI reference or migration label",
		     r->pod_ns, r->pod_name);
		goto out;
	}
	vm->target = mig != NULL;
	kube_resp_free(&o->resp);

	rc = cni_get_obj(kc, &kube_res_vmis, r->pod_ns, vm->vm, o, f);
	if (rc == -1)
		goto out_nofree;
	struct kube_vmi vmi;
	if (rc == 0 && kube_vmi_view(&o->doc, 0, &vmi, &o->a, &e) < 0) {
		cni_fail(f, CNI_E_TRYLATER, "bad API answer", "VMI %s/%s: %s", r->pod_ns, vm->vm,
		     e.msg);
		goto out;
	}
	bool same = rc == 0 && vmi.meta.uid && strcmp(vmi.meta.uid, vm->vmi_uid) == 0;
	if (!del) {
		if (rc == -ENOENT) {
			cni_fail(f, CNI_E_INTERNAL, "VM pod rejected",
			     "pod %s/%s: its VirtualMachineInstance %s/%s does not exist",
			     r->pod_ns, r->pod_name, r->pod_ns, vm->vm);
			goto out_nofree;
		}
		if (!same) {
			cni_fail(f, CNI_E_INTERNAL, "VM pod rejected",
			     "pod %s/%s: ownerReference names VirtualMachineInstance %s uid %s, "
			     "but %s/%s has uid %s (forged or stale reference)", r->pod_ns,
			     r->pod_name, vm->vm, vm->vmi_uid, r->pod_ns, vm->vm,
			     vmi.meta.uid ? vmi.meta.uid : "(none)");
			goto out;
		}
	}
	bool vm_owned = false, vmi_deleting = rc == 0 && vmi.meta.deletion_timestamp;
	if (rc == 0) {
		struct kube_owner_ref vref;
		if (kube_controller_ref(&vmi.meta, &vref, &o->a, NULL) == 0 && vref.kind &&
		    strcmp(vref.kind, "VirtualMachine") == 0) {
			vm_owned = true;
			cpy(vm->vm_uid, sizeof(vm->vm_uid), vref.uid);
		}
		kube_resp_free(&o->resp);
	}
	vm->is_vm = true;
	ret = 0;
	if (!del)
		goto out_nofree;
	if (rc == 0 && same && !vm_owned) { /* standalone VMI */
		vm->release = vmi_deleting;
		goto out_nofree;
	}
	/* VM-owned (or the VMI is gone or replaced): the VM decides; a VM restart deletes
	 * and recreates the VMI, which must keep the IPs. */
	rc = cni_get_obj(kc, &kube_res_vms, r->pod_ns, vm->vm, o, f);
	if (rc == -ENOENT) {
		vm->release = true;
		goto out_nofree;
	}
	if (rc < 0) {
		ret = -1;
		goto out_nofree;
	}
	struct kube_meta vmm;
	if (kube_meta_view(&o->doc, 0, &vmm, &o->a, &e) < 0) {
		ret = cni_fail(f, CNI_E_TRYLATER, "bad API answer", "VM %s/%s: %s", r->pod_ns,
			   vm->vm, e.msg);
		goto out;
	}
	vm->release = vmm.deletion_timestamp != NULL ||
		      (vm->vm_uid[0] && vmm.uid && strcmp(vmm.uid, vm->vm_uid) != 0);
out:
	kube_resp_free(&o->resp);
out_nofree:
	free(o);
	return ret;
}

/* The uid held in slot `which` of handle h ("" when empty). */
static const char *slot_uid(const struct ipam_state *st, const struct ipam_handle *h,
			    enum ipam_slot which)
{
	const struct ipam_attrs *a = h->n ? ipam_lookup_ip(st, &h->ip[0]) : NULL;
	if (!a)
		return "";
	switch (which) {
	case IPAM_ACTIVE:
		return a->active.uid;
	case IPAM_ALTERNATE:
		return a->alternate.uid;
	}
	return "";
}

/* ADD of a VM pod: allocate (or keep) the VM's addresses and take the active slot; a
 * migration target needs existing addresses and takes the alternate slot. The slot's
 * previous holder (a dead pod of a restart, a failed earlier target) is replaced under
 * a precondition on its uid, so two racing ADDs cannot both win. */
int cni_op_vm_alloc(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	const struct cni_vm *vm = c->vm;
	int rc = cni_persist_still(st, false, e);
	if (rc < 0)
		return rc;
	rc = cni_sync_pools(st, c->r, e);
	if (rc < 0 || (rc = ipam_handle_mend(st, c->handle, e)) < 0)
		return rc;
	const struct ipam_handle *h = ipam_handle_find(st, c->handle);
	c->existed = h != NULL;
	if (vm->target && !h)
		return err_set(e, ENXIO, "migration target %s/%s: VM %s has no addresses yet "
			       "(handle %s)", c->r->pod_ns, c->r->pod_name, vm->vm, c->handle);
	struct ipam_attrs a;
	cni_attrs(c, &a);
	snprintf(a.vmi_name, sizeof(a.vmi_name), "%s", vm->vm);
	snprintf(a.vmi_uid, sizeof(a.vmi_uid), "%s", vm->vmi_uid);
	snprintf(a.vm_uid, sizeof(a.vm_uid), "%s", vm->vm_uid);
	rc = ipam_alloc(st, c->handle, c->r->node, c->r->families, &a, c->ip, &c->n, e);
	if (rc < 0)
		return rc;
	h = ipam_handle_find(st, c->handle);
	if (!h)
		return err_set(e, EUCLEAN, "handle %s: missing after allocation", c->handle);
	for (unsigned i = 0; i < h->n && !c->has_mac; i++) {
		const struct ipam_attrs *ra = ipam_lookup_ip(st, &h->ip[i]);
		c->has_mac = ra && ra->mac[0] && ipam_mac_parse(ra->mac, c->mac, NULL, NULL) == 0;
	}
	enum ipam_slot which = vm->target ? IPAM_ALTERNATE : IPAM_ACTIVE;
	char held[IPAM_UID_MAX + 1];
	snprintf(held, sizeof(held), "%s", slot_uid(st, h, which));
	struct ipam_owner o;
	memset(&o, 0, sizeof(o));
	snprintf(o.ns, sizeof(o.ns), "%s", c->r->pod_ns);
	snprintf(o.name, sizeof(o.name), "%s", c->r->pod_name);
	snprintf(o.uid, sizeof(o.uid), "%s", vm->pod_uid);
	snprintf(o.node, sizeof(o.node), "%s", c->r->node);
	snprintf(o.cid, sizeof(o.cid), "%s", c->r->cid);
	snprintf(o.ifname, sizeof(o.ifname), "%s", c->r->ifname);
	return ipam_owner_set(st, c->handle, which, &o, held[0] ? held : NULL, e);
}

/* DEL of a VM pod: empty the slot this pod holds (precondition: still this pod), and
 * release the addresses when the VM is going away and both slots are empty. */
int cni_op_vm_release(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	const struct cni_vm *vm = c->vm;
	int rc = ipam_handle_mend(st, c->handle, e);
	if (rc < 0)
		return rc;
	const struct ipam_handle *h = ipam_handle_find(st, c->handle);
	if (!h)
		return 0;
	static const enum ipam_slot slots[] = { IPAM_ACTIVE, IPAM_ALTERNATE };
	for (unsigned i = 0; i < 2; i++) {
		if (strcmp(slot_uid(st, h, slots[i]), vm->pod_uid) != 0)
			continue;
		rc = ipam_owner_clear(st, c->handle, slots[i], vm->pod_uid, e);
		if (rc < 0)
			return rc;
	}
	h = ipam_handle_find(st, c->handle);
	if (vm->release && h && !slot_uid(st, h, IPAM_ACTIVE)[0] &&
	    !slot_uid(st, h, IPAM_ALTERNATE)[0]) {
		c->released = 1;
		return ipam_release_handle(st, c->handle, false, e);
	}
	return 0;
}
