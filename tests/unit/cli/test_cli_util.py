"""pkctl's shared helpers and command-line behaviour that needs no server:
argument parsing, manifests, config resolution, usage errors, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import config, delete, util
from cli.main import cli
from pkapi import meta
from tests.fixtures.controlplane import free_port


def kinds(targets: list[util.Target]) -> list[tuple[str, str | None]]:
    return [(t.kind.kind, t.name) for t in targets]


# ------------------------------------------------------------------ targets


@pytest.mark.parametrize("name,kind", [
    ("po", "Pod"), ("pods", "Pod"), ("pod", "Pod"), ("Pod", "Pod"),
    ("deploy", "Deployment"), ("deployments.apps", "Deployment"), ("deployment.apps", "Deployment"),
    ("rs", "ReplicaSet"), ("svc", "Service"), ("no", "Node"), ("ep", "Endpoints"), ("ns", "Namespace"),
    ("ev", "Event"), ("leases", "Lease"),
])
def test_kind_names(name: str, kind: str) -> None:
    assert util.lookup_kind(name).kind == kind


def test_parse_targets_forms() -> None:
    assert kinds(util.parse_targets(["deploy"])) == [("Deployment", None)]
    assert kinds(util.parse_targets(["deploy,svc"])) == [("Deployment", None), ("Service", None)]
    assert kinds(util.parse_targets(["po", "a", "b"])) == [("Pod", "a"), ("Pod", "b")]
    assert kinds(util.parse_targets(["deploy/web", "svc/web"])) == [("Deployment", "web"), ("Service", "web")]
    assert [k for k, _ in kinds(util.parse_targets(["all"]))] == ["Pod", "Service", "Deployment", "ReplicaSet"]


@pytest.mark.parametrize("args,msg", [
    (["foo"], 'the server doesn\'t have a resource type "foo"'),
    (["deploy,foo"], 'the server doesn\'t have a resource type "foo"'),
    (["deploy/web", "web2"], "there is no need to specify a resource type"),
    (["deploy", "svc/web"], "there is no need to specify a resource type"),
    (["deploy/web/x"], "^arguments in resource/name form may not have more than one slash$"),
    (["deploy,svc/web"], "^arguments in resource/name form must have a single resource and name$"),
    (["deploy/"], "^arguments in resource/name form must have a single resource and name$"),
    (["/web"], "^arguments in resource/name form must have a single resource and name$"),
    (["deploy,svc", "web"], "you must specify only one resource type"),
    (["StatefulSet/x"], 'doesn\'t have a resource type "StatefulSet"'),
])
def test_parse_targets_errors(args: list[str], msg: str) -> None:
    with pytest.raises(util.CliError, match=msg):
        util.parse_targets(args)


@pytest.mark.parametrize("text,seconds", [("0", 0), ("30", 30), ("500ms", 0.5), ("5s", 5), ("2m", 120),
                                          ("1h", 3600), ("1.5s", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert util.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        util.parse_duration(text)


# ---------------------------------------------------------------- manifests


def test_documents_multi_yaml_json_and_list() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Service\n" \
           "metadata: {name: b}\n"
    assert [d["metadata"]["name"] for d in util.parse_documents(text, "f.yaml")] == ["a", "b"]
    js = '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service"}]}'
    assert util.parse_documents(js, "f.json") == [{"apiVersion": "v1", "kind": "Service"}]


def test_documents_keep_timestamps_as_strings() -> None:
    (d,) = util.parse_documents("apiVersion: v1\nkind: Pod\nmetadata:\n  creationTimestamp: 2026-11-28T12:00:00Z\n",
                                "f")
    assert d["metadata"]["creationTimestamp"] == "2026-11-28T12:00:00Z"


@pytest.mark.parametrize("text,msg", [
    ("a: 1\na: 2\n", '(?s)error parsing f.yaml: .*line 2: mapping key "a" already defined at line 1'),
    ("a: [1, 2\n", "error parsing f.yaml: error converting YAML to JSON"),
    ("- 1\n- 2\n", 'error validating "f.yaml".*must be a mapping'),
    ("just text", "must be a mapping"),
    ("metadata: {name: x}\n", r'error validating "f.yaml": error validating data: \[apiVersion not set, kind not set\]'),
    ("apiVersion: v1\nkind: List\nitems:\n- metadata: {}\n", "apiVersion not set"),
])
def test_documents_errors(text: str, msg: str) -> None:
    with pytest.raises(util.CliError, match=msg):
        util.parse_documents(text, "f.yaml")


def test_document_kind_resolution_errors() -> None:
    ss = util.Document("f.yaml", {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"}})
    with pytest.raises(util.CliError) as e:
        ss.resolve_kind()
    assert str(e.value) == ('resource mapping not found for name: "x" namespace: "" from "f.yaml": no matches for '
                            'kind "StatefulSet" in version "apps/v1"\nensure CRDs are installed first')
    old = util.Document("f.yaml", {"apiVersion": "extensions/v1beta1", "kind": "Deployment"})
    with pytest.raises(util.CliError, match='no matches for kind "Deployment" in version "extensions/v1beta1"'):
        old.resolve_kind()
    bare = util.Document("f.yaml", {"metadata": {"name": "x"}})
    with pytest.raises(util.CliError, match=r"\[apiVersion not set, kind not set\]"):
        bare.resolve_kind()
    ok = util.Document("f.yaml", {"apiVersion": "apps/v1", "kind": "Deployment"})
    assert ok.resolve_kind() is meta.kind_by_name("Deployment")


def test_read_manifests_directory_and_missing(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: b}\n")
    (tmp_path / "a.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}')
    (tmp_path / "notes.txt").write_text("ignored")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "c.yml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: c}\n")
    assert [d.name for d in util.read_manifests([str(tmp_path)])] == ["a", "b"]
    assert [d.name for d in util.read_manifests([str(tmp_path)], recursive=True)] == ["a", "b", "c"]
    with pytest.raises(util.CliError, match='the path ".*nope.yaml" does not exist'):
        util.read_manifests([str(tmp_path / "nope.yaml")])


# ------------------------------------------------------------------- config


def test_server_resolution_order(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    env = {"PKCTL_CONFIG": str(cfg), "KUBECONFIG": str(tmp_path / "kubeconfig")}
    assert config.resolve_server(None, env) == "127.0.0.1:6444"
    # A kubeconfig context with PocketKube's gRPC extension comes after the config file.
    from pkapi import kubeconfig

    kubeconfig.save(tmp_path / "kubeconfig", kubeconfig.build("pk", "https://10.0.0.9:6443", b"CA",
                                                              grpc_server="10.0.0.9:6444"))
    assert config.resolve_server(None, env) == "10.0.0.9:6444"
    kubeconfig.save(tmp_path / "kubeconfig", kubeconfig.build("other", "https://10.0.0.8:6443", b"CA"))
    assert config.resolve_server(None, env) == "127.0.0.1:6444"  # not ours: no guess
    config.write_config(cfg, "10.0.0.1:7000", namespace="lab")
    assert config.resolve_server(None, env) == "10.0.0.1:7000"
    assert config.resolve_namespace(None, env) == "lab"
    env["PKCTL_SERVER"] = "http://10.0.0.2:8000/"
    assert config.resolve_server(None, env) == "10.0.0.2:8000"
    assert config.resolve_server("grpc://10.0.0.3:9000", env) == "10.0.0.3:9000"
    assert config.resolve_namespace("x", env) == "x"


def test_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("server: [1, 2\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.resolve_server(None, {"PKCTL_CONFIG": str(cfg)})
    cfg.write_text("- a\n")
    with pytest.raises(config.ConfigError, match="expected a mapping"):
        config.resolve_server(None, {"PKCTL_CONFIG": str(cfg)})


# ------------------------------------------------------------- delete rules


def test_grace_period_rules() -> None:
    assert delete.grace_seconds(-1, False, False) is None
    assert delete.grace_seconds(-1, True, False) == 0
    assert delete.grace_seconds(0, False, False) == 1
    assert delete.grace_seconds(0, True, False) == 0
    assert delete.grace_seconds(-1, False, True) == 1
    assert delete.grace_seconds(30, False, False) == 30
    with pytest.raises(util.CliError):
        delete.grace_seconds(5, False, True)


def test_cascade_values() -> None:
    assert delete.propagation("foreground") == "Foreground"
    assert delete.propagation("Orphan") == "Orphan"
    assert delete.propagation("background") == "Background"
    with pytest.raises(util.CliError, match=r'invalid cascade value \(sometimes\)'):
        delete.propagation("sometimes")


# ------------------------------------------------------ the command line


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PKCTL_CONFIG", str(tmp_path / "no-config"))
    monkeypatch.delenv("PKCTL_SERVER", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        r = runner.invoke(cli, list(args), input=input, prog_name="pkctl")
        assert "Traceback" not in r.output, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        return r

    return invoke


@pytest.mark.parametrize("args,code,stderr", [
    (["get", "--bogus"], 1, "error: unknown flag: --bogus\nSee 'pkctl get --help' for usage.\n"),
    (["frobnicate"], 1, 'error: unknown command "frobnicate" for "pkctl"\n'),
    (["get"], 1, "error: Required resource not specified."),
    (["get", "foo"], 1, 'error: the server doesn\'t have a resource type "foo"\n'),
    (["get", "po", "-o", "bogus"], 1, 'unable to match a printer suitable for the output format "bogus"'),
    (["get", "po", "-o", "jsonpath={.a"], 1, "error parsing jsonpath"),
    (["get", "po", "x", "-l", "a=b"], 1, "name cannot be provided when a selector is specified"),
    (["get", "po", "x", "-A"], 1, "a resource cannot be retrieved by name across all namespaces"),
    (["get", "po", "--request-timeout", "soon"], 1, "invalid timeout value"),
    (["delete", "deploy"], 1, "resource(s) were provided, but no name was specified"),
    (["delete"], 1, "You must provide one or more resources"),
    (["delete", "deploy", "x", "--cascade=sometimes"], 1, "invalid cascade value (sometimes)"),
    (["apply"], 1, "Missing option '-f'"),
    (["apply", "-f", "/nonexistent/x.yaml"], 1, 'the path "/nonexistent/x.yaml" does not exist'),
    (["describe"], 1, "Required resource not specified."),
    (["exec", "web"], 1, "you must specify at least one command for the container"),
])
def test_user_errors_exit_1_without_traceback(run, args: list[str], code: int, stderr: str) -> None:
    r = run(*args)
    assert r.exit_code == code, r.output
    assert stderr in r.stderr
    assert r.stdout == ""


def test_unreachable_server(run) -> None:
    addr = f"127.0.0.1:{free_port()}"
    for args in (["get", "pods"], ["apply", "-f", "-"], ["delete", "pod", "x"], ["describe", "po", "x"],
                 ["version"], ["logs", "x"]):
        r = run("--server", addr, *args, input="apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
        assert r.exit_code == 1
        assert r.stderr.startswith(f"error: cannot reach the control plane at {addr}: connection refused"), r.stderr


def test_server_from_env_and_flag_after_verb(run, monkeypatch: pytest.MonkeyPatch) -> None:
    addr = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("PKCTL_SERVER", addr)
    assert f"at {addr}:" in run("get", "pods").stderr
    other = f"127.0.0.1:{free_port()}"
    assert f"at {other}:" in run("get", "pods", "-s", other).stderr
    assert f"at {other}:" in run("--server", other, "get", "pods").stderr


def test_help_and_static_commands(run) -> None:
    r = run("--help")
    assert r.exit_code == 0
    for verb in ("apply", "create", "get", "describe", "delete", "logs", "exec", "version", "api-resources"):
        assert f"  {verb}" in r.stdout
    r = run("api-resources")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert any(line.split() == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
               for line in r.stdout.splitlines())
    assert run("api-resources", "-o", "name").stdout.splitlines()[0] == "deployments.apps"
    r = run("version", "--client")
    assert r.exit_code == 0 and r.stdout.startswith("Client Version: v")


@pytest.mark.parametrize("image,name", [("nginx", "nginx"), ("nginx:1.25", "nginx"), ("pocketkube/hello:1", "hello"),
                                        ("registry:5000/team/web:1.2", "web"), ("busybox@sha256:abc", "busybox"),
                                        ("My_Image", "my-image")])
def test_container_name_for_create_deployment(image: str, name: str) -> None:
    from cli.create import container_name

    assert container_name(image) == name


def test_wait_conditions() -> None:
    from cli.wait import parse_for
    from pkapi.v1 import apps_pb2

    d = apps_pb2.Deployment()
    d.status.conditions.add(type="Available", status="True")
    d.status.ready_replicas = 3
    assert parse_for("condition=Available").met(d)
    assert parse_for("condition=available=true").met(d)
    assert not parse_for("condition=Available=False").met(d)
    assert not parse_for("condition=Progressing").met(d)
    assert parse_for("jsonpath={.status.readyReplicas}=3").met(d)
    assert parse_for("jsonpath=.status.readyReplicas=3").met(d)
    assert not parse_for("jsonpath={.status.readyReplicas}=2").met(d)
    assert parse_for("delete").kind == "delete"
    for bad in ("sometime", "condition=", "jsonpath={.a}", "jsonpath={.a["):
        with pytest.raises(util.CliError):
            parse_for(bad)


def test_config_commands(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "pk" / "config"
    monkeypatch.setenv("PKCTL_CONFIG", str(cfg))
    view = yaml_load(run("config", "view").stdout)
    assert view["server"] == "127.0.0.1:6444" and view["serverFrom"] == "default"
    assert not view["configFileExists"]
    assert run("config", "set-server", "grpc://10.0.0.1:7000").exit_code == 0
    assert run("config", "set-namespace", "dev").exit_code == 0
    view = yaml_load(run("config", "view").stdout)
    assert (view["server"], view["serverFrom"]) == ("10.0.0.1:7000", str(cfg))
    assert (view["namespace"], view["namespaceFrom"]) == ("dev", str(cfg))
    view = yaml_load(run("-n", "x", "config", "view", "-s", "1.2.3.4:5").stdout)
    assert (view["server"], view["serverFrom"], view["namespace"]) == ("1.2.3.4:5", "--server", "x")
    cfg.write_text("server: [\n")
    r = run("config", "view")
    assert r.exit_code == 1 and "is not valid YAML" in r.stderr


def yaml_load(text: str) -> dict:
    import yaml

    out: dict = yaml.safe_load(text)
    return out


def test_label_changes() -> None:
    from cli.label import _split, parse_changes

    assert _split(("pod", "web-1", "a=1", "b-")) == (["pod", "web-1"], ["a=1", "b-"])
    assert _split(("pod/web-1", "a=")) == (["pod/web-1"], ["a="])
    ch = parse_changes(["a=1", "b-", "c="], "label")
    assert ch.set == {"a": "1", "c": ""} and ch.remove == ("b",)
    for bad in (["=1"], ["a=1", "a-"], ["bad key=1"], ["a=not valid!"]):
        with pytest.raises(util.CliError):
            parse_changes(bad, "label")
    assert parse_changes(["note=any text: at all"], "annotation").set == {"note": "any text: at all"}


def test_port_forward_specs_and_targets() -> None:
    from cli.port_forward import Forward, parse_ports, target_of
    from pkapi.v1 import core_pb2

    assert parse_ports(("8080:80", "80", ":http", "0:9")) == [
        Forward(8080, "80"), Forward(80, "80"), Forward(0, "http"), Forward(0, "9")]
    for bad in ("x:80", "70000:80", "80:0", "80:"):
        with pytest.raises(util.CliError):
            parse_ports((bad,))
    p = core_pb2.Pod()
    p.metadata.name = "web-1"
    p.status.host_ip = "10.0.0.2"
    p.spec.containers.add(name="c").ports.add(name="http", container_port=8080)
    p.status.port_mappings.add(container_name="c", container_port=8080, protocol="TCP", host_port=40001)
    assert target_of(p, "8080") == ("10.0.0.2", 40001, 8080)
    assert target_of(p, "http") == ("10.0.0.2", 40001, 8080)
    with pytest.raises(util.CliError, match="no published TCP port 81"):
        target_of(p, "81")
    with pytest.raises(util.CliError, match="does not have a named port 'grpc'"):
        target_of(p, "grpc")


def test_completion(run) -> None:
    r = run("completion", "bash")
    assert r.exit_code == 0 and "_PKCTL_COMPLETE=bash_complete" in r.stdout
    assert run("completion", "tcsh").exit_code == 1
    import click

    from cli.get import command as get_cmd

    ctx = click.Context(get_cmd)
    param = next(p for p in get_cmd.params if p.name == "args")
    assert [c.value for c in util.complete_types(ctx, param, "de")] == ["deploy", "deployments"]
    ctx.params["args"] = ("deploy",)
    assert util.complete_types(ctx, param, "") == []


@pytest.mark.parametrize("detail", [
    "DNS resolution failed for nosuch.invalid:6443: C-ares status is not ARES_SUCCESS",
    "errors resolving garbage:::: [field:hostname lookup error:address lookup failed for garbage:::: "
    "Misformatted domain name]",
])
def test_unresolvable_server_is_an_unknown_host(detail: str) -> None:
    from pkapi.client.cluster import ServerUnreachable

    assert util.unreachable_text(ServerUnreachable("h:1", detail)) == (
        "cannot reach the control plane at h:1: unknown host (see --server)")


class _Racing:
    """A client whose first `conflicts` updates lose a race with a
    controller's status write (Conflict), as the API server answers."""

    def __init__(self, conflicts: int, error: str = "Conflict") -> None:
        self.conflicts = conflicts
        self.error = error
        self.gets = 0
        self.updates = 0
        self.replicas = 1

    async def get(self, resource: str, ns: str, name: str) -> Any:
        from pkapi.v1 import apps_pb2

        self.gets += 1
        d = apps_pb2.Deployment()
        d.metadata.name, d.spec.replicas = name, self.replicas
        return d

    async def update(self, obj: Any) -> Any:
        from pkapi.errors import ApiError

        self.updates += 1
        if self.updates <= self.conflicts:
            raise ApiError(self.error, "the object has been modified")
        self.replicas = obj.spec.replicas
        return obj


def _scale_to(n: int) -> Any:
    def change(d: Any) -> bool:
        d.spec.replicas = n
        return True

    return change


def test_update_retrying_reads_again_after_a_conflict() -> None:
    import asyncio

    c = _Racing(conflicts=3)
    out, written = asyncio.run(util.update_retrying(c, "deployments", "default", "web", _scale_to(5)))  # type: ignore[arg-type]
    assert written and out.spec.replicas == 5 and c.replicas == 5
    assert (c.gets, c.updates) == (4, 4)  # each attempt on a fresh read


def test_update_retrying_gives_up_and_passes_other_errors_on() -> None:
    import asyncio

    from pkapi.errors import ApiError

    c = _Racing(conflicts=100)
    with pytest.raises(ApiError) as e:
        asyncio.run(util.update_retrying(c, "deployments", "default", "web", _scale_to(5), attempts=3))  # type: ignore[arg-type]
    assert e.value.reason == "Conflict" and c.updates == 3
    c = _Racing(conflicts=1, error="Invalid")
    with pytest.raises(ApiError) as e:
        asyncio.run(util.update_retrying(c, "deployments", "default", "web", _scale_to(5)))  # type: ignore[arg-type]
    assert e.value.reason == "Invalid" and c.updates == 1


def test_update_retrying_writes_nothing_when_nothing_changes() -> None:
    import asyncio

    c = _Racing(conflicts=0)
    _, written = asyncio.run(util.update_retrying(c, "deployments", "default", "web", lambda d: False))  # type: ignore[arg-type]
    assert not written and c.updates == 0
