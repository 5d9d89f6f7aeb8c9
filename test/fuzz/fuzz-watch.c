/* libFuzzer target for kube/watch: the input (after two bytes seeding the split) is a
 * watch body fed whole and again in random pieces with small limits; both runs must see
 * the same events (type and object extent) and the same outcome. */
#include "kube/watch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	long rc;          /* 0 or the first error */
	unsigned events;  /* events seen */
	uint64_t sum;     /* hash over (type, object length) in order */
};

static void feed(const char *s, size_t n, uint32_t seed, struct outcome *o)
{
	struct watch_reader w;
	memset(o, 0, sizeof(*o));
	watch_init(&w, 4096, 256);
	size_t at = 0;
	while (at < n && !o->rc) {
		size_t len = n - at;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			len = 1 + (seed >> 16) % 97;
			if (len > n - at)
				len = n - at;
		}
		char *piece = malloc(len);
		memcpy(piece, s + at, len);
		size_t off = 0;
		while (off < len) {
			struct watch_event ev;
			long k = watch_feed(&w, piece + off, len - off, &ev, NULL);
			if (k < 0) {
				o->rc = k;
				break;
			}
			off += (size_t)k;
			if (!ev.type) {
				if (off != len)
					abort(); /* no event means everything was taken */
				continue;
			}
			size_t ol;
			const char *raw = json_raw(&ev.doc, ev.object, &ol);
			if (!raw || json_type(&ev.doc, ev.object) != JSON_OBJECT)
				abort();
			o->events++;
			o->sum = o->sum * 131 + (uint64_t)ev.type * 7 + ol;
		}
		free(piece);
		at += len;
	}
	if (!o->rc)
		o->rc = watch_finish(&w, NULL);
	watch_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 1;
	struct outcome whole, split;
	feed((const char *)data + 2, size - 2, 0, &whole);
	feed((const char *)data + 2, size - 2, seed, &split);
	if (whole.rc != split.rc || whole.events != split.events || whole.sum != split.sum)
		abort();
	return 0;
}
