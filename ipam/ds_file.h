/* ipam file datastore — the embedded single-node default: records in a state directory.
 *
 *   DIR/lock       flock(LOCK_EX) held for a whole update (read-modify-write)
 *   DIR/ipam.log   the records: a log of frames, preallocated with zeros
 *   DIR/.ipam.log.tmp   a compaction in progress (exists only then; removed by begin)
 *
 * A frame is one line of header, one line of payload:
 *
 *   +------+-+----------------+-+--------+-+----------------+--+---------------+--+
 *   | KVL1 | | seq (16 hex)   | | len(8) | | sum (16 hex)   |\n| payload (len) |\n|
 *   +------+-+----------------+-+--------+-+----------------+--+---------------+--+
 *   0      4 5               21 22      30 31              47 48
 *
 * payload is a change list {"changes":[{"kind":"block","name":N,"data":"<record JSON>"|
 * null}, ...]} (data null = delete) with no raw newline in it; sum is the first 8 bytes
 * of SHA-256 over header bytes 0..30 and the payload; seq counts up by one per frame.
 * The state is the changes of every valid frame applied in order to an empty store; the
 * first frame of a file holds every record (a snapshot). The log ends at the first place
 * that is not a complete valid frame with the next seq (zeros, or a torn frame).
 *
 * Commit: a frame that fits in the preallocated space is written in place at the end of
 * the log and made durable with ONE fdatasync (the blocks exist, so no metadata moves):
 * the frame's checksum is the commit point, so a crash (or power loss that tears the
 * write) leaves the old state, or the new one once the whole frame is on disk. When the
 * frame does not fit, or IPAM_FILE_FRAMES_MAX frames have accumulated, the commit writes
 * a new file instead: one snapshot frame plus zeros, fsync, rename over ipam.log, fsync
 * DIR (a compaction: two syncs, amortised over the frames before it). A state directory
 * in the older layout (DIR/{pool,block,handle,config}/NAME.json, DIR/journal.json) is read
 * as the starting state until the first commit writes ipam.log.
 * Versions are the first 16 hex digits of the SHA-256 of a record's JSON.
 */
#ifndef KVNET_IPAM_DS_FILE_H
#define KVNET_IPAM_DS_FILE_H

#include "ipam/ds.h"

#include <limits.h>
#include <stdint.h>

struct err;
struct ipam_file_rec;

#define IPAM_FILE_FRAMES_MAX 64 /* frames in a log before a commit compacts it */

/* The steps of a commit that change the directory (for crash tests). */
enum ipam_file_step {
	IPAM_FILE_APPEND = 1,	/* write the frame in place */
	IPAM_FILE_APPEND_SYNC,	/* fdatasync it */
	IPAM_FILE_SNAP_WRITE,	/* compaction: write the temporary file */
	IPAM_FILE_SNAP_SYNC,	/* fsync it */
	IPAM_FILE_SNAP_RENAME,	/* rename it over ipam.log */
	IPAM_FILE_SNAP_DIR_SYNC /* fsync DIR */
};

struct ipam_ds_file {
	char dir[PATH_MAX];	    /* the state directory */
	int dirfd;		    /* it, open O_DIRECTORY */
	int lockfd;		    /* DIR/lock */
	bool locked;		    /* between begin and end */
	int logfd;		    /* DIR/ipam.log between load and end, or -1 */
	uint64_t seq;		    /* seq of the log's last valid frame (0: no log) */
	size_t tail;		    /* offset of the next frame */
	size_t size;		    /* log file size (its preallocated space) */
	unsigned frames;	    /* valid frames in the log */
	char probe[48];		    /* the bytes at tail when loaded (zeros, or a torn frame) */
	struct ipam_file_rec *rec;  /* records as loaded, sorted by kind, name; owned */
	unsigned n_rec, cap_rec;    /* used / allocated */
	unsigned syncs;		    /* fsync/fdatasync calls made so far (a statistic) */
	/* Tests only: called before each commit step; may end the process (a crash). */
	void (*crash_hook)(void *arg, enum ipam_file_step step);
	void *crash_arg; /* its argument */
};

/* Open (creating, mode 0700) the state directory dir. 0 or -errno with e. */
int ipam_ds_file_open(struct ipam_ds_file *f, const char *dir, struct err *e);
/* Close the descriptors (no effect on the stored state). */
void ipam_ds_file_close(struct ipam_ds_file *f);
/* Walk a change list's text (pure, no I/O): {"changes":[{"kind":"block","name":N,
 * "data":"<record JSON>"|null}, ...]}. Every change is checked (kind, valid object
 * name, data a string or null) before fn sees the first one; fn gets data NULL for a
 * deletion. -EUCLEAN with e for a malformed list, else fn's error or 0. */
typedef int (*ipam_journal_fn)(void *arg, enum ipam_kind kind, const char *name, const char *data,
			       size_t len, struct err *e);
int ipam_journal_walk(const char *text, size_t len, ipam_journal_fn fn, void *arg, struct err *e);

/* Where a log walk ended. */
struct ipam_log_pos {
	size_t end;	 /* offset just past the last valid frame (0: none) */
	uint64_t seq;	 /* that frame's seq */
	unsigned frames; /* valid frames */
};
#define IPAM_LOG_HDR 48 /* frame header bytes */
/* Walk the frames of a log's bytes (pure, no I/O), handing each valid frame's payload to
 * fn in order, and stop at the first place that is not a complete valid frame with the
 * next seq. An empty buffer or one that starts with zeros is an empty log. A buffer
 * whose first frame is invalid otherwise is -EUCLEAN with e (a torn write can only hit
 * the last frame: the first one is written before its file is renamed into place).
 * 0 or fn's error; pos filled either way. */
typedef int (*ipam_log_fn)(void *arg, const char *payload, size_t len, struct err *e);
int ipam_log_walk(const char *buf, size_t len, ipam_log_fn fn, void *arg, struct ipam_log_pos *pos,
		  struct err *e);
/* Format a frame header for payload (len bytes) with seq into hdr (IPAM_LOG_HDR bytes,
 * not NUL-terminated). The frame is hdr, payload, "\n". */
void ipam_log_header(char *hdr, uint64_t seq, const char *payload, size_t len);

/* The datastore view of f (f must outlive it). */
struct ipam_ds ipam_ds_file(struct ipam_ds_file *f);

#endif
