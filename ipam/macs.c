/* ipam macs: MAC index over a state, network of an allocation; see macs.h. */
#include "ipam/macs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int cmp_ref(const void *x, const void *y)
{
	const struct ipam_mac_ref *p = x, *q = y;
	int c = strcasecmp(p->a->mac, q->a->mac);
	if (c)
		return c;
	if (p->ip.family != q->ip.family)
		return p->ip.family == AF_INET ? -1 : 1;
	return memcmp(p->ip.b, q->ip.b, 16);
}

int ipam_macs_index(struct ipam_macs *m, const struct ipam_state *st)
{
	unsigned cnt = 0;
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < st->n_blocks; i++)
		for (unsigned k = 0; k < st->blocks[i].size; k++)
			cnt += st->blocks[i].slot[k] && st->blocks[i].slot[k]->mac[0];
	m->v = calloc(cnt + 1, sizeof(*m->v));
	if (!m->v)
		return -ENOMEM;
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = &st->blocks[i];
		for (unsigned k = 0; k < b->size; k++)
			if (b->slot[k] && b->slot[k]->mac[0]) {
				m->v[m->n].a = b->slot[k];
				m->v[m->n].ip = ipam_block_addr(b, k);
				m->n++;
			}
	}
	qsort(m->v, m->n, sizeof(*m->v), cmp_ref);
	return 0;
}

void ipam_macs_free(struct ipam_macs *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

bool ipam_alloc_on_network(const struct ipam_attrs *a, const char *net)
{
	char h[IPAM_NAME_MAX + 1];
	if (a->vmi_name[0] && a->ns[0])
		return !ipam_handle_vm(h, net, a->ns, a->vmi_name, NULL) && !strcmp(h, a->handle);
	if (a->container_id[0])
		return !ipam_handle_pod(h, net, a->container_id, NULL) && !strcmp(h, a->handle);
	return false;
}

bool ipam_alloc_network(const struct ipam_attrs *a, char *net, size_t cap)
{
	char tail[IPAM_NS_MAX + IPAM_NAME_MAX + IPAM_CID_MAX + 16];
	if (a->vmi_name[0] && a->ns[0])
		snprintf(tail, sizeof(tail), ".vmi.%s.%s", a->ns, a->vmi_name);
	else if (a->container_id[0])
		snprintf(tail, sizeof(tail), ".%s", a->container_id);
	else
		return false;
	size_t hl = strlen(a->handle), tl = strlen(tail);
	if (hl <= tl || strcmp(a->handle + hl - tl, tail) || hl - tl >= cap)
		return false;
	memcpy(net, a->handle, hl - tl);
	net[hl - tl] = 0;
	return ipam_alloc_on_network(a, net);
}

const struct ipam_mac_ref *ipam_macs_taken(const struct ipam_macs *m, const char *mac,
					   const char *net, const char *handle)
{
	unsigned lo = 0, hi = m->n;
	while (lo < hi) { /* the first entry not below mac */
		unsigned mid = lo + (hi - lo) / 2;
		if (strcasecmp(m->v[mid].a->mac, mac) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (unsigned i = lo; i < m->n && !strcasecmp(m->v[i].a->mac, mac); i++)
		if (strcmp(m->v[i].a->handle, handle) && ipam_alloc_on_network(m->v[i].a, net))
			return &m->v[i];
	return NULL;
}
