/* Unit tests for the pure parts of kube/client: request paths and argument checks.
 * The operations themselves are tested against the test API server over TLS in
 * test/integration/test_kube_client.py. */
#include "kube/client.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>

static void test_paths(void)
{
	char b[256];
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, "vms", "virt-launcher-a-x", NULL), 0);
	T_STREQ(b, "/api/v1/namespaces/vms/pods/virt-launcher-a-x");
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, NULL, NULL, NULL), 0);
	T_STREQ(b, "/api/v1/pods");
	T_EQ(kube_path(b, sizeof(b), &kube_res_vmis, "vms", "a", NULL), 0);
	T_STREQ(b, "/apis/kubevirt.io/v1/namespaces/vms/virtualmachineinstances/a");
	T_EQ(kube_path(b, sizeof(b), &kube_res_ipamblocks, "ignored", "198-18-0-0-26", "status"), 0);
	T_STREQ(b, "/apis/kvnet.io/v1/ipamblocks/198-18-0-0-26/status");
	T_EQ(kube_path(b, sizeof(b), &kube_res_nodes, NULL, "node-a", NULL), 0);
	T_STREQ(b, "/api/v1/nodes/node-a");
}

static void test_path_encoding_and_refusals(void)
{
	char b[64];
	/* anything but unreserved characters is percent-encoded: no path injection */
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, "ns", "a/../b c", NULL), 0);
	T_STREQ(b, "/api/v1/namespaces/ns/pods/a%2F..%2Fb%20c");
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, "ns", "..", NULL), -EINVAL);
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, "ns", "", NULL), -EINVAL);
	/* a namespaced object needs its namespace */
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, NULL, "x", NULL), -EINVAL);
	/* too long for the buffer: an error, never a cut path */
	char name[128];
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	T_EQ(kube_path(b, sizeof(b), &kube_res_pods, "ns", name, NULL), -ENOSPC);
	T_STREQ(b, "");
}

static void test_client_new_checks(void)
{
	struct err e = { 0 };
	struct kube_server s = { .https = true, .host = "198.18.0.1", .port = "6443" };
	T_CHECK(kube_client_new(&s, &e) == NULL); /* https without TLS config */
	T_CHECK(strstr(e.msg, "TLS") != NULL);
	struct kube_server s2 = { .host = "", .port = "6443" };
	T_CHECK(kube_client_new(&s2, &e) == NULL);
	struct kube_server s3 = { .host = "[2001:db8::1]", .port = "6443" };
	struct kube_client *c = kube_client_new(&s3, &e);
	T_CHECK(c != NULL);
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	T_EQ(st.requests, 0);
	T_EQ(st.connects, 0);
	kube_client_free(c);
}

static void test_unreachable_server_is_a_clear_error(void)
{
	struct err e = { 0 };
	/* port 1 on loopback: nothing listens there */
	struct kube_server s = { .host = "127.0.0.1", .port = "1", .connect_timeout_ms = 500 };
	struct kube_client *c = kube_client_new(&s, &e);
	struct kube_resp r;
	T_CHECK(c != NULL);
	int rc = kube_get(c, &kube_res_pods, "ns", "x", &r, &e);
	T_EQ(rc, -ECONNREFUSED);
	T_CHECK(strstr(e.msg, "GET /api/v1/namespaces/ns/pods/x") != NULL);
	T_EQ(r.status, 0);
	kube_resp_free(&r);
	kube_client_free(c);
}

int main(void)
{
	T_RUN(test_paths);
	T_RUN(test_path_encoding_and_refusals);
	T_RUN(test_client_new_checks);
	T_RUN(test_unreachable_server_is_a_clear_error);
	return t_done();
}
