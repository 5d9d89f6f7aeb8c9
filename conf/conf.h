/* conf — /etc/kvnet/kvnet.conf: schema, parser, environment overrides, printer.
 *
 * The file is INI, read with inih, in these sections (schema order; `kvnet config -n -d`
 * prints every key with its documentation, and dist/kvnet.conf is that output):
 *
 *   [log] [datastore] [kubernetes] [ipam] [network] [migration] [cni] [agent] [flows]
 *   [bgp]
 *
 * One schema table (conf.c) says, for every key, its section, type, default, range and
 * documentation; the parser, the environment overrides, the defaults and the printer
 * all walk that table, so they cannot disagree.
 *
 * The parser is FED TEXT (conf_parse) and does no I/O; conf_load() is the one function
 * that reads a file, and it only hands the bytes to conf_parse(). Syntax (inih):
 *   - `[section]` headers, `key = value` (or `key: value`) lines, leading and trailing
 *     whitespace ignored (an indented line is an ordinary line, never a continuation);
 *   - full-line comments start with `#` or `;`; an inline comment is ` ;` (whitespace
 *     then semicolon). `#` after a value is part of the value;
 *   - a line may hold at most CONF_LINE_MAX bytes.
 * An unknown section (even an empty one), an unknown key, a key given twice in one text
 * and a value that does not fit its type are errors. Parsing stops being useful at the
 * first error: conf_parse() reports THE FIRST error only (lowest line number) as
 *   NAME:LINE: [section] key: "value" is out of range (want 20..30)
 *
 * Environment: after the file, every variable KVNET_<SECTION>_<KEY> (upper case, e.g.
 * KVNET_IPAM_BLOCK_SIZE_V4=24) overrides that key, validated exactly like the file. The
 * whole KVNET_ prefix is reserved for this: a KVNET_ variable that names no key is an
 * error. Environment values have leading and trailing whitespace trimmed, like file values.
 *
 * Reading values: after a successful conf_load() (or conf_defaults + conf_parse +
 * conf_apply_env + conf_check) every field of struct conf holds a validated value; read
 * the fields directly. A struct conf owns no memory (fixed-size arrays only): copy it,
 * compare it with conf_equal(), throw it away without a free.
 */
#ifndef KVNET_CONF_CONF_H
#define KVNET_CONF_CONF_H

#include "lib/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define CONF_DEFAULT_PATH "/etc/kvnet/kvnet.conf"
#define CONF_STR_MAX 256          /* string and path storage: at most 255 bytes; in practice
				   * the line limit below is stricter (every value must
				   * print as one `key = value` line that parses back) */
#define CONF_POOLS_MAX 16         /* CIDRs per pool list */
#define CONF_BGP_PEERS_MAX 8      /* [bgp] peers */
#define CONF_TEXT_MAX (1u << 20)  /* conf_load refuses bigger files */
#define CONF_LINE_MAX 197         /* bytes per line, newline excluded (inih's limit) */
#define CONF_ENV_PREFIX "KVNET_"

/* One IPv4 or IPv6 network. Host bits are always zero (the parser refuses others). */
struct conf_cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network address, network order; IPv4 uses the first 4 bytes */
	uint8_t prefix;    /* prefix length, 0..32 or 0..128 */
};

/* A comma-separated list of CIDRs of one family, in the order given. */
struct conf_cidr_list {
	unsigned n;                            /* entries used in v[] */
	struct conf_cidr v[CONF_POOLS_MAX];    /* the networks; unused entries zeroed */
};

/* One BGP neighbour: its address and AS number ([bgp] peers, "ADDRESS ASN"). */
struct conf_bgp_peer {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* address, network order; IPv4 uses the first 4 bytes */
	uint32_t asn;      /* its AS number, 1..4294967295 */
};

/* The [bgp] peers list, in the order given. */
struct conf_bgp_peers {
	unsigned n;                                 /* entries used in v[] */
	struct conf_bgp_peer v[CONF_BGP_PEERS_MAX]; /* the peers; unused entries zeroed */
};

/* An IPv4 address or nothing ([bgp] router_id). */
struct conf_ipv4 {
	bool set;          /* false: empty (the default applies) */
	uint8_t addr[4];   /* address, network order */
};

/* A listening address written IPV4:PORT or [IPV6]:PORT (literal addresses only). */
struct conf_hostport {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* address, network order; IPv4 uses the first 4 bytes */
	uint16_t port;     /* 1..65535, host order */
};

enum conf_datastore {
	CONF_DATASTORE_FILE,        /* "file": state directory, single node */
	CONF_DATASTORE_KUBERNETES,  /* "kubernetes": kvnet.io CRDs via the API server */
};

enum conf_switch {
	CONF_DISABLED,  /* "disabled" */
	CONF_ENABLED,   /* "enabled" */
};

enum conf_cross_node {
	CONF_CROSS_NONE,    /* "none": the agent routes local endpoints only */
	CONF_CROSS_DIRECT,  /* "direct": remote blocks via their node (shared L2 segment) */
	CONF_CROSS_BGP,     /* "bgp": BIRD 2 announces kvnet's routes and installs the
			     * other nodes' ([bgp]; agent/bgp.h) */
	CONF_CROSS_VXLAN,   /* "vxlan": remote blocks via their node over a VXLAN overlay */
};

enum conf_ip_family {
	CONF_FAMILY_IPV4,  /* "ipv4" */
	CONF_FAMILY_IPV6,  /* "ipv6" */
};

enum conf_timeout_action {
	CONF_TIMEOUT_FAIL,      /* "fail": the CNI ADD fails (closed) */
	CONF_TIMEOUT_CONTINUE,  /* "continue": the CNI ADD goes on without confirmation */
};

/* The effective configuration. Field names are the keys; see the schema in conf.c (or
 * `kvnet config -n -d`) for each key's meaning, default and range. */
struct conf {
	struct {
		enum log_level level;        /* [log] level */
		char file[CONF_STR_MAX];     /* [log] file; "" = stderr */
	} log;
	struct {
		enum conf_datastore type;    /* [datastore] type */
		char state_dir[CONF_STR_MAX];/* [datastore] state_dir (absolute path) */
	} datastore;
	struct {
		char kubeconfig[CONF_STR_MAX]; /* [kubernetes] kubeconfig; "" = in-cluster or $KUBECONFIG */
		char context[CONF_STR_MAX];    /* [kubernetes] context; "" = current-context */
		char node_name[CONF_STR_MAX];  /* [kubernetes] node_name; "" = $NODE_NAME or hostname
						* (resolved by cmd/, conf keeps the literal) */
	} kubernetes;
	struct {
		struct conf_cidr_list ipv4_pools;   /* [ipam] ipv4_pools (AF_INET only) */
		struct conf_cidr_list ipv6_pools;   /* [ipam] ipv6_pools (AF_INET6 only) */
		uint32_t block_size_v4;             /* [ipam] block_size_v4, 20..30 */
		uint32_t block_size_v6;             /* [ipam] block_size_v6, 116..126 */
		enum conf_switch kubevirt_ip_persistence; /* [ipam] kubevirt_ip_persistence */
		uint32_t vm_grace_seconds;          /* [ipam] vm_grace_seconds */
	} ipam;
	struct {
		uint32_t mtu;                 /* [network] mtu, 68..65535 */
		uint32_t route_protocol;      /* [network] route_protocol, 1..255 */
		uint32_t route_metric;        /* [network] route_metric */
		uint32_t migration_metric;    /* [network] migration_metric, < route_metric */
		enum conf_cross_node cross_node; /* [network] cross_node */
		uint32_t vxlan_vni;           /* [network] vxlan_vni, 1..16777215 */
		uint32_t vxlan_port;          /* [network] vxlan_port, UDP, 1..65535 */
		char vxlan_device[CONF_STR_MAX]; /* [network] vxlan_device (interface name) */
		char vxlan_underlay[CONF_STR_MAX]; /* [network] vxlan_underlay; "" = the
						    * interface routing to the node address */
		enum conf_ip_family vxlan_family; /* [network] vxlan_family of the underlay */
	} network;
	struct {
		uint32_t convergence_seconds; /* [migration] convergence_seconds */
		bool announce_detection;      /* [migration] announce_detection */
	} migration;
	struct {
		uint32_t policy_setup_timeout_seconds; /* [cni] ...; 0 = do not wait */
		enum conf_timeout_action policy_timeout_action; /* [cni] policy_timeout_action */
		enum log_level log_level;     /* [cni] log_level */
		char log_file[CONF_STR_MAX];  /* [cni] log_file; "" = stderr */
	} cni;
	struct {
		struct conf_hostport listen;  /* [agent] listen: health, readiness, metrics */
		char socket[CONF_STR_MAX];    /* [agent] socket (absolute path) */
		char socket_group[CONF_STR_MAX]; /* [agent] socket_group: group allowed besides
						  * root; "" = root only */
		char endpoints_dir[CONF_STR_MAX]; /* [agent] endpoints_dir (absolute path) */
		uint32_t resync_seconds;      /* [agent] resync_seconds, 1..3600 */
		uint32_t peer_port;	      /* [agent] peer_port: UDP port of the
					       * agent-to-agent path, 0 = off */
		char peer_key_file[CONF_STR_MAX]; /* [agent] peer_key_file: its shared
					       * HMAC key (absolute path) */
		bool conntrack_handover;      /* [agent] conntrack_handover: copy a migrating
					       * VM's conntrack entries over the peer path */
		enum conf_switch network_policy; /* [agent] network_policy: enforce NetworkPolicy */
	} agent;
	struct {
		bool enabled;		      /* [flows] enabled: the agent records flows */
		char log_dir[CONF_STR_MAX];   /* [flows] log_dir (absolute path) */
		uint32_t flush_interval;      /* [flows] flush_interval, seconds, 1..3600 */
		uint32_t max_flows;	      /* [flows] max_flows, records per window */
		uint32_t max_log_bytes;	      /* [flows] max_log_bytes, per log file */
		uint32_t max_log_files;	      /* [flows] max_log_files, rotated files kept */
		uint32_t nflog_group;	      /* [flows] nflog_group: deny rules log there */
		uint32_t nflog_rate;	      /* [flows] nflog_rate: logged denials per second
					       * and chain */
	} flows;
	struct {
		uint32_t asn;                 /* [bgp] asn: this node's AS number */
		struct conf_ipv4 router_id;   /* [bgp] router_id; unset = the node's IPv4
					       * InternalIP */
		struct conf_bgp_peers peers;  /* [bgp] peers */
		char config[CONF_STR_MAX];    /* [bgp] config: the fragment kvnet writes */
		char socket[CONF_STR_MAX];    /* [bgp] socket: BIRD's control socket */
		uint32_t local_pref;          /* [bgp] local_pref of ordinary announcements */
		uint32_t migration_local_pref; /* [bgp] migration_local_pref, > local_pref */
		uint32_t kernel_metric;       /* [bgp] kernel_metric of learned routes, >
					       * route_metric */
		bool graceful_restart;        /* [bgp] graceful_restart */
	} bgp;
	uint64_t given[2];		      /* bit per schema key: set by a file or the
					       * environment, not a default (conf_given) */
};

/* Fill c with the built-in defaults (the single-node demo configuration). The defaults
 * are text in the schema, parsed by the same code as the file; returns 0, or -EINVAL if
 * one of them does not parse (a bug, reported in e). */
int conf_defaults(struct conf *c, struct err *e);

/* Set one key from its text form, validated like a file line. section and key are the
 * names as written in the file (lower case). Returns 0; or -EINVAL/-ERANGE/-ENOENT with
 * e = `[section] key: "value" is ... (want ...)`; c is unchanged on error. */
int conf_set(struct conf *c, const char *section, const char *key, const char *value,
	     struct err *e);

/* Parse INI text (len bytes, need not be NUL-terminated; NUL bytes are an error) on top
 * of the values already in c. name is used in messages ("kvnet.conf:12: ..."). All or
 * nothing: on error c is unchanged and e holds the first error. Returns 0, -EINVAL,
 * -ERANGE or -ENOMEM. */
int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       struct err *e);

/* Apply KVNET_<SECTION>_<KEY>=VALUE overrides from envp (a NULL-terminated
 * "NAME=VALUE" array like environ; entries without "KVNET_" are ignored). A KVNET_
 * variable naming no key, set twice, or holding a bad value is an error:
 * `environment KVNET_IPAM_BLOCK_SIZE_V4: [ipam] block_size_v4: ...`. All or nothing. */
int conf_apply_env(struct conf *c, char *const *envp, struct err *e);

/* Checks that involve more than one key: at least one pool; every pool at least as big
 * as a block of its family; no two pools of a family overlapping; migration_metric below
 * route_metric; with cross_node = bgp: at least one peer, migration_local_pref above
 * local_pref, kernel_metric above route_metric. Returns 0 or -EINVAL with e. */
int conf_check(const struct conf *c, struct err *e);

/* The whole sequence: defaults, the file at path (if it does not exist and missing_ok,
 * defaults only; a missing file is otherwise an error), envp overrides (NULL = none),
 * conf_check. On error *c is unspecified and e says "path: open: ..." or what
 * conf_parse/conf_apply_env/conf_check said. */
int conf_load(struct conf *c, const char *path, bool missing_ok, char *const *envp,
	      struct err *e);

enum {
	CONF_FMT_DOC = 1 << 0,  /* precede each key with its documentation as # comments */
};

/* Print c as canonical INI (every section and key, schema order, `key = value`) into
 * buf (cap bytes, always NUL-terminated when cap > 0). Returns the length of the whole
 * text without the NUL, like snprintf: a return >= cap means buf was too small. The text
 * parses back (conf_parse on defaults) to a conf equal to c. */
size_t conf_format(const struct conf *c, unsigned flags, char *buf, size_t cap);

/* True when the key [section] key was set by a file or the environment (conf_parse,
 * conf_set, conf_apply_env), not only defaulted. False for an unknown key. */
bool conf_given(const struct conf *c, const char *section, const char *key);

/* True when every key of a and b holds the same value. */
bool conf_equal(const struct conf *a, const struct conf *b);

/* The node this process runs on, resolved the same way in every role: [kubernetes]
 * node_name when set, else env_node_name (the caller passes getenv("NODE_NAME"); NULL or
 * "" = unset), else the host name, else "localhost". Writes the literal name (not mapped
 * to an object name) into out (cap bytes, truncated, always NUL-terminated). Never fails. */
void conf_node_name(const struct conf *c, const char *env_node_name, char *out, size_t cap);

/* The [network] cross_node value that selects m ("none", "direct", "bgp", "vxlan"). */
const char *conf_cross_node_name(enum conf_cross_node m);

/* The identity of the datastore c names, as the CNI and the agent compare it at
 * registration: "file:STATE_DIR" or "kubernetes:SERVER" (server = the API server URL of
 * the kubeconfig actually loaded; NULL = "" when not known yet). Returns the length like
 * snprintf; out (cap bytes) is always NUL-terminated when cap > 0. */
size_t conf_datastore_ident(const struct conf *c, const char *server, char *out, size_t cap);
/* The same from the parts, for a caller without a struct conf (the CNI plugin). */
size_t conf_datastore_ident_of(enum conf_datastore type, const char *state_dir,
			       const char *server, char *out, size_t cap);

#endif
