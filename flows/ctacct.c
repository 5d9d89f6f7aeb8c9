/* ctacct — conntrack messages with their counters (flows/ctacct.h). */
#include "flows/ctacct.h"

#include "lib/cursor.h"
#include "lib/err.h"
#include "net/nl.h"

#include <endian.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <string.h>

#define CT_MSG(t) ((uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | (t)))
#define NFGEN_LEN 4 /* struct nfgenmsg */

static const struct nl_pol top_pol[CTA_MAX + 1] = {
	[CTA_COUNTERS_ORIG] = { NL_A_NESTED, 0 },
	[CTA_COUNTERS_REPLY] = { NL_A_NESTED, 0 },
	[CTA_ID] = { NL_A_U32, 4 },
};

static const struct nl_pol cnt_pol[CTA_COUNTERS_MAX + 1] = {
	[CTA_COUNTERS_PACKETS] = { NL_A_U64, 8 },
	[CTA_COUNTERS_BYTES] = { NL_A_U64, 8 },
};

static bool be64_at(const struct nl_attr *a, uint64_t *v)
{
	uint64_t raw;
	if (!nl_attr_bytes(a, &raw, sizeof(raw)))
		return false;
	*v = be64toh(raw);
	return true;
}

/* One counters nest into bytes / pkts. */
static int counters(const struct nl_attr *nest, uint64_t *bytes, uint64_t *pkts, const char *dir,
		    struct err *e)
{
	struct nl_attr tb[CTA_COUNTERS_MAX + 1];
	int rc = nl_attr_parse(nest->p, nest->len, cnt_pol, CTA_COUNTERS_MAX, tb, e);
	if (rc < 0)
		return err_prefix(e, "conntrack counters %s", dir), rc;
	if (!be64_at(&tb[CTA_COUNTERS_BYTES], bytes) || !be64_at(&tb[CTA_COUNTERS_PACKETS], pkts))
		return err_setx(e, EBADMSG, "conntrack counters %s: bytes or packets missing",
				dir);
	return 0;
}

int flow_ct_parse(const struct nl_msgv *m, struct flow_ct *out, struct err *e)
{
	struct nl_attr tb[CTA_MAX + 1];
	memset(out, 0, sizeof(*out));
	int rc = ct_parse(m, &out->ce, e);
	if (rc < 0)
		return rc;
	rc = nl_msg_parse(m, NULL, NFGEN_LEN, top_pol, CTA_MAX, tb, e);
	if (rc < 0)
		return rc;
	uint32_t id;
	if (nl_attr_bytes(&tb[CTA_ID], &id, sizeof(id))) {
		out->has_id = true;
		out->id = be32toh(id);
	}
	bool o = nl_attr_has(&tb[CTA_COUNTERS_ORIG]), r = nl_attr_has(&tb[CTA_COUNTERS_REPLY]);
	if (o != r)
		return err_setx(e, EBADMSG, "conntrack message: counters of one direction only");
	if (o) {
		rc = counters(&tb[CTA_COUNTERS_ORIG], &out->bytes[0], &out->pkts[0], "orig", e);
		if (rc < 0)
			return rc;
		rc = counters(&tb[CTA_COUNTERS_REPLY], &out->bytes[1], &out->pkts[1], "reply", e);
		if (rc < 0)
			return rc;
		out->has_acct = true;
	}
	return 0;
}

int flow_ct_events_parse(const void *buf, size_t len, flow_ct_cb cb, void *arg, struct err *e)
{
	struct cur c;
	int count = 0;
	cur_init(&c, buf, len);
	while (cur_left(&c) >= 16) {
		uint32_t mlen, seq, pid;
		uint16_t type, flags;
		size_t start = c.off;
		cur_h32(&c, &mlen);
		cur_h16(&c, &type);
		cur_h16(&c, &flags);
		cur_h32(&c, &seq);
		cur_h32(&c, &pid);
		struct cur body;
		if (mlen < 16 || !cur_sub(&c, mlen - 16, &body))
			return err_setx(e, EBADMSG, "conntrack events: message at %zu: length %u",
					start, mlen);
		cur_align(&c, 4);
		struct nl_msgv m = { .type = type, .flags = flags, .seq = seq, .pid = pid,
				     .data = body.p + body.off, .len = cur_left(&body) };
		struct flow_ct fc;
		int rc = flow_ct_parse(&m, &fc, e);
		if (rc == -ENOMSG)
			continue;
		if (rc < 0)
			return err_prefix(e, "conntrack events: message at %zu", start), rc;
		enum ct_event ev = type == CT_MSG(IPCTNL_MSG_CT_DELETE) ? CT_EV_DESTROY
				   : flags & NLM_F_CREATE		 ? CT_EV_NEW
									 : CT_EV_UPDATE;
		count++;
		rc = cb(ev, &fc, arg);
		if (rc < 0)
			return err_setx(e, -rc, "conntrack events: handler stopped"), rc;
	}
	return count;
}
