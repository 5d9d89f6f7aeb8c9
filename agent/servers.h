/* servers — the agent's listeners and their connections, on the agent's loop: the CNI
 * socket (unix, SOCK_STREAM, the line protocol of agent/proto.h) and the HTTP port
 * (agent/http.h: GET/HEAD, one request per connection).
 *
 * Framing is done here; meaning is the owner's (the hub's), through two callbacks:
 * every complete CNI request line, and every HTTP GET/HEAD path. Connection lifetime:
 * a connection is closed (fd, watcher) at once when the peer goes away, an answer
 * fails or the protocol says so, but its memory is freed only after the loop's
 * current dispatch, so a callback up the stack that still holds it can test
 * agent_conn_open() and never touches freed memory. Back-pressure: a connection owed
 * more than AGENT_CONN_WMAX bytes is not read until its peer reads. A CNI line of
 * AGENT_PROTO_LINE_MAX bytes or more without LF is answered "request line too long"
 * and the connection closed after that answer.
 *
 * Who may connect: the CNI socket is created mode 0600 (set on the socket before bind,
 * so there is no window), then, with [agent] socket_group, chowned to that group and
 * widened to 0660; every accepted peer is checked with SO_PEERCRED (uid 0, or the group
 * as its primary or a supplementary group, SO_PEERGROUPS): anyone else gets one error
 * line naming its uid and gid, and is closed.
 *
 * Limits, per listener, so one cannot starve the other: the CNI socket holds at most
 * AGENT_CNI_CONNS_MAX connections (more are refused) and closes one that is owed nothing
 * and silent for AGENT_CNI_IDLE_MS (never one waiting for "programmed"); the HTTP port
 * holds at most AGENT_HTTP_CONNS_MAX (a new one evicts the oldest, so a probe is served
 * however many idle connections someone holds) and closes any after
 * AGENT_HTTP_TIMEOUT_MS. Metrics: kvnet_agent_connections{listener},
 * kvnet_agent_connections_rejected_total{listener},
 * kvnet_agent_connections_timed_out_total{listener},
 * kvnet_agent_socket_peers_refused_total.
 */
#ifndef KVNET_AGENT_SERVERS_H
#define KVNET_AGENT_SERVERS_H

#include "agent/proto.h"

#include <stdbool.h>
#include <stddef.h>

struct conf_hostport;
struct err;
struct ev_loop;
struct log;
struct agent_metric;
struct agent_metrics;
struct agent_servers;
struct agent_conn;

#define AGENT_CONN_WMAX 65536	    /* pending output above which a connection is not read */
#define AGENT_CNI_CONNS_MAX 128	    /* open CNI-socket connections */
#define AGENT_CNI_IDLE_MS 30000	    /* a CNI connection owed nothing, silent this long */
#define AGENT_HTTP_CONNS_MAX 64	    /* open HTTP connections (the oldest makes room) */
#define AGENT_HTTP_TIMEOUT_MS 5000  /* an HTTP connection's whole life */

/* An HTTP answer the owner fills for a path: status (200 preset), content type (text
 * preset), and either body (malloc'd, taken) or text (NUL-terminated). */
struct agent_http_answer {
	int status;	    /* HTTP status */
	const char *ctype;  /* Content-Type (static string) */
	char *body;	    /* body (owned by the answer) or NULL: text is the body */
	size_t blen;	    /* body length */
	char text[512];	    /* short body */
};

struct agent_servers_ops {
	/* One CNI request line (with its LF, at most AGENT_PROTO_LINE_MAX bytes); answer
	 * with agent_conn_answer, possibly later (agent_conn_wait). */
	void (*cni_line)(void *user, struct agent_conn *c, const char *line, size_t len);
	/* GET or HEAD of path; query is what followed '?' (not decoded; "" if none). */
	void (*http_get)(void *user, const char *path, const char *query,
			 struct agent_http_answer *ans);
};

/* Listeners not open yet. reg (may be NULL): the registry for the connection metrics;
 * requests (may be NULL): counter{op} that gets op="invalid" for lines the framing
 * refuses. NULL with e when out of memory or the metrics are taken. */
struct agent_servers *agent_servers_new(struct ev_loop *loop, struct log *log,
					struct agent_metrics *reg, struct agent_metric *requests,
					const struct agent_servers_ops *ops, void *user,
					struct err *e);
/* Close every connection and listener; unlink the CNI socket if this created it.
 * NULL is ignored. */
void agent_servers_free(struct agent_servers *s);

/* Listen for HTTP on hp. 0 or -errno with e (address in use, ...). */
int agent_servers_listen_http(struct agent_servers *s, const struct conf_hostport *hp,
			      struct err *e);
/* Listen on the unix socket path for root and, when group is a group name (not "" or
 * NULL), that group (see above; its parent directory is created, one level; a stale
 * socket file is replaced, a live agent's is not). 0 or -errno with e (-ENOENT: no such
 * group). */
int agent_servers_listen_cni(struct agent_servers *s, const char *path, const char *group,
			     struct err *e);

/* Send one answer line on c. False when c is closed (before or because of it). */
bool agent_conn_answer(struct agent_conn *c, enum agent_status st, const char *error);
/* False once c is closed. */
bool agent_conn_open(const struct agent_conn *c);
/* c owes a later answer about endpoint (cid, ifname): agent_servers_each_waiting finds
 * it; agent_conn_wait_done ends that. */
void agent_conn_wait(struct agent_conn *c, const char *cid, const char *ifname);
void agent_conn_wait_done(struct agent_conn *c);
/* Call fn for every open connection that waits (fn may answer, close, end the wait). */
void agent_servers_each_waiting(struct agent_servers *s,
				void (*fn)(void *user, struct agent_conn *c, const char *cid,
					   const char *ifname),
				void *user);

#endif
