/* proto — the line protocol between the CNI plugin and the agent, over the agent's unix
 * socket ([agent] socket, SOCK_STREAM).
 *
 * One JSON object per line (LF-terminated, at most AGENT_PROTO_LINE_MAX bytes with the
 * LF), strict JSON (lib/json.h), unknown keys refused. The client sends requests; the
 * agent answers each with one or two lines.
 *
 *   request                                                        answers
 *   {"op":"add","node":NODE,"datastore":DS,"container_id":C,        {"status":"registered"}
 *    "ifname":I,"veth":V,"ips":[...],"namespace":N,"pod":P,"uid":U,  then, if "wait":true,
 *    "handle":H,"vm":M,"target":B,"wait":B}                         {"status":"programmed"}
 *   {"op":"del","container_id":C,"ifname":I}                       {"status":"deleted"}
 *                                                                  (also when unknown)
 *   {"op":"ping"}                                                  {"status":"pong"}
 *   any request that cannot be served                             {"status":"error",
 *                                                                   "error":"why"}
 *
 * add: node, datastore, container_id, ifname, veth and ips (1..4 IPv4/IPv6 literals) are
 * required; namespace, pod, uid, handle, vm (strings) and target, wait (booleans) are
 * optional. node and datastore are the registration identity: the node name as an object
 * name (ipam_name_map) and the datastore as conf_datastore_ident() gives it
 * ("file:STATE_DIR" or "kubernetes:SERVER-URL"); an agent serving another node or
 * another datastore refuses the add, naming both sides. The agent also refuses an add it
 * does not admit (agent/admit.h: a kvnet veth, addresses in its pools and, where it can
 * read IPAM, allocated to the handle), and serves only root or [agent] socket_group
 * peers (agent/servers.h).
 * A second add for the same (container_id, ifname) replaces the first. "programmed"
 * means the agent holds the endpoint and its routes are in the desired state (a dark
 * migration target: no route, detection armed). The agent never closes a connection
 * while an answer is owed; the client decides how long it waits.
 *
 * The same add line is what the agent keeps per endpoint in [agent] endpoints_dir (with
 * the agent's own identity; files written before the identity existed lack it, which
 * agent_req_parse_stored() accepts).
 */
#ifndef KVNET_AGENT_PROTO_H
#define KVNET_AGENT_PROTO_H

#include "agent/desired.h"

#include <stdbool.h>
#include <stddef.h>

struct err;

#define AGENT_PROTO_LINE_MAX 4096

enum agent_op {
	AGENT_OP_ADD,  /* register an endpoint */
	AGENT_OP_DEL,  /* unregister one */
	AGENT_OP_PING, /* liveness */
};

#define AGENT_DATASTORE_MAX 300 /* "kubernetes:" + an API server URL, with the NUL */

struct agent_req {
	enum agent_op op;		   /* what is asked */
	bool wait;			   /* add: also answer "programmed" */
	char node[IPAM_NAME_MAX + 1];	   /* add: the node the CNI runs on (object name) */
	char datastore[AGENT_DATASTORE_MAX]; /* add: its datastore (conf_datastore_ident) */
	struct agent_ep ep;		   /* add: the endpoint (ifindex 0, adopted false);
					    * del: cid and ifname only */
};

enum agent_status {
	AGENT_ST_REGISTERED, /* add accepted */
	AGENT_ST_PROGRAMMED, /* add's endpoint fully programmed */
	AGENT_ST_DELETED,    /* del done */
	AGENT_ST_PONG,	     /* ping answered */
	AGENT_ST_ERROR,	     /* request refused; see error */
};

struct agent_resp {
	enum agent_status status; /* the answer */
	char error[1024];	  /* AGENT_ST_ERROR: why */
};

/* Parse one request line (without or with its LF). 0, or -EINVAL with e naming the
 * field ("agent request: ips[1]: not an IP address", "agent request: node: missing").
 * Pure; fuzzed. */
int agent_req_parse(const char *line, size_t len, struct agent_req *out, struct err *e);
/* As agent_req_parse for an endpoint file: an add whose node and datastore may be absent
 * (left ""), as in files written before the registration identity existed. */
int agent_req_parse_stored(const char *line, size_t len, struct agent_req *out,
			   struct err *e);
/* Write r as one line with its LF into buf[0..cap), NUL-terminated (an add's empty node
 * or datastore is left out). Returns the length (without NUL), or -ENOSPC / -EINVAL (a
 * field that is not valid UTF-8). */
long agent_req_format(const struct agent_req *r, char *buf, size_t cap);

/* Parse / write one answer line, as above. */
int agent_resp_parse(const char *line, size_t len, struct agent_resp *out, struct err *e);
long agent_resp_format(const struct agent_resp *r, char *buf, size_t cap);

#endif
