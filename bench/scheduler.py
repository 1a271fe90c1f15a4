"""Scheduler and controller benchmark on hollow nodes.

    .venv/bin/python bench/scheduler.py [--runs 3] [--nodes 100] [--deployments 30] [--replicas 100]
                                        [--big-nodes 1000] [--big-pods 10000] [--skip-big] [--skip-backlog]

A real etcd (data on /dev/shm) and a real `pk-controlplane` process with
controllers and scheduler (`--preset kubernetes`: 10 s heartbeats and a
40 s grace period, so a hundred agents sharing this one busy process are
not declared dead when their heartbeats run late); hollow nodes run in
this process and talk real gRPC to it.

Part 1 (throughput): `--nodes` hollow nodes running the real pk-agent code
(agent.main.run) on FakeRuntime; `--deployments` Deployments of
`--replicas` each are created at once. Measured: pods bound per second
(first pod created -> last pod bound, and the scheduler's own bind rate from
first to last bind), time until every pod is Running, and the control
plane's peak RSS. Baseline, same run: the API's raw pod-create rate for the
same number of pods written directly by 16 concurrent clients (no
controllers involved), so "bound/s vs create/s" shows how close the whole
control loop (ReplicaSet creates -> scheduler binds) gets to the API's own
write ceiling.

Part 2 (memory): `--big-nodes` light hollow nodes (register, heartbeat, and
one shared watcher that marks bound pods Running/Ready through
UpdateStatus: a thousand full agents would measure this process, not the
control plane) and `--big-pods` pods from Deployments of 100; reported: the
control plane's peak RSS (psutil, sampled every 0.2 s) and time to all
Running.

Medians over --runs runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import psutil  # noqa: E402

from controlplane.etcdproc import EtcdProcess  # noqa: E402
from controlplane.store.etcd import EtcdStore  # noqa: E402
from pkapi import meta  # noqa: E402
from pkapi.client.cluster import ClusterClient  # noqa: E402
from pkapi.client.informer import Informer  # noqa: E402
from pkapi.v1 import apps_pb2, core_pb2  # noqa: E402
from tests.fixtures.controlplane import free_port, wait_serving  # noqa: E402

GIB = 1024**3
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None  # etcd fsyncs: keep data in memory


def deployment(name: str, replicas: int, ns: str) -> apps_pb2.Deployment:
    return meta.from_dict({  # type: ignore[return-value]
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": "pocketkube/hello:1"}]}}},
    }, apps_pb2.Deployment)


def _profile_args() -> list[str]:
    """PK_BENCH_PROFILE=/tmp/cp.prof runs the control plane under cProfile."""
    out = os.environ.get("PK_BENCH_PROFILE")
    return ["-m", "cProfile", "-o", out] if out else []


class ControlPlane:
    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.etcd = EtcdProcess(os.path.join(tmp, "etcd"), auto_compaction_retention="")
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.peak_rss = 0
        self._sampler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.etcd.start()
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        log = open(os.path.join(self.tmp, "cp.log"), "ab")  # noqa: ASYNC230
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, *_profile_args(), "-m", "controlplane.main", "--listen", self.address, "--etcd-servers",
             self.etcd.endpoint, "--http-listen=", "--no-leader-elect", "--preset", "kubernetes", "--log-level",
             os.environ.get("PK_BENCH_LOG_LEVEL", "warning"), *os.environ.get("PK_BENCH_CP_ARGS", "").split()],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        log.close()
        await wait_serving(self.address, 30, self.proc)
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        assert self.proc is not None
        p = psutil.Process(self.proc.pid)
        while True:
            try:
                # pk-controlplane plus its controller-manager child.
                rss = p.memory_info().rss
                for c in p.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        rss += c.memory_info().rss
                self.peak_rss = max(self.peak_rss, rss)
            except psutil.Error:
                return
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 15)
            except TimeoutError:
                self.proc.kill()
                self.proc.wait()
        await self.etcd.stop()


def cpu_seconds(cp: ControlPlane) -> dict[str, float]:
    """CPU seconds used so far by the control plane, etcd and this process
    (where the hollow nodes run): which one is the bottleneck."""
    out = {}
    for name, pid in (("cpu_cp", cp.proc.pid if cp.proc else 0), ("cpu_etcd", cp.etcd.pid or 0),
                      ("cpu_bench", os.getpid())):
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            out[name] = t.user + t.system
            if name == "cpu_cp":  # the API server; its controller-manager child apart
                out["cpu_ctrl"] = 0.0
                for c in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        ct = c.cpu_times()
                        out["cpu_ctrl"] += ct.user + ct.system
        except psutil.Error:
            out[name] = float("nan")
    return out


# ------------------------------------------------------------ hollow nodes


async def real_agents(server: str, n: int, tmp: str) -> list[asyncio.Task[None]]:
    """n pk-agents (the real code) on FakeRuntime in this process, each with
    its --data-dir under tmp (removed with it)."""
    from agent.config import AgentConfig
    from agent.main import run
    from agent.runtime.fake import FakeRuntime

    tasks = []
    for i in range(n):
        # heartbeat_interval: --preset kubernetes' 10 s (the agent's own
        # default is the lab's 1 s), as a kubelet's lease renewal.
        cfg = AgentConfig(server=server, node_name=f"hollow-{i}", node_ip="127.0.0.1", agent_port=0,
                          capacity_cpu="64", capacity_memory="256Gi", max_pods=200, heartbeat_interval=10.0,
                          data_dir=os.path.join(tmp, "agents", f"hollow-{i}"))
        tasks.append(asyncio.create_task(run(cfg, runtime=FakeRuntime(), check_port_bind=False)))
    return tasks


class LightNodes:
    """Many hollow nodes, cheaply: register + heartbeat per node, and one
    shared pod watcher that reports bound pods Running and Ready."""

    def __init__(self, server: str, n: int) -> None:
        self.client = ClusterClient(server, timeout=60)
        self.names = [f"light-{i}" for i in range(n)]
        self.pods = Informer(self.client, "pods")
        self.todo: asyncio.Queue[Any] = asyncio.Queue()
        self.tasks: list[asyncio.Task[Any]] = []

    def node(self, name: str) -> core_pb2.Node:
        node = core_pb2.Node()
        node.metadata.name = name
        for k, v in (("cpu", "64"), ("memory", "256Gi"), ("pods", "200")):
            node.status.capacity[k].string_value = v
            node.status.allocatable[k].string_value = v
        node.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        node.status.addresses.add(type="InternalIP", address="127.0.0.1")
        return node

    async def start(self) -> None:
        sem = asyncio.Semaphore(50)

        async def reg(name: str) -> None:
            async with sem:
                await self.client.register_node(self.node(name))

        await asyncio.gather(*(reg(n) for n in self.names))
        self.tasks.append(asyncio.create_task(self._heartbeats()))
        self.pods.add_handler(on_add=self._seen, on_update=lambda o, n: self._seen(n))
        self.tasks.append(asyncio.create_task(self.pods.run()))
        for _ in range(32):
            self.tasks.append(asyncio.create_task(self._worker()))

    async def _heartbeats(self) -> None:
        interval = 1.0
        while True:
            t0 = time.monotonic()
            async def hb(name: str, sem: asyncio.Semaphore = asyncio.Semaphore(100)) -> None:
                async with sem:
                    try:
                        await self.client.heartbeat(name)
                    except Exception:  # noqa: BLE001 - a missed beat is what the grace period is for
                        pass

            await asyncio.gather(*(hb(n) for n in self.names))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))

    def _seen(self, pod: Any) -> None:
        if pod.spec.node_name.startswith("light-") and (
                pod.status.phase != "Running" or pod.metadata.HasField("deletion_timestamp")):
            self.todo.put_nowait(meta.ns_name(pod))

    async def _worker(self) -> None:
        while True:
            key = await self.todo.get()
            pod = self.pods.get(*meta.split_key(key))
            if pod is None:
                continue
            try:
                if pod.metadata.HasField("deletion_timestamp"):
                    await self.client.delete("pods", pod.metadata.namespace, pod.metadata.name,
                                             grace_period_seconds=0)
                    continue
                if pod.status.phase == "Running":
                    continue
                new = core_pb2.Pod()
                new.CopyFrom(pod)
                new.status.phase = "Running"
                new.status.host_ip = "127.0.0.1"
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
                    c = new.status.conditions.add(type=t, status="True")
                    c.last_transition_time.GetCurrentTime()
                    c.last_transition_time.nanos = 0
                new.status.start_time.GetCurrentTime()
                await self.client.update_status(new)
            except Exception:  # noqa: BLE001 - retried on the next event
                pass

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.close()


# -------------------------------------------------------------- measuring


class Watch:
    """Times when pods were first seen bound and first seen Running."""

    def __init__(self, client: ClusterClient, ns: str) -> None:
        self.inf = Informer(client, "pods", ns)
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.inf.add_handler(on_add=self._see, on_update=lambda o, n: self._see(n))
        self.task: asyncio.Task[None] | None = None

    def _see(self, pod: Any) -> None:
        k = pod.metadata.name
        now = time.monotonic()
        if pod.spec.node_name and k not in self.bound:
            self.bound[k] = now
        if pod.status.phase == "Running" and k not in self.running:
            self.running[k] = now

    async def start(self) -> None:
        self.task = asyncio.create_task(self.inf.run())
        await self.inf.wait_synced(30)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def wait_until(cond: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_nodes(client: ClusterClient, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        items, _ = await client.list("nodes")
        ready = sum(1 for x in items if any(c.type == "Ready" and c.status == "True" for c in x.status.conditions))
        if ready >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {ready}/{n} nodes Ready after {timeout}s")
        await asyncio.sleep(0.2)


async def create_rate(client: ClusterClient, n: int, ns: str) -> float:
    """Baseline: bare pods (no controller) created by 16 concurrent clients."""
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        p = core_pb2.Pod()
        p.metadata.name, p.metadata.namespace = f"base-{i}", ns
        p.spec.scheduler_name = "none"  # keep the scheduler out of the baseline
        p.spec.containers.add(name="c", image="pocketkube/hello:1")
        async with sem:
            await client.create(p)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.monotonic() - t0)


async def ensure_ns(client: ClusterClient, name: str) -> None:
    ns = core_pb2.Namespace()
    ns.metadata.name = name
    await client.create(ns)


async def throughput_run(args: Any) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="pk-bench-sched-", dir=SHM)
    cp = ControlPlane(tmp)
    agents: list[asyncio.Task[None]] = []
    try:
        await cp.start()
        bench_cpu0 = cpu_seconds(cp)["cpu_bench"]  # this process lives on across runs
        client = ClusterClient(cp.address, timeout=60)
        await ensure_ns(client, "baseline")
        await ensure_ns(client, "bench")
        total = args.deployments * args.replicas
        agents = await real_agents(cp.address, args.nodes, tmp)
        await wait_nodes(client, args.nodes)
        w = Watch(client, "bench")
        await w.start()
        etcd = EtcdStore(cp.etcd.endpoint)
        rev0 = await etcd.current_revision()
        t0 = time.monotonic()
        await asyncio.gather(*(client.create(deployment(f"d{i}", args.replicas, "bench"))
                               for i in range(args.deployments)))
        await wait_until(lambda: len(w.bound) >= total, f"{total} pods bound", 600)
        t_bound = time.monotonic()
        await wait_until(lambda: len(w.running) >= total, f"{total} pods Running", 600)
        t_run = time.monotonic()
        # Every etcd write transaction takes one revision: writes per pod.
        txns = await etcd.current_revision() - rev0
        await etcd.close()
        first_bind = min(w.bound.values())
        cpu = cpu_seconds(cp)
        cpu["cpu_bench"] -= bench_cpu0
        await w.stop()
        base = await create_rate(client, total, "baseline")  # same cluster, after the measurement
        await client.close()
        return {
            "bound_per_s": total / (t_bound - t0),
            "bind_rate": total / max(t_bound - first_bind, 1e-9),
            "all_running_s": t_run - t0,
            "create_per_s": base,
            "rss_mib": cp.peak_rss / 2**20,
            "etcd_txns_per_pod": txns / total,
            **cpu,
            "load1": os.getloadavg()[0],
        }
    finally:
        for t in agents:
            t.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
        await cp.stop()
        if os.environ.get("PK_BENCH_KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def set_unschedulable(client: ClusterClient, value: bool) -> None:
    items, _ = await client.list("nodes")
    sem = asyncio.Semaphore(32)

    async def one(n: Any) -> None:
        for _ in range(20):
            async with sem:
                cur: Any = await client.get("nodes", "", n.metadata.name)
                cur.spec.unschedulable = value
                try:
                    await client.update(cur)
                    return
                except Exception:  # noqa: BLE001 - a concurrent status write: read again
                    await asyncio.sleep(0.01)
        raise RuntimeError(f"could not set unschedulable on {n.metadata.name}")

    await asyncio.gather(*(one(n) for n in items))


async def backlog_run(args: Any) -> dict[str, float]:
    """The scheduler alone: every pod is created (by the controllers) while
    all nodes are cordoned; then the nodes are uncordoned at once and the
    binding of the whole backlog is timed."""
    tmp = tempfile.mkdtemp(prefix="pk-bench-sched-", dir=SHM)
    cp = ControlPlane(tmp)
    agents: list[asyncio.Task[None]] = []
    try:
        await cp.start()
        client = ClusterClient(cp.address, timeout=60)
        await ensure_ns(client, "bench")
        total = args.deployments * args.replicas
        agents = await real_agents(cp.address, args.nodes, tmp)
        await wait_nodes(client, args.nodes)
        await set_unschedulable(client, True)
        w = Watch(client, "bench")
        await w.start()
        await asyncio.gather(*(client.create(deployment(f"d{i}", args.replicas, "bench"))
                               for i in range(args.deployments)))
        await wait_until(lambda: len(w.inf) >= total, f"{total} pods created", 600)
        await asyncio.sleep(1.0)  # let the unschedulable marks settle
        t0 = time.monotonic()
        c0 = cpu_seconds(cp)
        await set_unschedulable(client, False)
        await wait_until(lambda: len(w.bound) >= total, f"{total} pods bound", 600)
        t_bound = time.monotonic()
        c1 = cpu_seconds(cp)
        await w.stop()
        await client.close()
        util = {f"util_{k[4:]}": (c1[k] - c0[k]) / (t_bound - t0) for k in c0}
        return {"backlog_binds_per_s": total / (t_bound - t0), **util}
    finally:
        for t in agents:
            t.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
        await cp.stop()
        if os.environ.get("PK_BENCH_KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def memory_run(args: Any) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="pk-bench-mem-", dir=SHM)
    cp = ControlPlane(tmp)
    nodes: LightNodes | None = None
    try:
        await cp.start()
        client = ClusterClient(cp.address, timeout=120)
        await ensure_ns(client, "big")
        nodes = LightNodes(cp.address, args.big_nodes)
        await nodes.start()
        await wait_nodes(client, args.big_nodes, 300)
        w = Watch(client, "big")
        await w.start()
        per = 100
        t0 = time.monotonic()
        await asyncio.gather(*(client.create(deployment(f"m{i}", per, "big"))
                               for i in range(args.big_pods // per)))
        await wait_until(lambda: len(w.running) >= args.big_pods, f"{args.big_pods} pods Running", 1200)
        t_run = time.monotonic() - t0
        await asyncio.sleep(2)  # let the status writes settle, keep sampling
        await w.stop()
        await client.close()
        return {"all_running_s": t_run, "rss_mib": cp.peak_rss / 2**20}
    finally:
        if nodes is not None:
            await nodes.stop()
        await cp.stop()
        if os.environ.get("PK_BENCH_KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def decisions_per_s(nodes: int, pods: int, owners: int) -> float:
    """Part 0: the pure filter+score+pick (pkapi.scheduling.schedule) over
    an in-memory snapshot, charging each pod to its node: what the
    scheduler could decide per second with no I/O at all."""
    from pkapi import scheduling

    snap = [scheduling.NodeInfo(name=f"n{i}", alloc_cpu=64000, alloc_memory=256 * GIB, alloc_pods=200)
            for i in range(nodes)]
    start = 0
    t0 = time.perf_counter()
    for i in range(pods):
        pod = scheduling.PodInfo("bench", f"p{i}", cpu=100, memory=128 * 2**20, owner=f"o{i % owners}")
        d = scheduling.schedule(pod, snap, start)
        start = d.next_start
        assert d.node is not None
        snap[int(d.node[1:])].add(pod)
    return pods / (time.perf_counter() - t0)


def med(rows: list[dict[str, float]], k: str) -> float:
    return statistics.median(r[k] for r in rows)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--deployments", type=int, default=30)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--big-nodes", type=int, default=1000)
    ap.add_argument("--big-pods", type=int, default=10000)
    ap.add_argument("--big-runs", type=int, default=1)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-backlog", action="store_true", help="skip the uncordoned-backlog runs")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    # This process hosts a hundred agents' caches at once (a pk-agent holds
    # its node's few): collect as the control plane does.
    from pkapi.gctune import tune_gc

    tune_gc()
    # Hollow agents cancelled at the end of a run log their in-flight RPCs'
    # CANCELLED as errors: noise here.
    logging.getLogger("agent").setLevel(logging.CRITICAL)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(other work on the machine lowers every figure below)")
    d100 = statistics.median(decisions_per_s(args.nodes, 3000, args.deployments) for _ in range(3))
    d1000 = statistics.median(decisions_per_s(args.big_nodes, 3000, 100) for _ in range(3))
    print(f"Part 0: pure scheduling decisions/s (no I/O): {d100:.0f} with {args.nodes} nodes, "
          f"{d1000:.0f} with {args.big_nodes} nodes", flush=True)
    rows = []
    for i in range(args.runs):
        r = await throughput_run(args)
        rows.append(r)
        print(f"run {i + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in r.items()), flush=True)
    for i in range(0 if args.skip_backlog else args.runs):
        r = await backlog_run(args)
        rows[i].update(r)
        print(f"backlog run {i + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in r.items()), flush=True)
    total = args.deployments * args.replicas
    print()
    print(f"Part 1: {args.nodes} hollow nodes (pk-agent on FakeRuntime), {args.deployments} Deployments x "
          f"{args.replicas} = {total} pods; median of {args.runs} runs")
    print(f"  {'metric':<44}{'median':>10}")
    print(f"  {'pods bound/s (create deployments -> all bound)':<44}{med(rows, 'bound_per_s'):>10.0f}")
    print(f"  {'scheduler bind rate/s (first -> last bind)':<44}{med(rows, 'bind_rate'):>10.0f}")
    if not args.skip_backlog:
        print(f"  {'backlog of pending pods bound/s (uncordon)':<44}{med(rows, 'backlog_binds_per_s'):>10.0f}")
    print(f"  {'time to all Running (s)':<44}{med(rows, 'all_running_s'):>10.1f}")
    print(f"  {'baseline: bare pod creates/s (16 clients)':<44}{med(rows, 'create_per_s'):>10.0f}")
    print(f"  {'ratio bound/s : create/s':<44}{med(rows, 'bound_per_s') / med(rows, 'create_per_s'):>10.2f}")
    print(f"  {'control plane peak RSS (MiB)':<44}{med(rows, 'rss_mib'):>10.0f}")
    print(f"  {'etcd write transactions per pod':<44}{med(rows, 'etcd_txns_per_pod'):>10.2f}")
    print(f"  {'API server CPU s per 1,000 pods':<44}{med(rows, 'cpu_cp') * 1000 / total:>10.1f}")
    print(f"  {'controller-manager CPU s per 1,000 pods':<44}{med(rows, 'cpu_ctrl') * 1000 / total:>10.1f}")
    print(f"  {'load average during the runs (1 min)':<44}{med(rows, 'load1'):>10.1f}")
    print(f"  target: >= 300 pods/s bound (create deployments -> all bound) -> "
          f"{'met' if med(rows, 'bound_per_s') >= 300 else 'NOT met'}")
    if not args.skip_big:
        big = []
        for i in range(args.big_runs):
            r = await memory_run(args)
            big.append(r)
            print(f"big run {i + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in r.items()), flush=True)
        print()
        print(f"Part 2: {args.big_nodes} light hollow nodes, {args.big_pods} pods; median of {args.big_runs} runs")
        print(f"  {'control plane peak RSS (MiB)':<44}{med(big, 'rss_mib'):>10.0f}")
        print(f"  {'time to all Running (s)':<44}{med(big, 'all_running_s'):>10.1f}")
        print(f"  {'ratio peak RSS : part 1 peak RSS':<44}{med(big, 'rss_mib') / med(rows, 'rss_mib'):>10.2f}")
        print(f"  target: RSS <= 1 GiB -> {'met' if med(big, 'rss_mib') * 2**20 <= GIB else 'NOT met'}")
    print()
    print("reproduce: make bench-scheduler   (or: .venv/bin/python bench/scheduler.py " + " ".join(sys.argv[1:]) + ")")


async def _main_cancellable() -> None:
    """SIGTERM cancels the run, so every finally stops its processes."""
    import signal

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await main()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(_main_cancellable())
    except ImportError:
        asyncio.run(_main_cancellable())
