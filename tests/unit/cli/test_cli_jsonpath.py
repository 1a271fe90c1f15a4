"""The JSONPath subset of `pkctl get -o jsonpath=…` (pure)."""

from __future__ import annotations

import pytest

from cli.jsonpath import JSONPathError, evaluate, parse_path, parse_template, relaxed

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "labels": {"app": "web", "app.kubernetes.io/name": "web"}},
    "spec": {"containers": [{"name": "a", "image": "hello:1", "ports": [{"containerPort": 80}]},
                            {"name": "b", "image": "busybox"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                                  {"type": "PodScheduled", "status": "True"}],
               "ready": True, "restarts": 3},
}
LIST = {"apiVersion": "v1", "kind": "List", "items": [
    POD,
    {"metadata": {"name": "web-2", "labels": {"app": "web"}}, "status": {"phase": "Pending", "restarts": 0}},
    {"metadata": {"name": "db-1", "labels": {"app": "db"}}, "status": {"phase": "Running", "restarts": 7}},
]}


def render(tmpl: str, data: object) -> str:
    return parse_template(tmpl).render(data)


@pytest.mark.parametrize(
    "tmpl,data,out",
    [
        ("{.metadata.name}", POD, "web-1"),
        ("{$.metadata.name}", POD, "web-1"),
        ("{metadata.name}", POD, "web-1"),
        ("name={.metadata.name} phase={.status.phase}", POD, "name=web-1 phase=Running"),
        ("{.items[*].metadata.name}", LIST, "web-1 web-2 db-1"),
        ("{.items[0].metadata.name}", LIST, "web-1"),
        ("{.items[-1].metadata.name}", LIST, "db-1"),
        ("{.items[0:2].metadata.name}", LIST, "web-1 web-2"),
        ("{.items[::2].metadata.name}", LIST, "web-1 db-1"),
        ("{.items[5].metadata.name}", LIST, ""),
        ("{.spec.containers[*].image}", POD, "hello:1 busybox"),
        ("{.metadata.labels['app.kubernetes.io/name']}", POD, "web"),
        ('{.metadata.labels["app.kubernetes.io/name"]}', POD, "web"),
        ("{.metadata.labels.app\\.kubernetes\\.io/name}", POD, "web"),
        ("{.status.conditions[?(@.type==\"Ready\")].status}", POD, "True"),
        ("{.status.conditions[?(@.type=='PodScheduled')].type}", POD, "PodScheduled"),
        ("{.items[?(@.status.restarts>2)].metadata.name}", LIST, "web-1 db-1"),
        ("{.items[?(@.status.restarts<=0)].metadata.name}", LIST, "web-2"),
        ("{.items[?(@.status.phase!='Running')].metadata.name}", LIST, "web-2"),
        ("{.spec.containers[?(@.ports)].name}", POD, "a"),
        ("{..image}", POD, "hello:1 busybox"),
        ("{.metadata.labels.*}", POD, "web web"),
        ("{.status.ready}", POD, "true"),
        ("{.status.restarts}", POD, "3"),
        ("{.metadata.labels}", POD, '{"app":"web","app.kubernetes.io/name":"web"}'),
        ("{.spec.containers[0].ports}", POD, '[{"containerPort":80}]'),
        ("{.missing.field}", POD, ""),
        ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', LIST,
         "web-1\tRunning\nweb-2\tPending\ndb-1\tRunning\n"),
        ("{range .items[*]}[{.metadata.name}]{end}", LIST, "[web-1][web-2][db-1]"),
        ("{range .spec.containers[*]}{.name}:{range .ports[*]}{.containerPort},{end};{end}", POD, "a:80,;b:;"),
        ("{'literal'} {.kind}", POD, "literal Pod"),
        ("no actions at all", POD, "no actions at all"),
    ],
)
def test_templates(tmpl: str, data: object, out: str) -> None:
    assert render(tmpl, data) == out


@pytest.mark.parametrize("tmpl", ["{.a", "{range .items[*]}{.x}", "{end}", "{}", "{.items[abc]}", "{.a[?x]}",
                                  "{.items[0:1:2:3]}"])
def test_bad_templates(tmpl: str) -> None:
    with pytest.raises(JSONPathError):
        parse_template(tmpl)


def test_relaxed_paths_for_custom_columns_and_sort_by() -> None:
    for expr in (".metadata.name", "metadata.name", "{.metadata.name}"):
        assert evaluate(relaxed(expr), POD, POD) == ["web-1"]
    for bad in ("{.metadata.name", ".metadata.name}", "{.a}{.b}", "{.a},{.b}"):
        with pytest.raises(JSONPathError, match="unexpected path string"):
            relaxed(bad)


def test_parse_path_segments() -> None:
    p = parse_path("$.items[*].metadata.name")
    assert p.root and len(p.segments) == 4
