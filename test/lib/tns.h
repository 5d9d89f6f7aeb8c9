/* tns — network namespaces for kernel tests.
 *
 *   const char *ns = tns_new("a");             // "kvt-<pid>-a", lo up, removed at exit
 *   struct nl_sock *s = tns_sock(ns);          // rtnetlink socket living in it
 *   char *mtu = tns_ipj(ns, "link show dev v0", "d[0]['mtu']");   // "1400"
 *
 * Namespaces are removed on every exit path: tns_del(), exit() (atexit), and SIGINT /
 * SIGTERM / SIGHUP (the handler only unmounts and unlinks /run/netns/NAME, which is
 * async-signal-safe, then dies of the same signal). Verification goes through iproute2
 * and python3, never through kvnet's own netlink reader.
 */
#ifndef KVNET_TEST_TNS_H
#define KVNET_TEST_TNS_H

struct nl_sock;

/* Create namespace kvt-<pid>-NAME with lo up and return its full name (valid until
 * tns_del or exit); NULL (and a "# " note) on failure. */
const char *tns_new(const char *name);

/* "/run/netns/<full name>", in a static buffer overwritten by the next call. */
const char *tns_path(const char *ns);

/* Delete the namespace now (idempotent). */
void tns_del(const char *ns);

/* An rtnetlink socket that lives in the namespace (nl_open_in_netns); NULL on failure,
 * with the reason noted. Close it with nl_close(). */
struct nl_sock *tns_sock(const char *ns);

/* Run a shell command inside the namespace; stdout (malloc'd) and exit status. */
char *tns_sh(int *status, const char *ns, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Run `ip -j ARGS` in the namespace and print python3 expression PY evaluated with the
 * parsed JSON as `d` (and `json` imported). Returns the output with trailing newlines
 * removed (malloc'd), or NULL when ip or python failed. */
char *tns_ipj(const char *ns, const char *args, const char *py);

/* Same, but the result must equal want (a note explains a mismatch). */
int tns_ipj_is(const char *ns, const char *args, const char *py, const char *want);

#endif
