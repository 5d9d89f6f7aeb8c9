/* polstate — the NetworkPolicy table as last programmed, kept in memory per endpoint,
 * and the batch of just what changed (pure: no kernel, no clock).
 *
 * For every endpoint (keyed by its host interface) the state holds its compiled rules
 * (one endpoint of a pol_ruleset) and the peer sets its chains use. A change is staged
 * first: pst_stage() compiles the endpoints whose rules may have changed (and only
 * those), pst_stage_remove() drops one. pst_plan() builds the table fragment of the
 * staged endpoints as they will be and as they were, and plans the difference with
 * pnft_diff(): chains replaced only when their rules changed (flush + add), map
 * elements added or removed, a peer set added when no other endpoint programmed it
 * yet and deleted when no endpoint uses it any more. Sent as one batch; the kernel took
 * it: pst_commit() (staged becomes programmed); it did not: pst_abort().
 *
 * pst_table() is the whole table as the state would have it after the staged changes
 * (the base chains and every endpoint): the desired side of a full comparison with the
 * table read back from the kernel (on start, adoption, the periodic resync, after an
 * error). Either way the table in the kernel is what pnft_build() of every endpoint's
 * rules would make from scratch. */
#ifndef KVNET_AGENT_POLSTATE_H
#define KVNET_AGENT_POLSTATE_H

#include "agent/polnft.h"
#include "policy/policy.h"

#include <stdbool.h>

struct err;
struct pst;

/* An empty state building tables with options o (copied), or NULL without memory. */
struct pst *pst_new(const struct pnft_opts *o);
void pst_free(struct pst *s);

/* Stage endpoint in (ns, name, ifname: all set) compiled from w: on pst_commit() its
 * rules replace what the state held for in->ifname. 0, -ENOENT (the pod is not in w:
 * nothing staged), -EINVAL (interface name too long), -ENOMEM with e. */
int pst_stage(struct pst *s, const struct pol_world *w, const struct pol_ep_in *in,
	      struct err *e);
/* Stage the removal of the endpoint on ifname (no-op when the state has none). 0 or
 * -ENOMEM. */
int pst_stage_remove(struct pst *s, const char *ifname);
/* Staged changes waiting for pst_plan / pst_commit. */
unsigned pst_staged(const struct pst *s);

/* Plan the batch of the staged changes against the programmed state (empty when they
 * change nothing). The plan's ops point into *keep, which the caller frees with
 * pnft_table_free() after the plan. 0, -ENOMEM / -EINVAL with e. */
int pst_plan(struct pst *s, struct pnft_plan *plan, struct pnft_table *keep,
	     struct err *e);
/* The whole table after the staged changes (every endpoint). 0, -ENOMEM / -EINVAL
 * with e; out is freed with pnft_table_free(). */
int pst_table(struct pst *s, struct pnft_table *out, struct err *e);
/* The staged changes are in the kernel: they become the programmed state. */
void pst_commit(struct pst *s);
/* Forget the staged changes (the programmed state stays as it was). */
void pst_abort(struct pst *s);
/* Forget everything (programmed and staged): the next full comparison rebuilds. */
void pst_clear(struct pst *s);

/* Endpoints programmed, and whether ifname is one of them. */
unsigned pst_count(const struct pst *s);
bool pst_has(const struct pst *s, const char *ifname);
/* The programmed endpoint i (0 <= i < pst_count) as compiled: its ns/name/ifname, its
 * rules per direction (for the deny-counter labels and for tests). */
const struct pol_cep *pst_at(const struct pst *s, unsigned i);
/* The programmed endpoint on ifname, or NULL. */
const struct pol_cep *pst_find(const struct pst *s, const char *ifname);
/* Rules and peer sets of the programmed table (base chains included), as of the last
 * pst_commit() after pst_table() or pst_plan(). */
unsigned pst_rules(const struct pst *s);
unsigned pst_sets(const struct pst *s);

#endif
