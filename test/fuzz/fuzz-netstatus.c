/* libFuzzer target: the Multus network-status reader (kube_net_status_find, kube/types.h)
 * over any bytes, looked up by a MAC and by addresses. Seeds: test/fuzz/corpus/netstatus. */
#include "kube/types.h"
#include "lib/err.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x02, 0x00, 0xc6, 0x12, 0x64, 0x0a };
	struct ip_addr ips[2];
	struct kube_net_attach a;
	struct err e;
	if (!ip_parse("198.18.100.10", &ips[0]) || !ip_parse("2001:db8:100::a", &ips[1]))
		__builtin_trap();
	for (int k = 0; k < 2; k++) {
		int rc = kube_net_status_find((const char *)data, size, mac, ips, k ? 2 : 0, &a, &e);
		if (rc == -EINVAL && !memchr(e.msg, 0, sizeof(e.msg)))
			__builtin_trap();
		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			__builtin_trap();
		if (rc == 0 && (!memchr(a.name, 0, sizeof(a.name)) || a.n_ips > KUBE_NET_IPS_MAX ||
				!memchr(a.iface, 0, sizeof(a.iface))))
			__builtin_trap();
	}
	return 0;
}
