/* result — the JSON documents the plugin prints: the ADD result (per cniVersion), the
 * error object and the VERSION answer. Pure writers into a json_w. */
#ifndef KVNET_CNI_RESULT_H
#define KVNET_CNI_RESULT_H

#include "cni/netconf.h"
#include "lib/ip.h"

#include <stdbool.h>
#include <stdint.h>

/* What ADD made, as the result reports it. */
struct cni_result {
	const char *host_ifname;     /* host-side interface name */
	const uint8_t *host_mac;     /* its MAC (6 bytes) */
	uint8_t pod_mac[6];	     /* the pod interface's MAC */
	const struct ip_addr *ip;    /* the pod's addresses */
	unsigned n_ip;		     /* how many */
	const uint8_t *plen;	     /* per address its prefix length; NULL = /32 and /128 */
	bool secondary;		     /* an L2 secondary interface: the gateways are gw4/gw6
				      * (NULL: none) and there are no default routes */
	const struct ip_addr *gw4;   /* secondary: the IPv4 gateway or NULL */
	const struct ip_addr *gw6;   /* secondary: the IPv6 gateway or NULL */
};

/* The ADD result of r's cniVersion: interfaces (host, pod), ips with gateways, default
 * routes per family (none for a secondary interface), empty dns. */
void cni_result_write(struct json_w *w, const struct cni_req *r, const struct cni_result *res);
/* {"cniVersion","code","msg","details"}; cniVersion "1.1.0" when r has none. */
void cni_error_write(struct json_w *w, const struct cni_req *r, const struct cni_fail *f);
/* {"cniVersion","supportedVersions"}. */
void cni_version_write(struct json_w *w, const struct cni_req *r);

#endif
