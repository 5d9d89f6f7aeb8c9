/* policy — Kubernetes NetworkPolicy (networking.k8s.io/v1), compiled to a rule set.
 *
 * Pure: no I/O, no clock. A struct pol_world holds what the compiler reads — policies,
 * pods (ordinary pods and KubeVirt VMIs: a VM is selected by its labels, which KubeVirt
 * copies onto the launcher pod), namespaces — added as JSON objects (one object or a
 * `kind: List`). Bad input is an error naming the object and the field, never a crash.
 *
 * pol_compile() turns the world and a list of endpoints (the pods on this node, each
 * with its host interface) into a struct pol_ruleset: per endpoint and per direction
 * whether it is isolated, which policies isolate it, and the allow rules. A rule is
 * (peer address set, port set); peer sets are sorted, merged address intervals (ipBlock
 * excepts already subtracted), port sets are (protocol, first..last) ranges with named
 * ports resolved (ingress: against the endpoint's own container ports; egress: against
 * each peer pod's, which splits a rule into one rule per resolved port). The shape maps
 * straight onto nf_tables: a vmap keyed by interface jumps to the endpoint's chain,
 * `ct state established,related accept` first, then one rule per pol_crule with an
 * interval set for its peers, then drop when the direction is isolated.
 *
 * Everything is deterministic: endpoints sorted by namespace/name, rules in policy
 * order (namespace/name), then rule index, then resolved port; each rule has a stable id
 * "NS/POLICY/ingress/R" (named egress ports: ".../R/tcp:8080") so a reconciler can diff.
 *
 * pol_verdict() answers "may SRC reach DST on PORT/PROTO" from the same compiled rules,
 * with the reasons.
 */
#ifndef KVNET_POLICY_POLICY_H
#define KVNET_POLICY_POLICY_H

#include "lib/ip.h"
#include "lib/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

typedef unsigned __int128 pol_u128;

enum pol_dir { POL_INGRESS = 0, POL_EGRESS = 1 };
#define POL_NDIR 2

/* IP protocol numbers as nf_tables matches them. */
enum pol_proto { POL_TCP = 6, POL_UDP = 17, POL_SCTP = 132 };

/* One address interval lo..hi (inclusive) of one family; addresses as big-endian
 * integers (IPv4 in the low 32 bits). */
struct pol_range {
	uint8_t family;  /* AF_INET or AF_INET6 */
	pol_u128 lo;     /* first address */
	pol_u128 hi;     /* last address */
};

/* A set of addresses: after pol_ranges_normalize() sorted (IPv4 first), disjoint and
 * not adjacent. */
struct pol_ranges {
	struct pol_range *r;  /* the intervals (heap) */
	unsigned n;           /* how many */
	unsigned cap;         /* allocated */
};

/* Add an interval / a CIDR; remove a CIDR. 0 or -ENOMEM. The set is normalized after
 * pol_ranges_sub() and pol_ranges_normalize(). */
int pol_ranges_add(struct pol_ranges *s, uint8_t family, pol_u128 lo, pol_u128 hi);
int pol_ranges_add_cidr(struct pol_ranges *s, const struct ip_addr *a, uint8_t plen);
int pol_ranges_sub_cidr(struct pol_ranges *s, const struct ip_addr *a, uint8_t plen);
int pol_ranges_normalize(struct pol_ranges *s);
/* True when ip is in the (normalized or not) set. */
bool pol_ranges_has(const struct pol_ranges *s, const struct ip_addr *ip);
void pol_ranges_free(struct pol_ranges *s);
/* Write the set as CIDR strings ("198.18.0.0/24") into a JSON array. */
void pol_ranges_json(const struct pol_ranges *s, struct json_w *w);
/* Format the set as comma-separated CIDRs into buf (cut with "..." when too long). */
const char *pol_ranges_fmt(const struct pol_ranges *s, char *buf, size_t cap);

struct pol_world;

/* An empty world, or NULL without memory. */
struct pol_world *pol_world_new(void);
void pol_world_free(struct pol_world *w);

/* Add the object at token obj of d: NetworkPolicy, MultiNetworkPolicy, Pod, Namespace,
 * VirtualMachineInstance, or a List of them (kind List or any *List with items). Other
 * kinds are skipped (*added untouched). *added (may be NULL) is increased by the
 * objects taken. 0, -EINVAL with e naming the object and field, -ENOMEM. On error
 * nothing of that object is kept (a List keeps the items before the bad one). */
int pol_world_add(struct pol_world *w, const struct json_doc *d, int obj, unsigned *added,
		  struct err *e);
/* Parse text[0..len) as JSON and add its root as pol_world_add() does. */
int pol_world_add_json(struct pol_world *w, const char *text, size_t len, unsigned *added,
		       struct err *e);
/* Parse text[0..len) as JSON and add it as one object of the given kind (NetworkPolicy,
 * Pod, Namespace, VirtualMachineInstance; others skipped), whatever its own "kind"
 * says: what an informer holds came from a LIST, whose items carry no kind. Returns as
 * pol_world_add(). */
int pol_world_add_json_kind(struct pol_world *w, const char *text, size_t len,
			    const char *kind, unsigned *added, struct err *e);
/* YAML (one or more documents, `---` separated) to a JSON List of the documents, in a
 * heap buffer *out (*out_len bytes). Plain scalars that read as null, true/false or a
 * JSON number become those; everything else is a string. 0, -EINVAL naming the line,
 * -ELOOP (nested too deep), -ENOMEM. */
int pol_yaml_to_json(const char *text, size_t len, char **out, size_t *out_len,
		     struct err *e);
/* pol_yaml_to_json() then pol_world_add_json(). */
int pol_world_add_yaml(struct pol_world *w, const char *text, size_t len, unsigned *added,
		       struct err *e);
/* ---- MultiNetworkPolicy (k8s.cni.cncf.io/v1beta1) ----------------------------------
 * A MultiNetworkPolicy has the spec of a NetworkPolicy and applies only to the pod
 * interfaces attached through the NetworkAttachmentDefinitions its annotation
 * k8s.v1.cni.cncf.io/policy-for names ("NAD" in the policy's namespace, or "NS/NAD",
 * comma-separated). pol_world_add() takes kind MultiNetworkPolicy; such policies are
 * kept apart: pol_compile() and pol_verdict() on the world never see them (they are the
 * cluster network's). A pod's addresses on a secondary network come from its
 * k8s.v1.cni.cncf.io/network-status annotation (entries not "default"; "ips" may carry a
 * prefix length), a VMI's from spec.networks[].multus.networkName joined by network name
 * with status.interfaces[].
 *
 * pol_world_net() is the world as network NS/NAD sees it: its policies are the
 * MultiNetworkPolicies naming NS/NAD, every pod's addresses are its addresses on NS/NAD
 * (none when it is not attached: selected peers without an address there add nothing).
 * pol_compile() and pol_verdict() on that view are the MultiNetworkPolicy compiler: the
 * same code, so selectors, ipBlocks, ports and isolation mean the same. The view
 * borrows from w (free it with pol_world_free() before w); NULL without memory. */
struct pol_world *pol_world_net(const struct pol_world *w, const char *net);
/* MultiNetworkPolicies held. */
unsigned pol_world_nmulti(const struct pol_world *w);
/* The addresses (up to POL_IPS_MAX, *n of them) of pod or VMI ns/name on network net
 * ("NS/NAD"); false when it has no entry for that network. */
bool pol_world_pod_net_ips(const struct pol_world *w, const char *ns, const char *name,
			   const char *net, struct ip_addr *ips, unsigned *n);

/* ---- Incremental use ----------------------------------------------------------------
 * A world kept across changes: an object that changed is taken out (pol_world_remove)
 * and its new version added (pol_world_add_json_kind). The compiled rules of a pod can
 * change only when one of the objects below changes; pol_world_dependents() names them,
 * called once with the old version in the world and once with the new one:
 *   NetworkPolicy: the pods it selects;
 *   Pod / VMI: itself, and the pods selected by every policy that could take it into
 *     its peers (a selector matching it, an ipBlock holding one of its addresses, an
 *     empty peer list: named egress ports are resolved on every pod);
 *   Namespace: the pods selected by every policy with a namespace selector.
 * A pod named may be named several times. */
typedef void (*pol_dep_fn)(void *arg, const char *ns, const char *name);
/* Take object KIND ns/name (NetworkPolicy, Pod, VirtualMachineInstance, Namespace; ns
 * ignored for a Namespace) out of w, with an inactive pod's line. False when w did not
 * hold it (or w is a view). */
bool pol_world_remove(struct pol_world *w, const char *kind, const char *ns,
		      const char *name);
/* The pods (and VMIs) whose compiled rules may change with object KIND ns/name as w
 * holds it now, each to fn(arg, ns, name); nothing when w does not hold it. */
void pol_world_dependents(const struct pol_world *w, const char *kind, const char *ns,
			  const char *name, pol_dep_fn fn, void *arg);
/* Sort the NetworkPolicies of w by namespace/name (cheap when only a few are out of
 * place): a world kept sorted is compiled without sorting its policies again (the
 * compiler's order is the same either way). */
void pol_world_settle(struct pol_world *w);
/* True when pod or VMI ns/name is in the world (active): an endpoint pol_compile knows. */
bool pol_world_has_pod(const struct pol_world *w, const char *ns, const char *name);

/* Counts of what the world holds. */
unsigned pol_world_npolicies(const struct pol_world *w);
unsigned pol_world_npods(const struct pol_world *w);
/* Pods left out of the world: host-network pods (their address is the node's; only an
 * ipBlock names them) and pods whose phase is Succeeded or Failed (their address may be
 * another pod's already). They are neither endpoints nor peers. */
unsigned pol_world_ninactive(const struct pol_world *w);
/* The pod or VMI holding address ip (a VMI before its launcher pod, which shares the
 * address). False when none does. The strings live as long as the world. */
bool pol_world_find_ip(const struct pol_world *w, const struct ip_addr *ip, const char **ns,
		       const char **name, bool *vm);

/* An endpoint to compile for: the pod (or VMI) NS/NAME, and its host interface (may be
 * NULL, e.g. for `kvnet policy explain`). */
struct pol_ep_in {
	const char *ns;      /* namespace */
	const char *name;    /* pod or VMI name */
	const char *ifname;  /* host-side interface, or NULL */
};

/* A port range of one protocol. */
struct pol_cport {
	uint8_t proto;  /* enum pol_proto */
	uint16_t lo;    /* first port */
	uint16_t hi;    /* last port (== lo for a single port) */
};

/* One allow rule: traffic from/to an address in peers (or anywhere, any_peer) on one of
 * ports (or any protocol and port, any_port) is accepted. */
struct pol_crule {
	char *id;                 /* stable id, "NS/POLICY/ingress/R[/tcp:PORT]" */
	char *policy;             /* "NS/POLICY" it came from */
	unsigned index;           /* rule index in the policy's ingress/egress list */
	bool any_peer;            /* from/to was empty or missing: every address */
	struct pol_ranges peers;  /* else the peer addresses */
	bool any_port;            /* ports was empty or missing */
	struct pol_cport *ports;  /* else the ports (heap) */
	unsigned n_ports;         /* how many */
};

/* One direction of an endpoint. Not isolated: everything is allowed (rules empty). */
struct pol_cdir {
	bool isolated;            /* some policy selects the pod for this direction */
	char **policies;          /* their "NS/NAME", sorted */
	unsigned n_policies;      /* how many */
	struct pol_crule *rules;  /* allow rules (union of all those policies) */
	unsigned n_rules;         /* how many */
};

#define POL_IPS_MAX 4

struct pol_cep {
	char *ns;                          /* namespace */
	char *name;                        /* pod or VMI name */
	char *ifname;                      /* host interface or NULL */
	bool vm;                           /* a KubeVirt VMI */
	struct ip_addr ips[POL_IPS_MAX];   /* its addresses */
	unsigned n_ips;                    /* how many */
	struct pol_cdir dir[POL_NDIR];     /* ingress, egress */
};

struct pol_ruleset {
	struct pol_cep *eps;  /* sorted by ns, name (heap) */
	unsigned n;           /* how many */
};

/* Compile for eps[0..n) (eps NULL: every pod and VMI of the world, no interfaces).
 * An endpoint that is not in the world is -ENOENT naming it. 0, -ENOENT, -ENOMEM. */
int pol_compile(const struct pol_world *w, const struct pol_ep_in *eps, unsigned n,
		struct pol_ruleset *out, struct err *e);
void pol_ruleset_free(struct pol_ruleset *rs);
/* The rule set as JSON (the form golden tests and diffs read). */
void pol_ruleset_json(const struct pol_ruleset *rs, struct json_w *w);
/* True when rule r accepts a packet with peer address ip, protocol proto, port. */
bool pol_crule_match(const struct pol_crule *r, const struct ip_addr *ip, uint8_t proto,
		     uint16_t port);

/* One side of a verdict query: a pod/VMI (ns and name set) or a bare address. */
struct pol_end {
	const char *ns;      /* namespace, or NULL for an address */
	const char *name;    /* pod or VMI name */
	struct ip_addr ip;   /* the address; for a pod, one of its own, or family 0 and
	                        pol_verdict fills it in */
};

#define POL_REASON_MAX 512

struct pol_verdict {
	bool allowed;                      /* both directions allow */
	bool dir_allowed[POL_NDIR];        /* egress of src, ingress of dst */
	bool applies[POL_NDIR];            /* that side is a known pod */
	struct pol_cdir *cdir[POL_NDIR];   /* its compiled direction (or NULL) */
	const char *rule[POL_NDIR];        /* id of the first rule that allowed, or NULL */
	char why[POL_NDIR][POL_REASON_MAX]; /* one line per direction */
	struct pol_ruleset rs[POL_NDIR];   /* owned compiled sets; pol_verdict_free() */
};

/* May src send to dst on port/proto? Resolves pod ends (their address of the family of
 * the other end, or their first), compiles src for egress and dst for ingress and
 * matches. 0, -ENOENT (unknown pod, or a pod with no address), -ENOMEM. */
int pol_verdict(const struct pol_world *w, struct pol_end *src, struct pol_end *dst,
		uint8_t proto, uint16_t port, struct pol_verdict *v, struct err *e);
void pol_verdict_free(struct pol_verdict *v);

/* "tcp", "udp", "sctp" (any case) to the protocol number; 0 when none. */
uint8_t pol_proto_parse(const char *s);
const char *pol_proto_name(uint8_t proto);

#endif
