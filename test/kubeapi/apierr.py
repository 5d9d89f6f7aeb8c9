"""apierr — Kubernetes Status objects and the exception that carries them.

Every error the test API server returns is an ApiError turned into the same JSON the real
kube-apiserver writes (metav1.Status): kind/apiVersion/metadata/status/message/reason/
details/code. The helpers are named after the apimachinery constructors they mirror.
"""

import json


class ApiError(Exception):
    """An HTTP error answered with a Status body."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code            # HTTP status code, also Status.code
        self.reason = reason        # Status.reason (NotFound, Conflict, ...)
        self.message = message      # Status.message
        self.details = details      # Status.details or None
        self.headers = headers or {}  # extra response headers (Retry-After)

    def status(self):
        """The metav1.Status object for this error."""
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason}
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s

    def body(self):
        return json.dumps(self.status()).encode()


def _qual(resource, group):
    """'pods' or 'ipamblocks.kvnet.io' as the real API names a resource in messages."""
    return resource if not group else resource + "." + group


def _details(name, group, kind, uid=None):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    if uid:
        d["uid"] = uid
    return d


def not_found(resource, group, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (_qual(resource, group), name),
                    _details(name, group, resource))


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists",
                    '%s "%s" already exists' % (_qual(resource, group), name),
                    _details(name, group, resource))


def conflict(resource, group, name, why):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (_qual(resource, group), name, why), _details(name, group, resource))


def conflict_modified(resource, group, name):
    return conflict(resource, group, name, "the object has been modified; please apply "
                    "your changes to the latest version and try again")


def invalid(kind, group, name, causes):
    """causes: list of (field, reason, message) e.g. ("metadata.name", "FieldValueRequired",
    "Required value: name or generateName is required")."""
    parts = ["%s: %s" % (f, m) for f, _, m in causes]
    msg = '%s "%s" is invalid: ' % (kind if not group else kind + "." + group, name)
    msg += parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    d = _details(name, group, kind)
    d["causes"] = [{"reason": r, "message": m, "field": f} for f, r, m in causes]
    return ApiError(422, "Invalid", msg, d)


def unprocessable(message):
    """NewGenericServerResponse(422): what a failed json-patch operation answers."""
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                    "request", {"causes": [{"reason": "UnexpectedServerResponse",
                                            "message": message}]})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user, verb, resource, group, name, namespace):
    what = '%s "%s"' % (_qual(resource, group), name) if name else _qual(resource, group)
    where = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
    msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        what, user, verb, resource, group, where)
    return ApiError(403, "Forbidden", msg, _details(name, group, resource))


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def no_such_resource():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def expired(message, reason="Expired"):
    return ApiError(410, reason, message)


def unsupported_media(ctype):
    return ApiError(415, "UnsupportedMediaType",
                    '%s is unsupported media type, supported: [application/json-patch+json '
                    'application/merge-patch+json application/strategic-merge-patch+json]'
                    % ctype, {})


def internal(message):
    return ApiError(500, "InternalError", "Internal error occurred: " + message,
                    {"causes": [{"message": message}]})


def too_many_requests(retry_after):
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after},
                    {"Retry-After": str(retry_after)})
