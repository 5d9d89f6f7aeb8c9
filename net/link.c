/* link — rtnetlink link operations; see link.h. */
#include "net/link.h"

#include "lib/err.h"
#include "net/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Room for any request built here. */
#define LINK_MSG_BUF 512

static const struct nl_pol link_pol[IFLA_MAX + 1] = {
    [IFLA_IFNAME] = {NL_A_STR, 0},
    [IFLA_MTU] = {NL_A_U32, 0},
    [IFLA_MASTER] = {NL_A_U32, 0},
    [IFLA_LINKINFO] = {NL_A_NESTED, 0},
    [IFLA_IFALIAS] = {NL_A_STR, 0},
};

static const struct nl_pol linkinfo_pol[IFLA_INFO_MAX + 1] = {
    [IFLA_INFO_KIND] = {NL_A_STR, 0},
};

int link_parse(const struct nl_msgv *m, struct link_info *out, struct err *e)
{
	struct ifinfomsg ifi;
	struct nl_attr tb[IFLA_MAX + 1];
	memset(out, 0, sizeof(*out));
	if (m->type != RTM_NEWLINK)
		return err_setx(e, EBADMSG, "link: message type %u is not RTM_NEWLINK", m->type);
	int rc = nl_msg_parse(m, &ifi, sizeof(ifi), link_pol, IFLA_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "link"), rc;
	const char *name = nl_attr_str(&tb[IFLA_IFNAME]);
	if (!name || !*name || strlen(name) >= LINK_NAMESZ)
		return err_setx(e, EBADMSG, "link %d: missing or overlong IFLA_IFNAME",
				ifi.ifi_index);
	out->index = ifi.ifi_index;
	out->flags = ifi.ifi_flags;
	memcpy(out->name, name, strlen(name) + 1);
	nl_attr_u32(&tb[IFLA_MTU], &out->mtu);
	out->has_mac = nl_attr_bytes(&tb[IFLA_ADDRESS], out->mac, sizeof(out->mac));
	const char *alias = nl_attr_str(&tb[IFLA_IFALIAS]);
	if (alias && strlen(alias) < sizeof(out->alias))
		memcpy(out->alias, alias, strlen(alias) + 1);
	uint32_t master;
	if (nl_attr_u32(&tb[IFLA_MASTER], &master))
		out->master = (int)master;
	if (nl_attr_has(&tb[IFLA_LINKINFO])) {
		struct nl_attr li[IFLA_INFO_MAX + 1];
		rc = nl_attr_parse(tb[IFLA_LINKINFO].p, tb[IFLA_LINKINFO].len, linkinfo_pol,
				   IFLA_INFO_MAX, li, e);
		if (rc < 0)
			return err_prefix(e, "link %s: IFLA_LINKINFO", out->name), rc;
		const char *kind = nl_attr_str(&li[IFLA_INFO_KIND]);
		if (kind)
			snprintf(out->kind, sizeof(out->kind), "%s", kind);
	}
	return 0;
}

static int check_name(const char *name, struct err *e)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= LINK_NAMESZ || strchr(name, '/') || strchr(name, ' '))
		return err_setx(e, EINVAL, "link '%s': invalid name (1 to %d characters, no '/')",
				name ? name : "", LINK_NAMESZ - 1);
	return 0;
}

/* Collects the one link a GET answers with. */
struct get_ctx {
	struct link_info *out; /* where it goes */
	bool found;	       /* a link was parsed */
};

static int get_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct get_ctx *g = arg;
	int rc = link_parse(m, g->out, e);
	if (rc == 0)
		g->found = true;
	return rc;
}

int link_get(struct nl_sock *s, const char *name, struct link_info *out, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct get_ctx g = {.out = out, .found = false};
	memset(out, 0, sizeof(*out));
	int rc = check_name(name, e);
	if (rc < 0)
		return rc;
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, 0);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, name);
	nl_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	rc = nl_request(s, &m, get_cb, &g, e);
	if (rc == 0 && !g.found)
		rc = err_setx(e, ENODEV, "no reply");
	if (rc < 0)
		err_prefix(e, "link %s: get", name);
	return rc;
}

/* What link_dump's callback needs. */
struct dump_ctx {
	int (*fn)(const struct link_info *li, void *arg, struct err *e); /* the caller's */
	void *arg;							 /* its argument */
};

static int dump_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct dump_ctx *d = arg;
	struct link_info li;
	int rc = link_parse(m, &li, e);
	if (rc < 0)
		return rc;
	return d->fn(&li, d->arg, e);
}

int link_dump(struct nl_sock *s, int (*fn)(const struct link_info *li, void *arg, struct err *e),
	      void *arg, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct dump_ctx d = {.fn = fn, .arg = arg};
	nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, 0);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	int rc = nl_dump(s, &m, dump_cb, &d, e);
	if (rc < 0)
		err_prefix(e, "links: dump");
	return rc;
}

int link_index(struct nl_sock *s, const char *name, int *ifindex, struct err *e)
{
	struct link_info li;
	int rc = link_get(s, name, &li, e);
	*ifindex = rc == 0 ? li.index : 0;
	return rc;
}

int link_add_veth(struct nl_sock *s, const struct link_veth *v, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	size_t info, data, peer;
	int rc = check_name(v->name, e);
	if (rc == 0)
		rc = check_name(v->peer, e);
	if (rc < 0)
		return err_prefix(e, "veth %s", v->name ? v->name : ""), rc;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, v->name);
	if (v->mac)
		nl_put(&m, IFLA_ADDRESS, v->mac, 6);
	if (v->mtu)
		nl_put_u32(&m, IFLA_MTU, v->mtu);
	nl_nest_begin(&m, IFLA_LINKINFO, &info);
	nl_put_str(&m, IFLA_INFO_KIND, "veth");
	nl_nest_begin(&m, IFLA_INFO_DATA, &data);
	nl_nest_begin(&m, VETH_INFO_PEER, &peer);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, v->peer);
	if (v->peer_netns_fd >= 0)
		nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)v->peer_netns_fd);
	if (v->peer_mac)
		nl_put(&m, IFLA_ADDRESS, v->peer_mac, 6);
	if (v->mtu)
		nl_put_u32(&m, IFLA_MTU, v->mtu);
	nl_nest_end(&m, peer);
	nl_nest_end(&m, data);
	nl_nest_end(&m, info);
	rc = nl_request(s, &m, NULL, NULL, e);
	if (rc < 0)
		err_prefix(e, "veth %s (peer %s): create", v->name, v->peer);
	return rc;
}

int link_add_bridge(struct nl_sock *s, const char *name, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	size_t info;
	int rc = check_name(name, e);
	if (rc < 0)
		return err_prefix(e, "bridge"), rc;
	nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	nl_put_str(&m, IFLA_IFNAME, name);
	nl_nest_begin(&m, IFLA_LINKINFO, &info);
	nl_put_str(&m, IFLA_INFO_KIND, "bridge");
	nl_nest_end(&m, info);
	rc = nl_request(s, &m, NULL, NULL, e);
	if (rc < 0)
		err_prefix(e, "bridge %s: create", name);
	return rc;
}

/* Runs inside the socket's namespace: the tun driver creates the device in the
 * namespace of the thread that opens /dev/net/tun. */
static int tap_create(void *arg, struct err *e)
{
	const struct link_tap *t = arg;
	struct ifreq ifr;
	int rc = 0;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "open /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, strlen(t->name) + 1);
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL); /* IFF_TUN_EXCL is 0x8000: the sign bit of the short */
	if (t->multi_queue)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (t->vnet_hdr)
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = err_set(e, errno, "TUNSETIFF");
		goto close_fd;
	}
	if (t->owner != (uid_t)-1 && ioctl(fd, TUNSETOWNER, (unsigned long)t->owner) < 0) {
		rc = err_set(e, errno, "TUNSETOWNER %u", (unsigned)t->owner);
		goto close_fd;
	}
	if (t->group != (gid_t)-1 && ioctl(fd, TUNSETGROUP, (unsigned long)t->group) < 0) {
		rc = err_set(e, errno, "TUNSETGROUP %u", (unsigned)t->group);
		goto close_fd;
	}
	if (ioctl(fd, TUNSETPERSIST, 1UL) < 0)
		rc = err_set(e, errno, "TUNSETPERSIST");
close_fd:
	close(fd); /* a tap that was not made persistent goes away here */
	return rc;
}

int link_add_tap(struct nl_sock *s, const struct link_tap *t, struct err *e)
{
	int rc = check_name(t->name, e);
	if (rc < 0)
		return err_prefix(e, "tap"), rc;
	int nsfd = nl_netns_fd(s, e);
	if (nsfd < 0)
		return err_prefix(e, "tap %s: create", t->name), nsfd;
	rc = nl_run_in_netns(nsfd, tap_create, (void *)t, e);
	close(nsfd);
	if (rc < 0)
		err_prefix(e, "tap %s: create", t->name);
	return rc;
}

/* Start an RTM_NEWLINK that changes existing link ifindex. */
static void set_begin(struct nl_msg *m, uint8_t *buf, size_t cap, int ifindex, unsigned flags,
		      unsigned change)
{
	struct ifinfomsg ifi = {
	    .ifi_family = AF_UNSPEC,
	    .ifi_index = ifindex,
	    .ifi_flags = flags,
	    .ifi_change = change,
	};
	nl_msg_init(m, buf, cap, RTM_NEWLINK, 0);
	nl_put_fam(m, &ifi, sizeof(ifi));
}

static int set_finish(struct nl_sock *s, struct nl_msg *m, int ifindex, const char *what,
		      struct err *e)
{
	int rc = ifindex > 0 ? nl_request(s, m, NULL, NULL, e)
			     : err_setx(e, EINVAL, "no interface index");
	if (rc < 0)
		err_prefix(e, "link %d: %s", ifindex, what);
	return rc;
}

int link_rename(struct nl_sock *s, int ifindex, const char *name, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	int rc = check_name(name, e);
	if (rc < 0)
		return err_prefix(e, "link %d: rename", ifindex), rc;
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put_str(&m, IFLA_IFNAME, name);
	return set_finish(s, &m, ifindex, "rename", e);
}

int link_set_mac(struct nl_sock *s, int ifindex, const uint8_t mac[6], struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put(&m, IFLA_ADDRESS, mac, 6);
	return set_finish(s, &m, ifindex, "set MAC", e);
}

int link_set_mtu(struct nl_sock *s, int ifindex, uint32_t mtu, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put_u32(&m, IFLA_MTU, mtu);
	return set_finish(s, &m, ifindex, "set MTU", e);
}

int link_set_up(struct nl_sock *s, int ifindex, bool up, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	set_begin(&m, buf, sizeof(buf), ifindex, up ? IFF_UP : 0, IFF_UP);
	return set_finish(s, &m, ifindex, up ? "set up" : "set down", e);
}

int link_set_master(struct nl_sock *s, int ifindex, int master, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	if (master < 0)
		return err_setx(e, EINVAL, "link %d: set master: bad master index %d", ifindex,
				master);
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put_u32(&m, IFLA_MASTER, (uint32_t)master);
	return set_finish(s, &m, ifindex, master ? "set master" : "release from master", e);
}

int link_set_alias(struct nl_sock *s, int ifindex, const char *alias, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	if (strlen(alias) >= LINK_ALIASSZ)
		return err_setx(e, EINVAL, "link %d: alias longer than %d bytes", ifindex,
				LINK_ALIASSZ - 1);
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put_str(&m, IFLA_IFALIAS, alias);
	return set_finish(s, &m, ifindex, "set alias", e);
}

int link_set_netns(struct nl_sock *s, int ifindex, int nsfd, const char *name, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	if (nsfd < 0)
		return err_setx(e, EBADF, "link %d: move to namespace: no namespace fd", ifindex);
	if (name && check_name(name, e) < 0)
		return err_prefix(e, "link %d: move to namespace", ifindex), -EINVAL;
	set_begin(&m, buf, sizeof(buf), ifindex, 0, 0);
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)nsfd);
	if (name)
		nl_put_str(&m, IFLA_IFNAME, name);
	return set_finish(s, &m, ifindex, "move to namespace", e);
}

int link_del(struct nl_sock *s, int ifindex, struct err *e)
{
	uint8_t buf[LINK_MSG_BUF];
	struct nl_msg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
	nl_msg_init(&m, buf, sizeof(buf), RTM_DELLINK, 0);
	nl_put_fam(&m, &ifi, sizeof(ifi));
	return set_finish(s, &m, ifindex, "delete", e);
}
