"""ApiError -> a Kubernetes meta/v1 Status object and its HTTP code.

Pure: no I/O. kubectl prints `Error from server (<reason>): <message>` from
the Status, except for Invalid, which it builds from details (kind, name,
causes as `field: message`), so details are filled in as kube-apiserver
fills them: `details.kind` is the Kind for Invalid and the plural resource
for the others.
"""

from __future__ import annotations

import re
from typing import Any

from pkapi.errors import ApiError
from pkapi.meta import Kind

HTTP_CODES: dict[str, int] = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "NotAcceptable": 406,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Gone": 410,
    "Expired": 410,
    "PreconditionFailed": 412,
    "RequestEntityTooLarge": 413,
    "UnsupportedMediaType": 415,
    "Invalid": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "Timeout": 504,
}

# The start of a field error's detail -> StatusCause.reason
# (k8s.io/apimachinery/pkg/util/validation/field ErrorType).
_CAUSE_REASONS = (
    ("Invalid value", "FieldValueInvalid"),
    ("Required value", "FieldValueRequired"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Forbidden", "FieldValueForbidden"),
    ("Not found", "FieldValueNotFound"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
)


_INVALID = re.compile(r'^The (\S+) "([^"]*)" is invalid')


def code_of(reason: str) -> int:
    return HTTP_CODES.get(reason, 500)


def cause(text: str) -> dict[str, str]:
    """One of pkapi.validation's causes, "<field>: <detail>", as a
    StatusCause {reason, message, field}."""
    field, sep, message = text.partition(": ")
    if not sep or " " in field:
        return {"reason": "FieldValueInvalid", "message": text, "field": ""}
    reason = next((r for prefix, r in _CAUSE_REASONS if message.startswith(prefix)), "FieldValueInvalid")
    return {"reason": reason, "message": message, "field": field}


def status(err: ApiError, kind: Kind | None = None, name: str = "") -> dict[str, Any]:
    """The Status object kube-apiserver sends for this error."""
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": err.message,
        "reason": err.reason,
        "code": code_of(err.reason),
    }
    details: dict[str, Any] = {}
    if err.reason == "Invalid":
        # A create's URL has no name; the message names the object.
        m = _INVALID.match(err.message)
        if m:
            name = m.group(2)
            if kind is None or kind.kind != m.group(1):
                details["kind"] = m.group(1)
    if name:
        details["name"] = name
    if kind is not None and "kind" not in details:
        if kind.group:
            details["group"] = kind.group
        details["kind"] = kind.kind if err.reason == "Invalid" else kind.resource
    causes = list(err.causes)
    if err.reason == "Invalid" and not causes and " is invalid: " in err.message:
        # kubectl prints an Invalid error from details alone: give it the cause.
        causes = [c.lstrip("* ") for c in err.message.split(" is invalid: ", 1)[1].split("\n") if c.strip()]
    if causes:
        details["causes"] = [cause(c) for c in causes]
    if details:
        out["details"] = details
    return out


def success(kind: Kind | None = None, name: str = "", uid: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if kind is not None:
        if kind.group:
            details["group"] = kind.group
        details["kind"] = kind.resource
    if uid:
        details["uid"] = uid
    if details:
        out["details"] = details
    return out
