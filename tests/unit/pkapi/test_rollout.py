"""pkapi.rollout: Kubernetes' deployment arithmetic."""

import pytest

from pkapi import intstr, rollout
from pkapi.rollout import RSInfo
from pkapi.v1 import core_pb2


@pytest.mark.parametrize(
    "surge,unavail,desired,expect",
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up, unavailable down
        ("25%", "25%", 1, (1, 0)),
        ("25%", "25%", 4, (1, 1)),
        (None, None, 3, (1, 0)),  # defaults 25%
        (0, 0, 5, (0, 1)),  # both zero: one may be unavailable so it can progress
        ("0%", "10%", 5, (0, 1)),  # 10% of 5 rounds down to 0 -> fencepost
        (3, 2, 10, (3, 2)),
        ("100%", "0%", 3, (3, 0)),
        ("33%", "33%", 10, (4, 3)),
        (intstr.make("50%"), intstr.make(1), 5, (3, 1)),
    ],
)
def test_resolve_fenceposts(surge, unavail, desired, expect) -> None:
    assert rollout.resolve_fenceposts(surge, unavail, desired) == expect


def test_validate_fenceposts() -> None:
    assert rollout.validate_fenceposts(1, 0) == []
    assert rollout.validate_fenceposts("25%", "25%") == []
    assert rollout.validate_fenceposts(0, 0) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    ]
    assert rollout.validate_fenceposts("0%", "0%") == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'
    ]
    assert any("must be greater than or equal to 0" in c for c in rollout.validate_fenceposts(-1, 1))
    assert any("must not be greater than 100%" in c for c in rollout.validate_fenceposts(1, "101%"))
    assert any("valid percent string" in c for c in rollout.validate_fenceposts("abc", 1))


def test_new_rs_replicas() -> None:
    new = RSInfo("new", 0)
    old = RSInfo("old", 10, 10)
    assert rollout.new_rs_replicas(True, 10, 3, new, [old, new]) == 3
    assert rollout.new_rs_replicas(True, 10, 0, new, [old, new]) == 0
    assert rollout.new_rs_replicas(True, 10, 3, RSInfo("new", 9), [RSInfo("old", 2), RSInfo("new", 9)]) == 10
    assert rollout.new_rs_replicas(True, 10, 3, RSInfo("new", 3), [RSInfo("old", 10), RSInfo("new", 3)]) == 3
    assert rollout.new_rs_replicas(False, 10, 3, new, [old, new]) == 10


def test_rolling_scale_down_respects_min_available() -> None:
    # 10 replicas, surge 3 unavailable 2; new RS has 3 unready pods
    down = rollout.rolling_scale_down([RSInfo("old", 10, 10)], RSInfo("new", 3, 0), 10, 2)
    assert down == {"old": 8}
    # nothing more may go while the new pods are unavailable
    assert rollout.rolling_scale_down([RSInfo("old", 8, 8)], RSInfo("new", 5, 0), 10, 2) == {}


def test_rolling_scale_down_removes_unhealthy_first_and_oldest_first() -> None:
    old = [RSInfo("b", 3, 1, created=2), RSInfo("a", 3, 3, created=1)]
    # all pods 6 + new 2 available=2 ; desired 6, maxUnavailable 0 -> minAvailable 6
    down = rollout.rolling_scale_down(old, RSInfo("new", 2, 2), 6, 0)
    # maxScaledDown = 8 - 6 - 0 = 2: b's 2 unhealthy pods go first; available 1+3+2=6 = min -> no more
    assert down == {"b": 1}
    down = rollout.rolling_scale_down([RSInfo("a", 3, 3, 1), RSInfo("b", 3, 3, 2)], RSInfo("new", 3, 3), 6, 1)
    assert down == {"a": 0, "b": 2}


def test_rolling_update_simulation_never_exceeds_bounds() -> None:
    """Drive a whole rollout step by step (pods become available instantly
    after each step) and check the bounds at every state."""
    desired, surge, unavail = 10, 3, 2
    old, new = 10, 0
    for _ in range(50):
        old_av, new_av = old, new
        new = rollout.new_rs_replicas(True, desired, surge, RSInfo("new", new, new_av),
                                      [RSInfo("old", old, old_av), RSInfo("new", new, new_av)])
        assert old + new <= desired + surge
        down = rollout.rolling_scale_down([RSInfo("old", old, old_av)], RSInfo("new", new, new_av), desired, unavail)
        old = down.get("old", old)
        assert old + new >= desired - unavail
        if old == 0 and new == desired:
            break
    assert (old, new) == (0, 10)


def test_kubernetes_proportional_scaling_case() -> None:
    """10 replicas, maxSurge 3, maxUnavailable 2, template switched to an
    image that never becomes ready, then scaled to 30: old 20, new 13."""
    desired, surge, unavail = 10, 3, 2
    old, new = 10, 0
    for _ in range(5):  # the rollout runs until it is stuck
        new = rollout.new_rs_replicas(True, desired, surge, RSInfo("new", new, 0),
                                      [RSInfo("old", old, old), RSInfo("new", new, 0)])
        old = rollout.rolling_scale_down([RSInfo("old", old, old)], RSInfo("new", new, 0), desired, unavail).get("old", old)
    assert (old, new) == (8, 5)
    s30, _ = rollout.resolve_fenceposts(3, 2, 30)
    sizes = rollout.proportional_scale(
        [RSInfo("old", old, old, created=1, max_replicas=13), RSInfo("new", new, 0, created=2, max_replicas=13)],
        30, s30, True, 13,
    )
    assert sizes == {"old": 20, "new": 13}


def test_proportional_scale_down_and_to_zero() -> None:
    rss = [RSInfo("old", 20, created=1, max_replicas=33), RSInfo("new", 13, created=2, max_replicas=33)]
    assert rollout.proportional_scale(rss, 10, 3, True, 33) == {"old": 8, "new": 5}
    assert rollout.proportional_scale(rss, 0, 0, True, 33) == {"old": 0, "new": 0}
    # no annotation: status.replicas is the reference
    assert rollout.proportional_scale([RSInfo("a", 2, created=1), RSInfo("b", 2, created=2)], 8, 0, False, 4) == {"a": 4, "b": 4}
    # leftovers go to the biggest
    out = rollout.proportional_scale([RSInfo("a", 1, created=1), RSInfo("b", 2, created=2)], 4, 0, False, 3)
    assert sum(out.values()) == 4


def _template(image: str, extra_label: str = "") -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels["app"] = "web"
    if extra_label:
        t.metadata.labels[rollout.POD_TEMPLATE_HASH] = extra_label
    t.spec.containers.add(name="web", image=image)
    return t


def test_pod_template_hash() -> None:
    h = rollout.pod_template_hash(_template("nginx:1"))
    assert h == rollout.pod_template_hash(_template("nginx:1"))
    assert h == rollout.pod_template_hash(_template("nginx:1", "zzz"))  # own label ignored
    assert h != rollout.pod_template_hash(_template("nginx:2"))
    assert h != rollout.pod_template_hash(_template("nginx:1"), collision_count=1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert rollout.equal_ignore_hash(_template("nginx:1"), _template("nginx:1", "abc"))
    assert not rollout.equal_ignore_hash(_template("nginx:1"), _template("nginx:2"))


def test_revisions() -> None:
    assert rollout.max_revision([{rollout.REVISION: "3"}, {}, {rollout.REVISION: "x"}, {rollout.REVISION: "10"}]) == 10
    assert rollout.revision_annotations({}, 1) == {rollout.REVISION: "1"}
    assert rollout.revision_annotations({rollout.REVISION: "1"}, 4) == {rollout.REVISION: "4", rollout.REVISION_HISTORY: "1"}
    assert rollout.revision_annotations({rollout.REVISION: "4", rollout.REVISION_HISTORY: "1"}, 6) == {
        rollout.REVISION: "6", rollout.REVISION_HISTORY: "1,4"}
    assert rollout.revision_annotations({rollout.REVISION: "4"}, 4) == {rollout.REVISION: "4"}


def test_rs_to_clean_up() -> None:
    old = [("r1", 0, 0, 1.0), ("r2", 0, 0, 2.0), ("r3", 1, 1, 3.0), ("r4", 0, 0, 4.0)]
    assert rollout.rs_to_clean_up(old, 10) == []
    assert rollout.rs_to_clean_up(old, 2) == ["r1", "r2"]
    assert rollout.rs_to_clean_up(old, 0) == ["r1", "r2", "r4"]  # r3 still has pods


def _pod(name: str, node: str = "", phase: str = "Running", ready_since: int | None = None,
         created: int = 0, restarts: int = 0) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.creation_timestamp.seconds = created
    p.spec.node_name = node
    p.status.phase = phase
    if ready_since is not None:
        c = p.status.conditions.add(type="Ready", status="True")
        c.last_transition_time.seconds = ready_since
    else:
        p.status.conditions.add(type="Ready", status="False")
    p.status.container_statuses.add(name="c", restart_count=restarts)
    return p


def test_deletion_ranking() -> None:
    pods = [
        _pod("ready-old", "n1", ready_since=100, created=10),
        _pod("ready-new", "n1", ready_since=100, created=20),
        _pod("unscheduled", "", phase="Pending", created=1),
        _pod("notready", "n2", created=5),
        _pod("pending", "n2", phase="Pending", created=2),
        _pod("ready-recently", "n1", ready_since=200, created=5),
        _pod("ready-restarts", "n1", ready_since=100, created=5, restarts=3),
    ]
    order = [p.metadata.name for p in rollout.pods_to_delete(pods, len(pods))]
    assert order == ["unscheduled", "pending", "notready", "ready-recently", "ready-restarts", "ready-new", "ready-old"]
    assert [p.metadata.name for p in rollout.pods_to_delete(pods, 2)] == ["unscheduled", "pending"]
    assert rollout.pods_to_delete(pods, 0) == []


def test_availability() -> None:
    p = _pod("a", "n1", ready_since=100)
    assert rollout.is_pod_available(p, 0, 100)
    assert not rollout.is_pod_available(p, 10, 105)
    assert rollout.is_pod_available(p, 10, 110)
    assert not rollout.is_pod_available(_pod("b", "n1"), 0, 1000)


def test_slow_start_batches() -> None:
    assert rollout.slow_start_batches(0) == []
    assert rollout.slow_start_batches(1) == [1]
    assert rollout.slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(rollout.slow_start_batches(3000)) == 3000
