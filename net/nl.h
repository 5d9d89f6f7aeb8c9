/* nl — a small netlink core, shaped like libmnl but written for kvnet.
 *
 * Three parts, usable on their own:
 *
 *   builder   nl_msg_*, nl_put_*, nl_nest_*: a request built in a caller-owned buffer.
 *             Every writer is bounds-checked; a message that would not fit is an error
 *             (-EMSGSIZE, sticky), never a silent truncation.
 *   parser    nl_reply_*, nl_attr_*, nl_msg_parse: pure functions over bytes. The reply
 *             parser checks sequence number and port id, stops at the ACK / NLMSG_DONE,
 *             reports an interrupted dump (NLM_F_DUMP_INTR) as -EINTR, and turns an
 *             NLMSG_ERROR into -errno with the kernel's extended-ack text as the message.
 *             Attributes are validated into a table indexed by type (per-type policy with
 *             a minimum length) before anyone reads them. Replay tests and the fuzzer feed
 *             recorded bytes straight into these.
 *   socket    nl_open, nl_request, nl_dump: the only heap object. NETLINK_EXT_ACK,
 *             NETLINK_CAP_ACK and NETLINK_GET_STRICT_CHK are switched on at open.
 *
 * A netlink message (host byte order; every part padded to 4 bytes, NLMSG_ALIGN):
 *
 *    0                   1                   2                   3
 *   +-------------------------------------------------------------------+
 *   |                 nlmsg_len: header + payload, bytes                |
 *   +---------------------------------+---------------------------------+
 *   |   nlmsg_type (RTM_NEWLINK ...)  |  nlmsg_flags (NLM_F_REQUEST...) |
 *   +---------------------------------+---------------------------------+
 *   |                     nlmsg_seq (echoed in replies)                 |
 *   +-------------------------------------------------------------------+
 *   |            nlmsg_pid (port id: 0 = kernel; ours in replies)       |
 *   +-------------------------------------------------------------------+   16 bytes
 *   |  family header: ifinfomsg 16 / ifaddrmsg 8 / rtmsg 12 / ndmsg 12  |
 *   +-------------------------------------------------------------------+
 *   |  attributes, each padded to 4 ...                                 |
 *   +-------------------------------------------------------------------+
 *
 * An attribute (a nested one holds attributes as its payload, NLA_F_NESTED in type):
 *
 *   +---------------------------------+---------------------------------+
 *   |  nla_len: 4 + payload (no pad)  |  nla_type (low 14 bits = type)  |
 *   +---------------------------------+---------------------------------+
 *   |  payload ... | pad to 4                                           |
 *   +-------------------------------------------------------------------+
 *
 * The kernel's answer to a request with NLM_F_ACK (NLMSG_ERROR; error 0 = ACK):
 *
 *   +-----------+-------------+--------------------------+--------------------------+
 *   | nlmsghdr  | int error   | nlmsghdr of our request  | request payload, absent  |
 *   | 16 bytes  | 0 or -errno | 16 bytes                 | with NLM_F_CAPPED        |
 *   +-----------+-------------+--------------------------+--------------------------+
 *   | extended-ack TLVs when NLM_F_ACK_TLVS: NLMSGERR_ATTR_MSG "text\0",            |
 *   | NLMSGERR_ATTR_OFFS u32 (offset of the bad attribute in our request) ...       |
 *   +-------------------------------------------------------------------------------+
 *
 * A dump is answered by NLM_F_MULTI messages over one or more datagrams and ends with
 * NLMSG_DONE, whose payload is an int error (and ext-ack TLVs when it is < 0).
 */
#ifndef KVNET_NET_NL_H
#define KVNET_NET_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cursor.h"

struct err;

/* Receive buffer size: the kernel never sends a dump datagram larger than 32 KiB to a
 * reader whose buffer is at least that big. */
#define NL_RECV_BUF 32768

/* ---- builder -------------------------------------------------------------------- */

/* A request being built in a caller-owned buffer. */
struct nl_msg {
	struct wcur w;	/* the buffer; w.off = bytes so far, w.bad = something did not fit */
	int open_nests; /* nl_nest_begin() calls not yet closed by nl_nest_end() */
};

/* Start a message of `type` in buf (cap bytes): writes the 16-byte header with
 * NLM_F_REQUEST | flags; seq and port id are set when it is sent. A buffer too small
 * for the header makes the message bad (every later call fails with -EMSGSIZE). */
void nl_msg_init(struct nl_msg *m, void *buf, size_t cap, uint16_t type, uint16_t flags);

/* Append the family header (ifinfomsg, rtmsg, ...): len bytes copied from hdr, padded
 * to 4. Returns 0 or -EMSGSIZE. */
int nl_put_fam(struct nl_msg *m, const void *hdr, size_t len);

/* Append one attribute. Payload larger than 65531 bytes or not fitting the buffer:
 * -EMSGSIZE, and the message stays bad. Each returns 0 or -EMSGSIZE. */
int nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len);
int nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v);
int nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v);
int nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
int nl_put_s32(struct nl_msg *m, uint16_t type, int32_t v);
/* A NUL-terminated string attribute (the NUL is part of the payload). */
int nl_put_str(struct nl_msg *m, uint16_t type, const char *s);

/* Open a nested attribute; *nest remembers where it starts for nl_nest_end(), which
 * writes its final length (a nest over 65535 bytes is -EMSGSIZE). */
int nl_nest_begin(struct nl_msg *m, uint16_t type, size_t *nest);
int nl_nest_end(struct nl_msg *m, size_t nest);

/* 0 when the message is complete and fits, -EMSGSIZE when a write did not fit,
 * -EINVAL when a nest is still open; e says which. */
int nl_msg_check(const struct nl_msg *m, struct err *e);

/* Bytes written so far (equals nlmsg_len once nl_msg_check() passes). */
size_t nl_msg_len(const struct nl_msg *m);

/* ---- parser --------------------------------------------------------------------- */

/* One message of a reply, as the parser hands it out. Points into the caller's bytes. */
struct nl_msgv {
	uint16_t type;	     /* nlmsg_type */
	uint16_t flags;	     /* nlmsg_flags */
	uint32_t seq;	     /* nlmsg_seq */
	uint32_t pid;	     /* nlmsg_pid */
	const uint8_t *data; /* payload after the 16-byte header (not owned) */
	size_t len;	     /* payload bytes: nlmsg_len - 16 */
};

/* Called for each data message of a reply. Return 0 to go on, or -errno (with e filled)
 * to fail the request: the parser then stops calling but still reads to the end of the
 * reply so the socket stays in step, and returns that error. */
typedef int (*nl_cb)(const struct nl_msgv *m, void *arg, struct err *e);

/* State of one reply being parsed, fed datagram by datagram. */
struct nl_reply {
	uint32_t seq;	 /* sequence number of our request */
	uint32_t portid; /* our port id; messages for another port are rejected */
	bool dump;	 /* a dump: ends at NLMSG_DONE; otherwise at the NLMSG_ERROR ack */
	nl_cb cb;	 /* data message handler, or NULL to ignore data */
	void *arg;	 /* passed to cb */
	bool done;	 /* the terminating message was seen */
	bool intr;	 /* a message carried NLM_F_DUMP_INTR */
	int cb_err;	 /* first error a callback returned (negative; its text is in
			  * the e given to nl_reply_feed), else 0 */
	unsigned nmsgs;	 /* data messages seen */
};

/* Prepare r for the reply to request (seq, portid). */
void nl_reply_init(struct nl_reply *r, uint32_t seq, uint32_t portid, bool dump, nl_cb cb,
		   void *arg);

/* Parse one received datagram (len bytes at buf, any alignment). Returns 1 when the
 * reply goes on in a later datagram, 0 when it is complete and good, or -errno:
 *   -EBADMSG  a message is truncated or malformed (e says where)
 *   -EPROTO   a message carries another sequence number
 *   -ESRCH    a message is addressed to another port id
 *   -EINTR    the dump was interrupted (NLM_F_DUMP_INTR): its content is inconsistent,
 *             the caller should dump again (reported once the dump is complete)
 *   -errno    the kernel's error; e holds the extended-ack text when the kernel gave
 *             one, else strerror; the caller prefixes the object ("route X: add")
 *   the callback's error, after the reply was read to its end. */
int nl_reply_feed(struct nl_reply *r, const void *buf, size_t len, struct err *e);

/* Walk the messages of one datagram read from a subscription socket (events, nflog:
 * unsolicited, so no sequence or port checks), what[0..] naming the source in errors.
 * cb gets each message in turn: 0 goes on, > 0 stops quietly, -errno stops with that
 * error (prefixed "message at OFFSET"). A tail shorter than a header is ignored. 0, the
 * callback's error, or -EBADMSG (a message's length runs past the datagram). */
int nl_datagram_walk(const void *buf, size_t len, const char *what, nl_cb cb, void *arg,
		     struct err *e);

/* Kinds of attribute payload a policy can demand. */
enum nl_akind {
	NL_A_UNSPEC, /* anything of at least min_len bytes */
	NL_A_FLAG,   /* zero-length */
	NL_A_U8,     /* at least 1 byte */
	NL_A_U16,    /* at least 2 bytes */
	NL_A_U32,    /* at least 4 bytes */
	NL_A_U64,    /* at least 8 bytes */
	NL_A_STR,    /* NUL-terminated within its payload, at least min_len bytes */
	NL_A_NESTED, /* attributes inside (validated when the caller parses the nest) */
};

/* Policy for one attribute type; an array of maxtype + 1 of these is a policy. */
struct nl_pol {
	enum nl_akind kind; /* what the payload must be */
	uint16_t min_len;   /* minimum payload bytes; the kind's own size applies if larger */
};

/* A validated attribute in a table. */
struct nl_attr {
	const uint8_t *p; /* payload (not owned, any alignment); NULL when absent */
	uint16_t len;	  /* payload bytes */
};

/* Walk the attributes in len bytes at p and fill tb[0..maxtype] (zeroed first; the last
 * occurrence of a type wins; types above maxtype are skipped, as from a newer kernel).
 * pol may be NULL (no checks). Returns 0, or -EBADMSG with e naming the attribute when
 * a header is cut, a length is impossible, or a payload breaks its policy. */
int nl_attr_parse(const uint8_t *p, size_t len, const struct nl_pol *pol, uint16_t maxtype,
		  struct nl_attr *tb, struct err *e);

/* Parse a message with a family header of hdrlen bytes (copied into hdr, which may be
 * NULL) followed by attributes, which are validated into tb as nl_attr_parse() does.
 * A payload shorter than hdrlen is -EBADMSG. */
int nl_msg_parse(const struct nl_msgv *m, void *hdr, size_t hdrlen, const struct nl_pol *pol,
		 uint16_t maxtype, struct nl_attr *tb, struct err *e);

/* Getters over a validated table entry: false when the attribute is absent. */
bool nl_attr_has(const struct nl_attr *a);
bool nl_attr_u8(const struct nl_attr *a, uint8_t *v);
bool nl_attr_u16(const struct nl_attr *a, uint16_t *v);
bool nl_attr_u32(const struct nl_attr *a, uint32_t *v);
bool nl_attr_u64(const struct nl_attr *a, uint64_t *v);
/* The string of an NL_A_STR attribute (validated NUL-terminated), or NULL. */
const char *nl_attr_str(const struct nl_attr *a);
/* Copy exactly n payload bytes; false when absent or of another length. */
bool nl_attr_bytes(const struct nl_attr *a, void *out, size_t n);

/* ---- socket --------------------------------------------------------------------- */

struct nl_sock;

/* Open and bind a netlink socket of `protocol` (NETLINK_ROUTE) in the calling thread's
 * network namespace, with extended acks, capped acks and strict dump checks. Returns 0
 * and *out (free with nl_close), or -errno. */
int nl_open(struct nl_sock **out, int protocol, struct err *e);

/* As nl_open, but the socket lives in the network namespace at nspath (/run/netns/X or
 * /proc/PID/ns/net): it is created on a short-lived thread that setns() into it, so the
 * caller's own namespace never changes. Every operation on the socket then acts there. */
int nl_open_in_netns(struct nl_sock **out, int protocol, const char *nspath, struct err *e);

/* Run fn(arg) on a short-lived thread inside the network namespace nsfd and return what
 * it returns (fn fills e). For what the kernel creates in the caller's namespace rather
 * than the socket's (tun/tap). -errno when the thread or setns fails. */
int nl_run_in_netns(int nsfd, int (*fn)(void *arg, struct err *e), void *arg, struct err *e);

/* A new fd for the network namespace the socket lives in (SIOCGSKNS); close it. */
int nl_netns_fd(const struct nl_sock *s, struct err *e);

void nl_close(struct nl_sock *s);
int nl_fd(const struct nl_sock *s);
uint32_t nl_portid(const struct nl_sock *s);

/* Send m (NLM_F_ACK is added) and read the reply to its ACK, handing data messages (the
 * answer to a GET) to cb, which may be NULL. Returns 0 or -errno as nl_reply_feed(). */
int nl_request(struct nl_sock *s, struct nl_msg *m, nl_cb cb, void *arg, struct err *e);

/* Send m as a dump (NLM_F_DUMP is added) and hand every message to cb until NLMSG_DONE.
 * -EINTR when the kernel flagged the dump inconsistent (caller retries). */
int nl_dump(struct nl_sock *s, struct nl_msg *m, nl_cb cb, void *arg, struct err *e);

#endif
