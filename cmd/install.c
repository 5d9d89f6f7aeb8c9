/* install / uninstall roles: put kvnet into a node's file tree, or take it back out.
 *
 *   kvnet install --root DIR [--dry-run] [--cni-only] [--force] [--conflist FILE]
 *                 [--conf FILE] [--binary FILE] [--kubeconfig-from-sa] [--sa-dir DIR]
 *                 [--every SECONDS]
 *   kvnet uninstall --root DIR [--dry-run]
 *
 * What goes where, and the rules (site files kept, atomic writes, the manifest that
 * uninstall follows): inst/inst.h. Every change is one line on stdout ("create file
 * opt/cni/bin/kvnet 0755"), then a summary; --dry-run prints the same lines with
 * "would" and changes nothing. A second install over an installed tree prints
 * "nothing to do".
 *
 *   --cni-only            binary, conflist, kvnet.conf (and kubeconfig): no role links, no
 *                         unit (the DaemonSet's init container)
 *   --force               replace a conflist or kvnet.conf that differs
 *   --kubeconfig-from-sa  write the CNI plugin's kubeconfig (kvnet.conf's [kubernetes]
 *                         kubeconfig) from the service account in --sa-dir (default
 *                         /var/run/secrets/kubernetes.io/serviceaccount) and
 *                         $KUBERNETES_SERVICE_HOST / $KUBERNETES_SERVICE_PORT
 *   --every SECONDS       after the install, stay and install again every SECONDS (what
 *                         changed is printed; nothing else): keeps the plugin's token
 *                         fresh as the kubelet rotates the service account's, and the
 *                         node's files in line with the ConfigMap (the DaemonSet's
 *                         sidecar). A failing later pass is reported and retried; SIGTERM
 *                         or SIGINT ends it with status 0
 *
 * Exit status: 0 done (or nothing to do); 1 failed (message on stderr); 2 usage error.
 */
#include "cmd/cmd.h"
#include "inst/inst.h"
#include "lib/err.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define EVERY_MAX 86400

static int install_usage(const char *role)
{
	if (strcmp(role, "uninstall") == 0)
		fprintf(stderr, "usage: kvnet uninstall --root DIR [--dry-run]\n");
	else
		fprintf(stderr,
			"usage: kvnet install --root DIR [--dry-run] [--cni-only] [--force]\n"
			"                     [--conflist FILE] [--conf FILE] [--binary FILE]\n"
			"                     [--kubeconfig-from-sa] [--sa-dir DIR] [--every SECONDS]\n");
	return 2;
}

static void print_plan(const struct inst_plan *p, bool dry)
{
	if (p->uninstall) /* first: a directory it sits in may be one to remove */
		printf("%sremove file %s\n", dry ? "would " : "", INST_MANIFEST);
	for (unsigned i = 0; i < p->n; i++) {
		const struct inst_item *it = &p->item[i];
		switch (it->action) {
		case INST_SAME:
		case INST_GONE:
			continue;
		case INST_CREATE:
		case INST_REPLACE:
		case INST_REMOVE:
			break;
		case INST_KEEP:
		case INST_CHANGED:
		case INST_NOTEMPTY:
			dry = false; /* the same now as after a real run */
			break;
		}
		printf("%s%s %s %s", dry ? "would " : "", inst_action_name(it->action),
		       inst_kind_name(it->kind), it->path);
		if (it->kind == INST_LINK)
			printf(" -> %s", it->data);
		else if (it->action == INST_CREATE || it->action == INST_REPLACE)
			printf(" %04o", (unsigned)it->mode);
		if (it->action == INST_KEEP)
			printf(": not the file kvnet install writes; yours is kept (--force "
			       "replaces it)");
		else if (it->action == INST_CHANGED)
			printf(": changed since kvnet install wrote it");
		else if (it->action == INST_NOTEMPTY)
			printf(": holds files kvnet install did not put there");
		putchar('\n');
	}
	if (!p->uninstall && p->manifest_dirty)
		printf("%swrite file %s 0644\n", dry ? "would " : "", INST_MANIFEST);
}

/* Carry out the plan and print what was done (dry: what would be); quiet: say nothing
 * when there is nothing to do. A directory uninstall finds not empty only when it tries,
 * so the lines come after the work. */
static int run(const char *role, struct inst_plan *p, bool dry, bool quiet)
{
	struct err e = { 0 };
	const char *root = p->root[0] ? p->root : "/";
	unsigned n = inst_changes(p);
	if (n == 0 && quiet)
		return 0;
	if (n == 0 || dry) {
		print_plan(p, dry);
		if (n == 0)
			printf("kvnet %s: %s: nothing to do\n", role, root);
		else
			printf("kvnet %s: %s: %u change%s (dry run: nothing changed)\n", role, root, n,
			       n == 1 ? "" : "s");
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (inst_apply(p, &e) < 0) {
		fprintf(stderr, "kvnet %s: %s (stopped there; a second run shows what is left)\n",
			role, e.msg);
		return 1;
	}
	print_plan(p, false);
	n = inst_changes(p);
	printf("kvnet %s: %s: %u change%s\n", role, root, n, n == 1 ? "" : "s");
	return fflush(stdout) == 0 ? 0 : 1;
}

/* One install: plan, print, apply. */
static int install_pass(const struct inst_opts *o, bool dry, bool quiet)
{
	struct inst_plan p;
	struct err e = { 0 };
	int rc;
	if (inst_plan_install(&p, o, &e) < 0) {
		fprintf(stderr, "kvnet install: %s\n", e.msg);
		rc = 1;
	} else {
		rc = run("install", &p, dry, quiet);
	}
	inst_plan_free(&p);
	return rc;
}

int cmd_install(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "cni-only", no_argument, NULL, 'C' },
		{ "force", no_argument, NULL, 'f' },
		{ "conflist", required_argument, NULL, 'l' },
		{ "conf", required_argument, NULL, 'c' },
		{ "binary", required_argument, NULL, 'b' },
		{ "kubeconfig-from-sa", no_argument, NULL, 'k' },
		{ "sa-dir", required_argument, NULL, 's' },
		{ "every", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct inst_opts o = { 0 };
	bool dry = false, sa = false;
	long every = 0;
	char *end;
	const char *sa_dir = SA_DIR;
	int opt;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+r:nh", lo, NULL)) != -1) {
		switch (opt) {
		case 'r':
			o.root = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'C':
			o.cni_only = true;
			break;
		case 'f':
			o.force = true;
			break;
		case 'l':
			o.conflist = optarg;
			break;
		case 'c':
			o.conf = optarg;
			break;
		case 'b':
			o.binary = optarg;
			break;
		case 'k':
			sa = true;
			break;
		case 's':
			sa_dir = optarg;
			break;
		case 'e':
			errno = 0;
			every = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || every < 1 || every > EVERY_MAX) {
				fprintf(stderr, "kvnet install: --every %s: want seconds 1..%d\n",
					optarg, EVERY_MAX);
				return install_usage("install");
			}
			break;
		case 'h':
			install_usage("install");
			return 0;
		default:
			fprintf(stderr, "kvnet install: unknown option or missing argument: %s\n",
				argv[optind - 1]);
			return install_usage("install");
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvnet install: unexpected argument '%s'\n", argv[optind]);
		return install_usage("install");
	}
	if (!o.root) {
		fprintf(stderr, "kvnet install: --root DIR is required (/ for this machine)\n");
		return install_usage("install");
	}
	if (every && dry) {
		fprintf(stderr, "kvnet install: --every and --dry-run do not go together\n");
		return install_usage("install");
	}
	if (sa) {
		o.sa_dir = sa_dir;
		o.api_host = getenv("KUBERNETES_SERVICE_HOST");
		o.api_port = getenv("KUBERNETES_SERVICE_PORT");
	}
	int rc = install_pass(&o, dry, false);
	if (every == 0 || rc != 0)
		return rc;
	/* SIGTERM/SIGINT are blocked and waited for with the period as the timeout: a
	 * signal ends the wait at once, whenever it comes */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0) {
		fprintf(stderr, "kvnet install: sigprocmask: %s\n", strerror(errno));
		return 1;
	}
	fflush(stdout);
	for (;;) {
		struct timespec ts = { .tv_sec = every, .tv_nsec = 0 };
		int sig = sigtimedwait(&stop, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0 && errno == EINTR)
			continue;
		if (install_pass(&o, false, true) != 0)
			fprintf(stderr, "kvnet install: will try again in %ld s\n", every);
		fflush(stdout);
		fflush(stderr);
	}
	return 0;
}

int cmd_uninstall(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL;
	bool dry = false;
	int opt;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+r:nh", lo, NULL)) != -1) {
		switch (opt) {
		case 'r':
			root = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'h':
			install_usage("uninstall");
			return 0;
		default:
			fprintf(stderr, "kvnet uninstall: unknown option or missing argument: %s\n",
				argv[optind - 1]);
			return install_usage("uninstall");
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvnet uninstall: unexpected argument '%s'\n", argv[optind]);
		return install_usage("uninstall");
	}
	if (!root) {
		fprintf(stderr, "kvnet uninstall: --root DIR is required (/ for this machine)\n");
		return install_usage("uninstall");
	}
	struct inst_plan p;
	struct err e = { 0 };
	int rc;
	if (inst_plan_uninstall(&p, root, &e) < 0) {
		fprintf(stderr, "kvnet uninstall: %s\n", e.msg);
		rc = 1;
	} else {
		rc = run("uninstall", &p, dry, false);
	}
	inst_plan_free(&p);
	return rc;
}
