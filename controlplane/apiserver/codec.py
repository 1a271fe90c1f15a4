"""The stored form of an object: what the registry writes to the Store and
what the watch cache decodes.

Pure: no I/O. The value under /registry/<resource>/... is the message's
deterministic protobuf encoding without metadata.resourceVersion; the
resourceVersion is the key's mod_revision, set on every read.
"""

from __future__ import annotations

from google.protobuf.message import Message

from pkapi.errors import bad_request
from pkapi.meta import Kind


def encode(msg: Message) -> bytes:
    """The stored form: the message without resourceVersion."""
    md = msg.metadata  # type: ignore[attr-defined]
    rv = md.resource_version
    md.resource_version = ""
    try:
        return msg.SerializeToString(deterministic=True)
    finally:
        md.resource_version = rv


def decode(kind: Kind, value: bytes, revision: int) -> Message:
    """A stored value read at `revision` (its mod_revision)."""
    msg = kind.message()
    msg.ParseFromString(value)
    msg.metadata.resource_version = str(revision)  # type: ignore[attr-defined]
    return msg


def same_stored(a: Message, b: Message) -> bool:
    """Whether two objects store the same value (resourceVersion aside)."""
    return encode(a) == encode(b)


def parse_resource_version(rv: str) -> int:
    """A client's resourceVersion: a non-negative integer, else BadRequest."""
    try:
        n = int(rv)
    except ValueError:
        raise bad_request(f'invalid resource version "{rv}"') from None
    if n < 0:
        raise bad_request(f'invalid resource version "{rv}"')
    return n
