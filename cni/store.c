/* store — datastore, IPAM parameters and ordinary pods' operations (store.h). */
#include "cni/store.h"

#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lib/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

/* Open the datastore r names into s (close with store_close). Failure is CNI code
 * `code` (11 for ADD/DEL/CHECK/GC, 50 for STATUS). No I/O to the API server yet: the
 * kube client connects on its first call. */
int cni_store_open(struct cni_store *s, const struct cni_req *r, int code,
		      struct cni_fail *f)
{
	struct err e = { 0 };
	memset(s, 0, sizeof(*s));
	s->kube = r->kube;
	if (!r->kube) {
		if (ipam_ds_file_open(&s->df, r->state_dir, &e) < 0)
			return cni_fail(f, code, "datastore unavailable", "file datastore: %s",
				    e.msg);
		s->ds = ipam_ds_file(&s->df);
		return 0;
	}
	struct kcfg_opts ko = { .kubeconfig = r->kubeconfig,
				.context = r->kube_context, .envp = environ };
	if (kcfg_load(&s->kc, &ko, &e) < 0)
		return cni_fail(f, code, "datastore unavailable", "kubernetes datastore: %s",
			    e.msg);
	if (s->kc->insecure)
		log_msg(&r->log, LOG_LVL_WARN,
			"cni: %s: insecure-skip-tls-verify is set: the API server's certificate "
			"is NOT verified", s->kc->source);
	s->c = kube_client_from_kcfg(s->kc, CNI_KUBE_TIMEOUT_MS, &e);
	if (!s->c) {
		kcfg_free(s->kc);
		s->kc = NULL;
		return cni_fail(f, code, "datastore unavailable", "kubernetes datastore: %s",
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

void cni_store_close(struct cni_store *s)
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

/* Start an IPAM request for an ordinary pod: the handle "<network>.<containerID>". */
int cni_ipam_init(struct cni_ipam *c, const struct cni_req *r, struct cni_fail *f)
{
	struct err e = { 0 };
	memset(c, 0, sizeof(*c));
	c->r = r;
	if (ipam_handle_pod(c->handle, cni_ipam_net(r), r->cid, &e) < 0)
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "%s", e.msg);
	return 0;
}

const char *cni_ipam_net(const struct cni_req *r)
{
	return r->network[0] ? r->network : r->name;
}

int cni_sync_pools(struct ipam_state *st, const struct cni_req *r, struct err *e)
{
	for (unsigned i = 0; i < r->n_pools; i++) {
		struct ipam_pool *have = NULL;
		for (unsigned j = 0; j < st->n_pools; j++)
			if (st->pools[j].cidr.prefix == r->pools[i].prefix &&
			    ip_eq(&st->pools[j].cidr.a, &r->pools[i].a))
				have = &st->pools[j];
		char name[IPAM_NAME_MAX + 1];
		ipam_block_name(&r->pools[i], name, sizeof(name));
		const struct ip_addr *gw = &r->pool_gw[i];
		if (!have) {
			int rc = ipam_pool_add(st, name, &r->pools[i], 0, gw, gw->family ? 1 : 0, e);
			if (rc < 0)
				return rc;
			ipam_pool_set_network(st, &st->pools[st->n_pools - 1], r->network);
			continue;
		}
		if (!have->network[0] && r->network[0] && ipam_pool_adoptable(st, have, r->network))
			ipam_pool_set_network(st, have, r->network);
		if (strcmp(have->network, r->network) != 0)
			return err_setx(e, EEXIST, "pool %s: %s is %s%s, not %s%s", have->name,
					name, have->network[0] ? "L2Network " : "a routed pool",
					have->network, r->network[0] ? "L2Network " : "routed network ",
					r->network[0] ? r->network : r->name);
		int rc = ipam_pool_reserve(st, have, gw, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cni_mac_pick(struct cni_ipam *c, struct err *e)
{
	const struct cni_req *r = c->r;
	if (!r->has_mac)
		return 0;
	if (c->has_mac && memcmp(c->mac, r->mac, 6) != 0) {
		const uint8_t *a = c->mac, *b = r->mac;
		return err_setx(e, EINVAL, "handle %s: MAC conflict: the runtime asks for "
				"%02x:%02x:%02x:%02x:%02x:%02x (runtimeConfig.mac / CNI_ARGS MAC), "
				"the VM's reservation says %02x:%02x:%02x:%02x:%02x:%02x", c->handle,
				b[0], b[1], b[2], b[3], b[4], b[5], a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	memcpy(c->mac, r->mac, 6);
	c->has_mac = true;
	return 0;
}

/* The IPAMConfig in the loaded state must still say what cni_vm_resolve() saw (it read the
 * record before this update): -EAGAIN (try again) when it changed in between. */
int cni_persist_still(const struct ipam_state *st, bool off, struct err *e)
{
	struct ipam_config cfg;
	ipam_config_get(st, &cfg);
	if ((cfg.vm_persistence == IPAM_PERSIST_DISABLED) == off)
		return 0;
	return err_setx(e, EAGAIN, "IPAMConfig %s: kubeVirtVMAddressPersistence changed to %s "
			"during this ADD", IPAM_CONFIG_NAME, ipam_persist_name(cfg.vm_persistence));
}

void cni_attrs(const struct cni_ipam *c, struct ipam_attrs *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->pod, sizeof(a->pod), "%s", c->r->pod_name);
	snprintf(a->ns, sizeof(a->ns), "%s", c->r->pod_ns);
	snprintf(a->node, sizeof(a->node), "%s", c->r->node);
	snprintf(a->ifname, sizeof(a->ifname), "%s", c->r->ifname);
	snprintf(a->container_id, sizeof(a->container_id), "%s", c->r->cid);
	const uint8_t *m = c->r->mac;
	if (c->r->has_mac)
		snprintf(a->mac, sizeof(a->mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
			 m[3], m[4], m[5]);
}

int cni_op_alloc(struct ipam_state *st, void *arg, struct err *e)
{
	struct cni_ipam *c = arg;
	int rc = c->persist_off ? cni_persist_still(st, true, e) : 0;
	if (rc < 0)
		return rc;
	rc = cni_sync_pools(st, c->r, e);
	if (rc < 0 || (rc = ipam_handle_mend(st, c->handle, e)) < 0)
		return rc;
	c->existed = ipam_handle_find(st, c->handle) != NULL;
	struct ipam_attrs a;
	cni_attrs(c, &a);
	if ((rc = cni_mac_pick(c, e)) < 0)
		return rc;
	return ipam_alloc_net(st, c->handle, c->r->node, c->r->families, c->r->network, &a,
			      c->ip, &c->n, e);
}

int cni_op_release(struct ipam_state *st, void *arg, struct err *e)
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

/* One IPAM update: fn over the datastore; over `open` when given (an open kube store,
 * reusing its connection), else over one opened and closed here. */
int cni_ipam_run(const struct cni_req *r, struct cni_store *open, ipam_ds_fn fn,
		 bool one_handle, struct cni_ipam *c, struct cni_fail *f)
{
	struct cni_store own;
	struct cni_store *cs = open ? open : &own;
	if (!open && cni_store_open(&own, r, CNI_E_TRYLATER, f) < 0)
		return -1;
	struct err e = { 0 };
	/* operations on this pod's handle alone load only it (kubernetes: a GET, not a
	 * LIST of every handle); anything else loads everything */
	struct ipam_ds_scope one = { .handle = c->handle };
	int rc = ipam_ds_update_scoped(&cs->ds, one_handle ? &one : NULL, fn, c, &e);
	if (!open)
		cni_store_close(&own);
	if (rc == 0)
		return 0;
	switch (-rc) {
	case ENOSPC:
		return cni_fail(f, CNI_E_INTERNAL, "no free address", "ipam: %s", e.msg);
	case EINVAL:
	case EEXIST:
		return cni_fail(f, CNI_E_CONFIG, "invalid network configuration", "ipam: %s", e.msg);
	case EADDRINUSE: /* cni_op_vm_alloc: the VM's live owner keeps its addresses */
		return cni_fail(f, CNI_E_INTERNAL, "VM pod rejected", "%s", e.msg);
	case EAGAIN:
	case EPROTO: /* the API answered, but not with JSON or not the expected object */
	case EIO:
	case EACCES:
	case EROFS:
		return cni_fail(f, CNI_E_TRYLATER, "datastore unavailable", "ipam: %s", e.msg);
	}
	return cni_fail(f, CNI_E_INTERNAL, "ipam failed", "ipam: %s", e.msg);
}
