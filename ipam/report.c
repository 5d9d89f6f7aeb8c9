/* ipam report: usage, ownership, cross-checks, report JSON, repairs; see report.h. */
#include "ipam/report.h"

#include "ipam/macs.h"
#include "lib/json.h"
#include "lib/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* --- liveness ------------------------------------------------------------------------- */

void ipam_live_init(struct ipam_live *l)
{
	memset(l, 0, sizeof(*l));
}

void ipam_live_free(struct ipam_live *l)
{
	free(l->pods);
	free(l->vmis);
	free(l->vms);
	memset(l, 0, sizeof(*l));
}

static int grow(void **arr, unsigned n, unsigned *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	unsigned nc = *cap ? *cap * 2 : 16;
	if (nc < *cap || nc > (1u << 24))
		return -ENOMEM;
	void *p = realloc(*arr, (size_t)nc * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

int ipam_live_add_pod(struct ipam_live *l, const struct ipam_live_pod *p)
{
	if (grow((void **)&l->pods, l->n_pods, &l->cap_pods, sizeof(*p)))
		return -ENOMEM;
	l->pods[l->n_pods++] = *p;
	return 0;
}

static int add_obj(struct ipam_live_obj **arr, unsigned *n, unsigned *cap,
		   const struct ipam_live_obj *o)
{
	if (grow((void **)arr, *n, cap, sizeof(*o)))
		return -ENOMEM;
	(*arr)[(*n)++] = *o;
	return 0;
}

int ipam_live_add_vmi(struct ipam_live *l, const struct ipam_live_obj *o)
{
	return add_obj(&l->vmis, &l->n_vmis, &l->cap_vmis, o);
}

int ipam_live_add_vm(struct ipam_live *l, const struct ipam_live_obj *o)
{
	return add_obj(&l->vms, &l->n_vms, &l->cap_vms, o);
}

static const struct ipam_live_pod *pod_find(const struct ipam_live *l, const char *ns,
					    const char *name, const char *uid)
{
	for (unsigned i = 0; i < l->n_pods; i++) {
		const struct ipam_live_pod *p = &l->pods[i];
		if (p->done || strcmp(p->ns, ns) || strcmp(p->name, name))
			continue;
		if (uid && uid[0] && strcmp(p->uid, uid))
			continue;
		return p;
	}
	return NULL;
}

static const struct ipam_live_obj *obj_find(const struct ipam_live_obj *arr, unsigned n,
					    const char *ns, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(arr[i].ns, ns) && !strcmp(arr[i].name, name))
			return &arr[i];
	return NULL;
}

static bool is_reservation(const struct ipam_attrs *a)
{
	return a->vmi_name[0] && !a->pod[0] && !a->container_id[0] && !a->active.uid[0] &&
	       !a->alternate.uid[0];
}

enum ipam_owner_state ipam_owner_judge(const struct ipam_live *live, const struct ipam_attrs *a,
				       char *why, size_t cap)
{
	const struct ipam_owner *slots[2] = {&a->active, &a->alternate};
	if (is_reservation(a)) {
		snprintf(why, cap, "reserved for VM %s/%s", a->ns, a->vmi_name);
		return IPAM_OWNER_RESERVED;
	}
	if (!live || !live->known) {
		snprintf(why, cap, "no API server to ask");
		return IPAM_OWNER_UNKNOWN;
	}
	if (a->vmi_name[0]) {
		for (unsigned i = 0; i < 2; i++) {
			const struct ipam_owner *o = slots[i];
			const struct ipam_live_pod *p =
			    o->uid[0] ? pod_find(live, o->ns, o->name, o->uid) : NULL;
			if (p) {
				snprintf(why, cap, "pod %s/%s (uid %s) exists", p->ns, p->name,
					 p->uid);
				return IPAM_OWNER_ALIVE;
			}
		}
		if (obj_find(live->vmis, live->n_vmis, a->ns, a->vmi_name)) {
			snprintf(why, cap, "VMI %s/%s exists", a->ns, a->vmi_name);
			return IPAM_OWNER_ALIVE;
		}
		if (obj_find(live->vms, live->n_vms, a->ns, a->vmi_name)) {
			snprintf(why, cap, "VM %s/%s exists", a->ns, a->vmi_name);
			return IPAM_OWNER_ALIVE;
		}
		snprintf(why, cap, "VM %s/%s, its VMI and its pods are gone", a->ns, a->vmi_name);
		return IPAM_OWNER_GONE;
	}
	if (a->ns[0] && a->pod[0]) {
		if (pod_find(live, a->ns, a->pod, NULL)) {
			snprintf(why, cap, "pod %s/%s exists", a->ns, a->pod);
			return IPAM_OWNER_ALIVE;
		}
		snprintf(why, cap, "pod %s/%s is gone", a->ns, a->pod);
		return IPAM_OWNER_GONE;
	}
	snprintf(why, cap, "no pod or VM recorded (container %s)",
		 a->container_id[0] ? a->container_id : "unknown");
	return IPAM_OWNER_GONE;
}

const char *ipam_owner_state_name(enum ipam_owner_state s)
{
	switch (s) {
	case IPAM_OWNER_ALIVE:
		return "alive";
	case IPAM_OWNER_GONE:
		return "gone";
	case IPAM_OWNER_RESERVED:
		return "reserved";
	case IPAM_OWNER_UNKNOWN:
		return "unknown";
	}
	return "?";
}

/* --- usage ---------------------------------------------------------------------------- */

static unsigned bits_of(const struct ip_addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

const char *ipam_alloc_node(const struct ipam_attrs *a)
{
	return a->active.uid[0] && a->active.node[0] ? a->active.node : a->node;
}

static bool cidr_inside(const struct ipam_cidr *in, const struct ipam_cidr *out)
{
	return in->a.family == out->a.family && in->prefix >= out->prefix &&
	       ipam_cidr_contains(out, &in->a);
}

void ipam_pool_usage(const struct ipam_state *st, unsigned i, struct ipam_pool_usage *u)
{
	const struct ipam_pool *p = &st->pools[i];
	memset(u, 0, sizeof(*u));
	unsigned host = bits_of(&p->cidr.a) - p->cidr.prefix;
	unsigned __int128 size = host >= 128 ? ~(unsigned __int128)0 : (unsigned __int128)1 << host;
	/* first address, v4 last address, explicit ones (counted once, only inside) */
	unsigned res = 1;
	if (p->cidr.a.family == AF_INET && size > 1)
		res++;
	struct ip_addr last = p->cidr.a;
	for (unsigned b = p->cidr.prefix; b < bits_of(&last); b++)
		last.b[b / 8] |= (uint8_t)(1u << (7 - b % 8));
	for (unsigned k = 0; k < p->n_reserved; k++) {
		const struct ip_addr *r = &p->reserved[k];
		if (!ipam_cidr_contains(&p->cidr, r) || ip_eq(r, &p->cidr.a) ||
		    (p->cidr.a.family == AF_INET && ip_eq(r, &last)))
			continue;
		bool dup = false;
		for (unsigned j = 0; j < k; j++)
			dup |= ip_eq(r, &p->reserved[j]);
		res += !dup;
	}
	u->n_reserved_addrs = res;
	u->total = size > res ? size - res : 0;
	for (unsigned b = 0; b < st->n_blocks; b++) {
		const struct ipam_block *bl = &st->blocks[b];
		if (!cidr_inside(&bl->cidr, &p->cidr))
			continue;
		u->blocks++;
		for (unsigned o = 0; o < bl->size; o++) {
			const struct ipam_attrs *a = bl->slot[o];
			if (!a)
				continue;
			u->used++;
			const char *n = ipam_alloc_node(a);
			if (bl->affinity[0] && n[0] && strcmp(n, bl->affinity))
				u->borrowed++;
		}
	}
}

const char *ipam_u128_str(unsigned __int128 v, char *buf, size_t cap)
{
	char tmp[48];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v && n < 47);
	size_t k = 0;
	while (n > 0 && k + 1 < cap)
		buf[k++] = tmp[--n];
	if (cap)
		buf[k] = 0;
	return buf;
}

unsigned ipam_percent(unsigned __int128 part, unsigned __int128 whole)
{
	if (!whole)
		return 0;
	if (part >= whole)
		return 100;
	/* part * 100 could overflow only near 2^121; scale down first then */
	while (part > ((~(unsigned __int128)0) / 100)) {
		part >>= 1;
		whole >>= 1;
	}
	return (unsigned)(part * 100 / whole);
}

/* --- pools ---------------------------------------------------------------------------- */

int ipam_pool_ensure(struct ipam_state *st, const struct ipam_cidr *c, unsigned block,
		     bool *existed, struct err *e)
{
	*existed = false;
	for (unsigned i = 0; i < st->n_pools; i++)
		if (st->pools[i].cidr.prefix == c->prefix && ip_eq(&st->pools[i].cidr.a, &c->a)) {
			*existed = true;
			if (block && block != st->pools[i].block_prefix)
				return err_setx(e, EEXIST, "pool %s exists with block size /%u",
						st->pools[i].name, st->pools[i].block_prefix);
			return 0;
		}
	char name[IPAM_NAME_MAX + 1];
	ipam_block_name(c, name, sizeof(name));
	return ipam_pool_add(st, name, c, block, NULL, 0, e);
}

int ipam_pool_delete(struct ipam_state *st, const struct ipam_cidr *c, struct err *e)
{
	char cs[64], as[INET6_ADDRSTRLEN];
	ipam_cidr_str(c, cs, sizeof(cs));
	unsigned pi;
	for (pi = 0; pi < st->n_pools; pi++)
		if (st->pools[pi].cidr.prefix == c->prefix &&
		    ip_eq(&st->pools[pi].cidr.a, &c->a))
			break;
	if (pi == st->n_pools)
		return err_setx(e, ENOENT, "pool %s: delete: no such pool", cs);
	unsigned used = 0;
	struct ip_addr one;
	const char *holder = NULL;
	for (unsigned b = 0; b < st->n_blocks; b++) {
		const struct ipam_block *bl = &st->blocks[b];
		if (!cidr_inside(&bl->cidr, c))
			continue;
		for (unsigned o = 0; o < bl->size; o++)
			if (bl->slot[o]) {
				if (!used++) {
					one = ipam_block_addr(bl, o);
					holder = bl->slot[o]->handle;
				}
			}
	}
	if (used)
		return err_setx(e, EBUSY,
				"pool %s: delete refused: %u address%s in use (%s held by %s)", cs,
				used, used == 1 ? "" : "es", ipam_addr_str(&one, as, sizeof(as)),
				holder);
	for (unsigned b = 0; b < st->n_blocks;) {
		struct ipam_block *bl = &st->blocks[b];
		if (!cidr_inside(&bl->cidr, c)) {
			b++;
			continue;
		}
		free(bl->slot);
		st->blocks[b] = st->blocks[--st->n_blocks];
	}
	st->pools[pi] = st->pools[--st->n_pools];
	return 0;
}

/* --- handles -------------------------------------------------------------------------- */

static struct ipam_handle *handle_get(struct ipam_state *st, const char *id)
{
	for (unsigned i = 0; i < st->n_handles; i++)
		if (!strcmp(st->handles[i].id, id))
			return &st->handles[i];
	return NULL;
}

int ipam_handle_link(struct ipam_state *st, const char *id, const struct ip_addr *a)
{
	if (!ipam_name_valid(id))
		return -EINVAL;
	struct ipam_handle *h = handle_get(st, id);
	if (!h) {
		if (grow((void **)&st->handles, st->n_handles, &st->cap_handles,
			 sizeof(*st->handles)))
			return -ENOMEM;
		h = &st->handles[st->n_handles++];
		memset(h, 0, sizeof(*h));
		snprintf(h->id, sizeof(h->id), "%s", id);
	}
	for (unsigned i = 0; i < h->n; i++)
		if (ip_eq(&h->ip[i], a))
			return 0;
	if (h->n >= IPAM_HANDLE_IPS_MAX)
		return -E2BIG;
	h->ip[h->n++] = *a;
	return 0;
}

int ipam_handle_unlink(struct ipam_state *st, const char *id, const struct ip_addr *a)
{
	struct ipam_handle *h = handle_get(st, id);
	if (!h)
		return -ENOENT;
	bool found = !a;
	for (unsigned i = 0; a && i < h->n; i++)
		if (ip_eq(&h->ip[i], a)) {
			h->ip[i] = h->ip[--h->n];
			found = true;
			break;
		}
	if (!found)
		return -ENOENT;
	if (!a || h->n == 0)
		st->handles[h - st->handles] = st->handles[--st->n_handles];
	return 0;
}

/* --- check ---------------------------------------------------------------------------- */

void ipam_report_init(struct ipam_report *r)
{
	memset(r, 0, sizeof(*r));
}

void ipam_report_free(struct ipam_report *r)
{
	free(r->p);
	memset(r, 0, sizeof(*r));
}

const char *ipam_problem_name(enum ipam_problem_kind k)
{
	switch (k) {
	case IPAM_P_LEAKED:
		return "LeakedAllocation";
	case IPAM_P_HANDLE_STALE:
		return "HandleWithoutAllocation";
	case IPAM_P_NO_HANDLE:
		return "AllocationWithoutHandle";
	case IPAM_P_BLOCK_COUNT:
		return "BlockCountMismatch";
	case IPAM_P_DUPLICATE:
		return "DuplicateAddress";
	case IPAM_P_DUP_MAC:
		return "DuplicateMAC";
	case IPAM_P_L2_NETWORK:
		return "L2NetworkMismatch";
	case IPAM_P_L2_SUBNET:
		return "OutsideL2Subnet";
	case IPAM_P_L2_GATEWAY:
		return "L2GatewayAllocated";
	}
	return "?";
}

const char *ipam_repair_name(enum ipam_repair r)
{
	switch (r) {
	case IPAM_R_NONE:
		return "none";
	case IPAM_R_RELEASE:
		return "release";
	case IPAM_R_UNLINK:
		return "unlink";
	case IPAM_R_RELINK:
		return "relink";
	case IPAM_R_RECOUNT:
		return "recount";
	}
	return "?";
}

static struct ipam_problem *add_problem(struct ipam_report *r, enum ipam_problem_kind k,
					enum ipam_repair rep)
{
	if (grow((void **)&r->p, r->n, &r->cap, sizeof(*r->p)))
		return NULL;
	struct ipam_problem *p = &r->p[r->n++];
	memset(p, 0, sizeof(*p));
	p->kind = k;
	p->repair = rep;
	return p;
}

static bool handle_lists(const struct ipam_handle *h, const struct ip_addr *a)
{
	for (unsigned i = 0; h && i < h->n; i++)
		if (ip_eq(&h->ip[i], a))
			return true;
	return false;
}

static const struct ipam_handle *handle_find_c(const struct ipam_state *st, const char *id)
{
	for (unsigned i = 0; i < st->n_handles; i++)
		if (!strcmp(st->handles[i].id, id))
			return &st->handles[i];
	return NULL;
}

static int addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	return memcmp(a->b, b->b, 16);
}

static int cmp_block(const void *x, const void *y)
{
	const struct ipam_block *a = *(const struct ipam_block *const *)x;
	const struct ipam_block *b = *(const struct ipam_block *const *)y;
	return addr_cmp(&a->cidr.a, &b->cidr.a);
}

static int cmp_handle(const void *x, const void *y)
{
	const struct ipam_handle *a = *(const struct ipam_handle *const *)x;
	const struct ipam_handle *b = *(const struct ipam_handle *const *)y;
	return strcmp(a->id, b->id);
}

/* Is the owner of allocation a a live pod named p (the VM's owners, or the ordinary pod)? */
static bool owned_by(const struct ipam_attrs *a, const struct ipam_live_pod *p)
{
	if (a->vmi_name[0])
		return (a->active.uid[0] && !strcmp(a->active.uid, p->uid)) ||
		       (a->alternate.uid[0] && !strcmp(a->alternate.uid, p->uid));
	return !strcmp(a->ns, p->ns) && !strcmp(a->pod, p->name);
}

static int check_alloc(const struct ipam_state *st, const struct ipam_check_opts *o,
		       struct ipam_report *r, const struct ipam_block *b, unsigned ord)
{
	const struct ipam_attrs *a = b->slot[ord];
	struct ip_addr ad = ipam_block_addr(b, ord);
	char as[INET6_ADDRSTRLEN], why[IPAM_REPORT_DETAIL - 64];
	ipam_addr_str(&ad, as, sizeof(as));
	const struct ipam_live *live = o ? o->live : NULL;
	enum ipam_owner_state os = ipam_owner_judge(live, a, why, sizeof(why));
	const struct ipam_handle *h = handle_find_c(st, a->handle);
	if (os == IPAM_OWNER_RESERVED)
		r->reservations++;
	if (!handle_lists(h, &ad)) {
		bool live_owner = os == IPAM_OWNER_ALIVE || os == IPAM_OWNER_RESERVED ||
				  os == IPAM_OWNER_UNKNOWN;
		bool full = h && h->n >= IPAM_HANDLE_IPS_MAX;
		struct ipam_problem *p = add_problem(
		    r, IPAM_P_NO_HANDLE, live_owner && !full ? IPAM_R_RELINK : IPAM_R_RELEASE);
		if (!p)
			return -ENOMEM;
		p->has_ip = true;
		p->ip = ad;
		p->has_block = true;
		p->block = b->cidr;
		snprintf(p->handle, sizeof(p->handle), "%s", a->handle);
		snprintf(p->detail, sizeof(p->detail), "%s is allocated to handle %s, which %s; %s",
			 as, a->handle, h ? "does not list it" : "does not exist", why);
		return 0;
	}
	if (os != IPAM_OWNER_GONE)
		return 0;
	if (a->vmi_name[0] && o->vm_grace) {
		int64_t t = o->handle_time ? o->handle_time(o->user, a->handle) : -1;
		if (t >= 0 && o->now - t < (int64_t)o->vm_grace) {
			r->within_grace++;
			return 0;
		}
	}
	struct ipam_problem *p = add_problem(r, IPAM_P_LEAKED, IPAM_R_RELEASE);
	if (!p)
		return -ENOMEM;
	p->has_ip = true;
	p->ip = ad;
	p->has_block = true;
	p->block = b->cidr;
	snprintf(p->handle, sizeof(p->handle), "%s", a->handle);
	snprintf(p->detail, sizeof(p->detail), "%s (handle %s): %s", as, a->handle, why);
	return 0;
}

static bool in_cidr(const struct ipam_cidr *c, const struct ip_addr *a)
{
	return c->a.family == a->family && ipam_cidr_contains(c, a);
}

/* The L2 problems of the allocation at ord of block b in pool p: in an L2Network's pool,
 * a handle of another network, an address outside the subnet, the gateway; in an ordinary
 * pool, a handle of an L2Network. 0 or -ENOMEM. */
static int check_l2(const struct ipam_check_opts *o, struct ipam_report *r,
		    const struct ipam_pool *p, const struct ipam_block *b, unsigned ord)
{
	const struct ipam_attrs *a = b->slot[ord];
	struct ip_addr ad = ipam_block_addr(b, ord);
	char as[INET6_ADDRSTRLEN], cs[64];
	ipam_addr_str(&ad, as, sizeof(as));
	size_t nl = strlen(p->network);
	struct ipam_problem *q;
	if (!p->network[0]) {
		/* a pool of no L2Network: is the handle one of an L2Network's? */
		for (unsigned i = 0; o && o->l2nets && i < o->n_l2nets; i++) {
			const char *nm = o->l2nets[i].name;
			size_t l = strlen(nm);
			if (strncmp(a->handle, nm, l) || a->handle[l] != '.')
				continue;
			if (!(q = add_problem(r, IPAM_P_L2_NETWORK, IPAM_R_NONE)))
				return -ENOMEM;
			snprintf(q->detail, sizeof(q->detail),
				 "%s (handle %s of L2Network %s) is in pool %s, which serves no "
				 "L2Network", as, a->handle, nm, p->name);
			goto fill;
		}
		return 0;
	}
	if (strncmp(a->handle, p->network, nl) || a->handle[nl] != '.') {
		if (!(q = add_problem(r, IPAM_P_L2_NETWORK, IPAM_R_NONE)))
			return -ENOMEM;
		snprintf(q->detail, sizeof(q->detail),
			 "%s is in pool %s of L2Network %s, but handle %s is not of that network",
			 as, p->name, p->network, a->handle);
		goto fill;
	}
	const struct ipam_l2net *n = NULL;
	for (unsigned i = 0; o && o->l2nets && i < o->n_l2nets && !n; i++)
		if (!strcmp(o->l2nets[i].name, p->network))
			n = &o->l2nets[i];
	if (!n)
		return 0;
	bool v4 = ad.family == AF_INET;
	const struct ipam_cidr *sn = v4 ? &n->v4 : &n->v6;
	const struct ip_addr *gw = v4 ? &n->gw4 : &n->gw6;
	if (!(v4 ? n->has_v4 : n->has_v6) || !in_cidr(sn, &ad)) {
		if (!(q = add_problem(r, IPAM_P_L2_SUBNET, IPAM_R_NONE)))
			return -ENOMEM;
		if (v4 ? n->has_v4 : n->has_v6)
			snprintf(q->detail, sizeof(q->detail),
				 "%s (handle %s) is outside L2Network %s's subnet %s", as,
				 a->handle, n->name, ipam_cidr_str(sn, cs, sizeof(cs)));
		else
			snprintf(q->detail, sizeof(q->detail),
				 "%s (handle %s): L2Network %s has no IPv%c subnet", as, a->handle,
				 n->name, v4 ? '4' : '6');
		goto fill;
	}
	if (gw->family && ip_eq(gw, &ad)) {
		if (!(q = add_problem(r, IPAM_P_L2_GATEWAY, IPAM_R_NONE)))
			return -ENOMEM;
		snprintf(q->detail, sizeof(q->detail),
			 "%s is L2Network %s's gateway, allocated to handle %s", as, n->name,
			 a->handle);
		goto fill;
	}
	return 0;
fill:
	q->has_ip = true;
	q->ip = ad;
	q->has_block = true;
	q->block = b->cidr;
	snprintf(q->handle, sizeof(q->handle), "%s", a->handle);
	return 0;
}

/* DuplicateMAC: in each group of one MAC (sorted by address), the first allocation of a
 * handle on the network of an earlier allocation of another handle (so a VM with two
 * addresses is reported once). 0 or -ENOMEM. */
static int check_macs(const struct ipam_state *st, struct ipam_report *r)
{
	struct ipam_macs m;
	if (ipam_macs_index(&m, st) < 0)
		return -ENOMEM;
	char as[INET6_ADDRSTRLEN], fs[INET6_ADDRSTRLEN], net[IPAM_NAME_MAX + 1];
	for (unsigned i = 1; i < m.n; i++) {
		const struct ipam_mac_ref *x = &m.v[i];
		bool seen = false; /* x's handle came earlier in the group */
		for (unsigned j = i; !seen && j-- > 0 && !strcasecmp(m.v[j].a->mac, x->a->mac);)
			seen = !strcmp(m.v[j].a->handle, x->a->handle);
		for (unsigned j = i; !seen && j-- > 0 && !strcasecmp(m.v[j].a->mac, x->a->mac);) {
			const struct ipam_mac_ref *f = &m.v[j];
			if (!strcmp(f->a->handle, x->a->handle) ||
			    !ipam_alloc_network(f->a, net, sizeof(net)) ||
			    !ipam_alloc_on_network(x->a, net))
				continue;
			struct ipam_problem *p = add_problem(r, IPAM_P_DUP_MAC, IPAM_R_NONE);
			if (!p) {
				ipam_macs_free(&m);
				return -ENOMEM;
			}
			p->has_ip = true;
			p->ip = x->ip;
			const struct ipam_block *b = ipam_block_of(st, &x->ip);
			if (b) {
				p->has_block = true;
				p->block = b->cidr;
			}
			snprintf(p->handle, sizeof(p->handle), "%s", x->a->handle);
			snprintf(p->detail, sizeof(p->detail),
				 "mac %s of %s (%s) is also held by %s %s/%s (%s, handle %s) on "
				 "network %s", x->a->mac, ipam_addr_str(&x->ip, as, sizeof(as)),
				 x->a->handle, f->a->vmi_name[0] ? "VM" : "pod", f->a->ns,
				 f->a->vmi_name[0] ? f->a->vmi_name : f->a->pod,
				 ipam_addr_str(&f->ip, fs, sizeof(fs)), f->a->handle, net);
			break;
		}
	}
	ipam_macs_free(&m);
	return 0;
}

int ipam_report_check(const struct ipam_state *st, const struct ipam_check_opts *o,
		      struct ipam_report *r, struct err *e)
{
	ipam_report_init(r);
	r->vm_grace = o ? o->vm_grace : 0;
	const struct ipam_live *live = o ? o->live : NULL;
	r->api_checked = live && live->known;
	r->blocks = st->n_blocks;
	r->handles = st->n_handles;
	const struct ipam_block **bs = calloc(st->n_blocks + 1, sizeof(*bs));
	const struct ipam_handle **hs = calloc(st->n_handles + 1, sizeof(*hs));
	int rc = 0;
	char as[INET6_ADDRSTRLEN], cs[64];
	if (!bs || !hs) {
		rc = err_set(e, ENOMEM, "ipam check");
		goto out;
	}
	for (unsigned i = 0; i < st->n_blocks; i++)
		bs[i] = &st->blocks[i];
	for (unsigned i = 0; i < st->n_handles; i++)
		hs[i] = &st->handles[i];
	qsort(bs, st->n_blocks, sizeof(*bs), cmp_block);
	qsort(hs, st->n_handles, sizeof(*hs), cmp_handle);

	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = bs[i];
		unsigned used = 0;
		for (unsigned k = 0; k < b->size; k++) {
			if (!b->slot[k])
				continue;
			used++;
			r->allocations++;
			const struct ipam_pool *pl = ipam_pool_of(st, &b->cidr.a);
			if (check_alloc(st, o, r, b, k) < 0 ||
			    (pl && check_l2(o, r, pl, b, k) < 0)) {
				rc = err_set(e, ENOMEM, "ipam check");
				goto out;
			}
		}
		if (used != b->used) {
			struct ipam_problem *p = add_problem(r, IPAM_P_BLOCK_COUNT, IPAM_R_RECOUNT);
			if (!p) {
				rc = err_set(e, ENOMEM, "ipam check");
				goto out;
			}
			p->has_block = true;
			p->block = b->cidr;
			p->stored = b->used;
			p->actual = used;
			snprintf(p->detail, sizeof(p->detail),
				 "block %s: stored count %u, allocations %u",
				 ipam_cidr_str(&b->cidr, cs, sizeof(cs)), b->used, used);
		}
	}
	for (unsigned i = 0; i < st->n_handles; i++) {
		const struct ipam_handle *h = hs[i];
		if (h->n == 0) {
			struct ipam_problem *p = add_problem(r, IPAM_P_HANDLE_STALE, IPAM_R_UNLINK);
			if (!p) {
				rc = err_set(e, ENOMEM, "ipam check");
				goto out;
			}
			snprintf(p->handle, sizeof(p->handle), "%s", h->id);
			snprintf(p->detail, sizeof(p->detail), "handle %s lists no address", h->id);
			continue;
		}
		for (unsigned k = 0; k < h->n; k++) {
			const struct ipam_attrs *a = ipam_lookup_ip(st, &h->ip[k]);
			if (a && !strcmp(a->handle, h->id))
				continue;
			struct ipam_problem *p = add_problem(r, IPAM_P_HANDLE_STALE, IPAM_R_UNLINK);
			if (!p) {
				rc = err_set(e, ENOMEM, "ipam check");
				goto out;
			}
			p->has_ip = true;
			p->ip = h->ip[k];
			const struct ipam_block *b = ipam_block_of(st, &h->ip[k]);
			if (b) {
				p->has_block = true;
				p->block = b->cidr;
			}
			snprintf(p->handle, sizeof(p->handle), "%s", h->id);
			snprintf(p->detail, sizeof(p->detail), "handle %s lists %s, which is %s%s",
				 h->id, ipam_addr_str(&h->ip[k], as, sizeof(as)),
				 a ? "allocated to " : "not allocated", a ? a->handle : "");
		}
	}
	/* duplicates: an address in the podIPs of two live pods */
	for (unsigned i = 0; live && live->known && i < live->n_pods; i++) {
		const struct ipam_live_pod *p1 = &live->pods[i];
		if (p1->done)
			continue;
		for (unsigned k = 0; k < p1->n_ips; k++) {
			const struct ip_addr *ip = &p1->ips[k];
			bool seen_before = false;
			for (unsigned j = 0; j < i && !seen_before; j++) {
				const struct ipam_live_pod *q = &live->pods[j];
				for (unsigned m = 0; !q->done && m < q->n_ips; m++)
					seen_before |= ip_eq(&q->ips[m], ip);
			}
			if (seen_before)
				continue;
			const struct ipam_attrs *a = ipam_lookup_ip(st, ip);
			char names[IPAM_REPORT_DETAIL - 96];
			size_t nl = 0;
			unsigned holders = 0, strangers = 0;
			names[0] = 0;
			for (unsigned j = i; j < live->n_pods; j++) {
				const struct ipam_live_pod *q = &live->pods[j];
				bool has = false;
				for (unsigned m = 0; !q->done && m < q->n_ips; m++)
					has |= ip_eq(&q->ips[m], ip);
				if (!has)
					continue;
				holders++;
				strangers += !(a && owned_by(a, q));
				if (nl < sizeof(names))
					nl += (size_t)snprintf(names + nl, sizeof(names) - nl,
							       "%s%s/%s", holders > 1 ? ", " : "",
							       q->ns, q->name);
			}
			/* two live pods, unless they are exactly the VM's two owners */
			if (holders < 2 || (a && a->vmi_name[0] && holders == 2 && !strangers))
				continue;
			struct ipam_problem *p = add_problem(r, IPAM_P_DUPLICATE, IPAM_R_NONE);
			if (!p) {
				rc = err_set(e, ENOMEM, "ipam check");
				goto out;
			}
			p->has_ip = true;
			p->ip = *ip;
			const struct ipam_block *b = ipam_block_of(st, ip);
			if (b) {
				p->has_block = true;
				p->block = b->cidr;
			}
			if (a)
				snprintf(p->handle, sizeof(p->handle), "%s", a->handle);
			snprintf(p->detail, sizeof(p->detail), "%s is used by %u live pods: %s",
				 ipam_addr_str(ip, as, sizeof(as)), holders, names);
		}
	}
	if ((rc = check_macs(st, r)) < 0)
		err_set(e, ENOMEM, "ipam check");
out:
	free(bs);
	free(hs);
	return rc;
}

/* --- report JSON ---------------------------------------------------------------------- */

int ipam_report_write(const struct ipam_report *r, struct json_w *w, struct err *e)
{
	char s[64];
	json_w_obj_begin(w);
	json_w_key(w, "apiVersion");
	json_w_str(w, "kvnet.io/v1");
	json_w_key(w, "kind");
	json_w_str(w, "IPAMCheckReport");
	json_w_key(w, "vmGraceSeconds");
	json_w_uint(w, r->vm_grace);
	json_w_key(w, "apiChecked");
	json_w_bool(w, r->api_checked);
	json_w_key(w, "allocations");
	json_w_uint(w, r->allocations);
	json_w_key(w, "handles");
	json_w_uint(w, r->handles);
	json_w_key(w, "blocks");
	json_w_uint(w, r->blocks);
	json_w_key(w, "reservations");
	json_w_uint(w, r->reservations);
	json_w_key(w, "withinGrace");
	json_w_uint(w, r->within_grace);
	json_w_key(w, "problems");
	json_w_arr_begin(w);
	for (unsigned i = 0; i < r->n; i++) {
		const struct ipam_problem *p = &r->p[i];
		json_w_obj_begin(w);
		json_w_key(w, "kind");
		json_w_str(w, ipam_problem_name(p->kind));
		if (p->has_ip) {
			json_w_key(w, "ip");
			json_w_str(w, ipam_addr_str(&p->ip, s, sizeof(s)));
		}
		if (p->handle[0]) {
			json_w_key(w, "handle");
			json_w_str(w, p->handle);
		}
		if (p->has_block) {
			json_w_key(w, "block");
			json_w_str(w, ipam_cidr_str(&p->block, s, sizeof(s)));
		}
		if (p->kind == IPAM_P_BLOCK_COUNT) {
			json_w_key(w, "stored");
			json_w_uint(w, p->stored);
			json_w_key(w, "actual");
			json_w_uint(w, p->actual);
		}
		json_w_key(w, "repair");
		json_w_str(w, ipam_repair_name(p->repair));
		json_w_key(w, "detail");
		json_w_str(w, p->detail);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_obj_end(w);
	return json_w_finish(w, e);
}

static int get_count(const struct json_doc *d, int tok, unsigned *out)
{
	uint64_t v;
	if (tok < 0)
		return 0;
	if (json_uint64(d, tok, &v) || v > 0xffffffffu)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_problem(struct ipam_report *r, const struct json_doc *d, int obj, unsigned idx,
			 struct err *e)
{
	static const char *const keys[] = {"kind", "ip", "handle", "block", "stored",
					   "actual", "repair", "detail"};
	int v[8];
	char s[IPAM_REPORT_DETAIL];
	if (json_type(d, obj) != JSON_OBJECT)
		return err_setx(e, EINVAL, "report: problem %u: not an object", idx);
	for (unsigned k = 0; k < 8; k++)
		v[k] = -1;
	struct json_iter it;
	int kt, vt;
	json_iter_init(&it, d, obj);
	while (json_iter_next(&it, &kt, &vt)) {
		unsigned k;
		for (k = 0; k < 8; k++)
			if (json_str_eq(d, kt, keys[k], strlen(keys[k])))
				break;
		if (k == 8 || v[k] >= 0)
			return err_setx(e, EINVAL, "report: problem %u: unknown or repeated field",
					idx);
		v[k] = vt;
	}
	struct ipam_problem *p = add_problem(r, IPAM_P_LEAKED, IPAM_R_NONE);
	if (!p)
		return err_set(e, ENOMEM, "report");
	static const enum ipam_problem_kind kinds[] = {IPAM_P_LEAKED, IPAM_P_HANDLE_STALE,
						       IPAM_P_NO_HANDLE, IPAM_P_BLOCK_COUNT,
						       IPAM_P_DUPLICATE, IPAM_P_DUP_MAC,
						       IPAM_P_L2_NETWORK, IPAM_P_L2_SUBNET,
						       IPAM_P_L2_GATEWAY};
	static const enum ipam_repair reps[] = {IPAM_R_NONE, IPAM_R_RELEASE, IPAM_R_UNLINK,
						IPAM_R_RELINK, IPAM_R_RECOUNT};
	bool found = false;
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && !found; k++)
		if (v[0] >= 0 && json_str_eq(d, v[0], ipam_problem_name(kinds[k]),
					     strlen(ipam_problem_name(kinds[k])))) {
			p->kind = kinds[k];
			found = true;
		}
	if (!found)
		return err_setx(e, EINVAL, "report: problem %u: \"kind\" missing or unknown", idx);
	found = false;
	for (unsigned k = 0; k < 5 && !found; k++)
		if (v[6] >= 0 && json_str_eq(d, v[6], ipam_repair_name(reps[k]),
					     strlen(ipam_repair_name(reps[k])))) {
			p->repair = reps[k];
			found = true;
		}
	if (!found)
		return err_setx(e, EINVAL, "report: problem %u: \"repair\" missing or unknown",
				idx);
	if (v[1] >= 0) {
		if (json_str(d, v[1], s, 64) || ipam_addr_parse(&p->ip, s, NULL))
			return err_setx(e, EINVAL, "report: problem %u: \"ip\": not an address",
					idx);
		p->has_ip = true;
	}
	if (v[2] >= 0 && (json_str(d, v[2], p->handle, sizeof(p->handle)) ||
			  !ipam_name_valid(p->handle)))
		return err_setx(e, EINVAL, "report: problem %u: \"handle\": not a handle id", idx);
	if (v[3] >= 0) {
		if (json_str(d, v[3], s, 80) || ipam_cidr_parse(&p->block, s, NULL))
			return err_setx(e, EINVAL, "report: problem %u: \"block\": not a CIDR", idx);
		p->has_block = true;
	}
	if (get_count(d, v[4], &p->stored) || get_count(d, v[5], &p->actual))
		return err_setx(e, EINVAL, "report: problem %u: \"stored\"/\"actual\": not counts",
				idx);
	if (v[7] >= 0 && json_str(d, v[7], p->detail, sizeof(p->detail)))
		return err_setx(e, EINVAL, "report: problem %u: \"detail\": not a string", idx);
	/* what each repair needs */
	bool ok = true;
	switch (p->repair) {
	case IPAM_R_NONE:
		break;
	case IPAM_R_RELEASE:
		ok = p->has_ip;
		break;
	case IPAM_R_UNLINK:
	case IPAM_R_RELINK:
		ok = p->handle[0] && (p->repair == IPAM_R_UNLINK || p->has_ip);
		break;
	case IPAM_R_RECOUNT:
		ok = p->has_block;
		break;
	}
	if (!ok)
		return err_setx(e, EINVAL, "report: problem %u: repair %s lacks its address, "
				"handle or block", idx, ipam_repair_name(p->repair));
	return 0;
}

int ipam_report_parse(struct ipam_report *r, const char *text, size_t len, struct err *e)
{
	ipam_report_init(r);
	struct json_doc d;
	int rc = json_parse(&d, text, len, NULL, 0, 0, e);
	if (rc && rc != -ENOSPC) {
		err_prefix(e, "report");
		return rc;
	}
	struct json_tok *tok = calloc(d.n ? d.n : 1, sizeof(*tok));
	if (!tok)
		return err_set(e, ENOMEM, "report");
	rc = json_parse(&d, text, len, tok, d.n, 0, e);
	if (rc) {
		err_prefix(e, "report");
		goto out;
	}
	int k = json_get(&d, 0, "kind");
	if (k < 0 || !json_str_eq(&d, k, "IPAMCheckReport", 15)) {
		rc = err_setx(e, EINVAL, "report: not an IPAMCheckReport (\"kind\")");
		goto out;
	}
	int ps = json_get(&d, 0, "problems");
	if (ps < 0 || json_type(&d, ps) != JSON_ARRAY) {
		rc = err_setx(e, EINVAL, "report: \"problems\" missing or not an array");
		goto out;
	}
	int g = json_get(&d, 0, "vmGraceSeconds");
	if (g >= 0 && get_count(&d, g, &r->vm_grace)) {
		rc = err_setx(e, EINVAL, "report: \"vmGraceSeconds\": not a count");
		goto out;
	}
	struct json_iter it;
	int kt, vt;
	unsigned idx = 0;
	json_iter_init(&it, &d, ps);
	while (json_iter_next(&it, &kt, &vt))
		if ((rc = parse_problem(r, &d, vt, idx++, e)))
			goto out;
out:
	free(tok);
	return rc;
}

/* --- repair --------------------------------------------------------------------------- */

static bool same_problem(const struct ipam_problem *a, const struct ipam_problem *b)
{
	if (a->kind != b->kind || a->has_ip != b->has_ip || a->has_block != b->has_block ||
	    strcmp(a->handle, b->handle))
		return false;
	if (a->has_ip && !ip_eq(&a->ip, &b->ip))
		return false;
	if (a->has_block && (a->block.prefix != b->block.prefix ||
			     !ip_eq(&a->block.a, &b->block.a)))
		return false;
	return true;
}

bool ipam_problem_current(const struct ipam_report *now, const struct ipam_problem *p)
{
	for (unsigned i = 0; i < now->n; i++)
		if (same_problem(&now->p[i], p))
			return true;
	return false;
}

bool ipam_problem_repairable(const struct ipam_report *now, const struct ipam_state *st,
			     const struct ipam_problem *p, bool force)
{
	if (ipam_problem_current(now, p))
		return true;
	if (!force || p->kind != IPAM_P_LEAKED || !p->has_ip)
		return false;
	const struct ipam_attrs *at = ipam_lookup_ip(st, &p->ip);
	return at && !strcmp(at->handle, p->handle);
}

int ipam_report_repair(struct ipam_state *st, const struct ipam_problem *p, struct err *e)
{
	char as[INET6_ADDRSTRLEN], cs[64];
	if (p->has_ip)
		ipam_addr_str(&p->ip, as, sizeof(as));
	else
		snprintf(as, sizeof(as), "-");
	switch (p->repair) {
	case IPAM_R_NONE:
		return err_setx(e, EPERM, "%s %s: no automatic repair: %s",
				ipam_problem_name(p->kind), as, p->detail);
	case IPAM_R_RELEASE:
		return ipam_release_ip(st, &p->ip, e);
	case IPAM_R_UNLINK:
		if (ipam_handle_unlink(st, p->handle, p->has_ip ? &p->ip : NULL) < 0)
			return err_setx(e, ENOENT, "handle %s: %s not listed any more", p->handle,
					as);
		return 0;
	case IPAM_R_RELINK: {
		const struct ipam_attrs *a = ipam_lookup_ip(st, &p->ip);
		if (!a || strcmp(a->handle, p->handle))
			return err_setx(e, ENOENT, "address %s: no longer allocated to %s", as,
					p->handle);
		int rc = ipam_handle_link(st, p->handle, &p->ip);
		if (rc < 0)
			return err_set(e, -rc, "handle %s: add %s", p->handle, as);
		return 0;
	}
	case IPAM_R_RECOUNT:
		for (unsigned i = 0; i < st->n_blocks; i++) {
			struct ipam_block *b = &st->blocks[i];
			if (b->cidr.prefix != p->block.prefix || !ip_eq(&b->cidr.a, &p->block.a))
				continue;
			unsigned used = 0;
			for (unsigned k = 0; k < b->size; k++)
				used += b->slot[k] != NULL;
			b->used = used;
			return 0;
		}
		return err_setx(e, ENOENT, "block %s: gone",
				ipam_cidr_str(&p->block, cs, sizeof(cs)));
	}
	return err_setx(e, EINVAL, "repair: unknown");
}
