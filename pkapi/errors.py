"""API errors, their gRPC status codes and kubectl's wording.

Pure: no I/O. The server raises ApiError; the servicer turns it into a gRPC
status (code + message); the client turns the status back into ApiError, and
pkctl prints `Error from server (<Reason>): <message>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Kubernetes StatusReason -> the gRPC status code it travels as, by name
# (grpc.StatusCode[name] at the servicer and the client): names keep this
# module free of grpc, so pure modules that raise ApiError stay pure.
REASON_CODES: dict[str, str] = {
    "NotFound": "NOT_FOUND",
    "AlreadyExists": "ALREADY_EXISTS",
    "Conflict": "ABORTED",
    "Invalid": "INVALID_ARGUMENT",
    "BadRequest": "INVALID_ARGUMENT",
    "Expired": "OUT_OF_RANGE",  # watch from a compacted revision
    "Forbidden": "PERMISSION_DENIED",
    "MethodNotAllowed": "UNIMPLEMENTED",
    "ServiceUnavailable": "UNAVAILABLE",
    "Timeout": "DEADLINE_EXCEEDED",
    "InternalError": "INTERNAL",
    "PreconditionFailed": "FAILED_PRECONDITION",
}
_CODE_REASONS = {code: reason for reason, code in REASON_CODES.items()}
# INVALID_ARGUMENT is shared by Invalid and BadRequest; the message prefix
# "[Reason] " carried on the wire disambiguates.


@dataclass
class ApiError(Exception):
    reason: str
    message: str
    causes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def grpc_code(self) -> str:
        """The name of the gRPC status code it travels as ("NOT_FOUND")."""
        return REASON_CODES.get(self.reason, "UNKNOWN")

    def wire(self) -> str:
        """The gRPC status details string: "[Reason] message"."""
        return f"[{self.reason}] {self.message}"

    @classmethod
    def from_wire(cls, grpc_code: str, details: str | None) -> ApiError:
        """From a gRPC status: the name of its code ("NOT_FOUND") and details."""
        details = details or ""
        if details.startswith("[") and "] " in details:
            reason, _, msg = details[1:].partition("] ")
            return cls(reason, msg)
        return cls(_CODE_REASONS.get(grpc_code, "InternalError"), details)

    def kubectl(self) -> str:
        """As kubectl prints it: Error from server (NotFound): pods "x" not found"""
        if self.reason == "Invalid":
            return self.message  # kubectl prints validation errors bare
        return f"Error from server ({self.reason}): {self.message}"


def has_reason(err: object, reason: str) -> bool:
    """Whether err is an ApiError of this Kubernetes StatusReason (client-go's
    errors.IsNotFound and friends); False for any other exception or value."""
    return isinstance(err, ApiError) and err.reason == reason


def is_not_found(err: object) -> bool:
    return has_reason(err, "NotFound")


def is_conflict(err: object) -> bool:
    return has_reason(err, "Conflict")


def is_already_exists(err: object) -> bool:
    return has_reason(err, "AlreadyExists")


def is_expired(err: object) -> bool:
    """A watch or list from a compacted resourceVersion (HTTP 410 Gone)."""
    return has_reason(err, "Expired")


def not_found(qualified: str, name: str) -> ApiError:
    return ApiError("NotFound", f'{qualified} "{name}" not found')


def already_exists(qualified: str, name: str) -> ApiError:
    return ApiError("AlreadyExists", f'{qualified} "{name}" already exists')


def conflict(qualified: str, name: str, why: str = "the object has been modified; "
             "please apply your changes to the latest version and try again") -> ApiError:
    return ApiError("Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": {why}')


def invalid(kind: str, name: str, causes: list[str]) -> ApiError:
    """kubectl: The Deployment "web" is invalid: spec.replicas: Invalid value: ...
    Several causes are listed one per line as `* cause`."""
    if len(causes) == 1:
        msg = f'The {kind} "{name}" is invalid: {causes[0]}'
    else:
        msg = f'The {kind} "{name}" is invalid: \n' + "\n".join(f"* {c}" for c in causes)
    return ApiError("Invalid", msg, list(causes))


def expired(message: str = "too old resource version") -> ApiError:
    return ApiError("Expired", message)


def bad_request(message: str) -> ApiError:
    return ApiError("BadRequest", message)


# Field error wording (k8s.io/apimachinery/pkg/util/validation/field).

def _fmt(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_invalid(path: str, value: object, detail: str) -> str:
    return f"{path}: Invalid value: {_fmt(value)}: {detail}"


def field_required(path: str, detail: str = "") -> str:
    return f"{path}: Required value" + (f": {detail}" if detail else "")


def field_unsupported(path: str, value: object, supported: list[str]) -> str:
    return f"{path}: Unsupported value: {_fmt(value)}: supported values: " + ", ".join(
        f'"{s}"' for s in supported
    )


def field_duplicate(path: str, value: object) -> str:
    return f"{path}: Duplicate value: {_fmt(value)}"


def field_forbidden(path: str, detail: str) -> str:
    return f"{path}: Forbidden: {detail}"
