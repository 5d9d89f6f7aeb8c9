/* kubeconfig — kubeconfig files and the in-cluster service account; see kubeconfig.h.
 *
 * Each file is parsed with libyaml's document API into a list of named entries (clusters,
 * users, contexts), each remembering the directory of its file; the files are merged
 * (first definition of a name wins) and the chosen context is resolved into a struct
 * kcfg. The YAML walk has a fixed shape (top level → list → entry → field), so anchors,
 * aliases and even alias cycles cannot make it recurse or expand.
 */
#include "kube/kubeconfig.h"

#include "kube/pem.h"
#include "kube/tls.h"
#include "lib/err.h"
#include "lib/file.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define KCFG_FILE_MAX (4 * 1024 * 1024)
#define KCFG_TOKEN_MAX (64 * 1024)

enum kind { K_CLUSTER, K_USER, K_CONTEXT, K_NKINDS };

/* Fields of all kinds share one index space; each kind uses its own subset. */
enum field {
	F_SERVER,
	F_CA,
	F_CA_DATA,
	F_TLS_NAME,
	F_TOKEN,
	F_TOKEN_FILE,
	F_CERT,
	F_CERT_DATA,
	F_KEY,
	F_KEY_DATA,
	F_CLUSTER,
	F_USER,
	F_NAMESPACE,
	F_NFIELDS,
};

struct field_def {
	enum kind kind;      /* which entry kind has this key */
	const char *key;     /* YAML key */
	enum field f;        /* where the value goes */
	bool is_path;        /* a file name, relative to the kubeconfig's directory */
};

static const struct field_def field_defs[] = {
	{ K_CLUSTER, "server", F_SERVER, false },
	{ K_CLUSTER, "certificate-authority", F_CA, true },
	{ K_CLUSTER, "certificate-authority-data", F_CA_DATA, false },
	{ K_CLUSTER, "tls-server-name", F_TLS_NAME, false },
	{ K_USER, "token", F_TOKEN, false },
	{ K_USER, "tokenFile", F_TOKEN_FILE, true },
	{ K_USER, "client-certificate", F_CERT, true },
	{ K_USER, "client-certificate-data", F_CERT_DATA, false },
	{ K_USER, "client-key", F_KEY, true },
	{ K_USER, "client-key-data", F_KEY_DATA, false },
	{ K_CONTEXT, "cluster", F_CLUSTER, false },
	{ K_CONTEXT, "user", F_USER, false },
	{ K_CONTEXT, "namespace", F_NAMESPACE, false },
};

static const char *const kind_list[K_NKINDS] = { "clusters", "users", "contexts" };
static const char *const kind_key[K_NKINDS] = { "cluster", "user", "context" };

struct ent {
	char *name;            /* entry name */
	char *v[F_NFIELDS];    /* field values (NULL = absent); paths already resolved */
	bool insecure;         /* cluster: insecure-skip-tls-verify */
	bool unsupported_auth; /* user: exec / auth-provider / username (not supported) */
	const char *file;      /* the file that defined it (owned by the doc) */
};

struct doc {
	char *current;             /* current-context from the first file that set it */
	const char *current_file;  /* where it came from (owned by files) */
	struct ent *ents[K_NKINDS]; /* entries of each kind, first definition of a name */
	size_t n[K_NKINDS];        /* entries used */
	size_t cap[K_NKINDS];      /* entries allocated */
	char **files;              /* paths of the files merged, in order (owned) */
	size_t nfiles;             /* entries in files */
};

/* ---- small helpers ------------------------------------------------------------------ */

static char *xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t nl = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, nl) == 0 && (*envp)[nl] == '=')
			return *envp + nl + 1;
	return NULL;
}

/* The directory part of path ("." when it has none). */
static char *dir_of(const char *path)
{
	const char *sl = strrchr(path, '/');
	if (!sl)
		return xstrdup(".");
	if (sl == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(sl - path));
}

/* A path from a kubeconfig entry, made absolute-or-cwd-relative like kubectl does. */
static char *resolve_path(const char *dir, const char *p)
{
	if (p[0] == '/' || !dir)
		return xstrdup(p);
	return xasprintf("%s/%s", dir, p);
}

/* ---- YAML walk ------------------------------------------------------------------------ */

struct walk {
	yaml_document_t *doc; /* the parsed document */
	const char *what;     /* the file name, for messages */
	const char *dir;      /* directory for relative paths; NULL = keep as is */
	struct doc *d;        /* where entries go */
	const char *file;     /* the file name as stored in d */
};

static int at(const struct walk *w, const yaml_node_t *n, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int at(const struct walk *w, const yaml_node_t *n, struct err *e, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_setx(e, EINVAL, "kubeconfig %s: line %zu column %zu: %s", w->what,
			n->start_mark.line + 1, n->start_mark.column + 1, msg);
}

/* A YAML null: an empty or ~/null plain scalar. */
static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	return l == 0 || (l == 1 && v[0] == '~') ||
	       (l == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 ||
			   memcmp(v, "NULL", 4) == 0));
}

/* A scalar as a new string; *out NULL for a YAML null. */
static int scalar(const struct walk *w, const yaml_node_t *n, const char *path, char **out,
		  struct err *e)
{
	*out = NULL;
	if (n->type != YAML_SCALAR_NODE)
		return at(w, n, e, "%s: expected a string", path);
	if (is_null(n))
		return 0;
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	if (memchr(v, '\0', l))
		return at(w, n, e, "%s: NUL byte in the value", path);
	*out = xstrndup(v, l);
	return *out ? 0 : err_set(e, ENOMEM, "kubeconfig %s", w->what);
}

/* YAML 1.1 booleans, as Go's yaml accepts them. */
static int boolean(const struct walk *w, const yaml_node_t *n, const char *path, bool *out,
		   struct err *e)
{
	static const char *const t[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
					 "ON", "y", "Y" };
	static const char *const f[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off",
					 "OFF", "n", "N" };
	if (n->type != YAML_SCALAR_NODE)
		return at(w, n, e, "%s: expected true or false", path);
	if (is_null(n)) {
		*out = false;
		return 0;
	}
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strlen(t[i]) == l && memcmp(t[i], v, l) == 0) {
			*out = true;
			return 0;
		}
		if (strlen(f[i]) == l && memcmp(f[i], v, l) == 0) {
			*out = false;
			return 0;
		}
	}
	return at(w, n, e, "%s: expected true or false", path);
}

static bool key_is(const yaml_node_t *k, const char *s)
{
	return k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(s) &&
	       memcmp(k->data.scalar.value, s, k->data.scalar.length) == 0;
}

static void ent_clear(struct ent *x)
{
	free(x->name);
	for (int i = 0; i < F_NFIELDS; i++)
		free(x->v[i]);
	memset(x, 0, sizeof(*x));
}

static struct ent *find(const struct doc *d, enum kind k, const char *name)
{
	for (size_t i = 0; i < d->n[k]; i++)
		if (strcmp(d->ents[k][i].name, name) == 0)
			return &d->ents[k][i];
	return NULL;
}

/* Fill x from the entry body mapping (the "cluster:" / "user:" / "context:" value). */
static int walk_body(const struct walk *w, enum kind k, const yaml_node_t *body,
		     const char *path, struct ent *x, struct err *e)
{
	char sub[160];
	if (is_null(body))
		return 0;
	if (body->type != YAML_MAPPING_NODE)
		return at(w, body, e, "%s: expected a mapping", path);
	for (yaml_node_pair_t *p = body->data.mapping.pairs.start; p < body->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *key = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(w->doc, p->value);
		if (!key || !val)
			continue;
		if (k == K_CLUSTER && key_is(key, "insecure-skip-tls-verify")) {
			snprintf(sub, sizeof(sub), "%s.insecure-skip-tls-verify", path);
			int r = boolean(w, val, sub, &x->insecure, e);
			if (r < 0)
				return r;
			continue;
		}
		if (k == K_USER && (key_is(key, "exec") || key_is(key, "auth-provider") ||
				    key_is(key, "username"))) {
			x->unsupported_auth = !is_null(val);
			continue;
		}
		for (size_t i = 0; i < sizeof(field_defs) / sizeof(field_defs[0]); i++) {
			const struct field_def *fd = &field_defs[i];
			if (fd->kind != k || !key_is(key, fd->key))
				continue;
			snprintf(sub, sizeof(sub), "%s.%s", path, fd->key);
			char *v;
			int r = scalar(w, val, sub, &v, e);
			if (r < 0)
				return r;
			if (v && fd->is_path) {
				char *abs = resolve_path(w->dir, v);
				free(v);
				if (!abs)
					return err_set(e, ENOMEM, "kubeconfig %s", w->what);
				v = abs;
			}
			free(x->v[fd->f]);
			x->v[fd->f] = v;
		}
	}
	return 0;
}

/* clusters: / users: / contexts: — a list of {name, KIND: {...}}. */
static int walk_list(const struct walk *w, enum kind k, const yaml_node_t *list, struct err *e)
{
	if (is_null(list))
		return 0;
	if (list->type != YAML_SEQUENCE_NODE)
		return at(w, list, e, "%s: expected a list", kind_list[k]);
	struct doc *d = w->d;
	size_t idx = 0;
	for (yaml_node_item_t *it = list->data.sequence.items.start;
	     it < list->data.sequence.items.top; it++, idx++) {
		char path[96];
		snprintf(path, sizeof(path), "%s[%zu]", kind_list[k], idx);
		yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		if (!item)
			continue;
		if (item->type != YAML_MAPPING_NODE)
			return at(w, item, e, "%s: expected a mapping", path);
		struct ent x = { 0 };
		const yaml_node_t *body = NULL;
		int r = 0;
		for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
		     p < item->data.mapping.pairs.top && r == 0; p++) {
			yaml_node_t *key = yaml_document_get_node(w->doc, p->key);
			yaml_node_t *val = yaml_document_get_node(w->doc, p->value);
			if (!key || !val)
				continue;
			if (key_is(key, "name")) {
				char sub[112];
				snprintf(sub, sizeof(sub), "%s.name", path);
				free(x.name);
				r = scalar(w, val, sub, &x.name, e);
			} else if (key_is(key, kind_key[k])) {
				body = val;
			}
		}
		if (r == 0 && !x.name)
			r = at(w, item, e, "%s: no name", path);
		if (r == 0 && body) {
			char sub[112];
			snprintf(sub, sizeof(sub), "%s.%s", path, kind_key[k]);
			r = walk_body(w, k, body, sub, &x, e);
		}
		if (r < 0) {
			ent_clear(&x);
			return r;
		}
		if (find(d, k, x.name)) { /* defined by an earlier file (or entry): it wins */
			ent_clear(&x);
			continue;
		}
		if (d->n[k] == d->cap[k]) {
			size_t nc = d->cap[k] ? d->cap[k] * 2 : 4;
			struct ent *ne = realloc(d->ents[k], nc * sizeof(*ne));
			if (!ne) {
				ent_clear(&x);
				return err_set(e, ENOMEM, "kubeconfig %s", w->what);
			}
			d->ents[k] = ne;
			d->cap[k] = nc;
		}
		x.file = w->file;
		d->ents[k][d->n[k]++] = x;
	}
	return 0;
}

/* Parse one file's text into d. dir: for relative paths (NULL: keep them as written). */
static int parse_into(struct doc *d, const char *text, size_t len, const char *what,
		      const char *dir, const char *file, struct err *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return err_set(e, ENOMEM, "kubeconfig %s: yaml parser", what);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		r = err_setx(e, EINVAL, "kubeconfig %s: line %zu column %zu: %s%s%s", what,
			     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			     parser.problem ? parser.problem : "YAML error",
			     parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return r;
	}
	struct walk w = { .doc = &doc, .what = what, .dir = dir, .d = d, .file = file };
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && !is_null(root)) {
		if (root->type != YAML_MAPPING_NODE) {
			r = at(&w, root, e, "expected a mapping at the top level");
		} else {
			for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
			     p < root->data.mapping.pairs.top && r == 0; p++) {
				yaml_node_t *key = yaml_document_get_node(&doc, p->key);
				yaml_node_t *val = yaml_document_get_node(&doc, p->value);
				if (!key || !val)
					continue;
				if (key_is(key, "current-context")) {
					char *cc;
					r = scalar(&w, val, "current-context", &cc, e);
					if (r == 0 && cc && *cc && !d->current) {
						d->current = cc;
						d->current_file = file;
					} else {
						free(cc);
					}
					continue;
				}
				for (int k = 0; k < K_NKINDS; k++)
					if (key_is(key, kind_list[k]))
						r = walk_list(&w, (enum kind)k, val, e);
			}
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return r;
}

static void doc_free(struct doc *d)
{
	free(d->current);
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t i = 0; i < d->n[k]; i++)
			ent_clear(&d->ents[k][i]);
		free(d->ents[k]);
	}
	for (size_t i = 0; i < d->nfiles; i++)
		free(d->files[i]);
	free(d->files);
	memset(d, 0, sizeof(*d));
}

int kcfg_check_text(const char *text, size_t len, const char *what, struct err *e)
{
	struct doc d = { 0 };
	int r = parse_into(&d, text, len, what, NULL, what, e);
	doc_free(&d);
	return r;
}

/* ---- resolving ---------------------------------------------------------------------- */

void kcfg_free(struct kcfg *k)
{
	if (!k)
		return;
	free(k->source);
	free(k->context);
	free(k->cluster);
	free(k->user);
	free(k->server);
	free(k->scheme);
	free(k->host);
	free(k->port);
	free(k->path_prefix);
	free(k->ns);
	tls_config_free(k->tls);
	if (k->token) {
		memset(k->token, 0, strlen(k->token));
		free(k->token);
	}
	free(k->token_file);
	if (k->cached_token) {
		memset(k->cached_token, 0, strlen(k->cached_token));
		free(k->cached_token);
	}
	free(k);
}

/* Split "scheme://host[:port][/path]" into k. */
static int parse_server(struct kcfg *k, const char *where, struct err *e)
{
	const char *u = k->server;
	const char *rest;
	const char *dflt;
	if (strncasecmp(u, "https://", 8) == 0) {
		k->scheme = xstrdup("https");
		rest = u + 8;
		dflt = "443";
	} else if (strncasecmp(u, "http://", 7) == 0) {
		k->scheme = xstrdup("http");
		rest = u + 7;
		dflt = "80";
	} else {
		return err_setx(e, EINVAL, "%s: server \"%s\": must start with https:// or http://",
				where, u);
	}
	size_t alen = strcspn(rest, "/?#");
	const char *path = rest + alen;
	if (*path == '?' || *path == '#' || strpbrk(path, "?#"))
		return err_setx(e, EINVAL, "%s: server \"%s\": query or fragment not allowed",
				where, u);
	if (memchr(rest, '@', alen))
		return err_setx(e, EINVAL, "%s: server \"%s\": user info in the URL is not supported",
				where, u);
	const char *h = rest, *hend, *port = NULL;
	size_t plen = 0;
	if (alen > 0 && rest[0] == '[') {
		const char *rb = memchr(rest, ']', alen);
		if (!rb)
			return err_setx(e, EINVAL, "%s: server \"%s\": missing ']'", where, u);
		h = rest + 1;
		hend = rb;
		if (rb + 1 < rest + alen) {
			if (rb[1] != ':')
				return err_setx(e, EINVAL, "%s: server \"%s\": junk after ']'",
						where, u);
			port = rb + 2;
			plen = (size_t)(rest + alen - port);
		}
	} else {
		const char *c = memchr(rest, ':', alen);
		hend = c ? c : rest + alen;
		if (c) {
			if (memchr(c + 1, ':', (size_t)(rest + alen - c - 1)))
				return err_setx(e, EINVAL,
						"%s: server \"%s\": an IPv6 address needs [brackets]",
						where, u);
			port = c + 1;
			plen = (size_t)(rest + alen - port);
		}
	}
	if (hend == h)
		return err_setx(e, EINVAL, "%s: server \"%s\": no host", where, u);
	if (port) {
		unsigned long pv = 0;
		bool ok = plen > 0 && plen <= 5;
		for (size_t i = 0; ok && i < plen; i++) {
			ok = port[i] >= '0' && port[i] <= '9';
			pv = pv * 10 + (unsigned long)(port[i] - '0');
		}
		if (!ok || pv == 0 || pv > 65535)
			return err_setx(e, EINVAL, "%s: server \"%s\": bad port", where, u);
	}
	k->host = xstrndup(h, (size_t)(hend - h));
	k->port = port ? xstrndup(port, plen) : xstrdup(dflt);
	size_t pl = strlen(path);
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	k->path_prefix = xstrndup(path, pl);
	if (!k->scheme || !k->host || !k->port || !k->path_prefix)
		return err_set(e, ENOMEM, "%s", where);
	return 0;
}

/* A token must be one HTTP header token: no spaces, controls or non-ASCII. */
static bool token_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if ((unsigned char)*t < 0x21 || (unsigned char)*t > 0x7e)
			return false;
	return true;
}

/* Read and trim a token file. */
static int read_token(const char *path, char **out, struct err *e)
{
	char *buf;
	size_t len;
	*out = NULL;
	int r = file_read(path, KCFG_TOKEN_MAX, &buf, &len, e);
	if (r < 0)
		return err_prefix(e, "token file"), r;
	size_t a = 0, b = len;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	buf[b] = '\0';
	if (a == b || memchr(buf + a, '\0', b - a) || !token_ok(buf + a)) {
		bool empty = a == b;
		memset(buf, 0, len);
		free(buf);
		return err_setx(e, EINVAL, "token file %s: %s", path,
				empty ? "empty" : "not a single printable token");
	}
	memmove(buf, buf + a, b - a + 1);
	*out = buf;
	return 0;
}

/* Decode a *-data field (base64) into a new buffer. */
static int b64_field(const char *v, const char *what, uint8_t **out, size_t *len, struct err *e)
{
	size_t cap = pem_base64_max(strlen(v));
	*out = malloc(cap ? cap : 1);
	if (!*out)
		return err_set(e, ENOMEM, "%s", what);
	int r = pem_base64_decode(v, strlen(v), *out, cap, len);
	if (r < 0) {
		free(*out);
		*out = NULL;
		return err_setx(e, EINVAL, "%s: not valid base64", what);
	}
	return 0;
}

/* Bytes of a PEM field given as KEY-data (base64) or as the file KEY names. *label is
 * what messages about the bytes call them ("client-key-data", "client-key /a/key.pem").
 * Errors are not prefixed with the entry; the caller does that. */
static int load_blob(const char *data, const char *file, const char *key, uint8_t **out,
		     size_t *len, char **label, struct err *e)
{
	*out = NULL;
	*label = data ? xasprintf("%s-data", key) : xasprintf("%s %s", key, file);
	if (!*label)
		return err_set(e, ENOMEM, "%s", key);
	if (data)
		return b64_field(data, *label, out, len, e);
	char *buf;
	int r = file_read(file, KCFG_FILE_MAX, &buf, len, e);
	if (r < 0)
		return err_prefix(e, "%s", key), r;
	*out = (uint8_t *)buf;
	return 0;
}

static int build_tls(struct kcfg *k, const struct ent *cl, const struct ent *us,
		     const char *system_ca, const char *where, struct err *e)
{
	char cw[300];
	int r = 0;
	snprintf(cw, sizeof(cw), "%s: cluster \"%s\"", where, cl->name);
	k->tls = tls_config_new();
	if (!k->tls)
		return err_set(e, ENOMEM, "%s", cw);
	bool has_ca = cl->v[F_CA_DATA] || cl->v[F_CA];
	if (cl->insecure && has_ca)
		return err_setx(e, EINVAL,
				"%s: insecure-skip-tls-verify together with a certificate authority "
				"is not allowed (kubectl refuses it too)",
				cw);
	k->insecure = cl->insecure;
	tls_config_set_insecure(k->tls, cl->insecure);
	if (cl->v[F_TLS_NAME] && (r = tls_config_set_server_name(k->tls, cl->v[F_TLS_NAME], e)))
		return err_prefix(e, "%s", cw), r;
	if (has_ca) {
		uint8_t *buf = NULL;
		size_t len = 0;
		char *label = NULL;
		r = load_blob(cl->v[F_CA_DATA], cl->v[F_CA], "certificate-authority", &buf, &len,
			      &label, e);
		if (r == 0)
			r = tls_config_add_ca(k->tls, buf, len, label, e);
		free(buf);
		free(label);
		if (r < 0)
			return err_prefix(e, "%s", cw), r;
	} else if (!cl->insecure && strcmp(k->scheme, "https") == 0) {
		r = tls_config_add_ca_file(k->tls, system_ca, e);
		if (r < 0)
			return err_prefix(e, "%s: no certificate-authority given and the system "
					     "CA bundle is unusable", cw), r;
	}
	if (!us)
		return 0;

	char uw[300];
	snprintf(uw, sizeof(uw), "%s: user \"%s\"", where, us->name);
	bool has_cert = us->v[F_CERT_DATA] || us->v[F_CERT];
	bool has_key = us->v[F_KEY_DATA] || us->v[F_KEY];
	if (has_cert != has_key)
		return err_setx(e, EINVAL, "%s: %s without %s", uw,
				has_cert ? "client-certificate" : "client-key",
				has_cert ? "client-key" : "client-certificate");
	if (!has_cert)
		return 0;
	uint8_t *cert = NULL, *key = NULL;
	size_t cl_len = 0, kl = 0;
	char *clabel = NULL, *klabel = NULL;
	r = load_blob(us->v[F_CERT_DATA], us->v[F_CERT], "client-certificate", &cert, &cl_len,
		      &clabel, e);
	if (r == 0)
		r = load_blob(us->v[F_KEY_DATA], us->v[F_KEY], "client-key", &key, &kl, &klabel, e);
	if (r == 0)
		r = tls_config_set_client(k->tls, cert, cl_len, clabel, key, kl, klabel, e);
	if (r == 0)
		k->client_cert = true;
	free(cert);
	if (key) {
		memset(key, 0, kl);
		free(key);
	}
	free(clabel);
	free(klabel);
	return r < 0 ? err_prefix(e, "%s", uw) : 0;
}

static int resolve(struct doc *d, const char *ctx_override, const char *system_ca,
		   struct kcfg **out, struct err *e)
{
	char where[400];
	size_t wl = 0;
	wl += (size_t)snprintf(where, sizeof(where), "kubeconfig ");
	for (size_t i = 0; i < d->nfiles && wl < sizeof(where); i++)
		wl += (size_t)snprintf(where + wl, sizeof(where) - wl, "%s%s", i ? ":" : "",
				       d->files[i]);

	const char *cname = ctx_override && *ctx_override ? ctx_override : d->current;
	if (!cname)
		return err_setx(e, EINVAL, "%s: no current-context set and no --context given",
				where);
	const struct ent *cx = find(d, K_CONTEXT, cname);
	if (!cx)
		return err_setx(e, ENOENT, "%s: context \"%s\" not found", where, cname);
	const char *clname = cx->v[F_CLUSTER];
	if (!clname || !*clname)
		return err_setx(e, EINVAL, "%s: context \"%s\": no cluster named", where, cname);
	const struct ent *cl = find(d, K_CLUSTER, clname);
	if (!cl)
		return err_setx(e, ENOENT, "%s: context \"%s\": cluster \"%s\" not found", where,
				cname, clname);
	const char *uname = cx->v[F_USER];
	const struct ent *us = NULL;
	if (uname && *uname) {
		us = find(d, K_USER, uname);
		if (!us)
			return err_setx(e, ENOENT, "%s: context \"%s\": user \"%s\" not found", where,
					cname, uname);
	}
	if (!cl->v[F_SERVER] || !*cl->v[F_SERVER])
		return err_setx(e, EINVAL, "%s: cluster \"%s\": no server", where, clname);

	struct kcfg *k = calloc(1, sizeof(*k));
	if (!k)
		return err_set(e, ENOMEM, "%s", where);
	int r = 0;
	k->source = xasprintf("%s (context %s)", where, cname);
	k->context = xstrdup(cname);
	k->cluster = xstrdup(clname);
	k->user = xstrdup(uname ? uname : "");
	k->server = xstrdup(cl->v[F_SERVER]);
	k->ns = xstrdup(cx->v[F_NAMESPACE] && *cx->v[F_NAMESPACE] ? cx->v[F_NAMESPACE]
								  : "default");
	if (!k->source || !k->context || !k->cluster || !k->user || !k->server || !k->ns) {
		r = err_set(e, ENOMEM, "%s", where);
		goto fail;
	}
	char cw[300];
	snprintf(cw, sizeof(cw), "%s: cluster \"%s\"", where, clname);
	r = parse_server(k, cw, e);
	if (r < 0)
		goto fail;
	r = build_tls(k, cl, us, system_ca, where, e);
	if (r < 0)
		goto fail;
	if (us) {
		char uw[300];
		snprintf(uw, sizeof(uw), "%s: user \"%s\"", where, us->name);
		if (us->v[F_TOKEN]) {
			if (!token_ok(us->v[F_TOKEN])) {
				r = err_setx(e, EINVAL, "%s: token: not a single printable token",
					     uw);
				goto fail;
			}
			k->token = xstrdup(us->v[F_TOKEN]);
		}
		if (us->v[F_TOKEN_FILE]) {
			k->token_file = xstrdup(us->v[F_TOKEN_FILE]);
			char *probe = NULL;
			r = k->token_file ? read_token(k->token_file, &probe, e) : -ENOMEM;
			if (probe) {
				memset(probe, 0, strlen(probe));
				free(probe);
			}
			if (r < 0 && !k->token) {
				err_prefix(e, "%s: tokenFile", uw);
				goto fail;
			}
			r = 0;
		}
		if (!k->token && !k->token_file && !k->client_cert && us->unsupported_auth) {
			r = err_setx(e, ENOTSUP,
				     "%s: exec, auth-provider and basic auth credentials are not "
				     "supported (use a token, tokenFile or client certificate)",
				     uw);
			goto fail;
		}
	}
	*out = k;
	return 0;
fail:
	kcfg_free(k);
	return r;
}

int kcfg_load_incluster(struct kcfg **out, char *const *envp, const char *sa_dir,
			struct err *e)
{
	const char *host = env_get(envp, "KUBERNETES_SERVICE_HOST");
	const char *port = env_get(envp, "KUBERNETES_SERVICE_PORT");
	if (!sa_dir)
		sa_dir = KCFG_SA_DIR;
	*out = NULL;
	if (!host || !*host || !port || !*port)
		return err_setx(e, ENOENT,
				"in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must "
				"be set");
	if (strpbrk(host, "/?#@[] \t") || strpbrk(port, "/?#@[]: \t"))
		return err_setx(e, EINVAL,
				"in-cluster: KUBERNETES_SERVICE_HOST/PORT \"%s\" \"%s\": not a host "
				"and a port",
				host, port);
	struct kcfg *k = calloc(1, sizeof(*k));
	if (!k)
		return err_set(e, ENOMEM, "in-cluster");
	int r = 0;
	bool v6 = strchr(host, ':') != NULL;
	k->source = xstrdup("in-cluster");
	k->context = xstrdup("");
	k->cluster = xstrdup("");
	k->user = xstrdup("");
	k->server = xasprintf(v6 ? "https://[%s]:%s" : "https://%s:%s", host, port);
	k->in_cluster = true;
	k->token_file = xasprintf("%s/token", sa_dir);
	k->tls = tls_config_new();
	if (!k->source || !k->context || !k->cluster || !k->user || !k->server ||
	    !k->token_file || !k->tls) {
		r = err_set(e, ENOMEM, "in-cluster");
		goto fail;
	}
	r = parse_server(k, "in-cluster", e);
	if (r < 0)
		goto fail;
	char *ca = xasprintf("%s/ca.crt", sa_dir);
	r = ca ? tls_config_add_ca_file(k->tls, ca, e) : err_set(e, ENOMEM, "in-cluster");
	free(ca);
	if (r < 0) {
		err_prefix(e, "in-cluster");
		goto fail;
	}
	char *probe = NULL;
	r = read_token(k->token_file, &probe, e);
	free(probe);
	if (r < 0) {
		err_prefix(e, "in-cluster");
		goto fail;
	}
	char *nsf = xasprintf("%s/namespace", sa_dir), *ns = NULL;
	size_t nl = 0;
	if (nsf && file_read(nsf, 256, &ns, &nl, NULL) == 0) {
		while (nl > 0 && strchr(" \t\r\n", ns[nl - 1]))
			ns[--nl] = '\0';
		if (nl == 0) {
			free(ns);
			ns = NULL;
		}
	}
	free(nsf);
	k->ns = ns ? ns : xstrdup("default");
	if (!k->ns) {
		r = err_set(e, ENOMEM, "in-cluster");
		goto fail;
	}
	*out = k;
	return 0;
fail:
	kcfg_free(k);
	return r;
}

/* Parse each ':'-separated path into d. must_exist: a missing file is an error. */
static int load_paths(struct doc *d, const char *list, bool must_exist, struct err *e)
{
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ":");
		if (n > 0) {
			char *path = xstrndup(p, n);
			if (!path)
				return err_set(e, ENOMEM, "kubeconfig");
			char *text;
			size_t len;
			int r = file_read(path, KCFG_FILE_MAX, &text, &len, e);
			if (r == -ENOENT && !must_exist) {
				free(path);
				p += n;
				if (*p)
					p++;
				continue;
			}
			if (r < 0) {
				free(path);
				return err_prefix(e, "kubeconfig"), r;
			}
			char **nf = realloc(d->files, (d->nfiles + 1) * sizeof(*nf));
			if (!nf) {
				free(path);
				free(text);
				return err_set(e, ENOMEM, "kubeconfig");
			}
			d->files = nf;
			d->files[d->nfiles++] = path;
			char *dir = dir_of(path);
			r = dir ? parse_into(d, text, len, path, dir, path, e)
				: err_set(e, ENOMEM, "kubeconfig");
			free(dir);
			free(text);
			if (r < 0)
				return r;
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

int kcfg_load(struct kcfg **out, const struct kcfg_opts *o, struct err *e)
{
	struct kcfg_opts none = { 0 };
	if (!o)
		o = &none;
	const char *system_ca = o->system_ca ? o->system_ca : KCFG_SYSTEM_CA;
	struct doc d = { 0 };
	int r = 0;
	*out = NULL;

	if (o->kubeconfig && *o->kubeconfig) {
		r = load_paths(&d, o->kubeconfig, true, e);
	} else {
		const char *env = env_get(o->envp, "KUBECONFIG");
		if (env && *env) {
			r = load_paths(&d, env, false, e);
		} else {
			const char *home = env_get(o->envp, "HOME");
			if (home && *home) {
				char *p = xasprintf("%s/.kube/config", home);
				r = p ? load_paths(&d, p, false, e) : err_set(e, ENOMEM, "kubeconfig");
				free(p);
			}
		}
	}
	if (r < 0)
		goto out;
	bool empty = d.n[K_CONTEXT] == 0 && d.n[K_CLUSTER] == 0 && !d.current;
	if (empty && !(o->kubeconfig && *o->kubeconfig)) {
		const char *h = env_get(o->envp, "KUBERNETES_SERVICE_HOST");
		if (h && *h) {
			r = kcfg_load_incluster(out, o->envp, o->sa_dir, e);
			goto out;
		}
		r = err_setx(e, ENOENT,
			     "no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a cluster "
			     "(KUBERNETES_SERVICE_HOST unset)");
		goto out;
	}
	r = resolve(&d, o->context, system_ca, out, e);
out:
	doc_free(&d);
	return r;
}

int kcfg_token(struct kcfg *k, int64_t now, bool force, const char **out, struct err *e)
{
	*out = NULL;
	if (!k->token_file) {
		*out = k->token;
		return 0;
	}
	if (k->cached_token && !force && now >= k->cached_at &&
	    now - k->cached_at < KCFG_TOKEN_MAX_AGE) {
		*out = k->cached_token;
		return 0;
	}
	char *t = NULL;
	int r = read_token(k->token_file, &t, e);
	if (r == 0) {
		if (k->cached_token) {
			memset(k->cached_token, 0, strlen(k->cached_token));
			free(k->cached_token);
		}
		k->cached_token = t;
		k->cached_at = now;
		*out = t;
		return 0;
	}
	if (k->cached_token) {
		*out = k->cached_token;
		return 1;
	}
	if (k->token) {
		*out = k->token;
		return 1;
	}
	return r;
}
