/* ipam kubernetes datastore; see ds_kube.h. */
#include "ipam/ds_kube.h"

#include "kube/client.h"
#include "lib/json.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define OBJ_MAX (8u << 20) /* largest object body written */
#define CONT_MAX 4096	   /* largest continue token accepted */

static const struct kube_res *const kind_res[IPAM_KIND_LAST + 1] = {
    NULL, &kube_res_ippools, &kube_res_ipamblocks, &kube_res_ipamhandles, &kube_res_ipamconfigs};
static const char *const kind_obj[IPAM_KIND_LAST + 1] = {NULL, "IPPool", "IPAMBlock", "IPAMHandle",
							 "IPAMConfig"};

void ipam_ds_kube_init(struct ipam_ds_kube *k, struct kube_client *c)
{
	k->c = c;
	k->page = 0;
	k->st = NULL;
	k->lockfd = -1;
}

int ipam_ds_kube_lock(struct ipam_ds_kube *k, const char *path, struct err *e)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(e, errno, "ipam kubernetes datastore: lock file %s: open", path);
	if (k->lockfd >= 0)
		close(k->lockfd);
	k->lockfd = fd;
	return 0;
}

void ipam_ds_kube_fini(struct ipam_ds_kube *k)
{
	if (k->lockfd >= 0)
		close(k->lockfd);
	k->lockfd = -1;
}

/* The API server could not be reached or could not serve now: try again later. */
static bool unavailable(int r)
{
	switch (-r) {
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EPIPE:
	case ENOTCONN:
	case EIO:   /* 5xx */
	case EBUSY: /* 429 */
	case EAGAIN:
		return true;
	default:
		return false;
	}
}

/* Turn a client error (e already says what failed) into this datastore's error. */
static int api_err(int r, struct err *e, const char *what, const char *plural, const char *name)
{
	if (unavailable(r)) {
		r = -EAGAIN;
		err_prefix(e, "API server unavailable");
		if (e)
			e->code = EAGAIN;
	}
	err_prefix(e, "ipam kubernetes datastore: %s %s%s%s", what, plural, name[0] ? " " : "",
		   name);
	return r;
}

/* Parse text into *d with a malloc'd token array (*tok; free it even on error). */
static int parse(struct json_doc *d, const char *text, size_t len, struct json_tok **tok,
		 struct err *e)
{
	*tok = NULL;
	int r = json_parse(d, text, len, NULL, 0, 0, e);
	if (r && r != -ENOSPC)
		return r;
	*tok = calloc(d->n ? d->n : 1, sizeof(**tok));
	if (!*tok)
		return err_set(e, ENOMEM, "parse");
	return json_parse(d, text, len, *tok, d->n, 0, e);
}

/* Load one record: parse the spec strictly, then keep it in canonical form so that
 * ipam_state_diff() compares like with like. */
static int load_one(struct ipam_state *st, enum ipam_kind k, const char *name, const char *ver,
		    const char *spec, size_t len, struct err *e)
{
	struct ipam_state tmp;
	struct json_w w;
	ipam_state_init(&tmp);
	json_w_init_grow(&w, OBJ_MAX);
	int r = ipam_state_load(&tmp, k, name, ver, spec, len, e);
	if (!r)
		r = ipam_rec_write(&tmp, k, name, &w, e);
	if (!r)
		r = json_w_finish(&w, e);
	if (!r)
		r = ipam_state_load(st, k, name, ver, w.buf, w.len, e);
	json_w_free(&w);
	ipam_state_free(&tmp);
	return r;
}

/* Load object token v of d (metadata.name, metadata.resourceVersion, spec). */
static int load_item(struct ipam_state *st, enum ipam_kind k, const struct json_doc *d, int v,
		     struct err *e)
{
	const char *plural = kind_res[k]->plural;
	char name[IPAM_NAME_MAX + 1], ver[IPAM_VERSION_MAX + 1];
	int nt = json_find(d, v, "metadata", "name", NULL);
	int vt = json_find(d, v, "metadata", "resourceVersion", NULL);
	int sp = json_get(d, v, "spec");
	if (nt < 0 || json_str(d, nt, name, sizeof(name)) || !ipam_name_valid(name))
		return err_setx(e, EUCLEAN,
				"ipam kubernetes datastore: list %s: an item has no valid "
				"metadata.name",
				plural);
	if (vt < 0 || json_str(d, vt, ver, sizeof(ver)) || !ver[0])
		return err_setx(e, EUCLEAN,
				"ipam kubernetes datastore: %s %s: no metadata.resourceVersion",
				plural, name);
	if (sp < 0 || json_type(d, sp) != JSON_OBJECT)
		return err_setx(e, EUCLEAN, "ipam kubernetes datastore: %s %s: no spec object",
				plural, name);
	size_t sl;
	const char *s = json_raw(d, sp, &sl);
	int r = load_one(st, k, name, ver, s, sl, e);
	if (r) {
		if (r != -ENOMEM && e)
			e->code = EUCLEAN;
		if (r != -ENOMEM)
			r = -EUCLEAN;
		err_prefix(e, "ipam kubernetes datastore: %s %s: bad spec", plural, name);
	}
	return r;
}

int ipam_ds_kube_load_obj(struct ipam_state *st, enum ipam_kind k, const char *name,
			  const char *body, size_t len, struct err *e)
{
	struct json_doc d;
	struct json_tok *tok;
	char got[IPAM_NAME_MAX + 1];
	int r = parse(&d, body, len, &tok, e);
	if (r) {
		err_prefix(e, "ipam kubernetes datastore: get %s %s: bad answer",
			   kind_res[k]->plural, name);
	} else if (json_type(&d, 0) != JSON_OBJECT) {
		r = err_setx(e, EPROTO, "ipam kubernetes datastore: get %s %s: not an object",
			     kind_res[k]->plural, name);
	} else {
		int nt = json_find(&d, 0, "metadata", "name", NULL);
		if (nt >= 0 && (json_str(&d, nt, got, sizeof(got)) || strcmp(got, name)))
			r = err_setx(e, EPROTO,
				     "ipam kubernetes datastore: get %s %s: the answer is "
				     "another object",
				     kind_res[k]->plural, name);
		else
			r = load_item(st, k, &d, 0, e);
	}
	free(tok);
	return r;
}

int ipam_ds_kube_load_page(struct ipam_state *st, enum ipam_kind k, const char *body, size_t len,
			   char *cont, size_t cont_cap, struct err *e)
{
	const char *plural = kind_res[k]->plural;
	struct json_doc d;
	struct json_tok *tok;
	cont[0] = 0;
	int r = parse(&d, body, len, &tok, e);
	if (r) {
		err_prefix(e, "ipam kubernetes datastore: list %s: bad answer", plural);
		goto out;
	}
	int items = json_get(&d, 0, "items");
	if (items >= 0 && json_is_null(&d, items))
		items = -ENOENT; /* an empty list may say "items": null */
	else if (items < 0 || json_type(&d, items) != JSON_ARRAY) {
		r = err_setx(e, EPROTO, "ipam kubernetes datastore: list %s: no items array",
			     plural);
		goto out;
	}
	int ct = json_find(&d, 0, "metadata", "continue", NULL);
	if (ct >= 0 && json_type(&d, ct) == JSON_STRING && json_str(&d, ct, cont, cont_cap)) {
		r = err_setx(e, EPROTO, "ipam kubernetes datastore: list %s: bad continue token",
			     plural);
		goto out;
	}
	struct json_iter it;
	int kt, v;
	json_iter_init(&it, &d, items);
	while (items >= 0 && json_iter_next(&it, &kt, &v))
		if ((r = load_item(st, k, &d, v, e)))
			goto out;
	r = 0;
out:
	free(tok);
	return r;
}

static int kube_load_kind(struct ipam_ds_kube *k, enum ipam_kind kind, struct ipam_state *st,
			  struct err *e)
{
	char *cont = malloc(CONT_MAX);
	if (!cont)
		return err_set(e, ENOMEM, "ipam kubernetes datastore: list");
	cont[0] = 0;
	int r = 0;
	do {
		struct kube_list_opts o = {.limit = k->page ? k->page : IPAM_DS_KUBE_PAGE,
					   .continue_token = cont[0] ? cont : NULL};
		struct kube_resp resp = {0};
		r = kube_list(k->c, kind_res[kind], NULL, &o, &resp, e);
		if (r)
			r = api_err(r, e, "list", kind_res[kind]->plural, "");
		else
			r = ipam_ds_kube_load_page(st, kind, resp.body, resp.len, cont, CONT_MAX,
						   e);
		kube_resp_free(&resp);
	} while (!r && cont[0]);
	free(cont);
	return r;
}

int ipam_ds_kube_config(struct ipam_ds_kube *k, struct ipam_config *out, struct err *e)
{
	struct kube_resp resp = {0};
	struct json_doc d;
	struct json_tok *tok = NULL;
	struct ipam_state st;
	ipam_state_init(&st);
	int r = kube_get(k->c, &kube_res_ipamconfigs, NULL, IPAM_CONFIG_NAME, &resp, e);
	if (r == -ENOENT) {
		err_clear(e);
		r = 0; /* no record: the defaults */
	} else if (r) {
		r = api_err(r, e, "get", "ipamconfigs", IPAM_CONFIG_NAME);
	} else if (parse(&d, resp.body, resp.len, &tok, e)) {
		r = err_setx(e, EUCLEAN,
			     "ipam kubernetes datastore: get ipamconfigs " IPAM_CONFIG_NAME
			     ": bad answer");
	} else {
		int sp = json_get(&d, 0, "spec");
		size_t sl;
		const char *spec = sp >= 0 && json_type(&d, sp) == JSON_OBJECT
				       ? json_raw(&d, sp, &sl)
				       : NULL;
		if (!spec)
			r = err_setx(e, EUCLEAN,
				     "ipam kubernetes datastore: ipamconfigs " IPAM_CONFIG_NAME
				     ": no spec object");
		else if ((r = ipam_state_load(&st, IPAM_CONFIG, IPAM_CONFIG_NAME, "", spec, sl,
					      e))) {
			r = r == -ENOMEM ? r : -EUCLEAN;
			if (e && r == -EUCLEAN)
				e->code = EUCLEAN;
			err_prefix(e, "ipam kubernetes datastore: ipamconfigs: bad spec");
		}
	}
	ipam_config_get(&st, out);
	ipam_state_free(&st);
	free(tok);
	kube_resp_free(&resp);
	return r;
}

static int kube_begin(void *ctx, struct err *e)
{
	struct ipam_ds_kube *k = ctx;
	while (k->lockfd >= 0 && flock(k->lockfd, LOCK_EX))
		if (errno != EINTR)
			return err_set(e, errno, "ipam kubernetes datastore: lock file: flock");
	return 0;
}

static void kube_end(void *ctx)
{
	struct ipam_ds_kube *k = ctx;
	if (k->lockfd >= 0)
		flock(k->lockfd, LOCK_UN);
}

/* GET one object into st; absent is not an error. */
static int kube_load_one(struct ipam_ds_kube *k, enum ipam_kind kind, const char *name,
			 struct ipam_state *st, struct err *e)
{
	if (!ipam_name_valid(name))
		return err_setx(e, EINVAL, "ipam kubernetes datastore: %s %.64s: bad name",
				ipam_kind_name(kind), name);
	struct kube_resp resp = {0};
	int r = kube_get(k->c, kind_res[kind], NULL, name, &resp, e);
	if (r == -ENOENT) {
		err_clear(e);
		r = 0;
	} else if (r) {
		r = api_err(r, e, "get", kind_res[kind]->plural, name);
	} else {
		r = ipam_ds_kube_load_obj(st, kind, name, resp.body, resp.len, e);
	}
	kube_resp_free(&resp);
	return r;
}

static int kube_load(void *ctx, const struct ipam_ds_scope *scope, struct ipam_state *st,
		     struct err *e)
{
	struct ipam_ds_kube *k = ctx;
	k->st = st; /* the commit of this update undoes with the loaded records */
	int r = 0;
	for (int kind = IPAM_POOL; kind <= IPAM_KIND_LAST && !r; kind++) {
		if (kind == IPAM_HANDLE && scope && scope->handle)
			r = kube_load_one(k, IPAM_HANDLE, scope->handle, st, e);
		else if (kind == IPAM_CONFIG && scope && scope->handle)
			r = kube_load_one(k, IPAM_CONFIG, IPAM_CONFIG_NAME, st, e);
		else
			r = kube_load_kind(ctx, (enum ipam_kind)kind, st, e);
	}
	return r;
}

/* The object for change c: apiVersion, kind, metadata (name, resourceVersion when
 * updating), spec. Malloc'd into *out. */
static int object_of(const struct ipam_change *c, char **out, size_t *len, struct err *e)
{
	struct json_doc d;
	struct json_tok *tok;
	int r = parse(&d, c->json, c->len, &tok, e);
	if (r) {
		free(tok);
		err_prefix(e, "ipam kubernetes datastore: %s %s: record", ipam_kind_name(c->kind),
			   c->name);
		return r;
	}
	struct json_w w;
	json_w_init_grow(&w, OBJ_MAX);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "apiVersion", "kvnet.io/v1");
	json_w_kstr(&w, "kind", kind_obj[c->kind]);
	json_w_key(&w, "metadata");
	json_w_obj_begin(&w);
	json_w_kstr(&w, "name", c->name);
	if (c->version[0])
		json_w_kstr(&w, "resourceVersion", c->version);
	json_w_obj_end(&w);
	json_w_key(&w, "spec");
	json_w_tok(&w, &d, 0);
	json_w_obj_end(&w);
	free(tok);
	r = json_w_finish(&w, e);
	if (r) {
		json_w_free(&w);
		err_prefix(e, "ipam kubernetes datastore: %s %s", ipam_kind_name(c->kind), c->name);
		return r;
	}
	*out = json_w_take(&w, len);
	return *out ? 0
		    : err_set(e, ENOMEM, "ipam kubernetes datastore: %s %s",
			      ipam_kind_name(c->kind), c->name);
}

/* The resourceVersion of the object in a create/update answer into rv ("" if none). */
static void answer_rv(const struct kube_resp *resp, char *rv, size_t cap)
{
	struct json_doc d;
	struct json_tok *tok = NULL;
	rv[0] = 0;
	if (resp->body && !parse(&d, resp->body, resp->len, &tok, NULL)) {
		int t = json_find(&d, 0, "metadata", "resourceVersion", NULL);
		if (t < 0 || json_str(&d, t, rv, cap))
			rv[0] = 0;
	}
	free(tok);
}

/* Write one object: json NULL = DELETE with precondition version; else PUT with
 * metadata.resourceVersion = version, or POST when version is "". The new
 * resourceVersion goes to new_rv (cap IPAM_VERSION_MAX + 1). -ESTALE on a conflict. */
static int write_obj(struct ipam_ds_kube *k, enum ipam_kind kind, const char *name,
		     const char *json, size_t len, const char *version, char *new_rv, struct err *e)
{
	const struct kube_res *res = kind_res[kind];
	struct kube_resp resp = {0};
	const char *what;
	int r;
	new_rv[0] = 0;
	if (!ipam_name_valid(name))
		return err_setx(e, EINVAL, "ipam kubernetes datastore: %s %.64s: bad name",
				ipam_kind_name(kind), name);
	if (!json) {
		what = "delete";
		r = kube_delete(k->c, res, NULL, name, NULL, version, &resp, e);
	} else {
		char *body;
		size_t blen;
		struct ipam_change c = {.kind = kind,
					.name = name,
					.json = (char *)json,
					.len = len,
					.version = version};
		r = object_of(&c, &body, &blen, e);
		if (r)
			return r;
		if (version[0]) {
			what = "update";
			r = kube_update(k->c, res, NULL, name, NULL, body, blen, &resp, e);
		} else {
			what = "create";
			r = kube_create(k->c, res, NULL, body, blen, &resp, e);
		}
		free(body);
		if (!r)
			answer_rv(&resp, new_rv, IPAM_VERSION_MAX + 1);
	}
	kube_resp_free(&resp);
	if (!r)
		return 0;
	/* someone else wrote it since our load: the whole update starts again */
	if (r == -ESTALE || r == -EEXIST || (r == -ENOENT && version[0])) {
		err_prefix(e,
			   "ipam kubernetes datastore: %s %s %s: changed since read (expected "
			   "version %s)",
			   what, res->plural, name, version[0] ? version : "none");
		if (e)
			e->code = ESTALE;
		return -ESTALE;
	}
	return api_err(r, e, what, res->plural, name);
}

/* The record as loaded (the state load filled), or NULL. */
static const struct ipam_loaded *loaded_of(const struct ipam_ds_kube *k, enum ipam_kind kind,
					   const char *name)
{
	for (unsigned i = 0; k->st && i < k->st->n_loaded; i++)
		if (k->st->loaded[i].kind == kind && !strcmp(k->st->loaded[i].name, name))
			return &k->st->loaded[i];
	return NULL;
}

/* Undo the first n changes, already written with versions rv[i], newest first, each by
 * compare-and-swap on the version we wrote (an object someone changed after us is left
 * alone). Returns how many could not be undone. */
static unsigned rollback(struct ipam_ds_kube *k, const struct ipam_change *c, unsigned n,
			 char (*rv)[IPAM_VERSION_MAX + 1])
{
	unsigned left = 0;
	char nv[IPAM_VERSION_MAX + 1];
	while (n--) {
		const struct ipam_loaded *l = loaded_of(k, c[n].kind, c[n].name);
		int r;
		if (!c[n].version[0]) /* created: delete it */
			r = rv[n][0] ? write_obj(k, c[n].kind, c[n].name, NULL, 0, rv[n], nv, NULL)
				     : -ESTALE;
		else if (!l) /* cannot happen: a change with a version was loaded */
			r = -ENOENT;
		else if (!c[n].json) /* deleted: create it again */
			r = write_obj(k, c[n].kind, c[n].name, l->json, l->len, "", nv, NULL);
		else /* updated: put the loaded record back */
			r = rv[n][0] ? write_obj(k, c[n].kind, c[n].name, l->json, l->len, rv[n],
						 nv, NULL)
				     : -ESTALE;
		left += r != 0;
	}
	return left;
}

static int kube_commit(void *ctx, const struct ipam_change *c, unsigned n, struct err *e)
{
	struct ipam_ds_kube *k = ctx;
	char(*rv)[IPAM_VERSION_MAX + 1] = calloc(n ? n : 1, sizeof(*rv));
	if (!rv)
		return err_set(e, ENOMEM, "ipam kubernetes datastore: commit");
	int r = 0;
	unsigned i;
	for (i = 0; i < n && !r; i++)
		r = write_obj(k, c[i].kind, c[i].name, c[i].json, c[i].len, c[i].version, rv[i], e);
	if (r && i > 1) {
		unsigned left = rollback(k, c, i - 1, rv);
		if (left)
			err_prefix(e,
				   "%u of %u earlier writes could not be undone (changed "
				   "since)",
				   left, i - 1);
	}
	free(rv);
	return r;
}

static const struct ipam_ds_ops kube_ops = {
    .name = "kubernetes",
    .begin = kube_begin,
    .load = kube_load,
    .commit = kube_commit,
    .end = kube_end,
};

struct ipam_ds ipam_ds_kube(struct ipam_ds_kube *k)
{
	return (struct ipam_ds){.ops = &kube_ops, .ctx = k};
}
