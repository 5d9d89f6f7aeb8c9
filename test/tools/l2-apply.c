/* l2-apply — drive l2/net from the command line, so the L2 path tests
 * (test/integration/l2_path.py) build the data plane with kvnet's own code and check it
 * with tools nobody here wrote.
 *
 *   l2-apply NSPATH trunk TRUNK [ID:VID[:MTU]...]     l2_trunk_apply
 *   l2-apply NSPATH remove ID                         l2_net_remove
 *   l2-apply NSPATH port ID IFNAME MAC [IP...]        l2_port_attach
 *   l2-apply NSPATH filters IFNAME ingress|egress     tc_bpf_list: "prio handle id name da"
 *   l2-apply NSPATH close IFNAME | open IFNAME        l2_port_close / l2_port_open
 *   l2-apply NSPATH relearn ID MAC [IP...]            l2_relearn: "garp N na N rarp N"
 *
 * NSPATH is the namespace to act in (/run/netns/X). Failures print the error and exit 1;
 * usage errors exit 2.
 */
#include "l2/net.h"
#include "lib/err.h"
#include "net/link.h"
#include "net/nl.h"
#include "net/netns.h"
#include "net/tc.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: l2-apply NSPATH trunk TRUNK [ID:VID[:MTU]...] | remove ID |\n"
			"       port ID IFNAME MAC [IP...] | filters IFNAME ingress|egress |\n"
			"       close IFNAME | open IFNAME | relearn ID MAC [IP...]\n");
	return 2;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return false;
		mac[i] = (uint8_t)v[i];
	}
	return true;
}

static int trunk(struct nl_sock *s, int argc, char **argv, struct err *e)
{
	struct l2_net nets[L2_VLAN_MAX];
	size_t n = 0;
	for (int i = 1; i < argc; i++) {
		if (n == L2_VLAN_MAX)
			return usage();
		unsigned vid = 0, mtu = 0;
		char id[16];
		if (sscanf(argv[i], "%15[a-z0-9]:%u:%u", id, &vid, &mtu) < 2)
			return usage();
		snprintf(nets[n].id, sizeof(nets[n].id), "%s", id);
		nets[n].vid = (uint16_t)vid;
		nets[n].mtu = mtu;
		n++;
	}
	return l2_trunk_apply(s, argv[0], nets, n, e) < 0 ? 1 : 0;
}

static int port(struct nl_sock *s, int argc, char **argv, struct err *e)
{
	struct l2_guard g = { .n_ips = 0 };
	int ifindex;
	if (argc < 3 || !parse_mac(argv[2], g.mac))
		return usage();
	for (int i = 3; i < argc; i++) {
		if (g.n_ips == L2_PORT_IPS || !ip_parse(argv[i], &g.ips[g.n_ips]))
			return usage();
		g.n_ips++;
	}
	if (link_index(s, argv[1], &ifindex, e) < 0)
		return 1;
	return l2_port_attach(s, argv[0], ifindex, &g, false, e) < 0 ? 1 : 0;
}

static int filters(struct nl_sock *s, int argc, char **argv, struct err *e)
{
	struct tc_bpf_info f[16];
	size_t n;
	int ifindex;
	if (argc != 2 || (strcmp(argv[1], "ingress") && strcmp(argv[1], "egress")))
		return usage();
	if (link_index(s, argv[0], &ifindex, e) < 0 ||
	    tc_bpf_list(s, ifindex, argv[1][0] == 'i' ? TC_HOOK_INGRESS : TC_HOOK_EGRESS, f, 16, &n,
			e) < 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		printf("%u %u %u %s %s\n", f[i].prio, f[i].handle, f[i].prog_id, f[i].name,
		       f[i].direct_action ? "da" : "-");
	return 0;
}

static int gate(struct nl_sock *s, bool close_it, const char *ifname, struct err *e)
{
	int ifindex;
	if (link_index(s, ifname, &ifindex, e) < 0)
		return 1;
	return (close_it ? l2_port_close(s, ifindex, e) : l2_port_open(s, ifindex, e)) < 0;
}

/* relearn runs in the namespace's thread: l2_relearn sends in the caller's namespace */
static int relearn(const char *nspath, int argc, char **argv, struct err *e)
{
	uint8_t mac[6];
	struct ip_addr ips[L2_PORT_IPS];
	size_t n = 0;
	if (argc < 2 || !parse_mac(argv[1], mac))
		return usage();
	for (int i = 2; i < argc; i++) {
		if (n == L2_PORT_IPS || !ip_parse(argv[i], &ips[n]))
			return usage();
		n++;
	}
	struct netns_saved saved;
	if (netns_enter_path(&saved, nspath, e) < 0)
		return 1;
	struct l2_relearn_sent sent;
	int rc = l2_relearn(argv[0], mac, ips, n, &sent, e);
	printf("garp %u na %u rarp %u\n", sent.garp, sent.na, sent.rarp);
	netns_return(&saved, NULL);
	return rc < 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct err e = { 0 };
	struct nl_sock *s;
	if (nl_open_in_netns(&s, NETLINK_ROUTE, argv[1], &e) < 0) {
		fprintf(stderr, "l2-apply: %s\n", e.msg);
		return 1;
	}
	int rc;
	const char *cmd = argv[2];
	if (strcmp(cmd, "trunk") == 0 && argc >= 4)
		rc = trunk(s, argc - 3, argv + 3, &e);
	else if (strcmp(cmd, "remove") == 0 && argc == 4)
		rc = l2_net_remove(s, argv[3], &e) < 0 ? 1 : 0;
	else if (strcmp(cmd, "port") == 0)
		rc = port(s, argc - 3, argv + 3, &e);
	else if (strcmp(cmd, "filters") == 0)
		rc = filters(s, argc - 3, argv + 3, &e);
	else if ((strcmp(cmd, "close") == 0 || strcmp(cmd, "open") == 0) && argc == 4)
		rc = gate(s, cmd[0] == 'c', argv[3], &e);
	else if (strcmp(cmd, "relearn") == 0)
		rc = relearn(argv[1], argc - 3, argv + 3, &e);
	else
		rc = usage();
	if (rc == 1)
		fprintf(stderr, "l2-apply: %s\n", e.msg);
	nl_close(s);
	return rc;
}
