/* birdctl — the replies of BIRD's control socket (the protocol birdc speaks). Pure.
 *
 * BIRD answers in lines of at most AGENT_BIRDCTL_LINE_MAX bytes:
 *
 *   "DDDD-text\n"   a line of reply code DDDD, more follow
 *   " text\n"       one more line of the code before
 *   "DDDD text\n"   the last line of the reply (code DDDD)
 *
 * On connect BIRD sends a banner, "0001 BIRD 2.0.12 ready.\n"; `configure` answers
 * "0002-Reading configuration from ..." and then 0003 (reconfigured), 0004 (in progress),
 * 0005 / 0017 (queued), 0018 (confirmed), 0019 / 0020 ... on success, or an 8xxx / 9xxx
 * error (8002: the configuration file is wrong, with "file:line:col message").
 * A code is 4 decimal digits; codes 0xxx are success, 1xxx-2xxx table lines, 8xxx
 * run-time errors, 9xxx parse errors of the command.
 */
#ifndef KVNET_AGENT_BIRDCTL_H
#define KVNET_AGENT_BIRDCTL_H

#include <stdbool.h>
#include <stddef.h>

#define AGENT_BIRDCTL_LINE_MAX 1024 /* longest reply line accepted, newline included */
#define AGENT_BIRDCTL_TEXT_MAX 200  /* text kept for a message (cut beyond) */

/* One reply, as far as parsed. */
struct agent_birdctl_reply {
	int code;			      /* the final line's code (0 until done) */
	int err_code;			      /* the first 8xxx/9xxx code seen, else 0 */
	char text[AGENT_BIRDCTL_TEXT_MAX + 1]; /* the first error line's text, else the
						* final line's (printable ASCII only) */
	unsigned lines;			      /* lines parsed */
};

/* Parse one reply from buf[0..len): 1 when its final line was read (*used = bytes up
 * to and including it; what follows belongs to the next reply), 0 when more bytes are
 * needed (no complete final line yet), -EBADMSG when the bytes are no BIRD reply (bad
 * code, a continuation line first, NUL or control bytes), -EMSGSIZE when a line is
 * longer than AGENT_BIRDCTL_LINE_MAX. r is filled in every case. */
int agent_birdctl_parse(const char *buf, size_t len, size_t *used,
			struct agent_birdctl_reply *r);

/* True when code is a successful answer to `configure`. */
bool agent_birdctl_configure_ok(int code);

#endif
