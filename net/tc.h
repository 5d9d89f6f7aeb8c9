/* tc — the clsact qdisc and BPF classifiers (direct action) over rtnetlink.
 *
 * kvnet's L2 data plane is a few tc-BPF programs (net/bpf.h) on the ingress and egress
 * hooks of its ports. What the kernel is told:
 *
 *   qdisc    RTM_NEWQDISC  tcmsg{ifindex, parent TC_H_CLSACT, handle ffff:0}  TCA_KIND "clsact"
 *   filter   RTM_NEWTFILTER tcmsg{ifindex, parent ffff:fff2 (ingress) | ffff:fff3 (egress),
 *            handle 1, info = prio << 16 | ETH_P_ALL}  TCA_KIND "bpf",
 *            TCA_OPTIONS{TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS = ACT_DIRECT}
 *
 * A filter is attached with NLM_F_CREATE | NLM_F_REPLACE at a fixed (prio, handle): a new
 * program takes the old one's place in one step, so a port is never without a program
 * while kvnet changes it. tc_bpf_parse reads one filter message of a dump (pure; fuzzed).
 */
#ifndef KVNET_NET_TC_H
#define KVNET_NET_TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct nl_sock;
struct nl_msgv;

enum tc_hook {
	TC_HOOK_INGRESS, /* frames the interface receives */
	TC_HOOK_EGRESS,	 /* frames it sends */
};

/* Add the clsact qdisc to ifindex; one that is there already is fine. 0 or -errno. */
int tc_clsact_add(struct nl_sock *s, int ifindex, struct err *e);
/* Remove it (and every filter on it); none there is fine. 0 or -errno. */
int tc_clsact_del(struct nl_sock *s, int ifindex, struct err *e);

/* Attach program prog_fd (a SCHED_CLS program) as a direct-action BPF filter at hook,
 * priority prio (1..65535), handle 1, replacing what is there. name is what `tc filter
 * show` prints. The qdisc must exist (tc_clsact_add). 0 or -errno. */
int tc_bpf_attach(struct nl_sock *s, int ifindex, enum tc_hook hook, uint16_t prio,
		  int prog_fd, const char *name, struct err *e);
/* Detach the filter at (hook, prio); none there is fine. 0 or -errno. */
int tc_bpf_detach(struct nl_sock *s, int ifindex, enum tc_hook hook, uint16_t prio,
		  struct err *e);

struct tc_bpf_info {
	int ifindex;	    /* the interface */
	uint16_t prio;	    /* priority */
	uint32_t handle;    /* filter handle */
	char name[64];	    /* TCA_BPF_NAME, "" when none */
	uint32_t prog_id;   /* kernel program id (TCA_BPF_ID), 0 when none */
	bool direct_action; /* TCA_BPF_FLAG_ACT_DIRECT */
};

/* One RTM_NEWTFILTER message of a dump into *out. -ENOENT for a filter that is not a
 * bpf one or a message without options (the chain head), -EBADMSG (e says what) for a
 * malformed one. Pure. */
int tc_bpf_parse(const struct nl_msgv *m, struct tc_bpf_info *out, struct err *e);

/* The BPF filters at hook of ifindex, at most cap into out, *n set to how many there
 * are (more than cap: -E2BIG). 0 or -errno. */
int tc_bpf_list(struct nl_sock *s, int ifindex, enum tc_hook hook, struct tc_bpf_info *out,
		size_t cap, size_t *n, struct err *e);

#endif
