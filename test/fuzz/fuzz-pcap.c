/* libFuzzer target: the pcap file reader (net/pcap) over any bytes, and every record
 * through the announcement parser as garp-watch -r does. Seeds: small files of both
 * precisions and byte orders. */
#include "lib/err.h"
#include "net/announce.h"
#include "net/pcap.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcap_rd r;
	struct pcap_rec rec;
	struct err e;
	if (pcap_rd_init(&r, data, size, &e) < 0) {
		if (strlen(e.msg) == 0)
			__builtin_trap();
		return 0;
	}
	int rc;
	while ((rc = pcap_rd_next(&r, &rec, &e)) == 1) {
		struct ann_event ev;
		if (rec.caplen > rec.len || rec.ts.tv_nsec >= 1000000000L ||
		    rec.data < data || rec.data + rec.caplen > data + size)
			__builtin_trap();
		(void)ann_parse(rec.data, rec.caplen, &ev, NULL);
	}
	if (rc < 0 && pcap_rd_next(&r, &rec, NULL) != rc)
		__builtin_trap(); /* errors are sticky */
	return 0;
}
