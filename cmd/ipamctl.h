/* ipamctl — what the subcommand files of the ipamctl role share (private to cmd/ipamctl*.c):
 * the process context (`struct ctl`: options, configuration, datastore and API
 * connections), the output helpers (kubectl-style tables, pretty JSON, action lists) and the
 * datastore/API openers. cmd/ipamctl.c holds the options, the {name, fn, help} command
 * table and the dispatch; each subcommand lives in cmd/ipamctl_NAME.c.
 *
 * Every ctl_* function that can fail reports on stderr ("ipamctl: ...") itself and returns
 * an exit status (0, 1, 2) or -1, as its comment says: the subcommands only pass it on.
 */
#ifndef KVNET_CMD_IPAMCTL_H
#define KVNET_CMD_IPAMCTL_H

#include "conf/conf.h"
#include "ipam/ds.h"
#include "ipam/ds_file.h"
#include "ipam/ds_kube.h"
#include "ipam/inventory.h"
#include "ipam/live.h"
#include "ipam/ipam.h"
#include "ipam/report.h"

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct json_w;
struct kcfg;
struct kube_client;

#define CTL_KUBE_TIMEOUT_MS 15000	/* API request timeout */
#define CTL_PAGE 500			/* LIST page size */
#define CTL_FILE_MAX (64u << 20)	/* bytes of a file read or a JSON output */
#define CTL_DEFAULT_NETWORK "kvnet"	/* --network default */

enum ctl_out { OUT_TABLE = 1, OUT_JSON, OUT_WIDE };

/* The process: options, configuration, datastore and API connections. */
struct ctl {
	enum ctl_out out;		   /* -o */
	const char *report_file;	   /* check -o FILE */
	const char *conf_path;		   /* -c */
	const char *ds_flag;		   /* --datastore */
	const char *state_dir_flag;	   /* --state-dir */
	const char *kubeconfig_flag;	   /* --kubeconfig */
	const char *context_flag;	   /* --context */
	const char *network;		   /* --network */
	bool network_set;		   /* --network was given (show/release: that network) */
	const char *ip;			   /* --ip */
	const char *vm;			   /* --vm NS/NAME */
	const char *handle;		   /* --handle */
	const char *from_report;	   /* --from-report */
	const char *mac;		   /* --mac */
	const char *persistence;	   /* --kubevirt-ip-persistence */
	const char *grace_flag;		   /* --vm-grace-seconds */
	unsigned block_size;		   /* --block-size (0 = pool default) */
	bool blocks, borrowed, configuration, force, partial; /* switches */
	struct conf conf;		   /* kvnet.conf with overrides */
	bool kube;			   /* datastore is kubernetes */
	char state_dir[PATH_MAX];	   /* file datastore directory */
	uint32_t vm_grace;		   /* [ipam] vm_grace_seconds or the flag */
	struct ipam_ds_file df;		   /* file datastore (when !kube) */
	bool df_open;			   /* df is open */
	struct kcfg *kc;		   /* kubeconfig (API), or NULL */
	struct kube_client *c;		   /* API client, or NULL */
	struct ipam_ds_kube dk;		   /* kubernetes datastore over c */
	struct ipam_ds ds;		   /* the datastore in use */
	struct ipam_live live;		   /* API view (live.known once loaded) */
	bool live_loaded;		   /* ctl_load_live ran */
	char api_note[256];		   /* why there is no API view */
};

/* A subcommand: ARGS are the operands after its name (flags are in x already). Returns
 * the exit status. */
struct ctl_cmd {
	const char *name;				  /* argv word */
	int (*fn)(struct ctl *x, int argc, char **argv); /* the subcommand */
	const char *help;				  /* usage line after the name */
	bool operands;					  /* takes operands (else refused) */
};

/* The subcommands (cmd/ipamctl_NAME.c). */
int ctl_show(struct ctl *x, int argc, char **argv);
int ctl_check(struct ctl *x, int argc, char **argv);
int ctl_release(struct ctl *x, int argc, char **argv);
int ctl_reserve(struct ctl *x, int argc, char **argv);
int ctl_import(struct ctl *x, int argc, char **argv);
int ctl_configure(struct ctl *x, int argc, char **argv);
int ctl_pool(struct ctl *x, int argc, char **argv);

/* ---- output (ipamctl_out.c) ---------------------------------------------------------- */

/* "ipamctl: " + the message + newline on stderr. */
void ctl_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A table: rows of cells, printed kubectl-style (upper-case header, columns padded, three
 * spaces between). */
#define TBL_COLS 10
struct ctl_tbl {
	unsigned ncols;		/* columns */
	char **cell;		/* rows * ncols strings (owned) */
	unsigned rows, cap;	/* rows used (header included) / allocated */
};

/* Append a row of t->ncols strings (NULL or "" print as "-"); out of memory exits 1. */
void ctl_tbl_row(struct ctl_tbl *t, ...);
/* Free the cells (t can be used again). */
void ctl_tbl_free(struct ctl_tbl *t);
/* Print t on stdout and free it. */
void ctl_tbl_print(struct ctl_tbl *t);

/* Print compact JSON text indented by two spaces (kubectl -o json style). 0 or -errno
 * (the text does not parse). */
int ctl_print_pretty(const char *text, size_t len);
/* Finish writer w, print it pretty and free it; 0 or 1 (failure reported). */
int ctl_emit_json(struct json_w *w);
/* Key and value, into an open object. */
void ctl_w_kstr(struct json_w *w, const char *k, const char *v);
void ctl_w_kuint(struct json_w *w, const char *k, uint64_t v);
void ctl_w_k128(struct json_w *w, const char *k, unsigned __int128 v);
/* Start w (growing, up to CTL_FILE_MAX) as {"apiVersion":"kvnet.io/v1","kind":kind. */
void ctl_json_head(struct json_w *w, const char *kind);

/* One action done or refused, for the output. */
struct ctl_act {
	char verb[16];		/* "released", "unlinked", ... or "refused", "skipped" */
	char ip[64];		/* address or "" */
	char handle[IPAM_NAME_MAX + 1]; /* handle or "" */
	char detail[IPAM_REPORT_DETAIL + 64]; /* why / what */
};

struct ctl_acts {
	struct ctl_act *v;		/* actions; owned */
	unsigned n, cap;	/* used / allocated */
	unsigned refused;	/* actions refused or failed */
};

/* Record an action (ip, handle may be NULL); verbs refused/failed/left count as refused.
 * Out of memory exits 1. */
void ctl_act_add(struct ctl_acts *a, const char *verb, const char *ip, const char *handle,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Print the actions of command cmd: -o json as an IPAMCtlResult, else one line each (and
 * its detail indented), refusals and failures on stderr. 0 or 1. */
int ctl_print_acts(struct ctl *x, const char *cmd, const struct ctl_acts *a);

/* ---- datastore and API (ipamctl_store.c) ------------------------------------------- */

/* Open the API client from --kubeconfig/--context or the configuration (once). Without
 * required, a missing kubeconfig is -ENOENT with x->api_note saying why (not reported);
 * other failures are reported, -errno. */
int ctl_open_api(struct ctl *x, bool required);
/* Open the datastore in use into x->ds; 0 or -1 (reported). */
int ctl_open_store(struct ctl *x);
/* Close everything ctl_open_* opened and free the API view. */
void ctl_close(struct ctl *x);
/* Read the whole state into st (free it even on failure); 0 or -1 (reported). */
int ctl_read_state(struct ctl *x, struct ipam_state *st);
/* Fill x->live from the API (once). 0 with live.known, 0 without (no API configured with
 * the file datastore: api_note says why), -1 on an API failure (reported). */
int ctl_load_live(struct ctl *x);

/* List the IPAMHandles' creation times into ht (kubernetes; the file datastore keeps no
 * times: ht stays empty, every handle counts as old; there the CNI treats every pod as an
 * ordinary one, so its VM allocations come from reserve/import, which are never leaks).
 * ipam_htimes_free(ht) even on failure. 0 or -1 (reported). */
int ctl_load_htimes(struct ctl *x, struct ipam_htimes *ht);

/* ---- shared by subcommands ------------------------------------------------------------ */

/* Split "NS/NAME" into ns and name; returns name, or NULL when s is not of that form or a
 * part does not fit. */
const char *ctl_slash_split(const char *s, char *ns, size_t nscap, char *name, size_t ncap);
/* Cross-check st against x->live into r (ipamctl_check.c); 0 or -1 (reported). */
int ctl_run_check(struct ctl *x, const struct ipam_state *st, struct ipam_report *r,
		  struct ipam_htimes *ht);
/* ---- L2 networks (ipamctl_l2.c) ---------------------------------------------------- */

/* The L2Networks of the datastore in use (opened) into *out (free it), *n of them; a
 * document or object that does not parse is reported as a warning and skipped. 0 or -1
 * (reported). */
int ctl_load_l2nets(struct ctl *x, struct ipam_l2net **out, unsigned *n);
/* True when address a is in a pool of L2Network net. */
bool ctl_l2_holds(const struct ipam_state *st, const char *net, const struct ip_addr *a);
/* show --network x->network: its L2Network, its pools, every allocation in them. Returns
 * the exit status (1: the network is not known). */
int ctl_show_network(struct ctl *x, const struct ipam_state *st);

/* Validate inventory v against the current state, then apply it in one update, printing
 * the result (ipamctl_import.c: reserve and import). cmd is "reserve" or "import", what
 * the prefix of problem lines (the file name, or "reserve"). Returns the exit status. */
int ctl_inventory_run(struct ctl *x, const char *cmd, const char *what, struct ipam_inv *v);

#endif
