/* libFuzzer target: the agent-to-agent datagram (agent/peermsg) over any bytes. The HMAC
 * check must refuse anything a fixed key did not sign; whatever decodes must satisfy
 * the decoder's promises, encode again (signed) to a datagram that authenticates and
 * decodes to the same fields, and go through the replay check. Seeds: signed messages
 * of the shapes the agent sends (claims, retractions, conntrack chunks) (test/fuzz/corpus/peermsg, made with that key). */
#include "agent/peermsg.h"
#include "lib/err.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[] = "kvnet-fuzz-peer-key-0123456789ab";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	int rc = peermsg_auth(data, size, KEY, 32, &e);
	if (rc != 0 && rc != -EPERM && rc != -EMSGSIZE)
		__builtin_trap();
	struct peermsg m;
	rc = peermsg_decode(data, size, &m, &e);
	if (rc != 0) {
		if ((rc != -EBADMSG && rc != -EMSGSIZE) || strlen(e.msg) == 0)
			__builtin_trap();
		return 0;
	}
	/* what the decoder promises */
	bool ct = m.type == PEERMSG_T_CT;
	if (!peermsg_node_name_ok(m.node) || m.n_node_addr < 1 || m.n_node_addr > 2 ||
	    m.n_addr > PEERMSG_ADDRS_MAX || (!ct && m.n_addr < 1) || m.seq == 0 ||
	    (m.type != PEERMSG_T_CLAIM && m.type != PEERMSG_T_RETRACT && !ct) || strlen(m.uid) > PEERMSG_UID_MAX)
		__builtin_trap();
	if (ct && (m.n_addr != 0 || !m.uid[0] || !m.vmi_uid[0] || (m.round & ~PEERMSG_CT_CUTOVER) == 0 ||
		   m.chunk >= m.chunks || m.ct_len < 1 || m.ct_len > PEERMSG_CT_MAX))
		__builtin_trap();
	for (unsigned i = 0; i < m.n_addr; i++)
		if (m.addr[i].family != AF_INET && m.addr[i].family != AF_INET6)
			__builtin_trap();
	/* round trip */
	uint8_t buf[PEERMSG_MAX];
	size_t len = 0;
	if (peermsg_encode(&m, KEY, 32, buf, sizeof(buf), &len, &e) != 0 || len > size)
		__builtin_trap();
	struct peermsg d;
	if (peermsg_auth(buf, len, KEY, 32, &e) != 0 || peermsg_decode(buf, len, &d, &e) != 0)
		__builtin_trap();
	if (strcmp(d.node, m.node) || strcmp(d.uid, m.uid) || d.seq != m.seq ||
	    d.boot != m.boot || d.ts_ns != m.ts_ns || d.n_addr != m.n_addr ||
	    d.n_node_addr != m.n_node_addr || d.type != m.type || strcmp(d.vmi_uid, m.vmi_uid) ||
	    d.round != m.round || d.chunk != m.chunk || d.chunks != m.chunks ||
	    d.ct_len != m.ct_len || memcmp(d.ct, m.ct, m.ct_len) != 0)
		__builtin_trap();
	/* a CT message never encodes to more payload than the room its fields leave */
	if (ct && m.ct_len > peermsg_ct_room(&m))
		__builtin_trap();
	for (unsigned i = 0; i < m.n_addr; i++)
		if (!ip_eq(&d.addr[i], &m.addr[i]))
			__builtin_trap();
	/* the replay window: a fresh message is a replay right after */
	struct peermsg_seen s;
	memset(&s, 0, sizeof(s));
	if (peermsg_fresh(&s, &m, m.ts_ns, 0, 1) == PEERMSG_FRESH &&
	    peermsg_fresh(&s, &m, m.ts_ns, 0, 1) != PEERMSG_REPLAY)
		__builtin_trap();
	return 0;
}
