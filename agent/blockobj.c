#include "agent/blockobj.h"
#include "ipam/ipam.h"
#include "kube/informer.h"
#include "lib/err.h"
#include "lib/json.h"

#include <errno.h>
#include <stdlib.h>

int agent_block_load(const struct kube_obj *o, struct ipam_state *st, struct err *e)
{
	ipam_state_init(st);
	struct json_doc d;
	struct json_tok *tok;
	int rc = kube_obj_parse(o, &d, &tok);
	if (rc < 0) {
		free(tok);
		return err_set(e, -rc, "ipamblock %s: malformed JSON", o->name);
	}
	int spec = json_get(&d, 0, "spec");
	size_t sl = 0;
	const char *raw = spec >= 0 ? json_raw(&d, spec, &sl) : NULL;
	if (!raw)
		rc = err_set(e, EINVAL, "ipamblock %s: no spec", o->name);
	else
		rc = ipam_state_load(st, IPAM_BLOCK, o->name, o->rv ? o->rv : "", raw, sl, e);
	free(tok);
	return rc < 0 ? rc : 0;
}
