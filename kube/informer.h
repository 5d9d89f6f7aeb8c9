/* informer — list + watch one resource type into a local store, on the event loop.
 *
 *   start ──► LIST (paged) ──► diff against the store: add/update/delete callbacks
 *                │                      │
 *                │ fails                ▼
 *                ▼               WATCH from the list's resourceVersion ◄──────────┐
 *        backoff timer ◄── fails ──┤  ADDED/MODIFIED/DELETED → store + callbacks   │
 *   (capped exponential, jitter)   │  BOOKMARK → remember the version             │
 *                                  │  stream ends normally ───────────────────────┘
 *                                  │  410 Expired (HTTP or in-stream) → LIST again
 *                                  └  connection lost → backoff, WATCH from last version
 *
 * While the server is unreachable the store keeps the last known state; nothing is
 * deleted until a successful LIST says so. The LIST is a blocking call with the
 * client's io timeout (the agent tolerates that); watch events are read without
 * blocking whenever the socket is readable.
 *
 * Objects in the store are private copies of their JSON text; the callbacks get views
 * that are valid only during the call (copy what you keep). Callbacks may not free the
 * informer.
 */
#ifndef KVNET_KUBE_INFORMER_H
#define KVNET_KUBE_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct ev_loop;
struct kube_client;
struct kube_res;
struct json_doc;
struct json_tok;

/* One stored object. */
struct kube_obj {
	const char *ns;    /* metadata.namespace ("" when cluster-scoped) */
	const char *name;  /* metadata.name */
	const char *uid;   /* metadata.uid */
	const char *rv;    /* metadata.resourceVersion */
	const char *json;  /* the whole object, NUL-terminated */
	size_t len;        /* its length */
};

/* Parse o's JSON into d, the tokens malloc'd into *tok (free it; NULL on failure).
 * 0, or -errno from json_parse / -ENOMEM. */
int kube_obj_parse(const struct kube_obj *o, struct json_doc *d, struct json_tok **tok);

struct kube_informer_ops {
	void (*add)(void *user, const struct kube_obj *obj);
	void (*update)(void *user, const struct kube_obj *old, const struct kube_obj *obj);
	void (*del)(void *user, const struct kube_obj *obj);
	/* The first LIST after start (or after a relist) has been applied. */
	void (*synced)(void *user);
	/* Something failed (list, watch, a malformed event); the informer retries by
	 * itself. For logs and metrics. */
	void (*error)(void *user, const struct err *e);
};

struct kube_informer_opts {
	const char *ns;              /* namespace, or NULL for all */
	const char *label_selector;  /* or NULL */
	const char *field_selector;  /* or NULL, e.g. "spec.nodeName=node-a" */
	unsigned page_size;          /* LIST limit; 0 = 500 */
	unsigned watch_timeout_s;    /* ask the server to end watches after this; 0 = 300 */
	unsigned backoff_min_ms;     /* first retry delay; 0 = 200 */
	unsigned backoff_max_ms;     /* cap; 0 = 30000 */
};

struct kube_informer_stats {
	uint64_t lists;        /* LISTs completed */
	uint64_t relists;      /* LISTs caused by 410 Expired */
	uint64_t watches;      /* watches opened */
	uint64_t reconnects;   /* retries after a failure */
	uint64_t events;       /* watch events applied */
	uint64_t bookmarks;    /* bookmarks seen */
	uint64_t errors;       /* failures reported through ops->error */
};

struct kube_informer;

/* A stopped informer; strings in o are copied; client, loop and user must outlive it.
 * NULL with e set on failure. */
struct kube_informer *kube_informer_new(struct ev_loop *loop, struct kube_client *c,
					const struct kube_res *r,
					const struct kube_informer_opts *o,
					const struct kube_informer_ops *ops, void *user,
					struct err *e);
/* Begin (the first LIST runs from the loop, not inside this call). 0 or -errno. */
int kube_informer_start(struct kube_informer *inf, struct err *e);
/* Stop watching (the store is kept). */
void kube_informer_stop(struct kube_informer *inf);
void kube_informer_free(struct kube_informer *inf);

/* Stored object by namespace ("" or NULL for cluster-scoped) and name; false if absent.
 * *out is valid until the loop next runs the informer. */
bool kube_informer_get(const struct kube_informer *inf, const char *ns, const char *name,
		       struct kube_obj *out);
size_t kube_informer_count(const struct kube_informer *inf);
/* Visit every stored object (unordered). */
void kube_informer_each(const struct kube_informer *inf,
			void (*fn)(void *user, const struct kube_obj *obj), void *user);
bool kube_informer_synced(const struct kube_informer *inf);
/* The resourceVersion the informer will resume from. */
const char *kube_informer_rv(const struct kube_informer *inf);
void kube_informer_stats(const struct kube_informer *inf, struct kube_informer_stats *out);

#endif
