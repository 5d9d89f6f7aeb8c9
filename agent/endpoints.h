/* endpoints — the agent's table of local endpoints and its persistence.
 *
 * An endpoint is one pod interface on this node (struct agent_ep, agent/desired.h), as
 * the CNI plugin registered it over the socket, or adopted from an existing kvnet route
 * on a kv* veth that no registration names. The table keeps, per endpoint, what the
 * agent tracks beside it: "programmed" gate bits, whether a full reconcile succeeded
 * while it existed, the last "programmed" evaluation.
 *
 * Persistence: one file per registered endpoint in the endpoints directory
 * ("CID_IFNAME.json", the add line itself, agent/proto.h, with the agent's identity;
 * written temp + rename), so a restarted agent knows every endpoint at once. Adopted
 * endpoints have no file.
 *
 * The owner (the hub) is told of every insertion and removal through two callbacks
 * (struct agent_eps_notify), which it fans out to its subscribers. Pointers returned are
 * valid until the endpoint is removed (the slot is reused in place on a replace).
 * No logging of routine events; warnings about unusable files and kernel errors go to
 * the logger given (the only I/O besides the directory and netlink).
 */
#ifndef KVNET_AGENT_ENDPOINTS_H
#define KVNET_AGENT_ENDPOINTS_H

#include "agent/desired.h"

#include <stdbool.h>
#include <stdint.h>

struct err;
struct log;
struct nl_sock;
struct agent_eps;

/* Told of table changes; either may be NULL. removed runs before the memory goes. */
struct agent_eps_notify {
	void (*added)(void *user, struct agent_ep *ep, bool from_disk); /* insert or replace */
	void (*removed)(void *user, struct agent_ep *ep);		 /* remove or replace */
};

/* An empty table persisted in dir (copied; created by agent_eps_load when missing),
 * logging to log (not owned). NULL when out of memory. */
struct agent_eps *agent_eps_new(const char *dir, struct log *log,
				const struct agent_eps_notify *notify, void *user);
/* Free the table (no notifications; files stay). NULL is ignored. */
void agent_eps_free(struct agent_eps *t);
/* The identity written into endpoint files (agent/proto.h node and datastore). */
void agent_eps_set_identity(struct agent_eps *t, const char *node, const char *datastore);

/* Endpoint by (container id, ifname), or by one of its addresses; NULL if none. */
struct agent_ep *agent_eps_find(const struct agent_eps *t, const char *cid,
				const char *ifname);
struct agent_ep *agent_eps_find_ip(const struct agent_eps *t, const struct ip_addr *ip);
/* Number of endpoints and endpoint i (0..n-1; order changes on insert/remove). */
unsigned agent_eps_count(const struct agent_eps *t);
struct agent_ep *agent_eps_at(const struct agent_eps *t, unsigned i);

/* Insert ep (copied, ifindex reset), replacing one with the same (cid, ifname): notify
 * removed for the old, added for the new. Returns the table's copy, or NULL when out
 * of memory. Does not write the file (agent_eps_save). */
struct agent_ep *agent_eps_insert(struct agent_eps *t, const struct agent_ep *ep,
				  bool from_disk);
/* Remove ep (a pointer from this table): notify, delete its file unless adopted, free. */
void agent_eps_remove(struct agent_eps *t, struct agent_ep *ep);
/* Write ep's file (temp + rename). 0 or -errno with e. */
int agent_eps_save(struct agent_eps *t, const struct agent_ep *ep, struct err *e);

/* Create the directory if missing (0700). 0 or -errno with e. */
int agent_eps_mkdir(struct agent_eps *t, struct err *e);
/* Insert every usable endpoint file of the directory (from_disk); unusable ones are
 * logged and skipped. Returns how many were loaded. */
unsigned agent_eps_load(struct agent_eps *t);
/* Adopt kvnet routes (protocol, main table, /32 or /128, metric `metric`, no gateway)
 * on a kv* interface no endpoint names: they become endpoints (adopted, cid
 * "adopted-VETH", ifname "-"). warn: log the adoption as a warning (after start, such a
 * pod's CNI ADD did not reach the agent) rather than info. */
void agent_eps_adopt_routes(struct agent_eps *t, struct nl_sock *nl, uint8_t protocol,
			    uint32_t metric, bool warn);
/* Resolve every endpoint's veth to its ifindex; an endpoint whose veth is gone is
 * removed (its pod is gone). */
void agent_eps_resolve(struct agent_eps *t, struct nl_sock *nl);

/* "Programmed" state: gate bits set by modules (agent_ep_gate_set), and whether a full
 * reconcile succeeded while the endpoint existed. */
void agent_eps_gate_set(struct agent_ep *ep, unsigned bits);
void agent_eps_gate_clear(struct agent_ep *ep, unsigned bits);
/* Mark every endpoint's routes in place (a reconcile succeeded). */
void agent_eps_routes_ok(struct agent_eps *t);
/* True when ep's routes are in their desired state and no gate is set (a dark target
 * counts as in place; an ordinary endpoint also needs its veth resolved). */
bool agent_eps_programmed(const struct agent_ep *ep);

#endif
