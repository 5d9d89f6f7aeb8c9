/* link — rtnetlink link operations: veth pairs (peer in another namespace), bridges,
 * taps, rename / MAC / MTU / up-down / master / delete, and lookup by name.
 *
 * Every operation acts in the network namespace of the socket it is given (open it
 * with nl_open_in_netns() to act elsewhere) and returns 0 or -errno with e reading
 * "link NAME-or-INDEX: what: why" (the kernel's extended-ack text when it gave one).
 *
 * Creating a veth pair whose peer lands, named, in another namespace, in one request:
 *
 *   RTM_NEWLINK (NLM_F_CREATE | NLM_F_EXCL)
 *   +-- ifinfomsg {}
 *   +-- IFLA_IFNAME "kv0123..."  [IFLA_ADDRESS mac] [IFLA_MTU n]
 *   +-- IFLA_LINKINFO (nested)
 *       +-- IFLA_INFO_KIND "veth"
 *       +-- IFLA_INFO_DATA (nested)
 *           +-- VETH_INFO_PEER (nested; its payload starts with an ifinfomsg)
 *               +-- ifinfomsg {}
 *               +-- IFLA_IFNAME "eth0"  IFLA_NET_NS_FD fd  [IFLA_ADDRESS] [IFLA_MTU]
 */
#ifndef KVNET_NET_LINK_H
#define KVNET_NET_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct err;
struct nl_sock;
struct nl_msgv;

/* Longest interface name plus its NUL (IFNAMSIZ). */
#define LINK_NAMESZ 16

#define LINK_ALIASSZ 128 /* longest interface alias kept (with its NUL) */

/* What a link dump or get says about one link (the parts kvnet uses). */
struct link_info {
	int index;		/* ifindex */
	char name[LINK_NAMESZ]; /* IFLA_IFNAME */
	unsigned flags;		/* IFF_UP, IFF_LOWER_UP ... (ifi_flags) */
	uint32_t mtu;		/* IFLA_MTU; 0 when absent */
	uint8_t mac[6];		/* IFLA_ADDRESS when it is 6 bytes */
	bool has_mac;		/* mac is valid */
	int master;		/* IFLA_MASTER ifindex; 0 = none */
	char kind[LINK_NAMESZ]; /* IFLA_INFO_KIND ("veth", "bridge", "tun"); "" = none */
	char alias[LINK_ALIASSZ]; /* IFLA_IFALIAS; "" = none or longer than fits */
};

/* Parse an RTM_NEWLINK message (pure; fuzzed). Returns 0, or -EBADMSG with e. */
int link_parse(const struct nl_msgv *m, struct link_info *out, struct err *e);

/* Look up a link by name. Absent: -ENODEV. */
int link_get(struct nl_sock *s, const char *name, struct link_info *out, struct err *e);

/* Dump every link in the socket's namespace and call fn for each (fn returns 0, or
 * -errno with e filled to stop). -EINTR when links changed while the dump ran
 * (NLM_F_DUMP_INTR): what fn saw is inconsistent, dump again. */
int link_dump(struct nl_sock *s, int (*fn)(const struct link_info *li, void *arg, struct err *e),
	      void *arg, struct err *e);

/* The ifindex of link `name`. Absent: -ENODEV. */
int link_index(struct nl_sock *s, const char *name, int *ifindex, struct err *e);

/* A veth pair to create. */
struct link_veth {
	const char *name;	 /* this end, created in the socket's namespace */
	const char *peer;	 /* the other end's name (in its namespace) */
	int peer_netns_fd;	 /* namespace for the peer (open fd); -1 = the socket's */
	const uint8_t *mac;	 /* this end's MAC (6 bytes) or NULL for a random one */
	const uint8_t *peer_mac; /* the peer's MAC or NULL */
	uint32_t mtu;		 /* both ends; 0 = the kernel's default */
};

/* Create a veth pair in one request; the peer is placed and named in its namespace by
 * the kernel (IFLA_NET_NS_FD). A name already taken (on either side): -EEXIST. */
int link_add_veth(struct nl_sock *s, const struct link_veth *v, struct err *e);

/* Create a bridge named `name` (down, no ports). */
int link_add_bridge(struct nl_sock *s, const char *name, struct err *e);

/* A tap to create. */
struct link_tap {
	const char *name; /* interface name */
	uid_t owner;	  /* user allowed to attach; (uid_t)-1 = none */
	gid_t group;	  /* group allowed to attach; (gid_t)-1 = none */
	bool multi_queue; /* IFF_MULTI_QUEUE */
	bool vnet_hdr;	  /* IFF_VNET_HDR */
};

/* Create a persistent tap (IFF_TAP | IFF_NO_PI) in the socket's namespace. The kernel
 * has no rtnetlink create for tun/tap, so this opens /dev/net/tun, TUNSETIFF,
 * TUNSETOWNER / TUNSETGROUP, TUNSETPERSIST, on a thread that entered the socket's
 * namespace, and closes the fd again: the tap stays until link_del(). A tap of that
 * name already there is -EBUSY (IFF_TUN_EXCL), another kind of link -EINVAL. */
int link_add_tap(struct nl_sock *s, const struct link_tap *t, struct err *e);

/* Rename link ifindex to name (kernels before 6.x refuse while it is up: -EBUSY). */
int link_rename(struct nl_sock *s, int ifindex, const char *name, struct err *e);

/* Set the link's MAC address (6 bytes). */
int link_set_mac(struct nl_sock *s, int ifindex, const uint8_t mac[6], struct err *e);

/* Set the link's MTU. */
int link_set_mtu(struct nl_sock *s, int ifindex, uint32_t mtu, struct err *e);

/* Set the link administratively up (true) or down (false). */
int link_set_up(struct nl_sock *s, int ifindex, bool up, struct err *e);

/* Enslave the link to master (a bridge's ifindex), or release it with master 0. */
int link_set_master(struct nl_sock *s, int ifindex, int master, struct err *e);

/* Set the interface alias (IFLA_IFALIAS, what `ip link show` prints as "alias"); at most
 * LINK_ALIASSZ - 1 bytes (else -EINVAL). 0 or -errno. */
int link_set_alias(struct nl_sock *s, int ifindex, const char *alias, struct err *e);

/* Move the link into the network namespace nsfd (an open fd), renaming it there to
 * name unless name is NULL. A name taken there is -EEXIST, but the kernel has then
 * already moved the link, under its old name (seen on 6.18): the caller cleans up there. */
int link_set_netns(struct nl_sock *s, int ifindex, int nsfd, const char *name, struct err *e);

/* Delete the link (a veth takes its peer with it). Absent: -ENODEV. */
int link_del(struct nl_sock *s, int ifindex, struct err *e);

#endif
