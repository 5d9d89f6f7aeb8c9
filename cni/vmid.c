/* vmid — VM identity and VM pods' IPAM operations (vmid.h). */
#include "cni/vmid.h"

#include "kube/kubevirt.h"
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
	if (rc == -EUCLEAN || rc == -EINVAL) /* the stored record is not a valid IPAMConfig */
		return cni_fail(f, CNI_E_CONFIG, "invalid IPAMConfig", "pod %s/%s: %s", r->pod_ns,
			    r->pod_name, e.msg);
	if (rc == -ENOMEM)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "pod %s/%s: %s", r->pod_ns,
			    r->pod_name, e.msg);
	if (rc < 0) /* unreachable, refusing, or an answer that is not JSON (-EPROTO) */
		return cni_fail(f, CNI_E_TRYLATER, "API server unavailable", "pod %s/%s: %s",
			    r->pod_ns, r->pod_name, e.msg);
	*off = cfg.vm_persistence == IPAM_PERSIST_DISABLED;
	return 0;
}

/* What cni_vm_resolve() reads: the pod, its VMI and (for a labelled pod) the VMIM its
 * label names, found by GET (the pod's migrationJobName annotation) or in a LIST. */
struct vm_objs {
	struct cni_obj pod;	       /* the pod */
	struct cni_obj vmi;	       /* its VMI, then the VM (DEL) */
	struct cni_obj vmim;	       /* the VMIM by name */
	struct kube_resp lresp;	       /* the VMIM LIST answer (body owned) */
	struct json_doc ldoc;	       /* parsed */
	struct json_tok *ltok;	       /* its tokens (owned) */
	char lmem[16384];	       /* arena memory for the matching item */
	struct kube_arena la;	       /* arena over lmem */
};

static void vm_objs_free(struct vm_objs *o)
{
	kube_resp_free(&o->pod.resp);
	kube_resp_free(&o->vmi.resp);
	kube_resp_free(&o->vmim.resp);
	kube_resp_free(&o->lresp);
	free(o->ltok);
	free(o);
}

/* The VMIM in the pod's namespace whose metadata.uid is uid into *m (*found false when
 * there is none): a GET of the name in the pod's kubevirt.io/migrationJobName annotation
 * when that object has the uid (the annotation only saves a LIST; the uid decides), else
 * one LIST of the namespace's VMIMs, filtered here. -1 with f (code 11) when the API
 * cannot be asked or answers something else than VMIMs. */
static int find_vmim(struct kube_client *kc, const struct cni_req *r,
		     const struct kube_pod *pod, struct kube_arena *pa, const char *uid,
		     struct vm_objs *o, struct kube_vmim *m, bool *found, struct cni_fail *f)
{
	struct err e = { 0 };
	*found = false;
	const char *name = kube_annotation(&pod->meta, KUBE_KV_ANN_MIGRATION, pa);
	if (name && kube_name_is_subdomain(name)) {
		int rc = cni_get_obj(kc, &kube_res_vmims, r->pod_ns, name, &o->vmim, f);
		if (rc == -1)
			return -1;
		if (rc == 0) {
			if (kube_vmim_view(&o->vmim.doc, 0, m, &o->vmim.a, &e) < 0)
				return cni_fail(f, CNI_E_TRYLATER, "bad API answer",
					    "VirtualMachineInstanceMigration %s/%s: %s", r->pod_ns,
					    name, e.msg);
			if (kube_kv_vmim_is(m, uid)) {
				*found = true;
				return 0;
			}
		}
	}
	memset(&o->lresp, 0, sizeof(o->lresp));
	if (kube_list(kc, &kube_res_vmims, r->pod_ns, NULL, &o->lresp, &e) < 0)
		return cni_fail(f, CNI_E_TRYLATER, "API server unavailable", "%s", e.msg);
	int rc = json_parse(&o->ldoc, o->lresp.body, o->lresp.len, NULL, 0, 0, &e);
	if (rc == -ENOSPC && o->ldoc.n > 0) {
		unsigned n = o->ldoc.n;
		o->ltok = calloc(n, sizeof(*o->ltok));
		if (!o->ltok)
			return cni_fail(f, CNI_E_INTERNAL, "out of memory",
				    "VirtualMachineInstanceMigrations of %s: %u tokens", r->pod_ns,
				    n);
		rc = json_parse(&o->ldoc, o->lresp.body, o->lresp.len, o->ltok, n, 0, &e);
	}
	if (rc == 0 && !o->ltok) /* counting never succeeds on a real document */
		rc = -EINVAL;
	int items = rc == 0 ? json_get(&o->ldoc, 0, "items") : -1;
	if (rc < 0 || json_type(&o->ldoc, items) != JSON_ARRAY)
		return cni_fail(f, CNI_E_TRYLATER, "bad API answer",
			    "LIST VirtualMachineInstanceMigrations in %s: %s", r->pod_ns,
			    rc < 0 ? e.msg : "no items array");
	kube_arena_init(&o->la, o->lmem, sizeof(o->lmem));
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &o->ldoc, items);
	while (json_iter_next(&it, &k, &v)) {
		o->la.used = 0; /* only the match is kept */
		if (kube_vmim_view(&o->ldoc, v, m, &o->la, &e) < 0)
			return cni_fail(f, CNI_E_TRYLATER, "bad API answer",
				    "LIST VirtualMachineInstanceMigrations in %s: %s", r->pod_ns,
				    e.msg);
		if (kube_kv_vmim_is(m, uid)) {
			*found = true;
			return 0;
		}
	}
	return 0;
}

/* Decide whether the pod of r is a VM pod (design.md pillar 1): it carries the
 * kubevirt.io/domain annotation and a controller ownerReference to a kubevirt.io/v1
 * VirtualMachineInstance. Then the VMI is fetched and its uid must equal the reference's;
 * anything else fails ADD (a forged or stale reference never gets the VM's IP). A pod
 * that does not exist or is no VM pod is ordinary (vm->is_vm false). ADD and CHECK then
 * apply kube_kv_decide() (kube/kubevirt.h): which slot the pod may hold, or a refusal.
 * For DEL (del true) a mismatch is not an error, and vm->release says whether the VM is
 * gone or being deleted (standalone VMI: the VMI). When the IPAMConfig says
 * kubeVirtVMAddressPersistence Disabled, a VM pod is ordinary (vm->persist_off) and the
 * ADD of a migration target fails. */
int cni_vm_resolve(struct cni_store *cs, const struct cni_req *r, bool del,
		      struct cni_vm *vm, struct cni_fail *f)
{
	memset(vm, 0, sizeof(*vm));
	if (!r->pod_ns[0] || !r->pod_name[0] || annots_say_ordinary(r))
		return 0;
	struct kube_client *kc = cs->c;
	struct err e = { 0 };
	struct vm_objs *o = calloc(1, sizeof(*o));
	if (!o)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "pod %s/%s", r->pod_ns,
			    r->pod_name);
	int ret = -1;
	int rc = cni_get_obj(kc, &kube_res_pods, r->pod_ns, r->pod_name, &o->pod, f);
	if (rc == -ENOENT) {
		ret = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	struct kube_pod pod;
	struct kube_owner_ref ref;
	struct kube_arena *pa = &o->pod.a;
	if (kube_pod_view(&o->pod.doc, 0, &pod, pa, &e) < 0) {
		cni_fail(f, CNI_E_TRYLATER, "bad API answer", "pod %s/%s: %s", r->pod_ns,
		     r->pod_name, e.msg);
		goto out;
	}
	const char *dom = kube_annotation(&pod.meta, CNI_ANN_DOMAIN, pa);
	rc = kube_controller_ref(&pod.meta, &ref, pa, &e);
	if (rc == -EINVAL) { /* the API validates ownerReferences: not a real pod object */
		cni_fail(f, CNI_E_TRYLATER, "bad API answer", "pod %s/%s: %s", r->pod_ns,
		     r->pod_name, e.msg);
		goto out;
	}
	if (!dom || rc < 0 || !ref.kind || strcmp(ref.kind, "VirtualMachineInstance") != 0 ||
	    !ref.api_version || strcmp(ref.api_version, "kubevirt.io/v1") != 0) {
		ret = 0; /* an ordinary pod */
		goto out;
	}
	const char *mig = kube_label(&pod.meta, CNI_LBL_MIGRATION, pa);
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

	rc = cni_get_obj(kc, &kube_res_vmis, r->pod_ns, vm->vm, &o->vmi, f);
	if (rc == -1)
		goto out;
	struct kube_vmi vmi;
	if (rc == 0 && kube_vmi_view(&o->vmi.doc, 0, &vmi, &o->vmi.a, &e) < 0) {
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
			goto out;
		}
		if (!same) {
			cni_fail(f, CNI_E_INTERNAL, "VM pod rejected",
			     "pod %s/%s: ownerReference names VirtualMachineInstance %s uid %s, "
			     "but %s/%s has uid %s (forged or stale reference)", r->pod_ns,
			     r->pod_name, vm->vm, vm->vmi_uid, r->pod_ns, vm->vm,
			     vmi.meta.uid ? vmi.meta.uid : "(none)");
			goto out;
		}
		/* who may hold the VM's addresses (kube/kubevirt.h) */
		struct kube_vmim vmim;
		bool found = false;
		if (mig && find_vmim(kc, r, &pod, pa, mig, o, &vmim, &found, f) < 0)
			goto out;
		struct kube_kv_ask q = { .pod = &pod, .vmi = &vmi, .mig_uid = mig,
					 .vmim = found ? &vmim : NULL, .node = r->node,
					 .holder = KUBE_KV_HOLDER_UNKNOWN };
		char why[384];
		switch (kube_kv_decide(&q, why, sizeof(why))) {
		case KUBE_KV_REFUSE:
			cni_fail(f, CNI_E_INTERNAL, "VM pod rejected", "pod %s/%s of VM %s/%s: %s",
			     r->pod_ns, r->pod_name, r->pod_ns, vm->vm, why);
			goto out;
		case KUBE_KV_TARGET:
			vm->target = true;
			break;
		case KUBE_KV_ACTIVE:
			vm->target = false;
			break;
		case KUBE_KV_NEED_HOLDER:
			vm->target = false;
			vm->check_holder = true;
			vm->kc = kc;
			break;
		}
		cpy(vm->why, sizeof(vm->why), why);
	}
	bool vm_owned = false, vmi_deleting = rc == 0 && vmi.meta.deletion_timestamp;
	if (rc == 0) {
		struct kube_owner_ref vref;
		if (kube_controller_ref(&vmi.meta, &vref, &o->vmi.a, NULL) == 0 && vref.kind &&
		    strcmp(vref.kind, "VirtualMachine") == 0) {
			vm_owned = true;
			cpy(vm->vm_uid, sizeof(vm->vm_uid), vref.uid);
		}
	}
	vm->is_vm = true;
	ret = 0;
	if (!del)
		goto out;
	if (rc == 0 && same && !vm_owned) { /* standalone VMI */
		vm->release = vmi_deleting;
		goto out;
	}
	/* VM-owned (or the VMI is gone or replaced): the VM decides; a VM restart deletes
	 * and recreates the VMI, which must keep the IPs. */
	kube_resp_free(&o->vmi.resp);
	rc = cni_get_obj(kc, &kube_res_vms, r->pod_ns, vm->vm, &o->vmi, f);
	if (rc == -ENOENT) {
		vm->release = true;
		goto out;
	}
	if (rc < 0) {
		ret = -1;
		goto out;
	}
	struct kube_meta vmm;
	if (kube_meta_view(&o->vmi.doc, 0, &vmm, &o->vmi.a, &e) < 0) {
		ret = cni_fail(f, CNI_E_TRYLATER, "bad API answer", "VM %s/%s: %s", r->pod_ns,
			   vm->vm, e.msg);
		goto out;
	}
	vm->release = vmm.deletion_timestamp != NULL ||
		      (vm->vm_uid[0] && vmm.uid && strcmp(vmm.uid, vm->vm_uid) != 0);
out:
	vm_objs_free(o);
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

/* The owner in slot `which` of handle h (NULL when the handle holds no address). */
static const struct ipam_owner *slot_owner(const struct ipam_state *st,
					   const struct ipam_handle *h, enum ipam_slot which)
{
	const struct ipam_attrs *a = h->n ? ipam_lookup_ip(st, &h->ip[0]) : NULL;
	if (!a)
		return NULL;
	switch (which) {
	case IPAM_ACTIVE:
		return &a->active;
	case IPAM_ALTERNATE:
		return &a->alternate;
	}
	return NULL;
}

/* The "no other owner is alive" rule (kube_kv_holder_rule) for a VM pod KubeVirt does
 * not name: one GET of the pod in the active slot. -EADDRINUSE when it is alive (the ADD
 * is refused), -EAGAIN when the API cannot tell. Runs inside the IPAM update, so the
 * slot it looks at is the one the update replaces (under a precondition on its uid). */
static int holder_check(const struct ipam_state *st, const struct ipam_handle *h,
			const struct cni_ipam *c, struct err *e)
{
	const struct cni_vm *vm = c->vm;
	const struct ipam_owner *o = slot_owner(st, h, IPAM_ACTIVE);
	enum kube_kv_holder hs = kube_kv_holder_of(o ? o->uid : NULL, vm->pod_uid, NULL);
	char who[IPAM_NS_MAX + IPAM_NAME_MAX + 2] = "";
	if (hs != KUBE_KV_HOLDER_NONE) {
		snprintf(who, sizeof(who), "%s/%s", o->ns, o->name);
		struct cni_obj *obj = calloc(1, sizeof(*obj));
		if (!obj)
			return err_setx(e, ENOMEM, "pod %s/%s: out of memory", c->r->pod_ns,
					c->r->pod_name);
		struct cni_fail f;
		int rc = -ENOENT;
		struct kube_pod p;
		struct err pe = { 0 };
		if (!o->ns[0] || !o->name[0])
			hs = KUBE_KV_HOLDER_ALIVE; /* unnamed: cannot be looked at, assume alive */
		else if ((rc = cni_get_obj(vm->kc, &kube_res_pods, o->ns, o->name, obj, &f)) == -1) {
			free(obj);
			return err_setx(e, EAGAIN, "VM %s: active owner %s (uid %s): %s", vm->vm,
					who, o->uid, f.det);
		}
		if (rc == 0 && kube_pod_view(&obj->doc, 0, &p, &obj->a, &pe) < 0) {
			kube_resp_free(&obj->resp);
			free(obj);
			return err_setx(e, EAGAIN, "VM %s: active owner %s: bad API answer: %s",
					vm->vm, who, pe.msg);
		}
		if (o->ns[0] && o->name[0])
			hs = kube_kv_holder_of(o->uid, vm->pod_uid, rc == 0 ? &p : NULL);
		kube_resp_free(&obj->resp);
		free(obj);
	}
	char why[384];
	if (kube_kv_holder_rule(hs, who, why, sizeof(why)) == KUBE_KV_ACTIVE)
		return 0;
	return err_setx(e, EADDRINUSE, "pod %s/%s of VM %s/%s: %s", c->r->pod_ns,
			c->r->pod_name, c->r->pod_ns, vm->vm, why);
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
	if (!vm->target && vm->check_holder && h && (rc = holder_check(st, h, c, e)) < 0)
		return rc;
	if (vm->target && !h)
		return err_set(e, ENXIO, "migration target %s/%s: VM %s has no addresses yet "
			       "(handle %s)", c->r->pod_ns, c->r->pod_name, vm->vm, c->handle);
	struct ipam_attrs a;
	cni_attrs(c, &a);
	snprintf(a.vmi_name, sizeof(a.vmi_name), "%s", vm->vm);
	snprintf(a.vmi_uid, sizeof(a.vmi_uid), "%s", vm->vmi_uid);
	snprintf(a.vm_uid, sizeof(a.vm_uid), "%s", vm->vm_uid);
	rc = ipam_alloc_net(st, c->handle, c->r->node, c->r->families, c->r->network, &a,
			    c->ip, &c->n, e);
	if (rc < 0)
		return rc;
	h = ipam_handle_find(st, c->handle);
	if (!h)
		return err_set(e, EUCLEAN, "handle %s: missing after allocation", c->handle);
	for (unsigned i = 0; i < h->n && !c->has_mac; i++) {
		const struct ipam_attrs *ra = ipam_lookup_ip(st, &h->ip[i]);
		c->has_mac = ra && ra->mac[0] && ipam_mac_parse(ra->mac, c->mac, NULL, NULL) == 0;
	}
	if ((rc = cni_mac_pick(c, e)) < 0)
		return rc;
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
