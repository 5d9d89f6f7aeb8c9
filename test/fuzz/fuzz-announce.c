/* libFuzzer target: the announcement frame parser (net/announce) over any bytes. An
 * accepted frame must describe itself consistently; seeds are one frame of each kind. */
#include "lib/err.h"
#include "net/announce.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ann_event ev;
	struct err e;
	char buf[IP_STRLEN], mb[18];
	int rc = ann_parse(data, size, &ev, &e);
	if (rc == 0) {
		/* what the parser promises about an event */
		if (ev.kind == ANN_RARP ? ev.ip.family != 0
		    : ev.kind == ANN_GARP ? ev.ip.family != AF_INET : ev.ip.family != AF_INET6)
			__builtin_trap();
		if (ev.kind == ANN_NA && (ev.na_flags & ANN_NA_SOLICITED))
			__builtin_trap();
		if (ev.has_vlan ? ev.vlan > 4095 : ev.vlan != 0)
			__builtin_trap();
		ip_fmt(&ev.ip, buf);
		ann_mac_fmt(ev.mac, mb);
		(void)ann_kind_name(ev.kind);
	} else if ((rc != -ENOMSG && rc != -EBADMSG) || strlen(e.msg) == 0) {
		__builtin_trap();
	}
	return 0;
}
