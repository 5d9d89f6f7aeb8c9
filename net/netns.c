/* netns — entering network namespaces and sysctls inside them; see netns.h. */
#include "net/netns.h"
#include "lib/err.h"

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int netns_open(const char *name_or_path, struct err *e)
{
	char path[4096];
	const char *p = name_or_path;
	if (!name_or_path || !*name_or_path)
		return err_setx(e, EINVAL, "netns: open: empty name");
	if (!strchr(name_or_path, '/')) {
		if (strcmp(name_or_path, ".") == 0 || strcmp(name_or_path, "..") == 0)
			return err_setx(e, EINVAL, "netns %s: open: not a namespace name",
					name_or_path);
		int n = snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name_or_path);
		if (n < 0 || (size_t)n >= sizeof(path))
			return err_setx(e, ENAMETOOLONG, "netns: open: name too long");
		p = path;
	}
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "netns %s: open", name_or_path);
	return fd;
}

int netns_open_pid(pid_t pid, struct err *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return netns_open(path, e);
}

static int enter_err(struct err *e, int code)
{
	return err_set(e, code, "netns: enter%s",
		       code == EINVAL ? " (not a network namespace?)" : "");
}

int netns_enter(struct netns_saved *saved, int nsfd, struct err *e)
{
	saved->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved->fd < 0)
		return err_set(e, errno, "netns: save the current namespace");
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		int code = errno;
		close(saved->fd);
		saved->fd = -1;
		return enter_err(e, code);
	}
	return 0;
}

int netns_enter_path(struct netns_saved *saved, const char *name_or_path, struct err *e)
{
	saved->fd = -1;
	int fd = netns_open(name_or_path, e);
	if (fd < 0)
		return fd;
	int r = netns_enter(saved, fd, e);
	close(fd);
	if (r < 0)
		err_prefix(e, "netns %s", name_or_path);
	return r;
}

int netns_return(struct netns_saved *saved, struct err *e)
{
	int r = 0;
	if (saved->fd < 0)
		return 0;
	if (setns(saved->fd, CLONE_NEWNET) < 0)
		r = err_set(e, errno, "netns: return to the original namespace");
	close(saved->fd);
	saved->fd = -1;
	return r;
}

int netns_run(int nsfd, int (*fn)(void *arg, struct err *e), void *arg, struct err *e)
{
	struct netns_saved saved;
	int r = netns_enter(&saved, nsfd, e);
	if (r < 0)
		return r;
	r = fn(arg, e);
	int rr = netns_return(&saved, e);
	return rr < 0 ? rr : r;
}

/* --- sysctl -------------------------------------------------------------------------- */

static bool name_char_ok(char ch)
{
	/* interface names may hold almost anything; refuse only what cannot be a name
	 * component or would change the meaning of the path */
	return ch > 0x20 && ch != 0x7f;
}

int netns_sysctl_path(const char *name, char *out, size_t cap, struct err *e)
{
	static const char prefix[] = "/proc/sys/";
	const char *n = name;
	char sep;
	size_t o = 0;
	if (!name || !*name)
		return err_setx(e, EINVAL, "sysctl: empty name");
	if (strncmp(n, prefix, sizeof(prefix) - 1) == 0)
		n += sizeof(prefix) - 1;
	size_t first = strcspn(n, "./");
	sep = n[first] ? n[first] : '.';
	if (cap < sizeof(prefix))
		return err_setx(e, ENAMETOOLONG, "sysctl %s: name too long", name);
	memcpy(out, prefix, sizeof(prefix) - 1);
	o = sizeof(prefix) - 1;
	const char *comp = n;
	size_t ncomp = 0;
	for (;;) {
		/* one component: up to the next separator */
		const char *end = strchr(comp, sep);
		size_t len = end ? (size_t)(end - comp) : strlen(comp);
		if (len == 0)
			return err_setx(e, EINVAL, "sysctl %s: empty component", name);
		if (o + len + 2 > cap || o + len + 1 > NETNS_SYSCTL_PATH_MAX)
			return err_setx(e, ENAMETOOLONG, "sysctl %s: name too long", name);
		char *start = out + o;
		for (size_t i = 0; i < len; i++) {
			char ch = comp[i];
			if (!name_char_ok(ch))
				return err_setx(e, EINVAL, "sysctl %s: bad character 0x%02x", name,
						(unsigned char)ch);
			/* dotted form: '/' stands for a '.' inside a component (sysctl(8)) */
			if (sep == '.' && ch == '/')
				ch = '.';
			out[o++] = ch;
		}
		/* checked after the translation: "net.//.x" must not become net/../x */
		if ((len == 1 && start[0] == '.') || (len == 2 && start[0] == '.' && start[1] == '.'))
			return err_setx(e, EINVAL, "sysctl %s: '.' or '..' component", name);
		if (ncomp == 0 && (len != 3 || memcmp(start, "net", 3) != 0))
			return err_setx(e, EINVAL,
					"sysctl %s: not a net.* sysctl (only those are per namespace)",
					name);
		ncomp++;
		if (!end)
			break;
		out[o++] = '/';
		comp = end + 1;
	}
	if (ncomp < 2)
		return err_setx(e, EINVAL, "sysctl %s: not a sysctl key (want net.SUBSYS...)", name);
	out[o] = '\0';
	return 0;
}

/* What the sysctl helpers do inside the namespace. */
struct sysctl_job {
	const char *name;   /* for messages */
	const char *path;   /* /proc/sys/net/... */
	const char *value;  /* write: what to write */
	char *buf;          /* read: destination */
	size_t cap;         /* read: its size */
	size_t len;         /* read: bytes read */
};

static int sysctl_write_fn(void *arg, struct err *e)
{
	struct sysctl_job *j = arg;
	size_t n = strlen(j->value);
	int fd = open(j->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "sysctl %s: open", j->name);
	ssize_t w = write(fd, j->value, n);
	int r = 0;
	if (w < 0)
		r = err_set(e, errno, "sysctl %s: write \"%s\"", j->name, j->value);
	else if ((size_t)w != n)
		r = err_setx(e, EIO, "sysctl %s: write \"%s\": short write (%zd of %zu bytes)",
			     j->name, j->value, w, n);
	close(fd);
	return r;
}

/* proc_dointvec and friends answer only a read at offset 0 (a second read returns 0,
 * not the rest), so the whole value is read at once into a page-sized buffer and the
 * caller's buffer is checked against its real length. */
static int sysctl_read_fn(void *arg, struct err *e)
{
	struct sysctl_job *j = arg;
	char page[4096];
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "sysctl %s: open", j->name);
	ssize_t n;
	do
		n = read(fd, page, sizeof(page));
	while (n < 0 && errno == EINTR);
	int code = errno;
	close(fd);
	if (n < 0)
		return err_set(e, code, "sysctl %s: read", j->name);
	size_t len = (size_t)n;
	while (len && page[len - 1] == '\n')
		len--;
	if (len + 1 > j->cap)
		return err_setx(e, EOVERFLOW, "sysctl %s: read: value of %zu bytes does not fit in %zu",
				j->name, len, j->cap - 1);
	memcpy(j->buf, page, len);
	j->len = len;
	return 0;
}

/* Run fn in nsfd, or right here when nsfd < 0. */
static int in_ns(int nsfd, int (*fn)(void *arg, struct err *e), struct sysctl_job *j,
		 struct err *e)
{
	/* the thread's own namespace needs no setns (nor CAP_SYS_ADMIN, which the agent
	 * drops: its sockets' namespace is its own) */
	struct stat want, cur;
	if (nsfd < 0 || (fstat(nsfd, &want) == 0 && stat("/proc/thread-self/ns/net", &cur) == 0 &&
			 want.st_dev == cur.st_dev && want.st_ino == cur.st_ino))
		return fn(j, e);
	return netns_run(nsfd, fn, j, e);
}

int netns_sysctl_write(int nsfd, const char *name, const char *value, struct err *e)
{
	char path[NETNS_SYSCTL_PATH_MAX];
	struct sysctl_job j = { .name = name, .path = path, .value = value };
	int r = netns_sysctl_path(name, path, sizeof(path), e);
	if (r < 0)
		return r;
	return in_ns(nsfd, sysctl_write_fn, &j, e);
}

int netns_sysctl_read(int nsfd, const char *name, char *buf, size_t cap, struct err *e)
{
	char path[NETNS_SYSCTL_PATH_MAX];
	struct sysctl_job j = { .name = name, .path = path, .buf = buf, .cap = cap };
	if (cap == 0)
		return err_setx(e, EINVAL, "sysctl %s: read: no buffer", name);
	buf[0] = '\0';
	int r = netns_sysctl_path(name, path, sizeof(path), e);
	if (r < 0)
		return r;
	r = in_ns(nsfd, sysctl_read_fn, &j, e);
	if (r < 0) {
		buf[0] = '\0';
		return r;
	}
	buf[j.len] = '\0';
	return (int)j.len;
}
