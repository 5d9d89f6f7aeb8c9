/* cni role — the CNI plugin (spec 1.1): /opt/cni/bin/kvnet run by the container runtime
 * with CNI_COMMAND set, the network configuration on stdin and the result (or an error
 * object) on stdout. This file reads the environment and stdin, dispatches and prints;
 * the plugin itself lives in cni/ (netconf.h: what is accepted; plugin.h: the commands;
 * vmid.h: VM identity; gc.h; mode.h: data-plane modes).
 */
#include "cmd/cmd.h"

#include "cni/gc.h"
#include "cni/netconf.h"
#include "cni/nodeconf.h"
#include "cni/plugin.h"
#include "cni/result.h"
#include "conf/conf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* getenv with empty meaning unset. */
static const char *env(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? v : NULL;
}

static int read_stdin(struct cni_req *r, struct cni_fail *f)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "stdin: malloc failed");
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CNI_STDIN_MAX) {
				free(buf);
				return cni_fail(f, CNI_E_DECODE, "network configuration too large",
					    "stdin: more than %u bytes", CNI_STDIN_MAX);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return cni_fail(f, CNI_E_INTERNAL, "out of memory", "stdin: realloc");
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(0, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int er = errno;
			free(buf);
			return cni_fail(f, CNI_E_INTERNAL, "cannot read stdin", "stdin: read: %s",
				    strerror(er));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	r->text = buf;
	r->len = len;
	return 0;
}

/* The node configuration (cni/nodeconf.h): the conflist's kvnet_conf, which must exist,
 * or /etc/kvnet/kvnet.conf when present; KVNET_* variables override either. */
static int node_conf(struct cni_req *r, struct cni_fail *f)
{
	const char *path = r->kvnet_conf[0] ? r->kvnet_conf : CONF_DEFAULT_PATH;
	struct conf cf;
	struct err e = { 0 };
	if (conf_load(&cf, path, !r->kvnet_conf[0], environ, &e) < 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid node configuration", "%s", e.msg);
	return cni_node_apply(r, &cf, path, getenv("NODE_NAME"), f);
}

/* Print a finished JSON document and a newline to stdout. */
static void print_doc(const struct json_w *w)
{
	fwrite(w->buf, 1, w->len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Success, the result written and logged: print and exit now. What is left is freeing
 * the heap and closing descriptors; exit does that at once, while freeing piece by piece
 * costs an munmap and a TLB flush per heap group (musl hands empty groups back to the
 * kernel): 0.4-1 ms of a ~4 ms ADD on the benchmark machine, and the runtime waits for
 * the exit. Only ADD and DEL, only on success; every other path cleans up. */
static _Noreturn void done_exit(struct cni_req *r)
{
	if (r->has_out)
		print_doc(&r->out);
	log_close(&r->log);
	_exit(0);
}

/* Print the error object for f, log it; returns the exit status 1. */
static int emit_error(struct cni_req *r, const struct cni_fail *f)
{
	struct json_w w;
	struct err e = { 0 };
	json_w_init_grow(&w, 4096);
	cni_error_write(&w, r, f);
	if (json_w_finish(&w, &e) == 0)
		print_doc(&w);
	else
		fprintf(stderr, "kvnet cni: output: %s\n", e.msg);
	json_w_free(&w);
	log_errorx(&r->log, "cni %s %s: %s: %s", r->command ? r->command : "-",
		   r->cid ? r->cid : "-", f->msg, f->det);
	return 1;
}

/* The commands that take a full configuration. */
static const struct {
	const char *name;				 /* CNI_COMMAND */
	int (*fn)(struct cni_req *r, struct cni_fail *f); /* cni/ */
} commands[] = {
	{ "ADD", cni_add },	  { "DEL", cni_del }, { "CHECK", cni_check },
	{ "STATUS", cni_status }, { "GC", cni_gc },
};

int cmd_cni(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct cni_req r;
	cni_req_init(&r);
	r.command = env("CNI_COMMAND");
	r.cid = env("CNI_CONTAINERID");
	r.netns = env("CNI_NETNS");
	r.ifname = env("CNI_IFNAME");
	struct cni_fail f = { 0 };
	int rc = -1;
	if (!r.command) {
		cni_fail(&f, CNI_E_ENV, "missing environment", "CNI_COMMAND is not set");
		goto out;
	}
	if (strcmp(r.command, "VERSION") == 0) {
		if (read_stdin(&r, &f) < 0)
			goto out;
		if (cni_conf_parse(&r, false, &f) < 0 && f.code != CNI_E_VERSION)
			goto out;
		r.version[0] = 0;
		rc = cni_version(&r, &f);
		goto out;
	}
	int (*fn)(struct cni_req *, struct cni_fail *) = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(r.command, commands[i].name) == 0)
			fn = commands[i].fn;
	if (!fn) {
		cni_fail(&f, CNI_E_ENV, "invalid environment",
			 "CNI_COMMAND '%s' is not ADD, DEL, CHECK, STATUS, GC or VERSION", r.command);
		goto out;
	}
	if (read_stdin(&r, &f) < 0 || cni_conf_parse(&r, true, &f) < 0 ||
	    cni_args_parse(&r, env("CNI_ARGS"), &f) < 0 || node_conf(&r, &f) < 0)
		goto out;
	if (r.log_file[0]) {
		int lr = log_open(&r.log, r.log_file);
		if (lr < 0) {
			cni_fail(&f, CNI_E_CONFIG, "invalid network configuration",
				 "log_file %s: open: %s", r.log_file, strerror(-lr));
			goto out;
		}
	}
	r.done = done_exit;
	rc = fn(&r, &f);
out:
	if (rc < 0)
		emit_error(&r, &f);
	else if (r.has_out)
		print_doc(&r.out);
	log_close(&r.log);
	cni_req_fini(&r);
	return rc < 0 ? 1 : 0;
}
