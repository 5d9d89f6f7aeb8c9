/* policy/internal — the parsed world, shared by the files of policy/ only. */
#ifndef KVNET_POLICY_INTERNAL_H
#define KVNET_POLICY_INTERNAL_H

#include "policy/policy.h"

struct pol_label {
	char *k;  /* key */
	char *v;  /* value */
};

struct pol_labels {
	struct pol_label *l;  /* pairs (heap) */
	unsigned n;           /* how many */
};

enum pol_op { POL_OP_IN = 1, POL_OP_NOTIN, POL_OP_EXISTS, POL_OP_DNE };

struct pol_req {
	char *key;        /* label key */
	enum pol_op op;   /* operator */
	char **vals;      /* values (In, NotIn) */
	unsigned n_vals;  /* how many */
};

/* A label selector; present and no requirements = everything. */
struct pol_sel {
	bool present;          /* given in the object */
	struct pol_req *reqs;  /* requirements, all must hold (matchLabels are In) */
	unsigned n;            /* how many */
};

struct pol_peer {
	bool ipblock;             /* an ipBlock (block is set), else selectors */
	struct pol_sel pod_sel;   /* podSelector (present or not) */
	struct pol_sel ns_sel;    /* namespaceSelector (present or not) */
	struct pol_ranges block;  /* cidr minus except */
};

struct pol_port {
	uint8_t proto;      /* enum pol_proto */
	bool any_port;      /* no port: every port of proto */
	char *name;         /* named port, or NULL */
	uint16_t port;      /* first port */
	uint16_t end_port;  /* last port */
};

struct pol_rule {
	bool all_peers;          /* from/to empty or missing */
	struct pol_peer *peers;  /* else these */
	unsigned n_peers;        /* how many */
	bool all_ports;          /* ports empty or missing */
	struct pol_port *ports;  /* else these */
	unsigned n_ports;        /* how many */
};

struct pol_policy {
	char *ns;                         /* namespace */
	char *name;                       /* name */
	struct pol_sel pod_sel;           /* spec.podSelector */
	bool types[POL_NDIR];             /* policyTypes (with the default applied) */
	struct pol_rule *rules[POL_NDIR]; /* ingress, egress rules */
	unsigned n_rules[POL_NDIR];       /* how many */
	bool multi;                       /* a MultiNetworkPolicy (k8s.cni.cncf.io) */
	char **nets;                      /* multi: policy-for, each "NS/NAD" (heap) */
	unsigned n_nets;                  /* how many */
};

/* A pod's addresses on one secondary network (a NetworkAttachmentDefinition). */
struct pol_podnet {
	char *net;                       /* "NS/NAD" */
	struct ip_addr ips[POL_IPS_MAX]; /* its addresses there */
	unsigned n_ips;                  /* how many */
};

struct pol_named_port {
	char *name;      /* port name */
	uint8_t proto;   /* protocol */
	uint16_t port;   /* number */
};

struct pol_pod {
	char *ns;                        /* namespace */
	char *name;                      /* name */
	bool vm;                         /* a VirtualMachineInstance */
	struct pol_labels labels;        /* metadata.labels */
	struct ip_addr ips[POL_IPS_MAX]; /* addresses */
	unsigned n_ips;                  /* how many */
	const char *inactive;            /* why policy does not see it, or NULL */
	struct pol_named_port *ports;    /* named container ports */
	unsigned n_ports;                /* how many */
	struct pol_podnet *nets;         /* secondary networks (network-status annotation;
	                                    VMIs: spec.networks[].multus + status.interfaces) */
	unsigned n_nets;                 /* how many */
};

struct pol_ns {
	char *name;                /* name */
	struct pol_labels labels;  /* labels, with kubernetes.io/metadata.name */
};

struct pol_world {
	struct pol_policy *pol;  /* NetworkPolicies */
	unsigned n_pol;          /* how many */
	struct pol_policy *mpol; /* MultiNetworkPolicies (never seen by pol_compile) */
	unsigned n_mpol;         /* how many */
	struct pol_pod *pods;    /* pods and VMIs */
	unsigned n_pods;         /* how many */
	struct pol_ns *ns;       /* namespaces */
	unsigned n_ns;           /* how many */
	char **inactive;         /* pods left out, "NS/NAME\tWHY" (heap) */
	unsigned n_inactive;     /* how many */
	bool view;               /* pol_world_net(): pol and pods are shallow copies of
	                            another world's (only the arrays are owned) */
};

/* Add an object whose kind is known (items of a typed List have none). */
int pol_world_add_kind(struct pol_world *w, const struct json_doc *d, int obj,
		       const char *kind, unsigned *added, struct err *e);
/* Why pod ns/name was left out of the world, or NULL when it was not. */
const char *pol_world_inactive_why(const struct pol_world *w, const char *ns, const char *name);
const char *pol_labels_get(const struct pol_labels *l, const char *k);
void pol_labels_free(struct pol_labels *l);
void pol_sel_free(struct pol_sel *s);
void pol_peer_free(struct pol_peer *pe);
void pol_policy_free(struct pol_policy *p);
void pol_pod_free(struct pol_pod *p);
/* True when the selector matches the labels. */
bool pol_sel_match(const struct pol_sel *s, const struct pol_labels *l);

#endif
