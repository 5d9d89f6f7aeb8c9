"""patch — JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

merge_patch(target, patch) returns a new document. json_patch(doc, ops) returns a new
document or raises PatchError (a failed operation, including a failed `test`), or
ValueError for a patch that is not a list of well-formed operations. Inputs are never
modified.
"""

import copy


class PatchError(Exception):
    """An operation could not be applied (RFC 6902 §5: the whole patch fails)."""


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _tokens(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise ValueError('JSON pointer "%s" must start with "/"' % ptr)
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def _index(container, tok, for_add=False):
    if tok == "-" and for_add:
        return len(container)
    if not tok.isdigit() or (len(tok) > 1 and tok[0] == "0"):
        raise PatchError('invalid array index "%s"' % tok)
    i = int(tok)
    if i > len(container) or (i == len(container) and not for_add):
        raise PatchError("array index %d out of bounds" % i)
    return i


def _parent(doc, toks, path):
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError('doc is missing path: "%s"' % path)
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t)]
        else:
            raise PatchError('doc is missing path: "%s"' % path)
    return cur


def _get(doc, path):
    toks = _tokens(path)
    if not toks:
        return doc
    par = _parent(doc, toks, path)
    t = toks[-1]
    if isinstance(par, dict):
        if t not in par:
            raise PatchError('doc is missing path: "%s"' % path)
        return par[t]
    if isinstance(par, list):
        return par[_index(par, t)]
    raise PatchError('doc is missing path: "%s"' % path)


def _remove(doc, path):
    toks = _tokens(path)
    if not toks:
        raise PatchError("cannot remove the whole document")
    par = _parent(doc, toks, path)
    t = toks[-1]
    if isinstance(par, dict):
        if t not in par:
            raise PatchError('unable to remove nonexistent key: %s: missing value' % t)
        return par.pop(t)
    if isinstance(par, list):
        return par.pop(_index(par, t))
    raise PatchError('doc is missing path: "%s"' % path)


def _add(doc, path, value):
    toks = _tokens(path)
    if not toks:
        return value
    par = _parent(doc, toks, path)
    t = toks[-1]
    if isinstance(par, dict):
        par[t] = value
    elif isinstance(par, list):
        par.insert(_index(par, t, for_add=True), value)
    else:
        raise PatchError('doc is missing path: "%s"' % path)
    return doc


def _equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise ValueError("json patch operation must be an object with an \"op\" string")
        kind = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError('operation "%s" is missing the "path" member' % kind)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError('operation "%s" is missing the "value" member' % kind)
        if kind == "add":
            out = _add(out, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(out, path)
        elif kind == "replace":
            _get(out, path)  # must exist
            toks = _tokens(path)
            if not toks:
                out = copy.deepcopy(op["value"])
            else:
                _remove(out, path)
                out = _add(out, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            frm = op.get("from")
            if not isinstance(frm, str):
                raise PatchError('operation "%s" is missing the "from" member' % kind)
            if kind == "move" and (path + "/").startswith(frm + "/") and path != frm:
                raise PatchError('cannot move "%s" into its own child "%s"' % (frm, path))
            if kind == "move":
                val = _remove(out, frm)
            else:
                val = copy.deepcopy(_get(out, frm))
            out = _add(out, path, val)
        elif kind == "test":
            try:
                cur = _get(out, path)
            except PatchError:
                raise PatchError('testing value %s failed: test failed' % path) from None
            if not _equal(cur, op["value"]):
                raise PatchError('testing value %s failed: test failed' % path)
        else:
            raise PatchError('Unexpected kind: %s' % kind)
    return out
