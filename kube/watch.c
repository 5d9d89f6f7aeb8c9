/* watch — watch-event stream reader; see watch.h. */
#include "kube/watch.h"

#include "lib/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_DEFAULT_EVENT (4u << 20)
#define WATCH_DEFAULT_TOKENS (1u << 18)
#define WATCH_FIRST_TOKENS 512u

void watch_init(struct watch_reader *w, size_t max_event, unsigned max_tokens)
{
	memset(w, 0, sizeof(*w));
	w->max_event = max_event ? max_event : WATCH_DEFAULT_EVENT;
	w->max_tokens = max_tokens ? max_tokens : WATCH_DEFAULT_TOKENS;
}

void watch_free(struct watch_reader *w)
{
	free(w->buf);
	free(w->tok);
	w->buf = NULL;
	w->tok = NULL;
	w->len = 0;
	w->ntok = 0;
}

const char *watch_type_name(enum watch_type t)
{
	switch (t) {
	case WATCH_ADDED:
		return "ADDED";
	case WATCH_MODIFIED:
		return "MODIFIED";
	case WATCH_DELETED:
		return "DELETED";
	case WATCH_BOOKMARK:
		return "BOOKMARK";
	case WATCH_ERROR:
		return "ERROR";
	}
	return "?";
}

int watch_parse_line(const char *line, size_t len, struct json_tok *tok, unsigned cap,
		     struct watch_event *ev, struct err *e)
{
	static const struct {
		const char *name;
		enum watch_type t;
	} types[] = {
		{ "ADDED", WATCH_ADDED },   { "MODIFIED", WATCH_MODIFIED },
		{ "DELETED", WATCH_DELETED }, { "BOOKMARK", WATCH_BOOKMARK },
		{ "ERROR", WATCH_ERROR },
	};
	ev->type = 0;
	ev->object = -1;
	int r = json_parse(&ev->doc, line, len, tok, cap, 0, e);
	if (r) {
		err_prefix(e, "watch event");
		return r;
	}
	if (json_type(&ev->doc, 0) != JSON_OBJECT)
		return err_setx(e, EINVAL, "watch event: not a JSON object");
	int t = json_get(&ev->doc, 0, "type");
	if (json_type(&ev->doc, t) != JSON_STRING)
		return err_setx(e, EINVAL, "watch event: no \"type\" string");
	int obj = json_get(&ev->doc, 0, "object");
	if (json_type(&ev->doc, obj) != JSON_OBJECT)
		return err_setx(e, EINVAL, "watch event: no \"object\" object");
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		if (json_str_eq(&ev->doc, t, types[k].name, strlen(types[k].name))) {
			ev->type = types[k].t;
			ev->object = obj;
			return 0;
		}
	}
	size_t n;
	const char *raw = json_raw(&ev->doc, t, &n);
	return err_setx(e, EINVAL, "watch event: unknown type \"%.*s\"", n > 32 ? 32 : (int)n,
			raw);
}

static int fail(struct watch_reader *w, int r)
{
	w->err = r;
	return r;
}

/* Parse a complete line, growing the token array as needed. */
static int parse_line(struct watch_reader *w, const char *line, size_t len,
		      struct watch_event *ev, struct err *e)
{
	for (;;) {
		int r = watch_parse_line(line, len, w->tok, w->ntok, ev, e);
		if (r != -ENOSPC)
			return r;
		unsigned need = ev->doc.n;
		if (need > w->max_tokens)
			return err_setx(e, EMSGSIZE,
					"watch event %lu: needs %u JSON tokens, limit %u",
					w->events + 1, need, w->max_tokens);
		unsigned want = w->ntok ? w->ntok : WATCH_FIRST_TOKENS;
		while (want < need)
			want = want > w->max_tokens / 2 ? w->max_tokens : want * 2;
		struct json_tok *nt = realloc(w->tok, (size_t)want * sizeof(*nt));
		if (!nt)
			return err_setx(e, ENOMEM, "watch: token array: out of memory");
		w->tok = nt;
		w->ntok = want;
	}
}

static bool blank(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r')
			return false;
	return true;
}

long watch_feed(struct watch_reader *w, const char *data, size_t n, struct watch_event *ev,
		struct err *e)
{
	ev->type = 0;
	ev->object = -1;
	if (w->err)
		return err_setx(e, -w->err, "watch: reader used after an error");
	size_t off = 0;
	while (off < n) {
		const char *nl = memchr(data + off, '\n', n - off);
		size_t take = nl ? (size_t)(nl - (data + off)) : n - off;
		if (w->len + take > w->max_event)
			return fail(w, err_setx(e, EMSGSIZE,
						"watch event %lu: longer than %zu bytes",
						w->events + 1, w->max_event));
		if (!nl) {
			/* keep the partial line for the next feed */
			if (!w->buf) {
				w->buf = malloc(w->max_event ? w->max_event : 1);
				if (!w->buf)
					return fail(w, err_setx(e, ENOMEM,
								"watch: line buffer: out of memory"));
			}
			memcpy(w->buf + w->len, data + off, take);
			w->len += take;
			return (long)n;
		}
		const char *line;
		size_t len;
		if (w->len == 0) {
			line = data + off; /* whole line in the caller's data: no copy */
			len = take;
		} else {
			memcpy(w->buf + w->len, data + off, take);
			w->len += take;
			line = w->buf;
			len = w->len;
		}
		off += take + 1;
		w->len = 0;
		if (blank(line, len))
			continue;
		int r = parse_line(w, line, len, ev, e);
		if (r)
			return fail(w, r);
		w->events++;
		return (long)off;
	}
	return (long)off;
}

int watch_finish(struct watch_reader *w, struct err *e)
{
	if (w->err)
		return err_setx(e, -w->err, "watch: reader used after an error");
	if (w->len && !blank(w->buf, w->len))
		return err_setx(e, EPROTO, "watch: stream ended inside an event (%zu bytes)",
				w->len);
	return 0;
}
