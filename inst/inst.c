/* inst — the install plan, its application and the manifest; see inst.h. */
#include "inst/inst.h"

#include "conf/conf.h"
#include "lib/err.h"
#include "lib/file.h"
#include "lib/json.h"

#include <bearssl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The built-in files, generated from dist/ by the Makefile (build/gen/inst-files.h):
 * inst_unit[] = dist/kvnet-agent.service, inst_conflist[] = dist/cni/file/10-kvnet.conflist,
 * each NUL-terminated. */
#include "build/gen/inst-files.h"

#define BIN_MAX (64u << 20)   /* largest binary copied */
#define CFG_MAX (1u << 20)    /* largest conflist, kvnet.conf, token or CA read */
#define MANIFEST_HEAD "kvnet-install-manifest 1\n"

static const char *const role_links[] = { "kvnet-agent", "kvnet-ipamctl", "kvnet-garp-watch" };

const char *inst_action_name(enum inst_action a)
{
	switch (a) {
	case INST_CREATE:
		return "create";
	case INST_REPLACE:
		return "replace";
	case INST_SAME:
		return "up to date";
	case INST_KEEP:
		return "keep (differs)";
	case INST_REMOVE:
		return "remove";
	case INST_CHANGED:
		return "keep (changed since install)";
	case INST_GONE:
		return "already gone";
	case INST_NOTEMPTY:
		return "keep (not empty)";
	}
	return "?";
}

const char *inst_kind_name(enum inst_kind k)
{
	switch (k) {
	case INST_DIR:
		return "dir";
	case INST_FILE:
		return "file";
	case INST_LINK:
		return "link";
	}
	return "?";
}

bool inst_path_ok(const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n >= INST_PATH_MAX || path[0] == '/' || path[n - 1] == '/')
		return false;
	const char *c = path;
	while (*c) {
		const char *s = strchr(c, '/');
		size_t l = s ? (size_t)(s - c) : strlen(c);
		if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < l; i++)
			if (c[i] <= ' ' || c[i] > '~')
				return false;
		c += l + (s ? 1 : 0);
	}
	return true;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	br_sha256_context c;
	unsigned char d[32];
	br_sha256_init(&c);
	br_sha256_update(&c, data, len);
	br_sha256_out(&c, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void inst_plan_free(struct inst_plan *p)
{
	for (unsigned i = 0; i < p->n; i++)
		free(p->item[i].data);
	free(p->item);
	p->item = NULL;
	p->n = p->cap = 0;
}

/* Append an item; data (may be NULL) is taken. */
static struct inst_item *item_add_take(struct inst_plan *p, enum inst_kind k, const char *path,
				       mode_t mode, char *data, size_t len, struct err *e)
{
	if (!inst_path_ok(path)) {
		free(data);
		err_setx(e, EINVAL, "%.128s: not a path below the root", path);
		return NULL;
	}
	if (p->n == p->cap) {
		unsigned cap = p->cap ? p->cap * 2 : 32;
		struct inst_item *it = realloc(p->item, cap * sizeof(*it));
		if (!it) {
			free(data);
			err_set(e, ENOMEM, "install");
			return NULL;
		}
		p->item = it;
		p->cap = cap;
	}
	struct inst_item *it = &p->item[p->n++];
	memset(it, 0, sizeof(*it));
	it->kind = k;
	snprintf(it->path, sizeof(it->path), "%s", path);
	it->mode = mode;
	it->data = data;
	it->len = len;
	if (k == INST_FILE)
		sha256_hex(data ? data : "", len, it->sha256);
	return it;
}

static char *memdup0(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (d) {
		memcpy(d, s, len);
		d[len] = 0;
	}
	return d;
}

/* ROOT/path into buf. */
static int full_path(const struct inst_plan *p, const char *path, char *buf, size_t cap,
		     struct err *e)
{
	int n = snprintf(buf, cap, "%s/%s", p->root, path);
	if (n < 0 || (size_t)n >= cap)
		return err_setx(e, ENAMETOOLONG, "%s/%s: path too long", p->root, path);
	return 0;
}

/* ---- the manifest ---------------------------------------------------------------------- */

/* An item of a parsed manifest: the previous install's record. */
static int manifest_line(struct inst_plan *p, char *line, unsigned lineno, struct err *e)
{
	char *f[4];
	unsigned n = 0;
	for (char *s = line; n < 4;) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		f[n++] = s;
		while (*s && *s != ' ')
			s++;
		if (*s)
			*s++ = 0;
		if (n == 4 && *s)
			return err_setx(e, EINVAL, "install manifest:%u: too many fields", lineno);
	}
	unsigned want = 0;
	enum inst_kind k;
	if (n >= 1 && strcmp(f[0], "dir") == 0) {
		k = INST_DIR;
		want = 3;
	} else if (n >= 1 && strcmp(f[0], "file") == 0) {
		k = INST_FILE;
		want = 4;
	} else if (n >= 1 && strcmp(f[0], "link") == 0) {
		k = INST_LINK;
		want = 3;
	} else {
		return err_setx(e, EINVAL, "install manifest:%u: not a dir, file or link line",
				lineno);
	}
	if (n != want)
		return err_setx(e, EINVAL, "install manifest:%u: %s wants %u fields, has %u", lineno,
				f[0], want, n);
	const char *path = f[want - 1];
	mode_t mode = 0;
	if (k != INST_LINK) {
		char *end;
		errno = 0;
		unsigned long m = strtoul(f[1], &end, 8);
		if (errno || *end || end == f[1] || m > 07777 || f[1][0] == '-' || f[1][0] == '+')
			return err_setx(e, EINVAL, "install manifest:%u: bad mode", lineno);
		mode = (mode_t)m;
	}
	if (!inst_path_ok(path))
		return err_setx(e, EINVAL, "install manifest:%u: bad path", lineno);
	char *data = NULL;
	size_t len = 0;
	if (k == INST_LINK) {
		len = strlen(f[1]);
		if (len >= INST_PATH_MAX)
			return err_setx(e, EINVAL, "install manifest:%u: link target too long",
					lineno);
		if (!(data = memdup0(f[1], len)))
			return err_set(e, ENOMEM, "install manifest");
	}
	struct inst_item *it = item_add_take(p, k, path, mode, data, len, e);
	if (!it)
		return err_prefix(e, "install manifest:%u", lineno), -EINVAL;
	it->action = INST_SAME;
	it->ours = true;
	if (k == INST_FILE) {
		if (strlen(f[2]) != 64 || strspn(f[2], "0123456789abcdef") != 64)
			return err_setx(e, EINVAL, "install manifest:%u: bad sha256", lineno);
		memcpy(it->sha256, f[2], 65);
	}
	return 0;
}

int inst_manifest_parse(struct inst_plan *p, const char *text, size_t len, struct err *e)
{
	size_t hl = strlen(MANIFEST_HEAD);
	if (len < hl || memcmp(text, MANIFEST_HEAD, hl) != 0)
		return err_setx(e, EINVAL, "install manifest: does not start with \"%.*s\"",
				(int)hl - 1, MANIFEST_HEAD);
	size_t off = hl;
	unsigned lineno = 1;
	while (off < len) {
		lineno++;
		const char *nl = memchr(text + off, '\n', len - off);
		if (!nl)
			return err_setx(e, EINVAL, "install manifest:%u: no newline at the end",
					lineno);
		size_t l = (size_t)(nl - (text + off));
		if (l >= INST_PATH_MAX * 2 + 80)
			return err_setx(e, EINVAL, "install manifest:%u: line too long", lineno);
		char line[INST_PATH_MAX * 2 + 80];
		memcpy(line, text + off, l);
		line[l] = 0;
		if (memchr(line, 0, l))
			return err_setx(e, EINVAL, "install manifest:%u: NUL byte", lineno);
		int r = manifest_line(p, line, lineno, e);
		if (r < 0)
			return r;
		off += l + 1;
	}
	return 0;
}

size_t inst_manifest_format(const struct inst_plan *p, char *buf, size_t cap)
{
	size_t n = 0;
#define PUT(...)                                                                     \
	do {                                                                         \
		int w_ = snprintf(buf ? buf + (n < cap ? n : cap) : NULL,            \
				  buf && n < cap ? cap - n : 0, __VA_ARGS__);        \
		n += w_ > 0 ? (size_t)w_ : 0;                                        \
	} while (0)
	PUT("%s", MANIFEST_HEAD);
	for (unsigned i = 0; i < p->n; i++) {
		const struct inst_item *it = &p->item[i];
		if (!it->ours)
			continue;
		switch (it->kind) {
		case INST_DIR:
			PUT("dir %04o %s\n", (unsigned)it->mode, it->path);
			break;
		case INST_FILE:
			PUT("file %04o %s %s\n", (unsigned)it->mode, it->sha256, it->path);
			break;
		case INST_LINK:
			PUT("link %s %s\n", it->data ? it->data : "", it->path);
			break;
		}
	}
#undef PUT
	return n;
}

/* ---- comparing with the tree ----------------------------------------------------------- */

/* The previous install's record of path, or NULL. */
static const struct inst_item *prev_of(const struct inst_plan *prev, const char *path)
{
	for (unsigned i = 0; i < prev->n; i++)
		if (strcmp(prev->item[i].path, path) == 0)
			return &prev->item[i];
	return NULL;
}

/* Decide it->action from what is at its path. */
static int compare(const struct inst_plan *p, struct inst_item *it, bool force, struct err *e)
{
	char fp[INST_PATH_MAX * 2];
	struct stat st;
	if (full_path(p, it->path, fp, sizeof(fp), e) < 0)
		return -ENAMETOOLONG;
	if (lstat(fp, &st) < 0) {
		if (errno != ENOENT)
			return err_set(e, errno, "%s: stat", fp);
		it->action = INST_CREATE;
		return 0;
	}
	switch (it->kind) {
	case INST_DIR:
		if (!S_ISDIR(st.st_mode) && !(S_ISLNK(st.st_mode) && stat(fp, &st) == 0 &&
					      S_ISDIR(st.st_mode)))
			return err_setx(e, ENOTDIR, "%s: in the way (not a directory)",
					fp);
		it->action = INST_SAME;
		return 0;
	case INST_LINK: {
		char t[INST_PATH_MAX];
		ssize_t l = S_ISLNK(st.st_mode) ? readlink(fp, t, sizeof(t) - 1) : -1;
		if (l >= 0)
			t[l] = 0;
		if (S_ISDIR(st.st_mode))
			return err_setx(e, EISDIR, "%s: in the way (a directory)", fp);
		it->action = l >= 0 && strcmp(t, it->data) == 0 ? INST_SAME : INST_REPLACE;
		return 0;
	}
	case INST_FILE: {
		if (S_ISDIR(st.st_mode))
			return err_setx(e, EISDIR, "%s: in the way (a directory)", fp);
		bool same = false, mode_ok = S_ISREG(st.st_mode) && (st.st_mode & 07777) == it->mode;
		if (S_ISREG(st.st_mode) && (size_t)st.st_size == it->len) {
			char *cur = NULL;
			size_t cl = 0;
			struct err fe = { 0 };
			if (file_read(fp, it->len + 1, &cur, &cl, &fe) == 0)
				same = cl == it->len && memcmp(cur, it->data, cl) == 0;
			free(cur);
		}
		if (same && mode_ok)
			it->action = INST_SAME;
		else if (!same && it->site && !force)
			it->action = INST_KEEP; /* the site's own file: never replaced */
		else
			it->action = INST_REPLACE;
		return 0;
	}
	}
	return 0;
}

/* After compare: which items the new manifest lists. Ours = written now (create,
 * replace) or recorded by a previous install; a file kept because the site changed it
 * stays listed with the hash the install wrote, so uninstall keeps it too. */
static void settle(struct inst_plan *p, const struct inst_plan *prev)
{
	for (unsigned i = 0; i < p->n; i++) {
		struct inst_item *it = &p->item[i];
		const struct inst_item *was = prev_of(prev, it->path);
		if (it->action == INST_CREATE || it->action == INST_REPLACE) {
			it->ours = true;
			continue;
		}
		it->ours = was && was->kind == it->kind;
		if (it->ours && it->action == INST_KEEP && it->kind == INST_FILE)
			memcpy(it->sha256, was->sha256, sizeof(it->sha256));
	}
}

/* ---- building the install plan -------------------------------------------------------- */

static int add_dirs(struct inst_plan *p, const char *path, struct err *e)
{
	char d[INST_PATH_MAX];
	snprintf(d, sizeof(d), "%s", path);
	for (char *s = d; (s = strchr(s, '/')); s++) {
		*s = 0;
		bool have = false;
		for (unsigned i = 0; i < p->n && !have; i++)
			have = p->item[i].kind == INST_DIR && strcmp(p->item[i].path, d) == 0;
		if (!have && !item_add_take(p, INST_DIR, d, 0755, NULL, 0, e))
			return -EINVAL;
		*s = '/';
	}
	return 0;
}

static int add_file_take(struct inst_plan *p, const char *path, mode_t mode, bool site,
			 char *data, size_t len, struct err *e)
{
	if (add_dirs(p, path, e) < 0) {
		free(data);
		return -EINVAL;
	}
	struct inst_item *it = item_add_take(p, INST_FILE, path, mode, data, len, e);
	if (!it)
		return -EINVAL;
	it->site = site;
	return 0;
}

static int add_link(struct inst_plan *p, const char *path, const char *target, struct err *e)
{
	if (add_dirs(p, path, e) < 0)
		return -EINVAL;
	char *t = memdup0(target, strlen(target));
	if (!t)
		return err_set(e, ENOMEM, "install");
	return item_add_take(p, INST_LINK, path, 0777, t, strlen(target), e) ? 0 : -EINVAL;
}

/* Read a whole file (a copy of its bytes). */
static int slurp(const char *path, size_t max, char **out, size_t *len, struct err *e)
{
	return file_read(path, max, out, len, e);
}

/* The kvnet.conf to install (the file's bytes, validated; or the documented defaults),
 * and the configuration it gives. */
static int conf_text(const struct inst_opts *o, char **out, size_t *len, struct conf *c,
		     struct err *e)
{
	int r = conf_defaults(c, e);
	if (r < 0)
		return r;
	if (!o->conf) {
		size_t need = conf_format(c, CONF_FMT_DOC, NULL, 0);
		char *b = malloc(need + 1);
		if (!b)
			return err_set(e, ENOMEM, "kvnet.conf");
		conf_format(c, CONF_FMT_DOC, b, need + 1);
		*out = b;
		*len = need;
		return 0;
	}
	if ((r = slurp(o->conf, CFG_MAX, out, len, e)) < 0)
		return r;
	if ((r = conf_parse(c, o->conf, *out, *len, e)) < 0 || (r = conf_check(c, e)) < 0) {
		free(*out);
		*out = NULL;
		return err_prefix(e, "%s: not a valid kvnet.conf", o->conf), r;
	}
	return 0;
}

static int conflist_text(const struct inst_opts *o, char **out, size_t *len, struct err *e)
{
	if (!o->conflist) {
		*len = strlen(inst_conflist);
		*out = memdup0(inst_conflist, *len);
		return *out ? 0 : err_set(e, ENOMEM, "conflist");
	}
	int r = slurp(o->conflist, CFG_MAX, out, len, e);
	if (r < 0)
		return r;
	struct json_doc d;
	r = json_parse(&d, *out, *len, NULL, 0, 0, e);
	if (r < 0 && r != -ENOSPC) {
		free(*out);
		*out = NULL;
		return err_prefix(e, "conflist %s: not JSON", o->conflist), -EINVAL;
	}
	err_clear(e);
	return 0;
}

/* A host name or IP literal as the API server's host: letters, digits, '.', '-', ':'. */
static bool host_ok(const char *h)
{
	return h && *h && strlen(h) < 254 &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") ==
		       strlen(h);
}

/* The CNI plugin's kubeconfig from the service account, with the token and CA beside it
 * (relative names: the kubeconfig reader resolves them against its own directory). */
static int add_kubeconfig(struct inst_plan *p, const struct inst_opts *o, const char *kcpath,
			  struct err *e)
{
	if (!kcpath[0])
		return err_setx(e, EINVAL, "the kvnet.conf to install has no [kubernetes] "
					   "kubeconfig: nowhere to write the plugin's kubeconfig");
	if (kcpath[0] != '/')
		return err_setx(e, EINVAL, "[kubernetes] kubeconfig %s: not absolute",
				kcpath);
	if (!host_ok(o->api_host) || !o->api_port || !*o->api_port ||
	    strspn(o->api_port, "0123456789") != strlen(o->api_port) || strlen(o->api_port) > 5)
		return err_setx(e, EINVAL, "kubeconfig: the API server address \"%.64s\" "
					   "port \"%.16s\" is not usable (KUBERNETES_SERVICE_HOST "
					   "and KUBERNETES_SERVICE_PORT)",
				o->api_host ? o->api_host : "", o->api_port ? o->api_port : "");
	char src[INST_PATH_MAX * 2], rel[INST_PATH_MAX];
	char *tok = NULL, *ca = NULL;
	size_t tl = 0, cl = 0;
	int r;
	snprintf(src, sizeof(src), "%s/token", o->sa_dir);
	if ((r = slurp(src, CFG_MAX, &tok, &tl, e)) < 0)
		return r;
	while (tl && (tok[tl - 1] == '\n' || tok[tl - 1] == '\r'))
		tok[--tl] = 0;
	if (!tl || strcspn(tok, " \t\r\n") != tl) {
		free(tok);
		return err_setx(e, EINVAL, "%s: not a bearer token", src);
	}
	snprintf(src, sizeof(src), "%s/ca.crt", o->sa_dir);
	if ((r = slurp(src, CFG_MAX, &ca, &cl, e)) < 0) {
		free(tok);
		return r;
	}
	const char *base = strrchr(kcpath, '/') + 1;
	snprintf(rel, sizeof(rel), "%s.token", kcpath + 1);
	if ((r = add_file_take(p, rel, 0600, false, tok, tl, e)) < 0) {
		free(ca);
		return r;
	}
	snprintf(rel, sizeof(rel), "%s.ca.crt", kcpath + 1);
	if ((r = add_file_take(p, rel, 0644, false, ca, cl, e)) < 0)
		return r;
	bool v6 = strchr(o->api_host, ':') != NULL;
	char *kc = NULL;
	int n = asprintf(&kc,
			 "# The kvnet CNI plugin's identity: the kvnet service account, written by\n"
			 "# `kvnet install --kubeconfig-from-sa` (replaced on every install).\n"
			 "apiVersion: v1\n"
			 "kind: Config\n"
			 "clusters:\n"
			 "- name: kvnet\n"
			 "  cluster:\n"
			 "    server: https://%s%s%s:%s\n"
			 "    certificate-authority: %s.ca.crt\n"
			 "users:\n"
			 "- name: kvnet\n"
			 "  user:\n"
			 "    tokenFile: %s.token\n"
			 "contexts:\n"
			 "- name: kvnet\n"
			 "  context:\n"
			 "    cluster: kvnet\n"
			 "    user: kvnet\n"
			 "current-context: kvnet\n",
			 v6 ? "[" : "", o->api_host, v6 ? "]" : "", o->api_port, base, base);
	if (n < 0)
		return err_set(e, ENOMEM, "kubeconfig");
	return add_file_take(p, kcpath + 1, 0600, false, kc, (size_t)n, e);
}

static int set_root(struct inst_plan *p, const char *root, struct err *e)
{
	if (!root || !*root)
		return err_setx(e, EINVAL, "no root directory");
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n >= sizeof(p->root))
		return err_setx(e, ENAMETOOLONG, "root %.64s...: too long", root);
	memcpy(p->root, root, n);
	p->root[n] = 0;
	if (strcmp(p->root, "/") == 0)
		p->root[0] = 0;
	struct stat st;
	if (stat(p->root[0] ? p->root : "/", &st) < 0)
		return err_set(e, errno, "root %s", root);
	if (!S_ISDIR(st.st_mode))
		return err_setx(e, ENOTDIR, "root %s: not a directory", root);
	return 0;
}

/* The previous manifest (none: empty). */
static int load_manifest(const struct inst_plan *p, struct inst_plan *prev, char **text,
			 size_t *len, struct err *e)
{
	char fp[INST_PATH_MAX * 2];
	*text = NULL;
	*len = 0;
	if (full_path(p, INST_MANIFEST, fp, sizeof(fp), e) < 0)
		return -ENAMETOOLONG;
	struct err fe = { 0 };
	int r = file_read(fp, CFG_MAX, text, len, &fe);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		if (e)
			*e = fe;
		return r;
	}
	r = inst_manifest_parse(prev, *text, *len, e);
	return r < 0 ? err_prefix(e, "%s", fp), r : 0;
}

int inst_plan_install(struct inst_plan *p, const struct inst_opts *o, struct err *e)
{
	memset(p, 0, sizeof(*p));
	int r = set_root(p, o->root, e);
	if (r < 0)
		return r;
	struct inst_plan prev = { 0 };
	char *mtext = NULL, *bin = NULL, *cl = NULL, *ct = NULL, *fmt = NULL;
	size_t mlen = 0, bl = 0, cll = 0, ctl = 0;
	struct conf c;
	if ((r = load_manifest(p, &prev, &mtext, &mlen, e)) < 0)
		goto out;
	if ((r = slurp(o->binary ? o->binary : "/proc/self/exe", BIN_MAX, &bin, &bl, e)) < 0)
		goto out;
	if ((r = conflist_text(o, &cl, &cll, e)) < 0 || (r = conf_text(o, &ct, &ctl, &c, e)) < 0)
		goto out;
	/* the manifest's directory first: it exists before anything is written */
	if ((r = add_dirs(p, INST_MANIFEST, e)) < 0)
		goto out;
	r = add_file_take(p, "opt/cni/bin/kvnet", 0755, false, bin, bl, e);
	bin = NULL;
	if (r < 0)
		goto out;
	if (!o->cni_only) {
		if ((r = add_link(p, "usr/local/bin/kvnet", "/opt/cni/bin/kvnet", e)) < 0)
			goto out;
		for (size_t i = 0; i < sizeof(role_links) / sizeof(role_links[0]); i++) {
			char lp[64];
			snprintf(lp, sizeof(lp), "usr/local/bin/%s", role_links[i]);
			if ((r = add_link(p, lp, "kvnet", e)) < 0)
				goto out;
		}
	}
	r = add_file_take(p, "etc/cni/net.d/10-kvnet.conflist", 0644, true, cl, cll, e);
	cl = NULL;
	if (r < 0)
		goto out;
	r = add_file_take(p, "etc/kvnet/kvnet.conf", 0644, true, ct, ctl, e);
	ct = NULL;
	if (r < 0)
		goto out;
	if (!o->cni_only) {
		size_t ul = strlen(inst_unit);
		char *u = memdup0(inst_unit, ul);
		if (!u) {
			r = err_set(e, ENOMEM, "unit");
			goto out;
		}
		if ((r = add_file_take(p, "etc/systemd/system/kvnet-agent.service", 0644, false, u,
				       ul, e)) < 0)
			goto out;
	}
	if (o->sa_dir && (r = add_kubeconfig(p, o, c.kubernetes.kubeconfig, e)) < 0)
		goto out;
	for (unsigned i = 0; i < p->n; i++)
		if ((r = compare(p, &p->item[i], o->force, e)) < 0)
			goto out;
	settle(p, &prev);
	/* a previous install's items this one does not write (a full install, then
	 * --cni-only): still ours, still listed */
	for (unsigned i = 0; i < prev.n; i++) {
		bool have = false;
		for (unsigned k = 0; k < p->n && !have; k++)
			have = strcmp(p->item[k].path, prev.item[i].path) == 0;
		if (have)
			continue;
		struct inst_item *was = &prev.item[i];
		struct inst_item *it = item_add_take(p, was->kind, was->path, was->mode, was->data,
						     was->len, e);
		was->data = NULL;
		if (!it) {
			r = -EINVAL;
			goto out;
		}
		it->action = INST_SAME;
		it->ours = true;
		memcpy(it->sha256, was->sha256, sizeof(it->sha256));
	}
	size_t need = inst_manifest_format(p, NULL, 0);
	if (!(fmt = malloc(need + 1))) {
		r = err_set(e, ENOMEM, "manifest");
		goto out;
	}
	inst_manifest_format(p, fmt, need + 1);
	p->manifest_dirty = !mtext || mlen != need || memcmp(mtext, fmt, need) != 0;
	r = 0;
out:
	free(fmt);
	free(bin);
	free(cl);
	free(ct);
	free(mtext);
	inst_plan_free(&prev);
	return r;
}

/* ---- the uninstall plan ---------------------------------------------------------------- */

/* Entries of directory fp that the plan does not remove (the plan's REMOVE items directly
 * inside dir count as gone). */
static int dir_keeps(const struct inst_plan *p, const char *dir, const char *fp, struct err *e)
{
	DIR *d = opendir(fp);
	if (!d)
		return err_set(e, errno, "%s: opendir", fp);
	int keep = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char child[INST_PATH_MAX + 256];
		snprintf(child, sizeof(child), "%s/%s", dir, de->d_name);
		bool gone = false;
		for (unsigned i = 0; i < p->n && !gone; i++)
			gone = p->item[i].action == INST_REMOVE &&
			       strcmp(p->item[i].path, child) == 0;
		if (!gone && strcmp(child, INST_MANIFEST) != 0)
			keep++;
	}
	closedir(d);
	return keep;
}

int inst_plan_uninstall(struct inst_plan *p, const char *root, struct err *e)
{
	memset(p, 0, sizeof(*p));
	p->uninstall = true;
	int r = set_root(p, root, e);
	if (r < 0)
		return r;
	struct inst_plan prev = { 0 };
	char *mtext = NULL;
	size_t mlen = 0;
	if ((r = load_manifest(p, &prev, &mtext, &mlen, e)) < 0)
		goto out;
	if (!mtext) {
		r = err_setx(e, ENOENT, "%s/%s: no manifest: kvnet install put nothing "
					"there", p->root, INST_MANIFEST);
		goto out;
	}
	/* reverse order: files and links before the directories that hold them */
	for (unsigned i = prev.n; i-- > 0;) {
		struct inst_item *was = &prev.item[i];
		struct inst_item *it = item_add_take(p, was->kind, was->path, was->mode, was->data,
						     was->len, e);
		was->data = NULL;
		if (!it) {
			r = -EINVAL;
			goto out;
		}
		memcpy(it->sha256, was->sha256, sizeof(it->sha256));
		char fp[INST_PATH_MAX * 2];
		struct stat st;
		if ((r = full_path(p, it->path, fp, sizeof(fp), e)) < 0)
			goto out;
		if (lstat(fp, &st) < 0) {
			if (errno != ENOENT) {
				r = err_set(e, errno, "%s: stat", fp);
				goto out;
			}
			it->action = INST_GONE;
			continue;
		}
		switch (it->kind) {
		case INST_FILE: {
			char *cur = NULL, h[65];
			size_t cl = 0;
			struct err fe = { 0 };
			bool same = false;
			if (S_ISREG(st.st_mode) && file_read(fp, BIN_MAX, &cur, &cl, &fe) == 0) {
				sha256_hex(cur, cl, h);
				same = strcmp(h, it->sha256) == 0;
			}
			free(cur);
			it->action = same ? INST_REMOVE : INST_CHANGED;
			break;
		}
		case INST_LINK: {
			char t[INST_PATH_MAX];
			ssize_t l = S_ISLNK(st.st_mode) ? readlink(fp, t, sizeof(t) - 1) : -1;
			if (l >= 0)
				t[l] = 0;
			it->action = l >= 0 && strcmp(t, it->data) == 0 ? INST_REMOVE : INST_CHANGED;
			break;
		}
		case INST_DIR: {
			if (!S_ISDIR(st.st_mode)) {
				it->action = INST_CHANGED;
				break;
			}
			int k = dir_keeps(p, it->path, fp, e);
			if (k < 0) {
				r = k;
				goto out;
			}
			it->action = k ? INST_NOTEMPTY : INST_REMOVE;
			break;
		}
		}
	}
	r = 0;
out:
	free(mtext);
	inst_plan_free(&prev);
	return r;
}

/* ---- applying -------------------------------------------------------------------------- */

unsigned inst_changes(const struct inst_plan *p)
{
	unsigned n = 0;
	for (unsigned i = 0; i < p->n; i++)
		n += p->item[i].action == INST_CREATE || p->item[i].action == INST_REPLACE ||
		     p->item[i].action == INST_REMOVE;
	return n + (p->uninstall ? 1u : p->manifest_dirty ? 1u : 0u);
}

static int fsync_dir_of(const char *fp, struct err *e)
{
	char d[INST_PATH_MAX * 2];
	snprintf(d, sizeof(d), "%s", fp);
	char *s = strrchr(d, '/');
	if (!s)
		return 0;
	if (s == d)
		s[1] = 0;
	else
		*s = 0;
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: open", d);
	int r = fsync(fd) < 0 ? err_set(e, errno, "%s: fsync", d) : 0;
	close(fd);
	return r;
}

/* Write data to fp atomically with mode. */
static int write_atomic(const char *fp, const char *data, size_t len, mode_t mode,
			struct err *e)
{
	char tmp[INST_PATH_MAX * 2 + 32];
	snprintf(tmp, sizeof(tmp), "%s.kvnet-tmp.%ld", fp, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "%s: create", tmp);
	int r = 0;
	for (size_t off = 0; off < len && !r;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = err_set(e, errno, "%s: write", tmp);
		else
			off += (size_t)w;
	}
	if (!r && fchmod(fd, mode) < 0)
		r = err_set(e, errno, "%s: chmod %04o", tmp, (unsigned)mode);
	if (!r && fsync(fd) < 0)
		r = err_set(e, errno, "%s: fsync", tmp);
	if (close(fd) < 0 && !r)
		r = err_set(e, errno, "%s: close", tmp);
	if (!r && rename(tmp, fp) < 0)
		r = err_set(e, errno, "%s: rename to %s", tmp, fp);
	if (r) {
		unlink(tmp);
		return r;
	}
	return fsync_dir_of(fp, e);
}

static int link_atomic(const char *fp, const char *target, struct err *e)
{
	char tmp[INST_PATH_MAX * 2 + 32];
	snprintf(tmp, sizeof(tmp), "%s.kvnet-tmp.%ld", fp, (long)getpid());
	if (symlink(target, tmp) < 0)
		return err_set(e, errno, "%s: symlink", tmp);
	if (rename(tmp, fp) < 0) {
		int er = errno;
		unlink(tmp);
		return err_set(e, er, "%s: rename to %s", tmp, fp);
	}
	return fsync_dir_of(fp, e);
}

static int apply_install(struct inst_plan *p, struct err *e)
{
	char fp[INST_PATH_MAX * 2];
	int r;
	for (unsigned i = 0; i < p->n; i++) {
		struct inst_item *it = &p->item[i];
		if (it->action != INST_CREATE && it->action != INST_REPLACE)
			continue;
		if ((r = full_path(p, it->path, fp, sizeof(fp), e)) < 0)
			return r;
		switch (it->kind) {
		case INST_DIR:
			if (mkdir(fp, it->mode) < 0 && errno != EEXIST)
				return err_set(e, errno, "%s: mkdir", fp);
			if (chmod(fp, it->mode) < 0)
				return err_set(e, errno, "%s: chmod %04o", fp,
					       (unsigned)it->mode);
			if ((r = fsync_dir_of(fp, e)) < 0)
				return r;
			break;
		case INST_FILE:
			if ((r = write_atomic(fp, it->data, it->len, it->mode, e)) < 0)
				return r;
			break;
		case INST_LINK:
			if ((r = link_atomic(fp, it->data, e)) < 0)
				return r;
			break;
		}
	}
	if (!p->manifest_dirty)
		return 0;
	size_t need = inst_manifest_format(p, NULL, 0);
	char *m = malloc(need + 1);
	if (!m)
		return err_set(e, ENOMEM, "manifest");
	inst_manifest_format(p, m, need + 1);
	if ((r = full_path(p, INST_MANIFEST, fp, sizeof(fp), e)) == 0)
		r = write_atomic(fp, m, need, 0644, e);
	free(m);
	return r;
}

static int apply_uninstall(struct inst_plan *p, struct err *e)
{
	char fp[INST_PATH_MAX * 2];
	int r;
	/* the manifest goes first: a directory it sits in may be one to remove */
	if ((r = full_path(p, INST_MANIFEST, fp, sizeof(fp), e)) < 0)
		return r;
	if (unlink(fp) < 0 && errno != ENOENT)
		return err_set(e, errno, "%s: unlink", fp);
	for (unsigned i = 0; i < p->n; i++) {
		struct inst_item *it = &p->item[i];
		if (it->action != INST_REMOVE)
			continue;
		if ((r = full_path(p, it->path, fp, sizeof(fp), e)) < 0)
			return r;
		if (it->kind == INST_DIR) {
			if (rmdir(fp) < 0) {
				if (errno != ENOTEMPTY && errno != EEXIST)
					return err_set(e, errno, "%s: rmdir", fp);
				it->action = INST_NOTEMPTY;
			}
		} else if (unlink(fp) < 0 && errno != ENOENT) {
			return err_set(e, errno, "%s: unlink", fp);
		}
	}
	return 0;
}

int inst_apply(struct inst_plan *p, struct err *e)
{
	return p->uninstall ? apply_uninstall(p, e) : apply_install(p, e);
}
