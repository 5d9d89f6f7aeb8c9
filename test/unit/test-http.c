/* Unit tests for kube/http: request head, percent-encoding, the incremental response
 * parser fed in every split (chunked edge cases, limits, truncation, framing errors),
 * keep-alive reuse of one conn over a socketpair, the streaming reader, and a real
 * peer: python3's http.server parsing our requests and sending chunked replies. */
#include "kube/conn.h"
#include "kube/http.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_req_head(void)
{
	char buf[512];
	size_t n;
	struct err e = { 0 };
	struct http_req r = { .method = "GET",
			      .target = "/api/v1/pods?labelSelector=a%3Db",
			      .host = "198.18.0.1:6443",
			      .token = "tok123" };
	T_EQ(http_req_head(&r, buf, sizeof(buf), &n, &e), 0);
	buf[n] = '\0';
	T_STREQ(buf, "GET /api/v1/pods?labelSelector=a%3Db HTTP/1.1\r\n"
		     "Host: 198.18.0.1:6443\r\n"
		     "User-Agent: kvnet/" KVNET_VERSION "\r\n"
		     "Accept: application/json\r\n"
		     "Authorization: Bearer tok123\r\n"
		     "Connection: keep-alive\r\n\r\n");
	struct http_req p = { .method = "PATCH",
			      .target = "/apis/kvnet.io/v1/ipamblocks/b1",
			      .host = "h",
			      .content_type = "application/merge-patch+json",
			      .body = "{}",
			      .body_len = 2 };
	T_EQ(http_req_head(&p, buf, sizeof(buf), &n, &e), 0);
	buf[n] = '\0';
	T_STREQ(buf, "PATCH /apis/kvnet.io/v1/ipamblocks/b1 HTTP/1.1\r\nHost: h\r\n"
		     "User-Agent: kvnet/" KVNET_VERSION "\r\nAccept: application/json\r\n"
		     "Content-Type: application/merge-patch+json\r\nContent-Length: 2\r\n"
		     "Connection: keep-alive\r\n\r\n");
	/* header injection and bad targets are refused */
	struct http_req bad = r;
	bad.token = "x\r\nX-Evil: 1";
	T_EQ(http_req_head(&bad, buf, sizeof(buf), &n, &e), -EINVAL);
	bad = r;
	bad.target = "/a b";
	T_EQ(http_req_head(&bad, buf, sizeof(buf), &n, &e), -EINVAL);
	bad = r;
	bad.target = "api";
	T_EQ(http_req_head(&bad, buf, sizeof(buf), &n, &e), -EINVAL);
	bad = r;
	bad.method = "get";
	T_EQ(http_req_head(&bad, buf, sizeof(buf), &n, &e), -EINVAL);
	bad = r;
	bad.host = "h\n";
	T_EQ(http_req_head(&bad, buf, sizeof(buf), &n, &e), -EINVAL);
	/* too small: an error, not a cut request */
	T_EQ(http_req_head(&r, buf, 40, &n, &e), -ENOSPC);
	T_EQ(n, 0);
}

static void test_pct_encode(void)
{
	char buf[128];
	T_EQ(http_pct_encode("kubevirt.io/domain=vm-a,app in (x,y)", buf, sizeof(buf)), 52);
	T_STREQ(buf, "kubevirt.io%2Fdomain%3Dvm-a%2Capp%20in%20%28x%2Cy%29");
	T_EQ(http_pct_encode("a~b_c-d.e", buf, sizeof(buf)), 9);
	T_STREQ(buf, "a~b_c-d.e");
	T_EQ(http_pct_encode("\xc3\xa9&+", buf, sizeof(buf)), 12);
	T_STREQ(buf, "%C3%A9%26%2B");
	T_EQ(http_pct_encode("abc", buf, 3), -ENOSPC);
	T_EQ(http_pct_encode("abc", buf, 4), 3);
	char t[96] = "/api/v1/pods";
	T_EQ(http_query_add(t, sizeof(t), "labelSelector", "kubevirt.io=virt-launcher"), 0);
	T_EQ(http_query_add(t, sizeof(t), "watch", "1"), 0);
	T_STREQ(t, "/api/v1/pods?labelSelector=kubevirt.io%3Dvirt-launcher&watch=1");
	T_EQ(http_query_add(t, 70, "resourceVersion", "12345"), -ENOSPC);
	T_STREQ(t, "/api/v1/pods?labelSelector=kubevirt.io%3Dvirt-launcher&watch=1");
}

/* ---- the parser, fed in pieces ------------------------------------------------------ */

struct result {
	int rc;              /* 0 or the first error */
	int status;          /* status code seen */
	bool keep_alive;     /* decision */
	bool head_seen;      /* HTTP_EV_HEAD came */
	bool done;           /* HTTP_EV_DONE came */
	size_t leftover;     /* bytes not consumed after DONE */
	char body[4096];     /* body collected */
	size_t body_len;
	char ctype[64];      /* Content-Type header */
	char msg[ERR_MSG_MAX];
};

/* Feed s[0..n) in pieces: the cut points are given by cuts[] (ascending) or, with step,
 * every step bytes. eof: signal the close afterwards. */
static void run_parser(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t step,
		       bool eof, const struct http_limits *lim, bool head_req, struct result *res)
{
	struct http_parser *p = malloc(sizeof(*p));
	struct err e = { 0 };
	memset(res, 0, sizeof(*res));
	http_parser_init(p, lim, head_req);
	size_t at = 0, ci = 0;
	while (at < n && !res->done) {
		size_t to = step ? at + step : (ci < ncuts ? cuts[ci++] : n);
		if (to > n)
			to = n;
		/* a private copy, so a read past the piece is caught by ASan */
		size_t len = to - at;
		char *piece = malloc(len ? len : 1);
		memcpy(piece, s + at, len);
		size_t off = 0;
		for (;;) {
			struct http_ev ev;
			long k = http_parse(p, piece + off, len - off, &ev, &e);
			if (k < 0) {
				res->rc = (int)k;
				goto out;
			}
			off += (size_t)k;
			if (ev.type == HTTP_EV_HEAD) {
				res->head_seen = true;
				const char *ct = http_header(p, "content-type");
				snprintf(res->ctype, sizeof(res->ctype), "%s", ct ? ct : "");
			}
			if (ev.type == HTTP_EV_DATA) {
				if (res->body_len + ev.len < sizeof(res->body)) {
					memcpy(res->body + res->body_len, ev.data, ev.len);
					res->body_len += ev.len;
				}
			}
			if (ev.type == HTTP_EV_DONE) {
				res->done = true;
				res->leftover = (len - off) + (n - to);
				break;
			}
			if (ev.type == HTTP_EV_MORE)
				break;
		}
		free(piece);
		piece = NULL;
		at = to;
		continue;
	out:
		free(piece);
		break;
	}
	if (!res->rc && !res->done && eof) {
		struct http_ev ev;
		res->rc = http_parse_eof(p, &ev, &e);
		res->done = !res->rc && ev.type == HTTP_EV_DONE;
	}
	res->status = p->status;
	res->keep_alive = p->keep_alive;
	snprintf(res->msg, sizeof(res->msg), "%s", e.msg);
	free(p);
}

static void parse_whole(const char *s, bool eof, struct result *res)
{
	run_parser(s, strlen(s), NULL, 0, 0, eof, NULL, false, res);
}

/* Same outcome whether fed whole, one byte at a time, or cut at any single point. */
static void check_all_splits(const char *s, bool eof, const struct result *want)
{
	size_t n = strlen(s);
	struct result *r = malloc(sizeof(*r));
	run_parser(s, n, NULL, 0, 1, eof, NULL, false, r);
	T_EQ(r->rc, want->rc);
	T_EQ(r->body_len, want->body_len);
	T_MEMEQ(r->body, want->body, want->body_len);
	T_EQ(r->done, want->done);
	for (size_t cut = 1; cut < n; cut++) {
		run_parser(s, n, &cut, 1, 0, eof, NULL, false, r);
		if (r->rc != want->rc || r->body_len != want->body_len ||
		    memcmp(r->body, want->body, want->body_len) != 0 || r->done != want->done) {
			t_note("split at %zu differs: rc %d body %zu", cut, r->rc, r->body_len);
			T_CHECK(false);
			break;
		}
	}
	free(r);
}

static const char chunked_resp[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: application/json\r\n"
	"Transfer-Encoding: chunked\r\n"
	"\r\n"
	"5;name=value;quoted=\"a;b\"\r\nhello\r\n"
	"1 ; ext\r\n \r\n"
	"A\r\nworld12345\r\n"
	"0;last=1\r\n"
	"X-Trailer: yes\r\n"
	"Another-Trailer: 2\r\n"
	"\r\n";

static void test_chunked_edge_cases(void)
{
	struct result r;
	parse_whole(chunked_resp, false, &r);
	T_EQ(r.rc, 0);
	T_CHECK(r.head_seen && r.done);
	T_EQ(r.status, 200);
	T_CHECK(r.keep_alive);
	T_STREQ(r.ctype, "application/json");
	T_EQ(r.body_len, 16);
	T_MEMEQ(r.body, "hello world12345", 16);
	T_EQ(r.leftover, 0);
	check_all_splits(chunked_resp, false, &r);

	/* upper-case hex, leading zeros, no trailers */
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
		    "000F\r\n0123456789abcde\r\n00\r\n\r\n",
		    false, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.body_len, 15);
	T_CHECK(r.done);
}

static void test_content_length_and_splits(void)
{
	const char *s = "HTTP/1.1 201 Created\r\ncontent-length: 11\r\nX-A:  spaced value \t\r\n\r\n"
			"{\"ok\":true}";
	struct result r;
	parse_whole(s, false, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.status, 201);
	T_CHECK(r.done);
	T_EQ(r.body_len, 11);
	T_MEMEQ(r.body, "{\"ok\":true}", 11);
	check_all_splits(s, false, &r);
	/* header values are trimmed; names are case-insensitive */
	struct http_parser *p = malloc(sizeof(*p));
	struct http_ev ev;
	http_parser_init(p, NULL, false);
	T_CHECK(http_parse(p, s, strlen(s), &ev, NULL) > 0 && ev.type == HTTP_EV_HEAD);
	T_STREQ(http_header(p, "x-a"), "spaced value");
	T_STREQ(http_header(p, "Content-Length"), "11");
	T_CHECK(http_header(p, "missing") == NULL);
	free(p);
	/* bytes after a Content-Length body are not body: they are reported as left over */
	parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabEXTRA", false, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.body_len, 2);
	T_EQ(r.leftover, 5);
	/* zero length: done right after the head */
	parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r);
	T_EQ(r.rc, 0);
	T_CHECK(r.done);
	T_EQ(r.body_len, 0);
}

static void test_truncated_bodies(void)
{
	struct result r;
	const char *mid_chunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
	parse_whole(mid_chunk, true, &r);
	T_EQ(r.rc, -EPROTO);
	T_STREQ(r.msg, "http: response: truncated chunked body");
	check_all_splits(mid_chunk, true, &r);
	/* EOF right before the last chunk, and inside the trailers */
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true,
		    &r);
	T_EQ(r.rc, -EPROTO);
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", true,
		    &r);
	T_EQ(r.rc, -EPROTO);
	/* Content-Length promises more than arrives */
	parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, &r);
	T_EQ(r.rc, -EPROTO);
	T_STREQ(r.msg, "http: response: truncated body (connection closed before Content-Length bytes)");
	/* inside the head; and nothing at all */
	parse_whole("HTTP/1.1 200 OK\r\nContent-Le", true, &r);
	T_EQ(r.rc, -EPROTO);
	parse_whole("", true, &r);
	T_EQ(r.rc, -ECONNRESET);
	T_STREQ(r.msg, "http: response: connection closed before a response arrived");
}

static void test_body_until_close(void)
{
	const char *s = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this";
	struct result r;
	parse_whole(s, true, &r);
	T_EQ(r.rc, 0);
	T_CHECK(r.done);
	T_CHECK(!r.keep_alive);
	T_EQ(r.body_len, 11);
	check_all_splits(s, true, &r);
	/* HTTP/1.1 without framing: also until close, and no reuse */
	parse_whole("HTTP/1.1 200 OK\r\n\r\nxyz", true, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.body_len, 3);
	T_CHECK(!r.keep_alive);
}

static void test_keep_alive_decision(void)
{
	struct result r;
	parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r);
	T_CHECK(r.keep_alive);
	parse_whole("HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 0\r\n\r\n", false,
		    &r);
	T_CHECK(!r.keep_alive);
	parse_whole("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r);
	T_CHECK(!r.keep_alive);
	parse_whole("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		    false, &r);
	T_CHECK(r.keep_alive);
}

static void test_no_body_statuses(void)
{
	struct result r;
	/* 1xx interim responses are skipped */
	const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	parse_whole(s, false, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.status, 200);
	T_EQ(r.body_len, 2);
	check_all_splits(s, false, &r);
	/* 204 and 304 carry no body whatever they say */
	parse_whole("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, &r);
	T_EQ(r.rc, 0);
	T_CHECK(r.done);
	T_EQ(r.body_len, 0);
	/* 3xx is returned as is, with its body */
	parse_whole("HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabc", false,
		    &r);
	T_EQ(r.rc, 0);
	T_EQ(r.status, 302);
	T_EQ(r.body_len, 3);
	/* a HEAD request's response has no body */
	const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
	run_parser(h, strlen(h), NULL, 0, 0, false, NULL, true, &r);
	T_EQ(r.rc, 0);
	T_CHECK(r.done);
	/* a status without a reason phrase is fine */
	parse_whole("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &r);
	T_EQ(r.rc, 0);
	T_EQ(r.status, 200);
}

static void test_limits(void)
{
	struct result r;
	struct http_limits lim = { .max_head = 256, .max_headers = 4, .max_body = 10 };
	char big[1024];
	int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: %0300d\r\n\r\n", 0);
	run_parser(big, (size_t)n, NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
	T_STREQ(r.msg, "http: response: header block larger than the limit");
	const char *many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
	run_parser(many, strlen(many), NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
	const char *cl = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
	run_parser(cl, strlen(cl), NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n";
	run_parser(ch, strlen(ch), NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
	const char *cls = "HTTP/1.0 200 OK\r\n\r\n0123456789A";
	run_parser(cls, strlen(cls), NULL, 0, 0, true, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
	/* exactly at the limit is fine */
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	run_parser(ok, strlen(ok), NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, 0);
	/* trailers count against the head limit */
	char tr[1024];
	n = snprintf(tr, sizeof(tr),
		     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: %0300d\r\n\r\n", 0);
	run_parser(tr, (size_t)n, NULL, 0, 0, false, &lim, false, &r);
	T_EQ(r.rc, -EMSGSIZE);
}

static void test_bad_chunks(void)
{
	static const char *const bad[] = {
		"zz\r\n",                     /* not hex */
		"\r\n",                       /* empty size */
		"-5\r\nhello\r\n0\r\n\r\n",   /* sign */
		"0x5\r\nhello\r\n0\r\n\r\n",  /* prefix */
		"5\nhello\r\n0\r\n\r\n",      /* bare LF after the size */
		"5\r\nhelloX\r\n0\r\n\r\n",   /* data longer than its size */
		"5\r\nhello\n0\r\n\r\n",      /* bare LF after the data */
		"5;a\x01\r\nhello\r\n",       /* control in the extension */
		"0\r\nX: y\n\r\n",            /* bare LF in trailers */
		"0\r\n\rX",                   /* CR without LF at the end */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char s[256];
		snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s",
			 bad[k]);
		struct result r;
		parse_whole(s, true, &r);
		if (r.rc != -EPROTO)
			t_note("case %zu: rc %d", k, r.rc);
		T_EQ(r.rc, -EPROTO);
	}
	/* sizes that overflow 64 bits, or merely exceed the body limit */
	struct result r;
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
		    true, &r);
	T_EQ(r.rc, -EMSGSIZE);
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "00000000000000000001\r\nx\r\n0\r\n\r\n",
		    true, &r);
	T_EQ(r.rc, -EMSGSIZE); /* more than 16 digits is refused even if the value is small */
	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
		    true, &r);
	T_EQ(r.rc, -EMSGSIZE);
	T_STREQ(r.msg, "http: response: body larger than the limit");
}

static void test_bad_heads(void)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 600 Nope\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",          /* bare LF */
		"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",      /* obs-fold */
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"\r\nHTTP/1.1 200 OK\r\n\r\n",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct result r;
		parse_whole(bad[k], true, &r);
		if (r.rc != -EPROTO)
			t_note("case %zu: rc %d (%s)", k, r.rc, r.msg);
		T_EQ(r.rc, -EPROTO);
	}
	/* same Content-Length twice is accepted */
	struct result r;
	parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", false,
		    &r);
	T_EQ(r.rc, 0);
	/* the parser stays failed */
	struct http_parser *p = malloc(sizeof(*p));
	struct http_ev ev;
	http_parser_init(p, NULL, false);
	T_EQ(http_parse(p, "XTTP", 4, &ev, NULL), 4);
	T_EQ(http_parse(p, "\r\n\r\n", 4, &ev, NULL), -EPROTO);
	T_EQ(http_parse(p, "HTTP/1.1 200 OK\r\n\r\n", 19, &ev, NULL), -EPROTO);
	free(p);
}

/* ---- over a conn -------------------------------------------------------------------- */

static void peer_write(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t w = write(fd, s + off, n - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* Read what the client sent (non-blocking drain after it has been written). */
static size_t peer_read(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

static void test_keepalive_socketpair(void)
{
	int sv[2];
	struct conn *c = NULL;
	struct err e = { 0 };
	struct http_resp *resp = calloc(1, sizeof(*resp));
	char got[4096];
	T_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct conn_opts o = { .io_timeout_ms = 5000 };
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	if (!c)
		return;
	struct http_req req = { .method = "GET", .target = "/api/v1/nodes", .host = "api",
				.token = "T" };
	/* first exchange: chunked */
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n");
	T_EQ(http_do(c, &req, resp, NULL, &e), 0);
	T_EQ(resp->status, 200);
	T_CHECK(resp->keep_alive);
	T_STREQ(resp->body, "{\"a\":1}");
	peer_read(sv[1], got, sizeof(got));
	T_CHECK(strncmp(got, "GET /api/v1/nodes HTTP/1.1\r\n", 28) == 0);
	T_CHECK(strstr(got, "\r\nAuthorization: Bearer T\r\n") != NULL);
	http_resp_free(resp);
	/* second exchange on the same conn: Content-Length, with a body sent */
	struct http_req post = { .method = "POST", .target = "/apis/x", .host = "api",
				 .body = "{\"b\":2}", .body_len = 7 };
	peer_write(sv[1], "HTTP/1.1 409 Conflict\r\nContent-Length: 9\r\n\r\n{\"c\":409}");
	T_EQ(http_do(c, &post, resp, NULL, &e), 0);
	T_EQ(resp->status, 409);
	T_STREQ(resp->body, "{\"c\":409}");
	T_CHECK(resp->keep_alive);
	peer_read(sv[1], got, sizeof(got));
	T_CHECK(strncmp(got, "POST /apis/x HTTP/1.1\r\n", 23) == 0);
	T_CHECK(strstr(got, "\r\nContent-Length: 7\r\n") != NULL);
	size_t gl = strlen(got);
	T_CHECK(gl > 7 && strcmp(got + gl - 7, "{\"b\":2}") == 0);
	http_resp_free(resp);
	/* a response followed by stray bytes: complete, but the conn must not be reused */
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK");
	usleep(10000);
	T_EQ(http_do(c, &req, resp, NULL, &e), 0);
	T_STREQ(resp->body, "ok");
	T_CHECK(!resp->keep_alive);
	http_resp_free(resp);
	/* the peer closes mid-chunk: an error naming the request */
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc");
	shutdown(sv[1], SHUT_WR);
	T_EQ(http_do(c, &req, resp, NULL, &e), -EPROTO);
	T_STREQ(e.msg, "http: GET /api/v1/nodes: http: response: truncated chunked body");
	http_resp_free(resp);
	/* and a request on a conn the peer has closed: retryable, and said so */
	T_EQ(http_do(c, &req, resp, NULL, &e), -ECONNRESET);
	T_STREQ(e.msg, "http: GET /api/v1/nodes: http: response: connection closed before a response arrived");
	http_resp_free(resp);
	conn_close(c);
	close(sv[1]);
	free(resp);
}

static void test_read_timeout(void)
{
	int sv[2];
	struct conn *c = NULL;
	struct err e = { 0 };
	struct http_resp *resp = calloc(1, sizeof(*resp));
	T_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct conn_opts o = { .io_timeout_ms = 50 };
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	if (!c)
		return;
	struct http_req req = { .method = "GET", .target = "/", .host = "api" };
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab");
	T_EQ(http_do(c, &req, resp, NULL, &e), -ETIMEDOUT);
	http_resp_free(resp);
	/* the same without a struct err */
	T_EQ(http_do(c, &req, resp, NULL, NULL), -ETIMEDOUT);
	http_resp_free(resp);
	conn_close(c);
	close(sv[1]);
	free(resp);
}

/* Chunk-encode body with the given chunk sizes (the last takes the rest). */
static size_t chunk_encode(const char *body, const size_t *sizes, size_t nsizes, char *out,
			   size_t cap)
{
	size_t n = strlen(body), at = 0, o = 0;
	for (size_t k = 0; at < n; k++) {
		size_t len = k < nsizes ? sizes[k] : n - at;
		if (len > n - at)
			len = n - at;
		o += (size_t)snprintf(out + o, cap - o, "%zx\r\n", len);
		memcpy(out + o, body + at, len);
		o += len;
		o += (size_t)snprintf(out + o, cap - o, "\r\n");
		at += len;
	}
	o += (size_t)snprintf(out + o, cap - o, "0\r\n\r\n");
	return o;
}

static void test_stream_socketpair(void)
{
	int sv[2];
	struct conn *c = NULL;
	struct err e = { 0 };
	struct http_stream *s = calloc(1, sizeof(*s));
	T_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct conn_opts o = { .io_timeout_ms = 5000 };
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	if (!c)
		return;
	const char *body = "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":{}}\n";
	const size_t sizes[] = { 12, 7, 1, 20 };
	char enc[512];
	int hl = snprintf(enc, sizeof(enc), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					    "Transfer-Encoding: chunked\r\n\r\n");
	size_t total = (size_t)hl + chunk_encode(body, sizes, 4, enc + hl, sizeof(enc) - (size_t)hl);
	/* a child writes the response in pieces cut mid-size-line and mid-data */
	const size_t cuts[] = { (size_t)hl + 5, (size_t)hl + 18, (size_t)hl + 19, (size_t)hl + 40,
				total };
	pid_t pid = fork();
	if (pid == 0) {
		size_t at = 0;
		for (size_t k = 0; k < 5; k++) {
			if (write(sv[1], enc + at, cuts[k] - at) < 0)
				_exit(1);
			at = cuts[k];
			usleep(20000);
		}
		_exit(0);
	}
	struct http_req req = { .method = "GET", .target = "/api/v1/pods?watch=1", .host = "a" };
	T_EQ(http_stream_open(s, c, &req, NULL, &e), 0);
	T_EQ(s->p.status, 200);
	T_STREQ(http_header(&s->p, "Content-Type"), "application/json");
	/* the first write ends two bytes into the first chunk: those are a piece already */
	T_CHECK(http_stream_buffered(s));
	char all[256];
	size_t alen = 0;
	const char *d;
	size_t n;
	int r;
	while ((r = http_stream_next(s, &d, &n, &e)) == 1 && alen + n < sizeof(all)) {
		memcpy(all + alen, d, n);
		alen += n;
	}
	T_EQ(r, 0);
	T_CHECK(http_stream_buffered(s)); /* done: next() answers without reading */
	all[alen] = '\0';
	T_STREQ(all, body);
	waitpid(pid, NULL, 0);
	/* the request went out before the stream was read */
	char got[512];
	peer_read(sv[1], got, sizeof(got));
	T_CHECK(strncmp(got, "GET /api/v1/pods?watch=1 HTTP/1.1\r\n", 35) == 0);
	/* the peer closing mid-stream is an error */
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
	T_EQ(http_stream_open(s, c, &req, NULL, &e), 0);
	shutdown(sv[1], SHUT_WR);
	while ((r = http_stream_next(s, &d, &n, &e)) == 1)
		;
	T_EQ(r, -EPROTO);
	T_EQ(http_stream_next(s, &d, &n, &e), -EPROTO);
	conn_close(c);
	close(sv[1]);
	free(s);
}

/* http_stream_buffered(): true only when next() will not wait on the socket. */
static void test_stream_buffered(void)
{
	int sv[2];
	struct conn *c = NULL;
	struct err e = { 0 };
	struct http_stream *s = calloc(1, sizeof(*s));
	const char *d;
	size_t n;
	T_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct conn_opts o = { .io_timeout_ms = 5000 };
	T_EQ(conn_open_fd(&c, sv[0], &o, &e), 0);
	if (!c)
		return;
	struct http_req req = { .method = "GET", .target = "/w", .host = "a" };
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r");
	T_EQ(http_stream_open(s, c, &req, NULL, &e), 0);
	T_CHECK(!http_stream_buffered(s)); /* half a size line: next() would have to read */
	peer_write(sv[1], "\nhello");
	usleep(10000);
	T_EQ(http_stream_next(s, &d, &n, &e), 1);
	T_CHECK(n == 5 && memcmp(d, "hello", 5) == 0);
	T_CHECK(!http_stream_buffered(s));
	peer_write(sv[1], " world!\r\n0\r\n\r\n");
	usleep(10000);
	T_EQ(http_stream_next(s, &d, &n, &e), 1);
	T_CHECK(n == 7 && memcmp(d, " world!", 7) == 0);
	T_CHECK(http_stream_buffered(s)); /* the end is already here */
	T_EQ(http_stream_next(s, &d, &n, &e), 0);
	/* an error found ahead is reported by next(), with its message */
	peer_write(sv[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
	T_EQ(http_stream_open(s, c, &req, NULL, &e), 0);
	T_CHECK(http_stream_buffered(s)); /* read with the head; the error is known */
	T_EQ(http_stream_next(s, &d, &n, &e), -EPROTO);
	T_STREQ(e.msg, "http: response: bad chunk size");
	conn_close(c);
	close(sv[1]);
	free(s);
}

/* python3's http.server on 127.0.0.1: it parses our requests (an independent HTTP
 * implementation), answers two of them on one keep-alive connection with chunked and
 * Content-Length bodies, and reports what it received, which we check. */
static const char pyserver[] =
	"import http.server, socketserver, sys, json\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def log_message(self, *a): pass\n"
	"    def do_GET(self):\n"
	"        seen = {'path': self.path, 'auth': self.headers.get('Authorization'),\n"
	"                'ua': self.headers.get('User-Agent'), 'conn': self.headers.get('Connection'),\n"
	"                'accept': self.headers.get('Accept'), 'port': self.client_address[1]}\n"
	"        body = json.dumps(seen).encode()\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Type', 'application/json')\n"
	"        if self.path.startswith('/chunked'):\n"
	"            self.send_header('Transfer-Encoding', 'chunked')\n"
	"            self.end_headers()\n"
	"            for i in range(0, len(body), 7):\n"
	"                part = body[i:i+7]\n"
	"                self.wfile.write(b'%x;i=%d\\r\\n' % (len(part), i) + part + b'\\r\\n')\n"
	"            self.wfile.write(b'0\\r\\nX-T: 1\\r\\n\\r\\n')\n"
	"        else:\n"
	"            self.send_header('Content-Length', str(len(body)))\n"
	"            self.end_headers()\n"
	"            self.wfile.write(body)\n"
	"    def do_POST(self):\n"
	"        n = int(self.headers['Content-Length'])\n"
	"        got = self.rfile.read(n)\n"
	"        body = json.dumps({'echo': json.loads(got), 'ctype': self.headers.get('Content-Type')}).encode()\n"
	"        self.send_response(201)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"s = socketserver.TCPServer(('127.0.0.1', 0), H)\n"
	"print(s.server_address[1], flush=True)\n"
	"for _ in range(1):\n"
	"    s.handle_request()\n";

static void test_python_peer(void)
{
	int out[2];
	T_EQ(pipe(out), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execlp("python3", "python3", "-c", pyserver, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	char port[16] = "";
	ssize_t n = 0, k;
	while ((size_t)n < sizeof(port) - 1 && (k = read(out[0], port + n, sizeof(port) - 1 - (size_t)n)) > 0) {
		n += k;
		if (memchr(port, '\n', (size_t)n))
			break;
	}
	if (n <= 0) {
		close(out[0]);
		t_skip("python3 server did not start");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	port[n] = '\0';
	port[strcspn(port, "\n")] = '\0';
	struct conn *c = NULL;
	struct err e = { 0 };
	struct conn_opts o = { .io_timeout_ms = 10000 };
	T_EQ(conn_open_tcp(&c, "127.0.0.1", port, &o, &e), 0);
	if (!c) {
		t_note("%s", e.msg);
		close(out[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return;
	}
	struct http_resp *resp = calloc(1, sizeof(*resp));
	char target[128] = "/chunked/pods";
	T_EQ(http_query_add(target, sizeof(target), "labelSelector", "kubevirt.io/domain=vm-a"), 0);
	struct http_req req = { .method = "GET", .target = target, .host = "127.0.0.1",
				.token = "sekret" };
	if (!T_EQ(http_do(c, &req, resp, NULL, &e), 0)) {
		t_note("%s", e.msg);
		goto out;
	}
	T_EQ(resp->status, 200);
	T_CHECK(resp->keep_alive);
	T_CHECK(strstr(resp->body, "\"path\": \"/chunked/pods?labelSelector=kubevirt.io%2Fdomain%3Dvm-a\"") != NULL);
	T_CHECK(strstr(resp->body, "\"auth\": \"Bearer sekret\"") != NULL);
	T_CHECK(strstr(resp->body, "\"ua\": \"kvnet/" KVNET_VERSION "\"") != NULL);
	T_CHECK(strstr(resp->body, "\"conn\": \"keep-alive\"") != NULL);
	T_CHECK(strstr(resp->body, "\"accept\": \"application/json\"") != NULL);
	http_resp_free(resp);
	/* same connection: a POST with a body, answered with Content-Length */
	struct http_req post = { .method = "POST", .target = "/apis/kvnet.io/v1/x",
				 .host = "127.0.0.1", .body = "{\"k\": [1, 2]}", .body_len = 13 };
	T_EQ(http_do(c, &post, resp, NULL, &e), 0);
	if (e.code)
		t_note("%s", e.msg);
	T_EQ(resp->status, 201);
	T_STREQ(resp->body, "{\"echo\": {\"k\": [1, 2]}, \"ctype\": \"application/json\"}");
out:
	http_resp_free(resp);
	free(resp);
	conn_close(c);
	int st = 0;
	waitpid(pid, &st, 0);
	close(out[0]);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	T_RUN(test_req_head);
	T_RUN(test_pct_encode);
	T_RUN(test_chunked_edge_cases);
	T_RUN(test_content_length_and_splits);
	T_RUN(test_truncated_bodies);
	T_RUN(test_body_until_close);
	T_RUN(test_keep_alive_decision);
	T_RUN(test_no_body_statuses);
	T_RUN(test_limits);
	T_RUN(test_bad_chunks);
	T_RUN(test_bad_heads);
	T_RUN(test_keepalive_socketpair);
	T_RUN(test_read_timeout);
	T_RUN(test_stream_socketpair);
	T_RUN(test_stream_buffered);
	T_RUN(test_python_peer);
	return t_done();
}
