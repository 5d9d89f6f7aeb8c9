/* json — strict RFC 8259 JSON: a zero-copy tokenizer, lookups, getters and a writer.
 *
 * Reading. json_parse() checks a whole document and fills a caller-provided token
 * array; nothing is allocated. Tokens are in document order (pre-order): a container
 * is followed by its contents, an object's contents are key, value, key, value, ...
 *
 *   {"a": [1, true], "b": "x"}
 *   tok 0 OBJECT size 2 next 6
 *   tok 1 STRING "a" (key)  next 2      tok 4 STRING "b" (key)  next 5
 *   tok 2 ARRAY size 2      next 5      tok 5 STRING "x"        next 6
 *   tok 3 NUMBER 1  tok 4 TRUE ...      (next = first token after the subtree)
 *
 * so skipping a value is one step and every lookup is linear in the tokens it passes.
 * Strings and numbers stay as text until a getter is asked: json_str() decodes escapes
 * (\uXXXX, surrogate pairs) into UTF-8 in a caller buffer, json_int64()/json_uint64()/
 * json_double() convert with range checks. Anything that is not JSON is rejected:
 * trailing commas, leading zeros, NaN, comments, single quotes, bare control
 * characters, bad escapes, lone surrogates, invalid or overlong UTF-8, data after the
 * value. Duplicate keys are accepted; lookups return the first.
 *
 * Token indices are ints: lookups return an index >= 0, or -ENOENT (no such member
 * or element) / -EINVAL (the token is not a container of the right kind).
 *
 * Writing. struct json_w writes compact JSON into a fixed caller buffer or a growing
 * heap buffer with a size limit, inserting commas itself. Errors are sticky: the first
 * failure (buffer full: -ENOSPC, never a truncated document; misuse: -EINVAL; bytes
 * that are not UTF-8: -EILSEQ) is kept and json_w_finish() reports it.
 */
#ifndef KVNET_KUBE_JSON_H
#define KVNET_KUBE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

enum json_type {
	JSON_OBJECT = 1,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

enum {
	JSON_TF_KEY = 1,  /* this string is an object member's key */
	JSON_TF_ESC = 2,  /* this string contains backslash escapes */
};

/* Nesting allowed when json_parse() is given max_depth 0, and the most it accepts. */
#define JSON_DEPTH_DEFAULT 64
#define JSON_DEPTH_MAX 512

struct json_tok {
	uint8_t type;    /* enum json_type */
	uint8_t flags;   /* JSON_TF_* */
	uint32_t start;  /* offset of the first byte; for strings the byte after the quote */
	uint32_t end;    /* offset after the last byte; for strings the closing quote */
	uint32_t size;   /* objects: members; arrays: elements; others 0 */
	uint32_t next;   /* index of the first token after this value (and its contents) */
};

struct json_doc {
	const char *text;      /* the input (not owned; must outlive the doc) */
	size_t len;            /* input bytes */
	struct json_tok *tok;  /* the caller's token array */
	unsigned cap;          /* its capacity */
	unsigned n;            /* tokens used; after -ENOSPC, tokens the document needs */
};

/* Tokenize text[0..len) into tok[0..cap). Returns 0 with d->n tokens (the root is token
 * 0), -ENOSPC when cap is too small (d->n then says how many are needed, so the caller
 * can retry with that many; the document was still fully checked), -EINVAL when the text
 * is not JSON (e says at which byte and why), -ELOOP when nesting exceeds max_depth
 * (0 = JSON_DEPTH_DEFAULT, at most JSON_DEPTH_MAX), -EFBIG for inputs of 4 GiB or more.
 * tok may be NULL with cap 0 to only count. e may be NULL. */
int json_parse(struct json_doc *d, const char *text, size_t len, struct json_tok *tok,
	       unsigned cap, unsigned max_depth, struct err *e);

/* json_parse with the token array malloc'd to fit (counted first): 0 with *tok set (the
 * caller frees it), or the error of json_parse / -ENOMEM with *tok NULL. */
int json_parse_alloc(struct json_doc *d, const char *text, size_t len, struct json_tok **tok,
		     struct err *e);

/* Type of token i, or 0 when i is not a valid index. */
enum json_type json_type(const struct json_doc *d, int i);
/* The raw source bytes of token i (strings: between the quotes, escapes intact;
 * containers: from the bracket to the bracket). Sets *len; NULL for a bad index. */
const char *json_raw(const struct json_doc *d, int i, size_t *len);
/* Index of the first token after token i's value (i + 1 for scalars). */
int json_skip(const struct json_doc *d, int i);

/* Object member value by key (compared with the decoded key, so "a\u002fb" matches
 * "a/b"); the first match wins. -ENOENT when absent, -EINVAL when obj is no object. */
int json_get(const struct json_doc *d, int obj, const char *key);
int json_getn(const struct json_doc *d, int obj, const char *key, size_t keylen);
/* Array element number idx (0-based). -ENOENT past the end, -EINVAL if no array. */
int json_index(const struct json_doc *d, int arr, unsigned idx);
/* Walk from token `from` through NULL-terminated segments: a key for objects, a decimal
 * index for arrays.  json_find(d, 0, "metadata", "annotations", "kubevirt.io/domain",
 * NULL). Returns the token or -ENOENT/-EINVAL as for json_get(). */
int json_find(const struct json_doc *d, int from, ...) __attribute__((sentinel));
/* Walk a path: `metadata.labels["kubevirt.io/domain"]`, `status.interfaces[0].mac`.
 * Segments are bare keys after '.', ["quoted keys"] (with \" and \\ escapes) or [N].
 * An empty path is `from` itself. -EINVAL also for a malformed path. */
int json_path(const struct json_doc *d, int from, const char *path);

/* Iteration over an object's members or an array's elements:
 *
 *   struct json_iter it; int k, v;
 *   json_iter_init(&it, d, obj);
 *   while (json_iter_next(&it, &k, &v)) ...     (k = key token; -1 for arrays)
 */
struct json_iter {
	const struct json_doc *d;  /* the document */
	int cur;                   /* next child token */
	int end;                   /* first token after the container */
	bool obj;                  /* iterating an object (children come in key/value pairs) */
};
/* Start iterating container i; a non-container gives an empty iteration. */
void json_iter_init(struct json_iter *it, const struct json_doc *d, int i);
bool json_iter_next(struct json_iter *it, int *key, int *val);

/* True when string token i decodes to exactly s[0..n). No allocation. */
bool json_str_eq(const struct json_doc *d, int i, const char *s, size_t n);
/* Decode string token i into buf (UTF-8, NUL-terminated) and set *len (may be NULL) to
 * the decoded length, which may include NUL bytes from \u0000. Returns 0, -EINVAL if i
 * is no string, -ENOSPC if buf cannot hold the text plus NUL (*len is then the size
 * needed without the NUL). */
int json_str_decode(const struct json_doc *d, int i, char *buf, size_t cap, size_t *len);
/* As json_str_decode() for C strings: a decoded NUL byte is -EILSEQ. */
int json_str(const struct json_doc *d, int i, char *buf, size_t cap);
/* Decoded length of string token i, or -EINVAL. */
long json_str_len(const struct json_doc *d, int i);

/* Number getters: 0 and *out, -EINVAL when i is no number (or for ints, has a fraction
 * or exponent), -ERANGE when the value does not fit (uint64: negative values too). */
int json_int64(const struct json_doc *d, int i, int64_t *out);
int json_uint64(const struct json_doc *d, int i, uint64_t *out);
int json_double(const struct json_doc *d, int i, double *out);
/* 0 and *out for true/false, -EINVAL otherwise. */
int json_bool(const struct json_doc *d, int i, bool *out);
bool json_is_null(const struct json_doc *d, int i);

/* Decode a JSON string literal body (escapes intact, no quotes) of n bytes from src,
 * already validated or not: returns decoded length, or -EINVAL for a bad escape/UTF-8,
 * writing at most cap bytes to dst (dst may be NULL with cap 0 to measure). */
long json_unescape(const char *src, size_t n, char *dst, size_t cap);

#define JSON_W_DEPTH 64

struct json_w {
	char *buf;          /* output; owned by the writer when growable */
	size_t cap;         /* its size */
	size_t len;         /* bytes written; buf[len] is kept NUL while there is room */
	size_t max;         /* growable: the largest buffer allowed; 0 for a fixed buffer */
	int err;            /* first error: 0, -ENOSPC, -ENOMEM, -EINVAL, -EILSEQ */
	const char *why;    /* what caused err (static text) */
	unsigned depth;     /* open containers */
	uint64_t in_obj;    /* bit k set: container at depth k+1 is an object */
	uint64_t has_item;  /* bit k set: container at depth k+1 already holds something */
	bool want_value;    /* a key was written; its value comes next */
	bool done;          /* the top-level value is complete */
};

/* Write into buf[0..cap) (fixed: running out is -ENOSPC). */
void json_w_init(struct json_w *w, char *buf, size_t cap);
/* Write into a heap buffer that grows up to max bytes; free with json_w_free(). */
void json_w_init_grow(struct json_w *w, size_t max);
void json_w_free(struct json_w *w);
/* Hand the growable buffer to the caller (who frees it); the writer is reset. */
char *json_w_take(struct json_w *w, size_t *len);

void json_w_obj_begin(struct json_w *w);
void json_w_obj_end(struct json_w *w);
void json_w_arr_begin(struct json_w *w);
void json_w_arr_end(struct json_w *w);
/* Member key inside an object; the next call writes its value. */
void json_w_key(struct json_w *w, const char *k);
void json_w_keyn(struct json_w *w, const char *k, size_t n);
void json_w_str(struct json_w *w, const char *s);
void json_w_strn(struct json_w *w, const char *s, size_t n);
void json_w_int(struct json_w *w, int64_t v);
void json_w_uint(struct json_w *w, uint64_t v);
void json_w_bool(struct json_w *w, bool v);
void json_w_null(struct json_w *w);
/* A number given as text; checked against the JSON number grammar (-EINVAL if not). */
void json_w_number(struct json_w *w, const char *text, size_t n);
/* Copy token i of doc (and everything inside it) re-encoded in compact form. */
void json_w_tok(struct json_w *w, const struct json_doc *doc, int i);
/* Shorthands for "key": value. */
void json_w_kstr(struct json_w *w, const char *k, const char *v);
void json_w_kint(struct json_w *w, const char *k, int64_t v);
void json_w_kbool(struct json_w *w, const char *k, bool v);

/* Check the document is complete (one value, all containers closed). Returns 0 or the
 * sticky error with e describing it. */
int json_w_finish(struct json_w *w, struct err *e);

/* True when text[0..n) is exactly one JSON number per RFC 8259. */
bool json_number_valid(const char *text, size_t n);
/* Length of the valid UTF-8 sequence at p (1..4), 0 if p starts an invalid one. */
size_t json_utf8_len(const unsigned char *p, size_t left);

#endif
