/* ipam file datastore; see ds_file.h. */
#include "ipam/ds_file.h"

#include "lib/json.h"
#include "lib/err.h"

#include <bearssl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_NAME "ipam.log"
#define LOG_TMP ".ipam.log.tmp"
#define OLD_JOURNAL "journal.json"
#define FILE_MAX (64u << 20)	 /* largest log (or old-layout record) file read */
#define LOG_SPARE_MIN (512u << 10) /* preallocated room for frames after a snapshot */

/* One record as stored: kind, name, JSON and its version. */
struct ipam_file_rec {
	enum ipam_kind kind;		    /* record kind */
	char name[IPAM_NAME_MAX + 1];	    /* record name */
	char ver[IPAM_VERSION_MAX + 1];	    /* version (hash of data) */
	char *data;			    /* record JSON; owned */
	size_t len;			    /* its length */
};

static const char *const kind_dir[IPAM_KIND_LAST + 1] = {NULL, "pool", "block", "handle",
							  "config"};

int ipam_ds_file_open(struct ipam_ds_file *f, const char *dir, struct err *e)
{
	memset(f, 0, sizeof(*f));
	f->dirfd = f->lockfd = f->logfd = -1;
	if (strlen(dir) >= sizeof(f->dir))
		return err_setx(e, ENAMETOOLONG, "ipam file datastore %.64s: path too long", dir);
	strcpy(f->dir, dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(e, errno, "ipam file datastore %s: mkdir", dir);
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0)
		return err_set(e, errno, "ipam file datastore %s: open", dir);
	f->lockfd = openat(f->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->lockfd < 0) {
		int r = err_set(e, errno, "ipam file datastore %s/lock: open", dir);
		ipam_ds_file_close(f);
		return r;
	}
	return 0;
}

static void recs_free(struct ipam_ds_file *f)
{
	for (unsigned i = 0; i < f->n_rec; i++)
		free(f->rec[i].data);
	free(f->rec);
	f->rec = NULL;
	f->n_rec = f->cap_rec = 0;
}

void ipam_ds_file_close(struct ipam_ds_file *f)
{
	if (f->logfd >= 0)
		close(f->logfd);
	if (f->lockfd >= 0)
		close(f->lockfd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->dirfd = f->lockfd = f->logfd = -1;
	recs_free(f);
}

/* Read all of fd into a malloc'd NUL-terminated buffer (at most FILE_MAX bytes). */
static int read_fd(int fd, char **out, size_t *len)
{
	struct stat sb;
	if (fstat(fd, &sb))
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	if ((size_t)sb.st_size > FILE_MAX)
		return -EFBIG;
	size_t cap = (size_t)sb.st_size + 1, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = cap > FILE_MAX ? NULL : realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return cap > FILE_MAX ? -EFBIG : -ENOMEM;
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
			return er;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* Read file `name` in dirfd. -ENOENT if absent. */
static int read_at(int dirfd, const char *name, char **out, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int r = read_fd(fd, out, len);
	close(fd);
	return r;
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

/* --- log frames ------------------------------------------------------------------------ */

static void frame_sum(const char *hdr, const char *payload, size_t len, char *out)
{
	unsigned char h[32];
	br_sha256_context c;
	br_sha256_init(&c);
	br_sha256_update(&c, hdr, 31);
	br_sha256_update(&c, payload, len);
	br_sha256_out(&c, h);
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
}

void ipam_log_header(char *hdr, uint64_t seq, const char *payload, size_t len)
{
	char tmp[IPAM_LOG_HDR + 1];
	snprintf(tmp, sizeof(tmp), "KVL1 %016llx %08x ", (unsigned long long)seq, (unsigned)len);
	frame_sum(tmp, payload, len, tmp + 31);
	tmp[47] = '\n';
	memcpy(hdr, tmp, IPAM_LOG_HDR);
}

/* Parse n lowercase hex digits. */
static bool hex_field(const char *s, unsigned n, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		*v = *v << 4 | d;
	}
	return true;
}

/* The frame at buf[0..avail): its seq and payload length when complete and valid. */
static bool frame_ok(const char *buf, size_t avail, uint64_t *seq, size_t *plen)
{
	uint64_t s, l;
	if (avail < IPAM_LOG_HDR + 1 || memcmp(buf, "KVL1 ", 5) || buf[21] != ' ' ||
	    buf[30] != ' ' || buf[47] != '\n' || !hex_field(buf + 5, 16, &s) ||
	    !hex_field(buf + 22, 8, &l) || l > avail - IPAM_LOG_HDR - 1 ||
	    buf[IPAM_LOG_HDR + l] != '\n' || memchr(buf + IPAM_LOG_HDR, '\n', l))
		return false;
	char sum[16];
	frame_sum(buf, buf + IPAM_LOG_HDR, l, sum);
	if (memcmp(sum, buf + 31, 16))
		return false;
	*seq = s;
	*plen = l;
	return true;
}

int ipam_log_walk(const char *buf, size_t len, ipam_log_fn fn, void *arg, struct ipam_log_pos *pos,
		  struct err *e)
{
	memset(pos, 0, sizeof(*pos));
	size_t off = 0;
	for (;;) {
		uint64_t seq;
		size_t pl;
		if (!frame_ok(buf + off, len - off, &seq, &pl) ||
		    (pos->frames && seq != pos->seq + 1))
			break;
		int r = fn(arg, buf + off + IPAM_LOG_HDR, pl, e);
		if (r)
			return r;
		off += IPAM_LOG_HDR + pl + 1;
		pos->end = off;
		pos->seq = seq;
		pos->frames++;
	}
	if (pos->frames == 0 && len > 0 && buf[0] != 0)
		return err_setx(e, EUCLEAN, "log: corrupt: the first frame is not valid");
	return 0;
}

/* --- the record table ------------------------------------------------------------------ */

static int rec_cmp(enum ipam_kind k, const char *name, const struct ipam_file_rec *r)
{
	if (k != r->kind)
		return k < r->kind ? -1 : 1;
	return strcmp(name, r->name);
}

/* Index of (k, name), or -(insertion point) - 1. */
static long rec_find(const struct ipam_ds_file *f, enum ipam_kind k, const char *name)
{
	long lo = 0, hi = (long)f->n_rec;
	while (lo < hi) {
		long mid = (lo + hi) / 2;
		int c = rec_cmp(k, name, &f->rec[mid]);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -lo - 1;
}

/* Put (data != NULL, copied) or delete one record. */
static int rec_apply(void *arg, enum ipam_kind k, const char *name, const char *data, size_t len,
		     struct err *e)
{
	struct ipam_ds_file *f = arg;
	long i = rec_find(f, k, name);
	if (!data) {
		if (i >= 0) {
			free(f->rec[i].data);
			memmove(&f->rec[i], &f->rec[i + 1],
				(f->n_rec - (size_t)i - 1) * sizeof(*f->rec));
			f->n_rec--;
		}
		return 0;
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return err_set(e, ENOMEM, "ipam file datastore: %s %s", kind_dir[k], name);
	memcpy(copy, data, len);
	copy[len] = 0;
	if (i < 0) {
		if (f->n_rec == f->cap_rec) {
			unsigned nc = f->cap_rec ? f->cap_rec * 2 : 64;
			struct ipam_file_rec *nr = realloc(f->rec, nc * sizeof(*nr));
			if (!nr) {
				free(copy);
				return err_set(e, ENOMEM, "ipam file datastore: records");
			}
			f->rec = nr;
			f->cap_rec = nc;
		}
		i = -i - 1;
		memmove(&f->rec[i + 1], &f->rec[i], (f->n_rec - (size_t)i) * sizeof(*f->rec));
		f->n_rec++;
		f->rec[i].kind = k;
		snprintf(f->rec[i].name, sizeof(f->rec[i].name), "%s", name);
	} else {
		free(f->rec[i].data);
	}
	f->rec[i].data = copy;
	f->rec[i].len = len;
	version_of(copy, len, f->rec[i].ver);
	return 0;
}

static int frame_apply(void *arg, const char *payload, size_t len, struct err *e)
{
	return ipam_journal_walk(payload, len, rec_apply, arg, e);
}

/* --- older layout (one file per record) ------------------------------------------------ */

/* No ipam.log yet: take the records of DIR/{pool,block,handle}/NAME.json and replay
 * DIR/journal.json over them, when they exist. */
static int load_old(struct ipam_ds_file *f, struct err *e)
{
	int r = 0;
	for (int k = IPAM_POOL; k <= IPAM_KIND_LAST && !r; k++) {
		int fd = openat(f->dirfd, kind_dir[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return err_set(e, errno, "ipam file datastore %s/%s: open", f->dir,
				       kind_dir[k]);
		}
		int dfd = dup(fd);
		DIR *dp = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (!dp) {
			if (dfd >= 0)
				close(dfd);
			close(fd);
			return err_set(e, errno, "ipam file datastore %s/%s: open", f->dir,
				       kind_dir[k]);
		}
		struct dirent *de;
		while (!r && (de = readdir(dp))) {
			const char *n = de->d_name;
			size_t l = strlen(n);
			if (n[0] == '.')
				continue;
			char name[IPAM_NAME_MAX + 1];
			if (l < 6 || strcmp(n + l - 5, ".json") || l - 5 > IPAM_NAME_MAX) {
				r = err_setx(e, EUCLEAN,
					     "ipam file datastore %s/%s/%.64s: not a record file name",
					     f->dir, kind_dir[k], n);
				break;
			}
			memcpy(name, n, l - 5);
			name[l - 5] = 0;
			if (!ipam_name_valid(name)) {
				r = err_setx(e, EINVAL, "ipam file datastore %s/%s/%s: bad name",
					     f->dir, kind_dir[k], n);
				break;
			}
			char *text;
			size_t len;
			r = read_at(fd, n, &text, &len);
			if (r) {
				err_set(e, -r, "ipam file datastore %s/%s/%s: read", f->dir,
					kind_dir[k], n);
				break;
			}
			r = rec_apply(f, (enum ipam_kind)k, name, text, len, e);
			free(text);
		}
		closedir(dp);
		close(fd);
	}
	if (r)
		return r;
	char *text;
	size_t len;
	r = read_at(f->dirfd, OLD_JOURNAL, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r)
		return err_set(e, -r, "ipam file datastore %s/" OLD_JOURNAL ": read", f->dir);
	r = ipam_journal_walk(text, len, rec_apply, f, e);
	free(text);
	if (r == -EUCLEAN)
		err_prefix(e, "ipam file datastore %s/" OLD_JOURNAL, f->dir);
	return r;
}

/* --- datastore operations -------------------------------------------------------------- */

static void log_close(struct ipam_ds_file *f)
{
	if (f->logfd >= 0)
		close(f->logfd);
	f->logfd = -1;
	recs_free(f);
}

static int file_begin(void *ctx, struct err *e)
{
	struct ipam_ds_file *f = ctx;
	while (flock(f->lockfd, LOCK_EX))
		if (errno != EINTR)
			return err_set(e, errno, "ipam file datastore %s/lock: flock", f->dir);
	f->locked = true;
	/* a compaction that died before its rename */
	if (unlinkat(f->dirfd, LOG_TMP, 0) && errno != ENOENT) {
		int r = err_set(e, errno, "ipam file datastore %s/" LOG_TMP ": remove", f->dir);
		flock(f->lockfd, LOCK_UN);
		f->locked = false;
		return r;
	}
	return 0;
}

static void file_end(void *ctx)
{
	struct ipam_ds_file *f = ctx;
	log_close(f);
	if (f->locked)
		flock(f->lockfd, LOCK_UN);
	f->locked = false;
}

/* Read the log (or the older layout) into f's record table. */
static int log_read(struct ipam_ds_file *f, struct err *e)
{
	log_close(f);
	f->seq = 0;
	f->tail = f->size = 0;
	f->frames = 0;
	memset(f->probe, 0, sizeof(f->probe));
	f->logfd = openat(f->dirfd, LOG_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (f->logfd < 0) {
		if (errno != ENOENT)
			return err_set(e, errno, "ipam file datastore %s/" LOG_NAME ": open", f->dir);
		return load_old(f, e);
	}
	/* mapped, not read: only the frames' pages are touched, not the zeros after them */
	struct stat sb;
	if (fstat(f->logfd, &sb))
		return err_set(e, errno, "ipam file datastore %s/" LOG_NAME ": stat", f->dir);
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > FILE_MAX)
		return err_setx(e, EFBIG, "ipam file datastore %s/" LOG_NAME
				": not a regular file of at most %u bytes", f->dir, FILE_MAX);
	size_t len = (size_t)sb.st_size;
	const char *buf = "";
	if (len) {
		void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, f->logfd, 0);
		if (m == MAP_FAILED)
			return err_set(e, errno, "ipam file datastore %s/" LOG_NAME ": mmap", f->dir);
		buf = m;
	}
	struct ipam_log_pos pos;
	int r = ipam_log_walk(buf, len, frame_apply, f, &pos, e);
	if (!r && pos.end < len) /* what follows the log now, to see writes behind the lock */
		memcpy(f->probe, buf + pos.end,
		       len - pos.end < sizeof(f->probe) ? len - pos.end : sizeof(f->probe));
	if (len)
		munmap((void *)buf, len);
	if (r == -EUCLEAN)
		return err_prefix(e, "ipam file datastore %s/" LOG_NAME, f->dir), r;
	if (r)
		return r;
	f->seq = pos.seq;
	f->tail = pos.end;
	f->size = len;
	f->frames = pos.frames;
	return 0;
}

static int file_load(void *ctx, const struct ipam_ds_scope *scope, struct ipam_state *st,
		     struct err *e)
{
	struct ipam_ds_file *f = ctx;
	(void)scope; /* one read of one file either way */
	int r = log_read(f, e);
	for (unsigned i = 0; !r && i < f->n_rec; i++) {
		struct ipam_file_rec *rc = &f->rec[i];
		r = ipam_state_load(st, rc->kind, rc->name, rc->ver, rc->data, rc->len, e);
		if (r)
			err_prefix(e, "ipam file datastore %s/%s", f->dir,
				   f->logfd >= 0 ? LOG_NAME : kind_dir[rc->kind]);
	}
	return r;
}

static void step(struct ipam_ds_file *f, enum ipam_file_step s)
{
	if (f->crash_hook)
		f->crash_hook(f->crash_arg, s);
}

static int write_all(int fd, const char *data, size_t len, off_t off)
{
	while (len) {
		ssize_t r = pwrite(fd, data, len, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		data += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Change list text for n changes, or (c NULL) for every record in f's table. */
static int payload(const struct ipam_ds_file *f, const struct ipam_change *c, unsigned n,
		   struct json_w *w, struct err *e)
{
	json_w_init_grow(w, FILE_MAX);
	json_w_obj_begin(w);
	json_w_key(w, "changes");
	json_w_arr_begin(w);
	unsigned cnt = c ? n : f->n_rec;
	for (unsigned i = 0; i < cnt; i++) {
		enum ipam_kind k = c ? c[i].kind : f->rec[i].kind;
		json_w_obj_begin(w);
		json_w_kstr(w, "kind", kind_dir[k]);
		json_w_kstr(w, "name", c ? c[i].name : f->rec[i].name);
		json_w_key(w, "data");
		if (c && !c[i].json)
			json_w_null(w);
		else if (c)
			json_w_strn(w, c[i].json, c[i].len);
		else
			json_w_strn(w, f->rec[i].data, f->rec[i].len);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_obj_end(w);
	return json_w_finish(w, e);
}

/* The frame (header, payload, newline) for payload w with seq: malloc'd into *out. */
static int frame_build(const struct json_w *w, uint64_t seq, char **out, size_t *len)
{
	size_t n = IPAM_LOG_HDR + w->len + 1;
	char *b = malloc(n);
	if (!b)
		return -ENOMEM;
	ipam_log_header(b, seq, w->buf, w->len);
	memcpy(b + IPAM_LOG_HDR, w->buf, w->len);
	b[n - 1] = '\n';
	*out = b;
	*len = n;
	return 0;
}

/* Write the whole state (f's table, changes applied) as a new log file. */
static int compact(struct ipam_ds_file *f, struct err *e)
{
	struct json_w w;
	int r = payload(f, NULL, 0, &w, e);
	if (r) {
		json_w_free(&w);
		return err_prefix(e, "ipam file datastore %s/" LOG_NAME, f->dir), r;
	}
	char *frame = NULL, *zero = NULL;
	size_t flen = 0;
	const char *what = "frame";
	int fd = -1;
	if ((r = frame_build(&w, f->seq + 1, &frame, &flen)))
		goto out;
	size_t spare = 2 * flen > LOG_SPARE_MIN ? 2 * flen : LOG_SPARE_MIN;
	size_t size = (flen + spare + 4095) & ~(size_t)4095;
	what = "create";
	zero = calloc(1, size - flen);
	if (!zero) {
		r = -ENOMEM;
		goto out;
	}
	step(f, IPAM_FILE_SNAP_WRITE);
	fd = openat(f->dirfd, LOG_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	what = "write";
	if ((r = write_all(fd, frame, flen, 0)) || (r = write_all(fd, zero, size - flen, flen)))
		goto out;
	step(f, IPAM_FILE_SNAP_SYNC);
	what = "fsync";
	f->syncs++;
	if (fsync(fd)) {
		r = -errno;
		goto out;
	}
	step(f, IPAM_FILE_SNAP_RENAME);
	what = "rename";
	if (renameat(f->dirfd, LOG_TMP, f->dirfd, LOG_NAME)) {
		r = -errno;
		goto out;
	}
	step(f, IPAM_FILE_SNAP_DIR_SYNC);
	what = "fsync directory";
	f->syncs++;
	if (fsync(f->dirfd)) {
		r = -errno;
		goto out;
	}
	if (f->logfd >= 0)
		close(f->logfd);
	f->logfd = fd;
	fd = -1;
	f->seq++;
	f->tail = flen;
	f->size = size;
	f->frames = 1;
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(f->dirfd, LOG_TMP, 0);
	}
	free(zero);
	free(frame);
	json_w_free(&w);
	if (r)
		return err_set(e, -r, "ipam file datastore %s/" LOG_NAME ": compact: %s", f->dir,
			       what);
	return 0;
}

static int file_commit(void *ctx, const struct ipam_change *c, unsigned n, struct err *e)
{
	struct ipam_ds_file *f = ctx;
	/* compare-and-swap check (the lock makes a mismatch a bug, but say so) */
	for (unsigned i = 0; i < n; i++) {
		if (!ipam_name_valid(c[i].name))
			return err_setx(e, EINVAL, "ipam file datastore: %s %.64s: bad name",
					ipam_kind_name(c[i].kind), c[i].name);
		long at = rec_find(f, c[i].kind, c[i].name);
		const char *ver = at >= 0 ? f->rec[at].ver : "";
		if (strcmp(ver, c[i].version))
			return err_setx(e, ESTALE,
					"ipam file datastore %s: %s %s: changed since read (version "
					"%s, expected %s)",
					f->dir, kind_dir[c[i].kind], c[i].name, ver[0] ? ver : "none",
					c[i].version[0] ? c[i].version : "none");
	}
	/* and nobody wrote behind the lock since load: the tail is still free */
	if (f->logfd >= 0) {
		char probe[sizeof(f->probe)] = {0};
		struct stat sb;
		ssize_t got = pread(f->logfd, probe, sizeof(probe), (off_t)f->tail);
		if (got < 0 || fstat(f->logfd, &sb) || sb.st_nlink == 0 ||
		    (size_t)sb.st_size != f->size || memcmp(probe, f->probe, sizeof(probe)))
			return err_setx(e, ESTALE,
					"ipam file datastore %s/" LOG_NAME ": written since read",
					f->dir);
	}
	struct json_w w;
	int r = payload(f, c, n, &w, e);
	if (r) {
		json_w_free(&w);
		return err_prefix(e, "ipam file datastore %s/" LOG_NAME, f->dir), r;
	}
	char *frame = NULL;
	size_t flen = 0;
	if ((r = frame_build(&w, f->seq + 1, &frame, &flen))) {
		json_w_free(&w);
		return err_set(e, -r, "ipam file datastore %s/" LOG_NAME ": frame", f->dir);
	}
	json_w_free(&w);
	if (f->logfd < 0 || f->frames >= IPAM_FILE_FRAMES_MAX || f->tail + flen > f->size) {
		free(frame);
		for (unsigned i = 0; i < n; i++)
			if ((r = rec_apply(f, c[i].kind, c[i].name, c[i].json, c[i].len, e)))
				return r;
		return compact(f, e);
	}
	step(f, IPAM_FILE_APPEND);
	const char *what = "write";
	r = write_all(f->logfd, frame, flen, (off_t)f->tail);
	if (!r) {
		step(f, IPAM_FILE_APPEND_SYNC);
		what = "fdatasync";
		f->syncs++;
		if (fdatasync(f->logfd))
			r = -errno;
	}
	if (!r) {
		f->seq++;
		f->tail += flen;
		f->frames++;
	}
	free(frame);
	if (r)
		return err_set(e, -r, "ipam file datastore %s/" LOG_NAME ": %s", f->dir, what);
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
