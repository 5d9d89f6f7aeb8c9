/* json — strict RFC 8259 tokenizer, getters and writer; see json.h. */
#include "lib/json.h"

#include "lib/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------------------ */

size_t json_utf8_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0; /* continuation byte, overlong 2-byte lead, or beyond U+10FFFF */
	if (c < 0xe0) {
		if (left < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		return 2;
	}
	if (c < 0xf0) {
		if (left < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && p[1] > 0x9f)
			return 0; /* UTF-16 surrogate encoded */
		return 3;
	}
	if (left < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
	    (p[3] & 0xc0) != 0x80)
		return 0;
	if (c == 0xf0 && p[1] < 0x90)
		return 0; /* overlong */
	if (c == 0xf4 && p[1] > 0x8f)
		return 0; /* beyond U+10FFFF */
	return 4;
}

static size_t utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
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

/* Four hex digits at s (n bytes available) → value, or -1. */
static long hex4(const unsigned char *s, size_t n)
{
	if (n < 4)
		return -1;
	long v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(s[k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* One decoded unit of a string body: reads at s[*pos] (end = body length), writes up to
 * 4 bytes to out, advances *pos. Returns the byte count, or -1 for anything invalid
 * (bad escape, lone surrogate, control character, bad UTF-8, unescaped quote). */
static int str_unit(const unsigned char *s, size_t *pos, size_t end, char out[4])
{
	size_t p = *pos;
	unsigned char c = s[p];
	if (c == '\\') {
		if (p + 1 >= end)
			return -1;
		unsigned char x = s[p + 1];
		char v;
		switch (x) {
		case '"': v = '"'; break;
		case '\\': v = '\\'; break;
		case '/': v = '/'; break;
		case 'b': v = '\b'; break;
		case 'f': v = '\f'; break;
		case 'n': v = '\n'; break;
		case 'r': v = '\r'; break;
		case 't': v = '\t'; break;
		case 'u': {
			long u = hex4(s + p + 2, end - p - 2);
			if (u < 0)
				return -1;
			p += 6;
			uint32_t cp = (uint32_t)u;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1; /* low surrogate first */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || s[p] != '\\' || s[p + 1] != 'u')
					return -1; /* high surrogate alone */
				long lo = hex4(s + p + 2, end - p - 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
				p += 6;
			}
			*pos = p;
			return (int)utf8_put(out, cp);
		}
		default:
			return -1;
		}
		out[0] = v;
		*pos = p + 2;
		return 1;
	}
	if (c < 0x20 || c == '"')
		return -1;
	size_t n = json_utf8_len(s + p, end - p);
	if (!n)
		return -1;
	memcpy(out, s + p, n);
	*pos = p + n;
	return (int)n;
}

long json_unescape(const char *src, size_t n, char *dst, size_t cap)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t pos = 0, o = 0;
	char u[4];
	while (pos < n) {
		if (s[pos] != '\\' && s[pos] >= 0x20 && s[pos] < 0x80 && s[pos] != '"') {
			if (o < cap)
				dst[o] = (char)s[pos];
			o++;
			pos++;
			continue;
		}
		int k = str_unit(s, &pos, n, u);
		if (k < 0)
			return -EINVAL;
		for (int j = 0; j < k; j++, o++)
			if (o < cap)
				dst[o] = u[j];
	}
	return (long)o;
}

/* ---- tokenizer ---------------------------------------------------------------------- */

struct pstate {
	const unsigned char *s;  /* input */
	size_t len;              /* input length */
	size_t pos;              /* next byte */
	struct json_doc *d;      /* output */
	struct err *e;           /* error sink */
};

/* Bytes a string scan must stop at: controls, '"', '\\' and non-ASCII (UTF-8 check). */
static const uint8_t str_stop[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/* Hot helpers stay inlined even in the product's -Os build. */
#define HOT static inline __attribute__((always_inline))

HOT bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

HOT void skip_ws(struct pstate *p)
{
	while (p->pos < p->len && is_ws(p->s[p->pos]))
		p->pos++;
}

static int perr(struct pstate *p, const char *what)
{
	if (p->pos >= p->len)
		return err_setx(p->e, EINVAL, "json: byte %zu: %s (at end of input)", p->pos,
				what);
	unsigned char c = p->s[p->pos];
	if (c >= 0x20 && c < 0x7f)
		return err_setx(p->e, EINVAL, "json: byte %zu: %s (found '%c')", p->pos, what, c);
	return err_setx(p->e, EINVAL, "json: byte %zu: %s (found byte 0x%02x)", p->pos, what, c);
}

/* Reserve the next token; returns its index. Past cap only counts. */
HOT unsigned tok_new(struct pstate *p, enum json_type t, size_t start)
{
	struct json_doc *d = p->d;
	unsigned i = d->n++;
	if (i < d->cap) {
		struct json_tok *k = &d->tok[i];
		k->type = (uint8_t)t;
		k->flags = 0;
		k->start = (uint32_t)start;
		k->end = (uint32_t)start;
		k->size = 0;
		k->next = i + 1;
	}
	return i;
}

HOT void tok_end(struct pstate *p, unsigned i, size_t end)
{
	if (i < p->d->cap) {
		p->d->tok[i].end = (uint32_t)end;
		p->d->tok[i].next = p->d->n;
	}
}

/* String at p->pos (which is '"'); fills a token. */
static int parse_string(struct pstate *p, bool key)
{
	size_t start = p->pos + 1, q = start;
	const unsigned char *s = p->s;
	uint8_t flags = key ? JSON_TF_KEY : 0;
	for (;;) {
		/* fast path: plain ASCII */
		while (q < p->len && !str_stop[s[q]])
			q++;
		if (q >= p->len) {
			p->pos = q;
			return perr(p, "unterminated string");
		}
		unsigned char c = s[q];
		if (c == '"')
			break;
		if (c == '\\') {
			char u[4];
			size_t at = q;
			if (str_unit(s, &q, p->len, u) < 0) {
				p->pos = at;
				return perr(p, "invalid escape or lone surrogate in string");
			}
			flags |= JSON_TF_ESC;
			continue;
		}
		if (c < 0x20) {
			p->pos = q;
			return perr(p, "control character in string");
		}
		size_t n = json_utf8_len(s + q, p->len - q);
		if (!n) {
			p->pos = q;
			return perr(p, "invalid UTF-8 in string");
		}
		q += n;
	}
	unsigned i = tok_new(p, JSON_STRING, start);
	if (i < p->d->cap)
		p->d->tok[i].flags = flags;
	tok_end(p, i, q);
	p->pos = q + 1;
	return 0;
}

/* Length of the number at s[0..n), or 0 when no valid number starts there. */
static size_t number_span(const unsigned char *s, size_t n)
{
	size_t q = 0;
	if (q < n && s[q] == '-')
		q++;
	if (q >= n)
		return 0;
	if (s[q] == '0') {
		q++;
	} else if (s[q] >= '1' && s[q] <= '9') {
		while (q < n && s[q] >= '0' && s[q] <= '9')
			q++;
	} else {
		return 0;
	}
	if (q < n && s[q] == '.') {
		q++;
		size_t f = q;
		while (q < n && s[q] >= '0' && s[q] <= '9')
			q++;
		if (q == f)
			return 0;
	}
	if (q < n && (s[q] == 'e' || s[q] == 'E')) {
		q++;
		if (q < n && (s[q] == '+' || s[q] == '-'))
			q++;
		size_t f = q;
		while (q < n && s[q] >= '0' && s[q] <= '9')
			q++;
		if (q == f)
			return 0;
	}
	return q;
}

bool json_number_valid(const char *text, size_t n)
{
	return n > 0 && number_span((const unsigned char *)text, n) == n;
}

static int parse_scalar(struct pstate *p)
{
	unsigned char c = p->s[p->pos];
	size_t left = p->len - p->pos;
	const char *at = (const char *)p->s + p->pos;
	enum json_type t;
	size_t n;
	switch (c) {
	case 't':
		t = JSON_TRUE, n = 4;
		if (left < 4 || memcmp(at, "true", 4) != 0)
			return perr(p, "invalid literal");
		break;
	case 'f':
		t = JSON_FALSE, n = 5;
		if (left < 5 || memcmp(at, "false", 5) != 0)
			return perr(p, "invalid literal");
		break;
	case 'n':
		t = JSON_NULL, n = 4;
		if (left < 4 || memcmp(at, "null", 4) != 0)
			return perr(p, "invalid literal");
		break;
	default:
		t = JSON_NUMBER;
		n = number_span(p->s + p->pos, left);
		if (!n)
			return perr(p, "invalid number");
		break;
	}
	/* the grammar needs a delimiter after a scalar: "01", "truex", "1.5.3" are not JSON */
	size_t q = p->pos + n;
	if (q < p->len) {
		unsigned char d = p->s[q];
		if (!is_ws(d) && d != ',' && d != ']' && d != '}') {
			p->pos = q;
			return perr(p, t == JSON_NUMBER ? "invalid number" : "invalid literal");
		}
	}
	unsigned i = tok_new(p, t, p->pos);
	tok_end(p, i, q);
	p->pos = q;
	return 0;
}

/* After '{' or ',' inside an object: "key" ws ':' ws. */
static int parse_key(struct pstate *p)
{
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return perr(p, "expected a string key");
	int r = parse_string(p, true);
	if (r)
		return r;
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return perr(p, "expected ':' after key");
	p->pos++;
	skip_ws(p);
	return 0;
}

int json_parse(struct json_doc *d, const char *text, size_t len, struct json_tok *tok,
	       unsigned cap, unsigned max_depth, struct err *e)
{
	uint32_t stack[JSON_DEPTH_MAX];  /* open containers' token indices */
	bool isobj[JSON_DEPTH_MAX];      /* open containers' kinds (tokens may be uncounted) */
	unsigned depth = 0;
	struct pstate p = { (const unsigned char *)text, len, 0, d, e };
	int r;

	d->text = text;
	d->len = len;
	d->tok = tok;
	d->cap = tok ? cap : 0;
	d->n = 0;
	if (max_depth == 0)
		max_depth = JSON_DEPTH_DEFAULT;
	if (max_depth > JSON_DEPTH_MAX)
		max_depth = JSON_DEPTH_MAX;
	if (len >= UINT32_MAX)
		return err_setx(e, EFBIG, "json: document of %zu bytes is too large", len);

	skip_ws(&p);
	if (p.pos >= len)
		return err_setx(e, EINVAL, "json: empty document");
	for (;;) {
		/* a value starts at p.pos (whitespace already skipped) */
		if (p.pos >= len)
			return perr(&p, "expected a value");
		if (depth > 0 && stack[depth - 1] < d->cap)
			d->tok[stack[depth - 1]].size++;
		unsigned char c = p.s[p.pos];
		if (c == '{' || c == '[') {
			if (depth >= max_depth)
				return err_setx(e, ELOOP,
						"json: byte %zu: nesting deeper than %u levels",
						p.pos, max_depth);
			bool obj = c == '{';
			isobj[depth] = obj;
			stack[depth++] = tok_new(&p, obj ? JSON_OBJECT : JSON_ARRAY, p.pos);
			p.pos++;
			skip_ws(&p);
			if (p.pos < len && p.s[p.pos] == (obj ? '}' : ']')) {
				p.pos++;
				tok_end(&p, stack[--depth], p.pos);
			} else {
				if (obj && (r = parse_key(&p)))
					return r;
				continue;
			}
		} else if (c == '"') {
			if ((r = parse_string(&p, false)))
				return r;
		} else {
			if (c != '-' && (c < '0' || c > '9') && c != 't' && c != 'f' && c != 'n')
				return perr(&p, "expected a value");
			r = parse_scalar(&p);
			if (r)
				return r;
		}
		/* after a value: close containers until a ',' asks for the next value */
		for (;;) {
			skip_ws(&p);
			if (depth == 0) {
				if (p.pos != len)
					return perr(&p, "unexpected data after the document");
				goto done;
			}
			if (p.pos >= len)
				return perr(&p, isobj[depth - 1] ? "unterminated object"
								 : "unterminated array");
			c = p.s[p.pos];
			if (c == ',') {
				p.pos++;
				skip_ws(&p);
				if (isobj[depth - 1] && (r = parse_key(&p)))
					return r;
				break;
			}
			if (c != (isobj[depth - 1] ? '}' : ']'))
				return perr(&p, isobj[depth - 1] ? "expected ',' or '}'"
								 : "expected ',' or ']'");
			p.pos++;
			tok_end(&p, stack[--depth], p.pos);
		}
	}
done:
	if (d->n > d->cap)
		return err_setx(e, ENOSPC, "json: document needs %u tokens, have room for %u",
				d->n, d->cap);
	return 0;
}

/* ---- access ------------------------------------------------------------------------- */

HOT const struct json_tok *tk(const struct json_doc *d, int i)
{
	if (i < 0 || (unsigned)i >= d->n || (unsigned)i >= d->cap)
		return NULL;
	return &d->tok[i];
}

enum json_type json_type(const struct json_doc *d, int i)
{
	const struct json_tok *t = tk(d, i);
	return t ? (enum json_type)t->type : 0;
}

const char *json_raw(const struct json_doc *d, int i, size_t *len)
{
	const struct json_tok *t = tk(d, i);
	if (!t) {
		*len = 0;
		return NULL;
	}
	*len = t->end - t->start;
	return d->text + t->start;
}

int json_skip(const struct json_doc *d, int i)
{
	const struct json_tok *t = tk(d, i);
	return t ? (int)t->next : -EINVAL;
}

bool json_str_eq(const struct json_doc *d, int i, const char *s, size_t n)
{
	const struct json_tok *t = tk(d, i);
	if (!t || t->type != JSON_STRING)
		return false;
	const char *src = d->text + t->start;
	size_t len = t->end - t->start;
	if (!(t->flags & JSON_TF_ESC))
		return len == n && memcmp(src, s, n) == 0;
	size_t pos = 0, o = 0;
	char u[4];
	while (pos < len) {
		int k = str_unit((const unsigned char *)src, &pos, len, u);
		if (k < 0 || o + (size_t)k > n || memcmp(s + o, u, (size_t)k) != 0)
			return false;
		o += (size_t)k;
	}
	return o == n;
}

int json_getn(const struct json_doc *d, int obj, const char *key, size_t keylen)
{
	const struct json_tok *t = tk(d, obj);
	if (!t || t->type != JSON_OBJECT)
		return -EINVAL;
	unsigned end = t->next;
	for (unsigned k = (unsigned)obj + 1; k < end && k + 1 < d->cap;) {
		if (json_str_eq(d, (int)k, key, keylen))
			return (int)k + 1;
		k = d->tok[k + 1].next;
	}
	return -ENOENT;
}

int json_get(const struct json_doc *d, int obj, const char *key)
{
	return json_getn(d, obj, key, strlen(key));
}

int json_index(const struct json_doc *d, int arr, unsigned idx)
{
	const struct json_tok *t = tk(d, arr);
	if (!t || t->type != JSON_ARRAY)
		return -EINVAL;
	if (idx >= t->size)
		return -ENOENT;
	unsigned k = (unsigned)arr + 1;
	while (idx-- > 0) {
		if (k >= d->cap || k >= d->n)
			return -EINVAL; /* tokens missing: the parse did not succeed */
		k = d->tok[k].next;
	}
	return (int)k;
}

/* One step of a walk: a key (objects) or a decimal index (arrays). */
static int step(const struct json_doc *d, int from, const char *seg, size_t n)
{
	enum json_type t = json_type(d, from);
	if (t == JSON_OBJECT)
		return json_getn(d, from, seg, n);
	if (t != JSON_ARRAY)
		return -EINVAL;
	if (n == 0 || n > 9)
		return -ENOENT;
	unsigned idx = 0;
	for (size_t k = 0; k < n; k++) {
		if (seg[k] < '0' || seg[k] > '9')
			return -ENOENT;
		idx = idx * 10 + (unsigned)(seg[k] - '0');
	}
	return json_index(d, from, idx);
}

int json_find(const struct json_doc *d, int from, ...)
{
	va_list ap;
	const char *seg;
	int cur = from;
	if (!tk(d, from))
		return -EINVAL;
	va_start(ap, from);
	while ((seg = va_arg(ap, const char *)) != NULL) {
		cur = step(d, cur, seg, strlen(seg));
		if (cur < 0)
			break;
	}
	va_end(ap);
	return cur;
}

int json_path(const struct json_doc *d, int from, const char *path)
{
	char key[256];
	int cur = from;
	size_t q = 0;
	if (!tk(d, from))
		return -EINVAL;
	while (path[q]) {
		if (path[q] == '[') {
			q++;
			if (path[q] == '"') {
				size_t n = 0;
				q++;
				while (path[q] && path[q] != '"') {
					if (path[q] == '\\' && (path[q + 1] == '"' || path[q + 1] == '\\'))
						q++;
					if (n >= sizeof(key))
						return -EINVAL;
					key[n++] = path[q++];
				}
				if (path[q] != '"' || path[q + 1] != ']')
					return -EINVAL;
				q += 2;
				if (json_type(d, cur) != JSON_OBJECT)
					return -EINVAL;
				cur = json_getn(d, cur, key, n);
			} else {
				unsigned long idx = 0;
				size_t f = q;
				while (path[q] >= '0' && path[q] <= '9') {
					if (idx > 100000000)
						return -EINVAL;
					idx = idx * 10 + (unsigned long)(path[q++] - '0');
				}
				if (q == f || path[q] != ']')
					return -EINVAL;
				q++;
				cur = json_index(d, cur, (unsigned)idx);
			}
		} else {
			if (path[q] == '.') {
				if (q == 0)
					return -EINVAL;
				q++;
			} else if (q != 0) {
				return -EINVAL;
			}
			size_t f = q;
			while (path[q] && path[q] != '.' && path[q] != '[')
				q++;
			if (q == f)
				return -EINVAL;
			if (json_type(d, cur) != JSON_OBJECT)
				return -EINVAL;
			cur = json_getn(d, cur, path + f, q - f);
		}
		if (cur < 0)
			return cur;
	}
	return cur;
}

void json_iter_init(struct json_iter *it, const struct json_doc *d, int i)
{
	const struct json_tok *t = tk(d, i);
	it->d = d;
	it->obj = t && t->type == JSON_OBJECT;
	if (t && (t->type == JSON_OBJECT || t->type == JSON_ARRAY)) {
		it->cur = i + 1;
		it->end = (int)t->next;
	} else {
		it->cur = it->end = 0;
	}
}

bool json_iter_next(struct json_iter *it, int *key, int *val)
{
	const struct json_doc *d = it->d;
	if (it->cur >= it->end)
		return false;
	if (it->obj) {
		if (!tk(d, it->cur + 1))
			return false;
		*key = it->cur;
		*val = it->cur + 1;
		it->cur = (int)d->tok[it->cur + 1].next;
	} else {
		if (!tk(d, it->cur))
			return false;
		*key = -1;
		*val = it->cur;
		it->cur = (int)d->tok[it->cur].next;
	}
	return true;
}

int json_str_decode(const struct json_doc *d, int i, char *buf, size_t cap, size_t *len)
{
	const struct json_tok *t = tk(d, i);
	size_t dummy;
	if (!len)
		len = &dummy;
	*len = 0;
	if (!t || t->type != JSON_STRING)
		return -EINVAL;
	long n = json_unescape(d->text + t->start, t->end - t->start, buf, cap);
	if (n < 0)
		return -EINVAL;
	*len = (size_t)n;
	if ((size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return -ENOSPC;
	}
	buf[n] = '\0';
	return 0;
}

int json_str(const struct json_doc *d, int i, char *buf, size_t cap)
{
	size_t n;
	int r = json_str_decode(d, i, buf, cap, &n);
	if (r)
		return r;
	if (memchr(buf, '\0', n)) {
		buf[0] = '\0';
		return -EILSEQ;
	}
	return 0;
}

long json_str_len(const struct json_doc *d, int i)
{
	const struct json_tok *t = tk(d, i);
	if (!t || t->type != JSON_STRING)
		return -EINVAL;
	if (!(t->flags & JSON_TF_ESC))
		return (long)(t->end - t->start);
	return json_unescape(d->text + t->start, t->end - t->start, NULL, 0);
}

/* Integer text of token i: sign and digits. -EINVAL if not an integer number. */
static int int_text(const struct json_doc *d, int i, bool *neg, const char **dig, size_t *n)
{
	const struct json_tok *t = tk(d, i);
	if (!t || t->type != JSON_NUMBER)
		return -EINVAL;
	const char *s = d->text + t->start;
	size_t len = t->end - t->start;
	*neg = len > 0 && s[0] == '-';
	if (*neg)
		s++, len--;
	if (len == 0)
		return -EINVAL;
	for (size_t k = 0; k < len; k++)
		if (s[k] < '0' || s[k] > '9')
			return -EINVAL; /* fraction or exponent */
	*dig = s;
	*n = len;
	return 0;
}

/* Magnitude of digits as uint64; -ERANGE on overflow. */
static int mag(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t k = 0; k < n; k++) {
		unsigned dg = (unsigned)(s[k] - '0');
		if (v > (UINT64_MAX - dg) / 10)
			return -ERANGE;
		v = v * 10 + dg;
	}
	*out = v;
	return 0;
}

int json_int64(const struct json_doc *d, int i, int64_t *out)
{
	bool neg;
	const char *s;
	size_t n;
	uint64_t m;
	int r = int_text(d, i, &neg, &s, &n);
	if (!r)
		r = mag(s, n, &m);
	if (r)
		return r;
	if (neg) {
		if (m > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
	} else {
		if (m > (uint64_t)INT64_MAX)
			return -ERANGE;
		*out = (int64_t)m;
	}
	return 0;
}

int json_uint64(const struct json_doc *d, int i, uint64_t *out)
{
	bool neg;
	const char *s;
	size_t n;
	uint64_t m;
	int r = int_text(d, i, &neg, &s, &n);
	if (!r)
		r = mag(s, n, &m);
	if (r)
		return r;
	if (neg && m != 0)
		return -ERANGE;
	*out = m;
	return 0;
}

int json_double(const struct json_doc *d, int i, double *out)
{
	const struct json_tok *t = tk(d, i);
	char buf[128];
	if (!t || t->type != JSON_NUMBER)
		return -EINVAL;
	size_t n = t->end - t->start;
	if (n >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, d->text + t->start, n);
	buf[n] = '\0';
	char *endp;
	double v = strtod(buf, &endp);
	if (endp != buf + n)
		return -EINVAL;
	if (isinf(v))
		return -ERANGE;
	*out = v;
	return 0;
}

int json_bool(const struct json_doc *d, int i, bool *out)
{
	enum json_type t = json_type(d, i);
	if (t == JSON_TRUE || t == JSON_FALSE) {
		*out = t == JSON_TRUE;
		return 0;
	}
	return -EINVAL;
}

bool json_is_null(const struct json_doc *d, int i)
{
	return json_type(d, i) == JSON_NULL;
}

/* ---- writer ------------------------------------------------------------------------- */

static void w_fail(struct json_w *w, int err, const char *why)
{
	if (!w->err) {
		w->err = err;
		w->why = why;
	}
}

void json_w_init(struct json_w *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	if (cap)
		buf[0] = '\0';
}

void json_w_init_grow(struct json_w *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max ? max : 1;
}

void json_w_free(struct json_w *w)
{
	if (w->max)
		free(w->buf);
	w->buf = NULL;
	w->cap = w->len = 0;
}

char *json_w_take(struct json_w *w, size_t *len)
{
	char *b = w->buf;
	if (len)
		*len = w->len;
	size_t max = w->max;
	memset(w, 0, sizeof(*w));
	w->max = max;
	return b;
}

/* Room for n more bytes plus the NUL. */
static bool w_room(struct json_w *w, size_t n)
{
	if (w->err)
		return false;
	if (n < w->cap - w->len && w->cap > w->len)
		return true;
	if (!w->max) {
		w_fail(w, -ENOSPC, "output buffer full");
		return false;
	}
	if (n > w->max || w->len + 1 > w->max - n) {
		w_fail(w, -ENOSPC, "output larger than the limit");
		return false;
	}
	size_t want = w->cap ? w->cap : 256;
	while (want < w->len + n + 1)
		want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
	if (want > w->max)
		want = w->max;
	char *nb = realloc(w->buf, want);
	if (!nb) {
		w_fail(w, -ENOMEM, "out of memory");
		return false;
	}
	w->buf = nb;
	w->cap = want;
	return true;
}

static void w_put(struct json_w *w, const char *s, size_t n)
{
	if (!w_room(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void w_ch(struct json_w *w, char c)
{
	w_put(w, &c, 1);
}

/* Before any value: comma, key check, single top-level value check. */
static bool w_value(struct json_w *w)
{
	if (w->err)
		return false;
	if (w->depth == 0) {
		if (w->done) {
			w_fail(w, -EINVAL, "a second top-level value");
			return false;
		}
		return true;
	}
	uint64_t bit = 1ull << (w->depth - 1);
	if (w->in_obj & bit) {
		if (!w->want_value) {
			w_fail(w, -EINVAL, "a value inside an object without a key");
			return false;
		}
		w->want_value = false;
		return true;
	}
	if (w->has_item & bit)
		w_ch(w, ',');
	w->has_item |= bit;
	return !w->err;
}

static void w_after(struct json_w *w)
{
	if (w->depth == 0)
		w->done = true;
}

static void w_open(struct json_w *w, bool obj)
{
	if (!w_value(w))
		return;
	if (w->depth >= JSON_W_DEPTH) {
		w_fail(w, -EINVAL, "nesting deeper than the writer allows");
		return;
	}
	w_ch(w, obj ? '{' : '[');
	uint64_t bit = 1ull << w->depth;
	w->depth++;
	w->has_item &= ~bit;
	if (obj)
		w->in_obj |= bit;
	else
		w->in_obj &= ~bit;
}

static void w_close(struct json_w *w, bool obj)
{
	if (w->err)
		return;
	if (w->depth == 0 || !!(w->in_obj & (1ull << (w->depth - 1))) != obj || w->want_value) {
		w_fail(w, -EINVAL, "closing a container that is not open");
		return;
	}
	w->depth--;
	w_ch(w, obj ? '}' : ']');
	w_after(w);
}

void json_w_obj_begin(struct json_w *w)
{
	w_open(w, true);
}

void json_w_obj_end(struct json_w *w)
{
	w_close(w, true);
}

void json_w_arr_begin(struct json_w *w)
{
	w_open(w, false);
}

void json_w_arr_end(struct json_w *w)
{
	w_close(w, false);
}

/* The quoted, escaped form of s[0..n). */
static void w_quoted(struct json_w *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	w_ch(w, '"');
	size_t run = 0; /* start of bytes to copy as they are */
	for (size_t k = 0; k < n && !w->err;) {
		unsigned char c = u[k];
		const char *esc = NULL;
		char ubuf[6];
		size_t elen = 2;
		if (c >= 0x80) {
			size_t l = json_utf8_len(u + k, n - k);
			if (!l) {
				w_fail(w, -EILSEQ, "string is not valid UTF-8");
				return;
			}
			k += l;
			continue;
		}
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20) {
				memcpy(ubuf, "\\u00", 4);
				ubuf[4] = hex[c >> 4];
				ubuf[5] = hex[c & 15];
				esc = ubuf;
				elen = 6;
			}
			break;
		}
		if (esc) {
			w_put(w, s + run, k - run);
			w_put(w, esc, elen);
			run = k + 1;
		}
		k++;
	}
	w_put(w, s + run, n - run);
	w_ch(w, '"');
}

void json_w_keyn(struct json_w *w, const char *k, size_t n)
{
	if (w->err)
		return;
	if (w->depth == 0 || !(w->in_obj & (1ull << (w->depth - 1))) || w->want_value) {
		w_fail(w, -EINVAL, "a key outside an object or after another key");
		return;
	}
	uint64_t bit = 1ull << (w->depth - 1);
	if (w->has_item & bit)
		w_ch(w, ',');
	w->has_item |= bit;
	w_quoted(w, k, n);
	w_ch(w, ':');
	w->want_value = true;
}

void json_w_key(struct json_w *w, const char *k)
{
	json_w_keyn(w, k, strlen(k));
}

void json_w_strn(struct json_w *w, const char *s, size_t n)
{
	if (!w_value(w))
		return;
	w_quoted(w, s, n);
	w_after(w);
}

void json_w_str(struct json_w *w, const char *s)
{
	json_w_strn(w, s, strlen(s));
}

static void w_scalar(struct json_w *w, const char *s, size_t n)
{
	if (!w_value(w))
		return;
	w_put(w, s, n);
	w_after(w);
}

void json_w_uint(struct json_w *w, uint64_t v)
{
	char b[24];
	size_t n = sizeof(b);
	do {
		b[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	w_scalar(w, b + n, sizeof(b) - n);
}

void json_w_int(struct json_w *w, int64_t v)
{
	char b[24];
	size_t n = sizeof(b);
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		b[--n] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		b[--n] = '-';
	w_scalar(w, b + n, sizeof(b) - n);
}

void json_w_bool(struct json_w *w, bool v)
{
	w_scalar(w, v ? "true" : "false", v ? 4 : 5);
}

void json_w_null(struct json_w *w)
{
	w_scalar(w, "null", 4);
}

void json_w_number(struct json_w *w, const char *text, size_t n)
{
	if (!json_number_valid(text, n)) {
		w_fail(w, -EINVAL, "not a JSON number");
		return;
	}
	w_scalar(w, text, n);
}

void json_w_tok(struct json_w *w, const struct json_doc *doc, int i)
{
	int closers[JSON_W_DEPTH + 1]; /* for each open container: its next index */
	bool objs[JSON_W_DEPTH + 1];   /* and its kind */
	unsigned depth = 0;
	int end = json_skip(doc, i);
	if (end < 0) {
		w_fail(w, -EINVAL, "no such token");
		return;
	}
	for (int k = i; k < end && !w->err;) {
		const struct json_tok *t = tk(doc, k);
		if (!t) {
			w_fail(w, -EINVAL, "token array incomplete");
			return;
		}
		enum json_type ty = (enum json_type)t->type;
		const char *src = doc->text + t->start;
		size_t n = t->end - t->start;
		switch (ty) {
		case JSON_OBJECT:
		case JSON_ARRAY:
			if (depth > JSON_W_DEPTH) {
				w_fail(w, -EINVAL, "nesting deeper than the writer allows");
				return;
			}
			w_open(w, ty == JSON_OBJECT);
			closers[depth] = (int)t->next;
			objs[depth++] = ty == JSON_OBJECT;
			break;
		case JSON_STRING: {
			long dl = json_unescape(src, n, NULL, 0);
			if (dl < 0) {
				w_fail(w, -EINVAL, "bad string token");
				return;
			}
			char small[256];
			char *buf = (size_t)dl < sizeof(small) ? small : malloc((size_t)dl + 1);
			if (!buf) {
				w_fail(w, -ENOMEM, "out of memory");
				return;
			}
			json_unescape(src, n, buf, (size_t)dl);
			if (t->flags & JSON_TF_KEY)
				json_w_keyn(w, buf, (size_t)dl);
			else
				json_w_strn(w, buf, (size_t)dl);
			if (buf != small)
				free(buf);
			break;
		}
		case JSON_NUMBER:
		case JSON_TRUE:
		case JSON_FALSE:
		case JSON_NULL:
			w_scalar(w, src, n);
			break;
		}
		k++;
		while (depth > 0 && k >= closers[depth - 1])
			w_close(w, objs[--depth]);
	}
}

void json_w_kstr(struct json_w *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_str(w, v);
}

void json_w_kint(struct json_w *w, const char *k, int64_t v)
{
	json_w_key(w, k);
	json_w_int(w, v);
}

void json_w_kbool(struct json_w *w, const char *k, bool v)
{
	json_w_key(w, k);
	json_w_bool(w, v);
}

int json_w_finish(struct json_w *w, struct err *e)
{
	if (!w->err && (w->depth || !w->done))
		w_fail(w, -EINVAL, "document incomplete");
	if (w->err)
		return err_setx(e, -w->err, "json: write: %s", w->why);
	return 0;
}

int json_parse_alloc(struct json_doc *d, const char *text, size_t len, struct json_tok **tok,
		     struct err *e)
{
	*tok = NULL;
	int rc = json_parse(d, text, len, NULL, 0, 0, e);
	if (rc < 0 && rc != -ENOSPC)
		return rc;
	err_clear(e);
	unsigned n = d->n ? d->n : 1;
	if (!(*tok = calloc(n, sizeof(**tok))))
		return err_setx(e, ENOMEM, "json: out of memory for %u tokens", n);
	rc = json_parse(d, text, len, *tok, n, 0, e);
	if (rc < 0) {
		free(*tok);
		*tok = NULL;
	}
	return rc;
}
