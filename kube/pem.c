/* pem — base64 and PEM decoding; see pem.h. */
#include "kube/pem.h"

#include "lib/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t pem_base64_max(size_t n)
{
	return n / 4 * 3 + 3;
}

/* Value of a base64 character, -1 for anything else. */
static int b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static bool is_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int pem_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	unsigned have = 0; /* characters in the current group of 4 */
	unsigned pad = 0;  /* '=' seen; only whitespace and '=' may follow */
	size_t o = 0;

	*outlen = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (is_space(ch))
			continue;
		if (ch == '=') {
			/* "xx==" or "xxx=": padding completes a group of 2 or 3 */
			if (have + pad < 2 || have + pad >= 4)
				return -EINVAL;
			pad++;
			if (have + pad == 4) {
				if (have == 2 && pad == 2) {
					if (o + 1 > cap)
						return -ENOSPC;
					out[o++] = (uint8_t)(acc >> 4);
				} else if (have == 3 && pad == 1) {
					if (o + 2 > cap)
						return -ENOSPC;
					out[o++] = (uint8_t)(acc >> 10);
					out[o++] = (uint8_t)(acc >> 2);
				} else {
					return -EINVAL;
				}
				have = 0;
				acc = 0;
				pad = 4; /* finished: nothing but whitespace may follow */
			}
			continue;
		}
		if (pad)
			return -EINVAL;
		int v = b64val(ch);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		if (++have == 4) {
			if (o + 3 > cap)
				return -ENOSPC;
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			have = 0;
			acc = 0;
		}
	}
	if (have != 0 || (pad != 0 && pad != 4))
		return -EINVAL;
	*outlen = o;
	return 0;
}

/* memmem over a length-bounded range. */
static const char *find(const char *p, const char *end, const char *needle)
{
	size_t nl = strlen(needle);
	while (p && (size_t)(end - p) >= nl) {
		const char *q = memchr(p, needle[0], (size_t)(end - p) - nl + 1);
		if (!q)
			return NULL;
		if (memcmp(q, needle, nl) == 0)
			return q;
		p = q + 1;
	}
	return NULL;
}

static unsigned line_of(const char *text, const char *at)
{
	unsigned line = 1;
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

bool pem_is_pem(const void *text, size_t n)
{
	const char *t = text;
	return find(t, t + n, "-----BEGIN ") != NULL;
}

int pem_next(const char *text, size_t n, size_t *off, struct pem_block *b, const char *what,
	     struct err *e)
{
	const char *end = text + n;
	memset(b, 0, sizeof(*b));
	if (*off >= n)
		return 0;
	const char *begin = find(text + *off, end, "-----BEGIN ");
	if (!begin) {
		*off = n;
		return 0;
	}
	unsigned line = line_of(text, begin);
	const char *lab = begin + 11;
	const char *lab_end = find(lab, end, "-----");
	if (!lab_end || lab_end - lab >= PEM_LABEL_MAX || memchr(lab, '\n', (size_t)(lab_end - lab)))
		return err_setx(e, EINVAL, "%s: line %u: PEM BEGIN line has no label ending in -----",
				what, line);
	for (const char *p = lab; p < lab_end; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return err_setx(e, EINVAL, "%s: line %u: PEM label has a control character",
					what, line);
	memcpy(b->label, lab, (size_t)(lab_end - lab));
	b->label[lab_end - lab] = '\0';

	char endline[PEM_LABEL_MAX + 16];
	size_t el = (size_t)(lab_end - lab);
	memcpy(endline, "-----END ", 9);
	memcpy(endline + 9, lab, el);
	memcpy(endline + 9 + el, "-----", 6);

	const char *body = lab_end + 5;
	const char *stop = find(body, end, endline);
	if (!stop)
		return err_setx(e, EINVAL, "%s: line %u: PEM block %s: no matching END line", what,
				line, b->label);
	if (find(body, stop, "Proc-Type:") || find(body, stop, "DEK-Info:"))
		return err_setx(e, EINVAL,
				"%s: line %u: PEM block %s: encrypted keys are not supported", what,
				line, b->label);
	size_t blen = (size_t)(stop - body);
	size_t cap = pem_base64_max(blen);
	b->der = malloc(cap ? cap : 1);
	if (!b->der)
		return err_set(e, ENOMEM, "%s: line %u: PEM block %s", what, line, b->label);
	int r = pem_base64_decode(body, blen, b->der, cap, &b->len);
	if (r < 0 || b->len == 0) {
		free(b->der);
		b->der = NULL;
		b->len = 0;
		return err_setx(e, EINVAL, "%s: line %u: PEM block %s: %s", what, line, b->label,
				r < 0 ? "bad base64 body" : "empty body");
	}
	*off = (size_t)(stop - text) + strlen(endline);
	return 1;
}
