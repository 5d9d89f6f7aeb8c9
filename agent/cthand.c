/* cthand — conntrack hand-over calls for a transport. See cthand.h. */
#include "agent/cthand.h"

#include "lib/err.h"

#include <errno.h>
#include <string.h>

int cthand_collect(struct nl_sock *ct, const struct ip_addr *addrs, size_t n,
		   struct ct_list *out, struct err *e)
{
	if (n == 0)
		return err_setx(e, EINVAL, "conntrack hand-over: no VM addresses to collect");
	int rc = ct_dump(ct, addrs, n, out, e);
	return rc < 0 ? (err_prefix(e, "conntrack hand-over: collect"), rc) : 0;
}

long cthand_encode(const struct ct_list *l, size_t *pos, void *buf, size_t cap,
		   struct err *e)
{
	if (*pos >= l->n)
		return 0;
	if (cap < ct_wire_size(1))
		return err_setx(e, EMSGSIZE,
				"conntrack hand-over: a chunk of %zu bytes holds no entry (%zu needed)",
				cap, ct_wire_size(1));
	size_t k = (cap - CT_WIRE_HDR) / CT_WIRE_ENTRY;
	if (k > CT_WIRE_MAX)
		k = CT_WIRE_MAX;
	if (k > l->n - *pos)
		k = l->n - *pos;
	long len = ct_wire_encode(l->v + *pos, k, buf, cap, e);
	if (len < 0)
		return err_prefix(e, "conntrack hand-over: encode"), len;
	*pos += k;
	return len;
}

int cthand_apply(struct nl_sock *ct, const struct ip_addr *addrs, size_t n, const void *buf,
		 size_t len, struct cthand_result *res, struct err *e)
{
	struct ct_list l = {0};
	int first = 0;
	memset(res, 0, sizeof(*res));
	if (n == 0)
		return err_setx(e, EINVAL, "conntrack hand-over: no VM addresses to apply for");
	int rc = ct_wire_decode(buf, len, &l, e);
	if (rc < 0)
		return err_prefix(e, "conntrack hand-over: chunk refused"), rc;
	res->entries = (unsigned)l.n;
	for (size_t i = 0; i < l.n; i++) {
		struct err one = {0};
		if (!ct_entry_has_addr(&l.v[i], addrs, n)) {
			res->foreign++;
			continue;
		}
		rc = ct_create(ct, &l.v[i], &one);
		if (rc == 0) {
			res->applied++;
			continue;
		}
		res->failed++;
		if (first == 0) {
			first = rc;
			err_setx(e, -rc, "conntrack hand-over: %s", one.msg);
		}
	}
	ct_list_free(&l);
	return first;
}
