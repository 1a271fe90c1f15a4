"""pkctl against a real pk-controlplane (embedded etcd, controllers off).

One control plane serves the whole module (starting one costs ~1 s); each
test works in its own namespace, deleted at the end. Most commands run
in-process through click's CliRunner (fast); `get -w` runs as a real
subprocess so another client can change things while it watches, and so
Ctrl-C is a real SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cli.main import cli
from pkapi import meta
from pkapi.client.cluster import ClusterClient
from pkapi.v1 import core_pb2
from tests.fixtures.controlplane import REPO, ControlPlane
from tests.fixtures.etcd import tmp_root

pytestmark = pytest.mark.integration

SEED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-web-app-deployment
  labels:
    app: my-web-app
spec:
  replicas: 3
  selector:
    matchLabels:
      app: my-web-app
  template:
    metadata:
      labels:
        app: my-web-app
    spec:
      containers:
      - name: my-web-app-container
        image: nginx:latest
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: my-web-app-service
spec:
  selector:
    app: my-web-app
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
  type: ClusterIP
"""


def deployment_yaml(name: str, replicas: int = 1, labels: str = "app: web", extra: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    {labels}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: hello:1{extra}
"""


@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlane]:
    work = tempfile.mkdtemp(prefix="pk-cli-", dir=tmp_root())
    plane = ControlPlane(work, None, False, {})  # no etcd endpoint: pk-controlplane runs its own etcd
    try:
        asyncio.run(plane.start())
        yield plane
    finally:
        asyncio.run(plane.stop())
        shutil.rmtree(work, ignore_errors=True)


def api(cp: ControlPlane, fn: Any) -> Any:
    """Run `await fn(client)` with a fresh client (another client than pkctl)."""

    async def main() -> Any:
        async with ClusterClient(cp.address, timeout=10) as c:
            return await fn(c)

    return asyncio.run(main())


class Pk:
    """pkctl in-process against `cp`, in namespace `ns`."""

    def __init__(self, cp: ControlPlane, ns: str, tmp: Path) -> None:
        self.cp = cp
        self.ns = ns
        self.tmp = tmp
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ns: bool = True) -> Result:
        argv = ["--server", self.cp.address] + (["-n", self.ns] if ns else []) + list(args)
        r = self.runner.invoke(cli, argv, input=input, prog_name="pkctl",
                               env={"PKCTL_CONFIG": str(self.tmp / "no-config"), "PKCTL_SERVER": None})
        assert "Traceback" not in r.output, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        return r

    def ok(self, *args: str, input: str | None = None, ns: bool = True) -> str:
        r = self(*args, input=input, ns=ns)
        assert r.exit_code == 0, f"pkctl {' '.join(args)} exited {r.exit_code}:\n{r.stderr}"
        return r.stdout

    def file(self, name: str, text: str) -> str:
        p = self.tmp / name
        p.write_text(text)
        return str(p)


@pytest.fixture
def pk(cp: ControlPlane, tmp_path: Path) -> Iterator[Pk]:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    body = core_pb2.Namespace()
    body.metadata.name = ns
    api(cp, lambda c: c.create(body))
    try:
        yield Pk(cp, ns, tmp_path)
    finally:
        api(cp, lambda c: c.delete("namespaces", "", ns))


def rows(out: str) -> list[list[str]]:
    """Table lines split on runs of 2+ spaces (cells may hold one space)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


# ------------------------------------------------------------------- apply


def test_seed_manifests_apply_unchanged_and_print_like_kubectl(pk: Pk) -> None:
    f = pk.file("seed.yaml", SEED)
    assert pk.ok("apply", "-f", f) == ("deployment.apps/my-web-app-deployment created\n"
                                       "service/my-web-app-service created\n")
    assert pk.ok("apply", "-f", f) == ("deployment.apps/my-web-app-deployment unchanged\n"
                                       "service/my-web-app-service unchanged\n")
    t = rows(pk.ok("get", "deploy"))
    assert t[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert t[1][:4] == ["my-web-app-deployment", "0/3", "0", "0"]
    svc = rows(pk.ok("get", "svc"))
    assert svc[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1][0:2] == ["my-web-app-service", "ClusterIP"]
    assert svc[1][2].startswith("10.96.")
    assert svc[1][3:5] == ["<none>", "80/TCP"]
    # a changed manifest is "configured"
    changed = SEED.replace("replicas: 3", "replicas: 4")
    assert pk.ok("apply", "-f", "-", input=changed).splitlines() == [
        "deployment.apps/my-web-app-deployment configured", "service/my-web-app-service unchanged"]


def test_get_yaml_piped_into_apply_is_unchanged(pk: Pk) -> None:
    pk.ok("apply", "-f", pk.file("seed.yaml", SEED))
    for fmt in ("yaml", "json"):
        out = pk.ok("get", "deploy", "my-web-app-deployment", "-o", fmt)
        assert pk.ok("apply", "-f", "-", input=out) == "deployment.apps/my-web-app-deployment unchanged\n"
    # a whole List too
    out = pk.ok("get", "deploy,svc", "-o", "yaml")
    assert pk.ok("apply", "-f", "-", input=out).splitlines() == [
        "deployment.apps/my-web-app-deployment unchanged", "service/my-web-app-service unchanged"]


def test_apply_directory_json_and_dry_run(pk: Pk) -> None:
    d = pk.tmp / "manifests"
    d.mkdir()
    (d / "a.yaml").write_text(deployment_yaml("a"))
    (d / "b.json").write_text(json.dumps(yaml.safe_load(deployment_yaml("b"))))
    (d / "README.md").write_text("not a manifest")
    assert pk.ok("apply", "-f", str(d), "--dry-run=server").splitlines() == [
        "deployment.apps/a created (server dry run)", "deployment.apps/b created (server dry run)"]
    assert pk("get", "deploy").stderr == f"No resources found in {pk.ns} namespace.\n"
    # -o yaml with a server dry run shows the server's defaults, stores nothing
    shown = yaml.safe_load(pk.ok("apply", "-f", str(d / "a.yaml"), "--dry-run=server", "-o", "yaml"))
    assert shown["kind"] == "Deployment" and shown["spec"]["strategy"]["type"] == "RollingUpdate"
    assert pk("get", "deploy").stdout == ""
    assert pk.ok("apply", "-f", str(d)).splitlines() == ["deployment.apps/a created", "deployment.apps/b created"]
    assert pk.ok("apply", "-f", str(d), "-o", "name").splitlines() == ["deployment.apps/a", "deployment.apps/b"]
    (d / "c.yaml").write_text(deployment_yaml("c"))
    assert pk.ok("apply", "-f", str(d), "--dry-run").splitlines() == [  # bare --dry-run: kubectl's "client"
        "deployment.apps/a configured (dry run)", "deployment.apps/b configured (dry run)",
        "deployment.apps/c created (dry run)"]
    assert pk("get", "deploy", "c").exit_code == 1


def test_apply_unknown_kind_continues_and_exits_1(pk: Pk) -> None:
    text = ("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec: {}\n---\n"
            + deployment_yaml("web"))
    f = pk.file("mixed.yaml", text)
    r = pk("apply", "-f", f)
    assert r.exit_code == 1
    assert r.stdout == "deployment.apps/web created\n"
    assert r.stderr == (f'error: resource mapping not found for name: "db" namespace: "" from "{f}": no matches '
                        f'for kind "StatefulSet" in version "apps/v1"\nensure CRDs are installed first\n')


@pytest.mark.parametrize("text,message", [
    (deployment_yaml("web", replicas=-1), 'The Deployment "web" is invalid: spec.replicas: Invalid value: -1: '
                                          "must be greater than or equal to 0"),
    (deployment_yaml("web").replace("  replicas: 1", "  replicas: 1\n  unknownField: 1"),
     'strict decoding error: unknown field "spec.unknownField"'),
    (deployment_yaml("web").replace("  replicas: 1", "  replicas: 1\n  replicas: 2"),
     'mapping key "replicas" already defined at line'),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n", "error parsing"),
    ("metadata: {name: web}\n", "[apiVersion not set, kind not set]"),
])
def test_bad_manifests_change_nothing(pk: Pk, text: str, message: str) -> None:
    # A good document first: a file with a bad one is refused as a whole
    # when it does not parse; a document the server refuses is refused alone.
    r = pk("apply", "-f", "-", input=text)
    assert r.exit_code == 1
    assert message in r.stderr, r.stderr
    assert pk("get", "deploy").stdout == ""


def test_apply_namespace_mismatch(pk: Pk) -> None:
    text = deployment_yaml("web").replace("  name: web", "  name: web\n  namespace: elsewhere")
    r = pk("apply", "-f", "-", input=text)
    assert r.exit_code == 1
    assert (f'the namespace from the provided object "elsewhere" does not match the namespace "{pk.ns}". '
            "You must pass '--namespace=elsewhere' to perform this operation.") in r.stderr


def test_create_then_already_exists(pk: Pk) -> None:
    f = pk.file("web.yaml", deployment_yaml("web"))
    assert pk.ok("create", "-f", f) == "deployment.apps/web created\n"
    r = pk("create", "-f", f)
    assert r.exit_code == 1
    assert r.stderr == (f'Error from server (AlreadyExists): error when creating "{f}": '
                        'deployments.apps "web" already exists\n')


def test_create_from_flags(pk: Pk, cp: ControlPlane) -> None:
    ns = f"{pk.ns}-x"
    assert pk.ok("create", "ns", ns) == f"namespace/{ns} created\n"
    try:
        r = pk("create", "namespace", ns)
        assert (r.exit_code, r.stderr) == (1, f'Error from server (AlreadyExists): namespaces "{ns}" already exists\n')
    finally:
        api(cp, lambda c: c.delete("namespaces", "", ns))
    out = pk.ok("create", "deployment", "web", "--image=pocketkube/hello:1", "--replicas=2", "--port=8080",
                "--dry-run=client", "-o", "yaml")
    d = yaml.safe_load(out)
    assert d["spec"]["replicas"] == 2 and d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert d["spec"]["template"]["spec"]["containers"] == [
        {"name": "hello", "image": "pocketkube/hello:1", "ports": [{"containerPort": 8080}]}]
    assert pk("get", "deploy").stdout == ""  # client dry run: nothing sent
    assert pk.ok("create", "deployment", "web", "--image=pocketkube/hello:1") == "deployment.apps/web created\n"
    assert pk.ok("apply", "-f", "-", input=out) == "deployment.apps/web configured\n"
    r = pk("create")
    assert r.exit_code == 1 and "must specify one of -f and -k" in r.stderr
    r = pk("create", "deployment", "bad_name", "--image=x")
    assert r.exit_code == 1 and r.stderr.startswith('The Deployment "bad_name" is invalid')


# --------------------------------------------------------------------- get


def test_get_names_types_and_errors(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=SEED + "---\n" + deployment_yaml("other"))
    assert pk.ok("get", "deploy", "-o", "name").splitlines() == [
        "deployment.apps/my-web-app-deployment", "deployment.apps/other"]
    t = rows(pk.ok("get", "deployments.apps", "other", "my-web-app-deployment"))
    assert [r[0] for r in t] == ["NAME", "other", "my-web-app-deployment"]
    # several types: one table each, names prefixed with the type
    out = pk.ok("get", "deploy,svc")
    blocks = out.split("\n\n")
    assert len(blocks) == 2
    assert rows(blocks[0])[1][0] == "deployment.apps/my-web-app-deployment"
    assert rows(blocks[1])[1][0] == "service/my-web-app-service"
    assert pk.ok("get", "deploy/other", "svc/my-web-app-service", "-o", "name").splitlines() == [
        "deployment.apps/other", "service/my-web-app-service"]
    # not found: the others still print, exit 1
    r = pk("get", "deploy", "other", "web")
    assert r.exit_code == 1
    assert rows(r.stdout)[1][0] == "other"
    assert r.stderr == 'Error from server (NotFound): deployments.apps "web" not found\n'
    r = pk("get", "deploy", "web", "--ignore-not-found")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    r = pk("get", "foo")
    assert (r.exit_code, r.stderr) == (1, 'error: the server doesn\'t have a resource type "foo"\n')
    r = pk("get", "pods")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", f"No resources found in {pk.ns} namespace.\n")


def test_get_json_yaml_are_kubernetes_shaped(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=SEED)
    one = json.loads(pk.ok("get", "deploy", "my-web-app-deployment", "-o", "json"))
    assert one["apiVersion"] == "apps/v1" and one["kind"] == "Deployment"
    assert one["metadata"]["name"] == "my-web-app-deployment" and one["metadata"]["namespace"] == pk.ns
    assert one["spec"]["replicas"] == 3
    assert one["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert not one.get("status")  # controllers are off: nothing has written a status
    lst = json.loads(pk.ok("get", "deploy,svc", "-o", "json"))
    assert lst["kind"] == "List" and lst["apiVersion"] == "v1"
    assert [i["kind"] for i in lst["items"]] == ["Deployment", "Service"]
    assert json.loads(pk.ok("get", "pods", "-o", "json"))["items"] == []
    y = yaml.safe_load(pk.ok("get", "svc", "my-web-app-service", "-o", "yaml"))
    assert y["kind"] == "Service" and y["spec"]["ports"][0]["targetPort"] == 80
    # Kubernetes' spelling of initialisms, so kubectl's jq/JSONPath carry over
    assert y["spec"]["clusterIP"].startswith("10.96.") and y["spec"]["clusterIPs"] == [y["spec"]["clusterIP"]]
    assert pk.ok("get", "svc", "my-web-app-service", "-o", "jsonpath={.spec.clusterIP}") == y["spec"]["clusterIP"]


def test_get_jsonpath_custom_columns_labels_selectors(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("a", labels="tier: front") + "---\n"
          + deployment_yaml("b", replicas=2, labels="tier: back"))
    assert pk.ok("get", "deploy", "-o", "jsonpath={.items[*].metadata.name}") == "a b"
    assert pk.ok("get", "deploy", "-o",
                 'jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}{"\\n"}{end}') == "a=1\nb=2\n"
    assert pk.ok("get", "deploy", "a", "-o", "jsonpath={.metadata.labels.tier}") == "front"
    assert rows(pk.ok("get", "deploy", "-o", "custom-columns=N:.metadata.name,R:.spec.replicas,X:.nope")) == [
        ["N", "R", "X"], ["a", "1", "<none>"], ["b", "2", "<none>"]]
    assert [r[0] for r in rows(pk.ok("get", "deploy", "-l", "tier=back"))] == ["NAME", "b"]
    assert [r[0] for r in rows(pk.ok("get", "deploy", "-l", "tier in (front,back),tier!=front"))] == ["NAME", "b"]
    assert [r[0] for r in rows(pk.ok("get", "deploy", "--field-selector", "metadata.name=a"))] == ["NAME", "a"]
    t = rows(pk.ok("get", "deploy", "--show-labels", "-L", "tier"))
    assert t[0][-2:] == ["TIER", "LABELS"] and t[1][-2:] == ["front", "tier=front"]
    assert [r[0] for r in rows(pk.ok("get", "deploy", "--sort-by", ".spec.replicas", "--no-headers"))] == ["a", "b"]
    r = pk("get", "deploy", "--sort-by", ".spec.replicaz")
    assert (r.exit_code, r.stdout, r.stderr) == (
        1, "", 'error: couldn\'t find any field with path "{.spec.replicaz}" in the list of objects\n')
    r = pk("get", "deploy", "--sort-by", "{.spec.replicas")
    assert r.exit_code == 1 and "unexpected path string" in r.stderr
    r = pk("get", "deploy", "-l", "a b c")
    assert (r.exit_code, r.stderr) == (
        1, "Error from server (BadRequest): unable to parse requirement: 'a b c': expected KEY, !KEY, KEY=VALUE, "
        "KEY!=VALUE, KEY in (...) or KEY notin (...)\n")
    r = pk("get", "po", "--field-selector", "spec.foo=x")
    assert (r.exit_code, r.stderr) == (1, "Error from server (BadRequest): field label not supported: spec.foo\n")
    wide = rows(pk.ok("get", "deploy", "-o", "wide"))
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1][-3:] == ["web", "hello:1", "app=web"]


def test_get_all_namespaces_and_cluster_scoped(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web"))
    t = rows(pk.ok("get", "deploy", "-A", ns=False))
    assert t[0][:2] == ["NAMESPACE", "NAME"] and [pk.ns, "web"] in [r[:2] for r in t]
    ns = rows(pk.ok("get", "ns"))
    assert ns[0] == ["NAME", "STATUS", "AGE"]
    assert [pk.ns, "Active"] in [r[:2] for r in ns] and ["default", "Active"] in [r[:2] for r in ns]
    assert pk("get", "nodes").stderr in ("No resources found\n", "")


def test_get_pod_statuses(pk: Pk, cp: ControlPlane) -> None:
    async def make(c: ClusterClient) -> None:
        for name, reason, ready in (("crashy", "CrashLoopBackOff", False), ("pully", "ImagePullBackOff", False),
                                    ("fine", "", True)):
            p = core_pb2.Pod()
            p.metadata.name = name
            p.metadata.namespace = pk.ns
            p.spec.containers.add(name="c", image="hello:1")
            p = await c.create(p)
            p.status.phase = "Running" if ready else "Pending"
            cs = p.status.container_statuses.add(name="c", ready=ready, restart_count=0 if ready else 2)
            if reason:
                cs.state.waiting.reason = reason
            else:
                meta.set_timestamp(cs.state.running.started_at)
            p.status.pod_ip = "127.0.0.1"
            await c.update_status(p)

    api(cp, make)
    t = {r[0]: r for r in rows(pk.ok("get", "po", "-o", "wide"))}
    assert t["crashy"][1:4] == ["0/1", "CrashLoopBackOff", "2"]
    assert t["pully"][2] == "ImagePullBackOff"
    assert t["fine"][1:3] == ["1/1", "Running"] and t["fine"][5] == "127.0.0.1"
    assert [r[0] for r in rows(pk.ok("get", "po", "--field-selector", "status.phase=Running"))] == ["NAME", "fine"]


# ------------------------------------------------------------------- watch


class Lines:
    """A subprocess's stdout lines, read by a thread, awaited with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.q.put(line.rstrip("\n"))
            self.q.put(None)

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def wait_for(self, what: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line containing {what!r} within {timeout}s; got {self.seen}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended before a line containing {what!r}; got {self.seen}")
            self.seen.append(line)
            if what in line:
                return line


def pkctl_process(cp: ControlPlane, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PKCTL_CONFIG": "/nonexistent/pk-config", "PYTHONUNBUFFERED": "1"}
    env.pop("PKCTL_SERVER", None)
    return subprocess.Popen([sys.executable, "-m", "cli.main", "--server", cp.address, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_reader_that_goes_away_is_not_an_error(cp: ControlPlane) -> None:
    """`pkctl describe ... | head -1`: stdout's reader closed before pkctl
    writes (here: before it has started): exit 0, nothing on stderr."""
    for args in (["describe", "namespaces"], ["get", "namespaces", "-o", "yaml"]):
        proc = pkctl_process(cp, *args)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert (proc.wait(timeout=30), err) == (0, ""), args


def stop(proc: subprocess.Popen[str], lines: Lines | None) -> tuple[int, str]:
    """SIGINT (Ctrl-C) the process; its exit code and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("pkctl did not exit within 10 s of SIGINT") from None
    finally:
        if lines is not None:
            lines.thread.join(timeout=5)
        assert proc.stdout is not None and proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    return proc.returncode, err


def test_get_watch_prints_changes_made_by_another_client(pk: Pk, cp: ControlPlane) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web", replicas=2))
    proc = pkctl_process(cp, "-n", pk.ns, "get", "deploy", "-w")
    out = Lines(proc)
    try:
        assert out.wait_for("NAME").split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert out.wait_for("web").split()[:2] == ["web", "0/2"]

        async def scale(c: ClusterClient) -> None:
            d = await c.get("deployments", pk.ns, "web")
            d.spec.replicas = 5  # type: ignore[attr-defined]
            await c.update(d)

        api(cp, scale)
        assert out.wait_for("0/5").split()[0] == "web"
        # a new object shows up too, aligned under the header (a longer
        # name than any so far would widen the column, as with kubectl)
        pk.ok("apply", "-f", "-", input=deployment_yaml("w2"))
        line = out.wait_for("w2")
        assert line.index("0/1") == out.seen[0].index("READY")
    finally:
        code, err = stop(proc, out)
    assert code == 130 and "Traceback" not in err, err


def test_get_watch_only_with_events_and_name_output(pk: Pk, cp: ControlPlane) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("old"))
    proc = pkctl_process(cp, "-n", pk.ns, "get", "deploy", "--watch-only", "--output-watch-events")
    out = Lines(proc)
    try:
        # --watch-only prints nothing until something changes: create
        # "ping" objects until one shows, so the watch is known to be open.
        deadline = time.monotonic() + 15
        for i in range(100):
            pk.ok("apply", "-f", "-", input=deployment_yaml(f"ping{i}"))
            try:
                out.wait_for("ping", timeout=0.3)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        pk.ok("delete", "deploy", "old")
        line = out.wait_for("old")
        assert line.split()[:2] == ["DELETED", "old"]
        assert out.seen[0].split()[:2] == ["EVENT", "NAME"]
    finally:
        code, err = stop(proc, out)
    assert code == 130 and "Traceback" not in err, err


def test_get_watch_ends_at_request_timeout(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web"))
    start = time.monotonic()
    r = pk("get", "deploy", "web", "-w", "--request-timeout", "1s", "-o", "name")
    assert r.exit_code == 0 and r.stdout == "deployment.apps/web\n"
    assert time.monotonic() - start < 5
    r = pk("get", "deploy,svc", "-w")
    assert (r.exit_code, r.stderr) == (1, "error: you may only specify a single resource type\n")


# ---------------------------------------------------------------- describe


def test_describe_deployment_service_namespace_with_events(pk: Pk, cp: ControlPlane) -> None:
    pk.ok("apply", "-f", "-", input=SEED)

    async def event(c: ClusterClient) -> None:
        d = await c.get("deployments", pk.ns, "my-web-app-deployment")
        e = core_pb2.Event()
        e.metadata.name = "my-web-app-deployment.1"
        e.metadata.namespace = pk.ns
        e.involved_object.kind = "Deployment"
        e.involved_object.name = "my-web-app-deployment"
        e.involved_object.namespace = pk.ns
        e.involved_object.uid = d.metadata.uid  # type: ignore[attr-defined]
        e.involved_object.api_version = "apps/v1"
        e.reason = "ScalingReplicaSet"
        e.message = "Scaled up replica set my-web-app-deployment-abc to 3"
        e.type = "Normal"
        e.count = 1
        e.source.component = "deployment-controller"
        meta.set_timestamp(e.first_timestamp)
        meta.set_timestamp(e.last_timestamp)
        await c.create(e)

    api(cp, event)
    out = pk.ok("describe", "deploy", "my-web-app-deployment")
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "my-web-app-deployment"]
    assert lines[1].split() == ["Namespace:", pk.ns]
    assert "Replicas:               3 desired | 0 updated | 0 total | 0 available | 0 unavailable" in out
    assert "StrategyType:           RollingUpdate" in out
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in out
    assert "Image:        nginx:latest" in out
    ev = lines[lines.index("Events:") + 1:]
    assert ev[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert ev[2].split()[:2] == ["Normal", "ScalingReplicaSet"]
    assert ev[2].endswith("deployment-controller  Scaled up replica set my-web-app-deployment-abc to 3")
    svc = pk.ok("describe", "svc/my-web-app-service")
    assert "Selector:                 app=my-web-app" in svc
    assert "TargetPort:               80/TCP" in svc
    assert "Endpoints:                <none>" in svc
    assert svc.rstrip().endswith("Events:                   <none>")
    # pkctl events: time order, --for, --types
    ev = rows(pk.ok("events", "--for", "deploy/my-web-app-deployment"))
    assert ev[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert ev[1][1:4] == ["Normal", "ScalingReplicaSet", "deployment/my-web-app-deployment"]
    r = pk("events", "--types", "Warning")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", f"No events found in {pk.ns} namespace.\n")
    r = pk("events", "--for", "svc/my-web-app-service")
    assert (r.exit_code, r.stdout) == (0, "")
    # name prefixes match as kubectl's describe does
    assert pk.ok("describe", "deploy", "my-web").startswith("Name:")
    r = pk("describe", "deploy", "nope")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')
    assert pk.ok("describe", "ns", pk.ns, ns=False).splitlines()[0].split() == ["Name:", pk.ns]


# ------------------------------------------------------------------ delete


def test_delete_forms(pk: Pk) -> None:
    f = pk.file("all.yaml", "\n---\n".join(deployment_yaml(n) for n in ("a", "b", "c", "d", "e")))
    pk.ok("apply", "-f", f)
    assert pk.ok("delete", "deploy", "a") == 'deployment.apps "a" deleted\n'
    # Foreground and orphan: the object stays (deletionTimestamp set, a
    # finalizer) until the garbage collector, off here, has done its part.
    assert pk.ok("delete", "deploy/b", "deploy/c", "--cascade=foreground", "--wait=false") == (
        'deployment.apps "b" deleted\ndeployment.apps "c" deleted\n')
    assert pk.ok("get", "deploy", "c", "-o", "jsonpath={.metadata.deletionTimestamp}") != ""
    r = pk("delete", "deploy", "c", "--cascade=orphan", "--timeout=0.3s")
    assert r.exit_code == 1 and r.stdout == 'deployment.apps "c" deleted\n'
    assert r.stderr == "error: timed out waiting for the condition on deployments/c\n"
    r = pk("delete", "deploy", "a", "d")
    assert r.exit_code == 1
    assert r.stdout == 'deployment.apps "d" deleted\n'
    assert r.stderr == 'Error from server (NotFound): deployments.apps "a" not found\n'
    assert pk("delete", "deploy", "a", "--ignore-not-found").exit_code == 0
    assert pk.ok("delete", "deploy", "e", "--dry-run=server") == 'deployment.apps "e" deleted (server dry run)\n'
    assert pk.ok("get", "deploy", "-o", "name") == "deployment.apps/b\ndeployment.apps/c\ndeployment.apps/e\n"
    r = pk("delete", "-f", f, "--timeout=0.5s")
    assert r.exit_code == 1
    assert r.stdout == 'deployment.apps "b" deleted\ndeployment.apps "c" deleted\ndeployment.apps "e" deleted\n'
    assert r.stderr.count("NotFound") == 2 and r.stderr.count("timed out") == 2


def test_delete_by_selector_and_all(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("f1", labels="tier: front") + "---\n"
          + deployment_yaml("f2", labels="tier: front") + "---\n" + deployment_yaml("b1", labels="tier: back")
          + "---\n" + SEED.split("---\n")[1])
    assert pk.ok("delete", "deploy", "-l", "tier=front", "--wait=false").splitlines() == [
        'deployment.apps "f1" deleted', 'deployment.apps "f2" deleted']
    assert pk.ok("delete", "deploy,svc", "--all").splitlines() == [
        'deployment.apps "b1" deleted', 'service "my-web-app-service" deleted']
    r = pk("delete", "deploy", "--all")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "No resources found\n")


def test_delete_pod_with_grace_waits_and_force_does_not(pk: Pk, cp: ControlPlane) -> None:
    async def make(c: ClusterClient) -> None:
        for name in ("p1", "p2"):
            p = core_pb2.Pod()
            p.metadata.name = name
            p.metadata.namespace = pk.ns
            p.spec.node_name = "no-such-node"  # bound: only its (absent) agent may confirm a graceful delete
            p.spec.containers.add(name="c", image="hello:1")
            await c.create(p)

    api(cp, make)
    r = pk("delete", "pod", "p1", "--timeout", "1s")
    assert r.exit_code == 1 and r.stdout == 'pod "p1" deleted\n'
    assert "error: timed out waiting for the condition on pods/p1" in r.stderr
    assert "Terminating" in pk.ok("get", "pod", "p1")
    r = pk("delete", "pod", "p1", "p2", "--force", "--grace-period=0")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == 'pod "p1" force deleted\npod "p2" force deleted\n'
    assert r.stderr.startswith("Warning: Immediate deletion does not wait for confirmation")
    assert pk("get", "pods").stderr == f"No resources found in {pk.ns} namespace.\n"


# -------------------------------------------------------------------- edit


def test_edit(pk: Pk, monkeypatch: pytest.MonkeyPatch) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web", replicas=3))
    monkeypatch.setenv("KUBE_EDITOR", "sed -i s/replicas:\\ 3/replicas:\\ 5/")
    assert pk.ok("edit", "deploy", "web") == "deployment.apps/web edited\n"
    assert pk.ok("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}") == "5"
    monkeypatch.setenv("KUBE_EDITOR", "true")
    assert pk.ok("edit", "deploy/web") == "Edit cancelled, no changes made.\n"
    monkeypatch.setenv("KUBE_EDITOR", "sed -i s/replicas:\\ 5/replicas:\\ -1/")
    r = pk("edit", "deploy", "web")
    assert r.exit_code == 1
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in r.stderr
    kept = r.stderr.split('A copy of your changes has been stored to "')[1].split('"')[0]
    try:
        assert "replicas: -1" in Path(kept).read_text()
    finally:
        os.unlink(kept)
    assert pk.ok("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}") == "5"


# ------------------------------------------------------------ label, annotate


def test_label_and_annotate(pk: Pk) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("a") + "---\n" + deployment_yaml("b"))
    assert pk.ok("label", "deploy", "a", "tier=front") == "deployment.apps/a labeled\n"
    r = pk("label", "deploy/a", "tier=back")
    assert (r.exit_code, r.stderr) == (1, "error: 'tier' already has a value (front), and --overwrite is false\n")
    assert pk.ok("label", "deploy/a", "tier=back", "--overwrite") == "deployment.apps/a labeled\n"
    assert pk.ok("label", "deploy/a", "tier=back") == "deployment.apps/a not labeled\n"
    assert pk.ok("label", "deploy", "--all", "canary=yes").splitlines() == [
        "deployment.apps/a labeled", "deployment.apps/b labeled"]
    assert [r[0] for r in rows(pk.ok("get", "deploy", "-l", "tier=back,canary=yes"))] == ["NAME", "a"]
    assert pk.ok("label", "deploy", "-l", "canary=yes", "canary-").splitlines() == [
        "deployment.apps/a labeled", "deployment.apps/b labeled"]
    assert pk.ok("annotate", "deploy", "b", "note=on call: ana") == "deployment.apps/b annotated\n"
    assert pk.ok("get", "deploy", "b", "-o", "jsonpath={.metadata.annotations.note}") == "on call: ana"
    r = pk("label", "deploy", "nope", "a=b")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')
    # labels only change metadata: the generation (spec changes) stays
    assert pk.ok("get", "deploy", "a", "-o", "jsonpath={.metadata.generation}") == "1"


# -------------------------------------------------------------------- wait


def test_wait_for_condition_jsonpath_and_delete(pk: Pk, cp: ControlPlane) -> None:
    pk.ok("apply", "-f", "-", input=deployment_yaml("web"))

    async def available(c: ClusterClient) -> None:
        d = await c.get("deployments", pk.ns, "web")
        d.status.conditions.add(type="Available", status="True", reason="MinimumReplicasAvailable")  # type: ignore[attr-defined]
        d.status.ready_replicas = 1  # type: ignore[attr-defined]
        await c.update_status(d)

    # Another client makes the deployment Available half a second into the wait.
    timer = threading.Timer(0.5, lambda: api(cp, available))
    timer.start()
    try:
        start = time.monotonic()
        assert pk.ok("wait", "--for=condition=Available", "deploy/web", "--timeout=20s") == (
            "deployment.apps/web condition met\n")
        assert time.monotonic() - start < 10
    finally:
        timer.join()
    assert pk.ok("wait", "--for=jsonpath={.status.readyReplicas}=1", "deploy", "--all") == (
        "deployment.apps/web condition met\n")
    r = pk("wait", "--for=condition=Available=False", "deploy/web", "--timeout=0.3s")
    assert (r.exit_code, r.stderr) == (1, "error: timed out waiting for the condition on deployments/web\n")
    r = pk("wait", "--for=condition=Ready", "pod/nope")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): pods "nope" not found\n')
    # --for=delete: an object deleted during the wait is reported; one that
    # is already gone is nothing to wait for (kubectl: no output, exit 0).
    async def delete(c: ClusterClient) -> None:
        await c.delete("deployments", pk.ns, "web")

    timer = threading.Timer(0.5, lambda: api(cp, delete))
    timer.start()
    try:
        assert pk.ok("wait", "--for=delete", "deploy/web", "--timeout=20s") == "deployment.apps/web condition met\n"
    finally:
        timer.join()
    assert pk.ok("wait", "--for=delete", "deploy/web") == ""
    assert pk.ok("wait", "--for=delete", "deploy", "-l", "app=nothing-has-this") == ""
    r = pk("wait", "--for=sometime", "deploy/web")
    assert (r.exit_code, r.stderr) == (1, 'error: unrecognized condition: "sometime"\n')


# ------------------------------------------------------------ misc verbs


def test_version_cluster_info_and_errors_of_logs_exec(pk: Pk) -> None:
    info = pk.ok("cluster-info").splitlines()
    assert info[0] == f"PocketKube control plane is running at {pk.cp.address}"
    assert info[1].startswith("Server version: v")
    out = pk.ok("version")
    assert out.startswith("Client Version: v") and "\nServer Version: v" in out
    v = json.loads(pk.ok("version", "-o", "json"))
    assert v["serverVersion"]["gitVersion"].startswith("v")
    r = pk("logs", "nope")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): pods "nope" not found\n')
    r = pk("exec", "deploy/nope", "--", "true")
    assert (r.exit_code, r.stderr) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')
    pk.ok("apply", "-f", "-", input=deployment_yaml("web"))
    r = pk("logs", "deploy/web")
    assert r.exit_code == 1 and "no pods of deployment.apps/web" in r.stderr


def test_request_against_stopped_server_is_a_clean_error(pk: Pk) -> None:
    r = pk.runner.invoke(cli, ["--server", "127.0.0.1:1", "get", "pods"], prog_name="pkctl",
                         env={"PKCTL_CONFIG": str(pk.tmp / "none")})
    assert r.exit_code == 1
    assert r.stderr.startswith("error: cannot reach the control plane at 127.0.0.1:1: connection refused")


# ------------------------------------------------------ bad-input corpus

CORPUS = Path(REPO) / "tests" / "data" / "bad"


def corpus() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".json")) if CORPUS.is_dir() else []


def corpus_header(path: Path) -> list[str]:
    src = path.with_suffix(".expect") if path.suffix == ".json" else path
    return [line for line in src.read_text().splitlines() if line.startswith("#")]


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.stem)
def test_bad_input_corpus_through_pkctl(pk: Pk, path: Path) -> None:
    """Every manifest of the bad-input corpus, through `pkctl apply -f` (or
    create) against the real server: exit 1, the expected message(s) on
    stderr, no traceback, nothing written."""
    head = corpus_header(path)
    want = [line.split(":", 1)[1].strip().replace("\\n", "\n") for line in head if line.startswith("# expect:")]
    verb = next((line.split(":", 1)[1].split()[0] for line in head if line.startswith("# verb:")), "apply")
    target = str(path)
    if any(line.startswith("# update:") for line in head):
        first, second = path.read_text().split("\n---\n", 1)
        pk.ok("apply", "-f", "-", input=first)
        target = pk.file("second" + path.suffix, second)
    before = pk.ok("get", "all", "-o", "json")
    r = pk(verb, "-f", target)
    assert r.exit_code == 1, f"{path.name} was accepted:\n{r.stdout}"
    for w in want:
        assert w in r.stderr, f"{path.name}: expected {w!r} in:\n{r.stderr}"
    after = pk.ok("get", "all", "-o", "json")
    assert after == before, f"{path.name}: a refused manifest changed something"
