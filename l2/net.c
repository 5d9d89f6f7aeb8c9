/* l2/net — bridges, uplink veths, trunk and port programs of L2 networks; see net.h. */
#include "l2/net.h"

#include "lib/err.h"
#include "net/announce.h"
#include "net/bpf.h"
#include "net/link.h"
#include "net/netns.h"
#include "net/nl.h"
#include "net/packet.h"
#include "net/tc.h"

#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The tc priority of the trunk and uplink programs. */
#define L2_TC_PRIO 1

void l2_bridge_name(const char *id, char buf[16])
{
	snprintf(buf, 16, "kvl-%.8s", id);
}

void l2_uplink_name(const char *id, char buf[16])
{
	snprintf(buf, 16, "kvu-%.8s", id);
}

void l2_trunk_side_name(const char *id, char buf[16])
{
	snprintf(buf, 16, "kvt-%.8s", id);
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > L2_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
			return false;
	return true;
}

/* net.ipv6.conf.NAME.disable_ipv6 = 1 in the socket's namespace: kvnet's links carry no
 * address, and the node says nothing into the VLAN (no RS, no MLD, no DAD). */
static int no_ipv6(struct nl_sock *s, const char *name, struct err *e)
{
	char key[96];
	int fd = nl_netns_fd(s, e);
	if (fd < 0)
		return fd;
	snprintf(key, sizeof(key), "net.ipv6.conf.%s.disable_ipv6", name);
	int rc = netns_sysctl_write(fd, key, "1", e);
	close(fd);
	return rc;
}

/* ifindex of name, creating it with make() when it is not there. */
static int ensure(struct nl_sock *s, const char *name, int (*make)(struct nl_sock *s,
						  const void *arg, struct err *e),
		  const void *arg, struct link_info *li, struct err *e)
{
	int rc = link_get(s, name, li, e);
	if (rc == -ENODEV) {
		err_clear(e);
		if ((rc = make(s, arg, e)) < 0)
			return rc;
		rc = link_get(s, name, li, e);
	}
	return rc;
}

static int make_bridge(struct nl_sock *s, const void *arg, struct err *e)
{
	return link_add_bridge(s, arg, e);
}

static int make_veth(struct nl_sock *s, const void *arg, struct err *e)
{
	return link_add_veth(s, arg, e);
}

/* Load the program in a (assembled), attach it at (ifindex, hook), close the fd. */
static int attach_at(struct nl_sock *s, struct bpf_asm *a, const char *name, int ifindex,
		     enum tc_hook hook, uint16_t prio, struct err *e)
{
	int fd = -1, rc;
	if ((rc = bpf_prog_load_cls(a, name, &fd, e)) < 0)
		return rc;
	if ((rc = tc_clsact_add(s, ifindex, e)) == 0)
		rc = tc_bpf_attach(s, ifindex, hook, prio, fd, name, e);
	close(fd);
	return rc;
}

static int attach(struct nl_sock *s, struct bpf_asm *a, const char *name, int ifindex,
		  enum tc_hook hook, struct err *e)
{
	return attach_at(s, a, name, ifindex, hook, L2_TC_PRIO, e);
}

static int set_mtu(struct nl_sock *s, const struct link_info *li, uint32_t mtu, struct err *e)
{
	return mtu && li->mtu != mtu ? link_set_mtu(s, li->index, mtu, e) : 0;
}

/* Bridge, veth pair and uplink program of one network. *tk_index: its trunk-side veth. */
static int net_apply(struct nl_sock *s, const struct l2_net *n, const struct link_info *trunk,
		     struct bpf_asm *a, int *tk_index, struct err *e)
{
	char br[16], up[16], tk[16];
	struct link_info bi, ui, ti;
	int rc;
	uint32_t mtu = n->mtu ? n->mtu : trunk->mtu;
	l2_bridge_name(n->id, br);
	l2_uplink_name(n->id, up);
	l2_trunk_side_name(n->id, tk);
	struct link_veth v = { .name = up, .peer = tk, .peer_netns_fd = -1, .mtu = mtu };
	if ((rc = ensure(s, br, make_bridge, br, &bi, e)) < 0 ||
	    (rc = ensure(s, up, make_veth, &v, &ui, e)) < 0 || (rc = link_get(s, tk, &ti, e)) < 0)
		return rc;
	if ((rc = no_ipv6(s, br, e)) < 0 || (rc = no_ipv6(s, up, e)) < 0 ||
	    (rc = no_ipv6(s, tk, e)) < 0)
		return rc;
	if ((rc = set_mtu(s, &bi, mtu, e)) < 0 || (rc = set_mtu(s, &ui, mtu, e)) < 0 ||
	    (rc = set_mtu(s, &ti, mtu, e)) < 0)
		return rc;
	if ((rc = l2_prog_uplink(a, n->vid, trunk->index)) < 0)
		return err_setx(e, -rc, "uplink program for VLAN %u: bad arguments", n->vid);
	if ((rc = attach(s, a, "kvnet_uplink", ti.index, TC_HOOK_INGRESS, e)) < 0)
		return rc;
	if (ui.master != bi.index && (rc = link_set_master(s, ui.index, bi.index, e)) < 0)
		return rc;
	if ((rc = link_set_up(s, bi.index, true, e)) < 0 ||
	    (rc = link_set_up(s, ti.index, true, e)) < 0 ||
	    (rc = link_set_up(s, ui.index, true, e)) < 0)
		return rc;
	*tk_index = ti.index;
	return 0;
}

int l2_trunk_apply(struct nl_sock *s, const char *trunk, const struct l2_net *nets, size_t n,
		   struct err *e)
{
	struct link_info tl;
	struct l2_vlan_out out[L2_VLAN_MAX];
	size_t nout = 0;
	int untagged = 0, rc;
	if (n > L2_VLAN_MAX)
		return err_setx(e, E2BIG, "l2: trunk %s: %zu networks, at most %d", trunk, n,
				L2_VLAN_MAX);
	if ((rc = link_get(s, trunk, &tl, e)) < 0)
		return err_prefix(e, "l2: trunk %s", trunk), rc;
	struct bpf_asm *a = malloc(sizeof(*a));
	if (!a)
		return err_setx(e, ENOMEM, "l2: trunk %s: out of memory", trunk);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct l2_net *nt = &nets[i];
		int tk = 0;
		if (!id_ok(nt->id)) {
			rc = err_setx(e, EINVAL, "l2: network id '%s': want 1-%d of [a-z0-9]", nt->id,
				      L2_ID_MAX);
			break;
		}
		if (nt->vid > 4094) {
			rc = err_setx(e, EINVAL, "l2: network %s: VLAN %u is not 0-4094", nt->id,
				      nt->vid);
			break;
		}
		for (size_t j = 0; j < i && rc == 0; j++)
			if (nets[j].vid == nt->vid)
				rc = err_setx(e, EEXIST, "l2: trunk %s: networks %s and %s both VLAN %u",
					      trunk, nets[j].id, nt->id, nt->vid);
		if (rc == 0 && (rc = net_apply(s, nt, &tl, a, &tk, e)) < 0)
			err_prefix(e, "l2: network %s (VLAN %u)", nt->id, nt->vid);
		if (rc == 0 && nt->vid)
			out[nout++] = (struct l2_vlan_out){ .vid = nt->vid, .ifindex = tk };
		else if (rc == 0)
			untagged = tk;
	}
	if (rc == 0 && (rc = l2_prog_trunk(a, out, nout, untagged)) < 0)
		rc = err_setx(e, -rc, "l2: trunk %s: program: bad arguments", trunk);
	if (rc == 0 && (rc = attach(s, a, "kvnet_trunk", tl.index, TC_HOOK_INGRESS, e)) < 0)
		err_prefix(e, "l2: trunk %s", trunk);
	if (rc == 0 && !(tl.flags & 1 /* IFF_UP */) && (rc = link_set_up(s, tl.index, true, e)) < 0)
		err_prefix(e, "l2: trunk %s", trunk);
	free(a);
	return rc;
}

int l2_trunk_release(struct nl_sock *s, const char *trunk, struct err *e)
{
	struct link_info tl;
	int rc = link_get(s, trunk, &tl, e);
	if (rc == -ENODEV) {
		err_clear(e);
		return 0;
	}
	if (rc == 0)
		rc = tc_bpf_detach(s, tl.index, TC_HOOK_INGRESS, L2_TC_PRIO, e);
	return rc < 0 ? (err_prefix(e, "l2: trunk %s", trunk), rc) : 0;
}

int l2_net_remove(struct nl_sock *s, const char *id, struct err *e)
{
	char br[16], up[16];
	struct link_info li;
	l2_bridge_name(id, br);
	l2_uplink_name(id, up);
	const char *names[2] = { up, br };
	for (int i = 0; i < 2; i++) {
		int rc = link_get(s, names[i], &li, e);
		if (rc == -ENODEV) {
			err_clear(e);
			continue;
		}
		if (rc < 0 || (rc = link_del(s, li.index, e)) < 0)
			return err_prefix(e, "l2: network %s", id), rc;
	}
	return 0;
}

int l2_port_attach(struct nl_sock *s, const char *id, int ifindex, const struct l2_guard *g,
		   bool closed, struct err *e)
{
	char br[16];
	struct link_info bi;
	int rc;
	l2_bridge_name(id, br);
	if ((rc = link_get(s, br, &bi, e)) < 0)
		return err_prefix(e, "l2: network %s", id), rc;
	struct bpf_asm *a = malloc(sizeof(*a));
	if (!a)
		return err_setx(e, ENOMEM, "l2: port %d: out of memory", ifindex);
	if ((rc = l2_prog_guard(a, g)) < 0)
		rc = err_setx(e, -rc, "l2: port %d: guard: bad arguments", ifindex);
	if (rc == 0)
		rc = attach_at(s, a, "kvnet_guard", ifindex, TC_HOOK_INGRESS, L2_PRIO_GUARD, e);
	free(a);
	if (rc == 0 && closed)
		rc = l2_port_close(s, ifindex, e);
	if (rc == 0)
		rc = link_set_master(s, ifindex, bi.index, e);
	if (rc == 0)
		rc = link_set_up(s, ifindex, true, e);
	if (rc < 0)
		err_prefix(e, "l2: network %s: port %d", id, ifindex);
	return rc;
}

int l2_port_close(struct nl_sock *s, int ifindex, struct err *e)
{
	struct bpf_asm *a = malloc(sizeof(*a));
	int rc;
	if (!a)
		return err_setx(e, ENOMEM, "l2: port %d: out of memory", ifindex);
	l2_prog_gate(a);
	/* VM-bound first: from then on nothing reaches the VM, then nothing leaves it */
	rc = attach_at(s, a, "kvnet_gate", ifindex, TC_HOOK_EGRESS, L2_PRIO_GATE, e);
	if (rc == 0)
		rc = attach_at(s, a, "kvnet_gate", ifindex, TC_HOOK_INGRESS, L2_PRIO_GATE, e);
	free(a);
	return rc < 0 ? (err_prefix(e, "l2: port %d: close", ifindex), rc) : 0;
}

int l2_port_open(struct nl_sock *s, int ifindex, struct err *e)
{
	int rc = tc_bpf_detach(s, ifindex, TC_HOOK_INGRESS, L2_PRIO_GATE, e);
	if (rc == 0)
		rc = tc_bpf_detach(s, ifindex, TC_HOOK_EGRESS, L2_PRIO_GATE, e);
	return rc < 0 ? (err_prefix(e, "l2: port %d: open", ifindex), rc) : 0;
}

int l2_port_learn(struct nl_sock *s, int ifindex, const uint8_t mac[6], struct err *e)
{
	uint8_t buf[128];
	struct nl_msg m;
	char ms[18];
	struct ndmsg nd = {
		.ndm_family = AF_BRIDGE,
		.ndm_ifindex = ifindex,
		.ndm_state = NUD_REACHABLE,
		.ndm_flags = NTF_MASTER,
	};
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
	nl_put_fam(&m, &nd, sizeof(nd));
	nl_put(&m, NDA_LLADDR, mac, 6);
	int rc = nl_request(s, &m, NULL, NULL, e);
	return rc < 0 ? (err_prefix(e, "l2: port %d: fdb %s", ifindex, ann_mac_fmt(mac, ms)), rc)
		      : 0;
}

int l2_port_closed(struct nl_sock *s, int ifindex, bool *closed, struct err *e)
{
	enum tc_hook hooks[2] = { TC_HOOK_INGRESS, TC_HOOK_EGRESS };
	struct tc_bpf_info tb[8];
	*closed = false;
	for (int h = 0; h < 2; h++) {
		size_t n = 0;
		int rc = tc_bpf_list(s, ifindex, hooks[h], tb, 8, &n, e);
		if (rc < 0)
			return err_prefix(e, "l2: port %d", ifindex), rc;
		for (size_t i = 0; i < n; i++)
			*closed |= tb[i].prio == L2_PRIO_GATE;
	}
	return 0;
}

int l2_relearn(const char *id, const uint8_t mac[6], const struct ip_addr *ips, size_t n,
	       struct l2_relearn_sent *sent, struct err *e)
{
	char br[16];
	struct l2_relearn_sent none;
	int first = 0;
	if (!sent)
		sent = &none;
	memset(sent, 0, sizeof(*sent));
	l2_bridge_name(id, br);
	int ifindex = (int)if_nametoindex(br);
	if (!ifindex)
		return err_set(e, errno, "l2: network %s: bridge %s", id, br);
	for (size_t i = 0; i <= n; i++) {
		struct pkt_announce pa = { .ifindex = ifindex, .mac = mac };
		unsigned *count = &sent->rarp;
		if (i == n) {
			pa.kind = ANN_RARP;
		} else {
			pa.ip = ips[i];
			pa.kind = ips[i].family == AF_INET6 ? ANN_NA : ANN_GARP;
			count = pa.kind == ANN_NA ? &sent->na : &sent->garp;
		}
		struct err e2 = { 0 };
		int rc = pkt_announce_send(&pa, first ? &e2 : e);
		if (rc == 0)
			(*count)++;
		else if (!first)
			first = rc;
	}
	return first;
}

#define ALIAS_PREFIX "kvnet-l2 "

int l2_alias_fmt(const struct l2_port_id *p, char *buf, size_t cap)
{
	char mac[18], ip[IP_STRLEN];
	size_t ul = strlen(p->uid);
	if (!ul || ul > L2_UID_MAX || strchr(p->uid, ' ') || p->n_ips > L2_PORT_IPS)
		return -EINVAL;
	int n = snprintf(buf, cap, ALIAS_PREFIX "uid=%s mac=%s", p->uid, ann_mac_fmt(p->mac, mac));
	for (size_t i = 0; i < p->n_ips && n >= 0 && (size_t)n < cap; i++)
		n += snprintf(buf + n, cap - (size_t)n, "%s%s", i ? "," : " ip=",
			      ip_fmt(&p->ips[i], ip));
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

/* The token of s starting at *pos (up to a space or the end) into tok (cap bytes);
 * false when it does not fit. */
static bool alias_tok(const char *s, size_t *pos, char *tok, size_t cap)
{
	size_t i = *pos, n = 0;
	while (s[i] && s[i] != ' ') {
		if (n + 1 >= cap)
			return false;
		tok[n++] = s[i++];
	}
	tok[n] = 0;
	while (s[i] == ' ')
		i++;
	*pos = i;
	return true;
}

int l2_alias_parse(const char *s, struct l2_port_id *out)
{
	char tok[L2_PORT_IPS * (IP_STRLEN + 1) + 8];
	size_t pos = strlen(ALIAS_PREFIX);
	bool mac = false;
	memset(out, 0, sizeof(*out));
	if (strncmp(s, ALIAS_PREFIX, pos) != 0)
		return -ENOMSG;
	while (s[pos]) {
		if (!alias_tok(s, &pos, tok, sizeof(tok)))
			return -EINVAL;
		if (strncmp(tok, "uid=", 4) == 0 && tok[4] && strlen(tok + 4) <= L2_UID_MAX) {
			snprintf(out->uid, sizeof(out->uid), "%s", tok + 4);
		} else if (strncmp(tok, "mac=", 4) == 0 && ann_mac_parse(tok + 4, out->mac)) {
			mac = true;
		} else if (strncmp(tok, "ip=", 3) == 0 && !out->n_ips) {
			/* ADDR[,ADDR...]: p walks the list; the last address ends the walk
			 * (never p = NULL + 1) */
			for (char *p = tok + 3;;) {
				char *comma = strchr(p, ',');
				if (comma)
					*comma = 0;
				if (out->n_ips == L2_PORT_IPS || !ip_parse(p, &out->ips[out->n_ips]))
					return -EINVAL;
				out->n_ips++;
				if (!comma)
					break;
				p = comma + 1;
			}
		} else {
			return -EINVAL;
		}
	}
	return out->uid[0] && mac ? 0 : -EINVAL;
}
