"""Content negotiation and request bodies of the Kubernetes HTTP API.

Pure: no I/O. What a client asks for is read from Accept (Table, aggregated
discovery v2/v2beta1, JSON; protobuf is answered as JSON, which client-go
accepts); what it sends is read from Content-Type (JSON, YAML; protobuf is
refused with 415 and a workaround).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from google.protobuf.message import Message

from pkapi import decode as pkdecode
from pkapi.errors import ApiError, bad_request
from pkapi.meta import Kind

# kube-apiserver's limit on a request body (3 MiB).
MAX_BODY = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
OBJECT_TYPES = (JSON, YAML)


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaType]:
    out = []
    for part in (header or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append(MediaType(fields[0].lower(), params))
    return out


def wants(header: str, as_: str, group: str, versions: tuple[str, ...]) -> str:
    """The version of `as_` (Table, APIGroupDiscoveryList) in `group` the
    client asks for first, or "" when it asks for plain JSON first."""
    for mt in parse_accept(header):
        if mt.type not in (JSON, "*/*", "application/*") and mt.type != PROTOBUF:
            continue
        if mt.params.get("as") == as_ and mt.params.get("g") == group and mt.params.get("v") in versions:
            return mt.params["v"]
        if "as" not in mt.params and mt.type in (JSON, "*/*", "application/*"):
            return ""
    return ""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def unsupported(ct: str, accepted: tuple[str, ...]) -> ApiError:
    msg = f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
    if ct == PROTOBUF:
        msg += ("; this server does not decode protobuf bodies: send JSON instead "
                "(e.g. `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`)")
    return ApiError("UnsupportedMediaType", msg)


def parse_document(body: bytes, content_type: str | None) -> Any:
    """A JSON (or YAML) request body as plain data (duplicate keys noted
    for strict decoding); BadRequest if malformed, 415 for other types."""
    ct = media_type(content_type)
    if ct in ("", JSON, "*/*"):
        try:
            return pkdecode.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise bad_request("the request body is not valid UTF-8") from None
        except RecursionError:
            raise bad_request("couldn't get version/kind; json parse error: exceeded max depth") from None
        except ValueError as e:
            raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if ct == YAML:
        try:
            return yaml.safe_load(body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise bad_request(f"error converting YAML to JSON: {e}") from None
    raise unsupported(ct, (JSON, YAML))


FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def field_validation(value: str) -> str:
    """The fieldValidation query parameter; unset is Strict (unknown fields
    are errors, as pkctl's decoding has always been)."""
    if not value:
        return "Strict"
    if value not in FIELD_VALIDATION:
        raise bad_request(f'fieldValidation: Unsupported value: "{value}": supported values: '
                          '"Ignore", "Strict", "Warn"')
    return value


def to_message(doc: Any, k: Kind, validation: str = "Strict", warnings: list[str] | None = None) -> Message:
    """A decoded body as `k`'s message. The body's apiVersion and kind, when
    given, must be k's; unknown fields follow `validation`."""
    if not isinstance(doc, dict):
        raise bad_request(f"{k.kind} in version \"{k.version}\" cannot be handled as a {k.kind}: "
                          "the object must be a JSON object")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if (kind and kind != k.kind) or (api_version and api_version != k.api_version):
        raise bad_request(f'the API version in the data ({api_version}) does not match the expected API version '
                          f'({k.api_version})' if api_version != k.api_version else
                          f'the kind in the data ({kind}) does not match the expected kind ({k.kind})')
    found: list[str] | None = None if validation == "Strict" else []
    try:
        msg = pkdecode.strict_dict(doc, k.message, k.kind, k.version, warnings=found)
    except pkdecode.DecodeError as e:
        text = str(e)
        prefix = f'{k.kind} in version "{k.version}" cannot be handled as a {k.kind}: '
        raise bad_request(text if text.startswith(prefix) else prefix + text) from None
    if found and validation == "Warn" and warnings is not None:
        warnings.extend(found)
    return msg


def warning_header(texts: list[str]) -> list[str]:
    """RFC 7234 Warning header values as kube-apiserver sends them."""
    return ['299 - ' + json.dumps(t) for t in texts]
