/* cthand — conntrack hand-over calls for a transport. See cthand.h. */
#include "agent/cthand.h"

#include "lib/err.h"

#include "net/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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

/* ---- top-up from events --------------------------------------------------------- */

#define TRACK_RCVBUF (4 << 20)

struct cthand_track {
	struct nl_sock *s;     /* event socket (NEW, UPDATE, DESTROY) */
	struct ip_addr *addrs; /* the VM's addresses (heap copy) */
	size_t n;	       /* addresses */
	struct ct_list delta;  /* the VM's entries created or updated since */
};

struct cthand_track *cthand_track_new(const char *nspath, const struct ip_addr *addrs,
				      size_t n, struct err *e)
{
	struct cthand_track *t = calloc(1, sizeof(*t));
	if (!t || n == 0) {
		if (n == 0)
			err_setx(e, EINVAL, "conntrack hand-over: track: no VM addresses");
		else
			err_set(e, ENOMEM, "conntrack hand-over: track");
		free(t);
		return NULL;
	}
	t->addrs = calloc(n, sizeof(*addrs));
	if (!t->addrs) {
		err_set(e, ENOMEM, "conntrack hand-over: track: %zu addresses", n);
		goto fail;
	}
	memcpy(t->addrs, addrs, n * sizeof(*addrs));
	t->n = n;
	if (ct_open(&t->s, nspath, e) < 0 || ct_events_subscribe(t->s, true, true, true, e) < 0)
		goto fail;
	(void)ct_events_rcvbuf(t->s, TRACK_RCVBUF, NULL); /* best effort: overruns are seen */
	int fl = fcntl(nl_fd(t->s), F_GETFL);
	if (fl < 0 || fcntl(nl_fd(t->s), F_SETFL, fl | O_NONBLOCK) < 0) {
		err_set(e, errno, "conntrack hand-over: track: non-blocking socket");
		goto fail;
	}
	return t;
fail:
	err_prefix(e, "conntrack hand-over: track");
	cthand_track_free(t);
	return NULL;
}

int cthand_track_fd(const struct cthand_track *t)
{
	return nl_fd(t->s);
}

/* Index of the connection of ce in the delta (family, zone, original tuple), or -1. */
static long delta_find(const struct ct_list *l, const struct ct_entry *ce)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct ct_entry *x = &l->v[i];
		if (x->l3 == ce->l3 && x->zone == ce->zone && ip_eq(&x->orig.src, &ce->orig.src) &&
		    ip_eq(&x->orig.dst, &ce->orig.dst) && x->orig.proto == ce->orig.proto &&
		    x->orig.sport == ce->orig.sport && x->orig.dport == ce->orig.dport)
			return (long)i;
	}
	return -1;
}

struct track_arg {
	struct cthand_track *t; /* the tracker */
	int taken;		/* events of the VM's addresses */
	struct err *e;		/* for a full delta */
};

static int track_cb(enum ct_event ev, const struct ct_entry *ce, void *arg)
{
	struct track_arg *ta = arg;
	struct ct_list *l = &ta->t->delta;
	if (!ct_entry_has_addr(ce, ta->t->addrs, ta->t->n))
		return 0;
	ta->taken++;
	long i = delta_find(l, ce);
	switch (ev) {
	case CT_EV_DESTROY:
		if (i >= 0)
			l->v[i] = l->v[--l->n];
		return 0;
	case CT_EV_NEW:
	case CT_EV_UPDATE:
		break;
	}
	if (i < 0)
		return ct_list_add(l, ce, ta->e);
	/* an update without IPCT_PROTOINFO carries no TCP info: keep what was known */
	struct ct_entry m = *ce;
	if (!m.has_tcp && l->v[i].has_tcp) {
		m.has_tcp = true;
		m.tcp = l->v[i].tcp;
	}
	l->v[i] = m;
	return 0;
}

int cthand_track_read(struct cthand_track *t, struct err *e)
{
	struct track_arg ta = {.t = t, .taken = 0, .e = e};
	for (;;) {
		int rc = ct_events_read(t->s, track_cb, &ta, e);
		if (rc == 0)
			return ta.taken; /* drained */
		if (rc < 0)
			return err_prefix(e, "conntrack hand-over: track"), rc;
	}
}

const struct ct_list *cthand_track_list(const struct cthand_track *t)
{
	return &t->delta;
}

void cthand_track_reset(struct cthand_track *t)
{
	t->delta.n = 0;
}

void cthand_track_free(struct cthand_track *t)
{
	if (!t)
		return;
	if (t->s)
		nl_close(t->s);
	ct_list_free(&t->delta);
	free(t->addrs);
	free(t);
}
