/* tc — clsact and direct-action BPF filters over rtnetlink; see tc.h. */
#include "net/tc.h"

#include "lib/err.h"
#include "net/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <string.h>

#define TC_MSG_BUF 256

static uint32_t hook_parent(enum tc_hook h)
{
	return TC_H_MAKE(TC_H_CLSACT, h == TC_HOOK_INGRESS ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

static const char *hook_name(enum tc_hook h)
{
	return h == TC_HOOK_INGRESS ? "ingress" : "egress";
}

static int qdisc_msg(struct nl_sock *s, uint16_t type, uint16_t flags, int ifindex,
		     struct err *e)
{
	uint8_t buf[TC_MSG_BUF];
	struct nl_msg m;
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
			   .tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0), .tcm_parent = TC_H_CLSACT };
	nl_msg_init(&m, buf, sizeof(buf), type, flags);
	nl_put_fam(&m, &t, sizeof(t));
	nl_put_str(&m, TCA_KIND, "clsact");
	return nl_request(s, &m, NULL, NULL, e);
}

int tc_clsact_add(struct nl_sock *s, int ifindex, struct err *e)
{
	int rc = qdisc_msg(s, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, e);
	if (rc == -EEXIST) {
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		err_prefix(e, "tc: dev %d: add clsact qdisc", ifindex);
	return rc;
}

int tc_clsact_del(struct nl_sock *s, int ifindex, struct err *e)
{
	int rc = qdisc_msg(s, RTM_DELQDISC, 0, ifindex, e);
	if (rc == -ENOENT || rc == -EINVAL) {
		/* no clsact there (the kernel says EINVAL when the root has no such qdisc) */
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		err_prefix(e, "tc: dev %d: delete clsact qdisc", ifindex);
	return rc;
}

static void filter_hdr(struct nl_msg *m, int ifindex, enum tc_hook hook, uint16_t prio)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = 1,
			   .tcm_parent = hook_parent(hook),
			   .tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL)) };
	nl_put_fam(m, &t, sizeof(t));
}

int tc_bpf_attach(struct nl_sock *s, int ifindex, enum tc_hook hook, uint16_t prio,
		  int prog_fd, const char *name, struct err *e)
{
	uint8_t buf[TC_MSG_BUF];
	struct nl_msg m;
	size_t opt;
	if (!prio)
		return err_setx(e, EINVAL, "tc: dev %d %s: priority 0 is not a fixed slot", ifindex,
				hook_name(hook));
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE);
	filter_hdr(&m, ifindex, hook, prio);
	nl_put_str(&m, TCA_KIND, "bpf");
	nl_nest_begin(&m, TCA_OPTIONS, &opt);
	nl_put_u32(&m, TCA_BPF_FD, (uint32_t)prog_fd);
	nl_put_str(&m, TCA_BPF_NAME, name);
	nl_put_u32(&m, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	nl_nest_end(&m, opt);
	int rc = nl_request(s, &m, NULL, NULL, e);
	if (rc < 0)
		err_prefix(e, "tc: dev %d %s prio %u: attach bpf %s", ifindex, hook_name(hook), prio,
			   name);
	return rc;
}

int tc_bpf_detach(struct nl_sock *s, int ifindex, enum tc_hook hook, uint16_t prio,
		  struct err *e)
{
	uint8_t buf[TC_MSG_BUF];
	struct nl_msg m;
	nl_msg_init(&m, buf, sizeof(buf), RTM_DELTFILTER, 0);
	filter_hdr(&m, ifindex, hook, prio);
	nl_put_str(&m, TCA_KIND, "bpf");
	int rc = nl_request(s, &m, NULL, NULL, e);
	if (rc == -ENOENT || rc == -EINVAL) {
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		err_prefix(e, "tc: dev %d %s prio %u: detach", ifindex, hook_name(hook), prio);
	return rc;
}

static const struct nl_pol filter_pol[TCA_MAX + 1] = {
	[TCA_KIND] = { NL_A_STR, 0 },
	[TCA_OPTIONS] = { NL_A_NESTED, 0 },
};

static const struct nl_pol bpf_pol[TCA_BPF_MAX + 1] = {
	[TCA_BPF_NAME] = { NL_A_STR, 0 },
	[TCA_BPF_ID] = { NL_A_U32, 0 },
	[TCA_BPF_FLAGS] = { NL_A_U32, 0 },
};

int tc_bpf_parse(const struct nl_msgv *m, struct tc_bpf_info *out, struct err *e)
{
	struct tcmsg t;
	struct nl_attr tb[TCA_MAX + 1], ob[TCA_BPF_MAX + 1];
	memset(out, 0, sizeof(*out));
	if (m->type != RTM_NEWTFILTER)
		return err_setx(e, EBADMSG, "tc: message type %u is not RTM_NEWTFILTER", m->type);
	int rc = nl_msg_parse(m, &t, sizeof(t), filter_pol, TCA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "tc filter"), rc;
	const char *kind = nl_attr_str(&tb[TCA_KIND]);
	if (!kind || strcmp(kind, "bpf") != 0 || !nl_attr_has(&tb[TCA_OPTIONS]))
		return -ENOENT;
	rc = nl_attr_parse(tb[TCA_OPTIONS].p, tb[TCA_OPTIONS].len, bpf_pol, TCA_BPF_MAX, ob, e);
	if (rc < 0)
		return err_prefix(e, "tc filter dev %d: options", t.tcm_ifindex), rc;
	out->ifindex = t.tcm_ifindex;
	out->prio = (uint16_t)(t.tcm_info >> 16);
	out->handle = t.tcm_handle;
	const char *name = nl_attr_str(&ob[TCA_BPF_NAME]);
	if (name) {
		if (strlen(name) >= sizeof(out->name))
			return err_setx(e, EBADMSG, "tc filter dev %d: TCA_BPF_NAME too long",
					t.tcm_ifindex);
		memcpy(out->name, name, strlen(name) + 1);
	}
	nl_attr_u32(&ob[TCA_BPF_ID], &out->prog_id);
	uint32_t flags = 0;
	nl_attr_u32(&ob[TCA_BPF_FLAGS], &flags);
	out->direct_action = flags & TCA_BPF_FLAG_ACT_DIRECT;
	return 0;
}

struct list_ctx {
	struct tc_bpf_info *out;
	size_t cap;
	size_t n;
};

static int list_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct list_ctx *c = arg;
	struct tc_bpf_info fi;
	int rc = tc_bpf_parse(m, &fi, e);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (c->n < c->cap)
		c->out[c->n] = fi;
	c->n++;
	return 0;
}

int tc_bpf_list(struct nl_sock *s, int ifindex, enum tc_hook hook, struct tc_bpf_info *out,
		size_t cap, size_t *n, struct err *e)
{
	uint8_t buf[TC_MSG_BUF];
	struct nl_msg m;
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
			   .tcm_parent = hook_parent(hook) };
	struct list_ctx c = { .out = out, .cap = cap };
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETTFILTER, 0);
	nl_put_fam(&m, &t, sizeof(t));
	int rc = nl_dump(s, &m, list_cb, &c, e);
	*n = c.n;
	if (rc < 0)
		return err_prefix(e, "tc: dev %d %s: list filters", ifindex, hook_name(hook)), rc;
	if (c.n > cap)
		return err_setx(e, E2BIG, "tc: dev %d %s: %zu filters, room for %zu", ifindex,
				hook_name(hook), c.n, cap);
	return 0;
}
