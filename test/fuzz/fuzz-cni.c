/* libFuzzer target for the CNI plugin's input parsers (cni/netconf.h): the input is
 * "CNI_ARGS\nCONFIG". The config goes through cni_conf_parse() (full when the first byte
 * of CNI_ARGS is odd, the VERSION subset otherwise) and CNI_ARGS through
 * cni_args_parse(). Every rejection must fill a code and a message; nothing may crash,
 * leak or touch the system (the parser does no I/O: log_file is opened by cmd_cni
 * afterwards). */
#include "cni/netconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t alen = nl ? (size_t)(nl - data) : 0;
	const uint8_t *conf = nl ? nl + 1 : data;
	size_t clen = size - (size_t)(conf - data);

	struct cni_req r;
	cni_req_init(&r);
	log_init(&r.log, "cni", LOG_LVL_ERROR);
	r.log.fd = -1;
	r.text = malloc(clen + 1);
	if (!r.text)
		return 0;
	memcpy(r.text, conf, clen);
	r.text[clen] = 0;
	r.len = clen;
	struct cni_fail f;
	memset(&f, 0, sizeof(f));
	bool full = alen > 0 && (data[0] & 1);
	if (cni_conf_parse(&r, full, &f) < 0 && (f.code == 0 || !f.msg[0]))
		abort();
	char *args = malloc(alen + 1);
	if (args) {
		memcpy(args, data, alen);
		args[alen] = 0;
		memset(&f, 0, sizeof(f));
		if (cni_args_parse(&r, alen ? args : NULL, &f) < 0 && (f.code != CNI_E_ENV || !f.msg[0]))
			abort();
		free(args);
	}
	cni_req_fini(&r);
	return 0;
}
