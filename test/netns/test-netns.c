/* netns tests for net/netns against the real kernel. Where the thread is, is checked
 * with tools that know nothing of kvnet: a shell child (forked from this thread, so it
 * inherits the thread's namespace) runs `ip netns identify` and `readlink
 * /proc/self/ns/net`, compared with `stat -L` of the namespace's mount; sysctls are
 * checked with `ip netns exec NS sysctl -n` and plain `sysctl -n`. */
#include "lib/err.h"
#include "net/netns.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *A, *B;   /* kvt-<pid>-a, kvt-<pid>-b */
static char *ORIG;          /* readlink /proc/self/ns/net at start: "net:[ino]" */

/* Output of a shell command run by a child of this thread, trailing newlines cut. */
static char *sh(const char *cmd)
{
	int st;
	char *out = t_sh(&st, "%s", cmd);
	if (!out)
		return strdup("(popen failed)");
	size_t n = strlen(out);
	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	return out;
}

/* Where a child of this thread is: `ip netns identify` ("" in the initial namespace). */
static char *where(void)
{
	return sh("ip netns identify 2>&1");
}

static char *here_link(void)
{
	return sh("readlink /proc/self/ns/net");
}

/* "net:[ino]" of a named namespace, from its mount (stat -L follows to the nsfs inode). */
static char *ns_link(const char *ns)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "stat -L -c 'net:[%%i]' %s", tns_path(ns));
	return sh(cmd);
}

static bool at_origin(void)
{
	char *now = here_link(), *id = where();
	bool ok = strcmp(now, ORIG) == 0 && strcmp(id, "") == 0;
	if (!ok)
		t_note("expected the original namespace %s, a child sees %s (ip netns identify: "
		       "'%s')",
		       ORIG, now, id);
	free(now);
	free(id);
	return ok;
}

static bool inside(const char *ns)
{
	char *now = here_link(), *want = ns_link(ns), *id = where();
	bool ok = strcmp(now, want) == 0 && strcmp(id, ns) == 0;
	if (!ok)
		t_note("expected %s (%s), a child sees %s (ip netns identify: '%s')", ns, want, now,
		       id);
	free(now);
	free(want);
	free(id);
	return ok;
}

static void test_enter_and_return(void)
{
	struct err e = { 0 };
	struct netns_saved saved;
	int fd = netns_open(A, &e); /* a name: /run/netns/NAME */
	T_CHECK(fd >= 0);
	T_CHECK(at_origin());
	T_EQ(netns_enter(&saved, fd, &e), 0);
	T_CHECK(saved.fd >= 0);
	T_CHECK(inside(A));
	/* from A straight into B by path, then back to A, then back to the origin */
	struct netns_saved saved2;
	T_EQ(netns_enter_path(&saved2, tns_path(B), &e), 0);
	T_CHECK(inside(B));
	T_EQ(netns_return(&saved2, &e), 0);
	T_CHECK(inside(A));
	T_EQ(netns_return(&saved, &e), 0);
	T_EQ(saved.fd, -1);
	T_CHECK(at_origin());
	/* returning twice is harmless */
	T_EQ(netns_return(&saved, &e), 0);
	T_CHECK(at_origin());
	close(fd);
}

/* Enter the namespace of another process through /proc/PID/ns/net. */
static void test_enter_pid(void)
{
	struct err e = { 0 };
	struct netns_saved saved;
	pid_t pid;
	char *argv[] = { "ip", "netns", "exec", (char *)B, "sleep", "30", NULL };
	T_EQ(posix_spawnp(&pid, "ip", NULL, NULL, argv, environ), 0);
	/* `ip netns exec` setns()es and then execs sleep in the same process: wait until
	 * the process is in B (bounded by the number of tries, not by a clock) */
	char want[64], cmd[128], *got = NULL;
	char *bl = ns_link(B);
	snprintf(want, sizeof(want), "%s", bl);
	free(bl);
	snprintf(cmd, sizeof(cmd), "readlink /proc/%d/ns/net", (int)pid);
	for (int i = 0; i < 500; i++) {
		free(got);
		got = sh(cmd);
		if (strcmp(got, want) == 0)
			break;
		usleep(10000);
	}
	T_STREQ(got, want);
	free(got);
	int fd = netns_open_pid(pid, &e);
	T_CHECK(fd >= 0);
	T_EQ(netns_enter(&saved, fd, &e), 0);
	T_CHECK(inside(B));
	T_EQ(netns_return(&saved, &e), 0);
	T_CHECK(at_origin());
	close(fd);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	/* a process that does not exist */
	T_EQ(netns_open_pid(pid, &e), -ENOENT);
	T_CHECK(strstr(e.msg, "/ns/net: open: No such file or directory") != NULL);
}

struct probe {
	char *where;   /* ip netns identify, seen from inside fn */
	int rc;        /* what fn returns */
};

static int probe_fn(void *arg, struct err *e)
{
	struct probe *p = arg;
	p->where = where();
	if (p->rc < 0)
		return err_setx(e, -p->rc, "probe: failing on purpose");
	return p->rc;
}

static void test_run(void)
{
	struct err e = { 0 };
	int fd = netns_open(A, &e);
	struct probe p = { NULL, 7 };
	T_EQ(netns_run(fd, probe_fn, &p, &e), 7);
	T_STREQ(p.where, A);
	free(p.where);
	T_CHECK(at_origin());
	/* fn fails: its error comes back, and so do we */
	p = (struct probe){ NULL, -EIO };
	T_EQ(netns_run(fd, probe_fn, &p, &e), -EIO);
	T_STREQ(p.where, A);
	T_STREQ(e.msg, "probe: failing on purpose");
	free(p.where);
	T_CHECK(at_origin());
	close(fd);
	/* entering fails: fn is not called */
	p = (struct probe){ NULL, 0 };
	int fdreg = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	T_EQ(netns_run(fdreg, probe_fn, &p, &e), -EINVAL);
	T_CHECK(p.where == NULL);
	close(fdreg);
	T_CHECK(at_origin());
}

static void test_enter_failures_stay_home(void)
{
	struct err e = { 0 };
	struct netns_saved saved;
	/* a path that does not exist */
	T_EQ(netns_enter_path(&saved, "/run/netns/kvt-no-such-namespace", &e), -ENOENT);
	T_STREQ(e.msg, "netns /run/netns/kvt-no-such-namespace: open: No such file or directory");
	T_EQ(saved.fd, -1);
	T_CHECK(at_origin());
	T_EQ(netns_enter_path(&saved, "kvt-no-such-namespace", &e), -ENOENT);
	T_CHECK(at_origin());
	/* a file that is not a namespace */
	T_EQ(netns_enter_path(&saved, "/etc/hostname", &e), -EINVAL);
	T_STREQ(e.msg, "netns /etc/hostname: netns: enter (not a network namespace?): Invalid "
		       "argument");
	T_EQ(saved.fd, -1);
	T_CHECK(at_origin());
	/* a namespace, but not a network one */
	T_EQ(netns_enter_path(&saved, "/proc/self/ns/uts", &e), -EINVAL);
	T_CHECK(at_origin());
	/* a closed fd */
	T_EQ(netns_enter(&saved, 999, &e), -EBADF);
	T_EQ(saved.fd, -1);
	T_CHECK(at_origin());
	/* bad names */
	T_EQ(netns_open("", &e), -EINVAL);
	T_EQ(netns_open("..", &e), -EINVAL);
	T_CHECK(netns_return(&saved, &e) == 0);
	T_CHECK(at_origin());
}

static void test_sysctl_names(void)
{
	struct err e = { 0 };
	char p[NETNS_SYSCTL_PATH_MAX];
	struct {
		const char *name, *path;
	} good[] = {
		{ "net.ipv4.conf.kvabc.proxy_arp", "/proc/sys/net/ipv4/conf/kvabc/proxy_arp" },
		{ "net/ipv4/conf/kvabc/proxy_arp", "/proc/sys/net/ipv4/conf/kvabc/proxy_arp" },
		{ "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_forward" },
		{ "net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter" },
		{ "net/ipv4/conf/eth0.100/rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter" },
		{ "net.ipv6.conf.all.forwarding", "/proc/sys/net/ipv6/conf/all/forwarding" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		T_EQ(netns_sysctl_path(good[i].name, p, sizeof(p), &e), 0);
		T_STREQ(p, good[i].path);
	}
	const char *bad[] = { "", "net", "kernel.hostname", "net..ipv4", "net.ipv4.", ".net.ipv4",
			      "net/../../etc/passwd", "net.//.//.x", "net./.x", "/etc/passwd",
			      "net.ipv4.conf.a b.proxy_arp", "net.ipv4.conf.a\nb.x", "nets.ipv4.x",
			      "/proc/sys/kernel/hostname" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!T_EQ(netns_sysctl_path(bad[i], p, sizeof(p), &e), -EINVAL))
			t_note("accepted: '%s' -> %s", bad[i], p);
	}
	T_EQ(netns_sysctl_path("kernel.hostname", p, sizeof(p), &e), -EINVAL);
	T_STREQ(e.msg, "sysctl kernel.hostname: not a net.* sysctl (only those are per namespace)");
	char longname[400];
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "net.", 4);
	longname[sizeof(longname) - 1] = '\0';
	T_EQ(netns_sysctl_path(longname, p, sizeof(p), &e), -ENAMETOOLONG);
	T_EQ(netns_sysctl_path("net.ipv4.ip_forward", p, 12, &e), -ENAMETOOLONG);
}

static void test_sysctl_write_in_namespace(void)
{
	struct err e = { 0 };
	char buf[64];
	int fa = netns_open(A, &e), fb = netns_open(B, &e);
	const char *key = "net.ipv4.conf.lo.proxy_arp";
	char cmd[256];
	char *root_before = sh("sysctl -n net.ipv4.conf.lo.proxy_arp");
	snprintf(cmd, sizeof(cmd), "ip netns exec %s sysctl -n %s", A, key);
	char *a0 = sh(cmd);
	T_STREQ(a0, "0");
	free(a0);

	T_EQ(netns_sysctl_write(fa, key, "1", &e), 0);
	char *a1 = sh(cmd);
	T_STREQ(a1, "1");
	free(a1);
	/* the same sysctl elsewhere is untouched: the original namespace and B */
	char *root_after = sh("sysctl -n net.ipv4.conf.lo.proxy_arp");
	T_STREQ(root_after, root_before);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s sysctl -n %s", B, key);
	char *b1 = sh(cmd);
	T_STREQ(b1, "0");
	free(b1);
	T_CHECK(at_origin());
	/* read back through our reader agrees (the independent check was above) */
	T_EQ(netns_sysctl_read(fa, key, buf, sizeof(buf), &e), 1);
	T_STREQ(buf, "1");
	T_EQ(netns_sysctl_read(fb, "net/ipv4/conf/lo/proxy_arp", buf, sizeof(buf), &e), 1);
	T_STREQ(buf, "0");

	/* slashed name, and a dotted name for an interface whose name holds a dot */
	int st;
	char *out = tns_sh(&st, A, "ip link add d0.5 type veth peer name d0p 2>&1");
	if (st != 0)
		t_note("ip link add d0.5: %s", out);
	free(out);
	T_EQ(netns_sysctl_write(fa, "net.ipv4.conf.d0/5.proxy_arp", "1\n", &e), 0);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /proc/sys/net/ipv4/conf/d0.5/proxy_arp",
		 A);
	char *d = sh(cmd);
	T_STREQ(d, "1");
	free(d);
	T_EQ(netns_sysctl_write(fa, "net/ipv4/conf/d0.5/forwarding", "1", &e), 0);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s sysctl -n net.ipv4.conf.d0/5.forwarding", A);
	d = sh(cmd);
	T_STREQ(d, "1");
	free(d);
	/* fd -1: the calling thread's namespace, here the original one (read only) */
	T_CHECK(netns_sysctl_read(-1, key, buf, sizeof(buf), &e) >= 1);
	T_STREQ(buf, root_before);
	T_CHECK(at_origin());
	free(root_before);
	free(root_after);
	close(fa);
	close(fb);
}

static void test_sysctl_errors(void)
{
	struct err e = { 0 };
	char buf[4];
	int fa = netns_open(A, &e);
	/* a key that does not exist in A (the interface only exists elsewhere or nowhere) */
	T_EQ(netns_sysctl_write(fa, "net.ipv4.conf.kvnosuch.proxy_arp", "1", &e), -ENOENT);
	T_STREQ(e.msg, "sysctl net.ipv4.conf.kvnosuch.proxy_arp: open: No such file or directory");
	T_CHECK(at_origin());
	/* a value the kernel refuses */
	T_EQ(netns_sysctl_write(fa, "net.ipv4.conf.lo.arp_ignore", "banana", &e), -EINVAL);
	T_STREQ(e.msg, "sysctl net.ipv4.conf.lo.arp_ignore: write \"banana\": Invalid argument");
	T_CHECK(at_origin());
	/* a bad name never reaches the kernel */
	T_EQ(netns_sysctl_write(fa, "kernel.hostname", "x", &e), -EINVAL);
	/* a value too long for the buffer */
	T_EQ(netns_sysctl_read(fa, "net.ipv4.ip_local_port_range", buf, sizeof(buf), &e),
	     -EOVERFLOW);
	T_STREQ(buf, "");
	/* a namespace fd that is not one */
	int fdreg = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	T_EQ(netns_sysctl_write(fdreg, "net.ipv4.conf.lo.proxy_arp", "1", &e), -EINVAL);
	close(fdreg);
	T_CHECK(at_origin());
	close(fa);
}

int main(void)
{
	if (geteuid() != 0) {
		t_begin("netns");
		t_skip("needs root");
		t_end();
		return t_done();
	}
	A = tns_new("a");
	B = tns_new("b");
	ORIG = here_link();
	if (!A || !B) {
		t_begin("netns");
		t_check(false, "tns_new", __FILE__, __LINE__);
		t_end();
		return t_done();
	}
	T_RUN(test_sysctl_names);
	T_RUN(test_enter_and_return);
	T_RUN(test_enter_pid);
	T_RUN(test_run);
	T_RUN(test_enter_failures_stay_home);
	T_RUN(test_sysctl_write_in_namespace);
	T_RUN(test_sysctl_errors);
	free(ORIG);
	tns_del(A);
	tns_del(B);
	return t_done();
}
