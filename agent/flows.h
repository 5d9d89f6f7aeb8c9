/* flows — the agent's flow module (issue #14): flow records of the local VMs and pods,
 * the flow log, GET /flows and the per-VM metrics.
 *
 *   conntrack events (net/ct.h)          ─┐
 *   a dump every flush_interval (counter deltas) ─┼─> endpoint? ─> flows/ table ─> flush:
 *                                                 │   (agent_ep_find_ip)          name peers,
 *                                                 │                               JSON lines
 *                                                 └─> kvnet_flows_vm_* metrics     to the log
 *
 * Sources: NEW and DESTROY events of the node's conntrack (the namespace the agent runs
 * in), and, at the end of every window ([flows] flush_interval), a dump of the table:
 * conntrack reports counters only in dumps and DESTROY events, so the dump gives
 * long-lived connections their bytes window by window. Per connection (by conntrack id)
 * the counters last accounted are kept in a table of at most [flows] max_flows
 * connections (two arrays allocated at start, swapped at each dump; the connections
 * tracked already keep their place); a new connection that does not fit is accounted
 * once, when it ends (kvnet_flows_conns_untracked_total).
 * Counting bytes needs net.netfilter.nf_conntrack_acct=1: the module sets it at start
 * and says so in the log. Conntrack must be active in the namespace (kube-proxy, policy
 * or any rule using ct; a namespace without one tracks nothing).
 *
 * Each entry is classified for every local endpoint on one of its sides (flows/flows.h
 * flow_classify): the endpoint is named by its VM (VMI) identity "NS/NAME" when it is
 * a VM's pod, else by its pod, so records follow a VM across migrations. Conntrack
 * entries are flows that were let through ("allow"). Denied packets never reach
 * conntrack's confirmation, so with [agent] network_policy the module also listens to
 * [flows] nflog_group, where each isolated direction's default deny logs (agent/polnft.h:
 * prefix "kvnet deny CHAIN", at most [flows] nflog_rate packets a second per chain, a
 * limit the kernel applies): each logged packet is one denied attempt of that endpoint
 * and direction (action "deny", its length in bytes_in / bytes_out).
 *
 * Policies behind a verdict (flows/flows.h struct flow_pols): with [agent] network_policy
 * enabled and the kubernetes datastore, at each window's end the local endpoints are
 * compiled with the policy compiler (policy/) over the informers' world
 * (agent/polworld.h) when an object or endpoint changed since; an allowed record names
 * the policies whose rules of the endpoint's direction match its peer, protocol and
 * port (pol_crule_match; at most FLOW_POLICIES, the rest counted), or says no policy
 * isolates the direction; a denied one names the policies isolating the direction whose
 * default deny logged it. The rules are those in force at the window's end (a
 * connection older than a policy change may name none: "unknown"); the peer is the
 * address the endpoint sees (a Service address, not the pod behind it).
 * At flush, peers are named from, in this order: the local endpoints,
 * the IPAMBlocks' allocations (pod and VMI of every allocated address in the cluster),
 * the VMIs' interface addresses, the nodes' InternalIPs; anything else is external.
 *
 * Flow log: [flows] log_dir/flows.log, one flows/flows.h flow_json record per line and
 * window (what `kvnet flows` reads), appended once per window. Before a write would take
 * flows.log past [flows] max_log_bytes it is rotated: flows.log.K -> flows.log.K+1 (the
 * one past max_log_files is removed), flows.log -> flows.log.1. Disk use stays below
 * (max_log_files + 1) x max_log_bytes.
 *
 * GET /flows?vm=NS/NAME|ip=ADDR[&since=DURATION]: the report of `kvnet flows -o json`
 * over this node's log files (flushed windows only).
 *
 * Metrics: kvnet_flows_vm_{bytes,packets}_{in,out}_total{vm} and
 * kvnet_flows_vm_denied_total{vm} for VM endpoints, at most AGENT_FLOWS_VM_SERIES VMs by
 * name, later ones in vm="other" (counted in kvnet_flows_vm_series_overflow_total);
 * kvnet_flows_observed_total, kvnet_flows_dropped_total (table full),
 * kvnet_flows_records_total, kvnet_flows_table_in_use / _max / _bytes,
 * kvnet_flows_events_lost_total (socket overrun), kvnet_flows_conns_untracked_total,
 * kvnet_flows_log_bytes_total, kvnet_flows_log_rotations_total,
 * kvnet_flows_log_errors_total, kvnet_flows_ct_dumps_total (table dumps read),
 * kvnet_flows_denied_packets_logged_total (read from nflog), kvnet_flows_nflog_lost_total
 * (the nflog socket overran).
 */
#ifndef KVNET_AGENT_FLOWS_H
#define KVNET_AGENT_FLOWS_H

#include "flows/report.h"

#include <stdint.h>

struct agent;
struct err;
struct agent_flows;

#define AGENT_FLOWS_VM_SERIES 24      /* VMs named in the metrics; more are "other" */
#define AGENT_FLOWS_REPORT_ROWS 10000 /* rows GET /flows answers at most */

/* The module for agent a: an idle one (nothing opened) when [flows] enabled is false;
 * otherwise opens the conntrack sockets, subscribes, sets nf_conntrack_acct, allocates
 * the tables, creates log_dir, and arms the flush timer. NULL with e on failure. */
struct agent_flows *agent_flows_new(struct agent *a, struct err *e);
/* Write the current window, close everything. NULL is ignored. */
void agent_flows_free(struct agent_flows *f);

/* Parse a GET /flows query ("vm=NS%2FNAME&since=5m" as sent, not decoded) into q:
 * exactly one of vm (NAMESPACE/NAME) and ip (an IPv4 or IPv6 address); since is N
 * followed by s, m, h or d (q->since_ms = now_ms minus it; absent: 0, everything). 0,
 * or -EINVAL with e naming the parameter. Pure (fuzzed). */
int agent_flows_query_parse(const char *query, uint64_t now_ms, struct flow_query *q,
			    struct err *e);

#endif
