"""Int-or-string values (maxSurge, maxUnavailable, targetPort, probe ports).

Pure: no external calls or any I/O. The schema carries them as
google.protobuf.Value so both JSON shapes parse; a number arrives as a
double, which value() turns back into an int.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2


def is_set(v: Any) -> bool:
    """True if the Value holds a number or a string (not unset/null)."""
    return v is not None and v.WhichOneof("kind") in ("number_value", "string_value")


def value(v: Any) -> int | str | None:
    """A Value as int or str; None when unset. Non-integral numbers and other
    kinds (bool, list, struct) raise ValueError."""
    if isinstance(v, (int, str)) and not isinstance(v, bool):
        return v
    if v is None:
        return None
    k = v.WhichOneof("kind")
    if k is None or k == "null_value":
        return None
    if k == "number_value":
        n = v.number_value
        if not float(n).is_integer():
            raise ValueError(f"{n} is not an integer")
        return int(n)
    if k == "string_value":
        s: str = v.string_value
        return s
    raise ValueError("must be an integer or a string")


def make(x: int | str) -> struct_pb2.Value:
    """A Value holding x."""
    out = struct_pb2.Value()
    set_value(out, x)
    return out


def set_value(target: Any, x: int | str) -> None:
    """Set a Value field in place (target is the field's message)."""
    if isinstance(x, str):
        target.string_value = x
    else:
        target.number_value = float(x)


def percent(x: str) -> int:
    """ "25%" -> 25; ValueError if not an integer percentage."""
    if not x.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    body = x[:-1]
    if not body.lstrip("-").isdigit():
        raise ValueError(f'invalid value for IntOrString: invalid value "{x}"')
    return int(body)


def scaled(v: Any, total: int, round_up: bool) -> int:
    """Kubernetes' GetScaledValueFromIntOrPercent: an int as is; "P%" of total,
    rounded up (maxSurge) or down (maxUnavailable)."""
    x = value(v)
    if x is None:
        raise ValueError("nil value for IntOrString")
    if isinstance(x, int):
        return x
    p = percent(x)
    # Integer arithmetic: floats would make 3 * 10% = 0.30000000000000004.
    if round_up:
        return -((-p * total) // 100)
    return (p * total) // 100
