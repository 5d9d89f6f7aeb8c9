/* proto — CNI <-> agent line protocol (see proto.h). */
#include "agent/proto.h"

#include "lib/json.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define PROTO_TOKENS 96

static const char *const op_names[] = { "add", "del", "ping" };
static const char *const st_names[] = { "registered", "programmed", "deleted", "pong",
					"error" };

/* Copy string member `key` of obj into buf (cap); 0 absent, 1 set, -EINVAL. */
static int get_str(const struct json_doc *d, int obj, const char *key, char *buf, size_t cap,
		   bool nonempty, struct err *e, const char *what)
{
	int t = json_get(d, obj, key);
	if (t < 0)
		return 0;
	if (json_type(d, t) != JSON_STRING)
		return err_setx(e, EINVAL, "%s: %s: not a string", what, key);
	int rc = json_str(d, t, buf, cap);
	if (rc == -ENOSPC)
		return err_setx(e, EINVAL, "%s: %s: longer than %zu bytes", what, key, cap - 1);
	if (rc < 0)
		return err_setx(e, EINVAL, "%s: %s: holds a NUL byte", what, key);
	if (nonempty && !buf[0])
		return err_setx(e, EINVAL, "%s: %s: empty", what, key);
	return 1;
}

static int get_bool(const struct json_doc *d, int obj, const char *key, bool *out,
		    struct err *e, const char *what)
{
	int t = json_get(d, obj, key);
	if (t < 0)
		return 0;
	if (json_bool(d, t, out) < 0)
		return err_setx(e, EINVAL, "%s: %s: not a boolean", what, key);
	return 1;
}

/* Parse line into a document; checks it is one object with only allowed keys. */
static int parse_obj(const char *line, size_t len, struct json_doc *d, struct json_tok *tok,
		     const char *const *keys, size_t nkeys, const char *what, struct err *e)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len >= AGENT_PROTO_LINE_MAX)
		return err_setx(e, EINVAL, "%s: longer than %d bytes", what,
				AGENT_PROTO_LINE_MAX - 1);
	if (memchr(line, '\n', len))
		return err_setx(e, EINVAL, "%s: more than one line", what);
	struct err je = { 0 };
	int rc = json_parse(d, line, len, tok, PROTO_TOKENS, 8, &je);
	if (rc == -ENOSPC)
		return err_setx(e, EINVAL, "%s: too many fields", what);
	if (rc < 0)
		return err_setx(e, EINVAL, "%s: not JSON: %s", what, je.msg);
	if (json_type(d, 0) != JSON_OBJECT)
		return err_setx(e, EINVAL, "%s: not a JSON object", what);
	struct json_iter it;
	int k, v;
	json_iter_init(&it, d, 0);
	while (json_iter_next(&it, &k, &v)) {
		bool ok = false;
		for (size_t i = 0; i < nkeys && !ok; i++)
			ok = json_str_eq(d, k, keys[i], strlen(keys[i]));
		if (!ok) {
			char kn[48];
			if (json_str(d, k, kn, sizeof(kn)) < 0)
				snprintf(kn, sizeof(kn), "(long or odd key)");
			return err_setx(e, EINVAL, "%s: unknown field \"%s\"", what, kn);
		}
	}
	return 0;
}

static const char *const req_keys[] = { "op",	"container_id", "ifname", "veth",   "ips",
					"namespace", "pod",	    "uid",    "handle", "vm",
					"target", "wait",	    "node",   "datastore" };

static int req_parse(const char *line, size_t len, struct agent_req *out, bool stored,
		     struct err *e)
{
	static const char what[] = "agent request";
	struct json_tok tok[PROTO_TOKENS];
	struct json_doc d;
	memset(out, 0, sizeof(*out));
	int rc = parse_obj(line, len, &d, tok, req_keys, sizeof(req_keys) / sizeof(req_keys[0]),
			   what, e);
	if (rc < 0)
		return rc;
	char op[8];
	rc = get_str(&d, 0, "op", op, sizeof(op), true, e, what);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return err_setx(e, EINVAL, "%s: op: missing", what);
	int found = -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(op, op_names[i]) == 0)
			found = i;
	if (found < 0)
		return err_setx(e, EINVAL, "%s: op: \"%s\" is not add, del or ping", what, op);
	out->op = (enum agent_op)found;
	struct agent_ep *ep = &out->ep;
	if (out->op == AGENT_OP_PING) {
		if (json_get(&d, 0, "container_id") >= 0 || json_get(&d, 0, "ips") >= 0)
			return err_setx(e, EINVAL, "%s: ping takes no fields", what);
		return 0;
	}
	if ((rc = get_str(&d, 0, "container_id", ep->cid, sizeof(ep->cid), true, e, what)) < 0)
		return rc;
	if (rc == 0)
		return err_setx(e, EINVAL, "%s: container_id: missing", what);
	if ((rc = get_str(&d, 0, "ifname", ep->ifname, sizeof(ep->ifname), true, e, what)) < 0)
		return rc;
	if (rc == 0)
		return err_setx(e, EINVAL, "%s: ifname: missing", what);
	if (strchr(ep->ifname, '/') || strcmp(ep->ifname, ".") == 0 ||
	    strcmp(ep->ifname, "..") == 0 || strchr(ep->cid, '/'))
		return err_setx(e, EINVAL, "%s: container_id/ifname: '/' or dot name", what);
	if (out->op == AGENT_OP_DEL) {
		static const char *const dk[] = { "veth", "ips", "namespace", "pod", "uid",
						  "handle", "vm", "target", "wait", "node",
						  "datastore" };
		for (size_t i = 0; i < sizeof(dk) / sizeof(dk[0]); i++)
			if (json_get(&d, 0, dk[i]) >= 0)
				return err_setx(e, EINVAL, "%s: del: %s: not allowed", what,
						dk[i]);
		return 0;
	}
	if ((rc = get_str(&d, 0, "node", out->node, sizeof(out->node), true, e, what)) < 0)
		return rc;
	if (rc == 0 && !stored)
		return err_setx(e, EINVAL, "%s: node: missing", what);
	if ((rc = get_str(&d, 0, "datastore", out->datastore, sizeof(out->datastore), true, e,
			  what)) < 0)
		return rc;
	if (rc == 0 && !stored)
		return err_setx(e, EINVAL, "%s: datastore: missing", what);
	if ((rc = get_str(&d, 0, "veth", ep->veth, sizeof(ep->veth), true, e, what)) < 0)
		return rc;
	if (rc == 0)
		return err_setx(e, EINVAL, "%s: veth: missing", what);
	if (strchr(ep->veth, '/'))
		return err_setx(e, EINVAL, "%s: veth: '/' in an interface name", what);
	if (get_str(&d, 0, "namespace", ep->ns, sizeof(ep->ns), false, e, what) < 0 ||
	    get_str(&d, 0, "pod", ep->pod, sizeof(ep->pod), false, e, what) < 0 ||
	    get_str(&d, 0, "uid", ep->uid, sizeof(ep->uid), false, e, what) < 0 ||
	    get_str(&d, 0, "handle", ep->handle, sizeof(ep->handle), false, e, what) < 0 ||
	    get_str(&d, 0, "vm", ep->vm, sizeof(ep->vm), false, e, what) < 0 ||
	    get_bool(&d, 0, "target", &ep->target, e, what) < 0 ||
	    get_bool(&d, 0, "wait", &out->wait, e, what) < 0)
		return -EINVAL;
	int ips = json_get(&d, 0, "ips");
	if (ips < 0)
		return err_setx(e, EINVAL, "%s: ips: missing", what);
	if (json_type(&d, ips) != JSON_ARRAY)
		return err_setx(e, EINVAL, "%s: ips: not an array", what);
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &d, ips);
	while (json_iter_next(&it, &k, &v)) {
		if (ep->n_ip == AGENT_EP_IPS_MAX)
			return err_setx(e, EINVAL, "%s: ips: more than %d", what,
					AGENT_EP_IPS_MAX);
		char s[64];
		if (json_type(&d, v) != JSON_STRING || json_str(&d, v, s, sizeof(s)) < 0 ||
		    !ip_parse(s, &ep->ip[ep->n_ip]))
			return err_setx(e, EINVAL, "%s: ips[%u]: not an IP address", what,
					ep->n_ip);
		for (unsigned i = 0; i < ep->n_ip; i++)
			if (ip_eq(&ep->ip[i], &ep->ip[ep->n_ip]))
				return err_setx(e, EINVAL, "%s: ips[%u]: listed twice", what,
						ep->n_ip);
		ep->n_ip++;
	}
	if (ep->n_ip == 0)
		return err_setx(e, EINVAL, "%s: ips: empty", what);
	return 0;
}

int agent_req_parse(const char *line, size_t len, struct agent_req *out, struct err *e)
{
	return req_parse(line, len, out, false, e);
}

int agent_req_parse_stored(const char *line, size_t len, struct agent_req *out,
			   struct err *e)
{
	return req_parse(line, len, out, true, e);
}

static long finish(struct json_w *w, char *buf, size_t cap)
{
	if (json_w_finish(w, NULL) < 0)
		return w->err;
	if (w->len + 2 > cap)
		return -ENOSPC;
	buf[w->len] = '\n';
	buf[w->len + 1] = 0;
	return (long)w->len + 1;
}

long agent_req_format(const struct agent_req *r, char *buf, size_t cap)
{
	struct json_w w;
	json_w_init(&w, buf, cap);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "op", op_names[r->op]);
	const struct agent_ep *ep = &r->ep;
	switch (r->op) {
	case AGENT_OP_PING:
		break;
	case AGENT_OP_DEL:
		json_w_kstr(&w, "container_id", ep->cid);
		json_w_kstr(&w, "ifname", ep->ifname);
		break;
	case AGENT_OP_ADD:
		if (r->node[0])
			json_w_kstr(&w, "node", r->node);
		if (r->datastore[0])
			json_w_kstr(&w, "datastore", r->datastore);
		json_w_kstr(&w, "container_id", ep->cid);
		json_w_kstr(&w, "ifname", ep->ifname);
		json_w_kstr(&w, "veth", ep->veth);
		json_w_key(&w, "ips");
		json_w_arr_begin(&w);
		for (unsigned i = 0; i < ep->n_ip && i < AGENT_EP_IPS_MAX; i++) {
			char s[IP_STRLEN];
			json_w_str(&w, ip_fmt(&ep->ip[i], s));
		}
		json_w_arr_end(&w);
		if (ep->ns[0])
			json_w_kstr(&w, "namespace", ep->ns);
		if (ep->pod[0])
			json_w_kstr(&w, "pod", ep->pod);
		if (ep->uid[0])
			json_w_kstr(&w, "uid", ep->uid);
		if (ep->handle[0])
			json_w_kstr(&w, "handle", ep->handle);
		if (ep->vm[0])
			json_w_kstr(&w, "vm", ep->vm);
		if (ep->target)
			json_w_kbool(&w, "target", true);
		if (r->wait)
			json_w_kbool(&w, "wait", true);
		break;
	}
	json_w_obj_end(&w);
	return finish(&w, buf, cap);
}

static const char *const resp_keys[] = { "status", "error" };

int agent_resp_parse(const char *line, size_t len, struct agent_resp *out, struct err *e)
{
	static const char what[] = "agent answer";
	struct json_tok tok[PROTO_TOKENS];
	struct json_doc d;
	memset(out, 0, sizeof(*out));
	int rc = parse_obj(line, len, &d, tok, resp_keys, 2, what, e);
	if (rc < 0)
		return rc;
	char st[16];
	rc = get_str(&d, 0, "status", st, sizeof(st), true, e, what);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return err_setx(e, EINVAL, "%s: status: missing", what);
	int found = -1;
	for (int i = 0; i < 5; i++)
		if (strcmp(st, st_names[i]) == 0)
			found = i;
	if (found < 0)
		return err_setx(e, EINVAL, "%s: status: \"%s\" unknown", what, st);
	out->status = (enum agent_status)found;
	rc = get_str(&d, 0, "error", out->error, sizeof(out->error), true, e, what);
	if (rc < 0)
		return rc;
	if ((out->status == AGENT_ST_ERROR) != (rc == 1))
		return err_setx(e, EINVAL, "%s: error: %s", what,
				rc ? "only with status error" : "missing");
	return 0;
}

long agent_resp_format(const struct agent_resp *r, char *buf, size_t cap)
{
	struct json_w w;
	json_w_init(&w, buf, cap);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "status", st_names[r->status]);
	if (r->status == AGENT_ST_ERROR)
		json_w_kstr(&w, "error", r->error[0] ? r->error : "unknown error");
	json_w_obj_end(&w);
	return finish(&w, buf, cap);
}
