/* cursor — bounds-checked wire readers and writers; see cursor.h. */
#include "lib/cursor.h"

#include <string.h>

void cur_init(struct cur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = p ? len : 0;
	c->off = 0;
	c->bad = false;
}

size_t cur_left(const struct cur *c)
{
	return c->bad ? 0 : c->len - c->off;
}

bool cur_ok(const struct cur *c)
{
	return !c->bad;
}

/* The one bounds check every reader goes through. */
static const uint8_t *take(struct cur *c, size_t n)
{
	if (c->bad || n > c->len - c->off) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *at = c->p + c->off;
	c->off += n;
	return at;
}

bool cur_u8(struct cur *c, uint8_t *v)
{
	const uint8_t *q = take(c, 1);
	*v = q ? q[0] : 0;
	return q != NULL;
}

bool cur_be16(struct cur *c, uint16_t *v)
{
	const uint8_t *q = take(c, 2);
	*v = q ? (uint16_t)(q[0] << 8 | q[1]) : 0;
	return q != NULL;
}

bool cur_be32(struct cur *c, uint32_t *v)
{
	const uint8_t *q = take(c, 4);
	*v = q ? (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3] : 0;
	return q != NULL;
}

bool cur_h16(struct cur *c, uint16_t *v)
{
	const uint8_t *q = take(c, 2);
	*v = 0;
	if (q)
		memcpy(v, q, 2);
	return q != NULL;
}

bool cur_h32(struct cur *c, uint32_t *v)
{
	const uint8_t *q = take(c, 4);
	*v = 0;
	if (q)
		memcpy(v, q, 4);
	return q != NULL;
}

bool cur_h64(struct cur *c, uint64_t *v)
{
	const uint8_t *q = take(c, 8);
	*v = 0;
	if (q)
		memcpy(v, q, 8);
	return q != NULL;
}

bool cur_copy(struct cur *c, void *dst, size_t n)
{
	const uint8_t *q = take(c, n);
	if (q && n)
		memcpy(dst, q, n);
	else if (!q && n)
		memset(dst, 0, n);
	return q != NULL;
}

bool cur_skip(struct cur *c, size_t n)
{
	return take(c, n) != NULL;
}

bool cur_ptr(struct cur *c, size_t n, const uint8_t **out)
{
	*out = take(c, n);
	return *out != NULL;
}

bool cur_sub(struct cur *c, size_t n, struct cur *sub)
{
	const uint8_t *q = take(c, n);
	cur_init(sub, q, q ? n : 0);
	if (!q)
		sub->bad = true;
	return q != NULL;
}

bool cur_align(struct cur *c, size_t align)
{
	if (c->bad)
		return false;
	size_t pad = (align - (c->off & (align - 1))) & (align - 1);
	if (pad > c->len - c->off)
		pad = c->len - c->off;
	c->off += pad;
	return true;
}

void wcur_init(struct wcur *w, void *buf, size_t cap)
{
	w->p = buf;
	w->cap = buf ? cap : 0;
	w->off = 0;
	w->bad = false;
}

bool wcur_ok(const struct wcur *w)
{
	return !w->bad;
}

static uint8_t *room(struct wcur *w, size_t n)
{
	if (w->bad || n > w->cap - w->off) {
		w->bad = true;
		return NULL;
	}
	uint8_t *at = w->p + w->off;
	w->off += n;
	return at;
}

bool wcur_u8(struct wcur *w, uint8_t v)
{
	uint8_t *q = room(w, 1);
	if (q)
		q[0] = v;
	return q != NULL;
}

bool wcur_be16(struct wcur *w, uint16_t v)
{
	uint8_t *q = room(w, 2);
	if (q) {
		q[0] = (uint8_t)(v >> 8);
		q[1] = (uint8_t)v;
	}
	return q != NULL;
}

bool wcur_be32(struct wcur *w, uint32_t v)
{
	uint8_t *q = room(w, 4);
	if (q) {
		q[0] = (uint8_t)(v >> 24);
		q[1] = (uint8_t)(v >> 16);
		q[2] = (uint8_t)(v >> 8);
		q[3] = (uint8_t)v;
	}
	return q != NULL;
}

bool wcur_h16(struct wcur *w, uint16_t v)
{
	return wcur_bytes(w, &v, 2);
}

bool wcur_h32(struct wcur *w, uint32_t v)
{
	return wcur_bytes(w, &v, 4);
}

bool wcur_bytes(struct wcur *w, const void *src, size_t n)
{
	uint8_t *q = room(w, n);
	if (q && n)
		memcpy(q, src, n);
	return q != NULL;
}

bool wcur_zero(struct wcur *w, size_t n)
{
	uint8_t *q = room(w, n);
	if (q && n)
		memset(q, 0, n);
	return q != NULL;
}

bool wcur_reserve(struct wcur *w, size_t n, uint8_t **out)
{
	*out = room(w, n);
	return *out != NULL;
}
