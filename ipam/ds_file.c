/* ipam file datastore; see ds_file.h. */
#include "ipam/ds_file.h"

#include "kube/json.h"
#include "lib/err.h"

#include <bearssl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL "journal.json"
#define FILE_MAX (8u << 20) /* largest record or journal file read */

static const char *const kind_dir[IPAM_KIND_LAST + 1] = {NULL, "pool", "block", "handle",
							  "config"};

int ipam_ds_file_open(struct ipam_ds_file *f, const char *dir, struct err *e)
{
	memset(f, 0, sizeof(*f));
	f->dirfd = f->lockfd = -1;
	for (int k = 0; k <= IPAM_KIND_LAST; k++)
		f->kindfd[k] = -1;
	if (strlen(dir) >= sizeof(f->dir))
		return err_setx(e, ENAMETOOLONG, "ipam file datastore %.64s: path too long", dir);
	strcpy(f->dir, dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(e, errno, "ipam file datastore %s: mkdir", dir);
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0)
		return err_set(e, errno, "ipam file datastore %s: open", dir);
	for (int k = IPAM_POOL; k <= IPAM_KIND_LAST; k++) {
		if (mkdirat(f->dirfd, kind_dir[k], 0700) && errno != EEXIST)
			goto fail;
		f->kindfd[k] = openat(f->dirfd, kind_dir[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (f->kindfd[k] < 0)
			goto fail;
	}
	f->lockfd = openat(f->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->lockfd < 0) {
		int r = err_set(e, errno, "ipam file datastore %s/lock: open", dir);
		ipam_ds_file_close(f);
		return r;
	}
	return 0;
fail:;
	int r = err_set(e, errno, "ipam file datastore %s: create record directories", dir);
	ipam_ds_file_close(f);
	return r;
}

void ipam_ds_file_close(struct ipam_ds_file *f)
{
	if (f->lockfd >= 0)
		close(f->lockfd);
	for (int k = 0; k <= IPAM_KIND_LAST; k++)
		if (f->kindfd[k] >= 0)
			close(f->kindfd[k]);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->dirfd = f->lockfd = -1;
	for (int k = 0; k <= IPAM_KIND_LAST; k++)
		f->kindfd[k] = -1;
}

/* Read file `name` in dirfd into a malloc'd NUL-terminated buffer. -ENOENT if absent. */
static int read_at(int dirfd, const char *name, char **out, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > FILE_MAX) {
		int r = S_ISREG(sb.st_mode) ? -EFBIG : -EINVAL;
		close(fd);
		return r;
	}
	size_t cap = (size_t)sb.st_size + 1, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > FILE_MAX) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int er = -errno;
			free(buf);
			close(fd);
			return er;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static void version_of(const char *data, size_t len, char *out)
{
	unsigned char h[32];
	br_sha256_context c;
	br_sha256_init(&c);
	br_sha256_update(&c, data, len);
	br_sha256_out(&c, h);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Write data to dirfd/name atomically: temp file, fsync, rename (directory not synced). */
static int write_at(int dirfd, const char *name, const char *data, size_t len)
{
	char tmp[IPAM_NAME_MAX + 32];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t r = write(fd, data + off, len - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int er = -errno;
			close(fd);
			unlinkat(dirfd, tmp, 0);
			return er;
		}
		off += (size_t)r;
	}
	if (fsync(fd)) {
		int er = -errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return er;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name)) {
		int er = -errno;
		unlinkat(dirfd, tmp, 0);
		return er;
	}
	return 0;
}

static int kind_of(const char *s, enum ipam_kind *k)
{
	for (int i = IPAM_POOL; i <= IPAM_KIND_LAST; i++)
		if (!strcmp(s, kind_dir[i])) {
			*k = (enum ipam_kind)i;
			return 0;
		}
	return -EINVAL;
}

int ipam_journal_walk(const char *text, size_t len, ipam_journal_fn fn, void *arg, struct err *e)
{
	struct json_doc d;
	struct json_tok *tok = NULL;
	char *data = NULL;
	struct err pe = {0};
	int r = json_parse(&d, text, len, NULL, 0, 0, &pe);
	if (r == -ENOSPC || r == 0) {
		tok = calloc(d.n ? d.n : 1, sizeof(*tok));
		r = tok ? json_parse(&d, text, len, tok, d.n, 0, &pe) : -ENOMEM;
	}
	if (r) {
		r = err_setx(e, r == -ENOMEM ? ENOMEM : EUCLEAN, "journal: corrupt: %s",
			     r == -ENOMEM ? "out of memory" : pe.msg);
		goto out;
	}
	int ch = json_type(&d, 0) == JSON_OBJECT && d.tok[0].size == 1 ? json_get(&d, 0, "changes")
								       : -EINVAL;
	if (ch < 0 || json_type(&d, ch) != JSON_ARRAY) {
		r = err_setx(e, EUCLEAN, "journal: corrupt: expected {\"changes\":[...]}");
		goto out;
	}
	/* pass 0 validates every change, pass 1 hands them out: all or nothing */
	for (int pass = 0; pass < 2; pass++) {
		struct json_iter it;
		int kt, vt;
		unsigned i = 0;
		json_iter_init(&it, &d, ch);
		while (json_iter_next(&it, &kt, &vt)) {
			char ks[16], name[IPAM_NAME_MAX + 1];
			enum ipam_kind k;
			int kv = json_get(&d, vt, "kind"), nv = json_get(&d, vt, "name"),
			    dv = json_get(&d, vt, "data");
			if (json_type(&d, vt) != JSON_OBJECT || d.tok[vt].size != 3 || kv < 0 ||
			    nv < 0 || dv < 0 || json_str(&d, kv, ks, sizeof(ks)) ||
			    kind_of(ks, &k) || json_str(&d, nv, name, sizeof(name)) ||
			    !ipam_name_valid(name) ||
			    (json_type(&d, dv) != JSON_STRING && !json_is_null(&d, dv))) {
				r = err_setx(e, EUCLEAN,
					     "journal: corrupt: change %u is not "
					     "{kind, name, data}",
					     i);
				goto out;
			}
			i++;
			if (pass == 0)
				continue;
			size_t dl = 0;
			if (json_is_null(&d, dv)) {
				r = fn(arg, k, name, NULL, 0, e);
			} else {
				long n = json_str_len(&d, dv);
				free(data);
				data = n >= 0 ? malloc((size_t)n + 1) : NULL;
				if (!data || json_str_decode(&d, dv, data, (size_t)n + 1, &dl)) {
					r = err_set(e, ENOMEM, "journal: change %u", i - 1);
					goto out;
				}
				r = fn(arg, k, name, data, dl, e);
			}
			if (r)
				goto out;
		}
	}
	r = 0;
out:
	free(data);
	free(tok);
	return r;
}

/* journal_apply()'s callback: write or remove one record file. */
static int apply_one(void *arg, enum ipam_kind k, const char *name, const char *data, size_t len,
		     struct err *e)
{
	struct ipam_ds_file *f = arg;
	char fn[IPAM_NAME_MAX + 8];
	snprintf(fn, sizeof(fn), "%s.json", name);
	if (!data) {
		if (unlinkat(f->kindfd[k], fn, 0) && errno != ENOENT)
			return err_set(e, errno, "ipam file datastore %s/%s/%s: unlink", f->dir,
				       kind_dir[k], fn);
		return 0;
	}
	int r = write_at(f->kindfd[k], fn, data, len);
	if (r)
		return err_set(e, -r, "ipam file datastore %s/%s/%s: write", f->dir, kind_dir[k],
			       fn);
	return 0;
}

/* Apply the journal text (validated completely before anything is touched), then
 * fsync the record directories. */
static int journal_apply(struct ipam_ds_file *f, const char *text, size_t len, struct err *e)
{
	int r = ipam_journal_walk(text, len, apply_one, f, e);
	if (r == -EUCLEAN)
		return err_prefix(e, "ipam file datastore %s/" JOURNAL, f->dir);
	if (r)
		return r;
	for (int k = IPAM_POOL; k <= IPAM_KIND_LAST; k++)
		if (fsync(f->kindfd[k]))
			return err_set(e, errno, "ipam file datastore %s/%s: fsync", f->dir,
				       kind_dir[k]);
	return 0;
}

/* Under the lock: finish a commit a crash interrupted, drop stray temporary files. */
static int recover(struct ipam_ds_file *f, struct err *e)
{
	char *text;
	size_t len;
	int r = read_at(f->dirfd, JOURNAL, &text, &len);
	if (r == 0) {
		r = journal_apply(f, text, len, e);
		free(text);
		if (r)
			return r;
		if (unlinkat(f->dirfd, JOURNAL, 0) || fsync(f->dirfd))
			return err_set(e, errno, "ipam file datastore %s/" JOURNAL ": remove",
				       f->dir);
	} else if (r != -ENOENT) {
		return err_set(e, -r, "ipam file datastore %s/" JOURNAL ": read", f->dir);
	}
	unlinkat(f->dirfd, "." JOURNAL ".tmp", 0);
	for (int k = IPAM_POOL; k <= IPAM_KIND_LAST; k++) {
		int fd = dup(f->kindfd[k]);
		DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dp) {
			if (fd >= 0)
				close(fd);
			return err_set(e, errno, "ipam file datastore %s/%s: open", f->dir,
				       kind_dir[k]);
		}
		rewinddir(dp);
		struct dirent *de;
		while ((de = readdir(dp)))
			if (de->d_name[0] == '.' && strcmp(de->d_name, ".") &&
			    strcmp(de->d_name, ".."))
				unlinkat(f->kindfd[k], de->d_name, 0);
		closedir(dp);
	}
	return 0;
}

static int file_begin(void *ctx, struct err *e)
{
	struct ipam_ds_file *f = ctx;
	while (flock(f->lockfd, LOCK_EX))
		if (errno != EINTR)
			return err_set(e, errno, "ipam file datastore %s/lock: flock", f->dir);
	f->locked = true;
	int r = recover(f, e);
	if (r) {
		flock(f->lockfd, LOCK_UN);
		f->locked = false;
	}
	return r;
}

static void file_end(void *ctx)
{
	struct ipam_ds_file *f = ctx;
	if (f->locked)
		flock(f->lockfd, LOCK_UN);
	f->locked = false;
}

static int load_kind(struct ipam_ds_file *f, enum ipam_kind k, struct ipam_state *st, struct err *e)
{
	int fd = dup(f->kindfd[k]);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		if (fd >= 0)
			close(fd);
		return err_set(e, errno, "ipam file datastore %s/%s: open", f->dir, kind_dir[k]);
	}
	rewinddir(dp);
	int r = 0;
	struct dirent *de;
	while (!r && (de = readdir(dp))) {
		const char *n = de->d_name;
		size_t l = strlen(n);
		if (n[0] == '.')
			continue;
		char name[IPAM_NAME_MAX + 1], ver[IPAM_VERSION_MAX + 1];
		if (l < 6 || strcmp(n + l - 5, ".json") || l - 5 > IPAM_NAME_MAX) {
			r = err_setx(e, EUCLEAN,
				     "ipam file datastore %s/%s/%.64s: not a record file name",
				     f->dir, kind_dir[k], n);
			break;
		}
		memcpy(name, n, l - 5);
		name[l - 5] = 0;
		char *text;
		size_t len;
		r = read_at(f->kindfd[k], n, &text, &len);
		if (r) {
			err_set(e, -r, "ipam file datastore %s/%s/%s: read", f->dir, kind_dir[k],
				n);
			break;
		}
		version_of(text, len, ver);
		r = ipam_state_load(st, k, name, ver, text, len, e);
		free(text);
		if (r)
			err_prefix(e, "ipam file datastore %s/%s/%s", f->dir, kind_dir[k], n);
	}
	closedir(dp);
	return r;
}

static int file_load(void *ctx, struct ipam_state *st, struct err *e)
{
	struct ipam_ds_file *f = ctx;
	int r = 0;
	for (int k = IPAM_POOL; k <= IPAM_KIND_LAST && !r; k++)
		r = load_kind(f, (enum ipam_kind)k, st, e);
	return r;
}

static int file_commit(void *ctx, const struct ipam_change *c, unsigned n, struct err *e)
{
	struct ipam_ds_file *f = ctx;
	char fn[IPAM_NAME_MAX + 8], ver[IPAM_VERSION_MAX + 1];
	/* compare-and-swap check (the lock makes a mismatch a bug, but say so) */
	for (unsigned i = 0; i < n; i++) {
		char *text;
		size_t len;
		if (!ipam_name_valid(c[i].name))
			return err_setx(e, EINVAL, "ipam file datastore: %s %.64s: bad name",
					ipam_kind_name(c[i].kind), c[i].name);
		snprintf(fn, sizeof(fn), "%s.json", c[i].name);
		int r = read_at(f->kindfd[c[i].kind], fn, &text, &len);
		if (r == -ENOENT) {
			ver[0] = 0;
		} else if (r) {
			return err_set(e, -r, "ipam file datastore %s/%s/%s: read", f->dir,
				       kind_dir[c[i].kind], fn);
		} else {
			version_of(text, len, ver);
			free(text);
		}
		if (strcmp(ver, c[i].version))
			return err_setx(e, ESTALE,
					"ipam file datastore %s/%s/%s: changed since read (version "
					"%s, expected %s)",
					f->dir, kind_dir[c[i].kind], fn, ver[0] ? ver : "none",
					c[i].version[0] ? c[i].version : "none");
	}
	struct json_w w;
	json_w_init_grow(&w, FILE_MAX);
	json_w_obj_begin(&w);
	json_w_key(&w, "changes");
	json_w_arr_begin(&w);
	for (unsigned i = 0; i < n; i++) {
		json_w_obj_begin(&w);
		json_w_kstr(&w, "kind", kind_dir[c[i].kind]);
		json_w_kstr(&w, "name", c[i].name);
		json_w_key(&w, "data");
		if (c[i].json)
			json_w_strn(&w, c[i].json, c[i].len);
		else
			json_w_null(&w);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	int r = json_w_finish(&w, e);
	if (r) {
		json_w_free(&w);
		return err_prefix(e, "ipam file datastore %s/" JOURNAL, f->dir);
	}
	r = write_at(f->dirfd, JOURNAL, w.buf, w.len);
	if (!r && fsync(f->dirfd))
		r = -errno;
	if (r) {
		json_w_free(&w);
		return err_set(e, -r, "ipam file datastore %s/" JOURNAL ": write", f->dir);
	}
	/* committed: from here a crash is finished by the next begin */
	r = journal_apply(f, w.buf, w.len, e);
	json_w_free(&w);
	if (r)
		return r;
	if (unlinkat(f->dirfd, JOURNAL, 0) || fsync(f->dirfd))
		return err_set(e, errno, "ipam file datastore %s/" JOURNAL ": remove", f->dir);
	return 0;
}

static const struct ipam_ds_ops file_ops = {
    .name = "file",
    .begin = file_begin,
    .load = file_load,
    .commit = file_commit,
    .end = file_end,
};

struct ipam_ds ipam_ds_file(struct ipam_ds_file *f)
{
	return (struct ipam_ds){.ops = &file_ops, .ctx = f};
}
