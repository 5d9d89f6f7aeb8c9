/* nodeconf — the node configuration of a CNI call (nodeconf.h). */
#include "cni/nodeconf.h"

#include "ipam/ipam.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

/* One node key: the conflist's text, kvnet.conf's text, and where to store the result. */
struct node_key {
	unsigned bit;	      /* CNI_GIVEN_* */
	const char *cni;      /* the conflist key */
	const char *section;  /* kvnet.conf section */
	const char *key;      /* kvnet.conf key */
};

static const struct node_key node_keys[] = {
	{ CNI_GIVEN_DATASTORE, "datastore", "datastore", "type" },
	{ CNI_GIVEN_STATE_DIR, "state_dir", "datastore", "state_dir" },
	{ CNI_GIVEN_KUBECONFIG, "kubeconfig", "kubernetes", "kubeconfig" },
	{ CNI_GIVEN_SOCKET, "agent_socket", "agent", "socket" },
	{ CNI_GIVEN_LOG_LEVEL, "log_level", "cni", "log_level" },
	{ CNI_GIVEN_LOG_FILE, "log_file", "cni", "log_file" },
	{ CNI_GIVEN_POLICY_TIMEOUT, "policy_setup_timeout_seconds", "cni",
	  "policy_setup_timeout_seconds" },
	{ CNI_GIVEN_POLICY_ACTION, "policy_timeout_action", "cni", "policy_timeout_action" },
};

/* The value of key k as text, from the request (conflist) or from cf. */
static void text_of(const struct node_key *k, const struct cni_req *r, const struct conf *cf,
		    bool from_conf, char *buf, size_t cap)
{
	switch (k->bit) {
	case CNI_GIVEN_DATASTORE:
		snprintf(buf, cap, "%s",
			 (from_conf ? cf->datastore.type == CONF_DATASTORE_KUBERNETES : r->kube)
				 ? "kubernetes" : "file");
		return;
	case CNI_GIVEN_STATE_DIR:
		snprintf(buf, cap, "%s", from_conf ? cf->datastore.state_dir : r->state_dir);
		return;
	case CNI_GIVEN_KUBECONFIG:
		snprintf(buf, cap, "%s", from_conf ? cf->kubernetes.kubeconfig : r->kubeconfig);
		return;
	case CNI_GIVEN_SOCKET:
		snprintf(buf, cap, "%s", from_conf ? cf->agent.socket : r->agent_socket);
		return;
	case CNI_GIVEN_LOG_LEVEL:
		snprintf(buf, cap, "%s", log_level_name(from_conf ? cf->cni.log_level : r->log.level));
		return;
	case CNI_GIVEN_LOG_FILE:
		snprintf(buf, cap, "%s", from_conf ? cf->cni.log_file : r->log_file);
		return;
	case CNI_GIVEN_POLICY_TIMEOUT:
		snprintf(buf, cap, "%u",
			 from_conf ? cf->cni.policy_setup_timeout_seconds : r->policy_timeout);
		return;
	case CNI_GIVEN_POLICY_ACTION:
		snprintf(buf, cap, "%s",
			 (from_conf ? cf->cni.policy_timeout_action == CONF_TIMEOUT_CONTINUE
				    : r->policy_continue) ? "continue" : "fail");
		return;
	}
	buf[0] = 0;
}

/* Take key k's value from cf into r. */
static void take(const struct node_key *k, struct cni_req *r, const struct conf *cf)
{
	switch (k->bit) {
	case CNI_GIVEN_DATASTORE:
		r->kube = cf->datastore.type == CONF_DATASTORE_KUBERNETES;
		return;
	case CNI_GIVEN_STATE_DIR:
		snprintf(r->state_dir, sizeof(r->state_dir), "%s", cf->datastore.state_dir);
		return;
	case CNI_GIVEN_KUBECONFIG:
		snprintf(r->kubeconfig, sizeof(r->kubeconfig), "%s", cf->kubernetes.kubeconfig);
		return;
	case CNI_GIVEN_SOCKET:
		snprintf(r->agent_socket, sizeof(r->agent_socket), "%s", cf->agent.socket);
		return;
	case CNI_GIVEN_LOG_LEVEL:
		r->log.level = cf->cni.log_level;
		return;
	case CNI_GIVEN_LOG_FILE:
		snprintf(r->log_file, sizeof(r->log_file), "%s", cf->cni.log_file);
		return;
	case CNI_GIVEN_POLICY_TIMEOUT:
		r->policy_timeout = cf->cni.policy_setup_timeout_seconds;
		return;
	case CNI_GIVEN_POLICY_ACTION:
		r->policy_continue = cf->cni.policy_timeout_action == CONF_TIMEOUT_CONTINUE;
		return;
	}
}

int cni_node_apply(struct cni_req *r, const struct conf *cf, const char *path,
		   const char *env_node_name, struct cni_fail *f)
{
	for (size_t i = 0; i < sizeof(node_keys) / sizeof(node_keys[0]); i++) {
		const struct node_key *k = &node_keys[i];
		bool in_conf = conf_given(cf, k->section, k->key);
		bool in_cni = r->given & k->bit;
		if (in_conf && in_cni) {
			char a[4096], b[4096];
			text_of(k, r, cf, false, a, sizeof(a));
			text_of(k, r, cf, true, b, sizeof(b));
			if (strcmp(a, b) != 0)
				return cni_fail(f, CNI_E_CONFIG, "invalid network configuration",
						"%s: '%s' in the network configuration disagrees "
						"with [%s] %s = '%s' in %s; node settings belong in "
						"kvnet.conf (remove %s from the conflist)",
						k->cni, a, k->section, k->key, b, path, k->cni);
		}
		if (in_conf || !in_cni)
			take(k, r, cf);
	}
	if (!(r->given & CNI_GIVEN_MTU) && conf_given(cf, "network", "mtu"))
		r->mtu = cf->network.mtu;
	snprintf(r->kube_context, sizeof(r->kube_context), "%s", cf->kubernetes.context);
	char name[256];
	conf_node_name(cf, env_node_name, name, sizeof(name));
	ipam_name_map(name, r->node);
	return 0;
}
