"""pk-controlplane: flags -> ControlPlaneConfig -> run(config).

run() starts, in order: the store (an embedded etcd child process when no
--etcd-servers is given), the system namespaces, the gRPC API server
(ResourceService, NodeService, health, reflection; --listen, 6444), the
Kubernetes HTTPS API for kubectl (--http-listen, 6443; it writes the admin
kubeconfig <data-dir>/kubeconfig.yaml), and, with
--controllers, controlplane.controllers.manager.run (leader election,
controllers, scheduler) talking to the API over gRPC like any client.

The controller manager runs in its own child process by default
(`python -m controlplane.controllers`, like kube-controller-manager and
kube-scheduler), so it uses a second CPU core instead of sharing the API
server's event loop: it is restarted with backoff if it dies, gets SIGTERM
then SIGKILL (by PID) when we stop, and SIGTERM when we die (setpriv
--pdeathsig, plus a parent watch in the child). Every pk-controlplane serves
the API; the leader election happens in the children, so exactly one of
them runs controllers. --no-controllers-process runs the manager on this
process's event loop instead.

Shutdown: SIGTERM or SIGINT stops accepting RPCs, gives in-flight RPCs a
grace period, cancels watches and controllers, closes the store and stops
the embedded etcd, so no child process outlives the control plane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from controlplane.config import PRESETS, ControlPlaneConfig

log = logging.getLogger("pk-controlplane")

SHUTDOWN_GRACE = 3.0


def _port_range(s: str) -> tuple[int, int]:
    lo, sep, hi = s.partition("-")
    try:
        a, b = int(lo), int(hi if sep else lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port range {s!r} (want e.g. 30000-32767)") from None
    if not (0 < a <= b <= 65535):
        raise argparse.ArgumentTypeError(f"invalid port range {s!r} (want e.g. 30000-32767)")
    return a, b


def _positive(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        v = 0.0
    if not v > 0:
        raise argparse.ArgumentTypeError(f"invalid value {s!r}: must be a number of seconds greater than 0")
    return v


def parse_args(argv: list[str] | None = None) -> ControlPlaneConfig:
    d = ControlPlaneConfig()
    p = argparse.ArgumentParser(prog="pk-controlplane", description="PocketKube control plane: API server on etcd, "
                                "controllers and scheduler.")
    p.add_argument("--listen", default=d.listen, help="gRPC API address (default %(default)s)")
    p.add_argument("--http-listen", default=d.http_listen, help="Kubernetes HTTPS API address for kubectl and "
                   "client libraries (default %(default)s; empty: off)")
    p.add_argument("--tls-san", action="append", default=[], help="an extra IP or DNS name for the HTTPS "
                   "serving certificate (repeatable)")
    p.add_argument("--pki-dir", default=d.pki_dir, help="cluster CA and serving certificate directory "
                   "(default <data-dir>/pki)")
    p.add_argument("--etcd-servers", default="", help="comma-separated etcd endpoints; absent: start an embedded "
                   "etcd with data under --data-dir")
    p.add_argument("--data-dir", default=d.data_dir, help="data directory of the embedded etcd (default %(default)s)")
    p.add_argument("--service-cidr", default=d.service_cidr, help="ClusterIP range (default %(default)s)")
    p.add_argument("--service-node-port-range", type=_port_range, default=d.service_node_port_range,
                   help="NodePort range (default 30000-32767)")
    p.add_argument("--lb-pool", default=d.lb_pool, help="LoadBalancer addresses: CIDR or first-last")
    p.add_argument("--preset", choices=sorted(PRESETS), default=d.preset,
                   help="timing preset: lab (1s/4s/0s) or kubernetes (10s/40s/300s) for heartbeat interval, "
                   "node grace period and default unreachable toleration")
    p.add_argument("--heartbeat-interval", type=_positive, default=None, help="seconds between agent heartbeats")
    p.add_argument("--node-grace-period", type=_positive, default=None,
                   help="seconds without a heartbeat before a node is NotReady")
    p.add_argument("--default-unreachable-toleration", type=int, default=None,
                   help="seconds pods tolerate an unreachable node before eviction")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=d.leader_elect,
                   help="elect one leader to run controllers (default on)")
    p.add_argument("--identity", default="", help="leader-election identity (default hostname_pid)")
    p.add_argument("--leader-lease-seconds", type=int, default=d.leader_lease_seconds,
                   help="leader lease TTL: another control plane takes over this long after the leader dies "
                        "(default %(default)s)")
    p.add_argument("--event-ttl", type=int, default=d.event_ttl, help="seconds an Event is kept (default %(default)s)")
    p.add_argument("--controllers", action=argparse.BooleanOptionalAction, default=d.controllers,
                   help="run controllers and scheduler (default on)")
    p.add_argument("--controllers-process", action=argparse.BooleanOptionalAction, default=d.controllers_process,
                   help="run controllers and scheduler in a supervised child process, on their own core "
                   "(default on); off: on the API server's event loop")
    p.add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"])
    a = p.parse_args(argv)
    c = ControlPlaneConfig()
    c.listen = a.listen
    c.http_listen = a.http_listen
    c.tls_sans = [n.strip() for v in a.tls_san for n in v.split(",") if n.strip()]
    c.pki_dir = a.pki_dir
    c.etcd_servers = [e.strip() for e in a.etcd_servers.split(",") if e.strip()]
    c.data_dir = a.data_dir
    c.service_cidr = a.service_cidr
    c.service_node_port_range = a.service_node_port_range
    c.lb_pool = a.lb_pool
    c.apply_preset(a.preset)
    if a.heartbeat_interval is not None:
        c.heartbeat_interval = a.heartbeat_interval
    if a.node_grace_period is not None:
        c.node_grace_period = a.node_grace_period
    if a.default_unreachable_toleration is not None:
        c.default_unreachable_toleration = a.default_unreachable_toleration
    c.leader_elect = a.leader_elect
    c.leader_lease_seconds = a.leader_lease_seconds
    c.event_ttl = a.event_ttl
    c.identity = a.identity or f"{socket.gethostname()}_{os.getpid()}"
    c.controllers = a.controllers
    c.controllers_process = a.controllers_process
    c.log_level = a.log_level
    return c


def _make_store(config: ControlPlaneConfig) -> Any:
    servers = config.etcd_servers
    if servers == ["memory://"]:
        # A fake, for benchmarks and demos without etcd: state dies with the process.
        from controlplane.store.memory import MemoryStore

        return MemoryStore()
    from controlplane.store.etcd import EtcdStore

    return EtcdStore(servers)


def _etcd_version(endpoint: str) -> str:
    """etcd's server version from its /version endpoint ("" if unknown)."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/version", timeout=2) as r:
            return str(json.load(r).get("etcdserver", ""))
    except Exception:
        return ""




async def run(config: ControlPlaneConfig, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation). `ready` is set once the
    API answers (health SERVING)."""
    from grpc_health.v1 import health_pb2

    from controlplane.apiserver.registry import Registry
    from controlplane.apiserver.server import serve
    from controlplane.apiserver.service_alloc import ServiceAllocator
    from controlplane.apiserver.watchcache import WatchCaches

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    etcd = None
    if not config.etcd_servers:
        from controlplane.etcdproc import EtcdProcess

        os.makedirs(config.data_dir, exist_ok=True)
        etcd = EtcdProcess(os.path.join(config.data_dir, "etcd"))
        await etcd.start()
        config.etcd_servers = [etcd.endpoint]
        log.info("embedded etcd pid %s at %s", etcd.pid, etcd.endpoint)
    store = None
    registry = None
    caches = None
    server = None
    http = None
    resources = None
    manager_task: asyncio.Task[Any] | None = None
    try:
        store = _make_store(config)
        allocator = ServiceAllocator(store, config)
        caches = WatchCaches(store)
        registry = Registry(store, allocator, caches)
        await registry.start()
        await caches.start_all()
        etcd_version = ""
        if config.etcd_servers[0].startswith("http"):
            etcd_version = await asyncio.to_thread(_etcd_version, config.etcd_servers[0])
        server, resources, health_servicer, port = await serve(config, registry, caches, etcd_version)
        host = config.listen.rsplit(":", 1)[0]
        api_address = f"{host}:{port}"
        if config.http_listen:
            from controlplane.apiserver.http.server import serve_http

            http = await serve_http(config, registry, caches, api_address, agents=resources.agent_stub)
            log.info("Kubernetes API on https://%s", http.api.server_address)
            print(f"pk-controlplane: Kubernetes API on https://{http.api.server_address}", flush=True)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("pk-controlplane serving the API on %s (etcd %s)", api_address, ",".join(config.etcd_servers))
        print(f"pk-controlplane: serving on {api_address}", flush=True)
        if ready is not None:
            ready.set()
        if config.controllers:
            manager_task = _start_controllers(config, api_address)
        waiter = loop.create_task(stop.wait())
        waits: set[asyncio.Task[Any]] = {waiter}
        if manager_task is not None:
            waits.add(manager_task)
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if manager_task in done and manager_task is not None and not manager_task.cancelled():
            exc = manager_task.exception()
            if exc is not None:
                log.error("controllers stopped: %r", exc)
                raise exc
        waiter.cancel()
        log.info("shutting down")
        await health_servicer.enter_graceful_shutdown()
    finally:
        if manager_task is not None:
            manager_task.cancel()
            await asyncio.gather(manager_task, return_exceptions=True)
        if caches is not None:
            await caches.stop()
        if http is not None:
            await http.stop()
        if server is not None:
            await server.stop(SHUTDOWN_GRACE)
        if resources is not None:
            await resources.close()
        if registry is not None:
            await registry.close()
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
        if etcd is not None:
            await etcd.stop()
            log.info("embedded etcd stopped")


def _start_controllers(config: ControlPlaneConfig, api_address: str) -> asyncio.Task[Any]:
    if config.controllers_process:
        return asyncio.get_running_loop().create_task(ControllerProcess(config, api_address).run(),
                                                      name="controllers")
    from controlplane.controllers import manager

    return asyncio.get_running_loop().create_task(manager.run(config, api_address), name="controllers")


class ControllerProcess:
    """The controller manager as a supervised child process.

    run() starts `python -m controlplane.controllers`, waits for it, and
    restarts it after a backoff (1 s doubling to 30 s; back to 1 s once a
    child has lived a minute) until cancelled; cancellation sends SIGTERM
    to the child's PID, SIGKILL after STOP_GRACE, and reaps it. The child is
    started from the event loop's thread (PR_SET_PDEATHSIG fires when the
    starting *thread* exits)."""

    BACKOFF_MIN = 1.0
    BACKOFF_MAX = 30.0
    HEALTHY_AFTER = 60.0
    STOP_GRACE = 5.0

    def __init__(self, config: ControlPlaneConfig, api_address: str) -> None:
        self.config = config
        self.api_address = api_address
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        from controlplane.controllers.__main__ import config_to_json

        cmd = [sys.executable, "-m", "controlplane.controllers", "--api-address", self.api_address,
               "--config-json", config_to_json(self.config), "--parent-pid", str(os.getpid())]
        setpriv = shutil.which("setpriv")
        if setpriv:
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        return cmd

    async def run(self) -> None:
        backoff = self.BACKOFF_MIN
        try:
            while True:
                started = time.monotonic()
                # stdout/stderr inherited: the children's logs join ours.
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)  # noqa: ASYNC220
                self.starts += 1
                log.info("controller manager started (pid %d)", self.proc.pid)
                while self.proc.poll() is None:
                    await asyncio.sleep(0.2)
                if time.monotonic() - started >= self.HEALTHY_AFTER:
                    backoff = self.BACKOFF_MIN
                log.error("controller manager (pid %d) exited with %s; restarting in %.0f s",
                          self.proc.pid, self.proc.returncode, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.BACKOFF_MAX)
        finally:
            await self.stop()

    async def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE
        while p.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.02)
        if p.poll() is None:
            log.warning("controller manager (pid %d) ignored SIGTERM: killing it", p.pid)
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(run(config))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # a startup failure: say what, no traceback
        log.debug("fatal", exc_info=True)
        print(f"pk-controlplane: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
