/* netns tests for the socket half of net/nl against the real kernel: namespaces,
 * multi-datagram dumps, a callback failing half-way (the socket stays in step), a kernel
 * error with extended ack ending a dump, oversize messages; and test/lib/tns's cleanup
 * on exit and on SIGTERM. Counts are checked against iproute2. */
#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"
#include "net/route.h"
#include "test/lib/t.h"
#include "test/lib/tns.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *A, *B;
static struct nl_sock *SA, *SB;
static int IDX; /* kv0 in A */

#define NROUTES 1500

static void test_open_in_missing_netns(void)
{
	struct nl_sock *s = (struct nl_sock *)1;
	struct err e = {0};
	T_EQ(nl_open_in_netns(&s, NETLINK_ROUTE, "/run/netns/kvt-no-such-ns", &e), -ENOENT);
	T_CHECK(s == NULL);
	T_STREQ(e.msg, "netns /run/netns/kvt-no-such-ns: open: No such file or directory");
	/* a file that is not a namespace */
	T_EQ(nl_open_in_netns(&s, NETLINK_ROUTE, "/proc/self/status", &e), -EINVAL);
	t_note("%s", e.msg);
}

static void test_sockets_act_in_their_namespace(void)
{
	struct err e = {0};
	int idx;
	T_EQ(link_index(SA, "kv0", &idx, &e), 0);
	T_EQ(link_index(SB, "kv0", &idx, &e), -ENODEV);
	T_CHECK(nl_portid(SA) != 0 && nl_fd(SA) >= 0);
	/* the namespace fd of SA is A's: the same inode iproute2's path names */
	int fd = nl_netns_fd(SA, &e);
	T_CHECK(fd >= 0);
	char cmd[200];
	snprintf(cmd, sizeof(cmd),
		 "[ \"$(stat -L -c %%i /proc/%d/fd/%d)\" = \"$(stat -L -c %%i %s)\" ]",
		 (int)getpid(), fd, tns_path(A));
	int st;
	free(t_sh(&st, "%s", cmd));
	T_EQ(st, 0);
	close(fd);
}

/* counts routes, optionally failing at one */
struct counter {
	int n;	     /* routes seen */
	int fail_at; /* fail with -ECANCELED at this count; 0 = never */
};

static int count(const struct rt_route *r, void *arg, struct err *e)
{
	struct counter *c = arg;
	(void)r;
	c->n++;
	if (c->fail_at && c->n == c->fail_at)
		return err_setx(e, ECANCELED, "counter: stop at %d", c->n);
	return 0;
}

static void test_multi_datagram_dump(void)
{
	struct err e = {0};
	struct rt_route r;
	memset(&r, 0, sizeof(r));
	ip_parse("198.18.0.0", &r.dst);
	r.dst_len = 32;
	r.oif = IDX;
	r.scope = RT_SCOPE_LINK;
	r.protocol = RT_PROTO_KVNET;
	int added = 0;
	for (int i = 0; i < NROUTES; i++) {
		r.dst.b[2] = (uint8_t)(100 + i / 250);
		r.dst.b[3] = (uint8_t)(1 + i % 250);
		if (rt_add(SA, &r, &e) == 0)
			added++;
	}
	T_EQ(added, NROUTES);
	/* ~60 bytes a route: well over one 32 KiB datagram */
	struct counter c = {0};
	struct rt_filter f = {.family = AF_INET, .protocol = RT_PROTO_KVNET};
	T_EQ(rt_dump(SA, &f, count, &c, &e), 0);
	T_EQ(c.n, NROUTES);
	char *ip =
	    tns_ipj(A, "-4 route show table all", "len([r for r in d if r['protocol'] == '75'])");
	T_EQ(c.n, ip ? atoi(ip) : -1);
	free(ip);
}

static void test_callback_error_keeps_socket_in_step(void)
{
	struct err e = {0};
	struct counter c = {.fail_at = 10};
	struct rt_filter f = {.family = AF_INET, .protocol = RT_PROTO_KVNET};
	T_EQ(rt_dump(SA, &f, count, &c, &e), -ECANCELED);
	T_EQ(c.n, 10);
	T_STREQ(e.msg, "routes: dump: counter: stop at 10");
	/* the rest of that dump must not leak into the next requests */
	int idx;
	T_EQ(link_index(SA, "kv0", &idx, &e), 0);
	T_EQ(idx, IDX);
	struct counter all = {0};
	T_EQ(rt_dump(SA, &f, count, &all, &e), 0);
	T_EQ(all.n, NROUTES);
}

static void test_dump_error_with_extack(void)
{
	/* With strict checking a route dump request must have a clean header: the kernel
	 * ends the dump with an error and says why. */
	uint8_t buf[64];
	struct nl_msg m;
	struct err e = {0};
	struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_dst_len = 8};
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETROUTE, 0);
	nl_put_fam(&m, &rtm, sizeof(rtm));
	int rc = nl_dump(SA, &m, NULL, NULL, &e);
	T_EQ(rc, -EINVAL);
	t_note("%s", e.msg);
	T_CHECK(strcmp(e.msg, strerror(EINVAL)) != 0); /* the kernel's text, not strerror */
	/* and the socket goes on */
	int idx;
	T_EQ(link_index(SA, "kv0", &idx, &e), 0);
}

static void test_oversize_message_not_sent(void)
{
	uint8_t buf[48];
	struct nl_msg m;
	struct err e = {0};
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, "kvbig");
	T_EQ(nl_put_str(&m, IFLA_IFALIAS, "a description that does not fit"), -EMSGSIZE);
	T_EQ(nl_request(SA, &m, NULL, NULL, &e), -EMSGSIZE);
	T_STREQ(e.msg, "netlink: message does not fit in its 48-byte buffer");
	int st;
	free(tns_sh(&st, A, "ip link show kvbig >/dev/null 2>&1"));
	T_CHECK(st != 0);
}

/* link_dump callback: counts, and once (at the first link) changes the link table
 * through another socket, which the kernel must flag in a later datagram. */
struct intr_ctx {
	int n;		       /* links seen */
	struct nl_sock *other; /* socket to change links through; NULL = change nothing */
	int made;	       /* links created from inside the dump */
};

static int intr_cb(const struct link_info *li, void *arg, struct err *e)
{
	struct intr_ctx *c = arg;
	(void)li;
	if (c->n++ == 0 && c->other) {
		struct link_veth v = {.name = "kvintr0", .peer = "kvintr1", .peer_netns_fd = -1};
		if (link_add_veth(c->other, &v, e) < 0)
			return -EIO;
		c->made++;
	}
	return 0;
}

static void test_real_dump_intr(void)
{
	struct err e = {0};
	const char *C = tns_new("sock-intr");
	struct nl_sock *sc = C ? tns_sock(C) : NULL;
	struct nl_sock *sc2 = C ? tns_sock(C) : NULL;
	T_CHECK(sc && sc2);
	if (!sc || !sc2)
		goto out;
	/* enough links for several 32 KiB datagrams */
	for (int i = 0; i < 120; i++) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "kvx%da", i);
		snprintf(b, sizeof(b), "kvx%db", i);
		struct link_veth v = {.name = a, .peer = b, .peer_netns_fd = -1};
		if (link_add_veth(sc, &v, &e) < 0) {
			t_note("%s", e.msg);
			T_CHECK(0);
			goto out;
		}
	}
	struct intr_ctx c = {.other = sc2};
	T_EQ(link_dump(sc, intr_cb, &c, &e), -EINTR);
	T_EQ(c.made, 1);
	T_STREQ(e.msg, "links: dump: netlink: dump interrupted: the table changed while it was "
		       "read; dump again");
	/* dumping again, undisturbed, gives the whole consistent table */
	struct intr_ctx again = {.other = NULL};
	T_EQ(link_dump(sc, intr_cb, &again, &e), 0);
	char *ip = tns_ipj(C, "link show", "len(d)");
	T_EQ(again.n, ip ? atoi(ip) : -1);
	T_EQ(again.n, 1 + 240 + 2);
	free(ip);
out:
	nl_close(sc);
	nl_close(sc2);
	if (C)
		tns_del(C);
}

/* A child that makes a namespace, reports its name, then waits (or exits). */
static pid_t child_with_ns(bool wait_for_signal, char *name, size_t n)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		const char *ns = tns_new("child");
		if (ns && write(p[1], ns, strlen(ns)) < 0)
			_exit(3);
		close(p[1]);
		if (wait_for_signal)
			for (;;)
				pause();
		exit(0); /* atexit cleanup */
	}
	close(p[1]);
	ssize_t r = read(p[0], name, n - 1);
	name[r > 0 ? r : 0] = '\0';
	close(p[0]);
	return pid;
}

static bool netns_exists(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return access(path, F_OK) == 0;
}

static void test_tns_cleanup_on_exit_and_signal(void)
{
	char name[64];
	int st;
	pid_t pid = child_with_ns(true, name, sizeof(name));
	T_CHECK(pid > 0 && strncmp(name, "kvt-", 4) == 0);
	T_CHECK(netns_exists(name));
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	T_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	T_CHECK(!netns_exists(name));
	char *list = t_sh(&st, "ip netns list");
	T_CHECK(list && !strstr(list, name));
	free(list);

	pid = child_with_ns(false, name, sizeof(name));
	waitpid(pid, &st, 0);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_CHECK(name[0] && !netns_exists(name));
}

int main(void)
{
	struct err e = {0};
	A = tns_new("sock-a");
	B = tns_new("sock-b");
	SA = A ? tns_sock(A) : NULL;
	SB = B ? tns_sock(B) : NULL;
	struct link_veth v = {.name = "kv0", .peer = "kv1", .peer_netns_fd = -1};
	if (!SA || !SB || link_add_veth(SA, &v, &e) < 0 || link_index(SA, "kv0", &IDX, &e) < 0 ||
	    link_set_up(SA, IDX, true, &e) < 0) {
		printf("# %s\nnot ok - test-nlsock: setup\n", e.msg);
		return 1;
	}
	T_RUN(test_open_in_missing_netns);
	T_RUN(test_sockets_act_in_their_namespace);
	T_RUN(test_multi_datagram_dump);
	T_RUN(test_callback_error_keeps_socket_in_step);
	T_RUN(test_dump_error_with_extack);
	T_RUN(test_real_dump_intr);
	T_RUN(test_oversize_message_not_sent);
	T_RUN(test_tns_cleanup_on_exit_and_signal);
	nl_close(SA);
	nl_close(SB);
	return t_done();
}
