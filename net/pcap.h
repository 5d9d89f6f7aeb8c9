/* pcap — classic pcap capture files (the libpcap/tcpdump format), read and written
 * in-tree (libpcap is not linked; see README).
 *
 *   file header (24 bytes, in the writer's byte order; the magic tells which):
 *   +-------------+---------+---------+----------+----------+---------+----------+
 *   | magic (4)   | major 2 | minor 4 | zone (4) | sigfigs  | snaplen | linktype |
 *   +-------------+---------+---------+----------+----------+---------+----------+
 *     0xa1b2c3d4 = microsecond timestamps, 0xa1b23c4d = nanosecond timestamps
 *   record header (16 bytes) + caplen bytes of frame, repeated:
 *   +----------+--------------------+---------+------------+
 *   | sec (4)  | usec or nsec (4)   | caplen  | len (wire) |
 *   +----------+--------------------+---------+------------+
 *
 * The reader is pure and bounds-checked (fuzz-pcap): it walks a caller-owned copy of
 * the file and rejects anything inconsistent with a message naming the record. pcapng
 * files are recognised and refused. The writer writes the header and every record
 * straight to its fd (no user-space buffer), so a killed writer leaves whole records
 * behind (at most the last one cut); pcap_wr_close fsyncs.
 */
#ifndef KVNET_NET_PCAP_H
#define KVNET_NET_PCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/cursor.h"

struct err;

#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_MAGIC_NSEC 0xa1b23c4du
#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_FILE_HDR_LEN 24
#define PCAP_REC_HDR_LEN 16
/* Largest record the reader accepts (libpcap's own limit for Ethernet). */
#define PCAP_MAX_CAPLEN 262144u

/* A reader over a whole file held in memory by the caller. */
struct pcap_rd {
	struct cur c;	   /* over the records, after the file header */
	bool swapped;	   /* written in the other byte order */
	bool nsec;	   /* timestamps carry nanoseconds (else microseconds) */
	uint32_t snaplen;  /* the file header's snapshot length */
	uint32_t linktype; /* the file header's link type (1 = Ethernet) */
	uint64_t nrec;	   /* records returned so far */
};

/* One record (data points into the reader's range). */
struct pcap_rec {
	struct timespec ts;  /* capture time (CLOCK_REALTIME), nanoseconds always */
	const uint8_t *data; /* the captured bytes */
	uint32_t caplen;     /* bytes at data */
	uint32_t len;	     /* length on the wire (>= caplen) */
};

/* Check the file header of data (len bytes) and set r up to read the records. Returns 0,
 * or -EBADMSG with e ("pcap: bad magic 0x7f454c46 (not a pcap file)", "pcap: pcapng files
 * are not supported", "pcap: truncated file header (10 bytes)", "pcap: version 3.0"). */
int pcap_rd_init(struct pcap_rd *r, const uint8_t *data, size_t len, struct err *e);

/* The next record: 1 with *rec filled, 0 at the end of the file, -EBADMSG with e
 * ("pcap: record 3: caplen 70000 past the end of the file (64 bytes left)") when the
 * file is cut or inconsistent (caplen over PCAP_MAX_CAPLEN or over len, a fraction of a
 * second out of range). After an error every later call fails the same way. */
int pcap_rd_next(struct pcap_rd *r, struct pcap_rec *rec, struct err *e);

/* Encode a file header (host byte order) into out. */
void pcap_file_hdr(uint8_t out[PCAP_FILE_HDR_LEN], bool nsec, uint32_t snaplen,
		   uint32_t linktype);

/* Encode a record header for a frame of caplen bytes (len on the wire) taken at ts. */
void pcap_rec_hdr(uint8_t out[PCAP_REC_HDR_LEN], bool nsec, const struct timespec *ts,
		  uint32_t caplen, uint32_t len);

/* A capture file being written. */
struct pcap_wr {
	int fd;		  /* the file; -1 when closed */
	bool nsec;	  /* nanosecond timestamps */
	uint32_t snaplen; /* longest record written whole */
	uint64_t nrec;	  /* records written */
	char path[256];	  /* for messages (cut if longer) */
};

/* Create (or truncate) path, mode 0644, and write the file header for Ethernet frames.
 * Returns 0 or -errno with e = "pcap PATH: open: Permission denied". */
int pcap_wr_open(struct pcap_wr *w, const char *path, bool nsec, uint32_t snaplen,
		 struct err *e);

/* Append one frame (cut to snaplen; len is its length on the wire). Returns 0 or -errno
 * with e ("pcap PATH: write: No space left on device"). */
int pcap_wr_frame(struct pcap_wr *w, const struct timespec *ts, const uint8_t *data,
		  size_t caplen, size_t len, struct err *e);

/* fsync and close. Returns 0 or -errno with e; the fd is closed either way. A closed
 * writer (fd -1) is left alone. */
int pcap_wr_close(struct pcap_wr *w, struct err *e);

#endif
