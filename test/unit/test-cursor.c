/* Unit tests for lib/cursor: bounds, stickiness, alignment, writers. */
#include "lib/cursor.h"
#include "test/lib/t.h"

#include <string.h>

static void test_reads_in_bounds(void)
{
	const uint8_t b[] = { 1, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 9 };
	struct cur c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	cur_init(&c, b, sizeof(b));
	T_CHECK(cur_u8(&c, &u8));
	T_EQ(u8, 1);
	T_CHECK(cur_be16(&c, &u16));
	T_EQ(u16, 0x1234);
	T_CHECK(cur_be32(&c, &u32));
	T_EQ(u32, 0xdeadbeef);
	T_EQ(cur_left(&c), 1);
	T_CHECK(cur_ok(&c));
}

static void test_overrun_is_sticky(void)
{
	const uint8_t b[] = { 1, 2, 3 };
	struct cur c;
	uint32_t u32 = 77;
	uint8_t u8 = 5;
	cur_init(&c, b, sizeof(b));
	T_CHECK(!cur_be32(&c, &u32));
	T_EQ(u32, 0);
	T_CHECK(!cur_ok(&c));
	/* a byte is there, but the cursor is poisoned */
	T_CHECK(!cur_u8(&c, &u8));
	T_EQ(cur_left(&c), 0);
}

static void test_sub_and_align(void)
{
	const uint8_t b[] = { 5, 0, 0, 0, 7, 8, 0, 0, 9 };
	struct cur c, sub;
	uint8_t v;
	cur_init(&c, b, sizeof(b));
	T_CHECK(cur_u8(&c, &v));
	T_CHECK(cur_align(&c, 4));
	T_EQ(c.off, 4);
	T_CHECK(cur_sub(&c, 2, &sub));
	T_EQ(cur_left(&sub), 2);
	T_CHECK(cur_u8(&sub, &v) && v == 7);
	T_CHECK(cur_u8(&sub, &v) && v == 8);
	T_CHECK(!cur_u8(&sub, &v));
	T_CHECK(cur_ok(&c)); /* the parent is untouched by the child's overrun */
	T_CHECK(cur_align(&c, 4));
	T_CHECK(cur_u8(&c, &v) && v == 9);
	/* alignment past the end clamps: the last element's padding may be absent */
	T_CHECK(cur_align(&c, 4));
	T_EQ(cur_left(&c), 0);
	T_CHECK(!cur_sub(&c, 1, &sub));
	T_CHECK(!cur_ok(&sub));
}

static void test_huge_length_does_not_wrap(void)
{
	const uint8_t b[4] = { 0 };
	struct cur c;
	const uint8_t *p;
	cur_init(&c, b, sizeof(b));
	T_CHECK(cur_skip(&c, 2));
	T_CHECK(!cur_ptr(&c, SIZE_MAX, &p));
	T_CHECK(p == NULL);
}

static void test_writer(void)
{
	uint8_t buf[7];
	struct wcur w;
	uint8_t *len;
	wcur_init(&w, buf, sizeof(buf));
	T_CHECK(wcur_reserve(&w, 1, &len));
	T_CHECK(wcur_be16(&w, 0x0806));
	T_CHECK(wcur_be32(&w, 0xc6120001));
	*len = (uint8_t)w.off;
	T_EQ(w.off, 7);
	const uint8_t want[] = { 7, 0x08, 0x06, 0xc6, 0x12, 0x00, 0x01 };
	T_MEMEQ(buf, want, sizeof(want));
	T_CHECK(!wcur_u8(&w, 1));
	T_CHECK(!wcur_ok(&w));
	T_EQ(w.off, 7);
}

int main(void)
{
	T_RUN(test_reads_in_bounds);
	T_RUN(test_overrun_is_sticky);
	T_RUN(test_sub_and_align);
	T_RUN(test_huge_length_does_not_wrap);
	T_RUN(test_writer);
	return t_done();
}
