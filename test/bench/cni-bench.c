/* cni-bench — the timing driver of test/bench/bench-cni: runs CNI plugins exactly as a
 * runtime does (fork+exec, config on stdin, result on stdout) from inside a node network
 * namespace and reports microseconds per invocation, process start included for every
 * contender alike. It decides nothing: bench-cni computes the percentiles and ratios.
 *
 *   cni-bench seq HOSTNS N KVNET KVCONF REFDIR REFCONF PREFIX
 *       for i in 0..N-1, on namespaces /run/netns/PREFIX-{k,p,f}I made by the caller:
 *       kvnet ADD, ptp ADD, `ip link add` of a veth pair into the f namespace; then
 *       kvnet DEL, ptp DEL, `ip link del` of that veth (the kernel floor); the order of
 *       the three rotates every cycle. Prints "OP US CPU" lines (OP: kvnet-add, ref-add,
 *       floor-add, kvnet-del, ref-del, floor-del; US wall time, CPU the user+system time
 *       of the process and the children it waited for, from wait4).
 *   cni-bench loop HOSTNS PLUGIN CONF REFDIR CMD PREFIX FROM TO
 *       runs PLUGIN with CNI_COMMAND=CMD for i in FROM..TO-1 (container ID PREFIX-I,
 *       netns /run/netns/PREFIX-I), one after the other; prints "ip ADDR" for every
 *       address of every result and "fail I" for a failed call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_out[256]; /* test code: result file of the last call */
static long long g_cpu;	/* test code: CPU microseconds of the last call */

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Run argv with env (NULL = none), stdin from conf (NULL = /dev/null), stdout to g_out.
 * Returns the exit status (-1 if not spawned); *us = wall time spawn -> reaped. */
static int run(char *const argv[], char *const env[], const char *conf, long long *us)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, conf ? conf : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, g_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	static char *const noenv[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	long long t0 = now_us();
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, env ? env : noenv);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		fprintf(stderr, "cni-bench: spawn %s: %s\n", argv[0], strerror(r));
		return -1;
	}
	int ws = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	while (wait4(pid, &ws, 0, &ru) < 0 && errno == EINTR)
		;
	*us = now_us() - t0;
	g_cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
		ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void show_out(void)
{
	FILE *fp = fopen(g_out, "r");
	char line[512];
	while (fp && fgets(line, sizeof(line), fp))
		fprintf(stderr, "  %s", line);
	if (fp)
		fclose(fp);
}

/* One CNI call of plugin: 0 or -1 (reported). */
static int cni(const char *plugin, const char *conf, const char *refdir, const char *cmd,
	       const char *cid, const char *ns, long long *us)
{
	char e_cmd[64], e_cid[160], e_ns[320], e_path[320];
	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", cmd);
	snprintf(e_cid, sizeof(e_cid), "CNI_CONTAINERID=%s", cid);
	snprintf(e_ns, sizeof(e_ns), "CNI_NETNS=/run/netns/%s", ns);
	snprintf(e_path, sizeof(e_path), "CNI_PATH=%s", refdir);
	char *const env[] = {e_cmd, e_cid, e_ns, "CNI_IFNAME=eth0", "CNI_ARGS=", e_path,
			     "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	char *const argv[] = {(char *)plugin, NULL};
	int st = run(argv, env, conf, us);
	if (st != 0) {
		fprintf(stderr, "cni-bench: %s %s %s: status %d\n", plugin, cmd, cid, st);
		show_out();
		return -1;
	}
	return 0;
}

static int enter(const char *hostns)
{
	int fd = open(hostns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "cni-bench: enter %s: %s\n", hostns, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int mode_seq(char **a)
{
	int n = atoi(a[1]);
	const char *kv = a[2], *kvconf = a[3], *refdir = a[4], *refconf = a[5], *pre = a[6];
	char ptp[300];
	snprintf(ptp, sizeof(ptp), "%s/ptp", refdir);
	for (int i = 0; i < n; i++) {
		char kns[128], pns[128], fns[128], kcid[128], pcid[128], veth[32];
		snprintf(kns, sizeof(kns), "%s-k%d", pre, i);
		snprintf(pns, sizeof(pns), "%s-p%d", pre, i);
		snprintf(fns, sizeof(fns), "%s-f%d", pre, i);
		snprintf(kcid, sizeof(kcid), "bench-k%d", i);
		snprintf(pcid, sizeof(pcid), "bench-p%d", i);
		snprintf(veth, sizeof(veth), "kvfloor%d", i);
		char *const ladd[] = {"/usr/sbin/ip", "link", "add", veth, "type", "veth", "peer",
				      "name", "eth0", "netns", fns, NULL};
		char *const ldel[] = {"/usr/sbin/ip", "link", "del", veth, NULL};
		for (int phase = 0; phase < 2; phase++) {
			const char *cmd = phase ? "DEL" : "ADD";
			for (int j = 0; j < 3; j++) {
				int which = (i + j) % 3;
				long long us = 0;
				int r;
				const char *op;
				if (which == 0) {
					r = cni(kv, kvconf, refdir, cmd, kcid, kns, &us);
					op = phase ? "kvnet-del" : "kvnet-add";
				} else if (which == 1) {
					r = cni(ptp, refconf, refdir, cmd, pcid, pns, &us);
					op = phase ? "ref-del" : "ref-add";
				} else {
					r = run(phase ? ldel : ladd, NULL, NULL, &us);
					if (r)
						fprintf(stderr, "cni-bench: ip link %s %s: status %d\n",
							cmd, veth, r);
					op = phase ? "floor-del" : "floor-add";
				}
				if (r)
					return 1;
				printf("%s %lld %lld\n", op, us, g_cpu);
			}
		}
		fflush(stdout);
	}
	return 0;
}

static int mode_loop(char **a)
{
	const char *plugin = a[1], *conf = a[2], *refdir = a[3], *cmd = a[4], *pre = a[5];
	int from = atoi(a[6]), to = atoi(a[7]), bad = 0;
	for (int i = from; i < to; i++) {
		char id[160];
		snprintf(id, sizeof(id), "%s-%d", pre, i);
		long long us;
		if (cni(plugin, conf, refdir, cmd, id, id, &us)) {
			printf("fail %d\n", i);
			bad++;
			continue;
		}
		FILE *fp = fopen(g_out, "r");
		char line[4096];
		while (fp && fgets(line, sizeof(line), fp)) {
			/* every "address": "X" of the result (compact or indented JSON) */
			for (char *p = line; (p = strstr(p, "\"address\"")); p++) {
				char *q = strchr(p + 9, '"');
				char *r = q ? strchr(q + 1, '"') : NULL;
				if (r)
					printf("ip %.*s\n", (int)(r - q - 1), q + 1);
			}
		}
		if (fp)
			fclose(fp);
	}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see test/bench/cni-bench.c\n");
		return 2;
	}
	snprintf(g_out, sizeof(g_out), "/tmp/kvt-%d-cni-bench.out", (int)getpid());
	if (enter(argv[2]))
		return 2;
	int r = 2;
	if (!strcmp(argv[1], "seq") && argc == 9)
		r = mode_seq(argv + 2);
	else if (!strcmp(argv[1], "loop") && argc == 10)
		r = mode_loop(argv + 2);
	else
		fprintf(stderr, "cni-bench: bad arguments\n");
	unlink(g_out);
	return r;
}
