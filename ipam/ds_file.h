/* ipam file datastore — the embedded single-node default: records in a state directory.
 *
 *   DIR/lock                  flock(LOCK_EX) held for a whole update (read-modify-write)
 *   DIR/journal.json          redo journal of the commit in progress (exists only then)
 *   DIR/pool/NAME.json        one file per record, the JSON of ipam.h
 *   DIR/block/NAME.json
 *   DIR/handle/NAME.json
 *   DIR/config/default.json   the IPAMConfig singleton (absent = defaults)
 *
 * A commit writes the journal (every change in full) to a temporary file, fsyncs it and
 * renames it into place (then fsyncs DIR): that rename is the commit point. Then each
 * record is written to ".NAME.json.tmp", fsynced and renamed over NAME.json (deletions
 * unlink), the kind directories are fsynced, and the journal is removed. The next begin
 * (under the lock) replays a journal left by a crash and removes stray temporary files,
 * so whatever instant a writer dies at, the state read is the old one (no journal yet)
 * or the new one (journal replayed), never a mix and never a half-written file.
 * Versions are the first 16 hex digits of the SHA-256 of a record file.
 */
#ifndef KVNET_IPAM_DS_FILE_H
#define KVNET_IPAM_DS_FILE_H

#include "ipam/ds.h"

#include <limits.h>

struct err;

struct ipam_ds_file {
	char dir[PATH_MAX]; /* the state directory */
	int dirfd;	    /* it, open O_DIRECTORY */
	int kindfd[IPAM_KIND_LAST + 1]; /* DIR/pool, block, handle, config by enum ipam_kind;
					 * [0] unused */
	int lockfd;	    /* DIR/lock */
	bool locked;	    /* between begin and end */
};

/* Open (creating, mode 0700) the state directory dir. 0 or -errno with e. */
int ipam_ds_file_open(struct ipam_ds_file *f, const char *dir, struct err *e);
/* Close the descriptors (no effect on the stored state). */
void ipam_ds_file_close(struct ipam_ds_file *f);
/* Walk a journal's text (pure, no I/O): {"changes":[{"kind":"block","name":N,
 * "data":"<record JSON>"|null}, ...]}. Every change is checked (kind, valid object
 * name, data a string or null) before fn sees the first one; fn gets data NULL for a
 * deletion. -EUCLEAN with e for a malformed journal, else fn's error or 0. */
typedef int (*ipam_journal_fn)(void *arg, enum ipam_kind kind, const char *name, const char *data,
			       size_t len, struct err *e);
int ipam_journal_walk(const char *text, size_t len, ipam_journal_fn fn, void *arg, struct err *e);

/* The datastore view of f (f must outlive it). */
struct ipam_ds ipam_ds_file(struct ipam_ds_file *f);

#endif
