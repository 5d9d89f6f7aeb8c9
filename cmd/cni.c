/* cni role — the CNI plugin (spec 1.1) for ordinary pods, `file` or `kubernetes` datastore.
 *
 * Called by the container runtime as /opt/cni/bin/kvnet with CNI_COMMAND set, the
 * network configuration on stdin and the result (or an error object) on stdout:
 *
 *   ADD      allocate one address per configured family (handle "<network>.<containerID>"),
 *            create the routed veth (design.md "Data-plane model"), print the result
 *   DEL      remove the veth and release the handle; succeeds when anything is already gone
 *   CHECK    verify addresses, default routes and host routes against prevResult
 *   STATUS   0 when the datastore can be read, code 50 otherwise
 *   GC       release every address of this network allocated on this node whose
 *            (containerID, ifname) is not in cni.dev/valid-attachments (or
 *            cni.dev/attachments); VM handles: see below
 *   VERSION  the five supported versions
 *
 * Configuration keys (unknown keys are code 7): cniVersion, name, type ("kvnet"),
 * datastore ("file", default, or "kubernetes": ipam/ds_kube over the API server named by
 * kubeconfig, a path; "" = KUBECONFIG, ~/.kube/config, in-cluster; API server
 * unreachable = code 11, or 50 for STATUS), state_dir (absolute; default
 * /var/lib/kvnet/ipam), ipv4_pools / ipv6_pools / pools (CIDR lists; pool record name =
 * block-style name of the CIDR), mtu (68..65535, 0 = kernel default), log_file
 * (absolute), log_level, kubeconfig, and for the node agent (agent/proto.h):
 * agent_socket (absolute; default /run/kvnet/agent.sock), policy_setup_timeout_seconds
 * (0..3600) and policy_timeout_action ("fail", default, or "continue"). After a
 * successful ADD the endpoint is registered with the agent; with a timeout > 0 the ADD
 * waits that long for the agent's "programmed" and then fails (code 11) or, with
 * "continue", succeeds with a warning. Without a timeout an absent agent is no error
 * (the plugin works alone). DEL unregisters (best effort). Plus what runtimes inject:
 * prevResult, runtimeConfig, capabilities, args, dns, cni.dev/valid-attachments,
 * cni.dev/attachments.
 *
 * VM pods (kubernetes datastore only; with the file datastore every pod is ordinary):
 * with K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS, ADD and DEL GET the pod. A pod with
 * the kubevirt.io/domain annotation and a controller ownerReference to a kubevirt.io/v1
 * VirtualMachineInstance is a VM pod: the VMI is fetched and its uid must equal the
 * reference's, and the annotation must name it, else ADD fails (a forged or stale
 * reference never gets a VM's IP). A VM pod uses handle "<network>.vmi.<ns>.<vm>":
 *   ADD      same addresses as before (restart, eviction) and the pod takes the active
 *            owner slot; a migration target (label kubevirt.io/migrationJobUID) needs the
 *            addresses to exist, takes the alternate slot and gets no host route (dark)
 *   DEL      empties the slot this pod holds (precondition: its uid); releases the
 *            addresses only when both slots are empty and the VM is gone or being deleted
 *            (a standalone VMI: the VMI); a VM restart recreates the VMI, which keeps them
 *   CHECK    checks the VM's handle; a migration target must have no host route
 *   GC       never frees a VM's addresses for a missing attachment while the VM exists;
 *            empties the owner slots of this node whose (containerID, ifname) the runtime
 *            no longer lists, and frees the handle when both slots are empty and the VM
 *            (standalone VMI: the VMI) is gone, being deleted or replaced (one GET each)
 * A pod that is not found is treated as ordinary. Owner slots record the pod's node,
 * container ID and ifname (for GC).
 *
 * IPAMConfig (the kvnet.io record "default", ipam.h): kubeVirtVMAddressPersistence
 * Disabled makes a VM pod an ordinary pod (handle by container ID, no VMI GET) and
 * rejects the ADD of a migration target; read with one GET once a pod looks like a VM
 * pod, and checked again inside the IPAM update (a change in between is code 11). The
 * record is the cluster's one source of truth (absent = Enabled), so all nodes agree;
 * kvnet.conf's [ipam] kubevirt_ip_persistence is not read here (`ipamctl configure`
 * writes the record).
 *
 * Capability io.kubernetes.cri.pod-annotations (declare it in the conflist's
 * "capabilities"): when runtimeConfig carries the pod's annotations and
 * kubevirt.io/domain is not among them, the pod is ordinary without any pod GET; with
 * the annotation the pod is verified as above. The value must be an object of strings
 * (code 7 otherwise).
 *
 * Not yet: waiting for the agent's policy confirmation on a migration target.
 *
 * The node name recorded in IPAM is the host name (gethostname), mapped to an object name.
 *
 * Host side: net.ipv4.conf.kvX.{proxy_arp,forwarding}=1, accept_dad=0, and when the pod
 * gets IPv6, net.ipv6.conf.all.forwarding=1 (IPv6 has no per-interface forwarding for
 * routing decisions). The host veth carries the link-local fe80::ecee:eeff:feee:eeee (the
 * EUI-64 of ee:ee:ee:ee:ee:ee), the pods' IPv6 gateway.
 */
#include "cmd/cmd.h"

#include "agent/client.h"
#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "ipam/ipam.h"
#include "kube/client.h"
#include "lib/json.h"
#include "kube/kubeconfig.h"
#include "kube/types.h"
#include "lib/err.h"
#include "lib/log.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/neigh.h"
#include "net/netns.h"
#include "net/nl.h"
#include "net/route.h"

#include <bearssl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define CNI_STDIN_MAX (1u << 20)  /* largest accepted network configuration */
#define CNI_POOLS_MAX 8		  /* pools per configuration */
#define CNI_ATTACH_MAX 4096	  /* GC attachments */
#define CNI_DEFAULT_STATE "/var/lib/kvnet/ipam"
#define CNI_KUBE_TIMEOUT_MS 10000 /* API server I/O timeout (kubernetes datastore) */
#define CNI_KUBE_LOCKDIR "/run/kvnet" /* node-local lock of kubernetes IPAM updates */
#define CNI_GW4 "169.254.1.1"
#define CNI_GW6 "fe80::ecee:eeff:feee:eeee"
#define CNI_CAP_ANNOTATIONS "io.kubernetes.cri.pod-annotations" /* runtimeConfig key */
#define CNI_ANN_DOMAIN "kubevirt.io/domain"			/* VM pod annotation */
#define CNI_LBL_MIGRATION "kubevirt.io/migrationJobUID"		/* target pod label */

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

static const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };
#define CNI_NVERSIONS 5
static const uint8_t cni_host_mac[6] = { 0xee, 0xee, 0xee, 0xee, 0xee, 0xee };

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
	char state_dir[4096];		/* file datastore directory */
	bool kube;			/* datastore is "kubernetes" */
	char kubeconfig[4096];		/* its kubeconfig path ("" = KUBECONFIG, ~/.kube,
					 * in-cluster) */
	unsigned n_pools;		/* configured pools */
	struct ipam_cidr pools[CNI_POOLS_MAX]; /* them */
	unsigned families;		/* IPAM_V4 | IPAM_V6 present in pools */
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
};

/* An error for the runtime: code, message, details. */
struct cni_fail {
	int code;	/* CNI error code */
	char msg[256];	/* short message */
	char det[640];	/* details */
};

static int fail(struct cni_fail *f, int code, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fill f and return -1 so callers can `return fail(...)`. */
static int fail(struct cni_fail *f, int code, const char *msg, const char *fmt, ...)
{
	f->code = code;
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->det, sizeof(f->det), fmt, ap);
	va_end(ap);
	return -1;
}

/* Print a JSON document from w to stdout; 0 or -1 when it did not fit. */
static int print_json(struct json_w *w)
{
	struct err e = { 0 };
	if (json_w_finish(w, &e) < 0) {
		fprintf(stderr, "kvnet cni: output: %s\n", e.msg);
		return -1;
	}
	fwrite(w->buf, 1, w->len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	return 0;
}

static int emit_error(const struct cni_req *r, const struct cni_fail *f)
{
	struct json_w w;
	json_w_init_grow(&w, 4096);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "cniVersion", r->version[0] ? r->version : "1.1.0");
	json_w_kint(&w, "code", f->code);
	json_w_kstr(&w, "msg", f->msg);
	json_w_kstr(&w, "details", f->det);
	json_w_obj_end(&w);
	print_json(&w);
	json_w_free(&w);
	log_errorx(&r->log, "cni %s %s: %s: %s", r->command ? r->command : "-", r->cid ? r->cid : "-", f->msg, f->det);
	return 1;
}

/* getenv with empty meaning unset. */
static const char *env(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? v : NULL;
}

static bool cid_valid(const char *s)
{
	if (!isalnum((unsigned char)s[0]))
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return strlen(s) <= IPAM_CID_MAX;
}

static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return false;
	return true;
}

/* CNI_ARGS "K=V;K=V". Unknown keys are an error unless IgnoreUnknown is 1/true. */
static int parse_args(struct cni_req *r, const char *args, struct cni_fail *f)
{
	if (!args)
		return 0;
	bool ignore = false, unknown = false;
	char bad[128] = "";
	char buf[2048];
	if (strlen(args) >= sizeof(buf))
		return fail(f, CNI_E_ENV, "invalid CNI_ARGS", "CNI_ARGS: longer than %zu bytes",
			    sizeof(buf) - 1);
	for (int pass = 0; pass < 2; pass++) {
		snprintf(buf, sizeof(buf), "%s", args);
		char *save = NULL;
		for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq || eq == kv)
				return fail(f, CNI_E_ENV, "invalid CNI_ARGS",
					    "CNI_ARGS: '%s' is not KEY=VALUE", kv);
			*eq = 0;
			const char *v = eq + 1;
			if (pass == 0) {
				if (strcmp(kv, "IgnoreUnknown") == 0)
					ignore = strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
				continue;
			}
			if (strcmp(kv, "K8S_POD_NAMESPACE") == 0) {
				if (strlen(v) > IPAM_NS_MAX)
					return fail(f, CNI_E_ENV, "invalid CNI_ARGS",
						    "CNI_ARGS: K8S_POD_NAMESPACE longer than %d",
						    IPAM_NS_MAX);
				snprintf(r->pod_ns, sizeof(r->pod_ns), "%s", v);
			} else if (strcmp(kv, "K8S_POD_NAME") == 0) {
				if (strlen(v) > IPAM_NAME_MAX)
					return fail(f, CNI_E_ENV, "invalid CNI_ARGS",
						    "CNI_ARGS: K8S_POD_NAME longer than %d",
						    IPAM_NAME_MAX);
				snprintf(r->pod_name, sizeof(r->pod_name), "%s", v);
			} else if (strcmp(kv, "K8S_POD_UID") == 0) {
				snprintf(r->pod_uid, sizeof(r->pod_uid), "%.*s", IPAM_UID_MAX, v);
			} else if (strcmp(kv, "IgnoreUnknown") != 0 &&
				   strcmp(kv, "K8S_POD_INFRA_CONTAINER_ID") != 0 &&
				   strcmp(kv, "K8S_POD_UID") != 0 && !unknown) {
				unknown = true;
				snprintf(bad, sizeof(bad), "%s", kv);
			}
		}
	}
	if (unknown && !ignore)
		return fail(f, CNI_E_ENV, "invalid CNI_ARGS",
			    "CNI_ARGS: unknown key '%s' (set IgnoreUnknown=1 to allow it)", bad);
	return 0;
}

static int read_stdin(struct cni_req *r, struct cni_fail *f)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return fail(f, CNI_E_INTERNAL, "out of memory", "stdin: malloc failed");
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CNI_STDIN_MAX) {
				free(buf);
				return fail(f, CNI_E_DECODE, "network configuration too large",
					    "stdin: more than %u bytes", CNI_STDIN_MAX);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return fail(f, CNI_E_INTERNAL, "out of memory", "stdin: realloc");
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(0, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int er = errno;
			free(buf);
			return fail(f, CNI_E_INTERNAL, "cannot read stdin", "stdin: read: %s",
				    strerror(er));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	r->text = buf;
	r->len = len;
	return 0;
}

/* Parse stdin as JSON into r->doc (code 6 on failure). */
static int parse_json(struct cni_req *r, struct cni_fail *f)
{
	struct err e = { 0 };
	int rc = json_parse(&r->doc, r->text, r->len, NULL, 0, 0, &e);
	if (rc < 0 && rc != -ENOSPC)
		return fail(f, CNI_E_DECODE, "invalid network configuration JSON", "stdin: %s",
			    e.msg);
	r->tok = calloc(r->doc.n ? r->doc.n : 1, sizeof(*r->tok));
	if (!r->tok)
		return fail(f, CNI_E_INTERNAL, "out of memory", "stdin: tokens");
	rc = json_parse(&r->doc, r->text, r->len, r->tok, r->doc.n, 0, &e);
	if (rc < 0)
		return fail(f, CNI_E_DECODE, "invalid network configuration JSON", "stdin: %s",
			    e.msg);
	if (json_type(&r->doc, 0) != JSON_OBJECT)
		return fail(f, CNI_E_DECODE, "invalid network configuration JSON",
			    "stdin: the configuration is not a JSON object");
	return 0;
}

/* String member k of the config into buf; 1 found, 0 absent, -1 failure (f filled). */
static int conf_str(struct cni_req *r, const char *k, char *buf, size_t cap, struct cni_fail *f)
{
	int t = json_get(&r->doc, 0, k);
	if (t < 0)
		return 0;
	if (json_type(&r->doc, t) != JSON_STRING || json_str(&r->doc, t, buf, cap) < 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "%s: must be a string of at most %zu bytes", k, cap - 1);
	return 1;
}

static int conf_uint(struct cni_req *r, const char *k, uint64_t max, uint64_t *out,
		     struct cni_fail *f)
{
	int t = json_get(&r->doc, 0, k);
	if (t < 0)
		return 0;
	if (json_uint64(&r->doc, t, out) < 0 || *out > max)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "%s: must be an integer 0..%llu", k, (unsigned long long)max);
	return 1;
}

static int conf_pools(struct cni_req *r, const char *k, int family, struct cni_fail *f)
{
	int t = json_get(&r->doc, 0, k);
	if (t < 0)
		return 0;
	if (json_type(&r->doc, t) != JSON_ARRAY)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "%s: must be an array of CIDR strings", k);
	struct json_iter it;
	int kk, v;
	json_iter_init(&it, &r->doc, t);
	while (json_iter_next(&it, &kk, &v)) {
		char s[64];
		struct err e = { 0 };
		if (json_type(&r->doc, v) != JSON_STRING || json_str(&r->doc, v, s, sizeof(s)) < 0)
			return fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: every entry must be a CIDR string", k);
		if (r->n_pools == CNI_POOLS_MAX)
			return fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: more than %d pools", k, CNI_POOLS_MAX);
		struct ipam_cidr *c = &r->pools[r->n_pools];
		if (ipam_cidr_parse(c, s, &e) < 0)
			return fail(f, CNI_E_CONFIG, "invalid network configuration", "%s: %s", k,
				    e.msg);
		if (family && c->a.family != family)
			return fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: %s is not an IPv%d pool", k, s, family == AF_INET ? 4 : 6);
		r->families |= c->a.family == AF_INET ? IPAM_V4 : IPAM_V6;
		r->n_pools++;
	}
	return 0;
}

static const char *const conf_keys[] = {
	"cniVersion", "name", "type", "datastore", "state_dir", "ipv4_pools", "ipv6_pools",
	"pools", "mtu", "log_file", "log_level", "policy_setup_timeout_seconds", "kubeconfig",
	"agent_socket", "policy_timeout_action",
	"prevResult", "runtimeConfig", "capabilities", "args", "dns",
	"cni.dev/valid-attachments", "cni.dev/attachments",
};

/* Parse and validate the network configuration in r->text (the whole of it, or only
 * cniVersion when !full, for VERSION). 0, or -1 with f filled. No I/O. */
static int parse_conf(struct cni_req *r, bool full, struct cni_fail *f)
{
	if (!full && r->len == 0)
		return 0; /* VERSION without a configuration */
	if (parse_json(r, f) < 0)
		return -1;
	char v[16];
	int rc = conf_str(r, "cniVersion", v, sizeof(v), f);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		if (!full)
			return 0;
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "cniVersion: missing");
	}
	r->vidx = -1;
	for (int i = 0; i < CNI_NVERSIONS; i++)
		if (strcmp(v, cni_versions[i]) == 0)
			r->vidx = i;
	if (r->vidx < 0)
		return fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "cniVersion %s is not supported (0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)", v);
	snprintf(r->version, sizeof(r->version), "%s", v);
	if (!full)
		return 0;

	/* unknown keys, all named */
	char unknown[256] = "";
	struct json_iter it;
	int k, val;
	json_iter_init(&it, &r->doc, 0);
	while (json_iter_next(&it, &k, &val)) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++)
			if (json_str_eq(&r->doc, k, conf_keys[i], strlen(conf_keys[i])))
				ok = true;
		if (!ok) {
			char kn[64];
			if (json_str(&r->doc, k, kn, sizeof(kn)) < 0)
				snprintf(kn, sizeof(kn), "(long key)");
			size_t ul = strlen(unknown);
			snprintf(unknown + ul, sizeof(unknown) - ul, "%s%s", ul ? ", " : "", kn);
		}
	}
	if (unknown[0])
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "unknown field(s): %s", unknown);

	rc = conf_str(r, "name", r->name, sizeof(r->name), f);
	if (rc <= 0)
		return rc < 0 ? -1
			      : fail(f, CNI_E_CONFIG, "invalid network configuration",
				     "name: missing");
	if (!r->name[0])
		return fail(f, CNI_E_CONFIG, "invalid network configuration", "name: empty");
	char s[64];
	rc = conf_str(r, "type", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	if (rc == 1 && strcmp(s, "kvnet") != 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "type: '%s' is not kvnet", s);
	rc = conf_str(r, "datastore", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->kube = rc == 1 && strcmp(s, "kubernetes") == 0;
	if (rc == 1 && !r->kube && strcmp(s, "file") != 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "datastore: '%s' is neither file nor kubernetes", s);
	if (conf_str(r, "kubeconfig", r->kubeconfig, sizeof(r->kubeconfig), f) < 0)
		return -1;
	rc = conf_str(r, "state_dir", r->state_dir, sizeof(r->state_dir), f);
	if (rc < 0)
		return -1;
	if (rc == 0)
		snprintf(r->state_dir, sizeof(r->state_dir), "%s", CNI_DEFAULT_STATE);
	if (r->state_dir[0] != '/')
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "state_dir: '%s' is not an absolute path", r->state_dir);
	if (conf_pools(r, "ipv4_pools", AF_INET, f) < 0 ||
	    conf_pools(r, "ipv6_pools", AF_INET6, f) < 0 || conf_pools(r, "pools", 0, f) < 0)
		return -1;
	if (r->n_pools == 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "no pools: set ipv4_pools, ipv6_pools or pools");
	uint64_t u;
	rc = conf_uint(r, "mtu", 65535, &u, f);
	if (rc < 0)
		return -1;
	if (rc == 1 && u != 0 && u < 68)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "mtu: %llu is below 68", (unsigned long long)u);
	r->mtu = rc == 1 ? (uint32_t)u : 0;
	if ((rc = conf_uint(r, "policy_setup_timeout_seconds", 3600, &u, f)) < 0)
		return -1;
	r->policy_timeout = rc == 1 ? (uint32_t)u : 0;
	rc = conf_str(r, "policy_timeout_action", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->policy_continue = rc == 1 && strcmp(s, "continue") == 0;
	if (rc == 1 && !r->policy_continue && strcmp(s, "fail") != 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "policy_timeout_action: '%s' is neither fail nor continue", s);
	rc = conf_str(r, "agent_socket", r->agent_socket, sizeof(r->agent_socket), f);
	if (rc < 0)
		return -1;
	if (rc == 0)
		snprintf(r->agent_socket, sizeof(r->agent_socket), "/run/kvnet/agent.sock");
	if (r->agent_socket[0] != '/')
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "agent_socket: '%s' is not an absolute path", r->agent_socket);
	enum log_level lvl = LOG_LVL_INFO;
	rc = conf_str(r, "log_level", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	if (rc == 1 && !log_level_parse(s, &lvl))
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "log_level: '%s' is not error, warn, info or debug", s);
	r->log.level = lvl;
	rc = conf_str(r, "log_file", r->log_file, sizeof(r->log_file), f);
	if (rc < 0)
		return -1;
	if (rc == 1 && r->log_file[0] != '/')
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "log_file: '%s' is not an absolute path", r->log_file);
	r->prev = json_get(&r->doc, 0, "prevResult");
	if (r->prev >= 0 && json_type(&r->doc, r->prev) != JSON_OBJECT)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "prevResult: must be an object");
	r->annots = -1;
	int rt = json_get(&r->doc, 0, "runtimeConfig");
	if (rt >= 0 && json_type(&r->doc, rt) != JSON_OBJECT)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "runtimeConfig: must be an object");
	if (rt >= 0)
		r->annots = json_get(&r->doc, rt, CNI_CAP_ANNOTATIONS);
	if (r->annots >= 0) {
		if (json_type(&r->doc, r->annots) != JSON_OBJECT)
			return fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "runtimeConfig." CNI_CAP_ANNOTATIONS ": must be an object");
		json_iter_init(&it, &r->doc, r->annots);
		while (json_iter_next(&it, &k, &val))
			if (json_type(&r->doc, val) != JSON_STRING)
				return fail(f, CNI_E_CONFIG, "invalid network configuration",
					    "runtimeConfig." CNI_CAP_ANNOTATIONS
					    ": every value must be a string");
	}
	r->attach = json_get(&r->doc, 0, "cni.dev/valid-attachments");
	if (r->attach < 0)
		r->attach = json_get(&r->doc, 0, "cni.dev/attachments");
	if (r->attach >= 0 && json_type(&r->doc, r->attach) != JSON_ARRAY)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "cni.dev/valid-attachments: must be an array");
	return 0;
}

/* Environment checks per command. */
static int check_env(struct cni_req *r, bool need_netns, struct cni_fail *f)
{
	if (!r->cid)
		return fail(f, CNI_E_ENV, "missing environment", "CNI_CONTAINERID is not set");
	if (!cid_valid(r->cid))
		return fail(f, CNI_E_ENV, "invalid environment",
			    "CNI_CONTAINERID '%s' must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ "
			    "(at most %d bytes)", r->cid, IPAM_CID_MAX);
	if (need_netns && !r->netns)
		return fail(f, CNI_E_ENV, "missing environment", "CNI_NETNS is not set");
	if (!r->ifname)
		return fail(f, CNI_E_ENV, "missing environment", "CNI_IFNAME is not set");
	if (!ifname_valid(r->ifname))
		return fail(f, CNI_E_ENV, "invalid environment",
			    "CNI_IFNAME '%s': at most 15 bytes, no '/', ':' or whitespace", r->ifname);
	return 0;
}

/* ---- IPAM --------------------------------------------------------------------------- */

/* One IPAM operation's parameters and results. */
struct cni_vm;

struct cni_ipam {
	const struct cni_req *r;	       /* request */
	char handle[IPAM_NAME_MAX + 1];	       /* handle id */
	char node[IPAM_NAME_MAX + 1];	       /* node name */
	struct ip_addr ip[IPAM_HANDLE_IPS_MAX]; /* allocated */
	unsigned n;			       /* count */
	bool existed;			       /* the handle held addresses before ADD */
	unsigned released;		       /* GC: handles released */
	const struct cni_vm *vm;	       /* VM pod identity, or NULL (ordinary pod) */
	uint8_t mac[6];			       /* VM pods: MAC recorded for the VM (ipamctl
						* reserve/import); the pod's eth0 gets it */
	bool has_mac;			       /* mac is set */
	bool persist_off;		       /* a VM pod made ordinary by the IPAMConfig */
	struct cni_gc *gc;		       /* GC: what do_gc() found out, or NULL */
};

/* Start an IPAM request for an ordinary pod: the handle "<network>.<containerID>". */
static int ipam_req_init(struct cni_ipam *c, const struct cni_req *r, struct cni_fail *f)
{
	struct err e = { 0 };
	memset(c, 0, sizeof(*c));
	c->r = r;
	if (ipam_handle_pod(c->handle, r->name, r->cid, &e) < 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
	return 0;
}

static void node_name(char *out)
{
	char h[256] = "";
	if (gethostname(h, sizeof(h) - 1) < 0 || !h[0])
		snprintf(h, sizeof(h), "localhost");
	ipam_name_map(h, out);
}

/* Make sure every configured pool exists in st (added with the default block size). */
static int sync_pools(struct ipam_state *st, const struct cni_req *r, struct err *e)
{
	for (unsigned i = 0; i < r->n_pools; i++) {
		bool have = false;
		for (unsigned j = 0; j < st->n_pools; j++)
			if (st->pools[j].cidr.prefix == r->pools[i].prefix &&
			    ip_eq(&st->pools[j].cidr.a, &r->pools[i].a))
				have = true;
		if (have)
			continue;
		char name[IPAM_NAME_MAX + 1];
		ipam_block_name(&r->pools[i], name, sizeof(name));
		int rc = ipam_pool_add(st, name, &r->pools[i], 0, NULL, 0, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The IPAMConfig in the loaded state must still say what vm_resolve() saw (it read the
 * record before this update): -EAGAIN (try again) when it changed in between. */
static int persist_still(const struct ipam_state *st, bool off, struct err *e)
{
	struct ipam_config cfg;
	ipam_config_get(st, &cfg);
	if ((cfg.vm_persistence == IPAM_PERSIST_DISABLED) == off)
		return 0;
	return err_setx(e, EAGAIN, "IPAMConfig %s: kubeVirtVMAddressPersistence changed to %s "
			"during this ADD", IPAM_CONFIG_NAME, ipam_persist_name(cfg.vm_persistence));
}

static int op_alloc(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	int rc = c->persist_off ? persist_still(st, true, e) : 0;
	if (rc < 0)
		return rc;
	rc = sync_pools(st, c->r, e);
	if (rc < 0 || (rc = ipam_handle_mend(st, c->handle, e)) < 0)
		return rc;
	c->existed = ipam_handle_find(st, c->handle) != NULL;
	struct ipam_attrs a;
	memset(&a, 0, sizeof(a));
	snprintf(a.pod, sizeof(a.pod), "%s", c->r->pod_name);
	snprintf(a.ns, sizeof(a.ns), "%s", c->r->pod_ns);
	snprintf(a.node, sizeof(a.node), "%s", c->node);
	snprintf(a.ifname, sizeof(a.ifname), "%s", c->r->ifname);
	snprintf(a.container_id, sizeof(a.container_id), "%s", c->r->cid);
	return ipam_alloc(st, c->handle, c->node, c->r->families, &a, c->ip, &c->n, e);
}

static int op_release(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	int rc = ipam_handle_mend(st, c->handle, e); /* strays of a torn commit go too */
	if (rc < 0)
		return rc;
	rc = ipam_release_handle(st, c->handle, true, e);
	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	return rc;
}

/* Is (cid, ifname) in the GC request's valid attachments? */
static bool attached(const struct cni_req *r, const char *cid, const char *ifname)
{
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &r->doc, r->attach);
	while (json_iter_next(&it, &k, &v)) {
		int ci = json_get(&r->doc, v, "containerID");
		int ii = json_get(&r->doc, v, "ifname");
		if (ci >= 0 && ii >= 0 && json_str_eq(&r->doc, ci, cid, strlen(cid)) &&
		    json_str_eq(&r->doc, ii, ifname, strlen(ifname)))
			return true;
	}
	return false;
}

/* A VM handle of this network: the allocation's handle is "<network>.vmi.<ns>.<vm>". */
static bool gc_vm_alloc(const struct cni_req *r, const struct ipam_attrs *a)
{
	char h[IPAM_NAME_MAX + 1];
	return a->vmi_name[0] && a->ns[0] &&
	       ipam_handle_vm(h, r->name, a->ns, a->vmi_name, NULL) == 0 && !strcmp(h, a->handle);
}

/* An owner slot GC empties: held by a pod on this node whose attachment the runtime no
 * longer lists. Slots of other nodes are their runtimes' business; a slot without a
 * recorded container ID cannot be matched and is left alone. */
static bool gc_slot_stale(const struct cni_ipam *c, const struct ipam_owner *o)
{
	return o->uid[0] && o->cid[0] && o->ifname[0] && !strcmp(o->node, c->node) &&
	       !attached(c->r, o->cid, o->ifname);
}

/* GC state: VM handles whose VM (or standalone VMI) is gone, found before the update. */
struct cni_gc {
	char (*gone)[IPAM_NAME_MAX + 1]; /* handle ids; malloc'd */
	unsigned n_gone, cap_gone;	 /* used / allocated */
	unsigned cleared;		 /* owner slots emptied */
	unsigned mended;		 /* torn-commit repairs (ipam_handle_mend) */
};

static bool gc_is_gone(const struct cni_gc *g, const char *handle)
{
	for (unsigned i = 0; g && i < g->n_gone; i++)
		if (!strcmp(g->gone[i], handle))
			return true;
	return false;
}

/* ipam_handle_mend() on a copy of handle (mend may move the record it points into),
 * counting repairs in g (may be NULL). 0 or -errno. */
static int gc_mend(struct ipam_state *st, const char *handle, struct cni_gc *g, struct err *e)
{
	char id[IPAM_NAME_MAX + 1];
	snprintf(id, sizeof(id), "%s", handle);
	int rc = ipam_handle_mend(st, id, e);
	if (rc < 0)
		return rc;
	if (g)
		g->mended += (unsigned)rc;
	return 0;
}

/* GC (runs on every node, with that node's runtime's attachments):
 *   ordinary pods  release each handle of this network allocated on this node whose
 *                  (containerID, ifname) is not listed
 *   VM handles     never released for a missing attachment while the VM exists; owner
 *                  slots of this node whose attachment is not listed are emptied (with a
 *                  precondition on the uid), and a handle is released when both slots are
 *                  empty and do_gc() found its VM (standalone VMI: the VMI) gone */
static int op_gc(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	struct cni_gc *g = c->gc;
	const struct cni_req *r = c->r;
	c->released = 0;
	if (g)
		g->cleared = g->mended = 0;
	/* first repair torn commits (ipam_handle_mend) of every handle named anywhere */
	for (unsigned i = st->n_handles; i-- > 0;) { /* mend may swap-remove handle i */
		if (i >= st->n_handles)
			continue;
		int rc = gc_mend(st, st->handles[i].id, g, e);
		if (rc < 0)
			return rc;
	}
	for (unsigned b = 0; b < st->n_blocks; b++) {
		for (unsigned i = 0; i < st->blocks[b].size; i++) {
			const struct ipam_attrs *a = st->blocks[b].slot[i];
			if (!a || ipam_handle_find(st, a->handle))
				continue;
			int rc = gc_mend(st, a->handle, g, e); /* adopts it: handle created */
			if (rc < 0)
				return rc;
		}
	}
	for (unsigned b = 0; b < st->n_blocks; b++) {
		for (unsigned i = 0; i < st->blocks[b].size; i++) {
			const struct ipam_attrs *a = st->blocks[b].slot[i];
			if (!a)
				continue;
			if (gc_vm_alloc(r, a)) {
				static const enum ipam_slot slots[] = { IPAM_ACTIVE, IPAM_ALTERNATE };
				for (unsigned s = 0; s < 2; s++) {
					const struct ipam_owner *o =
					    slots[s] == IPAM_ACTIVE ? &a->active : &a->alternate;
					if (!gc_slot_stale(c, o))
						continue;
					char uid[IPAM_UID_MAX + 1];
					snprintf(uid, sizeof(uid), "%s", o->uid);
					int rc = ipam_owner_clear(st, a->handle, slots[s], uid, e);
					if (rc < 0)
						return rc;
					if (g)
						g->cleared++;
				}
				if (a->active.uid[0] || a->alternate.uid[0] ||
				    !gc_is_gone(g, a->handle))
					continue;
				snprintf(c->handle, sizeof(c->handle), "%s", a->handle);
			} else {
				char h[IPAM_NAME_MAX + 1];
				if (!a->container_id[0] || strcmp(a->node, c->node) != 0 ||
				    ipam_handle_pod(h, r->name, a->container_id, NULL) < 0 ||
				    strcmp(h, a->handle) != 0)
					continue; /* another node's or another network's */
				if (attached(r, a->container_id, a->ifname))
					continue;
				snprintf(c->handle, sizeof(c->handle), "%s", h);
			}
			int rc = ipam_release_handle(st, c->handle, true, e);
			if (rc < 0)
				return rc;
			c->released++;
			i = (unsigned)-1; /* the slot array changed: rescan this block */
		}
	}
	return 0;
}

/* The IPAM datastore a request uses: the file one or the kubernetes one. */
struct cni_store {
	struct ipam_ds_file df;	/* file datastore (when !kube) */
	struct kcfg *kc;	/* resolved kubeconfig (kube; owned) */
	struct kube_client *c;	/* API client (kube; owned) */
	struct ipam_ds_kube dk;	/* kubernetes datastore over c */
	struct ipam_ds ds;	/* the view of whichever is open */
	bool kube;		/* which */
};

/* Open the datastore r names into s (close with store_close). Failure is CNI code
 * `code` (11 for ADD/DEL/CHECK/GC, 50 for STATUS). No I/O to the API server yet: the
 * kube client connects on its first call. */
static int store_open(struct cni_store *s, const struct cni_req *r, int code,
		      struct cni_fail *f)
{
	struct err e = { 0 };
	memset(s, 0, sizeof(*s));
	s->kube = r->kube;
	if (!r->kube) {
		if (ipam_ds_file_open(&s->df, r->state_dir, &e) < 0)
			return fail(f, code, "datastore unavailable", "file datastore: %s",
				    e.msg);
		s->ds = ipam_ds_file(&s->df);
		return 0;
	}
	struct kcfg_opts ko = { .kubeconfig = r->kubeconfig, .envp = environ };
	if (kcfg_load(&s->kc, &ko, &e) < 0)
		return fail(f, code, "datastore unavailable", "kubernetes datastore: %s",
			    e.msg);
	if (s->kc->insecure)
		log_msg(&r->log, LOG_LVL_WARN,
			"cni: %s: insecure-skip-tls-verify is set: the API server's certificate "
			"is NOT verified", s->kc->source);
	s->c = kube_client_from_kcfg(s->kc, CNI_KUBE_TIMEOUT_MS, &e);
	if (!s->c) {
		kcfg_free(s->kc);
		s->kc = NULL;
		return fail(f, code, "datastore unavailable", "kubernetes datastore: %s",
			    e.msg);
	}
	ipam_ds_kube_init(&s->dk, s->c);
	/* this node's CNI calls take turns on their block instead of colliding on it */
	if ((mkdir(CNI_KUBE_LOCKDIR, 0700) < 0 && errno != EEXIST) ||
	    ipam_ds_kube_lock(&s->dk, CNI_KUBE_LOCKDIR "/ipam.lock", &e) < 0)
		log_msg(&r->log, LOG_LVL_WARN, "cni: %s: no node-local IPAM lock (%s)",
			CNI_KUBE_LOCKDIR, e.msg[0] ? e.msg : strerror(errno));
	err_clear(&e);
	s->ds = ipam_ds_kube(&s->dk);
	return 0;
}

static void store_close(struct cni_store *s)
{
	if (!s->kube) {
		ipam_ds_file_close(&s->df);
		return;
	}
	ipam_ds_kube_fini(&s->dk);
	kube_client_free(s->c);
	kcfg_free(s->kc);
	s->c = NULL;
	s->kc = NULL;
}

static int op_vm_alloc(struct ipam_state *st, void *arg, struct err *e);
static int op_vm_release(struct ipam_state *st, void *arg, struct err *e);

/* One IPAM update: fn over the datastore; over `open` when given (an open kube store,
 * reusing its connection), else over one opened and closed here. */
static int ipam_run(const struct cni_req *r, struct cni_store *open, ipam_ds_fn fn,
		    struct cni_ipam *c, struct cni_fail *f)
{
	struct cni_store own;
	struct cni_store *cs = open ? open : &own;
	if (!open && store_open(&own, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct err e = { 0 };
	/* operations on this pod's handle alone load only it (kubernetes: a GET, not a
	 * LIST of every handle); anything else loads everything */
	struct ipam_ds_scope one = { .handle = c->handle };
	bool scoped = fn == op_alloc || fn == op_release || fn == op_vm_alloc ||
		      fn == op_vm_release;
	int rc = ipam_ds_update_scoped(&cs->ds, scoped ? &one : NULL, fn, c, &e);
	if (!open)
		store_close(&own);
	if (rc == 0)
		return 0;
	switch (-rc) {
	case ENOSPC:
		return fail(f, CNI_E_INTERNAL, "no free address", "ipam: %s", e.msg);
	case EINVAL:
	case EEXIST:
		return fail(f, CNI_E_CONFIG, "invalid network configuration", "ipam: %s", e.msg);
	case EAGAIN:
	case EIO:
	case EACCES:
	case EROFS:
		return fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	return fail(f, CNI_E_INTERNAL, "ipam failed", "ipam: %s", e.msg);
}

/* ---- VM pods (kubernetes datastore) ------------------------------------------------- */

#define CNI_VM_TOKENS 4096 /* JSON tokens for one pod / VMI / VM object */

/* Who a pod is, as far as IPAM cares: a VM pod (verified against its VMI) or not. */
struct cni_vm {
	bool is_vm;			  /* a virt-launcher pod of a verified VMI */
	bool target;			  /* it is a migration target */
	bool release;			  /* DEL: the VM (or standalone VMI) is deleted or
					   * being deleted: free the IPs once unowned */
	char vm[IPAM_NAME_MAX + 1];	  /* VM / VMI name (kubevirt.io/domain) */
	char pod_uid[IPAM_UID_MAX + 1];	  /* the pod's uid */
	char vmi_uid[IPAM_UID_MAX + 1];	  /* the VMI's uid */
	char vm_uid[IPAM_UID_MAX + 1];	  /* the owning VM's uid ("" standalone VMI) */
	char vmim_uid[IPAM_UID_MAX + 1];  /* kubevirt.io/migrationJobUID of a target */
	bool persist_off;		  /* a VM pod treated as ordinary: the IPAMConfig
					   * says kubeVirtVMAddressPersistence Disabled */
};

/* A fetched object: the response, its tokens and an arena for its strings. */
struct cni_obj {
	struct kube_resp resp;		       /* the answer (body owned) */
	struct json_doc doc;		       /* parsed body */
	struct json_tok tok[CNI_VM_TOKENS];    /* its tokens */
	char mem[16384];		       /* arena memory */
	struct kube_arena a;		       /* arena over mem */
};

/* GET one object into o. 0, -ENOENT (404), or -1 with f filled (code 11: the API server
 * could not be asked or gave an unusable answer). */
static int get_obj(struct kube_client *kc, const struct kube_res *res, const char *ns,
		   const char *name, struct cni_obj *o, struct cni_fail *f)
{
	struct err e = { 0 };
	memset(&o->resp, 0, sizeof(o->resp));
	int rc = kube_get(kc, res, ns, name, &o->resp, &e);
	if (rc == -ENOENT) {
		kube_resp_free(&o->resp);
		return -ENOENT;
	}
	if (rc < 0) {
		kube_resp_free(&o->resp);
		return fail(f, CNI_E_TRYLATER, "API server unavailable", "%s", e.msg);
	}
	if (json_parse(&o->doc, o->resp.body, o->resp.len, o->tok, CNI_VM_TOKENS, 0, &e) < 0) {
		fail(f, CNI_E_TRYLATER, "bad API answer", "GET %s %s/%s: %s", res->plural, ns,
		     name, e.msg);
		kube_resp_free(&o->resp);
		return -1;
	}
	kube_arena_init(&o->a, o->mem, sizeof(o->mem));
	return 0;
}

/* Copy s into a uid/name field; false when it does not fit. */
static bool cpy(char *dst, size_t cap, const char *s)
{
	return s && (size_t)snprintf(dst, cap, "%s", s) < cap;
}

/* True when the runtime passed the pod's annotations (capability
 * io.kubernetes.cri.pod-annotations) and kubevirt.io/domain is not among them: the pod
 * is certainly no VM pod, no API call needed. */
static bool annots_say_ordinary(const struct cni_req *r)
{
	return r->annots >= 0 && json_get(&r->doc, r->annots, CNI_ANN_DOMAIN) < 0;
}

/* The IPAMConfig's persistence setting, for a pod that looks like a VM pod: *off set
 * when Disabled. -1 with f filled when it cannot be read. API calls: one GET. */
static int persist_disabled(struct cni_store *cs, const struct cni_req *r, bool *off,
			    struct cni_fail *f)
{
	struct err e = { 0 };
	struct ipam_config cfg;
	int rc = ipam_ds_kube_config(&cs->dk, &cfg, &e);
	if (rc == -EAGAIN)
		return fail(f, CNI_E_TRYLATER, "API server unavailable", "pod %s/%s: %s",
			    r->pod_ns, r->pod_name, e.msg);
	if (rc < 0)
		return fail(f, CNI_E_CONFIG, "invalid IPAMConfig", "pod %s/%s: %s", r->pod_ns,
			    r->pod_name, e.msg);
	*off = cfg.vm_persistence == IPAM_PERSIST_DISABLED;
	return 0;
}

/* Decide whether the pod of r is a VM pod (design.md pillar 1): it carries the
 * kubevirt.io/domain annotation and a controller ownerReference to a kubevirt.io/v1
 * VirtualMachineInstance. Then the VMI is fetched and its uid must equal the reference's;
 * anything else fails ADD (a forged or stale reference never gets the VM's IP). A pod
 * that does not exist or is no VM pod is ordinary (vm->is_vm false). For DEL (del true)
 * a mismatch is not an error, and vm->release says whether the VM is gone or being
 * deleted (standalone VMI: the VMI). When the IPAMConfig says
 * kubeVirtVMAddressPersistence Disabled, a VM pod is ordinary (vm->persist_off) and the
 * ADD of a migration target fails. API calls: none when the runtime's pod annotations
 * lack kubevirt.io/domain; else GET pod, and for a VM pod GET IPAMConfig, GET VMI; DEL
 * adds GET VM. */
static int vm_resolve(struct cni_store *cs, const struct cni_req *r, bool del,
		      struct cni_vm *vm, struct cni_fail *f)
{
	memset(vm, 0, sizeof(*vm));
	if (!r->pod_ns[0] || !r->pod_name[0] || annots_say_ordinary(r))
		return 0;
	struct kube_client *kc = cs->c;
	struct err e = { 0 };
	struct cni_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return fail(f, CNI_E_INTERNAL, "out of memory", "pod %s/%s", r->pod_ns,
			    r->pod_name);
	int ret = -1;
	int rc = get_obj(kc, &kube_res_pods, r->pod_ns, r->pod_name, o, f);
	if (rc == -ENOENT) {
		free(o);
		return 0;
	}
	if (rc < 0) {
		free(o);
		return -1;
	}
	struct kube_pod pod;
	struct kube_owner_ref ref;
	if (kube_pod_view(&o->doc, 0, &pod, &o->a, &e) < 0) {
		fail(f, CNI_E_TRYLATER, "bad API answer", "pod %s/%s: %s", r->pod_ns,
		     r->pod_name, e.msg);
		goto out;
	}
	const char *dom = kube_annotation(&pod.meta, CNI_ANN_DOMAIN, &o->a);
	rc = kube_controller_ref(&pod.meta, &ref, &o->a, &e);
	if (rc == -EINVAL) {
		fail(f, CNI_E_INTERNAL, "invalid pod", "pod %s/%s: %s", r->pod_ns, r->pod_name,
		     e.msg);
		goto out;
	}
	if (!dom || rc < 0 || !ref.kind || strcmp(ref.kind, "VirtualMachineInstance") != 0 ||
	    !ref.api_version || strcmp(ref.api_version, "kubevirt.io/v1") != 0) {
		ret = 0; /* an ordinary pod */
		goto out;
	}
	const char *mig = kube_label(&pod.meta, CNI_LBL_MIGRATION, &o->a);
	bool off = false;
	if (persist_disabled(cs, r, &off, f) < 0)
		goto out;
	if (off) {
		if (mig && !del) {
			fail(f, CNI_E_INTERNAL, "migration target rejected",
			     "pod %s/%s: migration target (label " CNI_LBL_MIGRATION
			     ") of VM %s, but IPAMConfig " IPAM_CONFIG_NAME
			     " sets kubeVirtVMAddressPersistence: Disabled, so the VM has no "
			     "address to move (enable it or migrate without kvnet)",
			     r->pod_ns, r->pod_name, dom);
			goto out;
		}
		vm->persist_off = true; /* an ordinary pod: handle by container ID */
		ret = 0;
		goto out;
	}
	if (!ref.name || strcmp(dom, ref.name) != 0) {
		fail(f, CNI_E_INTERNAL, "VM pod rejected",
		     "pod %s/%s: annotation kubevirt.io/domain '%s' does not name its controller "
		     "VirtualMachineInstance '%s'", r->pod_ns, r->pod_name, dom,
		     ref.name ? ref.name : "");
		goto out;
	}

	if (!cpy(vm->vm, sizeof(vm->vm), dom) || !cpy(vm->pod_uid, sizeof(vm->pod_uid),
						       pod.meta.uid) ||
	    !cpy(vm->vmi_uid, sizeof(vm->vmi_uid), ref.uid) ||
	    (mig && !cpy(vm->vmim_uid, sizeof(vm->vmim_uid), mig)) || !vm->pod_uid[0] ||
	    !vm->vmi_uid[0]) {
		fail(f, CNI_E_INTERNAL, "VM pod rejected",
		     "pod %s/%s: missing or oversized uid, VMI reference or migration label",
		     r->pod_ns, r->pod_name);
		goto out;
	}
	vm->target = mig != NULL;
	kube_resp_free(&o->resp);

	rc = get_obj(kc, &kube_res_vmis, r->pod_ns, vm->vm, o, f);
	if (rc == -1)
		goto out_nofree;
	struct kube_vmi vmi;
	if (rc == 0 && kube_vmi_view(&o->doc, 0, &vmi, &o->a, &e) < 0) {
		fail(f, CNI_E_TRYLATER, "bad API answer", "VMI %s/%s: %s", r->pod_ns, vm->vm,
		     e.msg);
		goto out;
	}
	bool same = rc == 0 && vmi.meta.uid && strcmp(vmi.meta.uid, vm->vmi_uid) == 0;
	if (!del) {
		if (rc == -ENOENT) {
			fail(f, CNI_E_INTERNAL, "VM pod rejected",
			     "pod %s/%s: its VirtualMachineInstance %s/%s does not exist",
			     r->pod_ns, r->pod_name, r->pod_ns, vm->vm);
			goto out_nofree;
		}
		if (!same) {
			fail(f, CNI_E_INTERNAL, "VM pod rejected",
			     "pod %s/%s: ownerReference names VirtualMachineInstance %s uid %s, "
			     "but %s/%s has uid %s (forged or stale reference)", r->pod_ns,
			     r->pod_name, vm->vm, vm->vmi_uid, r->pod_ns, vm->vm,
			     vmi.meta.uid ? vmi.meta.uid : "(none)");
			goto out;
		}
	}
	bool vm_owned = false, vmi_deleting = rc == 0 && vmi.meta.deletion_timestamp;
	if (rc == 0) {
		struct kube_owner_ref vref;
		if (kube_controller_ref(&vmi.meta, &vref, &o->a, NULL) == 0 && vref.kind &&
		    strcmp(vref.kind, "VirtualMachine") == 0) {
			vm_owned = true;
			cpy(vm->vm_uid, sizeof(vm->vm_uid), vref.uid);
		}
		kube_resp_free(&o->resp);
	}
	vm->is_vm = true;
	ret = 0;
	if (!del)
		goto out_nofree;
	if (rc == 0 && same && !vm_owned) { /* standalone VMI */
		vm->release = vmi_deleting;
		goto out_nofree;
	}
	/* VM-owned (or the VMI is gone or replaced): the VM decides; a VM restart deletes
	 * and recreates the VMI, which must keep the IPs. */
	rc = get_obj(kc, &kube_res_vms, r->pod_ns, vm->vm, o, f);
	if (rc == -ENOENT) {
		vm->release = true;
		goto out_nofree;
	}
	if (rc < 0) {
		ret = -1;
		goto out_nofree;
	}
	struct kube_meta vmm;
	if (kube_meta_view(&o->doc, 0, &vmm, &o->a, &e) < 0) {
		ret = fail(f, CNI_E_TRYLATER, "bad API answer", "VM %s/%s: %s", r->pod_ns,
			   vm->vm, e.msg);
		goto out;
	}
	vm->release = vmm.deletion_timestamp != NULL ||
		      (vm->vm_uid[0] && vmm.uid && strcmp(vmm.uid, vm->vm_uid) != 0);
out:
	kube_resp_free(&o->resp);
out_nofree:
	free(o);
	return ret;
}

/* The uid held in slot `which` of handle h ("" when empty). */
static const char *slot_uid(const struct ipam_state *st, const struct ipam_handle *h,
			    enum ipam_slot which)
{
	const struct ipam_attrs *a = h->n ? ipam_lookup_ip(st, &h->ip[0]) : NULL;
	if (!a)
		return "";
	switch (which) {
	case IPAM_ACTIVE:
		return a->active.uid;
	case IPAM_ALTERNATE:
		return a->alternate.uid;
	}
	return "";
}

/* ADD of a VM pod: allocate (or keep) the VM's addresses and take the active slot; a
 * migration target needs existing addresses and takes the alternate slot. The slot's
 * previous holder (a dead pod of a restart, a failed earlier target) is replaced under
 * a precondition on its uid, so two racing ADDs cannot both win. */
static int op_vm_alloc(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	const struct cni_vm *vm = c->vm;
	int rc = persist_still(st, false, e);
	if (rc < 0)
		return rc;
	rc = sync_pools(st, c->r, e);
	if (rc < 0 || (rc = ipam_handle_mend(st, c->handle, e)) < 0)
		return rc;
	const struct ipam_handle *h = ipam_handle_find(st, c->handle);
	c->existed = h != NULL;
	if (vm->target && !h)
		return err_set(e, ENXIO, "migration target %s/%s: VM %s has no addresses yet "
			       "(handle %s)", c->r->pod_ns, c->r->pod_name, vm->vm, c->handle);
	struct ipam_attrs a;
	memset(&a, 0, sizeof(a));
	snprintf(a.pod, sizeof(a.pod), "%s", c->r->pod_name);
	snprintf(a.ns, sizeof(a.ns), "%s", c->r->pod_ns);
	snprintf(a.node, sizeof(a.node), "%s", c->node);
	snprintf(a.ifname, sizeof(a.ifname), "%s", c->r->ifname);
	snprintf(a.container_id, sizeof(a.container_id), "%s", c->r->cid);
	snprintf(a.vmi_name, sizeof(a.vmi_name), "%s", vm->vm);
	snprintf(a.vmi_uid, sizeof(a.vmi_uid), "%s", vm->vmi_uid);
	snprintf(a.vm_uid, sizeof(a.vm_uid), "%s", vm->vm_uid);
	rc = ipam_alloc(st, c->handle, c->node, c->r->families, &a, c->ip, &c->n, e);
	if (rc < 0)
		return rc;
	h = ipam_handle_find(st, c->handle);
	if (!h)
		return err_set(e, EUCLEAN, "handle %s: missing after allocation", c->handle);
	for (unsigned i = 0; i < h->n && !c->has_mac; i++) {
		const struct ipam_attrs *ra = ipam_lookup_ip(st, &h->ip[i]);
		c->has_mac = ra && ra->mac[0] && ipam_mac_parse(ra->mac, c->mac, NULL, NULL) == 0;
	}
	enum ipam_slot which = vm->target ? IPAM_ALTERNATE : IPAM_ACTIVE;
	char held[IPAM_UID_MAX + 1];
	snprintf(held, sizeof(held), "%s", slot_uid(st, h, which));
	struct ipam_owner o;
	memset(&o, 0, sizeof(o));
	snprintf(o.ns, sizeof(o.ns), "%s", c->r->pod_ns);
	snprintf(o.name, sizeof(o.name), "%s", c->r->pod_name);
	snprintf(o.uid, sizeof(o.uid), "%s", vm->pod_uid);
	snprintf(o.node, sizeof(o.node), "%s", c->node);
	snprintf(o.cid, sizeof(o.cid), "%s", c->r->cid);
	snprintf(o.ifname, sizeof(o.ifname), "%s", c->r->ifname);
	return ipam_owner_set(st, c->handle, which, &o, held[0] ? held : NULL, e);
}

/* DEL of a VM pod: empty the slot this pod holds (precondition: still this pod), and
 * release the addresses when the VM is going away and both slots are empty. */
static int op_vm_release(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	const struct cni_vm *vm = c->vm;
	int rc = ipam_handle_mend(st, c->handle, e);
	if (rc < 0)
		return rc;
	const struct ipam_handle *h = ipam_handle_find(st, c->handle);
	if (!h)
		return 0;
	static const enum ipam_slot slots[] = { IPAM_ACTIVE, IPAM_ALTERNATE };
	for (unsigned i = 0; i < 2; i++) {
		if (strcmp(slot_uid(st, h, slots[i]), vm->pod_uid) != 0)
			continue;
		rc = ipam_owner_clear(st, c->handle, slots[i], vm->pod_uid, e);
		if (rc < 0)
			return rc;
	}
	h = ipam_handle_find(st, c->handle);
	if (vm->release && h && !slot_uid(st, h, IPAM_ACTIVE)[0] &&
	    !slot_uid(st, h, IPAM_ALTERNATE)[0]) {
		c->released = 1;
		return ipam_release_handle(st, c->handle, false, e);
	}
	return 0;
}

/* ---- data plane --------------------------------------------------------------------- */

/* Host veth name: "kv" + 11 hex digits of SHA-256(namespace \n pod \n ifname), or of the
 * container ID when the pod name is unknown. */
static void host_ifname(const struct cni_req *r, char *out)
{
	br_sha256_context ctx;
	uint8_t h[32];
	br_sha256_init(&ctx);
	if (r->pod_name[0]) {
		br_sha256_update(&ctx, r->pod_ns, strlen(r->pod_ns));
		br_sha256_update(&ctx, "\n", 1);
		br_sha256_update(&ctx, r->pod_name, strlen(r->pod_name));
	} else {
		br_sha256_update(&ctx, r->cid, strlen(r->cid));
	}
	br_sha256_update(&ctx, "\n", 1);
	br_sha256_update(&ctx, r->ifname, strlen(r->ifname));
	br_sha256_out(&ctx, h);
	char hex[23];
	for (int i = 0; i < 11; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	snprintf(out, LINK_NAMESZ, "kv%.11s", hex);
}

static int host_sysctl(const char *host, const char *what, const char *v, struct err *e)
{
	char name[128];
	snprintf(name, sizeof(name), "%s.%s.%s", what[0] == '4' ? "net.ipv4.conf" : "net.ipv6.conf",
		 host, what + 2);
	return netns_sysctl_write(-1, name, v, e);
}

/* Everything ADD builds, so that a failure can undo it. */
struct cni_plumb {
	char host[LINK_NAMESZ]; /* host veth name */
	int host_idx;		/* its ifindex */
	int pod_idx;		/* pod interface ifindex */
	uint8_t pod_mac[6];	/* pod interface MAC */
	bool created;		/* the veth exists */
	bool dark;		/* no host route (a VM's migration target) */
};

static int plumb(const struct cni_req *r, struct nl_sock *hs, struct nl_sock *ps, int nsfd,
		 const struct cni_ipam *c, struct cni_plumb *p, struct err *e)
{
	struct link_info li;
	int rc = link_get(hs, p->host, &li, e);
	if (rc == 0) /* left over by a crashed ADD of the same pod: replace it */
		link_del(hs, li.index, NULL);
	err_clear(e);
	struct link_veth v = {
		.name = p->host,
		.peer = r->ifname,
		.peer_netns_fd = nsfd,
		.mac = cni_host_mac,
		.peer_mac = c->has_mac ? c->mac : NULL,
		.mtu = r->mtu,
	};
	if ((rc = link_add_veth(hs, &v, e)) < 0)
		return rc;
	p->created = true;
	if ((rc = link_index(hs, p->host, &p->host_idx, e)) < 0)
		return rc;
	if ((rc = host_sysctl(p->host, "4.proxy_arp", "1", e)) < 0 ||
	    (rc = host_sysctl(p->host, "4.forwarding", "1", e)) < 0 ||
	    (rc = host_sysctl(p->host, "6.accept_dad", "0", e)) < 0)
		return rc;
	bool v6 = false;
	for (unsigned i = 0; i < c->n; i++)
		v6 |= c->ip[i].family == AF_INET6;
	struct ip_addr gw6, gw4;
	ip_parse(CNI_GW6, &gw6);
	ip_parse(CNI_GW4, &gw4);
	if (v6) {
		char cur[16];
		if (netns_sysctl_read(-1, "net.ipv6.conf.all.forwarding", cur, sizeof(cur), e) < 0)
			return -EIO;
		if (strcmp(cur, "1") != 0 &&
		    (rc = netns_sysctl_write(-1, "net.ipv6.conf.all.forwarding", "1", e)) < 0)
			return rc;
		rc = addr_add(hs, p->host_idx, &gw6, 64, IFA_F_NODAD, e);
		if (rc < 0 && rc != -EEXIST)
			return rc;
		err_clear(e);
	}
	if ((rc = link_set_up(hs, p->host_idx, true, e)) < 0)
		return rc;

	/* pod side */
	if ((rc = link_get(ps, r->ifname, &li, e)) < 0)
		return rc;
	p->pod_idx = li.index;
	memcpy(p->pod_mac, li.mac, 6);
	char sc[128];
	snprintf(sc, sizeof(sc), "net.ipv6.conf.%s.accept_dad", r->ifname);
	if (v6 && (rc = netns_sysctl_write(nsfd, sc, "0", e)) < 0)
		return rc;
	if ((rc = link_set_up(ps, p->pod_idx, true, e)) < 0)
		return rc;
	for (unsigned i = 0; i < c->n; i++) {
		struct ip_addr a = c->ip[i];
		bool is6 = a.family == AF_INET6;
		if ((rc = addr_add(ps, p->pod_idx, &a, is6 ? 128 : 32, is6 ? IFA_F_NODAD : 0, e)) < 0)
			return rc;
	}
	for (unsigned i = 0; i < c->n; i++) {
		bool is6 = c->ip[i].family == AF_INET6;
		struct rt_route d;
		memset(&d, 0, sizeof(d));
		d.dst.family = is6 ? AF_INET6 : AF_INET;
		d.gw = is6 ? gw6 : gw4;
		d.oif = p->pod_idx;
		d.onlink = true;
		if (!is6 && (rc = neigh_add(ps, p->pod_idx, &gw4, cni_host_mac, e)) < 0)
			return rc;
		if ((rc = rt_add(ps, &d, e)) < 0 && rc != -EEXIST)
			return rc;
		err_clear(e);
		if (p->dark)
			continue;
		/* host route */
		struct rt_route h;
		memset(&h, 0, sizeof(h));
		h.dst = c->ip[i];
		h.dst_len = is6 ? 128 : 32;
		h.oif = p->host_idx;
		h.metric = 1024;
		h.protocol = RT_PROTO_KVNET;
		h.scope = RT_SCOPE_LINK;
		if (is6)
			h.scope = RT_SCOPE_UNIVERSE;
		if ((rc = rt_replace(hs, &h, e)) < 0)
			return rc;
	}
	return 0;
}

static void put_result(struct json_w *w, const struct cni_req *r, const struct cni_ipam *c,
		       const struct cni_plumb *p)
{
	char buf[64];
	json_w_obj_begin(w);
	json_w_kstr(w, "cniVersion", r->version);
	json_w_key(w, "interfaces");
	json_w_arr_begin(w);
	json_w_obj_begin(w);
	json_w_kstr(w, "name", p->host);
	json_w_kstr(w, "mac", "ee:ee:ee:ee:ee:ee");
	json_w_obj_end(w);
	json_w_obj_begin(w);
	json_w_kstr(w, "name", r->ifname);
	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", p->pod_mac[0], p->pod_mac[1],
		 p->pod_mac[2], p->pod_mac[3], p->pod_mac[4], p->pod_mac[5]);
	json_w_kstr(w, "mac", buf);
	if (r->mtu && r->vidx >= 4) /* interface mtu is new in spec 1.1.0 */
		json_w_kint(w, "mtu", r->mtu);
	json_w_kstr(w, "sandbox", r->netns);
	json_w_obj_end(w);
	json_w_arr_end(w);
	json_w_key(w, "ips");
	json_w_arr_begin(w);
	bool v4 = false, v6 = false;
	for (unsigned i = 0; i < c->n; i++) {
		bool is6 = c->ip[i].family == AF_INET6;
		v4 |= !is6;
		v6 |= is6;
		json_w_obj_begin(w);
		if (r->vidx < 3)
			json_w_kstr(w, "version", is6 ? "6" : "4");
		char a[64];
		ipam_addr_str(&c->ip[i], a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s/%d", a, is6 ? 128 : 32);
		json_w_kstr(w, "address", buf);
		json_w_kstr(w, "gateway", is6 ? CNI_GW6 : CNI_GW4);
		json_w_kint(w, "interface", 1);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_key(w, "routes");
	json_w_arr_begin(w);
	if (v4) {
		json_w_obj_begin(w);
		json_w_kstr(w, "dst", "0.0.0.0/0");
		json_w_kstr(w, "gw", CNI_GW4);
		json_w_obj_end(w);
	}
	if (v6) {
		json_w_obj_begin(w);
		json_w_kstr(w, "dst", "::/0");
		json_w_kstr(w, "gw", CNI_GW6);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_key(w, "dns");
	json_w_obj_begin(w);
	json_w_obj_end(w);
	json_w_obj_end(w);
}

/* Undo open_pod() (and close the host-side socket, if one was opened). */
static void close_pod(int nsfd, struct nl_sock *ps, struct nl_sock *hs)
{
	if (hs)
		nl_close(hs);
	if (ps)
		nl_close(ps);
	if (nsfd >= 0)
		close(nsfd);
}

/* Success, the result written and logged: exit now. What is left is freeing the heap
 * and closing descriptors; exit does that at once, while freeing piece by piece costs
 * an munmap and a TLB flush per heap group (musl hands empty groups back to the
 * kernel): 0.4-1 ms of a ~4 ms ADD on the benchmark machine, and the runtime waits for
 * the exit. Only ADD and DEL, only on success; every other path cleans up. */
static _Noreturn void exit_done(struct cni_req *r)
{
	log_close(&r->log);
	_exit(0);
}

/* netns_run() job: a netlink socket opened inside the namespace it runs in. */
static int open_sock_fn(void *arg, struct err *e)
{
	return nl_open(arg, NETLINK_ROUTE, e);
}

/* A netlink socket in namespace nsfd. The plugin is single-threaded, so it enters the
 * namespace itself and comes back (no helper thread to create). A failed return leaves
 * this thread in the pod's namespace: the caller must stop (it gets the error). */
static int open_sock_in(int nsfd, struct nl_sock **out, struct err *e)
{
	*out = NULL;
	return netns_run(nsfd, open_sock_fn, out, e);
}

static int open_pod(const struct cni_req *r, int *nsfd, struct nl_sock **ps, struct cni_fail *f)
{
	struct err e = { 0 };
	*nsfd = netns_open(r->netns, &e);
	if (*nsfd < 0)
		return fail(f, CNI_E_ENV, "invalid network namespace", "CNI_NETNS %s: %s", r->netns,
			    e.msg);
	if (open_sock_in(*nsfd, ps, &e) < 0) {
		if (*ps)
			nl_close(*ps);
		*ps = NULL;
		close(*nsfd);
		*nsfd = -1;
		return fail(f, CNI_E_ENV, "invalid network namespace", "CNI_NETNS %s: %s", r->netns,
			    e.msg);
	}
	return 0;
}

/* Register the endpoint with the node agent; with policy_setup_timeout_seconds > 0 wait
 * that long for "programmed", then fail or (policy_timeout_action continue) warn. No
 * timeout: an absent agent is fine (the plugin works alone). */
static int agent_register(const struct cni_req *r, const struct cni_ipam *c,
			  const struct cni_plumb *p, const struct cni_vm *vm, struct cni_fail *f)
{
	struct agent_ep ep;
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.cid, sizeof(ep.cid), "%s", r->cid);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", r->ifname);
	snprintf(ep.ns, sizeof(ep.ns), "%s", r->pod_ns);
	snprintf(ep.pod, sizeof(ep.pod), "%s", r->pod_name);
	snprintf(ep.uid, sizeof(ep.uid), "%s", vm->is_vm ? vm->pod_uid : r->pod_uid);
	snprintf(ep.veth, sizeof(ep.veth), "%s", p->host);
	snprintf(ep.handle, sizeof(ep.handle), "%s", c->handle);
	if (vm->is_vm)
		snprintf(ep.vm, sizeof(ep.vm), "%s", vm->vm);
	ep.target = p->dark;
	for (unsigned i = 0; i < c->n && ep.n_ip < AGENT_EP_IPS_MAX; i++)
		ep.ip[ep.n_ip++] = c->ip[i];
	unsigned ms = r->policy_timeout * 1000u;
	struct agent_client ac;
	struct err e = { 0 };
	int rc = agent_client_open(&ac, r->agent_socket, &e);
	bool reached = rc == 0;
	if (rc == 0) {
		rc = agent_client_add(&ac, &ep, ms > 0, ms, &e);
		agent_client_close(&ac);
	}
	if (rc == 0)
		return 0;
	if (ms == 0) {
		if (rc != -ENOENT && rc != -ECONNREFUSED)
			log_msg(&r->log, LOG_LVL_WARN, "ADD %s %s: %s (not waiting: "
				"policy_setup_timeout_seconds is 0)", r->cid, r->ifname, e.msg);
		return 0;
	}
	if (r->policy_continue) {
		log_msg(&r->log, LOG_LVL_WARN, "ADD %s %s: %s; continuing without the agent's "
			"confirmation (policy_timeout_action continue)", r->cid, r->ifname, e.msg);
		return 0;
	}
	if (reached && agent_client_open(&ac, r->agent_socket, NULL) == 0) {
		agent_client_del(&ac, r->cid, r->ifname, 1000, NULL); /* the ADD is undone */
		agent_client_close(&ac);
	}
	return fail(f, CNI_E_TRYLATER, "endpoint not programmed by the kvnet agent",
		    "%s (policy_setup_timeout_seconds %u, policy_timeout_action fail)", e.msg,
		    r->policy_timeout);
}

static int do_add(struct cni_req *r, struct cni_fail *f)
{
	if (check_env(r, true, f) < 0)
		return -1;
	struct cni_ipam c;
	if (ipam_req_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	node_name(c.node);

	int nsfd = -1;
	struct nl_sock *ps = NULL, *hs = NULL;
	if (open_pod(r, &nsfd, &ps, f) < 0)
		return -1;
	int ret = -1;
	struct cni_store cs;
	bool cs_open = false;
	struct cni_vm vm;
	memset(&vm, 0, sizeof(vm));
	if (r->kube) {
		if (store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
			goto out;
		cs_open = true;
		if (vm_resolve(&cs, r, false, &vm, f) < 0)
			goto out;
		c.persist_off = vm.persist_off;
		if (vm.is_vm) {
			if (ipam_handle_vm(c.handle, r->name, r->pod_ns, vm.vm, &e) < 0) {
				fail(f, CNI_E_CONFIG, "invalid network configuration", "%s",
				     e.msg);
				goto out;
			}
			c.vm = &vm;
		}
	}
	struct link_info li;
	if (link_get(ps, r->ifname, &li, &e) == 0) {
		fail(f, CNI_E_ENV, "interface already exists",
		     "interface %s already exists in %s", r->ifname, r->netns);
		goto out;
	}
	if (nl_open(&hs, NETLINK_ROUTE, &e) < 0) {
		fail(f, CNI_E_INTERNAL, "netlink unavailable", "%s", e.msg);
		goto out;
	}
	if (ipam_run(r, cs_open ? &cs : NULL, c.vm ? op_vm_alloc : op_alloc, &c, f) < 0)
		goto out;
	struct cni_plumb p;
	memset(&p, 0, sizeof(p));
	p.dark = vm.is_vm && vm.target;
	host_ifname(r, p.host);
	err_clear(&e);
	bool plumbed = plumb(r, hs, ps, nsfd, &c, &p, &e) == 0;
	if (!plumbed)
		fail(f, CNI_E_INTERNAL, "cannot set up the pod interface", "%s", e.msg);
	if (!plumbed || agent_register(r, &c, &p, &vm, f) < 0) {
		if (p.created && link_get(hs, p.host, &li, NULL) == 0)
			link_del(hs, li.index, NULL);
		struct cni_fail f2;
		if (!c.existed &&
		    ipam_run(r, cs_open ? &cs : NULL, op_release, &c, &f2) < 0)
			log_errorx(&r->log, "undo: %s", f2.det);
		goto out;
	}
	struct json_w w;
	json_w_init_grow(&w, 65536);
	put_result(&w, r, &c, &p);
	ret = print_json(&w);
	json_w_free(&w);
	log_msg(&r->log, LOG_LVL_INFO, "ADD %s %s: %s handle %s%s", r->cid, r->ifname, p.host,
		c.handle, p.dark ? " (migration target, dark)" : "");
out:
	if (ret == 0)
		exit_done(r);
	if (cs_open)
		store_close(&cs);
	close_pod(nsfd, ps, hs);
	return ret;
}

static int do_del(struct cni_req *r, struct cni_fail *f)
{
	if (check_env(r, false, f) < 0)
		return -1;
	struct cni_ipam c;
	if (ipam_req_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	/* pod side (takes the host end with it); the netns may be gone */
	struct link_info li;
	if (r->netns) {
		struct nl_sock *ps = NULL;
		int nsfd = netns_open(r->netns, &e);
		int rc = nsfd >= 0 ? open_sock_in(nsfd, &ps, &e) : nsfd;
		if (nsfd >= 0)
			close(nsfd);
		if (rc == 0) {
			if (link_get(ps, r->ifname, &li, &e) == 0 && li.kind[0] &&
			    strcmp(li.kind, "veth") == 0)
				link_del(ps, li.index, NULL);
		} else if (ps) { /* opened, but could not come back: stranded, stop */
			nl_close(ps);
			return fail(f, CNI_E_INTERNAL, "network namespace", "%s", e.msg);
		}
		if (ps)
			nl_close(ps);
	}
	struct agent_client ac; /* unregister from the agent, best effort */
	if (agent_client_open(&ac, r->agent_socket, NULL) == 0) {
		if (agent_client_del(&ac, r->cid, r->ifname, 2000, &e) < 0)
			log_msg(&r->log, LOG_LVL_WARN, "DEL %s %s: %s", r->cid, r->ifname, e.msg);
		agent_client_close(&ac);
	}
	char host[LINK_NAMESZ];
	host_ifname(r, host);
	struct nl_sock *hs = NULL;
	if (nl_open(&hs, NETLINK_ROUTE, &e) == 0) {
		if (link_get(hs, host, &li, &e) == 0)
			link_del(hs, li.index, NULL);
		nl_close(hs);
	}
	if (!r->kube) {
		if (ipam_run(r, NULL, op_release, &c, f) < 0)
			return -1;
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: released %s", r->cid, r->ifname,
			c.handle);
		exit_done(r);
	}
	struct cni_store cs;
	if (store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct cni_vm vm;
	int ret = -1;
	if (vm_resolve(&cs, r, true, &vm, f) < 0)
		goto out;
	if (vm.is_vm) {
		if (ipam_handle_vm(c.handle, r->name, r->pod_ns, vm.vm, &e) < 0) {
			fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
			goto out;
		}
		c.vm = &vm;
	}
	if (ipam_run(r, &cs, c.vm ? op_vm_release : op_release, &c, f) < 0)
		goto out;
	if (c.vm)
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: VM pod left %s%s", r->cid, r->ifname,
			c.handle, c.released ? ", released" : "");
	else
		log_msg(&r->log, LOG_LVL_INFO, "DEL %s %s: released %s", r->cid, r->ifname,
			c.handle);
	ret = 0;
out:
	if (ret == 0)
		exit_done(r);
	store_close(&cs);
	return ret;
}

/* What CHECK looks for in a route dump. */
struct find_rt {
	struct ip_addr dst; /* destination */
	uint8_t len;	    /* prefix length */
	struct ip_addr gw;  /* gateway (family 0 = any) */
	int type;	    /* route type; -1 = any */
	bool found;	    /* seen */
};

static int find_rt_cb(const struct rt_route *rt, void *arg, struct err *e)
{
	(void)e;
	struct find_rt *q = arg;
	if (rt->dst_len == q->len && (q->len == 0 || ip_eq(&rt->dst, &q->dst)) &&
	    (q->gw.family == 0 || ip_eq(&rt->gw, &q->gw)) && (q->type < 0 || rt->type == q->type))
		q->found = true;
	return 0;
}

static int has_route(struct nl_sock *s, uint32_t table, uint8_t proto, int oif,
		     struct find_rt *q, struct err *e)
{
	struct rt_filter fl = { .family = q->dst.family, .protocol = proto, .table = table,
				.oif = oif };
	for (int t = 0; t < 3; t++) {
		q->found = false;
		int rc = rt_dump(s, &fl, find_rt_cb, q, e);
		if (rc != -EINTR)
			return rc;
	}
	return -EINTR;
}

static int do_check(struct cni_req *r, struct cni_fail *f)
{
	if (check_env(r, true, f) < 0)
		return -1;
	if (r->vidx < 2)
		return fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "CHECK needs cniVersion 0.4.0 or later, got %s", r->version);
	if (r->prev < 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "CHECK needs prevResult");
	struct cni_ipam c;
	if (ipam_req_init(&c, r, f) < 0)
		return -1;
	struct err e = { 0 };
	struct cni_store cs;
	if (store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct cni_vm vm;
	memset(&vm, 0, sizeof(vm));
	if (r->kube && vm_resolve(&cs, r, false, &vm, f) < 0) {
		store_close(&cs);
		return -1;
	}
	if (vm.is_vm && ipam_handle_vm(c.handle, r->name, r->pod_ns, vm.vm, &e) < 0) {
		store_close(&cs);
		return fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
	}
	struct ipam_state st;
	int rc = ipam_ds_read(&cs.ds, &st, &e);
	store_close(&cs);
	if (rc < 0) {
		ipam_state_free(&st);
		return fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	const struct ipam_handle *h = ipam_handle_find(&st, c.handle);
	if (h) {
		c.n = h->n;
		memcpy(c.ip, h->ip, sizeof(c.ip));
	}
	ipam_state_free(&st);
	if (!h)
		return fail(f, CNI_E_INTERNAL, "check failed", "ipam: no addresses held by %s",
			    c.handle);

	/* prevResult ips must be exactly what IPAM holds */
	int ips = json_get(&r->doc, r->prev, "ips");
	unsigned seen = 0;
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &r->doc, ips);
	while (json_iter_next(&it, &k, &v)) {
		char s[80];
		int at = json_get(&r->doc, v, "address");
		struct ip_addr a;
		uint8_t plen;
		if (at < 0 || json_str(&r->doc, at, s, sizeof(s)) < 0 ||
		    !ip_parse_prefix(s, &a, &plen))
			return fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "prevResult.ips: an entry has no valid address");
		bool held = false;
		for (unsigned i = 0; i < c.n; i++) {
			struct ip_addr b = c.ip[i];
			held |= ip_eq(&a, &b);
		}
		if (!held)
			return fail(f, CNI_E_INTERNAL, "check failed",
				    "prevResult address %s is not held by %s", s, c.handle);
		seen++;
	}
	if (seen != c.n)
		return fail(f, CNI_E_INTERNAL, "check failed",
			    "prevResult lists %u addresses, IPAM holds %u for %s", seen, c.n,
			    c.handle);

	int nsfd = -1;
	struct nl_sock *ps = NULL, *hs = NULL;
	if (open_pod(r, &nsfd, &ps, f) < 0)
		return -1;
	int ret = -1;
	struct link_info li;
	char host[LINK_NAMESZ];
	host_ifname(r, host);
	int host_idx = 0;
	if (link_get(ps, r->ifname, &li, &e) < 0) {
		fail(f, CNI_E_INTERNAL, "check failed", "interface %s missing in %s", r->ifname,
		     r->netns);
		goto out;
	}
	int pod_idx = li.index;
	if (nl_open(&hs, NETLINK_ROUTE, &e) < 0 || link_index(hs, host, &host_idx, &e) < 0) {
		fail(f, CNI_E_INTERNAL, "check failed", "host interface %s: %s", host, e.msg);
		goto out;
	}
	for (unsigned i = 0; i < c.n; i++) {
		char s[64];
		ipam_addr_str(&c.ip[i], s, sizeof(s));
		bool is6 = c.ip[i].family == AF_INET6;
		struct find_rt q;
		memset(&q, 0, sizeof(q));
		q.dst = c.ip[i];
		q.len = is6 ? 128 : 32;
		q.type = RTN_LOCAL;
		if (has_route(ps, RT_TABLE_LOCAL, 0, pod_idx, &q, &e) < 0 || !q.found) {
			fail(f, CNI_E_INTERNAL, "check failed", "address %s missing on %s in %s", s,
			     r->ifname, r->netns);
			goto out;
		}
		memset(&q, 0, sizeof(q));
		q.dst.family = is6 ? AF_INET6 : AF_INET;
		q.len = 0;
		ip_parse(is6 ? CNI_GW6 : CNI_GW4, &q.gw);
		q.type = -1;
		if (has_route(ps, RT_TABLE_MAIN, 0, pod_idx, &q, &e) < 0 || !q.found) {
			fail(f, CNI_E_INTERNAL, "check failed",
			     "default route via %s missing on %s in %s", is6 ? CNI_GW6 : CNI_GW4,
			     r->ifname, r->netns);
			goto out;
		}
		memset(&q, 0, sizeof(q));
		q.dst = c.ip[i];
		q.len = is6 ? 128 : 32;
		q.type = -1;
		if (has_route(hs, RT_TABLE_MAIN, RT_PROTO_KVNET, host_idx, &q, &e) < 0) {
			fail(f, CNI_E_INTERNAL, "check failed", "host routes: %s", e.msg);
			goto out;
		}
		if (!q.found && !vm.target) {
			fail(f, CNI_E_INTERNAL, "check failed",
			     "host route %s/%d dev %s proto 75 is missing", s, is6 ? 128 : 32, host);
			goto out;
		}
		if (q.found && vm.target) {
			fail(f, CNI_E_INTERNAL, "check failed",
			     "host route %s/%d dev %s exists, but a migration target stays dark", s,
			     is6 ? 128 : 32, host);
			goto out;
		}
	}
	ret = 0;
out:
	close_pod(nsfd, ps, hs);
	return ret;
}

static int do_status(struct cni_req *r, struct cni_fail *f)
{
	if (r->vidx < 4)
		return fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "STATUS needs cniVersion 1.1.0, got %s", r->version);
	struct cni_store cs;
	struct err e = { 0 };
	if (store_open(&cs, r, CNI_E_UNAVAILABLE, f) < 0)
		return -1;
	struct ipam_state st;
	int rc = ipam_ds_read(&cs.ds, &st, &e);
	ipam_state_free(&st);
	store_close(&cs);
	if (rc < 0)
		return fail(f, CNI_E_UNAVAILABLE, "datastore unavailable", "%s datastore: %s",
			    r->kube ? "kubernetes" : "file", e.msg);
	return 0;
}

/* Is the VM (standalone VMI: the VMI) of a VM handle's allocation gone or being deleted
 * (or replaced by another object of the same name)? As DEL decides. API calls: one GET. */
static int gc_vm_gone(struct kube_client *kc, const struct ipam_attrs *a, bool *gone,
		      struct cni_fail *f)
{
	struct cni_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return fail(f, CNI_E_INTERNAL, "out of memory", "GC: VM %s/%s", a->ns,
			    a->vmi_name);
	bool standalone = !a->vm_uid[0];
	int rc = get_obj(kc, standalone ? &kube_res_vmis : &kube_res_vms, a->ns, a->vmi_name, o,
			 f);
	*gone = rc == -ENOENT;
	if (rc == 0) {
		struct err e = { 0 };
		struct kube_meta m;
		if (kube_meta_view(&o->doc, 0, &m, &o->a, &e) < 0)
			rc = fail(f, CNI_E_TRYLATER, "bad API answer", "%s %s/%s: %s",
				  standalone ? "VMI" : "VM", a->ns, a->vmi_name, e.msg);
		else
			*gone = m.deletion_timestamp != NULL ||
				(m.uid && strcmp(m.uid, standalone ? a->vmi_uid : a->vm_uid) != 0);
		kube_resp_free(&o->resp);
	}
	free(o);
	return rc == -ENOENT ? 0 : rc;
}

/* GC with the kubernetes datastore, before the update: the VM handles of this network
 * whose slots would all be empty after GC, and whose VM is gone, go to g->gone. */
static int gc_find_gone(struct cni_store *cs, struct cni_ipam *c, struct cni_gc *g,
			struct cni_fail *f)
{
	struct ipam_state st;
	struct err e = { 0 };
	int ret = 0;
	if (ipam_ds_read(&cs->ds, &st, &e) < 0) {
		ipam_state_free(&st);
		return fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	for (unsigned b = 0; b < st.n_blocks && !ret; b++) {
		for (unsigned i = 0; i < st.blocks[b].size && !ret; i++) {
			const struct ipam_attrs *a = st.blocks[b].slot[i];
			if (!a || !gc_vm_alloc(c->r, a) || gc_is_gone(g, a->handle))
				continue;
			if ((a->active.uid[0] && !gc_slot_stale(c, &a->active)) ||
			    (a->alternate.uid[0] && !gc_slot_stale(c, &a->alternate)))
				continue; /* a pod still runs the VM */
			bool gone = false;
			if (gc_vm_gone(cs->c, a, &gone, f) < 0) {
				ret = -1;
				break;
			}
			if (!gone)
				continue;
			if (g->n_gone == g->cap_gone) {
				unsigned nc = g->cap_gone ? g->cap_gone * 2 : 16;
				void *ng = nc < (1u << 20) ? realloc(g->gone, nc * sizeof(*g->gone))
							   : NULL;
				if (!ng) {
					ret = fail(f, CNI_E_INTERNAL, "out of memory", "GC");
					break;
				}
				g->gone = ng;
				g->cap_gone = nc;
			}
			snprintf(g->gone[g->n_gone++], sizeof(*g->gone), "%s", a->handle);
		}
	}
	ipam_state_free(&st);
	return ret;
}

static int do_gc(struct cni_req *r, struct cni_fail *f)
{
	if (r->vidx < 4)
		return fail(f, CNI_E_VERSION, "incompatible CNI version",
			    "GC needs cniVersion 1.1.0, got %s", r->version);
	if (r->attach < 0)
		return fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "GC needs cni.dev/valid-attachments");
	struct cni_ipam c;
	struct cni_gc g;
	memset(&c, 0, sizeof(c));
	memset(&g, 0, sizeof(g));
	c.r = r;
	c.gc = &g;
	node_name(c.node);
	struct cni_store cs;
	if (store_open(&cs, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	int ret = -1;
	if (r->kube && gc_find_gone(&cs, &c, &g, f) < 0)
		goto out;
	if (ipam_run(r, &cs, op_gc, &c, f) < 0)
		goto out;
	log_msg(&r->log, LOG_LVL_INFO,
		"GC: released %u handles, emptied %u owner slots, %u torn-record repairs",
		c.released, g.cleared, g.mended);
	ret = 0;
out:
	store_close(&cs);
	free(g.gone);
	return ret;
}

static int do_version(struct cni_req *r)
{
	struct json_w w;
	json_w_init_grow(&w, 4096);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "cniVersion", r->version[0] ? r->version : "1.1.0");
	json_w_key(&w, "supportedVersions");
	json_w_arr_begin(&w);
	for (int i = 0; i < CNI_NVERSIONS; i++)
		json_w_str(&w, cni_versions[i]);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	int rc = print_json(&w);
	json_w_free(&w);
	return rc;
}

int cmd_cni(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct cni_req r;
	memset(&r, 0, sizeof(r));
	r.prev = r.attach = r.annots = -1;
	log_init(&r.log, "cni", LOG_LVL_INFO);
	r.command = env("CNI_COMMAND");
	r.cid = env("CNI_CONTAINERID");
	r.netns = env("CNI_NETNS");
	r.ifname = env("CNI_IFNAME");
	struct cni_fail f = { 0 };
	int rc = -1;
	if (!r.command) {
		fail(&f, CNI_E_ENV, "missing environment", "CNI_COMMAND is not set");
		goto out;
	}
	if (strcmp(r.command, "VERSION") == 0) {
		if (read_stdin(&r, &f) < 0)
		goto out;
	if (parse_conf(&r, false, &f) < 0 && f.code != CNI_E_VERSION)
			goto out;
		r.version[0] = 0;
		rc = do_version(&r);
		goto out;
	}
	bool add = strcmp(r.command, "ADD") == 0, del = strcmp(r.command, "DEL") == 0,
	     chk = strcmp(r.command, "CHECK") == 0, sts = strcmp(r.command, "STATUS") == 0,
	     gc = strcmp(r.command, "GC") == 0;
	if (!add && !del && !chk && !sts && !gc) {
		fail(&f, CNI_E_ENV, "invalid environment",
		     "CNI_COMMAND '%s' is not ADD, DEL, CHECK, STATUS, GC or VERSION", r.command);
		goto out;
	}
	if (read_stdin(&r, &f) < 0 || parse_conf(&r, true, &f) < 0 ||
	    parse_args(&r, env("CNI_ARGS"), &f) < 0)
		goto out;
	if (r.log_file[0]) {
		int lr = log_open(&r.log, r.log_file);
		if (lr < 0) {
			fail(&f, CNI_E_CONFIG, "invalid network configuration",
			     "log_file %s: open: %s", r.log_file, strerror(-lr));
			goto out;
		}
	}
	if (add)
		rc = do_add(&r, &f);
	else if (del)
		rc = do_del(&r, &f);
	else if (chk)
		rc = do_check(&r, &f);
	else if (sts)
		rc = do_status(&r, &f);
	else
		rc = do_gc(&r, &f);
out:
	if (rc < 0)
		emit_error(&r, &f);
	log_close(&r.log);
	free(r.tok);
	free(r.text);
	return rc < 0 ? 1 : 0;
}
