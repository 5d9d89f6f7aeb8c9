/* Unit tests for ipam/live: pods, VMIs, VMs and IPAMHandle creation times read from LIST
 * pages (podIPs and the podIP fallback, finished phases, items that are skipped, an item
 * that is no object), and the RFC 3339 reader. */
#include "ipam/live.h"
#include "lib/err.h"
#include "lib/json.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Parse text into d with tokens from *tok (freed by the caller); the "items" token. */
static int items_of(struct json_doc *d, struct json_tok **tok, const char *text)
{
	size_t len = strlen(text);
	*tok = NULL;
	int rc = json_parse(d, text, len, NULL, 0, 0, NULL);
	if (rc && rc != -ENOSPC)
		return -1;
	*tok = calloc(d->n ? d->n : 1, sizeof(**tok));
	if (!*tok || json_parse(d, text, len, *tok, d->n, 0, NULL))
		return -1;
	return json_get(d, 0, "items");
}

static void test_pods(void)
{
	const char page[] =
	    "{\"kind\":\"PodList\",\"items\":["
	    "{\"metadata\":{\"namespace\":\"default\",\"name\":\"p1\",\"uid\":\"u1\"},"
	    " \"spec\":{\"nodeName\":\"node-a\"},\"status\":{\"phase\":\"Running\","
	    " \"podIP\":\"198.18.0.9\",\"podIPs\":[{\"ip\":\"198.18.0.2\"},{\"ip\":\"bogus\"},"
	    " {\"ip\":\"2001:db8::2\"}]}},"
	    "{\"metadata\":{\"namespace\":\"default\",\"name\":\"p2\"},"
	    " \"status\":{\"phase\":\"Succeeded\",\"podIP\":\"198.18.0.3\"}},"
	    "{\"metadata\":{\"name\":\"no-namespace\"}},"
	    "{\"metadata\":{\"namespace\":\"default\",\"name\":\"p3\",\"uid\":\"u3\"},"
	    " \"status\":{\"phase\":\"Failed\",\"podIPs\":[{\"ip\":\"198.18.0.4\"},"
	    " {\"ip\":\"198.18.0.5\"},{\"ip\":\"198.18.0.6\"},{\"ip\":\"198.18.0.7\"},"
	    " {\"ip\":\"198.18.0.8\"}]}}]}";
	struct json_doc d;
	struct json_tok *tok;
	int items = items_of(&d, &tok, page);
	T_CHECK(items > 0);
	struct ipam_live l;
	ipam_live_init(&l);
	T_EQ(ipam_live_pods_page(&l, &d, items, NULL), 0);
	T_EQ(l.n_pods, 3);
	if (l.n_pods == 3) {
		T_STREQ(l.pods[0].ns, "default");
		T_STREQ(l.pods[0].name, "p1");
		T_STREQ(l.pods[0].uid, "u1");
		T_STREQ(l.pods[0].node, "node-a");
		T_CHECK(!l.pods[0].done);
		T_EQ(l.pods[0].n_ips, 2); /* podIPs win over podIP; "bogus" skipped */
		T_EQ(l.pods[0].ips[1].family, AF_INET6);
		T_STREQ(l.pods[1].uid, "");
		T_STREQ(l.pods[1].node, "");
		T_CHECK(l.pods[1].done);
		T_EQ(l.pods[1].n_ips, 1); /* podIP when there are no podIPs */
		T_CHECK(l.pods[2].done);
		T_EQ(l.pods[2].n_ips, IPAM_HANDLE_IPS_MAX);
	}
	T_CHECK(!l.known); /* the caller says when the whole view is loaded */
	ipam_live_free(&l);
	free(tok);

	/* an item that is no object: an error naming the list */
	items = items_of(&d, &tok, "{\"items\":[7]}");
	ipam_live_init(&l);
	struct err e = {0};
	T_CHECK(ipam_live_pods_page(&l, &d, items, &e) < 0);
	T_CHECK(strstr(e.msg, "list pods") != NULL);
	T_CHECK(ipam_live_pods_page(&l, &d, items, NULL) < 0); /* also without e */
	T_EQ(l.n_pods, 0);
	ipam_live_free(&l);
	free(tok);
}

static void test_vmis_vms(void)
{
	const char page[] = "{\"items\":[{\"metadata\":{\"namespace\":\"default\",\"name\":"
			    "\"vm-a\",\"uid\":\"ua\"}},{\"metadata\":{\"name\":\"x\"}},"
			    "{\"metadata\":{\"namespace\":\"other\",\"name\":\"vm-b\"}}]}";
	struct json_doc d;
	struct json_tok *tok;
	int items = items_of(&d, &tok, page);
	struct ipam_live l;
	ipam_live_init(&l);
	T_EQ(ipam_live_vmis_page(&l, &d, items, NULL), 0);
	T_EQ(ipam_live_vms_page(&l, &d, items, NULL), 0);
	T_EQ(l.n_vmis, 2);
	T_EQ(l.n_vms, 2);
	if (l.n_vmis == 2 && l.n_vms == 2) {
		T_STREQ(l.vmis[0].name, "vm-a");
		T_STREQ(l.vmis[0].uid, "ua");
		T_STREQ(l.vms[1].ns, "other");
		T_STREQ(l.vms[1].uid, "");
	}
	ipam_live_free(&l);
	free(tok);
	items = items_of(&d, &tok, "{\"items\":[\"vm\"]}");
	ipam_live_init(&l);
	struct err e = {0};
	T_CHECK(ipam_live_vms_page(&l, &d, items, &e) < 0);
	T_CHECK(strstr(e.msg, "list VMs") != NULL);
	ipam_live_free(&l);
	free(tok);
}

static void test_handle_times(void)
{
	const char page[] = "{\"items\":["
			    "{\"metadata\":{\"name\":\"kvnet.vmi.default.vm-a\","
			    " \"creationTimestamp\":\"2026-01-02T03:04:05Z\"}},"
			    "{\"metadata\":{\"name\":\"kvnet.c1\",\"creationTimestamp\":\"soon\"}},"
			    "{\"metadata\":{\"name\":\"kvnet.c2\"}}]}";
	struct json_doc d;
	struct json_tok *tok;
	int items = items_of(&d, &tok, page);
	struct ipam_htimes h = {0};
	T_EQ(ipam_htimes_page(&h, &d, items, NULL), 0);
	T_EQ(h.n, 2);
	T_EQ(ipam_htimes_get(&h, "kvnet.vmi.default.vm-a"), 1767323045);
	T_EQ(ipam_htimes_get(&h, "kvnet.c1"), -1); /* no time: counts as old */
	T_EQ(ipam_htimes_get(&h, "kvnet.c2"), -1); /* not listed */
	ipam_htimes_free(&h);
	T_EQ(h.n, 0);
	T_EQ(ipam_htimes_get(&h, "kvnet.vmi.default.vm-a"), -1);
	free(tok);

	T_EQ(ipam_rfc3339("1970-01-01T00:00:00Z"), 0);
	T_EQ(ipam_rfc3339("2026-01-02T03:04:05.123456Z"), 1767323045);
	T_EQ(ipam_rfc3339("2026-01-02 03:04:05"), -1);
	T_EQ(ipam_rfc3339(""), -1);
}

int main(void)
{
	T_RUN(test_pods);
	T_RUN(test_vmis_vms);
	T_RUN(test_handle_times);
	return t_done();
}
