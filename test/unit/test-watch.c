/* Unit tests for kube/watch: a watch stream made from the KubeVirt fixtures, fed whole,
 * one byte at a time, cut at every single point and in random pieces; the same stream
 * carried in a chunked HTTP body whose chunks do not line up with events; limits, bad
 * events, truncation. */
#include "kube/http.h"
#include "lib/json.h"
#include "kube/watch.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stream: five events, a blank line, one line ending in CRLF. */
static char *stream;
static size_t stream_len;

static const char *const want_types[] = { "ADDED", "MODIFIED", "BOOKMARK", "DELETED", "ERROR" };
static const char *const want_keys[] = { "virt-launcher-vm-a-5cd9t", "vm-a", "rv:2000",
					 "virt-launcher-vm-a-q7x2m", "code:410" };

/* Append {"type":T,"object":<fixture, compacted>}\n to the stream. */
static void add_fixture_event(const char *type, const char *path)
{
	size_t n;
	char *src = t_slurp(path, &n);
	T_CHECK(src != NULL);
	if (!src)
		return;
	struct json_tok *tok = calloc(2048, sizeof(*tok));
	struct json_doc d;
	T_EQ(json_parse(&d, src, n, tok, 2048, 0, NULL), 0);
	char *line = malloc(n + 64);
	struct json_w lw;
	json_w_init(&lw, line, n + 64);
	json_w_obj_begin(&lw);
	json_w_kstr(&lw, "type", type);
	json_w_key(&lw, "object");
	json_w_tok(&lw, &d, 0);
	json_w_obj_end(&lw);
	T_EQ(json_w_finish(&lw, NULL), 0);
	free(tok);
	free(src);
	/* raw append: the stream is not one JSON document */
	size_t ll = strlen(line);
	char *nb = realloc(stream, stream_len + ll + 2);
	memcpy(nb + stream_len, line, ll);
	nb[stream_len + ll] = '\n';
	stream = nb;
	stream_len += ll + 1;
	free(line);
}

static void add_raw(const char *s)
{
	size_t l = strlen(s);
	stream = realloc(stream, stream_len + l + 1);
	memcpy(stream + stream_len, s, l);
	stream_len += l;
}

static void build_stream(void)
{
	add_fixture_event("ADDED", "test/data/fixtures/vm-a.source-pod.json");
	add_fixture_event("MODIFIED", "test/data/fixtures/vm-a.vmi.json");
	add_raw("\n");
	add_raw("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
		"\"metadata\":{\"resourceVersion\":\"2000\",\"annotations\":"
		"{\"k8s.io/initial-events-end\":\"true\"}}}}\r\n");
	add_fixture_event("DELETED", "test/data/fixtures/vm-a.target-pod.json");
	add_raw("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
		"\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 1 "
		"(2000)\",\"reason\":\"Expired\",\"code\":410}}\n");
}

struct seen {
	int n;               /* events seen */
	char types[8][16];   /* their type names */
	char keys[8][64];    /* name, rv:RV or code:N */
	int rc;              /* first error */
};

static void record(struct seen *s, const struct watch_event *ev)
{
	if (s->n >= 8)
		return;
	snprintf(s->types[s->n], sizeof(s->types[0]), "%s", watch_type_name(ev->type));
	const struct json_doc *d = &ev->doc;
	char buf[64] = "";
	int64_t code;
	if (ev->type == WATCH_BOOKMARK) {
		json_str(d, json_find(d, ev->object, "metadata", "resourceVersion", NULL), buf,
			 sizeof(buf));
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "rv:%s", buf);
	} else if (ev->type == WATCH_ERROR) {
		json_int64(d, json_get(d, ev->object, "code"), &code);
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "code:%lld", (long long)code);
	} else {
		json_str(d, json_path(d, ev->object, "metadata.name"), buf, sizeof(buf));
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", buf);
	}
	s->n++;
}

/* Feed one piece (copied, so ASan sees reads outside it). */
static void feed_piece(struct watch_reader *w, const char *p, size_t n, struct seen *s)
{
	char *copy = malloc(n ? n : 1);
	memcpy(copy, p, n);
	size_t off = 0;
	while (off < n && !s->rc) {
		struct watch_event ev;
		struct err e = { 0 };
		long k = watch_feed(w, copy + off, n - off, &ev, &e);
		if (k < 0) {
			s->rc = (int)k;
			t_note("%s", e.msg);
			break;
		}
		off += (size_t)k;
		if (ev.type)
			record(s, &ev);
		else if (off != n)
			s->rc = -999; /* no event means all consumed */
	}
	free(copy);
}

static bool check_seen(const struct seen *s)
{
	bool ok = s->rc == 0 && s->n == 5;
	for (int k = 0; ok && k < 5; k++)
		ok = !strcmp(s->types[k], want_types[k]) && !strcmp(s->keys[k], want_keys[k]);
	return ok;
}

static void test_whole_stream(void)
{
	struct watch_reader w;
	struct seen s = { 0 };
	watch_init(&w, 0, 0);
	feed_piece(&w, stream, stream_len, &s);
	T_EQ(watch_finish(&w, NULL), 0);
	T_EQ(s.rc, 0);
	T_EQ(s.n, 5);
	for (int k = 0; k < s.n && k < 5; k++) {
		T_STREQ(s.types[k], want_types[k]);
		T_STREQ(s.keys[k], want_keys[k]);
	}
	T_EQ(w.events, 5);
	watch_free(&w);
}

static void test_one_byte_at_a_time(void)
{
	struct watch_reader w;
	struct seen s = { 0 };
	watch_init(&w, 0, 0);
	for (size_t k = 0; k < stream_len; k++)
		feed_piece(&w, stream + k, 1, &s);
	T_EQ(watch_finish(&w, NULL), 0);
	T_CHECK(check_seen(&s));
	watch_free(&w);
}

static void test_every_cut_point(void)
{
	size_t bad = 0;
	for (size_t cut = 0; cut <= stream_len; cut++) {
		struct watch_reader w;
		struct seen s = { 0 };
		watch_init(&w, 0, 0);
		feed_piece(&w, stream, cut, &s);
		feed_piece(&w, stream + cut, stream_len - cut, &s);
		if (!check_seen(&s) || watch_finish(&w, NULL) != 0) {
			if (!bad)
				t_note("cut at %zu: rc %d, %d events", cut, s.rc, s.n);
			bad++;
		}
		watch_free(&w);
	}
	T_EQ(bad, 0);
	t_note("%zu cut points checked", stream_len + 1);
}

static void test_random_pieces(void)
{
	uint32_t seed = 12345;
	for (int round = 0; round < 300; round++) {
		struct watch_reader w;
		struct seen s = { 0 };
		watch_init(&w, 0, 0);
		size_t at = 0;
		while (at < stream_len) {
			seed = seed * 1103515245u + 12345u;
			size_t len = 1 + (seed >> 8) % (round % 2 ? 64 : 3000);
			if (len > stream_len - at)
				len = stream_len - at;
			feed_piece(&w, stream + at, len, &s);
			at += len;
		}
		if (!check_seen(&s)) {
			t_note("round %d failed", round);
			T_CHECK(false);
			watch_free(&w);
			break;
		}
		watch_free(&w);
	}
}

/* The realistic pipeline: chunked HTTP body → http_parse → watch_feed, with chunk
 * sizes that cut events anywhere and network reads cut elsewhere again. */
static void test_through_chunked_http(void)
{
	size_t cap = stream_len * 2 + 4096;
	char *wire = malloc(cap);
	size_t o = (size_t)snprintf(wire, cap, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					       "Transfer-Encoding: chunked\r\n\r\n");
	size_t at = 0;
	uint32_t seed = 7;
	while (at < stream_len) {
		seed = seed * 1103515245u + 12345u;
		size_t len = 1 + (seed >> 8) % 700;
		if (len > stream_len - at)
			len = stream_len - at;
		o += (size_t)snprintf(wire + o, cap - o, "%zx\r\n", len);
		memcpy(wire + o, stream + at, len);
		o += len;
		o += (size_t)snprintf(wire + o, cap - o, "\r\n");
		at += len;
	}
	o += (size_t)snprintf(wire + o, cap - o, "0\r\n\r\n");

	struct http_parser *p = malloc(sizeof(*p));
	struct watch_reader w;
	struct seen s = { 0 };
	bool done = false;
	http_parser_init(p, NULL, false);
	watch_init(&w, 1 << 16, 4096);
	at = 0;
	while (at < o && !done && !s.rc) {
		seed = seed * 1103515245u + 12345u;
		size_t len = 1 + (seed >> 8) % 1500; /* one "read" */
		if (len > o - at)
			len = o - at;
		char *rd = malloc(len);
		memcpy(rd, wire + at, len);
		size_t off = 0;
		for (;;) {
			struct http_ev ev;
			long k = http_parse(p, rd + off, len - off, &ev, NULL);
			if (k < 0) {
				s.rc = (int)k;
				break;
			}
			off += (size_t)k;
			if (ev.type == HTTP_EV_DATA)
				feed_piece(&w, ev.data, ev.len, &s);
			if (ev.type == HTTP_EV_DONE)
				done = true;
			if (ev.type == HTTP_EV_DONE || ev.type == HTTP_EV_MORE)
				break;
		}
		free(rd);
		at += len;
	}
	T_CHECK(done);
	T_EQ(watch_finish(&w, NULL), 0);
	T_CHECK(check_seen(&s));
	watch_free(&w);
	free(p);
	free(wire);
}

static void test_limits(void)
{
	struct watch_reader w;
	struct watch_event ev;
	struct err e = { 0 };
	/* a line longer than max_event: an error, also when it arrives in pieces */
	watch_init(&w, 100, 0);
	T_EQ(watch_feed(&w, stream, 60, &ev, &e), 60);
	T_EQ(ev.type, 0);
	T_EQ(watch_feed(&w, stream + 60, 60, &ev, &e), -EMSGSIZE);
	T_STREQ(e.msg, "watch event 1: longer than 100 bytes");
	/* sticky */
	T_EQ(watch_feed(&w, "\n", 1, &ev, &e), -EMSGSIZE);
	watch_free(&w);
	/* exactly max_event bytes is fine */
	const char *ok = "{\"type\":\"ADDED\",\"object\":{}}\n";
	watch_init(&w, strlen(ok) - 1, 0);
	T_EQ(watch_feed(&w, ok, strlen(ok), &ev, &e), (long)strlen(ok));
	T_EQ(ev.type, WATCH_ADDED);
	watch_free(&w);
	watch_init(&w, strlen(ok) - 2, 0);
	T_EQ(watch_feed(&w, ok, strlen(ok), &ev, &e), -EMSGSIZE);
	watch_free(&w);
	/* token limit */
	watch_init(&w, 0, 8);
	T_EQ(watch_feed(&w, stream, stream_len, &ev, &e), -EMSGSIZE);
	T_CHECK(strstr(e.msg, "JSON tokens, limit 8") != NULL);
	watch_free(&w);
}

static void test_bad_events(void)
{
	static const char *const bad[] = {
		"not json\n",
		"[1,2]\n",
		"{\"type\":\"ADDED\"}\n",
		"{\"object\":{}}\n",
		"{\"type\":\"ADDED\",\"object\":[]}\n",
		"{\"type\":\"CREATED\",\"object\":{}}\n",
		"{\"type\":1,\"object\":{}}\n",
		"{\"type\":\"ADDED\",\"object\":{}} trailing\n",
		"{\"type\":\"ADDED\",\"object\":{},}\n",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct watch_reader w;
		struct watch_event ev;
		struct err e = { 0 };
		watch_init(&w, 0, 0);
		long r = watch_feed(&w, bad[k], strlen(bad[k]), &ev, &e);
		if (r != -EINVAL)
			t_note("case %zu: %ld", k, r);
		T_EQ(r, -EINVAL);
		T_CHECK(strncmp(e.msg, "watch event", 11) == 0);
		watch_free(&w);
	}
	struct watch_reader w;
	struct watch_event ev;
	struct err e = { 0 };
	watch_init(&w, 0, 0);
	watch_feed(&w, "{\"type\":\"CREATED\",\"object\":{}}\n", 31, &ev, &e);
	T_STREQ(e.msg, "watch event: unknown type \"CREATED\"");
	watch_free(&w);
	/* errors are errors also without a struct err */
	watch_init(&w, 0, 0);
	T_EQ(watch_feed(&w, "x\n", 2, &ev, NULL), -EINVAL);
	watch_free(&w);
	/* a key written with escapes still names the type */
	watch_init(&w, 0, 0);
	const char *esc = "{\"t\\u0079pe\":\"DEL\\u0045TED\",\"object\":{}}\n";
	T_EQ(watch_feed(&w, esc, strlen(esc), &ev, &e), (long)strlen(esc));
	T_EQ(ev.type, WATCH_DELETED);
	watch_free(&w);
}

static void test_truncated_stream(void)
{
	struct watch_reader w;
	struct watch_event ev;
	struct err e = { 0 };
	watch_init(&w, 0, 0);
	const char *s = "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"ADD";
	T_EQ(watch_feed(&w, s, strlen(s), &ev, &e), 29);
	T_EQ(ev.type, WATCH_ADDED);
	T_EQ(watch_feed(&w, s + 29, strlen(s) - 29, &ev, &e), (long)strlen(s) - 29);
	T_EQ(ev.type, 0);
	T_EQ(watch_finish(&w, &e), -EPROTO);
	T_STREQ(e.msg, "watch: stream ended inside an event (12 bytes)");
	watch_free(&w);
	/* several events in one piece come out one per call */
	watch_init(&w, 0, 0);
	const char *three = "{\"type\":\"ADDED\",\"object\":{}}\n\n{\"type\":\"MODIFIED\",\"object\":{}}\n"
			    "{\"type\":\"DELETED\",\"object\":{}}\n";
	size_t off = 0, n = strlen(three);
	int got = 0;
	while (off < n) {
		long k = watch_feed(&w, three + off, n - off, &ev, &e);
		T_CHECK(k > 0);
		if (k <= 0)
			break;
		off += (size_t)k;
		got += ev.type != 0;
	}
	T_EQ(got, 3);
	T_EQ(watch_finish(&w, &e), 0);
	watch_free(&w);
}

int main(void)
{
	build_stream();
	T_RUN(test_whole_stream);
	T_RUN(test_one_byte_at_a_time);
	T_RUN(test_every_cut_point);
	T_RUN(test_random_pieces);
	T_RUN(test_through_chunked_http);
	T_RUN(test_limits);
	T_RUN(test_bad_events);
	T_RUN(test_truncated_stream);
	free(stream);
	return t_done();
}
