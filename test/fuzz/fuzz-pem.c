/* fuzz-pem — base64, PEM blocks, the DER walk to iPAddress SANs, and trust anchor /
 * client identity loading on top of them (BearSSL's decoders see our decoded bytes). */
#include "kube/pem.h"
#include "kube/tls.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = { 0 };
	const char *text = (const char *)data;

	size_t cap = pem_base64_max(size), n = 0;
	uint8_t *out = malloc(cap ? cap : 1);
	if (pem_base64_decode(text, size, out, cap, &n) == 0 && n > cap)
		abort();
	/* a too-small buffer must fail cleanly, never overflow */
	if (cap > 2)
		pem_base64_decode(text, size, out, cap / 2, &n);
	free(out);

	size_t off = 0;
	struct pem_block b;
	int r;
	while ((r = pem_next(text, size, &off, &b, "fuzz", &e)) == 1) {
		if (off > size)
			abort();
		free(b.der);
	}

	static const uint8_t ip4[4] = { 198, 18, 0, 2 };
	static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	tls_cert_has_ip_san(data, size, ip4, sizeof(ip4));
	tls_cert_has_ip_san(data, size, ip6, sizeof(ip6));

	struct tls_config *cfg = tls_config_new();
	if (cfg) {
		tls_config_add_ca(cfg, data, size, "fuzz", &e);
		size_t half = size / 2;
		tls_config_set_client(cfg, data, half, "cert", data + half, size - half, "key", &e);
		tls_config_free(cfg);
	}
	return 0;
}
