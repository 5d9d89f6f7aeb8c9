/* http — the agent's tiny HTTP/1.1 server side: a request-head parser (pure, fuzzed)
 * and a response writer. Only what /healthz, /readyz and /metrics need:
 *
 *   GET|HEAD SP origin-form SP HTTP/1.x CRLF *(field CRLF) CRLF      (no body)
 *
 * A request with a body (Content-Length other than 0, Transfer-Encoding), bare LF line
 * ends, a malformed request line or header field, or a head over AGENT_HTTP_HEAD_MAX is
 * refused; other methods are parsed (the server answers 405). Every answer closes the
 * connection (Connection: close), so there is no pipelining to get wrong.
 *
 * The query (after '?') is kept as sent; agent_http_query_get() finds one parameter in
 * it and percent-decodes it (application/x-www-form-urlencoded: '+' is a space).
 */
#ifndef KVNET_AGENT_HTTP_H
#define KVNET_AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct err;

#define AGENT_HTTP_HEAD_MAX 8192
#define AGENT_HTTP_PATH_MAX 1024

struct agent_http_req {
	char method[16];		 /* "GET", "HEAD", ... (a token) */
	char path[AGENT_HTTP_PATH_MAX];	 /* request target up to '?' */
	char query[AGENT_HTTP_PATH_MAX]; /* what follows the '?' (not decoded), or "" */
	int minor;			 /* HTTP/1.minor */
};

/* Parse a request head from buf[0..len). Returns the head's length (through the blank
 * line) with *out filled, 0 when the head is not complete yet (feed more), or -EPROTO /
 * -EMSGSIZE with e. */
long agent_http_parse(const char *buf, size_t len, struct agent_http_req *out,
		      struct err *e);

/* Find parameter key in query (as agent_http_req.query holds it: "k=v&k2=v2") and
 * write its percent-decoded value, NUL-terminated, into out (cap bytes). 1 when found
 * (the first occurrence), 0 when absent, -EINVAL with e for a malformed escape or a
 * decoded NUL or control byte, -ENAMETOOLONG with e when it does not fit. Pure. */
int agent_http_query_get(const char *query, const char *key, char *out, size_t cap,
			 struct err *e);

/* Write a whole response (status line, Content-Type, Content-Length, Connection: close,
 * body unless head_only) into a malloc'd buffer; NULL when out of memory. */
char *agent_http_response(int status, const char *ctype, const char *body, size_t blen,
			  bool head_only, size_t *len);

#endif
