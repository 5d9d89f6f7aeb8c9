/* Unit tests for kube/kubevirt: who may hold a VM's addresses, decided over the KubeVirt
 * fixtures (test/data/fixtures/vm-a.*: the source and target virt-launcher pods, the VMI
 * mid-migration, its VMIM), each changed in one field by text substitution before it is
 * parsed: the genuine target and source, a fake target without a VMIM, a VMIM of another
 * VMI, finished or being deleted, for another node or another pod, a completed or failed
 * migration, a second pod of a running VM and every state of the active slot's holder.
 * Also the name and uid validators of kube/types. */
#include "kube/kubevirt.h"
#include "kube/types.h"
#include "lib/json.h"
#include "test/lib/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTOK 2048
#define FIX "test/data/fixtures/"
#define TGT_UID "9a1d7e6f-5c4b-4a3d-8e2f-0f1e2d3c4b5a"
#define SRC_UID "3f6c1d2e-0a4b-4c5d-8e9f-1a2b3c4d5e6f"
#define MIG_UID "7d1f3c2a-98e4-4b6f-bb0e-5a9c0d2e7f44"

struct fx {
	char *text;		   /* the file, changed */
	struct json_doc doc;	   /* parsed */
	struct json_tok tok[NTOK]; /* its tokens */
	char mem[8192];		   /* arena memory */
	struct kube_arena a;	   /* arena */
};

/* Load FIX name with every occurrence of `from` replaced by `to` (from NULL: as is);
 * the substitution must happen at least once. */
static struct fx *load(const char *name, const char *from, const char *to)
{
	char path[256];
	size_t n;
	snprintf(path, sizeof(path), FIX "%s", name);
	char *text = t_slurp(path, &n);
	if (!text) {
		t_note("cannot read %s", path);
		return NULL;
	}
	struct fx *f = calloc(1, sizeof(*f));
	if (from) {
		size_t fl = strlen(from), tl = strlen(to), hits = 0;
		char *out = malloc(n * (tl > fl ? tl / fl + 2 : 1) + 1), *o = out;
		for (const char *p = text; *p;) {
			if (strncmp(p, from, fl) == 0) {
				memcpy(o, to, tl);
				o += tl;
				p += fl;
				hits++;
			} else {
				*o++ = *p++;
			}
		}
		*o = 0;
		free(text);
		text = out;
		n = (size_t)(o - out);
		if (!hits)
			t_note("%s: '%s' not found", name, from);
	}
	f->text = text;
	if (json_parse(&f->doc, f->text, n, f->tok, NTOK, 0, NULL) != 0) {
		t_note("cannot parse %s", path);
		free(f->text);
		free(f);
		return NULL;
	}
	kube_arena_init(&f->a, f->mem, sizeof(f->mem));
	return f;
}

static void unload(struct fx *f)
{
	if (f)
		free(f->text);
	free(f);
}

/* One decision's inputs, parsed. */
struct world {
	struct fx *fpod, *fvmi, *fvmim;	 /* files */
	struct kube_pod pod;		 /* the asking pod */
	struct kube_vmi vmi;		 /* its VMI */
	struct kube_vmim vmim;		 /* the VMIM (when fvmim) */
	struct kube_kv_ask q;		 /* the question */
	char why[384];			 /* the answer's reason */
};

static bool world(struct world *w, struct fx *pod, struct fx *vmi, struct fx *vmim,
		  const char *node)
{
	memset(w, 0, sizeof(*w));
	w->fpod = pod;
	w->fvmi = vmi;
	w->fvmim = vmim;
	if (!pod || !vmi || kube_pod_view(&pod->doc, 0, &w->pod, &pod->a, NULL) != 0 ||
	    kube_vmi_view(&vmi->doc, 0, &w->vmi, &vmi->a, NULL) != 0)
		return false;
	if (vmim && kube_vmim_view(&vmim->doc, 0, &w->vmim, &vmim->a, NULL) != 0)
		return false;
	w->q.pod = &w->pod;
	w->q.vmi = &w->vmi;
	w->q.mig_uid = kube_label(&w->pod.meta, KUBE_KV_LBL_MIGRATION, &pod->a);
	w->q.vmim = vmim && kube_kv_vmim_is(&w->vmim, w->q.mig_uid) ? &w->vmim : NULL;
	w->q.node = node;
	return true;
}

static void world_free(struct world *w)
{
	unload(w->fpod);
	unload(w->fvmi);
	unload(w->fvmim);
}

/* Decide with the target pod, the VMI and the VMIM, each changed by one substitution
 * (NULL: as is), as node; why into w->why. */
static enum kube_kv_role target_case(struct world *w, const char *pod_from, const char *pod_to,
				     const char *vmi_from, const char *vmi_to,
				     const char *vmim_from, const char *vmim_to, bool with_vmim,
				     const char *node)
{
	bool ok = world(w, load("vm-a.target-pod.json", pod_from, pod_to),
			load("vm-a.vmi.json", vmi_from, vmi_to),
			with_vmim ? load("vm-a.vmim.json", vmim_from, vmim_to) : NULL, node);
	T_CHECK(ok);
	if (!ok)
		return (enum kube_kv_role)-1;
	enum kube_kv_role r = kube_kv_decide(&w->q, w->why, sizeof(w->why));
	t_note("%s: %s", kube_kv_role_name(r), w->why);
	return r;
}

static void test_genuine_target(void)
{
	struct world w;
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, NULL, NULL, true, "node-b"), KUBE_KV_TARGET);
	T_CHECK(strstr(w.why, "kubevirt-migrate-vm-8xk2p") != NULL);
	world_free(&w);
	/* the VMIM's copy lags (no migrationState yet): the VMI's names node and pod */
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, "\"migrationState\"", "\"x-lagging\"", true,
			 "node-b"), KUBE_KV_TARGET);
	world_free(&w);
	/* the VMI's migrationState is still another migration's: the VMIM's copy decides */
	T_EQ(target_case(&w, NULL, NULL, "\"migrationUid\": \"" MIG_UID,
			 "\"migrationUid\": \"00000000-0000-4000-8000-000000000000", NULL, NULL,
			 true, "node-b"), KUBE_KV_TARGET);
	world_free(&w);
	/* phase Scheduling, nobody names node or pod yet: target */
	T_EQ(target_case(&w, NULL, NULL, "\"migrationState\"", "\"x-none\"",
			 "\"migrationState\"", "\"x-none\"", true, "node-b"), KUBE_KV_TARGET);
	world_free(&w);
}

static void test_fake_target_without_vmim(void)
{
	struct world w;
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, NULL, NULL, false, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "no VirtualMachineInstanceMigration with that uid") != NULL);
	world_free(&w);
	/* a VMIM exists, but its uid is not the label's */
	T_EQ(target_case(&w, MIG_UID, "11111111-0000-4000-8000-000000000000", NULL, NULL, NULL,
			 NULL, true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "no VirtualMachineInstanceMigration") != NULL);
	world_free(&w);
	/* an empty label value */
	T_EQ(target_case(&w, "\"kubevirt.io/migrationJobUID\": \"" MIG_UID "\"",
			 "\"kubevirt.io/migrationJobUID\": \"\"", NULL, NULL, NULL, NULL, true,
			 "node-b"), KUBE_KV_REFUSE);
	world_free(&w);
}

static void test_vmim_of_another_vmi(void)
{
	struct world w;
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, "\"vmiName\": \"vm-a\"",
			 "\"vmiName\": \"vm-b\"", true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "migrates VMI vm-b, not vm-a") != NULL);
	world_free(&w);
}

static void test_finished_vmim(void)
{
	struct world w;
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, "\"phase\": \"Running\"",
			 "\"phase\": \"Failed\"", true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "is finished (phase Failed)") != NULL);
	world_free(&w);
	/* Succeeded, and the pod is not among the VMI's activePods */
	T_EQ(target_case(&w, NULL, NULL, "\"" TGT_UID "\": \"node-b\"",
			 "\"00000000-0000-4000-8000-000000000001\": \"node-b\"",
			 "\"phase\": \"Running\"", "\"phase\": \"Succeeded\"", true, "node-b"),
	     KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "phase Succeeded") != NULL);
	world_free(&w);
	/* Succeeded and KubeVirt lists it among the active pods: the VM's pod now */
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, "\"phase\": \"Running\"",
			 "\"phase\": \"Succeeded\"", true, "node-b"), KUBE_KV_ACTIVE);
	T_CHECK(strstr(w.why, "status.activePods") != NULL);
	world_free(&w);
	/* being deleted (cancelled) */
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, "\"resourceVersion\": \"1050\"",
			 "\"resourceVersion\": \"1050\", \"deletionTimestamp\": "
			 "\"2026-08-22T10:41:00Z\"", true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "being deleted") != NULL);
	world_free(&w);
	/* the VMI (updated first) already says it failed */
	T_EQ(target_case(&w, NULL, NULL, "\"failed\": false", "\"failed\": true", NULL, NULL,
			 true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "failed") != NULL);
	world_free(&w);
}

static void test_vmim_for_another_node(void)
{
	struct world w;
	T_EQ(target_case(&w, NULL, NULL, NULL, NULL, NULL, NULL, true, "node-c"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "target node node-b, this is node node-c") != NULL);
	world_free(&w);
	/* only the VMIM names a node (the VMI's state is another migration's) */
	T_EQ(target_case(&w, NULL, NULL, "\"migrationUid\": \"" MIG_UID,
			 "\"migrationUid\": \"00000000-0000-4000-8000-000000000000", NULL, NULL,
			 true, "node-c"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "the VMIM's") != NULL);
	world_free(&w);
}

static void test_another_target_pod(void)
{
	struct world w;
	/* a second labelled pod with the genuine VMIM's uid: the VMI names the real one */
	T_EQ(target_case(&w, "virt-launcher-vm-a-q7x2m", "virt-launcher-vm-a-evil1", NULL, NULL,
			 NULL, NULL, true, "node-b"), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "names target pod virt-launcher-vm-a-q7x2m, not this pod") !=
		NULL);
	world_free(&w);
}

static void test_completed_migration(void)
{
	struct world w;
	/* the VMI says the migration to this pod completed: active owner */
	T_EQ(target_case(&w, NULL, NULL, "\"completed\": false", "\"completed\": true", NULL,
			 NULL, false, "node-b"), KUBE_KV_ACTIVE);
	T_CHECK(strstr(w.why, "completed migration " MIG_UID) != NULL);
	world_free(&w);
	/* completed, but to another pod */
	T_EQ(target_case(&w, "virt-launcher-vm-a-q7x2m\"", "virt-launcher-vm-a-other\"",
			 "\"completed\": false", "\"completed\": true", NULL, NULL, true, "node-b"),
	     KUBE_KV_REFUSE);
	world_free(&w);
}

/* An unlabelled pod of vm-a: the source fixture, renamed (name NULL: as is) and with uid
 * `uid` (36 characters, written over the fixture's). */
static bool source_world(struct world *w, const char *uid, const char *name)
{
	struct fx *p = load("vm-a.source-pod.json", name ? "virt-launcher-vm-a-5cd9t" : NULL,
			    name);
	char *at = p ? strstr(p->text, SRC_UID) : NULL;
	if (at && strlen(uid) == strlen(SRC_UID)) {
		memcpy(at, uid, strlen(uid));
		kube_arena_init(&p->a, p->mem, sizeof(p->mem));
	}
	return world(w, p, load("vm-a.vmi.json", NULL, NULL), NULL, "node-a");
}

static void test_source_and_second_pod(void)
{
	struct world w;
	T_CHECK(source_world(&w, SRC_UID, NULL));
	T_EQ(kube_kv_decide(&w.q, w.why, sizeof(w.why)), KUBE_KV_ACTIVE);
	T_CHECK(strstr(w.why, "status.activePods lists this pod") != NULL);
	world_free(&w);

	/* a second pod claiming the VMI: KubeVirt does not list it; the holder decides */
	T_CHECK(source_world(&w, "22222222-2222-4222-8222-222222222222", "evil-second"));
	T_EQ(kube_kv_decide(&w.q, w.why, sizeof(w.why)), KUBE_KV_NEED_HOLDER);
	w.q.holder_pod = "default/virt-launcher-vm-a-5cd9t";
	w.q.holder = KUBE_KV_HOLDER_ALIVE;
	T_EQ(kube_kv_decide(&w.q, w.why, sizeof(w.why)), KUBE_KV_REFUSE);
	T_CHECK(strstr(w.why, "pod default/virt-launcher-vm-a-5cd9t, is alive") != NULL);
	static const enum kube_kv_holder free_states[] = {
		KUBE_KV_HOLDER_NONE, KUBE_KV_HOLDER_GONE, KUBE_KV_HOLDER_FINISHED,
		KUBE_KV_HOLDER_DELETING,
	};
	for (unsigned i = 0; i < sizeof(free_states) / sizeof(free_states[0]); i++) {
		w.q.holder = free_states[i];
		T_EQ(kube_kv_decide(&w.q, w.why, sizeof(w.why)), KUBE_KV_ACTIVE);
	}
	world_free(&w);

	/* no uid: refused outright */
	T_CHECK(source_world(&w, SRC_UID, NULL));
	w.pod.meta.uid = NULL;
	T_EQ(kube_kv_decide(&w.q, w.why, sizeof(w.why)), KUBE_KV_REFUSE);
	world_free(&w);
}

static void test_holder_of(void)
{
	struct fx *f = load("vm-a.source-pod.json", NULL, NULL);
	struct kube_pod p;
	T_CHECK(f && kube_pod_view(&f->doc, 0, &p, &f->a, NULL) == 0);
	if (!f)
		return;
	T_EQ(kube_kv_holder_of("", "x", &p), KUBE_KV_HOLDER_NONE);
	T_EQ(kube_kv_holder_of(NULL, "x", NULL), KUBE_KV_HOLDER_NONE);
	T_EQ(kube_kv_holder_of("x", "x", NULL), KUBE_KV_HOLDER_NONE);
	T_EQ(kube_kv_holder_of(SRC_UID, "x", NULL), KUBE_KV_HOLDER_GONE);
	T_EQ(kube_kv_holder_of("other-uid", "x", &p), KUBE_KV_HOLDER_GONE);
	T_EQ(kube_kv_holder_of(SRC_UID, "x", &p), KUBE_KV_HOLDER_ALIVE);
	p.phase = "Succeeded";
	T_EQ(kube_kv_holder_of(SRC_UID, "x", &p), KUBE_KV_HOLDER_FINISHED);
	p.phase = "Failed";
	T_EQ(kube_kv_holder_of(SRC_UID, "x", &p), KUBE_KV_HOLDER_FINISHED);
	p.phase = "Pending";
	T_EQ(kube_kv_holder_of(SRC_UID, "x", &p), KUBE_KV_HOLDER_ALIVE);
	p.meta.deletion_timestamp = "2026-08-22T10:41:00Z";
	T_EQ(kube_kv_holder_of(SRC_UID, "x", &p), KUBE_KV_HOLDER_DELETING);
	char why[256];
	T_EQ(kube_kv_holder_rule(KUBE_KV_HOLDER_UNKNOWN, NULL, why, sizeof(why)),
	     KUBE_KV_NEED_HOLDER);
	T_EQ(kube_kv_holder_rule(KUBE_KV_HOLDER_ALIVE, NULL, NULL, 0), KUBE_KV_REFUSE);
	unload(f);
}

static void test_vmi_active_pods(void)
{
	struct fx *f = load("vm-a.vmi.json", NULL, NULL);
	struct kube_vmi v;
	T_CHECK(f && kube_vmi_view(&f->doc, 0, &v, &f->a, NULL) == 0);
	if (!f)
		return;
	T_CHECK(kube_vmi_active_pod(&v, SRC_UID));
	T_CHECK(kube_vmi_active_pod(&v, TGT_UID));
	T_CHECK(!kube_vmi_active_pod(&v, "22222222-2222-4222-8222-222222222222"));
	T_CHECK(!kube_vmi_active_pod(&v, ""));
	T_CHECK(!kube_vmi_active_pod(&v, NULL));
	unload(f);
	f = load("vm-a.vmi.json", "\"activePods\"", "\"x-activePods\"");
	T_CHECK(f && kube_vmi_view(&f->doc, 0, &v, &f->a, NULL) == 0);
	T_CHECK(f && v.active_pods == -1 && !kube_vmi_active_pod(&v, SRC_UID));
	unload(f);
	f = load("vm-a.vmi.json", "\"activePods\": {", "\"activePods\": [1], \"x\": {");
	T_CHECK(f && kube_vmi_view(&f->doc, 0, &v, &f->a, NULL) < 0); /* not an object */
	unload(f);
}

static void test_names(void)
{
	T_CHECK(kube_name_is_label("default"));
	T_CHECK(kube_name_is_label("a"));
	T_CHECK(kube_name_is_label("kube-system"));
	T_CHECK(!kube_name_is_label(""));
	T_CHECK(!kube_name_is_label(NULL));
	T_CHECK(!kube_name_is_label("default/.."));
	T_CHECK(!kube_name_is_label(".."));
	T_CHECK(!kube_name_is_label("a.b"));
	T_CHECK(!kube_name_is_label("-a"));
	T_CHECK(!kube_name_is_label("a-"));
	T_CHECK(!kube_name_is_label("Default"));
	T_CHECK(!kube_name_is_label("a%2Fb"));
	char l64[65];
	memset(l64, 'a', 64);
	l64[64] = 0;
	T_CHECK(!kube_name_is_label(l64));
	l64[63] = 0;
	T_CHECK(kube_name_is_label(l64));

	T_CHECK(kube_name_is_subdomain("virt-launcher-vm-a-5cd9t"));
	T_CHECK(kube_name_is_subdomain("a.b.c"));
	T_CHECK(kube_name_is_subdomain("0"));
	T_CHECK(!kube_name_is_subdomain("pod?watch=1"));
	T_CHECK(!kube_name_is_subdomain("a..b"));
	T_CHECK(!kube_name_is_subdomain(".a"));
	T_CHECK(!kube_name_is_subdomain("a."));
	T_CHECK(!kube_name_is_subdomain("a/b"));
	T_CHECK(!kube_name_is_subdomain("a_b"));
	T_CHECK(!kube_name_is_subdomain("a b"));
	T_CHECK(!kube_name_is_subdomain(""));
	char s254[255];
	memset(s254, 'a', 254);
	s254[254] = 0;
	T_CHECK(!kube_name_is_subdomain(s254));
	s254[253] = 0;
	T_CHECK(kube_name_is_subdomain(s254));

	T_CHECK(kube_uid_valid(SRC_UID));
	T_CHECK(kube_uid_valid("ABCDEF01-2345"));
	T_CHECK(!kube_uid_valid(""));
	T_CHECK(!kube_uid_valid("-abc"));
	T_CHECK(!kube_uid_valid("uid-a"));
	T_CHECK(!kube_uid_valid("3f6c/../x"));
	char u65[66];
	memset(u65, 'a', 65);
	u65[65] = 0;
	T_CHECK(!kube_uid_valid(u65));
}

int main(void)
{
	T_RUN(test_genuine_target);
	T_RUN(test_fake_target_without_vmim);
	T_RUN(test_vmim_of_another_vmi);
	T_RUN(test_finished_vmim);
	T_RUN(test_vmim_for_another_node);
	T_RUN(test_another_target_pod);
	T_RUN(test_completed_migration);
	T_RUN(test_source_and_second_pod);
	T_RUN(test_holder_of);
	T_RUN(test_vmi_active_pods);
	T_RUN(test_names);
	return t_done();
}
