/* inst — what `kvnet install` puts into a node's file tree, and how `kvnet uninstall`
 * takes exactly that back out.
 *
 * An install is a plan: a list of items (directories, files, symlinks), each compared
 * with what is under the root now and given an action. Making the plan reads only;
 * applying it writes. So `--dry-run` prints the same plan that a real run carries out,
 * and a second run over an installed tree finds every item up to date (nothing to do).
 *
 *   ROOT/opt/cni/bin/kvnet                     the binary (0755)
 *   ROOT/usr/local/bin/kvnet -> /opt/cni/bin/kvnet   one copy of the binary on the node;
 *   ROOT/usr/local/bin/kvnet-agent -> kvnet          role links (main.c dispatches on the
 *   ROOT/usr/local/bin/kvnet-ipamctl -> kvnet        name), the names `make install` uses
 *   ROOT/usr/local/bin/kvnet-garp-watch -> kvnet
 *   ROOT/etc/cni/net.d/10-kvnet.conflist       the conflist (0644)           [site file]
 *   ROOT/etc/kvnet/kvnet.conf                  node facts (0644)             [site file]
 *   ROOT/etc/systemd/system/kvnet-agent.service   the agent's unit (0644)
 *   ROOT/var/lib/kvnet/install.manifest        what this install put there (0644)
 *
 * and with a service account (the DaemonSet's init container) the CNI plugin's kubeconfig
 * at ROOT + kvnet.conf's [kubernetes] kubeconfig (0600), with the token (0600) and the CA
 * (0644) beside it. cni_only leaves out the links and the unit (a DaemonSet node).
 *
 * Site files (the conflist and kvnet.conf) are never replaced when they differ from what
 * the install would write: the node's own edits win, and the plan says so (INST_KEEP)
 * unless force is set. Every other item that differs is replaced (an upgrade).
 *
 * Writes are atomic: a temporary file in the same directory, written, fchmod to the
 * item's mode, fsync, renamed over the target, the directory fsync'd. A symlink is made
 * under a temporary name and renamed. Directories are created with explicit modes.
 *
 * The manifest lists the directories the install created and the files and links it
 * wrote (files with their SHA-256). Uninstall removes each file or link only while it is
 * still what was written (a file changed since is kept, and the plan says so), then the
 * directories it created when they are empty, then the manifest. What was there before
 * the install (an identical kvnet.conf, /opt/cni/bin itself) is never in the manifest.
 */
#ifndef KVNET_INST_INST_H
#define KVNET_INST_INST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct err;

#define INST_PATH_MAX 512	/* longest path below the root */
#define INST_MANIFEST "var/lib/kvnet/install.manifest"

enum inst_kind {
	INST_DIR,   /* a directory */
	INST_FILE,  /* a regular file with content */
	INST_LINK,  /* a symbolic link */
};

enum inst_action {
	INST_CREATE,   /* absent: create it */
	INST_REPLACE,  /* present and different: replace it (an upgrade, or force) */
	INST_SAME,     /* present and what the plan wants: nothing to do */
	INST_KEEP,     /* a site file that differs: kept as it is (force replaces it) */
	INST_REMOVE,   /* uninstall: still what the install wrote: remove it */
	INST_CHANGED,  /* uninstall: changed since the install: kept */
	INST_GONE,     /* uninstall: already absent */
	INST_NOTEMPTY, /* uninstall: a directory the install created that holds other files */
};

struct inst_item {
	enum inst_kind kind;	      /* what it is */
	enum inst_action action;      /* what the plan does with it */
	char path[INST_PATH_MAX];     /* below the root, no leading '/': "etc/kvnet/kvnet.conf" */
	mode_t mode;		      /* permission bits of a directory or file */
	bool site;		      /* a site file: kept when it differs (unless force) */
	bool ours;		      /* listed in the manifest: this install (or an earlier
				       * one) wrote it */
	char *data;		      /* file content (malloc'd, owned) or link target */
	size_t len;		      /* bytes of data */
	char sha256[65];	      /* file: hex SHA-256 of data (uninstall: as recorded) */
};

struct inst_plan {
	char root[INST_PATH_MAX];  /* the root directory, without a trailing '/' */
	struct inst_item *item;	   /* the items, in the order they are applied */
	unsigned n;		   /* items used */
	unsigned cap;		   /* items allocated */
	bool uninstall;		   /* a plan made by inst_plan_uninstall() */
	bool manifest_dirty;	   /* install: the manifest changes (apply rewrites it) */
};

struct inst_opts {
	const char *root;	  /* the tree to fill ("/" for the running node); required */
	const char *binary;	  /* the binary to copy; NULL = /proc/self/exe */
	const char *conflist;	  /* conflist file to install; NULL = the built-in one
				   * (dist/cni/file/10-kvnet.conflist) */
	const char *conf;	  /* kvnet.conf to install; NULL = the defaults with their
				   * documentation (dist/kvnet.conf) */
	bool cni_only;		  /* binary, conflist, kvnet.conf (and kubeconfig) only */
	bool force;		  /* replace site files that differ */
	const char *sa_dir;	  /* service-account directory (token, ca.crt) to write the
				   * CNI plugin's kubeconfig from; NULL = no kubeconfig */
	const char *api_host;	  /* with sa_dir: the API server's host (IP or name) */
	const char *api_port;	  /* with sa_dir: its port */
};

/* Build the install plan for o: every item with its content, compared with what is under
 * o->root now. Reads only. The caller frees p with inst_plan_free() even on error.
 * 0, or -errno with e: the root is not a directory, an input is unreadable or invalid
 * (conf: not a valid kvnet.conf; conflist: not JSON), a path is too long, a directory in
 * the way is a file. */
int inst_plan_install(struct inst_plan *p, const struct inst_opts *o, struct err *e);

/* Build the uninstall plan from ROOT/var/lib/kvnet/install.manifest. -ENOENT (e says so)
 * when there is no manifest: nothing was installed there. */
int inst_plan_uninstall(struct inst_plan *p, const char *root, struct err *e);

/* Carry the plan out (items whose action changes something; then the manifest).
 * Stops at the first failure: 0 or -errno with e naming the path. */
int inst_apply(struct inst_plan *p, struct err *e);

/* Items whose action changes something (0: nothing to do). */
unsigned inst_changes(const struct inst_plan *p);

void inst_plan_free(struct inst_plan *p);

/* "create", "replace", "up to date", ... */
const char *inst_action_name(enum inst_action a);
/* "dir", "file", "link" */
const char *inst_kind_name(enum inst_kind k);

/* ---- the manifest (pure; fuzzed) ------------------------------------------------------ */

/* Parse manifest text into p's items (action INST_SAME; files with their sha256, links
 * with their target, directories). Lines:
 *
 *   kvnet-install-manifest 1        first line
 *   dir  MODE PATH                  MODE octal, PATH below the root (no "..", no "//",
 *   file MODE SHA256 PATH           no leading '/', printable, no spaces)
 *   link TARGET PATH
 *
 * 0, or -EINVAL with e naming the line. Items already in p are kept. */
int inst_manifest_parse(struct inst_plan *p, const char *text, size_t len, struct err *e);

/* Write the manifest of p's items that are ours into buf (cap bytes, NUL-terminated when
 * cap > 0); returns the bytes needed (excluding the NUL), like snprintf. */
size_t inst_manifest_format(const struct inst_plan *p, char *buf, size_t cap);

/* True when path is acceptable below a root: relative, no "." or ".." component, no
 * empty component, printable ASCII without spaces, shorter than INST_PATH_MAX. */
bool inst_path_ok(const char *path);

#endif
