import pytest
from google.protobuf import struct_pb2

from pkapi import intstr


def v(x):
    return intstr.make(x)


def test_value():
    assert intstr.value(v(3)) == 3
    assert intstr.value(v("25%")) == "25%"
    assert intstr.value(v("http")) == "http"
    assert intstr.value(struct_pb2.Value()) is None
    assert intstr.value(None) is None
    with pytest.raises(ValueError):
        intstr.value(struct_pb2.Value(number_value=1.5))
    with pytest.raises(ValueError):
        intstr.value(struct_pb2.Value(bool_value=True))


@pytest.mark.parametrize(
    "x,total,up,want",
    [
        ("25%", 10, True, 3),  # 2.5 -> surge rounds up
        ("25%", 10, False, 2),  # unavailable rounds down
        ("25%", 4, True, 1),
        ("25%", 4, False, 1),
        ("25%", 1, True, 1),
        ("25%", 1, False, 0),
        ("0%", 10, True, 0),
        ("100%", 3, False, 3),
        ("10%", 3, True, 1),
        ("10%", 3, False, 0),
        (2, 10, True, 2),
        (0, 10, False, 0),
    ],
)
def test_scaled(x, total, up, want):
    assert intstr.scaled(v(x), total, up) == want


def test_scaled_errors():
    with pytest.raises(ValueError, match="not a percentage"):
        intstr.scaled(v("abc"), 10, True)
    with pytest.raises(ValueError):
        intstr.scaled(v("x%"), 10, True)


def test_is_set():
    assert intstr.is_set(v(0))
    assert not intstr.is_set(struct_pb2.Value())
