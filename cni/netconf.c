/* netconf — CNI environment, CNI_ARGS and network configuration parsing (netconf.h). */
#include "cni/netconf.h"

#include "cni/mode.h"
#include "kube/types.h"
#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

const char *const cni_versions[CNI_NVERSIONS] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

int cni_fail(struct cni_fail *f, int code, const char *msg, const char *fmt, ...)
{
	f->code = code;
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->det, sizeof(f->det), fmt, ap);
	va_end(ap);
	return -1;
}

void cni_req_init(struct cni_req *r)
{
	memset(r, 0, sizeof(*r));
	r->prev = r->attach = r->annots = -1;
	log_init(&r->log, "cni", LOG_LVL_INFO);
}

void cni_req_fini(struct cni_req *r)
{
	if (r->has_out)
		json_w_free(&r->out);
	r->has_out = false;
	free(r->tok);
	free(r->text);
	r->tok = NULL;
	r->text = NULL;
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

/* A CNI_ARGS value that is not what key must be: code 4 showing (the start of) the value
 * with anything unprintable as \xNN, so the message itself stays plain text. */
static int bad_arg(struct cni_fail *f, const char *key, const char *v, const char *must)
{
	char shown[100];
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)v;
	for (; *p && o + 5 < sizeof(shown); p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			shown[o++] = (char)*p;
		else
			o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", *p);
	}
	shown[o] = 0;
	return cni_fail(f, CNI_E_ENV, "invalid CNI_ARGS", "CNI_ARGS: %s '%s%s' must be %s", key,
			shown, *p ? "..." : "", must);
}

/* CNI_ARGS "K=V;K=V". Unknown keys are an error unless IgnoreUnknown is 1/true. */
int cni_args_parse(struct cni_req *r, const char *args, struct cni_fail *f)
{
	if (!args)
		return 0;
	bool ignore = false, unknown = false;
	char bad[128] = "";
	char buf[2048];
	if (strlen(args) >= sizeof(buf))
		return cni_fail(f, CNI_E_ENV, "invalid CNI_ARGS", "CNI_ARGS: longer than %zu bytes",
			    sizeof(buf) - 1);
	for (int pass = 0; pass < 2; pass++) {
		snprintf(buf, sizeof(buf), "%s", args);
		char *save = NULL;
		for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq || eq == kv)
				return cni_fail(f, CNI_E_ENV, "invalid CNI_ARGS",
					    "CNI_ARGS: '%s' is not KEY=VALUE", kv);
			*eq = 0;
			const char *v = eq + 1;
			if (pass == 0) {
				if (strcmp(kv, "IgnoreUnknown") == 0)
					ignore = strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
				continue;
			}
			if (strcmp(kv, "K8S_POD_NAMESPACE") == 0) {
				if (*v && (strlen(v) > IPAM_NS_MAX || !kube_name_is_label(v)))
					return bad_arg(f, kv, v, "a DNS-1123 label (at most 63 of "
						       "a-z, 0-9 and '-', alphanumeric at both ends)");
				snprintf(r->pod_ns, sizeof(r->pod_ns), "%s", v);
			} else if (strcmp(kv, "K8S_POD_NAME") == 0) {
				if (*v && (strlen(v) > IPAM_NAME_MAX || !kube_name_is_subdomain(v)))
					return bad_arg(f, kv, v, "a DNS-1123 subdomain (at most 253 "
						       "of a-z, 0-9, '-' and '.', alphanumeric at both "
						       "ends of every part)");
				snprintf(r->pod_name, sizeof(r->pod_name), "%s", v);
			} else if (strcmp(kv, "K8S_POD_UID") == 0) {
				if (*v && (strlen(v) > IPAM_UID_MAX || !kube_uid_valid(v)))
					return bad_arg(f, kv, v, "a uid (at most 64 hex digits and "
						       "'-', starting with a hex digit)");
				snprintf(r->pod_uid, sizeof(r->pod_uid), "%s", v);
			} else if (strcmp(kv, "MAC") == 0) {
				uint8_t m[6];
				if (ipam_mac_parse(v, m, NULL, NULL) < 0)
					return bad_arg(f, kv, v, "a unicast MAC aa:bb:cc:dd:ee:ff");
				if (r->has_mac && memcmp(m, r->mac, 6) != 0)
					return bad_arg(f, kv, v, "the MAC runtimeConfig.mac asks for "
						       "(or absent)");
				memcpy(r->mac, m, 6);
				r->has_mac = true;
			} else if (strcmp(kv, "IgnoreUnknown") != 0 &&
				   strcmp(kv, "K8S_POD_INFRA_CONTAINER_ID") != 0 &&
				   strcmp(kv, "K8S_POD_UID") != 0 && !unknown) {
				unknown = true;
				snprintf(bad, sizeof(bad), "%s", kv);
			}
		}
	}
	if (unknown && !ignore)
		return cni_fail(f, CNI_E_ENV, "invalid CNI_ARGS",
			    "CNI_ARGS: unknown key '%s' (set IgnoreUnknown=1 to allow it)", bad);
	return 0;
}

/* Parse stdin as JSON into r->doc (code 6 on failure). */
static int parse_json(struct cni_req *r, struct cni_fail *f)
{
	struct err e = { 0 };
	int rc = json_parse(&r->doc, r->text, r->len, NULL, 0, 0, &e);
	if (rc < 0 && rc != -ENOSPC)
		return cni_fail(f, CNI_E_DECODE, "invalid network configuration JSON", "stdin: %s",
			    e.msg);
	r->tok = calloc(r->doc.n ? r->doc.n : 1, sizeof(*r->tok));
	if (!r->tok)
		return cni_fail(f, CNI_E_INTERNAL, "out of memory", "stdin: tokens");
	rc = json_parse(&r->doc, r->text, r->len, r->tok, r->doc.n, 0, &e);
	if (rc < 0)
		return cni_fail(f, CNI_E_DECODE, "invalid network configuration JSON", "stdin: %s",
			    e.msg);
	if (json_type(&r->doc, 0) != JSON_OBJECT)
		return cni_fail(f, CNI_E_DECODE, "invalid network configuration JSON",
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
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
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
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "%s: must be an integer 0..%llu", k, (unsigned long long)max);
	return 1;
}

static int conf_pools(struct cni_req *r, const char *k, int family, struct cni_fail *f)
{
	int t = json_get(&r->doc, 0, k);
	if (t < 0)
		return 0;
	if (json_type(&r->doc, t) != JSON_ARRAY)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "%s: must be an array of CIDR strings", k);
	struct json_iter it;
	int kk, v;
	json_iter_init(&it, &r->doc, t);
	while (json_iter_next(&it, &kk, &v)) {
		char s[64];
		struct err e = { 0 };
		if (json_type(&r->doc, v) != JSON_STRING || json_str(&r->doc, v, s, sizeof(s)) < 0)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: every entry must be a CIDR string", k);
		if (r->n_pools == CNI_POOLS_MAX)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: more than %d pools", k, CNI_POOLS_MAX);
		struct ipam_cidr *c = &r->pools[r->n_pools];
		if (ipam_cidr_parse(c, s, &e) < 0)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "%s: %s", k,
				    e.msg);
		if (family && c->a.family != family)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "%s: %s is not an IPv%d pool", k, s, family == AF_INET ? 4 : 6);
		r->families |= c->a.family == AF_INET ? IPAM_V4 : IPAM_V6;
		r->n_pools++;
	}
	return 0;
}


static const char *const conf_keys[] = {
	"cniVersion", "name", "type", "mode", "datastore", "state_dir", "ipv4_pools", "ipv6_pools",
	"pools", "mtu", "log_file", "log_level", "policy_setup_timeout_seconds", "kubeconfig",
	"agent_socket", "policy_timeout_action", "kvnet_conf", "network",
	"prevResult", "runtimeConfig", "capabilities", "args", "dns",
	"cni.dev/valid-attachments", "cni.dev/attachments",
};
/* Parse and validate the network configuration in r->text (the whole of it, or only
 * cniVersion when !full, for VERSION). 0, or -1 with f filled. No I/O. */
int cni_conf_parse(struct cni_req *r, bool full, struct cni_fail *f)
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
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "cniVersion: missing");
	}
	r->vidx = -1;
	for (int i = 0; i < CNI_NVERSIONS; i++)
		if (strcmp(v, cni_versions[i]) == 0)
			r->vidx = i;
	if (r->vidx < 0)
		return cni_fail(f, CNI_E_VERSION, "incompatible CNI version",
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
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "unknown field(s): %s", unknown);

	rc = conf_str(r, "name", r->name, sizeof(r->name), f);
	if (rc <= 0)
		return rc < 0 ? -1
			      : cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				     "name: missing");
	if (!r->name[0])
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "name: empty");
	char s[64];
	rc = conf_str(r, "type", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	if (rc == 1 && strcmp(s, "kvnet") != 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "type: '%s' is not kvnet", s);
	int net = conf_str(r, "network", r->network, sizeof(r->network), f);
	if (net < 0)
		return -1;
	if (net == 1 && !kube_name_is_label(r->network))
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"network: '%s' is not an L2Network name (a DNS-1123 label)",
				r->network);
	rc = conf_str(r, "mode", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->mode = cni_mode_find(rc == 1 ? s : net == 1 ? "l2" : "routed");
	if (!r->mode) {
		char names[128];
		cni_mode_names(names, sizeof(names));
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"mode: '%s' is not a data-plane mode (want %s)", s, names);
	}
	bool l2 = strcmp(r->mode->name, "l2") == 0;
	if (l2 && net != 1)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"mode l2 needs \"network\": the name of an L2Network");
	if (!l2 && net == 1)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"network %s: an L2Network is mode l2, not %s", r->network,
				r->mode->name);
	rc = conf_str(r, "datastore", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_DATASTORE : 0;
	r->kube = rc == 1 && strcmp(s, "kubernetes") == 0;
	if (rc == 1 && !r->kube && strcmp(s, "file") != 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "datastore: '%s' is neither file nor kubernetes", s);
	if ((rc = conf_str(r, "kubeconfig", r->kubeconfig, sizeof(r->kubeconfig), f)) < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_KUBECONFIG : 0;
	rc = conf_str(r, "kvnet_conf", r->kvnet_conf, sizeof(r->kvnet_conf), f);
	if (rc < 0)
		return -1;
	if (rc == 1 && r->kvnet_conf[0] != '/')
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"kvnet_conf: '%s' is not an absolute path", r->kvnet_conf);
	rc = conf_str(r, "state_dir", r->state_dir, sizeof(r->state_dir), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_STATE_DIR : 0;
	if (rc == 0)
		snprintf(r->state_dir, sizeof(r->state_dir), "%s", CNI_DEFAULT_STATE);
	if (r->state_dir[0] != '/')
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "state_dir: '%s' is not an absolute path", r->state_dir);
	if (conf_pools(r, "ipv4_pools", AF_INET, f) < 0 ||
	    conf_pools(r, "ipv6_pools", AF_INET6, f) < 0 || conf_pools(r, "pools", 0, f) < 0)
		return -1;
	if (l2 && r->n_pools)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				"network %s: the pools are the L2Network's subnets; drop "
				"ipv4_pools, ipv6_pools and pools", r->network);
	if (r->n_pools == 0 && !l2)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "no pools: set ipv4_pools, ipv6_pools or pools");
	uint64_t u;
	rc = conf_uint(r, "mtu", 65535, &u, f);
	if (rc < 0)
		return -1;
	if (rc == 1 && u != 0 && u < 68)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "mtu: %llu is below 68", (unsigned long long)u);
	r->mtu = rc == 1 ? (uint32_t)u : 0;
	r->given |= rc == 1 ? CNI_GIVEN_MTU : 0;
	if ((rc = conf_uint(r, "policy_setup_timeout_seconds", 3600, &u, f)) < 0)
		return -1;
	r->policy_timeout = rc == 1 ? (uint32_t)u : 0;
	r->given |= rc == 1 ? CNI_GIVEN_POLICY_TIMEOUT : 0;
	rc = conf_str(r, "policy_timeout_action", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_POLICY_ACTION : 0;
	r->policy_continue = rc == 1 && strcmp(s, "continue") == 0;
	if (rc == 1 && !r->policy_continue && strcmp(s, "fail") != 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "policy_timeout_action: '%s' is neither fail nor continue", s);
	rc = conf_str(r, "agent_socket", r->agent_socket, sizeof(r->agent_socket), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_SOCKET : 0;
	if (rc == 0)
		snprintf(r->agent_socket, sizeof(r->agent_socket), "%s", CNI_DEFAULT_SOCKET);
	if (r->agent_socket[0] != '/')
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "agent_socket: '%s' is not an absolute path", r->agent_socket);
	enum log_level lvl = LOG_LVL_INFO;
	rc = conf_str(r, "log_level", s, sizeof(s), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_LOG_LEVEL : 0;
	if (rc == 1 && !log_level_parse(s, &lvl))
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "log_level: '%s' is not error, warn, info or debug", s);
	r->log.level = lvl;
	rc = conf_str(r, "log_file", r->log_file, sizeof(r->log_file), f);
	if (rc < 0)
		return -1;
	r->given |= rc == 1 ? CNI_GIVEN_LOG_FILE : 0;
	if (rc == 1 && r->log_file[0] != '/')
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "log_file: '%s' is not an absolute path", r->log_file);
	r->prev = json_get(&r->doc, 0, "prevResult");
	if (r->prev >= 0 && json_type(&r->doc, r->prev) != JSON_OBJECT)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "prevResult: must be an object");
	r->annots = -1;
	int rt = json_get(&r->doc, 0, "runtimeConfig");
	if (rt >= 0 && json_type(&r->doc, rt) != JSON_OBJECT)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "runtimeConfig: must be an object");
	if (rt >= 0)
		r->annots = json_get(&r->doc, rt, CNI_CAP_ANNOTATIONS);
	int mt = rt >= 0 ? json_get(&r->doc, rt, "mac") : -1;
	if (mt >= 0) {
		struct err me = { 0 };
		if (json_type(&r->doc, mt) != JSON_STRING || json_str(&r->doc, mt, s, sizeof(s)) < 0 ||
		    ipam_mac_parse(s, r->mac, NULL, &me) < 0)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
					"runtimeConfig.mac: %s", me.msg[0] ? me.msg :
					"must be a MAC string aa:bb:cc:dd:ee:ff");
		r->has_mac = true;
	}
	if (r->annots >= 0) {
		if (json_type(&r->doc, r->annots) != JSON_OBJECT)
			return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
				    "runtimeConfig." CNI_CAP_ANNOTATIONS ": must be an object");
		json_iter_init(&it, &r->doc, r->annots);
		while (json_iter_next(&it, &k, &val))
			if (json_type(&r->doc, val) != JSON_STRING)
				return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
					    "runtimeConfig." CNI_CAP_ANNOTATIONS
					    ": every value must be a string");
	}
	r->attach = json_get(&r->doc, 0, "cni.dev/valid-attachments");
	if (r->attach < 0)
		r->attach = json_get(&r->doc, 0, "cni.dev/attachments");
	if (r->attach >= 0 && json_type(&r->doc, r->attach) != JSON_ARRAY)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
			    "cni.dev/valid-attachments: must be an array");
	return 0;
}

/* Environment checks per command. */
int cni_env_check(const struct cni_req *r, bool need_netns, struct cni_fail *f)
{
	if (!r->cid)
		return cni_fail(f, CNI_E_ENV, "missing environment", "CNI_CONTAINERID is not set");
	if (!cid_valid(r->cid))
		return cni_fail(f, CNI_E_ENV, "invalid environment",
			    "CNI_CONTAINERID '%s' must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ "
			    "(at most %d bytes)", r->cid, IPAM_CID_MAX);
	if (need_netns && !r->netns)
		return cni_fail(f, CNI_E_ENV, "missing environment", "CNI_NETNS is not set");
	if (!r->ifname)
		return cni_fail(f, CNI_E_ENV, "missing environment", "CNI_IFNAME is not set");
	if (!ifname_valid(r->ifname))
		return cni_fail(f, CNI_E_ENV, "invalid environment",
			    "CNI_IFNAME '%s': at most 15 bytes, no '/', ':' or whitespace", r->ifname);
	return 0;
}

