/* netconf — what one CNI invocation says: the environment (CNI_*), CNI_ARGS and the
 * network configuration on stdin, parsed and validated. Pure: no I/O, fed text
 * (the plugin reads stdin; the fuzzer feeds bytes). Fuzzed by test/fuzz/fuzz-cni.c.
 *
 * Configuration keys (unknown keys are code 7). Network keys: cniVersion, name, type
 * ("kvnet"), mode (data-plane mode, cni/mode.h; default "routed"), ipv4_pools /
 * ipv6_pools / pools (CIDR lists), mtu (68..65535, 0 = kernel default), kvnet_conf (the
 * node configuration to read, absolute; cni/nodeconf.h). Node keys, accepted for old
 * conflists and merged with kvnet.conf by cni/nodeconf.h: datastore ("file" or
 * "kubernetes"), state_dir (absolute), kubeconfig, agent_socket (absolute), log_file
 * (absolute), log_level, policy_setup_timeout_seconds (0..3600), policy_timeout_action
 * ("fail" or "continue"). Plus what runtimes inject: prevResult, runtimeConfig,
 * capabilities, args, dns, cni.dev/valid-attachments, cni.dev/attachments.
 *
 * L2 networks: "network": "<L2Network name>" (a DNS label) puts the interface on that
 * L2Network (cni/l2.c); it implies mode "l2" (another mode with it, or mode "l2" without
 * it, is code 7), and the pools come from the L2Network's subnets, so the ipv*_pools
 * keys are refused with it. The MAC a runtime asks for: runtimeConfig.mac (the "mac"
 * capability, KubeVirt's macAddress through Multus) or CNI_ARGS MAC=; both given and
 * different is code 7.
 */
#ifndef KVNET_CNI_NETCONF_H
#define KVNET_CNI_NETCONF_H

#include "ipam/ipam.h"
#include "lib/json.h"
#include "lib/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CNI_STDIN_MAX (1u << 20)  /* largest accepted network configuration */
#define CNI_POOLS_MAX 8		  /* pools per configuration */
#define CNI_DEFAULT_STATE "/var/lib/kvnet/ipam"
#define CNI_DEFAULT_SOCKET "/run/kvnet/agent.sock"
#define CNI_GW4 "169.254.1.1"
#define CNI_GW6 "fe80::ecee:eeff:feee:eeee"
#define CNI_CAP_ANNOTATIONS "io.kubernetes.cri.pod-annotations" /* runtimeConfig key */
#define CNI_NVERSIONS 5

/* CNI error codes (spec and Go library). */
enum {
	CNI_E_VERSION = 1,
	CNI_E_ENV = 4,
	CNI_E_DECODE = 6,
	CNI_E_CONFIG = 7,
	CNI_E_TRYLATER = 11,
	CNI_E_UNAVAILABLE = 50,
	CNI_E_INTERNAL = 999,
};

/* The versions this plugin speaks, oldest first (index = cni_req.vidx). */
extern const char *const cni_versions[CNI_NVERSIONS];

struct cni_mode;
struct cni_l2;

#define CNI_NETWORK_MAX 63 /* an L2Network's name: a DNS label */

/* What the invocation says: environment and parsed configuration. */
struct cni_req {
	const char *command;		/* CNI_COMMAND */
	const char *cid;		/* CNI_CONTAINERID or NULL */
	const char *netns;		/* CNI_NETNS or NULL */
	const char *ifname;		/* CNI_IFNAME or NULL */
	char pod_ns[IPAM_NS_MAX + 1];	/* K8S_POD_NAMESPACE or "" */
	char pod_name[IPAM_NAME_MAX + 1]; /* K8S_POD_NAME or "" */
	char pod_uid[IPAM_UID_MAX + 1];	/* K8S_POD_UID or "" */
	char version[16];		/* cniVersion of the config ("" before parsing) */
	int vidx;			/* index in cni_versions */
	char name[IPAM_NAME_MAX + 1];	/* network name */
	const struct cni_mode *mode;	/* data-plane mode ("mode"; routed by default) */
	char state_dir[4096];		/* file datastore directory */
	bool kube;			/* datastore is "kubernetes" */
	char kubeconfig[4096];		/* its kubeconfig path ("" = KUBECONFIG, ~/.kube,
					 * in-cluster) */
	char kube_context[256];		/* kubeconfig context ("" = current-context) */
	char kvnet_conf[4096];		/* "kvnet_conf": the node configuration to read
					 * ("" = /etc/kvnet/kvnet.conf) */
	unsigned given;			/* CNI_GIVEN_*: node keys the conflist sets */
	char node[IPAM_NAME_MAX + 1];	/* this node's object name (set by the caller) */
	unsigned n_pools;		/* configured pools */
	struct ipam_cidr pools[CNI_POOLS_MAX]; /* them */
	unsigned families;		/* IPAM_V4 | IPAM_V6 present in pools */
	struct ip_addr pool_gw[CNI_POOLS_MAX]; /* per pool: a gateway the pool reserves
					 * (family 0: none; L2Network gateways) */
	char network[CNI_NETWORK_MAX + 1]; /* "network": the L2Network, "" = none */
	const struct cni_l2 *l2;	/* that L2Network as read from the datastore
					 * (cni/l2.h; set by the plugin, not owned) */
	uint8_t mac[6];			/* the MAC the runtime asks for */
	bool has_mac;			/* runtimeConfig.mac or CNI_ARGS MAC given */
	uint32_t mtu;			/* 0 = default */
	uint32_t policy_timeout;	/* policy_setup_timeout_seconds; 0 = do not wait */
	bool policy_continue;		/* policy_timeout_action "continue" */
	char agent_socket[108];		/* agent_socket */
	char *text;			/* stdin (owned) */
	size_t len;			/* its length */
	struct json_doc doc;		/* parsed stdin */
	struct json_tok *tok;		/* its tokens (owned) */
	int prev;			/* prevResult token or -1 */
	int attach;			/* GC attachment array token or -1 */
	int annots;			/* runtimeConfig io.kubernetes.cri.pod-annotations
					 * (an object of strings) token, or -1 */
	char log_file[4096];		/* log_file ("" = stderr) */
	struct log log;			/* log_file / log_level */
	struct json_w out;		/* the result document, once a command succeeded */
	bool has_out;			/* out holds a finished document */
	/* Called once a command succeeded and out is final (ADD, DEL), before anything is
	 * freed; may not return (the plugin prints and exits there, sparing the frees).
	 * NULL = return normally. */
	void (*done)(struct cni_req *r);
};

/* Node keys a conflist may still carry (cni/nodeconf.h says how they meet kvnet.conf). */
enum {
	CNI_GIVEN_DATASTORE = 1 << 0,	   /* datastore */
	CNI_GIVEN_STATE_DIR = 1 << 1,	   /* state_dir */
	CNI_GIVEN_KUBECONFIG = 1 << 2,	   /* kubeconfig */
	CNI_GIVEN_SOCKET = 1 << 3,	   /* agent_socket */
	CNI_GIVEN_LOG_LEVEL = 1 << 4,	   /* log_level */
	CNI_GIVEN_LOG_FILE = 1 << 5,	   /* log_file */
	CNI_GIVEN_POLICY_TIMEOUT = 1 << 6, /* policy_setup_timeout_seconds */
	CNI_GIVEN_POLICY_ACTION = 1 << 7,  /* policy_timeout_action */
	CNI_GIVEN_MTU = 1 << 8,		   /* mtu (a network key; kvnet.conf's is the fallback) */
};

/* An error for the runtime: code, message, details. */
struct cni_fail {
	int code;	/* CNI error code */
	char msg[256];	/* short message */
	char det[640];	/* details */
};

/* Fill f and return -1, so callers can `return cni_fail(...)`. */
int cni_fail(struct cni_fail *f, int code, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Start a request: everything empty, tokens -1, r->log at info to stderr. */
void cni_req_init(struct cni_req *r);
/* Free what r owns (text, tokens, out). */
void cni_req_fini(struct cni_req *r);

/* Parse and validate the configuration in r->text[0..r->len) (the whole of it, or only
 * cniVersion when !full, for VERSION). 0, or -1 with f filled (code 6 for JSON, 1 for
 * the version, 7 for the rest). No I/O: log_file is only checked, not opened. */
int cni_conf_parse(struct cni_req *r, bool full, struct cni_fail *f);

/* CNI_ARGS "K=V;K=V" (NULL = none) into r: K8S_POD_NAMESPACE, K8S_POD_NAME,
 * K8S_POD_UID, MAC (a unicast MAC into r->mac; another MAC than runtimeConfig.mac's is
 * code 4 too); unknown keys are code 4 unless IgnoreUnknown is 1/true. */
int cni_args_parse(struct cni_req *r, const char *args, struct cni_fail *f);

/* The environment a command needs: CNI_CONTAINERID and CNI_IFNAME valid, CNI_NETNS set
 * when need_netns. 0, or -1 with f (code 4). */
int cni_env_check(const struct cni_req *r, bool need_netns, struct cni_fail *f);

#endif
