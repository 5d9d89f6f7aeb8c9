/* Unit tests for lib/json: RFC 8259 conformance (accept/reject table), string decoding,
 * surrogate pairs, number getters, lookups, the writer, and round trips over the
 * KubeVirt fixtures checked against python3's json module. */
#include "lib/json.h"
#include "lib/err.h"
#include "test/lib/t.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTOK 4096

static struct json_tok toks[NTOK];

static int parse(struct json_doc *d, const char *s, size_t n)
{
	return json_parse(d, s, n, toks, NTOK, 0, NULL);
}

static int parse_s(struct json_doc *d, const char *s)
{
	return parse(d, s, strlen(s));
}

/* ---- conformance table: y_ must accept, n_ must reject, i_ our documented choice ---- */

struct jcase {
	const char *name;  /* JSONTestSuite-style name */
	const char *in;    /* input */
	size_t len;        /* input length; 0 = strlen(in) */
	int want;          /* 0 accept, else the negative errno */
};

static const struct jcase cases[] = {
	/* must accept */
	{ "y_object_empty", "{}", 0, 0 },
	{ "y_array_empty", "[]", 0, 0 },
	{ "y_array_nested_empty", "[[],[[]],{}]", 0, 0 },
	{ "y_structure_ws_everywhere", " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n", 0, 0 },
	{ "y_string_empty", "\"\"", 0, 0 },
	{ "y_string_top_level", "\"Hello world!\"", 0, 0 },
	{ "y_number_top_level", "42", 0, 0 },
	{ "y_true_top_level", "true", 0, 0 },
	{ "y_false", "[false]", 0, 0 },
	{ "y_null", "[null]", 0, 0 },
	{ "y_number_zero", "[0]", 0, 0 },
	{ "y_number_minus_zero", "[-0]", 0, 0 },
	{ "y_number_negative_int", "[-123]", 0, 0 },
	{ "y_number_fraction", "[1.5]", 0, 0 },
	{ "y_number_zero_fraction", "[0.25]", 0, 0 },
	{ "y_number_exp", "[1e10]", 0, 0 },
	{ "y_number_exp_capital_plus", "[1E+2]", 0, 0 },
	{ "y_number_exp_minus", "[-1.5e-3]", 0, 0 },
	{ "y_number_huge_exp_text", "[1e999]", 0, 0 },
	{ "y_number_very_long", "[123456789012345678901234567890]", 0, 0 },
	{ "y_string_escapes_all", "[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"]", 0, 0 },
	{ "y_string_u_escape", "[\"\\u0041\\u00e9\\u20AC\"]", 0, 0 },
	{ "y_string_surrogate_pair", "[\"\\ud83d\\ude00\"]", 0, 0 },
	{ "y_string_u0000_escaped", "[\"a\\u0000b\"]", 0, 0 },
	{ "y_string_utf8_2byte", "[\"\xc3\xa9\"]", 0, 0 },
	{ "y_string_utf8_3byte", "[\"\xe2\x82\xac\"]", 0, 0 },
	{ "y_string_utf8_4byte", "[\"\xf0\x9f\x98\x80\"]", 0, 0 },
	{ "y_string_utf8_max", "[\"\xf4\x8f\xbf\xbf\"]", 0, 0 },
	{ "y_string_del_raw", "[\"\x7f\"]", 0, 0 },
	{ "y_string_slash_raw", "[\"a/b\"]", 0, 0 },
	{ "y_object_nested", "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}", 0, 0 },
	{ "y_object_key_escaped", "{\"k\\u0065y\":1}", 0, 0 },
	{ "y_object_empty_key", "{\"\":0}", 0, 0 },
	/* implementation-defined: what kvnet does */
	{ "i_object_duplicate_key_accepted", "{\"a\":1,\"a\":2}", 0, 0 },
	{ "i_number_int_beyond_int64_token_ok", "[9223372036854775808]", 0, 0 },
	{ "i_utf8_bom_rejected", "\xef\xbb\xbf{}", 0, -EINVAL },
	{ "i_depth_65_rejected_by_default",
	  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	  0, -ELOOP },
	/* must reject */
	{ "n_empty", "", 0, -EINVAL },
	{ "n_ws_only", " \n\t ", 0, -EINVAL },
	{ "n_array_trailing_comma", "[1,2,]", 0, -EINVAL },
	{ "n_object_trailing_comma", "{\"a\":1,}", 0, -EINVAL },
	{ "n_array_leading_comma", "[,1]", 0, -EINVAL },
	{ "n_array_double_comma", "[1,,2]", 0, -EINVAL },
	{ "n_array_missing_comma", "[1 2]", 0, -EINVAL },
	{ "n_array_unclosed", "[1,2", 0, -EINVAL },
	{ "n_object_unclosed", "{\"a\":1", 0, -EINVAL },
	{ "n_array_mismatched_close", "[1}", 0, -EINVAL },
	{ "n_object_mismatched_close", "{\"a\":1]", 0, -EINVAL },
	{ "n_object_missing_colon", "{\"a\" 1}", 0, -EINVAL },
	{ "n_object_missing_value", "{\"a\":}", 0, -EINVAL },
	{ "n_object_unquoted_key", "{a:1}", 0, -EINVAL },
	{ "n_object_single_quoted_key", "{'a':1}", 0, -EINVAL },
	{ "n_object_number_key", "{1:1}", 0, -EINVAL },
	{ "n_string_single_quotes", "['x']", 0, -EINVAL },
	{ "n_number_leading_zero", "[01]", 0, -EINVAL },
	{ "n_number_minus_leading_zero", "[-01]", 0, -EINVAL },
	{ "n_number_plus_sign", "[+1]", 0, -EINVAL },
	{ "n_number_dot_first", "[.5]", 0, -EINVAL },
	{ "n_number_dot_last", "[5.]", 0, -EINVAL },
	{ "n_number_exp_empty", "[1e]", 0, -EINVAL },
	{ "n_number_exp_sign_only", "[1e+]", 0, -EINVAL },
	{ "n_number_minus_alone", "[-]", 0, -EINVAL },
	{ "n_number_hex", "[0x10]", 0, -EINVAL },
	{ "n_number_nan", "[NaN]", 0, -EINVAL },
	{ "n_number_infinity", "[Infinity]", 0, -EINVAL },
	{ "n_number_minus_infinity", "[-Infinity]", 0, -EINVAL },
	{ "n_number_two_dots", "[1.2.3]", 0, -EINVAL },
	{ "n_literal_capital_true", "[True]", 0, -EINVAL },
	{ "n_literal_truncated", "[tru]", 0, -EINVAL },
	{ "n_literal_trailing_letters", "[nullx]", 0, -EINVAL },
	{ "n_string_unterminated", "[\"abc]", 0, -EINVAL },
	{ "n_string_raw_newline", "[\"a\nb\"]", 0, -EINVAL },
	{ "n_string_raw_tab", "[\"a\tb\"]", 0, -EINVAL },
	{ "n_string_raw_nul", "[\"a\0b\"]", 6, -EINVAL },
	{ "n_string_bad_escape_x", "[\"\\x41\"]", 0, -EINVAL },
	{ "n_string_bad_escape_quote", "[\"\\'\"]", 0, -EINVAL },
	{ "n_string_u_short", "[\"\\u12\"]", 0, -EINVAL },
	{ "n_string_u_not_hex", "[\"\\u12G4\"]", 0, -EINVAL },
	{ "n_string_lone_high_surrogate", "[\"\\ud800\"]", 0, -EINVAL },
	{ "n_string_lone_low_surrogate", "[\"\\udc00\"]", 0, -EINVAL },
	{ "n_string_high_then_char", "[\"\\ud83dx\"]", 0, -EINVAL },
	{ "n_string_high_then_high", "[\"\\ud83d\\ud83d\"]", 0, -EINVAL },
	{ "n_string_backslash_at_end", "[\"\\", 0, -EINVAL },
	{ "n_utf8_lone_continuation", "[\"\x80\"]", 0, -EINVAL },
	{ "n_utf8_overlong_slash", "[\"\xc0\xaf\"]", 0, -EINVAL },
	{ "n_utf8_overlong_3byte", "[\"\xe0\x80\xaf\"]", 0, -EINVAL },
	{ "n_utf8_encoded_surrogate", "[\"\xed\xa0\x80\"]", 0, -EINVAL },
	{ "n_utf8_beyond_10ffff", "[\"\xf4\x90\x80\x80\"]", 0, -EINVAL },
	{ "n_utf8_truncated", "[\"\xe2\x82\"]", 0, -EINVAL },
	{ "n_utf8_ff", "[\"\xff\"]", 0, -EINVAL },
	{ "n_utf8_outside_string", "[\xc3\xa9]", 0, -EINVAL },
	{ "n_comment_line", "[1] // c", 0, -EINVAL },
	{ "n_comment_block", "[1 /* c */]", 0, -EINVAL },
	{ "n_trailing_garbage", "{} x", 0, -EINVAL },
	{ "n_two_values", "[1] [2]", 0, -EINVAL },
	{ "n_trailing_nul", "[1]\0", 4, -EINVAL },
	{ "n_ws_formfeed", "[\f1]", 0, -EINVAL },
	{ "n_ws_vertical_tab", "\v[1]", 0, -EINVAL },
	{ "n_undefined", "[undefined]", 0, -EINVAL },
	{ "n_lone_close", "]", 0, -EINVAL },
	{ "n_colon_in_array", "[1:2]", 0, -EINVAL },
};

static void test_conformance_table(void)
{
	unsigned ny = 0, nn = 0, ni = 0;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct jcase *c = &cases[k];
		struct json_doc d;
		struct err e = { 0 };
		size_t n = c->len ? c->len : strlen(c->in);
		int r = json_parse(&d, c->in, n, toks, NTOK, 0, &e);
		if (r != c->want)
			t_note("%s: got %d (%s), want %d", c->name, r, e.msg, c->want);
		T_EQ(r, c->want);
		if (r)
			T_CHECK(e.msg[0] != '\0' && strncmp(e.msg, "json: ", 6) == 0);
		ny += c->name[0] == 'y';
		nn += c->name[0] == 'n';
		ni += c->name[0] == 'i';
	}
	t_note("conformance: %u must-accept, %u must-reject, %u implementation-defined", ny,
	       nn, ni);
}

/* Every non-empty proper prefix of a valid document is itself invalid (documents that
 * are a number at top level aside), and nothing reads past the cut: ASan checks that. */
static void test_truncations_rejected(void)
{
	const char *s = "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\ud83d\\ude00\"],\"b\":{}}";
	size_t n = strlen(s);
	for (size_t cut = 0; cut < n; cut++) {
		char *buf = malloc(cut ? cut : 1);
		memcpy(buf, s, cut);
		struct json_doc d;
		int r = json_parse(&d, buf, cut, toks, NTOK, 0, NULL);
		if (r != -EINVAL)
			t_note("prefix of %zu bytes: %d", cut, r);
		T_EQ(r, -EINVAL);
		free(buf);
	}
	struct json_doc d;
	T_EQ(json_parse(&d, s, n, toks, NTOK, 0, NULL), 0);
}

static void test_error_messages(void)
{
	struct json_doc d;
	struct err e = { 0 };
	T_EQ(json_parse(&d, "[1,2,]", 6, toks, NTOK, 0, &e), -EINVAL);
	T_STREQ(e.msg, "json: byte 5: expected a value (found ']')");
	T_EQ(json_parse(&d, "{\"a\":1} x", 9, toks, NTOK, 0, &e), -EINVAL);
	T_STREQ(e.msg, "json: byte 8: unexpected data after the document (found 'x')");
	T_EQ(json_parse(&d, "[\"\\q\"]", 6, toks, NTOK, 0, &e), -EINVAL);
	T_STREQ(e.msg, "json: byte 2: invalid escape or lone surrogate in string (found '\\')");
	T_EQ(json_parse(&d, "[01]", 4, toks, NTOK, 0, &e), -EINVAL);
	T_STREQ(e.msg, "json: byte 2: invalid number (found '1')");
}

static void test_rfc_examples(void)
{
	struct json_doc d;
	char buf[64];
	int64_t v;
	double f;
	bool b;
	size_t n;
	char *img = t_slurp("test/data/json/rfc8259-image.json", &n);
	T_CHECK(img != NULL);
	if (!img)
		return;
	T_EQ(parse(&d, img, n), 0);
	T_EQ(json_type(&d, 0), JSON_OBJECT);
	T_EQ(json_int64(&d, json_path(&d, 0, "Image.Width"), &v), 0);
	T_EQ(v, 800);
	T_EQ(json_int64(&d, json_path(&d, 0, "Image.Thumbnail.Height"), &v), 0);
	T_EQ(v, 125);
	T_EQ(json_str(&d, json_path(&d, 0, "Image.Title"), buf, sizeof(buf)), 0);
	T_STREQ(buf, "View from 15th Floor");
	T_EQ(json_str(&d, json_find(&d, 0, "Image", "Thumbnail", "Url", NULL), buf, sizeof(buf)),
	     0);
	T_STREQ(buf, "http://www.example.com/image/481989943");
	T_EQ(json_bool(&d, json_path(&d, 0, "Image.Animated"), &b), 0);
	T_CHECK(!b);
	int ids = json_path(&d, 0, "Image.IDs");
	T_EQ(json_type(&d, ids), JSON_ARRAY);
	T_EQ(d.tok[ids].size, 4);
	T_EQ(json_int64(&d, json_path(&d, 0, "Image.IDs[3]"), &v), 0);
	T_EQ(v, 38793);
	T_EQ(json_path(&d, 0, "Image.IDs[4]"), -ENOENT);
	free(img);

	char *zips = t_slurp("test/data/json/rfc8259-zips.json", &n);
	T_CHECK(zips != NULL);
	if (!zips)
		return;
	T_EQ(parse(&d, zips, n), 0);
	T_EQ(d.tok[0].size, 2);
	T_EQ(json_double(&d, json_path(&d, 0, "[1].Longitude"), &f), 0);
	T_CHECK(f == -122.026020);
	T_EQ(json_str(&d, json_find(&d, 0, "0", "City", NULL), buf, sizeof(buf)), 0);
	T_STREQ(buf, "SAN FRANCISCO");
	T_EQ(json_str(&d, json_path(&d, 0, "[0].Address"), buf, sizeof(buf)), 0);
	T_STREQ(buf, "");
	free(zips);

	/* the RFC's scalar texts */
	T_EQ(parse_s(&d, "\"Hello world!\""), 0);
	T_CHECK(json_str_eq(&d, 0, "Hello world!", 12));
	T_EQ(parse_s(&d, "42"), 0);
	T_EQ(json_int64(&d, 0, &v), 0);
	T_EQ(v, 42);
	T_EQ(parse_s(&d, "true"), 0);
	T_EQ(json_type(&d, 0), JSON_TRUE);
}

static void test_token_layout(void)
{
	struct json_doc d;
	T_EQ(parse_s(&d, "{\"a\": [1, true], \"b\": \"x\"}"), 0);
	T_EQ(d.n, 7);
	T_EQ(d.tok[0].type, JSON_OBJECT);
	T_EQ(d.tok[0].size, 2);
	T_EQ(d.tok[0].next, 7);
	T_EQ(d.tok[1].type, JSON_STRING);
	T_CHECK(d.tok[1].flags & JSON_TF_KEY);
	T_EQ(d.tok[2].type, JSON_ARRAY);
	T_EQ(d.tok[2].size, 2);
	T_EQ(d.tok[2].next, 5);
	T_EQ(d.tok[4].type, JSON_TRUE);
	T_EQ(d.tok[6].type, JSON_STRING);
	T_EQ(d.tok[6].start, 23);
	T_EQ(d.tok[6].end, 24);
	size_t n;
	const char *raw = json_raw(&d, 2, &n);
	T_EQ(n, 9);
	T_CHECK(raw && memcmp(raw, "[1, true]", 9) == 0);
}

static void test_enospc_then_retry(void)
{
	const char *s = "{\"a\":[1,2,3,{\"b\":[4,5]}],\"c\":\"d\"}";
	struct json_doc d;
	struct json_tok few[3];
	struct err e = { 0 };
	T_EQ(json_parse(&d, s, strlen(s), few, 3, 0, &e), -ENOSPC);
	T_EQ(d.n, 13);
	T_STREQ(e.msg, "json: document needs 13 tokens, have room for 3");
	/* counting only */
	T_EQ(json_parse(&d, s, strlen(s), NULL, 0, 0, NULL), -ENOSPC);
	T_EQ(d.n, 13);
	/* a bad document is still reported as bad, not as "too few tokens" */
	T_EQ(json_parse(&d, "[1,2,3,]", 8, few, 2, 0, NULL), -EINVAL);
	/* retry with what it said */
	struct json_tok *more = calloc(13, sizeof(*more));
	T_EQ(json_parse(&d, s, strlen(s), more, 13, 0, NULL), 0);
	T_EQ(json_find(&d, 0, "a", "3", "b", "1", NULL), 10);
	free(more);
}

static void test_depth_limit(void)
{
	enum { N = JSON_DEPTH_MAX + 1 };
	static char s[2 * N];
	struct json_doc d;
	struct err e = { 0 };
	for (unsigned depth = 1; depth <= N; depth++) {
		if (depth != 1 && depth != 64 && depth != 65 && depth != JSON_DEPTH_MAX && depth != N)
			continue;
		memset(s, '[', depth);
		memset(s + depth, ']', depth);
		int r = json_parse(&d, s, 2 * depth, toks, NTOK, 0, &e);
		T_EQ(r, depth <= JSON_DEPTH_DEFAULT ? 0 : -ELOOP);
		r = json_parse(&d, s, 2 * depth, toks, NTOK, JSON_DEPTH_MAX, &e);
		T_EQ(r, depth <= JSON_DEPTH_MAX ? 0 : -ELOOP);
	}
	T_STREQ(e.msg, "json: byte 512: nesting deeper than 512 levels");
	/* objects count too */
	const char *o = "{\"a\":{\"a\":{\"a\":1}}}";
	T_EQ(json_parse(&d, o, strlen(o), toks, NTOK, 3, NULL), 0);
	T_EQ(json_parse(&d, o, strlen(o), toks, NTOK, 2, NULL), -ELOOP);
}

static void test_surrogates_and_escapes(void)
{
	struct json_doc d;
	char buf[64];
	size_t n;
	T_EQ(parse_s(&d, "[\"\\ud83d\\ude00\", \"\\uD834\\uDD1E\", \"\\u00e9\\u20ac\\u0041\","
			 "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"a\\u0000b\", \"\\udbff\\udfff\"]"),
	     0);
	T_EQ(json_str(&d, json_index(&d, 0, 0), buf, sizeof(buf)), 0);
	T_STREQ(buf, "\xf0\x9f\x98\x80"); /* U+1F600 */
	T_EQ(json_str(&d, json_index(&d, 0, 1), buf, sizeof(buf)), 0);
	T_STREQ(buf, "\xf0\x9d\x84\x9e"); /* U+1D11E, the RFC's G clef */
	T_EQ(json_str(&d, json_index(&d, 0, 2), buf, sizeof(buf)), 0);
	T_STREQ(buf, "\xc3\xa9\xe2\x82\xac" "A");
	T_EQ(json_str(&d, json_index(&d, 0, 3), buf, sizeof(buf)), 0);
	T_STREQ(buf, "\"\\/\b\f\n\r\t");
	T_EQ(json_str_decode(&d, json_index(&d, 0, 4), buf, sizeof(buf), &n), 0);
	T_EQ(n, 3);
	T_MEMEQ(buf, "a\0b", 3);
	T_EQ(json_str(&d, json_index(&d, 0, 4), buf, sizeof(buf)), -EILSEQ);
	T_EQ(json_str(&d, json_index(&d, 0, 5), buf, sizeof(buf)), 0);
	T_STREQ(buf, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	T_EQ(json_str_len(&d, json_index(&d, 0, 0)), 4);
	T_CHECK(json_str_eq(&d, json_index(&d, 0, 2), "\xc3\xa9\xe2\x82\xac" "A", 6));
	T_CHECK(!json_str_eq(&d, json_index(&d, 0, 2), "\xc3\xa9\xe2\x82\xac", 5));
	T_CHECK(!json_str_eq(&d, json_index(&d, 0, 2), "\xc3\xa9\xe2\x82\xac" "AB", 7));
	/* too small a buffer: -ENOSPC and the size needed */
	T_EQ(json_str_decode(&d, json_index(&d, 0, 0), buf, 4, &n), -ENOSPC);
	T_EQ(n, 4);
	T_EQ(json_str_decode(&d, json_index(&d, 0, 0), buf, 5, &n), 0);
	T_EQ(json_str(&d, 0, buf, sizeof(buf)), -EINVAL); /* the array is no string */
}

static void test_numbers(void)
{
	struct json_doc d;
	int64_t i;
	uint64_t u;
	double f;
	T_EQ(parse_s(&d, "[9223372036854775807, -9223372036854775808, 9223372036854775808,"
			 " -9223372036854775809, 18446744073709551615, 18446744073709551616,"
			 " -1, -0, 1.5, 1e3, 1e400, -2.5E-3, 0, \"7\", 123456789012345678901234567890]"),
	     0);
	T_EQ(json_int64(&d, json_index(&d, 0, 0), &i), 0);
	T_CHECK(i == INT64_MAX);
	T_EQ(json_int64(&d, json_index(&d, 0, 1), &i), 0);
	T_CHECK(i == INT64_MIN);
	T_EQ(json_int64(&d, json_index(&d, 0, 2), &i), -ERANGE);
	T_EQ(json_int64(&d, json_index(&d, 0, 3), &i), -ERANGE);
	T_EQ(json_uint64(&d, json_index(&d, 0, 2), &u), 0);
	T_CHECK(u == 9223372036854775808ull);
	T_EQ(json_uint64(&d, json_index(&d, 0, 4), &u), 0);
	T_CHECK(u == UINT64_MAX);
	T_EQ(json_uint64(&d, json_index(&d, 0, 5), &u), -ERANGE);
	T_EQ(json_uint64(&d, json_index(&d, 0, 6), &u), -ERANGE);
	T_EQ(json_int64(&d, json_index(&d, 0, 6), &i), 0);
	T_EQ(i, -1);
	T_EQ(json_uint64(&d, json_index(&d, 0, 7), &u), 0);
	T_EQ(u, 0);
	T_EQ(json_int64(&d, json_index(&d, 0, 8), &i), -EINVAL);
	T_EQ(json_int64(&d, json_index(&d, 0, 9), &i), -EINVAL);
	T_EQ(json_double(&d, json_index(&d, 0, 8), &f), 0);
	T_CHECK(f == 1.5);
	T_EQ(json_double(&d, json_index(&d, 0, 9), &f), 0);
	T_CHECK(f == 1000.0);
	T_EQ(json_double(&d, json_index(&d, 0, 10), &f), -ERANGE);
	T_EQ(json_double(&d, json_index(&d, 0, 11), &f), 0);
	T_CHECK(f == -2.5e-3);
	T_EQ(json_int64(&d, json_index(&d, 0, 12), &i), 0);
	T_EQ(i, 0);
	T_EQ(json_int64(&d, json_index(&d, 0, 13), &i), -EINVAL); /* a string */
	T_EQ(json_int64(&d, json_index(&d, 0, 14), &i), -ERANGE);
	T_EQ(json_double(&d, json_index(&d, 0, 14), &f), 0);
	T_CHECK(f > 1.2e29 && f < 1.3e29);
	T_EQ(json_int64(&d, 99, &i), -EINVAL);
	T_CHECK(json_number_valid("-0.5e+7", 7));
	T_CHECK(!json_number_valid("-0.5e+", 6));
	T_CHECK(!json_number_valid("00", 2));
	T_CHECK(!json_number_valid("", 0));
}

static void test_lookups(void)
{
	struct json_doc d;
	const char *s = "{\"metadata\":{\"name\":\"p\",\"labels\":{\"kubevirt.io/domain\":\"vm-a\","
			"\"a\\u002fb\":\"esc\",\"a.b\":\"dot\",\"q\\\"x\":\"quote\"}},"
			"\"list\":[{\"n\":0},{\"n\":1},{\"n\":2}],\"scalar\":5}";
	char buf[32];
	T_EQ(parse_s(&d, s), 0);
	T_EQ(json_str(&d, json_path(&d, 0, "metadata.labels[\"kubevirt.io/domain\"]"), buf,
		      sizeof(buf)),
	     0);
	T_STREQ(buf, "vm-a");
	T_EQ(json_str(&d, json_find(&d, 0, "metadata", "labels", "kubevirt.io/domain", NULL), buf,
		      sizeof(buf)),
	     0);
	T_STREQ(buf, "vm-a");
	/* a key written with escapes matches its decoded form */
	T_EQ(json_str(&d, json_find(&d, 0, "metadata", "labels", "a/b", NULL), buf, sizeof(buf)),
	     0);
	T_STREQ(buf, "esc");
	T_EQ(json_str(&d, json_path(&d, 0, "metadata.labels[\"a.b\"]"), buf, sizeof(buf)), 0);
	T_STREQ(buf, "dot");
	T_EQ(json_str(&d, json_path(&d, 0, "metadata.labels[\"q\\\"x\"]"), buf, sizeof(buf)), 0);
	T_STREQ(buf, "quote");
	T_EQ(json_path(&d, 0, "metadata.labels.a.b"), -ENOENT);
	T_EQ(json_path(&d, 0, "metadata.missing"), -ENOENT);
	T_EQ(json_path(&d, 0, "scalar.x"), -EINVAL);
	T_EQ(json_path(&d, 0, "list.x"), -EINVAL);
	T_EQ(json_path(&d, 0, "list[3]"), -ENOENT);
	T_EQ(json_path(&d, 0, "list[1"), -EINVAL);
	T_EQ(json_path(&d, 0, "metadata..name"), -EINVAL);
	T_EQ(json_path(&d, 0, ".metadata"), -EINVAL);
	T_EQ(json_path(&d, 0, "metadata[\"name\"x"), -EINVAL);
	T_EQ(json_path(&d, 0, ""), 0);
	int64_t v;
	T_EQ(json_int64(&d, json_path(&d, 0, "list[2].n"), &v), 0);
	T_EQ(v, 2);
	T_EQ(json_int64(&d, json_find(&d, 0, "list", "1", "n", NULL), &v), 0);
	T_EQ(v, 1);
	T_EQ(json_find(&d, 0, "list", "x", NULL), -ENOENT);
	T_EQ(json_find(&d, 0, "list", "-1", NULL), -ENOENT);
	T_EQ(json_find(&d, 0, NULL), 0);
	T_EQ(json_get(&d, json_get(&d, 0, "scalar"), "x"), -EINVAL);
	T_EQ(json_get(&d, -ENOENT, "x"), -EINVAL);
	T_EQ(json_index(&d, 0, 0), -EINVAL);

	/* iteration */
	struct json_iter it;
	int k, val, count = 0;
	json_iter_init(&it, &d, json_path(&d, 0, "metadata.labels"));
	while (json_iter_next(&it, &k, &val)) {
		T_EQ(json_type(&d, k), JSON_STRING);
		T_EQ(json_type(&d, val), JSON_STRING);
		count++;
	}
	T_EQ(count, 4);
	count = 0;
	json_iter_init(&it, &d, json_get(&d, 0, "list"));
	while (json_iter_next(&it, &k, &val)) {
		T_EQ(k, -1);
		T_EQ(json_int64(&d, json_get(&d, val, "n"), &v), 0);
		T_EQ(v, count);
		count++;
	}
	T_EQ(count, 3);
	json_iter_init(&it, &d, json_get(&d, 0, "scalar"));
	T_CHECK(!json_iter_next(&it, &k, &val));
	T_EQ(parse_s(&d, "{}"), 0);
	json_iter_init(&it, &d, 0);
	T_CHECK(!json_iter_next(&it, &k, &val));
}

static void test_writer_fixed(void)
{
	char buf[256];
	struct json_w w;
	struct err e = { 0 };
	json_w_init(&w, buf, sizeof(buf));
	json_w_obj_begin(&w);
	json_w_kstr(&w, "name", "vm-a");
	json_w_kint(&w, "n", -42);
	json_w_key(&w, "big");
	json_w_uint(&w, UINT64_MAX);
	json_w_key(&w, "min");
	json_w_int(&w, INT64_MIN);
	json_w_kbool(&w, "ok", true);
	json_w_key(&w, "list");
	json_w_arr_begin(&w);
	json_w_null(&w);
	json_w_number(&w, "1.5e3", 5);
	json_w_arr_begin(&w);
	json_w_arr_end(&w);
	json_w_obj_begin(&w);
	json_w_obj_end(&w);
	json_w_bool(&w, false);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	T_EQ(json_w_finish(&w, &e), 0);
	T_STREQ(buf, "{\"name\":\"vm-a\",\"n\":-42,\"big\":18446744073709551615,"
		     "\"min\":-9223372036854775808,\"ok\":true,\"list\":[null,1.5e3,[],{},false]}");
	T_EQ(w.len, strlen(buf));
}

static void test_writer_escaping(void)
{
	char buf[256];
	struct json_w w;
	json_w_init(&w, buf, sizeof(buf));
	json_w_str(&w, "q\" b\\ / \b\f\n\r\t \x01\x1f\x7f \xc3\xa9");
	T_EQ(json_w_finish(&w, NULL), 0);
	T_STREQ(buf, "\"q\\\" b\\\\ / \\b\\f\\n\\r\\t \\u0001\\u001f\x7f \xc3\xa9\"");
	/* invalid UTF-8 is refused, not passed on */
	json_w_init(&w, buf, sizeof(buf));
	json_w_str(&w, "a\xc0\xafz");
	struct err e = { 0 };
	T_EQ(json_w_finish(&w, &e), -EILSEQ);
	T_STREQ(e.msg, "json: write: string is not valid UTF-8");
	/* embedded NUL via strn */
	json_w_init(&w, buf, sizeof(buf));
	json_w_strn(&w, "a\0b", 3);
	T_EQ(json_w_finish(&w, NULL), 0);
	T_STREQ(buf, "\"a\\u0000b\"");
}

static void test_writer_overflow_is_error(void)
{
	const char *want = "{\"key\":\"value\"}";
	size_t need = strlen(want) + 1;
	for (size_t cap = 0; cap <= need; cap++) {
		char *buf = malloc(cap ? cap : 1);
		struct json_w w;
		json_w_init(&w, cap ? buf : NULL, cap);
		json_w_obj_begin(&w);
		json_w_kstr(&w, "key", "value");
		json_w_obj_end(&w);
		int r = json_w_finish(&w, NULL);
		T_EQ(r, cap < need ? -ENOSPC : 0);
		if (!r)
			T_STREQ(buf, want);
		free(buf);
	}
}

static void test_writer_misuse(void)
{
	char buf[64];
	struct json_w w;
	struct err e = { 0 };
	json_w_init(&w, buf, sizeof(buf));
	json_w_obj_begin(&w);
	json_w_str(&w, "no key");
	T_EQ(json_w_finish(&w, &e), -EINVAL);
	T_STREQ(e.msg, "json: write: a value inside an object without a key");

	json_w_init(&w, buf, sizeof(buf));
	json_w_arr_begin(&w);
	json_w_key(&w, "k");
	T_EQ(json_w_finish(&w, NULL), -EINVAL);

	json_w_init(&w, buf, sizeof(buf));
	json_w_arr_begin(&w);
	json_w_obj_end(&w);
	T_EQ(json_w_finish(&w, NULL), -EINVAL);

	json_w_init(&w, buf, sizeof(buf));
	json_w_arr_begin(&w);
	T_EQ(json_w_finish(&w, &e), -EINVAL);
	T_STREQ(e.msg, "json: write: document incomplete");

	json_w_init(&w, buf, sizeof(buf));
	json_w_int(&w, 1);
	json_w_int(&w, 2);
	T_EQ(json_w_finish(&w, NULL), -EINVAL);

	json_w_init(&w, buf, sizeof(buf));
	json_w_number(&w, "01", 2);
	T_EQ(json_w_finish(&w, NULL), -EINVAL);

	char big[256];
	json_w_init(&w, big, sizeof(big));
	for (int k = 0; k < JSON_W_DEPTH + 1; k++)
		json_w_arr_begin(&w);
	T_EQ(json_w_finish(&w, NULL), -EINVAL);
}

static void test_writer_grow(void)
{
	struct json_w w;
	json_w_init_grow(&w, 1 << 20);
	json_w_arr_begin(&w);
	for (int k = 0; k < 10000; k++)
		json_w_int(&w, k);
	json_w_arr_end(&w);
	T_EQ(json_w_finish(&w, NULL), 0);
	size_t n;
	char *out = json_w_take(&w, &n);
	struct json_doc d;
	struct json_tok *t = calloc(10001, sizeof(*t));
	T_EQ(json_parse(&d, out, n, t, 10001, 0, NULL), 0);
	T_EQ(d.tok[0].size, 10000);
	int64_t v;
	T_EQ(json_int64(&d, json_index(&d, 0, 9999), &v), 0);
	T_EQ(v, 9999);
	free(t);
	free(out);
	json_w_free(&w);

	/* the limit is an error, not a cut */
	json_w_init_grow(&w, 100);
	json_w_arr_begin(&w);
	for (int k = 0; k < 100; k++)
		json_w_int(&w, k);
	json_w_arr_end(&w);
	T_EQ(json_w_finish(&w, NULL), -ENOSPC);
	T_CHECK(w.len < 100);
	json_w_free(&w);
}

/* Re-encode doc with json_w_tok and compare with python3's compact dump of the same
 * file: an independent implementation decides what the canonical form is. */
static void roundtrip_file(const char *path)
{
	size_t n;
	char *src = t_slurp(path, &n);
	T_CHECK(src != NULL);
	if (!src)
		return;
	struct json_doc d;
	struct err e = { 0 };
	T_EQ(json_parse(&d, src, n, toks, NTOK, 0, &e), 0);
	struct json_w w;
	json_w_init_grow(&w, 1 << 20);
	json_w_tok(&w, &d, 0);
	T_EQ(json_w_finish(&w, &e), 0);
	int st;
	char *py = t_sh(&st,
			"python3 -c 'import json,sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1])),"
			" separators=(\",\", \":\"), ensure_ascii=False))' %s",
			path);
	T_EQ(st, 0);
	if (py && w.buf)
		T_STREQ(w.buf, py);
	/* and the output parses to the same number of tokens */
	unsigned ntok = d.n;
	struct json_doc d2;
	T_EQ(json_parse(&d2, w.buf, w.len, toks, NTOK, 0, NULL), 0);
	T_EQ(d2.n, ntok);
	free(py);
	json_w_free(&w);
	free(src);
}

static void test_roundtrip_fixtures(void)
{
	roundtrip_file("test/data/fixtures/vm-a.source-pod.json");
	roundtrip_file("test/data/fixtures/vm-a.target-pod.json");
	roundtrip_file("test/data/fixtures/vm-a.vm.json");
	roundtrip_file("test/data/fixtures/vm-a.vmi.json");
	roundtrip_file("test/data/fixtures/vm-a.vmim.json");
	roundtrip_file("test/data/json/rfc8259-image.json");
}

static void test_roundtrip_escapes(void)
{
	const char *s = "{\"k\\u00e9y\":[\"\\ud83d\\ude00\\n\\u0001\\/\",-0,1e5,true,null,{}]}";
	struct json_doc d;
	char out[128];
	T_EQ(parse_s(&d, s), 0);
	struct json_w w;
	json_w_init(&w, out, sizeof(out));
	json_w_tok(&w, &d, 0);
	T_EQ(json_w_finish(&w, NULL), 0);
	T_STREQ(out, "{\"k\xc3\xa9y\":[\"\xf0\x9f\x98\x80\\n\\u0001/\",-0,1e5,true,null,{}]}");
	/* a subtree alone */
	json_w_init(&w, out, sizeof(out));
	json_w_tok(&w, &d, json_get(&d, 0, "k\xc3\xa9y"));
	T_EQ(json_w_finish(&w, NULL), 0);
	T_STREQ(out, "[\"\xf0\x9f\x98\x80\\n\\u0001/\",-0,1e5,true,null,{}]");
}

static void test_fixture_values(void)
{
	size_t n;
	char *src = t_slurp("test/data/fixtures/vm-a.vmi.json", &n);
	T_CHECK(src != NULL);
	if (!src)
		return;
	struct json_doc d;
	char buf[128];
	bool b;
	int64_t v;
	T_EQ(parse(&d, src, n), 0);
	T_EQ(json_str(&d, json_path(&d, 0, "status.migrationState.targetNodeAddress"), buf,
		      sizeof(buf)),
	     0);
	T_STREQ(buf, "198.18.0.12");
	T_EQ(json_str(&d, json_path(&d, 0, "status.interfaces[0].mac"), buf, sizeof(buf)), 0);
	T_STREQ(buf, "52:54:00:3a:7f:21");
	T_EQ(json_bool(&d, json_path(&d, 0, "status.migrationState.completed"), &b), 0);
	T_CHECK(!b);
	T_EQ(json_str(&d,
		      json_path(&d, 0,
				"status.activePods[\"9a1d7e6f-5c4b-4a3d-8e2f-0f1e2d3c4b5a\"]"),
		      buf, sizeof(buf)),
	     0);
	T_STREQ(buf, "node-b");
	T_EQ(json_int64(&d, json_path(&d, 0, "status.interfaces[0].queueCount"), &v), 0);
	T_EQ(v, 1);
	free(src);
}

int main(void)
{
	T_RUN(test_conformance_table);
	T_RUN(test_truncations_rejected);
	T_RUN(test_error_messages);
	T_RUN(test_rfc_examples);
	T_RUN(test_token_layout);
	T_RUN(test_enospc_then_retry);
	T_RUN(test_depth_limit);
	T_RUN(test_surrogates_and_escapes);
	T_RUN(test_numbers);
	T_RUN(test_lookups);
	T_RUN(test_writer_fixed);
	T_RUN(test_writer_escaping);
	T_RUN(test_writer_overflow_is_error);
	T_RUN(test_writer_misuse);
	T_RUN(test_writer_grow);
	T_RUN(test_roundtrip_fixtures);
	T_RUN(test_roundtrip_escapes);
	T_RUN(test_fixture_values);
	return t_done();
}
