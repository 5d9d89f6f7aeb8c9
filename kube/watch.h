/* watch — the Kubernetes watch-event stream reader.
 *
 * A watch response body is a sequence of JSON objects, one per line:
 *
 *   {"type":"ADDED","object":{"kind":"Pod",...}}\n
 *   {"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}\n
 *
 * Body bytes arrive in pieces that do not line up with events (kube/http delivers them
 * as they come). The reader takes the pieces, and hands back one complete, parsed event
 * at a time: its type and the token of its "object" (kube/json). A line longer than the
 * caller's limit is an error, never a silent cut. The reader is pure (no I/O), so the
 * agent, the tests and the fuzzer drive it the same way.
 */
#ifndef KVNET_KUBE_WATCH_H
#define KVNET_KUBE_WATCH_H

#include "lib/json.h"

#include <stdbool.h>
#include <stddef.h>

struct err;

enum watch_type {
	WATCH_ADDED = 1,
	WATCH_MODIFIED,
	WATCH_DELETED,
	WATCH_BOOKMARK,
	WATCH_ERROR,  /* object is a metav1.Status, e.g. code 410 "Expired" */
};

struct watch_event {
	enum watch_type type;  /* event type; 0 when no event was produced */
	struct json_doc doc;   /* the whole event line, parsed */
	int object;            /* token of "object" in doc */
};

struct watch_reader {
	size_t max_event;        /* longest line accepted (bytes, without the newline) */
	unsigned max_tokens;     /* most tokens one event may need */
	char *buf;               /* the incomplete line carried between feeds (owned) */
	size_t len;              /* bytes in buf */
	struct json_tok *tok;    /* token array, grown on demand up to max_tokens (owned) */
	unsigned ntok;           /* its capacity */
	int err;                 /* sticky error, 0 if none */
	unsigned long events;    /* events produced so far */
};

/* Set up a reader for lines of at most max_event bytes needing at most max_tokens tokens
 * (0: 4 MiB and 1<<18). Allocates lazily; free with watch_free(). */
void watch_init(struct watch_reader *w, size_t max_event, unsigned max_tokens);
void watch_free(struct watch_reader *w);

/* Feed body bytes data[0..n). Returns the bytes consumed (0..n). When a complete event is
 * found, ev->type is set and the event is valid until the next call (its text may point
 * into data or into the reader's buffer); call again with the rest of the data. When
 * ev->type is 0, all of data was consumed and more is needed. Returns -EMSGSIZE (line
 * longer than max_event, or needs more than max_tokens tokens), -EINVAL (not JSON, not
 * an event object, unknown type, no "object"), -ENOMEM, with e saying which event; the
 * error is sticky (the watch must be restarted). Empty lines are skipped. */
long watch_feed(struct watch_reader *w, const char *data, size_t n, struct watch_event *ev,
		struct err *e);

/* The body ended: 0 if no partial event is pending, -EPROTO if one is (truncated). */
int watch_finish(struct watch_reader *w, struct err *e);

/* "ADDED", ... ; "?" for anything else. */
const char *watch_type_name(enum watch_type t);

/* Parse one event line (no newline) into ev using tok[0..cap); the building block of
 * watch_feed(), exposed for tests and list-to-watch conversions. Same errors, plus
 * -ENOSPC when cap is too small (ev->doc.n then says how many tokens are needed). */
int watch_parse_line(const char *line, size_t len, struct json_tok *tok, unsigned cap,
		     struct watch_event *ev, struct err *e);

#endif
