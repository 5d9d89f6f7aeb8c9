/* tns — network namespaces for kernel tests; see tns.h. Test code: the registry of
 * live namespaces is a file-scope table so the exit and signal handlers can reach it. */
#include "test/lib/tns.h"

#include "lib/err.h"
#include "net/nl.h"
#include "test/lib/t.h"

#include <linux/netlink.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define TNS_MAX 32

struct tns_slot {
	char name[64];	   /* kvt-<pid>-NAME */
	char path[96];	   /* /run/netns/kvt-<pid>-NAME */
	volatile int live; /* created and not yet deleted */
};

static struct tns_slot slots[TNS_MAX];
static bool hooks_installed;

/* Only async-signal-safe calls: what `ip netns del` does, without ip. */
static void remove_slot(struct tns_slot *s)
{
	if (!s->live)
		return;
	s->live = 0;
	umount2(s->path, MNT_DETACH);
	unlink(s->path);
}

static void remove_all(void)
{
	for (int i = 0; i < TNS_MAX; i++)
		remove_slot(&slots[i]);
}

static void on_signal(int sig)
{
	remove_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_hooks(void)
{
	if (hooks_installed)
		return;
	hooks_installed = true;
	atexit(remove_all);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

const char *tns_new(const char *name)
{
	install_hooks();
	for (int i = 0; i < TNS_MAX; i++) {
		struct tns_slot *s = &slots[i];
		if (s->live)
			continue;
		char full[64];
		snprintf(full, sizeof(full), "kvt-%d-%s", (int)getpid(), name);
		memcpy(s->name, full, sizeof(full));
		snprintf(s->path, sizeof(s->path), "/run/netns/%s", full);
		int st;
		char *out = t_sh(&st, "ip netns add %s 2>&1 && ip -n %s link set lo up 2>&1",
				 s->name, s->name);
		s->live = 1; /* even half-made, it must go */
		if (st != 0) {
			t_note("tns: ip netns add %s: %s", s->name, out ? out : "?");
			free(out);
			remove_slot(s);
			return NULL;
		}
		free(out);
		return s->name;
	}
	t_note("tns: more than %d namespaces", TNS_MAX);
	return NULL;
}

const char *tns_path(const char *ns)
{
	static char path[96];
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	return path;
}

void tns_del(const char *ns)
{
	for (int i = 0; i < TNS_MAX; i++)
		if (slots[i].live && strcmp(slots[i].name, ns) == 0)
			remove_slot(&slots[i]);
}

struct nl_sock *tns_sock(const char *ns)
{
	struct nl_sock *s;
	struct err e = {0};
	if (nl_open_in_netns(&s, NETLINK_ROUTE, tns_path(ns), &e) < 0) {
		t_note("tns: socket in %s: %s", ns, e.msg);
		return NULL;
	}
	return s;
}

char *tns_sh(int *status, const char *ns, const char *fmt, ...)
{
	char cmd[3000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	setenv("KVT_CMD", cmd, 1);
	return t_sh(status, "ip netns exec %s sh -c \"$KVT_CMD\"", ns);
}

char *tns_ipj(const char *ns, const char *args, const char *py)
{
	int st;
	/* the expression travels in the environment: no shell quoting to get wrong. The
	 * distribution's python3 (build.sh installs it) starts far faster than a shim. */
	const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	setenv("KVT_PY", py, 1);
	char *out = t_sh(&st,
			 "ip -n %s -j %s | %s -c 'import json,os,sys; d=json.load(sys.stdin); "
			 "print(eval(os.environ[\"KVT_PY\"]))'",
			 ns, args, python);
	if (st != 0 || !out) {
		t_note("tns: ip -n %s -j %s | %s: exit %d", ns, args, py, st);
		free(out);
		return NULL;
	}
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return out;
}

int tns_ipj_is(const char *ns, const char *args, const char *py, const char *want)
{
	char *got = tns_ipj(ns, args, py);
	int ok = got && strcmp(got, want) == 0;
	if (!ok)
		t_note("tns: ip -j %s | %s: got \"%s\", want \"%s\"", args, py,
		       got ? got : "(failed)", want);
	free(got);
	return ok;
}
