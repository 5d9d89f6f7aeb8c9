/* ipamctl output: kubectl-style tables, pretty JSON, the action lists of changing
 * commands; see ipamctl.h. */
#include "cmd/ipamctl.h"

#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_errx(const char *fmt, ...)
{
	va_list ap;
	fputs("ipamctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void ctl_tbl_row(struct ctl_tbl *t, ...)
{
	if (t->rows == t->cap) {
		unsigned nc = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cell, (size_t)nc * t->ncols * sizeof(*p));
		if (!p) {
			ctl_errx("out of memory");
			exit(1);
		}
		t->cell = p;
		t->cap = nc;
	}
	va_list ap;
	va_start(ap, t);
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		t->cell[t->rows * t->ncols + i] = strdup(s && *s ? s : "-");
	}
	va_end(ap);
	t->rows++;
}

void ctl_tbl_free(struct ctl_tbl *t)
{
	for (unsigned i = 0; i < t->rows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->rows = t->cap = 0;
}

void ctl_tbl_print(struct ctl_tbl *t)
{
	size_t w[TBL_COLS] = {0};
	for (unsigned r = 0; r < t->rows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r * t->ncols + c];
			size_t n = s ? strlen(s) : 0;
			if (n > w[c])
				w[c] = n;
		}
	for (unsigned r = 0; r < t->rows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r * t->ncols + c];
			if (c + 1 == t->ncols)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s   ", (int)w[c], s ? s : "");
		}
	}
	ctl_tbl_free(t);
}

/* Print compact JSON text indented by two spaces (kubectl -o json style). */
int ctl_print_pretty(const char *text, size_t len)
{
	struct json_doc d;
	struct err e = {0};
	int rc = json_parse(&d, text, len, NULL, 0, 0, &e);
	if (rc && rc != -ENOSPC)
		return rc;
	struct json_tok *tok = calloc(d.n ? d.n : 1, sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	if ((rc = json_parse(&d, text, len, tok, d.n, 0, &e))) {
		free(tok);
		return rc;
	}
	/* walk tokens with an explicit stack of "remaining children" */
	unsigned depth = 0;
	uint32_t left[JSON_DEPTH_MAX + 1];
	bool isobj[JSON_DEPTH_MAX + 1];
	bool first[JSON_DEPTH_MAX + 1];
	left[0] = 1;
	isobj[0] = false;
	first[0] = true;
	for (unsigned i = 0; i < d.n; i++) {
		const struct json_tok *t = &tok[i];
		bool key = t->flags & JSON_TF_KEY;
		if (depth > 0 && (key || !isobj[depth])) {
			printf("%s\n%*s", first[depth] ? "" : ",", (int)depth * 2, "");
			first[depth] = false;
		}
		size_t n;
		const char *raw = json_raw(&d, (int)i, &n);
		switch ((enum json_type)t->type) {
		case JSON_OBJECT:
		case JSON_ARRAY:
			putchar(t->type == JSON_OBJECT ? '{' : '[');
			if (!key && depth > 0 && !isobj[depth])
				left[depth]--;
			else if (depth > 0 && isobj[depth])
				left[depth]--;
			if (t->size == 0) {
				putchar(t->type == JSON_OBJECT ? '}' : ']');
				break;
			}
			depth++;
			left[depth] = t->size * (t->type == JSON_OBJECT ? 2 : 1);
			isobj[depth] = t->type == JSON_OBJECT;
			first[depth] = true;
			continue;
		case JSON_STRING:
			printf("\"%.*s\"%s", (int)n, raw, key ? ": " : "");
			left[depth]--;
			break;
		case JSON_NUMBER:
		case JSON_TRUE:
		case JSON_FALSE:
		case JSON_NULL:
			printf("%.*s", (int)n, raw);
			left[depth]--;
			break;
		}
		while (depth > 0 && left[depth] == 0) {
			printf("\n%*s%c", (int)(depth - 1) * 2, "", isobj[depth] ? '}' : ']');
			depth--;
		}
	}
	putchar('\n');
	free(tok);
	return 0;
}

/* Finish writer w and print it pretty; 0 or 1 (failure reported). */
int ctl_emit_json(struct json_w *w)
{
	struct err e = {0};
	if (json_w_finish(w, &e) < 0) {
		ctl_errx("writing JSON: %s", e.msg);
		json_w_free(w);
		return 1;
	}
	int rc = ctl_print_pretty(w->buf, w->len);
	json_w_free(w);
	if (rc) {
		ctl_errx("writing JSON: cannot re-read own output");
		return 1;
	}
	return 0;
}

void ctl_w_kstr(struct json_w *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_str(w, v);
}

void ctl_w_kuint(struct json_w *w, const char *k, uint64_t v)
{
	json_w_key(w, k);
	json_w_uint(w, v);
}

void ctl_w_k128(struct json_w *w, const char *k, unsigned __int128 v)
{
	char s[48];
	ipam_u128_str(v, s, sizeof(s));
	json_w_key(w, k);
	json_w_number(w, s, strlen(s));
}

void ctl_json_head(struct json_w *w, const char *kind)
{
	json_w_init_grow(w, CTL_FILE_MAX);
	json_w_obj_begin(w);
	ctl_w_kstr(w, "apiVersion", "kvnet.io/v1");
	ctl_w_kstr(w, "kind", kind);
}

void ctl_act_add(struct ctl_acts *a, const char *verb, const char *ip, const char *handle,
		    const char *fmt, ...)
{
	if (a->n == a->cap) {
		unsigned nc = a->cap ? a->cap * 2 : 16;
		struct ctl_act *p = realloc(a->v, nc * sizeof(*p));
		if (!p) {
			ctl_errx("out of memory");
			exit(1);
		}
		a->v = p;
		a->cap = nc;
	}
	struct ctl_act *x = &a->v[a->n++];
	snprintf(x->verb, sizeof(x->verb), "%s", verb);
	snprintf(x->ip, sizeof(x->ip), "%s", ip ? ip : "");
	snprintf(x->handle, sizeof(x->handle), "%s", handle ? handle : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
	va_end(ap);
	if (!strcmp(verb, "refused") || !strcmp(verb, "failed") || !strcmp(verb, "left"))
		a->refused++;
}

int ctl_print_acts(struct ctl *x, const char *cmd, const struct ctl_acts *a)
{
	if (x->out == OUT_JSON) {
		struct json_w w;
		ctl_json_head(&w, "IPAMCtlResult");
		ctl_w_kstr(&w, "command", cmd);
		json_w_key(&w, "actions");
		json_w_arr_begin(&w);
		for (unsigned i = 0; i < a->n; i++) {
			json_w_obj_begin(&w);
			ctl_w_kstr(&w, "action", a->v[i].verb);
			if (a->v[i].ip[0])
				ctl_w_kstr(&w, "ip", a->v[i].ip);
			if (a->v[i].handle[0])
				ctl_w_kstr(&w, "handle", a->v[i].handle);
			ctl_w_kstr(&w, "detail", a->v[i].detail);
			json_w_obj_end(&w);
		}
		json_w_arr_end(&w);
		json_w_obj_end(&w);
		return ctl_emit_json(&w);
	}
	for (unsigned i = 0; i < a->n; i++) {
		const struct ctl_act *v = &a->v[i];
		FILE *f = !strcmp(v->verb, "refused") || !strcmp(v->verb, "failed") ? stderr : stdout;
		fprintf(f, "%s%s%s%s%s%s\n", v->verb, v->ip[0] ? " " : "", v->ip,
			v->handle[0] ? " (handle " : "", v->handle, v->handle[0] ? ")" : "");
		if (v->detail[0])
			fprintf(f, "  %s\n", v->detail);
	}
	return 0;
}
