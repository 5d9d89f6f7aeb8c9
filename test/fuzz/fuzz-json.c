/* libFuzzer target for lib/json: tokenizer (with an -ENOSPC retry), string decoding,
 * number getters, path lookups, the writer's re-encoding (which must parse back to the
 * same token count), and the kube/types views over whatever parsed. */
#include "lib/json.h"
#include "kube/types.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every typed view on the root, with a small arena so -ENOSPC paths run too. */
static void views(const struct json_doc *d)
{
	char mem[512];
	struct kube_arena a;
	struct kube_owner_ref o;
	union {
		struct kube_meta m;
		struct kube_pod p;
		struct kube_vmi vmi;
		struct kube_vm vm;
		struct kube_vmim vmim;
		struct kube_node n;
	} u;
	kube_arena_init(&a, mem, sizeof(mem));
	if (kube_meta_view(d, 0, &u.m, &a, NULL) == 0) {
		kube_label(&u.m, "app", &a);
		kube_annotation(&u.m, "kubevirt.io/domain", &a);
		kube_has_annotation(&u.m, "x");
		kube_controller_ref(&u.m, &o, &a, NULL);
	}
	kube_arena_init(&a, mem, sizeof(mem));
	kube_pod_view(d, 0, &u.p, &a, NULL);
	kube_arena_init(&a, mem, sizeof(mem));
	kube_vmi_view(d, 0, &u.vmi, &a, NULL);
	kube_arena_init(&a, mem, sizeof(mem));
	kube_vm_view(d, 0, &u.vm, &a, NULL);
	kube_arena_init(&a, mem, sizeof(mem));
	kube_vmim_view(d, 0, &u.vmim, &a, NULL);
	kube_arena_init(&a, mem, sizeof(mem));
	if (kube_node_view(d, 0, &u.n, &a, NULL) == 0)
		kube_node_address(&u.n, "InternalIP");
}

static void touch_all(const struct json_doc *d)
{
	char small[16];
	char *big;
	for (unsigned i = 0; i < d->n; i++) {
		int64_t iv;
		uint64_t uv;
		double dv;
		bool bv;
		size_t len;
		switch (json_type(d, (int)i)) {
		case JSON_STRING:
			json_str_decode(d, (int)i, small, sizeof(small), &len);
			big = malloc(len + 1);
			if (json_str_decode(d, (int)i, big, len + 1, &len) != 0)
				abort(); /* the measured size must be enough */
			if (!json_str_eq(d, (int)i, big, len))
				abort(); /* decoded text must compare equal to itself */
			if ((long)len != json_str_len(d, (int)i))
				abort();
			free(big);
			break;
		case JSON_NUMBER:
			json_int64(d, (int)i, &iv);
			json_uint64(d, (int)i, &uv);
			json_double(d, (int)i, &dv);
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			if (json_bool(d, (int)i, &bv) != 0)
				abort();
			break;
		case JSON_OBJECT:
		case JSON_ARRAY: {
			struct json_iter it;
			int k, v;
			unsigned count = 0;
			json_iter_init(&it, d, (int)i);
			while (json_iter_next(&it, &k, &v))
				count++;
			if (count != d->tok[i].size)
				abort();
			break;
		}
		case JSON_NULL:
			break;
		}
	}
	views(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tok few[8];
	struct json_doc d;
	int r = json_parse(&d, (const char *)data, size, few, 8, 0, NULL);
	if (r == -ENOSPC) {
		unsigned need = d.n;
		struct json_tok *t = calloc(need, sizeof(*t));
		r = json_parse(&d, (const char *)data, size, t, need, 0, NULL);
		if (r != 0 || d.n != need)
			abort(); /* the count it asked for must be exactly enough */
		touch_all(&d);
		struct json_w w;
		json_w_init_grow(&w, 4 * size + 64);
		json_w_tok(&w, &d, 0);
		if (json_w_finish(&w, NULL) != 0)
			abort();
		struct json_tok *t2 = calloc(need, sizeof(*t2));
		struct json_doc d2;
		if (json_parse(&d2, w.buf, w.len, t2, need, JSON_DEPTH_MAX, NULL) != 0 ||
		    d2.n != need)
			abort(); /* what we write must read back the same shape */
		free(t2);
		json_w_free(&w);
		/* a path made of the first bytes */
		char path[33];
		size_t pn = size < 32 ? size : 32;
		memcpy(path, data, pn);
		path[pn] = '\0';
		json_path(&d, 0, path);
		free(t);
	} else if (r == 0) {
		touch_all(&d);
	}
	return 0;
}
