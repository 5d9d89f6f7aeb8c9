/* libFuzzer target for flows/ctacct: arbitrary bytes as one conntrack event datagram.
 *
 * Besides "never crash": every message handed out has tuples of its family, and a
 * message with counters has both directions. */
#include "flows/ctacct.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(enum ct_event ev, const struct flow_ct *fc, void *arg)
{
	unsigned *n = arg;
	if ((unsigned)ev > CT_EV_DESTROY || (fc->ce.l3 != AF_INET && fc->ce.l3 != AF_INET6))
		abort();
	if (fc->ce.orig.src.family != fc->ce.l3 || fc->ce.reply.dst.family != fc->ce.l3)
		abort();
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned n = 0;
	int rc = flow_ct_events_parse(data, size, check, &n, NULL);
	if (rc >= 0 && (unsigned)rc != n)
		abort();
	return 0;
}
