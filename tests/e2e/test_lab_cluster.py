"""End to end, on ONE real 3-node lab (tests/fixtures/lab.py: etcd,
pk-controlplane, and per node a network namespace with its own dockerd and
pk-agent) shared by the tests of this module, in order: the seed's
manifests; the Service every way (curl from a pod by name); a missing image;
a hard node kill under load; the node's return; a rolling update and a
rollback under load; an update to a missing image, stalled, then undone; the control plane
killed and restarted; a partition; an agent killed (containers left
running); and last `pkctl lab down`, which must
leave nothing behind.

Each test leaves the cluster as the next one expects it (3 Ready replicas,
every node Ready), so they run in file order; a failure says what was
awaited and what was seen. Request loops only ever target the lab's own
addresses (the node IPs on its private bridge).
"""

from __future__ import annotations

import http.client
import ipaddress
import time
from collections import Counter
from pathlib import Path
from typing import Any

import docker
import pytest

from cli.lab import engine, mounts, net, procs
from cli.lab import lab as labmod
from tests.fixtures.lab import LabHandle, RequestLoop, pod_ready, wait

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
WEB = str(ROOT / "examples" / "web.yaml")
WEB_V2 = str(ROOT / "examples" / "web-v2.yaml")
DEPLOY = "my-web-app-deployment"
SVC = "my-web-app-service"
SELECTOR = "app=my-web-app"
NODEPORT_SVC = """
apiVersion: v1
kind: Service
metadata:
  name: web-nodeport
spec:
  type: NodePort
  selector:
    app: my-web-app
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web-lb
spec:
  type: LoadBalancer
  selector:
    app: my-web-app
  ports:
  - port: 8080
    targetPort: 80
"""
# lab preset: node grace 4 s + unreachable toleration 0 s, plus 10 s
FAILOVER_DEADLINE = 4 + 0 + 10
STATE: dict[str, Any] = {}


# ---------------------------------------------------------------- helpers


def ready_pods(lab: LabHandle) -> list[Any]:
    return [p for p in lab.pods(SELECTOR) if pod_ready(p)]


def live_pods(lab: LabHandle) -> list[Any]:
    return [p for p in lab.pods(SELECTOR) if not p.metadata.HasField("deletion_timestamp")]


def by_node(pods: list[Any]) -> Counter[str]:
    return Counter(p.spec.node_name for p in pods)


def service(lab: LabHandle, name: str) -> Any:
    async def f(c: Any) -> Any:
        return await c.get("services", "default", name)
    return lab.api(f)


def deployment(lab: LabHandle) -> Any:
    async def f(c: Any) -> Any:
        return await c.get("deployments", "default", DEPLOY)
    return lab.api(f)


def lb_address(lab: LabHandle) -> str:
    ingress = service(lab, "web-lb").status.load_balancer.ingress
    return ingress[0].ip if ingress else ""


def node_port(lab: LabHandle) -> int:
    return int(service(lab, "web-nodeport").spec.ports[0].node_port)


def http_get(host: str, port: int, timeout: float = 3.0) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200, f"GET http://{host}:{port}/ -> {resp.status}"
        return resp.read().decode().strip()
    finally:
        conn.close()


def engine_containers(lab: LabHandle, node: str) -> list[Any]:
    """Running pod containers in the node's own Docker Engine."""
    c = docker.DockerClient(base_url=lab.plan.node(node).docker_host, timeout=10)
    try:
        return [x for x in c.containers.list(filters={"label": "io.pocketkube.pod.namespace=default"})]
    finally:
        c.close()


def all_pod_containers(lab: LabHandle, nodes: list[str] | None = None) -> Counter[str]:
    """pod name -> running containers across the given nodes' engines."""
    out: Counter[str] = Counter()
    for n in nodes or [x.name for x in lab.plan.nodes]:
        for c in engine_containers(lab, n):
            out[c.labels.get("io.pocketkube.pod.name", "?")] += 1
    return out


def start_loop(lab: LabHandle, node: str, max_seconds: float = 60) -> RequestLoop:
    """A 20/s request loop through node's NodePort, once it answers (a node
    just back may be Ready before its proxy listens)."""
    port = node_port(lab)
    wait(f"{node}'s NodePort {port} to answer", lambda: http_get(lab.node_ip(node), port), 20)
    return RequestLoop(lab.node_ip(node), port, rate=20, max_seconds=max_seconds).start()


def rollout_complete(lab: LabHandle, image: str) -> bool:
    d = deployment(lab)
    st = d.status
    if st.observed_generation < d.metadata.generation:
        return False
    if not (st.updated_replicas == st.replicas == st.available_replicas == st.ready_replicas == d.spec.replicas):
        return False
    pods = live_pods(lab)
    return len(pods) == d.spec.replicas and all(
        pod_ready(p) and p.spec.containers[0].image == image for p in pods
    )


def three_ready_everywhere(lab: LabHandle) -> bool:
    ready = ready_pods(lab)
    return len(ready) == 3 and len(live_pods(lab)) == 3 and set(lab.node_ready().values()) == {"True"}


# ------------------------------------------------------------------ tests


def test_seed_manifests_run_three_ready_pods_on_two_nodes_or_more(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    assert lab.node_ready() == {"node-1": "True", "node-2": "True", "node-3": "True"}
    out = lab.pkctl("apply", "-f", WEB).stdout
    assert "deployment.apps/my-web-app-deployment created" in out and "service/my-web-app-service created" in out
    lab.pkctl("apply", "-f", "-", input=NODEPORT_SVC)
    pods = wait("3 Running+Ready pods of my-web-app", lambda: (lambda r: r if len(r) == 3 else None)(ready_pods(lab)), 60)
    assert len(by_node(pods)) >= 2, f"pods all on one node: {by_node(pods)}"
    r = lab.pkctl("rollout", "status", f"deployment/{DEPLOY}", "--timeout", "30s")
    assert "successfully rolled out" in r.stdout


def test_service_answers_by_nodeport_clusterip_and_dns(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    names = {p.metadata.name for p in ready_pods(lab)}
    port = node_port(lab)
    # NodePort from the host, through every node
    seen = set()
    for n in lab.plan.nodes:
        for _ in range(3):
            body = wait(f"an answer on {n.ip}:{port}", lambda n=n: http_get(n.ip, port), 10)
            assert body in names, f"{body!r} is not one of the pods {names}"
            seen.add(body)
    assert len(seen) >= 2, f"NodePort answers came from one replica only: {seen}"
    # the LoadBalancer address (from the lab's pool, held by one node) from the host and from a node
    lb = wait("web-lb's LoadBalancer address", lambda: lb_address(lab), 15)
    assert ipaddress.ip_address(lb) in ipaddress.ip_network(lab.plan.lb_cidrs[0]), lb
    assert wait(f"an answer on {lb}:8080", lambda: http_get(lb, 8080), 10) in names
    assert lab.exec("node-1", "curl", "-s", "-m", "3", f"http://{lb}:8080/").stdout.strip() in names
    # ClusterIP from inside a node
    cip = service(lab, SVC).spec.cluster_ip
    body = lab.exec("node-2", "curl", "-s", "-m", "3", f"http://{cip}/").stdout.strip()
    assert body in names
    # the DNS name, resolved by the node's cluster DNS, from inside a node
    fqdn = f"{SVC}.default.svc.cluster.local"
    node3 = lab.plan.node("node-3")
    out = lab.exec("node-3", "busybox", "nslookup", fqdn, node3.ip).stdout
    assert cip in out, f"nslookup {fqdn} on node-3 gave:\n{out}"
    assert lab.exec("node-3", "curl", "-s", "-m", "3", f"http://{cip}/").stdout.strip() in names
    # from inside a pod, with curl: by short name (search path), full name and ClusterIP;
    # the replicas answer, and the seed's nginx:latest is nginx
    pod = sorted(names)[0]
    for target in (SVC, fqdn, cip):
        seen = set()
        for _ in range(6):
            r = lab.pkctl("exec", pod, "--", "curl", "-sS", "-m", "3", f"http://{target}/", check=False)
            assert r.returncode == 0 and r.stdout.strip() in names, f"from pod {pod} to {target}: {r.stdout!r} {r.stderr!r}"
            seen.add(r.stdout.strip())
        assert seen, target
    r = lab.pkctl("exec", pod, "--", "curl", "-sSI", "-m", "3", f"http://{SVC}/")
    assert "Server: nginx/" in r.stdout, r.stdout


def test_missing_image_fails_fast_then_backs_off_with_kubernetes_events(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    pod = """
apiVersion: v1
kind: Pod
metadata: {name: missing-image}
spec:
  containers:
  - {name: web, image: "nginx:1.23"}
"""
    lab.pkctl("apply", "-f", "-", input=pod)
    try:
        def status() -> str | None:
            r = lab.pkctl("get", "pod", "missing-image", "--no-headers", check=False)
            cols = r.stdout.split()
            return cols[2] if len(cols) > 2 and cols[2] in ("ErrImagePull", "ImagePullBackOff") else None
        assert wait("missing-image to show ErrImagePull or ImagePullBackOff", status, 20)
        wait("missing-image in ImagePullBackOff", lambda: status() == "ImagePullBackOff", 30, 0.25)
        ev = lab.pkctl("describe", "pod", "missing-image").stdout
        for want in ('Pulling image "nginx:1.23"', 'Failed to pull image "nginx:1.23": ',
                     "Error: ErrImagePull", 'Back-off pulling image "nginx:1.23"'):
            assert want in ev, f"{want!r} not in:\n{ev}"
        assert "not found" in ev, ev
    finally:
        lab.pkctl("delete", "pod", "missing-image", "--grace-period", "0", check=False)


def test_failover_hard_kill_under_load_loses_no_request(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    counts = by_node(ready_pods(lab))
    victim = max(sorted(counts), key=lambda n: counts[n])
    survivor = next(n.name for n in lab.plan.nodes if n.name != victim)
    STATE["victim"] = victim
    loop = start_loop(lab, survivor)
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        lab.lab("kill-node", victim, "--hard")

        def replaced() -> bool:
            r = ready_pods(lab)
            return len(r) == 3 and victim not in by_node(r)

        wait(f"3 Ready replicas off {victim} after its hard kill", replaced, FAILOVER_DEADLINE + 5)
        took = time.monotonic() - t0
        wait(f"{victim} NotReady", lambda: lab.node_ready().get(victim) != "True", 5)
        # the LoadBalancer address answers again (moved if the victim held it)
        lb = lb_address(lab)
        wait(f"the LoadBalancer address {lb} to answer", lambda: http_get(lb, 8080, timeout=1), 10)
        time.sleep(1.0)
    finally:
        loop.stop()
    assert took <= FAILOVER_DEADLINE, f"replicas Ready again after {took:.1f} s (> {FAILOVER_DEADLINE} s)"
    assert loop.ok > 0 and loop.failed == 0, f"request loop through {survivor}: {loop.report()}"


def test_killed_node_returns_with_its_stale_containers_removed(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    victim = STATE.get("victim") or pytest.skip("needs the failover test's killed node")
    lab.lab("start-node", victim)
    wait(f"{victim} Ready again", lambda: lab.node_ready().get(victim) == "True", 20)
    bound_there = {p.metadata.name for p in live_pods(lab) if p.spec.node_name == victim}
    wait(f"{victim}'s engine to run only pods bound to it ({sorted(bound_there)})",
         lambda: set(all_pod_containers(lab, [victim])) <= bound_there, 20)
    pods = live_pods(lab)
    assert len(pods) == 3 and len(ready_pods(lab)) == 3
    running = all_pod_containers(lab)
    assert sorted(running) == sorted(p.metadata.name for p in pods), f"containers {running} vs pods"
    assert max(running.values()) == 1, f"duplicate containers: {running}"


def test_rolling_update_and_rollback_under_load_lose_no_request(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    wait("3 Ready replicas, every node Ready", lambda: three_ready_everywhere(lab), 20)
    loop = start_loop(lab, "node-1", max_seconds=90)
    try:
        time.sleep(0.5)
        assert "configured" in lab.pkctl("apply", "-f", WEB_V2).stdout
        wait("the rollout to pocketkube/hello:2", lambda: rollout_complete(lab, "pocketkube/hello:2"), 60, 0.25)
        answers = [http_get(lab.node_ip("node-2"), node_port(lab)) for _ in range(6)]
        assert all(a.startswith("v2 ") for a in answers), answers
        lab.pkctl("rollout", "undo", f"deployment/{DEPLOY}")
        wait("the rollback to nginx:latest", lambda: rollout_complete(lab, "nginx:latest"), 60, 0.25)
        answers = [http_get(lab.node_ip("node-3"), node_port(lab)) for _ in range(6)]
        assert not any(a.startswith("v2 ") for a in answers), answers
        time.sleep(0.5)
    finally:
        loop.stop()
    assert loop.ok > 0 and loop.failed == 0, f"request loop during update and rollback: {loop.report()}"


def test_update_to_a_missing_image_stalls_and_undo_brings_it_back_under_load(lab_cluster: LabHandle) -> None:
    """The seed's update story: nginx:1.23 does not exist (the lab registry
    lacks it), so the rollout stalls within maxUnavailable (0 of 3: the old
    pods keep serving), `rollout status --timeout` fails as kubectl does,
    the progress deadline marks ProgressDeadlineExceeded, and undo restores."""
    lab = lab_cluster
    dep = f"deployment/{DEPLOY}"
    wait("3 Ready replicas, every node Ready", lambda: three_ready_everywhere(lab), 20)
    lab.pkctl("patch", dep, "-p", '{"spec":{"progressDeadlineSeconds":15}}')
    loop = start_loop(lab, "node-1", max_seconds=120)
    try:
        time.sleep(0.5)
        out = lab.pkctl("set", "image", dep, "my-web-app-container=nginx:1.23").stdout
        assert "image updated" in out, out
        r = lab.pkctl("rollout", "status", dep, "--timeout", "5s", check=False)
        assert r.returncode == 1 and "error: timed out waiting for the condition" in r.stderr, r.stdout + r.stderr
        new = wait("a new pod failing to pull nginx:1.23", lambda: [
            p for p in live_pods(lab) if p.spec.containers[0].image == "nginx:1.23"
            and any(cs.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff") for cs in p.status.container_statuses)
        ], 30)
        get = lab.pkctl("get", "pods", "-l", SELECTOR, "--no-headers").stdout
        assert new[0].metadata.name in get and ("ImagePullBackOff" in get or "ErrImagePull" in get), get
        # the old pods keep serving: maxUnavailable 25% of 3 is 0
        old_ready = [p for p in ready_pods(lab) if p.spec.containers[0].image == "nginx:latest"]
        assert len(old_ready) == 3, [p.metadata.name for p in old_ready]

        def deadline_exceeded() -> bool:
            conds = {c.type: c for c in deployment(lab).status.conditions}
            prog = conds.get("Progressing")
            return prog is not None and prog.status == "False" and prog.reason == "ProgressDeadlineExceeded"
        wait("Progressing=False ProgressDeadlineExceeded", deadline_exceeded, 60, 0.5)
        r = lab.pkctl("rollout", "status", dep, "--timeout", "5s", check=False)
        assert r.returncode == 1 and f'deployment "{DEPLOY}" exceeded its progress deadline' in r.stderr, r.stderr
        lab.pkctl("rollout", "undo", dep)
        wait("the undo back to nginx:latest", lambda: rollout_complete(lab, "nginx:latest"), 60, 0.25)
        r = lab.pkctl("rollout", "status", dep, "--timeout", "30s")
        assert "successfully rolled out" in r.stdout
        time.sleep(0.5)
    finally:
        loop.stop()
        lab.pkctl("patch", dep, "-p", '{"spec":{"progressDeadlineSeconds":600}}', check=False)
    assert loop.ok > 0 and loop.failed == 0, f"request loop during the bad update and the undo: {loop.report()}"


def test_control_plane_killed_and_restarted_loses_nothing(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    plan = lab.plan

    async def snapshot(c: Any) -> dict[str, set[tuple[str, str]]]:
        out = {}
        for res in ("deployments", "replicasets", "pods", "services", "endpoints", "nodes"):
            items, _ = await c.list(res, "" if res == "nodes" else "default")
            out[res] = {(o.metadata.name, o.metadata.uid) for o in items}
        return out

    before = lab.api(snapshot)
    containers_before = {c.id for n in plan.nodes for c in engine_containers(lab, n.name)}
    loop = start_loop(lab, "node-2")
    try:
        assert procs.stop(labmod.controlplane_pidfile(plan), hard=True), "the control plane was not running"
        time.sleep(2.0)  # the cluster runs on without it: proxies keep their endpoints
        r = lab.lab("up")
        assert "resuming" in r.stdout, r.stdout
        wait("the API to answer again", lambda: lab.api(snapshot), 20)
        after = lab.api(snapshot)
    finally:
        loop.stop()
    assert after == before, f"objects changed across the restart: before {before}\nafter {after}"
    containers_after = {c.id for n in plan.nodes for c in engine_containers(lab, n.name)}
    assert containers_after == containers_before, "pod containers were replaced across a control plane restart"
    assert loop.failed == 0, f"requests while the control plane was down: {loop.report()}"
    # it converges: a change made after the restart is carried out
    lab.pkctl("scale", f"deployment/{DEPLOY}", "--replicas", "4")
    wait("4 Ready replicas after scaling up", lambda: len(ready_pods(lab)) == 4 and len(live_pods(lab)) == 4, 30)
    lab.pkctl("scale", f"deployment/{DEPLOY}", "--replicas", "3")
    wait("3 Ready replicas after scaling back", lambda: three_ready_everywhere(lab), 30)


def test_partitioned_node_is_replaced_then_heals_without_duplicates(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    counts = by_node(ready_pods(lab))
    node = max(sorted(counts), key=lambda n: counts[n])
    lab.lab("partition", node)
    try:
        wait(f"{node} NotReady", lambda: lab.node_ready().get(node) not in (None, "True"), 15)

        def replaced() -> bool:
            r = ready_pods(lab)
            return len(r) == 3 and node not in by_node(r)

        wait(f"3 Ready replicas off the partitioned {node}", replaced, FAILOVER_DEADLINE)
    finally:
        lab.lab("heal", node)
    wait(f"{node} Ready after healing", lambda: lab.node_ready().get(node) == "True", 20)
    wait(f"{node}'s old containers removed",
         lambda: set(all_pod_containers(lab, [node])) <= {p.metadata.name for p in live_pods(lab)
                                                          if p.spec.node_name == node}, 20)
    wait("exactly 3 pods and 3 containers", lambda: three_ready_everywhere(lab) and
         sum(all_pod_containers(lab).values()) == 3, 20)
    running = all_pod_containers(lab)
    assert max(running.values()) == 1 and len(running) == 3, f"duplicates after healing: {running}"


def test_killed_agent_leaves_containers_running_until_it_returns(lab_cluster: LabHandle) -> None:
    """`kill-node` without --hard: the agent dies as a kubelet may, its
    containers keep running; the node is NotReady and its pods are replaced;
    when the agent is back it removes the now foreign containers."""
    lab = lab_cluster
    counts = by_node(ready_pods(lab))
    node = max(sorted(counts), key=lambda n: counts[n])
    before = set(all_pod_containers(lab, [node]))
    assert before, f"no containers on {node}"
    lab.lab("kill-node", node)
    assert labmod.agent_pidfile(lab.plan.node(node)) and not procs.alive(labmod.agent_pidfile(lab.plan.node(node)))
    wait(f"{node} NotReady", lambda: lab.node_ready().get(node) not in (None, "True"), 15)
    assert set(all_pod_containers(lab, [node])) == before, "containers died with the agent"
    wait(f"3 Ready replicas off {node}", lambda: len(ready_pods(lab)) == 3 and node not in by_node(ready_pods(lab)),
         FAILOVER_DEADLINE)
    lab.lab("start-node", node)
    wait(f"{node} Ready again", lambda: lab.node_ready().get(node) == "True", 20)
    wait(f"{node}'s replaced containers removed", lambda: not (set(all_pod_containers(lab, [node])) & before), 20)
    wait("exactly 3 pods and 3 containers", lambda: three_ready_everywhere(lab) and
         sum(all_pod_containers(lab).values()) == 3, 20)


def test_lab_down_leaves_nothing_behind(lab_cluster: LabHandle) -> None:
    lab = lab_cluster
    plan = lab.plan
    outside = labmod.agent_files_outside(plan)  # the agents' proxy lock files, if any
    r = lab.lab("down", check=False)
    assert r.returncode == 0, f"pkctl lab down: {r.stdout}{r.stderr}"
    assert not [f for f in outside if Path(f).exists()], f"left behind: {outside}"
    assert net.leftovers(plan) == []
    assert labmod.stray_processes(plan) == []
    for pidfile in [labmod.etcd_pidfile(plan), labmod.controlplane_pidfile(plan)] + [
        f for n in plan.nodes for f in (labmod.agent_pidfile(n), engine.dockerd_pidfile(n))
    ]:
        assert not Path(pidfile).exists()
    assert mounts.mounts_under(plan.state_dir) == [] and mounts.mounts_under(plan.run_dir) == []
    assert not Path(plan.state_dir).exists() and not Path(plan.run_dir).exists()
    assert not Path(lab.env["PKCTL_CONFIG"]).exists(), "the lab's pkctl config was left behind"
    again = lab.lab("down")
    assert "nothing to remove" in again.stdout
