"""pkctl patch's local half: parsing the patch and patching a message as the
API server would (no server: messages built in memory)."""

from __future__ import annotations

import pytest

from cli import patch as cli_patch
from cli.util import CliError
from pkapi import patch
from pkapi.errors import ApiError
from pkapi.v1 import apps_pb2


def deployment() -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    d.metadata.resource_version = "42"
    d.spec.replicas = 2
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    d.spec.template.spec.containers.add(name="web", image="hello:1")
    return d


def test_parse_patch_json_or_yaml() -> None:
    assert cli_patch.parse_patch('{"spec":{"replicas":3}}') == {"spec": {"replicas": 3}}
    assert cli_patch.parse_patch("spec:\n  replicas: 3\n") == {"spec": {"replicas": 3}}
    assert cli_patch.parse_patch('[{"op":"remove","path":"/a"}]') == [{"op": "remove", "path": "/a"}]
    with pytest.raises(CliError, match='unable to parse "{a: \\[}"'):
        cli_patch.parse_patch("{a: [}")
    with pytest.raises(CliError, match="one JSON or YAML document"):
        cli_patch.parse_patch("a: 1\n---\nb: 2\n")


def test_patched_returns_the_new_message_or_none() -> None:
    d = deployment()
    new = cli_patch.patched(d, {"spec": {"replicas": 5}}, patch.STRATEGIC_MERGE_PATCH)
    assert new is not None and new.spec.replicas == 5
    assert d.spec.replicas == 2  # the object read is not changed
    assert new.metadata.resource_version == "42"  # written with the version read
    assert cli_patch.patched(d, {"spec": {"replicas": 2}}, patch.MERGE_PATCH) is None


def test_patched_strategic_merges_containers_by_name() -> None:
    new = cli_patch.patched(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox"}]}}}}, patch.STRATEGIC_MERGE_PATCH)
    assert [c.name for c in new.spec.template.spec.containers] == ["side", "web"]


@pytest.mark.parametrize("body,ct,reason,text", [
    ({"metadata": {"name": "x"}}, patch.MERGE_PATCH, "BadRequest", "does not match the name on the URL (web)"),
    ({"metadata": {"namespace": "x"}}, patch.MERGE_PATCH, "BadRequest", "does not match the namespace on the URL"),
    ({"metadata": {"resourceVersion": "41"}}, patch.MERGE_PATCH, "Conflict", "Operation cannot be fulfilled"),
    ({"spec": {"bogus": 1}}, patch.STRATEGIC_MERGE_PATCH, "BadRequest", 'unknown field "spec.bogus"'),
    ([{"op": "test", "path": "/spec/replicas", "value": 9}], patch.JSON_PATCH, "Invalid", "rejected"),
    ([{"op": "replace", "path": "", "value": 1}], patch.JSON_PATCH, "BadRequest", "not an object"),
])
def test_patched_errors(body, ct, reason, text) -> None:
    with pytest.raises(ApiError) as e:
        cli_patch.patched(deployment(), body, ct)
    assert e.value.reason == reason
    assert text in e.value.message

