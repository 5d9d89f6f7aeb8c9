/* policy: `kvnet policy explain` — which policies select each side of a connection, the
 * verdict and why, computed by the compiler the agent uses (policy/) over a directory of
 * JSON and YAML files (NetworkPolicies, MultiNetworkPolicies, Pods, VMIs, Namespaces,
 * Lists of them; --network NS/NAD explains the MultiNetworkPolicies of that network; YAML may
 * hold several `---` documents) or over the API server (--api, --kubeconfig: the same
 * kinds listed cluster-wide, page by page). An address that a pod or VMI holds is
 * explained as that pod or VMI. Exit status: 0 allowed, 1 denied, 2 usage or input. */
#include "cmd/cmd.h"

#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lib/err.h"
#include "lib/file.h"
#include "lib/json.h"
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define POLICY_FILE_MAX (64u << 20)
#define POLICY_API_TIMEOUT_MS 15000
#define POLICY_API_PAGE 500

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f, "usage: kvnet policy explain --from NS/POD|IP --to NS/POD|IP --port PORT/PROTO\n"
		   "                            [--dir DIR | --api | --kubeconfig FILE [--context C]]\n"
		   "                            [--network NS/NAD]\n"
		   "  DIR (default .) holds JSON or YAML files: NetworkPolicy, Pod,\n"
		   "  VirtualMachineInstance,"
		   " Namespace objects, or Lists of them.\n"
		   "  --api reads them from the API server (KUBECONFIG, ~/.kube/config or in-cluster).\n"
		   "  An address held by a pod or VMI is explained as that pod or VMI.\n"
		   "  --network: the MultiNetworkPolicies of that NetworkAttachmentDefinition\n"
		   "  (NAD alone: namespace default) over the pods' addresses on it, as the\n"
		   "  agent enforces them on L2 ports.\n"
		   "  Exit 0 allowed, 1 denied, 2 error.\n");
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Load every *.json, *.yaml and *.yml of dir, in name order. */
static int load_dir(struct pol_world *w, const char *dir, struct err *e)
{
	DIR *d = opendir(dir);
	if (!d)
		return err_set(e, errno, "policy: %s: cannot open directory", dir);
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!ends_with(de->d_name, ".json") && !ends_with(de->d_name, ".yaml") &&
		    !ends_with(de->d_name, ".yml"))
			continue;
		char **nn = realloc(names, (n + 1) * sizeof(*nn));
		if (!nn || !(nn[n] = strdup(de->d_name))) {
			if (nn)
				names = nn;
			rc = err_setx(e, ENOMEM, "policy: out of memory");
			goto out;
		}
		names = nn;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[4096];
		char *text = NULL;
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = file_read(path, POLICY_FILE_MAX, &text, &len, e);
		if (rc == 0) {
			rc = ends_with(path, ".json") ? pol_world_add_json(w, text, len, NULL, e)
						      : pol_world_add_yaml(w, text, len, NULL, e);
			if (rc < 0)
				err_prefix(e, "%s", path);
		}
		free(text);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* Add every object of kind r (all namespaces) to w, page by page. A kind the API server
 * does not serve (404: KubeVirt not installed) adds nothing. */
static int load_kind(struct pol_world *w, struct kube_client *c, const struct kube_res *r,
		     struct err *e)
{
	char cont[1024] = "";
	do {
		struct kube_list_opts o = { .limit = POLICY_API_PAGE,
					    .continue_token = *cont ? cont : NULL };
		struct kube_resp resp = { 0 };
		int rc = kube_list(c, r, NULL, &o, &resp, e);
		if (rc == 0 && resp.status == 404) {
			kube_resp_free(&resp);
			return 0;
		}
		if (rc == 0 && resp.status != 200)
			rc = err_setx(e, EIO, "list %s: HTTP %d %s%s%s", r->plural, resp.status,
				      resp.reason, *resp.message ? ": " : "", resp.message);
		*cont = 0;
		struct json_doc d;
		struct json_tok *tok = NULL;
		/* one parse: the page's objects, and metadata.continue (the next page, if any) */
		if (rc == 0 && (rc = json_parse_alloc(&d, resp.body, resp.len, &tok, e)) == 0 &&
		    (rc = pol_world_add(w, &d, 0, NULL, e)) == 0) {
			int t = json_path(&d, 0, "metadata.continue");
			if (t >= 0 && json_str(&d, t, cont, sizeof(cont)) < 0)
				*cont = 0;
		}
		free(tok);
		kube_resp_free(&resp);
		if (rc < 0)
			return err_prefix(e, "%s", r->plural), rc;
	} while (*cont);
	return 0;
}

static int load_api(struct pol_world *w, const char *kubeconfig, const char *context,
		    struct err *e)
{
	struct kcfg *kc = NULL;
	struct kcfg_opts ko = { .kubeconfig = kubeconfig, .context = context, .envp = environ };
	int rc = kcfg_load(&kc, &ko, e);
	if (rc < 0)
		return err_prefix(e, "kubernetes"), rc;
	if (kc->insecure)
		fprintf(stderr, "kvnet policy: warning: %s: insecure-skip-tls-verify is set: the API "
				"server's certificate is NOT verified\n", kc->source);
	struct kube_client *c = kube_client_from_kcfg(kc, POLICY_API_TIMEOUT_MS, e);
	if (!c) {
		kcfg_free(kc);
		return err_prefix(e, "kubernetes"), -EINVAL;
	}
	const struct kube_res *kinds[] = { &kube_res_namespaces, &kube_res_netpols, &kube_res_pods,
					   &kube_res_vmis, &kube_res_mnetpols };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && rc == 0; i++)
		rc = load_kind(w, c, kinds[i], e);
	if (rc < 0)
		err_prefix(e, "%s", kc->server);
	kube_client_free(c);
	kcfg_free(kc);
	return rc;
}

/* An address end held by a pod or VMI becomes that pod or VMI (keeping the address). */
static void map_end(const struct pol_world *w, struct pol_end *end, bool *vm)
{
	*vm = false;
	if (!end->ns)
		pol_world_find_ip(w, &end->ip, &end->ns, &end->name, vm);
}

/* "NS/POD" or an address; s is kept (the end points into it). */
static bool parse_end(char *s, struct pol_end *end)
{
	*end = (struct pol_end){ 0 };
	if (ip_parse(s, &end->ip))
		return true;
	char *sl = strchr(s, '/');
	if (!sl || sl == s || !sl[1] || strchr(sl + 1, '/'))
		return false;
	*sl = 0;
	end->ns = s;
	end->name = sl + 1;
	return true;
}

static bool parse_port(char *s, uint16_t *port, uint8_t *proto)
{
	char *sl = strchr(s, '/');
	*proto = POL_TCP;
	if (sl) {
		*sl = 0;
		if (!(*proto = pol_proto_parse(sl + 1)))
			return false;
	}
	char *endp;
	long v = strtol(s, &endp, 10);
	if (!*s || *endp || v < 1 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

static void print_end(const char *what, const struct pol_end *end, bool mapped, bool vm)
{
	char b[IP_STRLEN];
	if (mapped)
		printf("%s %s = %s %s/%s\n", what, ip_fmt(&end->ip, b), vm ? "VMI" : "pod", end->ns,
		       end->name);
	else if (end->ns)
		printf("%s %s/%s (%s)\n", what, end->ns, end->name, ip_fmt(&end->ip, b));
	else
		printf("%s %s (address)\n", what, ip_fmt(&end->ip, b));
}

static int explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' }, { "dir", required_argument, NULL, 'd' },
		{ "api", no_argument, NULL, 'a' },        { "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "network", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	char *from = NULL, *to = NULL, *port_s = NULL;
	const char *dir = NULL, *kubeconfig = NULL, *context = NULL, *network = NULL;
	bool api = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:t:p:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'p': port_s = optarg; break;
		case 'd': dir = optarg; break;
		case 'a': api = true; break;
		case 'k': kubeconfig = optarg; api = true; break;
		case 'c': context = optarg; api = true; break;
		case 'n': network = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !from || !to || !port_s) {
		usage(stderr);
		return 2;
	}
	if (api && dir) {
		fprintf(stderr, "kvnet policy: --dir and --api/--kubeconfig: give one source\n");
		return 2;
	}
	struct pol_end src, dst;
	uint16_t port;
	uint8_t proto;
	if (!parse_end(from, &src) || !parse_end(to, &dst)) {
		fprintf(stderr, "kvnet policy: --from/--to: want NS/POD or an IP address\n");
		return 2;
	}
	if (!parse_port(port_s, &port, &proto)) {
		fprintf(stderr, "kvnet policy: --port: want PORT[/tcp|udp|sctp], PORT 1..65535\n");
		return 2;
	}
	struct err e = { 0 };
	struct pol_world *all = pol_world_new(), *w = all, *view = NULL;
	struct pol_verdict v;
	char net[320];
	int rc = 2;
	if (!all) {
		fprintf(stderr, "kvnet policy: out of memory\n");
		return 2;
	}
	bool src_vm, dst_vm;
	if ((api ? load_api(all, kubeconfig, context, &e) : load_dir(all, dir ? dir : ".", &e)) < 0) {
		fprintf(stderr, "kvnet policy: %s\n", e.msg);
		goto out;
	}
	if (network) {
		/* the world as that network sees it: its MultiNetworkPolicies, the pods'
		 * addresses on it (an address there is explained as its pod) */
		const char *sl = strchr(network, '/');
		if (!*network || (sl && (sl == network || !sl[1] || strchr(sl + 1, '/')))) {
			fprintf(stderr, "kvnet policy: --network: want NS/NAD or NAD\n");
			goto out;
		}
		snprintf(net, sizeof(net), "%s%s", sl ? "" : "default/", network);
		if (!(view = w = pol_world_net(all, net))) {
			fprintf(stderr, "kvnet policy: out of memory\n");
			goto out;
		}
		printf("network: %s (%u MultiNetworkPolicies in the world)\n", net,
		       pol_world_nmulti(all));
	}
	bool src_mapped = !src.ns, dst_mapped = !dst.ns;
	map_end(w, &src, &src_vm);
	map_end(w, &dst, &dst_vm);
	src_mapped = src_mapped && src.ns;
	dst_mapped = dst_mapped && dst.ns;
	if (pol_verdict(w, &src, &dst, proto, port, &v, &e) < 0) {
		fprintf(stderr, "kvnet policy: %s\n", e.msg);
		goto out;
	}
	print_end("from:", &src, src_mapped, src_vm);
	print_end("to:  ", &dst, dst_mapped, dst_vm);
	printf("port: %u/%s\n", port, pol_proto_name(proto));
	/* egress of the source first, then ingress of the destination */
	static const enum pol_dir order[POL_NDIR] = { POL_EGRESS, POL_INGRESS };
	for (int i = 0; i < POL_NDIR; i++) {
		enum pol_dir d = order[i];
		if (v.applies[d] && v.cdir[d]->n_policies) {
			printf("%s selected by:", d == POL_EGRESS ? "egress: " : "ingress:");
			for (unsigned j = 0; j < v.cdir[d]->n_policies; j++)
				printf(" %s", v.cdir[d]->policies[j]);
			printf("\n");
		}
		printf("  %s\n", v.why[d]);
	}
	printf("verdict: %s\n", v.allowed ? "allowed" : "denied");
	rc = v.allowed ? 0 : 1;
	pol_verdict_free(&v);
out:
	pol_world_free(view);
	pol_world_free(all);
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		return explain(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
