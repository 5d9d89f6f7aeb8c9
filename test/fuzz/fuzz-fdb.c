/* libFuzzer target: fdb_parse (net/fdb), the reader of the kernel's AF_BRIDGE neighbour
 * messages, over any bytes taken as one RTM_NEWNEIGH payload (ndmsg + attributes). Seeds
 * in test/fuzz/corpus/fdb/: FDB entries with an IPv4 and an IPv6 VTEP, one without a
 * destination, one of another family; the same bytes are also read by fdb_addr_parse as
 * one RTM_NEWADDR payload (ifaddrmsg + attributes; seeds addr4.bin, addr6.bin), and by
 * fdb_vxlan_parse as one RTM_NEWLINK payload (ifinfomsg + attributes with the nested
 * IFLA_LINKINFO / IFLA_INFO_DATA; seeds vxlan4.bin, vxlan6.bin). */
#include "lib/err.h"
#include "net/fdb.h"
#include "net/nl.h"

#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nl_msgv m = { .type = RTM_NEWNEIGH, .data = data, .len = size };
	struct fdb_entry f;
	struct err e = { 0 };
	char mac[18], ip[IP_STRLEN];
	if (fdb_parse(&m, &f, &e) == 0) {
		(void)fdb_mac_fmt(f.mac, mac);
		if (f.dst.family)
			(void)ip_fmt(&f.dst, ip);
	} else if (!e.msg[0]) {
		__builtin_trap(); /* every failure says why */
	}
	struct nl_msgv am = { .type = RTM_NEWADDR, .data = data, .len = size };
	struct ip_addr a;
	int ifindex;
	struct err ae = { 0 };
	if (fdb_addr_parse(&am, &ifindex, &a, &ae) == 0)
		(void)ip_fmt(&a, ip);
	else if (!ae.msg[0])
		__builtin_trap();
	struct nl_msgv lm = { .type = RTM_NEWLINK, .data = data, .len = size };
	struct fdb_vxlan v;
	struct err le = { 0 };
	if (fdb_vxlan_parse(&lm, &v, &le) == 0) {
		if (v.local.family)
			(void)ip_fmt(&v.local, ip);
		if (!v.name[0] || memchr(v.name, 0, sizeof(v.name)) == NULL)
			__builtin_trap(); /* a parsed device has a terminated name */
	} else if (!le.msg[0]) {
		__builtin_trap();
	}
	return 0;
}
