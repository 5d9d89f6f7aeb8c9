/* nl — netlink core: builder, pure reply/attribute parser, socket; see nl.h. */
#include "net/nl.h"

#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_HDRLEN 16u	  /* sizeof(struct nlmsghdr) */
#define NL_ATTR_HDRLEN 4u /* sizeof(struct nlattr) */
#define NL_ATTR_MAXLEN 0xffffu

static size_t align4(size_t n)
{
	return (n + 3u) & ~(size_t)3u;
}

/* ---- builder -------------------------------------------------------------------- */

/* Keep nlmsg_len equal to what has been written, so the buffer is always a message. */
static void set_len(struct nl_msg *m)
{
	if (!m->w.bad && m->w.cap >= NL_HDRLEN) {
		uint32_t len = (uint32_t)m->w.off;
		memcpy(m->w.p, &len, sizeof(len));
	}
}

void nl_msg_init(struct nl_msg *m, void *buf, size_t cap, uint16_t type, uint16_t flags)
{
	wcur_init(&m->w, buf, cap);
	m->open_nests = 0;
	wcur_h32(&m->w, NL_HDRLEN);
	wcur_h16(&m->w, type);
	wcur_h16(&m->w, (uint16_t)(flags | NLM_F_REQUEST));
	wcur_h32(&m->w, 0); /* seq: set by the sender */
	wcur_h32(&m->w, 0); /* port id: 0 = to the kernel */
	set_len(m);
}

/* Room for n bytes plus padding, all or nothing; false marks the message bad. */
static bool fits(struct nl_msg *m, size_t n)
{
	if (m->w.bad || align4(n) > m->w.cap - m->w.off) {
		m->w.bad = true;
		return false;
	}
	return true;
}

int nl_put_fam(struct nl_msg *m, const void *hdr, size_t len)
{
	if (!fits(m, len))
		return -EMSGSIZE;
	wcur_bytes(&m->w, hdr, len);
	wcur_zero(&m->w, align4(len) - len);
	set_len(m);
	return 0;
}

int nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	if (len > NL_ATTR_MAXLEN - NL_ATTR_HDRLEN || !fits(m, NL_ATTR_HDRLEN + len)) {
		m->w.bad = true;
		return -EMSGSIZE;
	}
	wcur_h16(&m->w, (uint16_t)(NL_ATTR_HDRLEN + len));
	wcur_h16(&m->w, type);
	if (len)
		wcur_bytes(&m->w, data, len);
	wcur_zero(&m->w, align4(len) - len);
	set_len(m);
	return 0;
}

int nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

int nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

int nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

int nl_put_s32(struct nl_msg *m, uint16_t type, int32_t v)
{
	return nl_put(m, type, &v, sizeof(v));
}

int nl_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
	return nl_put(m, type, s, strlen(s) + 1);
}

int nl_nest_begin(struct nl_msg *m, uint16_t type, size_t *nest)
{
	*nest = m->w.off;
	if (nl_put(m, (uint16_t)(type | NLA_F_NESTED), NULL, 0) < 0)
		return -EMSGSIZE;
	m->open_nests++;
	return 0;
}

int nl_nest_end(struct nl_msg *m, size_t nest)
{
	if (m->w.bad)
		return -EMSGSIZE;
	if (m->open_nests <= 0 || nest + NL_ATTR_HDRLEN > m->w.off) {
		m->w.bad = true; /* a programming error; never send such a message */
		return -EMSGSIZE;
	}
	size_t len = m->w.off - nest;
	if (len > NL_ATTR_MAXLEN) {
		m->w.bad = true;
		return -EMSGSIZE;
	}
	uint16_t l16 = (uint16_t)len;
	memcpy(m->w.p + nest, &l16, sizeof(l16));
	m->open_nests--;
	return 0;
}

int nl_msg_check(const struct nl_msg *m, struct err *e)
{
	if (m->w.bad)
		return err_setx(e, EMSGSIZE, "netlink: message does not fit in its %zu-byte buffer",
				m->w.cap);
	if (m->open_nests)
		return err_setx(e, EINVAL, "netlink: message has %d unclosed nested attributes",
				m->open_nests);
	return 0;
}

size_t nl_msg_len(const struct nl_msg *m)
{
	return m->w.off;
}

/* ---- attributes ----------------------------------------------------------------- */

static size_t kind_min(enum nl_akind k)
{
	switch (k) {
	case NL_A_UNSPEC:
	case NL_A_FLAG:
	case NL_A_NESTED:
		return 0;
	case NL_A_U8:
	case NL_A_STR:
		return 1;
	case NL_A_U16:
		return 2;
	case NL_A_U32:
		return 4;
	case NL_A_U64:
		return 8;
	}
	return 0;
}

static int check_pol(const struct nl_pol *pol, uint16_t type, const uint8_t *p, size_t len,
		     struct err *e)
{
	size_t need = kind_min(pol->kind);
	if (pol->min_len > need)
		need = pol->min_len;
	if (len < need)
		return err_setx(e, EBADMSG,
				"netlink: attribute %u: %zu payload bytes, need at least %zu", type,
				len, need);
	if (pol->kind == NL_A_FLAG && len != 0)
		return err_setx(e, EBADMSG, "netlink: attribute %u: flag with %zu payload bytes",
				type, len);
	if (pol->kind == NL_A_STR && !memchr(p, 0, len))
		return err_setx(e, EBADMSG, "netlink: attribute %u: string without a NUL", type);
	return 0;
}

int nl_attr_parse(const uint8_t *p, size_t len, const struct nl_pol *pol, uint16_t maxtype,
		  struct nl_attr *tb, struct err *e)
{
	struct cur c;
	memset(tb, 0, ((size_t)maxtype + 1) * sizeof(*tb));
	cur_init(&c, p, len);
	while (cur_left(&c) > 0) {
		uint16_t alen, atype;
		const uint8_t *payload;
		size_t at = c.off;
		if (cur_left(&c) < NL_ATTR_HDRLEN)
			return err_setx(
			    e, EBADMSG,
			    "netlink: attribute at offset %zu: header cut after %zu bytes", at,
			    cur_left(&c));
		cur_h16(&c, &alen);
		cur_h16(&c, &atype);
		uint16_t type = atype & NLA_TYPE_MASK;
		if (alen < NL_ATTR_HDRLEN || !cur_ptr(&c, alen - NL_ATTR_HDRLEN, &payload))
			return err_setx(
			    e, EBADMSG,
			    "netlink: attribute %u at offset %zu: length %u does not fit "
			    "the %zu bytes left",
			    type, at, alen, len - at);
		cur_align(&c, 4);
		if (type > maxtype)
			continue;
		size_t plen = alen - NL_ATTR_HDRLEN;
		if (pol) {
			int rc = check_pol(&pol[type], type, payload, plen, e);
			if (rc < 0)
				return rc;
		}
		tb[type].p = payload;
		tb[type].len = (uint16_t)plen;
	}
	return 0;
}

int nl_msg_parse(const struct nl_msgv *m, void *hdr, size_t hdrlen, const struct nl_pol *pol,
		 uint16_t maxtype, struct nl_attr *tb, struct err *e)
{
	struct cur c;
	cur_init(&c, m->data, m->len);
	if (cur_left(&c) < hdrlen)
		return err_setx(
		    e, EBADMSG,
		    "netlink: message type %u: %zu payload bytes, family header needs %zu", m->type,
		    m->len, hdrlen);
	if (hdr)
		cur_copy(&c, hdr, hdrlen);
	else
		cur_skip(&c, hdrlen);
	cur_align(&c, 4);
	return nl_attr_parse(m->data + c.off, cur_left(&c), pol, maxtype, tb, e);
}

bool nl_attr_has(const struct nl_attr *a)
{
	return a->p != NULL;
}

static bool attr_fixed(const struct nl_attr *a, void *v, size_t n)
{
	if (!a->p || a->len < n) {
		memset(v, 0, n);
		return false;
	}
	memcpy(v, a->p, n);
	return true;
}

bool nl_attr_u8(const struct nl_attr *a, uint8_t *v)
{
	return attr_fixed(a, v, sizeof(*v));
}

bool nl_attr_u16(const struct nl_attr *a, uint16_t *v)
{
	return attr_fixed(a, v, sizeof(*v));
}

bool nl_attr_u32(const struct nl_attr *a, uint32_t *v)
{
	return attr_fixed(a, v, sizeof(*v));
}

bool nl_attr_u64(const struct nl_attr *a, uint64_t *v)
{
	return attr_fixed(a, v, sizeof(*v));
}

const char *nl_attr_str(const struct nl_attr *a)
{
	if (!a->p || !memchr(a->p, 0, a->len))
		return NULL;
	return (const char *)a->p;
}

bool nl_attr_bytes(const struct nl_attr *a, void *out, size_t n)
{
	if (!a->p || a->len != n)
		return false;
	memcpy(out, a->p, n);
	return true;
}

/* ---- replies -------------------------------------------------------------------- */

void nl_reply_init(struct nl_reply *r, uint32_t seq, uint32_t portid, bool dump, nl_cb cb,
		   void *arg)
{
	memset(r, 0, sizeof(*r));
	r->seq = seq;
	r->portid = portid;
	r->dump = dump;
	r->cb = cb;
	r->arg = arg;
}

/* Policy for the extended-ack TLVs we read. */
static const struct nl_pol extack_pol[NLMSGERR_ATTR_OFFS + 1] = {
    [NLMSGERR_ATTR_MSG] = {NL_A_STR, 0},
    [NLMSGERR_ATTR_OFFS] = {NL_A_U32, 0},
};

/* Record kernel error `error` (negative) in e, with the ext-ack text in the TLVs at c
 * when there are some and they are well formed; otherwise strerror. */
static int kernel_error(int32_t error, uint16_t flags, struct cur *c, struct err *e)
{
	const char *text = NULL;
	if (flags & NLM_F_ACK_TLVS) {
		struct nl_attr tb[NLMSGERR_ATTR_OFFS + 1];
		cur_align(c, 4);
		if (nl_attr_parse(c->p + c->off, cur_left(c), extack_pol, NLMSGERR_ATTR_OFFS, tb,
				  NULL) == 0)
			text = nl_attr_str(&tb[NLMSGERR_ATTR_MSG]);
	}
	if (text && *text)
		return err_setx(e, -error, "%s", text);
	return err_setx(e, -error, "%s", strerror(-error));
}

/* NLMSG_ERROR: an ACK (error 0) or the kernel's -errno. Payload at c. */
static int parse_error(uint16_t flags, struct cur *c, struct err *e)
{
	uint32_t u;
	uint32_t orig_len;
	if (!cur_h32(c, &u))
		return err_setx(e, EBADMSG, "netlink: error message without an error code");
	int32_t error = (int32_t)u;
	if (error == 0)
		return 0;
	if (error > 0 || error < -4095)
		return err_setx(e, EBADMSG, "netlink: error message with impossible code %d",
				error);
	/* The header of our request, then its payload unless the kernel capped it. */
	if (!cur_h32(c, &orig_len) || !cur_skip(c, NL_HDRLEN - 4))
		return kernel_error(error, 0, c, e);
	if (!(flags & NLM_F_CAPPED)) {
		if (orig_len < NL_HDRLEN || !cur_skip(c, orig_len - NL_HDRLEN))
			return kernel_error(error, 0, c, e);
	}
	return kernel_error(error, flags, c, e);
}

/* NLMSG_DONE: an int error (absent in old kernels), ext-ack TLVs when it is < 0. */
static int parse_done(uint16_t flags, struct cur *c, struct err *e)
{
	uint32_t u;
	if (cur_left(c) < 4)
		return 0;
	cur_h32(c, &u);
	int32_t error = (int32_t)u;
	if (error == 0)
		return 0;
	if (error > 0 || error < -4095)
		return err_setx(e, EBADMSG, "netlink: end of dump with impossible code %d", error);
	return kernel_error(error, flags, c, e);
}

static int reply_finish(struct nl_reply *r, struct err *e)
{
	if (r->cb_err)
		return r->cb_err;
	if (r->intr)
		return err_setx(e, EINTR,
				"netlink: dump interrupted: the table changed while it was read; "
				"dump again");
	return 0;
}

int nl_datagram_walk(const void *buf, size_t len, const char *what, nl_cb cb, void *arg,
		     struct err *e)
{
	struct cur c;
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
			return err_setx(e, EBADMSG, "%s: message at %zu: length %u", what, start,
					mlen);
		cur_align(&c, 4);
		struct nl_msgv m = { .type = type, .flags = flags, .seq = seq, .pid = pid,
				     .data = body.p + body.off, .len = cur_left(&body) };
		int rc = cb(&m, arg, e);
		if (rc < 0)
			return err_prefix(e, "%s: message at %zu", what, start), rc;
		if (rc > 0)
			break;
	}
	return 0;
}

int nl_reply_feed(struct nl_reply *r, const void *buf, size_t len, struct err *e)
{
	struct cur c;
	cur_init(&c, buf, len);
	while (cur_left(&c) > 0) {
		uint32_t mlen, seq, pid;
		uint16_t type, flags;
		struct cur payload;
		size_t at = c.off;
		if (r->done)
			return err_setx(
			    e, EBADMSG,
			    "netlink: %zu bytes after the end of the reply at offset %zu",
			    cur_left(&c), at);
		if (cur_left(&c) < NL_HDRLEN)
			return err_setx(
			    e, EBADMSG,
			    "netlink: truncated reply: message header at offset %zu cut "
			    "after %zu bytes",
			    at, cur_left(&c));
		cur_h32(&c, &mlen);
		cur_h16(&c, &type);
		cur_h16(&c, &flags);
		cur_h32(&c, &seq);
		cur_h32(&c, &pid);
		if (mlen < NL_HDRLEN || !cur_sub(&c, mlen - NL_HDRLEN, &payload))
			return err_setx(
			    e, EBADMSG,
			    "netlink: truncated reply: message at offset %zu says %u bytes, "
			    "%zu present",
			    at, mlen, len - at);
		cur_align(&c, 4);
		if (pid != r->portid)
			return err_setx(e, ESRCH, "netlink: reply for port id %u, ours is %u", pid,
					r->portid);
		if (seq != r->seq)
			return err_setx(e, EPROTO,
					"netlink: reply has sequence number %u, request had %u",
					seq, r->seq);
		if (flags & NLM_F_DUMP_INTR)
			r->intr = true;

		int rc;
		switch (type) {
		case NLMSG_NOOP:
			break;
		case NLMSG_OVERRUN:
			return err_setx(e, ENOBUFS, "netlink: reply overrun: messages were lost");
		case NLMSG_ERROR:
			r->done = true;
			rc = parse_error(flags, &payload, e);
			if (rc < 0)
				return rc;
			if (r->dump)
				return err_setx(e, EBADMSG,
						"netlink: dump ended by an ACK, not DONE");
			break;
		case NLMSG_DONE:
			r->done = true;
			rc = parse_done(flags, &payload, e);
			if (rc < 0)
				return rc;
			if (!r->dump)
				return err_setx(e, EBADMSG,
						"netlink: NLMSG_DONE ends a non-dump reply");
			break;
		default:
			if (type < NLMSG_MIN_TYPE)
				break; /* reserved control type: nothing for us */
			r->nmsgs++;
			if (r->cb && !r->cb_err) {
				struct nl_msgv mv = {
				    .type = type,
				    .flags = flags,
				    .seq = seq,
				    .pid = pid,
				    .data = payload.p,
				    .len = payload.len,
				};
				rc = r->cb(&mv, r->arg, e);
				if (rc < 0)
					r->cb_err = rc;
			}
			break;
		}
	}
	return r->done ? reply_finish(r, e) : 1;
}

/* ---- socket --------------------------------------------------------------------- */

struct nl_sock {
	int fd;						      /* the netlink socket */
	uint32_t portid;				      /* what the kernel bound us to */
	uint32_t seq;					      /* last sequence number sent */
	uint8_t buf[NL_RECV_BUF] __attribute__((aligned(8))); /* receive buffer */
};

int nl_open(struct nl_sock **out, int protocol, struct err *e)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	socklen_t salen = sizeof(sa);
	static const int opts[] = {NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK};
	int one = 1, rc;
	*out = NULL;
	struct nl_sock *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "netlink: socket");
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (s->fd < 0) {
		rc = err_set(e, errno, "netlink: socket(protocol %d)", protocol);
		goto free_s;
	}
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		/* Older kernels lack some options; the core works without them. */
		if (setsockopt(s->fd, SOL_NETLINK, opts[i], &one, sizeof(one)) < 0 &&
		    errno != ENOPROTOOPT) {
			rc = err_set(e, errno, "netlink: setsockopt %d", opts[i]);
			goto close_fd;
		}
	}
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = err_set(e, errno, "netlink: bind");
		goto close_fd;
	}
	if (getsockname(s->fd, (struct sockaddr *)&sa, &salen) < 0) {
		rc = err_set(e, errno, "netlink: getsockname");
		goto close_fd;
	}
	s->portid = sa.nl_pid;
	s->seq = 0;
	*out = s;
	return 0;
close_fd:
	close(s->fd);
free_s:
	free(s);
	return rc;
}

/* What nl_run_in_netns hands to its thread. */
struct netns_job {
	int nsfd;			     /* namespace to enter */
	int (*fn)(void *arg, struct err *e); /* the work */
	void *arg;			     /* its argument */
	struct err *e;			     /* its error */
	int rc;				     /* its result */
};

static void *netns_thread(void *p)
{
	struct netns_job *j = p;
	if (setns(j->nsfd, CLONE_NEWNET) < 0)
		j->rc = err_set(j->e, errno, "setns");
	else
		j->rc = j->fn(j->arg, j->e);
	return NULL;
}

int nl_run_in_netns(int nsfd, int (*fn)(void *arg, struct err *e), void *arg, struct err *e)
{
	struct netns_job j = {.nsfd = nsfd, .fn = fn, .arg = arg, .e = e, .rc = 0};
	pthread_t t;
	int rc = pthread_create(&t, NULL, netns_thread, &j);
	if (rc != 0)
		return err_set(e, rc, "thread for setns");
	pthread_join(t, NULL);
	return j.rc;
}

/* What nl_open_in_netns runs inside the namespace. */
struct open_job {
	struct nl_sock **out; /* where the socket goes */
	int protocol;	      /* netlink protocol */
};

static int open_job_fn(void *arg, struct err *e)
{
	struct open_job *o = arg;
	return nl_open(o->out, o->protocol, e);
}

int nl_open_in_netns(struct nl_sock **out, int protocol, const char *nspath, struct err *e)
{
	struct open_job o = {.out = out, .protocol = protocol};
	*out = NULL;
	int fd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "netns %s: open", nspath);
	int rc = nl_run_in_netns(fd, open_job_fn, &o, e);
	close(fd);
	if (rc < 0)
		err_prefix(e, "netns %s", nspath);
	return rc;
}

int nl_netns_fd(const struct nl_sock *s, struct err *e)
{
	int fd = ioctl(s->fd, SIOCGSKNS);
	if (fd < 0)
		return err_set(e, errno, "netlink: namespace of socket");
	return fd;
}

void nl_close(struct nl_sock *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

int nl_fd(const struct nl_sock *s)
{
	return s->fd;
}

uint32_t nl_portid(const struct nl_sock *s)
{
	return s->portid;
}

/* Read and drop whatever is still queued (after a reply we gave up on half-way), so
 * the next request does not read stale messages. */
static void drain(struct nl_sock *s)
{
	while (recv(s->fd, s->buf, sizeof(s->buf), MSG_DONTWAIT) > 0 || errno == EINTR)
		;
}

static int exchange(struct nl_sock *s, struct nl_msg *m, bool dump, nl_cb cb, void *arg,
		    struct err *e)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct nl_reply r;
	int rc = nl_msg_check(m, e);
	if (rc < 0)
		return rc;
	uint16_t flags;
	memcpy(&flags, m->w.p + 6, sizeof(flags));
	flags |= dump ? NLM_F_DUMP : NLM_F_ACK;
	memcpy(m->w.p + 6, &flags, sizeof(flags));
	if (++s->seq == 0)
		s->seq = 1;
	memcpy(m->w.p + 8, &s->seq, sizeof(s->seq));

	ssize_t n;
	do
		n = sendto(s->fd, m->w.p, m->w.off, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set(e, errno, "netlink: send");

	nl_reply_init(&r, s->seq, s->portid, dump, cb, arg);
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = s->buf, .iov_len = sizeof(s->buf)};
		struct msghdr mh = {
		    .msg_name = &from,
		    .msg_namelen = sizeof(from),
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		};
		n = recvmsg(s->fd, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno == ENOBUFS
				 ? err_setx(e, ENOBUFS,
					    "netlink: receive: socket buffer overrun, replies lost")
				 : err_set(e, errno, "netlink: receive");
			break;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			rc = err_setx(e, EMSGSIZE, "netlink: reply datagram larger than %zu bytes",
				      sizeof(s->buf));
			break;
		}
		if (from.nl_pid != 0)
			continue; /* not from the kernel */
		rc = nl_reply_feed(&r, s->buf, (size_t)n, e);
		if (rc != 1)
			break;
	}
	if (!r.done)
		drain(s);
	return rc;
}

int nl_request(struct nl_sock *s, struct nl_msg *m, nl_cb cb, void *arg, struct err *e)
{
	return exchange(s, m, false, cb, arg, e);
}

int nl_dump(struct nl_sock *s, struct nl_msg *m, nl_cb cb, void *arg, struct err *e)
{
	return exchange(s, m, true, cb, arg, e);
}
