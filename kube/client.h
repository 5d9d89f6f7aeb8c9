/* client — Kubernetes API operations over HTTP/1.1 (+TLS): get, list, create, update,
 * patch, delete, the status subresource, and watch streams.
 *
 * A client holds one keep-alive connection for request/response calls (re-opened when
 * the server closes it) and opens a separate connection per watch. It is not
 * thread-safe; one per thread or event loop.
 *
 * Results. Every call returns 0 for a 2xx answer and fills a struct kube_resp with the
 * body; otherwise -errno, with the API's Status reason and message in resp (when given)
 * and in e ("GET /api/v1/namespaces/ns/pods/x: 404 NotFound: pods \"x\" not found"):
 *
 *   -ENOENT  404 NotFound            -EEXIST  409 AlreadyExists
 *   -ESTALE  409 Conflict (the resourceVersion or a precondition no longer matches;
 *            returned as such, never retried here)
 *   -ETIME   410 Gone / Expired (resourceVersion too old: relist)
 *   -EACCES  401 (after one retry with a freshly read token)   -EPERM 403
 *   -EINVAL  400 / 422 Invalid       -EBUSY 429 TooManyRequests
 *   -EIO     5xx and other statuses  -EPROTO a malformed answer
 *   and the transport's -ECONNREFUSED, -ETIMEDOUT, ... when the server is unreachable.
 */
#ifndef KVNET_KUBE_CLIENT_H
#define KVNET_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct tls_config;
struct kcfg;

/* A resource type: /api/VERSION/... for the core group ("" group), else
 * /apis/GROUP/VERSION/... */
struct kube_res {
	const char *group;    /* API group; "" for core */
	const char *version;  /* "v1" */
	const char *plural;   /* resource name in URLs: "pods" */
	bool namespaced;      /* objects live in a namespace */
};

extern const struct kube_res kube_res_pods;
extern const struct kube_res kube_res_nodes;
extern const struct kube_res kube_res_namespaces;
extern const struct kube_res kube_res_vmis;        /* kubevirt.io/v1 virtualmachineinstances */
extern const struct kube_res kube_res_vms;         /* kubevirt.io/v1 virtualmachines */
extern const struct kube_res kube_res_vmims;       /* kubevirt.io/v1 virtualmachineinstancemigrations */
extern const struct kube_res kube_res_netpols;     /* networking.k8s.io/v1 networkpolicies */
extern const struct kube_res kube_res_mnetpols;    /* k8s.cni.cncf.io/v1beta1 multi-networkpolicies */
extern const struct kube_res kube_res_ippools;     /* kvnet.io/v1, cluster-scoped */
extern const struct kube_res kube_res_l2networks;  /* kvnet.io/v1, cluster-scoped */
extern const struct kube_res kube_res_ipamblocks;  /* kvnet.io/v1, cluster-scoped */
extern const struct kube_res kube_res_ipamhandles; /* kvnet.io/v1, cluster-scoped */
extern const struct kube_res kube_res_ipamconfigs; /* kvnet.io/v1, cluster-scoped */

/* Returns the bearer token into buf (NUL-terminated); force = the last one was refused
 * (HTTP 401), re-read it now. 0 or -errno with e. */
typedef int (*kube_token_fn)(void *user, bool force, char *buf, size_t cap, struct err *e);

struct kube_server {
	bool https;                    /* TLS (else plain HTTP, for tests only) */
	const char *host;              /* name or IP literal (IPv6 without brackets is fine) */
	const char *port;              /* "6443" */
	const struct tls_config *tls;  /* trust and client identity; required for https */
	const char *server_name;       /* name to verify (NULL: host) */
	kube_token_fn token;           /* NULL: no Authorization header */
	void *token_user;              /* passed to token */
	int connect_timeout_ms;        /* 0 = 10 s */
	int io_timeout_ms;             /* 0 = 30 s */
	uint64_t max_body;             /* largest response body; 0 = 64 MiB */
};

struct kube_client;

/* A client for srv; strings are copied, tls and token_user must outlive the client.
 * Nothing is connected until the first call. NULL (e says why) on bad arguments. */
struct kube_client *kube_client_new(const struct kube_server *srv, struct err *e);
/* A client for a resolved kubeconfig (kube/kubeconfig.h); the kcfg must outlive it. */
struct kube_client *kube_client_from_kcfg(struct kcfg *k, int io_timeout_ms, struct err *e);
void kube_client_free(struct kube_client *c);

/* Counters, for tests and metrics. */
struct kube_client_stats {
	uint64_t requests;   /* requests sent (retries included) */
	uint64_t connects;   /* connections opened (watches included) */
	uint64_t retries;    /* requests re-sent on a fresh connection or a fresh token */
};
void kube_client_stats(const struct kube_client *c, struct kube_client_stats *out);

struct kube_resp {
	int status;          /* HTTP status; 0 when no answer came */
	char *body;          /* body, NUL-terminated, malloc'd; free with kube_resp_free() */
	size_t len;          /* body bytes */
	char reason[48];     /* Status.reason of an error answer ("Conflict"), or "" */
	char message[256];   /* Status.message of an error answer, or "" */
};
void kube_resp_free(struct kube_resp *r);

struct kube_list_opts {
	const char *label_selector;   /* "app=x,tier in (a,b)" or NULL */
	const char *field_selector;   /* "spec.nodeName=node-a" or NULL */
	unsigned limit;               /* page size; 0 = no limit */
	const char *continue_token;   /* from the previous page's metadata.continue */
	const char *resource_version; /* list at/after this version, or NULL */
};

enum kube_patch {
	KUBE_PATCH_MERGE,  /* application/merge-patch+json (RFC 7386) */
	KUBE_PATCH_JSON,   /* application/json-patch+json (RFC 6902) */
};

/* Build the path for (res, ns, name, subresource) into buf; ns/name/sub may be NULL.
 * 0 or -ENOSPC/-EINVAL (namespace missing for a namespaced kind, or bad characters). */
int kube_path(char *buf, size_t cap, const struct kube_res *r, const char *ns,
	      const char *name, const char *sub);

int kube_get(struct kube_client *c, const struct kube_res *r, const char *ns,
	     const char *name, struct kube_resp *out, struct err *e);
/* One page; ns NULL lists across all namespaces. */
int kube_list(struct kube_client *c, const struct kube_res *r, const char *ns,
	      const struct kube_list_opts *o, struct kube_resp *out, struct err *e);
int kube_create(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *body, size_t len, struct kube_resp *out, struct err *e);
/* PUT; the body's metadata.resourceVersion is the compare-and-swap precondition.
 * sub: NULL or "status". */
int kube_update(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *name, const char *sub, const char *body, size_t len,
		struct kube_resp *out, struct err *e);
int kube_patch(struct kube_client *c, const struct kube_res *r, const char *ns,
	       const char *name, const char *sub, enum kube_patch type, const char *body,
	       size_t len, struct kube_resp *out, struct err *e);
/* DELETE with optional preconditions (uid and/or resourceVersion; NULL = none). */
int kube_delete(struct kube_client *c, const struct kube_res *r, const char *ns,
		const char *name, const char *pre_uid, const char *pre_rv,
		struct kube_resp *out, struct err *e);

/* ---- watch ------------------------------------------------------------------------- */

enum kube_ev_type {
	KUBE_EV_ADDED,
	KUBE_EV_MODIFIED,
	KUBE_EV_DELETED,
	KUBE_EV_BOOKMARK,
	KUBE_EV_ERROR,
};

struct kube_event {
	enum kube_ev_type type;  /* event type */
	const char *object;      /* the object's JSON text (not NUL-terminated) */
	size_t object_len;       /* its length */
	char rv[32];             /* object's metadata.resourceVersion ("" if absent) */
	int code;                /* ERROR: Status.code (410 = Expired: relist) */
};

struct kube_watch_opts {
	const char *resource_version;  /* start after this version; NULL/"": current state first */
	const char *label_selector;    /* or NULL */
	const char *field_selector;    /* or NULL */
	bool bookmarks;                /* allowWatchBookmarks */
	unsigned timeout_seconds;      /* server ends the stream after this; 0 = server default */
};

struct kube_watch;

/* Open a watch on its own connection. Returns 0 and *out, or -errno (an HTTP 410 is -ETIME,
 * as for other calls). */
int kube_watch_open(struct kube_client *c, const struct kube_res *r, const char *ns,
		    const struct kube_watch_opts *o, struct kube_watch **out, struct err *e);
/* Next event. Returns 1 with *ev (valid until the next call), 0 when the stream ended
 * normally (re-open from the last version), -EAGAIN when `nonblock` is set and no
 * complete event is buffered or readable now, -errno on error (-ETIMEDOUT when the
 * connection was quiet for the io timeout). */
int kube_watch_next(struct kube_watch *w, bool nonblock, struct kube_event *ev, struct err *e);
/* The socket, for poll/epoll (readable = call kube_watch_next). */
int kube_watch_fd(const struct kube_watch *w);
void kube_watch_close(struct kube_watch *w);

#endif
