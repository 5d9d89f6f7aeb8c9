/* mode — the table of data-plane modes and the host interface naming (mode.h). */
#include "cni/mode.h"

#include <bearssl.h>
#include <stdio.h>
#include <string.h>

/* Every mode the plugin knows; a new mode adds its line here. */
static const struct cni_mode *const cni_modes[] = {
	&cni_mode_routed,
	&cni_mode_l2,
};

const struct cni_mode *cni_mode_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cni_modes) / sizeof(cni_modes[0]); i++)
		if (strcmp(cni_modes[i]->name, name) == 0)
			return cni_modes[i];
	return NULL;
}

void cni_mode_names(char *buf, size_t cap)
{
	size_t len = 0;
	if (cap)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(cni_modes) / sizeof(cni_modes[0]) && len < cap; i++) {
		int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", cni_modes[i]->name);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* Host veth name: "kv" + 11 hex digits of SHA-256(namespace \n pod \n ifname), or of the
 * container ID when the pod name is unknown. */
void cni_host_ifname(const struct cni_req *r, char *out)
{
	br_sha256_context ctx;
	uint8_t h[32];
	br_sha256_init(&ctx);
	if (r->pod_name[0]) {
		br_sha256_update(&ctx, r->pod_ns, strlen(r->pod_ns));
		br_sha256_update(&ctx, "\n", 1);
		br_sha256_update(&ctx, r->pod_name, strlen(r->pod_name));
	} else {
		br_sha256_update(&ctx, r->cid, strlen(r->cid));
	}
	br_sha256_update(&ctx, "\n", 1);
	br_sha256_update(&ctx, r->ifname, strlen(r->ifname));
	br_sha256_out(&ctx, h);
	char hex[23];
	for (int i = 0; i < 11; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	snprintf(out, LINK_NAMESZ, "kv%.11s", hex);
}

