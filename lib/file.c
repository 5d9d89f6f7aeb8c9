/* file — whole-file helpers; see file.h. */
#include "lib/file.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read(const char *path, size_t max, char **out, size_t *len, struct err *e)
{
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "%s: open", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = errno;
		close(fd);
		return err_set(e, r, "%s: stat", path);
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		return err_setx(e, S_ISREG(st.st_mode) ? EFBIG : EINVAL,
				"%s: not a regular file of at most %zu bytes", path, max);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return err_set(e, ENOMEM, "%s: read", path);
	}
	size_t n = 0;
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int er = errno;
			free(buf);
			close(fd);
			return err_set(e, er, "%s: read", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}
