/* http — request-head parser and response writer for the agent's HTTP endpoints. */
#include "agent/http.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Visible characters allowed in a request target (RFC 3986 + '%'). */
static bool target_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("\"<>\\^`{|}", c);
}

long agent_http_parse(const char *buf, size_t len, struct agent_http_req *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	/* find the end of the head: CRLF CRLF; a bare LF anywhere is an error */
	size_t end = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return err_setx(e, EPROTO, "http request: bare LF at byte %zu", i);
			if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
				end = i + 1;
				break;
			}
		}
		if (i + 1 >= AGENT_HTTP_HEAD_MAX)
			return err_setx(e, EMSGSIZE, "http request: head over %d bytes",
					AGENT_HTTP_HEAD_MAX);
	}
	if (!end)
		return 0;
	/* request line: method SP target SP HTTP/1.x CRLF */
	size_t p = 0, m = 0;
	while (p < end && tchar((unsigned char)buf[p])) {
		if (m + 1 >= sizeof(out->method))
			return err_setx(e, EPROTO, "http request: method too long");
		out->method[m++] = buf[p++];
	}
	if (m == 0 || buf[p] != ' ')
		return err_setx(e, EPROTO, "http request: bad method");
	p++;
	size_t t = 0, qn = 0;
	bool query = false;
	if (buf[p] != '/')
		return err_setx(e, EPROTO, "http request: target is not an absolute path");
	while (p < end && target_char((unsigned char)buf[p])) {
		if (!query && buf[p] == '?') {
			query = true;
		} else if (!query) {
			if (t + 1 >= sizeof(out->path))
				return err_setx(e, EPROTO, "http request: path too long");
			out->path[t++] = buf[p];
		} else {
			if (qn + 1 >= sizeof(out->query))
				return err_setx(e, EPROTO, "http request: query too long");
			out->query[qn++] = buf[p];
		}
		p++;
	}
	if (buf[p] != ' ')
		return err_setx(e, EPROTO, "http request: bad request target");
	p++;
	if (end - p < 10 || memcmp(buf + p, "HTTP/1.", 7) != 0 || buf[p + 7] < '0' ||
	    buf[p + 7] > '9' || buf[p + 8] != '\r' || buf[p + 9] != '\n')
		return err_setx(e, EPROTO, "http request: bad version");
	out->minor = buf[p + 7] - '0';
	p += 10;
	/* header fields: name ":" OWS value OWS CRLF */
	unsigned nh = 0;
	while (p + 2 <= end && !(buf[p] == '\r' && buf[p + 1] == '\n')) {
		if (++nh > 64)
			return err_setx(e, EPROTO, "http request: more than 64 header fields");
		size_t n0 = p;
		while (p < end && tchar((unsigned char)buf[p]))
			p++;
		size_t nlen = p - n0;
		if (nlen == 0 || buf[p] != ':')
			return err_setx(e, EPROTO, "http request: malformed header field");
		p++;
		while (buf[p] == ' ' || buf[p] == '\t')
			p++;
		size_t v0 = p;
		while (p < end && buf[p] != '\r') {
			unsigned char c = (unsigned char)buf[p];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return err_setx(e, EPROTO, "http request: control byte in a header");
			p++;
		}
		size_t vend = p;
		while (vend > v0 && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
			vend--;
		if (p + 1 >= end || buf[p + 1] != '\n')
			return err_setx(e, EPROTO, "http request: malformed header line");
		p += 2;
		if (nlen == 17 && strncasecmp(buf + n0, "transfer-encoding", 17) == 0)
			return err_setx(e, EPROTO, "http request: a body is not accepted");
		if (nlen == 14 && strncasecmp(buf + n0, "content-length", 14) == 0 &&
		    !(vend - v0 == 1 && buf[v0] == '0'))
			return err_setx(e, EPROTO, "http request: a body is not accepted");
	}
	return (long)end;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int agent_http_query_get(const char *query, const char *key, char *out, size_t cap,
			 struct err *e)
{
	size_t klen = strlen(key);
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		if (plen > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t o = 0;
			for (size_t i = klen + 1; i < plen; i++) {
				int c = (unsigned char)p[i];
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int hi = i + 2 < plen ? hexval((unsigned char)p[i + 1]) : -1;
					int lo = hi >= 0 ? hexval((unsigned char)p[i + 2]) : -1;
					if (lo < 0)
						return err_setx(e, EINVAL,
								"query %s: bad %%-escape", key);
					c = hi << 4 | lo;
					i += 2;
				}
				if (c < 0x20 || c == 0x7f)
					return err_setx(e, EINVAL, "query %s: control byte 0x%02x",
							key, c);
				if (o + 1 >= cap)
					return err_setx(e, ENAMETOOLONG,
							"query %s: value over %zu bytes", key,
							cap ? cap - 1 : 0);
				out[o++] = (char)c;
			}
			if (cap)
				out[o] = 0;
			return cap ? 1 : err_setx(e, ENAMETOOLONG, "query %s: no room", key);
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	}
	return "Error";
}

char *agent_http_response(int status, const char *ctype, const char *body, size_t blen,
			  bool head_only, size_t *len)
{
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 status, reason(status), ctype, blen,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (h < 0 || (size_t)h >= sizeof(head))
		return NULL;
	size_t total = (size_t)h + (head_only ? 0 : blen);
	char *out = malloc(total + 1);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)h);
	if (!head_only && blen)
		memcpy(out + h, body, blen);
	out[total] = 0;
	*len = total;
	return out;
}
