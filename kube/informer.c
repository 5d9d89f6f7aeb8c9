/* informer — list + watch into a local store; see informer.h. */
#include "kube/informer.h"
#include "kube/client.h"
#include "lib/json.h"
#include "lib/err.h"
#include "lib/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct ent {
	struct ent *next;    /* hash chain */
	uint64_t hash;       /* of "ns/name" */
	struct kube_obj o;   /* view into blob */
	char *blob;          /* ns\0name\0uid\0rv\0json\0 (owned) */
};

struct store {
	struct ent **b;   /* buckets */
	size_t nb;        /* bucket count, a power of two */
	size_t n;         /* entries */
};

enum inf_next {
	INF_NEXT_LIST,   /* the retry timer runs a LIST */
	INF_NEXT_WATCH,  /* the retry timer re-opens the watch from rv */
};

struct kube_informer {
	struct ev_loop *loop;              /* the loop (not owned) */
	struct kube_client *c;             /* the client (not owned) */
	const struct kube_res *res;        /* resource type (static) */
	struct kube_informer_opts o;       /* options; strings point at the copies below */
	char *ns, *lsel, *fsel;            /* owned copies of the option strings */
	struct kube_informer_ops ops;      /* callbacks */
	void *user;                        /* their argument */
	struct store st;                   /* the local store */
	char rv[32];                       /* version to resume from */
	bool running;                      /* started and not stopped */
	bool synced;                       /* a LIST has been applied */
	enum inf_next next;                /* what the retry timer does */
	unsigned backoff_ms;               /* next retry delay (before jitter) */
	uint64_t rnd;                      /* xorshift state for jitter */
	struct ev_timer *timer;            /* retry / start timer */
	struct kube_watch *w;              /* open watch, or NULL */
	struct ev_io *io;                  /* watcher of w's socket, or NULL */
	struct kube_informer_stats stats;  /* counters */
};

/* ---- store ------------------------------------------------------------------------- */

static uint64_t key_hash(const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = ns ? ns : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static void ent_free(struct ent *x)
{
	if (!x)
		return;
	free(x->blob);
	free(x);
}

static void store_clear(struct store *s)
{
	for (size_t i = 0; i < s->nb; i++) {
		struct ent *x = s->b[i];
		while (x) {
			struct ent *nx = x->next;
			ent_free(x);
			x = nx;
		}
	}
	free(s->b);
	memset(s, 0, sizeof(*s));
}

static struct ent **store_slot(const struct store *s, const char *ns, const char *name,
			       uint64_t h)
{
	if (!s->nb)
		return NULL;
	struct ent **pp = &s->b[h & (s->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->o.ns, ns ? ns : "") == 0 &&
		    strcmp((*pp)->o.name, name) == 0)
			return pp;
	return pp;
}

static struct ent *store_find(const struct store *s, const char *ns, const char *name)
{
	struct ent **pp = store_slot(s, ns, name, key_hash(ns, name));
	return pp ? *pp : NULL;
}

static int store_grow(struct store *s)
{
	size_t nb = s->nb ? s->nb * 2 : 64;
	struct ent **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < s->nb; i++) {
		struct ent *x = s->b[i];
		while (x) {
			struct ent *nx = x->next;
			x->next = b[x->hash & (nb - 1)];
			b[x->hash & (nb - 1)] = x;
			x = nx;
		}
	}
	free(s->b);
	s->b = b;
	s->nb = nb;
	return 0;
}

/* Insert x, replacing (and returning) an entry with the same key, or NULL. */
static struct ent *store_put(struct store *s, struct ent *x)
{
	if (s->n + 1 > s->nb - s->nb / 4 && store_grow(s) < 0 && !s->nb)
		return x; /* cannot store at all: caller treats as failure */
	struct ent **pp = store_slot(s, x->o.ns, x->o.name, x->hash);
	struct ent *old = *pp;
	if (old) {
		x->next = old->next;
		old->next = NULL;
	} else {
		x->next = NULL;
		s->n++;
	}
	*pp = x;
	return old;
}

static struct ent *store_take(struct store *s, const char *ns, const char *name)
{
	struct ent **pp = store_slot(s, ns, name, key_hash(ns, name));
	if (!pp || !*pp)
		return NULL;
	struct ent *x = *pp;
	*pp = x->next;
	x->next = NULL;
	s->n--;
	return x;
}

/* Make a store entry from an object's JSON text. -EPROTO when it has no metadata.name. */
static int ent_make(const char *json, size_t len, struct ent **out, struct err *e)
{
	struct json_doc d;
	struct json_tok small[512];
	struct json_tok *tok = small;
	char ns[256] = "", name[256] = "", uid[64] = "", rv[32] = "";
	int rc = json_parse(&d, json, len, tok, 512, 0, e);
	if (rc == -ENOSPC) {
		unsigned need = d.n;
		tok = calloc(need, sizeof(*tok));
		if (!tok)
			return err_set(e, ENOMEM, "informer: object");
		rc = json_parse(&d, json, len, tok, need, 0, e);
	}
	if (rc < 0)
		goto out;
	int m = json_get(&d, 0, "metadata");
	int t;
	if (m < 0 || (t = json_get(&d, m, "name")) < 0 || json_str(&d, t, name, sizeof(name)) ||
	    !*name) {
		rc = err_setx(e, EPROTO, "informer: object without a usable metadata.name");
		goto out;
	}
	if ((t = json_get(&d, m, "namespace")) >= 0 && json_str(&d, t, ns, sizeof(ns)))
		ns[0] = '\0';
	if ((t = json_get(&d, m, "uid")) >= 0 && json_str(&d, t, uid, sizeof(uid)))
		uid[0] = '\0';
	if ((t = json_get(&d, m, "resourceVersion")) >= 0 && json_str(&d, t, rv, sizeof(rv)))
		rv[0] = '\0';
	size_t lns = strlen(ns), lname = strlen(name), luid = strlen(uid), lrv = strlen(rv);
	struct ent *x = calloc(1, sizeof(*x));
	char *blob = malloc(lns + lname + luid + lrv + len + 5);
	if (!x || !blob) {
		free(x);
		free(blob);
		rc = err_set(e, ENOMEM, "informer: object %s/%s", ns, name);
		goto out;
	}
	char *p = blob;
	x->o.ns = memcpy(p, ns, lns + 1);
	p += lns + 1;
	x->o.name = memcpy(p, name, lname + 1);
	p += lname + 1;
	x->o.uid = memcpy(p, uid, luid + 1);
	p += luid + 1;
	x->o.rv = memcpy(p, rv, lrv + 1);
	p += lrv + 1;
	memcpy(p, json, len);
	p[len] = '\0';
	x->o.json = p;
	x->o.len = len;
	x->blob = blob;
	x->hash = key_hash(ns, name);
	*out = x;
	rc = 0;
out:
	if (tok != small)
		free(tok);
	return rc;
}

/* ---- scheduling -------------------------------------------------------------------- */

static void inf_timer_cb(struct ev_loop *loop, struct ev_timer *t, void *user);
static void inf_io_cb(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		      void *user);

static uint64_t rnd_next(struct kube_informer *inf)
{
	uint64_t x = inf->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	inf->rnd = x;
	return x;
}

static void report(struct kube_informer *inf, const struct err *e)
{
	inf->stats.errors++;
	if (inf->ops.error)
		inf->ops.error(inf->user, e);
}

static void close_watch(struct kube_informer *inf)
{
	if (inf->io) {
		ev_io_del(inf->io);
		inf->io = NULL;
	}
	kube_watch_close(inf->w);
	inf->w = NULL;
}

/* Retry `what` after the current backoff (with jitter: between half and all of it),
 * then double the backoff up to the cap. */
static void retry_later(struct kube_informer *inf, enum inf_next what)
{
	close_watch(inf);
	inf->next = what;
	unsigned b = inf->backoff_ms;
	uint64_t delay = b / 2 + rnd_next(inf) % (b / 2 + 1);
	inf->stats.reconnects++;
	ev_timer_arm(inf->timer, delay, 0);
	inf->backoff_ms = b * 2 > inf->o.backoff_max_ms ? inf->o.backoff_max_ms : b * 2;
}

static void run_now(struct kube_informer *inf, enum inf_next what)
{
	close_watch(inf);
	inf->next = what;
	ev_timer_arm(inf->timer, 0, 0);
}

/* ---- list -------------------------------------------------------------------------- */

/* Add one LIST page's items to `into`; sets rv from the first page and cont. */
static int list_page(struct kube_informer *inf, const struct kube_resp *r, struct store *into,
		     bool first, char *cont, size_t contcap, struct err *e)
{
	struct json_doc d;
	int rc = json_parse(&d, r->body, r->len, NULL, 0, 0, e);
	if (rc != -ENOSPC && rc < 0) {
		err_prefix(e, "informer %s: list", inf->res->plural);
		return rc;
	}
	unsigned need = d.n;
	struct json_tok *tok = calloc(need ? need : 1, sizeof(*tok));
	if (!tok)
		return err_set(e, ENOMEM, "informer %s: list", inf->res->plural);
	rc = json_parse(&d, r->body, r->len, tok, need, 0, e);
	if (rc < 0) {
		err_prefix(e, "informer %s: list", inf->res->plural);
		goto out;
	}
	int items = json_get(&d, 0, "items");
	int t;
	if (items < 0 || (json_type(&d, items) != JSON_ARRAY && !json_is_null(&d, items))) {
		rc = err_setx(e, EPROTO, "informer %s: list answer has no items array",
			      inf->res->plural);
		goto out;
	}
	if (first) {
		t = json_find(&d, 0, "metadata", "resourceVersion", NULL);
		if (t < 0 || json_str(&d, t, inf->rv, sizeof(inf->rv)) || !inf->rv[0]) {
			rc = err_setx(e, EPROTO, "informer %s: list answer has no resourceVersion",
				      inf->res->plural);
			goto out;
		}
	}
	cont[0] = '\0';
	t = json_find(&d, 0, "metadata", "continue", NULL);
	if (t >= 0 && json_str(&d, t, cont, contcap))
		cont[0] = '\0';
	struct json_iter it;
	int k, v;
	json_iter_init(&it, &d, items);
	while (json_iter_next(&it, &k, &v)) {
		size_t len;
		const char *raw = json_raw(&d, v, &len);
		struct ent *x;
		rc = ent_make(raw, len, &x, e);
		if (rc < 0) {
			err_prefix(e, "informer %s: list item", inf->res->plural);
			goto out;
		}
		ent_free(store_put(into, x));
	}
	rc = 0;
out:
	free(tok);
	return rc;
}

static int do_list(struct kube_informer *inf, struct err *e)
{
	struct store fresh = { 0 };
	char cont[1024] = "";
	int rc;
	bool first = true;
	do {
		struct kube_list_opts lo = {
			.label_selector = inf->o.label_selector,
			.field_selector = inf->o.field_selector,
			.limit = inf->o.page_size,
			.continue_token = first ? NULL : cont,
		};
		struct kube_resp r;
		rc = kube_list(inf->c, inf->res, inf->o.ns, &lo, &r, e);
		if (rc == 0)
			rc = list_page(inf, &r, &fresh, first, cont, sizeof(cont), e);
		kube_resp_free(&r);
		if (rc < 0) {
			store_clear(&fresh);
			return rc;
		}
		first = false;
	} while (cont[0]);

	/* Diff the fresh snapshot against the store, then swap. */
	for (size_t i = 0; i < fresh.nb; i++)
		for (struct ent *x = fresh.b[i]; x; x = x->next) {
			struct ent *old = store_find(&inf->st, x->o.ns, x->o.name);
			if (!old) {
				if (inf->ops.add)
					inf->ops.add(inf->user, &x->o);
			} else if (strcmp(old->o.rv, x->o.rv) != 0 || strcmp(old->o.uid, x->o.uid)) {
				if (inf->ops.update)
					inf->ops.update(inf->user, &old->o, &x->o);
			}
		}
	for (size_t i = 0; i < inf->st.nb; i++)
		for (struct ent *x = inf->st.b[i]; x; x = x->next)
			if (!store_find(&fresh, x->o.ns, x->o.name) && inf->ops.del)
				inf->ops.del(inf->user, &x->o);
	store_clear(&inf->st);
	inf->st = fresh;
	inf->stats.lists++;
	inf->synced = true;
	if (inf->ops.synced)
		inf->ops.synced(inf->user);
	return 0;
}

/* ---- watch ------------------------------------------------------------------------- */

static int open_watch(struct kube_informer *inf, struct err *e)
{
	struct kube_watch_opts wo = {
		.resource_version = inf->rv,
		.label_selector = inf->o.label_selector,
		.field_selector = inf->o.field_selector,
		.bookmarks = true,
		.timeout_seconds = inf->o.watch_timeout_s,
	};
	int rc = kube_watch_open(inf->c, inf->res, inf->o.ns, &wo, &inf->w, e);
	if (rc < 0)
		return rc;
	inf->stats.watches++;
	rc = ev_io_add(inf->loop, kube_watch_fd(inf->w), EPOLLIN, inf_io_cb, inf, NULL, &inf->io,
		       e);
	if (rc < 0) {
		close_watch(inf);
		return rc;
	}
	return 0;
}

static void apply_event(struct kube_informer *inf, const struct kube_event *ev)
{
	struct err e = { 0 };
	struct ent *x = NULL;
	switch (ev->type) {
	case KUBE_EV_ADDED:
	case KUBE_EV_MODIFIED:
		if (ent_make(ev->object, ev->object_len, &x, &e) < 0) {
			report(inf, &e);
			return;
		}
		struct ent *old = store_put(&inf->st, x);
		if (old == x) { /* could not store */
			ent_free(x);
			err_setx(&e, ENOMEM, "informer %s: store full", inf->res->plural);
			report(inf, &e);
			return;
		}
		if (old && inf->ops.update)
			inf->ops.update(inf->user, &old->o, &x->o);
		else if (!old && inf->ops.add)
			inf->ops.add(inf->user, &x->o);
		ent_free(old);
		break;
	case KUBE_EV_DELETED:
		if (ent_make(ev->object, ev->object_len, &x, &e) < 0) {
			report(inf, &e);
			return;
		}
		struct ent *gone = store_take(&inf->st, x->o.ns, x->o.name);
		if (gone && inf->ops.del)
			inf->ops.del(inf->user, &x->o);
		ent_free(gone);
		ent_free(x);
		break;
	case KUBE_EV_BOOKMARK:
		inf->stats.bookmarks++;
		break;
	case KUBE_EV_ERROR:
		break;
	}
	if (ev->rv[0])
		memcpy(inf->rv, ev->rv, sizeof(inf->rv));
	inf->stats.events++;
}

static void inf_io_cb(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t revents,
		      void *user)
{
	struct kube_informer *inf = user;
	(void)loop;
	(void)io;
	(void)fd;
	(void)revents;
	for (int budget = 0; budget < 1024 && inf->w; budget++) {
		struct kube_event ev;
		struct err e = { 0 };
		int rc = kube_watch_next(inf->w, true, &ev, &e);
		if (rc == -EAGAIN)
			return;
		if (rc == 0) { /* ended normally (timeoutSeconds): resume from rv */
			run_now(inf, INF_NEXT_WATCH);
			return;
		}
		if (rc < 0) {
			report(inf, &e);
			retry_later(inf, INF_NEXT_WATCH);
			return;
		}
		if (ev.type == KUBE_EV_ERROR) {
			if (ev.code == 410) {
				inf->stats.relists++;
				run_now(inf, INF_NEXT_LIST);
			} else {
				err_setx(&e, EIO, "informer %s: watch error event (code %d)",
					 inf->res->plural, ev.code);
				report(inf, &e);
				retry_later(inf, INF_NEXT_WATCH);
			}
			return;
		}
		apply_event(inf, &ev);
		inf->backoff_ms = inf->o.backoff_min_ms;
	}
}

static void inf_timer_cb(struct ev_loop *loop, struct ev_timer *t, void *user)
{
	struct kube_informer *inf = user;
	struct err e = { 0 };
	int rc;
	(void)loop;
	(void)t;
	if (!inf->running)
		return;
	if (inf->next == INF_NEXT_LIST) {
		rc = do_list(inf, &e);
		if (rc < 0) {
			report(inf, &e);
			retry_later(inf, INF_NEXT_LIST);
			return;
		}
	}
	rc = open_watch(inf, &e);
	if (rc == -ETIME) { /* our version is too old: relist */
		inf->stats.relists++;
		run_now(inf, INF_NEXT_LIST);
		return;
	}
	if (rc < 0) {
		report(inf, &e);
		retry_later(inf, INF_NEXT_WATCH);
		return;
	}
	if (inf->next == INF_NEXT_LIST)
		inf->backoff_ms = inf->o.backoff_min_ms;
}

/* ---- public ------------------------------------------------------------------------ */

static char *dup_opt(const char *s, bool *bad)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*bad = true;
	return d;
}

struct kube_informer *kube_informer_new(struct ev_loop *loop, struct kube_client *c,
					const struct kube_res *r,
					const struct kube_informer_opts *o,
					const struct kube_informer_ops *ops, void *user,
					struct err *e)
{
	struct kube_informer *inf = calloc(1, sizeof(*inf));
	bool bad = false;
	if (!inf) {
		err_set(e, ENOMEM, "informer %s", r->plural);
		return NULL;
	}
	inf->loop = loop;
	inf->c = c;
	inf->res = r;
	if (o)
		inf->o = *o;
	inf->ns = dup_opt(inf->o.ns, &bad);
	inf->lsel = dup_opt(inf->o.label_selector, &bad);
	inf->fsel = dup_opt(inf->o.field_selector, &bad);
	inf->o.ns = inf->ns;
	inf->o.label_selector = inf->lsel;
	inf->o.field_selector = inf->fsel;
	if (!inf->o.page_size)
		inf->o.page_size = 500;
	if (!inf->o.watch_timeout_s)
		inf->o.watch_timeout_s = 300;
	if (!inf->o.backoff_min_ms)
		inf->o.backoff_min_ms = 200;
	if (!inf->o.backoff_max_ms)
		inf->o.backoff_max_ms = 30000;
	if (inf->o.backoff_max_ms < inf->o.backoff_min_ms)
		inf->o.backoff_max_ms = inf->o.backoff_min_ms;
	inf->backoff_ms = inf->o.backoff_min_ms;
	if (ops)
		inf->ops = *ops;
	inf->user = user;
	if (getrandom(&inf->rnd, sizeof(inf->rnd), GRND_NONBLOCK) != sizeof(inf->rnd) ||
	    !inf->rnd)
		inf->rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)inf;
	if (bad) {
		err_set(e, ENOMEM, "informer %s", r->plural);
		kube_informer_free(inf);
		return NULL;
	}
	if (ev_timer_add(loop, 0, 0, inf_timer_cb, inf, NULL, &inf->timer, e) < 0) {
		kube_informer_free(inf);
		return NULL;
	}
	ev_timer_disarm(inf->timer);
	return inf;
}

int kube_informer_start(struct kube_informer *inf, struct err *e)
{
	(void)e;
	inf->running = true;
	inf->synced = false;
	run_now(inf, INF_NEXT_LIST);
	return 0;
}

void kube_informer_stop(struct kube_informer *inf)
{
	inf->running = false;
	close_watch(inf);
	if (inf->timer)
		ev_timer_disarm(inf->timer);
}

void kube_informer_free(struct kube_informer *inf)
{
	if (!inf)
		return;
	kube_informer_stop(inf);
	if (inf->timer)
		ev_timer_del(inf->timer);
	store_clear(&inf->st);
	free(inf->ns);
	free(inf->lsel);
	free(inf->fsel);
	free(inf);
}

bool kube_informer_get(const struct kube_informer *inf, const char *ns, const char *name,
		       struct kube_obj *out)
{
	struct ent *x = store_find(&inf->st, ns ? ns : "", name);
	if (x)
		*out = x->o;
	return x != NULL;
}

size_t kube_informer_count(const struct kube_informer *inf)
{
	return inf->st.n;
}

void kube_informer_each(const struct kube_informer *inf,
			void (*fn)(void *user, const struct kube_obj *obj), void *user)
{
	for (size_t i = 0; i < inf->st.nb; i++)
		for (struct ent *x = inf->st.b[i]; x; x = x->next)
			fn(user, &x->o);
}

bool kube_informer_synced(const struct kube_informer *inf)
{
	return inf->synced;
}

const char *kube_informer_rv(const struct kube_informer *inf)
{
	return inf->rv;
}

void kube_informer_stats(const struct kube_informer *inf, struct kube_informer_stats *out)
{
	*out = inf->stats;
}

int kube_obj_parse(const struct kube_obj *o, struct json_doc *d, struct json_tok **tok)
{
	return json_parse_alloc(d, o->json, o->len, tok, NULL);
}
