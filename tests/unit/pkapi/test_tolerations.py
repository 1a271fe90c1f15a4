"""Toleration matching (ToleratesTaint) and NoExecute toleration times."""

import pytest

from pkapi.scheduling import UNREACHABLE_TAINT, tolerates, toleration_seconds, untolerated
from pkapi.v1 import core_pb2

T = core_pb2.Toleration
Taint = core_pb2.Taint


@pytest.mark.parametrize(
    "tol,taint,ok",
    [
        (T(key="a", operator="Equal", value="1", effect="NoSchedule"), Taint(key="a", value="1", effect="NoSchedule"), True),
        (T(key="a", value="1"), Taint(key="a", value="1", effect="NoExecute"), True),  # empty op = Equal, empty effect = all
        (T(key="a", operator="Equal", value="2"), Taint(key="a", value="1", effect="NoSchedule"), False),
        (T(key="a", operator="Exists"), Taint(key="a", value="whatever", effect="NoSchedule"), True),
        (T(key="b", operator="Exists"), Taint(key="a", effect="NoSchedule"), False),
        (T(operator="Exists"), Taint(key="anything", effect="NoExecute"), True),  # tolerates everything
        (T(operator="Exists", effect="NoSchedule"), Taint(key="x", effect="NoExecute"), False),
        (T(key="a", operator="Exists", effect="NoExecute"), Taint(key="a", effect="NoSchedule"), False),
        (T(key="", operator="Equal"), Taint(key="a", effect="NoSchedule"), False),
        (T(key="a", operator="Bogus"), Taint(key="a", effect="NoSchedule"), False),
    ],
)
def test_tolerates(tol, taint, ok) -> None:
    assert tolerates(tol, taint) is ok


def test_untolerated_considers_only_given_effects() -> None:
    taints = [Taint(key="soft", effect="PreferNoSchedule"), Taint(key="hard", effect="NoSchedule")]
    assert untolerated(taints, [], ("NoSchedule", "NoExecute")).key == "hard"
    assert untolerated(taints, [T(key="hard", operator="Exists")], ("NoSchedule", "NoExecute")) is None


def test_toleration_seconds() -> None:
    taint = Taint(key=UNREACHABLE_TAINT, effect="NoExecute")
    assert toleration_seconds([], taint, 0) == 0
    assert toleration_seconds([], taint, 300) == 300
    assert toleration_seconds([], taint, None) == 0
    forever = T(key=UNREACHABLE_TAINT, operator="Exists", effect="NoExecute")
    assert toleration_seconds([forever], taint, 0) is None
    t5 = T(key=UNREACHABLE_TAINT, operator="Exists", effect="NoExecute", toleration_seconds=5)
    t9 = T(operator="Exists", toleration_seconds=9)
    assert toleration_seconds([t9, t5], taint, 0) == 5
    assert toleration_seconds([forever, t9], taint, 0) == 9
    assert toleration_seconds([T(key=UNREACHABLE_TAINT, operator="Exists", toleration_seconds=-3)], taint, 0) == 0
    # a toleration of another taint does not count: the default applies
    assert toleration_seconds([T(key="other", operator="Exists", toleration_seconds=1)], taint, 7) == 7
