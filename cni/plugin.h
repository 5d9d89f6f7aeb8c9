/* plugin — the CNI commands (spec 1.1) over a parsed request: IPAM (cni/store.h), VM
 * identity (cni/vmid.h), the data-plane mode (cni/mode.h) and the node agent
 * (agent/client.h).
 *
 *   ADD      allocate one address per configured family (handle "<network>.<containerID>",
 *            or the VM's handle, cni/vmid.h), wire the interface through the mode, register
 *            the endpoint with the agent, write the result into r->out
 *   DEL      remove the interface and release the handle; succeeds when anything is
 *            already gone
 *   CHECK    verify addresses, default routes and host routes against prevResult
 *   STATUS   0 when the datastore can be read, code 50 otherwise
 *   GC       cni/gc.h
 *   VERSION  the five supported versions
 *
 * After a successful ADD the endpoint is registered with the agent (agent/proto.h); with
 * policy_setup_timeout_seconds > 0 the ADD waits that long for the agent's "programmed"
 * and then fails (code 11) or, with "continue", succeeds with a warning. Without a
 * timeout an absent agent is no error (the plugin works alone). DEL unregisters (best
 * effort).
 *
 * Each returns 0 (r->out holds the document to print, when the command prints one) or
 * -1 with f filled. */
#ifndef KVNET_CNI_PLUGIN_H
#define KVNET_CNI_PLUGIN_H

#include "cni/netconf.h"

int cni_add(struct cni_req *r, struct cni_fail *f);
int cni_del(struct cni_req *r, struct cni_fail *f);
int cni_check(struct cni_req *r, struct cni_fail *f);
int cni_status(struct cni_req *r, struct cni_fail *f);
int cni_version(struct cni_req *r, struct cni_fail *f);

#endif
