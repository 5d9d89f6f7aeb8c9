/* kubevirt — who may hold a VM's addresses (kubevirt.h). */
#include "kube/kubevirt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Fill why (when given) and return role. */
__attribute__((format(printf, 4, 5))) static enum kube_kv_role say(enum kube_kv_role role,
								    char *why, size_t cap,
								    const char *fmt, ...)
{
	if (why && cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return role;
}

static bool eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static const char *str(const char *s)
{
	return s ? s : "";
}

static bool phase_finished(const char *phase)
{
	return eq(phase, "Succeeded") || eq(phase, "Failed");
}

bool kube_kv_vmim_is(const struct kube_vmim *m, const char *uid)
{
	return m && uid && *uid && eq(m->meta.uid, uid);
}

bool kube_kv_vmim_finished(const struct kube_vmim *m)
{
	return phase_finished(m->phase) || m->meta.deletion_timestamp != NULL;
}

const char *kube_kv_role_name(enum kube_kv_role r)
{
	switch (r) {
	case KUBE_KV_REFUSE:
		return "refuse";
	case KUBE_KV_ACTIVE:
		return "active";
	case KUBE_KV_TARGET:
		return "target";
	case KUBE_KV_NEED_HOLDER:
		return "need-holder";
	}
	return "?";
}

enum kube_kv_holder kube_kv_holder_of(const char *slot_uid, const char *self_uid,
				      const struct kube_pod *p)
{
	if (!slot_uid || !*slot_uid || eq(slot_uid, self_uid))
		return KUBE_KV_HOLDER_NONE;
	if (!p || !eq(p->meta.uid, slot_uid))
		return KUBE_KV_HOLDER_GONE;
	if (p->meta.deletion_timestamp)
		return KUBE_KV_HOLDER_DELETING;
	if (phase_finished(p->phase))
		return KUBE_KV_HOLDER_FINISHED;
	return KUBE_KV_HOLDER_ALIVE;
}

enum kube_kv_role kube_kv_holder_rule(enum kube_kv_holder holder, const char *holder_pod,
				      char *why, size_t cap)
{
	const char *h = holder_pod ? holder_pod : "(unnamed)";
	switch (holder) {
	case KUBE_KV_HOLDER_UNKNOWN:
		return say(KUBE_KV_NEED_HOLDER, why, cap,
			   "active only if the VM's active owner is not alive (not looked at)");
	case KUBE_KV_HOLDER_NONE:
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the VM's active slot is free (or already this pod's)");
	case KUBE_KV_HOLDER_GONE:
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the previous active owner, pod %s, no longer exists", h);
	case KUBE_KV_HOLDER_FINISHED:
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the previous active owner, pod %s, has finished "
			   "(phase Succeeded/Failed)", h);
	case KUBE_KV_HOLDER_DELETING:
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the previous active owner, pod %s, is being deleted", h);
	case KUBE_KV_HOLDER_ALIVE:
		return say(KUBE_KV_REFUSE, why, cap,
			   "rule 'active owner' refused: the VM's active owner, pod %s, is alive "
			   "and the VMI's status.activePods does not list this pod (a second pod "
			   "of a running VM never takes its addresses)", h);
	}
	return say(KUBE_KV_REFUSE, why, cap, "rule 'active owner' refused: unknown holder state");
}

/* The pod is labelled as the target of migration q->mig_uid. */
static enum kube_kv_role decide_target(const struct kube_kv_ask *q, char *why, size_t cap)
{
	const struct kube_migration_state *vs = &q->vmi->mig;
	const char *u = q->mig_uid, *pod = str(q->pod->meta.name);
	const struct kube_vmim *m = q->vmim;
	bool vmi_says = vs->present && eq(vs->migration_uid, u); /* the VMI's state is U's */

	if (vmi_says && vs->completed && !vs->failed && eq(vs->target_pod, pod))
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the VMI's status.migrationState names this pod the "
			   "target of completed migration %s", u);
	if (!kube_kv_vmim_is(m, u))
		return say(KUBE_KV_REFUSE, why, cap,
			   "rule 'migration target' refused: label " KUBE_KV_LBL_MIGRATION
			   "=%s, but no VirtualMachineInstanceMigration with that uid exists in "
			   "the namespace", u);
	if (!eq(m->vmi_name, q->vmi->meta.name))
		return say(KUBE_KV_REFUSE, why, cap,
			   "rule 'migration target' refused: VirtualMachineInstanceMigration %s "
			   "(uid %s) migrates VMI %s, not %s", str(m->meta.name), u,
			   str(m->vmi_name), str(q->vmi->meta.name));
	if (eq(m->phase, "Succeeded") && kube_vmi_active_pod(q->vmi, q->pod->meta.uid))
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: its migration %s succeeded and the VMI's "
			   "status.activePods lists it", str(m->meta.name));
	if (kube_kv_vmim_finished(m))
		return say(KUBE_KV_REFUSE, why, cap,
			   "rule 'migration target' refused: VirtualMachineInstanceMigration %s "
			   "is finished (phase %s%s)", str(m->meta.name),
			   m->phase ? m->phase : "none",
			   m->meta.deletion_timestamp ? ", being deleted" : "");
	if (vmi_says && (vs->completed || vs->failed))
		return say(KUBE_KV_REFUSE, why, cap,
			   "rule 'migration target' refused: the VMI's status.migrationState says "
			   "migration %s %s", u, vs->failed ? "failed" : "completed");
	/* the target node and pod, wherever KubeVirt names them already */
	const char *nodes[2] = { vmi_says ? vs->target_node : NULL,
				 m->mig.present ? m->mig.target_node : NULL };
	const char *pods[2] = { vmi_says ? vs->target_pod : NULL,
				m->mig.present ? m->mig.target_pod : NULL };
	static const char *const whose[2] = { "the VMI's", "the VMIM's" };
	for (unsigned i = 0; i < 2; i++) {
		if (nodes[i] && *nodes[i] && !eq(nodes[i], q->node))
			return say(KUBE_KV_REFUSE, why, cap,
				   "rule 'migration target' refused: %s status.migrationState of "
				   "migration %s names target node %s, this is node %s", whose[i],
				   str(m->meta.name), nodes[i], str(q->node));
		if (pods[i] && *pods[i] && !eq(pods[i], pod))
			return say(KUBE_KV_REFUSE, why, cap,
				   "rule 'migration target' refused: %s status.migrationState of "
				   "migration %s names target pod %s, not this pod", whose[i],
				   str(m->meta.name), pods[i]);
	}
	return say(KUBE_KV_TARGET, why, cap,
		   "migration target: VirtualMachineInstanceMigration %s (uid %s, phase %s) of "
		   "VMI %s is not finished and targets this node", str(m->meta.name), u,
		   m->phase ? m->phase : "none", str(q->vmi->meta.name));
}

enum kube_kv_role kube_kv_decide(const struct kube_kv_ask *q, char *why, size_t cap)
{
	if (why && cap)
		why[0] = 0;
	if (!q->pod || !q->vmi || !q->pod->meta.uid || !*q->pod->meta.uid)
		return say(KUBE_KV_REFUSE, why, cap, "refused: the pod has no uid");
	if (q->mig_uid)
		return decide_target(q, why, cap);
	if (kube_vmi_active_pod(q->vmi, q->pod->meta.uid))
		return say(KUBE_KV_ACTIVE, why, cap,
			   "active owner: the VMI's status.activePods lists this pod");
	return kube_kv_holder_rule(q->holder, q->holder_pod, why, cap);
}
