/* svg — the blast-radius picture of a report (pure): one self-contained SVG file.
 *
 * The endpoint (the VM) in the middle, one node per peer on a circle around it, labelled
 * with its name (or address) and kind; one edge per peer and verdict, its width growing
 * with the logarithm of the bytes exchanged, labelled with the ports and, below them,
 * what decided (the policies that admitted it, "no policy", or "DIRECTION default
 * deny"); denied edges red (#c62828) and dashed, marked "denied". Peers beyond FLOW_SVG_PEERS (the smallest by bytes) are
 * folded into one "+N more" node (denied peers are drawn first, so never folded). All text is XML-escaped; no scripts, no external
 * references, so a browser renders it offline.
 */
#ifndef KVNET_FLOWS_SVG_H
#define KVNET_FLOWS_SVG_H

#include "flows/report.h"

#include <stddef.h>

struct err;

#define FLOW_SVG_PEERS 24 /* peers drawn one by one */

/* The picture of rep (sorted or not) as a malloc'd NUL-terminated SVG document of *len
 * bytes, or NULL with e (no memory). */
char *flow_report_svg(const struct flow_report *rep, size_t *len, struct err *e);

#endif
