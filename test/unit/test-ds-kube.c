/* Unit tests of the kubernetes datastore's LIST and GET answer readers
 * (ipam_ds_kube_load_page, ipam_ds_kube_load_obj);
 * the I/O side is tested against the test API server in
 * test/integration/test_ds_kube.py. */
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <string.h>

static int page(struct ipam_state *st, enum ipam_kind k, const char *body, char *cont,
		struct err *e)
{
	return ipam_ds_kube_load_page(st, k, body, strlen(body), cont, 64, e);
}

static void test_records_and_versions(void)
{
	struct ipam_state st;
	struct err e = {0};
	char cont[64];
	ipam_state_init(&st);
	/* keys in another order and with spacing, as a server may send them */
	T_EQ(page(&st, IPAM_POOL,
		  "{\"items\":[{\"spec\": {\"reserved\": [], \"cidr\": \"198.18.0.0/24\", "
		  "\"blockSize\": 26}, \"metadata\": {\"resourceVersion\": \"17\", "
		  "\"name\": \"p4\"}}], \"metadata\": {\"continue\": \"tok-1\"}}",
		  cont, &e),
	     0);
	T_STREQ(cont, "tok-1");
	T_EQ(st.n_pools, 1);
	T_EQ(st.n_loaded, 1);
	T_STREQ(st.loaded[0].version, "17");
	/* kept in canonical form: an untouched state diffs to nothing */
	struct ipam_change *c;
	unsigned n = 99;
	T_EQ(ipam_state_diff(&st, &c, &n, &e), 0);
	T_EQ(n, 0);
	ipam_changes_free(c, n);
	/* last page; "items": null is an empty list */
	T_EQ(page(&st, IPAM_HANDLE, "{\"metadata\":{},\"items\":null}", cont, &e), 0);
	T_STREQ(cont, "");
	T_EQ(st.n_handles, 0);
	ipam_state_free(&st);
}

static void test_get_answer(void)
{
	struct ipam_state st;
	struct err e = {0};
	ipam_state_init(&st);
	const char *h = "{\"kind\":\"IPAMHandle\",\"metadata\":{\"name\":\"net.c1\","
			"\"resourceVersion\":\"42\"},\"spec\":{\"ips\":[\"198.18.0.5\"]}}";
	T_EQ(ipam_ds_kube_load_obj(&st, IPAM_HANDLE, "net.c1", h, strlen(h), &e), 0);
	T_EQ(st.n_handles, 1);
	T_STREQ(st.loaded[0].version, "42");
	/* the answer must be the object asked for */
	T_EQ(ipam_ds_kube_load_obj(&st, IPAM_HANDLE, "net.c2", h, strlen(h), &e), -EPROTO);
	T_CHECK(strstr(e.msg, "get ipamhandles net.c2: the answer is another object") != NULL);
	const char *bad[] = {
	    "[1]",
	    "{\"metadata\":{\"name\":\"net.c3\"},\"spec\":{\"ips\":[]}}",
	    "{\"metadata\":{\"name\":\"net.c3\",\"resourceVersion\":\"1\"},\"spec\":3}",
	    "{\"metadata\":{\"name\":\"net.c3\",\"resourceVersion\":\"1\"},"
	    "\"spec\":{\"ips\":[\"nope\"]}}",
	    "{\"metadata\":",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		int r = ipam_ds_kube_load_obj(&st, IPAM_HANDLE, "net.c3", bad[i], strlen(bad[i]), &e);
		T_CHECK(r == -EPROTO || r == -EUCLEAN || r == -EINVAL);
		T_CHECK(strstr(e.msg, "ipam kubernetes datastore") != NULL);
	}
	T_EQ(st.n_handles, 1);
	ipam_state_free(&st);
}

static void test_bad_answers_named(void)
{
	static const struct {
		enum ipam_kind kind;
		const char *body;
		int err;
		const char *msg;
	} cases[] = {
	    {IPAM_POOL, "{\"items\":", -EINVAL, "list ippools: bad answer"},
	    {IPAM_POOL, "{\"kind\":\"Status\"}", -EPROTO, "list ippools: no items array"},
	    {IPAM_BLOCK, "{\"items\":[{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{}}]}",
	     -EUCLEAN, "list ipamblocks: an item has no valid metadata.name"},
	    {IPAM_HANDLE, "{\"items\":[{\"metadata\":{\"name\":\"h\"},\"spec\":{\"ips\":[]}}]}",
	     -EUCLEAN, "ipamhandles h: no metadata.resourceVersion"},
	    {IPAM_HANDLE, "{\"items\":[{\"metadata\":{\"name\":\"h\",\"resourceVersion\":\"2\"}}]}",
	     -EUCLEAN, "ipamhandles h: no spec object"},
	    {IPAM_HANDLE,
	     "{\"items\":[{\"metadata\":{\"name\":\"h\",\"resourceVersion\":\"2\"},"
	     "\"spec\":{\"ips\":[\"198.18.0.1\"],\"x\":1}}]}",
	     -EUCLEAN, "ipamhandles h: bad spec"},
	    {IPAM_POOL,
	     "{\"items\":[{\"metadata\":{\"name\":\"Bad_Name\",\"resourceVersion\":\"2\"},"
	     "\"spec\":{}}]}",
	     -EUCLEAN, "no valid metadata.name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipam_state st;
		struct err e = {0};
		char cont[64];
		ipam_state_init(&st);
		T_EQ(page(&st, cases[i].kind, cases[i].body, cont, &e), cases[i].err);
		T_EQ(e.code, -cases[i].err);
		if (!strstr(e.msg, cases[i].msg))
			t_note("case %zu: message \"%s\" lacks \"%s\"", i, e.msg, cases[i].msg);
		T_CHECK(strstr(e.msg, cases[i].msg) != NULL);
		T_CHECK(strstr(e.msg, "ipam kubernetes datastore: ") == e.msg);
		ipam_state_free(&st);
	}
}

int main(void)
{
	T_RUN(test_records_and_versions);
	T_RUN(test_get_answer);
	T_RUN(test_bad_answers_named);
	return t_done();
}
