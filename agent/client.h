/* client — the CNI plugin's side of the agent socket (agent/proto.h).
 *
 *   struct agent_client c;
 *   agent_client_open(&c, "/run/kvnet/agent.sock", &e)       -ENOENT/-ECONNREFUSED: no agent
 *   agent_client_register(&c, &req, 5000, &e)                 0 = registered (and programmed,
 *                                                             with req.wait)
 *   agent_client_close(&c);
 *
 * Blocking calls with a deadline (poll); no event loop. Errors read
 * "agent /run/kvnet/agent.sock: connect: No such file or directory",
 * "agent ...: not programmed within 5 s", "agent ...: refused: why".
 */
#ifndef KVNET_AGENT_CLIENT_H
#define KVNET_AGENT_CLIENT_H

#include "agent/proto.h"

#include <stdbool.h>
#include <stddef.h>

struct err;

struct agent_client {
	int fd;			       /* connected socket, -1 when closed */
	char path[108];		       /* socket path (for messages) */
	size_t rlen;		       /* bytes in rbuf */
	char rbuf[AGENT_PROTO_LINE_MAX]; /* answer bytes not consumed yet */
};

/* Connect to the agent at path. 0, or -errno with e: -ENOENT (no socket file),
 * -ECONNREFUSED (a stale socket, no agent), -ENAMETOOLONG. */
int agent_client_open(struct agent_client *c, const char *path, struct err *e);
/* Register r->ep (r->op must be AGENT_OP_ADD; r->node and r->datastore are the
 * registration identity, see proto.h; r->wait: also wait for "programmed"). The whole
 * call ends within timeout_ms (0 = do not wait for "programmed"; registration still gets
 * 2 s): -ETIMEDOUT then. 0, or -errno with e (-EPROTO: a bad answer; -EREMOTEIO: the
 * agent refused, e.g. another node's or datastore's registration). */
int agent_client_register(struct agent_client *c, const struct agent_req *r,
			  unsigned timeout_ms, struct err *e);
/* Unregister (cid, ifname); within timeout_ms. 0 or -errno with e. */
int agent_client_del(struct agent_client *c, const char *cid, const char *ifname,
		     unsigned timeout_ms, struct err *e);
void agent_client_close(struct agent_client *c);

#endif
