/* peermsg — the agent-to-agent datagram (see peermsg.h). */
#include "agent/peermsg.h"

#include "lib/cursor.h"
#include "lib/err.h"

#include <bearssl.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t magic[4] = { 'K', 'V', 'P', 'M' };

bool peermsg_node_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PEERMSG_NODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool uid_ok(const char *s, size_t n)
{
	if (n == 0 || n > PEERMSG_UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void mac_of(const uint8_t *key, size_t klen, const uint8_t *buf, size_t len,
		   uint8_t out[PEERMSG_MAC])
{
	br_hmac_key_context kc;
	br_hmac_context hc;
	br_hmac_key_init(&kc, &br_sha256_vtable, key, klen);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, buf, len);
	br_hmac_out(&hc, out);
}

static bool w64(struct wcur *w, uint64_t v)
{
	return wcur_be32(w, (uint32_t)(v >> 32)) && wcur_be32(w, (uint32_t)v);
}

static bool r64(struct cur *c, uint64_t *v)
{
	uint32_t hi = 0, lo = 0;
	bool ok = cur_be32(c, &hi) && cur_be32(c, &lo);
	*v = ((uint64_t)hi << 32) | lo;
	return ok;
}

static bool w_tlv(struct wcur *w, uint8_t type, const void *v, size_t n)
{
	return n <= 255 && wcur_u8(w, type) && wcur_u8(w, (uint8_t)n) && wcur_bytes(w, v, n);
}

static bool fam_ok(const struct ip_addr *a)
{
	return a->family == AF_INET || a->family == AF_INET6;
}

/* Bytes of the CT_DATA TLVs that carry n payload bytes. */
static size_t ct_tlv_bytes(size_t n)
{
	return n + 2 * ((n + 254) / 255);
}

size_t peermsg_ct_room(const struct peermsg *m)
{
	size_t used = PEERMSG_MIN + 2 + strnlen(m->node, sizeof(m->node)) + 2 + 8;
	for (unsigned i = 0; i < m->n_node_addr && i < 2; i++)
		used += 2 + ip_len(&m->node_addr[i]);
	size_t ul = strnlen(m->uid, sizeof(m->uid)), vl = strnlen(m->vmi_uid, sizeof(m->vmi_uid));
	used += (ul ? 2 + ul : 0) + (vl ? 2 + vl : 0);
	if (used >= PEERMSG_MAX)
		return 0;
	size_t room = PEERMSG_MAX - used, n = room;
	while (n && ct_tlv_bytes(n) > room)
		n--;
	return n > PEERMSG_CT_MAX ? PEERMSG_CT_MAX : n;
}

static int check_ct(const struct peermsg *m, struct err *e)
{
	if (m->n_addr)
		return err_setx(e, EINVAL, "peer message: a conntrack chunk carries no addresses");
	if (!m->uid[0] || !m->vmi_uid[0])
		return err_setx(e, EINVAL, "peer message: a conntrack chunk needs the migration "
					   "uid and the VMI uid");
	if (!uid_ok(m->vmi_uid, strnlen(m->vmi_uid, sizeof(m->vmi_uid))))
		return err_setx(e, EINVAL, "peer message: VMI uid not 1..%d printable bytes",
				PEERMSG_UID_MAX);
	if ((m->round & ~PEERMSG_CT_CUTOVER) == 0 || m->chunk >= m->chunks)
		return err_setx(e, EINVAL, "peer message: chunk %u of %u, round %u out of range",
				m->chunk, m->chunks, m->round);
	if (m->ct_len == 0 || m->ct_len > PEERMSG_CT_MAX)
		return err_setx(e, EINVAL, "peer message: conntrack payload of %u bytes (want "
					   "1..%d)", m->ct_len, PEERMSG_CT_MAX);
	return 0;
}

/* A message type this version speaks (RETRACT has CLAIM's fields). */
static bool type_ok(uint8_t t)
{
	return t == PEERMSG_T_CLAIM || t == PEERMSG_T_CT || t == PEERMSG_T_RETRACT;
}

int peermsg_encode(const struct peermsg *m, const uint8_t *key, size_t klen, uint8_t *buf,
		   size_t cap, size_t *len, struct err *e)
{
	*len = 0;
	if (!type_ok(m->type))
		return err_setx(e, EINVAL, "peer message: type %u unknown", m->type);
	bool ct = m->type == PEERMSG_T_CT;
	if (ct && check_ct(m, e) < 0)
		return -EINVAL;
	if (!peermsg_node_name_ok(m->node))
		return err_setx(e, EINVAL, "peer message: node name \"%.64s\" not a node name",
				m->node);
	if (m->n_node_addr < 1 || m->n_node_addr > 2)
		return err_setx(e, EINVAL, "peer message: %u node addresses (want 1 or 2)",
				m->n_node_addr);
	if (!ct && (m->n_addr < 1 || m->n_addr > PEERMSG_ADDRS_MAX))
		return err_setx(e, EINVAL, "peer message: %u addresses (want 1..%d)", m->n_addr,
				PEERMSG_ADDRS_MAX);
	size_t ul = strnlen(m->uid, sizeof(m->uid));
	if (ul && !uid_ok(m->uid, ul))
		return err_setx(e, EINVAL, "peer message: uid not 1..%d printable bytes",
				PEERMSG_UID_MAX);
	if (m->seq == 0)
		return err_setx(e, EINVAL, "peer message: sequence 0");
	if (klen < PEERMSG_KEY_MIN || klen > PEERMSG_KEY_MAX)
		return err_setx(e, EINVAL, "peer message: key of %zu bytes (want %d..%d)", klen,
				PEERMSG_KEY_MIN, PEERMSG_KEY_MAX);
	struct wcur w;
	wcur_init(&w, buf, cap);
	wcur_bytes(&w, magic, sizeof(magic));
	wcur_u8(&w, PEERMSG_VERSION);
	wcur_u8(&w, m->type);
	wcur_be16(&w, 0);
	w64(&w, m->boot);
	w64(&w, m->seq);
	w64(&w, m->ts_ns);
	w_tlv(&w, PEERMSG_TLV_NODE, m->node, strlen(m->node));
	for (unsigned i = 0; i < m->n_node_addr; i++) {
		if (!fam_ok(&m->node_addr[i]))
			return err_setx(e, EINVAL, "peer message: node address %u has no family", i);
		w_tlv(&w, PEERMSG_TLV_NODE_ADDR, m->node_addr[i].b, ip_len(&m->node_addr[i]));
	}
	if (ul)
		w_tlv(&w, PEERMSG_TLV_UID, m->uid, ul);
	for (unsigned i = 0; i < m->n_addr; i++) {
		if (!fam_ok(&m->addr[i]))
			return err_setx(e, EINVAL, "peer message: address %u has no family", i);
		w_tlv(&w, PEERMSG_TLV_ADDR, m->addr[i].b, ip_len(&m->addr[i]));
	}
	if (ct) {
		w_tlv(&w, PEERMSG_TLV_VMI_UID, m->vmi_uid, strlen(m->vmi_uid));
		wcur_u8(&w, PEERMSG_TLV_CHUNK);
		wcur_u8(&w, 8);
		wcur_be32(&w, m->round);
		wcur_be16(&w, m->chunk);
		wcur_be16(&w, m->chunks);
		for (size_t off = 0; off < m->ct_len; off += 255) {
			size_t n = m->ct_len - off > 255 ? 255 : m->ct_len - off;
			w_tlv(&w, PEERMSG_TLV_CT_DATA, m->ct + off, n);
		}
	}
	uint8_t *mac = NULL;
	if (!wcur_reserve(&w, PEERMSG_MAC, &mac) || !wcur_ok(&w))
		return err_setx(e, ENOSPC, "peer message: does not fit %zu bytes", cap);
	size_t body = (size_t)(mac - buf);
	if (body + PEERMSG_MAC > PEERMSG_MAX)
		return err_setx(e, ENOSPC, "peer message: %zu bytes, over %d", body + PEERMSG_MAC,
				PEERMSG_MAX);
	mac_of(key, klen, buf, body, mac);
	*len = body + PEERMSG_MAC;
	return 0;
}

int peermsg_auth(const uint8_t *buf, size_t len, const uint8_t *key, size_t klen,
		 struct err *e)
{
	if (len < PEERMSG_MIN || len > PEERMSG_MAX)
		return err_setx(e, EMSGSIZE, "peer message: %zu bytes (want %d..%d)", len,
				PEERMSG_MIN, PEERMSG_MAX);
	uint8_t want[PEERMSG_MAC];
	mac_of(key, klen, buf, len - PEERMSG_MAC, want);
	const uint8_t *have = buf + len - PEERMSG_MAC;
	unsigned diff = 0; /* constant time: every byte is looked at */
	for (unsigned i = 0; i < PEERMSG_MAC; i++)
		diff |= (unsigned)(want[i] ^ have[i]);
	if (diff)
		return err_setx(e, EPERM, "peer message: HMAC does not match (wrong key or "
					  "changed bytes)");
	return 0;
}

static int bad(struct err *e, const char *what)
{
	return err_setx(e, EBADMSG, "peer message: %s", what);
}

static bool read_ip(struct cur *v, uint8_t n, struct ip_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (n != 4 && n != 16)
		return false;
	out->family = n == 4 ? AF_INET : AF_INET6;
	return cur_copy(v, out->b, n);
}

int peermsg_decode(const uint8_t *buf, size_t len, struct peermsg *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	if (len < PEERMSG_MIN || len > PEERMSG_MAX)
		return err_setx(e, EMSGSIZE, "peer message: %zu bytes (want %d..%d)", len,
				PEERMSG_MIN, PEERMSG_MAX);
	struct cur c;
	cur_init(&c, buf, len - PEERMSG_MAC);
	uint8_t mg[4] = { 0 }, ver = 0;
	uint16_t rsv = 1;
	cur_copy(&c, mg, sizeof(mg));
	cur_u8(&c, &ver);
	cur_u8(&c, &m->type);
	cur_be16(&c, &rsv);
	r64(&c, &m->boot);
	r64(&c, &m->seq);
	r64(&c, &m->ts_ns);
	if (!cur_ok(&c))
		return bad(e, "header truncated");
	if (memcmp(mg, magic, sizeof(magic)) != 0)
		return bad(e, "bad magic");
	if (ver != PEERMSG_VERSION)
		return err_setx(e, EBADMSG, "peer message: version %u (want %d)", ver,
				PEERMSG_VERSION);
	if (!type_ok(m->type))
		return err_setx(e, EBADMSG, "peer message: type %u unknown", m->type);
	bool ct = m->type == PEERMSG_T_CT;
	if (rsv != 0)
		return bad(e, "reserved bytes not zero");
	if (m->seq == 0)
		return bad(e, "sequence 0");
	bool have_node = false, have_uid = false, have_vmi = false, have_chunk = false;
	while (cur_left(&c) > 0) {
		uint8_t t = 0, n = 0;
		struct cur v;
		if (!cur_u8(&c, &t) || !cur_u8(&c, &n) || !cur_sub(&c, n, &v))
			return bad(e, "TLV runs past the end");
		switch (t) {
		case PEERMSG_TLV_NODE:
			if (have_node)
				return bad(e, "node given twice");
			if (n == 0 || n > PEERMSG_NODE_MAX)
				return bad(e, "node name length out of range");
			cur_copy(&v, m->node, n);
			m->node[n] = '\0';
			if (!peermsg_node_name_ok(m->node))
				return bad(e, "node name has bytes outside [a-z0-9.-]");
			have_node = true;
			break;
		case PEERMSG_TLV_NODE_ADDR:
			if (m->n_node_addr == 2)
				return bad(e, "more than two node addresses");
			if (!read_ip(&v, n, &m->node_addr[m->n_node_addr]))
				return bad(e, "node address not 4 or 16 bytes");
			m->n_node_addr++;
			break;
		case PEERMSG_TLV_UID: {
			if (have_uid)
				return bad(e, "uid given twice");
			const uint8_t *p = NULL;
			if (!cur_ptr(&v, n, &p) || !uid_ok((const char *)p, n))
				return bad(e, "uid not 1..64 printable bytes");
			memcpy(m->uid, p, n);
			m->uid[n] = '\0';
			have_uid = true;
			break;
		}
		case PEERMSG_TLV_ADDR:
			if (ct)
				return bad(e, "an address in a conntrack chunk");
			if (m->n_addr == PEERMSG_ADDRS_MAX)
				return bad(e, "too many addresses");
			if (!read_ip(&v, n, &m->addr[m->n_addr]))
				return bad(e, "address not 4 or 16 bytes");
			m->n_addr++;
			break;
		case PEERMSG_TLV_VMI_UID: {
			if (!ct)
				return bad(e, "a VMI uid in a claim");
			if (have_vmi)
				return bad(e, "VMI uid given twice");
			const uint8_t *p = NULL;
			if (!cur_ptr(&v, n, &p) || !uid_ok((const char *)p, n))
				return bad(e, "VMI uid not 1..64 printable bytes");
			memcpy(m->vmi_uid, p, n);
			m->vmi_uid[n] = '\0';
			have_vmi = true;
			break;
		}
		case PEERMSG_TLV_CHUNK:
			if (!ct)
				return bad(e, "a chunk header in a claim");
			if (have_chunk)
				return bad(e, "chunk header given twice");
			if (n != 8 || !cur_be32(&v, &m->round) || !cur_be16(&v, &m->chunk) ||
			    !cur_be16(&v, &m->chunks))
				return bad(e, "chunk header not 8 bytes");
			if ((m->round & ~PEERMSG_CT_CUTOVER) == 0 || m->chunk >= m->chunks)
				return bad(e, "chunk index, count or round out of range");
			have_chunk = true;
			break;
		case PEERMSG_TLV_CT_DATA:
			if (!ct)
				return bad(e, "conntrack data in a claim");
			if (n == 0 || (size_t)m->ct_len + n > PEERMSG_CT_MAX)
				return bad(e, "conntrack data empty or over its bound");
			cur_copy(&v, m->ct + m->ct_len, n);
			m->ct_len = (uint16_t)(m->ct_len + n);
			break;
		default:
			break; /* a newer sender's field: authenticated, skipped */
		}
	}
	if (!have_node)
		return bad(e, "no node");
	if (!m->n_node_addr)
		return bad(e, "no node address");
	if (ct) {
		if (!have_uid || !have_vmi || !have_chunk || !m->ct_len)
			return bad(e, "conntrack chunk without migration uid, VMI uid, chunk "
				      "header or data");
		return 0;
	}
	if (!m->n_addr)
		return bad(e, "no address");
	return 0;
}

enum peermsg_fresh peermsg_fresh(struct peermsg_seen *s, const struct peermsg *m,
				 uint64_t now_ns, uint64_t start_ns, uint64_t window_ns)
{
	if (m->ts_ns < start_ns || m->ts_ns + window_ns < now_ns || m->ts_ns > now_ns + window_ns)
		return PEERMSG_STALE;
	if (m->seq == 0)
		return PEERMSG_REPLAY;
	if (!s->used || m->boot > s->boot) {
		s->used = true;
		s->boot = m->boot;
		s->top = m->seq;
		s->bits = 1;
		return PEERMSG_FRESH;
	}
	if (m->boot < s->boot)
		return PEERMSG_REPLAY;
	if (m->seq > s->top) {
		uint64_t d = m->seq - s->top;
		s->bits = d >= 64 ? 1 : (s->bits << d) | 1;
		s->top = m->seq;
		return PEERMSG_FRESH;
	}
	uint64_t d = s->top - m->seq;
	if (d >= 64 || (s->bits >> d) & 1u)
		return PEERMSG_REPLAY;
	s->bits |= (uint64_t)1 << d;
	return PEERMSG_FRESH;
}

const char *peermsg_fresh_name(enum peermsg_fresh f)
{
	switch (f) {
	case PEERMSG_FRESH:
		return "fresh";
	case PEERMSG_STALE:
		return "stale";
	case PEERMSG_REPLAY:
		return "replay";
	}
	return "?";
}
