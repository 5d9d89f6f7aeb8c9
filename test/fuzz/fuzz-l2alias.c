/* libFuzzer target: the L2 port alias parser (l2_alias_parse, l2/net.h) over any bytes,
 * "kvnet-l2 uid=UID mac=MAC [ip=ADDR[,ADDR...]]", and the round trip of what it accepts
 * through l2_alias_fmt. Seeds: test/fuzz/corpus/l2alias. */
#include "l2/net.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	struct l2_port_id id, back;
	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = 0; /* an alias is a NUL-terminated IFLA_IFALIAS string */
	int rc = l2_alias_parse(s, &id);
	if (rc != 0 && rc != -ENOMSG && rc != -EINVAL)
		__builtin_trap();
	if (rc < 0)
		return 0;
	if (!id.uid[0] || strlen(id.uid) > L2_UID_MAX || id.n_ips > L2_PORT_IPS)
		__builtin_trap();
	char buf[512];
	int n = l2_alias_fmt(&id, buf, sizeof(buf));
	if (n < 0)
		return 0; /* e.g. a uid with a character the writer refuses */
	/* what the writer makes, the parser reads back as the same port */
	if (l2_alias_parse(buf, &back) != 0 || strcmp(back.uid, id.uid) != 0 ||
	    memcmp(back.mac, id.mac, 6) != 0 || back.n_ips != id.n_ips)
		__builtin_trap();
	for (size_t i = 0; i < id.n_ips; i++)
		if (!ip_eq(&back.ips[i], &id.ips[i]))
			__builtin_trap();
	return 0;
}
