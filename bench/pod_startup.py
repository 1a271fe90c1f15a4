"""Pod startup latency: `apply` of a pod -> Ready, on one real node.

Brings up a real etcd, pk-controlplane (controllers and scheduler on) and one
pk-agent on the local Docker Engine, then, per run, applies N pods (image
present: pocketkube/hello:1, one containerPort, no probes) and times each from
the apply to the moment a watch sees Ready=True: one after another through
the Apply RPC, one after another through `pkctl apply -f -` (a process each,
so Python start-up is included), and all N at once. The baseline, measured
in the same run, is the engine alone: `docker run -d -p` of the same image
until its port answers HTTP, one after another and N at once.

    .venv/bin/python bench/pod_startup.py [--pods 30] [--runs 3]

Prints p50/p99 per run, the medians over runs and the ratio to the baseline.
Target: p99 <= 2 s (Kubernetes' SLO is 5 s).

Per run and mode it also prints the slowest pod's timeline (seconds since
the apply began): pkctl exited / Apply RPC returned, the watch sees the pod
(stored), bound (spec.nodeName), docker create and start (engine events),
the agent's first status write, Ready. With 30 pods p99 is the slowest pod,
so this says where the p99 goes. The timeline is observed from outside
(watch and engine events); it does not change what is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid

import docker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from controlplane.etcdproc import EtcdProcess  # noqa: E402
from pkapi import meta  # noqa: E402
from pkapi.client.cluster import ClusterClient  # noqa: E402
from pkapi.v1 import core_pb2  # noqa: E402
from tests.fixtures.agent import AgentProcess  # noqa: E402
from tests.fixtures.controlplane import ControlPlane  # noqa: E402
from tests.fixtures.docker import ensure_images, remove_containers  # noqa: E402

IMAGE = "pocketkube/hello:1"
STEPS = ("exited", "stored", "bound", "create", "start", "status", "ready")


class EngineEvents:
    """Create/start times (monotonic) of the bench node's containers by pod
    name, from the engine's event stream (a daemon thread)."""

    def __init__(self, host: str, node: str) -> None:
        self.times: dict[tuple[str, str], float] = {}
        self._client = docker.DockerClient(base_url=host, timeout=None)
        self._stream = self._client.api.events(
            decode=True, filters={"type": ["container"], "label": [f"io.pocketkube.node={node}"]}
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._stream:
                action = (ev.get("Action") or "").split(":")[0]
                if action not in ("create", "start"):
                    continue
                name = (ev.get("Actor") or {}).get("Attributes", {}).get("io.pocketkube.pod.name", "")
                # wall clock of the engine -> this process's monotonic clock
                at = ev["timeNano"] / 1e9 - (time.time() - time.monotonic())
                self.times.setdefault((name, action), at)
        except Exception:  # noqa: BLE001 - closed at the end of the bench
            pass

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001
            pass
        self._client.close()


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def pod(name: str, ns: str) -> core_pb2.Pod:
    d = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"bench": "startup"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE, "ports": [{"containerPort": 8080}]}]},
    }
    p = meta.from_dict(d, core_pb2.Pod)
    assert isinstance(p, core_pb2.Pod)
    return p


def manifest(name: str) -> bytes:
    return json.dumps(meta.to_dict(pod(name, "default"))).encode()


async def pkctl_apply(server: str, name: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "--server", server, "apply", "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(manifest(name))
    if proc.returncode != 0:
        raise RuntimeError(f"pkctl apply failed: {err.decode()}")


async def one_run(
    client: ClusterClient, n: int, run: str, mode: str = "api", engine: EngineEvents | None = None
) -> tuple[list[float], str]:
    """mode: "api" (Apply RPC, one pod after another), "pkctl" (`pkctl apply
    -f -` as a process, one after another) or "burst" (n Apply RPCs at once).
    Returns the latencies and the slowest pod's timeline."""
    ready_at: dict[str, float] = {}
    events: dict[str, asyncio.Event] = {}
    seen: dict[str, dict[str, float]] = {}  # pod name -> step -> monotonic time
    _, rv = await client.list("pods", "default")

    async def watch() -> None:
        async for _typ, obj in client.watch("pods", "default", resource_version=rv):
            now = time.monotonic()
            c = meta.condition(obj.status.conditions, "Ready")  # type: ignore[attr-defined]
            name = obj.metadata.name  # type: ignore[attr-defined]
            steps = seen.setdefault(name, {})
            steps.setdefault("stored", now)
            if obj.spec.node_name:  # type: ignore[attr-defined]
                steps.setdefault("bound", now)
            if obj.status.container_statuses:  # type: ignore[attr-defined]
                steps.setdefault("status", now)
            if c is not None and c.status == "True" and name not in ready_at:
                ready_at[name] = now
                steps["ready"] = now
                if name in events:
                    events[name].set()

    w = asyncio.create_task(watch())
    lat: list[float] = []
    started: dict[str, float] = {}

    async def one(name: str) -> None:
        events[name] = asyncio.Event()
        t0 = started[name] = time.monotonic()
        if mode == "pkctl":
            await pkctl_apply(client.address, name)
        else:
            await client.apply(pod(name, "default"))
        seen.setdefault(name, {})["exited"] = time.monotonic()
        await asyncio.wait_for(events[name].wait(), 60)
        lat.append(ready_at[name] - t0)

    try:
        if mode == "burst":
            await asyncio.gather(*(one(f"bench-{run}-{i}") for i in range(n)))
        else:
            for i in range(n):
                await one(f"bench-{run}-{i}")
    finally:
        w.cancel()
    for i in range(n):
        await client.delete("pods", "default", f"bench-{run}-{i}", grace_period_seconds=0)
    slow = max(started, key=lambda k: ready_at[k] - started[k])
    steps = dict(seen.get(slow, {}))
    if engine is not None:
        for action in ("create", "start"):
            if (slow, action) in engine.times:
                steps[action] = engine.times[(slow, action)]
    t0 = started[slow]
    line = " ".join(f"{k} {steps[k] - t0:.3f}" if k in steps else f"{k} -" for k in STEPS)
    return lat, f"{mode:>5} run {run}: slowest {slow}: {line}"


def wait_http(port: int, deadline: float, interval: float) -> None:
    """Until 127.0.0.1:port answers HTTP, or the deadline (monotonic) passes."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(interval)


def baseline(host: str, n: int) -> list[float]:
    """The engine alone: docker run -d -p of the image until HTTP answers."""
    c = docker.DockerClient(base_url=host, timeout=60)
    out = []
    try:
        for _ in range(n):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            t0 = time.monotonic()
            ct = c.containers.run(
                IMAGE, detach=True, ports={"8080/tcp": ("127.0.0.1", port)}, labels={"io.pocketkube.bench": "baseline"}
            )
            wait_http(port, t0 + 10, 0.005)
            out.append(time.monotonic() - t0)
            ct.remove(force=True)
    finally:
        remove_containers(c, "io.pocketkube.bench=baseline")
        c.close()
    return out


def baseline_burst(host: str, n: int) -> list[float]:
    """The engine alone, n at once: n threads each `docker run -d -p` until
    its port answers HTTP."""
    import concurrent.futures

    c = docker.DockerClient(base_url=host, timeout=120, max_pool_size=n + 4)
    ports: list[int] = []
    socks = []
    for _ in range(n):  # n distinct free ports (held until all are chosen)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()

    def one(port: int) -> float:
        t0 = time.monotonic()
        c.containers.run(IMAGE, detach=True, ports={"8080/tcp": ("127.0.0.1", port)},
                         labels={"io.pocketkube.bench": "baseline"})
        wait_http(port, t0 + 60, 0.01)
        return time.monotonic() - t0

    try:
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            return list(ex.map(one, ports))
    finally:
        remove_containers(c, "io.pocketkube.bench=baseline")
        c.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    args = ap.parse_args()
    ensure_images(args.docker_host)
    tmp = tempfile.mkdtemp(prefix="pk-bench-")
    etcd = EtcdProcess(os.path.join(tmp, "etcd"), auto_compaction_retention="")
    await etcd.start()
    cp = ControlPlane(tmp, etcd.endpoint, True, {})
    node = f"bench-{uuid.uuid4().hex[:6]}"
    agent = AgentProcess(tmp, cp.address, args.docker_host, node, {})
    rows = []
    slowest: list[str] = []
    try:
        await cp.start()
        await agent.start()
        client = ClusterClient(cp.address)
        engine = EngineEvents(args.docker_host, node)
        await one_run(client, 3, "warm")  # warm-up (first image inspect, connections)
        for r in range(args.runs):
            lat, slow_a = await one_run(client, args.pods, f"{r}a", engine=engine)
            via_cli, slow_c = await one_run(client, args.pods, f"{r}c", "pkctl", engine)
            burst, slow_b = await one_run(client, args.pods, f"{r}b", "burst", engine)
            slowest += [slow_a, slow_c, slow_b]
            base = await asyncio.to_thread(baseline, args.docker_host, args.pods)
            base_burst = await asyncio.to_thread(baseline_burst, args.docker_host, args.pods)
            rows.append((pct(lat, 50), pct(lat, 99), pct(via_cli, 50), pct(via_cli, 99), pct(burst, 50), pct(burst, 99),
                         pct(base, 50), pct(base, 99), pct(base_burst, 50), pct(base_burst, 99)))
        await client.close()
        engine.close()
    finally:
        await agent.stop()
        await cp.stop()
        await etcd.stop()
        c = docker.DockerClient(base_url=args.docker_host)
        remove_containers(c, f"io.pocketkube.node={node}")
        c.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\npod startup (apply -> Ready) on one node, {args.pods} pods per measurement, {args.runs} runs, seconds")
    print("  api:    Apply RPC, one pod after another      pkctl: `pkctl apply -f -` process, one after another")
    print(f"  burst:  {args.pods} Apply RPCs at once              docker: `docker run -d -p` until HTTP answers")
    print(f"  dburst: {args.pods} `docker run -d -p` at once (the engine alone, as burst)\n")
    heads = ["api p50", "api p99", "pkctl p50", "pkctl p99", "burst p50", "burst p99", "docker p50", "docker p99",
             "dburst p50", "dburst p99"]
    print(f"{'run':>4} " + " ".join(f"{h:>10}" for h in heads))
    for i, row in enumerate(rows):
        print(f"{i:>4} " + " ".join(f"{v:>10.3f}" for v in row))
    m = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"{'med':>4} " + " ".join(f"{v:>10.3f}" for v in m))
    print(f"\nratio to the engine alone (p50/p99): api/docker x{m[0] / m[6]:.2f}/x{m[1] / m[7]:.2f}, "
          f"pkctl/docker x{m[2] / m[6]:.2f}/x{m[3] / m[7]:.2f}, burst/dburst x{m[4] / m[8]:.2f}/x{m[5] / m[9]:.2f}")
    print(f"target p99 <= 2 s (pkctl apply -> Ready): {'met' if m[3] <= 2.0 else 'NOT met'} ({m[3]:.3f} s)")
    print("\nslowest pod per measurement, seconds since its apply began (exited: pkctl exited / Apply returned;")
    print("stored, bound, status, ready: first seen by the watch; create, start: engine events):")
    for line in slowest:
        print("  " + line)
    print(f"\nload average (1, 5, 15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\nreproduce: make bench-pod-startup   (or .venv/bin/python bench/pod_startup.py --pods 30 --runs 3)")


if __name__ == "__main__":
    asyncio.run(main())
