/* libFuzzer target for the check report reader (ipam_report_parse): any input is either
 * refused or gives problems whose repair has what it needs; writing them back and reading
 * that again gives the same problems (round trip), and repairs never break the state. */
#include "ipam/report.h"
#include "lib/json.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipam_report r, r2;
	struct err e;
	if (ipam_report_parse(&r, (const char *)data, size, &e) == 0) {
		struct json_w w;
		json_w_init_grow(&w, 1u << 24);
		if (ipam_report_write(&r, &w, &e) == 0) {
			if (ipam_report_parse(&r2, w.buf, w.len, &e) != 0 || r2.n != r.n)
				abort();
			for (unsigned i = 0; i < r.n; i++)
				if (!ipam_problem_current(&r2, &r.p[i]))
					abort();
			ipam_report_free(&r2);
		}
		json_w_free(&w);
		struct ipam_state st;
		struct ipam_cidr c4;
		ipam_state_init(&st);
		ipam_cidr_parse(&c4, "198.18.0.0/24", NULL);
		ipam_pool_add(&st, "p4", &c4, 0, NULL, 0, NULL);
		struct ip_addr a;
		ipam_addr_parse(&a, "198.18.0.5", NULL);
		ipam_reserve_ip(&st, "h.one", &a, NULL, NULL);
		for (unsigned i = 0; i < r.n; i++)
			ipam_report_repair(&st, &r.p[i], &e);
		ipam_state_free(&st);
	}
	ipam_report_free(&r);
	return 0;
}
