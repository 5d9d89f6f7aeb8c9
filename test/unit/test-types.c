/* Unit tests for kube/types: the typed views over the KubeVirt fixtures (source and
 * target virt-launcher pods, the VMI mid-migration, the VM, the VMIM) and a node,
 * asserting the real field values; wrong kinds, wrong JSON types, arena exhaustion. */
#include "lib/json.h"
#include "kube/types.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NTOK 2048

struct fx {
	char *text;             /* the file */
	struct json_doc doc;    /* parsed */
	struct json_tok tok[NTOK];
	char mem[8192];         /* arena memory */
	struct kube_arena a;    /* arena */
};

static struct fx *load(const char *path)
{
	struct fx *f = calloc(1, sizeof(*f));
	size_t n;
	f->text = t_slurp(path, &n);
	if (!f->text || json_parse(&f->doc, f->text, n, f->tok, NTOK, 0, NULL) != 0) {
		t_note("cannot load %s", path);
		free(f->text);
		free(f);
		return NULL;
	}
	kube_arena_init(&f->a, f->mem, sizeof(f->mem));
	return f;
}

static void unload(struct fx *f)
{
	if (!f)
		return;
	free(f->text);
	free(f);
}

static void test_source_pod(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.source-pod.json");
	struct kube_pod p;
	struct err e = { 0 };
	T_CHECK(f != NULL);
	if (!f)
		return;
	T_EQ(kube_pod_view(&f->doc, 0, &p, &f->a, &e), 0);
	T_STREQ(p.meta.name, "virt-launcher-vm-a-5cd9t");
	T_STREQ(p.meta.generate_name, "virt-launcher-vm-a-");
	T_STREQ(p.meta.namespace_, "default");
	T_STREQ(p.meta.uid, "3f6c1d2e-0a4b-4c5d-8e9f-1a2b3c4d5e6f");
	T_STREQ(p.meta.resource_version, "1010");
	T_STREQ(p.meta.kind, "Pod");
	T_STREQ(p.meta.api_version, "v1");
	T_CHECK(p.meta.deletion_timestamp == NULL);
	T_STREQ(p.node_name, "node-a");
	T_STREQ(p.phase, "Running");
	T_STREQ(p.pod_ip, "198.18.4.10");
	T_STREQ(kube_annotation(&p.meta, "kubevirt.io/domain", &f->a), "vm-a");
	T_STREQ(kube_label(&p.meta, "kubevirt.io/created-by", &f->a),
		"0b5b6f0e-1c7e-4d0a-9a55-3e1b4f1a2c11");
	T_STREQ(kube_label(&p.meta, "kubevirt.io/nodeName", &f->a), "node-a");
	T_CHECK(kube_label(&p.meta, "kubevirt.io/migrationJobUID", &f->a) == NULL);
	T_CHECK(kube_has_annotation(&p.meta, "kubevirt.io/allow-pod-bridge-network-live-migration"));
	T_STREQ(kube_annotation(&p.meta, "kubevirt.io/allow-pod-bridge-network-live-migration",
				&f->a),
		"");
	T_CHECK(!kube_has_annotation(&p.meta, "kubevirt.io/migration-target-ready-timestamp"));
	T_EQ(p.meta.n_owner_refs, 1);
	struct kube_owner_ref o;
	T_EQ(kube_controller_ref(&p.meta, &o, &f->a, &e), 0);
	T_STREQ(o.api_version, "kubevirt.io/v1");
	T_STREQ(o.kind, "VirtualMachineInstance");
	T_STREQ(o.name, "vm-a");
	T_STREQ(o.uid, "0b5b6f0e-1c7e-4d0a-9a55-3e1b4f1a2c11");
	T_CHECK(o.controller);
	T_CHECK(o.block_owner_deletion);
	T_EQ(kube_owner_ref(&p.meta, 1, &o, &f->a, &e), -ENOENT);
	unload(f);
}

static void test_target_pod(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.target-pod.json");
	struct kube_pod p;
	struct err e = { 0 };
	if (!T_CHECK(f != NULL))
		return;
	T_EQ(kube_pod_view(&f->doc, 0, &p, &f->a, &e), 0);
	T_STREQ(p.meta.name, "virt-launcher-vm-a-q7x2m");
	T_STREQ(p.node_name, "node-b");
	T_STREQ(p.phase, "Pending");
	T_CHECK(p.pod_ip == NULL);
	T_STREQ(kube_label(&p.meta, "kubevirt.io/migrationJobUID", &f->a),
		"7d1f3c2a-98e4-4b6f-bb0e-5a9c0d2e7f44");
	T_STREQ(kube_annotation(&p.meta, "kubevirt.io/migrationJobName", &f->a),
		"kubevirt-migrate-vm-8xk2p");
	T_CHECK(kube_label(&p.meta, "kubevirt.io/nodeName", &f->a) == NULL);
	unload(f);
}

static void test_vmi(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.vmi.json");
	struct kube_vmi v;
	struct err e = { 0 };
	if (!T_CHECK(f != NULL))
		return;
	T_EQ(kube_vmi_view(&f->doc, 0, &v, &f->a, &e), 0);
	T_STREQ(v.meta.name, "vm-a");
	T_STREQ(v.meta.uid, "0b5b6f0e-1c7e-4d0a-9a55-3e1b4f1a2c11");
	T_STREQ(v.meta.resource_version, "1044");
	T_STREQ(v.node_name, "node-a");
	T_STREQ(v.phase, "Running");
	T_STREQ(kube_label(&v.meta, "kubevirt.io/migrationTargetNodeName", &f->a), "node-b");
	T_STREQ(kube_annotation(&v.meta, "kubevirt.io/vm-generation", &f->a), "1");
	struct kube_owner_ref o;
	T_EQ(kube_controller_ref(&v.meta, &o, &f->a, &e), 0);
	T_STREQ(o.kind, "VirtualMachine");
	T_STREQ(o.uid, "5e0c2b7a-41d3-4c1e-9f0a-6b2d8e3c1f70");
	T_CHECK(v.mig.present);
	T_STREQ(v.mig.migration_uid, "7d1f3c2a-98e4-4b6f-bb0e-5a9c0d2e7f44");
	T_STREQ(v.mig.source_node, "node-a");
	T_STREQ(v.mig.source_pod, "virt-launcher-vm-a-5cd9t");
	T_STREQ(v.mig.target_node, "node-b");
	T_STREQ(v.mig.target_pod, "virt-launcher-vm-a-q7x2m");
	T_STREQ(v.mig.target_node_address, "198.18.0.12");
	T_STREQ(v.mig.target_node_domain_ready_ts, "2026-08-22T10:41:07Z");
	T_CHECK(v.mig.target_node_domain_detected);
	T_STREQ(v.mig.start_ts, "2026-08-22T10:40:51Z");
	T_CHECK(v.mig.end_ts == NULL);
	T_STREQ(v.mig.mode, "PreCopy");
	T_CHECK(!v.mig.completed);
	T_CHECK(!v.mig.failed);
	T_EQ(v.n_ifaces, 1);
	T_STREQ(v.ifaces[0].name, "default");
	T_STREQ(v.ifaces[0].interface_name, "eth0");
	T_STREQ(v.ifaces[0].mac, "52:54:00:3a:7f:21");
	T_STREQ(v.ifaces[0].ip, "198.18.4.10");
	T_EQ(v.ifaces[0].n_ips, 1);
	T_STREQ(v.ifaces[0].ips[0], "198.18.4.10");
	unload(f);
}

static void test_vm(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.vm.json");
	struct kube_vm v;
	struct err e = { 0 };
	if (!T_CHECK(f != NULL))
		return;
	T_EQ(kube_vm_view(&f->doc, 0, &v, &f->a, &e), 0);
	T_STREQ(v.meta.name, "vm-a");
	T_STREQ(v.meta.namespace_, "default");
	T_STREQ(v.meta.uid, "5e0c2b7a-41d3-4c1e-9f0a-6b2d8e3c1f70");
	T_STREQ(v.run_strategy, "Always");
	T_EQ(v.running, -1);
	T_CHECK(v.meta.deletion_timestamp == NULL);
	T_EQ(v.meta.n_owner_refs, 0);
	struct kube_owner_ref o;
	T_EQ(kube_controller_ref(&v.meta, &o, &f->a, &e), -ENOENT);
	unload(f);

	/* running: true/false, and a VM being deleted */
	struct json_tok tok[64];
	struct json_doc d;
	char mem[512];
	struct kube_arena a;
	const char *s = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"vm-b\","
			"\"deletionTimestamp\":\"2026-08-22T11:00:00Z\"},\"spec\":{\"running\":false}}";
	T_EQ(json_parse(&d, s, strlen(s), tok, 64, 0, NULL), 0);
	kube_arena_init(&a, mem, sizeof(mem));
	T_EQ(kube_vm_view(&d, 0, &v, &a, &e), 0);
	T_EQ(v.running, 0);
	T_STREQ(v.meta.deletion_timestamp, "2026-08-22T11:00:00Z");
	T_CHECK(v.run_strategy == NULL);
}

static void test_vmim(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.vmim.json");
	struct kube_vmim v;
	struct err e = { 0 };
	if (!T_CHECK(f != NULL))
		return;
	T_EQ(kube_vmim_view(&f->doc, 0, &v, &f->a, &e), 0);
	T_STREQ(v.meta.name, "kubevirt-migrate-vm-8xk2p");
	T_STREQ(v.meta.uid, "7d1f3c2a-98e4-4b6f-bb0e-5a9c0d2e7f44");
	T_STREQ(v.vmi_name, "vm-a");
	T_STREQ(v.phase, "Running");
	T_STREQ(kube_label(&v.meta, "kubevirt.io/vmi-name", &f->a), "vm-a");
	T_CHECK(v.mig.present);
	T_STREQ(v.mig.source_node, "node-a");
	T_STREQ(v.mig.target_node, "node-b");
	T_STREQ(v.mig.target_pod, "virt-launcher-vm-a-q7x2m");
	T_STREQ(v.mig.mode, "PreCopy");
	T_CHECK(v.mig.migration_uid == NULL); /* the VMIM's copy lags: not there yet */
	unload(f);
}

static void test_node(void)
{
	struct fx *f = load("test/data/json/node-a.json");
	struct kube_node n;
	struct err e = { 0 };
	if (!T_CHECK(f != NULL))
		return;
	T_EQ(kube_node_view(&f->doc, 0, &n, &f->a, &e), 0);
	T_STREQ(n.meta.name, "node-a");
	T_CHECK(n.meta.namespace_ == NULL);
	T_EQ(n.n_addrs, 3);
	T_STREQ(n.addrs[1].type, "InternalIP");
	T_STREQ(n.addrs[1].address, "2001:db8::11");
	T_STREQ(kube_node_address(&n, "InternalIP"), "198.18.0.11");
	T_STREQ(kube_node_address(&n, "Hostname"), "node-a");
	T_CHECK(kube_node_address(&n, "ExternalIP") == NULL);
	unload(f);
}

static void test_generic_meta_and_errors(void)
{
	struct json_tok tok[64];
	struct json_doc d;
	char mem[256];
	struct kube_arena a;
	struct kube_meta m;
	struct kube_pod p;
	struct err e = { 0 };
#define PARSE(s) T_EQ(json_parse(&d, s, strlen(s), tok, 64, 0, NULL), 0); kube_arena_init(&a, mem, sizeof(mem))
	/* a kvnet CRD: any kind, cluster-scoped */
	PARSE("{\"apiVersion\":\"kvnet.io/v1\",\"kind\":\"IPAMBlock\",\"metadata\":{\"name\":"
	      "\"198-18-4-0-26\",\"resourceVersion\":\"77\",\"labels\":{\"kvnet.io/pool\":\"p\\u0031\"}}}");
	T_EQ(kube_meta_view(&d, 0, &m, &a, &e), 0);
	T_STREQ(m.kind, "IPAMBlock");
	T_STREQ(m.resource_version, "77");
	T_STREQ(kube_label(&m, "kvnet.io/pool", &a), "p1");
	T_CHECK(kube_annotation(&m, "x", &a) == NULL);
	/* list items have no kind: accepted */
	PARSE("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":null}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), 0);
	T_CHECK(p.node_name == NULL);
	/* wrong kind */
	PARSE("{\"kind\":\"Node\",\"metadata\":{\"name\":\"p\"}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: Pod: object has kind Node");
	/* wrong JSON types name the path */
	PARSE("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":5}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: Pod: spec.nodeName: not a string");
	PARSE("{\"metadata\":{\"name\":\"p\",\"labels\":[]}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: Pod: metadata.labels: not an object");
	PARSE("{\"metadata\":{}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: Pod: metadata.name: missing or empty");
	PARSE("{\"kind\":\"Pod\"}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	PARSE("[]");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	PARSE("{\"metadata\":{\"name\":\"a\\u0000b\"}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: Pod: metadata.name: contains a NUL character");
	/* owner references: malformed, two controllers */
	PARSE("{\"metadata\":{\"name\":\"p\",\"ownerReferences\":[{\"kind\":\"X\"}]}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), 0);
	struct kube_owner_ref o;
	T_EQ(kube_controller_ref(&p.meta, &o, &a, &e), -EINVAL);
	PARSE("{\"metadata\":{\"name\":\"p\",\"ownerReferences\":["
	      "{\"apiVersion\":\"v1\",\"kind\":\"A\",\"name\":\"a\",\"uid\":\"1\",\"controller\":true},"
	      "{\"apiVersion\":\"v1\",\"kind\":\"B\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), 0);
	T_EQ(kube_controller_ref(&p.meta, &o, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: p: more than one controller reference");
	PARSE("{\"metadata\":{\"name\":\"p\",\"ownerReferences\":["
	      "{\"apiVersion\":\"v1\",\"kind\":\"A\",\"name\":\"a\",\"uid\":\"1\"},"
	      "{\"apiVersion\":\"v1\",\"kind\":\"B\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), 0);
	T_EQ(kube_controller_ref(&p.meta, &o, &a, &e), 0);
	T_STREQ(o.kind, "B");
	PARSE("{\"metadata\":{\"name\":\"p\",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":"
	      "\"A\",\"name\":\"a\",\"uid\":\"1\",\"controller\":\"yes\"}]}}");
	T_EQ(kube_pod_view(&d, 0, &p, &a, &e), 0);
	T_EQ(kube_controller_ref(&p.meta, &o, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: ownerReference: controller: not a boolean");
	/* VMIM without spec.vmiName */
	struct kube_vmim vm;
	PARSE("{\"metadata\":{\"name\":\"m\"},\"spec\":{}}");
	T_EQ(kube_vmim_view(&d, 0, &vm, &a, &e), -EINVAL);
	T_STREQ(e.msg, "kube: VirtualMachineInstanceMigration: spec.vmiName: missing or empty");
#undef PARSE
}

static void test_arena_exhaustion(void)
{
	struct fx *f = load("test/data/fixtures/vm-a.vmi.json");
	if (!T_CHECK(f != NULL))
		return;
	struct kube_vmi v;
	struct err e = { 0 };
	/* every arena size below what the view needs fails cleanly with -ENOSPC */
	kube_arena_init(&f->a, f->mem, sizeof(f->mem));
	T_EQ(kube_vmi_view(&f->doc, 0, &v, &f->a, &e), 0);
	size_t need = f->a.used;
	for (size_t cap = 0; cap < need; cap += 7) {
		kube_arena_init(&f->a, f->mem, cap);
		T_EQ(kube_vmi_view(&f->doc, 0, &v, &f->a, &e), -ENOSPC);
		T_CHECK(f->a.used <= cap);
	}
	kube_arena_init(&f->a, f->mem, need);
	T_EQ(kube_vmi_view(&f->doc, 0, &v, &f->a, &e), 0);
	unload(f);
}

int main(void)
{
	T_RUN(test_source_pod);
	T_RUN(test_target_pod);
	T_RUN(test_vmi);
	T_RUN(test_vm);
	T_RUN(test_vmim);
	T_RUN(test_node);
	T_RUN(test_generic_meta_and_errors);
	T_RUN(test_arena_exhaustion);
	return t_done();
}
