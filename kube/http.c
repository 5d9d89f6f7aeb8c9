/* http — HTTP/1.1 request writer, incremental response parser, client calls; see http.h. */
#include "kube/http.h"

#include "kube/conn.h"
#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef KVNET_VERSION
#define KVNET_VERSION "0.0.0"
#endif

#define HTTP_DEFAULT_HEAD 8192
#define HTTP_DEFAULT_HEADERS 48
#define HTTP_DEFAULT_BODY (64ull << 20)
#define HTTP_REQ_HEAD_MAX 8192

/* ---- request ------------------------------------------------------------------------ */

/* A header field value (or request target) must not carry CR, LF or other controls. */
static bool field_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

static bool target_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

static bool method_ok(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < 'A' || *p > 'Z')
			return false;
	return true;
}

int http_req_head(const struct http_req *r, char *buf, size_t cap, size_t *len,
		  struct err *e)
{
	*len = 0;
	if (!r->method || !method_ok(r->method))
		return err_setx(e, EINVAL, "http: request: bad or missing method");
	if (!r->target || !target_ok(r->target))
		return err_setx(e, EINVAL,
				"http: request: target must start with '/' and be encoded");
	if (!r->host || !*r->host || !field_ok(r->host) || strchr(r->host, ' '))
		return err_setx(e, EINVAL, "http: request: bad or missing host");
	const char *accept = r->accept ? r->accept : "application/json";
	const char *ctype = r->content_type ? r->content_type : "application/json";
	if (!field_ok(accept) || !field_ok(ctype) || (r->token && !field_ok(r->token)))
		return err_setx(e, EINVAL, "http: request: control character in a header");
	bool has_body = r->body || !strcmp(r->method, "POST") || !strcmp(r->method, "PUT") ||
			!strcmp(r->method, "PATCH");
	int n = snprintf(buf, cap,
			 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kvnet/" KVNET_VERSION
			 "\r\nAccept: %s\r\n",
			 r->method, r->target, r->host, accept);
	size_t off = n < 0 ? cap : (size_t)n;
	if (off < cap && r->token) {
		n = snprintf(buf + off, cap - off, "Authorization: Bearer %s\r\n", r->token);
		off = n < 0 ? cap : off + (size_t)n;
	}
	if (off < cap && has_body) {
		n = snprintf(buf + off, cap - off, "Content-Type: %s\r\nContent-Length: %zu\r\n",
			     ctype, r->body ? r->body_len : 0);
		off = n < 0 ? cap : off + (size_t)n;
	}
	if (off < cap) {
		n = snprintf(buf + off, cap - off, "Connection: keep-alive\r\n\r\n");
		off = n < 0 ? cap : off + (size_t)n;
	}
	if (off >= cap)
		return err_setx(e, ENOSPC, "http: request: head larger than %zu bytes", cap);
	*len = off;
	return 0;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

long http_pct_encode(const char *s, char *buf, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		size_t need = unreserved(*p) ? 1 : 3;
		if (o + need >= cap) {
			if (cap)
				buf[0] = '\0';
			return -ENOSPC;
		}
		if (need == 1) {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	if (o >= cap)
		return -ENOSPC;
	buf[o] = '\0';
	return (long)o;
}

int http_query_add(char *buf, size_t cap, const char *key, const char *value)
{
	size_t n = strnlen(buf, cap);
	if (n + 1 >= cap)
		return -ENOSPC;
	char sep = strchr(buf, '?') ? '&' : '?';
	size_t off = n;
	buf[off++] = sep;
	long k = http_pct_encode(key, buf + off, cap - off);
	if (k < 0)
		goto full;
	off += (size_t)k;
	if (off + 1 >= cap)
		goto full;
	buf[off++] = '=';
	long v = http_pct_encode(value, buf + off, cap - off);
	if (v < 0)
		goto full;
	return 0;
full:
	buf[n] = '\0';
	return -ENOSPC;
}

/* ---- response parser ---------------------------------------------------------------- */

void http_parser_init(struct http_parser *p, const struct http_limits *lim, bool head_req)
{
	memset(p, 0, offsetof(struct http_parser, head));
	p->head[0] = '\0';
	if (lim)
		p->lim = *lim;
	if (!p->lim.max_head)
		p->lim.max_head = HTTP_DEFAULT_HEAD;
	if (p->lim.max_head > HTTP_HEAD_MAX)
		p->lim.max_head = HTTP_HEAD_MAX;
	if (!p->lim.max_headers)
		p->lim.max_headers = HTTP_DEFAULT_HEADERS;
	if (p->lim.max_headers > HTTP_HEADERS_MAX)
		p->lim.max_headers = HTTP_HEADERS_MAX;
	if (!p->lim.max_body)
		p->lim.max_body = HTTP_DEFAULT_BODY;
	p->head_req = head_req;
	p->st = HP_HEAD;
}

static long fail(struct http_parser *p, struct err *e, int code, const char *fmt,
		 const char *arg)
{
	p->st = HP_ERROR;
	p->keep_alive = false;
	char msg[160];
	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	return err_setx(e, code, "http: response: %s", msg);
}

static bool tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

const char *http_header(const struct http_parser *p, const char *name)
{
	for (unsigned i = 0; i < p->nhdr; i++)
		if (strcasecmp(p->head + p->hdr[i].name, name) == 0)
			return p->head + p->hdr[i].value;
	return NULL;
}

/* Does the comma-separated list in every `name` header contain token tok? */
static bool header_has_token(const struct http_parser *p, const char *name, const char *tok)
{
	size_t tl = strlen(tok);
	for (unsigned i = 0; i < p->nhdr; i++) {
		if (strcasecmp(p->head + p->hdr[i].name, name) != 0)
			continue;
		const char *v = p->head + p->hdr[i].value;
		while (*v) {
			while (*v == ' ' || *v == '\t' || *v == ',')
				v++;
			const char *s = v;
			while (*v && *v != ',')
				v++;
			const char *t = v;
			while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
				t--;
			if ((size_t)(t - s) == tl && strncasecmp(s, tok, tl) == 0)
				return true;
		}
	}
	return false;
}

/* The header block head[0..hlen) ends in CRLF CRLF: parse it in place. */
static long parse_head(struct http_parser *p, struct err *e)
{
	char *h = p->head;
	size_t end = p->hlen - 2; /* the final empty line's CRLF */
	/* status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF */
	char *eol = memchr(h, '\r', end);
	if (!eol || eol - h < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[7] < '0' || h[7] > '9' ||
	    h[8] != ' ' || h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' ||
	    h[11] < '0' || h[11] > '9' || (eol - h > 12 && h[12] != ' '))
		return fail(p, e, EPROTO, "malformed status line", NULL);
	for (char *c = h + 12; c < eol; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return fail(p, e, EPROTO, "control character in the status line", NULL);
	p->minor = h[7] - '0';
	p->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
	size_t q = (size_t)(eol - h) + 2;
	p->nhdr = 0;
	while (q < end) {
		char *line = h + q;
		char *cr = memchr(line, '\r', end - q);
		if (!cr)
			return fail(p, e, EPROTO, "malformed header block", NULL);
		if (line[0] == ' ' || line[0] == '\t')
			return fail(p, e, EPROTO, "obsolete line folding in headers", NULL);
		char *c = line;
		while (c < cr && tchar((unsigned char)*c))
			c++;
		if (c == line || c == cr || *c != ':')
			return fail(p, e, EPROTO, "malformed header field", NULL);
		if (p->nhdr >= p->lim.max_headers)
			return fail(p, e, EMSGSIZE, "more than the allowed header fields", NULL);
		*c++ = '\0';
		while (c < cr && (*c == ' ' || *c == '\t'))
			c++;
		char *v = c, *ve = cr;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (char *x = v; x < ve; x++) {
			unsigned char u = (unsigned char)*x;
			if ((u < 0x20 && u != '\t') || u == 0x7f)
				return fail(p, e, EPROTO, "control character in header %s", line);
		}
		*ve = '\0';
		p->hdr[p->nhdr].name = (uint16_t)(line - h);
		p->hdr[p->nhdr].value = (uint16_t)(v - h);
		p->nhdr++;
		q = (size_t)(cr - h) + 2;
	}

	/* framing */
	bool te = false, cl = false;
	uint64_t len = 0;
	for (unsigned i = 0; i < p->nhdr; i++) {
		const char *name = h + p->hdr[i].name, *v = h + p->hdr[i].value;
		if (strcasecmp(name, "transfer-encoding") == 0) {
			if (te || strcasecmp(v, "chunked") != 0)
				return fail(p, e, EPROTO, "unsupported transfer coding '%s'", v);
			te = true;
		} else if (strcasecmp(name, "content-length") == 0) {
			uint64_t x = 0;
			if (!*v)
				return fail(p, e, EPROTO, "empty Content-Length", NULL);
			for (const char *d = v; *d; d++) {
				if (*d < '0' || *d > '9' || x > (UINT64_MAX - 9) / 10)
					return fail(p, e, EPROTO, "bad Content-Length '%s'", v);
				x = x * 10 + (uint64_t)(*d - '0');
			}
			if (cl && x != len)
				return fail(p, e, EPROTO, "conflicting Content-Length headers", NULL);
			cl = true;
			len = x;
		}
	}
	if (te && cl)
		return fail(p, e, EPROTO, "both Transfer-Encoding and Content-Length", NULL);
	if (p->minor == 0 && te)
		return fail(p, e, EPROTO, "chunked coding in an HTTP/1.0 response", NULL);
	p->keep_alive = p->minor >= 1 ? !header_has_token(p, "connection", "close")
				      : header_has_token(p, "connection", "keep-alive");
	p->chunked = te;
	p->has_length = cl;
	p->content_length = len;
	if (p->status == 101)
		return fail(p, e, EPROTO, "unexpected protocol switch", NULL);
	if (p->head_req || p->status == 204 || p->status == 304) {
		p->st = HP_DONE;
	} else if (te) {
		p->st = HP_CHUNK_SIZE;
	} else if (cl) {
		if (len > p->lim.max_body)
			return fail(p, e, EMSGSIZE, "body larger than the limit", NULL);
		p->left = len;
		p->st = len ? HP_BODY_LEN : HP_DONE;
	} else {
		p->st = HP_BODY_CLOSE;
		p->keep_alive = false;
	}
	return 0;
}

static long take_data(struct http_parser *p, const char *buf, size_t n, struct http_ev *ev,
		      struct err *e)
{
	if (p->body + n > p->lim.max_body || p->body + n < p->body)
		return fail(p, e, EMSGSIZE, "body larger than the limit", NULL);
	p->body += n;
	ev->type = HTTP_EV_DATA;
	ev->data = buf;
	ev->len = n;
	return (long)n;
}

long http_parse(struct http_parser *p, const char *buf, size_t n, struct http_ev *ev,
		struct err *e)
{
	size_t i = 0;
	ev->type = HTTP_EV_MORE;
	ev->data = NULL;
	ev->len = 0;
	while (i < n || p->st == HP_DONE || p->st == HP_ERROR) {
		unsigned char c = i < n ? (unsigned char)buf[i] : 0;
		switch (p->st) {
		case HP_ERROR:
			return err_setx(e, EPROTO, "http: response: parser used after an error");
		case HP_DONE:
			ev->type = HTTP_EV_DONE;
			return (long)i;
		case HP_HEAD:
			if (p->hlen + 1 > p->lim.max_head)
				return fail(p, e, EMSGSIZE, "header block larger than the limit",
					    NULL);
			if (c == '\n' && (p->hlen == 0 || p->head[p->hlen - 1] != '\r'))
				return fail(p, e, EPROTO, "bare LF in the header block", NULL);
			if (p->hlen > 0 && p->head[p->hlen - 1] == '\r' && c != '\n')
				return fail(p, e, EPROTO, "CR without LF in the header block", NULL);
			if (c == 0)
				return fail(p, e, EPROTO, "NUL in the header block", NULL);
			p->head[p->hlen++] = (char)c;
			i++;
			if (p->hlen >= 4 && memcmp(p->head + p->hlen - 4, "\r\n\r\n", 4) == 0) {
				if (p->hlen == 4)
					return fail(p, e, EPROTO, "empty response", NULL);
				long r = parse_head(p, e);
				if (r < 0)
					return r;
				if (p->status < 200) {
					/* interim response: forget it, read the next head */
					p->hlen = 0;
					p->nhdr = 0;
					p->st = HP_HEAD;
					continue;
				}
				ev->type = HTTP_EV_HEAD;
				return (long)i;
			}
			if (p->hlen == 2 && p->head[1] == '\n')
				return fail(p, e, EPROTO, "empty line before the status line", NULL);
			break;
		case HP_BODY_LEN: {
			size_t k = n - i;
			if (k > p->left)
				k = (size_t)p->left;
			p->left -= k;
			if (p->left == 0)
				p->st = HP_DONE;
			long r = take_data(p, buf + i, k, ev, e);
			return r < 0 ? r : (long)i + r;
		}
		case HP_BODY_CLOSE: {
			long r = take_data(p, buf + i, n - i, ev, e);
			return r < 0 ? r : (long)i + r;
		}
		case HP_CHUNK_SIZE: {
			int h = (c >= '0' && c <= '9')   ? c - '0'
				: (c >= 'a' && c <= 'f') ? c - 'a' + 10
				: (c >= 'A' && c <= 'F') ? c - 'A' + 10
							 : -1;
			if (h >= 0) {
				if (p->left > (UINT64_MAX >> 4) || p->chunk_digits >= 16)
					return fail(p, e, EMSGSIZE, "chunk size overflows", NULL);
				p->left = p->left * 16 + (uint64_t)h;
				p->chunk_digits++;
				if (p->left > p->lim.max_body - p->body)
					return fail(p, e, EMSGSIZE, "body larger than the limit",
						    NULL);
				i++;
				break;
			}
			if (p->chunk_digits == 0)
				return fail(p, e, EPROTO, "bad chunk size", NULL);
			if (c == '\r') {
				p->st = HP_CHUNK_LF;
			} else if (c == ';' || c == ' ' || c == '\t') {
				p->st = HP_CHUNK_EXT;
				p->line = 0;
			} else {
				return fail(p, e, EPROTO, "bad chunk size", NULL);
			}
			i++;
			break;
		}
		case HP_CHUNK_EXT:
			if (c == '\r') {
				p->st = HP_CHUNK_LF;
			} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
				return fail(p, e, EPROTO, "bad chunk extension", NULL);
			} else if (++p->line > p->lim.max_head) {
				return fail(p, e, EMSGSIZE, "chunk extension too long", NULL);
			}
			i++;
			break;
		case HP_CHUNK_LF:
			if (c != '\n')
				return fail(p, e, EPROTO, "chunk size line not ended by CRLF", NULL);
			i++;
			if (p->left == 0) {
				p->st = HP_TRAILER;
				p->line = 0;
				p->trailer_bytes = 0;
				p->cr = false;
			} else {
				p->st = HP_CHUNK_DATA;
			}
			break;
		case HP_CHUNK_DATA: {
			size_t k = n - i;
			if (k > p->left)
				k = (size_t)p->left;
			p->left -= k;
			if (p->left == 0)
				p->st = HP_CHUNK_CR;
			long r = take_data(p, buf + i, k, ev, e);
			return r < 0 ? r : (long)i + r;
		}
		case HP_CHUNK_CR:
			if (c != '\r')
				return fail(p, e, EPROTO, "chunk data longer than its size", NULL);
			p->st = HP_CHUNK_DLF;
			i++;
			break;
		case HP_CHUNK_DLF:
			if (c != '\n')
				return fail(p, e, EPROTO, "chunk data not ended by CRLF", NULL);
			p->st = HP_CHUNK_SIZE;
			p->chunk_digits = 0;
			p->left = 0;
			i++;
			break;
		case HP_TRAILER:
			i++;
			if (++p->trailer_bytes > p->lim.max_head)
				return fail(p, e, EMSGSIZE, "trailers larger than the limit", NULL);
			if (p->cr) {
				if (c != '\n')
					return fail(p, e, EPROTO, "CR without LF in trailers", NULL);
				p->cr = false;
				if (p->line == 0) {
					p->st = HP_DONE;
					break;
				}
				p->line = 0;
			} else if (c == '\r') {
				p->cr = true;
			} else if (c == '\n') {
				return fail(p, e, EPROTO, "bare LF in trailers", NULL);
			} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
				return fail(p, e, EPROTO, "control character in trailers", NULL);
			} else {
				p->line++;
			}
			break;
		}
	}
	return (long)i;
}

int http_parse_eof(struct http_parser *p, struct http_ev *ev, struct err *e)
{
	ev->type = HTTP_EV_MORE;
	ev->data = NULL;
	ev->len = 0;
	switch (p->st) {
	case HP_BODY_CLOSE:
		p->st = HP_DONE;
		ev->type = HTTP_EV_DONE;
		return 0;
	case HP_DONE:
		ev->type = HTTP_EV_DONE;
		return 0;
	case HP_HEAD:
		if (p->hlen == 0)
			return (int)fail(p, e, ECONNRESET,
					 "connection closed before a response arrived", NULL);
		return (int)fail(p, e, EPROTO, "connection closed inside the headers", NULL);
	case HP_ERROR:
		return err_setx(e, EPROTO, "http: response: parser used after an error");
	case HP_BODY_LEN:
		return (int)fail(p, e, EPROTO, "truncated body (connection closed before "
					       "Content-Length bytes)", NULL);
	case HP_CHUNK_SIZE:
	case HP_CHUNK_EXT:
	case HP_CHUNK_LF:
	case HP_CHUNK_DATA:
	case HP_CHUNK_CR:
	case HP_CHUNK_DLF:
	case HP_TRAILER:
		return (int)fail(p, e, EPROTO, "truncated chunked body", NULL);
	}
	return (int)fail(p, e, EPROTO, "bad parser state", NULL);
}

/* ---- client ------------------------------------------------------------------------- */

static int send_req(struct conn *c, const struct http_req *req, struct err *e)
{
	char head[HTTP_REQ_HEAD_MAX];
	size_t n;
	int r = http_req_head(req, head, sizeof(head), &n, e);
	if (r)
		return r;
	r = conn_write(c, head, n, e);
	if (!r && req->body && req->body_len)
		r = conn_write(c, req->body, req->body_len, e);
	if (r)
		err_prefix(e, "http: %s %s: send", req->method, req->target);
	return r;
}

static int body_append(struct http_resp *resp, size_t *cap, const char *d, size_t n,
		       struct err *e)
{
	if (resp->body_len + n + 1 > *cap) {
		size_t want = *cap ? *cap : 4096;
		while (want < resp->body_len + n + 1)
			want *= 2;
		char *nb = realloc(resp->body, want);
		if (!nb)
			return err_setx(e, ENOMEM, "http: response body: out of memory");
		resp->body = nb;
		*cap = want;
	}
	memcpy(resp->body + resp->body_len, d, n);
	resp->body_len += n;
	resp->body[resp->body_len] = '\0';
	return 0;
}

int http_do(struct conn *c, const struct http_req *req, struct http_resp *resp,
	    const struct http_limits *lim, struct err *e)
{
	char rbuf[16384];
	size_t cap = 0;
	int r;
	memset(resp, 0, offsetof(struct http_resp, p));
	http_parser_init(&resp->p, lim, req->method && !strcmp(req->method, "HEAD"));
	r = send_req(c, req, e);
	if (r)
		return r;
	for (;;) {
		ssize_t got = conn_read(c, rbuf, sizeof(rbuf), e);
		struct http_ev ev;
		if (got < 0) {
			r = (int)got;
			goto fail;
		}
		if (got == 0) {
			r = http_parse_eof(&resp->p, &ev, e);
			if (r)
				goto fail;
			resp->p.keep_alive = false;
			break;
		}
		size_t off = 0;
		bool done = false;
		for (;;) {
			long k = http_parse(&resp->p, rbuf + off, (size_t)got - off, &ev, e);
			if (k < 0) {
				r = (int)k;
				goto fail;
			}
			off += (size_t)k;
			if (ev.type == HTTP_EV_DATA && (r = body_append(resp, &cap, ev.data, ev.len, e)))
				goto fail;
			if (ev.type == HTTP_EV_DONE) {
				done = true;
				break;
			}
			if (ev.type == HTTP_EV_MORE)
				break;
		}
		if (done) {
			if (off != (size_t)got || conn_pending(c))
				resp->p.keep_alive = false; /* stray bytes after the response */
			break;
		}
	}
	if (!resp->body && (r = body_append(resp, &cap, "", 0, e)))
		goto fail;
	resp->status = resp->p.status;
	resp->keep_alive = resp->p.keep_alive;
	return 0;
fail:
	resp->keep_alive = false;
	resp->status = resp->p.status;
	err_prefix(e, "http: %s %s", req->method, req->target);
	return r;
}

void http_resp_free(struct http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

/* Fill rbuf when empty: 1 read, 0 EOF, -errno. */
static int stream_fill(struct http_stream *s, struct err *e)
{
	if (s->roff < s->rlen)
		return 1;
	if (s->eof)
		return 0;
	ssize_t got = conn_read(s->c, s->rbuf, sizeof(s->rbuf), e);
	if (got < 0)
		return (int)got;
	s->roff = 0;
	s->rlen = (size_t)got;
	if (got == 0) {
		s->eof = true;
		return 0;
	}
	return 1;
}

int http_stream_open(struct http_stream *s, struct conn *c, const struct http_req *req,
		     const struct http_limits *lim, struct err *e)
{
	s->c = c;
	s->eof = false;
	s->roff = s->rlen = 0;
	s->pend = NULL;
	s->pend_len = 0;
	err_clear(&s->err);
	http_parser_init(&s->p, lim, req->method && !strcmp(req->method, "HEAD"));
	int r = send_req(c, req, e);
	if (r)
		return r;
	for (;;) {
		struct http_ev ev;
		r = stream_fill(s, e);
		if (r < 0)
			goto fail;
		if (r == 0) {
			r = http_parse_eof(&s->p, &ev, e);
			goto fail;
		}
		long k = http_parse(&s->p, s->rbuf + s->roff, s->rlen - s->roff, &ev, e);
		if (k < 0) {
			r = (int)k;
			goto fail;
		}
		s->roff += (size_t)k;
		if (ev.type == HTTP_EV_HEAD)
			return 0;
	}
fail:
	if (r == 0)
		r = err_setx(e, EPROTO, "http: response: no headers");
	err_prefix(e, "http: %s %s", req->method, req->target);
	return r;
}

/* Work on bytes already in rbuf only: 1 when a piece is pending or the body is done,
 * 0 when more bytes must be read, -errno on a protocol error. */
static int stream_step(struct http_stream *s, struct err *e)
{
	while (!s->pend_len && s->p.st != HP_DONE && s->roff < s->rlen) {
		struct http_ev ev;
		long k = http_parse(&s->p, s->rbuf + s->roff, s->rlen - s->roff, &ev, e);
		if (k < 0)
			return (int)k;
		s->roff += (size_t)k;
		if (ev.type == HTTP_EV_DATA && ev.len) {
			s->pend = ev.data;
			s->pend_len = ev.len;
		}
	}
	return s->pend_len || s->p.st == HP_DONE;
}

int http_stream_next(struct http_stream *s, const char **data, size_t *len, struct err *e)
{
	*data = NULL;
	*len = 0;
	if (s->err.code) {
		if (e)
			*e = s->err;
		return -s->err.code;
	}
	for (;;) {
		int r = stream_step(s, e);
		if (r < 0)
			return r;
		if (s->pend_len) {
			*data = s->pend;
			*len = s->pend_len;
			s->pend_len = 0;
			return 1;
		}
		if (s->p.st == HP_DONE)
			return 0;
		r = stream_fill(s, e);
		if (r < 0)
			return r;
		if (r == 0) {
			struct http_ev ev;
			r = http_parse_eof(&s->p, &ev, e);
			return r < 0 ? r : 0;
		}
	}
}

bool http_stream_buffered(struct http_stream *s)
{
	if (s->err.code)
		return true;
	if (stream_step(s, &s->err) != 0)
		return true; /* a piece, the end, or an error next() will report at once */
	return s->eof || conn_pending(s->c);
}
