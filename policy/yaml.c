/* policy/yaml — YAML documents to the JSON the policy parser reads (see policy.h). */
#include "policy/policy.h"

#include "lib/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_DEPTH_MAX 64

static bool plain_is(const yaml_node_t *n, const char *const *words)
{
	for (; *words; words++)
		if (n->data.scalar.length == strlen(*words) &&
		    memcmp(n->data.scalar.value, *words, n->data.scalar.length) == 0)
			return true;
	return false;
}

static void scalar(struct json_w *w, const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	const char *v = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (plain_is(n, nulls))
			return json_w_null(w);
		if (plain_is(n, trues))
			return json_w_bool(w, true);
		if (plain_is(n, falses))
			return json_w_bool(w, false);
		if (json_number_valid(v, len))
			return json_w_number(w, v, len);
	}
	json_w_strn(w, v, len);
}

static int node(struct json_w *w, yaml_document_t *doc, const yaml_node_t *n, unsigned depth,
		struct err *e)
{
	if (!n)
		return err_setx(e, EINVAL, "yaml: dangling node");
	if (depth > YAML_DEPTH_MAX)
		return err_setx(e, ELOOP, "yaml: nested deeper than %d", YAML_DEPTH_MAX);
	switch (n->type) {
	case YAML_SCALAR_NODE:
		scalar(w, n);
		return 0;
	case YAML_SEQUENCE_NODE:
		json_w_arr_begin(w);
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			int rc = node(w, doc, yaml_document_get_node(doc, *it), depth + 1, e);
			if (rc < 0)
				return rc;
		}
		json_w_arr_end(w);
		return 0;
	case YAML_MAPPING_NODE:
		json_w_obj_begin(w);
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE)
				return err_setx(e, EINVAL, "yaml: line %zu: a mapping key is not a scalar",
						k ? k->start_mark.line + 1 : 0);
			json_w_keyn(w, (const char *)k->data.scalar.value, k->data.scalar.length);
			int rc = node(w, doc, yaml_document_get_node(doc, p->value), depth + 1, e);
			if (rc < 0)
				return rc;
		}
		json_w_obj_end(w);
		return 0;
	case YAML_NO_NODE:
		json_w_null(w);
		return 0;
	}
	return err_setx(e, EINVAL, "yaml: unknown node type");
}

int pol_yaml_to_json(const char *text, size_t len, char **out, size_t *out_len, struct err *e)
{
	yaml_parser_t p;
	struct json_w w;
	int rc = 0;
	*out = NULL;
	if (!yaml_parser_initialize(&p))
		return err_setx(e, ENOMEM, "yaml: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	json_w_init_grow(&w, (size_t)len * 8 + 4096);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "kind", "List");
	json_w_key(&w, "items");
	json_w_arr_begin(&w);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&p, &doc)) {
			rc = err_setx(e, EINVAL, "yaml: line %zu: %s", p.problem_mark.line + 1,
				      p.problem ? p.problem : "parse error");
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break; /* end of stream */
		}
		if (!(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
			rc = node(&w, &doc, root, 0, e);
		yaml_document_delete(&doc);
		if (rc < 0)
			break;
	}
	yaml_parser_delete(&p);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	if (rc == 0 && (rc = json_w_finish(&w, e)) == 0)
		*out = json_w_take(&w, out_len);
	json_w_free(&w);
	return rc;
}

int pol_world_add_yaml(struct pol_world *w, const char *text, size_t len, unsigned *added,
		       struct err *e)
{
	char *json;
	size_t n;
	int rc = pol_yaml_to_json(text, len, &json, &n, e);
	if (rc < 0)
		return rc;
	rc = pol_world_add_json(w, json, n, added, e);
	free(json);
	return rc;
}
