/* result — the documents the plugin prints (result.h). */
#include "cni/result.h"

#include "ipam/ipam.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

/* Key "mac" = m as aa:bb:cc:dd:ee:ff. */
static void put_mac(struct json_w *w, const uint8_t m[6])
{
	char buf[18];
	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		 m[5]);
	json_w_kstr(w, "mac", buf);
}

void cni_result_write(struct json_w *w, const struct cni_req *r, const struct cni_result *res)
{
	char buf[64];
	json_w_obj_begin(w);
	json_w_kstr(w, "cniVersion", r->version);
	json_w_key(w, "interfaces");
	json_w_arr_begin(w);
	json_w_obj_begin(w);
	json_w_kstr(w, "name", res->host_ifname);
	put_mac(w, res->host_mac);
	json_w_obj_end(w);
	json_w_obj_begin(w);
	json_w_kstr(w, "name", r->ifname);
	put_mac(w, res->pod_mac);
	if (r->mtu && r->vidx >= 4) /* interface mtu is new in spec 1.1.0 */
		json_w_kint(w, "mtu", r->mtu);
	json_w_kstr(w, "sandbox", r->netns);
	json_w_obj_end(w);
	json_w_arr_end(w);
	json_w_key(w, "ips");
	json_w_arr_begin(w);
	bool v4 = false, v6 = false;
	for (unsigned i = 0; i < res->n_ip; i++) {
		bool is6 = res->ip[i].family == AF_INET6;
		v4 |= !is6;
		v6 |= is6;
		json_w_obj_begin(w);
		if (r->vidx < 3)
			json_w_kstr(w, "version", is6 ? "6" : "4");
		char a[64];
		ipam_addr_str(&res->ip[i], a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s/%d", a, res->plen ? res->plen[i] : is6 ? 128 : 32);
		json_w_kstr(w, "address", buf);
		const struct ip_addr *gw = is6 ? res->gw6 : res->gw4;
		if (!res->secondary)
			json_w_kstr(w, "gateway", is6 ? CNI_GW6 : CNI_GW4);
		else if (gw && gw->family)
			json_w_kstr(w, "gateway", ipam_addr_str(gw, a, sizeof(a)));
		json_w_kint(w, "interface", 1);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_key(w, "routes");
	json_w_arr_begin(w);
	if (res->secondary)
		v4 = v6 = false;
	if (v4) {
		json_w_obj_begin(w);
		json_w_kstr(w, "dst", "0.0.0.0/0");
		json_w_kstr(w, "gw", CNI_GW4);
		json_w_obj_end(w);
	}
	if (v6) {
		json_w_obj_begin(w);
		json_w_kstr(w, "dst", "::/0");
		json_w_kstr(w, "gw", CNI_GW6);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_key(w, "dns");
	json_w_obj_begin(w);
	json_w_obj_end(w);
	json_w_obj_end(w);
}

void cni_error_write(struct json_w *w, const struct cni_req *r, const struct cni_fail *f)
{
	json_w_obj_begin(w);
	json_w_kstr(w, "cniVersion", r->version[0] ? r->version : "1.1.0");
	json_w_kint(w, "code", f->code);
	json_w_kstr(w, "msg", f->msg);
	json_w_kstr(w, "details", f->det);
	json_w_obj_end(w);
}

void cni_version_write(struct json_w *w, const struct cni_req *r)
{
	json_w_obj_begin(w);
	json_w_kstr(w, "cniVersion", r->version[0] ? r->version : "1.1.0");
	json_w_key(w, "supportedVersions");
	json_w_arr_begin(w);
	for (int i = 0; i < CNI_NVERSIONS; i++)
		json_w_str(w, cni_versions[i]);
	json_w_arr_end(w);
	json_w_obj_end(w);
}
