/* birdctl — BIRD control socket replies (see birdctl.h). */
#include "agent/birdctl.h"

#include <errno.h>
#include <string.h>

static void keep_text(char *dst, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o < AGENT_BIRDCTL_TEXT_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[o] = '\0';
}

int agent_birdctl_parse(const char *buf, size_t len, size_t *used,
			struct agent_birdctl_reply *r)
{
	size_t p = 0;
	memset(r, 0, sizeof(*r));
	*used = 0;
	while (p < len) {
		const char *line = buf + p;
		size_t rest = len - p;
		size_t max = rest < AGENT_BIRDCTL_LINE_MAX ? rest : AGENT_BIRDCTL_LINE_MAX;
		const char *nl = memchr(line, '\n', max);
		if (!nl)
			return rest >= AGENT_BIRDCTL_LINE_MAX ? -EMSGSIZE : 0;
		size_t n = (size_t)(nl - line); /* without the newline */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
				return -EBADMSG;
		if (n >= 1 && line[0] == ' ') {
			if (r->lines == 0)
				return -EBADMSG;
		} else {
			if (n < 5)
				return -EBADMSG;
			int code = 0;
			for (int i = 0; i < 4; i++) {
				if (line[i] < '0' || line[i] > '9')
					return -EBADMSG;
				code = code * 10 + (line[i] - '0');
			}
			if (line[4] != '-' && line[4] != ' ')
				return -EBADMSG;
			if (code >= 8000 && !r->err_code) {
				r->err_code = code;
				keep_text(r->text, line + 5, n - 5);
			}
			if (line[4] == ' ') {
				r->code = code;
				if (!r->err_code)
					keep_text(r->text, line + 5, n - 5);
				r->lines++;
				*used = p + n + 1;
				return 1;
			}
		}
		r->lines++;
		p += n + 1;
	}
	return 0;
}

bool agent_birdctl_configure_ok(int code)
{
	switch (code) {
	case 3:	 /* Reconfigured */
	case 4:	 /* Reconfiguration in progress */
	case 5:	 /* Reconfiguration already in progress, queueing new config */
	case 17: /* Reconfiguration already in progress, removing queued config */
	case 18: /* Reconfiguration confirmed */
	case 19: /* Nothing to do */
	case 20: /* Configuration OK */
		return true;
	default: /* an int, not an enum */
		return false;
	}
}
