"""labelsel — label and field selectors with the real API's syntax and semantics.

Label selector requirements, comma separated:
    key  !key  key=v  key==v  key!=v  key in (a,b)  key notin (a,b)  key>N  key<N
`!=` and `notin` also match objects that lack the key (as the real API does).
Field selectors: `f=v`, `f==v`, `f!=v`, comma separated, over a fixed set of fields per
kind (metadata.name, metadata.namespace, plus resources.Resource.fields).
A syntax error raises ValueError with the real API's wording where it has one.
"""

import re

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_top(s):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unable to parse requirement: unexpected ')'")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError("unable to parse requirement: missing ')'")
    parts.append("".join(cur))
    return parts


def check_key(k):
    if len(k) > 317 or not _KEY.match(k) or len(k.split("/")[-1]) > 63:
        raise ValueError('unable to parse requirement: invalid label key "%s"' % k)
    return k


def check_value(v):
    if len(v) > 63 or not _VALUE.match(v):
        raise ValueError('unable to parse requirement: invalid label value: "%s"' % v)
    return v


def parse_labels(s):
    """Parse a label selector into a list of (key, op, values). Empty string: everything."""
    reqs = []
    if s is None or s.strip() == "":
        return reqs
    for part in _split_top(s):
        p = part.strip()
        if not p:
            raise ValueError("found '', expected: identifier")
        m = re.match(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$", p)
        if m:
            vals = [check_value(v.strip()) for v in m.group(3).split(",")]
            reqs.append((check_key(m.group(1)), m.group(2), set(vals)))
            continue
        if p.startswith("!"):
            reqs.append((check_key(p[1:].strip()), "!exists", None))
            continue
        m = re.match(r"^([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(.*)$", p)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3).strip()
            check_key(key)
            if op in ("<", ">"):
                try:
                    n = int(val)
                except ValueError:
                    raise ValueError("unable to parse requirement: for 'Gt', 'Lt' operators, "
                                     "the value must be an integer") from None
                reqs.append((key, op, n))
            else:
                reqs.append((key, "=" if op == "==" else op, {check_value(val)}))
            continue
        if re.match(r"^\S+$", p):
            reqs.append((check_key(p), "exists", None))
            continue
        raise ValueError("unable to parse requirement: %r" % p)
    return reqs


def match_labels(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        have = key in labels
        v = labels.get(key)
        if op == "exists":
            ok = have
        elif op == "!exists":
            ok = not have
        elif op in ("=", "in"):
            ok = have and v in vals
        elif op in ("!=", "notin"):
            ok = not have or v not in vals
        else:
            try:
                n = int(v) if have else None
            except ValueError:
                n = None
            ok = n is not None and (n > vals if op == ">" else n < vals)
        if not ok:
            return False
    return True


def parse_fields(s, res):
    """Parse a field selector for resource res into [(path tuple, op, value)]."""
    out = []
    if s is None or s.strip() == "":
        return out
    allowed = {"metadata.name": ("metadata", "name")}
    if res.namespaced:
        allowed["metadata.namespace"] = ("metadata", "namespace")
    allowed.update(res.fields)
    for part in s.split(","):
        p = part.strip()
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$", p)
        if not m:
            raise ValueError("invalid selector: '%s'; can't understand '%s'" % (s, p))
        field, op, val = m.group(1), m.group(2), m.group(3)
        if field not in allowed:
            raise ValueError('field label not supported: %s' % field)
        out.append((allowed[field], "!=" if op == "!=" else "=", val))
    return out


def _field_value(obj, path):
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(reqs, obj):
    for path, op, val in reqs:
        v = _field_value(obj, path)
        if (v == val) != (op == "="):
            return False
    return True
