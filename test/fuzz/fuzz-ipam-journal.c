/* libFuzzer target for the file datastore's journal reader (ipam_journal_walk): any
 * input is either rejected with -EUCLEAN before the callback runs, or every change it
 * hands out has a valid kind and object name; record data is fed to the record parser. */
#include "ipam/ds_file.h"
#include "lib/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	struct ipam_state st; /* records parsed from the journal's data */
	unsigned calls;	      /* callback invocations */
};

static int cb(void *arg, enum ipam_kind kind, const char *name, const char *data, size_t len,
	      struct err *e)
{
	struct seen *s = arg;
	s->calls++;
	if (kind < IPAM_POOL || kind > IPAM_KIND_LAST || !ipam_name_valid(name))
		abort();
	if (data)
		ipam_state_load(&s->st, kind, name, "", data, len, e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = {.calls = 0};
	struct err e;
	ipam_state_init(&s.st);
	int r = ipam_journal_walk((const char *)data, size, cb, &s, &e);
	if (r && (r != -EUCLEAN || s.calls != 0))
		abort(); /* malformed journals are refused before anything is applied */
	ipam_check(&s.st, &e);
	ipam_state_free(&s.st);
	return 0;
}
