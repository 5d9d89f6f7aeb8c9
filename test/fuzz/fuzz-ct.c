/* libFuzzer target for net/ct: every parser of untrusted conntrack bytes, over any input.
 *
 *   - the input as a dump reply (nl_reply_feed, seq/port id taken from the first message)
 *     with ct_parse on each message, and as a datagram of events (ct_events_parse);
 *   - every entry that parses is built into a create and an update request
 *     (ct_build_new), which must parse back to the same original tuple and TCP state;
 *   - the parsed entries are encoded in the wire form and decoded again: same entries;
 *   - the input as a wire-form list (ct_wire_decode); what decodes re-encodes to exactly
 *     the input bytes.
 * Seeds: real kernel captures (test/data/netlink/ct-*.bin). */
#include "lib/err.h"
#include "net/ct.h"
#include "net/nl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct ct_entry *ce)
{
	uint8_t buf[512];
	char line[256];
	struct err e;
	(void)ct_entry_fmt(ce, line, sizeof(line));
	for (int create = 0; create < 2; create++) {
		struct ct_entry back;
		int len = ct_build_new(ce, create, buf, sizeof(buf), &e);
		if (len < 16)
			abort(); /* any parsed entry fits one request */
		struct nl_msgv m = {.type = (uint16_t)(buf[4] | buf[5] << 8),
				    .flags = (uint16_t)(buf[6] | buf[7] << 8),
				    .data = buf + 16,
				    .len = (size_t)len - 16};
		if (ct_parse(&m, &back, &e) < 0 || !ip_eq(&back.orig.src, &ce->orig.src) ||
		    !ip_eq(&back.orig.dst, &ce->orig.dst) || back.orig.proto != ce->orig.proto ||
		    back.has_tcp != ce->has_tcp || (ce->has_tcp && back.tcp.state != ce->tcp.state)) {
			fprintf(stderr, "request does not parse back: %s\n", line);
			abort();
		}
	}
}

static int dump_cb(const struct nl_msgv *m, void *arg, struct err *e)
{
	struct ct_entry ce;
	if (ct_parse(m, &ce, e) < 0)
		return 0;
	check_entry(&ce);
	return ct_list_add(arg, &ce, e);
}

static int ev_cb(enum ct_event ev, const struct ct_entry *ce, void *arg)
{
	(void)ev;
	(void)arg;
	check_entry(ce);
	return 0;
}

static void wire_round_trip(const struct ct_list *l)
{
	struct ct_list back = {0};
	struct err e;
	size_t cap = ct_wire_size(l->n);
	uint8_t *w = malloc(cap);
	if (!w)
		return;
	if (ct_wire_encode(l->v, l->n, w, cap, &e) != (long)cap ||
	    ct_wire_decode(w, cap, &back, &e) < 0 || back.n != l->n)
		abort();
	for (size_t i = 0; i < l->n; i++)
		if (!ct_entry_eq(&back.v[i], &l->v[i]))
			abort(); /* the wire form carries every field of a parsed entry */
	free(w);
	ct_list_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	struct ct_list l = {0}, wl = {0};

	if (size >= 16) {
		struct nl_reply r;
		uint32_t seq, pid;
		memcpy(&seq, data + 8, 4);
		memcpy(&pid, data + 12, 4);
		nl_reply_init(&r, seq, pid, true, dump_cb, &l);
		(void)nl_reply_feed(&r, data, size, &e);
		wire_round_trip(&l);
	}
	(void)ct_events_parse(data, size, ev_cb, NULL, &e);

	if (ct_wire_decode(data, size, &wl, &e) == 0) {
		uint8_t *w = malloc(size);
		if (w && (ct_wire_encode(wl.v, wl.n, w, size, &e) != (long)size ||
			  memcmp(w, data, size) != 0))
			abort(); /* a decoded list re-encodes to the same bytes */
		free(w);
		for (size_t i = 0; i < wl.n; i++)
			check_entry(&wl.v[i]);
	}
	ct_list_free(&l);
	ct_list_free(&wl);
	return 0;
}
