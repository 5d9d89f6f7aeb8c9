/* ipam inventory: CSV parser, validation, apply; see inventory.h. */
#include "ipam/inventory.h"

#include "ipam/macs.h"
#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

void ipam_inv_init(struct ipam_inv *v)
{
	memset(v, 0, sizeof(*v));
}

void ipam_inv_free(struct ipam_inv *v)
{
	free(v->rows);
	free(v->errs);
	memset(v, 0, sizeof(*v));
}

static int grow(void **arr, unsigned n, unsigned *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	unsigned nc = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, (size_t)nc * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static int problem(struct ipam_inv *v, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int problem(struct ipam_inv *v, unsigned line, const char *fmt, ...)
{
	v->n_errs_total++;
	if (v->n_errs >= IPAM_INV_ERRS_MAX)
		return 0;
	if (grow((void **)&v->errs, v->n_errs, &v->cap_errs, sizeof(*v->errs)))
		return -ENOMEM;
	struct ipam_inv_err *x = &v->errs[v->n_errs++];
	x->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
	return 0;
}

static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > IPAM_NS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool an = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!an && !(c == '-' && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

/* Printable, bounded copy of untrusted text for a message. */
static const char *show(const char *s, char *buf, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; s[i] && k + 4 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (s[0] && strlen(s) > k && k + 4 <= cap) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = 0;
	return buf;
}

int ipam_inv_add(struct ipam_inv *v, unsigned line, const char *ns, const char *vm,
		 const char *ip, const char *mac, const char *network, struct err *e)
{
	char sh[80];
	struct ipam_inv_row r;
	memset(&r, 0, sizeof(r));
	r.line = line;
	v->n_seen++;
	unsigned before = v->n_errs_total;
	int rc = 0;
	if (!dns_label(ns))
		rc = problem(v, line, "namespace \"%s\": not a DNS label", show(ns, sh, sizeof(sh)));
	else
		snprintf(r.ns, sizeof(r.ns), "%s", ns);
	if (!rc && !ipam_name_valid(vm))
		rc = problem(v, line, "vm \"%s\": not a valid object name", show(vm, sh, sizeof(sh)));
	else
		snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (!rc && (strlen(ip) > 45 || ipam_addr_parse(&r.ip, ip, NULL)))
		rc = problem(v, line, "ip \"%s\": not an IPv4 or IPv6 address",
			     show(ip, sh, sizeof(sh)));
	uint8_t mb[6];
	struct err me = {0};
	if (!rc && mac[0] && ipam_mac_parse(mac, mb, r.mac, &me))
		rc = problem(v, line, "%s", me.msg);
	if (!rc && !ipam_name_valid(network))
		rc = problem(v, line, "network \"%s\": not a valid object name",
			     show(network, sh, sizeof(sh)));
	else
		snprintf(r.network, sizeof(r.network), "%s", network);
	if (rc)
		return err_set(e, ENOMEM, "inventory");
	if (v->n_errs_total == before &&
	    ipam_handle_vm(r.handle, r.network, r.ns, r.vm, NULL) < 0 &&
	    problem(v, line, "no handle can be made of network, namespace and vm"))
		return err_set(e, ENOMEM, "inventory");
	r.bad = v->n_errs_total != before;
	if (r.bad)
		return 0;
	/* within the file: one address once, one address per family and one MAC per VM */
	char as[64];
	for (unsigned i = 0; i < v->n; i++) {
		const struct ipam_inv_row *o = &v->rows[i];
		if (o->bad)
			continue;
		if (ip_eq(&o->ip, &r.ip)) {
			rc = problem(v, line, "ip %s: also on line %u",
				     ipam_addr_str(&r.ip, as, sizeof(as)), o->line);
			r.bad = true;
			break;
		}
		if (strcmp(o->handle, r.handle)) {
			/* one MAC per network: another VM of this network has it */
			if (o->mac[0] && r.mac[0] && !strcasecmp(o->mac, r.mac) &&
			    !strcmp(o->network, r.network)) {
				rc = problem(v, line, "mac %s: also on line %u for VM %s/%s (this "
					     "row: VM %s/%s; network %s)", r.mac, o->line, o->ns,
					     o->vm, r.ns, r.vm, r.network);
				r.bad = true;
				break;
			}
			continue;
		}
		if (o->ip.family == r.ip.family) {
			rc = problem(v, line, "vm %s/%s: a second %s address (line %u has %s)", r.ns,
				     r.vm, r.ip.family == AF_INET ? "IPv4" : "IPv6", o->line,
				     ipam_addr_str(&o->ip, as, sizeof(as)));
			r.bad = true;
			break;
		}
		if (o->mac[0] && r.mac[0] && strcasecmp(o->mac, r.mac)) {
			rc = problem(v, line, "vm %s/%s: mac %s differs from line %u (%s)", r.ns,
				     r.vm, r.mac, o->line, o->mac);
			r.bad = true;
			break;
		}
	}
	if (rc)
		return err_set(e, ENOMEM, "inventory");
	if (r.bad)
		return 0;
	if (v->n >= IPAM_INV_ROWS_MAX)
		return err_setx(e, EFBIG, "inventory: more than %d rows", IPAM_INV_ROWS_MAX);
	if (grow((void **)&v->rows, v->n, &v->cap, sizeof(r)))
		return err_set(e, ENOMEM, "inventory");
	v->rows[v->n++] = r;
	return 0;
}

/* Split one line (no newline) into at most 6 fields (a 6th means too many). Fields are
 * copied into f[k] (cap each). Returns the field count, or -1 with *why set. */
static int split(const char *s, size_t n, char f[6][IPAM_INV_LINE_MAX + 1], const char **why)
{
	unsigned k = 0;
	size_t i = 0;
	for (;;) {
		size_t o = 0;
		if (k == 6) {
			*why = "more than 5 fields";
			return -1;
		}
		/* leading blanks */
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < n && s[i] == '"') {
			i++;
			for (;;) {
				if (i >= n) {
					*why = "a quoted field is not closed on its line";
					return -1;
				}
				if (s[i] == '"') {
					if (i + 1 < n && s[i + 1] == '"') {
						f[k][o++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				f[k][o++] = s[i++];
			}
			while (i < n && (s[i] == ' ' || s[i] == '\t'))
				i++;
			if (i < n && s[i] != ',') {
				*why = "text after a closing quote";
				return -1;
			}
		} else {
			while (i < n && s[i] != ',') {
				if (s[i] == '"') {
					*why = "a quote inside an unquoted field";
					return -1;
				}
				f[k][o++] = s[i++];
			}
			while (o > 0 && (f[k][o - 1] == ' ' || f[k][o - 1] == '\t'))
				o--;
		}
		f[k][o] = 0;
		k++;
		if (i >= n)
			return (int)k;
		i++; /* the comma */
	}
}

static const char *const cols[5] = {"namespace", "vm", "ip", "mac", "network"};

int ipam_inv_parse(struct ipam_inv *v, const char *text, size_t len, const char *def_net,
		   struct err *e)
{
	ipam_inv_init(v);
	char(*f)[IPAM_INV_LINE_MAX + 1] = calloc(6, sizeof(*f));
	if (!f)
		return err_set(e, ENOMEM, "inventory");
	int rc = 0;
	size_t pos = 0;
	unsigned line = 0;
	bool header = false;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < len && !rc) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		bool blank = true;
		for (size_t i = 0; i < n && blank; i++)
			blank = s[i] == ' ' || s[i] == '\t';
		if (blank)
			continue;
		if (n > IPAM_INV_LINE_MAX) {
			v->n_seen += header;
			rc = problem(v, line, "line longer than %d bytes", IPAM_INV_LINE_MAX);
			continue;
		}
		if (memchr(s, 0, n)) {
			v->n_seen += header;
			rc = problem(v, line, "NUL byte in the line");
			continue;
		}
		const char *why = NULL;
		int nf = split(s, n, f, &why);
		if (!header) {
			header = true;
			bool okh = nf == 5;
			for (int k = 0; okh && k < 5; k++)
				okh = !strcasecmp(f[k], cols[k]);
			if (!okh) {
				rc = problem(v, line, "header: want \"namespace,vm,ip,mac,network\"");
				break; /* without the header, rows cannot be read */
			}
			continue;
		}
		if (nf < 0) {
			v->n_seen++;
			rc = problem(v, line, "%s", why);
			continue;
		}
		if (nf != 5) {
			v->n_seen++;
			rc = problem(v, line, "%d field%s, want 5 (namespace,vm,ip,mac,network)", nf,
				     nf == 1 ? "" : "s");
			continue;
		}
		struct err ae = {0};
		int r = ipam_inv_add(v, line, f[0], f[1], f[2], f[3], f[4][0] ? f[4] : def_net,
				     &ae);
		if (r == -EFBIG) {
			free(f);
			return err_setx(e, EFBIG, "%s", ae.msg);
		}
		if (r)
			rc = r;
	}
	if (!rc && !header)
		rc = problem(v, 0, "empty file: no header line");
	free(f);
	if (rc)
		return err_set(e, ENOMEM, "inventory");
	ipam_inv_sort_errs(v);
	return 0;
}

void ipam_inv_sort_errs(struct ipam_inv *v)
{
	/* insertion sort: stable and the arrays are nearly sorted */
	for (unsigned i = 1; i < v->n_errs; i++) {
		struct ipam_inv_err t = v->errs[i];
		unsigned j = i;
		while (j > 0 && v->errs[j - 1].line > t.line) {
			v->errs[j] = v->errs[j - 1];
			j--;
		}
		v->errs[j] = t;
	}
}

static const struct ipam_pool *pool_of(const struct ipam_state *st, const struct ip_addr *a)
{
	for (unsigned i = 0; i < st->n_pools; i++)
		if (ipam_cidr_contains(&st->pools[i].cidr, a))
			return &st->pools[i];
	return NULL;
}

static struct ipam_attrs *slot_of(const struct ipam_state *st, const struct ip_addr *a)
{
	for (unsigned i = 0; i < st->n_blocks; i++) {
		const struct ipam_block *b = &st->blocks[i];
		if (!ipam_cidr_contains(&b->cidr, a))
			continue;
		unsigned ord = 0, bits = a->family == AF_INET ? 32 : 128;
		for (unsigned k = b->cidr.prefix; k < bits; k++)
			ord = (ord << 1) | ((a->b[k / 8] >> (7 - k % 8)) & 1u);
		return b->slot[ord];
	}
	return NULL;
}

int ipam_inv_validate(struct ipam_inv *v, const struct ipam_state *st, struct err *e)
{
	char as[64], hs[64];
	int rc = 0;
	struct ipam_macs macs;
	if (ipam_macs_index(&macs, st) < 0)
		return err_set(e, ENOMEM, "inventory");
	for (unsigned i = 0; i < v->n && !rc; i++) {
		struct ipam_inv_row *r = &v->rows[i];
		if (r->bad)
			continue;
		ipam_addr_str(&r->ip, as, sizeof(as));
		const struct ipam_pool *p = pool_of(st, &r->ip);
		const struct ipam_attrs *a = slot_of(st, &r->ip);
		if (!p) {
			rc = problem(v, r->line, "ip %s: not inside any pool", as);
			r->bad = true;
			continue;
		}
		if (ipam_pool_reserves(p, &r->ip)) {
			rc = problem(v, r->line, "ip %s: reserved by pool %s, never handed out", as,
				     p->name);
			r->bad = true;
			continue;
		}
		if (a && strcmp(a->handle, r->handle)) {
			char who[IPAM_NS_MAX + IPAM_NAME_MAX + 16] = "";
			if (a->pod[0])
				snprintf(who, sizeof(who), " (pod %s/%s)", a->ns, a->pod);
			else if (a->vmi_name[0])
				snprintf(who, sizeof(who), " (VM %s/%s)", a->ns, a->vmi_name);
			rc = problem(v, r->line, "ip %s: already held by handle %s%s", as, a->handle,
				     who);
			r->bad = true;
			continue;
		}
		if (a && r->mac[0] && a->mac[0] && strcasecmp(a->mac, r->mac)) {
			rc = problem(v, r->line, "ip %s: already reserved for %s/%s with mac %s", as,
				     r->ns, r->vm, a->mac);
			r->bad = true;
			continue;
		}
		const struct ipam_mac_ref *m =
			r->mac[0] ? ipam_macs_taken(&macs, r->mac, r->network, r->handle) : NULL;
		if (m) {
			const struct ipam_attrs *o = m->a;
			rc = problem(v, r->line, "mac %s: already held by %s %s/%s (ip %s, handle %s; "
				     "this row: VM %s/%s)", r->mac, o->vmi_name[0] ? "VM" : "pod",
				     o->ns, o->vmi_name[0] ? o->vmi_name : o->pod,
				     ipam_addr_str(&m->ip, hs, sizeof(hs)), o->handle, r->ns, r->vm);
			r->bad = true;
			continue;
		}
		const struct ipam_handle *h = ipam_handle_find(st, r->handle);
		for (unsigned k = 0; h && k < h->n && !r->bad; k++) {
			if (h->ip[k].family != r->ip.family || ip_eq(&h->ip[k], &r->ip))
				continue;
			rc = problem(v, r->line, "vm %s/%s: already holds %s (handle %s)", r->ns,
				     r->vm, ipam_addr_str(&h->ip[k], hs, sizeof(hs)), r->handle);
			r->bad = true;
		}
		if (r->bad)
			continue;
		r->in_place = a && (!r->mac[0] || !strcasecmp(a->mac, r->mac));
	}
	ipam_macs_free(&macs);
	if (rc)
		return err_set(e, ENOMEM, "inventory");
	ipam_inv_sort_errs(v);
	return 0;
}

int ipam_inv_apply(struct ipam_state *st, struct ipam_inv *v, unsigned *applied,
		   struct err *e)
{
	*applied = 0;
	for (unsigned i = 0; i < v->n; i++)
		v->rows[i].applied = false;
	for (unsigned i = 0; i < v->n; i++) {
		struct ipam_inv_row *r = &v->rows[i];
		if (r->bad || r->in_place)
			continue;
		struct ipam_attrs at;
		memset(&at, 0, sizeof(at));
		snprintf(at.ns, sizeof(at.ns), "%s", r->ns);
		snprintf(at.vmi_name, sizeof(at.vmi_name), "%s", r->vm);
		snprintf(at.mac, sizeof(at.mac), "%s", r->mac);
		int rc = ipam_reserve_ip(st, r->handle, &r->ip, &at, e);
		if (rc) {
			err_prefix(e, "line %u", r->line);
			return rc;
		}
		struct ipam_attrs *a = slot_of(st, &r->ip);
		if (a && r->mac[0])
			snprintf(a->mac, sizeof(a->mac), "%s", r->mac);
		r->applied = true;
		(*applied)++;
	}
	return 0;
}

int ipam_inv_mac_recheck(struct ipam_inv *v, const struct ipam_state *st, struct err *e)
{
	struct ipam_macs macs;
	if (ipam_macs_index(&macs, st) < 0)
		return err_set(e, ENOMEM, "inventory");
	int n = 0, rc = 0;
	char hs[64];
	for (unsigned i = 0; i < v->n && !rc; i++) {
		struct ipam_inv_row *r = &v->rows[i];
		r->raced = false;
		if (!r->applied || !r->mac[0])
			continue;
		const struct ipam_mac_ref *m = ipam_macs_taken(&macs, r->mac, r->network, r->handle);
		if (!m)
			continue;
		const struct ipam_attrs *o = m->a;
		r->raced = true;
		n++;
		rc = problem(v, r->line, "mac %s: %s %s/%s (ip %s, handle %s) got it at the same "
			     "time; VM %s/%s's reservation taken back", r->mac,
			     o->vmi_name[0] ? "VM" : "pod", o->ns,
			     o->vmi_name[0] ? o->vmi_name : o->pod,
			     ipam_addr_str(&m->ip, hs, sizeof(hs)), o->handle, r->ns, r->vm);
	}
	ipam_macs_free(&macs);
	if (rc)
		return err_set(e, ENOMEM, "inventory");
	ipam_inv_sort_errs(v);
	return n;
}

int ipam_inv_undo(struct ipam_state *st, const struct ipam_inv *v, bool raced_only,
		  unsigned *undone, struct err *e)
{
	*undone = 0;
	for (unsigned i = 0; i < v->n; i++) {
		const struct ipam_inv_row *r = &v->rows[i];
		if (!r->applied || (raced_only && !r->raced))
			continue;
		const struct ipam_attrs *a = ipam_lookup_ip(st, &r->ip);
		if (!a || strcmp(a->handle, r->handle))
			continue;
		int rc = ipam_release_ip(st, &r->ip, e);
		if (rc)
			return err_prefix(e, "line %u", r->line), rc;
		(*undone)++;
	}
	return 0;
}
