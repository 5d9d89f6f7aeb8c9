/* libFuzzer target for the kube/http response parser: the input (after two bytes that
 * seed the split pattern) is fed whole and again in random pieces; both runs must agree
 * on the outcome and the body bytes, and nothing may read outside the pieces. */
#include "kube/http.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	long rc;          /* 0, or the error */
	bool done;        /* DONE seen */
	int status;       /* status code */
	uint64_t sum;     /* a hash of the body bytes, in order */
	size_t body;      /* body bytes */
};

static void feed(const char *s, size_t n, uint32_t seed, struct outcome *o)
{
	static struct http_parser p; /* large; static keeps it off the fuzzer's stack */
	struct http_limits lim = { .max_head = 1024, .max_headers = 16, .max_body = 1 << 16 };
	memset(o, 0, sizeof(*o));
	http_parser_init(&p, &lim, false);
	size_t at = 0;
	while (at < n && !o->done && !o->rc) {
		size_t len = n - at;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			len = 1 + (seed >> 16) % 17;
			if (len > n - at)
				len = n - at;
		}
		char *piece = malloc(len);
		memcpy(piece, s + at, len);
		size_t off = 0;
		for (;;) {
			struct http_ev ev;
			long k = http_parse(&p, piece + off, len - off, &ev, NULL);
			if (k < 0) {
				o->rc = k;
				break;
			}
			if ((size_t)k > len - off)
				abort();
			off += (size_t)k;
			if (ev.type == HTTP_EV_DATA) {
				if (ev.data < piece || ev.data + ev.len > piece + len)
					abort();
				for (size_t i = 0; i < ev.len; i++)
					o->sum = o->sum * 31 + (uint8_t)ev.data[i];
				o->body += ev.len;
			}
			if (ev.type == HTTP_EV_HEAD && http_header(&p, "content-type"))
				o->sum ^= 1;
			if (ev.type == HTTP_EV_DONE) {
				o->done = true;
				break;
			}
			if (ev.type == HTTP_EV_MORE)
				break;
		}
		free(piece);
		at += len;
	}
	if (!o->rc && !o->done) {
		struct http_ev ev;
		o->rc = http_parse_eof(&p, &ev, NULL);
		o->done = !o->rc;
	}
	o->status = p.status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 1;
	const char *s = (const char *)data + 2;
	size_t n = size - 2;
	struct outcome whole, split;
	feed(s, n, 0, &whole);
	feed(s, n, seed, &split);
	if (whole.rc != split.rc || whole.done != split.done || whole.sum != split.sum ||
	    whole.body != split.body || whole.status != split.status)
		abort(); /* the split must not change the meaning */
	return 0;
}
