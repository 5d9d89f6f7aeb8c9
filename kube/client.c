/* client — Kubernetes API operations; see client.h. */
#include "kube/client.h"
#include "kube/conn.h"
#include "kube/http.h"
#include "kube/kubeconfig.h"
#include "lib/json.h"
#include "kube/tls.h"
#include "kube/watch.h"
#include "lib/err.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const struct kube_res kube_res_pods = { "", "v1", "pods", true };
const struct kube_res kube_res_nodes = { "", "v1", "nodes", false };
const struct kube_res kube_res_namespaces = { "", "v1", "namespaces", false };
const struct kube_res kube_res_vmis = { "kubevirt.io", "v1", "virtualmachineinstances", true };
const struct kube_res kube_res_vms = { "kubevirt.io", "v1", "virtualmachines", true };
const struct kube_res kube_res_vmims = { "kubevirt.io", "v1",
					 "virtualmachineinstancemigrations", true };
const struct kube_res kube_res_netpols = { "networking.k8s.io", "v1", "networkpolicies", true };
const struct kube_res kube_res_mnetpols = { "k8s.cni.cncf.io", "v1beta1",
					   "multi-networkpolicies", true };
const struct kube_res kube_res_ippools = { "kvnet.io", "v1", "ippools", false };
const struct kube_res kube_res_l2networks = { "kvnet.io", "v1", "l2networks", false };
const struct kube_res kube_res_ipamblocks = { "kvnet.io", "v1", "ipamblocks", false };
const struct kube_res kube_res_ipamhandles = { "kvnet.io", "v1", "ipamhandles", false };
const struct kube_res kube_res_ipamconfigs = { "kvnet.io", "v1", "ipamconfigs", false };

#define KUBE_TARGET_MAX 2048
#define KUBE_TOKEN_MAX 8192

struct kube_client {
	bool https;                    /* TLS */
	char host[256];                /* server host, brackets stripped */
	char port[8];                  /* server port */
	char hosthdr[272];             /* Host header: host[:port], IPv6 bracketed */
	const struct tls_config *tls;  /* trust/identity (not owned) */
	char server_name[256];         /* name verified in the handshake */
	kube_token_fn token;           /* bearer token source, or NULL */
	void *token_user;              /* its argument */
	struct conn_opts copts;        /* timeouts */
	struct http_limits lim;        /* response limits */
	struct conn *conn;             /* keep-alive connection, or NULL */
	bool conn_used;                /* conn has carried a request before */
	struct kube_client_stats st;   /* counters */
	char tokbuf[KUBE_TOKEN_MAX];   /* last token read */
};

struct kube_watch {
	struct kube_client *c;        /* the client (not owned) */
	struct conn *conn;            /* this watch's own connection (owned) */
	struct http_stream s;         /* the body stream */
	struct watch_reader rd;       /* splits the body into events */
	const char *piece;            /* body bytes not yet fed to rd */
	size_t piece_len;             /* their count */
	bool done;                    /* the body ended */
	char target[KUBE_TARGET_MAX]; /* what was watched, for messages */
};

static void set_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

struct kube_client *kube_client_new(const struct kube_server *srv, struct err *e)
{
	if (!srv || !srv->host || !*srv->host || !srv->port || !*srv->port) {
		err_setx(e, EINVAL, "kube: client: server host and port are required");
		return NULL;
	}
	if (srv->https && !srv->tls) {
		err_setx(e, EINVAL, "kube: client: https needs a TLS configuration");
		return NULL;
	}
	struct kube_client *c = calloc(1, sizeof(*c));
	if (!c) {
		err_set(e, ENOMEM, "kube: client");
		return NULL;
	}
	const char *h = srv->host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(c->host) || strlen(srv->port) >= sizeof(c->port)) {
		err_setx(e, ENAMETOOLONG, "kube: client: server host or port too long");
		free(c);
		return NULL;
	}
	memcpy(c->host, h, hl);
	c->host[hl] = '\0';
	set_str(c->port, sizeof(c->port), srv->port);
	bool v6 = strchr(c->host, ':') != NULL;
	snprintf(c->hosthdr, sizeof(c->hosthdr), v6 ? "[%s]:%s" : "%s:%s", c->host, c->port);
	c->https = srv->https;
	c->tls = srv->tls;
	set_str(c->server_name, sizeof(c->server_name),
		srv->server_name && *srv->server_name ? srv->server_name : c->host);
	c->token = srv->token;
	c->token_user = srv->token_user;
	c->copts.connect_timeout_ms = srv->connect_timeout_ms;
	c->copts.io_timeout_ms = srv->io_timeout_ms;
	c->lim.max_body = srv->max_body;
	return c;
}

/* The token source for a kubeconfig: kcfg_token() caches and re-reads token files. */
static int kcfg_token_fn(void *user, bool force, char *buf, size_t cap, struct err *e)
{
	struct kcfg *k = user;
	struct timespec ts;
	const char *tok = NULL;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int r = kcfg_token(k, (int64_t)ts.tv_sec, force, &tok, e);
	if (r < 0)
		return r;
	if (!tok)
		tok = "";
	if (strlen(tok) >= cap)
		return err_setx(e, ENAMETOOLONG, "kube: bearer token longer than %zu bytes", cap - 1);
	memcpy(buf, tok, strlen(tok) + 1);
	return 0;
}

struct kube_client *kube_client_from_kcfg(struct kcfg *k, int io_timeout_ms, struct err *e)
{
	if (k->path_prefix && *k->path_prefix) {
		err_setx(e, ENOTSUP, "kube: server %s: a URL path prefix is not supported",
			 k->server);
		return NULL;
	}
	struct kube_server srv = {
		.https = strcmp(k->scheme, "https") == 0,
		.host = k->host,
		.port = k->port,
		.tls = k->tls,
		.token = kcfg_token_fn,
		.token_user = k,
		.io_timeout_ms = io_timeout_ms,
	};
	return kube_client_new(&srv, e);
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	if (c->conn)
		conn_close(c->conn);
	explicit_bzero(c->tokbuf, sizeof(c->tokbuf));
	free(c);
}

void kube_client_stats(const struct kube_client *c, struct kube_client_stats *out)
{
	*out = c->st;
}

void kube_resp_free(struct kube_resp *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* Open a connection to the server (TLS when configured). */
static int client_dial(struct kube_client *c, struct conn **out, struct err *e)
{
	int r = conn_open_tcp(out, c->host, c->port, &c->copts, e);
	if (r < 0)
		return r;
	c->st.connects++;
	if (c->https) {
		r = tls_wrap(out, c->tls, c->server_name, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Percent-encode every byte that may not appear raw in a path segment. */
static int put_segment(char *buf, size_t cap, size_t *off, const char *seg)
{
	if (!*seg || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)seg; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '~' || *p == ':' || *p == '@';
		int n = plain ? snprintf(buf + *off, cap - *off, "%c", *p)
			      : snprintf(buf + *off, cap - *off, "%%%02X", *p);
		if (n < 0 || (size_t)n >= cap - *off)
			return -ENOSPC;
		*off += (size_t)n;
	}
	return 0;
}

static int put_lit(char *buf, size_t cap, size_t *off, const char *s)
{
	int n = snprintf(buf + *off, cap - *off, "%s", s);
	if (n < 0 || (size_t)n >= cap - *off)
		return -ENOSPC;
	*off += (size_t)n;
	return 0;
}

int kube_path(char *buf, size_t cap, const struct kube_res *r, const char *ns,
	      const char *name, const char *sub)
{
	size_t off = 0;
	int rc;
	if (cap == 0)
		return -ENOSPC;
	buf[0] = '\0';
	if (r->namespaced && name && !ns)
		return -EINVAL;
	if (!r->namespaced)
		ns = NULL;
	if (*r->group)
		rc = put_lit(buf, cap, &off, "/apis/");
	else
		rc = put_lit(buf, cap, &off, "/api/");
	if (!rc && *r->group)
		rc = put_segment(buf, cap, &off, r->group);
	if (!rc && *r->group)
		rc = put_lit(buf, cap, &off, "/");
	if (!rc)
		rc = put_segment(buf, cap, &off, r->version);
	if (!rc && ns) {
		rc = put_lit(buf, cap, &off, "/namespaces/");
		if (!rc)
			rc = put_segment(buf, cap, &off, ns);
	}
	if (!rc)
		rc = put_lit(buf, cap, &off, "/");
	if (!rc)
		rc = put_segment(buf, cap, &off, r->plural);
	if (!rc && name) {
		rc = put_lit(buf, cap, &off, "/");
		if (!rc)
			rc = put_segment(buf, cap, &off, name);
	}
	if (!rc && sub) {
		rc = put_lit(buf, cap, &off, "/");
		if (!rc)
			rc = put_segment(buf, cap, &off, sub);
	}
	if (rc)
		buf[0] = '\0';
	return rc;
}

/* Fill reason/message from a Status body, if the body is one. */
static void parse_status(struct kube_resp *out)
{
	struct json_tok tok[64];
	struct json_doc d;
	out->reason[0] = out->message[0] = '\0';
	if (!out->body || json_parse(&d, out->body, out->len, tok, 64, 0, NULL) != 0)
		return;
	int k = json_get(&d, 0, "kind");
	if (k < 0 || !json_str_eq(&d, k, "Status", 6))
		return;
	int t = json_get(&d, 0, "reason");
	if (t >= 0 && json_str(&d, t, out->reason, sizeof(out->reason)) != 0)
		out->reason[0] = '\0';
	t = json_get(&d, 0, "message");
	if (t >= 0 && json_str(&d, t, out->message, sizeof(out->message)) == -ENOSPC) {
		/* keep what fits: decode into a bigger scratch and cut */
		char big[2048];
		if (json_str(&d, t, big, sizeof(big)) == 0)
			set_str(out->message, sizeof(out->message), big);
	}
}

static const char *status_text(int st)
{
	switch (st) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	}
	return "Error";
}

/* Map a non-2xx answer to -errno and a message. */
static int status_errno(const char *method, const char *target, struct kube_resp *out,
			struct err *e)
{
	int st = out->status, code;
	parse_status(out);
	if (st == 404)
		code = ENOENT;
	else if (st == 409)
		code = strcmp(out->reason, "AlreadyExists") == 0 ? EEXIST : ESTALE;
	else if (st == 410)
		code = ETIME;
	else if (st == 401)
		code = EACCES;
	else if (st == 403)
		code = EPERM;
	else if (st == 400 || st == 422)
		code = EINVAL;
	else if (st == 429)
		code = EBUSY;
	else
		code = EIO;
	const char *reason = out->reason[0] ? out->reason : status_text(st);
	if (out->message[0])
		return err_setx(e, code, "%s %s: %d %s: %s", method, target, st, reason,
				out->message);
	return err_setx(e, code, "%s %s: %d %s", method, target, st, reason);
}

/* Transport failures on a reused keep-alive connection that are worth one retry on a
 * fresh connection: the server closed it while it was idle. */
static bool stale_conn_error(int r)
{
	return r == -EPIPE || r == -ECONNRESET || r == -EPROTO || r == -ECONNABORTED;
}

static int get_token(struct kube_client *c, bool force, struct err *e)
{
	c->tokbuf[0] = '\0';
	if (!c->token)
		return 0;
	int r = c->token(c->token_user, force, c->tokbuf, sizeof(c->tokbuf), e);
	if (r < 0)
		err_prefix(e, "kube: token");
	return r;
}

/* One request/response with keep-alive, a retry on a stale connection and a retry
 * with a re-read token after a 401. */
static int client_do(struct kube_client *c, const char *method, const char *target,
		     const char *ctype, const char *body, size_t len, struct kube_resp *out,
		     struct err *e)
{
	struct http_req req = {
		.method = method,
		.target = target,
		.host = c->hosthdr,
		.content_type = ctype,
		.body = body,
		.body_len = len,
	};
	struct http_resp hr;
	bool token_retry = false;
	int r;

	memset(out, 0, sizeof(*out));
	r = get_token(c, false, e);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < 3; attempt++) {
		req.token = c->tokbuf[0] ? c->tokbuf : NULL;
		if (!c->conn) {
			r = client_dial(c, &c->conn, e);
			if (r < 0) {
				c->conn = NULL;
				err_prefix(e, "%s %s", method, target);
				return r;
			}
			c->conn_used = false;
		}
		bool reused = c->conn_used;
		c->st.requests++;
		memset(&hr, 0, sizeof(hr));
		r = http_do(c->conn, &req, &hr, &c->lim, e);
		c->conn_used = true;
		if (r < 0 || !hr.keep_alive) {
			conn_close(c->conn);
			c->conn = NULL;
		}
		if (r < 0) {
			http_resp_free(&hr);
			if (reused && stale_conn_error(r)) {
				c->st.retries++;
				continue;
			}
			err_prefix(e, "%s %s", method, target);
			return r;
		}
		out->status = hr.status;
		out->body = hr.body;
		out->len = hr.body_len;
		hr.body = NULL;
		http_resp_free(&hr);
		if (out->status == 401 && c->token && !token_retry) {
			token_retry = true;
			kube_resp_free(out);
			r = get_token(c, true, e);
			if (r < 0)
				return r;
			c->st.retries++;
			continue;
		}
		if (out->status >= 200 && out->status < 300) {
			/* A success answer must be JSON: catch a cut or garbled body here
			 * rather than in every caller (a count-only pass, no tokens kept). */
			struct json_doc d;
			int jr = out->len ? json_parse(&d, out->body, out->len, NULL, 0, 0, e) : 0;
			if (jr < 0 && jr != -ENOSPC) {
				err_prefix(e, "%s %s: %d answer is not JSON", method, target,
					   out->status);
				return -EPROTO;
			}
			return 0;
		}
		return status_errno(method, target, out, e);
	}
	return err_setx(e, EIO, "%s %s: gave up after retries", method, target);
}

static int make_target(char *t, size_t cap, const struct kube_res *r, const char *ns,
		       const char *name, const char *sub, struct err *e)
{
	int rc = kube_path(t, cap, r, ns, name, sub);
	if (rc < 0)
		return err_setx(e, -rc, "kube: %s %s/%s: cannot build the request path%s",
				r->plural, ns ? ns : "", name ? name : "",
				rc == -EINVAL ? " (bad name or missing namespace)" : " (too long)");
	return 0;
}

int kube_get(struct kube_client *c, const struct kube_res *r, const char *ns,
	     const char *name, struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	int rc = make_target(t, sizeof(t), r, ns, name, NULL, e);
	if (rc < 0)
		return rc;
	return client_do(c, "GET", t, NULL, NULL, 0, out, e);
}

static int add_query(char *t, size_t cap, const char *k, const char *v, struct err *e)
{
	if (!v || !*v)
		return 0;
	if (http_query_add(t, cap, k, v) < 0)
		return err_setx(e, ENOSPC, "kube: query parameter %s is too long", k);
	return 0;
}

int kube_list(struct kube_client *c, const struct kube_res *r, const char *ns,
	      const struct kube_list_opts *o, struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	char num[24];
	int rc = make_target(t, sizeof(t), r, ns, NULL, NULL, e);
	if (rc < 0)
		return rc;
	if (o) {
		if (o->limit)
			snprintf(num, sizeof(num), "%u", o->limit);
		if ((rc = add_query(t, sizeof(t), "labelSelector", o->label_selector, e)) < 0 ||
		    (rc = add_query(t, sizeof(t), "fieldSelector", o->field_selector, e)) < 0 ||
		    (rc = add_query(t, sizeof(t), "limit", o->limit ? num : NULL, e)) < 0 ||
		    (rc = add_query(t, sizeof(t), "continue", o->continue_token, e)) < 0 ||
		    (rc = add_query(t, sizeof(t), "resourceVersion", o->resource_version, e)) < 0)
			return rc;
	}
	return client_do(c, "GET", t, NULL, NULL, 0, out, e);
}

int kube_create(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *body, size_t len, struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	int rc = make_target(t, sizeof(t), r, ns, NULL, NULL, e);
	if (rc < 0)
		return rc;
	return client_do(c, "POST", t, "application/json", body, len, out, e);
}

int kube_update(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *name, const char *sub, const char *body, size_t len,
		struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	int rc = make_target(t, sizeof(t), r, ns, name, sub, e);
	if (rc < 0)
		return rc;
	return client_do(c, "PUT", t, "application/json", body, len, out, e);
}

int kube_patch(struct kube_client *c, const struct kube_res *r, const char *ns,
	       const char *name, const char *sub, enum kube_patch type, const char *body,
	       size_t len, struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	const char *ct = NULL;
	switch (type) {
	case KUBE_PATCH_MERGE:
		ct = "application/merge-patch+json";
		break;
	case KUBE_PATCH_JSON:
		ct = "application/json-patch+json";
		break;
	}
	if (!ct)
		return err_setx(e, EINVAL, "kube: patch: unknown patch type %d", (int)type);
	int rc = make_target(t, sizeof(t), r, ns, name, sub, e);
	if (rc < 0)
		return rc;
	return client_do(c, "PATCH", t, ct, body, len, out, e);
}

int kube_delete(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *name, const char *pre_uid, const char *pre_rv,
		struct kube_resp *out, struct err *e)
{
	char t[KUBE_TARGET_MAX];
	char body[512];
	int rc = make_target(t, sizeof(t), r, ns, name, NULL, e);
	if (rc < 0)
		return rc;
	if ((!pre_uid || !*pre_uid) && (!pre_rv || !*pre_rv))
		return client_do(c, "DELETE", t, NULL, NULL, 0, out, e);
	struct json_w w;
	json_w_init(&w, body, sizeof(body));
	json_w_obj_begin(&w);
	json_w_kstr(&w, "kind", "DeleteOptions");
	json_w_kstr(&w, "apiVersion", "v1");
	json_w_key(&w, "preconditions");
	json_w_obj_begin(&w);
	if (pre_uid && *pre_uid)
		json_w_kstr(&w, "uid", pre_uid);
	if (pre_rv && *pre_rv)
		json_w_kstr(&w, "resourceVersion", pre_rv);
	json_w_obj_end(&w);
	json_w_obj_end(&w);
	rc = json_w_finish(&w, e);
	if (rc < 0) {
		err_prefix(e, "DELETE %s: preconditions", t);
		return rc;
	}
	return client_do(c, "DELETE", t, "application/json", body, w.len, out, e);
}

/* ---- watch ------------------------------------------------------------------------- */

#define WATCH_EVENT_MAX (16u << 20) /* one event (one object) at most 16 MiB */

int kube_watch_open(struct kube_client *c, const struct kube_res *r, const char *ns,
		    const struct kube_watch_opts *o, struct kube_watch **out, struct err *e)
{
	struct kube_watch *w = calloc(1, sizeof(*w));
	char num[24];
	int rc;
	*out = NULL;
	if (!w)
		return err_set(e, ENOMEM, "kube: watch %s", r->plural);
	w->c = c;
	watch_init(&w->rd, WATCH_EVENT_MAX, 0);
	rc = make_target(w->target, sizeof(w->target), r, ns, NULL, NULL, e);
	if (rc < 0)
		goto fail;
	if ((rc = add_query(w->target, sizeof(w->target), "watch", "1", e)) < 0)
		goto fail;
	if (o) {
		if (o->timeout_seconds)
			snprintf(num, sizeof(num), "%u", o->timeout_seconds);
		if ((rc = add_query(w->target, sizeof(w->target), "resourceVersion",
				    o->resource_version, e)) < 0 ||
		    (rc = add_query(w->target, sizeof(w->target), "allowWatchBookmarks",
				    o->bookmarks ? "true" : NULL, e)) < 0 ||
		    (rc = add_query(w->target, sizeof(w->target), "labelSelector",
				    o->label_selector, e)) < 0 ||
		    (rc = add_query(w->target, sizeof(w->target), "fieldSelector",
				    o->field_selector, e)) < 0 ||
		    (rc = add_query(w->target, sizeof(w->target), "timeoutSeconds",
				    o->timeout_seconds ? num : NULL, e)) < 0)
			goto fail;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = get_token(c, attempt > 0, e);
		if (rc < 0)
			goto fail;
		struct http_req req = {
			.method = "GET",
			.target = w->target,
			.host = c->hosthdr,
			.token = c->tokbuf[0] ? c->tokbuf : NULL,
		};
		rc = client_dial(c, &w->conn, e);
		if (rc < 0) {
			w->conn = NULL;
			err_prefix(e, "GET %s", w->target);
			goto fail;
		}
		c->st.requests++;
		rc = http_stream_open(&w->s, w->conn, &req, &c->lim, e);
		if (rc < 0) {
			err_prefix(e, "GET %s", w->target);
			goto fail;
		}
		if (w->s.p.status >= 200 && w->s.p.status < 300)
			break;
		/* An error answer: read its (small) body for the Status, then map it. */
		struct kube_resp er = { .status = w->s.p.status };
		const char *data;
		size_t n;
		while (http_stream_next(&w->s, &data, &n, NULL) == 1 && er.len + n < 65536) {
			char *nb = realloc(er.body, er.len + n + 1);
			if (!nb)
				break;
			er.body = nb;
			memcpy(er.body + er.len, data, n);
			er.len += n;
			er.body[er.len] = '\0';
		}
		conn_close(w->conn);
		w->conn = NULL;
		bool retry = er.status == 401 && c->token && attempt == 0;
		if (!retry) {
			rc = status_errno("GET", w->target, &er, e);
			kube_resp_free(&er);
			goto fail;
		}
		kube_resp_free(&er);
		c->st.retries++;
	}
	*out = w;
	return 0;
fail:
	kube_watch_close(w);
	return rc;
}

int kube_watch_fd(const struct kube_watch *w)
{
	return conn_fd(w->conn);
}

void kube_watch_close(struct kube_watch *w)
{
	if (!w)
		return;
	if (w->conn)
		conn_close(w->conn);
	watch_free(&w->rd);
	free(w);
}

static const enum kube_ev_type ev_types[] = {
	[WATCH_ADDED] = KUBE_EV_ADDED,
	[WATCH_MODIFIED] = KUBE_EV_MODIFIED,
	[WATCH_DELETED] = KUBE_EV_DELETED,
	[WATCH_BOOKMARK] = KUBE_EV_BOOKMARK,
	[WATCH_ERROR] = KUBE_EV_ERROR,
};

/* Fill the public event from the reader's. */
static void event_view(const struct watch_event *we, struct kube_event *ev)
{
	const struct json_doc *d = &we->doc;
	size_t olen;
	ev->type = ev_types[we->type];
	ev->object = json_raw(d, we->object, &olen);
	ev->object_len = olen;
	ev->rv[0] = '\0';
	ev->code = 0;
	int rv = json_find(d, we->object, "metadata", "resourceVersion", NULL);
	if (rv >= 0 && json_str(d, rv, ev->rv, sizeof(ev->rv)) != 0)
		ev->rv[0] = '\0';
	if (we->type == WATCH_ERROR) {
		int code = json_get(d, we->object, "code");
		int64_t v = 0;
		if (code >= 0 && json_int64(d, code, &v) == 0 && v > 0 && v < 1000)
			ev->code = (int)v;
	}
}

int kube_watch_next(struct kube_watch *w, bool nonblock, struct kube_event *ev, struct err *e)
{
	for (;;) {
		if (w->piece_len) {
			struct watch_event we = { 0 };
			long k = watch_feed(&w->rd, w->piece, w->piece_len, &we, e);
			if (k < 0) {
				err_prefix(e, "watch %s", w->target);
				return (int)k;
			}
			w->piece += k;
			w->piece_len -= (size_t)k;
			if (we.type) {
				event_view(&we, ev);
				return 1;
			}
			continue;
		}
		if (w->done)
			return 0;
		/* Only touch the socket when it has something: never block the loop. */
		if (nonblock && !http_stream_buffered(&w->s)) {
			struct pollfd pfd = { .fd = conn_fd(w->conn), .events = POLLIN };
			if (poll(&pfd, 1, 0) == 0)
				return -EAGAIN;
		}
		int rc = http_stream_next(&w->s, &w->piece, &w->piece_len, e);
		if (rc < 0) {
			err_prefix(e, "watch %s", w->target);
			return rc;
		}
		if (rc == 0) {
			w->done = true;
			rc = watch_finish(&w->rd, e);
			if (rc < 0) {
				err_prefix(e, "watch %s", w->target);
				return rc;
			}
		}
	}
}
