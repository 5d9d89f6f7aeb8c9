/* ipam inventory — VM addresses registered ahead of the VM (ipamctl reserve and import):
 * the CSV parser, validation against the IPAM state, and applying. Pure: no I/O.
 *
 * CSV (RFC 4180): a header line naming the columns namespace,vm,ip,mac,network (any order
 * is refused: exactly these five, case-insensitive, surrounding blanks ignored), then one
 * row per address. Fields may be double-quoted ("" inside quotes is one quote); a quoted
 * field may not span lines. Lines end in LF or CRLF; blank lines and a UTF-8 byte-order
 * mark are skipped; a line may hold at most IPAM_INV_LINE_MAX bytes.
 *
 *   namespace  a DNS label (the VM's namespace)
 *   vm         the VM's name (a DNS subdomain name)
 *   ip         one IPv4 or IPv6 address
 *   mac        "aa:bb:cc:dd:ee:ff" or empty (the pod interface keeps a random MAC)
 *   network    the CNI network name, empty = the default the caller gives
 *
 * Every problem is recorded with its line number (parsing never stops at the first one):
 * bad fields; the same address on two lines; two addresses of one family, or two MACs, for
 * one VM and network; one MAC for two VMs of one network (the line of the other VM named)
 * (`ipam_inv_parse`); then against the state (`ipam_inv_validate`): an address outside
 * every pool or reserved by its pool, held by another handle (named), or held by this VM
 * with another MAC; the MAC held by another VM (or pod) of the same network (named, with
 * its address and handle); or the VM already holding another address of that family. MACs
 * compare case-insensitively. A row that is already in place exactly is valid and changes
 * nothing (import is idempotent). Two writers that validate before either writes can both
 * pass; `ipam_inv_mac_recheck` after the write finds a MAC taken that way and
 * `ipam_inv_undo` takes the rows back.
 */
#ifndef KVNET_IPAM_INVENTORY_H
#define KVNET_IPAM_INVENTORY_H

#include "ipam/ipam.h"

#include <stdbool.h>
#include <stddef.h>

struct err;

#define IPAM_INV_LINE_MAX 1024	  /* bytes per CSV line */
#define IPAM_INV_ROWS_MAX 100000  /* rows per file */
#define IPAM_INV_ERRS_MAX 1000	  /* problems recorded; further ones are only counted */
#define IPAM_INV_MSG 256	  /* bytes of one problem's text */

struct ipam_inv_row {
	unsigned line;			   /* line number in the file (1 = header) */
	char ns[IPAM_NS_MAX + 1];	   /* namespace */
	char vm[IPAM_NAME_MAX + 1];	   /* VM name */
	struct ip_addr ip;		   /* address */
	char mac[IPAM_MAC_STR];		   /* lower-case MAC or "" */
	char network[IPAM_NAME_MAX + 1];   /* network name (default filled in) */
	char handle[IPAM_NAME_MAX + 1];	   /* the VM's handle <network>.vmi.<ns>.<vm> */
	bool bad;			   /* a problem was recorded for this row */
	bool in_place;			   /* validate: already exactly in the state */
	bool applied;			   /* apply: this row changed the state */
	bool raced;			   /* mac_recheck: another VM of the network got
					    * the MAC at the same time */
};

struct ipam_inv_err {
	unsigned line;		 /* line number (0 = the file as a whole) */
	char msg[IPAM_INV_MSG];	 /* what is wrong */
};

struct ipam_inv {
	struct ipam_inv_row *rows;  /* rows in file order; owned */
	unsigned n, cap;	    /* used / allocated */
	struct ipam_inv_err *errs;  /* problems in line order (stable); owned */
	unsigned n_errs, cap_errs;  /* recorded / allocated */
	unsigned n_errs_total;	    /* problems found, recorded or not */
	unsigned n_seen;	    /* data rows seen, good or bad */
};

void ipam_inv_init(struct ipam_inv *v);
void ipam_inv_free(struct ipam_inv *v);

/* Parse CSV text (len bytes; NUL bytes are a problem) with default network def_net into
 * v (initialised here; free it even on error). Problems go to v->errs. Returns 0 (look
 * at v->n_errs_total), or -ENOMEM / -EFBIG (more than IPAM_INV_ROWS_MAX rows) with e. */
int ipam_inv_parse(struct ipam_inv *v, const char *text, size_t len, const char *def_net,
		   struct err *e);

/* Add one row as if parsed (ipamctl reserve): same field checks; line is what problems
 * are reported under. 0 or -ENOMEM. */
int ipam_inv_add(struct ipam_inv *v, unsigned line, const char *ns, const char *vm,
		 const char *ip, const char *mac, const char *network, struct err *e);

/* Check every good row against st (read only); problems go to v->errs, rows get bad or
 * in_place. Returns 0 or -ENOMEM. */
int ipam_inv_validate(struct ipam_inv *v, const struct ipam_state *st, struct err *e);

/* Sort v->errs by line (stable). */
void ipam_inv_sort_errs(struct ipam_inv *v);

/* Reserve every row that is not bad and not in place in st (ipam_reserve_ip with the VM's
 * namespace, name and MAC); those rows get applied. *applied counts them. Stops at the
 * first failure (-errno with e naming the line). */
int ipam_inv_apply(struct ipam_state *st, struct ipam_inv *v, unsigned *applied,
		   struct err *e);

/* After v was applied and written: check every applied row with a MAC against st, a state
 * read afterwards. Two writers that each validated before the other wrote (the kubernetes
 * datastore writes blocks as separate objects, so they need not conflict) may both have
 * given one MAC to a VM of one network; each sees the other here, since each reads after
 * its own write. Rows whose MAC another VM (or pod) of the network now holds get raced and
 * a problem naming that VM. Returns how many, or -ENOMEM. */
int ipam_inv_mac_recheck(struct ipam_inv *v, const struct ipam_state *st, struct err *e);

/* Take back what v applied: release the address of every applied row (only the raced ones
 * when raced_only) that is still allocated to its handle. *undone counts them. 0 or the
 * first release's error. */
int ipam_inv_undo(struct ipam_state *st, const struct ipam_inv *v, bool raced_only,
		  unsigned *undone, struct err *e);

#endif
