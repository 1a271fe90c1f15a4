"""Kubernetes HTTP API vs gRPC API benchmark: the same operations through
both front ends of one pk-controlplane, in one run, targets interleaved.

    .venv/bin/python bench/rest.py [--runs 3] [--ops 400] [--watchers 100] [--changes 300] [--cli-runs 20]

Each run starts a fresh etcd (data on /dev/shm when available, as
bench/api.py) and a fresh `pk-controlplane --no-controllers` serving gRPC
and HTTPS. For 1 and 16 clients it runs create, update, get and list of
Pods through gRPC (pkapi.client.ClusterClient, one channel per client) and
through HTTPS (aiohttp, one session per client, the admin kubeconfig's
client certificate and cluster CA), alternating which API goes first from
one run to the next. Then a watch fan-out of 100 watchers through each
API, and the wall time of `kubectl get pods` vs `pkctl get pods` (process
runs, alternated; kubectl's discovery cache warmed by one run first).
Figures are medians over the runs (the CLI times: over all process runs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import aiohttp  # noqa: E402

from bench import api as base  # noqa: E402
from controlplane.etcdproc import EtcdProcess  # noqa: E402
from pkapi import meta  # noqa: E402
from pkapi.client.cluster import ClusterClient  # noqa: E402
from pkapi.v1 import core_pb2  # noqa: E402

OPS = ("create", "update", "get", "list")


class Http:
    """One HTTPS client: its own aiohttp session and connection."""

    def __init__(self, url: str, ctx: ssl.SSLContext) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=1),
                                             timeout=aiohttp.ClientTimeout(total=120))

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, self.url + path, data=data,
                                        headers={"Content-Type": "application/json"}) as r:
            out = await r.read()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {out[:300]!r}")
            return json.loads(out)

    async def close(self) -> None:
        await self.session.close()


def ssl_context(kubeconfig: Path, tmp: str) -> tuple[str, ssl.SSLContext]:
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    crt, key = os.path.join(tmp, "admin.crt"), os.path.join(tmp, "admin.key")
    Path(crt).write_bytes(base64.b64decode(user["client-certificate-data"]))
    Path(key).write_bytes(base64.b64decode(user["client-key-data"]))
    ctx.load_cert_chain(crt, key)
    return str(cluster["server"]), ctx


async def wait_ready(url: str, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("pk-controlplane exited during startup")
            try:
                async with s.get(url + "/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url}/readyz did not answer 200 within {timeout:.0f} s")


async def wait_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(os.path.exists, path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pk-controlplane did not write {path} within {timeout:.0f} s")
        await asyncio.sleep(0.05)


def pod_json(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", **meta.to_dict(base.pod(name, ns))}


def ops_for(api: str, ns: str) -> dict[str, Any]:
    """The four operations of one API on namespace `ns`, as base.phase's
    op(client, client_index, i)."""
    made: dict[int, Any] = {}
    if api == "grpc":
        async def g_create(c: ClusterClient, ci: int, i: int) -> None:
            made[i] = await c.create(base.pod(f"p{i}", ns))

        async def g_update(c: ClusterClient, ci: int, i: int) -> None:
            p = made[i]
            p.metadata.labels["rev"] = str(int(p.metadata.labels.get("rev", "0")) + 1)
            made[i] = await c.update(p)

        async def g_get(c: ClusterClient, ci: int, i: int) -> None:
            await c.get("pods", ns, f"p{i}")

        async def g_list(c: ClusterClient, ci: int, i: int) -> None:
            await c.list("pods", ns)

        return {"create": g_create, "update": g_update, "get": g_get, "list": g_list}
    path = f"/api/v1/namespaces/{ns}/pods"

    async def h_create(c: Http, ci: int, i: int) -> None:
        made[i] = await c.call("POST", path, pod_json(f"p{i}", ns))

    async def h_update(c: Http, ci: int, i: int) -> None:
        p = made[i]
        labels = p["metadata"]["labels"]
        labels["rev"] = str(int(labels.get("rev", "0")) + 1)
        made[i] = await c.call("PUT", f"{path}/p{i}", p)

    async def h_get(c: Http, ci: int, i: int) -> None:
        await c.call("GET", f"{path}/p{i}")

    async def h_list(c: Http, ci: int, i: int) -> None:
        await c.call("GET", path)

    return {"create": h_create, "update": h_update, "get": h_get, "list": h_list}


async def http_fanout(url: str, ctx: ssl.SSLContext, watchers: int, changes: int) -> dict[str, float]:
    """As base.fanout, through the HTTP API: `watchers` JSON-lines watches
    (on 10 sessions) of one namespace; one writer makes `changes` creates."""
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0))
                for _ in range(max(1, watchers // 10))]
    writer = Http(url, ctx)
    await writer.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fanout-http"}})
    rv = (await writer.call("GET", "/api/v1/namespaces/fanout-http/pods"))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    lags: list[float] = []
    remaining = [watchers]
    done = asyncio.Event()
    registered = [0]

    async def watch(s: aiohttp.ClientSession) -> None:
        seen = 0
        async with s.get(f"{url}/api/v1/namespaces/fanout-http/pods",
                         params={"watch": "1", "resourceVersion": rv},
                         timeout=aiohttp.ClientTimeout(total=None, sock_read=120)) as r:
            registered[0] += 1
            async for line in r.content:
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev["type"] != "ADDED":
                    continue
                lags.append(time.perf_counter() - sent[ev["object"]["metadata"]["name"]])
                seen += 1
                if seen == changes:
                    break
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()

    tasks = [asyncio.ensure_future(watch(sessions[i % len(sessions)])) for i in range(watchers)]
    deadline = time.monotonic() + 30
    while registered[0] < watchers:  # every watch answered its headers: registered
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {registered[0]} of {watchers} HTTP watches started within 30 s")
        await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    for i in range(changes):
        name = f"w{i}"
        sent[name] = time.perf_counter()
        await writer.call("POST", "/api/v1/namespaces/fanout-http/pods", pod_json(name, "fanout-http"))
    await asyncio.wait_for(done.wait(), 120)
    wall = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in sessions:
        await s.close()
    await writer.close()
    return {"ops": watchers * changes / wall, "p50": base.pct(lags, 50) * 1000, "p99": base.pct(lags, 99) * 1000,
            "cpu": 0.0}


def kubectls() -> list[str]:
    out = []
    wheel = Path(sys.executable).parent / "kubectl"
    if wheel.exists():
        out.append(str(wheel))
    if Path("/usr/bin/kubectl").exists():
        out.append("/usr/bin/kubectl")
    return out


def cli_times(kubeconfig: Path, grpc_address: str, tmp: str, runs: int) -> dict[str, list[float]]:
    """Wall time of `get pods` process runs, the CLIs alternated."""
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "KUBECONFIG": str(kubeconfig),
           "PKCTL_SERVER": grpc_address}
    pkctl = str(Path(sys.executable).parent / "pkctl")
    cmds = {f"kubectl get pods ({'wheel' if k != '/usr/bin/kubectl' else k})": [k, "get", "pods"]
            for k in kubectls()}
    cmds["pkctl get pods"] = [pkctl, "get", "pods"]
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():  # warm-up: kubectl's discovery and OpenAPI caches, the page cache
        subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=True)
    for _ in range(runs):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            r = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
            times[name].append(time.perf_counter() - t0)
            if r.returncode != 0 or b"cli-" not in r.stdout:
                raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stdout[:200]!r} {r.stderr[:300]!r}")
    return times


async def one_run(args: argparse.Namespace, run: int) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    results: dict[str, dict[str, float]] = {}
    tmp = tempfile.mkdtemp(prefix="pk-bench-rest-", dir=args.data_root)
    etcd = EtcdProcess(os.path.join(tmp, "etcd"), auto_compaction_retention="")
    await etcd.start()
    gaddr = f"127.0.0.1:{base.free_port()}"
    haddr = f"127.0.0.1:{base.free_port()}"
    data = Path(tmp) / "cp"
    log = open(os.path.join(tmp, "controlplane.log"), "wb")  # noqa: ASYNC230 (local file)
    proc = subprocess.Popen(  # noqa: ASYNC220 (fork+exec)
        [sys.executable, "-m", "controlplane.main", "--listen", gaddr, "--etcd-servers", etcd.endpoint,
         "--no-controllers", "--log-level", "warning", "--http-listen", haddr, "--data-dir", str(data)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        import psutil

        base.SERVER = psutil.Process(proc.pid)
    except Exception:
        base.SERVER = None
    cli: dict[str, list[float]] = {}
    try:
        await base.wait_serving(gaddr, proc)
        kubeconfig = data / "kubeconfig.yaml"
        await wait_file(kubeconfig)
        url, ctx = ssl_context(kubeconfig, tmp)
        await wait_ready(url, ctx, proc)
        order = ("grpc", "http") if run % 2 == 0 else ("http", "grpc")
        for n in args.clients:
            clients: dict[str, list[Any]] = {"grpc": [ClusterClient(gaddr) for _ in range(n)],
                                             "http": [Http(url, ctx) for _ in range(n)]}
            ops = {}
            for api in order:
                ns = core_pb2.Namespace()
                ns.metadata.name = f"bench-{api}-{n}"
                await clients["grpc"][0].create(ns)
                ops[api] = ops_for(api, ns.metadata.name)
            for op in OPS:
                total = args.ops if op != "list" else args.list_ops
                for api in order:
                    results[f"{op}|{n}|{api}"] = await base.phase(clients[api], total, ops[api][op])
            for c in clients["grpc"] + clients["http"]:
                await c.close()
        for api in order:
            if api == "grpc":
                results[f"watch fan-out|{args.watchers}|grpc"] = await base.fanout(gaddr, args.watchers,
                                                                                   args.changes)
            else:
                results[f"watch fan-out|{args.watchers}|http"] = await http_fanout(url, ctx, args.watchers,
                                                                                   args.changes)
        if args.cli_runs:
            c = ClusterClient(gaddr)
            for i in range(10):
                await c.create(base.pod(f"cli-{i}", "default"))
            await c.close()
            cli = await asyncio.to_thread(cli_times, kubeconfig, gaddr, tmp, args.cli_runs)
    finally:
        await base.stop_run(proc, log, etcd, tmp)
    return results, cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ops", type=int, default=400, help="creates/updates/gets per phase (split across the clients)")
    ap.add_argument("--list-ops", type=int, default=48, help="lists per phase (each lists the --ops pods)")
    ap.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--cli-runs", type=int, default=20, help="process runs of each `get pods` (0: skip)")
    ap.add_argument("--data-root", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    args = ap.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runs = []
    cli: dict[str, list[float]] = {}
    for r in range(args.runs):
        res, times = runner(one_run(args, r))
        runs.append(res)
        for k, v in times.items():
            cli.setdefault(k, []).extend(v)
        print(f"run {r + 1}/{args.runs} done", file=sys.stderr, flush=True)

    def med(key: str, m: str) -> float:
        return statistics.median(run[key][m] for run in runs)

    print(f"\nPocketKube HTTP API vs gRPC API: median of {args.runs} runs, {args.ops} ops per phase "
          f"({args.list_ops} lists of {args.ops} pods); etcd data on {args.data_root or 'the default temp dir'}; "
          f"{os.cpu_count()} CPUs")
    print(f"{'operation':<15}{'clients':>8}{'gRPC ops/s':>12}{'HTTP ops/s':>12}{'HTTP/gRPC':>11}"
          f"{'gRPC p50':>10}{'HTTP p50':>10}{'gRPC p99':>10}{'HTTP p99':>10}{'CPU ms/op gRPC':>16}{'HTTP':>7}")
    keys = dict.fromkeys(k.rsplit("|", 1)[0] for k in runs[0])
    for k in keys:
        op, n = k.split("|")
        g, h = f"{k}|grpc", f"{k}|http"
        cpu = (f"{med(g, 'cpu'):>16.2f}{med(h, 'cpu'):>7.2f}" if med(g, "cpu") else "")
        print(f"{op:<15}{n:>8}{med(g, 'ops'):>12.0f}{med(h, 'ops'):>12.0f}{med(h, 'ops') / med(g, 'ops'):>10.2f}x"
              f"{med(g, 'p50'):>10.2f}{med(h, 'p50'):>10.2f}{med(g, 'p99'):>10.2f}{med(h, 'p99'):>10.2f}{cpu}"
              + ("   (watchers; ops/s = deliveries/s, p50/p99 = delivery lag)" if op.startswith("watch") else ""))
    print("latencies in ms")
    n = max(args.clients)
    checks = []
    mut = [med(f"{op}|{n}|http", "p99") for op in ("create", "update") if f"{op}|{n}|http" in runs[0]]
    if mut and n == 16:
        checks.append(f"HTTP mutating p99 at 16 clients: {max(mut):.1f} ms (target <= 50 ms): "
                      + ("OK" if max(mut) <= 50 else "MISSED"))
    for c in args.clients:
        ratio = med(f"create|{c}|http", "ops") / med(f"create|{c}|grpc", "ops")
        checks.append(f"HTTP create ops/s at {c} client(s): {ratio:.2f}x gRPC's (target >= 0.7x): "
                      + ("OK" if ratio >= 0.7 else "MISSED"))
    if cli:
        print(f"\nCLI wall time, median of {len(next(iter(cli.values())))} process runs (10 pods in the namespace):")
        for name, ts in cli.items():
            print(f"  {name:<34}{statistics.median(ts) * 1000:>8.0f} ms  (p90 {base.pct(ts, 90) * 1000:.0f} ms)")
    print()
    for c in checks:
        print(c)
    print(f"load average during the runs: {os.getloadavg()[0]:.1f} (other work on this machine skews p99)")
    print("\nreproduce: " + " ".join(["flock /tmp/pk-bench.lock", ".venv/bin/python", "bench/rest.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
