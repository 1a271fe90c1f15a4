from decimal import Decimal

import pytest

from pkapi import quantity


@pytest.mark.parametrize(
    "q,want",
    [
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        ("128Mi", Decimal(128 * 2**20)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("2k", Decimal(2000)),
        (".5", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
        ("1E2", Decimal(100)),
    ],
)
def test_parse(q, want):
    assert quantity.parse(q) == want


@pytest.mark.parametrize("bad", ["", "abc", "1Xi", "12 Mi", "1.2.3", "m", "1mi"])
def test_bad(bad):
    with pytest.raises(quantity.QuantityError, match="quantities must match"):
        quantity.parse(bad)


def test_cpu_and_bytes():
    assert quantity.cpu_millis("500m") == 500
    assert quantity.cpu_millis("1.5") == 1500
    assert quantity.cpu_millis(2) == 2000
    assert quantity.cpu_millis("0.0001") == 1  # rounds up
    assert quantity.bytes_("128Mi") == 134217728
    assert quantity.bytes_("1G") == 10**9
    assert quantity.bytes_("1.5Ki") == 1536
    assert quantity.format_millis(1500) == "1500m"
    assert quantity.format_millis(2000) == "2"
    assert quantity.format_bytes(134217728) == "128Mi"


def test_value_message():
    from google.protobuf import struct_pb2

    assert quantity.cpu_millis(struct_pb2.Value(string_value="250m")) == 250
    assert quantity.cpu_millis(struct_pb2.Value(number_value=1)) == 1000
