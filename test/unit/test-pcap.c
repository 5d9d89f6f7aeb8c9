/* Unit tests for net/pcap: writer -> reader round trip (both timestamp precisions),
 * a big-endian microsecond file written by hand from the format description, and
 * garbage of every kind rejected with a message naming what is wrong. tcpdump reads
 * our files in test/integration/garpwatch.py; we read tcpdump's in test-packet. */
#include "lib/err.h"
#include "net/pcap.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void test_round_trip(void)
{
	for (int nsec = 0; nsec < 2; nsec++) {
		struct pcap_wr w;
		struct err e = {0};
		uint8_t f1[60], f2[3000];
		for (size_t i = 0; i < sizeof(f1); i++)
			f1[i] = (uint8_t)i;
		memset(f2, 0xab, sizeof(f2));
		struct timespec t1 = {1763830000, 123456789}, t2 = {1763830001, 999999999};
		T_EQ(pcap_wr_open(&w, path, nsec, 2048, &e), 0);
		T_EQ(pcap_wr_frame(&w, &t1, f1, sizeof(f1), sizeof(f1), &e), 0);
		T_EQ(pcap_wr_frame(&w, &t2, f2, sizeof(f2), sizeof(f2), &e), 0); /* cut to 2048 */
		T_EQ(w.nrec, 2);
		T_EQ(pcap_wr_close(&w, &e), 0);
		T_EQ(pcap_wr_close(&w, &e), 0); /* closed: nothing to do */

		size_t len;
		uint8_t *buf = (uint8_t *)t_slurp(path, &len);
		T_EQ(len, 24 + 16 + 60 + 16 + 2048);
		struct pcap_rd r;
		struct pcap_rec rec;
		T_EQ(pcap_rd_init(&r, buf, len, &e), 0);
		T_EQ(r.nsec, nsec);
		T_CHECK(!r.swapped);
		T_EQ(r.snaplen, 2048);
		T_EQ(r.linktype, PCAP_LINKTYPE_ETHERNET);
		T_EQ(pcap_rd_next(&r, &rec, &e), 1);
		T_EQ(rec.caplen, 60);
		T_EQ(rec.len, 60);
		T_MEMEQ(rec.data, f1, 60);
		T_EQ(rec.ts.tv_sec, 1763830000);
		T_EQ(rec.ts.tv_nsec, nsec ? 123456789 : 123456000);
		T_EQ(pcap_rd_next(&r, &rec, &e), 1);
		T_EQ(rec.caplen, 2048);
		T_EQ(rec.len, 3000);
		T_EQ(rec.ts.tv_nsec, nsec ? 999999999 : 999999000);
		T_EQ(pcap_rd_next(&r, &rec, &e), 0);
		T_EQ(pcap_rd_next(&r, &rec, &e), 0);
		T_EQ(r.nrec, 2);
		free(buf);
	}
}

/* A big-endian microsecond file, as a SPARC would write it: header + one 4-byte record. */
static const uint8_t BE_FILE[] = {
	0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
	0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, /* snaplen 65535, Ethernet */
	0x00, 0x00, 0x00, 0x10, 0x00, 0x0f, 0x42, 0x3f, /* 16 s, 999999 us */
	0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x40, /* caplen 4, len 64 */
	0xde, 0xad, 0xbe, 0xef,
};

static void test_other_byte_order(void)
{
	struct pcap_rd r;
	struct pcap_rec rec;
	struct err e = {0};
	T_EQ(pcap_rd_init(&r, BE_FILE, sizeof(BE_FILE), &e), 0);
	T_CHECK(r.swapped);
	T_CHECK(!r.nsec);
	T_EQ(r.snaplen, 65535);
	T_EQ(r.linktype, 1);
	T_EQ(pcap_rd_next(&r, &rec, &e), 1);
	T_EQ(rec.ts.tv_sec, 16);
	T_EQ(rec.ts.tv_nsec, 999999000);
	T_EQ(rec.caplen, 4);
	T_EQ(rec.len, 64);
	T_EQ(rec.data[0], 0xde);
	T_EQ(pcap_rd_next(&r, &rec, &e), 0);
}

/* Expect data to fail at init (rec < 0) or at record rec with message want. */
static void expect_bad(const uint8_t *data, size_t len, int rec, const char *want)
{
	struct pcap_rd r;
	struct pcap_rec pr;
	struct err e = {0};
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, data, len);
	int rc = pcap_rd_init(&r, copy, len, &e);
	if (rec < 0) {
		T_EQ(rc, -EBADMSG);
	} else {
		T_EQ(rc, 0);
		for (int i = 0; i < rec; i++)
			T_EQ(pcap_rd_next(&r, &pr, &e), 1);
		T_EQ(pcap_rd_next(&r, &pr, &e), -EBADMSG);
		/* sticky */
		T_EQ(pcap_rd_next(&r, &pr, NULL), -EBADMSG);
	}
	T_STREQ(e.msg, want);
	free(copy);
}

static void test_garbage(void)
{
	uint8_t b[64];
	expect_bad((const uint8_t *)"", 0, -1, "pcap: truncated file header (0 bytes)");
	expect_bad(BE_FILE, 23, -1, "pcap: truncated file header (23 bytes)");
	memcpy(b, "\x7f" "ELF", 4);
	memset(b + 4, 0, 20);
	expect_bad(b, 24, -1, "pcap: bad magic 0x7f454c46 (not a pcap file)");
	memcpy(b, "\x0a\x0d\x0d\x0a", 4);
	expect_bad(b, 24, -1, "pcap: pcapng files are not supported");
	memcpy(b, BE_FILE, sizeof(BE_FILE));
	b[5] = 3;
	expect_bad(b, 24, -1, "pcap: version 3.4");

	/* records */
	memcpy(b, BE_FILE, sizeof(BE_FILE));
	expect_bad(b, 30, 0, "pcap: record 1: truncated header (6 bytes)");
	expect_bad(b, sizeof(BE_FILE) - 1, 0,
		   "pcap: record 1: caplen 4 past the end of the file (3 bytes left)");
	memcpy(b + 28, "\x00\x0f\x42\x40", 4);
	expect_bad(b, sizeof(BE_FILE), 0,
		   "pcap: record 1: fraction of a second out of range (caplen 4 len 64)");
	memcpy(b, BE_FILE, sizeof(BE_FILE));
	memcpy(b + 36, "\x00\x00\x00\x03", 4); /* len 3 < caplen 4 */
	expect_bad(b, sizeof(BE_FILE), 0,
		   "pcap: record 1: caplen over the wire length (caplen 4 len 3)");
	memcpy(b, BE_FILE, sizeof(BE_FILE));
	memcpy(b + 32, "\x7f\xff\xff\xff", 4);
	memcpy(b + 36, "\x7f\xff\xff\xff", 4);
	expect_bad(b, sizeof(BE_FILE), 0,
		   "pcap: record 1: caplen over the limit (caplen 2147483647 len 2147483647)");
	/* a good record, then a cut one */
	memcpy(b, BE_FILE, sizeof(BE_FILE));
	memcpy(b + sizeof(BE_FILE), BE_FILE + 24, 10);
	expect_bad(b, sizeof(BE_FILE) + 10, 1, "pcap: record 2: truncated header (10 bytes)");

	/* nanosecond file: 999,999,999 is fine, 1e9 is not */
	uint8_t n[24 + 16];
	struct timespec ts = {5, 999999999};
	pcap_file_hdr(n, true, 100, 1);
	pcap_rec_hdr(n + 24, true, &ts, 0, 0);
	struct pcap_rd r;
	struct pcap_rec rec;
	T_EQ(pcap_rd_init(&r, n, sizeof(n), NULL), 0);
	T_EQ(pcap_rd_next(&r, &rec, NULL), 1);
	T_EQ(rec.caplen, 0);
	ts.tv_nsec = 0;
	pcap_rec_hdr(n + 24, true, &ts, 0, 0);
	memcpy(n + 28, "\x00\xca\x9a\x3b", 4); /* 1e9 little-endian */
	expect_bad(n, sizeof(n), 0,
		   "pcap: record 1: fraction of a second out of range (caplen 0 len 0)");
}

static void test_writer_errors(void)
{
	struct pcap_wr w;
	struct err e = {0};
	T_EQ(pcap_wr_open(&w, "/nonexistent-dir/x.pcap", true, 100, &e), -ENOENT);
	T_STREQ(e.msg, "pcap /nonexistent-dir/x.pcap: open: No such file or directory");
	T_EQ(w.fd, -1);
	if (access("/dev/full", W_OK) == 0) {
		T_EQ(pcap_wr_open(&w, "/dev/full", true, 100, &e), -ENOSPC);
		T_STREQ(e.msg, "pcap /dev/full: write: No space left on device");
	}
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/kvt-%d.pcap", (int)getpid());
	T_RUN(test_round_trip);
	T_RUN(test_other_byte_order);
	T_RUN(test_garbage);
	T_RUN(test_writer_errors);
	unlink(path);
	return t_done();
}
