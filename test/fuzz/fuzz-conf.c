/* libFuzzer target for conf/: arbitrary bytes as kvnet.conf text.
 *
 * Besides "never crash", it checks the round-trip property on every input that parses:
 * the canonical print of the result parses back to an equal configuration and prints
 * identically. The input is also tried as an environment block (NUL-separated
 * NAME=VALUE entries, "KVNET_" added in front) so the override path is fuzzed too. */
#include "conf/conf.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct conf *c)
{
	struct conf back;
	struct err e = { 0 };
	size_t need = conf_format(c, 0, NULL, 0);
	char *a = malloc(need + 1), *b = NULL;
	if (!a)
		return;
	conf_format(c, 0, a, need + 1);
	if (conf_defaults(&back, &e) < 0 || conf_parse(&back, "rt", a, need, &e) < 0) {
		fprintf(stderr, "round trip: printed form does not parse: %s\n%s", e.msg, a);
		abort();
	}
	if (!conf_equal(c, &back)) {
		fprintf(stderr, "round trip: printed form parses to something else\n%s", a);
		abort();
	}
	size_t need2 = conf_format(&back, 0, NULL, 0);
	b = malloc(need2 + 1);
	if (b) {
		conf_format(&back, 0, b, need2 + 1);
		if (need2 != need || memcmp(a, b, need) != 0) {
			fprintf(stderr, "round trip: second print differs\n%s---\n%s", a, b);
			abort();
		}
	}
	/* the documented form parses back as well */
	size_t needd = conf_format(c, CONF_FMT_DOC, NULL, 0);
	char *d = malloc(needd + 1);
	if (d) {
		conf_format(c, CONF_FMT_DOC, d, needd + 1);
		if (conf_defaults(&back, &e) < 0 || conf_parse(&back, "rt", d, needd, &e) < 0 ||
		    !conf_equal(c, &back)) {
			fprintf(stderr, "round trip (documented): %s\n", e.msg);
			abort();
		}
	}
	free(d);
	free(b);
	free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	struct err e = { 0 };
	if (conf_defaults(&c, &e) < 0)
		abort();
	if (conf_parse(&c, "fuzz.conf", (const char *)data, size, &e) == 0) {
		conf_check(&c, &e);
		round_trip(&c);
	} else if (e.msg[0] == '\0') {
		abort(); /* every failure explains itself */
	}

	/* environment form: up to 8 NUL-separated entries, each prefixed with KVNET_ */
	if (size > 4096)
		return 0;
	char *copy = malloc(size + 1);
	char *env[9];
	char *ents[8] = { 0 };
	size_t n = 0, start = 0;
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t i = 0; i <= size && n < 8; i++) {
		if (i == size || copy[i] == '\0') {
			size_t len = i - start;
			ents[n] = malloc(len + 7);
			if (ents[n]) {
				memcpy(ents[n], "KVNET_", 6);
				memcpy(ents[n] + 6, copy + start, len);
				ents[n][len + 6] = '\0';
				env[n] = ents[n];
				n++;
			}
			start = i + 1;
		}
	}
	env[n] = NULL;
	if (conf_defaults(&c, &e) < 0)
		abort();
	if (conf_apply_env(&c, env, &e) == 0)
		round_trip(&c);
	else if (e.msg[0] == '\0')
		abort();
	for (size_t i = 0; i < n; i++)
		free(ents[i]);
	free(copy);
	return 0;
}
