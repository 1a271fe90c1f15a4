"""kubectl's client-side rollout logic (pkapi.rollout) and pure helpers of
pkctl set image / drain."""

from __future__ import annotations

import click
import pytest

from cli import nodes, setimage
from cli.util import CliError
from pkapi import rollout
from pkapi.v1 import apps_pb2, core_pb2


def _d(gen: int = 2, observed: int = 2, replicas: int = 3, updated: int = 3, total: int = 3,
       available: int = 3) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.generation = gen
    d.spec.replicas = replicas
    d.status.observed_generation = observed
    d.status.updated_replicas, d.status.replicas, d.status.available_replicas = updated, total, available
    return d


def test_rollout_status_messages() -> None:
    assert rollout.rollout_status_message(_d(gen=3)) == ("Waiting for deployment spec update to be observed...", False)
    assert rollout.rollout_status_message(_d(updated=1, total=4))[0] == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...')
    assert rollout.rollout_status_message(_d(total=4))[0] == (
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...')
    assert rollout.rollout_status_message(_d(available=1))[0] == (
        'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...')
    assert rollout.rollout_status_message(_d()) == ('deployment "web" successfully rolled out', True)
    stuck = _d(available=1)
    stuck.status.conditions.add(type="Progressing", status="False", reason="ProgressDeadlineExceeded")
    with pytest.raises(rollout.RolloutError, match='deployment "web" exceeded its progress deadline'):
        rollout.rollout_status_message(stuck)


def _rs(name: str, rev: int, image: str, cause: str = "") -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name = name
    rs.metadata.annotations[rollout.REVISION] = str(rev)
    if cause:
        rs.metadata.annotations[rollout.CHANGE_CAUSE] = cause
    rs.spec.template.metadata.labels["app"] = "web"
    rs.spec.template.metadata.labels[rollout.POD_TEMPLATE_HASH] = name
    rs.spec.template.spec.containers.add(name="c", image=image)
    return rs


def test_history_and_rollback_target() -> None:
    rss = [_rs("c", 3, "x:3"), _rs("a", 1, "x:1", "first"), _rs("b", 2, "x:2")]
    assert [(r, c) for r, c, _ in rollout.history(rss)] == [(1, "first"), (2, ""), (3, "")]
    assert rollout.rollback_target(rss, 0).metadata.name == "b"  # the previous revision
    assert rollout.rollback_target(rss, 1).metadata.name == "a"
    with pytest.raises(rollout.RolloutError, match="unable to find specified revision 7 in history"):
        rollout.rollback_target(rss, 7)
    with pytest.raises(rollout.RolloutError, match="no rollout history"):
        rollout.rollback_target(rss[:1], 0)
    t = rollout.rollback_template(rss[1])
    assert rollout.POD_TEMPLATE_HASH not in t.metadata.labels and t.spec.containers[0].image == "x:1"
    assert rss[1].spec.template.metadata.labels[rollout.POD_TEMPLATE_HASH] == "a"  # input untouched


def test_set_image_pairs_and_apply() -> None:
    assert setimage.parse_pairs(["web=nginx:2", "*=busybox"]) == {"web": "nginx:2", "*": "busybox"}
    with pytest.raises(CliError):
        setimage.parse_pairs(["web="])
    spec = core_pb2.PodSpec()
    spec.containers.add(name="web", image="nginx:1")
    spec.containers.add(name="side", image="busybox:1")
    assert setimage.apply_images(spec, {"web": "nginx:2"})
    assert [c.image for c in spec.containers] == ["nginx:2", "busybox:1"]
    assert not setimage.apply_images(spec, {"web": "nginx:2"})  # unchanged
    assert setimage.apply_images(spec, {"*": "img:3"}) and {c.image for c in spec.containers} == {"img:3"}
    with pytest.raises(CliError, match='unable to find container named "nope"'):
        setimage.apply_images(spec, {"nope": "x"})


def test_drain_classify() -> None:
    owned = core_pb2.Pod()
    owned.metadata.name = "owned"
    owned.metadata.owner_references.add(kind="ReplicaSet", name="rs", uid="u", controller=True)
    bare = core_pb2.Pod()
    bare.metadata.name = "bare"
    gone = core_pb2.Pod()
    gone.metadata.name = "gone"
    gone.metadata.owner_references.add(kind="ReplicaSet", name="rs", uid="u", controller=True)
    gone.metadata.deletion_timestamp.seconds = 1
    evict, no_ctl = nodes.classify([owned, bare, gone])
    assert [p.metadata.name for p in evict] == ["owned"] and [p.metadata.name for p in no_ctl] == ["bare"]
    assert isinstance(nodes.drain, click.Command)
