/* ipam-kube — drive the IPAM operations through the kubernetes datastore (ipam/ds_kube)
 * from the command line, so test/integration/test_ds_kube.py can check what kvnet really
 * wrote with an independent client.
 *
 *   ipam-kube --kubeconfig FILE [--timeout-ms N] [--retries N] [--page N] CMD ARGS...
 *
 * CMD:  pool NAME CIDR [BLOCK_PREFIX]          add a pool
 *       alloc PREFIX NODE COUNT v4|v6|dual      COUNT updates, handles PREFIX-0..COUNT-1;
 *                                               prints "HANDLE IP[ IP]" per allocation
 *       release HANDLE                          release (refused while an owner is set)
 *       owner HANDLE active|alternate NS/POD UID NODE [EXPECT_UID]
 *       clear HANDLE active|alternate UID
 *       check                                   load + ipam_check; prints a summary
 * --retries N: an update that ends in -EAGAIN (the datastore loop ran out of conflict
 * tries) is run again up to N times, as a container runtime does on CNI code 11.
 * --page N: LIST page size of the datastore (default IPAM_DS_KUBE_PAGE).
 * Last line on success: "stats requests=N updates=N again=N". Failures print
 * "ERR errno=NAME msg=..." and exit 1; usage errors exit 2.
 */
#include "ipam/ds.h"
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct op {
	const char *cmd;			   /* the command */
	char **argv;				   /* its arguments */
	int argc;				   /* their count */
	const char *handle;			   /* handle operated on */
	struct ip_addr out[IPAM_HANDLE_IPS_MAX]; /* alloc: the addresses */
	unsigned n_out;				   /* alloc: their count */
	unsigned families;			   /* alloc: IPAM_V4|IPAM_V6 */
	const char *node;			   /* alloc: node */
	struct ipam_state summary;		   /* check: the state read */
};

static const char *errno_name(int r)
{
	switch (-r) {
	case ENOENT:
		return "ENOENT";
	case EEXIST:
		return "EEXIST";
	case ESTALE:
		return "ESTALE";
	case EAGAIN:
		return "EAGAIN";
	case EACCES:
		return "EACCES";
	case EPERM:
		return "EPERM";
	case EINVAL:
		return "EINVAL";
	case EBUSY:
		return "EBUSY";
	case ENOSPC:
		return "ENOSPC";
	case EUCLEAN:
		return "EUCLEAN";
	case EPROTO:
		return "EPROTO";
	}
	return "OTHER";
}

static enum ipam_slot slot_of(const char *s)
{
	return !strcmp(s, "alternate") ? IPAM_ALTERNATE : IPAM_ACTIVE;
}

static int run_op(struct ipam_state *st, void *arg, struct err *e)
{
	struct op *o = arg;
	if (!strcmp(o->cmd, "pool")) {
		struct ipam_cidr c;
		int r = ipam_cidr_parse(&c, o->argv[1], e);
		if (r)
			return r;
		return ipam_pool_add(st, o->argv[0], &c,
				     o->argc > 2 ? (unsigned)atoi(o->argv[2]) : 0, NULL, 0, e);
	}
	if (!strcmp(o->cmd, "alloc")) {
		struct ipam_attrs a;
		memset(&a, 0, sizeof(a));
		snprintf(a.pod, sizeof(a.pod), "%s", o->handle);
		snprintf(a.ns, sizeof(a.ns), "default");
		snprintf(a.node, sizeof(a.node), "%s", o->node);
		snprintf(a.ifname, sizeof(a.ifname), "eth0");
		snprintf(a.container_id, sizeof(a.container_id), "%s", o->handle);
		return ipam_alloc(st, o->handle, o->node, o->families, &a, o->out, &o->n_out, e);
	}
	if (!strcmp(o->cmd, "release"))
		return ipam_release_handle(st, o->handle, false, e);
	if (!strcmp(o->cmd, "owner")) {
		struct ipam_owner w;
		memset(&w, 0, sizeof(w));
		const char *slash = strchr(o->argv[2], '/');
		if (!slash || (size_t)(slash - o->argv[2]) > IPAM_NS_MAX)
			return err_setx(e, EINVAL, "owner: NS/POD expected");
		memcpy(w.ns, o->argv[2], (size_t)(slash - o->argv[2]));
		snprintf(w.name, sizeof(w.name), "%s", slash + 1);
		snprintf(w.uid, sizeof(w.uid), "%s", o->argv[3]);
		snprintf(w.node, sizeof(w.node), "%s", o->argv[4]);
		return ipam_owner_set(st, o->handle, slot_of(o->argv[1]), &w,
				      o->argc > 5 ? o->argv[5] : NULL, e);
	}
	if (!strcmp(o->cmd, "clear"))
		return ipam_owner_clear(st, o->handle, slot_of(o->argv[1]), o->argv[2], e);
	if (!strcmp(o->cmd, "config")) {
		struct ipam_config c;
		if (!strcmp(o->argv[0], "none")) {
			ipam_config_clear(st);
			return 0;
		}
		if (!ipam_persist_parse(o->argv[0], &c.vm_persistence))
			return err_setx(e, EINVAL, "config: Enabled, Disabled or none");
		return ipam_config_set(st, &c, e);
	}
	return err_setx(e, EINVAL, "unknown command %s", o->cmd);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: ipam-kube --kubeconfig FILE [--timeout-ms N] [--retries N] [--page N] "
		"pool|alloc|release|owner|clear|check|config|getconfig ARGS...\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *kc = NULL;
	int timeout_ms = 3000, retries = 0, page = 0, i = 1;
	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--kubeconfig"))
			kc = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout-ms"))
			timeout_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--retries"))
			retries = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--page"))
			page = atoi(argv[i + 1]);
		else
			return usage();
	}
	if (!kc || i >= argc)
		return usage();
	struct op o = {.cmd = argv[i], .argv = argv + i + 1, .argc = argc - i - 1};
	static const struct {
		const char *cmd;
		int min, max;
	} shape[] = {{"pool", 2, 3},  {"alloc", 4, 4}, {"release", 1, 1},
		     {"owner", 5, 6}, {"clear", 3, 3}, {"check", 0, 0},
		     {"config", 1, 1}, {"getconfig", 0, 0}};
	bool known = false;
	for (size_t k = 0; k < sizeof(shape) / sizeof(shape[0]); k++)
		if (!strcmp(o.cmd, shape[k].cmd)) {
			known = true;
			if (o.argc < shape[k].min || o.argc > shape[k].max)
				return usage();
		}
	if (!known)
		return usage();

	struct err e = {0};
	struct kcfg *k = NULL;
	struct kcfg_opts ko = {.kubeconfig = kc, .envp = environ};
	int r = kcfg_load(&k, &ko, &e);
	struct kube_client *c = r ? NULL : kube_client_from_kcfg(k, timeout_ms, &e);
	if (!c) {
		printf("ERR errno=%s msg=%s\n", errno_name(r ? r : -EINVAL), e.msg);
		kcfg_free(k);
		return 1;
	}
	struct ipam_ds_kube dk;
	ipam_ds_kube_init(&dk, c);
	dk.page = (unsigned)page;
	struct ipam_ds ds = ipam_ds_kube(&dk);
	unsigned updates = 0, again = 0;
	srand((unsigned)getpid());

	if (!strcmp(o.cmd, "getconfig")) {
		struct ipam_config cf;
		r = ipam_ds_kube_config(&dk, &cf, &e);
		if (!r)
			printf("kubeVirtVMAddressPersistence=%s\n",
			       ipam_persist_name(cf.vm_persistence));
	} else if (!strcmp(o.cmd, "check")) {
		struct ipam_state st;
		r = ipam_ds_read(&ds, &st, &e);
		if (!r)
			r = ipam_check(&st, &e);
		if (!r) {
			unsigned allocs = 0;
			for (unsigned b = 0; b < st.n_blocks; b++)
				for (unsigned s = 0; s < st.blocks[b].size; s++)
					allocs += st.blocks[b].slot[s] != NULL;
			struct ipam_config cf;
			bool rec = ipam_config_get(&st, &cf);
			printf("ok pools=%u blocks=%u handles=%u allocations=%u config=%s\n",
			       st.n_pools, st.n_blocks, st.n_handles, allocs,
			       rec ? ipam_persist_name(cf.vm_persistence) : "none");
		}
		ipam_state_free(&st);
	} else {
		unsigned count = 1;
		char handle[IPAM_NAME_MAX + 1];
		if (!strcmp(o.cmd, "alloc")) {
			o.node = o.argv[1];
			count = (unsigned)atoi(o.argv[2]);
			o.families = !strcmp(o.argv[3], "v6")	  ? IPAM_V6
				     : !strcmp(o.argv[3], "dual") ? IPAM_V4 | IPAM_V6
								  : IPAM_V4;
		} else if (strcmp(o.cmd, "pool")) {
			o.handle = o.argv[0];
		}
		for (unsigned n = 0; n < count && !r; n++) {
			if (!strcmp(o.cmd, "alloc")) {
				snprintf(handle, sizeof(handle), "%s-%u", o.argv[0], n);
				o.handle = handle;
			}
			for (int t = 0;; t++) {
				err_clear(&e);
				r = ipam_ds_update(&ds, run_op, &o, &e);
				updates++;
				if (r != -EAGAIN || t >= retries)
					break;
				again++;
				struct timespec ts = {0, (long)(rand() % 50 + 1) * 1000000L};
				nanosleep(&ts, NULL);
			}
			if (!r && !strcmp(o.cmd, "alloc")) {
				printf("%s", handle);
				for (unsigned a = 0; a < o.n_out; a++) {
					char s[64];
					printf(" %s", ipam_addr_str(&o.out[a], s, sizeof(s)));
				}
				printf("\n");
			}
		}
	}
	struct kube_client_stats ks;
	kube_client_stats(c, &ks);
	if (r)
		printf("ERR errno=%s msg=%s\n", errno_name(r), e.msg);
	else
		printf("stats requests=%llu updates=%u again=%u\n", (unsigned long long)ks.requests,
		       updates, again);
	kube_client_free(c);
	kcfg_free(k);
	return r ? 1 : 0;
}
