/* cursor — bounds-checked reading and writing of wire data.
 *
 * A reader (struct cur) walks a caller-owned byte range; a writer (struct wcur) fills a
 * caller-owned buffer. Both are sticky: after the first read past the end (or write past
 * the capacity) every later call fails too and cur_ok()/wcur_ok() say false, so a parser
 * can read a whole header and check once. Nothing here allocates.
 */
#ifndef KVNET_LIB_CURSOR_H
#define KVNET_LIB_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;  /* start of the range (not owned) */
	size_t len;        /* bytes in the range */
	size_t off;        /* next byte to read */
	bool bad;          /* a read ran past the end */
};

void cur_init(struct cur *c, const void *p, size_t len);
size_t cur_left(const struct cur *c);
bool cur_ok(const struct cur *c);

/* Each reader returns false (and sets the sticky error) when fewer bytes are left than
 * it needs; *v is then zeroed. be = network order, h = host order (netlink). */
bool cur_u8(struct cur *c, uint8_t *v);
bool cur_be16(struct cur *c, uint16_t *v);
bool cur_be32(struct cur *c, uint32_t *v);
bool cur_h16(struct cur *c, uint16_t *v);
bool cur_h32(struct cur *c, uint32_t *v);
bool cur_h64(struct cur *c, uint64_t *v);
bool cur_copy(struct cur *c, void *dst, size_t n);
bool cur_skip(struct cur *c, size_t n);
/* Zero-copy: *out points into the range, valid as long as the range is. */
bool cur_ptr(struct cur *c, size_t n, const uint8_t **out);
/* Split off the next n bytes as their own cursor and advance past them. */
bool cur_sub(struct cur *c, size_t n, struct cur *sub);
/* Advance to the next multiple of `align` (a power of two) relative to the start,
 * or to the end if the range ends first (the padding of a last element may be absent). */
bool cur_align(struct cur *c, size_t align);

struct wcur {
	uint8_t *p;   /* the buffer (not owned) */
	size_t cap;   /* its size */
	size_t off;   /* bytes written */
	bool bad;     /* a write did not fit */
};

void wcur_init(struct wcur *w, void *buf, size_t cap);
bool wcur_ok(const struct wcur *w);
bool wcur_u8(struct wcur *w, uint8_t v);
bool wcur_be16(struct wcur *w, uint16_t v);
bool wcur_be32(struct wcur *w, uint32_t v);
bool wcur_h16(struct wcur *w, uint16_t v);
bool wcur_h32(struct wcur *w, uint32_t v);
bool wcur_bytes(struct wcur *w, const void *src, size_t n);
bool wcur_zero(struct wcur *w, size_t n);
/* Reserve n bytes and return where they are, to be filled in later (lengths). */
bool wcur_reserve(struct wcur *w, size_t n, uint8_t **out);

#endif
