/* gc — the CNI GC command (gc.h). */
#include "cni/gc.h"

#include "cni/store.h"
#include "cni/vmid.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is (cid, ifname) in the GC request's valid attachments? */
static bool attached(const struct cni_req *r, const char *cid, const char *ifname)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &r->doc, r->attach);
	while (json_iter_next(&it, &k, &v)) {
		int ci = json_get(&r->doc, v, "containerID");
		int ii = json_get(&r->doc, v, "ifname");
		if (ci >= 0 && ii >= 0 && json_str_eq(&r->doc, ci, cid, strlen(cid)) &&
		    json_str_eq(&r->doc, ii, ifname, strlen(ifname)))
			return true;
	}
	return false;
}

/* A VM handle of this network: the allocation's handle is "<network>.vmi.<ns>.<vm>". */
static bool gc_vm_alloc(const struct cni_req *r, const struct ipam_attrs *a)
{
	char h[IPAM_NAME_MAX + 1];
	return a->vmi_name[0] && a->ns[0] &&
	       ipam_handle_vm(h, cni_ipam_net(r), a->ns, a->vmi_name, NULL) == 0 && !strcmp(h, a->handle);
}

/* An owner slot GC empties: held by a pod on this node whose attachment the runtime no
 * longer lists. Slots of other nodes are their runtimes' business; a slot without a
 * recorded container ID cannot be matched and is left alone. */
static bool gc_slot_stale(const struct cni_ipam *c, const struct ipam_owner *o)
{
	return o->uid[0] && o->cid[0] && o->ifname[0] && !strcmp(o->node, c->r->node) &&
	       !attached(c->r, o->cid, o->ifname);
}

static bool gc_is_gone(const struct cni_gc *g, const char *handle)
{
	for (unsigned i = 0; g && i < g->n_gone; i++)
		if (!strcmp(g->gone[i], handle))
			return true;
	return false;
}

/* ipam_handle_mend() on a copy of handle (mend may move the record it points into),
 * counting repairs in g (may be NULL). 0 or -errno. */
static int gc_mend(struct ipam_state *st, const char *handle, struct cni_gc *g, struct err *e)
{
	char id[IPAM_NAME_MAX + 1];
	snprintf(id, sizeof(id), "%s", handle);
	int rc = ipam_handle_mend(st, id, e);
	if (rc < 0)
		return rc;
	if (g)
		g->mended += (unsigned)rc;
	return 0;
}

/* GC (runs on every node, with that node's runtime's attachments):
 *   ordinary pods  release each handle of this network allocated on this node whose
 *                  (containerID, ifname) is not listed
 *   VM handles     never released for a missing attachment while the VM exists; owner
 *                  slots of this node whose attachment is not listed are emptied (with a
 *                  precondition on the uid), and a handle is released when both slots are
 *                  empty and cni_gc() found its VM (standalone VMI: the VMI) gone */
int cni_gc_op(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	struct cni_gc *g = c->gc;
	const struct cni_req *r = c->r;
	c->released = 0;
	if (g)
		g->cleared = g->mended = 0;
	/* first repair torn commits (ipam_handle_mend) of every handle named anywhere */
	for (unsigned i = st->n_handles; i-- > 0;) { /* mend may swap-remove handle i */
		if (i >= st->n_handles)
			continue;
		int rc = gc_mend(st, st->handles[i].id, g, e);
		if (rc < 0)
			return rc;
	}
	for (unsigned b = 0; b < st->n_blocks; b++) {
		for (unsigned i = 0; i < st->blocks[b].size; i++) {
			const struct ipam_attrs *a = st->blocks[b].slot[i];
			if (!a || ipam_handle_find(st, a->handle))
				continue;
			int rc = gc_mend(st, a->handle, g, e); /* adopts it: handle created */
			if (rc < 0)
				return rc;
		}
	}
	for (unsigned b = 0; b < st->n_blocks; b++) {
		for (unsigned i = 0; i < st->blocks[b].size; i++) {
			const struct ipam_attrs *a = st->blocks[b].slot[i];
			if (!a)
				continue;
			if (gc_vm_alloc(r, a)) {
				static const enum ipam_slot slots[] = { IPAM_ACTIVE, IPAM_ALTERNATE };
				for (unsigned s = 0; s < 2; s++) {
					const struct ipam_owner *o =
					    slots[s] == IPAM_ACTIVE ? &a->active : &a->alternate;
					if (!gc_slot_stale(c, o))
						continue;
					char uid[IPAM_UID_MAX + 1];
					snprintf(uid, sizeof(uid), "%s", o->uid);
					int rc = ipam_owner_clear(st, a->handle, slots[s], uid, e);
					if (rc < 0)
						return rc;
					if (g)
						g->cleared++;
				}
				if (a->active.uid[0] || a->alternate.uid[0] ||
				    !gc_is_gone(g, a->handle))
					continue;
				snprintf(c->handle, sizeof(c->handle), "%s", a->handle);
			} else {
				char h[IPAM_NAME_MAX + 1];
				if (!a->container_id[0] || strcmp(a->node, c->r->node) != 0 ||
				    ipam_handle_pod(h, cni_ipam_net(r), a->container_id, NULL) < 0 ||
				    strcmp(h, a->handle) != 0)
					continue; /* another node's or another network's */
				if (attached(r, a->container_id, a->ifname))
					continue;
				snprintf(c->handle, sizeof(c->handle), "%s", h);
			}
			int rc = ipam_release_handle(st, c->handle, true, e);
			if (rc < 0)
				return rc;
			c->released++;
			i = (unsigned)-1; /* the slot array changed: rescan this block */
		}
	}
	return 0;
}

/* Is the VM (standalone VMI: the VMI) of a VM handle's allocation gone or being deleted
 * (or replaced by another object of the same name)? As DEL decides. API calls: one GET. */
static int gc_vm_gone(struct kube_client *kc, const struct ipam_attrs *a, bool *gone,
		      struct cni_fail *f)
{
	struct cni_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "GC: VM %s/%s", a->ns,
			    a->vmi_name);
	bool standalone = !a->vm_uid[0];
	int rc = cni_get_obj(kc, standalone ? &kube_res_vmis : &kube_res_vms, a->ns, a->vmi_name, o,
			 f);
	*gone = rc == -ENOENT;
	if (rc == 0) {
		struct err e = { 0 };
		struct kube_meta m;
		if (kube_meta_view(&o->doc, 0, &m, &o->a, &e) < 0)
			rc = cni_fail(f, CNI_E_TRYLATER, "bad API answer", "%s %s/%s: %s",
				  standalone ? "VMI" : "VM", a->ns, a->vmi_name, e.msg);
		else
			*gone = m.deletion_timestamp != NULL ||
				(m.uid && strcmp(m.uid, standalone ? a->vmi_uid : a->vm_uid) != 0);
		kube_resp_free(&o->resp);
	}
	free(o);
	return rc == -ENOENT ? 0 : rc;
}

/* GC with the kubernetes datastore, before the update: the VM handles of this network
 * whose slots would all be empty after GC, and whose VM is gone, go to g->gone. */
static int gc_find_gone(struct cni_store *cs, struct cni_ipam *c, struct cni_gc *g,
			struct cni_fail *f)
{
	struct ipam_state st;
	struct err e = { 0 };
	int ret = 0;
	if (ipam_ds_read(&cs->ds, &st, &e) < 0) {
		ipam_state_free(&st);
		return cni_fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	for (unsigned b = 0; b < st.n_blocks && !ret; b++) {
		for (unsigned i = 0; i < st.blocks[b].size && !ret; i++) {
			const struct ipam_attrs *a = st.blocks[b].slot[i];
			if (!a || !gc_vm_alloc(c->r, a) || gc_is_gone(g, a->handle))
				continue;
			if ((a->active.uid[0] && !gc_slot_stale(c, &a->active)) ||
			    (a->alternate.uid[0] && !gc_slot_stale(c, &a->alternate)))
				continue; /* a pod still runs the VM */
			bool gone = false;
			if (gc_vm_gone(cs->c, a, &gone, f) < 0) {
				ret = -1;
				break;
			}
			if (!gone)
				continue;
			if (g->n_gone == g->cap_gone) {
				unsigned nc = g->cap_gone ? g->cap_gone * 2 : 16;
				void *ng = nc < (1u << 20) ? realloc(g->gone, nc * sizeof(*g->gone))
							   : NULL;
				if (!ng) {
					ret = cni_fail(f, CNI_E_INTERNAL, "out of memory", "GC");
					break;
				}
				g->gone = ng;
				g->cap_gone = nc;
			}
			snprintf(g->gone[g->n_gone++], sizeof(*g->gone), "%s", a->handle);
		}
	}
	ipam_state_free(&st);
	return ret;
}

int cni_gc(struct cni_req *r, struct cni_fail *f)
{
	if (r->vidx < 4)
		return cni_fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "GC needs cniVersion 1.1.0, got %s", r->version);
	if (r->attach < 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "GC needs cni.dev/valid-attachments");
	struct cni_ipam c;
	struct cni_gc g;
	memset(&c, 0, sizeof(c));
	memset(&g, 0, sizeof(g));
	c.r = r;
	c.gc = &g;
	struct cni_store cs;
	if (cni_store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	int ret = -1;
	if (r->kube && gc_find_gone(&cs, &c, &g, f) < 0)
		goto out;
	if (cni_ipam_run(r, &cs, cni_gc_op, false, &c, f) < 0)
		goto out;
	log_msg(&r->log, LOG_LVL_INFO,
		"GC: released %u handles, emptied %u owner slots, %u torn-record repairs",
		c.released, g.cleared, g.mended);
	ret = 0;
out:
	cni_store_close(&cs);
	free(g.gone);
	return ret;
}
