/* json-bench — decode recorded pod watch events with kvnet's reader, tokenizer and typed
 * Pod view, the way the agent does: the file is fed to kube/watch in 64 KiB reads, each
 * event becomes a kube_pod_view plus the domain annotation, the migration label and the
 * controller ownerReference. Prints "events SECONDS CHECKSUM" for the best of ROUNDS;
 * the checksum (total length of the extracted strings) must match json-py.py's.
 *
 *   json-bench FILE ROUNDS
 */
#include "lib/json.h"
#include "kube/types.h"
#include "kube/watch.h"
#include "lib/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* One pass over the whole file. Returns events decoded, or -1. */
static long pass(const char *buf, size_t len, unsigned long long *sum)
{
	struct watch_reader w;
	char mem[4096];
	struct kube_arena a;
	struct err e = { 0 };
	long events = 0;
	watch_init(&w, 1 << 20, 1 << 14);
	for (size_t at = 0; at < len;) {
		size_t n = len - at < 65536 ? len - at : 65536;
		size_t off = 0;
		while (off < n) {
			struct watch_event ev;
			long k = watch_feed(&w, buf + at + off, n - off, &ev, &e);
			if (k < 0) {
				fprintf(stderr, "json-bench: %s\n", e.msg);
				watch_free(&w);
				return -1;
			}
			off += (size_t)k;
			if (!ev.type)
				continue;
			struct kube_pod p;
			struct kube_owner_ref o;
			kube_arena_init(&a, mem, sizeof(mem));
			if (kube_pod_view(&ev.doc, ev.object, &p, &a, &e) != 0) {
				fprintf(stderr, "json-bench: %s\n", e.msg);
				watch_free(&w);
				return -1;
			}
			const char *dom = kube_annotation(&p.meta, "kubevirt.io/domain", &a);
			const char *job = kube_label(&p.meta, "kubevirt.io/migrationJobUID", &a);
			bool ctrl = kube_controller_ref(&p.meta, &o, &a, &e) == 0;
			*sum += strlen(watch_type_name(ev.type)) + slen(p.meta.name) +
				slen(p.meta.namespace_) + slen(p.meta.uid) +
				slen(p.meta.resource_version) + slen(p.node_name) + slen(p.phase) +
				slen(p.pod_ip) + slen(dom) + slen(job) + (ctrl ? slen(o.uid) : 0);
			events++;
		}
		at += n;
	}
	if (watch_finish(&w, &e) != 0) {
		fprintf(stderr, "json-bench: %s\n", e.msg);
		events = -1;
	}
	watch_free(&w);
	return events;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: json-bench FILE ROUNDS\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc(len > 0 ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "json-bench: cannot read %s\n", argv[1]);
		return 1;
	}
	fclose(f);
	int rounds = atoi(argv[2]);
	double best = -1;
	long events = 0;
	unsigned long long sum = 0;
	for (int r = 0; r < rounds; r++) {
		unsigned long long s = 0;
		double t0 = now();
		events = pass(buf, (size_t)len, &s);
		double dt = now() - t0;
		if (events < 0)
			return 1;
		sum = s;
		if (best < 0 || dt < best)
			best = dt;
	}
	printf("%ld %.6f %llu\n", events, best, sum);
	free(buf);
	return 0;
}
