/* pcap — classic capture files, read (pure) and written; see pcap.h. */
#include "net/pcap.h"

#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define PCAPNG_MAGIC 0x0a0d0d0au

static uint32_t rd32(struct pcap_rd *r, struct cur *c)
{
	uint32_t v;
	cur_h32(c, &v);
	return r->swapped ? __builtin_bswap32(v) : v;
}

int pcap_rd_init(struct pcap_rd *r, const uint8_t *data, size_t len, struct err *e)
{
	struct cur c;
	uint32_t magic;
	uint16_t major, minor;

	memset(r, 0, sizeof(*r));
	cur_init(&r->c, NULL, 0);
	r->c.bad = true; /* until the header checks out */
	if (len < PCAP_FILE_HDR_LEN)
		return err_setx(e, EBADMSG, "pcap: truncated file header (%zu bytes)", len);
	cur_init(&c, data, len);
	cur_h32(&c, &magic);
	if (magic == PCAP_MAGIC_USEC || magic == PCAP_MAGIC_NSEC) {
		r->swapped = false;
	} else if (__builtin_bswap32(magic) == PCAP_MAGIC_USEC ||
		   __builtin_bswap32(magic) == PCAP_MAGIC_NSEC) {
		r->swapped = true;
		magic = __builtin_bswap32(magic);
	} else if (magic == PCAPNG_MAGIC) {
		return err_setx(e, EBADMSG, "pcap: pcapng files are not supported");
	} else {
		uint32_t be = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
			      (uint32_t)data[2] << 8 | data[3];
		return err_setx(e, EBADMSG, "pcap: bad magic 0x%08x (not a pcap file)", be);
	}
	r->nsec = magic == PCAP_MAGIC_NSEC;
	cur_h16(&c, &major);
	cur_h16(&c, &minor);
	if (r->swapped) {
		major = __builtin_bswap16(major);
		minor = __builtin_bswap16(minor);
	}
	if (major != 2)
		return err_setx(e, EBADMSG, "pcap: version %u.%u", major, minor);
	cur_skip(&c, 8); /* thiszone, sigfigs: unused by everyone */
	r->snaplen = rd32(r, &c);
	r->linktype = rd32(r, &c) & 0x0fffffff; /* the top bits say FCS presence */
	r->c = c;
	return 0;
}

int pcap_rd_next(struct pcap_rd *r, struct pcap_rec *rec, struct err *e)
{
	uint64_t n = r->nrec + 1;
	if (!cur_ok(&r->c))
		return err_setx(e, EBADMSG, "pcap: record %llu: reader failed before",
				(unsigned long long)n);
	if (cur_left(&r->c) == 0)
		return 0;
	if (cur_left(&r->c) < PCAP_REC_HDR_LEN) {
		size_t left = cur_left(&r->c);
		r->c.bad = true;
		return err_setx(e, EBADMSG, "pcap: record %llu: truncated header (%zu bytes)",
				(unsigned long long)n, left);
	}
	uint32_t sec = rd32(r, &r->c), frac = rd32(r, &r->c);
	uint32_t caplen = rd32(r, &r->c), len = rd32(r, &r->c);
	const char *why = NULL;
	if (frac >= (r->nsec ? 1000000000u : 1000000u))
		why = "fraction of a second out of range";
	else if (caplen > PCAP_MAX_CAPLEN)
		why = "caplen over the limit";
	else if (caplen > len)
		why = "caplen over the wire length";
	if (why) {
		r->c.bad = true;
		return err_setx(e, EBADMSG, "pcap: record %llu: %s (caplen %u len %u)",
				(unsigned long long)n, why, caplen, len);
	}
	if (caplen > cur_left(&r->c)) {
		size_t left = cur_left(&r->c);
		r->c.bad = true;
		return err_setx(e, EBADMSG,
				"pcap: record %llu: caplen %u past the end of the file (%zu bytes left)",
				(unsigned long long)n, caplen, left);
	}
	cur_ptr(&r->c, caplen, &rec->data);
	rec->caplen = caplen;
	rec->len = len;
	rec->ts.tv_sec = (time_t)sec;
	rec->ts.tv_nsec = r->nsec ? (long)frac : (long)frac * 1000;
	r->nrec = n;
	return 1;
}

void pcap_file_hdr(uint8_t out[PCAP_FILE_HDR_LEN], bool nsec, uint32_t snaplen,
		   uint32_t linktype)
{
	struct wcur w;
	wcur_init(&w, out, PCAP_FILE_HDR_LEN);
	wcur_h32(&w, nsec ? PCAP_MAGIC_NSEC : PCAP_MAGIC_USEC);
	wcur_h16(&w, 2);
	wcur_h16(&w, 4);
	wcur_zero(&w, 8);
	wcur_h32(&w, snaplen);
	wcur_h32(&w, linktype);
}

void pcap_rec_hdr(uint8_t out[PCAP_REC_HDR_LEN], bool nsec, const struct timespec *ts,
		  uint32_t caplen, uint32_t len)
{
	struct wcur w;
	wcur_init(&w, out, PCAP_REC_HDR_LEN);
	wcur_h32(&w, (uint32_t)ts->tv_sec);
	wcur_h32(&w, nsec ? (uint32_t)ts->tv_nsec : (uint32_t)(ts->tv_nsec / 1000));
	wcur_h32(&w, caplen);
	wcur_h32(&w, len);
}

/* writev until everything is out (or an error). */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int pcap_wr_open(struct pcap_wr *w, const char *path, bool nsec, uint32_t snaplen,
		 struct err *e)
{
	uint8_t hdr[PCAP_FILE_HDR_LEN];
	w->nsec = nsec;
	w->snaplen = snaplen;
	w->nrec = 0;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0)
		return err_set(e, errno, "pcap %s: open", w->path);
	pcap_file_hdr(hdr, nsec, snaplen, PCAP_LINKTYPE_ETHERNET);
	struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(hdr)};
	int rc = write_all(w->fd, &iov, 1);
	if (rc < 0) {
		close(w->fd);
		w->fd = -1;
		return err_set(e, -rc, "pcap %s: write", w->path);
	}
	return 0;
}

int pcap_wr_frame(struct pcap_wr *w, const struct timespec *ts, const uint8_t *data,
		  size_t caplen, size_t len, struct err *e)
{
	uint8_t hdr[PCAP_REC_HDR_LEN];
	if (caplen > w->snaplen)
		caplen = w->snaplen;
	if (len < caplen)
		len = caplen;
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	pcap_rec_hdr(hdr, w->nsec, ts, (uint32_t)caplen, (uint32_t)len);
	struct iovec iov[2] = {
		{.iov_base = hdr, .iov_len = sizeof(hdr)},
		{.iov_base = (void *)data, .iov_len = caplen},
	};
	int rc = write_all(w->fd, iov, 2);
	if (rc < 0)
		return err_set(e, -rc, "pcap %s: write", w->path);
	w->nrec++;
	return 0;
}

int pcap_wr_close(struct pcap_wr *w, struct err *e)
{
	int rc = 0;
	if (w->fd < 0)
		return 0;
	if (fsync(w->fd) < 0 && errno != EINVAL)
		rc = err_set(e, errno, "pcap %s: fsync", w->path);
	if (close(w->fd) < 0 && rc == 0)
		rc = err_set(e, errno, "pcap %s: close", w->path);
	w->fd = -1;
	return rc;
}
