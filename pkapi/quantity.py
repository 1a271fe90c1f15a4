"""Resource quantities (Kubernetes' resource.Quantity): "500m", "1.5",
"128Mi", "1G", "1e3".

Pure: no external calls or any I/O. Values are exact Decimals; cpu_millis
and bytes_ round up as Kubernetes' MilliValue()/Value() do, so a request is
never understated.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}

_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$")

QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    pass


def _text(v: Any) -> str:
    if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        return _num_text(v)
    if isinstance(v, str):
        return v
    # google.protobuf.Value
    k = v.WhichOneof("kind")
    if k == "number_value":
        return _num_text(v.number_value)
    if k == "string_value":
        s: str = v.string_value
        return s
    raise QuantityError(QUANTITY_ERROR)


def _num_text(n: Any) -> str:
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)


def parse(v: Any) -> Decimal:
    """A quantity (str, number or google.protobuf.Value) as an exact Decimal.
    Raises QuantityError with Kubernetes' wording."""
    s = _text(v).strip()
    m = _RE.match(s)
    if not m:
        raise QuantityError(QUANTITY_ERROR)
    try:
        num = Decimal(m.group(1))
    except InvalidOperation:
        raise QuantityError(QUANTITY_ERROR) from None
    suffix, exp = m.group(2), m.group(3)
    if suffix in _BINARY:
        return num * _BINARY[suffix]
    if suffix:
        return num * _DECIMAL[suffix]
    if exp is not None:
        return num.scaleb(int(exp))
    return num


def cpu_millis(v: Any) -> int:
    """CPU in millicores, rounded up: "500m" -> 500, 1.5 -> 1500, "1" -> 1000."""
    return int((parse(v) * 1000).to_integral_value(rounding=ROUND_CEILING))


def bytes_(v: Any) -> int:
    """Bytes, rounded up: "128Mi" -> 134217728, "1G" -> 10**9."""
    return int(parse(v).to_integral_value(rounding=ROUND_CEILING))


def format_millis(m: int) -> str:
    """CPU millis as Kubernetes prints them: 1500 -> "1500m", 2000 -> "2"."""
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def format_bytes(b: int) -> str:
    """Bytes in the largest exact binary unit: 134217728 -> "128Mi"."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if b and b % _BINARY[suffix] == 0:
            return f"{b // _BINARY[suffix]}{suffix}"
    return str(b)
