/* libFuzzer target for net/nflog: the input as a datagram of nflog messages
 * (nflog_parse_buf) and as the payload of one packet message (nflog_parse). Every packet
 * handed out keeps its invariants: a NUL-terminated prefix, addresses of one family that
 * matches the header read, ports only for protocols that have them.
 * Seeds: real kernel datagrams (test/data/nflog/nflog-*.bin, record.py). */
#include "lib/err.h"
#include "net/nflog.h"
#include "net/nl.h"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(const struct nflog_pkt *p, void *arg)
{
	(void)arg;
	if (memchr(p->prefix, 0, sizeof(p->prefix)) == NULL)
		abort();
	if (p->src.family != p->dst.family ||
	    (p->src.family != AF_INET && p->src.family != AF_INET6))
		abort();
	if (p->has_ports && p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP &&
	    p->proto != IPPROTO_SCTP && p->proto != IPPROTO_UDPLITE)
		abort();
	if (!p->has_ports && (p->sport || p->dport))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	struct nflog_pkt p;
	(void)nflog_parse_buf(data, size, check, NULL, &e);
	struct nl_msgv m = { .type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET, .data = data,
			     .len = size };
	if (nflog_parse(&m, &p, &e) == 0)
		check(&p, NULL);
	return 0;
}
