"""Failover benchmark: five hard node kills in a row on a real 3-node lab.

Each round: every node up and Ready, 3 replicas of the seed's Deployment
Ready; a request loop (20/s, a new connection each) through a surviving
node's NodePort; `pkctl lab kill-node NODE --hard` on the node running the
most replicas. Measured from the kill: time until the node is NotReady,
time until all 3 replicas are Ready on the other nodes, and the requests
that failed. Then the node is started again (its stale containers go).

Baseline, measured in the same run on the same lab: the time for one new
replica to become Ready after a scale-up (scheduling + container start +
status), i.e. the part of a failover that is not failure detection.

Target (lab preset: heartbeat 1 s, grace 4 s, toleration 0 s): all
replicas Ready within 8 s of the kill, 0 failed requests.

Run as root: `make bench-failover` (or `.venv/bin/python bench/failover.py
--rounds 5`). It brings up its own lab ("bench") and removes it at the end.
All traffic goes to the lab's own node addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.lab import lab as labmod  # noqa: E402
from pkapi.client.cluster import ClusterClient  # noqa: E402
from tests.fixtures.lab import LabHandle, RequestLoop, pod_ready  # noqa: E402

SELECTOR = "app=my-web-app"
DEPLOY = "my-web-app-deployment"
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
"""


async def poll_until(what: str, check: Any, timeout: float, interval: float = 0.05) -> float:
    """Seconds until await check() is true; raises naming what at the deadline."""
    t0 = time.monotonic()
    while True:
        try:
            if await check():
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - the API may hiccup; keep polling
            pass
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class Cluster:
    def __init__(self, client: ClusterClient, replicas: int) -> None:
        self.c = client
        self.replicas = replicas

    async def ready_pods(self) -> list[Any]:
        items, _ = await self.c.list("pods", "default", label_selector=SELECTOR)
        return [p for p in items if pod_ready(p)]

    async def live_pods(self) -> list[Any]:
        items, _ = await self.c.list("pods", "default", label_selector=SELECTOR)
        return [p for p in items if not p.metadata.HasField("deletion_timestamp")]

    async def node_ready(self) -> dict[str, bool]:
        nodes, _ = await self.c.list("nodes")
        return {n.metadata.name: any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                for n in nodes}

    async def steady(self, n: int | None = None) -> bool:
        n = self.replicas if n is None else n
        ready = await self.ready_pods()
        live = await self.live_pods()
        nodes = await self.node_ready()
        return len(ready) == n and len(live) == n and all(nodes.values())


async def measure(lab: LabHandle, rounds: int, rate: float) -> tuple[list[dict[str, Any]], list[float]]:
    async with ClusterClient(lab.server, timeout=5) as client:
        cl = Cluster(client, 3)
        await poll_until("3 Ready replicas", cl.steady, 60)
        svc = await client.get("services", "default", "web-nodeport")
        port = int(svc.spec.ports[0].node_port)  # type: ignore[attr-defined]

        # baseline: one new replica Ready after a scale-up, several times
        baseline = []
        for _ in range(rounds):
            await asyncio.to_thread(lab.pkctl, "scale", f"deployment/{DEPLOY}", "--replicas", "4")
            t = await poll_until("a 4th Ready replica", lambda: cl.steady(4), 30, 0.02)
            baseline.append(t)
            await asyncio.to_thread(lab.pkctl, "scale", f"deployment/{DEPLOY}", "--replicas", "3")
            await poll_until("back to 3 replicas", cl.steady, 30)

        results = []
        for i in range(1, rounds + 1):
            await poll_until("3 Ready replicas on Ready nodes", cl.steady, 60)
            pods = await cl.ready_pods()
            counts: dict[str, int] = {}
            for p in pods:
                counts[p.spec.node_name] = counts.get(p.spec.node_name, 0) + 1
            victim = max(sorted(counts), key=lambda n: counts[n])
            survivor = next(n.name for n in lab.plan.nodes if n.name != victim)
            # A node Ready again after the previous round may not serve its
            # NodePort yet: the loop starts once the survivor answers.
            await poll_until(f"{survivor}:{port} to answer", lambda s=survivor: _answers(lab.node_ip(s), port), 20)
            loop = RequestLoop(lab.node_ip(survivor), port, rate=rate, max_seconds=60).start()
            await asyncio.sleep(1.0)
            # the kill itself in this process (what `pkctl lab kill-node --hard`
            # runs), so the clock starts when the node dies, not when a pkctl
            # process has finished importing
            t0 = time.monotonic()
            labmod.kill_node(lab.name, victim, hard=True, say=lambda _: None)
            kill_took = time.monotonic() - t0

            async def not_ready(v: str = victim) -> bool:
                return not (await cl.node_ready()).get(v, True)

            async def replaced(v: str = victim) -> bool:
                r = await cl.ready_pods()
                return len(r) == 3 and all(p.spec.node_name != v for p in r)

            async def evicted(v: str = victim) -> bool:
                return all(p.spec.node_name != v for p in await cl.live_pods())

            notready_task = asyncio.create_task(poll_until(f"{victim} NotReady", not_ready, 60))
            evicted_task = asyncio.create_task(poll_until(f"{victim}'s pods deleted", evicted, 60))
            all_ready = await poll_until("3 Ready replicas elsewhere", replaced, 60)
            notready = await notready_task
            gone = await evicted_task
            await asyncio.sleep(1.0)
            loop.stop()
            results.append({
                "round": i, "victim": victim, "pods": counts[victim], "via": survivor,
                "notready": notready + kill_took, "evicted": gone + kill_took, "all_ready": all_ready + kill_took,
                "requests": loop.ok + loop.failed, "failed": loop.failed, "failures": loop.failures[:3],
            })
            print(f"  round {i}: killed {victim} ({counts[victim]} pods): NotReady {notready + kill_took:.2f} s, "
                  f"pods deleted {gone + kill_took:.2f} s, "
                  f"all Ready {all_ready + kill_took:.2f} s, {loop.failed}/{loop.ok + loop.failed} failed", flush=True)
            await asyncio.to_thread(lab.lab, "start-node", victim)
            await poll_until(f"{victim} Ready again", lambda v=victim: _is_ready(cl, v), 30)
        return results, baseline


async def _answers(host: str, port: int) -> bool:
    def get() -> bool:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()
    return await asyncio.to_thread(get)


async def _is_ready(cl: Cluster, node: str) -> bool:
    return (await cl.node_ready()).get(node, False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second during each kill")
    ap.add_argument("--target", type=float, default=8.0, help="seconds: all replicas Ready within")
    ap.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("error: the failover benchmark needs root (it brings up a lab): sudo make bench-failover", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="pk-bench-")
    lab = LabHandle("bench", os.path.join(tmp, "config"))
    lab.lab("down", check=False)
    try:
        print("bringing up a 3-node lab (preset lab) ...", flush=True)
        lab.lab("up", "--nodes", "3", "--preset", "lab", timeout=180)
        lab.pkctl("apply", "-f", str(ROOT / "examples" / "web.yaml"))
        lab.pkctl("apply", "-f", "-", input=NODEPORT_SVC)
        results, baseline = asyncio.run(measure(lab, args.rounds, args.rate))
    finally:
        if not args.keep:
            lab.lab("down", check=False)
        try:
            os.unlink(os.path.join(tmp, "config"))
        except FileNotFoundError:
            pass
        os.rmdir(tmp)

    print()
    print(f"{'round':>5}  {'victim':<7} {'pods':>4}  {'NotReady s':>10}  {'evicted s':>9}  {'all Ready s':>11}  "
          f"{'requests':>8}  {'failed':>6}")
    for r in results:
        print(f"{r['round']:>5}  {r['victim']:<7} {r['pods']:>4}  {r['notready']:>10.2f}  {r['evicted']:>9.2f}  "
              f"{r['all_ready']:>11.2f}  {r['requests']:>8}  {r['failed']:>6}")
    nr = [r["notready"] for r in results]
    ar = [r["all_ready"] for r in results]
    failed = sum(r["failed"] for r in results)
    base = statistics.median(baseline)
    ev = [r["evicted"] for r in results]
    print(f"{'median':>5}  {'':<7} {'':>4}  {statistics.median(nr):>10.2f}  {statistics.median(ev):>9.2f}  "
          f"{statistics.median(ar):>11.2f}")
    print(f"{'worst':>5}  {'':<7} {'':>4}  {max(nr):>10.2f}  {max(ev):>9.2f}  {max(ar):>11.2f}  {'':>8}  {failed:>6}")
    print()
    print(f"baseline (same run): one new replica Ready after a scale-up, median of {len(baseline)}: {base:.2f} s "
          f"(worst {max(baseline):.2f} s)")
    print(f"failover all-Ready / baseline: median {statistics.median(ar) / base:.1f}x, worst {max(ar) / base:.1f}x "
          f"(the difference is failure detection: node grace period 4 s)")
    ok = max(ar) <= args.target and failed == 0
    print(f"target: all Ready within {args.target:.0f} s of the kill and 0 failed requests: {'MET' if ok else 'NOT MET'}")
    for r in results:
        for t, e in r["failures"]:
            print(f"  round {r['round']} failure at {t:.1f}s: {e}")
    print()
    print("reproduce: sudo make bench-failover   (or: sudo .venv/bin/python bench/failover.py --rounds 5)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
