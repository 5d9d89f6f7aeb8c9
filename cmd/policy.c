/* policy: `kvnet policy explain` — which policies select each side of a connection, the
 * verdict and why, computed by the compiler the agent uses (policy/) over a directory of
 * JSON and YAML files (NetworkPolicies, Pods, VMIs, Namespaces, Lists of them; YAML may
 * hold several `---` documents). Exit status: 0 allowed, 1 denied, 2 usage or input. */
#include "cmd/cmd.h"

#include "lib/err.h"
#include "lib/file.h"
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define POLICY_FILE_MAX (64u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: kvnet policy explain --from NS/POD|IP --to NS/POD|IP --port PORT/PROTO\n"
		   "                            [--dir DIR]\n"
		   "  DIR (default .) holds JSON or YAML files: NetworkPolicy, Pod,\n"
		   "  VirtualMachineInstance,"
		   " Namespace objects, or Lists of them.\n"
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

static void print_end(const char *what, const struct pol_end *end)
{
	char b[IP_STRLEN];
	if (end->ns)
		printf("%s %s/%s (%s)\n", what, end->ns, end->name, ip_fmt(&end->ip, b));
	else
		printf("%s %s (address)\n", what, ip_fmt(&end->ip, b));
}

static int explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' }, { "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	char *from = NULL, *to = NULL, *port_s = NULL;
	const char *dir = ".";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:t:p:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'p': port_s = optarg; break;
		case 'd': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !from || !to || !port_s) {
		usage(stderr);
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
	struct pol_world *w = pol_world_new();
	struct pol_verdict v;
	int rc = 2;
	if (!w) {
		fprintf(stderr, "kvnet policy: out of memory\n");
		return 2;
	}
	if (load_dir(w, dir, &e) < 0 || pol_verdict(w, &src, &dst, proto, port, &v, &e) < 0) {
		fprintf(stderr, "kvnet policy: %s\n", e.msg);
		goto out;
	}
	print_end("from:", &src);
	print_end("to:  ", &dst);
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
	pol_world_free(w);
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
