/* netns — entering network namespaces in the calling thread, and sysctls inside them.
 *
 *   int fd = netns_open("kvt-1-a", &e);            // /run/netns/kvt-1-a, or a path
 *   struct netns_saved saved;
 *   if (netns_enter(&saved, fd, &e) == 0) {        // saves the original first
 *           ... work inside ...
 *           netns_return(&saved, &e);              // always, on every path
 *   }
 *   netns_run(fd, fn, arg, &e);                    // the same, as one call
 *   netns_sysctl_write(fd, "net.ipv4.conf.kvabc.proxy_arp", "1", &e);
 *
 * setns(2) changes the namespace of the calling THREAD only, and every socket and
 * /proc/sys/net file opened meanwhile belongs to the namespace entered. netns_enter
 * opens the thread's current namespace (/proc/thread-self/ns/net) BEFORE switching, so
 * the way back never depends on a name that may have gone; when entering fails the
 * thread has not moved. (net/nl.h's nl_run_in_netns is the alternative that never
 * moves the caller: it runs the work on a short-lived thread.)
 *
 * Sysctl names are dotted like sysctl(8) ("net.ipv4.conf.kvabc.proxy_arp", where a '/'
 * stands for a '.' inside a component, as in "net.ipv4.conf.eth0/100.rp_filter") or
 * slashed ("net/ipv4/conf/kvabc/proxy_arp", or the full "/proc/sys/net/..."); whichever
 * separator comes first decides. Only net.* sysctls are per namespace, so only they are
 * accepted; empty, "." and ".." components are refused.
 */
#ifndef KVNET_NET_NETNS_H
#define KVNET_NET_NETNS_H

#include <stddef.h>
#include <sys/types.h>

struct err;

#define NETNS_RUN_DIR "/run/netns"  /* where `ip netns add` mounts named namespaces */
#define NETNS_SYSCTL_PATH_MAX 256   /* longest /proc/sys/net/... path accepted */

/* The namespace to go back to. Filled by netns_enter, consumed by netns_return. */
struct netns_saved {
	int fd;  /* the thread's namespace before netns_enter (open, CLOEXEC); -1 = none */
};

/* Open a network namespace: a NAME (no '/') means NETNS_RUN_DIR/NAME, anything with a
 * '/' is a path (/run/netns/X, /proc/PID/ns/net, a bind mount). Returns an O_RDONLY
 * CLOEXEC fd the caller closes, or -errno with e = "netns NAME: open: why". The fd is
 * not checked to be a network namespace here; entering it is. */
int netns_open(const char *name_or_path, struct err *e);

/* Open /proc/PID/ns/net. Returns an fd or -errno. */
int netns_open_pid(pid_t pid, struct err *e);

/* Save the calling thread's namespace in *saved, then enter nsfd. Returns 0, or -errno
 * with e ("netns: enter: Invalid argument (not a network namespace)") and the thread
 * still in its original namespace and saved->fd == -1. */
int netns_enter(struct netns_saved *saved, int nsfd, struct err *e);

/* netns_enter by name or path (see netns_open). */
int netns_enter_path(struct netns_saved *saved, const char *name_or_path, struct err *e);

/* Go back to the saved namespace and close the saved fd. Returns 0 (also when nothing
 * was saved), or -errno when setns back failed — then the thread is still in the other
 * namespace, which the caller must treat as fatal; the fd is closed either way. */
int netns_return(struct netns_saved *saved, struct err *e);

/* Enter nsfd, call fn(arg, e), and return to the original namespace whatever fn
 * returned. Returns fn's result; -errno if entering failed (fn not called) or if
 * returning failed (that error wins: the thread is stranded, see netns_return). */
int netns_run(int nsfd, int (*fn)(void *arg, struct err *e), void *arg, struct err *e);

/* Turn a sysctl name into its /proc/sys path in out (cap bytes). Returns 0, or -EINVAL
 * (bad or non-net name) / -ENAMETOOLONG with e = "sysctl NAME: ...". No I/O. */
int netns_sysctl_path(const char *name, char *out, size_t cap, struct err *e);

/* Write value (a trailing newline is not needed) to sysctl name inside nsfd (-1: the
 * calling thread's namespace). Returns 0 or -errno with e =
 * "sysctl net.ipv4.conf.kvx.proxy_arp: open: No such file or directory". */
int netns_sysctl_write(int nsfd, const char *name, const char *value, struct err *e);

/* Read sysctl name inside nsfd (-1: current) into buf (cap bytes, NUL-terminated,
 * trailing newline removed). Returns the length, or -errno (-EOVERFLOW if the value does
 * not fit in buf) with e. */
int netns_sysctl_read(int nsfd, const char *name, char *buf, size_t cap, struct err *e);

#endif
