/* http — HTTP/1.1 client for the API server: request writer, an incremental response
 * parser, a whole-response call and a streaming body reader for watches.
 *
 * The response parser is pure: it is fed bytes as they arrive (in any split, down to
 * one byte at a time) and reports events, so the same code serves a socket, a file and
 * the fuzzer:
 *
 *   feed "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhel"
 *        → HEAD (status and headers ready), DATA "hel"
 *   feed "lo\r\n0\r\nTrailer: z\r\n\r\n"
 *        → DATA "lo", DONE
 *
 * Body framing follows RFC 9112: no body for HEAD requests, 1xx, 204 and 304; chunked
 * (chunk extensions skipped, trailers read and dropped, sizes in hex checked for
 * overflow); Content-Length; otherwise until the connection closes (then the
 * connection cannot be reused). A response with both Transfer-Encoding and
 * Content-Length, an unknown transfer coding, conflicting Content-Lengths, bare LF line
 * ends, obs-folded or malformed headers, or a header block / header count / body over
 * the caller's limits is an error. 1xx interim responses are skipped; 3xx responses are
 * returned as they are (no redirects are followed).
 *
 * Everything talks through kube/conn.h, so the same client runs over TCP, TLS and, in
 * tests, a socketpair.
 */
#ifndef KVNET_KUBE_HTTP_H
#define KVNET_KUBE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct conn;

/* Hard upper bounds for the limits below; the parser keeps the header block inline. */
#define HTTP_HEAD_MAX 16384
#define HTTP_HEADERS_MAX 64

struct http_limits {
	size_t max_head;      /* status line + headers (and trailers) bytes; 0 = 8 KiB, at
	                         most HTTP_HEAD_MAX */
	unsigned max_headers; /* header fields; 0 = 48, at most HTTP_HEADERS_MAX */
	uint64_t max_body;    /* body bytes after de-chunking; 0 = 64 MiB */
};

struct http_req {
	const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *target;       /* path + query, already percent-encoded (http_pct_encode) */
	const char *host;         /* Host header value ("host" or "host:port") */
	const char *token;        /* bearer token, or NULL for no Authorization header */
	const char *accept;       /* Accept; NULL = application/json */
	const char *content_type; /* Content-Type when there is a body; NULL = application/json */
	const char *body;         /* request body or NULL */
	size_t body_len;          /* its length; a body (even empty) for POST/PUT/PATCH */
};

/* Write the request line and headers (not the body) into buf[0..cap): User-Agent
 * kvnet/VERSION, Connection: keep-alive, Content-Length when there is a body. Returns 0
 * and *len, -ENOSPC if it does not fit, -EINVAL for CR/LF or other control characters
 * in any field (header injection), or a missing method/target/host. */
int http_req_head(const struct http_req *r, char *buf, size_t cap, size_t *len,
		  struct err *e);

/* Percent-encode s for a query value (everything but ALPHA DIGIT - . _ ~ is %XX), into
 * buf[0..cap) NUL-terminated. Returns the length or -ENOSPC. */
long http_pct_encode(const char *s, char *buf, size_t cap);
/* Append "?key=value" (or "&key=value" if buf already has a '?') with key and value
 * percent-encoded, to the NUL-terminated target in buf[0..cap). 0 or -ENOSPC. */
int http_query_add(char *buf, size_t cap, const char *key, const char *value);

/* ---- incremental response parser ---------------------------------------------------- */

enum http_ev_type {
	HTTP_EV_MORE,  /* all input consumed, nothing to report: feed more */
	HTTP_EV_HEAD,  /* status line and headers are complete (http_header() works now) */
	HTTP_EV_DATA,  /* body bytes: ev.data/ev.len point into the fed buffer */
	HTTP_EV_DONE,  /* the response is complete; feed nothing more */
};

struct http_ev {
	enum http_ev_type type;  /* what happened */
	const char *data;        /* HTTP_EV_DATA: body bytes (inside the caller's buffer) */
	size_t len;              /* their count */
};

struct http_hdr {
	uint16_t name;   /* offset of the name in head[] (NUL-terminated there) */
	uint16_t value;  /* offset of the value, OWS trimmed, NUL-terminated */
};

enum http_pstate {
	HP_HEAD,        /* reading the status line and headers into head[] */
	HP_BODY_LEN,    /* Content-Length body */
	HP_BODY_CLOSE,  /* body until EOF */
	HP_CHUNK_SIZE,  /* hex digits of a chunk size */
	HP_CHUNK_EXT,   /* after ';': extension up to CR */
	HP_CHUNK_LF,    /* CR seen after the size line, want LF */
	HP_CHUNK_DATA,  /* chunk payload */
	HP_CHUNK_CR,    /* CR after the payload */
	HP_CHUNK_DLF,   /* LF after the payload */
	HP_TRAILER,     /* trailer lines after the last chunk, until an empty line */
	HP_DONE,        /* response complete */
	HP_ERROR,       /* a previous call failed; sticky */
};

struct http_parser {
	struct http_limits lim;    /* limits, defaults resolved */
	bool head_req;             /* the request was HEAD: no body whatever the headers say */
	enum http_pstate st;       /* where we are */
	int status;                /* status code (after HTTP_EV_HEAD) */
	int minor;                 /* HTTP/1.minor */
	bool keep_alive;           /* the connection may carry another request afterwards */
	bool chunked;              /* body is chunked */
	uint64_t content_length;   /* Content-Length value when present */
	bool has_length;           /* a Content-Length header was present */
	uint64_t left;             /* bytes left in this chunk or Content-Length body */
	uint64_t body;             /* body bytes delivered so far */
	unsigned chunk_digits;     /* hex digits read for this chunk size */
	size_t line;               /* bytes in the current chunk-size/trailer line */
	size_t trailer_bytes;      /* trailer bytes so far (counted against max_head) */
	bool cr;                   /* trailers: the previous byte was CR */
	size_t hlen;               /* bytes in head[] */
	unsigned nhdr;             /* headers in hdr[] */
	struct http_hdr hdr[HTTP_HEADERS_MAX]; /* parsed headers */
	char head[HTTP_HEAD_MAX];  /* the raw header block, rewritten in place by the parse */
};

/* Reset p for a new response. lim may be NULL (defaults). head_req: the request was
 * HEAD. */
void http_parser_init(struct http_parser *p, const struct http_limits *lim, bool head_req);

/* Feed buf[0..n). Returns the bytes consumed (0..n) and sets *ev to one event; call again
 * with the rest while bytes remain. Returns -errno on a protocol error (-EPROTO, or
 * -EMSGSIZE for a limit) with e saying what, and stays failed. */
long http_parse(struct http_parser *p, const char *buf, size_t n, struct http_ev *ev,
		struct err *e);

/* The peer closed the connection. Returns 0 with *ev DONE when the body was delimited
 * by the close (and the response is complete then); -ECONNRESET when not one byte of
 * the response had arrived (a kept-alive connection the server had already closed: an
 * idempotent request may be retried on a new one); -EPROTO ("truncated") otherwise. */
int http_parse_eof(struct http_parser *p, struct http_ev *ev, struct err *e);

/* Value of header `name` (case-insensitive) after HTTP_EV_HEAD, or NULL. The first one
 * wins when a header is repeated. */
const char *http_header(const struct http_parser *p, const char *name);

/* ---- client calls over a conn ------------------------------------------------------- */

struct http_resp {
	int status;             /* status code */
	bool keep_alive;        /* the conn can be reused for the next request */
	char *body;             /* body, malloc'd and NUL-terminated (also when empty) */
	size_t body_len;        /* body bytes (without the NUL) */
	struct http_parser p;   /* the parser, for http_header(&resp->p, ...) */
};

/* Send req on c and read the whole response (within c's timeouts) into resp. Returns 0
 * with resp filled (any status: 4xx/5xx are not errors here), or -errno with e: the
 * conn's read/write errors (-ETIMEDOUT, -EPIPE, ...), -ECONNRESET when the peer closed
 * before answering, -EPROTO for a malformed or truncated response, -EMSGSIZE for a
 * limit. Free with http_resp_free(), also after an error. lim may be NULL. */
int http_do(struct conn *c, const struct http_req *req, struct http_resp *resp,
	    const struct http_limits *lim, struct err *e);
void http_resp_free(struct http_resp *resp);

/* A response body read as it arrives (watches). */
struct http_stream {
	struct conn *c;           /* the connection (not owned) */
	struct http_parser p;     /* the parser; p.status and http_header(&s->p, ...) */
	bool eof;                 /* the peer closed */
	size_t roff;              /* next unparsed byte in rbuf */
	size_t rlen;              /* bytes in rbuf */
	const char *pend;         /* body piece parsed ahead by http_stream_buffered() */
	size_t pend_len;          /* its length; 0 when none */
	struct err err;           /* error found ahead by http_stream_buffered(), sticky */
	char rbuf[16384];         /* bytes read from c, not yet parsed */
};

/* Send req and read up to the end of the headers. Returns 0 (s->p.status tells the
 * status; the body is read with http_stream_next()), or -errno with e. */
int http_stream_open(struct http_stream *s, struct conn *c, const struct http_req *req,
		     const struct http_limits *lim, struct err *e);
/* Next piece of the body: returns 1 with *data and *len (valid until the next call; pieces
 * do not follow chunk or event boundaries), 0 at the end of the body, -errno on error
 * (a read timeout is -ETIMEDOUT and the stream may be retried). */
int http_stream_next(struct http_stream *s, const char **data, size_t *len, struct err *e);
/* True when http_stream_next() will answer without waiting on the socket: a body piece
 * or the end is already parsed from buffered bytes, an error is known, the peer closed,
 * or the transport holds decrypted bytes. An event loop checks this before it waits for
 * conn_fd() to become readable. (May parse buffered bytes ahead; never reads.) */
bool http_stream_buffered(struct http_stream *s);

#endif
