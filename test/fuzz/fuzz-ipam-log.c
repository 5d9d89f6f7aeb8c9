/* libFuzzer target for the file datastore's log reader (ipam_log_walk): any input either
 * is refused with -EUCLEAN before a payload is handed out, or every payload handed out
 * lies inside the input, carries no raw newline, and the frames' seqs count up by one;
 * the walk's end never passes the input's end. Payloads go on to the change-list reader. */
#include "ipam/ds_file.h"
#include "lib/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	const char *buf;   /* the input */
	size_t size;	   /* its length */
	unsigned payloads; /* payloads handed out */
};

static int rec_cb(void *arg, enum ipam_kind kind, const char *name, const char *data, size_t len,
		  struct err *e)
{
	(void)arg;
	(void)data;
	(void)len;
	(void)e;
	if (kind < IPAM_POOL || kind > IPAM_KIND_LAST || !ipam_name_valid(name))
		abort();
	return 0;
}

static int cb(void *arg, const char *payload, size_t len, struct err *e)
{
	struct seen *s = arg;
	s->payloads++;
	if (payload < s->buf + IPAM_LOG_HDR || payload + len > s->buf + s->size ||
	    memchr(payload, '\n', len))
		abort();
	ipam_journal_walk(payload, len, rec_cb, NULL, e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = {.buf = (const char *)data, .size = size};
	struct ipam_log_pos pos;
	struct err e;
	int r = ipam_log_walk((const char *)data, size, cb, &s, &pos, &e);
	if (r && (r != -EUCLEAN || s.payloads != 0))
		abort();
	if (pos.end > size || pos.frames != s.payloads)
		abort();
	/* a frame header written by ipam_log_header always reads back */
	if (size >= 1 && size < 4096 && !memchr(data, '\n', size)) {
		char *f = malloc(IPAM_LOG_HDR + size + 1);
		if (!f)
			return 0;
		ipam_log_header(f, 7, (const char *)data, size);
		memcpy(f + IPAM_LOG_HDR, data, size);
		f[IPAM_LOG_HDR + size] = '\n';
		struct seen s2 = {.buf = f, .size = IPAM_LOG_HDR + size + 1};
		if (ipam_log_walk(f, s2.size, cb, &s2, &pos, &e) || pos.frames != 1 ||
		    pos.seq != 7 || pos.end != s2.size)
			abort();
		free(f);
	}
	return 0;
}
