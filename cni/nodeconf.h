/* nodeconf — one configuration per node: the node facts of a CNI call come from
 * kvnet.conf, resolved as in every other role.
 *
 * Where each setting lives:
 *   network (the conflist)   name, type, mode, ipv4_pools / ipv6_pools / pools, mtu, and
 *                            "kvnet_conf": the path of the node configuration to read
 *                            (default /etc/kvnet/kvnet.conf; when the default file does
 *                            not exist the built-in defaults apply, a named one must exist)
 *   node (kvnet.conf)        [kubernetes] node_name (else $NODE_NAME, else the host name),
 *                            [datastore] type and state_dir, [kubernetes] kubeconfig and
 *                            context, [agent] socket, [cni] log_level, log_file,
 *                            policy_setup_timeout_seconds and policy_timeout_action;
 *                            KVNET_<SECTION>_<KEY> variables override the file, as for
 *                            the agent (conf/conf.h)
 * Precedence for a node key: kvnet.conf (file or environment) when it sets the key; else
 * the conflist's old key of the same meaning (datastore, state_dir, kubeconfig,
 * agent_socket, log_level, log_file, policy_setup_timeout_seconds,
 * policy_timeout_action — accepted so existing conflists keep working); else the
 * built-in default. When both set a key to different values the call fails with code 7
 * naming both places. mtu: the conflist's, else kvnet.conf's [network] mtu when the
 * file sets it, else the kernel's default. */
#ifndef KVNET_CNI_NODECONF_H
#define KVNET_CNI_NODECONF_H

#include "cni/netconf.h"
#include "conf/conf.h"

/* Merge the node configuration cf (loaded from path, for messages) into r, whose
 * conflist has been parsed (cni_conf_parse): the precedence above, r->node from
 * conf_node_name(cf, env_node_name) mapped to an object name. 0, or -1 with f (code 7). */
int cni_node_apply(struct cni_req *r, const struct conf *cf, const char *path,
		   const char *env_node_name, struct cni_fail *f);

#endif
