/* conf — /etc/kvnet/kvnet.conf; see conf.h. */
#include "conf/conf.h"
#include "lib/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum conf_type {
	CONF_T_STRING,     /* free text without control bytes or ';' */
	CONF_T_PATH,       /* absolute path */
	CONF_T_BOOL,       /* true/false yes/no on/off 1/0 */
	CONF_T_INT,        /* decimal uint32 in [min, max] */
	CONF_T_DURATION,   /* seconds: N, Ns, Nm, Nh; stored as seconds in [min, max] */
	CONF_T_ENUM,       /* one of names[]; stored as the index (an enum) */
	CONF_T_CIDR4_LIST, /* comma-separated IPv4 CIDRs */
	CONF_T_CIDR6_LIST, /* comma-separated IPv6 CIDRs */
	CONF_T_HOSTPORT,   /* IPV4:PORT or [IPV6]:PORT */
	CONF_T_LOGLEVEL,   /* error, warn, info, debug */
	CONF_T_IPV4,       /* one IPv4 address, or empty */
	CONF_T_PEER_LIST,  /* comma-separated "ADDRESS ASN" pairs */
};

/* One key of the schema. */
struct conf_key {
	const char *section;       /* section name, lower case */
	const char *name;          /* key name, lower case */
	enum conf_type type;       /* how the value is parsed, stored and printed */
	size_t off;                /* offset of the field in struct conf */
	const char *def;           /* default value, as text */
	uint32_t min, max;         /* CONF_T_INT, CONF_T_DURATION: allowed range */
	const char *const *names;  /* CONF_T_ENUM: names, index = value, NULL-terminated */
	bool empty_ok;             /* CONF_T_STRING, CONF_T_PATH: "" is allowed */
	const char *doc;           /* documentation, lines separated by '\n' */
};

static const char *const datastore_names[] = { "file", "kubernetes", NULL };
static const char *const switch_names[] = { "disabled", "enabled", NULL };
static const char *const action_names[] = { "fail", "continue", NULL };
static const char *const cross_names[] = { "none", "direct", "bgp", "vxlan", NULL };
static const char *const family_names[] = { "ipv4", "ipv6", NULL };

#define F(field) offsetof(struct conf, field)

static const struct conf_key conf_schema[] = {
	{ "log", "level", CONF_T_LOGLEVEL, F(log.level), "info", 0, 0, NULL, false,
	  "Messages above this level are dropped: error, warn, info or debug." },
	{ "log", "file", CONF_T_PATH, F(log.file), "", 0, 0, NULL, true,
	  "Append log lines to this file; empty: standard error." },
	{ "datastore", "type", CONF_T_ENUM, F(datastore.type), "file", 0, 0, datastore_names,
	  false,
	  "Where IPAM state lives: file (state_dir, one node) or kubernetes\n"
	  "(kvnet.io custom resources through the API server, many nodes)." },
	{ "datastore", "state_dir", CONF_T_PATH, F(datastore.state_dir), "/var/lib/kvnet/ipam", 0, 0,
	  NULL, false, "State directory of the file datastore (locked with flock)." },
	{ "kubernetes", "kubeconfig", CONF_T_PATH, F(kubernetes.kubeconfig), "", 0, 0, NULL, true,
	  "Kubeconfig file; empty: the in-cluster service account, else $KUBECONFIG." },
	{ "kubernetes", "context", CONF_T_STRING, F(kubernetes.context), "", 0, 0, NULL, true,
	  "Kubeconfig context to use; empty: its current-context." },
	{ "kubernetes", "node_name", CONF_T_STRING, F(kubernetes.node_name), "", 0, 0, NULL,
	  true, "Name of this node in the API; empty: $NODE_NAME, else the hostname." },
	{ "ipam", "ipv4_pools", CONF_T_CIDR4_LIST, F(ipam.ipv4_pools), "198.18.0.0/16", 0, 0,
	  NULL, true,
	  "IPv4 pools to allocate from, comma-separated CIDRs; empty: no IPv4." },
	{ "ipam", "ipv6_pools", CONF_T_CIDR6_LIST, F(ipam.ipv6_pools), "2001:db8:4b76::/48", 0,
	  0, NULL, true,
	  "IPv6 pools to allocate from, comma-separated CIDRs; empty: no IPv6." },
	{ "ipam", "block_size_v4", CONF_T_INT, F(ipam.block_size_v4), "26", 20, 30, NULL, false,
	  "Prefix length of the IPv4 blocks a node claims from a pool." },
	{ "ipam", "block_size_v6", CONF_T_INT, F(ipam.block_size_v6), "122", 116, 126, NULL,
	  false, "Prefix length of the IPv6 blocks a node claims from a pool." },
	{ "ipam", "kubevirt_ip_persistence", CONF_T_ENUM, F(ipam.kubevirt_ip_persistence),
	  "enabled", 0, 0, switch_names, false,
	  "enabled: a KubeVirt VM keeps its IP across pod re-creation and live\n"
	  "migration (handle keyed on the VM); disabled: every pod is ordinary." },
	{ "ipam", "vm_grace_seconds", CONF_T_DURATION, F(ipam.vm_grace_seconds), "300", 0,
	  604800, NULL, false,
	  "How long the IP of a VM without any pod is kept before it is freed." },
	{ "network", "mtu", CONF_T_INT, F(network.mtu), "1500", 68, 65535, NULL, false,
	  "MTU of the pod veth pair." },
	{ "network", "route_protocol", CONF_T_INT, F(network.route_protocol), "75", 1, 255, NULL,
	  false,
	  "Routing protocol number on kvnet's routes, so the agent finds its own." },
	{ "network", "route_metric", CONF_T_INT, F(network.route_metric), "1024", 1, 4294967295u,
	  NULL, false, "Metric of a pod's host route." },
	{ "network", "migration_metric", CONF_T_INT, F(network.migration_metric), "512", 0,
	  4294967295u, NULL, false,
	  "Metric of a migrated VM's route during convergence (must be below\n"
	  "route_metric, so it wins)." },
	{ "network", "cross_node", CONF_T_ENUM, F(network.cross_node), "direct", 0, 0,
	  cross_names, false,
	  "How the agent reaches pods on other nodes: direct (nodes share one L2\n"
	  "segment: each remote block via its node's InternalIP, moved /32s via the\n"
	  "node of their active owner), bgp (BIRD 2 on the node announces kvnet's\n"
	  "routes to the [bgp] peers and installs what they learned), vxlan (nodes\n"
	  "in different subnets: the direct routes over a VXLAN overlay device, see\n"
	  "vxlan_*) or none (only local routes)." },
	{ "network", "vxlan_vni", CONF_T_INT, F(network.vxlan_vni), "4096", 1, 16777215, NULL,
	  false, "cross_node = vxlan: the VXLAN network identifier, the same on every node." },
	{ "network", "vxlan_port", CONF_T_INT, F(network.vxlan_port), "4789", 1, 65535, NULL,
	  false, "cross_node = vxlan: the UDP destination port of the overlay." },
	{ "network", "vxlan_device", CONF_T_STRING, F(network.vxlan_device), "kvnet.vxlan", 0, 0,
	  NULL, false, "cross_node = vxlan: name of the VXLAN device the agent creates." },
	{ "network", "vxlan_underlay", CONF_T_STRING, F(network.vxlan_underlay), "", 0, 0, NULL,
	  true,
	  "cross_node = vxlan: the underlay interface (MTU and source of the tunnel);\n"
	  "empty: the interface that holds this node's InternalIP." },
	{ "network", "vxlan_family", CONF_T_ENUM, F(network.vxlan_family), "ipv4", 0, 0,
	  family_names, false,
	  "cross_node = vxlan: underlay address family: ipv4 (the nodes' IPv4\n"
	  "InternalIPs, device MTU = underlay MTU - 50) or ipv6 (- 70)." },
	{ "migration", "convergence_seconds", CONF_T_DURATION, F(migration.convergence_seconds),
	  "30", 1, 3600, NULL, false,
	  "After a live migration, how long the target's route keeps migration_metric." },
	{ "migration", "announce_detection", CONF_T_BOOL, F(migration.announce_detection),
	  "true", 0, 0, NULL, false,
	  "Watch target veths for the VM's GARP / RARP / unsolicited NA and switch\n"
	  "the route when it arrives (else only the API's target-ready timestamp)." },
	{ "cni", "policy_setup_timeout_seconds", CONF_T_DURATION,
	  F(cni.policy_setup_timeout_seconds), "0", 0, 600, NULL, false,
	  "How long CNI ADD of a migration target waits for the agent to confirm\n"
	  "its policy; 0: do not wait." },
	{ "cni", "policy_timeout_action", CONF_T_ENUM, F(cni.policy_timeout_action), "fail", 0,
	  0, action_names, false,
	  "When that wait times out: fail (the ADD fails, closed) or continue." },
	{ "cni", "log_level", CONF_T_LOGLEVEL, F(cni.log_level), "info", 0, 0, NULL, false,
	  "The CNI plugin's log level: error, warn, info or debug ([log] is the\n"
	  "agent's and the tools')." },
	{ "cni", "log_file", CONF_T_PATH, F(cni.log_file), "", 0, 0, NULL, true,
	  "File the CNI plugin appends its log to; empty: stderr, which the container\n"
	  "runtime keeps." },
	{ "agent", "listen", CONF_T_HOSTPORT, F(agent.listen), "127.0.0.1:9746", 0, 0, NULL,
	  false,
	  "HTTP address for /healthz, /readyz and /metrics: IPV4:PORT or [IPV6]:PORT." },
	{ "agent", "socket", CONF_T_PATH, F(agent.socket), "/run/kvnet/agent.sock", 0, 0, NULL,
	  false, "Unix socket the CNI plugin and ipamctl use to talk to the agent." },
	{ "agent", "socket_group", CONF_T_STRING, F(agent.socket_group), "", 0, 0, NULL, true,
	  "Group (name) whose members may use the agent socket besides root; the\n"
	  "socket is then group-owned with mode 0660. Empty: root only (mode 0600).\n"
	  "Every connection's peer is checked (SO_PEERCRED), not only the file mode." },
	{ "agent", "endpoints_dir", CONF_T_PATH, F(agent.endpoints_dir), "/run/kvnet/endpoints", 0,
	  0, NULL, false,
	  "Where the agent keeps one file per registered endpoint, so a restarted\n"
	  "agent knows them at once (tmpfs: pods do not survive a reboot either)." },
	{ "agent", "resync_seconds", CONF_T_DURATION, F(agent.resync_seconds), "30", 1, 3600,
	  NULL, false,
	  "Reconcile the routes at least this often, even without any change." },
	{ "agent", "peer_port", CONF_T_INT, F(agent.peer_port), "9473", 0, 65535, NULL, false,
	  "UDP port of the agent-to-agent path on the node's InternalIP: at a\n"
	  "migration the target tells every other agent at once where the VM\n"
	  "lives now (HMAC-signed, replay-checked; the API stays the source of\n"
	  "truth). 0: off (other nodes learn through the API watch only)." },
	{ "agent", "peer_key_file", CONF_T_PATH, F(agent.peer_key_file), "/etc/kvnet/peer/key",
	  0, 0, NULL, true,
	  "Shared HMAC-SHA256 key of that path (16..4096 bytes, the same on every\n"
	  "node; a trailing newline is dropped). In a DaemonSet, mount it from a\n"
	  "Secret. Missing file or empty: the path stays off (with a warning).\n"
	  "Both keys are read at start only (a reload keeps them)." },
	{ "agent", "conntrack_handover", CONF_T_BOOL, F(agent.conntrack_handover), "true", 0, 0,
	  NULL, false,
	  "Over that path, copy the source node's conntrack entries of a migrating\n"
	  "VM's addresses (NAT included) to the target node before the cut-over\n"
	  "and top them up at it, so connections under stateful rules or through\n"
	  "a DNAT on the node survive; never flushed on the source. The target\n"
	  "takes entries only for a VM it is the migration target of, from the\n"
	  "source node, for that VM's addresses. Needs the peer path on." },
	{ "agent", "network_policy", CONF_T_ENUM, F(agent.network_policy), "disabled", 0, 0,
	  switch_names, false,
	  "Enforce Kubernetes NetworkPolicy on this node's endpoints with nf_tables\n"
	  "(table inet kvnet; kubernetes datastore only). A kvnet veth is dropped until\n"
	  "its rules are in the kernel unless [cni] policy_timeout_action is continue." },
	{ "flows", "enabled", CONF_T_BOOL, F(flows.enabled), "false", 0, 0, NULL, false,
	  "Record flows of the local VMs and pods from conntrack (and set\n"
	  "net.netfilter.nf_conntrack_acct=1 in the agent's namespace for bytes)." },
	{ "flows", "log_dir", CONF_T_PATH, F(flows.log_dir), "/var/log/kvnet/flows", 0, 0, NULL,
	  false,
	  "Directory of the flow log: flows.log (JSON lines, one record per flow\n"
	  "and window) and its rotated files flows.log.1 .. flows.log.N." },
	{ "flows", "flush_interval", CONF_T_DURATION, F(flows.flush_interval), "10", 1, 3600, NULL,
	  false, "Length of a window: records are written to the flow log this often." },
	{ "flows", "max_flows", CONF_T_INT, F(flows.max_flows), "65536", 1, 1048576, NULL, false,
	  "Records a window holds (memory allocated once at start); a new flow\n"
	  "beyond it is dropped and counted (kvnet_flows_dropped_total)." },
	{ "flows", "max_log_bytes", CONF_T_INT, F(flows.max_log_bytes), "67108864", 4096,
	  1073741824, NULL, false,
	  "Size at which flows.log is rotated (bytes)." },
	{ "flows", "max_log_files", CONF_T_INT, F(flows.max_log_files), "4", 0, 100, NULL, false,
	  "Rotated flow log files kept besides flows.log (the oldest is removed);\n"
	  "disk use stays below (max_log_files + 1) x max_log_bytes." },
	{ "flows", "nflog_group", CONF_T_INT, F(flows.nflog_group), "9746", 0, 65535, NULL, false,
	  "nflog group the NetworkPolicy deny rules log to and the agent reads\n"
	  "(denied flows in the flow log; one listener per group and node)." },
	{ "flows", "nflog_rate", CONF_T_INT, F(flows.nflog_rate), "100", 1, 100000, NULL, false,
	  "Denied packets per second and endpoint direction the kernel logs at\n"
	  "most (a limit expression: a flood costs the agent no more); the drop\n"
	  "counters still count every packet." },
	{ "bgp", "asn", CONF_T_INT, F(bgp.asn), "64512", 1, 4294967295u, NULL, false,
	  "This node's AS number (cross_node = bgp). A peer with the same number\n"
	  "is an iBGP peer (a route reflector or ToR in the node's AS; local\n"
	  "preference only travels over iBGP)." },
	{ "bgp", "router_id", CONF_T_IPV4, F(bgp.router_id), "", 0, 0, NULL, true,
	  "BGP router id; empty: the node's IPv4 InternalIP." },
	{ "bgp", "peers", CONF_T_PEER_LIST, F(bgp.peers), "", 0, 0, NULL, true,
	  "BGP neighbours: comma-separated \"ADDRESS ASN\" pairs, e.g.\n"
	  "\"198.18.255.1 64512, 2001:db8::1 64512\". A session carries the routes\n"
	  "of its address's family." },
	{ "bgp", "config", CONF_T_PATH, F(bgp.config), "/etc/bird/kvnet.conf", 0, 0, NULL,
	  false,
	  "The BIRD configuration fragment the agent writes (atomically, when it\n"
	  "changes); bird.conf includes it: include \"/etc/bird/kvnet.conf\";" },
	{ "bgp", "socket", CONF_T_PATH, F(bgp.socket), "/run/bird/bird.ctl", 0, 0, NULL, false,
	  "BIRD's control socket: the agent asks it to reload (configure)." },
	{ "bgp", "local_pref", CONF_T_INT, F(bgp.local_pref), "100", 0, 4294967295u, NULL,
	  false, "Local preference of the blocks and /32s this node announces." },
	{ "bgp", "migration_local_pref", CONF_T_INT, F(bgp.migration_local_pref), "200", 0,
	  4294967295u, NULL, false,
	  "Local preference of a migrated VM's /32 while its route has\n"
	  "migration_metric (above local_pref, so the target's /32 wins at once)." },
	{ "bgp", "kernel_metric", CONF_T_INT, F(bgp.kernel_metric), "4096", 1, 4294967295u,
	  NULL, false,
	  "The one metric of every route BIRD installs from BGP (above\n"
	  "route_metric). Never derived from local preference: a route whose\n"
	  "metric changes would leave its old copy in the kernel." },
	{ "bgp", "graceful_restart", CONF_T_BOOL, F(bgp.graceful_restart), "true", 0, 0, NULL,
	  false,
	  "BGP graceful restart: a restarting BIRD's routes stay in the peers'\n"
	  "tables (and its own kernel routes stay) until it is back." },
};

#undef F

#define CONF_NKEYS (sizeof(conf_schema) / sizeof(conf_schema[0]))

static const char *const conf_sections[] = {
	"log", "datastore", "kubernetes", "ipam", "network", "migration", "cni", "agent",
	"flows", "bgp",
};
#define CONF_NSECTIONS (sizeof(conf_sections) / sizeof(conf_sections[0]))

/* --- small helpers --------------------------------------------------------------------- */

/* Write v into out escaped for messages ('"', '\\' and bytes outside printable ASCII
 * as \xNN), cut after 64 bytes with "...", between double quotes when quotes is set. */
static const char *escape(char *out, size_t cap, const char *v, bool quotes)
{
	size_t o = 0, i;
	if (quotes)
		out[o++] = '"';
	for (i = 0; v[i] && i < 64 && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	if (v[i] && o + 5 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (quotes)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

static const char *quote(char *out, size_t cap, const char *v)
{
	return escape(out, cap, v, true);
}

#define QUOTE_MAX (64 * 4 + 8)

static bool section_known(const char *s)
{
	for (size_t i = 0; i < CONF_NSECTIONS; i++)
		if (strcmp(conf_sections[i], s) == 0)
			return true;
	return false;
}

static int key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_schema[i].section, section) == 0 &&
		    strcmp(conf_schema[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* "a, b, c": the keys of a section or the section names, for "want one of" hints. */
static void list_names(char *out, size_t cap, const char *section)
{
	size_t o = 0;
	out[0] = '\0';
	if (section) {
		for (size_t i = 0; i < CONF_NKEYS && o < cap; i++)
			if (strcmp(conf_schema[i].section, section) == 0)
				o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "",
						      conf_schema[i].name);
	} else {
		for (size_t i = 0; i < CONF_NSECTIONS && o < cap; i++)
			o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "",
					      conf_sections[i]);
	}
}

static int err_unknown_section(struct err *e, const char *section)
{
	char q[QUOTE_MAX], want[256];
	list_names(want, sizeof(want), NULL);
	return err_setx(e, EINVAL, "[%s]: unknown section (want one of %s)",
			escape(q, sizeof(q), section, false), want);
}

static int err_unknown_key(struct err *e, const char *section, const char *name)
{
	char q[QUOTE_MAX], want[256];
	list_names(want, sizeof(want), section);
	return err_setx(e, EINVAL, "[%s] %s: unknown key (want one of %s)", section,
			escape(q, sizeof(q), name, false), want);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/* Copy s without leading and trailing whitespace into out (cap bytes); false if it does
 * not fit. */
static bool trim_copy(char *out, size_t cap, const char *s, size_t n)
{
	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	if (n >= cap)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* Decimal digits only, no sign; false on anything else or a value above UINT32_MAX. */
static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			v = (uint64_t)UINT32_MAX + 1; /* saturate: still "out of range" */
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* --- value parsers: each fills *field (typed) or returns -errno with e ---------------- */

/* Context for messages: "[section] key: " is prefixed by the caller. */

static int parse_string(const struct conf_key *k, const char *v, char *field, struct err *e)
{
	char q[QUOTE_MAX];
	size_t n = strlen(v);
	if (n == 0 && !k->empty_ok)
		return err_setx(e, EINVAL, "empty value (want %s)",
				k->type == CONF_T_PATH ? "an absolute path" : "a name");
	if (n >= CONF_STR_MAX)
		return err_setx(e, EINVAL, "%s is too long (%zu bytes, want at most %d)",
				quote(q, sizeof(q), v), n, CONF_STR_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch < 0x20 || ch == 0x7f)
			return err_setx(e, EINVAL, "%s contains a control character",
					quote(q, sizeof(q), v));
		if (ch == ';')
			return err_setx(e, EINVAL, "%s contains ';' (it starts a comment)",
					quote(q, sizeof(q), v));
	}
	if (k->type == CONF_T_PATH && n > 0 && v[0] != '/')
		return err_setx(e, EINVAL, "%s is not an absolute path (want /...)",
				quote(q, sizeof(q), v));
	memset(field, 0, CONF_STR_MAX);
	memcpy(field, v, n);
	return 0;
}

static int parse_bool(const char *v, bool *out, struct err *e)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	char q[QUOTE_MAX];
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return err_setx(e, EINVAL,
			"%s is not a boolean (want true/false, yes/no, on/off or 1/0)",
			quote(q, sizeof(q), v));
}

static int parse_int(const struct conf_key *k, const char *v, uint32_t *out, struct err *e)
{
	char q[QUOTE_MAX];
	uint32_t x;
	size_t n = strlen(v);
	bool digits = n > 0 && strspn(v, "0123456789") == n;
	if (!digits)
		return err_setx(e, EINVAL, "%s is not an integer (want %u..%u)",
				quote(q, sizeof(q), v), k->min, k->max);
	if (!parse_u32(v, n, &x) || x < k->min || x > k->max)
		return err_setx(e, ERANGE, "%s is out of range (want %u..%u)",
				quote(q, sizeof(q), v), k->min, k->max);
	*out = x;
	return 0;
}

static int parse_duration(const struct conf_key *k, const char *v, uint32_t *out,
			  struct err *e)
{
	char q[QUOTE_MAX];
	size_t n = strlen(v);
	size_t nd = strspn(v, "0123456789");
	uint64_t mult = 1;
	uint32_t x;
	if (nd == 0 || n - nd > 1)
		goto bad;
	if (n - nd == 1) {
		switch (v[nd]) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		default: /* a char, not an enum */
			goto bad;
		}
	}
	if (!parse_u32(v, nd, &x) || (uint64_t)x * mult < k->min || (uint64_t)x * mult > k->max)
		return err_setx(e, ERANGE, "%s is out of range (want %u..%u seconds)",
				quote(q, sizeof(q), v), k->min, k->max);
	*out = (uint32_t)((uint64_t)x * mult);
	return 0;
bad:
	return err_setx(e, EINVAL,
			"%s is not a duration (want seconds: 30, 30s, 5m or 1h; %u..%u seconds)",
			quote(q, sizeof(q), v), k->min, k->max);
}

static int parse_enum(const struct conf_key *k, const char *v, unsigned *out, struct err *e)
{
	char q[QUOTE_MAX], want[128];
	size_t o = 0;
	for (unsigned i = 0; k->names[i]; i++) {
		if (strcasecmp(v, k->names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	want[0] = '\0';
	for (unsigned i = 0; k->names[i] && o < sizeof(want); i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", i ? " or " : "",
				      k->names[i]);
	return err_setx(e, EINVAL, "%s is not valid (want %s)", quote(q, sizeof(q), v), want);
}

static int parse_loglevel(const char *v, enum log_level *out, struct err *e)
{
	char q[QUOTE_MAX];
	if (log_level_parse(v, out))
		return 0;
	return err_setx(e, EINVAL, "%s is not a log level (want error, warn, info or debug)",
			quote(q, sizeof(q), v));
}

/* One CIDR "ADDR/PREFIX" of the given family from s[0..n). */
static int parse_cidr(int family, const char *s, size_t n, struct conf_cidr *out,
		      struct err *e)
{
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";
	unsigned maxp = family == AF_INET ? 32 : 128;
	char item[64], q[QUOTE_MAX], abuf[64];
	uint8_t addr[16] = { 0 };
	uint32_t prefix;
	if (n >= sizeof(item)) {
		char tmp[80];
		size_t c = n < sizeof(tmp) - 1 ? n : sizeof(tmp) - 1;
		memcpy(tmp, s, c);
		tmp[c] = '\0';
		return err_setx(e, EINVAL, "%s is not an %s CIDR (too long)",
				quote(q, sizeof(q), tmp), fam);
	}
	memcpy(item, s, n);
	item[n] = '\0';
	char *slash = strchr(item, '/');
	if (!slash)
		return err_setx(e, EINVAL, "%s is not an %s CIDR (want ADDRESS/PREFIX)",
				quote(q, sizeof(q), item), fam);
	*slash = '\0';
	int pr = inet_pton(family, item, addr);
	*slash = '/';
	if (pr != 1) {
		int other = family == AF_INET ? AF_INET6 : AF_INET;
		uint8_t tmp[16];
		*slash = '\0';
		bool is_other = inet_pton(other, item, tmp) == 1;
		*slash = '/';
		return err_setx(e, EINVAL, "%s is not an %s CIDR (%s)", quote(q, sizeof(q), item),
				fam, is_other ? "wrong address family" : "bad address");
	}
	if (!parse_u32(slash + 1, strlen(slash + 1), &prefix) || prefix > maxp)
		return err_setx(e, EINVAL, "%s is not an %s CIDR (want a prefix length 0..%u)",
				quote(q, sizeof(q), item), fam, maxp);
	/* host bits must be zero */
	uint8_t net[16];
	memcpy(net, addr, sizeof(net));
	for (unsigned bit = prefix; bit < maxp; bit++)
		net[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	if (memcmp(net, addr, maxp / 8) != 0) {
		inet_ntop(family, net, abuf, sizeof(abuf));
		return err_setx(e, EINVAL, "%s has host bits set (want %s/%u)",
				quote(q, sizeof(q), item), abuf, prefix);
	}
	memset(out, 0, sizeof(*out));
	out->family = family;
	memcpy(out->addr, net, maxp / 8);
	out->prefix = (uint8_t)prefix;
	return 0;
}

/* Call item(u, p, n, e) for each comma-separated item of v, spaces around it trimmed; an
 * empty item is an error naming `want` (the list's form). v == "" is an empty list. */
static int each_item(const char *v, const char *want,
		     int (*item)(void *u, const char *p, size_t n, struct err *e), void *u,
		     struct err *e)
{
	const char *p = v;
	if (*v == '\0')
		return 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		while (n && is_space(*p)) {
			p++;
			n--;
		}
		while (n && is_space(p[n - 1]))
			n--;
		if (n == 0)
			return err_setx(e, EINVAL, "empty item in the list (want %s)", want);
		int r = item(u, p, n, e);
		if (r < 0)
			return r;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

struct cidr_items {
	int family;
	struct conf_cidr_list l;
};

static int cidr_item(void *u, const char *p, size_t n, struct err *e)
{
	struct cidr_items *c = u;
	if (c->l.n == CONF_POOLS_MAX)
		return err_setx(e, EINVAL, "too many CIDRs (want at most %d)", CONF_POOLS_MAX);
	int r = parse_cidr(c->family, p, n, &c->l.v[c->l.n], e);
	if (r < 0)
		return r;
	c->l.n++;
	return 0;
}

static int parse_cidr_list(int family, const char *v, struct conf_cidr_list *out,
			   struct err *e)
{
	struct cidr_items c;
	memset(&c, 0, sizeof(c));
	c.family = family;
	int r = each_item(v, "CIDR, CIDR, ...", cidr_item, &c, e);
	if (r < 0)
		return r;
	*out = c.l;
	return 0;
}

static int parse_hostport(const char *v, struct conf_hostport *out, struct err *e)
{
	char q[QUOTE_MAX], host[64];
	struct conf_hostport hp;
	const char *port;
	size_t hn;
	memset(&hp, 0, sizeof(hp));
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || close[1] != ':')
			goto bad;
		hn = (size_t)(close - v - 1);
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, v + 1, hn);
		host[hn] = '\0';
		hp.family = AF_INET6;
		port = close + 2;
	} else {
		const char *colon = strrchr(v, ':');
		if (!colon)
			goto bad;
		hn = (size_t)(colon - v);
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, v, hn);
		host[hn] = '\0';
		hp.family = AF_INET;
		port = colon + 1;
	}
	if (inet_pton(hp.family, host, hp.addr) != 1)
		goto bad;
	uint32_t pn;
	if (!parse_u32(port, strlen(port), &pn) || pn < 1 || pn > 65535)
		return err_setx(e, EINVAL, "%s: bad port (want 1..65535)", quote(q, sizeof(q), v));
	hp.port = (uint16_t)pn;
	*out = hp;
	return 0;
bad:
	return err_setx(e, EINVAL,
			"%s is not an address (want IPV4:PORT or [IPV6]:PORT, literal addresses)",
			quote(q, sizeof(q), v));
}

static int parse_ipv4(const char *v, struct conf_ipv4 *out, struct err *e)
{
	char q[QUOTE_MAX];
	struct conf_ipv4 x;
	memset(&x, 0, sizeof(x));
	if (*v && inet_pton(AF_INET, v, x.addr) != 1)
		return err_setx(e, EINVAL, "%s is not an IPv4 address", quote(q, sizeof(q), v));
	x.set = *v != 0;
	*out = x;
	return 0;
}

/* One "ADDRESS ASN" pair from s[0..n) (trimmed). */
static int parse_peer(const char *s, size_t n, struct conf_bgp_peer *out, struct err *e)
{
	char item[96], q[QUOTE_MAX];
	struct conf_bgp_peer p;
	memset(&p, 0, sizeof(p));
	if (n >= sizeof(item))
		n = sizeof(item) - 1;
	memcpy(item, s, n);
	item[n] = '\0';
	char *sp = item;
	while (*sp && !is_space(*sp))
		sp++;
	char *asn = sp;
	while (*asn && is_space(*asn))
		asn++;
	if (!*sp || !*asn)
		return err_setx(e, EINVAL, "%s is not a peer (want ADDRESS ASN)",
				quote(q, sizeof(q), item));
	*sp = '\0';
	if (inet_pton(AF_INET, item, p.addr) == 1)
		p.family = AF_INET;
	else if (inet_pton(AF_INET6, item, p.addr) == 1)
		p.family = AF_INET6;
	else
		return err_setx(e, EINVAL, "%s: bad peer address", quote(q, sizeof(q), item));
	if (!parse_u32(asn, strlen(asn), &p.asn) || p.asn == 0)
		return err_setx(e, EINVAL, "%s: bad AS number (want 1..4294967295)",
				quote(q, sizeof(q), asn));
	*out = p;
	return 0;
}

static int peer_item(void *u, const char *p, size_t n, struct err *e)
{
	struct conf_bgp_peers *l = u;
	if (l->n == CONF_BGP_PEERS_MAX)
		return err_setx(e, EINVAL, "too many peers (want at most %d)", CONF_BGP_PEERS_MAX);
	int r = parse_peer(p, n, &l->v[l->n], e);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < l->n; i++)
		if (l->v[i].family == l->v[l->n].family &&
		    memcmp(l->v[i].addr, l->v[l->n].addr, 16) == 0)
			return err_setx(e, EINVAL, "peer %.*s given twice", (int)n, p);
	l->n++;
	return 0;
}

static int parse_peer_list(const char *v, struct conf_bgp_peers *out, struct err *e)
{
	struct conf_bgp_peers l;
	memset(&l, 0, sizeof(l));
	int r = each_item(v, "ADDRESS ASN, ADDRESS ASN, ...", peer_item, &l, e);
	if (r < 0)
		return r;
	*out = l;
	return 0;
}

/* Parse v into the field of key k inside c. On error c is unchanged and e holds the
 * message without the "[section] key: " prefix. */
static int set_value(struct conf *c, const struct conf_key *k, const char *v, struct err *e)
{
	char *field = (char *)c + k->off;
	switch (k->type) {
	case CONF_T_STRING:
	case CONF_T_PATH:
		return parse_string(k, v, field, e);
	case CONF_T_BOOL:
		return parse_bool(v, (bool *)(void *)field, e);
	case CONF_T_INT:
		return parse_int(k, v, (uint32_t *)(void *)field, e);
	case CONF_T_DURATION:
		return parse_duration(k, v, (uint32_t *)(void *)field, e);
	case CONF_T_ENUM: {
		unsigned x = 0;
		int r = parse_enum(k, v, &x, e);
		if (r == 0)
			memcpy(field, &x, sizeof(x));
		return r;
	}
	case CONF_T_CIDR4_LIST:
		return parse_cidr_list(AF_INET, v, (struct conf_cidr_list *)(void *)field, e);
	case CONF_T_CIDR6_LIST:
		return parse_cidr_list(AF_INET6, v, (struct conf_cidr_list *)(void *)field, e);
	case CONF_T_HOSTPORT:
		return parse_hostport(v, (struct conf_hostport *)(void *)field, e);
	case CONF_T_LOGLEVEL:
		return parse_loglevel(v, (enum log_level *)(void *)field, e);
	case CONF_T_IPV4:
		return parse_ipv4(v, (struct conf_ipv4 *)(void *)field, e);
	case CONF_T_PEER_LIST:
		return parse_peer_list(v, (struct conf_bgp_peers *)(void *)field, e);
	}
	return err_setx(e, EINVAL, "unknown type");
}

struct out {
	char *buf;   /* destination (not owned) */
	size_t cap;  /* its size */
	size_t len;  /* bytes the whole text needs so far */
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->len < o->cap ? o->cap - o->len : 0;
	int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

/* Every enum field is stored through an unsigned (set_value, format_value). */
_Static_assert(sizeof(enum conf_datastore) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum conf_switch) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum conf_timeout_action) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum conf_cross_node) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum conf_ip_family) == sizeof(unsigned), "enum size");

static void format_value(struct out *o, const struct conf *c, const struct conf_key *k);

/* Set key idx from text v. The printed line `key = value` must fit in CONF_LINE_MAX
 * (the canonical form can be longer than what was parsed, e.g. "a,b" prints "a, b",
 * and environment values have no line limit), so that the output always parses back. */
static int set_key(struct conf *c, size_t idx, const char *v, struct err *e)
{
	const struct conf_key *k = &conf_schema[idx];
	struct conf tmp = *c;
	int r = set_value(&tmp, k, v, e);
	if (r == 0) {
		struct out o = { NULL, 0, 0 };
		format_value(&o, &tmp, k);
		size_t line = strlen(k->name) + 3 + o.len;
		if (line > CONF_LINE_MAX)
			r = err_setx(e, EINVAL,
				     "value too long (%zu bytes once printed; the line \"%s = ...\" "
				     "must fit in %d bytes)",
				     o.len, k->name, CONF_LINE_MAX);
	}
	if (r < 0)
		return err_prefix(e, "[%s] %s", k->section, k->name), r;
	tmp.given[idx / 64] |= (uint64_t)1 << (idx % 64);
	*c = tmp;
	return 0;
}

_Static_assert(CONF_NKEYS <= 128, "conf.given holds 128 bits");

bool conf_given(const struct conf *c, const char *section, const char *key)
{
	int idx = key_find(section, key);
	return idx >= 0 && (c->given[idx / 64] >> (idx % 64) & 1);
}

int conf_set(struct conf *c, const char *section, const char *key, const char *value,
	     struct err *e)
{
	if (!section_known(section))
		return err_unknown_section(e, section);
	int idx = key_find(section, key);
	if (idx < 0)
		return err_unknown_key(e, section, key);
	return set_key(c, (size_t)idx, value, e);
}

int conf_defaults(struct conf *c, struct err *e)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		int r = set_key(c, i, conf_schema[i].def, e);
		if (r < 0)
			return err_prefix(e, "built-in default"), r;
	}
	memset(c->given, 0, sizeof(c->given));
	return 0;
}

/* --- the parser: inih fed from memory, one line per reader call ------------------------ */

struct parse_state {
	struct conf *c;        /* the copy being filled */
	const char *name;      /* for messages */
	const char *p, *end;   /* text not yet handed to inih */
	int line;              /* lines handed to inih so far = current line number */
	int err_line;          /* line of the first error; 0 = none yet */
	struct err err;        /* that first error, "NAME:LINE: ..." */
	int seen[CONF_NKEYS];  /* line where each key was set; 0 = not in this text */
};

static void parse_fail(struct parse_state *st, const struct err *e)
{
	if (st->err_line)
		return;
	st->err_line = st->line;
	st->err.code = e->code;
	snprintf(st->err.msg, sizeof(st->err.msg), "%s:%d: %s", st->name, st->line, e->msg);
}

/* ini_reader: copy the next line (without leading whitespace, so inih never sees a
 * continuation line) into str. Lines that cannot be handed over intact (too long, NUL
 * bytes) are recorded as errors and replaced by an empty line. Section headers are
 * checked here, so an unknown section is an error even when it holds no key. */
static char *reader(char *str, int num, void *user)
{
	struct parse_state *st = user;
	struct err e = { 0 };
	if (st->p >= st->end || num < 2)
		return NULL;
	const char *nl = memchr(st->p, '\n', (size_t)(st->end - st->p));
	const char *s = st->p;
	size_t n = nl ? (size_t)(nl - s + 1) : (size_t)(st->end - s);
	st->p = s + n;
	st->line++;
	if (memchr(s, '\0', n)) {
		err_setx(&e, EINVAL, "NUL byte in line");
		parse_fail(st, &e);
		strcpy(str, "\n");
		return str;
	}
	while (n && s[0] != '\n' && is_space(s[0])) {
		s++;
		n--;
	}
	size_t body = n && s[n - 1] == '\n' ? n - 1 : n;
	if (body > CONF_LINE_MAX || n > (size_t)num - 1) {
		err_setx(&e, EINVAL, "line too long (%zu bytes, want at most %d)", body,
			 CONF_LINE_MAX);
		parse_fail(st, &e);
		strcpy(str, "\n");
		return str;
	}
	memcpy(str, s, n);
	str[n] = '\0';
	if (str[0] == '[') {
		char *close = strchr(str, ']');
		char sec[CONF_LINE_MAX + 1];
		if (close && trim_copy(sec, sizeof(sec), str + 1, (size_t)(close - str - 1)) &&
		    !section_known(sec)) {
			err_unknown_section(&e, sec);
			parse_fail(st, &e);
		}
	}
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct err e = { 0 };
	char sec[CONF_LINE_MAX + 1];
	if (st->err_line)
		return 1; /* the first error is the one reported; inih keeps reading */
	if (!trim_copy(sec, sizeof(sec), section, strlen(section)))
		sec[0] = '\0';
	if (sec[0] == '\0') {
		char q[QUOTE_MAX];
		err_setx(&e, EINVAL, "%s: key outside of any section (want [section] first)",
			 quote(q, sizeof(q), name));
		parse_fail(st, &e);
		return 0;
	}
	if (!section_known(sec)) {
		err_unknown_section(&e, sec);
		parse_fail(st, &e);
		return 0;
	}
	int idx = key_find(sec, name);
	if (idx < 0) {
		err_unknown_key(&e, sec, name);
		parse_fail(st, &e);
		return 0;
	}
	if (st->seen[idx]) {
		err_setx(&e, EINVAL, "[%s] %s: duplicate key (first set on line %d)", sec, name,
			 st->seen[idx]);
		parse_fail(st, &e);
		return 0;
	}
	st->seen[idx] = st->line;
	if (set_key(st->c, (size_t)idx, value, &e) < 0) {
		parse_fail(st, &e);
		return 0;
	}
	return 1;
}

int conf_parse(struct conf *c, const char *name, const char *text, size_t len,
	       struct err *e)
{
	struct conf copy = *c;
	struct parse_state st;
	memset(&st, 0, sizeof(st));
	st.c = &copy;
	st.name = name;
	st.p = text;
	st.end = text + len;
	int r = ini_parse_stream(reader, &st, handler, &st);
	if (r == -2)
		return err_setx(e, ENOMEM, "%s: out of memory", name);
	if (r > 0 && (!st.err_line || r < st.err_line))
		return err_setx(e, EINVAL,
				"%s:%d: syntax error (want [section], key = value or a # comment)",
				name, r);
	if (st.err_line || r != 0) {
		if (e)
			*e = st.err;
		return -(st.err.code ? st.err.code : EINVAL);
	}
	*c = copy;
	return 0;
}

/* --- environment ------------------------------------------------------------------------ */

/* KVNET_SECTION_KEY for schema entry k, into out. */
static void env_name(const struct conf_key *k, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "%s%s_%s", CONF_ENV_PREFIX, k->section, k->name);
	for (size_t i = 0; i < o && i < cap; i++)
		out[i] = (char)toupper((unsigned char)out[i]);
}

int conf_apply_env(struct conf *c, char *const *envp, struct err *e)
{
	struct conf copy = *c;
	bool seen[CONF_NKEYS] = { false };
	const size_t plen = strlen(CONF_ENV_PREFIX);
	for (size_t i = 0; envp && envp[i]; i++) {
		const char *ent = envp[i];
		const char *eq = strchr(ent, '=');
		char var[128], q[QUOTE_MAX], val[CONF_STR_MAX * 4];
		if (strncmp(ent, CONF_ENV_PREFIX, plen) != 0 || !eq)
			continue;
		size_t vn = (size_t)(eq - ent);
		if (vn >= sizeof(var)) {
			char cut[64];
			snprintf(cut, sizeof(cut), "%.*s", (int)(sizeof(cut) - 1), ent);
			return err_setx(e, EINVAL,
					"environment %s: names no configuration key "
					"(want KVNET_<SECTION>_<KEY>)",
					quote(q, sizeof(q), cut));
		}
		memcpy(var, ent, vn);
		var[vn] = '\0';
		int idx = -1;
		for (size_t k = 0; k < CONF_NKEYS && idx < 0; k++) {
			char name[128];
			env_name(&conf_schema[k], name, sizeof(name));
			if (strcmp(name, var) == 0)
				idx = (int)k;
		}
		if (idx < 0)
			return err_setx(e, EINVAL,
					"environment %s: names no configuration key "
					"(want KVNET_<SECTION>_<KEY>, e.g. KVNET_IPAM_BLOCK_SIZE_V4)",
					quote(q, sizeof(q), var));
		if (seen[idx])
			return err_setx(e, EINVAL, "environment %s: set twice", var);
		seen[idx] = true;
		if (!trim_copy(val, sizeof(val), eq + 1, strlen(eq + 1)))
			return err_setx(e, EINVAL, "environment %s: [%s] %s: value too long", var,
					conf_schema[idx].section, conf_schema[idx].name);
		int r = set_key(&copy, (size_t)idx, val, e);
		if (r < 0)
			return err_prefix(e, "environment %s", var), r;
	}
	*c = copy;
	return 0;
}

/* --- cross-key checks ------------------------------------------------------------------ */

static void cidr_str(const struct conf_cidr *x, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(x->family, x->addr, a, sizeof(a));
	snprintf(out, cap, "%s/%u", a, x->prefix);
}

/* True when a and b (same family) share any address: they agree on the shorter prefix. */
static bool cidr_overlap(const struct conf_cidr *a, const struct conf_cidr *b)
{
	unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
	for (unsigned bit = 0; bit < p; bit++) {
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));
		if ((a->addr[bit / 8] & m) != (b->addr[bit / 8] & m))
			return false;
	}
	return true;
}

static int check_pools(const struct conf_cidr_list *l, const char *key, uint32_t block,
		       const char *block_key, struct err *e)
{
	char s1[64], s2[64];
	for (unsigned i = 0; i < l->n; i++) {
		if (l->v[i].prefix > block) {
			cidr_str(&l->v[i], s1, sizeof(s1));
			return err_setx(e, EINVAL,
					"[ipam] %s: %s is smaller than one block (%s = %u)", key,
					s1, block_key, block);
		}
		for (unsigned j = 0; j < i; j++) {
			if (cidr_overlap(&l->v[i], &l->v[j])) {
				cidr_str(&l->v[j], s1, sizeof(s1));
				cidr_str(&l->v[i], s2, sizeof(s2));
				return err_setx(e, EINVAL, "[ipam] %s: %s overlaps %s", key, s2,
						s1);
			}
		}
	}
	return 0;
}

int conf_check(const struct conf *c, struct err *e)
{
	int r;
	if (c->ipam.ipv4_pools.n == 0 && c->ipam.ipv6_pools.n == 0)
		return err_setx(e, EINVAL,
				"[ipam]: ipv4_pools and ipv6_pools are both empty (want at least "
				"one pool)");
	r = check_pools(&c->ipam.ipv4_pools, "ipv4_pools", c->ipam.block_size_v4,
			"block_size_v4", e);
	if (r < 0)
		return r;
	r = check_pools(&c->ipam.ipv6_pools, "ipv6_pools", c->ipam.block_size_v6,
			"block_size_v6", e);
	if (r < 0)
		return r;
	if (c->network.migration_metric >= c->network.route_metric)
		return err_setx(e, EINVAL,
				"[network] migration_metric: %u is not below route_metric %u (the "
				"migrated route must win)",
				c->network.migration_metric, c->network.route_metric);
	if (c->network.cross_node != CONF_CROSS_BGP)
		return 0;
	if (c->bgp.peers.n == 0)
		return err_setx(e, EINVAL,
				"[bgp] peers: empty with [network] cross_node = bgp (want at "
				"least one ADDRESS ASN)");
	if (c->bgp.migration_local_pref <= c->bgp.local_pref)
		return err_setx(e, EINVAL,
				"[bgp] migration_local_pref: %u is not above local_pref %u (the "
				"migrated /32 must win)",
				c->bgp.migration_local_pref, c->bgp.local_pref);
	if (c->bgp.kernel_metric <= c->network.route_metric)
		return err_setx(e, EINVAL,
				"[bgp] kernel_metric: %u is not above [network] route_metric %u "
				"(kvnet's own routes must win on the node)",
				c->bgp.kernel_metric, c->network.route_metric);
	return 0;
}

/* --- loading a file ---------------------------------------------------------------------- */

int conf_load(struct conf *c, const char *path, bool missing_ok, char *const *envp,
	      struct err *e)
{
	char *text = NULL;
	size_t len = 0;
	int r = conf_defaults(c, e);
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT || !missing_ok)
			return err_set(e, errno, "%s: open", path);
	} else {
		text = malloc(CONF_TEXT_MAX + 1);
		if (!text) {
			r = err_set(e, ENOMEM, "%s: read", path);
			goto out_close;
		}
		for (;;) {
			ssize_t n = read(fd, text + len, CONF_TEXT_MAX + 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = err_set(e, errno, "%s: read", path);
				goto out_free;
			}
			if (n == 0)
				break;
			len += (size_t)n;
			if (len > CONF_TEXT_MAX) {
				r = err_setx(e, EFBIG, "%s: read: file too large (want at most %u bytes)",
					     path, CONF_TEXT_MAX);
				goto out_free;
			}
		}
		r = conf_parse(c, path, text, len, e);
		if (r < 0)
			goto out_free;
	}
	r = conf_apply_env(c, envp, e);
	if (r < 0)
		goto out_free;
	r = conf_check(c, e);
	if (r < 0)
		err_prefix(e, "%s", path);
out_free:
	free(text);
out_close:
	if (fd >= 0)
		close(fd);
	return r;
}

/* --- printing --------------------------------------------------------------------------- */

static void format_value(struct out *o, const struct conf *c, const struct conf_key *k)
{
	const char *field = (const char *)c + k->off;
	char a[INET6_ADDRSTRLEN];
	switch (k->type) {
	case CONF_T_STRING:
	case CONF_T_PATH:
		outf(o, "%s", field);
		return;
	case CONF_T_BOOL:
		outf(o, "%s", *(const bool *)(const void *)field ? "true" : "false");
		return;
	case CONF_T_INT:
	case CONF_T_DURATION:
		outf(o, "%u", *(const uint32_t *)(const void *)field);
		return;
	case CONF_T_ENUM: {
		unsigned x = 0;
		memcpy(&x, field, sizeof(x));
		outf(o, "%s", k->names[x]);
		return;
	}
	case CONF_T_CIDR4_LIST:
	case CONF_T_CIDR6_LIST: {
		const struct conf_cidr_list *l = (const void *)field;
		for (unsigned i = 0; i < l->n; i++) {
			inet_ntop(l->v[i].family, l->v[i].addr, a, sizeof(a));
			outf(o, "%s%s/%u", i ? ", " : "", a, l->v[i].prefix);
		}
		return;
	}
	case CONF_T_HOSTPORT: {
		const struct conf_hostport *hp = (const void *)field;
		inet_ntop(hp->family, hp->addr, a, sizeof(a));
		if (hp->family == AF_INET6)
			outf(o, "[%s]:%u", a, hp->port);
		else
			outf(o, "%s:%u", a, hp->port);
		return;
	}
	case CONF_T_LOGLEVEL:
		outf(o, "%s", log_level_name(*(const enum log_level *)(const void *)field));
		return;
	case CONF_T_IPV4: {
		const struct conf_ipv4 *x = (const void *)field;
		if (x->set) {
			inet_ntop(AF_INET, x->addr, a, sizeof(a));
			outf(o, "%s", a);
		}
		return;
	}
	case CONF_T_PEER_LIST: {
		const struct conf_bgp_peers *l = (const void *)field;
		for (unsigned i = 0; i < l->n; i++) {
			inet_ntop(l->v[i].family, l->v[i].addr, a, sizeof(a));
			outf(o, "%s%s %u", i ? ", " : "", a, l->v[i].asn);
		}
		return;
	}
	}
}

static void format_doc(struct out *o, const struct conf_key *k)
{
	const char *d = k->doc;
	while (*d) {
		const char *nl = strchr(d, '\n');
		int n = nl ? (int)(nl - d) : (int)strlen(d);
		outf(o, "# %.*s\n", n, d);
		d += n + (nl ? 1 : 0);
	}
	outf(o, "# ");
	switch (k->type) {
	case CONF_T_STRING:
		outf(o, "Text");
		break;
	case CONF_T_PATH:
		outf(o, "Absolute path%s", k->empty_ok ? " or empty" : "");
		break;
	case CONF_T_BOOL:
		outf(o, "Boolean (true/false, yes/no, on/off, 1/0)");
		break;
	case CONF_T_INT:
		outf(o, "Integer %u..%u", k->min, k->max);
		break;
	case CONF_T_DURATION:
		outf(o, "Seconds %u..%u (or with a unit: 30s, 5m, 1h)", k->min, k->max);
		break;
	case CONF_T_ENUM:
		outf(o, "One of:");
		for (unsigned i = 0; k->names[i]; i++)
			outf(o, " %s", k->names[i]);
		break;
	case CONF_T_CIDR4_LIST:
		outf(o, "IPv4 CIDRs, comma-separated (at most %d)", CONF_POOLS_MAX);
		break;
	case CONF_T_CIDR6_LIST:
		outf(o, "IPv6 CIDRs, comma-separated (at most %d)", CONF_POOLS_MAX);
		break;
	case CONF_T_HOSTPORT:
		outf(o, "Address IPV4:PORT or [IPV6]:PORT");
		break;
	case CONF_T_LOGLEVEL:
		outf(o, "Log level: error, warn, info, debug");
		break;
	case CONF_T_IPV4:
		outf(o, "IPv4 address or empty");
		break;
	case CONF_T_PEER_LIST:
		outf(o, "ADDRESS ASN pairs, comma-separated (at most %d)", CONF_BGP_PEERS_MAX);
		break;
	}
	outf(o, ". Environment: ");
	char name[128];
	env_name(k, name, sizeof(name));
	outf(o, "%s\n", name);
}

size_t conf_format(const struct conf *c, unsigned flags, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	if (cap)
		buf[0] = '\0';
	if (flags & CONF_FMT_DOC)
		outf(&o, "# kvnet.conf: configuration of the kvnet agent, CNI plugin and ipamctl.\n"
			 "# Every key is shown with its default value. KVNET_<SECTION>_<KEY>\n"
			 "# environment variables override the file; `kvnet config -n` prints\n"
			 "# the effective configuration.\n");
	const char *section = NULL;
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_schema[i];
		if (!section || strcmp(section, k->section) != 0) {
			outf(&o, "%s[%s]\n", section || (flags & CONF_FMT_DOC) ? "\n" : "",
			     k->section);
			section = k->section;
		} else if (flags & CONF_FMT_DOC) {
			outf(&o, "\n");
		}
		if (flags & CONF_FMT_DOC)
			format_doc(&o, k);
		outf(&o, "%s =", k->name);
		size_t before = o.len;
		outf(&o, " ");
		format_value(&o, c, k);
		if (o.len == before + 1) { /* empty value: no trailing space */
			o.len = before;
			if (before < cap)
				buf[before] = '\0';
		}
		outf(&o, "\n");
	}
	return o.len;
}

static bool cidr_list_equal(const struct conf_cidr_list *a, const struct conf_cidr_list *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->v[i].family != b->v[i].family || a->v[i].prefix != b->v[i].prefix ||
		    memcmp(a->v[i].addr, b->v[i].addr, sizeof(a->v[i].addr)) != 0)
			return false;
	return true;
}

bool conf_equal(const struct conf *a, const struct conf *b)
{
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_schema[i];
		const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
		bool same = false;
		switch (k->type) {
		case CONF_T_STRING:
		case CONF_T_PATH:
			same = strcmp(fa, fb) == 0;
			break;
		case CONF_T_BOOL:
			same = *(const bool *)(const void *)fa == *(const bool *)(const void *)fb;
			break;
		case CONF_T_INT:
		case CONF_T_DURATION:
		case CONF_T_ENUM:
			/* enums are stored as unsigned (see the _Static_asserts) */
			same = memcmp(fa, fb, sizeof(uint32_t)) == 0;
			break;
		case CONF_T_CIDR4_LIST:
		case CONF_T_CIDR6_LIST:
			same = cidr_list_equal((const void *)fa, (const void *)fb);
			break;
		case CONF_T_HOSTPORT: {
			const struct conf_hostport *x = (const void *)fa, *y = (const void *)fb;
			same = x->family == y->family && x->port == y->port &&
			       memcmp(x->addr, y->addr, sizeof(x->addr)) == 0;
			break;
		}
		case CONF_T_LOGLEVEL:
			same = *(const enum log_level *)(const void *)fa ==
			       *(const enum log_level *)(const void *)fb;
			break;
		case CONF_T_IPV4: {
			const struct conf_ipv4 *x = (const void *)fa, *y = (const void *)fb;
			same = x->set == y->set && memcmp(x->addr, y->addr, 4) == 0;
			break;
		}
		case CONF_T_PEER_LIST: {
			const struct conf_bgp_peers *x = (const void *)fa, *y = (const void *)fb;
			same = x->n == y->n;
			for (unsigned j = 0; same && j < x->n; j++)
				same = x->v[j].family == y->v[j].family &&
				       x->v[j].asn == y->v[j].asn &&
				       memcmp(x->v[j].addr, y->v[j].addr, 16) == 0;
			break;
		}
		}
		if (!same)
			return false;
	}
	return true;
}

void conf_node_name(const struct conf *c, const char *env_node_name, char *out, size_t cap)
{
	if (cap == 0)
		return;
	out[0] = 0;
	if (c->kubernetes.node_name[0])
		snprintf(out, cap, "%s", c->kubernetes.node_name);
	else if (env_node_name && env_node_name[0])
		snprintf(out, cap, "%s", env_node_name);
	else {
		char h[256] = "";
		if (gethostname(h, sizeof(h) - 1) == 0 && h[0])
			snprintf(out, cap, "%s", h);
	}
	if (!out[0])
		snprintf(out, cap, "localhost");
}

size_t conf_datastore_ident_of(enum conf_datastore type, const char *state_dir,
			       const char *server, char *out, size_t cap)
{
	int n = 0;
	switch (type) {
	case CONF_DATASTORE_FILE:
		n = snprintf(out, cap, "file:%s", state_dir);
		break;
	case CONF_DATASTORE_KUBERNETES:
		n = snprintf(out, cap, "kubernetes:%s", server ? server : "");
		break;
	}
	return n < 0 ? 0 : (size_t)n;
}

size_t conf_datastore_ident(const struct conf *c, const char *server, char *out, size_t cap)
{
	return conf_datastore_ident_of(c->datastore.type, c->datastore.state_dir, server, out,
				       cap);
}

const char *conf_cross_node_name(enum conf_cross_node m)
{
	switch (m) {
	case CONF_CROSS_NONE:
		return "none";
	case CONF_CROSS_DIRECT:
		return "direct";
	case CONF_CROSS_BGP:
		return "bgp";
	case CONF_CROSS_VXLAN:
		return "vxlan";
	}
	return "?";
}
